namespace Samsa.Kafka.Broker.Groups;

/// <summary>
/// Moves a consumer or streams group member towards its target assignment (upstream's
/// CurrentAssignmentBuilder, of which the consumer and streams variants share this state machine):
/// what is no longer in its target is revoked first — the member keeps its epoch until it reports
/// (in its owned partitions or tasks) that it gave it up, within its rebalance timeout; then it moves
/// to the assignment epoch and gets its new partitions or tasks, except those another member still
/// holds ("unreleased", the group type decides: <see cref="ModernGroup{TMember, TAssignment}.TakeReleased"/>),
/// which it gets on a later heartbeat once released.
/// </summary>
internal static class CurrentAssignmentBuilder
{
    /// <summary>One reconciliation step on a heartbeat (or a classic JoinGroup/SyncGroup); true when
    /// the member's current assignment record changed (assignment, pending revocation or epoch).
    /// <paramref name="owned"/>: what the member says it owns; null when the request did not say.</summary>
    public static bool Reconcile<TMember, TAssignment>(ModernGroup<TMember, TAssignment> group, TMember member, TAssignment? owned, long now)
        where TMember : ModernMember<TAssignment>
        where TAssignment : class, IAssignmentSet<TAssignment>, new()
    {
        if (member.IsStaticLeft) return false;
        var before = member.Assigned.Clone();
        var beforePending = member.PendingRevocation.Clone();
        int beforeEpoch = member.MemberEpoch;
        switch (member.Reconciliation)
        {
            case ReconciliationState.Unrevoked:
                // Still owning what it must revoke (or not saying): wait, within the rebalance timeout.
                if (owned is null || owned.Overlaps(member.PendingRevocation)) break;
                Next(group, member, owned, now);
                break;
            case ReconciliationState.Unreleased:
                Next(group, member, owned, now);
                break;
            default:
                if (member.MemberEpoch != group.AssignmentEpoch) Next(group, member, owned, now);
                break;
        }
        return !before.SetEquals(member.Assigned) || !beforePending.SetEquals(member.PendingRevocation) || beforeEpoch != member.MemberEpoch;
    }

    private static void Next<TMember, TAssignment>(ModernGroup<TMember, TAssignment> group, TMember member, TAssignment? owned, long now)
        where TMember : ModernMember<TAssignment>
        where TAssignment : class, IAssignmentSet<TAssignment>, new()
    {
        var target = group.TargetOf(member.MemberId);
        var keep = member.Assigned.Intersect(target);
        var revoke = member.Assigned.Minus(target);
        // What the member says it no longer owns needs no revocation round.
        bool mustRevoke = !revoke.IsEmpty && (owned is null || owned.Overlaps(revoke));
        if (mustRevoke)
        {
            member.Assigned = keep;
            member.PendingRevocation = revoke;
            if (member.Reconciliation != ReconciliationState.Unrevoked) member.RebalanceDeadline = now + member.RevocationTimeoutMs;
            member.Reconciliation = ReconciliationState.Unrevoked;
            return;
        }
        bool unreleased = group.TakeReleased(member, keep, target);
        member.Assigned = keep;
        member.PendingRevocation = new TAssignment();
        member.RebalanceDeadline = -1;
        if (member.MemberEpoch != group.AssignmentEpoch)
        {
            member.PreviousMemberEpoch = member.MemberEpoch;
            member.MemberEpoch = group.AssignmentEpoch;
        }
        member.Reconciliation = unreleased ? ReconciliationState.Unreleased : ReconciliationState.Stable;
    }
}
