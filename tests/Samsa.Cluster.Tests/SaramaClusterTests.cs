using System.Diagnostics;
using Xunit;

namespace Samsa.Cluster.Tests;

public sealed class KeeperSaramaClusterTests(KeeperServer server) : SaramaClusterTests(server), IClassFixture<KeeperServer>;

public sealed class ApacheZooKeeperSaramaClusterTests(ApacheZooKeeperServer server) : SaramaClusterTests(server), IClassFixture<ApacheZooKeeperServer>;

/// <summary>sarama 1.22.1 (Go; Debian golang-github-shopify-sarama-dev, built from source with
/// Debian's Go 1.19 in GOPATH mode) through a broker that neither leads a partition of the topic
/// nor coordinates the group (and a second admin client through the third broker):
/// ClusterAdmin.CreateTopic (controller), an idempotent producer
/// (InitProducerId, Produce to the leaders), a ConsumerGroup (FindCoordinator, join, sync,
/// heartbeat, OffsetFetch, commit, leave at the coordinator), then ClusterAdmin's
/// DescribeConsumerGroups and ListConsumerGroupOffsets, which sarama sends to the coordinator it
/// finds; then again once the coordinator stopped and the group moved with its partition's leadership. Before FindCoordinator named the leader of the group's __consumer_offsets partition,
/// every broker named itself, and this admin client got NOT_COORDINATOR ("Request was for a
/// consumer group that is not coordinated by this broker") from both calls. tests/run-all.sh
/// installs Go, gcc and sarama.</summary>
public abstract class SaramaClusterTests(ICoordinationServer server)
{
    private const string Go = "/usr/bin/go", Gcc = "/usr/bin/gcc", GoCode = "/usr/share/gocode";
    private const int Records = 60;

    // One build per test process, shared by both coordination-server variants.
    private static readonly Lazy<Task<string>> Binary = new(BuildAsync);

    private string Server
    {
        get
        {
            Assert.SkipWhen(server.SkipReason is not null, server.SkipReason ?? "");
            return server.Address!;
        }
    }

    [Fact]
    public async Task SaramaProducerGroupAndAdminThroughABrokerThatIsNeitherLeaderNorCoordinator()
    {
        Assert.SkipUnless(File.Exists(Go), "Go is not installed (Debian golang-go); tests/run-all.sh installs it");
        Assert.SkipUnless(Directory.Exists(Path.Combine(GoCode, "src", "github.com", "Shopify", "sarama")),
            "sarama is not installed (Debian golang-github-shopify-sarama-dev); tests/run-all.sh installs it");
        Assert.SkipUnless(File.Exists(Gcc), "gcc is not installed: sarama's zstd dependency is built with cgo; tests/run-all.sh installs it");
        string exe = await Binary.Value;

        await using var cluster = await LocalCluster.StartAsync(Server, 3, brokerConfig: new Dictionary<string, string>
        {
            ["offsets.topic.num.partitions"] = "6", ["offsets.topic.replication.factor"] = "3", ["group.initial.rebalance.delay.ms"] = "0",
        });
        const int bootstrap = 1;
        string group = await ClientClusterTests.KeyCoordinatedElsewhereAsync(cluster, "sarama-group-", 0, bootstrap, avoid: -1);
        int coordinator = await ClientClusterTests.CoordinatorOfAsync(cluster, group, 0);
        // The second admin client is bootstrapped at the third broker: neither the first bootstrap
        // broker nor the coordinator, so FindCoordinator there must name the same coordinator.
        int adminBootstrap = 2 + 3 - coordinator;
        // sarama's admin creates the topic with partitions led by brokers 2 and 3 only.
        var lines = await ClientClusterTests.RunAsync(exe,
            ["full", cluster.Bootstrap(bootstrap), "sarama", group, Records.ToString(), "0=2,1;1=3,1;2=2,3", cluster.Bootstrap(adminBootstrap)], null);

        Assert.Contains("created sarama 3", lines);
        var md = await cluster.LedMetadataAsync(1, "sarama", 3);
        Assert.Equal([2, 3, 2], md.Topics[0].Partitions.OrderBy(p => p.PartitionIndex).Select(p => p.LeaderId));

        // Every record acknowledged once by its partition's leader: offsets 0..19 of each partition.
        var produced = lines.Where(l => l.StartsWith("produced ", StringComparison.Ordinal)).Select(l => l.Split(' ')).ToList();
        Assert.Equal(Records, produced.Count);
        Assert.All(produced.GroupBy(p => p[1]), g =>
            Assert.Equal(Enumerable.Range(0, Records / 3).Select(o => o.ToString()), g.Select(p => p[2]).OrderBy(int.Parse)));

        // The one member was assigned all three partitions and consumed every record once.
        Assert.Contains("assigned 3", lines);
        var consumed = lines.Where(l => l.StartsWith("consumed ", StringComparison.Ordinal)).Select(l => l.Split(' ')).ToList();
        Assert.Equal(Enumerable.Range(0, Records), consumed.Select(c => int.Parse(c[3][1..])).Order());
        Assert.All(consumed, c => Assert.Equal(int.Parse(c[3][1..]) % 3, int.Parse(c[1])));

        // Both bootstrap brokers name the coordinator the other brokers name (not themselves), and
        // the admin client reaches it: the member is still in the group (it has not
        // sent LeaveGroup yet), the commits of the session's end are there, and after Close the
        // group is empty.
        Assert.Contains($"coordinator {coordinator}", lines);
        Assert.Contains($"admin-coordinator {coordinator}", lines);
        Assert.Contains("group joined Stable range 1", lines);
        Assert.Equal(["offset 0 20", "offset 1 20", "offset 2 20"], lines.Where(l => l.StartsWith("offset ", StringComparison.Ordinal)));
        Assert.Contains("group left Empty - 0", lines);
        Assert.DoesNotContain(lines, l => l.StartsWith("error ", StringComparison.Ordinal));

        // The coordinator stops: leadership of the group's __consumer_offsets partition moves to
        // another replica, which loads the group; sarama, through the same two bootstrap brokers,
        // finds the new coordinator and reads the committed offsets there.
        await cluster.StopBrokerAsync(coordinator);
        int moved = await LiveCoordinatorAsync(cluster, bootstrap, group, notOn: coordinator);
        var again = await ClientClusterTests.RunAsync(exe,
            ["admin", cluster.Bootstrap(bootstrap), "sarama", group, "3", cluster.Bootstrap(adminBootstrap)], null);
        Assert.Contains($"coordinator {moved}", again);
        Assert.Contains($"admin-coordinator {moved}", again);
        Assert.Contains("group again Empty - 0", again);
        Assert.Equal(["offset 0 20", "offset 1 20", "offset 2 20"], again.Where(l => l.StartsWith("offset ", StringComparison.Ordinal)));
        Assert.DoesNotContain(again, l => l.StartsWith("error ", StringComparison.Ordinal));
    }

