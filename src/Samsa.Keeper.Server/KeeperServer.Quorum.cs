using Samsa.Keeper.Protocol;
using Samsa.Keeper.Protocol.Records;

namespace Samsa.Keeper.Server;

/// <summary>What a follower's server needs from its link to the leader (Quorum/ZabFollower).</summary>
public interface ILeaderLink
{
    /// <summary>The member's server id (the top byte of the session ids it hands out).</summary>
    long MyId { get; }
    /// <summary>True while synced with a leader (upstream serves clients only then).</summary>
    bool Serving { get; }
    /// <summary>Sends a client request to the leader as a REQUEST packet; false when not connected.</summary>
    bool Forward(long sessionId, int cxid, int type, byte[] body, List<Id> authInfo);
    /// <summary>Asks the leader whether a session this member does not own is valid (REVALIDATE).</summary>
    bool Revalidate(long sessionId, int timeout);
    /// <summary>True when this member is the ensemble's leader (srvr/mntr say "leader").</summary>
    bool Leading => false;
    /// <summary>True when this member observes (srvr/mntr say "observer").</summary>
    bool Observing => false;
    /// <summary>The leader's learner and proposal figures (mntr, srvr), while leading.</summary>
    Quorum.LeaderStats? LeaderStats => null;
    /// <summary>True while the member is looking for a leader (election; read-only mode may serve then).</summary>
    bool Looking => false;
    /// <summary>The leader this member follows, observes or is (id and its server line's host), once known.</summary>
    (long Id, string Host)? LeaderOf => null;
}

/// <summary>
/// The Keeper as a follower's server (upstream FollowerZooKeeperServer): reads are answered from
/// the local tree; writes, session creation and closeSession go to the leader as REQUEST packets
/// (FollowerRequestProcessor) and are answered when their txn comes back committed
/// (CommitProcessor → FinalRequestProcessor); reconnecting to a session created elsewhere asks the
/// leader (REVALIDATE). Sessions expire at the leader, which learns from this member's PING
/// answers which sessions it keeps alive. Txns are applied here in commit order, with watches.
/// </summary>
public sealed partial class KeeperServer
{
    private ILeaderLink? _leaderLink;
    private readonly Dictionary<(long Session, int Cxid), PendingReply> _pendingReplies = new();
    private readonly Dictionary<long, (ServerConnection Conn, int Timeout, bool HasReadOnly)> _pendingRevalidations = new();

    private readonly Queue<(PendingReply Reply, string? Path)> _pendingSyncs = new();

    private sealed record PendingReply(ServerConnection Conn, int Xid, int Type, string LastOp, long Received, bool HasReadOnly);

    /// <summary>Makes this server a follower's: call before <see cref="Start"/>. The caller owns the
    /// data directory (txn log, snapshots) through the quorum's LearnerStore.</summary>
    public void UseLeaderLink(ILeaderLink link)
    {
        _leaderLink = link;
        // upstream SessionTrackerImpl.initializeNextSessionId(myid): the server id in the top byte
        _nextSessionId = (long)((ulong)(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() << 24) >> 8) | (link.MyId << 56);
        if (_nextSessionId == EphemeralOwner.Container) _nextSessionId++;
    }

    public bool IsFollower => _leaderLink is not null;

    /// <summary>False while a quorum member is not synced with a leader (upstream: the ZooKeeperServer is not running).</summary>
    public bool Serving => _leaderLink is null || _leaderLink.Serving;

    /// <summary>"standalone", "follower" or "leader": srvr's Mode and mntr's zk_server_state.</summary>
    public string ServerState => _leaderLink is null ? "standalone" : _readOnlyActive ? "read-only" : _leaderLink.Leading ? "leader" : _leaderLink.Observing ? "observer" : "follower";

    /// <summary>The leader's figures for mntr/srvr/admin (null unless leading).</summary>
    public Quorum.LeaderStats? LeaderStats => _leaderLink?.LeaderStats;

