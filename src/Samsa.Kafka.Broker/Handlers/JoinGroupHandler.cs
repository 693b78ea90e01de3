// JoinGroup (key 11), versions 0-9.
//
// Behaviour (GroupCoordinator.handleJoinGroup, classic protocol): the request is parked until the
// rebalance completes (all known members rejoined, or the rebalance timeout / initial delay
// passed). v0 has no rebalance timeout: the session timeout is used (upstream). v4+ (KIP-394)
// first answers MEMBER_ID_REQUIRED with an id to rejoin with; v5+ static membership
// (group.instance.id, KIP-345); v7+ returns the protocol type; v9 (KIP-814) may set
// skipAssignment for a restarted static leader of a stable group. Session timeouts outside
// group.min/max.session.timeout.ms get INVALID_SESSION_TIMEOUT. group.max.size (KIP-389): a
// newcomer beyond it (members awaiting join while rebalancing, members otherwise) gets
// GROUP_MAX_SIZE_REACHED with an empty member id. A join to a KIP-848 consumer group with members
// (protocol type "consumer") makes a mixed group: answered at once, the server-side assignor
// decides (Groups/GroupCoordinator.Mixed.cs; SyncGroup/Heartbeat/LeaveGroup follow it there).
// Differences from upstream: a negative rebalance timeout (v1+) is refused with INVALID_REQUEST
// instead of completing the rebalance at once; a pending (dynamic) member id sent with an
// instance id gets INVALID_REQUEST where upstream fails with an internal error.
// A join that writes the group (a static member replacing its old member id in a Stable group) is
// answered once that is replicated, as upstream answers it from the write's future; a failed write
// answers COORDINATOR_NOT_AVAILABLE / NOT_COORDINATOR with an empty member id
// (GroupWriteReplication.cs). Joins completed by a rebalance write nothing (the group is written by
// the leader's SyncGroup).
// Authorization (KafkaApis.handleJoinGroupRequest): GROUP READ, else GROUP_AUTHORIZATION_FAILED.
using System.Net;
using Samsa.Kafka.Broker.Groups;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class JoinGroupHandler
{
    public static async ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, JoinGroupRequest request)
    {
        short v = context.ApiVersion;
        if (!Security.Acl.Authz.Group(context, Security.Acl.AclOperation.Read, request.GroupId))
            return new JoinGroupResponse
            {
                // Upstream JoinGroupRequest.getErrorResponse.
                ErrorCode = (short)ErrorCode.GroupAuthorizationFailed,
                GenerationId = -1,
                ProtocolName = v >= 7 ? null : "",
                Leader = "",
                MemberId = "",
            };
        // A classic member cannot join a share group (upstream: INCONSISTENT_GROUP_PROTOCOL for a
        // group of another type).
        if (context.Broker.Shares.IsShareGroup(request.GroupId))
            return new JoinGroupResponse
            {
                ErrorCode = (short)ErrorCode.InconsistentGroupProtocol,
                GenerationId = -1,
                ProtocolName = v >= 7 ? null : "",
                Leader = "",
                MemberId = request.MemberId,
            };
        int rebalanceTimeout = v >= 1 ? request.RebalanceTimeoutMs : request.SessionTimeoutMs;
        JoinGroupResult result;
        GroupWriteScope? writes = null;
        if (rebalanceTimeout < 0)
        {
            result = new JoinGroupResult(ErrorCode.InvalidRequest, request.MemberId);
        }
        else
        {
            var protocols = request.Protocols.Select(p => new MemberProtocol(p.Name, p.Metadata)).ToList();
            var join = new JoinGroupParams(
                request.GroupId, request.MemberId, v >= 5 ? request.GroupInstanceId : null,
                RequireKnownMemberId: v >= 4 && request.GroupInstanceId is null,
                SupportSkippingAssignment: v >= 9,
                context.Header.ClientId ?? "", ClientHost(context), rebalanceTimeout, request.SessionTimeoutMs,
                request.ProtocolType, protocols);
            var coordinator = context.Broker.Groups.Coordinator;
            var task = GroupWriteReplication.Run(() => coordinator.JoinGroup(join), out var scope);
            writes = scope;
            result = await task.WaitAsync(context.Cancellation);
        }
        var response = new JoinGroupResponse
        {
            ErrorCode = (short)result.Error,
            GenerationId = result.GenerationId,
            ProtocolType = result.ProtocolType,
            // Before v7 the protocol name is not nullable: "" when none.
            ProtocolName = v >= 7 ? result.ProtocolName : result.ProtocolName ?? "",
            Leader = result.LeaderId,
            SkipAssignment = result.SkipAssignment,
            MemberId = result.MemberId,
        };
        foreach (var m in result.MemberList)
            response.Members.Add(new JoinGroupResponse.JoinGroupResponseMember { MemberId = m.MemberId, GroupInstanceId = m.GroupInstanceId, Metadata = m.Metadata });
        if (writes is null) return response;
        return await GroupWriteReplication.AnswerAsync(context, writes, response, e => new JoinGroupResponse
        {
            // Upstream (updateStaticMemberThenRebalanceOrCompleteJoin): the write's error with an
            // unknown member id, the group's generation, protocol and previous leader.
            ErrorCode = (short)e, MemberId = "", GenerationId = result.GenerationId, ProtocolType = result.ProtocolType,
            ProtocolName = v >= 7 ? result.ProtocolName : result.ProtocolName ?? "", Leader = result.LeaderId,
        });
    }

    /// <summary>Upstream reports a member's host as InetAddress.toString(): "/127.0.0.1".</summary>
    internal static string ClientHost(RequestContext context) =>
        context.Connection?.RemoteEndPoint is IPEndPoint ip ? "/" + ip.Address : "/127.0.0.1";
}
