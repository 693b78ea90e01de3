// DeleteRecords (key 21), versions 0-2.
//
// Behaviour (ReplicaManager.deleteRecords): offset -1 means the high watermark; an offset above
// the high watermark is OFFSET_OUT_OF_RANGE; otherwise the log start offset moves up to it (never
// down) and the answer's low_watermark is the new log start offset. With one replica the low
// watermark is reached at once, so no request waits in a purgatory.
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class DeleteRecordsHandler
{
    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, DeleteRecordsRequest request)
    {
        var broker = context.Broker;
        var response = new DeleteRecordsResponse();
        foreach (var t in request.Topics)
        {
            var tr = new DeleteRecordsResponse.DeleteRecordsTopicResult { Name = t.Name };
            response.Topics.Add(tr);
            foreach (var p in t.Partitions)
            {
                var pr = new DeleteRecordsResponse.DeleteRecordsPartitionResult { PartitionIndex = p.PartitionIndex, LowWatermark = -1 };
                tr.Partitions.Add(pr);
                var partition = broker.Replicas.GetPartition(t.Name, p.PartitionIndex);
                if (partition is null) { pr.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition; continue; }
                long hw = partition.HighWatermark;
                long target = p.Offset == -1 ? hw : p.Offset;
                if (target < 0 || target > hw) { pr.ErrorCode = (short)ErrorCode.OffsetOutOfRange; continue; }
                partition.Log.DeleteRecordsBefore(target);
                pr.LowWatermark = partition.Log.LogStartOffset;
            }
        }
        return ValueTask.FromResult<IKafkaMessage?>(response);
    }
}
