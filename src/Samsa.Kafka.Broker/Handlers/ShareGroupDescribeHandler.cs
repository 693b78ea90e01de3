// ShareGroupDescribe (key 77), version 1 (Kafka 4.1 / 4.2; v0 was 4.0's early access and is gone).
//
// Behaviour (KIP-932, upstream GroupCoordinatorService.shareGroupDescribe): per group id, the
// share group this broker coordinates: state (Empty / Stable), group and assignment epochs,
// assignor "simple", members with rack, client id and host, subscriptions and their current
// assignment (topic id, name, partitions). Per-group errors: INVALID_GROUP_ID for an empty id,
// NOT_COORDINATOR when another broker coordinates it, GROUP_ID_NOT_FOUND for an unknown group
// (upstream: also for a group of another type).
// Authorization: GROUP DESCRIBE per group (GROUP_AUTHORIZATION_FAILED); AuthorizedOperations when
// asked for (else INT32_MIN).
// Membership is replayed from __consumer_offsets (share group records) by the coordinator that
// loads the group's partition, so a restarted or new coordinator describes the same group.
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class ShareGroupDescribeHandler
{
    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, ShareGroupDescribeRequest request)
    {
        var broker = context.Broker;
        var shares = broker.Shares;
        var response = new ShareGroupDescribeResponse();
        bool enabled = broker.Features.Level("share.version") >= 1;   // share.version 0: upstream UNSUPPORTED_VERSION
        foreach (var groupId in request.GroupIds)
        {
            var g = new ShareGroupDescribeResponse.DescribedGroup { GroupId = groupId, GroupState = "", AssignorName = "" };
            response.Groups.Add(g);
            if (!enabled) { g.ErrorCode = (short)ErrorCode.UnsupportedVersion; continue; }
            if (!Security.Acl.Authz.Group(context, Security.Acl.AclOperation.Describe, groupId))
            {
                g.ErrorCode = (short)ErrorCode.GroupAuthorizationFailed;
                g.ErrorMessage = "Group authorization failed.";
                continue;
            }
            if (string.IsNullOrEmpty(groupId)) { g.ErrorCode = (short)ErrorCode.InvalidGroupId; continue; }
            var status = shares.CoordinatorStatus(groupId);
            if (status != ErrorCode.None) { g.ErrorCode = (short)status; continue; }
            var group = shares.Coordinator.Describe(groupId);
            if (group is null)
            {
                g.ErrorCode = (short)ErrorCode.GroupIdNotFound;
                g.ErrorMessage = $"Group {groupId} not found.";
                continue;
            }
            g.GroupState = group.State;
            g.GroupEpoch = group.GroupEpoch;
            g.AssignmentEpoch = group.AssignmentEpoch;
            g.AssignorName = "simple";
            foreach (var m in group.Members.Values.OrderBy(m => m.MemberId, StringComparer.Ordinal))
            {
                g.Members.Add(new ShareGroupDescribeResponse.Member
                {
                    MemberId = m.MemberId,
                    RackId = m.RackId,
                    MemberEpoch = m.MemberEpoch,
                    ClientId = m.ClientId,
                    ClientHost = m.ClientHost,
                    SubscribedTopicNames = [.. m.SubscribedTopicNames],
                    Assignment = new ShareGroupDescribeResponse.Assignment
                    {
                        TopicPartitions = m.Assignment.Select(kv => new ShareGroupDescribeResponse.TopicPartitions
                        {
                            TopicId = kv.Key,
                            TopicName = broker.Replicas.GetTopic(kv.Key)?.Name ?? "",
                            Partitions = [.. kv.Value],
                        }).ToList(),
                    },
                });
            }
            if (request.IncludeAuthorizedOperations)
                g.AuthorizedOperations = Security.Acl.Authz.Operations(context, Security.Acl.ResourceType.Group, groupId);
        }
        return ValueTask.FromResult<IKafkaMessage?>(response);
    }
}
