using System.Diagnostics;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Records;

namespace Samsa.Kafka.Broker.Tests.EndToEnd.Proof;

/// <summary>Client-side operations the issue-3 proof tests make, as a user's client would:
/// create a topic, produce with acks=all, read a partition from an offset, ask for the earliest offset.</summary>
public static class ProofClient
{
    public static async Task CreateTopicAsync(KafkaWireClient c, string name, params (string K, string V)[] configs)
    {
        var r = await c.SendAsync<CreateTopicsResponse>(new CreateTopicsRequest
        {
            TimeoutMs = 30_000,
            Topics = [new() { Name = name, NumPartitions = 1, ReplicationFactor = 1, Configs = configs.Select(kv => new CreateTopicsRequest.CreatableTopicConfig { Name = kv.K, Value = kv.V }).ToList() }],
        }, 7);
        Assert.True(r!.Topics[0].ErrorCode == 0, $"CreateTopics {name}: error {r.Topics[0].ErrorCode} {r.Topics[0].ErrorMessage}");
    }

    public static ProduceRequest ProduceRequest(string topic, byte[] batch, short acks = -1) => new()
    {
        Acks = acks, TimeoutMs = 30_000,
        TopicData = [new() { Name = topic, PartitionData = [new() { Index = 0, Records = batch }] }],
    };

    /// <summary>Produces one batch with acks=all; returns (error, base offset).</summary>
    public static async Task<(short Error, long BaseOffset)> ProduceAsync(KafkaWireClient c, string topic, IReadOnlyList<(byte[]? Key, byte[]? Value)> records, long? timestamp = null)
    {
        var batch = RecordBatchBuilder.Build(records, timestamp ?? DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        var r = await c.SendAsync<ProduceResponse>(ProduceRequest(topic, batch), 9);
        var p = r!.Responses[0].PartitionResponses[0];
        return (p.ErrorCode, p.BaseOffset);
    }

    /// <summary>Reads a partition from <paramref name="from"/> to its end (Fetch v12); the partition error of the first fetch is returned instead when non-zero.</summary>
    public static async Task<(short Error, List<(long Offset, byte[]? Key, byte[]? Value)> Records)> ReadAllAsync(KafkaWireClient c, string topic, long from = 0)
    {
        var result = new List<(long, byte[]?, byte[]?)>();
        long offset = from;
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromMinutes(3))
        {
            var response = await c.SendAsync<FetchResponse>(new FetchRequest
            {
                MaxWaitMs = 0, MinBytes = 0, MaxBytes = 4 << 20, SessionEpoch = -1, ReplicaId = -1,
                Topics = [new() { Topic = topic, Partitions = [new() { Partition = 0, FetchOffset = offset, PartitionMaxBytes = 4 << 20 }] }],
            }, 12);
            var pd = response!.Responses[0].Partitions[0];
            if (pd.ErrorCode != 0) return (pd.ErrorCode, result);
            var data = pd.Records is { } m ? m.ToArray() : [];
            var records = RecordBatch.ReadRecords(data);
            // A batch whose records were all compacted away still advances the position: use the
            // batch header's last offset, as consumers do.
            long next = NextOffsetOfWholeBatches(data);
            foreach (var rec in records)
                if (rec.Offset >= offset) result.Add(rec);
            if (next <= offset) return (0, result);
            offset = next;
            if (offset >= pd.HighWatermark) return (0, result);
        }
        throw new TimeoutException($"reading {topic} did not finish in 3 minutes (at offset {offset})");
    }

    private static long NextOffsetOfWholeBatches(ReadOnlySpan<byte> data)
    {
        long next = -1;
        int pos = 0;
        while (data.Length - pos >= 61)
        {
            int size = 12 + System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(data[(pos + 8)..]);
            if (size > data.Length - pos) break;
            long baseOffset = System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(data[pos..]);
            int lastDelta = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(data[(pos + 23)..]);
            next = baseOffset + lastDelta + 1;
            pos += size;
        }
        return next;
    }

    /// <summary>ListOffsets v7 with timestamp -2 (earliest) or -1 (latest).</summary>
    public static async Task<long> ListOffsetAsync(KafkaWireClient c, string topic, long timestamp)
    {
        var r = await c.SendAsync<ListOffsetsResponse>(new ListOffsetsRequest
        {
            ReplicaId = -1,
            Topics = [new() { Name = topic, Partitions = [new() { PartitionIndex = 0, Timestamp = timestamp }] }],
        }, 7);
        var p = r!.Topics[0].Partitions[0];
        Assert.True(p.ErrorCode == 0, $"ListOffsets {topic} {timestamp}: error {p.ErrorCode}");
        return p.Offset;
    }

    public static byte[] Bytes(string s) => System.Text.Encoding.UTF8.GetBytes(s);
    public static string? Str(byte[]? b) => b is null ? null : System.Text.Encoding.UTF8.GetString(b);
}

/// <summary>`samsa broker --config server.properties` as a separate process, as an operator runs it.</summary>
public sealed class BrokerProcess : IAsyncDisposable
{
    private static readonly string SamsaDll = Path.Combine(AppContext.BaseDirectory, "samsa.dll");
    private readonly Process _process;
    private readonly List<string> _lines = [];

    public int Port { get; private set; }
    public string Output { get { lock (_lines) return string.Join("\n", _lines); } }

    private BrokerProcess(Process p) { _process = p; }

    public static string WriteConfig(string dir, string logDirs, params (string K, string V)[] extra)
    {
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, "server.properties");
        var lines = new List<string>
        {
            "broker.id=1",
            "listeners=PLAINTEXT://127.0.0.1:0",
            "log.dirs=" + logDirs,
            "offsets.topic.replication.factor=1",
        };
        lines.AddRange(extra.Select(kv => kv.K + "=" + kv.V));
        File.WriteAllLines(path, lines);
        return path;
    }

    public static async Task<BrokerProcess> StartAsync(string configPath, TimeSpan? timeout = null)
    {
        Assert.True(File.Exists(SamsaDll), $"samsa.dll not found next to the test assembly: {SamsaDll}");
        var psi = new ProcessStartInfo("dotnet", $"\"{SamsaDll}\" broker --config \"{configPath}\"")
        { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        var bp = new BrokerProcess(Process.Start(psi)!);
        bp._process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (bp._lines) bp._lines.Add(e.Data); };
        bp._process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (bp._lines) bp._lines.Add("stderr: " + e.Data); };
        bp._process.BeginOutputReadLine();
        bp._process.BeginErrorReadLine();
        var until = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(120));
        while (DateTime.UtcNow < until)
        {
            string? line;
            lock (bp._lines) line = bp._lines.FirstOrDefault(l => l.StartsWith("kafka listening on ", StringComparison.Ordinal));
            if (line is not null) { bp.Port = int.Parse(line[(line.LastIndexOf(':') + 1)..]); return bp; }
            if (bp._process.HasExited) break;
            await Task.Delay(50);
        }
        var output = bp.Output;
        await bp.DisposeAsync();
        throw new InvalidOperationException("samsa broker did not start listening:\n" + output);
    }

    /// <summary>SIGKILL: no shutdown code runs, like a power cut for the process.</summary>
    public void KillHard()
    {
        _process.Kill(entireProcessTree: false);
        _process.WaitForExit(30_000);
    }

    public ValueTask DisposeAsync()
    {
        try { if (!_process.HasExited) { _process.Kill(true); _process.WaitForExit(10_000); } } catch (InvalidOperationException) { }
        _process.Dispose();
        return ValueTask.CompletedTask;
    }
}
