using System.Buffers.Binary;
using System.Globalization;
using System.Net.Sockets;
using System.Text.Json;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Tests.EndToEnd;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Records;
using Xunit.Abstractions;

namespace Samsa.Kafka.Broker.Tests.Perf;

/// <summary>
/// The allocation guard (issue #19): bytes the whole process allocates per request on the hot
/// paths, with a real broker behind a socket and a client that allocates nothing per request
/// (pre-encoded frames, one reused receive buffer, blocking socket calls). Times vary with the
/// machine's load; allocation counts do not, so a request path that starts allocating more fails
/// here, on any machine. The numbers are printed beside the baseline checked in next to this file
/// (allocation-baseline.json). After a change that lowers them, run with
/// SAMSA_ALLOC_BASELINE_WRITE=1 to write the new figures and commit the file.
/// </summary>
[Collection(AllocationGuardCollection.Name)]
public sealed class AllocationGuardTests(ITestOutputHelper output)
{
    private const int Warmup = 400, Measured = 2000;
    /// <summary>Allowed growth before failing: 10 % plus 256 bytes (timer and background work of
    /// the broker in the same process, e.g. a log flush, lands in the measurement now and then).</summary>
    private const double Slack = 1.10;
    private const long SlackBytes = 256;

    private static string BaselinePath([System.Runtime.CompilerServices.CallerFilePath] string here = "") =>
        Path.Combine(Path.GetDirectoryName(here)!, "allocation-baseline.json");

    /// <param name="metrics">with samsa.metrics.port set (issue #20): the RequestMetrics recording
    /// per request is in the figures; its rows are named "metrics on: …"</param>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Bytes_allocated_per_request_do_not_grow(bool metrics)
    {
        await using var live = metrics
            ? await LiveBroker.StartAsync(null, ("samsa.metrics.port", "0"), ("samsa.metrics.host", "127.0.0.1"))
            : await LiveBroker.StartAsync();
        const string topic = "alloc-guard";
        await using (var c = await KafkaWireClient.ConnectAsync("127.0.0.1", live.Broker.BoundEndPoint.Port))
        {
            var created = await c.SendAsync<CreateTopicsResponse>(new CreateTopicsRequest
            {
                TimeoutMs = 30_000, Topics = [new() { Name = topic, NumPartitions = 1, ReplicationFactor = 1 }],
            }, 7);
            Assert.Equal(0, created!.Topics[0].ErrorCode);
        }

        var value = new byte[1024];
        new Random(7).NextBytes(value);
        byte[] batch = RecordBatchBuilder.Build([.. Enumerable.Range(0, 16).Select(_ => ((byte[]?)null, (byte[]?)value))], 1_700_000_000_000);
        var frames = new (string Name, byte[] Frame)[]
        {
            ("ApiVersions v3", KafkaWireClient.EncodeRequest(new ApiVersionsRequest { ClientSoftwareName = "alloc-guard", ClientSoftwareVersion = "1" }, 3, 1, "alloc-guard")),
            ("Metadata v12, one topic", KafkaWireClient.EncodeRequest(new MetadataRequest { Topics = [new() { Name = topic }], AllowAutoTopicCreation = false }, 12, 1, "alloc-guard")),
            ("Produce v9 acks=1, 16 x 1 KiB", KafkaWireClient.EncodeRequest(new ProduceRequest
            {
                Acks = 1, TimeoutMs = 30_000,
                TopicData = [new() { Name = topic, PartitionData = [new() { Index = 0, Records = batch }] }],
            }, 9, 1, "alloc-guard")),
            ("Fetch v12 from offset 0, 64 KiB", KafkaWireClient.EncodeRequest(new FetchRequest
            {
                ReplicaId = -1, MaxWaitMs = 0, MinBytes = 1, MaxBytes = 64 << 10, SessionEpoch = -1,
                Topics = [new() { Topic = topic, Partitions = [new() { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 64 << 10 }] }],
            }, 12, 1, "alloc-guard")),
        };

        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        socket.Connect("127.0.0.1", live.Broker.BoundEndPoint.Port);
        var receive = new byte[1 << 20];
        var measured = new Dictionary<string, long>();
        foreach (var (name, frame) in frames)
        {
            for (int i = 0; i < Warmup; i++) RoundTrip(socket, frame, receive);
            long before = GC.GetTotalAllocatedBytes(precise: true);
            for (int i = 0; i < Measured; i++) RoundTrip(socket, frame, receive);
            long after = GC.GetTotalAllocatedBytes(precise: true);
            measured[(metrics ? "metrics on: " : "") + name] = (after - before) / Measured;
        }

        var baseline = File.Exists(BaselinePath())
            ? JsonSerializer.Deserialize<Dictionary<string, long>>(File.ReadAllText(BaselinePath())) ?? []
            : [];
        if (Environment.GetEnvironmentVariable("SAMSA_ALLOC_BASELINE_WRITE") is { Length: > 0 })
        {
            // this case's rows replace theirs; the other case's rows stay
            foreach (var (name, bytes) in measured) baseline[name] = bytes;
            File.WriteAllText(BaselinePath(), JsonSerializer.Serialize(baseline, new JsonSerializerOptions { WriteIndented = true }) + "\n");
            output.WriteLine($"baseline written to {BaselinePath()}");
        }
        var grown = new List<string>();
        output.WriteLine($"{"request",-46} {"bytes/request",14} {"baseline",10}");
        foreach (var (name, bytes) in measured)
        {
            long? limit = baseline.TryGetValue(name, out long b) ? (long)(b * Slack) + SlackBytes : null;
            output.WriteLine($"{name,-46} {bytes,14:N0} {(baseline.TryGetValue(name, out long bb) ? bb.ToString("N0", CultureInfo.InvariantCulture) : "-"),10}");
            if (limit is null) grown.Add($"{name}: no baseline (run with SAMSA_ALLOC_BASELINE_WRITE=1)");
            else if (bytes > limit) grown.Add($"{name}: {bytes:N0} bytes per request, baseline {b:N0} (limit {limit:N0})");
        }
        Assert.True(grown.Count == 0, "allocations per request grew:\n" + string.Join("\n", grown));
    }

    /// <summary>Sends one frame and reads the whole response into <paramref name="receive"/>.</summary>
    private static void RoundTrip(Socket socket, byte[] frame, byte[] receive)
    {
        socket.Send(frame);
        ReadExactly(socket, receive.AsSpan(0, 4));
        int size = BinaryPrimitives.ReadInt32BigEndian(receive);
        if (size <= 0 || size > receive.Length) throw new InvalidOperationException($"response of {size} bytes");
        ReadExactly(socket, receive.AsSpan(0, size));
    }

    private static void ReadExactly(Socket socket, Span<byte> into)
    {
        while (into.Length > 0)
        {
            int n = socket.Receive(into);
            if (n == 0) throw new IOException("the broker closed the connection");
            into = into[n..];
        }
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class AllocationGuardCollection
{
    /// <summary>Alone: the measurement counts every thread's allocations in the process.</summary>
    public const string Name = "allocation guard (alone)";
}
