using Samsa.Kafka.Broker.Coordination;
using Samsa.Kafka.Broker.Groups;
using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Protocol;

namespace Samsa.Kafka.Broker.Transactions;

/// <summary>The coordinator's settings (upstream TransactionConfig / broker keys of the same names).</summary>
public sealed record TransactionCoordinatorConfig
{
    public int TransactionLogPartitions { get; init; } = 50;
    public short TransactionLogReplicationFactor { get; init; } = 3;
    public int TransactionLogSegmentBytes { get; init; } = 104857600;
    public int TransactionMaxTimeoutMs { get; init; } = 900000;
    public int TransactionalIdExpirationMs { get; init; } = 604800000;
    public int AbortTimedOutTransactionsIntervalMs { get; init; } = 10000;
    public int RemoveExpiredTransactionalIdsIntervalMs { get; init; } = 3600000;

    public static TransactionCoordinatorConfig From(Config.BrokerConfig c) => new()
    {
        TransactionLogPartitions = (int)c.Get("transaction.state.log.num.partitions")!,
        TransactionLogReplicationFactor = Convert.ToInt16(c.Get("transaction.state.log.replication.factor")!, System.Globalization.CultureInfo.InvariantCulture),
        TransactionLogSegmentBytes = (int)c.Get("transaction.state.log.segment.bytes")!,
        TransactionMaxTimeoutMs = (int)c.Get("transaction.max.timeout.ms")!,
        TransactionalIdExpirationMs = (int)c.Get("transactional.id.expiration.ms")!,
        AbortTimedOutTransactionsIntervalMs = (int)c.Get("transaction.abort.timed.out.transaction.cleanup.interval.ms")!,
        RemoveExpiredTransactionalIdsIntervalMs = (int)c.Get("transaction.remove.expired.transaction.cleanup.interval.ms")!,
    };
}

/// <summary>What the coordinator needs from the broker; a fake in state-machine tests.</summary>
public interface ITransactionEnvironment
{
    /// <summary>Appends one record to a partition of <c>__transaction_state</c> durably; the broker error.</summary>
    ErrorCode AppendState(int partition, byte[] key, byte[]? value);
    /// <summary>Writes a COMMIT or ABORT control batch for the producer to a partition: locally when this
    /// broker leads it, otherwise with WriteTxnMarkers to its leader. None once the marker is written
    /// and replicated to the partition's ISR; a retriable error while it is not (yet) —
    /// REQUEST_TIMED_OUT while it is on its way — and the coordinator retries the completion.</summary>
    ErrorCode WriteMarker(TopicPartition partition, long producerId, short producerEpoch, int coordinatorEpoch, bool commit);
    /// <summary>As above, with the transaction's version (KIP-1228: WriteTxnMarkers v2's
    /// TransactionVersion; the leader checks the marker's epoch by it).</summary>
    ErrorCode WriteMarker(TopicPartition partition, long producerId, short producerEpoch, int coordinatorEpoch, bool commit, short transactionVersion) =>
        WriteMarker(partition, producerId, producerEpoch, coordinatorEpoch, commit);
    /// <summary>Whether a data partition exists (AddPartitionsToTxn answers UNKNOWN_TOPIC_OR_PARTITION otherwise).</summary>
    bool PartitionExists(TopicPartition partition);
    /// <summary>The __consumer_offsets partition of a group (AddOffsetsToTxn).</summary>
    TopicPartition? OffsetsPartitionFor(string groupId);
}

public readonly record struct InitProducerIdResult(ErrorCode Error, long ProducerId, short ProducerEpoch);

/// <summary>EndTxn's answer: the error and (v5, transaction version 2) the producer id and epoch the
/// producer continues with.</summary>
public readonly record struct EndTxnResult(ErrorCode Error, long ProducerId, short ProducerEpoch);

/// <summary>A transactional id as DescribeTransactions / ListTransactions show it.</summary>
public sealed record TransactionDescription(string TransactionalId, TransactionState State, long ProducerId, short ProducerEpoch,
    int TimeoutMs, long StartTimestamp, IReadOnlyList<TopicPartition> Partitions);

/// <summary>
/// The transaction coordinator (KIP-98), as upstream's TransactionCoordinator with transaction
/// versions 1 and 2 (KIP-890 part 2: EndTxn v5 bumps the epoch of every transaction; partition
/// leaders verify, and for version 2 producers add, partitions through <see cref="VerifyPartitions"/> /
/// <see cref="AddPartitionsFromBroker"/>): one state machine per transactional id, every transition written
/// to <c>__transaction_state</c> (partition = hash of the id) before it takes effect, the state
/// rebuilt by replaying those records. Markers for partitions this broker leads are appended inside
/// EndTxn; those for partitions led elsewhere go out over WriteTxnMarkers. Either way a marker counts
/// only once the partition's ISR has it (upstream appends markers with acks=-1), and the transaction
/// stays in PrepareCommit/PrepareAbort until every marker is confirmed (or, after a failover, until
/// the new coordinator's load completes it).
/// Single-threaded under one lock: the handlers, the timeout ticker and loading all go through it.
/// </summary>
public sealed class TransactionCoordinator : Coordination.ICoordinatorShards<TransactionLogEntry>
{
    private readonly object _gate = new();
    private readonly Dictionary<string, TransactionMetadata> _transactions = new(StringComparer.Ordinal);
    private readonly ITransactionEnvironment _env;
    private readonly ProducerIdManager _producerIds;
    private readonly Func<long> _clock;
    private readonly Action<string>? _logger;
    private readonly CoordinatorShardTable _shards = new(0);
    private long _lastAbortCheck;
    private long _lastExpirationCheck;

