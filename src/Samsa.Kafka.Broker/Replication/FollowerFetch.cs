using Samsa.Kafka.Broker.Cluster;
using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Broker.Purgatory;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Records;

namespace Samsa.Kafka.Broker.Replication;

/// <summary>
/// The leader's answer to a follower's Fetch (replica_id ≥ 0; upstream ReplicaManager.fetchMessages
/// with a follower FetchParams): the fetch offset is the follower's log end and is recorded first
/// (it may move the high watermark or admit the follower to the ISR); data is read up to the log
/// end rather than the high watermark. A replica not assigned to the partition, or a fetch while
/// this broker does not lead, gets NOT_LEADER_OR_FOLLOWER; a stale or future current_leader_epoch
/// FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH. With nothing new the request waits in the fetch
/// purgatory up to max_wait_ms.
/// </summary>
internal static class FollowerFetch
{
    public static async ValueTask<IKafkaMessage?> HandleAsync(KafkaBroker broker, FetchRequest request, short v, int replicaId, bool fileRecords, CancellationToken ct)
    {
        var replication = broker.Replication;
        if (replication is null)
            return new FetchResponse { ErrorCode = (short)ErrorCode.NotLeaderOrFollower };
        fileRecords &= v >= 4;
        // The usual round under acks=all: a caught-up follower asks for the leader's log end. Its
        // position is recorded (moving the high watermark) and the fetch waits, without first
        // building an answer of empty partitions only to drop it.
        if (request.MaxWaitMs <= 0 || !RecordIfCaughtUp(broker, replication, request, v, replicaId))
        {
            var first = Read(broker, replication, request, v, replicaId, record: true, fileRecords, out int bytes, out bool anyError);
            if (request.MaxWaitMs <= 0 || bytes >= Math.Max(1, request.MinBytes) || anyError || first.Responses.Count == 0)
                return RecordThrottled(broker, replication, first, v);
            Network.FetchResponseFrames.Release(first);
        }
        var keys = new List<TopicPartition>();
        foreach (var t in request.Topics)
        {
            var name = v >= 13 ? broker.Replicas.GetTopic(t.TopicId)?.Name : t.Topic;
            if (name is null) continue;
            foreach (var p in t.Partitions) keys.Add(new TopicPartition(name, p.Partition));
        }
        var delayed = new DelayedFollowerFetch(broker, replication, request, v, replicaId, fileRecords, request.MaxWaitMs);
        broker.FetchPurgatory.TryCompleteElseWatch(delayed, keys);
        await Handlers.FetchHandler.WaitReleasingOnCancel(delayed, () => delayed.Response, ct);
        return RecordThrottled(broker, replication, delayed.Response!, v);
    }

    // Upstream ReplicationQuotaManager.record on the leader: the bytes of throttled partitions sent
    // to this follower count against leader.replication.throttled.rate once the response is final.
    private static FetchResponse RecordThrottled(KafkaBroker broker, ReplicationManager replication, FetchResponse response, short v)
    {
        long throttled = 0;
        foreach (var tr in response.Responses)
        {
            var topic = v >= 13 ? broker.Replicas.GetTopic(tr.TopicId) : broker.Replicas.GetTopic(tr.Topic);
            if (topic is null) continue;
            foreach (var pd in tr.Partitions)
            {
                if (pd.Records is not { Length: > 0 } records) continue;
                var partition = broker.Replicas.GetPartition(topic.Name, pd.PartitionIndex);
                if (partition is null || !replication.LeaderQuota.IsThrottled(partition)) continue;
                throttled += FileRecords.TryGet(records, out _, out _, out int fileLength) ? fileLength : records.Length;
            }
        }
        replication.LeaderQuota.Record(throttled);
        return response;
    }

    // Upstream shouldLeaderThrottle: only a follower outside the ISR of a throttled partition waits
    // for the quota; in-sync followers are never slowed, so acks=all latency is unaffected.
    private static bool ShouldLeaderThrottle(ReplicationManager replication, Partition partition, int replicaId) =>
        !(partition.IsrNodes?.Contains(replicaId) ?? false) && replication.LeaderQuota.IsThrottled(partition) && replication.LeaderQuota.IsQuotaExceeded;

