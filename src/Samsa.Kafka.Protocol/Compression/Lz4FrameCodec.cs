using System.Buffers;
using System.Buffers.Binary;
using K4os.Compression.LZ4;
using Samsa.Kafka.Protocol.Primitives;

namespace Samsa.Kafka.Protocol.Compression;

/// <summary>
/// LZ4 in the standard LZ4 frame format (magic 0x184D2204), which is what Kafka stores for codec 3.
/// The frame layer is ours (Kafka's framing rules below differ from a generic LZ4 frame reader's);
/// each block goes through K4os.Compression.LZ4, a managed port of the LZ4 block codec, so no
/// native liblz4 is needed on the broker's machine.
/// Rules follow Kafka's Lz4BlockInputStream: frame version 01, independent blocks only (Kafka never
/// writes linked blocks and rejects them), reserved bits zero, block maximum size 64 KiB..4 MiB,
/// optional content size (skipped), optional block checksums (verified). We also verify the optional
/// content checksum, which Kafka skips. For magic-0 legacy messages Kafka's old writer computed the
/// header checksum over the magic number too (KAFKA-3160), so for magic 0 the HC byte is not checked,
/// and when writing magic 0 we reproduce that broken checksum, as Kafka does.
/// </summary>
public static class Lz4FrameCodec
{
    public const uint FrameMagic = 0x184D2204;
    private const uint SkippableMagicMask = 0xFFFFFFF0;
    private const uint SkippableMagic = 0x184D2A50;
    private const int UncompressedBlockFlag = unchecked((int)0x80000000);

    /// <summary>Block maximum size code 4 = 64 KiB, the size Kafka's Java writer uses.</summary>
    public const int DefaultBlockSizeCode = 4;

    public static void Decompress(ReadOnlySpan<byte> input, PooledBuffer output, bool ignoreHeaderChecksum = false)
    {
        int position = 0;
        bool sawFrame = false;
        while (position < input.Length || !sawFrame)
        {
            if (input.Length - position < 4) throw Corrupt("lz4 frame is truncated before its magic number");
            uint magic = BinaryPrimitives.ReadUInt32LittleEndian(input.Slice(position, 4));
            if ((magic & SkippableMagicMask) == SkippableMagic && sawFrame)
            {
                // Skippable frames carry user data we do not interpret: a length then that many bytes.
                if (input.Length - position < 8) throw Corrupt("lz4 skippable frame is truncated");
                uint size = BinaryPrimitives.ReadUInt32LittleEndian(input.Slice(position + 4, 4));
                if (size > (uint)(input.Length - position - 8)) throw Corrupt("lz4 skippable frame runs past the input");
                position += 8 + (int)size;
                continue;
            }
            if (magic != FrameMagic) throw Corrupt($"not an lz4 frame (magic 0x{magic:X8})");
            position = DecodeFrame(input, position + 4, output, ignoreHeaderChecksum);
            sawFrame = true;
        }
    }

    private static int DecodeFrame(ReadOnlySpan<byte> input, int position, PooledBuffer output, bool ignoreHeaderChecksum)
    {
        int descriptorStart = position;
        if (input.Length - position < 3) throw Corrupt("lz4 frame descriptor is truncated");
        byte flg = input[position++];
        byte bd = input[position++];
        int version = flg >> 6;
        bool blockIndependent = (flg & 0x20) != 0;
        bool blockChecksum = (flg & 0x10) != 0;
        bool contentSizePresent = (flg & 0x08) != 0;
        bool contentChecksum = (flg & 0x04) != 0;
        if (version != 1) throw Corrupt($"lz4 frame version {version} is unsupported");
        if ((flg & 0x03) != 0) throw Corrupt("lz4 frame has reserved or dictionary bits set");
        if (!blockIndependent) throw Corrupt("lz4 frames with dependent blocks are unsupported (as in Kafka)");
        if ((bd & 0x8F) != 0) throw Corrupt("lz4 block descriptor reserved bits are set");
        int blockSizeCode = (bd >> 4) & 7;
        if (blockSizeCode < 4) throw Corrupt($"lz4 block size code {blockSizeCode} is invalid");
        int maxBlockSize = 1 << (2 * blockSizeCode + 8);
        ulong contentSize = 0;
        if (contentSizePresent)
        {
            if (input.Length - position < 8) throw Corrupt("lz4 content size is truncated");
            contentSize = BinaryPrimitives.ReadUInt64LittleEndian(input.Slice(position, 8));
            if (contentSize > (ulong)output.RemainingAllowance)
                throw new KafkaProtocolException(ProtocolErrorKind.Compression,
                    $"lz4 frame declares {contentSize} bytes, more than the {output.RemainingAllowance} allowed");
            position += 8;
        }
        if (input.Length - position < 1) throw Corrupt("lz4 header checksum is missing");
        byte hc = input[position];
        if (!ignoreHeaderChecksum)
        {
            byte expected = (byte)(XxHash32.Hash(input[descriptorStart..position]) >> 8);
            if (hc != expected) throw Corrupt("lz4 frame descriptor checksum mismatch");
        }
        position++;

        int contentStart = output.Length;
        while (true)
        {
            if (input.Length - position < 4) throw Corrupt("lz4 block size is truncated");
            int raw = BinaryPrimitives.ReadInt32LittleEndian(input.Slice(position, 4));
            position += 4;
            if (raw == 0) break; // EndMark
            bool uncompressed = (raw & UncompressedBlockFlag) != 0;
            int blockSize = raw & ~UncompressedBlockFlag;
            if (blockSize > maxBlockSize) throw Corrupt($"lz4 block of {blockSize} bytes exceeds the frame maximum {maxBlockSize}");
            if (input.Length - position < blockSize) throw Corrupt("lz4 block is truncated");
            ReadOnlySpan<byte> block = input.Slice(position, blockSize);
            position += blockSize;
            if (blockChecksum)
            {
                if (input.Length - position < 4) throw Corrupt("lz4 block checksum is truncated");
                uint stored = BinaryPrimitives.ReadUInt32LittleEndian(input.Slice(position, 4));
                position += 4;
                if (XxHash32.Hash(block) != stored) throw Corrupt("lz4 block checksum mismatch");
            }
            if (uncompressed)
            {
                output.Write(block);
                continue;
            }
            Span<byte> target = output.GetSpan(maxBlockSize)[..maxBlockSize];
            // LZ4Codec.Decode is the bounds-checked decoder (LZ4_decompress_safe's contract): it never
            // writes past target and returns a negative count for a corrupt block.
            int produced = LZ4Codec.Decode(block, target);
            if (produced < 0) throw Corrupt("lz4 block is corrupt");
            output.Advance(produced);
        }
        if (contentSizePresent && (ulong)(output.Length - contentStart) != contentSize)
            throw Corrupt($"lz4 frame declared {contentSize} bytes but decoded {output.Length - contentStart}");
        if (contentChecksum)
        {
            if (input.Length - position < 4) throw Corrupt("lz4 content checksum is truncated");
            uint stored = BinaryPrimitives.ReadUInt32LittleEndian(input.Slice(position, 4));
            position += 4;
            if (XxHash32.Hash(output.WrittenSpan[contentStart..]) != stored) throw Corrupt("lz4 content checksum mismatch");
        }
        return position;
    }

