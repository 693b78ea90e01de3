// ListOffsets (key 2), versions 0-11.
//
// Behaviour (KafkaApis.handleListOffsetRequest, Partition.fetchOffsetForTimestamp): timestamp
// -2 EARLIEST gives the log start offset, -1 LATEST the high watermark (read_uncommitted) or the
// last stable offset (read_committed, v2+: below the oldest open transaction), -3 MAX_TIMESTAMP (v7+,
// KIP-734) the record with the largest timestamp, -4 EARLIEST_LOCAL (v8+, KIP-405) the local log
// start (no tiered storage here); any other value the first offset whose timestamp is at or after
// it, or offset -1 when there is none. -5 LATEST_TIERED (v9+, KIP-1005) and -6
// EARLIEST_PENDING_UPLOAD (v11+, KIP-1023) concern remote storage, which Samsa has not: they answer
// offset -1, timestamp -1, leader epoch -1 with no error, as upstream's UnifiedLog does for a log
// without remote storage. v10's TimeoutMs (KIP-1075) bounds remote lookups; there are none here.
// A special timestamp newer than the request version is UNSUPPORTED_VERSION (ReplicaManager). v0 answers in old_style_offsets (max_num_offsets honoured).
// A partition asked for twice gets INVALID_REQUEST; current_leader_epoch is checked (v4+).
// Timestamp searches are record-exact on file logs (Samsa.Kafka.Storage reads inside batches);
// the in-memory test log resolves to the first batch whose max timestamp reaches the target.
// Differences from upstream: v0 for a plain timestamp returns that one offset rather than the
// base offsets of the segments before it.
// Authorization (KafkaApis.handleListOffsetRequest): DESCRIBE on each topic, else its partitions
// are TOPIC_AUTHORIZATION_FAILED.
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class ListOffsetsHandler
{
    public const long LatestTimestamp = -1, EarliestTimestamp = -2, MaxTimestamp = -3, EarliestLocalTimestamp = -4,
        LatestTieredTimestamp = -5, EarliestPendingUploadTimestamp = -6;

    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, ListOffsetsRequest request)
    {
        var broker = context.Broker;
        short v = context.ApiVersion;
        var response = new ListOffsetsResponse();
        var seen = new HashSet<(string, int)>();
        var duplicates = new HashSet<(string, int)>();
        var denied = Security.Acl.Authz.DeniedTopics(context, Security.Acl.AclOperation.Describe, request.Topics.Select(t => t.Name));
        foreach (var t in request.Topics)
            foreach (var p in t.Partitions)
                if (!seen.Add((t.Name, p.PartitionIndex))) duplicates.Add((t.Name, p.PartitionIndex));

        foreach (var t in request.Topics)
        {
            var tr = new ListOffsetsResponse.ListOffsetsTopicResponse { Name = t.Name };
            response.Topics.Add(tr);
            foreach (var p in t.Partitions)
            {
                var pr = new ListOffsetsResponse.ListOffsetsPartitionResponse { PartitionIndex = p.PartitionIndex, Timestamp = -1, Offset = -1, LeaderEpoch = -1 };
                tr.Partitions.Add(pr);
                if (denied.Contains(t.Name)) { pr.ErrorCode = (short)ErrorCode.TopicAuthorizationFailed; continue; }
                if (duplicates.Contains((t.Name, p.PartitionIndex))) { pr.ErrorCode = (short)ErrorCode.InvalidRequest; continue; }
                var partition = broker.Replicas.GetPartition(t.Name, p.PartitionIndex);
                if (partition is null) { pr.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition; continue; }
                if (!partition.IsLeader) { pr.ErrorCode = (short)ErrorCode.NotLeaderOrFollower; continue; }
                if (v >= 4 && p.CurrentLeaderEpoch >= 0 && p.CurrentLeaderEpoch != partition.LeaderEpoch)
                {
                    pr.ErrorCode = (short)(p.CurrentLeaderEpoch < partition.LeaderEpoch ? ErrorCode.FencedLeaderEpoch : ErrorCode.UnknownLeaderEpoch);
                    continue;
                }
                var log = partition.Log;
                long offset;
                long timestamp = -1;
                int epoch = -1;
                switch (p.Timestamp)
                {
                    case LatestTimestamp:
                        offset = v >= 2 && request.IsolationLevel == 1 ? Math.Min(partition.HighWatermark, log.LastStableOffset) : partition.HighWatermark;
                        epoch = partition.LeaderEpoch;
                        break;
                    case EarliestTimestamp:
                    case EarliestLocalTimestamp when v >= 8:
                        offset = log.LogStartOffset;
                        epoch = log.LogEndOffset > offset ? partition.LeaderEpoch : -1;
                        break;
                    case MaxTimestamp when v >= 7:
                        var max = log.MaxTimestamp();
                        offset = max?.Offset ?? -1;
                        timestamp = max?.Timestamp ?? -1;
                        epoch = max?.LeaderEpoch ?? -1;
                        break;
                    case LatestTieredTimestamp when v >= 9:
                    case EarliestPendingUploadTimestamp when v >= 11:
                        offset = -1;   // nothing is tiered: no such offset
                        break;
                    default:
                        if (p.Timestamp < 0)
                        {
                            pr.ErrorCode = (short)ErrorCode.UnsupportedVersion;
                            continue;
                        }
                        var found = log.OffsetForTimestamp(p.Timestamp);
                        offset = found?.Offset ?? -1;
                        timestamp = found?.Timestamp ?? -1;
                        epoch = found?.LeaderEpoch ?? -1;
                        break;
                }
                if (v == 0)
                {
                    pr.OldStyleOffsets = p.MaxNumOffsets > 0 && offset >= 0 ? [offset] : [];
                }
                else
                {
                    pr.Offset = offset;
                    pr.Timestamp = timestamp;
                    if (v >= 4) pr.LeaderEpoch = epoch;
                }
            }
        }
        return ValueTask.FromResult<IKafkaMessage?>(response);
    }
}
