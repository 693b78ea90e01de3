// ShareAcknowledge (key 79), versions 1-2 (Kafka 4.2; v0 was 4.0's early access and is gone).
//
// Behaviour (KIP-932, upstream KafkaApis.handleShareAcknowledgeRequest): acknowledges records
// that the member acquired through ShareFetch on this broker: per offset range one type or one
// type per offset — 0 gap and 3 reject archive the record, 1 accept acknowledges it, 2 release
// makes it available again (archived once its delivery count reached
// group.share.delivery.count.limit), 4 renew (v2, KIP-1222) restarts its acquisition lock.
// A range with a record not acquired by this member is INVALID_RECORD_STATE and changes nothing;
// a malformed range (last < first, wrong number of types, unknown type) is INVALID_REQUEST.
// Renew in v1 is INVALID_REQUEST. The share session must exist and the epoch be its next one
// (epoch 0 is INVALID_SHARE_SESSION_EPOCH: an acknowledgement cannot open a session; -1 closes
// it after applying the acknowledgements and releases what the member still holds).
// v2 answers AcquisitionLockTimeoutMs (group.share.record.lock.duration.ms).
// Partitions led elsewhere: NOT_LEADER_OR_FOLLOWER with CurrentLeader and NodeEndpoints.
// share.version 0 (finalized): UNSUPPORTED_VERSION, top-level (upstream isShareGroupProtocolEnabled).
// Authorization: GROUP READ (top-level GROUP_AUTHORIZATION_FAILED), TOPIC READ per topic.
// Durability (upstream SharePartition.acknowledge → persister.writeState): the changed state is
// written to the share coordinator (WriteShareGroupState, __share_group_state) before the answer;
// a failed write is the partition's error, mapped as upstream's SharePartition maps persister
// errors (coordinator errors COORDINATOR_NOT_AVAILABLE, FENCED_LEADER_EPOCH NOT_LEADER_OR_FOLLOWER).
// Differs from upstream: a failed write does not roll the in-memory acknowledgement back; the
// housekeeping loop writes it again within 100 ms.
using Samsa.Kafka.Broker.Cluster;
using Samsa.Kafka.Broker.Groups.Share;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class ShareAcknowledgeHandler
{
    public static async ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, ShareAcknowledgeRequest request)
    {
        var broker = context.Broker;
        var shares = broker.Shares;
        short v = context.ApiVersion;
        int lockMs = v >= 2 ? shares.Settings.RecordLockDurationMs : 0;
        string groupId = request.GroupId ?? "";
        string memberId = request.MemberId ?? "";
        // Upstream KafkaApis.handleShareAcknowledgeRequest: isShareGroupProtocolEnabled is checked
        // first; finalized share.version 0 answers UNSUPPORTED_VERSION, top-level.
        if (broker.Features.Level("share.version") < 1)
            return Top(ErrorCode.UnsupportedVersion, "Share groups are disabled (share.version 0).", lockMs);
        if (!Security.Acl.Authz.Group(context, Security.Acl.AclOperation.Read, groupId))
            return Top(ErrorCode.GroupAuthorizationFailed, "Group authorization failed.", lockMs);
        if (groupId.Length == 0 || memberId.Length == 0)
            return Top(ErrorCode.InvalidRequest, "GroupId and MemberId must be set.", lockMs);
        var error = shares.Sessions.Begin(groupId, memberId, request.ShareSessionEpoch, isAcknowledge: true, shares.Clock(), out _, out _);
        if (error != ErrorCode.None) return Top(error, null, lockMs);

        var response = new ShareAcknowledgeResponse { AcquisitionLockTimeoutMs = lockMs };
        var deniedTopics = Security.Acl.Authz.DeniedTopics(context, Security.Acl.AclOperation.Read,
            request.Topics.Select(t => broker.Replicas.GetTopic(t.TopicId)?.Name));
        foreach (var t in request.Topics)
        {
            var tr = new ShareAcknowledgeResponse.ShareAcknowledgeTopicResponse { TopicId = t.TopicId };
            response.Responses.Add(tr);
            var topic = broker.Replicas.GetTopic(t.TopicId);
            foreach (var p in t.Partitions)
            {
                var pd = new ShareAcknowledgeResponse.PartitionData
                {
                    PartitionIndex = p.PartitionIndex,
                    CurrentLeader = new ShareAcknowledgeResponse.LeaderIdAndEpoch { LeaderId = -1, LeaderEpoch = -1 },
                };
                tr.Partitions.Add(pd);
                Partition? partition = null;
                ErrorCode e = ErrorCode.None;
                if (topic is null) e = ErrorCode.UnknownTopicId;
                else if (deniedTopics.Contains(topic.Name)) e = ErrorCode.TopicAuthorizationFailed;
                else if ((partition = broker.Replicas.GetPartition(topic.Name, p.PartitionIndex)) is null) e = ErrorCode.UnknownTopicOrPartition;
                else if (!partition.IsLeader) e = ErrorCode.NotLeaderOrFollower;
                if (partition is not null)
                {
                    var (leaderId, leaderEpoch) = LeaderHints.CurrentLeader(broker, partition);
                    pd.CurrentLeader = new ShareAcknowledgeResponse.LeaderIdAndEpoch { LeaderId = leaderId, LeaderEpoch = leaderEpoch };
                    if (e == ErrorCode.NotLeaderOrFollower && LeaderHints.AliveNode(broker, leaderId, context.Session.ListenerName) is { } node
                        && !response.NodeEndpoints.Exists(n => n.NodeId == leaderId))
                        response.NodeEndpoints.Add(new ShareAcknowledgeResponse.NodeEndpoint { NodeId = leaderId, Host = node.Host, Port = node.Port, Rack = node.Rack });
                }
                if (e == ErrorCode.None && v < 2 && p.AcknowledgementBatches.Any(b => b.AcknowledgeTypes.Contains((sbyte)AcknowledgeType.Renew)))
                    e = ErrorCode.InvalidRequest;
                if (e == ErrorCode.None)
                    e = await ApplyAsync(shares, groupId, memberId, partition!,
                        p.AcknowledgementBatches.Select(b => (b.FirstOffset, b.LastOffset, (IReadOnlyList<sbyte>)b.AcknowledgeTypes)), context.Cancellation);
                pd.ErrorCode = (short)e;
            }
        }
        if (request.ShareSessionEpoch == -1) shares.ReleaseMember(groupId, memberId);
        shares.Notify();
        return response;
    }

    /// <summary>Loads the share-partition (state from the share coordinator), applies the batches and
    /// writes the new state before returning; the first error (acknowledgement, else persister).</summary>
    internal static async Task<ErrorCode> ApplyAsync(ShareService shares, string groupId, string memberId, Partition partition,
        IEnumerable<(long First, long Last, IReadOnlyList<sbyte> Types)> batches, CancellationToken ct)
    {
        var load = await shares.EnsureLoadedAsync(groupId, partition, ct);
        if (load != ErrorCode.None) return ShareService.ClientError(load);
        var e = Apply(shares, groupId, memberId, partition, batches);
        var written = await shares.PersistAsync(groupId, partition, ct);
        return e != ErrorCode.None ? e : ShareService.ClientError(written);
    }

    /// <summary>Applies a partition's acknowledgement batches in order; the first error is the
    /// partition's error (batches before it stay applied, as upstream applies batch by batch).</summary>
    internal static ErrorCode Apply(ShareService shares, string groupId, string memberId, Partition partition,
        IEnumerable<(long First, long Last, IReadOnlyList<sbyte> Types)> batches)
    {
        return shares.With(groupId, partition, sp =>
        {
            var result = ErrorCode.None;
            long now = shares.Clock();
            foreach (var (first, last, types) in batches)
            {
                var e = sp.Acknowledge(memberId, first, last, types, now);
                if (e != ErrorCode.None && result == ErrorCode.None) result = e;
            }
            return result;
        });
    }

    private static ShareAcknowledgeResponse Top(ErrorCode error, string? message, int lockMs) =>
        new() { ErrorCode = (short)error, ErrorMessage = message, AcquisitionLockTimeoutMs = lockMs };
}
