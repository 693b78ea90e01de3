// DescribeTransactions (key 65), version 0 (KIP-664).
//
// Behaviour (TransactionCoordinator.handleDescribeTransactions): per transactional id its state
// (upstream's names: Empty, Ongoing, PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort,
// Dead, PrepareEpochFence), timeout, start time, producer id and epoch, and the partitions of the
// open transaction. Unknown ids get TRANSACTIONAL_ID_NOT_FOUND; while the log loads
// COORDINATOR_LOAD_IN_PROGRESS.
// Authorization (KafkaApis.handleDescribeTransactionsRequest): TRANSACTIONAL_ID DESCRIBE
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED); topics without TOPIC DESCRIBE are left out.
using Samsa.Kafka.Broker.Transactions;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class DescribeTransactionsHandler
{
    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, DescribeTransactionsRequest request)
    {
        var coordinator = context.Broker.Transactions.Coordinator;
        var response = new DescribeTransactionsResponse();
        foreach (var id in request.TransactionalIds)
        {
            var state = new DescribeTransactionsResponse.TransactionStateData { TransactionalId = id, TransactionState = "", ProducerId = -1, ProducerEpoch = -1, TransactionStartTimeMs = -1 };
            response.TransactionStates.Add(state);
            if (!Security.Acl.Authz.TransactionalId(context, Security.Acl.AclOperation.Describe, id))
            {
                state.ErrorCode = (short)ErrorCode.TransactionalIdAuthorizationFailed;
                continue;
            }
            var (error, d) = coordinator.IsActive ? coordinator.Describe(id) : (ErrorCode.TransactionalIdNotFound, null);
            state.ErrorCode = (short)error;
            if (d is null) continue;
            state.TransactionState = TransactionCoordinator.StateName(d.State);
            state.TransactionTimeoutMs = d.TimeoutMs;
            state.TransactionStartTimeMs = d.StartTimestamp;
            state.ProducerId = d.ProducerId;
            state.ProducerEpoch = d.ProducerEpoch;
            // Only partitions of topics the principal may describe (upstream).
            foreach (var g in d.Partitions.GroupBy(p => p.Topic, StringComparer.Ordinal).Where(g => Security.Acl.Authz.Topic(context, Security.Acl.AclOperation.Describe, g.Key)))
                state.Topics.Add(new DescribeTransactionsResponse.TopicData { Topic = g.Key, Partitions = g.Select(p => p.Partition).ToList() });
        }
        return ValueTask.FromResult<IKafkaMessage?>(response);
    }
}
