using System.Diagnostics;
using System.Globalization;
using System.Text;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Compression;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Host;

/// <summary>
/// <c>samsa perf produce|consume|matrix</c> (<c>fetch</c> is an alias of <c>consume</c>): drives a
/// broker over the wire and prints records/s, MB/s, produce latency (write of a request to its
/// response) p50/p99/max, the broker's CPU seconds per GB and its peak RSS. Without --bootstrap the
/// broker is this same executable started as a child process (<c>samsa broker</c>) with a fresh log
/// directory, so its CPU and memory are its own; with --bootstrap they are read only when
/// --broker-pid names the (local) broker process.
/// </summary>
internal static class PerfRunner
{
    private sealed class Options
    {
        public string Mode = "produce";
        public long? Records;
        public long Bytes = 500_000_000;
        public int RecordSize = 1024;
        public int BatchBytes = 16384;
        public int? BatchRecords;
        public int Inflight = 5;
        public short Acks = 1;
        public CompressionType Compression = CompressionType.None;
        public int Partitions = 1;
        public short ReplicationFactor = 1;
        public string Payload = "text";
        public string Topic = "samsa-perf";
        public string? Bootstrap;
        public int? BrokerPid;
        public string? Data;
        public long? WarmupBytes;
        public int FetchMaxBytes = 52428800;        // fetch.max.bytes default
        public int PartitionFetchBytes = 1048576;   // max.partition.fetch.bytes default
        public List<KeyValuePair<string, string>> BrokerProps = [];
        /// <summary>--tls: the broker's only listener is SSL (a CA and certificate made for the run)
        /// and every connection runs over TLS; with --bootstrap, --tls-ca names the CA file.</summary>
        public bool Tls;
        public string? TlsCa;
    }

    private sealed record Cell(int RecordSize, short Acks, CompressionType Compression, bool Consume);

    private sealed class Row
    {
        public required string Name;
        public long Records;
        public long ValueBytes;
        public long WireBytes;
        public TimeSpan Elapsed;
        public double[]? Latencies;
        public double? BrokerCpu;
        public double ClientCpu;
        public long? BrokerPeakRss;
    }

    public static async Task<int> RunAsync(string[] args)
    {
        var o = Parse(args);
        var load0 = LoadAverage();
        var cells = new List<Cell>();
        if (o.Mode == "matrix")
        {
            foreach (int size in new[] { 100, 1024 })
                foreach (short acks in new short[] { 1, -1 })
                    foreach (var c in new[] { CompressionType.None, CompressionType.Lz4 })
                        cells.Add(new Cell(size, acks, c, false));
        }
        else cells.Add(new Cell(o.RecordSize, o.Acks, o.Compression, o.Mode == "consume"));

        PrintPreamble(o, args, load0);
        var rows = new List<Row>();
        foreach (var cell in cells)
        {
            // The matrix adds the consume row to the 1 KiB, acks=1, uncompressed cell, reading back what it wrote.
            bool consume = cell.Consume || (o.Mode == "matrix" && cell is { RecordSize: 1024, Acks: 1, Compression: CompressionType.None });
            try
            {
                var produced = await RunCellAsync(o, cell, consume);
                foreach (var r in produced) { rows.Add(r); Console.Error.WriteLine(FormatRow(r)); }
            }
            catch (Exception e) when (e is IOException or InvalidOperationException or System.Net.Sockets.SocketException)
            {
                Console.Error.WriteLine($"perf: {CellName(cell)} failed: {e.Message}");
                return 1;
            }
        }
        var load1 = LoadAverage();
        Console.Out.WriteLine();
        Console.Out.WriteLine(TableHeader);
        Console.Out.WriteLine(TableRule);
        foreach (var r in rows) Console.Out.WriteLine(FormatRow(r));
        Console.Out.WriteLine();
        Console.Out.WriteLine($"load average (1/5/15 min) before: {load0}; after: {load1}; {Environment.ProcessorCount} cores");
        return 0;
    }

