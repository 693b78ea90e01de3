// DescribeConfigs (key 32), versions 0-4.
//
// Behaviour (ConfigHelper.describeConfigs): TOPIC resources list every topic config with its
// value, source (DYNAMIC_TOPIC_CONFIG / STATIC_BROKER_CONFIG / DEFAULT_CONFIG ...) and, when asked
// (v1+), the synonyms chain topic override → broker keys → defaults; BROKER resources list this
// broker's configs (name = its id) or the dynamic cluster defaults (empty name). Passwords and
// keys of unknown type are sensitive: value null. v0 reports is_default instead of a source;
// v3+ adds config_type. Illegal topic names INVALID_TOPIC_EXCEPTION, unknown topics
// UNKNOWN_TOPIC_OR_PARTITION, another broker's id INVALID_REQUEST.
// Differences from upstream: documentation is not returned (null); BROKER_LOGGER resources are
// INVALID_REQUEST (no log4j loggers to describe); the broker key catalogue covers the commonly
// set keys rather than all of KafkaConfig.
// Authorization (KafkaApis.handleDescribeConfigsRequest): DESCRIBE_CONFIGS on the topic
// (TOPIC_AUTHORIZATION_FAILED) or, for brokers, on the cluster (CLUSTER_AUTHORIZATION_FAILED).
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class DescribeConfigsHandler
{
    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, DescribeConfigsRequest request)
    {
        var broker = context.Broker;
        short v = context.ApiVersion;
        bool synonyms = v >= 1 && request.IncludeSynonyms;
        var response = new DescribeConfigsResponse();
        foreach (var resource in request.Resources)
        {
            var result = new DescribeConfigsResponse.DescribeConfigsResult
            {
                ResourceType = resource.ResourceType, ResourceName = resource.ResourceName, ErrorMessage = null,
            };
            response.Results.Add(result);
            if (Security.Acl.ConfigAuthz.Check(context, resource.ResourceType, resource.ResourceName, Security.Acl.AclOperation.DescribeConfigs) is { } denied)
            {
                result.ErrorCode = (short)denied.Code;
                result.ErrorMessage = denied.Message;
                continue;
            }
            List<ConfigEntry> entries;
            switch (resource.ResourceType)
            {
                case ConfigResources.Topic:
                {
                    var (error, message, topic) = ConfigResources.CheckTopic(broker, resource.ResourceName);
                    if (error != ErrorCode.None) { result.ErrorCode = (short)error; result.ErrorMessage = message; continue; }
                    entries = broker.Config.DescribeTopic(topic!.Configs, resource.ConfigurationKeys, synonyms);
                    break;
                }
                case ConfigResources.Broker:
                {
                    var (error, message, perBroker) = ConfigResources.CheckBroker(broker, resource.ResourceName);
                    if (error != ErrorCode.None) { result.ErrorCode = (short)error; result.ErrorMessage = message; continue; }
                    entries = broker.Config.DescribeBroker(perBroker, resource.ConfigurationKeys, synonyms);
                    break;
                }
                case Telemetry.ClientMetricsConfigs.ResourceType: Telemetry.ClientMetricsConfigs.Describe(context, resource, result); continue;
                default:
                    result.ErrorCode = (short)ErrorCode.InvalidRequest;
                    result.ErrorMessage = $"Unsupported resource type: {resource.ResourceType}";
                    continue;
            }
            foreach (var e in entries)
            {
                result.Configs.Add(new DescribeConfigsResponse.DescribeConfigsResourceResult
                {
                    Name = e.Name,
                    Value = e.Value,
                    ReadOnly = e.ReadOnly,
                    IsDefault = v == 0 && e.Source == ConfigSource.DefaultConfig,
                    ConfigSource = (sbyte)e.Source,
                    IsSensitive = e.Sensitive,
                    Synonyms = e.Synonyms.Select(s => new DescribeConfigsResponse.DescribeConfigsSynonym
                    {
                        Name = s.Name, Value = s.Value, Source = (sbyte)s.Source,
                    }).ToList(),
                    ConfigType = (sbyte)e.Type,
                    Documentation = null,
                });
            }
        }
        return ValueTask.FromResult<IKafkaMessage?>(response);
    }
}
