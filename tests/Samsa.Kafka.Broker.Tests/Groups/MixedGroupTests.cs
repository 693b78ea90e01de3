using Samsa.Kafka.Broker.Groups;
using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Primitives;

namespace Samsa.Kafka.Broker.Tests.Groups;

/// <summary>
/// Mixed groups on the coordinator state machine (upstream's GroupMetadataManager classic-member
/// paths): classic members inside a consumer group, the online upgrade of a live classic group on
/// the first ConsumerGroupHeartbeat, the downgrade when the last consumer-protocol member leaves,
/// group.consumer.migration.policy, and the records a reloaded coordinator rebuilds the group from.
/// </summary>
public class MixedGroupTests
{
    private static readonly Guid T = Guid.Parse("00000000-0000-0000-0000-0000000000a1");

    private sealed class Harness
    {
        public readonly GroupHarness H;
        public readonly List<TopicInfo> Topics = [new("t", T, 6)];
        public Harness(string policy = "bidirectional")
        {
            H = new GroupHarness(new GroupCoordinatorConfig { OffsetsTopicPartitions = 4, ConsumerGroupMigrationPolicy = policy });
            H.Coordinator.TopicSource = () => Topics;
        }
        public GroupCoordinator C => H.Coordinator;

        public ConsumerHeartbeatResult CJoin(string member, string group = "g") =>
            C.ConsumerGroupHeartbeat(new ConsumerHeartbeatParams(group, member, 0, null, null, 30_000, ["t"], null, null, [], "kip848", "/127.0.0.1"));

        public ConsumerHeartbeatResult CBeat(string member, int epoch, PartitionSet? owned, string group = "g") =>
            C.ConsumerGroupHeartbeat(new ConsumerHeartbeatParams(group, member, epoch, null, null, -1, null, null, null,
                owned?.Topics.Select(t => (t, (IReadOnlyList<int>)owned.PartitionsOf(t).ToList())).ToList(), "kip848", "/127.0.0.1"));

        /// <summary>A classic join with an id (the second JoinGroup of KIP-394), owning <paramref name="owned"/>.</summary>
        public Task<JoinGroupResult> Join(string group, string memberId, params int[] owned) =>
            H.Join(group, memberId, protocols: new MemberProtocol("range", Subscription(owned)));

        public Task<SyncGroupResult> Sync(string group, string memberId, int generation) =>
            C.SyncGroup(group, generation, memberId, null, "consumer", "range", []).WaitAsync(TimeSpan.FromSeconds(10));
    }

    /// <summary>ConsumerProtocolSubscription v1 for topic t with owned partitions of t.</summary>
    private static byte[] Subscription(params int[] owned)
    {
        var s = new ConsumerProtocolSubscription { Topics = ["t"] };
        if (owned.Length > 0) s.OwnedPartitions.Add(new ConsumerProtocolSubscription.TopicPartition { Topic = "t", Partitions = owned.ToList() });
        var bytes = new byte[2 + s.Size(1)];
        bytes[1] = 1;
        var w = new KafkaWriter(bytes.AsSpan(2));
        s.Write(ref w, 1);
        return bytes;
    }

    private static int[] Assigned(byte[] assignment) =>
        ConsumerProtocolCodec.ReadAssignment(assignment)!.Where(a => a.Topic == "t").Select(a => a.Partition).Order().ToArray();

    /// <summary>A new coordinator that replayed the harness's records of group g's partition.</summary>
    private static GroupCoordinator Reloaded(Harness h)
    {
        var c2 = new GroupCoordinator(new GroupCoordinatorConfig { OffsetsTopicPartitions = 4 }, new MemoryGroupLog(), () => h.H.Now);
        c2.TopicSource = () => h.Topics;
        c2.Activate(4, loading: true);
        c2.LoadPartition(h.C.PartitionFor("g"), h.H.Log.Entries(h.C.PartitionFor("g")));
        return c2;
    }

    private static int[] Parts(PartitionSet? s) => s is null ? [] : s.PartitionsOf(T).ToArray();

    /// <summary>A consumer-protocol member "a" owning all six partitions, then classic member "k".</summary>
    private static async Task<(Harness H, string K, int KEpoch)> ConsumerThenClassic()
    {
        var h = new Harness();
        var a = h.CJoin("a");
        Assert.Equal([0, 1, 2, 3, 4, 5], Parts(a.Assignment));
        var first = await h.H.Join("g", protocols: new MemberProtocol("range", Subscription()));
        Assert.Equal(ErrorCode.MemberIdRequired, first.Error);
        var join = await h.Join("g", first.MemberId);
        Assert.Equal(ErrorCode.None, join.Error);
        return (h, first.MemberId, join.GenerationId);
    }

