// AlterShareGroupOffsets (key 91), version 0 (KIP-932 admin; Kafka 4.1 and 4.2 serve v0 only).
//
// Behaviour (upstream KafkaApis.handleAlterShareGroupOffsetsRequest and
// GroupMetadataManager.alterShareGroupOffsets): sets the share-partition start offset (SPSO) of
// each listed partition of an empty share group; the share-partition starts over there with no
// in-flight records. The group's coordinator (FindCoordinator key type 0) answers; an unknown group
// id is created as an empty share group (as upstream), a classic / consumer group of that id is
// GROUP_ID_NOT_FOUND, a group with members NON_EMPTY_GROUP. ACLs as upstream: GROUP READ (else a
// group-wide GROUP_AUTHORIZATION_FAILED), TOPIC READ per topic (TOPIC_AUTHORIZATION_FAILED on
// each of its partitions). The share-partition state lives on each partition's leader here
// (Groups/Share), so the coordinator asks the leaders of partitions it does not lead with the same
// request over the inter-broker listener, as DescribeShareGroupOffsets does; such a forwarded
// request (client id "broker-N-share-offsets", CLUSTER_ACTION) is applied by a leader that is not
// the coordinator only when it leads every partition in it, else NOT_COORDINATOR.
// Errors: group GROUP_AUTHORIZATION_FAILED, NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE,
// INVALID_GROUP_ID, GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP; partition TOPIC_AUTHORIZATION_FAILED,
// UNKNOWN_TOPIC_OR_PARTITION, INVALID_REQUEST (negative start offset), UNKNOWN_SERVER_ERROR (a
// leader could not be asked).
// Differs from upstream: upstream writes the new SPSO through the share coordinator
// (InitializeShareGroupState on __share_group_state); here the partition leaders write their own
// state files. The emptiness check and the leaders' updates are not one transaction: a member
// joining in between is not refused. A negative start offset is refused per partition.
using Samsa.Kafka.Broker.Cluster;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Broker.Security.Acl;

namespace Samsa.Kafka.Broker.Handlers;

public static class AlterShareGroupOffsetsHandler
{
    /// <summary>Client id prefix of the coordinator's forwarded Alter/DeleteShareGroupOffsets.</summary>
    internal const string ForwardSuffix = "-share-offsets";

    /// <summary>True when this request is a coordinator's forward to a partition leader.</summary>
    internal static bool IsForwarded(RequestContext context) =>
        context.Header.ClientId is { } id && id.StartsWith("broker-", StringComparison.Ordinal) && id.EndsWith(ForwardSuffix, StringComparison.Ordinal)
        && Authz.Cluster(context, AclOperation.ClusterAction, logIfDenied: false);

