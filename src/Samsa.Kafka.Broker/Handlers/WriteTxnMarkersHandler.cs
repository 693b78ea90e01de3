// WriteTxnMarkers (key 27), versions 0-2 (v2 carries each marker's TransactionVersion, KIP-1228).
//
// Behaviour (KafkaApis.handleWriteTxnMarkersRequest): the transaction coordinator's request to a
// partition leader — append a COMMIT or ABORT control batch for the producer to each listed
// partition. Unknown partitions get UNKNOWN_TOPIC_OR_PARTITION; a marker with an epoch older than
// the producer's is refused by the log's producer state. This broker's own coordinator writes its
// markers for partitions it leads directly and sends this request to the leaders of the others.
// Partitions this broker does not lead get NOT_LEADER_OR_FOLLOWER. A marker on a __consumer_offsets
// partition completes the transactional offsets its group coordinator holds for the producer.
// Markers are appended as with acks=-1 (upstream's replicaManager.appendRecords with requiredAcks -1
// and request.timeout.ms): a data partition whose ISR is below min.insync.replicas answers
// NOT_ENOUGH_REPLICAS without appending, and the response is sent once every appended marker is
// replicated to the ISR, or with that partition's acks=-1 error.
// KIP-1228 (v2's TransactionVersion; v0/v1 read as 0): a transaction version 2 marker's epoch must
// be above the producer's epoch in the partition (the coordinator bumped it), else
// INVALID_PRODUCER_EPOCH — except a marker repeated after its transaction ended (same epoch, no
// transaction open: written again, KAFKA-19999); older versions need an epoch at least the
// producer's. This broker's coordinator sends v2 with its transaction's version, and checks its own
// markers the same way.
// A marker whose coordinator epoch is below the one of the producer's last marker in the partition
// comes from a replaced coordinator: TRANSACTION_COORDINATOR_FENCED, nothing appended (upstream
// ProducerAppendInfo.checkCoordinatorEpoch).
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
        List<(WriteTxnMarkersResponse.WritableTxnMarkerPartitionResult Result, Cluster.Partition Partition, long EndOffset, long ProducerId, bool Commit)>? appended = null;
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
                    long end = -1;
                    var partition = replicas.GetPartition(t.Name, index);
                    if (!allowed) error = ErrorCode.ClusterAuthorizationFailed;
                    else if (partition is null) error = ErrorCode.UnknownTopicOrPartition;
                    else (error, end) = context.Broker.Transactions.AppendMarker(partition, marker.ProducerId, marker.ProducerEpoch,
                        marker.CoordinatorEpoch, marker.TransactionResult, marker.TransactionVersion);
                    var pr = new WriteTxnMarkersResponse.WritableTxnMarkerPartitionResult { PartitionIndex = index, ErrorCode = (short)error };
                    tr.Partitions.Add(pr);
                    if (error == ErrorCode.None) (appended ??= []).Add((pr, partition!, end, marker.ProducerId, marker.TransactionResult));
                }
            }
        }
        if (appended is null) return ValueTask.FromResult<IKafkaMessage?>(response);
        return AwaitReplicationAsync(context, response, appended);
    }

    // Upstream appends the markers with acks=-1 (and __consumer_offsets markers through the group
    // coordinator, which completes once the high watermark passed them): the answer waits until
    // every appended marker is replicated, and a partition whose marker is not gets the acks=-1
    // error (NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS_AFTER_APPEND, REQUEST_TIMED_OUT), on which
    // the transaction coordinator retries it. The group coordinator's COORDINATOR_NOT_AVAILABLE /
    // COORDINATOR_LOAD_IN_PROGRESS / NOT_COORDINATOR become NOT_LEADER_OR_FOLLOWER, as KafkaApis
    // translates them for the transaction coordinator.
    private static async ValueTask<IKafkaMessage?> AwaitReplicationAsync(RequestContext context, WriteTxnMarkersResponse response,
        List<(WriteTxnMarkersResponse.WritableTxnMarkerPartitionResult Result, Cluster.Partition Partition, long EndOffset, long ProducerId, bool Commit)> appended)
    {
        // A marker on __consumer_offsets exposes the transaction's offsets once replicated.
        var waits = appended.Select(a => context.Broker.Transactions.AwaitMarkerAsync(a.Partition, a.EndOffset, a.ProducerId, a.Commit, context.Cancellation)).ToArray();
        await Task.WhenAll(waits);
        for (int i = 0; i < appended.Count; i++)
        {
            var error = waits[i].Result;
            if (error is ErrorCode.CoordinatorNotAvailable or ErrorCode.CoordinatorLoadInProgress or ErrorCode.NotCoordinator)
                error = ErrorCode.NotLeaderOrFollower;
            appended[i].Result.ErrorCode = (short)error;
        }
        return response;
    }
}
