// Fetch sessions (KIP-227, upstream kafka.server.FetchSession / FetchManager), for consumers and
// followers alike.
//
// A Fetch (v7+) names a session id and epoch:
// - id 0, epoch -1 (FINAL): a full fetch with no session (SessionId 0 in the answer);
// - id 0, epoch 0 (INITIAL): a full fetch asking for a session. When the answer is built, a session
//   holding every requested partition with what the answer told the client (high watermark, log
//   start offset) is created if a slot is free or one can be evicted, and its id is returned (0 when
//   none could be made); its next expected epoch is 1;
// - id N, epoch 0 or -1: session N is closed, then as above;
// - id N, epoch E > 0: an incremental fetch. Unknown N: FETCH_SESSION_ID_NOT_FOUND; E not the
//   session's expected epoch: INVALID_FETCH_SESSION_EPOCH; a session made with topic ids (v13+)
//   used without them or the reverse: FETCH_SESSION_TOPIC_ID_ERROR. Otherwise the request's
//   partitions are added to or updated in the session, ForgottenTopicsData removed; a session left
//   empty is closed (answered as a sessionless fetch); else the expected epoch moves on and every
//   partition of the session is read, from the offsets the session remembers. The answer carries
//   only the partitions with records, a changed high watermark / last stable offset / log start
//   offset, an error, a preferred read replica or a diverging epoch; a partition that returned
//   records moves to the end of the session's order so that others get the byte budget first.
// Eviction when all max.incremental.fetch.session.cache.slots are taken (upstream
// FetchSessionCacheShard.tryEvict): the least recently used session if unused for more than
// 120 s; else, for a follower's new session (privileged), the smallest consumer session or any
// session older than 120 s that is not larger than it; for a consumer's, only a session older than
// 120 s that is smaller (or as small, with a lower id).
// Differs from upstream: one shard (upstream shards the cache by session id range); LSO changes
// also make a partition answer (upstream compares high watermark and log start offset only).
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Fetch;

public sealed class FetchSessionCache
{
    public const int InitialEpoch = 0;
    public const int FinalEpoch = -1;
    public const long DefaultEvictionMs = 120_000;   // upstream MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS

    private readonly object _gate = new();
    private readonly Dictionary<int, FetchSession> _sessions = [];
    private readonly Func<long> _clock;
    private readonly long _evictionMs;
    private long _created, _incremental, _evicted, _full, _consumerCreated, _consumerIncremental, _sessionless;

    public FetchSessionCache(int maxSlots, long evictionMs = DefaultEvictionMs, Func<long>? clock = null)
    {
        MaxSlots = Math.Max(0, maxSlots);
        _evictionMs = evictionMs;
        _clock = clock ?? (() => Environment.TickCount64);
    }

    public int MaxSlots { get; }

    /// <summary>Sessions in the cache now (upstream NumIncrementalFetchSessions).</summary>
    public int Count { get { lock (_gate) return _sessions.Count; } }
    /// <summary>Partitions held by all sessions (upstream NumIncrementalFetchPartitionsCached).</summary>
    public long PartitionsCached { get { lock (_gate) { long n = 0; foreach (var s in _sessions.Values) n += s.CachedSize; return n; } } }
    /// <summary>Sessions created since start.</summary>
    public long SessionsCreated => Interlocked.Read(ref _created);
    /// <summary>Incremental fetches accepted (an existing session with the right epoch) since start.</summary>
    public long IncrementalFetches => Interlocked.Read(ref _incremental);
    /// <summary>Full fetches (v7+, with or without a session request) since start.</summary>
    public long FullFetches => Interlocked.Read(ref _full);
    /// <summary>Full fetches (v7+) that asked for no session (epoch -1) since start.</summary>
    public long SessionlessFetches => Interlocked.Read(ref _sessionless);
    /// <summary>Of <see cref="SessionsCreated"/>, those of consumers (not followers).</summary>
    public long ConsumerSessionsCreated => Interlocked.Read(ref _consumerCreated);
    /// <summary>Of <see cref="IncrementalFetches"/>, those of consumers (not followers).</summary>
    public long ConsumerIncrementalFetches => Interlocked.Read(ref _consumerIncremental);
    /// <summary>Sessions evicted to make room (upstream IncrementalFetchSessionEvictionsPerSec, as a total).</summary>
    public long Evictions => Interlocked.Read(ref _evicted);

