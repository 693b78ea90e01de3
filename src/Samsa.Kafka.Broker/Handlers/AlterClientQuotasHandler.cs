// AlterClientQuotas (key 49), versions 0-1.
//
// Behaviour (ZkAdminManager.alterClientQuotas, ZooKeeper mode): each entry names an entity — user,
// client-id, user + client-id, or ip; a null name is the <default> entity — and changes quota keys
// (remove, or set a value). Per entity, as upstream: INVALID_REQUEST "Invalid empty client quota
// entity", "Unhandled client quota entity type: x", "Empty user not supported", "Invalid quota
// entity combination, IP entity should not be used with user/client ID entity.", "x is not a valid
// IP or resolvable host.", "Invalid configuration key k" (a key the entity type does not have), and
// "Configuration producer_byte_rate must be a LONG value" (a fraction for an integer key);
// connection_creation_rate below 0 is INVALID_CONFIG (upstream's ConfigDef validation, skipped
// with validate_only). The entity's stored config is read, its quota keys changed and everything
// else written back (SCRAM credentials share /config/users/<user>): in ZooKeeper mode the znode
// (/config/users/<u>[/clients/<c>], /config/clients/<c>, /config/ips/<ip>, names sanitized)
// then a /config/changes notification every broker applies; on a single broker the quota file in
// the first log dir. validate_only checks without writing.
// Differs from upstream: the answering broker also applies the change at once, without waiting
// for its own notification (the others apply it when they see the notification, as upstream).
using System.Net;
using Samsa.Kafka.Broker.Security.Quotas;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class AlterClientQuotasHandler
{
    private sealed class EntityException(ErrorCode code, string message) : Exception(message)
    {
        public ErrorCode Code { get; } = code;
    }

    public static async ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, AlterClientQuotasRequest request)
    {
        var quotas = context.Broker.Quotas;
        var response = new AlterClientQuotasResponse();
        // Upstream KafkaApis.handleAlterClientQuotasRequest: ALTER_CONFIGS on the cluster, else every
        // entry answers CLUSTER_AUTHORIZATION_FAILED.
        bool allowed = Security.Acl.Authz.Cluster(context, Security.Acl.AclOperation.AlterConfigs);
        foreach (var entry in request.Entries)
        {
            var result = new AlterClientQuotasResponse.EntryData();
            // Upstream keeps the entity as a map: a repeated type keeps its last name.
            var entity = new Dictionary<string, string?>(StringComparer.Ordinal);
            foreach (var e in entry.Entity) entity[e.EntityType] = e.EntityName;
            foreach (var (t, n) in entity) result.Entity.Add(new() { EntityType = t, EntityName = n });
            try
            {
                if (!allowed) throw new EntityException(ErrorCode.ClusterAuthorizationFailed, "Cluster authorization failed.");
                await AlterAsync(quotas, entity, entry.Ops, request.ValidateOnly);
            }
            catch (EntityException e)
            {
                result.ErrorCode = (short)e.Code;
                result.ErrorMessage = e.Message;
            }
            catch (Samsa.Keeper.Client.KeeperException e)
            {
                result.ErrorCode = (short)ErrorCode.UnknownServerError;
                result.ErrorMessage = e.Message;
            }
            response.Entries.Add(result);
        }
        return response;
    }

    private static EntityException Invalid(string message) => new(ErrorCode.InvalidRequest, message);

    private static async Task AlterAsync(QuotaManagers quotas, Dictionary<string, string?> entity, List<AlterClientQuotasRequest.OpData> ops, bool validateOnly)
    {
        if (entity.Count == 0) throw Invalid("Invalid empty client quota entity");
        string? user = null, client = null, ip = null;
        foreach (var (type, name) in entity)
        {
            string sanitized = name is null ? ClientQuotaManager.Default : QuotaSanitizer.Sanitize(name);
            switch (type)
            {
                case DescribeClientQuotasHandler.User: user = sanitized; break;
                case DescribeClientQuotasHandler.ClientId: client = sanitized; break;
                case DescribeClientQuotasHandler.Ip: ip = sanitized; break;
                default: throw Invalid($"Unhandled client quota entity type: {type}");
            }
            if (name is { Length: 0 }) throw Invalid($"Empty {type} not supported");
        }
        string path, entityType;
        if (ip is not null)
        {
            if (user is not null || client is not null)
                throw Invalid("Invalid quota entity combination, IP entity should not be used with user/client ID entity.");
            if (ip != ClientQuotaManager.Default && !IsValidIp(QuotaSanitizer.Desanitize(ip)))
                throw Invalid($"{ip} is not a valid IP or resolvable host.");
            (path, entityType) = ("ips/" + ip, "ips");
        }
        else if (user is not null) (path, entityType) = (client is null ? "users/" + user : $"users/{user}/clients/{client}", "users");
        else (path, entityType) = ("clients/" + client, "clients");

        var store = quotas.Store ?? throw new EntityException(ErrorCode.UnknownServerError, "no quota store");
        var props = await store.ReadAsync(path);
        foreach (var op in ops)
        {
            if (op.Remove) { props.Remove(op.Key); continue; }
            bool integer;
            if (entityType == "ips")
            {
                if (op.Key != QuotaManagers.ConnectionCreationRate) throw Invalid($"Invalid configuration key {op.Key}");
                integer = true;
            }
            else if (QuotaManagers.ClientKeysIsInteger.TryGetValue(op.Key, out integer)) { }
            else if (entityType == "users" && client is null && op.Key is "SCRAM-SHA-256" or "SCRAM-SHA-512")
                throw new EntityException(ErrorCode.UnknownServerError, "Unexpected config type STRING");   // as upstream
            else throw Invalid($"Invalid configuration key {op.Key}");
            if (integer)
            {
                // Upstream: a value within 1e-6 of an integer is that integer, else refused.
                const double epsilon = 1e-6;
                string typeName = entityType == "ips" ? "INT" : "LONG";
                double truncated = entityType == "ips" ? (double)(int)Math.Clamp(op.Value + epsilon, int.MinValue, int.MaxValue) : (double)(long)Math.Clamp(op.Value + epsilon, long.MinValue, long.MaxValue);
                if (double.IsNaN(op.Value) || Math.Abs(truncated - op.Value) > epsilon)
                    throw Invalid($"Configuration {op.Key} must be a {typeName} value");
                props[op.Key] = ((long)truncated).ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
            else props[op.Key] = JavaDouble(op.Value);
        }
        if (validateOnly) return;
        if (entityType == "ips" && props.TryGetValue(QuotaManagers.ConnectionCreationRate, out var rate) && rate.StartsWith('-'))
            throw new EntityException(ErrorCode.InvalidConfig, $"Invalid value {rate} for configuration {QuotaManagers.ConnectionCreationRate}: Value must be at least 0");
        await store.WriteAsync(path, props);
        quotas.Apply(path, props);
    }

    private static bool IsValidIp(string ip)
    {
        if (IPAddress.TryParse(ip, out _)) return true;
        try { return Dns.GetHostAddresses(ip).Length > 0; }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or ArgumentException) { return false; }
    }

    /// <summary>Java's Double.toString for the values a quota takes ("1024.0", "12.5", "1.0E10").</summary>
    internal static string JavaDouble(double d)
    {
        if (double.IsNaN(d)) return "NaN";
        if (double.IsInfinity(d)) return d > 0 ? "Infinity" : "-Infinity";
        double abs = Math.Abs(d);
        if (abs == 0 || (abs >= 1e-3 && abs < 1e7))
        {
            string s = d.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
            return s.Contains('.') || s.Contains('E') ? s : s + ".0";
        }
        // Shortest round-trip mantissa, Java style: 1.0E10.
        int exp = (int)Math.Floor(Math.Log10(abs));
        double mant = d / Math.Pow(10, exp);
        string m = mant.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        if (!m.Contains('.')) m += ".0";
        return $"{m}E{exp}";
    }
}
