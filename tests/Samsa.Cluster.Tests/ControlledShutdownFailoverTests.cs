using System.Diagnostics;
using System.Globalization;
using System.Text;
using Samsa.Kafka.Broker.Client;
using Xunit;

namespace Samsa.Cluster.Tests;

/// <summary>
/// Controlled shutdown with real processes: three `samsa broker`s, an RF=3 topic with
/// min.insync.replicas=2 and an acks=all producer writing a numbered sequence. The leader gets
/// SIGTERM (twice, restarted in between), then SIGKILL once for comparison. Failover is the time
/// from the signal to the first record acknowledged by another broker. A SIGTERM must cost the
/// producer nothing but retriable errors and fail over well within the ZooKeeper session timeout
/// that a SIGKILL has to wait out; no acknowledged record may be lost.
/// </summary>
public sealed class ControlledShutdownFailoverTests(KeeperServer server, ITestOutputHelper output) : IClassFixture<KeeperServer>
{
    private const short NotLeaderOrFollower = 6, RequestTimedOut = 7, NotEnoughReplicas = 19, NotEnoughReplicasAfterAppend = 20, DuplicateSequence = 46;
    private const int SessionTimeoutMs = 3000;

    [Fact]
    public async Task SigtermMovesLeadershipBeforeTheBrokerLeaves()
    {
        Assert.SkipWhen(FaultHarness.FindSamsa() is null, "samsa host not built: run ./samsa once");
        await using var h = new FaultHarness(server.Address!, SessionTimeoutMs);
        try
        {
            await RunAsync(h).WaitAsync(TimeSpan.FromMinutes(4));
        }
        catch (Exception e) when (e is not Xunit.Sdk.XunitException)
        {
            throw new InvalidOperationException($"{e.Message}\n--- broker output ---\n{string.Join('\n', h.Log.Split('\n').TakeLast(120))}", e);
        }
    }

    private async Task RunAsync(FaultHarness h)
    {
        for (int id = 1; id <= 3; id++) await h.StartBrokerAsync(id);
        const string topic = "term";
        await h.CreateTopicAsync(topic, 3, 2);

        var gate = new object();
        var acked = new List<int>();
        int pendingFrom = -1;        // the signalled leader while a failover is being timed
        long signalledAt = 0;
        double? measured = null;
        var unexpected = new List<string>();
        using var stop = new CancellationTokenSource();
        const long producerId = 777;

        var producer = Task.Run(async () =>
        {
            int next = 0;
            while (!stop.IsCancellationRequested)
            {
                int leader = await h.LeaderOfAsync(topic, 0);
                if (leader < 0) { await Task.Delay(20); continue; }
                try
                {
                    await using var client = await KafkaWireClient.ConnectAsync("127.0.0.1", h.Port(leader));
                    while (!stop.IsCancellationRequested)
                    {
                        short code = await h.ProduceAsync(client, topic, [(null, Encoding.ASCII.GetBytes(next.ToString(CultureInfo.InvariantCulture)))], producerId, next);
                        if (code is 0 or DuplicateSequence)
                        {
                            lock (gate)
                            {
                                acked.Add(next);
                                if (pendingFrom >= 0 && leader != pendingFrom && measured is null)
                                    measured = Stopwatch.GetElapsedTime(signalledAt).TotalMilliseconds;
                            }
                            next++;
                            continue;
                        }
                        if (code is not (NotLeaderOrFollower or RequestTimedOut or NotEnoughReplicas or NotEnoughReplicasAfterAppend))
                            lock (gate) unexpected.Add($"produce of {next} to broker {leader}: error {code}");
                        await Task.Delay(20);
                        break;
                    }
                }
                catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException) { await Task.Delay(20); }
            }
        });

        async Task<double> FailoverAsync(bool sigterm)
        {
            var full = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while ((await h.IsrOfAsync(topic, 0)).Count < 3 && DateTime.UtcNow < full) await Task.Delay(100);
            await Task.Delay(1000);
            // A loaded machine may leave a metadata answer past its 2 s wait (-1): ask again
            // rather than signal nobody.
            int leader;
            while ((leader = await h.LeaderOfAsync(topic, 0)) < 0 && DateTime.UtcNow < full) await Task.Delay(100);
            if (leader < 0) throw new TimeoutException($"{topic}-0 has no leader to signal");
            lock (gate) { measured = null; pendingFrom = leader; signalledAt = Stopwatch.GetTimestamp(); }
            if (sigterm) await h.TerminateAsync(leader);
            else h.Kill(leader);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            double? result;
            while (true)
            {
                lock (gate) result = measured;
                if (result is not null || DateTime.UtcNow > deadline) break;
                await Task.Delay(10);
            }
            lock (gate) pendingFrom = -1;
            output.WriteLine($"{(sigterm ? "SIGTERM" : "SIGKILL")} leader {leader}: first acknowledged produce on another broker after {result:F0} ms");
            await h.StartBrokerAsync(leader);
            return result ?? throw new TimeoutException($"no produce succeeded on a new leader after broker {leader} was signalled");
        }

        double term1 = await FailoverAsync(sigterm: true);
        double term2 = await FailoverAsync(sigterm: true);
        double kill = await FailoverAsync(sigterm: false);
        stop.Cancel();
        await producer;

        var read = (await h.ReadAllAsync(topic)).Select(r => int.Parse(Encoding.ASCII.GetString(r.Value!), CultureInfo.InvariantCulture)).ToHashSet();
        List<int> lost;
        lock (gate) lost = acked.Where(a => !read.Contains(a)).ToList();
        output.WriteLine($"acknowledged {acked.Count}, lost {lost.Count}; failover SIGTERM {term1:F0} / {term2:F0} ms, SIGKILL {kill:F0} ms (session timeout {SessionTimeoutMs} ms)");
        if (Environment.GetEnvironmentVariable("SAMSA_SHUTDOWN_REPORT") is { Length: > 0 } path)
            File.WriteAllText(path, $"sigterm_ms={term1:F0},{term2:F0}\nsigkill_ms={kill:F0}\nacknowledged={acked.Count}\nlost={lost.Count}\n");

        Assert.Empty(unexpected);
        Assert.Empty(lost);
        Assert.True(term1 < SessionTimeoutMs && term2 < SessionTimeoutMs, $"SIGTERM failover {term1:F0} / {term2:F0} ms is not faster than the session timeout");
        Assert.True(h.Log.Contains("controlled shutdown succeeded"), "no controlled shutdown in the broker output");
    }
}
