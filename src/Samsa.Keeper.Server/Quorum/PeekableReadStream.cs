namespace Samsa.Keeper.Server.Quorum;

/// <summary>A read buffer over a socket stream that says whether bytes are already waiting in it,
/// so a learner can tell "more packets are here" from "the next read would block" (it forces its
/// log and ACKs the batch of proposals before blocking, as upstream's SyncRequestProcessor flushes
/// when its queue runs dry).</summary>
public sealed class PeekableReadStream(Stream inner, int size = 1 << 16) : Stream
{
    private readonly byte[] _buf = new byte[size];
    private int _pos, _len;

    public bool HasBuffered => _pos < _len;

    public override int Read(Span<byte> dest)
    {
        if (dest.Length == 0) return 0;
        if (_pos == _len)
        {
            if (dest.Length >= _buf.Length) return inner.Read(dest);
            _pos = 0;
            _len = inner.Read(_buf);
            if (_len == 0) return 0;
        }
        int n = Math.Min(dest.Length, _len - _pos);
        _buf.AsSpan(_pos, n).CopyTo(dest);
        _pos += n;
        return n;
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
