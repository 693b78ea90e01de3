using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace Samsa.Kafka.Storage;

/// <summary>
/// Shared machinery of the offset and time index files. Upstream (AbstractIndex) memory-maps a file
/// preallocated to segment.index.bytes and trims it to the used size when the segment stops being
/// active or is closed; we keep the same file shape (so upstream's tools and a restarted upstream
/// broker read our indexes) but hold the entries in a managed buffer. New entries reach the file a
/// page at a time, and before every flush, trim, truncation and close, instead of one small write
/// per entry (one or two system calls per produce request otherwise; upstream's stores into its
/// mapping cost none). Entries not yet written are only in memory until then, which is safe for
/// the same reason upstream's unflushed mapping is: a segment past the recovery point is
/// re-indexed by recovery after an unclean stop, and one below it was flushed. Entries are
/// big-endian, as Java's ByteBuffer writes them.
/// </summary>
public abstract class IndexFile : IDisposable
{
    private readonly int _maxIndexBytes;
    private SafeFileHandle? _handle;
    private byte[] _entries;
    private long _fileLength;
    // Entries [0, _written) are in the file; [_written, Count) only in _entries.
    private int _written;
    private const int WriteBehindBytes = 4096;
    // Appends and truncations run under the partition's lock, but a segment's background flush
    // after a roll (PartitionLog.ScheduleFlushUpTo) writes pending entries from another thread.
    private readonly object _pendingLock = new();

