using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Samsa.Cluster.Tests;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Broker.Groups;
using Samsa.Kafka.Protocol.Messages;
using Xunit;

namespace Samsa.Kafka.Broker.Client216Tests;

/// <summary>What the client tests run against: one broker, or a three-broker cluster bootstrapped
/// at a broker that leads none of the test topics' partitions and coordinates none of the tests'
/// groups or transactional ids (so the client must follow Metadata and FindCoordinator).</summary>
public abstract class KafkaTarget : IAsyncLifetime
{
    public abstract string Name { get; }
    public abstract string Bootstrap { get; }
    public abstract ValueTask InitializeAsync();
    public abstract ValueTask DisposeAsync();

    /// <summary>Creates a topic and returns once every broker knows a leader for each partition.</summary>
    public abstract Task CreateTopicAsync(string topic, int partitions);

    /// <summary>A fresh group id (on the cluster: one whose coordinator is not the bootstrap broker).</summary>
    public abstract string NewGroupId();

    /// <summary>A fresh transactional id (on the cluster: coordinated away from the bootstrap broker).</summary>
    public abstract string NewTransactionalId();

    /// <summary>The broker ids leading the topic's partitions, as the bootstrap broker reports them.</summary>
    public abstract Task<int[]> LeadersAsync(string topic);

    /// <summary>The running brokers (what a test reads broker-side state from); the bootstrap broker first.</summary>
    public virtual IReadOnlyList<KafkaBroker> Brokers => throw new NotSupportedException($"{Name} does not expose its brokers");

    public string NewTopicName(string what) => $"{what}-{Guid.NewGuid():N}"[..Math.Min(what.Length + 13, 60)];

    /// <summary>A client config for this target. SAMSA_RDKAFKA_DEBUG=dir writes librdkafka's debug
    /// log of each client to dir/&lt;client.id&gt;.log (diagnosing a failed or slow run).</summary>
    public T Config<T>(T config) where T : ClientConfig
    {
        config.BootstrapServers = Bootstrap;
        config.ClientId ??= "c216-" + Guid.NewGuid().ToString("N")[..8];
        if (DebugDir is not null) config.Debug = Environment.GetEnvironmentVariable("SAMSA_RDKAFKA_DEBUG_CONTEXTS") ?? "protocol,broker,cgrp,consumer,topic,metadata,eos,admin,msg";
        return config;
    }

    public static string? DebugDir => Environment.GetEnvironmentVariable("SAMSA_RDKAFKA_DEBUG");

    private static readonly object LogGate = new();

    /// <summary>Writes a client's librdkafka log lines to its own file under <see cref="DebugDir"/>.</summary>
    public static void Log(string clientName, LogMessage m)
    {
        if (DebugDir is null) return;
        lock (LogGate) File.AppendAllText(Path.Combine(DebugDir, clientName + ".log"), $"{DateTime.UtcNow:HH:mm:ss.fff} {m.Level} {m.Facility} {m.Message}\n");
    }

    public IProducer<TKey, TValue> Producer<TKey, TValue>(ProducerConfig config)
    {
        var c = Config(config);
        return new ProducerBuilder<TKey, TValue>(c).SetLogHandler((_, m) => Log(c.ClientId, m)).Build();
    }

    public IConsumer<TKey, TValue> Consumer<TKey, TValue>(ConsumerConfig config)
    {
        var c = Config(config);
        return new ConsumerBuilder<TKey, TValue>(c).SetLogHandler((_, m) => Log(c.ClientId, m)).Build();
    }

    public IAdminClient Admin()
    {
        var c = Config(new AdminClientConfig());
        return new AdminClientBuilder(c).SetLogHandler((_, m) => Log(c.ClientId, m)).Build();
    }

