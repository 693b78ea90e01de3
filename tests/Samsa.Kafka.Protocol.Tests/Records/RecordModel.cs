using System.Buffers.Binary;
using System.Text;
using Samsa.Kafka.Protocol.Compression;
using Samsa.Kafka.Protocol.Primitives;
using Samsa.Kafka.Protocol.Records;

namespace Samsa.Kafka.Protocol.Tests.Records;

/// <summary>A plain model of a record, for comparing what was written with what is read back.</summary>
internal sealed record TestRecord(int OffsetDelta, long Timestamp, byte[]? Key, byte[]? Value, IReadOnlyList<RecordHeaderData> Headers)
{
    public bool Matches(TestRecord other) =>
        OffsetDelta == other.OffsetDelta && Timestamp == other.Timestamp
        && BytesEqual(Key, other.Key) && BytesEqual(Value, other.Value)
        && Headers.Count == other.Headers.Count
        && Headers.Zip(other.Headers).All(p => p.First.Key == p.Second.Key && BytesEqual(p.First.Value, p.Second.Value));

    public override string ToString() =>
        $"#{OffsetDelta}@{Timestamp} key={Show(Key)} value={Show(Value)} headers=[{string.Join(",", Headers.Select(h => h.Key + "=" + Show(h.Value)))}]";

    private static string Show(byte[]? b) => b is null ? "null" : Convert.ToHexString(b);

    private static bool BytesEqual(byte[]? a, byte[]? b) => a is null ? b is null : b is not null && a.AsSpan().SequenceEqual(b);
}

internal static class RecordModel
{
    /// <summary>Records from FsCheck-generated payloads; the seed decides nulls, headers and timestamps.</summary>
    public static List<TestRecord> FromPayloads(byte[][] payloads, int seed)
    {
        var random = new Random(seed);
        long baseTimestamp = 1_600_000_000_000L + random.Next();
        var records = new List<TestRecord>();
        int offsetDelta = 0;
        for (int i = 0; i < payloads.Length; i++)
        {
            byte[]? key = random.Next(5) == 0 ? null : payloads[(i + 1) % payloads.Length];
            byte[]? value = random.Next(9) == 0 ? null : payloads[i];
            var headers = new List<RecordHeaderData>();
            int headerCount = random.Next(4) == 0 ? random.Next(1, 4) : 0;
            for (int h = 0; h < headerCount; h++)
                headers.Add(new RecordHeaderData("h" + random.Next(1000) + "-é", random.Next(3) == 0 ? null : payloads[(i + h) % payloads.Length]));
            records.Add(new TestRecord(offsetDelta, baseTimestamp + random.Next(-5000, 5000), key, value, headers));
            offsetDelta += random.Next(8) == 0 ? 2 : 1; // occasional gaps, as after compaction
        }
        return records;
    }

    public static byte[] Build(IEnumerable<TestRecord> records, CompressionType compression = CompressionType.None, long baseOffset = 0,
        Action<RecordBatchBuilder>? configure = null)
    {
        using var builder = new RecordBatchBuilder(compression, baseOffset);
        configure?.Invoke(builder);
        foreach (TestRecord r in records)
            builder.Append(r.OffsetDelta, r.Timestamp, r.Key, r.Value, r.Headers);
        return builder.Build();
    }

    /// <summary>Reads a whole batch the way a broker would: frame, validate, iterate every record and header.</summary>
    public static List<TestRecord> Read(ReadOnlySpan<byte> buffer, int maxDecompressed = 64 << 20)
    {
        var result = new List<TestRecord>();
        foreach (RecordBatch batch in RecordBatch.Enumerate(buffer))
        {
            batch.EnsureValid();
            foreach (Record record in batch.GetRecords(maxDecompressed))
            {
                var headers = new List<RecordHeaderData>();
                foreach (RecordHeader header in record.Headers)
                    headers.Add(new RecordHeaderData(header.KeyString, header.IsValueNull ? null : header.Value.ToArray()));
                result.Add(new TestRecord(record.OffsetDelta, record.Timestamp,
                    record.IsKeyNull ? null : record.Key.ToArray(), record.IsValueNull ? null : record.Value.ToArray(), headers));
            }
        }
        return result;
    }

    /// <summary>Wraps a hand-made records section in a v2 header with a correct CRC.</summary>
    public static byte[] WrapRecords(ReadOnlySpan<byte> records, int count, int lastOffsetDelta = -1)
    {
        byte[] batch = new byte[RecordBatch.HeaderSize + records.Length];
        BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(RecordBatch.BatchLengthOffset), batch.Length - RecordBatch.LogOverhead);
        BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(RecordBatch.PartitionLeaderEpochOffset), -1);
        batch[RecordBatch.MagicOffset] = 2;
        BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(RecordBatch.LastOffsetDeltaOffset), lastOffsetDelta < 0 ? Math.Max(0, count - 1) : lastOffsetDelta);
        BinaryPrimitives.WriteInt64BigEndian(batch.AsSpan(RecordBatch.ProducerIdOffset), -1);
        BinaryPrimitives.WriteInt16BigEndian(batch.AsSpan(RecordBatch.ProducerEpochOffset), -1);
        BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(RecordBatch.BaseSequenceOffset), -1);
        BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(RecordBatch.RecordsCountOffset), count);
        records.CopyTo(batch.AsSpan(RecordBatch.RecordsOffset));
        RecordBatch.WriteCrc(batch);
        return batch;
    }


    public static byte[] Varints(params long[] values)
    {
        var bytes = new List<byte>();
        Span<byte> tmp = stackalloc byte[10];
        foreach (long v in values)
        {
            int n = VarInt.WriteSigned(tmp, v);
            bytes.AddRange(tmp[..n].ToArray());
        }
        return bytes.ToArray();
    }

    public static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);
}
