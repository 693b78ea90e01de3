using System.Globalization;
using Confluent.Kafka;
using Samsa.Kafka.Broker.Security.Sasl;
using Xunit;

namespace Samsa.Cluster.Tests;

/// <summary>
/// kafka-consumer-groups' offset scenarios beyond the basics (--to-datetime, --by-duration, --export,
/// --from-file, --delete-offsets, --timeout), kafka-configs' SCRAM credentials and client-metrics
/// resources, and kafka-topics --topic-id: one broker, and three brokers bootstrapped at one that
/// is neither the controller nor a partition leader.
/// </summary>
public sealed partial class AdminCommandsClusterTests
{
    [Fact]
    public async Task OffsetScenariosScramAndTopicIdOnOneBroker()
    {
        await using var cluster = await LocalCluster.StartAsync(Server, 1);
        await OffsetScenariosScramAndTopicIdAsync(cluster, 1, replication: 1);
    }

    [Fact]
    public async Task OffsetScenariosScramAndTopicIdOnThreeBrokersThroughANonController()
    {
        await using var cluster = await LocalCluster.StartAsync(Server, 3, brokerConfig: new Dictionary<string, string>
        {
            ["offsets.topic.num.partitions"] = "1", ["group.initial.rebalance.delay.ms"] = "0",
        });
        int controller = (await cluster.MetadataAsync(1)).ControllerId;
        // the topic's leaders are chosen away from the bootstrap broker by --replica-assignment
        int bootstrap = new[] { 1, 2, 3 }.First(id => id != controller);
        int[] others = new[] { 1, 2, 3 }.Where(id => id != bootstrap).ToArray();
        await OffsetScenariosScramAndTopicIdAsync(cluster, bootstrap, replication: 3,
            assignment: $"{others[0]}:{others[1]}:{bootstrap},{others[1]}:{others[0]}:{bootstrap}");
    }

    private static string Row(string a, string b, string c) => $"{a,-30} {b,-15} {c,-15}";

