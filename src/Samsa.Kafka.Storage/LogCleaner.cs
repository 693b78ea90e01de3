using Samsa.Kafka.Protocol.Records;
using System.Buffers.Binary;
using Samsa.Kafka.Protocol.Compression;
using Samsa.Kafka.Protocol.Primitives;

namespace Samsa.Kafka.Storage;

/// <summary>What one cleaning pass did.</summary>
public readonly record struct CleanResult(long FirstDirtyOffset, long NextDirtyOffset, int SegmentsCleaned, long BytesBefore, long BytesAfter, long RecordsRemoved);

/// <summary>
/// Log compaction for cleanup.policy=compact / compact,delete (upstream LogCleaner.Cleaner): build a
/// map key → last offset over the dirty part of the log (from the cleaner checkpoint up to the active
/// segment), then rewrite every inactive segment keeping, per key, only the record at the mapped
/// offset (or later). Record bytes are copied unchanged — their offset and timestamp deltas are relative
/// to the batch header, which keeps its base offset and lastOffsetDelta (KIP-98 keeps lastOffsetDelta
/// so offsets stay contiguous after compaction).
/// Where this differs from upstream:
/// - tombstones (null values) are dropped once their timestamp is older than delete.retention.ms,
///   rather than by the KIP-534 delete horizon stamped into the batch on a first pass;
/// - control batches and transactional batches are kept whole and their keys are not put in the map
///   (so an aborted value never shadows a committed one);
/// - compressed batches are decoded (bounded), filtered and re-encoded with the producer's codec;
/// - a batch whose records are all removed is dropped (upstream keeps an empty batch for the last
///   batch of an idempotent producer).
/// </summary>
public static class LogCleaner
{
    /// <summary>Upper bound on distinct keys per pass (upstream bounds it by log.cleaner.dedupe.buffer.size).</summary>
    public const int MaxMapEntries = 4_000_000;

    /// <summary>Dirty ratio (upstream cleanableRatio): dirty bytes / all inactive bytes.</summary>
    public static double DirtyRatio(PartitionLog log, long firstDirtyOffset)
    {
        LogSegment[] segments = log.SegmentsSnapshot;
        long clean = 0, dirty = 0;
        for (int i = 0; i < segments.Length - 1; i++)
        {
            if (segments[i + 1].BaseOffset <= firstDirtyOffset)
            {
                clean += segments[i].Size;
            }
            else
            {
                dirty += segments[i].Size;
            }
        }
        return clean + dirty == 0 ? 0 : (double)dirty / (clean + dirty);
    }

    /// <summary>Cleans the log when it is compacted; returns null when there was nothing to clean.</summary>
    public static CleanResult? Clean(PartitionLog log, long firstDirtyOffset)
    {
        if (!log.Config.Compact)
        {
            return null;
        }
        lock (log.SyncRoot)
        {
            return CleanLocked(log, Math.Max(firstDirtyOffset, log.LogStartOffset));
        }
    }

