using System.Buffers;
using Samsa.Kafka.Protocol.Primitives;

namespace Samsa.Kafka.Protocol.Compression;

/// <summary>
/// A growable byte buffer backed by <see cref="ArrayPool{T}.Shared"/>, usable as an
/// <see cref="IBufferWriter{T}"/>. <see cref="MaxLength"/> caps how many bytes may be committed: a
/// decompressor writing into it cannot produce more than the caller allowed (zip-bomb defence), and the
/// failure is a <see cref="KafkaProtocolException"/> of kind <see cref="ProtocolErrorKind.Compression"/>.
/// Dispose returns the array to the pool; spans taken from it are invalid afterwards.
/// </summary>
public sealed class PooledBuffer : IBufferWriter<byte>, IDisposable
{
    private byte[] _array;
    private int _length;

    public PooledBuffer(int initialCapacity = 256, int maxLength = int.MaxValue)
    {
        if (initialCapacity < 0) throw new ArgumentOutOfRangeException(nameof(initialCapacity));
        if (maxLength < 0) throw new ArgumentOutOfRangeException(nameof(maxLength));
        MaxLength = maxLength;
        _array = ArrayPool<byte>.Shared.Rent(Math.Max(16, Math.Min(initialCapacity, maxLength == int.MaxValue ? initialCapacity : maxLength + 1)));
    }

    /// <summary>The most bytes that may be committed with <see cref="Advance"/> / <see cref="Write"/>.</summary>
    public int MaxLength { get; }

    public int Length => _length;

    /// <summary>Bytes still allowed before <see cref="MaxLength"/>.</summary>
    public int RemainingAllowance => MaxLength - _length;

    public Span<byte> Span => _array.AsSpan(0, _length);

    public ReadOnlySpan<byte> WrittenSpan => _array.AsSpan(0, _length);

    public Memory<byte> Memory => _array.AsMemory(0, _length);

    public ReadOnlyMemory<byte> WrittenMemory => _array.AsMemory(0, _length);

    public void Advance(int count)
    {
        if (count < 0 || count > _array.Length - _length) throw new ArgumentOutOfRangeException(nameof(count));
        if (count > MaxLength - _length)
            throw new KafkaProtocolException(ProtocolErrorKind.Compression,
                $"decompressed data exceeds the allowed maximum of {MaxLength} bytes");
        _length += count;
    }

    /// <summary>
    /// A span of at least <paramref name="sizeHint"/> bytes (at least one). The capacity may exceed
    /// <see cref="MaxLength"/> by up to the hint; only committed bytes are capped.
    /// </summary>
    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _array.AsSpan(_length);
    }

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _array.AsMemory(_length);
    }

    public void Write(ReadOnlySpan<byte> data)
    {
        if (data.Length > MaxLength - _length)
            throw new KafkaProtocolException(ProtocolErrorKind.Compression,
                $"decompressed data exceeds the allowed maximum of {MaxLength} bytes");
        data.CopyTo(GetSpan(data.Length));
        _length += data.Length;
    }

    public void WriteByte(byte value)
    {
        GetSpan(1)[0] = value;
        Advance(1);
    }

    /// <summary>Forgets the contents but keeps the array.</summary>
    public void Clear() => _length = 0;

    /// <summary>Drops everything after <paramref name="length"/> (used to undo a partial write).</summary>
    public void Truncate(int length)
    {
        if (length < 0 || length > _length) throw new ArgumentOutOfRangeException(nameof(length));
        _length = length;
    }

    public byte[] ToArray() => WrittenSpan.ToArray();

    private void Ensure(int sizeHint)
    {
        if (sizeHint < 1) sizeHint = 1;
        if (_array.Length - _length >= sizeHint) return;
        long needed = (long)_length + sizeHint;
        if (needed > Array.MaxLength) throw new KafkaProtocolException(ProtocolErrorKind.LengthExceedsInput, "buffer would exceed the largest array");
        long doubled = Math.Min((long)_array.Length * 2, Math.Max((long)MaxLength, needed));
        int newSize = (int)Math.Min(Math.Max(needed, doubled), Array.MaxLength);
        byte[] next = ArrayPool<byte>.Shared.Rent(newSize);
        _array.AsSpan(0, _length).CopyTo(next);
        if (_array.Length > 0) ArrayPool<byte>.Shared.Return(_array); // empty after Dispose
        _array = next;
    }

    public void Dispose()
    {
        byte[] array = _array;
        if (array.Length == 0) return;
        _array = [];
        _length = 0;
        ArrayPool<byte>.Shared.Return(array);
    }
}
