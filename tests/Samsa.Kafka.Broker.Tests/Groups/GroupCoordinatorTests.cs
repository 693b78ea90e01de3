using Samsa.Kafka.Broker.Groups;
using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Primitives;

namespace Samsa.Kafka.Broker.Tests.Groups;

/// <summary>An in-memory __consumer_offsets: the records appended per partition, in order.</summary>
public sealed class MemoryGroupLog : IGroupMetadataLog
{
    public readonly List<(int Partition, CoordinatorRecord Record)> Records = [];
    public ErrorCode NextError = ErrorCode.None;

    public ErrorCode Append(int partition, IReadOnlyList<CoordinatorRecord> records)
    {
        if (NextError != ErrorCode.None) { var e = NextError; NextError = ErrorCode.None; return e; }
        foreach (var r in records) Records.Add((partition, r));
        return ErrorCode.None;
    }

    public ErrorCode AppendTransactional(int partition, IReadOnlyList<CoordinatorRecord> records, long producerId, short producerEpoch)
    {
        var error = Append(partition, records);
        if (error == ErrorCode.None) foreach (var r in records) Transactional[r] = producerId;
        return error;
    }

    /// <summary>The producer of each record appended in a transactional batch.</summary>
    public readonly Dictionary<CoordinatorRecord, long> Transactional = [];

    /// <summary>A COMMIT/ABORT marker in a partition, as the transaction coordinator writes it.</summary>
    public readonly List<(int Partition, int Index, long ProducerId, bool Commit)> Markers = [];
    public void AppendMarker(int partition, long producerId, bool commit) => Markers.Add((partition, Records.Count, producerId, commit));

    public IEnumerable<GroupLogEntry> Entries(int partition)
    {
        for (int i = 0; i <= Records.Count; i++)
        {
            foreach (var m in Markers.Where(m => m.Partition == partition && m.Index == i))
                yield return new GroupLogEntry.TxnMarker(m.ProducerId, m.Commit);
            if (i == Records.Count || Records[i].Partition != partition) continue;
            var r = Records[i].Record;
            if (GroupRecords.Decode(r.Key, r.Value) is not { } e) continue;
            yield return Transactional.TryGetValue(r, out long pid) && e is GroupLogEntry.Offset o ? new GroupLogEntry.TxnOffset(pid, o) : e;
        }
    }
}

public sealed class GroupHarness
{
    public long Now = 1_000_000;
    public MemoryGroupLog Log = new();
    public GroupCoordinator Coordinator;

    public GroupHarness(GroupCoordinatorConfig? config = null, int partitions = 4)
    {
        Coordinator = new GroupCoordinator(config ?? new GroupCoordinatorConfig { OffsetsTopicPartitions = partitions }, Log, () => Now);
        Coordinator.Activate(partitions, loading: false);
    }

    public void Advance(long ms) { Now += ms; Coordinator.Tick(); }

    public static byte[] Subscription(params string[] topics)
    {
        var s = new ConsumerProtocolSubscription { Topics = topics.ToList() };
        var bytes = new byte[2 + s.Size(1)];
        bytes[1] = 1;
        var w = new KafkaWriter(bytes.AsSpan(2));
        s.Write(ref w, 1);
        return bytes;
    }

    public Task<JoinGroupResult> Join(string group, string memberId = "", string? instanceId = null, int session = 10_000, int rebalance = 30_000,
        string protocolType = "consumer", params MemberProtocol[] protocols) =>
        Coordinator.JoinGroup(new JoinGroupParams(group, memberId, instanceId, RequireKnownMemberId: instanceId is null, SupportSkippingAssignment: true,
            "client", "/127.0.0.1", rebalance, session, protocolType,
            protocols.Length > 0 ? protocols : [new MemberProtocol("range", Subscription("t"))])).WaitAsync(TimeSpan.FromSeconds(10));

    /// <summary>Dynamic member: MEMBER_ID_REQUIRED first, then the real join (parked).</summary>
    public async Task<(string MemberId, Task<JoinGroupResult> Join)> JoinNew(string group, params MemberProtocol[] protocols)
    {
        var first = await Join(group, protocols: protocols);
        Assert.Equal(ErrorCode.MemberIdRequired, first.Error);
        Assert.NotEmpty(first.MemberId);
        return (first.MemberId, Join(group, first.MemberId, protocols: protocols));
    }

    public Task<SyncGroupResult> Sync(string group, string memberId, int generation, string? instanceId = null, params (string, byte[])[] assignments) =>
        Coordinator.SyncGroup(group, generation, memberId, instanceId, null, null, assignments).WaitAsync(TimeSpan.FromSeconds(10));

    /// <summary>A one-member stable group; returns the member id and generation.</summary>
    public async Task<(string MemberId, int Generation)> StableSingle(string group)
    {
        var (id, join) = await JoinNew(group);
        Advance(Coordinator.Config.GroupInitialRebalanceDelayMs);
        var r = await join;
        Assert.Equal(ErrorCode.None, r.Error);
        var s = await Sync(group, id, r.GenerationId, null, (id, [1, 2, 3]));
        Assert.Equal(ErrorCode.None, s.Error);
        return (id, r.GenerationId);
    }
}

