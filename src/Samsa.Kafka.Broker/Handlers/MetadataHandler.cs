// Metadata (key 3), versions 0-13.
//
// Behaviour (KafkaApis.handleTopicMetadataRequest, ZooKeeper mode): v0 empty topic list and
// v1+ null list mean "all topics"; v1+ empty list means none. An unknown topic is auto-created
// when the request allows it (v4+ flag; always for v0-v3) and auto.create.topics.enable is on:
// the first answer for it is LEADER_NOT_AVAILABLE with no partitions, as upstream answers while
// the controller elects leaders. __consumer_offsets and __transaction_state are created as the
// coordinators create them (their own partitions, replication factor, compaction); too few live
// brokers for their replication factor is INVALID_REPLICATION_FACTOR. Illegal names get INVALID_TOPIC_EXCEPTION, unknown topics
// otherwise UNKNOWN_TOPIC_OR_PARTITION; v12+ lookups by topic id that miss get UNKNOWN_TOPIC_ID.
// v10/v11 carry a TopicId field but upstream serves no lookup by id there: a topic with a null
// name or a non-zero id makes KafkaApis throw InvalidRequestException, answered through
// MetadataRequest.getErrorResponse: every requested topic with INVALID_REQUEST, its id echoed, a
// null name as "" (the v10/v11 response name is not nullable), no brokers and no partitions.
// Single-broker mode: every partition is led by this broker, with itself as the only replica and
// ISR member. ZooKeeper mode (Cluster/ZooKeeper): all registered brokers, the controller from
// /controller and each partition's leader, epoch and ISR from its state znode.
// Authorization (KafkaApis.handleTopicMetadataRequest): topics without DESCRIBE are left out of
// an all-topics answer and answered TOPIC_AUTHORIZATION_FAILED (zero id, not internal) when named
// (v12 by id: a null name and the id); an unknown topic that would be auto-created needs CREATE on
// the cluster or on the topic, else TOPIC_AUTHORIZATION_FAILED. Authorized operations (v8+, when
// asked): the cluster's (v8-v10) only with CLUSTER DESCRIBE (else 0), each topic's as its ACLs
// allow (every operation without an authorizer).
// v13 (KIP-1102) adds a top-level ErrorCode through which a broker may send REBOOTSTRAP_REQUIRED;
// upstream's broker leaves it 0 when it answers, and so does Samsa (per-topic errors as above).
using Samsa.Kafka.Broker.Cluster;
using Samsa.Kafka.Broker.Security.Acl;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class MetadataHandler
{
    // AclOperation codes: READ 3, WRITE 4, CREATE 5, DELETE 6, ALTER 7, DESCRIBE 8,
    // CLUSTER_ACTION 9, DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11, IDEMPOTENT_WRITE 12.
    internal const int TopicOperations = (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);
    internal const int ClusterOperations = (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12);

    /// <summary>Upstream's MetadataRequest.getErrorResponse for INVALID_REQUEST.</summary>
    private static MetadataResponse InvalidRequestResponse(MetadataRequest request)
    {
        var response = new MetadataResponse();
        foreach (var t in request.Topics!)
            response.Topics.Add(new MetadataResponse.MetadataResponseTopic
            {
                ErrorCode = (short)ErrorCode.InvalidRequest,
                Name = t.Name ?? "",
                TopicId = t.TopicId,
                IsInternal = false,
            });
        return response;
    }

    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, MetadataRequest request)
    {
        var broker = context.Broker;
        short v = context.ApiVersion;
        var response = new MetadataResponse
        {
            Brokers = BrokerEntries(broker, context.Session.ListenerName),
            ClusterId = broker.ClusterId,
            ControllerId = broker.Cluster?.ControllerId ?? broker.BrokerId,
            ClusterAuthorizedOperations = v is >= 8 and <= 10 && request.IncludeClusterAuthorizedOperations
                ? (Authz.Cluster(context, AclOperation.Describe) ? Authz.Operations(context, ResourceType.Cluster, Authz.ClusterName) : 0)
                : int.MinValue,
        };
        var response0 = Handle(context, request, response, v);
        if (response0 is MetadataResponse done && v >= 8 && request.IncludeTopicAuthorizedOperations && broker.Authorizer is not null)
            foreach (var t in done.Topics)
                if (t.TopicAuthorizedOperations != int.MinValue && t.Name is not null)
                    t.TopicAuthorizedOperations = Authz.Operations(context, ResourceType.Topic, t.Name);
        return ValueTask.FromResult<IKafkaMessage?>(response0);
    }

    private static MetadataResponse Handle(RequestContext context, MetadataRequest request, MetadataResponse response, short v)
    {
        var broker = context.Broker;
        bool includeTopicOps = v >= 8 && request.IncludeTopicAuthorizedOperations;
        // The brokers this response lists: live, with an endpoint on the request's listener.
        var listed = response.Brokers.Select(b => b.NodeId).ToHashSet();
        bool allTopics = request.Topics is null || (v == 0 && request.Topics.Count == 0);
        if (!allTopics && v is 10 or 11 && request.Topics!.Any(t => t.Name is null || t.TopicId != Guid.Empty))
            return InvalidRequestResponse(request);
        if (allTopics)
        {
            foreach (var t in broker.Replicas.Topics.OrderBy(t => t.Name, StringComparer.Ordinal))
                if (Authz.Topic(context, AclOperation.Describe, t.Name, logIfDenied: false))
                    response.Topics.Add(TopicEntry(broker, t, includeTopicOps, listed, v));
            return response;
        }
        bool allowAutoCreate = (v < 4 || request.AllowAutoTopicCreation) && broker.Config.AutoCreateTopicsEnable;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var requested in request.Topics!)
        {
            if (requested.Name is null)
            {
                var byId = requested.TopicId == Guid.Empty ? null : broker.Replicas.GetTopic(requested.TopicId);
                if (byId is not null && !Authz.Topic(context, AclOperation.Describe, byId.Name))
                {
                    // Topic ids are not secret (upstream): the id is echoed, the name is not.
                    response.Topics.Add(new MetadataResponse.MetadataResponseTopic { ErrorCode = (short)ErrorCode.TopicAuthorizationFailed, Name = null, TopicId = requested.TopicId, TopicAuthorizedOperations = int.MinValue });
                    continue;
                }
                response.Topics.Add(byId is null
                    ? new MetadataResponse.MetadataResponseTopic { ErrorCode = (short)ErrorCode.UnknownTopicId, Name = null, TopicId = requested.TopicId }
                    : TopicEntry(broker, byId, includeTopicOps, listed, v));
                continue;
            }
            if (!seen.Add(requested.Name)) continue;
            if (!Authz.Topic(context, AclOperation.Describe, requested.Name))
            {
                // Whether it exists is not disclosed.
                response.Topics.Add(new MetadataResponse.MetadataResponseTopic { ErrorCode = (short)ErrorCode.TopicAuthorizationFailed, Name = requested.Name, IsInternal = false, TopicAuthorizedOperations = int.MinValue });
                continue;
            }
            var topic = broker.Replicas.GetTopic(requested.Name);
            if (topic is not null)
            {
                response.Topics.Add(TopicEntry(broker, topic, includeTopicOps, listed, v));
                continue;
            }
            if (allowAutoCreate && !Authz.Cluster(context, AclOperation.Create, logIfDenied: false)
                && !Authz.Topic(context, AclOperation.Create, requested.Name))
            {
                response.Topics.Add(new MetadataResponse.MetadataResponseTopic { ErrorCode = (short)ErrorCode.TopicAuthorizationFailed, Name = requested.Name, IsInternal = TopicName.IsInternal(requested.Name), TopicAuthorizedOperations = int.MinValue });
                continue;
            }
            ErrorCode error;
            if (TopicName.Validate(requested.Name) is not null)
                error = allowAutoCreate ? ErrorCode.InvalidTopicException : ErrorCode.UnknownTopicOrPartition;
            else if (allowAutoCreate && !TopicName.IsInternal(requested.Name))
            {
                var (createError, _, _) = broker.Replicas.CreateTopic(requested.Name, broker.Config.NumPartitions,
                    broker.Config.DefaultReplicationFactor, new Dictionary<string, string>(), validateOnly: false);
                error = createError switch
                {
                    ErrorCode.None or ErrorCode.TopicAlreadyExists => ErrorCode.LeaderNotAvailable,
                    _ => createError,
                };
            }
            else if (allowAutoCreate && requested.Name is TopicName.GroupMetadataTopic or TopicName.TransactionStateTopic)
            {
                // Internal topics are created with their own partition count, replication factor and
                // compaction (upstream's AutoTopicCreationManager); too few live brokers for the
                // replication factor is INVALID_REPLICATION_FACTOR, as upstream's createInternalTopic.
                var (ensure, _) = requested.Name == TopicName.GroupMetadataTopic ? broker.Groups.EnsureOffsetsTopic() : broker.Transactions.EnsureTransactionLog();
                if (broker.Replicas.GetTopic(requested.Name) is { } created)
                {
                    response.Topics.Add(TopicEntry(broker, created, includeTopicOps, listed, v));
                    continue;
                }
                error = ensure == ErrorCode.None ? ErrorCode.LeaderNotAvailable
                    : broker.Cluster is null ? ErrorCode.InvalidReplicationFactor   // created on the spot, or refused
                    : EnoughBrokersFor(broker, requested.Name) ? ErrorCode.LeaderNotAvailable : ErrorCode.InvalidReplicationFactor;
            }
            else
                error = ErrorCode.UnknownTopicOrPartition;
            response.Topics.Add(new MetadataResponse.MetadataResponseTopic
            {
                ErrorCode = (short)error,
                Name = requested.Name,
                IsInternal = TopicName.IsInternal(requested.Name),
                TopicAuthorizedOperations = includeTopicOps ? TopicOperations : int.MinValue,
            });
        }
        return response;
    }

    private static bool EnoughBrokersFor(KafkaBroker broker, string internalTopic)
    {
        int rf = internalTopic == TopicName.GroupMetadataTopic
            ? broker.Groups.Coordinator.Config.OffsetsTopicReplicationFactor
            : broker.Transactions.Coordinator.Config.TransactionLogReplicationFactor;
        return (broker.Cluster?.LiveBrokers.Count ?? 1) >= rf;
    }

    /// <summary>Every live broker's endpoint on the listener the request came in on (upstream
    /// MetadataCache.getAliveBrokerNodes(listenerName)): a broker without that listener is left out.</summary>
    internal static List<MetadataResponse.MetadataResponseBroker> BrokerEntries(KafkaBroker broker, string listenerName)
    {
        if (broker.Cluster is not { } cluster)
            return broker.EndpointOf(broker.BrokerId, listenerName) is { } self
                ? [new() { NodeId = broker.BrokerId, Host = self.Host, Port = self.Port, Rack = broker.Config.Rack }]
                : [];
        var list = new List<MetadataResponse.MetadataResponseBroker>();
        string wanted = Security.BrokerListeners.Normalize(listenerName);
        foreach (var b in cluster.LiveBrokers)
        {
            var ep = b.Endpoints.FirstOrDefault(e => Security.BrokerListeners.Normalize(e.ListenerName) == wanted);
            if (ep is null) continue;
            list.Add(new MetadataResponse.MetadataResponseBroker { NodeId = b.Id, Host = ep.Host, Port = ep.Port, Rack = b.Rack });
        }
        return list;
    }

    private static MetadataResponse.MetadataResponseTopic TopicEntry(KafkaBroker broker, TopicState topic, bool includeOps, HashSet<int> listed, short v)
    {
        var entry = new MetadataResponse.MetadataResponseTopic
        {
            Name = topic.Name,
            TopicId = topic.Id,
            IsInternal = topic.IsInternal,
            TopicAuthorizedOperations = includeOps ? TopicOperations : int.MinValue,
        };
        foreach (var p in topic.Partitions.ToArray())
        {
            if (p.LeaderId is { } leader)
            {
                // ZooKeeper mode: the state the controller wrote. As upstream's
                // MetadataCache.getPartitionMetadata, a leader this response cannot name (none, not
                // live, or without an endpoint on the request's listener) is -1 with
                // LEADER_NOT_AVAILABLE — LISTENER_NOT_FOUND from v6 when the live leader lacks the
                // listener.
                var replicas = p.ReplicaNodes?.ToList() ?? [];
                var error = ErrorCode.None;
                if (leader < 0) error = ErrorCode.LeaderNotAvailable;
                else if (!listed.Contains(leader))
                {
                    error = v >= 6 && broker.Cluster?.IsLive(leader) == true ? ErrorCode.ListenerNotFound : ErrorCode.LeaderNotAvailable;
                    leader = -1;
                }
                entry.Partitions.Add(new MetadataResponse.MetadataResponsePartition
                {
                    ErrorCode = (short)error,
                    PartitionIndex = p.Index,
                    LeaderId = leader,
                    LeaderEpoch = p.LeaderEpoch,
                    ReplicaNodes = replicas,
                    IsrNodes = p.IsrNodes?.ToList() ?? [],
                    OfflineReplicas = replicas.Where(r => broker.Cluster?.IsLive(r) == false).ToList(),
                });
                continue;
            }
            entry.Partitions.Add(new MetadataResponse.MetadataResponsePartition
            {
                PartitionIndex = p.Index,
                LeaderId = broker.BrokerId,
                LeaderEpoch = p.LeaderEpoch,
                ReplicaNodes = [broker.BrokerId],
                IsrNodes = [broker.BrokerId],
                OfflineReplicas = [],
            });
        }
        return entry;
    }
}
