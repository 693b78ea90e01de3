using System.Diagnostics;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Tests.EndToEnd;

/// <summary>The samsa executable as a user runs it: `samsa dev` and `samsa broker --config`.</summary>
public class CliTests
{
    private static readonly string SamsaDll = Path.Combine(AppContext.BaseDirectory, "samsa.dll");

    private sealed class SamsaProcess : IAsyncDisposable
    {
        public required Process Process { get; init; }
        public List<string> Lines { get; } = [];
        public TaskCompletionSource Exited { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public async Task<string> WaitForLineAsync(string prefix, TimeSpan timeout)
        {
            var deadline = DateTime.UtcNow + timeout;
            while (DateTime.UtcNow < deadline)
            {
                lock (Lines) { var l = Lines.FirstOrDefault(x => x.StartsWith(prefix, StringComparison.Ordinal)); if (l is not null) return l; }
                if (Process.HasExited) break;
                await Task.Delay(10);
            }
            lock (Lines) throw new TimeoutException($"no '{prefix}' line; output so far:\n{string.Join("\n", Lines)}");
        }

        public int Terminate()
        {
            ExternalClients.Run("kill", $"-TERM {Process.Id}");
            if (!Process.WaitForExit(15_000)) { Process.Kill(true); return -1; }
            return Process.ExitCode;
        }

        public ValueTask DisposeAsync()
        {
            if (!Process.HasExited) { Process.Kill(true); Process.WaitForExit(5000); }
            Process.Dispose();
            return ValueTask.CompletedTask;
        }
    }

