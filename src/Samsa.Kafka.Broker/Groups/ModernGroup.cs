using Samsa.Kafka.Protocol;

namespace Samsa.Kafka.Broker.Groups;

/// <summary>
/// What a member's assignment must offer for reconciliation: partitions of a consumer group
/// (<see cref="PartitionSet"/>) or active/standby/warm-up tasks of a streams group
/// (<see cref="Streams.TaskAssignment"/>).
/// </summary>
public interface IAssignmentSet<T> where T : class, IAssignmentSet<T>, new()
{
    bool IsEmpty { get; }
    T Clone();
    T Minus(T other);
    T Intersect(T other);
    bool Overlaps(T other);
    bool IsSubsetOf(T other);
    bool SetEquals(T other);
}

/// <summary>Where a member is in its reconciliation (upstream's MemberState; the int8 of the
/// current-assignment records). The consumer and streams enums name the same three values.</summary>
public enum ReconciliationState : sbyte
{
    /// <summary>The member holds its part of the target assignment at the target epoch.</summary>
    Stable = 0,
    /// <summary>The member must first give up what is no longer in its target (it keeps its epoch).</summary>
    Unrevoked = 1,
    /// <summary>The member reached the target epoch but waits for what other members still hold.</summary>
    Unreleased = 2,
}

/// <summary>
/// The part of a KIP-848 consumer group member and a KIP-1071 streams group member that the
/// reconciliation works on (upstream's ModernGroupMember): identity, member epochs, the current
/// assignment and what is pending revocation, and the session/rebalance deadlines.
/// </summary>
public abstract class ModernMember<TAssignment>(string memberId, int rebalanceTimeoutMs)
    where TAssignment : class, IAssignmentSet<TAssignment>, new()
{
    public string MemberId { get; internal set; } = memberId;
    public string? InstanceId { get; internal set; }
    public string? RackId { get; internal set; }
    public string ClientId { get; internal set; } = "";
    public string ClientHost { get; internal set; } = "";
    public int RebalanceTimeoutMs { get; internal set; } = rebalanceTimeoutMs;
    public int MemberEpoch { get; internal set; }
    public int PreviousMemberEpoch { get; internal set; } = -1;
    internal ReconciliationState Reconciliation;
    /// <summary>What the member may work on now.</summary>
    public TAssignment Assigned { get; internal set; } = new();
    /// <summary>What the member was asked to give up and has not confirmed yet.</summary>
    public TAssignment PendingRevocation { get; internal set; } = new();
    /// <summary>Heartbeat deadline (the group type's session timeout after the last heartbeat).</summary>
    internal long SessionDeadline;
    /// <summary>Revocation deadline while <see cref="ReconciliationState.Unrevoked"/>; -1 otherwise.</summary>
    internal long RebalanceDeadline = -1;

    /// <summary>Upstream's LEAVE_GROUP_STATIC_MEMBER_EPOCH: a static member that left temporarily.</summary>
    public bool IsStaticLeft => MemberEpoch == MemberEpochs.LeaveStatic;

    /// <summary>How long the member has to revoke, from the moment it is asked to.</summary>
    internal virtual int RevocationTimeoutMs => RebalanceTimeoutMs;

    /// <summary>OffsetCommit/OffsetFetch with an epoch other than the member's.</summary>
    internal virtual ErrorCode StaleEpochError => ErrorCode.StaleMemberEpoch;

    /// <summary>Upstream's rebalance timeout: asked to revoke, and not done by the deadline.</summary>
    internal bool RevocationTimedOut(long now) =>
        Reconciliation == ReconciliationState.Unrevoked && RebalanceDeadline >= 0 && RebalanceDeadline <= now;

    /// <summary>Upstream's throwIfMemberEpochIsInvalid: a newer epoch than the member's is fenced; an
    /// older one too unless it is the previous epoch and the member owns no more than it was given
    /// (the response that moved it on was lost).</summary>
    internal bool IsFencedBy(int requestEpoch, TAssignment? owned) =>
        requestEpoch > MemberEpoch
        || (requestEpoch < MemberEpoch && (requestEpoch != PreviousMemberEpoch || owned is null || !owned.IsSubsetOf(Assigned)));
}

/// <summary>The member epochs a heartbeat leaves with.</summary>
public static class MemberEpochs
{
    public const int Leave = -1;
    public const int LeaveStatic = -2;
}

