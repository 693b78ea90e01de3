using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Samsa.Kafka.Protocol.Compression;
using Samsa.Kafka.Protocol.Primitives;
using Samsa.Kafka.Protocol.Records;
using Xunit;
using Record = Samsa.Kafka.Protocol.Records.Record;

namespace Samsa.Kafka.Protocol.Tests.Records;

public class LegacyAndControlTests
{
    private static List<TestRecord> Expected(string file)
    {
        using JsonDocument manifest = JsonDocument.Parse(File.ReadAllText(TestData.GoldenPath("manifest.json")));
        var list = new List<TestRecord>();
        foreach (JsonElement r in manifest.RootElement.GetProperty(file).GetProperty("records").EnumerateArray())
        {
            static byte[]? Bytes(JsonElement e) => e.ValueKind == JsonValueKind.Null ? null : Encoding.UTF8.GetBytes(e.GetString()!);
            var headers = r.GetProperty("headers").EnumerateArray()
                .Select(h => new RecordHeaderData(h[0].GetString()!, Bytes(h[1]))).ToList();
            list.Add(new TestRecord(r.GetProperty("offsetDelta").GetInt32(), r.GetProperty("timestamp").GetInt64(),
                Bytes(r.GetProperty("key")), Bytes(r.GetProperty("value")), headers));
        }
        return list;
    }

    private static void AssertSame(IReadOnlyList<TestRecord> expected, IReadOnlyList<TestRecord> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
            Assert.True(expected[i].Matches(actual[i]), $"record {i}: expected {expected[i]} got {actual[i]}");
    }

    [Theory]
    [InlineData("batch-v2-none.bin", CompressionType.None)]
    [InlineData("batch-v2-gzip.bin", CompressionType.Gzip)]
    [InlineData("batch-v2-snappy.bin", CompressionType.Snappy)]
    [InlineData("batch-v2-lz4.bin", CompressionType.Lz4)]
    [InlineData("batch-v2-zstd.bin", CompressionType.Zstd)]
    public void Kafka_python_v2_batches_validate_and_read(string file, CompressionType codec)
    {
        byte[] bytes = TestData.Golden(file);
        var batch = new RecordBatch(bytes);
        Assert.Equal(RecordBatchError.None, batch.Validate());
        Assert.Equal(RecordBatchError.None, batch.ValidateFromClient());
        Assert.Equal(codec, batch.Compression);
        Assert.Equal(4242, batch.ProducerId);
        Assert.Equal((short)3, batch.ProducerEpoch);
        Assert.Equal(17, batch.BaseSequence);
        Assert.Equal(17 + 39, batch.LastSequence);
        AssertSame(Expected(file), RecordModel.Read(bytes));
    }

    [Theory]
    [InlineData("messageset-v0-none.bin", 0)]
    [InlineData("messageset-v0-gzip.bin", 0)]
    [InlineData("messageset-v0-snappy.bin", 0)]
    [InlineData("messageset-v0-lz4.bin", 0)]
    [InlineData("messageset-v1-none.bin", 1)]
    [InlineData("messageset-v1-gzip.bin", 1)]
    [InlineData("messageset-v1-snappy.bin", 1)]
    [InlineData("messageset-v1-lz4.bin", 1)]
    public void Kafka_python_legacy_message_sets_convert_to_v2(string file, byte magic)
    {
        byte[] bytes = TestData.Golden(file);
        Assert.Equal(magic, LegacyMessageSet.PeekMagic(bytes));
        foreach (CompressionType target in new[] { CompressionType.None, CompressionType.Lz4, CompressionType.Zstd })
        {
            using var output = new PooledBuffer();
            int count = LegacyMessageSet.ConvertToRecordBatch(bytes, target, output, baseOffset: 10);
            Assert.Equal(25, count);
            var batch = new RecordBatch(output.WrittenSpan);
            Assert.Equal(RecordBatchError.None, batch.Validate());
            Assert.Equal(target, batch.Compression);
            Assert.Equal(10, batch.BaseOffset);
            AssertSame(Expected(file), RecordModel.Read(output.WrittenSpan));
        }
    }

