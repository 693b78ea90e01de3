using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Samsa.Keeper.Server.Tests;

/// <summary>A `samsa keeper` or upstream ZooKeeper 3.8 process on a zoo.cfg, started side by side on
/// copies of the same data directory: either it serves (Port) or it exited before serving
/// (ExitCode). Log holds everything it printed (upstream: log4j on the console).</summary>
public sealed class ServerProcess : IDisposable
{
    private readonly Process _p;
    private readonly List<string> _log = new();

    public int Port { get; private set; }
    public int? ExitCode { get; private set; }
    public string Name { get; }

    private ServerProcess(string name, Process p) { Name = name; _p = p; }

    public string Log { get { lock (_log) return string.Join('\n', _log); } }

    public bool Started => ExitCode is null;

    /// <summary>Why upstream cannot run here, or null when Java and Debian's zookeeper.jar exist.</summary>
    public static string? UpstreamUnavailable()
    {
        if (ExternalTools.Which("java") is null) return "java is not installed";
        if (!File.Exists(ExternalTools.ZooKeeperJar)) return ExternalTools.ZooKeeperJar + " is missing (Debian package zookeeper)";
        return null;
    }

    public static string WriteConfig(string dir, string dataDir, int port, string extra = "")
    {
        string cfg = Path.Combine(dir, $"zoo-{Guid.NewGuid():N}.cfg");
        File.WriteAllText(cfg, $"tickTime=2000\ndataDir={dataDir}\nclientPort={port}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n{extra}");
        return cfg;
    }

    public static async Task<ServerProcess> StartSamsaAsync(string cfg, params string[] args)
    {
        var psi = new ProcessStartInfo(Samsa.Testing.TestEnvironment.SamsaExecutable()) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("keeper");
        psi.ArgumentList.Add("--config");
        psi.ArgumentList.Add(cfg);
        foreach (var a in args) psi.ArgumentList.Add(a);
        var sp = new ServerProcess("samsa keeper", Process.Start(psi)!);
        var listening = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        sp._p.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) { listening.TrySetResult(-1); return; }
            sp.Add(e.Data);
            const string prefix = "keeper listening on ";
            if (e.Data.StartsWith(prefix, StringComparison.Ordinal)) listening.TrySetResult(int.Parse(e.Data[(e.Data.LastIndexOf(':') + 1)..]));
        };
        sp._p.ErrorDataReceived += (_, e) => { if (e.Data is not null) sp.Add(e.Data); };
        sp._p.BeginOutputReadLine();
        sp._p.BeginErrorReadLine();
        int port = await listening.Task.WaitAsync(TimeSpan.FromSeconds(60));
        if (port < 0)
        {
            await sp._p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
            sp.ExitCode = sp._p.ExitCode;
        }
        else sp.Port = port;
        return sp;
    }

    /// <summary>Upstream standalone (QuorumPeerMain → ZooKeeperServerMain), as UpstreamCompatTests
    /// runs it; serving once it answers srvr.</summary>
    public static async Task<ServerProcess> StartUpstreamAsync(string dir, string dataDir, string extraCfg = "", params string[] jvmArgs)
    {
        // The port is free when chosen but upstream binds it a second later; a test running beside
        // this one may take it meanwhile (CI saw "java.net.BindException: Address already in use"
        // and an exit that read as "upstream refused to start"): choose another and start again.
        for (int attempt = 1; ; attempt++)
        {
            var sp = await StartUpstreamOnceAsync(dir, dataDir, extraCfg, jvmArgs);
            if (attempt == 3 || sp.Started || !sp.Log.Contains("java.net.BindException", StringComparison.Ordinal)) return sp;
            sp.Dispose();
        }
    }

    private static async Task<ServerProcess> StartUpstreamOnceAsync(string dir, string dataDir, string extraCfg, string[] jvmArgs)
    {
        int port = Samsa.Testing.TestEnvironment.FreePort(21800);
        string cfg = WriteConfig(dir, dataDir, port, extraCfg);
        var psi = new ProcessStartInfo("java") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        string log4j = "/etc/zookeeper/conf_example/log4j.properties";
        string cp = ExternalTools.ZooKeeperJar + ":/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar";
        foreach (var a in new[] { "-Xmx256m", "-cp", cp, $"-Dlog4j.configuration=file:{log4j}", "-Dzookeeper.root.logger=INFO,CONSOLE" }.Concat(jvmArgs)
                     .Concat(new[] { "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg }))
            psi.ArgumentList.Add(a);
        var sp = new ServerProcess("upstream ZooKeeper", Process.Start(psi)!);
        sp._p.OutputDataReceived += (_, e) => { if (e.Data is not null) sp.Add(e.Data); };
        sp._p.ErrorDataReceived += (_, e) => { if (e.Data is not null) sp.Add(e.Data); };
        sp._p.BeginOutputReadLine();
        sp._p.BeginErrorReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (true)
        {
            if (sp._p.HasExited)
            {
                sp._p.WaitForExit();
                sp.ExitCode = sp._p.ExitCode;
                return sp;
            }
            try
            {
                // srvr: the one word upstream's default 4lw.commands.whitelist allows
                // (a connection accepted while upstream still loads may never be answered: retry)
                if ((await FourLetterAsync(port, "srvr", timeoutSeconds: 3)).StartsWith("Zookeeper version", StringComparison.Ordinal))
                {
                    sp.Port = port;
                    return sp;
                }
            }
            catch (Exception e) when (e is SocketException or IOException or OperationCanceledException) { }
            if (DateTime.UtcNow > deadline) { sp.Dispose(); throw new TimeoutException("upstream ZooKeeper neither served nor exited:\n" + sp.Log); }
            await Task.Delay(300);
        }
    }

    private void Add(string line) { lock (_log) _log.Add(line); }

    /// <summary>Waits until the log holds <paramref name="text"/> (lines arrive asynchronously).</summary>
    public async Task<bool> LogContainsAsync(string text, int timeoutMs = 10000)
    {
        var until = DateTime.UtcNow.AddMilliseconds(timeoutMs);
        while (!Log.Contains(text, StringComparison.Ordinal))
        {
            if (DateTime.UtcNow > until) return false;
            await Task.Delay(100);
        }
        return true;
    }

    /// <summary>Sends a four-letter word (and optional argument bytes) and reads the answer to the end.</summary>
    public static async Task<string> FourLetterAsync(int port, string word, byte[]? argument = null, int timeoutSeconds = 20)
    {
        using var c = new TcpClient();
        await c.ConnectAsync(IPAddress.Loopback, port);
        var s = c.GetStream();
        var msg = Encoding.ASCII.GetBytes(word).Concat(argument ?? Array.Empty<byte>()).ToArray();
        await s.WriteAsync(msg);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(timeoutSeconds));
        var ms = new MemoryStream();
        await s.CopyToAsync(ms, cts.Token);
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    public void Dispose()
    {
        try { if (!_p.HasExited) _p.Kill(true); } catch (InvalidOperationException) { }
        _p.WaitForExit(20000);
        _p.Dispose();
    }
}
