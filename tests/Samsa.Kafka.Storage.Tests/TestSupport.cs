using Samsa.Kafka.Protocol.Records;
using System.Buffers.Binary;
using System.Text;
using Samsa.Kafka.Protocol.Primitives;

namespace Samsa.Kafka.Storage.Tests;

/// <summary>Builds uncompressed v2 record batches the way a producer does (KIP-98 layout).</summary>
internal static class Batches
{
    public record Rec(string? Key, string? Value, long Timestamp);

    public static byte[] Build(IReadOnlyList<Rec> records, long baseOffset = 0, short attributes = 0, long producerId = -1) =>
        BuildRaw(records.Select(r => (r.Key is null ? null : Encoding.UTF8.GetBytes(r.Key), r.Value is null ? null : Encoding.UTF8.GetBytes(r.Value), r.Timestamp)).ToList(),
            baseOffset, attributes, producerId);

    /// <summary>An idempotent producer's batch of <paramref name="count"/> records.</summary>
    public static byte[] Idempotent(long producerId, short epoch, int baseSequence, int count, long timestamp = 1_700_000_000_000) =>
        BuildRaw(Enumerable.Range(0, count).Select(i => ((byte[]?)null, (byte[]?)Encoding.UTF8.GetBytes($"p{producerId}-e{epoch}-s{baseSequence + i}"), timestamp)).ToList(),
            0, 0, producerId, epoch, baseSequence);

    /// <summary>A transaction marker batch (control + transactional attributes) for <paramref name="producerId"/>.</summary>
    public static byte[] Marker(long producerId, ControlRecordType type, long timestamp)
    {
        byte[] key = new byte[4];
        ControlRecords.WriteKey(key, type);
        byte[] value = new byte[6];
        ControlRecords.WriteEndTxnMarkerValue(value, 0);
        return BuildRaw([(key, value, timestamp)], 0, attributes: 0x30, producerId);
    }

    /// <summary>A COMMIT/ABORT marker as a transaction coordinator writes it: the producer's epoch and
    /// the coordinator's epoch in the control record's value.</summary>
    public static byte[] Marker(long producerId, short producerEpoch, ControlRecordType type, int coordinatorEpoch, long timestamp)
    {
        byte[] key = new byte[4];
        ControlRecords.WriteKey(key, type);
        byte[] value = new byte[6];
        ControlRecords.WriteEndTxnMarkerValue(value, coordinatorEpoch);
        return BuildRaw([(key, value, timestamp)], 0, attributes: 0x30, producerId, producerEpoch);
    }

