namespace Samsa.Kafka.Broker.Log;

/// <summary>A topic name and partition index.</summary>
public readonly record struct TopicPartition(string Topic, int Partition)
{
    public override string ToString() => $"{Topic}-{Partition}";
}

/// <summary>Where a validated append landed (upstream's LogAppendInfo, the parts Produce reports).</summary>
public readonly record struct LogAppendInfo(long FirstOffset, long LastOffset, long LogAppendTime, long LogStartOffset);

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
    /// are already stamped, starting at <see cref="LogEndOffset"/>.</summary>
    void AppendValidated(ReadOnlyMemory<byte> batches, long lastOffset, long maxTimestamp, long offsetOfMaxTimestamp, int leaderEpoch);

    /// <summary>Reads whole batches starting with the one containing <paramref name="offset"/>, stopping
    /// before <paramref name="maxOffsetExclusive"/> and within <paramref name="maxBytes"/> — except that with
    /// <paramref name="minOneBatch"/> the first batch is returned whole even if larger (KIP-74).</summary>
    LogReadInfo Read(long offset, int maxBytes, long maxOffsetExclusive, bool minOneBatch);

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
}
