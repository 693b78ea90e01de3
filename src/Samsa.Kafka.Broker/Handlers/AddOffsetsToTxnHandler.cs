// AddOffsetsToTxn (key 25), versions 0-4.
//
// Behaviour (KafkaApis.handleAddOffsetsToTxnRequest): adds the group's __consumer_offsets partition
// to the producer's open transaction, so that TxnOffsetCommit may follow. Errors as
// AddPartitionsToTxn (PRODUCER_FENCED is INVALID_PRODUCER_EPOCH below v2). v4 only allows
// TRANSACTION_ABORTABLE (KIP-890), which this coordinator never returns.
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class AddOffsetsToTxnHandler
{
    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, AddOffsetsToTxnRequest request)
    {
        var error = context.Broker.Transactions.Coordinator.AddOffsetsToTxn(request.TransactionalId, request.ProducerId,
            request.ProducerEpoch, request.GroupId);
        if (error == ErrorCode.ProducerFenced && context.ApiVersion < 2) error = ErrorCode.InvalidProducerEpoch;
        return ValueTask.FromResult<IKafkaMessage?>(new AddOffsetsToTxnResponse { ErrorCode = (short)error });
    }
}