    /// <summary>True while session <paramref name="id"/> is cached.</summary>
    public bool Contains(int id) { lock (_gate) return _sessions.ContainsKey(id); }

    internal static int NextEpoch(int epoch) => epoch < 0 ? FinalEpoch : epoch == int.MaxValue ? 1 : epoch + 1;

    /// <summary>
    /// Decides how a Fetch is served (upstream FetchManager.newContext). The context's
    /// <see cref="FetchContext.Request"/> is the fetch to read (for an incremental fetch: every
    /// partition of the session); <see cref="FetchContext.Finish"/> turns the read into the answer.
    /// </summary>
    public FetchContext NewContext(FetchRequest request, short version, bool privileged)
    {
        if (version < 7) return FetchContext.Sessionless(request);
        bool usesIds = version >= 13;
        int id = request.SessionId, epoch = request.SessionEpoch;
        if (epoch == InitialEpoch || epoch == FinalEpoch)
        {
            Interlocked.Increment(ref _full);
            if (epoch == FinalEpoch) Interlocked.Increment(ref _sessionless);
            if (id != 0) lock (_gate) Remove(id);
            return epoch == FinalEpoch ? FetchContext.Sessionless(request) : FetchContext.Full(this, request, usesIds, privileged);
        }
        lock (_gate)
        {
            if (!_sessions.TryGetValue(id, out var session)) return FetchContext.Failed(request, ErrorCode.FetchSessionIdNotFound);
            lock (session)
            {
                if (session.Epoch != epoch) return FetchContext.Failed(request, ErrorCode.InvalidFetchSessionEpoch);
                if (session.UsesTopicIds != usesIds) return FetchContext.Failed(request, ErrorCode.FetchSessionTopicIdError);
                session.Update(request, usesIds);
                if (session.IsEmpty)
                {
                    Remove(id);
                    return FetchContext.Sessionless(request);
                }
                Touch(session, _clock());
                session.Epoch = NextEpoch(session.Epoch);
                Interlocked.Increment(ref _incremental);
                if (!session.Privileged) Interlocked.Increment(ref _consumerIncremental);
                return FetchContext.Incremental(session, request, epoch);
            }
        }
    }

    /// <summary>Creates a session for a full fetch's answer (upstream maybeCreateSession): its id, or 0 with no room.</summary>
    internal int MaybeCreate(bool privileged, bool usesIds, List<CachedPartition> partitions)
    {
        long now = _clock();
        lock (_gate)
        {
            if (_sessions.Count >= MaxSlots && !(MaxSlots > 0 && TryEvict(privileged, partitions.Count, now))) return 0;
            int id;
            do id = Random.Shared.Next(1, int.MaxValue); while (_sessions.ContainsKey(id));
            var session = new FetchSession(id, privileged, usesIds, now, partitions);
            _sessions[id] = session;
            Touch(session, now);
            Interlocked.Increment(ref _created);
            if (!privileged) Interlocked.Increment(ref _consumerCreated);
            return id;
        }
    }

    private void Remove(int id) => _sessions.Remove(id);

    // Upstream touch: the session's size and eviction eligibility are taken at use time.
    private void Touch(FetchSession s, long now)
    {
        s.LastUsedMs = now;
        s.CachedSize = s.Count;
        bool old = now - s.CreationMs > _evictionMs;
        s.EvictableByPrivileged = !s.Privileged || old;
        s.EvictableByAll = old;
    }

