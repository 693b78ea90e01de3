// DescribeClientQuotas (key 48), versions 0-1.
//
// Behaviour (ZkAdminManager.describeClientQuotas, ZooKeeper mode): the filter has at most one
// component per entity type ("user", "client-id", "ip"), each EXACT (match_type 0, a name),
// DEFAULT (1, the <default> entity) or SPECIFIED (2, any entity of that type — in ZooKeeper mode
// the default entity too). strict leaves out entities with a type the filter does not name. User
// and client-id entities (users/<u>, users/<u>/clients/<c>, clients/<c>) and ip entities are read
// from where they are stored (ZooKeeper, or the single broker's file) — not from the broker's
// cache, so a change made through any broker shows at once; only the quota keys of an entity are
// answered (not SCRAM credentials), entities without any are left out; names are desanitized and
// the default entity's name is null.
// Errors for the whole response, as upstream's: INVALID_REQUEST for a duplicate component type
// ("Duplicate user filter component entity type"), an empty type, or ip combined with user/client-id;
// UNSUPPORTED_VERSION "Custom entity type 'x' not supported"; UNKNOWN_SERVER_ERROR for an
// unknown match type.
using System.Globalization;
using Samsa.Kafka.Broker.Security.Quotas;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class DescribeClientQuotasHandler
{
    public const string User = "user", ClientId = "client-id", Ip = "ip";

    /// <summary>A filter component: Exact (Name set, or null for the default) or Specified (any).</summary>
    private sealed record Component(bool Specified, string? Name);

    private sealed class FilterException(ErrorCode code, string message) : Exception(message)
    {
        public ErrorCode Code { get; } = code;
    }

    public static async ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, DescribeClientQuotasRequest request)
    {
        var store = context.Broker.Quotas.Store;
        // Upstream KafkaApis.handleDescribeClientQuotasRequest: DESCRIBE_CONFIGS on the cluster.
        if (!Security.Acl.Authz.Cluster(context, Security.Acl.AclOperation.DescribeConfigs))
            return new DescribeClientQuotasResponse { ErrorCode = (short)ErrorCode.ClusterAuthorizationFailed, ErrorMessage = "Cluster authorization failed.", Entries = null };
        try
        {
            Component? user = null, client = null, ip = null;
            foreach (var c in request.Components)
            {
                var component = c.MatchType switch
                {
                    0 => new Component(false, c.Match ?? throw new FilterException(ErrorCode.UnknownServerError, "Match of an EXACT component is null")),
                    1 => new Component(false, null),
                    2 => new Component(true, null),
                    _ => throw new FilterException(ErrorCode.UnknownServerError, $"Unexpected match type: {c.MatchType}"),
                };
                switch (c.EntityType)
                {
                    case User: if (user is not null) throw Invalid("Duplicate user filter component entity type"); user = component; break;
                    case ClientId: if (client is not null) throw Invalid("Duplicate client filter component entity type"); client = component; break;
                    case Ip: if (ip is not null) throw Invalid("Duplicate ip filter component entity type"); ip = component; break;
                    case "": throw Invalid("Unexpected empty filter component entity type");
                    default: throw new FilterException(ErrorCode.UnsupportedVersion, $"Custom entity type '{c.EntityType}' not supported");
                }
            }
            if ((user is not null || client is not null) && ip is not null)
                throw Invalid("Invalid entity filter component combination, IP filter component should not be used with user or clientId filter component.");

            var entries = new List<DescribeClientQuotasResponse.EntryData>();
            if (store is not null && ip is null)
            {
                var all = await store.ReadAllAsync("users");
                foreach (var (k, v) in await store.ReadAllAsync("clients")) all[k] = v;
                foreach (var (path, config) in all.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                {
                    var parts = path.Split('/');
                    // The entity's parts: absent (None), or present with a name (null = default).
                    (bool Has, string? Name) u = (false, null), c = (false, null);
                    if (parts[0] == "users" && parts.Length == 2) u = (true, Desanitize(parts[1]));
                    else if (parts[0] == "users" && parts.Length == 4 && parts[2] == "clients") { u = (true, Desanitize(parts[1])); c = (true, Desanitize(parts[3])); }
                    else if (parts[0] == "clients" && parts.Length == 2) c = (true, Desanitize(parts[1]));
                    else continue;
                    if (!Matches(user, u, request.Strict) || !Matches(client, c, request.Strict)) continue;
                    var values = QuotaValues(config, "users");
                    if (values.Count == 0) continue;
                    var entity = new List<DescribeClientQuotasResponse.EntityData>();
                    if (u.Has) entity.Add(new() { EntityType = User, EntityName = u.Name });
                    if (c.Has) entity.Add(new() { EntityType = ClientId, EntityName = c.Name });
                    entries.Add(new() { Entity = entity, Values = values });
                }
            }
            if (store is not null && user is null && client is null)
            {
                // Upstream handleDescribeIpQuotas: one ip (exact or default), every ip (SPECIFIED, or
                // no ip component in a non-strict filter), else none.
                Dictionary<string, Dictionary<string, string>> ips;
                if (ip is { Specified: false }) ips = new() { ["ips/" + (ip.Name is null ? ClientQuotaManager.Default : QuotaSanitizer.Sanitize(ip.Name))] = await store.ReadAsync("ips/" + (ip.Name is null ? ClientQuotaManager.Default : QuotaSanitizer.Sanitize(ip.Name))) };
                else if (ip is { Specified: true } || !request.Strict) ips = await store.ReadAllAsync("ips");
                else ips = [];
                foreach (var (path, config) in ips.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                {
                    var values = QuotaValues(config, "ips");
                    if (values.Count == 0) continue;
                    entries.Add(new() { Entity = [new() { EntityType = Ip, EntityName = Desanitize(path["ips/".Length..]) }], Values = values });
                }
            }
            return new DescribeClientQuotasResponse { Entries = entries };
        }
        catch (FilterException e)
        {
            return new DescribeClientQuotasResponse { ErrorCode = (short)e.Code, ErrorMessage = e.Message, Entries = null };
        }
    }

    private static FilterException Invalid(string message) => new(ErrorCode.InvalidRequest, message);

    private static string? Desanitize(string name) => name == ClientQuotaManager.Default ? null : QuotaSanitizer.Desanitize(name);

    // Upstream matches(): an EXACT/DEFAULT component wants that name, SPECIFIED any present part;
    // a type the filter does not name is allowed only when absent or the filter is not strict.
    private static bool Matches(Component? component, (bool Has, string? Name) part, bool strict) => component switch
    {
        null => !part.Has || !strict,
        { Specified: true } => part.Has,
        _ => part.Has && part.Name == component.Name,
    };

    private static List<DescribeClientQuotasResponse.ValueData> QuotaValues(Dictionary<string, string> config, string entityType)
    {
        var values = new List<DescribeClientQuotasResponse.ValueData>();
        foreach (var (k, v) in config.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            if (QuotaManagers.IsQuotaKey(entityType, k) && double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double d))
                values.Add(new() { Key = k, Value = d });
        return values;
    }
}
