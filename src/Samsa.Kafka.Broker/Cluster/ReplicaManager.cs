using System.Text.Json;
using System.Text.Json.Serialization;
using Samsa.Kafka.Broker.Cluster.ZooKeeper;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Protocol;

namespace Samsa.Kafka.Broker.Cluster;

/// <summary>One partition of a topic this broker knows: led here, followed here, or (ZooKeeper mode)
/// hosted elsewhere; a single-node broker leads every partition.</summary>
public sealed class Partition
{
    internal readonly object AppendLock = new();

    public Partition(TopicState topic, int index, IPartitionLog log, int leaderEpoch)
    {
        Topic = topic; Index = index; Log = log; LeaderEpoch = leaderEpoch;
    }

    public TopicState Topic { get; }
    public int Index { get; }
    /// <summary>The local log. A broker that is not an assigned replica holds an empty stand-in
    /// (<see cref="IsHostedLocally"/> false) with no files, as upstream keeps no log for it.</summary>
    public IPartitionLog Log { get; internal set; }
    /// <summary>False when this broker is not a replica of the partition and keeps no log files for it.</summary>
    public bool IsHostedLocally { get; internal set; } = true;
    public int LeaderEpoch { get; internal set; }
    public TopicPartition TopicPartition => new(Topic.Name, Index);

    // ZooKeeper mode (Cluster/ZooKeeper): the partition's state as the controller last wrote it.
    // Null in single-broker mode, where this broker is the only replica and the leader.
    public int? LeaderId { get; internal set; }
    public IReadOnlyList<int>? ReplicaNodes { get; internal set; }
    public IReadOnlyList<int>? IsrNodes { get; internal set; }
    /// <summary>False when another broker leads the partition: clients get NOT_LEADER_OR_FOLLOWER.</summary>
    public bool IsLeader { get; internal set; } = true;
    /// <summary>Consumers read below it. With one replica it follows the log end at every append;
    /// with more, Replication/ moves it to the smallest log end of the ISR.</summary>
    public long HighWatermark => Log.HighWatermark;
    /// <summary>True when only this broker's copy must hold a record for it to be committed.</summary>
    public bool IsSoleInSyncReplica => IsrNodes is null || IsrNodes.Count <= 1;
}

public sealed class TopicState
{
    public TopicState(string name, Guid id, IReadOnlyDictionary<string, string> configs, LogConfig logConfig)
    {
        Name = name; Id = id; Configs = configs; LogConfig = logConfig;
    }
    public string Name { get; }
    public Guid Id { get; }
    public bool IsInternal => TopicName.IsInternal(Name);
    public IReadOnlyDictionary<string, string> Configs { get; internal set; }
    public LogConfig LogConfig { get; internal set; }
    public List<Partition> Partitions { get; } = [];
}

/// <summary>Creates the log of one partition in a log directory.</summary>
public delegate IPartitionLog PartitionLogFactory(TopicPartition tp, Guid topicId, LogConfig config, string logDir);

/// <summary>
/// The topics and partitions of this broker and their logs; the one place that creates,
/// deletes and appends. Topic metadata (ids, partition counts, config overrides) is kept in
/// <c>samsa-topics.json</c> in the first log directory so a restart finds its topics; upstream
/// keeps the same facts in ZooKeeper (/brokers/topics, /config/topics).
/// </summary>
public sealed class ReplicaManager : IDisposable
{
    private readonly object _gate = new();
    private readonly Dictionary<string, TopicState> _topics = new(StringComparer.Ordinal);
    private readonly Dictionary<Guid, TopicState> _topicsById = new();
    private readonly PartitionLogFactory _logFactory;
    private readonly string? _metadataPath;

    public ReplicaManager(BrokerConfig config, PartitionLogFactory logFactory, bool persistent)
    {
        Config = config;
        _logFactory = logFactory;
        LogDirs = config.LogDirs;
        if (persistent)
        {
            foreach (var dir in LogDirs) Directory.CreateDirectory(dir);
            _metadataPath = Path.Combine(LogDirs[0], "samsa-topics.json");
            ClusterId = LoadOrCreateMetaProperties();
            Load();
        }
        else
        {
            ClusterId = KafkaUuid.ToBase64(KafkaUuid.NewTopicId());
        }
    }

