using System.Globalization;
using System.Net;
using Samsa.Kafka.Broker.Config;
using Samsa.Keeper.Client;

namespace Samsa.Kafka.Broker.Security.Quotas;

/// <summary>
/// The broker's client quotas (upstream QuotaFactory.QuotaManagers plus ConnectionQuotas and the
/// quota part of ConfigHandler): the four client quota managers, the connection limits, where the
/// entities are stored, and applying an entity's config to the managers.
/// </summary>
public sealed class QuotaManagers
{
    public const string ProducerByteRate = "producer_byte_rate";
    public const string ConsumerByteRate = "consumer_byte_rate";
    public const string RequestPercentage = "request_percentage";
    public const string ControllerMutationRate = "controller_mutation_rate";
    public const string ConnectionCreationRate = "connection_creation_rate";

    /// <summary>DynamicConfig.Client / DynamicConfig.User quota keys and their types (LONG or DOUBLE).</summary>
    public static readonly IReadOnlyDictionary<string, bool> ClientKeysIsInteger = new Dictionary<string, bool>(StringComparer.Ordinal)
    {
        [ProducerByteRate] = true, [ConsumerByteRate] = true, [RequestPercentage] = false, [ControllerMutationRate] = false,
    };

    private readonly Action<string> _log;
    private readonly Dictionary<string, HashSet<string>> _applied = new(StringComparer.Ordinal)
    {
        ["users"] = new(StringComparer.Ordinal), ["clients"] = new(StringComparer.Ordinal), ["ips"] = new(StringComparer.Ordinal),
    };

    public QuotaManagers(BrokerConfig config, Action<string> log, Func<long>? clock = null)
    {
        _log = log;
        int samples = (int)(config.Get("quota.window.num") ?? 11);
        int window = (int)(config.Get("quota.window.size.seconds") ?? 1);
        Produce = new(ClientQuotaType.Produce, samples, window, clock);
        Fetch = new(ClientQuotaType.Fetch, samples, window, clock);
        Request = new(ClientQuotaType.Request, samples, window, clock);
        ControllerMutation = new(ClientQuotaType.ControllerMutation,
            (int)(config.Get("controller.quota.window.num") ?? 11), (int)(config.Get("controller.quota.window.size.seconds") ?? 1), clock);
        Connections = new ConnectionQuotas(config, clock);
        EntityHandlers = [new EntityHandler(this, "users"), new EntityHandler(this, "clients"), new EntityHandler(this, "ips")];
    }

    public ClientQuotaManager Produce { get; }
    public ClientQuotaManager Fetch { get; }
    public ClientQuotaManager Request { get; }
    public ClientQuotaManager ControllerMutation { get; }
    public ConnectionQuotas Connections { get; }

    /// <summary>Set by the broker: ZooKeeper in ZooKeeper mode, else the file store.</summary>
    public IQuotaStore? Store { get; set; }

    /// <summary>The handlers the broker registers for /config/changes notifications.</summary>
    public IReadOnlyList<Security.IConfigEntityHandler> EntityHandlers { get; }

    public static bool IsQuotaKey(string entityType, string key) =>
        entityType == "ips" ? key == ConnectionCreationRate : ClientKeysIsInteger.ContainsKey(key);

    /// <summary>Loads every entity of the store (single broker start).</summary>
    public async Task LoadAllAsync(IQuotaStore store)
    {
        foreach (var type in _applied.Keys.ToArray()) ReplaceAll(type, await store.ReadAllAsync(type));
    }

    /// <summary>A fresh view of every entity of one type: apply each and reset those gone.</summary>
    public void ReplaceAll(string entityType, IReadOnlyDictionary<string, Dictionary<string, string>> entities)
    {
        string[] gone;
        lock (_applied) gone = _applied[entityType].Where(p => !entities.ContainsKey(p)).ToArray();
        foreach (var path in gone) Apply(path, new Dictionary<string, string>());
        foreach (var (path, config) in entities) Apply(path, config);
    }

