using Samsa.Kafka.Protocol.Records;
using System.Buffers;
using System.Buffers.Binary;

namespace Samsa.Kafka.Storage;

/// <summary>A byte range of a segment file: what a Fetch response sends (zero-copy when possible).</summary>
public readonly record struct FileRange(FileStream File, long Position, int Length)
{
    /// <summary>The shared file the range belongs to; lease it to keep <see cref="File"/> open while sending.</summary>
    public SegmentFile? Source { get; init; }

    /// <summary>A lease keeping <see cref="File"/> open (see <see cref="SegmentFile"/>), or null when the segment's file was closed meanwhile.</summary>
    public IDisposable? TryLease() => Source?.TryLease();
}

/// <summary>
/// One segment of a partition log: "NNN.log" holding record batches back to back, with its offset
/// and time indexes, NNN being the 20-digit base offset (upstream LogFileUtils). Not thread-safe on
/// its own: <see cref="PartitionLog"/> serialises appends, truncation and deletion; reads of
/// already-written bytes may run concurrently with appends.
/// </summary>
public sealed class LogSegment : IDisposable
{
    public const string LogSuffix = ".log";
    public const string IndexSuffix = ".index";
    public const string TimeIndexSuffix = ".timeindex";
    public const string TxnIndexSuffix = ".txnindex";
    public const string DeletedSuffix = ".deleted";
    public const string CleanedSuffix = ".cleaned";
    public const string SwapSuffix = ".swap";

    private readonly int _indexIntervalBytes;
    private int _bytesSinceLastIndexEntry;
    private long _size;
    private long _maxTimestampSoFar = -1;
    private long _offsetOfMaxTimestampSoFar;
    private long? _rollingBasedTimestamp;
    private bool _maxTimestampKnown;
    // The last few batches appended, newest last (a ring of TailBatches, guarded by itself): a
    // follower or a tailing consumer fetches at the start of one of the newest batches on nearly
    // every round, and finding it here spares the header reads (pread) of FindBatchContaining's
    // walk from the index entry. Emptied whenever the file's bytes are cut or rebuilt.
    private const int TailBatches = 4;
    private readonly BatchInfo[] _tail = new BatchInfo[TailBatches];
    private int _tailCount;
    private int _tailNext;

    private LogSegment(string directory, long baseOffset, FileStream log, OffsetIndex offsetIndex, TimeIndex timeIndex, TransactionIndex txnIndex, int indexIntervalBytes, long createdMs)
    {
        TxnIndex = txnIndex;
        Directory = directory;
        BaseOffset = baseOffset;
        _logFile = new SegmentFile(log);
        OffsetIndex = offsetIndex;
        TimeIndex = timeIndex;
        _indexIntervalBytes = indexIntervalBytes;
        _size = log.Length;
        CreatedMs = createdMs;
    }

    public string Directory { get; }
    public long BaseOffset { get; }
    /// <summary>The segment's .log file, opened for asynchronous I/O so that Samsa.Net can sendfile() ranges of it.</summary>
    public FileStream Log => Volatile.Read(ref _logFile).Stream;
    /// <summary>The shared .log file (leased by Fetch responses in flight).</summary>
    public SegmentFile LogFile => Volatile.Read(ref _logFile);
    private SegmentFile _logFile;
    public OffsetIndex OffsetIndex { get; }
    public TimeIndex TimeIndex { get; }
    public TransactionIndex TxnIndex { get; }
    public long Size => Volatile.Read(ref _size);
    public long CreatedMs { get; private set; }
    public string LogPath => Log.Name;

    public static string FileNamePrefix(long offset) => offset.ToString("D20", System.Globalization.CultureInfo.InvariantCulture);

    public static LogSegment Open(string directory, long baseOffset, int maxIndexBytes, int indexIntervalBytes, long nowMs, string suffix = "")
    {
        string prefix = System.IO.Path.Combine(directory, FileNamePrefix(baseOffset));
        var log = new FileStream(prefix + LogSuffix + suffix, FileMode.OpenOrCreate, FileAccess.ReadWrite,
            FileShare.ReadWrite | FileShare.Delete, bufferSize: 1, FileOptions.Asynchronous);
        try
        {
            var offsetIndex = new OffsetIndex(prefix + IndexSuffix + suffix, baseOffset, maxIndexBytes);
            var timeIndex = new TimeIndex(prefix + TimeIndexSuffix + suffix, baseOffset, maxIndexBytes);
            long created = log.Length > 0 ? new DateTimeOffset(File.GetLastWriteTimeUtc(log.Name)).ToUnixTimeMilliseconds() : nowMs;
            var txnIndex = new TransactionIndex(prefix + TxnIndexSuffix + suffix);
            return new LogSegment(directory, baseOffset, log, offsetIndex, timeIndex, txnIndex, indexIntervalBytes, created);
        }
        catch
        {
            log.Dispose();
            throw;
        }
    }

