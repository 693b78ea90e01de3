using System.Runtime.CompilerServices;
using System.Text;
using Samsa.Kafka.Protocol.Compression;
using Samsa.Kafka.Protocol.Primitives;

namespace Samsa.Kafka.Protocol.Records;

/// <summary>
/// One record inside a v2 batch, as a view (no allocation):
/// <code>
/// length varint | attributes int8 | timestampDelta varlong | offsetDelta varint |
/// keyLength varint | key | valueLength varint | value | headerCount varint | headers...
/// </code>
/// A null key or value has length -1; <see cref="Key"/> / <see cref="Value"/> are then empty and
/// <see cref="IsKeyNull"/> / <see cref="IsValueNull"/> tell them apart from empty ones.
/// </summary>
public readonly ref struct Record
{
    internal Record(ReadOnlySpan<byte> raw, sbyte attributes, long timestampDelta, int offsetDelta,
        ReadOnlySpan<byte> key, int keyLength, ReadOnlySpan<byte> value, int valueLength,
        int headerCount, ReadOnlySpan<byte> headers, long baseOffset, long baseTimestamp, long logAppendTime)
    {
        RawBytes = raw;
        Attributes = attributes;
        TimestampDelta = timestampDelta;
        OffsetDelta = offsetDelta;
        Key = key;
        KeyLength = keyLength;
        Value = value;
        ValueLength = valueLength;
        HeaderCount = headerCount;
        HeadersData = headers;
        BaseOffset = baseOffset;
        BaseTimestamp = baseTimestamp;
        LogAppendTime = logAppendTime;
    }

    /// <summary>The whole encoded record including its length prefix.</summary>
    public ReadOnlySpan<byte> RawBytes { get; }
    public int SizeInBytes => RawBytes.Length;
    /// <summary>Record attributes: unused by Kafka so far, always 0 from real clients.</summary>
    public sbyte Attributes { get; }
    public long TimestampDelta { get; }
    public int OffsetDelta { get; }
    public ReadOnlySpan<byte> Key { get; }
    /// <summary>-1 for a null key.</summary>
    public int KeyLength { get; }
    public bool IsKeyNull => KeyLength < 0;
    public ReadOnlySpan<byte> Value { get; }
    /// <summary>-1 for a null value (a tombstone on compacted topics).</summary>
    public int ValueLength { get; }
    public bool IsValueNull => ValueLength < 0;
    public int HeaderCount { get; }
    /// <summary>The encoded headers (without the count), already bounds-checked.</summary>
    public ReadOnlySpan<byte> HeadersData { get; }
    public RecordHeaderEnumerator Headers => new(HeadersData, HeaderCount);

    public long BaseOffset { get; }
    public long BaseTimestamp { get; }
    private long LogAppendTime { get; }

    public long Offset => BaseOffset + OffsetDelta;
    /// <summary>baseTimestamp + timestampDelta: what the producer set.</summary>
    public long CreateTimestamp => BaseTimestamp + TimestampDelta;
    /// <summary>The record's timestamp as Kafka reports it: the batch maxTimestamp for LogAppendTime batches.</summary>
    public long Timestamp => LogAppendTime != RecordBatch.NoTimestamp ? LogAppendTime : CreateTimestamp;
}