    private bool TryEvict(bool privileged, int size, long now)
    {
        FetchSession? lru = null;
        foreach (var s in _sessions.Values)
            if (lru is null || s.LastUsedMs < lru.LastUsedMs || (s.LastUsedMs == lru.LastUsedMs && s.Id < lru.Id)) lru = s;
        if (lru is null) return false;
        if (now - lru.LastUsedMs > _evictionMs)
        {
            Evict(lru);
            return true;
        }
        FetchSession? least = null;
        foreach (var s in _sessions.Values)
        {
            if (!(privileged ? s.EvictableByPrivileged : s.EvictableByAll)) continue;
            if (least is null || CompareKey(s.Privileged, s.CachedSize, s.Id, least.Privileged, least.CachedSize, least.Id) < 0) least = s;
        }
        // The newcomer's key has id 0: it wins ties of privilege and size against any session.
        if (least is null || CompareKey(privileged, size, 0, least.Privileged, least.CachedSize, least.Id) < 0) return false;
        Evict(least);
        return true;
    }

    private void Evict(FetchSession s)
    {
        _sessions.Remove(s.Id);
        Interlocked.Increment(ref _evicted);
    }

    private static int CompareKey(bool p1, int size1, int id1, bool p2, int size2, int id2)
    {
        int c = p1.CompareTo(p2);
        if (c != 0) return c;
        c = size1.CompareTo(size2);
        return c != 0 ? c : id1.CompareTo(id2);
    }
}

/// <summary>A partition as a session remembers it: the fetch parameters last sent and what the last answer told the client.</summary>
internal sealed class CachedPartition(Guid topicId, string? topic, int partition)
{
    public readonly Guid TopicId = topicId;
    public readonly string? Topic = topic;
    public readonly int Partition = partition;
    public int MaxBytes;
    public long FetchOffset;
    public int CurrentLeaderEpoch = -1;
    public int LastFetchedEpoch = -1;
    public long FetcherLogStartOffset = -1;
    public long HighWatermark = -1;
    public long LastStableOffset = -1;
    public long LocalLogStartOffset = -1;
    public LinkedListNode<CachedPartition>? Node;

    public PartitionKey Key => new(TopicId, Topic, Partition);

    public static CachedPartition From(FetchRequest.FetchTopic t, FetchRequest.FetchPartition p, bool usesIds)
    {
        var c = new CachedPartition(usesIds ? t.TopicId : Guid.Empty, usesIds ? null : t.Topic, p.Partition);
        c.UpdateRequest(p);
        return c;
    }

    public void UpdateRequest(FetchRequest.FetchPartition p)
    {
        MaxBytes = p.PartitionMaxBytes;
        FetchOffset = p.FetchOffset;
        CurrentLeaderEpoch = p.CurrentLeaderEpoch;
        LastFetchedEpoch = p.LastFetchedEpoch;
        FetcherLogStartOffset = p.LogStartOffset;
    }

    public FetchRequest.FetchPartition ToRequest() => new()
    {
        Partition = Partition, FetchOffset = FetchOffset, PartitionMaxBytes = MaxBytes,
        CurrentLeaderEpoch = CurrentLeaderEpoch, LastFetchedEpoch = LastFetchedEpoch, LogStartOffset = FetcherLogStartOffset,
    };

    /// <summary>Whether an incremental answer must carry this partition (upstream maybeUpdateResponseData); with
    /// <paramref name="update"/> the remembered values take the answer's.</summary>
    public bool MustRespond(FetchResponse.PartitionData pd, bool update)
    {
        bool must = pd.Records is { Length: > 0 } || pd.PreferredReadReplica != -1 || pd.ErrorCode != 0
            || pd.DivergingEpoch is { EndOffset: >= 0 } || HighWatermark != pd.HighWatermark
            || LastStableOffset != pd.LastStableOffset || LocalLogStartOffset != pd.LogStartOffset;
        if (update)
        {
            // After an error the next answer carries the partition again (upstream sets the cached high watermark to -1).
            HighWatermark = pd.ErrorCode != 0 ? -1 : pd.HighWatermark;
            LastStableOffset = pd.LastStableOffset;
            LocalLogStartOffset = pd.LogStartOffset;
        }
        return must;
    }
}

internal readonly record struct PartitionKey(Guid TopicId, string? Topic, int Partition);

internal sealed class FetchSession
{
    private readonly LinkedList<CachedPartition> _order = new();
    private readonly Dictionary<PartitionKey, CachedPartition> _byKey = [];

