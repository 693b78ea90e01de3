using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
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

/// <summary>Debian's Apache ZooKeeper 3.8 (package "zookeeper"), standalone on a free port in
/// 22000-22099 with the same tickTime. When it cannot be installed or started, the tests of the
/// class report skipped with the reason.</summary>
public sealed class ApacheZooKeeperServer : ICoordinationServer, IAsyncLifetime
{
    private const string Jar = "/usr/share/java/zookeeper.jar";
    private Process? _process;
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "cluster-zk-" + Guid.NewGuid().ToString("N"));
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
            int port = FreePort();
            Directory.CreateDirectory(_dir);
            string cfg = Path.Combine(_dir, "zoo.cfg");
            File.WriteAllText(cfg, $"tickTime=500\ndataDir={_dir}/data\nclientPort={port}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\nmaxClientCnxns=0\n4lw.commands.whitelist=*\n");
            var psi = new ProcessStartInfo("java") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { "-Xmx256m", "-cp", Jar, "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg })
                psi.ArgumentList.Add(a);
            _process = Process.Start(psi)!;
            _process.OutputDataReceived += (_, e) => { lock (_log) _log.AppendLine(e.Data); };
            _process.ErrorDataReceived += (_, e) => { lock (_log) _log.AppendLine(e.Data); };
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (!await RuokAsync(port))
            {
                if (_process.HasExited) { SkipReason = $"Apache ZooKeeper exited with {_process.ExitCode}: {_log}"; return; }
                if (DateTime.UtcNow > deadline) { SkipReason = "Apache ZooKeeper did not answer ruok within 60 s"; return; }
                await Task.Delay(200);
            }
            Address = $"127.0.0.1:{port}";
        }
        catch (Exception e)
        {
            SkipReason = "Apache ZooKeeper could not be started: " + e.Message;
        }
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
        int offset = Random.Shared.Next(100);
        for (int i = 0; i < 100; i++)
        {
            int p = 22000 + (offset + i) % 100;
            try
            {
                var l = new TcpListener(IPAddress.Loopback, p);
                l.Start();
                l.Stop();
                return p;
            }
            catch (SocketException) { }
        }
        throw new InvalidOperationException("no free port in 22000-22099");
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