public class GroupCoordinatorTests
{
    private static readonly TopicPartition T0 = new("t", 0), T1 = new("t", 1);

    [Fact]
    public void PartitionForUsesJavaStringHashCodeAndUtilsAbs()
    {
        Assert.Equal(99162322, GroupCoordinator.JavaHashCode("hello"));
        Assert.Equal(99162322 % 50, GroupCoordinator.PartitionFor("hello", 50));
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE; Utils.abs maps it to 0.
        Assert.Equal(int.MinValue, GroupCoordinator.JavaHashCode("polygenelubricants"));
        Assert.Equal(0, GroupCoordinator.PartitionFor("polygenelubricants", 50));
        int negative = GroupCoordinator.JavaHashCode("console-consumer-12345");
        Assert.InRange(GroupCoordinator.PartitionFor("console-consumer-12345", 50), 0, 49);
        Assert.Equal(Math.Abs(negative) % 50, GroupCoordinator.PartitionFor("console-consumer-12345", 50));
    }

    [Fact]
    public async Task FirstMemberWaitsForInitialDelayThenLeadsGenerationOne()
    {
        var h = new GroupHarness();
        var (id, join) = await h.JoinNew("g");
        Assert.False(join.IsCompleted);
        h.Advance(2_999);
        Assert.False(join.IsCompleted);
        h.Advance(1);
        var r = await join;
        Assert.Equal(ErrorCode.None, r.Error);
        Assert.Equal(1, r.GenerationId);
        Assert.Equal(id, r.LeaderId);
        Assert.Equal("range", r.ProtocolName);
        Assert.Single(r.MemberList);
        Assert.Equal(GroupState.CompletingRebalance, h.Coordinator.GetGroup("g")!.State);
        var s = await h.Sync("g", id, 1, null, (id, [9]));
        Assert.Equal([9], s.Assignment);
        Assert.Equal(GroupState.Stable, h.Coordinator.GetGroup("g")!.State);
        // The assignment is durable: a GroupMetadata record with generation 1 and the member.
        var last = h.Log.Entries(h.Coordinator.PartitionFor("g")).OfType<GroupLogEntry.Group>().Last();
        Assert.Equal(1, last.Value!.Generation);
        Assert.Equal([9], last.Value.Members.Single().Assignment);
    }

    [Fact]
    public async Task InitialDelayExtendsWhileNewMembersArrive()
    {
        var h = new GroupHarness();
        var (a, joinA) = await h.JoinNew("g");
        h.Advance(2_000);
        var (b, joinB) = await h.JoinNew("g");
        h.Advance(1_000); // first delay over, but a member arrived: wait another delay
        Assert.False(joinA.IsCompleted);
        h.Advance(3_000);
        var ra = await joinA; var rb = await joinB;
        Assert.Equal(2, ra.MemberList.Count + rb.MemberList.Count);
        Assert.Equal(ra.GenerationId, rb.GenerationId);
    }

    [Fact]
    public async Task SecondMemberTriggersRebalanceAndFollowerWaitsForLeader()
    {
        var h = new GroupHarness();
        var (a, gen1) = await h.StableSingle("g");
        var (b, joinB) = await h.JoinNew("g");
        Assert.False(joinB.IsCompleted);
        Assert.Equal(GroupState.PreparingRebalance, h.Coordinator.GetGroup("g")!.State);
        Assert.Equal(ErrorCode.RebalanceInProgress, h.Coordinator.Heartbeat("g", a, null, gen1));
        // A commit from the previous generation during the rebalance is still accepted (upstream).
        var (_, during) = h.Coordinator.CommitOffsets("g", a, null, gen1, [new OffsetCommitEntry(T0, 5, -1, null)]);
        Assert.Equal(ErrorCode.None, during[T0]);
        var joinA = h.Join("g", a);
        var ra = await joinA; var rb = await joinB;
        Assert.Equal(gen1 + 1, ra.GenerationId);
        Assert.Equal(a, ra.LeaderId);
        Assert.Equal(2, ra.MemberList.Count);
        Assert.Empty(rb.MemberList);
        var syncB = h.Sync("g", b, rb.GenerationId);
        Assert.False(syncB.IsCompleted);
        var syncA = await h.Sync("g", a, ra.GenerationId, null, (a, [1]), (b, [2]));
        Assert.Equal([1], syncA.Assignment);
        Assert.Equal([2], (await syncB).Assignment);
        Assert.Equal(ErrorCode.None, h.Coordinator.Heartbeat("g", b, null, rb.GenerationId));
        // Now a commit with the old generation is stale.
        var (_, stale) = h.Coordinator.CommitOffsets("g", a, null, gen1, [new OffsetCommitEntry(T0, 7, -1, null)]);
        Assert.Equal(ErrorCode.IllegalGeneration, stale[T0]);
        Assert.Equal(5, h.Coordinator.FetchOffsets("g", [T0]).Offsets.Single().Offset!.Offset);
    }

