namespace Samsa.Host;

/// <summary>`samsa keeper`: the standalone Keeper, configured by zoo.cfg.</summary>
internal static class Keeper
{
    public static Task<int> RunAsync(string[] args) => KeeperCommand.RunAsync(args);
}

/// <summary>The Keeper half of `samsa dev`: an in-process Keeper that prints
/// `keeper listening on HOST:PORT` once it accepts connections.</summary>
internal static class DevKeeper
{
    public static async Task<IAsyncDisposable?> StartAsync(string host, int port, string dataDir, CancellationToken stop)
    {
        stop.ThrowIfCancellationRequested();
        Directory.CreateDirectory(dataDir);
        return await KeeperCommand.StartAsync(KeeperCommand.DevConfig(dataDir, host, port));
    }

    /// <summary>`samsa dev --keepers N`: N Keepers forming a ZooKeeper ensemble on <paramref name="host"/>,
    /// client ports <paramref name="firstPort"/> .. +N-1 (quorum and election ports chosen free),
    /// data in DATA/keeper-ID. Returns once a leader and all followers serve (or after 30 s, with a
    /// line saying which do not; the brokers' ZooKeeper clients retry).</summary>
    public static async Task<IAsyncDisposable> StartEnsembleAsync(string host, int firstPort, int count, string data, Func<string, string> formatHost, CancellationToken stop)
    {
        // quorum and election ports: free ones, held until all are chosen so they differ, and never
        // one of the client ports the members are about to bind
        var held = new List<System.Net.Sockets.TcpListener>();
        int Free()
        {
            while (true)
            {
                var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Parse(host), 0);
                l.Start();
                held.Add(l);
                int p = ((System.Net.IPEndPoint)l.LocalEndpoint).Port;
                if (p < firstPort || p >= firstPort + count) return p;
            }
        }
        var servers = new List<string>();
        for (int id = 1; id <= count; id++)
            servers.Add($"server.{id}={formatHost(host)}:{Free()}:{Free()}");
        foreach (var l in held) l.Stop();
        var members = new List<Samsa.Keeper.Server.Quorum.QuorumMember>();
        for (int id = 1; id <= count; id++)
        {
            string dir = Path.Combine(data, $"keeper-{id}");
            Directory.CreateDirectory(dir);
            File.WriteAllText(Path.Combine(dir, "myid"), $"{id}\n");
            var lines = new List<string>
            {
                "tickTime=2000", "initLimit=10", "syncLimit=5", $"dataDir={dir}", $"clientPort={firstPort + id - 1}",
                $"clientPortAddress={host}", "4lw.commands.whitelist=*", "extendedTypesEnabled=true", "admin.enableServer=false",
            };
            lines.AddRange(servers);
            int sid = id;
            members.Add(Samsa.Keeper.Server.Quorum.QuorumMember.Start(Samsa.Keeper.Server.KeeperConfig.Parse(string.Join('\n', lines) + "\n"),
                line => { if (!line.StartsWith("election: notification from", StringComparison.Ordinal)) Console.Error.WriteLine($"keeper {sid}: {line}"); },
                serveClients: true));
        }
        var ensemble = new Ensemble(members);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!members.All(m => m.Leading || m.Synced) && DateTime.UtcNow < deadline) await Task.Delay(50, stop);
        for (int i = 0; i < members.Count; i++)
        {
            var m = members[i];
            string role = m.Leading ? "leader" : m.Synced ? "follower" : "not serving yet";
            Console.WriteLine($"keeper listening on {formatHost(host)}:{m.ClientEndPoint!.Port} (server {i + 1}, {role})");
        }
        return ensemble;
    }

    private sealed class Ensemble(List<Samsa.Keeper.Server.Quorum.QuorumMember> members) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            foreach (var m in members) await m.DisposeAsync();
        }
    }
}
