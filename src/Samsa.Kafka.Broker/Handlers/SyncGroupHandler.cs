// SyncGroup (key 14), versions 0-5.
//
// Behaviour (GroupCoordinator.handleSyncGroup): followers wait until the leader sends the
// assignment, which is stored in __consumer_offsets before anyone is answered; members the leader
// left out get an empty assignment; a Stable group answers with the member's current assignment.
// The assignment bytes are opaque to the coordinator (any protocol type). v3+ carries the
// instance id (FENCED_INSTANCE_ID), v5+ the protocol type and name, checked against the group's.
// The assignment is answered once the group record holding it is replicated, to the leader and to
// the followers parked for it (upstream propagates the assignment from the write's future), so a
// coordinator failover cannot lose an assignment a member was given; a write that is not
// replicated answers COORDINATOR_NOT_AVAILABLE / NOT_COORDINATOR (GroupWriteReplication.cs).
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
        var coordinator = context.Broker.Groups.Coordinator;
        string? instanceId = v >= 3 ? request.GroupInstanceId : null, protocolType = v >= 5 ? request.ProtocolType : null, protocolName = v >= 5 ? request.ProtocolName : null;
        var task = GroupWriteReplication.Run(() => coordinator.SyncGroup(request.GroupId, request.GenerationId, request.MemberId,
            instanceId, protocolType, protocolName, assignments), out var writes);
        var result = await task.WaitAsync(context.Cancellation);
        // Followers get the assignment the leader's SyncGroup stored — parked until then, or at once
        // when they come after it (Samsa's group is Stable from the leader's append; upstream's only
        // once the write committed): either way no earlier than that record is replicated. Nothing
        // pending makes this an immediate check of the high watermark.
        if (result.Error == ErrorCode.None)
        {
            var replicated = writes.Wrote
                ? await context.Broker.AwaitGroupWritesAsync(writes, context.Cancellation)
                : await GroupWriteReplication.AwaitPendingAsync(context, request.GroupId);
            if (replicated != ErrorCode.None) return new SyncGroupResponse { ErrorCode = (short)replicated, Assignment = [] };
        }
        return new SyncGroupResponse
        {
            ErrorCode = (short)result.Error,
            ProtocolType = result.ProtocolType,
            ProtocolName = result.ProtocolName,
            Assignment = result.Assignment,
        };
    }
}
