using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Groups.Streams;

/// <summary>States of a KIP-1071 streams group, named as upstream's StreamsGroupState prints them.
/// NotReady: members are there but the topology is not configured yet (missing or wrongly
/// partitioned topics).</summary>
public enum StreamsGroupState { Empty, NotReady, Assigning, Reconciling, Stable, Dead }

/// <summary>Upstream's streams MemberState (the int8 of the current-assignment record; the values
/// of <see cref="ReconciliationState"/>).</summary>
public enum StreamsMemberState : sbyte { Stable = 0, UnrevokedTasks = 1, UnreleasedTasks = 2 }

/// <summary>Tasks keyed by sub-topology id: a task is (sub-topology, partition).</summary>
public sealed class TaskSet() : GroupedPartitions<string, TaskSet>(StringComparer.Ordinal)
{
    public TaskSet(IEnumerable<(string Subtopology, int Partition)> tasks) : this()
    {
        foreach (var (s, p) in tasks) Add(s, p);
    }

    public IEnumerable<string> Subtopologies => Keys;
    public IEnumerable<(string Subtopology, int Partition)> All() => Pairs();

    public override string ToString() => Format(" ");
}

/// <summary>Active, standby and warm-up tasks of one member (upstream's TasksTuple).</summary>
public sealed class TaskAssignment : IAssignmentSet<TaskAssignment>
{
    public TaskSet Active { get; init; } = new();
    public TaskSet Standby { get; init; } = new();
    public TaskSet Warmup { get; init; } = new();

    public static TaskAssignment Empty => new();
    public bool IsEmpty => Active.IsEmpty && Standby.IsEmpty && Warmup.IsEmpty;
    public TaskAssignment Clone() => new() { Active = Active.Clone(), Standby = Standby.Clone(), Warmup = Warmup.Clone() };
    public TaskAssignment Minus(TaskAssignment o) => new() { Active = Active.Minus(o.Active), Standby = Standby.Minus(o.Standby), Warmup = Warmup.Minus(o.Warmup) };
    public TaskAssignment Intersect(TaskAssignment o) => new() { Active = Active.Intersect(o.Active), Standby = Standby.Intersect(o.Standby), Warmup = Warmup.Intersect(o.Warmup) };
    public bool Overlaps(TaskAssignment o) => Active.Overlaps(o.Active) || Standby.Overlaps(o.Standby) || Warmup.Overlaps(o.Warmup);
    public bool IsSubsetOf(TaskAssignment o) => Active.IsSubsetOf(o.Active) && Standby.IsSubsetOf(o.Standby) && Warmup.IsSubsetOf(o.Warmup);
    public bool SetEquals(TaskAssignment o) => Active.SetEquals(o.Active) && Standby.SetEquals(o.Standby) && Warmup.SetEquals(o.Warmup);
    public override string ToString() => $"active {Active}; standby {Standby}; warmup {Warmup}";
}

/// <summary>A member of a streams group (upstream's StreamsGroupMember).</summary>
public sealed class StreamsMember(string memberId) : ModernMember<TaskAssignment>(memberId, -1)
{
    public int TopologyEpoch { get; internal set; }
    public string ProcessId { get; internal set; } = "";
    public (string Host, ushort Port)? UserEndpoint { get; internal set; }
    public IReadOnlyList<(string Key, string Value)> ClientTags { get; internal set; } = [];
    /// <summary>Changelog offsets the member reported (kept in memory only, as upstream).</summary>
    public IReadOnlyList<(string Subtopology, int Partition, long Offset)> TaskOffsets { get; internal set; } = [];
    public IReadOnlyList<(string Subtopology, int Partition, long Offset)> TaskEndOffsets { get; internal set; } = [];
    public StreamsMemberState State
    {
        get => (StreamsMemberState)Reconciliation;
        internal set => Reconciliation = (ReconciliationState)value;
    }
    /// <summary>A rebalance timeout the member did not send (-1) gives no time to revoke.</summary>
    internal override int RevocationTimeoutMs => Math.Max(0, RebalanceTimeoutMs);
}

/// <summary>
/// A KIP-1071 streams group (upstream's StreamsGroup): members, the group epoch (bumped on
/// membership, topology or topic metadata changes), the topology the first member of a topology
/// epoch sent, the topology as configured against the cluster's topics, and the target task
/// assignment computed by the sticky task assignor at the assignment epoch.
/// </summary>
public sealed class StreamsGroup(string groupId) : ModernGroup<StreamsMember, TaskAssignment>(groupId)
{
    /// <summary>Hash of the group's topics (name, id, partitions) when the group epoch was last bumped for them.</summary>
    public long MetadataHash { get; internal set; }
    public int ValidatedTopologyEpoch { get; internal set; } = -1;
    /// <summary>num.standby.replicas the last target assignment used (written as an assignment config).</summary>
    public int NumStandbyReplicas { get; internal set; }
    public StreamsGroupTopologyValue? Topology { get; internal set; }
    /// <summary>Computed from <see cref="Topology"/> and the topics; not persisted (upstream recomputes it).</summary>
    public ConfiguredTopology? Configured { get; internal set; }
    /// <summary>Set by a member's ShutdownApplication: every member is told SHUTDOWN_APPLICATION.</summary>
    public string? ShutdownRequestedBy { get; internal set; }
    /// <summary>Bumped whenever the endpoint-to-partitions information changes.</summary>
    public int EndpointInformationEpoch { get; internal set; }