    private sealed class DelayedFollowerFetch(KafkaBroker broker, ReplicationManager replication, FetchRequest request, short v, int replicaId, bool fileRecords, long delayMs)
        : DelayedOperation(delayMs, continueOnEventThread: true)
    {
        public FetchResponse? Response;

        public override bool TryComplete()
        {
            // Upstream DelayedFetch.tryComplete decides from log end offsets, not by reading: it is
            // called on every append to a watched partition (on the producer's request), so a
            // follower's min_bytes of 1 (replica.fetch.min.bytes default) is settled by "is the log
            // end past the fetch offset" without touching the segment files. Larger min_bytes
            // still count the bytes a read would return.
            if (request.MinBytes <= 1)
                return HasNewDataOrChange(broker, replication, request, v, replicaId) && ForceComplete();
            var probe = Read(broker, replication, request, v, replicaId, record: false, fileRecords, out int bytes, out bool anyError);
            Network.FetchResponseFrames.Release(probe);
            return (bytes >= Math.Max(1, request.MinBytes) || anyError) && ForceComplete();
        }

        // The follower's position was recorded by the first read; the answer carries the latest
        // high watermark so the follower learns what was committed meanwhile.
        protected override void OnComplete() => Response = Read(broker, replication, request, v, replicaId, record: false, fileRecords, out _, out _);
    }

    // True when every partition of the request is led here at the requested epoch and asks for
    // exactly the log end (what Read would answer with no bytes and no error), after recording
    // each as Read(record: true) does. False — nothing or only part recorded — sends the caller
    // to Read, which records (again: the same position, so no change) and answers.
    private static bool RecordIfCaughtUp(KafkaBroker broker, ReplicationManager replication, FetchRequest request, short v, int replicaId)
    {
        int partitions = 0;
        foreach (var ft in request.Topics)
        {
            TopicState? topic = v >= 13 ? broker.Replicas.GetTopic(ft.TopicId) : broker.Replicas.GetTopic(ft.Topic);
            if (topic is null) return false;
            foreach (var fp in ft.Partitions)
            {
                var partition = broker.Replicas.GetPartition(topic.Name, fp.Partition);
                if (partition is null || !partition.IsLeader) return false;
                if (fp.CurrentLeaderEpoch >= 0 && fp.CurrentLeaderEpoch != partition.LeaderEpoch) return false;
                if (fp.FetchOffset != partition.Log.LogEndOffset) return false;
                partitions++;
            }
        }
        if (partitions == 0) return false;
        foreach (var ft in request.Topics)
        {
            var name = v >= 13 ? broker.Replicas.GetTopic(ft.TopicId)?.Name : ft.Topic;
            if (name is null) return false;
            foreach (var fp in ft.Partitions)
            {
                var partition = broker.Replicas.GetPartition(name, fp.Partition);
                if (partition is null || !replication.OnFollowerFetch(partition, replicaId, fp.FetchOffset, fp.LogStartOffset)) return false;
            }
        }
        return true;
    }

    // True when Read would now return some bytes or an error for one of the request's partitions:
    // the same checks in the same order, with "the log end is past the fetch offset" in place of
    // the read itself (the read always returns at least one batch there: minOneBatch).
    private static bool HasNewDataOrChange(KafkaBroker broker, ReplicationManager replication, FetchRequest request, short v, int replicaId)
    {
        foreach (var ft in request.Topics)
        {
            TopicState? topic = v >= 13 ? broker.Replicas.GetTopic(ft.TopicId) : broker.Replicas.GetTopic(ft.Topic);
            foreach (var fp in ft.Partitions)
            {
                var partition = topic is null ? null : broker.Replicas.GetPartition(topic.Name, fp.Partition);
                if (partition is null || !partition.IsLeader) return true;
                if (fp.CurrentLeaderEpoch >= 0 && fp.CurrentLeaderEpoch != partition.LeaderEpoch) return true;
                var log = partition.Log;
                long leo = log.LogEndOffset;
                if (fp.FetchOffset < log.LogStartOffset || fp.FetchOffset > leo) return true;
                if (fp.FetchOffset < leo && !ShouldLeaderThrottle(replication, partition, replicaId)) return true;
            }
        }
        return false;
    }

