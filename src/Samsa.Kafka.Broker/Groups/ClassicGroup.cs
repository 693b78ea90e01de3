using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Protocol;

namespace Samsa.Kafka.Broker.Groups;

/// <summary>The classic group protocol's states (upstream's GroupState / ClassicGroupState); the
/// names are what DescribeGroups and ListGroups report.</summary>
public enum GroupState { Empty, PreparingRebalance, CompletingRebalance, Stable, Dead }

/// <summary>One committed offset (upstream's OffsetAndMetadata).</summary>
public sealed record CommittedOffset(long Offset, int LeaderEpoch, string Metadata, long CommitTimestamp, long ExpireTimestamp = -1);

/// <summary>One protocol a member offers in JoinGroup: its name and opaque metadata.</summary>
public sealed record MemberProtocol(string Name, byte[] Metadata);

/// <summary>A member as the leader sees it in a JoinGroup response.</summary>
public sealed record JoinedMember(string MemberId, string? GroupInstanceId, byte[] Metadata);

public sealed record JoinGroupResult(
    ErrorCode Error, string MemberId, int GenerationId = -1, string? ProtocolType = null, string? ProtocolName = null,
    string LeaderId = "", bool SkipAssignment = false, IReadOnlyList<JoinedMember>? Members = null)
{
    public IReadOnlyList<JoinedMember> MemberList => Members ?? [];
}

public sealed record SyncGroupResult(ErrorCode Error, byte[] Assignment, string? ProtocolType = null, string? ProtocolName = null)
{
    public static SyncGroupResult Failed(ErrorCode error) => new(error, []);
}

/// <summary>A member of a classic group (upstream's MemberMetadata).</summary>
public sealed class GroupMember
{
    public GroupMember(string memberId, string? groupInstanceId, string clientId, string clientHost,
        int rebalanceTimeoutMs, int sessionTimeoutMs, string protocolType, IReadOnlyList<MemberProtocol> protocols)
    {
        MemberId = memberId; GroupInstanceId = groupInstanceId; ClientId = clientId; ClientHost = clientHost;
        RebalanceTimeoutMs = rebalanceTimeoutMs; SessionTimeoutMs = sessionTimeoutMs; ProtocolType = protocolType;
        Protocols = protocols;
    }

    public string MemberId { get; internal set; }
    public string? GroupInstanceId { get; }
    public string ClientId { get; }
    public string ClientHost { get; }
    public int RebalanceTimeoutMs { get; internal set; }
    public int SessionTimeoutMs { get; internal set; }
    public string ProtocolType { get; }
    public IReadOnlyList<MemberProtocol> Protocols { get; internal set; }
    public byte[] Assignment { get; internal set; } = [];
    public bool IsStatic => GroupInstanceId is not null;

    /// <summary>A member added during this rebalance and not yet given a generation; its JoinGroup is
    /// parked, so its session cannot be kept by heartbeats (upstream's isNew).</summary>
    internal bool IsNew;
    internal long HeartbeatDeadline;
    internal TaskCompletionSource<JoinGroupResult>? AwaitingJoin;
    internal TaskCompletionSource<SyncGroupResult>? AwaitingSync;

    public bool IsAwaitingJoin => AwaitingJoin is not null;
    public bool IsAwaitingSync => AwaitingSync is not null;

    public byte[]? MetadataFor(string protocol)
    {
        foreach (var p in Protocols) if (p.Name == protocol) return p.Metadata;
        return null;
    }

    /// <summary>Same protocols with the same metadata, in the same order (upstream's matches).</summary>
    public bool Matches(IReadOnlyList<MemberProtocol> protocols)
    {
        if (protocols.Count != Protocols.Count) return false;
        for (int i = 0; i < protocols.Count; i++)
            if (protocols[i].Name != Protocols[i].Name || !protocols[i].Metadata.AsSpan().SequenceEqual(Protocols[i].Metadata)) return false;
        return true;
    }
}

/// <summary>
/// A classic group: members, generation, chosen protocol, leader and committed offsets (upstream's
/// GroupMetadata / ClassicGroup). Mutated only by <see cref="GroupCoordinator"/> under its lock.
/// </summary>
public sealed class ClassicGroup
{
    public ClassicGroup(string groupId, long now)
    {
        GroupId = groupId;
        CurrentStateTimestamp = now;
    }

    public string GroupId { get; }
    public GroupState State { get; private set; } = GroupState.Empty;
    public int GenerationId { get; internal set; }
    public string? ProtocolType { get; internal set; }
    public string? ProtocolName { get; internal set; }
    public string? LeaderId { get; internal set; }
    public long CurrentStateTimestamp { get; internal set; }

