using Samsa.Kafka.Broker.Config;
using Samsa.Keeper.Server;

namespace Samsa.Host;

/// <summary>
/// Upstream's own configuration for <c>samsa dev</c>: <c>--broker-config server.properties</c> and
/// repeated <c>--override key=value</c> for every dev broker, <c>--keeper-config zoo.cfg</c> and
/// repeated <c>--keeper-override key=value</c> for the dev Keeper. Precedence, lowest first: dev's
/// defaults, the file, the overrides (later overrides win, as kafka-server-start.sh's --override).
///
/// The keys that place a dev process (broker.id, listeners, advertised.listeners, log.dirs,
/// zookeeper.connect; dataDir, dataLogDir, clientPort, clientPortAddress) come from the dev flags
/// (--data, --host, --kafka-port, --zk-port, --brokers): a file's value for them is replaced and
/// named on stderr, an --override of them is refused. Any other key Samsa does not honour stops the
/// start with one line naming it: a broker key must be one of the broker's known keys
/// (<see cref="ConfigCatalog.Broker"/>, whose values the broker validates as upstream's KafkaConfig
/// does) or a listener.name.* key (checked by the broker's start-up security checks); a Keeper key
/// must be one the Keeper's zoo.cfg parser applies.
/// </summary>
internal sealed class DevConfigFiles
{
    /// <summary>Broker keys dev derives from its flags.</summary>
    public static readonly IReadOnlySet<string> ManagedBrokerKeys = new HashSet<string>(StringComparer.Ordinal)
    {
        "broker.id", "listeners", "advertised.listeners", "log.dirs", "log.dir", "zookeeper.connect",
    };

    /// <summary>zoo.cfg keys dev derives from its flags.</summary>
    public static readonly IReadOnlySet<string> ManagedKeeperKeys = new HashSet<string>(StringComparer.Ordinal)
    {
        "dataDir", "dataLogDir", "clientPort", "clientPortAddress",
    };

    /// <summary>
    /// zoo.cfg keys <see cref="KeeperConfig.Apply"/> acts on (exact names). initLimit and syncLimit
    /// are accepted because a standalone ZooKeeper ignores them too (they only time quorum
    /// followers), so upstream's sample zoo.cfg and Debian's work unchanged.
    /// </summary>
    private static readonly HashSet<string> KeeperKeys = new(StringComparer.Ordinal)
    {
        "tickTime", "minSessionTimeout", "maxSessionTimeout", "maxClientCnxns", "snapCount", "zookeeper.snapCount",
        "forceSync", "zookeeper.forceSync", "preAllocSize", "zookeeper.preAllocSize", "autopurge.snapRetainCount",
        "autopurge.purgeInterval", "4lw.commands.whitelist", "zookeeper.extendedTypesEnabled", "extendedTypesEnabled",
        "zookeeper.DigestAuthenticationProvider.superDigest", "DigestAuthenticationProvider.superDigest",
        "zookeeper.skipACL", "skipACL", "jute.maxbuffer", "znode.container.checkIntervalMs", "admin.enableServer",
        "admin.serverPort", "admin.serverAddress", "reconfigEnabled", "enforceQuota", "zookeeper.enforceQuota",
        "digest.enabled", "zookeeper.digest.enabled", "snapshot.trust.empty", "zookeeper.snapshot.trust.empty",
        "initLimit", "syncLimit",
        // security keys (KeeperConfig.ApplySecurity); unsupported values are refused when the Keeper starts
        "java.security.auth.login.config", "secureClientPort", "secureClientPortAddress", "serverCnxnFactory",
        "sasl.serverconfig", "sessionRequireClientSASLAuth", "enforce.auth.enabled", "enforce.auth.schemes",
        "SASLAuthenticationProvider.superPassword", "allowSaslFailedClients", "X509AuthenticationProvider.superUser",
        "requireClientAuthScheme", "superUser", "sslQuorum",
        // upstream's PrometheusMetricsProvider (KeeperConfig; other metricsProvider.* keys are refused when the Keeper starts)
        "metricsProvider.className", "metricsProvider.httpPort", "metricsProvider.httpHost", "metricsProvider.exportJvmInfo",
    };

    private static readonly string[] KeeperKeyPrefixes = ["authProvider.", "superUser.", "ssl."];

    public Dictionary<string, string> BrokerFile { get; } = new(StringComparer.Ordinal);
    public List<KeyValuePair<string, string>> BrokerOverrides { get; } = [];
    public Dictionary<string, string> KeeperFile { get; } = new(StringComparer.Ordinal);
    public List<KeyValuePair<string, string>> KeeperOverrides { get; } = [];

    public bool IsEmpty => BrokerFile.Count == 0 && BrokerOverrides.Count == 0 && KeeperFile.Count == 0 && KeeperOverrides.Count == 0;