    public TransactionCoordinator(TransactionCoordinatorConfig config, ITransactionEnvironment env, ProducerIdManager producerIds,
        Func<long> clock, Action<string>? logger = null)
    {
        Config = config;
        _env = env;
        _producerIds = producerIds;
        _clock = clock;
        _logger = logger;
        _lastAbortCheck = _lastExpirationCheck = clock();
    }

    public TransactionCoordinatorConfig Config { get; }

    /// <summary>The cluster's finalized transaction.version (upstream
    /// TransactionStateManager.transactionVersionLevel(), read from the feature cache at each use).
    /// It picks the <c>__transaction_state</c> value version (0 at level 0, 1 from level 1) and the
    /// transaction version of aborts the coordinator starts itself (timeouts, a new producer
    /// instance's InitProducerId): upstream passes the server's level for those ("not from client").
    /// Requests never consult it: EndTxn v5, AddPartitionsToTxn v4+ (a broker adding for Produce
    /// v12+ / TxnOffsetCommit v5) are version 2 and older versions version 0 on any cluster
    /// (upstream TransactionVersion.transactionVersionForEndTxn / ForAddPartitionsToTxn); clients
    /// pick those versions from the finalized level they read in ApiVersions.</summary>
    public Func<short> TransactionVersionLevel { get; set; } = () => 2;

    // The coordinator epoch of each transaction log partition, written into its markers: the
    // partition's leader epoch when this broker took it over (upstream's coordinatorEpoch), 0 for a
    // single broker.
    private int CoordinatorEpochFor(int partition) => _shards.CoordinatorEpoch(partition);

    /// <summary>The transaction log has <paramref name="partitions"/> partitions; statuses of partitions
    /// that existed are kept, new ones start not owned.</summary>
    public void SetPartitionCount(int partitions)
    {
        lock (_gate) _shards.Resize(partitions);
    }

    /// <summary>This broker became the leader of a transaction log partition (upstream
    /// onElection / loadTransactionsForTxnTopicPartition): its ids answer COORDINATOR_LOAD_IN_PROGRESS
    /// until the load with the returned generation finishes. Null when already owned or loading.</summary>
    public int? BeginLoading(int partition, int coordinatorEpoch)
    {
        lock (_gate) return _shards.BeginLoading(partition, coordinatorEpoch);
    }

    /// <summary>This broker stopped leading a transaction log partition (upstream onResignation /
    /// removeTransactionsForTxnTopicPartition): its transactions are forgotten here; the new leader
    /// loads them and completes those half done.</summary>
    public void Unload(int partition)
    {
        lock (_gate)
        {
            if (!_shards.Unload(partition)) return;
            int removed = 0;
            foreach (var id in _transactions.Keys.Where(id => PartitionForLocked(id) == partition).ToList())
            {
                _transactions.Remove(id);
                removed++;
            }
            _logger?.Invoke($"unloaded {removed} transactional ids of {Cluster.TopicName.TransactionStateTopic}-{partition}: no longer its leader");
        }
    }

    /// <summary>As <see cref="LoadPartition(int, IEnumerable{TransactionLogEntry})"/> for a load begun by
    /// <see cref="BeginLoading"/>: ignored when leadership moved on meanwhile.</summary>
    public void LoadPartition(int partition, IEnumerable<TransactionLogEntry> entries, int generation)
    {
        lock (_gate)
        {
            if (!_shards.IsCurrentLoad(partition, generation)) return;
            LoadPartition(partition, entries);
        }
    }

    /// <summary>Completes every transaction of an owned partition that is decided but whose markers
    /// are not all written yet (upstream's marker channel retries until each is written).</summary>
    public void RetryCompletions()
    {
        lock (_gate)
        {
            long now = _clock();
            foreach (var m in _transactions.Values.ToList())
                if (m.State is TransactionState.PrepareCommit or TransactionState.PrepareAbort && CheckOwned(m.TransactionalId) is null)
                    CompleteTransaction(m, m.State == TransactionState.PrepareCommit, now);
        }
    }

    public bool IsActive { get { lock (_gate) return _shards.Count > 0; } }

    public int PartitionFor(string transactionalId)
    {
        lock (_gate) return GroupCoordinator.PartitionFor(transactionalId, Math.Max(1, _shards.Count));
    }

    /// <summary>The transaction log exists with this many partitions; when loading, each answers
    /// COORDINATOR_LOAD_IN_PROGRESS until <see cref="LoadPartition"/> ran for it.</summary>
    public void Activate(int partitions, bool loading)
    {
        lock (_gate)
        {
            _shards.Reset(partitions, loading ? ShardStatus.Loading : ShardStatus.Owned);
        }
    }

