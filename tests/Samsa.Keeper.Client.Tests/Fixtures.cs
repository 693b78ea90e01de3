using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
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

/// <summary>Debian's Apache ZooKeeper 3.8 (package "zookeeper"), standalone on a free port in
/// 21900-21999, configured like the Keeper fixture. If it cannot be installed or started, every
/// test of the class reports skipped with the reason.</summary>
public sealed class ZooKeeperFixture : IServerFixture, IAsyncLifetime
{
    private const string Jar = "/usr/share/java/zookeeper.jar";
    private Process? _process;
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "zk-client-" + Guid.NewGuid().ToString("N"));
    private readonly System.Text.StringBuilder _log = new();

    public string Name => "zookeeper";
    public string? Address { get; private set; }
    public string? SkipReason { get; private set; }

    public async ValueTask InitializeAsync()
    {
        try
        {
            if (!File.Exists(Jar)) Install();
            if (!File.Exists(Jar)) { SkipReason = $"Apache ZooKeeper is not installed ({Jar} missing) and apt-get install zookeeper failed"; return; }
            if (!ExistsOnPath("java")) { SkipReason = "no java on PATH to run Apache ZooKeeper"; return; }
            _port = FreePort();
            Directory.CreateDirectory(_dir);
            _cfg = Path.Combine(_dir, "zoo.cfg");
            File.WriteAllText(_cfg, $"tickTime=500\ndataDir={_dir}/data\nclientPort={_port}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\nmaxClientCnxns=0\nmaxSessionTimeout=60000\n4lw.commands.whitelist=*\n");
            SkipReason = await StartProcessAsync();
            if (SkipReason is null) Address = $"127.0.0.1:{_port}";
        }
        catch (Exception e)
        {
            SkipReason = "Apache ZooKeeper could not be started: " + e.Message;
        }
    }

    private int _port;
    private string _cfg = "";

    /// <summary>Starts the server process on the configured port; returns why it failed, or null.</summary>
    private async Task<string?> StartProcessAsync()
    {
        var psi = new ProcessStartInfo("java") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[]
        {
            "-Xmx256m", "-Dzookeeper.extendedTypesEnabled=true", "-Dznode.container.checkIntervalMs=1000",
            "-cp", Jar, "org.apache.zookeeper.server.quorum.QuorumPeerMain", _cfg,
        })
            psi.ArgumentList.Add(a);
        _process = Process.Start(psi)!;
        _process.OutputDataReceived += (_, e) => { lock (_log) _log.AppendLine(e.Data); };
        _process.ErrorDataReceived += (_, e) => { lock (_log) _log.AppendLine(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            if (await RuokAsync(_port)) return null;
            if (_process.HasExited) return $"Apache ZooKeeper exited with {_process.ExitCode}: {_log}";
            if (DateTime.UtcNow > deadline) return "Apache ZooKeeper did not answer ruok within 60 s";
            await Task.Delay(200);
        }
    }

    /// <summary>Kills the server (no clean shutdown) and starts it again on the same port and data.</summary>
    public async Task RestartAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }
        _process?.Dispose();
        string? why = await StartProcessAsync();
        if (why is not null) throw new InvalidOperationException(why);
    }

    private static void Install()
    {
        try
        {
            var psi = new ProcessStartInfo("apt-get") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { "install", "-y", "--no-install-recommends", "zookeeper" }) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            p.StandardOutput.ReadToEndAsync();
            p.StandardError.ReadToEndAsync();
            p.WaitForExit(300_000);
        }
        catch (System.ComponentModel.Win32Exception) { }
    }

    private static bool ExistsOnPath(string exe) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => File.Exists(Path.Combine(d, exe)));

    private static async Task<bool> RuokAsync(int port)
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

    private static int FreePort()
    {
        int start = 21900 + Random.Shared.Next(100);
        for (int i = 0; i < 100; i++)
        {
            int p = 21900 + (start - 21900 + i) % 100;
            try
            {
                var l = new TcpListener(IPAddress.Loopback, p);
                l.Start();
                l.Stop();
                return p;
            }
            catch (SocketException) { }
        }
        throw new InvalidOperationException("no free port in 21900-21999");
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }
        _process?.Dispose();
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }
}
