using Samsa.Kafka.Protocol.Records;
using Samsa.Kafka.Storage;
using BrokerLogConfig = Samsa.Kafka.Broker.Config.LogConfig;
using StorageLogConfig = Samsa.Kafka.Storage.LogConfig;
using StorageTopicPartition = Samsa.Kafka.Storage.TopicPartition;

namespace Samsa.Kafka.Broker.Log;

/// <summary>
/// <see cref="IPartitionLog"/> over a Samsa.Kafka.Storage <see cref="PartitionLog"/> (segment files,
/// indexes, leader-epoch cache, checkpoints in upstream's formats). As the only replica, the leader
/// moves the high watermark to the log end after every append.
/// </summary>
public sealed class StoragePartitionLog : IPartitionLog
{
    private readonly LogManager _manager;
    private readonly StorageTopicPartition _tp;
    private PartitionLog _last;

    // AlterReplicaLogDirs replaces the partition's PartitionLog when it moves to another log
    // directory (LogManager.StartMove): the old one links to its successor, which is followed
    // here (not the manager's table, which after a delete and re-create holds another topic's log).
    private PartitionLog _log
    {
        get
        {
            var log = _last;
            if (log.MovedTo is null) return log;
            while (log.MovedTo is { } next) log = next;
            return _last = log;
        }
    }

    public StoragePartitionLog(LogManager manager, TopicPartition tp, Guid topicId, BrokerLogConfig config)
    {
        _manager = manager;
        _tp = new StorageTopicPartition(tp.Topic, tp.Partition);
        _last = manager.GetOrCreateLog(_tp, topicId, Map(config));
        _log.Config = Map(config);
        // A single replica is always in sync with itself: everything recovered is committed.
        _log.MaybeIncrementHighWatermark(_log.LogEndOffset);
    }

    /// <summary>The storage settings of a topic. Timestamps are stamped by the broker's validator
    /// before the append, so storage is told CreateTime and does not stamp again.</summary>
    public static StorageLogConfig Map(BrokerLogConfig c) => new()
    {
        SegmentBytes = c.SegmentBytes,
        SegmentMs = c.SegmentMs,
        SegmentJitterMs = (long)c.Values["segment.jitter.ms"],
        SegmentIndexBytes = c.SegmentIndexBytes,
        IndexIntervalBytes = c.IndexIntervalBytes,
        RetentionMs = c.RetentionMs,
        RetentionBytes = c.RetentionBytes,
        CleanupPolicy = string.Join(",", c.CleanupPolicy),
        DeleteRetentionMs = c.DeleteRetentionMs,
        MinCompactionLagMs = c.MinCompactionLagMs,
        MinCleanableDirtyRatio = (double)c.Values["min.cleanable.dirty.ratio"],
        FlushMessages = c.FlushMessages,
        FlushMs = c.FlushMs,
        FileDeleteDelayMs = (long)c.Values["file.delete.delay.ms"],
        MessageTimestampType = "CreateTime",
        MaxMessageBytes = c.MaxMessageBytes,
    };

    public PartitionLog Inner => _log;
    public long LogStartOffset => _log.LogStartOffset;
    public long LogEndOffset => _log.LogEndOffset;
    public long SizeInBytes => _log.Size;
    public string Directory => Path.GetDirectoryName(_log.Directory)!;

    public void UpdateConfig(BrokerLogConfig config) => _log.Config = Map(config);

