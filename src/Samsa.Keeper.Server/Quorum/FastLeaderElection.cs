using System.Buffers.Binary;
using System.Text;
using System.Threading.Channels;

namespace Samsa.Keeper.Server.Quorum;

/// <summary>Upstream QuorumPeer.ServerState, with the numbers election notifications carry.</summary>
public enum ServerState { Looking = 0, Following = 1, Leading = 2, Observing = 3 }

/// <summary>A vote: the proposed leader, its last zxid, the election round and its epoch.</summary>
public sealed record Vote(long Id, long Zxid, long ElectionEpoch, long PeerEpoch, ServerState State = ServerState.Looking)
{
    /// <summary>Upstream Vote.equals: while either side is LOOKING all four numbers must match; votes
    /// of peers out of election (following/leading) are compared by leader and epoch only
    /// (ZOOKEEPER-1805). Both sides here send notification version 2.</summary>
    public bool SameAs(Vote o) =>
        State == ServerState.Looking || o.State == ServerState.Looking
            ? Id == o.Id && Zxid == o.Zxid && ElectionEpoch == o.ElectionEpoch && PeerEpoch == o.PeerEpoch
            : Id == o.Id && PeerEpoch == o.PeerEpoch;
}

/// <summary>One election notification as FastLeaderElection sends it.</summary>
public sealed record Notification(ServerState State, long Leader, long Zxid, long ElectionEpoch, long PeerEpoch, int Version, string? Config)
{
    /// <summary>Notification.CURRENTVERSION in 3.8: the message carries the sender's quorum config.</summary>
    public const int CurrentVersion = 2;

    /// <summary>Upstream buildMsg: state (int), leader, zxid, electionEpoch, peerEpoch (longs),
    /// version 2 (int), then the QuorumVerifier string, length-prefixed.</summary>
    public byte[] Encode()
    {
        byte[] cfg = Encoding.UTF8.GetBytes(Config ?? "");
        var b = new byte[44 + cfg.Length];
        BinaryPrimitives.WriteInt32BigEndian(b, (int)State);
        BinaryPrimitives.WriteInt64BigEndian(b.AsSpan(4), Leader);
        BinaryPrimitives.WriteInt64BigEndian(b.AsSpan(12), Zxid);
        BinaryPrimitives.WriteInt64BigEndian(b.AsSpan(20), ElectionEpoch);
        BinaryPrimitives.WriteInt64BigEndian(b.AsSpan(28), PeerEpoch);
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(36), Version);
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(40), cfg.Length);
        cfg.CopyTo(b, 44);
        return b;
    }

    /// <summary>Upstream WorkerReceiver: at least 28 bytes; 28 = pre-ZOOKEEPER-107 (no peer epoch:
    /// taken from the zxid), 40 = no version, otherwise a version, and from version 2 on a config of
    /// checked length. Null with <paramref name="error"/> for a message upstream would skip.</summary>
    public static Notification? Decode(byte[] b, out string? error)
    {
        error = null;
        if (b.Length < 28) { error = $"short notification: {b.Length} bytes"; return null; }
        int rstate = BinaryPrimitives.ReadInt32BigEndian(b);
        long leader = BinaryPrimitives.ReadInt64BigEndian(b.AsSpan(4));
        long zxid = BinaryPrimitives.ReadInt64BigEndian(b.AsSpan(12));
        long electionEpoch = BinaryPrimitives.ReadInt64BigEndian(b.AsSpan(20));
        long peerEpoch;
        int version = 0;
        string? config = null;
        if (b.Length == 28) peerEpoch = zxid >>> 32;
        else
        {
            if (b.Length < 36) { error = $"partial notification: {b.Length} bytes"; return null; }
            peerEpoch = BinaryPrimitives.ReadInt64BigEndian(b.AsSpan(28));
            if (b.Length != 40)
            {
                if (b.Length < 40) { error = $"partial notification: {b.Length} bytes"; return null; }
                version = BinaryPrimitives.ReadInt32BigEndian(b.AsSpan(36));
            }
            if (version > 1)
            {
                if (b.Length < 44) { error = $"partial notification: {b.Length} bytes"; return null; }
                int len = BinaryPrimitives.ReadInt32BigEndian(b.AsSpan(40));
                if (len < 0 || len > b.Length - 44) { error = $"invalid configLength {len} in a {b.Length}-byte notification"; return null; }
                config = Encoding.UTF8.GetString(b, 44, len);
            }
        }
        if (rstate is < 0 or > 3) { error = $"unknown state {rstate}"; return null; }
        return new Notification((ServerState)rstate, leader, zxid, electionEpoch, peerEpoch, version, config);
    }
}

