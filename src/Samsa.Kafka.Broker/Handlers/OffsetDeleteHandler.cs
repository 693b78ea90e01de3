// OffsetDelete (key 47), version 0.
//
// Behaviour (KIP-496, GroupCoordinator.handleDeleteOffsets): removes committed offsets of an
// Empty group, or of topics an active consumer group does not subscribe to
// (GROUP_SUBSCRIBED_TO_TOPIC for the others); NON_EMPTY_GROUP for an active group of another
// protocol type; GROUP_ID_NOT_FOUND when unknown; UNKNOWN_TOPIC_OR_PARTITION for partitions of
// topics that do not exist.
// Authorization (KafkaApis.handleOffsetDeleteRequest): GROUP DELETE (GROUP_AUTHORIZATION_FAILED for
// the request), then TOPIC READ per topic (TOPIC_AUTHORIZATION_FAILED).
using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class OffsetDeleteHandler
{
    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, OffsetDeleteRequest request)
    {
        var broker = context.Broker;
        if (!Security.Acl.Authz.Group(context, Security.Acl.AclOperation.Delete, request.GroupId))
            return ValueTask.FromResult<IKafkaMessage?>(new OffsetDeleteResponse { ErrorCode = (short)ErrorCode.GroupAuthorizationFailed });
        var denied = Security.Acl.Authz.DeniedTopics(context, Security.Acl.AclOperation.Read, request.Topics.Select(t => t.Name));
        var known = new List<TopicPartition>();
        var unknown = new HashSet<TopicPartition>();
        foreach (var t in request.Topics)
            foreach (var p in t.Partitions)
            {
                var tp = new TopicPartition(t.Name, p.PartitionIndex);
                if (denied.Contains(t.Name)) continue;
                if (broker.Replicas.GetPartition(t.Name, p.PartitionIndex) is null) unknown.Add(tp); else known.Add(tp);
            }
        var coordinator = broker.Groups.Coordinator;
        var (error, results) = GroupWriteReplication.Run(() => coordinator.DeleteOffsets(request.GroupId, known), out var writes);
        var response = new OffsetDeleteResponse { ErrorCode = (short)error };
        if (error != ErrorCode.None) return ValueTask.FromResult<IKafkaMessage?>(response);
        foreach (var t in request.Topics)
        {
            var rt = new OffsetDeleteResponse.OffsetDeleteResponseTopic { Name = t.Name };
            response.Topics.Add(rt);
            foreach (var p in t.Partitions)
            {
                var tp = new TopicPartition(t.Name, p.PartitionIndex);
                var e = denied.Contains(t.Name) ? ErrorCode.TopicAuthorizationFailed : unknown.Contains(tp) ? ErrorCode.UnknownTopicOrPartition : results.GetValueOrDefault(tp, ErrorCode.None);
                rt.Partitions.Add(new OffsetDeleteResponse.OffsetDeleteResponsePartition { PartitionIndex = p.PartitionIndex, ErrorCode = (short)e });
            }
        }
        // Answered once the tombstones are replicated (GroupWriteReplication.cs); a failed write is
        // the top-level code, as upstream's handleOperationException answers it.
        return GroupWriteReplication.AnswerAsync(context, writes, response, e => new OffsetDeleteResponse { ErrorCode = (short)e });
    }
}