    public long LastModifiedMs => new DateTimeOffset(File.GetLastWriteTimeUtc(Log.Name)).ToUnixTimeMilliseconds();

    /// <summary>Largest batch max timestamp seen in this segment (-1 when none).</summary>
    public long MaxTimestampSoFar
    {
        get
        {
            EnsureMaxTimestamp();
            return _maxTimestampSoFar;
        }
    }

    public long OffsetOfMaxTimestampSoFar
    {
        get
        {
            EnsureMaxTimestamp();
            return _offsetOfMaxTimestampSoFar;
        }
    }

    private void EnsureMaxTimestamp()
    {
        if (_maxTimestampKnown)
        {
            return;
        }
        // The time index's last entry is the max up to its last entry; scan batches after it.
        (long ts, long offset) = TimeIndex.LastEntry;
        _maxTimestampSoFar = ts;
        _offsetOfMaxTimestampSoFar = offset;
        int start = OffsetIndex.Lookup(offset).Position;
        foreach (BatchInfo batch in Batches(start))
        {
            if (batch.MaxTimestamp > _maxTimestampSoFar)
            {
                _maxTimestampSoFar = batch.MaxTimestamp;
                _offsetOfMaxTimestampSoFar = batch.LastOffset;
            }
        }
        _maxTimestampKnown = true;
    }

    public bool CanConvertToRelativeOffset(long offset) => OffsetIndex.CanAppendOffset(offset);

    /// <summary>
    /// Upstream LogSegment.shouldRoll: the segment is full (size + incoming &gt; segment.bytes), old
    /// (time since the first batch's timestamp, or since creation, &gt; segment.ms − jitter, for a
    /// non-empty segment), an index is full, or the incoming offsets do not fit int32 relative offsets.
    /// </summary>
    public bool ShouldRoll(int segmentBytes, long segmentMs, long jitterMs, int incomingBytes, long maxTimestampIncoming, long maxOffsetIncoming, long nowMs)
    {
        long size = Size;
        bool reachedRollMs = size > 0 && TimeWaitedForRoll(nowMs, maxTimestampIncoming) > segmentMs - jitterMs;
        return size > segmentBytes - (long)incomingBytes || reachedRollMs || OffsetIndex.IsFull || TimeIndex.IsFull || !CanConvertToRelativeOffset(maxOffsetIncoming);
    }

    private long TimeWaitedForRoll(long nowMs, long messageTimestamp)
    {
        // Upstream: based on the first batch's timestamp when there is one, else the creation time.
        if (_rollingBasedTimestamp is null && Size > 0)
        {
            foreach (BatchInfo first in Batches(0))
            {
                _rollingBasedTimestamp = first.MaxTimestamp;
                break;
            }
        }
        if (_rollingBasedTimestamp is long basis && basis >= 0)
        {
            return messageTimestamp - basis;
        }
        return nowMs - CreatedMs;
    }

    /// <summary>Appends whole batches (already stamped with offsets) and maintains the sparse indexes.</summary>
    public void Append(ReadOnlySpan<byte> batches, long largestOffset, long largestTimestamp, long offsetOfLargestTimestamp)
    {
        if (batches.IsEmpty)
        {
            return;
        }
        if (!CanConvertToRelativeOffset(largestOffset))
        {
            throw new InvalidOperationException($"offset {largestOffset} overflows segment {BaseOffset}");
        }
        long position = Size;
        if (position == 0)
        {
            _rollingBasedTimestamp = largestTimestamp;
        }
        RandomAccess.Write(LogFile.Handle, batches, position);
        EnsureMaxTimestamp();
        if (largestTimestamp > _maxTimestampSoFar)
        {
            _maxTimestampSoFar = largestTimestamp;
            _offsetOfMaxTimestampSoFar = offsetOfLargestTimestamp;
        }
        if (_bytesSinceLastIndexEntry > _indexIntervalBytes)
        {
            OffsetIndex.Append(largestOffset, (int)position);
            TimeIndex.MaybeAppend(_maxTimestampSoFar, _offsetOfMaxTimestampSoFar);
            _bytesSinceLastIndexEntry = 0;
        }
        _bytesSinceLastIndexEntry += batches.Length;
        RememberTail(batches, position);
        Volatile.Write(ref _size, position + batches.Length);
    }