/// <summary>
/// Upstream's FastLeaderElection (electionAlg=3, the only one in 3.8), over a
/// <see cref="QuorumCnxManager"/>: peers exchange votes (leader, zxid, peer epoch) in numbered
/// rounds; a vote replaces the current one when its (peer epoch, zxid, server id) is larger
/// (totalOrderPredicate); a peer settles when a majority of voters hold its vote and no better one
/// arrives within finalizeWait (200 ms), or when a majority of peers already out of election
/// follow a leader that confirms it leads (checkLeader). While not looking it answers looking peers
/// with its current vote, so a restarted member learns the leader.
/// </summary>
public sealed class FastLeaderElection : IAsyncDisposable
{
    private const int FinalizeWaitMs = 200;
    private const int MaxNotificationIntervalMs = 60000;

    private readonly QuorumCnxManager _cnx;
    private readonly long _myId;
    private readonly QuorumConfig _config;
    private readonly Func<long> _lastLoggedZxid;
    private readonly Func<long> _currentEpoch;
    private readonly Action<string> _log;
    private readonly Channel<(long Sid, Notification N)> _recv = Channel.CreateUnbounded<(long, Notification)>();
    private readonly CancellationTokenSource _stop = new();
    private readonly object _gate = new();
    private Task? _receiver;
    private long _logicalClock;
    private long _proposedLeader = -1, _proposedZxid = -1, _proposedEpoch = -1;

    public FastLeaderElection(QuorumCnxManager cnx, long myId, QuorumConfig config, Func<long> lastLoggedZxid, Func<long> currentEpoch, Action<string> log)
    {
        _cnx = cnx; _myId = myId; _config = config;
        _lastLoggedZxid = lastLoggedZxid; _currentEpoch = currentEpoch; _log = log;
    }

    /// <summary>This peer's state (upstream QuorumPeer.getPeerState); set to Looking to elect again.</summary>
    public volatile ServerState State = ServerState.Looking;
    /// <summary>The vote this peer stands by (upstream getCurrentVote): the election's result once settled.</summary>
    public Vote? CurrentVote { get; set; }
    public long LogicalClock => Interlocked.Read(ref _logicalClock);

    /// <summary>Upstream QuorumPeer.updateElectionVote (ZOOKEEPER-1732): once synced in a new epoch,
    /// the vote this member reports to looking peers carries that epoch, as the leader's does, so
    /// a restarted member sees the same (leader, epoch) from everyone out of election.</summary>
    public void UpdateElectionVote(long newEpoch)
    {
        if (CurrentVote is { } v) CurrentVote = v with { PeerEpoch = newEpoch };
    }

    public void Start() => _receiver = ReceiveLoopAsync();

    private bool IsVoter(long sid) => _config.Servers.TryGetValue(sid, out var s) && s.Type == LearnerType.Participant;
    private int VoterCount => _config.Voters.Count();

    private void Send(long sid, ServerState state, long leader, long zxid, long electionEpoch, long peerEpoch) =>
        _cnx.ToSend(sid, new Notification(state, leader, zxid, electionEpoch, peerEpoch, Notification.CurrentVersion, _config.VerifierString()).Encode());

    private void SendNotifications()
    {
        long l, z, e, c;
        lock (_gate) { l = _proposedLeader; z = _proposedZxid; e = _proposedEpoch; c = _logicalClock; }
        foreach (var s in _config.Voters) Send(s.Id, ServerState.Looking, l, z, c, e);
    }

    /// <summary>Upstream totalOrderPredicate: higher peer epoch, then higher zxid, then higher sid.</summary>
    public static bool TotalOrderPredicate(long newId, long newZxid, long newEpoch, long curId, long curZxid, long curEpoch) =>
        newEpoch > curEpoch || (newEpoch == curEpoch && (newZxid > curZxid || (newZxid == curZxid && newId > curId)));

    private bool Better(long newId, long newZxid, long newEpoch, long curId, long curZxid, long curEpoch) =>
        IsVoter(newId) && TotalOrderPredicate(newId, newZxid, newEpoch, curId, curZxid, curEpoch);

    private void UpdateProposal(long leader, long zxid, long epoch)
    {
        lock (_gate) { _proposedLeader = leader; _proposedZxid = zxid; _proposedEpoch = epoch; }
    }

