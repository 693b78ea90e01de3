using System.Diagnostics;
using System.Text.Json.Nodes;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Groups;
using Samsa.Kafka.Protocol.Messages;
using Xunit;

namespace Samsa.Cluster.Tests;

public sealed class KeeperCoordinatorClusterTests(KeeperServer server) : CoordinatorClusterTests(server), IClassFixture<KeeperServer>;

public sealed class ApacheZooKeeperCoordinatorClusterTests(ApacheZooKeeperServer server) : CoordinatorClusterTests(server), IClassFixture<ApacheZooKeeperServer>;

/// <summary>
/// Coordinators in a three-broker cluster, as an upstream ZooKeeper-mode cluster has them: the
/// coordinator of a group (transactional id) is the leader of its __consumer_offsets
/// (__transaction_state) partition and every broker says so; producer ids are unique across the
/// cluster; a transaction's markers reach every partition leader; coordinator state moves with
/// leadership. Clients are bootstrapped at brokers that are not the coordinator.
/// </summary>
public abstract class CoordinatorClusterTests(ICoordinationServer server)
{
    private const short NoError = 0, CoordinatorNotAvailable = 15, NotCoordinator = 16, CoordinatorLoadInProgress = 14;
    private const int OffsetsPartitions = 6;

    private string Server
    {
        get
        {
            Assert.SkipWhen(server.SkipReason is not null, server.SkipReason ?? "");
            return server.Address!;
        }
    }

    private static readonly Dictionary<string, string> SmallInternalTopics = new()
    {
        ["offsets.topic.num.partitions"] = OffsetsPartitions.ToString(),
        ["transaction.state.log.num.partitions"] = OffsetsPartitions.ToString(),
        ["group.initial.rebalance.delay.ms"] = "0",
    };

