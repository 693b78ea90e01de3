using System.Buffers.Binary;
using FsCheck;
using FsCheck.Fluent;
using Samsa.Kafka.Protocol.Compression;
using Samsa.Kafka.Protocol.Primitives;
using Xunit;

namespace Samsa.Kafka.Protocol.Tests.Compression;

public class CodecTests
{
    public static TheoryData<CompressionType> AllCodecs => new()
    {
        CompressionType.None, CompressionType.Gzip, CompressionType.Snappy, CompressionType.Lz4, CompressionType.Zstd,
    };

    public static TheoryData<CompressionType> RealCodecs => new()
    {
        CompressionType.Gzip, CompressionType.Snappy, CompressionType.Lz4, CompressionType.Zstd,
    };

    private static byte[] RoundTrip(CompressionType type, byte[] data, byte magic = 2)
    {
        byte[] compressed = CompressionCodecs.Compress(type, data, magic);
        using PooledBuffer decoded = CompressionCodecs.Decompress(type, compressed, data.Length, magic);
        return decoded.ToArray();
    }

    [Theory]
    [MemberData(nameof(AllCodecs))]
    public void Random_bytes_round_trip(CompressionType type)
    {
        Prop.ForAll<byte[]>(data => RoundTrip(type, data).AsSpan().SequenceEqual(data)).QuickCheckThrowOnFailure();
    }