    /// <summary>Replays one partition of the transaction log (records in offset order): the last record
    /// of each id wins, a tombstone forgets it. Transactions found half-completed (PrepareCommit /
    /// PrepareAbort) are completed: markers are written again and the Complete state is logged.</summary>
    public void LoadPartition(int partition, IEnumerable<TransactionLogEntry> entries)
    {
        lock (_gate)
        {
            foreach (var id in _transactions.Keys.Where(id => PartitionForLocked(id) == partition).ToList()) _transactions.Remove(id);
            foreach (var e in entries)
            {
                if (e.Value is not { } v) { _transactions.Remove(e.TransactionalId); continue; }
                var m = _transactions.TryGetValue(e.TransactionalId, out var existing) ? existing : new TransactionMetadata(e.TransactionalId);
                m.ProducerId = v.ProducerId;
                m.ProducerEpoch = v.ProducerEpoch;
                m.LastProducerEpoch = -1;
                m.TxnTimeoutMs = v.TransactionTimeoutMs;
                m.State = Enum.IsDefined((TransactionState)v.TransactionStatus) ? (TransactionState)v.TransactionStatus : TransactionState.Dead;
                m.Partitions.Clear();
                m.MarkedPartitions.Clear();
                foreach (var tp in TransactionRecords.PartitionsOf(v)) m.Partitions.Add(tp);
                m.TxnLastUpdateTimestamp = v.TransactionLastUpdateTimestampMs;
                m.TxnStartTimestamp = v.TransactionStartTimestampMs;
                m.PreviousProducerId = v.PreviousProducerId;
                m.NextProducerId = v.NextProducerId;
                m.ClientTransactionVersion = v.ClientTransactionVersion;
                _transactions[e.TransactionalId] = m;
            }
            _shards.MarkOwned(partition);
            // Upstream's TransactionStateManager hands half-completed transactions to the marker
            // channel on load; here the markers are written right away.
            foreach (var m in _transactions.Values.Where(m => PartitionForLocked(m.TransactionalId) == partition).ToList())
            {
                if (m.State is TransactionState.PrepareCommit or TransactionState.PrepareAbort)
                    CompleteTransaction(m, m.State == TransactionState.PrepareCommit, _clock());
            }
        }
    }

    private int PartitionForLocked(string id) => GroupCoordinator.PartitionFor(id, Math.Max(1, _shards.Count));

    private ErrorCode? CheckOwned(string transactionalId)
    {
        if (_shards.Count == 0) return ErrorCode.CoordinatorNotAvailable;
        return _shards[PartitionForLocked(transactionalId)] switch
        {
            ShardStatus.Loading => ErrorCode.CoordinatorLoadInProgress,
            ShardStatus.NotOwned => ErrorCode.NotCoordinator,
            _ => null,
        };
    }

    // ------------------------------------------------------------------ InitProducerId

    /// <summary>
    /// InitProducerId (upstream handleInitProducerId). Without a transactional id: a fresh producer id,
    /// epoch 0. With one: the id's producer id with its epoch bumped (fencing any older producer of the
    /// same id); an open transaction is aborted first under a bumped epoch. With an expected producer
    /// id/epoch (v3+, KIP-360) a producer resumes after an error: a retry of a bump that already
    /// happened gets the same answer, anything else older is PRODUCER_FENCED.
    /// </summary>
    public InitProducerIdResult InitProducerId(string? transactionalId, int transactionTimeoutMs, long expectedProducerId = -1, short expectedProducerEpoch = -1)
    {
        try
        {
            return InitProducerIdCore(transactionalId, transactionTimeoutMs, expectedProducerId, expectedProducerEpoch);
        }
        catch (ProducerIdsUnavailableException e)
        {
            // Upstream answers COORDINATOR_LOAD_IN_PROGRESS while no producer id block is at hand;
            // the client retries.
            _logger?.Invoke($"InitProducerId: {e.Message}");
            return new InitProducerIdResult(ErrorCode.CoordinatorLoadInProgress, -1, -1);
        }
    }

