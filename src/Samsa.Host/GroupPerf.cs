using System.Diagnostics;
using Samsa.Kafka.Broker;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Host;

/// <summary>
/// <c>samsa perf group</c>: how long a classic-protocol group takes to become Stable, measured
/// against the delays that dominate it. Each member is its own connection and behaves as a
/// consumer does: JoinGroup (MEMBER_ID_REQUIRED first, KIP-394), SyncGroup (the leader sends one
/// assignment per member), then a Heartbeat every heartbeat interval, rejoining when told
/// REBALANCE_IN_PROGRESS.
/// Two figures per group size:
/// - formation: N members join an empty group at once; from the first JoinGroup until every member
///   has its SyncGroup answer. Bounded below by group.initial.rebalance.delay.ms.
/// With --protocol consumer (or both) the same figures for a KIP-848 consumer group come first
/// (<see cref="ConsumerGroupPerf"/>).
/// - member join: one member joins a Stable group of N; from its first JoinGroup until all N+1 have
///   the new generation's assignment. The others only learn of the rebalance from their next
///   heartbeat, so this is bounded below by about one heartbeat interval.
/// </summary>
internal static class GroupPerf
{
    private const int SessionTimeoutMs = 30_000, RebalanceTimeoutMs = 60_000;
    // ConsumerProtocolSubscription v0 with no topics and null user data (the coordinator keeps it
    // opaque; a real consumer would list its topics here).
    private static readonly byte[] Subscription = [0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF];

    public static async Task<int> RunAsync(string[] args)
    {
        var sizes = new List<int> { 10, 100 };
        int initialDelayMs = 3000, heartbeatMs = 3000, rounds = 3;
        string? bootstrap = null;
        string protocol = "classic";
        for (int i = 1; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--members":
                    sizes = Program.Value(args, ref i).Split(',').Select(s => int.TryParse(s, out int n) && n > 0 ? n
                        : throw new UsageException($"perf group: --members expects positive numbers, got '{s}'")).ToList();
                    break;
                case "--initial-delay-ms": initialDelayMs = Program.PositiveInt(args, ref i); break;
                case "--heartbeat-ms": heartbeatMs = Program.PositiveInt(args, ref i); break;
                case "--rounds": rounds = Program.PositiveInt(args, ref i); break;
                case "--bootstrap": bootstrap = Program.Value(args, ref i); break;
                case "--protocol":
                    protocol = Program.Value(args, ref i);
                    if (protocol is not ("classic" or "consumer" or "both")) throw new UsageException("perf group: --protocol expects classic, consumer or both");
                    break;
                default: throw new UsageException($"perf group: unknown option '{args[i]}'");
            }
        }

