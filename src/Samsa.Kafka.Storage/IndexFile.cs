using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace Samsa.Kafka.Storage;

/// <summary>
/// Shared machinery of the offset and time index files. Upstream (AbstractIndex) memory-maps a file
/// preallocated to segment.index.bytes, trims it to the used size when the segment stops being
/// active or is closed, and maps it only when first used (LazyIndex). We keep the same file shape
/// (so upstream's tools and a restarted upstream broker read our indexes) but hold no copy of the
/// entries: lookups read the slots they probe with pread (served by the page cache, as upstream's
/// mapping is), so an index costs no memory whatever its size and opening one reads nothing. Only
/// entries appended since the last write (at most a page) and the last entry are kept in memory:
/// new entries reach the file a page at a time, and before every flush, trim, truncation and
/// close, instead of one small write per entry. Entries not yet written are only in memory until
/// then, which is safe for the same reason upstream's unflushed mapping is: a segment past the
/// recovery point is re-indexed by recovery after an unclean stop, and one below it was flushed.
/// Entries are big-endian, as Java's ByteBuffer writes them.
/// </summary>
public abstract class IndexFile : IDisposable
{
    private readonly int _maxIndexBytes;
    private SafeFileHandle? _handle;
    private long _fileLength;
    // Entries [0, _written) are in the file; [_written, Count) only in _pending.
    private int _written;
    private byte[] _pending = [];
    // The entries of the last write-behind write, [_recentStart, _recentStart + _recentCount): they
    // are in the file too, but a follower or consumer fetching just behind the log end looks up an
    // offset inside the last page of entries (each produced batch adds one), and its binary search
    // would otherwise pread several slots (a profile of RF=3 acks=all showed those preads at ~3 % of
    // the broker's CPU). Upstream's AbstractIndex searches its "warm section" (the last 8 KiB of
    // the mapping) first for the same reason. The buffer is the previous _pending, swapped.
    private byte[] _recent = [];
    private int _recentStart = int.MaxValue;
    private int _recentCount;
    // A copy of the last entry (valid when Count > 0): the tail lookups of fetches at the log end
    // and the time index's appends need no read.
    private readonly byte[] _last;
    private const int WriteBehindBytes = 4096;
    // Appends and truncations run under the partition's lock, but a segment's background flush
    // after a roll (PartitionLog.ScheduleFlushUpTo) writes pending entries from another thread,
    // and fetches read entries concurrently.
    private readonly object _pendingLock = new();

