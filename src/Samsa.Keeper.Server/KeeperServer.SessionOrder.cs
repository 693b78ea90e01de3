namespace Samsa.Keeper.Server;

/// <summary>
/// Per-session request order in an ensemble. ZooKeeper answers a session's requests in the order
/// it sent them (its CommitProcessor holds a session's reads while a write or sync of that session
/// is waiting for the leader), and clients rely on it: kazoo and the Java client match each answer
/// with the oldest request waiting and drop the connection on "xids do not match". A quorum
/// member forwards writes and syncs to the leader and answers them at commit, so a read sent
/// behind them must wait too. Found by tests/ensemble/fault_test.py (kazoo's "xids do not match"
/// after a write timed out on the client side and a read followed it).
/// Everything here runs on the server loop.
/// </summary>
public sealed partial class KeeperServer
{
    private sealed class SessionOrder
    {
        public int Outstanding;
        public readonly Queue<(int Type, byte[] Frame, long Received)> Held = new();
    }

    private readonly Dictionary<ServerConnection, SessionOrder> _order = new();
    private ServerConnection? _draining;

    /// <summary>True when the request was put behind the connection's forwarded requests.
    /// Pings are answered at once (clients match them by their fixed xid, not by order). A write,
    /// closeSession or sync of a global session with nothing held goes to the leader at once, behind
    /// the ones already there (upstream FollowerRequestProcessor forwards every write as it comes):
    /// the leader commits a session's requests in the order it got them, so their answers come back
    /// in order and the session's writes are pipelined.</summary>
    private bool HoldBehindForwarded(ServerConnection conn, int type, byte[] frame, long received)
    {
        if (_leaderLink is null || type == Samsa.Keeper.Protocol.OpCode.Ping) return false;
        if (!_order.TryGetValue(conn, out var o)) return false;
        if (ReferenceEquals(_draining, conn)) return false;
        if (o.Held.Count == 0 && (o.Outstanding == 0 || GoesToLeaderAtOnce(conn, type))) return false;
        o.Held.Enqueue((type, frame, received));
        return true;
    }

    /// <summary>A request the member forwards without answering anything itself first: a write,
    /// closeSession or sync of a global session (local and read-only sessions answer some writes here).</summary>
    private bool GoesToLeaderAtOnce(ServerConnection conn, int type) =>
        (IsWrite(type) || type == Samsa.Keeper.Protocol.OpCode.CloseSession || type == Samsa.Keeper.Protocol.OpCode.Sync)
        && _sessions.TryGetValue(conn.SessionId, out var s) && !s.Local && !s.ReadOnlyMode && !_readOnlyConns.Contains(conn);

    /// <summary>A write, closeSession or sync of this connection went to the leader.</summary>
    private void Forwarded(ServerConnection conn)
    {
        if (!_order.TryGetValue(conn, out var o)) _order[conn] = o = new SessionOrder();
        o.Outstanding++;
    }

    /// <summary>A forwarded request was answered: requests held behind it run now, in order, until
    /// one of them is forwarded in turn.</summary>
    private void ForwardedAnswered(ServerConnection conn)
    {
        if (!_order.TryGetValue(conn, out var o)) return;
        if (o.Outstanding > 0) o.Outstanding--;
        var before = _draining;
        _draining = conn;
        try
        {
            // held requests run in order: reads once nothing is at the leader, forwarded ones at once
            while (o.Held.Count > 0 && !conn.Closed && (o.Outstanding == 0 || GoesToLeaderAtOnce(conn, o.Held.Peek().Type)))
            {
                var (_, frame, received) = o.Held.Dequeue();
                HandleRequest(conn, frame, received);
            }
        }
        finally { _draining = before; }
        if (conn.Closed) o.Held.Clear();
        if (o.Outstanding == 0 && o.Held.Count == 0) _order.Remove(conn);
    }
}
