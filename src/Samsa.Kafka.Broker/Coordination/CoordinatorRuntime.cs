using Samsa.Kafka.Broker.Cluster;
using Samsa.Kafka.Broker.Groups;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Primitives;
using Samsa.Kafka.Protocol.Records;

namespace Samsa.Kafka.Broker.Coordination;

/// <summary>What a coordinator tells its runtime about the internal-topic partitions it serves.</summary>
public interface ICoordinatorShards<TEntry>
{
    void SetPartitionCount(int partitions);
    /// <summary>Starts owning a partition in the loading state; the load generation, or null when already owned/loading.</summary>
    int? BeginLoading(int partition, int coordinatorEpoch);
    void LoadPartition(int partition, IEnumerable<TEntry> entries, int generation);
    void Unload(int partition);
}

/// <summary>
/// What the group and the transaction coordinator share (upstream's coordinator-common
/// CoordinatorRuntime / CoordinatorLoaderImpl): a coordinator's state is the replay of the records
/// in an internal compacted topic (<c>__consumer_offsets</c>, <c>__transaction_state</c>). This
/// class creates that topic, replays each of its partitions when this broker becomes the partition's
/// leader (and has the coordinator drop it when leadership moves away), and appends new records as
/// one uncompressed batch, only while this broker leads the partition.
/// </summary>
/// <typeparam name="TEntry">One decoded record (key plus value, or a tombstone).</typeparam>
public sealed class CoordinatorRuntime<TEntry> where TEntry : class
{
    // Each read of the log asks for this much; a batch larger than it is still returned whole.
    private const int ReadChunkBytes = 5 * 1024 * 1024;

    private readonly ReplicaManager _replicas;
    private readonly Func<byte[], byte[]?, TEntry?> _decode;
    private readonly Action<string>? _log;

    /// <param name="decode">Turns a record's key and value (null for a tombstone) into an entry; null
    /// skips a record of a type the coordinator does not keep. Throws KafkaProtocolException on
    /// malformed bytes.</param>
    public CoordinatorRuntime(ReplicaManager replicas, string topic, Func<byte[], byte[]?, TEntry?> decode, Action<string>? log)
    {
        _replicas = replicas;
        Topic = topic;
        _decode = decode;
        _log = log;
    }

    /// <summary>When set, a record of a transactional batch is handed to replay as this wraps it
    /// (its producer id given), and each COMMIT/ABORT marker as <see cref="DecodeMarker"/> makes it;
    /// otherwise transactional records replay as plain ones and markers are skipped.</summary>
    public Func<TEntry, long, TEntry>? WrapTransactional { get; init; }
    public Func<long, bool, TEntry>? DecodeMarker { get; init; }

    /// <summary>The internal topic's name.</summary>
    public string Topic { get; }

    private readonly object _ownershipGate = new();
    private Task? _creation;

    /// <summary>
    /// Makes the coordinator serve exactly the partitions of the internal topic this broker leads
    /// (upstream's onElection / onResignation, driven here by every applied cluster view and, on a
    /// single broker, by start-up and creation): newly led partitions are replayed (an empty one at
    /// once, others in the background), partitions led elsewhere now are unloaded.
    /// </summary>
    public void SyncOwnership(ICoordinatorShards<TEntry> shards)
    {
        lock (_ownershipGate)
        {
            var topic = _replicas.GetTopic(Topic);
            if (topic is null) return;
            shards.SetPartitionCount(topic.Partitions.Count);
            foreach (var partition in topic.Partitions.ToArray())
            {
                if (!(partition.IsLeader && partition.IsHostedLocally))
                {
                    shards.Unload(partition.Index);
                    continue;
                }
                if (shards.BeginLoading(partition.Index, partition.LeaderEpoch) is not int generation) continue;
                if (partition.Log.LogEndOffset <= partition.Log.LogStartOffset)
                    shards.LoadPartition(partition.Index, [], generation);
                else
                    _ = Task.Run(() => Load(shards, partition, generation));
            }
        }
    }