    [Fact]
    public async Task MemberNotRejoiningIsDroppedAfterRebalanceTimeout()
    {
        var h = new GroupHarness();
        var (a, gen1) = await h.StableSingle("g");
        var (b, joinB) = await h.JoinNew("g");
        // a keeps heartbeating (REBALANCE_IN_PROGRESS) but never rejoins.
        for (int i = 0; i < 5; i++) { h.Advance(5_000); h.Coordinator.Heartbeat("g", a, null, gen1); }
        Assert.False(joinB.IsCompleted);
        h.Advance(5_000); // 30 s rebalance timeout reached
        var rb = await joinB;
        Assert.Equal(ErrorCode.None, rb.Error);
        Assert.Equal(b, rb.LeaderId);
        Assert.Single(rb.MemberList);
        Assert.Equal(ErrorCode.UnknownMemberId, h.Coordinator.Heartbeat("g", a, null, gen1));
    }

    [Fact]
    public async Task SessionExpiryRemovesMemberAndEmptiesGroup()
    {
        var h = new GroupHarness();
        var (a, gen) = await h.StableSingle("g");
        h.Advance(9_000);
        Assert.Equal(ErrorCode.None, h.Coordinator.Heartbeat("g", a, null, gen));
        h.Advance(9_000);
        Assert.Equal(GroupState.Stable, h.Coordinator.GetGroup("g")!.State);
        h.Advance(1_001);
        var g = h.Coordinator.GetGroup("g")!;
        Assert.Equal(GroupState.Empty, g.State);
        Assert.Equal(gen + 1, g.GenerationId);
        Assert.Equal(ErrorCode.UnknownMemberId, h.Coordinator.Heartbeat("g", a, null, gen));
    }

    [Fact]
    public async Task LeaveGroupRebalancesTheRest()
    {
        var h = new GroupHarness();
        var (a, _) = await h.StableSingle("g");
        var (b, joinB) = await h.JoinNew("g");
        var ra = await h.Join("g", a); var rb = await joinB;
        var syncB = h.Sync("g", b, rb.GenerationId);
        await h.Sync("g", a, ra.GenerationId, null, (a, [1]), (b, [2]));
        await syncB;
        var (error, members) = h.Coordinator.LeaveGroup("g", [new MemberLeave(a, null), new MemberLeave("nobody", null)]);
        Assert.Equal(ErrorCode.None, error);
        Assert.Equal(ErrorCode.None, members[0].Error);
        Assert.Equal(ErrorCode.UnknownMemberId, members[1].Error);
        Assert.Equal(ErrorCode.RebalanceInProgress, h.Coordinator.Heartbeat("g", b, null, rb.GenerationId));
        var again = await h.Join("g", b);
        Assert.Equal(b, again.LeaderId);
        Assert.Equal(rb.GenerationId + 1, again.GenerationId);
    }

    [Fact]
    public async Task StaticMemberRestartKeepsAssignmentWithoutRebalance()
    {
        var h = new GroupHarness();
        var first = h.Join("g", instanceId: "i-1");
        h.Advance(3_000);
        var r1 = await first;
        Assert.Equal(ErrorCode.None, r1.Error);
        Assert.StartsWith("i-1-", r1.MemberId);
        await h.Sync("g", r1.MemberId, r1.GenerationId, "i-1", (r1.MemberId, [4, 2]));
        // Restart: unknown member id, same instance id.
        var r2 = await h.Join("g", instanceId: "i-1");
        Assert.Equal(ErrorCode.None, r2.Error);
        Assert.NotEqual(r1.MemberId, r2.MemberId);
        Assert.Equal(r1.GenerationId, r2.GenerationId);
        Assert.True(r2.SkipAssignment); // v9: the leader need not reassign (KIP-814)
        Assert.Equal(GroupState.Stable, h.Coordinator.GetGroup("g")!.State);
        var s = await h.Sync("g", r2.MemberId, r2.GenerationId, "i-1");
        Assert.Equal([4, 2], s.Assignment);
        // The old incarnation is fenced.
        Assert.Equal(ErrorCode.FencedInstanceId, h.Coordinator.Heartbeat("g", r1.MemberId, "i-1", r1.GenerationId));
        var (_, commit) = h.Coordinator.CommitOffsets("g", r1.MemberId, "i-1", r1.GenerationId, [new OffsetCommitEntry(T0, 1, -1, null)]);
        Assert.Equal(ErrorCode.FencedInstanceId, commit[T0]);
        // Administrative removal by instance id.
        var (_, left) = h.Coordinator.LeaveGroup("g", [new MemberLeave("", "i-1")]);
        Assert.Equal(ErrorCode.None, left[0].Error);
        Assert.Equal(GroupState.Empty, h.Coordinator.GetGroup("g")!.State);
    }

