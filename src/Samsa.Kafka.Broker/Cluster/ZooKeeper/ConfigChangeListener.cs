using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Samsa.Kafka.Broker.Config;
using Samsa.Keeper.Client;
using Samsa.Keeper.Protocol;

namespace Samsa.Kafka.Broker.Cluster.ZooKeeper;

/// <summary>
/// Follows <c>/config/changes</c> as upstream's DynamicConfigManager did in ZooKeeper mode
/// (ZkNodeChangeNotificationListener): a config change is the entity znode
/// (<c>/config/topics/&lt;t&gt;</c>, <c>/config/brokers/&lt;id&gt;</c>, <c>/config/brokers/&lt;default&gt;</c>,
/// <c>{"version":1,"config":{...}}</c>) followed by a persistent sequential
/// <c>/config/changes/config_change_NNNNNNNNNN</c> naming it (<c>{"version":2,"entity_path":"brokers/1"}</c>,
/// or the older <c>{"version":1,"entity_type":"topics","entity_name":"t"}</c>). Each broker keeps the
/// highest sequence number it processed, re-reads the entity of every newer notification and, after
/// processing, deletes notifications created more than <see cref="ChangeExpiration"/> ago (upstream
/// changeExpirationMs, 15 minutes).
///
/// Topic overrides are also re-read with every view of the layout (ZkClusterMember), so a topic
/// notification only makes that happen sooner; dynamic broker configs are read from ZooKeeper at the
/// start of each session and then on notifications for this broker's id or for &lt;default&gt;.
/// Client, user and ip entities go to the registered IConfigEntityHandlers (quotas, SCRAM credentials).
/// </summary>
internal sealed class ConfigChangeListener(KafkaBroker broker)
{
    public const string ConfigBrokers = "/config/brokers";
    /// <summary>Upstream ConfigEntityName.Default: the entity name of the cluster-wide broker defaults.</summary>
    public const string DefaultEntity = "<default>";
    private const string Prefix = "config_change_";

    private long _lastExecutedChange = -1;
    private long _lastAppliedChange = -1;

    /// <summary>The sequence number of the newest notification whose entity is fully applied here
    /// (admin writes wait for their own notification to pass).</summary>
    public long LastAppliedChange => Interlocked.Read(ref _lastAppliedChange);