    public (long FirstOffset, bool Duplicate) AppendValidated(ReadOnlyMemory<byte> batches, long lastOffset, long maxTimestamp, long offsetOfMaxTimestamp, int leaderEpoch,
        VerificationGuard? verificationGuard = null, short markerTransactionVersion = -1)
    {
        // The validator already stamped offsets from the log end; AppendAsLeader stamps the same
        // offsets again under the log's own lock and checks producer sequences.
        // The validator hands over bytes nobody reads again — a fresh array, or the produce
        // request's own records (ProduceValidator.ValidateInPlace) — so they are stamped in place.
        Span<byte> copy = System.Runtime.InteropServices.MemoryMarshal.AsMemory(batches).Span;
        Samsa.Kafka.Storage.LogAppendInfo info;
        try
        {
            // The log closed under the append because it was swapped for its moved copy: once more
            // on the new one (the closed log refuses before writing anything).
            for (int attempt = 0; ; attempt++)
            {
                var log = _log;
                try
                {
                    info = log.AppendAsLeader(copy, leaderEpoch, verificationGuard, markerTransactionVersion);
                    break;
                }
                catch (ObjectDisposedException) when (attempt < 3 && !ReferenceEquals(log, _log)) { }
            }
        }
        catch (ProducerStateException e)
        {
            throw Map(e);
        }
        // The high watermark is moved by the partition (ReplicaManager / Replication): at once
        // with a single replica, once the ISR has the records otherwise.
        return (info.FirstOffset, info.IsDuplicate);
    }

    public long LastStableOffset => _log.LastStableOffset;

    public IReadOnlyList<AbortedTransaction> AbortedTransactions(long fetchOffset, long upperBoundOffset) =>
        _log.CollectAbortedTransactions(fetchOffset, upperBoundOffset).Select(a => new AbortedTransaction(a.ProducerId, a.FirstOffset)).ToList();

    public bool HasOngoingTransaction(long producerId, short producerEpoch) => _log.HasOngoingTransaction(producerId, producerEpoch);

    public VerificationGuard? MaybeStartTransactionVerification(long producerId, int sequence, short producerEpoch, bool supportsEpochBump)
    {
        try
        {
            return _log.MaybeStartTransactionVerification(producerId, sequence, producerEpoch, supportsEpochBump);
        }
        catch (ProducerStateException e)
        {
            throw Map(e);
        }
    }

    private static ProducerFencedOrOutOfOrderException Map(ProducerStateException e) => new(e.Error switch
    {
        ProducerStateError.InvalidProducerEpoch => Samsa.Kafka.Protocol.ErrorCode.InvalidProducerEpoch,
        ProducerStateError.InvalidTxnState => Samsa.Kafka.Protocol.ErrorCode.InvalidTxnState,
        ProducerStateError.TransactionCoordinatorFenced => Samsa.Kafka.Protocol.ErrorCode.TransactionCoordinatorFenced,
        _ => Samsa.Kafka.Protocol.ErrorCode.OutOfOrderSequenceNumber,
    }, e.Message);

    public IReadOnlyList<ProducerInfo> Producers() =>
        _log.ActiveProducers()
            .Select(p => new ProducerInfo(p.Entry.ProducerId, p.Entry.Epoch, p.Entry.LastSequence, p.Entry.Timestamp,
                p.Entry.CoordinatorEpoch, p.CurrentTxnStartOffset))
            .ToList();

    public LogReadInfo Read(long offset, int maxBytes, long maxOffsetExclusive, bool minOneBatch)
    {
        if (ReadLeased(offset, maxBytes, maxOffsetExclusive, minOneBatch, out IDisposable? lease) is not { } range)
            return new LogReadInfo(ReadOnlyMemory<byte>.Empty);
        using (lease)
        {
            var buffer = new byte[range.Length];
            int read = 0;
            while (read < buffer.Length)
            {
                int n = RandomAccess.Read(range.File.SafeFileHandle, buffer.AsSpan(read), range.Position + read);
                if (n <= 0) break;
                read += n;
            }
            return new LogReadInfo(buffer.AsMemory(0, read));
        }
    }

    public LogReadInfo ReadFileRecords(long offset, int maxBytes, long maxOffsetExclusive, bool minOneBatch)
    {
        if (ReadLeased(offset, maxBytes, maxOffsetExclusive, minOneBatch, out IDisposable? lease) is not { } range)
            return new LogReadInfo(ReadOnlyMemory<byte>.Empty);
        return new LogReadInfo(new FileRecords(range.File, range.Position, range.Length, lease).Memory);
    }

