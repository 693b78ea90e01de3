using System.Diagnostics;
using Confluent.Kafka;
using Xunit;

namespace Samsa.Cluster.Tests;

/// <summary>
/// The `samsa kafka-topics`, `kafka-consumer-groups`, `kafka-configs` and `kafka-acls` commands
/// (issue #20) run as a user runs them — the samsa executable, its exit code and its output —
/// against one broker and against three brokers bootstrapped at a broker that is not the controller.
/// </summary>
public sealed partial class AdminCommandsClusterTests(KeeperServer server) : IClassFixture<KeeperServer>
{
    private string Server => server.Address!;

    internal static async Task<(int Exit, string Out, string Err)> SamsaAsync(params string[] args)
    {
        var psi = new ProcessStartInfo(Samsa.Testing.TestEnvironment.SamsaExecutable())
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        try { await p.WaitForExitAsync(timeout.Token); }
        catch (OperationCanceledException) { p.Kill(); throw new TimeoutException($"samsa {string.Join(" ", args)} did not finish"); }
        return (p.ExitCode, await stdout, await stderr);
    }

    private static async Task<string> OkAsync(params string[] args)
    {
        var (exit, output, error) = await SamsaAsync(args);
        Assert.True(exit == 0, $"samsa {string.Join(" ", args)} exited {exit}\nstdout: {output}\nstderr: {error}");
        return output;
    }

    /// <summary>The rows of a kafka-consumer-groups --describe table, by column name.</summary>
    private static List<Dictionary<string, string>> Table(string output)
    {
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
        int h = lines.FindIndex(l => l.StartsWith("GROUP ", StringComparison.Ordinal));
        Assert.True(h >= 0, "no table in: " + output);
        var header = lines[h].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return lines.Skip(h + 1).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Select(cells => header.Zip(cells).ToDictionary(x => x.First, x => x.Second)).ToList();
    }

