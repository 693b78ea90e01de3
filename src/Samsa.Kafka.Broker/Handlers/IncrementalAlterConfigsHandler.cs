// IncrementalAlterConfigs (key 44), versions 0-1 (KIP-339).
//
// Behaviour (ConfigAdminManager / ZkAdminManager.incrementalAlterConfigs): each key is SET (0),
// DELETE (1), APPEND (2) or SUBTRACT (3) against the resource's current overrides; APPEND and
// SUBTRACT only apply to LIST configs (INVALID_CONFIG otherwise); the result is validated as a
// whole (INVALID_CONFIG with upstream's message). A key named twice in one resource, or a
// resource named twice, is INVALID_REQUEST. BROKER resources accept dynamic keys only.
using Samsa.Kafka.Broker.Cluster.ZooKeeper;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class IncrementalAlterConfigsHandler
{
    private const sbyte Set = 0, Delete = 1, Append = 2, Subtract = 3;

    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, IncrementalAlterConfigsRequest request)
    {
        var broker = context.Broker;
        var response = new IncrementalAlterConfigsResponse();
        var duplicates = request.Resources.GroupBy(r => (r.ResourceType, r.ResourceName)).Where(g => g.Count() > 1).Select(g => g.Key).ToHashSet();
        foreach (var resource in request.Resources)
        {
            var result = new IncrementalAlterConfigsResponse.AlterConfigsResourceResponse { ResourceType = resource.ResourceType, ResourceName = resource.ResourceName, ErrorMessage = null };
            response.Responses.Add(result);
            (ErrorCode error, string? message) = duplicates.Contains((resource.ResourceType, resource.ResourceName))
                ? (ErrorCode.InvalidRequest, "Error due to duplicate resources in request")
                : Apply(broker, resource, request.ValidateOnly);
            result.ErrorCode = (short)error;
            result.ErrorMessage = error == ErrorCode.None ? null : message;
        }
        return ValueTask.FromResult<IKafkaMessage?>(response);
    }

    private static (ErrorCode, string?) Apply(KafkaBroker broker, IncrementalAlterConfigsRequest.AlterConfigsResource resource, bool validateOnly)
    {
        var dupKeys = resource.Configs.GroupBy(c => c.Name).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        if (dupKeys.Count > 0) return (ErrorCode.InvalidRequest, $"Error due to duplicate config keys : {string.Join(",", dupKeys)}");
        switch (resource.ResourceType)
        {
            case ConfigResources.Topic:
            {
                var (error, message, topic) = ConfigResources.CheckTopic(broker, resource.ResourceName);
                if (error != ErrorCode.None) return (error, message);
                var current = new Dictionary<string, string?>(topic!.Configs.ToDictionary(kv => kv.Key, kv => (string?)kv.Value), StringComparer.Ordinal);
                var problem = ApplyOps(resource, current, ConfigCatalog.Topic, name => broker.Config.LogConfigFor(topic.Configs).Values.GetValueOrDefault(name));
                if (problem is not null) return (ErrorCode.InvalidConfig, problem);
                var overrides = current.Where(kv => kv.Value is not null).ToDictionary(kv => kv.Key, kv => kv.Value!, StringComparer.Ordinal);
                return broker.Replicas.SetTopicConfigs(topic.Name, overrides, validateOnly);
            }
            case ConfigResources.Broker:
            {
                var (error, message, perBroker) = ConfigResources.CheckBroker(broker, resource.ResourceName);
                if (error != ErrorCode.None) return (error, message);
                var current = broker.Config.DynamicConfigs(perBroker).ToDictionary(kv => kv.Key, kv => (string?)kv.Value, StringComparer.Ordinal);
                var problem = ApplyOps(resource, current, ConfigCatalog.Broker, name => broker.Config.Get(name));
                if (problem is not null) return (ErrorCode.InvalidConfig, problem);
                var changed = resource.Configs.Select(c => c.Name).ToDictionary(n => n, n => current.GetValueOrDefault(n), StringComparer.Ordinal);
                if (BrokerConfig.ValidateDynamicBrokerUpdate(changed) is { } invalid) return (ErrorCode.InvalidConfig, invalid);
                if (!validateOnly && broker.Replicas.ClusterStore is IClusterConfigStore zk)
                {
                    // ZooKeeper mode: the whole resulting override set goes to ZooKeeper, as
                    // ZkAdminManager.incrementalAlterConfigs writes it back with changeBrokerConfig.
                    return zk.SetBrokerConfigs(perBroker, current.Where(kv => kv.Value is not null)
                        .ToDictionary(kv => kv.Key, kv => kv.Value!, StringComparer.Ordinal));
                }
                if (!validateOnly)
                {
                    broker.Config.ApplyDynamic(perBroker, changed, replaceAll: false);
                    broker.Replicas.RefreshLogConfigs();
                }
                return (ErrorCode.None, null);
            }
            default:
                return (ErrorCode.InvalidRequest, $"Unsupported resource type: {resource.ResourceType}");
        }
    }

    // Applies the operations to `current` (null value = key removed). Returns a problem message or null.
    private static string? ApplyOps(IncrementalAlterConfigsRequest.AlterConfigsResource resource, Dictionary<string, string?> current,
        IReadOnlyDictionary<string, ConfigDefinition> catalogue, Func<string, object?> effective)
    {
        foreach (var c in resource.Configs)
        {
            switch (c.ConfigOperation)
            {
                case Set:
                    current[c.Name] = c.Value;
                    break;
                case Delete:
                    current[c.Name] = null;
                    break;
                case Append:
                case Subtract:
                {
                    if (!catalogue.TryGetValue(c.Name, out var def) || def.Type != ConfigType.List)
                        return $"Config value append is not allowed for config key: {c.Name}";
                    var existing = current.TryGetValue(c.Name, out var cur) && cur is not null
                        ? ConfigDefinition.ParseType(c.Name, cur, ConfigType.List) as List<string>
                        : effective(c.Name) as List<string>;
                    var list = new List<string>(existing ?? []);
                    var items = c.Value is null ? [] : (List<string>)ConfigDefinition.ParseType(c.Name, c.Value, ConfigType.List);
                    if (c.ConfigOperation == Append) { foreach (var i in items) if (!list.Contains(i)) list.Add(i); }
                    else list.RemoveAll(items.Contains);
                    current[c.Name] = string.Join(",", list);
                    break;
                }
                default:
                    return $"Unknown config operation {c.ConfigOperation} for config key: {c.Name}";
            }
        }
        return null;
    }
}
