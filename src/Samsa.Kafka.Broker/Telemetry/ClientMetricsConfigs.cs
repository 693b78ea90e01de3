using System.Globalization;
using System.Text.RegularExpressions;
using Samsa.Kafka.Broker.Handlers;
using Samsa.Kafka.Broker.Security.Acl;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Keeper.Client;

namespace Samsa.Kafka.Broker.Telemetry;

/// <summary>
/// KIP-714 client metrics subscriptions: config resources of type CLIENT_METRICS (16), named by
/// the user, with three keys (upstream ClientMetricsConfigs): <c>metrics</c> (list of metric-name
/// prefixes, <c>*</c> for all; default none), <c>interval.ms</c> (push interval, 100..3600000,
/// default 300000) and <c>match</c> (list of <c>selector=regex</c>, selectors client_instance_id,
/// client_id, client_software_name, client_software_version, client_source_address,
/// client_source_port; all must match, none = every client).
///
/// Stored as the other dynamic config entities are: in ZooKeeper mode the znode
/// <c>/config/client-metrics/&lt;name&gt;</c> (<c>{"version":1,"config":{...}}</c>) followed by a
/// <c>/config/changes</c> notification naming <c>client-metrics/&lt;name&gt;</c>, which every broker's
/// config change listener hands to <see cref="EntityHandler"/>; on a single broker without
/// ZooKeeper, the quota file store of the first log directory (entity path
/// <c>client-metrics/&lt;name&gt;</c>). Upstream keeps them in the KRaft metadata log only (a
/// ZooKeeper-mode broker refused KIP-714); the layout here follows how upstream's ZooKeeper mode
/// stored every other entity type.
///
/// Authorization (KafkaApis): ALTER_CONFIGS / DESCRIBE_CONFIGS on the CLUSTER resource, else
/// CLUSTER_AUTHORIZATION_FAILED.
/// </summary>
public static class ClientMetricsConfigs
{
    public const sbyte ResourceType = 16;
    public const string EntityType = "client-metrics";
    public const string Metrics = "metrics", IntervalMs = "interval.ms", Match = "match";
    public const int DefaultIntervalMs = 300_000, MinIntervalMs = 100, MaxIntervalMs = 3_600_000;
    /// <summary>In <c>metrics</c>: every metric.</summary>
    public const string AllMetrics = "*";
    /// <summary>DescribeConfigs source of a client-metrics key (upstream ConfigSource.CLIENT_METRICS_CONFIG).</summary>
    public const sbyte ClientMetricsConfigSource = 7;

    public static readonly string[] MatchSelectors =
    [
        "client_instance_id", "client_id", "client_software_name", "client_software_version",
        "client_source_address", "client_source_port",
    ];

    private static readonly string[] Keys = [Metrics, IntervalMs, Match];

    /// <summary>One parsed subscription.</summary>
    public sealed record Subscription(string Name, IReadOnlyList<string> Metrics, int IntervalMs, IReadOnlyDictionary<string, Regex> Match);

    /// <summary>Upstream's comma list: items trimmed, empty text = empty list.</summary>
    public static List<string> ParseList(string? value) =>
        string.IsNullOrWhiteSpace(value) ? [] : value.Split(',').Select(s => s.Trim()).Where(s => s.Length > 0).ToList();

    /// <summary>Checks a whole resulting config set (upstream ClientMetricsConfigs.validate):
    /// INVALID_REQUEST for an empty name, an unknown key or an interval out of range,
    /// INVALID_CONFIG for a match entry that is not <c>selector=regex</c> with a known selector.</summary>
    public static (ErrorCode Error, string? Message) Validate(string? name, IReadOnlyDictionary<string, string> config)
    {
        if (string.IsNullOrEmpty(name)) return (ErrorCode.InvalidRequest, "Subscription name can't be empty");
        foreach (var key in config.Keys)
            if (Array.IndexOf(Keys, key) < 0) return (ErrorCode.InvalidRequest, $"Unknown client metrics configuration: {key}");
        if (config.TryGetValue(IntervalMs, out var text))
        {
            if (!int.TryParse(text.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int interval))
                return (ErrorCode.InvalidConfig, $"Invalid value {text} for configuration {IntervalMs}: Not a number of type INT");
            if (interval is < MinIntervalMs or > MaxIntervalMs)
                return (ErrorCode.InvalidRequest, $"Invalid value {interval} for {IntervalMs}, interval must be between 100 and 3600000 (1 hour)");
        }
        if (config.TryGetValue(Match, out var match) && ParseMatch(ParseList(match)) is { Error: { } bad })
            return (ErrorCode.InvalidConfig, bad);
        return (ErrorCode.None, null);
    }

    private static (Dictionary<string, Regex> Patterns, string? Error) ParseMatch(List<string> entries)
    {
        var patterns = new Dictionary<string, Regex>(StringComparer.Ordinal);
        foreach (var entry in entries)
        {
            var parts = entry.Split('=');
            if (parts.Length != 2 || Array.IndexOf(MatchSelectors, parts[0].Trim()) < 0)
                return (patterns, $"Illegal client matching pattern: {entry}");
            try
            {
                // Java's Matcher.matches(): the whole attribute must match.
                patterns[parts[0].Trim()] = new Regex($"^(?:{parts[1].Trim()})$", RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(100));
            }
            catch (ArgumentException)
            {
                return (patterns, $"Illegal client matching pattern: {entry}");
            }
        }
        return (patterns, null);
    }

