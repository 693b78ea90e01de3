using System.Collections.Concurrent;
using System.Diagnostics;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Samsa.Cluster.Tests;
using GroupCoordinator = Samsa.Kafka.Broker.Groups.GroupCoordinator;
using ConsumerGroupStateOfBroker = Samsa.Kafka.Broker.Groups.ConsumerGroupState;
using Xunit;

namespace Samsa.Kafka.Broker.Client216Tests;

public sealed class OneBrokerConsumerProtocolTests(SingleBroker target) : ConsumerProtocolTests(target), IClassFixture<SingleBroker>;

public sealed class ThreeBrokerConsumerProtocolTests(ThreeBrokers target) : ConsumerProtocolTests(target), IClassFixture<ThreeBrokers>;

/// <summary>
/// The KIP-848 consumer group protocol (group.protocol=consumer) as a Confluent.Kafka 2.16 /
/// librdkafka 2.16 user meets it: joining and consuming, partitions handed over on join and leave
/// with every record read exactly once (commit, then handover), a static member's restart, a
/// regex subscription picking up a topic created later, and the admin view of the group.
/// </summary>
public abstract class ConsumerProtocolTests(KafkaTarget target)
{
    protected static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);

    private ConsumerConfig Cfg(string group, string? instance = null, string? clientId = null) => new()
    {
        GroupId = group, GroupProtocol = GroupProtocol.Consumer, AutoOffsetReset = AutoOffsetReset.Earliest,
        EnableAutoCommit = false, GroupInstanceId = instance, ClientId = clientId,
    };

    private async Task ProduceAsync(string topic, int count, int partitions, string prefix = "v")
    {
        using var producer = target.Producer<Null, string>(new ProducerConfig { LingerMs = 5 });
        var tasks = Enumerable.Range(0, count).Select(i => producer.ProduceAsync(new TopicPartition(topic, i % partitions), new Message<Null, string> { Value = prefix + i })).ToList();
        await Task.WhenAll(tasks).WaitAsync(Deadline);
    }

    private static async Task Within(TimeSpan deadline, string what, Action body)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var t = new Thread(() =>
        {
            try { body(); done.SetResult(); }
            catch (Exception e) { done.SetException(e); }
        }) { IsBackground = true, Name = what };
        t.Start();
        try { await done.Task.WaitAsync(deadline); }
        catch (TimeoutException) { Assert.Fail($"{what} did not finish within {deadline.TotalSeconds:0} s"); }
    }

    [Fact]
    public async Task JoinsConsumesCommitsAndTheAdminSeesAConsumerGroup()
    {
        var topic = target.NewTopicName("kip848");
        await target.CreateTopicAsync(topic, 3);
        await ProduceAsync(topic, 30, 3);
        var group = target.NewGroupId();
        using var admin = target.Admin();
        var consumer = target.Consumer<Ignore, string>(Cfg(group, clientId: "kip848-member"));
        try
        {
            var got = new List<ConsumeResult<Ignore, string>>();
            await Within(Deadline, "join and consume", () =>
            {
                consumer.Subscribe(topic);
                var sw = Stopwatch.StartNew();
                while (got.Count < 30 && sw.Elapsed < TimeSpan.FromSeconds(60))
                    if (consumer.Consume(200) is { IsPartitionEOF: false } r) got.Add(r);
                consumer.Commit();
            });
            Assert.Equal(30, got.Count);
            Assert.Equal(30, got.Select(r => r.TopicPartitionOffset.ToString()).Distinct().Count());
            Assert.Equal(3, consumer.Assignment.Count);
            var committed = consumer.Committed(TimeSpan.FromSeconds(20));
            Assert.All(committed, c => Assert.Equal(10, c.Offset.Value));

            var listed = await admin.ListConsumerGroupsAsync(new ListConsumerGroupsOptions { MatchTypes = [ConsumerGroupType.Consumer] }).WaitAsync(Deadline);
            var mine = Assert.Single(listed.Valid, g => g.GroupId == group);
            Assert.Equal(ConsumerGroupType.Consumer, mine.Type);
            Assert.Equal(ConsumerGroupState.Stable, mine.State);
            var classic = await admin.ListConsumerGroupsAsync(new ListConsumerGroupsOptions { MatchTypes = [ConsumerGroupType.Classic] }).WaitAsync(Deadline);
            Assert.DoesNotContain(classic.Valid, g => g.GroupId == group);

            // DescribeConsumerGroups goes through ConsumerGroupDescribe for a consumer group.
            var described = await admin.DescribeConsumerGroupsAsync([group]).WaitAsync(Deadline);
            var d = Assert.Single(described.ConsumerGroupDescriptions);
            Assert.Equal(ErrorCode.NoError, d.Error.Code);
            Assert.Equal("uniform", d.PartitionAssignor);
            var member = Assert.Single(d.Members);
            Assert.Equal("kip848-member", member.ClientId);
            Assert.Equal([0, 1, 2], member.Assignment.TopicPartitions.Where(tp => tp.Topic == topic).Select(tp => tp.Partition.Value).Order());
            Assert.Equal([0, 1, 2], member.TargetAssignment!.TopicPartitions.Where(tp => tp.Topic == topic).Select(tp => tp.Partition.Value).Order());
            if (target is ThreeBrokers) Assert.NotEqual(ThreeBrokers.BootstrapId, d.Coordinator.Id);
        }
        finally
        {
            await Within(Deadline, "close", () => { consumer.Close(); consumer.Dispose(); });
        }
        var after = await admin.DescribeConsumerGroupsAsync([group]).WaitAsync(Deadline);
        Assert.Equal(ConsumerGroupState.Empty, after.ConsumerGroupDescriptions[0].State);
        Assert.Empty(after.ConsumerGroupDescriptions[0].Members);
    }

    /// <summary>Each consumer commits every record it reads before reading on; partitions move on a
    /// join and on a leave, and every record is read exactly once across both members.</summary>
    [Fact]
    public async Task RebalanceOnJoinAndLeaveLosesAndDuplicatesNothing()
    {
        var topic = target.NewTopicName("kip848-rb");
        await target.CreateTopicAsync(topic, 4);
        var group = target.NewGroupId();
        var seen = new ConcurrentDictionary<string, int>();
        var byMember = new ConcurrentDictionary<string, int>();
        var stopA = new CancellationTokenSource();
        var stopB = new CancellationTokenSource();
        var assignedB = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        void Run(string name, CancellationToken stop, TaskCompletionSource? assigned)
        {
            using var c = target.Consumer<Ignore, string>(Cfg(group, clientId: "rb-" + name));
            c.Subscribe(topic);
            while (!stop.IsCancellationRequested)
            {
                var r = c.Consume(100);
                if (c.Assignment.Count > 0) assigned?.TrySetResult();
                if (r is null || r.IsPartitionEOF) continue;
                seen.AddOrUpdate($"{r.Partition.Value}:{r.Offset.Value}", 1, (_, n) => n + 1);
                byMember.AddOrUpdate(name, 1, (_, n) => n + 1);
                c.Commit(r);
            }
            c.Close();
        }

        await ProduceAsync(topic, 100, 4, "a");
        var a = Task.Factory.StartNew(() => Run("A", stopA.Token, null), TaskCreationOptions.LongRunning);
        await WaitFor(() => seen.Count >= 100, "A reads the first 100");
        var b = Task.Factory.StartNew(() => Run("B", stopB.Token, assignedB), TaskCreationOptions.LongRunning);
        await assignedB.Task.WaitAsync(Deadline);
        await ProduceAsync(topic, 100, 4, "b");
        await WaitFor(() => seen.Count >= 200, "A and B read the next 100");
        Assert.True(byMember.GetValueOrDefault("B") > 0, "B got partitions and read from them");
        stopA.Cancel();
        await a.WaitAsync(Deadline);
        await ProduceAsync(topic, 100, 4, "c");
        await WaitFor(() => seen.Count >= 300, "B reads the last 100 after A left");
        await Task.Delay(1000);
        stopB.Cancel();
        await b.WaitAsync(Deadline);
        Assert.Equal(300, seen.Count);
        Assert.All(seen, kv => Assert.True(kv.Value == 1, $"record {kv.Key} read {kv.Value} times"));
    }

    private static async Task WaitFor(Func<bool> condition, string what)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            if (sw.Elapsed > Deadline) Assert.Fail($"timed out: {what}");
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task StaticMemberRestartKeepsItsPartitions()
    {
        var topic = target.NewTopicName("kip848-st");
        await target.CreateTopicAsync(topic, 4);
        await ProduceAsync(topic, 40, 4);
        var group = target.NewGroupId();
        List<TopicPartition> first = [], second = [];
        IConsumer<Ignore, string>? other = null;
        try
        {
            // Two static members share the topic.
            await Within(Deadline, "two static members", () =>
            {
                other = target.Consumer<Ignore, string>(Cfg(group, "static-2"));
                other.Subscribe(topic);
                using var c = target.Consumer<Ignore, string>(Cfg(group, "static-1"));
                c.Subscribe(topic);
                var sw = Stopwatch.StartNew();
                while ((c.Assignment.Count + other.Assignment.Count != 4 || c.Assignment.Count == 0 || other.Assignment.Count == 0) && sw.Elapsed < TimeSpan.FromSeconds(60))
                {
                    c.Consume(100);
                    other.Consume(100);
                }
                first = c.Assignment.OrderBy(tp => tp.Partition.Value).ToList();
                Assert.Equal(2, first.Count);
                c.Close(); // a static member leaves with epoch -2: its partitions wait for it
                // Over more than a heartbeat interval (5 s) the other member is not given them.
                var gap = Stopwatch.StartNew();
                while (gap.Elapsed < TimeSpan.FromSeconds(7)) other.Consume(100);
                Assert.Equal(2, other.Assignment.Count);
            });
            await Within(Deadline, "restart of static-1", () =>
            {
                using var c = target.Consumer<Ignore, string>(Cfg(group, "static-1"));
                c.Subscribe(topic);
                var sw = Stopwatch.StartNew();
                while (c.Assignment.Count < 2 && sw.Elapsed < TimeSpan.FromSeconds(30))
                {
                    c.Consume(100);
                    other!.Consume(10);
                }
                second = c.Assignment.OrderBy(tp => tp.Partition.Value).ToList();
                // The other member never got the restarted member's partitions.
                Assert.Equal(2, other!.Assignment.Count);
                Assert.DoesNotContain(other.Assignment, tp => first.Contains(tp));
                c.Close();
            });
            Assert.Equal(first, second);
        }
        finally
        {
            if (other is not null) await Within(Deadline, "close", () => { other.Close(); other.Dispose(); });
        }
    }

    [Fact]
    public async Task RegexSubscriptionPicksUpATopicCreatedLater()
    {
        string prefix = "rx" + Guid.NewGuid().ToString("N")[..8];
        await target.CreateTopicAsync(prefix + "-a", 2);
        await ProduceAsync(prefix + "-a", 10, 2, "a");
        var group = target.NewGroupId();
        var topics = new ConcurrentDictionary<string, int>();
        using var stop = new CancellationTokenSource();
        var run = Task.Factory.StartNew(() =>
        {
            using var c = target.Consumer<Ignore, string>(Cfg(group));
            c.Subscribe("^" + prefix + ".*");
            while (!stop.IsCancellationRequested)
                if (c.Consume(100) is { IsPartitionEOF: false } r) topics.AddOrUpdate(r.Topic, 1, (_, n) => n + 1);
            c.Close();
        }, TaskCreationOptions.LongRunning);
        await WaitFor(() => topics.GetValueOrDefault(prefix + "-a") >= 10, "records of the first matching topic");
        await target.CreateTopicAsync(prefix + "-b", 2);
        await ProduceAsync(prefix + "-b", 10, 2, "b");
        await WaitFor(() => topics.GetValueOrDefault(prefix + "-b") >= 10, "records of the topic created later");
        stop.Cancel();
        await run.WaitAsync(Deadline);
        Assert.Equal(10, topics[prefix + "-b"]);
    }
}

