namespace Samsa.Keeper.Server.Quorum;

/// <summary>
/// What a leading member reports in mntr, srvr and the AdminServer, as upstream 3.8's
/// LeaderZooKeeperServer gauges: <c>learners</c> (every connected learner), <c>synced_followers</c>
/// (voters and non-voting participants in the forwarding set), <c>synced_non_voting_followers</c>,
/// <c>synced_observers</c>, <c>pending_syncs</c>, <c>leader_uptime</c> (ms since leading began) and
/// the proposal sizes (bytes of the last/min/max PROPOSAL data; -1 before the first, as upstream's
/// BufferStats).
/// </summary>
public sealed record LeaderStats(int Learners, int SyncedFollowers, int SyncedNonVotingFollowers, int SyncedObservers,
    int PendingSyncs, long UptimeMs, int LastProposalSize, int MinProposalSize, int MaxProposalSize)
{
    /// <summary>srvr's extra leader line (upstream StatCommand: "Proposal sizes last/min/max: %s").</summary>
    public string ProposalSizesLine => $"Proposal sizes last/min/max: {LastProposalSize}/{MinProposalSize}/{MaxProposalSize}\n";
}
