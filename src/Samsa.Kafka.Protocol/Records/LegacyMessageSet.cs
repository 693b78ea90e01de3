using System.Buffers.Binary;
using Samsa.Kafka.Protocol.Compression;
using Samsa.Kafka.Protocol.Primitives;

namespace Samsa.Kafka.Protocol.Records;

/// <summary>
/// One entry of a legacy message set (magic 0 or 1, what Produce v0-v2 and Fetch v0-v3 carry):
/// <code>
/// offset int64 | messageSize int32 | crc uint32 | magic int8 | attributes int8 |
/// [timestamp int64, magic 1 only] | key int32-length bytes | value int32-length bytes
/// </code>
/// The CRC is CRC-32 (IEEE) over magic..end. A compressed message (codec bits in attributes) is a
/// wrapper whose value is a compressed inner message set.
/// </summary>
public readonly ref struct LegacyMessage
{
    internal LegacyMessage(ReadOnlySpan<byte> bytes, ReadOnlySpan<byte> key, int keyLength, ReadOnlySpan<byte> value, int valueLength)
    {
        Bytes = bytes;
        Key = key;
        KeyLength = keyLength;
        Value = value;
        ValueLength = valueLength;
    }

    /// <summary>The whole entry, offset and size included.</summary>
    public ReadOnlySpan<byte> Bytes { get; }
    public long Offset => BinaryPrimitives.ReadInt64BigEndian(Bytes);
    public int MessageSize => BinaryPrimitives.ReadInt32BigEndian(Bytes[8..]);
    public uint Crc => BinaryPrimitives.ReadUInt32BigEndian(Bytes[LegacyMessageSet.CrcOffset..]);
    public byte Magic => Bytes[LegacyMessageSet.MagicOffset];
    public byte Attributes => Bytes[LegacyMessageSet.AttributesOffset];
    public CompressionType Compression => (CompressionType)(Attributes & LegacyMessageSet.CompressionCodecMask);
    public TimestampType TimestampType => Magic == 0
        ? TimestampType.NoTimestampType
        : (Attributes & LegacyMessageSet.TimestampTypeMask) != 0 ? TimestampType.LogAppendTime : TimestampType.CreateTime;
    /// <summary>The stored timestamp (magic 1), or -1 for magic 0.</summary>
    public long Timestamp => Magic == 0 ? RecordBatch.NoTimestamp : BinaryPrimitives.ReadInt64BigEndian(Bytes[LegacyMessageSet.TimestampOffset..]);
    public ReadOnlySpan<byte> Key { get; }
    public int KeyLength { get; }
    public bool IsKeyNull => KeyLength < 0;
    public ReadOnlySpan<byte> Value { get; }
    public int ValueLength { get; }
    public bool IsValueNull => ValueLength < 0;
    public uint ComputeCrc() => Crc32.Compute(Bytes[LegacyMessageSet.MagicOffset..]);
}

