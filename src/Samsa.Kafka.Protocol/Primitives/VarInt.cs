using System.Runtime.CompilerServices;

namespace Samsa.Kafka.Protocol.Primitives;

/// <summary>
/// Kafka's variable-length integers (protobuf-style base-128, little-endian groups of seven bits).
/// Signed forms (varint / varlong, used inside RecordBatch records) are zigzag encoded; the
/// unsigned form (unsigned varint, used for compact lengths and tagged fields) is not.
/// Every reader checks the input length and the maximum encoded size (5 bytes for 32-bit,
/// 10 bytes for 64-bit) and throws <see cref="KafkaProtocolException"/> rather than reading past the end.
/// </summary>
public static class VarInt
{
    public const int MaxVarIntBytes = 5;
    public const int MaxVarLongBytes = 10;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int ZigZagEncode(int value) => (value << 1) ^ (value >> 31);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int ZigZagDecode(uint value) => (int)(value >> 1) ^ -(int)(value & 1);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long ZigZagEncode(long value) => (value << 1) ^ (value >> 63);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long ZigZagDecode(ulong value) => (long)(value >> 1) ^ -(long)(value & 1);

    public static int SizeOfUnsigned(uint value)
    {
        int size = 1;
        while (value >= 0x80) { value >>= 7; size++; }
        return size;
    }

    public static int SizeOfUnsigned(ulong value)
    {
        int size = 1;
        while (value >= 0x80) { value >>= 7; size++; }
        return size;
    }

    public static int SizeOfSigned(int value) => SizeOfUnsigned((uint)ZigZagEncode(value));

    public static int SizeOfSigned(long value) => SizeOfUnsigned((ulong)ZigZagEncode(value));

    /// <summary>Reads an unsigned varint; returns the number of bytes consumed.</summary>
    public static int ReadUnsigned(ReadOnlySpan<byte> source, out uint value)
    {
        uint result = 0;
        int shift = 0;
        for (int i = 0; i < MaxVarIntBytes; i++)
        {
            if (i >= source.Length) throw KafkaProtocolException.Truncated("varint");
            byte b = source[i];
            if (i == MaxVarIntBytes - 1 && b > 0x0F) throw new KafkaProtocolException(ProtocolErrorKind.Malformed, "varint is longer than 32 bits");
            result |= (uint)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) { value = result; return i + 1; }
            shift += 7;
        }
        throw new KafkaProtocolException(ProtocolErrorKind.Malformed, "varint is longer than 5 bytes");
    }

    /// <summary>Reads an unsigned varlong; returns the number of bytes consumed.</summary>
    public static int ReadUnsigned(ReadOnlySpan<byte> source, out ulong value)
    {
        ulong result = 0;
        int shift = 0;
        for (int i = 0; i < MaxVarLongBytes; i++)
        {
            if (i >= source.Length) throw KafkaProtocolException.Truncated("varlong");
            byte b = source[i];
            if (i == MaxVarLongBytes - 1 && b > 0x01) throw new KafkaProtocolException(ProtocolErrorKind.Malformed, "varlong is longer than 64 bits");
            result |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) { value = result; return i + 1; }
            shift += 7;
        }
        throw new KafkaProtocolException(ProtocolErrorKind.Malformed, "varlong is longer than 10 bytes");
    }

    public static int ReadSigned(ReadOnlySpan<byte> source, out int value)
    {
        int n = ReadUnsigned(source, out uint raw);
        value = ZigZagDecode(raw);
        return n;
    }

    public static int ReadSigned(ReadOnlySpan<byte> source, out long value)
    {
        int n = ReadUnsigned(source, out ulong raw);
        value = ZigZagDecode(raw);
        return n;
    }

    /// <summary>Writes an unsigned varint; the destination must have room (see <see cref="SizeOfUnsigned(uint)"/>).</summary>
    public static int WriteUnsigned(Span<byte> destination, uint value)
    {
        int i = 0;
        while (value >= 0x80)
        {
            destination[i++] = (byte)(value | 0x80);
            value >>= 7;
        }
        destination[i++] = (byte)value;
        return i;
    }

    public static int WriteUnsigned(Span<byte> destination, ulong value)
    {
        int i = 0;
        while (value >= 0x80)
        {
            destination[i++] = (byte)(value | 0x80);
            value >>= 7;
        }
        destination[i++] = (byte)value;
        return i;
    }

    public static int WriteSigned(Span<byte> destination, int value) => WriteUnsigned(destination, (uint)ZigZagEncode(value));

    public static int WriteSigned(Span<byte> destination, long value) => WriteUnsigned(destination, (ulong)ZigZagEncode(value));
}