    [Fact]
    public async Task StaticMemberSurvivesRebalanceWithoutRejoining()
    {
        var h = new GroupHarness();
        var s1 = h.Join("g", instanceId: "i-1");
        h.Advance(3_000);
        var r1 = await s1;
        await h.Sync("g", r1.MemberId, r1.GenerationId, "i-1", (r1.MemberId, [1]));
        var (b, joinB) = await h.JoinNew("g");
        // s1 keeps its session (heartbeats answer REBALANCE_IN_PROGRESS) but does not rejoin.
        for (int i = 0; i < 6; i++) { h.Advance(5_000); h.Coordinator.Heartbeat("g", r1.MemberId, "i-1", r1.GenerationId); }
        var rb = await joinB;
        // The static member did not rejoin in time but is kept (upstream drops only dynamic ones).
        Assert.Equal(2, h.Coordinator.GetGroup("g")!.Size);
        Assert.Equal(ErrorCode.None, rb.Error);
    }

    [Fact]
    public async Task ValidationErrors()
    {
        var h = new GroupHarness();
        Assert.Equal(ErrorCode.InvalidSessionTimeout, (await h.Join("g", session: 1)).Error);
        Assert.Equal(ErrorCode.InvalidSessionTimeout, (await h.Join("g", session: int.MaxValue)).Error);
        Assert.Equal(ErrorCode.InvalidGroupId, (await h.Join("")).Error);
        Assert.Equal(ErrorCode.UnknownMemberId, (await h.Join("nope", "m-1")).Error);
        Assert.Equal(ErrorCode.InconsistentGroupProtocol, (await h.Join("g", protocolType: "")).Error);
        Assert.Null(h.Coordinator.GetGroup("g")); // a refused join leaves nothing behind
        var (a, gen) = await h.StableSingle("g");
        Assert.Equal(ErrorCode.InconsistentGroupProtocol, (await h.Join("g", protocolType: "connect")).Error);
        Assert.Equal(ErrorCode.InconsistentGroupProtocol,
            (await h.Join("g", protocols: new MemberProtocol("other", []))).Error);
        Assert.Equal(ErrorCode.IllegalGeneration, h.Coordinator.Heartbeat("g", a, null, gen + 5));
        Assert.Equal(ErrorCode.IllegalGeneration, (await h.Sync("g", a, gen + 1)).Error);
        Assert.Equal(ErrorCode.UnknownMemberId, (await h.Sync("g", "ghost", gen)).Error);
        Assert.Equal(ErrorCode.InconsistentGroupProtocol,
            (await h.Coordinator.SyncGroup("g", gen, a, null, "consumer", "roundrobin", [])).Error);
    }

    [Fact]
    public async Task GroupMaxSizeRefusalForgetsThePendingMemberSoTheRebalanceCompletes()
    {
        var h = new GroupHarness(new GroupCoordinatorConfig { OffsetsTopicPartitions = 4, GroupMaxSize = 2 });
        var (a, joinA) = await h.JoinNew("g");
        var (b, joinB) = await h.JoinNew("g");
        h.Advance(3_000); h.Advance(3_000);
        var ra = await joinA; var rb = await joinB;
        Assert.Equal(ErrorCode.None, rb.Error);
        var syncB = h.Sync("g", b, rb.GenerationId);
        await h.Sync("g", a, ra.GenerationId, null, (a, [1]), (b, [2]));
        await syncB;
        // A full stable group refuses a newcomer before handing out an id.
        Assert.Equal((ErrorCode.GroupMaxSizeReached, ""), ((await h.Join("g")).Error, (await h.Join("g")).MemberId));
        // During a rebalance, with one member rejoined, a newcomer gets an id (pending); the
        // second member's rejoin then waits for it.
        var rejoinA = h.Join("g", a);
        var first = await h.Join("g");
        Assert.Equal(ErrorCode.MemberIdRequired, first.Error);
        var rejoinB = h.Join("g", b);
        Assert.False(rejoinA.IsCompleted);
        // Its join would exceed group.max.size: refused with an empty member id (upstream), and the
        // rebalance goes on at once instead of waiting for the pending id to expire.
        var third = await h.Join("g", first.MemberId);
        Assert.Equal((ErrorCode.GroupMaxSizeReached, ""), (third.Error, third.MemberId));
        var (ra2, rb2) = (await rejoinA, await rejoinB);
        Assert.Equal((ErrorCode.None, ra.GenerationId + 1), (ra2.Error, ra2.GenerationId));
        Assert.Equal(2, ra2.MemberList.Count + rb2.MemberList.Count);
        Assert.Empty(h.Coordinator.GetGroup("g")!.PendingMembers);
    }