    private static CleanResult? CleanLocked(PartitionLog log, long firstDirtyOffset)
    {
        LogSegment[] segments = log.SegmentsSnapshot;
        if (segments.Length < 2)
        {
            return null;
        }
        long now = log.NowMsInternal;
        LogConfig config = log.Config;

        // Cleanable: inactive segments below the high watermark whose data is older than min.compaction.lag.ms.
        int cleanableCount = 0;
        for (int i = 0; i < segments.Length - 1; i++)
        {
            // Upstream firstUncleanableOffset: nothing at or above the last stable offset (open
            // transactions, data not yet replicated) is cleaned.
            bool belowHighWatermark = segments[i + 1].BaseOffset <= log.LastStableOffset;
            bool oldEnough = config.MinCompactionLagMs <= 0 || segments[i].MaxTimestampSoFar <= now - config.MinCompactionLagMs;
            if (!belowHighWatermark || !oldEnough)
            {
                break;
            }
            cleanableCount++;
        }
        if (cleanableCount == 0)
        {
            return null;
        }
        long cleanableEnd = segments[cleanableCount].BaseOffset;
        if (firstDirtyOffset >= cleanableEnd)
        {
            return null;
        }

        // 1. Offset map over the dirty segments.
        var map = new Dictionary<byte[], long>(ByteArrayComparer.Instance);
        long mappedEnd = firstDirtyOffset;
        for (int i = 0; i < cleanableCount; i++)
        {
            LogSegment segment = segments[i];
            long segmentEnd = segments[i + 1].BaseOffset;
            if (segmentEnd <= firstDirtyOffset)
            {
                continue;
            }
            if (map.Count >= MaxMapEntries)
            {
                break;
            }
            foreach (LogSegment.BatchInfo batch in segment.Batches(0))
            {
                if (batch.LastOffset < firstDirtyOffset || !IsCompactable(batch))
                {
                    continue;
                }
                byte[] bytes = segment.ReadBatch(batch.Position, batch.Size);
                if (!TryRecords(bytes, out List<RecordCopy> records))
                {
                    continue;
                }
                foreach (RecordCopy record in records)
                {
                    if (record.Key is not null && record.Offset >= firstDirtyOffset)
                    {
                        map[record.Key] = record.Offset;
                    }
                }
            }
            mappedEnd = segmentEnd;
        }
        if (mappedEnd <= firstDirtyOffset)
        {
            return null;
        }

        // 2. Rewrite every segment up to the mapped end, in groups that fit one segment.
        long tombstoneHorizon = now - config.DeleteRetentionMs;
        long bytesBefore = 0, bytesAfter = 0, removed = 0;
        int cleanedSegments = 0;
        var toClean = segments.TakeWhile((s, i) => i < cleanableCount && segments[i + 1].BaseOffset <= mappedEnd).ToList();
        foreach (List<LogSegment> group in GroupBySize(toClean, segments, config))
        {
            LogSegment cleaned = LogSegment.Open(log.Directory, group[0].BaseOffset, config.SegmentIndexBytes, config.IndexIntervalBytes, now, LogSegment.CleanedSuffix);
            long removedBefore = removed;
            try
            {
                foreach (LogSegment segment in group)
                {
                    bytesBefore += segment.Size;
                    foreach (LogSegment.BatchInfo batch in segment.Batches(0))
                    {
                        byte[] bytes = segment.ReadBatch(batch.Position, batch.Size);
                        byte[]? kept = FilterBatch(bytes, batch, map, tombstoneHorizon, ref removed);
                        if (kept is null)
                        {
                            continue;
                        }
                        var header = new RecordBatch(kept);
                        cleaned.Append(kept, header.LastOffset, header.MaxTimestamp, header.LastOffset);
                    }
                }
                if (removed == removedBefore && group.Count == 1)
                {
                    // Nothing to drop and nothing to merge: keep the segment as it is.
                    cleaned.DeleteFiles();
                    bytesAfter += group[0].Size;
                    continue;
                }
                foreach (LogSegment segment in group)
                {
                    foreach (AbortedTxn txn in segment.TxnIndex.Entries)
                    {
                        cleaned.TxnIndex.Append(txn);
                    }
                }
                cleaned.OnBecomeInactive();
                cleaned.Flush();
                bytesAfter += cleaned.Size;
                if (cleaned.Size == 0 && cleaned.TxnIndex.Entries.Count == 0)
                {
                    // Everything in the group was superseded: drop the segments instead of swapping in an
                    // empty one (an empty swap file could not say which offsets it replaces). Reads skip gaps.
                    cleaned.DeleteFiles();
                    log.RemoveSegments(group);
                }
                else
                {
                    log.ReplaceSegments(group, cleaned);
                }
                cleanedSegments += group.Count;
            }
            catch
            {
                cleaned.DeleteFiles();
                throw;
            }
        }
        return new CleanResult(firstDirtyOffset, mappedEnd, cleanedSegments, bytesBefore, bytesAfter, removed);
    }

    private static bool IsCompactable(LogSegment.BatchInfo batch)
    {
        return batch.Magic == RecordBatch.CurrentMagic && (batch.Attributes & (RecordBatch.TransactionalFlagMask | RecordBatch.ControlFlagMask)) == 0;
    }

    private readonly record struct RecordCopy(long Offset, long Timestamp, byte[]? Key, bool IsTombstone, byte[] Raw);