    [Theory]
    [MemberData(nameof(AllCodecs))]
    public void Repetitive_data_round_trips_across_block_boundaries(CompressionType type)
    {
        // Repeats make the encoders emit back-references (overlapping copies included); sizes straddle
        // the 32 KiB xerial and 64 KiB lz4 block sizes.
        Prop.ForAll<byte[], int>((pattern, sizeSeed) =>
        {
            int size = Math.Abs(sizeSeed % 200_000);
            byte[] data = new byte[size];
            for (int i = 0; i < size; i++) data[i] = pattern.Length == 0 ? (byte)(i / 7) : pattern[i % pattern.Length];
            return RoundTrip(type, data).AsSpan().SequenceEqual(data);
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(40));
    }

    [Theory]
    [MemberData(nameof(RealCodecs))]
    public void Json_like_megabyte_round_trips_and_shrinks(CompressionType type)
    {
        byte[] data = TestData.JsonLike(1 << 20);
        byte[] compressed = CompressionCodecs.Compress(type, data);
        Assert.True(compressed.Length < data.Length / 2, $"{type} only reached {compressed.Length} bytes");
        using PooledBuffer decoded = CompressionCodecs.Decompress(type, compressed, data.Length);
        Assert.True(decoded.WrittenSpan.SequenceEqual(data));
    }

    [Theory]
    [MemberData(nameof(RealCodecs))]
    public void Decompression_beyond_the_limit_is_an_error_not_an_allocation(CompressionType type)
    {
        byte[] bomb = CompressionCodecs.Compress(type, new byte[8 << 20]);
        var e = Assert.Throws<KafkaProtocolException>(() => CompressionCodecs.Decompress(type, bomb, 1 << 20).Dispose());
        Assert.Equal(ProtocolErrorKind.Compression, e.Kind);
        // Exactly at the limit is fine.
        using PooledBuffer ok = CompressionCodecs.Decompress(type, bomb, 8 << 20);
        Assert.Equal(8 << 20, ok.Length);
    }

    [Theory]
    [MemberData(nameof(RealCodecs))]
    public void Garbage_input_only_ever_raises_KafkaProtocolException(CompressionType type)
    {
        Prop.ForAll<byte[]>(data =>
        {
            try
            {
                CompressionCodecs.Decompress(type, data, 1 << 20).Dispose();
            }
            catch (KafkaProtocolException)
            {
            }
            return true;
        }).QuickCheckThrowOnFailure();
    }

    [Theory]
    [MemberData(nameof(RealCodecs))]
    public void Mutated_compressed_streams_only_ever_raise_KafkaProtocolException(CompressionType type)
    {
        byte[] original = CompressionCodecs.Compress(type, TestData.JsonLike(40_000));
        Prop.ForAll<(int, byte)[]>(mutations =>
        {
            byte[] data = (byte[])original.Clone();
            foreach ((int where, byte value) in mutations ?? [])
                data[Math.Abs(where % data.Length)] = value;
            try
            {
                CompressionCodecs.Decompress(type, data, 1 << 20).Dispose();
            }
            catch (KafkaProtocolException)
            {
            }
            return true;
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(300));
    }

    [Theory]
    [InlineData(CompressionType.Snappy)]
    [InlineData(CompressionType.Lz4)]
    [InlineData(CompressionType.Zstd)]
    public void Every_truncation_of_a_compressed_stream_is_detected(CompressionType type)
    {
        byte[] data = TestData.JsonLike(100_000);
        byte[] compressed = CompressionCodecs.Compress(type, data);
        int step = Math.Max(1, compressed.Length / 400);
        for (int cut = 0; cut < compressed.Length; cut += step)
        {
            // A xerial stream cut exactly between blocks is a valid shorter stream, as in snappy-java;
            // everything else must fail, and always with our exception type.
            try
            {
                using PooledBuffer partial = CompressionCodecs.Decompress(type, compressed.AsSpan(0, cut), data.Length);
                Assert.True(type == CompressionType.Snappy && partial.Length < data.Length && data.AsSpan().StartsWith(partial.WrittenSpan),
                    $"{type} accepted a stream cut at {cut} of {compressed.Length}");
            }
            catch (KafkaProtocolException e)
            {
                Assert.Equal(ProtocolErrorKind.Compression, e.Kind);
            }
        }
    }

    [Fact]
    public void Snappy_output_is_xerial_framed_like_the_java_client()
    {
        byte[] data = TestData.JsonLike(100_000);
        byte[] compressed = CompressionCodecs.Compress(CompressionType.Snappy, data);
        Assert.True(compressed.AsSpan(0, 8).SequenceEqual(new byte[] { 0x82, (byte)'S', (byte)'N', (byte)'A', (byte)'P', (byte)'P', (byte)'Y', 0 }));
        Assert.Equal(1, BinaryPrimitives.ReadInt32BigEndian(compressed.AsSpan(8)));
        Assert.Equal(1, BinaryPrimitives.ReadInt32BigEndian(compressed.AsSpan(12)));
        // 100 000 bytes in 32 KiB blocks = 4 length-prefixed blocks exactly filling the rest.
        int position = 16, blocks = 0;
        while (position < compressed.Length)
        {
            position += 4 + BinaryPrimitives.ReadInt32BigEndian(compressed.AsSpan(position));
            blocks++;
        }
        Assert.Equal(compressed.Length, position);
        Assert.Equal(4, blocks);
    }

    [Fact]
    public void Lz4_output_is_a_standard_frame_with_independent_blocks()
    {
        byte[] compressed = CompressionCodecs.Compress(CompressionType.Lz4, TestData.JsonLike(10_000));
        Assert.Equal(0x184D2204u, BinaryPrimitives.ReadUInt32LittleEndian(compressed));
        byte flg = compressed[4];
        Assert.Equal(1, flg >> 6);          // version 01
        Assert.NotEqual(0, flg & 0x20);     // block independence
        Assert.Equal(0x40, compressed[5]);  // 64 KiB blocks
        Assert.Equal((byte)(XxHash32.Hash(compressed.AsSpan(4, 2)) >> 8), compressed[6]);
        Assert.Equal(0, BinaryPrimitives.ReadInt32LittleEndian(compressed.AsSpan(compressed.Length - 4))); // EndMark
    }

    [Fact]
    public void Lz4_dependent_block_frames_are_rejected_like_kafka()
    {
        byte[] compressed = CompressionCodecs.Compress(CompressionType.Lz4, TestData.JsonLike(10_000));
        compressed[4] &= 0xDF; // clear block independence
        compressed[6] = (byte)(XxHash32.Hash(compressed.AsSpan(4, 2)) >> 8);
        var e = Assert.Throws<KafkaProtocolException>(() => CompressionCodecs.Decompress(CompressionType.Lz4, compressed, 1 << 20).Dispose());
        Assert.Contains("dependent", e.Message);
    }

    [Fact]
    public void Lz4_checksums_are_verified()
    {
        byte[] data = TestData.JsonLike(150_000);
        using var output = new PooledBuffer();
        Lz4FrameCodec.Compress(data, output, blockChecksums: true, contentChecksum: true);
        byte[] good = output.ToArray();
        using (PooledBuffer decoded = CompressionCodecs.Decompress(CompressionType.Lz4, good, data.Length))
            Assert.True(decoded.WrittenSpan.SequenceEqual(data));

        byte[] badContent = (byte[])good.Clone();
        badContent[^1] ^= 1;
        Assert.Contains("content checksum", Assert.Throws<KafkaProtocolException>(
            () => CompressionCodecs.Decompress(CompressionType.Lz4, badContent, data.Length).Dispose()).Message);

        byte[] badBlock = (byte[])good.Clone();
        badBlock[7 + 4 + 10] ^= 1; // inside the first block's data
        Assert.Throws<KafkaProtocolException>(() => CompressionCodecs.Decompress(CompressionType.Lz4, badBlock, data.Length).Dispose());
    }

    [Fact]
    public void Lz4_magic0_frames_use_kafkas_old_header_checksum()
    {
        byte[] data = TestData.JsonLike(5_000);
        byte[] old = CompressionCodecs.Compress(CompressionType.Lz4, data, magic: 0);
        Assert.Equal((byte)(XxHash32.Hash(old.AsSpan(0, 6)) >> 8), old[6]);
        using (PooledBuffer decoded = CompressionCodecs.Decompress(CompressionType.Lz4, old, data.Length, magic: 0))
            Assert.True(decoded.WrittenSpan.SequenceEqual(data));
        Assert.Throws<KafkaProtocolException>(() => CompressionCodecs.Decompress(CompressionType.Lz4, old, data.Length, magic: 2).Dispose());
    }

    [Fact]
    public void Zstd_decodes_concatenated_frames()
    {
        byte[] a = TestData.JsonLike(30_000, 1), b = TestData.JsonLike(20_000, 2);
        byte[] both = [.. CompressionCodecs.Compress(CompressionType.Zstd, a), .. CompressionCodecs.Compress(CompressionType.Zstd, b)];
        using PooledBuffer decoded = CompressionCodecs.Decompress(CompressionType.Zstd, both, 100_000);
        Assert.True(decoded.WrittenSpan.SequenceEqual([.. a, .. b]));
    }

    [Fact]
    public void Unknown_codec_is_a_compression_error()
    {
        var e = Assert.Throws<KafkaProtocolException>(() => CompressionCodecs.Decompress((CompressionType)5, [1, 2, 3], 100).Dispose());
        Assert.Equal(ProtocolErrorKind.Compression, e.Kind);
    }
}
