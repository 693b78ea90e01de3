using Samsa.Kafka.Broker.Cluster;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Records;

namespace Samsa.Kafka.Broker.Groups.Share;

/// <summary>
/// Share groups (KIP-932) on one broker: the membership coordinator for the groups whose
/// __consumer_offsets partition this broker leads (same placement as classic and consumer groups,
/// FindCoordinator key type 0), the share-partitions of the partitions it leads, the share
/// sessions of the members fetching from it, and a 100 ms housekeeping loop (lock expiry,
/// member session expiry, idle share sessions, writing changed state to the store).
/// </summary>
public sealed class ShareService : IDisposable
{
    private readonly KafkaBroker _broker;
    private readonly Action<string>? _log;
    private readonly Dictionary<(string, Guid, int), SharePartition> _partitions = new();
    private readonly Dictionary<(string, Guid, int), long> _persistedVersion = new();
    private readonly object _gate = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task? _loop;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ShareService(KafkaBroker broker, bool persistent, Action<string>? log = null, bool startLoop = true)
    {
        _broker = broker;
        _log = log;
        Settings = ShareGroupSettings.FromConfig(broker.Config);
        Coordinator = new ShareGroupCoordinator(Settings, name =>
            broker.Replicas.GetTopic(name) is { } t && !t.IsInternal ? (t.Id, t.Partitions.Count) : null);
        Sessions = new ShareSessionCache();
        Store = persistent ? new ShareStateStore(Path.Combine(broker.Config.LogDirs[0], "share-group-state")) : null;
        broker.Replicas.Appended += _ => Notify();
        // A member that leaves or times out on this coordinator loses its share sessions here and
        // what it holds is released (when this broker also leads the partitions).
        Coordinator.MemberRemoved += (group, member) =>
        {
            if (Sessions.Remove(group, member) is not null) ReleaseMember(group, member);
        };
        if (startLoop) _loop = Task.Run(LoopAsync);
    }

    public ShareGroupSettings Settings { get; }
    public ShareGroupCoordinator Coordinator { get; }
    public ShareSessionCache Sessions { get; }
    public ShareStateStore? Store { get; }
    public Func<long> Clock { get; init; } = () => Environment.TickCount64;

    /// <summary>Share groups this broker coordinates, with their state (Empty / Stable), for ListGroups.</summary>
    public IEnumerable<(string GroupId, string State)> ListShareGroups() => Coordinator.ListGroups();

    /// <summary>True when <paramref name="groupId"/> is a share group this broker coordinates.</summary>
    public bool IsShareGroup(string groupId) => Coordinator.Contains(groupId);

    /// <summary>NONE when this broker coordinates <paramref name="groupId"/> (leads its
    /// __consumer_offsets partition), else NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE.</summary>
    public ErrorCode CoordinatorStatus(string groupId)
    {
        var (error, _) = _broker.Groups.EnsureOffsetsTopic();
        if (error != ErrorCode.None) return ErrorCode.CoordinatorNotAvailable;
        var topic = _broker.Replicas.GetTopic(TopicName.GroupMetadataTopic);
        if (topic is null || topic.Partitions.Count == 0) return ErrorCode.CoordinatorNotAvailable;
        var p = topic.Partitions[GroupCoordinator.PartitionFor(groupId, topic.Partitions.Count)];
        return p.IsLeader ? ErrorCode.None : ErrorCode.NotCoordinator;
    }

