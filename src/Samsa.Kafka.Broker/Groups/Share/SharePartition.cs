using Samsa.Kafka.Protocol;

namespace Samsa.Kafka.Broker.Groups.Share;

/// <summary>Delivery state of one in-flight record (KIP-932; the numbers are upstream's
/// RecordState ids, which also appear in the ShareSnapshot / ShareUpdate records).</summary>
public enum RecordState : byte { Available = 0, Acquired = 1, Acknowledged = 2, Archived = 4 }

/// <summary>Acknowledge types on the wire (ShareFetch / ShareAcknowledge AcknowledgeTypes).</summary>
public enum AcknowledgeType : sbyte { Gap = 0, Accept = 1, Release = 2, Reject = 3, Renew = 4 }

/// <summary>One contiguous run of acquired offsets with one delivery count (ShareFetch AcquiredRecords).</summary>
public readonly record struct AcquiredRange(long FirstOffset, long LastOffset, short DeliveryCount);

/// <summary>A batch as read from the log: offsets [BaseOffset, LastOffset]; control batches
/// (transaction markers) are never handed to consumers.</summary>
public readonly record struct LogBatchSpan(long BaseOffset, long LastOffset, bool IsControl);

/// <summary>Persisted form of a run of in-flight records (upstream PersisterStateBatch).</summary>
public readonly record struct StateBatch(long FirstOffset, long LastOffset, RecordState State, short DeliveryCount);

/// <summary>The durable part of a share-partition (upstream ShareSnapshot: start offset, state epoch,
/// in-flight batches).</summary>
public sealed record SharePartitionSnapshot(long StartOffset, int StateEpoch, IReadOnlyList<StateBatch> Batches);

/// <summary>
/// The delivery state of one share-partition (group, topic, partition) on the partition leader,
/// following upstream's SharePartition (KIP-932):
/// - the share-partition start offset (SPSO): every offset below it is done (acknowledged,
///   archived, or never delivered because it was before the start);
/// - the in-flight records from the SPSO up to <see cref="EndOffset"/> (exclusive; the next offset
///   never handed out), each AVAILABLE, ACQUIRED by one member with a lock deadline,
///   ACKNOWLEDGED or ARCHIVED, with its delivery count;
/// - acquisition increments the delivery count and locks the record for
///   group.share.record.lock.duration.ms; a lock that expires, or a RELEASE, makes the record
///   AVAILABLE again unless its delivery count reached group.share.delivery.count.limit, in which
///   case it is ARCHIVED; ACCEPT makes it ACKNOWLEDGED, REJECT and GAP make it ARCHIVED, RENEW
///   restarts its lock (KIP-1222);
/// - new records are acquired only while fewer than group.share.partition.max.record.locks
///   offsets are in flight; redeliveries always may be.
/// Differs from upstream: in-flight state is kept per offset (upstream keeps per-batch entries and
/// splits them into per-offset state only when acknowledgements split a batch); the observable
/// states, counts and limits are the same.
/// Not thread-safe: the owner (SharePartitionManager) locks it.
/// </summary>
public sealed class SharePartition
{
    private sealed class InFlight
    {
        public RecordState State;
        public short DeliveryCount;
        public string? Owner;
        public long LockDeadline;
    }

    private readonly SortedDictionary<long, InFlight> _inFlight = new();
    private readonly ShareGroupSettings _settings;

    public SharePartition(string groupId, Guid topicId, int partition, ShareGroupSettings settings)
    {
        GroupId = groupId;
        TopicId = topicId;
        Partition = partition;
        _settings = settings;
    }

    public string GroupId { get; }
    public Guid TopicId { get; }
    public int Partition { get; }
    /// <summary>False until <see cref="Initialize"/> or <see cref="Restore"/> set the start offset.</summary>
    public bool Initialized { get; private set; }
    /// <summary>The share-partition start offset (SPSO).</summary>
    public long StartOffset { get; private set; }
    /// <summary>One past the last offset ever handed out (upstream's end offset + 1).</summary>
    public long EndOffset { get; private set; }
    /// <summary>Bumped when an admin resets the start offset (upstream's state epoch).</summary>
    public int StateEpoch { get; private set; }
    /// <summary>Incremented on every change; the persister compares it to know what to write.</summary>
    public long Version { get; private set; }

    public int InFlightCount => _inFlight.Count;

