using Samsa.Kafka.Broker.Groups.Streams;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Groups;

/// <summary>One StreamsGroupHeartbeat's answer; the handler turns it into the response.</summary>
public sealed record StreamsHeartbeatResult(ErrorCode Error, string? ErrorMessage, string MemberId, int MemberEpoch, int HeartbeatIntervalMs,
    IReadOnlyList<(sbyte Code, string Detail)> Statuses, TaskAssignment? Assignment, int EndpointInformationEpoch,
    IReadOnlyList<StreamsEndpointPartitions>? PartitionsByEndpoint, IReadOnlyList<InternalTopicSpec> TopicsToCreate)
{
    public static StreamsHeartbeatResult Failed(ErrorCode e, string? message = null, string memberId = "") =>
        new(e, message, memberId, 0, 0, [], null, 0, null, []);
}

/// <summary>One member endpoint's partitions for interactive queries.</summary>
public sealed record StreamsEndpointPartitions(string Host, ushort Port,
    IReadOnlyList<(string Topic, List<int> Partitions)> Active, IReadOnlyList<(string Topic, List<int> Partitions)> Standby);

/// <summary>
/// KIP-1071 streams groups (upstream's GroupMetadataManager.streamsGroupHeartbeat, StreamsGroup,
/// streams CurrentAssignmentBuilder, InternalTopicManager). A streams group shares the coordinator's
/// lock, id namespace and committed offsets: it is a <see cref="ClassicGroup"/> entry whose
/// <see cref="ClassicGroup.Streams"/> is set. Members run tasks (sub-topology, partition): active
/// tasks exactly once across the group, standby copies elsewhere; a member revokes tasks before
/// another receives them.
/// </summary>
public sealed partial class GroupCoordinator
{
    /// <summary>StreamsGroupHeartbeat: join (epoch 0 with the topology), heartbeat, leave (-1),
    /// static leave (-2).</summary>
    public StreamsHeartbeatResult StreamsGroupHeartbeat(StreamsGroupHeartbeatRequest r, string clientId, string clientHost)
    {
        lock (_gate)
        {
            if (ValidateGroupStatus(r.GroupId, allowEmptyId: false) is { } status) return StreamsHeartbeatResult.Failed(status, memberId: r.MemberId);
            if (ValidateStreamsHeartbeat(r) is { } invalid) return invalid;
            long now = _clock();
            if (r.MemberEpoch is StreamsGroup.LeaveEpoch or StreamsGroup.LeaveStaticEpoch) return StreamsLeave(r);

            _groups.TryGetValue(r.GroupId, out var holder);
            if (holder is not null && holder.Streams is null)
            {
                // Upstream: only an empty classic group (committed offsets only — e.g. an application
                // that ran with the classic protocol) may become a streams group.
                if (holder.Consumer is not null || holder.Size > 0 || holder.PendingMembers.Count > 0 || !holder.Is(GroupState.Empty))
                    return StreamsHeartbeatResult.Failed(ErrorCode.GroupIdNotFound, $"Group {r.GroupId} is not a streams group.", r.MemberId);
            }
            if (holder?.Streams is null && r.MemberEpoch != 0)
                return StreamsHeartbeatResult.Failed(ErrorCode.GroupIdNotFound, $"Streams group {r.GroupId} not found.", r.MemberId);
            if (holder is null)
            {
                holder = new ClassicGroup(r.GroupId, now);
                _groups[r.GroupId] = holder;
            }
            var changes = new StreamsChanges();
            if (holder.Streams is null && holder.ProtocolType is not null) changes.ClassicTombstone = true;
            var group = holder.Streams ??= new StreamsGroup(r.GroupId) { NumStandbyReplicas = Config.StreamsGroupNumStandbyReplicas };
            holder.ProtocolType = null;

            StreamsMember? member;
            bool bump = false;
            if (r.MemberEpoch == 0)
            {
                if (r.InstanceId is not null && group.StaticMembers.TryGetValue(r.InstanceId, out var previousId)
                    && group.Get(previousId) is { } previous && previousId != r.MemberId)
                {
                    if (!previous.IsStaticLeft)
                        return StreamsHeartbeatResult.Failed(ErrorCode.UnreleasedInstanceId,
                            $"Static member {previousId} with instance id {r.InstanceId} is still in the group.", r.MemberId);
                    // A static member that comes back under a new member id takes over the old one's
                    // epoch and tasks (upstream's static member replacement): nothing moves.
                    member = new StreamsMember(r.MemberId)
                    {
                        InstanceId = r.InstanceId, MemberEpoch = previous.PreviousMemberEpoch, PreviousMemberEpoch = previous.PreviousMemberEpoch,
                        Assigned = previous.Assigned, PendingRevocation = previous.PendingRevocation, State = previous.State,
                        ProcessId = previous.ProcessId, RebalanceTimeoutMs = previous.RebalanceTimeoutMs, UserEndpoint = previous.UserEndpoint,
                        ClientTags = previous.ClientTags, RackId = previous.RackId,
                    };
                    group.ReplaceStatic(previous, member, changes);
                }
                else
                {
                    if (group.Get(r.MemberId) is { } existing)
                    {
                        // Rejoining with epoch 0 under its id: it lost its tasks and starts over.
                        RemoveStreamsMember(group, existing, changes);
                    }
                    if (group.Size >= Config.StreamsGroupMaxSize)
                        return StreamsHeartbeatResult.Failed(ErrorCode.GroupMaxSizeReached,
                            $"The streams group has reached its maximum capacity of {Config.StreamsGroupMaxSize} members.", r.MemberId);
                    member = new StreamsMember(r.MemberId) { MemberEpoch = 0, InstanceId = r.InstanceId };
                    group.Add(member);
                    bump = true;
                }
                member.TopologyEpoch = r.Topology!.Epoch;
            }
            else
            {
                member = group.Get(r.MemberId);
                if (member is null)
                    return StreamsHeartbeatResult.Failed(ErrorCode.UnknownMemberId, $"Member {r.MemberId} is not a member of group {r.GroupId}.", r.MemberId);
                if (r.InstanceId is not null && group.StaticMembers.GetValueOrDefault(r.InstanceId) != member.MemberId)
                    return StreamsHeartbeatResult.Failed(ErrorCode.FencedInstanceId, $"Instance id {r.InstanceId} belongs to another member.", r.MemberId);
                var ownedNow = Owned(r);
                if (member.IsFencedBy(r.MemberEpoch, ownedNow))
                    return StreamsHeartbeatResult.Failed(ErrorCode.FencedMemberEpoch,
                        $"The streams group member has a smaller member epoch ({r.MemberEpoch}) than the one known by the group coordinator ({member.MemberEpoch}). The member must abandon all its tasks and rejoin.", r.MemberId);
            }

            // Fields the request changes; those the assignor uses bump the group epoch.
            var identity = (member.ClientId, member.ClientHost, member.RackId, member.RebalanceTimeoutMs, member.ProcessId, member.TopologyEpoch,
                member.UserEndpoint, string.Join('\u0000', member.ClientTags.Select(t => t.Key + "=" + t.Value)));
            var placement = (member.ProcessId, member.RackId, identity.Item8);
            member.ClientId = clientId;
            member.ClientHost = clientHost;
            if (r.RackId is not null) member.RackId = r.RackId;
            if (r.RebalanceTimeoutMs >= 0) member.RebalanceTimeoutMs = r.RebalanceTimeoutMs;
            if (r.ProcessId is not null) member.ProcessId = r.ProcessId;
            if (r.UserEndpoint is { } ep) member.UserEndpoint = (ep.Host, ep.Port);
            if (r.ClientTags is not null) member.ClientTags = r.ClientTags.Select(t => (t.Key, t.Value)).ToList();
            if (r.TaskOffsets is not null) member.TaskOffsets = r.TaskOffsets.Select(t => (t.SubtopologyId, t.Partition, t.Offset)).ToList();
            if (r.TaskEndOffsets is not null) member.TaskEndOffsets = r.TaskEndOffsets.Select(t => (t.SubtopologyId, t.Partition, t.Offset)).ToList();
            member.SessionDeadline = now + Config.StreamsGroupSessionTimeoutMs;
            var newIdentity = (member.ClientId, member.ClientHost, member.RackId, member.RebalanceTimeoutMs, member.ProcessId, member.TopologyEpoch,
                member.UserEndpoint, string.Join('\u0000', member.ClientTags.Select(t => t.Key + "=" + t.Value)));
            if (bump || identity != newIdentity) changes.Members.Add(member.MemberId);
            if (placement != (member.ProcessId, member.RackId, newIdentity.Item8)) bump = true;
            if (identity.UserEndpoint != member.UserEndpoint) group.EndpointInformationEpoch++;

            // The topology: the first member of a topology epoch sets it; a newer epoch replaces it.
            var statuses = new List<(sbyte, string)>();
            if (r.Topology is { } topo)
            {
                if (group.Topology is null || topo.Epoch > group.Topology.Epoch)
                {
                    group.Topology = ToRecord(topo);
                    changes.Topology = true;
                    bump = true;
                }
                else if (topo.Epoch == group.Topology.Epoch && !SameTopology(group.Topology, ToRecord(topo)))
                    return StreamsHeartbeatResult.Failed(ErrorCode.StreamsInvalidTopologyEpoch,
                        $"Topology with epoch {topo.Epoch} differs from the group's topology of the same epoch.", r.MemberId);
            }
            if (group.Topology is { } gt && member.TopologyEpoch < gt.Epoch)
                statuses.Add((TopologyConfigurator.StaleTopology,
                    $"The member's topology epoch {member.TopologyEpoch} is behind the group's topology epoch {gt.Epoch}."));

            // Topics: configure the topology against the cluster; a change of the topics' metadata bumps.
            if (RefreshStreamsTopology(group, force: bump)) bump = true;
            if (bump)
            {
                group.GroupEpoch++;
                changes.GroupMetadata = true;
            }
            if (group.GroupEpoch > group.AssignmentEpoch) ComputeStreamsTargetAssignment(group, changes);

            if (r.ShutdownApplication && group.ShutdownRequestedBy is null)
            {
                group.ShutdownRequestedBy = member.MemberId;
                _logger?.Invoke($"[GroupCoordinator] Member {member.MemberId} of streams group {group.GroupId} requested the shutdown of the application");
            }

            var before = member.Assigned.Clone();
            bool assignmentChanged = CurrentAssignmentBuilder.Reconcile(group, member, Owned(r), now);
            if (assignmentChanged)
            {
                changes.CurrentAssignments.Add(member.MemberId);
                if (!before.Active.SetEquals(member.Assigned.Active) || !before.Standby.SetEquals(member.Assigned.Standby)) group.EndpointInformationEpoch++;
            }
            UpdateStreamsMirror(holder, now);
            if (PersistStreams(holder, changes) is { } appendError) return StreamsHeartbeatResult.Failed(appendError, memberId: r.MemberId);

            if (group.Configured is { } configured) statuses.AddRange(configured.Statuses);
            if (group.ShutdownRequestedBy is { } by)
                statuses.Add((TopologyConfigurator.ShutdownApplication, $"Streams group member {by} encountered a fatal error and requested a shutdown for the entire application."));
            bool full = r.ActiveTasks is not null && r.StandbyTasks is not null && r.WarmupTasks is not null;
            var assignment = r.MemberEpoch == 0 || assignmentChanged || full ? member.Assigned.Clone() : null;
            // Any epoch other than the group's gets the map (after a failover the group's in-memory
            // epoch starts again, so "behind" is not enough).
            var endpoints = r.EndpointInformationEpoch != group.EndpointInformationEpoch ? EndpointPartitions(group) : null;
            return new StreamsHeartbeatResult(ErrorCode.None, null, member.MemberId, member.MemberEpoch, Config.StreamsGroupHeartbeatIntervalMs,
                statuses, assignment, group.EndpointInformationEpoch, endpoints, group.Configured?.MissingInternalTopics ?? []);
        }
    }

