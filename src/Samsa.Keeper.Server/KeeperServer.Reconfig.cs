using Samsa.Keeper.Protocol;
using Samsa.Keeper.Protocol.Records;
using Samsa.Keeper.Server.Quorum;

namespace Samsa.Keeper.Server;

/// <summary>The reconfig request on a quorum leader (upstream PrepRequestProcessor, case
/// OpCode.reconfig) and the /zookeeper/config node (upstream ZKDatabase.initConfigInZKDatabase).</summary>
public sealed partial class KeeperServer
{
    /// <summary>Prepares a reconfig on the leader: the txn is a SetDataTxn of /zookeeper/config
    /// (version -1) under a header of type reconfig, or an error txn. Checks in upstream's order:
    /// reconfigEnabled (RECONFIGDISABLED), the session, a reconfig in flight (RECONFIGINPROGRESS),
    /// fromConfig (BADVERSION), the new membership (BADARGUMENTS), a synced quorum of it
    /// (NEWCONFIGNOQUORUM), then WRITE on /zookeeper/config — world may only read it, so a caller
    /// needs the super digest identity or skipACL (ZOOKEEPER-2014).</summary>
    public Task<(TxnHeader Hdr, IJuteRecord Txn, QuorumConfig? Next)> LeaderPrepReconfigAsync(long sessionId, int cxid, byte[] body,
        List<Id> auth, long zxid, bool sessionKnown, QuorumConfig quorum, IReadOnlyCollection<long> syncedVoters) =>
        RunOnLoopAsync(() =>
        {
            var hdr = new TxnHeader { ClientId = sessionId, Cxid = cxid, Zxid = zxid, Time = WallNow, Type = OpCode.Reconfig };
            (TxnHeader, IJuteRecord, QuorumConfig?) Error(int code) { hdr.Type = OpCode.Error; return (hdr, new ErrorTxn { Err = code }, null); }
            try
            {
                var r = new JuteReader(body, Config.JuteMaxBuffer);
                var req = ReconfigRequest.Read(ref r);
                if (!quorum.ReconfigEnabled) return Error((int)Code.ReconfigDisabled);
                if (!sessionKnown) return Error((int)Code.SessionExpired);
                var next = ReconfigPlanner.Plan(quorum.Snapshot(), quorum.LastSeenVersion, req, zxid, syncedVoters, quorum.StandaloneEnabled);
                var node = Tree.GetNode(DataTree.ConfigPath) ?? throw new KeeperException(Code.NoNode, DataTree.ConfigPath);
                _auth.Check(Tree.Acls.Get(node.Acl), Perms.Write, auth, DataTree.ConfigPath);
                var text = System.Text.Encoding.UTF8.GetBytes(next.VerifierString());
                return (hdr, (IJuteRecord)new SetDataTxn { Path = DataTree.ConfigPath, Data = text, Version = -1 }, next);
            }
            catch (KeeperException e) { return Error(e.Code); }
            catch (JuteException) { return Error((int)Code.MarshallingError); }
        });

    /// <summary>upstream initConfigInZKDatabase: /zookeeper/config holds the membership (server
    /// lines, then version=hex), its mzxid is the config version and its data version -1. Watches
    /// on the node fire as upstream's setData fires them.</summary>
    public Task SetConfigNodeAsync(string text, long version) => RunOnLoopAsync(() =>
    {
        SetConfigNode(Tree, text, version, WallNow);
        DispatchTriggers();
        return 0;
    });

    internal static void SetConfigNode(DataTree tree, string text, long version, long time)
    {
        if (tree.GetNode(DataTree.ConfigPath) is null) return; // created with the tree (DataTree.Reset)
        var data = System.Text.Encoding.UTF8.GetBytes(text);
        var n = tree.GetNode(DataTree.ConfigPath)!;
        if (n.Data is not null && n.Data.AsSpan().SequenceEqual(data) && n.Mzxid == version) return;
        tree.SetData(DataTree.ConfigPath, data, -1, version, time);
    }

    /// <summary>The answer of a committed reconfig: the new config data and the node's stat (upstream FinalRequestProcessor).</summary>
    internal GetDataResponse ReconfigResponse(Stat? stat)
    {
        var n = Tree.GetNode(DataTree.ConfigPath);
        return new GetDataResponse { Data = n?.Data ?? Array.Empty<byte>(), Stat = stat ?? n?.ToStat(Config.ExtendedTypesEnabled) ?? new Stat() };
    }
}
