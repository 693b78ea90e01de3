// AddOffsetsToTxn (key 25), versions 0-4.
//
// Behaviour (KafkaApis.handleAddOffsetsToTxnRequest): adds the group's __consumer_offsets partition
// to the producer's open transaction, so that TxnOffsetCommit may follow. Errors as
// AddPartitionsToTxn (PRODUCER_FENCED is INVALID_PRODUCER_EPOCH below v2). v4 only allows
// TRANSACTION_ABORTABLE (KIP-890), which this coordinator never returns.
// Authorization (KafkaApis.handleAddOffsetsToTxnRequest): TRANSACTIONAL_ID WRITE
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED), then GROUP READ (GROUP_AUTHORIZATION_FAILED).
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class AddOffsetsToTxnHandler
{
    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, AddOffsetsToTxnRequest request)
    {
        if (!Security.Acl.Authz.TransactionalId(context, Security.Acl.AclOperation.Write, request.TransactionalId))
            return ValueTask.FromResult<IKafkaMessage?>(new AddOffsetsToTxnResponse { ErrorCode = (short)ErrorCode.TransactionalIdAuthorizationFailed });
        if (!Security.Acl.Authz.Group(context, Security.Acl.AclOperation.Read, request.GroupId))
            return ValueTask.FromResult<IKafkaMessage?>(new AddOffsetsToTxnResponse { ErrorCode = (short)ErrorCode.GroupAuthorizationFailed });
        var error = context.Broker.Transactions.Coordinator.AddOffsetsToTxn(request.TransactionalId, request.ProducerId,
            request.ProducerEpoch, request.GroupId);
        if (error == ErrorCode.ProducerFenced && context.ApiVersion < 2) error = ErrorCode.InvalidProducerEpoch;
        return ValueTask.FromResult<IKafkaMessage?>(new AddOffsetsToTxnResponse { ErrorCode = (short)error });
    }
}
