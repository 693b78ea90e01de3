// LeaveGroup (key 13), versions 0-5.
//
// Behaviour (GroupCoordinator.handleLeaveGroup): v0-v2 remove one member by id; v3+ (KIP-345)
// a batch of members by member id and/or instance id (an empty member id with an instance id is
// an administrative removal of that static member), with an error per member. Removing a member
// of a Stable group starts a rebalance. v5 carries a reason (logged only by upstream; ignored).
// Authorization (KafkaApis.handleLeaveGroupRequest): GROUP READ, else GROUP_AUTHORIZATION_FAILED.
using Samsa.Kafka.Broker.Groups;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class LeaveGroupHandler
{
    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, LeaveGroupRequest request)
    {
        short v = context.ApiVersion;
        if (!Security.Acl.Authz.Group(context, Security.Acl.AclOperation.Read, request.GroupId))
            return ValueTask.FromResult<IKafkaMessage?>(new LeaveGroupResponse { ErrorCode = (short)ErrorCode.GroupAuthorizationFailed });
        var leaving = v >= 3
            ? request.Members.Select(m => new MemberLeave(m.MemberId, m.GroupInstanceId)).ToList()
            : [new MemberLeave(request.MemberId, null)];
        var coordinator = context.Broker.Groups.Coordinator;
        var (error, members) = GroupWriteReplication.Run(() => coordinator.LeaveGroup(request.GroupId, leaving), out var writes);
        var response = new LeaveGroupResponse { ErrorCode = (short)error };
        if (v >= 3)
        {
            foreach (var (m, e) in members)
                response.Members.Add(new LeaveGroupResponse.MemberResponse { MemberId = m.MemberId, GroupInstanceId = m.GroupInstanceId, ErrorCode = (short)e });
        }
        else if (error == ErrorCode.None && members.Count == 1)
        {
            response.ErrorCode = (short)members[0].Error;
        }
        // Answered once the departures' records are replicated; upstream's handleOperationException
        // answers a failed write with the top-level code and no members.
        return GroupWriteReplication.AnswerAsync(context, writes, response, e => new LeaveGroupResponse { ErrorCode = (short)e });
    }
}
