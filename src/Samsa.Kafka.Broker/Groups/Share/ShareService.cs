using Samsa.Kafka.Broker.Cluster;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Records;

namespace Samsa.Kafka.Broker.Groups.Share;

/// <summary>
/// Share groups (KIP-932) on one broker: the membership coordinator for the groups whose
/// __consumer_offsets partition this broker leads (same placement as classic and consumer groups,
/// FindCoordinator key type 0), the share-partitions of the partitions it leads, the share
/// sessions of the members fetching from it, and a 100 ms housekeeping loop (lock expiry,
/// member session expiry, idle share sessions, writing changed state).
/// A share-partition's durable state lives with the share coordinator (__share_group_state,
/// <see cref="ShareCoordinatorService"/>), as upstream's SharePartition keeps it through its
/// persister: read (ReadShareGroupState) when this broker first serves the share-partition as
/// leader of a given leader epoch — initialized there (InitializeShareGroupState) from
/// share.auto.offset.reset when it never was —, written (WriteShareGroupState) before an
/// acknowledgement is answered, and within 100 ms after any other change (lock expiry, released
/// records). Acquisitions are not written: as upstream's, the persisted state of an acquired record
/// is the one it had before (see SharePartition.Snapshot).
/// </summary>
public sealed class ShareService : IDisposable
{
    private readonly KafkaBroker _broker;
    private readonly Action<string>? _log;
    private readonly Dictionary<(string, Guid, int), SharePartition> _partitions = new();
    private readonly Dictionary<(string, Guid, int), Holder> _holders = new();
    private readonly object _gate = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task? _loop;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _flushing;

    // Per share-partition: the load in progress, the leader epoch it was loaded for, and a gate that
    // keeps its writes in order (a later snapshot must never be overtaken by an earlier one).
    private sealed class Holder
    {
        public Task<ErrorCode>? Load;
        public int LeaderEpoch = -1;
        public long PersistedVersion = -1;
        // What the last successful write carried (null after a load or reset): a change that leaves
        // the persisted form as it was — an acquisition, see SharePartition.Snapshot — is not written,
        // as upstream writes no acquisition.
        public (SharePartitionSnapshot Snapshot, int CompleteCount, int LeaderEpoch)? LastWritten;
        public readonly SemaphoreSlim WriteGate = new(1, 1);
    }

    public ShareService(KafkaBroker broker, Action<string>? log = null, bool startLoop = true)
    {
        _broker = broker;
        _log = log;
        Settings = ShareGroupSettings.FromConfig(broker.Config);
        Coordinator = new ShareGroupCoordinator(Settings, name =>
            broker.Replicas.GetTopic(name) is { } t && !t.IsInternal ? (t.Id, t.Partitions.Count) : null);
        Sessions = new ShareSessionCache();
        // Membership is written to and replayed from the groups' __consumer_offsets partitions
        // (share group records), loaded and unloaded with the other groups of each partition.
        Coordinator.Persist = (group, records) => broker.Groups.Coordinator.AppendShareGroupRecords(group, records);
        broker.Groups.Coordinator.ShareGroupsLoaded = (inPartition, records) => Coordinator.Install(inPartition, records, Clock());
        broker.Groups.Coordinator.ShareGroupsUnloaded = Coordinator.Unload;
        broker.Replicas.Appended += _ => Notify();
        // A member that leaves or times out on this coordinator loses its share sessions here and
        // what it holds is released (when this broker also leads the partitions).
        Coordinator.MemberRemoved += (group, member) =>
        {
            if (Sessions.Remove(group, member) is not null) ReleaseMember(group, member);
        };
        // share.version finalized below 1 (UpdateFeatures, or the /feature znode changing): share
        // sessions and share-partitions are dropped at once, as upstream's
        // SharePartitionManager.onShareVersionToggle.
        broker.Features.Changed += (before, after) =>
        {
            if (after.Levels.GetValueOrDefault(ShareVersionFeature) < 1 && before.Levels.GetValueOrDefault(ShareVersionFeature) >= 1)
                OnShareGroupsDisabled();
        };
        if (startLoop) _loop = Task.Run(LoopAsync);
    }

    private const string ShareVersionFeature = "share.version";

