using System.Buffers;
using System.Runtime.InteropServices;

namespace Samsa.Kafka.Protocol.Records;

/// <summary>
/// Record batches that stay in a file (a byte range of a log segment) until they are sent —
/// upstream's FileRecords, whose writeTo hands the range to FileChannel.transferTo. It is a
/// <see cref="MemoryManager{T}"/> so that it fits the generated messages' <c>records</c> fields
/// (<c>ReadOnlyMemory&lt;byte&gt;?</c>) unchanged:
/// <list type="bullet">
/// <item>a <see cref="Primitives.KafkaWriter"/> created with a splice list writes only the length
/// prefix and notes where the file range goes (<see cref="Primitives.SplicedRecords"/>), so the
/// sender can pass the range to sendfile;</item>
/// <item>any other reader of <see cref="Memory"/> (a plain writer, down-conversion, a test) gets
/// the bytes: the range is read from the file on first use of the span and kept.</item>
/// </list>
/// The owner (the storage layer's lease on the segment file) keeps the file open — also after the
/// segment is deleted, compacted away or renamed — until <see cref="IDisposable.Dispose"/>.
/// </summary>
public sealed class FileRecords : MemoryManager<byte>
{
    private readonly IDisposable? _owner;
    private byte[]? _materialized;
    private GCHandle _pin;
    private int _pinCount;
    private int _disposed;

    /// <param name="file">The open file; for zero-copy sends it must be opened with <see cref="FileOptions.Asynchronous"/>.</param>
    /// <param name="position">Where the records start in the file.</param>
    /// <param name="length">How many bytes, at most int.MaxValue.</param>
    /// <param name="owner">Released by <see cref="IDisposable.Dispose"/> (the lease keeping <paramref name="file"/> open).</param>
    public FileRecords(FileStream file, long position, int length, IDisposable? owner)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentOutOfRangeException.ThrowIfNegative(position);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        File = file;
        Position = position;
        Length = length;
        _owner = owner;
    }

    public FileStream File { get; }
    public long Position { get; }
    public int Length { get; }

    /// <summary>True once the file range was read into memory (someone used the span).</summary>
    public bool IsMaterialized => Volatile.Read(ref _materialized) is not null;

    /// <summary>The records as memory backed by this manager (the value for a <c>records</c> field).</summary>
    public override Memory<byte> Memory => CreateMemory(Length);

    public override Span<byte> GetSpan() => Materialize();

    public override unsafe MemoryHandle Pin(int elementIndex = 0)
    {
        byte[] bytes = Materialize();
        ArgumentOutOfRangeException.ThrowIfGreaterThan((uint)elementIndex, (uint)bytes.Length, nameof(elementIndex));
        lock (this)
        {
            if (_pinCount++ == 0) _pin = GCHandle.Alloc(bytes, GCHandleType.Pinned);
            return new MemoryHandle((byte*)_pin.AddrOfPinnedObject() + elementIndex, default, this);
        }
    }

    public override void Unpin()
    {
        lock (this)
        {
            if (_pinCount > 0 && --_pinCount == 0) _pin.Free();
        }
    }

    private byte[] Materialize()
    {
        byte[]? bytes = Volatile.Read(ref _materialized);
        if (bytes is not null) return bytes;
        bytes = new byte[Length];
        int read = 0;
        while (read < Length)
        {
            int n = RandomAccess.Read(File.SafeFileHandle, bytes.AsSpan(read), Position + read);
            // The file was truncated under the range (a follower truncation): no partial data.
            if (n <= 0) throw new IOException($"{File.Name}: {Length - read} bytes missing at {Position + read}");
            read += n;
        }
        Interlocked.CompareExchange(ref _materialized, bytes, null);
        return _materialized!;
    }

    /// <summary>The <see cref="FileRecords"/> behind <paramref name="records"/> and the sub-range it covers, if any.</summary>
    public static bool TryGet(ReadOnlyMemory<byte> records, out FileRecords? fileRecords, out int start, out int length) =>
        MemoryMarshal.TryGetMemoryManager(records, out fileRecords, out start, out length);

    protected override void Dispose(bool disposing)
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        if (disposing) _owner?.Dispose();
    }
}