    private InitProducerIdResult InitProducerIdCore(string? transactionalId, int transactionTimeoutMs, long expectedProducerId, short expectedProducerEpoch)
    {
        if (transactionalId is null)
            return new InitProducerIdResult(ErrorCode.None, _producerIds.Generate(), 0);
        if (transactionalId.Length == 0)
            return new InitProducerIdResult(ErrorCode.InvalidRequest, -1, -1);
        if (transactionTimeoutMs <= 0 || transactionTimeoutMs > Config.TransactionMaxTimeoutMs)
            return new InitProducerIdResult(ErrorCode.InvalidTransactionTimeout, -1, -1);
        bool hasExpected = expectedProducerId >= 0 || expectedProducerEpoch >= 0;
        lock (_gate)
        {
            if (CheckOwned(transactionalId) is { } owned) return new InitProducerIdResult(owned, -1, -1);
            long now = _clock();
            if (!_transactions.TryGetValue(transactionalId, out var m))
            {
                m = new TransactionMetadata(transactionalId)
                {
                    ProducerId = _producerIds.Generate(), ProducerEpoch = -1, TxnTimeoutMs = transactionTimeoutMs,
                    State = TransactionState.Empty, TxnLastUpdateTimestamp = now,
                };
                _transactions[transactionalId] = m;
            }
            if (hasExpected && !IsValidProducerId(m, expectedProducerId, expectedProducerEpoch))
                return new InitProducerIdResult(ErrorCode.ProducerFenced, -1, -1);
            switch (m.State)
            {
                case TransactionState.PrepareCommit or TransactionState.PrepareAbort:
                    return new InitProducerIdResult(ErrorCode.ConcurrentTransactions, -1, -1);
                case TransactionState.Dead or TransactionState.PrepareEpochFence:
                    return new InitProducerIdResult(ErrorCode.ConcurrentTransactions, -1, -1);
                case TransactionState.Ongoing:
                    // Fence the current producer: abort its transaction under a bumped epoch, so its
                    // later writes and EndTxn are refused (upstream prepareFenceProducerEpoch).
                    var fenceError = FenceAndAbort(m, now);
                    if (fenceError != ErrorCode.None) return new InitProducerIdResult(fenceError, -1, -1);
                    break;
            }
            // Empty / CompleteCommit / CompleteAbort: bump the epoch, or rotate the producer id once
            // the epoch is exhausted.
            var previous = Snapshot(m);
            if (m.IsEpochExhausted && (!hasExpected || expectedProducerEpoch == m.ProducerEpoch))
            {
                long rotated = _producerIds.Generate();
                m.PreviousProducerId = m.ProducerId;
                m.ProducerId = rotated;
                m.LastProducerEpoch = -1;
                m.ProducerEpoch = 0;
            }
            else if (!hasExpected)
            {
                m.LastProducerEpoch = -1;
                m.ProducerEpoch = (short)(m.ProducerEpoch + 1);
            }
            else if (m.ProducerEpoch == -1 || expectedProducerEpoch == m.ProducerEpoch)
            {
                // The producer continues after an error and nobody else took over: bump.
                m.LastProducerEpoch = m.ProducerEpoch;
                m.ProducerEpoch = (short)(m.ProducerEpoch + 1);
            }
            else if (expectedProducerEpoch == m.LastProducerEpoch)
            {
                // A retry of a bump that already succeeded: answer with the epoch it got.
                return new InitProducerIdResult(ErrorCode.None, m.ProducerId, m.ProducerEpoch);
            }
            else
            {
                return new InitProducerIdResult(ErrorCode.ProducerFenced, -1, -1);
            }
            m.TxnTimeoutMs = transactionTimeoutMs;
            m.State = TransactionState.Empty;
            m.Partitions.Clear();
            m.TxnStartTimestamp = -1;
            m.TxnLastUpdateTimestamp = now;
            var error = Persist(m);
            if (error != ErrorCode.None)
            {
                Restore(m, previous);
                return new InitProducerIdResult(error, -1, -1);
            }
            return new InitProducerIdResult(ErrorCode.None, m.ProducerId, m.ProducerEpoch);
        }
    }

    // Upstream isValidProducerId: the metadata was just created, the expected id is the current one
    // (its epoch is checked by the bump), or it is the previous id and its epoch was exhausted (a
    // retry of the rotation).
    private static bool IsValidProducerId(TransactionMetadata m, long producerId, short epoch) =>
        m.ProducerEpoch == -1 || producerId == m.ProducerId ||
        (producerId == m.PreviousProducerId && TransactionMetadata.IsEpochExhaustedValue(epoch));

    // ------------------------------------------------------------------ AddPartitionsToTxn / AddOffsetsToTxn

    /// <summary>AddPartitionsToTxn (v0-v3 client form): per partition the error. Unknown partitions get
    /// UNKNOWN_TOPIC_OR_PARTITION and the others OPERATION_NOT_ATTEMPTED, as upstream's KafkaApis does.</summary>
    public Dictionary<TopicPartition, ErrorCode> AddPartitionsToTxn(string transactionalId, long producerId, short producerEpoch,
        IReadOnlyCollection<TopicPartition> partitions)
    {
        var result = new Dictionary<TopicPartition, ErrorCode>();
        var unknown = partitions.Where(p => !_env.PartitionExists(p)).ToHashSet();
        if (unknown.Count > 0)
        {
            foreach (var p in partitions) result[p] = unknown.Contains(p) ? ErrorCode.UnknownTopicOrPartition : ErrorCode.OperationNotAttempted;
            return result;
        }
        var error = AddPartitions(transactionalId, producerId, producerEpoch, partitions, clientTransactionVersion: 0);
        foreach (var p in partitions) result[p] = error;
        return result;
    }

    /// <summary>
    /// AddPartitionsToTxn v4+ with VerifyOnly (upstream handleVerifyPartitionsInTransaction, KIP-890
    /// part 1): whether each partition is part of the producer's open transaction — NONE when it is,
    /// TRANSACTION_ABORTABLE when not (the partition leader turns that into INVALID_TXN_STATE for
    /// older clients). The whole request fails with INVALID_PRODUCER_ID_MAPPING (unknown id, other
    /// producer id), PRODUCER_FENCED (other epoch), CONCURRENT_TRANSACTIONS (the previous transaction
    /// is completing) or the ownership errors. Nothing is written.
    /// </summary>
    public Dictionary<TopicPartition, ErrorCode> VerifyPartitions(string transactionalId, long producerId, short producerEpoch,
        IReadOnlyCollection<TopicPartition> partitions)
    {
        ErrorCode all;
        lock (_gate)
        {
            if (string.IsNullOrEmpty(transactionalId)) all = ErrorCode.InvalidRequest;
            else if (CheckOwned(transactionalId) is { } owned) all = owned;
            else if (!_transactions.TryGetValue(transactionalId, out var m) || m.ProducerId != producerId) all = ErrorCode.InvalidProducerIdMapping;
            else if (m.ProducerEpoch != producerEpoch) all = ErrorCode.ProducerFenced;
            else if (m.State is TransactionState.PrepareCommit or TransactionState.PrepareAbort) all = ErrorCode.ConcurrentTransactions;
            else
            {
                // Partitions are members only while the transaction is open (they are cleared at completion).
                bool open = m.State == TransactionState.Ongoing;
                return partitions.Distinct().ToDictionary(tp => tp, tp => open && m.Partitions.Contains(tp) ? ErrorCode.None : ErrorCode.TransactionAbortable);
            }
        }
        return partitions.Distinct().ToDictionary(tp => tp, _ => all);
    }

