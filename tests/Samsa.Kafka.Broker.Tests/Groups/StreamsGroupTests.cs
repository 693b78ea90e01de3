using Samsa.Kafka.Broker.Groups;
using Samsa.Kafka.Broker.Groups.Streams;
using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Primitives;

namespace Samsa.Kafka.Broker.Tests.Groups;

/// <summary>
/// KIP-1071 streams groups on the coordinator state machine, driven the way a Streams client
/// drives them: every member heartbeats, reports the tasks it owns and takes the tasks it is given.
/// Checked at every step: an active task is never owned by two members, a standby is never on
/// the process that runs the task actively; tasks move only after their holder revoked them.
/// </summary>
public class StreamsGroupTests
{
    private static readonly Guid InputId = Guid.Parse("00000000-0000-0000-0000-00000000aa01");

    /// <summary>Sub-topology 0 reads "input" (6 partitions) into a store and writes a repartition
    /// topic; sub-topology 1 reads the repartition topic into an aggregate store.</summary>
    public static StreamsGroupHeartbeatRequest.TopologyData Topology(int epoch = 0, string input = "input") => new()
    {
        Epoch = epoch,
        Subtopologies =
        [
            new()
            {
                SubtopologyId = "0", SourceTopics = [input], RepartitionSinkTopics = ["app-repartition"],
                StateChangelogTopics = [new() { Name = "app-store-changelog" }],
            },
            new()
            {
                SubtopologyId = "1", RepartitionSourceTopics = [new() { Name = "app-repartition" }],
                StateChangelogTopics = [new() { Name = "app-agg-changelog", TopicConfigs = [new() { Key = "min.compaction.lag.ms", Value = "1000" }] }],
            },
        ],
    };

    public sealed class Harness
    {
        public readonly GroupHarness H;
        public List<TopicInfo> Topics = [new("input", InputId, 6)];
        public Harness(int standbys = 0, GroupHarness? reuse = null)
        {
            H = reuse ?? new GroupHarness(new GroupCoordinatorConfig { OffsetsTopicPartitions = 4, StreamsGroupNumStandbyReplicas = standbys });
            H.Coordinator.TopicSource = () => Topics;
        }
        public GroupCoordinator C => H.Coordinator;

        public void CreateInternalTopics()
        {
            int i = 0;
            foreach (var n in new[] { "app-repartition", "app-store-changelog", "app-agg-changelog" })
                if (Topics.All(t => t.Name != n)) Topics.Add(new(n, Guid.Parse($"00000000-0000-0000-0000-0000000bb0{++i:D2}"), 6));
        }

        public StreamsHeartbeatResult Join(string member, string process, string? instance = null, int rebalanceTimeout = 30_000,
            StreamsGroupHeartbeatRequest.TopologyData? topology = null, (string, ushort)? endpoint = null, string group = "app") =>
            C.StreamsGroupHeartbeat(new StreamsGroupHeartbeatRequest
            {
                GroupId = group, MemberId = member, MemberEpoch = 0, EndpointInformationEpoch = -1, InstanceId = instance,
                RebalanceTimeoutMs = rebalanceTimeout, Topology = topology ?? Topology(), ActiveTasks = [], StandbyTasks = [], WarmupTasks = [],
                ProcessId = process, ClientTags = [],
                UserEndpoint = endpoint is { } e ? new StreamsGroupHeartbeatRequest.Endpoint { Host = e.Item1, Port = e.Item2 } : null,
            }, "client-" + member, "/127.0.0.1");

        public StreamsHeartbeatResult Beat(string member, int epoch, TaskAssignment? owned, string? instance = null, string group = "app",
            int endpointEpoch = -1, bool shutdown = false) =>
            C.StreamsGroupHeartbeat(new StreamsGroupHeartbeatRequest
            {
                GroupId = group, MemberId = member, MemberEpoch = epoch, EndpointInformationEpoch = endpointEpoch, InstanceId = instance,
                ActiveTasks = owned is null ? null : Ids(owned.Active), StandbyTasks = owned is null ? null : Ids(owned.Standby),
                WarmupTasks = owned is null ? null : Ids(owned.Warmup), ShutdownApplication = shutdown,
            }, "client-" + member, "/127.0.0.1");

        private static List<StreamsGroupHeartbeatRequest.TaskIds> Ids(TaskSet s) =>
            s.Subtopologies.Select(x => new StreamsGroupHeartbeatRequest.TaskIds { SubtopologyId = x, Partitions = s.PartitionsOf(x).ToList() }).ToList();
    }

