using Samsa.Kafka.Protocol.Records;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Tests.Handlers;

public class AdminTests
{
    private static CreateTopicsRequest Create(string name, int partitions = 1, short rf = 1, bool validateOnly = false, params (string K, string? V)[] configs) => new()
    {
        ValidateOnly = validateOnly,
        Topics = [new CreateTopicsRequest.CreatableTopic
        {
            Name = name, NumPartitions = partitions, ReplicationFactor = rf,
            Configs = configs.Select(c => new CreateTopicsRequest.CreatableTopicConfig { Name = c.K, Value = c.V }).ToList(),
        }],
    };

    [Fact]
    public async Task CreateTopicsValidatesLikeUpstream()
    {
        await using var f = new HandlerFixture();
        var ok = (await f.Send<CreateTopicsResponse>(Create("t", 2, configs: ("retention.ms", "1000")), 7))!.Topics[0];
        Assert.Equal(0, ok.ErrorCode);
        Assert.Null(ok.ErrorMessage);
        Assert.Equal((2, (short)1), (ok.NumPartitions, ok.ReplicationFactor));
        Assert.Equal(f.Broker.Replicas.GetTopic("t")!.Id, ok.TopicId);
        var retention = ok.Configs!.Single(c => c.Name == "retention.ms");
        Assert.Equal(("1000", (sbyte)1), (retention.Value, retention.ConfigSource));

        Assert.Equal((short)ErrorCode.TopicAlreadyExists, (await f.Send<CreateTopicsResponse>(Create("t"), 7))!.Topics[0].ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidReplicationFactor, (await f.Send<CreateTopicsResponse>(Create("r", rf: 3), 7))!.Topics[0].ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidPartitions, (await f.Send<CreateTopicsResponse>(Create("p", partitions: 0), 7))!.Topics[0].ErrorCode);
        var huge = (await f.Send<CreateTopicsResponse>(Create("huge", partitions: int.MaxValue), 7))!.Topics[0];
        Assert.Equal(((short)ErrorCode.PolicyViolation, "Unable to perform excessively large batch operation."), (huge.ErrorCode, huge.ErrorMessage));
        Assert.Equal((short)ErrorCode.InvalidTopicException, (await f.Send<CreateTopicsResponse>(Create("a b"), 7))!.Topics[0].ErrorCode);
        var badConfig = (await f.Send<CreateTopicsResponse>(Create("c", configs: ("cleanup.policy", "shred")), 7))!.Topics[0];
        Assert.Equal((short)ErrorCode.InvalidConfig, badConfig.ErrorCode);
        Assert.Equal("Invalid value shred for configuration cleanup.policy: String must be one of: compact, delete", badConfig.ErrorMessage);
        Assert.Equal((short)ErrorCode.InvalidRequest, (await f.Send<CreateTopicsResponse>(Create("n", configs: ("retention.ms", null)), 7))!.Topics[0].ErrorCode);

        var validateOnly = (await f.Send<CreateTopicsResponse>(Create("v", validateOnly: true), 7))!.Topics[0];
        Assert.Equal(0, validateOnly.ErrorCode);
        Assert.Null(f.Broker.Replicas.GetTopic("v"));

        var dup = new CreateTopicsRequest { Topics = [Create("d").Topics[0], Create("d").Topics[0]] };
        Assert.All((await f.Send<CreateTopicsResponse>(dup, 4))!.Topics, t => Assert.Equal((short)ErrorCode.InvalidRequest, t.ErrorCode));
    }