    [Fact]
    public async Task ClassicMemberJoinsAConsumerGroupAndGetsPartitionsOnlyOnceReleased()
    {
        var (h, k, epoch) = await ConsumerThenClassic();
        var group = h.C.GetConsumerGroup("g")!;
        Assert.Equal(2, epoch); // the member epoch, sent as the generation
        Assert.True(group.Get(k)!.UsesClassicProtocol);
        Assert.Equal(2, group.GroupEpoch);

        // Every partition is still a's: the classic member's first SyncGroup is empty, and its
        // heartbeat is fine (nothing released yet to rejoin for).
        var s1 = await h.Sync("g", k, epoch);
        Assert.Equal(ErrorCode.None, s1.Error);
        Assert.Equal("range", s1.ProtocolName);
        Assert.Empty(Assigned(s1.Assignment));
        Assert.Equal(ErrorCode.None, h.C.Heartbeat("g", k, null, epoch));
        Assert.Equal(ErrorCode.IllegalGeneration, h.C.Heartbeat("g", k, null, epoch - 1));

        // a revokes three partitions and confirms; the classic member is then told to rejoin.
        var a2 = h.CBeat("a", 1, new PartitionSet(Enumerable.Range(0, 6).Select(p => (T, p))));
        var kept = a2.Assignment!;
        Assert.Equal(3, kept.Count);
        h.CBeat("a", 1, kept);
        Assert.Equal(ErrorCode.RebalanceInProgress, h.C.Heartbeat("g", k, null, epoch));
        var rejoin = await h.Join("g", k);
        Assert.Equal(ErrorCode.None, rejoin.Error);
        var s2 = await h.Sync("g", k, rejoin.GenerationId);
        var mine = Assigned(s2.Assignment);
        Assert.Equal(3, mine.Length);
        Assert.Empty(mine.Intersect(Parts(kept)));
        Assert.Equal(ErrorCode.None, h.C.Heartbeat("g", k, null, rejoin.GenerationId));
        Assert.Equal(ConsumerGroupState.Stable, group.State);

        // Both kinds commit: the classic member with its generation (a stale one is ILLEGAL_GENERATION,
        // as upstream answers classic members), the consumer member with its epoch.
        var tp = new TopicPartition("t", mine[0]);
        Assert.Equal(ErrorCode.None, h.C.CommitOffsets("g", k, null, rejoin.GenerationId, [new OffsetCommitEntry(tp, 7, -1, null)]).Error);
        Assert.Equal(ErrorCode.IllegalGeneration, h.C.CommitOffsets("g", k, null, rejoin.GenerationId - 1, [new OffsetCommitEntry(tp, 8, -1, null)]).Error);
        var atp = new TopicPartition("t", Parts(kept)[0]);
        Assert.Equal(ErrorCode.None, h.C.CommitOffsets("g", "a", null, 2, [new OffsetCommitEntry(atp, 9, -1, null)]).Error);

        // ConsumerGroupDescribe tells the kinds apart.
        var view = h.C.DescribeConsumerGroup("g").View!;
        Assert.True(view.Members.Single(m => m.MemberId == k).IsClassic);
        Assert.False(view.Members.Single(m => m.MemberId == "a").IsClassic);

        // A classic LeaveGroup removes it and bumps the epoch; the consumer member is not classic.
        var (_, left) = h.C.LeaveGroup("g", [new MemberLeave(k, null), new MemberLeave("a", null)]);
        Assert.Equal([ErrorCode.None, ErrorCode.UnknownMemberId], left.Select(l => l.Error).ToArray());
        Assert.Null(group.Get(k));
        Assert.Equal(3, group.GroupEpoch);
    }

    [Fact]
    public async Task ClassicMemberWithWrongProtocolTypeOrConsumerHeartbeatIsRefused()
    {
        var (h, k, epoch) = await ConsumerThenClassic();
        Assert.Equal(ErrorCode.InconsistentGroupProtocol, (await h.H.Join("g", k, protocolType: "connect", protocols: new MemberProtocol("range", Subscription()))).Error);
        // The classic member may not switch protocols under the same id without leaving.
        Assert.Equal(ErrorCode.UnknownMemberId, h.CBeat(k, epoch, new PartitionSet()).Error);
        // A SyncGroup naming another protocol than the join answered is inconsistent.
        Assert.Equal(ErrorCode.InconsistentGroupProtocol,
            (await h.C.SyncGroup("g", epoch, k, null, "consumer", "roundrobin", []).WaitAsync(TimeSpan.FromSeconds(5))).Error);
    }

