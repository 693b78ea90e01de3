using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Samsa.Keeper.Server.Quorum;

namespace Samsa.Keeper.Server.Tests;

/// <summary>Ports and zoo.cfg server lines for a loopback ensemble of N members.</summary>
public sealed class QuorumLayout
{
    public readonly int[] QuorumPorts, ElectionPorts, ClientPorts;

    public QuorumLayout(int members)
    {
        var taken = new List<TcpListener>();
        int Next()
        {
            // Hold each port until all are chosen, so that the members get different ones. The
            // ports come from below the kernel's ephemeral range: a port the kernel handed out
            // for a bind to 0 and got back can be given again as the source port of any outgoing
            // connection (other tests in this process, their clients, other processes) before a
            // member binds it, and an Apache peer that starts in seconds under load then finds
            // its election or client port taken and exits.
            for (int attempt = 0; ; attempt++)
            {
                var l = new TcpListener(IPAddress.Loopback, attempt < 200 ? Random.Shared.Next(EphemeralFloor, EphemeralStart) : 0);
                try { l.Start(); }
                catch (SocketException) { continue; }
                taken.Add(l);
                return ((IPEndPoint)l.LocalEndpoint).Port;
            }
        }
        QuorumPorts = new int[members]; ElectionPorts = new int[members]; ClientPorts = new int[members];
        for (int i = 0; i < members; i++) { QuorumPorts[i] = Next(); ElectionPorts[i] = Next(); ClientPorts[i] = Next(); }
        foreach (var l in taken) l.Stop();
    }

    public int Members => QuorumPorts.Length;

    /// <summary>The range the ports come from: below Linux's default ephemeral range (32768–60999,
    /// /proc/sys/net/ipv4/ip_local_port_range), above the well-known and registered ports most
    /// services use.</summary>
    private const int EphemeralFloor = 20000, EphemeralStart = 32768;

    /// <summary>Server ids whose lines carry the role observer (and whose zoo.cfg says peerType=observer).</summary>
    public readonly HashSet<long> Observers = new();

    /// <summary>server.1 .. server.N lines (sid = index + 1).</summary>
    public IEnumerable<string> ServerLines() =>
        Enumerable.Range(0, Members).Select(i => $"server.{i + 1}=127.0.0.1:{QuorumPorts[i]}:{ElectionPorts[i]}" + (Observers.Contains(i + 1) ? ":observer" : ""));

    public QuorumConfig Config()
    {
        var c = new QuorumConfig();
        foreach (var line in ServerLines())
        {
            int eq = line.IndexOf('=');
            c.Apply(line[..eq], line[(eq + 1)..]);
        }
        c.InitLimit = 10; c.SyncLimit = 5;
        return c;
    }
}

/// <summary>Debian's Apache ZooKeeper 3.8 as one member of a loopback ensemble, logging at INFO on
/// the console (log4j) so tests can read what it decided.</summary>
public sealed class ApacheQuorumPeer : IAsyncDisposable
{
    private readonly Process _p;
    private readonly StringBuilder _log = new();
    private readonly string _dir;

    public long Sid { get; }
    public int ClientPort { get; }

    private ApacheQuorumPeer(Process p, string dir, long sid, int clientPort)
    {
        _p = p; _dir = dir; Sid = sid; ClientPort = clientPort;
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
    }

    public string Log { get { lock (_log) return _log.ToString(); } }

    public static ApacheQuorumPeer Start(QuorumLayout layout, long sid, string root, params string[] jvmArgs) =>
        StartWith(layout, sid, root, [], jvmArgs);

    /// <summary>As <see cref="Start"/>, with more zoo.cfg lines (e.g. localSessionsEnabled=true).</summary>
    public static ApacheQuorumPeer StartWith(QuorumLayout layout, long sid, string root, IEnumerable<string> extraConfig, params string[] jvmArgs)
    {
        ExternalTools.RequireZkCli();
        string dir = Path.Combine(root, $"apache-{sid}");
        Directory.CreateDirectory(Path.Combine(dir, "data"));
        File.WriteAllText(Path.Combine(dir, "data", "myid"), sid + "\n");
        int clientPort = layout.ClientPorts[sid - 1];
        var cfg = new List<string>
        {
            "tickTime=500", "initLimit=10", "syncLimit=5", $"dataDir={dir}/data", $"clientPort={clientPort}", "clientPortAddress=127.0.0.1",
            "admin.enableServer=false", "4lw.commands.whitelist=*",
        };
        if (layout.Observers.Contains(sid)) cfg.Add("peerType=observer");
        cfg.AddRange(extraConfig);
        cfg.AddRange(layout.ServerLines());
        string cfgPath = Path.Combine(dir, "zoo.cfg");
        File.WriteAllText(cfgPath, string.Join('\n', cfg) + "\n");
        var psi = new ProcessStartInfo("java") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        string cp = ExternalTools.ZooKeeperJar + ":/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar";
        foreach (var a in jvmArgs) psi.ArgumentList.Add(a);
        foreach (var a in new[] { "-Xmx128m", "-XX:TieredStopAtLevel=1", "-cp", cp, "-Dlog4j.configuration=file:/etc/zookeeper/conf_example/log4j.properties",
            "-Dzookeeper.root.logger=INFO,CONSOLE", "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfgPath })
            psi.ArgumentList.Add(a);
        return new ApacheQuorumPeer(Process.Start(psi)!, dir, sid, clientPort);
    }

    /// <summary>Waits until the log has a line containing <paramref name="text"/>.</summary>
    public async Task<bool> WaitForLogAsync(string text, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (Log.Contains(text, StringComparison.Ordinal)) return true;
            if (_p.HasExited) return Log.Contains(text, StringComparison.Ordinal);
            await Task.Delay(100);
        }
        return false;
    }

    /// <summary>The "Mode:" line of srvr, or null while the member does not serve.</summary>
    public async Task<string?> ModeAsync()
    {
        try
        {
            using var c = new TcpClient();
            await c.ConnectAsync(IPAddress.Loopback, ClientPort);
            var s = c.GetStream();
            await s.WriteAsync("srvr"u8.ToArray());
            string text = await new StreamReader(s).ReadToEndAsync();
            var line = text.Split('\n').FirstOrDefault(l => l.StartsWith("Mode:", StringComparison.Ordinal));
            return line?.Substring(5).Trim();
        }
        catch (Exception e) when (e is SocketException or IOException) { return null; }
    }

    public async Task<string> WaitForModeAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (await ModeAsync() is { } m) return m;
            await Task.Delay(100);
        }
        throw new TimeoutException($"Apache peer {Sid} did not serve within {timeout}: {Log}");
    }

    public async ValueTask DisposeAsync()
    {
        if (!_p.HasExited) { _p.Kill(); await _p.WaitForExitAsync(); }
        _p.Dispose();
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }
}