    // Insertion order matters: when the leader leaves, the oldest remaining member leads.
    internal readonly OrderedDictionary<string, GroupMember> Members = new(StringComparer.Ordinal);
    internal readonly Dictionary<string, string> StaticMembers = new(StringComparer.Ordinal);
    /// <summary>Members told MEMBER_ID_REQUIRED that have not rejoined yet, with their expiry deadline.</summary>
    internal readonly Dictionary<string, long> PendingMembers = new(StringComparer.Ordinal);
    internal readonly HashSet<string> PendingSyncMembers = new(StringComparer.Ordinal);
    internal readonly Dictionary<TopicPartition, CommittedOffset> Offsets = new();
    /// <summary>How many members offer each protocol name (upstream's supportedProtocols), so a join
    /// checks the protocols every member supports without visiting every member: with thousands of
    /// members joining at once a per-join scan is quadratic.</summary>
    private readonly Dictionary<string, int> _supportedProtocols = new(StringComparer.Ordinal);
    /// <summary>Topics the consumer-protocol members subscribe to; null when unknown (another protocol
    /// type, or metadata that does not parse), which upstream treats as "may consume anything".</summary>
    internal HashSet<string>? SubscribedTopics;

    // Rebalance timers (upstream: DelayedJoin / InitialDelayedJoin / DelayedSync in the purgatory).
    internal long JoinDeadline = -1;
    internal bool InitialJoinDelay;
    internal long InitialRemainingMs;
    internal bool NewMemberAdded;
    internal long SyncDeadline = -1;

    public int Size => Members.Count;
    public IEnumerable<GroupMember> AllMembers => Members.Values;
    public IReadOnlyDictionary<TopicPartition, CommittedOffset> CommittedOffsets => Offsets;
    public bool Is(GroupState s) => State == s;
    public bool Has(string memberId) => Members.ContainsKey(memberId);
    public GroupMember? Get(string memberId) => Members.GetValueOrDefault(memberId);
    public bool IsLeader(string memberId) => LeaderId == memberId;
    public string? StaticMemberId(string? instanceId) => instanceId is null ? null : StaticMembers.GetValueOrDefault(instanceId);
    public bool IsConsumerGroup => ProtocolType == "consumer";

    /// <summary>Set when the group id belongs to a KIP-848 consumer group (type "consumer"): the
    /// classic membership is then unused (no members), the group's committed offsets stay in
    /// <see cref="Offsets"/> so the offset APIs, retention and OffsetDelete serve both types, and
    /// the classic state mirrors the consumer group's (Empty without members, else Stable).</summary>
    public ConsumerGroup? Consumer { get; internal set; }
    /// <summary>Set when the id is a KIP-1071 streams group (Groups/Streams); the entry keeps its offsets.</summary>
    public Streams.StreamsGroup? Streams { get; internal set; }

    internal int RebalanceTimeoutMs
    {
        get
        {
            int max = 0;
            foreach (var m in Members.Values) max = Math.Max(max, m.RebalanceTimeoutMs);
            return max;
        }
    }

    internal bool HasAllMembersJoined
    {
        get
        {
            if (PendingMembers.Count > 0) return false;
            foreach (var m in Members.Values) if (!m.IsAwaitingJoin) return false;
            return true;
        }
    }

    internal void TransitionTo(GroupState state, long now)
    {
        State = state;
        CurrentStateTimestamp = now;
    }

    // Upstream's GroupMetadata.validPreviousStates: a rebalance can start from Stable,
    // CompletingRebalance or Empty.
    internal bool CanRebalance => State is GroupState.Stable or GroupState.CompletingRebalance or GroupState.Empty;

    internal void Add(GroupMember member)
    {
        if (Members.Count == 0) ProtocolType = member.ProtocolType;
        if (Members.Remove(member.MemberId, out var replaced)) CountProtocols(replaced.Protocols, -1);
        Members[member.MemberId] = member;
        CountProtocols(member.Protocols, +1);
        if (member.GroupInstanceId is { } id) StaticMembers[id] = member.MemberId;
        LeaderId ??= member.MemberId;
        PendingMembers.Remove(member.MemberId);
    }

    internal void Remove(string memberId)
    {
        if (Members.Remove(memberId, out var member))
        {
            CountProtocols(member.Protocols, -1);
            if (member.GroupInstanceId is { } id && StaticMembers.GetValueOrDefault(id) == memberId) StaticMembers.Remove(id);
        }
        if (LeaderId == memberId) LeaderId = Members.Count > 0 ? Members.GetAt(0).Key : null;
        PendingMembers.Remove(memberId);
        PendingSyncMembers.Remove(memberId);
    }