    /// <summary>Upstream Messenger.WorkerReceiver: decode, answer non-voters and lagging or looking
    /// peers, and queue notifications for <see cref="LookForLeaderAsync"/> while looking.</summary>
    private async Task ReceiveLoopAsync()
    {
        try
        {
            await foreach (var (sid, bytes) in _cnx.Received.ReadAllAsync(_stop.Token))
            {
                var n = Notification.Decode(bytes, out var error);
                if (n is null)
                {
                    _log($"election: skipping a malformed notification from {sid}: {error}");
                    continue;
                }
                if (n.Config is not null)
                {
                    try
                    {
                        var rqv = QuorumConfig.ParseVerifier(n.Config);
                        // upstream WorkerReceiver: a newer config from a peer means a reconfiguration
                        // committed while we were away; a looking member adopts it (processReconfig)
                        // and the election goes on with the new voters (IsVoter reads the config)
                        if (rqv.Version > _config.Version && !SameMembers(rqv, _config))
                        {
                            if (!_config.ReconfigEnabled)
                                _log($"election: server {sid} has quorum config version {rqv.Version:x} with other members; reconfigEnabled is false, so it is not adopted");
                            else if (State == ServerState.Looking)
                            {
                                _config.Activate(rqv, _log); // QuorumMember refreshes /zookeeper/config after the election
                            }
                        }
                    }
                    catch (KeeperConfigException e) { _log($"election: bad config in a notification from {sid}: {e.Message}"); }
                }
                if (!IsVoter(sid))
                {
                    var cur = CurrentVote ?? new Vote(_proposedLeader, _proposedZxid, LogicalClock, _proposedEpoch);
                    Send(sid, State, cur.Id, cur.Zxid, LogicalClock, cur.PeerEpoch);
                    continue;
                }
                _log($"election: notification from {sid}: state {n.State}, leader {n.Leader}, zxid 0x{n.Zxid:x}, round 0x{n.ElectionEpoch:x}, peerEpoch 0x{n.PeerEpoch:x} (my state {State})");
                if (State == ServerState.Looking)
                {
                    _recv.Writer.TryWrite((sid, n));
                    if (n.State == ServerState.Looking && n.ElectionEpoch < LogicalClock)
                    {
                        long l, z, e;
                        lock (_gate) { l = _proposedLeader; z = _proposedZxid; e = _proposedEpoch; }
                        Send(sid, State, l, z, LogicalClock, e);
                    }
                }
                else if (n.State == ServerState.Looking && CurrentVote is { } cur)
                {
                    Send(sid, State, cur.Id, cur.Zxid, cur.ElectionEpoch, cur.PeerEpoch);
                }
            }
        }
        catch (OperationCanceledException) { }
    }

    private static bool SameMembers(QuorumConfig a, QuorumConfig b) =>
        a.Servers.Count == b.Servers.Count && a.Servers.All(kv => b.Servers.TryGetValue(kv.Key, out var o) && o.Host == kv.Value.Host
            && o.QuorumPort == kv.Value.QuorumPort && o.ElectionPort == kv.Value.ElectionPort && o.Type == kv.Value.Type);

    private bool HasQuorum(Dictionary<long, Vote> votes, Vote vote) =>
        votes.Count(kv => IsVoter(kv.Key) && vote.SameAs(kv.Value)) * 2 > VoterCount;

    /// <summary>Upstream checkLeader: another leader must have said it leads; ourselves only in this round.</summary>
    private bool CheckLeader(Dictionary<long, Vote> votes, long leader, long electionEpoch) =>
        leader != _myId
            ? votes.TryGetValue(leader, out var v) && v.State == ServerState.Leading
            : LogicalClock == electionEpoch;

