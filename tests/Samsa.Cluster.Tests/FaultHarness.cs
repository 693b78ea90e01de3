using System.Diagnostics;
using System.Globalization;
using System.Text;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Protocol.Messages;

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
    private readonly string _zk;
    private readonly string _root;
    private readonly Dictionary<int, Process> _procs = [];
    private readonly Dictionary<int, int> _ports = [];
    private readonly StringBuilder _log = new();
    private readonly int _sessionTimeoutMs;

    public FaultHarness(string zkConnect, int sessionTimeoutMs = 3000)
    {
        _zk = zkConnect + "/fault-" + Guid.NewGuid().ToString("N")[..8];
        _sessionTimeoutMs = sessionTimeoutMs;
        _root = Path.Combine(Path.GetTempPath(), "samsa-fault-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(_root);
    }

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

    public async Task StartBrokerAsync(int id)
    {
        var samsa = FindSamsa() ?? throw new InvalidOperationException("samsa host not built (run ./samsa once)");
        if (!_ports.TryGetValue(id, out int port)) _ports[id] = port = FreePort();
        var dir = Path.Combine(_root, $"broker-{id}");
        Directory.CreateDirectory(dir);
        var config = Path.Combine(dir, "server.properties");
        File.WriteAllText(config, string.Join('\n',
            $"broker.id={id}",
            $"listeners=PLAINTEXT://127.0.0.1:{port}",
            $"log.dirs={Path.Combine(dir, "logs")}",
            $"zookeeper.connect={_zk}",
            $"zookeeper.session.timeout.ms={_sessionTimeoutMs}",
            "zookeeper.connection.timeout.ms=20000",
            "replica.lag.time.max.ms=10000",
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
                var md = await c.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [] }, 12);
                if (md!.Brokers.Any(b => b.NodeId == id)) return;
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException) { }
            if (DateTime.UtcNow > deadline || p.HasExited) throw new InvalidOperationException($"broker {id} did not come up");
            await Task.Delay(100);
        }
    }

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
                }, 12);
                if (md is not null) return md;
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException) { }
        }
        return null;
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
            var recs = RecordBatchBuilder.ReadRecords((pd.Records ?? ReadOnlyMemory<byte>.Empty).Span);
            recs = recs.Where(x => x.Offset >= offset).ToList();
            if (recs.Count == 0) break;
            foreach (var x in recs) result.Add((x.Offset, x.Value));
            offset = recs[^1].Offset + 1;
            if (offset >= pd.HighWatermark) break;
        }
        return result;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var id in _procs.Keys.ToList()) Kill(id);
        await Task.Yield();
        try { Directory.Delete(_root, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>What the fault run measured.</summary>
public sealed record FaultReport(int Acknowledged, int Lost, int Duplicated, int OutOfOrder, int Kills,
    List<double> FailoverMs, double Rf3RecordsPerSec, double Rf1RecordsPerSec)
{
    public override string ToString() =>
        $"records acknowledged: {Acknowledged}\nrecords lost: {Lost}\nrecords duplicated: {Duplicated}\nout of order: {OutOfOrder}\n" +
        $"leader kills (SIGKILL): {Kills}\nfailover ms (leader death to first acknowledged produce): {string.Join(", ", FailoverMs.Select(f => f.ToString("F0", CultureInfo.InvariantCulture)))}\n" +
        $"throughput acks=all, 100-record batches, one request in flight: RF=3 {Rf3RecordsPerSec:F0} records/s, RF=1 {Rf1RecordsPerSec:F0} records/s\n";
}