    protected IndexFile(string path, long baseOffset, int maxIndexBytes, bool writable)
    {
        Path = path;
        BaseOffset = baseOffset;
        _maxIndexBytes = RoundDown(Math.Max(maxIndexBytes, EntrySize * 2), EntrySize);
        _last = new byte[EntrySize];
        bool exists = File.Exists(path);
        _handle = File.OpenHandle(path, FileMode.OpenOrCreate, writable ? FileAccess.ReadWrite : FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        long length = RandomAccess.GetLength(_handle);
        // As upstream: a file trimmed at roll or close holds exactly its entries. One left at its
        // preallocated size by an unclean stop is zero-filled after them; it belongs to a segment
        // at or past the recovery point, whose recovery resets it without reading it, or it fails
        // SanityCheck and is rebuilt.
        Count = (int)(Math.Min(length, _maxIndexBytes) / EntrySize);
        _written = Count;
        _fileLength = length;
        Writable = writable;
        if (Count > 0)
        {
            ReadSlot(Count - 1, _last);
        }
        if (writable && !exists)
        {
            // Upstream preallocates new index files to the maximum size (a sparse file here).
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
    /// <summary>The file's length when opened or last resized (for the sanity check).</summary>
    public long FileLength => _fileLength;

    /// <summary>
    /// Upstream AbstractIndex.sanityCheck, O(1): the file holds whole entries and its first and last
    /// entries are ordered. A zero-filled tail (a preallocated file not trimmed before a crash) fails
    /// it. Returns the reason, or null when the index looks sound.
    /// </summary>
    public abstract string? SanityCheck();

    /// <summary>Copies entry <paramref name="n"/> into <paramref name="into"/> (EntrySize bytes).</summary>
    protected void ReadEntry(int n, Span<byte> into)
    {
        if (n == Count - 1)
        {
            lock (_pendingLock)
            {
                if (n == Count - 1)
                {
                    _last.CopyTo(into);
                    return;
                }
            }
        }
        if (n >= Volatile.Read(ref _written))
        {
            lock (_pendingLock)
            {
                if (n >= _written)
                {
                    _pending.AsSpan((n - _written) * EntrySize, EntrySize).CopyTo(into);
                    return;
                }
            }
        }
        if (n >= Volatile.Read(ref _recentStart))
        {
            lock (_pendingLock)
            {
                if (n >= _recentStart && n < _recentStart + _recentCount)
                {
                    _recent.AsSpan((n - _recentStart) * EntrySize, EntrySize).CopyTo(into);
                    return;
                }
            }
        }
        ReadSlot(n, into);
    }

    private void ReadSlot(int n, Span<byte> into)
    {
        SafeFileHandle handle = _handle ?? throw new ObjectDisposedException(Path);
        if (RandomAccess.Read(handle, into, (long)n * EntrySize) != EntrySize)
        {
            // Shorter than its entry count says (cut outside our control): behave as an empty slot,
            // which lookups treat as "scan from the start" and the sanity check reports.
            into.Clear();
        }
    }

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
        int position = (Count - _written) * EntrySize;
        if (position + EntrySize > _pending.Length)
        {
            Array.Resize(ref _pending, Math.Max(WriteBehindBytes / EntrySize * EntrySize + EntrySize, position + EntrySize));
        }
        entry.CopyTo(_pending.AsSpan(position));
        entry.CopyTo(_last);
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
        RandomAccess.Write(_handle, _pending.AsSpan(0, (Count - _written) * EntrySize), (long)_written * EntrySize);
        (_recent, _pending) = (_pending, _recent);
        _recentCount = Count - _written;
        Volatile.Write(ref _recentStart, _written);
        Volatile.Write(ref _written, Count);
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
        if (entries >= _written)
        {
            // Only unwritten entries go.
            Count = entries;
            if (Count - 1 >= _written)
            {
                _pending.AsSpan((Count - 1 - _written) * EntrySize, EntrySize).CopyTo(_last);
            }
            else if (Count > 0)
            {
                ReadSlot(Count - 1, _last);
            }
            return true;
        }
        Count = entries;
        Volatile.Write(ref _written, entries);
        // Entries from `entries` on are gone from the file: so are their recent copies.
        _recentCount = Math.Clamp(entries - _recentStart, 0, _recentCount);
        if (_handle is not null && Writable)
        {
            // The dropped tail must not come back at a later load. As upstream's resize, cut the
            // file and grow it again (sparse zeros) instead of writing zeros over it: O(1) whatever
            // the index size.
            long keep = (long)entries * EntrySize;
            if (_fileLength > keep)
            {
                RandomAccess.SetLength(_handle, keep);
                if (_fileLength > keep)
                {
                    RandomAccess.SetLength(_handle, _fileLength);
                }
            }
        }
        if (Count > 0)
        {
            ReadSlot(Count - 1, _last);
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
        lock (_pendingLock)
        {
            _handle?.Dispose();
            _handle = null;
        }
    }

/// <summary>Binary search: the last slot whose key is &lt;= target, or -1 (upstream largestLowerBoundSlotFor).</summary>
    protected int LargestLowerBoundSlot(long target, Func<int, long> keyOf)
    {
        int count = Count;
        if (count == 0)
        {
            return -1;
        }
        // Most lookups (fetches at the log end, appends) land at or past the last entry, kept in memory.
        if (keyOf(count - 1) <= target)
        {
            return count - 1;
        }
        // Then the warm section, as upstream's AbstractIndex: lookups just behind the log end (a
        // follower's fetch, a tailing consumer) land in the last page of entries, which is in
        // memory (_pending / _recent); a search of the whole index would pread the slots it probes
        // on the way there, and slot 0.
        int warm = Math.Max(0, count - WriteBehindBytes / EntrySize);
        int lo = 0, hi = count - 1;
        if (warm > 0 && keyOf(warm) <= target)
        {
            lo = warm;
        }
        else
        {
            if (keyOf(0) > target)
            {
                return -1;
            }
            if (warm > 0)
            {
                hi = warm - 1;
            }
        }
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

    public long OffsetAt(int n)
    {
        Span<byte> e = stackalloc byte[8];
        ReadEntry(n, e);
        return BaseOffset + ReadInt32(e, 0);
    }

    public int PositionAt(int n)
    {
        Span<byte> e = stackalloc byte[8];
        ReadEntry(n, e);
        return ReadInt32(e, 4);
    }

    public override string? SanityCheck()
    {
        // Upstream OffsetIndex.sanityCheck: whole entries, last offset not below the base offset.
        if (FileLength % EntrySize != 0)
        {
            return $"index file {Path} has length {FileLength}, not a multiple of {EntrySize}";
        }
        if (Count == 0)
        {
            return null;
        }
        Span<byte> first = stackalloc byte[8];
        Span<byte> last = stackalloc byte[8];
        ReadEntry(0, first);
        ReadEntry(Count - 1, last);
        int firstRelative = ReadInt32(first, 0), lastRelative = ReadInt32(last, 0);
        // Entries are written only after index.interval.bytes of data, so a position of 0 is never
        // real; a zero-filled tail (preallocated file not trimmed) has last entry (0, 0).
        if (firstRelative < 0 || lastRelative < 0 || ReadInt32(first, 4) <= 0
            || (Count > 1 && (lastRelative <= firstRelative || ReadInt32(last, 4) <= ReadInt32(first, 4))))
        {
            return $"corrupt index file {Path}: {Count} entries, first (+{firstRelative}, {ReadInt32(first, 4)}), last (+{lastRelative}, {ReadInt32(last, 4)})";
        }
        return null;
    }

    /// <summary>Whether offset − base fits the int32 relative offset.</summary>
    public bool CanAppendOffset(long offset) => offset - BaseOffset is >= 0 and <= int.MaxValue;

    /// <summary>The indexed (offset, position) at or before <paramref name="targetOffset"/>; (base, 0) when none.</summary>
    public (long Offset, int Position) Lookup(long targetOffset)
    {
        int slot = LargestLowerBoundSlot(targetOffset, OffsetAt);
        if (slot < 0)
        {
            return (BaseOffset, 0);
        }
        // SanityCheck reads only the first and last entries (as upstream); a damaged entry between
        // them may hold a negative position. Scanning from the segment's start is always correct.
        int position = PositionAt(slot);
        return position < 0 ? (BaseOffset, 0) : (OffsetAt(slot), position);
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

    public long TimestampAt(int n)
    {
        Span<byte> e = stackalloc byte[12];
        ReadEntry(n, e);
        return ReadInt64(e, 0);
    }

    public long OffsetAt(int n)
    {
        Span<byte> e = stackalloc byte[12];
        ReadEntry(n, e);
        return BaseOffset + ReadInt32(e, 8);
    }

    public (long Timestamp, long Offset) LastEntry => Count == 0 ? (NoTimestamp, BaseOffset) : (TimestampAt(Count - 1), OffsetAt(Count - 1));

    public override string? SanityCheck()
    {
        // Upstream TimeIndex.sanityCheck: whole entries, last timestamp not below the first, last
        // offset not below the base offset.
        if (FileLength % EntrySize != 0)
        {
            return $"time index file {Path} has length {FileLength}, not a multiple of {EntrySize}";
        }
        if (Count == 0)
        {
            return null;
        }
        Span<byte> first = stackalloc byte[12];
        Span<byte> last = stackalloc byte[12];
        ReadEntry(0, first);
        ReadEntry(Count - 1, last);
        long firstTs = ReadInt64(first, 0), lastTs = ReadInt64(last, 0);
        int firstRelative = ReadInt32(first, 8), lastRelative = ReadInt32(last, 8);
        // A zero-filled tail (preallocated file not trimmed) ends with the entry (0, +0).
        if (lastTs < firstTs || firstRelative < 0 || lastRelative < firstRelative || (Count > 1 && lastTs == 0 && lastRelative == 0))
        {
            return $"corrupt time index file {Path}: {Count} entries, first ({firstTs}, +{firstRelative}), last ({lastTs}, +{lastRelative})";
        }
        return null;
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
        // Offsets are non-decreasing: keep up to the last entry below the offset (binary search, so a
        // truncation reads a few slots rather than the whole file).
        int keep = offset <= BaseOffset ? 0 : LargestLowerBoundSlot(offset - 1, OffsetAt) + 1;
        TruncateToEntries(keep);
    }
}