    /// <summary>In-flight offsets (all at or above the start offset) whose delivery is complete —
    /// ACKNOWLEDGED or ARCHIVED — (KIP-1226's DeliveryCompleteCount, written with the state).</summary>
    public int DeliveryCompleteCount => _inFlight.Values.Count(r => r.State is RecordState.Acknowledged or RecordState.Archived);

    /// <summary>Starts a share-partition that has no stored state at <paramref name="startOffset"/>
    /// (share.auto.offset.reset: the high watermark for latest, the log start for earliest).</summary>
    public void Initialize(long startOffset)
    {
        StartOffset = EndOffset = startOffset;
        Initialized = true;
        Version++;
    }

    /// <summary>Rebuilds the state from a snapshot (broker restart, leader change). Records that
    /// were ACQUIRED when it was written come back AVAILABLE at their count before that acquisition:
    /// their locks died with the old leader (upstream persists only AVAILABLE / ACKNOWLEDGED /
    /// ARCHIVED and the delivery count, and never an acquisition).</summary>
    public void Restore(SharePartitionSnapshot snapshot)
    {
        _inFlight.Clear();
        StartOffset = snapshot.StartOffset;
        EndOffset = snapshot.StartOffset;
        StateEpoch = snapshot.StateEpoch;
        foreach (var b in snapshot.Batches)
        {
            for (long o = Math.Max(b.FirstOffset, StartOffset); o <= b.LastOffset; o++)
            {
                var state = b.State == RecordState.Acquired ? RecordState.Available : b.State;
                if (state == RecordState.Available && b.DeliveryCount >= _settings.DeliveryCountLimit) state = RecordState.Archived;
                _inFlight[o] = new InFlight { State = state, DeliveryCount = b.DeliveryCount };
            }
            EndOffset = Math.Max(EndOffset, b.LastOffset + 1);
        }
        Initialized = true;
        AdvanceStart();
        Version++;
    }

    /// <summary>The state to persist: runs of equal (state, delivery count). An ACQUIRED record is
    /// written as it was before this acquisition — AVAILABLE with one delivery less — because
    /// upstream's SharePartition never writes an acquisition (only acknowledgements, releases and
    /// lock expiries): a leader that dies holding it gives the record back at its old count, and a
    /// release that did not reach the share coordinator before such a death cannot leave the
    /// acquisition's count behind (compat kafkats `share-state-restart` on the cluster target saw
    /// 6-9 delivered at 3 after a SIGKILL in that window).</summary>
    public SharePartitionSnapshot Snapshot()
    {
        var batches = new List<StateBatch>();
        foreach (var (offset, r) in _inFlight)
        {
            var (state, count) = r.State == RecordState.Acquired
                ? (RecordState.Available, (short)Math.Max(0, r.DeliveryCount - 1))
                : (r.State, r.DeliveryCount);
            if (batches.Count > 0)
            {
                var last = batches[^1];
                if (last.LastOffset + 1 == offset && last.State == state && last.DeliveryCount == count)
                {
                    batches[^1] = last with { LastOffset = offset };
                    continue;
                }
            }
            batches.Add(new StateBatch(offset, offset, state, count));
        }
        // Offsets handed out but no longer tracked (gaps) below EndOffset need no entry: a restored
        // partition treats untracked offsets below its end as done.
        if (EndOffset > StartOffset && (batches.Count == 0 || batches[^1].LastOffset < EndOffset - 1))
            batches.Add(new StateBatch(EndOffset - 1, EndOffset - 1, RecordState.Archived, 0));
        return new SharePartitionSnapshot(StartOffset, StateEpoch, batches);
    }

    /// <summary>Where the next log read for acquisition should start: the first AVAILABLE in-flight
    /// record, else the end offset (upstream's nextFetchOffset).</summary>
    public long NextFetchOffset()
    {
        foreach (var (offset, r) in _inFlight)
            if (r.State == RecordState.Available) return offset;
        return EndOffset;
    }

    /// <summary>True when a fetch could acquire something below <paramref name="highWatermark"/>.</summary>
    public bool CanAcquire(long highWatermark)
    {
        foreach (var r in _inFlight.Values)
            if (r.State == RecordState.Available) return true;
        return EndOffset < highWatermark && EndOffset - StartOffset < _settings.PartitionMaxRecordLocks;
    }