    /// <summary>Most partitions one operation may add. Upstream's KRaft controller refuses operations
    /// producing more than 10000 records (QuorumController.MAX_RECORDS_PER_USER_OP) with
    /// POLICY_VIOLATION; the same bound keeps one request from creating unbounded files here.</summary>
    public const int MaxPartitionsPerOperation = 10_000;
    private const string ExcessivelyLarge = "Unable to perform excessively large batch operation.";

    public BrokerConfig Config { get; }
    public IReadOnlyList<string> LogDirs { get; }
    public string ClusterId { get; internal set; }

    /// <summary>Set in ZooKeeper mode: topic changes go to ZooKeeper and come back through the
    /// cluster member's watch, instead of changing the local state directly.</summary>
    public IClusterTopicStore? ClusterStore { get; set; }
    public int BrokerId => Config.BrokerId;

    /// <summary>Raised after records were appended to a partition (wakes long-polling fetches).</summary>
    public event Action<TopicPartition>? Appended;

    /// <summary>Raised after a topic's logs were removed, by DeleteTopics here or (ZooKeeper mode) by
    /// the controller's deletion reaching this broker; the group coordinator drops the topic's
    /// committed offsets (upstream's GroupCoordinator.onPartitionsDeleted).</summary>
    public event Action<TopicState>? TopicDeleted;

    public IReadOnlyList<TopicState> Topics { get { lock (_gate) return _topics.Values.ToList(); } }

    public TopicState? GetTopic(string name) { lock (_gate) return _topics.GetValueOrDefault(name); }
    public TopicState? GetTopic(Guid id) { lock (_gate) return _topicsById.GetValueOrDefault(id); }

    public Partition? GetPartition(string topic, int index)
    {
        var t = GetTopic(topic);
        if (t is null) return null;
        lock (_gate) return index >= 0 && index < t.Partitions.Count ? t.Partitions[index] : null;
    }

    /// <summary>Creates a topic; returns (error code, message). Validation of names, counts and
    /// configs follows upstream's AdminZkClient / ZkAdminManager.createTopics.</summary>
    public (ErrorCode Error, string? Message, TopicState? Topic) CreateTopic(string name, int partitions, short replicationFactor,
        IReadOnlyDictionary<string, string> configs, bool validateOnly, IReadOnlyDictionary<int, List<int>>? assignment = null)
    {
        if (TopicName.Validate(name) is { } bad) return (ErrorCode.InvalidTopicException, bad, null);
        if (partitions < 1) return (ErrorCode.InvalidPartitions, "Number of partitions must be larger than 0.", null);
        if (partitions > MaxPartitionsPerOperation) return (ErrorCode.PolicyViolation, ExcessivelyLarge, null);
        if (replicationFactor < 1) return (ErrorCode.InvalidReplicationFactor, "Replication factor must be larger than 0.", null);
        if (ClusterStore is { } store)
        {
            if (TopicConfigValidator.Validate(configs, Config) is { } problem) return (ErrorCode.InvalidConfig, problem, null);
            return store.CreateTopic(name, partitions, replicationFactor, configs, validateOnly, assignment);
        }
        if (replicationFactor > 1)
            return (ErrorCode.InvalidReplicationFactor, $"Replication factor: {replicationFactor} larger than available brokers: 1.", null);
        if (TopicConfigValidator.Validate(configs, Config) is { } configProblem) return (ErrorCode.InvalidConfig, configProblem, null);
        lock (_gate)
        {
            if (_topics.ContainsKey(name)) return (ErrorCode.TopicAlreadyExists, $"Topic '{name}' already exists.", null);
            var unified = TopicName.Unify(name);
            var collision = _topics.Keys.FirstOrDefault(t => TopicName.Unify(t) == unified);
            if (collision is not null)
                return (ErrorCode.InvalidTopicException, $"Topic '{name}' collides with existing topic: {collision}", null);
            if (validateOnly) return (ErrorCode.None, null, null);
            var topic = new TopicState(name, KafkaUuid.NewTopicId(), new Dictionary<string, string>(configs), Config.LogConfigFor(configs));
            AddPartitions(topic, partitions);
            _topics[name] = topic;
            _topicsById[topic.Id] = topic;
            Save();
            return (ErrorCode.None, null, topic);
        }
    }

