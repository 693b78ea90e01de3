// OffsetForLeaderEpoch (key 23), versions 0-4.
//
// Behaviour (Partition.lastOffsetForLeaderEpoch): for each partition, the end offset of the
// largest leader epoch at or below the requested one (the log end for the current epoch), so a
// consumer can detect log truncation (KIP-320). Unknown partitions
// UNKNOWN_TOPIC_OR_PARTITION; current_leader_epoch (v2+) checked for FENCED_LEADER_EPOCH /
// UNKNOWN_LEADER_EPOCH; an epoch newer than any known answers epoch -1, offset -1.
// Authorization (KafkaApis.handleOffsetForLeaderEpochRequest): CLUSTER CLUSTER_ACTION, else TOPIC
// DESCRIBE per topic (TOPIC_AUTHORIZATION_FAILED).
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class OffsetForLeaderEpochHandler
{
    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, OffsetForLeaderEpochRequest request)
    {
        var broker = context.Broker;
        var response = new OffsetForLeaderEpochResponse();
        // KIP-320: brokers with CLUSTER_ACTION, consumers with TOPIC DESCRIBE.
        var denied = Security.Acl.Authz.Cluster(context, Security.Acl.AclOperation.ClusterAction, logIfDenied: false) ? []
            : Security.Acl.Authz.DeniedTopics(context, Security.Acl.AclOperation.Describe, request.Topics.Select(t => t.Topic));
        foreach (var t in request.Topics)
        {
            var tr = new OffsetForLeaderEpochResponse.OffsetForLeaderTopicResult { Topic = t.Topic };
            response.Topics.Add(tr);
            foreach (var p in t.Partitions)
            {
                var r = new OffsetForLeaderEpochResponse.EpochEndOffset { Partition = p.Partition, LeaderEpoch = -1, EndOffset = -1 };
                tr.Partitions.Add(r);
                if (denied.Contains(t.Topic)) { r.ErrorCode = (short)ErrorCode.TopicAuthorizationFailed; continue; }
                var partition = broker.Replicas.GetPartition(t.Topic, p.Partition);
                if (partition is null) { r.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition; continue; }
                if (!partition.IsLeader) { r.ErrorCode = (short)ErrorCode.NotLeaderOrFollower; continue; }
                if (p.CurrentLeaderEpoch >= 0 && p.CurrentLeaderEpoch != partition.LeaderEpoch)
                {
                    r.ErrorCode = (short)(p.CurrentLeaderEpoch < partition.LeaderEpoch ? ErrorCode.FencedLeaderEpoch : ErrorCode.UnknownLeaderEpoch);
                    continue;
                }
                if (p.LeaderEpoch > partition.LeaderEpoch) continue;
                if (p.LeaderEpoch == partition.LeaderEpoch)
                {
                    r.LeaderEpoch = partition.LeaderEpoch;
                    r.EndOffset = partition.Log.LogEndOffset;
                    continue;
                }
                var (epoch, end) = partition.Log.EndOffsetForEpoch(p.LeaderEpoch);
                r.LeaderEpoch = epoch;
                r.EndOffset = end;
            }
        }
        return ValueTask.FromResult<IKafkaMessage?>(response);
    }
}
