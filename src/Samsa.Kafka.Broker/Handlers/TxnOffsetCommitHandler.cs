// TxnOffsetCommit (key 28), versions 0-5.
//
// Behaviour (KafkaApis.handleTxnOffsetCommitRequest, GroupCoordinator.handleTxnCommitOffsets):
// offsets committed inside a transaction; they become the group's committed offsets when the
// transaction commits and vanish when it aborts. The group check follows upstream (KIP-447, v3+):
// with a member id or generation, the member must be current (UNKNOWN_MEMBER_ID,
// FENCED_INSTANCE_ID, ILLEGAL_GENERATION). The producer must hold the transactional id's current
// producer id and epoch (INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED — INVALID_PRODUCER_EPOCH
// below v3), and unknown partitions get UNKNOWN_TOPIC_OR_PARTITION. Metadata longer than
// offset.metadata.max.bytes is OFFSET_METADATA_TOO_LARGE.
// When this broker also coordinates the transactional id, the producer id/epoch and the open
// transaction are checked too (upstream leaves that to the log's producer state); when another
// broker does, it is asked with AddPartitionsToTxn VerifyOnly (KIP-890 part 1) whether the group's
// offsets partition is in the transaction (INVALID_TXN_STATE, or TRANSACTION_ABORTABLE from v4).
// v5 is transaction version 2 (KIP-890 part 2): the producer sent no AddOffsetsToTxn, so the
// offsets partition is added to the transaction here first. Retriable answers of the transaction
// coordinator come back as COORDINATOR_LOAD_IN_PROGRESS, which producers retry.
// The offsets are written to the group's __consumer_offsets partition as the producer's
// transactional batch and become committed offsets when the transaction's COMMIT marker reaches that
// partition (dropped on ABORT); a new coordinator replays them as pending until the marker. The
// commit is answered once that batch is replicated (upstream's runtime appends it and completes the
// request when the high watermark passed it); otherwise every partition gets COORDINATOR_NOT_AVAILABLE
// / NOT_COORDINATOR (handleOperationException; GroupWriteReplication.cs).
// Authorization (KafkaApis.handleTxnOffsetCommitRequest): TRANSACTIONAL_ID WRITE, then GROUP READ
// (every partition TRANSACTIONAL_ID_ / GROUP_AUTHORIZATION_FAILED), then TOPIC READ per topic.
using Samsa.Kafka.Broker.Groups;
using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class TxnOffsetCommitHandler
{
    public static async ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, TxnOffsetCommitRequest request)
    {
        short v = context.ApiVersion;
        var broker = context.Broker;
        var unknown = new HashSet<TopicPartition>();
        var tooLarge = new HashSet<TopicPartition>();
        var entries = new List<OffsetCommitEntry>();
        int maxMetadata = broker.Groups.Coordinator.Config.OffsetMetadataMaxBytes;
        ErrorCode? requestDenied = !Security.Acl.Authz.TransactionalId(context, Security.Acl.AclOperation.Write, request.TransactionalId) ? ErrorCode.TransactionalIdAuthorizationFailed
            : !Security.Acl.Authz.Group(context, Security.Acl.AclOperation.Read, request.GroupId) ? ErrorCode.GroupAuthorizationFailed : null;
        var denied = requestDenied is null ? Security.Acl.Authz.DeniedTopics(context, Security.Acl.AclOperation.Read, request.Topics.Select(t => t.Name)) : [];
        foreach (var t in request.Topics)
            foreach (var p in t.Partitions)
            {
                var tp = new TopicPartition(t.Name, p.PartitionIndex);
                if (requestDenied is not null || denied.Contains(t.Name)) continue;
                if (broker.Replicas.GetPartition(t.Name, p.PartitionIndex) is null) { unknown.Add(tp); continue; }
                if ((p.CommittedMetadata?.Length ?? 0) > maxMetadata) { tooLarge.Add(tp); continue; }
                entries.Add(new OffsetCommitEntry(tp, p.CommittedOffset, v >= 2 ? p.CommittedLeaderEpoch : -1, p.CommittedMetadata));
            }
        // Sent to the group's coordinator (NOT_COORDINATOR elsewhere); the transactional id may be
        // coordinated by another broker.
        ErrorCode error = requestDenied is not null || (entries.Count == 0 && denied.Count > 0) ? ErrorCode.None : broker.Groups.Coordinator.ValidateTxnOffsetCommit(request.GroupId, v >= 3 ? request.MemberId : "",
            v >= 3 ? request.GroupInstanceId : null, v >= 3 ? request.GenerationId : -1);
        if (error == ErrorCode.None && entries.Count > 0)
            error = await VerifyOrAddOffsetsPartitionAsync(context, request);
        if (error == ErrorCode.None
            && broker.Transactions.Coordinator.ValidateTxnOffsetCommit(request.TransactionalId, request.ProducerId, request.ProducerEpoch, request.GroupId) is { } txnError)
            error = txnError;
        if (error == ErrorCode.None && entries.Count > 0)
        {
            var coordinator = broker.Groups.Coordinator;
            error = GroupWriteReplication.Run(() => coordinator.AddTransactionalOffsets(request.GroupId, request.ProducerId, request.ProducerEpoch, entries), out var writes);
            if (error == ErrorCode.None) error = await broker.AwaitGroupWritesAsync(writes, context.Cancellation);
        }
        if (error == ErrorCode.ProducerFenced && v < 3) error = ErrorCode.InvalidProducerEpoch;
        var response = new TxnOffsetCommitResponse();
        foreach (var t in request.Topics)
        {
            var rt = new TxnOffsetCommitResponse.TxnOffsetCommitResponseTopic { Name = t.Name };
            response.Topics.Add(rt);
            foreach (var p in t.Partitions)
            {
                var tp = new TopicPartition(t.Name, p.PartitionIndex);
                var e = requestDenied is { } rd ? rd
                    : denied.Contains(t.Name) ? ErrorCode.TopicAuthorizationFailed
                    : unknown.Contains(tp) ? ErrorCode.UnknownTopicOrPartition
                    : tooLarge.Contains(tp) ? ErrorCode.OffsetMetadataTooLarge
                    : error;
                rt.Partitions.Add(new TxnOffsetCommitResponse.TxnOffsetCommitResponsePartition { PartitionIndex = p.PartitionIndex, ErrorCode = (short)e });
            }
        }
        return response;
    }

    // KIP-890: the group's offsets partition must be in the transaction — added here for v5
    // (transaction version 2), verified with a coordinator on another broker for older versions
    // (a local coordinator is checked by ValidateTxnOffsetCommit).
    private static async ValueTask<ErrorCode> VerifyOrAddOffsetsPartitionAsync(RequestContext context, TxnOffsetCommitRequest request)
    {
        var broker = context.Broker;
        var operation = Transactions.ProduceVerification.ForTxnOffsetCommitVersion(context.ApiVersion);
        bool add = operation == Transactions.TransactionSupportedOperation.AddPartition;
        if (!add && (!Transactions.ProduceVerification.IsEnabled(broker)
            || broker.Transactions.Coordinator.ValidateTxnOffsetCommit(request.TransactionalId, request.ProducerId, request.ProducerEpoch, request.GroupId) is not null))
            return ErrorCode.None;
        var tp = new TopicPartition(Cluster.TopicName.GroupMetadataTopic, broker.Groups.Coordinator.PartitionFor(request.GroupId));
        var results = await broker.Transactions.VerifyOrAddAsync(request.TransactionalId, request.ProducerId, request.ProducerEpoch, [tp], add, context.Cancellation);
        var error = Transactions.ProduceVerification.MapForClient(results.GetValueOrDefault(tp, ErrorCode.None), operation);
        return error switch
        {
            // The producer reads INVALID_PRODUCER_EPOCH from a partition; from TxnOffsetCommit it
            // expects PRODUCER_FENCED (mapped down for old versions by the caller).
            ErrorCode.InvalidProducerEpoch => ErrorCode.ProducerFenced,
            ErrorCode.ConcurrentTransactions or ErrorCode.NetworkException or ErrorCode.CoordinatorNotAvailable or ErrorCode.NotCoordinator
                => ErrorCode.CoordinatorLoadInProgress,
            _ => error,
        };
    }
}
