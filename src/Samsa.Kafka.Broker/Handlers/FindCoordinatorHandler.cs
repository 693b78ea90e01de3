// FindCoordinator (key 10), versions 0-6.
//
// Behaviour (KafkaApis.handleFindCoordinatorRequest / getCoordinator): the coordinator of a group
// (key type 0) is the leader of partition abs(hash(key)) % offsets.topic.num.partitions of
// __consumer_offsets; of a transactional id (key type 1) the leader of its partition of
// __transaction_state. Every broker answers with that leader, whichever broker is asked. The first
// lookup creates the internal topic; COORDINATOR_NOT_AVAILABLE while it does not exist yet, cannot
// be created (replication factor above the live brokers) or the partition has no live leader.
// Never COORDINATOR_LOAD_IN_PROGRESS: a new leader that is still loading answers that to the
// group and transaction requests themselves. error_message is null unless there is an error.
// v4+ (KIP-699) carries a batch of keys answered one by one. Key type 2 (share, KIP-932; v6)
// names a share-partition as "groupId:topicId:partition": its share coordinator is the leader of
// partition abs(hash(key)) % share.coordinator.state.topic.num.partitions of __share_group_state
// (created on the first lookup); a key not of that form is INVALID_REQUEST, and so are other key
// types and key type 2 below v6.
// Authorization (KafkaApis.getCoordinator): GROUP DESCRIBE for group keys
// (GROUP_AUTHORIZATION_FAILED), TRANSACTIONAL_ID DESCRIBE for transaction keys
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED), before the key type is validated; CLUSTER_ACTION for
// share keys (CLUSTER_AUTHORIZATION_FAILED), which only brokers look up.
using Samsa.Kafka.Broker.Cluster;
using Samsa.Kafka.Broker.Groups;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class FindCoordinatorHandler
{
    public const sbyte GroupKeyType = 0;
    public const sbyte TransactionKeyType = 1;
    public const sbyte ShareKeyType = 2;

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
        var broker = context.Broker;
        var listenerName = context.Session.ListenerName;
        var c = new FindCoordinatorResponse.Coordinator { Key = key, NodeId = -1, Host = "", Port = -1, ErrorMessage = null };
        if (keyType == GroupKeyType && !Security.Acl.Authz.Group(context, Security.Acl.AclOperation.Describe, key))
        {
            c.ErrorCode = (short)ErrorCode.GroupAuthorizationFailed;
            c.ErrorMessage = "Group authorization failed.";
            return c;
        }
        if (keyType == TransactionKeyType && !Security.Acl.Authz.TransactionalId(context, Security.Acl.AclOperation.Describe, key))
        {
            c.ErrorCode = (short)ErrorCode.TransactionalIdAuthorizationFailed;
            c.ErrorMessage = "Transactional Id authorization failed.";
            return c;
        }
        if (keyType == ShareKeyType && context.ApiVersion >= 6)
            return ResolveShare(context, c, key);
        if (keyType is not (GroupKeyType or TransactionKeyType))
        {
            c.ErrorCode = (short)ErrorCode.InvalidRequest;
            c.ErrorMessage = $"Unsupported coordinator key type {keyType}";
            return c;
        }
        var (error, _) = keyType == TransactionKeyType
            ? broker.Transactions.EnsureTransactionLog()
            : broker.Groups.EnsureOffsetsTopic();
        var topic = error == ErrorCode.None
            ? broker.Replicas.GetTopic(keyType == TransactionKeyType ? TopicName.TransactionStateTopic : TopicName.GroupMetadataTopic)
            : null;
        if (topic is null || topic.Partitions.Count == 0) return NotAvailable(c);
        var partition = topic.Partitions[GroupCoordinator.PartitionFor(key, topic.Partitions.Count)];
        int leader = partition.LeaderId ?? broker.BrokerId;   // single broker: it leads everything
        // The coordinator's endpoint on the request's listener; a coordinator without that listener is
        // COORDINATOR_NOT_AVAILABLE (upstream getCoordinator with request.context.listenerName).
        if (leader < 0 || broker.EndpointOf(leader, listenerName) is not { } endpoint) return NotAvailable(c);
        c.NodeId = leader;
        c.Host = endpoint.Host;
        c.Port = endpoint.Port;
        return c;
    }

    private static FindCoordinatorResponse.Coordinator ResolveShare(RequestContext context, FindCoordinatorResponse.Coordinator c, string key)
    {
        var broker = context.Broker;
        if (!Security.Acl.Authz.Cluster(context, Security.Acl.AclOperation.ClusterAction))
        {
            c.ErrorCode = (short)ErrorCode.ClusterAuthorizationFailed;
            c.ErrorMessage = "Cluster authorization failed.";
            return c;
        }
        // groupId:topicId:partition; the group id itself may contain ':' (upstream splits from the right).
        int last = key.LastIndexOf(':');
        int middle = last > 0 ? key.LastIndexOf(':', last - 1) : -1;
        if (middle <= 0 || !KafkaUuid.TryParse(key[(middle + 1)..last], out var topicId)
            || !int.TryParse(key[(last + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int partition))
        {
            c.ErrorCode = (short)ErrorCode.InvalidRequest;
            c.ErrorMessage = $"Invalid share coordinator key {key}";
            return c;
        }
        var (error, leader) = broker.ShareCoordinator.Locate(new Groups.Share.SharePartitionKey(key[..middle], topicId, partition));
        if (error != ErrorCode.None || broker.EndpointOf(leader, context.Session.ListenerName) is not { } endpoint) return NotAvailable(c);
        c.NodeId = leader;
        c.Host = endpoint.Host;
        c.Port = endpoint.Port;
        return c;
    }

    private static FindCoordinatorResponse.Coordinator NotAvailable(FindCoordinatorResponse.Coordinator c)
    {
        c.ErrorCode = (short)ErrorCode.CoordinatorNotAvailable;
        c.ErrorMessage = "The coordinator is not available.";
        return c;
    }
}
