using System.Diagnostics;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Xunit;

namespace Samsa.Cluster.Tests;

public sealed class KeeperClientClusterTests(KeeperServer server) : ClientClusterTests(server), IClassFixture<KeeperServer>;

public sealed class ApacheZooKeeperClientClusterTests(ApacheZooKeeperServer server) : ClientClusterTests(server), IClassFixture<ApacheZooKeeperServer>;

/// <summary>kafka-python 2.0.2 (Debian) and kafkajs 2.2.4 (npm) — the two clients that only speak
/// the classic encodings — produce to and consume from a many-partition topic of a three-broker
/// cluster, bootstrapped at one broker that leads only a third of the partitions, so both must
/// follow Metadata to the other leaders. tests/run-all.sh installs both clients.</summary>
public abstract class ClientClusterTests(ICoordinationServer server)
{
    private const int Partitions = 12, Count = 240;

    private string Server
    {
        get
        {
            Assert.SkipWhen(server.SkipReason is not null, server.SkipReason ?? "");
            return server.Address!;
        }
    }

    [Fact]
    public async Task KafkaPythonProducesAndConsumesThroughOneBootstrapBroker()
    {
        const string python = "/usr/bin/python3";
        Assert.SkipUnless(File.Exists(python) && Directory.Exists("/usr/lib/python3/dist-packages/kafka"),
            "kafka-python (Debian python3-kafka) is not installed; tests/run-all.sh installs it");
        await using var cluster = await LocalCluster.StartAsync(Server, 3);
        int bootstrap = await CreateSpreadTopicAsync(cluster, "kp");
        var lines = await RunAsync(python, [Script("kafka_python_cluster.py"), cluster.Bootstrap(bootstrap), "kp", Partitions.ToString(), Count.ToString()], null);

        // Every record was acknowledged by its partition's leader, at offsets 0..19 of each partition.
        var produced = lines.Where(l => l.StartsWith("produced ", StringComparison.Ordinal)).Select(l => l.Split(' ')).ToList();
        Assert.Equal(Count, produced.Count);
        Assert.All(produced.GroupBy(p => int.Parse(p[1])), g =>
            Assert.Equal(Enumerable.Range(0, Count / Partitions).Select(o => (long)o), g.Select(p => long.Parse(p[2])).Order()));
        AssertConsumedAll(lines);
    }

    [Fact]
    public async Task KafkajsProducesAndConsumesThroughOneBootstrapBroker()
    {
        var modules = Path.Combine(RepoRoot(), "compat", "kafkajs", "node_modules");
        Assert.SkipUnless(Directory.Exists(Path.Combine(modules, "kafkajs")) && File.Exists("/usr/bin/node"),
            $"kafkajs is not installed in {modules}; tests/run-all.sh runs npm ci there");
        await using var cluster = await LocalCluster.StartAsync(Server, 3);
        int bootstrap = await CreateSpreadTopicAsync(cluster, "kjs");
        var lines = await RunAsync("/usr/bin/node", [Script("kafkajs_cluster.js"), cluster.Bootstrap(bootstrap), "kjs", Partitions.ToString(), Count.ToString()],
            new Dictionary<string, string> { ["NODE_PATH"] = modules });

        // kafkajs answers one batch per partition: every partition took its first batch at offset 0.
        var batches = lines.Where(l => l.StartsWith("produced-batch ", StringComparison.Ordinal)).Select(l => l.Split(' ')).ToList();
        Assert.Equal(Enumerable.Range(0, Partitions), batches.Select(b => int.Parse(b[1])).Order());
        Assert.All(batches, b => Assert.Equal("0", b[2]));
        AssertConsumedAll(lines);
    }

