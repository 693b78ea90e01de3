using FsCheck;
using FsCheck.Fluent;
using Samsa.Kafka.Protocol.Compression;
using Samsa.Kafka.Protocol.Primitives;
using Xunit;

namespace Samsa.Kafka.Protocol.Tests.Compression;

/// <summary>Our snappy encoder and decoder against IronSnappy, an independent implementation.</summary>
public class SnappyTests
{
    private static byte[] Repetitive(byte[] pattern, int size)
    {
        byte[] data = new byte[size];
        for (int i = 0; i < size; i++) data[i] = pattern.Length == 0 ? (byte)(i / 5) : pattern[i % pattern.Length];
        return data;
    }

    [Fact]
    public void Our_raw_blocks_decode_with_IronSnappy()
    {
        Prop.ForAll<byte[], int>((pattern, sizeSeed) =>
        {
            byte[] data = sizeSeed % 3 == 0 ? pattern : Repetitive(pattern, Math.Abs(sizeSeed % 300_000));
            using var encoded = new PooledBuffer();
            SnappyCodec.CompressRaw(data, encoded);
            return IronSnappy.Snappy.Decode(encoded.WrittenSpan).AsSpan().SequenceEqual(data);
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(200));
    }

    [Fact]
    public void IronSnappy_blocks_decode_with_ours()
    {
        Prop.ForAll<byte[], int>((pattern, sizeSeed) =>
        {
            byte[] data = sizeSeed % 3 == 0 ? pattern : Repetitive(pattern, Math.Abs(sizeSeed % 300_000));
            using var decoded = new PooledBuffer(16, data.Length);
            SnappyCodec.DecompressRaw(IronSnappy.Snappy.Encode(data), decoded);
            return decoded.WrittenSpan.SequenceEqual(data);
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(200));
    }

    [Fact]
    public void Encoder_compresses_text_comparably_to_IronSnappy()
    {
        byte[] data = TestData.JsonLike(1 << 20);
        using var ours = new PooledBuffer();
        SnappyCodec.CompressRaw(data, ours);
        int theirs = IronSnappy.Snappy.Encode(data).Length;
        Assert.True(ours.Length < data.Length / 2);
        Assert.True(ours.Length < theirs * 1.15, $"ours {ours.Length} vs IronSnappy {theirs}");
    }

    [Fact]
    public void Forged_length_preamble_is_rejected_before_allocating()
    {
        // Preamble claims 4 GiB - 1 from a 6-byte input.
        byte[] forged = [0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x00];
        using var output = new PooledBuffer(16, int.MaxValue - 64);
        var e = Assert.Throws<KafkaProtocolException>(() => SnappyCodec.DecompressRaw(forged, output));
        Assert.Equal(ProtocolErrorKind.Compression, e.Kind);
        Assert.Equal(0, output.Length);
    }

    [Fact]
    public void Copy_with_offset_beyond_output_is_rejected()
    {
        // length 8; literal "ab"; copy-1 of length 4 at offset 5 (only 2 bytes produced so far).
        byte[] bad = [8, 1 << 2, (byte)'a', (byte)'b', 0x01, 5];
        using var output = new PooledBuffer();
        Assert.Throws<KafkaProtocolException>(() => SnappyCodec.DecompressRaw(bad, output));
    }
}
