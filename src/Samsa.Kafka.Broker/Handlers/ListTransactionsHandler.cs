// ListTransactions (key 66), versions 0-2 (KIP-664; v1 DurationFilter, KIP-994; v2
// TransactionalIdPattern, KIP-1152).
//
// Behaviour (TransactionStateManager.listTransactionStates): the transactional ids this coordinator
// knows, filtered by state names and producer ids (empty filter = all); v1's duration filter (>= 0)
// keeps only transactions open longer than that many milliseconds. State names this broker does not
// know are echoed in UnknownStateFilters and match nothing. v2's pattern (null or empty = all) must
// match the whole transactional id; one that does not compile is INVALID_REGULAR_EXPRESSION.
// Differences from upstream: the pattern is a .NET regular expression (upstream uses RE2/J, whose
// syntax is a subset apart from a few escapes), evaluated with a 100 ms timeout per id.
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
        System.Text.RegularExpressions.Regex? pattern = null;
        if (context.ApiVersion >= 2 && !string.IsNullOrEmpty(request.TransactionalIdPattern))
        {
            try
            {
                pattern = new System.Text.RegularExpressions.Regex($"^(?:{request.TransactionalIdPattern})$",
                    System.Text.RegularExpressions.RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(100));
            }
            catch (ArgumentException)
            {
                response.ErrorCode = (short)ErrorCode.InvalidRegularExpression;
                return ValueTask.FromResult<IKafkaMessage?>(response);
            }
        }
        var (error, list) = context.Broker.Transactions.Coordinator.List(states, request.ProducerIdFilters, duration);
        response.ErrorCode = (short)error;
        foreach (var d in list.OrderBy(d => d.TransactionalId, StringComparer.Ordinal))
        {
            if (pattern is not null && !Matches(pattern, d.TransactionalId)) continue;
            if (!Security.Acl.Authz.TransactionalId(context, Security.Acl.AclOperation.Describe, d.TransactionalId)) continue;
            response.TransactionStates.Add(new ListTransactionsResponse.TransactionStateData
            {
                TransactionalId = d.TransactionalId, ProducerId = d.ProducerId, TransactionState = TransactionCoordinator.StateName(d.State),
            });
        }
        return ValueTask.FromResult<IKafkaMessage?>(response);
    }

    private static bool Matches(System.Text.RegularExpressions.Regex pattern, string id)
    {
        try
        {
            return pattern.IsMatch(id);
        }
        catch (System.Text.RegularExpressions.RegexMatchTimeoutException)
        {
            return false;
        }
    }
}