    private static TaskAssignment? Owned(StreamsGroupHeartbeatRequest r)
    {
        if (r.ActiveTasks is null || r.StandbyTasks is null || r.WarmupTasks is null) return null;
        static TaskSet S(List<StreamsGroupHeartbeatRequest.TaskIds> l) => new(l.SelectMany(t => t.Partitions.Select(p => (t.SubtopologyId, p))));
        return new TaskAssignment { Active = S(r.ActiveTasks), Standby = S(r.StandbyTasks), Warmup = S(r.WarmupTasks) };
    }

    /// <summary>Upstream's throwIfStreamsGroupHeartbeatRequestIsInvalid and the service's unsupported-feature check.</summary>
    private static StreamsHeartbeatResult? ValidateStreamsHeartbeat(StreamsGroupHeartbeatRequest r)
    {
        StreamsHeartbeatResult Invalid(string m) => StreamsHeartbeatResult.Failed(ErrorCode.InvalidRequest, m, r.MemberId);
        if (r.MemberId.Length == 0) return Invalid("MemberId can't be empty.");
        if (r.InstanceId is not null && r.InstanceId.Length == 0) return Invalid("InstanceId can't be empty.");
        if (r.RackId is not null && r.RackId.Length == 0) return Invalid("RackId can't be empty.");
        if (r.Topology is { } t)
            foreach (var s in t.Subtopologies)
                if (s.SourceTopicRegex.Count > 0) return Invalid("Regular expressions for source topics are not supported yet.");
        if (r.MemberEpoch == 0)
        {
            if (r.RebalanceTimeoutMs == -1) return Invalid("RebalanceTimeoutMs must be provided in first request.");
            if (r.ActiveTasks is not { Count: 0 }) return Invalid("ActiveTasks must be empty when (re-)joining.");
            if (r.StandbyTasks is not { Count: 0 }) return Invalid("StandbyTasks must be empty when (re-)joining.");
            if (r.WarmupTasks is not { Count: 0 }) return Invalid("WarmupTasks must be empty when (re-)joining.");
            if (r.Topology is null) return Invalid("Topology must be non-null when (re-)joining.");
            if (r.ProcessId is null) return Invalid("ProcessId can't be null.");
            if (ValidateTopology(r.Topology) is { } bad) return StreamsHeartbeatResult.Failed(ErrorCode.StreamsInvalidTopology, bad, r.MemberId);
        }
        else if (r.MemberEpoch == StreamsGroup.LeaveStaticEpoch)
        {
            if (r.InstanceId is null) return Invalid("InstanceId can't be null.");
        }
        else if (r.MemberEpoch < StreamsGroup.LeaveStaticEpoch) return Invalid($"MemberEpoch is {r.MemberEpoch}, but must be greater than or equal to -2.");
        return null;
    }