    /// <summary>The AdminServer's leader command: the current leader's id and host (null standalone or before one is known).</summary>
    public (long Id, string Host)? QuorumLeader => _leaderLink?.LeaderOf;

    /// <summary>The sessions whose clients are connected here, with their timeouts: the touch table a
    /// follower sends in its PING answer. Runs on the loop.</summary>
    public Task<Dictionary<long, int>> TouchTableAsync() =>
        RunOnLoopAsync(() => _sessions.Values.Where(s => s.Owner is not null && !s.Closing && !s.Local).ToDictionary(s => s.Id, s => s.Timeout));

    private void ConnectAsFollower(ServerConnection conn, ConnectRequest req, int timeout, bool hasReadOnly)
    {
        if (!_leaderLink!.Serving)
        {
            // upstream: ZooKeeperServer not running → the connection is closed, unless the member
            // serves read-only clients (KeeperServer.ReadOnly)
            if (!TryConnectReadOnly(conn, req, timeout, hasReadOnly)) QueueClose(conn);
            return;
        }
        conn.Handshaken = true;
        conn.SessionTimeout = timeout;
        if (req.SessionId == 0 && TryCreateLocalSession(conn, timeout, hasReadOnly)) return;
        if (req.SessionId == 0)
        {
            long id = _nextSessionId++;
            if (id == EphemeralOwner.Container) id = _nextSessionId++;
            conn.SessionId = id;
            var body = new byte[4];
            System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(body, timeout);
            _pendingReplies[(id, 0)] = new PendingReply(conn, 0, OpCode.CreateSession, "NA", System.Diagnostics.Stopwatch.GetTimestamp(), hasReadOnly);
            if (!_leaderLink.Forward(id, 0, OpCode.CreateSession, body, new List<Id>(conn.AuthInfo)))
            {
                _pendingReplies.Remove((id, 0));
                QueueClose(conn);
            }
            return;
        }
        if (req.Passwd is null || !req.Passwd.AsSpan().SequenceEqual(GeneratePasswd(req.SessionId)))
        {
            SendConnectResponse(conn, 0, 0, new byte[16], hasReadOnly);
            QueueClose(conn);
            return;
        }
        if (TryReconnectLocal(conn, req.SessionId, timeout, hasReadOnly)) return;
        // a session created elsewhere (or before a reconnect): the leader says whether it lives
        // (upstream Learner.validateSession)
        _pendingRevalidations[req.SessionId] = (conn, timeout, hasReadOnly);
        if (!_leaderLink.Revalidate(req.SessionId, timeout))
        {
            _pendingRevalidations.Remove(req.SessionId);
            QueueClose(conn);
        }
    }

    /// <summary>The leader's REVALIDATE answer (posted to the loop by the follower thread).</summary>
    public void SessionRevalidated(long sessionId, bool valid) => _work.Writer.TryWrite(new ActionItem(() =>
    {
        if (!_pendingRevalidations.Remove(sessionId, out var p) || p.Conn.Closed) return;
        if (!valid)
        {
            SendConnectResponse(p.Conn, 0, 0, new byte[16], p.HasReadOnly);
            QueueClose(p.Conn);
            return;
        }
        if (!_sessions.TryGetValue(sessionId, out var s))
        {
            s = new Session { Id = sessionId, Timeout = p.Timeout };
            _sessions[sessionId] = s;
        }
        if (s.Owner is not null && s.Owner != p.Conn)
        {
            Tree.DataWatches.RemoveWatcher(s.Owner);
            Tree.ChildWatches.RemoveWatcher(s.Owner);
            s.Owner.Closed = true;
            QueueClose(s.Owner);
        }
        s.Owner = p.Conn;
        s.Timeout = p.Timeout;
        p.Conn.SessionId = sessionId;
        SendConnectResponse(p.Conn, p.Timeout, sessionId, GeneratePasswd(sessionId), p.HasReadOnly);
    }));

