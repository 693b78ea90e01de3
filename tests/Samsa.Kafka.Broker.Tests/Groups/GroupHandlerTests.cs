using Samsa.Kafka.Broker.Tests.Handlers;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Tests.Groups;

/// <summary>Group APIs through the wire encoding of each version (no timers run here: only answers
/// that do not wait for a rebalance).</summary>
public class GroupHandlerTests
{
    private static async Task<FindCoordinatorResponse> Find(HandlerFixture f, short version, sbyte keyType, params string[] keys) =>
        (await f.Send<FindCoordinatorResponse>(version >= 4
            ? new FindCoordinatorRequest { KeyType = keyType, CoordinatorKeys = keys.ToList() }
            : new FindCoordinatorRequest { KeyType = keyType, Key = keys[0] }, version))!;

    [Fact]
    public async Task FindCoordinatorCreatesOffsetsTopicAndAnswersThisBroker()
    {
        await using var f = new HandlerFixture(("offsets.topic.replication.factor", "1"), ("offsets.topic.num.partitions", "7"));
        var v0 = await Find(f, 0, 0, "g");
        Assert.Equal((0, 1, "127.0.0.1", 9092), (v0.ErrorCode, v0.NodeId, v0.Host, v0.Port));
        Assert.Equal(7, f.Broker.Replicas.GetTopic("__consumer_offsets")!.Partitions.Count);
        Assert.Equal("compact", f.Broker.Replicas.GetTopic("__consumer_offsets")!.Configs["cleanup.policy"]);
        var v4 = await Find(f, 4, 0, "a", "b");
        Assert.Equal(["a", "b"], v4.Coordinators.Select(c => c.Key).ToArray());
        Assert.All(v4.Coordinators, c => Assert.Equal((0, 1), (c.ErrorCode, c.NodeId)));
        // A share key (type 2, KIP-932) must read groupId:topicId:partition; anything else is refused.
        var share = await Find(f, 6, 2, "s");
        Assert.Equal((short)ErrorCode.InvalidRequest, share.Coordinators.Single().ErrorCode);
    }

    [Fact]
    public async Task OffsetsTopicNeedsEnoughBrokers()
    {
        await using var f = new HandlerFixture(); // offsets.topic.replication.factor defaults to 3
        var r = await Find(f, 2, 0, "g");
        Assert.Equal((short)ErrorCode.CoordinatorNotAvailable, r.ErrorCode);
        Assert.Null(f.Broker.Replicas.GetTopic("__consumer_offsets"));
        // Without the topic, group requests are not for this coordinator.
        var hb = await f.Send<HeartbeatResponse>(new HeartbeatRequest { GroupId = "g", MemberId = "m", GenerationId = 1 }, 4);
        Assert.Equal((short)ErrorCode.NotCoordinator, hb!.ErrorCode);
    }

    [Fact]
    public async Task JoinGroupValidatesTimeoutsAndHandsOutMemberIds()
    {
        await using var f = new HandlerFixture(("offsets.topic.replication.factor", "1"));
        await Find(f, 3, 0, "g");
        JoinGroupRequest Join(int session, int rebalance) => new()
        {
            GroupId = "g", SessionTimeoutMs = session, RebalanceTimeoutMs = rebalance, MemberId = "", ProtocolType = "consumer",
            Protocols = [new JoinGroupRequest.JoinGroupRequestProtocol { Name = "range", Metadata = [0, 0, 0, 0, 0, 0] }],
        };
        var tooLong = await f.Send<JoinGroupResponse>(Join(int.MaxValue, 1000), 5);
        Assert.Equal((short)ErrorCode.InvalidSessionTimeout, tooLong!.ErrorCode);
        var tooShort = await f.Send<JoinGroupResponse>(Join(0, 1000), 2);
        Assert.Equal((short)ErrorCode.InvalidSessionTimeout, tooShort!.ErrorCode);
        var negative = await f.Send<JoinGroupResponse>(Join(10_000, -5), 7);
        Assert.Equal((short)ErrorCode.InvalidRequest, negative!.ErrorCode);
        var first = await f.Send<JoinGroupResponse>(Join(10_000, int.MaxValue), 9);
        Assert.Equal((short)ErrorCode.MemberIdRequired, first!.ErrorCode);
        Assert.Matches("-[0-9a-f]{8}-[0-9a-f]{4}-", first.MemberId); // client id + "-" + uuid
        Assert.Null(first.ProtocolName); // v7+: nullable
        var old = await f.Send<JoinGroupResponse>(Join(10_000, 1000), 6);
        Assert.Equal((short)ErrorCode.MemberIdRequired, old!.ErrorCode);
        Assert.Equal("", old.ProtocolName); // before v7 the name is not nullable
    }

