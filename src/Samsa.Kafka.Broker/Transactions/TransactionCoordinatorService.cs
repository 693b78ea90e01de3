using Samsa.Kafka.Broker.Cluster;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Broker.Coordination;
using Samsa.Kafka.Broker.Groups;
using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Records;

namespace Samsa.Kafka.Broker.Transactions;

/// <summary>
/// Runs the transaction coordinator inside the broker: creates <c>__transaction_state</c> on first
/// need (compacted, transaction.state.log.num.partitions / replication.factor / segment.bytes, as
/// upstream's AutoTopicCreationManager does), replays it when the broker starts, appends the
/// coordinator's records to it, writes transaction markers to the data partitions, and ticks the
/// timeouts. Producer ids come from <see cref="ProducerIdManager"/>, whose block file lives in the
/// first log directory.
/// </summary>
public sealed class TransactionCoordinatorService : IDisposable
{
    public const string ProducerIdBlockFile = "samsa-producer-id-block";
    private readonly ReplicaManager _replicas;
    private readonly GroupCoordinatorService _groups;
    private readonly Action<string>? _log;
    private readonly CoordinatorRuntime<TransactionLogEntry> _runtime;
    private IDisposable? _ticker;

    public TransactionCoordinatorService(BrokerConfig config, ReplicaManager replicas, GroupCoordinatorService groups, bool persistent,
        Action<string>? log = null, Func<long>? clock = null)
    {
        _replicas = replicas;
        _groups = groups;
        _log = log;
        _runtime = new CoordinatorRuntime<TransactionLogEntry>(replicas, TopicName.TransactionStateTopic,
            (key, value) => TransactionRecords.Decode(key, value is null ? null : new ReadOnlyMemory<byte>(value)), log);
        ProducerIds = new ProducerIdManager(persistent ? Path.Combine(config.LogDirs[0], ProducerIdBlockFile) : null);
        Coordinator = new TransactionCoordinator(TransactionCoordinatorConfig.From(config), new Environment(this), ProducerIds,
            clock ?? (() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()), log);
    }

    public TransactionCoordinator Coordinator { get; }
    public ProducerIdManager ProducerIds { get; }

    /// <summary>Loads the transaction log partitions this broker leads and starts the timers.</summary>
    /// <param name="loadNow">False in ZooKeeper mode: which partitions this broker leads is known
    /// only from the first applied cluster view, which then loads them.</param>
    public void Start(bool loadNow = true)
    {
        if (loadNow) SyncOwnership();
        int interval = Math.Clamp(Coordinator.Config.AbortTimedOutTransactionsIntervalMs, 10, 1000);
        _ticker = Coordinator.StartTicking(TimeSpan.FromMilliseconds(interval));
    }

    /// <summary>Serves the transactional ids of exactly the transaction log partitions this broker
    /// leads (after every applied cluster view in ZooKeeper mode).</summary>
    public void SyncOwnership() => _runtime.SyncOwnership(Coordinator);

    /// <summary>Makes sure the transaction log exists (FindCoordinator for a transactional id,
    /// InitProducerId, Metadata naming it): compacted, transaction.state.log.num.partitions /
    /// replication.factor / segment.bytes. COORDINATOR_NOT_AVAILABLE while it cannot be created
    /// (replication factor above the live brokers — set transaction.state.log.replication.factor=1)
    /// or is being created, as upstream.</summary>
    public (ErrorCode Error, string? Message) EnsureTransactionLog()
    {
        var cfg = Coordinator.Config;
        var configs = new Dictionary<string, string>
        {
            ["cleanup.policy"] = "compact",
            ["segment.bytes"] = cfg.TransactionLogSegmentBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["compression.type"] = "uncompressed",
        };
        return _runtime.EnsureTopic(cfg.TransactionLogPartitions, cfg.TransactionLogReplicationFactor, configs, SyncOwnership);
    }

