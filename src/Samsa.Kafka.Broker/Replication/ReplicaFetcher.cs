using System.Buffers.Binary;
using System.Net.Sockets;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Cluster;
using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Primitives;

namespace Samsa.Kafka.Broker.Replication;

/// <summary>
/// Fetches every partition this broker follows from one leader broker (upstream
/// ReplicaFetcherThread): Fetch with replica_id = this broker, appending what comes back as a
/// follower and taking the leader's high watermark (bounded by the local log end). A partition
/// that is new to the fetcher, or whose leader epoch changed, first asks the leader with
/// OffsetForLeaderEpoch where its latest local epoch ends and truncates the local tail beyond
/// that (KIP-101, KIP-279); a leader that cannot answer leaves truncation to the high watermark,
/// upstream's fallback. Fetches go through an incremental fetch session with the leader
/// (FetchSessionClient, KIP-227): only partitions whose fetch position changed are sent and
/// the leader answers only partitions with something new. The loop runs on a thread of its own,
/// with a blocking connection on plaintext listeners (see the constructor).
/// </summary>
internal sealed class ReplicaFetcher : IAsyncDisposable
{
    // Fetch v12 is the last version naming topics (v13 uses ids); OffsetForLeaderEpoch v4 carries replica_id.
    private const short FetchVersion = 12;
    private const short EpochVersion = 4;
    private const int ThrottleBackoffMs = 100;   // a pause while every partition waits for the follower quota

    private readonly ReplicationManager _manager;
    private readonly object _gate = new();
    private readonly Dictionary<TopicPartition, FetchState> _partitions = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly FetchSessionClient _session = new();
    // The connection while a Fetch is out at the leader (under _gate), and whether partitions were
    // added since the loop last chose what to fetch: see SetPartitions.
    private KafkaWireClient? _fetching;
    private bool _added;
    private bool _restarting;
    // True while the loop runs on its own thread with a blocking connection (plaintext listeners):
    // pauses then wait on that thread too, so the loop never moves to a pool thread it would block.
    private bool _ownThread = true;

    internal sealed class FetchState(Partition partition, int epoch)
    {
        public readonly Partition Partition = partition;
        public readonly int Epoch = epoch;
        public bool NeedsTruncation = true;
        public long RetryAfterMs;
    }

