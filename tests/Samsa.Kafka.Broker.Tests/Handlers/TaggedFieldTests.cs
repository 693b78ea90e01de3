using Samsa.Kafka.Broker.Handlers;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Primitives;

namespace Samsa.Kafka.Broker.Tests.Handlers;

/// <summary>
/// The tagged fields a handler's response carries on the wire, byte for byte. Upstream
/// (KafkaApis.handleFetchRequest / handleProduceRequest) fills CurrentLeader only for
/// NOT_LEADER_OR_FOLLOWER (and, for Fetch, FENCED_LEADER_EPOCH), from Fetch v16 and Produce v10;
/// a client that cannot skip tagged fields misreads whatever follows an unexpected one.
/// </summary>
public class TaggedFieldTests
{
    private static async Task<T> Handle<T>(HandlerFixture f, IKafkaMessage request, short version) where T : class, IKafkaMessage
    {
        var header = new RequestHeader { RequestApiKey = request.ApiKey, RequestApiVersion = version, CorrelationId = 1, ClientId = "t" };
        var response = await ApiTable.Find(request.ApiKey)!.Handler(new RequestContext { Header = header, Broker = f.Broker }, request);
        return Assert.IsType<T>(response);
    }

    private static byte[] Encode(IKafkaMessage m, short version)
    {
        var buffer = new byte[m.Size(version)];
        var w = new KafkaWriter(buffer);
        m.Write(ref w, version);
        return buffer;
    }

    private static byte[] Encode(FetchResponse.PartitionData pd, short version)
    {
        var buffer = new byte[pd.Size(version)];
        var w = new KafkaWriter(buffer);
        pd.Write(ref w, version);
        return buffer;
    }

    private static byte[] Encode(ProduceResponse.PartitionProduceResponse pr, short version)
    {
        var buffer = new byte[pr.Size(version)];
        var w = new KafkaWriter(buffer);
        pr.Write(ref w, version);
        return buffer;
    }

    private static FetchRequest FetchOf(HandlerFixture f, string topic, int currentLeaderEpoch = -1) => new()
    {
        MaxWaitMs = 0, MinBytes = 0, MaxBytes = 1 << 20, SessionEpoch = -1, ReplicaId = -1,
        ReplicaState = new FetchRequest.ReplicaStateData { ReplicaId = -1 },
        Topics = [new FetchRequest.FetchTopic
        {
            Topic = topic, TopicId = f.Broker.Replicas.GetTopic(topic)!.Id,
            Partitions = [new FetchRequest.FetchPartition { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20, CurrentLeaderEpoch = currentLeaderEpoch }],
        }],
    };

    private static ProduceRequest ProduceOf(string topic) => new()
    {
        Acks = 1, TimeoutMs = 1000,
        TopicData = [new ProduceRequest.TopicProduceData { Name = topic, PartitionData = [new ProduceRequest.PartitionProduceData { Index = 0, Records = HandlerFixture.Batch("a") }] }],
    };

    // The response's tagged section naming broker 1 at 127.0.0.1:9092: one tagged field, tag 0,
    // size 21, compact array of 1, node 1, compact "127.0.0.1", port 9092, null rack, the entry's
    // empty tagged section.
    private static readonly byte[] EndpointTail = [1, 0, 21, 2, 0, 0, 0, 1, 10, .. "127.0.0.1"u8, 0, 0, 0x23, 0x84, 0, 0];

    // A CurrentLeader tagged field: one field, tag, size 9, leader id, leader epoch and the
    // struct's own (empty) tagged section.
    private static byte[] LeaderTag(int tag, int leaderId, int epoch) =>
        [1, (byte)tag, 9, (byte)(leaderId >> 24), (byte)(leaderId >> 16), (byte)(leaderId >> 8), (byte)leaderId,
            (byte)(epoch >> 24), (byte)(epoch >> 16), (byte)(epoch >> 8), (byte)epoch, 0];