    /// <summary>kafka-python's group consumer and admin client bootstrapped at a broker that neither
    /// coordinates the group nor leads a partition of the topic: the client must follow
    /// FindCoordinator to the coordinator for the join, the commits, DescribeGroups and OffsetFetch.</summary>
    [Fact]
    public async Task KafkaPythonGroupAndAdminThroughABrokerThatIsNeitherLeaderNorCoordinator()
    {
        const string python = "/usr/bin/python3";
        Assert.SkipUnless(File.Exists(python) && Directory.Exists("/usr/lib/python3/dist-packages/kafka"),
            "kafka-python (Debian python3-kafka) is not installed; tests/run-all.sh installs it");
        await using var cluster = await LocalCluster.StartAsync(Server, 3, brokerConfig: new Dictionary<string, string>
        {
            ["offsets.topic.num.partitions"] = "6", ["group.initial.rebalance.delay.ms"] = "0",
        });
        const int bootstrap = 1, records = 60;
        // Three partitions led by brokers 2 and 3 only.
        var (error, message, _) = cluster[1].Replicas.CreateTopic("grouped", 3, 2, new Dictionary<string, string>(), validateOnly: false,
            new Dictionary<int, List<int>> { [0] = [2, 1], [1] = [3, 1], [2] = [2, 3] });
        Assert.True(error == Samsa.Kafka.Protocol.ErrorCode.None, $"{error} {message}");
        foreach (int id in new[] { 1, 2, 3 }) await cluster.LedMetadataAsync(id, "grouped", 3);
        using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = cluster.Bootstrap(bootstrap), Acks = Acks.All }).Build())
            for (int i = 0; i < records; i++)
                await producer.ProduceAsync(new Confluent.Kafka.TopicPartition("grouped", i % 3), new Message<Null, string> { Value = $"r{i}" });
        // A group id whose coordinator is not the bootstrap broker.
        string group = "";
        for (int i = 0; group.Length == 0; i++)
        {
            await using var c = await Samsa.Kafka.Broker.Client.KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(2));
            var r = (await c.SendAsync<Samsa.Kafka.Protocol.Messages.FindCoordinatorResponse>(
                new Samsa.Kafka.Protocol.Messages.FindCoordinatorRequest { Key = $"kp-group-{i}" }, 3))!;
            if (r.ErrorCode == 0 && r.NodeId != bootstrap) group = $"kp-group-{i}";
            else if (r.ErrorCode != 0) { i--; await Task.Delay(100); }
        }
        var lines = await RunAsync(python, [Script("kafka_python_group_cluster.py"), cluster.Bootstrap(bootstrap), "grouped", group, records.ToString()], null);

        Assert.Equal(records, lines.Count(l => l.StartsWith("consumed ", StringComparison.Ordinal)));
        string[] expected = ["committed 0 20", "committed 1 20", "committed 2 20"];
        Assert.Equal(expected, lines.Where(l => l.StartsWith("committed ", StringComparison.Ordinal)));
        Assert.Contains("group Stable 1", lines);
        Assert.Equal(["offset 0 20", "offset 1 20", "offset 2 20"], lines.Where(l => l.StartsWith("offset ", StringComparison.Ordinal)));
    }

    /// <summary>confluent-kafka-python's consume-transform-produce with the group coordinator, the
    /// transaction coordinator and the partition leaders on other brokers than the bootstrap broker:
    /// every output record is committed (read_committed sees them all, once) and the group's offsets
    /// advanced with the transactions.</summary>
    [Fact]
    public async Task ConfluentPythonConsumeTransformProduceAcrossCoordinators()
    {
        const string python = "/usr/bin/python3";
        Assert.SkipUnless(File.Exists(python) && Directory.Exists("/usr/lib/python3/dist-packages/confluent_kafka"),
            "confluent-kafka-python (Debian python3-confluent-kafka) is not installed; tests/run-all.sh installs it");
        await using var cluster = await LocalCluster.StartAsync(Server, 3, brokerConfig: new Dictionary<string, string>
        {
            ["offsets.topic.num.partitions"] = "6", ["transaction.state.log.num.partitions"] = "6", ["group.initial.rebalance.delay.ms"] = "0",
        });
        const int bootstrap = 1, records = 40;
        foreach (var topic in new[] { "ctp-in", "ctp-out" })
        {
            var (error, message, _) = cluster[1].Replicas.CreateTopic(topic, 2, 2, new Dictionary<string, string>(), validateOnly: false,
                new Dictionary<int, List<int>> { [0] = [2, 1], [1] = [3, 1] });
            Assert.True(error == Samsa.Kafka.Protocol.ErrorCode.None, $"{error} {message}");
            foreach (int id in new[] { 1, 2, 3 }) await cluster.LedMetadataAsync(id, topic, 2);
        }
        using (var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = cluster.Bootstrap(bootstrap), Acks = Acks.All }).Build())
            for (int i = 0; i < records; i++)
                await producer.ProduceAsync(new Confluent.Kafka.TopicPartition("ctp-in", i % 2), new Message<string, string> { Key = $"k{i}", Value = $"v{i}" });
        string group = await KeyCoordinatedElsewhereAsync(cluster, "ctp-group-", 0, bootstrap, avoid: -1);
        int groupCoordinator = await CoordinatorOfAsync(cluster, group, 0);
        // The transaction coordinator is yet another broker: neither the bootstrap nor the group's.
        string txnId = await KeyCoordinatedElsewhereAsync(cluster, "ctp-txn-", 1, bootstrap, avoid: groupCoordinator);
        var lines = await RunAsync(python, [Script("confluent_python_ctp_cluster.py"), cluster.Bootstrap(bootstrap), "ctp-in", "ctp-out", group, txnId, records.ToString()], null);

        Assert.Equal(["committed-offset 0 20", "committed-offset 1 20"], lines.Where(l => l.StartsWith("committed-offset ", StringComparison.Ordinal)).Order());
        var output = lines.Where(l => l.StartsWith("output ", StringComparison.Ordinal)).Select(l => l.Split(' ')[2]).ToList();
        Assert.Equal(Enumerable.Range(0, records).Select(i => $"out-v{i}").Order(), output.Order());
    }

    internal static async Task<int> CoordinatorOfAsync(LocalCluster cluster, string key, sbyte keyType)
    {
        await using var c = await Samsa.Kafka.Broker.Client.KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(2));
        for (var sw = Stopwatch.StartNew(); ; await Task.Delay(100))
        {
            var r = (await c.SendAsync<Samsa.Kafka.Protocol.Messages.FindCoordinatorResponse>(
                new Samsa.Kafka.Protocol.Messages.FindCoordinatorRequest { Key = key, KeyType = keyType }, 3))!;
            if (r.ErrorCode == 0) return r.NodeId;
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30), $"no coordinator for {key}: {r.ErrorCode}");
        }
    }

    /// <summary>A key (group id or transactional id) whose coordinator is neither the bootstrap broker nor <paramref name="avoid"/>.</summary>
    internal static async Task<string> KeyCoordinatedElsewhereAsync(LocalCluster cluster, string prefix, sbyte keyType, int bootstrap, int avoid)
    {
        for (int i = 0; ; i++)
        {
            int node = await CoordinatorOfAsync(cluster, prefix + i, keyType);
            if (node != bootstrap && node != avoid) return prefix + i;
        }
    }

    /// <summary>Creates a 12-partition topic with two replicas and returns a broker to bootstrap at:
    /// one that leads some partitions but not all.</summary>
    private static async Task<int> CreateSpreadTopicAsync(LocalCluster cluster, string topic)
    {
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.Bootstrap(1) }).Build())
            await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = Partitions, ReplicationFactor = 2 }]);
        var md = await cluster.LedMetadataAsync(2, topic, Partitions);
        var leaders = md.Topics[0].Partitions.Select(p => p.LeaderId).ToList();
        Assert.Equal([1, 2, 3], leaders.Distinct().Order());
        // Every broker must know the leaders before a client bootstrapped there asks.
        foreach (int id in new[] { 1, 3 }) await cluster.LedMetadataAsync(id, topic, Partitions);
        int bootstrap = 2;
        Assert.Equal(Partitions / 3, leaders.Count(l => l == bootstrap));
        return bootstrap;
    }

    private static void AssertConsumedAll(List<string> lines)
    {
        var consumed = lines.Where(l => l.StartsWith("consumed ", StringComparison.Ordinal)).Select(l => l.Split(' ')).ToList();
        Assert.Equal(Count, consumed.Count);
        Assert.Equal(Enumerable.Range(0, Count), consumed.Select(c => int.Parse(c[2][1..])).Order());
        Assert.All(consumed, c =>
        {
            int i = int.Parse(c[2][1..]);
            Assert.Equal(i % Partitions, int.Parse(c[1]));
            Assert.Equal($"v{i}", c[3]);
        });
    }

    internal static string Script(string name) => Path.Combine(RepoRoot(), "tests", "Samsa.Cluster.Tests", "clients", name);

    internal static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Compat.sln"))) return dir.FullName;
        throw new InvalidOperationException("Compat.sln not found above " + AppContext.BaseDirectory);
    }

    internal static async Task<List<string>> RunAsync(string exe, string[] args, Dictionary<string, string>? env)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (env is not null) foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        try { await p.WaitForExitAsync(timeout.Token); }
        catch (OperationCanceledException) { p.Kill(entireProcessTree: true); throw new TimeoutException($"{exe} did not finish: {await stderr}"); }
        Assert.True(p.ExitCode == 0, $"{Path.GetFileName(exe)} failed ({p.ExitCode}): {await stderr}\n{await stdout}");
        return (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
    }
}