    /// <summary>ZooKeeper mode: materializes a topic the controller created.</summary>
    internal TopicState CreateTopicLocal(string name, Guid id, int partitions, IReadOnlyDictionary<string, string> configs,
        Func<int, bool>? hosted = null)
    {
        lock (_gate)
        {
            var topic = new TopicState(name, id, new Dictionary<string, string>(configs), Config.LogConfigFor(configs));
            AddPartitions(topic, partitions, hosted);
            _topics[name] = topic;
            _topicsById[id] = topic;
            Save();
            return topic;
        }
    }

    internal void AddPartitionsLocal(TopicState topic, int total, Func<int, bool>? hosted = null)
    {
        lock (_gate)
        {
            AddPartitions(topic, total, hosted);
            Save();
        }
    }

    private void AddPartitions(TopicState topic, int total, Func<int, bool>? hosted = null)
    {
        for (int i = topic.Partitions.Count; i < total; i++)
        {
            if (hosted is not null && !hosted(i))
            {
                topic.Partitions.Add(new Partition(topic, i, NotHostedLog(), leaderEpoch: 0) { IsHostedLocally = false });
                continue;
            }
            var dir = PickLogDir();
            var log = _logFactory(new TopicPartition(topic.Name, i), topic.Id, topic.LogConfig, dir);
            topic.Partitions.Add(new Partition(topic, i, log, leaderEpoch: 0));
        }
    }

    // An empty in-memory log in no log directory: DescribeLogDirs lists nothing for it and no file exists.
    private static IPartitionLog NotHostedLog() => new MemoryPartitionLog(directory: "");

    /// <summary>ZooKeeper mode: this broker became an assigned replica (reassignment): an empty log
    /// in the least used log directory, filled by the replica fetcher from the leader's log start.</summary>
    internal void HostLocalReplica(Partition partition)
    {
        lock (_gate)
        {
            if (partition.IsHostedLocally) return;
            partition.Log = _logFactory(partition.TopicPartition, partition.Topic.Id, partition.Topic.LogConfig, PickLogDir());
            partition.IsHostedLocally = true;
            Save();
        }
    }

    /// <summary>ZooKeeper mode: this broker is no longer an assigned replica: the log and its
    /// directory are deleted (upstream StopReplica with deletePartition=true).</summary>
    internal void DropLocalReplica(Partition partition)
    {
        IPartitionLog old;
        lock (_gate)
        {
            if (!partition.IsHostedLocally) return;
            old = partition.Log;
            partition.Log = NotHostedLog();
            partition.IsHostedLocally = false;
            Save();
        }
        try { old.Delete(); } catch (IOException) { /* already gone */ }
        old.Dispose();
    }

    // Upstream places a new partition in the log directory holding the fewest partitions.
    private string PickLogDir()
    {
        var counts = LogDirs.ToDictionary(d => d, _ => 0);
        foreach (var t in _topics.Values)
            foreach (var p in t.Partitions)
                if (counts.ContainsKey(p.Log.Directory)) counts[p.Log.Directory]++;
        return counts.OrderBy(kv => kv.Value).First().Key;
    }

