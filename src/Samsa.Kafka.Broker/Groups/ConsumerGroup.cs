using Samsa.Kafka.Protocol;

namespace Samsa.Kafka.Broker.Groups;

/// <summary>States of a KIP-848 consumer group, named as upstream's ConsumerGroupState prints them.</summary>
public enum ConsumerGroupState { Empty, Assigning, Reconciling, Stable, Dead }

/// <summary>Where a member is in its reconciliation (upstream's MemberState; the values of
/// <see cref="ReconciliationState"/>).</summary>
public enum ConsumerMemberState
{
    /// <summary>The member owns its part of the target assignment at the target epoch.</summary>
    Stable,
    /// <summary>The member must first give up partitions no longer in its target (it keeps its epoch).</summary>
    UnrevokedPartitions,
    /// <summary>The member reached the target epoch but waits for partitions other members still own.</summary>
    UnreleasedPartitions,
}

/// <summary>A set of partitions keyed by topic id (KIP-848 speaks topic ids on the wire).</summary>
public sealed class PartitionSet() : GroupedPartitions<Guid, PartitionSet>(Comparer<Guid>.Default), IAssignmentSet<PartitionSet>
{
    public PartitionSet(IEnumerable<(Guid Topic, int Partition)> parts) : this()
    {
        foreach (var (t, p) in parts) Add(t, p);
    }

    public static PartitionSet Empty => new();

    public IEnumerable<Guid> Topics => Keys;
    public IEnumerable<(Guid Topic, int Partition)> All() => Pairs();

    public override string ToString() => Format(", ");
}

/// <summary>A member of a consumer group (upstream's ConsumerGroupMember).</summary>
public sealed class ConsumerMember(string memberId) : ModernMember<PartitionSet>(memberId, 300_000)
{
    public IReadOnlyList<string> SubscribedTopicNames { get; internal set; } = [];
    public string? SubscribedTopicRegex { get; internal set; }
    public string? ServerAssignor { get; internal set; }
    public ConsumerMemberState State
    {
        get => (ConsumerMemberState)Reconciliation;
        internal set => Reconciliation = (ReconciliationState)value;
    }
    /// <summary>Set for a member that speaks the classic protocol (JoinGroup/SyncGroup/Heartbeat) in
    /// a consumer group: its session timeout and the protocols it offered (upstream's
    /// ConsumerGroupMemberMetadataValue.ClassicMemberMetadata). Null for consumer-protocol members.</summary>
    public ClassicMemberInfo? Classic { get; internal set; }
    public bool UsesClassicProtocol => Classic is not null;
    /// <summary>Upstream's validateMemberEpoch: a classic member speaks generations.</summary>
    internal override ErrorCode StaleEpochError => UsesClassicProtocol ? ErrorCode.IllegalGeneration : ErrorCode.StaleMemberEpoch;
    /// <summary>Classic member told to rejoin (REBALANCE_IN_PROGRESS): removed when it has not
    /// rejoined by then (upstream's consumer group join timeout); -1 when not armed.</summary>
    internal long JoinDeadline = -1;
    /// <summary>Classic member that joined: removed when it has not sent SyncGroup by then
    /// (upstream's consumer group sync timeout); -1 when not armed.</summary>
    internal long SyncDeadline = -1;
}

/// <summary>A classic member's JoinGroup details kept in a consumer group.</summary>
public sealed record ClassicMemberInfo(int SessionTimeoutMs, IReadOnlyList<MemberProtocol> Protocols)
{
    public string ProtocolName => Protocols.Count > 0 ? Protocols[0].Name : "";
}

