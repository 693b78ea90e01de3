using Samsa.Kafka.Broker.Groups;
using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Primitives;

namespace Samsa.Kafka.Broker.Tests.Groups;

/// <summary>
/// KIP-848 consumer groups on the coordinator state machine: joins, the server-side assignors,
/// reconciliation (revoke first, assign only released partitions), epochs and fencing, timeouts,
/// static members, regex subscriptions, offsets with member epochs, the shared id namespace with
/// classic groups and replay of the records from __consumer_offsets.
/// </summary>
public class ConsumerGroupTests
{
    private static readonly Guid T = Guid.Parse("00000000-0000-0000-0000-0000000000a1");
    private static readonly Guid U = Guid.Parse("00000000-0000-0000-0000-0000000000b2");

    private sealed class Harness
    {
        public readonly GroupHarness H;
        public List<TopicInfo> Topics = [new("t", T, 6)];
        public Harness(GroupCoordinatorConfig? config = null)
        {
            H = new GroupHarness(config ?? new GroupCoordinatorConfig { OffsetsTopicPartitions = 4 });
            H.Coordinator.TopicSource = () => Topics;
        }
        public GroupCoordinator C => H.Coordinator;

        public ConsumerHeartbeatResult Join(string member, string[]? topics = null, string? regex = null, string? instance = null,
            string? assignor = null, int rebalanceTimeout = 30_000, string group = "g") =>
            C.ConsumerGroupHeartbeat(new ConsumerHeartbeatParams(group, member, 0, instance, null, rebalanceTimeout,
                topics ?? (regex is null ? ["t"] : null), regex, assignor, [], "client", "/127.0.0.1"));

        public ConsumerHeartbeatResult Beat(string member, int epoch, PartitionSet? owned, string? instance = null, string group = "g") =>
            C.ConsumerGroupHeartbeat(new ConsumerHeartbeatParams(group, member, epoch, instance, null, -1, null, null, null,
                owned?.Topics.Select(t => (t, (IReadOnlyList<int>)owned.PartitionsOf(t).ToList())).ToList(), "client", "/127.0.0.1"));
    }

    private static int[] Parts(PartitionSet? s, Guid topic) => s is null ? [] : s.PartitionsOf(topic).ToArray();

    [Fact]
    public void FirstMemberGetsEverythingAtEpochOne()
    {
        var h = new Harness();
        var r = h.Join("m1");
        Assert.Equal(ErrorCode.None, r.Error);
        Assert.Equal(1, r.MemberEpoch);
        Assert.Equal(5000, r.HeartbeatIntervalMs);
        Assert.Equal([0, 1, 2, 3, 4, 5], Parts(r.Assignment, T));
        Assert.Equal(ConsumerGroupState.Stable, h.C.GetConsumerGroup("g")!.State);
    }

    [Fact]
    public void SecondMemberWaitsUntilTheFirstRevokes_NoPartitionIsEverOwnedTwice()
    {
        var h = new Harness();
        var a = h.Join("a");
        var b = h.Join("b");
        // b is at epoch 2 but every partition of its target is still a's: it gets nothing yet.
        Assert.Equal(2, b.MemberEpoch);
        Assert.Empty(Parts(b.Assignment, T));
        Assert.Equal(ConsumerGroupState.Reconciling, h.C.GetConsumerGroup("g")!.State);

        // a's heartbeat (still owning all six) asks it to revoke three; it stays at epoch 1.
        var a2 = h.Beat("a", 1, a.Assignment);
        Assert.Equal(1, a2.MemberEpoch);
        Assert.Equal(3, a2.Assignment!.Count);
        // b heartbeats before a confirmed: still nothing.
        var b2 = h.Beat("b", 2, new PartitionSet());
        Assert.Null(b2.Assignment);

        // a confirms it owns only its three: it moves to epoch 2.
        var a3 = h.Beat("a", 1, a2.Assignment);
        Assert.Equal(2, a3.MemberEpoch);
        // b now receives the released partitions.
        var b3 = h.Beat("b", 2, new PartitionSet());
        Assert.Equal(3, b3.Assignment!.Count);
        Assert.False(b3.Assignment.Overlaps(a2.Assignment));
        Assert.Equal(ConsumerGroupState.Stable, h.C.GetConsumerGroup("g")!.State);
    }