    // Headers of the batches just written, from the caller's bytes (the caller checked their framing).
    private void RememberTail(ReadOnlySpan<byte> batches, long position)
    {
        lock (_tail)
        {
            int at = 0;
            while (at + RecordBatch.HeaderSize <= batches.Length)
            {
                int size = BinaryPrimitives.ReadInt32BigEndian(batches[(at + 8)..]) + RecordBatch.LogOverhead;
                if (size < RecordBatch.HeaderSize || at + size > batches.Length)
                {
                    break;
                }
                _tail[_tailNext] = InfoOf(batches.Slice(at, RecordBatch.HeaderSize), position + at, size);
                _tailNext = (_tailNext + 1) % TailBatches;
                _tailCount = Math.Min(_tailCount + 1, TailBatches);
                at += size;
            }
        }
    }

    private void ForgetTail()
    {
        lock (_tail)
        {
            _tailCount = 0;
        }
    }

    // The remembered batch holding offset (its first through last offset), when it is wholly
    // inside the published size and at or past startingPosition.
    private bool TryTail(long offset, long startingPosition, out BatchInfo found)
    {
        long size = Size;
        lock (_tail)
        {
            for (int i = 1; i <= _tailCount; i++)
            {
                BatchInfo b = _tail[(_tailNext - i + TailBatches) % TailBatches];
                if (offset >= b.BaseOffset && offset <= b.LastOffset && b.Position >= startingPosition && b.Position + b.Size <= size)
                {
                    found = b;
                    return true;
                }
            }
        }
        found = default;
        return false;
    }

    /// <summary>Header facts of one batch in the file.</summary>
    public readonly record struct BatchInfo(long Position, long BaseOffset, long LastOffset, int Size, long MaxTimestamp, int PartitionLeaderEpoch, byte Magic, short Attributes, long ProducerId, short ProducerEpoch, int BaseSequence);

    /// <summary>
    /// Walks batch headers from <paramref name="startPosition"/> to the end of the written data,
    /// stopping at a header that is cut short or claims more bytes than the file has.
    /// </summary>
    public IEnumerable<BatchInfo> Batches(long startPosition, long endPosition = -1)
    {
        long end = endPosition < 0 ? Size : Math.Min(endPosition, Size);
        long position = startPosition;
        byte[] header = new byte[RecordBatch.HeaderSize];
        while (ReadBatchAt(position, end, header) is BatchInfo batch)
        {
            yield return batch;
            position += batch.Size;
        }
    }

    /// <summary>Reads a whole batch's bytes at <paramref name="position"/>.</summary>
    public byte[] ReadBatch(long position, int size)
    {
        byte[] bytes = new byte[size];
        int read = RandomAccess.Read(LogFile.Handle, bytes, position);
        if (read != size)
        {
            throw new IOException($"short read in {LogPath} at {position}");
        }
        return bytes;
    }

    /// <summary>
    /// Upstream translateOffset: the first batch whose last offset is &gt;= <paramref name="offset"/>,
    /// searching from the index's lower bound; null when the segment holds no such batch.
    /// </summary>
    public BatchInfo? FindBatchContaining(long offset, long startingPosition = 0)
    {
        // Every fetch (a follower's on each round) starts here: the same walk as Batches, with the
        // header on the stack rather than an iterator and an array per call.
        if (TryTail(offset, startingPosition, out BatchInfo tail))
        {
            return tail;
        }
        long position = Math.Max(OffsetIndex.Lookup(offset).Position, (int)Math.Min(startingPosition, int.MaxValue));
        long end = Size;
        Span<byte> header = stackalloc byte[RecordBatch.HeaderSize];
        while (ReadBatchAt(position, end, header) is BatchInfo batch)
        {
            if (batch.LastOffset >= offset)
            {
                return batch;
            }
            position += batch.Size;
        }
        return null;
    }

