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
    private readonly PartitionLog _log;

    public StoragePartitionLog(LogManager manager, TopicPartition tp, Guid topicId, BrokerLogConfig config)
    {
        _manager = manager;
        _log = manager.GetOrCreateLog(new StorageTopicPartition(tp.Topic, tp.Partition), topicId, Map(config));
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

    public void AppendValidated(ReadOnlyMemory<byte> batches, long lastOffset, long maxTimestamp, long offsetOfMaxTimestamp, int leaderEpoch)
    {
        // The validator already stamped offsets from the log end; AppendAsLeader stamps the same
        // offsets again under the log's own lock.
        var copy = batches.ToArray();
        _log.AppendAsLeader(copy, leaderEpoch);
        _log.MaybeIncrementHighWatermark(_log.LogEndOffset);
    }

    public LogReadInfo Read(long offset, int maxBytes, long maxOffsetExclusive, bool minOneBatch)
    {
        var info = _log.Read(offset, maxBytes, maxOffsetExclusive, minOneBatch);
        if (info.Records is not { } range || range.Length == 0) return new LogReadInfo(ReadOnlyMemory<byte>.Empty);
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

    public TimestampOffset? OffsetForTimestamp(long timestamp) =>
        _log.FetchOffsetByTimestamp(timestamp) is { } t ? new TimestampOffset(t.Timestamp, t.Offset, t.LeaderEpoch) : null;

    public TimestampOffset? MaxTimestamp() =>
        _log.LogEndOffset > _log.LogStartOffset && _log.FetchOffsetByTimestamp(PartitionLog.MaxTimestamp) is { } t
            ? new TimestampOffset(t.Timestamp, t.Offset, t.LeaderEpoch) : null;

    public void DeleteRecordsBefore(long offset) => _log.MaybeIncrementLogStartOffset(offset);

    public (int Epoch, long EndOffset) EndOffsetForEpoch(int epoch) => _log.EpochCache.EndOffsetFor(epoch, _log.LogEndOffset);

    public void Flush() => _log.Flush();

    public void Delete() => _manager.DeleteLog(new StorageTopicPartition(_log.TopicPartition.Topic, _log.TopicPartition.Partition));

    // The LogManager owns the open log and closes it at shutdown.
    public void Dispose() { }
}
