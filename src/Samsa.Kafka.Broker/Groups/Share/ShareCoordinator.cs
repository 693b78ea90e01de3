using Samsa.Kafka.Broker.Coordination;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Primitives;

namespace Samsa.Kafka.Broker.Groups.Share;

/// <summary>One share-partition as the share coordinator keys it (upstream SharePartitionKey).</summary>
public readonly record struct SharePartitionKey(string GroupId, Guid TopicId, int Partition)
{
    /// <summary>Upstream's coordinator key "groupId:topicId:partition" (topic id in Kafka's base64
    /// text form): FindCoordinator key type 2 and the hash that places it in __share_group_state.</summary>
    public string CoordinatorKey => $"{GroupId}:{Cluster.KafkaUuid.ToBase64(TopicId)}:{Partition}";
}

/// <summary>A decoded __share_group_state record: a snapshot or an update of one share-partition;
/// a null value is a tombstone (DeleteShareGroupState).</summary>
public abstract record ShareLogEntry(SharePartitionKey Key)
{
    public sealed record Snapshot(SharePartitionKey Key, ShareSnapshotValue? Value) : ShareLogEntry(Key);
    public sealed record Update(SharePartitionKey Key, ShareUpdateValue? Value) : ShareLogEntry(Key);
}

/// <summary>The share coordinator's view of one share-partition (upstream ShareGroupOffset).</summary>
public sealed class ShareStateEntry
{
    public int SnapshotEpoch;
    public int StateEpoch;
    public int LeaderEpoch;
    public long StartOffset;
    public int DeliveryCompleteCount = -1;
    public long CreateTimestamp;
    public long WriteTimestamp;
    public List<StateBatch> Batches = [];
    /// <summary>Update records written since the last snapshot (a snapshot follows after
    /// share.coordinator.snapshot.update.records.per.snapshot of them).</summary>
    public int UpdatesSinceSnapshot;

    public ShareStateEntry Clone() => new()
    {
        SnapshotEpoch = SnapshotEpoch, StateEpoch = StateEpoch, LeaderEpoch = LeaderEpoch, StartOffset = StartOffset,
        DeliveryCompleteCount = DeliveryCompleteCount, CreateTimestamp = CreateTimestamp, WriteTimestamp = WriteTimestamp,
        Batches = [.. Batches], UpdatesSinceSnapshot = UpdatesSinceSnapshot,
    };
}

/// <summary>
/// The record formats of __share_group_state, byte for byte upstream's (share-coordinator module,
/// Kafka 4.2): key = int16 record type (0 ShareSnapshot, 1 ShareUpdate) + GroupId / TopicId /
/// Partition; value = int16 value version 0 + the flexible ShareSnapshotValue / ShareUpdateValue.
/// </summary>
public static class ShareRecords
{
    public const short SnapshotType = 0, UpdateType = 1;

    public static CoordinatorRecord Snapshot(SharePartitionKey key, ShareStateEntry s) => new(
        GroupRecords.Encode(new ShareSnapshotKey { GroupId = key.GroupId, TopicId = key.TopicId, Partition = key.Partition }, SnapshotType),
        GroupRecords.Encode(new ShareSnapshotValue
        {
            SnapshotEpoch = s.SnapshotEpoch, StateEpoch = s.StateEpoch, LeaderEpoch = s.LeaderEpoch, StartOffset = s.StartOffset,
            DeliveryCompleteCount = s.DeliveryCompleteCount, CreateTimestamp = s.CreateTimestamp, WriteTimestamp = s.WriteTimestamp,
            StateBatches = s.Batches.Select(b => new ShareSnapshotValue.SnapshotStateBatch
            {
                FirstOffset = b.FirstOffset, LastOffset = b.LastOffset, DeliveryState = (sbyte)b.State, DeliveryCount = b.DeliveryCount,
            }).ToList(),
        }, 0));

    public static CoordinatorRecord Update(SharePartitionKey key, int snapshotEpoch, int leaderEpoch, long startOffset,
        int deliveryCompleteCount, IReadOnlyList<StateBatch> batches) => new(
        GroupRecords.Encode(new ShareUpdateKey { GroupId = key.GroupId, TopicId = key.TopicId, Partition = key.Partition }, UpdateType),
        GroupRecords.Encode(new ShareUpdateValue
        {
            SnapshotEpoch = snapshotEpoch, LeaderEpoch = leaderEpoch, StartOffset = startOffset, DeliveryCompleteCount = deliveryCompleteCount,
            StateBatches = batches.Select(b => new ShareUpdateValue.UpdateStateBatch
            {
                FirstOffset = b.FirstOffset, LastOffset = b.LastOffset, DeliveryState = (sbyte)b.State, DeliveryCount = b.DeliveryCount,
            }).ToList(),
        }, 0));

