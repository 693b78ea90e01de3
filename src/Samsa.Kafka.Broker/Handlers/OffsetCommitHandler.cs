// OffsetCommit (key 8), versions 0-10.
//
// Behaviour (KafkaApis.handleOffsetCommitRequest, GroupCoordinator.handleCommitOffsets): offsets
// are appended to __consumer_offsets before the answer. Partitions of unknown topics get
// UNKNOWN_TOPIC_OR_PARTITION; metadata longer than offset.metadata.max.bytes
// OFFSET_METADATA_TOO_LARGE. A commit with generation -1 is a "simple" commit, allowed while the
// group has no members; otherwise member id, instance id (v7+) and generation must be current
// (ILLEGAL_GENERATION for a stale generation, REBALANCE_IN_PROGRESS while the group waits for its
// leader's assignment). v1 may carry a commit timestamp, v2-v4 a retention time (the offset then
// expires at commit time + retention); v6+ the committed leader epoch, returned by OffsetFetch.
// v10 (Kafka 4.2, KIP-848) names each topic by its id: an id the cluster does not know answers
// UNKNOWN_TOPIC_ID on every partition of that entry before any authorization (upstream
// KafkaApis.handleOffsetCommitRequest resolves ids through the metadata cache first), and the
// answer carries the ids back.
// Differences from upstream: v0 commits go to __consumer_offsets (upstream 2.x wrote v0 commits
// to ZooKeeper).
// Authorization (KafkaApis.handleOffsetCommitRequest): GROUP READ (else every partition
// GROUP_AUTHORIZATION_FAILED), then READ on each topic (TOPIC_AUTHORIZATION_FAILED, before the
// topic's existence is checked).
using Samsa.Kafka.Broker.Groups;
using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class OffsetCommitHandler
{
    public static async ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, OffsetCommitRequest request)
    {
        short v = context.ApiVersion;
        var broker = context.Broker;
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        long retention = v is >= 2 and <= 4 ? request.RetentionTimeMs : -1;
        // v10: the topic name is not on the wire; resolve it from the id so the rest of the
        // handler (and the __consumer_offsets records, which key by name) stays name-based.
        var unknownIds = new HashSet<OffsetCommitRequest.OffsetCommitRequestTopic>(ReferenceEqualityComparer.Instance);
        if (v >= 10)
            foreach (var t in request.Topics)
            {
                if (broker.Replicas.GetTopic(t.TopicId) is { } topic) t.Name = topic.Name;
                else { t.Name = ""; unknownIds.Add(t); }
            }
        var entries = new List<OffsetCommitEntry>();
        var unknown = new HashSet<TopicPartition>();
        bool groupDenied = !Security.Acl.Authz.Group(context, Security.Acl.AclOperation.Read, request.GroupId);
        var denied = groupDenied ? [] : Security.Acl.Authz.DeniedTopics(context, Security.Acl.AclOperation.Read, request.Topics.Where(t => !unknownIds.Contains(t)).Select(t => t.Name));
        foreach (var t in request.Topics)
            foreach (var p in t.Partitions)
            {
                if (unknownIds.Contains(t)) continue;
                var tp = new TopicPartition(t.Name, p.PartitionIndex);
                if (groupDenied || denied.Contains(t.Name)) continue;
                if (broker.Replicas.GetPartition(t.Name, p.PartitionIndex) is null) { unknown.Add(tp); continue; }
                long expire = retention >= 0 ? now + retention : -1;
                long commitTs = v == 1 && p.CommitTimestamp >= 0 ? p.CommitTimestamp : -1;
                entries.Add(new OffsetCommitEntry(tp, p.CommittedOffset, v >= 6 ? p.CommittedLeaderEpoch : -1, p.CommittedMetadata, expire, commitTs));
            }
        var (_, results) = entries.Count > 0 || (unknown.Count == 0 && denied.Count == 0 && unknownIds.Count == 0 && !groupDenied)
            ? broker.Groups.Coordinator.CommitOffsets(request.GroupId, v >= 1 ? request.MemberId : "",
                v >= 7 ? request.GroupInstanceId : null, v >= 1 ? request.GenerationIdOrMemberEpoch : -1, entries)
            : (ErrorCode.None, new Dictionary<TopicPartition, ErrorCode>());
        // Answered once the offsets partition's ISR has the commit (acks=all, as upstream), so a
        // coordinator failover loses no acknowledged offset.
        if (results.Values.Any(e => e == ErrorCode.None) && entries.Count > 0)
        {
            var replicated = await broker.AwaitInternalWriteAsync(Cluster.TopicName.GroupMetadataTopic,
                broker.Groups.Coordinator.PartitionFor(request.GroupId), context.Cancellation);
            if (replicated != ErrorCode.None)
                foreach (var tp in results.Where(kv => kv.Value == ErrorCode.None).Select(kv => kv.Key).ToList()) results[tp] = replicated;
        }
        var response = new OffsetCommitResponse();
        foreach (var t in request.Topics)
        {
            var rt = new OffsetCommitResponse.OffsetCommitResponseTopic { Name = t.Name, TopicId = v >= 10 ? t.TopicId : Guid.Empty };
            response.Topics.Add(rt);
            foreach (var p in t.Partitions)
            {
                var tp = new TopicPartition(t.Name, p.PartitionIndex);
                var error = unknownIds.Contains(t) ? ErrorCode.UnknownTopicId
                    : groupDenied ? ErrorCode.GroupAuthorizationFailed
                    : denied.Contains(t.Name) ? ErrorCode.TopicAuthorizationFailed
                    : unknown.Contains(tp) ? ErrorCode.UnknownTopicOrPartition : results.GetValueOrDefault(tp, ErrorCode.None);
                rt.Partitions.Add(new OffsetCommitResponse.OffsetCommitResponsePartition { PartitionIndex = p.PartitionIndex, ErrorCode = (short)error });
            }
        }
        return response;
    }
}
