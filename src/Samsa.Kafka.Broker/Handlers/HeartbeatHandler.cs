// Heartbeat (key 12), versions 0-4.
//
// Behaviour (GroupCoordinator.handleHeartbeat): keeps the member's session; REBALANCE_IN_PROGRESS
// tells it to rejoin; ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID / FENCED_INSTANCE_ID (v3+) when it is
// not the current member of the current generation. While the group's partition loads the answer
// is NONE, as upstream.
// Authorization (KafkaApis.handleHeartbeatRequest): GROUP READ, else GROUP_AUTHORIZATION_FAILED.
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class HeartbeatHandler
{
    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, HeartbeatRequest request)
    {
        if (!Security.Acl.Authz.Group(context, Security.Acl.AclOperation.Read, request.GroupId))
            return ValueTask.FromResult<IKafkaMessage?>(new HeartbeatResponse { ErrorCode = (short)ErrorCode.GroupAuthorizationFailed });
        var coordinator = context.Broker.Groups.Coordinator;
        string? instanceId = context.ApiVersion >= 3 ? request.GroupInstanceId : null;
        // A classic heartbeat writes only when it changes a mixed group (GroupCoordinator.Mixed.cs);
        // then it is answered once that is replicated (GroupWriteReplication.cs).
        var error = GroupWriteReplication.Run(() => coordinator.Heartbeat(request.GroupId, request.MemberId, instanceId, request.GenerationId), out var writes);
        return GroupWriteReplication.AnswerAsync(context, writes, new HeartbeatResponse { ErrorCode = (short)error },
            e => new HeartbeatResponse { ErrorCode = (short)e });
    }
}
