namespace Samsa.Keeper.Server.Quorum;

public sealed partial class LearnerStore
{
    /// <summary>Writes the membership into /zookeeper/config (upstream QuorumPeer.initConfigInZKDatabase,
    /// done at start, after a sync with the leader and after each activated reconfig).</summary>
    public void InitConfigNode(QuorumConfig q)
    {
        string text;
        long version;
        var snap = q.Snapshot();
        text = snap.VerifierString();
        version = snap.Version;
        if (_server is not null) { _server.SetConfigNodeAsync(text, version).GetAwaiter().GetResult(); return; }
        lock (_gate)
        {
            KeeperServer.SetConfigNode(Tree, text, version, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
            Tree.Triggers.Clear();
        }
    }
}