    /// <summary>Upstream's TopologyValidator essentials: unique sub-topology ids, every repartition
    /// source topic written by some sub-topology, co-partition indexes in range.</summary>
    private static string? ValidateTopology(StreamsGroupHeartbeatRequest.TopologyData t)
    {
        var ids = new HashSet<string>(StringComparer.Ordinal);
        foreach (var s in t.Subtopologies)
            if (!ids.Add(s.SubtopologyId)) return $"Duplicate subtopology id {s.SubtopologyId}.";
        var sinks = t.Subtopologies.SelectMany(s => s.RepartitionSinkTopics).ToHashSet(StringComparer.Ordinal);
        foreach (var s in t.Subtopologies)
        {
            foreach (var r in s.RepartitionSourceTopics)
                if (!sinks.Contains(r.Name) && r.Partitions <= 0)
                    return $"Repartition source topic {r.Name} is not written by any subtopology and has no partition count.";
            foreach (var g in s.CopartitionGroups)
            {
                if (g.SourceTopics.Any(i => i < 0 || i >= s.SourceTopics.Count)
                    || g.RepartitionSourceTopics.Any(i => i < 0 || i >= s.RepartitionSourceTopics.Count)
                    || g.SourceTopicRegex.Any(i => i < 0 || i >= s.SourceTopicRegex.Count))
                    return $"Copartition group of subtopology {s.SubtopologyId} refers to a topic index out of range.";
            }
        }
        return null;
    }

