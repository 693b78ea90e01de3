using System.Globalization;

namespace Samsa.Kafka.Broker.Config;

/// <summary>One entry of a DescribeConfigs answer, independent of the wire message.</summary>
public sealed record ConfigEntry(
    string Name, string? Value, ConfigSource Source, bool Sensitive, bool ReadOnly, ConfigType Type,
    IReadOnlyList<ConfigSynonymEntry> Synonyms);

public sealed record ConfigSynonymEntry(string Name, string? Value, ConfigSource Source);

/// <summary>
/// The broker's configuration: the static server.properties keys plus dynamic per-broker and
/// cluster-default keys (AlterConfigs on a BROKER resource), resolved in upstream's order
/// (dynamic broker, dynamic default, static, default). Also derives the topic defaults
/// (KafkaConfig.extractLogConfigMap) and describes configs the way ConfigHelper does.
/// </summary>
public sealed class BrokerConfig
{
    private readonly Dictionary<string, string> _static;
    private readonly Dictionary<string, string> _dynamicBroker = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _dynamicDefault = new(StringComparer.Ordinal);
    private readonly object _gate = new();

    /// <summary>Validates every known key (upstream refuses to start on a bad value).</summary>
    public BrokerConfig(IReadOnlyDictionary<string, string> staticProps)
    {
        _static = new Dictionary<string, string>(staticProps, StringComparer.Ordinal);
        foreach (var (k, v) in _static)
            if (ConfigCatalog.Broker.TryGetValue(k, out var def)) def.Parse(v);
        // upstream KafkaConfig.validateValues, the relations between replica keys
        if ((int)Get("replica.fetch.wait.max.ms")! > (int)Get("replica.socket.timeout.ms")!)
            throw new ConfigValueException("replica.socket.timeout.ms should always be at least replica.fetch.wait.max.ms to prevent unnecessary socket timeouts");
        if ((int)Get("replica.fetch.wait.max.ms")! > (long)Get("replica.lag.time.max.ms")!)
            throw new ConfigValueException("replica.fetch.wait.max.ms should always be less than or equal to replica.lag.time.max.ms to prevent frequent changes in ISR");
    }

    public static BrokerConfig Load(string path, IEnumerable<KeyValuePair<string, string>>? overrides = null)
    {
        var props = JavaProperties.Load(path);
        if (overrides is not null) foreach (var (k, v) in overrides) props[k] = v;
        return new BrokerConfig(props);
    }

    public IReadOnlyDictionary<string, string> StaticProps => _static;

    /// <summary>The effective string value of a broker key, or null when unset and without default.</summary>
    public string? GetString(string name)
    {
        lock (_gate)
        {
            if (_dynamicBroker.TryGetValue(name, out var v)) return v;
            if (_dynamicDefault.TryGetValue(name, out v)) return v;
        }
        if (_static.TryGetValue(name, out var s)) return s;
        return ConfigCatalog.Broker.TryGetValue(name, out var def) ? def.Default : null;
    }

    public object? Get(string name)
    {
        var s = GetString(name);
        if (s is null) return null;
        return ConfigCatalog.Broker.TryGetValue(name, out var def) ? def.Parse(s) : s;
    }

    private int Int(string name) => (int)Get(name)!;
    private bool Bool(string name) => (bool)Get(name)!;

    /// <summary>broker.id, falling back to node.id (KRaft name) when only that is set.</summary>
    public int BrokerId
    {
        get
        {
            int id = Int("broker.id");
            return id >= 0 ? id : Int("node.id");
        }
    }
    public int NumPartitions => Int("num.partitions");
    public short DefaultReplicationFactor => (short)Int("default.replication.factor");
    public bool AutoCreateTopicsEnable => Bool("auto.create.topics.enable");
    public bool DeleteTopicEnable => Bool("delete.topic.enable");
    public int SocketRequestMaxBytes => Int("socket.request.max.bytes");
    public int FetchMaxBytes => Int("fetch.max.bytes");
    public int FetchSessionCacheSlots => Int("max.incremental.fetch.session.cache.slots");
    public string? ZookeeperConnect => GetString("zookeeper.connect");
    public string? Rack => GetString("broker.rack");