    /// <summary>A Streams client: it owns what the last assignment gave it and reports it.</summary>
    public sealed class SimMember(Harness h, string id, string process, string? instance = null)
    {
        public readonly string Id = id, Process = process;
        public int Epoch;
        public TaskAssignment Owned = new();
        public bool Joined;

        public StreamsHeartbeatResult Step()
        {
            var r = Joined ? h.Beat(Id, Epoch, Owned, instance) : h.Join(Id, Process, instance);
            Assert.Equal(ErrorCode.None, r.Error);
            Joined = true;
            Epoch = r.MemberEpoch;
            if (r.Assignment is { } a) Owned = a;
            return r;
        }
    }

    /// <summary>No active task owned twice; no standby on a process that runs the task actively.</summary>
    internal static void AssertSafe(IEnumerable<SimMember> members)
    {
        var list = members.ToList();
        var active = new Dictionary<(string, int), string>();
        foreach (var m in list)
            foreach (var t in m.Owned.Active.All())
                Assert.True(active.TryAdd(t, m.Id), $"active task {t} owned by {active.GetValueOrDefault(t)} and {m.Id}");
        foreach (var m in list)
            foreach (var t in m.Owned.Standby.All())
            {
                Assert.False(m.Owned.Active.Contains(t.Subtopology, t.Partition), $"{m.Id} holds {t} as active and standby");
                if (active.TryGetValue(t, out var owner))
                    Assert.NotEqual(m.Process, list.Single(x => x.Id == owner).Process);
            }
    }

    private static void Converge(IReadOnlyList<SimMember> members, int rounds = 10)
    {
        for (int i = 0; i < rounds; i++)
            foreach (var m in members)
            {
                m.Step();
                AssertSafe(members);
            }
    }

    [Fact]
    public void MissingSourceTopicsKeepTheGroupNotReady()
    {
        var h = new Harness();
        var r = h.Join("m1", "p1", topology: Topology(input: "nope"));
        Assert.Equal(ErrorCode.None, r.Error);
        var status = Assert.Single(r.Statuses);
        Assert.Equal(TopologyConfigurator.MissingSourceTopics, status.Code);
        Assert.Contains("nope", status.Detail);
        Assert.True(r.Assignment!.IsEmpty);
        Assert.Equal(StreamsGroupState.NotReady, h.C.GetStreamsGroup("app")!.State);
    }

    [Fact]
    public void MissingInternalTopicsAreListedForCreationThenTasksAreAssigned()
    {
        var h = new Harness();
        var r = h.Join("m1", "p1");
        var status = Assert.Single(r.Statuses);
        Assert.Equal(TopologyConfigurator.MissingInternalTopics, status.Code);
        Assert.True(r.Assignment!.IsEmpty);
        var create = r.TopicsToCreate.ToDictionary(t => t.Name);
        Assert.Equal(["app-agg-changelog", "app-repartition", "app-store-changelog"], create.Keys.Order().ToArray());
        // The repartition topic takes the task count of its writer; changelogs that of their sub-topology.
        Assert.All(create.Values, t => Assert.Equal(6, t.Partitions));
        Assert.Equal("compact", create["app-store-changelog"].Configs["cleanup.policy"]);
        Assert.Equal("1000", create["app-agg-changelog"].Configs["min.compaction.lag.ms"]);
        Assert.Equal("delete", create["app-repartition"].Configs["cleanup.policy"]);
        Assert.Equal(StreamsGroupState.NotReady, h.C.GetStreamsGroup("app")!.State);

        h.CreateInternalTopics();
        var r2 = h.Beat("m1", r.MemberEpoch, r.Assignment);
        Assert.Empty(r2.Statuses);
        Assert.True(r2.MemberEpoch > r.MemberEpoch);
        Assert.Equal(12, r2.Assignment!.Active.Count);
        Assert.Equal([0, 1, 2, 3, 4, 5], r2.Assignment.Active.PartitionsOf("1").ToArray());
        Assert.Equal(StreamsGroupState.Stable, h.C.GetStreamsGroup("app")!.State);
    }