    private static StreamsGroupTopologyValue ToRecord(StreamsGroupHeartbeatRequest.TopologyData t) => new()
    {
        Epoch = t.Epoch,
        Subtopologies = t.Subtopologies.Select(s => new StreamsGroupTopologyValue.Subtopology
        {
            SubtopologyId = s.SubtopologyId,
            SourceTopics = s.SourceTopics.ToList(),
            SourceTopicRegex = s.SourceTopicRegex.ToList(),
            RepartitionSinkTopics = s.RepartitionSinkTopics.ToList(),
            StateChangelogTopics = s.StateChangelogTopics.Select(Info).ToList(),
            RepartitionSourceTopics = s.RepartitionSourceTopics.Select(Info).ToList(),
            CopartitionGroups = s.CopartitionGroups.Select(g => new StreamsGroupTopologyValue.CopartitionGroup
            {
                SourceTopics = g.SourceTopics.ToList(), SourceTopicRegex = g.SourceTopicRegex.ToList(), RepartitionSourceTopics = g.RepartitionSourceTopics.ToList(),
            }).ToList(),
        }).ToList(),
    };

    private static StreamsGroupTopologyValue.TopicInfo Info(StreamsGroupHeartbeatRequest.TopicInfo i) => new()
    {
        Name = i.Name, Partitions = i.Partitions, ReplicationFactor = i.ReplicationFactor,
        TopicConfigs = i.TopicConfigs.Select(c => new StreamsGroupTopologyValue.TopicConfig { Key = c.Key, Value = c.Value }).ToList(),
    };

