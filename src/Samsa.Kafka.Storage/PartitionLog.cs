using Samsa.Kafka.Protocol.Primitives;
using Samsa.Kafka.Protocol.Records;
using System.Buffers.Binary;

namespace Samsa.Kafka.Storage;

/// <summary>What an append wrote.</summary>
/// <remarks>
/// <see cref="IsDuplicate"/>: the batch was a producer retry of one already in the log (same producer
/// id, epoch and sequences); nothing was appended and the offsets are those of the original, which
/// the Produce response reports as success (upstream behaviour).
/// </remarks>
public readonly record struct LogAppendInfo(long FirstOffset, long LastOffset, long MaxTimestamp, long OffsetOfMaxTimestamp, int RecordCount, int Bytes, long LogAppendTimeMs, bool IsDuplicate = false);

/// <summary>
/// The result of a log read: a file range of whole batches (the last one possibly cut short, as
/// upstream) starting with the batch that holds the fetch offset, plus the log's offsets at read time.
/// </summary>
public sealed record FetchDataInfo(long FetchOffset, FileRange? Records, bool FirstBatchTooLarge, long HighWatermark, long LogStartOffset, long LogEndOffset)
{
    public int Bytes => Records?.Length ?? 0;
}

/// <summary>An offset found by ListOffsets (timestamp lookup).</summary>
public readonly record struct TimestampAndOffset(long Timestamp, long Offset, int LeaderEpoch);

/// <summary>
/// A partition's log (upstream UnifiedLog + LocalLog): a directory "&lt;topic&gt;-&lt;partition&gt;" of
/// segments, the offsets that frame it (log start, high watermark, log end, recovery point), the
/// leader epoch cache and partition.metadata. Appends, rolls, truncation, retention and cleaning are
/// serialised by one lock; reads take a snapshot of the segment list and run without it.
/// </summary>
public sealed partial class PartitionLog : IDisposable
{
    // ListOffsets special timestamps (upstream ListOffsetsRequest).
    public const long LatestTimestamp = -1;
    public const long EarliestTimestamp = -2;
    public const long MaxTimestamp = -3;

    private readonly object _lock = new();
    private readonly TimeProvider _time;
    private volatile LogSegment[] _segments;
    // The log end offset together with the byte position it corresponds to in the active segment,
    // swapped as one object after each append so a concurrent read never serves bytes beyond the
    // offset it was bounded by.
    private sealed record LogEnd(long Offset, LogSegment Segment, long Position);
    private volatile LogEnd _end = null!;
    private long _logStartOffset;
    private long _highWatermark;
    private long _recoveryPoint;
    private long _unflushedMessages;
    private long _lastFlushMs;
    private bool _closed;
    private long? _producerIdExpirationMs;
    // Background fsync of rolled segments (ScheduleFlushUpTo), chained so they finish in order, and
    // a count of truncations so a flush scheduled before one does not move the recovery point after.
    private Task _rollFlush = Task.CompletedTask;
    private long _truncations;
    // Open transactions (KIP-98): producer id → first offset of its current transaction. Upstream
    // keeps this in ProducerStateManager with snapshots; here it is rebuilt by scanning batch headers
    // on load and after truncation.
    private readonly Dictionary<long, long> _ongoingTxns = new();
    private long _firstUnstableOffset = long.MaxValue;

    private PartitionLog(string directory, TopicPartition tp, LogConfig config, TimeProvider time, Action<string>? log)
    {
        _logLine = log;
        Directory = directory;
        TopicPartition = tp;
        Config = config;
        _time = time;
        _segments = [];
        EpochCache = new LeaderEpochCache(directory);
    }

    public string Directory { get; }
    public TopicPartition TopicPartition { get; }
    public LogConfig Config { get; set; }
    public LeaderEpochCache EpochCache { get; }
    /// <summary>Idempotent/transactional producer state (sequence numbers and epochs), rebuilt on open.</summary>
    public ProducerStateManager ProducerState { get; } = new();
    public Guid? TopicId { get; private set; }

    public long LogStartOffset => Interlocked.Read(ref _logStartOffset);
    public long LogEndOffset => _end.Offset;
    public long HighWatermark => Interlocked.Read(ref _highWatermark);
    public long RecoveryPoint => Interlocked.Read(ref _recoveryPoint);
    /// <summary>First offset of the oldest open transaction, or null when none is open.</summary>
    public long? FirstUnstableOffset => Interlocked.Read(ref _firstUnstableOffset) is long f && f != long.MaxValue ? f : null;
    /// <summary>The last stable offset (KIP-98): read_committed consumers read below it — min(high watermark, first unstable offset).</summary>
    public long LastStableOffset => Math.Min(HighWatermark, Interlocked.Read(ref _firstUnstableOffset));
    public IReadOnlyList<LogSegment> Segments => _segments;
    public LogSegment ActiveSegment => _segments[^1];
    public long Size => _segments.Sum(s => s.Size);
    /// <summary>Bytes removed from torn tails when the log was opened.</summary>
    public long RecoveredTruncatedBytes { get; private set; }
    /// <summary>Segments re-validated and re-indexed when the log was opened (past the recovery point, or failing their sanity check).</summary>
    public int RecoveredSegments { get; private set; }
    /// <summary>Segments below the recovery point whose indexes failed their sanity check and were rebuilt when the log was opened.</summary>
    public int RebuiltIndexes { get; private set; }
    private readonly Action<string>? _logLine;

    public static string DirectoryName(TopicPartition tp) => $"{tp.Topic}-{tp.Partition}";

    /// <summary>
    /// Opens (creating if needed) the log in <paramref name="directory"/>. Without a clean shutdown,
    /// every segment from the one holding <paramref name="recoveryPoint"/> on is re-validated (upstream
    /// LogLoader): the first batch with a bad CRC, wrong magic or cut-short length ends the log, later
    /// bytes and segments are removed, and the indexes are rebuilt.
    /// </summary>
    public static PartitionLog Open(string directory, TopicPartition tp, LogConfig config, long recoveryPoint = 0, long logStartOffset = 0,
        long highWatermark = 0, bool hadCleanShutdown = false, TimeProvider? time = null, Action<string>? log = null)
    {
        System.IO.Directory.CreateDirectory(directory);
        var partitionLog = new PartitionLog(directory, tp, config, time ?? TimeProvider.System, log);
        try
        {
            partitionLog.Load(recoveryPoint, logStartOffset, highWatermark, hadCleanShutdown);
        }
        catch
        {
            partitionLog.Dispose();
            throw;
        }
        return partitionLog;
    }

    private long NowMs => _time.GetUtcNow().ToUnixTimeMilliseconds();