    /// <summary>Upstream ClientIdConfigHandler / UserConfigHandler / IpConfigHandler: the entity's
    /// quota keys replace what the managers hold for it (a key absent removes that quota).
    /// Values that do not parse as upstream parses them are skipped with a log line.</summary>
    public void Apply(string entityPath, IReadOnlyDictionary<string, string> config)
    {
        var parts = entityPath.Split('/');
        string type = parts[0];
        if (!_applied.ContainsKey(type)) return;
        lock (_applied)
        {
            if (config.Any(kv => IsQuotaKey(type, kv.Key))) _applied[type].Add(entityPath);
            else _applied[type].Remove(entityPath);
        }
        if (type == "ips")
        {
            if (parts.Length != 2) { _log($"ignoring quota entity {entityPath}: not ips/<ip>"); return; }
            IPAddress? ip = null;
            // AlterClientQuotas sanitizes ip names too ("::1" is ips/%3A%3A1).
            string host = QuotaSanitizer.Desanitize(parts[1]);
            if (parts[1] != ClientQuotaManager.Default && !IPAddress.TryParse(host, out ip))
            {
                try { ip = Dns.GetHostAddresses(host).FirstOrDefault(); }
                catch (System.Net.Sockets.SocketException) { }
                if (ip is null) { _log($"ignoring quota entity {entityPath}: Unable to resolve address {parts[1]}"); return; }
            }
            int? rate = null;
            if (config.TryGetValue(ConnectionCreationRate, out var text))
            {
                if (int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int r)) rate = r;
                else _log($"ignoring {ConnectionCreationRate}={text} of {entityPath}: not an int");
            }
            Connections.UpdateIpConnectionRate(ip, rate);
            return;
        }
        string? user = null, clientId = null;
        if (type == "users")
        {
            if (parts.Length == 1 || (parts.Length != 2 && (parts.Length != 4 || parts[2] != "clients")))
            {
                _log($"ignoring quota entity {entityPath}: Invalid quota entity path");
                return;
            }
            user = parts[1];
            if (parts.Length == 4) clientId = Client(parts[3]);
        }
        else
        {
            if (parts.Length != 2) { _log($"ignoring quota entity {entityPath}: not clients/<client-id>"); return; }
            clientId = Client(parts[1]);
        }
        Produce.UpdateQuota(user, clientId, Parse(entityPath, config, ProducerByteRate, integer: true));
        Fetch.UpdateQuota(user, clientId, Parse(entityPath, config, ConsumerByteRate, integer: true));
        Request.UpdateQuota(user, clientId, Parse(entityPath, config, RequestPercentage, integer: false));
        ControllerMutation.UpdateQuota(user, clientId, Parse(entityPath, config, ControllerMutationRate, integer: false));
    }

    private static string Client(string sanitized) => sanitized == ClientQuotaManager.Default ? sanitized : QuotaSanitizer.Desanitize(sanitized);

    private double? Parse(string entityPath, IReadOnlyDictionary<string, string> config, string key, bool integer)
    {
        if (!config.TryGetValue(key, out var text)) return null;
        // Upstream: toLong for the byte rates, toDouble for the others.
        if (integer && long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long l)) return l;
        if (!integer && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double d)) return d;
        _log($"ignoring {key}={text} of {entityPath}: not a {(integer ? "long" : "double")}");
        return null;
    }

    private sealed class EntityHandler(QuotaManagers quotas, string type) : Security.IConfigEntityHandler
    {
        public string EntityType => type;

        public async Task LoadAllAsync(KeeperClient zk) =>
            quotas.ReplaceAll(type, await new ZkQuotaStore(() => zk).ReadAllAsync(type));

        public async Task OnChangedAsync(KeeperClient zk, string entityPath) =>
            quotas.Apply(entityPath, await new ZkQuotaStore(() => zk).ReadAsync(entityPath));
    }
}

public static class QuotaSetup
{
    /// <summary>The broker's quotas: kept in ZooKeeper when zookeeper.connect is set (loaded with
    /// each session through the registered entity handlers), else in a file of the first log
    /// directory (in memory for brokers with in-memory logs), loaded here.</summary>
    public static QuotaManagers Create(KafkaBroker broker, bool inMemory)
    {
        var config = broker.Config;
        var quotas = new QuotaManagers(config, m => broker.Log(m));
        broker.ConfigEntityHandlers.AddRange(quotas.EntityHandlers);
        if (config.ZookeeperConnect is { Length: > 0 })
            quotas.Store = new ZkQuotaStore(() => broker.Cluster?.Session);
        else
        {
            var store = new FileQuotaStore(inMemory ? null : config.LogDirs[0]);
            quotas.Store = store;
            quotas.LoadAllAsync(store).GetAwaiter().GetResult();   // the file store answers synchronously
        }
        return quotas;
    }
}