    private static bool SameTopology(StreamsGroupTopologyValue a, StreamsGroupTopologyValue b) =>
        a.Size(0) == b.Size(0) && GroupRecords.Encode(a, 0).AsSpan().SequenceEqual(GroupRecords.Encode(b, 0));

    /// <summary>Configures the group's topology against the current topics; true when the topics'
    /// metadata hash changed (upstream bumps the group epoch then).</summary>
    /// <param name="commit">False for a read-only look (StreamsGroupDescribe): the stored hash stays,
    /// so the next heartbeat still sees the change and bumps the epoch.</param>
    private bool RefreshStreamsTopology(StreamsGroup group, bool force, bool commit = true)
    {
        if (group.Topology is not { } topology) return false;
        var topics = TopicSource();
        var byName = topics.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var configured = TopologyConfigurator.Configure(topology, n => byName.TryGetValue(n, out var t) ? t.Partitions : null,
            byName.Keys, (_, _) => false);
        group.Configured = configured;
        // The hash covers every topic the topology names (present or not), so a created internal
        // topic or a new partition count triggers a new assignment.
        long hash = 17;
        foreach (var name in TopologyTopicNames(topology).Order(StringComparer.Ordinal))
        {
            hash = hash * 31 + StableHash(name);
            if (byName.TryGetValue(name, out var t)) hash = hash * 31 + t.Id.GetHashCode() * 7L + t.Partitions;
        }
        bool changed = hash != group.MetadataHash;
        if (!commit) return changed;
        if (changed || force)
        {
            group.MetadataHash = hash;
            if (configured.IsReady) group.ValidatedTopologyEpoch = topology.Epoch;
        }
        return changed;
    }

    private static long StableHash(string s)
    {
        long h = 1125899906842597L;
        foreach (char c in s) h = 31 * h + c;
        return h;
    }

    private static IEnumerable<string> TopologyTopicNames(StreamsGroupTopologyValue t) =>
        t.Subtopologies.SelectMany(s => s.SourceTopics.Concat(s.RepartitionSourceTopics.Select(r => r.Name))
            .Concat(s.StateChangelogTopics.Select(c => c.Name))).Distinct(StringComparer.Ordinal);

    /// <summary>The sticky assignor's target at the group epoch (no tasks while the topology is not ready).</summary>
    private void ComputeStreamsTargetAssignment(StreamsGroup group, StreamsChanges changes)
    {
        var tasks = group.Configured is { IsReady: true } c ? c.Tasks : new Dictionary<string, int>();
        var stateful = group.Topology?.Subtopologies.Where(s => s.StateChangelogTopics.Count > 0).Select(s => s.SubtopologyId)
            .ToHashSet(StringComparer.Ordinal) ?? [];
        group.NumStandbyReplicas = Config.StreamsGroupNumStandbyReplicas;
        var members = group.Members.Values
            .Select(m => new StickyTaskAssignor.MemberSpec(m.MemberId, m.ProcessId, Previous(group, m))).ToList();
        group.InstallTarget(StickyTaskAssignor.Assign(members, tasks, stateful, group.NumStandbyReplicas), changes);
    }

