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
        // Sweeps (issue #19): every combination of these is one cell.
        public List<int> Partitions = [1];
        public List<int> ReplicationFactors = [1];
        public List<int> Connections = [1];
        /// <summary>--brokers N: the child is `samsa dev --brokers N` (default: the largest --rf).</summary>
        public int? Brokers;
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

    private sealed record Cell(int RecordSize, short Acks, CompressionType Compression, bool Consume, int Partitions = 1, int Rf = 1, int Connections = 1);

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
        /// <summary>1-minute load average before and after the cell (the machine is shared).</summary>
        public string Load = "-";
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
                        cells.Add(new Cell(size, acks, c, false, o.Partitions[0], o.ReplicationFactors[0], o.Connections[0]));
        }
        else
            foreach (int rf in o.ReplicationFactors)
                foreach (int partitions in o.Partitions)
                    foreach (int connections in o.Connections)
                        cells.Add(new Cell(o.RecordSize, o.Acks, o.Compression, o.Mode == "consume", partitions, rf, connections));

        PrintPreamble(o, args, load0);
        var rows = new List<Row>();
        foreach (var cell in cells)
        {
            // The matrix adds the consume row to the 1 KiB, acks=1, uncompressed cell, reading back what it wrote.
            bool consume = cell.Consume || (o.Mode == "matrix" && cell is { RecordSize: 1024, Acks: 1, Compression: CompressionType.None });
            try
            {
                string before = LoadAverage().Split(' ')[0];
                var produced = await RunCellAsync(o, cell, consume);
                string load = $"{before} / {LoadAverage().Split(' ')[0]}";
                foreach (var r in produced) { r.Load = load; rows.Add(r); Console.Error.WriteLine(FormatRow(r)); }
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
                case "--partitions": o.Partitions = IntList(args, ref i); break;
                case "--replication-factor" or "--rf": o.ReplicationFactors = IntList(args, ref i, max: short.MaxValue); break;
                case "--connections": o.Connections = IntList(args, ref i, max: 1024); break;
                case "--brokers": o.Brokers = Program.PositiveInt(args, ref i); break;
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
        if (o.Brokers is { } b && o.ReplicationFactors.Max() > b)
            throw new UsageException($"perf: --rf {o.ReplicationFactors.Max()} needs at least that many brokers, --brokers is {b}");
        if (o.Bootstrap is not null && o.Brokers is not null)
            throw new UsageException("perf: --brokers starts a local cluster; it cannot be combined with --bootstrap");
        if (o.Bootstrap is null && o.Tls && (o.Brokers ?? o.ReplicationFactors.Max()) > 1)
            throw new UsageException("perf: --tls is for a single child broker (or --bootstrap)");
        return o;
    }

    /// <summary>A positive integer or a comma-separated list of them (a sweep: "1,4,16").</summary>
    private static List<int> IntList(string[] args, ref int i, int max = int.MaxValue)
    {
        var name = args[i];
        var v = Program.Value(args, ref i);
        var list = new List<int>();
        foreach (var part in v.Split(','))
        {
            if (!int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n <= 0 || n > max)
                throw new UsageException($"option '{name}' expects a positive integer or a comma-separated list of them (at most {max}), got '{v}'");
            list.Add(n);
        }
        return list;
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
        // Long enough for tiered JIT compilation to settle: with 50 MB on a loaded machine the
        // broker's JIT thread still took about a third of its CPU samples in the measured phase
        // (RESULTS.md, issue #19), which counted as CPU per GB.
        long warmupBytes = o.WarmupBytes ?? Math.Min(256_000_000, o.Bytes / 2);
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
            // RF above 1 needs that many brokers: `samsa dev --brokers N` in one process.
            int brokers = o.Brokers ?? o.ReplicationFactors.Max();
            child = await PerfBrokerProcess.StartAsync(dir, props, brokers);
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
                    new CreateTopicsRequest.CreatableTopic { Name = topic, NumPartitions = cell.Partitions, ReplicationFactor = (short)cell.Rf },
                    new CreateTopicsRequest.CreatableTopic { Name = warmTopic, NumPartitions = cell.Partitions, ReplicationFactor = (short)cell.Rf },
                ],
                TimeoutMs = 30000,
            };
            var created = await connection.RequestAsync<CreateTopicsResponse>(create, 7, correlation++);
            foreach (var t in created.Topics)
                if (t.ErrorCode != 0 && t.ErrorCode != (short)ErrorCode.TopicAlreadyExists)
                    throw new IOException($"creating topic {t.Name} failed: {(ErrorCode)t.ErrorCode} {t.ErrorMessage}");

            // Each partition's requests go to its leader (several brokers with --bootstrap to a
            // cluster): one connection per leader, all producing at once.
            var leaders = await LeadersAsync(connection, [topic, warmTopic], cell.Partitions, correlation);
            var groups = new List<(PerfConnection Connection, (string Host, int Port) Endpoint, int[] Partitions, int[] WarmPartitions)>();
            foreach (var (endpoint, parts, warm) in SplitConnections(leaders[topic], leaders[warmTopic], cell.Partitions, cell.Connections))
                groups.Add((await PerfConnection.ConnectAsync(endpoint.Host, endpoint.Port, clientTls), endpoint, parts, warm));
            int slots = groups.Sum(g => g.Partitions.Length), warmSlots = groups.Sum(g => g.WarmPartitions.Length);
            try
            {
                // Warm-up (not measured): JIT tiering and first segment/index allocation in the broker.
                // At least --warmup-bytes and, when there is a warm-up, at least two seconds (up to
                // 10 passes): the broker's tier-1 compiles of the hot path land a second or more
                // after its first calls, and a shorter warm-up counted them in the measured row.
                short warmAcks = cell.Acks == 0 ? (short)1 : cell.Acks;
                var warmGroups = groups.Where(g => g.WarmPartitions.Length > 0).ToList();
                var warmRecords = new long[warmGroups.Count];
                if (warmupRequests > 0)
                {
                    var warmFrames = new List<(byte[][][] Frames, long WireBatch)>();
                    foreach (var g in warmGroups)
                        warmFrames.Add((PerfLoad.BuildFrames(warmTopic, g.WarmPartitions, warmAcks, cell.Compression, cell.RecordSize, recordsPerBatch, o.Payload, 2, out long wb), wb));
                    var warmClock = Stopwatch.StartNew();
                    for (int pass = 0; pass < 10 && (pass == 0 || warmClock.Elapsed < TimeSpan.FromSeconds(2)); pass++)
                    {
                        var done = await Task.WhenAll(warmGroups.Select((g, i) => PerfLoad.ProduceAsync(g.Connection, warmFrames[i].Frames, warmAcks,
                            Share(warmupRequests, g.WarmPartitions.Length, warmSlots), o.Inflight, recordsPerBatch, cell.RecordSize, warmFrames[i].WireBatch, 1_000_000)));
                        for (int i = 0; i < done.Length; i++) warmRecords[i] += done[i].Records;
                    }
                }

                var work = groups.Select(g =>
                {
                    var frames = PerfLoad.BuildFrames(topic, g.Partitions, cell.Acks, cell.Compression, cell.RecordSize, recordsPerBatch, o.Payload, 8, out long wireBatch);
                    return (g.Connection, Frames: frames, WireBatch: wireBatch, Requests: Share(requests, g.Partitions.Length, slots));
                }).ToList();
                double b0 = BrokerCpu(brokerPid), c0 = ClientCpu();
                var sw = Stopwatch.StartNew();
                var outcomes = await Task.WhenAll(work.Select(w =>
                    PerfLoad.ProduceAsync(w.Connection, w.Frames, cell.Acks, w.Requests, o.Inflight, recordsPerBatch, cell.RecordSize, w.WireBatch, 2_000_000)));
                var elapsed = sw.Elapsed;
                double b1 = BrokerCpu(brokerPid), c1 = ClientCpu();
                string suffix = (cell.Partitions > 1 ? $" p{cell.Partitions}" : "") + (cell.Rf > 1 ? $" rf{cell.Rf}" : "") + (cell.Connections > 1 ? $" c{cell.Connections}" : "");
                rows.Add(new Row
                {
                    Name = CellName(cell) + suffix,
                    Records = outcomes.Sum(x => x.Records), ValueBytes = outcomes.Sum(x => x.ValueBytes), WireBytes = outcomes.Sum(x => x.WireBytes), Elapsed = elapsed,
                    Latencies = outcomes.SelectMany(x => x.LatenciesMs).ToArray(), BrokerCpu = brokerPid is null ? null : b1 - b0, ClientCpu = c1 - c0,
                    BrokerPeakRss = PeakRss(brokerPid),
                });
                if (consume)
                {
                    // One consumer connection per partition leader, reading all its partitions
                    // (however many producer connections wrote them).
                    async Task<List<(PerfConnection Connection, int[] Partitions, long Records)>> ConsumersAsync(
                        string name, IReadOnlyList<(PerfConnection Connection, (string Host, int Port) Endpoint, int[] Partitions, int[] WarmPartitions)> producers, long[] produced)
                    {
                        var list = new List<(PerfConnection Connection, int[] Partitions, long Records)>();
                        foreach (var (endpoint, parts) in leaders[name])
                        {
                            long expected = 0;
                            for (int g = 0; g < producers.Count; g++)
                                if (producers[g].Endpoint == endpoint) expected += produced[g];
                            list.Add((await PerfConnection.ConnectAsync(endpoint.Host, endpoint.Port, clientTls), parts.ToArray(), expected));
                        }
                        return list;
                    }
                    if (warmupRequests > 0)
                    {
                        // Read the warm-up records back first (not measured), for at least two
                        // seconds (up to 10 passes), so the fetch path is past tiered JIT too:
                        // without it the consume row counted the broker's compilation of the fetch
                        // path (a third of its samples while reading 1 GB; tier-1 compiles follow
                        // the first calls by a second or more).
                        var warmConsumers = await ConsumersAsync(warmTopic, warmGroups, warmRecords);
                        try
                        {
                            var warmClock = Stopwatch.StartNew();
                            for (int pass = 0; pass < 10 && (pass == 0 || warmClock.Elapsed < TimeSpan.FromSeconds(2)); pass++)
                                await Task.WhenAll(warmConsumers.Select(c =>
                                    PerfLoad.ConsumeAsync(c.Connection, warmTopic, c.Partitions, c.Records, o.FetchMaxBytes, o.PartitionFetchBytes, 1)));
                        }
                        finally
                        {
                            foreach (var c in warmConsumers) await c.Connection.DisposeAsync();
                        }
                    }
                    var consumers = await ConsumersAsync(topic, groups, outcomes.Select(x => x.Records).ToArray());
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

    /// <summary>
    /// The producer connections of a cell: each leader gets a share of <paramref name="connections"/>
    /// proportional to the partitions it leads (at least one); within a leader, connection j takes
    /// partitions j, j+k, j+2k, ... of its k connections, or — fewer partitions than connections —
    /// partition j mod n, so several connections write the same partition.
    /// </summary>
    private static List<((string Host, int Port) Endpoint, int[] Partitions, int[] Warm)> SplitConnections(
        Dictionary<(string Host, int Port), List<int>> leaders, Dictionary<(string Host, int Port), List<int>> warmLeaders, int partitions, int connections)
    {
        var result = new List<((string Host, int Port), int[], int[])>();
        foreach (var (endpoint, parts) in leaders)
        {
            int k = Math.Max(1, (int)Math.Round((double)connections * parts.Count / partitions));
            var warm = warmLeaders.GetValueOrDefault(endpoint) ?? [];
            for (int j = 0; j < k; j++)
                result.Add((endpoint, Pick(parts, j, k), Pick(warm, j, k)));
        }
        return result;

        static int[] Pick(List<int> parts, int j, int k) =>
            parts.Count == 0 ? [] : parts.Count >= k ? parts.Where((_, i) => i % k == j).ToArray() : [parts[j % parts.Count]];
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
        "| test | records | records/s | MB/s | wire MB/s | p50 ms | p99 ms | max ms | broker CPU s/GB | client CPU s/GB | broker peak RSS MiB | load 1m before / after |";
    private const string TableRule = "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|";

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
            $"{(r.BrokerPeakRss is { } rss ? (rss / (1024.0 * 1024)).ToString("F0", inv) : "-")} | {r.Load} |");
    }

    private static string Ms(double ms) => ms.ToString(ms < 10 ? "F2" : "F1", CultureInfo.InvariantCulture);

    private static void PrintPreamble(Options o, string[] args, string load)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"samsa perf {string.Join(' ', args)}");
        sb.AppendLine($"{DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, load average before: {load}");
        int brokers = o.Brokers ?? o.ReplicationFactors.Max();
        sb.AppendLine($"broker: {(o.Bootstrap is not null ? o.Bootstrap : brokers > 1 ? $"child process `samsa dev --brokers {brokers}` (Keeper + {brokers} brokers in one process; CPU and RSS are the whole process's), fresh log dir per cell" : "child process `samsa broker`, fresh log dir per cell")}, upstream defaults (no fsync per append: log.flush.interval.messages=Long.MAX_VALUE)");
        sb.AppendLine($"load: {(o.Records is { } n ? $"{n} records" : $"{o.Bytes / 1e6:F0} MB of values")} per cell after a warm-up, batch {(o.BatchRecords is { } br ? $"{br} records" : $"{o.BatchBytes} B of values")}, " +
            $"{o.Inflight} in flight per connection, partitions {string.Join(',', o.Partitions)}, rf {string.Join(',', o.ReplicationFactors)}, producer connections {string.Join(',', o.Connections)} (at least one per partition leader), payload {o.Payload}, produce v{PerfLoad.ProduceVersion}, fetch v{PerfLoad.FetchVersion}");
        sb.AppendLine("MB = 10^6 bytes of record values; wire MB/s counts record batches as sent (after compression); CPU s/GB per 10^9 value bytes;");
        sb.AppendLine("latency = write of a produce request to its response; acks=all on one broker is answered after the local append (ISR = {leader}).");
        sb.AppendLine("test names: pN = N partitions, rfN = replication factor N, cN = N producer connections; last column: 1-minute load average before / after the cell.");
        Console.Out.Write(sb.ToString());
    }

    private static string LoadAverage()
    {
        try { return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)); }
        catch (IOException) { return "unknown"; }
    }
}
