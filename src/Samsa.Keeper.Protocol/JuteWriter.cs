using System.Buffers.Binary;
using System.Text;

namespace Samsa.Keeper.Protocol;

/// <summary>Writes jute's binary encoding into a span sized by the record's Size().</summary>
public ref struct JuteWriter
{
    private readonly Span<byte> _buffer;
    private int _position;

    public JuteWriter(Span<byte> buffer)
    {
        _buffer = buffer;
        _position = 0;
    }

    public readonly int Position => _position;

    public void WriteInt(int v) { BinaryPrimitives.WriteInt32BigEndian(_buffer.Slice(_position, 4), v); _position += 4; }
    public void WriteLong(long v) { BinaryPrimitives.WriteInt64BigEndian(_buffer.Slice(_position, 8), v); _position += 8; }
    public void WriteBool(bool v) { _buffer[_position++] = v ? (byte)1 : (byte)0; }

    public void WriteBuffer(byte[]? v)
    {
        if (v is null) { WriteInt(-1); return; }
        WriteInt(v.Length);
        v.CopyTo(_buffer.Slice(_position));
        _position += v.Length;
    }

    public void WriteUString(string? v)
    {
        if (v is null) { WriteInt(-1); return; }
        int n = Encoding.UTF8.GetBytes(v, _buffer.Slice(_position + 4));
        WriteInt(n);
        _position += n;
    }

    public void WriteRaw(ReadOnlySpan<byte> bytes) { bytes.CopyTo(_buffer.Slice(_position)); _position += bytes.Length; }
}

/// <summary>Encoded sizes of jute primitives, used by generated Size() methods.</summary>
public static class JuteSize
{
    public static int Buffer(byte[]? v) => 4 + (v?.Length ?? 0);
    public static int UString(string? v) => 4 + (v is null ? 0 : Encoding.UTF8.GetByteCount(v));
}

/// <summary>Implemented by every generated jute record.</summary>
public interface IJuteRecord
{
    void Write(ref JuteWriter writer);
    int Size();
}

public static class JuteRecordExtensions
{
    /// <summary>Serializes a record into a fresh array of exactly its size.</summary>
    public static byte[] ToBytes(this IJuteRecord record)
    {
        var bytes = new byte[record.Size()];
        var w = new JuteWriter(bytes);
        record.Write(ref w);
        return bytes;
    }
}
