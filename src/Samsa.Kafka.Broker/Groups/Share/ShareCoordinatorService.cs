using System.Globalization;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Cluster;
using Samsa.Kafka.Broker.Coordination;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Groups.Share;

/// <summary>
/// Runs the share coordinator inside the broker (upstream ShareCoordinatorService) and is the
/// share-partition leaders' persister (upstream DefaultStatePersister / PersisterStateManager):
/// - creates <c>__share_group_state</c> on first use, as upstream's AutoTopicCreationManager does
///   for internal topics: share.coordinator.state.topic.num.partitions (50), replication factor
///   share.coordinator.state.topic.replication.factor (3) — here capped by the live brokers, so a
///   single broker needs no override —, cleanup.policy=compact, segment.bytes
///   share.coordinator.state.topic.segment.bytes, min.insync.replicas
///   share.coordinator.state.topic.min.isr (2) capped by the replication factor;
/// - replays the partitions of it this broker leads (after every applied cluster view);
/// - answers Read / Write / Initialize / Delete / ReadSummary for one share-partition either here
///   (this broker leads its state partition) or by sending APIs 83-87 to the broker that does over
///   the inter-broker listener, retrying while the coordinator moves or loads.
/// </summary>
public sealed class ShareCoordinatorService : IAsyncDisposable
{
    public const string StateTopic = TopicName.ShareGroupStateTopic;

    private readonly KafkaBroker _broker;
    private readonly CoordinatorRuntime<ShareLogEntry> _runtime;
    private readonly Action<string>? _log;
    private readonly Dictionary<int, Peer> _peers = new();
    private readonly object _peersGate = new();

    public ShareCoordinatorService(KafkaBroker broker, Action<string>? log = null)
    {
        _broker = broker;
        _log = log;
        _runtime = new CoordinatorRuntime<ShareLogEntry>(broker.Replicas, StateTopic, ShareRecords.Decode, log);
        Partitions = Int("share.coordinator.state.topic.num.partitions", 50);
        ReplicationFactor = (short)Int("share.coordinator.state.topic.replication.factor", 3);
        SegmentBytes = Int("share.coordinator.state.topic.segment.bytes", 104857600);
        MinIsr = Int("share.coordinator.state.topic.min.isr", 2);
        Coordinator = new ShareCoordinator((p, records) => _runtime.Append(p, records),
            Int("share.coordinator.snapshot.update.records.per.snapshot", 500, allowZero: true), log: log);
    }