    // The storage read walks a snapshot of the segment list without the log's lock (as upstream's
    // UnifiedLog.read), so retention, compaction or DeleteRecords may close a segment under it:
    // the header reads then fail with ObjectDisposedException, or the lease is refused. Reading
    // again sees the new segment list; a bounded number of tries keeps a pathological race from
    // spinning (it is reported as a storage error for that partition).
    private FileRange? ReadLeased(long offset, int maxBytes, long maxOffsetExclusive, bool minOneBatch, out IDisposable? lease)
    {
        lease = null;
        for (int attempt = 0; ; attempt++)
        {
            FetchDataInfo info;
            try
            {
                info = _log.Read(offset, maxBytes, maxOffsetExclusive, minOneBatch);
            }
            catch (Samsa.Kafka.Storage.OffsetOutOfRangeException)
            {
                // Retention or DeleteRecords moved the log start between the handler's range check
                // and the read: report it the same way.
                throw new LogOffsetOutOfRangeException(offset);
            }
            catch (ObjectDisposedException) when (attempt < MaxReadAttempts)
            {
                continue;
            }
            catch (ObjectDisposedException e)
            {
                throw new IOException($"segments of {_log.TopicPartition} kept closing during the read", e);
            }
            if (info.Records is not { } range || range.Length == 0) return null;
            lease = range.TryLease();
            if (lease is not null) return range;
            if (attempt >= MaxReadAttempts) throw new IOException($"segments of {_log.TopicPartition} kept closing during the read");
        }
    }

    private const int MaxReadAttempts = 3;

    public TimestampOffset? OffsetForTimestamp(long timestamp) =>
        _log.FetchOffsetByTimestamp(timestamp) is { } t ? new TimestampOffset(t.Timestamp, t.Offset, t.LeaderEpoch) : null;

    public TimestampOffset? MaxTimestamp() =>
        _log.LogEndOffset > _log.LogStartOffset && _log.FetchOffsetByTimestamp(PartitionLog.MaxTimestamp) is { } t
            ? new TimestampOffset(t.Timestamp, t.Offset, t.LeaderEpoch) : null;

    public void DeleteRecordsBefore(long offset)
    {
        try { _log.MaybeIncrementLogStartOffset(offset); }
        catch (LogStartOffsetOutOfRangeException) { throw new LogOffsetOutOfRangeException(offset); }
    }

    public (int Epoch, long EndOffset) EndOffsetForEpoch(int epoch) => _log.EpochCache.EndOffsetFor(epoch, _log.LogEndOffset);

    public long HighWatermark => _log.HighWatermark;
    public bool MaybeIncrementHighWatermark(long highWatermark) => _log.MaybeIncrementHighWatermark(highWatermark);
    public void UpdateHighWatermark(long highWatermark) => _log.UpdateHighWatermark(highWatermark);
    public void AppendAsFollower(ReadOnlyMemory<byte> batches)
    {
        for (int attempt = 0; ; attempt++)
        {
            var log = _log;
            try
            {
                log.AppendAsFollower(batches.Span);
                return;
            }
            catch (ObjectDisposedException) when (attempt < 3 && !ReferenceEquals(log, _log)) { }
        }
    }
    public void TruncateTo(long offset) => _log.TruncateTo(offset);
    public void TruncateFullyAndStartAt(long offset) => _log.TruncateFullyAndStartAt(offset);
    public int LatestEpoch => _log.EpochCache.LatestEpoch;

    public void Flush() => _log.Flush();

    public void Delete() => _manager.DeleteLog(new StorageTopicPartition(_log.TopicPartition.Topic, _log.TopicPartition.Partition));

    // The LogManager owns the open log and closes it at shutdown.
    public void Dispose() { }
}
