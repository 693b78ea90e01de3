using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net.Sockets;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Records;
using static Samsa.Kafka.Broker.Tests.EndToEnd.Proof.ProofClient;

namespace Samsa.Kafka.Broker.Tests.EndToEnd.Proof;

/// <summary>
/// Issue 14: frames found by a user's mutation fuzzer that made the broker throw (the connection
/// closed without the protocol's error and a stack trace was logged). Each is sent over TCP to an
/// in-process broker; the answer must be the protocol's error (or a quiet close), and the broker's
/// log must hold no stack trace.
/// </summary>
public sealed class HostileFrameTests : IAsyncDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "samsa-hostile-" + Guid.NewGuid().ToString("N"));
    private readonly ConcurrentQueue<string> _log = new();
    private readonly KafkaBroker _broker;

    public HostileFrameTests()
    {
        _broker = new KafkaBroker(new BrokerConfig(new Dictionary<string, string>
        {
            ["broker.id"] = "1",
            ["listeners"] = "PLAINTEXT://127.0.0.1:0",
            ["log.dirs"] = _dir,
            ["offsets.topic.replication.factor"] = "1",
        }), log: _log.Enqueue);
        _broker.StartAsync().GetAwaiter().GetResult();
    }

    private int Port => _broker.BoundEndPoint.Port;

    public async ValueTask DisposeAsync()
    {
        await _broker.DisposeAsync();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    /// <summary>A .NET stack trace has lines starting "   at "; none may reach the log.</summary>
    private void AssertNoStackTrace()
    {
        var traced = _log.Where(l => l.Contains("\n   at ") || l.Contains(" ---> ")).ToList();
        Assert.True(traced.Count == 0, "stack trace in the broker log:\n" + string.Join("\n----\n", traced));
    }

    [Fact]
    public async Task ProduceV7WithBatchLengthMaxIntIsCorruptMessage()
    {
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", Port);
        await CreateTopicAsync(c, "t");
        var batch = RecordBatchBuilder.Build([(null, Bytes("v"))], DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(RecordBatch.BatchLengthOffset), 0x7fffffff);
        var r = await c.SendAsync<ProduceResponse>(ProduceRequest("t", batch, acks: 1), 7);
        Assert.Equal((short)ErrorCode.CorruptMessage, r!.Responses[0].PartitionResponses[0].ErrorCode);

        // Lengths that wrap in other ways too: int.MaxValue - 11 (exactly wraps to int.MinValue
        // with the 12-byte overhead) and a negative length.
        foreach (int length in new[] { int.MaxValue - 11, int.MaxValue - 12, -1, int.MinValue })
        {
            BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(RecordBatch.BatchLengthOffset), length);
            r = await c.SendAsync<ProduceResponse>(ProduceRequest("t", batch, acks: 1), 7);
            Assert.Equal((short)ErrorCode.CorruptMessage, r!.Responses[0].PartitionResponses[0].ErrorCode);
        }
        // The connection is still usable and nothing was stored.
        var (err, records) = await ReadAllAsync(c, "t");
        Assert.Equal(0, err);
        Assert.Empty(records);
        AssertNoStackTrace();
    }

    [Fact]
    public async Task CompactedTopicWithUnreadableRecordsIsCorruptMessage()
    {
        // A batch whose CRC is right but whose records do not parse (the key check of a compacted
        // topic reads them): upstream's LogValidator answers CORRUPT_MESSAGE.
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", Port);
        await CreateTopicAsync(c, "compacted", ("cleanup.policy", "compact"));
        var batch = RecordBatchBuilder.Build([(Bytes("k"), Bytes("v"))], DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        batch[RecordBatch.RecordsOffset] = 0x7f; // record length varint far past the batch
        BinaryPrimitives.WriteUInt32BigEndian(batch.AsSpan(RecordBatch.CrcOffset), Crc32C.Compute(batch.AsSpan(RecordBatch.AttributesOffset)));
        var r = await c.SendAsync<ProduceResponse>(ProduceRequest("compacted", batch, acks: 1), 8);
        Assert.Equal((short)ErrorCode.CorruptMessage, r!.Responses[0].PartitionResponses[0].ErrorCode);
        var md = await c.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [new() { Name = "compacted" }] }, 9);
        Assert.Equal(0, md!.Topics[0].ErrorCode);
        AssertNoStackTrace();
    }

    [Fact]
    public async Task ProduceV2WithAMessageSetShorterThanAMessageHeaderIsCorruptMessage()
    {
        // Found by the produce-validator fuzz target: 17 bytes whose magic byte reads 0 or 1 went
        // to the legacy path, which read the attributes byte past the end (IndexOutOfRange).
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", Port);
        await CreateTopicAsync(c, "old");
        var records = Convert.FromHexString("00000000000000000000" + "026b06bef89d01"); // magic (offset 16) 1
        Assert.Equal(17, records.Length);
        var r = await c.SendAsync<ProduceResponse>(ProduceRequest("old", records, acks: 1), 2);
        Assert.Equal((short)ErrorCode.CorruptMessage, r!.Responses[0].PartitionResponses[0].ErrorCode);
        AssertNoStackTrace();
        Assert.DoesNotContain(_log, l => l.Contains("IndexOutOfRange"));
    }

    [Theory]
    [InlineData(10)]
    [InlineData(11)]
    public async Task MetadataByTopicIdBeforeV12IsInvalidRequest(short version)
    {
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", Port);
        await CreateTopicAsync(c, "known");
        Guid knownId = _broker.Replicas.GetTopic("known")!.Id;
        Guid unknownId = Guid.NewGuid();

        // KafkaApis.handleTopicMetadataRequest: a null name (v10/v11) is an InvalidRequestException,
        // answered by MetadataRequest.getErrorResponse: every topic INVALID_REQUEST, null name as "".
        foreach (var id in new[] { knownId, unknownId })
        {
            var r = await c.SendAsync<MetadataResponse>(new MetadataRequest
            {
                Topics = [new() { Name = null, TopicId = id }, new() { Name = "known" }],
            }, version);
            Assert.Equal(2, r!.Topics.Count);
            Assert.All(r.Topics, t => Assert.Equal((short)ErrorCode.InvalidRequest, t.ErrorCode));
            Assert.Equal("", r.Topics[0].Name);
            Assert.Equal(id, r.Topics[0].TopicId);
            Assert.Equal("known", r.Topics[1].Name);
            Assert.Empty(r.Topics[0].Partitions);
            Assert.Empty(r.Brokers);
        }
        // A name with a non-zero id: "Topic IDs are not supported in requests for version 10/11".
        var named = await c.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [new() { Name = "known", TopicId = knownId }] }, version);
        Assert.Equal((short)ErrorCode.InvalidRequest, named!.Topics[0].ErrorCode);
        Assert.Equal("known", named.Topics[0].Name);

        // The connection stays open and ordinary lookups still work.
        var ok = await c.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [new() { Name = "known" }] }, version);
        Assert.Equal(0, ok!.Topics[0].ErrorCode);
        Assert.Equal(knownId, ok.Topics[0].TopicId);
        AssertNoStackTrace();
    }

    [Fact]
    public async Task MetadataV12ByTopicIdFillsTheNameOrAnswersUnknownTopicId()
    {
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", Port);
        await CreateTopicAsync(c, "known");
        Guid knownId = _broker.Replicas.GetTopic("known")!.Id;
        var r = await c.SendAsync<MetadataResponse>(new MetadataRequest
        {
            Topics = [new() { Name = null, TopicId = knownId }, new() { Name = null, TopicId = Guid.NewGuid() }],
        }, 12);
        Assert.Equal(0, r!.Topics[0].ErrorCode);
        Assert.Equal("known", r.Topics[0].Name);
        Assert.Equal((short)ErrorCode.UnknownTopicId, r.Topics[1].ErrorCode);
        Assert.Null(r.Topics[1].Name);
        AssertNoStackTrace();
    }

    [Fact]
    public async Task ClientLeavingBeforeItsZeroCopyFetchAnswerClosesQuietly()
    {
        await using (var c = await KafkaWireClient.ConnectAsync("127.0.0.1", Port))
        {
            await CreateTopicAsync(c, "big");
            var value = new byte[64 * 1024];
            new Random(14).NextBytes(value);
            for (int i = 0; i < 16; i++)
                Assert.Equal(0, (await ProduceAsync(c, "big", [(null, value)])).Error);
        }
        var fetch = KafkaWireClient.EncodeRequest(new FetchRequest
        {
            MaxWaitMs = 0, MinBytes = 0, MaxBytes = 8 << 20, SessionEpoch = -1, ReplicaId = -1,
            Topics = [new() { Topic = "big", Partitions = [new() { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 8 << 20 }] }],
        }, 12, 1, "leaver");
        // Many fetches in one go, then a reset (linger 0) without reading: the broker handles the
        // frames it already received and finds the socket gone while sending file ranges.
        var burst = Enumerable.Repeat(fetch, 32).SelectMany(f => f).ToArray();
        for (int round = 0; round < 20; round++)
        {
            using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            s.ReceiveBufferSize = 4096;
            await s.ConnectAsync("127.0.0.1", Port);
            s.LingerState = new LingerOption(true, 0);
            await s.SendAsync(burst);
            if (round % 2 == 1) await Task.Delay(5);
            s.Close();
        }
        // Wait until the broker has dropped every one of those connections.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (_broker.ClientConnectionCount > 0 && DateTime.UtcNow < deadline) await Task.Delay(20);
        Assert.Equal(0, _broker.ClientConnectionCount);
        AssertNoStackTrace();
        // Departed clients are not errors: at most one line each, none naming NotSupportedException.
        Assert.DoesNotContain(_log, l => l.Contains("NotSupportedException"));

        // The broker still serves.
        await using var after = await KafkaWireClient.ConnectAsync("127.0.0.1", Port);
        var (err, records) = await ReadAllAsync(after, "big");
        Assert.Equal(0, err);
        Assert.Equal(16, records.Count);
    }

    [Fact]
    public async Task EveryServedApiWithACutBodyClosesWithOneLogLine()
    {
        // Every served API/version whose body is missing after the header (where an empty body is
        // not itself a valid request): upstream cannot parse it and closes the connection; Samsa
        // must too, with one log line and no stack trace.
        int closes = 0;
        foreach (var entry in Samsa.Kafka.Broker.Handlers.ApiTable.Entries)
        {
            for (short v = entry.MinVersion; v <= entry.MaxVersion; v++)
            {
                if (EmptyBodyParses(entry.Key, v)) continue;
                short key = (short)entry.Key;
                short headerVersion = ApiMessages.RequestHeaderVersion(key, v);
                var header = new RequestHeader { RequestApiKey = key, RequestApiVersion = v, CorrelationId = 5, ClientId = "cut" };
                var frame = new byte[4 + header.Size(headerVersion)];
                BinaryPrimitives.WriteInt32BigEndian(frame, frame.Length - 4);
                var w = new Samsa.Kafka.Protocol.Primitives.KafkaWriter(frame.AsSpan(4));
                header.Write(ref w, headerVersion);
                using var tcp = new TcpClient();
                await tcp.ConnectAsync("127.0.0.1", Port);
                var stream = tcp.GetStream();
                await stream.WriteAsync(frame);
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
                int n;
                try { n = await stream.ReadAsync(new byte[64], timeout.Token); } catch (IOException) { n = 0; }
                Assert.True(n == 0, $"{entry.Key} v{v}: a request without a body was answered instead of closing");
                closes++;
            }
        }
        Assert.True(closes > 200, $"only {closes} API versions tried");
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (_log.Count(l => l.Contains("malformed")) < closes && DateTime.UtcNow < deadline) await Task.Delay(20);
        Assert.Equal(closes, _log.Count(l => l.Contains("malformed")));
        AssertNoStackTrace();
    }

    private static bool EmptyBodyParses(ApiKey key, short version)
    {
        try
        {
            var reader = new Samsa.Kafka.Protocol.Primitives.KafkaReader(ReadOnlyMemory<byte>.Empty);
            ApiMessages.ReadRequest(key, ref reader, version);
            return true;
        }
        catch (Samsa.Kafka.Protocol.Primitives.KafkaProtocolException) { return false; }
    }
}