    public FetchSession(int id, bool privileged, bool usesTopicIds, long now, List<CachedPartition> partitions)
    {
        Id = id;
        Privileged = privileged;
        UsesTopicIds = usesTopicIds;
        CreationMs = LastUsedMs = now;
        Epoch = FetchSessionCache.NextEpoch(FetchSessionCache.InitialEpoch);
        foreach (var c in partitions) Add(c);
    }

    public int Id { get; }
    public bool Privileged { get; }
    public bool UsesTopicIds { get; }
    public long CreationMs { get; }
    public long LastUsedMs;
    public int Epoch;
    public int CachedSize = -1;
    public bool EvictableByPrivileged, EvictableByAll;

    public int Count => _byKey.Count;
    public bool IsEmpty => _byKey.Count == 0;
    public IEnumerable<CachedPartition> Partitions => _order;

    private void Add(CachedPartition c)
    {
        if (_byKey.TryAdd(c.Key, c)) c.Node = _order.AddLast(c);
    }

    public void MoveToEnd(CachedPartition c)
    {
        if (c.Node is null || c.Node.List is null) return;
        _order.Remove(c.Node);
        _order.AddLast(c.Node);
    }

    /// <summary>Adds or updates the request's partitions, then drops the forgotten ones (upstream FetchSession.update).</summary>
    public void Update(FetchRequest request, bool usesIds)
    {
        foreach (var t in request.Topics)
            foreach (var p in t.Partitions)
            {
                var key = new PartitionKey(usesIds ? t.TopicId : Guid.Empty, usesIds ? null : t.Topic, p.Partition);
                if (_byKey.TryGetValue(key, out var c)) c.UpdateRequest(p);
                else Add(CachedPartition.From(t, p, usesIds));
            }
        foreach (var f in request.ForgottenTopicsData)
            foreach (int p in f.Partitions)
            {
                var key = new PartitionKey(usesIds ? f.TopicId : Guid.Empty, usesIds ? null : f.Topic, p);
                if (_byKey.Remove(key, out var c) && c.Node?.List is not null) _order.Remove(c.Node);
            }
    }
}

/// <summary>How one Fetch is served: which partitions to read and how to turn the read into the answer.</summary>
public sealed class FetchContext
{
    private enum Kind { Sessionless, Full, Incremental, Error }

    private readonly Kind _kind;
    private readonly FetchSessionCache? _cache;
    private readonly FetchSession? _session;
    private readonly bool _usesIds, _privileged;
    private readonly int _requestEpoch;
    // For an incremental fetch, the session's partitions in the order of Request's partitions.
    private readonly List<CachedPartition>? _order;

    private FetchContext(Kind kind, FetchRequest request, ErrorCode error = ErrorCode.None, FetchSessionCache? cache = null,
        FetchSession? session = null, bool usesIds = false, bool privileged = false, int requestEpoch = 0, List<CachedPartition>? order = null)
    {
        _kind = kind;
        Request = request;
        Error = error;
        _cache = cache;
        _session = session;
        _usesIds = usesIds;
        _privileged = privileged;
        _requestEpoch = requestEpoch;
        _order = order;
    }

    /// <summary>The fetch to read: the request itself, or for an incremental fetch every partition of the session.</summary>
    public FetchRequest Request { get; }
    /// <summary>A session error (FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH, FETCH_SESSION_TOPIC_ID_ERROR): answer <see cref="ErrorResponse"/> without reading.</summary>
    public ErrorCode Error { get; }
    public bool IsIncremental => _kind == Kind.Incremental;

    internal static FetchContext Sessionless(FetchRequest request) => new(Kind.Sessionless, request);
    internal static FetchContext Failed(FetchRequest request, ErrorCode error) => new(Kind.Error, request, error);
    internal static FetchContext Full(FetchSessionCache cache, FetchRequest request, bool usesIds, bool privileged) =>
        new(Kind.Full, request, cache: cache, usesIds: usesIds, privileged: privileged);