    [Fact]
    public async Task OffsetCommitAndFetchAcrossVersions()
    {
        await using var f = new HandlerFixture(("offsets.topic.replication.factor", "1"));
        await f.CreateTopic("t", 2);
        await Find(f, 0, 0, "g");
        var commit = await f.Send<OffsetCommitResponse>(new OffsetCommitRequest
        {
            GroupId = "g", GenerationIdOrMemberEpoch = -1, MemberId = "",
            Topics =
            [
                new OffsetCommitRequest.OffsetCommitRequestTopic { Name = "t", Partitions =
                [
                    new OffsetCommitRequest.OffsetCommitRequestPartition { PartitionIndex = 0, CommittedOffset = 17, CommittedLeaderEpoch = 4, CommittedMetadata = "hello" },
                    new OffsetCommitRequest.OffsetCommitRequestPartition { PartitionIndex = 9, CommittedOffset = 1 },
                ]},
                new OffsetCommitRequest.OffsetCommitRequestTopic { Name = "missing", Partitions = [new OffsetCommitRequest.OffsetCommitRequestPartition { PartitionIndex = 0, CommittedOffset = 1 }] },
            ],
        }, 8);
        Assert.Equal([0, (short)ErrorCode.UnknownTopicOrPartition], commit!.Topics[0].Partitions.Select(p => p.ErrorCode).ToArray());
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, commit.Topics[1].Partitions[0].ErrorCode);

        var v1 = await f.Send<OffsetFetchResponse>(new OffsetFetchRequest
        {
            GroupId = "g", Topics = [new OffsetFetchRequest.OffsetFetchRequestTopic { Name = "t", PartitionIndexes = [0, 1] }],
        }, 1);
        Assert.Equal([17L, -1L], v1!.Topics[0].Partitions.Select(p => p.CommittedOffset).ToArray());
        Assert.Equal("hello", v1.Topics[0].Partitions[0].Metadata);

        var all = await f.Send<OffsetFetchResponse>(new OffsetFetchRequest { GroupId = "g", Topics = null }, 7);
        var p0 = all!.Topics.Single().Partitions.Single();
        Assert.Equal((17L, 4, "hello"), (p0.CommittedOffset, p0.CommittedLeaderEpoch, p0.Metadata));

        var multi = await f.Send<OffsetFetchResponse>(new OffsetFetchRequest
        {
            Groups =
            [
                new OffsetFetchRequest.OffsetFetchRequestGroup { GroupId = "g", Topics = null },
                new OffsetFetchRequest.OffsetFetchRequestGroup { GroupId = "other", Topics = [new OffsetFetchRequest.OffsetFetchRequestTopics { Name = "t", PartitionIndexes = [0] }] },
            ],
        }, 8);
        Assert.Equal(17L, multi!.Groups[0].Topics.Single().Partitions.Single().CommittedOffset);
        Assert.Equal(-1L, multi.Groups[1].Topics.Single().Partitions.Single().CommittedOffset);

        var listed = await f.Send<ListGroupsResponse>(new ListGroupsRequest { StatesFilter = ["Empty"] }, 4);
        Assert.Equal(("g", "Empty"), (listed!.Groups.Single().GroupId, listed.Groups.Single().GroupState));
        var described = await f.Send<DescribeGroupsResponse>(new DescribeGroupsRequest { Groups = ["g", "nope"], IncludeAuthorizedOperations = true }, 5);
        Assert.Equal(["Empty", "Dead"], described!.Groups.Select(g => g.GroupState).ToArray());
        Assert.NotEqual(int.MinValue, described.Groups[0].AuthorizedOperations);

