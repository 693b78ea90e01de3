// TxnOffsetCommit (key 28), versions 0-4.
//
// Behaviour (KafkaApis.handleTxnOffsetCommitRequest, GroupCoordinator.handleTxnCommitOffsets):
// offsets committed inside a transaction; they become the group's committed offsets when the
// transaction commits and vanish when it aborts. The group check follows upstream (KIP-447, v3+):
// with a member id or generation, the member must be current (UNKNOWN_MEMBER_ID,
// FENCED_INSTANCE_ID, ILLEGAL_GENERATION). The producer must hold the transactional id's current
// producer id and epoch (INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED — INVALID_PRODUCER_EPOCH
// below v3), and unknown partitions get UNKNOWN_TOPIC_OR_PARTITION. Metadata longer than
// offset.metadata.max.bytes is OFFSET_METADATA_TOO_LARGE.
// Differences from upstream: the pending offsets are held by the transaction coordinator rather
// than written to __consumer_offsets as transactional records. A broker restart loses them, so a
// transaction that was still open with offsets is aborted (its producer fenced) when the coordinator
// reloads; one whose commit was already logged completes without them (the crash window between
// logging the commit and storing the offsets, inside one EndTxn call).
using Samsa.Kafka.Broker.Groups;
using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class TxnOffsetCommitHandler
{
    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, TxnOffsetCommitRequest request)
    {
        short v = context.ApiVersion;
        var broker = context.Broker;
        var unknown = new HashSet<TopicPartition>();
        var tooLarge = new HashSet<TopicPartition>();
        var entries = new List<OffsetCommitEntry>();
        int maxMetadata = broker.Groups.Coordinator.Config.OffsetMetadataMaxBytes;
        foreach (var t in request.Topics)
            foreach (var p in t.Partitions)
            {
                var tp = new TopicPartition(t.Name, p.PartitionIndex);
                if (broker.Replicas.GetPartition(t.Name, p.PartitionIndex) is null) { unknown.Add(tp); continue; }
                if ((p.CommittedMetadata?.Length ?? 0) > maxMetadata) { tooLarge.Add(tp); continue; }
                entries.Add(new OffsetCommitEntry(tp, p.CommittedOffset, v >= 2 ? p.CommittedLeaderEpoch : -1, p.CommittedMetadata));
            }
        ErrorCode error = broker.Groups.EnsureOffsetsTopic().Error;
        if (error == ErrorCode.None)
            error = broker.Groups.Coordinator.ValidateTxnOffsetCommit(request.GroupId, v >= 3 ? request.MemberId : "",
                v >= 3 ? request.GroupInstanceId : null, v >= 3 ? request.GenerationId : -1);
        if (error == ErrorCode.None && entries.Count > 0)
            error = broker.Transactions.Coordinator.TxnOffsetCommit(request.TransactionalId, request.ProducerId, request.ProducerEpoch,
                request.GroupId, entries);
        if (error == ErrorCode.ProducerFenced && v < 3) error = ErrorCode.InvalidProducerEpoch;
        var response = new TxnOffsetCommitResponse();
        foreach (var t in request.Topics)
        {
            var rt = new TxnOffsetCommitResponse.TxnOffsetCommitResponseTopic { Name = t.Name };
            response.Topics.Add(rt);
            foreach (var p in t.Partitions)
            {
                var tp = new TopicPartition(t.Name, p.PartitionIndex);
                var e = unknown.Contains(tp) ? ErrorCode.UnknownTopicOrPartition
                    : tooLarge.Contains(tp) ? ErrorCode.OffsetMetadataTooLarge
                    : error;
                rt.Partitions.Add(new TxnOffsetCommitResponse.TxnOffsetCommitResponsePartition { PartitionIndex = p.PartitionIndex, ErrorCode = (short)e });
            }
        }
        return ValueTask.FromResult<IKafkaMessage?>(response);
    }
}