    internal static FetchContext Incremental(FetchSession session, FetchRequest request, int requestEpoch)
    {
        // Called under the session's lock. Consecutive partitions of one topic share a topic entry,
        // as upstream's FetchResponse.of groups the session's ordered partitions.
        var effective = new FetchRequest
        {
            ClusterId = request.ClusterId, ReplicaId = request.ReplicaId, ReplicaState = request.ReplicaState,
            MaxWaitMs = request.MaxWaitMs, MinBytes = request.MinBytes, MaxBytes = request.MaxBytes,
            IsolationLevel = request.IsolationLevel, SessionId = request.SessionId, SessionEpoch = request.SessionEpoch,
            RackId = request.RackId,
        };
        var order = new List<CachedPartition>(session.Count);
        FetchRequest.FetchTopic? current = null;
        foreach (var c in session.Partitions)
        {
            if (current is null || current.TopicId != c.TopicId || current.Topic != (c.Topic ?? ""))
            {
                current = new FetchRequest.FetchTopic { TopicId = c.TopicId, Topic = c.Topic ?? "" };
                effective.Topics.Add(current);
            }
            current.Partitions.Add(c.ToRequest());
            order.Add(c);
        }
        return new(Kind.Incremental, effective, session: session, usesIds: session.UsesTopicIds, requestEpoch: requestEpoch, order: order);
    }

    /// <summary>The answer to a session error: the error and no partitions (upstream SessionErrorContext).</summary>
    public FetchResponse ErrorResponse() => new() { ErrorCode = (short)Error, SessionId = 0 };

    /// <summary>
    /// Turns a read of <see cref="Request"/> (one topic entry per request topic and one partition
    /// per request partition, in order) into the answer: a full fetch that asked for a session
    /// creates it here and names it; an incremental one keeps only the partitions that must be
    /// sent and updates the session's remembered values.
    /// </summary>
    public FetchResponse Finish(FetchResponse response)
    {
        switch (_kind)
        {
            case Kind.Error:
                return ErrorResponse();
            case Kind.Sessionless:
                response.SessionId = 0;
                return response;
            case Kind.Full:
            {
                var partitions = new List<CachedPartition>();
                for (int t = 0; t < Request.Topics.Count && t < response.Responses.Count; t++)
                {
                    var ft = Request.Topics[t];
                    var tr = response.Responses[t];
                    for (int p = 0; p < ft.Partitions.Count && p < tr.Partitions.Count; p++)
                    {
                        var c = CachedPartition.From(ft, ft.Partitions[p], _usesIds);
                        c.MustRespond(tr.Partitions[p], update: true);
                        partitions.Add(c);
                    }
                }
                response.SessionId = _cache!.MaybeCreate(_privileged, _usesIds, partitions);
                return response;
            }
            default:
                return FinishIncremental(response);
        }
    }

    private FetchResponse FinishIncremental(FetchResponse response)
    {
        var session = _session!;
        lock (session)
        {
            // A duplicate request on the same epoch moved the session on meanwhile (upstream answers the same).
            if (session.Epoch != FetchSessionCache.NextEpoch(_requestEpoch))
            {
                Network.FetchResponseFrames.Release(response);
                return new FetchResponse { ErrorCode = (short)ErrorCode.InvalidFetchSessionEpoch, SessionId = session.Id };
            }
            int i = 0;
            var moved = new List<CachedPartition>();
            for (int t = 0; t < response.Responses.Count; t++)
            {
                var tr = response.Responses[t];
                int kept = 0;
                for (int p = 0; p < tr.Partitions.Count; p++, i++)
                {
                    var pd = tr.Partitions[p];
                    var c = i < _order!.Count ? _order[i] : null;
                    if (c is null || c.MustRespond(pd, update: true))
                    {
                        tr.Partitions[kept++] = pd;
                        if (c is not null && pd.Records is { Length: > 0 }) moved.Add(c);
                    }
                }
                tr.Partitions.RemoveRange(kept, tr.Partitions.Count - kept);
            }
            response.Responses.RemoveAll(tr => tr.Partitions.Count == 0);
            foreach (var c in moved) session.MoveToEnd(c);
            response.SessionId = session.Id;
            return response;
        }
    }
}