    /// <summary>
    /// Acquires for <paramref name="memberId"/> the AVAILABLE records in <paramref name="batches"/>
    /// (as read from the log from <see cref="NextFetchOffset"/>), new ones included, up to
    /// <paramref name="maxRecords"/>: whole batches in batch-optimized mode (the last batch may
    /// take it past the limit, as upstream), exactly the limit in record-limit mode.
    /// </summary>
    public List<AcquiredRange> Acquire(string memberId, IReadOnlyList<LogBatchSpan> batches, int maxRecords, bool recordLimitMode, long nowMs)
    {
        var acquired = new List<AcquiredRange>();
        int count = 0;
        long deadline = nowMs + _settings.RecordLockDurationMs;
        foreach (var batch in batches)
        {
            if (count >= maxRecords) break;
            for (long o = Math.Max(batch.BaseOffset, StartOffset); o <= batch.LastOffset; o++)
            {
                if (recordLimitMode && count >= maxRecords) break;
                if (_inFlight.TryGetValue(o, out var r))
                {
                    if (r.State != RecordState.Available) continue;
                }
                else if (o >= EndOffset)
                {
                    if (batch.IsControl)
                    {
                        // Transaction markers are never delivered: done as soon as they are reached.
                        _inFlight[o] = new InFlight { State = RecordState.Archived };
                        EndOffset = o + 1;
                        continue;
                    }
                    if (EndOffset - StartOffset >= _settings.PartitionMaxRecordLocks) goto done;
                    r = new InFlight();
                    _inFlight[o] = r;
                    EndOffset = o + 1;
                }
                else continue;   // below the end and untracked: a gap already settled
                r.State = RecordState.Acquired;
                r.DeliveryCount++;
                r.Owner = memberId;
                r.LockDeadline = deadline;
                count++;
                if (acquired.Count > 0 && acquired[^1].LastOffset + 1 == o && acquired[^1].DeliveryCount == r.DeliveryCount)
                    acquired[^1] = acquired[^1] with { LastOffset = o };
                else
                    acquired.Add(new AcquiredRange(o, o, r.DeliveryCount));
            }
        }
    done:
        AdvanceStart();
        if (acquired.Count > 0) Version++;
        return acquired;
    }

    /// <summary>
    /// Applies one acknowledgement batch of <paramref name="memberId"/>: one type for the whole
    /// range, or one per offset. Every offset must be ACQUIRED by that member (else
    /// INVALID_RECORD_STATE and nothing changes), as upstream validates a batch before applying it.
    /// </summary>
    public ErrorCode Acknowledge(string memberId, long firstOffset, long lastOffset, IReadOnlyList<sbyte> types, long nowMs)
    {
        if (lastOffset < firstOffset || firstOffset < 0 || types.Count == 0) return ErrorCode.InvalidRequest;
        long length = lastOffset - firstOffset + 1;
        if (types.Count != 1 && types.Count != length) return ErrorCode.InvalidRequest;
        foreach (var t in types) if (t < 0 || t > (sbyte)AcknowledgeType.Renew) return ErrorCode.InvalidRequest;
        AcknowledgeType TypeAt(long o) => (AcknowledgeType)types[types.Count == 1 ? 0 : (int)(o - firstOffset)];
        // Only tracked offsets are visited (a range is bounded by the request, not by its numbers):
        // every tracked offset in the range must be acquired by this member; an untracked one is
        // allowed only as a gap inside the in-flight window (a settled gap the client reports).
        var tracked = new List<(long Offset, InFlight Record)>();
        foreach (var (o, r) in _inFlight)
        {
            if (o < firstOffset) continue;
            if (o > lastOffset) break;
            if (r.State != RecordState.Acquired || r.Owner != memberId) return ErrorCode.InvalidRecordState;
            tracked.Add((o, r));
        }
        if (tracked.Count != length)
        {
            bool gapsOnly = types.Count == 1 ? TypeAt(firstOffset) == AcknowledgeType.Gap : true;
            if (!gapsOnly || firstOffset < StartOffset || lastOffset >= EndOffset) return ErrorCode.InvalidRecordState;
            if (types.Count != 1)
            {
                // Per-offset types (bounded by the request): every untracked offset must say gap.
                int next = 0;
                for (long o = firstOffset; o <= lastOffset; o++)
                {
                    if (next < tracked.Count && tracked[next].Offset == o) { next++; continue; }
                    if (TypeAt(o) != AcknowledgeType.Gap) return ErrorCode.InvalidRecordState;
                }
            }
        }
        foreach (var (o, r) in tracked)
        {
            switch (TypeAt(o))
            {
                case AcknowledgeType.Accept: Settle(r, RecordState.Acknowledged); break;
                case AcknowledgeType.Gap:
                case AcknowledgeType.Reject: Settle(r, RecordState.Archived); break;
                case AcknowledgeType.Release: ReleaseOne(r); break;
                case AcknowledgeType.Renew: r.LockDeadline = nowMs + _settings.RecordLockDurationMs; break;
            }
        }
        AdvanceStart();
        Version++;
        return ErrorCode.None;
    }

