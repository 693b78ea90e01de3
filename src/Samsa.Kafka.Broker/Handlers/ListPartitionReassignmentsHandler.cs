// ListPartitionReassignments (key 46), version 0 (flexible). KIP-455.
//
// Behaviour (upstream KafkaApis.handleListPartitionReassignments, ZooKeeper mode): only the
// controller answers (others NOT_CONTROLLER). Null topics lists every partition being reassigned;
// named partitions that are not moving, or do not exist, are left out. Each entry carries the full
// replica list (target replicas first, then the rest of the original ones), the adding and the
// removing replicas, as the topic znode holds them. Without ZooKeeper nothing is ever moving.
// Authorization (KafkaApis.handleListPartitionReassignmentsRequest): CLUSTER DESCRIBE, else
// CLUSTER_AUTHORIZATION_FAILED.
using Samsa.Kafka.Broker.Cluster.ZooKeeper;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class ListPartitionReassignmentsHandler
{
    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, ListPartitionReassignmentsRequest request)
    {
        var response = new ListPartitionReassignmentsResponse();
        if (!Security.Acl.Authz.Cluster(context, Security.Acl.AclOperation.Describe))
        {
            response.ErrorCode = (short)ErrorCode.ClusterAuthorizationFailed;
            response.ErrorMessage = "Request ListPartitionReassignments is not authorized.";
            return ValueTask.FromResult<IKafkaMessage?>(response);
        }
        if (context.Broker.Cluster is not { } cluster) return ValueTask.FromResult<IKafkaMessage?>(response);
        var filter = request.Topics?.Select(t => (t.Name, (IReadOnlyList<int>)t.PartitionIndexes)).ToList();
        var (error, ongoing) = cluster.ListPartitionReassignments(filter);
        response.ErrorCode = (short)error;
        foreach (var group in ongoing.GroupBy(o => o.Topic, StringComparer.Ordinal))
        {
            response.Topics.Add(new ListPartitionReassignmentsResponse.OngoingTopicReassignment
            {
                Name = group.Key,
                Partitions = group.Select(o => new ListPartitionReassignmentsResponse.OngoingPartitionReassignment
                {
                    PartitionIndex = o.Partition,
                    Replicas = o.Assignment.Replicas.ToList(),
                    AddingReplicas = o.Assignment.Adding.ToList(),
                    RemovingReplicas = o.Assignment.Removing.ToList(),
                }).ToList(),
            });
        }
        return ValueTask.FromResult<IKafkaMessage?>(response);
    }
}
