// ListGroups (key 16), versions 0-5.
//
// Behaviour (GroupCoordinator.handleListGroups): every group this broker coordinates, with its
// protocol type; v4+ (KIP-518) its state and an optional states filter (matched ignoring case);
// v5+ (KIP-848) its type — "classic", or "consumer" for KIP-848 consumer groups (protocol type
// "consumer", states Empty/Assigning/Reconciling/Stable), or "share" for KIP-932 share groups
// (Groups/Share; protocol type "share", states Empty/Stable) — and a types filter. COORDINATOR_LOAD_IN_PROGRESS
// while a partition of __consumer_offsets is still loading (with the groups loaded so far).
// Authorization (KafkaApis.handleListGroupsRequest): all groups with CLUSTER DESCRIBE, else those
// with GROUP DESCRIBE.
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class ListGroupsHandler
{
    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, ListGroupsRequest request)
    {
        short v = context.ApiVersion;
        var coordinator = context.Broker.Groups.Coordinator;
        var response = new ListGroupsResponse();
        // A broker that never created __consumer_offsets simply has no groups.
        if (!coordinator.IsActive) return ValueTask.FromResult<IKafkaMessage?>(response);
        var (error, groups) = coordinator.ListGroups(v >= 4 ? request.StatesFilter : null, v >= 5 ? request.TypesFilter : null);
        response.ErrorCode = (short)error;
        // Upstream: CLUSTER DESCRIBE lists every group, otherwise only those with GROUP DESCRIBE.
        bool all = Security.Acl.Authz.Cluster(context, Security.Acl.AclOperation.Describe, logIfDenied: false);
        foreach (var g in groups)
            if (all || Security.Acl.Authz.Group(context, Security.Acl.AclOperation.Describe, g.GroupId, logIfDenied: false))
                response.Groups.Add(new ListGroupsResponse.ListedGroup { GroupId = g.GroupId, ProtocolType = g.ProtocolType, GroupState = g.State, GroupType = g.Type });
        // Share groups (KIP-932): type "share", protocol type "share", the same filters and ACLs.
        var states = v >= 4 && request.StatesFilter is { Count: > 0 } sf ? sf : null;
        var types = v >= 5 && request.TypesFilter is { Count: > 0 } tf ? tf : null;
        if (types is null || types.Contains("share", StringComparer.OrdinalIgnoreCase))
            foreach (var (groupId, state) in context.Broker.Shares.ListShareGroups())
                if ((states is null || states.Contains(state, StringComparer.OrdinalIgnoreCase))
                    && (all || Security.Acl.Authz.Group(context, Security.Acl.AclOperation.Describe, groupId, logIfDenied: false)))
                    response.Groups.Add(new ListGroupsResponse.ListedGroup { GroupId = groupId, ProtocolType = "share", GroupState = state, GroupType = "share" });
        return ValueTask.FromResult<IKafkaMessage?>(response);
    }
}