    [Fact]
    public async Task ClassicMemberThatDoesNotRejoinOrSyncIsRemoved()
    {
        var (h, k, epoch) = await ConsumerThenClassic();
        // Joined and heartbeating but never synced: removed after its rebalance timeout (30 s),
        // although its session (10 s, kept by the heartbeats) has not expired.
        for (int i = 0; i < 3; i++)
        {
            h.H.Advance(9_000);
            Assert.Equal(ErrorCode.None, h.C.Heartbeat("g", k, null, epoch));
        }
        h.H.Advance(3_001);
        Assert.Null(h.C.GetConsumerGroup("g")!.Get(k));
        Assert.Equal(ErrorCode.UnknownMemberId, h.C.Heartbeat("g", k, null, epoch));
    }

    /// <summary>A stable two-member classic group whose members hold 0-2 and 3-5 of t.</summary>
    private static async Task<(Harness H, string M1, string M2, int Generation)> StableClassicGroup(string policy = "bidirectional")
    {
        var h = new Harness(policy);
        var id1 = (await h.H.Join("g", protocols: new MemberProtocol("range", Subscription()))).MemberId;
        var id2 = (await h.H.Join("g", protocols: new MemberProtocol("range", Subscription()))).MemberId;
        var j1 = h.Join("g", id1);
        var j2 = h.Join("g", id2);
        // The initial delay extends once per newcomer (InitialDelayedJoin).
        for (int i = 0; i < 20 && !j1.IsCompleted; i++)
        {
            h.H.Advance(h.C.Config.GroupInitialRebalanceDelayMs);
            await Task.WhenAny(j1, Task.Delay(200));
        }
        var r1 = await j1;
        var r2 = await j2;
        Assert.Equal(ErrorCode.None, r1.Error);
        var leader = r1.LeaderId;
        byte[] A(params int[] ps) => ConsumerProtocolCodec.WriteAssignment([("t", ps)], 1);
        var s2 = h.C.SyncGroup("g", r1.GenerationId, leader == id1 ? id2 : id1, null, "consumer", "range", []);
        var s1 = await h.C.SyncGroup("g", r1.GenerationId, leader, null, "consumer", "range", [(id1, A(0, 1, 2)), (id2, A(3, 4, 5))]);
        Assert.Equal(ErrorCode.None, s1.Error);
        Assert.Equal(ErrorCode.None, (await s2).Error);
        Assert.Equal(GroupState.Stable, h.C.GetGroup("g")!.State);
        var tp = new TopicPartition("t", 0);
        Assert.Equal(ErrorCode.None, h.C.CommitOffsets("g", id1, null, r1.GenerationId, [new OffsetCommitEntry(tp, 55, -1, null)]).Error);
        return (h, id1, id2, r1.GenerationId);
    }