    [Fact]
    public async Task ProtocolCandidatesFollowMembersAsTheyComeChangeAndGo()
    {
        var h = new GroupHarness();
        var sub = GroupHarness.Subscription("t");
        var (a, joinA) = await h.JoinNew("g", new MemberProtocol("range", sub), new MemberProtocol("range", sub), new MemberProtocol("sticky", sub));
        h.Advance(3_000);
        var ra = await joinA;
        await h.Sync("g", a, ra.GenerationId, null, (a, [1]));
        // A newcomer offering only "sticky" is accepted (a supports it too)...
        var (b, joinB) = await h.JoinNew("g", new MemberProtocol("sticky", sub));
        // ...a third offering only "range" is not: no protocol every member supports.
        Assert.Equal(ErrorCode.InconsistentGroupProtocol, (await h.Join("g", protocols: new MemberProtocol("range", sub))).Error);
        var ra2 = await h.Join("g", a, protocols: [new MemberProtocol("range", sub), new MemberProtocol("sticky", sub)]);
        Assert.Equal("sticky", ra2.ProtocolName);
        await h.Sync("g", a, ra2.GenerationId, null, (a, [1]), (b, [2]));
        await joinB;
        // a rejoins offering only "range": its old protocols no longer count, so "sticky" is no
        // longer common and the join is refused.
        var (_, left) = h.Coordinator.LeaveGroup("g", [new MemberLeave(b, null)]);
        Assert.Equal(ErrorCode.None, left.Single().Error);
        var ra3 = await h.Join("g", a, protocols: new MemberProtocol("range", sub));
        Assert.Equal((ErrorCode.None, "range"), (ra3.Error, ra3.ProtocolName));
        Assert.Equal(ErrorCode.InconsistentGroupProtocol, (await h.Join("g", protocols: new MemberProtocol("sticky", sub))).Error);
    }

    [Fact]
    public async Task ProtocolChosenByVotesAmongThoseAllSupport()
    {
        var h = new GroupHarness();
        var sub = GroupHarness.Subscription("t");
        var (a, joinA) = await h.JoinNew("g", new MemberProtocol("range", sub), new MemberProtocol("roundrobin", sub));
        var (b, joinB) = await h.JoinNew("g", new MemberProtocol("roundrobin", sub), new MemberProtocol("sticky", sub));
        h.Advance(3_000);
        h.Advance(3_000); // the second member extended the initial delay once
        var ra = await joinA;
        Assert.Equal("roundrobin", ra.ProtocolName);
        Assert.Equal("roundrobin", (await joinB).ProtocolName);
    }

    [Fact]
    public async Task AnyProtocolTypeAndOpaqueAssignments()
    {
        var h = new GroupHarness();
        var (id, join) = await h.JoinNew("connect-cluster", new MemberProtocol("sessioned", [0xFF, 0x00, 0x13]));
        h.Advance(3_000);
        var r = await join;
        Assert.Equal([0xFF, 0x00, 0x13], r.MemberList.Single().Metadata);
        // Assignments for unknown members are ignored; missing members get an empty one.
        var s = await h.Coordinator.SyncGroup("connect-cluster", r.GenerationId, id, null, null, null, [("stranger", [1]), (id, [0xDE, 0xAD])]);
        Assert.Equal([0xDE, 0xAD], s.Assignment);
        var (_, summary) = h.Coordinator.DescribeGroup("connect-cluster");
        Assert.Equal("Stable", summary.State);
        Assert.Equal("sessioned", summary.ProtocolData);
        Assert.Single(summary.Members);
    }

    [Fact]
    public async Task MalformedSubscriptionIsTreatedAsUnknownTopics()
    {
        var h = new GroupHarness();
        var (id, join) = await h.JoinNew("g", new MemberProtocol("range", [0, 1, 0xFF, 0xFF, 0xFF]));
        h.Advance(3_000);
        var r = await join;
        await h.Sync("g", id, r.GenerationId, null, (id, [0, 1, 2, 3]));
        h.Coordinator.CommitOffsets("g", id, null, r.GenerationId, [new OffsetCommitEntry(T0, 1, -1, null)]);
        // Subscribed topics cannot be known, so no offset of the active group may be deleted.
        var (error, parts) = h.Coordinator.DeleteOffsets("g", [T0]);
        Assert.Equal(ErrorCode.None, error);
        Assert.Equal(ErrorCode.GroupSubscribedToTopic, parts[T0]);
        // Other groups are unaffected.
        var (other, _) = await h.StableSingle("other");
        Assert.NotEmpty(other);
    }

    [Fact]
    public async Task OffsetDeleteOnlyForUnsubscribedTopics()
    {
        var h = new GroupHarness();
        var (id, gen) = await h.StableSingle("g"); // subscribes to "t"
        var u0 = new TopicPartition("u", 0);
        h.Coordinator.CommitOffsets("g", id, null, gen, [new OffsetCommitEntry(T0, 1, -1, null), new OffsetCommitEntry(u0, 2, -1, null)]);
        var (_, parts) = h.Coordinator.DeleteOffsets("g", [T0, u0]);
        Assert.Equal(ErrorCode.GroupSubscribedToTopic, parts[T0]);
        Assert.Equal(ErrorCode.None, parts[u0]);
        Assert.Null(h.Coordinator.FetchOffsets("g", [u0]).Offsets.Single().Offset);
        Assert.Equal(ErrorCode.GroupIdNotFound, h.Coordinator.DeleteOffsets("nope", [T0]).Error);
    }

