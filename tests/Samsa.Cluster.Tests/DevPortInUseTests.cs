using System.Diagnostics;
using System.Text.RegularExpressions;
using Xunit;

namespace Samsa.Cluster.Tests;

/// <summary>
/// The `samsa` executable on ports that are taken: a second `samsa dev` on the ports of a running
/// one refuses to start — exit status non-zero, one line on stderr naming the listener, the
/// address and "address already in use" — instead of sharing the ports (and splitting clients
/// between the two processes) or dying with a stack trace. Its log lines carry timestamps.
/// </summary>
public sealed class DevPortInUseTests
{
    private sealed record Run(int ExitCode, string[] Stdout, string[] Stderr);

    private static async Task<(Process Process, List<string> Stdout, List<string> Stderr)> StartAsync(params string[] args)
    {
        var psi = new ProcessStartInfo(Samsa.Testing.TestEnvironment.SamsaExecutable()) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        var stdout = new List<string>();
        var stderr = new List<string>();
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (stdout) stdout.Add(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (stderr) stderr.Add(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        await Task.CompletedTask;
        return (p, stdout, stderr);
    }

    private static async Task<Run> RunToExitAsync(TimeSpan timeout, params string[] args)
    {
        var (p, stdout, stderr) = await StartAsync(args);
        using var cts = new CancellationTokenSource(timeout);
        try { await p.WaitForExitAsync(cts.Token); }
        catch (OperationCanceledException)
        {
            p.Kill();
            Assert.Fail($"samsa {string.Join(' ', args)} still runs after {timeout.TotalSeconds} s on ports in use; stdout: {string.Join(" | ", stdout)}");
        }
        p.WaitForExit(); // drains the redirected streams
        lock (stdout) lock (stderr) return new Run(p.ExitCode, stdout.ToArray(), stderr.Where(l => l.Length > 0).ToArray());
    }

    private static async Task StopAsync(Process p)
    {
        if (p.HasExited) return;
        Process.Start("kill", ["-TERM", p.Id.ToString()])!.WaitForExit();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        try { await p.WaitForExitAsync(cts.Token); } catch (OperationCanceledException) { p.Kill(); }
    }

    private static async Task<(string Kafka, string Keeper)> WaitListeningAsync(Process p, List<string> stdout, List<string> stderr)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < TimeSpan.FromSeconds(60))
        {
            lock (stdout)
            {
                var kafka = stdout.FirstOrDefault(l => l.StartsWith("kafka listening on ", StringComparison.Ordinal));
                var keeper = stdout.FirstOrDefault(l => l.StartsWith("keeper listening on ", StringComparison.Ordinal));
                if (kafka is not null && keeper is not null) return (kafka["kafka listening on ".Length..], keeper["keeper listening on ".Length..]);
            }
            if (p.HasExited) lock (stderr) Assert.Fail($"samsa dev exited with {p.ExitCode}: {string.Join('\n', stderr)}");
            await Task.Delay(50);
        }
        throw new TimeoutException("samsa dev did not print its listening lines");
    }

    private static string NewDataDir() => Path.Combine(Path.GetTempPath(), "samsa-porttest-" + Guid.NewGuid().ToString("N")[..8]);

