using Samsa.Kafka.Protocol.Compression;
using Samsa.Kafka.Protocol.Primitives;
using Xunit;

namespace Samsa.Kafka.Protocol.Tests.Compression;

/// <summary>Decodes data compressed by kafka-python / python-snappy / python-lz4 / python-zstandard (see Golden/README.md).</summary>
public class GoldenCodecTests
{
    [Theory]
    [InlineData("payload.gzip", CompressionType.Gzip, 2)]
    [InlineData("payload.snappy-xerial", CompressionType.Snappy, 2)]
    [InlineData("payload.snappy-raw", CompressionType.Snappy, 2)]
    [InlineData("payload.lz4", CompressionType.Lz4, 2)]
    [InlineData("payload-checksums.lz4", CompressionType.Lz4, 2)]
    [InlineData("payload-old-kafka.lz4", CompressionType.Lz4, 0)]
    [InlineData("payload.zstd", CompressionType.Zstd, 2)]
    [InlineData("payload-multiframe.zstd", CompressionType.Zstd, 2)]
    public void Reference_compressed_payload_decodes(string file, CompressionType type, byte magic)
    {
        byte[] expected = TestData.Golden("payload.txt");
        using PooledBuffer decoded = CompressionCodecs.Decompress(type, TestData.Golden(file), expected.Length, magic);
        Assert.Equal(expected.Length, decoded.Length);
        Assert.True(decoded.WrittenSpan.SequenceEqual(expected));
    }

    [Theory]
    [InlineData("payload.gzip", CompressionType.Gzip)]
    [InlineData("payload.snappy-xerial", CompressionType.Snappy)]
    [InlineData("payload.lz4", CompressionType.Lz4)]
    [InlineData("payload-multiframe.zstd", CompressionType.Zstd)]
    public void Reference_payload_is_refused_below_its_size(string file, CompressionType type)
    {
        int size = TestData.Golden("payload.txt").Length;
        var e = Assert.Throws<KafkaProtocolException>(() => CompressionCodecs.Decompress(type, TestData.Golden(file), size - 1).Dispose());
        Assert.Equal(ProtocolErrorKind.Compression, e.Kind);
    }

    [Fact]
    public void Zstd_frame_demanding_a_huge_window_is_refused_under_a_small_limit()
    {
        var e = Assert.Throws<KafkaProtocolException>(() =>
            CompressionCodecs.Decompress(CompressionType.Zstd, TestData.Golden("bigwindow.zstd"), 1 << 20).Dispose());
        Assert.Equal(ProtocolErrorKind.Compression, e.Kind);
    }

    [Fact]
    public void Old_kafka_lz4_header_checksum_is_rejected_for_v2_data()
    {
        Assert.Throws<KafkaProtocolException>(() =>
            CompressionCodecs.Decompress(CompressionType.Lz4, TestData.Golden("payload-old-kafka.lz4"), 1 << 20, magic: 2).Dispose());
    }
}
