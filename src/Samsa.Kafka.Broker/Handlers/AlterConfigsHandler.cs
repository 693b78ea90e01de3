// AlterConfigs (key 33), versions 0-2.
//
// Behaviour (ZkAdminManager.alterConfigs): the legacy API replaces the whole override set of a
// resource. TOPIC: every key must be a topic config with a valid value (INVALID_CONFIG with
// upstream's message), null values are INVALID_REQUEST. BROKER (this broker's id, or empty for
// the cluster default): only dynamically updatable keys are accepted (INVALID_CONFIG "Cannot
// update these configs dynamically"). A resource listed twice is INVALID_REQUEST. validate_only
// checks without applying. In ZooKeeper mode both resource types are written to /config/<type>/<name>
// with a /config/changes notification, and the answer waits until this broker applied them.
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
                ? (ErrorCode.InvalidRequest, $"Error due to duplicate config keys in request")
                : Apply(broker, resource, request.ValidateOnly);
            result.ErrorCode = (short)error;
            result.ErrorMessage = error == ErrorCode.None ? null : message;
        }
        return ValueTask.FromResult<IKafkaMessage?>(response);
    }

    private static (ErrorCode, string?) Apply(KafkaBroker broker, AlterConfigsRequest.AlterConfigsResource resource, bool validateOnly)
    {
        var nullKey = resource.Configs.FirstOrDefault(c => c.Value is null);
        if (nullKey is not null) return (ErrorCode.InvalidRequest, $"Null value not supported for : {nullKey.Name}");
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
                var (error, message, perBroker) = ConfigResources.CheckBroker(broker, resource.ResourceName);
                if (error != ErrorCode.None) return (error, message);
                var changes = resource.Configs.ToDictionary(c => c.Name, c => c.Value, StringComparer.Ordinal);
                if (BrokerConfig.ValidateDynamicBrokerUpdate(changes) is { } problem) return (ErrorCode.InvalidConfig, problem);
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
                return (ErrorCode.InvalidRequest, $"AlterConfigs is only supported for topics and brokers, but resource type is {resource.ResourceType}");
        }
    }
}
