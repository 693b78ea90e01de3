// CreateTopics (key 19), versions 0-7.
//
// Behaviour (ZkAdminManager.createTopics): a name listed twice is INVALID_REQUEST for all its
// entries; num_partitions / replication_factor of -1 (v4+) take num.partitions /
// default.replication.factor; giving both those and a manual assignment is INVALID_REQUEST;
// assignments must name partitions 0..n-1 on known brokers (INVALID_REPLICA_ASSIGNMENT); null
// config values are INVALID_REQUEST and bad ones INVALID_CONFIG with upstream's message;
// illegal names INVALID_TOPIC_EXCEPTION; replication factor above the one broker
// INVALID_REPLICATION_FACTOR; existing topics TOPIC_ALREADY_EXISTS. validate_only checks
// without creating. More than 10000 partitions in one operation is POLICY_VIOLATION, as
// upstream's KRaft controller bounds a user operation. v5+ successful results carry the partition count, replication factor and
// the topic's resulting configs; v7 the topic id.
// Authorization (KafkaApis.handleCreateTopicsRequest): CLUSTER CREATE, or TOPIC CREATE per topic,
// else TOPIC_AUTHORIZATION_FAILED "Authorization failed."; v5+ without TOPIC DESCRIBE_CONFIGS the
// result carries no configs and topic_config_error_code TOPIC_AUTHORIZATION_FAILED.
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Broker.Security.Acl;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class CreateTopicsHandler
{
    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, CreateTopicsRequest request)
    {
        var broker = context.Broker;
        short v = context.ApiVersion;
        var response = new CreateTopicsResponse();
        bool clusterCreate = Authz.Cluster(context, AclOperation.Create, logIfDenied: false);
        var duplicates = request.Topics.GroupBy(t => t.Name).Where(g => g.Count() > 1).Select(g => g.Key).ToHashSet();
        foreach (var t in request.Topics)
        {
            var result = new CreateTopicsResponse.CreatableTopicResult { Name = t.Name, ErrorMessage = null, NumPartitions = -1, ReplicationFactor = -1, Configs = null };
            response.Topics.Add(result);
            var (error, message) = duplicates.Contains(t.Name) || clusterCreate || Authz.Topic(context, AclOperation.Create, t.Name)
                ? Create(broker, t, request.ValidateOnly, duplicates, result, v)
                : (ErrorCode.TopicAuthorizationFailed, "Authorization failed.");
            // Upstream: the created topic's configs are shown only with TOPIC DESCRIBE_CONFIGS.
            if (v >= 5 && !Authz.Topic(context, AclOperation.DescribeConfigs, t.Name, logIfDenied: false))
            {
                result.TopicConfigErrorCode = (short)ErrorCode.TopicAuthorizationFailed;
                result.Configs = null;
            }
            result.ErrorCode = (short)error;
            result.ErrorMessage = error == ErrorCode.None ? null : message;
        }
        return ValueTask.FromResult<IKafkaMessage?>(response);
    }

    private static (ErrorCode, string?) Create(KafkaBroker broker, CreateTopicsRequest.CreatableTopic t, bool validateOnly,
        HashSet<string> duplicates, CreateTopicsResponse.CreatableTopicResult result, short v)
    {
        if (duplicates.Contains(t.Name))
            return (ErrorCode.InvalidRequest, $"Create topics request from client contains multiple entries for the following topics: {t.Name}");
        bool hasAssignment = t.Assignments.Count > 0;
        if (hasAssignment && (t.NumPartitions != -1 || t.ReplicationFactor != -1))
            return (ErrorCode.InvalidRequest, "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.");
        var configs = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var c in t.Configs)
        {
            if (c.Value is null) return (ErrorCode.InvalidRequest, $"Null value not supported for topic configs: {c.Name}");
            configs[c.Name] = c.Value;
        }
        int partitions;
        short rf;
        if (hasAssignment)
        {
            var indices = t.Assignments.Select(a => a.PartitionIndex).OrderBy(i => i).ToList();
            if (!indices.SequenceEqual(Enumerable.Range(0, indices.Count)))
                return (ErrorCode.InvalidReplicaAssignment, "Partitions should be a consecutive 0-based integer sequence");
            var sizes = t.Assignments.Select(a => a.BrokerIds.Count).Distinct().ToList();
            if (sizes.Count != 1 || sizes[0] == 0)
                return (ErrorCode.InvalidReplicaAssignment, "All partitions should have the same number of replicas");
            foreach (var a in t.Assignments)
            {
                if (a.BrokerIds.Distinct().Count() != a.BrokerIds.Count)
                    return (ErrorCode.InvalidReplicaAssignment, $"Duplicate brokers not allowed in replica assignment: {string.Join(", ", a.BrokerIds)} for partition id {a.PartitionIndex}.");
                var unknown = a.BrokerIds.Where(b => !(broker.Cluster?.IsLive(b) ?? b == broker.BrokerId)).ToList();
                if (unknown.Count > 0)
                    return (ErrorCode.InvalidReplicaAssignment, $"Unknown broker(s) in replica assignment: {string.Join(", ", unknown)}.");
            }
            partitions = indices.Count;
            rf = (short)sizes[0];
        }
        else
        {
            partitions = t.NumPartitions == -1 ? broker.Config.NumPartitions : t.NumPartitions;
            rf = t.ReplicationFactor == -1 ? broker.Config.DefaultReplicationFactor : t.ReplicationFactor;
        }
        var manual = hasAssignment ? t.Assignments.ToDictionary(a => a.PartitionIndex, a => a.BrokerIds.ToList()) : null;
        var (error, message, topic) = broker.Replicas.CreateTopic(t.Name, partitions, rf, configs, validateOnly, manual);
        if (error != ErrorCode.None) return (error, message);
        result.NumPartitions = partitions;
        result.ReplicationFactor = rf;
        result.TopicId = topic?.Id ?? Guid.Empty;
        if (v >= 5)
        {
            result.Configs = broker.Config.DescribeTopic(configs, null, includeSynonyms: false)
                .Select(e => new CreateTopicsResponse.CreatableTopicConfigs
                {
                    Name = e.Name, Value = e.Value, ReadOnly = e.ReadOnly, ConfigSource = (sbyte)e.Source, IsSensitive = e.Sensitive,
                }).ToList();
        }
        return (ErrorCode.None, null);
    }
}