    [Fact]
    public async Task ConsumerHeartbeatUpgradesALiveClassicGroupKeepingMembersAssignmentsAndOffsets()
    {
        var (h, m1, m2, generation) = await StableClassicGroup();
        int before = h.H.Log.Records.Count;
        var c = h.CJoin("c");
        Assert.Equal(ErrorCode.None, c.Error);
        var group = h.C.GetConsumerGroup("g")!;
        Assert.NotNull(group);
        Assert.Equal(generation + 1, group.GroupEpoch);
        Assert.Equal(3, group.Size);
        // The classic members kept their partitions at the classic generation; the newcomer waits for
        // partitions they still own.
        Assert.Equal([0, 1, 2], Parts(group.Get(m1)!.Assigned));
        Assert.Equal([3, 4, 5], Parts(group.Get(m2)!.Assigned));
        Assert.Equal(generation, group.Get(m1)!.MemberEpoch);
        Assert.Empty(Parts(c.Assignment));
        Assert.Equal(55, h.C.FetchOffsets("g", [new TopicPartition("t", 0)]).Offsets[0].Offset!.Offset);

        // The classic members learn of the rebalance on their heartbeat and rejoin (eager: owning nothing).
        Assert.Equal(ErrorCode.RebalanceInProgress, h.C.Heartbeat("g", m1, null, generation));
        Assert.Equal(ErrorCode.RebalanceInProgress, h.C.Heartbeat("g", m2, null, generation));
        // Offsets still commit at the old generation until they rejoin (a revoking eager consumer commits).
        Assert.Equal(ErrorCode.None, h.C.CommitOffsets("g", m1, null, generation, [new OffsetCommitEntry(new TopicPartition("t", 1), 66, -1, null)]).Error);
        var r1 = await h.Join("g", m1);
        var r2 = await h.Join("g", m2);
        var a1 = Assigned((await h.Sync("g", m1, r1.GenerationId)).Assignment);
        var a2 = Assigned((await h.Sync("g", m2, r2.GenerationId)).Assignment);
        var ac = Parts(h.CBeat("c", c.MemberEpoch, new PartitionSet()).Assignment);
        Assert.Equal([0, 1, 2, 3, 4, 5], a1.Concat(a2).Concat(ac).Order().ToArray());
        Assert.Equal(2, ac.Length);

        // Upgrade records: the classic group's tombstone (key version 2, no value) and every
        // consumer group record kind, each classic member's with its ClassicMemberMetadata.
        var written = h.H.Log.Records.Skip(before).Select(r => r.Record).ToList();
        short KeyVersion(CoordinatorRecord r) => System.Buffers.Binary.BinaryPrimitives.ReadInt16BigEndian(r.Key);
        Assert.Contains(written, r => KeyVersion(r) == 2 && r.Value is null);
        Assert.Superset(new HashSet<short> { 3, 5, 6, 7, 8 }, written.Select(KeyVersion).ToHashSet());
        var memberRecord = written.Last(r => KeyVersion(r) == 5 && r.Value is not null && Decode(r).ClassicMemberMetadata is not null);
        Assert.Equal(10_000, Decode(memberRecord).ClassicMemberMetadata!.SessionTimeoutMs);
        Assert.Equal("range", Decode(memberRecord).ClassicMemberMetadata!.SupportedProtocols.Single().Name);
    }

    [Fact]
    public async Task CooperativeClassicMemberRevokesFirstThenMovesToTheNewEpoch()
    {
        var (h, m1, m2, generation) = await StableClassicGroup();
        var c = h.CJoin("c");
        var group = h.C.GetConsumerGroup("g")!;
        // A cooperative consumer rejoins still owning its partitions: it stays at its epoch and its
        // SyncGroup gives what it keeps, so it revokes the rest before rejoining.
        var r1 = await h.Join("g", m1, 0, 1, 2);
        Assert.Equal(generation, r1.GenerationId);
        Assert.Equal(ConsumerMemberState.UnrevokedPartitions, group.Get(m1)!.State);
        var keep = Assigned((await h.Sync("g", m1, r1.GenerationId)).Assignment);
        Assert.Equal(2, keep.Length);
        Assert.Equal(ErrorCode.RebalanceInProgress, h.C.Heartbeat("g", m1, null, r1.GenerationId));
        // Still owning the revoked partition when it rejoins: nothing changes.
        Assert.Equal(generation, (await h.Join("g", m1, 0, 1, 2)).GenerationId);
        // Having given it up, it moves to the group's epoch and the partition is free for c.
        var r2 = await h.Join("g", m1, keep);
        Assert.Equal(group.GroupEpoch, r2.GenerationId);
        Assert.Equal(ConsumerMemberState.Stable, group.Get(m1)!.State);
        Assert.Equal(keep, Assigned((await h.Sync("g", m1, r2.GenerationId)).Assignment));
        var ac = Parts(h.CBeat("c", c.MemberEpoch, new PartitionSet()).Assignment);
        Assert.Single(ac.Intersect([0, 1, 2]));
        Assert.Empty(ac.Intersect(keep));
        _ = m2;
    }

    [Fact]
    public void MigrationPolicyIsReadCaseInsensitivelyAndAnUnknownOneRefusesToStart()
    {
        static Samsa.Kafka.Broker.Config.BrokerConfig Broker(string policy) => new(new Dictionary<string, string> { ["group.consumer.migration.policy"] = policy });
        Assert.Equal("bidirectional", GroupCoordinatorConfig.From(new Samsa.Kafka.Broker.Config.BrokerConfig(new Dictionary<string, string>())).ConsumerGroupMigrationPolicy);
        var upgrade = GroupCoordinatorConfig.From(Broker("UPGRADE"));
        Assert.True(upgrade.OnlineUpgradeEnabled);
        Assert.False(upgrade.OnlineDowngradeEnabled);
        Assert.Throws<Samsa.Kafka.Broker.Config.ConfigValueException>(() => Broker("sideways"));
    }

