using Samsa.Kafka.Broker.Tests.Handlers;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Tests.Groups;

/// <summary>
/// Group requests that write __consumer_offsets are answered only once the write is replicated
/// (upstream's CoordinatorRuntime completes a write operation when the high watermark passes it),
/// and requests that write nothing are answered at once. The replication wait is replaced by a gate
/// the test opens (a slow ISR), or by an error (a failed or moved write).
/// </summary>
public class GroupWriteReplicationTests
{
    private sealed class SlowIsr
    {
        private TaskCompletionSource<ErrorCode> _gate = New();
        public readonly List<(string Topic, int Partition, long EndOffset)> Waits = [];

        private static TaskCompletionSource<ErrorCode> New() => new(TaskCreationOptions.RunContinuationsAsynchronously);

        public SlowIsr(KafkaBroker broker) => broker.InternalWriteWaitForTests = (topic, partition, end, ct) =>
        {
            lock (Waits) Waits.Add((topic, partition, end));
            return _gate.Task.WaitAsync(ct);
        };

        public int Count { get { lock (Waits) return Waits.Count; } }

        /// <summary>The ISR catches up (or the write fails with <paramref name="outcome"/>); the next
        /// waits block again.</summary>
        public void Release(ErrorCode outcome = ErrorCode.None)
        {
            var gate = _gate;
            _gate = New();
            gate.SetResult(outcome);
        }

        public void AlwaysAnswer(ErrorCode outcome)
        {
            _gate = New();
            _gate.SetResult(outcome);
        }
    }

    private static async Task<HandlerFixture> StartAsync()
    {
        var f = new HandlerFixture(("offsets.topic.replication.factor", "1"), ("offsets.topic.num.partitions", "3"),
            ("group.initial.rebalance.delay.ms", "0"));
        var created = await f.Send<CreateTopicsResponse>(new CreateTopicsRequest { TimeoutMs = 5000, Topics = [new() { Name = "t", NumPartitions = 3, ReplicationFactor = 1 }] }, 5);
        Assert.Equal(0, created!.Topics[0].ErrorCode);
        var found = await f.Send<FindCoordinatorResponse>(new FindCoordinatorRequest { Key = "any" }, 3);
        Assert.Equal(0, found!.ErrorCode);
        return f;
    }

    private static async Task AssertStillWaiting(Task task, string what)
    {
        await Task.Delay(300);
        Assert.False(task.IsCompleted, $"{what} was answered before its write was replicated");
    }

    [Fact]
    public async Task GroupWriteReplication_ConsumerHeartbeatThatChangesTheGroupWaitsASteadyOneDoesNot()
    {
        await using var f = await StartAsync();
        var isr = new SlowIsr(f.Broker);
        var join = f.Send<ConsumerGroupHeartbeatResponse>(new ConsumerGroupHeartbeatRequest
        {
            GroupId = "cg", MemberId = "m-1", MemberEpoch = 0, RebalanceTimeoutMs = 30_000, SubscribedTopicNames = ["t"], TopicPartitions = [],
        }, 1);
        await AssertStillWaiting(join, "the joining heartbeat");
        var wait = Assert.Single(isr.Waits);
        Assert.Equal(("__consumer_offsets", f.Broker.Groups.Coordinator.PartitionFor("cg")), (wait.Topic, wait.Partition));
        // The wait is for the group's own records: up to the log end right after their append.
        Assert.Equal(f.Broker.Replicas.GetPartition("__consumer_offsets", wait.Partition)!.Log.LogEndOffset, wait.EndOffset);
        Assert.True(wait.EndOffset > 0);
        isr.Release();
        var joined = await join;
        Assert.Equal((0, 1), (joined!.ErrorCode, joined.MemberEpoch));
        Assert.Equal([0, 1, 2], Assert.Single(joined.Assignment!.TopicPartitions).Partitions);

        // A heartbeat that changes nothing writes nothing: answered while the gate is shut.
        var steady = await f.Send<ConsumerGroupHeartbeatResponse>(new ConsumerGroupHeartbeatRequest
        {
            GroupId = "cg", MemberId = "m-1", MemberEpoch = 1,
        }, 1).WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal((0, 1), (steady!.ErrorCode, steady.MemberEpoch));
        Assert.Equal(1, isr.Count);

        // A write the ISR does not take in time / that lost its leadership: upstream's codes, no message.
        isr.AlwaysAnswer(ErrorCode.CoordinatorNotAvailable);
        var second = await f.Send<ConsumerGroupHeartbeatResponse>(new ConsumerGroupHeartbeatRequest
        {
            GroupId = "cg", MemberId = "m-2", MemberEpoch = 0, RebalanceTimeoutMs = 30_000, SubscribedTopicNames = ["t"], TopicPartitions = [],
        }, 1);
        Assert.Equal((short)ErrorCode.CoordinatorNotAvailable, second!.ErrorCode);
        Assert.Null(second.ErrorMessage);
        isr.AlwaysAnswer(ErrorCode.NotCoordinator);
        var leave = await f.Send<ConsumerGroupHeartbeatResponse>(new ConsumerGroupHeartbeatRequest { GroupId = "cg", MemberId = "m-1", MemberEpoch = -1 }, 1);
        Assert.Equal((short)ErrorCode.NotCoordinator, leave!.ErrorCode);
    }

