// ListTransactions (key 66), versions 0-1 (KIP-664; v1 DurationFilter, KIP-994).
//
// Behaviour (TransactionStateManager.listTransactionStates): the transactional ids this coordinator
// knows, filtered by state names and producer ids (empty filter = all); v1's duration filter (>= 0)
// keeps only transactions open longer than that many milliseconds. State names this broker does not
// know are echoed in UnknownStateFilters and match nothing.
// Authorization (KafkaApis.handleListTransactionsRequest): only transactional ids with
// TRANSACTIONAL_ID DESCRIBE are listed.
using Samsa.Kafka.Broker.Transactions;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class ListTransactionsHandler
{
    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, ListTransactionsRequest request)
    {
        var response = new ListTransactionsResponse();
        var states = new List<TransactionState>();
        foreach (var name in request.StateFilters)
        {
            if (TransactionCoordinator.ParseState(name) is { } s) states.Add(s);
            else response.UnknownStateFilters.Add(name);
        }
        if (request.StateFilters.Count > 0 && states.Count == 0)
            return ValueTask.FromResult<IKafkaMessage?>(response);
        long duration = context.ApiVersion >= 1 ? request.DurationFilter : -1;
        var (error, list) = context.Broker.Transactions.Coordinator.List(states, request.ProducerIdFilters, duration);
        response.ErrorCode = (short)error;
        foreach (var d in list.OrderBy(d => d.TransactionalId, StringComparer.Ordinal))
        {
            if (!Security.Acl.Authz.TransactionalId(context, Security.Acl.AclOperation.Describe, d.TransactionalId)) continue;
            response.TransactionStates.Add(new ListTransactionsResponse.TransactionStateData
            {
                TransactionalId = d.TransactionalId, ProducerId = d.ProducerId, TransactionState = TransactionCoordinator.StateName(d.State),
            });
        }
        return ValueTask.FromResult<IKafkaMessage?>(response);
    }
}
