namespace Samsa.Kafka.Storage;

/// <summary>
/// A segment's open .log file, shared by the segment and by Fetch responses still sending ranges
/// of it. The file is closed when the segment lets go (close, delete, rename) and every lease
/// taken with <see cref="TryLease"/> is disposed: a Fetch answered from a segment that retention,
/// compaction or DeleteRecords removes meanwhile still sends the bytes it read (on Linux a deleted
/// file stays readable while open), as upstream's FileRecords keeps its channel until the
/// response is written.
/// </summary>
public sealed class SegmentFile
{
    // One reference for the segment, one per lease; the stream is closed when this reaches zero.
    private int _references = 1;
    private int _ownerReleased;

    internal SegmentFile(FileStream stream)
    {
        Stream = stream;
        Handle = stream.SafeFileHandle;
    }

    public FileStream Stream { get; }

    /// <summary>
    /// The stream's handle, taken once. Reading FileStream.SafeFileHandle of a seekable stream
    /// seeks the file to the stream's position first (lseek(2)) on every call; the segment only
    /// writes and reads at explicit offsets (pwrite/pread through RandomAccess), so that seek was a
    /// wasted system call per append and per read. Closed with the stream.
    /// </summary>
    public Microsoft.Win32.SafeHandles.SafeFileHandle Handle { get; }

    /// <summary>References held (the segment's and leases); for tests and diagnostics.</summary>
    public int References => Volatile.Read(ref _references);

    /// <summary>A lease keeping <see cref="Stream"/> open until disposed, or null when the file is already closed.</summary>
    public IDisposable? TryLease()
    {
        int current = Volatile.Read(ref _references);
        while (current > 0)
        {
            int seen = Interlocked.CompareExchange(ref _references, current + 1, current);
            if (seen == current) return new Lease(this);
            current = seen;
        }
        return null;
    }

    /// <summary>The segment lets go of the file (idempotent); it closes now or when the last lease ends.</summary>
    internal void ReleaseOwner()
    {
        if (Interlocked.Exchange(ref _ownerReleased, 1) == 0) Release();
    }

    private void Release()
    {
        if (Interlocked.Decrement(ref _references) == 0) Stream.Dispose();
    }

    private sealed class Lease(SegmentFile file) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0) file.Release();
            GC.SuppressFinalize(this);
        }

        // A safety net: a response dropped without disposing its records (a bug) must not keep a
        // deleted segment's disk space forever; the collector ends the lease instead.
        ~Lease()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0) file.Release();
        }
    }
}