    [Fact]
    public void IncorrectlyPartitionedInternalTopicIsReported()
    {
        var h = new Harness();
        h.CreateInternalTopics();
        h.Topics[1] = h.Topics[1] with { Partitions = 3 }; // app-repartition
        var r = h.Join("m1", "p1");
        var status = Assert.Single(r.Statuses);
        Assert.Equal(TopologyConfigurator.IncorrectlyPartitionedTopics, status.Code);
        Assert.Contains("app-repartition", status.Detail);
    }

    [Fact]
    public void CopartitionedSourcesMustAgree()
    {
        var h = new Harness();
        h.Topics.Add(new("other", Guid.NewGuid(), 4));
        var topo = new StreamsGroupHeartbeatRequest.TopologyData
        {
            Subtopologies = [new() { SubtopologyId = "0", SourceTopics = ["input", "other"], CopartitionGroups = [new() { SourceTopics = [0, 1] }] }],
        };
        var r = h.Join("m1", "p1", topology: topo);
        Assert.Equal(TopologyConfigurator.IncorrectlyPartitionedTopics, Assert.Single(r.Statuses).Code);
    }

    [Fact]
    public void ThreeMembersGetEveryActiveTaskExactlyOnceWithStandbysElsewhere()
    {
        var h = new Harness(standbys: 1);
        h.CreateInternalTopics();
        var a = new SimMember(h, "a", "pa");
        a.Step();
        Assert.Equal(12, a.Owned.Active.Count);
        Assert.True(a.Owned.Standby.IsEmpty); // no other process for a standby copy
        var b = new SimMember(h, "b", "pb");
        var c = new SimMember(h, "c", "pc");
        var all = new[] { a, b, c };
        b.Step();
        AssertSafe(all);
        c.Step();
        AssertSafe(all);
        Converge(all);

        var group = h.C.GetStreamsGroup("app")!;
        Assert.Equal(StreamsGroupState.Stable, group.State);
        Assert.All(all, m => Assert.Equal(group.AssignmentEpoch, m.Epoch));
        Assert.All(all, m => Assert.Equal(4, m.Owned.Active.Count));
        // 12 stateful tasks, one standby copy each, none where the task is active.
        Assert.Equal(12, all.Sum(m => m.Owned.Standby.Count));
        var everyActive = all.SelectMany(m => m.Owned.Active.All()).ToHashSet();
        Assert.Equal(12, everyActive.Count);
        Assert.Equal(everyActive, all.SelectMany(m => m.Owned.Standby.All()).ToHashSet());
    }

    [Fact]
    public void AJoinMovesTasksOnlyAfterTheHolderRevoked()
    {
        var h = new Harness();
        h.CreateInternalTopics();
        var a = new SimMember(h, "a", "pa");
        a.Step();
        var b = new SimMember(h, "b", "pb");
        var rb = b.Step();
        // b's target is half of a's tasks, but a still holds them: b gets nothing yet.
        Assert.True(b.Owned.Active.IsEmpty);
        Assert.Equal(StreamsGroupState.Reconciling, h.C.GetStreamsGroup("app")!.State);
        var ra = a.Step(); // a is told to revoke: it keeps its epoch
        Assert.Equal(1, ra.MemberEpoch);
        Assert.Equal(StreamsMemberState.UnrevokedTasks, h.C.GetStreamsGroup("app")!.Get("a")!.State);
        Assert.Equal(6, a.Owned.Active.Count);
        b.Step();
        AssertSafe([a, b]);
        a.Step(); // a confirms: moves to the new epoch
        Assert.Equal(rb.MemberEpoch, a.Epoch);
        b.Step();
        Assert.Equal(6, b.Owned.Active.Count);
        Assert.False(a.Owned.Active.Overlaps(b.Owned.Active));
        Assert.Equal(StreamsGroupState.Stable, h.C.GetStreamsGroup("app")!.State);
    }

    [Fact]
    public void LeaveAndSessionTimeoutGiveTasksToTheOthers()
    {
        var h = new Harness();
        h.CreateInternalTopics();
        var a = new SimMember(h, "a", "pa");
        var b = new SimMember(h, "b", "pb");
        var c = new SimMember(h, "c", "pc");
        Converge([a, b, c]);
        Assert.Equal(-1, h.C.StreamsGroupHeartbeat(new StreamsGroupHeartbeatRequest { GroupId = "app", MemberId = "c", MemberEpoch = -1 }, "x", "y").MemberEpoch);
        Converge([a, b]);
        Assert.Equal(12, a.Owned.Active.Count + b.Owned.Active.Count);
        Assert.Equal(6, a.Owned.Active.Count);

        // b stops heartbeating: after group.streams.session.timeout.ms it is removed.
        h.H.Advance(30_000);
        a.Step();
        h.H.Advance(20_000);
        Assert.Null(h.C.GetStreamsGroup("app")!.Get("b"));
        Converge([a]);
        Assert.Equal(12, a.Owned.Active.Count);
    }

