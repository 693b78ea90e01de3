using System.Buffers.Binary;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Tests.Handlers;

public class ProduceFetchTests
{
    [Fact]
    public async Task ProducedRecordsAreFetchedBackWithOffsets()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t");
        var p1 = await f.Produce("t", 0, HandlerFixture.Batch("a", "b"));
        var p2 = await f.Produce("t", 0, HandlerFixture.Batch("c"), version: 3);
        Assert.Equal((0, 0L), (p1.ErrorCode, p1.BaseOffset));
        Assert.Equal((0, 2L), (p2.ErrorCode, p2.BaseOffset));
        Assert.Equal(-1, p1.LogAppendTimeMs);
        var pd = await f.Fetch("t", 0, 0);
        Assert.Equal(0, pd.ErrorCode);
        Assert.Equal(3, pd.HighWatermark);
        Assert.Equal(0, pd.LogStartOffset);
        Assert.Equal(["a", "b", "c"], HandlerFixture.Values(pd));
        var later = await f.Fetch("t", 0, 2, version: 4);
        Assert.Equal(["c"], HandlerFixture.Values(later));
    }

    [Fact]
    public async Task FetchByTopicIdFromV13()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t");
        await f.Produce("t", 0, HandlerFixture.Batch("x"));
        var pd = await f.Fetch("t", 0, 0, version: 16);
        Assert.Equal(["x"], HandlerFixture.Values(pd));
    }

    [Fact]
    public async Task ProduceErrorsPerPartition()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t");
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, (await f.Produce("nope", 0, HandlerFixture.Batch("a"))).ErrorCode);
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, (await f.Produce("t", 5, HandlerFixture.Batch("a"))).ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidRequiredAcks, (await f.Produce("t", 0, HandlerFixture.Batch("a"), acks: 2)).ErrorCode);

        var corrupt = HandlerFixture.Batch("a");
        corrupt[^1] ^= 0xff;
        var c = await f.Produce("t", 0, corrupt);
        Assert.Equal((short)ErrorCode.CorruptMessage, c.ErrorCode);
        Assert.Contains("crc", c.ErrorMessage);
        Assert.Equal(0, f.Broker.Replicas.GetPartition("t", 0)!.Log.LogEndOffset);
    }

    [Fact]
    public async Task BatchAboveMaxMessageBytesIsMessageTooLarge()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t", 1, ("max.message.bytes", "100"));
        var r = await f.Produce("t", 0, HandlerFixture.Batch(new string('x', 200)));
        Assert.Equal((short)ErrorCode.MessageTooLarge, r.ErrorCode);
        Assert.Equal((short)0, (await f.Produce("t", 0, HandlerFixture.Batch("small"))).ErrorCode);
    }

    [Fact]
    public async Task LogAppendTimeTopicStampsTheBatch()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t", 1, ("message.timestamp.type", "LogAppendTime"));
        long before = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var r = await f.Produce("t", 0, HandlerFixture.Batch("a"));
        Assert.InRange(r.LogAppendTimeMs, before, before + 10_000);
        var pd = await f.Fetch("t", 0, 0);
        var batch = pd.Records!.Value.Span;
        Assert.NotEqual(0, BinaryPrimitives.ReadInt16BigEndian(batch[21..]) & 0x08); // timestamp type bit
        Assert.Equal(r.LogAppendTimeMs, BinaryPrimitives.ReadInt64BigEndian(batch[35..]));
        Assert.Equal(BinaryPrimitives.ReadUInt32BigEndian(batch[17..]), Samsa.Kafka.Protocol.Records.Crc32C.Compute(batch[21..]));
    }

    [Fact]
    public async Task CompressionTypeRecompressesProducedBatches()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t", 1, ("compression.type", "gzip"));
        Assert.Equal(0, (await f.Produce("t", 0, HandlerFixture.Batch("hello", "world"))).ErrorCode);
        var pd = await f.Fetch("t", 0, 0);
        var batch = pd.Records!.Value.Span;
        Assert.Equal(1, BinaryPrimitives.ReadInt16BigEndian(batch[21..]) & 0x07); // gzip
        Assert.Equal(BinaryPrimitives.ReadUInt32BigEndian(batch[17..]), Samsa.Kafka.Protocol.Records.Crc32C.Compute(batch[21..]));
        var values = new List<string>();
        foreach (var b in Samsa.Kafka.Protocol.Records.RecordBatch.Enumerate(batch))
            foreach (var rec in b.GetRecords())
                values.Add(System.Text.Encoding.UTF8.GetString(rec.Value));
        Assert.Equal(["hello", "world"], values);
    }

    [Fact]
    public async Task AcksZeroGetsNoResponse()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t");
        var r = await f.Send<ProduceResponse>(new ProduceRequest
        {
            Acks = 0, TimeoutMs = 1000,
            TopicData = [new() { Name = "t", PartitionData = [new() { Index = 0, Records = HandlerFixture.Batch("a") }] }],
        }, 9);
        Assert.Null(r);
        Assert.Equal(1, f.Broker.Replicas.GetPartition("t", 0)!.Log.LogEndOffset);
    }

    [Fact]
    public async Task MinInsyncReplicasAboveOneFailsAcksAll()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t", 1, ("min.insync.replicas", "2"));
        Assert.Equal((short)ErrorCode.NotEnoughReplicas, (await f.Produce("t", 0, HandlerFixture.Batch("a"), acks: -1)).ErrorCode);
        Assert.Equal(0, (await f.Produce("t", 0, HandlerFixture.Batch("a"), acks: 1)).ErrorCode);
    }

    [Fact]
    public async Task FetchOutOfRangeAndUnknownPartition()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t");
        await f.Produce("t", 0, HandlerFixture.Batch("a"));
        Assert.Equal((short)ErrorCode.OffsetOutOfRange, (await f.Fetch("t", 0, 5)).ErrorCode);
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, (await f.Fetch("t", 3, 0)).ErrorCode);
        var atEnd = await f.Fetch("t", 0, 1);
        Assert.Equal(0, atEnd.ErrorCode);
        Assert.Equal(0, atEnd.Records!.Value.Length);
    }

    [Fact]
    public async Task FirstBatchIsReturnedWholeEvenAbovePartitionMaxBytes()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t");
        await f.Produce("t", 0, HandlerFixture.Batch(new string('a', 500)));
        await f.Produce("t", 0, HandlerFixture.Batch(new string('b', 500)));
        var pd = await f.Fetch("t", 0, 0, partitionMaxBytes: 10, maxBytes: 10);
        Assert.Single(HandlerFixture.Values(pd)); // the first batch (KIP-74), not the second
        var both = await f.Fetch("t", 0, 0, partitionMaxBytes: 1 << 20);
        Assert.Equal(2, HandlerFixture.Values(both).Count);
    }

    [Fact]
    public async Task LongPollFetchCompletesWhenDataArrives()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t");
        var fetch = f.Fetch("t", 0, 0, maxWaitMs: 10_000, minBytes: 1);
        await Task.Delay(100);
        Assert.False(fetch.IsCompleted);
        await f.Produce("t", 0, HandlerFixture.Batch("wake"));
        var pd = await fetch.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(["wake"], HandlerFixture.Values(pd));
    }

    [Fact]
    public async Task LongPollFetchReturnsEmptyAfterMaxWait()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t");
        var started = Environment.TickCount64;
        var pd = await f.Fetch("t", 0, 0, maxWaitMs: 200, minBytes: 1).WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(Environment.TickCount64 - started >= 190);
        Assert.Empty(HandlerFixture.Values(pd));
    }
}
