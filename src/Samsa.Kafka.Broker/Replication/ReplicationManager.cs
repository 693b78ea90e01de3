using System.Text;
using System.Text.Json.Nodes;
using Samsa.Kafka.Broker.Cluster;
using Samsa.Kafka.Broker.Cluster.ZooKeeper;
using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Broker.Purgatory;
using Samsa.Keeper.Client;

namespace Samsa.Kafka.Broker.Replication;

/// <summary>
/// Replication of one broker in ZooKeeper mode (upstream kafka.cluster.Partition leader-side
/// bookkeeping plus ReplicaFetcherManager), driven by the cluster view each time it is applied.
///
/// Leader side: every follower fetch (Fetch with replica_id set) reports the follower's log end
/// (its fetch offset). The high watermark is the smallest log end over the ISR. A follower that
/// has not caught up to the leader's log end within replica.lag.time.max.ms leaves the ISR; one
/// whose log end reaches the high watermark (and the start of the leader's epoch) joins it. ISR
/// changes are written by the leader itself, as upstream's ZooKeeper-mode AlterPartition: a
/// conditional setData of the partition state znode with the zkVersion last read, then a
/// sequential /isr_change_notification/isr_change_ znode naming the partition.
///
/// Follower side: one <see cref="ReplicaFetcher"/> per leader broker fetches every partition
/// this broker follows from it, after truncating a divergent tail with OffsetForLeaderEpoch
/// (KIP-101/KIP-279).
///
/// acks=all produce requests wait in the produce purgatory until the high watermark passes
/// their last offset.
/// </summary>
public sealed class ReplicationManager : IAsyncDisposable
{
    private readonly KafkaBroker _broker;
    private readonly object _gate = new();
    private readonly Dictionary<TopicPartition, LeaderState> _leaders = [];
    private readonly Dictionary<int, ReplicaFetcher> _fetchers = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _isrLoop;
    private ClusterView _view = ClusterView.Empty;
    private volatile bool _stopFollowing;

    public ReplicationManager(KafkaBroker broker)
    {
        _broker = broker;
        ProducePurgatory = new DelayedOperationPurgatory<TopicPartition>(broker.Timer);
        LagTimeMaxMs = (long)broker.Config.Get("replica.lag.time.max.ms")!;
        FetchMaxBytes = (int)broker.Config.Get("replica.fetch.max.bytes")!;
        SocketTimeoutMs = (int)broker.Config.Get("replica.socket.timeout.ms")!;
        FetchWaitMaxMs = (int)broker.Config.Get("replica.fetch.wait.max.ms")!;
        FetchMinBytes = (int)broker.Config.Get("replica.fetch.min.bytes")!;
        FetchResponseMaxBytes = (int)broker.Config.Get("replica.fetch.response.max.bytes")!;
        FetchBackoffMs = (int)broker.Config.Get("replica.fetch.backoff.ms")!;
        int windows = (int)broker.Config.Get("replication.quota.window.num")!;
        int windowSeconds = (int)broker.Config.Get("replication.quota.window.size.seconds")!;
        LeaderQuota = new ReplicationQuota(() => (long)broker.Config.Get("leader.replication.throttled.rate")!,
            "leader.replication.throttled.replicas", broker.BrokerId, windows, windowSeconds);
        FollowerQuota = new ReplicationQuota(() => (long)broker.Config.Get("follower.replication.throttled.rate")!,
            "follower.replication.throttled.replicas", broker.BrokerId, windows, windowSeconds);
        Selector = ReplicaSelectors.Create(broker.Config.GetString("replica.selector.class"));
        _isrLoop = Task.Run(IsrLoopAsync);
    }

