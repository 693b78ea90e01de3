using System.Buffers.Binary;
using System.Text;
using Samsa.Kafka.Protocol.Compression;
using Samsa.Kafka.Protocol.Primitives;

namespace Samsa.Kafka.Protocol.Records;

/// <summary>A header to write: Kafka header keys are strings, values are nullable bytes.</summary>
public readonly record struct RecordHeaderData(string Key, byte[]? Value);

/// <summary>
/// Writes one RecordBatch v2. Records are encoded as they are appended into a pooled buffer; the
/// batch header, compression and CRC-32C are produced by <see cref="WriteTo(PooledBuffer)"/>.
/// baseTimestamp is the first record's timestamp and record timestamps are stored as deltas from it;
/// maxTimestamp is the largest record timestamp (or the given LogAppendTime). Offsets must increase
/// (gaps are allowed, as after compaction). Used for legacy conversion, control markers, internal
/// topics and tests.
/// </summary>
public sealed class RecordBatchBuilder : IDisposable
{
    private readonly PooledBuffer _records;
    private int _count;
    private int _lastOffsetDelta = -1;
    private long _baseTimestamp = RecordBatch.NoTimestamp;
    private long _maxTimestamp = RecordBatch.NoTimestamp;

    public RecordBatchBuilder(CompressionType compression = CompressionType.None, long baseOffset = 0)
    {
        Compression = compression;
        BaseOffset = baseOffset;
        _records = new PooledBuffer(1024);
    }

    public CompressionType Compression { get; set; }
    public int? CompressionLevel { get; set; }
    public long BaseOffset { get; set; }
    public int PartitionLeaderEpoch { get; set; } = RecordBatch.NoPartitionLeaderEpoch;
    public long ProducerId { get; set; } = RecordBatch.NoProducerId;
    public short ProducerEpoch { get; set; } = RecordBatch.NoProducerEpoch;
    public int BaseSequence { get; set; } = RecordBatch.NoSequence;
    public bool IsTransactional { get; set; }
    public bool IsControl { get; set; }
    /// <summary>When set, the batch is a LogAppendTime batch with this maxTimestamp.</summary>
    public long? LogAppendTime { get; set; }
    /// <summary>KIP-534 delete horizon: when set, stored in baseTimestamp with attribute bit 6.</summary>
    public long? DeleteHorizonMs { get; set; }

    public int Count => _count;
    /// <summary>Offset delta the next plain Append will use.</summary>
    public int NextOffsetDelta => _lastOffsetDelta + 1;
    /// <summary>Size of the batch if written uncompressed.</summary>
    public int UncompressedSizeInBytes => RecordBatch.HeaderSize + _records.Length;

    public void Append(long timestamp, byte[]? key, byte[]? value, IReadOnlyList<RecordHeaderData>? headers = null) =>
        Append(NextOffsetDelta, timestamp, key, value, headers);

    /// <summary>Appends with an explicit offset delta (greater than the previous one). Null arrays are null keys/values.</summary>
    public void Append(int offsetDelta, long timestamp, byte[]? key, byte[]? value,
        IReadOnlyList<RecordHeaderData>? headers = null, sbyte attributes = 0)
    {
        int headersSize = 0;
        int headerCount = headers?.Count ?? 0;
        if (headers != null)
        {
            foreach (RecordHeaderData header in headers)
            {
                if (header.Key is null) throw new ArgumentException("record header keys may not be null", nameof(headers));
                int keyBytes = Encoding.UTF8.GetByteCount(header.Key);
                headersSize += VarInt.SizeOfSigned(keyBytes) + keyBytes + SizeOfNullable(header.Value?.Length ?? -1);
            }
        }
        Span<byte> encodedHeaders = headersSize <= 512 ? stackalloc byte[headersSize] : new byte[headersSize];
        if (headers != null)
        {
            int p = 0;
            foreach (RecordHeaderData header in headers)
            {
                int keyBytes = Encoding.UTF8.GetByteCount(header.Key);
                p += VarInt.WriteSigned(encodedHeaders[p..], keyBytes);
                p += Encoding.UTF8.GetBytes(header.Key, encodedHeaders[p..]);
                p += WriteNullable(encodedHeaders[p..], header.Value is null ? default : header.Value, header.Value is null);
            }
        }
        AppendCore(offsetDelta, timestamp, key, key is null, value, value is null, headerCount, encodedHeaders, attributes);
    }

