using Samsa.Kafka.Broker.Cluster;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Broker.Coordination;
using Samsa.Kafka.Protocol;

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
    private readonly CoordinatorRuntime<GroupLogEntry> _runtime;
    private IDisposable? _ticker;

    public GroupCoordinatorService(BrokerConfig config, ReplicaManager replicas, Action<string>? log = null, Func<long>? clock = null)
    {
        _replicas = replicas;
        _log = log;
        _runtime = new CoordinatorRuntime<GroupLogEntry>(replicas, TopicName.GroupMetadataTopic, (key, value) => GroupRecords.Decode(key, value), log)
        {
            WrapTransactional = (entry, producerId) => entry is GroupLogEntry.Offset o ? new GroupLogEntry.TxnOffset(producerId, o) : entry,
            DecodeMarker = (producerId, commit) => new GroupLogEntry.TxnMarker(producerId, commit),
        };
        Coordinator = new GroupCoordinator(GroupCoordinatorConfig.From(config), new OffsetsTopicLog(_runtime, replicas),
            clock ?? (() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()), log);
        // KIP-848 consumer groups assign from the cluster's topics (ids and partition counts).
        Coordinator.TopicSource = () => replicas.Topics.Select(t => new TopicInfo(t.Name, t.Id, t.Partitions.Count)).ToList();
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

    /// <summary>Loads the offsets partitions this broker leads and starts the timers.</summary>
    /// <param name="loadNow">False in ZooKeeper mode: which partitions this broker leads is known
    /// only from the first applied cluster view, which then loads them.</param>
    public void Start(bool loadNow = true)
    {
        if (loadNow) SyncOwnership();
        _ticker = Coordinator.StartTicking(TimeSpan.FromMilliseconds(50));
    }

    /// <summary>Serves the groups of exactly the offsets partitions this broker leads (after every
    /// applied cluster view in ZooKeeper mode).</summary>
    public void SyncOwnership() => _runtime.SyncOwnership(Coordinator);

    /// <summary>FindCoordinator for a group (and Metadata naming the topic): makes sure the offsets
    /// topic exists — compacted, offsets.topic.num.partitions / replication.factor / segment.bytes.
    /// Upstream answers COORDINATOR_NOT_AVAILABLE while it cannot be created (replication factor above
    /// the live brokers — set offsets.topic.replication.factor=1 on a single broker) and while it is
    /// being created.</summary>
    public (ErrorCode Error, string? Message) EnsureOffsetsTopic()
    {
        var cfg = Coordinator.Config;
        var configs = new Dictionary<string, string>
        {
            ["cleanup.policy"] = "compact",
            ["segment.bytes"] = cfg.OffsetsTopicSegmentBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["compression.type"] = "producer",
        };
        return _runtime.EnsureTopic(cfg.OffsetsTopicPartitions, cfg.OffsetsTopicReplicationFactor, configs, SyncOwnership);
    }

    public void Dispose()
    {
        _replicas.TopicDeleted -= OnTopicDeleted;
        _ticker?.Dispose();
    }

    /// <summary>The coordinator's records go to a partition of the offsets topic as one batch. A
    /// successful append is recorded in the thread's <see cref="GroupWriteScope"/> with the log end
    /// after it, which the request's handler waits to see replicated.</summary>
    private sealed class OffsetsTopicLog(CoordinatorRuntime<GroupLogEntry> runtime, ReplicaManager replicas) : IGroupMetadataLog
    {
        public ErrorCode Append(int partition, IReadOnlyList<CoordinatorRecord> records) =>
            Recorded(partition, runtime.Append(partition, records));

        public ErrorCode AppendTransactional(int partition, IReadOnlyList<CoordinatorRecord> records, long producerId, short producerEpoch) =>
            Recorded(partition, runtime.Append(partition, records, producerId, producerEpoch));

        private ErrorCode Recorded(int partition, ErrorCode error)
        {
            if (error == ErrorCode.None && replicas.GetPartition(TopicName.GroupMetadataTopic, partition) is { } p)
                GroupWriteScope.Record(partition, p.Log.LogEndOffset);
            return error;
        }
    }
}
