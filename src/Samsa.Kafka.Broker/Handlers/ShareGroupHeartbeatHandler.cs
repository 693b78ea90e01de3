// ShareGroupHeartbeat (key 76), version 1 (Kafka 4.1 / 4.2; v0 was 4.0's early access and is gone).
//
// Behaviour (KIP-932, upstream GroupMetadataManager.shareGroupHeartbeat): share-group membership on
// the group's coordinator, the leader of the group's __consumer_offsets partition (FindCoordinator
// key type 0, as for classic and consumer groups). Epoch 0 joins with the client's own member id
// (SubscribedTopicNames required), -1 leaves, any other epoch must be the member's current one
// (FENCED_MEMBER_EPOCH; UNKNOWN_MEMBER_ID for an unknown member). The server-side "simple"
// assignor gives every subscribed partition at least one member and lets several members share a
// partition; the answer carries the member's whole assignment when it changed (or on join), else
// null, and heartbeat_interval_ms = group.share.heartbeat.interval.ms. Members that miss
// group.share.session.timeout.ms are removed. Groups/Share/ShareGroupCoordinator holds the state.
// Errors: INVALID_REQUEST (empty group or member id, bad epoch, no subscription on join),
// NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE, GROUP_MAX_SIZE_REACHED (group.share.max.size),
// GROUP_ID_NOT_FOUND ("Group X is not a share group.") when the id belongs to a classic or
// consumer group this coordinator knows.
// Authorization (KafkaApis.handleShareGroupHeartbeat): GROUP READ, else GROUP_AUTHORIZATION_FAILED;
// TOPIC DESCRIBE on the subscribed topics, else TOPIC_AUTHORIZATION_FAILED.
// Every membership change is written to __consumer_offsets as upstream's share group records
// before it is answered (a failed write answers NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE) and
// replayed by the broker that loads the partition, so members keep their epochs across a
// coordinator restart or move; COORDINATOR_LOAD_IN_PROGRESS while it loads.
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class ShareGroupHeartbeatHandler
{
    /// <summary>True when <c>groupId</c> is a classic or consumer group (one id namespace): a share
    /// heartbeat or share-offset admin request for it is refused (upstream getOrMaybeCreateShareGroup:
    /// GROUP_ID_NOT_FOUND). The coordinator's group entry holds a consumer group too.</summary>
    internal static bool IsOtherGroupType(KafkaBroker broker, string groupId) =>
        broker.Groups.Coordinator.GetGroup(groupId) is not null;

    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, ShareGroupHeartbeatRequest request)
    {
        var shares = context.Broker.Shares;
        // Upstream KafkaApis.isShareGroupProtocolEnabled: finalized share.version 0 (UpdateFeatures)
        // turns share groups off and the API answers UNSUPPORTED_VERSION.
        if (context.Broker.Features.Level("share.version") < 1)
            return Answer(ErrorCode.UnsupportedVersion, "Share groups are disabled (share.version 0).");
        if (!Security.Acl.Authz.Group(context, Security.Acl.AclOperation.Read, request.GroupId))
            return Answer(ErrorCode.GroupAuthorizationFailed, "Group authorization failed.");
        if (request.SubscribedTopicNames is { Count: > 0 } topics)
        {
            var denied = Security.Acl.Authz.DeniedTopics(context, Security.Acl.AclOperation.Describe, topics);
            if (denied.Count > 0) return Answer(ErrorCode.TopicAuthorizationFailed, "Topic authorization failed.");
        }
        if (string.IsNullOrEmpty(request.GroupId)) return Answer(ErrorCode.InvalidRequest, "GroupId can't be empty.");
        var status = shares.CoordinatorStatus(request.GroupId);
        if (status != ErrorCode.None) return Answer(status, null);
        if (IsOtherGroupType(context.Broker, request.GroupId))
            return Answer(ErrorCode.GroupIdNotFound, $"Group {request.GroupId} is not a share group.");
        string clientId = context.Header.ClientId ?? "", host = "/" + context.Session.ClientAddress;
        long now = shares.Clock();
        // Answered once a change of the group is replicated (GroupWriteReplication.cs).
        var r = GroupWriteReplication.Run(() => shares.Coordinator.Heartbeat(request.GroupId, request.MemberId, request.MemberEpoch, request.RackId,
            request.SubscribedTopicNames, clientId, host, now), out var writes);
        var response = new ShareGroupHeartbeatResponse
        {
            ErrorCode = (short)r.Error,
            ErrorMessage = r.Message,
            MemberId = r.MemberId,
            MemberEpoch = r.MemberEpoch,
            HeartbeatIntervalMs = r.HeartbeatIntervalMs,
        };
        if (r.Assignment is { } a)
        {
            response.Assignment = new ShareGroupHeartbeatResponse.AssignmentData
            {
                TopicPartitions = a.Select(kv => new ShareGroupHeartbeatResponse.TopicPartitions
                {
                    TopicId = kv.Key,
                    Partitions = [.. kv.Value],
                }).ToList(),
            };
        }
        return GroupWriteReplication.AnswerAsync(context, writes, response, e => new ShareGroupHeartbeatResponse { ErrorCode = (short)e });
    }

    private static ValueTask<IKafkaMessage?> Answer(ErrorCode error, string? message) =>
        ValueTask.FromResult<IKafkaMessage?>(new ShareGroupHeartbeatResponse { ErrorCode = (short)error, ErrorMessage = message });
}
