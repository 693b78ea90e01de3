using System.Diagnostics;
using Confluent.Kafka;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Groups;
using Samsa.Kafka.Protocol.Messages;
using Xunit;

namespace Samsa.Cluster.Tests;

/// <summary>
/// A transaction's markers count only once replicated (upstream appends them with acks=-1): the
/// transaction coordinator stays in PrepareCommit while a marker's leader cannot replicate it, so a
/// kill of that leader loses no committed transaction — the coordinator writes the marker again to
/// the new leader. The data partition and the group's offsets partition are led by a broker that is
/// neither the transaction coordinator nor broker 1; its followers' fetches are stalled while the
/// commit's markers reach it, then it is killed: the new leaders must show the transaction's
/// records as committed (last stable offset at the high watermark) and its offsets as stable.
/// </summary>
public sealed class TxnMarkerReplicationClusterTests(KeeperServer server) : IClassFixture<KeeperServer>
{
    private const short NoError = 0;
    private const int InternalPartitions = 6;

    private string Server
    {
        get
        {
            Assert.SkipWhen(server.SkipReason is not null, server.SkipReason ?? "");
            return server.Address!;
        }
    }

    private static async Task<string> TransactionStateAsync(LocalCluster cluster, int broker, string transactionalId)
    {
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(broker));
        var r = (await c.SendAsync<DescribeTransactionsResponse>(new DescribeTransactionsRequest { TransactionalIds = [transactionalId] }, 0))!;
        return r.TransactionStates[0].ErrorCode == NoError ? r.TransactionStates[0].TransactionState : $"error {r.TransactionStates[0].ErrorCode}";
    }

    private static async Task WaitForFullIsrAsync(LocalCluster cluster, int broker, string topic, int partition)
    {
        await LocalCluster.WaitUntilAsync(async () =>
            (await cluster.MetadataAsync(broker, topic)).Topics[0].Partitions.SingleOrDefault(p => p.PartitionIndex == partition)?.IsrNodes.Count == 3,
            TimeSpan.FromSeconds(20), $"{topic}-{partition} has a full ISR");
    }

    [Fact]
    public async Task TxnMarkerReplication_ACommittedTransactionSurvivesAKillOfItsMarkersLeader()
    {
        // Log files: the data partition's last stable offset is kept by the storage logs.
        string dir = Path.Combine(Path.GetTempPath(), "samsa-txnmarkers-" + Guid.NewGuid().ToString("N"));
        try
        {
            await CommitThenKillMarkersLeaderAsync(dir);
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    private async Task CommitThenKillMarkersLeaderAsync(string dataDir)
    {
        var config = new Dictionary<string, string>
        {
            ["offsets.topic.num.partitions"] = InternalPartitions.ToString(), ["offsets.topic.replication.factor"] = "3",
            ["transaction.state.log.num.partitions"] = InternalPartitions.ToString(), ["transaction.state.log.replication.factor"] = "3",
            ["default.replication.factor"] = "3", ["min.insync.replicas"] = "2", ["group.initial.rebalance.delay.ms"] = "0",
        };
        await using var cluster = await LocalCluster.StartAsync(Server, 3, viaProxies: true, observeClients: true, brokerConfig: config, sessionTimeoutMs: 4000,
            dataDir: dataDir);
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
        await cluster.LedMetadataAsync(1, "input", 3);

        // The transaction coordinator T is not broker 1; the markers' leader L is the third broker.
        string transactionalId = "";
        int coordinator = 0;
        for (int i = 0; coordinator is 0 or 1; i++)
        {
            transactionalId = $"markers-{i}";
            coordinator = (await cluster.FindCoordinatorAsync(1, transactionalId, 1)).NodeId;
        }
        int leader = new[] { 2, 3 }.Single(b => b != coordinator);
        int dataPartition = leader - 1;   // input-p is led by 1 + p % 3
        string group = "";
        for (int i = 0; ; i++)
        {
            group = $"markers-group-{i}";
            if ((await cluster.FindCoordinatorAsync(1, group, 0)).NodeId == leader) break;
        }
        int offsetsPartition = GroupCoordinator.PartitionFor(group, InternalPartitions);
        await WaitForFullIsrAsync(cluster, leader, "input", dataPartition);
        await WaitForFullIsrAsync(cluster, leader, "__consumer_offsets", offsetsPartition);

        using var producer = new ProducerBuilder<Null, string>(new ProducerConfig
        {
            BootstrapServers = cluster.Bootstrap(1), TransactionalId = transactionalId, EnableIdempotence = true, TransactionTimeoutMs = 60_000,
        }).Build();
        producer.InitTransactions(TimeSpan.FromSeconds(30));
        producer.BeginTransaction();
        await producer.ProduceAsync(new TopicPartition("input", dataPartition), new Message<Null, string> { Value = "x" });
        var offsets = Enumerable.Range(0, 3).Select(p => new TopicPartitionOffset("input", p, 100 + p)).ToList();
        IConsumerGroupMetadata metadata;
        using (var consumer = new ConsumerBuilder<Null, string>(new ConsumerConfig { BootstrapServers = cluster.Bootstrap(1), GroupId = group }).Build())
            metadata = consumer.ConsumerGroupMetadata;
        producer.SendOffsetsToTransaction(offsets, metadata, TimeSpan.FromSeconds(30));

        // L's followers stop fetching; the commit is answered (its decision is replicated by T's
        // followers), and its markers reach L but not L's followers.
        var proxy = cluster.ListenerProxy(leader);
        foreach (var b in new[] { 1, 2, 3 }.Where(b => b != leader)) proxy.Stall(b, true);
        await Task.Run(() => producer.CommitTransaction(TimeSpan.FromSeconds(30)));
        await Task.Delay(1500);
        // Upstream's coordinator completes only once every marker was written with acks=-1.
        string whileStalled = await TransactionStateAsync(cluster, coordinator, transactionalId);

        await cluster.CrashBrokerAsync(leader);
        // The coordinator writes the markers again to the new leaders and then completes.
        string state = "";
        await LocalCluster.WaitUntilAsync(async () => (state = await TransactionStateAsync(cluster, coordinator, transactionalId)) == "CompleteCommit",
            TimeSpan.FromSeconds(45), "the transaction completes after the kill");

        // The data partition's new leader: the transaction's record is committed (read_committed
        // sees it; the last stable offset is the high watermark, not stuck before the record).
        MetadataResponse md = null!;
        await LocalCluster.WaitUntilAsync(async () =>
        {
            md = await cluster.MetadataAsync(coordinator, "input");
            int l = md.Topics[0].Partitions.Single(p => p.PartitionIndex == dataPartition).LeaderId;
            return l > 0 && l != leader;
        }, TimeSpan.FromSeconds(20), "the data partition has a new leader");
        int newLeader = md.Topics[0].Partitions.Single(p => p.PartitionIndex == dataPartition).LeaderId;
        FetchResponse.PartitionData fetched = null!;
        await using (var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(newLeader)))
        {
            await LocalCluster.WaitUntilAsync(async () =>
            {
                var f = (await c.SendAsync<FetchResponse>(new FetchRequest
                {
                    MaxWaitMs = 0, MinBytes = 0, MaxBytes = 1 << 20, SessionEpoch = -1, IsolationLevel = 1, ReplicaId = -1,
                    Topics = [new FetchRequest.FetchTopic { Topic = "input", Partitions = [new FetchRequest.FetchPartition
                        { Partition = dataPartition, FetchOffset = 0, PartitionMaxBytes = 1 << 20, CurrentLeaderEpoch = -1, LogStartOffset = -1 }] }],
                }, 12))!;
                fetched = f.Responses[0].Partitions[0];
                return fetched.ErrorCode == NoError && fetched.HighWatermark > 1 && fetched.LastStableOffset == fetched.HighWatermark;
            }, TimeSpan.FromSeconds(20), "the new leader's last stable offset reaches its high watermark");
        }
        var values = new List<string>();
        foreach (var batch in Samsa.Kafka.Protocol.Records.RecordBatch.Enumerate(fetched.Records!.Value.Span, allowTruncatedTail: true))
            if (!batch.IsControl)
                foreach (var rec in batch.GetRecords()) values.Add(System.Text.Encoding.UTF8.GetString(rec.Value));
        Assert.Equal(["x"], values);
        Assert.Empty(fetched.AbortedTransactions!);

        // The group's new coordinator: the transaction's offsets are committed and stable.
        int newGroupCoordinator = 0;
        await LocalCluster.WaitUntilAsync(async () => (newGroupCoordinator = (await cluster.FindCoordinatorAsync(1, group, 0)).NodeId) != leader,
            TimeSpan.FromSeconds(30), "another broker coordinates the group");
        await using (var n = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(newGroupCoordinator)))
        {
            OffsetFetchResponse stable = null!;
            await LocalCluster.WaitUntilAsync(async () =>
            {
                stable = (await n.SendAsync<OffsetFetchResponse>(new OffsetFetchRequest
                {
                    GroupId = group, RequireStable = true, Topics = [new() { Name = "input", PartitionIndexes = [0, 1, 2] }],
                }, 7))!;
                return stable.ErrorCode == NoError && stable.Topics.Count == 1 && stable.Topics[0].Partitions.All(p => p.ErrorCode == NoError);
            }, TimeSpan.FromSeconds(20), "the offsets are stable at the new coordinator");
            Assert.Equal([100L, 101L, 102L], stable.Topics[0].Partitions.OrderBy(p => p.PartitionIndex).Select(p => p.CommittedOffset));
        }
        Assert.Equal("PrepareCommit", whileStalled);
    }
}