/// <summary>
/// The part of a KIP-848 consumer group and a KIP-1071 streams group that membership and
/// reconciliation work on (upstream's ModernGroup): the group epoch, the target assignment at the
/// assignment epoch, members and static members.
/// </summary>
public abstract class ModernGroup<TMember, TAssignment>(string groupId)
    where TMember : ModernMember<TAssignment>
    where TAssignment : class, IAssignmentSet<TAssignment>, new()
{
    public const int LeaveEpoch = MemberEpochs.Leave;
    public const int LeaveStaticEpoch = MemberEpochs.LeaveStatic;

    public string GroupId { get; } = groupId;
    public int GroupEpoch { get; internal set; }
    public int AssignmentEpoch { get; internal set; }
    internal readonly Dictionary<string, TMember> Members = new(StringComparer.Ordinal);
    internal readonly Dictionary<string, string> StaticMembers = new(StringComparer.Ordinal);
    internal readonly Dictionary<string, TAssignment> TargetAssignment = new(StringComparer.Ordinal);

    public IReadOnlyCollection<TMember> AllMembers => Members.Values;
    public TMember? Get(string memberId) => Members.GetValueOrDefault(memberId);
    public TAssignment TargetOf(string memberId) => TargetAssignment.GetValueOrDefault(memberId) ?? new TAssignment();
    public int Size => Members.Count;

    /// <summary>Whether some member is not yet at the assignment epoch or not stable (upstream's
    /// RECONCILING rule of updateState).</summary>
    protected bool AnyMemberReconciling()
    {
        foreach (var m in Members.Values)
            if (m.MemberEpoch != AssignmentEpoch || m.Reconciliation != ReconciliationState.Stable) return true;
        return false;
    }

    /// <summary>Moves into <paramref name="keep"/> what of <paramref name="target"/> the member may
    /// have now; true when some of it is still held by another member (unreleased).</summary>
    internal abstract bool TakeReleased(TMember member, TAssignment keep, TAssignment target);

    /// <summary>A new member (epoch 0 join), registered under its instance id when static.</summary>
    internal void Add(TMember member)
    {
        Members[member.MemberId] = member;
        if (member.InstanceId is not null) StaticMembers[member.InstanceId] = member.MemberId;
    }

    /// <summary>Drops a member, its static registration and its target (its tombstones are written).</summary>
    internal void Remove(TMember member, ModernGroupChanges changes)
    {
        Members.Remove(member.MemberId);
        if (member.InstanceId is not null && StaticMembers.GetValueOrDefault(member.InstanceId) == member.MemberId)
            StaticMembers.Remove(member.InstanceId);
        TargetAssignment.Remove(member.MemberId);
        changes.RemovedMembers.Add(member.MemberId);
    }

    /// <summary>Upstream's static member replacement: <paramref name="member"/> (a new member id with
    /// the same instance id) takes the place and the target of <paramref name="previous"/>.</summary>
    internal void ReplaceStatic(TMember previous, TMember member, ModernGroupChanges changes)
    {
        Members.Remove(previous.MemberId);
        Members[member.MemberId] = member;
        StaticMembers[member.InstanceId!] = member.MemberId;
        if (TargetAssignment.Remove(previous.MemberId, out var target))
        {
            TargetAssignment[member.MemberId] = target;
            changes.TargetMembers.Add(member.MemberId);
        }
        changes.RemovedMembers.Add(previous.MemberId);
        changes.Members.Add(member.MemberId);
        changes.CurrentAssignments.Add(member.MemberId);
    }

    /// <summary>Replaces the target assignment with a newly computed one at the group epoch; the
    /// members whose target changed are written.</summary>
    internal void InstallTarget(IEnumerable<KeyValuePair<string, TAssignment>> target, ModernGroupChanges changes)
    {
        var next = target.ToList();
        foreach (var (id, a) in next)
            if (!TargetAssignment.TryGetValue(id, out var old) || !old.SetEquals(a)) changes.TargetMembers.Add(id);
        TargetAssignment.Clear();
        foreach (var (id, a) in next) TargetAssignment[id] = a;
        AssignmentEpoch = GroupEpoch;
        changes.TargetMetadata = true;
    }

    /// <summary>OffsetCommit/OffsetFetch by a member (upstream's validateOffsetCommit /
    /// validateOffsetFetch): the generation id carries the member epoch; an unknown member is
    /// UNKNOWN_MEMBER_ID, another epoch the member's <see cref="ModernMember{T}.StaleEpochError"/>.
    /// A commit without member id and epoch -1 is an admin commit, allowed only while the group is empty.</summary>
    internal ErrorCode? ValidateMemberOffsets(string? memberId, int memberEpoch, bool commit)
    {
        if (memberEpoch < 0 && string.IsNullOrEmpty(memberId))
            return commit && Size > 0 ? ErrorCode.UnknownMemberId : null;
        if (memberId is null || Get(memberId) is not { } m) return ErrorCode.UnknownMemberId;
        if (memberEpoch != m.MemberEpoch) return m.StaleEpochError;
        return null;
    }

    /// <summary>Replay: the member of an id, created on its first record.</summary>
    internal TMember GetOrAddReplayed(string memberId, Func<string, TMember> create) =>
        Members.TryGetValue(memberId, out var m) ? m : Members[memberId] = create(memberId);

    /// <summary>Replay: the static members' index, rebuilt from the members' instance ids.</summary>
    internal void IndexStaticMembers()
    {
        foreach (var m in Members.Values)
            if (m.InstanceId is not null) StaticMembers[m.InstanceId] = m.MemberId;
    }
}

/// <summary>What changed in one consumer or streams group operation, for the records it writes.</summary>
internal class ModernGroupChanges
{
    public bool GroupMetadata;
    public bool ClassicTombstone;
    public bool TargetMetadata;
    public readonly HashSet<string> Members = new(StringComparer.Ordinal);
    public readonly HashSet<string> RemovedMembers = new(StringComparer.Ordinal);
    public readonly HashSet<string> TargetMembers = new(StringComparer.Ordinal);
    public readonly HashSet<string> CurrentAssignments = new(StringComparer.Ordinal);
}
