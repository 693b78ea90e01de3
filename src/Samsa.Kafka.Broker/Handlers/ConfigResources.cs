using System.Globalization;
using Samsa.Kafka.Broker.Cluster;
using Samsa.Kafka.Protocol;

namespace Samsa.Kafka.Broker.Handlers;

/// <summary>ConfigResource.Type ids and the resource-name checks shared by the config APIs.</summary>
internal static class ConfigResources
{
    public const sbyte Topic = 2, Broker = 4, BrokerLogger = 8;

    /// <summary>For BROKER resources: null name / "" is the cluster default; else it must be this broker's id.</summary>
    public static (ErrorCode Error, string? Message, bool PerBroker) CheckBroker(KafkaBroker broker, string? name)
    {
        if (string.IsNullOrEmpty(name)) return (ErrorCode.None, null, false);
        if (!int.TryParse(name, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int id))
            return (ErrorCode.InvalidRequest, $"Broker id must be an integer, but it is: {name}", false);
        if (id != broker.BrokerId)
            return (ErrorCode.InvalidRequest, $"Unexpected broker id, expected {broker.BrokerId} or empty string, but received {name}", false);
        return (ErrorCode.None, null, true);
    }

    /// <summary>For AlterConfigs / IncrementalAlterConfigs on BROKER resources (upstream
    /// ConfigAdminManager.validateResourceNameIsCurrentNodeId, whose messages differ from DescribeConfigs').</summary>
    public static (ErrorCode Error, string? Message, bool PerBroker) CheckAlterBroker(KafkaBroker broker, string? name)
    {
        if (string.IsNullOrEmpty(name)) return (ErrorCode.None, null, false);
        if (!int.TryParse(name, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int id))
            return (ErrorCode.InvalidRequest, $"Node id must be an integer, but it is: {name}", false);
        if (id != broker.BrokerId)
            return (ErrorCode.InvalidRequest, $"Unexpected broker id, expected {broker.BrokerId}, but received {name}", false);
        return (ErrorCode.None, null, true);
    }

    public static (ErrorCode Error, string? Message, TopicState? Topic) CheckTopic(KafkaBroker broker, string name)
    {
        if (TopicName.Validate(name) is { } bad) return (ErrorCode.InvalidTopicException, bad, null);
        var topic = broker.Replicas.GetTopic(name);
        return topic is null
            ? (ErrorCode.UnknownTopicOrPartition, "This server does not host this topic-partition.", null)
            : (ErrorCode.None, null, topic);
    }
}
