// Fetch (key 1), versions 0-18.
//
// Behaviour (ReplicaManager.fetchMessages / DelayedFetch): read_uncommitted consumers read up to
// the high watermark (= the log end with one replica); read_committed (isolation_level 1, KIP-98)
// up to the last stable offset — the first offset of the oldest open transaction — and get the
// aborted transactions overlapping what they read, so they can drop aborted records.
// Per partition: UNKNOWN_TOPIC_OR_PARTITION / UNKNOWN_TOPIC_ID (v13+, topics by id),
// FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH against current_leader_epoch, OFFSET_OUT_OF_RANGE
// outside [log start, log end]. v16+ NOT_LEADER_OR_FOLLOWER / FENCED_LEADER_EPOCH partitions carry
// the CurrentLeader hint and the leader's NodeEndpoints (KIP-951); no other partition carries a
// tagged field (Handlers/LeaderHints, as upstream's handleFetchRequest). Sizes: partition_max_bytes per partition and max_bytes for the
// response, except that the first batch of the first partition with data is returned whole even
// when larger (KIP-74), so a consumer always progresses. When fewer than min_bytes are readable
// the request waits in the fetch purgatory until appends bring enough or max_wait_ms passes.
// Differs from upstream: when the client closes its connection meanwhile, the waiting Fetch leaves
// the purgatory at once and the broker closes its side (upstream keeps the entry until max_wait).
// Fetch sessions (KIP-227, v7+) for consumers and followers: Fetch/FetchSessionCache (sessions
// created on epoch 0, incremental fetches answer only partitions with something new).
// v0-v3 answers carry message format v0 (fetch v0-v1) or v1 (v2-v3), down-converted from the
// stored v2 batches unless the topic sets message.downconversion.enable=false (UNSUPPORTED_VERSION);
// v0-v2 have a hard byte limit (no whole-first-batch exception).
// Follower fetches (replica_id >= 0) are answered by Replication/FollowerFetch.
// v17 (ReplicaDirectoryId, KIP-853) and v18 (the follower's HighWatermark, KIP-1166) add tagged
// follower-only partition fields: consumers never set them and Samsa's follower path ignores them
// (JBOD directory ids and KIP-1166's early high-watermark push are not implemented).
// Authorization (KafkaApis.handleFetchRequest): follower fetches need CLUSTER CLUSTER_ACTION, else
// every partition is TOPIC_AUTHORIZATION_FAILED; consumers need READ on each topic
// (TOPIC_AUTHORIZATION_FAILED, checked before the topic's existence; an unknown topic id stays
// UNKNOWN_TOPIC_ID).
// Fetch from follower (KIP-392, v11+): with replica.selector.class set, the leader may answer a
// consumer's partition with preferred_read_replica (Replication/ReplicaSelector) and no records;
// a follower serves v11+ consumer fetches up to the high watermark it learned from its leader
// (older versions get NOT_LEADER_OR_FOLLOWER from a follower, as upstream's fetchOnlyLeader).
// Sending (as upstream's FileRecords.writeTo / transferTo): v4+ records are read as segment
// ranges (FileRecords) and the response goes out as frame parts — encoded bytes, the range with
// sendfile, encoded bytes (Network/FetchResponseFrames) — when the connection sends files without
// copying; the segment file stays open until the send ends, even if retention, compaction or
// DeleteRecords removes the segment meanwhile. Down-converted answers (v0-v3), handler tests
// without a connection and connections that copy file bytes (ZeroCopyFileSend off) read a copy.
using Samsa.Kafka.Broker.Cluster;
using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Broker.Purgatory;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Compression;
using Samsa.Kafka.Protocol.Primitives;
using Samsa.Kafka.Protocol.Records;

namespace Samsa.Kafka.Broker.Handlers;

