using System.Net;
using System.Net.Sockets;
using Samsa.Keeper.Server;
using Xunit;

namespace Samsa.Keeper.Client.Tests;

/// <summary>The server process goes away and comes back on the same port with the same data:
/// the client reconnects to the same session (the server recovered it from its log), its
/// ephemeral node is still there and its watches were registered again.</summary>
public sealed class RestartTests
{
    private static async Task RestartScenario(string address, Func<Task> restart)
    {
        var log = new EventLog();
        string root = "/restart-" + Guid.NewGuid().ToString("N")[..8];
        await using var zk = await KeeperClient.ConnectAsync(address, new KeeperClientOptions { SessionTimeout = TimeSpan.FromSeconds(30), DefaultWatcher = log.Watcher });
        await zk.CreateAsync(root, null, Acls.OpenAclUnsafe);
        await zk.CreateAsync(root + "/e", null, Acls.OpenAclUnsafe, CreateMode.Ephemeral);
        var data = new EventLog();
        await zk.GetDataAsync(root, data.Watcher);
        long session = zk.SessionId;

        await restart();
        await log.WaitStateAsync(KeeperState.Disconnected, 20000);
        await log.WaitStateAsync(KeeperState.SyncConnected, 30000);
        Assert.Equal(session, zk.SessionId);
        Assert.Equal(new[] { root + "/e" }, await zk.GetEphemeralsAsync(root));

        await using var other = await KeeperClient.ConnectAsync(address);
        await other.SetDataAsync(root, new byte[] { 1 });
        Assert.Equal(new WatchedEvent(EventType.NodeDataChanged, KeeperState.SyncConnected, root), await data.NextNodeEventAsync());
    }

    [Fact]
    public async Task Keeper_restart_keeps_the_session_and_its_watches()
    {
        string dir = Path.Combine(Path.GetTempPath(), "keeper-restart-" + Guid.NewGuid().ToString("N"));
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        KeeperConfig Config() => new()
        {
            DataDir = dir, ClientPort = port, ClientPortAddress = "127.0.0.1", TickTime = 500,
            MaxClientCnxns = 0, AdminEnableServer = false, MaxSessionTimeout = 60000,
        };
        var host = await KeeperHost.StartAsync(Config());
        try
        {
            await RestartScenario($"127.0.0.1:{port}", async () =>
            {
                await host.DisposeAsync();
                host = await KeeperHost.StartAsync(Config());
            });
        }
        finally
        {
            await host.DisposeAsync();
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }

    [Fact]
    public async Task ZooKeeper_restart_keeps_the_session_and_its_watches()
    {
        var zk = new ZooKeeperFixture();
        await zk.InitializeAsync();
        try
        {
            Assert.SkipWhen(zk.SkipReason is not null, zk.SkipReason ?? "");
            await RestartScenario(zk.Address!, zk.RestartAsync);
        }
        finally
        {
            await zk.DisposeAsync();
        }
    }
}
