// FindCoordinator (key 10), versions 0-6.
//
// Behaviour (KafkaApis.handleFindCoordinatorRequest): key type 0 (GROUP) — this broker, the only
// one, coordinates every group; the first lookup creates __consumer_offsets
// (offsets.topic.num.partitions, offsets.topic.replication.factor, compacted) and answers
// COORDINATOR_NOT_AVAILABLE while it cannot be created (replication factor above the one live
// broker). v4+ (KIP-699) carries a batch of keys answered one by one.
// Key type 1 (TRANSACTION): this broker coordinates every transactional id; the first lookup
// creates __transaction_state (transaction.state.log.num.partitions / replication.factor),
// COORDINATOR_NOT_AVAILABLE while it cannot be created. Other key types get INVALID_REQUEST.
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class FindCoordinatorHandler
{
    public const sbyte GroupKeyType = 0;
    public const sbyte TransactionKeyType = 1;

    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, FindCoordinatorRequest request)
    {
        short v = context.ApiVersion;
        sbyte keyType = v >= 1 ? request.KeyType : GroupKeyType;
        var response = new FindCoordinatorResponse();
        if (v < 4)
        {
            var c = Resolve(context, keyType, request.Key);
            response.ErrorCode = c.ErrorCode;
            response.ErrorMessage = c.ErrorMessage;
            response.NodeId = c.NodeId;
            response.Host = c.Host;
            response.Port = c.Port;
        }
        else
        {
            foreach (var key in request.CoordinatorKeys) response.Coordinators.Add(Resolve(context, keyType, key));
        }
        return ValueTask.FromResult<IKafkaMessage?>(response);
    }

    private static FindCoordinatorResponse.Coordinator Resolve(RequestContext context, sbyte keyType, string key)
    {
        var c = new FindCoordinatorResponse.Coordinator { Key = key, NodeId = -1, Host = "", Port = -1 };
        if (keyType is not (GroupKeyType or TransactionKeyType))
        {
            c.ErrorCode = (short)ErrorCode.InvalidRequest;
            c.ErrorMessage = $"Unsupported coordinator key type {keyType}";
            return c;
        }
        var (error, message) = keyType == TransactionKeyType
            ? context.Broker.Transactions.EnsureTransactionLog()
            : context.Broker.Groups.EnsureOffsetsTopic();
        if (error != ErrorCode.None)
        {
            c.ErrorCode = (short)error;
            c.ErrorMessage = message ?? "The coordinator is not available.";
            return c;
        }
        var (host, port) = context.Broker.AdvertisedEndpoint;
        c.NodeId = context.Broker.BrokerId;
        c.Host = host;
        c.Port = port;
        return c;
    }
}
