using System.Diagnostics;
using System.Globalization;
using System.Text;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Records;
using FaultProxy = Samsa.Testing.FaultProxy;

namespace Samsa.Cluster.Tests;

/// <summary>
/// Three `samsa broker` processes on one coordination server, each killed with SIGKILL and
/// restarted in turn while a producer with acks=all writes a numbered sequence; afterwards the
/// partition is read back and every acknowledged number must be there exactly once, in order.
///
/// The producer is idempotent in the KIP-98 sense without InitProducerId: it uses a fixed
/// producer id and per-record sequence numbers, so a retry of a record whose acknowledgement was
/// lost is recognised by the (replicated) producer state instead of being written twice.
/// </summary>
public sealed class FaultHarness : IAsyncDisposable
{
    private readonly string _root;
    private readonly Dictionary<int, Process> _procs = [];
    private readonly Dictionary<int, int> _ports = [];
    private readonly Dictionary<int, int> _realPorts = [];
    private readonly Dictionary<int, FaultProxy> _kafkaProxies = [];
    private readonly Dictionary<int, FaultProxy> _zkProxies = [];
    private readonly HashSet<int> _cut = [];
    private readonly StringBuilder _log = new();
    private readonly string _zkServer;
    private readonly string _chroot;

    public FaultHarness(string zkConnect, int sessionTimeoutMs = 3000, int lagTimeMaxMs = 6000)
    {
        _zkServer = zkConnect;
        _chroot = "/fault-" + Guid.NewGuid().ToString("N")[..8];
        SessionTimeoutMs = sessionTimeoutMs;
        LagTimeMaxMs = lagTimeMaxMs;
        _root = Path.Combine(Path.GetTempPath(), "samsa-fault-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(_root);
    }

    public int SessionTimeoutMs { get; }
    public int LagTimeMaxMs { get; }

    public string Log { get { lock (_log) return _log.ToString(); } }

    /// <summary>The `samsa` launcher at the repository root (it builds the host when stale).</summary>
    public static string? FindSamsa()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "src", "Samsa.Host", "bin", "Release", "net10.0", "samsa");
            if (File.Exists(Path.Combine(dir.FullName, "Compat.sln")))
                return File.Exists(candidate) ? candidate : null;
        }
        return null;
    }

    private static int FreePort()
    {
        var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        l.Start();
        int port = ((System.Net.IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    /// <summary>Starts broker <paramref name="id"/> (again). Every connection to and from it passes a
    /// <see cref="FaultProxy"/>: its advertised listener is a proxy in front of its real one (so
    /// clients and other brokers' replica fetchers reach it only through that proxy), and its
    /// zookeeper.connect names a proxy of its own in front of the coordination server.</summary>
    public async Task StartBrokerAsync(int id)
    {
        var samsa = FindSamsa() ?? throw new InvalidOperationException("samsa host not built (run ./samsa once)");
        if (!_realPorts.TryGetValue(id, out int realPort))
        {
            _realPorts[id] = realPort = FreePort();
            var kafka = new FaultProxy(realPort)
            {
                Identify = FaultProxy.KafkaBrokerSource,
                Severed = from => IsCut(id) || (from >= 0 && IsCut(from)),
            };
            var zk = new FaultProxy(LocalCluster.PortOf(_zkServer)) { Identify = _ => id, Severed = _ => IsCut(id) };
            _kafkaProxies[id] = kafka;
            _zkProxies[id] = zk;
            _ports[id] = kafka.Port;
        }
        int port = _ports[id];
        var dir = Path.Combine(_root, $"broker-{id}");
        Directory.CreateDirectory(dir);
        var config = Path.Combine(dir, "server.properties");
        File.WriteAllText(config, string.Join('\n',
            $"broker.id={id}",
            $"listeners=PLAINTEXT://127.0.0.1:{realPort}",
            $"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
            $"log.dirs={Path.Combine(dir, "logs")}",
            $"zookeeper.connect={_zkProxies[id].Address}{_chroot}",
            $"zookeeper.session.timeout.ms={SessionTimeoutMs}",
            "zookeeper.connection.timeout.ms=20000",
            $"replica.lag.time.max.ms={LagTimeMaxMs}",
            "offsets.topic.replication.factor=1",
            "transaction.state.log.replication.factor=1") + "\n");
        var psi = new ProcessStartInfo(samsa, ["broker", "--config", config])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start samsa broker");
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.AppendLine($"[{id}] {e.Data}"); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.AppendLine($"[{id}!] {e.Data}"); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        _procs[id] = p;
        // Ready when the broker lists itself: registered in ZooKeeper, not just listening.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            try
            {
                await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", port);
                var md = await c.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [] }, 12).WaitAsync(TimeSpan.FromSeconds(5));
                if (md!.Brokers.Any(b => b.NodeId == id)) return;
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or TimeoutException) { }
            if (DateTime.UtcNow > deadline || p.HasExited) throw new InvalidOperationException($"broker {id} did not come up");
            await Task.Delay(100);
        }
    }

    private bool IsCut(int id) { lock (_cut) return _cut.Contains(id); }

    /// <summary>Cuts broker <paramref name="id"/> off the network: its ZooKeeper link, the replica
    /// fetches from and to it and every client connection to it are black-holed.</summary>
    public void CutOff(int id)
    {
        lock (_cut) _cut.Add(id);
        foreach (var proxy in _kafkaProxies.Values.Concat(_zkProxies.Values)) proxy.Sever();
    }

    /// <summary>Ends the partition: the black-holed connections are closed, new ones pass.</summary>
    public void Reconnect(int id)
    {
        lock (_cut) _cut.Remove(id);
        foreach (var proxy in _kafkaProxies.Values.Concat(_zkProxies.Values)) proxy.Heal();
    }

    /// <summary>SIGSTOP: the process keeps its sockets and state but runs nothing, like a long GC
    /// pause or a stalled VM; SIGCONT resumes it where it was.</summary>
    public void Pause(int id) => Signal(id, "STOP");
    public void Resume(int id) => Signal(id, "CONT");

    private void Signal(int id, string signal)
    {
        if (!_procs.TryGetValue(id, out var p)) return;
        using var kill = Process.Start(new ProcessStartInfo("kill", [$"-{signal}", p.Id.ToString(CultureInfo.InvariantCulture)]) { UseShellExecute = false })
            ?? throw new InvalidOperationException("could not run kill");
        kill.WaitForExit();
        if (kill.ExitCode != 0) throw new InvalidOperationException($"kill -{signal} {p.Id} failed");
    }

    /// <summary>The broker's own listener, behind its proxy: reachable during a cut, as by a client
    /// on the broker's side of a partition.</summary>
    public int RealPort(int id) => _realPorts[id];

    /// <summary>SIGKILL: no shutdown code runs; the ZooKeeper session lingers until it times out.</summary>
    public void Kill(int id)
    {
        if (!_procs.Remove(id, out var p)) return;
        try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        p.WaitForExit(5000);
        p.Dispose();
    }

    /// <summary>SIGTERM: the broker stops cleanly (controlled shutdown first); returns once the
    /// process has exited.</summary>
    public async Task TerminateAsync(int id)
    {
        if (!_procs.Remove(id, out var p)) return;
        using (var kill = Process.Start("kill", ["-TERM", p.Id.ToString(CultureInfo.InvariantCulture)])) await kill!.WaitForExitAsync();
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        try { await p.WaitForExitAsync(bound.Token); }
        catch (OperationCanceledException) { p.Kill(entireProcessTree: true); }
        p.Dispose();
    }

    public IEnumerable<int> Ports => _ports.Values;
    public int Port(int id) => _ports[id];

    public async Task<MetadataResponse?> TryMetadataAsync(string topic)
    {
        foreach (var port in _ports.Values.OrderBy(_ => Random.Shared.Next()))
        {
            try
            {
                await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", port);
                var md = await c.SendAsync<MetadataResponse>(new MetadataRequest
                {
                    Topics = [new MetadataRequest.MetadataRequestTopic { Name = topic }], AllowAutoTopicCreation = false,
                }, 12).WaitAsync(TimeSpan.FromSeconds(2));
                if (md is not null) return md;
            }
            // A paused or cut-off broker accepts the connection and never answers.
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or TimeoutException) { }
        }
        return null;
    }

    /// <summary>The leader of <paramref name="topic"/>-0 in broker <paramref name="id"/>'s metadata; -1 when unknown or unreachable.</summary>
    public async Task<int> LeaderSeenByAsync(int id, string topic)
    {
        try
        {
            await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", _ports[id]);
            var md = await c.SendAsync<MetadataResponse>(new MetadataRequest
            {
                Topics = [new MetadataRequest.MetadataRequestTopic { Name = topic }], AllowAutoTopicCreation = false,
            }, 12).WaitAsync(TimeSpan.FromSeconds(2));
            var t = md?.Topics.FirstOrDefault(x => x.Name == topic);
            return t is null || t.ErrorCode != 0 ? -1 : t.Partitions.FirstOrDefault(x => x.PartitionIndex == 0)?.LeaderId ?? -1;
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or TimeoutException) { return -1; }
    }

    public async Task<int> LeaderOfAsync(string topic, int partition)
    {
        var md = await TryMetadataAsync(topic);
        var t = md?.Topics.FirstOrDefault(x => x.Name == topic);
        var p = t?.Partitions.FirstOrDefault(x => x.PartitionIndex == partition);
        return p is null || t!.ErrorCode != 0 ? -1 : p.LeaderId;
    }

    public async Task<List<int>> IsrOfAsync(string topic, int partition)
    {
        var md = await TryMetadataAsync(topic);
        var p = md?.Topics.FirstOrDefault(x => x.Name == topic)?.Partitions.FirstOrDefault(x => x.PartitionIndex == partition);
        return p?.IsrNodes.ToList() ?? [];
    }

    public async Task CreateTopicAsync(string topic, short replicationFactor, int minIsr)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            try
            {
                await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", _ports.Values.First());
                var r = await c.SendAsync<CreateTopicsResponse>(new CreateTopicsRequest
                {
                    TimeoutMs = 30000,
                    Topics =
                    [
                        new CreateTopicsRequest.CreatableTopic
                        {
                            Name = topic, NumPartitions = 1, ReplicationFactor = replicationFactor,
                            Configs = [new CreateTopicsRequest.CreatableTopicConfig { Name = "min.insync.replicas", Value = minIsr.ToString(CultureInfo.InvariantCulture) }],
                        },
                    ],
                }, 5);
                short code = r!.Topics[0].ErrorCode;
                if (code is 0 or 36) break;
                throw new InvalidOperationException($"CreateTopics {topic}: error {code} {r.Topics[0].ErrorMessage}");
            }
            catch (IOException) when (DateTime.UtcNow < deadline) { await Task.Delay(200); }
        }
        while ((await IsrOfAsync(topic, 0)).Count < replicationFactor)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{topic} never had a full ISR");
            await Task.Delay(100);
        }
    }

    /// <summary>Sends one batch with acks=all to the partition's current leader; returns the
    /// produce error code (0 = acknowledged) or -1 when no leader could be reached.</summary>
    public async Task<short> ProduceAsync(KafkaWireClient client, string topic, IReadOnlyList<(byte[]? Key, byte[]? Value)> records,
        long producerId, int baseSequence, int timeoutMs = 10000)
    {
        var batch = RecordBatchBuilder.Build(records, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), producerId, producerId >= 0 ? (short)0 : (short)-1, baseSequence);
        var response = await client.SendAsync<ProduceResponse>(new ProduceRequest
        {
            Acks = -1, TimeoutMs = timeoutMs,
            TopicData = [new ProduceRequest.TopicProduceData { Name = topic, PartitionData = [new ProduceRequest.PartitionProduceData { Index = 0, Records = batch }] }],
        }, 9);
        return response!.Responses[0].PartitionResponses[0].ErrorCode;
    }

    /// <summary>Reads the whole partition from its leader (a consumer fetch: up to the high watermark).</summary>
    public async Task<List<(long Offset, byte[]? Value)>> ReadAllAsync(string topic)
    {
        var result = new List<(long, byte[]?)>();
        int leader = await LeaderOfAsync(topic, 0);
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", _ports[leader]);
        long offset = 0;
        while (true)
        {
            var r = await c.SendAsync<FetchResponse>(new FetchRequest
            {
                ReplicaId = -1, MaxWaitMs = 0, MinBytes = 0, MaxBytes = 4 << 20, SessionEpoch = -1,
                Topics = [new FetchRequest.FetchTopic { Topic = topic, Partitions = [new FetchRequest.FetchPartition { Partition = 0, FetchOffset = offset, PartitionMaxBytes = 4 << 20 }] }],
            }, 12);
            var pd = r!.Responses[0].Partitions[0];
            if (pd.ErrorCode != 0) throw new InvalidOperationException($"fetch error {pd.ErrorCode}");
            var recs = RecordBatch.ReadRecords((pd.Records ?? ReadOnlyMemory<byte>.Empty).Span);
            recs = recs.Where(x => x.Offset >= offset).ToList();
            if (recs.Count == 0) break;
            foreach (var x in recs) result.Add((x.Offset, x.Value));
            offset = recs[^1].Offset + 1;
            if (offset >= pd.HighWatermark) break;
        }
        return result;
    }

    /// <summary>True when every broker answers and all agree that <paramref name="topic"/>-0 has a
    /// leader and a full ISR of <paramref name="replicas"/> (a resumed broker may report a stale view).</summary>
    public async Task<bool> SettledAsync(string topic, int replicas)
    {
        int leader = -2;
        foreach (var port in _ports.Values)
        {
            try
            {
                await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", port);
                var md = await c.SendAsync<MetadataResponse>(new MetadataRequest
                {
                    Topics = [new MetadataRequest.MetadataRequestTopic { Name = topic }], AllowAutoTopicCreation = false,
                }, 12).WaitAsync(TimeSpan.FromSeconds(2));
                var p = md?.Topics.FirstOrDefault(x => x.Name == topic)?.Partitions.FirstOrDefault(x => x.PartitionIndex == 0);
                if (p is null || p.LeaderId < 0 || p.IsrNodes.Count < replicas || (leader != -2 && leader != p.LeaderId)) return false;
                leader = p.LeaderId;
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or TimeoutException) { return false; }
        }
        return true;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var id in _procs.Keys.ToList()) Kill(id);
        foreach (var proxy in _kafkaProxies.Values.Concat(_zkProxies.Values)) await proxy.DisposeAsync();
        try { Directory.Delete(_root, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>How the partition leader is taken away.</summary>
public enum FaultKind { Kill, Pause, Cut }

/// <summary>What the fault run measured.</summary>
public sealed record FaultReport(int Acknowledged, int Lost, int Duplicated, int OutOfOrder, int NotRejoined,
    Dictionary<FaultKind, int> Faults, Dictionary<FaultKind, List<double>> FailoverMs, Dictionary<FaultKind, List<double>> ElectionMs, List<string> Probes,
    double Rf3RecordsPerSec, double Rf1RecordsPerSec)
{
    private static string Describe(FaultKind k) => k switch
    {
        FaultKind.Kill => "kill -9, restart after 4 s",
        FaultKind.Pause => "SIGSTOP, SIGCONT after the session timeout and replica.lag.time.max.ms",
        _ => "cut off ZooKeeper, replication and clients, reconnected after the same outage",
    };

    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"records acknowledged: {Acknowledged}\nrecords lost: {Lost}\nrecords duplicated: {Duplicated}\nout of order: {OutOfOrder}\nfaults after which the old leader did not rejoin the ISR within 45 s: {NotRejoined}\n");
        foreach (var (kind, n) in Faults)
        {
            var f = FailoverMs[kind];
            sb.Append(CultureInfo.InvariantCulture, $"leader {kind} ({Describe(kind)}): {n}; failover ms (fault to first acknowledged produce on a new leader): ");
            sb.Append(string.Join(", ", f.Select(x => x.ToString("F0", CultureInfo.InvariantCulture))));
            if (f.Count > 0) sb.Append(CultureInfo.InvariantCulture, $" (median {f.Order().ElementAt(f.Count / 2):F0})");
            var e = ElectionMs[kind];
            sb.Append("; new leader visible in a surviving broker's metadata after ms: ");
            sb.Append(string.Join(", ", e.Select(x => x.ToString("F0", CultureInfo.InvariantCulture))));
            sb.Append('\n');
        }
        sb.Append(CultureInfo.InvariantCulture, $"old leader probed with an acks=all record (after SIGCONT / during the cut): {(Probes.Count == 0 ? "none" : string.Join("; ", Probes))}\n");
        sb.Append(CultureInfo.InvariantCulture, $"throughput acks=all through the proxies, 100-record batches, one request in flight: RF=3 {Rf3RecordsPerSec:F0} records/s, RF=1 {Rf1RecordsPerSec:F0} records/s\n");
        return sb.ToString();
    }
}
