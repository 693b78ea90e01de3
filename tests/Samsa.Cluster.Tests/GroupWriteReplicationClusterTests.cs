using System.Diagnostics;
using Confluent.Kafka;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Groups;
using Samsa.Kafka.Protocol.Messages;
using Xunit;

namespace Samsa.Cluster.Tests;

/// <summary>
/// Group writes survive a kill of the coordinator's broker right after they were answered: the
/// coordinator answers a KIP-848 heartbeat, a classic SyncGroup and a TxnOffsetCommit only once the
/// group's __consumer_offsets partition replicated the write (upstream's CoordinatorRuntime, acks=all).
/// Each test stalls the followers' fetches from the coordinator while the request is in flight, so
/// an answer given after the local append alone shows up at once (and the kill then loses it); the
/// fetches resume, the answer comes, the coordinator's broker is killed, and the new coordinator
/// must have the same member epoch / assignment / offsets.
/// </summary>
public sealed class GroupWriteReplicationClusterTests(KeeperServer server) : IClassFixture<KeeperServer>
{
    private const short NoError = 0, CoordinatorLoadInProgress = 14, CoordinatorNotAvailable = 15, NotCoordinator = 16, UnstableOffsetCommit = 88;
    private const int OffsetsPartitions = 6;

    private string Server
    {
        get
        {
            Assert.SkipWhen(server.SkipReason is not null, server.SkipReason ?? "");
            return server.Address!;
        }
    }

    private sealed class Setup : IAsyncDisposable
    {
        public required LocalCluster Cluster;
        public required string Group;
        public required int Coordinator;
        public Guid TopicId;
        /// <summary>What was answered while the followers could not fetch (checked last, so a run
        /// that answers early shows first what the kill lost).</summary>
        public readonly List<string> AnsweredEarly = [];
        public int Survivor => new[] { 1, 2, 3 }.First(b => b != Coordinator);
        public ValueTask DisposeAsync() => Cluster.DisposeAsync();
    }