    [Fact]
    public async Task SimpleCommitsAndFetch()
    {
        var h = new GroupHarness();
        var (error, parts) = h.Coordinator.CommitOffsets("simple", "", null, -1,
            [new OffsetCommitEntry(T0, 42, 3, "meta"), new OffsetCommitEntry(T1, 7, -1, new string('x', 5000))]);
        Assert.Equal(ErrorCode.None, error);
        Assert.Equal(ErrorCode.None, parts[T0]);
        Assert.Equal(ErrorCode.OffsetMetadataTooLarge, parts[T1]);
        var (fe, offsets) = h.Coordinator.FetchOffsets("simple", null);
        Assert.Equal(ErrorCode.None, fe);
        var o = Assert.Single(offsets);
        Assert.Equal((T0, 42L, 3, "meta"), (o.Partition, o.Offset!.Offset, o.Offset.LeaderEpoch, o.Offset.Metadata));
        // A generation for a group that does not exist is stale by definition.
        Assert.Equal(ErrorCode.IllegalGeneration, h.Coordinator.CommitOffsets("ghost", "m", null, 3, [new OffsetCommitEntry(T0, 1, -1, null)]).Partitions[T0]);
        // A simple commit to a group with members is refused.
        var (a, _) = await h.StableSingle("active");
        Assert.Equal(ErrorCode.UnknownMemberId, h.Coordinator.CommitOffsets("active", "", null, -1, [new OffsetCommitEntry(T0, 1, -1, null)]).Partitions[T0]);
        Assert.NotEmpty(a);
        Assert.Equal(ErrorCode.None, h.Coordinator.FetchOffsets("unknown-group", [T0]).Error);
        Assert.Null(h.Coordinator.FetchOffsets("unknown-group", [T0]).Offsets.Single().Offset);
    }

    [Fact]
    public async Task CommitDuringCompletingRebalanceIsRebalanceInProgress()
    {
        var h = new GroupHarness();
        var (id, join) = await h.JoinNew("g");
        h.Advance(3_000);
        var r = await join;
        var (_, parts) = h.Coordinator.CommitOffsets("g", id, null, r.GenerationId, [new OffsetCommitEntry(T0, 1, -1, null)]);
        Assert.Equal(ErrorCode.RebalanceInProgress, parts[T0]);
    }

    [Fact]
    public async Task MemberWithoutSyncIsRemovedAfterRebalanceTimeout()
    {
        var h = new GroupHarness();
        // Rebalance timeout 5 s, session 10 s: the missing SyncGroup is noticed before the session ends.
        var a0 = await h.Join("g", rebalance: 5_000);
        var a = a0.MemberId;
        var joinA = h.Join("g", a, rebalance: 5_000);
        h.Advance(3_000);
        var r1 = await joinA;
        await h.Sync("g", a, r1.GenerationId, null, (a, [1]));
        var b0 = await h.Join("g", rebalance: 5_000);
        var joinB = h.Join("g", b0.MemberId, rebalance: 5_000);
        var ra = await h.Join("g", a, rebalance: 5_000);
        var rb = await joinB;
        await h.Sync("g", a, ra.GenerationId, null, (a, [1]), (b0.MemberId, [2]));
        h.Advance(4_000);
        Assert.Equal(ErrorCode.None, h.Coordinator.Heartbeat("g", a, null, ra.GenerationId));
        Assert.True(h.Coordinator.GetGroup("g")!.Has(b0.MemberId));
        h.Advance(1_000);
        Assert.False(h.Coordinator.GetGroup("g")!.Has(b0.MemberId));
        Assert.Equal(ErrorCode.RebalanceInProgress, h.Coordinator.Heartbeat("g", a, null, ra.GenerationId));
        Assert.Equal(ra.GenerationId, rb.GenerationId);
    }

