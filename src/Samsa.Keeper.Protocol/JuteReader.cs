using System.Buffers.Binary;
using System.Text;

namespace Samsa.Keeper.Protocol;

/// <summary>Reads jute's binary encoding (the one BinaryInputArchive produces): big-endian
/// fixed-width ints, one-byte booleans, length-prefixed buffers/strings/vectors with -1 as null.
/// Every length is checked against the remaining input and against <see cref="MaxBuffer"/>
/// (upstream's jute.maxbuffer, default 0xfffff) before anything is allocated.</summary>
public ref struct JuteReader
{
    /// <summary>Upstream's default jute.maxbuffer: 1 MiB - 1.</summary>
    public const int DefaultMaxBuffer = 0xfffff;

    private readonly ReadOnlySpan<byte> _buffer;
    private int _position;

    public JuteReader(ReadOnlySpan<byte> buffer, int maxBuffer = DefaultMaxBuffer)
    {
        _buffer = buffer;
        _position = 0;
        MaxBuffer = maxBuffer;
    }

    public int MaxBuffer { get; }
    public readonly int Position => _position;
    public readonly int Remaining => _buffer.Length - _position;

    private ReadOnlySpan<byte> Take(int count)
    {
        if (count < 0 || count > Remaining)
            throw new JuteException($"need {count} bytes at offset {_position}, {Remaining} remain");
        var s = _buffer.Slice(_position, count);
        _position += count;
        return s;
    }

    public int ReadInt() => BinaryPrimitives.ReadInt32BigEndian(Take(4));
    public long ReadLong() => BinaryPrimitives.ReadInt64BigEndian(Take(8));

    /// <summary>Jute writes a boolean as one byte; any non-zero value reads as true.</summary>
    public bool ReadBool() => Take(1)[0] != 0;

    private int ReadLength(string what)
    {
        int len = ReadInt();
        if (len < -1) throw new JuteException($"negative {what} length {len}");
        if (len > MaxBuffer) throw new JuteException($"{what} length {len} exceeds jute.maxbuffer {MaxBuffer}");
        if (len > Remaining) throw new JuteException($"{what} length {len} exceeds remaining input {Remaining}");
        return len;
    }

    public byte[]? ReadBuffer()
    {
        int len = ReadLength("buffer");
        return len < 0 ? null : Take(len).ToArray();
    }

    public string? ReadUString()
    {
        int len = ReadLength("string");
        return len < 0 ? null : Encoding.UTF8.GetString(Take(len));
    }

    /// <summary>Reads a vector count. Each element takes at least one byte, so a count above
    /// the remaining input is rejected before a list is sized by it.</summary>
    public int ReadVectorCount()
    {
        int n = ReadInt();
        if (n < -1) throw new JuteException($"negative vector count {n}");
        if (n > Remaining) throw new JuteException($"vector count {n} exceeds remaining input {Remaining}");
        return n;
    }

    public ReadOnlySpan<byte> ReadRaw(int count) => Take(count);
}
