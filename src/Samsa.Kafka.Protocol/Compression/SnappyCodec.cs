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
/// The framing (xerial header and block lengths, raw-block detection) is ours; each raw block is
/// encoded and decoded by Snappier, a managed port of Google's snappy. The declared uncompressed
/// length of a block is checked against the caller's limit before any output is reserved, so a
/// hostile length can never make us allocate more than that limit.
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
        // The length preamble is checked here, before any output is reserved, so that a forged length
        // cannot make us allocate beyond the caller's limit; the elements are decoded by Snappier.
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
        int produced;
        try
        {
            // Snappier checks every literal and copy against the input and the output span.
            produced = Snappier.Snappy.Decompress(input, dst);
        }
        catch (Exception e) when (e is InvalidDataException or ArgumentException or IndexOutOfRangeException)
        {
            throw new KafkaProtocolException(ProtocolErrorKind.Compression, "snappy block is corrupt: " + e.Message, e);
        }
        if (produced != length) throw Corrupt($"snappy block decoded to {produced} bytes but declared {length}");
        output.Advance(length);
    }

    /// <summary>Encodes as one raw snappy block.</summary>
    public static void CompressRaw(ReadOnlySpan<byte> input, PooledBuffer output)
    {
        Span<byte> target = output.GetSpan(Snappier.Snappy.GetMaxCompressedLength(input.Length));
        output.Advance(Snappier.Snappy.Compress(input, target));
    }

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
            CompressRaw(chunk, output);
            BinaryPrimitives.WriteInt32BigEndian(output.Span[(blockStart - 4)..], output.Length - blockStart);
        }
    }

    private static KafkaProtocolException Corrupt(string message) => new(ProtocolErrorKind.Compression, message);
}
