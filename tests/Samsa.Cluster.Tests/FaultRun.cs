using System.Diagnostics;
using System.Globalization;
using System.Text;
using Samsa.Kafka.Broker.Client;

namespace Samsa.Cluster.Tests;

/// <summary>The fault scenario of issue 9, shared by the test and tests/replication-fault.sh.</summary>
public static class FaultRun
{
    private const short NotLeaderOrFollower = 6, RequestTimedOut = 7, NotEnoughReplicas = 19, NotEnoughReplicasAfterAppend = 20, DuplicateSequence = 46;

    public static async Task<FaultReport> RunAsync(string zkConnect, TimeSpan faultPhase, TimeSpan throughputPhase, Action<string> progress)
    {
        await using var h = new FaultHarness(zkConnect);
        try
        {
            return await RunAsync(h, faultPhase, throughputPhase, progress);
        }
        catch (Exception e)
        {
            throw new InvalidOperationException($"fault run failed: {e.Message}\n--- broker output ---\n{Tail(h.Log, 150)}", e);
        }
    }

    private static string Tail(string s, int lines) => string.Join('\n', s.Split('\n').TakeLast(lines));

    private static async Task<FaultReport> RunAsync(FaultHarness h, TimeSpan faultPhase, TimeSpan throughputPhase, Action<string> progress)
    {
        for (int id = 1; id <= 3; id++) await h.StartBrokerAsync(id);
        const string topic = "numbers";
        await h.CreateTopicAsync(topic, 3, 2);
        progress("three brokers up, topic numbers RF=3 min.insync.replicas=2");

        var acked = new List<int>();
        var failovers = new List<double>();
        var gate = new object();
        long killedAt = 0;   // Stopwatch ticks of the last leader kill, 0 when none pending
        using var stop = new CancellationTokenSource();
        const long producerId = 4242;
        int unexpected = 0;

        var producer = Task.Run(async () =>
        {
            int next = 0;
            while (!stop.IsCancellationRequested)
            {
                int leader = await h.LeaderOfAsync(topic, 0);
                if (leader < 0) { await Task.Delay(50); continue; }
                try
                {
                    await using var client = await KafkaWireClient.ConnectAsync("127.0.0.1", h.Port(leader));
                    while (!stop.IsCancellationRequested)
                    {
                        var value = Encoding.ASCII.GetBytes(next.ToString(CultureInfo.InvariantCulture));
                        short code = await h.ProduceAsync(client, topic, [(null, value)], producerId, next);
                        if (code is 0 or DuplicateSequence)
                        {
                            lock (gate)
                            {
                                acked.Add(next);
                                long k = Interlocked.Exchange(ref killedAt, 0);
                                if (k != 0) failovers.Add(Stopwatch.GetElapsedTime(k).TotalMilliseconds);
                            }
                            next++;
                            continue;
                        }
                        if (code is not (NotLeaderOrFollower or RequestTimedOut or NotEnoughReplicas or NotEnoughReplicasAfterAppend))
                        {
                            Interlocked.Increment(ref unexpected);
                            progress($"produce of {next} answered error {code}");
                        }
                        await Task.Delay(50);
                        break;   // re-read the leader
                    }
                }
                catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException)
                {
                    await Task.Delay(50);
                }
            }
        });

        int kills = 0;
        var until = DateTime.UtcNow + faultPhase;
        while (DateTime.UtcNow < until)
        {
            // Kill only with a full ISR: each kill is then "the loss of one broker".
            var full = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while ((await h.IsrOfAsync(topic, 0)).Count < 3 && DateTime.UtcNow < full) await Task.Delay(100);
            await Task.Delay(1500);
            int leader = await h.LeaderOfAsync(topic, 0);
            if (leader < 0) continue;
            // Failover is timed from the moment the process is gone (an answer the dying leader
            // sent just before the signal is not a failover).
            h.Kill(leader);
            Interlocked.Exchange(ref killedAt, Stopwatch.GetTimestamp());
            kills++;
            progress($"kill -9 broker {leader} (leader); acknowledged so far {acked.Count}");
            await Task.Delay(4000);
            await h.StartBrokerAsync(leader);
            progress($"broker {leader} restarted");
        }
        var settle = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while ((await h.IsrOfAsync(topic, 0)).Count < 3 && DateTime.UtcNow < settle) await Task.Delay(100);
        stop.Cancel();
        await producer;

        var read = await h.ReadAllAsync(topic);
        var numbers = read.Select(r => int.Parse(Encoding.ASCII.GetString(r.Value!), CultureInfo.InvariantCulture)).ToList();
        var counts = numbers.GroupBy(n => n).ToDictionary(g => g.Key, g => g.Count());
        int lost, duplicated;
        lock (gate)
        {
            lost = acked.Count(a => !counts.ContainsKey(a));
            duplicated = counts.Values.Count(c => c > 1);
        }
        int outOfOrder = numbers.Zip(numbers.Skip(1)).Count(p => p.Second <= p.First);
        progress($"read back {numbers.Count} records; unexpected produce errors {unexpected}");

        double rf3 = await ThroughputAsync(h, "tput-rf3", 3, 2, throughputPhase);
        double rf1 = await ThroughputAsync(h, "tput-rf1", 1, 1, throughputPhase);
        List<double> fo;
        lock (gate) fo = failovers.ToList();
        return new FaultReport(acked.Count, lost, duplicated, outOfOrder, kills, fo, rf3, rf1);
    }

    private static async Task<double> ThroughputAsync(FaultHarness h, string topic, short rf, int minIsr, TimeSpan phase)
    {
        await h.CreateTopicAsync(topic, rf, minIsr);
        int leader;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while ((leader = await h.LeaderOfAsync(topic, 0)) < 0 && DateTime.UtcNow < deadline) await Task.Delay(50);
        await using var client = await KafkaWireClient.ConnectAsync("127.0.0.1", h.Port(leader));
        var records = Enumerable.Range(0, 100).Select(_ => ((byte[]?)null, (byte[]?)new byte[100])).ToList();
        long count = 0;
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < phase)
        {
            short code = await h.ProduceAsync(client, topic, records, -1, -1);
            if (code != 0) throw new InvalidOperationException($"throughput produce to {topic}: error {code}");
            count += records.Count;
        }
        return count / sw.Elapsed.TotalSeconds;
    }
}