    /// <summary>
    /// AddPartitionsToTxn v4+ without VerifyOnly: a partition leader adds partitions on behalf of a
    /// transaction version 2 producer, which sends no AddPartitionsToTxn itself (Produce v12+,
    /// TxnOffsetCommit v5; upstream KafkaApis passes TV_2 for these). The first add starts the
    /// transaction, as the client form does.
    /// </summary>
    public ErrorCode AddPartitionsFromBroker(string transactionalId, long producerId, short producerEpoch, IReadOnlyCollection<TopicPartition> partitions)
    {
        if (string.IsNullOrEmpty(transactionalId)) return ErrorCode.InvalidRequest;
        return AddPartitions(transactionalId, producerId, producerEpoch, partitions, clientTransactionVersion: 2);
    }

    /// <summary>AddOffsetsToTxn: adds the group's __consumer_offsets partition to the transaction.</summary>
    public ErrorCode AddOffsetsToTxn(string transactionalId, long producerId, short producerEpoch, string groupId)
    {
        if (_env.OffsetsPartitionFor(groupId) is not { } tp) return ErrorCode.CoordinatorNotAvailable;
        return AddPartitions(transactionalId, producerId, producerEpoch, [tp], clientTransactionVersion: 0);
    }

    private ErrorCode AddPartitions(string transactionalId, long producerId, short producerEpoch, IReadOnlyCollection<TopicPartition> partitions,
        short clientTransactionVersion)
    {
        lock (_gate)
        {
            if (CheckOwned(transactionalId) is { } owned) return owned;
            if (!_transactions.TryGetValue(transactionalId, out var m) || m.ProducerId != producerId) return ErrorCode.InvalidProducerIdMapping;
            if (m.ProducerEpoch != producerEpoch) return ErrorCode.ProducerFenced;
            if (m.State is TransactionState.PrepareCommit or TransactionState.PrepareAbort) return ErrorCode.ConcurrentTransactions;
            if (m.State is TransactionState.Dead or TransactionState.PrepareEpochFence) return ErrorCode.InvalidTxnState;
            if (m.State == TransactionState.Ongoing && partitions.All(m.Partitions.Contains)) return ErrorCode.None;
            long now = _clock();
            var previous = Snapshot(m);
            if (m.State != TransactionState.Ongoing)
            {
                m.TxnStartTimestamp = now;
                m.Partitions.Clear();
                // The transaction version is fixed by the request that starts the transaction
                // (upstream prepareAddPartitions keeps the client's version).
                m.ClientTransactionVersion = clientTransactionVersion;
            }
            else if (clientTransactionVersion > m.ClientTransactionVersion)
                m.ClientTransactionVersion = clientTransactionVersion;
            m.State = TransactionState.Ongoing;
            foreach (var p in partitions) m.Partitions.Add(p);
            m.TxnLastUpdateTimestamp = now;
            var error = Persist(m);
            if (error != ErrorCode.None) Restore(m, previous);
            return error;
        }
    }

    // ------------------------------------------------------------------ TxnOffsetCommit

    /// <summary>
    /// TxnOffsetCommit, when this broker also coordinates the transactional id: the producer must be
    /// the id's current one (INVALID_PRODUCER_ID_MAPPING / PRODUCER_FENCED otherwise) and the group's
    /// offsets partition part of the open transaction (AddOffsetsToTxn first; INVALID_TXN_STATE
    /// otherwise). Null when another broker coordinates the id (nothing to check here). The offsets
    /// themselves wait in the group coordinator for the transaction's marker.
    /// </summary>
    public ErrorCode? ValidateTxnOffsetCommit(string transactionalId, long producerId, short producerEpoch, string groupId)
    {
        lock (_gate)
        {
            // The transactional id is coordinated by another broker: the group coordinator cannot
            // check it (upstream's group coordinator does not either; the producer's epoch is
            // checked when the marker arrives).
            if (CheckOwned(transactionalId) is not null) return null;
            if (!_transactions.TryGetValue(transactionalId, out var m) || m.ProducerId != producerId) return ErrorCode.InvalidProducerIdMapping;
            if (m.ProducerEpoch != producerEpoch) return ErrorCode.ProducerFenced;
            if (m.State != TransactionState.Ongoing || _env.OffsetsPartitionFor(groupId) is not { } tp || !m.Partitions.Contains(tp))
                return ErrorCode.InvalidTxnState;
            return ErrorCode.None;
        }
    }

    // ------------------------------------------------------------------ EndTxn

    /// <summary>EndTxn v0-v4 (transaction version 1), see <see cref="EndTxn(string, long, short, bool, short)"/>.</summary>
    public ErrorCode EndTxn(string transactionalId, long producerId, short producerEpoch, bool commit) =>
        EndTxn(transactionalId, producerId, producerEpoch, commit, clientTransactionVersion: 0).Error;

