// EndTxn (key 26), versions 0-4.
//
// Behaviour (KafkaApis.handleEndTxnRequest, TransactionCoordinator.handleEndTransaction with
// transaction version 1): commits or aborts the producer's open transaction — the decision is
// logged to __transaction_state, COMMIT/ABORT markers are written to every partition of the
// transaction, a commit's TxnOffsetCommit offsets become the groups' committed offsets, and the
// completion is logged. A retry after completion answers NONE, the opposite outcome or an id with no
// open transaction INVALID_TXN_STATE; PRODUCER_FENCED for an older epoch (INVALID_PRODUCER_EPOCH
// below v2, KIP-588). v4 only allows TRANSACTION_ABORTABLE (KIP-890), never returned here.
// v5 (KIP-890 part 2: an epoch bump per transaction) is not served.
// Differences from upstream: the markers are written before the answer (upstream answers after
// logging PrepareCommit and writes markers asynchronously), so the answer comes a little later but
// read_committed consumers see the outcome as soon as the client does.
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class EndTxnHandler
{
    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, EndTxnRequest request)
    {
        var error = context.Broker.Transactions.Coordinator.EndTxn(request.TransactionalId, request.ProducerId,
            request.ProducerEpoch, request.Committed);
        if (error == ErrorCode.ProducerFenced && context.ApiVersion < 2) error = ErrorCode.InvalidProducerEpoch;
        return ValueTask.FromResult<IKafkaMessage?>(new EndTxnResponse { ErrorCode = (short)error, ProducerId = -1, ProducerEpoch = -1 });
    }
}