    public void Dispose()
    {
        _ticker?.Dispose();
        _stop.Cancel();
        Markers?.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(2));
        Verifications?.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(2));
    }

    /// <summary>ZooKeeper mode: sends KIP-890 verifications to coordinators on other brokers.</summary>
    public TxnVerificationChannel? Verifications { get; private set; }

    /// <summary>
    /// KIP-890: asks the coordinator of <paramref name="transactionalId"/> whether the partitions are
    /// in the producer's transaction, or (<paramref name="add"/>, transaction version 2) to add them.
    /// The coordinator is the leader of the id's <c>__transaction_state</c> partition: this broker's
    /// own coordinator is called directly, another broker's over <see cref="Verifications"/>. The
    /// coordinator's error per partition (NONE, TRANSACTION_ABORTABLE for a partition not in the
    /// transaction, or the request's error for all).
    /// </summary>
    public async Task<Dictionary<TopicPartition, ErrorCode>> VerifyOrAddAsync(string transactionalId, long producerId, short producerEpoch,
        IReadOnlyCollection<TopicPartition> partitions, bool add, CancellationToken ct = default)
    {
        var txnPartition = _replicas.GetPartition(TopicName.TransactionStateTopic, Coordinator.PartitionFor(transactionalId));
        if (txnPartition is null || (!txnPartition.IsLeader && txnPartition.LeaderId is null))
            return partitions.Distinct().ToDictionary(tp => tp, _ => ErrorCode.CoordinatorNotAvailable);
        if (txnPartition.IsLeader && txnPartition.IsHostedLocally)
            return LocalVerifyOrAdd(transactionalId, producerId, producerEpoch, partitions, add);
        if (Verifications is not { } channel || txnPartition.LeaderId is not int leader)
            return partitions.Distinct().ToDictionary(tp => tp, _ => ErrorCode.NotCoordinator);
        return await channel.SendAsync(leader, transactionalId, producerId, producerEpoch, partitions, verifyOnly: !add).WaitAsync(ct);
    }

    /// <summary>The coordinator's side of <see cref="VerifyOrAddAsync"/> (also AddPartitionsToTxn v4+).</summary>
    public Dictionary<TopicPartition, ErrorCode> LocalVerifyOrAdd(string transactionalId, long producerId, short producerEpoch,
        IReadOnlyCollection<TopicPartition> partitions, bool add)
    {
        if (!add) return Coordinator.VerifyPartitions(transactionalId, producerId, producerEpoch, partitions);
        var error = Coordinator.AddPartitionsFromBroker(transactionalId, producerId, producerEpoch, partitions);
        return partitions.Distinct().ToDictionary(tp => tp, _ => error);
    }

    /// <summary>ZooKeeper mode: sends markers for partitions other brokers lead.</summary>
    public TxnMarkerChannel? Markers { get; private set; }

    /// <summary>Called when the broker joins a cluster: markers for partitions led elsewhere go to their
    /// leaders at these addresses.</summary>
    public void UseMarkerChannel(Func<int, (string Host, int Port)?> endpointOf,
        Func<string, int, string, CancellationToken, Task<Client.KafkaWireClient>>? connect = null)
    {
        Markers = new TxnMarkerChannel(endpointOf, _log, connect);
        Markers.CompletionDue += Coordinator.RetryCompletions;
        Verifications = new TxnVerificationChannel(endpointOf, _log, connect);
    }

    /// <summary>Appends a COMMIT or ABORT marker to a partition this broker leads (the coordinator's own
    /// markers and WriteTxnMarkers from other coordinators): the error, and the log end offset right
    /// after the marker, which the ISR must reach before the marker counts as written (see
    /// <see cref="MarkerReplication"/>). A marker on a group's <c>__consumer_offsets</c> partition
    /// completes the offsets that group's coordinator holds for the producer (upstream's
    /// GroupCoordinator.scheduleHandleTxnCompletion) once it is replicated (<see cref="AwaitMarkerAsync"/>):
    /// until then they stay pending, as upstream's coordinator runtime reads its state at the last
    /// committed offset. While that partition's groups are loading it answers
    /// NOT_LEADER_OR_FOLLOWER without appending. A data partition whose ISR is below
    /// min.insync.replicas refuses the marker before appending it (NOT_ENOUGH_REPLICAS), as upstream's
    /// acks=-1 append (Partition.appendRecordsToLeader); upstream's group coordinator appends to
    /// <c>__consumer_offsets</c> without that check and waits for the high watermark.</summary>
    /// <paramref name="transactionVersion"/>: the transaction's version (WriteTxnMarkers v2, KIP-1228):
    /// 2 refuses a marker whose epoch is not above the producer's (INVALID_PRODUCER_EPOCH) unless
    /// it repeats one already written; 0 and 1 refuse only an older epoch.
    public (ErrorCode Error, long EndOffset) AppendMarker(Partition p, long producerId, short producerEpoch, int coordinatorEpoch, bool commit,
        short transactionVersion = 0)
    {
        if (!p.IsLeader || !p.IsHostedLocally) return (ErrorCode.NotLeaderOrFollower, -1);
        bool offsets = p.Topic.Name == TopicName.GroupMetadataTopic;
        if (!offsets && (p.IsrNodes?.Count ?? 1) < p.Topic.LogConfig.MinInSyncReplicas) return (ErrorCode.NotEnoughReplicas, -1);
        // An offsets partition whose groups are still loading (a new leader replaying the log):
        // upstream's group coordinator refuses the marker (NOT_COORDINATOR /
        // COORDINATOR_LOAD_IN_PROGRESS, which KafkaApis turns into NOT_LEADER_OR_FOLLOWER) and the
        // transaction coordinator retries, so the marker completes offsets the load has read.
        if (offsets && !_groups.Coordinator.IsLoaded(p.Index)) return (ErrorCode.NotLeaderOrFollower, -1);
        var batch = ControlRecords.BuildEndTxnMarkerBatch(commit ? ControlRecordType.Commit : ControlRecordType.Abort,
            producerId, producerEpoch, coordinatorEpoch, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        ErrorCode error;
        LogAppendInfo info;
        try
        {
            (error, _, info, _) = _replicas.AppendMarker(p, batch, transactionVersion);
        }
        catch (IOException)
        {
            return (ErrorCode.KafkaStorageError, -1);
        }
        if (error != ErrorCode.None) return (error, -1);
        return (ErrorCode.None, info.LastOffset + 1);
    }

    /// <summary>Waits for the replication of a marker <see cref="AppendMarker"/> appended (see
    /// <see cref="MarkerReplication"/>); once replicated, a marker on <c>__consumer_offsets</c> makes the
    /// producer's transactional offsets there committed (COMMIT) or drops them (ABORT). A marker that
    /// is not replicated leaves them pending: the coordinator writes it again.</summary>
    public async Task<ErrorCode> AwaitMarkerAsync(Partition p, long endOffset, long producerId, bool commit, CancellationToken ct)
    {
        var error = await MarkerReplication(p, endOffset, ct).ConfigureAwait(false);
        if (error == ErrorCode.None && p.Topic.Name == TopicName.GroupMetadataTopic)
        {
            // Not on the thread that completed the replication wait.
            await Task.Yield();
            MarkerReplicated(p, producerId, commit);
        }
        return error;
    }

    private void MarkerReplicated(Partition p, long producerId, bool commit)
    {
        if (p.Topic.Name == TopicName.GroupMetadataTopic) _groups.Coordinator.CompleteTransactionalOffsets(p.Index, producerId, commit);
    }

    /// <summary>
    /// Waits until the in-sync replicas of a partition this broker leads reached an offset (a marker
    /// appended by <see cref="AppendMarker"/>), as upstream appends markers with acks=-1
    /// (KafkaApis.handleWriteTxnMarkersRequest): NONE, or the acks=-1 outcome —
    /// NOT_LEADER_OR_FOLLOWER when leadership moved, NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR
    /// fell below min.insync.replicas, REQUEST_TIMED_OUT after request.timeout.ms. The broker sets
    /// it (KafkaBroker.AwaitMarkerReplicationAsync); without one (a broker with no replication) a
    /// marker is written once appended.
    /// </summary>
    public Func<Partition, long, CancellationToken, Task<ErrorCode>> MarkerReplication { get; set; } =
        (_, _, _) => Task.FromResult(ErrorCode.None);

    private readonly record struct LocalMarker(TopicPartition Partition, long ProducerId, short ProducerEpoch, bool Commit);

    // The coordinator's own markers on partitions this broker leads, appended and waiting for the
    // ISR (the coordinator's completion answers REQUEST_TIMED_OUT for them meanwhile), and those
    // whose wait succeeded and that the coordinator's next completion attempt counts as written.
    private readonly object _localMarkersGate = new();
    private readonly HashSet<LocalMarker> _localInFlight = [];
    private readonly HashSet<LocalMarker> _localReplicated = [];
    private readonly CancellationTokenSource _stop = new();

    // The coordinator's marker for a partition this broker leads (called under the coordinator's
    // lock, so it must not block): appended once, then the ISR is awaited in the background and the
    // coordinator retries its completion when the wait ends — as upstream's coordinator sends even
    // its own broker WriteTxnMarkers and moves to CompleteCommit/CompleteAbort only once every
    // partition answered NONE (TransactionMarkerRequestCompletionHandler retries the others).
    private ErrorCode WriteLocalMarker(Partition p, long producerId, short producerEpoch, int coordinatorEpoch, bool commit, short transactionVersion)
    {
        var key = new LocalMarker(p.TopicPartition, producerId, producerEpoch, commit);
        bool replicated;
        lock (_localMarkersGate)
        {
            replicated = _localReplicated.Remove(key);
            if (!replicated && _localInFlight.Contains(key)) return ErrorCode.RequestTimedOut;
        }
        // A replicated marker whose transaction completed elsewhere (this broker lost the
        // transaction log partition meanwhile) must not count for a later transaction of the same
        // producer and epoch (transaction version 1 keeps the epoch): that one has records open in
        // the partition again and gets a marker of its own.
        if (replicated && !p.Log.HasOngoingTransaction(producerId, producerEpoch)) return ErrorCode.None;
        var (error, end) = AppendMarker(p, producerId, producerEpoch, coordinatorEpoch, commit, transactionVersion);
        if (error != ErrorCode.None) return error;
        var wait = MarkerReplication(p, end, _stop.Token);
        if (wait.IsCompletedSuccessfully)
        {
            if (wait.Result == ErrorCode.None) MarkerReplicated(p, producerId, commit);
            return wait.Result;
        }
        lock (_localMarkersGate) _localInFlight.Add(key);
        _ = FinishLocalMarkerAsync(p, key, wait);
        return ErrorCode.RequestTimedOut;
    }

    private async Task FinishLocalMarkerAsync(Partition p, LocalMarker key, Task<ErrorCode> wait)
    {
        ErrorCode result;
        try
        {
            result = await wait.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            lock (_localMarkersGate) _localInFlight.Remove(key);
            return;
        }
        catch (Exception e)
        {
            _log?.Invoke($"waiting for the transaction marker for {key.Partition} to replicate failed: {e.Message}");
            result = ErrorCode.UnknownServerError;
        }
        if (result != ErrorCode.None)
        {
            lock (_localMarkersGate) _localInFlight.Remove(key);
            // The next completion attempt (the coordinator's tick) writes the marker again, to
            // whichever broker leads the partition then.
            _log?.Invoke($"the transaction marker for {key.Partition} was not replicated: {result}; will retry");
            return;
        }
        // Off the thread that completed the wait (it may hold replication locks the group
        // coordinator and the transaction coordinator's completion must not run under). The
        // offsets the marker completes are committed before the transaction is.
        ThreadPool.QueueUserWorkItem(_ =>
        {
            MarkerReplicated(p, key.ProducerId, key.Commit);
            lock (_localMarkersGate)
            {
                _localInFlight.Remove(key);
                _localReplicated.Add(key);
            }
            if (!_stop.IsCancellationRequested) Coordinator.RetryCompletions();
        });
    }

    private sealed class Environment(TransactionCoordinatorService service) : ITransactionEnvironment
    {
        private ReplicaManager Replicas => service._replicas;

        public ErrorCode AppendState(int partition, byte[] key, byte[]? value) =>
            service._runtime.Append(partition, [new CoordinatorRecord(key, value)]);

        public ErrorCode WriteMarker(TopicPartition tp, long producerId, short producerEpoch, int coordinatorEpoch, bool commit) =>
            WriteMarker(tp, producerId, producerEpoch, coordinatorEpoch, commit, transactionVersion: 0);

        public ErrorCode WriteMarker(TopicPartition tp, long producerId, short producerEpoch, int coordinatorEpoch, bool commit, short transactionVersion)
        {
            var p = Replicas.GetPartition(tp.Topic, tp.Partition);
            if (p is null) return ErrorCode.UnknownTopicOrPartition;
            if (p.IsLeader && p.IsHostedLocally) return service.WriteLocalMarker(p, producerId, producerEpoch, coordinatorEpoch, commit, transactionVersion);
            if (service.Markers is not { } channel) return ErrorCode.NotLeaderOrFollower;
            return channel.Write(p.LeaderId ?? -1, tp, producerId, producerEpoch, coordinatorEpoch, commit, transactionVersion);
        }

        public bool PartitionExists(TopicPartition tp) => Replicas.GetPartition(tp.Topic, tp.Partition) is not null;

        public TopicPartition? OffsetsPartitionFor(string groupId)
        {
            if (service._groups.EnsureOffsetsTopic().Error != ErrorCode.None) return null;
            return new TopicPartition(TopicName.GroupMetadataTopic, service._groups.Coordinator.PartitionFor(groupId));
        }
    }
}