    public ReplicaFetcher(ReplicationManager manager, int leaderId, string host, int port)
    {
        _manager = manager;
        LeaderId = leaderId;
        Host = host;
        Port = port;
        // A thread of its own (upstream: one ReplicaFetcherThread per source broker): with a blocking
        // connection every await below completes synchronously, so the whole loop stays on it and a
        // Fetch answer wakes this thread directly (KafkaWireClient.ConnectBlocking). Over TLS or
        // SASL the loop continues on the thread pool after its first asynchronous await.
        _loop = Task.Factory.StartNew(RunAsync, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
    }

    public int LeaderId { get; }
    public string Host { get; }
    public int Port { get; }

    /// <summary>The partitions to fetch from this leader. One that is new here (or at a new leader
    /// epoch) while a Fetch waits at the leader for data of the others (up to replica.fetch.wait.max.ms)
    /// ends that wait: the connection is shut and opened again at once, so the next Fetch carries the
    /// new partition. (Upstream's fetcher takes it in with its next request, after the wait; a
    /// just-created topic's first acks=all write then waits for it.)</summary>
    public void SetPartitions(IReadOnlyList<Partition> partitions)
    {
        KafkaWireClient? interrupt = null;
        lock (_gate)
        {
            var keep = new HashSet<TopicPartition>();
            foreach (var p in partitions)
            {
                var tp = p.TopicPartition;
                keep.Add(tp);
                if (_partitions.TryGetValue(tp, out var s) && ReferenceEquals(s.Partition, p) && s.Epoch == p.LeaderEpoch) continue;
                _partitions[tp] = new FetchState(p, p.LeaderEpoch);
                _added = true;
            }
            foreach (var tp in _partitions.Keys.ToList())
                if (!keep.Contains(tp)) _partitions.Remove(tp);
            if (_added && _fetching is not null)
            {
                interrupt = _fetching;
                _restarting = true;
            }
        }
        interrupt?.Abort();
    }

    private bool StillFollowing(FetchState s)
    {
        lock (_gate)
            return _partitions.TryGetValue(s.Partition.TopicPartition, out var cur) && ReferenceEquals(cur, s)
                && !s.Partition.IsLeader && s.Partition.LeaderEpoch == s.Epoch
                && s.Partition.IsHostedLocally;   // a reassignment removed this replica: its log is gone
    }

    private async Task RunAsync()
    {
        var ct = _stop.Token;
        while (!ct.IsCancellationRequested)
        {
            KafkaWireClient? client = null;
            try
            {
                string clientId = $"broker-{_manager.BrokerId}-fetcher-{LeaderId}";
                client = _ownThread ? _manager.Connector.TryConnectBlocking(Host, Port, clientId,
                    // Upstream requires replica.socket.timeout.ms >= replica.fetch.wait.max.ms; a
                    // parked fetch must not time out here.
                    Math.Max(_manager.SocketTimeoutMs, 2 * _manager.FetchWaitMaxMs), ct) : null;
                client ??= await _manager.Connector.ConnectAsync(Host, Port, clientId, ct);
                _ownThread = client.IsBlocking;
                // Stopping interrupts a blocking receive (up to max_wait_ms, or a silent leader's timeout).
                using var abort = client.IsBlocking ? ct.Register(static c => ((KafkaWireClient)c!).Abort(), client) : default;
                // One request at a time, and a response's records are appended (copied into the
                // log) before the next fetch: one pooled receive buffer serves every response.
                client.ReuseResponseBuffer = true;
                // One pass over the partitions per fetch into lists reused across fetches (this
                // loop runs once per follower fetch: for every produced batch under acks=all).
                var truncate = new List<FetchState>();
                var fetch = new List<FetchState>();
                while (!ct.IsCancellationRequested)
                {
                    truncate.Clear();
                    fetch.Clear();
                    long now = Environment.TickCount64;
                    long nextRetry = long.MaxValue;
                    lock (_gate)
                    {
                        _added = false;
                        foreach (var s in _partitions.Values)
                            if (s.RetryAfterMs <= now) (s.NeedsTruncation ? truncate : fetch).Add(s);
                            else nextRetry = Math.Min(nextRetry, s.RetryAfterMs);
                    }
                    if (truncate.Count + fetch.Count == 0)
                    {
                        await PauseAsync(50, ct);
                        continue;
                    }
                    if (truncate.Count > 0)
                    {
                        await TruncateAsync(client, truncate, ct);
                        // Truncated partitions fetch in the same round, as before; the others
                        // (their leader not ready yet) try again after their pause.
                        foreach (var s in truncate)
                            if (!s.NeedsTruncation) fetch.Add(s);
                            else nextRetry = Math.Min(nextRetry, s.RetryAfterMs);
                    }
                    // Upstream shouldFollowerThrottle: a throttled partition this broker is not yet in
                    // the ISR of sits out fetches while the follower quota is exceeded.
                    var quota = _manager.FollowerQuota;
                    int before = fetch.Count;
                    if (fetch.Count > 0 && quota.IsQuotaExceeded)
                    {
                        int kept = 0;
                        for (int i = 0; i < fetch.Count; i++)
                            if (!quota.IsThrottled(fetch[i].Partition) || (fetch[i].Partition.IsrNodes?.Contains(_manager.BrokerId) ?? false)) fetch[kept++] = fetch[i];
                        fetch.RemoveRange(kept, fetch.Count - kept);
                    }
                    // A partition backing off (e.g. its leader had not applied the new state yet)
                    // is fetched again when its pause ends, not after the others' wait for data.
                    int maxWait = nextRetry == long.MaxValue ? _manager.FetchWaitMaxMs
                        : (int)Math.Clamp(nextRetry - Environment.TickCount64, 0, _manager.FetchWaitMaxMs);
                    if (fetch.Count > 0) await FetchAsync(client, fetch, maxWait, ct);
                    else if (before > 0) await PauseAsync(ThrottleBackoffMs, ct);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
            catch (Exception e) when (e is IOException or SocketException or KafkaProtocolException or ObjectDisposedException)
            {
                bool restart;
                lock (_gate) (restart, _restarting) = (_restarting, false);
                // Leader gone or restarting: retry until the view moves this partition elsewhere.
                // (SetPartitions ending a wait for new partitions: reconnect at once.)
                if (!restart)
                    try { await PauseAsync(200, ct); } catch (OperationCanceledException) { }
            }
            catch (Exception e) when (!ct.IsCancellationRequested)
            {
                // A local log refused an append or truncation: the fetcher must outlive it (upstream
                // marks the partition failed; here every partition is retried after a pause).
                _manager.Broker.Log($"broker {_manager.BrokerId}: fetcher for leader {LeaderId} failed: {e}");
                try { await PauseAsync(500, ct); } catch (OperationCanceledException) { }
            }
            finally
            {
                if (client is not null) await client.DisposeAsync();
            }
        }
    }

    // Task.Delay, or on the loop's own thread a wait there (see _ownThread).
    private ValueTask PauseAsync(int ms, CancellationToken ct)
    {
        if (!_ownThread) return new ValueTask(Task.Delay(ms, ct));
        if (ct.WaitHandle.WaitOne(ms)) throw new OperationCanceledException(ct);
        return ValueTask.CompletedTask;
    }

    private async Task TruncateAsync(KafkaWireClient client, List<FetchState> states, CancellationToken ct)
    {
        var request = new OffsetForLeaderEpochRequest { ReplicaId = _manager.BrokerId };
        foreach (var group in states.GroupBy(s => s.Partition.Topic.Name))
        {
            var t = new OffsetForLeaderEpochRequest.OffsetForLeaderTopic { Topic = group.Key };
            foreach (var s in group)
                t.Partitions.Add(new OffsetForLeaderEpochRequest.OffsetForLeaderPartition
                {
                    Partition = s.Partition.Index, CurrentLeaderEpoch = s.Epoch, LeaderEpoch = s.Partition.Log.LatestEpoch,
                });
            request.Topics.Add(t);
        }
        var response = await client.SendAsync<OffsetForLeaderEpochResponse>(request, EpochVersion, ct: ct)
            ?? throw new IOException("no OffsetForLeaderEpoch response");
        foreach (var tr in response.Topics)
            foreach (var pr in tr.Partitions)
            {
                var s = states.FirstOrDefault(x => x.Partition.Topic.Name == tr.Topic && x.Partition.Index == pr.Partition);
                if (s is null || !StillFollowing(s)) continue;
                if (pr.ErrorCode != 0)
                {
                    // Typically FENCED/UNKNOWN_LEADER_EPOCH or NOT_LEADER while ZooKeeper news spreads.
                    s.RetryAfterMs = Environment.TickCount64 + 100;
                    continue;
                }
                var log = s.Partition.Log;
                long leo = log.LogEndOffset;
                long target;
                if (log.LatestEpoch < 0) target = leo;                        // nothing epoch-stamped to diverge
                else if (pr.EndOffset < 0 || pr.LeaderEpoch < 0) target = log.HighWatermark;   // leader has no answer
                else
                {
                    target = pr.EndOffset;
                    if (pr.LeaderEpoch != log.LatestEpoch)
                    {
                        // The leader knows an older epoch only: our end of that epoch bounds the common prefix.
                        var (ours, ourEnd) = log.EndOffsetForEpoch(pr.LeaderEpoch);
                        if (ours == pr.LeaderEpoch && ourEnd >= 0) target = Math.Min(target, ourEnd);
                    }
                }
                target = Math.Min(target, leo);
                if (target < leo)
                {
                    log.TruncateTo(target);
                    _manager.Broker.Log($"broker {_manager.BrokerId}: truncated {s.Partition.TopicPartition} from {leo} to {target} (leader {LeaderId} epoch {s.Epoch})");
                }
                s.NeedsTruncation = false;
            }
    }

    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask FetchAsync(KafkaWireClient client, List<FetchState> states, int maxWaitMs, CancellationToken ct)
    {
        lock (_gate)
        {
            // partitions added since this round's were chosen: choose again (SetPartitions)
            if (_added) return;
            _fetching = client;
        }
        FetchResponse response;
        try
        {
            var request = _session.Build(states, _manager.BrokerId, _manager.FetchMaxBytes);
            request.MaxWaitMs = maxWaitMs;
            request.MinBytes = _manager.FetchMinBytes;
            request.MaxBytes = _manager.FetchResponseMaxBytes;
            response = await client.SendReusingBuffersAsync<FetchResponse>(request, FetchVersion, ct);
        }
        catch
        {
            // The leader may hold the session at a later epoch or not at all: start over with a full fetch.
            _session.OnFailure();
            throw;
        }
        finally
        {
            lock (_gate) _fetching = null;
        }
        if (!_session.OnResponse(response))
        {
            // Session errors are settled by the next (full) fetch; other top-level errors back off.
            if (response.ErrorCode is not ((short)ErrorCode.FetchSessionIdNotFound or (short)ErrorCode.InvalidFetchSessionEpoch or (short)ErrorCode.FetchSessionTopicIdError))
                await PauseAsync(100, ct);
            return;
        }
        foreach (var tr in response.Responses)
            foreach (var pd in tr.Partitions)
            {
                var s = Find(states, tr.Topic, pd.PartitionIndex);
                if (s is null || !StillFollowing(s)) continue;
                var log = s.Partition.Log;
                switch ((ErrorCode)pd.ErrorCode)
                {
                    case ErrorCode.None:
                        var whole = SkipAndTrim(pd.Records ?? ReadOnlyMemory<byte>.Empty, log.LogEndOffset);
                        if (whole.Length > 0 && !TryAppend(s, whole)) break;
                        if (pd.Records is { Length: > 0 } fetched && _manager.FollowerQuota.IsThrottled(s.Partition))
                            _manager.FollowerQuota.Record(fetched.Length);
                        // A follower's high watermark is the leader's, as far as its own log reaches.
                        long hwBefore = log.HighWatermark;
                        log.UpdateHighWatermark(Math.Min(pd.HighWatermark, log.LogEndOffset));
                        // Consumers reading from this follower (KIP-392) may be waiting for it.
                        if (log.HighWatermark != hwBefore) _manager.Broker.FetchPurgatory.CheckAndComplete(s.Partition.TopicPartition);
                        break;
                    case ErrorCode.OffsetOutOfRange:
                        if (pd.LogStartOffset > log.LogEndOffset)
                            log.TruncateFullyAndStartAt(pd.LogStartOffset);   // fell behind the leader's retention
                        else
                            s.NeedsTruncation = true;                        // ahead of the leader: find the divergence
                        break;
                    default:
                        // FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH, NOT_LEADER_OR_FOLLOWER: wait for the view.
                        s.RetryAfterMs = Environment.TickCount64 + 100;
                        break;
                }
            }
    }

    // The fetched batches go to the log as they came (one write); the log checks each batch's
    // CRC-32C and offsets first. A refused append fails this partition only (upstream
    // AbstractFetcherThread: CorruptRecordException / InvalidRecordException are logged and the
    // partition is fetched again after replica.fetch.backoff.ms), so the leader's other
    // partitions keep replicating; the high watermark is left where it was.
    private bool TryAppend(FetchState s, ReadOnlyMemory<byte> batches)
    {
        var log = s.Partition.Log;
        try
        {
            log.AppendAsFollower(batches);
            return true;
        }
        catch (Exception e) when (e is Samsa.Kafka.Storage.CorruptRecordException or Samsa.Kafka.Storage.InvalidBatchException)
        {
            _manager.Broker.Log($"broker {_manager.BrokerId}: fetcher for leader {LeaderId}: refused records of {s.Partition.TopicPartition} at offset {log.LogEndOffset}, " +
                $"fetching it again in {_manager.FetchBackoffMs} ms: {e.GetType().Name}: {e.Message}");
            s.RetryAfterMs = Environment.TickCount64 + _manager.FetchBackoffMs;
            return false;
        }
    }

    private static FetchState? Find(List<FetchState> states, string? topic, int partition)
    {
        foreach (var s in states)
            if (s.Partition.Index == partition && s.Partition.Topic.Name == topic) return s;
        return null;
    }

    // Whole batches only, starting at the log end: a fetch may start inside an earlier batch
    // (the batch holding the fetch offset) and end with a batch cut short by max bytes.
    private static ReadOnlyMemory<byte> SkipAndTrim(ReadOnlyMemory<byte> records, long logEnd)
    {
        var span = records.Span;
        int start = -1, pos = 0, end = 0;
        while (pos + 12 <= span.Length)
        {
            long baseOffset = BinaryPrimitives.ReadInt64BigEndian(span[pos..]);
            int length = BinaryPrimitives.ReadInt32BigEndian(span[(pos + 8)..]);
            if (length <= 0 || pos + 12L + length > span.Length) break;
            int lastDelta = BinaryPrimitives.ReadInt32BigEndian(span[(pos + 23)..]);
            int size = 12 + length;
            if (start < 0)
            {
                if (baseOffset + lastDelta < logEnd) { pos += size; continue; }
                if (baseOffset != logEnd) break;   // a gap: nothing safe to append
                start = pos;
            }
            pos += size;
            end = pos;
        }
        return start < 0 ? ReadOnlyMemory<byte>.Empty : records[start..end];
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        try { await _loop; } catch (OperationCanceledException) { }
        _stop.Dispose();
    }
}