    private void Load(long recoveryPoint, long logStartOffset, long highWatermark, bool hadCleanShutdown)
    {
        long now = NowMs;
        // Leftovers of interrupted operations: deleted and half-written cleaned files go away; a
        // ".swap" (a cleaned segment whose replacement did not finish) completes below.
        foreach (string file in System.IO.Directory.EnumerateFiles(Directory))
        {
            if (file.EndsWith(LogSegment.DeletedSuffix, StringComparison.Ordinal) || file.EndsWith(LogSegment.CleanedSuffix, StringComparison.Ordinal) || file.EndsWith(".tmp", StringComparison.Ordinal))
            {
                File.Delete(file);
            }
        }
        var swaps = System.IO.Directory.EnumerateFiles(Directory, "*" + LogSegment.LogSuffix + LogSegment.SwapSuffix).ToList();
        foreach (string swap in swaps)
        {
            long swapBase = ParseBaseOffset(Path.GetFileName(swap));
            using LogSegment swapped = LogSegment.Open(Directory, swapBase, Config.SegmentIndexBytes, Config.IndexIntervalBytes, now, LogSegment.SwapSuffix);
            long swapEnd = swapped.ReadNextOffset();
            foreach (string existing in System.IO.Directory.EnumerateFiles(Directory, "*" + LogSegment.LogSuffix))
            {
                long b = ParseBaseOffset(Path.GetFileName(existing));
                if (b >= swapBase && b < swapEnd)
                {
                    DeleteSegmentFiles(Directory, b, "");
                }
            }
            swapped.ChangeSuffix(LogSegment.SwapSuffix, "");
        }

        var segments = new List<LogSegment>();
        var indexMissing = new HashSet<long>();
        foreach (string file in System.IO.Directory.EnumerateFiles(Directory, "*" + LogSegment.LogSuffix))
        {
            long baseOffset = ParseBaseOffset(Path.GetFileName(file));
            if (baseOffset < 0)
            {
                continue;
            }
            string prefix = Path.Combine(Directory, LogSegment.FileNamePrefix(baseOffset));
            if (!File.Exists(prefix + LogSegment.IndexSuffix) || !File.Exists(prefix + LogSegment.TimeIndexSuffix))
            {
                indexMissing.Add(baseOffset);
            }
            // Opening reads nothing of the indexes (see IndexFile): the cost is a few handles.
            segments.Add(LogSegment.Open(Directory, baseOffset, Config.SegmentIndexBytes, Config.IndexIntervalBytes, now));
        }
        // Index files without a log file are orphans.
        foreach (string file in System.IO.Directory.EnumerateFiles(Directory))
        {
            string name = Path.GetFileName(file);
            if ((name.EndsWith(LogSegment.IndexSuffix, StringComparison.Ordinal) || name.EndsWith(LogSegment.TimeIndexSuffix, StringComparison.Ordinal))
                && !File.Exists(Path.Combine(Directory, name[..name.IndexOf('.')] + LogSegment.LogSuffix)))
            {
                File.Delete(file);
            }
        }
        segments.Sort((a, b) => a.BaseOffset.CompareTo(b.BaseOffset));

        if (segments.Count == 0)
        {
            segments.Add(LogSegment.Open(Directory, Math.Max(0, logStartOffset), Config.SegmentIndexBytes, Config.IndexIntervalBytes, now));
        }

        // Recovery (upstream LogLoader.recoverLog): after an unclean stop, the segment holding the
        // recovery point and every later one are re-validated and re-indexed; the segments below it
        // were flushed before the checkpoint recorded it and are not read (only sanity-checked).
        int firstToRecover = segments.Count;
        if (!hadCleanShutdown)
        {
            firstToRecover = 0;
            for (int i = 0; i < segments.Count; i++)
            {
                if (segments[i].BaseOffset <= recoveryPoint)
                {
                    firstToRecover = i;
                }
            }
        }
        // Even after a clean shutdown the active segment's tail is checked: junk or a partial batch
        // written to it while the broker was down is truncated rather than served.
        if (firstToRecover == segments.Count && !segments[^1].EndsWithWholeValidBatches())
        {
            firstToRecover = segments.Count - 1;
        }
        var recovered = new HashSet<LogSegment>();
        for (int i = 0; i < segments.Count; i++)
        {
            bool rebuildOnly = false;
            if (i < firstToRecover)
            {
                // Upstream LogLoader.loadSegmentFiles: sanity-check the indexes of a segment that is
                // not recovered anyway, and rebuild them (recoverSegment) only when they fail.
                if (segments[i].SanityCheck(!indexMissing.Contains(segments[i].BaseOffset), i + 1 < segments.Count ? segments[i + 1].BaseOffset : long.MaxValue) is not string reason)
                {
                    continue;
                }
                _logLine?.Invoke($"{TopicPartition}: rebuilding the indexes of segment {segments[i].BaseOffset} ({reason})");
                RebuiltIndexes++;
                rebuildOnly = true;
            }
            recovered.Add(segments[i]);
            RecoveredSegments++;
            long truncated = segments[i].Recover(batch => EpochCache.Assign(batch.PartitionLeaderEpoch, batch.BaseOffset));
            RecoveredTruncatedBytes += truncated;
            if (truncated > 0)
            {
                _logLine?.Invoke($"{TopicPartition}: truncated {truncated} bytes of torn or corrupt data at offset {segments[i].RecoveredNextOffset} " +
                    $"(position {segments[i].Size} of segment {segments[i].BaseOffset})" +
                    (i + 1 < segments.Count ? $"; {segments.Count - i - 1} later segment(s) deleted" : ""));
            }
            if (truncated > 0 && i + 1 < segments.Count)
            {
                // Data after a torn batch cannot be trusted: drop the following segments (upstream LogLoader).
                for (int j = segments.Count - 1; j > i; j--)
                {
                    segments[j].DeleteFiles();
                    segments.RemoveAt(j);
                }
            }
            if (rebuildOnly)
            {
                // Below the recovery point the segment must be durable again at once; segments at or
                // past it stay unflushed, as upstream: the recovery point does not move past them
                // until the log is next flushed, so another crash recovers them again.
                segments[i].Flush();
            }
        }
        for (int i = 0; i < segments.Count - 1; i++)
        {
            segments[i].OnBecomeInactive();
        }
        segments[^1].MakeActive();
        _segments = segments.ToArray();

        // An empty active segment after others: the log ends at its base offset.
        long logEnd = Math.Max(segments[^1].ReadNextOffset(), segments[^1].BaseOffset);
        _end = new LogEnd(logEnd, segments[^1], segments[^1].Size);
        _logStartOffset = Math.Clamp(logStartOffset, segments[0].BaseOffset, logEnd);
        // Upstream LogLoader: the recovery point moves to the log end only after a clean shutdown
        // with nothing recovered; otherwise it stays at the checkpoint until the next flush.
        _recoveryPoint = hadCleanShutdown && recovered.Count == 0 ? logEnd : Math.Min(Math.Max(recoveryPoint, 0), logEnd);
        _highWatermark = Math.Clamp(highWatermark, _logStartOffset, logEnd);
        _lastFlushMs = now;
        EpochCache.TruncateFromEnd(logEnd);
        EpochCache.TruncateFromStart(_logStartOffset);
        TopicId = PartitionMetadataFile.Read(Directory);
        RebuildTransactionState(recovered);
        DeleteStaleProducerSnapshots();
    }

    /// <summary>
    /// Replays batch headers (and the control record of each marker) to find open transactions;
    /// aborted transactions found in <paramref name="rebuildIndexOf"/> segments are written to their
    /// transaction index again (their index was reset by recovery).
    /// </summary>
    private void RebuildTransactionState(IReadOnlySet<LogSegment> rebuildIndexOf)
    {
        _ongoingTxns.Clear();
        ProducerState.Clear();
        foreach (LogSegment segment in _segments)
        {
            bool writeIndex = rebuildIndexOf.Contains(segment);
            foreach (LogSegment.BatchInfo batch in segment.Batches(0))
            {
                if (batch.ProducerId >= 0)
                {
                    bool control = (batch.Attributes & RecordBatch.ControlFlagMask) != 0;
                    ProducerState.Update(batch.ProducerId, batch.ProducerEpoch, batch.BaseSequence, (int)(batch.LastOffset - batch.BaseOffset),
                        batch.LastOffset, batch.MaxTimestamp, control,
                        control ? MarkerCoordinatorEpoch(new RecordBatch(segment.ReadBatch(batch.Position, batch.Size))) ?? -1 : -1);
                }
                if ((batch.Attributes & RecordBatch.TransactionalFlagMask) == 0)
                {
                    continue;
                }
                if ((batch.Attributes & RecordBatch.ControlFlagMask) == 0)
                {
                    _ongoingTxns.TryAdd(batch.ProducerId, batch.BaseOffset);
                }
                else
                {
                    CompleteTransaction(segment, segment.ReadBatch(batch.Position, batch.Size), writeIndex);
                }
            }
        }
        UpdateFirstUnstableOffset();
    }

