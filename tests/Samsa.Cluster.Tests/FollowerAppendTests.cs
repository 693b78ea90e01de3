using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Records;
using Xunit;

namespace Samsa.Cluster.Tests;

/// <summary>
/// What a follower writes (three in-process brokers with log files): the segment files of every
/// replica hold the leader's batches byte for byte, and a batch whose CRC does not match is
/// refused by the follower — logged, retried after a back-off, never appended — while the other
/// partitions fetched from the same leader keep replicating.
/// </summary>
public sealed class FollowerAppendTests(KeeperServer server) : IClassFixture<KeeperServer>
{
    private static async Task CreateTopicAsync(LocalCluster cluster, string name, int partitions, int leader)
    {
        await LocalCluster.WaitUntilAsync(async () => (await cluster.MetadataAsync(cluster.LiveIds.First())).Brokers.Count == cluster.LiveIds.Count,
            TimeSpan.FromSeconds(10), "all brokers visible");
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(cluster.LiveIds.First()));
        var topic = new CreateTopicsRequest.CreatableTopic
        {
            Name = name, NumPartitions = -1, ReplicationFactor = -1,
            Configs = [new CreateTopicsRequest.CreatableTopicConfig { Name = "min.insync.replicas", Value = "2" }],
        };
        // Every partition led by the same broker, so one replica fetcher per follower carries them all.
        var others = cluster.LiveIds.Where(b => b != leader).ToList();
        for (int p = 0; p < partitions; p++)
            topic.Assignments.Add(new CreateTopicsRequest.CreatableReplicaAssignment { PartitionIndex = p, BrokerIds = [leader, .. others] });
        var r = await c.SendAsync<CreateTopicsResponse>(new CreateTopicsRequest { TimeoutMs = 30000, Topics = [topic] }, 5);
        Assert.Equal(0, r!.Topics[0].ErrorCode);
        await LocalCluster.WaitUntilAsync(async () =>
        {
            var md = await cluster.MetadataAsync(leader, name);
            return md.Topics[0].ErrorCode == 0 && md.Topics[0].Partitions.Count == partitions
                && md.Topics[0].Partitions.All(x => x.LeaderId == leader && x.IsrNodes.Count == cluster.LiveIds.Count)
                && Enumerable.Range(0, partitions).All(i => cluster[leader].Replicas.GetPartition(name, i)?.IsLeader == true);
        }, TimeSpan.FromSeconds(15), $"{name} led by {leader} with a full ISR");
    }

    private static byte[] Batch(int round, int records, int size)
    {
        var values = Enumerable.Range(0, records).Select(i => ((byte[]?)null, (byte[]?)Encoding.UTF8.GetBytes($"{round}-{i}-" + new string((char)('a' + (round + i) % 26), size)))).ToList();
        return RecordBatchBuilder.Build(values, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
    }

    private static async Task<short> ProduceAsync(KafkaWireClient c, string topic, int partition, short acks, byte[] batch)
    {
        var r = await c.SendAsync<ProduceResponse>(new ProduceRequest
        {
            Acks = acks, TimeoutMs = 10000,
            TopicData = [new ProduceRequest.TopicProduceData { Name = topic, PartitionData = [new ProduceRequest.PartitionProduceData { Index = partition, Records = batch }] }],
        }, 9);
        return r!.Responses[0].PartitionResponses[0].ErrorCode;
    }

    // The partition's segment files as the broker wrote them: name → bytes (the .log files only).
    private static SortedDictionary<string, byte[]> Segments(LocalCluster cluster, int broker, string topic, int partition)
    {
        var dir = Path.Combine(cluster.LogDir(broker), $"{topic}-{partition}");
        var files = new SortedDictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var f in Directory.GetFiles(dir, "*.log"))
        {
            using var s = new FileStream(f, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            var bytes = new byte[s.Length];
            s.ReadExactly(bytes);
            files[Path.GetFileName(f)] = bytes;
        }
        return files;
    }

    private static string TempDir() => Path.Combine(Path.GetTempPath(), "samsa-follower-append-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task FollowerSegmentFilesAreByteIdenticalToTheLeaders()
    {
        var dir = TempDir();
        try
        {
            // Small segments, so rolls happen on followers too (a follower rolls where its own
            // segment fills, which is where the leader's did: the same batches in the same order).
            await using var cluster = await LocalCluster.StartAsync(server.Address!, 3, dataDir: dir,
                brokerConfig: new Dictionary<string, string> { ["log.segment.bytes"] = "65536" });
            const int leader = 1;
            await CreateTopicAsync(cluster, "same", 2, leader);
            await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(leader));
            for (int round = 0; round < 60; round++)
            {
                // Batches of 1 to 40 records of 0 to 600 bytes, acks=all and acks=1 mixed.
                Assert.Equal(0, await ProduceAsync(c, "same", round % 2, (short)(round % 3 == 0 ? 1 : -1), Batch(round, 1 + round % 40, (round * 37) % 600)));
            }
            for (int p = 0; p < 2; p++)
            {
                var leaderLog = cluster[leader].Replicas.GetPartition("same", p)!.Log;
                long end = leaderLog.LogEndOffset;
                foreach (int f in new[] { 2, 3 })
                    await LocalCluster.WaitUntilAsync(() => Task.FromResult(cluster[f].Replicas.GetPartition("same", p)!.Log.LogEndOffset == end),
                        TimeSpan.FromSeconds(10), $"broker {f} caught up on same-{p}");
                var expected = Segments(cluster, leader, "same", p);
                Assert.True(expected.Count > 1, $"same-{p} did not roll: {expected.Count} segment(s)");
                foreach (int f in new[] { 2, 3 })
                {
                    var actual = Segments(cluster, f, "same", p);
                    Assert.Equal(expected.Keys, actual.Keys);
                    foreach (var (name, bytes) in expected)
                        Assert.True(bytes.AsSpan().SequenceEqual(actual[name]), $"broker {f}: same-{p}/{name} differs from the leader's ({actual[name].Length} vs {bytes.Length} bytes)");
                }
            }
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    [Fact]
    public async Task AFollowerRefusesABatchWithABadCrcAndKeepsReplicatingTheOtherPartitions()
    {
        var dir = TempDir();
        try
        {
            await using var cluster = await LocalCluster.StartAsync(server.Address!, 3, dataDir: dir);
            const int leader = 1;
            await CreateTopicAsync(cluster, "crc", 2, leader);
            await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(leader));
            Assert.Equal(0, await ProduceAsync(c, "crc", 0, -1, Batch(0, 5, 100)));
            Assert.Equal(0, await ProduceAsync(c, "crc", 1, -1, Batch(1, 5, 100)));

            // The leader's log takes a batch whose CRC no longer matches (as a disk or memory fault
            // would leave it): written past the produce path's validation.
            var leaderLog = cluster[leader].Replicas.GetPartition("crc", 0)!.Log;
            var corrupt = Batch(2, 3, 100);
            BinaryPrimitives.WriteInt64BigEndian(corrupt, leaderLog.LogEndOffset);
            int epoch = cluster[leader].Replicas.GetPartition("crc", 0)!.LeaderEpoch;
            BinaryPrimitives.WriteInt32BigEndian(corrupt.AsSpan(12), epoch);
            corrupt[^1] ^= 0x5A;   // a flipped byte in the last record's value
            var h = new RecordBatch(corrupt);
            Assert.NotEqual(h.Crc, h.ComputeCrc());
            leaderLog.AppendValidated(corrupt, h.LastOffset, h.MaxTimestamp, h.LastOffset, epoch);
            long corruptAt = h.BaseOffset;

            // Partition 1 keeps replicating meanwhile: its acks=all produce completes.
            for (int i = 0; i < 5; i++)
                Assert.Equal(0, await ProduceAsync(c, "crc", 1, -1, Batch(10 + i, 5, 100)));
            long end1 = cluster[leader].Replicas.GetPartition("crc", 1)!.Log.LogEndOffset;
            foreach (int f in new[] { 2, 3 })
                Assert.Equal(end1, cluster[f].Replicas.GetPartition("crc", 1)!.Log.LogEndOffset);

            // The followers refused the corrupt batch, said so, and retried it (more than one refusal
            // each after a back-off), never appending it.
            await LocalCluster.WaitUntilAsync(() => Task.FromResult(new[] { 2, 3 }.All(f =>
                    CountOccurrences(cluster.Log(), $"broker {f}: fetcher for leader {leader}: refused records of crc-0 at offset {corruptAt}") >= 2)),
                TimeSpan.FromSeconds(15), "each follower refused the corrupt batch twice");
            foreach (int f in new[] { 2, 3 })
            {
                var log = cluster[f].Replicas.GetPartition("crc", 0)!.Log;
                Assert.Equal(corruptAt, log.LogEndOffset);
                Assert.Contains("CorruptRecordException", cluster.Log());
            }
            // acks=all cannot complete past the corrupt batch: the high watermark stays before it.
            Assert.Equal(corruptAt, cluster[leader].Replicas.GetPartition("crc", 0)!.HighWatermark);
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    private static int CountOccurrences(string text, string what)
    {
        int n = 0;
        for (int at = text.IndexOf(what, StringComparison.Ordinal); at >= 0; at = text.IndexOf(what, at + what.Length, StringComparison.Ordinal)) n++;
        return n;
    }

    /// <summary>
    /// Not a test: a measurement of the replica path, run by hand with SAMSA_REPL_BENCH=MB (bytes to
    /// produce after a warm-up of half as much) and SAMSA_REPL_BENCH_OUT=file. Three brokers with log
    /// files in this process, RF=3, acks=all, 4 partitions, 4 producer connections with 5 requests of
    /// 16 × 1 KiB in flight each. Prints MB/s, p50/p99 produce latency, the process's CPU seconds
    /// per GB and allocated bytes per MB produced (the cluster is nearly all of the process: the load
    /// generator sends pre-encoded requests).
    /// </summary>
    [Fact]
    public async Task ReplicaPathMeasurement()
    {
        if (!int.TryParse(Environment.GetEnvironmentVariable("SAMSA_REPL_BENCH"), out int mb) || mb <= 0) return;
        var outFile = Environment.GetEnvironmentVariable("SAMSA_REPL_BENCH_OUT") ?? "/dev/stdout";
        var dir = TempDir();
        try
        {
            await using var cluster = await LocalCluster.StartAsync(server.Address!, 3, dataDir: dir);
            const int partitions = 4, connections = 4, inflight = 5;
            // Leaders spread over the brokers, as `samsa perf` has them.
            await LocalCluster.WaitUntilAsync(async () => (await cluster.MetadataAsync(1)).Brokers.Count == 3, TimeSpan.FromSeconds(10), "brokers");
            await using (var admin = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(1)))
            {
                var r = await admin.SendAsync<CreateTopicsResponse>(new CreateTopicsRequest
                {
                    TimeoutMs = 30000,
                    Topics = [new CreateTopicsRequest.CreatableTopic { Name = "bench", NumPartitions = partitions, ReplicationFactor = 3 }],
                }, 5);
                Assert.Equal(0, r!.Topics[0].ErrorCode);
            }
            var md = await cluster.LedMetadataAsync(1, "bench", partitions);
            await LocalCluster.WaitUntilAsync(async () => (await cluster.MetadataAsync(1, "bench")).Topics[0].Partitions.All(p => p.IsrNodes.Count == 3),
                TimeSpan.FromSeconds(15), "full ISR");
            var leaders = md.Topics[0].Partitions.ToDictionary(p => p.PartitionIndex, p => p.LeaderId);
            await LocalCluster.WaitUntilAsync(() => Task.FromResult(leaders.All(kv => cluster[kv.Value].Replicas.GetPartition("bench", kv.Key)?.IsLeader == true)),
                TimeSpan.FromSeconds(10), "leaders serve bench");

            var payload = RecordBatchBuilder.Build(Enumerable.Range(0, 16).Select(i => ((byte[]?)null, (byte[]?)new byte[1024])).ToList(), 0);
            byte[] Request(int partition) => KafkaWireClient.EncodeRequest(new ProduceRequest
            {
                Acks = -1, TimeoutMs = 30000,
                TopicData = [new ProduceRequest.TopicProduceData { Name = "bench", PartitionData = [new ProduceRequest.PartitionProduceData { Index = partition, Records = payload }] }],
            }, 9, 1, "bench");

            async Task<List<double>> RunAsync(long bytes)
            {
                long perConnection = bytes / connections / payload.Length;
                var tasks = Enumerable.Range(0, connections).Select(async conn =>
                {
                    int partition = conn % partitions;
                    var frame = Request(partition);
                    await using var client = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(leaders[partition]));
                    var latencies = new List<double>();
                    var sent = new Queue<long>();
                    long toSend = perConnection, toReceive = perConnection;
                    while (toReceive > 0)
                    {
                        while (toSend > 0 && sent.Count < inflight)
                        {
                            sent.Enqueue(Stopwatch.GetTimestamp());
                            await client.SendRawAsync(frame);
                            toSend--;
                        }
                        var response = await client.ReadFrameAsync() ?? throw new IOException("closed");
                        latencies.Add(Stopwatch.GetElapsedTime(sent.Dequeue()).TotalMilliseconds);
                        var decoded = KafkaWireClient.Decode<ProduceResponse>(response, ProduceRequest.ApiKey, 9, 1);
                        Assert.Equal(0, decoded.Responses[0].PartitionResponses[0].ErrorCode);
                        toReceive--;
                    }
                    return latencies;
                }).ToList();
                var all = new List<double>();
                foreach (var t in tasks) all.AddRange(await t);
                return all;
            }

            await RunAsync(mb * 1_000_000L / 2);   // warm-up: JIT tiers, segment files, fetch sessions
            // SAMSA_REPL_BENCH_ALLOC=1: the runtime's allocation samples (one per ~100 KB) by type.
            using var sampler = Environment.GetEnvironmentVariable("SAMSA_REPL_BENCH_ALLOC") == "1" ? new AllocationSampler() : null;
            var process = Process.GetCurrentProcess();
            process.Refresh();
            var cpu0 = process.TotalProcessorTime;
            long alloc0 = GC.GetTotalAllocatedBytes(precise: true);
            int gen0 = GC.CollectionCount(0), gen2 = GC.CollectionCount(2);
            var sw = Stopwatch.StartNew();
            var lat = await RunAsync(mb * 1_000_000L);
            sw.Stop();
            long alloc = GC.GetTotalAllocatedBytes(precise: true) - alloc0;
            process.Refresh();
            double cpu = (process.TotalProcessorTime - cpu0).TotalSeconds;
            double produced = lat.Count * (double)payload.Length;
            lat.Sort();
            double load = double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
            File.AppendAllText(outFile, string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"{DateTime.UtcNow:HH:mm:ss} MB={produced / 1e6:F0} MB/s={produced / 1e6 / sw.Elapsed.TotalSeconds:F1} p50ms={lat[lat.Count / 2]:F2} p99ms={lat[(int)(lat.Count * 0.99)]:F1} " +
                $"cpu_s_per_GB={cpu / (produced / 1e9):F2} alloc_B_per_MB={alloc / (produced / 1e6):F0} gen0={GC.CollectionCount(0) - gen0} gen2={GC.CollectionCount(2) - gen2} load={load:F1}\n"));
            if (sampler is not null) File.AppendAllText(outFile, sampler.Top(40));
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    // Counts the runtime's GCAllocationTick events (GC keyword, verbose) by allocated type: where the
    // bytes of a run go, without a profiler.
    private sealed class AllocationSampler : System.Diagnostics.Tracing.EventListener
    {
        private readonly Dictionary<string, long> _bytes = [];

        protected override void OnEventSourceCreated(System.Diagnostics.Tracing.EventSource source)
        {
            if (source.Name == "Microsoft-Windows-DotNETRuntime")
                EnableEvents(source, System.Diagnostics.Tracing.EventLevel.Verbose, (System.Diagnostics.Tracing.EventKeywords)0x1);
        }

        protected override void OnEventWritten(System.Diagnostics.Tracing.EventWrittenEventArgs e)
        {
            if (e.EventName is null || !e.EventName.StartsWith("GCAllocationTick", StringComparison.Ordinal) || e.PayloadNames is null) return;
            int type = e.PayloadNames.IndexOf("TypeName"), amount = e.PayloadNames.IndexOf("AllocationAmount64");
            if (type < 0 || amount < 0) return;
            string name = e.Payload![type] as string ?? "?";
            long bytes = Convert.ToInt64(e.Payload[amount], System.Globalization.CultureInfo.InvariantCulture);
            lock (_bytes) _bytes[name] = _bytes.GetValueOrDefault(name) + bytes;
        }

        public string Top(int n)
        {
            lock (_bytes)
            {
                long total = _bytes.Values.Sum();
                return string.Concat(_bytes.OrderByDescending(kv => kv.Value).Take(n)
                    .Select(kv => $"  {kv.Value * 100.0 / Math.Max(1, total),5:F1}% {kv.Value / 1e6,8:F1} MB  {kv.Key}\n"));
            }
        }
    }
}
