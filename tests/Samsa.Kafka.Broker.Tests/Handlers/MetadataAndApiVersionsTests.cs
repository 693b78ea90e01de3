using Samsa.Kafka.Broker.Network;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Tests.Handlers;

public class MetadataAndApiVersionsTests
{
    [Fact]
    public async Task ApiVersionsAdvertisesTheServedTable()
    {
        await using var f = new HandlerFixture();
        var r = await f.Send<ApiVersionsResponse>(new ApiVersionsRequest { ClientSoftwareName = "librdkafka", ClientSoftwareVersion = "2.0.2" }, 3);
        Assert.Equal(0, r!.ErrorCode);
        var byKey = r.ApiKeys.ToDictionary(k => k.ApiKey);
        Assert.Equal((0, 13), (byKey[0].MinVersion, byKey[0].MaxVersion));   // Produce
        Assert.Equal((0, 18), (byKey[1].MinVersion, byKey[1].MaxVersion));   // Fetch
        Assert.Equal((0, 13), (byKey[3].MinVersion, byKey[3].MaxVersion));   // Metadata
        Assert.Equal((0, 4), (byKey[18].MinVersion, byKey[18].MaxVersion));  // ApiVersions
        Assert.Equal((0, 9), (byKey[11].MinVersion, byKey[11].MaxVersion));  // JoinGroup (group coordinator)
        Assert.Equal(r.ApiKeys.Select(k => k.ApiKey).OrderBy(k => k), r.ApiKeys.Select(k => k.ApiKey));
    }

    [Fact]
    public async Task ApiVersionsRejectsIllegalClientSoftwareName()
    {
        await using var f = new HandlerFixture();
        var r = await f.Send<ApiVersionsResponse>(new ApiVersionsRequest { ClientSoftwareName = "bad name!", ClientSoftwareVersion = "1" }, 3);
        Assert.Equal((short)ErrorCode.InvalidRequest, r!.ErrorCode);
    }

    [Fact]
    public void UnknownApiVersionsVersionGetsV0UnsupportedVersionAnswer()
    {
        // ApiVersions v9 with a v2 header: key, version, correlation id, client id, tagged fields.
        byte[] frame = [0, 18, 0, 9, 0, 0, 0, 42, 0, 3, (byte)'c', (byte)'l', (byte)'i', 0, 0];
        var (header, request, error) = KafkaConnectionHandler.Parse(frame);
        Assert.Null(error);
        Assert.Null(request);
        Assert.Equal(42, header!.CorrelationId);
        var body = Samsa.Kafka.Broker.Handlers.ApiVersionsHandler.UnsupportedVersionResponse();
        var bytes = KafkaConnectionHandler.Serialize(header, body, 0, out int length);
        var decoded = Samsa.Kafka.Broker.Client.KafkaWireClient.Decode<ApiVersionsResponse>(bytes[..length], 18, 0, 42);
        Assert.Equal((short)ErrorCode.UnsupportedVersion, decoded.ErrorCode);
        // Upstream ApiVersionsRequest.getErrorResponse (KIP-511): only ApiVersions' own range.
        var only = Assert.Single(decoded.ApiKeys);
        Assert.Equal((18, 0, 4), ((int)only.ApiKey, (int)only.MinVersion, (int)only.MaxVersion));
    }

    [Fact]
    public void UnservedApiOrVersionIsRefused()
    {
        Assert.NotNull(KafkaConnectionHandler.Parse(new byte[] { 0, 11, 0, 0, 0, 0, 0, 1, 0xff, 0xff }).Error); // JoinGroup
        Assert.NotNull(KafkaConnectionHandler.Parse(new byte[] { 0, 1, 0, 19, 0, 0, 0, 1, 0xff, 0xff }).Error); // Fetch v19
        Assert.NotNull(KafkaConnectionHandler.Parse(new byte[] { 0, 3, 0, 1, 0, 0 }).Error);                    // too short
        Assert.NotNull(KafkaConnectionHandler.Parse(new byte[] { 0, 3, 0, 1, 0, 0, 0, 1, 0, 9, 1 }).Error);     // truncated client id
    }

    [Fact]
    public async Task AutoCreateAnswersLeaderNotAvailableFirst()
    {
        await using var f = new HandlerFixture(("num.partitions", "3"));
        var request = new MetadataRequest { Topics = [new MetadataRequest.MetadataRequestTopic { Name = "auto" }], AllowAutoTopicCreation = true };
        var first = await f.Send<MetadataResponse>(request, 9);
        Assert.Equal((short)ErrorCode.LeaderNotAvailable, first!.Topics[0].ErrorCode);
        Assert.Empty(first.Topics[0].Partitions);
        var second = await f.Send<MetadataResponse>(request, 12);
        var topic = second!.Topics.Single();
        Assert.Equal(0, topic.ErrorCode);
        Assert.Equal(3, topic.Partitions.Count);
        Assert.NotEqual(Guid.Empty, topic.TopicId);
        Assert.All(topic.Partitions, p => { Assert.Equal(1, p.LeaderId); Assert.Equal([1], p.ReplicaNodes); Assert.Equal([1], p.IsrNodes); Assert.Equal(0, p.LeaderEpoch); });
        Assert.Equal(1, second.ControllerId);
        Assert.Equal(f.Broker.ClusterId, second.ClusterId);
        Assert.Equal(("127.0.0.1", 9092), (second.Brokers.Single().Host, second.Brokers.Single().Port));
    }

    [Fact]
    public async Task NoAutoCreateWhenDisallowedOrDisabled()
    {
        await using var f = new HandlerFixture();
        var r = await f.Send<MetadataResponse>(new MetadataRequest { Topics = [new() { Name = "x" }], AllowAutoTopicCreation = false }, 9);
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, r!.Topics[0].ErrorCode);
        Assert.Null(f.Broker.Replicas.GetTopic("x"));

        await using var g = new HandlerFixture(("auto.create.topics.enable", "false"));
        r = await g.Send<MetadataResponse>(new MetadataRequest { Topics = [new() { Name = "x" }] }, 1);
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, r!.Topics[0].ErrorCode);
    }

    [Fact]
    public async Task IllegalTopicNameIsInvalidTopicException()
    {
        await using var f = new HandlerFixture();
        var r = await f.Send<MetadataResponse>(new MetadataRequest { Topics = [new() { Name = "bad/name" }] }, 4);
        Assert.Equal((short)ErrorCode.InvalidTopicException, r!.Topics[0].ErrorCode);
    }

    [Fact]
    public async Task NullAndEmptyTopicListsFollowTheVersion()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("a");
        await f.CreateTopic("b");
        var v0Empty = await f.Send<MetadataResponse>(new MetadataRequest { Topics = [] }, 0);
        Assert.Equal(["a", "b"], v0Empty!.Topics.Select(t => t.Name));
        var v1Empty = await f.Send<MetadataResponse>(new MetadataRequest { Topics = [] }, 1);
        Assert.Empty(v1Empty!.Topics);
        var v1Null = await f.Send<MetadataResponse>(new MetadataRequest { Topics = null }, 1);
        Assert.Equal(2, v1Null!.Topics.Count);
    }

    [Fact]
    public async Task TopicIdLookupMissIsUnknownTopicId()
    {
        await using var f = new HandlerFixture();
        var r = await f.Send<MetadataResponse>(new MetadataRequest { Topics = [new() { Name = null, TopicId = Guid.NewGuid() }] }, 12);
        Assert.Equal((short)ErrorCode.UnknownTopicId, r!.Topics[0].ErrorCode);
    }
}