    /// <summary>Forwards a write or closeSession of an established session; the reply waits for the commit.</summary>
    private void ForwardToLeader(ServerConnection conn, RequestHeader h, ReadOnlySpan<byte> body, long received)
    {
        string lastOp = h.Type switch
        {
            OpCode.Create or OpCode.Create2 or OpCode.CreateContainer or OpCode.CreateTTL => "CREA",
            OpCode.Delete or OpCode.DeleteContainer => "DELE",
            OpCode.SetData => "SETD",
            OpCode.SetACL => "SETA",
            OpCode.Check => "CHEC",
            OpCode.Multi => "MULT",
            OpCode.Reconfig => "RECO",
            OpCode.CloseSession => "CLOS",
            _ => "NA",
        };
        _pendingReplies[(conn.SessionId, h.Xid)] = new PendingReply(conn, h.Xid, h.Type, lastOp, received, false);
        if (!_leaderLink!.Forward(conn.SessionId, h.Xid, h.Type, body.ToArray(), new List<Id>(conn.AuthInfo)))
        {
            _pendingReplies.Remove((conn.SessionId, h.Xid));
            QueueClose(conn);
        }
        else Forwarded(conn);
    }

    /// <summary>Upstream FollowerRequestProcessor: sync goes to the leader, which answers SYNC once
    /// every proposal before it is committed; the answers come in request order, so a queue pairs
    /// them with the waiting clients (upstream FollowerZooKeeperServer.pendingSyncs).</summary>
    private void ForwardSync(ServerConnection conn, RequestHeader h, ReadOnlySpan<byte> body, long received)
    {
        string? path;
        try
        {
            var r = new JuteReader(body, Config.JuteMaxBuffer);
            path = SyncRequest.Read(ref r).Path;
        }
        catch (JuteException)
        {
            Reply(conn, h.Xid, Tree.LastProcessedZxid, (int)Code.MarshallingError, null, "SYNC", received);
            return;
        }
        var p = new PendingReply(conn, h.Xid, OpCode.Sync, "SYNC", received, false);
        _pendingSyncs.Enqueue((p, path));
        if (!_leaderLink!.Forward(conn.SessionId, h.Xid, OpCode.Sync, body.ToArray(), new List<Id>(conn.AuthInfo)))
        {
            // dequeue what was just added (it is the newest; older ones stay paired with their answers)
            var kept = _pendingSyncs.Where(x => !ReferenceEquals(x.Reply, p)).ToList();
            _pendingSyncs.Clear();
            foreach (var k in kept) _pendingSyncs.Enqueue(k);
            QueueClose(conn);
        }
        else Forwarded(conn);
    }

    /// <summary>The leader's SYNC answer: the oldest waiting sync is answered (after the commits
    /// before it, which the follower thread has applied on this loop already).</summary>
    public void SyncAnswered() => _work.Writer.TryWrite(new ActionItem(() =>
    {
        if (!_pendingSyncs.TryDequeue(out var s)) return;
        if (!s.Reply.Conn.Closed) Reply(s.Reply.Conn, s.Reply.Xid, Tree.LastProcessedZxid, 0, new SyncResponse { Path = s.Path }, "SYNC", s.Reply.Received);
        ForwardedAnswered(s.Reply.Conn);
    }));

