using Samsa.Kafka.Protocol;

namespace Samsa.Kafka.Broker.Groups.Share;

/// <summary>One member's share session on this broker (KIP-932): the partitions it fetches here
/// and the epoch its next request must carry.</summary>
public sealed class ShareSession
{
    public required string GroupId { get; init; }
    public required string MemberId { get; init; }
    public int NextEpoch { get; set; } = 1;
    public HashSet<(Guid TopicId, int Partition)> Partitions { get; } = [];
    public long LastUsedMs { get; set; }
}

/// <summary>
/// The share fetch session cache (upstream ShareSessionCache / ShareRequestMetadata):
/// epoch 0 opens a session (replacing the member's old one), -1 closes it, any other epoch must be
/// the session's next epoch (INVALID_SHARE_SESSION_EPOCH) of an existing session
/// (SHARE_SESSION_NOT_FOUND); after a successful request the epoch moves on, wrapping from
/// Int32.MaxValue to 1. ShareAcknowledge may not open a session (epoch 0 is
/// INVALID_SHARE_SESSION_EPOCH). The cache holds at most max.share.session.cache.size-like
/// <see cref="MaxSessions"/> sessions (SHARE_SESSION_LIMIT_REACHED beyond); sessions unused for
/// two session timeouts are evicted.
/// </summary>
public sealed class ShareSessionCache
{
    private readonly Dictionary<(string, string), ShareSession> _sessions = new();
    private readonly object _gate = new();

    /// <summary>SHARE_SESSION_LIMIT_REACHED (133, Kafka 4.1+; past the shared ErrorCode table).</summary>
    public const ErrorCode ShareSessionLimitReached = (ErrorCode)133;

    public int MaxSessions { get; init; } = 1000;

    public int Count { get { lock (_gate) return _sessions.Count; } }

    public enum Kind { Open, Continue, Close }

    /// <summary>Validates a request's epoch; on success returns the session (a new one for epoch 0,
    /// the previous one in <paramref name="replaced"/>).</summary>
    public ErrorCode Begin(string groupId, string memberId, int epoch, bool isAcknowledge, long nowMs,
        out ShareSession? session, out ShareSession? replaced)
    {
        session = null;
        replaced = null;
        lock (_gate)
        {
            var key = (groupId, memberId);
            if (epoch == 0)
            {
                if (isAcknowledge) return ErrorCode.InvalidShareSessionEpoch;
                _sessions.Remove(key, out replaced);
                if (_sessions.Count >= MaxSessions) return ShareSessionLimitReached;
                session = new ShareSession { GroupId = groupId, MemberId = memberId, LastUsedMs = nowMs };
                _sessions[key] = session;
                return ErrorCode.None;
            }
            if (!_sessions.TryGetValue(key, out var s)) return ErrorCode.ShareSessionNotFound;
            if (epoch == -1)
            {
                _sessions.Remove(key);
                session = s;
                return ErrorCode.None;
            }
            if (epoch != s.NextEpoch) return ErrorCode.InvalidShareSessionEpoch;
            s.NextEpoch = s.NextEpoch == int.MaxValue ? 1 : s.NextEpoch + 1;
            s.LastUsedMs = nowMs;
            session = s;
            return ErrorCode.None;
        }
    }

    /// <summary>Removes sessions idle for longer than <paramref name="idleMs"/>; returns them.</summary>
    public List<ShareSession> Evict(long nowMs, long idleMs)
    {
        lock (_gate)
        {
            var old = _sessions.Where(kv => nowMs - kv.Value.LastUsedMs > idleMs).ToList();
            foreach (var kv in old) _sessions.Remove(kv.Key);
            return old.Select(kv => kv.Value).ToList();
        }
    }

    /// <summary>Removes the session if it is still the member's current one.</summary>
    public bool RemoveIfCurrent(ShareSession session)
    {
        lock (_gate)
        {
            var key = (session.GroupId, session.MemberId);
            return _sessions.TryGetValue(key, out var s) && ReferenceEquals(s, session) && _sessions.Remove(key);
        }
    }

    /// <summary>Drops every session (share.version turned off); returns how many there were.</summary>
    public int RemoveAll()
    {
        lock (_gate)
        {
            int n = _sessions.Count;
            _sessions.Clear();
            return n;
        }
    }

    /// <summary>Drops every session of a member (it left its group).</summary>
    public ShareSession? Remove(string groupId, string memberId)
    {
        lock (_gate) return _sessions.Remove((groupId, memberId), out var s) ? s : null;
    }
}
