using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Samsa.Testing;

/// <summary>
/// Debian's Apache ZooKeeper 3.8 (package "zookeeper", installed on first use when missing) as a
/// standalone server process on 127.0.0.1, for tests that cross-check against upstream. Tests
/// that cannot have it report skipped with <see cref="StartResult.SkipReason"/>.
/// </summary>
public sealed class ApacheZooKeeper : IAsyncDisposable
{
    private const string Jar = "/usr/share/java/zookeeper.jar";
    private readonly string _dir;
    private readonly string _cfg;
    private readonly IReadOnlyList<string> _jvmArgs;
    private readonly StringBuilder _log = new();
    private Process? _process;
    private string _classPath = Jar;

    private ApacheZooKeeper(string dir, string cfg, int port, IReadOnlyList<string> jvmArgs)
    {
        _dir = dir; _cfg = cfg; Port = port; _jvmArgs = jvmArgs;
    }

    public int Port { get; }
    public string Address => $"127.0.0.1:{Port}";

    /// <summary>Either a running server or why there is none.</summary>
    public sealed record StartResult(ApacheZooKeeper? Server, string? SkipReason);

    /// <param name="portBase">The server takes a free port in [portBase, portBase + 100): test
    /// projects running side by side use different ranges.</param>
    /// <param name="zooCfg">Lines added to zoo.cfg (tickTime 500 is set; override as needed).</param>
    /// <param name="jvmArgs">Extra JVM arguments, e.g. -Dzookeeper.extendedTypesEnabled=true.</param>
    /// <param name="extraClassPath">Jars added after zookeeper.jar (e.g. Debian's netty jars for NettyServerCnxnFactory).</param>
    public static async Task<StartResult> StartAsync(int portBase, IEnumerable<string>? zooCfg = null, IEnumerable<string>? jvmArgs = null,
        string dirPrefix = "zk-", string? extraClassPath = null)
    {
        var dir = Path.Combine(Path.GetTempPath(), dirPrefix + Guid.NewGuid().ToString("N"));
        try
        {
            if (!File.Exists(Jar)) Install();
            if (!File.Exists(Jar)) return new(null, $"Apache ZooKeeper is not installed ({Jar} missing) and apt-get install zookeeper failed");
            if (!ExistsOnPath("java")) return new(null, "no java on PATH to run Apache ZooKeeper");
            int port = TestEnvironment.FreePort(portBase);
            Directory.CreateDirectory(dir);
            var cfg = Path.Combine(dir, "zoo.cfg");
            var lines = new List<string>
            {
                "tickTime=500", $"dataDir={dir}/data", $"clientPort={port}", "clientPortAddress=127.0.0.1",
                "admin.enableServer=false", "maxClientCnxns=0", "4lw.commands.whitelist=*",
            };
            lines.AddRange(zooCfg ?? []);
            await File.WriteAllTextAsync(cfg, string.Join('\n', lines) + "\n");
            var server = new ApacheZooKeeper(dir, cfg, port, (jvmArgs ?? []).ToList()) { _classPath = extraClassPath is null ? Jar : Jar + ":" + extraClassPath };
            var why = await server.StartProcessAsync();
            if (why is null) return new(server, null);
            await server.DisposeAsync();
            return new(null, why);
        }
        catch (Exception e)
        {
            return new(null, "Apache ZooKeeper could not be started: " + e.Message);
        }
    }

    /// <summary>Starts the server process on the configured port; returns why it failed, or null.</summary>
    private async Task<string?> StartProcessAsync()
    {
        var psi = new ProcessStartInfo("java") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("-Xmx256m");
        foreach (var a in _jvmArgs) psi.ArgumentList.Add(a);
        foreach (var a in new[] { "-cp", _classPath, "org.apache.zookeeper.server.quorum.QuorumPeerMain", _cfg }) psi.ArgumentList.Add(a);
        _process = Process.Start(psi)!;
        _process.OutputDataReceived += (_, e) => { lock (_log) _log.AppendLine(e.Data); };
        _process.ErrorDataReceived += (_, e) => { lock (_log) _log.AppendLine(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            if (await RuokAsync(Port)) return null;
            if (_process.HasExited) { lock (_log) return $"Apache ZooKeeper exited with {_process.ExitCode}: {_log}"; }
            if (DateTime.UtcNow > deadline) return "Apache ZooKeeper did not answer ruok within 60 s";
            await Task.Delay(200);
        }
    }

    /// <summary>Kills the server (no clean shutdown) and starts it again on the same port and data.</summary>
    public async Task RestartAsync()
    {
        await StopProcessAsync();
        string? why = await StartProcessAsync();
        if (why is not null) throw new InvalidOperationException(why);
    }

    private async Task StopProcessAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }
        _process?.Dispose();
        _process = null;
    }

    private static void Install()
    {
        try
        {
            var psi = new ProcessStartInfo("apt-get") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { "install", "-y", "--no-install-recommends", "zookeeper" }) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            _ = p.StandardOutput.ReadToEndAsync();
            _ = p.StandardError.ReadToEndAsync();
            p.WaitForExit(300_000);
        }
        catch (System.ComponentModel.Win32Exception) { }
    }

    private static bool ExistsOnPath(string exe) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => File.Exists(Path.Combine(d, exe)));

    /// <summary>The four-letter word "ruok": "imok" once the server serves.</summary>
    public static async Task<bool> RuokAsync(int port)
    {
        try
        {
            using var c = new TcpClient();
            await c.ConnectAsync(IPAddress.Loopback, port);
            var s = c.GetStream();
            await s.WriteAsync("ruok"u8.ToArray());
            var b = new byte[4];
            int n = await s.ReadAsync(b);
            return n == 4 && b.AsSpan().SequenceEqual("imok"u8);
        }
        catch (Exception e) when (e is SocketException or IOException) { return false; }
    }

    public async ValueTask DisposeAsync()
    {
        await StopProcessAsync();
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }
}