    private async Task OffsetScenariosScramAndTopicIdAsync(LocalCluster cluster, int bootstrap, int replication, string? assignment = null)
    {
        string b = cluster.Bootstrap(bootstrap);
        string[] create = assignment is null
            ? ["kafka-topics", "--bootstrap-server", b, "--create", "--topic", "times", "--partitions", "2", "--replication-factor", replication.ToString(CultureInfo.InvariantCulture)]
            : ["kafka-topics", "--bootstrap-server", b, "--create", "--topic", "times", "--replica-assignment", assignment];
        Assert.Equal("Created topic times.\n", await OkAsync(create));

        // Partition 0: five records a minute apart, ten to six minutes ago; partition 1 stays empty.
        var start = DateTimeOffset.UtcNow.AddMinutes(-10);
        using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = b, Acks = Acks.All }).Build())
            for (int i = 0; i < 5; i++)
                await producer.ProduceAsync(new TopicPartition("times", 0), new Message<Null, string>
                    { Value = $"r{i}", Timestamp = new Timestamp(start.AddMinutes(i).ToUnixTimeMilliseconds(), TimestampType.CreateTime) });
        await CommitAsync(cluster, bootstrap, "tg", "times", [(0, 5), (1, 0)]);

        // --to-datetime: the first record at or after the time; an empty partition falls back to its end.
        string at = start.AddMinutes(2).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff", CultureInfo.InvariantCulture);
        var byTime = await OkAsync("kafka-consumer-groups", "--bootstrap-server", b, "--reset-offsets", "--group", "tg", "--topic", "times",
            "--to-datetime", at, "--dry-run", "--timeout", "20000");
        Assert.Contains("\nWarn: Partition 1 from topic times is empty. Falling back to latest known offset.\n", byTime);
        Assert.Equal(["2", "0"], Table(byTime).Select(r => r["NEW-OFFSET"]));
        // the same instant with a zone offset
        string zoned = start.AddMinutes(2).ToOffset(TimeSpan.FromHours(2)).ToString("yyyy-MM-dd'T'HH:mm:ss.fffzzz", CultureInfo.InvariantCulture);
        Assert.Equal(["2", "0"], Table(await OkAsync("kafka-consumer-groups", "--bootstrap-server", b, "--reset-offsets", "--group", "tg",
            "--topic", "times:0,1", "--to-datetime", zoned, "--dry-run")).Select(r => r["NEW-OFFSET"]));
        // --by-duration: now minus 6.5 minutes lies between the 4th and 5th records
        Assert.Equal("4", Table(await OkAsync("kafka-consumer-groups", "--bootstrap-server", b, "--reset-offsets", "--group", "tg",
            "--topic", "times:0", "--by-duration", "PT6M30S", "--dry-run"))[0]["NEW-OFFSET"]);

        // --export writes the plan as CSV (one group: topic,partition,offset); --from-file executes it.
        var exported = await SamsaAsync("kafka-consumer-groups", "--bootstrap-server", b, "--reset-offsets", "--group", "tg", "--all-topics",
            "--to-offset", "3", "--export");
        Assert.Equal(0, exported.Exit);
        Assert.Equal("times,0,3\ntimes,1,0\n\n", exported.Out);   // partition 1 clamped to its end
        Assert.StartsWith("WARN: No action will be performed as the --execute option is missing.", exported.Err);
        string plan = Path.Combine(Path.GetTempPath(), "reset-plan-" + Guid.NewGuid().ToString("N") + ".csv");
        await File.WriteAllTextAsync(plan, exported.Out);
        try
        {
            var applied = await OkAsync("kafka-consumer-groups", "--bootstrap-server", b, "--reset-offsets", "--group", "tg", "--from-file", plan, "--execute");
            Assert.Equal(["3", "0"], Table(applied).Select(r => r["NEW-OFFSET"]));
            var described = Table(await OkAsync("kafka-consumer-groups", "--bootstrap-server", b, "--describe", "--group", "tg"));
            Assert.Equal(("3", "5", "2"), (described[0]["CURRENT-OFFSET"], described[0]["LOG-END-OFFSET"], described[0]["LAG"]));
            // a three-column plan belongs to the one --group given; a four-column plan names its groups
            Assert.Equal(["3", "0"], Table(await OkAsync("kafka-consumer-groups", "--bootstrap-server", b, "--reset-offsets", "--group", "other",
                "--from-file", plan, "--dry-run")).Select(r => r["NEW-OFFSET"]));
            await File.WriteAllTextAsync(plan, "tg,times,0,4\n");
            var wrongGroup = await OkAsync("kafka-consumer-groups", "--bootstrap-server", b, "--reset-offsets", "--group", "other", "--from-file", plan, "--dry-run");
            Assert.StartsWith("\nError: No reset plan for group other found\n", wrongGroup);
            Assert.Equal(["4"], Table(await OkAsync("kafka-consumer-groups", "--bootstrap-server", b, "--reset-offsets", "--group", "tg", "--group", "other",
                "--from-file", plan, "--dry-run")).Where(r => r["GROUP"] == "tg").Select(r => r["NEW-OFFSET"]));
        }
        finally { File.Delete(plan); }

        // --delete-offsets: a partition's committed offset goes, the other stays.
        Assert.Equal($"Request succeed for deleting offsets with topic times:0 group tg\n\n{Row("TOPIC", "PARTITION", "STATUS")}\n{Row("times", "0", "Successful")}\n",
            await OkAsync("kafka-consumer-groups", "--bootstrap-server", b, "--delete-offsets", "--group", "tg", "--topic", "times:0"));
        var afterDelete = Table(await OkAsync("kafka-consumer-groups", "--bootstrap-server", b, "--describe", "--group", "tg"));
        Assert.Equal(["1"], afterDelete.Select(r => r["PARTITION"]));
        var missing = await SamsaAsync("kafka-consumer-groups", "--bootstrap-server", b, "--delete-offsets", "--group", "no-such-group", "--topic", "times");
        Assert.Equal(1, missing.Exit);
        Assert.StartsWith("\nError: 'no-such-group' does not exist.\n", missing.Out);
        var noTopic = await SamsaAsync("kafka-consumer-groups", "--bootstrap-server", b, "--delete-offsets", "--group", "tg");
        Assert.NotEqual(0, noTopic.Exit);
        Assert.Contains("Option --delete-offsets takes the following options: --group, --topic", noTopic.Err);

        // SCRAM credentials: added with and without iterations, described as upstream, usable, deleted.
        Assert.Equal("Completed updating config for user alice.\n", await OkAsync("kafka-configs", "--bootstrap-server", b, "--alter",
            "--add-config", "SCRAM-SHA-256=[iterations=8192,password=alice-secret],SCRAM-SHA-512=[password=alice-secret]",
            "--entity-type", "users", "--entity-name", "alice"));
        string described2 = await OkAsync("kafka-configs", "--bootstrap-server", b, "--describe", "--entity-type", "users", "--entity-name", "alice");
        Assert.Equal("SCRAM credential configs for user-principal 'alice' are SCRAM-SHA-256=iterations=8192, SCRAM-SHA-512=iterations=4096\n", described2);
        foreach (var broker in Enumerable.Range(1, replication))
            await LocalCluster.WaitUntilAsync(() => Task.FromResult(ScramCredentialClusterTests.Authenticates(cluster[broker], ScramMechanism.Sha256, "alice", "alice-secret")),
                TimeSpan.FromSeconds(15), $"broker {broker} knows alice");
        var tooFew = await SamsaAsync("kafka-configs", "--bootstrap-server", b, "--alter", "--add-config", "SCRAM-SHA-256=[iterations=100,password=x]",
            "--entity-type", "users", "--entity-name", "bob");
        Assert.Equal((1, "", "Iterations 100 is less than the minimum 4096 required for SCRAM-SHA-256\n"), tooFew);
        var mixed = await SamsaAsync("kafka-configs", "--bootstrap-server", b, "--alter", "--add-config", "SCRAM-SHA-256=[password=x],producer_byte_rate=10",
            "--entity-type", "users", "--entity-name", "bob");
        Assert.Equal((1, "", "Cannot alter both quota and SCRAM credential configs simultaneously for 'users' using --bootstrap-server.\n"), mixed);
        Assert.Equal("Completed updating config for user alice.\n", await OkAsync("kafka-configs", "--bootstrap-server", b, "--alter",
            "--delete-config", "SCRAM-SHA-512", "--entity-type", "users", "--entity-name", "alice"));
        Assert.Equal("SCRAM credential configs for user-principal 'alice' are SCRAM-SHA-256=iterations=8192\n",
            await OkAsync("kafka-configs", "--bootstrap-server", b, "--describe", "--entity-type", "users", "--entity-name", "alice"));
        Assert.Equal("", await OkAsync("kafka-configs", "--bootstrap-server", b, "--describe", "--entity-type", "users", "--entity-name", "nobody"));

        // client-metrics resources (KIP-714 subscriptions)
        Assert.Equal("Completed updating config for client-metric sub1.\n", await OkAsync("kafka-configs", "--bootstrap-server", b, "--alter",
            "--entity-type", "client-metrics", "--entity-name", "sub1", "--add-config", "interval.ms=5000,metrics=[org.apache.kafka.producer.]"));
        var metrics = await OkAsync("kafka-configs", "--bootstrap-server", b, "--describe", "--entity-type", "client-metrics", "--entity-name", "sub1");
        Assert.StartsWith("Dynamic configs for client-metric sub1 are:\n", metrics);
        Assert.Contains("\n  interval.ms=5000 sensitive=false synonyms={", metrics);

        // --topic-id describes the topic with that id, whatever --topic says
        var byName = await OkAsync("kafka-topics", "--bootstrap-server", b, "--describe", "--topic", "times");
        string id = System.Text.RegularExpressions.Regex.Match(byName, @"TopicId: ([A-Za-z0-9_-]{22})").Groups[1].Value;
        Assert.Equal(byName, await OkAsync("kafka-topics", "--bootstrap-server", b, "--describe", "--topic-id", id));
        Assert.Equal(byName, await OkAsync("kafka-topics", "--bootstrap-server", b, "--describe", "--topic-id", id, "--topic", "other"));
        var unknown = await SamsaAsync("kafka-topics", "--bootstrap-server", b, "--describe", "--topic-id", "AAAAAAAAAAAAAAAAAAAAAQ");
        Assert.Equal(1, unknown.Exit);
        Assert.Contains("TopicId 'AAAAAAAAAAAAAAAAAAAAAQ' does not exist as expected", unknown.Out + unknown.Err);
    }
}