/// <summary>
/// Iterates the records of a records section. Every varint and every length is checked against the
/// record's own declared size, and the record must end exactly where its length says (as
/// DefaultRecord.readFrom requires); after <c>recordsCount</c> records the section must be exhausted.
/// Violations throw <see cref="KafkaProtocolException"/>. Owns the pooled buffer of a decompressed
/// batch, released by <see cref="Dispose"/>.
/// </summary>
public ref struct RecordEnumerator
{
    private readonly ReadOnlySpan<byte> _data;
    private readonly long _baseOffset;
    private readonly long _baseTimestamp;
    private readonly long _logAppendTime;
    private PooledBuffer? _owned;
    private int _position;
    private int _remaining;
    private Record _current;

    /// <param name="recordsData">The uncompressed records section.</param>
    /// <param name="recordsCount">How many records the batch declares.</param>
    /// <param name="logAppendTime">The batch maxTimestamp when it is a LogAppendTime batch, else -1.</param>
    public RecordEnumerator(ReadOnlySpan<byte> recordsData, int recordsCount, long baseOffset = 0, long baseTimestamp = 0,
        long logAppendTime = RecordBatch.NoTimestamp)
        : this(recordsData, recordsCount, baseOffset, baseTimestamp, logAppendTime, null)
    {
    }

    internal RecordEnumerator(ReadOnlySpan<byte> recordsData, int recordsCount, long baseOffset, long baseTimestamp,
        long logAppendTime, PooledBuffer? owned)
    {
        if (recordsCount < 0) throw new KafkaProtocolException(ProtocolErrorKind.Malformed, $"negative record count {recordsCount}");
        _data = recordsData;
        _remaining = recordsCount;
        _baseOffset = baseOffset;
        _baseTimestamp = baseTimestamp;
        _logAppendTime = logAppendTime;
        _owned = owned;
        _position = 0;
        _current = default;
    }

    public readonly Record Current => _current;

    /// <summary>Bytes of the records section consumed so far.</summary>
    public readonly int Position => _position;

    public readonly RecordEnumerator GetEnumerator() => this;

    public bool MoveNext()
    {
        if (_remaining == 0)
        {
            if (_position != _data.Length)
                throw new KafkaProtocolException(ProtocolErrorKind.Malformed,
                    $"{_data.Length - _position} bytes remain after the declared number of records");
            return false;
        }
        if (_position >= _data.Length)
            throw new KafkaProtocolException(ProtocolErrorKind.Truncated, $"records ended with {_remaining} declared records still missing");

        ReadOnlySpan<byte> rest = _data[_position..];
        int prefix = ReadVarInt(rest, out int bodyLength);
        if (bodyLength < RecordBatch.MinRecordSize - 1)
            throw new KafkaProtocolException(ProtocolErrorKind.Malformed, $"record length {bodyLength} is too small");
        if (bodyLength > rest.Length - prefix)
            throw KafkaProtocolException.TooLong("record", bodyLength, rest.Length - prefix);
        ReadOnlySpan<byte> raw = rest[..(prefix + bodyLength)];
        ReadOnlySpan<byte> body = raw[prefix..];

        int p = 0;
        sbyte attributes = (sbyte)body[p++];
        p += ReadVarLong(body[p..], out long timestampDelta);
        p += ReadVarInt(body[p..], out int offsetDelta);
        ReadOnlySpan<byte> key = ReadNullableBytes(body, ref p, out int keyLength, "record key");
        ReadOnlySpan<byte> value = ReadNullableBytes(body, ref p, out int valueLength, "record value");
        p += ReadVarInt(body[p..], out int headerCount);
        if (headerCount < 0)
            throw new KafkaProtocolException(ProtocolErrorKind.NegativeLength, $"record has invalid header count {headerCount}");
        // Each header takes at least two bytes (two length varints), so a larger count cannot fit.
        if (headerCount > (body.Length - p) / 2)
            throw KafkaProtocolException.TooLong("record headers", headerCount, body.Length - p);
        int headersStart = p;
        for (int i = 0; i < headerCount; i++)
        {
            p += ReadVarInt(body[p..], out int headerKeyLength);
            if (headerKeyLength < 0)
                throw new KafkaProtocolException(ProtocolErrorKind.NegativeLength, $"record header key has invalid length {headerKeyLength}");
            if (headerKeyLength > body.Length - p) throw KafkaProtocolException.TooLong("record header key", headerKeyLength, body.Length - p);
            p += headerKeyLength;
            ReadNullableBytes(body, ref p, out _, "record header value");
        }
        if (p != body.Length)
            throw new KafkaProtocolException(ProtocolErrorKind.Malformed, $"record declares {body.Length} bytes but its fields take {p}");

        _current = new Record(raw, attributes, timestampDelta, offsetDelta, key, keyLength, value, valueLength,
            headerCount, body[headersStart..], _baseOffset, _baseTimestamp, _logAppendTime);
        _position += raw.Length;
        _remaining--;
        return true;
    }

    internal static ReadOnlySpan<byte> ReadNullableBytes(ReadOnlySpan<byte> body, scoped ref int p, out int length, string what)
    {
        p += ReadVarInt(body[p..], out length);
        if (length < -1) throw KafkaProtocolException.Negative(what, length);
        if (length == -1) return default;
        if (length > body.Length - p) throw KafkaProtocolException.TooLong(what, length, body.Length - p);
        ReadOnlySpan<byte> bytes = body.Slice(p, length);
        p += length;
        return bytes;
    }

    // Most record fields are small numbers that fit one varint byte; decode those inline and leave
    // everything else (including all error handling) to the checked reader.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int ReadVarInt(ReadOnlySpan<byte> source, out int value)
    {
        if (!source.IsEmpty && source[0] < 0x80)
        {
            value = (source[0] >> 1) ^ -(source[0] & 1);
            return 1;
        }
        return VarInt.ReadSigned(source, out value);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int ReadVarLong(ReadOnlySpan<byte> source, out long value)
    {
        if (!source.IsEmpty && source[0] < 0x80)
        {
            value = (source[0] >> 1) ^ -(source[0] & 1);
            return 1;
        }
        return VarInt.ReadSigned(source, out value);
    }

    /// <summary>Returns a decompression buffer to the pool; spans from this enumerator become invalid.</summary>
    public void Dispose()
    {
        _owned?.Dispose();
        _owned = null;
    }
}

/// <summary>A record header: a non-null key (UTF-8 in practice) and a nullable value.</summary>
public readonly ref struct RecordHeader
{
    internal RecordHeader(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, int valueLength)
    {
        Key = key;
        Value = value;
        ValueLength = valueLength;
    }

    public ReadOnlySpan<byte> Key { get; }
    public string KeyString => Encoding.UTF8.GetString(Key);
    public ReadOnlySpan<byte> Value { get; }
    /// <summary>-1 for a null value.</summary>
    public int ValueLength { get; }
    public bool IsValueNull => ValueLength < 0;
}

/// <summary>Iterates a record's headers (already validated when the record was read).</summary>
public ref struct RecordHeaderEnumerator
{
    private readonly ReadOnlySpan<byte> _data;
    private int _remaining;
    private int _position;
    private RecordHeader _current;

    public RecordHeaderEnumerator(ReadOnlySpan<byte> headersData, int headerCount)
    {
        _data = headersData;
        _remaining = headerCount;
        _position = 0;
        _current = default;
    }

    public readonly RecordHeader Current => _current;

    public readonly RecordHeaderEnumerator GetEnumerator() => this;

    public bool MoveNext()
    {
        if (_remaining <= 0) return false;
        int p = _position;
        p += RecordEnumerator.ReadVarInt(_data[p..], out int keyLength);
        if (keyLength < 0 || keyLength > _data.Length - p) throw KafkaProtocolException.TooLong("record header key", keyLength, _data.Length - p);
        ReadOnlySpan<byte> key = _data.Slice(p, keyLength);
        p += keyLength;
        ReadOnlySpan<byte> value = RecordEnumerator.ReadNullableBytes(_data, ref p, out int valueLength, "record header value");
        _current = new RecordHeader(key, value, valueLength);
        _position = p;
        _remaining--;
        return true;
    }
}