    /// <summary>Takes one dev option if it is one of ours; returns false for other options.</summary>
    public bool TryParse(string[] args, ref int i)
    {
        switch (args[i])
        {
            case "--broker-config":
            {
                string path = Program.Value(args, ref i);
                if (!File.Exists(path)) throw new UsageException($"dev: --broker-config file not found: {path}");
                foreach (var (k, v) in JavaProperties.Load(path)) BrokerFile[k] = v;
                return true;
            }
            case "--keeper-config":
            {
                string path = Program.Value(args, ref i);
                if (!File.Exists(path)) throw new UsageException($"dev: --keeper-config file not found: {path}");
                // zoo.cfg is read as the Keeper reads it (key=value or key: value, # and ! comments).
                foreach (var (k, v) in KeeperConfig.Parse(File.ReadAllText(path)).Raw) KeeperFile[k] = v;
                return true;
            }
            case "--override":
                BrokerOverrides.Add(KeyValue(args, ref i));
                return true;
            case "--keeper-override":
                KeeperOverrides.Add(KeyValue(args, ref i));
                return true;
            default:
                return false;
        }
    }

    private static KeyValuePair<string, string> KeyValue(string[] args, ref int i)
    {
        string name = args[i];
        string kv = Program.Value(args, ref i);
        int eq = kv.IndexOf('=');
        if (eq <= 0) throw new UsageException($"dev: {name} expects key=value, got '{kv}'");
        return new(kv[..eq].Trim(), kv[(eq + 1)..].Trim());
    }

    /// <summary>
    /// Checks every key before anything starts: a refused key is a <see cref="ConfigValueException"/>
    /// naming all of them. Returns the file keys dev replaces (for one stderr line).
    /// </summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        foreach (var (k, _) in BrokerOverrides)
            if (ManagedBrokerKeys.Contains(k))
                problems.Add($"--override {k}: samsa dev sets {k} itself (use --host, --kafka-port, --data, --brokers)");
        foreach (var (k, _) in KeeperOverrides)
            if (ManagedKeeperKeys.Contains(k))
                problems.Add($"--keeper-override {k}: samsa dev sets {k} itself (use --host, --zk-port, --data)");
        foreach (var k in BrokerFile.Keys.Concat(BrokerOverrides.Select(kv => kv.Key)).Distinct())
            if (!ManagedBrokerKeys.Contains(k) && !IsBrokerKey(k))
                problems.Add($"broker key '{k}' is not one Samsa's broker honours; remove it");
        foreach (var k in KeeperFile.Keys.Concat(KeeperOverrides.Select(kv => kv.Key)).Distinct())
        {
            if (ManagedKeeperKeys.Contains(k) || IsKeeperKey(k)) continue;
            problems.Add(k.StartsWith("server.", StringComparison.Ordinal) || k is "dynamicConfigFile" or "standaloneEnabled"
                ? $"Keeper key '{k}': samsa dev runs one standalone Keeper; run an ensemble with `samsa keeper`"
                : $"Keeper key '{k}' is not one Samsa's Keeper honours; remove it");
        }
        if (problems.Count > 0) throw new ConfigValueException(string.Join(Environment.NewLine, problems));
        // Values are checked now, as the broker and the Keeper will check them, so that nothing has
        // started (no `keeper listening` line) when one is bad.
        var brokerProps = new Dictionary<string, string>(StringComparer.Ordinal);
        ApplyBroker(brokerProps);
        _ = new BrokerConfig(brokerProps);
        // Keys honoured at their default only stop dev before the Keeper starts, as the broker would.
        var unhonoured = brokerProps.Select(kv => Samsa.Kafka.Broker.Security.SecurityConfigCheck.UnhonouredValue(kv.Key, kv.Value)).OfType<string>().ToList();
        if (unhonoured.Count > 0) throw new ConfigValueException(string.Join(Environment.NewLine, unhonoured));
        ApplyKeeper(new KeeperConfig());
        return BrokerFile.Keys.Where(ManagedBrokerKeys.Contains)
            .Concat(KeeperFile.Keys.Where(ManagedKeeperKeys.Contains))
            .OrderBy(k => k, StringComparer.Ordinal).ToList();
    }

    private static bool IsBrokerKey(string key) =>
        ConfigCatalog.Broker.ContainsKey(key) || key.StartsWith("listener.name.", StringComparison.Ordinal);

    private static bool IsKeeperKey(string key) =>
        KeeperKeys.Contains(key) || KeeperKeyPrefixes.Any(p => key.StartsWith(p, StringComparison.Ordinal))
        || (key.StartsWith("zookeeper.", StringComparison.Ordinal) && IsKeeperKey(key["zookeeper.".Length..]));

    /// <summary>Applies the file then the overrides on top of a dev broker's properties (managed keys kept).</summary>
    public void ApplyBroker(IDictionary<string, string> props)
    {
        foreach (var (k, v) in BrokerFile)
            if (!ManagedBrokerKeys.Contains(k)) props[k] = v;
        foreach (var (k, v) in BrokerOverrides) props[k] = v;
    }

    /// <summary>Applies the file then the overrides to the dev Keeper's configuration (managed keys kept).</summary>
    public void ApplyKeeper(KeeperConfig config)
    {
        foreach (var (k, v) in KeeperFile.Where(kv => !ManagedKeeperKeys.Contains(kv.Key)).Concat(KeeperOverrides))
        {
            try
            {
                config.Raw[k] = v;
                config.Apply(k, v);
            }
            catch (Exception e) when (e is FormatException or OverflowException)
            {
                // As QuorumPeerConfig: a value that does not parse stops the start.
                throw new ConfigValueException($"Invalid value {v} for Keeper key {k}: {e.Message}");
            }
        }
    }
}