    [Fact]
    public void TransactionalOffsetsWaitForTheirMarkerAndSurviveAReload()
    {
        var h = new GroupHarness();
        int part = h.Coordinator.PartitionFor("g");
        long Committed(GroupCoordinator c, TopicPartition tp) =>
            c.FetchOffsets("g", [tp]).Offsets.Single().Offset?.Offset ?? -1;
        // Producer 7 commits offsets in a transaction: written to the log as its transactional batch,
        // invisible to OffsetFetch until the COMMIT marker.
        Assert.Equal(ErrorCode.None, h.Coordinator.AddTransactionalOffsets("g", 7, 0, [new OffsetCommitEntry(T0, 42, -1, "m")]));
        Assert.Equal(7, h.Log.Transactional[h.Log.Records.Last().Record]);
        Assert.Equal(-1, Committed(h.Coordinator, T0));
        // Producer 8's transaction on T1 will abort.
        Assert.Equal(ErrorCode.None, h.Coordinator.AddTransactionalOffsets("g", 8, 0, [new OffsetCommitEntry(T1, 5, -1, null)]));

        // The coordinator moves to another broker before any marker: the new one replays both as pending.
        var moved = new GroupCoordinator(h.Coordinator.Config, h.Log, () => h.Now);
        moved.Activate(4, loading: true);
        for (int p = 0; p < 4; p++) moved.LoadPartition(p, h.Log.Entries(p));
        Assert.Equal(-1, Committed(moved, T0));
        // require_stable OffsetFetch answers both partitions UNSTABLE_OFFSET_COMMIT until their markers.
        Assert.Equal(new HashSet<TopicPartition> { T0, T1 }, moved.PendingTransactionalPartitions("g"));
        Assert.Empty(moved.PendingTransactionalPartitions("other"));
        h.Log.AppendMarker(part, 7, commit: true);
        moved.CompleteTransactionalOffsets(part, 7, commit: true);
        h.Log.AppendMarker(part, 8, commit: false);
        moved.CompleteTransactionalOffsets(part, 8, commit: false);
        Assert.Equal(42, Committed(moved, T0));
        Assert.Equal(-1, Committed(moved, T1));
        Assert.Empty(moved.PendingTransactionalPartitions("g"));

        // A later reload sees the markers in the log: committed offsets applied, aborted ones not.
        var reloaded = new GroupCoordinator(h.Coordinator.Config, h.Log, () => h.Now);
        reloaded.Activate(4, loading: true);
        for (int p = 0; p < 4; p++) reloaded.LoadPartition(p, h.Log.Entries(p));
        Assert.Equal(42, Committed(reloaded, T0));
        Assert.Equal(-1, Committed(reloaded, T1));
        // Nothing is left pending: a stray marker changes nothing.
        reloaded.CompleteTransactionalOffsets(part, 8, commit: true);
        Assert.Equal(-1, Committed(reloaded, T1));
    }

    [Fact]
    public async Task ReplayRebuildsGroupsAndOffsets()
    {
        var h = new GroupHarness();
        var (a, gen) = await h.StableSingle("g");
        h.Coordinator.CommitOffsets("g", a, null, gen, [new OffsetCommitEntry(T0, 10, 2, "m0"), new OffsetCommitEntry(T1, 20, -1, "")]);
        h.Coordinator.CommitOffsets("g", a, null, gen, [new OffsetCommitEntry(T0, 11, 2, "m1")]);
        h.Coordinator.CommitOffsets("gone", "", null, -1, [new OffsetCommitEntry(T0, 1, -1, null)]);
        Assert.Equal(ErrorCode.None, h.Coordinator.DeleteGroups(["gone"])["gone"]);

        var restarted = new GroupCoordinator(h.Coordinator.Config with { OffsetsTopicPartitions = 4 }, h.Log, () => h.Now);
        restarted.Activate(4, loading: true);
        Assert.Equal(ErrorCode.CoordinatorLoadInProgress, (await restarted.JoinGroup(new JoinGroupParams("g", "", null, true, true, "c", "h", 1, 10_000, "consumer", []))).Error);
        Assert.Equal(ErrorCode.None, restarted.Heartbeat("g", a, null, gen)); // loading: NONE, as upstream
        Assert.Equal(ErrorCode.RebalanceInProgress, (await restarted.SyncGroup("g", gen, a, null, null, null, [])).Error);
        for (int p = 0; p < 4; p++) restarted.LoadPartition(p, h.Log.Entries(p));

        var g = restarted.GetGroup("g")!;
        Assert.Equal(GroupState.Stable, g.State);
        Assert.Equal(gen, g.GenerationId);
        Assert.Equal(a, g.LeaderId);
        Assert.Equal([1, 2, 3], g.Get(a)!.Assignment);
        var offsets = restarted.FetchOffsets("g", null).Offsets.ToDictionary(o => o.Partition, o => o.Offset!);
        Assert.Equal((11L, 2, "m1"), (offsets[T0].Offset, offsets[T0].LeaderEpoch, offsets[T0].Metadata));
        Assert.Equal(20L, offsets[T1].Offset);
        Assert.Null(restarted.GetGroup("gone"));
        // The member carries on where it was.
        Assert.Equal(ErrorCode.None, restarted.Heartbeat("g", a, null, gen));
        var s = await restarted.SyncGroup("g", gen, a, null, null, null, []);
        Assert.Equal([1, 2, 3], s.Assignment);
    }

