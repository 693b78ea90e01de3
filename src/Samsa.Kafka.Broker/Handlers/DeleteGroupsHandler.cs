// DeleteGroups (key 42), versions 0-2.
//
// Behaviour (GroupCoordinator.handleDeleteGroups): a group without members is deleted with its
// offsets (tombstones in __consumer_offsets); NON_EMPTY_GROUP while it has members;
// GROUP_ID_NOT_FOUND when unknown. Answered once the tombstones are replicated; a group whose
// tombstones are not gets COORDINATOR_NOT_AVAILABLE / NOT_COORDINATOR (upstream's
// handleOperationException for the partition's delete-groups write; GroupWriteReplication.cs).
// Authorization (KafkaApis.handleDeleteGroupsRequest): GROUP DELETE per group (GROUP_AUTHORIZATION_FAILED).
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class DeleteGroupsHandler
{
    public static async ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, DeleteGroupsRequest request)
    {
        var ids = request.GroupsNames.Distinct(StringComparer.Ordinal).ToList();
        var denied = Security.Acl.Authz.Denied(context, Security.Acl.AclOperation.Delete, Security.Acl.ResourceType.Group, ids);
        // Share groups are deleted by the share coordinator (with their share-partition state).
        var shares = ids.Where(id => !denied.Contains(id) && context.Broker.Shares.IsShareGroup(id)).ToHashSet(StringComparer.Ordinal);
        var coordinator = context.Broker.Groups.Coordinator;
        var own = ids.Where(id => !denied.Contains(id) && !shares.Contains(id)).ToList();
        var results = GroupWriteReplication.Run(() => coordinator.DeleteGroups(own), out var writes);
        foreach (var (partition, end) in writes.Written)
        {
            var replicated = await context.Broker.AwaitInternalWriteAsync(Cluster.TopicName.GroupMetadataTopic, partition, end, context.Cancellation);
            if (replicated == ErrorCode.None) continue;
            foreach (var id in own)
                if (results[id] == ErrorCode.None && coordinator.PartitionFor(id) == partition) results[id] = replicated;
        }
        // ... after their state at the share coordinator (DeleteShareGroupState), as upstream.
        foreach (var id in shares)
        {
            results[id] = await context.Broker.Shares.DeleteGroupAsync(id, context.Cancellation);
            // The group's tombstones were appended after an await (no write scope): wait for what the
            // partition holds now.
            if (results[id] == ErrorCode.None) results[id] = await GroupWriteReplication.AwaitPendingAsync(context, id);
        }
        foreach (var id in denied) results[id] = ErrorCode.GroupAuthorizationFailed;
        var response = new DeleteGroupsResponse();
        foreach (var id in ids)
            response.Results.Add(new DeleteGroupsResponse.DeletableGroupResult { GroupId = id, ErrorCode = (short)results[id] });
        return response;
    }
}
