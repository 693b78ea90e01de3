// AlterConfigs (key 33), versions 0-2.
//
// Behaviour (ZkAdminManager.alterConfigs): the legacy API replaces the whole override set of a
// resource. First, as ConfigAdminManager.preprocess: a resource listed twice, a key listed twice
// and null values are INVALID_REQUEST. TOPIC: every key must be a topic config with a valid value
// (INVALID_CONFIG with upstream's message). BROKER (this broker's id, or empty for the cluster
// default): DynamicBrokerConfig.validateConfigs (BrokerConfig.ValidateDynamicBrokerUpdate) with
// INVALID_REQUEST; names that are no broker config (e.g. cleanup.policy) are accepted and stored.
// validate_only checks without applying.
// Differences from upstream: listener, SSL and SASL keys are validated and stored but not applied
// (PLAINTEXT listeners only); a broker key missing from ConfigCatalog counts as unknown. In ZooKeeper mode both resource types are written to /config/<type>/<name>
// with a /config/changes notification, and the answer waits until this broker applied them.
// Authorization (KafkaApis): ALTER_CONFIGS on the topic (TOPIC_AUTHORIZATION_FAILED) or, for
// brokers, on the cluster (CLUSTER_AUTHORIZATION_FAILED).
using Samsa.Kafka.Broker.Cluster.ZooKeeper;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class AlterConfigsHandler
{
    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, AlterConfigsRequest request)
    {
        var broker = context.Broker;
        var response = new AlterConfigsResponse();
        var duplicates = request.Resources.GroupBy(r => (r.ResourceType, r.ResourceName)).Where(g => g.Count() > 1).Select(g => g.Key).ToHashSet();
        foreach (var resource in request.Resources)
        {
            var result = new AlterConfigsResponse.AlterConfigsResourceResponse { ResourceType = resource.ResourceType, ResourceName = resource.ResourceName, ErrorMessage = null };
            response.Responses.Add(result);
            (ErrorCode error, string? message) = duplicates.Contains((resource.ResourceType, resource.ResourceName))
                ? (ErrorCode.InvalidRequest, "Each resource must appear at most once.")
                : Security.Acl.ConfigAuthz.Check(context, resource.ResourceType, resource.ResourceName, Security.Acl.AclOperation.AlterConfigs) is { } denied
                    ? (denied.Code, denied.Message)
                    : Apply(broker, resource, request.ValidateOnly);
            result.ErrorCode = (short)error;
            result.ErrorMessage = error == ErrorCode.None ? null : message;
        }
        return ValueTask.FromResult<IKafkaMessage?>(response);
    }

    private static (ErrorCode, string?) Apply(KafkaBroker broker, AlterConfigsRequest.AlterConfigsResource resource, bool validateOnly)
    {
        if (resource.Configs.Select(c => c.Name).Distinct(StringComparer.Ordinal).Count() != resource.Configs.Count)
            return (ErrorCode.InvalidRequest, "Error due to duplicate config keys");
        var nulls = resource.Configs.Where(c => c.Value is null).Select(c => c.Name).ToList();
        if (nulls.Count > 0) return (ErrorCode.InvalidRequest, $"Null value not supported for : {string.Join(", ", nulls)}");
        switch (resource.ResourceType)
        {
            case ConfigResources.Topic:
            {
                var (error, message, _) = ConfigResources.CheckTopic(broker, resource.ResourceName);
                if (error != ErrorCode.None) return (error, message);
                var overrides = resource.Configs.ToDictionary(c => c.Name, c => c.Value!, StringComparer.Ordinal);
                return broker.Replicas.SetTopicConfigs(resource.ResourceName, overrides, validateOnly);
            }
            case ConfigResources.Broker:
            {
                var (error, message, perBroker) = ConfigResources.CheckAlterBroker(broker, resource.ResourceName);
                if (error != ErrorCode.None) return (error, message);
                var changes = resource.Configs.ToDictionary(c => c.Name, c => c.Value, StringComparer.Ordinal);
                if (BrokerConfig.ValidateDynamicBrokerUpdate(changes, perBroker) is { } problem) return (ErrorCode.InvalidRequest, problem);
                if (!validateOnly && broker.Replicas.ClusterStore is IClusterConfigStore zk)
                {
                    // ZooKeeper mode: /config/brokers/<id> or <default> and a change notification
                    // (AdminZkClient.changeBrokerConfig); every broker applies it from there.
                    return zk.SetBrokerConfigs(perBroker, changes.ToDictionary(kv => kv.Key, kv => kv.Value!, StringComparer.Ordinal));
                }
                if (!validateOnly)
                {
                    broker.Config.ApplyDynamic(perBroker, changes, replaceAll: true);
                    broker.Replicas.RefreshLogConfigs();
                }
                return (ErrorCode.None, null);
            }
            default:
                // ConfigAdminManager.preprocess: legacy AlterConfigs has no BROKER_LOGGER either.
                return (ErrorCode.InvalidRequest, $"Unknown resource type {resource.ResourceType}");
        }
    }
}
