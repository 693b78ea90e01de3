// SyncGroup (key 14), versions 0-5.
//
// Behaviour (GroupCoordinator.handleSyncGroup): followers wait until the leader sends the
// assignment, which is stored in __consumer_offsets before anyone is answered; members the leader
// left out get an empty assignment; a Stable group answers with the member's current assignment.
// The assignment bytes are opaque to the coordinator (any protocol type). v3+ carries the
// instance id (FENCED_INSTANCE_ID), v5+ the protocol type and name, checked against the group's.
// Authorization (KafkaApis.handleSyncGroupRequest): GROUP READ, else GROUP_AUTHORIZATION_FAILED.
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class SyncGroupHandler
{
    public static async ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, SyncGroupRequest request)
    {
        short v = context.ApiVersion;
        if (!Security.Acl.Authz.Group(context, Security.Acl.AclOperation.Read, request.GroupId))
            return new SyncGroupResponse { ErrorCode = (short)ErrorCode.GroupAuthorizationFailed, Assignment = [] };
        var assignments = request.Assignments.Select(a => (a.MemberId, a.Assignment)).ToList();
        var task = context.Broker.Groups.Coordinator.SyncGroup(request.GroupId, request.GenerationId, request.MemberId,
            v >= 3 ? request.GroupInstanceId : null, v >= 5 ? request.ProtocolType : null, v >= 5 ? request.ProtocolName : null, assignments);
        var result = await task.WaitAsync(context.Cancellation);
        return new SyncGroupResponse
        {
            ErrorCode = (short)result.Error,
            ProtocolType = result.ProtocolType,
            ProtocolName = result.ProtocolName,
            Assignment = result.Assignment,
        };
    }
}