    [Fact]
    public async Task ASecondDevOnTheSamePortsExitsWithOneLine()
    {
        string data1 = NewDataDir(), data2 = NewDataDir();
        var (first, stdout, stderr) = await StartAsync("dev", "--data", data1, "--kafka-port", "0", "--zk-port", "0");
        try
        {
            var (kafka, keeper) = await WaitListeningAsync(first, stdout, stderr);
            string kafkaPort = kafka[(kafka.LastIndexOf(':') + 1)..], zkPort = keeper[(keeper.LastIndexOf(':') + 1)..];

            // Both ports taken: the Keeper's is bound first.
            var both = await RunToExitAsync(TimeSpan.FromSeconds(60), "dev", "--data", data2, "--kafka-port", kafkaPort, "--zk-port", zkPort);
            Assert.NotEqual(0, both.ExitCode);
            Assert.DoesNotContain(both.Stdout, l => l.Contains("listening on"));
            // One line says why (start-up lines such as the log-loading summary may come before it),
            // and no stack trace follows.
            Assert.Single(both.Stderr, l => l.Contains("cannot bind", StringComparison.Ordinal));
            Assert.Single(both.Stderr, l => System.Text.RegularExpressions.Regex.IsMatch(l, $@"keeper client listener cannot bind 127\.0\.0\.1:{zkPort}: address already in use$"));
            Assert.DoesNotContain(both.Stderr, l => l.Contains("Exception", StringComparison.Ordinal) || l.TrimStart().StartsWith("at ", StringComparison.Ordinal));

            // Only the Kafka port taken: the Keeper starts, the broker refuses, the process stops.
            var kafkaOnly = await RunToExitAsync(TimeSpan.FromSeconds(60), "dev", "--data", data2, "--kafka-port", kafkaPort, "--zk-port", "0");
            Assert.NotEqual(0, kafkaOnly.ExitCode);
            Assert.DoesNotContain(kafkaOnly.Stdout, l => l.StartsWith("kafka listening on", StringComparison.Ordinal));
            Assert.Single(kafkaOnly.Stderr, l => l.Contains("cannot bind", StringComparison.Ordinal));
            Assert.Single(kafkaOnly.Stderr, l => System.Text.RegularExpressions.Regex.IsMatch(l, $@"kafka PLAINTEXT listener cannot bind 127\.0\.0\.1:{kafkaPort}: address already in use$"));
            Assert.DoesNotContain(kafkaOnly.Stderr, l => l.Contains("Exception", StringComparison.Ordinal) || l.TrimStart().StartsWith("at ", StringComparison.Ordinal));

            // The first process kept its ports and still serves.
            Assert.False(first.HasExited);
            using var probe = new System.Net.Sockets.TcpClient();
            await probe.ConnectAsync("127.0.0.1", int.Parse(kafkaPort));
        }
        finally
        {
            await StopAsync(first);
            foreach (var d in new[] { data1, data2 }) try { Directory.Delete(d, true); } catch (IOException) { }
        }
    }

    [Fact]
    public async Task LogLinesCarryATimestampAndTheListeningLinesStayAsScriptsReadThem()
    {
        string data = NewDataDir();
        var (dev, stdout, stderr) = await StartAsync("dev", "--data", data, "--kafka-port", "0", "--zk-port", "0");
        try
        {
            await WaitListeningAsync(dev, stdout, stderr);
            var stamp = new Regex(@"^\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}\] \S");
            var sw = Stopwatch.StartNew();
            string[] lines;
            do
            {
                await Task.Delay(50);
                lock (stderr) lines = stderr.Where(l => l.Length > 0).ToArray();
            } while (!lines.Any(l => l.Contains("registered in ZooKeeper")) && sw.Elapsed < TimeSpan.FromSeconds(20));
            Assert.Contains(lines, l => l.Contains("dev settings:"));
            Assert.Contains(lines, l => l.Contains("registered in ZooKeeper"));
            Assert.All(lines, l => Assert.Matches(stamp, l));
            // The time is now's, to the second or so.
            var first = DateTime.ParseExact(lines[0][1..24], "yyyy-MM-dd HH:mm:ss,fff", System.Globalization.CultureInfo.InvariantCulture);
            Assert.InRange(first, DateTime.Now.AddMinutes(-2), DateTime.Now.AddSeconds(5));
            // stdout holds only the lines scripts read: where to connect, and (issue #20) where the
            // Prometheus metrics, the request tap and the web console are.
            lock (stdout) Assert.All(stdout, l => Assert.Matches(@"^((kafka|keeper) listening on 127\.0\.0\.1:\d+|(kafka|keeper) metrics on http://127\.0\.0\.1:\d+/metrics|kafka request tap on http://127\.0\.0\.1:(?<tap>\d+)/tap \(samsa tap --url http://127\.0\.0\.1:\k<tap> --follow\)|console on http://127\.0\.0\.1:\d+/)$", l));
            lock (stdout) Assert.Contains(stdout, l => l.StartsWith("kafka metrics on ", StringComparison.Ordinal));
            lock (stdout) Assert.Contains(stdout, l => l.StartsWith("kafka request tap on ", StringComparison.Ordinal));
        }
        finally
        {
            await StopAsync(dev);
            try { Directory.Delete(data, true); } catch (IOException) { }
        }
    }
}
