// DeleteRecords (key 21), versions 0-2.
//
// Behaviour (ReplicaManager.deleteRecords): offset -1 means the high watermark; an offset above
// the high watermark is OFFSET_OUT_OF_RANGE; otherwise the log start offset moves up to it (never
// down) and the answer's low_watermark is the new log start offset. With one replica the low
// watermark is reached at once, so no request waits in a purgatory.
// Authorization (KafkaApis.handleDeleteRecordsRequest): TOPIC DELETE (TOPIC_AUTHORIZATION_FAILED).
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class DeleteRecordsHandler
{
    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, DeleteRecordsRequest request)
    {
        var broker = context.Broker;
        var response = new DeleteRecordsResponse();
        var denied = Security.Acl.Authz.DeniedTopics(context, Security.Acl.AclOperation.Delete, request.Topics.Select(t => t.Name));
        foreach (var t in request.Topics)
        {
            var tr = new DeleteRecordsResponse.DeleteRecordsTopicResult { Name = t.Name };
            response.Topics.Add(tr);
            foreach (var p in t.Partitions)
            {
                var pr = new DeleteRecordsResponse.DeleteRecordsPartitionResult { PartitionIndex = p.PartitionIndex, LowWatermark = -1 };
                tr.Partitions.Add(pr);
                if (denied.Contains(t.Name)) { pr.ErrorCode = (short)ErrorCode.TopicAuthorizationFailed; continue; }
                var partition = broker.Replicas.GetPartition(t.Name, p.PartitionIndex);
                if (partition is null) { pr.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition; continue; }
                if (!partition.IsLeader) { pr.ErrorCode = (short)ErrorCode.NotLeaderOrFollower; continue; }
                long hw = partition.HighWatermark;
                long target = p.Offset == -1 ? hw : p.Offset;
                if (target < 0 || target > hw) { pr.ErrorCode = (short)ErrorCode.OffsetOutOfRange; continue; }
                try
                {
                    partition.Log.DeleteRecordsBefore(target);
                }
                catch (Samsa.Kafka.Broker.Log.LogOffsetOutOfRangeException)
                {
                    pr.ErrorCode = (short)ErrorCode.OffsetOutOfRange;
                    continue;
                }
                pr.LowWatermark = partition.Log.LogStartOffset;
            }
        }
        return ValueTask.FromResult<IKafkaMessage?>(response);
    }
}
