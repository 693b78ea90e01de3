using Samsa.Kafka.Protocol.Compression;
using Samsa.Kafka.Protocol.Primitives;
using Xunit;

namespace Samsa.Kafka.Protocol.Tests.Compression;

public class PooledBufferTests
{
    [Fact]
    public void Grows_keeps_contents_and_enforces_its_maximum()
    {
        using var buffer = new PooledBuffer(16, maxLength: 100_000);
        byte[] chunk = Enumerable.Range(0, 1000).Select(i => (byte)i).ToArray();
        for (int i = 0; i < 100; i++) buffer.Write(chunk);
        Assert.Equal(100_000, buffer.Length);
        for (int i = 0; i < 100; i++) Assert.True(buffer.WrittenSpan.Slice(i * 1000, 1000).SequenceEqual(chunk));
        var e = Assert.Throws<KafkaProtocolException>(() => buffer.WriteByte(1));
        Assert.Equal(ProtocolErrorKind.Compression, e.Kind);
        Assert.Equal(100_000, buffer.Length);
        buffer.GetSpan(10);
        Assert.Throws<KafkaProtocolException>(() => buffer.Advance(1));
    }

    [Fact]
    public void Truncate_clear_and_reuse_after_dispose()
    {
        var buffer = new PooledBuffer();
        buffer.Write([1, 2, 3, 4]);
        buffer.Truncate(2);
        Assert.Equal(new byte[] { 1, 2 }, buffer.ToArray());
        buffer.Clear();
        Assert.Equal(0, buffer.Length);
        buffer.Dispose();
        buffer.Write([9]);
        Assert.Equal(new byte[] { 9 }, buffer.ToArray());
        buffer.Dispose();
    }
}
