// ConsumerGroupHeartbeat (key 68), versions 0-1 (Kafka 4.2's range): the KIP-848 consumer group protocol.
//
// Behaviour (GroupMetadataManager.consumerGroupHeartbeat; Groups/GroupCoordinator.Consumer.cs):
// epoch 0 joins (v0: the coordinator picks the member id; v1: the client sends its own UUID,
// KIP-1082), -1 leaves, -2 leaves temporarily as a static member; every heartbeat returns the
// member's epoch, the heartbeat interval (group.consumer.heartbeat.interval.ms) and, when it
// changed, its assignment. The server-side assignor (group.consumer.assignors: uniform, range)
// computes the target assignment; members revoke before others receive (unreleased partitions).
// v1 adds SubscribedTopicRegex (RE2/J syntax, matched against whole topic names).
// Errors as upstream: INVALID_REQUEST, UNSUPPORTED_ASSIGNOR, INVALID_REGULAR_EXPRESSION,
// UNKNOWN_MEMBER_ID, FENCED_MEMBER_EPOCH, UNRELEASED_INSTANCE_ID, FENCED_INSTANCE_ID,
// GROUP_MAX_SIZE_REACHED, GROUP_ID_NOT_FOUND (a heartbeat or leave, epoch != 0, naming a group the
// coordinator does not know or one that is not a consumer group; a join to a classic group with
// members that group.consumer.migration.policy does not let it upgrade), NOT_COORDINATOR /
// COORDINATOR_LOAD_IN_PROGRESS.
// A join to a live classic group upgrades it online, and the last consumer-protocol member leaving
// a group of classic members downgrades it (Groups/GroupCoordinator.Mixed.cs).
// Differences from upstream: regexes use .NET's engine (a superset of RE2).
// Authorization (KafkaApis.handleConsumerGroupHeartbeat): GROUP READ, else GROUP_AUTHORIZATION_FAILED;
// topics the member may not DESCRIBE are not held against it here (upstream filters regex matches
// by TOPIC DESCRIBE; not done).
// A heartbeat that changed the group (join, leave, new target assignment, reconciled assignment) is
// answered once its records are replicated; NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE when they
// are not (GroupWriteReplication.cs, upstream's CoordinatorRuntime).
using Samsa.Kafka.Broker.Groups;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class ConsumerGroupHeartbeatHandler
{
    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, ConsumerGroupHeartbeatRequest request)
    {
        // Upstream KafkaApis.isConsumerGroupProtocolEnabled: finalized group.version 0 turns the
        // KIP-848 protocol off (UpdateFeatures), and the API answers UNSUPPORTED_VERSION.
        if (context.Broker.Features.Level("group.version") < 1)
            return Done(new ConsumerGroupHeartbeatResponse { ErrorCode = (short)ErrorCode.UnsupportedVersion, ErrorMessage = "The consumer group protocol is disabled (group.version 0)." });
        if (!Security.Acl.Authz.Group(context, Security.Acl.AclOperation.Read, request.GroupId))
            return Done(new ConsumerGroupHeartbeatResponse { ErrorCode = (short)ErrorCode.GroupAuthorizationFailed });
        // The id of a share group is not a consumer group's (upstream: GroupIdNotFoundException).
        if (context.Broker.Shares.IsShareGroup(request.GroupId))
            return Done(new ConsumerGroupHeartbeatResponse { ErrorCode = (short)ErrorCode.GroupIdNotFound, ErrorMessage = $"Group {request.GroupId} is not a consumer group." });
        short v = context.ApiVersion;
        var heartbeat = new ConsumerHeartbeatParams(
            request.GroupId, request.MemberId, request.MemberEpoch, request.InstanceId, request.RackId, request.RebalanceTimeoutMs,
            request.SubscribedTopicNames, v >= 1 ? request.SubscribedTopicRegex : null, request.ServerAssignor,
            request.TopicPartitions?.Select(t => (t.TopicId, (IReadOnlyList<int>)t.Partitions)).ToList(),
            context.Header.ClientId ?? "", JoinGroupHandler.ClientHost(context), v);
        var coordinator = context.Broker.Groups.Coordinator;
        var result = GroupWriteReplication.Run(() => coordinator.ConsumerGroupHeartbeat(heartbeat), out var writes);
        var response = new ConsumerGroupHeartbeatResponse
        {
            ErrorCode = (short)result.Error, ErrorMessage = result.ErrorMessage,
            MemberId = result.MemberId, MemberEpoch = result.MemberEpoch, HeartbeatIntervalMs = result.HeartbeatIntervalMs,
        };
        if (result.Assignment is { } a)
        {
            response.Assignment = new ConsumerGroupHeartbeatResponse.AssignmentData();
            foreach (var t in a.Topics)
                response.Assignment.TopicPartitions.Add(new ConsumerGroupHeartbeatResponse.TopicPartitions { TopicId = t, Partitions = a.PartitionsOf(t).ToList() });
        }
        // Upstream's handleOperationException answers such a failure with the code only (no message).
        return GroupWriteReplication.AnswerAsync(context, writes, response, e => new ConsumerGroupHeartbeatResponse { ErrorCode = (short)e });
    }

    private static ValueTask<IKafkaMessage?> Done(IKafkaMessage m) => ValueTask.FromResult<IKafkaMessage?>(m);
}
