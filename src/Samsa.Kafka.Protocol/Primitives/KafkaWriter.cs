using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text;
using Samsa.Kafka.Protocol.Records;

namespace Samsa.Kafka.Protocol.Primitives;

/// <summary>
/// A <c>records</c> value left out of a writer's output: the bytes of <see cref="Records"/> from
/// <see cref="Start"/> for <see cref="Length"/> belong at <see cref="Position"/> of the output,
/// right after their length prefix. The sender puts the file range there (zero copy).
/// </summary>
public readonly record struct SplicedRecords(int Position, FileRecords Records, int Start, int Length);

/// <summary>
/// Encoder for Kafka's wire primitives into a caller-provided span. Callers size the span with
/// the message's <c>Size(version)</c> first; writing past the end throws
/// <see cref="ArgumentOutOfRangeException"/> (a programming error, not bad input).
/// The static <c>SizeOf*</c> helpers give the exact encoded size of each form.
/// </summary>
public ref struct KafkaWriter
{
    private readonly Span<byte> _span;
    private readonly List<SplicedRecords>? _spliced;
    private int _position;

    public KafkaWriter(Span<byte> destination)
    {
        _span = destination;
        _spliced = null;
        _position = 0;
    }

    /// <summary>
    /// A writer that leaves <c>records</c> backed by <see cref="FileRecords"/> out of its output:
    /// it writes their length prefix and appends to <paramref name="spliced"/> where their bytes
    /// belong. The destination then needs the message's <c>Size(version)</c> minus the spliced
    /// lengths. Other records are copied as usual.
    /// </summary>
    public KafkaWriter(Span<byte> destination, List<SplicedRecords> spliced)
    {
        ArgumentNullException.ThrowIfNull(spliced);
        _span = destination;
        _spliced = spliced;
        _position = 0;
    }

    /// <summary>Bytes written so far.</summary>
    public readonly int Position => _position;

    /// <summary>Room left in the destination.</summary>
    public readonly int Remaining => _span.Length - _position;

    /// <summary>The bytes written so far.</summary>
    public readonly ReadOnlySpan<byte> Written => _span.Slice(0, _position);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Span<byte> Advance(int count)
    {
        if ((uint)count > (uint)(_span.Length - _position))
            throw new ArgumentOutOfRangeException(nameof(count), $"writer needs {count} more bytes but has {_span.Length - _position}");
        var result = _span.Slice(_position, count);
        _position += count;
        return result;
    }

    public void WriteInt8(sbyte value) => Advance(1)[0] = (byte)value;

    public void WriteBool(bool value) => Advance(1)[0] = value ? (byte)1 : (byte)0;

    public void WriteInt16(short value) => BinaryPrimitives.WriteInt16BigEndian(Advance(2), value);

    public void WriteUInt16(ushort value) => BinaryPrimitives.WriteUInt16BigEndian(Advance(2), value);

    public void WriteInt32(int value) => BinaryPrimitives.WriteInt32BigEndian(Advance(4), value);

    public void WriteUInt32(uint value) => BinaryPrimitives.WriteUInt32BigEndian(Advance(4), value);

    public void WriteInt64(long value) => BinaryPrimitives.WriteInt64BigEndian(Advance(8), value);

    public void WriteFloat64(double value) => BinaryPrimitives.WriteDoubleBigEndian(Advance(8), value);

    public void WriteUuid(Guid value) => value.TryWriteBytes(Advance(16), bigEndian: true, out _);

    public void WriteVarInt(int value) => WriteUnsignedVarInt((uint)VarInt.ZigZagEncode(value));

    public void WriteVarLong(long value) => WriteUnsignedVarLong((ulong)VarInt.ZigZagEncode(value));

    public void WriteUnsignedVarInt(uint value)
    {
        if (value < 0x80) { Advance(1)[0] = (byte)value; return; }
        VarInt.WriteUnsigned(Advance(VarInt.SizeOfUnsigned(value)), value);
    }

    public void WriteUnsignedVarLong(ulong value) => VarInt.WriteUnsigned(Advance(VarInt.SizeOfUnsigned(value)), value);

    /// <summary>Copies raw bytes (no length prefix).</summary>
    public void WriteRaw(ReadOnlySpan<byte> bytes) => bytes.CopyTo(Advance(bytes.Length));

    /// <summary>Length prefix of a string: int16, or compact unsigned varint of length + 1 (0 = null).</summary>
    public void WriteStringLength(int length, bool compact)
    {
        if (compact) WriteUnsignedVarInt((uint)(length + 1));
        else WriteInt16(checked((short)length));
    }

    /// <summary>Length prefix of bytes, records and arrays: int32, or compact unsigned varint of length + 1 (0 = null).</summary>
    public void WriteLength(int length, bool compact)
    {
        if (compact) WriteUnsignedVarInt((uint)(length + 1));
        else WriteInt32(length);
    }

    public void WriteString(string value, bool compact)
    {
        int length = Encoding.UTF8.GetByteCount(value);
        if (!compact && length > short.MaxValue)
            throw new KafkaProtocolException(ProtocolErrorKind.Malformed, $"string of {length} bytes does not fit an int16 length");
        WriteStringLength(length, compact);
        if (length > 0) Encoding.UTF8.GetBytes(value, Advance(length));
    }

    public void WriteNullableString(string? value, bool compact)
    {
        if (value is null) WriteStringLength(-1, compact);
        else WriteString(value, compact);
    }

    public void WriteBytes(ReadOnlySpan<byte> value, bool compact)
    {
        WriteLength(value.Length, compact);
        WriteRaw(value);
    }

    public void WriteNullableBytes(byte[]? value, bool compact)
    {
        if (value is null) WriteLength(-1, compact);
        else WriteBytes(value, compact);
    }

    public void WriteNullableRecords(ReadOnlyMemory<byte>? value, bool compact)
    {
        if (value is null) WriteLength(-1, compact);
        else WriteRecords(value.Value, compact);
    }

    /// <summary>A non-null record set: length prefix, then the bytes — or, for file-backed records
    /// and a splicing writer, only the prefix and a note of where the file range goes.</summary>
    public void WriteRecords(ReadOnlyMemory<byte> value, bool compact)
    {
        if (_spliced is not null && FileRecords.TryGet(value, out FileRecords? file, out int start, out int length))
        {
            WriteLength(length, compact);
            _spliced.Add(new SplicedRecords(_position, file!, start, length));
            return;
        }
        WriteBytes(value.Span, compact);
    }

    // ---- sizes ------------------------------------------------------------------------

    public static int SizeOfUnsignedVarInt(uint value) => VarInt.SizeOfUnsigned(value);

    public static int SizeOfString(string value, bool compact)
    {
        int length = Encoding.UTF8.GetByteCount(value);
        return length + (compact ? VarInt.SizeOfUnsigned((uint)(length + 1)) : 2);
    }

    public static int SizeOfNullableString(string? value, bool compact) =>
        value is null ? (compact ? 1 : 2) : SizeOfString(value, compact);

    public static int SizeOfBytes(int length, bool compact) =>
        length + (compact ? VarInt.SizeOfUnsigned((uint)(length + 1)) : 4);

    public static int SizeOfNullableBytes(byte[]? value, bool compact) =>
        value is null ? (compact ? 1 : 4) : SizeOfBytes(value.Length, compact);

    public static int SizeOfNullableRecords(ReadOnlyMemory<byte>? value, bool compact) =>
        value is null ? (compact ? 1 : 4) : SizeOfBytes(value.Value.Length, compact);

    /// <summary>Size of an array length prefix (int32, or compact count + 1).</summary>
    public static int SizeOfLength(int length, bool compact) =>
        compact ? VarInt.SizeOfUnsigned((uint)(length + 1)) : 4;
}