    private void TrackTransactions(LogSegment segment, ReadOnlySpan<byte> batch)
    {
        var view = new RecordBatch(batch);
        if (!view.IsTransactional)
        {
            return;
        }
        if (!view.IsControl)
        {
            _ongoingTxns.TryAdd(view.ProducerId, view.BaseOffset);
        }
        else
        {
            CompleteTransaction(segment, batch, writeIndex: true);
        }
        UpdateFirstUnstableOffset();
    }

    // A commit or abort marker ends the producer's transaction; an abort is recorded in the
    // transaction index with the last stable offset at that point (upstream
    // ProducerStateManager.lastStableOffset: the next open transaction's first offset, else the
    // offset after the marker).
    private void CompleteTransaction(LogSegment segment, ReadOnlySpan<byte> batch, bool writeIndex)
    {
        var view = new RecordBatch(batch);
        ControlRecordType type = ControlRecordType.Unknown;
        try
        {
            foreach (Record record in view.GetRecords())
            {
                type = ControlRecords.ParseType(record.Key);
                break;
            }
        }
        catch (KafkaProtocolException)
        {
            return;
        }
        if (type is not (ControlRecordType.Abort or ControlRecordType.Commit))
        {
            return;
        }
        long first = _ongoingTxns.Remove(view.ProducerId, out long f) ? f : view.BaseOffset;
        if (type == ControlRecordType.Abort && writeIndex)
        {
            long lastStable = _ongoingTxns.Count > 0 ? _ongoingTxns.Values.Min() : view.LastOffset + 1;
            segment.TxnIndex.Append(new AbortedTxn(view.ProducerId, first, view.LastOffset, lastStable));
        }
    }

    // The coordinator epoch of a COMMIT/ABORT marker batch (its one control record's value); null for
    // another control record or one that cannot be read.
    private static int? MarkerCoordinatorEpoch(RecordBatch view)
    {
        try
        {
            foreach (Record record in view.GetRecords())
            {
                return ControlRecords.ParseType(record.Key) is ControlRecordType.Commit or ControlRecordType.Abort
                    ? ControlRecords.ParseEndTxnMarkerCoordinatorEpoch(record.Value) : null;
            }
        }
        catch (KafkaProtocolException)
        {
        }
        return null;
    }

    /// <summary>
    /// Forgets the producers idle for <paramref name="producerIdExpirationMs"/> that have no open
    /// transaction here, and verifications that old (upstream UnifiedLog.removeExpiredProducers, run
    /// every producer.id.expiration.check.interval.ms). Returns the number of producers removed.
    /// </summary>
    public int RemoveExpiredProducers(long producerIdExpirationMs)
    {
        // Remembered for the replay after a truncation (null until the first pass: a log opening does
        // not know the broker's setting; the broker runs a pass once its logs are open).
        lock (_lock)
        {
            if (_closed) return 0;
            _producerIdExpirationMs = producerIdExpirationMs;
            ProducerState.ProducerIdExpirationMs = producerIdExpirationMs;
            return ProducerState.RemoveExpiredProducers(NowMs, _ongoingTxns.ContainsKey);
        }
    }

    /// <summary>The producers this log knows, with the first offset of each one's open transaction
    /// (-1 when none), copied under the log's lock (DescribeProducers).</summary>
    public List<(ProducerSnapshotFile.Entry Entry, long CurrentTxnStartOffset)> ActiveProducers()
    {
        lock (_lock)
        {
            return ProducerState.SnapshotEntries(_ongoingTxns).Select(e => (e, e.CurrentTxnFirstOffset)).ToList();
        }
    }

    /// <summary>Whether the producer has an open transaction in this partition under this epoch
    /// (upstream UnifiedLog.hasOngoingTransaction): a transactional batch that continues it needs no
    /// KIP-890 verification with the transaction coordinator.</summary>
    public bool HasOngoingTransaction(long producerId, short producerEpoch)
    {
        lock (_lock)
        {
            return HasOngoingTransactionLocked(producerId, producerEpoch);
        }
    }

    private bool HasOngoingTransactionLocked(long producerId, short producerEpoch) =>
        _ongoingTxns.ContainsKey(producerId) && ProducerState.LastEntry(producerId)?.Epoch == producerEpoch;

    /// <summary>
    /// KIP-890, before a transactional batch is sent to the transaction coordinator for verification
    /// (upstream UnifiedLog.maybeStartTransactionVerification): <see cref="VerificationGuard.Sentinel"/>
    /// when the producer's transaction is already open here under this epoch (nothing to verify),
    /// otherwise the guard of the producer's verification state, which the append must present.
    /// An epoch older than the producer's is refused at once (INVALID_PRODUCER_EPOCH).
    /// </summary>
    public VerificationGuard MaybeStartTransactionVerification(long producerId, int sequence, short epoch, bool supportsEpochBump)
    {
        lock (_lock)
        {
            if (ProducerState.LastEntry(producerId) is { } entry && epoch < entry.Epoch)
            {
                throw new ProducerStateException(ProducerStateError.InvalidProducerEpoch,
                    $"epoch {epoch} of producer {producerId} is older than the last seen epoch {entry.Epoch}");
            }
            if (HasOngoingTransactionLocked(producerId, epoch))
            {
                return VerificationGuard.Sentinel;
            }
            return ProducerState.MaybeCreateVerificationStateEntry(producerId, sequence, epoch, supportsEpochBump, NowMs).Guard;
        }
    }

    /// <summary>The guard of the producer's verification in progress, or the sentinel (tests, diagnostics).</summary>
    public VerificationGuard VerificationGuardOf(long producerId)
    {
        lock (_lock)
        {
            return ProducerState.VerificationState(producerId)?.Guard ?? VerificationGuard.Sentinel;
        }
    }

    private void UpdateFirstUnstableOffset()
    {
        Interlocked.Exchange(ref _firstUnstableOffset, _ongoingTxns.Count > 0 ? _ongoingTxns.Values.Min() : long.MaxValue);
    }

    /// <summary>
    /// The aborted transactions a read_committed Fetch from <paramref name="fetchOffset"/> up to
    /// <paramref name="upperBoundOffset"/> must report: those whose marker is at or after the fetch
    /// offset and whose first offset is below the upper bound (upstream collectAbortedTransactions).
    /// </summary>
    public List<AbortedTxn> CollectAbortedTransactions(long fetchOffset, long upperBoundOffset)
    {
        var result = new List<AbortedTxn>();
        lock (_lock)
        {
            LogSegment[] segments = _segments;
            for (int i = Math.Max(0, FloorSegmentIndex(segments, fetchOffset)); i < segments.Length; i++)
            {
                foreach (AbortedTxn txn in segments[i].TxnIndex.Entries)
                {
                    if (txn.LastOffset >= fetchOffset && txn.FirstOffset < upperBoundOffset)
                    {
                        result.Add(txn);
                    }
                }
                if (segments[i].BaseOffset >= upperBoundOffset)
                {
                    break;
                }
            }
        }
        return result;
    }

    private static long ParseBaseOffset(string fileName)
    {
        int dot = fileName.IndexOf('.');
        return dot == 20 && long.TryParse(fileName.AsSpan(0, 20), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long b) ? b : -1;
    }