    /// <summary>
    /// Share groups were turned off (share.version 0): every share session and every share-partition
    /// this broker holds is dropped (upstream onShareVersionToggle: removeAllSessions and the partition
    /// cache). Nothing is written: what members had acquired reads as available when a share-partition
    /// is loaded again, and acknowledgements were written before they were answered. Members reopen
    /// their sessions (SHARE_SESSION_NOT_FOUND) once the level is back.
    /// </summary>
    public void OnShareGroupsDisabled()
    {
        int sessions = Sessions.RemoveAll();
        int partitions;
        lock (_gate)
        {
            partitions = _partitions.Count;
            _partitions.Clear();
            _holders.Clear();
        }
        _log?.Invoke($"share.version is 0: dropped {sessions} share sessions and {partitions} share-partitions");
        Notify();
    }

    public ShareGroupSettings Settings { get; }
    public ShareGroupCoordinator Coordinator { get; }
    public ShareSessionCache Sessions { get; }
    public Func<long> Clock { get; init; } = () => Environment.TickCount64;

    private ShareCoordinatorService Persister => _broker.ShareCoordinator;

    /// <summary>Share groups this broker coordinates, with their state (Empty / Stable), for ListGroups.</summary>
    public IEnumerable<(string GroupId, string State)> ListShareGroups() => Coordinator.ListGroups();

    /// <summary>True when <paramref name="groupId"/> is a share group this broker coordinates.</summary>
    public bool IsShareGroup(string groupId) => Coordinator.Contains(groupId);

    /// <summary>NONE when this broker coordinates <paramref name="groupId"/> (leads its
    /// __consumer_offsets partition and has loaded it), else NOT_COORDINATOR /
    /// COORDINATOR_NOT_AVAILABLE / COORDINATOR_LOAD_IN_PROGRESS.</summary>
    public ErrorCode CoordinatorStatus(string groupId)
    {
        var (error, _) = _broker.Groups.EnsureOffsetsTopic();
        if (error != ErrorCode.None) return ErrorCode.CoordinatorNotAvailable;
        var topic = _broker.Replicas.GetTopic(TopicName.GroupMetadataTopic);
        if (topic is null || topic.Partitions.Count == 0) return ErrorCode.CoordinatorNotAvailable;
        var p = topic.Partitions[GroupCoordinator.PartitionFor(groupId, topic.Partitions.Count)];
        if (!p.IsLeader) return ErrorCode.NotCoordinator;
        // Led here: the partition's groups (share groups included) may still be loading.
        return _broker.Groups.Coordinator.ShareGroupStatus(groupId);
    }