/// <summary>
/// Iterates the top-level entries of a legacy message set, checking each size, magic (0 or 1),
/// CRC-32 and key/value lengths. It does not descend into compressed wrappers (see
/// <see cref="LegacyMessageSet.ConvertToRecordBatch"/>).
/// </summary>
public ref struct LegacyMessageEnumerator
{
    private readonly ReadOnlySpan<byte> _buffer;
    private readonly bool _allowTruncatedTail;
    private int _position;
    private LegacyMessage _current;

    public LegacyMessageEnumerator(ReadOnlySpan<byte> buffer, bool allowTruncatedTail)
    {
        _buffer = buffer;
        _allowTruncatedTail = allowTruncatedTail;
        _position = 0;
        _current = default;
    }

    public readonly LegacyMessage Current => _current;
    public readonly int Position => _position;
    public readonly LegacyMessageEnumerator GetEnumerator() => this;

    public bool MoveNext()
    {
        int remaining = _buffer.Length - _position;
        if (remaining == 0) return false;
        if (remaining < LegacyMessageSet.LogOverhead + LegacyMessageSet.MinMessageSizeV0)
        {
            if (_allowTruncatedTail) return false;
            throw KafkaProtocolException.Truncated("legacy message");
        }
        ReadOnlySpan<byte> rest = _buffer[_position..];
        int size = BinaryPrimitives.ReadInt32BigEndian(rest[8..]);
        byte magic = rest[LegacyMessageSet.MagicOffset];
        if (magic > 1)
            throw new KafkaProtocolException(ProtocolErrorKind.UnsupportedVersion, $"message magic {magic} is not a legacy format");
        int minimum = magic == 0 ? LegacyMessageSet.MinMessageSizeV0 : LegacyMessageSet.MinMessageSizeV1;
        if (size < minimum)
            throw new KafkaProtocolException(ProtocolErrorKind.Malformed, $"legacy message size {size} is smaller than the minimum {minimum}");
        if ((long)size + LegacyMessageSet.LogOverhead > remaining)
        {
            if (_allowTruncatedTail) return false;
            throw KafkaProtocolException.TooLong("legacy message", (long)size + LegacyMessageSet.LogOverhead, remaining);
        }
        ReadOnlySpan<byte> entry = rest[..(size + LegacyMessageSet.LogOverhead)];
        uint stored = BinaryPrimitives.ReadUInt32BigEndian(entry[LegacyMessageSet.CrcOffset..]);
        uint computed = Crc32.Compute(entry[LegacyMessageSet.MagicOffset..]);
        if (stored != computed)
            throw new KafkaProtocolException(ProtocolErrorKind.CorruptChecksum,
                $"legacy message is corrupt (stored crc = {stored}, computed crc = {computed})");
        int p = magic == 0 ? LegacyMessageSet.KeySizeOffsetV0 : LegacyMessageSet.KeySizeOffsetV1;
        ReadOnlySpan<byte> key = ReadBytes(entry, ref p, out int keyLength, "legacy message key");
        ReadOnlySpan<byte> value = ReadBytes(entry, ref p, out int valueLength, "legacy message value");
        if (p != entry.Length)
            throw new KafkaProtocolException(ProtocolErrorKind.Malformed, $"legacy message declares {size} bytes but its fields end earlier");
        _current = new LegacyMessage(entry, key, keyLength, value, valueLength);
        _position += entry.Length;
        return true;
    }

    private static ReadOnlySpan<byte> ReadBytes(ReadOnlySpan<byte> entry, scoped ref int p, out int length, string what)
    {
        if (entry.Length - p < 4) throw KafkaProtocolException.Truncated(what);
        length = BinaryPrimitives.ReadInt32BigEndian(entry[p..]);
        p += 4;
        if (length < -1) throw KafkaProtocolException.Negative(what, length);
        if (length == -1) return default;
        if (length > entry.Length - p) throw KafkaProtocolException.TooLong(what, length, entry.Length - p);
        ReadOnlySpan<byte> bytes = entry.Slice(p, length);
        p += length;
        return bytes;
    }
}

/// <summary>Reading, writing and converting legacy (magic 0 / 1) message sets.</summary>
public static class LegacyMessageSet
{
    public const int LogOverhead = 12;
    public const int CrcOffset = 12;
    public const int MagicOffset = 16;
    public const int AttributesOffset = 17;
    public const int TimestampOffset = 18;
    public const int KeySizeOffsetV0 = 18;
    public const int KeySizeOffsetV1 = 26;
    /// <summary>crc + magic + attributes + key length + value length.</summary>
    public const int MinMessageSizeV0 = 14;
    /// <summary>v0 plus the 8-byte timestamp.</summary>
    public const int MinMessageSizeV1 = 22;
    public const byte CompressionCodecMask = 0x07;
    public const byte TimestampTypeMask = 0x08;

    /// <summary>
    /// The magic of the first entry of a records field: byte 16 is the magic in both the v2 batch
    /// header and the legacy entry header, which is how Kafka tells the formats apart.
    /// </summary>
    public static byte PeekMagic(ReadOnlySpan<byte> records)
    {
        if (records.Length <= MagicOffset) throw KafkaProtocolException.Truncated("records magic");
        return records[MagicOffset];
    }