    /// <param name="assignment">The replicas of each added partition (CreatePartitions' explicit
    /// assignment, already checked against the live brokers), else chosen as upstream does.</param>
    public (ErrorCode Error, string? Message) CreatePartitions(string name, int newTotal, bool validateOnly, IReadOnlyList<List<int>>? assignment = null)
    {
        if (ClusterStore is { } store) return store.CreatePartitions(name, newTotal, validateOnly, assignment);
        lock (_gate)
        {
            if (!_topics.TryGetValue(name, out var topic))
                return (ErrorCode.UnknownTopicOrPartition, "This server does not host this topic-partition.");
            int current = topic.Partitions.Count;
            if (newTotal < current)
                return (ErrorCode.InvalidPartitions, $"Topic currently has {current} partitions, which is higher than the requested {newTotal}.");
            if (newTotal == current)
                return (ErrorCode.InvalidPartitions, $"Topic already has {current} partitions.");
            if (newTotal - current > MaxPartitionsPerOperation) return (ErrorCode.PolicyViolation, ExcessivelyLarge);
            if (validateOnly) return (ErrorCode.None, null);
            AddPartitions(topic, newTotal);
            Save();
            return (ErrorCode.None, null);
        }
    }

    public (ErrorCode Error, string? Message) DeleteTopic(string name) =>
        ClusterStore is { } store ? store.DeleteTopic(name) : DeleteTopicLocal(name);

    internal (ErrorCode Error, string? Message) DeleteTopicLocal(string name)
    {
        TopicState? topic;
        lock (_gate)
        {
            if (!_topics.Remove(name, out topic)) return (ErrorCode.UnknownTopicOrPartition, "This server does not host this topic-partition.");
            _topicsById.Remove(topic.Id);
            Save();
        }
        foreach (var p in topic.Partitions)
        {
            try { p.Log.Delete(); } catch (IOException) { /* files already gone: nothing left to delete */ }
            p.Log.Dispose();
        }
        TopicDeleted?.Invoke(topic);
        return (ErrorCode.None, null);
    }

    /// <summary>Replaces (AlterConfigs) the overrides of a topic after validating them.</summary>
    public (ErrorCode Error, string? Message) SetTopicConfigs(string name, IReadOnlyDictionary<string, string> overrides, bool validateOnly)
    {
        lock (_gate)
        {
            if (!_topics.TryGetValue(name, out var topic))
                return (ErrorCode.UnknownTopicOrPartition, "This server does not host this topic-partition.");
            if (TopicConfigValidator.Validate(overrides, Config) is { } problem) return (ErrorCode.InvalidConfig, problem);
            if (validateOnly) return (ErrorCode.None, null);
            if (ClusterStore is null)
            {
                topic.Configs = new Dictionary<string, string>(overrides);
                topic.LogConfig = Config.LogConfigFor(overrides);
                foreach (var p in topic.Partitions) p.Log.UpdateConfig(topic.LogConfig);
                Save();
                return (ErrorCode.None, null);
            }
        }
        // Outside the lock: the store waits for ZooKeeper and for the change to come back.
        return ClusterStore.SetTopicConfigs(name, overrides);
    }

    /// <summary>ZooKeeper mode: applies topic overrides read from /config/topics.</summary>
    internal void SetTopicConfigsLocal(TopicState topic, IReadOnlyDictionary<string, string> overrides)
    {
        lock (_gate)
        {
            topic.Configs = new Dictionary<string, string>(overrides);
            topic.LogConfig = Config.LogConfigFor(overrides);
            foreach (var p in topic.Partitions) p.Log.UpdateConfig(topic.LogConfig);
            Save();
        }
    }

    /// <summary>Re-resolves every topic's settings after a dynamic broker config changed, and keeps
    /// the dynamic configs for the next start.</summary>
    public void RefreshLogConfigs()
    {
        lock (_gate)
        {
            foreach (var t in _topics.Values)
            {
                t.LogConfig = Config.LogConfigFor(t.Configs);
                foreach (var p in t.Partitions) p.Log.UpdateConfig(t.LogConfig);
            }
            Save();
        }
    }

    /// <summary>Validates, stamps and appends produced records to one partition (leader append).
    /// The records are copied before they are stamped.</summary>
    public (ErrorCode Error, string? Message, LogAppendInfo Info, ValidatedRecords? Validated) Append(Partition partition, ReadOnlySpan<byte> records,
        short produceVersion) => Append(partition, records, Memory<byte>.Empty, produceVersion);

