using System.Buffers.Binary;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Protocol.Records;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Tests.EndToEnd;

/// <summary>Bytes on a real socket: version negotiation, bad input, acks=0.</summary>
public class WireProtocolTests
{
    private static byte[] Frame(params byte[] payload)
    {
        var f = new byte[4 + payload.Length];
        BinaryPrimitives.WriteInt32BigEndian(f, payload.Length);
        payload.CopyTo(f, 4);
        return f;
    }

    [Fact]
    public async Task ApiVersionsOfUnknownVersionGetsV0AnswerAndConnectionStaysUsable()
    {
        await using var live = await LiveBroker.StartAsync();
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", live.Broker.BoundEndPoint.Port);
        // ApiVersions v127, header v2 (flexible): client id "x", empty tagged fields, empty body tags.
        await c.SendRawAsync(Frame(0, 18, 0, 127, 0, 0, 0, 5, 0, 1, (byte)'x', 0, 0, 0));
        var frame = await c.ReadFrameAsync();
        var response = KafkaWireClient.Decode<ApiVersionsResponse>(frame!, 18, 0, 5);
        Assert.Equal((short)ErrorCode.UnsupportedVersion, response.ErrorCode);
        // As upstream 4.x (ApiVersionsRequest.getErrorResponse, KIP-511): only ApiVersions' own range,
        // enough for the client to retry with the highest version both know.
        var own = Assert.Single(response.ApiKeys);
        Assert.Equal((18, 0, 4), ((int)own.ApiKey, (int)own.MinVersion, (int)own.MaxVersion));
        var ok = await c.SendAsync<ApiVersionsResponse>(new ApiVersionsRequest { ClientSoftwareName = "t", ClientSoftwareVersion = "1" }, own.MaxVersion);
        Assert.Equal(0, ok!.ErrorCode);
        Assert.Contains(ok.ApiKeys, k => k.ApiKey == 3 && k.MaxVersion == 13);
    }

    [Theory]
    [InlineData(new byte[] { 0, 11, 0, 0, 0, 0, 0, 1, 0xff, 0xff })]                  // JoinGroup: not served
    [InlineData(new byte[] { 0, 3, 0, 99, 0, 0, 0, 1, 0xff, 0xff })]                  // Metadata v99
    [InlineData(new byte[] { 0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff })] // array count beyond the frame
    [InlineData(new byte[] { 0, 3 })]                                                   // shorter than a header
    public async Task BadRequestsCloseTheConnection(byte[] payload)
    {
        await using var live = await LiveBroker.StartAsync();
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", live.Broker.BoundEndPoint.Port);
        await c.SendRawAsync(Frame(payload));
        Assert.Null(await c.ReadFrameAsync().WaitAsync(TimeSpan.FromSeconds(5)));
        // The broker keeps serving others.
        await using var d = await KafkaWireClient.ConnectAsync("127.0.0.1", live.Broker.BoundEndPoint.Port);
        Assert.NotNull(await d.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [] }, 1));
    }

    [Fact]
    public async Task OversizedFrameLengthClosesTheConnection()
    {
        await using var live = await LiveBroker.StartAsync(null, ("socket.request.max.bytes", "1024"));
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", live.Broker.BoundEndPoint.Port);
        var header = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(header, 1 << 30);
        await c.SendRawAsync(header);
        Assert.Null(await c.ReadFrameAsync().WaitAsync(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task AcksZeroFailureClosesConnectionAndSuccessSendsNothing()
    {
        await using var live = await LiveBroker.StartAsync();
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", live.Broker.BoundEndPoint.Port);
        live.Broker.Replicas.CreateTopic("t", 1, 1, new Dictionary<string, string>(), false);
        ProduceRequest Produce(string topic) => new()
        {
            Acks = 0, TimeoutMs = 1000,
            TopicData = [new() { Name = topic, PartitionData = [new() { Index = 0, Records = RecordBatchBuilder.Build([(null, "v"u8.ToArray())], 0) }] }],
        };
        await c.SendAsync<ProduceResponse>(Produce("t"), 9, expectResponse: false);
        // The next response on the connection answers the next request, not the acks=0 one.
        var md = await c.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [new() { Name = "t" }] }, 9);
        Assert.Equal(0, md!.Topics[0].ErrorCode);
        Assert.Equal(1, live.Broker.Replicas.GetPartition("t", 0)!.Log.LogEndOffset);
        await c.SendAsync<ProduceResponse>(Produce("missing"), 9, expectResponse: false);
        Assert.Null(await c.ReadFrameAsync().WaitAsync(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task ResponsesKeepRequestOrderUnderPipelining()
    {
        await using var live = await LiveBroker.StartAsync();
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", live.Broker.BoundEndPoint.Port);
        live.Broker.Replicas.CreateTopic("t", 1, 1, new Dictionary<string, string>(), false);
        // A long-poll fetch followed by a metadata request on the same connection: the metadata
        // answer must wait behind the fetch answer, as Kafka connections are ordered.
        var fetch = new FetchRequest
        {
            MaxWaitMs = 300, MinBytes = 1, MaxBytes = 1000, SessionEpoch = -1,
            Topics = [new() { Topic = "t", Partitions = [new() { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1000 }] }],
        };
        await c.SendRawAsync(c.Encode(fetch, 11, 100));
        await c.SendRawAsync(c.Encode(new MetadataRequest { Topics = [] }, 9, 101));
        var first = await c.ReadFrameAsync();
        var second = await c.ReadFrameAsync();
        Assert.Equal(100, BinaryPrimitives.ReadInt32BigEndian(first));
        Assert.Equal(101, BinaryPrimitives.ReadInt32BigEndian(second));
    }
}
