// Fetch (key 1), versions 4-16.
//
// Behaviour (ReplicaManager.fetchMessages / DelayedFetch): consumers read up to the high
// watermark (= the log end with one replica; also the last stable offset, as no transaction is
// ever open). Per partition: UNKNOWN_TOPIC_OR_PARTITION / UNKNOWN_TOPIC_ID (v13+, topics by id),
// FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH against current_leader_epoch, OFFSET_OUT_OF_RANGE
// outside [log start, log end]. Sizes: partition_max_bytes per partition and max_bytes for the
// response, except that the first batch of the first partition with data is returned whole even
// when larger (KIP-74), so a consumer always progresses. When fewer than min_bytes are readable
// the request waits in the fetch purgatory until appends bring enough or max_wait_ms passes.
// Fetch sessions (KIP-227): a request for a new session is answered with session id 0, i.e.
// sessions are declined and every fetch is a full fetch; an unknown session id gets
// FETCH_SESSION_ID_NOT_FOUND.
// Differences from upstream: v0-v3 (message format v0/v1 down-conversion) are not served;
// follower fetches (replica_id >= 0) are refused as there are no followers; record data is copied
// into the response rather than sent from the segment file.
using Samsa.Kafka.Broker.Cluster;
using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Broker.Purgatory;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class FetchHandler
{
    public static async ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, FetchRequest request)
    {
        var broker = context.Broker;
        short v = context.ApiVersion;
        int replicaId = v >= 15 ? request.ReplicaState.ReplicaId : request.ReplicaId;
        if (v >= 7 && request.SessionId != 0)
            return new FetchResponse { ErrorCode = (short)ErrorCode.FetchSessionIdNotFound, SessionId = 0 };
        if (replicaId >= 0)
            return new FetchResponse { ErrorCode = (short)ErrorCode.NotLeaderOrFollower };

        var first = Read(broker, request, v, out int bytes, out bool anyError);
        if (request.MaxWaitMs <= 0 || bytes >= Math.Max(1, request.MinBytes) || anyError || first.Responses.Count == 0)
            return first;

        var keys = new List<TopicPartition>();
        foreach (var t in request.Topics)
        {
            var name = v >= 13 ? broker.Replicas.GetTopic(t.TopicId)?.Name : t.Topic;
            if (name is null) continue;
            foreach (var p in t.Partitions) keys.Add(new TopicPartition(name, p.Partition));
        }
        var delayed = new DelayedFetch(broker, request, v, request.MaxWaitMs);
        broker.FetchPurgatory.TryCompleteElseWatch(delayed, keys);
        await delayed.Completion.WaitAsync(context.Cancellation);
        return delayed.Response!;
    }

    private sealed class DelayedFetch(KafkaBroker broker, FetchRequest request, short version, long delayMs) : DelayedOperation(delayMs)
    {
        public FetchResponse? Response;

        public override bool TryComplete()
        {
            Read(broker, request, version, out int bytes, out bool anyError);
            return (bytes >= Math.Max(1, request.MinBytes) || anyError) && ForceComplete();
        }

        protected override void OnComplete() => Response = Read(broker, request, version, out _, out _);
    }

    internal static FetchResponse Read(KafkaBroker broker, FetchRequest request, short v, out int totalBytes, out bool anyError)
    {
        var response = new FetchResponse { SessionId = 0 };
        totalBytes = 0;
        anyError = false;
        int remaining = request.MaxBytes <= 0 ? 0 : request.MaxBytes;
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
                    PartitionIndex = fp.Partition,
                    HighWatermark = -1,
                    LastStableOffset = -1,
                    LogStartOffset = -1,
                    AbortedTransactions = request.IsolationLevel == 1 ? [] : null,
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
                if (fp.CurrentLeaderEpoch >= 0 && fp.CurrentLeaderEpoch != partition.LeaderEpoch)
                {
                    pd.ErrorCode = (short)(fp.CurrentLeaderEpoch < partition.LeaderEpoch ? ErrorCode.FencedLeaderEpoch : ErrorCode.UnknownLeaderEpoch);
                    anyError = true;
                    continue;
                }
                var log = partition.Log;
                long hw = partition.HighWatermark;
                long logStart = log.LogStartOffset;
                pd.HighWatermark = hw;
                pd.LastStableOffset = hw;
                pd.LogStartOffset = logStart;
                // A tagged field of v12+ that is not ignorable: older versions cannot carry it.
                if (v >= 12) pd.CurrentLeader = new FetchResponse.LeaderIdAndEpoch { LeaderId = broker.BrokerId, LeaderEpoch = partition.LeaderEpoch };
                if (fp.FetchOffset < logStart || fp.FetchOffset > log.LogEndOffset)
                {
                    pd.ErrorCode = (short)ErrorCode.OffsetOutOfRange;
                    anyError = true;
                    continue;
                }
                int limit = Math.Min(fp.PartitionMaxBytes, remaining);
                if (fp.FetchOffset >= hw || (limit <= 0 && !firstData)) continue;
                var read = log.Read(fp.FetchOffset, Math.Max(0, limit), hw, minOneBatch: firstData);
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
