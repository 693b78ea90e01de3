// WriteTxnMarkers (key 27), versions 0-1.
//
// Behaviour (KafkaApis.handleWriteTxnMarkersRequest): the transaction coordinator's request to a
// partition leader — append a COMMIT or ABORT control batch for the producer to each listed
// partition. Unknown partitions get UNKNOWN_TOPIC_OR_PARTITION; a marker with an epoch older than
// the producer's is refused by the log's producer state. This broker's own coordinator writes its
// markers directly; the handler serves tools and tests that send the request.
// Differences from upstream: markers on __consumer_offsets do not complete pending transactional
// offsets there (this group coordinator keeps none; see TxnOffsetCommitHandler).
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Records;

namespace Samsa.Kafka.Broker.Handlers;

public static class WriteTxnMarkersHandler
{
    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, WriteTxnMarkersRequest request)
    {
        var replicas = context.Broker.Replicas;
        var response = new WriteTxnMarkersResponse();
        foreach (var marker in request.Markers)
        {
            var mr = new WriteTxnMarkersResponse.WritableTxnMarkerResult { ProducerId = marker.ProducerId };
            response.Markers.Add(mr);
            foreach (var t in marker.Topics)
            {
                var tr = new WriteTxnMarkersResponse.WritableTxnMarkerTopicResult { Name = t.Name };
                mr.Topics.Add(tr);
                foreach (int index in t.PartitionIndexes)
                {
                    ErrorCode error;
                    var partition = replicas.GetPartition(t.Name, index);
                    if (partition is null) error = ErrorCode.UnknownTopicOrPartition;
                    else
                    {
                        var batch = ControlRecords.BuildEndTxnMarkerBatch(marker.TransactionResult ? ControlRecordType.Commit : ControlRecordType.Abort,
                            marker.ProducerId, marker.ProducerEpoch, marker.CoordinatorEpoch, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
                        (error, _, _, _) = replicas.Append(partition, batch, produceVersion: 9);
                    }
                    tr.Partitions.Add(new WriteTxnMarkersResponse.WritableTxnMarkerPartitionResult { PartitionIndex = index, ErrorCode = (short)error });
                }
            }
        }
        return ValueTask.FromResult<IKafkaMessage?>(response);
    }
}