    /// <summary>replica.lag.time.max.ms: how long an ISR member may stay behind the leader's log end.</summary>
    public long LagTimeMaxMs { get; }
    public int FetchMaxBytes { get; }
    /// <summary>replica.socket.timeout.ms: how long a replica fetcher waits for a leader's answer
    /// (enforced on blocking, i.e. plaintext, fetcher connections).</summary>
    public int SocketTimeoutMs { get; }
    /// <summary>replica.fetch.wait.max.ms: how long a follower's Fetch may wait at the leader for data.</summary>
    public int FetchWaitMaxMs { get; }
    /// <summary>replica.fetch.min.bytes: the bytes a follower's Fetch waits for (up to <see cref="FetchWaitMaxMs"/>).</summary>
    public int FetchMinBytes { get; }
    /// <summary>replica.fetch.response.max.bytes: a follower's Fetch max_bytes (the whole response).</summary>
    public int FetchResponseMaxBytes { get; }
    /// <summary>replica.fetch.backoff.ms: how long a partition whose fetched records were refused waits.</summary>
    public int FetchBackoffMs { get; }
    /// <summary>Throttle on what this broker, as leader, sends to catching-up followers (KIP-73).</summary>
    public ReplicationQuota LeaderQuota { get; }
    /// <summary>Throttle on what this broker, as follower, fetches for throttled partitions (KIP-73).</summary>
    public ReplicationQuota FollowerQuota { get; }
    /// <summary>replica.selector.class (KIP-392); null: consumers read from the leader.</summary>
    public IReplicaSelector? Selector { get; }
    public int BrokerId => _broker.BrokerId;
    public DelayedOperationPurgatory<TopicPartition> ProducePurgatory { get; }
    internal KafkaBroker Broker => _broker;
    internal Cluster.InterBrokerConnector Connector => _broker.InterBroker;
    internal ClusterView View => _view;

    private static long NowMs => Environment.TickCount64;

    private sealed class FollowerState
    {
        public long LogEndOffset = -1;
        public long LogStartOffset = -1;
        public long LastCaughtUpMs;
        public long LastFetchMs;
        public long LeaderEndAtLastFetch = -1;
    }

    private sealed class LeaderState(int epoch, long epochStartOffset)
    {
        public readonly int Epoch = epoch;
        public readonly long EpochStartOffset = epochStartOffset;
        public readonly Dictionary<int, FollowerState> Followers = [];
        public int StateZkVersion = -1;
        public bool IsrWriteInFlight;
    }

    // ------------------------------------------------------------------ view changes

    /// <summary>Called after each cluster view was applied to the ReplicaManager.</summary>
    public void OnViewApplied(ClusterView view)
    {
        _view = view;
        var follow = new Dictionary<int, List<Partition>>();
        lock (_gate)
        {
            var seen = new HashSet<TopicPartition>();
            foreach (var topic in _broker.Replicas.Topics)
            {
                view.Topics.TryGetValue(topic.Name, out var tv);
                foreach (var p in topic.Partitions.ToArray())
                {
                    var tp = p.TopicPartition;
                    PartitionStateEntry? entry = tv is not null && tv.States.TryGetValue(p.Index, out var e) ? e : null;
                    if (p.IsLeader && entry is not null)
                    {
                        seen.Add(tp);
                        if (!_leaders.TryGetValue(tp, out var ls) || ls.Epoch != p.LeaderEpoch)
                        {
                            // makeLeader: follower positions unknown; ISR members count as caught up now
                            // so they get replica.lag.time.max.ms to show up (upstream resets the same way).
                            ls = new LeaderState(p.LeaderEpoch, p.Log.LogEndOffset);
                            long now = NowMs;
                            foreach (var r in p.ReplicaNodes ?? [])
                                if (r != BrokerId)
                                    ls.Followers[r] = new FollowerState { LastCaughtUpMs = (p.IsrNodes?.Contains(r) ?? false) ? now : 0 };
                            _leaders[tp] = ls;
                            _broker.Log($"broker {BrokerId} leads {tp} at epoch {p.LeaderEpoch} (ISR [{string.Join(",", p.IsrNodes ?? [])}])");
                        }
                        ls.StateZkVersion = entry.ZkVersion;
                        ls.IsrWriteInFlight = false;
                        foreach (var r in p.ReplicaNodes ?? [])
                            if (r != BrokerId && !ls.Followers.ContainsKey(r)) ls.Followers[r] = new FollowerState();
                        MaybeIncrementHighWatermarkLocked(p, ls);
                    }
                    else if (!p.IsLeader && p.LeaderId is int leader && leader >= 0 && leader != BrokerId
                        && (p.ReplicaNodes?.Contains(BrokerId) ?? false) && view.Brokers.ContainsKey(leader))
                    {
                        if (!follow.TryGetValue(leader, out var list)) follow[leader] = list = [];
                        list.Add(p);
                    }
                }
            }
            foreach (var tp in _leaders.Keys.ToList())
                if (!seen.Contains(tp)) _leaders.Remove(tp);
        }
        // Waiting acks=all produces re-check: leadership or the ISR may have changed.
        foreach (var topic in _broker.Replicas.Topics)
            foreach (var p in topic.Partitions.ToArray()) ProducePurgatory.CheckAndComplete(p.TopicPartition);

        List<ReplicaFetcher> stale = [];
        if (_stopFollowing) follow.Clear();
        lock (_fetchers)
        {
            foreach (var (leader, parts) in follow)
            {
                var reg = view.Brokers[leader];
                // The leader's endpoint on the inter-broker listener (upstream: brokers replicate over
                // inter.broker.listener.name, never a client listener).
                var ep = _broker.InterBroker.EndpointIn(reg);
                if (ep is null) continue;
                if (_fetchers.TryGetValue(leader, out var f) && (f.Host != ep.Host || f.Port != ep.Port))
                {
                    stale.Add(f);
                    _fetchers.Remove(leader);
                    f = null;
                }
                if (f is null)
                {
                    f = new ReplicaFetcher(this, leader, ep.Host, ep.Port);
                    _fetchers[leader] = f;
                }
                f.SetPartitions(parts);
            }
            foreach (var (leader, f) in _fetchers.ToList())
            {
                if (follow.ContainsKey(leader)) continue;
                _fetchers.Remove(leader);
                stale.Add(f);
            }
        }
        foreach (var f in stale) _ = f.DisposeAsync().AsTask();
    }