    /// <summary>
    /// EndTxn (upstream handleEndTransaction): commits or aborts the open transaction — PrepareX
    /// logged, markers written to every partition, offsets applied, CompleteX logged. A retry after
    /// completion answers NONE; the opposite outcome INVALID_TXN_STATE.
    /// With transaction version 2 (EndTxn v5, KIP-890 part 2) the epoch is bumped as the transaction
    /// ends: PrepareX is logged with epoch + 1, the markers carry it (so a late write of the ended
    /// transaction is fenced at the partition), and the answer gives the producer the new epoch — or,
    /// when the epoch is exhausted, a new producer id with epoch 0. A retry is recognised by the
    /// epoch one below the current one (or the previous producer id after a rotation) and answered
    /// with the current producer id and epoch.
    /// </summary>
    public EndTxnResult EndTxn(string transactionalId, long producerId, short producerEpoch, bool commit, short clientTransactionVersion)
    {
        lock (_gate)
        {
            if (string.IsNullOrEmpty(transactionalId)) return new EndTxnResult(ErrorCode.InvalidRequest, -1, -1);
            if (CheckOwned(transactionalId) is { } owned) return new EndTxnResult(owned, -1, -1);
            if (!_transactions.TryGetValue(transactionalId, out var m)) return new EndTxnResult(ErrorCode.InvalidProducerIdMapping, -1, -1);
            bool tv2State = m.SupportsEpochBump;
            bool retryOnOverflow = tv2State && m.PreviousProducerId == producerId && producerEpoch == short.MaxValue - 1 && m.ProducerEpoch == 0;
            bool retryOnBump = tv2State && m.ProducerId == producerId && m.ProducerEpoch == producerEpoch + 1;
            if (m.ProducerId != producerId && !retryOnOverflow) return new EndTxnResult(ErrorCode.InvalidProducerIdMapping, -1, -1);
            bool validEpoch = !tv2State
                ? producerEpoch == m.ProducerEpoch
                : m.State switch
                {
                    // With version 2 the same epoch means "end the current transaction"; a retry of
                    // an ended one carries the epoch before the bump (upstream endTransaction).
                    TransactionState.PrepareCommit or TransactionState.PrepareAbort => retryOnBump,
                    TransactionState.CompleteCommit or TransactionState.CompleteAbort => retryOnBump || retryOnOverflow,
                    _ => producerEpoch == m.ProducerEpoch,
                };
            if (!validEpoch) return new EndTxnResult(ErrorCode.ProducerFenced, -1, -1);
            ErrorCode error;
            switch (m.State)
            {
                case TransactionState.Ongoing:
                    error = EndOngoing(m, commit, _clock(), bumpEpoch: clientTransactionVersion >= 2, clientTransactionVersion);
                    if (error != ErrorCode.None) return new EndTxnResult(error, -1, -1);
                    return new EndTxnResult(ErrorCode.None, m.ProducerId, m.ProducerEpoch);
                case TransactionState.CompleteCommit:
                    error = commit ? ErrorCode.None : ErrorCode.InvalidTxnState;
                    break;
                case TransactionState.CompleteAbort:
                    // A commit at the retry epoch of a version 2 transaction the coordinator aborted
                    // itself (timeout, new producer instance) comes from the fenced producer, not from a
                    // retry (a retry repeats its first outcome): PRODUCER_FENCED, which clients recover
                    // from, rather than the fatal INVALID_TXN_STATE (upstream KAFKA-20785).
                    error = !commit ? ErrorCode.None
                        : tv2State && producerEpoch != m.ProducerEpoch ? ErrorCode.ProducerFenced
                        : ErrorCode.InvalidTxnState;
                    break;
                case TransactionState.PrepareCommit:
                    error = commit ? ErrorCode.ConcurrentTransactions : ErrorCode.InvalidTxnState;
                    break;
                case TransactionState.PrepareAbort:
                    error = commit ? ErrorCode.InvalidTxnState : ErrorCode.ConcurrentTransactions;
                    break;
                default:
                    error = ErrorCode.InvalidTxnState;
                    break;
            }
            return error == ErrorCode.None ? new EndTxnResult(error, m.ProducerId, m.ProducerEpoch) : new EndTxnResult(error, -1, -1);
        }
    }

    private ErrorCode EndOngoing(TransactionMetadata m, bool commit, long now, bool bumpEpoch = false, short clientTransactionVersion = -1,
        bool rotateIfExhausted = false)
    {
        var previous = Snapshot(m);
        if (clientTransactionVersion >= 0) m.ClientTransactionVersion = clientTransactionVersion;
        // KIP-890 part 2 (upstream prepareAbortOrCommit with TV_2): the decision is logged under
        // epoch + 1; an exhausted epoch (>= Short.MaxValue - 1) is bumped to Short.MaxValue for the
        // markers and the producer continues under a fresh producer id.
        if ((bumpEpoch || rotateIfExhausted) && m.IsEpochExhausted)
        {
            try
            {
                m.NextProducerId = _producerIds.Generate();
            }
            catch (ProducerIdsUnavailableException e)
            {
                _logger?.Invoke($"EndTxn: {e.Message}");
                Restore(m, previous);
                return ErrorCode.CoordinatorLoadInProgress;
            }
        }
        if (bumpEpoch)
        {
            m.LastProducerEpoch = m.ProducerEpoch;
            m.ProducerEpoch = (short)(m.ProducerEpoch + 1);
        }
        m.State = commit ? TransactionState.PrepareCommit : TransactionState.PrepareAbort;
        m.TxnLastUpdateTimestamp = now;
        var error = Persist(m);
        if (error != ErrorCode.None)
        {
            Restore(m, previous);
            return error;
        }
        // The decision is durable: from here on the transaction completes, now or when the log is reloaded.
        m.MarkedPartitions.Clear();
        return CompleteTransaction(m, commit, now);
    }

