using Samsa.Kafka.Broker.Cluster;
using Samsa.Kafka.Broker.Groups;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Primitives;
using Samsa.Kafka.Protocol.Records;

namespace Samsa.Kafka.Broker.Coordination;

/// <summary>
/// What the group and the transaction coordinator share (upstream's coordinator-common
/// CoordinatorRuntime / CoordinatorLoaderImpl): a coordinator's state is the replay of the records
/// in an internal compacted topic (<c>__consumer_offsets</c>, <c>__transaction_state</c>). This
/// class reads a partition of that topic back as decoded entries, replays every partition in the
/// background when the broker starts, and appends new records as one uncompressed batch.
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

    /// <summary>The internal topic's name.</summary>
    public string Topic { get; }

    /// <summary>Replays every partition of <paramref name="topic"/> on the thread pool, in partition
    /// order, handing each partition's entries to <paramref name="load"/>.</summary>
    public void LoadInBackground(TopicState topic, Action<int, List<TEntry>> load) => _ = Task.Run(() => LoadAll(topic, load));

    private void LoadAll(TopicState topic, Action<int, List<TEntry>> load)
    {
        foreach (var partition in topic.Partitions)
        {
            try
            {
                load(partition.Index, ReadPartition(partition));
            }
            catch (Exception e)
            {
                // A partition that cannot be read stays "loading": its keys get
                // COORDINATOR_LOAD_IN_PROGRESS rather than silently losing their state.
                _log?.Invoke($"failed to load {partition.TopicPartition}: {e}");
            }
        }
    }

    /// <summary>Every record of one partition up to its high watermark, in offset order, decoded.
    /// Control batches are skipped; malformed records are skipped (and logged) so one bad record
    /// cannot keep a partition from loading.</summary>
    public List<TEntry> ReadPartition(Partition partition)
    {
        var entries = new List<TEntry>();
        long offset = partition.Log.LogStartOffset;
        long end = partition.HighWatermark;
        while (offset < end)
        {
            var data = partition.Log.Read(offset, ReadChunkBytes, end, minOneBatch: true).Records;
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
                        byte[]? value = record.IsValueNull ? null : record.Value.ToArray();
                        if (_decode(record.Key.ToArray(), value) is { } entry) entries.Add(entry);
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
    public ErrorCode Append(int partition, IReadOnlyList<CoordinatorRecord> records)
    {
        var p = _replicas.GetPartition(Topic, partition);
        if (p is null) return ErrorCode.NotLeaderOrFollower;
        using var builder = new RecordBatchBuilder();
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
