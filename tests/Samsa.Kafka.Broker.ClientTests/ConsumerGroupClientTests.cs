using System.Collections.Concurrent;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Samsa.Kafka.Broker.Config;

namespace Samsa.Kafka.Broker.ClientTests;

/// <summary>A real broker on 127.0.0.1 with files in a temporary directory, restartable on the same port.</summary>
public sealed class LiveBroker : IAsyncDisposable
{
    private readonly string _dir;
    private readonly Dictionary<string, string> _extra;
    public KafkaBroker Broker { get; private set; } = null!;
    public int Port { get; private set; }
    public string Bootstrap => $"127.0.0.1:{Port}";

    private static readonly object LogGate = new();

    private LiveBroker(string dir, Dictionary<string, string> extra) { _dir = dir; _extra = extra; }

    public static async Task<LiveBroker> StartAsync(params (string K, string V)[] extra)
    {
        var dir = Path.Combine(Path.GetTempPath(), "samsa-groups-" + Guid.NewGuid().ToString("N"));
        var b = new LiveBroker(dir, extra.ToDictionary(e => e.K, e => e.V));
        await b.StartOnAsync(0);
        return b;
    }

    private async Task StartOnAsync(int port)
    {
        var props = new Dictionary<string, string>
        {
            ["broker.id"] = "1",
            ["listeners"] = $"PLAINTEXT://127.0.0.1:{port}",
            ["log.dirs"] = _dir,
            ["offsets.topic.replication.factor"] = "1",
            ["offsets.topic.num.partitions"] = "5",
            ["group.initial.rebalance.delay.ms"] = "0",
        };
        foreach (var (k, v) in _extra) props[k] = v;
        // SAMSA_TEST_BROKER_LOG=path appends the broker's log there (diagnosing a failed run).
        var logPath = Environment.GetEnvironmentVariable("SAMSA_TEST_BROKER_LOG");
        Action<string>? log = logPath is null ? null : line => { lock (LogGate) File.AppendAllText(logPath, $"{DateTime.UtcNow:HH:mm:ss.fff} {line}\n"); };
        Broker = new KafkaBroker(new BrokerConfig(props), log: log);
        await Broker.StartAsync();
        Port = Broker.BoundEndPoint.Port;
    }

    public async Task RestartAsync()
    {
        await Broker.DisposeAsync();
        for (int attempt = 0; ; attempt++)
        {
            try { await StartOnAsync(Port); return; }
            catch (System.Net.Sockets.SocketException) when (attempt < 50) { await Task.Delay(100); }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Broker.DisposeAsync();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}

/// <summary>One consumer polling on its own thread, recording what it receives and its assignment.</summary>
public sealed class RunningConsumer : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Thread _thread;
    private volatile TopicPartition[] _assignment = [];
    public readonly ConcurrentQueue<string> Received = new();
    public int AssignedCallbacks, RevokedCallbacks;
    public string Name { get; }
    public bool CommitEach { get; init; }
    public volatile Exception? Failure;

    /// <summary>Consumers whose thread died; a waiting test fails with their error at once.</summary>
    public static readonly ConcurrentBag<RunningConsumer> Failed = [];

    public RunningConsumer(string name, ConsumerConfig config, string topic, bool commitEach = false)
    {
        Name = name;
        CommitEach = commitEach;
        var consumer = new ConsumerBuilder<Ignore, string>(config)
            .SetPartitionsAssignedHandler((_, ps) => { Interlocked.Increment(ref AssignedCallbacks); })
            .SetPartitionsRevokedHandler((_, ps) => { Interlocked.Increment(ref RevokedCallbacks); })
            .Build();
        _thread = new Thread(() =>
        {
            try
            {
                consumer.Subscribe(topic);
                while (!_stop.IsCancellationRequested)
                {
                    var r = consumer.Consume(100);
                    _assignment = consumer.Assignment.ToArray();
                    if (r is null || r.IsPartitionEOF) continue;
                    Received.Enqueue(r.Message.Value);
                    if (CommitEach)
                    {
                        for (int attempt = 0; ; attempt++)
                        {
                            try { consumer.Commit(r); break; }
                            catch (KafkaException) when (attempt < 150) { Thread.Sleep(200); }
                        }
                    }
                }
                consumer.Close();
            }
            catch (Exception e) { Failure = e; Failed.Add(this); }
            finally { consumer.Dispose(); }
        }) { IsBackground = true, Name = name };
        _thread.Start();
    }

    public TopicPartition[] Assignment => _assignment;

    public void Dispose()
    {
        _stop.Cancel();
        _thread.Join(TimeSpan.FromSeconds(30));
    }
}

public class ConsumerGroupClientTests
{
    public ConsumerGroupClientTests() => RunningConsumer.Failed.Clear();

