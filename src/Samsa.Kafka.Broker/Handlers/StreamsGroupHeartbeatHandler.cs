// StreamsGroupHeartbeat (key 88), version 0 (Kafka 4.2's range): the KIP-1071 streams rebalance protocol.
//
// Behaviour (GroupMetadataManager.streamsGroupHeartbeat; Groups/Streams/GroupCoordinator.Streams.cs):
// epoch 0 joins with the topology, -1 leaves, -2 leaves temporarily as a static member; each answer
// carries the member's epoch, the heartbeat interval (group.streams.heartbeat.interval.ms), the
// warm-up settings (acceptable recovery lag 10000, task offset interval 60000 ms: upstream's group
// config defaults), the group's status list (STALE_TOPOLOGY, MISSING_SOURCE_TOPICS,
// INCORRECTLY_PARTITIONED_TOPICS, MISSING_INTERNAL_TOPICS, SHUTDOWN_APPLICATION), the member's
// active/standby/warm-up tasks when they changed, and the endpoint-to-partitions map for
// interactive queries when the client's EndpointInformationEpoch is behind.
// Internal topics: missing repartition/changelog topics are created by this broker after the
// coordinator answered (upstream's KafkaApis asks AutoTopicCreationManager.createStreamsInternalTopics);
// the group stays NotReady with MISSING_INTERNAL_TOPICS until they exist.
// Authorization (KafkaApis.handleStreamsGroupHeartbeat): GROUP READ, else GROUP_AUTHORIZATION_FAILED;
// a join needs TOPIC DESCRIBE on every topic of the topology (TOPIC_AUTHORIZATION_FAILED), and
// creating internal topics needs CLUSTER CREATE or TOPIC CREATE on each (else the status detail
// says so and nothing is created).
using Samsa.Kafka.Broker.Groups;
using Samsa.Kafka.Broker.Groups.Streams;
using Samsa.Kafka.Broker.Security.Acl;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class StreamsGroupHeartbeatHandler
{
    /// <summary>Upstream's streams.recovery.lag / streams.task.offset.interval.ms group config defaults.</summary>
    public const int AcceptableRecoveryLag = 10_000, TaskOffsetIntervalMs = 60_000;

    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, StreamsGroupHeartbeatRequest request)
    {
        // Upstream KafkaApis.isStreamsGroupProtocolEnabled: finalized streams.version 0
        // (UpdateFeatures) turns streams groups off, and the API answers UNSUPPORTED_VERSION.
        if (context.Broker.Features.Level("streams.version") < 1)
            return Done(new StreamsGroupHeartbeatResponse { ErrorCode = (short)ErrorCode.UnsupportedVersion, ErrorMessage = "The streams group protocol is disabled (streams.version 0).", MemberId = request.MemberId });
        if (!Authz.Group(context, AclOperation.Read, request.GroupId))
            return Done(new StreamsGroupHeartbeatResponse { ErrorCode = (short)ErrorCode.GroupAuthorizationFailed, MemberId = request.MemberId });
        if (context.Broker.Shares.IsShareGroup(request.GroupId))
            return Done(new StreamsGroupHeartbeatResponse { ErrorCode = (short)ErrorCode.GroupIdNotFound, ErrorMessage = $"Group {request.GroupId} is not a streams group.", MemberId = request.MemberId });
        if (request.Topology is { } topology)
        {
            var names = topology.Subtopologies.SelectMany(s => s.SourceTopics.Concat(s.RepartitionSinkTopics)
                .Concat(s.RepartitionSourceTopics.Select(r => r.Name)).Concat(s.StateChangelogTopics.Select(c => c.Name)))
                .Distinct(StringComparer.Ordinal).ToList();
            var denied = names.Where(n => !Authz.Topic(context, AclOperation.Describe, n)).ToList();
            if (denied.Count > 0)
                return Done(new StreamsGroupHeartbeatResponse
                {
                    ErrorCode = (short)ErrorCode.TopicAuthorizationFailed, MemberId = request.MemberId,
                    ErrorMessage = $"Unauthorized topics: {string.Join(", ", denied.Order(StringComparer.Ordinal))}",
                });
        }
        var coordinator = context.Broker.Groups.Coordinator;
        string clientId = context.Header.ClientId ?? "", clientHost = JoinGroupHandler.ClientHost(context);
        var result = GroupWriteReplication.Run(() => coordinator.StreamsGroupHeartbeat(request, clientId, clientHost), out var writes);
        var response = new StreamsGroupHeartbeatResponse
        {
            ErrorCode = (short)result.Error, ErrorMessage = result.ErrorMessage, MemberId = result.MemberId,
            MemberEpoch = result.MemberEpoch, HeartbeatIntervalMs = result.HeartbeatIntervalMs,
        };
        if (result.Error != ErrorCode.None) return GroupWriteReplication.AnswerAsync(context, writes, response, Failed);
        response.AcceptableRecoveryLag = AcceptableRecoveryLag;
        response.TaskOffsetIntervalMs = TaskOffsetIntervalMs;
        var statuses = result.Statuses.ToList();
        if (result.TopicsToCreate.Count > 0)
        {
            var allowed = result.TopicsToCreate.Where(t => Authz.Cluster(context, AclOperation.Create, logIfDenied: false)
                || Authz.Topic(context, AclOperation.Create, t.Name)).ToList();
            if (allowed.Count < result.TopicsToCreate.Count)
                statuses = statuses.Select(s => s.Code == TopologyConfigurator.MissingInternalTopics
                    ? (s.Code, s.Detail + "; Unauthorized to CREATE on topics " + string.Join(", ", result.TopicsToCreate.Except(allowed).Select(t => t.Name)) + ".")
                    : s).ToList();
            if (allowed.Count > 0) InternalTopicCreator.Request(context.Broker, allowed);
        }
        response.Status = statuses.Select(s => new StreamsGroupHeartbeatResponse.StatusData { StatusCode = s.Code, StatusDetail = s.Detail }).ToList();
        if (result.Assignment is { } a)
        {
            response.ActiveTasks = Tasks(a.Active);
            response.StandbyTasks = Tasks(a.Standby);
            response.WarmupTasks = Tasks(a.Warmup);
        }
        response.EndpointInformationEpoch = result.EndpointInformationEpoch;
        if (result.PartitionsByEndpoint is { } endpoints)
            response.PartitionsByUserEndpoint = endpoints.Select(e => new StreamsGroupHeartbeatResponse.EndpointToPartitions
            {
                UserEndpoint = new StreamsGroupHeartbeatResponse.Endpoint { Host = e.Host, Port = e.Port },
                ActivePartitions = e.Active.Select(t => new StreamsGroupHeartbeatResponse.TopicPartition { Topic = t.Topic, Partitions = t.Partitions }).ToList(),
                StandbyPartitions = e.Standby.Select(t => new StreamsGroupHeartbeatResponse.TopicPartition { Topic = t.Topic, Partitions = t.Partitions }).ToList(),
            }).ToList();
        return GroupWriteReplication.AnswerAsync(context, writes, response, Failed);

        // Upstream's CoordinatorRuntime appends the group's records with acks=all and completes the
        // heartbeat only once the offsets partition's high watermark passed them. Answering after the
        // leader's local append lost whole groups when the coordinator's broker died before its
        // followers fetched: the new coordinator replayed no group and answered GROUP_ID_NOT_FOUND.
        // A heartbeat that wrote nothing answers at once (GroupWriteReplication.cs).
        StreamsGroupHeartbeatResponse Failed(ErrorCode e) => new()
        {
            ErrorCode = (short)e, MemberId = response.MemberId,
            ErrorMessage = e == ErrorCode.NotCoordinator
                ? "The coordinator moved before the group's records were replicated."
                : "The group's records were not replicated to the in-sync replicas in time.",
        };
    }

    private static List<StreamsGroupHeartbeatResponse.TaskIds> Tasks(TaskSet s) =>
        s.Subtopologies.Select(x => new StreamsGroupHeartbeatResponse.TaskIds { SubtopologyId = x, Partitions = s.PartitionsOf(x).ToList() }).ToList();

    private static ValueTask<IKafkaMessage?> Done(IKafkaMessage m) => ValueTask.FromResult<IKafkaMessage?>(m);
}
