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
        finally
        {
            // For a look at what the brokers did (tests/replication-fault.sh keeps it).
            if (Environment.GetEnvironmentVariable("SAMSA_FAULT_BROKER_LOG") is { Length: > 0 } path) File.WriteAllText(path, h.Log);
        }
    }

    private static string Tail(string s, int lines) => string.Join('\n', s.Split('\n').TakeLast(lines));

    private static async Task<FaultReport> RunAsync(FaultHarness h, TimeSpan faultPhase, TimeSpan throughputPhase, Action<string> progress)
    {
        for (int id = 1; id <= 3; id++) await h.StartBrokerAsync(id);
        const string topic = "numbers";
        await h.CreateTopicAsync(topic, 3, 2);
        progress($"three brokers up behind proxies, topic numbers RF=3 min.insync.replicas=2, session timeout {h.SessionTimeoutMs} ms, replica.lag.time.max.ms {h.LagTimeMaxMs}");

        var acked = new List<int>();
        var failovers = new Dictionary<FaultKind, List<double>>();
        var faults = new Dictionary<FaultKind, int>();
        var kinds0 = Enum.GetValues<FaultKind>();
        foreach (var k in kinds0) { failovers[k] = []; faults[k] = 0; }
        var gate = new object();
        long faultAt = 0;           // Stopwatch ticks of the last fault, 0 when its failover was measured
        int faultedBroker = -1;
        var faultKind = FaultKind.Kill;
        using var stop = new CancellationTokenSource();
        const long producerId = 4242;
        int unexpected = 0, clientTimeouts = 0;

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
                        short code;
                        try
                        {
                            // The client's request timeout (upstream request.timeout.ms): a paused or
                            // cut-off leader never answers, so give up and look for the leader again.
                            code = await h.ProduceAsync(client, topic, [(null, value)], producerId, next, AckTimeoutMs).WaitAsync(TimeSpan.FromMilliseconds(AckTimeoutMs + 1000));
                        }
                        catch (TimeoutException)
                        {
                            Interlocked.Increment(ref clientTimeouts);
                            break;
                        }
                        if (code is 0 or DuplicateSequence)
                        {
                            lock (gate)
                            {
                                acked.Add(next);
                                // Failover ends with the first acknowledgement from a broker other
                                // than the faulted one (an answer the old leader had sent before
                                // the fault is not a failover).
                                if (faultAt != 0 && leader != faultedBroker)
                                {
                                    failovers[faultKind].Add(Stopwatch.GetElapsedTime(faultAt).TotalMilliseconds);
                                    faultAt = 0;
                                }
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

        var probes = new List<(FaultKind Kind, int Broker, string Value, string Answer)>();
        // A client that still reaches the old leader (on its side of the partition, or as soon as
        // the paused process runs again) sends it one acks=all record. It must not be acknowledged
        // unless it really was replicated: acknowledged probes are checked in the read-back.
        async Task ProbeAsync(FaultKind kind, int broker, int port)
        {
            var value = $"zombie-{probes.Count}";
            string answer;
            var sw = Stopwatch.StartNew();
            try
            {
                await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", port);
                short code = await h.ProduceAsync(c, topic, [(null, Encoding.ASCII.GetBytes(value))], -1, -1, AckTimeoutMs)
                    .WaitAsync(TimeSpan.FromMilliseconds(AckTimeoutMs + 10000));
                answer = (code == 0 ? "acknowledged" : ErrorName(code)) + $" after {sw.ElapsedMilliseconds} ms";
            }
            catch (TimeoutException) { answer = $"no answer in {sw.ElapsedMilliseconds} ms"; }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException) { answer = "connection failed"; }
            probes.Add((kind, broker, value, answer));
            progress($"probe of old leader {broker} after {kind}: {answer}");
        }

        var elections = new Dictionary<FaultKind, List<double>>();
        foreach (var k in kinds0) elections[k] = [];
        var watchers = new List<Task>();
        void Mark(FaultKind kind, int broker)
        {
            long at = Stopwatch.GetTimestamp();
            lock (gate)
            {
                if (faultAt != 0) progress($"previous fault ({faultKind}) never saw a failover");
                faultKind = kind;
                faultedBroker = broker;
                faultAt = at;
                faults[kind]++;
            }
            // The cluster's part of the failover: until a surviving broker names another leader.
            watchers.Add(Task.Run(async () =>
            {
                var giveUp = DateTime.UtcNow + TimeSpan.FromSeconds(60);
                while (DateTime.UtcNow < giveUp)
                {
                    foreach (int id in new[] { 1, 2, 3 }.Where(x => x != broker))
                    {
                        int seen = await h.LeaderSeenByAsync(id, topic);
                        if (seen >= 0 && seen != broker)
                        {
                            lock (gate) elections[kind].Add(Stopwatch.GetElapsedTime(at).TotalMilliseconds);
                            return;
                        }
                    }
                    await Task.Delay(50);
                }
            }));
        }

        // Outages that outlast both the ZooKeeper session (the controller elects a new leader) and
        // replica.lag.time.max.ms (the old leader, when it runs again, finds its followers lagging
        // and tries to shrink the ISR to itself, which ZooKeeper must refuse).
        var outage = TimeSpan.FromMilliseconds(Math.Max(h.SessionTimeoutMs, h.LagTimeMaxMs) + 2000);
        var kinds = Enum.GetValues<FaultKind>();
        int round = 0, notRejoined = 0;
        var until = DateTime.UtcNow + faultPhase;
        while (DateTime.UtcNow < until || round < kinds.Length)
        {
            // Fault only a fully replicated partition on which every broker agrees: each fault is
            // then "the loss of one broker".
            // After a fault that means the old leader came back as a follower, truncated what it
            // wrote alone and caught up into the ISR.
            var full = DateTime.UtcNow + TimeSpan.FromSeconds(45);
            bool settled;
            while (!(settled = await h.SettledAsync(topic, 3)) && DateTime.UtcNow < full) await Task.Delay(200);
            if (!settled)
            {
                notRejoined++;
                progress("the partition did not get back a full ISR within 45 s");
            }
            await Task.Delay(1500);
            int leader = await h.LeaderOfAsync(topic, 0);
            if (leader < 0) continue;
            var kind = kinds[round++ % kinds.Length];
            switch (kind)
            {
                case FaultKind.Kill:
                    h.Kill(leader);
                    Mark(kind, leader);
                    progress($"kill -9 broker {leader} (leader); acknowledged so far {acked.Count}");
                    await Task.Delay(4000);
                    await h.StartBrokerAsync(leader);
                    progress($"broker {leader} restarted");
                    break;
                case FaultKind.Pause:
                    h.Pause(leader);
                    Mark(kind, leader);
                    progress($"SIGSTOP broker {leader} (leader) for {outage.TotalSeconds:F0} s; acknowledged so far {acked.Count}");
                    await Task.Delay(outage);
                    h.Resume(leader);
                    progress($"SIGCONT broker {leader}");
                    await ProbeAsync(kind, leader, h.Port(leader));
                    break;
                case FaultKind.Cut:
                    h.CutOff(leader);
                    Mark(kind, leader);
                    progress($"cut broker {leader} (leader) off ZooKeeper, replication and clients for {outage.TotalSeconds:F0} s; acknowledged so far {acked.Count}");
                    await Task.Delay(TimeSpan.FromMilliseconds(h.SessionTimeoutMs + 1500));
                    await ProbeAsync(kind, leader, h.RealPort(leader));
                    var rest = outage - TimeSpan.FromMilliseconds(h.SessionTimeoutMs + 1500);
                    if (rest > TimeSpan.Zero) await Task.Delay(rest);
                    h.Reconnect(leader);
                    progress($"broker {leader} reconnected");
                    break;
            }
        }
        var settle = DateTime.UtcNow + TimeSpan.FromSeconds(45);
        bool settledAtEnd;
        while (!(settledAtEnd = await h.SettledAsync(topic, 3)) && DateTime.UtcNow < settle) await Task.Delay(200);
        if (!settledAtEnd) notRejoined++;
        // Let the producer get one more record through after the last fault.
        var last = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (DateTime.UtcNow < last) { lock (gate) if (faultAt == 0) break; await Task.Delay(100); }
        stop.Cancel();
        await producer;
        await Task.WhenAll(watchers);

        var read = await h.ReadAllAsync(topic);
        var values = read.Select(r => Encoding.ASCII.GetString(r.Value!)).ToList();
        var numbers = values.Where(v => !v.StartsWith("zombie-", StringComparison.Ordinal)).Select(v => int.Parse(v, CultureInfo.InvariantCulture)).ToList();
        var counts = numbers.GroupBy(n => n).ToDictionary(g => g.Key, g => g.Count());
        int lost, duplicated;
        lock (gate)
        {
            lost = acked.Count(a => !counts.ContainsKey(a));
            duplicated = counts.Values.Count(c => c > 1);
        }
        int lostProbes = probes.Count(p => p.Answer.StartsWith("acknowledged", StringComparison.Ordinal) && !values.Contains(p.Value));
        int outOfOrder = numbers.Zip(numbers.Skip(1)).Count(p => p.Second <= p.First);
        progress($"read back {numbers.Count} records; unexpected produce errors {unexpected}; client-side timeouts {clientTimeouts}");

        double rf3 = await ThroughputAsync(h, "tput-rf3", 3, 2, throughputPhase);
        double rf1 = await ThroughputAsync(h, "tput-rf1", 1, 1, throughputPhase);
        Dictionary<FaultKind, List<double>> fo, el;
        lock (gate)
        {
            fo = failovers.ToDictionary(kv => kv.Key, kv => kv.Value.ToList());
            el = elections.ToDictionary(kv => kv.Key, kv => kv.Value.ToList());
        }
        return new FaultReport(acked.Count, lost + lostProbes, duplicated, outOfOrder, notRejoined, faults, fo, el,
            probes.Select(p => $"{p.Kind} of broker {p.Broker}: {p.Answer}").ToList(), rf3, rf1);
    }

    private const int AckTimeoutMs = 5000;

    private static string ErrorName(short code) => code switch
    {
        NotLeaderOrFollower => "NOT_LEADER_OR_FOLLOWER",
        RequestTimedOut => "REQUEST_TIMED_OUT",
        NotEnoughReplicas => "NOT_ENOUGH_REPLICAS",
        NotEnoughReplicasAfterAppend => "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
        74 => "FENCED_LEADER_EPOCH",
        _ => $"error {code}",
    };

    private static async Task<double> ThroughputAsync(FaultHarness h, string topic, short rf, int minIsr, TimeSpan phase)
    {
        await h.CreateTopicAsync(topic, rf, minIsr);
        // Each broker learns of its new leadership through its own ZooKeeper watch, so the broker
        // named leader in metadata may answer NOT_LEADER_OR_FOLLOWER (6) or NOT_ENOUGH_REPLICAS (19)
        // for a moment after creation: re-find the leader and retry, as a client would, within a bound.
        var settle = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        var records = Enumerable.Range(0, 100).Select(_ => ((byte[]?)null, (byte[]?)new byte[100])).ToList();
        KafkaWireClient? client = null;
        try
        {
            while (true)
            {
                int leader;
                while ((leader = await h.LeaderOfAsync(topic, 0)) < 0 && DateTime.UtcNow < settle) await Task.Delay(50);
                if (client is not null) await client.DisposeAsync();
                client = await KafkaWireClient.ConnectAsync("127.0.0.1", h.Port(leader));
                short first = await h.ProduceAsync(client, topic, records, -1, -1);
                if (first == 0) break;
                if ((first != 6 && first != 19) || DateTime.UtcNow >= settle)
                    throw new InvalidOperationException($"throughput produce to {topic}: error {first}");
                await Task.Delay(100);
            }
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
        finally
        {
            if (client is not null) await client.DisposeAsync();
        }
    }
}