    // ------------------------------------------------------------------ leader side

    /// <summary>A follower fetched <paramref name="partition"/> from <paramref name="fetchOffset"/>:
    /// that is its log end now (upstream Partition.updateFollowerFetchState). Returns false when
    /// the replica is not assigned to the partition.</summary>
    internal bool OnFollowerFetch(Partition partition, int replicaId, long fetchOffset, long logStartOffset = -1)
    {
        bool changed;
        lock (_gate)
        {
            if (!_leaders.TryGetValue(partition.TopicPartition, out var ls)) return false;
            if (!ls.Followers.TryGetValue(replicaId, out var f)) return false;
            long now = NowMs;
            long leaderEnd = partition.Log.LogEndOffset;
            // Caught up at this fetch when it asked for the leader's log end; caught up at the
            // previous fetch's time when it asked for what was the log end then (upstream rule).
            if (fetchOffset >= leaderEnd) f.LastCaughtUpMs = Math.Max(f.LastCaughtUpMs, now);
            else if (f.LeaderEndAtLastFetch >= 0 && fetchOffset >= f.LeaderEndAtLastFetch) f.LastCaughtUpMs = Math.Max(f.LastCaughtUpMs, f.LastFetchMs);
            f.LogEndOffset = fetchOffset;
            f.LogStartOffset = logStartOffset;
            f.LastFetchMs = now;
            f.LeaderEndAtLastFetch = leaderEnd;
            changed = MaybeIncrementHighWatermarkLocked(partition, ls);
            MaybeExpandIsrLocked(partition, ls, replicaId, f);
        }
        if (changed) OnHighWatermarkMoved(partition);
        return true;
    }

    /// <summary>KIP-392 (upstream ReplicaManager.findPreferredReadReplica): for a consumer fetch at
    /// <paramref name="fetchOffset"/> from a client in <paramref name="clientRack"/>, the follower it
    /// should read from instead, or -1 for this leader. Candidates are ISR followers whose log
    /// holds the offset (log start at or below it, log end at or past it); the selector may still
    /// pick the leader, which is never named in the answer.</summary>
    internal int PreferredReadReplica(Partition partition, string? clientRack, long fetchOffset)
    {
        if (Selector is null || !partition.IsLeader) return -1;
        var brokers = _view.Brokers;
        long now = NowMs;
        var replicas = new List<ReplicaView>();
        var leader = new ReplicaView(BrokerId, _broker.Config.Rack, partition.Log.LogEndOffset, 0);
        lock (_gate)
        {
            if (!_leaders.TryGetValue(partition.TopicPartition, out var ls)) return -1;
            var isr = partition.IsrNodes ?? [];
            foreach (var (id, f) in ls.Followers)
            {
                // Only followers known to be alive and in sync: a lagging one would keep the
                // consumer behind (upstream excludes them for the same reason).
                if (!isr.Contains(id) || !brokers.TryGetValue(id, out var reg)) continue;
                if (f.LogEndOffset < fetchOffset || f.LogStartOffset < 0 || f.LogStartOffset > fetchOffset) continue;
                replicas.Add(new ReplicaView(id, reg.Rack, f.LogEndOffset, now - f.LastCaughtUpMs));
            }
        }
        replicas.Add(leader);
        var chosen = Selector.Select(partition.TopicPartition, clientRack, replicas, leader);
        return chosen is null || chosen == leader ? -1 : chosen.BrokerId;
    }

