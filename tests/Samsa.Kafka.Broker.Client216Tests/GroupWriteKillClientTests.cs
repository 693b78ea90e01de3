using System.Collections.Concurrent;
using System.Diagnostics;
using Confluent.Kafka;
using Samsa.Cluster.Tests;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Protocol.Messages;
using GroupCoordinator = Samsa.Kafka.Broker.Groups.GroupCoordinator;
using Xunit;

namespace Samsa.Kafka.Broker.Client216Tests;

/// <summary>
/// KIP-848 consumers (Confluent.Kafka / librdkafka 2.16, group.protocol=consumer) lose nothing when
/// the group coordinator's broker is killed inside the replication window of a group write: the
/// followers' fetches from the coordinator are stalled, a third consumer joins (the coordinator
/// writes a new target assignment and the members' revocations) while the first two commit what
/// they read, and the coordinator's broker is killed before the followers caught up. The coordinator
/// answers a heartbeat or a commit only once the write is replicated, so every offset the clients
/// were told is committed is at the new coordinator, no record below it is read again, and every
/// record is read. (With the write wait off — KafkaBroker.InternalWriteWaitForTests answering at
/// once — the acknowledged commits die with the broker and the test fails.)
/// </summary>
public sealed class GroupWriteKillClientTests
{
    private const string Topic = "kill-in-window";
    private const int Partitions = 6;
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);

    private sealed record Read(string Value, int Partition, long Offset, bool AfterKill);

    /// <summary>A consumer on its own thread: reads, commits each record synchronously, and keeps
    /// the highest offset per partition the coordinator acknowledged.</summary>
    private sealed class Member
    {
        public required string Name;
        public required IConsumer<Ignore, string> Consumer;
        public Thread? Thread;
    }

    [Fact]
    public async Task ConsumersLoseNoAcknowledgedCommitWhenTheCoordinatorDiesInTheReplicationWindow()
    {
        await using var keeper = new KeeperServer();
        await keeper.InitializeAsync();
        Assert.SkipWhen(keeper.SkipReason is not null, keeper.SkipReason ?? "");
        await using var cluster = await LocalCluster.StartAsync(keeper.Address!, 3, viaProxies: true, observeClients: true, sessionTimeoutMs: 4000,
            brokerConfig: new Dictionary<string, string>
            {
                ["offsets.topic.replication.factor"] = "3", ["offsets.topic.num.partitions"] = "6",
                ["default.replication.factor"] = "3", ["min.insync.replicas"] = "2",
                ["group.initial.rebalance.delay.ms"] = "0", ["group.consumer.heartbeat.interval.ms"] = "500",
                ["group.consumer.min.heartbeat.interval.ms"] = "500",
            });
        await LocalCluster.WaitUntilAsync(async () => (await cluster.MetadataAsync(1)).Brokers.Count == 3, TimeSpan.FromSeconds(20), "broker 1 sees all brokers");

        // Broker 1 leads every partition of the topic; the group is coordinated by 2 or 3; the
        // clients bootstrap at the remaining broker, which leads neither.
        await using (var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(1)))
        {
            var r = await c.SendAsync<CreateTopicsResponse>(new CreateTopicsRequest
            {
                TimeoutMs = 30000,
                Topics = [new CreateTopicsRequest.CreatableTopic
                {
                    Name = Topic, NumPartitions = -1, ReplicationFactor = -1,
                    Assignments = [.. Enumerable.Range(0, Partitions).Select(p => new CreateTopicsRequest.CreatableReplicaAssignment
                        { PartitionIndex = p, BrokerIds = p % 2 == 0 ? [1, 2, 3] : [1, 3, 2] })],
                }],
            }, 5);
            Assert.Equal(0, r!.Topics[0].ErrorCode);
        }
        var md = await cluster.LedMetadataAsync(1, Topic, Partitions);
        Assert.All(md.Topics[0].Partitions, p => Assert.Equal(1, p.LeaderId));
        string group = "";
        int coordinator = 0;
        for (int i = 0; coordinator is not (2 or 3); i++)
        {
            group = $"kill-window-{i}";
            coordinator = (await cluster.FindCoordinatorAsync(1, group)).NodeId;
        }
        int bootstrapBroker = coordinator == 2 ? 3 : 2;
        int offsetsPartition = GroupCoordinator.PartitionFor(group, 6);
        await LocalCluster.WaitUntilAsync(async () =>
            (await cluster.MetadataAsync(coordinator, "__consumer_offsets")).Topics[0].Partitions.Single(p => p.PartitionIndex == offsetsPartition).IsrNodes.Count == 3,
            TimeSpan.FromSeconds(20), "the group's offsets partition has a full ISR");
        string bootstrap = cluster.Bootstrap(bootstrapBroker);

        var produced = new ConcurrentBag<string>();
        async Task ProduceAsync(string prefix, int count)
        {
            using var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = bootstrap, Acks = Acks.All, LingerMs = 5 }).Build();
            var sends = Enumerable.Range(0, count).Select(i => producer.ProduceAsync(new TopicPartition(Topic, i % Partitions), new Message<Null, string> { Value = $"{prefix}{i}" })).ToList();
            await Task.WhenAll(sends).WaitAsync(Deadline);
            foreach (var s in sends) produced.Add(s.Result.Message.Value);
        }
        await ProduceAsync("a", 60);

        var reads = new ConcurrentQueue<Read>();
        var acknowledged = new ConcurrentDictionary<int, long>();
        var running = new ManualResetEventSlim(true);
        var stop = new CancellationTokenSource();
        bool killed = false;
        var members = new List<Member>();
        Member Start(string name)
        {
            var cfg = new ConsumerConfig
            {
                BootstrapServers = bootstrap, GroupId = group, GroupProtocol = GroupProtocol.Consumer, ClientId = name,
                AutoOffsetReset = AutoOffsetReset.Earliest, EnableAutoCommit = false,
            };
            if (KafkaTarget.DebugDir is not null) cfg.Debug = "cgrp,consumer,protocol";
            var m = new Member { Name = name, Consumer = new ConsumerBuilder<Ignore, string>(cfg).SetLogHandler((_, l) => KafkaTarget.Log(name, l)).Build() };
            m.Thread = new Thread(() =>
            {
                m.Consumer.Subscribe(Topic);
                while (!stop.IsCancellationRequested)
                {
                    try { running.Wait(stop.Token); }
                    catch (OperationCanceledException) { break; }
                    ConsumeResult<Ignore, string>? r;
                    try { r = m.Consumer.Consume(100); }
                    catch (ConsumeException) { continue; }
                    if (r is null || r.IsPartitionEOF) continue;
                    reads.Enqueue(new Read(r.Message.Value, r.Partition.Value, r.Offset.Value, Volatile.Read(ref killed)));
                    try
                    {
                        long next = r.Offset.Value + 1;
                        m.Consumer.Commit([new TopicPartitionOffset(r.TopicPartition, next)]);
                        acknowledged.AddOrUpdate(r.Partition.Value, next, (_, old) => Math.Max(old, next));
                    }
                    catch (KafkaException) { }  // not acknowledged: read again at least once is allowed
                }
            }) { IsBackground = true, Name = name };
            m.Thread.Start();
            members.Add(m);
            return m;
        }

        bool AllRead() { var seen = reads.Select(r => r.Value).ToHashSet(); return produced.All(seen.Contains); }
        var old = cluster[coordinator].Groups.Coordinator;
        try
        {
            Start("c1");
            Start("c2");
            await LocalCluster.WaitUntilAsync(() => Task.FromResult(AllRead() && acknowledged.Values.Sum() == 60
                && old.GetConsumerGroup(group) is { Size: 2 } g && g.State == Samsa.Kafka.Broker.Groups.ConsumerGroupState.Stable),
                Deadline, "two consumers read and committed the first 60 records");

            // The replication window: the followers fetch nothing from the coordinator's broker.
            var proxy = cluster.ListenerProxy(coordinator);
            foreach (var b in new[] { 1, 2, 3 }.Where(b => b != coordinator)) proxy.Stall(b, true);
            int epochBefore = old.GetConsumerGroup(group)!.GroupEpoch;
            var ackedBefore = new Dictionary<int, long>(acknowledged);
            Start("c3");
            await ProduceAsync("b", 30);
            // The third member's join is written (group epoch and target assignment), and the first
            // two go on reading and committing; then the coordinator's broker dies.
            await LocalCluster.WaitUntilAsync(() => Task.FromResult(old.GetConsumerGroup(group)!.GroupEpoch > epochBefore),
                Deadline, "the coordinator wrote the third member's join");
            var sw = Stopwatch.StartNew();
            while (sw.Elapsed < TimeSpan.FromSeconds(3) && !acknowledged.Any(kv => kv.Value > ackedBefore.GetValueOrDefault(kv.Key)))
                await Task.Delay(50);
            running.Reset();
            await Task.Delay(300);
            var ackedAtKill = new Dictionary<int, long>(acknowledged);
            Volatile.Write(ref killed, true);
            await cluster.CrashBrokerAsync(coordinator);

            // The new coordinator has every offset the clients were told is committed.
            int moved = 0;
            await LocalCluster.WaitUntilAsync(async () =>
            {
                moved = (await cluster.FindCoordinatorAsync(bootstrapBroker, group)).NodeId;
                return moved != coordinator;
            }, TimeSpan.FromSeconds(30), "another broker coordinates the group");
            OffsetFetchResponse fetched = null!;
            await using (var n = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(moved)))
                await LocalCluster.WaitUntilAsync(async () =>
                {
                    fetched = (await n.SendAsync<OffsetFetchResponse>(new OffsetFetchRequest
                    {
                        GroupId = group, Topics = [new() { Name = Topic, PartitionIndexes = [.. Enumerable.Range(0, Partitions)] }],
                    }, 7))!;
                    return fetched.ErrorCode == 0;
                }, TimeSpan.FromSeconds(30), "the new coordinator loaded the group");
            var committed = fetched.Topics[0].Partitions.ToDictionary(p => p.PartitionIndex, p => p.CommittedOffset);
            foreach (var (p, offset) in ackedAtKill)
                Assert.True(committed[p] >= offset, $"partition {p}: acknowledged commit {offset}, the new coordinator has {committed[p]}");
            running.Set();

            // The members go on at the new coordinator; records produced after the kill are read too.
            await ProduceAsync("c", 30);
            await LocalCluster.WaitUntilAsync(() => Task.FromResult(AllRead()), Deadline, "every produced record is read");
            // Reading again is allowed only from where the acknowledged commits stood.
            var again = reads.Where(r => r.AfterKill && r.Offset < ackedAtKill.GetValueOrDefault(r.Partition)).ToList();
            Assert.True(again.Count == 0, $"read again below an acknowledged commit: {string.Join(", ", again.Take(10))}");
            Assert.Equal(produced.Count, reads.Select(r => r.Value).Distinct().Count());
        }
        finally
        {
            stop.Cancel();
            running.Set();
            foreach (var m in members) m.Thread?.Join(TimeSpan.FromSeconds(10));
            foreach (var m in members)
            {
                try { m.Consumer.Close(); } catch (KafkaException) { }
                m.Consumer.Dispose();
            }
        }
    }
}
