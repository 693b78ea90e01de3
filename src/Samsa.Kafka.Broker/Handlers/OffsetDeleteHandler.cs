// OffsetDelete (key 47), version 0.
//
// Behaviour (KIP-496, GroupCoordinator.handleDeleteOffsets): removes committed offsets of an
// Empty group, or of topics an active consumer group does not subscribe to
// (GROUP_SUBSCRIBED_TO_TOPIC for the others); NON_EMPTY_GROUP for an active group of another
// protocol type; GROUP_ID_NOT_FOUND when unknown; UNKNOWN_TOPIC_OR_PARTITION for partitions of
// topics that do not exist.
using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class OffsetDeleteHandler
{
    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, OffsetDeleteRequest request)
    {
        var broker = context.Broker;
        var known = new List<TopicPartition>();
        var unknown = new HashSet<TopicPartition>();
        foreach (var t in request.Topics)
            foreach (var p in t.Partitions)
            {
                var tp = new TopicPartition(t.Name, p.PartitionIndex);
                if (broker.Replicas.GetPartition(t.Name, p.PartitionIndex) is null) unknown.Add(tp); else known.Add(tp);
            }
        var (error, results) = broker.Groups.Coordinator.DeleteOffsets(request.GroupId, known);
        var response = new OffsetDeleteResponse { ErrorCode = (short)error };
        if (error != ErrorCode.None) return ValueTask.FromResult<IKafkaMessage?>(response);
        foreach (var t in request.Topics)
        {
            var rt = new OffsetDeleteResponse.OffsetDeleteResponseTopic { Name = t.Name };
            response.Topics.Add(rt);
            foreach (var p in t.Partitions)
            {
                var tp = new TopicPartition(t.Name, p.PartitionIndex);
                var e = unknown.Contains(tp) ? ErrorCode.UnknownTopicOrPartition : results.GetValueOrDefault(tp, ErrorCode.None);
                rt.Partitions.Add(new OffsetDeleteResponse.OffsetDeleteResponsePartition { PartitionIndex = p.PartitionIndex, ErrorCode = (short)e });
            }
        }
        return ValueTask.FromResult<IKafkaMessage?>(response);
    }
}
