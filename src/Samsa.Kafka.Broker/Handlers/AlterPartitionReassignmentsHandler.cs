// AlterPartitionReassignments (key 45), versions 0-1 (flexible). KIP-455.
//
// Behaviour (upstream KafkaApis.handleAlterPartitionReassignments, ZooKeeper mode): only the
// controller takes the request; another broker answers NOT_CONTROLLER at the top level and the
// admin client retries against the controller. Per partition: a target replica list starts (or
// replaces) a reassignment, a null list cancels one (NO_REASSIGNMENT_IN_PROGRESS when none runs).
// Targets that are empty, hold duplicates or negative ids, or add brokers that are not alive get
// INVALID_REPLICA_ASSIGNMENT; unknown partitions UNKNOWN_TOPIC_OR_PARTITION. The answer comes once
// the reassignment is recorded in the topic znode, not when it completes (as upstream).
// Without ZooKeeper (single broker) this broker is the whole cluster: the only valid target is
// itself, which is already the assignment, and nothing is ever in progress.
// v1 (KIP-860): AllowReplicationFactorChange false makes a target whose size differs from the
// partition's original replica count INVALID_REPLICATION_FACTOR ("The replication factor is changed
// from X to Y"); the response echoes the flag. Cancellations are not affected.
// Authorization (KafkaApis.handleAlterPartitionReassignmentsRequest): CLUSTER ALTER, else
// CLUSTER_AUTHORIZATION_FAILED.
using Samsa.Kafka.Broker.Cluster.ZooKeeper;
using Samsa.Kafka.Broker.Controller;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class AlterPartitionReassignmentsHandler
{
    public static async ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, AlterPartitionReassignmentsRequest request)
    {
        var broker = context.Broker;
        if (!Security.Acl.Authz.Cluster(context, Security.Acl.AclOperation.Alter))
        {
            // Upstream AlterPartitionReassignmentsRequest.getErrorResponse: top level and every partition.
            const string denied = "Request AlterPartitionReassignments is not authorized.";
            return new AlterPartitionReassignmentsResponse
            {
                ErrorCode = (short)ErrorCode.ClusterAuthorizationFailed,
                ErrorMessage = denied,
                AllowReplicationFactorChange = request.AllowReplicationFactorChange,
                Responses = request.Topics.Select(t => new AlterPartitionReassignmentsResponse.ReassignableTopicResponse
                {
                    Name = t.Name,
                    Partitions = t.Partitions.Select(p => new AlterPartitionReassignmentsResponse.ReassignablePartitionResponse
                    {
                        PartitionIndex = p.PartitionIndex, ErrorCode = (short)ErrorCode.ClusterAuthorizationFailed, ErrorMessage = denied,
                    }).ToList(),
                }).ToList(),
            };
        }
        var requests = request.Topics
            .SelectMany(t => t.Partitions.Select(p => new ReassignmentRequest(t.Name, p.PartitionIndex, p.Replicas, request.AllowReplicationFactorChange)))
            .ToList();
        ErrorCode error;
        List<ReassignmentResult> results;
        if (broker.Cluster is { } cluster)
        {
            string? _;
            (error, _, results) = await cluster.AlterPartitionReassignmentsAsync(requests);
        }
        else
        {
            error = ErrorCode.None;
            results = requests.Select(r => Standalone(broker, r)).ToList();
        }
        var response = new AlterPartitionReassignmentsResponse { ErrorCode = (short)error, AllowReplicationFactorChange = request.AllowReplicationFactorChange };
        if (error != ErrorCode.None) return response;
        foreach (var t in request.Topics)
        {
            var tr = new AlterPartitionReassignmentsResponse.ReassignableTopicResponse { Name = t.Name };
            foreach (var p in t.Partitions)
            {
                var r = results.FirstOrDefault(x => x.Topic == t.Name && x.Partition == p.PartitionIndex);
                tr.Partitions.Add(new AlterPartitionReassignmentsResponse.ReassignablePartitionResponse
                {
                    PartitionIndex = p.PartitionIndex,
                    ErrorCode = (short)(r?.Error ?? ErrorCode.UnknownServerError),
                    ErrorMessage = r?.Message,
                });
            }
            response.Responses.Add(tr);
        }
        return response;
    }

    private static ReassignmentResult Standalone(KafkaBroker broker, ReassignmentRequest r)
    {
        if (broker.Replicas.GetPartition(r.Topic, r.Partition) is null)
            return new(r.Topic, r.Partition, ErrorCode.UnknownTopicOrPartition, "The partition does not exist.");
        if (r.Replicas is null) return new(r.Topic, r.Partition, ErrorCode.NoReassignmentInProgress, null);
        var current = new ReassigningAssignment([broker.BrokerId], [], []);
        if (r.ReplicationFactorProblem(current) is { } rfProblem)
            return new(r.Topic, r.Partition, ErrorCode.InvalidReplicationFactor, rfProblem);
        var problem = PartitionReassignment.ValidateTarget(r.Replicas, current, new HashSet<int> { broker.BrokerId });
        return problem is null
            ? new(r.Topic, r.Partition, ErrorCode.None, null)
            : new(r.Topic, r.Partition, ErrorCode.InvalidReplicaAssignment, problem);
    }
}
