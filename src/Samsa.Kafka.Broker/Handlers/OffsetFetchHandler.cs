// OffsetFetch (key 9), versions 0-10.
//
// Behaviour (KafkaApis.handleOffsetFetchRequest): the committed offset, leader epoch (v5+) and
// metadata of each requested partition; offset -1 and metadata "" where nothing is committed.
// v2+ accept a null topic list meaning every committed partition of the group, and report group
// errors at the top level (v0/v1 put them on each partition). v8+ (KIP-709) fetch several groups
// at once. require_stable (v7+): a partition with transactional offsets still waiting for their
// transaction's marker answers UNSTABLE_OFFSET_COMMIT and offset -1 (upstream OffsetMetadataManager
// fetchOffsets / fetchAllOffsets), so the consumer retries rather than start from the last stable
// offset while a committed transaction's offsets are on their way.
// v9's member id / epoch (KIP-848): when the group is a consumer group they must name a current
// member at its epoch (UNKNOWN_MEMBER_ID / STALE_MEMBER_EPOCH); without them (null id, epoch -1)
// anyone may fetch, as upstream.
// v10 (Kafka 4.2, KIP-848) names topics by id: a requested id the cluster does not know answers
// its partitions UNKNOWN_TOPIC_ID (upstream resolves ids through the metadata cache before the
// coordinator is asked); answers carry ids, and an all-topics fetch leaves out committed topics
// that no longer exist, since they have no id to be named by.
// Authorization (KafkaApis.handleOffsetFetchRequestFromCoordinator): GROUP DESCRIBE per group
// (GROUP_AUTHORIZATION_FAILED); named topics without TOPIC DESCRIBE answer
// TOPIC_AUTHORIZATION_FAILED partitions, and an all-topics fetch leaves them out.
using Samsa.Kafka.Broker.Groups;
using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Broker.Security.Acl;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class OffsetFetchHandler
{
    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, OffsetFetchRequest request)
    {
        short v = context.ApiVersion;
        var coordinator = context.Broker.Groups.Coordinator;
        var response = new OffsetFetchResponse();
        if (v >= 8)
        {
            foreach (var g in request.Groups)
            {
                if (!Authz.Group(context, AclOperation.Describe, g.GroupId))
                {
                    response.Groups.Add(new OffsetFetchResponse.OffsetFetchResponseGroup { GroupId = g.GroupId, ErrorCode = (short)ErrorCode.GroupAuthorizationFailed });
                    continue;
                }
                var unknownIds = new List<OffsetFetchRequest.OffsetFetchRequestTopics>();
                if (v >= 10 && g.Topics is not null)
                    foreach (var t in g.Topics)
                    {
                        if (context.Broker.Replicas.GetTopic(t.TopicId) is { } known) t.Name = known.Name;
                        else unknownIds.Add(t);
                    }
                var namedTopics = g.Topics?.Where(t => !unknownIds.Contains(t)).ToList();
                var deniedTopics = Authz.DeniedTopics(context, AclOperation.Describe, namedTopics?.Select(t => t.Name) ?? []);
                var partitions = namedTopics?.Where(t => !deniedTopics.Contains(t.Name)).SelectMany(t => t.PartitionIndexes.Select(p => new TopicPartition(t.Name, p))).ToList();
                var (error, offsets) = coordinator.FetchOffsets(g.GroupId, partitions);
                if (error == ErrorCode.None && v >= 9 && coordinator.ValidateOffsetFetchMember(g.GroupId, g.MemberId, g.MemberEpoch) is { } memberError)
                    (error, offsets) = (memberError, []);
                var rg = new OffsetFetchResponse.OffsetFetchResponseGroup { GroupId = g.GroupId, ErrorCode = (short)error };
                response.Groups.Add(rg);
                if (error != ErrorCode.None) continue;
                // All topics: those the principal may not describe are left out.
                if (partitions is null) offsets = VisibleOnly(context, offsets);
                var unstableSet = request.RequireStable ? coordinator.PendingTransactionalPartitions(g.GroupId) : null;
                foreach (var byTopic in offsets.GroupBy(o => o.Partition.Topic))
                {
                    Guid id = Guid.Empty;
                    if (v >= 10)
                    {
                        if (context.Broker.Replicas.GetTopic(byTopic.Key) is not { } named) continue;
                        id = named.Id;
                    }
                    var rt = new OffsetFetchResponse.OffsetFetchResponseTopics { Name = byTopic.Key, TopicId = id };
                    rg.Topics.Add(rt);
                    foreach (var (tp, o) in byTopic)
                    {
                        bool unstable = unstableSet?.Contains(tp) == true;
                        rt.Partitions.Add(new OffsetFetchResponse.OffsetFetchResponsePartitions
                        {
                            PartitionIndex = tp.Partition,
                            CommittedOffset = unstable ? -1 : o?.Offset ?? -1,
                            CommittedLeaderEpoch = unstable ? -1 : o?.LeaderEpoch ?? -1,
                            Metadata = unstable ? "" : o?.Metadata ?? "",
                            ErrorCode = unstable ? (short)ErrorCode.UnstableOffsetCommit : (short)0,
                        });
                    }
                }
                foreach (var t in unknownIds)
                    rg.Topics.Add(new OffsetFetchResponse.OffsetFetchResponseTopics
                    {
                        TopicId = t.TopicId,
                        Partitions = t.PartitionIndexes.Select(p => new OffsetFetchResponse.OffsetFetchResponsePartitions
                        {
                            PartitionIndex = p, CommittedOffset = -1, CommittedLeaderEpoch = -1, Metadata = "",
                            ErrorCode = (short)ErrorCode.UnknownTopicId,
                        }).ToList(),
                    });
                foreach (var t in namedTopics ?? [])
                    if (deniedTopics.Contains(t.Name))
                        rg.Topics.Add(new OffsetFetchResponse.OffsetFetchResponseTopics
                        {
                            Name = t.Name,
                            TopicId = v >= 10 ? t.TopicId : Guid.Empty,
                            Partitions = t.PartitionIndexes.Select(p => new OffsetFetchResponse.OffsetFetchResponsePartitions
                            {
                                PartitionIndex = p, CommittedOffset = -1, CommittedLeaderEpoch = -1, Metadata = "",
                                ErrorCode = (short)ErrorCode.TopicAuthorizationFailed,
                            }).ToList(),
                        });
            }
            return ValueTask.FromResult<IKafkaMessage?>(response);
        }

        // v0-v1 have no "all topics" form; a null list there is treated as empty.
        bool groupDenied = !Authz.Group(context, AclOperation.Describe, request.GroupId);
        var denied = groupDenied ? [] : Authz.DeniedTopics(context, AclOperation.Describe, (request.Topics ?? []).Select(t => t.Name));
        var requested = request.Topics is null && v >= 2 ? null
            : (request.Topics ?? []).Where(t => !denied.Contains(t.Name)).SelectMany(t => t.PartitionIndexes.Select(p => new TopicPartition(t.Name, p))).ToList();
        var (groupError, found) = groupDenied ? (ErrorCode.GroupAuthorizationFailed, []) : coordinator.FetchOffsets(request.GroupId, requested);
        if (groupError == ErrorCode.None && requested is null) found = VisibleOnly(context, found);
        if (groupError != ErrorCode.None)
        {
            if (v >= 2) response.ErrorCode = (short)groupError;
            if (requested is null) return ValueTask.FromResult<IKafkaMessage?>(response);
            found = requested.Select(tp => (tp, (CommittedOffset?)null)).ToList();
        }
        short partitionError = v < 2 ? (short)groupError : (short)0;
        var unstableTps = request.RequireStable && groupError == ErrorCode.None ? coordinator.PendingTransactionalPartitions(request.GroupId) : null;
        foreach (var byTopic in found.GroupBy(o => o.Partition.Topic))
        {
            var rt = new OffsetFetchResponse.OffsetFetchResponseTopic { Name = byTopic.Key };
            response.Topics.Add(rt);
            foreach (var (tp, o) in byTopic)
            {
                bool unstable = unstableTps?.Contains(tp) == true;
                rt.Partitions.Add(new OffsetFetchResponse.OffsetFetchResponsePartition
                {
                    PartitionIndex = tp.Partition,
                    CommittedOffset = unstable ? -1 : o?.Offset ?? -1,
                    CommittedLeaderEpoch = unstable ? -1 : o?.LeaderEpoch ?? -1,
                    Metadata = unstable ? "" : o?.Metadata ?? "",
                    ErrorCode = unstable ? (short)ErrorCode.UnstableOffsetCommit : partitionError,
                });
            }
        }
        foreach (var t in request.Topics ?? [])
            if (denied.Contains(t.Name))
                response.Topics.Add(new OffsetFetchResponse.OffsetFetchResponseTopic
                {
                    Name = t.Name,
                    Partitions = t.PartitionIndexes.Select(p => new OffsetFetchResponse.OffsetFetchResponsePartition
                    {
                        PartitionIndex = p, CommittedOffset = -1, CommittedLeaderEpoch = -1, Metadata = "",
                        ErrorCode = (short)ErrorCode.TopicAuthorizationFailed,
                    }).ToList(),
                });
        return ValueTask.FromResult<IKafkaMessage?>(response);
    }

    /// <summary>Upstream fetchAllOffsetsForGroup: offsets of topics not authorized for DESCRIBE are not shown.</summary>
    private static List<(TopicPartition Partition, CommittedOffset? Offset)> VisibleOnly(RequestContext context, IEnumerable<(TopicPartition Partition, CommittedOffset? Offset)> offsets)
    {
        var list = offsets.ToList();
        var denied = Authz.DeniedTopics(context, AclOperation.Describe, list.Select(o => o.Partition.Topic));
        return denied.Count == 0 ? list : list.Where(o => !denied.Contains(o.Partition.Topic)).ToList();
    }
}