    private static void DeleteSegmentFiles(string directory, long baseOffset, string suffix)
    {
        string prefix = Path.Combine(directory, LogSegment.FileNamePrefix(baseOffset));
        foreach (string s in new[] { LogSegment.LogSuffix, LogSegment.IndexSuffix, LogSegment.TimeIndexSuffix, LogSegment.TxnIndexSuffix })
        {
            File.Delete(prefix + s + suffix);
        }
    }

    /// <summary>Records the topic id in partition.metadata (KIP-516). A different id for the same directory is refused.</summary>
    public void SetTopicId(Guid topicId)
    {
        lock (_lock)
        {
            if (TopicId is Guid existing && existing != topicId)
            {
                throw new InvalidOperationException($"{TopicPartition} already has topic id {KafkaUuid.ToString(existing)}");
            }
            if (TopicId is null)
            {
                PartitionMetadataFile.Write(Directory, topicId);
                TopicId = topicId;
            }
        }
    }

    // ------------------------------------------------------------------ append

    /// <summary>
    /// Stamps offsets and the leader epoch into v2 batches in place (the leader's side of KIP-98 /
    /// KIP-101): base offsets run on from <paramref name="firstOffset"/>. The CRC does not cover these
    /// fields, so it stays valid. Returns the offset after the last batch.
    /// </summary>
    public static long AssignOffsets(Span<byte> batches, long firstOffset, int leaderEpoch)
    {
        long next = firstOffset;
        int position = 0;
        while (position < batches.Length)
        {
            Span<byte> batch = batches[position..];
            var header = new RecordBatch(batch);
            RecordBatch.SetBaseOffset(batch, next);
            RecordBatch.SetPartitionLeaderEpoch(batch, leaderEpoch);
            next += (long)header.LastOffsetDelta + 1;
            position += header.SizeInBytes;
        }
        return next;
    }

    /// <summary>
    /// Leader append of validated v2 batches: assigns offsets from the log end offset and stamps
    /// <paramref name="leaderEpoch"/> in place, applies message.timestamp.type=LogAppendTime, then
    /// appends. Returns the offsets written (FirstOffset is the Produce response's base offset).
    /// <paramref name="verificationGuard"/> is given for client produce with KIP-890 verification on:
    /// then a transactional data batch that does not continue the producer's open transaction is
    /// appended only with the guard its verification started (upstream
    /// analyzeAndValidateProducerState) — otherwise INVALID_TXN_STATE, or INVALID_PRODUCER_EPOCH for
    /// an epoch older than the producer's (a marker with a bumped epoch came in between). Null (the
    /// coordinators' writes, replay, verification off) checks nothing of the kind.
    /// </summary>
    /// <paramref name="markerTransactionVersion"/> (KIP-1228, WriteTxnMarkers v2 and the coordinator's
    /// own markers): the epoch of a transaction marker must be above the producer's for a transaction
    /// version 2 transaction (equal only for a retry of a marker already written: no transaction
    /// open), at least the producer's for older ones; -1 checks nothing.
    public LogAppendInfo AppendAsLeader(Span<byte> batches, int leaderEpoch, VerificationGuard? verificationGuard = null, short markerTransactionVersion = -1)
    {
        ValidateFraming(batches);
        lock (_lock)
        {
            ThrowIfClosed();
            // Idempotence (KIP-98): refuse zombies and sequence gaps; a retried batch gets its first answer.
            // Only idempotent batches need it: plain producers' appends allocate nothing here.
            Dictionary<long, (short Epoch, int LastSequence)>? pending = null;
            int at = 0;
            while (at < batches.Length)
            {
                var view = new RecordBatch(batches[at..]);
                if (view.HasProducerId && !view.IsControl && view.BaseSequence >= 0)
                {
                    if (ProducerState.Check(view.ProducerId, view.ProducerEpoch, view.BaseSequence, view.LastSequence, pending ??= new()) is BatchMetadata duplicate)
                    {
                        return new LogAppendInfo(duplicate.FirstOffset, duplicate.LastOffset, duplicate.Timestamp, duplicate.LastOffset, 0, 0, -1, IsDuplicate: true);
                    }
                }
                if (verificationGuard is not null && view.IsTransactional && !view.IsControl && view.HasProducerId)
                {
                    CheckVerified(view.ProducerId, view.ProducerEpoch, verificationGuard);
                }
                if (markerTransactionVersion >= 0 && view.IsControl && view.HasProducerId)
                {
                    CheckMarkerEpoch(view.ProducerId, view.ProducerEpoch, markerTransactionVersion);
                }
                if (view.IsControl && view.HasProducerId && MarkerCoordinatorEpoch(view) is int coordinatorEpoch)
                {
                    // After the producer epoch, as upstream appendEndTxnMarker.
                    ProducerState.CheckCoordinatorEpoch(view.ProducerId, coordinatorEpoch);
                }
                at += view.SizeInBytes;
            }
            long first = LogEndOffset;
            AssignOffsets(batches, first, leaderEpoch);
            long appendTime = -1;
            if (Config.LogAppendTime)
            {
                appendTime = NowMs;
                int position = 0;
                while (position < batches.Length)
                {
                    Span<byte> batch = batches[position..];
                    RecordBatch.SetLogAppendTime(batch, appendTime);
                    position += new RecordBatch(batch).SizeInBytes;
                }
            }
            return AppendLocked(batches, appendTime);
        }
    }

    // A transactional batch either continues the producer's open transaction here or presents the
    // guard of its verification (upstream: the epoch first, then the guard).
    private void CheckVerified(long producerId, short epoch, VerificationGuard requestGuard)
    {
        if (HasOngoingTransactionLocked(producerId, epoch))
        {
            return;
        }
        if (ProducerState.LastEntry(producerId) is { } entry && epoch < entry.Epoch)
        {
            throw new ProducerStateException(ProducerStateError.InvalidProducerEpoch,
                $"epoch {epoch} of producer {producerId} is older than the last seen epoch {entry.Epoch}");
        }
        if (ProducerState.VerificationState(producerId)?.Guard.Verify(requestGuard) != true)
        {
            throw new ProducerStateException(ProducerStateError.InvalidTxnState, "Record was not part of an ongoing transaction");
        }
    }

    // Upstream ProducerAppendInfo.checkProducerEpoch for markers (KIP-1228): transaction version 2
    // bumps the epoch before its marker, so one at or below the producer's epoch is late — except a
    // marker written again once its transaction has ended (KAFKA-19999: coordinator reload, lost answer).
    private void CheckMarkerEpoch(long producerId, short epoch, short transactionVersion)
    {
        short current = ProducerState.LastEntry(producerId)?.Epoch ?? -1;
        bool invalid = transactionVersion >= 2 ? epoch <= current : epoch < current;
        if (!invalid || (transactionVersion >= 2 && epoch == current && !_ongoingTxns.ContainsKey(producerId)))
        {
            return;
        }
        throw new ProducerStateException(ProducerStateError.InvalidProducerEpoch,
            $"marker epoch {epoch} of producer {producerId} is {(transactionVersion >= 2 ? "at or below" : "below")} the last seen epoch {current} (transaction version {transactionVersion})");
    }