    [Fact]
    public async Task OffsetsExpireAfterRetentionOnceGroupIsEmpty()
    {
        var config = new GroupCoordinatorConfig { OffsetsTopicPartitions = 4, OffsetsRetentionMs = 60_000, OffsetsRetentionCheckIntervalMs = 1_000 };
        var h = new GroupHarness(config);
        var (a, gen) = await h.StableSingle("g");
        h.Coordinator.CommitOffsets("g", a, null, gen, [new OffsetCommitEntry(T0, 10, -1, null)]);
        // While the member is active and subscribed to "t", the offset stays, however old.
        for (int i = 0; i < 20; i++) { h.Advance(5_000); h.Coordinator.Heartbeat("g", a, null, gen); }
        Assert.NotNull(h.Coordinator.FetchOffsets("g", [T0]).Offsets.Single().Offset);
        h.Coordinator.LeaveGroup("g", [new MemberLeave(a, null)]);
        Assert.Equal(GroupState.Empty, h.Coordinator.GetGroup("g")!.State);
        h.Advance(59_000);
        Assert.NotNull(h.Coordinator.FetchOffsets("g", [T0]).Offsets.Single().Offset);
        h.Advance(2_000);
        Assert.Null(h.Coordinator.FetchOffsets("g", [T0]).Offsets.Single().Offset);
        Assert.Null(h.Coordinator.GetGroup("g"));
        // Tombstones were written for the offset and the group.
        var tail = h.Log.Records.TakeLast(2).ToList();
        Assert.All(tail, r => Assert.Null(r.Record.Value));
    }

    [Fact]
    public async Task DeleteGroupsOnlyWhenEmpty()
    {
        var h = new GroupHarness();
        var (a, _) = await h.StableSingle("g");
        var r = h.Coordinator.DeleteGroups(["g", "missing"]);
        Assert.Equal(ErrorCode.NonEmptyGroup, r["g"]);
        Assert.Equal(ErrorCode.GroupIdNotFound, r["missing"]);
        h.Coordinator.LeaveGroup("g", [new MemberLeave(a, null)]);
        Assert.Equal(ErrorCode.None, h.Coordinator.DeleteGroups(["g"])["g"]);
        Assert.Equal("Dead", h.Coordinator.DescribeGroup("g").Summary.State);
        Assert.Empty(h.Coordinator.ListGroups(null, null).Groups);
    }

    [Fact]
    public async Task ListGroupsFiltersByState()
    {
        var h = new GroupHarness();
        await h.StableSingle("stable");
        h.Coordinator.CommitOffsets("empty", "", null, -1, [new OffsetCommitEntry(T0, 1, -1, null)]);
        var all = h.Coordinator.ListGroups(null, null).Groups;
        Assert.Equal(["empty", "stable"], all.Select(g => g.GroupId).Order().ToArray());
        Assert.Equal(["stable"], h.Coordinator.ListGroups(["stable"], null).Groups.Select(g => g.GroupId).ToArray());
        Assert.Equal(["empty"], h.Coordinator.ListGroups(["Empty"], ["classic"]).Groups.Select(g => g.GroupId).ToArray());
        Assert.Empty(h.Coordinator.ListGroups(null, ["consumer"]).Groups);
    }

    [Fact]
    public async Task FailedAppendIsReportedAndStateUnchanged()
    {
        var h = new GroupHarness();
        var (a, gen) = await h.StableSingle("g");
        h.Log.NextError = ErrorCode.KafkaStorageError;
        var (_, parts) = h.Coordinator.CommitOffsets("g", a, null, gen, [new OffsetCommitEntry(T0, 1, -1, null)]);
        Assert.Equal(ErrorCode.NotCoordinator, parts[T0]);
        Assert.Null(h.Coordinator.FetchOffsets("g", [T0]).Offsets.Single().Offset);
    }

    [Fact]
    public void RecordsAreUpstreamsBytes()
    {
        // OffsetCommitKey v1: int16 version, string group, string topic, int32 partition.
        var rec = GroupRecords.OffsetCommit("g", new TopicPartition("t", 3), new CommittedOffset(5, 2, "m", 100));
        Assert.Equal(new byte[] { 0, 1, 0, 1, (byte)'g', 0, 1, (byte)'t', 0, 0, 0, 3 }, rec.Key);
        // OffsetCommitValue v3: version, offset, leader epoch, metadata, commit timestamp.
        Assert.Equal(new byte[] { 0, 3, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 2, 0, 1, (byte)'m', 0, 0, 0, 0, 0, 0, 0, 100 }, rec.Value);
        var expiring = GroupRecords.OffsetCommit("g", new TopicPartition("t", 3), new CommittedOffset(5, 2, "m", 100, 900));
        Assert.Equal(1, expiring.Value![1]); // v1 carries the expire timestamp
        var decoded = (GroupLogEntry.Offset)GroupRecords.Decode(expiring.Key, expiring.Value)!;
        Assert.Equal(900, decoded.Value!.ExpireTimestamp);
        Assert.Equal(new byte[] { 0, 2, 0, 1, (byte)'g' }, GroupRecords.GroupTombstone("g").Key);
        // Key versions of other group types are skipped; garbage is a protocol error, not a crash.
        // Key version 3 is a KIP-848 consumer group's epoch record (here a tombstone); share group
        // records (key version 9+) are not this coordinator's and decode to null.
        Assert.IsType<GroupLogEntry.ConsumerRecord>(GroupRecords.Decode(new byte[] { 0, 3, 0, 0 }, null));
        Assert.Null(GroupRecords.Decode(new byte[] { 0, 9, 0, 0 }, null));
        Assert.Throws<KafkaProtocolException>(() => GroupRecords.Decode(new byte[] { 0, 1, 0x7F }, null));
    }
}