    /// <summary>The coordinator the bootstrap broker names for <paramref name="group"/> once it is a
    /// live broker other than <paramref name="notOn"/>.</summary>
    private static async Task<int> LiveCoordinatorAsync(LocalCluster cluster, int bootstrap, string group, int notOn)
    {
        await using var c = await Samsa.Kafka.Broker.Client.KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(bootstrap));
        for (var sw = Stopwatch.StartNew(); ; await Task.Delay(100))
        {
            var r = (await c.SendAsync<Samsa.Kafka.Protocol.Messages.FindCoordinatorResponse>(
                new Samsa.Kafka.Protocol.Messages.FindCoordinatorRequest { Key = group }, 3))!;
            if (r.ErrorCode == 0 && r.NodeId != notOn) return r.NodeId;
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30), $"no coordinator other than {notOn} for {group}: error {r.ErrorCode}, node {r.NodeId}");
        }
    }

    /// <summary>Builds clients/sarama_cluster.go in GOPATH mode against Debian's Go sources, with a
    /// GOPATH and build cache of its own (a clean cache: nothing from an earlier build is used).</summary>
    private static async Task<string> BuildAsync()
    {
        string dir = Path.Combine(Path.GetTempPath(), "samsa-sarama-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => { try { Directory.Delete(dir, recursive: true); } catch (IOException) { } };
        string exe = Path.Combine(dir, "sarama_cluster");
        var psi = new ProcessStartInfo(Go) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "build", "-o", exe, ClientClusterTests.Script("sarama_cluster.go") }) psi.ArgumentList.Add(a);
        psi.Environment["GO111MODULE"] = "off";
        psi.Environment["GOPATH"] = Path.Combine(dir, "gopath") + ":" + GoCode;
        psi.Environment["GOCACHE"] = Path.Combine(dir, "gocache");
        psi.Environment["GOFLAGS"] = "";
        psi.Environment["CGO_ENABLED"] = "1";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        // A cold build compiles sarama and its cgo zstd binding: about a minute on a busy machine.
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        try { await p.WaitForExitAsync(timeout.Token); }
        catch (OperationCanceledException) { p.Kill(entireProcessTree: true); throw new TimeoutException($"go build did not finish: {await stderr}"); }
        Assert.True(p.ExitCode == 0 && File.Exists(exe), $"go build failed ({p.ExitCode}): {await stderr}\n{await stdout}");
        Directory.Delete(Path.Combine(dir, "gocache"), recursive: true);
        return exe;
    }
}