    /// <summary>
    /// Follower (or replay) append: the batches carry their offsets already; the first must be at or
    /// beyond the log end offset. They are checked as upstream checks a replication append
    /// (UnifiedLog.analyzeAndValidateRecords) — framing, the CRC-32C of every batch, offsets rising
    /// from batch to batch — without decoding a record, then written as they came in one write.
    /// Throws <see cref="CorruptRecordException"/> for a batch whose CRC does not match and
    /// <see cref="InvalidBatchException"/> for the rest; nothing is written then.
    /// </summary>
    public LogAppendInfo AppendAsFollower(ReadOnlySpan<byte> batches)
    {
        ValidateFraming(batches);
        // Outside the lock: the checksum is the one pass over every byte, and the log's readers
        // (the leader's fetches of this replica, consumers of a follower) need not wait for it.
        CheckReplicatedBatches(batches);
        lock (_lock)
        {
            ThrowIfClosed();
            long first = new RecordBatch(batches).BaseOffset;
            if (first < LogEndOffset)
            {
                throw new InvalidBatchException($"append offset {first} below log end offset {LogEndOffset} of {TopicPartition}");
            }
            return AppendLocked(batches, -1);
        }
    }

    /// <summary>
    /// The checks of batches copied from a leader (the follower's side of upstream's
    /// analyzeAndValidateRecords), shared by the file and in-memory logs (the caller names the
    /// partition when it reports the exception): v2 batches that fit the
    /// buffer, each batch's CRC-32C over its bytes, and offsets that rise from batch to batch. Only
    /// batch headers are read; records are not decoded.
    /// </summary>
    public static void CheckReplicatedBatches(ReadOnlySpan<byte> batches)
    {
        int position = 0;
        long previousLast = -1;
        while (position < batches.Length)
        {
            var batch = FramedBatch(batches, position);
            uint computed = batch.ComputeCrc();
            if (computed != batch.Crc)
            {
                throw new CorruptRecordException($"Record is corrupt (stored crc = {batch.Crc}, computed crc = {computed}) at offset {batch.BaseOffset}");
            }
            if (batch.LastOffsetDelta < 0 || batch.BaseOffset <= previousLast)
            {
                throw new InvalidBatchException($"out of order offsets: batch {batch.BaseOffset}..{batch.LastOffset} after offset {previousLast}");
            }
            previousLast = batch.LastOffset;
            position += batch.SizeInBytes;
        }
    }

    // The v2 batch at position, whole within the buffer; InvalidBatchException otherwise.
    private static RecordBatch FramedBatch(ReadOnlySpan<byte> batches, int position)
    {
        ReadOnlySpan<byte> rest = batches[position..];
        if (rest.Length < RecordBatch.HeaderSize)
        {
            throw new InvalidBatchException($"record batch header cut short at byte {position}");
        }
        var batch = new RecordBatch(rest);
        if (batch.Magic != RecordBatch.CurrentMagic)
        {
            throw new InvalidBatchException($"record batch magic {batch.Magic}; the log stores v2 batches only");
        }
        if (batch.BatchLength < RecordBatch.HeaderSize - RecordBatch.LogOverhead || batch.SizeInBytes > rest.Length)
        {
            throw new InvalidBatchException($"record batch length {batch.BatchLength} does not fit the {rest.Length} bytes left");
        }
        return batch;
    }

    private void ValidateFraming(ReadOnlySpan<byte> batches)
    {
        if (batches.IsEmpty)
        {
            throw new InvalidBatchException("no record batches to append");
        }
        int position = 0;
        long previousLast = long.MinValue;
        while (position < batches.Length)
        {
            var header = FramedBatch(batches, position);
            if (header.LastOffsetDelta < 0)
            {
                throw new InvalidBatchException($"negative lastOffsetDelta {header.LastOffsetDelta}");
            }
            if (header.SizeInBytes > Config.SegmentBytes)
            {
                // Upstream: RecordBatchTooLargeException when a batch cannot fit any segment.
                throw new RecordBatchTooLargeException($"record batch of {header.SizeInBytes} bytes exceeds segment.bytes {Config.SegmentBytes}");
            }
            if (header.BaseOffset <= previousLast && previousLast != long.MinValue)
            {
                // Only meaningful for follower appends; leader appends are re-stamped anyway.
            }
            previousLast = header.LastOffset;
            position += header.SizeInBytes;
        }
    }

    private LogAppendInfo AppendLocked(ReadOnlySpan<byte> batches, long appendTime)
    {
        long first = new RecordBatch(batches).BaseOffset;
        long last = first;
        long maxTimestamp = -1;
        long offsetOfMax = first;
        int records = 0;
        int position = 0;
        while (position < batches.Length)
        {
            var header = new RecordBatch(batches[position..]);
            last = header.LastOffset;
            if (header.MaxTimestamp > maxTimestamp)
            {
                maxTimestamp = header.MaxTimestamp;
                offsetOfMax = header.LastOffset;
            }
            records += header.RecordsCount;
            position += header.SizeInBytes;
        }
        LogSegment segment = MaybeRoll(batches.Length, maxTimestamp, first, last);
        segment.Append(batches, last, maxTimestamp, offsetOfMax);
        position = 0;
        while (position < batches.Length)
        {
            var view = new RecordBatch(batches[position..]);
            int size = view.SizeInBytes;
            if (view.HasProducerId)
            {
                ProducerState.Update(view.ProducerId, view.ProducerEpoch, view.BaseSequence, view.LastOffsetDelta, view.LastOffset, view.MaxTimestamp, view.IsControl,
                    view.IsControl ? MarkerCoordinatorEpoch(view) ?? -1 : -1);
                // Data or marker, the transaction now has a first offset here or has ended: the
                // verification that led here (or raced with the marker) is spent.
                if (view.IsTransactional)
                {
                    ProducerState.ClearVerificationState(view.ProducerId);
                }
            }
            TrackTransactions(segment, batches.Slice(position, size));
            // Leader epochs: record each batch epoch newer than the cache's latest (upstream assigns per batch).
            if (view.PartitionLeaderEpoch > EpochCache.LatestEpoch)
            {
                EpochCache.Assign(view.PartitionLeaderEpoch, view.BaseOffset);
            }
            position += size;
        }
        _end = new LogEnd(last + 1, segment, segment.Size);
        _unflushedMessages += records;
        if (_unflushedMessages >= Config.FlushMessages)
        {
            FlushLocked();
        }
        return new LogAppendInfo(first, last, maxTimestamp, offsetOfMax, records, batches.Length, appendTime);
    }

    private LogSegment MaybeRoll(int incomingBytes, long maxTimestamp, long firstOffset, long lastOffset)
    {
        LogSegment active = ActiveSegment;
        if (active.ShouldRoll(Config.SegmentBytes, Config.SegmentMs, Config.SegmentJitterMs, incomingBytes, maxTimestamp, lastOffset, NowMs))
        {
            return RollLocked(Math.Max(firstOffset, LogEndOffset));
        }
        return active;
    }

    /// <summary>Starts a new active segment at the log end offset (upstream roll); the old one is fsynced
    /// in the background (<see cref="PendingRollFlush"/>), after which the recovery point moves past it.</summary>
    public LogSegment Roll()
    {
        lock (_lock)
        {
            ThrowIfClosed();
            return RollLocked(LogEndOffset);
        }
    }

    private LogSegment RollLocked(long newBaseOffset)
    {
        LogSegment active = ActiveSegment;
        if (active.BaseOffset == newBaseOffset && active.Size == 0)
        {
            return active;
        }
        active.OnBecomeInactive();
        // A rolled segment is complete, so once it is on disk the recovery point can move to the new
        // segment. Upstream (UnifiedLog.roll) schedules that flush on its background scheduler
        // rather than fsyncing up to a whole segment (1 GiB by default) inside the append that
        // rolled; so does this.
        ScheduleFlushUpTo(newBaseOffset);
        var segment = LogSegment.Open(Directory, newBaseOffset, Config.SegmentIndexBytes, Config.IndexIntervalBytes, NowMs);
        _segments = [.. _segments, segment];
        // Upstream takes a producer snapshot at every roll, named by the new segment's base offset.
        TakeProducerSnapshot(newBaseOffset);
        return segment;
    }