    /// <summary>Tombstones of both record types of a share-partition (upstream deletes both keys).</summary>
    public static IReadOnlyList<CoordinatorRecord> Tombstones(SharePartitionKey key) =>
    [
        new(GroupRecords.Encode(new ShareSnapshotKey { GroupId = key.GroupId, TopicId = key.TopicId, Partition = key.Partition }, SnapshotType), null),
        new(GroupRecords.Encode(new ShareUpdateKey { GroupId = key.GroupId, TopicId = key.TopicId, Partition = key.Partition }, UpdateType), null),
    ];

    /// <summary>Decodes one record; null for a record type this coordinator does not know (skipped, as
    /// upstream's loader skips unknown coordinator record types).</summary>
    public static ShareLogEntry? Decode(byte[] key, byte[]? value)
    {
        if (key.Length < 2) throw new KafkaProtocolException(ProtocolErrorKind.Truncated, "share state record key shorter than its type");
        short type = System.Buffers.Binary.BinaryPrimitives.ReadInt16BigEndian(key);
        var reader = new KafkaReader(key.AsMemory(2));
        switch (type)
        {
            case SnapshotType:
            {
                var k = ShareSnapshotKey.Read(ref reader, 0);
                ShareSnapshotValue? v = null;
                if (value is not null)
                {
                    var (ver, body) = GroupRecords.Version(value, ShareSnapshotValue.HighestSupportedVersion);
                    var r = new KafkaReader(body);
                    v = ShareSnapshotValue.Read(ref r, ver);
                }
                return new ShareLogEntry.Snapshot(new SharePartitionKey(k.GroupId, k.TopicId, k.Partition), v);
            }
            case UpdateType:
            {
                var k = ShareUpdateKey.Read(ref reader, 1);
                ShareUpdateValue? v = null;
                if (value is not null)
                {
                    var (ver, body) = GroupRecords.Version(value, ShareUpdateValue.HighestSupportedVersion);
                    var r = new KafkaReader(body);
                    v = ShareUpdateValue.Read(ref r, ver);
                }
                return new ShareLogEntry.Update(new SharePartitionKey(k.GroupId, k.TopicId, k.Partition), v);
            }
            default:
                return null;
        }
    }

    /// <summary>
    /// Lays <paramref name="changed"/> over <paramref name="current"/> (a changed run replaces what it
    /// overlaps), drops what lies below <paramref name="startOffset"/> and joins neighbouring runs of
    /// equal state and count — what upstream's share coordinator does with the batches of a
    /// WriteShareGroupState or a ShareUpdate record.
    /// </summary>
    public static List<StateBatch> Combine(IReadOnlyList<StateBatch> current, IReadOnlyList<StateBatch> changed, long startOffset)
    {
        var result = new List<StateBatch>(current);
        foreach (var n in changed)
        {
            if (n.LastOffset < n.FirstOffset) continue;
            var next = new List<StateBatch>(result.Count + 2);
            foreach (var b in result)
            {
                if (b.LastOffset < n.FirstOffset || b.FirstOffset > n.LastOffset) { next.Add(b); continue; }
                if (b.FirstOffset < n.FirstOffset) next.Add(b with { LastOffset = n.FirstOffset - 1 });
                if (b.LastOffset > n.LastOffset) next.Add(b with { FirstOffset = n.LastOffset + 1 });
            }
            next.Add(n);
            result = next;
        }
        result.Sort((a, b) => a.FirstOffset.CompareTo(b.FirstOffset));
        var merged = new List<StateBatch>(result.Count);
        foreach (var b0 in result)
        {
            var b = b0;
            if (b.LastOffset < startOffset) continue;
            if (b.FirstOffset < startOffset) b = b with { FirstOffset = startOffset };
            if (merged.Count > 0)
            {
                var last = merged[^1];
                if (last.LastOffset + 1 == b.FirstOffset && last.State == b.State && last.DeliveryCount == b.DeliveryCount)
                {
                    merged[^1] = last with { LastOffset = b.LastOffset };
                    continue;
                }
            }
            merged.Add(b);
        }
        return merged;
    }
}