    public static LegacyMessageEnumerator Enumerate(ReadOnlySpan<byte> messageSet, bool allowTruncatedTail = false) =>
        new(messageSet, allowTruncatedTail);

    /// <summary>Writes one uncompressed-or-wrapper legacy message; returns its size.</summary>
    public static int WriteMessage(PooledBuffer output, byte magic, long offset, long timestamp, ReadOnlySpan<byte> key, bool keyIsNull,
        ReadOnlySpan<byte> value, bool valueIsNull, byte attributes = 0)
    {
        if (magic > 1) throw new ArgumentOutOfRangeException(nameof(magic));
        int size = (magic == 0 ? MinMessageSizeV0 : MinMessageSizeV1) + (keyIsNull ? 0 : key.Length) + (valueIsNull ? 0 : value.Length);
        Span<byte> dst = output.GetSpan(LogOverhead + size)[..(LogOverhead + size)];
        BinaryPrimitives.WriteInt64BigEndian(dst, offset);
        BinaryPrimitives.WriteInt32BigEndian(dst[8..], size);
        dst[MagicOffset] = magic;
        dst[AttributesOffset] = attributes;
        int p = magic == 0 ? KeySizeOffsetV0 : KeySizeOffsetV1;
        if (magic == 1) BinaryPrimitives.WriteInt64BigEndian(dst[TimestampOffset..], timestamp);
        p = WriteBytes(dst, p, key, keyIsNull);
        WriteBytes(dst, p, value, valueIsNull);
        BinaryPrimitives.WriteUInt32BigEndian(dst[CrcOffset..], Crc32.Compute(dst[MagicOffset..]));
        output.Advance(dst.Length);
        return dst.Length;
    }

    private static int WriteBytes(Span<byte> dst, int p, ReadOnlySpan<byte> bytes, bool isNull)
    {
        BinaryPrimitives.WriteInt32BigEndian(dst[p..], isNull ? -1 : bytes.Length);
        p += 4;
        if (isNull) return p;
        bytes.CopyTo(dst[p..]);
        return p + bytes.Length;
    }

    /// <summary>
    /// Converts a legacy message set to one RecordBatch v2 (what Kafka's LogValidator does when an old
    /// producer writes to a v2 log), appending it to <paramref name="output"/>. Compressed wrappers
    /// are opened and their inner messages taken in order; inner v1 timestamps are replaced by the
    /// wrapper's when the wrapper is LogAppendTime (LegacyRecord.timestamp); magic 0 has no timestamp (-1).
    /// Records get offset deltas 0..n-1 from <paramref name="baseOffset"/>; headers do not exist in
    /// the legacy format. Decompressed bytes across all wrappers are capped by
    /// <paramref name="maxDecompressedBytes"/>. Returns the number of records.
    /// </summary>
    public static int ConvertToRecordBatch(ReadOnlySpan<byte> messageSet, CompressionType target, PooledBuffer output,
        int maxDecompressedBytes = RecordBatch.DefaultMaxDecompressedBytes, long baseOffset = 0)
    {
        using var builder = new RecordBatchBuilder(target, baseOffset);
        int decompressedBudget = maxDecompressedBytes;
        int magic = -1;
        foreach (LegacyMessage message in Enumerate(messageSet))
        {
            // Kafka requires one magic per produce request's records (LogValidator.validateBatch).
            if (magic >= 0 && message.Magic != magic)
                throw new KafkaProtocolException(ProtocolErrorKind.Malformed, $"message magic {message.Magic} differs from the first message's {magic}");
            magic = message.Magic;
            CompressionType codec = message.Compression;
            if (codec == CompressionType.None)
            {
                Append(builder, message, message.Timestamp);
                continue;
            }
            if (codec == CompressionType.Zstd || !CompressionCodecs.IsKnown((int)codec))
                throw new KafkaProtocolException(ProtocolErrorKind.Compression, $"codec {(int)codec} is not valid in a legacy message");
            if (message.IsValueNull)
                throw new KafkaProtocolException(ProtocolErrorKind.Malformed, "compressed legacy message has a null value");
            using PooledBuffer inner = CompressionCodecs.Decompress(codec, message.Value, decompressedBudget, message.Magic);
            decompressedBudget -= inner.Length;
            bool wrapperLogAppendTime = message.Magic == 1 && message.TimestampType == TimestampType.LogAppendTime;
            int innerCount = 0;
            foreach (LegacyMessage innerMessage in Enumerate(inner.WrittenSpan))
            {
                if (innerMessage.Compression != CompressionType.None)
                    throw new KafkaProtocolException(ProtocolErrorKind.Malformed, "compressed legacy message nested inside another");
                long timestamp = innerMessage.Magic == 0 ? RecordBatch.NoTimestamp
                    : wrapperLogAppendTime ? message.Timestamp : innerMessage.Timestamp;
                Append(builder, innerMessage, timestamp);
                innerCount++;
            }
            if (innerCount == 0)
                throw new KafkaProtocolException(ProtocolErrorKind.Malformed, "compressed legacy message holds no inner messages");
        }
        if (builder.Count > 0) builder.WriteTo(output);
        return builder.Count;
    }

