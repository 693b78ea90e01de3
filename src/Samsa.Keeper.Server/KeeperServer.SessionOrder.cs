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
        public readonly Queue<(byte[] Frame, long Received)> Held = new();
    }

    private readonly Dictionary<ServerConnection, SessionOrder> _order = new();
    private ServerConnection? _draining;

    /// <summary>True when the request was put behind the connection's forwarded requests.
    /// Pings are answered at once (clients match them by their fixed xid, not by order).</summary>
    private bool HoldBehindForwarded(ServerConnection conn, int type, byte[] frame, long received)
    {
        if (_leaderLink is null || type == Samsa.Keeper.Protocol.OpCode.Ping) return false;
        if (!_order.TryGetValue(conn, out var o)) return false;
        if (o.Outstanding == 0 && (o.Held.Count == 0 || ReferenceEquals(_draining, conn))) return false;
        o.Held.Enqueue((frame, received));
        return true;
    }

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
            while (o.Outstanding == 0 && o.Held.Count > 0 && !conn.Closed)
            {
                var (frame, received) = o.Held.Dequeue();
                HandleRequest(conn, frame, received);
            }
        }
        finally { _draining = before; }
        if (conn.Closed) o.Held.Clear();
        if (o.Outstanding == 0 && o.Held.Count == 0) _order.Remove(conn);
    }
}
