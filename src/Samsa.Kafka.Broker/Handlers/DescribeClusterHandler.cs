// DescribeCluster (key 60), versions 0-2.
//
// Behaviour (KafkaApis.handleDescribeCluster): the live brokers (single-node: this broker) with
// their address on the request's listener, and the controller; v1+ requests for controller
// endpoints (endpoint_type 2) get MISMATCHED_ENDPOINT_TYPE, as a broker listener answers.
// v2 (KIP-1073): IncludeFencedBrokers asks for fenced brokers too, each flagged IsFenced. Fencing
// is a KRaft notion; in ZooKeeper mode a broker is either registered (listed, IsFenced false) or
// gone (unknown to every broker, as upstream's ZooKeeper-mode MetadataCache), so the flag changes
// nothing here. Authorized operations: the cluster's, when asked, with CLUSTER DESCRIBE (else 0).
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class DescribeClusterHandler
{
    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, DescribeClusterRequest request)
    {
        var broker = context.Broker;
        if (context.ApiVersion >= 1 && request.EndpointType != 1)
        {
            return ValueTask.FromResult<IKafkaMessage?>(new DescribeClusterResponse
            {
                ErrorCode = (short)ErrorCode.MismatchedEndpointType,
                ErrorMessage = "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER",
                ClusterId = broker.ClusterId,
            });
        }
        return ValueTask.FromResult<IKafkaMessage?>(new DescribeClusterResponse
        {
            ClusterId = broker.ClusterId,
            ControllerId = broker.Cluster?.ControllerId ?? broker.BrokerId,
            Brokers = MetadataHandler.BrokerEntries(broker, context.Session.ListenerName).Select(b => new DescribeClusterResponse.DescribeClusterBroker
            {
                BrokerId = b.NodeId, Host = b.Host, Port = b.Port, Rack = b.Rack, IsFenced = false,
            }).ToList(),
            // Upstream computeDescribeClusterResponse: the cluster's operations only with CLUSTER
            // DESCRIBE (else 0); the request itself needs no permission.
            ClusterAuthorizedOperations = !request.IncludeClusterAuthorizedOperations ? int.MinValue
                : Security.Acl.Authz.Cluster(context, Security.Acl.AclOperation.Describe)
                    ? Security.Acl.Authz.Operations(context, Security.Acl.ResourceType.Cluster, Security.Acl.Authz.ClusterName) : 0,
        });
    }
}
