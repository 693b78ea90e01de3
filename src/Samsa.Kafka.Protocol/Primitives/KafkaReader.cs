using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text;

namespace Samsa.Kafka.Protocol.Primitives;

/// <summary>
/// Forward-only decoder for Kafka's wire primitives over a frame held in memory.
/// Every length and count is checked against <see cref="Remaining"/> before anything is
/// allocated, so a hostile frame costs at most its own size; all failures are
/// <see cref="KafkaProtocolException"/>. "Compact" forms are the flexible-version encodings
/// of KIP-482 (unsigned varint of length + 1, with 0 meaning null).
/// </summary>
public ref struct KafkaReader
{
    // Strict decoder: Kafka strings must be valid UTF-8; invalid input is a malformed request.
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly ReadOnlyMemory<byte> _memory;
    private readonly ReadOnlySpan<byte> _span;
    private int _position;

    public KafkaReader(ReadOnlyMemory<byte> memory)
    {
        _memory = memory;
        _span = memory.Span;
        _position = 0;
    }

    /// <summary>Bytes consumed so far.</summary>
    public readonly int Position => _position;

    /// <summary>Bytes left in the input.</summary>
    public readonly int Remaining => _span.Length - _position;

    /// <summary>Total input length.</summary>
    public readonly int Length => _span.Length;

    /// <summary>The not yet consumed input, without consuming it.</summary>
    public readonly ReadOnlyMemory<byte> RemainingMemory => _memory.Slice(_position);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ReadOnlySpan<byte> Take(int count, string what)
    {
        if ((uint)count > (uint)(_span.Length - _position)) throw KafkaProtocolException.Truncated(what);
        var result = _span.Slice(_position, count);
        _position += count;
        return result;
    }

    public sbyte ReadInt8() => (sbyte)Take(1, "int8")[0];

    public bool ReadBool() => Take(1, "bool")[0] != 0;

    public short ReadInt16() => BinaryPrimitives.ReadInt16BigEndian(Take(2, "int16"));

    public ushort ReadUInt16() => BinaryPrimitives.ReadUInt16BigEndian(Take(2, "uint16"));

    public int ReadInt32() => BinaryPrimitives.ReadInt32BigEndian(Take(4, "int32"));

    public uint ReadUInt32() => BinaryPrimitives.ReadUInt32BigEndian(Take(4, "uint32"));

    public long ReadInt64() => BinaryPrimitives.ReadInt64BigEndian(Take(8, "int64"));

    public double ReadFloat64() => BinaryPrimitives.ReadDoubleBigEndian(Take(8, "float64"));

    /// <summary>A UUID: 16 bytes, most significant first (Kafka's Uuid is two big-endian longs).</summary>
    public Guid ReadUuid() => new(Take(16, "uuid"), bigEndian: true);

    /// <summary>Zigzag-encoded signed varint (record fields).</summary>
    public int ReadVarInt()
    {
        _position += VarInt.ReadSigned(_span.Slice(_position), out int value);
        return value;
    }

    /// <summary>Zigzag-encoded signed varlong (record fields).</summary>
    public long ReadVarLong()
    {
        _position += VarInt.ReadSigned(_span.Slice(_position), out long value);
        return value;
    }

    public uint ReadUnsignedVarInt()
    {
        _position += VarInt.ReadUnsigned(_span.Slice(_position), out uint value);
        return value;
    }

    public ulong ReadUnsignedVarLong()
    {
        _position += VarInt.ReadUnsigned(_span.Slice(_position), out ulong value);
        return value;
    }

    /// <summary>Skips <paramref name="count"/> bytes, which must be present.</summary>
    public void Skip(int count)
    {
        if (count < 0) throw KafkaProtocolException.Negative("skip", count);
        if (count > Remaining) throw KafkaProtocolException.TooLong("skipped field", count, Remaining);
        _position += count;
    }

    /// <summary>Consumes <paramref name="count"/> bytes and returns them as a zero-copy slice.</summary>
    public ReadOnlyMemory<byte> ReadMemory(int count)
    {
        if (count < 0) throw KafkaProtocolException.Negative("bytes", count);
        if (count > Remaining) throw KafkaProtocolException.TooLong("bytes", count, Remaining);
        var result = _memory.Slice(_position, count);
        _position += count;
        return result;
    }

    /// <summary>Consumes <paramref name="count"/> bytes and returns a reader limited to them.</summary>
    public KafkaReader ReadSubReader(int count) => new(ReadMemory(count));

    // ---- lengths -------------------------------------------------------------------

    /// <summary>
    /// Reads the length prefix of a string (int16, or compact unsigned varint) and returns -1
    /// for null. The length is checked against the remaining input.
    /// </summary>
    private int ReadStringLength(bool compact)
    {
        int length;
        if (compact)
        {
            uint raw = ReadUnsignedVarInt();
            length = raw > int.MaxValue ? throw KafkaProtocolException.TooLong("compact string", raw - 1L, Remaining) : (int)raw - 1;
        }
        else
        {
            length = ReadInt16();
        }
        if (length < -1) throw KafkaProtocolException.Negative("string", length);
        if (length > Remaining) throw KafkaProtocolException.TooLong("string", length, Remaining);
        return length;
    }

    /// <summary>Length prefix of bytes / records (int32, or compact); -1 for null.</summary>
    private int ReadBytesLength(bool compact, string what)
    {
        int length;
        if (compact)
        {
            uint raw = ReadUnsignedVarInt();
            length = raw > int.MaxValue ? throw KafkaProtocolException.TooLong(what, raw - 1L, Remaining) : (int)raw - 1;
        }
        else
        {
            length = ReadInt32();
        }
        if (length < -1) throw KafkaProtocolException.Negative(what, length);
        if (length > Remaining) throw KafkaProtocolException.TooLong(what, length, Remaining);
        return length;
    }

    /// <summary>
    /// Reads an array element count (int32, or compact unsigned varint of count + 1); -1 means
    /// null. Every element takes at least one byte on the wire, so a count above the remaining
    /// input is rejected here, before the caller allocates a list for it.
    /// </summary>
    public int ReadArrayCount(bool compact)
    {
        int count;
        if (compact)
        {
            uint raw = ReadUnsignedVarInt();
            count = raw > int.MaxValue ? throw KafkaProtocolException.TooLong("compact array", raw - 1L, Remaining) : (int)raw - 1;
        }
        else
        {
            count = ReadInt32();
        }
        if (count < -1) throw KafkaProtocolException.Negative("array", count);
        if (count > Remaining) throw KafkaProtocolException.TooLong("array", count, Remaining);
        return count;
    }

    /// <summary>Array count for a non-nullable array: null (-1) is malformed.</summary>
    public int ReadNonNullArrayCount(bool compact)
    {
        int count = ReadArrayCount(compact);
        if (count < 0) throw new KafkaProtocolException(ProtocolErrorKind.Malformed, "non-nullable array was serialized as null");
        return count;
    }

    // ---- strings and bytes ----------------------------------------------------------

    public string ReadString(bool compact)
    {
        int length = ReadStringLength(compact);
        if (length < 0) throw new KafkaProtocolException(ProtocolErrorKind.Malformed, "non-nullable string was serialized as null");
        return DecodeUtf8(length);
    }

    public string? ReadNullableString(bool compact)
    {
        int length = ReadStringLength(compact);
        return length < 0 ? null : DecodeUtf8(length);
    }

    private string DecodeUtf8(int length)
    {
        if (length == 0) return string.Empty;
        var bytes = Take(length, "string");
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            throw new KafkaProtocolException(ProtocolErrorKind.Malformed, "string is not valid UTF-8", e);
        }
    }

    public byte[] ReadBytes(bool compact)
    {
        int length = ReadBytesLength(compact, "bytes");
        if (length < 0) throw new KafkaProtocolException(ProtocolErrorKind.Malformed, "non-nullable bytes were serialized as null");
        return length == 0 ? [] : Take(length, "bytes").ToArray();
    }

    public byte[]? ReadNullableBytes(bool compact)
    {
        int length = ReadBytesLength(compact, "bytes");
        if (length < 0) return null;
        return length == 0 ? [] : Take(length, "bytes").ToArray();
    }

    /// <summary>A record set (RecordBatch bytes), returned as a zero-copy slice of the input.</summary>
    public ReadOnlyMemory<byte> ReadRecords(bool compact)
    {
        int length = ReadBytesLength(compact, "records");
        if (length < 0) throw new KafkaProtocolException(ProtocolErrorKind.Malformed, "non-nullable records were serialized as null");
        return ReadMemory(length);
    }

    /// <summary>A nullable record set; null stays null, otherwise a zero-copy slice of the input.</summary>
    public ReadOnlyMemory<byte>? ReadNullableRecords(bool compact)
    {
        int length = ReadBytesLength(compact, "records");
        if (length < 0) return null;
        return ReadMemory(length);
    }

    // ---- tagged fields (KIP-482) ------------------------------------------------------

    /// <summary>
    /// Reads the number of tagged fields that follow. Each takes at least two bytes (tag and
    /// size), so the count is checked against the remaining input.
    /// </summary>
    public int ReadTaggedFieldCount()
    {
        uint count = ReadUnsignedVarInt();
        if (count > (uint)Remaining / 2) throw KafkaProtocolException.TooLong("tagged field section", count * 2L, Remaining);
        return (int)count;
    }

    /// <summary>Reads one tagged field's header: its tag and the size of its value (checked against the input).</summary>
    public int ReadTaggedFieldHeader(out int size)
    {
        uint tag = ReadUnsignedVarInt();
        uint raw = ReadUnsignedVarInt();
        if (raw > (uint)Remaining) throw KafkaProtocolException.TooLong("tagged field", raw, Remaining);
        if (tag > int.MaxValue) throw new KafkaProtocolException(ProtocolErrorKind.Malformed, $"tag {tag} is out of range");
        size = (int)raw;
        return (int)tag;
    }

    /// <summary>Reads and discards a whole tagged-field section (for structures that define no tags).</summary>
    public void SkipTaggedFields()
    {
        int count = ReadTaggedFieldCount();
        for (int i = 0; i < count; i++)
        {
            ReadTaggedFieldHeader(out int size);
            Skip(size);
        }
    }
}