    protected static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"timed out waiting until {what}");
            await Task.Delay(50);
        }
    }

    /// <summary>Metadata v12 straight from a broker.</summary>
    protected static async Task<MetadataResponse> MetadataAsync(int port, string topic)
    {
        await using var client = await KafkaWireClient.ConnectAsync("127.0.0.1", port);
        return (await client.SendAsync<MetadataResponse>(new MetadataRequest
        {
            Topics = [new MetadataRequest.MetadataRequestTopic { Name = topic }],
            AllowAutoTopicCreation = false,
        }, 12))!;
    }

    protected static async Task<int[]?> LedPartitionsAsync(int port, string topic, int partitions)
    {
        var md = await MetadataAsync(port, topic);
        var t = md.Topics[0];
        if (t.ErrorCode != 0 || t.Partitions.Count != partitions || t.Partitions.Any(p => p.LeaderId < 0)) return null;
        return t.Partitions.OrderBy(p => p.PartitionIndex).Select(p => p.LeaderId).ToArray();
    }
}

/// <summary>One in-process broker on a loopback port, with its logs on disk: the in-memory
/// partition log keeps no aborted-transaction index, so read_committed needs the real one.</summary>
public sealed class SingleBroker : KafkaTarget
{
    private KafkaBroker _broker = null!;
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "c216-broker-" + Guid.NewGuid().ToString("N"));

    public override string Name => "one broker";
    public override string Bootstrap => $"127.0.0.1:{_broker.BoundEndPoint.Port}";

    public override async ValueTask InitializeAsync()
    {
        var props = new Dictionary<string, string>
        {
            ["broker.id"] = "1",
            ["listeners"] = "PLAINTEXT://127.0.0.1:0",
            ["offsets.topic.replication.factor"] = "1",
            ["offsets.topic.num.partitions"] = "5",
            ["transaction.state.log.replication.factor"] = "1",
            ["transaction.state.log.min.isr"] = "1",
            ["transaction.state.log.num.partitions"] = "5",
            ["group.initial.rebalance.delay.ms"] = "0",
            ["log.dirs"] = _dir,
        };
        var logPath = Environment.GetEnvironmentVariable("SAMSA_TEST_BROKER_LOG");
        object gate = new();
        Action<string>? log = logPath is null ? null : line => { lock (gate) File.AppendAllText(logPath, $"{DateTime.UtcNow:HH:mm:ss.fff} {line}\n"); };
        _broker = new KafkaBroker(new BrokerConfig(props), log: log);
        await _broker.StartAsync();
    }

    public override async ValueTask DisposeAsync()
    {
        await _broker.DisposeAsync();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    public override async Task CreateTopicAsync(string topic, int partitions)
    {
        using (var admin = Admin())
            await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = partitions, ReplicationFactor = 1 }]);
        await WaitUntilAsync(async () => await LedPartitionsAsync(_broker.BoundEndPoint.Port, topic, partitions) is not null,
            TimeSpan.FromSeconds(10), $"{topic} has leaders");
    }

    public override IReadOnlyList<KafkaBroker> Brokers => [_broker];

    public override string NewGroupId() => "g-" + Guid.NewGuid().ToString("N");
    public override string NewTransactionalId() => "tx-" + Guid.NewGuid().ToString("N");

    public override async Task<int[]> LeadersAsync(string topic) =>
        (await MetadataAsync(_broker.BoundEndPoint.Port, topic)).Topics[0].Partitions.OrderBy(p => p.PartitionIndex).Select(p => p.LeaderId).ToArray();
}

