using System.Buffers.Binary;
using System.Diagnostics;
using System.Net.Sockets;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Compression;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Primitives;
using Samsa.Kafka.Protocol.Records;

namespace Samsa.Host;

/// <summary>
/// The load generator's side of the wire: one TCP connection that writes whole request frames and
/// reads response frames into a reused buffer, so several requests can be in flight at once (a
/// real producer's max.in.flight.requests.per.connection).
/// </summary>
internal sealed class PerfConnection : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly Stream _stream;   // NetworkStream, or SslStream over it (--tls)
    private byte[] _buffer = new byte[64 * 1024];

    private PerfConnection(Socket socket, Stream stream) { _socket = socket; _stream = stream; }

    public static async Task<PerfConnection> ConnectAsync(string host, int port, Samsa.Net.TlsClientOptions? tls = null)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(host, port);
        Stream stream = new NetworkStream(socket, ownsSocket: true);
        if (tls is not null) stream = await tls.AuthenticateAsync(stream, host);
        return new PerfConnection(socket, stream);
    }

    public ValueTask WriteAsync(ReadOnlyMemory<byte> frame) => _stream.WriteAsync(frame);

    /// <summary>Reads one response frame (without its length prefix). The memory is valid until the
    /// next read. Reads are buffered: several small responses arriving together cost one system call.</summary>
    public async ValueTask<ReadOnlyMemory<byte>> ReadFrameAsync()
    {
        await FillAsync(4);
        int size = BinaryPrimitives.ReadInt32BigEndian(_buffer.AsSpan(_start));
        if (size < 4 || size > 512 * 1024 * 1024) throw new IOException($"bad response length {size}");
        await FillAsync(4 + size);
        var frame = _buffer.AsMemory(_start + 4, size);
        _start += 4 + size;
        return frame;
    }

    private int _start, _end;

    /// <summary>Makes at least <paramref name="count"/> unread bytes available from _start.</summary>
    private async ValueTask FillAsync(int count)
    {
        if (_end - _start >= count) return;
        if (_buffer.Length - _start < count)
        {
            // Move the unread tail to the front (growing the buffer for a large frame).
            var target = count > _buffer.Length ? new byte[Math.Max(count, _buffer.Length * 2)] : _buffer;
            Buffer.BlockCopy(_buffer, _start, target, 0, _end - _start);
            (_buffer, _end, _start) = (target, _end - _start, 0);
        }
        while (_end - _start < count)
        {
            int n = await _stream.ReadAsync(_buffer.AsMemory(_end));
            if (n == 0) throw new EndOfStreamException("connection closed by the broker");
            _end += n;
        }
    }

    /// <summary>Encodes header + request with a 4-byte length prefix.</summary>
    public static byte[] Encode(IKafkaMessage request, short version, int correlation, string clientId = "samsa-perf")
        => Samsa.Kafka.Broker.Client.KafkaWireClient.EncodeRequest(request, version, correlation, clientId);

    /// <summary>Correlation id sits after length (4), api key (2) and api version (2) in every request header version.</summary>
    public static void SetCorrelation(byte[] frame, int correlation) => BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(8), correlation);

    public static TResponse Decode<TResponse>(ReadOnlyMemory<byte> frame, short apiKey, short version, int correlation) where TResponse : IKafkaMessage<TResponse>
    {
        var reader = new KafkaReader(frame);
        var rh = ResponseHeader.Read(ref reader, ApiMessages.ResponseHeaderVersion(apiKey, version));
        if (rh.CorrelationId != correlation)
            throw new IOException($"correlation id {rh.CorrelationId} does not match request {correlation}");
        return TResponse.Read(ref reader, version);
    }

    public async Task<TResponse> RequestAsync<TResponse>(IKafkaMessage request, short version, int correlation) where TResponse : IKafkaMessage<TResponse>
    {
        await WriteAsync(Encode(request, version, correlation));
        return Decode<TResponse>(await ReadFrameAsync(), request.ApiKey, version, correlation);
    }

    public ValueTask DisposeAsync() => _stream.DisposeAsync();
}

internal readonly record struct ProduceOutcome(long Records, long ValueBytes, long WireBytes, int Requests, TimeSpan Elapsed, double[] LatenciesMs);