    // Upstream maybeIncrementLeaderHW: the smallest log end over the ISR (the leader's own included).
    private bool MaybeIncrementHighWatermarkLocked(Partition p, LeaderState ls)
    {
        long min = p.Log.LogEndOffset;
        foreach (var r in p.IsrNodes ?? [])
        {
            if (r == BrokerId) continue;
            if (!ls.Followers.TryGetValue(r, out var f) || f.LogEndOffset < 0) return false;
            min = Math.Min(min, f.LogEndOffset);
        }
        return p.Log.MaybeIncrementHighWatermark(min);
    }

    private void OnHighWatermarkMoved(Partition p)
    {
        ProducePurgatory.CheckAndComplete(p.TopicPartition);
        _broker.FetchPurgatory.CheckAndComplete(p.TopicPartition);
    }

    // Upstream maybeExpandIsr / isFollowerInSync: log end at or past the high watermark and past
    // the start of the current leader epoch.
    private void MaybeExpandIsrLocked(Partition p, LeaderState ls, int replicaId, FollowerState f)
    {
        var isr = p.IsrNodes ?? [];
        if (isr.Contains(replicaId) || ls.IsrWriteInFlight) return;
        // Upstream isReplicaIsrEligible (ZooKeeper mode): only a registered broker may join. A
        // stopping broker leaves /brokers/ids before its fetchers end; without this its last
        // fetches put it back into ISRs the controller just shrank.
        if (_broker.Cluster is { } cluster && !cluster.IsLive(replicaId)) return;
        if (f.LogEndOffset < p.Log.HighWatermark || f.LogEndOffset < ls.EpochStartOffset) return;
        var next = isr.Append(replicaId).ToList();
        _broker.Metrics?.IsrExpand();
        StartIsrWrite(p, ls, next, $"expand ISR of {p.TopicPartition} with {replicaId}");
    }

    private async Task IsrLoopAsync()
    {
        // Upstream checks every replica.lag.time.max.ms / 2.
        var period = TimeSpan.FromMilliseconds(Math.Max(50, LagTimeMaxMs / 2));
        while (!_stop.IsCancellationRequested)
        {
            try { await Task.Delay(period, _stop.Token); }
            catch (OperationCanceledException) { return; }
            try { MaybeShrinkIsrs(); }
            catch (Exception e) { _broker.Log($"ISR check failed: {e.Message}"); }
        }
    }

    private void MaybeShrinkIsrs()
    {
        long now = NowMs;
        lock (_gate)
        {
            foreach (var (tp, ls) in _leaders)
            {
                if (ls.IsrWriteInFlight) continue;
                var p = _broker.Replicas.GetPartition(tp.Topic, tp.Partition);
                if (p is null || !p.IsLeader || p.IsrNodes is not { } isr) continue;
                var outOfSync = isr.Where(r => r != BrokerId
                    && (!ls.Followers.TryGetValue(r, out var f) || now - f.LastCaughtUpMs > LagTimeMaxMs)).ToList();
                if (outOfSync.Count == 0) continue;
                var next = isr.Where(r => !outOfSync.Contains(r)).ToList();
                _broker.Metrics?.IsrShrink();
                StartIsrWrite(p, ls, next, $"shrink ISR of {tp}: [{string.Join(",", outOfSync)}] out of sync");
            }
        }
    }