    /// <summary>Runs one election (upstream lookForLeader); sets <see cref="State"/> and
    /// <see cref="CurrentVote"/> and returns the vote it settled on.</summary>
    public async Task<Vote> LookForLeaderAsync(CancellationToken ct)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, _stop.Token);
        State = ServerState.Looking;
        var recvset = new Dictionary<long, Vote>();
        var outOfElection = new Dictionary<long, Vote>();
        int notTimeout = FinalizeWaitMs;
        // upstream getInitId/getInitLastLoggedZxid/getPeerEpoch: an observer proposes nobody
        // (Long.MIN_VALUE for all three), so it only adopts the voters' choice and never wins
        bool voter = IsVoter(_myId);
        long initZxid = voter ? _lastLoggedZxid() : long.MinValue, initEpoch = voter ? _currentEpoch() : long.MinValue;
        long initId = voter ? _myId : long.MinValue;
        Interlocked.Increment(ref _logicalClock);
        UpdateProposal(initId, initZxid, initEpoch);
        _log($"election: new election, my id {_myId}, proposed zxid 0x{initZxid:x}, round 0x{LogicalClock:x}");
        SendNotifications();
        while (State == ServerState.Looking)
        {
            var got = await PollAsync(notTimeout, linked.Token);
            if (got is null)
            {
                if (_cnx.HaveDelivered()) SendNotifications(); else _cnx.ConnectAll();
                notTimeout = Math.Min(notTimeout << 1, MaxNotificationIntervalMs);
                continue;
            }
            var (sid, n) = got.Value;
            if (!IsVoter(sid) || !IsVoter(n.Leader)) continue;
            switch (n.State)
            {
                case ServerState.Looking:
                    if (initZxid == -1 || n.Zxid == -1) break;
                    if (n.ElectionEpoch > LogicalClock)
                    {
                        Interlocked.Exchange(ref _logicalClock, n.ElectionEpoch);
                        recvset.Clear();
                        if (Better(n.Leader, n.Zxid, n.PeerEpoch, initId, initZxid, initEpoch)) UpdateProposal(n.Leader, n.Zxid, n.PeerEpoch);
                        else UpdateProposal(initId, initZxid, initEpoch);
                        SendNotifications();
                    }
                    else if (n.ElectionEpoch < LogicalClock) break;
                    else if (Better(n.Leader, n.Zxid, n.PeerEpoch, _proposedLeader, _proposedZxid, _proposedEpoch))
                    {
                        UpdateProposal(n.Leader, n.Zxid, n.PeerEpoch);
                        SendNotifications();
                    }
                    recvset[sid] = new Vote(n.Leader, n.Zxid, n.ElectionEpoch, n.PeerEpoch);
                    var mine = new Vote(_proposedLeader, _proposedZxid, LogicalClock, _proposedEpoch);
                    if (HasQuorum(recvset, mine))
                    {
                        // wait finalizeWait for a better vote before settling
                        bool better = false;
                        while (await PollAsync(FinalizeWaitMs, linked.Token) is { } next)
                        {
                            if (Better(next.N.Leader, next.N.Zxid, next.N.PeerEpoch, _proposedLeader, _proposedZxid, _proposedEpoch))
                            {
                                _recv.Writer.TryWrite(next); // upstream puts it back (at the tail)
                                better = true;
                                break;
                            }
                        }
                        if (!better) return Settle(new Vote(_proposedLeader, _proposedZxid, LogicalClock, _proposedEpoch));
                    }
                    break;
                case ServerState.Observing:
                    break;
                case ServerState.Following:
                case ServerState.Leading:
                    {
                        // upstream receivedFollowingNotification (leading adds only the oracle, for 2-member ensembles)
                        if (n.ElectionEpoch == LogicalClock)
                        {
                            recvset[sid] = new Vote(n.Leader, n.Zxid, n.ElectionEpoch, n.PeerEpoch, n.State);
                            var v = new Vote(n.Leader, n.Zxid, n.ElectionEpoch, n.PeerEpoch, n.State);
                            if (HasQuorum(recvset, v) && CheckLeader(recvset, n.Leader, n.ElectionEpoch))
                                return Settle(new Vote(n.Leader, n.Zxid, n.ElectionEpoch, n.PeerEpoch));
                        }
                        outOfElection[sid] = new Vote(n.Leader, n.Zxid, n.ElectionEpoch, n.PeerEpoch, n.State);
                        var ov = new Vote(n.Leader, n.Zxid, n.ElectionEpoch, n.PeerEpoch, n.State);
                        if (HasQuorum(outOfElection, ov) && CheckLeader(outOfElection, n.Leader, n.ElectionEpoch))
                        {
                            Interlocked.Exchange(ref _logicalClock, n.ElectionEpoch);
                            return Settle(new Vote(n.Leader, n.Zxid, n.ElectionEpoch, n.PeerEpoch));
                        }
                        break;
                    }
            }
        }
        return CurrentVote!;
    }

    private Vote Settle(Vote v)
    {
        CurrentVote = v;
        // upstream learningState(): a non-voter that settles on a leader observes it
        // upstream learningState: a member a reconfig dropped from the view stays a (non-voting) participant and follows
        State = v.Id == _myId ? ServerState.Leading
            : IsVoter(_myId) || !_config.Servers.ContainsKey(_myId) ? ServerState.Following : ServerState.Observing;
        while (_recv.Reader.TryRead(out _)) { } // upstream leaveInstance clears the queue
        _log($"election: settled on leader {v.Id} (zxid 0x{v.Zxid:x}, round 0x{v.ElectionEpoch:x}, peerEpoch 0x{v.PeerEpoch:x}); now {State}");
        return v;
    }

    private async Task<(long Sid, Notification N)?> PollAsync(int ms, CancellationToken ct)
    {
        if (_recv.Reader.TryRead(out var x)) return x;
        using var t = CancellationTokenSource.CreateLinkedTokenSource(ct);
        t.CancelAfter(ms);
        try
        {
            return await _recv.Reader.ReadAsync(t.Token);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested) { return null; }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        if (_receiver is not null) { try { await _receiver; } catch (Exception) { } }
    }
}