public static class FetchHandler
{
    public static async ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, FetchRequest request)
    {
        short v = context.ApiVersion;
        int replicaId = v >= 15 ? request.ReplicaState.ReplicaId : request.ReplicaId;
        // Fetch sessions (Fetch/FetchSessionCache): an incremental fetch reads every partition of
        // its session and answers only those with something new.
        var session = context.Broker.FetchSessions.NewContext(request, v, privileged: replicaId >= 0);
        if (session.Error != ErrorCode.None) return session.ErrorResponse();
        var response = await ServeAsync(context, session.Request, v, replicaId);
        return response is FetchResponse { ErrorCode: 0 } answer ? session.Finish(answer) : response;
    }

    private static async ValueTask<IKafkaMessage?> ServeAsync(RequestContext context, FetchRequest request, short v, int replicaId)
    {
        var broker = context.Broker;
        if (replicaId >= 0 && !Security.Acl.Authz.Cluster(context, Security.Acl.AclOperation.ClusterAction))
            return Unauthorized(request);
        if (replicaId >= 0)
            return await Replication.FollowerFetch.HandleAsync(broker, request, v, replicaId, UsesFileRecords(context), context.Cancellation);

        bool fileRecords = UsesFileRecords(context);
        var denied = Security.Acl.Authz.DeniedTopics(context, Security.Acl.AclOperation.Read,
            request.Topics.Select(t => v >= 13 ? broker.Replicas.GetTopic(t.TopicId)?.Name : t.Topic));
        var first = Read(broker, request, v, fileRecords, out int bytes, out bool anyError, denied, context.Session.ListenerName);
        if (request.MaxWaitMs <= 0 || bytes >= Math.Max(1, request.MinBytes) || anyError || first.Responses.Count == 0)
            return first;
        Network.FetchResponseFrames.Release(first);

        var keys = new List<TopicPartition>();
        foreach (var t in request.Topics)
        {
            var name = v >= 13 ? broker.Replicas.GetTopic(t.TopicId)?.Name : t.Topic;
            if (name is null) continue;
            foreach (var p in t.Partitions) keys.Add(new TopicPartition(name, p.Partition));
        }
        var delayed = new DelayedFetch(broker, request, v, fileRecords, request.MaxWaitMs, denied, context.Session.ListenerName);
        broker.FetchPurgatory.TryCompleteElseWatch(delayed, keys);
        await WaitReleasingOnCancel(delayed, () => delayed.Response, context.Cancellation);
        return delayed.Response!;
    }

    /// <summary>
    /// Records are read as segment ranges (sent with zero copy, see Network/FetchResponseFrames)
    /// when the connection sends files with sendfile. Without a connection (handler tests) or
    /// when file bytes must pass through user space (ListenerOptions.ZeroCopyFileSend off, TLS),
    /// they are copied at read time.
    /// </summary>
    internal static bool UsesFileRecords(RequestContext context) => context.Connection?.ZeroCopyFileSend == true;

    /// <summary>Waits for a delayed fetch. When the client goes away first (its connection
    /// closed, including the peer closing its end) the operation leaves the purgatory at once,
    /// so neither its entry nor the connection outlives the client by max_wait; if it completed
    /// in the same instant, the response built then is never sent, so its file leases end here.</summary>
    internal static async Task WaitReleasingOnCancel(DelayedOperation delayed, Func<FetchResponse?> response, CancellationToken cancellation)
    {
        try
        {
            await delayed.Completion.WaitAsync(cancellation);
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            if (!delayed.Cancel())
                _ = delayed.Completion.ContinueWith(_ => Network.FetchResponseFrames.Release(response()), TaskScheduler.Default);
            throw;
        }
    }

    /// <summary>Every partition TOPIC_AUTHORIZATION_FAILED (a follower fetch without CLUSTER_ACTION).</summary>
    private static FetchResponse Unauthorized(FetchRequest request) => new()
    {
        SessionId = 0,
        Responses = request.Topics.Select(t => new FetchResponse.FetchableTopicResponse
        {
            Topic = t.Topic,
            TopicId = t.TopicId,
            Partitions = t.Partitions.Select(p => new FetchResponse.PartitionData
            {
                PartitionIndex = p.Partition,
                ErrorCode = (short)ErrorCode.TopicAuthorizationFailed,
                HighWatermark = -1,
                LastStableOffset = -1,
                LogStartOffset = -1,
                Records = ReadOnlyMemory<byte>.Empty,
            }).ToList(),
        }).ToList(),
    };

    private sealed class DelayedFetch(KafkaBroker broker, FetchRequest request, short version, bool fileRecords, long delayMs, HashSet<string> denied, string listenerName) : DelayedOperation(delayMs, continueOnEventThread: true)
    {
        public FetchResponse? Response;

        public override bool TryComplete()
        {
            // Counting bytes with file ranges costs no copy; the ranges are released at once.
            var probe = Read(broker, request, version, fileRecords, out int bytes, out bool anyError, denied, listenerName);
            Network.FetchResponseFrames.Release(probe);
            return (bytes >= Math.Max(1, request.MinBytes) || anyError) && ForceComplete();
        }

        protected override void OnComplete() => Response = Read(broker, request, version, fileRecords, out _, out _, denied, listenerName);
    }

    /// <summary>
    /// Reads every requested partition. With <paramref name="fileRecords"/> (and v4+, which needs no
    /// down-conversion) the records are <see cref="FileRecords"/> slices of the segment files that
    /// the caller must release (FetchResponseFrames.Release); otherwise they are bytes.
    /// </summary>
    internal static FetchResponse Read(KafkaBroker broker, FetchRequest request, short v, bool fileRecords, out int totalBytes, out bool anyError, HashSet<string>? denied = null, string? listenerName = null)
    {
        // Fetch v0-v3 answers are down-converted from the bytes: those always read a copy.
        fileRecords &= v >= 4;
        var response = new FetchResponse { SessionId = 0 };
        totalBytes = 0;
        anyError = false;
        // The broker's fetch.max.bytes caps every response (upstream applies it to v3+; here it
        // also bounds v0-v2, whose only limit would otherwise be the sum of partition maxima).
        int cap = broker.Config.FetchMaxBytes;
        int remaining = v >= 3 ? Math.Min(Math.Max(request.MaxBytes, 0), cap) : cap;
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
                if (denied is { Count: > 0 } && (v >= 13 ? topic?.Name : ft.Topic) is { } topicName && denied.Contains(topicName))
                {
                    pd.ErrorCode = (short)ErrorCode.TopicAuthorizationFailed;
                    anyError = true;
                    continue;
                }
                var partition = topic is null ? null : broker.Replicas.GetPartition(topic.Name, fp.Partition);
                if (partition is null)
                {
                    pd.ErrorCode = (short)(v >= 13 && topic is null ? ErrorCode.UnknownTopicId : ErrorCode.UnknownTopicOrPartition);
                    anyError = true;
                    continue;
                }
                if (!partition.IsLeader && (v < 11 || !(partition.ReplicaNodes?.Contains(broker.BrokerId) ?? false)))
                {
                    // ZooKeeper mode: another broker leads this partition (and this one holds no
                    // replica of it, or the client is too old to read from a follower).
                    pd.ErrorCode = (short)ErrorCode.NotLeaderOrFollower;
                    LeaderHints.Fetch(broker, response, pd, partition, v, listenerName);
                    anyError = true;
                    continue;
                }
                if (fp.CurrentLeaderEpoch >= 0 && fp.CurrentLeaderEpoch != partition.LeaderEpoch)
                {
                    pd.ErrorCode = (short)(fp.CurrentLeaderEpoch < partition.LeaderEpoch ? ErrorCode.FencedLeaderEpoch : ErrorCode.UnknownLeaderEpoch);
                    if (pd.ErrorCode == (short)ErrorCode.FencedLeaderEpoch) LeaderHints.Fetch(broker, response, pd, partition, v, listenerName);
                    anyError = true;
                    continue;
                }
                var log = partition.Log;
                long hw = partition.HighWatermark;
                long logStart = log.LogStartOffset;
                long lastStable = Math.Min(hw, log.LastStableOffset);
                pd.HighWatermark = hw;
                pd.LastStableOffset = lastStable;
                pd.LogStartOffset = logStart;
                if (v >= 11 && fp.FetchOffset >= logStart && fp.FetchOffset <= log.LogEndOffset
                    && broker.Replication?.PreferredReadReplica(partition, request.RackId, fp.FetchOffset) is int preferred && preferred >= 0)
                {
                    // KIP-392: no records, just where to read; answered at once (upstream's
                    // fetchMessages does not delay a response naming a preferred read replica).
                    pd.PreferredReadReplica = preferred;
                    anyError = true;
                    continue;
                }
                if (fp.FetchOffset < logStart || fp.FetchOffset > log.LogEndOffset)
                {
                    pd.ErrorCode = (short)ErrorCode.OffsetOutOfRange;
                    anyError = true;
                    continue;
                }
                int limit = Math.Min(fp.PartitionMaxBytes, remaining);
                long upperBound = request.IsolationLevel == 1 ? lastStable : hw;
                if (fp.FetchOffset >= upperBound || (limit <= 0 && !firstData)) continue;
                LogReadInfo read;
                try
                {
                    read = fileRecords
                        ? log.ReadFileRecords(fp.FetchOffset, Math.Max(0, limit), upperBound, minOneBatch: firstData && v >= 3)
                        : log.Read(fp.FetchOffset, Math.Max(0, limit), upperBound, minOneBatch: firstData && v >= 3);
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
                if (read.Records.Length > 0 && v <= 3)
                {
                    // Fetch v0-v3 consumers read message format v0 (v0-v1) or v1 (v2-v3): down-convert
                    // (upstream FetchResponse down-conversion, allowed by message.downconversion.enable).
                    if (!(bool)partition.Topic.LogConfig.Values["message.downconversion.enable"])
                    {
                        pd.ErrorCode = (short)ErrorCode.UnsupportedVersion;
                        anyError = true;
                        continue;
                    }
                    var converted = DownConvert(read.Records.Span, v <= 1 ? (byte)0 : (byte)1, out var convertError);
                    if (convertError != ErrorCode.None)
                    {
                        pd.ErrorCode = (short)convertError;
                        anyError = true;
                        continue;
                    }
                    read = new LogReadInfo(converted);
                }
                if (read.Records.Length > 0)
                {
                    if (request.IsolationLevel == 1)
                    {
                        pd.AbortedTransactions = log.AbortedTransactions(fp.FetchOffset, upperBound)
                            .Select(a => new FetchResponse.AbortedTransaction { ProducerId = a.ProducerId, FirstOffset = a.FirstOffset })
                            .ToList();
                    }
                    pd.Records = read.Records;
                    totalBytes += read.Records.Length;
                    remaining = Math.Max(0, remaining - read.Records.Length);
                    firstData = false;
                }
            }
        }
        return response;
    }

    // Whole v2 batches to a legacy message set; a batch cut short at the end of the read is left
    // out (a legacy consumer would treat it as a partial message anyway). Zstd cannot be expressed
    // in message format v0/v1: UNSUPPORTED_COMPRESSION_TYPE, as upstream answers old consumers.
    private static ReadOnlyMemory<byte> DownConvert(ReadOnlySpan<byte> batches, byte magic, out ErrorCode error)
    {
        error = ErrorCode.None;
        using var output = new PooledBuffer(batches.Length + 64);
        try
        {
            foreach (var batch in RecordBatch.Enumerate(batches, allowTruncatedTail: true))
            {
                if (batch.Compression == CompressionType.Zstd) { error = ErrorCode.UnsupportedCompressionType; return default; }
                LegacyMessageSet.ConvertFromRecordBatch(batch.Bytes, magic, output);
            }
        }
        catch (KafkaProtocolException)
        {
            error = ErrorCode.CorruptMessage;
            return default;
        }
        return output.ToArray();
    }
}