    private static void Append(RecordBatchBuilder builder, in LegacyMessage message, long timestamp) =>
        builder.AppendCore(builder.NextOffsetDelta, timestamp, message.Key, message.IsKeyNull, message.Value, message.IsValueNull, 0, default);

    /// <summary>
    /// Down-converts one v2 batch to a legacy message set of <paramref name="magic"/> 0 or 1, for Fetch
    /// v0-v3 consumers (RecordsUtil.downConvert): headers are dropped, control batches yield nothing,
    /// absolute offsets are kept. A compressed batch becomes one wrapper message with the same codec
    /// whose inner offsets are relative for magic 1 and absolute for magic 0, with the wrapper offset
    /// the last inner offset; zstd cannot be expressed (Kafka answers UNSUPPORTED_COMPRESSION_TYPE).
    /// </summary>
    public static void ConvertFromRecordBatch(ReadOnlySpan<byte> batch, byte magic, PooledBuffer output,
        int maxDecompressedBytes = RecordBatch.DefaultMaxDecompressedBytes)
    {
        if (magic > 1) throw new ArgumentOutOfRangeException(nameof(magic));
        var view = new RecordBatch(batch);
        if (view.IsControl) return;
        CompressionType codec = view.Compression;
        if (codec == CompressionType.Zstd)
            throw new KafkaProtocolException(ProtocolErrorKind.Compression, "zstd batches cannot be down-converted to a legacy format");
        bool logAppendTime = view.TimestampType == TimestampType.LogAppendTime;
        byte attributes = (byte)(magic == 1 && logAppendTime ? TimestampTypeMask : 0);
        if (codec == CompressionType.None)
        {
            foreach (Record record in view.GetRecords(maxDecompressedBytes))
                WriteMessage(output, magic, record.Offset, record.Timestamp, record.Key, record.IsKeyNull, record.Value, record.IsValueNull, attributes);
            return;
        }
        using var inner = new PooledBuffer(4096);
        long firstOffset = -1;
        long lastOffset = -1;
        long maxTimestamp = RecordBatch.NoTimestamp;
        foreach (Record record in view.GetRecords(maxDecompressedBytes))
        {
            if (firstOffset < 0) firstOffset = record.Offset;
            lastOffset = record.Offset;
            maxTimestamp = Math.Max(maxTimestamp, record.Timestamp);
            long innerOffset = magic == 1 ? record.Offset - firstOffset : record.Offset;
            WriteMessage(inner, magic, innerOffset, record.Timestamp, record.Key, record.IsKeyNull, record.Value, record.IsValueNull, attributes);
        }
        if (lastOffset < 0) return;
        using var compressed = new PooledBuffer(inner.Length / 2 + 64);
        CompressionCodecs.Compress(codec, inner.WrittenSpan, compressed, magic);
        long wrapperTimestamp = logAppendTime ? view.MaxTimestamp : maxTimestamp;
        WriteMessage(output, magic, lastOffset, wrapperTimestamp, default, true, compressed.WrittenSpan, false, (byte)(attributes | (byte)codec));
    }
}
