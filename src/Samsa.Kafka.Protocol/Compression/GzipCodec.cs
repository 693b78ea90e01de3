using System.IO.Compression;
using Samsa.Kafka.Protocol.Primitives;

namespace Samsa.Kafka.Protocol.Compression;

/// <summary>
/// gzip (RFC 1952) through System.IO.Compression. Kafka's Java client writes a single gzip member
/// with GZIPOutputStream at the default level; concatenated members are decoded too.
/// GZipStream does not report a stream cut short: it returns the bytes inflated so far. That is
/// safe here because the batch CRC-32C (or the legacy CRC-32) covers the compressed bytes, so only
/// a producer that wrote a short stream could get one past validation, and the record-level checks
/// (declared record count, per-record lengths) then reject the missing data.
/// </summary>
public static class GzipCodec
{
    public static unsafe void Decompress(ReadOnlySpan<byte> input, PooledBuffer output)
    {
        if (input.IsEmpty) throw new KafkaProtocolException(ProtocolErrorKind.Compression, "gzip input is empty");
        fixed (byte* p = input)
        {
            using var source = new UnmanagedMemoryStream(p, input.Length);
            try
            {
                using var gzip = new GZipStream(source, CompressionMode.Decompress);
                while (true)
                {
                    // Ask for one byte more than the allowance so an over-long stream is detected
                    // without inflating it further.
                    int want = (int)Math.Min(64 * 1024, (long)output.RemainingAllowance + 1);
                    Span<byte> span = output.GetSpan(want)[..want];
                    int n = gzip.Read(span);
                    if (n == 0) break;
                    output.Advance(n);
                }
            }
            catch (InvalidDataException e)
            {
                throw new KafkaProtocolException(ProtocolErrorKind.Compression, "gzip data is corrupt: " + e.Message, e);
            }
        }
    }

    public static void Compress(ReadOnlySpan<byte> input, PooledBuffer output, CompressionLevel level = CompressionLevel.Optimal)
    {
        if (input.IsEmpty)
        {
            // GZipStream writes nothing at all when given no data, which no gzip reader accepts; write
            // the smallest valid member instead: 10-byte header (deflate, no flags, no mtime, OS
            // unknown), a final fixed-Huffman block holding only end-of-block, CRC-32 0, size 0.
            output.Write([0x1F, 0x8B, 0x08, 0, 0, 0, 0, 0, 0, 0xFF, 0x03, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]);
            return;
        }
        using var sink = new BufferWriterStream(output);
        using (var gzip = new GZipStream(sink, level, leaveOpen: true))
            gzip.Write(input);
    }
}

/// <summary>A write-only stream appending to a <see cref="PooledBuffer"/> (for stream-shaped encoders).</summary>
internal sealed class BufferWriterStream(PooledBuffer target) : Stream
{
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => target.Length;
    public override long Position { get => target.Length; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => target.Write(buffer.AsSpan(offset, count));
    public override void Write(ReadOnlySpan<byte> buffer) => target.Write(buffer);
    public override void WriteByte(byte value) => target.WriteByte(value);
}
