using Samsa.Kafka.Broker.Tests.Handlers;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Tests.Groups;

/// <summary>Streams groups over the wire on one broker: the join reports the missing internal
/// topics, the broker creates them (partition counts and configs from the topology), the next
/// heartbeat gets every task; StreamsGroupDescribe, ListGroups, DescribeGroups and ApiVersions
/// show the group and the APIs as a 4.2 broker does.</summary>
public class StreamsGroupHandlerTests
{
    [Fact]
    public async Task JoinCreatesInternalTopicsThenAssignsTasks()
    {
        await using var f = new HandlerFixture(("offsets.topic.replication.factor", "1"));
        await f.Send<FindCoordinatorResponse>(new FindCoordinatorRequest { Key = "app" }, 3);
        await f.CreateTopic("input", 4);

        var join = await f.Send<StreamsGroupHeartbeatResponse>(new StreamsGroupHeartbeatRequest
        {
            GroupId = "app", MemberId = "m1", MemberEpoch = 0, EndpointInformationEpoch = -1, RebalanceTimeoutMs = 30_000,
            Topology = StreamsGroupTests.Topology(input: "input"), ActiveTasks = [], StandbyTasks = [], WarmupTasks = [],
            ProcessId = "p1", ClientTags = [], UserEndpoint = new() { Host = "localhost", Port = 7070 },
        }, 0);
        Assert.Equal(0, join!.ErrorCode);
        Assert.Equal(("m1", 5000, 10000, 60000), (join.MemberId, join.HeartbeatIntervalMs, join.AcceptableRecoveryLag, join.TaskOffsetIntervalMs));
        Assert.Equal(3, Assert.Single(join.Status!).StatusCode); // MISSING_INTERNAL_TOPICS
        Assert.Empty(join.ActiveTasks!);

        // The broker creates the repartition and changelog topics in the background.
        for (int i = 0; i < 100 && f.Broker.Replicas.GetTopic("app-agg-changelog") is null; i++) await Task.Delay(50);
        Assert.Equal(4, f.Broker.Replicas.GetTopic("app-repartition")!.Partitions.Count);
        Assert.Equal(4, f.Broker.Replicas.GetTopic("app-store-changelog")!.Partitions.Count);
        Assert.Equal("compact", f.Broker.Replicas.GetTopic("app-store-changelog")!.Configs["cleanup.policy"]);
        Assert.Equal("1000", f.Broker.Replicas.GetTopic("app-agg-changelog")!.Configs["min.compaction.lag.ms"]);

        var hb = await f.Send<StreamsGroupHeartbeatResponse>(new StreamsGroupHeartbeatRequest
        {
            GroupId = "app", MemberId = "m1", MemberEpoch = join.MemberEpoch, EndpointInformationEpoch = join.EndpointInformationEpoch,
            ActiveTasks = [], StandbyTasks = [], WarmupTasks = [],
        }, 0);
        Assert.Equal(0, hb!.ErrorCode);
        Assert.Empty(hb.Status!);
        Assert.Equal(["0", "1"], hb.ActiveTasks!.Select(t => t.SubtopologyId).ToArray());
        Assert.All(hb.ActiveTasks!, t => Assert.Equal([0, 1, 2, 3], t.Partitions));
        var ep = Assert.Single(hb.PartitionsByUserEndpoint!);
        Assert.Equal(("localhost", (ushort)7070), (ep.UserEndpoint.Host, ep.UserEndpoint.Port));
        Assert.Contains(ep.ActivePartitions, p => p.Topic == "input" && p.Partitions.SequenceEqual([0, 1, 2, 3]));

        var d = await f.Send<StreamsGroupDescribeResponse>(new StreamsGroupDescribeRequest { GroupIds = ["app", "nope", ""], IncludeAuthorizedOperations = true }, 0);
        var g = d!.Groups[0];
        Assert.Equal((0, "Stable", hb.MemberEpoch), (g.ErrorCode, g.GroupState, g.GroupEpoch));
        Assert.Equal(2, g.Topology!.Subtopologies!.Count);
        Assert.Equal(4, g.Topology.Subtopologies[1].RepartitionSourceTopics.Single().Partitions);
        var m = Assert.Single(g.Members);
        Assert.Equal(("m1", "p1", 8), (m.MemberId, m.ProcessId, m.Assignment.ActiveTasks.Sum(t => t.Partitions.Count)));
        Assert.NotEqual(int.MinValue, g.AuthorizedOperations);
        Assert.Equal((short)ErrorCode.GroupIdNotFound, d.Groups[1].ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidGroupId, d.Groups[2].ErrorCode);

        var listed = await f.Send<ListGroupsResponse>(new ListGroupsRequest { TypesFilter = ["streams"] }, 5);
        var lg = Assert.Single(listed!.Groups);
        Assert.Equal(("app", "streams", "streams", "Stable"), (lg.GroupId, lg.GroupType, lg.ProtocolType, lg.GroupState));
        var dg = await f.Send<DescribeGroupsResponse>(new DescribeGroupsRequest { Groups = ["app"] }, 6);
        Assert.Equal((short)ErrorCode.GroupIdNotFound, dg!.Groups[0].ErrorCode);

        // Offsets with the member epoch (OffsetCommit v9+), then OffsetFetch v9 with the member.
        var commit = await f.Send<OffsetCommitResponse>(new OffsetCommitRequest
        {
            GroupId = "app", MemberId = "m1", GenerationIdOrMemberEpoch = hb.MemberEpoch,
            Topics = [new() { Name = "input", Partitions = [new() { PartitionIndex = 0, CommittedOffset = 5 }] }],
        }, 9);
        Assert.Equal(0, commit!.Topics[0].Partitions[0].ErrorCode);
        var stale = await f.Send<OffsetCommitResponse>(new OffsetCommitRequest
        {
            GroupId = "app", MemberId = "m1", GenerationIdOrMemberEpoch = hb.MemberEpoch - 1,
            Topics = [new() { Name = "input", Partitions = [new() { PartitionIndex = 0, CommittedOffset = 6 }] }],
        }, 9);
        Assert.Equal((short)ErrorCode.StaleMemberEpoch, stale!.Topics[0].Partitions[0].ErrorCode);
    }

    [Fact]
    public async Task ApiVersionsAdvertisesStreamsApisAndFeature()
    {
        await using var f = new HandlerFixture();
        var r = await f.Send<ApiVersionsResponse>(new ApiVersionsRequest { ClientSoftwareName = "t", ClientSoftwareVersion = "1" }, 4);
        var keys = r!.ApiKeys.ToDictionary(k => k.ApiKey);
        Assert.Equal((0, 0), (keys[88].MinVersion, keys[88].MaxVersion));
        Assert.Equal((0, 0), (keys[89].MinVersion, keys[89].MaxVersion));
        var streams = Assert.Single(r.FinalizedFeatures, x => x.Name == "streams.version");
        Assert.Equal(1, streams.MaxVersionLevel);
    }
}