    /// <summary>Commits offsets as a consumer outside the group's generation does (OffsetCommit with generation -1);
    /// Debian's librdkafka lacks a symbol Confluent.Kafka's Commit(offsets) needs.</summary>
    internal static async Task CommitAsync(LocalCluster cluster, int bootstrap, string group, string topic, (int Partition, long Offset)[] offsets)
    {
        for (int attempt = 0; ; attempt++)
        {
            var coordinator = await cluster.FindCoordinatorAsync(bootstrap, group);
            await using var c = await Samsa.Kafka.Broker.Client.KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(coordinator.NodeId));
            var r = (await c.SendAsync<Samsa.Kafka.Protocol.Messages.OffsetCommitResponse>(new Samsa.Kafka.Protocol.Messages.OffsetCommitRequest
            {
                GroupId = group, GenerationIdOrMemberEpoch = -1, MemberId = "",
                Topics = [new() { Name = topic, Partitions = offsets.Select(o => new Samsa.Kafka.Protocol.Messages.OffsetCommitRequest.OffsetCommitRequestPartition
                    { PartitionIndex = o.Partition, CommittedOffset = o.Offset, CommittedMetadata = "" }).ToList() }],
            }, 8))!;
            var errors = r.Topics.SelectMany(t => t.Partitions).Select(p => p.ErrorCode).ToList();
            if (errors.All(e => e == 0)) return;
            Assert.True(attempt < 50, $"OffsetCommit failed: {string.Join(",", errors)}");
            await Task.Delay(200);
        }
    }

    [Fact]
    public async Task TopicsAndConfigsOnOneBroker()
    {
        await using var cluster = await LocalCluster.StartAsync(Server, 1);
        string b = cluster.Bootstrap(1);

        Assert.Equal("Created topic orders.\n", await OkAsync("kafka-topics", "--bootstrap-server", b, "--create", "--topic", "orders",
            "--partitions", "3", "--replication-factor", "1", "--config", "retention.ms=3600000"));
        Assert.Contains("orders", (await OkAsync("kafka-topics", "--bootstrap-server", b, "--list")).Split('\n'));

        var describe = (await OkAsync("kafka-topics", "--bootstrap-server", b, "--describe", "--topic", "orders")).TrimEnd('\n').Split('\n');
        Assert.Equal(4, describe.Length);
        Assert.Matches(@"^Topic: orders\tTopicId: [A-Za-z0-9_-]{22}\tPartitionCount: 3\tReplicationFactor: 1\tConfigs: retention.ms=3600000$", describe[0]);
        for (int p = 0; p < 3; p++)
            Assert.Equal($"\tTopic: orders\tPartition: {p}\tLeader: 1\tReplicas: 1\tIsr: 1", describe[p + 1]);

        // Creating it again fails as upstream's tool does; --if-not-exists makes that a no-op.
        var again = await SamsaAsync("kafka-topics", "--bootstrap-server", b, "--create", "--topic", "orders", "--partitions", "1");
        Assert.Equal(1, again.Exit);
        Assert.StartsWith("Error while executing topic command : Topic 'orders' already exists", again.Out);
        await OkAsync("kafka-topics", "--bootstrap-server", b, "--create", "--topic", "orders", "--partitions", "1", "--if-not-exists");

        await OkAsync("kafka-topics", "--bootstrap-server", b, "--alter", "--topic", "orders", "--partitions", "5");
        Assert.Contains("PartitionCount: 5", await OkAsync("kafka-topics", "--bootstrap-server", b, "--describe", "--topic", "orders"));

        // Topic configs: IncrementalAlterConfigs set and delete, seen by --describe.
        Assert.Equal("Completed updating config for topic orders.\n", await OkAsync("kafka-configs", "--bootstrap-server", b,
            "--entity-type", "topics", "--entity-name", "orders", "--alter", "--add-config", "cleanup.policy=compact,max.message.bytes=2000"));
        await OkAsync("kafka-configs", "--bootstrap-server", b, "--entity-type", "topics", "--entity-name", "orders", "--alter", "--delete-config", "retention.ms");
        var configs = (await OkAsync("kafka-configs", "--bootstrap-server", b, "--entity-type", "topics", "--entity-name", "orders", "--describe")).Split('\n');
        Assert.Equal("Dynamic configs for topic orders are:", configs[0]);
        Assert.Contains(configs, l => l.StartsWith("  cleanup.policy=compact sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:cleanup.policy=compact", StringComparison.Ordinal));
        Assert.Contains(configs, l => l.StartsWith("  max.message.bytes=2000 ", StringComparison.Ordinal));
        Assert.DoesNotContain(configs, l => l.Contains("retention.ms"));
        var bad = await SamsaAsync("kafka-configs", "--bootstrap-server", b, "--entity-type", "topics", "--entity-name", "orders", "--alter", "--delete-config", "retention.ms");
        Assert.Equal(1, bad.Exit);
        Assert.Contains("Invalid config(s): retention.ms", bad.Err);

        // Broker configs and quotas.
        await OkAsync("kafka-configs", "--bootstrap-server", b, "--entity-type", "brokers", "--entity-name", "1", "--alter", "--add-config", "log.cleaner.threads=2");
        Assert.Contains("  log.cleaner.threads=2 sensitive=false synonyms={DYNAMIC_BROKER_CONFIG:log.cleaner.threads=2",
            await OkAsync("kafka-configs", "--bootstrap-server", b, "--entity-type", "brokers", "--entity-name", "1", "--describe"));
        Assert.Equal("Completed updating config for user alice.\n", await OkAsync("kafka-configs", "--bootstrap-server", b,
            "--entity-type", "users", "--entity-name", "alice", "--alter", "--add-config", "producer_byte_rate=1024"));
        Assert.Equal("Quota configs for user-principal 'alice' are producer_byte_rate=1024.0\n",
            await OkAsync("kafka-configs", "--bootstrap-server", b, "--entity-type", "users", "--entity-name", "alice", "--describe"));
        await OkAsync("kafka-configs", "--bootstrap-server", b, "--entity-type", "users", "--entity-name", "alice", "--alter", "--delete-config", "producer_byte_rate");
        Assert.Equal("", await OkAsync("kafka-configs", "--bootstrap-server", b, "--entity-type", "users", "--entity-name", "alice", "--describe"));

        await OkAsync("kafka-topics", "--bootstrap-server", b, "--delete", "--topic", "orders");
        for (int i = 0; i < 50 && (await OkAsync("kafka-topics", "--bootstrap-server", b, "--list")).Split('\n').Contains("orders"); i++) await Task.Delay(200);
        Assert.DoesNotContain("orders", (await OkAsync("kafka-topics", "--bootstrap-server", b, "--list")).Split('\n'));
        var missing = await SamsaAsync("kafka-topics", "--bootstrap-server", b, "--describe", "--topic", "orders");
        Assert.Equal((1, "Error while executing topic command : Topic 'orders' does not exist as expected\n"), (missing.Exit, missing.Out));
    }

    /// <summary>Three brokers, the commands bootstrapped at a broker that is not the controller: the
    /// topic is created (at the controller) with every replica in sync; a group's lag is what was
    /// produced minus what it committed, and reset-offsets moves the committed offsets.</summary>
    [Fact]
    public async Task TopicsAndGroupsOnThreeBrokersThroughANonController()
    {
        await using var cluster = await LocalCluster.StartAsync(Server, 3, brokerConfig: new Dictionary<string, string>
        {
            ["offsets.topic.num.partitions"] = "3", ["group.initial.rebalance.delay.ms"] = "0",
        });
        int controller = (await cluster.MetadataAsync(1)).ControllerId;
        int bootstrap = new[] { 1, 2, 3 }.First(id => id != controller);
        string b = cluster.Bootstrap(bootstrap);

        await OkAsync("kafka-topics", "--bootstrap-server", b, "--create", "--topic", "lagged", "--partitions", "2", "--replication-factor", "3");
        string[] rows = [];
        for (int i = 0; i < 100; i++)
        {
            rows = (await OkAsync("kafka-topics", "--bootstrap-server", b, "--describe", "--topic", "lagged")).TrimEnd('\n').Split('\n');
            if (rows.Skip(1).All(r => r.Split('\t').Last().Split(',').Length == 3)) break;
            await Task.Delay(200);
        }
        Assert.Matches(@"PartitionCount: 2\tReplicationFactor: 3\t", rows[0]);
        foreach (var row in rows.Skip(1))
        {
            var cells = row.Split('\t').Skip(1).Select(c => c.Split(": ")).ToDictionary(c => c[0], c => c[1]);
            var replicas = cells["Replicas"].Split(',').Select(int.Parse).ToList();
            Assert.Equal([1, 2, 3], replicas.Order());
            Assert.Equal([1, 2, 3], cells["Isr"].Split(',').Select(int.Parse).Order());
            Assert.Contains(int.Parse(cells["Leader"]), replicas);
        }

        // Produce 10 and 6 records; the group commits 4 and 6.
        using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = b, Acks = Acks.All }).Build())
            for (int i = 0; i < 16; i++)
                await producer.ProduceAsync(new TopicPartition("lagged", i < 10 ? 0 : 1), new Message<Null, string> { Value = $"r{i}" });
        await CommitAsync(cluster, bootstrap, "lag-group", "lagged", [(0, 4), (1, 6)]);

        Assert.Contains("lag-group", (await OkAsync("kafka-consumer-groups", "--bootstrap-server", b, "--list")).Split('\n'));
        async Task<Dictionary<int, (long Current, long End, long Lag)>> DescribeAsync()
        {
            var table = Table(await OkAsync("kafka-consumer-groups", "--bootstrap-server", b, "--describe", "--group", "lag-group"));
            Assert.All(table, r => Assert.Equal(("lag-group", "lagged", "-"), (r["GROUP"], r["TOPIC"], r["CONSUMER-ID"])));
            return table.ToDictionary(r => int.Parse(r["PARTITION"]), r => (long.Parse(r["CURRENT-OFFSET"]), long.Parse(r["LOG-END-OFFSET"]), long.Parse(r["LAG"])));
        }
        var before = await DescribeAsync();
        Assert.Equal((4L, 10L, 6L), before[0]);
        Assert.Equal((6L, 6L, 0L), before[1]);
        var state = await OkAsync("kafka-consumer-groups", "--bootstrap-server", b, "--describe", "--group", "lag-group", "--state");
        Assert.Matches(@"\nlag-group {17}127\.0\.0\.1:\d+  \(\d\) +Empty +0\n", state);

        // A dry run prints the plan and changes nothing.
        var plan = Table(await OkAsync("kafka-consumer-groups", "--bootstrap-server", b, "--reset-offsets", "--group", "lag-group",
            "--topic", "lagged", "--to-earliest", "--dry-run"));
        Assert.Equal(["0", "0"], plan.Select(r => r["NEW-OFFSET"]));
        Assert.Equal(before, await DescribeAsync());

        await OkAsync("kafka-consumer-groups", "--bootstrap-server", b, "--reset-offsets", "--group", "lag-group", "--topic", "lagged", "--to-earliest", "--execute");
        var earliest = await DescribeAsync();
        Assert.Equal((0L, 10L, 10L), earliest[0]);
        Assert.Equal((0L, 6L, 6L), earliest[1]);

        await OkAsync("kafka-consumer-groups", "--bootstrap-server", b, "--reset-offsets", "--group", "lag-group", "--topic", "lagged:0", "--shift-by", "7", "--execute");
        Assert.Equal((7L, 10L, 3L), (await DescribeAsync())[0]);
        // Beyond the log end is clamped to it, as upstream does.
        await OkAsync("kafka-consumer-groups", "--bootstrap-server", b, "--reset-offsets", "--group", "lag-group", "--all-topics", "--to-offset", "100", "--execute");
        var clamped = await DescribeAsync();
        Assert.Equal((10L, 10L, 0L), clamped[0]);
        Assert.Equal((6L, 6L, 0L), clamped[1]);

        // An active member: shown by --members, and reset-offsets refuses to touch its group.
        // (a confluent-kafka-python consumer: Debian's librdkafka lacks a symbol Confluent.Kafka's Consume needs)
        const string python = "/usr/bin/python3";
        if (File.Exists(python) && Directory.Exists("/usr/lib/python3/dist-packages/confluent_kafka"))
        {
            var psi = new ProcessStartInfo(python) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add("""
                import sys, time
                from confluent_kafka import Consumer
                c = Consumer({'bootstrap.servers': sys.argv[1], 'group.id': 'lag-group', 'client.id': 'member-one', 'enable.auto.commit': False, 'session.timeout.ms': 6000})
                c.subscribe(['lagged'])
                end = time.time() + 60
                while time.time() < end:
                    c.poll(0.1)
                c.close()
                """);
            psi.ArgumentList.Add(b);
            using var member = Process.Start(psi)!;
            try
            {
                List<Dictionary<string, string>> members = [];
                for (int i = 0; i < 150; i++)
                {
                    var (exit, output, _) = await SamsaAsync("kafka-consumer-groups", "--bootstrap-server", b, "--describe", "--group", "lag-group", "--members");
                    if (exit == 0 && output.Contains("member-one") && (members = Table(output)).Single()["#PARTITIONS"] == "2") break;
                    await Task.Delay(200);
                }
                Assert.Equal("member-one", members.Single()["CLIENT-ID"]);
                Assert.Equal("2", members.Single()["#PARTITIONS"]);
                var offsets = Table(await OkAsync("kafka-consumer-groups", "--bootstrap-server", b, "--describe", "--group", "lag-group"));
                Assert.Equal(2, offsets.Count);
                Assert.All(offsets, r => Assert.Equal(members.Single()["CONSUMER-ID"], r["CONSUMER-ID"]));
                var refused = await SamsaAsync("kafka-consumer-groups", "--bootstrap-server", b, "--reset-offsets", "--group", "lag-group", "--all-topics", "--to-earliest", "--execute");
                Assert.Contains("Error: Assignments can only be reset if the group 'lag-group' is inactive, but the current state is Stable.", refused.Out);
            }
            finally
            {
                member.Kill();
                await member.WaitForExitAsync();
            }
            // The killed member leaves when its session times out; until then the group is not empty.
            for (int i = 0; i < 100 && !(await OkAsync("kafka-consumer-groups", "--bootstrap-server", b, "--describe", "--group", "lag-group", "--state")).Contains(" Empty "); i++)
                await Task.Delay(300);
        }
        Assert.Equal((10L, 10L, 0L), (await DescribeAsync())[0]);

        Assert.Equal("Deletion of requested consumer groups ('lag-group') was successful.\n",
            await OkAsync("kafka-consumer-groups", "--bootstrap-server", b, "--delete", "--group", "lag-group"));
        Assert.DoesNotContain("lag-group", (await OkAsync("kafka-consumer-groups", "--bootstrap-server", b, "--list")).Split('\n'));
        Assert.Contains("Error: Consumer group 'lag-group' does not exist.",
            await OkAsync("kafka-consumer-groups", "--bootstrap-server", b, "--describe", "--group", "lag-group"));
    }

    [Fact]
    public async Task AclsAddListRemove()
    {
        await using var cluster = await LocalCluster.StartAsync(Server, 1, brokerConfig: new Dictionary<string, string>
        {
            ["authorizer.class.name"] = "kafka.security.authorizer.AclAuthorizer",
            ["allow.everyone.if.no.acl.found"] = "true",
        });
        string b = cluster.Bootstrap(1);
        const string Pattern = "ResourcePattern(resourceType=TOPIC, name=payments, patternType=LITERAL)";
        var added = await OkAsync("kafka-acls", "--bootstrap-server", b, "--add", "--allow-principal", "User:alice", "--operation", "Read",
            "--operation", "Describe", "--topic", "payments");
        Assert.StartsWith($"Adding ACLs for resource `{Pattern}`: \n \t(principal=User:alice, host=*, operation=READ, permissionType=ALLOW)\n" +
            "\t(principal=User:alice, host=*, operation=DESCRIBE, permissionType=ALLOW) \n\n", added);
        Assert.Contains($"Current ACLs for resource `{Pattern}`: ", added);

        var listed = await OkAsync("kafka-acls", "--bootstrap-server", b, "--list", "--topic", "payments");
        Assert.StartsWith($"Current ACLs for resource `{Pattern}`: \n ", listed);
        Assert.Contains("\t(principal=User:alice, host=*, operation=READ, permissionType=ALLOW)", listed);
        Assert.Contains("\t(principal=User:alice, host=*, operation=DESCRIBE, permissionType=ALLOW)", listed);
        Assert.Contains("ACLs for principal `User:alice`", await OkAsync("kafka-acls", "--bootstrap-server", b, "--list", "--principal", "User:alice"));

        await OkAsync("kafka-acls", "--bootstrap-server", b, "--remove", "--force", "--allow-principal", "User:alice", "--operation", "Read", "--topic", "payments");
        listed = await OkAsync("kafka-acls", "--bootstrap-server", b, "--list", "--topic", "payments");
        Assert.DoesNotContain("operation=READ", listed);
        Assert.Contains("operation=DESCRIBE", listed);
        await OkAsync("kafka-acls", "--bootstrap-server", b, "--remove", "--force", "--topic", "payments");
        Assert.Equal("", await OkAsync("kafka-acls", "--bootstrap-server", b, "--list", "--topic", "payments"));
    }
}
