// DescribeGroups (key 15), versions 0-6.
//
// Behaviour (GroupCoordinator.handleDescribeGroup / GroupMetadata.summary): state, protocol type,
// and the chosen protocol with each member's metadata and assignment — the last three only while
// Stable. An unknown group is described as "Dead" with no error. v3+ may include the authorized
// operations (no authorizer here: everything a group supports — READ, DELETE, DESCRIBE); v4+
// members' instance ids. v6 (KIP-1043): an unknown id or a KIP-848 consumer group is
// GROUP_ID_NOT_FOUND with a message (before v6: a Dead group, as upstream).
// Authorization (KafkaApis.handleDescribeGroupsRequest): GROUP DESCRIBE per group
// (GROUP_AUTHORIZATION_FAILED); authorized operations as the group's ACLs allow.
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class DescribeGroupsHandler
{
    /// <summary>Bit set of AclOperation codes READ(3), DELETE(6), DESCRIBE(8).</summary>
    public const int GroupOperations = (1 << 3) | (1 << 6) | (1 << 8);

    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, DescribeGroupsRequest request)
    {
        short v = context.ApiVersion;
        var coordinator = context.Broker.Groups.Coordinator;
        var response = new DescribeGroupsResponse();
        foreach (var id in request.Groups)
        {
            if (!Security.Acl.Authz.Group(context, Security.Acl.AclOperation.Describe, id))
            {
                response.Groups.Add(new DescribeGroupsResponse.DescribedGroup
                {
                    ErrorCode = (short)ErrorCode.GroupAuthorizationFailed, GroupId = id, GroupState = "", ProtocolType = "", ProtocolData = "",
                    AuthorizedOperations = int.MinValue,
                });
                continue;
            }
            var (error, s) = coordinator.DescribeGroup(id);
            // A share group is not a classic group (upstream: GroupIdNotFoundException from v6; a
            // Dead group below, which is what the classic coordinator describes for it).
            string? notFound = s.NotFound;
            if (error == ErrorCode.None && context.Broker.Shares.IsShareGroup(id)) notFound = $"Group {id} is not a classic group.";
            if (v >= 6 && error == ErrorCode.None && notFound is not null)
            {
                response.Groups.Add(new DescribeGroupsResponse.DescribedGroup
                {
                    ErrorCode = (short)ErrorCode.GroupIdNotFound, ErrorMessage = notFound, GroupId = id, GroupState = "Dead",
                    ProtocolType = "", ProtocolData = "", AuthorizedOperations = int.MinValue,
                });
                continue;
            }
            var g = new DescribeGroupsResponse.DescribedGroup
            {
                ErrorCode = (short)error, GroupId = id, GroupState = s.State, ProtocolType = s.ProtocolType, ProtocolData = s.ProtocolData,
                AuthorizedOperations = v >= 3 && request.IncludeAuthorizedOperations
                    ? Security.Acl.Authz.Operations(context, Security.Acl.ResourceType.Group, id) : int.MinValue,
            };
            foreach (var m in s.Members)
                g.Members.Add(new DescribeGroupsResponse.DescribedGroupMember
                {
                    MemberId = m.MemberId, GroupInstanceId = m.GroupInstanceId, ClientId = m.ClientId, ClientHost = m.ClientHost,
                    MemberMetadata = m.Metadata, MemberAssignment = m.Assignment,
                });
            response.Groups.Add(g);
        }
        return ValueTask.FromResult<IKafkaMessage?>(response);
    }
}
