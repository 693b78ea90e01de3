using System.Diagnostics;
using Samsa.Kafka.Broker.Config;

namespace Samsa.Kafka.Broker.Tests.EndToEnd;

/// <summary>A broker started in-process on 127.0.0.1 with an ephemeral port and file logs in a
/// temporary directory; removed after the test.</summary>
public sealed class LiveBroker : IAsyncDisposable
{
    public KafkaBroker Broker { get; }
    public string DataDir { get; }
    public string Bootstrap => $"127.0.0.1:{Broker.BoundEndPoint.Port}";

    private LiveBroker(KafkaBroker broker, string dataDir) { Broker = broker; DataDir = dataDir; }

    public static async Task<LiveBroker> StartAsync(string? dataDir = null, params (string K, string V)[] props)
    {
        dataDir ??= Path.Combine(Path.GetTempPath(), "samsa-e2e-" + Guid.NewGuid().ToString("N"));
        var all = new Dictionary<string, string>
        {
            ["broker.id"] = "1",
            ["listeners"] = "PLAINTEXT://127.0.0.1:0",
            ["log.dirs"] = dataDir,
            ["offsets.topic.replication.factor"] = "1",
        };
        foreach (var (k, v) in props) all[k] = v;
        var broker = new KafkaBroker(new BrokerConfig(all));
        await broker.StartAsync();
        return new LiveBroker(broker, dataDir);
    }

    public async ValueTask DisposeAsync()
    {
        await Broker.DisposeAsync();
        try { Directory.Delete(DataDir, recursive: true); } catch (IOException) { }
    }
}

/// <summary>Finds (or installs from Debian, as CLIENTS.md describes) the external clients the
/// end-to-end tests drive. A client that cannot be made available fails the test with a message
/// saying so — it never passes silently.</summary>
public static class ExternalClients
{
    private static readonly object Gate = new();
    private static bool _aptUpdated;

    public static string Require(string command, string aptPackage, string? probe = null)
    {
        lock (Gate)
        {
            if (Exists(command, probe)) return command;
            if (!_aptUpdated) { Run("apt-get", "update -qq", 300_000); _aptUpdated = true; }
            Run("apt-get", $"install -y -qq --no-install-recommends {aptPackage}", 600_000);
            if (Exists(command, probe)) return command;
            throw new InvalidOperationException($"{command} is not installed and installing Debian package {aptPackage} failed; this end-to-end test needs it");
        }
    }

    private static bool Exists(string command, string? probe)
    {
        if (probe is not null) return Run(command, probe, 30_000).ExitCode == 0;
        return Environment.GetEnvironmentVariable("PATH")!.Split(':').Any(d => File.Exists(Path.Combine(d, command)));
    }

    public static (int ExitCode, string Stdout, string Stderr) Run(string file, string args, int timeoutMs = 60_000, string? stdin = null)
    {
        try
        {
            var psi = new ProcessStartInfo(file, args)
            {
                RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = stdin is not null, UseShellExecute = false,
            };
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (stdin is not null)
            {
                p.StandardInput.Write(stdin);
                p.StandardInput.Close();
            }
            if (!p.WaitForExit(timeoutMs))
            {
                p.Kill(entireProcessTree: true);
                return (-1, stdout.Result, stderr.Result + $"\n[timed out after {timeoutMs} ms]");
            }
            return (p.ExitCode, stdout.Result, stderr.Result);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (-1, "", e.Message);
        }
    }
}