    /// <summary>Three brokers (offsets topic RF 3, min ISR 2), topic "input" with 3 partitions on all
    /// three, and a group coordinated by a broker other than 1, found through broker 1.</summary>
    private async Task<Setup> StartAsync(string prefix)
    {
        var config = new Dictionary<string, string>
        {
            ["offsets.topic.num.partitions"] = OffsetsPartitions.ToString(), ["offsets.topic.replication.factor"] = "3",
            ["transaction.state.log.num.partitions"] = OffsetsPartitions.ToString(), ["transaction.state.log.replication.factor"] = "3",
            ["default.replication.factor"] = "3", ["min.insync.replicas"] = "2", ["group.initial.rebalance.delay.ms"] = "0",
        };
        var cluster = await LocalCluster.StartAsync(Server, 3, viaProxies: true, observeClients: true, brokerConfig: config, sessionTimeoutMs: 4000);
        try
        {
            await LocalCluster.WaitUntilAsync(async () => (await cluster.MetadataAsync(1)).Brokers.Count == 3, TimeSpan.FromSeconds(10), "broker 1 sees all brokers");
            await using (var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(1)))
            {
                var r = await c.SendAsync<CreateTopicsResponse>(new CreateTopicsRequest
                {
                    TimeoutMs = 30000,
                    Topics = [new CreateTopicsRequest.CreatableTopic
                    {
                        Name = "input", NumPartitions = -1, ReplicationFactor = -1,
                        Assignments = [.. Enumerable.Range(0, 3).Select(p => new CreateTopicsRequest.CreatableReplicaAssignment
                            { PartitionIndex = p, BrokerIds = [1 + p % 3, 1 + (p + 1) % 3, 1 + (p + 2) % 3] })],
                    }],
                }, 5);
                Assert.Equal(0, r!.Topics[0].ErrorCode);
            }
            var md = await cluster.LedMetadataAsync(1, "input", 3);
            string group = "";
            int coordinator = 0;
            for (int i = 0; ; i++)
            {
                group = $"{prefix}-{i}";
                coordinator = (await cluster.FindCoordinatorAsync(1, group)).NodeId;
                if (coordinator != 1) break;
            }
            int partition = GroupCoordinator.PartitionFor(group, OffsetsPartitions);
            await LocalCluster.WaitUntilAsync(async () =>
                (await cluster.MetadataAsync(coordinator, "__consumer_offsets")).Topics[0].Partitions.Single(p => p.PartitionIndex == partition).IsrNodes.Count == 3,
                TimeSpan.FromSeconds(20), "the group's offsets partition has a full ISR");
            return new Setup { Cluster = cluster, Group = group, Coordinator = coordinator, TopicId = md.Topics[0].TopicId };
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>Sends a request while the followers cannot fetch from the coordinator: it must not be
    /// answered then; once they fetch again it is.</summary>
    private static async Task<T> AnsweredOnlyOnceReplicatedAsync<T>(Setup s, Func<Task<T>> send, string what)
    {
        var proxy = s.Cluster.ListenerProxy(s.Coordinator);
        var followers = new[] { 1, 2, 3 }.Where(b => b != s.Coordinator).ToList();
        foreach (var b in followers) proxy.Stall(b, true);
        var task = send();
        bool early = await Task.WhenAny(task, Task.Delay(1500)) == task;
        // On an early answer the stall stays until the kill, as the replication window would be.
        if (!early) foreach (var b in followers) proxy.Stall(b, false);
        var result = await task.WaitAsync(TimeSpan.FromSeconds(30));
        if (early) s.AnsweredEarly.Add(what);
        return result;
    }

    private static async Task<int> KillCoordinatorAsync(Setup s)
    {
        await s.Cluster.CrashBrokerAsync(s.Coordinator);
        FindCoordinatorResponse moved = null!;
        await LocalCluster.WaitUntilAsync(async () =>
        {
            moved = await s.Cluster.FindCoordinatorAsync(s.Survivor, s.Group);
            return moved.NodeId != s.Coordinator;
        }, TimeSpan.FromSeconds(30), "another broker coordinates the group");
        return moved.NodeId;
    }

    private static async Task<T> UntilLoadedAsync<T>(Func<Task<T>> send, Func<T, short> error, string what) where T : class
    {
        T answer = null!;
        await LocalCluster.WaitUntilAsync(async () =>
        {
            answer = await send();
            short e = error(answer);
            Assert.True(e is NoError or CoordinatorLoadInProgress or NotCoordinator or CoordinatorNotAvailable, $"{what}: error {e}");
            return e is not (CoordinatorLoadInProgress or NotCoordinator or CoordinatorNotAvailable);
        }, TimeSpan.FromSeconds(20), what);
        return answer;
    }

    [Fact]
    public async Task GroupWriteReplication_ConsumerHeartbeatAssignmentSurvivesACoordinatorKill()
    {
        await using var s = await StartAsync("kip848");
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", s.Cluster.Port(s.Coordinator));
        var joined = await AnsweredOnlyOnceReplicatedAsync(s, async () => (await c.SendAsync<ConsumerGroupHeartbeatResponse>(new ConsumerGroupHeartbeatRequest
        {
            GroupId = s.Group, MemberId = "member-1", MemberEpoch = 0, RebalanceTimeoutMs = 30_000, SubscribedTopicNames = ["input"], TopicPartitions = [],
        }, 1))!, "the joining ConsumerGroupHeartbeat");
        Assert.Equal((NoError, 1), (joined.ErrorCode, joined.MemberEpoch));
        Assert.Equal([0, 1, 2], Assert.Single(joined.Assignment!.TopicPartitions).Partitions);

        int moved = await KillCoordinatorAsync(s);
        await using var n = await KafkaWireClient.ConnectAsync("127.0.0.1", s.Cluster.Port(moved));
        // The member heartbeats at the new coordinator with the epoch it was given: same epoch, no
        // fencing, no rejoin (a lost group answers UNKNOWN_MEMBER_ID).
        var hb = await UntilLoadedAsync(async () => (await n.SendAsync<ConsumerGroupHeartbeatResponse>(new ConsumerGroupHeartbeatRequest
        {
            GroupId = s.Group, MemberId = "member-1", MemberEpoch = 1,
        }, 1))!, r => r.ErrorCode, "heartbeat at the new coordinator");
        Assert.Equal((NoError, 1), (hb.ErrorCode, hb.MemberEpoch));
        var d = (await n.SendAsync<ConsumerGroupDescribeResponse>(new ConsumerGroupDescribeRequest { GroupIds = [s.Group] }, 1))!;
        var m = Assert.Single(d.Groups[0].Members);
        Assert.Equal(("member-1", 1), (m.MemberId, m.MemberEpoch));
        Assert.Equal([0, 1, 2], Assert.Single(m.Assignment.TopicPartitions).Partitions.Order());
        Assert.Empty(s.AnsweredEarly);
    }

    [Fact]
    public async Task GroupWriteReplication_ClassicJoinAndSyncSurviveACoordinatorKill()
    {
        await using var s = await StartAsync("classic");
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", s.Cluster.Port(s.Coordinator));
        JoinGroupResponse join = null!;
        await LocalCluster.WaitUntilAsync(async () =>
        {
            join = (await c.SendAsync<JoinGroupResponse>(new JoinGroupRequest
            {
                GroupId = s.Group, SessionTimeoutMs = 30_000, RebalanceTimeoutMs = 10_000, MemberId = "", ProtocolType = "consumer",
                Protocols = [new JoinGroupRequest.JoinGroupRequestProtocol { Name = "range", Metadata = [0, 1, 2, 3] }],
            }, 3))!;
            return join.ErrorCode == NoError;
        }, TimeSpan.FromSeconds(20), "the member joins");
        Assert.Equal(join.MemberId, join.Leader);
        byte[] assignment = [9, 8, 7, 6];
        var sync = await AnsweredOnlyOnceReplicatedAsync(s, async () => (await c.SendAsync<SyncGroupResponse>(new SyncGroupRequest
        {
            GroupId = s.Group, GenerationId = join.GenerationId, MemberId = join.MemberId,
            Assignments = [new() { MemberId = join.MemberId, Assignment = assignment }],
        }, 3))!, "the leader's SyncGroup");
        Assert.Equal(NoError, sync.ErrorCode);
        Assert.Equal(assignment, sync.Assignment);

        int moved = await KillCoordinatorAsync(s);
        await using var n = await KafkaWireClient.ConnectAsync("127.0.0.1", s.Cluster.Port(moved));
        // The member keeps its generation at the new coordinator (a lost group: UNKNOWN_MEMBER_ID).
        var hb = await UntilLoadedAsync(async () => (await n.SendAsync<HeartbeatResponse>(new HeartbeatRequest
        {
            GroupId = s.Group, MemberId = join.MemberId, GenerationId = join.GenerationId,
        }, 3))!, r => r.ErrorCode, "heartbeat at the new coordinator");
        Assert.Equal(NoError, hb.ErrorCode);
        var d = (await n.SendAsync<DescribeGroupsResponse>(new DescribeGroupsRequest { Groups = [s.Group] }, 5))!;
        Assert.Equal("Stable", d.Groups[0].GroupState);
        var member = Assert.Single(d.Groups[0].Members);
        Assert.Equal((join.MemberId, "09080706"), (member.MemberId, Convert.ToHexString(member.MemberAssignment)));
        Assert.Empty(s.AnsweredEarly);
    }

    [Fact]
    public async Task GroupWriteReplication_TxnOffsetCommitAndCommitSurviveACoordinatorKill()
    {
        await using var s = await StartAsync("txn");
        var producerConfig = new ProducerConfig
        {
            BootstrapServers = s.Cluster.Bootstrap(1), TransactionalId = "txn-" + s.Group, EnableIdempotence = true,
            TransactionTimeoutMs = 60_000,
        };
        using var producer = new ProducerBuilder<Null, string>(producerConfig).Build();
        producer.InitTransactions(TimeSpan.FromSeconds(30));
        producer.BeginTransaction();
        await producer.ProduceAsync("input", new Message<Null, string> { Value = "x" });
        var offsets = Enumerable.Range(0, 3).Select(p => new TopicPartitionOffset("input", p, 100 + p)).ToList();
        IConsumerGroupMetadata metadata;
        using (var consumer = new ConsumerBuilder<Null, string>(new ConsumerConfig { BootstrapServers = s.Cluster.Bootstrap(1), GroupId = s.Group }).Build())
            metadata = consumer.ConsumerGroupMetadata;
        await AnsweredOnlyOnceReplicatedAsync(s, () => Task.Run(() =>
        {
            producer.SendOffsetsToTransaction(offsets, metadata, TimeSpan.FromSeconds(30));
            return true;
        }), "TxnOffsetCommit");
        producer.CommitTransaction(TimeSpan.FromSeconds(30));

        int moved = await KillCoordinatorAsync(s);
        await using var n = await KafkaWireClient.ConnectAsync("127.0.0.1", s.Cluster.Port(moved));
        // Stable offsets (no transaction pending on them) at the new coordinator: the committed ones.
        // The commit's marker may still be on its way to the new leader (upstream writes markers after
        // answering EndTxn), so UNSTABLE_OFFSET_COMMIT is retried as a consumer does.
        OffsetFetchResponse fetched = null!;
        await LocalCluster.WaitUntilAsync(async () =>
        {
            fetched = await UntilLoadedAsync(async () => (await n.SendAsync<OffsetFetchResponse>(new OffsetFetchRequest
            {
                GroupId = s.Group, RequireStable = true, Topics = [new() { Name = "input", PartitionIndexes = [0, 1, 2] }],
            }, 7))!, r => r.ErrorCode, "OffsetFetch at the new coordinator");
            return fetched.Topics[0].Partitions.All(p => p.ErrorCode != UnstableOffsetCommit);
        }, TimeSpan.FromSeconds(30), "the commit's offsets become stable at the new coordinator");
        Assert.All(fetched.Topics[0].Partitions, p => Assert.Equal(NoError, p.ErrorCode));
        Assert.Equal([100L, 101L, 102L], fetched.Topics[0].Partitions.OrderBy(p => p.PartitionIndex).Select(p => p.CommittedOffset));
        Assert.Empty(s.AnsweredEarly);
    }
}