    [Theory]
    [InlineData(12)]
    [InlineData(13)]
    [InlineData(15)]
    [InlineData(16)]
    public async Task FetchFromTheLeaderCarriesNoTaggedFields(short version)
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t");
        await f.Produce("t", 0, HandlerFixture.Batch("a", "b"));
        var r = await Handle<FetchResponse>(f, FetchOf(f, "t"), version);
        var pd = r.Responses[0].Partitions[0];
        Assert.Equal(0, pd.ErrorCode);
        Assert.NotEqual(0, pd.Records!.Value.Length);
        Assert.Equal(0, Encode(pd, version)[^1]);          // partition: empty tagged section
        Assert.Empty(r.NodeEndpoints);
        Assert.Equal(0, Encode(r, version)[^1]);           // response: empty tagged section
    }

    [Fact]
    public async Task FetchV16NotLeaderCarriesCurrentLeaderOnly()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t");
        var p = f.Broker.Replicas.GetPartition("t", 0)!;
        p.IsLeader = false;
        p.LeaderId = 2;
        p.LeaderEpoch = 3;
        var r = await Handle<FetchResponse>(f, FetchOf(f, "t"), 16);
        var pd = r.Responses[0].Partitions[0];
        Assert.Equal((short)ErrorCode.NotLeaderOrFollower, pd.ErrorCode);
        var bytes = Encode(pd, 16);
        Assert.Equal(LeaderTag(1, 2, 3), bytes[^12..]);
        // Broker 2 is not alive here: upstream lists no endpoint for it.
        Assert.Empty(r.NodeEndpoints);
        Assert.Equal(0, Encode(r, 16)[^1]);
    }

    [Theory]
    [InlineData(12)]
    [InlineData(15)]
    public async Task FetchBeforeV16NotLeaderCarriesNoTaggedFields(short version)
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t");
        var p = f.Broker.Replicas.GetPartition("t", 0)!;
        p.IsLeader = false;
        p.LeaderId = 2;
        p.LeaderEpoch = 3;
        var r = await Handle<FetchResponse>(f, FetchOf(f, "t"), version);
        var pd = r.Responses[0].Partitions[0];
        Assert.Equal((short)ErrorCode.NotLeaderOrFollower, pd.ErrorCode);
        Assert.Equal(0, Encode(pd, version)[^1]);
    }

    [Fact]
    public async Task FetchV16FencedEpochNamesThisBrokerAndItsEndpoint()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t");
        f.Broker.Replicas.GetPartition("t", 0)!.LeaderEpoch = 5;
        var r = await Handle<FetchResponse>(f, FetchOf(f, "t", currentLeaderEpoch: 4), 16);
        var pd = r.Responses[0].Partitions[0];
        Assert.Equal((short)ErrorCode.FencedLeaderEpoch, pd.ErrorCode);
        Assert.Equal(LeaderTag(1, 1, 5), Encode(pd, 16)[^12..]);
        var node = Assert.Single(r.NodeEndpoints);
        Assert.Equal((1, "127.0.0.1", 9092, (string?)null), (node.NodeId, node.Host, node.Port, node.Rack));
        Assert.Equal(EndpointTail, Encode(r, 16)[^EndpointTail.Length..]);

        // An UNKNOWN_LEADER_EPOCH (the client is ahead) gets no hint, as upstream.
        var ahead = await Handle<FetchResponse>(f, FetchOf(f, "t", currentLeaderEpoch: 6), 16);
        Assert.Equal((short)ErrorCode.UnknownLeaderEpoch, ahead.Responses[0].Partitions[0].ErrorCode);
        Assert.Equal(0, Encode(ahead.Responses[0].Partitions[0], 16)[^1]);
        Assert.Equal(0, Encode(ahead, 16)[^1]);
    }

    [Theory]
    [InlineData(9)]
    [InlineData(10)]
    [InlineData(11)]
    public async Task ProduceToTheLeaderCarriesNoTaggedFields(short version)
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t");
        var r = await Handle<ProduceResponse>(f, ProduceOf("t"), version);
        var pr = r.Responses[0].PartitionResponses[0];
        Assert.Equal(0, pr.ErrorCode);
        Assert.Equal(0, Encode(pr, version)[^1]);
        Assert.Equal(0, Encode(r, version)[^1]);
    }

    [Theory]
    [InlineData(10)]
    [InlineData(11)]
    public async Task ProduceNotLeaderCarriesCurrentLeaderFromV10(short version)
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t");
        var p = f.Broker.Replicas.GetPartition("t", 0)!;
        p.IsLeader = false;
        p.LeaderId = 2;
        p.LeaderEpoch = 7;
        var r = await Handle<ProduceResponse>(f, ProduceOf("t"), version);
        var pr = r.Responses[0].PartitionResponses[0];
        Assert.Equal((short)ErrorCode.NotLeaderOrFollower, pr.ErrorCode);
        Assert.Equal(LeaderTag(0, 2, 7), Encode(pr, version)[^12..]);
        Assert.Empty(r.NodeEndpoints);
        Assert.Equal(0, Encode(r, version)[^1]);

        var v9 = await Handle<ProduceResponse>(f, ProduceOf("t"), 9);
        Assert.Equal(0, Encode(v9.Responses[0].PartitionResponses[0], 9)[^1]);
    }

    [Fact]
    public async Task ProduceNotLeaderListsTheLeadersEndpointWhenAlive()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t");
        var p = f.Broker.Replicas.GetPartition("t", 0)!;
        // Leader is this broker by id but the partition says otherwise (a stale view): the hint
        // names broker 1, which is alive, so its endpoint is listed.
        p.IsLeader = false;
        p.LeaderId = 1;
        p.LeaderEpoch = 2;
        var r = await Handle<ProduceResponse>(f, ProduceOf("t"), 11);
        var node = Assert.Single(r.NodeEndpoints);
        Assert.Equal((1, "127.0.0.1", 9092), (node.NodeId, node.Host, node.Port));
        Assert.Equal(EndpointTail, Encode(r, 11)[^EndpointTail.Length..]);
    }
}
