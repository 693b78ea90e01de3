using Samsa.Kafka.Broker.Client;
using static Samsa.Kafka.Broker.Tests.EndToEnd.Proof.ProofClient;
using Samsa.Kafka.Protocol.Records;

namespace Samsa.Kafka.Broker.Tests.EndToEnd.Proof;

/// <summary>
/// Issue 3, torn tail: bytes after the last whole batch of the active segment (a write cut short,
/// or junk) are truncated when the broker starts; a consumer sees exactly the records written
/// before, and the next produce continues at the offset after them.
/// </summary>
public class TornTailTests
{
    public enum Tail { RandomGarbage, PartialBatch, BatchWithBadCrc, HugeBatchLength }

    [Theory]
    [InlineData(Tail.RandomGarbage, true)]
    [InlineData(Tail.PartialBatch, true)]
    [InlineData(Tail.BatchWithBadCrc, true)]
    [InlineData(Tail.HugeBatchLength, true)]
    [InlineData(Tail.PartialBatch, false)]
    [InlineData(Tail.RandomGarbage, false)]
    public async Task TornTailOfTheActiveSegmentIsTruncatedOnRestart(Tail tail, bool cleanStop)
    {
        const string topic = "torn";
        var dir = Path.Combine(Path.GetTempPath(), "samsa-torn-" + Guid.NewGuid().ToString("N"));
        var written = new List<(long Offset, string Value)>();
        try
        {
            var live = await LiveBroker.StartAsync(dir);
            await using (var c = await KafkaWireClient.ConnectAsync("127.0.0.1", live.Broker.BoundEndPoint.Port))
            {
                await CreateTopicAsync(c, topic);
                for (int b = 0; b < 10; b++)
                {
                    var values = Enumerable.Range(0, 7).Select(i => $"before-{b}-{i}").ToList();
                    var (error, baseOffset) = await ProduceAsync(c, topic, values.Select(v => ((byte[]?)Bytes("k"), (byte[]?)Bytes(v))).ToList());
                    Assert.Equal(0, error);
                    written.AddRange(values.Select((v, i) => (baseOffset + i, v)));
                }
            }
            await live.Broker.DisposeAsync();
            if (!cleanStop)
            {
                // As after a crash: no clean-shutdown marker, so the broker runs recovery.
                foreach (var marker in Directory.GetFiles(dir, ".kafka_cleanshutdown", SearchOption.AllDirectories)) File.Delete(marker);
            }

            var partitionDir = Path.Combine(dir, topic + "-0");
            var active = Directory.GetFiles(partitionDir, "*.log").OrderBy(f => f).Last();
            long sizeBefore = new FileInfo(active).Length;
            await using (var f = new FileStream(active, FileMode.Append, FileAccess.Write))
                f.Write(TailBytes(tail));

            await using var again = await LiveBroker.StartAsync(dir);
            await using var d = await KafkaWireClient.ConnectAsync("127.0.0.1", again.Broker.BoundEndPoint.Port);

            Assert.Equal(written.Count, await ListOffsetAsync(d, topic, -1));
            var (err, read) = await ReadAllAsync(d, topic);
            Assert.Equal(0, err);
            Assert.Equal(written, read.Select(r => (r.Offset, Str(r.Value)!)).ToList());

            var (perr, nextBase) = await ProduceAsync(d, topic, [(Bytes("k"), Bytes("after"))]);
            Assert.Equal(0, perr);
            Assert.Equal(written.Count, nextBase);
            var (err2, all) = await ReadAllAsync(d, topic);
            Assert.Equal(0, err2);
            Assert.Equal(written.Select(w => w.Value).Append("after"), all.Select(r => Str(r.Value)!));
            Assert.Equal(Enumerable.Range(0, written.Count + 1).Select(i => (long)i), all.Select(r => r.Offset));
            // The junk is gone from the file, not just skipped: the new batch follows the old data.
            var bytes = File.ReadAllBytes(active);
            Assert.True(bytes.Length > sizeBefore + 12, "the new batch is not in the old active segment");
            int newBatchLength = 12 + System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan((int)sizeBefore + 8));
            Assert.True(bytes.Length == sizeBefore + newBatchLength, "the torn tail is still in the segment file: the new batch does not directly follow the old data");
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    private static byte[] TailBytes(Tail tail)
    {
        var valid = RecordBatchBuilder.Build([(Bytes("k"), Bytes("torn-value-that-was-never-acknowledged"))], 1_700_000_000_000);
        // Base offset as the broker would have assigned it, so only the cut (or CRC) makes it invalid.
        System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(valid, 70);
        switch (tail)
        {
            case Tail.RandomGarbage:
                var junk = new byte[333];
                new Random(42).NextBytes(junk);
                return junk;
            case Tail.PartialBatch:
                return valid[..(valid.Length - 9)];
            case Tail.BatchWithBadCrc:
                valid[^1] ^= 0x5A; // a record byte changed after the CRC was computed
                return valid;
            case Tail.HugeBatchLength:
                System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(valid.AsSpan(8), int.MaxValue - 100);
                return valid;
            default:
                throw new ArgumentOutOfRangeException(nameof(tail));
        }
    }
}