    private static Options Parse(string[] args)
    {
        if (args.Length == 0 || args[0] is not ("produce" or "consume" or "fetch" or "matrix"))
            throw new UsageException("perf: expected 'produce', 'consume' (or 'fetch') or 'matrix'");
        var o = new Options { Mode = args[0] == "fetch" ? "consume" : args[0] };
        for (int i = 1; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--records": o.Records = Program.PositiveInt(args, ref i); break;
                case "--bytes": o.Bytes = PositiveLong(args, ref i); break;
                case "--record-size": o.RecordSize = Program.PositiveInt(args, ref i); break;
                case "--batch": o.BatchRecords = Program.PositiveInt(args, ref i); break;
                case "--batch-bytes": o.BatchBytes = Program.PositiveInt(args, ref i); break;
                case "--inflight": o.Inflight = Program.PositiveInt(args, ref i); break;
                case "--partitions": o.Partitions = Program.PositiveInt(args, ref i); break;
                case "--replication-factor": o.ReplicationFactor = (short)Math.Min(short.MaxValue, Program.PositiveInt(args, ref i)); break;
                case "--bootstrap": o.Bootstrap = Program.Value(args, ref i); break;
                case "--broker-pid": o.BrokerPid = Program.PositiveInt(args, ref i); break;
                case "--topic": o.Topic = Program.Value(args, ref i); break;
                case "--data": o.Data = Program.Value(args, ref i); break;
                case "--warmup-bytes": o.WarmupBytes = PositiveLong(args, ref i, allowZero: true); break;
                case "--fetch-max-bytes": o.FetchMaxBytes = Program.PositiveInt(args, ref i); break;
                case "--partition-fetch-bytes": o.PartitionFetchBytes = Program.PositiveInt(args, ref i); break;
                case "--payload":
                    o.Payload = Program.Value(args, ref i);
                    if (o.Payload is not ("text" or "random")) throw new UsageException("perf: --payload must be text or random");
                    break;
                case "--acks":
                    var a = Program.Value(args, ref i);
                    o.Acks = a switch { "0" => 0, "1" => 1, "-1" or "all" => -1, _ => throw new UsageException($"perf: --acks must be 0, 1 or all, got '{a}'") };
                    break;
                case "--compression":
                    var c = Program.Value(args, ref i);
                    o.Compression = c switch
                    {
                        "none" => CompressionType.None, "gzip" => CompressionType.Gzip, "snappy" => CompressionType.Snappy,
                        "lz4" => CompressionType.Lz4, "zstd" => CompressionType.Zstd,
                        _ => throw new UsageException($"perf: --compression must be none, gzip, snappy, lz4 or zstd, got '{c}'"),
                    };
                    break;
                case "--tls": o.Tls = true; break;
                case "--tls-ca": o.TlsCa = Program.Value(args, ref i); o.Tls = true; break;
                case "--broker-prop":
                    var kv = Program.Value(args, ref i);
                    int eq = kv.IndexOf('=');
                    if (eq <= 0) throw new UsageException($"perf: --broker-prop expects key=value, got '{kv}'");
                    o.BrokerProps.Add(new(kv[..eq], kv[(eq + 1)..]));
                    break;
                default: throw new UsageException($"perf: unknown option '{args[i]}'");
            }
        }
        return o;
    }

    private static long PositiveLong(string[] args, ref int i, bool allowZero = false)
    {
        var name = args[i];
        var v = Program.Value(args, ref i);
        if (!long.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out long n) || n < 0 || (n == 0 && !allowZero))
            throw new UsageException($"option '{name}' expects a positive integer, got '{v}'");
        return n;
    }

    private static async Task<List<Row>> RunCellAsync(Options o, Cell cell, bool consume)
    {
        var rows = new List<Row>();
        int recordsPerBatch = o.BatchRecords ?? Math.Max(1, o.BatchBytes / cell.RecordSize);
        long records = o.Records ?? Math.Max(1, o.Bytes / cell.RecordSize);
        int requests = (int)Math.Max(1, (records + recordsPerBatch - 1) / recordsPerBatch);
        long warmupBytes = o.WarmupBytes ?? Math.Min(64_000_000, o.Bytes / 10);
        int warmupRequests = (int)(warmupBytes / ((long)cell.RecordSize * recordsPerBatch));

        PerfBrokerProcess? child = null;
        string? tempDir = null;
        string host;
        int port;
        int? brokerPid = o.BrokerPid;
        Samsa.Net.TlsClientOptions? clientTls = null;
        if (o.Bootstrap is null)
        {
            string dir = o.Data is null
                ? tempDir = Path.Combine(Path.GetTempPath(), "samsa-perf-" + Guid.NewGuid().ToString("N"))
                : Path.Combine(o.Data, "cell-" + Guid.NewGuid().ToString("N")[..8]);
            var props = o.BrokerProps;
            if (o.Tls)
            {
                Directory.CreateDirectory(dir);
                (props, clientTls) = PerfTls.Prepare(dir, props);
            }
            child = await PerfBrokerProcess.StartAsync(dir, props);
            (host, port, brokerPid) = (child.Host, child.Port, child.Pid);
        }
        else
        {
            int colon = o.Bootstrap.LastIndexOf(':');
            if (colon <= 0 || !int.TryParse(o.Bootstrap[(colon + 1)..], out port)) throw new UsageException("perf: --bootstrap expects HOST:PORT");
            host = o.Bootstrap[..colon];
            if (o.Tls) clientTls = PerfTls.Client(o.TlsCa);
        }
        try
        {
            await using var connection = await PerfConnection.ConnectAsync(host, port, clientTls);
            int correlation = 1;
            string topic = o.Bootstrap is null ? o.Topic : $"{o.Topic}-{Guid.NewGuid().ToString("N")[..8]}";
            string warmTopic = topic + "-warmup";
            var create = new CreateTopicsRequest
            {
                Topics =
                [
                    new CreateTopicsRequest.CreatableTopic { Name = topic, NumPartitions = o.Partitions, ReplicationFactor = o.ReplicationFactor },
                    new CreateTopicsRequest.CreatableTopic { Name = warmTopic, NumPartitions = o.Partitions, ReplicationFactor = o.ReplicationFactor },
                ],
                TimeoutMs = 30000,
            };
            var created = await connection.RequestAsync<CreateTopicsResponse>(create, 7, correlation++);
            foreach (var t in created.Topics)
                if (t.ErrorCode != 0 && t.ErrorCode != (short)ErrorCode.TopicAlreadyExists)
                    throw new IOException($"creating topic {t.Name} failed: {(ErrorCode)t.ErrorCode} {t.ErrorMessage}");

            // Each partition's requests go to its leader (several brokers with --bootstrap to a
            // cluster): one connection per leader, all producing at once.
            var leaders = await LeadersAsync(connection, [topic, warmTopic], o.Partitions, correlation);
            var groups = new List<(PerfConnection Connection, int[] Partitions, int[] WarmPartitions)>();
            foreach (var (endpoint, parts) in leaders[topic])
                groups.Add((await PerfConnection.ConnectAsync(endpoint.Host, endpoint.Port, clientTls), parts.ToArray(),
                    leaders[warmTopic].GetValueOrDefault(endpoint)?.ToArray() ?? []));
            try
            {
                // Warm-up (not measured): JIT tiering and first segment/index allocation in the broker.
                short warmAcks = cell.Acks == 0 ? (short)1 : cell.Acks;
                if (warmupRequests > 0)
                    await Task.WhenAll(groups.Where(g => g.WarmPartitions.Length > 0).Select(g =>
                    {
                        var warmFrames = PerfLoad.BuildFrames(warmTopic, g.WarmPartitions, warmAcks, cell.Compression, cell.RecordSize, recordsPerBatch, o.Payload, 2, out long wb);
                        return PerfLoad.ProduceAsync(g.Connection, warmFrames, warmAcks, Share(warmupRequests, g.WarmPartitions.Length, o.Partitions), o.Inflight, recordsPerBatch, cell.RecordSize, wb, 1_000_000);
                    }));

                var work = groups.Select(g =>
                {
                    var frames = PerfLoad.BuildFrames(topic, g.Partitions, cell.Acks, cell.Compression, cell.RecordSize, recordsPerBatch, o.Payload, 8, out long wireBatch);
                    return (g.Connection, Frames: frames, WireBatch: wireBatch, Requests: Share(requests, g.Partitions.Length, o.Partitions));
                }).ToList();
                double b0 = BrokerCpu(brokerPid), c0 = ClientCpu();
                var sw = Stopwatch.StartNew();
                var outcomes = await Task.WhenAll(work.Select(w =>
                    PerfLoad.ProduceAsync(w.Connection, w.Frames, cell.Acks, w.Requests, o.Inflight, recordsPerBatch, cell.RecordSize, w.WireBatch, 2_000_000)));
                var elapsed = sw.Elapsed;
                double b1 = BrokerCpu(brokerPid), c1 = ClientCpu();
                string suffix = (o.Partitions > 1 ? $" p{o.Partitions}" : "") + (o.ReplicationFactor > 1 ? $" rf{o.ReplicationFactor}" : "");
                rows.Add(new Row
                {
                    Name = CellName(cell) + suffix,
                    Records = outcomes.Sum(x => x.Records), ValueBytes = outcomes.Sum(x => x.ValueBytes), WireBytes = outcomes.Sum(x => x.WireBytes), Elapsed = elapsed,
                    Latencies = outcomes.SelectMany(x => x.LatenciesMs).ToArray(), BrokerCpu = brokerPid is null ? null : b1 - b0, ClientCpu = c1 - c0,
                    BrokerPeakRss = PeakRss(brokerPid),
                });
                if (consume)
                {
                    var consumers = new List<(PerfConnection Connection, int[] Partitions, long Records)>();
                    for (int g = 0; g < groups.Count; g++)
                        consumers.Add((await PerfConnection.ConnectAsync(leaders[topic].Keys.ElementAt(g).Host, leaders[topic].Keys.ElementAt(g).Port, clientTls), groups[g].Partitions, outcomes[g].Records));
                    try
                    {
                        b0 = BrokerCpu(brokerPid); c0 = ClientCpu();
                        sw.Restart();
                        var consumed = await Task.WhenAll(consumers.Select(c =>
                            PerfLoad.ConsumeAsync(c.Connection, topic, c.Partitions, c.Records, o.FetchMaxBytes, o.PartitionFetchBytes, 1)));
                        elapsed = sw.Elapsed;
                        b1 = BrokerCpu(brokerPid); c1 = ClientCpu();
                        long got = consumed.Sum(x => x.Records);
                        rows.Add(new Row
                        {
                            Name = $"consume {SizeName(cell.RecordSize)} {CodecName(cell.Compression)}" + suffix,
                            Records = got, ValueBytes = got * cell.RecordSize, WireBytes = consumed.Sum(x => x.WireBytes), Elapsed = elapsed,
                            BrokerCpu = brokerPid is null ? null : b1 - b0, ClientCpu = c1 - c0, BrokerPeakRss = PeakRss(brokerPid),
                        });
                    }
                    finally
                    {
                        foreach (var c in consumers) await c.Connection.DisposeAsync();
                    }
                }
            }
            finally
            {
                foreach (var g in groups) await g.Connection.DisposeAsync();
            }
        }
        finally
        {
            if (child is not null) await child.DisposeAsync();
            if (tempDir is not null) try { Directory.Delete(tempDir, recursive: true); } catch (IOException) { }
        }
        return rows;
    }

    /// <summary>This group's part of <paramref name="total"/> requests when it holds <paramref name="parts"/> of <paramref name="allParts"/> partitions.</summary>
    private static int Share(int total, int parts, int allParts) => Math.Max(1, (int)((long)total * parts / allParts));

    /// <summary>
    /// The leader (host, port) of every partition of the topics, from Metadata; waits up to 30 s
    /// for new topics' leaders to be elected (a cluster in ZooKeeper mode takes a moment).
    /// </summary>
    private static async Task<Dictionary<string, Dictionary<(string Host, int Port), List<int>>>> LeadersAsync(
        PerfConnection connection, string[] topics, int partitions, int correlation)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            var metadata = await connection.RequestAsync<MetadataResponse>(new MetadataRequest
            {
                Topics = topics.Select(t => new MetadataRequest.MetadataRequestTopic { Name = t }).ToList(),
                AllowAutoTopicCreation = false,
            }, 9, correlation++);
            var brokers = metadata.Brokers.ToDictionary(b => b.NodeId, b => (b.Host, b.Port));
            var result = new Dictionary<string, Dictionary<(string Host, int Port), List<int>>>();
            bool complete = true;
            foreach (var t in metadata.Topics)
            {
                var byLeader = new Dictionary<(string Host, int Port), List<int>>();
                foreach (var p in t.Partitions)
                {
                    if (p.ErrorCode != 0 || !brokers.TryGetValue(p.LeaderId, out var ep)) { complete = false; continue; }
                    if (!byLeader.TryGetValue(ep, out var list)) byLeader[ep] = list = [];
                    list.Add(p.PartitionIndex);
                }
                if (byLeader.Values.Sum(l => l.Count) != partitions) complete = false;
                result[t.Name!] = byLeader;
            }
            if (complete && topics.All(result.ContainsKey)) return result;
            if (deadline.Elapsed > TimeSpan.FromSeconds(30)) throw new IOException("the topic's partitions have no leaders after 30 s");
            await Task.Delay(200);
        }
    }

    private static double BrokerCpu(int? pid) => pid is { } p ? PerfBrokerProcess.ReadCpuSeconds(p) : 0;
    private static long? PeakRss(int? pid) => pid is { } p ? PerfBrokerProcess.ReadStatusKb(p, "VmHWM:") * 1024 : null;
    private static double ClientCpu() => Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;

    private static string SizeName(int size) => size % 1024 == 0 ? $"{size / 1024} KiB" : $"{size} B";
    private static string CodecName(CompressionType c) => c.ToString().ToLowerInvariant();
    private static string CellName(Cell c) => $"produce {SizeName(c.RecordSize)} acks={(c.Acks == -1 ? "all" : c.Acks.ToString(CultureInfo.InvariantCulture))} {CodecName(c.Compression)}";

    private const string TableHeader =
        "| test | records | records/s | MB/s | wire MB/s | p50 ms | p99 ms | max ms | broker CPU s/GB | client CPU s/GB | broker peak RSS MiB |";
    private const string TableRule = "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|";

    private static string FormatRow(Row r)
    {
        double secs = Math.Max(r.Elapsed.TotalSeconds, 1e-9);
        double gb = r.ValueBytes / 1e9;
        string p50 = "-", p99 = "-", max = "-";
        if (r.Latencies is { Length: > 0 } l)
        {
            var sorted = (double[])l.Clone();
            Array.Sort(sorted);
            p50 = Ms(sorted[(int)(0.50 * (sorted.Length - 1))]);
            p99 = Ms(sorted[(int)(0.99 * (sorted.Length - 1))]);
            max = Ms(sorted[^1]);
        }
        var inv = CultureInfo.InvariantCulture;
        return string.Create(inv,
            $"| {r.Name} | {r.Records} | {r.Records / secs:F0} | {r.ValueBytes / secs / 1e6:F1} | {r.WireBytes / secs / 1e6:F1} | {p50} | {p99} | {max} | " +
            $"{(r.BrokerCpu is { } b ? (b / gb).ToString("F2", inv) : "-")} | {r.ClientCpu / gb:F2} | " +
            $"{(r.BrokerPeakRss is { } rss ? (rss / (1024.0 * 1024)).ToString("F0", inv) : "-")} |");
    }

    private static string Ms(double ms) => ms.ToString(ms < 10 ? "F2" : "F1", CultureInfo.InvariantCulture);

    private static void PrintPreamble(Options o, string[] args, string load)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"samsa perf {string.Join(' ', args)}");
        sb.AppendLine($"{DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, load average before: {load}");
        sb.AppendLine($"broker: {(o.Bootstrap is null ? "child process `samsa broker`, fresh log dir per cell, upstream defaults (no fsync per append: log.flush.interval.messages=Long.MAX_VALUE)" : o.Bootstrap)}");
        sb.AppendLine($"load: {(o.Records is { } n ? $"{n} records" : $"{o.Bytes / 1e6:F0} MB of values")} per cell after a warm-up, batch {(o.BatchRecords is { } br ? $"{br} records" : $"{o.BatchBytes} B of values")}, " +
            $"{o.Inflight} in flight, {o.Partitions} partition(s), payload {o.Payload}, one connection per partition leader, produce v{PerfLoad.ProduceVersion}, fetch v{PerfLoad.FetchVersion}");
        sb.AppendLine("MB = 10^6 bytes of record values; wire MB/s counts record batches as sent (after compression); CPU s/GB per 10^9 value bytes;");
        sb.AppendLine("latency = write of a produce request to its response; acks=all on one broker is answered after the local append (ISR = {leader}).");
        Console.Out.Write(sb.ToString());
    }

    private static string LoadAverage()
    {
        try { return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)); }
        catch (IOException) { return "unknown"; }
    }
}
