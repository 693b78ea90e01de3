// DeleteShareGroupOffsets (key 92), version 0 (KIP-932 admin; Kafka 4.1 and 4.2 serve v0 only).
//
// Behaviour (upstream KafkaApis.handleDeleteShareGroupOffsetsRequest and
// GroupMetadataManager.deleteShareGroupOffsets): forgets the share-partition state of every
// partition of each listed topic for an empty share group, so a consumer that subscribes again
// starts from share.auto.offset.reset. Whole topics only. The group's coordinator answers; an
// unknown group or a classic / consumer group of that id is GROUP_ID_NOT_FOUND, a group with
// members NON_EMPTY_GROUP. ACLs as upstream: GROUP DELETE (as OffsetDelete; else a group-wide
// GROUP_AUTHORIZATION_FAILED), TOPIC READ per topic (TOPIC_AUTHORIZATION_FAILED). The
// share-partition state lives on each partition's leader here (Groups/Share): the coordinator
// forwards the request to the other leaders over the inter-broker listener (client id
// "broker-N-share-offsets", CLUSTER_ACTION), and a broker that is not the coordinator applies
// such a forward to the partitions it leads; anything else sent to it is NOT_COORDINATOR.
// Errors: group GROUP_AUTHORIZATION_FAILED, NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE,
// INVALID_GROUP_ID, GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP; topic TOPIC_AUTHORIZATION_FAILED,
// UNKNOWN_TOPIC_OR_PARTITION, UNKNOWN_SERVER_ERROR (a leader could not be asked).
// Differs from upstream: upstream deletes through the share coordinator (DeleteShareGroupState on
// __share_group_state); here each leader deletes its state file. The share group itself is kept
// in memory on the coordinator only, so after a coordinator restart a group with no member yet is
// GROUP_ID_NOT_FOUND even if leaders still hold its state.
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Broker.Security.Acl;

namespace Samsa.Kafka.Broker.Handlers;

public static class DeleteShareGroupOffsetsHandler
{
    public static async ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, DeleteShareGroupOffsetsRequest request)
    {
        var broker = context.Broker;
        var shares = broker.Shares;
        string groupId = request.GroupId;
        var response = new DeleteShareGroupOffsetsResponse();
        DeleteShareGroupOffsetsResponse Fail(ErrorCode code, string? message)
        {
            response.ErrorCode = (short)code;
            response.ErrorMessage = message;
            return response;
        }
        if (!Authz.Group(context, AclOperation.Delete, groupId)) return Fail(ErrorCode.GroupAuthorizationFailed, "Group authorization failed.");
        if (string.IsNullOrEmpty(groupId)) return Fail(ErrorCode.InvalidGroupId, "The group id can't be empty.");
        var status = shares.CoordinatorStatus(groupId);
        bool coordinator = status == ErrorCode.None;
        if (!coordinator && !AlterShareGroupOffsetsHandler.IsForwarded(context)) return Fail(status, null);
        if (coordinator)
        {
            if (ShareGroupHeartbeatHandler.IsOtherGroupType(broker, groupId))
                return Fail(ErrorCode.GroupIdNotFound, $"Group {groupId} is not a share group.");
            int members = shares.Coordinator.PrepareOffsetChange(groupId, create: false, []);
            if (members < 0) return Fail(ErrorCode.GroupIdNotFound, $"Group {groupId} not found.");
            if (members > 0) return Fail(ErrorCode.NonEmptyGroup, $"Group {groupId} has {members} member(s): stop them before deleting its offsets.");
        }
        var names = request.Topics.Select(t => t.TopicName).Distinct(StringComparer.Ordinal).ToList();
        var denied = Authz.DeniedTopics(context, AclOperation.Read, names.Select(n => (string?)n));
        var remote = new Dictionary<int, List<(string Topic, DeleteShareGroupOffsetsResponse.DeleteShareGroupOffsetsResponseTopic Entry)>>();
        bool forgot = false;
        foreach (var name in names)
        {
            var topic = broker.Replicas.GetTopic(name);
            var rt = new DeleteShareGroupOffsetsResponse.DeleteShareGroupOffsetsResponseTopic { TopicName = name, TopicId = topic?.Id ?? Guid.Empty };
            response.Responses.Add(rt);
            if (denied.Contains(name)) { rt.ErrorCode = (short)ErrorCode.TopicAuthorizationFailed; rt.ErrorMessage = "Topic authorization failed."; continue; }
            if (topic is null) { rt.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition; rt.ErrorMessage = $"Topic {name} does not exist."; continue; }
            for (int i = 0; i < topic.Partitions.Count; i++)
            {
                var partition = topic.Partitions[i];
                if (partition.IsLeader)
                {
                    // DeleteShareGroupState at the share coordinator.
                    var e = await shares.DeleteAsync(groupId, topic.Id, partition.Index, context.Cancellation);
                    if (e != ErrorCode.None) { rt.ErrorCode = (short)e; rt.ErrorMessage = $"The share coordinator answered {e}."; }
                    continue;
                }
                if (!coordinator) continue;   // a forward: the coordinator asks each leader itself
                int leader = partition.LeaderId ?? -1;
                if (!remote.TryGetValue(leader, out var list)) remote[leader] = list = [];
                if (!list.Any(x => x.Topic == name)) list.Add((name, rt));
            }
            if (coordinator)
            {
                var scope = Groups.GroupWriteScope.Begin();
                try { shares.Coordinator.ForgetTopic(groupId, name); }
                finally { scope.Dispose(); }
                forgot |= scope.Wrote;
            }
        }
        // The group's shorter topic list is replicated before the answer (upstream's
        // share-group-offsets-delete write; handleOperationException's codes).
        if (forgot && await GroupWriteReplication.AwaitPendingAsync(context, groupId) is var replicated && replicated != ErrorCode.None)
        {
            response.Responses.Clear();
            return Fail(replicated, null);
        }
        foreach (var (leader, list) in remote)
        {
            var forwarded = new DeleteShareGroupOffsetsRequest
            {
                GroupId = groupId,
                Topics = list.Select(x => new DeleteShareGroupOffsetsRequest.DeleteShareGroupOffsetsRequestTopic { TopicName = x.Topic }).ToList(),
            };
            try
            {
                var answer = await AlterShareGroupOffsetsHandler.SendToLeader<DeleteShareGroupOffsetsResponse>(broker, leader, forwarded, context.Cancellation);
                foreach (var (name, entry) in list)
                {
                    if (entry.ErrorCode != 0) continue;   // keep the first failure of the topic
                    if (answer.ErrorCode != 0) { entry.ErrorCode = answer.ErrorCode; entry.ErrorMessage = answer.ErrorMessage; continue; }
                    var t = answer.Responses.FirstOrDefault(x => x.TopicName == name);
                    if (t is null) { entry.ErrorCode = (short)ErrorCode.UnknownServerError; entry.ErrorMessage = "The leader did not answer for the topic."; continue; }
                    entry.ErrorCode = t.ErrorCode;
                    entry.ErrorMessage = t.ErrorMessage;
                }
            }
            catch (Exception e) when (AlterShareGroupOffsetsHandler.IsLeaderCallFailure(e))
            {
                foreach (var (_, entry) in list)
                {
                    if (entry.ErrorCode != 0) continue;
                    entry.ErrorCode = (short)ErrorCode.UnknownServerError;
                    entry.ErrorMessage = $"The leader could not be asked: {e.Message}";
                }
            }
        }
        return response;
    }
}
