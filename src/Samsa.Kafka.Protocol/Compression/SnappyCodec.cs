using System.Buffers.Binary;
using Samsa.Kafka.Protocol.Primitives;

namespace Samsa.Kafka.Protocol.Compression;

/// <summary>
/// Snappy in the two shapes Kafka producers send:
/// <list type="bullet">
/// <item>the xerial (snappy-java) stream the Java client writes: an 8-byte magic
/// <c>0x82 'S' 'N' 'A' 'P' 'P' 'Y' 0x00</c>, a big-endian int32 version and a big-endian int32
/// minimum-compatible version, then blocks, each a big-endian int32 length followed by one raw snappy
/// block (snappy-java's default block is 32 KiB of input);</item>
/// <item>a single raw snappy block (librdkafka and some other clients), which snappy-java's reader
/// also accepts when the magic is absent.</item>
/// </list>
/// Decoding is our own bounds-checked implementation of the snappy block format (a varint uncompressed
/// length, then literal and copy elements) so that a hostile length can never make us allocate more
/// than the caller's limit. Encoding is <see cref="SnappyEncoder"/>, also ours, writing into pooled memory.
/// </summary>
public static class SnappyCodec
{
    /// <summary>The xerial stream magic (snappy-java SnappyCodec.MAGIC_HEADER).</summary>
    public static ReadOnlySpan<byte> XerialMagic => [0x82, (byte)'S', (byte)'N', (byte)'A', (byte)'P', (byte)'P', (byte)'Y', 0];

    /// <summary>xerial header: magic, version, compatible version.</summary>
    public const int XerialHeaderSize = 16;

    /// <summary>snappy-java's default uncompressed block size, which Kafka's Java client uses.</summary>
    public const int XerialBlockSize = 32 * 1024;

    /// <summary>Decodes either a xerial stream or a raw block (detected by the magic).</summary>
    public static void Decompress(ReadOnlySpan<byte> input, PooledBuffer output)
    {
        if (IsXerial(input)) DecompressXerial(input, output);
        else DecompressRaw(input, output);
    }

    public static bool IsXerial(ReadOnlySpan<byte> input) =>
        input.Length >= XerialHeaderSize && input[..8].SequenceEqual(XerialMagic);

    public static void DecompressXerial(ReadOnlySpan<byte> input, PooledBuffer output)
    {
        if (!IsXerial(input)) throw Corrupt("missing xerial snappy header");
        int position = XerialHeaderSize;
        while (position < input.Length)
        {
            if (input.Length - position < 4) throw Corrupt("xerial block length is truncated");
            int blockLength = BinaryPrimitives.ReadInt32BigEndian(input.Slice(position, 4));
            position += 4;
            if (blockLength < 0 || blockLength > input.Length - position)
                throw Corrupt($"xerial block length {blockLength} exceeds the {input.Length - position} remaining bytes");
            DecompressRaw(input.Slice(position, blockLength), output);
            position += blockLength;
        }
    }

