using Samsa.Keeper.Server;
using Xunit;

namespace Samsa.Cluster.Tests;

/// <summary>A ZooKeeper-protocol server the cluster runs on.</summary>
public interface ICoordinationServer
{
    string Name { get; }
    /// <summary>"127.0.0.1:port"; null when the server could not be started.</summary>
    string? Address { get; }
    /// <summary>Why the server is unavailable; tests then report skipped with this text.</summary>
    string? SkipReason { get; }
}

/// <summary>The Keeper in-process on an ephemeral loopback port; tickTime 500 ms allows session
/// timeouts of 1-10 s, so failover tests are quick.</summary>
public sealed class KeeperServer : ICoordinationServer, IAsyncLifetime
{
    private KeeperHost? _host;
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "cluster-keeper-" + Guid.NewGuid().ToString("N"));

    public string Name => "keeper";
    public string? Address => _host is null ? null : $"127.0.0.1:{_host.LocalEndPoint.Port}";
    public string? SkipReason => null;

    public async ValueTask InitializeAsync()
    {
        _host = await KeeperHost.StartAsync(new KeeperConfig
        {
            DataDir = _dir, ClientPort = 0, ClientPortAddress = "127.0.0.1", TickTime = 500, MaxClientCnxns = 0, ForceSync = false, AdminEnableServer = false,
        });
    }

    public async ValueTask DisposeAsync()
    {
        if (_host is not null) await _host.DisposeAsync();
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }
}

/// <summary>Debian's Apache ZooKeeper 3.8 (Samsa.Testing.ApacheZooKeeper), standalone on a free
/// port in 22000-22099 with the same tickTime. When it cannot be installed or started, the tests of
/// the class report skipped with the reason.</summary>
public sealed class ApacheZooKeeperServer : ICoordinationServer, IAsyncLifetime
{
    private Samsa.Testing.ApacheZooKeeper? _server;

    public string Name => "zookeeper";
    public string? Address => _server?.Address;
    public string? SkipReason { get; private set; }

    public async ValueTask InitializeAsync()
    {
        (_server, SkipReason) = await Samsa.Testing.ApacheZooKeeper.StartAsync(22000, dirPrefix: "cluster-zk-");
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null) await _server.DisposeAsync();
    }
}
