// IncrementalAlterConfigs (key 44), versions 0-1 (KIP-339).
//
// Behaviour (ConfigAdminManager / ZkAdminManager.incrementalAlterConfigs): each key is SET (0),
// DELETE (1), APPEND (2) or SUBTRACT (3) against the resource's current overrides; APPEND and
// SUBTRACT only apply to LIST configs (INVALID_CONFIG otherwise); the result is validated as a
// whole (INVALID_CONFIG with upstream's message). As ConfigAdminManager.preprocess: a resource
// named twice, a key named twice and a null value for anything but DELETE are INVALID_REQUEST.
// APPEND/SUBTRACT start from the stored override, else the key's default, and on a name that is
// no config get UNKNOWN_SERVER_ERROR (upstream's lookup throws). BROKER resources: the resulting
// override set is checked by DynamicBrokerConfig.validateConfigs (INVALID_REQUEST); names that
// are no broker config are accepted and stored.
// Differences from upstream: listener, SSL and SASL keys are validated and stored but not applied.
// Authorization (KafkaApis): ALTER_CONFIGS on the topic (TOPIC_AUTHORIZATION_FAILED) or, for
// brokers, on the cluster (CLUSTER_AUTHORIZATION_FAILED).
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
                ? (ErrorCode.InvalidRequest, "Each resource must appear at most once.")
                : Security.Acl.ConfigAuthz.Check(context, resource.ResourceType, resource.ResourceName, Security.Acl.AclOperation.AlterConfigs) is { } denied
                    ? (denied.Code, denied.Message)
                    : resource.ResourceType == Telemetry.ClientMetricsConfigs.ResourceType ? Telemetry.ClientMetricsConfigs.IncrementalAlter(context, resource, request.ValidateOnly)
                    : Apply(broker, resource, request.ValidateOnly);
            result.ErrorCode = (short)error;
            result.ErrorMessage = error == ErrorCode.None ? null : message;
        }
        return ValueTask.FromResult<IKafkaMessage?>(response);
    }

    private static (ErrorCode, string?) Apply(KafkaBroker broker, IncrementalAlterConfigsRequest.AlterConfigsResource resource, bool validateOnly)
    {
        var dupKeys = resource.Configs.GroupBy(c => c.Name).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        if (dupKeys.Count > 0) return (ErrorCode.InvalidRequest, "Error due to duplicate config keys");
        var nulls = resource.Configs.Where(c => c.ConfigOperation != Delete && c.Value is null).Select(c => c.Name).ToList();
        if (nulls.Count > 0) return (ErrorCode.InvalidRequest, $"Null value not supported for : {string.Join(", ", nulls)}");
        switch (resource.ResourceType)
        {
            case ConfigResources.Topic:
            {
                var (error, message, topic) = ConfigResources.CheckTopic(broker, resource.ResourceName);
                if (error != ErrorCode.None) return (error, message);
                var current = new Dictionary<string, string?>(topic!.Configs.ToDictionary(kv => kv.Key, kv => (string?)kv.Value), StringComparer.Ordinal);
                var (opError, problem) = ApplyOps(resource, current, ConfigCatalog.Topic);
                if (opError != ErrorCode.None) return (opError, problem);
                var overrides = current.Where(kv => kv.Value is not null).ToDictionary(kv => kv.Key, kv => kv.Value!, StringComparer.Ordinal);
                return broker.Replicas.SetTopicConfigs(topic.Name, overrides, validateOnly);
            }
            case ConfigResources.Broker:
            {
                var (error, message, perBroker) = ConfigResources.CheckAlterBroker(broker, resource.ResourceName);
                if (error != ErrorCode.None) return (error, message);
                var current = broker.Config.DynamicConfigs(perBroker).ToDictionary(kv => kv.Key, kv => (string?)kv.Value, StringComparer.Ordinal);
                var (opError, problem) = ApplyOps(resource, current, ConfigCatalog.Broker);
                if (opError != ErrorCode.None) return (opError, problem);
                var changed = resource.Configs.Select(c => c.Name).ToDictionary(n => n, n => current.GetValueOrDefault(n), StringComparer.Ordinal);
                // Upstream validates the whole resulting override set, stored keys included.
                var resulting = current.Where(kv => kv.Value is not null).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
                if (BrokerConfig.ValidateDynamicBrokerUpdate(resulting, perBroker) is { } invalid) return (ErrorCode.InvalidRequest, invalid);
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

    // Applies the operations to `current` (null value = key removed), as upstream's
    // prepareIncrementalConfigs: APPEND/SUBTRACT start from the stored override, else the key's
    // default (not the effective value). Returns the error and message, or NONE.
    private static (ErrorCode, string?) ApplyOps(IncrementalAlterConfigsRequest.AlterConfigsResource resource, Dictionary<string, string?> current,
        IReadOnlyDictionary<string, ConfigDefinition> catalogue)
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
                    // Upstream looks the key up in a Scala map, which throws for an unknown name:
                    // UNKNOWN_SERVER_ERROR without a message.
                    if (!catalogue.TryGetValue(c.Name, out var def)) return (ErrorCode.UnknownServerError, null);
                    if (def.Type != ConfigType.List)
                        return (ErrorCode.InvalidConfig, $"Config value {(c.ConfigOperation == Append ? "append" : "subtract")} is not allowed for config key: {c.Name}");
                    var existing = current.TryGetValue(c.Name, out var cur) && cur is not null
                        ? ConfigDefinition.ParseType(c.Name, cur, ConfigType.List) as List<string>
                        : def.Default is null ? null : ConfigDefinition.ParseType(c.Name, def.Default, ConfigType.List) as List<string>;
                    var list = new List<string>(existing ?? []);
                    var items = c.Value is null ? [] : (List<string>)ConfigDefinition.ParseType(c.Name, c.Value, ConfigType.List);
                    if (c.ConfigOperation == Append) { foreach (var i in items) if (!list.Contains(i)) list.Add(i); }
                    else list.RemoveAll(items.Contains);
                    current[c.Name] = string.Join(",", list);
                    break;
                }
                default:
                    return (ErrorCode.InvalidRequest, $"Unknown operations type {c.ConfigOperation}");
            }
        }
        return (ErrorCode.None, null);
    }
}
