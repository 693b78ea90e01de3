// ConsumerGroupDescribe (key 69), versions 0-1 (Kafka 4.2's range).
//
// Behaviour (GroupMetadataManager.consumerGroupDescribe): per group its state (Empty, Assigning,
// Reconciling, Stable), group and assignment epochs, the assignor, and every member with its
// subscription, current assignment and target assignment (topic id and name). v1 (KIP-1099)
// adds each member's type: always 1 (consumer) here, as classic members never join a consumer
// group on Samsa. GROUP_ID_NOT_FOUND for an unknown id or a classic group; INVALID_GROUP_ID for "".
// Authorization (KafkaApis.handleConsumerGroupDescribe): GROUP DESCRIBE per group
// (GROUP_AUTHORIZATION_FAILED); the authorized operations bit set when asked for. Upstream also
// leaves out of the assignments topics the caller may not DESCRIBE (TOPIC_AUTHORIZATION_FAILED for
// the group); not done here.
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class ConsumerGroupDescribeHandler
{
    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, ConsumerGroupDescribeRequest request)
    {
        var coordinator = context.Broker.Groups.Coordinator;
        var response = new ConsumerGroupDescribeResponse();
        // group.version 0: UNSUPPORTED_VERSION for every group (upstream isConsumerGroupProtocolEnabled
        // and ConsumerGroupDescribeRequest.getErrorResponse).
        bool enabled = context.Broker.Features.Level("group.version") >= 1;
        foreach (var id in request.GroupIds)
        {
            var g = new ConsumerGroupDescribeResponse.DescribedGroup { GroupId = id, GroupState = "", AssignorName = "" };
            response.Groups.Add(g);
            if (!enabled) { g.ErrorCode = (short)ErrorCode.UnsupportedVersion; continue; }
            if (!Security.Acl.Authz.Group(context, Security.Acl.AclOperation.Describe, id))
            {
                g.ErrorCode = (short)ErrorCode.GroupAuthorizationFailed;
                continue;
            }
            if (id.Length == 0)
            {
                g.ErrorCode = (short)ErrorCode.InvalidGroupId;
                continue;
            }
            var (error, message, view) = coordinator.DescribeConsumerGroup(id);
            g.ErrorCode = (short)error;
            g.ErrorMessage = message;
            if (view is null) continue;
            g.GroupState = view.State;
            g.GroupEpoch = view.GroupEpoch;
            g.AssignmentEpoch = view.AssignmentEpoch;
            g.AssignorName = view.AssignorName;
            if (request.IncludeAuthorizedOperations)
                g.AuthorizedOperations = Security.Acl.Authz.Operations(context, Security.Acl.ResourceType.Group, id);
            foreach (var m in view.Members)
                g.Members.Add(new ConsumerGroupDescribeResponse.Member
                {
                    MemberId = m.MemberId, InstanceId = m.InstanceId, RackId = m.RackId, MemberEpoch = m.MemberEpoch,
                    ClientId = m.ClientId, ClientHost = m.ClientHost, SubscribedTopicNames = m.SubscribedTopicNames,
                    SubscribedTopicRegex = m.SubscribedTopicRegex,
                    Assignment = ToAssignment(m.Assignment), TargetAssignment = ToAssignment(m.TargetAssignment),
                    // KIP-1099: 0 a classic-protocol member (mixed group), 1 a consumer-protocol member.
                    MemberType = (sbyte)(m.IsClassic ? 0 : 1),
                });
        }
        return ValueTask.FromResult<IKafkaMessage?>(response);
    }

    private static ConsumerGroupDescribeResponse.Assignment ToAssignment(List<(Guid Id, string Name, List<int> Partitions)> parts)
    {
        var a = new ConsumerGroupDescribeResponse.Assignment();
        foreach (var (id, name, ps) in parts)
            a.TopicPartitions.Add(new ConsumerGroupDescribeResponse.TopicPartitions { TopicId = id, TopicName = name, Partitions = ps });
        return a;
    }
}