/// <summary>
/// A KIP-848 consumer group (upstream's ConsumerGroup in the group-coordinator module): members,
/// the group epoch (bumped on every membership, subscription or subscribed-topic metadata change),
/// the target assignment computed by a server-side assignor at the assignment epoch, and the
/// subscribed topics' metadata the last assignment was computed from.
/// </summary>
public sealed class ConsumerGroup(string groupId) : ModernGroup<ConsumerMember, PartitionSet>(groupId)
{
    public string? AssignorName { get; internal set; }
    /// <summary>Name → (id, partition count) of every topic a member subscribes to (by name or by
    /// regex) and that exists; a change bumps the group epoch (upstream's subscription metadata).</summary>
    internal Dictionary<string, (Guid Id, int Partitions)> SubscriptionMetadata = new(StringComparer.Ordinal);
    /// <summary>Fingerprint of the cluster's topics when <see cref="SubscriptionMetadata"/> was last computed.</summary>
    internal long TopicsFingerprint = long.MinValue;

    public int ClassicMemberCount => Members.Values.Count(m => m.UsesClassicProtocol);

    /// <summary>Upstream's ConsumerGroup.supportsClassicProtocols: type "consumer", and a protocol
    /// name every classic member offers (any, while there is no classic member).</summary>
    public bool SupportsClassicProtocols(string protocolType, IReadOnlyList<MemberProtocol> protocols)
    {
        if (protocolType != ConsumerProtocol.ProtocolType || protocols.Count == 0) return false;
        var classic = Members.Values.Where(m => m.UsesClassicProtocol).ToList();
        return protocols.Any(p => classic.All(m => m.Classic!.Protocols.Any(q => q.Name == p.Name)));
    }

    /// <summary>Whether every member but <paramref name="memberId"/> uses the classic protocol and
    /// that one does not (upstream's allMembersUseClassicProtocolExcept).</summary>
    public bool AllMembersUseClassicProtocolExcept(string memberId) =>
        Members.TryGetValue(memberId, out var m) && !m.UsesClassicProtocol && ClassicMemberCount == Members.Count - 1;

    /// <summary>Whether a partition of the member's target that it does not have yet is still held by
    /// another member (upstream's waitingOnUnreleasedPartition).</summary>
    public bool WaitingOnUnreleasedPartition(ConsumerMember member)
    {
        foreach (var (t, p) in TargetOf(member.MemberId).Minus(member.Assigned).All())
            if (IsOwnedByOther(member.MemberId, t, p)) return true;
        return false;
    }

    /// <summary>Upstream's ConsumerGroup.updateState rules.</summary>
    public ConsumerGroupState State
    {
        get
        {
            if (Members.Count == 0) return ConsumerGroupState.Empty;
            if (GroupEpoch > AssignmentEpoch) return ConsumerGroupState.Assigning;
            return AnyMemberReconciling() ? ConsumerGroupState.Reconciling : ConsumerGroupState.Stable;
        }
    }

    /// <summary>Whether a partition is held (assigned or pending revocation) by a member other than
    /// <paramref name="memberId"/> (upstream's currentPartitionEpoch != -1 for another owner).</summary>
    public bool IsOwnedByOther(string memberId, Guid topic, int partition)
    {
        foreach (var m in Members.Values)
        {
            if (m.MemberId == memberId) continue;
            if (m.Assigned.Contains(topic, partition) || m.PendingRevocation.Contains(topic, partition)) return true;
        }
        return false;
    }

    /// <summary>A partition of the target another member still holds waits until it is released.</summary>
    internal override bool TakeReleased(ConsumerMember member, PartitionSet keep, PartitionSet target)
    {
        bool unreleased = false;
        foreach (var (t, p) in target.Minus(keep).All())
        {
            if (IsOwnedByOther(member.MemberId, t, p)) unreleased = true;
            else keep.Add(t, p);
        }
        return unreleased;
    }

    /// <summary>Names of the topics the members subscribe to (by name or resolved regex), for
    /// offset retention and OffsetDelete.</summary>
    public HashSet<string> SubscribedTopicNames()
    {
        var set = new HashSet<string>(SubscriptionMetadata.Keys, StringComparer.Ordinal);
        foreach (var m in Members.Values) set.UnionWith(m.SubscribedTopicNames);
        return set;
    }
}