    private static ConsumerGroupMemberMetadataValue Decode(CoordinatorRecord r)
    {
        var reader = new KafkaReader(r.Value!.AsMemory(2));
        return ConsumerGroupMemberMetadataValue.Read(ref reader, 0);
    }

    [Theory]
    [InlineData("disabled")]
    [InlineData("downgrade")]
    public async Task UpgradeFollowsTheMigrationPolicy(string policy)
    {
        var (h, _, _, _) = await StableClassicGroup(policy);
        Assert.Equal(ErrorCode.GroupIdNotFound, h.CJoin("c").Error);
        Assert.Null(h.C.GetConsumerGroup("g"));
        Assert.Equal(GroupState.Stable, h.C.GetGroup("g")!.State);
    }

    [Fact]
    public async Task LastConsumerMemberLeavingDowngradesToAClassicGroupThatRebalances()
    {
        var (h, m1, m2, generation) = await StableClassicGroup();
        var c = h.CJoin("c");
        int epoch = h.C.GetConsumerGroup("g")!.GroupEpoch;
        int before = h.H.Log.Records.Count;
        Assert.Equal(ErrorCode.None, h.CBeat("c", -1, null).Error);
        Assert.Null(h.C.GetConsumerGroup("g"));
        var classic = h.C.GetGroup("g")!;
        Assert.Equal(GroupState.PreparingRebalance, classic.State);
        Assert.Equal(epoch, classic.GenerationId);
        Assert.Equal(2, classic.Size);
        // Records: the consumer group's tombstones, then a classic GroupMetadata record.
        var written = h.H.Log.Records.Skip(before).Select(r => r.Record).ToList();
        short KeyVersion(CoordinatorRecord r) => System.Buffers.Binary.BinaryPrimitives.ReadInt16BigEndian(r.Key);
        Assert.Contains(written, r => KeyVersion(r) == 3 && r.Value is null);
        Assert.Equal(2, KeyVersion(written[^1]));
        Assert.NotNull(written[^1].Value);

        // The classic members were at the old generation: they rejoin through the classic protocol.
        Assert.Equal(ErrorCode.IllegalGeneration, h.C.Heartbeat("g", m1, null, generation));
        var j1 = h.Join("g", m1);
        var j2 = h.Join("g", m2);
        var r1 = await j1;
        var r2 = await j2;
        Assert.Equal(ErrorCode.None, r1.Error);
        Assert.Equal(epoch + 1, r1.GenerationId);
        Assert.Equal(r1.LeaderId, r2.LeaderId);
        Assert.Equal(55, h.C.FetchOffsets("g", [new TopicPartition("t", 0)]).Offsets[0].Offset!.Offset);

        // Replaying the partition gives the classic group back, not the consumer group.
        var c2 = Reloaded(h);
        Assert.Null(c2.GetConsumerGroup("g"));
        Assert.Equal(2, c2.GetGroup("g")!.Size);
    }