    /// <summary>Decodes one raw snappy block, appending to <paramref name="output"/>.</summary>
    public static void DecompressRaw(ReadOnlySpan<byte> input, PooledBuffer output)
    {
        int headerLength;
        uint declared;
        try
        {
            headerLength = VarInt.ReadUnsigned(input, out declared);
        }
        catch (KafkaProtocolException e)
        {
            throw new KafkaProtocolException(ProtocolErrorKind.Compression, "snappy block has a bad length preamble", e);
        }
        if (declared > (uint)output.RemainingAllowance)
            throw new KafkaProtocolException(ProtocolErrorKind.Compression,
                $"snappy block claims {declared} bytes, more than the {output.RemainingAllowance} allowed");
        // A snappy element expands at most 64 bytes out of 3 bytes in (a 2-byte-offset copy), so a claim
        // beyond ~22x the input is corrupt; rejecting it early avoids allocating for a forged length.
        if (declared > (ulong)(input.Length - headerLength) * 22 + 64)
            throw Corrupt($"snappy block claims {declared} bytes from only {input.Length} input bytes");
        int length = (int)declared;
        Span<byte> dst = output.GetSpan(Math.Max(1, length))[..length];
        int d = 0;
        int s = headerLength;
        while (s < input.Length)
        {
            byte tag = input[s++];
            int elementLength;
            switch (tag & 3)
            {
                case 0: // literal
                {
                    int n = tag >> 2;
                    if (n >= 60)
                    {
                        int extra = n - 59; // 1..4 little-endian bytes hold length-1
                        if (input.Length - s < extra) throw Corrupt("snappy literal length is truncated");
                        uint v = 0;
                        for (int i = 0; i < extra; i++) v |= (uint)input[s + i] << (8 * i);
                        s += extra;
                        if (v >= int.MaxValue) throw Corrupt("snappy literal is too long");
                        n = (int)v;
                    }
                    elementLength = n + 1;
                    if (elementLength > input.Length - s) throw Corrupt("snappy literal runs past the input");
                    if (elementLength > length - d) throw Corrupt("snappy literal runs past the declared length");
                    input.Slice(s, elementLength).CopyTo(dst[d..]);
                    s += elementLength;
                    d += elementLength;
                    continue;
                }
                case 1: // copy, 1-byte offset
                {
                    if (s >= input.Length) throw Corrupt("snappy copy is truncated");
                    elementLength = 4 + ((tag >> 2) & 7);
                    int offset = ((tag >> 5) << 8) | input[s++];
                    Copy(dst, ref d, offset, elementLength, length);
                    continue;
                }
                case 2: // copy, 2-byte offset
                {
                    if (input.Length - s < 2) throw Corrupt("snappy copy is truncated");
                    elementLength = 1 + (tag >> 2);
                    int offset = BinaryPrimitives.ReadUInt16LittleEndian(input.Slice(s, 2));
                    s += 2;
                    Copy(dst, ref d, offset, elementLength, length);
                    continue;
                }
                default: // copy, 4-byte offset
                {
                    if (input.Length - s < 4) throw Corrupt("snappy copy is truncated");
                    elementLength = 1 + (tag >> 2);
                    uint offset = BinaryPrimitives.ReadUInt32LittleEndian(input.Slice(s, 4));
                    s += 4;
                    if (offset > int.MaxValue) throw Corrupt("snappy copy offset is out of range");
                    Copy(dst, ref d, (int)offset, elementLength, length);
                    continue;
                }
            }
        }
        if (d != length) throw Corrupt($"snappy block decoded to {d} bytes but declared {length}");
        output.Advance(length);
    }

    private static void Copy(Span<byte> dst, ref int d, int offset, int length, int limit)
    {
        if (offset <= 0 || offset > d) throw Corrupt("snappy copy offset points outside the output");
        if (length > limit - d) throw Corrupt("snappy copy runs past the declared length");
        int from = d - offset;
        if (offset >= length)
        {
            dst.Slice(from, length).CopyTo(dst[d..]);
        }
        else
        {
            // Overlapping copy repeats the last `offset` bytes: must go byte by byte (or pattern-wise).
            for (int i = 0; i < length; i++) dst[d + i] = dst[from + i];
        }
        d += length;
    }

    /// <summary>Encodes as one raw snappy block.</summary>
    public static void CompressRaw(ReadOnlySpan<byte> input, PooledBuffer output) => SnappyEncoder.Encode(input, output);

    /// <summary>Encodes as a xerial stream (what Kafka's Java client produces), 32 KiB input per block.</summary>
    public static void CompressXerial(ReadOnlySpan<byte> input, PooledBuffer output)
    {
        Span<byte> header = output.GetSpan(XerialHeaderSize);
        XerialMagic.CopyTo(header);
        BinaryPrimitives.WriteInt32BigEndian(header[8..], 1);  // snappy-java DEFAULT_VERSION
        BinaryPrimitives.WriteInt32BigEndian(header[12..], 1); // MINIMUM_COMPATIBLE_VERSION
        output.Advance(XerialHeaderSize);
        for (int position = 0; position < input.Length; position += XerialBlockSize)
        {
            ReadOnlySpan<byte> chunk = input.Slice(position, Math.Min(XerialBlockSize, input.Length - position));
            // Reserve the length prefix, encode after it, then fill it in.
            output.GetSpan(4);
            output.Advance(4);
            int blockStart = output.Length;
            SnappyEncoder.Encode(chunk, output);
            BinaryPrimitives.WriteInt32BigEndian(output.Span[(blockStart - 4)..], output.Length - blockStart);
        }
    }

    private static KafkaProtocolException Corrupt(string message) => new(ProtocolErrorKind.Compression, message);
}