    // The batch whose header starts at position, or null where Batches would stop.
    private BatchInfo? ReadBatchAt(long position, long end, Span<byte> header)
    {
        if (position + RecordBatch.LogOverhead > end)
        {
            return null;
        }
        int read = RandomAccess.Read(LogFile.Handle, header, position);
        if (read < RecordBatch.LogOverhead)
        {
            return null;
        }
        int batchLength = BinaryPrimitives.ReadInt32BigEndian(header[8..]);
        long size = (long)batchLength + RecordBatch.LogOverhead;
        if (batchLength < RecordBatch.HeaderSize - RecordBatch.LogOverhead || position + size > end || read < RecordBatch.HeaderSize)
        {
            return null;
        }
        return InfoOf(header, position, size);
    }

    private static BatchInfo InfoOf(ReadOnlySpan<byte> header, long position, long size)
    {
        var h = new RecordBatch(header);
        return new BatchInfo(position, h.BaseOffset, h.LastOffset, (int)size, h.MaxTimestamp, h.PartitionLeaderEpoch, h.Magic, h.Attributes, h.ProducerId, h.ProducerEpoch, h.BaseSequence);
    }

    /// <summary>
    /// Reads from the batch containing <paramref name="startOffset"/> up to <paramref name="maxBytes"/>
    /// (but never past <paramref name="maxPosition"/>). With <paramref name="minOneBatch"/> the limit
    /// grows to the first batch's size (KIP-74: a fetch always makes progress). Like upstream the range
    /// may end inside a batch; clients drop a trailing partial batch.
    /// </summary>
    public FileRange? Read(long startOffset, int maxBytes, long maxPosition, bool minOneBatch, out bool firstBatchTooLarge)
    {
        firstBatchTooLarge = false;
        BatchInfo? first = FindBatchContaining(startOffset);
        if (first is not BatchInfo batch)
        {
            return null;
        }
        int limit = minOneBatch ? Math.Max(maxBytes, batch.Size) : maxBytes;
        firstBatchTooLarge = limit < batch.Size;
        long available = Math.Min(maxPosition, Size) - batch.Position;
        int length = (int)Math.Max(0, Math.Min(available, limit));
        SegmentFile file = LogFile;
        return new FileRange(file.Stream, batch.Position, length) { Source = file };
    }

    /// <summary>
    /// Upstream LogSegment.sanityCheck, O(1) in the segment's size: both index files exist, pass
    /// their sanity checks, and the last offset-index entry points inside the log. Returns why the
    /// segment's indexes must be rebuilt, or null.
    /// </summary>
    /// <param name="nextBaseOffset">The next segment's base offset (long.MaxValue for the last):
    /// index entries must name offsets below it. Upstream checks only the base offset; a time index
    /// entry past the segment's data made the final time-index append on load throw (fuzz target
    /// segment-recovery, issue 14).</param>
    public string? SanityCheck(bool indexFilesExisted, long nextBaseOffset = long.MaxValue)
    {
        if (!indexFilesExisted)
        {
            return "index files missing";
        }
        if ((OffsetIndex.SanityCheck() ?? TimeIndex.SanityCheck()) is string reason)
        {
            return reason;
        }
        if (TimeIndex.Count > 0 && TimeIndex.LastEntry.Offset >= nextBaseOffset)
        {
            return $"time index {TimeIndex.Path} names offset {TimeIndex.LastEntry.Offset}, at or past the next segment's base offset {nextBaseOffset}";
        }
        if (OffsetIndex.Count > 0 && OffsetIndex.LastOffset >= nextBaseOffset)
        {
            return $"index {OffsetIndex.Path} names offset {OffsetIndex.LastOffset}, at or past the next segment's base offset {nextBaseOffset}";
        }
        if (OffsetIndex.Count > 0 && OffsetIndex.PositionAt(OffsetIndex.Count - 1) >= Size)
        {
            return $"index {OffsetIndex.Path} points at position {OffsetIndex.PositionAt(OffsetIndex.Count - 1)}, past the end of the {Size}-byte log";
        }
        return null;
    }

    /// <summary>After <see cref="Recover"/>: the offset after the last valid batch (where a torn tail was cut).</summary>
    public long RecoveredNextOffset { get; private set; }

