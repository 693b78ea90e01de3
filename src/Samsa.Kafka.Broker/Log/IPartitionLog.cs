namespace Samsa.Kafka.Broker.Log;

/// <summary>A topic name and partition index.</summary>
public readonly record struct TopicPartition(string Topic, int Partition)
{
    public override string ToString() => $"{Topic}-{Partition}";
}

/// <summary>Where a validated append landed (upstream's LogAppendInfo, the parts Produce reports).</summary>
public readonly record struct LogAppendInfo(long FirstOffset, long LastOffset, long LogAppendTime, long LogStartOffset);

/// <summary>An aborted transaction a read_committed Fetch reports: its producer and first offset.</summary>
public readonly record struct AbortedTransaction(long ProducerId, long FirstOffset);

/// <summary>One producer's state in a partition (DescribeProducers).</summary>
public readonly record struct ProducerInfo(long ProducerId, int ProducerEpoch, int LastSequence, long LastTimestamp,
    int CoordinatorEpoch, long CurrentTxnStartOffset);

/// <summary>Bytes read from a log for Fetch: whole batches, possibly empty.</summary>
public readonly record struct LogReadInfo(ReadOnlyMemory<byte> Records);

/// <summary>Offset found by timestamp (ListOffsets).</summary>
public readonly record struct TimestampOffset(long Timestamp, long Offset, int LeaderEpoch);

/// <summary>
/// The broker's view of one partition's log. The broker validates produced batches and stamps
/// their offsets (upstream's LogValidator runs in UnifiedLog.append before the segment write);
/// the log stores, indexes and serves them. Implemented over Samsa.Kafka.Storage and, for
/// tests, in memory.
/// </summary>
public interface IPartitionLog : IDisposable
{
    long LogStartOffset { get; }
    /// <summary>The next offset to be assigned (log end offset).</summary>
    long LogEndOffset { get; }
    long SizeInBytes { get; }
    /// <summary>The log directory this partition lives in.</summary>
    string Directory { get; }

    /// <summary>Appends v2 batches whose base offsets, leader epoch and (for LogAppendTime) timestamps
    /// are already stamped, starting at <see cref="LogEndOffset"/>. Returns the first offset of the
    /// data: for an idempotent producer's retry of a batch already in the log, the offset that batch
    /// got the first time (nothing is appended). Throws <see cref="ProducerFencedOrOutOfOrderException"/>
    /// when the producer's epoch or sequence numbers refuse the append (KIP-98). The batches are the
    /// validator's output, which nobody reads again: the log may stamp them in place.
    /// <paramref name="verificationGuard"/> (client produce with KIP-890 verification on): a
    /// transactional batch that does not continue its producer's open transaction needs the guard
    /// <see cref="MaybeStartTransactionVerification"/> gave out, else the exception says
    /// INVALID_TXN_STATE; null checks nothing of the kind.</summary>
    (long FirstOffset, bool Duplicate) AppendValidated(ReadOnlyMemory<byte> batches, long lastOffset, long maxTimestamp, long offsetOfMaxTimestamp, int leaderEpoch,
        Samsa.Kafka.Storage.VerificationGuard? verificationGuard = null, short markerTransactionVersion = -1);

    /// <summary>KIP-890 (upstream UnifiedLog.maybeStartTransactionVerification): the sentinel guard when
    /// the producer's transaction is open here under this epoch, otherwise the guard of a verification
    /// state for the producer that the append must present. Throws
    /// <see cref="ProducerFencedOrOutOfOrderException"/> (INVALID_PRODUCER_EPOCH) for an epoch older than
    /// the producer's. Logs that keep no producer state answer null: no guard, nothing to check.</summary>
    Samsa.Kafka.Storage.VerificationGuard? MaybeStartTransactionVerification(long producerId, int sequence, short producerEpoch, bool supportsEpochBump) => null;

    /// <summary>The last stable offset (KIP-98): the first offset of the oldest open transaction, else
    /// the high watermark. read_committed consumers read below it. Logs that keep no producer state
    /// (in-memory logs) track no open transactions, so theirs is the log end.</summary>
    long LastStableOffset => LogEndOffset;

    /// <summary>The aborted transactions overlapping [<paramref name="fetchOffset"/>, <paramref name="upperBoundOffset"/>)
    /// that a read_committed Fetch reports.</summary>
    IReadOnlyList<AbortedTransaction> AbortedTransactions(long fetchOffset, long upperBoundOffset) => [];

