// ElectLeaders (key 43), versions 0-2. v0 always elects preferred replicas; v1 adds
// election_type (KIP-460: 0 = PREFERRED, 1 = UNCLEAN) and the top-level error code.
//
// Behaviour (ZooKeeper-mode KafkaApis.handleElectLeaders → ReplicaManager.electLeaders →
// KafkaController.processReplicaLeaderElection): the request is handled where it arrives (clients
// send it to the controller named in Metadata); a broker that is not the controller answers
// NOT_CONTROLLER per partition. PREFERRED elects the first assigned replica when it is alive and
// in the ISR (PREFERRED_LEADER_NOT_AVAILABLE otherwise, ELECTION_NOT_NEEDED when it leads
// already); UNCLEAN elects only for a partition without a live leader: a live ISR member, else
// any live replica (ELIGIBLE_LEADERS_NOT_AVAILABLE when none). Unknown partitions get
// UNKNOWN_TOPIC_OR_PARTITION, partitions of a topic being deleted INVALID_TOPIC_EXCEPTION. Null
// topic_partitions means every partition, and then partitions that needed no election are left
// out of the answer. The answer waits (up to timeout_ms) until this broker's metadata shows the
// new leaders; partitions still pending get REQUEST_TIMED_OUT.
//
// Single-node mode (no zookeeper.connect): this broker is the controller and the only replica,
// so every existing partition is already led by its preferred (and only) replica.
// Authorization (KafkaApis.handleElectLeaders): CLUSTER ALTER, else CLUSTER_AUTHORIZATION_FAILED.
using Samsa.Kafka.Broker.Controller;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class ElectLeadersHandler
{
    public static async ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, ElectLeadersRequest request)
    {
        var broker = context.Broker;
        var type = context.ApiVersion == 0 ? ElectionType.Preferred : (ElectionType)request.ElectionType;
        var response = new ElectLeadersResponse();
        if (!Security.Acl.Authz.Cluster(context, Security.Acl.AclOperation.Alter))
        {
            // Upstream: the top-level error and every requested partition CLUSTER_AUTHORIZATION_FAILED.
            response.ErrorCode = (short)ErrorCode.ClusterAuthorizationFailed;
            foreach (var t in request.TopicPartitions ?? [])
                response.ReplicaElectionResults.Add(new ElectLeadersResponse.ReplicaElectionResult
                {
                    Topic = t.Topic,
                    PartitionResult = t.Partitions.Distinct().Select(p => new ElectLeadersResponse.PartitionResult
                    {
                        PartitionId = p, ErrorCode = (short)ErrorCode.ClusterAuthorizationFailed, ErrorMessage = "Cluster authorization failed.",
                    }).ToList(),
                });
            return response;
        }
        if (type is not (ElectionType.Preferred or ElectionType.Unclean))
        {
            // Upstream's ElectionType.valueOf rejects other values before any election.
            response.ErrorCode = (short)ErrorCode.InvalidRequest;
            return response;
        }
        List<(string Topic, int Partition)>? partitions = request.TopicPartitions?
            .SelectMany(t => t.Partitions.Select(p => (t.Topic, p))).Distinct().ToList();

        Dictionary<(string Topic, int Partition), (ErrorCode Error, string? Message)> results;
        if (broker.Cluster is { } cluster)
        {
            results = await cluster.ElectLeadersAsync(partitions, type, request.TimeoutMs);
        }
        else
        {
            results = [];
            foreach (var tp in partitions ?? broker.Replicas.Topics.SelectMany(t => t.Partitions.Select(p => (t.Name, p.Index))).ToList())
                results[tp] = broker.Replicas.GetPartition(tp.Topic, tp.Partition) is null
                    ? (ErrorCode.UnknownTopicOrPartition, "The partition does not exist.")
                    : (ErrorCode.ElectionNotNeeded, null);
        }

        var shown = partitions is null ? results.Where(r => r.Value.Error != ErrorCode.ElectionNotNeeded) : results;
        foreach (var group in shown.GroupBy(r => r.Key.Topic))
        {
            response.ReplicaElectionResults.Add(new ElectLeadersResponse.ReplicaElectionResult
            {
                Topic = group.Key,
                PartitionResult = group.OrderBy(r => r.Key.Partition).Select(r => new ElectLeadersResponse.PartitionResult
                {
                    PartitionId = r.Key.Partition, ErrorCode = (short)r.Value.Error, ErrorMessage = r.Value.Message,
                }).ToList(),
            });
        }
        return response;
    }
}