    /// <summary>Upstream's validateOnlineDowngradeWithReplacedMemberId: a classic static member that
    /// replaces the group's last consumer-protocol static member (same instance id, a restart with
    /// group.protocol=classic) turns the group back into a classic group at once, stable, with the
    /// joining member holding the replaced one's partitions; the other members carry on without a
    /// rebalance.</summary>
    [Theory]
    [InlineData("bidirectional")]
    [InlineData("upgrade")]
    public async Task ClassicStaticMemberReplacingTheLastConsumerMemberDowngradesTheGroup(string policy)
    {
        var (h, m1, m2, _) = await StableClassicGroup(policy);
        var c = h.C.ConsumerGroupHeartbeat(new ConsumerHeartbeatParams("g", "c", 0, "i1", null, 30_000, ["t"], null, null, [], "kip848", "/127.0.0.1"));
        Assert.Equal(ErrorCode.None, c.Error);
        var r1 = await h.Join("g", m1);
        var r2 = await h.Join("g", m2);
        var a1 = Assigned((await h.Sync("g", m1, r1.GenerationId)).Assignment);
        var a2 = Assigned((await h.Sync("g", m2, r2.GenerationId)).Assignment);
        var cParts = Parts(h.CBeat("c", c.MemberEpoch, new PartitionSet()).Assignment);
        Assert.Equal(2, cParts.Length);
        var consumer = h.C.GetConsumerGroup("g")!;
        int epoch = consumer.GroupEpoch;
        Assert.Equal(ConsumerGroupState.Stable, consumer.State);

        // "c" restarts as a classic static member (unknown member id, same instance id).
        int before = h.H.Log.Records.Count;
        var join = await h.H.Join("g", "", instanceId: "i1", protocols: new MemberProtocol("range", Subscription()));
        Assert.Equal(ErrorCode.None, join.Error);
        Assert.NotEqual("c", join.MemberId);
        if (policy == "upgrade")
        {
            // No downgrade allowed: the group stays a consumer group with the member replaced.
            Assert.True(h.C.GetConsumerGroup("g")!.Get(join.MemberId)!.UsesClassicProtocol);
            return;
        }
        Assert.Null(h.C.GetConsumerGroup("g"));
        var classic = h.C.GetGroup("g")!;
        Assert.Equal(GroupState.Stable, classic.State);
        Assert.Equal(epoch, classic.GenerationId);
        Assert.Equal(3, classic.Size);
        Assert.Equal(epoch, join.GenerationId);
        // The joining member syncs into the replaced member's partitions; the others heartbeat on.
        var sync = await h.H.Sync("g", join.MemberId, join.GenerationId, "i1");
        Assert.Equal(ErrorCode.None, sync.Error);
        Assert.Equal(cParts, Assigned(sync.Assignment));
        Assert.Equal(ErrorCode.None, h.C.Heartbeat("g", m1, null, r1.GenerationId));
        Assert.Equal(ErrorCode.None, h.C.Heartbeat("g", m2, null, r2.GenerationId));
        Assert.Equal([0, 1, 2, 3, 4, 5], a1.Concat(a2).Concat(cParts).Order().ToArray());

        // Records: the consumer group's tombstones (the replaced member's too), then the classic
        // GroupMetadata record; a reloaded coordinator has the classic group.
        var written = h.H.Log.Records.Skip(before).Select(r => r.Record).ToList();
        short KeyVersion(CoordinatorRecord r) => System.Buffers.Binary.BinaryPrimitives.ReadInt16BigEndian(r.Key);
        Assert.All(written.SkipLast(1), r => Assert.Null(r.Value));
        Assert.Equal(2, KeyVersion(written[^1]));
        var c2 = Reloaded(h);
        Assert.Null(c2.GetConsumerGroup("g"));
        Assert.Equal(3, c2.GetGroup("g")!.Size);
        Assert.Equal(cParts, Assigned((await c2.SyncGroup("g", join.GenerationId, join.MemberId, "i1", null, null, []).WaitAsync(TimeSpan.FromSeconds(5))).Assignment));
    }

    [Fact]
    public async Task UpgradeOnlyPolicyKeepsTheConsumerGroupWhenTheLastConsumerMemberLeaves()
    {
        var (h, _, _, _) = await StableClassicGroup("upgrade");
        h.CJoin("c");
        h.CBeat("c", -1, null);
        var group = h.C.GetConsumerGroup("g")!;
        Assert.Equal(2, group.Size);
        Assert.All(group.AllMembers, m => Assert.True(m.UsesClassicProtocol));
    }

    [Fact]
    public async Task AReloadedCoordinatorKeepsTheMixedGroup()
    {
        var (h, k, _) = await ConsumerThenClassic();
        var a2 = h.CBeat("a", 1, new PartitionSet(Enumerable.Range(0, 6).Select(p => (T, p))));
        h.CBeat("a", 1, a2.Assignment);
        var rejoin = await h.Join("g", k);
        var mine = Assigned((await h.Sync("g", k, rejoin.GenerationId)).Assignment);

        var c2 = Reloaded(h);
        var group = c2.GetConsumerGroup("g")!;
        var member = group.Get(k)!;
        Assert.True(member.UsesClassicProtocol);
        Assert.Equal(10_000, member.Classic!.SessionTimeoutMs);
        // The classic member carries on against the new coordinator without rejoining.
        Assert.Equal(ErrorCode.None, c2.Heartbeat("g", k, null, rejoin.GenerationId));
        var again = await c2.SyncGroup("g", rejoin.GenerationId, k, null, "consumer", "range", []).WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(mine, Assigned(again.Assignment));
    }
}