    /// <summary>Wakes waiting share fetches (records appended, locks released, acknowledgements).</summary>
    public void Notify()
    {
        var old = Interlocked.Exchange(ref _changed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        old.TrySetResult();
    }

    /// <summary>A task that completes at the next <see cref="Notify"/>.</summary>
    public Task Changed => Volatile.Read(ref _changed).Task;

    /// <summary>Runs <paramref name="action"/> on the share-partition under its lock, loading it first
    /// (stored state, else share.auto.offset.reset against <paramref name="partition"/>'s log).</summary>
    public T With<T>(string groupId, Partition partition, Func<SharePartition, T> action)
    {
        var sp = GetOrLoad(groupId, partition);
        lock (sp)
        {
            if (sp.StartOffset < partition.Log.LogStartOffset)
                sp.ResetStartOffset(partition.Log.LogStartOffset, bumpEpoch: false);   // retention passed the SPSO
            return action(sp);
        }
    }

    /// <summary>The share-partition if this broker has it (tests, describe), without loading.</summary>
    public SharePartition? Find(string groupId, Guid topicId, int partition)
    {
        lock (_gate) return _partitions.GetValueOrDefault((groupId, topicId, partition));
    }

    /// <summary>Start offset and lag of a share-partition this broker leads, without starting it:
    /// from memory, else from the store; null when it was never initialized.</summary>
    public (long StartOffset, long Lag)? DescribeLocal(string groupId, Partition partition)
    {
        var sp = Find(groupId, partition.Topic.Id, partition.Index);
        if (sp is not null)
            lock (sp) if (sp.Initialized) return (sp.StartOffset, sp.Lag(partition.HighWatermark));
        SharePartitionSnapshot? stored = null;
        try { stored = Store?.Load(groupId, partition.Topic.Id, partition.Index); }
        catch (Exception e) when (e is IOException or System.Text.Json.JsonException or InvalidOperationException or FormatException) { }
        if (stored is null) return null;
        var restored = new SharePartition(groupId, partition.Topic.Id, partition.Index, Settings);
        restored.Restore(stored);
        return (restored.StartOffset, restored.Lag(partition.HighWatermark));
    }

    /// <summary>Every share-partition of a group on this broker, loaded or stored.</summary>
    public List<(Guid TopicId, int Partition)> PartitionsOf(string groupId)
    {
        var set = new HashSet<(Guid, int)>();
        lock (_gate) foreach (var k in _partitions.Keys) if (k.Item1 == groupId) set.Add((k.Item2, k.Item3));
        if (Store is not null) foreach (var (g, t, p) in Store.List()) if (g == groupId) set.Add((t, p));
        return set.ToList();
    }

    private SharePartition GetOrLoad(string groupId, Partition partition)
    {
        var key = (groupId, partition.Topic.Id, partition.Index);
        SharePartition sp;
        lock (_gate)
        {
            if (!_partitions.TryGetValue(key, out sp!))
                _partitions[key] = sp = new SharePartition(groupId, partition.Topic.Id, partition.Index, Settings);
        }
        lock (sp)
        {
            if (sp.Initialized) return sp;
            SharePartitionSnapshot? stored = null;
            try { stored = Store?.Load(groupId, partition.Topic.Id, partition.Index); }
            catch (Exception e) when (e is IOException or System.Text.Json.JsonException or InvalidOperationException or FormatException)
            {
                _log?.Invoke($"share-partition {groupId}/{partition.Topic.Name}-{partition.Index}: unreadable stored state ({e.Message}); starting afresh");
            }
            if (stored is not null) sp.Restore(stored);
            else sp.Initialize(Settings.ResetToEarliest(groupId) ? partition.Log.LogStartOffset : partition.HighWatermark);
            lock (_gate) _persistedVersion[key] = stored is not null ? sp.Version : -1;
        }
        return sp;
    }

    /// <summary>
    /// Acquires records of <paramref name="partition"/> for a member: reads the log from the
    /// share-partition's next fetch offset up to the high watermark (at most <paramref name="maxBytes"/>,
    /// at least one batch), acquires the available records in it and returns the batches that hold
    /// acquired records (the client keeps only the acquired offsets, as upstream's ShareFetch answer).
    /// </summary>
    public (ReadOnlyMemory<byte> Records, List<AcquiredRange> Acquired) Acquire(string groupId, string memberId, Partition partition,
        int maxBytes, int maxRecords, bool recordLimitMode)
    {
        return With(groupId, partition, sp =>
        {
            long hw = partition.HighWatermark;
            if (!sp.CanAcquire(hw) || maxRecords <= 0) return (ReadOnlyMemory<byte>.Empty, new List<AcquiredRange>());
            long from = sp.NextFetchOffset();
            if (from >= hw) return (ReadOnlyMemory<byte>.Empty, new List<AcquiredRange>());
            var read = partition.Log.Read(from, Math.Max(1, maxBytes), hw, minOneBatch: true).Records;
            var spans = new List<LogBatchSpan>();
            var positions = new List<(int Start, int End)>();
            int pos = 0;
            foreach (var batch in RecordBatch.Enumerate(read.Span, allowTruncatedTail: true))
            {
                spans.Add(new LogBatchSpan(batch.BaseOffset, batch.LastOffset, batch.IsControl));
                positions.Add((pos, pos + batch.SizeInBytes));
                pos += batch.SizeInBytes;
            }
            var acquired = sp.Acquire(memberId, spans, maxRecords, recordLimitMode, Clock());
            if (acquired.Count == 0) return (ReadOnlyMemory<byte>.Empty, acquired);
            long lo = acquired[0].FirstOffset, hi = acquired[^1].LastOffset;
            int start = -1, end = 0;
            for (int i = 0; i < spans.Count; i++)
            {
                if (spans[i].LastOffset < lo || spans[i].BaseOffset > hi) continue;
                if (start < 0) start = positions[i].Start;
                end = positions[i].End;
            }
            return (start < 0 ? ReadOnlyMemory<byte>.Empty : read[start..end], acquired);
        });
    }

    /// <summary>Releases what a member holds in every share-partition of its group here (share
    /// session closed or replaced, member gone).</summary>
    public void ReleaseMember(string groupId, string memberId)
    {
        List<SharePartition> list;
        lock (_gate) list = _partitions.Where(kv => kv.Key.Item1 == groupId).Select(kv => kv.Value).ToList();
        bool changed = false;
        foreach (var sp in list) lock (sp) changed |= sp.ReleaseMember(memberId);
        if (changed) Notify();
    }

    /// <summary>Removes <paramref name="session"/> if it is still the member's current one (its
    /// connection closed) and releases what the member holds here.</summary>
    public void CloseSession(ShareSession session)
    {
        if (Sessions.RemoveIfCurrent(session)) ReleaseMember(session.GroupId, session.MemberId);
    }

    /// <summary>One housekeeping pass (the loop runs it every 100 ms; tests call it directly).</summary>
    public void Tick()
    {
        long now = Clock();
        List<SharePartition> list;
        lock (_gate) list = _partitions.Values.ToList();
        bool changed = false;
        foreach (var sp in list) lock (sp) changed |= sp.ReleaseExpired(now);
        if (changed) Notify();
        Coordinator.Tick(now);
        foreach (var s in Sessions.Evict(now, 2L * Settings.SessionTimeoutMs)) ReleaseMember(s.GroupId, s.MemberId);
        Flush();
    }

    /// <summary>Writes every share-partition whose state changed since it was last written.</summary>
    public void Flush()
    {
        if (Store is null) return;
        List<KeyValuePair<(string, Guid, int), SharePartition>> list;
        lock (_gate) list = _partitions.ToList();
        foreach (var (key, sp) in list)
        {
            SharePartitionSnapshot snapshot;
            long version;
            lock (sp)
            {
                if (!sp.Initialized) continue;
                version = sp.Version;
                lock (_gate) if (_persistedVersion.GetValueOrDefault(key, -1) == version) continue;
                snapshot = sp.Snapshot();
            }
            try
            {
                Store.Save(key.Item1, key.Item2, key.Item3, snapshot);
                lock (_gate) _persistedVersion[key] = version;
            }
            catch (IOException e)
            {
                _log?.Invoke($"share-partition state write failed: {e.Message}");
            }
        }
    }

    /// <summary>DeleteGroups for a share group: refused while it has members (NON_EMPTY_GROUP),
    /// GROUP_ID_NOT_FOUND when unknown; otherwise the group and the state of its share-partitions
    /// on this broker are deleted (upstream also deletes the __share_group_state entries).</summary>
    public ErrorCode DeleteGroup(string groupId)
    {
        if (!Coordinator.TryDelete(groupId, out var error)) return error;
        foreach (var (topicId, partition) in PartitionsOf(groupId)) Delete(groupId, topicId, partition);
        return ErrorCode.None;
    }

    /// <summary>AlterShareGroupOffsets on the partition leader: the share-partition of
    /// <paramref name="groupId"/> restarts at <paramref name="startOffset"/> (written within 100 ms).</summary>
    public void AlterLocal(string groupId, Partition partition, long startOffset)
    {
        var sp = GetOrLoad(groupId, partition);
        lock (sp) sp.Reinitialize(startOffset);
        Notify();
    }

    /// <summary>Forgets a share-partition here and on disk (DeleteShareGroupOffsets, group deletion).</summary>
    public void Delete(string groupId, Guid topicId, int partition)
    {
        lock (_gate)
        {
            _partitions.Remove((groupId, topicId, partition));
            _persistedVersion.Remove((groupId, topicId, partition));
        }
        Store?.Delete(groupId, topicId, partition);
    }

    private async Task LoopAsync()
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token))
            {
                try { Tick(); }
                catch (Exception e) { _log?.Invoke($"share groups housekeeping failed: {e.Message}"); }
            }
        }
        catch (OperationCanceledException) { }
    }

    public void Dispose()
    {
        _stop.Cancel();
        try { _loop?.Wait(TimeSpan.FromSeconds(2)); } catch (AggregateException) { }
        try { Flush(); } catch (Exception e) { _log?.Invoke($"share-partition state write at stop failed: {e.Message}"); }
        _stop.Dispose();
    }
}
