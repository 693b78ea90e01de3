using Samsa.Kafka.Broker.Cluster;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Broker.Coordination;
using Samsa.Kafka.Broker.Groups;
using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Records;

namespace Samsa.Kafka.Broker.Transactions;

/// <summary>
/// Runs the transaction coordinator inside the broker: creates <c>__transaction_state</c> on first
/// need (compacted, transaction.state.log.num.partitions / replication.factor / segment.bytes, as
/// upstream's AutoTopicCreationManager does), replays it when the broker starts, appends the
/// coordinator's records to it, writes transaction markers to the data partitions, and ticks the
/// timeouts. Producer ids come from <see cref="ProducerIdManager"/>, whose block file lives in the
/// first log directory.
/// </summary>
public sealed class TransactionCoordinatorService : IDisposable
{
    public const string ProducerIdBlockFile = "samsa-producer-id-block";
    private readonly ReplicaManager _replicas;
    private readonly GroupCoordinatorService _groups;
    private readonly Action<string>? _log;
    private readonly object _createGate = new();
    private readonly CoordinatorRuntime<TransactionLogEntry> _runtime;
    private IDisposable? _ticker;

    public TransactionCoordinatorService(BrokerConfig config, ReplicaManager replicas, GroupCoordinatorService groups, bool persistent,
        Action<string>? log = null, Func<long>? clock = null)
    {
        _replicas = replicas;
        _groups = groups;
        _log = log;
        _runtime = new CoordinatorRuntime<TransactionLogEntry>(replicas, TopicName.TransactionStateTopic,
            (key, value) => TransactionRecords.Decode(key, value is null ? null : new ReadOnlyMemory<byte>(value)), log);
        ProducerIds = new ProducerIdManager(persistent ? Path.Combine(config.LogDirs[0], ProducerIdBlockFile) : null);
        Coordinator = new TransactionCoordinator(TransactionCoordinatorConfig.From(config), new Environment(this), ProducerIds,
            clock ?? (() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()), log);
    }

    public TransactionCoordinator Coordinator { get; }
    public ProducerIdManager ProducerIds { get; }

    /// <summary>Loads an existing transaction log and starts the timers.</summary>
    public void Start()
    {
        var topic = _replicas.GetTopic(TopicName.TransactionStateTopic);
        if (topic is not null)
        {
            Coordinator.Activate(topic.Partitions.Count, loading: true);
            _runtime.LoadInBackground(topic, Coordinator.LoadPartition);
        }
        int interval = Math.Clamp(Coordinator.Config.AbortTimedOutTransactionsIntervalMs, 10, 1000);
        _ticker = Coordinator.StartTicking(TimeSpan.FromMilliseconds(interval));
    }

    /// <summary>Makes sure the transaction log exists (FindCoordinator for a transactional id,
    /// InitProducerId). Upstream answers COORDINATOR_NOT_AVAILABLE while it cannot be created
    /// (replication factor above the live brokers — set transaction.state.log.replication.factor=1).</summary>
    public (ErrorCode Error, string? Message) EnsureTransactionLog()
    {
        if (Coordinator.IsActive) return (ErrorCode.None, null);
        lock (_createGate)
        {
            if (Coordinator.IsActive) return (ErrorCode.None, null);
            if (_replicas.GetTopic(TopicName.TransactionStateTopic) is { } existing)
            {
                // Created but not activated: only while Start has not run yet.
                return (ErrorCode.CoordinatorLoadInProgress, null);
            }
            var cfg = Coordinator.Config;
            var configs = new Dictionary<string, string>
            {
                ["cleanup.policy"] = "compact",
                ["segment.bytes"] = cfg.TransactionLogSegmentBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["compression.type"] = "uncompressed",
            };
            var (error, message, topic) = _replicas.CreateTopic(TopicName.TransactionStateTopic, cfg.TransactionLogPartitions,
                cfg.TransactionLogReplicationFactor, configs, validateOnly: false);
            if (error != ErrorCode.None || topic is null)
            {
                _log?.Invoke($"cannot create {TopicName.TransactionStateTopic}: {error} {message}");
                return (ErrorCode.CoordinatorNotAvailable, message);
            }
            Coordinator.Activate(topic.Partitions.Count, loading: false);
            return (ErrorCode.None, null);
        }
    }

    public void Dispose() => _ticker?.Dispose();

    private sealed class Environment(TransactionCoordinatorService service) : ITransactionEnvironment
    {
        private ReplicaManager Replicas => service._replicas;

        public ErrorCode AppendState(int partition, byte[] key, byte[]? value) =>
            service._runtime.Append(partition, [new CoordinatorRecord(key, value)]);

        public ErrorCode WriteMarker(TopicPartition tp, long producerId, short producerEpoch, int coordinatorEpoch, bool commit)
        {
            var p = Replicas.GetPartition(tp.Topic, tp.Partition);
            if (p is null) return ErrorCode.UnknownTopicOrPartition;
            var batch = ControlRecords.BuildEndTxnMarkerBatch(commit ? ControlRecordType.Commit : ControlRecordType.Abort,
                producerId, producerEpoch, coordinatorEpoch, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
            try
            {
                var (error, _, _, _) = Replicas.Append(p, batch, produceVersion: 9);
                return error;
            }
            catch (IOException)
            {
                return ErrorCode.KafkaStorageError;
            }
        }

        public ErrorCode CommitOffsets(string groupId, IReadOnlyList<OffsetCommitEntry> offsets) =>
            service._groups.Coordinator.CommitTransactionalOffsets(groupId, offsets);

        public bool PartitionExists(TopicPartition tp) => Replicas.GetPartition(tp.Topic, tp.Partition) is not null;

        public TopicPartition? OffsetsPartitionFor(string groupId)
        {
            if (service._groups.EnsureOffsetsTopic().Error != ErrorCode.None) return null;
            return new TopicPartition(TopicName.GroupMetadataTopic, service._groups.Coordinator.PartitionFor(groupId));
        }
    }
}