    /// <summary>log.dirs wins over log.dir (comma separated in both).</summary>
    public IReadOnlyList<string> LogDirs =>
        (GetString("log.dirs") ?? GetString("log.dir")!).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    public IReadOnlyList<ListenerEndpoint> Listeners => ListenerEndpoint.ParseList(GetString("listeners")!);
    public IReadOnlyList<ListenerEndpoint> AdvertisedListeners =>
        GetString("advertised.listeners") is { } adv ? ListenerEndpoint.ParseList(adv) : Listeners;

    /// <summary>The broker-supplied default of one topic key: the first configured broker synonym
    /// (converted to the topic key's unit), else the topic key's own default.</summary>
    public (string? Value, string? FromKey, ConfigSource Source) TopicDefault(string topicKey)
    {
        if (ConfigCatalog.TopicSynonyms.TryGetValue(topicKey, out var synonyms))
        {
            foreach (var syn in synonyms)
            {
                var (value, source) = ExplicitBrokerValue(syn.Name);
                if (value is null) continue;
                return (Convert(value, syn), syn.Name, source);
            }
            // No explicit value: the first synonym with a default (log.retention.hours=168 → retention.ms).
            foreach (var syn in synonyms)
            {
                var def = ConfigCatalog.Broker[syn.Name].Default;
                if (def is not null) return (Convert(def, syn), syn.Name, ConfigSource.DefaultConfig);
            }
        }
        return (ConfigCatalog.Topic[topicKey].Default, null, ConfigSource.DefaultConfig);
    }

    private static string Convert(string value, ConfigSynonym syn) =>
        syn.Multiplier == 1 ? value :
        (long.Parse(value.Trim(), CultureInfo.InvariantCulture) * syn.Multiplier).ToString(CultureInfo.InvariantCulture);

    private (string? Value, ConfigSource Source) ExplicitBrokerValue(string key)
    {
        lock (_gate)
        {
            if (_dynamicBroker.TryGetValue(key, out var v)) return (v, ConfigSource.DynamicBrokerConfig);
            if (_dynamicDefault.TryGetValue(key, out v)) return (v, ConfigSource.DynamicDefaultBrokerConfig);
        }
        if (_static.TryGetValue(key, out var s)) return (s, ConfigSource.StaticBrokerConfig);
        return (null, ConfigSource.Unknown);
    }

    /// <summary>The effective config of a topic given its overrides.</summary>
    public LogConfig LogConfigFor(IReadOnlyDictionary<string, string> topicOverrides)
    {
        var values = new Dictionary<string, object>(StringComparer.Ordinal);
        foreach (var (name, def) in ConfigCatalog.Topic)
        {
            string? raw = topicOverrides.TryGetValue(name, out var o) ? o : TopicDefault(name).Value;
            values[name] = raw is null ? null! : def.Parse(raw);
        }
        return new LogConfig(values);
    }

    // ---- DescribeConfigs ----

    /// <summary>Topic entries as ConfigHelper.createTopicConfigEntry builds them: source is the
    /// first synonym's (topic override, then broker keys), DEFAULT_CONFIG when none applies.</summary>
    public List<ConfigEntry> DescribeTopic(IReadOnlyDictionary<string, string> topicOverrides, IReadOnlyCollection<string>? keys, bool includeSynonyms)
    {
        var log = LogConfigFor(topicOverrides);
        var result = new List<ConfigEntry>();
        foreach (var (name, def) in ConfigCatalog.Topic.OrderBy(k => k.Key, StringComparer.Ordinal))
        {
            if (keys is { Count: > 0 } && !keys.Contains(name)) continue;
            var value = def.Sensitive ? null : ConfigDefinition.Format(log.Values[name]);
            var synonyms = new List<ConfigSynonymEntry>();
            if (topicOverrides.ContainsKey(name))
                synonyms.Add(new(name, value, ConfigSource.DynamicTopicConfig));
            if (ConfigCatalog.TopicSynonyms.TryGetValue(name, out var syns))
                synonyms.AddRange(BrokerSynonymEntries(syns[0].Name, def.Sensitive));
            var source = synonyms.Count == 0 ? ConfigSource.DefaultConfig : synonyms[0].Source;
            result.Add(new ConfigEntry(name, value, source, def.Sensitive, false, def.Type,
                includeSynonyms ? synonyms : []));
        }
        return result;
    }