    // With fileRecords the records are segment ranges the connection sends with zero copy (see
    // FetchHandler); the caller releases them.
    private static FetchResponse Read(KafkaBroker broker, ReplicationManager replication, FetchRequest request, short v, int replicaId, bool record,
        bool fileRecords, out int totalBytes, out bool anyError)
    {
        var response = new FetchResponse { SessionId = 0 };
        totalBytes = 0;
        anyError = false;
        int remaining = Math.Max(request.MaxBytes, 0);
        bool firstData = true;
        foreach (var ft in request.Topics)
        {
            TopicState? topic = v >= 13 ? broker.Replicas.GetTopic(ft.TopicId) : broker.Replicas.GetTopic(ft.Topic);
            var tr = new FetchResponse.FetchableTopicResponse { Topic = v >= 13 ? "" : ft.Topic, TopicId = ft.TopicId };
            response.Responses.Add(tr);
            foreach (var fp in ft.Partitions)
            {
                var pd = new FetchResponse.PartitionData
                {
                    PartitionIndex = fp.Partition, HighWatermark = -1, LastStableOffset = -1, LogStartOffset = -1,
                    Records = ReadOnlyMemory<byte>.Empty,
                };
                tr.Partitions.Add(pd);
                var partition = topic is null ? null : broker.Replicas.GetPartition(topic.Name, fp.Partition);
                if (partition is null)
                {
                    pd.ErrorCode = (short)(v >= 13 && topic is null ? ErrorCode.UnknownTopicId : ErrorCode.UnknownTopicOrPartition);
                    anyError = true;
                    continue;
                }
                if (!partition.IsLeader)
                {
                    pd.ErrorCode = (short)ErrorCode.NotLeaderOrFollower;
                    Handlers.LeaderHints.Fetch(broker, response, pd, partition, v);
                    anyError = true;
                    continue;
                }
                if (fp.CurrentLeaderEpoch >= 0 && fp.CurrentLeaderEpoch != partition.LeaderEpoch)
                {
                    pd.ErrorCode = (short)(fp.CurrentLeaderEpoch < partition.LeaderEpoch ? ErrorCode.FencedLeaderEpoch : ErrorCode.UnknownLeaderEpoch);
                    if (pd.ErrorCode == (short)ErrorCode.FencedLeaderEpoch) Handlers.LeaderHints.Fetch(broker, response, pd, partition, v);
                    anyError = true;
                    continue;
                }
                var log = partition.Log;
                long leo = log.LogEndOffset;
                pd.LogStartOffset = log.LogStartOffset;
                if (fp.FetchOffset < log.LogStartOffset || fp.FetchOffset > leo)
                {
                    pd.HighWatermark = partition.HighWatermark;
                    pd.ErrorCode = (short)ErrorCode.OffsetOutOfRange;
                    anyError = true;
                    continue;
                }
                if (record && !replication.OnFollowerFetch(partition, replicaId, fp.FetchOffset, fp.LogStartOffset))
                {
                    pd.ErrorCode = (short)ErrorCode.NotLeaderOrFollower;
                    Handlers.LeaderHints.Fetch(broker, response, pd, partition, v);
                    anyError = true;
                    continue;
                }
                long hw = partition.HighWatermark;
                pd.HighWatermark = hw;
                pd.LastStableOffset = hw;
                int limit = Math.Min(fp.PartitionMaxBytes, remaining);
                if (fp.FetchOffset >= leo || (limit <= 0 && !firstData)) continue;
                if (ShouldLeaderThrottle(replication, partition, replicaId)) continue;
                LogReadInfo read;
                try
                {
                    read = fileRecords
                        ? log.ReadFileRecords(fp.FetchOffset, Math.Max(0, limit), leo, minOneBatch: firstData)
                        : log.Read(fp.FetchOffset, Math.Max(0, limit), leo, minOneBatch: firstData);
                }
                catch (LogOffsetOutOfRangeException)
                {
                    pd.ErrorCode = (short)ErrorCode.OffsetOutOfRange;
                    anyError = true;
                    continue;
                }
                catch (IOException)
                {
                    pd.ErrorCode = (short)ErrorCode.KafkaStorageError;
                    anyError = true;
                    continue;
                }
                if (read.Records.Length > 0)
                {
                    pd.Records = read.Records;
                    totalBytes += read.Records.Length;
                    remaining = Math.Max(0, remaining - read.Records.Length);
                    firstData = false;
                }
            }
        }
        return response;
    }
}
