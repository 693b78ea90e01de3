using Samsa.Kafka.Broker.Handlers;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Security.Acl;

/// <summary>
/// What handlers call, as upstream's AuthHelper: with no authorizer configured everything is
/// allowed; otherwise the broker's <see cref="AclAuthorizer"/> decides for the request's principal
/// and client address (<see cref="RequestContext.Session"/>).
/// </summary>
public static class Authz
{
    public const string ClusterName = ResourcePattern.ClusterName;
    private static readonly HashSet<string> NoneDenied = new(StringComparer.Ordinal);

    public static bool Allowed(RequestContext c, AclOperation op, ResourceType type, string name, bool logIfDenied = true) =>
        c.Broker.Authorizer?.Authorize(c.Session, (ApiKey)c.Header.RequestApiKey, op, type, name, logIfDenied) ?? true;

    public static bool Topic(RequestContext c, AclOperation op, string topic, bool logIfDenied = true) => Allowed(c, op, ResourceType.Topic, topic, logIfDenied);
    public static bool Group(RequestContext c, AclOperation op, string group, bool logIfDenied = true) => Allowed(c, op, ResourceType.Group, group, logIfDenied);
    public static bool TransactionalId(RequestContext c, AclOperation op, string id) => Allowed(c, op, ResourceType.TransactionalId, id);
    public static bool Cluster(RequestContext c, AclOperation op, bool logIfDenied = true) => Allowed(c, op, ResourceType.Cluster, ClusterName, logIfDenied);

    /// <summary>Upstream filterByAuthorized, inverted: the names (of <paramref name="names"/>) NOT allowed
    /// <paramref name="op"/>; an empty set, without asking, when no authorizer is configured.</summary>
    public static HashSet<string> Denied(RequestContext c, AclOperation op, ResourceType type, IEnumerable<string?> names, bool logIfDenied = true)
    {
        // No authorizer (the common case, on the Produce/Fetch hot path): one shared empty set,
        // which callers only read.
        if (c.Broker.Authorizer is null) return NoneDenied;
        var denied = new HashSet<string>(StringComparer.Ordinal);
        var checkedNames = new HashSet<string>(StringComparer.Ordinal);
        foreach (var n in names)
            if (n is not null && checkedNames.Add(n) && !Allowed(c, op, type, n, logIfDenied)) denied.Add(n);
        return denied;
    }

    public static HashSet<string> DeniedTopics(RequestContext c, AclOperation op, IEnumerable<string?> topics, bool logIfDenied = true) =>
        Denied(c, op, ResourceType.Topic, topics, logIfDenied);

    /// <summary>Upstream authorizeByResourceType (KIP-679).</summary>
    public static bool AnyOfType(RequestContext c, AclOperation op, ResourceType type) =>
        c.Broker.Authorizer?.AuthorizeByResourceType(c.Session, (ApiKey)c.Header.RequestApiKey, op, type) ?? true;

    /// <summary>Upstream AuthHelper.authorizedOperations: the bitfield of the resource type's
    /// operations the principal may perform (all of them without an authorizer).</summary>
    public static int Operations(RequestContext c, ResourceType type, string name) =>
        c.Broker.Authorizer?.AuthorizedOperations(c.Session, (ApiKey)c.Header.RequestApiKey, type, name) ?? AclAuthorizer.AllOperations(type);
}

/// <summary>Authorization of config resources (Describe/Alter/IncrementalAlterConfigs), as KafkaApis:
/// BROKER (4) and BROKER_LOGGER (8) on the cluster, TOPIC (2) on the topic.</summary>
public static class ConfigAuthz
{
    /// <summary>Null when allowed (or a type these APIs refuse anyway), else the error and upstream's message.</summary>
    public static (ErrorCode Code, string Message)? Check(RequestContext c, sbyte resourceType, string name, AclOperation op) => resourceType switch
    {
        2 when !Authz.Topic(c, op, name) => (ErrorCode.TopicAuthorizationFailed, "Topic authorization failed."),
        4 or 8 when !Authz.Cluster(c, op) => (ErrorCode.ClusterAuthorizationFailed, "Cluster authorization failed."),
        _ => null,
    };
}
