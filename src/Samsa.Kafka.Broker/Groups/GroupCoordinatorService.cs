using Samsa.Kafka.Broker.Cluster;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Primitives;
using Samsa.Kafka.Protocol.Records;

namespace Samsa.Kafka.Broker.Groups;

/// <summary>
/// Runs the group coordinator inside the broker: creates <c>__consumer_offsets</c> on first
/// FindCoordinator (as upstream's AutoTopicCreationManager does for internal topics: compacted,
/// offsets.topic.num.partitions / replication.factor / segment.bytes), replays it when the broker
/// starts (each partition answers COORDINATOR_LOAD_IN_PROGRESS until loaded), appends the
/// coordinator's records to it, and ticks the coordinator's timers.
/// </summary>
public sealed class GroupCoordinatorService : IDisposable
{
    private readonly ReplicaManager _replicas;
    private readonly Action<string>? _log;
    private readonly object _createGate = new();
    private IDisposable? _ticker;

    public GroupCoordinatorService(BrokerConfig config, ReplicaManager replicas, Action<string>? log = null, Func<long>? clock = null)
    {
        _replicas = replicas;
        _log = log;
        Coordinator = new GroupCoordinator(GroupCoordinatorConfig.From(config), new OffsetsTopicLog(replicas),
            clock ?? (() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()), log);
        replicas.TopicDeleted += OnTopicDeleted;
    }

    /// <summary>A deleted topic's committed offsets are tombstoned in every group (upstream's
    /// handleDeletedPartitions), so a topic created again under the same name starts with none.</summary>
    private void OnTopicDeleted(TopicState topic)
    {
        if (topic.Name == TopicName.GroupMetadataTopic) return;
        try { Coordinator.OnTopicDeleted(topic.Name); }
        catch (Exception e) { _log?.Invoke($"failed to remove committed offsets of deleted topic {topic.Name}: {e}"); }
    }

    public GroupCoordinator Coordinator { get; }

    /// <summary>Loads an existing offsets topic in the background and starts the timers.</summary>
    public void Start()
    {
        var topic = _replicas.GetTopic(TopicName.GroupMetadataTopic);
        if (topic is not null)
        {
            Coordinator.Activate(topic.Partitions.Count, loading: true);
            _ = Task.Run(() => LoadAll(topic));
        }
        _ticker = Coordinator.StartTicking(TimeSpan.FromMilliseconds(50));
    }

    private void LoadAll(TopicState topic)
    {
        foreach (var partition in topic.Partitions)
        {
            try
            {
                Coordinator.LoadPartition(partition.Index, ReadPartition(partition));
            }
            catch (Exception e)
            {
                // A partition that cannot be read stays "loading": its groups get
                // COORDINATOR_LOAD_IN_PROGRESS rather than silently losing their offsets.
                _log?.Invoke($"failed to load {partition.TopicPartition}: {e}");
            }
        }
    }

    /// <summary>Every record of one partition, in offset order, decoded. Malformed records are skipped
    /// (and logged) so one bad record cannot keep a partition from loading.</summary>
    private List<GroupLogEntry> ReadPartition(Partition partition)
    {
        var entries = new List<GroupLogEntry>();
        long offset = partition.Log.LogStartOffset;
        long end = partition.HighWatermark;
        while (offset < end)
        {
            var data = partition.Log.Read(offset, 5 * 1024 * 1024, end, minOneBatch: true).Records;
            if (data.Length == 0) break;
            long next = offset;
            foreach (var batch in RecordBatch.Enumerate(data.Span, allowTruncatedTail: true))
            {
                next = batch.NextOffset;
                if (batch.IsControl) continue;
                foreach (var record in batch.GetRecords())
                {
                    if (record.Offset < offset || record.IsKeyNull) continue;
                    try
                    {
                        var key = record.Key.ToArray();
                        byte[]? value = record.IsValueNull ? null : record.Value.ToArray();
                        if (GroupRecords.Decode(key, value) is { } entry) entries.Add(entry);
                    }
                    catch (KafkaProtocolException e)
                    {
                        _log?.Invoke($"skipping malformed record at {partition.TopicPartition}@{record.Offset}: {e.Message}");
                    }
                }
            }
            if (next <= offset) break;
            offset = next;
        }
        return entries;
    }

    /// <summary>FindCoordinator for a group: makes sure the offsets topic exists. Upstream answers
    /// COORDINATOR_NOT_AVAILABLE while it cannot be created (replication factor above the live
    /// brokers — set offsets.topic.replication.factor=1 on a single broker).</summary>
    public (ErrorCode Error, string? Message) EnsureOffsetsTopic()
    {
        if (_replicas.GetTopic(TopicName.GroupMetadataTopic) is not null) return (ErrorCode.None, null);
        lock (_createGate)
        {
            if (_replicas.GetTopic(TopicName.GroupMetadataTopic) is not null) return (ErrorCode.None, null);
            var cfg = Coordinator.Config;
            var configs = new Dictionary<string, string>
            {
                ["cleanup.policy"] = "compact",
                ["segment.bytes"] = cfg.OffsetsTopicSegmentBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["compression.type"] = "producer",
            };
            var (error, message, topic) = _replicas.CreateTopic(TopicName.GroupMetadataTopic, cfg.OffsetsTopicPartitions,
                cfg.OffsetsTopicReplicationFactor, configs, validateOnly: false);
            if (error != ErrorCode.None || topic is null)
            {
                _log?.Invoke($"cannot create {TopicName.GroupMetadataTopic}: {error} {message}");
                return (ErrorCode.CoordinatorNotAvailable, message);
            }
            Coordinator.Activate(topic.Partitions.Count, loading: false);
            return (ErrorCode.None, null);
        }
    }

    public void Dispose()
    {
        _replicas.TopicDeleted -= OnTopicDeleted;
        _ticker?.Dispose();
    }

    /// <summary>Appends coordinator records to a partition of the offsets topic as one uncompressed batch.</summary>
    private sealed class OffsetsTopicLog(ReplicaManager replicas) : IGroupMetadataLog
    {
        public ErrorCode Append(int partition, IReadOnlyList<CoordinatorRecord> records)
        {
            var p = replicas.GetPartition(TopicName.GroupMetadataTopic, partition);
            if (p is null) return ErrorCode.NotLeaderOrFollower;
            using var builder = new RecordBatchBuilder();
            long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            foreach (var r in records) builder.Append(now, r.Key, r.Value);
            var batch = builder.Build();
            try
            {
                var (error, _, _, _) = replicas.Append(p, batch, produceVersion: 9);
                return error;
            }
            catch (IOException)
            {
                return ErrorCode.KafkaStorageError;
            }
        }
    }
}