    /// <summary>Gives a known static member its new member id (upstream's replaceStaticMember); the
    /// old id's parked requests are fenced.</summary>
    internal GroupMember ReplaceStaticMember(string instanceId, string oldMemberId, string newMemberId)
    {
        Members.Remove(oldMemberId, out var member);
        member!.AwaitingJoin?.TrySetResult(new JoinGroupResult(ErrorCode.FencedInstanceId, oldMemberId));
        member.AwaitingJoin = null;
        member.AwaitingSync?.TrySetResult(SyncGroupResult.Failed(ErrorCode.FencedInstanceId));
        member.AwaitingSync = null;
        member.MemberId = newMemberId;
        Members[newMemberId] = member;
        if (LeaderId == oldMemberId) LeaderId = newMemberId;
        StaticMembers[instanceId] = newMemberId;
        if (PendingSyncMembers.Remove(oldMemberId)) PendingSyncMembers.Add(newMemberId);
        return member;
    }

    /// <summary>Replaces a member's protocols (a rejoin with new metadata), keeping the counts right.</summary>
    internal void SetProtocols(GroupMember member, IReadOnlyList<MemberProtocol> protocols)
    {
        bool counted = Members.TryGetValue(member.MemberId, out var current) && ReferenceEquals(current, member);
        if (counted) CountProtocols(member.Protocols, -1);
        member.Protocols = protocols;
        if (counted) CountProtocols(protocols, +1);
    }

    // A name offered twice by one member counts once for that member.
    private void CountProtocols(IReadOnlyList<MemberProtocol> protocols, int delta)
    {
        for (int i = 0; i < protocols.Count; i++)
        {
            string name = protocols[i].Name;
            bool repeated = false;
            for (int j = 0; j < i && !repeated; j++) repeated = protocols[j].Name == name;
            if (repeated) continue;
            int n = _supportedProtocols.GetValueOrDefault(name) + delta;
            if (n <= 0) _supportedProtocols.Remove(name); else _supportedProtocols[name] = n;
        }
    }

    /// <summary>Protocols every member supports (upstream's candidateProtocols).</summary>
    internal HashSet<string> CandidateProtocols()
    {
        var common = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, count) in _supportedProtocols) if (count == Members.Count) common.Add(name);
        return common;
    }

    private bool IsCandidate(string protocol) => Members.Count > 0 && _supportedProtocols.GetValueOrDefault(protocol) == Members.Count;

    /// <summary>Upstream's supportsProtocols: an empty group takes any non-empty protocol type and
    /// list; otherwise the type must match and one offered protocol must be supported by all members.</summary>
    internal bool SupportsProtocols(string protocolType, IReadOnlyList<MemberProtocol> protocols)
    {
        if (State == GroupState.Empty || Members.Count == 0) return protocolType.Length > 0 && protocols.Count > 0;
        if (ProtocolType != protocolType) return false;
        foreach (var p in protocols) if (IsCandidate(p.Name)) return true;
        return false;
    }

    /// <summary>Each member votes for its most preferred candidate; most votes wins (upstream's
    /// selectProtocol). Ties go to the protocol the earliest member prefers.</summary>
    internal string SelectProtocol()
    {
        var candidates = CandidateProtocols();
        var votes = new Dictionary<string, int>(StringComparer.Ordinal);
        var order = new List<string>();
        foreach (var m in Members.Values)
        {
            var vote = m.Protocols.FirstOrDefault(p => candidates.Contains(p.Name))?.Name;
            if (vote is null) continue;
            if (!votes.TryAdd(vote, 1)) votes[vote]++; else order.Add(vote);
        }
        // Joins are only accepted while a common protocol exists, so there is always a vote; the
        // fallback keeps a corrupted replayed group from failing the coordinator.
        return order.Count > 0 ? order.OrderByDescending(p => votes[p]).First()
            : Members.Values.SelectMany(m => m.Protocols).Select(p => p.Name).FirstOrDefault() ?? "";
    }

    /// <summary>If the leader did not rejoin, any member that did becomes leader; false when no member
    /// rejoined at all (upstream's maybeElectNewJoinedLeader).</summary>
    internal bool MaybeElectNewJoinedLeader()
    {
        if (LeaderId is null) return false;
        var leader = Members.GetValueOrDefault(LeaderId);
        if (leader is not null && leader.IsAwaitingJoin) return true;
        foreach (var m in Members.Values)
            if (m.IsAwaitingJoin) { LeaderId = m.MemberId; return true; }
        return false;
    }

    internal HashSet<string>? ComputeSubscribedTopics()
    {
        if (!IsConsumerGroup || ProtocolName is null || Members.Count == 0) return null;
        var topics = new HashSet<string>(StringComparer.Ordinal);
        foreach (var m in Members.Values)
        {
            var metadata = m.MetadataFor(ProtocolName);
            if (metadata is null || ConsumerProtocol.SubscribedTopics(metadata) is not { } t) return null;
            topics.UnionWith(t);
        }
        return topics;
    }

    public bool IsSubscribedToTopic(string topic) => SubscribedTopics is null || SubscribedTopics.Contains(topic);
}