    /// <summary>Broker entries for this broker (per-broker view) or the cluster default view
    /// (empty resource name: only dynamic default keys), as ConfigHelper.createBrokerConfigEntry.</summary>
    public List<ConfigEntry> DescribeBroker(bool perBroker, IReadOnlyCollection<string>? keys, bool includeSynonyms)
    {
        var names = new SortedSet<string>(StringComparer.Ordinal);
        if (perBroker)
        {
            // Upstream lists every defined key, null-valued ones included (AbstractConfig.nonInternalValues).
            foreach (var name in ConfigCatalog.Broker.Keys) if (!ConfigCatalog.InternalBrokerKeys.Contains(name)) names.Add(name);
            foreach (var name in _static.Keys) names.Add(name);
            lock (_gate) { foreach (var n in _dynamicBroker.Keys) names.Add(n); foreach (var n in _dynamicDefault.Keys) names.Add(n); }
        }
        else
        {
            lock (_gate) foreach (var n in _dynamicDefault.Keys) names.Add(n);
        }
        var result = new List<ConfigEntry>();
        foreach (var name in names)
        {
            if (keys is { Count: > 0 } && !keys.Contains(name)) continue;
            ConfigCatalog.Broker.TryGetValue(name, out var def);
            // Upstream treats keys of unknown type as possibly sensitive (KafkaConfig.maybeSensitive).
            bool sensitive = def is null || def.Sensitive;
            var all = BrokerSynonymEntries(name, sensitive);
            if (!perBroker) all = all.Where(s => s.Source == ConfigSource.DynamicDefaultBrokerConfig).ToList();
            var source = all.Count == 0 ? ConfigSource.DefaultConfig : all[0].Source;
            string? value = sensitive ? null : perBroker ? GetString(name) : all.FirstOrDefault()?.Value;
            // ConfigHelper.createBrokerConfigEntry: read-only unless the name is in
            // DynamicBrokerConfig.AllDynamicConfigs (listener keys included: per broker).
            result.Add(new ConfigEntry(name, value, source, sensitive, !ConfigCatalog.DynamicBrokerKeys.Contains(name), def?.Type ?? ConfigType.Unknown,
                includeSynonyms ? all : []));
        }
        return result;
    }

    // ConfigHelper.configSynonyms: every set value of the key's synonym group, by source, then
    // dropping leading entries until the key itself (so an unset key reports no synonyms).
    private List<ConfigSynonymEntry> BrokerSynonymEntries(string key, bool sensitive)
    {
        var group = ConfigCatalog.BrokerSynonyms(key);
        var list = new List<ConfigSynonymEntry>();
        lock (_gate)
        {
            foreach (var n in group) if (_dynamicBroker.TryGetValue(n, out var v)) list.Add(new(n, sensitive ? null : v, ConfigSource.DynamicBrokerConfig));
            foreach (var n in group) if (_dynamicDefault.TryGetValue(n, out var v)) list.Add(new(n, sensitive ? null : v, ConfigSource.DynamicDefaultBrokerConfig));
        }
        foreach (var n in group) if (_static.TryGetValue(n, out var v)) list.Add(new(n, sensitive ? null : v, ConfigSource.StaticBrokerConfig));
        foreach (var n in group)
            if (ConfigCatalog.Broker.TryGetValue(n, out var d) && d.Default is not null)
                list.Add(new(n, sensitive ? null : d.Default, ConfigSource.DefaultConfig));
        int first = list.FindIndex(s => s.Name == key);
        return first < 0 ? [] : list.GetRange(first, list.Count - first);
    }

    // ---- AlterConfigs on BROKER resources ----