    [Fact]
    public void AMemberThatDoesNotRevokeWithinTheRebalanceTimeoutIsRemoved()
    {
        var h = new Harness();
        h.CreateInternalTopics();
        var a = new SimMember(h, "a", "pa");
        a.Step();
        h.Join("b", "pb", rebalanceTimeout: 1000);
        var stubborn = a.Owned;
        a.Step(); // told to revoke
        a.Owned = stubborn; // but keeps everything
        h.Beat("a", a.Epoch, stubborn);
        h.Beat("b", 2, new TaskAssignment());
        h.H.Advance(30_000 + 1);
        Assert.Null(h.C.GetStreamsGroup("app")!.Get("a"));
    }

    [Fact]
    public void StaticMemberRejoinsUnderANewIdWithItsTasks()
    {
        var h = new Harness();
        h.CreateInternalTopics();
        var a = new SimMember(h, "a1", "pa", instance: "ia");
        var b = new SimMember(h, "b", "pb");
        Converge([a, b]);
        var tasks = a.Owned.Active.Clone();
        int epoch = a.Epoch;
        var leave = h.Beat("a1", -2, null, instance: "ia");
        Assert.Equal(ErrorCode.None, leave.Error);
        Assert.Equal(-2, leave.MemberEpoch);
        var back = h.Join("a2", "pa", instance: "ia");
        Assert.Equal(ErrorCode.None, back.Error);
        Assert.Equal(epoch, back.MemberEpoch);
        Assert.True(back.Assignment!.Active.SetEquals(tasks));
        Assert.Null(h.C.GetStreamsGroup("app")!.Get("a1"));
        // Another incarnation while this one is in the group is refused.
        var dup = h.Join("a4", "pa", instance: "ia");
        Assert.Equal(ErrorCode.UnreleasedInstanceId, dup.Error);
    }

    [Fact]
    public void RequestsAreValidatedAsUpstream()
    {
        var h = new Harness();
        h.CreateInternalTopics();
        Assert.Equal(ErrorCode.InvalidRequest, h.Join("", "p").Error);
        var noTopology = h.C.StreamsGroupHeartbeat(new StreamsGroupHeartbeatRequest
        {
            GroupId = "app", MemberId = "m", MemberEpoch = 0, RebalanceTimeoutMs = 1000, ActiveTasks = [], StandbyTasks = [], WarmupTasks = [], ProcessId = "p",
        }, "c", "h");
        Assert.Equal(ErrorCode.InvalidRequest, noTopology.Error);
        var regex = Topology();
        regex.Subtopologies[0].SourceTopicRegex = ["in.*"];
        Assert.Equal(ErrorCode.InvalidRequest, h.Join("m", "p", topology: regex).Error);
        var badRepartition = new StreamsGroupHeartbeatRequest.TopologyData
        {
            Subtopologies = [new() { SubtopologyId = "0", RepartitionSourceTopics = [new() { Name = "orphan" }] }],
        };
        Assert.Equal(ErrorCode.StreamsInvalidTopology, h.Join("m", "p", topology: badRepartition).Error);
        Assert.Equal(ErrorCode.GroupIdNotFound, h.Beat("m", 3, null, group: "unknown").Error);

        var m = h.Join("m", "p");
        Assert.Equal(ErrorCode.FencedMemberEpoch, h.Beat("m", m.MemberEpoch + 5, m.Assignment).Error);
        Assert.Equal(ErrorCode.UnknownMemberId, h.Beat("nobody", 1, null).Error);
        // Same topology epoch, other topology: refused; an older epoch gets STALE_TOPOLOGY.
        var changed = Topology();
        changed.Subtopologies.RemoveAt(1);
        Assert.Equal(ErrorCode.StreamsInvalidTopologyEpoch, h.Join("n", "p", topology: changed).Error);
        var newer = h.Join("n", "p", topology: Topology(epoch: 1));
        Assert.Equal(ErrorCode.None, newer.Error);
        var stale = h.Beat("m", h.C.GetStreamsGroup("app")!.Get("m")!.MemberEpoch, null);
        Assert.Contains(stale.Statuses, s => s.Code == TopologyConfigurator.StaleTopology);
    }