    protected IndexFile(string path, long baseOffset, int maxIndexBytes, bool writable)
    {
        Path = path;
        BaseOffset = baseOffset;
        _maxIndexBytes = RoundDown(Math.Max(maxIndexBytes, EntrySize * 2), EntrySize);
        bool exists = File.Exists(path);
        _handle = File.OpenHandle(path, FileMode.OpenOrCreate, writable ? FileAccess.ReadWrite : FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        long length = RandomAccess.GetLength(_handle);
        int usable = (int)Math.Min(RoundDown((int)Math.Min(length, int.MaxValue), EntrySize), _maxIndexBytes);
        _entries = new byte[Math.Max(usable, EntrySize * 16)];
        if (usable > 0)
        {
            RandomAccess.Read(_handle, _entries.AsSpan(0, usable), 0);
        }
        // A file trimmed at close holds exactly its entries; an untrimmed one (unclean stop) is
        // zero-filled after them. Count the leading run of well-ordered entries, which also drops
        // garbage; recovery rebuilds the index of any segment past the recovery point anyway.
        Count = CountValidEntries(_entries.AsSpan(0, usable));
        _written = Count;
        _fileLength = length;
        Writable = writable;
        if (writable && !exists)
        {
            // Upstream preallocates new index files to the maximum size.
            RandomAccess.SetLength(_handle, _maxIndexBytes);
            _fileLength = _maxIndexBytes;
        }
    }

    public string Path { get; private set; }
    public long BaseOffset { get; }
    public bool Writable { get; private set; }
    public int Count { get; private set; }
    public int MaxEntries => _maxIndexBytes / EntrySize;
    public int MaxIndexBytes => _maxIndexBytes;
    public abstract int EntrySize { get; }
    public virtual bool IsFull => Count >= MaxEntries;
    public long SizeInBytes => (long)Count * EntrySize;

    protected abstract int CountValidEntries(ReadOnlySpan<byte> entries);

    protected ReadOnlySpan<byte> Entry(int n) => _entries.AsSpan(n * EntrySize, EntrySize);

    protected void AppendEntry(ReadOnlySpan<byte> entry)
    {
        lock (_pendingLock)
        {
            AppendEntryLocked(entry);
        }
    }

    private void AppendEntryLocked(ReadOnlySpan<byte> entry)
    {
        if (!Writable || _handle is null)
        {
            throw new InvalidOperationException($"index {Path} is not writable");
        }
        if (IsFullForAppend)
        {
            throw new InvalidOperationException($"index {Path} is full ({Count} entries)");
        }
        int position = Count * EntrySize;
        if (position + EntrySize > _entries.Length)
        {
            Array.Resize(ref _entries, Math.Min(Math.Max(_entries.Length * 2, position + EntrySize), _maxIndexBytes));
        }
        entry.CopyTo(_entries.AsSpan(position));
        Count++;
        if ((Count - _written) * EntrySize >= WriteBehindBytes)
        {
            WritePendingLocked();
        }
    }

    /// <summary>Writes the entries appended since the last write to the file, in one write.</summary>
    private void WritePending()
    {
        lock (_pendingLock)
        {
            WritePendingLocked();
        }
    }

    private void WritePendingLocked()
    {
        if (_handle is null || !Writable || _written >= Count)
        {
            return;
        }
        long end = (long)Count * EntrySize;
        if (end > _fileLength)
        {
            RandomAccess.SetLength(_handle, _maxIndexBytes);
            _fileLength = _maxIndexBytes;
        }
        int start = _written * EntrySize;
        RandomAccess.Write(_handle, _entries.AsSpan(start, (int)end - start), start);
        _written = Count;
    }

    protected virtual bool IsFullForAppend => Count >= MaxEntries;

    /// <summary>Keeps the first <paramref name="entries"/> entries.</summary>
    protected void TruncateToEntries(int entries)
    {
        bool truncated;
        lock (_pendingLock)
        {
            truncated = TruncateToEntriesLocked(entries);
        }
        if (truncated)
        {
            OnTruncated();
        }
    }

    private bool TruncateToEntriesLocked(int entries)
    {
        entries = Math.Clamp(entries, 0, Count);
        if (entries == Count)
        {
            return false;
        }
        Count = entries;
        _written = Math.Min(_written, entries);
        if (_handle is not null && Writable)
        {
            // Zero the dropped tail so a later load does not resurrect the entries.
            long start = (long)entries * EntrySize;
            long end = Math.Min(_fileLength, _maxIndexBytes);
            if (end > start)
            {
                RandomAccess.Write(_handle, new byte[end - start], start);
            }
        }
        return true;
    }

    protected virtual void OnTruncated() { }

    public void Reset()
    {
        TruncateToEntries(0);
    }

    /// <summary>Shrinks the file to the entries in use (upstream trimToValidSize, done on roll and close).</summary>
    public void TrimToValidSize()
    {
        WritePending();
        if (_handle is not null && Writable && _fileLength != SizeInBytes)
        {
            RandomAccess.SetLength(_handle, SizeInBytes);
            _fileLength = SizeInBytes;
        }
    }

    /// <summary>Grows the file back to the maximum (a segment that becomes active again after truncation).</summary>
    public void MakeWritable()
    {
        if (_handle is null)
        {
            return;
        }
        if (!Writable)
        {
            _handle.Dispose();
            _handle = File.OpenHandle(Path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
            Writable = true;
        }
        if (_fileLength < _maxIndexBytes)
        {
            RandomAccess.SetLength(_handle, _maxIndexBytes);
            _fileLength = _maxIndexBytes;
        }
    }

    public void Flush()
    {
        WritePending();
        if (_handle is not null && Writable)
        {
            RandomAccess.FlushToDisk(_handle);
        }
    }

    public void RenameTo(string newPath)
    {
        File.Move(Path, newPath, overwrite: true);
        Path = newPath;
    }

    public void Dispose()
    {
        try
        {
            WritePending();
        }
        catch (IOException)
        {
            // Closing after a disk error: recovery re-indexes the segment from its log.
        }
        _handle?.Dispose();
        _handle = null;
    }

    /// <summary>Binary search: the last slot whose key is &lt;= target, or -1 (upstream largestLowerBoundSlotFor).</summary>
    protected int LargestLowerBoundSlot(long target, Func<int, long> keyOf)
    {
        if (Count == 0 || keyOf(0) > target)
        {
            return -1;
        }
        int lo = 0, hi = Count - 1;
        while (lo < hi)
        {
            int mid = (int)(((long)lo + hi + 1) / 2);
            if (keyOf(mid) <= target)
            {
                lo = mid;
            }
            else
            {
                hi = mid - 1;
            }
        }
        return lo;
    }

    protected static int RoundDown(int value, int multiple) => value / multiple * multiple;

    protected static int ReadInt32(ReadOnlySpan<byte> bytes, int at) => BinaryPrimitives.ReadInt32BigEndian(bytes[at..]);
    protected static long ReadInt64(ReadOnlySpan<byte> bytes, int at) => BinaryPrimitives.ReadInt64BigEndian(bytes[at..]);
}

/// <summary>
/// The sparse offset index ("NNN.index"): 8-byte entries of (offset − base offset) int32 and the
/// byte position int32 of the batch in the .log file, one every index.interval.bytes of appended
/// data. The key is the last offset of the indexed batch, as upstream LogSegment.append writes it.
/// </summary>
public sealed class OffsetIndex : IndexFile
{
    public OffsetIndex(string path, long baseOffset, int maxIndexBytes, bool writable = true)
        : base(path, baseOffset, maxIndexBytes, writable)
    {
    }

    public override int EntrySize => 8;

    public long LastOffset => Count == 0 ? BaseOffset : OffsetAt(Count - 1);

    public long OffsetAt(int n) => BaseOffset + ReadInt32(Entry(n), 0);
    public int PositionAt(int n) => ReadInt32(Entry(n), 4);

    protected override int CountValidEntries(ReadOnlySpan<byte> entries)
    {
        int count = 0;
        int previousRelative = -1;
        int previousPosition = 0;
        for (int at = 0; at + 8 <= entries.Length; at += 8)
        {
            int relative = ReadInt32(entries, at);
            int position = ReadInt32(entries, at + 4);
            // Entries are written only after index.interval.bytes of data, so a position of 0 is never real.
            if (relative <= previousRelative || position <= previousPosition)
            {
                break;
            }
            previousRelative = relative;
            previousPosition = position;
            count++;
        }
        return count;
    }

    /// <summary>Whether offset − base fits the int32 relative offset.</summary>
    public bool CanAppendOffset(long offset) => offset - BaseOffset is >= 0 and <= int.MaxValue;

    /// <summary>The indexed (offset, position) at or before <paramref name="targetOffset"/>; (base, 0) when none.</summary>
    public (long Offset, int Position) Lookup(long targetOffset)
    {
        int slot = LargestLowerBoundSlot(targetOffset, OffsetAt);
        return slot < 0 ? (BaseOffset, 0) : (OffsetAt(slot), PositionAt(slot));
    }

    public void Append(long offset, int position)
    {
        if (Count > 0 && offset <= LastOffset)
        {
            throw new InvalidOperationException($"offset index append {offset} not above last offset {LastOffset} in {Path}");
        }
        if (!CanAppendOffset(offset))
        {
            throw new InvalidOperationException($"offset {offset} does not fit index with base {BaseOffset}");
        }
        Span<byte> entry = stackalloc byte[8];
        BinaryPrimitives.WriteInt32BigEndian(entry, (int)(offset - BaseOffset));
        BinaryPrimitives.WriteInt32BigEndian(entry[4..], position);
        AppendEntry(entry);
    }

    /// <summary>Removes entries for offsets &gt;= <paramref name="offset"/>.</summary>
    public void TruncateTo(long offset)
    {
        int slot = LargestLowerBoundSlot(offset, OffsetAt);
        int keep = slot < 0 ? 0 : OffsetAt(slot) == offset ? slot : slot + 1;
        TruncateToEntries(keep);
    }
}

/// <summary>
/// The time index ("NNN.timeindex"): 12-byte entries of timestamp int64 and (offset − base offset)
/// int32, appended with the offset index entries when the segment's max timestamp grew; upstream
/// keeps one slot spare for the final entry written when the segment is rolled.
/// </summary>
public sealed class TimeIndex : IndexFile
{
    public const long NoTimestamp = -1;

    public TimeIndex(string path, long baseOffset, int maxIndexBytes, bool writable = true)
        : base(path, baseOffset, maxIndexBytes, writable)
    {
    }

    public override int EntrySize => 12;

    // Upstream TimeIndex.isFull keeps the last slot for the entry appended on roll.
    public override bool IsFull => Count >= MaxEntries - 1;

    public long TimestampAt(int n) => ReadInt64(Entry(n), 0);
    public long OffsetAt(int n) => BaseOffset + ReadInt32(Entry(n), 8);

    public (long Timestamp, long Offset) LastEntry => Count == 0 ? (NoTimestamp, BaseOffset) : (TimestampAt(Count - 1), OffsetAt(Count - 1));

    protected override int CountValidEntries(ReadOnlySpan<byte> entries)
    {
        int count = 0;
        long previousTimestamp = long.MinValue;
        int previousRelative = -1;
        for (int at = 0; at + 12 <= entries.Length; at += 12)
        {
            long timestamp = ReadInt64(entries, at);
            int relative = ReadInt32(entries, at + 8);
            if (timestamp <= previousTimestamp || relative < previousRelative || relative < 0 || (timestamp == 0 && relative == 0 && count > 0))
            {
                break;
            }
            previousTimestamp = timestamp;
            previousRelative = relative;
            count++;
        }
        return count;
    }

    /// <summary>The entry with the largest timestamp &lt;= target; (NoTimestamp, base) when none.</summary>
    public (long Timestamp, long Offset) Lookup(long targetTimestamp)
    {
        int slot = LargestLowerBoundSlot(targetTimestamp, TimestampAt);
        return slot < 0 ? (NoTimestamp, BaseOffset) : (TimestampAt(slot), OffsetAt(slot));
    }

    /// <summary>Appends (timestamp, offset) when the timestamp is larger than the last entry's, as upstream maybeAppend.</summary>
    public void MaybeAppend(long timestamp, long offset, bool skipFullCheck = false)
    {
        if (!skipFullCheck && IsFull)
        {
            throw new InvalidOperationException($"time index {Path} is full");
        }
        if (Count > 0 && offset < LastEntry.Offset)
        {
            throw new InvalidOperationException($"time index append offset {offset} below last {LastEntry.Offset}");
        }
        if (Count > 0 && timestamp <= LastEntry.Timestamp)
        {
            return;
        }
        if (Count == 0 && timestamp <= NoTimestamp)
        {
            return;
        }
        if (Count >= MaxEntries)
        {
            return;
        }
        Span<byte> entry = stackalloc byte[12];
        BinaryPrimitives.WriteInt64BigEndian(entry, timestamp);
        BinaryPrimitives.WriteInt32BigEndian(entry[8..], (int)(offset - BaseOffset));
        AppendEntry(entry);
    }

    /// <summary>Removes entries for offsets &gt;= <paramref name="offset"/>.</summary>
    public void TruncateTo(long offset)
    {
        int keep = 0;
        while (keep < Count && OffsetAt(keep) < offset)
        {
            keep++;
        }
        TruncateToEntries(keep);
    }
}