    [Fact]
    public void Legacy_crc_corruption_and_truncation_are_detected()
    {
        foreach (string file in new[] { "messageset-v1-none.bin", "messageset-v0-gzip.bin", "messageset-v1-lz4.bin" })
        {
            byte[] bytes = TestData.Golden(file);
            // The CRC covers magic..end of each message (not the offset and size in front of it).
            int firstEnd = LegacyMessageSet.LogOverhead + BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(8));
            for (int position = LegacyMessageSet.MagicOffset + 1; position < firstEnd; position += 3)
            {
                byte[] corrupt = (byte[])bytes.Clone();
                corrupt[position] ^= 0x10;
                using var output = new PooledBuffer();
                Assert.Throws<KafkaProtocolException>(() => LegacyMessageSet.ConvertToRecordBatch(corrupt, CompressionType.None, output));
            }
            var boundaries = new HashSet<int>();
            for (int p = 0; p < bytes.Length; p += LegacyMessageSet.LogOverhead + BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(p + 8)))
                boundaries.Add(p);
            for (int cut = 1; cut < bytes.Length; cut++)
            {
                if (boundaries.Contains(cut)) continue; // a whole number of messages is a valid, shorter set
                using var output = new PooledBuffer();
                Assert.Throws<KafkaProtocolException>(() => LegacyMessageSet.ConvertToRecordBatch(bytes.AsSpan(0, cut), CompressionType.None, output));
            }
        }
    }

    [Fact]
    public void Legacy_message_fields_are_read()
    {
        using var output = new PooledBuffer();
        LegacyMessageSet.WriteMessage(output, 1, 7, 123456, "k"u8, false, default, true);
        LegacyMessageSet.WriteMessage(output, 1, 8, 123457, default, true, "value"u8, false);
        var messages = new List<(long, long, bool, string)>();
        foreach (LegacyMessage m in LegacyMessageSet.Enumerate(output.WrittenSpan))
        {
            Assert.Equal(m.Crc, m.ComputeCrc());
            Assert.Equal(TimestampType.CreateTime, m.TimestampType);
            messages.Add((m.Offset, m.Timestamp, m.IsKeyNull, m.IsValueNull ? "<null>" : Encoding.UTF8.GetString(m.Value)));
        }
        Assert.Equal([(7L, 123456L, false, "<null>"), (8L, 123457L, true, "value")], messages);
    }

    [Theory]
    [InlineData(0, CompressionType.None)]
    [InlineData(0, CompressionType.Gzip)]
    [InlineData(0, CompressionType.Lz4)]
    [InlineData(1, CompressionType.None)]
    [InlineData(1, CompressionType.Snappy)]
    [InlineData(1, CompressionType.Lz4)]
    public void Down_conversion_for_old_consumers_round_trips(byte magic, CompressionType codec)
    {
        List<TestRecord> records = RecordModel.FromPayloads([[1], [2, 2], [3, 3, 3], [], [5]], 8)
            .Select(r => r with { Headers = [] }).ToList();
        byte[] batch = RecordModel.Build(records, codec, baseOffset: 300);
        using var legacy = new PooledBuffer();
        LegacyMessageSet.ConvertFromRecordBatch(batch, magic, legacy);
        Assert.Equal(magic, LegacyMessageSet.PeekMagic(legacy.WrittenSpan));
        int top = 0;
        foreach (LegacyMessage m in LegacyMessageSet.Enumerate(legacy.WrittenSpan))
        {
            top++;
            Assert.Equal(codec, m.Compression);
            if (codec != CompressionType.None) Assert.Equal(300 + records[^1].OffsetDelta, m.Offset); // wrapper carries the last offset
        }
        Assert.Equal(codec == CompressionType.None ? records.Count : 1, top);

        using var back = new PooledBuffer();
        Assert.Equal(records.Count, LegacyMessageSet.ConvertToRecordBatch(legacy.WrittenSpan, CompressionType.None, back));
        List<TestRecord> read = RecordModel.Read(back.WrittenSpan);
        // Offsets are reassigned densely and magic 0 has no timestamps; keys and values survive.
        for (int i = 0; i < records.Count; i++)
        {
            Assert.Equal(i, read[i].OffsetDelta);
            Assert.Equal(magic == 0 ? -1 : records[i].Timestamp, read[i].Timestamp);
            Assert.True((records[i] with { OffsetDelta = i, Timestamp = read[i].Timestamp }).Matches(read[i]));
        }
    }

    [Fact]
    public void Zstd_batches_cannot_be_down_converted()
    {
        byte[] batch = RecordModel.Build([new TestRecord(0, 1, null, [1], [])], CompressionType.Zstd);
        using var legacy = new PooledBuffer();
        var e = Assert.Throws<KafkaProtocolException>(() => LegacyMessageSet.ConvertFromRecordBatch(batch, 1, legacy));
        Assert.Equal(ProtocolErrorKind.Compression, e.Kind);
    }

    [Theory]
    [InlineData(ControlRecordType.Commit)]
    [InlineData(ControlRecordType.Abort)]
    public void Transaction_markers_are_control_batches(ControlRecordType type)
    {
        byte[] marker = ControlRecords.BuildEndTxnMarkerBatch(type, producerId: 1234, producerEpoch: 7, coordinatorEpoch: 55,
            timestamp: 1_700_000_000_000, baseOffset: 90, partitionLeaderEpoch: 4);
        var batch = new RecordBatch(marker);
        Assert.Equal(RecordBatchError.None, batch.Validate());
        Assert.True(batch.IsControl);
        Assert.True(batch.IsTransactional);
        Assert.Equal(1234, batch.ProducerId);
        Assert.Equal((short)7, batch.ProducerEpoch);
        Assert.Equal(RecordBatch.NoSequence, batch.BaseSequence);
        Assert.Equal(1, batch.RecordsCount);
        Assert.Equal(90, batch.BaseOffset);
        Assert.Equal(4, batch.PartitionLeaderEpoch);
        Assert.Equal(RecordBatchError.ControlBatchFromClient, batch.ValidateFromClient());
        int seen = 0;
        foreach (Record r in batch.GetRecords())
        {
            seen++;
            Assert.Equal(type, ControlRecords.ParseType(r.Key));
            Assert.Equal(55, ControlRecords.ParseEndTxnMarkerCoordinatorEpoch(r.Value));
            Assert.Equal(1_700_000_000_000, r.Timestamp);
            // Wire form: version 0 then the type id, both int16.
            Assert.Equal(0, BinaryPrimitives.ReadInt16BigEndian(r.Key));
            Assert.Equal((short)type, BinaryPrimitives.ReadInt16BigEndian(r.Key[2..]));
        }
        Assert.Equal(1, seen);
    }

    [Fact]
    public void Control_keys_are_checked()
    {
        Assert.Throws<KafkaProtocolException>(() => ControlRecords.ParseType([0, 0, 1]));
        Assert.Throws<KafkaProtocolException>(() => ControlRecords.ParseType([0xFF, 0xFF, 0, 1]));
        Assert.Equal(ControlRecordType.Unknown, ControlRecords.ParseType([0, 0, 0, 99]));
        Assert.Equal(ControlRecordType.LeaderChange, ControlRecords.ParseType([0, 0, 0, 2]));
        Assert.Throws<KafkaProtocolException>(() => ControlRecords.ParseEndTxnMarkerCoordinatorEpoch([0, 0, 0, 0, 1]));
    }
}