    /// <summary>
    /// Checks a dynamic broker update as upstream's DynamicBrokerConfig.validateConfigs (ZooKeeper
    /// mode) does; returns null when acceptable, else the message, which AlterConfigs and
    /// IncrementalAlterConfigs answer with INVALID_REQUEST (ConfigAdminManager.preprocess turns the
    /// ConfigException into InvalidRequestException). In order: broker keys that cannot change at
    /// run time; SSL keystore/truststore keys without a listener prefix; values that do not parse
    /// (listener-prefixed keys by their base key); per-broker keys sent for the cluster default.
    /// Names that are no broker config at all (a topic key such as cleanup.policy, a custom key)
    /// pass and are stored, as upstream accepts them.
    /// </summary>
    public static string? ValidateDynamicBrokerUpdate(IReadOnlyDictionary<string, string?> changes, bool perBroker = true)
    {
        var names = changes.Keys.ToList();
        var nonDynamic = names.Where(n => ConfigCatalog.Broker.ContainsKey(n)
            && !ConfigCatalog.DynamicBrokerKeys.Contains(n) && !ConfigCatalog.BrokerQuotaKeys.Contains(n)).ToList();
        if (nonDynamic.Count > 0) return $"Cannot update these configs dynamically: {ScalaSet(nonDynamic)}";
        var unprefixed = names.Where(ConfigCatalog.ListenerOnlySecurityKeys.Contains).ToList();
        if (unprefixed.Count > 0)
            return $"These security configs can be dynamically updated only per-listener using the listener prefix: {ScalaSet(unprefixed)}";
        foreach (var (name, value) in changes)
        {
            if (value is null || !ConfigCatalog.Broker.TryGetValue(ListenerBaseName(name) ?? name, out var def)) continue;
            try { def.Parse(value); }
            catch (ConfigValueException e) { return e.Message; }
            // Keys Samsa honours at their default only (config audit); the no-effect ones are stored.
            if (Security.SecurityConfigCheck.UnhonouredValue(name, value) is { } refused) return refused;
        }
        if (!perBroker)
        {
            var perBrokerOnly = names.Where(n => ConfigCatalog.PerBrokerKeys.Contains(n)
                || (ListenerBaseName(n) is { } b && !ConfigCatalog.ClusterLevelListenerKeys.Contains(b))).ToList();
            if (perBrokerOnly.Count > 0)
                return $"Cannot update these configs at default cluster level, broker id must be specified: {ScalaSet(perBrokerOnly)}";
        }
        return null;
    }

    // DynamicBrokerConfig.ListenerConfigRegex: listener.name.<listener>.<key> → <key>.
    internal static string? ListenerBaseName(string name)
    {
        const string prefix = "listener.name.";
        if (!name.StartsWith(prefix, StringComparison.Ordinal)) return null;
        int dot = name.IndexOf('.', prefix.Length);
        return dot < 0 ? null : name[(dot + 1)..];
    }

    // Scala's Set.toString, which upstream puts into these messages: Set(a, b) up to four
    // elements, HashSet(...) beyond. (Upstream's element order follows hashing; here it is the
    // request's order.)
    private static string ScalaSet(IReadOnlyCollection<string> names) =>
        $"{(names.Count <= 4 ? "Set" : "HashSet")}({string.Join(", ", names)})";

    /// <summary>Replaces (AlterConfigs) or patches (IncrementalAlterConfigs) the dynamic keys of
    /// this broker (perBroker) or the cluster default; null values delete.</summary>
    public void ApplyDynamic(bool perBroker, IReadOnlyDictionary<string, string?> changes, bool replaceAll)
    {
        lock (_gate)
        {
            var map = perBroker ? _dynamicBroker : _dynamicDefault;
            if (replaceAll) map.Clear();
            foreach (var (k, v) in changes)
            {
                if (v is null) map.Remove(k); else map[k] = v;
            }
        }
    }

    public IReadOnlyDictionary<string, string> DynamicConfigs(bool perBroker)
    {
        lock (_gate) return new Dictionary<string, string>(perBroker ? _dynamicBroker : _dynamicDefault);
    }
}

/// <summary>
/// Validation of topic overrides, shared by CreateTopics, AlterConfigs and IncrementalAlterConfigs
/// (LogConfig.validate): unknown names and bad values are INVALID_CONFIG with upstream's message.
/// </summary>
public static class TopicConfigValidator
{
    public static string? Validate(IReadOnlyDictionary<string, string> overrides, BrokerConfig broker)
    {
        foreach (var (name, value) in overrides)
        {
            if (!ConfigCatalog.Topic.TryGetValue(name, out var def))
                return $"Unknown topic config name: {name}";
            try { def.Parse(value); }
            catch (ConfigValueException e) { return e.Message; }
        }
        var log = broker.LogConfigFor(overrides);
        if (log.MinCompactionLagMs > log.MaxCompactionLagMs)
            return $"conflict topic config setting min.compaction.lag.ms ({log.MinCompactionLagMs}) > max.compaction.lag.ms ({log.MaxCompactionLagMs})";
        foreach (var (name, value) in overrides)
        {
            if (!Unhonoured.TryGetValue(name, out var reason)) continue;
            if (!ConfigCatalog.Topic[name].IsDefault(value)) return $"{name}={value.Trim()} is not supported: {reason}";
        }
        return null;
    }