    public static long? SequenceOf(string name)
    {
        int i = name.LastIndexOf(Prefix, StringComparison.Ordinal);
        return i >= 0 && long.TryParse(name.AsSpan(i + Prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out long seq) ? seq : null;
    }

    /// <summary>How old a notification must be before it is deleted (upstream: 15 minutes).</summary>
    public TimeSpan ChangeExpiration { get; set; } = TimeSpan.FromMinutes(15);

    public static string BrokerConfigPath(string entity) => $"{ConfigBrokers}/{entity}";

    /// <summary>The entity path ("topics/t", "brokers/&lt;default&gt;") of a notification, or null when
    /// it is not one (upstream logs and skips those).</summary>
    public static string? DecodeChange(byte[]? data)
    {
        if (data is null || data.Length == 0) return null;
        JsonObject? o;
        try { o = JsonNode.Parse(data) as JsonObject; }
        catch (JsonException) { return null; }
        if (o?["version"] is not JsonValue v || !v.TryGetValue<int>(out int version)) return null;
        string? Str(string key) => o[key] is JsonValue s && s.TryGetValue<string>(out var str) ? str : null;
        return version switch
        {
            2 => Str("entity_path") is { } p && p.IndexOf('/') > 0 ? p : null,
            // Version 1 only ever named topics and clients.
            1 => Str("entity_type") is "topics" or "clients" && Str("entity_name") is { } n ? $"{Str("entity_type")}/{n}" : null,
            _ => null,
        };
    }

    /// <summary>A new session: read both broker entities afresh and process every notification
    /// again (upstream re-processes all notifications on start to close the gap between the
    /// initial load and the first watch).</summary>
    public async Task OnSessionAsync(KeeperClient zk)
    {
        _lastExecutedChange = -1;
        Interlocked.Exchange(ref _lastAppliedChange, -1);
        bool changed = await LoadBrokerEntityAsync(zk, perBroker: true);
        changed |= await LoadBrokerEntityAsync(zk, perBroker: false);
        if (changed) broker.Replicas.RefreshLogConfigs();
        foreach (var handler in broker.ConfigEntityHandlers) await handler.LoadAllAsync(zk);
    }

    /// <summary>Processes notifications newer than the last one seen, then purges expired ones.</summary>
    public async Task ProcessAsync(KeeperClient zk)
    {
        List<string> children;
        try { children = await zk.GetChildrenAsync(ZkData.ConfigChanges); }
        catch (KeeperException e) when (e.Code == Code.NoNode) { return; }
        var notifications = new List<(long Seq, string Name)>();
        foreach (var c in children)
            if (c.StartsWith(Prefix, StringComparison.Ordinal)
                && long.TryParse(c.AsSpan(Prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out long seq))
                notifications.Add((seq, c));
        if (notifications.Count == 0) return;
        notifications.Sort();
        if (notifications[^1].Seq <= _lastExecutedChange) return;

        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        bool perBroker = false, clusterDefault = false;
        foreach (var (seq, name) in notifications)
        {
            if (seq <= _lastExecutedChange) continue;
            byte[]? data;
            try { data = (await zk.GetDataAsync($"{ZkData.ConfigChanges}/{name}")).Data; }
            catch (KeeperException e) when (e.Code == Code.NoNode) { continue; }   // purged meanwhile
            var entity = DecodeChange(data);
            if (entity is null) broker.Log($"ignoring config change notification {name}: not a version 1 or 2 notification");
            else if (entity == "brokers/" + DefaultEntity) clusterDefault = true;
            else if (entity == "brokers/" + broker.BrokerId.ToString(CultureInfo.InvariantCulture)) perBroker = true;
            else
            {
                // users/…, clients/…, ips/…: SCRAM credentials and quotas (Security).
                string type = entity.Split('/', 2)[0];
                foreach (var handler in broker.ConfigEntityHandlers)
                    if (handler.EntityType == type) await handler.OnChangedAsync(zk, entity);
            }
            _lastExecutedChange = seq;
        }
        bool changed = false;
        if (perBroker) changed |= await LoadBrokerEntityAsync(zk, perBroker: true);
        if (clusterDefault) changed |= await LoadBrokerEntityAsync(zk, perBroker: false);
        if (changed) broker.Replicas.RefreshLogConfigs();
        Interlocked.Exchange(ref _lastAppliedChange, _lastExecutedChange);
        await PurgeObsoleteAsync(zk, now, notifications);
    }

    // Upstream purgeObsoleteNotifications: every broker deletes what is older than the expiry,
    // so a deletion racing with another broker's is expected (NoNode).
    private async Task PurgeObsoleteAsync(KeeperClient zk, long now, List<(long Seq, string Name)> notifications)
    {
        long expiration = (long)ChangeExpiration.TotalMilliseconds;
        foreach (var (_, name) in notifications)
        {
            var path = $"{ZkData.ConfigChanges}/{name}";
            var stat = await zk.ExistsAsync(path);
            if (stat is null || now - stat.Ctime <= expiration) continue;
            try { await zk.DeleteAsync(path); }
            catch (KeeperException e) when (e.Code == Code.NoNode) { }
        }
    }

    /// <summary>Replaces this broker's dynamic configs (per-broker or cluster default) with the
    /// entity znode's. Keys that cannot be updated dynamically or whose value does not parse are
    /// skipped with a log line, as upstream's DynamicBrokerConfig drops invalid stored configs.
    /// Returns whether anything changed.</summary>
    private async Task<bool> LoadBrokerEntityAsync(KeeperClient zk, bool perBroker)
    {
        var entity = perBroker ? broker.BrokerId.ToString(CultureInfo.InvariantCulture) : DefaultEntity;
        Dictionary<string, string> stored;
        try { stored = ZkData.DecodeConfig((await zk.GetDataAsync(BrokerConfigPath(entity))).Data) ?? []; }
        catch (KeeperException e) when (e.Code == Code.NoNode) { stored = []; }
        var valid = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var (k, v) in stored)
        {
            if (BrokerConfig.ValidateDynamicBrokerUpdate(new Dictionary<string, string?> { [k] = v }, perBroker) is { } problem)
                broker.Log($"ignoring dynamic broker config {k} in {BrokerConfigPath(entity)}: {problem}");
            else valid[k] = v;
        }
        var current = broker.Config.DynamicConfigs(perBroker);
        if (current.Count == valid.Count && valid.All(kv => current.TryGetValue(kv.Key, out var c) && c == kv.Value)) return false;
        broker.Config.ApplyDynamic(perBroker, valid, replaceAll: true);
        broker.Log($"dynamic broker configs from {BrokerConfigPath(entity)}: {string.Join(", ", valid.Keys.Order(StringComparer.Ordinal))}");
        return true;
    }
}