    private static async Task<FindCoordinatorResponse> FindAsync(LocalCluster cluster, int brokerId, string key, sbyte keyType = 0)
    {
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(brokerId));
        var sw = Stopwatch.StartNew();
        while (true)
        {
            var r = (await c.SendAsync<FindCoordinatorResponse>(new FindCoordinatorRequest { Key = key, KeyType = keyType }, 3))!;
            if (r.ErrorCode == NoError) return r;
            // While the internal topic is being created and its leaders elected upstream answers
            // COORDINATOR_NOT_AVAILABLE, never COORDINATOR_LOAD_IN_PROGRESS.
            Assert.Equal(CoordinatorNotAvailable, r.ErrorCode);
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30), $"FindCoordinator({key}) at broker {brokerId} kept answering {r.ErrorCode}");
            await Task.Delay(100);
        }
    }

    private static async Task<int> LeaderOfAsync(LocalCluster cluster, int askBroker, string topic, int partition)
    {
        var md = await cluster.MetadataAsync(askBroker, topic);
        return md.Topics[0].Partitions.Single(p => p.PartitionIndex == partition).LeaderId;
    }

    [Fact]
    public async Task EveryBrokerNamesTheLeaderOfTheKeysInternalPartitionAsCoordinator()
    {
        await using var cluster = await LocalCluster.StartAsync(Server, 3, brokerConfig: SmallInternalTopics);
        foreach (var (keyType, topic) in new[] { ((sbyte)0, "__consumer_offsets"), ((sbyte)1, "__transaction_state") })
        {
            for (int g = 0; g < 8; g++)
            {
                string key = $"key-{g}";
                var answers = new List<FindCoordinatorResponse>();
                foreach (int b in new[] { 1, 2, 3 }) answers.Add(await FindAsync(cluster, b, key, keyType));
                int partition = GroupCoordinator.PartitionFor(key, OffsetsPartitions);
                int leader = await LeaderOfAsync(cluster, 1, topic, partition);
                Assert.All(answers, a => Assert.Equal((leader, cluster.Port(leader)), (a.NodeId, a.Port)));
                // No message with a successful answer (upstream sends null).
                Assert.All(answers, a => Assert.Null(a.ErrorMessage));
            }
        }
        // The leaders of the 6 partitions are spread: more than one broker coordinates.
        var md = await cluster.MetadataAsync(1, "__consumer_offsets");
        Assert.True(md.Topics[0].Partitions.Select(p => p.LeaderId).Distinct().Count() > 1);
    }

    [Fact]
    public async Task GroupRequestsAtOtherBrokersAreNotCoordinatorAndTheCoordinatorServesThem()
    {
        await using var cluster = await LocalCluster.StartAsync(Server, 3, brokerConfig: SmallInternalTopics);
        const string group = "routed";
        var found = await FindAsync(cluster, 1, group);
        int coordinator = found.NodeId;
        int other = new[] { 1, 2, 3 }.First(b => b != coordinator);
        await using (var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(other)))
        {
            // Every broker knows the leaders a moment after creation; the non-leader refuses.
            await LocalCluster.WaitUntilAsync(async () =>
            {
                var join = (await c.SendAsync<JoinGroupResponse>(new JoinGroupRequest
                {
                    GroupId = group, SessionTimeoutMs = 10_000, RebalanceTimeoutMs = 10_000, MemberId = "", ProtocolType = "consumer",
                    Protocols = [new() { Name = "range", Metadata = [0, 0, 0, 0, 0, 0, 0, 0] }],
                }, 5))!;
                return join.ErrorCode == NotCoordinator;
            }, TimeSpan.FromSeconds(10), "a non-coordinator answers NOT_COORDINATOR");
            var fetch = (await c.SendAsync<OffsetFetchResponse>(new OffsetFetchRequest { GroupId = group, Topics = null }, 5))!;
            Assert.Equal(NotCoordinator, fetch.ErrorCode);
        }
        await using (var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(coordinator)))
        {
            // Broker 1 names the leader its metadata shows; that broker may still be taking the
            // offsets partition over (upstream answers the same two errors then, and clients retry).
            JoinGroupResponse join = null!;
            await LocalCluster.WaitUntilAsync(async () =>
            {
                join = (await c.SendAsync<JoinGroupResponse>(new JoinGroupRequest
                {
                    GroupId = group, SessionTimeoutMs = 10_000, RebalanceTimeoutMs = 10_000, MemberId = "", ProtocolType = "consumer",
                    Protocols = [new() { Name = "range", Metadata = [0, 0, 0, 0, 0, 0, 0, 0] }],
                }, 3))!;
                return join.ErrorCode is not (NotCoordinator or CoordinatorLoadInProgress);
            }, TimeSpan.FromSeconds(10), "the coordinator takes the join");
            Assert.Equal(NoError, join.ErrorCode);
            Assert.Equal(join.MemberId, join.Leader);
        }
    }

    [Fact]
    public async Task ProducerIdsNeverRepeatAcrossBrokersOrRestarts()
    {
        await using var cluster = await LocalCluster.StartAsync(Server, 3, viaProxies: true);
        var ids = new List<long>();
        async Task TakeIdsAsync(int broker, int n)
        {
            await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(broker));
            for (int i = 0; i < n; i++)
            {
                var r = (await c.SendAsync<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = null, TransactionTimeoutMs = 60_000, ProducerId = -1, ProducerEpoch = -1 }, 4))!;
                Assert.Equal(NoError, r.ErrorCode);
                Assert.Equal(0, r.ProducerEpoch);
                ids.Add(r.ProducerId);
            }
        }
        foreach (int b in new[] { 1, 2, 3 }) await TakeIdsAsync(b, 5);
        await cluster.StopBrokerAsync(2);
        await cluster.StartBrokerAsync(2);
        await TakeIdsAsync(2, 5);
        Assert.Equal(ids.Count, ids.Distinct().Count());
        // Each broker claimed its own block in ZooKeeper: the last claimed block ends above every id.
        await using var zk = await cluster.ZooKeeperAsync();
        var block = await LocalCluster.ReadJsonAsync(zk, "/latest_producer_id_block");
        Assert.True(long.Parse((string)block["block_end"]!) >= ids.Max());
        Assert.Equal(4, ids.Select(id => id / 1000).Distinct().Count());
    }

    [Fact]
    public async Task IdempotentProducersAtDifferentBrokersLoseNoAcknowledgedRecord()
    {
        // Log files, as a user runs it: the storage log keeps per-producer state (sequence checks).
        var dir = Directory.CreateTempSubdirectory("samsa-pid-").FullName;
        try
        {
            await ProduceFromTwoBrokersAsync(dir);
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    private async Task ProduceFromTwoBrokersAsync(string dataDir)
    {
        await using var cluster = await LocalCluster.StartAsync(Server, 3, dataDir: dataDir);
        // One partition, led by broker 3; the producers are bootstrapped at brokers 1 and 2.
        var (error, message, _) = cluster[1].Replicas.CreateTopic("shared", 1, 1, new Dictionary<string, string>(), validateOnly: false,
            new Dictionary<int, List<int>> { [0] = [3] });
        Assert.True(error == Samsa.Kafka.Protocol.ErrorCode.None, $"{error} {message}");
        await cluster.LedMetadataAsync(1, "shared", 1);
        const int each = 200;
        async Task<List<DeliveryResult<Null, string>>> ProduceAsync(int bootstrap)
        {
            using var producer = new ProducerBuilder<Null, string>(new ProducerConfig
            {
                BootstrapServers = cluster.Bootstrap(bootstrap), EnableIdempotence = true, Acks = Acks.All, LingerMs = 1,
            }).Build();
            var sent = Enumerable.Range(0, each).Select(i =>
                producer.ProduceAsync(new Confluent.Kafka.TopicPartition("shared", 0), new Message<Null, string> { Value = $"b{bootstrap}-{i}" })).ToList();
            return [.. await Task.WhenAll(sent)];
        }
        var results = await Task.WhenAll(ProduceAsync(1), ProduceAsync(2));
        var all = results.SelectMany(r => r).ToList();
        Assert.All(all, r => Assert.Equal(PersistenceStatus.Persisted, r.Status));
        // Every acknowledged record has its own offset, and the log holds all of them.
        Assert.Equal(2 * each, all.Select(r => r.Offset.Value).Distinct().Count());
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(3));
        var end = (await c.SendAsync<ListOffsetsResponse>(new ListOffsetsRequest
        {
            ReplicaId = -1, Topics = [new() { Name = "shared", Partitions = [new() { PartitionIndex = 0, Timestamp = -1 }] }],
        }, 5))!;
        Assert.Equal(2 * each, end.Topics[0].Partitions[0].Offset);
        // Two distinct producer ids wrote to the partition.
        var producers = (await c.SendAsync<DescribeProducersResponse>(new DescribeProducersRequest
        {
            Topics = [new() { Name = "shared", PartitionIndexes = [0] }],
        }, 0))!;
        Assert.Equal(2, producers.Topics[0].Partitions[0].ActiveProducers.Select(p => p.ProducerId).Distinct().Count());
    }

    [Fact]
    public async Task CommittedTransactionGetsItsMarkerOnEveryPartitionLeader()
    {
        await using var cluster = await LocalCluster.StartAsync(Server, 3, brokerConfig: SmallInternalTopics);
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.Bootstrap(1) }).Build())
            await admin.CreateTopicsAsync([new TopicSpecification { Name = "txn-out", NumPartitions = 6, ReplicationFactor = 1 }]);
        var md = await cluster.LedMetadataAsync(1, "txn-out", 6);
        Assert.Equal(3, md.Topics[0].Partitions.Select(p => p.LeaderId).Distinct().Count());
        const string txnId = "spread-txn";
        int coordinator = (await FindAsync(cluster, 1, txnId, keyType: 1)).NodeId;
        int bootstrap = new[] { 1, 2, 3 }.First(b => b != coordinator);
        using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig
        {
            BootstrapServers = cluster.Bootstrap(bootstrap), TransactionalId = txnId, Acks = Acks.All,
        }).Build())
        {
            producer.InitTransactions(TimeSpan.FromSeconds(30));
            producer.BeginTransaction();
            for (int p = 0; p < 6; p++)
                for (int i = 0; i < 5; i++)
                    producer.Produce(new Confluent.Kafka.TopicPartition("txn-out", p), new Message<Null, string> { Value = $"p{p}-{i}" });
            producer.CommitTransaction(TimeSpan.FromSeconds(30));
        }
        // read_committed sees everything on every partition: each leader got the COMMIT marker
        // (the last stable offset reached the log end: 5 records + 1 marker).
        foreach (var partition in md.Topics[0].Partitions)
        {
            await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(partition.LeaderId));
            await LocalCluster.WaitUntilAsync(async () =>
            {
                var r = (await c.SendAsync<ListOffsetsResponse>(new ListOffsetsRequest
                {
                    ReplicaId = -1, IsolationLevel = 1,
                    Topics = [new() { Name = "txn-out", Partitions = [new() { PartitionIndex = partition.PartitionIndex, Timestamp = -1 }] }],
                }, 5))!;
                return r.Topics[0].Partitions[0].ErrorCode == NoError && r.Topics[0].Partitions[0].Offset == 6;
            }, TimeSpan.FromSeconds(15), $"the last stable offset of txn-out-{partition.PartitionIndex} (leader {partition.LeaderId}) reaches 6");
        }
    }

    [Fact]
    public async Task Metadata_CreatesTheOffsetsTopicWhenAutoCreationIsAllowed()
    {
        await using var cluster = await LocalCluster.StartAsync(Server, 3, brokerConfig: SmallInternalTopics);
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(2));
        MetadataResponse? md = null;
        await LocalCluster.WaitUntilAsync(async () =>
        {
            md = (await c.SendAsync<MetadataResponse>(new MetadataRequest
            {
                Topics = [new() { Name = "__consumer_offsets" }], AllowAutoTopicCreation = true,
            }, 5))!;
            Assert.NotEqual(3, md.Topics[0].ErrorCode);   // never UNKNOWN_TOPIC_OR_PARTITION
            return md.Topics[0].ErrorCode == NoError && md.Topics[0].Partitions.All(p => p.LeaderId >= 0);
        }, TimeSpan.FromSeconds(20), "__consumer_offsets is created with leaders");
        Assert.True(md!.Topics[0].IsInternal);
        Assert.Equal(OffsetsPartitions, md.Topics[0].Partitions.Count);
        // Created as the coordinator creates it: compacted.
        Assert.Equal("compact", cluster[2].Replicas.GetTopic("__consumer_offsets")!.Configs["cleanup.policy"]);
    }

    [Fact]
    public async Task GroupOffsetsSurviveAKillOfTheirCoordinator()
    {
        var config = new Dictionary<string, string>(SmallInternalTopics)
        {
            ["offsets.topic.replication.factor"] = "3", ["default.replication.factor"] = "3", ["min.insync.replicas"] = "2",
        };
        await using var cluster = await LocalCluster.StartAsync(Server, 3, viaProxies: true, brokerConfig: config, sessionTimeoutMs: 4000);
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.Bootstrap(1) }).Build())
            await admin.CreateTopicsAsync([new TopicSpecification { Name = "input", NumPartitions = 3, ReplicationFactor = 3 }]);
        await cluster.LedMetadataAsync(1, "input", 3);
        const string group = "survivor-group";
        int coordinator = (await FindAsync(cluster, 1, group)).NodeId;
        int partition = GroupCoordinator.PartitionFor(group, OffsetsPartitions);
        // The offsets partition is fully replicated before the commits (RF 3, all in sync).
        await LocalCluster.WaitUntilAsync(async () =>
            (await cluster.MetadataAsync(coordinator, "__consumer_offsets")).Topics[0].Partitions.Single(p => p.PartitionIndex == partition).IsrNodes.Count == 3,
            TimeSpan.FromSeconds(20), "the group's offsets partition has a full ISR");
        await using (var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(coordinator)))
        {
            for (int round = 1; round <= 20; round++)
            {
                var r = (await c.SendAsync<OffsetCommitResponse>(new OffsetCommitRequest
                {
                    GroupId = group, GenerationIdOrMemberEpoch = -1, MemberId = "",
                    Topics = [new() { Name = "input", Partitions = [.. Enumerable.Range(0, 3).Select(p => new OffsetCommitRequest.OffsetCommitRequestPartition { PartitionIndex = p, CommittedOffset = round * 10 + p })] }],
                }, 7))!;
                Assert.All(r.Topics[0].Partitions, p => Assert.Equal(NoError, p.ErrorCode));
            }
        }
        var killed = Stopwatch.StartNew();
        await cluster.CrashBrokerAsync(coordinator);
        int survivor = new[] { 1, 2, 3 }.First(b => b != coordinator);
        FindCoordinatorResponse moved = null!;
        await LocalCluster.WaitUntilAsync(async () =>
        {
            moved = await FindAsync(cluster, survivor, group);
            return moved.NodeId != coordinator;
        }, TimeSpan.FromSeconds(30), "another broker coordinates the group");
        // Every acknowledged commit is there at the new coordinator (after its load).
        await using var n = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(moved.NodeId));
        OffsetFetchResponse fetched = null!;
        await LocalCluster.WaitUntilAsync(async () =>
        {
            fetched = (await n.SendAsync<OffsetFetchResponse>(new OffsetFetchRequest { GroupId = group, Topics = [new() { Name = "input", PartitionIndexes = [0, 1, 2] }] }, 5))!;
            Assert.True(fetched.ErrorCode is NoError or CoordinatorLoadInProgress or NotCoordinator, $"OffsetFetch error {fetched.ErrorCode}");
            return fetched.ErrorCode == NoError;
        }, TimeSpan.FromSeconds(15), "the new coordinator answers OffsetFetch");
        TestContext.Current.TestOutputHelper?.WriteLine($"coordinator {coordinator} killed; broker {moved.NodeId} served the group's offsets after {killed.ElapsedMilliseconds} ms");
        Assert.Equal([200L, 201L, 202L], fetched.Topics[0].Partitions.OrderBy(p => p.PartitionIndex).Select(p => p.CommittedOffset));
    }
}