    /// <summary>What a member held, for stickiness: its current tasks (and those pending revocation),
    /// else its previous target.</summary>
    private static TaskAssignment Previous(StreamsGroup group, StreamsMember m)
    {
        var held = m.Assigned.Clone();
        foreach (var t in m.PendingRevocation.Active.All()) held.Active.Add(t.Subtopology, t.Partition);
        foreach (var t in m.PendingRevocation.Standby.All()) held.Standby.Add(t.Subtopology, t.Partition);
        if (!held.IsEmpty) return held;
        return group.TargetOf(m.MemberId).Clone();
    }

    private StreamsHeartbeatResult StreamsLeave(StreamsGroupHeartbeatRequest r)
    {
        if (!_groups.TryGetValue(r.GroupId, out var holder) || holder.Streams is not { } group)
            return StreamsHeartbeatResult.Failed(ErrorCode.GroupIdNotFound, $"Streams group {r.GroupId} not found.", r.MemberId);
        var member = group.Get(r.MemberId);
        if (member is null)
            return StreamsHeartbeatResult.Failed(ErrorCode.UnknownMemberId, $"Member {r.MemberId} is not a member of group {r.GroupId}.", r.MemberId);
        var changes = new StreamsChanges();
        if (r.MemberEpoch == StreamsGroup.LeaveStaticEpoch && member.InstanceId is not null)
        {
            // A static member leaving for a restart keeps its tasks (and stays in the group) until
            // its session times out (upstream's LEAVE_GROUP_STATIC_MEMBER_EPOCH).
            member.PreviousMemberEpoch = member.MemberEpoch;
            member.MemberEpoch = StreamsGroup.LeaveStaticEpoch;
            changes.CurrentAssignments.Add(member.MemberId);
        }
        else
        {
            RemoveStreamsMember(group, member, changes);
            group.GroupEpoch++;
            changes.GroupMetadata = true;
            RefreshStreamsTopology(group, force: true);
            ComputeStreamsTargetAssignment(group, changes);
        }
        UpdateStreamsMirror(holder, _clock());
        if (PersistStreams(holder, changes) is { } appendError) return StreamsHeartbeatResult.Failed(appendError, memberId: r.MemberId);
        return new StreamsHeartbeatResult(ErrorCode.None, null, r.MemberId, r.MemberEpoch, 0, [], null, group.EndpointInformationEpoch, null, []);
    }

    private static void RemoveStreamsMember(StreamsGroup group, StreamsMember m, StreamsChanges changes)
    {
        group.Remove(m, changes);
        changes.Members.Remove(m.MemberId);
        changes.CurrentAssignments.Remove(m.MemberId);
        changes.TargetMembers.Remove(m.MemberId);
        if (m.UserEndpoint is not null) group.EndpointInformationEpoch++;
        // The application shutdown request lasts while the group has members (upstream clears it
        // when the group becomes empty).
        if (group.Size == 0) group.ShutdownRequestedBy = null;
    }

    /// <summary>Interactive-query information: each member endpoint with the partitions of its
    /// active and standby tasks (task partition p of a sub-topology = partition p of each of its
    /// input topics that has it).</summary>
    private static List<StreamsEndpointPartitions> EndpointPartitions(StreamsGroup group)
    {
        var list = new List<StreamsEndpointPartitions>();
        if (group.Configured is not { } c) return list;
        List<(string, List<int>)> Map(TaskSet tasks)
        {
            var byTopic = new SortedDictionary<string, SortedSet<int>>(StringComparer.Ordinal);
            foreach (var (s, p) in tasks.All())
                foreach (var topic in c.InputTopics.GetValueOrDefault(s) ?? [])
                {
                    if (!byTopic.TryGetValue(topic, out var set)) byTopic[topic] = set = [];
                    set.Add(p);
                }
            return byTopic.Select(kv => (kv.Key, kv.Value.ToList())).ToList();
        }
        foreach (var m in group.Members.Values.OrderBy(m => m.MemberId, StringComparer.Ordinal))
            if (m.UserEndpoint is { } e)
                list.Add(new StreamsEndpointPartitions(e.Host, e.Port, Map(m.Assigned.Active), Map(m.Assigned.Standby)));
        return list;
    }