    /// <summary>A transaction marker's append, with its transaction's version for the marker epoch
    /// check (KIP-1228; see <see cref="IPartitionLog.AppendValidated"/>).</summary>
    public (ErrorCode Error, string? Message, LogAppendInfo Info, ValidatedRecords? Validated) AppendMarker(Partition partition, ReadOnlySpan<byte> records,
        short transactionVersion) => Append(partition, records, Memory<byte>.Empty, produceVersion: 9, markerTransactionVersion: transactionVersion);

    /// <summary>
    /// As <see cref="Append(Partition, ReadOnlySpan{byte}, short)"/> for records the caller owns and
    /// will not read again (a produce request's bytes while its handler runs): they are stamped
    /// and written to the log where they lie (ProduceValidator.ValidateInPlace), without a copy.
    /// </summary>
    /// <paramref name="verificationGuard"/>: see <see cref="IPartitionLog.AppendValidated"/> (KIP-890).
    public (ErrorCode Error, string? Message, LogAppendInfo Info, ValidatedRecords? Validated) AppendInPlace(Partition partition, Memory<byte> records,
        short produceVersion, Samsa.Kafka.Storage.VerificationGuard? verificationGuard = null) => Append(partition, records.Span, records, produceVersion, verificationGuard);

    private (ErrorCode Error, string? Message, LogAppendInfo Info, ValidatedRecords? Validated) Append(Partition partition, ReadOnlySpan<byte> records,
        Memory<byte> writable, short produceVersion, Samsa.Kafka.Storage.VerificationGuard? verificationGuard = null, short markerTransactionVersion = -1)
    {
        ValidatedRecords validated;
        LogAppendInfo info;
        lock (partition.AppendLock)
        {
            long next = partition.Log.LogEndOffset;
            long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            validated = writable.IsEmpty
                ? ProduceValidator.Validate(records, partition.Topic.LogConfig, next, partition.LeaderEpoch, now, produceVersion)
                : ProduceValidator.ValidateInPlace(writable, partition.Topic.LogConfig, next, partition.LeaderEpoch, now, produceVersion);
            if (validated.ErrorCode != 0) return ((ErrorCode)validated.ErrorCode, validated.ErrorMessage, default, validated);
            // A batch larger than a segment can never be written (RECORD_LIST_TOO_LARGE).
            if (validated.Batches.Length > partition.Topic.LogConfig.SegmentBytes)
                return (ErrorCode.RecordListTooLarge,
                    $"Message batch size is {validated.Batches.Length} bytes in append to partition {partition.TopicPartition} which exceeds the maximum configured segment size of {partition.Topic.LogConfig.SegmentBytes}.",
                    default, validated);
            long last = next + validated.LastOffsetDelta;
            long first;
            bool duplicate;
            try
            {
                (first, duplicate) = partition.Log.AppendValidated(validated.Batches, last, validated.MaxTimestamp,
                    next + validated.ShallowOffsetOfMaxTimestampDelta, partition.LeaderEpoch, verificationGuard, markerTransactionVersion);
            }
            catch (ProducerFencedOrOutOfOrderException e)
            {
                return (e.Error, e.Message, default, validated);
            }
            catch (Samsa.Kafka.Storage.InvalidBatchException e)
            {
                return (ErrorCode.CorruptMessage, e.Message, default, validated);
            }
            catch (Samsa.Kafka.Storage.RecordBatchTooLargeException e)
            {
                return (ErrorCode.RecordListTooLarge, e.Message, default, validated);
            }
            catch (IOException e)
            {
                // Upstream marks the log directory offline and answers KAFKA_STORAGE_ERROR.
                return (ErrorCode.KafkaStorageError, e.Message, default, validated);
            }
            // A duplicate (producer retry) answers with the first append's offset (KIP-98).
            info = new LogAppendInfo(first, duplicate ? first : last, duplicate ? -1 : validated.LogAppendTime, partition.Log.LogStartOffset);
            if (duplicate)
                return (ErrorCode.None, null, info, validated);
        }
        // Single in-sync replica: committed at once (upstream maybeIncrementLeaderHW with ISR={leader}).
        if (partition.IsSoleInSyncReplica) partition.Log.MaybeIncrementHighWatermark(partition.Log.LogEndOffset);
        Appended?.Invoke(partition.TopicPartition);
        return (ErrorCode.None, null, info, validated);
    }