    /// <summary>
    /// fsyncs the segments below <paramref name="offset"/> off the append path, one roll's flush
    /// after the other, then moves the recovery point — unless the log was truncated or closed
    /// meanwhile (a truncation sets its own, lower recovery point). Until it completes the
    /// recovery point stays where it was, so a crash before then recovers those segments.
    /// </summary>
    private void ScheduleFlushUpTo(long offset)
    {
        var toFlush = new List<LogSegment>();
        foreach (LogSegment s in _segments)
        {
            if (s.BaseOffset >= offset)
            {
                break;
            }
            if (NextBaseOffset(s) > RecoveryPoint)
            {
                toFlush.Add(s);
            }
        }
        long generation = _truncations;
        Task previous = _rollFlush;
        _rollFlush = Task.Run(async () =>
        {
            await previous;
            try
            {
                foreach (LogSegment s in toFlush)
                {
                    s.Flush();
                }
            }
            catch (Exception e) when (e is ObjectDisposedException or IOException)
            {
                // Deleted by retention, or closed: nothing to make durable, and no recovery point to move.
                return;
            }
            lock (_lock)
            {
                if (!_closed && generation == _truncations && offset > RecoveryPoint)
                {
                    Interlocked.Exchange(ref _recoveryPoint, Math.Min(offset, LogEndOffset));
                }
            }
        });
    }

    /// <summary>Completes when the flushes scheduled by segment rolls so far have finished.</summary>
    public Task PendingRollFlush
    {
        get { lock (_lock) return _rollFlush; }
    }

    private long NextBaseOffset(LogSegment segment)
    {
        LogSegment[] segments = _segments;
        int i = Array.IndexOf(segments, segment);
        return i >= 0 && i + 1 < segments.Length ? segments[i + 1].BaseOffset : LogEndOffset;
    }

    // ------------------------------------------------------------------ flush

    /// <summary>fsyncs everything up to the log end offset and moves the recovery point there.</summary>
    public void Flush()
    {
        lock (_lock)
        {
            if (!_closed)
            {
                FlushLocked();
            }
        }
    }

    private void FlushLocked()
    {
        long end = LogEndOffset;
        foreach (LogSegment s in _segments)
        {
            if (NextBaseOffset(s) > RecoveryPoint || s == ActiveSegment)
            {
                s.Flush();
            }
        }
        Interlocked.Exchange(ref _recoveryPoint, end);
        _unflushedMessages = 0;
        _lastFlushMs = NowMs;
    }

    /// <summary>Applies flush.ms: fsyncs when unflushed data is older than the interval. Returns whether it flushed.</summary>
    public bool FlushIfDue()
    {
        lock (_lock)
        {
            if (_closed || _unflushedMessages == 0 || Config.FlushMs == long.MaxValue || NowMs - _lastFlushMs < Config.FlushMs)
            {
                return false;
            }
            FlushLocked();
            return true;
        }
    }

    public long UnflushedMessages
    {
        get { lock (_lock) { return _unflushedMessages; } }
    }

    // ------------------------------------------------------------------ offsets

    /// <summary>Sets the high watermark, clamped to [log start, log end] (followers take the leader's).</summary>
    public void UpdateHighWatermark(long highWatermark)
    {
        lock (_lock)
        {
            Interlocked.Exchange(ref _highWatermark, Math.Clamp(highWatermark, LogStartOffset, LogEndOffset));
        }
    }

    /// <summary>Raises the high watermark (leader, once replicas caught up); never lowers it. Returns whether it moved.</summary>
    public bool MaybeIncrementHighWatermark(long highWatermark)
    {
        lock (_lock)
        {
            long clamped = Math.Min(highWatermark, LogEndOffset);
            if (clamped > HighWatermark)
            {
                Interlocked.Exchange(ref _highWatermark, clamped);
                return true;
            }
            return false;
        }
    }

    /// <summary>
    /// DeleteRecords (KIP-107): moves the log start offset up to <paramref name="newLogStartOffset"/>,
    /// which may not pass the high watermark; whole segments below it are deleted.
    /// </summary>
    public bool MaybeIncrementLogStartOffset(long newLogStartOffset)
    {
        lock (_lock)
        {
            ThrowIfClosed();
            if (newLogStartOffset > HighWatermark)
            {
                throw new LogStartOffsetOutOfRangeException($"cannot move log start offset of {TopicPartition} to {newLogStartOffset}, above high watermark {HighWatermark}");
            }
            if (newLogStartOffset <= LogStartOffset)
            {
                return false;
            }
            Interlocked.Exchange(ref _logStartOffset, newLogStartOffset);
            EpochCache.TruncateFromStart(newLogStartOffset);
            DeleteSegmentsLocked((segment, next) => next is not null && next.BaseOffset <= LogStartOffset);
            return true;
        }
    }

    // ------------------------------------------------------------------ read

    /// <summary>
    /// Reads from <paramref name="fetchOffset"/>: at most <paramref name="maxBytes"/> (but with
    /// <paramref name="minOneBatch"/> at least the first whole batch, KIP-74), never beyond
    /// <paramref name="maxOffset"/> (exclusive: the high watermark or last stable offset for consumers,
    /// the log end offset for followers). Throws <see cref="OffsetOutOfRangeException"/> when the fetch
    /// offset is below the log start or above the log end.
    /// </summary>
    public FetchDataInfo Read(long fetchOffset, int maxBytes, long maxOffset, bool minOneBatch = true)
    {
        LogEnd end = _end;
        LogSegment[] segments = _segments;
        long logEnd = end.Offset;
        long logStart = LogStartOffset;
        long hw = HighWatermark;
        if (fetchOffset < logStart || fetchOffset > logEnd)
        {
            throw new OffsetOutOfRangeException($"offset {fetchOffset} is outside [{logStart}, {logEnd}] of {TopicPartition}");
        }
        long upper = Math.Min(maxOffset, logEnd);
        if (fetchOffset >= upper || maxBytes < 0)
        {
            return new FetchDataInfo(fetchOffset, null, false, hw, logStart, logEnd);
        }
        int index = FloorSegmentIndex(segments, fetchOffset);
        for (int i = Math.Max(index, 0); i < segments.Length; i++)
        {
            LogSegment segment = segments[i];
            if (segment.BaseOffset >= upper)
            {
                break;
            }
            long maxPosition = segment == end.Segment ? end.Position : segment.Size;
            bool upperInThisSegment = i + 1 >= segments.Length || segments[i + 1].BaseOffset > upper;
            if (upperInThisSegment && upper < logEnd)
            {
                // Reading below the log end (high watermark / last stable offset): stop at the batch holding it.
                maxPosition = Math.Min(maxPosition, segment.FindBatchContaining(upper)?.Position ?? maxPosition);
            }
            FileRange? range = segment.Read(fetchOffset, maxBytes, maxPosition, minOneBatch, out bool tooLarge);
            if (range is FileRange r)
            {
                // A first batch larger than the limit (only without minOneBatch) returns nothing, as
                // upstream ReplicaManager does for an incomplete first entry.
                if (r.Length == 0 || tooLarge)
                {
                    return new FetchDataInfo(fetchOffset, null, tooLarge, hw, logStart, logEnd);
                }
                return new FetchDataInfo(fetchOffset, r, false, hw, logStart, logEnd);
            }
        }
        return new FetchDataInfo(fetchOffset, null, false, hw, logStart, logEnd);
    }

