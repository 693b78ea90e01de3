using Samsa.Kafka.Protocol.Primitives;

namespace Samsa.Kafka.Protocol.Compression;

/// <summary>
/// Codec dispatch by <see cref="CompressionType"/>. Decompression always takes a maximum output size:
/// exceeding it is a <see cref="KafkaProtocolException"/> (kind Compression), never an unbounded
/// allocation. Encoders produce what Kafka's Java client produces for the same codec (gzip member,
/// xerial-framed snappy, LZ4 frame with independent 64 KiB blocks, one zstd frame).
/// </summary>
public static class CompressionCodecs
{
    /// <summary>Appends the decoded form of <paramref name="input"/> to <paramref name="output"/> (bounded by its MaxLength).</summary>
    /// <param name="magic">The record format the data came from: magic 0 LZ4 data used a broken header checksum.</param>
    public static void Decompress(CompressionType type, ReadOnlySpan<byte> input, PooledBuffer output, byte magic = 2)
    {
        switch (type)
        {
            case CompressionType.None:
                output.Write(input);
                break;
            case CompressionType.Gzip:
                GzipCodec.Decompress(input, output);
                break;
            case CompressionType.Snappy:
                SnappyCodec.Decompress(input, output);
                break;
            case CompressionType.Lz4:
                Lz4FrameCodec.Decompress(input, output, ignoreHeaderChecksum: magic == 0);
                break;
            case CompressionType.Zstd:
                ZstdCodec.Decompress(input, output);
                break;
            default:
                throw new KafkaProtocolException(ProtocolErrorKind.Compression, $"unknown compression codec {(int)type}");
        }
    }

    /// <summary>Decodes into a new pooled buffer of at most <paramref name="maxOutputBytes"/> bytes; dispose it when done.</summary>
    public static PooledBuffer Decompress(CompressionType type, ReadOnlySpan<byte> input, int maxOutputBytes, byte magic = 2)
    {
        var output = new PooledBuffer(EstimateDecompressedSize(input.Length, maxOutputBytes), maxOutputBytes);
        try
        {
            Decompress(type, input, output, magic);
            return output;
        }
        catch
        {
            output.Dispose();
            throw;
        }
    }

    /// <summary>Appends the encoded form of <paramref name="input"/> to <paramref name="output"/>.</summary>
    /// <param name="level">Codec level; null = the codec's Kafka default (gzip: optimal, lz4: fast, zstd: 3).</param>
    public static void Compress(CompressionType type, ReadOnlySpan<byte> input, PooledBuffer output, byte magic = 2, int? level = null)
    {
        switch (type)
        {
            case CompressionType.None:
                output.Write(input);
                break;
            case CompressionType.Gzip:
                GzipCodec.Compress(input, output, level switch
                {
                    null => System.IO.Compression.CompressionLevel.Optimal,
                    <= 1 => System.IO.Compression.CompressionLevel.Fastest,
                    >= 9 => System.IO.Compression.CompressionLevel.SmallestSize,
                    _ => System.IO.Compression.CompressionLevel.Optimal,
                });
                break;
            case CompressionType.Snappy:
                SnappyCodec.CompressXerial(input, output);
                break;
            case CompressionType.Lz4:
                Lz4FrameCodec.Compress(input, output, level ?? 0, brokenHeaderChecksum: magic == 0);
                break;
            case CompressionType.Zstd:
                if (magic < 2) throw new KafkaProtocolException(ProtocolErrorKind.Compression, "zstd requires record format v2");
                ZstdCodec.Compress(input, output, level ?? ZstdCodec.DefaultLevel);
                break;
            default:
                throw new KafkaProtocolException(ProtocolErrorKind.Compression, $"unknown compression codec {(int)type}");
        }
    }

    public static byte[] Compress(CompressionType type, ReadOnlySpan<byte> input, byte magic = 2, int? level = null)
    {
        using var output = new PooledBuffer(Math.Max(64, input.Length / 2 + 64));
        Compress(type, input, output, magic, level);
        return output.ToArray();
    }

    public static bool IsKnown(int codec) => codec is >= 0 and <= 4;

    private static int EstimateDecompressedSize(int compressedLength, int max) =>
        (int)Math.Clamp((long)compressedLength * 4, 256, Math.Max(256, Math.Min(max, 1 << 20)));
}