    private int Int(string key, int fallback, bool allowZero = false)
    {
        if (_broker.Config.GetString(key) is not { } s) return fallback;
        if (!int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) || v < (allowZero ? 0 : 1))
            throw new Config.ConfigValueException($"Invalid value {s} for configuration {key}: must be an integer of at least {(allowZero ? 0 : 1)}");
        return v;
    }

    public ShareCoordinator Coordinator { get; }
    public int Partitions { get; }
    public short ReplicationFactor { get; }
    public int SegmentBytes { get; }
    public int MinIsr { get; }

    /// <summary>How long a persister call keeps retrying a coordinator that moves, loads or is being
    /// created before it gives up with the last error.</summary>
    public TimeSpan RetryBudget { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>Serves exactly the state partitions this broker leads (start-up on a single broker,
    /// then every applied cluster view).</summary>
    public void SyncOwnership() => _runtime.SyncOwnership(Coordinator);

    /// <summary>Makes sure __share_group_state exists (FindCoordinator key type 2, first persister
    /// call); COORDINATOR_NOT_AVAILABLE while it is being created in a cluster.</summary>
    public ErrorCode EnsureStateTopic()
    {
        int live = _broker.Cluster?.LiveBrokers.Count ?? 1;
        short rf = (short)Math.Max(1, Math.Min(ReplicationFactor, live));
        var configs = new Dictionary<string, string>
        {
            ["cleanup.policy"] = "compact",
            ["segment.bytes"] = SegmentBytes.ToString(CultureInfo.InvariantCulture),
            ["min.insync.replicas"] = Math.Min(MinIsr, rf).ToString(CultureInfo.InvariantCulture),
            ["compression.type"] = "producer",
        };
        return _runtime.EnsureTopic(Partitions, rf, configs, SyncOwnership).Error;
    }

    /// <summary>The broker that coordinates <paramref name="key"/>'s state (the leader of its
    /// __share_group_state partition), or an error (FindCoordinator key type 2).</summary>
    public (ErrorCode Error, int BrokerId) Locate(SharePartitionKey key)
    {
        if (EnsureStateTopic() != ErrorCode.None) return (ErrorCode.CoordinatorNotAvailable, -1);
        var topic = _broker.Replicas.GetTopic(StateTopic);
        if (topic is null || topic.Partitions.Count == 0) return (ErrorCode.CoordinatorNotAvailable, -1);
        var partition = topic.Partitions[ShareCoordinator.PartitionFor(key, topic.Partitions.Count)];
        int leader = partition.LeaderId ?? _broker.BrokerId;
        // A broker that found the topic on disk (restart) before any cluster view or start-up sync
        // starts serving the partitions it leads now.
        if (leader == _broker.BrokerId && Coordinator.Status(key) is ErrorCode.NotCoordinator or ErrorCode.CoordinatorNotAvailable)
            SyncOwnership();
        return leader < 0 ? (ErrorCode.CoordinatorNotAvailable, -1) : (ErrorCode.None, leader);
    }

    /// <summary>
    /// Waits until what this coordinator appended to the key's state partition is committed (the
    /// high watermark reached the log end; min.insync.replicas checked), as upstream's coordinator
    /// runtime completes a write only once its records are committed. NONE at once on a single
    /// broker; REQUEST_TIMED_OUT / NOT_ENOUGH_REPLICAS_AFTER_APPEND / NOT_LEADER_OR_FOLLOWER otherwise.
    /// </summary>
    public async Task<ErrorCode> AwaitCommittedAsync(SharePartitionKey key, CancellationToken ct = default)
    {
        if (_broker.Replication is not { } replication) return ErrorCode.None;
        var topic = _broker.Replicas.GetTopic(StateTopic);
        if (topic is null || topic.Partitions.Count == 0) return ErrorCode.None;
        var partition = topic.Partitions[ShareCoordinator.PartitionFor(key, topic.Partitions.Count)];
        long required = partition.Log.LogEndOffset;
        if (partition.HighWatermark >= required) return ErrorCode.None;
        var outcome = new ProduceResponse.PartitionProduceResponse();
        await replication.AwaitReplicationAsync([new Replication.PendingAck(partition, required, outcome)], 5000, ct);
        return (ErrorCode)outcome.ErrorCode;
    }

    // ------------------------------------------------------------------ persister (leader side)

    /// <summary>ReadShareGroupState for one share-partition; state null when never initialized.</summary>
    public Task<(ErrorCode Error, ShareStateEntry? State)> ReadAsync(SharePartitionKey key, int leaderEpoch, CancellationToken ct = default) =>
        WithRetry(key, () => Coordinator.Read(key, leaderEpoch), async client =>
        {
            var r = await client.SendAsync<ReadShareGroupStateResponse>(new ReadShareGroupStateRequest
            {
                GroupId = key.GroupId,
                Topics = [new() { TopicId = key.TopicId, Partitions = [new() { Partition = key.Partition, LeaderEpoch = leaderEpoch }] }],
            }, 0, ct: ct);
            var p = r?.Results.SingleOrDefault()?.Partitions.SingleOrDefault() ?? throw new InvalidOperationException("empty answer");
            if (p.ErrorCode != 0) return ((ErrorCode)p.ErrorCode, null);
            if (p.StartOffset < 0) return (ErrorCode.None, null);
            return (ErrorCode.None, new ShareStateEntry
            {
                StateEpoch = p.StateEpoch, StartOffset = p.StartOffset, LeaderEpoch = leaderEpoch,
                Batches = p.StateBatches.Select(b => new StateBatch(b.FirstOffset, b.LastOffset, (RecordState)b.DeliveryState, b.DeliveryCount)).ToList(),
            });
        }, ct);

    /// <summary>ReadShareGroupStateSummary for one share-partition; state null when never initialized.</summary>
    public Task<(ErrorCode Error, ShareStateEntry? State)> SummaryAsync(SharePartitionKey key, CancellationToken ct = default) =>
        WithRetry(key, () => Coordinator.Summary(key), async client =>
        {
            var r = await client.SendAsync<ReadShareGroupStateSummaryResponse>(new ReadShareGroupStateSummaryRequest
            {
                GroupId = key.GroupId,
                Topics = [new() { TopicId = key.TopicId, Partitions = [new() { Partition = key.Partition, LeaderEpoch = -1 }] }],
            }, 1, ct: ct);
            var p = r?.Results.SingleOrDefault()?.Partitions.SingleOrDefault() ?? throw new InvalidOperationException("empty answer");
            if (p.ErrorCode != 0) return ((ErrorCode)p.ErrorCode, null);
            if (p.StartOffset < 0) return (ErrorCode.None, null);
            return (ErrorCode.None, new ShareStateEntry
            {
                StateEpoch = p.StateEpoch, LeaderEpoch = p.LeaderEpoch, StartOffset = p.StartOffset, DeliveryCompleteCount = p.DeliveryCompleteCount,
            });
        }, ct);

    /// <summary>WriteShareGroupState for one share-partition.</summary>
    public async Task<ErrorCode> WriteAsync(SharePartitionKey key, int stateEpoch, int leaderEpoch, long startOffset, int deliveryCompleteCount,
        IReadOnlyList<StateBatch> batches, CancellationToken ct = default)
    {
        var (error, _) = await WithRetry(key, () => (Coordinator.Write(key, stateEpoch, leaderEpoch, startOffset, deliveryCompleteCount, batches), (ShareStateEntry?)null),
            async client =>
            {
                var r = await client.SendAsync<WriteShareGroupStateResponse>(new WriteShareGroupStateRequest
                {
                    GroupId = key.GroupId,
                    Topics = [new() { TopicId = key.TopicId, Partitions = [new()
                    {
                        Partition = key.Partition, StateEpoch = stateEpoch, LeaderEpoch = leaderEpoch, StartOffset = startOffset,
                        DeliveryCompleteCount = deliveryCompleteCount,
                        StateBatches = batches.Select(b => new WriteShareGroupStateRequest.StateBatch
                        {
                            FirstOffset = b.FirstOffset, LastOffset = b.LastOffset, DeliveryState = (sbyte)b.State, DeliveryCount = b.DeliveryCount,
                        }).ToList(),
                    }] }],
                }, 1, ct: ct);
                var p = r?.Results.SingleOrDefault()?.Partitions.SingleOrDefault() ?? throw new InvalidOperationException("empty answer");
                return ((ErrorCode)p.ErrorCode, (ShareStateEntry?)null);
            }, ct);
        return error;
    }

    /// <summary>InitializeShareGroupState for one share-partition.</summary>
    public async Task<ErrorCode> InitializeAsync(SharePartitionKey key, int stateEpoch, long startOffset, CancellationToken ct = default)
    {
        var (error, _) = await WithRetry(key, () => (Coordinator.Initialize(key, stateEpoch, startOffset), (ShareStateEntry?)null), async client =>
        {
            var r = await client.SendAsync<InitializeShareGroupStateResponse>(new InitializeShareGroupStateRequest
            {
                GroupId = key.GroupId,
                Topics = [new() { TopicId = key.TopicId, Partitions = [new() { Partition = key.Partition, StateEpoch = stateEpoch, StartOffset = startOffset }] }],
            }, 0, ct: ct);
            var p = r?.Results.SingleOrDefault()?.Partitions.SingleOrDefault() ?? throw new InvalidOperationException("empty answer");
            return ((ErrorCode)p.ErrorCode, (ShareStateEntry?)null);
        }, ct);
        return error;
    }

    /// <summary>DeleteShareGroupState for one share-partition.</summary>
    public async Task<ErrorCode> DeleteAsync(SharePartitionKey key, CancellationToken ct = default)
    {
        var (error, _) = await WithRetry(key, () => (Coordinator.Delete(key), (ShareStateEntry?)null), async client =>
        {
            var r = await client.SendAsync<DeleteShareGroupStateResponse>(new DeleteShareGroupStateRequest
            {
                GroupId = key.GroupId,
                Topics = [new() { TopicId = key.TopicId, Partitions = [new() { Partition = key.Partition }] }],
            }, 0, ct: ct);
            var p = r?.Results.SingleOrDefault()?.Partitions.SingleOrDefault() ?? throw new InvalidOperationException("empty answer");
            return ((ErrorCode)p.ErrorCode, (ShareStateEntry?)null);
        }, ct);
        return error;
    }

    private static bool Retriable(ErrorCode e) =>
        e is ErrorCode.NotCoordinator or ErrorCode.CoordinatorNotAvailable or ErrorCode.CoordinatorLoadInProgress
            or ErrorCode.NotLeaderOrFollower or ErrorCode.RequestTimedOut or ErrorCode.NotEnoughReplicas or ErrorCode.NotEnoughReplicasAfterAppend;

    /// <summary>Runs one operation at the key's coordinator: here when this broker leads its state
    /// partition, else at that broker; retries (100 ms apart, up to <see cref="RetryBudget"/>) while
    /// the coordinator is being created, moves or loads, as upstream's PersisterStateManager does.</summary>
    private async Task<(ErrorCode Error, ShareStateEntry? State)> WithRetry(SharePartitionKey key,
        Func<(ErrorCode, ShareStateEntry?)> local, Func<KafkaWireClient, Task<(ErrorCode, ShareStateEntry?)>> remote, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + RetryBudget;
        (ErrorCode Error, ShareStateEntry? State) last = (ErrorCode.CoordinatorNotAvailable, null);
        while (true)
        {
            var (locateError, coordinator) = Locate(key);
            if (locateError != ErrorCode.None) last = (locateError, null);
            else if (coordinator == _broker.BrokerId)
            {
                last = local();
                // Answered once committed, as a remote coordinator answers (handlers await the same).
                if (last.Error == ErrorCode.None)
                {
                    var committed = await AwaitCommittedAsync(key, ct);
                    if (committed != ErrorCode.None) last = (committed, null);
                }
            }
            else
            {
                try
                {
                    last = await CallPeer(coordinator, remote, ct);
                }
                catch (Exception e) when (e is IOException or InvalidOperationException or System.Net.Sockets.SocketException
                    or Samsa.Kafka.Protocol.Primitives.KafkaProtocolException or TimeoutException
                    || (e is OperationCanceledException && !ct.IsCancellationRequested))
                {
                    DropPeer(coordinator);
                    last = (ErrorCode.CoordinatorNotAvailable, null);
                }
            }
            if (!Retriable(last.Error) || DateTime.UtcNow >= deadline) return last;
            await Task.Delay(100, ct);
        }
    }

    private sealed class Peer
    {
        public readonly SemaphoreSlim Gate = new(1, 1);
        public KafkaWireClient? Client;
    }

    // One connection per peer broker, one request at a time on it (the replies are matched in order).
    private async Task<(ErrorCode, ShareStateEntry?)> CallPeer(int brokerId, Func<KafkaWireClient, Task<(ErrorCode, ShareStateEntry?)>> call, CancellationToken ct)
    {
        Peer peer;
        lock (_peersGate) if (!_peers.TryGetValue(brokerId, out peer!)) _peers[brokerId] = peer = new Peer();
        await peer.Gate.WaitAsync(ct);
        try
        {
            if (peer.Client is null)
            {
                if (_broker.InterBroker.EndpointOf(brokerId) is not { } ep) throw new InvalidOperationException($"broker {brokerId} is not live");
                using var connectTimeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                connectTimeout.CancelAfter(TimeSpan.FromSeconds(5));
                peer.Client = await _broker.InterBroker.ConnectAsync(ep.Host, ep.Port, $"broker-{_broker.BrokerId}-share-persister", connectTimeout.Token);
            }
            var task = call(peer.Client);
            if (await Task.WhenAny(task, Task.Delay(TimeSpan.FromSeconds(10), ct)) != task)
                throw new TimeoutException($"broker {brokerId} did not answer the share state request");
            return await task;
        }
        finally
        {
            peer.Gate.Release();
        }
    }

    private void DropPeer(int brokerId)
    {
        Peer? peer;
        lock (_peersGate) if (_peers.Remove(brokerId, out peer)) { } else return;
        var client = peer.Client;
        peer.Client = null;
        if (client is not null) _ = client.DisposeAsync().AsTask().ContinueWith(_ => { }, TaskScheduler.Default);
    }

    public async ValueTask DisposeAsync()
    {
        List<Peer> peers;
        lock (_peersGate) { peers = _peers.Values.ToList(); _peers.Clear(); }
        foreach (var p in peers)
            if (p.Client is { } c) { try { await c.DisposeAsync(); } catch (Exception) { } }
    }
}
