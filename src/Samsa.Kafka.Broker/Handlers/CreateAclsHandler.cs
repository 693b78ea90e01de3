// CreateAcls (key 30), versions 0-3.
//
// Behaviour (upstream AclApis.handleCreateAcls + AclAuthorizer.createAcls): CLUSTER ALTER is
// required (else every result is CLUSTER_AUTHORIZATION_FAILED); without an authorizer every result
// is SECURITY_DISABLED "No Authorizer is configured.". Per creation: a CLUSTER pattern not named
// "kafka-cluster" or an empty name is INVALID_REQUEST; unknown codes (UNKNOWN or values the enum
// lacks) or a name containing '/' is INVALID_REQUEST "Failed to create ACL"; a principal without
// "Type:" fails that resource's creations (upstream: an unknown server error). Bindings of one
// resource pattern are written in one conditional update (Security/Acl/ZkAclStore).
// As upstream's request parsing: a code 0 (UNKNOWN) field, or a non-LITERAL pattern at v0, closes
// the connection; an ANY/MATCH pattern type, ANY resource type, operation or permission (which
// upstream's AclBinding constructors refuse inside the handler) answers UNKNOWN_SERVER_ERROR for
// every creation, as upstream's generic error path does.
using Samsa.Kafka.Broker.Security.Acl;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class CreateAclsHandler
{
    public static async ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, CreateAclsRequest request)
    {
        foreach (var c in request.Creations)
        {
            if (context.ApiVersion == 0 && c.ResourcePatternType != (sbyte)PatternType.Literal)
                return AclRequests.Close(context, "Version 0 only supports literal resource pattern types");
            if (c.ResourcePatternType == 0 || c.ResourceType == 0 || c.PermissionType == 0 || c.Operation == 0)
                return AclRequests.Close(context, "CreatableAcls contain unknown elements");
        }
        CreateAclsResponse All(ErrorCode code, string? message) => new()
        {
            Results = request.Creations.Select(_ => new CreateAclsResponse.AclCreationResult { ErrorCode = (short)code, ErrorMessage = message }).ToList(),
        };
        if (!Authz.Cluster(context, AclOperation.Alter))
            return All(ErrorCode.ClusterAuthorizationFailed, $"Request {ApiKey.CreateAcls} is not authorized.");
        var authorizer = context.Broker.Authorizer;
        if (authorizer is null) return All(ErrorCode.SecurityDisabled, "No Authorizer is configured.");
        if (request.Creations.Any(c => c.ResourcePatternType is (sbyte)PatternType.Any or (sbyte)PatternType.Match
                || c.ResourceType == (sbyte)ResourceType.Any || c.Operation == (sbyte)AclOperation.Any || c.PermissionType == (sbyte)AclPermissionType.Any))
            return All(ErrorCode.UnknownServerError, "ACL bindings must not contain ANY or MATCH");

        var results = new (ErrorCode Code, string? Message)?[request.Creations.Count];
        var valid = new List<(AclBinding Binding, int Index)>();
        for (int i = 0; i < request.Creations.Count; i++)
        {
            var c = request.Creations[i];
            var binding = new AclBinding(
                new ResourcePattern(AclRequests.Code<ResourceType>(c.ResourceType), c.ResourceName, AclRequests.Code<PatternType>(c.ResourcePatternType)),
                new AclEntry(c.Principal, c.Host, AclRequests.Code<AclOperation>(c.Operation), AclRequests.Code<AclPermissionType>(c.PermissionType)));
            var p = binding.Pattern;
            if (p.Type == ResourceType.Cluster && p.Name != ResourcePattern.ClusterName)
                results[i] = (ErrorCode.InvalidRequest, $"The only valid name for the CLUSTER resource is {ResourcePattern.ClusterName}");
            else if (p.Name.Length == 0)
                results[i] = (ErrorCode.InvalidRequest, "Invalid empty resource name");
            else if (p.Type == ResourceType.Unknown || p.PatternType == PatternType.Unknown
                     || binding.Entry.Operation == AclOperation.Unknown || binding.Entry.Permission == AclPermissionType.Unknown)
                results[i] = (ErrorCode.InvalidRequest, "Failed to create ACL: ACL binding contains unknown elements");
            else if (p.Name.Contains('/'))
                results[i] = (ErrorCode.InvalidRequest, $"Failed to create ACL: ACL binding contains invalid resource name: {p.Name}");
            else valid.Add((binding, i));
        }
        // A principal that does not parse fails its whole resource's update, as upstream's
        // AclEntry constructor does inside updateResourceAcls.
        var badPatterns = valid.Where(v => Security.KafkaPrincipal.TryParse(v.Binding.Entry.Principal) is null).Select(v => v.Binding.Pattern).ToHashSet();
        foreach (var (b, i) in valid.Where(v => badPatterns.Contains(v.Binding.Pattern)))
            results[i] = (ErrorCode.UnknownServerError, $"expected a string in format principalType:principalName but got {b.Entry.Principal}");
        valid.RemoveAll(v => badPatterns.Contains(v.Binding.Pattern));
        var created = await authorizer.CreateAsync(valid.Select(v => v.Binding).ToList(), context.Cancellation);
        for (int k = 0; k < valid.Count; k++) results[valid[k].Index] = created[k];
        return new CreateAclsResponse
        {
            Results = results.Select(r => new CreateAclsResponse.AclCreationResult
            {
                ErrorCode = (short)(r?.Code ?? ErrorCode.None),
                ErrorMessage = r?.Message,
            }).ToList(),
        };
    }
}

/// <summary>Shared by the three ACL handlers.</summary>
internal static class AclRequests
{
    /// <summary>A wire code as the enum, UNKNOWN when the enum has no such value (upstream fromCode).</summary>
    public static T Code<T>(sbyte code) where T : struct, Enum =>
        Enum.IsDefined(typeof(T), (byte)code) ? (T)Enum.ToObject(typeof(T), (byte)code) : default;

    /// <summary>A request upstream refuses while parsing: the connection is closed, with one log line.</summary>
    public static IKafkaMessage? Close(RequestContext context, string why)
    {
        context.Broker.Log($"closing connection {context.Connection?.RemoteEndPoint}: invalid {(ApiKey)context.Header.RequestApiKey} request: {why}");
        context.Connection?.Close();
        return null;
    }

    public static AclBindingFilter Filter(sbyte resourceType, string? name, sbyte patternType, string? principal, string? host, sbyte operation, sbyte permission) =>
        new(Code<ResourceType>(resourceType), name, Code<PatternType>(patternType), principal, host, Code<AclOperation>(operation), Code<AclPermissionType>(permission));
}