    [Fact]
    public void LeaveFreesPartitionsForTheOthers()
    {
        var h = new Harness();
        var a = h.Join("a");
        h.Join("b");
        var a2 = h.Beat("a", 1, a.Assignment);
        h.Beat("a", 1, a2.Assignment);
        var left = h.Beat("b", -1, null);
        Assert.Equal(-1, left.MemberEpoch);
        var a4 = h.Beat("a", 2, a2.Assignment);
        Assert.Equal(3, a4.MemberEpoch);
        Assert.Equal([0, 1, 2, 3, 4, 5], Parts(a4.Assignment, T));
    }

    /// <summary>Upstream's getOrMaybeCreateConsumerGroup (createIfNotExists only for epoch 0) and
    /// consumerGroupLeave (consumerGroup(groupId)): a heartbeat or a leave naming a group the
    /// coordinator does not know, or a group that is not a consumer group, is GROUP_ID_NOT_FOUND;
    /// an unknown member of a known consumer group stays UNKNOWN_MEMBER_ID.</summary>
    [Fact]
    public void HeartbeatsAndLeavesForAGroupTheCoordinatorDoesNotKnowAreGroupIdNotFound()
    {
        var h = new Harness();
        var beat = h.Beat("m", 3, new PartitionSet(), group: "nope");
        Assert.Equal(ErrorCode.GroupIdNotFound, beat.Error);
        Assert.Equal("Consumer group nope not found.", beat.ErrorMessage);
        Assert.Equal(ErrorCode.GroupIdNotFound, h.Beat("m", -1, null, group: "nope").Error);
        Assert.Equal(ErrorCode.GroupIdNotFound, h.Beat("m", -2, null, instance: "i", group: "nope").Error);
        Assert.Null(h.C.GetConsumerGroup("nope"));

        // A group holding only offsets (a simple consumer's commits) is a classic group.
        var tp = new TopicPartition("t", 0);
        Assert.Equal(ErrorCode.None, h.C.CommitOffsets("simple", "", null, -1, [new OffsetCommitEntry(tp, 5, -1, null)]).Error);
        var onClassic = h.Beat("m", 1, new PartitionSet(), group: "simple");
        Assert.Equal(ErrorCode.GroupIdNotFound, onClassic.Error);
        Assert.Equal("Group simple is not a consumer group.", onClassic.ErrorMessage);
        Assert.Equal(ErrorCode.GroupIdNotFound, h.Beat("m", -1, null, group: "simple").Error);
        // A join (epoch 0) still creates the group, over the offsets-only one too.
        Assert.Equal(ErrorCode.None, h.Join("a", group: "nope").Error);
        Assert.Equal(ErrorCode.None, h.Join("a", group: "simple").Error);
        Assert.Equal(ErrorCode.UnknownMemberId, h.Beat("other", 1, new PartitionSet(), group: "nope").Error);
        Assert.Equal(ErrorCode.UnknownMemberId, h.Beat("other", -1, null, group: "nope").Error);
    }

