// Produce (key 0), versions 0-13.
//
// Behaviour (KafkaApis.handleProduceRequest + ReplicaManager.appendRecords): acks must be -1, 0
// or 1 (INVALID_REQUIRED_ACKS otherwise). Per partition: unknown topic or partition
// UNKNOWN_TOPIC_OR_PARTITION; internal topics refuse client writes (INVALID_TOPIC_EXCEPTION);
// acks=-1 with min.insync.replicas above the ISR size NOT_ENOUGH_REPLICAS; then the records are
// validated and stamped (CRC, size, timestamps, compression.type, LogAppendTime — see
// ProduceValidator) and appended. acks=0 gets no response, and when any partition failed the
// connection is closed so the client notices, as upstream does.
// With one in-sync replica, acks=-1 is satisfied as soon as the leader appended; with more, the
// request waits in the produce purgatory until the high watermark passes its records
// (Replication/DelayedProduce: NOT_ENOUGH_REPLICAS_AFTER_APPEND, REQUEST_TIMED_OUT).
// Message-format v0/v1 data (produce v0-v2 of old clients) is converted to one v2 batch, as
// upstream's LogValidator does for a v2 log. Idempotent producers' sequences are checked by the
// log (OUT_OF_ORDER_SEQUENCE_NUMBER, INVALID_PRODUCER_EPOCH; a retried duplicate answers with
// its first offset). v10+ NOT_LEADER_OR_FOLLOWER partitions carry the CurrentLeader hint and the
// leader's NodeEndpoints (KIP-951, Handlers/LeaderHints); no other partition carries a tagged field.
// An epoch older than the producer's — fenced by a newer instance, or a transaction the coordinator
// aborted under a bumped epoch — is INVALID_PRODUCER_EPOCH.
// v12 has v11's layout (KIP-890: with transaction.version 2 a transactional produce may add its
// partitions itself; BrokerFeatures finalizes transaction.version). v13 names topics by id
// (KIP-516): an id no topic has answers every partition UNKNOWN_TOPIC_ID, before authorization, as
// upstream's handleProduceRequest; the response names topics by id too.
// Authorization (KafkaApis.handleProduceRequest): a request with transactional records needs
// TRANSACTIONAL_ID WRITE on its transactional_id (else every partition is
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED); each topic needs WRITE (TOPIC_AUTHORIZATION_FAILED,
// checked before the topic's existence). Idempotent producers need no more here (their
// InitProducerId was authorized).
// KIP-890: a transactional batch that starts a transaction at a partition is first checked with the
// transaction coordinator (Transactions/ProduceVerification: INVALID_TXN_STATE when the partition
// was not added; Produce v12+ adds it for transaction version 2 producers), and the append then
// needs the verification guard the log handed out (INVALID_TXN_STATE when the transaction's marker
// was written in between) or an open transaction to continue.
// Differences from upstream: brokers without log.dirs (in-memory logs) keep no producer state.
using System.Runtime.InteropServices;
using Samsa.Kafka.Broker.Cluster;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class ProduceHandler
{
    public static async ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, ProduceRequest request)
    {
        List<Replication.PendingAck>? pending = null;
        var broker = context.Broker;
        short v = context.ApiVersion;
        var response = new ProduceResponse();
        bool anyError = false;
        bool validAcks = request.Acks is -1 or 0 or 1;
        // v13+: topics come by id; resolve each to its name once (null: no such topic).
        // (A plain array and no LINQ: this runs for every produce request.)
        var names = new string?[request.TopicData.Count];
        for (int i = 0; i < names.Length; i++)
            names[i] = v >= 13 ? broker.Replicas.GetTopic(request.TopicData[i].TopicId)?.Name : request.TopicData[i].Name;
        var denied = Security.Acl.Authz.DeniedTopics(context, Security.Acl.AclOperation.Write, names);
        bool txnDenied = broker.Authorizer is not null && HasTransactionalRecords(request)
            && (request.TransactionalId is not { } tid || !Security.Acl.Authz.TransactionalId(context, Security.Acl.AclOperation.Write, tid));
        // Only partitions this request may write are checked or (transaction version 2) added to the
        // transaction, as upstream verifies the authorized partitions only.
        // Non-transactional requests (VerifyAsync's first check) skip building the name callback.
        var verification = txnDenied || string.IsNullOrEmpty(request.TransactionalId) ? null : await Transactions.ProduceVerification.VerifyAsync(context, request,
            t => (v >= 13 ? broker.Replicas.GetTopic(t.TopicId)?.Name : t.Name) is { } n && !denied.Contains(n) ? n : null);
        // KIP-890 at the append (upstream UnifiedLog.analyzeAndValidateProducerState): with
        // verification on, a transactional batch is appended only if it continues an open
        // transaction or presents the guard its verification started. Requests without a
        // transactional id (plain and idempotent producers) skip all of it. (Upstream refuses
        // transactional batches without a transactional id, TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
        // here that is done only with an authorizer, and such batches are not checked.)
        bool checkGuards = !txnDenied && !string.IsNullOrEmpty(request.TransactionalId) && Transactions.ProduceVerification.IsEnabled(broker);
        if (checkGuards && Transactions.ProduceVerification.BeforeAppendForTests.Value is { } beforeAppend) await beforeAppend();
        for (int ti = 0; ti < request.TopicData.Count; ti++)
        {
            var topicData = request.TopicData[ti];
            var topicName = names[ti];
            // Name is written up to v12 and TopicId from v13 (each is dropped where it does not exist).
            var topicResponse = new ProduceResponse.TopicProduceResponse { Name = topicName ?? "", TopicId = topicData.TopicId };
            response.Responses.Add(topicResponse);
            var topic = topicName is null ? null : broker.Replicas.GetTopic(topicName);
            foreach (var pd in topicData.PartitionData)
            {
                var pr = new ProduceResponse.PartitionProduceResponse { Index = pd.Index, BaseOffset = -1, LogAppendTimeMs = -1, LogStartOffset = -1 };
                topicResponse.PartitionResponses.Add(pr);
                var partition = topic is null ? null : broker.Replicas.GetPartition(topic.Name, pd.Index);
                ErrorCode error;
                string? message = null;
                if (topicName is null) error = ErrorCode.UnknownTopicId;   // v13+ only: names always resolve
                else if (txnDenied) error = ErrorCode.TransactionalIdAuthorizationFailed;
                else if (denied.Contains(topicName)) error = ErrorCode.TopicAuthorizationFailed;
                else if (!validAcks) error = ErrorCode.InvalidRequiredAcks;
                else if (partition is null) error = ErrorCode.UnknownTopicOrPartition;
                else if (!partition.IsLeader) error = ErrorCode.NotLeaderOrFollower;   // ZooKeeper mode: led elsewhere
                else if (TopicName.IsInternal(topicName)) { error = ErrorCode.InvalidTopicException; message = $"Cannot append to internal topic {topicName}"; }
                else if (verification?.Refused(topicName, pd.Index) is { } refusal) (error, message) = (refusal.Error, refusal.Message);
                else if (request.Acks == -1 && (partition.IsrNodes?.Count ?? 1) < partition.Topic.LogConfig.MinInSyncReplicas)
                {
                    // Checked before the append (upstream Partition.appendRecordsToLeader).
                    error = ErrorCode.NotEnoughReplicas;
                    message = $"The size of the current ISR {partition.IsrNodes?.Count ?? 1} is insufficient to satisfy the min.isr requirement of {partition.Topic.LogConfig.MinInSyncReplicas} for partition {partition.TopicPartition}";
                }
                else if (pd.Records is not { Length: > 0 } records) { error = ErrorCode.CorruptMessage; message = "Produce request has no records"; }
                else
                {
                    // The records are this request's own bytes (a slice of the frame, which the
                    // connection keeps until this handler returns and nothing reads afterwards):
                    // offsets and the leader epoch are stamped into them and the log writes them
                    // from there, with no copy, as upstream's LogValidator assigns offsets in place.
                    var (appendError, appendMessage, info, validated) = broker.Replicas.AppendInPlace(partition, MemoryMarshal.AsMemory(records), v,
                        checkGuards ? verification?.GuardFor(topicName, pd.Index) ?? Samsa.Kafka.Storage.VerificationGuard.Sentinel : null);
                    error = appendError;
                    message = appendMessage;
                    // KIP-467: which records were refused (v8+; ignorable, so dropped for older versions).
                    if (validated is { RecordErrors.Count: > 0 })
                        pr.RecordErrors = validated.RecordErrors
                            .Select(e => new ProduceResponse.BatchIndexAndErrorMessage { BatchIndex = e.BatchIndex, BatchIndexErrorMessage = e.Message })
                            .ToList();
                    if (error == ErrorCode.None)
                    {
                        pr.BaseOffset = info.FirstOffset;
                        broker.Metrics?.RecordsIn(topicName!, (int)(info.LastOffset - info.FirstOffset + 1), records.Length);
                        pr.LogAppendTimeMs = info.LogAppendTime;
                        pr.LogStartOffset = info.LogStartOffset;
                        // acks=all: answered once the ISR has the records (Replication/DelayedProduce).
                        if (request.Acks == -1 && broker.Replication is not null && partition.HighWatermark <= info.LastOffset)
                            (pending ??= []).Add(new Replication.PendingAck(partition, info.LastOffset + 1, pr));
                    }
                }
                pr.ErrorCode = (short)error;
                if (error != ErrorCode.None)
                {
                    anyError = true;
                    pr.ErrorMessage = message;
                }
            }
        }
        if (request.Acks == 0)
        {
            if (anyError) context.Connection?.Close();
            return null;
        }
        if (pending is not null)
            // (a client's Produce: it may continue on the event thread that completes it)
            await broker.Replication!.AwaitReplicationAsync(pending, request.TimeoutMs, context.Cancellation, continueOnEventThread: true);
        // KIP-951: v10+ NOT_LEADER_OR_FOLLOWER answers name the current leader; nothing else does.
        LeaderHints.Produce(broker, response, v, context.Session.ListenerName);
        return response;
    }

    /// <summary>Upstream RequestUtils.hasTransactionalRecords: any partition's first batch has the
    /// transactional attribute bit (v2 batches: attributes at byte 21, bit 4).</summary>
    private static bool HasTransactionalRecords(ProduceRequest request)
    {
        foreach (var t in request.TopicData)
            foreach (var p in t.PartitionData)
                if (p.Records is { Length: >= 23 } r && r.Span[16] >= 2 && (r.Span[22] & 0x10) != 0) return true;
        return false;
    }
}
