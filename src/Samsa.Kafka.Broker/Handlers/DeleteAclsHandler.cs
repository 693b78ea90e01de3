// DeleteAcls (key 31), versions 0-3.
//
// Behaviour (upstream AclApis.handleDeleteAcls + AclAuthorizer.deleteAcls): CLUSTER ALTER is
// required (every filter result CLUSTER_AUTHORIZATION_FAILED); without an authorizer every filter
// result is SECURITY_DISABLED. Each filter (matching as DescribeAcls) removes the bindings it
// matches from every resource pattern the broker knows, plus the exact pattern a filter names
// (so ACLs not yet propagated here are deleted too, as upstream's filterToResources); a binding
// matched by several filters is reported under the first. v0 filters with pattern type ANY mean
// LITERAL; other non-LITERAL filters at v0 and code 0 (UNKNOWN) fields close the connection.
using Samsa.Kafka.Broker.Security.Acl;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class DeleteAclsHandler
{
    public static async ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, DeleteAclsRequest request)
    {
        var filters = new List<AclBindingFilter>();
        foreach (var f in request.Filters)
        {
            sbyte patternType = f.PatternTypeFilter;
            if (context.ApiVersion == 0)
            {
                if (patternType == (sbyte)PatternType.Any) patternType = (sbyte)PatternType.Literal;
                else if (patternType != (sbyte)PatternType.Literal)
                    return AclRequests.Close(context, "Version 0 does not support pattern types other than LITERAL and ANY");
            }
            if (patternType == 0 || f.ResourceTypeFilter == 0 || f.Operation == 0 || f.PermissionType == 0)
                return AclRequests.Close(context, "Filters contain UNKNOWN elements");
            filters.Add(AclRequests.Filter(f.ResourceTypeFilter, f.ResourceNameFilter, patternType, f.PrincipalFilter, f.HostFilter, f.Operation, f.PermissionType));
        }
        DeleteAclsResponse All(ErrorCode code, string message) => new()
        {
            FilterResults = filters.Select(_ => new DeleteAclsResponse.DeleteAclsFilterResult { ErrorCode = (short)code, ErrorMessage = message }).ToList(),
        };
        if (!Authz.Cluster(context, AclOperation.Alter))
            return All(ErrorCode.ClusterAuthorizationFailed, $"Request {ApiKey.DeleteAcls} is not authorized.");
        var authorizer = context.Broker.Authorizer;
        if (authorizer is null) return All(ErrorCode.SecurityDisabled, "No Authorizer is configured.");
        var deleted = await authorizer.DeleteAsync(filters, context.Cancellation);
        var response = new DeleteAclsResponse();
        foreach (var list in deleted)
        {
            var fr = new DeleteAclsResponse.DeleteAclsFilterResult();
            foreach (var (b, error) in list)
            {
                // v0 cannot carry PREFIXED bindings; upstream would fail to build that response.
                if (context.ApiVersion == 0 && b.Pattern.PatternType != PatternType.Literal) continue;
                fr.MatchingAcls.Add(new DeleteAclsResponse.DeleteAclsMatchingAcl
                {
                    ErrorCode = (short)(error?.Item1 ?? ErrorCode.None),
                    ErrorMessage = error?.Item2,
                    ResourceType = (sbyte)b.Pattern.Type,
                    ResourceName = b.Pattern.Name,
                    PatternType = (sbyte)b.Pattern.PatternType,
                    Principal = b.Entry.Principal,
                    Host = b.Entry.Host,
                    Operation = (sbyte)b.Entry.Operation,
                    PermissionType = (sbyte)b.Entry.Permission,
                });
            }
            response.FilterResults.Add(fr);
        }
        return response;
    }
}