    /// <summary>Upstream's GroupCoordinatorConfig constructor: the session timeout and heartbeat
    /// interval must lie within their min/max keys (45-60 s and 5-15 s by default) and the interval
    /// below the timeout, else the broker does not start.</summary>
    [Theory]
    [InlineData("group.consumer.heartbeat.interval.ms=1000", "group.consumer.heartbeat.interval.ms must be greater than or equal to group.consumer.min.heartbeat.interval.ms")]
    [InlineData("group.consumer.heartbeat.interval.ms=20000", "group.consumer.heartbeat.interval.ms must be less than or equal to group.consumer.max.heartbeat.interval.ms")]
    [InlineData("group.consumer.max.heartbeat.interval.ms=4000", "group.consumer.max.heartbeat.interval.ms must be greater than or equal to group.consumer.min.heartbeat.interval.ms")]
    [InlineData("group.consumer.session.timeout.ms=10000", "group.consumer.session.timeout.ms must be greater than or equal to group.consumer.min.session.timeout.ms")]
    [InlineData("group.consumer.session.timeout.ms=90000", "group.consumer.session.timeout.ms must be less than or equal to group.consumer.max.session.timeout.ms")]
    [InlineData("group.consumer.min.session.timeout.ms=70000", "group.consumer.max.session.timeout.ms must be greater than or equal to group.consumer.min.session.timeout.ms")]
    [InlineData("group.consumer.min.session.timeout.ms=1000;group.consumer.session.timeout.ms=5000;group.consumer.heartbeat.interval.ms=5000",
        "group.consumer.heartbeat.interval.ms must be less than group.consumer.session.timeout.ms")]
    [InlineData("group.streams.heartbeat.interval.ms=1000", "group.streams.heartbeat.interval.ms must be greater than or equal to group.streams.min.heartbeat.interval.ms")]
    public void SessionAndHeartbeatKeysOutsideTheirBoundsStopTheBroker(string settings, string message)
    {
        var keys = new Dictionary<string, string> { ["broker.id"] = "1" };
        foreach (var kv in settings.Split(';')) keys[kv[..kv.IndexOf('=')]] = kv[(kv.IndexOf('=') + 1)..];
        var e = Assert.Throws<Samsa.Kafka.Broker.Config.ConfigValueException>(() => new KafkaBroker(new Samsa.Kafka.Broker.Config.BrokerConfig(keys), inMemory: true));
        Assert.Equal(message, e.Message);
    }

    [Fact]
    public void SessionAndHeartbeatKeysWithinTheirBoundsAreUsed()
    {
        var config = GroupCoordinatorConfig.From(new Samsa.Kafka.Broker.Config.BrokerConfig(new Dictionary<string, string>
        {
            ["group.consumer.min.heartbeat.interval.ms"] = "500", ["group.consumer.heartbeat.interval.ms"] = "500",
            ["group.consumer.min.session.timeout.ms"] = "6000", ["group.consumer.session.timeout.ms"] = "6000",
        }));
        Assert.Equal(500, config.ConsumerGroupHeartbeatIntervalMs);
        Assert.Equal(6000, config.ConsumerGroupSessionTimeoutMs);
        var defaults = GroupCoordinatorConfig.From(new Samsa.Kafka.Broker.Config.BrokerConfig(new Dictionary<string, string>()));
        Assert.Equal(5000, defaults.ConsumerGroupHeartbeatIntervalMs);
        Assert.Equal(45000, defaults.ConsumerGroupSessionTimeoutMs);
    }

    [Fact]
    public void EpochsAreFencedAsUpstream()
    {
        var h = new Harness();
        var a = h.Join("a");
        Assert.Equal(ErrorCode.FencedMemberEpoch, h.Beat("a", 5, a.Assignment).Error);
        Assert.Equal(ErrorCode.UnknownMemberId, h.Beat("nobody", 1, null).Error);
        // The previous epoch is accepted when the member owns no more than it was given (lost response).
        h.Join("b");
        var a2 = h.Beat("a", 1, a.Assignment);
        h.Beat("a", 1, a2.Assignment);
        Assert.Equal(ErrorCode.None, h.Beat("a", 1, a2.Assignment).Error);
        Assert.Equal(ErrorCode.FencedMemberEpoch, h.Beat("a", 1, a.Assignment).Error);
    }

