// ControlledShutdown (key 7), versions 0-3. v0 comes with request header v0 (no client id);
// v2 adds broker_epoch (KIP-380); v3 is flexible.
//
// Behaviour (ZooKeeper-mode KafkaApis.handleControlledShutdownRequest →
// KafkaController.doControlledShutdown): served by the controller only; any other broker answers
// NOT_CONTROLLER (upstream's ControllerMovedException). An unregistered broker gets
// BROKER_NOT_AVAILABLE, a broker epoch older than the broker's current registration
// STALE_BROKER_EPOCH (-1 = unknown, accepted). Otherwise the controller moves the leadership of
// the broker's partitions with more than one replica to another live ISR member, takes the broker
// out of every ISR (except where it is the only member) and answers with the partitions it still
// leads — those without another live ISR member; the broker retries while any remain.
//
// Single-node mode: this broker is the controller and every partition has one replica, so there
// is nothing to move; other broker ids are BROKER_NOT_AVAILABLE.
// Authorization (KafkaApis.handleControlledShutdownRequest): CLUSTER CLUSTER_ACTION, else
// CLUSTER_AUTHORIZATION_FAILED.
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class ControlledShutdownHandler
{
    public static async ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, ControlledShutdownRequest request)
    {
        var broker = context.Broker;
        if (!Security.Acl.Authz.Cluster(context, Security.Acl.AclOperation.ClusterAction))
            return new ControlledShutdownResponse { ErrorCode = (short)ErrorCode.ClusterAuthorizationFailed };
        long brokerEpoch = context.ApiVersion >= 2 ? request.BrokerEpoch : -1;
        ErrorCode error;
        List<(string Topic, int Partition)> remaining;
        if (broker.Cluster is { } cluster)
            (error, remaining) = await cluster.ControlledShutdownOnControllerAsync(request.BrokerId, brokerEpoch);
        else
            (error, remaining) = (request.BrokerId == broker.BrokerId ? ErrorCode.None : ErrorCode.BrokerNotAvailable, []);
        return new ControlledShutdownResponse
        {
            ErrorCode = (short)error,
            RemainingPartitions = remaining.Select(r => new ControlledShutdownResponse.RemainingPartition
            {
                TopicName = r.Topic, PartitionIndex = r.Partition,
            }).ToList(),
        };
    }
}