    /// <summary>Session and revocation timers of streams groups (called from the coordinator's tick).</summary>
    private void TickStreamsGroups(long now)
    {
        foreach (var holder in _groups.Values.ToList())
        {
            if (holder.Streams is not { } group) continue;
            var changes = new StreamsChanges();
            foreach (var m in group.Members.Values.ToList())
            {
                if (m.SessionDeadline <= now)
                {
                    _logger?.Invoke($"[GroupCoordinator] Member {m.MemberId} in streams group {group.GroupId} has failed (session timeout), removing it from the group");
                    RemoveStreamsMember(group, m, changes);
                }
                else if (m.RevocationTimedOut(now))
                {
                    _logger?.Invoke($"[GroupCoordinator] Member {m.MemberId} in streams group {group.GroupId} did not revoke its tasks within the rebalance timeout, removing it from the group");
                    RemoveStreamsMember(group, m, changes);
                }
            }
            if (changes.RemovedMembers.Count == 0) continue;
            group.GroupEpoch++;
            changes.GroupMetadata = true;
            RefreshStreamsTopology(group, force: true);
            ComputeStreamsTargetAssignment(group, changes);
            UpdateStreamsMirror(holder, now);
            PersistStreams(holder, changes);
        }
    }

    /// <summary>Writes the records of one streams group change as one batch (the topology record
    /// goes before the group epoch, as upstream writes it).</summary>
    private ErrorCode? PersistStreams(ClassicGroup holder, StreamsChanges changes)
    {
        var group = holder.Streams!;
        var topology = changes.Topology && group.Topology is not null ? StreamsGroupRecords.Topology(group) : (CoordinatorRecord?)null;
        return PersistModern<StreamsGroupRecords, StreamsGroup, StreamsMember, TaskAssignment>(group, changes, topology, "streams");
    }

    /// <summary>Installs the streams groups rebuilt from a partition's records (on load).</summary>
    private void InstallReplayedStreamsGroups(IEnumerable<GroupLogEntry.StreamsRecord> records, long now)
    {
        foreach (var (id, group) in StreamsGroupRecords.Replay(records, now + Config.StreamsGroupSessionTimeoutMs))
        {
            if (!_groups.TryGetValue(id, out var holder)) _groups[id] = holder = new ClassicGroup(id, now);
            holder.Streams = group;
            holder.ProtocolType = null;
            // Configure only; the persisted hash stays, so a topic change while no coordinator ran
            // shows (and bumps the epoch) on the next heartbeat.
            RefreshStreamsTopology(group, force: false, commit: false);
            UpdateStreamsMirror(holder, now);
        }
    }

    private static void UpdateStreamsMirror(ClassicGroup holder, long now) =>
        UpdateModernMirror(holder, holder.Streams!.Size, holder.Streams.TopicNames(), now);

