using static Samsa.Kafka.Broker.Config.ConfigDefinition;

namespace Samsa.Kafka.Broker.Config;

/// <summary>A broker key standing in for a topic key, with the conversion upstream applies
/// (log.retention.hours is multiplied into milliseconds for retention.ms).</summary>
public sealed record ConfigSynonym(string Name, long Multiplier = 1);

/// <summary>
/// Upstream's broker and topic config keys: names, types, defaults and validators from
/// LogConfig / ServerLogConfigs / ServerConfigs / ReplicationConfigs / SocketServerConfigs /
/// ZkConfigs / GroupCoordinatorConfig (Kafka 3.9), and the topic→broker synonym table of
/// ServerTopicConfigSynonyms. The broker list covers the keys a server.properties commonly sets;
/// unknown keys are kept and reported as upstream does for originals.
/// </summary>
public static class ConfigCatalog
{
    private const string LongMax = "9223372036854775807";
    private const string IntMax = "2147483647";

    public const string CompressionTypeProducer = "producer";
    public static readonly string[] BrokerCompressionTypes = ["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

    // Upstream: GZIP accepts 1..9 or -1 (Deflater.DEFAULT_COMPRESSION).
    private static readonly ConfigValidator GzipLevel = o =>
    {
        int v = (int)o;
        return v == -1 || (v >= 1 && v <= 9) ? null : "Value must be between 1 and 9, or -1";
    };

    // message.format.version accepts a release string ("0.10.0", "2.8", "3.0-IV1", ...);
    // since 3.0 it is ignored for brokers on IBP 3.0+, so only the shape is checked.
    private static readonly ConfigValidator MetadataVersionString = o =>
    {
        var s = (string)o;
        if (s.Length > 0 && char.IsDigit(s[0]) && s.All(c => char.IsLetterOrDigit(c) || c == '.' || c == '-')) return null;
        return $"Version `{s}` is not a valid version";
    };

    // Upstream ThrottledReplicaListValidator: "*" or entries "[partitionId]:[brokerId]".
    private static ConfigValidator ThrottledReplicas(string name) => o =>
    {
        var items = (List<string>)o;
        if (string.Concat(items).Trim() == "*") return null;
        foreach (var item in items)
        {
            var parts = item.Trim().Split(':');
            if (item.Trim().Length == 0) continue;
            if (parts.Length != 2 || parts.Any(p => p.Length == 0 || !p.All(char.IsAsciiDigit)))
                return $"{name} must be the literal '*' or a list of replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],...";
        }
        return null;
    };

    public static readonly IReadOnlyDictionary<string, ConfigDefinition> Topic = Build(
        new("segment.bytes", ConfigType.Int, "1073741824", AtLeast(14)),
        new("segment.ms", ConfigType.Long, "604800000", AtLeast(1)),
        new("segment.jitter.ms", ConfigType.Long, "0", AtLeast(0)),
        new("segment.index.bytes", ConfigType.Int, "10485760", AtLeast(4)),
        new("flush.messages", ConfigType.Long, LongMax, AtLeast(1)),
        new("flush.ms", ConfigType.Long, LongMax, AtLeast(0)),
        new("retention.bytes", ConfigType.Long, "-1"),
        new("retention.ms", ConfigType.Long, "604800000", AtLeast(-1)),
        new("max.message.bytes", ConfigType.Int, "1048588", AtLeast(0)),
        new("index.interval.bytes", ConfigType.Int, "4096", AtLeast(0)),
        new("delete.retention.ms", ConfigType.Long, "86400000", AtLeast(0)),
        new("min.compaction.lag.ms", ConfigType.Long, "0", AtLeast(0)),
        new("max.compaction.lag.ms", ConfigType.Long, LongMax, AtLeast(1)),
        new("file.delete.delay.ms", ConfigType.Long, "60000", AtLeast(0)),
        new("min.cleanable.dirty.ratio", ConfigType.Double, "0.5", Between(0, 1)),
        new("cleanup.policy", ConfigType.List, "delete", ListOf("compact", "delete")),
        new("unclean.leader.election.enable", ConfigType.Boolean, "false"),
        new("min.insync.replicas", ConfigType.Int, "1", AtLeast(1)),
        new("compression.type", ConfigType.String, "producer", OneOf(BrokerCompressionTypes)),
        new("compression.gzip.level", ConfigType.Int, "-1", GzipLevel),
        new("compression.lz4.level", ConfigType.Int, "9", Between(1, 17)),
        new("compression.zstd.level", ConfigType.Int, "3", Between(-131072, 22)),
        new("preallocate", ConfigType.Boolean, "false"),
        new("message.format.version", ConfigType.String, "3.0-IV1", MetadataVersionString),
        new("message.timestamp.type", ConfigType.String, "CreateTime", OneOf("CreateTime", "LogAppendTime")),
        new("message.timestamp.difference.max.ms", ConfigType.Long, LongMax, AtLeast(0)),
        new("message.timestamp.before.max.ms", ConfigType.Long, LongMax, AtLeast(0)),
        new("message.timestamp.after.max.ms", ConfigType.Long, LongMax, AtLeast(0)),
        new("leader.replication.throttled.replicas", ConfigType.List, "", ThrottledReplicas("leader.replication.throttled.replicas")),
        new("follower.replication.throttled.replicas", ConfigType.List, "", ThrottledReplicas("follower.replication.throttled.replicas")),
        new("message.downconversion.enable", ConfigType.Boolean, "true"),
        new("remote.storage.enable", ConfigType.Boolean, "false"),
        new("local.retention.ms", ConfigType.Long, "-2", AtLeast(-2)),
        new("local.retention.bytes", ConfigType.Long, "-2", AtLeast(-2)),
        new("remote.log.copy.disable", ConfigType.Boolean, "false"),
        new("remote.log.delete.on.disable", ConfigType.Boolean, "false"));

    /// <summary>Topic key → broker keys that supply its default, highest priority first
    /// (ServerTopicConfigSynonyms.ALL_TOPIC_CONFIG_SYNONYMS).</summary>
    public static readonly IReadOnlyDictionary<string, ConfigSynonym[]> TopicSynonyms = new Dictionary<string, ConfigSynonym[]>
    {
        ["segment.bytes"] = [new("log.segment.bytes")],
        ["segment.ms"] = [new("log.roll.ms"), new("log.roll.hours", 3_600_000)],
        ["segment.jitter.ms"] = [new("log.roll.jitter.ms"), new("log.roll.jitter.hours", 3_600_000)],
        ["segment.index.bytes"] = [new("log.index.size.max.bytes")],
        ["flush.messages"] = [new("log.flush.interval.messages")],
        ["flush.ms"] = [new("log.flush.interval.ms"), new("log.flush.scheduler.interval.ms")],
        ["retention.bytes"] = [new("log.retention.bytes")],
        ["retention.ms"] = [new("log.retention.ms"), new("log.retention.minutes", 60_000), new("log.retention.hours", 3_600_000)],
        ["max.message.bytes"] = [new("message.max.bytes")],
        ["index.interval.bytes"] = [new("log.index.interval.bytes")],
        ["delete.retention.ms"] = [new("log.cleaner.delete.retention.ms")],
        ["min.compaction.lag.ms"] = [new("log.cleaner.min.compaction.lag.ms")],
        ["max.compaction.lag.ms"] = [new("log.cleaner.max.compaction.lag.ms")],
        ["file.delete.delay.ms"] = [new("log.segment.delete.delay.ms")],
        ["min.cleanable.dirty.ratio"] = [new("log.cleaner.min.cleanable.ratio")],
        ["cleanup.policy"] = [new("log.cleanup.policy")],
        ["unclean.leader.election.enable"] = [new("unclean.leader.election.enable")],
        ["min.insync.replicas"] = [new("min.insync.replicas")],
        ["compression.type"] = [new("compression.type")],
        ["compression.gzip.level"] = [new("compression.gzip.level")],
        ["compression.lz4.level"] = [new("compression.lz4.level")],
        ["compression.zstd.level"] = [new("compression.zstd.level")],
        ["preallocate"] = [new("log.preallocate")],
        ["message.format.version"] = [new("log.message.format.version")],
        ["message.timestamp.type"] = [new("log.message.timestamp.type")],
        ["message.timestamp.difference.max.ms"] = [new("log.message.timestamp.difference.max.ms")],
        ["message.timestamp.before.max.ms"] = [new("log.message.timestamp.before.max.ms")],
        ["message.timestamp.after.max.ms"] = [new("log.message.timestamp.after.max.ms")],
        ["message.downconversion.enable"] = [new("log.message.downconversion.enable")],
        ["local.retention.ms"] = [new("log.local.retention.ms")],
        ["local.retention.bytes"] = [new("log.local.retention.bytes")],
    };

    /// <summary>The broker keys grouped as DynamicBrokerConfig.brokerConfigSynonyms groups them
    /// (a key and its lower-priority unit variants).</summary>
    public static IReadOnlyList<string> BrokerSynonyms(string brokerKey) => brokerKey switch
    {
        "log.roll.ms" or "log.roll.hours" => ["log.roll.ms", "log.roll.hours"],
        "log.roll.jitter.ms" or "log.roll.jitter.hours" => ["log.roll.jitter.ms", "log.roll.jitter.hours"],
        "log.flush.interval.ms" => ["log.flush.interval.ms", "log.flush.scheduler.interval.ms"],
        "log.retention.ms" or "log.retention.minutes" or "log.retention.hours" => ["log.retention.ms", "log.retention.minutes", "log.retention.hours"],
        _ => [brokerKey],
    };

    // ---- which broker keys change at run time (upstream DynamicBrokerConfig, ZooKeeper mode) ----

    /// <summary>SslConfigs.RECONFIGURABLE_CONFIGS: dynamic only with a listener prefix
    /// (listener.name.&lt;listener&gt;.&lt;key&gt;); without it AlterConfigs refuses them.</summary>
    public static readonly IReadOnlySet<string> ListenerOnlySecurityKeys = new HashSet<string>(StringComparer.Ordinal)
    {
        "ssl.keystore.type", "ssl.keystore.location", "ssl.keystore.password", "ssl.key.password",
        "ssl.truststore.type", "ssl.truststore.location", "ssl.truststore.password",
        "ssl.keystore.certificate.chain", "ssl.keystore.key", "ssl.truststore.certificates",
    };

    /// <summary>DynamicListenerConfig.ReconfigurableConfigs.</summary>
    private static readonly string[] ListenerKeys =
    [
        "advertised.listeners", "listeners", "listener.security.protocol.map",
        "principal.builder.class", "ssl.protocol", "ssl.provider", "ssl.cipher.suites", "ssl.enabled.protocols",
        "ssl.keystore.type", "ssl.keystore.location", "ssl.keystore.password", "ssl.key.password",
        "ssl.truststore.type", "ssl.truststore.location", "ssl.truststore.password",
        "ssl.keymanager.algorithm", "ssl.trustmanager.algorithm", "ssl.endpoint.identification.algorithm",
        "ssl.secure.random.implementation", "ssl.client.auth", "ssl.engine.factory.class",
        "sasl.mechanism.inter.broker.protocol", "sasl.jaas.config", "sasl.enabled.mechanisms",
        "sasl.kerberos.service.name", "sasl.kerberos.kinit.cmd", "sasl.kerberos.ticket.renew.window.factor",
        "sasl.kerberos.ticket.renew.jitter", "sasl.kerberos.min.time.before.relogin",
        "sasl.kerberos.principal.to.local.rules", "sasl.login.refresh.window.factor",
        "sasl.login.refresh.window.jitter", "sasl.login.refresh.min.period.seconds",
        "sasl.login.refresh.buffer.seconds",
        "max.connections", "max.connection.creation.rate", "num.network.threads",
    ];

    /// <summary>Listener keys that may also be set as a cluster default (ClusterLevelListenerConfigs).</summary>
    public static readonly IReadOnlySet<string> ClusterLevelListenerKeys = new HashSet<string>(StringComparer.Ordinal)
    {
        "max.connections", "max.connection.creation.rate", "num.network.threads",
    };

    /// <summary>Keys upstream defines as internal (ConfigDef.defineInternal): honoured, but
    /// DescribeConfigs lists them only when set (AbstractConfig.nonInternalValues).</summary>
    public static readonly IReadOnlySet<string> InternalBrokerKeys = new HashSet<string>(["producer.id.expiration.check.interval.ms"], StringComparer.Ordinal);

    /// <summary>DynamicBrokerConfig.AllDynamicConfigs: the broker keys DescribeConfigs reports as
    /// not read-only. Security, log cleaner, log defaults (each topic config's first broker synonym,
    /// except log.message.format.version), thread pools, metric reporters, listeners, socket server
    /// limits, producer state and remote-log rates.</summary>
    public static readonly IReadOnlySet<string> DynamicBrokerKeys = new HashSet<string>(
    [
        .. ListenerOnlySecurityKeys,
        "log.cleaner.threads", "log.cleaner.dedupe.buffer.size", "log.cleaner.io.buffer.load.factor",
        "log.cleaner.io.buffer.size", "message.max.bytes", "log.cleaner.io.max.bytes.per.second", "log.cleaner.backoff.ms",
        "log.segment.bytes", "log.roll.ms", "log.roll.jitter.ms", "log.index.size.max.bytes", "log.flush.interval.messages",
        "log.flush.interval.ms", "log.retention.bytes", "log.retention.ms", "log.index.interval.bytes",
        "log.cleaner.delete.retention.ms", "log.cleaner.min.compaction.lag.ms", "log.cleaner.max.compaction.lag.ms",
        "log.segment.delete.delay.ms", "log.cleaner.min.cleanable.ratio", "log.cleanup.policy",
        "unclean.leader.election.enable", "min.insync.replicas", "compression.type", "compression.gzip.level",
        "compression.lz4.level", "compression.zstd.level", "log.preallocate", "log.message.timestamp.type",
        "log.message.timestamp.difference.max.ms", "log.message.timestamp.before.max.ms",
        "log.message.timestamp.after.max.ms", "log.message.downconversion.enable", "log.local.retention.ms",
        "log.local.retention.bytes",
        "num.io.threads", "num.replica.fetchers", "num.recovery.threads.per.data.dir", "background.threads",
        "metric.reporters",
        .. ListenerKeys,
        "max.connections.per.ip", "max.connections.per.ip.overrides",
        "producer.id.expiration.ms", "transaction.partition.verification.enable",
        "remote.log.index.file.cache.total.size.bytes", "remote.fetch.max.wait.ms",
        "remote.log.manager.copy.max.bytes.per.second", "remote.log.manager.fetch.max.bytes.per.second",
        "remote.list.offsets.request.timeout.ms",
    ], StringComparer.Ordinal);

    /// <summary>QuotaConfigs.brokerQuotaConfigs: dynamic broker keys outside AllDynamicConfigs
    /// (so DescribeConfigs still calls them read-only, as upstream does).</summary>
    public static readonly IReadOnlySet<string> BrokerQuotaKeys = new HashSet<string>(StringComparer.Ordinal)
    {
        "leader.replication.throttled.rate", "follower.replication.throttled.rate", "replica.alter.log.dirs.io.max.bytes.per.second",
    };

    /// <summary>DynamicBrokerConfig.PerBrokerConfigs: settable for one broker id only, never as the
    /// cluster default (security and listener keys except the cluster-level listener limits).</summary>
    public static readonly IReadOnlySet<string> PerBrokerKeys = new HashSet<string>(
        ListenerOnlySecurityKeys.Concat(ListenerKeys).Where(k => !ClusterLevelListenerKeys.Contains(k)), StringComparer.Ordinal);

    public static readonly IReadOnlyDictionary<string, ConfigDefinition> Broker = Build(
        // Topic-default keys; upstream lets all of these change dynamically (DynamicLogConfig).
        new("log.segment.bytes", ConfigType.Int, "1073741824", AtLeast(14), dynamic: true),
        new("log.roll.ms", ConfigType.Long, null, dynamic: true),
        new("log.roll.hours", ConfigType.Int, "168", AtLeast(1)),
        new("log.roll.jitter.ms", ConfigType.Long, null, dynamic: true),
        new("log.roll.jitter.hours", ConfigType.Int, "0", AtLeast(0)),
        new("log.index.size.max.bytes", ConfigType.Int, "10485760", AtLeast(4), dynamic: true),
        new("log.flush.interval.messages", ConfigType.Long, LongMax, AtLeast(1), dynamic: true),
        new("log.flush.interval.ms", ConfigType.Long, null, dynamic: true),
        new("log.flush.scheduler.interval.ms", ConfigType.Long, LongMax),
        new("log.retention.bytes", ConfigType.Long, "-1", dynamic: true),
        new("log.retention.ms", ConfigType.Long, null, dynamic: true),
        new("log.retention.minutes", ConfigType.Int, null),
        new("log.retention.hours", ConfigType.Int, "168"),
        new("message.max.bytes", ConfigType.Int, "1048588", AtLeast(0), dynamic: true),
        new("log.index.interval.bytes", ConfigType.Int, "4096", AtLeast(0), dynamic: true),
        new("log.cleaner.delete.retention.ms", ConfigType.Long, "86400000", AtLeast(0), dynamic: true),
        new("log.cleaner.min.compaction.lag.ms", ConfigType.Long, "0", AtLeast(0), dynamic: true),
        new("log.cleaner.max.compaction.lag.ms", ConfigType.Long, LongMax, AtLeast(1), dynamic: true),
        new("log.segment.delete.delay.ms", ConfigType.Long, "60000", AtLeast(0), dynamic: true),
        new("log.cleaner.min.cleanable.ratio", ConfigType.Double, "0.5", Between(0, 1), dynamic: true),
        new("log.cleanup.policy", ConfigType.List, "delete", ListOf("compact", "delete"), dynamic: true),
        new("unclean.leader.election.enable", ConfigType.Boolean, "false", dynamic: true),
        new("min.insync.replicas", ConfigType.Int, "1", AtLeast(1), dynamic: true),
        new("compression.type", ConfigType.String, "producer", OneOf(BrokerCompressionTypes), dynamic: true),
        new("compression.gzip.level", ConfigType.Int, "-1", GzipLevel, dynamic: true),
        new("compression.lz4.level", ConfigType.Int, "9", Between(1, 17), dynamic: true),
        new("compression.zstd.level", ConfigType.Int, "3", Between(-131072, 22), dynamic: true),
        new("log.preallocate", ConfigType.Boolean, "false", dynamic: true),
        new("log.message.format.version", ConfigType.String, "3.0-IV1", MetadataVersionString),
        new("log.message.timestamp.type", ConfigType.String, "CreateTime", OneOf("CreateTime", "LogAppendTime"), dynamic: true),
        new("log.message.timestamp.difference.max.ms", ConfigType.Long, LongMax, AtLeast(0), dynamic: true),
        new("log.message.timestamp.before.max.ms", ConfigType.Long, LongMax, AtLeast(0), dynamic: true),
        new("log.message.timestamp.after.max.ms", ConfigType.Long, LongMax, AtLeast(0), dynamic: true),
        new("log.message.downconversion.enable", ConfigType.Boolean, "true", dynamic: true),
        new("log.local.retention.ms", ConfigType.Long, "-2", AtLeast(-2), dynamic: true),
        new("log.local.retention.bytes", ConfigType.Long, "-2", AtLeast(-2), dynamic: true),
        // General server keys.
        new("broker.id", ConfigType.Int, "-1"),
        new("node.id", ConfigType.Int, "-1"),
        new("broker.id.generation.enable", ConfigType.Boolean, "true"),
        new("reserved.broker.max.id", ConfigType.Int, "1000", AtLeast(0)),
        new("broker.rack", ConfigType.String, null),
        // Samsa's own (issue #20): Prometheus text at http://samsa.metrics.host:samsa.metrics.port/metrics;
        // -1 (the default) serves none, 0 an ephemeral port (Telemetry/BrokerMetrics).
        new("samsa.metrics.port", ConfigType.Int, "-1", AtLeast(-1)),
        new("samsa.metrics.host", ConfigType.String, "0.0.0.0"),
        // The web console (issue #20; `samsa broker` serves it, Samsa.Host/Console): -1 (the default)
        // none, 0 an ephemeral port; it talks to this broker's first listener and zookeeper.connect.
        new("samsa.console.port", ConfigType.Int, "-1", Between(-1, 65535)),
        new("samsa.console.host", ConfigType.String, "0.0.0.0"),
        // Samsa's own (issue #20): the live request tap at /tap on the metrics listener (Tap/RequestTap).
        new("samsa.tap.enabled", ConfigType.Boolean, "false"),
        new("samsa.tap.entries.per.connection", ConfigType.Int, "50", AtLeast(1)),
        new("samsa.tap.connections", ConfigType.Int, "200", AtLeast(1)),
        new("process.roles", ConfigType.List, "", ListOf("broker", "controller")),
        new("zookeeper.connect", ConfigType.String, null),
        new("zookeeper.session.timeout.ms", ConfigType.Int, "18000"),
        new("zookeeper.connection.timeout.ms", ConfigType.Int, null),
        new("zookeeper.max.in.flight.requests", ConfigType.Int, "10", AtLeast(1)),
        new("zookeeper.set.acl", ConfigType.Boolean, "false"),
        // ZooKeeper client TLS (KIP-515), applied by Cluster/ZooKeeper/ZkClientSecurity
        new("zookeeper.ssl.client.enable", ConfigType.Boolean, "false"),
        new("zookeeper.clientCnxnSocket", ConfigType.String, null),
        new("zookeeper.ssl.keystore.location", ConfigType.String, null),
        new("zookeeper.ssl.keystore.password", ConfigType.Password, null),
        new("zookeeper.ssl.keystore.type", ConfigType.String, null),
        new("zookeeper.ssl.truststore.location", ConfigType.String, null),
        new("zookeeper.ssl.truststore.password", ConfigType.Password, null),
        new("zookeeper.ssl.truststore.type", ConfigType.String, null),
        new("zookeeper.ssl.protocol", ConfigType.String, "TLSv1.2"),
        new("zookeeper.ssl.enabled.protocols", ConfigType.List, null),
        new("zookeeper.ssl.cipher.suites", ConfigType.List, null),
        new("zookeeper.ssl.endpoint.identification.algorithm", ConfigType.String, "HTTPS"),
        new("zookeeper.ssl.crl.enable", ConfigType.Boolean, "false"),
        new("zookeeper.ssl.ocsp.enable", ConfigType.Boolean, "false"),
        new("listeners", ConfigType.String, "PLAINTEXT://:9092", dynamic: true),
        new("advertised.listeners", ConfigType.String, null, dynamic: true),
        new("listener.security.protocol.map", ConfigType.String, "SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT", dynamic: true),
        new("inter.broker.listener.name", ConfigType.String, null),
        new("security.inter.broker.protocol", ConfigType.String, "PLAINTEXT"),
        new("inter.broker.protocol.version", ConfigType.String, "3.9-IV0"),
        new("log.dir", ConfigType.String, "/tmp/kafka-logs"),
        new("log.dirs", ConfigType.String, null),
        new("num.partitions", ConfigType.Int, "1", AtLeast(1)),
        new("default.replication.factor", ConfigType.Int, "1"),
        new("auto.create.topics.enable", ConfigType.Boolean, "true"),
        new("delete.topic.enable", ConfigType.Boolean, "true"),
        new("auto.leader.rebalance.enable", ConfigType.Boolean, "true"),
        new("leader.imbalance.check.interval.seconds", ConfigType.Long, "300", AtLeast(1)),
        new("leader.imbalance.per.broker.percentage", ConfigType.Int, "10"),
        new("num.network.threads", ConfigType.Int, "3", AtLeast(1), dynamic: true),
        new("num.io.threads", ConfigType.Int, "8", AtLeast(1), dynamic: true),
        new("background.threads", ConfigType.Int, "10", AtLeast(1), dynamic: true),
        new("num.recovery.threads.per.data.dir", ConfigType.Int, "1", AtLeast(1), dynamic: true),
        new("num.replica.fetchers", ConfigType.Int, "1", dynamic: true),
        new("queued.max.requests", ConfigType.Int, "500", AtLeast(1)),
        new("queued.max.request.bytes", ConfigType.Long, "-1"),
        new("request.timeout.ms", ConfigType.Int, "30000", AtLeast(0)),
        new("socket.send.buffer.bytes", ConfigType.Int, "102400"),
        new("socket.receive.buffer.bytes", ConfigType.Int, "102400"),
        new("socket.request.max.bytes", ConfigType.Int, "104857600", AtLeast(1)),
        new("socket.listen.backlog.size", ConfigType.Int, "50", AtLeast(1)),
        new("max.connections", ConfigType.Int, IntMax, AtLeast(0), dynamic: true),
        new("max.connections.per.ip", ConfigType.Int, IntMax, AtLeast(0), dynamic: true),
        new("max.connections.per.ip.overrides", ConfigType.String, "", dynamic: true),
        new("connections.max.idle.ms", ConfigType.Long, "600000"),
        new("log.retention.check.interval.ms", ConfigType.Long, "300000", AtLeast(1)),
        new("log.cleaner.enable", ConfigType.Boolean, "true"),
        new("log.cleaner.backoff.ms", ConfigType.Long, "15000", AtLeast(0), dynamic: true),
        new("log.cleaner.threads", ConfigType.Int, "1", AtLeast(0), dynamic: true),
        new("log.flush.offset.checkpoint.interval.ms", ConfigType.Int, "60000", AtLeast(0)),
        new("log.flush.start.offset.checkpoint.interval.ms", ConfigType.Int, "60000", AtLeast(0)),
        new("fetch.max.bytes", ConfigType.Int, "57671680", AtLeast(1024)),
        new("max.incremental.fetch.session.cache.slots", ConfigType.Int, "1000", AtLeast(0)),
        new("replica.lag.time.max.ms", ConfigType.Long, "30000"),
        new("replica.fetch.max.bytes", ConfigType.Int, "1048576", AtLeast(0)),
        new("replica.selector.class", ConfigType.String, null),
        new("replica.fetch.wait.max.ms", ConfigType.Int, "500"),
        new("replica.fetch.backoff.ms", ConfigType.Int, "1000", AtLeast(0)),
        new("replica.fetch.min.bytes", ConfigType.Int, "1"),
        new("replica.fetch.response.max.bytes", ConfigType.Int, "10485760", AtLeast(0)),
        new("replica.socket.timeout.ms", ConfigType.Int, "30000"),
        new("replica.high.watermark.checkpoint.interval.ms", ConfigType.Long, "5000"),
        // Replication throttles (KIP-73): upstream keeps the rates as dynamic broker configs only
        // (DynamicConfig.Broker); Samsa also reads them from server.properties. Unset = unlimited.
        new("leader.replication.throttled.rate", ConfigType.Long, LongMax, AtLeast(0), dynamic: true),
        new("follower.replication.throttled.rate", ConfigType.Long, LongMax, AtLeast(0), dynamic: true),
        // AlterReplicaLogDirs copy rate (Storage/LogManager.Move.cs), dynamic as upstream's.
        new("replica.alter.log.dirs.io.max.bytes.per.second", ConfigType.Long, LongMax, AtLeast(0), dynamic: true),
        new("replication.quota.window.num", ConfigType.Int, "11", AtLeast(1)),
        new("replication.quota.window.size.seconds", ConfigType.Int, "1", AtLeast(1)),
        // Client quotas (QuotaConfig; Security/Quotas).
        new("quota.window.num", ConfigType.Int, "11", AtLeast(1)),
        new("quota.window.size.seconds", ConfigType.Int, "1", AtLeast(1)),
        new("controller.quota.window.num", ConfigType.Int, "11", AtLeast(1)),
        new("controller.quota.window.size.seconds", ConfigType.Int, "1", AtLeast(1)),
        new("controlled.shutdown.enable", ConfigType.Boolean, "true"),
        new("controlled.shutdown.max.retries", ConfigType.Int, "3"),
        new("controlled.shutdown.retry.backoff.ms", ConfigType.Long, "5000"),
        new("group.min.session.timeout.ms", ConfigType.Int, "6000"),
        new("group.max.session.timeout.ms", ConfigType.Int, "1800000"),
        new("group.initial.rebalance.delay.ms", ConfigType.Int, "3000"),
        new("group.max.size", ConfigType.Int, IntMax, AtLeast(1)),
        // KIP-848 consumer groups (GroupCoordinatorConfig, Groups/GroupCoordinator.Consumer.cs).
        // The bounds between the session and heartbeat keys are checked in GroupCoordinatorConfig.From.
        new("group.consumer.session.timeout.ms", ConfigType.Int, "45000", AtLeast(1)),
        new("group.consumer.min.session.timeout.ms", ConfigType.Int, "45000", AtLeast(1)),
        new("group.consumer.max.session.timeout.ms", ConfigType.Int, "60000", AtLeast(1)),
        new("group.consumer.heartbeat.interval.ms", ConfigType.Int, "5000", AtLeast(1)),
        new("group.consumer.min.heartbeat.interval.ms", ConfigType.Int, "5000", AtLeast(1)),
        new("group.consumer.max.heartbeat.interval.ms", ConfigType.Int, "15000", AtLeast(1)),
        new("group.consumer.max.size", ConfigType.Int, IntMax, AtLeast(1)),
        new("group.consumer.assignors", ConfigType.List, "uniform,range"),
        // Online conversion between classic and consumer groups (upstream's ConsumerGroupMigrationPolicy,
        // matched case-insensitively as upstream's CaseInsensitiveValidString).
        new("group.consumer.migration.policy", ConfigType.String, "bidirectional", o =>
            new[] { "disabled", "upgrade", "downgrade", "bidirectional" }.Contains(((string)o).ToLowerInvariant())
                ? null : "String must be one of (case insensitive): DISABLED, DOWNGRADE, UPGRADE, BIDIRECTIONAL"),
        // KIP-1071 streams groups (GroupCoordinatorConfig's group.streams.* keys, Groups/Streams);
        // the bounds between them are checked in GroupCoordinatorConfig.From as upstream's constructor does.
        new("group.streams.session.timeout.ms", ConfigType.Int, "45000", AtLeast(1)),
        new("group.streams.min.session.timeout.ms", ConfigType.Int, "45000", AtLeast(1)),
        new("group.streams.max.session.timeout.ms", ConfigType.Int, "60000", AtLeast(1)),
        new("group.streams.heartbeat.interval.ms", ConfigType.Int, "5000", AtLeast(1)),
        new("group.streams.min.heartbeat.interval.ms", ConfigType.Int, "5000", AtLeast(1)),
        new("group.streams.max.heartbeat.interval.ms", ConfigType.Int, "15000", AtLeast(1)),
        new("group.streams.max.size", ConfigType.Int, IntMax, AtLeast(1)),
        new("group.streams.num.standby.replicas", ConfigType.Int, "0", AtLeast(0)),
        new("group.streams.max.standby.replicas", ConfigType.Int, "2", AtLeast(0)),
        new("offsets.topic.num.partitions", ConfigType.Int, "50", AtLeast(1)),
        new("offsets.topic.replication.factor", ConfigType.Short, "3", AtLeast(1)),
        new("offsets.topic.segment.bytes", ConfigType.Int, "104857600", AtLeast(1)),
        new("offsets.retention.minutes", ConfigType.Int, "10080", AtLeast(1)),
        new("offsets.retention.check.interval.ms", ConfigType.Long, "600000", AtLeast(1)),
        new("offsets.commit.timeout.ms", ConfigType.Int, "5000", AtLeast(1)),
        new("offset.metadata.max.bytes", ConfigType.Int, "4096"),
        new("transaction.state.log.num.partitions", ConfigType.Int, "50", AtLeast(1)),
        new("transaction.state.log.replication.factor", ConfigType.Short, "3", AtLeast(1)),
        new("transaction.state.log.min.isr", ConfigType.Int, "2", AtLeast(1)),
        new("transaction.state.log.segment.bytes", ConfigType.Int, "104857600", AtLeast(1)),
        new("transactional.id.expiration.ms", ConfigType.Int, "604800000", AtLeast(1)),
        new("transaction.max.timeout.ms", ConfigType.Int, "900000", AtLeast(1)),
        new("transaction.abort.timed.out.transaction.cleanup.interval.ms", ConfigType.Int, "10000", AtLeast(1)),
        new("transaction.remove.expired.transaction.cleanup.interval.ms", ConfigType.Int, "3600000", AtLeast(1)),
        // KIP-890 part 1: partition leaders ask the coordinator before a transaction's first batch (dynamic upstream).
        new("transaction.partition.verification.enable", ConfigType.Boolean, "true", dynamic: true),
        new("producer.id.expiration.ms", ConfigType.Int, "86400000", AtLeast(1), dynamic: true),
        // Internal upstream (TransactionLogConfig.defineInternal): how often logs drop expired producers.
        new("producer.id.expiration.check.interval.ms", ConfigType.Int, "600000", AtLeast(1)),
        new("authorizer.class.name", ConfigType.String, ""),
        // AclAuthorizer's own keys (Security/Acl/AclAuthorizer).
        new("super.users", ConfigType.String, null),
        new("allow.everyone.if.no.acl.found", ConfigType.String, "false"),
        new("create.topic.policy.class.name", ConfigType.Class, null),
        new("alter.config.policy.class.name", ConfigType.Class, null),
        new("sasl.enabled.mechanisms", ConfigType.List, "GSSAPI", dynamic: true),
        // Delegation tokens (Security/Tokens), defaults as upstream's KafkaConfig.
        new("delegation.token.secret.key", ConfigType.Password, null),
        new("delegation.token.master.key", ConfigType.Password, null),
        new("delegation.token.max.lifetime.ms", ConfigType.Long, "604800000", AtLeast(1)),
        new("delegation.token.expiry.time.ms", ConfigType.Long, "86400000", AtLeast(1)),
        new("delegation.token.expiry.check.interval.ms", ConfigType.Long, "3600000", AtLeast(1)),
        new("sasl.jaas.config", ConfigType.Password, null, dynamic: true),
        // TLS (Security/SslSettings.cs); defaults as upstream's SslConfigs / BrokerSecurityConfigs.
        new("ssl.keystore.type", ConfigType.String, "JKS", dynamic: true),
        new("ssl.keystore.key", ConfigType.Password, null, dynamic: true),
        new("ssl.keystore.certificate.chain", ConfigType.Password, null, dynamic: true),
        new("ssl.truststore.type", ConfigType.String, "JKS", dynamic: true),
        new("ssl.truststore.certificates", ConfigType.Password, null, dynamic: true),
        new("ssl.client.auth", ConfigType.String, "none", OneOf("required", "requested", "none"), dynamic: true),
        new("ssl.enabled.protocols", ConfigType.List, "TLSv1.2,TLSv1.3", dynamic: true),
        new("ssl.protocol", ConfigType.String, "TLSv1.3", dynamic: true),
        new("ssl.cipher.suites", ConfigType.List, "", dynamic: true),
        new("ssl.endpoint.identification.algorithm", ConfigType.String, "https", dynamic: true),
        new("ssl.principal.mapping.rules", ConfigType.String, "DEFAULT"),
        new("principal.builder.class", ConfigType.Class, null, dynamic: true),
        new("ssl.provider", ConfigType.String, null, dynamic: true),
        new("ssl.keymanager.algorithm", ConfigType.String, "SunX509", dynamic: true),
        new("ssl.trustmanager.algorithm", ConfigType.String, "PKIX", dynamic: true),
        new("ssl.secure.random.implementation", ConfigType.String, null, dynamic: true),
        new("ssl.engine.factory.class", ConfigType.Class, null, dynamic: true),
        // SASL server side (Security/Sasl): KIP-152/368 re-authentication, KIP-306 failed-auth delay.
        new("connections.max.reauth.ms", ConfigType.Long, "0"),
        new("connection.failed.authentication.delay.ms", ConfigType.Int, "100", AtLeast(0)),
        new("sasl.server.max.receive.size", ConfigType.Int, "524288"),
        new("sasl.mechanism.inter.broker.protocol", ConfigType.String, "GSSAPI", dynamic: true),
        new("ssl.keystore.location", ConfigType.String, null, dynamic: true),
        new("ssl.keystore.password", ConfigType.Password, null, dynamic: true),
        new("ssl.key.password", ConfigType.Password, null, dynamic: true),
        new("ssl.truststore.location", ConfigType.String, null, dynamic: true),
        new("ssl.truststore.password", ConfigType.Password, null, dynamic: true));

    private static Dictionary<string, ConfigDefinition> Build(params ConfigDefinition[] defs) =>
        defs.ToDictionary(d => d.Name, StringComparer.Ordinal);
}