/// <summary>
/// The share coordinator (KIP-932; upstream ShareCoordinatorService / ShareCoordinatorShard): keeps
/// the durable state of share-partitions — start offset, state epoch, leader epoch and the
/// in-flight runs with their delivery state and count — for the share-partitions whose
/// __share_group_state partition (abs(hash("group:topicId:partition")) % partitions) this broker
/// leads. Every change is a record appended to that partition: a ShareUpdate with the runs combined
/// since the snapshot (so the last update of a key, which compaction keeps, is enough), or, for a
/// share-partition's first write, an initialization, or every
/// share.coordinator.snapshot.update.records.per.snapshot updates, a ShareSnapshot with the whole
/// state. A new leader of a state partition replays it (each snapshot replaces, each later update of
/// the same snapshot epoch is laid over it) before it answers; meanwhile COORDINATOR_LOAD_IN_PROGRESS.
/// </summary>
public sealed class ShareCoordinator : ICoordinatorShards<ShareLogEntry>
{
    private readonly object _gate = new();
    private readonly CoordinatorShardTable _shards = new(0);
    private readonly Dictionary<SharePartitionKey, ShareStateEntry> _state = new();
    private readonly Func<int, IReadOnlyList<CoordinatorRecord>, ErrorCode> _append;
    private readonly Func<long> _clock;
    private readonly Action<string>? _log;