    [Fact]
    public async Task GroupWriteReplication_ClassicSyncGroupAnswersLeaderAndFollowerOnceTheAssignmentIsReplicated()
    {
        await using var f = await StartAsync();
        var coordinator = f.Broker.Groups.Coordinator;
        JoinGroupRequest Join(string memberId) => new()
        {
            GroupId = "g", SessionTimeoutMs = 10_000, RebalanceTimeoutMs = 10_000, MemberId = memberId, ProtocolType = "consumer",
            Protocols = [new JoinGroupRequest.JoinGroupRequestProtocol { Name = "range", Metadata = [0, 0, 0, 0, 0, 0] }],
        };
        var isr = new SlowIsr(f.Broker);
        // JoinGroup v3: no member id round trip. Both join, the rebalance completes on the tick.
        var j1 = f.Send<JoinGroupResponse>(Join(""), 3);
        var j2 = f.Send<JoinGroupResponse>(Join(""), 3);
        JoinGroupResponse r1 = null!, r2 = null!;
        for (int i = 0; i < 100 && !(j1.IsCompleted && j2.IsCompleted); i++)
        {
            coordinator.Tick();
            await Task.Delay(20);
        }
        (r1, r2) = ((await j1)!, (await j2)!);
        Assert.Equal((0, 0), (r1!.ErrorCode, r2!.ErrorCode));
        // Joins completed by the rebalance wrote nothing and waited for nothing.
        Assert.Equal(0, isr.Count);
        var (leader, follower) = r1.Leader == r1.MemberId ? (r1, r2) : (r2, r1);
        var followerSync = f.Send<SyncGroupResponse>(new SyncGroupRequest { GroupId = "g", GenerationId = follower.GenerationId, MemberId = follower.MemberId, Assignments = [] }, 3);
        await Task.Delay(100);
        var leaderSync = f.Send<SyncGroupResponse>(new SyncGroupRequest
        {
            GroupId = "g", GenerationId = leader.GenerationId, MemberId = leader.MemberId,
            Assignments = [new() { MemberId = leader.MemberId, Assignment = [1] }, new() { MemberId = follower.MemberId, Assignment = [2] }],
        }, 3);
        await AssertStillWaiting(leaderSync, "the leader's SyncGroup");
        Assert.False(followerSync.IsCompleted, "the follower got its assignment before the group record was replicated");
        isr.Release();
        var (ls, fs) = (await leaderSync, await followerSync);
        Assert.Equal((0, "01"), (ls!.ErrorCode, Convert.ToHexString(ls.Assignment)));
        Assert.Equal((0, "02"), (fs!.ErrorCode, Convert.ToHexString(fs.Assignment)));

        // A heartbeat of the stable classic group writes nothing.
        var hb = await f.Send<HeartbeatResponse>(new HeartbeatRequest { GroupId = "g", MemberId = follower.MemberId, GenerationId = follower.GenerationId }, 3)
            .WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(0, hb!.ErrorCode);

        // The follower leaving starts a rebalance and writes nothing; the last member leaving empties
        // the group, whose record is written: that leave answers the write's failure (top-level code,
        // no members, as upstream's handleOperationException).
        isr.AlwaysAnswer(ErrorCode.NotCoordinator);
        int waits = isr.Count;
        var left = await f.Send<LeaveGroupResponse>(new LeaveGroupRequest { GroupId = "g", Members = [new() { MemberId = follower.MemberId }] }, 3);
        Assert.Equal((0, 0, waits), (left!.ErrorCode, left.Members.Single().ErrorCode, isr.Count));
        var last = await f.Send<LeaveGroupResponse>(new LeaveGroupRequest { GroupId = "g", Members = [new() { MemberId = leader.MemberId }] }, 3);
        Assert.Equal((short)ErrorCode.NotCoordinator, last!.ErrorCode);
        Assert.Empty(last.Members);
        Assert.Equal(waits + 1, isr.Count);
    }

    [Fact]
    public async Task GroupWriteReplication_AdminDeletesAnswerTheReplicationError()
    {
        await using var f = await StartAsync();
        var isr = new SlowIsr(f.Broker);
        isr.AlwaysAnswer(ErrorCode.None);
        foreach (var g in new[] { "a", "b" })
        {
            var commit = await f.Send<OffsetCommitResponse>(new OffsetCommitRequest
            {
                GroupId = g, GenerationIdOrMemberEpoch = -1, MemberId = "",
                Topics = [new() { Name = "t", Partitions = [new() { PartitionIndex = 0, CommittedOffset = 7 }, new() { PartitionIndex = 1, CommittedOffset = 8 }] }],
            }, 8);
            Assert.All(commit!.Topics[0].Partitions, p => Assert.Equal(0, p.ErrorCode));
        }
        int waits = isr.Count;
        // Nothing to delete writes nothing: no wait.
        var none = await f.Send<OffsetDeleteResponse>(new OffsetDeleteRequest { GroupId = "a", Topics = [new() { Name = "t", Partitions = [new() { PartitionIndex = 2 }] }] }, 0);
        Assert.Equal((0, waits), (none!.ErrorCode, isr.Count));

        isr.AlwaysAnswer(ErrorCode.CoordinatorNotAvailable);
        var deleted = await f.Send<OffsetDeleteResponse>(new OffsetDeleteRequest { GroupId = "a", Topics = [new() { Name = "t", Partitions = [new() { PartitionIndex = 0 }] }] }, 0);
        Assert.Equal((short)ErrorCode.CoordinatorNotAvailable, deleted!.ErrorCode);
        Assert.Empty(deleted.Topics);

        isr.AlwaysAnswer(ErrorCode.NotCoordinator);
        var groups = await f.Send<DeleteGroupsResponse>(new DeleteGroupsRequest { GroupsNames = ["b", "unknown"] }, 2);
        Assert.Equal([(short)ErrorCode.NotCoordinator, (short)ErrorCode.GroupIdNotFound], groups!.Results.Select(r => r.ErrorCode).ToArray());
    }
}