    [Fact]
    public async Task TopicNamesCollidingOnDotAndUnderscoreAreRefused()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("a.b");
        var r = (await f.Send<CreateTopicsResponse>(Create("a_b"), 7))!.Topics[0];
        Assert.Equal((short)ErrorCode.InvalidTopicException, r.ErrorCode);
        Assert.Contains("collides", r.ErrorMessage);
    }

    [Fact]
    public async Task DefaultsApplyForMinusOnePartitionsAndReplication()
    {
        await using var f = new HandlerFixture(("num.partitions", "4"));
        var r = (await f.Send<CreateTopicsResponse>(Create("t", -1, -1), 5))!.Topics[0];
        Assert.Equal(0, r.ErrorCode);
        Assert.Equal(4, f.Broker.Replicas.GetTopic("t")!.Partitions.Count);
    }

    [Fact]
    public async Task DeleteTopicsByNameAndId()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("a");
        await f.CreateTopic("b");
        var byName = await f.Send<DeleteTopicsResponse>(new DeleteTopicsRequest { TopicNames = ["a", "zzz"] }, 5);
        Assert.Equal([(short)0, (short)ErrorCode.UnknownTopicOrPartition], byName!.Responses.Select(r => r.ErrorCode));
        Assert.Null(f.Broker.Replicas.GetTopic("a"));
        var id = f.Broker.Replicas.GetTopic("b")!.Id;
        var byId = await f.Send<DeleteTopicsResponse>(new DeleteTopicsRequest { Topics = [new() { TopicId = id }, new() { TopicId = Guid.NewGuid() }] }, 6);
        Assert.Equal(0, byId!.Responses[0].ErrorCode);
        Assert.Equal("b", byId.Responses[0].Name);
        Assert.Equal((short)ErrorCode.UnknownTopicId, byId.Responses[1].ErrorCode);

        await using var g = new HandlerFixture(("delete.topic.enable", "false"));
        await g.CreateTopic("x");
        var disabled = await g.Send<DeleteTopicsResponse>(new DeleteTopicsRequest { TopicNames = ["x"] }, 4);
        Assert.Equal((short)ErrorCode.TopicDeletionDisabled, disabled!.Responses[0].ErrorCode);
        Assert.NotNull(g.Broker.Replicas.GetTopic("x"));
    }

    [Fact]
    public async Task CreatePartitionsGrowsOnly()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t", 2);
        var grow = await f.Send<CreatePartitionsResponse>(new CreatePartitionsRequest { Topics = [new() { Name = "t", Count = 5, Assignments = null }] }, 3);
        Assert.Equal(0, grow!.Results[0].ErrorCode);
        Assert.Equal(5, f.Broker.Replicas.GetTopic("t")!.Partitions.Count);
        var shrink = await f.Send<CreatePartitionsResponse>(new CreatePartitionsRequest { Topics = [new() { Name = "t", Count = 3, Assignments = null }] }, 1);
        Assert.Equal((short)ErrorCode.InvalidPartitions, shrink!.Results[0].ErrorCode);
        var unknown = await f.Send<CreatePartitionsResponse>(new CreatePartitionsRequest { Topics = [new() { Name = "u", Count = 3, Assignments = null }] }, 0);
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, unknown!.Results[0].ErrorCode);
        Assert.Equal(0, (await f.Produce("t", 4, HandlerFixture.Batch("new partition"))).ErrorCode);
    }

    [Fact]
    public async Task DeleteRecordsMovesLogStartAndListOffsetsSeesIt()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t");
        for (int i = 0; i < 5; i++) await f.Produce("t", 0, HandlerFixture.Batch($"m{i}"));
        var r = await f.Send<DeleteRecordsResponse>(new DeleteRecordsRequest
        {
            Topics = [new() { Name = "t", Partitions = [new() { PartitionIndex = 0, Offset = 3 }] }],
        }, 2);
        Assert.Equal((0, 3L), (r!.Topics[0].Partitions[0].ErrorCode, r.Topics[0].Partitions[0].LowWatermark));
        var beyond = await f.Send<DeleteRecordsResponse>(new DeleteRecordsRequest
        {
            Topics = [new() { Name = "t", Partitions = [new() { PartitionIndex = 0, Offset = 99 }] }],
        }, 1);
        Assert.Equal((short)ErrorCode.OffsetOutOfRange, beyond!.Topics[0].Partitions[0].ErrorCode);
        Assert.Equal((short)ErrorCode.OffsetOutOfRange, (await f.Fetch("t", 0, 1)).ErrorCode);
        Assert.Equal(["m3", "m4"], HandlerFixture.Values(await f.Fetch("t", 0, 3)));
        var earliest = await ListOffsets(f, "t", -2, 8);
        Assert.Equal(3, earliest.Offset);
    }

    private static async Task<ListOffsetsResponse.ListOffsetsPartitionResponse> ListOffsets(HandlerFixture f, string topic, long timestamp, short version)
    {
        var r = await f.Send<ListOffsetsResponse>(new ListOffsetsRequest
        {
            ReplicaId = -1,
            Topics = [new() { Name = topic, Partitions = [new() { PartitionIndex = 0, Timestamp = timestamp, MaxNumOffsets = 1 }] }],
        }, version);
        return r!.Topics[0].Partitions[0];
    }

    [Fact]
    public async Task ListOffsetsEarliestLatestTimestampAndMax()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t");
        long t0 = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        await f.Produce("t", 0, RecordBatchBuilder.Build([(null, "a"u8.ToArray())], t0 - 10_000));
        await f.Produce("t", 0, RecordBatchBuilder.Build([(null, "b"u8.ToArray())], t0));
        await f.Produce("t", 0, RecordBatchBuilder.Build([(null, "c"u8.ToArray())], t0 - 5_000));
        Assert.Equal(0, (await ListOffsets(f, "t", -2, 1)).Offset);
        var latest = await ListOffsets(f, "t", -1, 4);
        Assert.Equal((3L, 0), (latest.Offset, latest.LeaderEpoch));
        var byTime = await ListOffsets(f, "t", t0 - 7_000, 2);
        Assert.Equal((1L, t0), (byTime.Offset, byTime.Timestamp));
        var none = await ListOffsets(f, "t", t0 + 60_000, 3);
        Assert.Equal(-1, none.Offset);
        var max = await ListOffsets(f, "t", -3, 7);
        Assert.Equal((1L, t0), (max.Offset, max.Timestamp));
        var v0 = await ListOffsets(f, "t", -1, 0);
        Assert.Equal([3L], v0.OldStyleOffsets);
        var unknown = await f.Send<ListOffsetsResponse>(new ListOffsetsRequest
        {
            Topics = [new() { Name = "nope", Partitions = [new() { PartitionIndex = 0, Timestamp = -1 }] }],
        }, 5);
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, unknown!.Topics[0].Partitions[0].ErrorCode);
    }

    [Fact]
    public async Task OffsetForLeaderEpochAnswersLogEndForCurrentEpoch()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t");
        await f.Produce("t", 0, HandlerFixture.Batch("a", "b"));
        var r = await f.Send<OffsetForLeaderEpochResponse>(new OffsetForLeaderEpochRequest
        {
            ReplicaId = -1,
            Topics = [new() { Topic = "t", Partitions = [new() { Partition = 0, LeaderEpoch = 0, CurrentLeaderEpoch = 0 }, new() { Partition = 0, LeaderEpoch = 5 }] }],
        }, 4);
        Assert.Equal((0, 0, 2L), (r!.Topics[0].Partitions[0].ErrorCode, r.Topics[0].Partitions[0].LeaderEpoch, r.Topics[0].Partitions[0].EndOffset));
        Assert.Equal((-1, -1L), (r.Topics[0].Partitions[1].LeaderEpoch, r.Topics[0].Partitions[1].EndOffset));
        var fenced = await f.Send<OffsetForLeaderEpochResponse>(new OffsetForLeaderEpochRequest
        {
            Topics = [new() { Topic = "t", Partitions = [new() { Partition = 0, LeaderEpoch = 0, CurrentLeaderEpoch = 3 }] }],
        }, 3);
        Assert.Equal((short)ErrorCode.UnknownLeaderEpoch, fenced!.Topics[0].Partitions[0].ErrorCode);
    }

    [Fact]
    public async Task DescribeClusterAndLogDirs()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t", 2);
        await f.Produce("t", 1, HandlerFixture.Batch("abc"));
        var c = await f.Send<DescribeClusterResponse>(new DescribeClusterRequest { IncludeClusterAuthorizedOperations = true }, 1);
        Assert.Equal((0, 1, f.Broker.ClusterId), (c!.ErrorCode, c.ControllerId, c.ClusterId));
        Assert.Equal(1, c.Brokers.Single().BrokerId);
        Assert.NotEqual(int.MinValue, c.ClusterAuthorizedOperations);
        var wrong = await f.Send<DescribeClusterResponse>(new DescribeClusterRequest { EndpointType = 2 }, 1);
        Assert.Equal((short)ErrorCode.MismatchedEndpointType, wrong!.ErrorCode);

        var dirs = await f.Send<DescribeLogDirsResponse>(new DescribeLogDirsRequest { Topics = null }, 4);
        var topic = dirs!.Results.Single().Topics.Single();
        Assert.Equal("t", topic.Name);
        Assert.Equal(2, topic.Partitions.Count);
        Assert.True(topic.Partitions.Single(p => p.PartitionIndex == 1).PartitionSize > 0);
        Assert.Equal(0, topic.Partitions.Single(p => p.PartitionIndex == 0).PartitionSize);
    }
}
