namespace Samsa.Net;

/// <summary>
/// One piece of a frame sent with <see cref="Connection.SendFrameAsync(IReadOnlyList{FramePart})"/>:
/// either bytes in memory or a byte range of an open file (a log segment), which the connection
/// sends without copying it through user space when it can — which needs the FileStream opened
/// with <see cref="FileOptions.Asynchronous"/>; other streams are read and copied.
/// </summary>
public readonly struct FramePart
{
    public ReadOnlyMemory<byte> Memory { get; }
    public FileStream? File { get; }
    public long FileOffset { get; }
    public int Length { get; }

    public FramePart(ReadOnlyMemory<byte> memory)
    {
        Memory = memory;
        File = null;
        FileOffset = 0;
        Length = memory.Length;
    }

    public FramePart(FileStream file, long offset, int count)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        Memory = default;
        File = file;
        FileOffset = offset;
        Length = count;
    }

    public bool IsFile => File is not null;

    public static implicit operator FramePart(ReadOnlyMemory<byte> memory) => new(memory);
    public static implicit operator FramePart(byte[] bytes) => new(bytes);
}
