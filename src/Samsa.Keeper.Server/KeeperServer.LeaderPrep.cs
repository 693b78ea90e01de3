using Samsa.Keeper.Protocol;
using Samsa.Keeper.Protocol.Records;

namespace Samsa.Keeper.Server;

/// <summary>
/// The quorum leader's PrepRequestProcessor (Quorum/ZabLeader). Upstream prepares each request
/// against its outstandingChanges — the changes of proposals not yet committed — so a request sees
/// the ones proposed before it (versions, existence, sequential numbers, ephemeral owners, the
/// parent's cversion) while the tree clients read stays at the committed state. The Keeper keeps a
/// second tree for that, the prepared tree: a copy of the committed tree taken when leading starts
/// (and after each reconfig, which the leader commits with nothing else in flight), to which every
/// prepared txn is applied at once. Committed txns reach the serving tree in the same order, so the
/// prepared tree is always the serving tree plus the proposals in flight. Costs a second copy of
/// the tree on the leader. Everything here runs on the server loop.
/// </summary>
public sealed partial class KeeperServer
{
    /// <summary>The tree writes are validated against: the prepared tree while leading, otherwise
    /// (standalone: writes apply at once) the tree itself.</summary>
    private DataTree PrepTree => _prepTree ?? Tree;
    private DataTree? _prepTree;

    /// <summary>Sets (or, with null, drops) the leader's prepared tree. Call on the loop.</summary>
    public void SetPrepTree(DataTree? tree) => _prepTree = tree;

    /// <summary>One request for <see cref="LeaderPrepBatchAsync"/>.</summary>
    public sealed record LeaderPrepItem(long SessionId, int Cxid, int Type, byte[] Body, List<Id> Auth, long Zxid, bool SessionKnown);

    /// <summary>Prepares requests in order, each against the prepared tree with the txns of the
    /// ones before it applied (one trip to the loop for the whole batch).</summary>
    public Task<List<(TxnHeader Hdr, IJuteRecord Txn)>> LeaderPrepBatchAsync(IReadOnlyList<LeaderPrepItem> items) =>
        RunOnLoopAsync(() =>
        {
            var result = new List<(TxnHeader, IJuteRecord)>(items.Count);
            foreach (var it in items)
            {
                var (hdr, txn) = LeaderPrep(it);
                if (_prepTree is { } pt)
                {
                    pt.ProcessTxn(hdr, txn);
                    pt.Triggers.Clear();
                }
                result.Add((hdr, txn));
            }
            return result;
        });

    /// <summary>Turns a request into its txn without applying it to the serving tree — the txn is
    /// applied there when committed. A request of an unknown session becomes an error txn
    /// (upstream checkSession → SESSIONEXPIRED). A multi is tried against the prepared tree and
    /// rolled back, yielding the MultiTxn of its outcome.</summary>
    private (TxnHeader, IJuteRecord) LeaderPrep(LeaderPrepItem it)
    {
        var (sessionId, cxid, type, body, auth, zxid, sessionKnown) = it;
        var hdr = new TxnHeader { ClientId = sessionId, Cxid = cxid, Zxid = zxid, Time = WallNow, Type = type };
        IJuteRecord Error(int code) { hdr.Type = OpCode.Error; return new ErrorTxn { Err = code }; }
        if (type == OpCode.CreateSession)
        {
            if (body.Length < 4) return (hdr, Error((int)Code.MarshallingError));
            return (hdr, new CreateSessionTxn { TimeOut = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(body) });
        }
        // the ephemerals to delete include those of creates still in flight (upstream takes them
        // from outstandingChanges too)
        if (type == OpCode.CloseSession)
            return (hdr, new CloseSessionTxn { Paths2Delete = PrepTree.GetEphemerals(sessionId).ToList() });
        if (!sessionKnown) return (hdr, Error((int)Code.SessionExpired));
        var conn = new ServerConnection(this, -1, null, _ => ValueTask.CompletedTask, () => { });
        conn.AuthInfo.Clear();
        conn.AuthInfo.AddRange(auth);
        conn.SessionId = sessionId;
        var session = _sessions.TryGetValue(sessionId, out var s) ? s : new Session { Id = sessionId };
        try
        {
            if (type == OpCode.Multi) return (hdr, PrepMultiForLeader(conn, session, hdr, body));
            var r = new JuteReader(body, Config.JuteMaxBuffer);
            return (hdr, Prep(conn, session, type, ref r, zxid, hdr.Time));
        }
        catch (KeeperException e) { return (hdr, Error(e.Code)); }
        catch (JuteException) { return (hdr, Error((int)Code.MarshallingError)); }
        finally { conn.Closed = true; }
    }

    private IJuteRecord PrepMultiForLeader(ServerConnection conn, Session session, TxnHeader hdr, byte[] body)
    {
        var tree = PrepTree;
        var ops = ReadMultiOps(body, write: true);
        var txns = new List<Txn>();
        int triggersBefore = tree.Triggers.Count;
        tree.BeginMulti();
        bool failed = false;
        try
        {
            foreach (var (type, req) in ops)
            {
                if (failed)
                {
                    txns.Add(new Txn { Type = OpCode.Error, Data = new ErrorTxn { Err = (int)Code.RuntimeInconsistency }.ToBytes() });
                    continue;
                }
                try
                {
                    var r = new JuteReader(req!.ToBytes(), int.MaxValue);
                    var txn = Prep(conn, session, type, ref r, hdr.Zxid, hdr.Time);
                    var rc = tree.ProcessTxn(new TxnHeader { ClientId = hdr.ClientId, Cxid = hdr.Cxid, Zxid = hdr.Zxid, Time = hdr.Time, Type = type }, txn);
                    if (rc.Err != 0) throw new KeeperException(rc.Err);
                    txns.Add(new Txn { Type = type, Data = txn.ToBytes() });
                }
                catch (KeeperException e)
                {
                    failed = true;
                    txns.Add(new Txn { Type = OpCode.Error, Data = new ErrorTxn { Err = e.Code }.ToBytes() });
                }
            }
        }
        finally { tree.RollbackMulti(triggersBefore); }
        return new MultiTxn { Txns = txns };
    }
}