    // Writes the markers and logs CompleteCommit/CompleteAbort. A marker that cannot be written leaves
    // the transaction in its Prepare state; the next tick retries (upstream's marker channel retries too).
    private ErrorCode CompleteTransaction(TransactionMetadata m, bool commit, long now)
    {
        bool pendingMarkers = false;
        foreach (var tp in m.Partitions.OrderBy(p => p.Topic, StringComparer.Ordinal).ThenBy(p => p.Partition))
        {
            // A marker on a group's __consumer_offsets partition completes the offsets its coordinator
            // holds for this producer (applied on COMMIT, dropped on ABORT).
            if (m.MarkedPartitions.Contains(tp)) continue;
            var markerError = _env.WriteMarker(tp, m.ProducerId, m.ProducerEpoch, CoordinatorEpochFor(PartitionForLocked(m.TransactionalId)), commit,
                m.ClientTransactionVersion);
            if (markerError is ErrorCode.None or ErrorCode.UnknownTopicOrPartition) m.MarkedPartitions.Add(tp);
            else
            {
                // RequestTimedOut: the marker is on its way to another broker's partition.
                if (markerError != ErrorCode.RequestTimedOut)
                    _logger?.Invoke($"transaction {m.TransactionalId}: marker for {tp} failed with {markerError}; will retry");
                pendingMarkers = true;
            }
        }
        if (pendingMarkers) return ErrorCode.None;
        m.MarkedPartitions.Clear();
        var beforeComplete = Snapshot(m);
        m.State = commit ? TransactionState.CompleteCommit : TransactionState.CompleteAbort;
        m.TxnLastUpdateTimestamp = now;
        if (m.NextProducerId >= 0)
        {
            // Transaction version 2 with an exhausted epoch: the markers went out under the old id;
            // the producer continues under the new one (upstream prepareComplete).
            m.PreviousProducerId = m.ProducerId;
            m.ProducerId = m.NextProducerId;
            m.NextProducerId = -1;
            m.LastProducerEpoch = -1;
            m.ProducerEpoch = 0;
        }
        var error = Persist(m);
        if (error != ErrorCode.None)
        {
            // The markers are written; the Complete record is retried by the tick.
            Restore(m, beforeComplete);
            _logger?.Invoke($"transaction {m.TransactionalId}: logging completion failed with {error}; will retry");
            return ErrorCode.None;
        }
        m.Partitions.Clear();
        return ErrorCode.None;
    }

    // Aborts an open transaction under a bumped epoch (timeouts, and InitProducerId of a new producer
    // instance): the old producer instance is fenced (upstream prepareFenceProducerEpoch, then
    // endTransaction with isFromClient = false). The abort runs under the cluster's finalized
    // transaction.version, as upstream passes the server's level there, and the transaction is
    // recorded with that version. The epoch moves by one at every level: upstream 4.0 bumped a second
    // time at level 2 (prepareAbortOrCommit with TV_2), which KAFKA-19367 removed. The fence stops at
    // Short.MaxValue (prepareFenceProducerEpoch); at level 2 an exhausted epoch also draws the producer
    // id the producer continues under once the markers are written (KAFKA-20090); below level 2 the
    // next InitProducerId rotates it.
    private ErrorCode FenceAndAbort(TransactionMetadata m, long now)
    {
        short level = TransactionVersionLevel();
        var previous = Snapshot(m);
        if (m.ProducerEpoch < short.MaxValue)
        {
            m.ProducerEpoch = (short)(m.ProducerEpoch + 1);
            m.LastProducerEpoch = -1;
        }
        var error = EndOngoing(m, commit: false, now, bumpEpoch: false, clientTransactionVersion: level, rotateIfExhausted: level >= 2);
        if (error != ErrorCode.None) Restore(m, previous);
        return error;
    }

    // ------------------------------------------------------------------ timers

    /// <summary>Runs the periodic work: aborts transactions open longer than their timeout
    /// (transaction.abort.timed.out.transaction.cleanup.interval.ms), retries unfinished completions,
    /// and forgets ids idle longer than transactional.id.expiration.ms (a tombstone is logged).</summary>
    public void Tick()
    {
        lock (_gate)
        {
            RetryCompletions();
            long now = _clock();
            if (now - _lastAbortCheck >= Config.AbortTimedOutTransactionsIntervalMs)
            {
                _lastAbortCheck = now;
                foreach (var m in _transactions.Values.ToList())
                {
                    if (CheckOwned(m.TransactionalId) is not null) continue;
                    if (m.State == TransactionState.Ongoing && m.TxnStartTimestamp + m.TxnTimeoutMs < now)
                    {
                        _logger?.Invoke($"aborting transaction {m.TransactionalId} (producer {m.ProducerId}) open longer than its timeout of {m.TxnTimeoutMs} ms");
                        FenceAndAbort(m, now);
                    }
                    else if (m.State is TransactionState.PrepareCommit or TransactionState.PrepareAbort)
                    {
                        CompleteTransaction(m, m.State == TransactionState.PrepareCommit, now);
                    }
                }
            }
            if (now - _lastExpirationCheck >= Config.RemoveExpiredTransactionalIdsIntervalMs)
            {
                _lastExpirationCheck = now;
                foreach (var m in _transactions.Values.ToList())
                {
                    if (CheckOwned(m.TransactionalId) is not null) continue;
                    if (m.State is TransactionState.Empty or TransactionState.CompleteCommit or TransactionState.CompleteAbort
                        && m.TxnLastUpdateTimestamp + Config.TransactionalIdExpirationMs <= now)
                    {
                        if (_env.AppendState(PartitionForLocked(m.TransactionalId), TransactionRecords.Key(m.TransactionalId), null) == ErrorCode.None)
                            _transactions.Remove(m.TransactionalId);
                    }
                }
            }
        }
    }

