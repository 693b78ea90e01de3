using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Tests.Handlers;

/// <summary>What the versions raised to Kafka 4.2's table change for a client: Produce v13 by topic
/// id, Fetch v17/v18, ListOffsets v9-v11 special timestamps, Metadata v13, DescribeCluster v2,
/// AlterPartitionReassignments v1.</summary>
public class Kafka42VersionTests
{
    private static ProduceRequest ProduceById(Guid topicId, int partition, byte[] records) => new()
    {
        Acks = 1, TimeoutMs = 1000,
        TopicData = [new ProduceRequest.TopicProduceData { TopicId = topicId, PartitionData = [new ProduceRequest.PartitionProduceData { Index = partition, Records = records }] }],
    };

    [Fact]
    public async Task ProduceV13AddressesTheTopicByIdAndAnswersByIdToo()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("by-id", 2);
        var id = f.Broker.Replicas.GetTopic("by-id")!.Id;
        var r = await f.Send<ProduceResponse>(ProduceById(id, 1, HandlerFixture.Batch("a", "b")), 13);
        var topic = r!.Responses.Single();
        Assert.Equal(id, topic.TopicId);
        Assert.Equal("", topic.Name);   // v13 carries no name
        var p = topic.PartitionResponses.Single();
        Assert.Equal((0, 1, 0L), ((int)p.ErrorCode, p.Index, p.BaseOffset));
        // The records landed in partition 1 of that topic.
        var fetched = await f.Fetch("by-id", 1, 0, version: 18);
        Assert.Equal(2, fetched.HighWatermark);
        // And a second v13 produce continues the offsets.
        var again = await f.Send<ProduceResponse>(ProduceById(id, 1, HandlerFixture.Batch("c")), 13);
        Assert.Equal(2, again!.Responses[0].PartitionResponses[0].BaseOffset);
    }

    [Fact]
    public async Task ProduceV13WithAnUnknownTopicIdIsUnknownTopicId()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("known");
        var unknown = Guid.NewGuid();
        var r = await f.Send<ProduceResponse>(ProduceById(unknown, 0, HandlerFixture.Batch("x")), 13);
        var topic = r!.Responses.Single();
        Assert.Equal(unknown, topic.TopicId);
        Assert.Equal((short)ErrorCode.UnknownTopicId, topic.PartitionResponses.Single().ErrorCode);
        Assert.Equal(-1, topic.PartitionResponses[0].BaseOffset);
        // An existing topic with a partition it does not have stays UNKNOWN_TOPIC_OR_PARTITION.
        var id = f.Broker.Replicas.GetTopic("known")!.Id;
        var r2 = await f.Send<ProduceResponse>(ProduceById(id, 7, HandlerFixture.Batch("x")), 13);
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, r2!.Responses[0].PartitionResponses[0].ErrorCode);
    }

    [Fact]
    public async Task ProduceV12ByNameStillWorks()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("v12");
        var p = await f.Produce("v12", 0, HandlerFixture.Batch("a"), version: 12);
        Assert.Equal((0, 0L), ((int)p.ErrorCode, p.BaseOffset));
    }

    [Fact]
    public async Task FetchV18IgnoresTheFollowerOnlyTaggedFields()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("f18");
        await f.Produce("f18", 0, HandlerFixture.Batch("a", "b", "c"));
        var id = f.Broker.Replicas.GetTopic("f18")!.Id;
        var r = await f.Send<FetchResponse>(new FetchRequest
        {
            MaxWaitMs = 0, MinBytes = 0, MaxBytes = 1 << 20, SessionEpoch = -1,
            Topics = [new FetchRequest.FetchTopic
            {
                TopicId = id,
                Partitions = [new FetchRequest.FetchPartition
                {
                    Partition = 0, FetchOffset = 1, PartitionMaxBytes = 1 << 20,
                    ReplicaDirectoryId = Guid.NewGuid(), HighWatermark = 1,
                }],
            }],
        }, 18);
        var p = r!.Responses.Single().Partitions.Single();
        Assert.Equal(0, p.ErrorCode);
        Assert.Equal(3, p.HighWatermark);
        Assert.True(p.Records is { Length: > 0 });
        Assert.Equal(id, r.Responses[0].TopicId);
    }

    private static async Task<ListOffsetsResponse.ListOffsetsPartitionResponse> ListOffset(HandlerFixture f, string topic, long timestamp, short version)
    {
        var r = await f.Send<ListOffsetsResponse>(new ListOffsetsRequest
        {
            ReplicaId = -1, TimeoutMs = 1000,
            Topics = [new ListOffsetsRequest.ListOffsetsTopic { Name = topic, Partitions = [new() { PartitionIndex = 0, Timestamp = timestamp }] }],
        }, version);
        return r!.Topics[0].Partitions[0];
    }

    [Fact]
    public async Task ListOffsetsTieredTimestampsAnswerNoOffsetFromTheirVersionOn()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("lo");
        await f.Produce("lo", 0, HandlerFixture.Batch("a", "b"));
        // -5 LATEST_TIERED (v9+) and -6 EARLIEST_PENDING_UPLOAD (v11+): no remote storage, no offset.
        foreach (var (ts, first) in new[] { (-5L, (short)9), (-6L, (short)11) })
        {
            var tooOld = await ListOffset(f, "lo", ts, (short)(first - 1));
            Assert.Equal((short)ErrorCode.UnsupportedVersion, tooOld.ErrorCode);
            var p = await ListOffset(f, "lo", ts, first);
            Assert.Equal((0, -1L, -1L, -1), ((int)p.ErrorCode, p.Offset, p.Timestamp, p.LeaderEpoch));
        }
        // The usual ones keep working at v11.
        Assert.Equal(2, (await ListOffset(f, "lo", -1, 11)).Offset);
        Assert.Equal(0, (await ListOffset(f, "lo", -2, 11)).Offset);
        Assert.Equal(0, (await ListOffset(f, "lo", -4, 10)).Offset);
    }

    [Fact]
    public async Task MetadataV13HasATopLevelErrorCodeOfZero()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("md13", 2);
        var r = await f.Send<MetadataResponse>(new MetadataRequest { Topics = [new() { Name = "md13" }, new() { Name = "missing" }], AllowAutoTopicCreation = false }, 13);
        Assert.Equal(0, r!.ErrorCode);
        Assert.Equal(2, r.Topics.Single(t => t.Name == "md13").Partitions.Count);
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, r.Topics.Single(t => t.Name == "missing").ErrorCode);
        // By id (v12+), an unknown id is UNKNOWN_TOPIC_ID with a null name.
        var byId = await f.Send<MetadataResponse>(new MetadataRequest { Topics = [new() { TopicId = Guid.NewGuid(), Name = null }] }, 13);
        Assert.Equal((short)ErrorCode.UnknownTopicId, byId!.Topics.Single().ErrorCode);
        Assert.Null(byId.Topics[0].Name);
    }

    [Fact]
    public async Task DescribeClusterV2ListsTheBrokerUnfencedWithOrWithoutFencedOnes()
    {
        await using var f = new HandlerFixture();
        foreach (bool includeFenced in new[] { false, true })
        {
            var r = await f.Send<DescribeClusterResponse>(new DescribeClusterRequest { EndpointType = 1, IncludeFencedBrokers = includeFenced }, 2);
            Assert.Equal(0, r!.ErrorCode);
            Assert.Equal(1, r.EndpointType);
            var b = r.Brokers.Single();
            Assert.Equal((1, false), (b.BrokerId, b.IsFenced));
        }
        var controllers = await f.Send<DescribeClusterResponse>(new DescribeClusterRequest { EndpointType = 2 }, 2);
        Assert.Equal((short)ErrorCode.MismatchedEndpointType, controllers!.ErrorCode);
    }

    [Fact]
    public async Task AlterPartitionReassignmentsV1RefusesAReplicaCountChangeWhenAsked()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("rf");
        AlterPartitionReassignmentsRequest Request(bool allow, params int[] replicas) => new()
        {
            AllowReplicationFactorChange = allow,
            Topics = [new() { Name = "rf", Partitions = [new() { PartitionIndex = 0, Replicas = [.. replicas] }] }],
        };
        // Two replicas where there is one: refused with the flag off, and the flag is echoed.
        var refused = await f.Send<AlterPartitionReassignmentsResponse>(Request(false, 1, 2), 1);
        Assert.False(refused!.AllowReplicationFactorChange);
        var p = refused.Responses.Single().Partitions.Single();
        Assert.Equal((short)ErrorCode.InvalidReplicationFactor, p.ErrorCode);
        Assert.Equal("The replication factor is changed from 1 to 2", p.ErrorMessage);
        // With the flag on (the v0 behaviour) the same target is judged on its brokers instead.
        var allowed = await f.Send<AlterPartitionReassignmentsResponse>(Request(true, 1, 2), 1);
        Assert.True(allowed!.AllowReplicationFactorChange);
        Assert.Equal((short)ErrorCode.InvalidReplicaAssignment, allowed.Responses[0].Partitions[0].ErrorCode);
        // Same size is fine with the flag off.
        var same = await f.Send<AlterPartitionReassignmentsResponse>(Request(false, 1), 1);
        Assert.Equal(0, same!.Responses[0].Partitions[0].ErrorCode);
    }
}
