using Samsa.Keeper.Protocol;
using Samsa.Keeper.Protocol.Records;

namespace Samsa.Keeper.Server;

/// <summary>
/// Read-only mode (readonlymode.enabled), as upstream's QuorumPeer.run LOOKING branch and
/// ReadOnlyZooKeeperServer / ReadOnlyRequestProcessor:
/// <list type="bullet">
/// <item>a member that has been looking for a leader for max(2000 ms, tickTime) serves read-only
/// clients from its tree (the roZkMgr delay); it stops the moment it follows or leads again, and
/// its read-only connections are closed then (upstream shuts the ReadOnlyZooKeeperServer down);</item>
/// <item>only clients whose ConnectRequest says readOnly=true are taken, and their ConnectResponse
/// says readOnly=true; others are closed ("Not read-only client");</item>
/// <item>reads, watches, auth and pings are served; create/delete/setData/setACL/check/multi/
/// reconfig/sync are answered NOTREADONLY (-119) with the tree's last zxid;</item>
/// <item>new sessions exist here only (upstream keeps them in the read-only server's session
/// tracker, not in the log), so a client returning to a read-write member with such a session
/// is told it expired; a session from before is taken over when its password matches (with local
/// sessions on, only a session this member knows, as LearnerSessionTracker.touchSession);</item>
/// <item>isro answers "ro" (and "null" while the member serves nothing, "rw" while it serves
/// normally); srvr/mntr report the mode "read-only".</item>
/// </list>
/// Everything here runs on the server loop.
/// </summary>
public sealed partial class KeeperServer
{
    private readonly HashSet<ServerConnection> _readOnlyConns = new();
    private long _lookingSince;
    private volatile bool _readOnlyActive;

    /// <summary>True while this quorum member serves read-only clients.</summary>
    public bool ReadOnlyActive => _readOnlyActive;

    /// <summary>The isro four-letter word (upstream IsroCommand).</summary>
    public string IsReadOnlyAnswer => _readOnlyActive ? "ro" : Serving ? "rw" : "null";

    private void ReadOnlyTick(long now)
    {
        if (!Config.Quorum.ReadOnlyModeEnabled) return;
        bool looking = _leaderLink!.Looking && !_leaderLink.Serving;
        if (looking)
        {
            if (_lookingSince == 0) _lookingSince = now;
            if (!_readOnlyActive && now - _lookingSince >= Math.Max(2000, Config.TickTime))
            {
                _readOnlyActive = true;
                Console.Error.WriteLine("keeper: no quorum: serving read-only clients (readonlymode.enabled)");
            }
            return;
        }
        _lookingSince = 0;
        if (_readOnlyActive) EndReadOnly();
    }

    private void EndReadOnly()
    {
        _readOnlyActive = false;
        foreach (var s in _sessions.Values.ToList())
        {
            if (s.Owner is not null && _readOnlyConns.Contains(s.Owner)) s.Owner = null;
            if (s.ReadOnlyMode) _sessions.Remove(s.Id);
        }
        foreach (var c in _readOnlyConns) QueueClose(c);
        _readOnlyConns.Clear();
        Console.Error.WriteLine("keeper: leaving read-only mode; read-only clients disconnected");
    }

    /// <summary>A connect while the member serves no quorum; false closes the connection.</summary>
    private bool TryConnectReadOnly(ServerConnection conn, ConnectRequest req, int timeout, bool hasReadOnly)
    {
        if (!_readOnlyActive) return false;
        if (!req.ReadOnly)
        {
            // upstream CloseRequestException "Not read-only client - closing"
            Console.Error.WriteLine($"keeper: Refusing session request for not-read-only client {conn.RemoteEndPoint}");
            return false;
        }
        conn.Handshaken = true;
        conn.SessionTimeout = timeout;
        if (req.SessionId == 0)
        {
            long id = NextSessionId();
            var s = new Session { Id = id, Timeout = timeout, Owner = conn, Local = true, ReadOnlyMode = true };
            _sessions[id] = s;
            Touch(s, Now);
            conn.SessionId = id;
            _readOnlyConns.Add(conn);
            SendConnectResponse(conn, timeout, id, GeneratePasswd(id), hasReadOnly, readOnly: true);
            return true;
        }
        bool passwdOk = req.Passwd is not null && req.Passwd.AsSpan().SequenceEqual(GeneratePasswd(req.SessionId));
        _sessions.TryGetValue(req.SessionId, out var known);
        if (!passwdOk || known is { Closing: true } || (known is null && Config.Quorum.LocalSessionsEnabled) || (known is { Local: true, ReadOnlyMode: false }))
        {
            SendConnectResponse(conn, 0, 0, new byte[16], hasReadOnly);
            QueueClose(conn);
            return true;
        }
        if (known is null)
        {
            known = new Session { Id = req.SessionId, Timeout = timeout, Local = true, ReadOnlyMode = true };
            _sessions[known.Id] = known;
        }
        TakeOver(known, conn, timeout);
        _readOnlyConns.Add(conn);
        SendConnectResponse(conn, timeout, known.Id, GeneratePasswd(known.Id), hasReadOnly, readOnly: true);
        return true;
    }

    /// <summary>Requests of a read-only connection or a local session that are not handled as a
    /// global session's; true when handled here.</summary>
    private bool HandleMemberSessionRequest(ServerConnection conn, Session session, RequestHeader h, ReadOnlySpan<byte> body, long received)
    {
        if (_readOnlyConns.Count > 0 && _readOnlyConns.Contains(conn))
        {
            if (!_readOnlyActive)
            {
                QueueClose(conn);
                return true;
            }
            if (h.Type == OpCode.CloseSession)
            {
                session.Owner = null;
                _readOnlyConns.Remove(conn);
                if (session.ReadOnlyMode) _sessions.Remove(session.Id);
                Reply(conn, h.Xid, Tree.LastProcessedZxid, 0, null, "CLOS", received);
                QueueClose(conn);
                return true;
            }
            if (IsWrite(h.Type) || h.Type == OpCode.Sync)
            {
                Reply(conn, h.Xid, Tree.LastProcessedZxid, (int)Code.NotReadOnly, null, "NA", received);
                return true;
            }
            return false;
        }
        return session.Local && HandleLocalSessionRequest(conn, session, h, body, received);
    }
}
