using System.Diagnostics;
using System.Text;
using Xunit;

namespace Samsa.Cluster.Tests;

/// <summary>A `samsa dev --kafka-port 0 --zk-port 0` process of this build configuration, with extra
/// flags; stopped with SIGTERM (a clean stop) and its data dir deleted on dispose.</summary>
internal sealed class DevProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stderr = new();
    private readonly string _data;

    private DevProcess(Process process, string data) { _process = process; _data = data; }

    public string KafkaAddress { get; private set; } = "";
    public string KeeperAddress { get; private set; } = "";
    public string Stderr { get { lock (_stderr) return _stderr.ToString(); } }

    public static async Task<DevProcess> StartAsync(string data, params string[] extra)
    {
        var psi = new ProcessStartInfo(Samsa.Testing.TestEnvironment.SamsaExecutable()) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "dev", "--data", data, "--kafka-port", "0", "--zk-port", "0" }.Concat(extra)) psi.ArgumentList.Add(a);
        var dev = new DevProcess(Process.Start(psi)!, data);
        dev._process.ErrorDataReceived += (_, e) => { lock (dev._stderr) dev._stderr.AppendLine(e.Data); };
        dev._process.BeginErrorReadLine();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (dev.KafkaAddress.Length == 0 || dev.KeeperAddress.Length == 0)
        {
            var line = await dev._process.StandardOutput.ReadLineAsync(timeout.Token);
            if (line is null)
            {
                await dev._process.WaitForExitAsync(timeout.Token);
                Assert.Fail($"samsa dev exited with {dev._process.ExitCode} before listening: {dev.Stderr}");
            }
            if (line!.StartsWith("kafka listening on ", StringComparison.Ordinal)) dev.KafkaAddress = line["kafka listening on ".Length..];
            if (line.StartsWith("keeper listening on ", StringComparison.Ordinal)) dev.KeeperAddress = line["keeper listening on ".Length..];
        }
        return dev;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            Process.Start("kill", ["-TERM", _process.Id.ToString()])!.WaitForExit();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            try { await _process.WaitForExitAsync(timeout.Token); }
            catch (OperationCanceledException) { _process.Kill(); }
        }
        _process.Dispose();
        try { Directory.Delete(_data, true); } catch (IOException) { }
    }
}