internal readonly record struct ConsumeOutcome(long Records, long WireBytes, int Requests, TimeSpan Elapsed);

/// <summary>What one request of the benchmark carries: pre-encoded ProduceRequest frames.</summary>
internal static class PerfLoad
{
    public const short ProduceVersion = 9;
    public const short FetchVersion = 12;
    private static readonly string[] Vocabulary =
    [
        "order", "id", "customer", "amount", "currency", "EUR", "USD", "status", "shipped", "pending", "paid",
        "item", "sku", "quantity", "price", "warehouse", "north", "south", "timestamp", "2026-11-21T08:", "user",
        "session", "click", "view", "cart", "checkout", "true", "false", "null", "region", "eu-west", "us-east",
        "{\"", "\":", ",\"", "}", "[", "]", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9",
    ];

    /// <summary>
    /// A record value. "text": JSON-like words drawn at random from a small vocabulary with random
    /// digits, which lz4 compresses about as well as typical event data; "random": uppercase letters
    /// drawn uniformly, as upstream's ProducerPerformance fills its payload.
    /// </summary>
    public static byte[] Payload(Random random, int size, string kind)
    {
        var value = new byte[size];
        if (kind == "random")
        {
            for (int i = 0; i < size; i++) value[i] = (byte)('A' + random.Next(26));
            return value;
        }
        int p = 0;
        while (p < size)
        {
            var word = Vocabulary[random.Next(Vocabulary.Length)];
            for (int i = 0; i < word.Length && p < size; i++) value[p++] = (byte)word[i];
            if (p < size) value[p++] = (byte)('0' + random.Next(10));
        }
        return value;
    }

    /// <summary>
    /// Builds <paramref name="variants"/> ProduceRequest frames per partition, each with one batch
    /// of <paramref name="recordsPerBatch"/> records (different values per variant). Building them
    /// ahead keeps the load generator's CPU — on the same machine — off the measured path.
    /// </summary>
    public static byte[][][] BuildFrames(string topic, IReadOnlyList<int> partitions, short acks, CompressionType compression,
        int recordSize, int recordsPerBatch, string payload, int variants, out long wireBatchBytes)
    {
        var random = new Random(42);
        var frames = new byte[partitions.Count][][];
        long batchBytes = 0;
        var batches = new byte[variants][];
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        for (int v = 0; v < variants; v++)
        {
            using var builder = new RecordBatchBuilder(compression);
            for (int r = 0; r < recordsPerBatch; r++)
                builder.Append(now, null, Payload(random, recordSize, payload));
            batches[v] = builder.Build();
            batchBytes += batches[v].Length;
        }
        wireBatchBytes = batchBytes / variants;
        for (int p = 0; p < partitions.Count; p++)
        {
            frames[p] = new byte[variants][];
            for (int v = 0; v < variants; v++)
            {
                var request = new ProduceRequest
                {
                    Acks = acks,
                    TimeoutMs = 30000,
                    TopicData = [new ProduceRequest.TopicProduceData { Name = topic, PartitionData = [new ProduceRequest.PartitionProduceData { Index = partitions[p], Records = batches[v] }] }],
                };
                frames[p][v] = PerfConnection.Encode(request, ProduceVersion, 0);
            }
        }
        return frames;
    }