    /// <summary>Releases every lock whose deadline passed; true when something changed.</summary>
    public bool ReleaseExpired(long nowMs)
    {
        bool changed = false;
        foreach (var r in _inFlight.Values)
        {
            if (r.State == RecordState.Acquired && r.LockDeadline <= nowMs)
            {
                ReleaseOne(r);
                changed = true;
            }
        }
        if (changed) { AdvanceStart(); Version++; }
        return changed;
    }

    /// <summary>Releases what <paramref name="memberId"/> holds (its share session closed or it left
    /// the group). As upstream's releaseAcquiredRecords (DeliveryCountOps.DECREASE), such records
    /// count as never delivered: the delivery count goes back down and the delivery limit does not
    /// archive them.</summary>
    public bool ReleaseMember(string memberId)
    {
        bool changed = false;
        foreach (var r in _inFlight.Values)
        {
            if (r.State == RecordState.Acquired && r.Owner == memberId)
            {
                if (r.DeliveryCount > 0) r.DeliveryCount--;
                Settle(r, RecordState.Available);
                changed = true;
            }
        }
        if (changed) { AdvanceStart(); Version++; }
        return changed;
    }

    /// <summary>Records from the start offset up to <paramref name="highWatermark"/> that are not yet
    /// acknowledged or archived (KIP-1226's share-partition lag).</summary>
    public long Lag(long highWatermark)
    {
        long done = _inFlight.Count(kv => kv.Key < highWatermark && kv.Value.State is RecordState.Acknowledged or RecordState.Archived);
        return Math.Max(0, highWatermark - StartOffset - done);
    }

    /// <summary>The earliest lock deadline, or null when nothing is acquired.</summary>
    public long? EarliestDeadline()
    {
        long? min = null;
        foreach (var r in _inFlight.Values)
            if (r.State == RecordState.Acquired && (min is null || r.LockDeadline < min)) min = r.LockDeadline;
        return min;
    }

    /// <summary>Moves the start offset (AlterShareGroupOffsets, or the log start passing it after
    /// retention): offsets below it are forgotten; a reset bumps the state epoch.</summary>
    public void ResetStartOffset(long offset, bool bumpEpoch)
    {
        foreach (var o in _inFlight.Keys.Where(k => k < offset).ToList()) _inFlight.Remove(o);
        StartOffset = offset;
        if (EndOffset < offset) EndOffset = offset;
        if (bumpEpoch) StateEpoch++;
        AdvanceStart();
        Version++;
    }

    /// <summary>AlterShareGroupOffsets: starts the share-partition over at <paramref name="offset"/>,
    /// forgetting every in-flight record and delivery count (the group is empty, so nothing is
    /// acquired); the state epoch moves on as upstream's InitializeShareGroupState does.</summary>
    public void Reinitialize(long offset)
    {
        _inFlight.Clear();
        StartOffset = EndOffset = offset;
        Initialized = true;
        StateEpoch++;
        Version++;
    }

    /// <summary>State and delivery count of one offset (tests and diagnostics); null when untracked.</summary>
    public (RecordState State, short DeliveryCount, string? Owner)? StateOf(long offset) =>
        _inFlight.TryGetValue(offset, out var r) ? (r.State, r.DeliveryCount, r.State == RecordState.Acquired ? r.Owner : null) : null;

    private void ReleaseOne(InFlight r) =>
        Settle(r, r.DeliveryCount >= _settings.DeliveryCountLimit ? RecordState.Archived : RecordState.Available);

    private static void Settle(InFlight r, RecordState state)
    {
        r.State = state;
        r.Owner = null;
        r.LockDeadline = 0;
    }

    // The SPSO moves past every leading offset that is done (ACKNOWLEDGED / ARCHIVED) or untracked
    // below the end (a gap: compacted away, or a settled marker), as upstream's maybeUpdateCachedStateAndOffsets.
    private void AdvanceStart()
    {
        while (StartOffset < EndOffset)
        {
            if (_inFlight.TryGetValue(StartOffset, out var r))
            {
                if (r.State is not (RecordState.Acknowledged or RecordState.Archived)) break;
                _inFlight.Remove(StartOffset);
            }
            StartOffset++;
        }
    }
}