    /// <summary>Appends a copy of a record read from another batch, keeping its offset delta, timestamp, attributes and headers.</summary>
    public void Append(in Record record) =>
        AppendCore(record.OffsetDelta, record.CreateTimestamp, record.Key, record.IsKeyNull, record.Value, record.IsValueNull,
            record.HeaderCount, record.HeadersData, record.Attributes);

    /// <summary>Appends from spans; <paramref name="encodedHeaders"/> is the wire form of <paramref name="headerCount"/> headers.</summary>
    public void AppendCore(int offsetDelta, long timestamp, ReadOnlySpan<byte> key, bool keyIsNull,
        ReadOnlySpan<byte> value, bool valueIsNull, int headerCount, ReadOnlySpan<byte> encodedHeaders, sbyte attributes = 0)
    {
        if (offsetDelta <= _lastOffsetDelta)
            throw new ArgumentOutOfRangeException(nameof(offsetDelta), $"offset delta {offsetDelta} does not follow {_lastOffsetDelta}");
        if (headerCount < 0) throw new ArgumentOutOfRangeException(nameof(headerCount));
        if (_count == 0) _baseTimestamp = timestamp;
        long timestampDelta = timestamp - _baseTimestamp;
        int keyLength = keyIsNull ? -1 : key.Length;
        int valueLength = valueIsNull ? -1 : value.Length;
        long bodySize = 1 + VarInt.SizeOfSigned(timestampDelta) + VarInt.SizeOfSigned(offsetDelta)
            + SizeOfNullable(keyLength) + SizeOfNullable(valueLength)
            + VarInt.SizeOfSigned(headerCount) + encodedHeaders.Length;
        if (bodySize > int.MaxValue - 5) throw new ArgumentException("record is too large");
        int total = VarInt.SizeOfSigned((int)bodySize) + (int)bodySize;
        Span<byte> dst = _records.GetSpan(total);
        int p = VarInt.WriteSigned(dst, (int)bodySize);
        dst[p++] = (byte)attributes;
        p += VarInt.WriteSigned(dst[p..], timestampDelta);
        p += VarInt.WriteSigned(dst[p..], offsetDelta);
        p += WriteNullable(dst[p..], key, keyIsNull);
        p += WriteNullable(dst[p..], value, valueIsNull);
        p += VarInt.WriteSigned(dst[p..], headerCount);
        encodedHeaders.CopyTo(dst[p..]);
        _records.Advance(total);
        _count++;
        _lastOffsetDelta = offsetDelta;
        if (timestamp > _maxTimestamp) _maxTimestamp = timestamp;
    }

    private static int SizeOfNullable(int length) => VarInt.SizeOfSigned(length) + Math.Max(0, length);

    private static int WriteNullable(Span<byte> dst, ReadOnlySpan<byte> bytes, bool isNull)
    {
        if (isNull) return VarInt.WriteSigned(dst, -1);
        int p = VarInt.WriteSigned(dst, bytes.Length);
        bytes.CopyTo(dst[p..]);
        return p + bytes.Length;
    }

