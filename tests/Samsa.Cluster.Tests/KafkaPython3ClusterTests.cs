using Xunit;

namespace Samsa.Cluster.Tests;

public sealed class KeeperKafkaPython3ClusterTests(KeeperServer server) : KafkaPython3ClusterTests(server), IClassFixture<KeeperServer>;

public sealed class ApacheZooKeeperKafkaPython3ClusterTests(ApacheZooKeeperServer server) : KafkaPython3ClusterTests(server), IClassFixture<ApacheZooKeeperServer>;

/// <summary>kafka-python 3.x (not packaged by Debian; a source checkout named by KAFKA_PYTHON3_PATH,
/// the directory holding its kafka/ package) through a broker that neither leads a partition nor
/// coordinates anything: admin create_topics, an idempotent producer, a group consumer with commits,
/// admin describe_groups and list_group_offsets at the coordinator, consume-transform-produce with a
/// transactional producer whose transaction coordinator is a third broker, and the transaction admin
/// calls. kafka-python 3.0 looped on NOT_COORDINATOR ("obsolete coordinator information") and never
/// joined while FindCoordinator answered a broker that did not own the group's partition.</summary>
public abstract class KafkaPython3ClusterTests(ICoordinationServer server)
{
    private const int Records = 40;

    private string Server
    {
        get
        {
            Assert.SkipWhen(server.SkipReason is not null, server.SkipReason ?? "");
            return server.Address!;
        }
    }

    [Fact]
    public async Task KafkaPython3GroupAdminAndTransactionsThroughABrokerThatIsNeitherLeaderNorCoordinator()
    {
        const string python = "/usr/bin/python3";
        string? path = Environment.GetEnvironmentVariable("KAFKA_PYTHON3_PATH");
        Assert.SkipWhen(string.IsNullOrEmpty(path),
            "KAFKA_PYTHON3_PATH is not set: it names a kafka-python 3.x source checkout (the directory holding kafka/), which no registry here provides");
        Assert.SkipUnless(File.Exists(python) && File.Exists(Path.Combine(path!, "kafka", "version.py")),
            $"no kafka-python checkout at KAFKA_PYTHON3_PATH={path} (kafka/version.py missing) or no {python}");
        string version = File.ReadAllText(Path.Combine(path!, "kafka", "version.py"));
        Assert.SkipUnless(version.Contains("'3.", StringComparison.Ordinal) || version.Contains("\"3.", StringComparison.Ordinal),
            $"KAFKA_PYTHON3_PATH={path} is not kafka-python 3.x: {version.Trim()}");

        await using var cluster = await LocalCluster.StartAsync(Server, 3, brokerConfig: new Dictionary<string, string>
        {
            ["offsets.topic.num.partitions"] = "6", ["transaction.state.log.num.partitions"] = "6", ["group.initial.rebalance.delay.ms"] = "0",
        });
        const int bootstrap = 1;
        // Both groups (the script's GROUP and GROUP-ctp) coordinated elsewhere than the bootstrap broker,
        // and the transaction coordinator neither the bootstrap broker nor the ctp group's coordinator.
        string group = "";
        int ctpCoordinator = -1;
        for (int i = 0; group.Length == 0; i++)
        {
            string candidate = await ClientClusterTests.KeyCoordinatedElsewhereAsync(cluster, $"kp3-group-{i}-", 0, bootstrap, avoid: -1);
            int ctp = await ClientClusterTests.CoordinatorOfAsync(cluster, candidate + "-ctp", 0);
            if (ctp != bootstrap) (group, ctpCoordinator) = (candidate, ctp);
        }
        string txnId = await ClientClusterTests.KeyCoordinatedElsewhereAsync(cluster, "kp3-txn-", 1, bootstrap, avoid: ctpCoordinator);

        var lines = await ClientClusterTests.RunAsync(python,
            [ClientClusterTests.Script("kafka_python3_cluster.py"), cluster.Bootstrap(bootstrap), "kp3-in", "kp3-out", group, txnId, Records.ToString(), "0=2,1;1=3,1"],
            new Dictionary<string, string> { ["PYTHONPATH"] = path! });

        Assert.DoesNotContain(lines, l => l.StartsWith("error ", StringComparison.Ordinal));
        Assert.Contains("created kp3-in", lines);
        var produced = lines.Where(l => l.StartsWith("produced ", StringComparison.Ordinal)).Select(l => l.Split(' ')).ToList();
        Assert.Equal(Records, produced.Count);
        Assert.All(produced.GroupBy(p => p[1]), g =>
            Assert.Equal(Enumerable.Range(0, Records / 2).Select(o => o.ToString()), g.Select(p => p[2]).OrderBy(int.Parse)));

        // The group consumer read every record once, its commits are visible to the admin client at
        // the coordinator, and the member is in the Stable group when described.
        var consumed = lines.Where(l => l.StartsWith("consumed ", StringComparison.Ordinal)).Select(l => l.Split(' ')[3]).ToList();
        Assert.Equal(Enumerable.Range(0, Records).Select(i => $"v{i}").Order(), consumed.Order());
        Assert.Equal(["committed 0 20", "committed 1 20"], lines.Where(l => l.StartsWith("committed ", StringComparison.Ordinal)));
        Assert.Contains("group Stable 1", lines);
        Assert.Equal(["offset kp3-in 0 20", "offset kp3-in 1 20"], lines.Where(l => l.StartsWith("offset ", StringComparison.Ordinal)));

        // Consume-transform-produce: every output committed exactly once, the ctp group's offsets
        // advanced with the transactions, the transaction completed at its coordinator, which alone lists it.
        var output = lines.Where(l => l.StartsWith("output ", StringComparison.Ordinal)).Select(l => l.Split(' ')[2]).ToList();
        Assert.Equal(Enumerable.Range(0, Records).Select(i => $"out-v{i}").Order(), output.Order());
        Assert.Equal(["ctp-offset kp3-in 0 20", "ctp-offset kp3-in 1 20"], lines.Where(l => l.StartsWith("ctp-offset ", StringComparison.Ordinal)));
        Assert.Contains($"txn-state {txnId} CompleteCommit 0", lines);
        Assert.Contains("txn-listed-by 1", lines);
    }
}