    public static async ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, AlterShareGroupOffsetsRequest request)
    {
        var broker = context.Broker;
        var shares = broker.Shares;
        string groupId = request.GroupId;
        var response = new AlterShareGroupOffsetsResponse();
        AlterShareGroupOffsetsResponse Fail(ErrorCode code, string? message)
        {
            response.ErrorCode = (short)code;
            response.ErrorMessage = message;
            return response;
        }
        if (!Authz.Group(context, AclOperation.Read, groupId)) return Fail(ErrorCode.GroupAuthorizationFailed, "Group authorization failed.");
        if (string.IsNullOrEmpty(groupId)) return Fail(ErrorCode.InvalidGroupId, "The group id can't be empty.");
        var status = shares.CoordinatorStatus(groupId);
        bool coordinator = status == ErrorCode.None;
        // Duplicate topic entries are merged (TopicName is the request's map key upstream).
        var wanted = request.Topics.GroupBy(t => t.TopicName, StringComparer.Ordinal)
            .Select(g => (Topic: g.Key, Partitions: g.SelectMany(t => t.Partitions).GroupBy(p => p.PartitionIndex).Select(p => p.Last()).ToList()))
            .ToList();
        if (!coordinator)
        {
            bool allLocal = wanted.All(w => w.Partitions.All(p => broker.Replicas.GetPartition(w.Topic, p.PartitionIndex) is { IsLeader: true }));
            if (!allLocal || !IsForwarded(context)) return Fail(status, null);
        }
        else if (ShareGroupHeartbeatHandler.IsOtherGroupType(broker, groupId))
            return Fail(ErrorCode.GroupIdNotFound, $"Group {groupId} is not a share group.");

        var denied = Authz.DeniedTopics(context, AclOperation.Read, wanted.Select(w => (string?)w.Topic));
        var apply = new List<(Partition Partition, long Offset, AlterShareGroupOffsetsResponse.AlterShareGroupOffsetsResponsePartition Entry)>();
        foreach (var (topicName, partitions) in wanted)
        {
            var topic = broker.Replicas.GetTopic(topicName);
            var rt = new AlterShareGroupOffsetsResponse.AlterShareGroupOffsetsResponseTopic { TopicName = topicName, TopicId = topic?.Id ?? Guid.Empty };
            response.Responses.Add(rt);
            foreach (var p in partitions)
            {
                var rp = new AlterShareGroupOffsetsResponse.AlterShareGroupOffsetsResponsePartition { PartitionIndex = p.PartitionIndex };
                rt.Partitions.Add(rp);
                if (denied.Contains(topicName)) { rp.ErrorCode = (short)ErrorCode.TopicAuthorizationFailed; rp.ErrorMessage = "Topic authorization failed."; continue; }
                var partition = topic is null ? null : broker.Replicas.GetPartition(topicName, p.PartitionIndex);
                if (partition is null) { rp.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition; rp.ErrorMessage = $"{topicName}-{p.PartitionIndex} does not exist."; continue; }
                if (p.StartOffset < 0) { rp.ErrorCode = (short)ErrorCode.InvalidRequest; rp.ErrorMessage = "The start offset can't be negative."; continue; }
                apply.Add((partition, p.StartOffset, rp));
            }
        }
        if (coordinator)
        {
            // Upstream creates an unknown group; it must have no members.
            var topics = apply.Select(a => a.Partition.Topic.Name).Distinct();
            int members = GroupWriteReplication.Run(() => shares.Coordinator.PrepareOffsetChange(groupId, create: true, topics), out var writes);
            if (members > 0)
            {
                response.Responses.Clear();
                return Fail(ErrorCode.NonEmptyGroup, $"Group {groupId} has {members} member(s): stop them before altering its offsets.");
            }
            // The group's new topics are replicated before the share-partitions restart (upstream's
            // share-group-offsets-alter write completes first; handleOperationException's codes).
            var replicated = await context.Broker.AwaitGroupWritesAsync(writes, context.Cancellation);
            if (replicated != ErrorCode.None)
            {
                response.Responses.Clear();
                return Fail(replicated, null);
            }
        }
        var remote = new Dictionary<int, List<(Partition Partition, long Offset, AlterShareGroupOffsetsResponse.AlterShareGroupOffsetsResponsePartition Entry)>>();
        foreach (var a in apply)
        {
            if (a.Partition.IsLeader)
            {
                // The share-partition restarts here and at the share coordinator (InitializeShareGroupState).
                var e = await shares.AlterLocalAsync(groupId, a.Partition, a.Offset, context.Cancellation);
                if (e != ErrorCode.None) { a.Entry.ErrorCode = (short)e; a.Entry.ErrorMessage = $"The share coordinator answered {e}."; }
                continue;
            }
            int leader = a.Partition.LeaderId ?? -1;
            if (!remote.TryGetValue(leader, out var list)) remote[leader] = list = [];
            list.Add(a);
        }
        foreach (var (leader, list) in remote)
        {
            var forwarded = new AlterShareGroupOffsetsRequest
            {
                GroupId = groupId,
                Topics = list.GroupBy(x => x.Partition.Topic.Name).Select(g => new AlterShareGroupOffsetsRequest.AlterShareGroupOffsetsRequestTopic
                {
                    TopicName = g.Key,
                    Partitions = g.Select(x => new AlterShareGroupOffsetsRequest.AlterShareGroupOffsetsRequestPartition
                    {
                        PartitionIndex = x.Partition.Index, StartOffset = x.Offset,
                    }).ToList(),
                }).ToList(),
            };
            try
            {
                var answer = await SendToLeader<AlterShareGroupOffsetsResponse>(broker, leader, forwarded, context.Cancellation);
                foreach (var (partition, _, entry) in list)
                {
                    if (answer.ErrorCode != 0) { entry.ErrorCode = answer.ErrorCode; entry.ErrorMessage = answer.ErrorMessage; continue; }
                    var p = answer.Responses.FirstOrDefault(t => t.TopicName == partition.Topic.Name)?.Partitions.FirstOrDefault(x => x.PartitionIndex == partition.Index);
                    if (p is null) { entry.ErrorCode = (short)ErrorCode.UnknownServerError; entry.ErrorMessage = "The leader did not answer for the partition."; continue; }
                    entry.ErrorCode = p.ErrorCode;
                    entry.ErrorMessage = p.ErrorMessage;
                }
            }
            catch (Exception e) when (IsLeaderCallFailure(e))
            {
                foreach (var (_, _, entry) in list)
                {
                    entry.ErrorCode = (short)ErrorCode.UnknownServerError;
                    entry.ErrorMessage = $"The leader could not be asked: {e.Message}";
                }
            }
        }
        return response;
    }

    /// <summary>Sends a forwarded share-offsets request (v0) to broker <paramref name="leader"/> over
    /// the inter-broker listener, with a 10 s limit.</summary>
    internal static async Task<TResponse> SendToLeader<TResponse>(KafkaBroker broker, int leader, IKafkaMessage request, CancellationToken ct)
        where TResponse : class, IKafkaMessage<TResponse>
    {
        if (leader < 0 || broker.InterBroker.EndpointOf(leader) is not { } ep) throw new InvalidOperationException($"no live leader {leader}");
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(10));
        await using var client = await broker.InterBroker.ConnectAsync(ep.Host, ep.Port, $"broker-{broker.BrokerId}{ForwardSuffix}", timeout.Token);
        return await client.SendAsync<TResponse>(request, 0, ct: timeout.Token) ?? throw new InvalidOperationException("no answer");
    }

    internal static bool IsLeaderCallFailure(Exception e) =>
        e is IOException or OperationCanceledException or InvalidOperationException
            or Samsa.Kafka.Protocol.Primitives.KafkaProtocolException or System.Net.Sockets.SocketException;
}