    // ---- persistence ----

    internal sealed class MetadataFile
    {
        [JsonPropertyName("version")] public int Version { get; set; } = 1;
        [JsonPropertyName("topics")] public List<TopicRecord> Topics { get; set; } = [];
        // Dynamic broker configs (AlterConfigs on BROKER resources); upstream keeps them in
        // ZooKeeper under /config/brokers/<id> and /config/brokers/<default>.
        [JsonPropertyName("brokerConfigs")] public Dictionary<string, string> BrokerConfigs { get; set; } = [];
        [JsonPropertyName("clusterDefaultConfigs")] public Dictionary<string, string> ClusterDefaultConfigs { get; set; } = [];
    }

    internal sealed class TopicRecord
    {
        [JsonPropertyName("name")] public string Name { get; set; } = "";
        [JsonPropertyName("id")] public string Id { get; set; } = "";
        [JsonPropertyName("partitions")] public List<PartitionRecord> Partitions { get; set; } = [];
        [JsonPropertyName("configs")] public Dictionary<string, string> Configs { get; set; } = [];
    }

    internal sealed class PartitionRecord
    {
        [JsonPropertyName("dir")] public string Dir { get; set; } = "";
        [JsonPropertyName("leaderEpoch")] public int LeaderEpoch { get; set; }
        // False for a partition this broker is not a replica of (no files); absent in older files.
        [JsonPropertyName("hosted")] public bool Hosted { get; set; } = true;
    }

    private void Save()
    {
        if (_metadataPath is null) return;
        var file = new MetadataFile
        {
            BrokerConfigs = new Dictionary<string, string>(Config.DynamicConfigs(perBroker: true)),
            ClusterDefaultConfigs = new Dictionary<string, string>(Config.DynamicConfigs(perBroker: false)),
        };
        foreach (var t in _topics.Values.OrderBy(t => t.Name, StringComparer.Ordinal))
        {
            file.Topics.Add(new TopicRecord
            {
                Name = t.Name,
                Id = KafkaUuid.ToBase64(t.Id),
                Configs = new Dictionary<string, string>(t.Configs),
                Partitions = t.Partitions.Select(p => new PartitionRecord { Dir = p.Log.Directory, LeaderEpoch = p.LeaderEpoch, Hosted = p.IsHostedLocally }).ToList(),
            });
        }
        var tmp = _metadataPath + ".tmp";
        File.WriteAllText(tmp, JsonSerializer.Serialize(file, BrokerIndentedJsonContext.Default.MetadataFile));
        File.Move(tmp, _metadataPath, overwrite: true);
    }

    private void Load()
    {
        if (_metadataPath is null || !File.Exists(_metadataPath)) return;
        var file = JsonSerializer.Deserialize(File.ReadAllText(_metadataPath), BrokerIndentedJsonContext.Default.MetadataFile) ?? new MetadataFile();
        Config.ApplyDynamic(perBroker: true, file.BrokerConfigs.ToDictionary(kv => kv.Key, kv => (string?)kv.Value), replaceAll: true);
        Config.ApplyDynamic(perBroker: false, file.ClusterDefaultConfigs.ToDictionary(kv => kv.Key, kv => (string?)kv.Value), replaceAll: true);
        foreach (var rec in file.Topics)
        {
            if (!KafkaUuid.TryParse(rec.Id, out var id)) continue;
            var topic = new TopicState(rec.Name, id, rec.Configs, Config.LogConfigFor(rec.Configs));
            for (int i = 0; i < rec.Partitions.Count; i++)
            {
                if (!rec.Partitions[i].Hosted)
                {
                    topic.Partitions.Add(new Partition(topic, i, NotHostedLog(), rec.Partitions[i].LeaderEpoch) { IsHostedLocally = false });
                    continue;
                }
                var dir = LogDirs.Contains(rec.Partitions[i].Dir) ? rec.Partitions[i].Dir : LogDirs[0];
                var log = _logFactory(new TopicPartition(rec.Name, i), id, topic.LogConfig, dir);
                topic.Partitions.Add(new Partition(topic, i, log, rec.Partitions[i].LeaderEpoch));
            }
            _topics[rec.Name] = topic;
            _topicsById[id] = topic;
        }
    }

