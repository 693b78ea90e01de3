using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Compression;
using Samsa.Kafka.Protocol.Records;

namespace Samsa.Kafka.Broker.Tests.Handlers;

public class LegacyProduceTests
{
    private static byte[] MessageSet(byte magic, params string[] values)
    {
        using var buffer = new PooledBuffer();
        long ts = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        for (int i = 0; i < values.Length; i++)
            LegacyMessageSet.WriteMessage(buffer, magic, i, ts, default, true, System.Text.Encoding.UTF8.GetBytes(values[i]), false);
        return buffer.ToArray();
    }

    [Theory]
    [InlineData((byte)0, (short)0)]
    [InlineData((byte)0, (short)1)]
    [InlineData((byte)1, (short)2)]
    public async Task LegacyMessageSetsAreConvertedToV2(byte magic, short version)
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t");
        await f.Produce("t", 0, HandlerFixture.Batch("first"));
        var r = await f.Produce("t", 0, MessageSet(magic, "old-a", "old-b"), version);
        Assert.Equal((0, 1L), (r.ErrorCode, r.BaseOffset));
        var pd = await f.Fetch("t", 0, 0);
        Assert.Equal(["first", "old-a", "old-b"], HandlerFixture.Values(pd));
    }

    [Fact]
    public async Task LegacyMessageWithBadCrcIsCorrupt()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t");
        var set = MessageSet(1, "x");
        set[^1] ^= 0x55;
        var r = await f.Produce("t", 0, set, 2);
        Assert.Equal((short)ErrorCode.CorruptMessage, r.ErrorCode);
        Assert.Equal(0, f.Broker.Replicas.GetPartition("t", 0)!.Log.LogEndOffset);
    }

    [Fact]
    public async Task IdempotentRetryIsAnsweredWithTheFirstOffsetOnFileLogs()
    {
        var dir = Path.Combine(Path.GetTempPath(), "samsa-idem-" + Guid.NewGuid().ToString("N"));
        try
        {
            var broker = new KafkaBroker(new Samsa.Kafka.Broker.Config.BrokerConfig(new Dictionary<string, string>
            {
                ["broker.id"] = "1", ["log.dirs"] = dir,
            }));
            await using (broker)
            {
                broker.Replicas.CreateTopic("t", 1, 1, new Dictionary<string, string>(), false);
                var partition = broker.Replicas.GetPartition("t", 0)!;
                byte[] Idem(int seq) => RecordBatchBuilder.Build([(null, "v"u8.ToArray())],
                    DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), producerId: 1000, producerEpoch: 0, baseSequence: seq);
                var first = broker.Replicas.Append(partition, Idem(0), 9);
                var retry = broker.Replicas.Append(partition, Idem(0), 9);
                Assert.Equal((ErrorCode.None, 0L), (first.Error, first.Info.FirstOffset));
                Assert.Equal((ErrorCode.None, 0L), (retry.Error, retry.Info.FirstOffset));
                Assert.Equal(1, partition.Log.LogEndOffset);
                var gap = broker.Replicas.Append(partition, Idem(5), 9);
                Assert.Equal(ErrorCode.OutOfOrderSequenceNumber, gap.Error);
            }
        }
        finally
        {
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }
}

public class LegacyFetchTests
{
    private static List<(byte Magic, long Offset, string Value)> Legacy(ReadOnlySpan<byte> data)
    {
        var list = new List<(byte, long, string)>();
        foreach (var m in LegacyMessageSet.Enumerate(data))
        {
            if (m.Compression == CompressionType.None)
            {
                list.Add((m.Magic, m.Offset, System.Text.Encoding.UTF8.GetString(m.Value)));
                continue;
            }
            using var inner = CompressionCodecs.Decompress(m.Compression, m.Value, 1 << 20, m.Magic);
            foreach (var im in LegacyMessageSet.Enumerate(inner.WrittenSpan))
                list.Add((im.Magic, im.Offset, System.Text.Encoding.UTF8.GetString(im.Value)));
        }
        return list;
    }

    [Theory]
    [InlineData((short)0, (byte)0)]
    [InlineData((short)1, (byte)0)]
    [InlineData((short)2, (byte)1)]
    [InlineData((short)3, (byte)1)]
    public async Task OldFetchVersionsGetDownConvertedMessages(short version, byte magic)
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t");
        await f.Produce("t", 0, HandlerFixture.Batch("a", "b"));
        await f.Produce("t", 0, HandlerFixture.Batch("c"));
        var pd = await f.Fetch("t", 0, 1, version: version);
        Assert.Equal(0, pd.ErrorCode);
        Assert.Equal(3, pd.HighWatermark);
        var messages = Legacy(pd.Records!.Value.Span);
        Assert.All(messages, m => Assert.Equal(magic, m.Magic));
        // Whole batches are converted: the batch holding offset 1 starts at offset 0.
        Assert.Equal([(0L, "a"), (1L, "b"), (2L, "c")], messages.Select(m => (m.Offset, m.Value)));
    }

    [Fact]
    public async Task DownConversionCanBeDisabledPerTopic()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t", 1, ("message.downconversion.enable", "false"));
        await f.Produce("t", 0, HandlerFixture.Batch("a"));
        Assert.Equal((short)ErrorCode.UnsupportedVersion, (await f.Fetch("t", 0, 0, version: 2)).ErrorCode);
        Assert.Equal(0, (await f.Fetch("t", 0, 0, version: 4)).ErrorCode);
    }

    [Fact]
    public async Task CompressedBatchesBecomeWrapperMessages()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t", 1, ("compression.type", "gzip"));
        await f.Produce("t", 0, HandlerFixture.Batch("x", "y"));
        var pd = await f.Fetch("t", 0, 0, version: 3);
        Assert.Equal([(0L, "x"), (1L, "y")], Legacy(pd.Records!.Value.Span).Select(m => (m.Offset, m.Value)));
    }
}
