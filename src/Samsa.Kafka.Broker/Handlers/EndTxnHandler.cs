// EndTxn (key 26), versions 0-5.
//
// Behaviour (KafkaApis.handleEndTxnRequest, TransactionCoordinator.handleEndTransaction): commits or aborts the producer's open transaction — the decision is
// logged to __transaction_state, COMMIT/ABORT markers are written to every partition of the
// transaction, a commit's TxnOffsetCommit offsets become the groups' committed offsets, and the
// completion is logged. A retry after completion answers NONE, the opposite outcome or an id with no
// open transaction INVALID_TXN_STATE; PRODUCER_FENCED for an older epoch (INVALID_PRODUCER_EPOCH
// below v2, KIP-588). v4 only allows TRANSACTION_ABORTABLE (KIP-890), never returned here.
// v5 is transaction version 2 (KIP-890 part 2; upstream passes TV_2 for version > 4): the epoch is
// bumped as the transaction ends, the markers carry the new epoch, and the answer's ProducerId /
// ProducerEpoch are what the producer uses next (a new producer id with epoch 0 once the epoch is
// exhausted). A retry with the epoch before the bump is answered with the current id and epoch.
// The request's version alone says which: v5 is version 2 and v0-v4 version 0 on any cluster,
// whatever transaction.version is finalized (upstream TransactionVersion.transactionVersionForEndTxn;
// clients stay at v4 below level 2 on their own, from the level ApiVersions reports).
// Differences from upstream: the markers are written before the answer (upstream answers after
// logging PrepareCommit and writes markers asynchronously), so the answer comes a little later but
// read_committed consumers see the outcome as soon as the client does.
// Authorization (KafkaApis.handleEndTxnRequest): TRANSACTIONAL_ID WRITE (TRANSACTIONAL_ID_AUTHORIZATION_FAILED).
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class EndTxnHandler
{
    public static async ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, EndTxnRequest request)
    {
        var coordinator = context.Broker.Transactions.Coordinator;
        if (!Security.Acl.Authz.TransactionalId(context, Security.Acl.AclOperation.Write, request.TransactionalId))
            return new EndTxnResponse { ErrorCode = (short)ErrorCode.TransactionalIdAuthorizationFailed, ProducerId = -1, ProducerEpoch = -1 };
        var result = coordinator.EndTxn(request.TransactionalId, request.ProducerId, request.ProducerEpoch, request.Committed,
            clientTransactionVersion: context.ApiVersion >= 5 ? (short)2 : (short)0);
        var error = result.Error;
        // The decision is answered once the transaction log's ISR has it (acks=all), so a coordinator
        // failover cannot forget a transaction the producer was told is committed.
        if (error == ErrorCode.None)
            error = await context.Broker.AwaitInternalWriteAsync(Cluster.TopicName.TransactionStateTopic,
                coordinator.PartitionFor(request.TransactionalId), context.Cancellation);
        if (error == ErrorCode.ProducerFenced && context.ApiVersion < 2) error = ErrorCode.InvalidProducerEpoch;
        return error == ErrorCode.None
            ? new EndTxnResponse { ErrorCode = 0, ProducerId = result.ProducerId, ProducerEpoch = result.ProducerEpoch }
            : new EndTxnResponse { ErrorCode = (short)error, ProducerId = -1, ProducerEpoch = -1 };
    }
}