    /// <summary>
    /// Sends <paramref name="requests"/> produce requests round-robin over the partitions with at most
    /// <paramref name="inflight"/> unanswered, and times each from the write to its response.
    /// acks=0 has no responses: the run ends when a Metadata request sent after the last produce is
    /// answered, since a connection's requests are handled in order.
    /// </summary>
    public static async Task<ProduceOutcome> ProduceAsync(PerfConnection connection, byte[][][] frames, short acks, int requests, int inflight,
        int recordsPerBatch, int recordSize, long wireBatchBytes, int firstCorrelation)
    {
        int partitions = frames.Length, variants = frames[0].Length;
        var sendTicks = new long[requests];
        var latencies = new double[acks == 0 ? 0 : requests];
        var sw = Stopwatch.StartNew();
        int sent = 0;
        async ValueTask SendNextAsync()
        {
            var frame = frames[sent % partitions][(sent / partitions) % variants];
            PerfConnection.SetCorrelation(frame, firstCorrelation + sent);
            sendTicks[sent] = Stopwatch.GetTimestamp();
            sent++;
            await connection.WriteAsync(frame);
        }
        if (acks == 0)
        {
            while (sent < requests) await SendNextAsync();
            await connection.RequestAsync<MetadataResponse>(new MetadataRequest { Topics = [] }, 1, firstCorrelation + requests);
        }
        else
        {
            // One loop reads the answers and sends the next request as each slot frees: a slot is
            // refilled on the thread that read its answer (no hand-off to a sender task and back).
            while (sent < Math.Min(inflight, requests)) await SendNextAsync();
            for (int i = 0; i < requests; i++)
            {
                var frame = await connection.ReadFrameAsync();
                long now = Stopwatch.GetTimestamp();
                var response = PerfConnection.Decode<ProduceResponse>(frame, (short)ApiKey.Produce, ProduceVersion, firstCorrelation + i);
                var pr = response.Responses[0].PartitionResponses[0];
                if (pr.ErrorCode != 0)
                    throw new IOException($"produce to partition {pr.Index} failed: {(ErrorCode)pr.ErrorCode} {pr.ErrorMessage}");
                latencies[i] = Stopwatch.GetElapsedTime(sendTicks[i], now).TotalMilliseconds;
                if (sent < requests) await SendNextAsync();
            }
        }
        var elapsed = sw.Elapsed;
        long records = (long)requests * recordsPerBatch;
        return new ProduceOutcome(records, records * recordSize, requests * wireBatchBytes, requests, elapsed, latencies);
    }

    /// <summary>
    /// Reads the partitions from offset 0 until <paramref name="records"/> records came back, one
    /// Fetch in flight (as a consumer has per broker), with the Java consumer's default sizes unless
    /// told otherwise. Batches are counted from their headers and their CRC-32C checked (check.crcs=true).
    /// </summary>
    public static async Task<ConsumeOutcome> ConsumeAsync(PerfConnection connection, string topic, IReadOnlyList<int> partitions, long records,
        int fetchMaxBytes, int partitionMaxBytes, int firstCorrelation)
    {
        var offsets = partitions.ToDictionary(p => p, _ => 0L);
        long received = 0, wire = 0;
        int correlation = firstCorrelation, requests = 0;
        var sw = Stopwatch.StartNew();
        while (received < records)
        {
            var fetch = new FetchRequest
            {
                ReplicaId = -1, MaxWaitMs = 500, MinBytes = 1, MaxBytes = fetchMaxBytes, IsolationLevel = 0,
                Topics = [new FetchRequest.FetchTopic
                {
                    Topic = topic,
                    Partitions = partitions.Select(p => new FetchRequest.FetchPartition
                    {
                        Partition = p, FetchOffset = offsets[p], PartitionMaxBytes = partitionMaxBytes,
                    }).ToList(),
                }],
            };
            var response = await connection.RequestAsync<FetchResponse>(fetch, FetchVersion, correlation++);
            requests++;
            if (response.ErrorCode != 0) throw new IOException($"fetch failed: {(ErrorCode)response.ErrorCode}");
            foreach (var pd in response.Responses[0].Partitions)
            {
                if (pd.ErrorCode != 0) throw new IOException($"fetch of partition {pd.PartitionIndex} failed: {(ErrorCode)pd.ErrorCode}");
                if (pd.Records is not { Length: > 0 } data) continue;
                var span = data.Span;
                int pos = 0;
                while (span.Length - pos >= RecordBatch.HeaderSize)
                {
                    int size = RecordBatch.LogOverhead + BinaryPrimitives.ReadInt32BigEndian(span[(pos + RecordBatch.BatchLengthOffset)..]);
                    if (size > span.Length - pos) break; // a partial batch at the end of the response
                    var batch = new RecordBatch(span.Slice(pos, size));
                    if (batch.ComputeCrc() != batch.Crc) throw new IOException($"CRC mismatch in batch at offset {batch.BaseOffset}");
                    received += batch.RecordsCount;
                    wire += size;
                    offsets[pd.PartitionIndex] = batch.NextOffset;
                    pos += size;
                }
            }
        }
        return new ConsumeOutcome(received, wire, requests, sw.Elapsed);
    }
}