        var deleted = await f.Send<OffsetDeleteResponse>(new OffsetDeleteRequest
        {
            GroupId = "g", Topics = [new OffsetDeleteRequest.OffsetDeleteRequestTopic { Name = "t", Partitions = [new OffsetDeleteRequest.OffsetDeleteRequestPartition { PartitionIndex = 0 }] }],
        }, 0);
        Assert.Equal(0, deleted!.Topics.Single().Partitions.Single().ErrorCode);
        var groups = await f.Send<DeleteGroupsResponse>(new DeleteGroupsRequest { GroupsNames = ["g", "g", "nope"] }, 2);
        Assert.Equal([0, (short)ErrorCode.GroupIdNotFound], groups!.Results.Select(r => r.ErrorCode).ToArray());
    }

    /// <summary>KIP-848 over the wire: ConsumerGroupHeartbeat v1 joins with the client's member id and
    /// gets the topic's partitions by id; ConsumerGroupDescribe v1 shows it; ListGroups v5 types it
    /// "consumer"; DescribeGroups v6 says it is not a classic group.</summary>
    [Fact]
    public async Task ConsumerGroupHeartbeatAndDescribeOverTheWire()
    {
        await using var f = new HandlerFixture(("offsets.topic.replication.factor", "1"));
        await Find(f, 3, 0, "cg");
        var created = await f.Send<CreateTopicsResponse>(new CreateTopicsRequest { TimeoutMs = 5000, Topics = [new() { Name = "t", NumPartitions = 3, ReplicationFactor = 1 }] }, 5);
        Assert.Equal(0, created!.Topics[0].ErrorCode);
        var topicId = f.Broker.Replicas.GetTopic("t")!.Id;
        var hb = await f.Send<ConsumerGroupHeartbeatResponse>(new ConsumerGroupHeartbeatRequest
        {
            GroupId = "cg", MemberId = "m-1", MemberEpoch = 0, RebalanceTimeoutMs = 30_000, SubscribedTopicNames = ["t"], TopicPartitions = [],
        }, 1);
        Assert.Equal((0, "m-1", 1), (hb!.ErrorCode, hb.MemberId, hb.MemberEpoch));
        var tp = Assert.Single(hb.Assignment!.TopicPartitions);
        Assert.Equal(topicId, tp.TopicId);
        Assert.Equal([0, 1, 2], tp.Partitions);
        // v1 needs the client's member id.
        var noId = await f.Send<ConsumerGroupHeartbeatResponse>(new ConsumerGroupHeartbeatRequest
        {
            GroupId = "cg", MemberId = "", MemberEpoch = 0, RebalanceTimeoutMs = 30_000, SubscribedTopicNames = ["t"], TopicPartitions = [],
        }, 1);
        Assert.Equal((short)ErrorCode.InvalidRequest, noId!.ErrorCode);

        var d = await f.Send<ConsumerGroupDescribeResponse>(new ConsumerGroupDescribeRequest { GroupIds = ["cg", "nope"], IncludeAuthorizedOperations = true }, 1);
        var g = d!.Groups[0];
        Assert.Equal((0, "Stable", 1, 1, "uniform"), (g.ErrorCode, g.GroupState, g.GroupEpoch, g.AssignmentEpoch, g.AssignorName));
        var m = Assert.Single(g.Members);
        Assert.Equal(("m-1", 1, (sbyte)1), (m.MemberId, m.MemberEpoch, m.MemberType));
        Assert.Equal("t", Assert.Single(m.Assignment.TopicPartitions).TopicName);
        Assert.Equal((short)ErrorCode.GroupIdNotFound, d.Groups[1].ErrorCode);

        var listed = await f.Send<ListGroupsResponse>(new ListGroupsRequest { TypesFilter = ["consumer"] }, 5);
        var lg = Assert.Single(listed!.Groups);
        Assert.Equal(("cg", "consumer", "consumer", "Stable"), (lg.GroupId, lg.GroupType, lg.ProtocolType, lg.GroupState));
        var v6 = await f.Send<DescribeGroupsResponse>(new DescribeGroupsRequest { Groups = ["cg"] }, 6);
        Assert.Equal((short)ErrorCode.GroupIdNotFound, v6!.Groups[0].ErrorCode);
        Assert.Equal("Group cg is not a classic group.", v6.Groups[0].ErrorMessage);
        var v5 = await f.Send<DescribeGroupsResponse>(new DescribeGroupsRequest { Groups = ["cg"] }, 5);
        Assert.Equal((0, "Dead"), (v5!.Groups[0].ErrorCode, v5.Groups[0].GroupState));

        // Offsets: the member epoch is the generation id (OffsetCommit v9); a stale one is refused.
        var stale = await f.Send<OffsetCommitResponse>(new OffsetCommitRequest
        {
            GroupId = "cg", MemberId = "m-1", GenerationIdOrMemberEpoch = 0,
            Topics = [new() { Name = "t", Partitions = [new() { PartitionIndex = 0, CommittedOffset = 5 }] }],
        }, 9);
        Assert.Equal((short)ErrorCode.StaleMemberEpoch, stale!.Topics[0].Partitions[0].ErrorCode);
        var ok = await f.Send<OffsetCommitResponse>(new OffsetCommitRequest
        {
            GroupId = "cg", MemberId = "m-1", GenerationIdOrMemberEpoch = 1,
            Topics = [new() { Name = "t", Partitions = [new() { PartitionIndex = 0, CommittedOffset = 5 }] }],
        }, 9);
        Assert.Equal(0, ok!.Topics[0].Partitions[0].ErrorCode);
        var fetched = await f.Send<OffsetFetchResponse>(new OffsetFetchRequest
        {
            Groups = [new() { GroupId = "cg", MemberId = "m-1", MemberEpoch = 7, Topics = [new() { Name = "t", PartitionIndexes = [0] }] }],
        }, 9);
        Assert.Equal((short)ErrorCode.StaleMemberEpoch, fetched!.Groups[0].ErrorCode);
    }
}