    /// <summary>Wakes waiting share fetches (records appended, locks released, acknowledgements).</summary>
    public void Notify()
    {
        var old = Interlocked.Exchange(ref _changed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        old.TrySetResult();
    }

    /// <summary>A task that completes at the next <see cref="Notify"/>.</summary>
    public Task Changed => Volatile.Read(ref _changed).Task;

    /// <summary>Runs <paramref name="action"/> on the share-partition under its lock. The caller has
    /// loaded it with <see cref="EnsureLoadedAsync"/>; one that was not is loaded here, blocking.</summary>
    public T With<T>(string groupId, Partition partition, Func<SharePartition, T> action)
    {
        var sp = GetOrCreate(groupId, partition);
        if (!IsCurrent(groupId, partition))
        {
            var e = EnsureLoadedAsync(groupId, partition).GetAwaiter().GetResult();
            if (e != ErrorCode.None) throw new SharePersisterException(e);
            sp = GetOrCreate(groupId, partition);
        }
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

    private SharePartition GetOrCreate(string groupId, Partition partition)
    {
        var key = (groupId, partition.Topic.Id, partition.Index);
        lock (_gate)
        {
            if (!_partitions.TryGetValue(key, out var sp))
                _partitions[key] = sp = new SharePartition(groupId, partition.Topic.Id, partition.Index, Settings);
            return sp;
        }
    }

    private Holder HolderOf((string, Guid, int) key)
    {
        lock (_gate)
        {
            if (!_holders.TryGetValue(key, out var h)) _holders[key] = h = new Holder();
            return h;
        }
    }

    // Loaded for the partition's current leader epoch. A newer epoch goes through LoadAsync, which
    // keeps the in-memory state when this broker stayed the leader (see KeepAcrossEpochBumpAsync)
    // and reads it again when another leader may have changed it meanwhile.
    private bool IsCurrent(string groupId, Partition partition)
    {
        var key = (groupId, partition.Topic.Id, partition.Index);
        lock (_gate)
            return _partitions.TryGetValue(key, out var sp) && sp.Initialized
                && _holders.TryGetValue(key, out var h) && h.LeaderEpoch == partition.LeaderEpoch;
    }

    /// <summary>
    /// Makes sure the share-partition is loaded for this leadership: reads its state from the share
    /// coordinator (ReadShareGroupState with this broker's leader epoch); a share-partition never
    /// initialized starts at share.auto.offset.reset (the high watermark for latest, the log start
    /// for earliest), written first with InitializeShareGroupState. Concurrent callers share one load.
    /// The coordinator's error when the state cannot be had (the partition then answers it).
    /// </summary>
    public async Task<ErrorCode> EnsureLoadedAsync(string groupId, Partition partition, CancellationToken ct = default)
    {
        if (IsCurrent(groupId, partition)) return ErrorCode.None;
        var key = (groupId, partition.Topic.Id, partition.Index);
        var holder = HolderOf(key);
        Task<ErrorCode> load;
        lock (_gate)
        {
            if (holder.Load is null || (holder.Load.IsCompleted && !IsCurrent(groupId, partition)))
                holder.Load = LoadAsync(groupId, partition, holder);
            load = holder.Load;
        }
        return await load.WaitAsync(ct);
    }

    private async Task<ErrorCode> LoadAsync(string groupId, Partition partition, Holder holder)
    {
        await Task.Yield();
        int leaderEpoch = partition.LeaderEpoch;
        var spKey = new SharePartitionKey(groupId, partition.Topic.Id, partition.Index);
        var (kept, keepError) = await KeepAcrossEpochBumpAsync(spKey, partition, holder, leaderEpoch);
        if (kept) return ErrorCode.None;
        if (keepError != ErrorCode.None) return keepError;
        var started = System.Diagnostics.Stopwatch.StartNew();
        var (error, state) = await Persister.ReadAsync(spKey, leaderEpoch);
        if (error != ErrorCode.None)
        {
            _log?.Invoke($"share-partition {groupId}/{partition.TopicPartition}: reading its state failed: {error}");
            return error;
        }
        var fresh = new SharePartition(groupId, partition.Topic.Id, partition.Index, Settings);
        if (state is null)
        {
            long start = Settings.ResetToEarliest(groupId) ? partition.Log.LogStartOffset : partition.HighWatermark;
            error = await Persister.InitializeAsync(spKey, 0, start);
            if (error != ErrorCode.None)
            {
                _log?.Invoke($"share-partition {groupId}/{partition.TopicPartition}: initializing its state failed: {error}");
                return error;
            }
            fresh.Initialize(start);
        }
        else
        {
            fresh.Restore(new SharePartitionSnapshot(state.StartOffset, state.StateEpoch, state.Batches));
        }
        var key = (groupId, partition.Topic.Id, partition.Index);
        lock (_gate)
        {
            _partitions[key] = fresh;
            holder.LeaderEpoch = leaderEpoch;
            holder.PersistedVersion = fresh.Version;
            holder.LastWritten = null;
        }
        LastLoad = (state?.Batches.Count ?? 0, started.Elapsed);
        return ErrorCode.None;
    }

    /// <summary>
    /// A new leader epoch while this broker is still the partition's leader: the ZooKeeper-mode
    /// controller bumps the leader epoch on every ISR shrink (a follower died) with the same leader.
    /// Upstream's SharePartitionManager drops a share-partition only when its broker stops leading
    /// (SharePartitionListener onBecomingFollower / onDeleted / onFailed) — and KRaft's
    /// PartitionChangeBuilder no longer bumps the leader epoch on an ISR shrink at all
    /// (triggerLeaderEpochBumpForIsrShrinkIfNeeded: only before metadata version 3.6) — so in-flight
    /// state (acquired records, delivery counts, locks) survives a follower's death there. Here the
    /// state is kept when the share coordinator shows nobody else led it meanwhile: its recorded leader
    /// epoch is still the one this broker loaded or wrote with, and its state epoch is unchanged (no
    /// AlterShareGroupOffsets / DeleteShareGroupOffsets). Then the new epoch is recorded there with a
    /// ReadShareGroupState (fencing writers of older epochs) while no write of this share-partition is
    /// in flight, and the partition goes on under it. Otherwise (leadership moved away and back between
    /// two cluster views, state reset or deleted) the state is read again. Returns whether the state
    /// was kept, or the coordinator's error when it could not tell.
    /// </summary>
    private async Task<(bool Kept, ErrorCode Error)> KeepAcrossEpochBumpAsync(SharePartitionKey spKey, Partition partition, Holder holder, int leaderEpoch)
    {
        var key = (spKey.GroupId, spKey.TopicId, spKey.Partition);
        SharePartition? current;
        int loadedEpoch;
        lock (_gate)
        {
            current = _partitions.GetValueOrDefault(key);
            loadedEpoch = holder.LeaderEpoch;
        }
        if (current is null || loadedEpoch < 0 || leaderEpoch <= loadedEpoch || !partition.IsLeader) return (false, ErrorCode.None);
        int stateEpoch;
        lock (current)
        {
            if (!current.Initialized) return (false, ErrorCode.None);
            stateEpoch = current.StateEpoch;
        }
        var (error, summary) = await Persister.SummaryAsync(spKey);
        if (error != ErrorCode.None) return (false, error);
        if (summary is null || summary.LeaderEpoch > loadedEpoch || summary.StateEpoch != stateEpoch)
        {
            _log?.Invoke($"share-partition {spKey.GroupId}/{partition.TopicPartition}: leader epoch {loadedEpoch} -> {leaderEpoch} and the share coordinator's state moved on " +
                $"(leader epoch {summary?.LeaderEpoch.ToString() ?? "none"}, state epoch {summary?.StateEpoch.ToString() ?? "none"}); reading it again");
            return (false, ErrorCode.None);
        }
        await holder.WriteGate.WaitAsync();
        try
        {
            (error, _) = await Persister.ReadAsync(spKey, leaderEpoch);
            if (error != ErrorCode.None) return (false, error);
            lock (_gate)
            {
                if (!ReferenceEquals(_partitions.GetValueOrDefault(key), current)) return (false, ErrorCode.None);
                holder.LeaderEpoch = leaderEpoch;
            }
        }
        finally
        {
            holder.WriteGate.Release();
        }
        _log?.Invoke($"share-partition {spKey.GroupId}/{partition.TopicPartition}: leader epoch {loadedEpoch} -> {leaderEpoch} with this broker still leading; in-flight state kept");
        return (true, ErrorCode.None);
    }

    /// <summary>Runs of the last share-partition loaded and how long reading it took (diagnostics).</summary>
    public (int Runs, TimeSpan Took) LastLoad { get; private set; }

    /// <summary>
    /// Writes the share-partition's state to its share coordinator (WriteShareGroupState) if it
    /// changed since the last write: start offset, state epoch, this broker's leader epoch, the
    /// delivery-complete count and the in-flight runs (an ACQUIRED record written as it was before
    /// its acquisition); a change that leaves all that as last written (an acquisition alone) is not
    /// written.
    /// Writes of one share-partition are serialized, each carrying the state at its turn.
    /// </summary>
    public async Task<ErrorCode> PersistAsync(string groupId, Partition partition, CancellationToken ct = default)
    {
        var key = (groupId, partition.Topic.Id, partition.Index);
        SharePartition? sp;
        lock (_gate) sp = _partitions.GetValueOrDefault(key);
        if (sp is null) return ErrorCode.None;
        var holder = HolderOf(key);
        await holder.WriteGate.WaitAsync(ct);
        try
        {
            SharePartitionSnapshot snapshot;
            long version;
            int completeCount;
            lock (sp)
            {
                if (!sp.Initialized) return ErrorCode.None;
                version = sp.Version;
                lock (_gate) if (holder.PersistedVersion == version) return ErrorCode.None;
                snapshot = sp.Snapshot();
                completeCount = sp.DeliveryCompleteCount;
            }
            int leaderEpoch;
            lock (_gate)
            {
                leaderEpoch = holder.LeaderEpoch;
                if (holder.LastWritten is { } last && last.LeaderEpoch == leaderEpoch && last.CompleteCount == completeCount
                    && SameState(last.Snapshot, snapshot))
                {
                    if (holder.PersistedVersion < version) holder.PersistedVersion = version;
                    return ErrorCode.None;
                }
            }
            var error = await Persister.WriteAsync(new SharePartitionKey(groupId, partition.Topic.Id, partition.Index),
                snapshot.StateEpoch, leaderEpoch, snapshot.StartOffset, completeCount, snapshot.Batches, ct);
            if (error == ErrorCode.None)
            {
                lock (_gate)
                {
                    if (holder.PersistedVersion < version) holder.PersistedVersion = version;
                    holder.LastWritten = (snapshot, completeCount, leaderEpoch);
                }
            }
            else
            {
                _log?.Invoke($"share-partition {groupId}/{partition.TopicPartition}: writing its state failed: {error}");
                if (error is ErrorCode.FencedLeaderEpoch or ErrorCode.FencedStateEpoch) Forget(key);   // another leader owns it now
            }
            return error;
        }
        finally
        {
            holder.WriteGate.Release();
        }
    }

    private static bool SameState(SharePartitionSnapshot a, SharePartitionSnapshot b) =>
        a.StartOffset == b.StartOffset && a.StateEpoch == b.StateEpoch && a.Batches.SequenceEqual(b.Batches);

    /// <summary>The error a client sees for a persister error (upstream SharePartition's mapping of
    /// ReadShareGroupState / WriteShareGroupState failures).</summary>
    public static ErrorCode ClientError(ErrorCode persister) => persister switch
    {
        ErrorCode.None => ErrorCode.None,
        ErrorCode.NotCoordinator or ErrorCode.CoordinatorNotAvailable or ErrorCode.CoordinatorLoadInProgress => ErrorCode.CoordinatorNotAvailable,
        ErrorCode.FencedLeaderEpoch => ErrorCode.NotLeaderOrFollower,
        ErrorCode.FencedStateEpoch or ErrorCode.GroupIdNotFound or ErrorCode.UnknownTopicOrPartition => persister,
        _ => ErrorCode.UnknownServerError,
    };

    private void Forget((string, Guid, int) key)
    {
        lock (_gate)
        {
            _partitions.Remove(key);
            _holders.Remove(key);
        }
    }

    /// <summary>Start offset and lag of a share-partition this broker leads: from memory when loaded,
    /// else from the share coordinator; null when it was never initialized.</summary>
    public async Task<(long StartOffset, long Lag)?> DescribeLocalAsync(string groupId, Partition partition, CancellationToken ct = default)
    {
        if (IsCurrent(groupId, partition) && Find(groupId, partition.Topic.Id, partition.Index) is { } sp)
            lock (sp) if (sp.Initialized) return (sp.StartOffset, sp.Lag(partition.HighWatermark));
        var (error, state) = await Persister.ReadAsync(new SharePartitionKey(groupId, partition.Topic.Id, partition.Index), -1, ct);
        if (error != ErrorCode.None) throw new SharePersisterException(error);
        if (state is null) return null;
        var restored = new SharePartition(groupId, partition.Topic.Id, partition.Index, Settings);
        restored.Restore(new SharePartitionSnapshot(state.StartOffset, state.StateEpoch, state.Batches));
        return (restored.StartOffset, restored.Lag(partition.HighWatermark));
    }

    /// <summary>Every share-partition of a group this broker has loaded.</summary>
    public List<(Guid TopicId, int Partition)> PartitionsOf(string groupId)
    {
        lock (_gate) return _partitions.Keys.Where(k => k.Item1 == groupId).Select(k => (k.Item2, k.Item3)).Distinct().ToList();
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
        if (Interlocked.CompareExchange(ref _flushing, 1, 0) == 0)
            _ = FlushAsync().ContinueWith(_ => Volatile.Write(ref _flushing, 0), TaskScheduler.Default);
    }

    /// <summary>Writes every share-partition whose state changed since it was last written; drops
    /// those whose partition this broker no longer leads (the new leader reads the state).</summary>
    public async Task FlushAsync()
    {
        List<(string, Guid, int)> keys;
        lock (_gate) keys = _partitions.Keys.ToList();
        foreach (var key in keys)
        {
            var topic = _broker.Replicas.GetTopic(key.Item2);
            var partition = topic is null ? null : _broker.Replicas.GetPartition(topic.Name, key.Item3);
            if (partition is null || !partition.IsLeader) { Forget(key); continue; }
            try { await PersistAsync(key.Item1, partition, _stop.Token); }
            catch (OperationCanceledException) { return; }
        }
    }

    /// <summary>DeleteGroups for a share group: refused while it has members (NON_EMPTY_GROUP),
    /// GROUP_ID_NOT_FOUND when unknown; otherwise the share-partition state of every partition of
    /// the topics it subscribed to is deleted at the share coordinator (DeleteShareGroupState, as
    /// upstream's deleteShareGroups) and then the group.</summary>
    public async Task<ErrorCode> DeleteGroupAsync(string groupId, CancellationToken ct = default)
    {
        if (Coordinator.PrepareDeleteCheck(groupId) is { } refused) return refused;
        var targets = new HashSet<(Guid, int)>(PartitionsOf(groupId));
        foreach (var name in Coordinator.SubscribedTopics(groupId))
            if (_broker.Replicas.GetTopic(name) is { } t)
                for (int i = 0; i < t.Partitions.Count; i++) targets.Add((t.Id, i));
        foreach (var (topicId, partition) in targets)
        {
            var e = await DeleteAsync(groupId, topicId, partition, ct);
            if (e != ErrorCode.None) return e;
        }
        return Coordinator.TryDelete(groupId, out var error) ? ErrorCode.None : error;
    }

    /// <summary>AlterShareGroupOffsets on the partition leader: the share-partition of
    /// <paramref name="groupId"/> restarts at <paramref name="startOffset"/> with the next state epoch,
    /// written to the share coordinator with InitializeShareGroupState.</summary>
    public async Task<ErrorCode> AlterLocalAsync(string groupId, Partition partition, long startOffset, CancellationToken ct = default)
    {
        var load = await EnsureLoadedAsync(groupId, partition, ct);
        if (load != ErrorCode.None) return load;
        var sp = GetOrCreate(groupId, partition);
        int epoch;
        lock (sp) epoch = sp.StateEpoch + 1;
        var error = await Persister.InitializeAsync(new SharePartitionKey(groupId, partition.Topic.Id, partition.Index), epoch, startOffset, ct);
        if (error != ErrorCode.None) return error;
        long version;
        lock (sp) { sp.Reinitialize(startOffset); version = sp.Version; }
        var holder = HolderOf((groupId, partition.Topic.Id, partition.Index));
        lock (_gate) { holder.PersistedVersion = version; holder.LastWritten = null; }
        Notify();
        return ErrorCode.None;
    }

    /// <summary>Forgets a share-partition here and at the share coordinator (DeleteShareGroupOffsets,
    /// group deletion).</summary>
    public async Task<ErrorCode> DeleteAsync(string groupId, Guid topicId, int partition, CancellationToken ct = default)
    {
        Forget((groupId, topicId, partition));
        return await Persister.DeleteAsync(new SharePartitionKey(groupId, topicId, partition), ct);
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

    // Acknowledgements are written before they are answered, but other changes wait for the next
    // 100 ms pass — acquisitions, and the releases of members whose share sessions ended (their
    // delivery attempts given back). The broker disposes this after its listeners, so the sessions of
    // the connections it just closed are released too; those changes are written now (bounded),
    // else a clean restart would read back an acquisition's delivery count without the release that
    // gave it back (kafkats share-state-restart saw delivery count 3 instead of 2 that way).
    // Upstream does not write acquisitions at all, so nothing of them survives its restart.
    public void Dispose()
    {
        try { FlushAsync().Wait(TimeSpan.FromSeconds(5)); }
        catch (AggregateException e) { _log?.Invoke($"share groups: writing the last share-partition changes at stop failed: {e.InnerException?.Message}"); }
        _stop.Cancel();
        try { _loop?.Wait(TimeSpan.FromSeconds(2)); } catch (AggregateException) { }
        _stop.Dispose();
    }
}

/// <summary>The share coordinator could not be reached or refused (the share-partition answers the code).</summary>
public sealed class SharePersisterException(ErrorCode error) : Exception($"share state not available: {error}")
{
    public ErrorCode Error { get; } = error;
}