    private void StartIsrWrite(Partition p, LeaderState ls, List<int> newIsr, string why)
    {
        var zk = _broker.Cluster?.Session;
        if (zk is null || ls.StateZkVersion < 0) return;
        ls.IsrWriteInFlight = true;
        int version = ls.StateZkVersion;
        var state = new ZkData.PartitionState(BrokerId, ls.Epoch, newIsr, _broker.Cluster!.View.ControllerId >= 0 ? ControllerEpochOf(p) : 0);
        _ = Task.Run(async () =>
        {
            try
            {
                var stat = await zk.SetDataAsync(ZkData.PartitionStatePath(p.Topic.Name, p.Index), ZkData.EncodePartitionState(state), version);
                lock (_gate)
                {
                    if (_leaders.TryGetValue(p.TopicPartition, out var cur) && ReferenceEquals(cur, ls))
                    {
                        ls.StateZkVersion = stat.Version;
                        p.IsrNodes = newIsr;
                        ls.IsrWriteInFlight = false;
                    }
                }
                _broker.Log($"broker {BrokerId}: {why} -> [{string.Join(",", newIsr)}]");
                await NotifyIsrChangeAsync(zk, p.TopicPartition);
                bool moved;
                lock (_gate) moved = _leaders.TryGetValue(p.TopicPartition, out var cur2) && MaybeIncrementHighWatermarkLocked(p, cur2);
                if (moved) OnHighWatermarkMoved(p);
                ProducePurgatory.CheckAndComplete(p.TopicPartition);
            }
            catch (KeeperException e)
            {
                // BadVersion: the controller changed the state first (new epoch or ISR); the next
                // view brings it and the check runs again (upstream: the update is retried from
                // the state re-read).
                _broker.Log($"broker {BrokerId}: ISR write for {p.TopicPartition} failed ({e.Code}); waiting for the next view");
                lock (_gate) ls.IsrWriteInFlight = false;
            }
        });
    }

    private int ControllerEpochOf(Partition p) =>
        _view.Topics.TryGetValue(p.Topic.Name, out var tv) && tv.States.TryGetValue(p.Index, out var e) ? e.State.ControllerEpoch : 0;

    // Upstream IsrChangeNotificationSequenceZNode: {"version":1,"partitions":[{"topic":..,"partition":..}]}.
    private static async Task NotifyIsrChangeAsync(KeeperClient zk, TopicPartition tp)
    {
        var doc = new JsonObject
        {
            ["version"] = 1,
            ["partitions"] = new JsonArray(new JsonObject { ["topic"] = tp.Topic, ["partition"] = tp.Partition }),
        };
        try
        {
            await zk.CreateAsync(ZkData.IsrChangeNotification + "/" + ZkData.IsrChangePrefix, Encoding.UTF8.GetBytes(doc.ToJsonString()),
                ZkClientSecurity.DefaultAcls(zk, ZkData.IsrChangeNotification), CreateMode.PersistentSequential);
        }
        catch (KeeperException) { /* a notification only speeds up other brokers' metadata; the state znode is what counts */ }
    }

    /// <summary>The follower positions the leader knows (tests and DescribeProducers-like tools).</summary>
    public IReadOnlyDictionary<int, long> FollowerLogEndOffsets(TopicPartition tp)
    {
        lock (_gate)
            return _leaders.TryGetValue(tp, out var ls)
                ? ls.Followers.ToDictionary(kv => kv.Key, kv => kv.Value.LogEndOffset)
                : new Dictionary<int, long>();
    }

    // ------------------------------------------------------------------ acks=all

    /// <summary>Waits until every partition's high watermark reached its required offset
    /// (upstream DelayedProduce), then sets each partition's outcome.</summary>
    public async Task AwaitReplicationAsync(IReadOnlyList<PendingAck> pending, int timeoutMs, CancellationToken ct, bool continueOnEventThread = false)
    {
        if (pending.Count == 0) return;
        var op = new DelayedProduce(this, pending, Math.Max(0, timeoutMs), continueOnEventThread);
        ProducePurgatory.TryCompleteElseWatch(op, pending.Select(x => x.Partition.TopicPartition).Distinct().ToList());
        try
        {
            await op.Completion.WaitAsync(ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // The producer's connection closed: nobody reads the answer, so stop watching now.
            op.Cancel();
            throw;
        }
    }

    /// <summary>Controlled shutdown: stop fetching for good, so that no leader adds this broker
    /// back to an ISR the controller is taking it out of (upstream sends the stopping broker
    /// StopReplica for the partitions it follows).</summary>
    public async Task StopFollowingAsync()
    {
        _stopFollowing = true;
        List<ReplicaFetcher> all;
        lock (_fetchers) { all = _fetchers.Values.ToList(); _fetchers.Clear(); }
        foreach (var f in all) await f.DisposeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        try { await _isrLoop; } catch (OperationCanceledException) { }
        List<ReplicaFetcher> all;
        lock (_fetchers) { all = _fetchers.Values.ToList(); _fetchers.Clear(); }
        foreach (var f in all) await f.DisposeAsync();
    }
}