    public static byte[] BuildRaw(IReadOnlyList<(byte[]? Key, byte[]? Value, long Timestamp)> records, long baseOffset = 0, short attributes = 0, long producerId = -1,
        short producerEpoch = -1, int baseSequence = -1)
    {
        long baseTimestamp = records.Min(r => r.Timestamp);
        var body = new MemoryStream();
        for (int i = 0; i < records.Count; i++)
        {
            byte[]? key = records[i].Key;
            byte[]? value = records[i].Value;
            var rec = new MemoryStream();
            rec.WriteByte(0);
            WriteVarLong(rec, records[i].Timestamp - baseTimestamp);
            WriteVarInt(rec, i);
            WriteVarInt(rec, key?.Length ?? -1);
            if (key is not null) rec.Write(key);
            WriteVarInt(rec, value?.Length ?? -1);
            if (value is not null) rec.Write(value);
            WriteVarInt(rec, 0); // headers
            WriteVarInt(body, (int)rec.Length);
            rec.Position = 0;
            rec.CopyTo(body);
        }
        byte[] batch = new byte[61 + body.Length];
        BinaryPrimitives.WriteInt64BigEndian(batch, baseOffset);
        BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(8), batch.Length - 12);
        BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(12), -1);
        batch[16] = 2;
        BinaryPrimitives.WriteInt16BigEndian(batch.AsSpan(21), attributes);
        BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(23), records.Count - 1);
        BinaryPrimitives.WriteInt64BigEndian(batch.AsSpan(27), baseTimestamp);
        BinaryPrimitives.WriteInt64BigEndian(batch.AsSpan(35), records.Max(r => r.Timestamp));
        BinaryPrimitives.WriteInt64BigEndian(batch.AsSpan(43), producerId);
        BinaryPrimitives.WriteInt16BigEndian(batch.AsSpan(51), producerEpoch);
        BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(53), baseSequence);
        BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(57), records.Count);
        body.Position = 0;
        body.Read(batch, 61, (int)body.Length);
        BinaryPrimitives.WriteUInt32BigEndian(batch.AsSpan(17), Crc32C.Compute(batch.AsSpan(21)));
        return batch;
    }

    /// <summary>The same batch with its records section encoded by <paramref name="codec"/>.</summary>
    public static byte[] Compressed(byte[] batch, Samsa.Kafka.Protocol.Compression.CompressionType codec)
    {
        using var output = new Samsa.Kafka.Protocol.Compression.PooledBuffer();
        RecordBatch.Recompress(batch, codec, output);
        return output.ToArray();
    }

    public static byte[] Values(long timestamp, params string[] values) =>
        Build(values.Select(v => new Rec(null, v, timestamp)).ToList());

    private static void WriteVarInt(Stream s, int v)
    {
        Span<byte> buf = stackalloc byte[5];
        s.Write(buf[..VarInt.WriteSigned(buf, v)]);
    }

    private static void WriteVarLong(Stream s, long v)
    {
        Span<byte> buf = stackalloc byte[10];
        s.Write(buf[..VarInt.WriteSigned(buf, v)]);
    }

    /// <summary>Decoded view of stored data: (offset, timestamp, key, value) per record, from a read's file range.</summary>
    public static List<(long Offset, long Timestamp, string? Key, string? Value)> Decode(byte[] bytes, bool allowPartialTail = true)
    {
        var result = new List<(long, long, string?, string?)>();
        int position = 0;
        while (position + 12 <= bytes.Length)
        {
            int size = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(position + 8)) + 12;
            if (position + size > bytes.Length)
            {
                Assert.True(allowPartialTail, "partial batch in the middle");
                break;
            }
            byte[] batch = bytes.AsSpan(position, size).ToArray();
            Assert.True(new RecordBatch(batch).Validate() == RecordBatchError.None, $"bad CRC at {position}");
            foreach (Samsa.Kafka.Protocol.Records.Record r in new RecordBatch(batch).GetRecords())
            {
                string? key = r.IsKeyNull ? null : Encoding.UTF8.GetString(r.Key);
                string? value = r.IsValueNull ? null : Encoding.UTF8.GetString(r.Value);
                result.Add((r.Offset, r.Timestamp, key, value));
            }
            position += size;
        }
        return result;
    }

    public static byte[] ReadRange(FileRange range)
    {
        byte[] bytes = new byte[range.Length];
        int read = RandomAccess.Read(range.File.SafeFileHandle, bytes, range.Position);
        Assert.Equal(range.Length, read);
        return bytes;
    }

    /// <summary>All records from <paramref name="from"/> to the log end, following reads segment by segment.</summary>
    public static List<(long Offset, long Timestamp, string? Key, string? Value)> ReadAll(PartitionLog log, long from = -1)
    {
        var all = new List<(long, long, string?, string?)>();
        long offset = from < 0 ? log.LogStartOffset : from;
        while (offset < log.LogEndOffset)
        {
            FetchDataInfo info = log.Read(offset, 1 << 20, log.LogEndOffset);
            if (info.Records is not FileRange range)
            {
                break;
            }
            var records = Decode(ReadRange(range));
            Assert.NotEmpty(records);
            all.AddRange(records.Where(r => r.Offset >= offset));
            long next = records.Max(r => r.Offset) + 1;
            // Batches may end with compacted-away offsets: continue after the batch's last offset.
            int position = 0;
            byte[] bytes = ReadRange(range);
            while (position + 61 <= bytes.Length)
            {
                var h = new RecordBatch(bytes.AsSpan(position));
                if (position + h.SizeInBytes > bytes.Length) break;
                next = Math.Max(next, h.NextOffset);
                position += h.SizeInBytes;
            }
            offset = next;
        }
        return all;
    }
}

internal sealed class ManualTime(long startMs) : TimeProvider
{
    private long _nowMs = startMs;
    public void Advance(long ms) => Interlocked.Add(ref _nowMs, ms);
    public override DateTimeOffset GetUtcNow() => DateTimeOffset.FromUnixTimeMilliseconds(Interlocked.Read(ref _nowMs));
}

internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "samsa-storage-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Sub(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}
