using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Samsa.Keeper.Client;
using Xunit;

namespace Samsa.Cluster.Tests;

/// <summary>
/// `samsa dev` with upstream's own files and keys (issue #18): --broker-config server.properties and
/// --override key=value reach every dev broker, --keeper-config zoo.cfg and --keeper-override reach
/// the dev Keeper, later sources win, and a key Samsa does not honour stops the process with one line
/// naming it (exit status 1) instead of being ignored.
/// </summary>
public sealed class DevConfigFlagsTests
{
    [Fact]
    public async Task KeeperConfigMaxClientCnxns200Accepts100SessionsFromOneAddress()
    {
        string dir = NewDir();
        Directory.CreateDirectory(dir);
        // Upstream's sample zoo.cfg shape: its dataDir and clientPort are replaced by dev's own.
        string cfg = Path.Combine(dir, "zoo.cfg");
        await File.WriteAllTextAsync(cfg, "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/tmp/zookeeper\nclientPort=2181\nmaxClientCnxns=200\n");
        await using var dev = await DevProcess.StartAsync(dir, "--keeper-config", cfg);
        Assert.Contains("clientPort, dataDir from the given files replaced", dev.Stderr);

        var sessions = new List<KeeperClient>();
        try
        {
            for (int i = 0; i < 100; i++)
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
                sessions.Add(await KeeperClient.ConnectAsync(dev.KeeperAddress, cancellationToken: cts.Token));
            }
            // Every session is served (the dev broker holds one more connection from the same address).
            foreach (var s in sessions) Assert.NotNull(await s.ExistsAsync("/brokers/ids/1"));
        }
        finally
        {
            foreach (var s in sessions) await s.DisposeAsync();
        }
    }

    [Fact]
    public async Task WithoutTheFlagTheDevKeeperRefusesConnectionsBeyond60FromOneAddress()
    {
        string dir = NewDir();
        await using var dev = await DevProcess.StartAsync(dir);
        var (host, port) = Split(dev.KeeperAddress);
        var sockets = new List<Socket>();
        try
        {
            for (int i = 0; i < 100; i++)
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                await s.ConnectAsync(host, port);
                sockets.Add(s);
            }
            // A refused connection is closed by the Keeper right after accept: a read sees end of stream.
            int closed = 0;
            foreach (var s in sockets)
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
                try { if (await s.ReceiveAsync(new byte[16], SocketFlags.None, cts.Token) == 0) closed++; }
                catch (OperationCanceledException) { }
                catch (SocketException) { closed++; }
            }
            Assert.InRange(closed, 40, 41); // 100 - (60 - the broker's own session)
        }
        finally
        {
            foreach (var s in sockets) s.Dispose();
        }
    }

    [Fact]
    public async Task BrokerConfigFileAndOverridesReachTheBrokerLaterWins()
    {
        string dir = NewDir();
        Directory.CreateDirectory(dir);
        string props = Path.Combine(dir, "server.properties");
        // Upstream's sample server.properties keys, with its broker.id/log.dirs/zookeeper.connect replaced by dev.
        await File.WriteAllTextAsync(props,
            "broker.id=0\nnum.network.threads=3\nnum.io.threads=8\nlog.dirs=/tmp/kafka-logs\nnum.partitions=3\n" +
            "offsets.topic.replication.factor=1\nlog.retention.hours=168\nzookeeper.connect=localhost:2181\n" +
            "group.initial.rebalance.delay.ms=0\nlog.retention.bytes=123456789\n");
        await using var dev = await DevProcess.StartAsync(dir, "--broker-config", props, "--override", "num.partitions=4");
        Assert.Contains("broker.id, log.dirs, zookeeper.connect from the given files replaced", dev.Stderr);

        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = dev.KafkaAddress }).Build();
        // No partition count: the broker's num.partitions applies (CreateTopics v4+).
        await admin.CreateTopicsAsync([new TopicSpecification { Name = "fromfile", NumPartitions = -1, ReplicationFactor = -1 }]);
        var meta = admin.GetMetadata("fromfile", TimeSpan.FromSeconds(10));
        Assert.Equal(4, meta.Topics.Single().Partitions.Count);
        var configs = await admin.DescribeConfigsAsync([new ConfigResource { Type = ResourceType.Topic, Name = "fromfile" }]);
        Assert.Equal("123456789", configs[0].Entries["retention.bytes"].Value);
    }

    [Theory]
    [InlineData("--override", "no.such.broker.key=1", "broker key 'no.such.broker.key' is not one Samsa's broker honours")]
    [InlineData("--keeper-override", "noSuchKeeperKey=1", "Keeper key 'noSuchKeeperKey' is not one Samsa's Keeper honours")]
    [InlineData("--keeper-override", "server.1=127.0.0.1:2888:3888", "samsa dev runs one standalone Keeper")]
    [InlineData("--override", "broker.id=7", "samsa dev sets broker.id itself")]
    [InlineData("--override", "num.partitions=many", "num.partitions")]
    [InlineData("--override", "queued.max.requests=16", "queued.max.requests=16 is not supported")]
    [InlineData("--keeper-override", "maxClientCnxns=lots", "maxClientCnxns")]
    [InlineData("--override", "novalue", "--override expects key=value")]
    public async Task KeysSamsaDoesNotHonourStopTheStart(string flag, string value, string expected)
    {
        string dir = NewDir();
        var psi = new ProcessStartInfo(Samsa.Testing.TestEnvironment.SamsaExecutable()) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "dev", "--data", dir, "--kafka-port", "0", "--zk-port", "0", flag, value }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = await p.StandardOutput.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await p.WaitForExitAsync(cts.Token);
        Assert.NotEqual(0, p.ExitCode);
        Assert.Contains(expected, await stderr);
        Assert.DoesNotContain("listening", stdout);
        Assert.DoesNotContain("   at ", await stderr); // one line, no stack trace
    }

    [Fact]
    public async Task VersionPrintsTheVersionAndCommit()
    {
        var psi = new ProcessStartInfo(Samsa.Testing.TestEnvironment.SamsaExecutable(), "version") { RedirectStandardOutput = true, UseShellExecute = false };
        using var p = Process.Start(psi)!;
        string line = (await p.StandardOutput.ReadToEndAsync()).Trim();
        await p.WaitForExitAsync();
        Assert.Equal(0, p.ExitCode);
        Assert.Matches(@"^samsa \d+\.\d+\.\d+\S* \(commit [0-9a-f]{7,40}", line);
    }

    private static string NewDir() => Path.Combine(Path.GetTempPath(), "samsa-devflags-" + Guid.NewGuid().ToString("N")[..8]);

    private static (string Host, int Port) Split(string address)
    {
        int colon = address.LastIndexOf(':');
        return (address[..colon], int.Parse(address[(colon + 1)..]));
    }
}
