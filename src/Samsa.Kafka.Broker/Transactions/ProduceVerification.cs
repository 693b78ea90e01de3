using Samsa.Kafka.Broker.Handlers;
using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Records;
using VerificationGuard = Samsa.Kafka.Storage.VerificationGuard;

namespace Samsa.Kafka.Broker.Transactions;

/// <summary>What a producer's request version lets the leader do and say (upstream
/// TransactionSupportedOperation, chosen from the Produce / TxnOffsetCommit version).</summary>
public enum TransactionSupportedOperation
{
    /// <summary>Produce v0-v10, TxnOffsetCommit v0-v3: verify only; the client knows no TRANSACTION_ABORTABLE.</summary>
    DefaultError,
    /// <summary>Produce v11, TxnOffsetCommit v4: verify only; TRANSACTION_ABORTABLE reaches the client.</summary>
    GenericErrorSupported,
    /// <summary>Produce v12+, TxnOffsetCommit v5+: a transaction version 2 producer, which sends no
    /// AddPartitionsToTxn itself — the leader adds the partition to the transaction.</summary>
    AddPartition,
}

/// <summary>
/// KIP-890 transactional produce verification (upstream ReplicaManager.handleProduceAppend with
/// AddPartitionsToTxnManager). Before a transactional batch is appended to a partition where the
/// producer has no open transaction under that epoch, the leader asks the transaction coordinator
/// (directly when this broker coordinates the transactional id, otherwise with a batched
/// AddPartitionsToTxn v5, VerifyOnly for clients below Produce v12) whether the partition is part of
/// the transaction — and for Produce v12+ (transaction version 2) to add it. A partition that is not
/// in the transaction is refused with INVALID_TXN_STATE ("Partition was not added to the
/// transaction"), TRANSACTION_ABORTABLE for Produce v11+. Batches that continue an open transaction
/// are not verified again, so only the first batch of each partition per transaction pays the round
/// trip. Off with transaction.partition.verification.enable=false.
/// Before asking, the partition's log hands out a verification guard (upstream VerificationGuard,
/// PartitionLog.MaybeStartTransactionVerification) that the append must present: a marker written for
/// the producer between the coordinator's answer and the append drops it, and the append is refused
/// INVALID_TXN_STATE (INVALID_PRODUCER_EPOCH when the marker bumped the epoch, transaction version 2)
/// instead of opening a transaction the coordinator has already ended. A batch that continues an
/// open transaction carries no guard and is refused the same way if the transaction ended meanwhile.
/// Differences from upstream: the request to a coordinator that is another broker carries the
/// transactions waiting at that moment, one request in flight per coordinator, as upstream's sender
/// thread does.
/// </summary>
public static class ProduceVerification
{
    public const string ConfigKey = "transaction.partition.verification.enable";

    /// <summary>A partition the verification refused: the Produce error and its message.</summary>
    public readonly record struct Refusal(ErrorCode Error, string? Message);

    /// <summary>The partitions of one Produce request that must not be appended, and the verification
    /// guards of those that were verified.</summary>
    public sealed class Outcome
    {
        private readonly Dictionary<TopicPartition, Refusal> _refused = [];
        private readonly Dictionary<TopicPartition, VerificationGuard> _guards = [];
        internal void Refuse(TopicPartition tp, Refusal r) => _refused[tp] = r;
        internal void Guard(TopicPartition tp, VerificationGuard guard) => _guards[tp] = guard;
        public Refusal? Refused(string topic, int partition) =>
            _refused.TryGetValue(new TopicPartition(topic, partition), out var r) ? r : null;
        /// <summary>The guard the partition's append presents; the sentinel when it was not verified.</summary>
        public VerificationGuard GuardFor(string topic, int partition) =>
            _guards.TryGetValue(new TopicPartition(topic, partition), out var g) ? g : VerificationGuard.Sentinel;
        public int Count => _refused.Count;
        internal bool IsEmpty => _refused.Count == 0 && _guards.Count == 0;
    }

    /// <summary>Test seam: runs after a transactional Produce request's verification and before its
    /// appends (where a marker can race with the request).</summary>
    internal static AsyncLocal<Func<ValueTask>?> BeforeAppendForTests { get; } = new();

    /// <summary>Upstream AddPartitionsToTxnManager.produceRequestVersionToTransactionSupportedOperation.</summary>
    public static TransactionSupportedOperation ForProduceVersion(short version) =>
        version >= 12 ? TransactionSupportedOperation.AddPartition
        : version == 11 ? TransactionSupportedOperation.GenericErrorSupported
        : TransactionSupportedOperation.DefaultError;

    /// <summary>Upstream txnOffsetCommitRequestVersionToTransactionSupportedOperation.</summary>
    public static TransactionSupportedOperation ForTxnOffsetCommitVersion(short version) =>
        version >= 5 ? TransactionSupportedOperation.AddPartition
        : version == 4 ? TransactionSupportedOperation.GenericErrorSupported
        : TransactionSupportedOperation.DefaultError;