    /// <summary>StreamsGroupDescribe for one group, built under the lock; GROUP_ID_NOT_FOUND when
    /// it is not a streams group.</summary>
    public StreamsGroupDescribeResponse.DescribedGroup DescribeStreamsGroup(string groupId)
    {
        lock (_gate)
        {
            var d = new StreamsGroupDescribeResponse.DescribedGroup { GroupId = groupId };
            if (ValidateGroupStatus(groupId, allowEmptyId: false) is { } status) { d.ErrorCode = (short)status; return d; }
            if (!_groups.TryGetValue(groupId, out var holder) || holder.Streams is not { } group)
            {
                d.ErrorCode = (short)ErrorCode.GroupIdNotFound;
                d.ErrorMessage = $"Group {groupId} not found.";
                return d;
            }
            RefreshStreamsTopology(group, force: false, commit: false);
            d.GroupState = group.State.ToString();
            d.GroupEpoch = group.GroupEpoch;
            d.AssignmentEpoch = group.AssignmentEpoch;
            if (group.Topology is { } t)
            {
                var partitionsOf = TopicSource().ToDictionary(x => x.Name, x => x.Partitions, StringComparer.Ordinal);
                d.Topology = new StreamsGroupDescribeResponse.Topology { Epoch = t.Epoch };
                // Upstream shows the configured sub-topologies (partition counts set), null while not ready.
                if (group.Configured is { IsReady: true } c)
                    d.Topology.Subtopologies = t.Subtopologies.Select(s => new StreamsGroupDescribeResponse.Subtopology
                    {
                        SubtopologyId = s.SubtopologyId,
                        SourceTopics = s.SourceTopics.ToList(),
                        RepartitionSinkTopics = s.RepartitionSinkTopics.ToList(),
                        StateChangelogTopics = s.StateChangelogTopics.Select(x => DescribeInfo(x, c.Tasks.GetValueOrDefault(s.SubtopologyId))).ToList(),
                        RepartitionSourceTopics = s.RepartitionSourceTopics.Select(x => DescribeInfo(x, partitionsOf.GetValueOrDefault(x.Name))).ToList(),
                    }).ToList();
            }
            foreach (var m in group.Members.Values.OrderBy(m => m.MemberId, StringComparer.Ordinal))
            {
                d.Members.Add(new StreamsGroupDescribeResponse.Member
                {
                    MemberId = m.MemberId, MemberEpoch = m.MemberEpoch, InstanceId = m.InstanceId, RackId = m.RackId,
                    ClientId = m.ClientId, ClientHost = m.ClientHost, TopologyEpoch = m.TopologyEpoch, ProcessId = m.ProcessId,
                    UserEndpoint = m.UserEndpoint is { } e ? new StreamsGroupDescribeResponse.Endpoint { Host = e.Host, Port = e.Port } : null,
                    ClientTags = m.ClientTags.Select(x => new StreamsGroupDescribeResponse.KeyValue { Key = x.Key, Value = x.Value }).ToList(),
                    TaskOffsets = m.TaskOffsets.Select(x => new StreamsGroupDescribeResponse.TaskOffset { SubtopologyId = x.Subtopology, Partition = x.Partition, Offset = x.Offset }).ToList(),
                    TaskEndOffsets = m.TaskEndOffsets.Select(x => new StreamsGroupDescribeResponse.TaskOffset { SubtopologyId = x.Subtopology, Partition = x.Partition, Offset = x.Offset }).ToList(),
                    Assignment = DescribeAssignment(m.Assigned),
                    TargetAssignment = DescribeAssignment(group.TargetOf(m.MemberId)),
                });
            }
            return d;
        }
    }

    private static StreamsGroupDescribeResponse.TopicInfo DescribeInfo(StreamsGroupTopologyValue.TopicInfo i, int partitions) => new()
    {
        Name = i.Name, Partitions = partitions, ReplicationFactor = i.ReplicationFactor,
        TopicConfigs = i.TopicConfigs.Select(c => new StreamsGroupDescribeResponse.KeyValue { Key = c.Key, Value = c.Value }).ToList(),
    };

    private static StreamsGroupDescribeResponse.Assignment DescribeAssignment(TaskAssignment a)
    {
        static List<StreamsGroupDescribeResponse.TaskIds> L(TaskSet s) =>
            s.Subtopologies.Select(x => new StreamsGroupDescribeResponse.TaskIds { SubtopologyId = x, Partitions = s.PartitionsOf(x).ToList() }).ToList();
        return new StreamsGroupDescribeResponse.Assignment { ActiveTasks = L(a.Active), StandbyTasks = L(a.Standby), WarmupTasks = L(a.Warmup) };
    }

    /// <summary>For tests and diagnostics: the streams group of an id (null when none).</summary>
    public StreamsGroup? GetStreamsGroup(string groupId)
    {
        lock (_gate) return _groups.GetValueOrDefault(groupId)?.Streams;
    }

    /// <summary>OffsetCommit/OffsetFetch by a streams group member: the generation id carries the
    /// member epoch (upstream's StreamsGroup.validateOffsetCommit/validateOffsetFetch).</summary>
    private static ErrorCode? ValidateStreamsMemberOffsets(StreamsGroup group, string? memberId, int memberEpoch, bool commit) =>
        group.ValidateMemberOffsets(memberId, memberEpoch, commit);
}

/// <summary>What changed in one streams group operation, for the records it writes: the shared
/// kinds and the topology.</summary>
internal sealed class StreamsChanges : ModernGroupChanges
{
    public bool Topology;
}