    private static async Task WaitUntil(Func<bool> condition, string what, int seconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            if (RunningConsumer.Failed.FirstOrDefault() is { } dead) Assert.Fail($"consumer {dead.Name} failed: {dead.Failure}");
            if (DateTime.UtcNow > deadline) Assert.Fail($"timed out waiting for {what}");
            await Task.Delay(100);
        }
    }

    private static async Task CreateTopic(string bootstrap, string topic, int partitions)
    {
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrap }).Build();
        await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = partitions, ReplicationFactor = 1 }]);
    }

    private static async Task Produce(string bootstrap, string topic, int partitions, int count, string prefix = "m")
    {
        using var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = bootstrap, LingerMs = 5 }).Build();
        for (int i = 0; i < count; i++)
            producer.Produce(new Confluent.Kafka.TopicPartition(topic, new Partition(i % partitions)), new Message<Null, string> { Value = $"{prefix}{i}" });
        producer.Flush(TimeSpan.FromSeconds(30));
        await Task.CompletedTask;
    }

    private static ConsumerConfig Config(string bootstrap, string group, PartitionAssignmentStrategy strategy = PartitionAssignmentStrategy.Range,
        string? instanceId = null, bool autoCommit = true) => new()
    {
        BootstrapServers = bootstrap,
        GroupId = group,
        GroupInstanceId = instanceId,
        AutoOffsetReset = AutoOffsetReset.Earliest,
        EnableAutoCommit = autoCommit,
        AutoCommitIntervalMs = 200,
        SessionTimeoutMs = 15000, // generous: the test machine may be heavily loaded
        HeartbeatIntervalMs = 300,
        PartitionAssignmentStrategy = strategy,
        TopicMetadataRefreshIntervalMs = 1000,
    };

    private static bool Covers(IEnumerable<RunningConsumer> consumers, string topic, int partitions, int minEach = 1)
    {
        var list = consumers.ToList();
        var all = list.SelectMany(c => c.Assignment).Where(tp => tp.Topic == topic).Select(tp => tp.Partition.Value).ToList();
        return all.Count == partitions && all.Distinct().Count() == partitions && list.All(c => c.Assignment.Length >= minEach);
    }

    [Fact]
    public async Task ThreeConsumersShareSixPartitionsThenAFourthJoinsAndOneLeaves()
    {
        await using var broker = await LiveBroker.StartAsync();
        await CreateTopic(broker.Bootstrap, "six", 6);
        await Produce(broker.Bootstrap, "six", 6, 600);
        var consumers = new List<RunningConsumer>();
        try
        {
            for (int i = 0; i < 3; i++) consumers.Add(new RunningConsumer($"c{i}", Config(broker.Bootstrap, "g3"), "six"));
            await WaitUntil(() => Covers(consumers, "six", 6) && consumers.All(c => c.Assignment.Length == 2), "three consumers with two partitions each");
            await WaitUntil(() => consumers.Sum(c => c.Received.Count) >= 600, "all 600 records consumed");
            Assert.Equal(600, consumers.SelectMany(c => c.Received).Distinct().Count());

            var fourth = new RunningConsumer("c3", Config(broker.Bootstrap, "g3"), "six");
            consumers.Add(fourth);
            await WaitUntil(() => Covers(consumers, "six", 6), "four consumers covering six partitions");

            await WaitUntil(() => Describe(broker.Bootstrap, "g3").State == "Stable", "group g3 Stable");
            var described = Describe(broker.Bootstrap, "g3");
            Assert.Equal(4, described.Members.Count);
            Assert.Equal("consumer", described.ProtocolType);
            Assert.Equal("range", described.Protocol);
            Assert.All(described.Members, m => Assert.Equal("/127.0.0.1", m.ClientHost));

            consumers[0].Dispose(); // Close() sends LeaveGroup
            consumers.RemoveAt(0);
            await WaitUntil(() => Covers(consumers, "six", 6) && consumers.All(c => c.Assignment.Length == 2), "three remaining consumers with two partitions each");
            Assert.All(consumers, c => Assert.Null(c.Failure));
        }
        finally
        {
            foreach (var c in consumers) c.Dispose();
        }
    }

    /// <summary>ListGroups + DescribeGroups through the admin client.</summary>
    private static GroupInfo Describe(string bootstrap, string group)
    {
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrap }).Build();
        return admin.ListGroup(group, TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task CooperativeStickyAssignorRebalancesIncrementally()
    {
        await using var broker = await LiveBroker.StartAsync();
        await CreateTopic(broker.Bootstrap, "coop", 6);
        var consumers = new List<RunningConsumer>();
        try
        {
            consumers.Add(new RunningConsumer("a", Config(broker.Bootstrap, "gc", PartitionAssignmentStrategy.CooperativeSticky), "coop"));
            consumers.Add(new RunningConsumer("b", Config(broker.Bootstrap, "gc", PartitionAssignmentStrategy.CooperativeSticky), "coop"));
            await WaitUntil(() => Covers(consumers, "coop", 6) && consumers.All(c => c.Assignment.Length == 3), "two consumers with three partitions each");
            var before = consumers.ToDictionary(c => c.Name, c => c.Assignment.Select(tp => tp.Partition.Value).ToHashSet());
            consumers.Add(new RunningConsumer("c", Config(broker.Bootstrap, "gc", PartitionAssignmentStrategy.CooperativeSticky), "coop"));
            await WaitUntil(() => Covers(consumers, "coop", 6) && consumers.All(c => c.Assignment.Length == 2), "three consumers with two partitions each");
            // Sticky: the first two kept two of their three partitions each.
            foreach (var name in new[] { "a", "b" })
                Assert.True(consumers.Single(c => c.Name == name).Assignment.All(tp => before[name].Contains(tp.Partition.Value)));
            Assert.Equal("cooperative-sticky", Describe(broker.Bootstrap, "gc").Protocol);
        }
        finally
        {
            foreach (var c in consumers) c.Dispose();
        }
    }

    [Fact]
    public async Task StaticMemberRestartDoesNotRebalance()
    {
        await using var broker = await LiveBroker.StartAsync();
        await CreateTopic(broker.Bootstrap, "static", 4);
        var s1 = new RunningConsumer("s1", Config(broker.Bootstrap, "gs", instanceId: "instance-1"), "static");
        var s2 = new RunningConsumer("s2", Config(broker.Bootstrap, "gs", instanceId: "instance-2"), "static");
        try
        {
            await WaitUntil(() => Covers([s1, s2], "static", 4) && s1.Assignment.Length == 2, "two static members with two partitions each");
            await Task.Delay(1000);
            var s1Partitions = s1.Assignment.Select(tp => tp.Partition.Value).Order().ToArray();
            int s2Assigned = s2.AssignedCallbacks, s2Revoked = s2.RevokedCallbacks;
            s1.Dispose(); // a static member does not send LeaveGroup (KIP-345)
            s1 = new RunningConsumer("s1b", Config(broker.Bootstrap, "gs", instanceId: "instance-1"), "static");
            await WaitUntil(() => s1.Assignment.Length == 2, "the restarted static member's assignment");
            Assert.Equal(s1Partitions, s1.Assignment.Select(tp => tp.Partition.Value).Order().ToArray());
            await Task.Delay(2000);
            Assert.Equal(s2Assigned, s2.AssignedCallbacks);
            Assert.Equal(s2Revoked, s2.RevokedCallbacks);
            Assert.Equal(2, s2.Assignment.Length);
        }
        finally
        {
            s1.Dispose();
            s2.Dispose();
        }
    }

    [Fact]
    public async Task GroupsResumeFromCommittedOffsetsAfterBrokerRestart()
    {
        await using var broker = await LiveBroker.StartAsync();
        await CreateTopic(broker.Bootstrap, "durable", 6);
        await Produce(broker.Bootstrap, "durable", 6, 300, "a");
        var seen = new List<string>();
        using (var c = new RunningConsumer("d1", Config(broker.Bootstrap, "gd", autoCommit: false), "durable", commitEach: true))
        {
            await WaitUntil(() => c.Received.Count >= 300, "first 300 records");
            seen.AddRange(c.Received);
        }
        await broker.RestartAsync();
        await Produce(broker.Bootstrap, "durable", 6, 300, "b");
        var consumers = new List<RunningConsumer>();
        try
        {
            // Two consumers carry on where the group committed before the restart.
            consumers.Add(new RunningConsumer("d2", Config(broker.Bootstrap, "gd", autoCommit: false), "durable", commitEach: true));
            consumers.Add(new RunningConsumer("d3", Config(broker.Bootstrap, "gd", autoCommit: false), "durable", commitEach: true));
            await WaitUntil(() => consumers.Sum(c => c.Received.Count) >= 300, "the 300 new records");
            await Task.Delay(500);
        }
        finally
        {
            foreach (var c in consumers) c.Dispose();
        }
        seen.AddRange(consumers.SelectMany(c => c.Received));
        Assert.Equal(600, seen.Count);
        Assert.Equal(600, seen.Distinct().Count());
        Assert.Equal(300, seen.Count(s => s.StartsWith('b')));

        // And the committed offsets themselves survived: the group's committed positions are the log ends.
        await broker.RestartAsync();
        using var probe = new ConsumerBuilder<Ignore, string>(Config(broker.Bootstrap, "gd")).Build();
        var committed = probe.Committed(Enumerable.Range(0, 6).Select(p => new Confluent.Kafka.TopicPartition("durable", p)), TimeSpan.FromSeconds(30));
        Assert.Equal(6, committed.Count);
        Assert.All(committed, p => Assert.Equal(100, p.Offset.Value));
    }
}