    [Fact]
    public void InvalidRequestsGetUpstreamsErrors()
    {
        var h = new Harness();
        Assert.Equal(ErrorCode.InvalidRequest, h.C.ConsumerGroupHeartbeat(new ConsumerHeartbeatParams("g", "", 0, null, null, 1000, ["t"], null, null, [], "c", "h", 1)).Error);
        Assert.Equal(ErrorCode.InvalidRequest, h.C.ConsumerGroupHeartbeat(new ConsumerHeartbeatParams("g", "m", 0, null, null, -1, ["t"], null, null, [], "c", "h")).Error);
        Assert.Equal(ErrorCode.UnsupportedAssignor, h.Join("m", assignor: "sticky").Error);
        Assert.Equal(ErrorCode.InvalidRegularExpression, h.Join("m", regex: "t(").Error);
        // v0: the coordinator picks the member id.
        var v0 = h.C.ConsumerGroupHeartbeat(new ConsumerHeartbeatParams("g", "", 0, null, null, 1000, ["t"], null, null, [], "c", "h", 0));
        Assert.Equal(ErrorCode.None, v0.Error);
        Assert.False(string.IsNullOrEmpty(v0.MemberId));
    }

    [Fact]
    public void SessionTimeoutRemovesTheMemberAndBumpsTheEpoch()
    {
        var h = new Harness(new GroupCoordinatorConfig { OffsetsTopicPartitions = 4, ConsumerGroupSessionTimeoutMs = 10_000 });
        h.Join("a");
        h.Join("b");
        h.H.Advance(6_000);
        h.Beat("a", 1, new PartitionSet(Enumerable.Range(0, 6).Select(p => (T, p))));
        h.H.Advance(6_000); // b silent for 12 s
        var g = h.C.GetConsumerGroup("g")!;
        Assert.Null(g.Get("b"));
        Assert.Equal(3, g.GroupEpoch);
    }

    [Fact]
    public void AMemberThatDoesNotRevokeWithinTheRebalanceTimeoutIsRemoved()
    {
        var h = new Harness(new GroupCoordinatorConfig { OffsetsTopicPartitions = 4, ConsumerGroupSessionTimeoutMs = 60_000 });
        var a = h.Join("a", rebalanceTimeout: 5_000);
        h.Join("b");
        h.Beat("a", 1, a.Assignment); // asked to revoke
        h.H.Advance(3_000);
        h.Beat("a", 1, a.Assignment); // still owns them
        Assert.NotNull(h.C.GetConsumerGroup("g")!.Get("a"));
        h.H.Advance(3_000);
        Assert.Null(h.C.GetConsumerGroup("g")!.Get("a"));
        // b now gets everything.
        var b = h.Beat("b", 2, new PartitionSet());
        Assert.Equal(6, b.Assignment!.Count);
    }

    [Fact]
    public void StaticMemberRejoinsWithItsAssignment_AndAnActiveInstanceIdIsUnreleased()
    {
        var h = new Harness();
        var a = h.Join("a1", instance: "i");
        var b = h.Join("b");
        var a2 = h.Beat("a1", 1, a.Assignment, "i");
        var a3 = h.Beat("a1", 1, a2.Assignment, "i");
        h.Beat("b", 2, new PartitionSet());
        Assert.Equal(ErrorCode.UnreleasedInstanceId, h.Join("a2", instance: "i").Error);

        var leave = h.Beat("a1", -2, null, "i");
        Assert.Equal(-2, leave.MemberEpoch);
        int epoch = h.C.GetConsumerGroup("g")!.GroupEpoch;
        var back = h.Join("a2", instance: "i");
        Assert.Equal(ErrorCode.None, back.Error);
        Assert.True(back.Assignment!.SetEquals(a3.Assignment!));
        Assert.Equal(epoch, h.C.GetConsumerGroup("g")!.GroupEpoch);
        Assert.Null(h.C.GetConsumerGroup("g")!.Get("a1"));
    }

    [Fact]
    public void RegexSubscriptionPicksUpANewTopic()
    {
        var h = new Harness();
        h.Topics = [new("pre-1", T, 2), new("other", U, 2)];
        var a = h.Join("a", regex: "pre-.*");
        Assert.Equal([0, 1], Parts(a.Assignment, T));
        Assert.Empty(Parts(a.Assignment, U));
        var v = Guid.NewGuid();
        h.Topics = [.. h.Topics, new("pre-2", v, 3)];
        var a2 = h.Beat("a", 1, a.Assignment);
        Assert.Equal(2, a2.MemberEpoch);
        Assert.Equal([0, 1, 2], Parts(a2.Assignment, v));
    }