    // meta.properties in upstream's v0 (ZooKeeper mode) form; the cluster id is shared by all
    // dirs. A directory written for another broker.id is refused, as upstream refuses to start.
    // In ZooKeeper mode a new directory gets no cluster id of its own: as upstream
    // (KafkaServer.startup → checkpointBrokerMetadata) meta.properties is written with the id read
    // from /cluster/id (AdoptClusterId); until then the generated id is only a proposal.
    private string LoadOrCreateMetaProperties()
    {
        string? clusterId = null;
        var existing = new Dictionary<string, Dictionary<string, string>>();
        foreach (var dir in LogDirs)
        {
            var path = Path.Combine(dir, "meta.properties");
            if (!File.Exists(path)) continue;
            var props = JavaProperties.Load(path);
            existing[dir] = props;
            if (props.TryGetValue("broker.id", out var id) && id != Config.BrokerId.ToString(System.Globalization.CultureInfo.InvariantCulture))
                throw new InvalidOperationException($"log directory {dir} belongs to broker.id {id}, not {Config.BrokerId}");
            if (clusterId is null && props.TryGetValue("cluster.id", out var cid) && cid.Length > 0) clusterId = cid;
        }
        StoredClusterId = clusterId;
        if (clusterId is null && Config.ZookeeperConnect is { Length: > 0 })
            return KafkaUuid.ToBase64(KafkaUuid.NewTopicId());
        clusterId ??= KafkaUuid.ToBase64(KafkaUuid.NewTopicId());
        WriteMetaProperties(clusterId, existing);
        StoredClusterId = clusterId;
        return clusterId;
    }

    private void WriteMetaProperties(string clusterId, Dictionary<string, Dictionary<string, string>> existing)
    {
        foreach (var dir in LogDirs)
        {
            if (existing.TryGetValue(dir, out var props) && props.ContainsKey("cluster.id")) continue;
            File.WriteAllText(Path.Combine(dir, "meta.properties"),
                $"#\n#{DateTimeOffset.UtcNow:ddd MMM dd HH:mm:ss 'UTC' yyyy}\ncluster.id={clusterId}\nversion=0\nbroker.id={Config.BrokerId}\n");
        }
    }

    /// <summary>The cluster id found in meta.properties at start (or written since); null when none was stored yet.</summary>
    public string? StoredClusterId { get; private set; }

    /// <summary>
    /// ZooKeeper mode: the cluster id read from /cluster/id. The first one is written to
    /// meta.properties; a different one later is refused, as upstream's
    /// InconsistentClusterIdException (the broker is pointed at another cluster's ZooKeeper).
    /// </summary>
    internal void AdoptClusterId(string id)
    {
        lock (_gate)
        {
            if (StoredClusterId is { } stored && stored != id)
                throw new InconsistentClusterIdException(
                    $"The Cluster ID {id} doesn't match stored clusterId {stored} in meta.properties. The broker is trying to join the wrong cluster. Configured zookeeper.connect may be wrong.");
            if (StoredClusterId is null && _metadataPath is not null)
            {
                WriteMetaProperties(id, []);
                StoredClusterId = id;
            }
            ClusterId = id;
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            foreach (var t in _topics.Values)
                foreach (var p in t.Partitions)
                {
                    try { p.Log.Flush(); } catch (IOException) { }
                    p.Log.Dispose();
                }
        }
    }
}

/// <summary>The cluster id in ZooKeeper differs from the one in meta.properties (upstream InconsistentClusterIdException): the broker refuses to start.</summary>
public sealed class InconsistentClusterIdException(string message) : Exception(message);