    /// <summary>
    /// Rebuilds the indexes and validates batches from the start (upstream LogSegment.recover): stops
    /// at the first batch that is cut short, has a bad CRC, an unknown codec, a non-v2 magic or offsets
    /// not above the previous batch's, truncates the rest and
    /// returns the number of bytes dropped. <paramref name="onBatch"/> sees each valid batch (leader
    /// epoch cache, producer state).
    /// </summary>
    public long Recover(Action<BatchInfo>? onBatch = null)
    {
        OffsetIndex.Reset();
        TimeIndex.Reset();
        TxnIndex.Reset();
        OffsetIndex.MakeWritable();
        TimeIndex.MakeWritable();
        _maxTimestampSoFar = -1;
        _offsetOfMaxTimestampSoFar = BaseOffset;
        _maxTimestampKnown = true;
        long validBytes = 0;
        long lastIndexEntry = 0;
        long nextOffset = BaseOffset;
        long fileSize = Log.Length;
        ForgetTail();
        Volatile.Write(ref _size, fileSize);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            foreach (BatchInfo batch in Batches(0, fileSize))
            {
                // Offsets must increase from batch to batch: a batch at or below the previous one's
                // last offset (or with a negative lastOffsetDelta) is damage like a bad CRC. Upstream
                // finds it when the offset index append throws InvalidOffsetException and empties the
                // segment (LogLoader.recoverLog); here the log ends before that batch (fuzz target
                // segment-recovery, issue 14).
                if (batch.Magic != RecordBatch.CurrentMagic || batch.Position != validBytes || !CanConvertToRelativeOffset(batch.LastOffset) || batch.BaseOffset < nextOffset
                    || batch.LastOffset < batch.BaseOffset)
                {
                    break;
                }
                if (buffer.Length < batch.Size)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = ArrayPool<byte>.Shared.Rent(batch.Size);
                }
                Span<byte> bytes = buffer.AsSpan(0, batch.Size);
                if (RandomAccess.Read(LogFile.Handle, bytes, batch.Position) != batch.Size || new RecordBatch(bytes).Validate() != RecordBatchError.None)
                {
                    break;
                }
                if (batch.MaxTimestamp > _maxTimestampSoFar)
                {
                    _maxTimestampSoFar = batch.MaxTimestamp;
                    _offsetOfMaxTimestampSoFar = batch.LastOffset;
                }
                if (validBytes - lastIndexEntry > _indexIntervalBytes)
                {
                    OffsetIndex.Append(batch.LastOffset, (int)validBytes);
                    TimeIndex.MaybeAppend(_maxTimestampSoFar, _offsetOfMaxTimestampSoFar);
                    lastIndexEntry = validBytes;
                }
                validBytes += batch.Size;
                nextOffset = batch.LastOffset + 1;
                onBatch?.Invoke(batch);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        RecoveredNextOffset = nextOffset;
        long truncated = fileSize - validBytes;
        if (truncated > 0)
        {
            Log.SetLength(validBytes);
        }
        Volatile.Write(ref _size, validBytes);
        _bytesSinceLastIndexEntry = (int)Math.Min(int.MaxValue, validBytes - lastIndexEntry);
        _rollingBasedTimestamp = null;
        TimeIndex.MaybeAppend(_maxTimestampSoFar, _offsetOfMaxTimestampSoFar, skipFullCheck: true);
        return truncated;
    }

    /// <summary>Drops every batch whose offsets reach <paramref name="offset"/> and the index entries for them; returns bytes removed.</summary>
    public long TruncateTo(long offset)
    {
        BatchInfo? batch = FindBatchContaining(offset);
        ForgetTail();
        OffsetIndex.TruncateTo(offset);
        TimeIndex.TruncateTo(offset);
        TxnIndex.TruncateTo(offset);
        OffsetIndex.MakeWritable();
        TimeIndex.MakeWritable();
        long removed = 0;
        if (batch is BatchInfo b)
        {
            removed = Size - b.Position;
            Log.SetLength(b.Position);
            Volatile.Write(ref _size, b.Position);
        }
        if (Size == 0)
        {
            _rollingBasedTimestamp = null;
        }
        _bytesSinceLastIndexEntry = 0;
        _maxTimestampKnown = false;
        return removed;
    }

