// DescribeAcls (key 29), versions 0-3.
//
// Behaviour (upstream AclApis.handleDescribeAcls + AclAuthorizer.acls): CLUSTER DESCRIBE is
// required (CLUSTER_AUTHORIZATION_FAILED); without an authorizer SECURITY_DISABLED "No Authorizer
// is configured on the broker". The filter matches as upstream's AclBindingFilter: ANY resource
// type / pattern type / operation / permission and null name / principal / host match everything;
// pattern type MATCH with a name returns every pattern that applies to that name (the literal name,
// the literal "*", and PREFIXED patterns the name starts with). The bindings come grouped by
// resource pattern. v0 filters with pattern type ANY mean LITERAL; any other non-LITERAL filter at
// v0, or a field with code 0 (UNKNOWN), closes the connection as upstream's request parsing does.
using Samsa.Kafka.Broker.Security.Acl;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class DescribeAclsHandler
{
    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, DescribeAclsRequest request)
    {
        sbyte patternType = request.PatternTypeFilter;
        if (context.ApiVersion == 0)
        {
            if (patternType == (sbyte)PatternType.Any) patternType = (sbyte)PatternType.Literal;
            else if (patternType != (sbyte)PatternType.Literal)
                return ValueTask.FromResult(AclRequests.Close(context, "Version 0 only supports literal resource pattern types"));
        }
        if (patternType == 0 || request.ResourceTypeFilter == 0 || request.PermissionType == 0 || request.Operation == 0)
            return ValueTask.FromResult(AclRequests.Close(context, "DescribeAclsRequest contains UNKNOWN elements"));
        if (!Authz.Cluster(context, AclOperation.Describe))
            return Done(new DescribeAclsResponse { ErrorCode = (short)ErrorCode.ClusterAuthorizationFailed, ErrorMessage = $"Request {ApiKey.DescribeAcls} is not authorized." });
        var authorizer = context.Broker.Authorizer;
        if (authorizer is null)
            return Done(new DescribeAclsResponse { ErrorCode = (short)ErrorCode.SecurityDisabled, ErrorMessage = "No Authorizer is configured on the broker" });
        var filter = AclRequests.Filter(request.ResourceTypeFilter, request.ResourceNameFilter, patternType,
            request.PrincipalFilter, request.HostFilter, request.Operation, request.PermissionType);
        var response = new DescribeAclsResponse();
        foreach (var g in authorizer.Acls(filter).GroupBy(b => b.Pattern))
        {
            // v0 can only carry LITERAL patterns (upstream DescribeAclsResponse.validate).
            if (context.ApiVersion == 0 && g.Key.PatternType != PatternType.Literal) continue;
            response.Resources.Add(new DescribeAclsResponse.DescribeAclsResource
            {
                ResourceType = (sbyte)g.Key.Type,
                ResourceName = g.Key.Name,
                PatternType = (sbyte)g.Key.PatternType,
                Acls = g.Select(b => new DescribeAclsResponse.AclDescription
                {
                    Principal = b.Entry.Principal,
                    Host = b.Entry.Host,
                    Operation = (sbyte)b.Entry.Operation,
                    PermissionType = (sbyte)b.Entry.Permission,
                }).ToList(),
            });
        }
        return Done(response);
    }

    private static ValueTask<IKafkaMessage?> Done(IKafkaMessage m) => ValueTask.FromResult<IKafkaMessage?>(m);
}