    /// <summary>
    /// Verifies (or, Produce v12+, adds) the partitions of a Produce request whose transactional
    /// batches start a transaction at that partition. Null when nothing needs checking (no
    /// transactional id, verification off, every batch continues an open transaction) — the common
    /// case costs no allocation beyond the scan. <paramref name="topicName"/> gives a topic's name when
    /// the request names topics by id (Produce v13, KIP-516); by default the request's name is used.
    /// </summary>
    public static async ValueTask<Outcome?> VerifyAsync(RequestContext context, ProduceRequest request,
        Func<ProduceRequest.TopicProduceData, string?>? topicName = null)
    {
        if (string.IsNullOrEmpty(request.TransactionalId)) return null;
        var broker = context.Broker;
        if (!IsEnabled(broker)) return null;
        var operation = ForProduceVersion(context.ApiVersion);
        Outcome? outcome = null;
        List<TopicPartition>? toVerify = null;
        long producerId = -1;
        short producerEpoch = -1;
        bool severalProducers = false;
        foreach (var t in request.TopicData)
        {
            if ((topicName is null ? t.Name : topicName(t)) is not { Length: > 0 } name) continue;
            foreach (var pd in t.PartitionData)
            {
                // Upstream reads the first batch (Produce v3+ carries one batch per partition).
                if (pd.Records is not { Length: >= RecordBatch.HeaderSize } records) continue;
                var batch = new RecordBatch(records.Span);
                if (batch.Magic < 2 || !batch.IsTransactional || batch.IsControl || batch.ProducerId < 0) continue;
                var partition = broker.Replicas.GetPartition(name, pd.Index);
                // Partitions the handler refuses anyway (unknown, led elsewhere, internal) are left to it.
                if (partition is null || !partition.IsLeader || !partition.IsHostedLocally || Cluster.TopicName.IsInternal(name)) continue;
                if (producerId >= 0 && (producerId != batch.ProducerId || producerEpoch != batch.ProducerEpoch)) severalProducers = true;
                producerId = batch.ProducerId;
                producerEpoch = batch.ProducerEpoch;
                var tp = new TopicPartition(name, pd.Index);
                VerificationGuard? guard;
                try
                {
                    guard = partition.Log.MaybeStartTransactionVerification(batch.ProducerId, batch.BaseSequence, batch.ProducerEpoch,
                        supportsEpochBump: operation == TransactionSupportedOperation.AddPartition);
                }
                catch (ProducerFencedOrOutOfOrderException e)
                {
                    // An epoch older than the producer's here: refused before asking the coordinator.
                    (outcome ??= new Outcome()).Refuse(tp, new Refusal(e.Error, e.Message));
                    continue;
                }
                // The transaction is open here under this epoch: nothing to verify.
                if (ReferenceEquals(guard, VerificationGuard.Sentinel)) continue;
                if (guard is not null) (outcome ??= new Outcome()).Guard(tp, guard);
                (toVerify ??= []).Add(tp);
            }
        }
        if (toVerify is null) return outcome;
        outcome ??= new Outcome();
        if (severalProducers)
        {
            // Upstream throws InvalidPidMappingException for the whole request.
            foreach (var tp in toVerify)
                outcome.Refuse(tp, new Refusal(ErrorCode.InvalidProducerIdMapping, "Transactional records contained more than one producer ID"));
            return outcome;
        }
        var results = await broker.Transactions.VerifyOrAddAsync(request.TransactionalId, producerId, producerEpoch, toVerify,
            add: operation == TransactionSupportedOperation.AddPartition, context.Cancellation);
        foreach (var tp in toVerify)
        {
            var error = MapForClient(results.GetValueOrDefault(tp, ErrorCode.None), operation);
            if (error != ErrorCode.None) outcome.Refuse(tp, ToAppendError(error));
        }
        return outcome.IsEmpty ? null : outcome;
    }

    public static bool IsEnabled(KafkaBroker broker) => broker.Config.Get(ConfigKey) is not false;

    /// <summary>
    /// The coordinator's answer as the producer may see it (upstream AddPartitionsToTxnManager):
    /// PRODUCER_FENCED becomes INVALID_PRODUCER_EPOCH (what producers expect from a partition), and
    /// TRANSACTION_ABORTABLE becomes INVALID_TXN_STATE for clients that do not know it.
    /// </summary>
    public static ErrorCode MapForClient(ErrorCode error, TransactionSupportedOperation operation) => error switch
    {
        ErrorCode.ProducerFenced => ErrorCode.InvalidProducerEpoch,
        ErrorCode.TransactionAbortable when operation == TransactionSupportedOperation.DefaultError => ErrorCode.InvalidTxnState,
        ErrorCode.ClusterAuthorizationFailed => ErrorCode.InvalidTxnState,
        _ => error,
    };

    /// <summary>
    /// Upstream ReplicaManager's translation for the append result: INVALID_TXN_STATE says the
    /// partition was not added; the retriable coordinator errors become NOT_ENOUGH_REPLICAS, which
    /// every producer retries without a metadata refresh.
    /// </summary>
    public static Refusal ToAppendError(ErrorCode error) => error switch
    {
        ErrorCode.InvalidTxnState => new Refusal(error, "Partition was not added to the transaction"),
        ErrorCode.ConcurrentTransactions or ErrorCode.NetworkException or ErrorCode.CoordinatorLoadInProgress
            or ErrorCode.CoordinatorNotAvailable or ErrorCode.NotCoordinator
            => new Refusal(ErrorCode.NotEnoughReplicas, $"Unable to verify the partition has been added to the transaction. Underlying error: {ErrorName(error)}"),
        _ => new Refusal(error, null),
    };

    // Upstream prints the Errors enum name (e.g. COORDINATOR_LOAD_IN_PROGRESS).
    private static string ErrorName(ErrorCode e) =>
        string.Concat(e.ToString().Select((c, i) => i > 0 && char.IsUpper(c) ? "_" + c : c.ToString())).ToUpperInvariant();
}