    [Fact]
    public void ShutdownRequestReachesEveryMember()
    {
        var h = new Harness();
        h.CreateInternalTopics();
        var a = new SimMember(h, "a", "pa");
        var b = new SimMember(h, "b", "pb");
        Converge([a, b], 3);
        var r = h.Beat("a", a.Epoch, null, shutdown: true);
        Assert.Contains(r.Statuses, s => s.Code == TopologyConfigurator.ShutdownApplication);
        Assert.Contains(h.Beat("b", b.Epoch, null).Statuses, s => s.Code == TopologyConfigurator.ShutdownApplication);
    }

    [Fact]
    public void EndpointsMapToTheirTasksPartitions()
    {
        var h = new Harness();
        h.CreateInternalTopics();
        var a = h.Join("a", "pa", endpoint: ("host-a", 8080));
        Assert.Equal(ErrorCode.None, a.Error);
        var ep = Assert.Single(a.PartitionsByEndpoint!);
        Assert.Equal(("host-a", (ushort)8080), (ep.Host, ep.Port));
        Assert.Equal(["app-repartition", "input"], ep.Active.Select(x => x.Topic).ToArray());
        Assert.All(ep.Active, x => Assert.Equal([0, 1, 2, 3, 4, 5], x.Partitions));
        // A client that has the current epoch gets no map.
        Assert.Null(h.Beat("a", a.MemberEpoch, null, endpointEpoch: a.EndpointInformationEpoch).PartitionsByEndpoint);
    }

    [Fact]
    public void OffsetsListDescribeAndDeleteTreatItAsAStreamsGroup()
    {
        var h = new Harness();
        h.CreateInternalTopics();
        var a = new SimMember(h, "a", "pa");
        a.Step();
        var tp = new TopicPartition("input", 0);
        var ok = h.C.CommitOffsets("app", "a", null, a.Epoch, [new OffsetCommitEntry(tp, 7, -1, null)]).Partitions;
        Assert.Equal(ErrorCode.None, ok[tp]);
        var stale = h.C.CommitOffsets("app", "a", null, a.Epoch - 1, [new OffsetCommitEntry(tp, 8, -1, null)]).Partitions;
        Assert.Equal(ErrorCode.StaleMemberEpoch, stale[tp]);
        Assert.Equal(ErrorCode.UnknownMemberId, h.C.CommitOffsets("app", "zz", null, 1, [new OffsetCommitEntry(tp, 8, -1, null)]).Partitions[tp]);
        Assert.Equal(ErrorCode.StaleMemberEpoch, h.C.ValidateOffsetFetchMember("app", "a", a.Epoch + 1));
        Assert.Null(h.C.ValidateOffsetFetchMember("app", "a", a.Epoch));

        var (_, listed) = h.C.ListGroups(["Stable"], ["streams"]);
        Assert.Equal(("app", "streams", "Stable"), (Assert.Single(listed).GroupId, listed[0].Type, listed[0].State));
        Assert.Empty(h.C.ListGroups(null, ["consumer"]).Groups);
        Assert.Equal("Group app is not a classic group.", h.C.DescribeGroup("app").Summary.NotFound);
        Assert.Equal(ErrorCode.NonEmptyGroup, h.C.DeleteGroups(["app"])["app"]);
        // Another protocol cannot take the id.
        Assert.Equal(ErrorCode.GroupIdNotFound, h.C.ConsumerGroupHeartbeat(new ConsumerHeartbeatParams("app", "c1", 0, null, null, 1000, ["input"], null, null, [], "c", "h")).Error);

        h.C.StreamsGroupHeartbeat(new StreamsGroupHeartbeatRequest { GroupId = "app", MemberId = "a", MemberEpoch = -1 }, "c", "h");
        Assert.Equal(StreamsGroupState.Empty, h.C.GetStreamsGroup("app")!.State);
        Assert.Equal(ErrorCode.None, h.C.DeleteGroups(["app"])["app"]);
        Assert.Null(h.C.GetStreamsGroup("app"));
    }

