using Samsa.Keeper.Server;
using Xunit;

namespace Samsa.Keeper.Client.Tests;

/// <summary>A ZooKeeper-protocol server the client tests run against.</summary>
public interface IServerFixture
{
    string Name { get; }
    /// <summary>"127.0.0.1:port"; null when the server could not be started.</summary>
    string? Address { get; }
    /// <summary>Why the server is unavailable; tests then report skipped with this text.</summary>
    string? SkipReason { get; }
}

/// <summary>The Keeper, in-process on an ephemeral loopback port. tickTime 500 ms makes the
/// smallest session timeout 1 s, so expiry tests are quick; extended types are on for TTL nodes,
/// and the container check runs every second.</summary>
public sealed class KeeperFixture : IServerFixture, IAsyncLifetime
{
    private KeeperHost? _host;
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "keeper-client-" + Guid.NewGuid().ToString("N"));

    public string Name => "keeper";
    public string? Address => _host is null ? null : $"127.0.0.1:{_host.LocalEndPoint.Port}";
    public string? SkipReason => null;

    public async ValueTask InitializeAsync()
    {
        _host = await KeeperHost.StartAsync(new KeeperConfig
        {
            DataDir = _dir, ClientPort = 0, ClientPortAddress = "127.0.0.1", TickTime = 500,
            ExtendedTypesEnabled = true, ContainerCheckIntervalMs = 1000, MaxClientCnxns = 0, ForceSync = false, AdminEnableServer = false,
            // tickTime 500 alone would cap sessions at 10 s; a loaded machine needs more for the ordinary tests
            MaxSessionTimeout = 60000,
        });
    }

    public async ValueTask DisposeAsync()
    {
        if (_host is not null) await _host.DisposeAsync();
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }
}

/// <summary>Debian's Apache ZooKeeper 3.8 (Samsa.Testing.ApacheZooKeeper), standalone on a free
/// port in 21900-21999, configured like the Keeper fixture. If it cannot be installed or started,
/// every test of the class reports skipped with the reason.</summary>
public sealed class ZooKeeperFixture : IServerFixture, IAsyncLifetime
{
    private Samsa.Testing.ApacheZooKeeper? _server;

    public string Name => "zookeeper";
    public string? Address => _server?.Address;
    public string? SkipReason { get; private set; }

    public async ValueTask InitializeAsync()
    {
        (_server, SkipReason) = await Samsa.Testing.ApacheZooKeeper.StartAsync(21900,
            zooCfg: ["maxSessionTimeout=60000"],
            jvmArgs: ["-Dzookeeper.extendedTypesEnabled=true", "-Dznode.container.checkIntervalMs=1000"],
            dirPrefix: "zk-client-");
    }

    /// <summary>Kills the server (no clean shutdown) and starts it again on the same port and data.</summary>
    public Task RestartAsync() => _server?.RestartAsync() ?? throw new InvalidOperationException(SkipReason);

    public async ValueTask DisposeAsync()
    {
        if (_server is not null) await _server.DisposeAsync();
    }
}
