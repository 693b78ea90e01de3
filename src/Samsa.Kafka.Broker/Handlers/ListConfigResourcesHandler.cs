// ListConfigResources (key 74), versions 0-1 (v0 was ListClientMetricsResources, KIP-714;
// v1 KIP-1142).
//
// Behaviour (upstream KafkaApis and ListConfigResourcesRequest.supportedResourceTypes): v0 lists
// the client-metrics subscriptions by name. v1 lists the resources of the asked types — an empty
// list means every type v1 supports: TOPIC (2, every topic), BROKER (4) and BROKER_LOGGER (8)
// (the id of every live broker), CLIENT_METRICS (16, the subscriptions) and GROUP (32) — each
// with its type; a type outside that set makes the whole answer UNSUPPORTED_VERSION.
// Authorization: DESCRIBE_CONFIGS on the cluster, else CLUSTER_AUTHORIZATION_FAILED.
// Differences from upstream: Samsa has no GROUP config resource (KIP-848 group configs), so GROUP
// lists the groups this broker coordinates rather than also groups with stored configs.
using Samsa.Kafka.Broker.Security.Acl;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class ListConfigResourcesHandler
{
    private const sbyte Topic = 2, Broker = 4, BrokerLogger = 8, ClientMetrics = 16, Group = 32;
    private static readonly sbyte[] V1Types = [Topic, Broker, BrokerLogger, ClientMetrics, Group];

    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, ListConfigResourcesRequest request) =>
        ValueTask.FromResult<IKafkaMessage?>(Handle(context, request));

    private static ListConfigResourcesResponse Handle(RequestContext context, ListConfigResourcesRequest request)
    {
        if (!Authz.Cluster(context, AclOperation.DescribeConfigs))
            return new ListConfigResourcesResponse { ErrorCode = (short)ErrorCode.ClusterAuthorizationFailed };
        var broker = context.Broker;
        IReadOnlyList<sbyte> types = context.ApiVersion == 0 ? [ClientMetrics]
            : request.ResourceTypes.Count == 0 ? V1Types : request.ResourceTypes;
        if (types.Any(t => Array.IndexOf(V1Types, t) < 0))
            return new ListConfigResourcesResponse { ErrorCode = (short)ErrorCode.UnsupportedVersion };
        var response = new ListConfigResourcesResponse();
        foreach (var type in types.Distinct())
        {
            IEnumerable<string> names = type switch
            {
                Topic => broker.Replicas.Topics.Select(t => t.Name).Order(StringComparer.Ordinal),
                Broker or BrokerLogger => (broker.Cluster?.LiveBrokers.Select(b => b.Id) ?? [broker.BrokerId])
                    .Order().Select(id => id.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                ClientMetrics => broker.ClientTelemetry.SubscriptionNames(),
                _ => broker.Groups.Coordinator.ListGroups(null, null).Groups.Select(g => g.GroupId).Order(StringComparer.Ordinal),
            };
            foreach (var name in names)
                response.ConfigResources.Add(new ListConfigResourcesResponse.ConfigResource { ResourceName = name, ResourceType = type });
        }
        return response;
    }
}