    /// <summary>Topic keys Samsa honours at their default only (config audit, session 14): another
    /// value is INVALID_CONFIG instead of being stored and ignored.</summary>
    internal static readonly IReadOnlyDictionary<string, string> Unhonoured = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["max.compaction.lag.ms"] = "the log cleaner has no maximum compaction lag",
        ["preallocate"] = "segment files are not preallocated",
        ["remote.storage.enable"] = "tiered storage is not supported",
        ["local.retention.ms"] = "tiered storage is not supported",
        ["local.retention.bytes"] = "tiered storage is not supported",
        ["remote.log.copy.disable"] = "tiered storage is not supported",
        ["remote.log.delete.on.disable"] = "tiered storage is not supported",
    };
}

/// <summary>The resolved settings of one topic (upstream's LogConfig), typed.</summary>
public sealed class LogConfig(IReadOnlyDictionary<string, object> values)
{
    public IReadOnlyDictionary<string, object> Values { get; } = values;

    public int SegmentBytes => (int)Values["segment.bytes"];
    public long SegmentMs => (long)Values["segment.ms"];
    public int SegmentIndexBytes => (int)Values["segment.index.bytes"];
    public int IndexIntervalBytes => (int)Values["index.interval.bytes"];
    public long RetentionMs => (long)Values["retention.ms"];
    public long RetentionBytes => (long)Values["retention.bytes"];
    public int MaxMessageBytes => (int)Values["max.message.bytes"];
    public long MinCompactionLagMs => (long)Values["min.compaction.lag.ms"];
    public long MaxCompactionLagMs => (long)Values["max.compaction.lag.ms"];
    public long DeleteRetentionMs => (long)Values["delete.retention.ms"];
    public IReadOnlyList<string> CleanupPolicy => (List<string>)Values["cleanup.policy"];
    public bool Compact => CleanupPolicy.Contains("compact");
    public bool Delete => CleanupPolicy.Contains("delete");
    public int MinInSyncReplicas => (int)Values["min.insync.replicas"];
    /// <summary>One of uncompressed, zstd, lz4, snappy, gzip, producer.</summary>
    public string CompressionType => (string)Values["compression.type"];
    public int GzipLevel => (int)Values["compression.gzip.level"];
    public int Lz4Level => (int)Values["compression.lz4.level"];
    public int ZstdLevel => (int)Values["compression.zstd.level"];
    public bool LogAppendTime => (string)Values["message.timestamp.type"] == "LogAppendTime";
    public bool Preallocate => (bool)Values["preallocate"];
    public long FlushMessages => (long)Values["flush.messages"];
    public long FlushMs => (long)Values["flush.ms"];

    // Upstream keeps honouring the deprecated difference.max.ms while before/after are at default.
    public long TimestampBeforeMaxMs =>
        (long)Values["message.timestamp.before.max.ms"] != long.MaxValue ? (long)Values["message.timestamp.before.max.ms"] : (long)Values["message.timestamp.difference.max.ms"];
    public long TimestampAfterMaxMs =>
        (long)Values["message.timestamp.after.max.ms"] != long.MaxValue ? (long)Values["message.timestamp.after.max.ms"] : (long)Values["message.timestamp.difference.max.ms"];
}

/// <summary>One entry of listeners / advertised.listeners: NAME://host:port.</summary>
public sealed record ListenerEndpoint(string ListenerName, string Host, int Port)
{
    public static IReadOnlyList<ListenerEndpoint> ParseList(string value)
    {
        var list = new List<ListenerEndpoint>();
        foreach (var part in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int sep = part.IndexOf("://", StringComparison.Ordinal);
            if (sep <= 0) throw new ConfigValueException($"Unable to parse {part} to a broker endpoint");
            var name = part[..sep];
            var rest = part[(sep + 3)..];
            int colon = rest.LastIndexOf(':');
            if (colon < 0 || !int.TryParse(rest[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port > 65535)
                throw new ConfigValueException($"Unable to parse {part} to a broker endpoint");
            var host = rest[..colon];
            if (host.StartsWith('[') && host.EndsWith(']')) host = host[1..^1];
            list.Add(new ListenerEndpoint(name, host, port));
        }
        return list;
    }
}