    private void Load(ICoordinatorShards<TEntry> shards, Partition partition, int generation)
    {
        var started = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            var entries = ReadPartition(partition);
            shards.LoadPartition(partition.Index, entries, generation);
            _log?.Invoke($"loaded {entries.Count} records of {partition.TopicPartition} in {started.ElapsedMilliseconds} ms");
        }
        catch (Exception e)
        {
            // A partition that cannot be read stays "loading": its keys get
            // COORDINATOR_LOAD_IN_PROGRESS rather than silently losing their state.
            _log?.Invoke($"failed to load {partition.TopicPartition}: {e}");
        }
    }

    /// <summary>
    /// Makes sure the internal topic exists (FindCoordinator, InitProducerId, Metadata naming it), as
    /// upstream's AutoTopicCreationManager: None when it exists. On a single broker it is created
    /// here and now. In ZooKeeper mode the creation runs in the background and the caller answers
    /// COORDINATOR_NOT_AVAILABLE meanwhile, as upstream does while the topic is being created; a
    /// creation that fails (fewer live brokers than the replication factor) is logged and tried
    /// again on a later request.
    /// </summary>
    public (ErrorCode Error, string? Message) EnsureTopic(int partitions, short replicationFactor, IReadOnlyDictionary<string, string> configs,
        Action created)
    {
        if (_replicas.GetTopic(Topic) is not null) return (ErrorCode.None, null);
        if (_replicas.ClusterStore is null)
        {
            lock (_ownershipGate)
            {
                if (_replicas.GetTopic(Topic) is not null) return (ErrorCode.None, null);
                var (error, message, topic) = _replicas.CreateTopic(Topic, partitions, replicationFactor, configs, validateOnly: false);
                if (error != ErrorCode.None || topic is null)
                {
                    _log?.Invoke($"cannot create {Topic}: {error} {message}");
                    return (ErrorCode.CoordinatorNotAvailable, message);
                }
            }
            created();
            return (ErrorCode.None, null);
        }
        lock (_ownershipGate)
        {
            if (_creation is null || _creation.IsCompleted)
            {
                _creation = Task.Run(() =>
                {
                    var (error, message, _) = _replicas.CreateTopic(Topic, partitions, replicationFactor, configs, validateOnly: false);
                    if (error is not (ErrorCode.None or ErrorCode.TopicAlreadyExists))
                        _log?.Invoke($"cannot create {Topic}: {error} {message}");
                    else
                        created();
                });
            }
        }
        return (ErrorCode.CoordinatorNotAvailable, "The coordinator is not available.");
    }

    /// <summary>Every record of one partition up to its log end, in offset order, decoded.
    /// Control batches are skipped; malformed records are skipped (and logged) so one bad record
    /// cannot keep a partition from loading.</summary>
    public List<TEntry> ReadPartition(Partition partition)
    {
        var entries = new List<TEntry>();
        long offset = partition.Log.LogStartOffset;
        // Up to the log end, as upstream's loader: a new leader's high watermark may still lag
        // records its predecessor acknowledged.
        long end = partition.Log.LogEndOffset;
        while (offset < end)
        {
            var data = partition.Log.Read(offset, ReadChunkBytes, end, minOneBatch: true).Records;
            if (data.Length == 0) break;
            long next = offset;
            foreach (var batch in RecordBatch.Enumerate(data.Span, allowTruncatedTail: true))
            {
                next = batch.NextOffset;
                if (batch.IsControl)
                {
                    if (DecodeMarker is null || batch.BaseOffset < offset) continue;
                    foreach (var record in batch.GetRecords())
                    {
                        if (record.IsKeyNull) continue;
                        var type = ControlRecords.ParseType(record.Key);
                        if (type is ControlRecordType.Commit or ControlRecordType.Abort)
                            entries.Add(DecodeMarker(batch.ProducerId, type == ControlRecordType.Commit));
                    }
                    continue;
                }
                bool transactional = batch.IsTransactional && WrapTransactional is not null;
                long producerId = batch.ProducerId;
                foreach (var record in batch.GetRecords())
                {
                    if (record.Offset < offset || record.IsKeyNull) continue;
                    try
                    {
                        byte[]? value = record.IsValueNull ? null : record.Value.ToArray();
                        if (_decode(record.Key.ToArray(), value) is { } entry)
                            entries.Add(transactional ? WrapTransactional!(entry, producerId) : entry);
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

    /// <summary>Appends the records to one partition of the topic as one uncompressed batch, as the
    /// leader's append of a produce request; the broker error of the append (None on success).</summary>
    /// <param name="producerId">With a producer id (≥ 0) the batch is transactional for that producer
    /// and epoch (TxnOffsetCommit), without sequence numbers, as upstream's coordinator writes it.</param>
    public ErrorCode Append(int partition, IReadOnlyList<CoordinatorRecord> records, long producerId = -1, short producerEpoch = -1)
    {
        var p = _replicas.GetPartition(Topic, partition);
        // Only the leader appends: a follower's log takes records from its leader only.
        if (p is null || !p.IsLeader || !p.IsHostedLocally) return ErrorCode.NotLeaderOrFollower;
        using var builder = new RecordBatchBuilder();
        if (producerId >= 0)
        {
            builder.ProducerId = producerId;
            builder.ProducerEpoch = producerEpoch;
            builder.IsTransactional = true;
        }
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        foreach (var r in records) builder.Append(now, r.Key, r.Value);
        try
        {
            var (error, _, _, _) = _replicas.Append(p, builder.Build(), produceVersion: 9);
            return error;
        }
        catch (IOException)
        {
            return ErrorCode.KafkaStorageError;
        }
    }
}