    /// <param name="append">Appends records to a partition of __share_group_state (the leader's
    /// append; an error when this broker no longer leads it).</param>
    public ShareCoordinator(Func<int, IReadOnlyList<CoordinatorRecord>, ErrorCode> append, int updatesPerSnapshot = 500,
        Func<long>? clock = null, Action<string>? log = null)
    {
        _append = append;
        UpdatesPerSnapshot = Math.Max(0, updatesPerSnapshot);
        _clock = clock ?? (() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        _log = log;
    }

    /// <summary>share.coordinator.snapshot.update.records.per.snapshot (upstream default 500).</summary>
    public int UpdatesPerSnapshot { get; }

    public int PartitionCount { get { lock (_gate) return _shards.Count; } }

    /// <summary>The __share_group_state partition of a share-partition (upstream
    /// Utils.abs(coordinatorKey.hashCode()) % partitions, Java string hash).</summary>
    public static int PartitionFor(SharePartitionKey key, int partitions) => GroupCoordinator.PartitionFor(key.CoordinatorKey, partitions);

    // ------------------------------------------------------------------ ownership (runtime calls)

    public void SetPartitionCount(int partitions) { lock (_gate) _shards.Resize(partitions); }

    public int? BeginLoading(int partition, int coordinatorEpoch) { lock (_gate) return _shards.BeginLoading(partition, coordinatorEpoch); }

    public void Unload(int partition)
    {
        lock (_gate)
        {
            if (!_shards.Unload(partition)) return;
            foreach (var k in _state.Keys.Where(k => PartitionFor(k, _shards.Count) == partition).ToList()) _state.Remove(k);
        }
    }

    public void LoadPartition(int partition, IEnumerable<ShareLogEntry> entries, int generation)
    {
        lock (_gate)
        {
            if (!_shards.IsCurrentLoad(partition, generation)) return;
            foreach (var k in _state.Keys.Where(k => PartitionFor(k, _shards.Count) == partition).ToList()) _state.Remove(k);
            int n = 0;
            foreach (var e in entries) { Replay(e); n++; }
            _shards.MarkOwned(partition);
        }
    }

    /// <summary>Applies one record to the state (load, and tests).</summary>
    public void Replay(ShareLogEntry entry)
    {
        lock (_gate)
        {
            switch (entry)
            {
                case ShareLogEntry.Snapshot { Value: null } s: _state.Remove(s.Key); break;
                case ShareLogEntry.Update { Value: null }: break;   // its snapshot's tombstone removes the key
                case ShareLogEntry.Snapshot { Value: { } v } s:
                    _state[s.Key] = new ShareStateEntry
                    {
                        SnapshotEpoch = v.SnapshotEpoch, StateEpoch = v.StateEpoch, LeaderEpoch = v.LeaderEpoch, StartOffset = v.StartOffset,
                        DeliveryCompleteCount = v.DeliveryCompleteCount, CreateTimestamp = v.CreateTimestamp, WriteTimestamp = v.WriteTimestamp,
                        Batches = v.StateBatches.Select(b => new StateBatch(b.FirstOffset, b.LastOffset, (RecordState)b.DeliveryState, b.DeliveryCount)).ToList(),
                    };
                    break;
                case ShareLogEntry.Update { Value: { } v } u:
                    // An update belongs to the snapshot of its epoch; one of another epoch (written
                    // before a later snapshot that already holds it) is skipped, as upstream's replay.
                    if (!_state.TryGetValue(u.Key, out var cur) || cur.SnapshotEpoch != v.SnapshotEpoch) break;
                    ApplyUpdate(cur, v.LeaderEpoch, v.StartOffset, v.DeliveryCompleteCount,
                        v.StateBatches.Select(b => new StateBatch(b.FirstOffset, b.LastOffset, (RecordState)b.DeliveryState, b.DeliveryCount)).ToList());
                    cur.UpdatesSinceSnapshot++;
                    break;
            }
        }
    }

    private static void ApplyUpdate(ShareStateEntry s, int leaderEpoch, long startOffset, int deliveryCompleteCount, IReadOnlyList<StateBatch> batches)
    {
        if (leaderEpoch > s.LeaderEpoch) s.LeaderEpoch = leaderEpoch;
        if (startOffset >= 0) s.StartOffset = startOffset;
        if (deliveryCompleteCount >= 0) s.DeliveryCompleteCount = deliveryCompleteCount;
        s.Batches = ShareRecords.Combine(s.Batches, batches, s.StartOffset);
    }

    // ------------------------------------------------------------------ the five operations

    /// <summary>NONE when this broker serves the key's state partition, else the error upstream
    /// answers: NOT_COORDINATOR, or COORDINATOR_LOAD_IN_PROGRESS while it is being replayed.</summary>
    public ErrorCode Status(SharePartitionKey key)
    {
        lock (_gate)
        {
            if (_shards.Count == 0) return ErrorCode.CoordinatorNotAvailable;
            return _shards[PartitionFor(key, _shards.Count)] switch
            {
                ShardStatus.Owned => ErrorCode.None,
                ShardStatus.Loading => ErrorCode.CoordinatorLoadInProgress,
                _ => ErrorCode.NotCoordinator,
            };
        }
    }

    /// <summary>The state of a share-partition for its leader (ReadShareGroupState). A reader with a
    /// newer leader epoch is recorded (an update record), an older one is FENCED_LEADER_EPOCH, as
    /// upstream's readStateAndMaybeUpdateLeaderEpoch. Null state: never initialized.</summary>
    public (ErrorCode Error, ShareStateEntry? State) Read(SharePartitionKey key, int leaderEpoch)
    {
        lock (_gate)
        {
            var status = Status(key);
            if (status != ErrorCode.None) return (status, null);
            if (!_state.TryGetValue(key, out var s)) return (ErrorCode.None, null);
            if (leaderEpoch >= 0 && leaderEpoch < s.LeaderEpoch) return (ErrorCode.FencedLeaderEpoch, null);
            if (leaderEpoch > s.LeaderEpoch)
            {
                var error = _append(PartitionFor(key, _shards.Count), [ShareRecords.Update(key, s.SnapshotEpoch, leaderEpoch, s.StartOffset, s.DeliveryCompleteCount, s.Batches)]);
                if (error != ErrorCode.None) return (Translate(error), null);
                s.LeaderEpoch = leaderEpoch;
                s.UpdatesSinceSnapshot++;
            }
            return (ErrorCode.None, s.Clone());
        }
    }

    /// <summary>Start offset, state epoch, leader epoch and delivery-complete count without the runs
    /// (ReadShareGroupStateSummary); null state: never initialized.</summary>
    public (ErrorCode Error, ShareStateEntry? State) Summary(SharePartitionKey key)
    {
        lock (_gate)
        {
            var status = Status(key);
            if (status != ErrorCode.None) return (status, null);
            return (ErrorCode.None, _state.TryGetValue(key, out var s) ? s.Clone() : null);
        }
    }

    /// <summary>WriteShareGroupState: a writer with an older state epoch is FENCED_STATE_EPOCH, with an
    /// older leader epoch FENCED_LEADER_EPOCH; a first write or the Nth update writes a snapshot of the
    /// combined state, any other an update record; the answer follows the append.</summary>
    public ErrorCode Write(SharePartitionKey key, int stateEpoch, int leaderEpoch, long startOffset, int deliveryCompleteCount,
        IReadOnlyList<StateBatch> batches)
    {
        lock (_gate)
        {
            var status = Status(key);
            if (status != ErrorCode.None) return status;
            int partition = PartitionFor(key, _shards.Count);
            long now = _clock();
            if (!_state.TryGetValue(key, out var cur))
            {
                var created = new ShareStateEntry
                {
                    SnapshotEpoch = 0, StateEpoch = stateEpoch, LeaderEpoch = leaderEpoch, StartOffset = Math.Max(startOffset, 0),
                    DeliveryCompleteCount = deliveryCompleteCount, CreateTimestamp = now, WriteTimestamp = now,
                };
                created.Batches = ShareRecords.Combine([], batches, created.StartOffset);
                var e = _append(partition, [ShareRecords.Snapshot(key, created)]);
                if (e != ErrorCode.None) return Translate(e);
                _state[key] = created;
                return ErrorCode.None;
            }
            if (stateEpoch < cur.StateEpoch) return ErrorCode.FencedStateEpoch;
            if (leaderEpoch >= 0 && leaderEpoch < cur.LeaderEpoch) return ErrorCode.FencedLeaderEpoch;
            var next = cur.Clone();
            ApplyUpdate(next, leaderEpoch, startOffset, deliveryCompleteCount, batches);
            next.StateEpoch = Math.Max(next.StateEpoch, stateEpoch);
            CoordinatorRecord record;
            if (next.UpdatesSinceSnapshot + 1 >= UpdatesPerSnapshot || stateEpoch != cur.StateEpoch)
            {
                next.SnapshotEpoch = cur.SnapshotEpoch + 1;
                next.WriteTimestamp = now;
                next.UpdatesSinceSnapshot = 0;
                record = ShareRecords.Snapshot(key, next);
            }
            else
            {
                next.UpdatesSinceSnapshot = cur.UpdatesSinceSnapshot + 1;
                // The update carries the combined runs, not only the changed ones: compaction keeps
                // just the last update of a share-partition, which must then hold every change made
                // since its snapshot (upstream's update records carry merged batches likewise).
                record = ShareRecords.Update(key, cur.SnapshotEpoch, next.LeaderEpoch, next.StartOffset, next.DeliveryCompleteCount, next.Batches);
            }
            var error = _append(partition, [record]);
            if (error != ErrorCode.None) return Translate(error);
            _state[key] = next;
            return ErrorCode.None;
        }
    }

    /// <summary>InitializeShareGroupState: the share-partition starts over at
    /// <paramref name="startOffset"/> with no in-flight runs and <paramref name="stateEpoch"/>,
    /// written as a snapshot; an older state epoch than the stored one is FENCED_STATE_EPOCH.</summary>
    public ErrorCode Initialize(SharePartitionKey key, int stateEpoch, long startOffset)
    {
        lock (_gate)
        {
            var status = Status(key);
            if (status != ErrorCode.None) return status;
            if (startOffset < 0) return ErrorCode.InvalidRequest;
            long now = _clock();
            _state.TryGetValue(key, out var cur);
            if (cur is not null && stateEpoch < cur.StateEpoch) return ErrorCode.FencedStateEpoch;
            var s = new ShareStateEntry
            {
                SnapshotEpoch = cur is null ? 0 : cur.SnapshotEpoch + 1, StateEpoch = stateEpoch, LeaderEpoch = cur?.LeaderEpoch ?? -1,
                StartOffset = startOffset, CreateTimestamp = now, WriteTimestamp = now, DeliveryCompleteCount = 0,
            };
            var error = _append(PartitionFor(key, _shards.Count), [ShareRecords.Snapshot(key, s)]);
            if (error != ErrorCode.None) return Translate(error);
            _state[key] = s;
            return ErrorCode.None;
        }
    }

    /// <summary>DeleteShareGroupState: tombstones for the share-partition's records; deleting what is
    /// not there succeeds.</summary>
    public ErrorCode Delete(SharePartitionKey key)
    {
        lock (_gate)
        {
            var status = Status(key);
            if (status != ErrorCode.None) return status;
            if (!_state.ContainsKey(key)) return ErrorCode.None;
            var error = _append(PartitionFor(key, _shards.Count), ShareRecords.Tombstones(key));
            if (error != ErrorCode.None) return Translate(error);
            _state.Remove(key);
            return ErrorCode.None;
        }
    }

    /// <summary>Every share-partition of a group this coordinator holds (tests, diagnostics).</summary>
    public List<SharePartitionKey> KeysOf(string groupId)
    {
        lock (_gate) return _state.Keys.Where(k => k.GroupId == groupId).ToList();
    }

    // A leader that lost its state partition mid-append answers NOT_COORDINATOR so the share-partition
    // leader looks the coordinator up again (upstream maps NOT_LEADER_OR_FOLLOWER likewise).
    private static ErrorCode Translate(ErrorCode e) => e is ErrorCode.NotLeaderOrFollower ? ErrorCode.NotCoordinator : e;
}