/// <summary>Three in-process brokers on an in-process Keeper. Clients bootstrap at broker 1; test
/// topics are created with an explicit replica assignment whose first replica (the preferred
/// leader) is broker 2 or 3, and group / transactional ids are picked so that their
/// __consumer_offsets / __transaction_state partition is led by broker 2 or 3.</summary>
public sealed class ThreeBrokers : KafkaTarget
{
    public const int BootstrapId = 1;
    private const int CoordinatorPartitions = 6;
    private readonly KeeperServer _keeper = new();
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "c216-cluster-" + Guid.NewGuid().ToString("N"));
    private LocalCluster _cluster = null!;
    private int[] _offsetsLeaders = [], _txnLeaders = [];

    public override string Name => "three brokers";
    public override string Bootstrap => _cluster.Bootstrap(BootstrapId);
    public LocalCluster Cluster => _cluster;

    public override async ValueTask InitializeAsync()
    {
        await _keeper.InitializeAsync();
        _cluster = await LocalCluster.StartAsync(_keeper.Address!, 3, brokerConfig: new Dictionary<string, string>
        {
            ["offsets.topic.num.partitions"] = CoordinatorPartitions.ToString(),
            ["transaction.state.log.num.partitions"] = CoordinatorPartitions.ToString(),
            ["transaction.state.log.min.isr"] = "1",
            ["group.initial.rebalance.delay.ms"] = "0",
        }, dataDir: _dir);
        // Both coordinator topics exist before the tests pick ids: the first FindCoordinator of
        // each key type creates its topic (spread over the live brokers).
        _offsetsLeaders = await CoordinatorLeadersAsync(FindCoordinatorKeyType.Group, "__consumer_offsets");
        _txnLeaders = await CoordinatorLeadersAsync(FindCoordinatorKeyType.Transaction, "__transaction_state");
    }

    private enum FindCoordinatorKeyType : sbyte { Group = 0, Transaction = 1 }

    private async Task<int[]> CoordinatorLeadersAsync(FindCoordinatorKeyType type, string topic)
    {
        int[]? leaders = null;
        await WaitUntilAsync(async () =>
        {
            await using (var client = await KafkaWireClient.ConnectAsync("127.0.0.1", _cluster.Port(BootstrapId)))
                await client.SendAsync<FindCoordinatorResponse>(new FindCoordinatorRequest { Key = "probe", KeyType = (sbyte)type }, 3);
            foreach (int id in new[] { 1, 2, 3 })
                if (await LedPartitionsAsync(_cluster.Port(id), topic, CoordinatorPartitions) is null) return false;
            leaders = await LedPartitionsAsync(_cluster.Port(BootstrapId), topic, CoordinatorPartitions);
            return leaders is not null;
        }, TimeSpan.FromSeconds(30), $"{topic} exists with leaders");
        if (leaders!.All(l => l == BootstrapId)) throw new InvalidOperationException($"broker {BootstrapId} leads every partition of {topic}");
        return leaders!;
    }

    public override async ValueTask DisposeAsync()
    {
        await _cluster.DisposeAsync();
        await _keeper.DisposeAsync();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    public override async Task CreateTopicAsync(string topic, int partitions)
    {
        using (var admin = Admin())
        {
            // Preferred leader 2 or 3 alternately, never the bootstrap broker.
            var assignment = Enumerable.Range(0, partitions).ToDictionary(p => p, p => p % 2 == 0 ? new List<int> { 2, 3 } : new List<int> { 3, 2 });
            await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = partitions, ReplicasAssignments = assignment }]);
        }
        await WaitUntilAsync(async () =>
        {
            foreach (int id in new[] { 1, 2, 3 })
                if (await LedPartitionsAsync(_cluster.Port(id), topic, partitions) is null) return false;
            return true;
        }, TimeSpan.FromSeconds(15), $"every broker knows the leaders of {topic}");
        Assert.DoesNotContain(BootstrapId, await LeadersAsync(topic));
    }

    public override IReadOnlyList<KafkaBroker> Brokers =>
        [_cluster[BootstrapId], .. _cluster.LiveIds.Where(id => id != BootstrapId).Order().Select(id => _cluster[id])];

    public override string NewGroupId() => Pick("g-", _offsetsLeaders);
    public override string NewTransactionalId() => Pick("tx-", _txnLeaders);

    private static string Pick(string prefix, int[] leaders)
    {
        while (true)
        {
            var id = prefix + Guid.NewGuid().ToString("N");
            if (leaders[GroupCoordinator.PartitionFor(id, leaders.Length)] != BootstrapId) return id;
        }
    }

    public override async Task<int[]> LeadersAsync(string topic) =>
        (await MetadataAsync(_cluster.Port(BootstrapId), topic)).Topics[0].Partitions.OrderBy(p => p.PartitionIndex).Select(p => p.LeaderId).ToArray();
}
