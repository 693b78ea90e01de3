// WriteTxnMarkers (key 27), versions 0-2 (v2 carries each marker's TransactionVersion, KIP-1228).
//
// Behaviour (KafkaApis.handleWriteTxnMarkersRequest): the transaction coordinator's request to a
// partition leader — append a COMMIT or ABORT control batch for the producer to each listed
// partition. Unknown partitions get UNKNOWN_TOPIC_OR_PARTITION; a marker with an epoch older than
// the producer's is refused by the log's producer state. This broker's own coordinator writes its
// markers for partitions it leads directly and sends this request to the leaders of the others.
// Partitions this broker does not lead get NOT_LEADER_OR_FOLLOWER. A marker on a __consumer_offsets
// partition completes the transactional offsets its group coordinator holds for the producer.
// Differences from upstream: v2's TransactionVersion is accepted but not used — a transaction
// version 2 marker is checked as older ones are (epoch at least the producer's), where upstream
// requires it to be strictly greater (KIP-1228); this broker's coordinator sends v1.
// Authorization (KafkaApis.handleWriteTxnMarkersRequest): CLUSTER ALTER or CLUSTER_ACTION, else every
// partition CLUSTER_AUTHORIZATION_FAILED.
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
        // Upstream: CLUSTER ALTER, else CLUSTER_ACTION; every partition CLUSTER_AUTHORIZATION_FAILED otherwise.
        bool allowed = Security.Acl.Authz.Cluster(context, Security.Acl.AclOperation.Alter, logIfDenied: false) || Security.Acl.Authz.Cluster(context, Security.Acl.AclOperation.ClusterAction);
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
                    if (!allowed) error = ErrorCode.ClusterAuthorizationFailed;
                    else if (partition is null) error = ErrorCode.UnknownTopicOrPartition;
                    else error = context.Broker.Transactions.AppendMarker(partition, marker.ProducerId, marker.ProducerEpoch,
                        marker.CoordinatorEpoch, marker.TransactionResult);
                    tr.Partitions.Add(new WriteTxnMarkersResponse.WritableTxnMarkerPartitionResult { PartitionIndex = index, ErrorCode = (short)error });
                }
            }
        }
        return ValueTask.FromResult<IKafkaMessage?>(response);
    }
}