    /// <summary>Upstream's StreamsGroup.updateState.</summary>
    public StreamsGroupState State
    {
        get
        {
            if (Members.Count == 0) return StreamsGroupState.Empty;
            if (Topology is null || Configured is not { IsReady: true }) return StreamsGroupState.NotReady;
            if (GroupEpoch > AssignmentEpoch) return StreamsGroupState.Assigning;
            return AnyMemberReconciling() ? StreamsGroupState.Reconciling : StreamsGroupState.Stable;
        }
    }

    /// <summary>Whether an active task is held (assigned or pending revocation) by a member other than
    /// <paramref name="memberId"/> (upstream's currentActiveTaskProcessId lookup).</summary>
    public bool ActiveOwnedByOther(string memberId, string s, int p)
    {
        foreach (var m in Members.Values)
        {
            if (m.MemberId == memberId) continue;
            if (m.Assigned.Active.Contains(s, p) || m.PendingRevocation.Active.Contains(s, p)) return true;
        }
        return false;
    }

    /// <summary>Whether a standby or warm-up task is still held by another member of the same
    /// process as an active or standby task would double it up there (upstream keeps one copy
    /// per process).</summary>
    public bool StandbyOwnedByOtherOfProcess(StreamsMember member, string s, int p)
    {
        foreach (var m in Members.Values)
        {
            if (m.MemberId == member.MemberId || m.ProcessId != member.ProcessId) continue;
            if (m.Assigned.Standby.Contains(s, p) || m.PendingRevocation.Standby.Contains(s, p)
                || m.Assigned.Warmup.Contains(s, p) || m.PendingRevocation.Warmup.Contains(s, p)) return true;
        }
        return false;
    }

    /// <summary>Active tasks wait until no other member holds them; standby and warm-up copies until
    /// no other member of the same process holds them; warm-up tasks are otherwise given at once.</summary>
    internal override bool TakeReleased(StreamsMember member, TaskAssignment keep, TaskAssignment target)
    {
        bool unreleased = false;
        foreach (var (s, p) in target.Active.Minus(keep.Active).All())
        {
            if (ActiveOwnedByOther(member.MemberId, s, p)) unreleased = true;
            else keep.Active.Add(s, p);
        }
        foreach (var (s, p) in target.Standby.Minus(keep.Standby).All())
        {
            if (StandbyOwnedByOtherOfProcess(member, s, p)) unreleased = true;
            else keep.Standby.Add(s, p);
        }
        foreach (var (s, p) in target.Warmup.Minus(keep.Warmup).All()) keep.Warmup.Add(s, p);
        return unreleased;
    }

    /// <summary>Every source, repartition and changelog topic name of the topology (for offset
    /// retention and OffsetDelete: upstream treats a streams group as subscribed to its topology's topics).</summary>
    public HashSet<string> TopicNames()
    {
        var set = new HashSet<string>(StringComparer.Ordinal);
        if (Configured is { } c) set.UnionWith(c.SourceTopicsResolved);
        if (Topology is { } t)
            foreach (var s in t.Subtopologies)
            {
                set.UnionWith(s.SourceTopics);
                set.UnionWith(s.RepartitionSourceTopics.Select(x => x.Name));
            }
        return set;
    }
}

/// <summary>A topic the coordinator's broker must create for a streams group (upstream's
/// StreamsGroupHeartbeatResult creatableTopics).</summary>
public sealed record InternalTopicSpec(string Name, int Partitions, short ReplicationFactor, IReadOnlyDictionary<string, string> Configs);

/// <summary>The topology checked against the cluster's topics (upstream's ConfiguredTopology): the
/// task count of each sub-topology, and what is missing or wrong.</summary>
public sealed class ConfiguredTopology
{
    public int TopologyEpoch { get; init; }
    /// <summary>Sub-topology id → number of tasks (partitions); empty when not ready.</summary>
    public IReadOnlyDictionary<string, int> Tasks { get; init; } = new Dictionary<string, int>();
    /// <summary>Sub-topology id → its source topics with regexes resolved, then repartition sources.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> InputTopics { get; init; } = new Dictionary<string, IReadOnlyList<string>>();
    /// <summary>Sub-topology id → the changelog topics of its stores.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> Changelogs { get; init; } = new Dictionary<string, IReadOnlyList<string>>();
    public IReadOnlyList<string> SourceTopicsResolved { get; init; } = [];
    public IReadOnlyList<(sbyte Code, string Detail)> Statuses { get; init; } = [];
    public IReadOnlyList<InternalTopicSpec> MissingInternalTopics { get; init; } = [];
    public bool IsReady => Statuses.Count == 0;
}