    [Fact]
    public void StateSurvivesReplayOnANewCoordinator()
    {
        var h = new Harness(standbys: 1);
        h.CreateInternalTopics();
        var a = new SimMember(h, "a", "pa", instance: "ia");
        var b = new SimMember(h, "b", "pb");
        Converge([a, b]);
        var c = new SimMember(h, "c", "pc");
        c.Step();
        a.Step(); // a is now revoking (unrevoked tasks pending)
        var before = h.C.GetStreamsGroup("app")!;
        int partition = h.C.PartitionFor("app");
        var versions = h.H.Log.Records.Select(r => (int)System.Buffers.Binary.BinaryPrimitives.ReadInt16BigEndian(r.Record.Key)).ToHashSet();
        Assert.Superset(new HashSet<int> { 17, 19, 20, 21, 22, 23 }, versions);

        // Failover: another coordinator loads the partition's records.
        var h2 = new Harness(standbys: 1) { Topics = h.Topics };
        h2.H.Now = h.H.Now;
        h2.C.Activate(4, loading: true);
        h2.C.LoadPartition(partition, h.H.Log.Entries(partition));
        var after = h2.C.GetStreamsGroup("app")!;
        Assert.Equal(before.GroupEpoch, after.GroupEpoch);
        Assert.Equal(before.AssignmentEpoch, after.AssignmentEpoch);
        Assert.Equal(before.Topology!.Epoch, after.Topology!.Epoch);
        Assert.Equal(2, after.Topology.Subtopologies.Count);
        Assert.Equal(1, after.NumStandbyReplicas);
        foreach (var id in new[] { "a", "b", "c" })
        {
            Assert.Equal(before.Get(id)!.MemberEpoch, after.Get(id)!.MemberEpoch);
            Assert.Equal(before.Get(id)!.State, after.Get(id)!.State);
            Assert.True(before.Get(id)!.Assigned.SetEquals(after.Get(id)!.Assigned));
            Assert.True(before.Get(id)!.PendingRevocation.SetEquals(after.Get(id)!.PendingRevocation));
            Assert.True(before.TargetOf(id).SetEquals(after.TargetOf(id)));
        }
        Assert.Equal("ia", after.Get("a")!.InstanceId);
        Assert.Equal("pb", after.Get("b")!.ProcessId);

        // The members continue on the new coordinator with their epochs, and converge.
        var moved = new[] { a, b, c }.Select(m => new SimMember(h2, m.Id, m.Process, m.Id == "a" ? "ia" : null) { Epoch = m.Epoch, Owned = m.Owned, Joined = true }).ToArray();
        Converge(moved);
        Assert.Equal(StreamsGroupState.Stable, after.State);
        Assert.Equal(12, moved.SelectMany(m => m.Owned.Active.All()).Distinct().Count());

        // Deleting leaves tombstones: a replay then has no group.
        foreach (var m in moved) h2.Beat(m.Id, -1, null);
        Assert.Equal(ErrorCode.None, h2.C.DeleteGroups(["app"])["app"]);
        var h3 = new Harness { Topics = h.Topics };
        h3.C.Activate(4, loading: true);
        h3.C.LoadPartition(partition, h.H.Log.Entries(partition).Concat(h2.H.Log.Entries(partition)));
        Assert.Null(h3.C.GetStreamsGroup("app"));
    }

    [Fact]
    public void AssignorIsStickyAndBalanced()
    {
        var tasks = new Dictionary<string, int> { ["0"] = 5, ["1"] = 4 };
        var first = StickyTaskAssignor.Assign(
            [new("a", "p1", new()), new("b", "p2", new()), new("c", "p3", new())], tasks, new HashSet<string> { "0" }, 2);
        Assert.All(first.Values, a => Assert.Equal(3, a.Active.Count));
        // Two standby copies of each of the 5 stateful tasks, each on the two processes without the active copy.
        Assert.Equal(10, first.Values.Sum(a => a.Standby.Count));
        Assert.All(first.Values, a => Assert.False(a.Active.Overlaps(a.Standby)));
        // A fourth member takes tasks only from the others' surplus; the rest stay where they were.
        var second = StickyTaskAssignor.Assign(
            [new("a", "p1", first["a"]), new("b", "p2", first["b"]), new("c", "p3", first["c"]), new("d", "p4", new())],
            tasks, new HashSet<string> { "0" }, 0);
        int kept = second.Where(kv => first.ContainsKey(kv.Key)).Sum(kv => kv.Value.Active.Intersect(first[kv.Key].Active).Count);
        Assert.Equal(9 - second["d"].Active.Count, kept);
        Assert.InRange(second["d"].Active.Count, 2, 3);
        Assert.All(second.Values, a => Assert.True(a.Standby.IsEmpty));
    }
}