    /// <summary>
    /// Writes one LZ4 frame: independent 64 KiB blocks, no checksums, no content size (the shape
    /// Kafka's Java writer produces). <paramref name="level"/> follows compression.lz4.level (see
    /// <see cref="ToLevel"/>): 0 or 9 the fast compressor, other values LZ4 HC at that level.
    /// <paramref name="brokenHeaderChecksum"/> reproduces Kafka's magic-0 HC byte (see class remarks).
    /// </summary>
    public static void Compress(ReadOnlySpan<byte> input, PooledBuffer output, int level = 0, bool brokenHeaderChecksum = false,
        bool blockChecksums = false, bool contentChecksum = false)
    {
        const int blockSize = 1 << (2 * DefaultBlockSizeCode + 8);
        Span<byte> header = stackalloc byte[7];
        BinaryPrimitives.WriteUInt32LittleEndian(header, FrameMagic);
        header[4] = (byte)(0x40 | 0x20 | (blockChecksums ? 0x10 : 0) | (contentChecksum ? 0x04 : 0));
        header[5] = DefaultBlockSizeCode << 4;
        header[6] = (byte)(XxHash32.Hash(brokenHeaderChecksum ? header[..6] : header[4..6]) >> 8);
        output.Write(header);

        int bound = LZ4Codec.MaximumOutputSize(blockSize);
        LZ4Level lz4Level = ToLevel(level);
        byte[] scratch = ArrayPool<byte>.Shared.Rent(bound);
        try
        {
            for (int position = 0; position < input.Length; position += blockSize)
            {
                ReadOnlySpan<byte> chunk = input.Slice(position, Math.Min(blockSize, input.Length - position));
                int compressed = LZ4Codec.Encode(chunk, scratch.AsSpan(0, bound), lz4Level);
                if (compressed <= 0) throw new InvalidOperationException("lz4 failed to compress a block");
                ReadOnlySpan<byte> block;
                int sizeField;
                if (compressed >= chunk.Length)
                {
                    // Incompressible: store the block raw with the high bit set, as the frame format allows.
                    block = chunk;
                    sizeField = chunk.Length | UncompressedBlockFlag;
                }
                else
                {
                    block = scratch.AsSpan(0, compressed);
                    sizeField = compressed;
                }
                BinaryPrimitives.WriteInt32LittleEndian(output.GetSpan(4), sizeField);
                output.Advance(4);
                output.Write(block);
                if (blockChecksums)
                {
                    BinaryPrimitives.WriteUInt32LittleEndian(output.GetSpan(4), XxHash32.Hash(block));
                    output.Advance(4);
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
        BinaryPrimitives.WriteInt32LittleEndian(output.GetSpan(4), 0);
        output.Advance(4);
        if (contentChecksum)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(output.GetSpan(4), XxHash32.Hash(input));
            output.Advance(4);
        }
    }

    /// <summary>
    /// Kafka's compression.lz4.level (KIP-390, 1..17, default 9) as Lz4BlockOutputStream applies it:
    /// the default level 9 uses lz4-java's fast compressor and any other level its HC compressor at
    /// that level. 0 or less (no level given) is the fast compressor too. LZ4 HC itself tops out at
    /// 12 (higher levels behave as 12), and the managed port's lowest HC level is 3, so 1 and 2 use 3.
    /// </summary>
    private static LZ4Level ToLevel(int level) => level switch
    {
        <= 0 or 9 => LZ4Level.L00_FAST,
        < 3 => LZ4Level.L03_HC,
        > 12 => LZ4Level.L12_MAX,
        _ => (LZ4Level)level,
    };

    private static KafkaProtocolException Corrupt(string message) => new(ProtocolErrorKind.Compression, message);
}