    public IDisposable StartTicking(TimeSpan period) =>
        new Timer(_ =>
        {
            try { Tick(); }
            catch (Exception e) { _logger?.Invoke($"transaction coordinator tick failed: {e}"); }
        }, null, period, period);

    // ------------------------------------------------------------------ describe / list

    /// <summary>DescribeTransactions: the id's state, or TRANSACTIONAL_ID_NOT_FOUND.</summary>
    public (ErrorCode Error, TransactionDescription? Description) Describe(string transactionalId)
    {
        lock (_gate)
        {
            if (CheckOwned(transactionalId) is { } owned) return (owned, null);
            if (!_transactions.TryGetValue(transactionalId, out var m)) return (ErrorCode.TransactionalIdNotFound, null);
            return (ErrorCode.None, Describe(m));
        }
    }

    /// <summary>ListTransactions: ids filtered by state, producer id and (v1, KIP-994) minimum running time.</summary>
    public (ErrorCode Error, List<TransactionDescription> Transactions) List(IReadOnlyCollection<TransactionState>? states,
        IReadOnlyCollection<long>? producerIds, long durationFilterMs)
    {
        lock (_gate)
        {
            if (_shards.Count == 0) return (ErrorCode.None, []);
            if (_shards.AnyLoading) return (ErrorCode.CoordinatorLoadInProgress, []);
            long now = _clock();
            var list = _transactions.Values
                .Where(m => states is not { Count: > 0 } || states.Contains(m.State))
                .Where(m => producerIds is not { Count: > 0 } || producerIds.Contains(m.ProducerId))
                .Where(m => durationFilterMs < 0 || (m.State == TransactionState.Ongoing && now - m.TxnStartTimestamp > durationFilterMs))
                .Select(Describe)
                .ToList();
            return (ErrorCode.None, list);
        }
    }

    private static TransactionDescription Describe(TransactionMetadata m) =>
        new(m.TransactionalId, m.State, m.ProducerId, m.ProducerEpoch, m.TxnTimeoutMs, m.TxnStartTimestamp,
            m.Partitions.OrderBy(p => p.Topic, StringComparer.Ordinal).ThenBy(p => p.Partition).ToList());

    /// <summary>Upstream's names of the states (DescribeTransactions / ListTransactions).</summary>
    public static string StateName(TransactionState s) => s.ToString();

    public static TransactionState? ParseState(string name) =>
        Enum.TryParse<TransactionState>(name, ignoreCase: false, out var s) && Enum.IsDefined(s) ? s : null;

    // ------------------------------------------------------------------ persistence helpers

    private ErrorCode Persist(TransactionMetadata m)
    {
        var error = _env.AppendState(PartitionForLocked(m.TransactionalId), TransactionRecords.Key(m.TransactionalId), TransactionRecords.Value(m, TransactionVersionLevel()));
        // Upstream maps log append errors for the client (TransactionStateManager.appendTransactionToLog).
        return error switch
        {
            ErrorCode.None => ErrorCode.None,
            ErrorCode.UnknownTopicOrPartition or ErrorCode.NotEnoughReplicas or ErrorCode.NotEnoughReplicasAfterAppend or ErrorCode.RequestTimedOut
                => ErrorCode.CoordinatorNotAvailable,
            ErrorCode.NotLeaderOrFollower or ErrorCode.KafkaStorageError => ErrorCode.NotCoordinator,
            _ => ErrorCode.UnknownServerError,
        };
    }

    private sealed record MetadataSnapshot(long ProducerId, long PreviousProducerId, short Epoch, short LastEpoch, int Timeout,
        TransactionState State, TopicPartition[] Partitions, long Start, long Update, short ClientTransactionVersion, long NextProducerId);

    private static MetadataSnapshot Snapshot(TransactionMetadata m) =>
        new(m.ProducerId, m.PreviousProducerId, m.ProducerEpoch, m.LastProducerEpoch, m.TxnTimeoutMs, m.State, m.Partitions.ToArray(),
            m.TxnStartTimestamp, m.TxnLastUpdateTimestamp, m.ClientTransactionVersion, m.NextProducerId);

    private static void Restore(TransactionMetadata m, MetadataSnapshot s)
    {
        m.ProducerId = s.ProducerId;
        m.PreviousProducerId = s.PreviousProducerId;
        m.ProducerEpoch = s.Epoch;
        m.LastProducerEpoch = s.LastEpoch;
        m.TxnTimeoutMs = s.Timeout;
        m.State = s.State;
        m.Partitions.Clear();
        foreach (var p in s.Partitions) m.Partitions.Add(p);
        m.TxnStartTimestamp = s.Start;
        m.TxnLastUpdateTimestamp = s.Update;
        m.ClientTransactionVersion = s.ClientTransactionVersion;
        m.NextProducerId = s.NextProducerId;
    }
}