    [Fact]
    public void UniformIsBalancedAndSticky_RangeIsContiguous()
    {
        var members = new[] { "a", "b", "c" }.Select(m => new AssignorMember(m, null, null, new HashSet<Guid> { T })).ToList();
        var parts = new Dictionary<Guid, int> { [T] = 7 };
        var first = new UniformAssignor().Assign(members, parts, new Dictionary<string, PartitionSet>());
        Assert.Equal(7, first.Values.Sum(s => s.Count));
        Assert.True(first.Values.Max(s => s.Count) - first.Values.Min(s => s.Count) <= 1);
        // A fourth member: the others keep what they can.
        var four = members.Append(new AssignorMember("d", null, null, new HashSet<Guid> { T })).ToList();
        var second = new UniformAssignor().Assign(four, parts, first);
        Assert.True(second.Values.Max(s => s.Count) - second.Values.Min(s => s.Count) <= 1);
        int moved = first.Sum(kv => kv.Value.Minus(second[kv.Key]).Count);
        Assert.Equal(second["d"].Count, moved);

        var range = new RangeAssignor().Assign(members, parts, new Dictionary<string, PartitionSet>());
        Assert.Equal([0, 1, 2], range["a"].PartitionsOf(T).ToArray());
        Assert.Equal([3, 4], range["b"].PartitionsOf(T).ToArray());
        Assert.Equal([5, 6], range["c"].PartitionsOf(T).ToArray());
    }

    [Fact]
    public void RangeIsUsedWhenTheMembersAskForIt()
    {
        var h = new Harness();
        h.Join("a", assignor: "range");
        Assert.Equal("range", h.C.GetConsumerGroup("g")!.AssignorName);
    }

    [Fact]
    public void OffsetCommitsCarryTheMemberEpoch()
    {
        var h = new Harness();
        var a = h.Join("a");
        var tp = new TopicPartition("t", 0);
        var ok = h.C.CommitOffsets("g", "a", null, 1, [new OffsetCommitEntry(tp, 10, -1, null)]);
        Assert.Equal(ErrorCode.None, ok.Partitions[tp]);
        Assert.Equal(ErrorCode.StaleMemberEpoch, h.C.CommitOffsets("g", "a", null, 0, [new OffsetCommitEntry(tp, 11, -1, null)]).Error);
        Assert.Equal(ErrorCode.UnknownMemberId, h.C.CommitOffsets("g", "zz", null, 1, [new OffsetCommitEntry(tp, 11, -1, null)]).Error);
        Assert.Equal(ErrorCode.StaleMemberEpoch, h.C.ValidateOffsetFetchMember("g", "a", 7));
        Assert.Null(h.C.ValidateOffsetFetchMember("g", "a", 1));
        Assert.Equal(10, h.C.FetchOffsets("g", [tp]).Offsets[0].Offset!.Offset);
    }

    [Fact]
    public async Task GroupIdsAreSharedWithClassicGroups()
    {
        var h = new Harness();
        h.Join("a", group: "cg");
        // A classic JoinGroup to a non-empty consumer group is admitted as a mixed-group member
        // (MixedGroupTests); here it only gets its member id and never completes the join.
        var join = await h.H.Join("cg");
        Assert.Equal(ErrorCode.MemberIdRequired, join.Error);
        var (_, listed) = h.C.ListGroups(null, ["consumer"]);
        Assert.Equal("Stable", Assert.Single(listed).State);
        Assert.Empty(h.C.ListGroups(null, ["classic"]).Groups);
        Assert.Equal("Group cg is not a classic group.", h.C.DescribeGroup("cg").Summary.NotFound);

        // A classic group with members refuses a consumer heartbeat when it cannot be upgraded
        // (here: its assignment is not a consumer protocol assignment; MixedGroupTests covers the upgrade).
        await h.H.StableSingle("classic");
        Assert.Equal(ErrorCode.GroupIdNotFound, h.Join("m", group: "classic").Error);

        // An emptied consumer group becomes classic on a classic join (downgrade of an empty group).
        h.Beat("a", -1, null, group: "cg");
        await h.H.JoinNew("cg");
        Assert.Null(h.C.GetConsumerGroup("cg"));
    }

