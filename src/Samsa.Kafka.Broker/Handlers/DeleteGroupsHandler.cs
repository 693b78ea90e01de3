// DeleteGroups (key 42), versions 0-2.
//
// Behaviour (GroupCoordinator.handleDeleteGroups): a group without members is deleted with its
// offsets (tombstones in __consumer_offsets); NON_EMPTY_GROUP while it has members;
// GROUP_ID_NOT_FOUND when unknown.
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
        var results = context.Broker.Groups.Coordinator.DeleteGroups(ids.Where(id => !denied.Contains(id) && !shares.Contains(id)).ToList());
        // ... after their state at the share coordinator (DeleteShareGroupState), as upstream.
        foreach (var id in shares) results[id] = await context.Broker.Shares.DeleteGroupAsync(id, context.Cancellation);
        foreach (var id in denied) results[id] = ErrorCode.GroupAuthorizationFailed;
        var response = new DeleteGroupsResponse();
        foreach (var id in ids)
            response.Results.Add(new DeleteGroupsResponse.DeletableGroupResult { GroupId = id, ErrorCode = (short)results[id] });
        return response;
    }
}