    /// <summary>The idempotent/transactional producers this partition knows (DescribeProducers).</summary>
    IReadOnlyList<ProducerInfo> Producers() => [];

    /// <summary>Whether the producer has an open transaction here under this epoch (KIP-890
    /// verification is skipped then). Logs that keep no producer state answer false, so every
    /// transactional batch they get is verified.</summary>
    bool HasOngoingTransaction(long producerId, short producerEpoch) => false;

    /// <summary>Reads whole batches starting with the one containing <paramref name="offset"/>, stopping
    /// before <paramref name="maxOffsetExclusive"/> and within <paramref name="maxBytes"/> — except that with
    /// <paramref name="minOneBatch"/> the first batch is returned whole even if larger (KIP-74).</summary>
    LogReadInfo Read(long offset, int maxBytes, long maxOffsetExclusive, bool minOneBatch);

    /// <summary>As <see cref="Read"/>, but the records may stay in the segment file: a
    /// <see cref="Samsa.Kafka.Protocol.Records.FileRecords"/> slice that the connection sends with
    /// zero copy. The caller disposes it (see FetchResponseFrames.Release) once the response is sent
    /// or dropped; until then the segment file stays open even if the segment is deleted. Logs
    /// without files return bytes, as <see cref="Read"/>.</summary>
    LogReadInfo ReadFileRecords(long offset, int maxBytes, long maxOffsetExclusive, bool minOneBatch) =>
        Read(offset, maxBytes, maxOffsetExclusive, minOneBatch);

    /// <summary>The first offset whose batch max timestamp is at or after <paramref name="timestamp"/>, or null.</summary>
    TimestampOffset? OffsetForTimestamp(long timestamp);

    /// <summary>The largest timestamp in the log and its offset (ListOffsets MAX_TIMESTAMP, KIP-734), or null when empty.</summary>
    TimestampOffset? MaxTimestamp();

    /// <summary>Moves the log start offset forward (DeleteRecords), dropping whole segments below it.</summary>
    void DeleteRecordsBefore(long offset);

    /// <summary>(epoch, end offset) for OffsetForLeaderEpoch: the end offset of the largest epoch
    /// ≤ <paramref name="epoch"/>, or (-1, -1) when unknown.</summary>
    (int Epoch, long EndOffset) EndOffsetForEpoch(int epoch);

    /// <summary>New topic settings (AlterConfigs) for segment rolling, retention, flushing.</summary>
    void UpdateConfig(Samsa.Kafka.Broker.Config.LogConfig config);

    /// <summary>Makes appended data durable (flush.messages / flush.ms / shutdown).</summary>
    void Flush();

    /// <summary>Closes and removes the log's files (DeleteTopics).</summary>
    void Delete();

    // ---- replication (Replication/): high watermark, follower appends, truncation ----

    /// <summary>The offset below which records are committed (replicated to the ISR); consumers read below it.</summary>
    long HighWatermark { get; }
    /// <summary>Raises the high watermark (leader), clamped to the log end; never lowers it. Returns whether it moved.</summary>
    bool MaybeIncrementHighWatermark(long highWatermark);
    /// <summary>Sets the high watermark, clamped to [log start, log end] (a follower takes the leader's).</summary>
    void UpdateHighWatermark(long highWatermark);
    /// <summary>Appends batches that already carry offsets and leader epochs (fetched from the leader).</summary>
    void AppendAsFollower(ReadOnlyMemory<byte> batches);
    /// <summary>Removes everything at and after <paramref name="offset"/>; the leader-epoch cache follows.</summary>
    void TruncateTo(long offset);
    /// <summary>Empties the log and restarts it at <paramref name="offset"/> (follower below the leader's log start).</summary>
    void TruncateFullyAndStartAt(long offset);
    /// <summary>The newest leader epoch in the log's epoch cache, or -1.</summary>
    int LatestEpoch { get; }
}

/// <summary>An idempotent/transactional producer's batch refused by the log's producer state.</summary>
public sealed class ProducerFencedOrOutOfOrderException(Samsa.Kafka.Protocol.ErrorCode error, string message) : Exception(message)
{
    public Samsa.Kafka.Protocol.ErrorCode Error { get; } = error;
}

/// <summary>An offset outside [log start, log end] (OFFSET_OUT_OF_RANGE).</summary>
public sealed class LogOffsetOutOfRangeException(long offset) : Exception($"offset {offset} is out of range");
