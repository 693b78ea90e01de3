using Samsa.Kafka.Broker.Config;

namespace Samsa.Kafka.Broker.Security;

/// <summary>
/// "Never pretend" beyond security (config audit, session 14): catalogue keys whose behaviour Samsa
/// does not have are accepted at their upstream default only; any other value in server.properties
/// (or a KAFKA_* / --override setting) stops the start with one line naming the key. The keys keep
/// their catalogue entries so DescribeConfigs still reports them as upstream does.
/// </summary>
public static partial class SecurityConfigCheck
{
    /// <summary>Key → why a non-default value cannot be honoured. A null catalogue default means any
    /// non-empty value is refused.</summary>
    internal static readonly IReadOnlyDictionary<string, string> UnhonouredKeys = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        // Bounds on the request queue: a user who set one asked for less memory than Samsa would use.
        ["queued.max.requests"] = "Samsa has no request queue between network and I/O threads",
        ["queued.max.request.bytes"] = "Samsa has no request queue between network and I/O threads",
        // Behaviour Samsa does not have.
        ["log.cleaner.max.compaction.lag.ms"] = "the log cleaner has no maximum compaction lag",
        ["connections.max.idle.ms"] = "idle connections are not closed by the broker",
        // Features Samsa refuses: tiered storage, KRaft, Java plug-ins, JSSE tuning.
        ["log.local.retention.ms"] = "tiered storage is not supported",
        ["log.local.retention.bytes"] = "tiered storage is not supported",
        ["process.roles"] = "KRaft is not supported (Samsa runs in ZooKeeper mode)",
        ["create.topic.policy.class.name"] = "Java policy classes cannot run in Samsa",
        ["alter.config.policy.class.name"] = "Java policy classes cannot run in Samsa",
    };

    /// <summary>Keys that size or pace upstream's machinery and change nothing a client or the data
    /// sees: another value than the default is accepted with one warning line at start (so that
    /// production server.properties files, which often size thread pools, start unchanged), and
    /// stored by AlterConfigs.</summary>
    internal static readonly IReadOnlyDictionary<string, string> NoEffectKeys = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        // Upstream's thread pools; Samsa runs requests on the runtime's socket threads and thread
        // pool, with no per-purpose pools to size.
        ["num.network.threads"] = "Samsa has no network thread pool (connections run on the .NET socket threads)",
        ["num.io.threads"] = "Samsa has no request handler pool (requests run on the .NET socket threads)",
        ["background.threads"] = "Samsa has no background thread pool",
        ["num.replica.fetchers"] = "Samsa runs one replica fetcher per source broker",
        ["log.cleaner.threads"] = "Samsa runs one log cleaner",
        ["log.preallocate"] = "segment files are not preallocated",
        ["log.flush.start.offset.checkpoint.interval.ms"] = "log-start-offset-checkpoint is written on log.flush.offset.checkpoint.interval.ms",
        ["replica.high.watermark.checkpoint.interval.ms"] = "replication-offset-checkpoint is written on log.flush.offset.checkpoint.interval.ms",
        ["zookeeper.max.in.flight.requests"] = "the ZooKeeper client does not bound its pipelined requests",
    };

    /// <summary>One line per <see cref="NoEffectKeys"/> key set to another value than upstream's default.</summary>
    public static IEnumerable<string> NoEffectWarnings(BrokerConfig config)
    {
        foreach (var (key, raw) in config.StaticProps.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            if (NoEffectKeys.TryGetValue(key, out var why) && !ConfigCatalog.Broker[key].IsDefault(raw))
                yield return $"{key}={raw.Trim()} has no effect: {why}";
    }

    /// <summary>TLS keys of the JSSE stack, honoured at their default only (also per listener:
    /// listener.name.&lt;listener&gt;.&lt;key&gt;); Samsa uses the OS TLS stack through SslStream.</summary>
    internal static readonly IReadOnlySet<string> JsseOnlyKeys = new HashSet<string>(StringComparer.Ordinal)
    {
        "ssl.provider", "ssl.keymanager.algorithm", "ssl.trustmanager.algorithm", "ssl.secure.random.implementation",
    };

    /// <summary>Every set catalogue key of <see cref="UnhonouredKeys"/> and <see cref="JsseOnlyKeys"/>
    /// whose value differs from upstream's default, one line each.</summary>
    [StartupCheck]
    private static IEnumerable<string> UnhonouredValues(BrokerConfig config)
    {
        foreach (var (key, raw) in config.StaticProps.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            if (UnhonouredValue(key, raw) is { } line) yield return line;
        // inter.broker.protocol.version: Samsa speaks 3.9's inter-broker protocol only.
        if (config.StaticProps.TryGetValue("inter.broker.protocol.version", out var ibp)
            && ibp.Trim() is not ("3.9" or "3.9-IV0"))
            yield return $"inter.broker.protocol.version={ibp.Trim()} is not supported: Samsa speaks 3.9-IV0 only; remove it";
    }

    /// <summary>broker.id against broker.id.generation.enable and reserved.broker.max.id, as upstream's
    /// KafkaConfig.validateValues (ZooKeeper mode); an unset broker.id is refused because Samsa does
    /// not generate ids from /brokers/seqid.</summary>
    [StartupCheck]
    private static IEnumerable<string> BrokerIdRange(BrokerConfig config)
    {
        if (config.ZookeeperConnect is not { Length: > 0 }) yield break;
        // An unset broker.id takes node.id (BrokerConfig.BrokerId); another negative one is checked as set.
        int id = (int)config.Get("broker.id")! is var raw && raw == -1 ? config.BrokerId : raw;
        if ((bool)config.Get("broker.id.generation.enable")!)
        {
            if (id < -1 || id > (int)config.Get("reserved.broker.max.id")!)
                yield return "broker.id must be greater than or equal to -1 and not greater than reserved.broker.max.id";
            else if (id == -1)
                yield return "broker.id is not set: Samsa does not generate broker ids (broker.id.generation.enable); set broker.id";
        }
        else if (id < 0)
            yield return "broker.id must be greater than or equal to 0";
    }

    /// <summary>The refusal line when <paramref name="key"/> (possibly listener-prefixed for the JSSE
    /// keys) is one of the keys above set to another value than upstream's default; else null.</summary>
    public static string? UnhonouredValue(string key, string raw)
    {
        string baseKey = JsseOnlyKeys.Contains(ListenerBase(key)) ? ListenerBase(key) : key;
        string? reason = UnhonouredKeys.GetValueOrDefault(baseKey)
            ?? (JsseOnlyKeys.Contains(baseKey) ? "Samsa uses the OS TLS stack through .NET's SslStream" : null);
        return reason is null || ConfigCatalog.Broker[baseKey].IsDefault(raw) ? null : $"{key}={raw.Trim()} is not supported: {reason}; remove it";
    }

    // listener.name.<listener>.<key> → <key>; any other name unchanged.
    private static string ListenerBase(string name) => BrokerConfig.ListenerBaseName(name) ?? name;
}