    // Records of a batch with their raw bytes (decompressed when needed, bounded like any read).
    private static bool TryRecords(byte[] batch, out List<RecordCopy> records)
    {
        records = [];
        try
        {
            foreach (Record record in new RecordBatch(batch).GetRecords())
            {
                records.Add(new RecordCopy(record.Offset, record.Timestamp, record.IsKeyNull ? null : record.Key.ToArray(), record.IsValueNull, record.RawBytes.ToArray()));
            }
            return true;
        }
        catch (KafkaProtocolException)
        {
            records = [];
            return false;
        }
    }

    private static byte[]? FilterBatch(byte[] bytes, LogSegment.BatchInfo batch, Dictionary<byte[], long> map, long tombstoneHorizon, ref long removed)
    {
        if (!IsCompactable(batch) || !TryRecords(bytes, out List<RecordCopy> records))
        {
            return bytes;
        }
        var retained = new List<RecordCopy>(records.Count);
        foreach (RecordCopy record in records)
        {
            bool superseded = record.Key is not null && map.TryGetValue(record.Key, out long latest) && latest > record.Offset;
            bool expiredTombstone = record.IsTombstone && record.Timestamp < tombstoneHorizon;
            if (superseded || expiredTombstone)
            {
                removed++;
            }
            else
            {
                retained.Add(record);
            }
        }
        if (retained.Count == records.Count)
        {
            return bytes;
        }
        if (retained.Count == 0)
        {
            return null;
        }
        var original = new RecordBatch(bytes);
        byte[] recordsData = new byte[retained.Sum(r => r.Raw.Length)];
        int position = 0;
        long maxTimestamp = -1;
        foreach (RecordCopy record in retained)
        {
            record.Raw.CopyTo(recordsData, position);
            position += record.Raw.Length;
            maxTimestamp = Math.Max(maxTimestamp, record.Timestamp);
        }
        // The rewritten batch keeps the producer's codec.
        byte[] payload = original.Compression == CompressionType.None
            ? recordsData
            : CompressionCodecs.Compress(original.Compression, recordsData);
        byte[] result = new byte[RecordBatch.HeaderSize + payload.Length];
        bytes.AsSpan(0, RecordBatch.HeaderSize).CopyTo(result);
        payload.CopyTo(result, RecordBatch.HeaderSize);
        BinaryPrimitives.WriteInt32BigEndian(result.AsSpan(RecordBatch.BatchLengthOffset), result.Length - RecordBatch.LogOverhead);
        if (original.TimestampType == TimestampType.CreateTime)
        {
            BinaryPrimitives.WriteInt64BigEndian(result.AsSpan(RecordBatch.MaxTimestampOffset), maxTimestamp);
        }
        BinaryPrimitives.WriteInt32BigEndian(result.AsSpan(RecordBatch.RecordsCountOffset), retained.Count);
        RecordBatch.WriteCrc(result);
        return result;
    }

    // Upstream groupSegmentsBySize: consecutive segments whose sizes sum to at most segment.bytes and
    // whose offsets fit one segment's int32 relative offsets.
    private static IEnumerable<List<LogSegment>> GroupBySize(List<LogSegment> segments, LogSegment[] all, LogConfig config)
    {
        var group = new List<LogSegment>();
        long size = 0;
        foreach (LogSegment segment in segments)
        {
            int index = Array.IndexOf(all, segment);
            long segmentEnd = all[index + 1].BaseOffset;
            bool fits = group.Count == 0 || (size + segment.Size <= config.SegmentBytes && segmentEnd - 1 - group[0].BaseOffset <= int.MaxValue);
            if (!fits)
            {
                yield return group;
                group = new List<LogSegment>();
                size = 0;
            }
            group.Add(segment);
            size += segment.Size;
        }
        if (group.Count > 0)
        {
            yield return group;
        }
    }

    private sealed class ByteArrayComparer : IEqualityComparer<byte[]>
    {
        public static readonly ByteArrayComparer Instance = new();
        public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);
        public int GetHashCode(byte[] obj)
        {
            var hash = new HashCode();
            hash.AddBytes(obj);
            return hash.ToHashCode();
        }
    }
}
