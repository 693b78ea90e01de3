using Samsa.Keeper.Protocol;
using Samsa.Keeper.Protocol.Records;
using Samsa.Keeper.Server.Quorum;
using Xunit;

namespace Samsa.Keeper.Server.Tests;

/// <summary>A proposal this member logged and acked as a follower, whose COMMIT never arrived
/// before its leader went away, may have been committed by the old quorum and acknowledged to a
/// client. The election compares last logged zxids, so when this member leads next (or follows
/// with a DIFF starting after its last logged zxid), that txn must be in its tree — as upstream,
/// which reloads the database from the whole txn log before leading or following again.</summary>
public sealed class QuorumReplayTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "samsa-replay-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    private static (TxnHeader, IJuteRecord) Create(long zxid, string path) =>
        (new TxnHeader { ClientId = 1, Cxid = (int)zxid, Zxid = zxid, Time = 1, Type = OpCode.Create },
         new CreateTxn { Path = path, Data = [1, 2, 3], Acl = [new ACL { Perms = Perms.All, Id = new Id { Scheme = "world", IdValue = "anyone" } }], Ephemeral = false, ParentCVersion = (int)zxid });

    [Fact]
    public void Logged_but_uncommitted_txns_are_applied_before_the_next_epoch()
    {
        var config = new KeeperConfig { DataDir = _dir, PreAllocSizeKb = 64 };
        var store = new LearnerStore(config, _ => { });
        long epoch1 = ZabType.MakeZxid(1, 0);
        var (h1, t1) = Create(epoch1 + 1, "/committed");
        var (h2, t2) = Create(epoch1 + 2, "/acked-not-committed");
        store.Log(h1, t1, null);
        store.Apply(h1, t1);
        store.Log(h2, t2, null);          // acked, then the leader died before COMMIT

        Assert.Equal(epoch1 + 2, store.LastLoggedZxid);
        Assert.Equal(epoch1 + 1, store.Tree.LastProcessedZxid);
        Assert.Null(store.Tree.GetNode("/acked-not-committed"));

        Assert.Equal(1, store.ApplyLoggedNotCommitted(_ => { }));
        Assert.NotNull(store.Tree.GetNode("/acked-not-committed"));
        Assert.Equal(epoch1 + 2, store.Tree.LastProcessedZxid);
        Assert.Equal(0, store.ApplyLoggedNotCommitted(_ => { }));   // nothing twice
    }
}