    /// <summary>
    /// True when the batches after the last offset-index entry are whole, valid v2 batches that end
    /// exactly at the end of the file. After a clean shutdown the segment is otherwise trusted, but
    /// bytes appended after the broker stopped (a copy cut short, a torn write by another tool)
    /// would be served to consumers and appended after; this cheap check (at most
    /// index.interval.bytes plus one batch are read) sends such a segment through <see cref="Recover"/>.
    /// </summary>
    public bool EndsWithWholeValidBatches()
    {
        long position = OffsetIndex.Lookup(OffsetIndex.LastOffset).Position;
        long size = Size;
        foreach (BatchInfo batch in Batches(position, size))
        {
            if (batch.Magic != RecordBatch.CurrentMagic || batch.Position != position || batch.BaseOffset < BaseOffset)
            {
                return false;
            }
            byte[] bytes = ReadBatch(batch.Position, batch.Size);
            if (new RecordBatch(bytes).Validate() != RecordBatchError.None)
            {
                return false;
            }
            position += batch.Size;
        }
        return position == size;
    }

    /// <summary>The offset after the last batch (base offset when empty).</summary>
    public long ReadNextOffset()
    {
        long next = BaseOffset;
        int from = OffsetIndex.Lookup(OffsetIndex.LastOffset).Position;
        foreach (BatchInfo batch in Batches(from))
        {
            next = batch.LastOffset + 1;
        }
        return next;
    }

    /// <summary>
    /// Upstream findOffsetByTimestamp at batch granularity: the first batch at or after
    /// <paramref name="startingOffset"/> whose max timestamp is &gt;= <paramref name="timestamp"/>.
    /// </summary>
    public BatchInfo? FindBatchByTimestamp(long timestamp, long startingOffset)
    {
        (long _, long indexedOffset) = TimeIndex.Lookup(timestamp);
        int position = OffsetIndex.Lookup(Math.Max(indexedOffset, startingOffset)).Position;
        foreach (BatchInfo batch in Batches(position))
        {
            if (batch.LastOffset >= startingOffset && batch.MaxTimestamp >= timestamp)
            {
                return batch;
            }
        }
        return null;
    }

    /// <summary>Called when a newer segment takes over appends: final time-index entry, then trim both indexes (upstream onBecomeInactiveSegment).</summary>
    public void OnBecomeInactive()
    {
        TimeIndex.MaybeAppend(MaxTimestampSoFar, OffsetOfMaxTimestampSoFar, skipFullCheck: true);
        OffsetIndex.TrimToValidSize();
        TimeIndex.TrimToValidSize();
    }

    public void MakeActive()
    {
        OffsetIndex.MakeWritable();
        TimeIndex.MakeWritable();
    }

    public void Flush()
    {
        Log.Flush(flushToDisk: true);
        OffsetIndex.Flush();
        TimeIndex.Flush();
        TxnIndex.Flush();
    }

    /// <summary>Renames the segment's files (adding or removing a suffix such as ".deleted").</summary>
    public void ChangeSuffix(string oldSuffix, string newSuffix)
    {
        string logPath = Log.Name;
        string newLog = logPath[..^oldSuffix.Length] + newSuffix;
        File.Move(logPath, newLog, overwrite: true);
        // The open handle follows the rename; reopen the FileStream so Name reports the new path.
        var reopened = new FileStream(newLog, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.Asynchronous);
        SegmentFile old = _logFile;
        Volatile.Write(ref _logFile, new SegmentFile(reopened));
        // A Fetch may still be sending from the old stream: its lease keeps it open.
        old.ReleaseOwner();
        OffsetIndex.RenameTo(OffsetIndex.Path[..^oldSuffix.Length] + newSuffix);
        TimeIndex.RenameTo(TimeIndex.Path[..^oldSuffix.Length] + newSuffix);
        TxnIndex.RenameTo(TxnIndex.Path[..^oldSuffix.Length] + newSuffix);
    }

    public void Close()
    {
        if (Log.CanWrite)
        {
            try
            {
                TimeIndex.MaybeAppend(MaxTimestampSoFar, OffsetOfMaxTimestampSoFar, skipFullCheck: true);
            }
            catch (InvalidOperationException)
            {
                // An index that cannot take the entry is rebuilt by recovery if needed.
            }
            OffsetIndex.TrimToValidSize();
            TimeIndex.TrimToValidSize();
        }
        Dispose();
    }

    /// <summary>Deletes the files (after the segment was closed).</summary>
    public void DeleteFiles()
    {
        Dispose();
        foreach (string path in new[] { Log.Name, OffsetIndex.Path, TimeIndex.Path, TxnIndex.Path })
        {
            try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    public void Dispose()
    {
        OffsetIndex.Dispose();
        TimeIndex.Dispose();
        TxnIndex.Dispose();
        // Closes the file now, or when the last Fetch sending from it finishes.
        _logFile.ReleaseOwner();
    }
}