    [Fact]
    public void StateSurvivesReplayOfTheRecords()
    {
        var h = new Harness();
        var a = h.Join("a", instance: "ia");
        h.Join("b");
        var a2 = h.Beat("a", 1, a.Assignment, "ia");
        var tp = new TopicPartition("t", 1);
        h.C.CommitOffsets("g", "a", null, 1, [new OffsetCommitEntry(tp, 42, -1, null)]);
        var before = h.C.GetConsumerGroup("g")!;
        int partition = h.C.PartitionFor("g");

        // Every record decodes, and key versions 3, 5, 6, 7, 8 were written.
        var versions = h.H.Log.Records.Select(r => (int)System.Buffers.Binary.BinaryPrimitives.ReadInt16BigEndian(r.Record.Key)).ToHashSet();
        Assert.Superset(new HashSet<int> { 3, 5, 6, 7, 8 }, versions);

        var c2 = new GroupCoordinator(new GroupCoordinatorConfig { OffsetsTopicPartitions = 4 }, new MemoryGroupLog(), () => h.H.Now);
        c2.TopicSource = () => h.Topics;
        c2.Activate(4, loading: true);
        c2.LoadPartition(partition, h.H.Log.Entries(partition));
        var after = c2.GetConsumerGroup("g")!;
        Assert.Equal(before.GroupEpoch, after.GroupEpoch);
        Assert.Equal(before.AssignmentEpoch, after.AssignmentEpoch);
        Assert.Equal(ConsumerMemberState.UnrevokedPartitions, after.Get("a")!.State);
        Assert.True(after.Get("a")!.Assigned.SetEquals(a2.Assignment!));
        Assert.True(after.TargetOf("b").SetEquals(before.TargetOf("b")));
        Assert.Equal("ia", after.Get("a")!.InstanceId);
        Assert.Equal(42, c2.FetchOffsets("g", [tp]).Offsets[0].Offset!.Offset);
        // The reloaded coordinator continues the reconciliation: a confirms, b gets the rest.
        var confirmed = c2.ConsumerGroupHeartbeat(new ConsumerHeartbeatParams("g", "a", 1, "ia", null, -1, null, null, null,
            [(T, a2.Assignment!.PartitionsOf(T).ToList())], "c", "h"));
        Assert.Equal(2, confirmed.MemberEpoch);

        // A deleted group leaves tombstones: after replay it is gone.
        h.Beat("a", -1, null, "ia");
        h.Beat("b", -1, null);
        h.C.DeleteOffsets("g", [tp]);
        Assert.Equal(ErrorCode.None, h.C.DeleteGroups(["g"])["g"]);
        var c3 = new GroupCoordinator(new GroupCoordinatorConfig { OffsetsTopicPartitions = 4 }, new MemoryGroupLog(), () => h.H.Now);
        c3.Activate(4, loading: true);
        c3.LoadPartition(partition, h.H.Log.Entries(partition));
        Assert.Null(c3.GetConsumerGroup("g"));
    }

    [Fact]
    public void MalformedConsumerRecordsAreProtocolErrorsNotCrashes()
    {
        var rng = new Random(848);
        for (int i = 0; i < 5000; i++)
        {
            var key = new byte[2 + rng.Next(0, 12)];
            rng.NextBytes(key);
            key[0] = 0;
            key[1] = (byte)rng.Next(3, 9);
            byte[]? value = rng.Next(4) == 0 ? null : new byte[rng.Next(0, 40)];
            if (value is not null) rng.NextBytes(value);
            try { GroupRecords.Decode(key, value); }
            catch (KafkaProtocolException) { }
        }
    }
}