    /// <summary>Appends the finished batch to <paramref name="output"/>; returns its size.</summary>
    public int WriteTo(PooledBuffer output)
    {
        int start = output.Length;
        Span<byte> header = output.GetSpan(RecordBatch.HeaderSize)[..RecordBatch.HeaderSize];
        short attributes = (short)Compression;
        if (LogAppendTime.HasValue) attributes |= RecordBatch.TimestampTypeMask;
        if (IsTransactional) attributes |= RecordBatch.TransactionalFlagMask;
        if (IsControl) attributes |= RecordBatch.ControlFlagMask;
        if (DeleteHorizonMs.HasValue) attributes |= RecordBatch.DeleteHorizonFlagMask;
        BinaryPrimitives.WriteInt64BigEndian(header[RecordBatch.BaseOffsetOffset..], BaseOffset);
        BinaryPrimitives.WriteInt32BigEndian(header[RecordBatch.PartitionLeaderEpochOffset..], PartitionLeaderEpoch);
        header[RecordBatch.MagicOffset] = RecordBatch.CurrentMagic;
        BinaryPrimitives.WriteInt16BigEndian(header[RecordBatch.AttributesOffset..], attributes);
        // With no records appended the batch is written with lastOffsetDelta 0, count 0 and timestamps -1.
        BinaryPrimitives.WriteInt32BigEndian(header[RecordBatch.LastOffsetDeltaOffset..], Math.Max(0, _lastOffsetDelta));
        BinaryPrimitives.WriteInt64BigEndian(header[RecordBatch.BaseTimestampOffset..], DeleteHorizonMs ?? _baseTimestamp);
        BinaryPrimitives.WriteInt64BigEndian(header[RecordBatch.MaxTimestampOffset..], LogAppendTime ?? _maxTimestamp);
        BinaryPrimitives.WriteInt64BigEndian(header[RecordBatch.ProducerIdOffset..], ProducerId);
        BinaryPrimitives.WriteInt16BigEndian(header[RecordBatch.ProducerEpochOffset..], ProducerEpoch);
        BinaryPrimitives.WriteInt32BigEndian(header[RecordBatch.BaseSequenceOffset..], BaseSequence);
        BinaryPrimitives.WriteInt32BigEndian(header[RecordBatch.RecordsCountOffset..], _count);
        output.Advance(RecordBatch.HeaderSize);
        CompressionCodecs.Compress(Compression, _records.WrittenSpan, output, RecordBatch.CurrentMagic, CompressionLevel);
        Span<byte> batch = output.Span[start..];
        BinaryPrimitives.WriteInt32BigEndian(batch[RecordBatch.BatchLengthOffset..], batch.Length - RecordBatch.LogOverhead);
        RecordBatch.WriteCrc(batch);
        return batch.Length;
    }

    /// <summary>
    /// One uncompressed batch of plain (key, value) records, all stamped with
    /// <paramref name="baseTimestamp"/> and numbered from offset delta 0: what a simple producer
    /// sends. Idempotent producers pass their producer id, epoch and first sequence (KIP-98).
    /// </summary>
    public static byte[] Build(IReadOnlyList<(byte[]? Key, byte[]? Value)> records, long baseTimestamp,
        long producerId = RecordBatch.NoProducerId, short producerEpoch = RecordBatch.NoProducerEpoch,
        int baseSequence = RecordBatch.NoSequence)
    {
        using var builder = new RecordBatchBuilder
        {
            ProducerId = producerId,
            ProducerEpoch = producerEpoch,
            BaseSequence = baseSequence,
        };
        foreach (var (key, value) in records) builder.Append(baseTimestamp, key, value);
        return builder.Build();
    }

    public byte[] Build()
    {
        using var output = new PooledBuffer(RecordBatch.HeaderSize + _records.Length + 64);
        WriteTo(output);
        return output.ToArray();
    }

    /// <summary>Forgets the appended records so the builder can be reused (settings are kept).</summary>
    public void Reset()
    {
        _records.Clear();
        _count = 0;
        _lastOffsetDelta = -1;
        _baseTimestamp = RecordBatch.NoTimestamp;
        _maxTimestamp = RecordBatch.NoTimestamp;
    }

    public void Dispose() => _records.Dispose();
}
