using Samsa.Keeper.Server;

namespace Samsa.Host;

/// <summary>`samsa keeper --config zoo.cfg [--recover-truncate]`: a standalone Keeper configured by
/// upstream's zoo.cfg keys. <see cref="StartAsync"/> starts one in-process (for `samsa dev`).</summary>
public static class KeeperCommand
{
    public static async Task<int> RunAsync(string[] args)
    {
        string? configPath = null;
        bool recoverTruncate = false;
        // System properties as zkServer.sh passes them: JVMFLAGS and SERVER_JVMFLAGS, then -D
        // arguments and --jaas-config on the command line (later wins).
        var props = new List<(string Key, string Value)>();
        props.AddRange(SystemProperties(Environment.GetEnvironmentVariable("SERVER_JVMFLAGS")));
        props.AddRange(SystemProperties(Environment.GetEnvironmentVariable("JVMFLAGS")));
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--recover-truncate") recoverTruncate = true;
            else if (args[i] == "--follower-only") { } // accepted from older command lines: members lead when elected now
            else if (args[i].StartsWith("-D", StringComparison.Ordinal)) props.AddRange(SystemProperties(args[i]));
            else if (args[i] == "--jaas-config" && i + 1 < args.Length) props.Add(("java.security.auth.login.config", args[++i]));
            else if (args[i] == "--config" && i + 1 < args.Length) configPath = args[++i];
            else if (args[i].StartsWith("--config=", StringComparison.Ordinal)) configPath = args[i].Substring("--config=".Length);
            else if (configPath is null && !args[i].StartsWith('-')) configPath = args[i]; // zkServer.sh style: the cfg path alone
        }
        if (configPath is null)
        {
            Console.Error.WriteLine("usage: samsa keeper --config zoo.cfg [--recover-truncate] [--follower-only] [--jaas-config jaas.conf] [-Dzookeeper.KEY=VALUE ...]");
            return 2;
        }
        KeeperConfig config;
        try
        {
            config = KeeperConfig.Parse(await File.ReadAllTextAsync(configPath));
            config.Quorum.ConfigFilePath = configPath; // reconfig writes zoo.cfg.dynamic.<version> beside it
        }
        catch (Exception e) when (e is IOException or FormatException or UnauthorizedAccessException or KeeperConfigException)
        {
            Console.Error.WriteLine($"samsa keeper: cannot read {configPath}: {e.Message}");
            return 1;
        }
        try
        {
            foreach (var (k, v) in props) config.Apply(k, v);
        }
        catch (Exception e) when (e is FormatException or KeeperConfigException)
        {
            Console.Error.WriteLine($"samsa keeper: bad system property value: {e.Message}");
            return 1;
        }
        // A damaged txn log stops the start (as in ZooKeeper 3.8); this flag accepts the loss: the
        // log is cut at the damage (the original kept as damaged.log.N) and the Keeper starts.
        config.RecoverTruncate = recoverTruncate;
        if (string.IsNullOrEmpty(config.DataDir))
        {
            Console.Error.WriteLine("samsa keeper: dataDir is not set in " + configPath);
            return 1;
        }
        using var stop = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.Cancel(); };
        using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(
            System.Runtime.InteropServices.PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; stop.Cancel(); });
        // --follower-only is accepted for old command lines; a Keeper member now leads when elected
        if (config.Quorum.IsQuorumMode) return await RunQuorumFollowerAsync(config, stop.Token);
        KeeperHost keeper;
        try
        {
            keeper = await StartAsync(config);
        }
        catch (KeeperConfigException e)
        {
            Console.Error.WriteLine($"samsa keeper: {e.Message}");
            return 1;
        }
        catch (Samsa.Net.ListenerBindException e)
        {
            Console.Error.WriteLine($"samsa keeper: {e.Message}");
            return 1;
        }
        catch (System.Net.Sockets.SocketException e)
        {
            Console.Error.WriteLine($"samsa keeper: cannot listen on {config.ClientPortAddress}:{config.ClientPort}: {e.Message}");
            return 1;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException or Samsa.Keeper.Protocol.JuteException)
        {
            Console.Error.WriteLine($"samsa keeper: cannot open dataDir {config.DataDir}: {e.Message}");
            return 1;
        }
        await using var _ = keeper;
        try { await Task.Delay(Timeout.Infinite, stop.Token); } catch (OperationCanceledException) { }
        return 0;
    }

    /// <summary>server.N lines: a quorum member that elects, then leads or follows (ZAB) and serves clients.</summary>
    private static async Task<int> RunQuorumFollowerAsync(KeeperConfig config, CancellationToken stop)
    {
        Samsa.Keeper.Server.Quorum.QuorumMember member;
        AdminServer? admin = null;
        Samsa.Net.HttpGetListener? metrics = null;
        try
        {
            config.Quorum.Validate(config);
            if (config.SecureClientPort is not null)
                throw new KeeperConfigException("secureClientPort is not supported in quorum mode yet (issue #17); remove it or run standalone");
            // upstream logs every election notification at INFO; one line per vote change is enough here
            member = Samsa.Keeper.Server.Quorum.QuorumMember.Start(config,
                line => { if (!line.StartsWith("election: notification from", StringComparison.Ordinal)) Console.Error.WriteLine("keeper: " + line); },
                serveClients: true);
            if (config.AdminEnableServer)
            {
                admin = new AdminServer(member.Server!, new System.Net.IPEndPoint(System.Net.IPAddress.Parse(config.AdminServerAddress), config.AdminServerPort));
                admin.Start();
            }
            metrics = await KeeperMetrics.ServeAsync(member.Server!);
        }
        catch (Exception e) when (e is KeeperConfigException or Samsa.Net.ListenerBindException or System.Net.Sockets.SocketException
                                      or IOException or InvalidDataException or UnauthorizedAccessException or Samsa.Keeper.Protocol.JuteException)
        {
            Console.Error.WriteLine($"samsa keeper: {e.Message}");
            return 1;
        }
        var ep = member.ClientEndPoint!;
        Console.Out.WriteLine($"keeper quorum member {member.MyId} (follower only) listening on {ep.Address}:{ep.Port}");
        try { await Task.Delay(Timeout.Infinite, stop); } catch (OperationCanceledException) { }
        if (admin is not null) await admin.DisposeAsync();
        if (metrics is not null) await metrics.DisposeAsync();
        await member.DisposeAsync();
        return 0;
    }

    /// <summary>The -Dkey=value entries of a JVM flags string (other JVM flags are ignored).</summary>
    public static IEnumerable<(string Key, string Value)> SystemProperties(string? flags)
    {
        if (string.IsNullOrWhiteSpace(flags)) yield break;
        foreach (var f in flags.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))
        {
            if (!f.StartsWith("-D", StringComparison.Ordinal)) continue;
            int eq = f.IndexOf('=');
            if (eq < 0) yield return (f.Substring(2), "");
            else yield return (f.Substring(2, eq - 2), f.Substring(eq + 1));
        }
    }

    /// <summary>Starts a Keeper in this process and prints `keeper listening on HOST:PORT` once it
    /// accepts connections. ClientPort 0 picks a free port. Dispose the result to stop it.</summary>
    public static async Task<KeeperHost> StartAsync(KeeperConfig config, TextWriter? announce = null)
    {
        var host = await KeeperHost.StartAsync(config);
        if (host.SecureEndPoint is { } tls) (announce ?? Console.Out).WriteLine($"keeper secure (TLS) client port on {tls.Address}:{tls.Port}");
        (announce ?? Console.Out).WriteLine($"keeper listening on {host.LocalEndPoint.Address}:{host.LocalEndPoint.Port}");
        if (host.MetricsEndPoint is { } m) (announce ?? Console.Out).WriteLine($"keeper metrics on http://{Program.FormatEndPoint(m)}/metrics");
        return host;
    }

    /// <summary>The Keeper `samsa dev` runs: dataDir under the dev data directory, all 4lw allowed,
    /// TTL nodes on (upstream's zookeeper.extendedTypesEnabled=true; off by default in zoo.cfg as
    /// upstream), no admin HTTP server (dev prints only the Kafka and ZooKeeper ports).</summary>
    public static KeeperConfig DevConfig(string dataDir, string host, int port) => new()
    {
        DataDir = dataDir,
        ClientPort = port,
        ClientPortAddress = host,
        FourLetterWhitelist = new HashSet<string> { "*" },
        ExtendedTypesEnabled = true,
        AdminEnableServer = false,
        // issue #20: /metrics on by default in dev, on a free port (metricsProvider.httpPort overrides)
        PrometheusMetricsEnabled = true,
        MetricsHttpPort = 0,
        MetricsHttpHost = host,
    };
}
