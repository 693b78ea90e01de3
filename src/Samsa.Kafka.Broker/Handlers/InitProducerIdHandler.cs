// InitProducerId (key 22), versions 0-5.
//
// Behaviour (KafkaApis.handleInitProducerIdRequest, TransactionCoordinator.handleInitProducerId):
// without a transactional id, a new producer id with epoch 0 from the persisted id blocks (an
// idempotent producer); with one, the transaction coordinator bumps the id's epoch, fencing older
// instances and aborting an open transaction first. transaction_timeout_ms above
// transaction.max.timeout.ms (or not positive) is INVALID_TRANSACTION_TIMEOUT. v3+ (KIP-360) may
// carry the producer id/epoch the client had, to resume after an error: a retry of a completed
// bump gets the same answer, a stale one PRODUCER_FENCED (INVALID_PRODUCER_EPOCH below v4, KIP-588).
// v5 only allows TRANSACTION_ABORTABLE in answers, which this coordinator never returns.
// Differences from upstream: when an open transaction is fenced, the abort completes within the call
// and the new epoch is returned at once, where upstream answers CONCURRENT_TRANSACTIONS and the
// client retries.
// Authorization (KafkaApis.handleInitProducerIdRequest): with a transactional id TRANSACTIONAL_ID
// WRITE (TRANSACTIONAL_ID_AUTHORIZATION_FAILED); without one CLUSTER IDEMPOTENT_WRITE or WRITE on at
// least one topic (KIP-679, authorizeByResourceType), else CLUSTER_AUTHORIZATION_FAILED.
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class InitProducerIdHandler
{
    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, InitProducerIdRequest request)
    {
        short v = context.ApiVersion;
        var service = context.Broker.Transactions;
        var response = new InitProducerIdResponse { ProducerId = -1, ProducerEpoch = -1 };
        if (request.TransactionalId is { } tid ? !Security.Acl.Authz.TransactionalId(context, Security.Acl.AclOperation.Write, tid)
            : !Security.Acl.Authz.Cluster(context, Security.Acl.AclOperation.IdempotentWrite, logIfDenied: false) && !Security.Acl.Authz.AnyOfType(context, Security.Acl.AclOperation.Write, Security.Acl.ResourceType.Topic))
        {
            response.ErrorCode = (short)(request.TransactionalId is null ? ErrorCode.ClusterAuthorizationFailed : ErrorCode.TransactionalIdAuthorizationFailed);
            return ValueTask.FromResult<IKafkaMessage?>(response);
        }
        if (request.TransactionalId is not null && request.TransactionalId.Length > 0)
        {
            var (ensure, _) = service.EnsureTransactionLog();
            if (ensure != ErrorCode.None)
            {
                response.ErrorCode = (short)ensure;
                return ValueTask.FromResult<IKafkaMessage?>(response);
            }
        }
        var result = service.Coordinator.InitProducerId(request.TransactionalId, request.TransactionTimeoutMs,
            v >= 3 ? request.ProducerId : -1, v >= 3 ? request.ProducerEpoch : (short)-1);
        var error = result.Error == ErrorCode.ProducerFenced && v < 4 ? ErrorCode.InvalidProducerEpoch : result.Error;
        response.ErrorCode = (short)error;
        if (error == ErrorCode.None)
        {
            response.ProducerId = result.ProducerId;
            response.ProducerEpoch = result.ProducerEpoch;
        }
        return ValueTask.FromResult<IKafkaMessage?>(response);
    }
}