    /// <summary>Applies a committed txn from the leader, fires its watches and answers the local
    /// client that asked for it. Called on the loop (see <see cref="ApplyCommittedAsync"/>).</summary>
    private void ApplyCommitted(TxnHeader hdr, IJuteRecord txn)
    {
        var rc = Tree.ProcessTxn(hdr, txn);
        switch (hdr.Type)
        {
            case OpCode.CreateSession when txn is CreateSessionTxn cs:
                if (!_sessions.ContainsKey(hdr.ClientId)) _sessions[hdr.ClientId] = new Session { Id = hdr.ClientId, Timeout = cs.TimeOut };
                break;
            case OpCode.CloseSession:
                if (_sessions.Remove(hdr.ClientId, out var closed) && closed.Owner is not null && !_pendingReplies.ContainsKey((hdr.ClientId, hdr.Cxid)))
                {
                    // expired at the leader: the client learns by its connection closing
                    QueueClose(closed.Owner);
                    closed.Owner = null;
                }
                break;
        }
        DispatchTriggers();
        if (!_pendingReplies.Remove((hdr.ClientId, hdr.Cxid), out var p)) return;
        if (p.Type == OpCode.CreateSession)
        {
            if (p.Conn.Closed) return;
            if (!_sessions.TryGetValue(hdr.ClientId, out var s))
            {
                // the leader refused the session (an error txn): the client is told its session is gone
                SendConnectResponse(p.Conn, 0, 0, new byte[16], p.HasReadOnly);
                QueueClose(p.Conn);
                return;
            }
            s.Owner = p.Conn;
            SendConnectResponse(p.Conn, s.Timeout, s.Id, GeneratePasswd(s.Id), p.HasReadOnly);
            return;
        }
        if (p.Type == OpCode.CloseSession)
        {
            Reply(p.Conn, p.Xid, hdr.Zxid, 0, null, p.LastOp, p.Received);
            QueueClose(p.Conn);
            return;
        }
        if (p.Conn.Closed) return;
        int err = hdr.Type == OpCode.Error ? ((ErrorTxn)txn).Err : rc.Err;
        IJuteRecord? rsp = null;
        if (p.Type == OpCode.Multi && rc.MultiResult is not null)
            rsp = new MultiResponse(rc.MultiResult.Select(MultiResponse.Result.From).ToList());
        else if (err == 0)
            rsp = p.Type switch
            {
                OpCode.Create => new CreateResponse { Path = rc.Path },
                OpCode.Create2 or OpCode.CreateTTL or OpCode.CreateContainer => new Create2Response { Path = rc.Path, Stat = rc.Stat! },
                OpCode.SetData => new SetDataResponse { Stat = rc.Stat! },
                OpCode.SetACL => new SetACLResponse { Stat = rc.Stat! },
                OpCode.Check => new SetDataResponse { Stat = rc.Stat ?? new Stat() },
                OpCode.Reconfig => ReconfigResponse(rc.Stat),
                _ => null,
            };
        // a multi answers OK at the header with the per-op results in the body, as standalone does
        Reply(p.Conn, p.Xid, hdr.Zxid, p.Type == OpCode.Multi ? 0 : err, p.Type == OpCode.Multi ? rsp : (err == 0 ? rsp : null), p.LastOp, p.Received);
    }

    /// <summary>Runs <see cref="ApplyCommitted"/> on the loop for a run of committed txns, in
    /// order, in one trip (the leader's commit thread and the follower thread hand over every
    /// commit they have at once; upstream's CommitProcessor likewise applies a run of committed
    /// requests per wake-up).</summary>
    public Task ApplyCommittedAsync(IReadOnlyList<(TxnHeader Hdr, IJuteRecord Txn)> txns) => RunOnLoopAsync(() =>
    {
        foreach (var (hdr, txn) in txns)
        {
            var asker = _pendingReplies.TryGetValue((hdr.ClientId, hdr.Cxid), out var p) ? p.Conn : null;
            ApplyCommitted(hdr, txn);
            // requests the client sent behind this one run after its answer (KeeperServer.SessionOrder)
            if (asker is not null) ForwardedAnswered(asker);
        }
        return 0;
    });

    /// <summary>The connection to the leader ended: requests waiting for commits will not get them;
    /// their clients are disconnected (upstream closes all client connections when it stops following).</summary>
    public void LeaderLost() => _work.Writer.TryWrite(new ActionItem(() =>
    {
        foreach (var p in _pendingReplies.Values) QueueClose(p.Conn);
        _pendingReplies.Clear();
        foreach (var p in _pendingRevalidations.Values) QueueClose(p.Conn);
        _pendingRevalidations.Clear();
        foreach (var s in _pendingSyncs) QueueClose(s.Reply.Conn);
        _pendingSyncs.Clear();
        foreach (var c in _connections.ToList()) QueueClose(c);
        _order.Clear();
        DropLocalSessions();
    }));
}
