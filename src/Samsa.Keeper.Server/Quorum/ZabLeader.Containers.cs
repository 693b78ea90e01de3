using Samsa.Keeper.Protocol;
using Samsa.Keeper.Protocol.Records;

namespace Samsa.Keeper.Server.Quorum;

/// <summary>
/// Upstream ContainerManager, which runs on the leader only (LeaderZooKeeperServer.startup): every
/// znode.container.checkIntervalMs the committed tree is searched for empty containers that once
/// had a child and for childless TTL nodes unmodified for longer than their TTL, and a
/// deleteContainer request (no session, upstream's Request(null, 0, 0, deleteContainer, path))
/// goes through the ordinary request pipeline for each. It is prepared against the prepared tree
/// (a container that got a child meanwhile becomes an error txn, as upstream's NotEmpty) and
/// proposed, so every follower and observer deletes the node when it commits. Followers and
/// observers never reap.
/// </summary>
public sealed partial class ZabLeader
{
    private long _lastContainerCheck = Environment.TickCount64;

    /// <summary>Called by the leader's ping loop (every tick/2) while broadcasting.</summary>
    private void ContainerCheck(long now)
    {
        if (now - _lastContainerCheck < _config.ContainerCheckIntervalMs) return;
        _lastContainerCheck = now;
        List<string> candidates;
        try
        {
            candidates = _server.RunOnLoopAsync(() => _server.ReapCandidates(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds())).GetAwaiter().GetResult();
        }
        catch (ObjectDisposedException) { return; }
        foreach (var path in candidates)
            _requests.Add(new Req(null, 0, 0, OpCode.DeleteContainer, new DeleteContainerRequest { Path = path }.ToBytes(), new List<Id>()));
    }

    /// <summary>A deleteContainer this leader's container check queued: it belongs to no session
    /// (upstream's PrepRequestProcessor checks no session for deleteContainer).</summary>
    private static bool IsReaperRequest(Req r) => r.Origin is null && r.SessionId == 0 && r.Type == OpCode.DeleteContainer;
}