    /// <summary>The subscription a stored (already validated) config set describes; bad stored
    /// values fall back to the defaults.</summary>
    public static Subscription Parse(string name, IReadOnlyDictionary<string, string> config)
    {
        int interval = config.TryGetValue(IntervalMs, out var t)
            && int.TryParse(t.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int i)
            && i is >= MinIntervalMs and <= MaxIntervalMs ? i : DefaultIntervalMs;
        var (match, _) = ParseMatch(ParseList(config.GetValueOrDefault(Match)));
        return new Subscription(name, ParseList(config.GetValueOrDefault(Metrics)), interval, match);
    }

    // ---- The config APIs' CLIENT_METRICS branch ----

    /// <summary>DescribeConfigs of one CLIENT_METRICS resource (upstream ConfigHelper): the stored
    /// keys only, each with source CLIENT_METRICS_CONFIG, not sensitive, not read-only, no
    /// synonyms; an unknown name is an empty list; an empty name INVALID_REQUEST.</summary>
    public static void Describe(RequestContext context, DescribeConfigsRequest.DescribeConfigsResource resource, DescribeConfigsResponse.DescribeConfigsResult result)
    {
        if (!Authz.Cluster(context, AclOperation.DescribeConfigs))
        {
            result.ErrorCode = (short)ErrorCode.ClusterAuthorizationFailed;
            result.ErrorMessage = "Cluster authorization failed.";
            return;
        }
        if (string.IsNullOrEmpty(resource.ResourceName))
        {
            result.ErrorCode = (short)ErrorCode.InvalidRequest;
            result.ErrorMessage = "Client metrics subscription name must not be empty";
            return;
        }
        var stored = context.Broker.ClientTelemetry.StoredConfig(resource.ResourceName);
        foreach (var (key, value) in stored.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            if (resource.ConfigurationKeys is { } wanted && !wanted.Contains(key)) continue;
            result.Configs.Add(new DescribeConfigsResponse.DescribeConfigsResourceResult
            {
                Name = key,
                Value = value,
                ReadOnly = false,
                IsDefault = false,
                ConfigSource = ClientMetricsConfigSource,
                IsSensitive = false,
                Synonyms = [],
                Documentation = null,
            });
        }
    }

    /// <summary>IncrementalAlterConfigs of one CLIENT_METRICS resource: SET, DELETE, APPEND and
    /// SUBTRACT (the last two on the list keys metrics and match) against the stored set, the
    /// result validated as a whole and stored (removing every key removes the subscription).</summary>
    public static (ErrorCode Error, string? Message) IncrementalAlter(RequestContext context, IncrementalAlterConfigsRequest.AlterConfigsResource resource, bool validateOnly)
    {
        if (!Authz.Cluster(context, AclOperation.AlterConfigs)) return (ErrorCode.ClusterAuthorizationFailed, "Cluster authorization failed.");
        // As ConfigAdminManager.preprocess for every resource type.
        if (resource.Configs.GroupBy(c => c.Name).Any(g => g.Count() > 1)) return (ErrorCode.InvalidRequest, "Error due to duplicate config keys");
        var nulls = resource.Configs.Where(c => c.ConfigOperation != 1 && c.Value is null).Select(c => c.Name).ToList();
        if (nulls.Count > 0) return (ErrorCode.InvalidRequest, $"Null value not supported for : {string.Join(", ", nulls)}");
        var telemetry = context.Broker.ClientTelemetry;
        var current = new Dictionary<string, string>(telemetry.StoredConfig(resource.ResourceName ?? ""), StringComparer.Ordinal);
        foreach (var c in resource.Configs)
        {
            switch (c.ConfigOperation)
            {
                case 0: current[c.Name] = c.Value ?? ""; break;
                case 1: current.Remove(c.Name); break;
                case 2:
                case 3:
                {
                    if (c.Name is not (Metrics or Match))
                        return Array.IndexOf(Keys, c.Name) < 0
                            ? (ErrorCode.InvalidRequest, $"Unknown client metrics configuration: {c.Name}")
                            : (ErrorCode.InvalidConfig, $"Config value {(c.ConfigOperation == 2 ? "append" : "subtract")} is not allowed for config key: {c.Name}");
                    var list = ParseList(current.GetValueOrDefault(c.Name));
                    var items = ParseList(c.Value);
                    if (c.ConfigOperation == 2) { foreach (var i in items) if (!list.Contains(i)) list.Add(i); }
                    else list.RemoveAll(items.Contains);
                    current[c.Name] = string.Join(",", list);
                    break;
                }
                default: return (ErrorCode.InvalidRequest, $"Unknown operations type {c.ConfigOperation}");
            }
        }
        var (error, message) = Validate(resource.ResourceName, current);
        if (error != ErrorCode.None || validateOnly) return (error, message);
        try
        {
            telemetry.StoreSubscriptionAsync(resource.ResourceName!, current).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is KeeperException or InvalidOperationException or IOException)
        {
            return (ErrorCode.UnknownServerError, $"storing client metrics subscription {resource.ResourceName} failed: {e.Message}");
        }
        return (ErrorCode.None, null);
    }

    /// <summary>Follows <c>/config/changes</c> notifications for <c>client-metrics/&lt;name&gt;</c>.</summary>
    internal sealed class EntityHandler(ClientTelemetry telemetry) : Security.IConfigEntityHandler
    {
        public string EntityType => ClientMetricsConfigs.EntityType;

        public async Task LoadAllAsync(KeeperClient zk) =>
            telemetry.ReplaceSubscriptions(await new Security.Quotas.ZkQuotaStore(() => zk).ReadAllAsync(EntityType));

        public async Task OnChangedAsync(KeeperClient zk, string entityPath) =>
            telemetry.ApplySubscription(entityPath, await new Security.Quotas.ZkQuotaStore(() => zk).ReadAsync(entityPath));
    }
}