        KafkaBroker? broker = null;
        string? tempDir = null;
        string host;
        int port;
        if (bootstrap is null)
        {
            tempDir = Path.Combine(Path.GetTempPath(), "samsa-perf-group-" + Guid.NewGuid().ToString("N"));
            broker = new KafkaBroker(new BrokerConfig(new Dictionary<string, string>
            {
                ["broker.id"] = "1", ["listeners"] = "PLAINTEXT://127.0.0.1:0", ["log.dirs"] = tempDir,
                ["offsets.topic.replication.factor"] = "1",
                ["group.initial.rebalance.delay.ms"] = initialDelayMs.ToString(System.Globalization.CultureInfo.InvariantCulture),
                // The consumer protocol's members heartbeat at the interval the coordinator gives.
                // Upstream's bounds (5 s to 15 s by default) are widened to take the asked interval.
                ["group.consumer.heartbeat.interval.ms"] = heartbeatMs.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["group.consumer.min.heartbeat.interval.ms"] = Math.Min(heartbeatMs, 5000).ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["group.consumer.max.heartbeat.interval.ms"] = Math.Max(heartbeatMs, 15000).ToString(System.Globalization.CultureInfo.InvariantCulture),
            }));
            await broker.StartAsync();
            (host, port) = ("127.0.0.1", broker.BoundEndPoint.Port);
        }
        else
        {
            int colon = bootstrap.LastIndexOf(':');
            if (colon <= 0 || !int.TryParse(bootstrap[(colon + 1)..], out port)) throw new UsageException("perf group: --bootstrap expects HOST:PORT");
            host = bootstrap[..colon];
            Console.Out.WriteLine($"(against {bootstrap}: --initial-delay-ms only labels the figures; the broker's own setting applies)");
        }
        try
        {
            await using (var c = await KafkaWireClient.ConnectAsync(host, port))
            {
                var sw = Stopwatch.StartNew();
                while (true)
                {
                    var r = await c.SendAsync<FindCoordinatorResponse>(new FindCoordinatorRequest { Key = "samsa-perf-group" }, 2);
                    if (r!.ErrorCode == 0) break;
                    if (sw.Elapsed > TimeSpan.FromSeconds(30)) { Console.Error.WriteLine($"perf group: no coordinator (error {r.ErrorCode})"); return 1; }
                    await Task.Delay(100);
                }
            }
            if (protocol is "consumer" or "both")
            {
                Console.Out.WriteLine($"consumer protocol (KIP-848): group.consumer.heartbeat.interval.ms={heartbeatMs} (broker's own setting with --bootstrap), {rounds} rounds each, a topic of 2 partitions per member");
                foreach (int n in sizes)
                {
                    string topic = $"samsa-perf-cgroup-{n}-{Guid.NewGuid():N}"[..40];
                    int partitions = 2 * (n + 1);
                    var topicId = await ConsumerGroupPerf.CreateTopicAsync(host, port, topic, partitions);
                    var (formation, memberJoin) = await ConsumerGroupPerf.RunSizeAsync(host, port, topic, topicId, partitions, n, rounds);
                    Console.Out.WriteLine($"{n,4} members (consumer): formation {Summary(formation)}");
                    Console.Out.WriteLine($"{n,4} members (consumer): +1 joining -> all {n + 1} settled {Summary(memberJoin)} (heartbeat interval {heartbeatMs} ms)");
                }
                if (protocol == "consumer") return 0;
            }
            Console.Out.WriteLine($"classic protocol: group.initial.rebalance.delay.ms={initialDelayMs}, heartbeat interval {heartbeatMs} ms, session {SessionTimeoutMs} ms, {rounds} rounds each");
            foreach (int n in sizes)
            {
                var formation = new List<double>();
                var memberJoin = new List<double>();
                var joinOverhead = new List<double>();
                for (int round = 0; round < rounds; round++)
                {
                    var (f, j, wait) = await RoundAsync(host, port, $"samsa-perf-group-{n}-{round}-{Guid.NewGuid():N}", n, heartbeatMs);
                    formation.Add(f);
                    memberJoin.Add(j);
                    joinOverhead.Add(j - wait);
                }
                // Upstream's InitialDelayedJoin: members arriving during the first delay extend it once
                // more (up to the rebalance timeout), so a group of several forms after two delays.
                int floor = n > 1 ? 2 * initialDelayMs : initialDelayMs;
                Console.Out.WriteLine($"{n,4} members: formation {Summary(formation)} (floor {floor} ms = {(n > 1 ? "2 x " : "")}initial delay; overhead median {Median(formation) - floor:F0} ms)");
                Console.Out.WriteLine($"{n,4} members: +1 joining -> all {n + 1} Stable {Summary(memberJoin)} (heartbeat interval {heartbeatMs} ms; from the last member told REBALANCE_IN_PROGRESS to all Stable: median {Median(joinOverhead):F0} ms)");
            }
            return 0;
        }
        finally
        {
            if (broker is not null) await broker.DisposeAsync();
            if (tempDir is not null) try { Directory.Delete(tempDir, recursive: true); } catch (IOException) { }
        }
    }

    private static double Median(List<double> ms) => ms.Order().ToList()[ms.Count / 2];

    private static string Summary(List<double> ms)
    {
        var sorted = ms.Order().ToList();
        return $"min {sorted[0]:F0} / median {sorted[sorted.Count / 2]:F0} / max {sorted[^1]:F0} ms";
    }

    private static async Task<(double Formation, double MemberJoin, double HeartbeatWait)> RoundAsync(string host, int port, string group, int n, int heartbeatMs)
    {
        var members = new List<Member>();
        for (int i = 0; i < n + 1; i++) members.Add(new Member(await KafkaWireClient.ConnectAsync(host, port), group, heartbeatMs));
        using var stop = new CancellationTokenSource();
        try
        {
            var first = members.Take(n).ToList();
            var running = first.Select(m => Task.Run(() => m.RunAsync(stop.Token))).ToList();
            int gen1 = await WaitAllStableAsync(first, 0);
            // Wait a little so every member is in its heartbeat cycle, then one more joins.
            await Task.Delay(200);
            long joinAt = Stopwatch.GetTimestamp();
            var late = members[n];
            running.Add(Task.Run(() => late.RunAsync(stop.Token)));
            int gen2 = await WaitAllStableAsync(members, gen1);
            double memberJoin = Stopwatch.GetElapsedTime(joinAt, members.Max(m => m.StableTimestamp(gen2))).TotalMilliseconds;
            double formed = Stopwatch.GetElapsedTime(first.Min(m => m.Started), first.Max(m => m.StableTimestamp(gen1))).TotalMilliseconds;
            // The others learn of the rebalance from a heartbeat answer; the last of them to learn.
            double heartbeatWait = Stopwatch.GetElapsedTime(joinAt, first.Max(m => m.RebalanceNoticedAt)).TotalMilliseconds;
            stop.Cancel();
            await Task.WhenAll(running).WaitAsync(TimeSpan.FromSeconds(30));
            foreach (var m in members) if (m.Failure is { } e) throw new InvalidOperationException($"member failed: {e}");
            return (formed, memberJoin, heartbeatWait);
        }
        finally
        {
            foreach (var m in members) await m.Client.DisposeAsync();
        }
    }

    /// <summary>Waits until every member holds an assignment of one generation above <paramref name="after"/>.</summary>
    private static async Task<int> WaitAllStableAsync(List<Member> members, int after)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < TimeSpan.FromMinutes(2))
        {
            foreach (var m in members) if (m.Failure is { } e) throw new InvalidOperationException($"member failed: {e}");
            var gens = members.Select(m => m.Generation).Distinct().ToList();
            if (gens.Count == 1 && gens[0] > after) return gens[0];
            await Task.Delay(5);
        }
        throw new TimeoutException($"the group did not become Stable past generation {after} within 2 minutes");
    }

    private sealed class Member(KafkaWireClient client, string group, int heartbeatMs)
    {
        private readonly Dictionary<int, long> _stableAt = [];
        private string _memberId = "";
        public KafkaWireClient Client => client;
        public long Started { get; private set; }
        public volatile int Generation;
        /// <summary>When a heartbeat last answered REBALANCE_IN_PROGRESS (Stopwatch ticks).</summary>
        public long RebalanceNoticedAt;
        public volatile string? Failure;

        public long StableTimestamp(int generation) { lock (_stableAt) return _stableAt[generation]; }

        public async Task RunAsync(CancellationToken stop)
        {
            try
            {
                Started = Stopwatch.GetTimestamp();
                while (!stop.IsCancellationRequested)
                {
                    var join = await client.SendAsync<JoinGroupResponse>(new JoinGroupRequest
                    {
                        GroupId = group, MemberId = _memberId, SessionTimeoutMs = SessionTimeoutMs, RebalanceTimeoutMs = RebalanceTimeoutMs,
                        ProtocolType = "consumer", Protocols = [new JoinGroupRequest.JoinGroupRequestProtocol { Name = "range", Metadata = Subscription }],
                    }, 5);
                    if (join!.ErrorCode == (short)ErrorCode.MemberIdRequired) { _memberId = join.MemberId; continue; }
                    if (join.ErrorCode != 0) { Failure = $"JoinGroup error {join.ErrorCode}"; return; }
                    _memberId = join.MemberId;
                    var assignments = join.Leader == _memberId
                        ? join.Members.Select(m => new SyncGroupRequest.SyncGroupRequestAssignment { MemberId = m.MemberId, Assignment = Subscription }).ToList()
                        : [];
                    var sync = await client.SendAsync<SyncGroupResponse>(new SyncGroupRequest
                    {
                        GroupId = group, GenerationId = join.GenerationId, MemberId = _memberId, Assignments = assignments,
                    }, 3);
                    if (sync!.ErrorCode == (short)ErrorCode.RebalanceInProgress) continue;
                    if (sync.ErrorCode != 0) { Failure = $"SyncGroup error {sync.ErrorCode}"; return; }
                    lock (_stableAt) _stableAt[join.GenerationId] = Stopwatch.GetTimestamp();
                    Generation = join.GenerationId;
                    // Heartbeats until a rebalance starts (or the run ends).
                    while (!stop.IsCancellationRequested)
                    {
                        try { await Task.Delay(heartbeatMs, stop); } catch (OperationCanceledException) { break; }
                        var hb = await client.SendAsync<HeartbeatResponse>(new HeartbeatRequest { GroupId = group, GenerationId = join.GenerationId, MemberId = _memberId }, 3);
                        if (hb!.ErrorCode == (short)ErrorCode.RebalanceInProgress)
                        {
                            Interlocked.Exchange(ref RebalanceNoticedAt, Stopwatch.GetTimestamp());
                            break;
                        }
                        if (hb.ErrorCode != 0) { Failure = $"Heartbeat error {hb.ErrorCode}"; return; }
                    }
                }
                await client.SendAsync<LeaveGroupResponse>(new LeaveGroupRequest { GroupId = group, Members = [new() { MemberId = _memberId }] }, 3);
            }
            catch (Exception e) when (!stop.IsCancellationRequested)
            {
                Failure = e.Message;
            }
            catch (Exception)
            {
                // Connections close at the end of the round.
            }
        }
    }
}