    private static int FloorSegmentIndex(LogSegment[] segments, long offset)
    {
        int lo = 0, hi = segments.Length - 1, found = -1;
        while (lo <= hi)
        {
            int mid = (lo + hi) / 2;
            if (segments[mid].BaseOffset <= offset)
            {
                found = mid;
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }
        return found;
    }

    /// <summary>
    /// ListOffsets: -2 earliest (log start), -1 latest (log end), -3 the batch holding the largest
    /// timestamp (KIP-734), otherwise the first offset whose timestamp is &gt;= <paramref name="timestamp"/>
    /// (null when none), searched record by record (compressed batches are decoded, bounded).
    /// </summary>
    public TimestampAndOffset? FetchOffsetByTimestamp(long timestamp)
    {
        // Under the lock: segments' max-timestamp caches are updated by appends.
        lock (_lock)
        {
            return FetchOffsetByTimestampLocked(timestamp);
        }
    }

    private TimestampAndOffset? FetchOffsetByTimestampLocked(long timestamp)
    {
        LogSegment[] segments = _segments;
        long logStart = LogStartOffset;
        if (timestamp == EarliestTimestamp)
        {
            return new TimestampAndOffset(-1, logStart, EpochCache.EpochForOffset(logStart));
        }
        if (timestamp == LatestTimestamp)
        {
            return new TimestampAndOffset(-1, LogEndOffset, EpochCache.LatestEpoch);
        }
        if (timestamp == MaxTimestamp)
        {
            LogSegment? best = null;
            foreach (LogSegment s in segments)
            {
                if (best is null || s.MaxTimestampSoFar > best.MaxTimestampSoFar)
                {
                    best = s;
                }
            }
            if (best is null || best.MaxTimestampSoFar < 0)
            {
                return null;
            }
            LogSegment.BatchInfo? batch = best.FindBatchContaining(best.OffsetOfMaxTimestampSoFar);
            if (batch is not LogSegment.BatchInfo b)
            {
                return null;
            }
            long offset = FindRecord(best, b, b.MaxTimestamp, logStart)?.Offset ?? b.LastOffset;
            return new TimestampAndOffset(b.MaxTimestamp, offset, b.PartitionLeaderEpoch);
        }
        if (timestamp < 0)
        {
            return null;
        }
        foreach (LogSegment segment in segments)
        {
            if (segment.MaxTimestampSoFar < timestamp || NextBase(segments, segment) <= logStart)
            {
                continue;
            }
            long startingOffset = Math.Max(logStart, segment.BaseOffset);
            LogSegment.BatchInfo? found = segment.FindBatchByTimestamp(timestamp, startingOffset);
            while (found is LogSegment.BatchInfo batch)
            {
                if (FindRecord(segment, batch, timestamp, logStart) is (long o, long recordTimestamp))
                {
                    return new TimestampAndOffset(recordTimestamp, o, batch.PartitionLeaderEpoch);
                }
                found = segment.FindBatchByTimestamp(timestamp, batch.LastOffset + 1);
            }
        }
        return null;
    }

    private long NextBase(LogSegment[] segments, LogSegment segment)
    {
        int i = Array.IndexOf(segments, segment);
        return i + 1 < segments.Length ? segments[i + 1].BaseOffset : LogEndOffset;
    }

    // The first record of the batch with timestamp >= target and offset >= minOffset, decoding
    // compressed batches (bounded). LogAppendTime batches: every record carries the batch time.
    private static (long Offset, long Timestamp)? FindRecord(LogSegment segment, LogSegment.BatchInfo batch, long timestamp, long minOffset)
    {
        byte[] bytes = segment.ReadBatch(batch.Position, batch.Size);
        var view = new RecordBatch(bytes);
        if (view.TimestampType == TimestampType.LogAppendTime)
        {
            return view.MaxTimestamp >= timestamp ? (Math.Max(view.BaseOffset, minOffset), view.MaxTimestamp) : null;
        }
        try
        {
            foreach (Record record in view.GetRecords())
            {
                if (record.Timestamp >= timestamp && record.Offset >= minOffset)
                {
                    return (record.Offset, record.Timestamp);
                }
            }
        }
        catch (KafkaProtocolException)
        {
            // Undecodable records (already CRC-checked, so only an unsupported codec corner): answer at batch level.
            return view.MaxTimestamp >= timestamp ? (Math.Max(view.BaseOffset, minOffset), view.MaxTimestamp) : null;
        }
        return null;
    }

    // ------------------------------------------------------------------ truncation

    /// <summary>
    /// Removes everything at and after <paramref name="targetOffset"/> (a follower truncating to the
    /// leader's epoch end offset). Returns false when the log already ends there.
    /// </summary>
    public bool TruncateTo(long targetOffset)
    {
        lock (_lock)
        {
            ThrowIfClosed();
            if (targetOffset < 0)
            {
                throw new ArgumentOutOfRangeException(nameof(targetOffset));
            }
            if (targetOffset >= LogEndOffset)
            {
                return false;
            }
            if (targetOffset < ActiveSegmentsFirstBase())
            {
                TruncateFullyAndStartAtLocked(targetOffset);
                return true;
            }
            var keep = new List<LogSegment>();
            foreach (LogSegment s in _segments)
            {
                if (s.BaseOffset > targetOffset)
                {
                    RetireSegment(s, immediately: false);
                }
                else
                {
                    keep.Add(s);
                }
            }
            _segments = keep.ToArray();
            LogSegment active = keep[^1];
            active.TruncateTo(targetOffset);
            active.MakeActive();
            _end = new LogEnd(targetOffset, active, active.Size);
            Interlocked.Exchange(ref _highWatermark, Math.Min(HighWatermark, targetOffset));
            Interlocked.Exchange(ref _recoveryPoint, Math.Min(RecoveryPoint, targetOffset));
            _truncations++;
            Interlocked.Exchange(ref _logStartOffset, Math.Min(LogStartOffset, targetOffset));
            EpochCache.TruncateFromEnd(targetOffset);
            RebuildTransactionState(new HashSet<LogSegment>());
            // The replay brings back producers expired meanwhile; upstream's truncateAndReload loads
            // its snapshot without the expired ones.
            if (_producerIdExpirationMs is long expirationMs)
            {
                ProducerState.ProducerIdExpirationMs = expirationMs;
                ProducerState.RemoveExpiredProducers(NowMs, _ongoingTxns.ContainsKey);
            }
            DeleteStaleProducerSnapshots();
            return true;
        }
    }

    private long ActiveSegmentsFirstBase() => _segments[0].BaseOffset;

    /// <summary>Deletes all data and restarts the log empty at <paramref name="newOffset"/> (follower far behind or ahead of the leader).</summary>
    public void TruncateFullyAndStartAt(long newOffset)
    {
        lock (_lock)
        {
            ThrowIfClosed();
            TruncateFullyAndStartAtLocked(newOffset);
        }
    }

    private void TruncateFullyAndStartAtLocked(long newOffset)
    {
        foreach (LogSegment s in _segments)
        {
            RetireSegment(s, immediately: false);
        }
        var segment = LogSegment.Open(Directory, newOffset, Config.SegmentIndexBytes, Config.IndexIntervalBytes, NowMs);
        _segments = [segment];
        _end = new LogEnd(newOffset, segment, 0);
        Interlocked.Exchange(ref _logStartOffset, newOffset);
        Interlocked.Exchange(ref _highWatermark, newOffset);
        Interlocked.Exchange(ref _recoveryPoint, newOffset);
        _truncations++;
        EpochCache.Clear();
        _ongoingTxns.Clear();
        ProducerState.Clear();
        UpdateFirstUnstableOffset();
        DeleteStaleProducerSnapshots();
    }

    // ------------------------------------------------------------------ retention

    /// <summary>
    /// Upstream deleteOldSegments: with cleanup.policy containing "delete", segments whose newest
    /// timestamp is older than retention.ms, then oldest segments while the log exceeds retention.bytes;
    /// always segments wholly below the log start offset. Only segments below the high watermark go, and
    /// the active segment only after a roll. Returns the number of segments deleted.
    /// </summary>
    public int DeleteOldSegments()
    {
        lock (_lock)
        {
            if (_closed)
            {
                return 0;
            }
            int deleted = 0;
            if (Config.Delete)
            {
                long now = NowMs;
                if (Config.RetentionMs >= 0)
                {
                    deleted += DeleteSegmentsLocked((s, _) => now - (s.MaxTimestampSoFar >= 0 ? s.MaxTimestampSoFar : s.LastModifiedMs) > Config.RetentionMs);
                }
                if (Config.RetentionBytes >= 0)
                {
                    long excess = Size - Config.RetentionBytes;
                    deleted += DeleteSegmentsLocked((s, _) =>
                    {
                        if (excess - s.Size >= 0)
                        {
                            excess -= s.Size;
                            return true;
                        }
                        return false;
                    });
                }
            }
            deleted += DeleteSegmentsLocked((s, next) => next is not null && next.BaseOffset <= LogStartOffset);
            return deleted;
        }
    }

    private int DeleteSegmentsLocked(Func<LogSegment, LogSegment?, bool> predicate)
    {
        LogSegment[] segments = _segments;
        int count = 0;
        for (int i = 0; i < segments.Length; i++)
        {
            LogSegment segment = segments[i];
            LogSegment? next = i + 1 < segments.Length ? segments[i + 1] : null;
            bool lastAndEmpty = next is null && segment.Size == 0;
            long upperBound = next?.BaseOffset ?? LogEndOffset;
            if (HighWatermark >= upperBound && !lastAndEmpty && predicate(segment, next))
            {
                count++;
            }
            else
            {
                break;
            }
        }
        if (count == 0)
        {
            return 0;
        }
        if (count == segments.Length)
        {
            // Every segment goes, the active one included: roll first so the log keeps an active segment.
            RollLocked(LogEndOffset);
            segments = _segments;
        }
        for (int i = 0; i < count; i++)
        {
            RetireSegment(segments[i], immediately: false);
        }
        _segments = segments[count..];
        DeleteStaleProducerSnapshots();
        long newStart = Math.Max(LogStartOffset, _segments[0].BaseOffset);
        if (newStart > LogStartOffset)
        {
            Interlocked.Exchange(ref _logStartOffset, newStart);
            EpochCache.TruncateFromStart(newStart);
        }
        return count;
    }

    /// <summary>
    /// Takes a segment out of service: its files are renamed "*.deleted" at once and removed after
    /// file.delete.delay.ms, so a Fetch already sending from it completes (upstream asyncDeleteSegment).
    /// </summary>
    private void RetireSegment(LogSegment segment, bool immediately)
    {
        try
        {
            segment.ChangeSuffix("", LogSegment.DeletedSuffix);
        }
        catch (IOException)
        {
            // Already gone; nothing to rename.
        }
        long delay = immediately ? 0 : Math.Max(0, Config.FileDeleteDelayMs);
        if (delay == 0)
        {
            segment.DeleteFiles();
        }
        else
        {
            _ = Task.Delay(TimeSpan.FromMilliseconds(Math.Min(delay, int.MaxValue))).ContinueWith(_ => segment.DeleteFiles(), TaskScheduler.Default);
        }
    }

    // ------------------------------------------------------------------ compaction support

    internal object SyncRoot => _lock;

    internal LogSegment[] SegmentsSnapshot => _segments;

    internal long NowMsInternal => NowMs;

    /// <summary>Replaces <paramref name="old"/> (consecutive segments) with <paramref name="cleaned"/> (under the lock; used by the cleaner).</summary>
    internal void ReplaceSegments(IReadOnlyList<LogSegment> old, LogSegment cleaned)
    {
        // Crash safety as upstream: cleaned files become ".swap" before the old segments go, and
        // loading completes a leftover swap.
        cleaned.ChangeSuffix(LogSegment.CleanedSuffix, LogSegment.SwapSuffix);
        var list = _segments.ToList();
        int at = list.IndexOf(old[0]);
        foreach (LogSegment s in old)
        {
            list.Remove(s);
        }
        foreach (LogSegment s in old)
        {
            RetireSegment(s, immediately: false);
        }
        cleaned.ChangeSuffix(LogSegment.SwapSuffix, "");
        list.Insert(at, cleaned);
        _segments = list.ToArray();
    }

    /// <summary>Takes inactive segments out of the log (under the lock; used by the cleaner).</summary>
    internal void RemoveSegments(IReadOnlyList<LogSegment> old)
    {
        var list = _segments.ToList();
        foreach (LogSegment s in old)
        {
            if (s == ActiveSegment)
            {
                throw new InvalidOperationException("the active segment cannot be removed");
            }
            list.Remove(s);
            RetireSegment(s, immediately: false);
        }
        _segments = list.ToArray();
    }

    private void TakeProducerSnapshot(long offset)
    {
        if (ProducerState.Producers.Count == 0 && !File.Exists(ProducerSnapshotFile.PathFor(Directory, offset)))
        {
            return;
        }
        ProducerSnapshotFile.Write(ProducerSnapshotFile.PathFor(Directory, offset), ProducerState.SnapshotEntries(_ongoingTxns));
    }

    // Snapshots describe a log prefix: those past the log end (after truncation) or below the first
    // segment (after retention) no longer match any log and go, as upstream truncateAndReload does.
    private void DeleteStaleProducerSnapshots()
    {
        long first = _segments.Length > 0 ? _segments[0].BaseOffset : 0;
        foreach (long offset in ProducerSnapshotFile.List(Directory))
        {
            if (offset > LogEndOffset || offset < first)
            {
                File.Delete(ProducerSnapshotFile.PathFor(Directory, offset));
            }
        }
    }

    // ------------------------------------------------------------------ lifecycle

    private void ThrowIfClosed()
    {
        if (_closed)
        {
            throw new ObjectDisposedException(TopicPartition.ToString());
        }
    }

    /// <summary>Flushes and closes (indexes trimmed to their entries, as upstream does on close).</summary>
    public void Close()
    {
        lock (_lock)
        {
            if (_closed)
            {
                return;
            }
            FlushLocked();
            TakeProducerSnapshot(LogEndOffset);
            _closed = true;
            foreach (LogSegment s in _segments)
            {
                s.Close();
            }
        }
    }

    /// <summary>Closes and removes the whole partition directory (topic deletion / partition reassignment away).</summary>
    public void Delete()
    {
        lock (_lock)
        {
            _closed = true;
            foreach (LogSegment s in _segments)
            {
                s.Dispose();
            }
            _segments = [];
        }
        System.IO.Directory.Delete(Directory, recursive: true);
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_closed)
            {
                return;
            }
            _closed = true;
            foreach (LogSegment s in _segments)
            {
                s.Dispose();
            }
        }
    }
}

/// <summary>The batch is larger than segment.bytes (Kafka error RECORD_LIST_TOO_LARGE, 18 / MESSAGE_TOO_LARGE, 10).</summary>
public sealed class RecordBatchTooLargeException(string message) : Exception(message);