    private static SamsaProcess Start(string args)
    {
        var psi = new ProcessStartInfo("dotnet", $"{SamsaDll} {args}") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        var p = new SamsaProcess { Process = Process.Start(psi)! };
        p.Process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (p.Lines) p.Lines.Add(e.Data); };
        p.Process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (p.Lines) p.Lines.Add("stderr: " + e.Data); };
        p.Process.BeginOutputReadLine();
        p.Process.BeginErrorReadLine();
        return p;
    }

    private static int PortOf(string line) => int.Parse(line[(line.LastIndexOf(':') + 1)..]);

    [Fact]
    public async Task DevPrintsBothListenersServesKafkaAndStopsCleanlyOnSigterm()
    {
        var data = Path.Combine(Path.GetTempPath(), "samsa-cli-" + Guid.NewGuid().ToString("N"));
        try
        {
            var started = Stopwatch.StartNew();
            await using var dev = Start($"dev --data {data} --kafka-port 0 --zk-port 0");
            var kafkaLine = await dev.WaitForLineAsync("kafka listening on 127.0.0.1:", TimeSpan.FromSeconds(30));
            var startup = started.Elapsed;
            await dev.WaitForLineAsync("keeper listening on 127.0.0.1:", TimeSpan.FromSeconds(5));
            await using (var client = await KafkaWireClient.ConnectAsync("127.0.0.1", PortOf(kafkaLine)))
            {
                var md = await client.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [new() { Name = "cli" }] }, 9);
                Assert.Equal(5, md!.Topics[0].ErrorCode); // LEADER_NOT_AVAILABLE: auto-created
            }
            Assert.Equal(0, dev.Terminate());
            Assert.True(File.Exists(Path.Combine(data, "kafka", "meta.properties")));
            Assert.True(Directory.Exists(Path.Combine(data, "kafka", "cli-0")));
            Assert.True(File.Exists(Path.Combine(data, "kafka", ".kafka_cleanshutdown")), "clean shutdown marker missing: SIGTERM did not stop the broker cleanly");
            // Start-up time is a benchmark figure (samsa perf / the README), not a test assertion:
            // it is printed here for the log only.
            Console.WriteLine($"samsa dev listened after {startup.TotalMilliseconds:F0} ms");
        }
        finally
        {
            try { Directory.Delete(data, true); } catch (IOException) { }
        }
    }

    [Fact]
    public async Task BrokerReadsServerPropertiesWithContinuationsAndOverrides()
    {
        var dir = Path.Combine(Path.GetTempPath(), "samsa-cli-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var props = Path.Combine(dir, "server.properties");
            File.WriteAllText(props, $"# upstream-style file\nbroker.id=7\nlisteners=PLAINTEXT://\\\n    127.0.0.1:0\nlog.dirs={dir}/logs\nnum.partitions=3\n");
            await using var broker = Start($"broker --config {props} --override num.partitions=2");
            var line = await broker.WaitForLineAsync("kafka listening on 127.0.0.1:", TimeSpan.FromSeconds(30));
            await using (var client = await KafkaWireClient.ConnectAsync("127.0.0.1", PortOf(line)))
            {
                await client.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [new() { Name = "x" }] }, 9);
                var md = await client.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [new() { Name = "x" }] }, 9);
                Assert.Equal(7, md!.Brokers.Single().NodeId);
                Assert.Equal(2, md.Topics[0].Partitions.Count);
            }
            Assert.Equal(0, broker.Terminate());
        }
        finally
        {
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }

    [Fact]
    public void BadArgumentsAndBadConfigAreReported()
    {
        var r = ExternalClients.Run("dotnet", $"{SamsaDll} broker --config /nonexistent/server.properties");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("config file not found", r.Stderr);
        r = ExternalClients.Run("dotnet", $"{SamsaDll} dev --kafka-port 70000");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("port number", r.Stderr);
        r = ExternalClients.Run("dotnet", $"{SamsaDll} frobnicate");
        Assert.Equal(2, r.ExitCode);
    }

    [Fact]
    public async Task DevSecureServesSslWithAPrintedClientConfigAndReusesItsCa()
    {
        string kcat = ExternalClients.Require("kcat", "kcat", probe: "-V");
        var data = Path.Combine(Path.GetTempPath(), "samsa-cli-secure-" + Guid.NewGuid().ToString("N"));
        try
        {
            string caPem;
            await using (var dev = Start($"dev --secure --data {data} --kafka-port 0 --zk-port 0"))
            {
                var sslLine = await dev.WaitForLineAsync("kafka SSL listening on 127.0.0.1:", TimeSpan.FromSeconds(30));
                await dev.WaitForLineAsync("ssl.ca.location=", TimeSpan.FromSeconds(10));
                var bootstrap = await dev.WaitForLineAsync("bootstrap.servers=", TimeSpan.FromSeconds(1));
                Assert.Equal($"bootstrap.servers=127.0.0.1:{PortOf(sslLine)}", bootstrap);
                Assert.Contains("security.protocol=SSL", dev.Lines);
                string config = Path.Combine(data, "tls", "client.properties");
                // The printed config, as a user pastes it: kcat produces and consumes with it.
                var (pc, po, pe) = ExternalClients.Run(kcat, $"-F {config} -P -t secure-cli", stdin: "over-tls\n");
                Assert.True(pc == 0, po + pe);
                var (cc, co, ce) = ExternalClients.Run(kcat, $"-F {config} -C -t secure-cli -o beginning -e -q");
                Assert.True(cc == 0, co + ce);
                Assert.Equal("over-tls", co.Trim());
                // The SASL_SSL listener with the printed config (alice, SCRAM-SHA-512): authenticated,
                // but no ACL lets alice read; the super user admin reads with the same file.
                await dev.WaitForLineAsync("kafka SASL_SSL listening on 127.0.0.1:", TimeSpan.FromSeconds(1));
                string sasl = Path.Combine(data, "tls", "client-sasl.properties");
                var (ac, ao, ae) = ExternalClients.Run(kcat, $"-F {sasl} -C -t secure-cli -o beginning -e -q");
                Assert.True(ac != 0 && ae.Contains("authoriz", StringComparison.OrdinalIgnoreCase), $"alice without ACLs: {ac} {ao} {ae}");
                var (sc, so, se) = ExternalClients.Run(kcat, $"-F {sasl} -X sasl.username=admin -X sasl.password=admin-secret -C -t secure-cli -o beginning -e -q");
                Assert.True(sc == 0, so + se);
                Assert.Equal("over-tls", so.Trim());
                var (wc, _, we) = ExternalClients.Run(kcat, $"-F {sasl} -X sasl.password=wrong -L");
                Assert.True(wc != 0 && we.Contains("Authentication failed", StringComparison.Ordinal), we);
                caPem = File.ReadAllText(Path.Combine(data, "tls", "ca.pem"));
                lock (dev.Lines) Assert.Contains(dev.Lines, l => l.Contains("made a self-signed CA"));
                Assert.Equal(0, dev.Terminate());
            }
            // A second run reuses the CA (clients keep trusting it).
            await using (var again = Start($"dev --secure --data {data} --kafka-port 0 --zk-port 0"))
            {
                await again.WaitForLineAsync("ssl.ca.location=", TimeSpan.FromSeconds(30));
                Assert.Equal(caPem, File.ReadAllText(Path.Combine(data, "tls", "ca.pem")));
                lock (again.Lines) Assert.DoesNotContain(again.Lines, l => l.Contains("made a self-signed CA"));
                Assert.Equal(0, again.Terminate());
            }
        }
        finally
        {
            try { Directory.Delete(data, recursive: true); } catch (IOException) { }
        }
    }
}