/// <summary>A consumer group's committed offsets and membership survive the loss of its
/// coordinator: the __consumer_offsets partition (3 replicas) moves to another broker, which
/// replays the consumer group records and offsets.</summary>
public sealed class ConsumerProtocolFailoverTests
{
    [Fact]
    public async Task OffsetsAndTheGroupSurviveACoordinatorFailover()
    {
        var deadline = TimeSpan.FromSeconds(90);
        await using var keeper = new KeeperServer();
        await keeper.InitializeAsync();
        var dir = Path.Combine(Path.GetTempPath(), "c216-kip848-failover-" + Guid.NewGuid().ToString("N"));
        await using var cluster = await LocalCluster.StartAsync(keeper.Address!, 3, sessionTimeoutMs: 6000, brokerConfig: new Dictionary<string, string>
        {
            ["offsets.topic.replication.factor"] = "3",
            ["offsets.topic.num.partitions"] = "3",
            ["group.initial.rebalance.delay.ms"] = "0",
            ["group.consumer.heartbeat.interval.ms"] = "1000",
            ["group.consumer.min.heartbeat.interval.ms"] = "1000",
        }, dataDir: dir);
        string bootstrap = cluster.Bootstrap(1);
        const string topic = "kip848-failover";
        // The bootstrap broker must know brokers 2 and 3 before it can place replicas on them.
        await LocalCluster.WaitUntilAsync(async () => (await cluster.MetadataAsync(1)).Brokers.Count == 3,
            TimeSpan.FromSeconds(30), "broker 1 sees all three brokers");
        await Task.Run(async () =>
        {
            using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrap }).Build();
            await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = 2, ReplicasAssignments = new() { [0] = [1, 2, 3], [1] = [1, 3, 2] } }]);
            using var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = bootstrap, Acks = Acks.All }).Build();
            for (int i = 0; i < 40; i++) await producer.ProduceAsync(new TopicPartition(topic, i % 2), new Message<Null, string> { Value = "v" + i });
        }).WaitAsync(deadline);

        // The first FindCoordinator creates __consumer_offsets; then pick a group it places on
        // broker 2 or 3 (never the bootstrap broker, which leads the topic).
        await Task.Run(() =>
        {
            using var probe = new ConsumerBuilder<Ignore, string>(new ConsumerConfig { BootstrapServers = bootstrap, GroupId = "probe" }).Build();
            probe.Committed([new TopicPartition(topic, 0)], TimeSpan.FromSeconds(30));
        }).WaitAsync(deadline);
        string group = "";
        int coordinator = 0;
        await LocalCluster.WaitUntilAsync(async () =>
        {
            var md = await cluster.MetadataAsync(1, "__consumer_offsets");
            if (md.Topics.Count == 0 || md.Topics[0].Partitions.Count != 3 || md.Topics[0].Partitions.Any(p => p.LeaderId < 0)) return false;
            var leaders = md.Topics[0].Partitions.OrderBy(p => p.PartitionIndex).Select(p => p.LeaderId).ToArray();
            for (int i = 0; i < 200 && coordinator == 0; i++)
            {
                var id = "fo-" + Guid.NewGuid().ToString("N");
                int leader = leaders[GroupCoordinator.PartitionFor(id, 3)];
                if (leader is 2 or 3) { group = id; coordinator = leader; }
            }
            return coordinator != 0;
        }, TimeSpan.FromSeconds(30), "a group coordinated by broker 2 or 3");

        var cfg = new ConsumerConfig
        {
            BootstrapServers = bootstrap, GroupId = group, GroupProtocol = GroupProtocol.Consumer,
            AutoOffsetReset = AutoOffsetReset.Earliest, EnableAutoCommit = false,
        };
        if (KafkaTarget.DebugDir is not null) cfg.Debug = "cgrp,consumer,protocol";
        var seen = new List<string>();
        var consumer = new ConsumerBuilder<Ignore, string>(cfg).SetLogHandler((_, m) => KafkaTarget.Log("failover-1", m)).Build();
        await Task.Run(() =>
        {
            consumer.Subscribe(topic);
            var sw = Stopwatch.StartNew();
            while (seen.Count < 20 && sw.Elapsed < TimeSpan.FromSeconds(60))
                if (consumer.Consume(200) is { IsPartitionEOF: false } r) { seen.Add(r.Message.Value); consumer.Commit(r); }
        }).WaitAsync(deadline);
        Assert.Equal(20, seen.Count);

        void Poll()
        {
            if (consumer.Consume(100) is { IsPartitionEOF: false } r) { seen.Add(r.Message.Value); consumer.Commit(r); }
        }

        // A second member joins and leaves, so the group's epoch (3) tells a replayed group from
        // one lost and joined again (epoch 1).
        var old = cluster[coordinator].Groups.Coordinator;
        await Task.Run(() =>
        {
            using var second = new ConsumerBuilder<Ignore, string>(cfg).Build();
            second.Subscribe(topic);
            var sw = Stopwatch.StartNew();
            // The second member only joins: it is closed before it could be given a partition.
            while (old.GetConsumerGroup(group)!.GroupEpoch < 2 && sw.Elapsed < TimeSpan.FromSeconds(30)) { second.Consume(10); Poll(); }
            second.Close();
            while (old.GetConsumerGroup(group)!.State != ConsumerGroupStateOfBroker.Stable && sw.Elapsed < TimeSpan.FromSeconds(60)) Poll();
        }).WaitAsync(deadline);
        var before = old.GetConsumerGroup(group)!;
        Assert.Equal(3, before.GroupEpoch);
        string memberId = Assert.Single(before.AllMembers).MemberId;

        cluster[coordinator].ControlledShutdownOnStop = false;
        await cluster.StopBrokerAsync(coordinator);

        // The same member keeps consuming through the new coordinator and commits there; then a
        // fresh consumer of the group starts at the committed offsets: 40 records, each once.
        await Task.Run(() =>
        {
            var sw = Stopwatch.StartNew();
            while (seen.Count < 40 && sw.Elapsed < TimeSpan.FromSeconds(70))
                if (consumer.Consume(200) is { IsPartitionEOF: false } r)
                {
                    seen.Add(r.Message.Value);
                    try { consumer.Commit(r); } catch (KafkaException) { }
                }
            // Commit whatever is consumed once the coordinator answers again.
            var sw2 = Stopwatch.StartNew();
            while (sw2.Elapsed < TimeSpan.FromSeconds(40))
            {
                try { consumer.Commit(); break; }
                catch (KafkaException) { consumer.Consume(200); }
            }
            consumer.Close();
            consumer.Dispose();
        }).WaitAsync(TimeSpan.FromSeconds(150));
        Assert.Equal(40, seen.Distinct().Count());
        // The new coordinator replayed the group and the member went on without rejoining: its
        // leave on close made epoch 3 into 4 (a group lost with the coordinator would be at 2:
        // rejoin 1, leave 2).
        var now = cluster.LiveIds.Select(id => cluster[id].Groups.Coordinator.GetConsumerGroup(group)).Single(g => g is not null)!;
        Assert.Equal(4, now.GroupEpoch);
        Assert.Equal(ConsumerGroupStateOfBroker.Empty, now.State);
        await Task.Run(() =>
        {
            using var again = new ConsumerBuilder<Ignore, string>(cfg).Build();
            var committed = again.Committed([new TopicPartition(topic, 0), new TopicPartition(topic, 1)], TimeSpan.FromSeconds(30));
            Assert.All(committed, c => Assert.Equal(20, c.Offset.Value));
        }).WaitAsync(deadline);
    }
}
