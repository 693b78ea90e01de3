using Samsa.Keeper.Protocol;
using Samsa.Keeper.Protocol.Records;

namespace Samsa.Keeper.Server;

/// <summary>
/// Local sessions of a quorum member (zoo.cfg localSessionsEnabled / localSessionsUpgradingEnabled),
/// as upstream's UpgradeableSessionTracker family (LearnerSessionTracker, LeaderSessionTracker,
/// LocalSessionTracker) with QuorumZooKeeperServer.setLocalSessionFlag and
/// ZooKeeperServer.checkUpgradeSession:
/// <list type="bullet">
/// <item>a new session is created on the member the client connected to, with no createSession
/// proposal; its id has the usual layout (this member's id in the top byte, the same counter);</item>
/// <item>it expires here (the leader never hears of it: it is left out of the PING touch table),
/// and its closeSession is answered here without a txn;</item>
/// <item>its writes go to the leader as any other; the leader lets a session id of another member
/// pass (LeaderSessionTracker.checkSession with local sessions on) — see ZabLeader.Process;</item>
/// <item>the first create/create2 of an ephemeral node (alone or inside a multi) upgrades it: a
/// createSession for the same id goes to the leader first, then the create (FollowerRequestProcessor
/// / LeaderRequestProcessor order). With upgrading off, that create is answered
/// EPHEMERALONLOCALSESSION (-120);</item>
/// <item>a local session cannot move: reconnecting to another member asks the leader (REVALIDATE),
/// which does not know it, so the client is told its session expired.</item>
/// </list>
/// When the member stops following or leading, its local sessions end with its server (upstream
/// shuts the learner's ZooKeeperServer down and its local tracker with it).
/// All of this runs on the server loop.
/// </summary>
public sealed partial class KeeperServer
{
    private bool LocalSessionsEnabled => _leaderLink is not null && Config.Quorum.LocalSessionsEnabled;

    /// <summary>Upstream getServerIdFromSessionId.</summary>
    public static long ServerIdOfSession(long sessionId) => sessionId >> 56;

    private long NextSessionId()
    {
        long id = _nextSessionId++;
        if (id == EphemeralOwner.Container) id = _nextSessionId++;
        return id;
    }

    /// <summary>A new session of a serving quorum member with local sessions on: created here, answered at once.</summary>
    private bool TryCreateLocalSession(ServerConnection conn, int timeout, bool hasReadOnly)
    {
        if (!LocalSessionsEnabled) return false;
        long id = NextSessionId();
        var s = new Session { Id = id, Timeout = timeout, Owner = conn, Local = true };
        _sessions[id] = s;
        Touch(s, Now);
        conn.SessionId = id;
        SendConnectResponse(conn, timeout, id, GeneratePasswd(id), hasReadOnly);
        return true;
    }

    /// <summary>A client returning to the member that holds its local session (upstream
    /// LearnerZooKeeperServer.revalidateSession checks the local tracker before asking the leader).</summary>
    private bool TryReconnectLocal(ServerConnection conn, long sessionId, int timeout, bool hasReadOnly)
    {
        if (!_sessions.TryGetValue(sessionId, out var s) || !s.Local || s.Closing) return false;
        TakeOver(s, conn, timeout);
        SendConnectResponse(conn, timeout, s.Id, GeneratePasswd(s.Id), hasReadOnly, readOnly: s.ReadOnlyMode);
        return true;
    }

    private void TakeOver(Session s, ServerConnection conn, int timeout)
    {
        if (s.Owner is not null && s.Owner != conn)
        {
            Tree.DataWatches.RemoveWatcher(s.Owner);
            Tree.ChildWatches.RemoveWatcher(s.Owner);
            s.Owner.Closed = true;
            QueueClose(s.Owner);
            _readOnlyConns.Remove(s.Owner);
        }
        s.Owner = conn;
        s.Timeout = timeout;
        Touch(s, Now);
        conn.SessionId = s.Id;
    }

    /// <summary>Requests of a local session that differ from a global one's; true when handled here.</summary>
    private bool HandleLocalSessionRequest(ServerConnection conn, Session session, RequestHeader h, ReadOnlySpan<byte> body, long received)
    {
        if (h.Type == OpCode.CloseSession)
        {
            // upstream: "Submitting local closeSession request" — no txn, nothing to delete
            session.Owner = null;
            EndLocalSession(session);
            Reply(conn, h.Xid, Tree.LastProcessedZxid, 0, null, "CLOS", received);
            QueueClose(conn);
            return true;
        }
        if (h.Type is not (OpCode.Create or OpCode.Create2 or OpCode.Multi)) return false;
        bool ephemeral;
        try { ephemeral = CreatesEphemeral(h.Type, body); }
        catch (JuteException) { return false; } // the leader answers the malformed request as it would any other
        if (!ephemeral) return false;
        if (!Config.Quorum.LocalSessionsUpgradingEnabled)
        {
            Reply(conn, h.Xid, Tree.LastProcessedZxid, (int)Code.EphemeralOnLocalSession, null, h.Type == OpCode.Multi ? "MULT" : "CREA", received);
            return true;
        }
        // upstream makeUpgradeRequest: the session is global from now on (its PINGs carry it), and a
        // createSession with its id and timeout goes to the leader ahead of the create itself
        session.Local = false;
        var to = new byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(to, session.Timeout);
        if (!_leaderLink!.Forward(session.Id, 0, OpCode.CreateSession, to, new List<Id>()))
        {
            QueueClose(conn);
            return true;
        }
        UpgradedSessions++;
        return false; // the create follows on the ordinary forwarding path
    }

    /// <summary>Local sessions upgraded to global ones since start (tests, mntr-style figures).</summary>
    public long UpgradedSessions { get; private set; }

    /// <summary>Upstream checkUpgradeSession: create/create2 with an ephemeral mode, or a multi holding one.</summary>
    private bool CreatesEphemeral(int type, ReadOnlySpan<byte> body)
    {
        if (type == OpCode.Multi)
        {
            foreach (var (t, req) in ReadMultiOps(body, write: true))
                if (t is OpCode.Create or OpCode.Create2 && req is CreateRequest c && CreateMode.IsEphemeral(c.Flags)) return true;
            return false;
        }
        var r = new JuteReader(body, Config.JuteMaxBuffer);
        return CreateMode.IsEphemeral(CreateRequest.Read(ref r).Flags);
    }

    private void EndLocalSession(Session s)
    {
        s.Closing = true;
        _sessions.Remove(s.Id);
        if (s.Owner is not null)
        {
            _readOnlyConns.Remove(s.Owner);
            QueueClose(s.Owner);
            s.Owner = null;
        }
    }

    /// <summary>On the loop's tick while in an ensemble: local (and read-only) sessions expire here,
    /// global ones at the leader; read-only mode starts and ends.</summary>
    private void OnQuorumTick(long now)
    {
        foreach (var s in _sessions.Values.Where(s => s.Local && !s.Closing && s.ExpireTime <= now).ToList())
        {
            Stats.ExpiredSessions++;
            EndLocalSession(s);
        }
        ReadOnlyTick(now);
    }

    /// <summary>The member stopped following or leading: its local sessions end with its server.</summary>
    private void DropLocalSessions()
    {
        foreach (var s in _sessions.Values.Where(s => s.Local).ToList()) EndLocalSession(s);
    }
}
