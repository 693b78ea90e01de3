using Samsa.Kafka.Protocol;

namespace Samsa.Kafka.Broker.Groups.Share;

/// <summary>A member of a share group as the coordinator knows it.</summary>
public sealed class ShareMember
{
    public required string MemberId { get; init; }
    public int MemberEpoch { get; set; }
    /// <summary>The epoch before the last bump (written in the current-assignment record, as upstream).</summary>
    public int PreviousMemberEpoch { get; set; }
    public string? RackId { get; set; }
    public string ClientId { get; set; } = "";
    public string ClientHost { get; set; } = "";
    public List<string> SubscribedTopicNames { get; set; } = [];
    /// <summary>Topic id → partitions; what the member was last told.</summary>
    public SortedDictionary<Guid, List<int>> Assignment { get; set; } = new();
    public long LastHeartbeatMs { get; set; }
}

public sealed class ShareGroup
{
    public required string GroupId { get; init; }
    public int GroupEpoch { get; set; }
    public int AssignmentEpoch { get; set; }
    public Dictionary<string, ShareMember> Members { get; } = new(StringComparer.Ordinal);
    /// <summary>member id → target assignment of the current assignment epoch.</summary>
    public Dictionary<string, SortedDictionary<Guid, List<int>>> Target { get; set; } = new(StringComparer.Ordinal);
    /// <summary>What the target was computed from (members, subscriptions, partition counts).</summary>
    public string TargetBasis { get; set; } = "";
    /// <summary>Every topic a member of the group ever subscribed to (upstream keeps the group's
    /// initialized share-partitions in ShareGroupStatePartitionMetadata); DescribeShareGroupOffsets
    /// with null topics covers them.</summary>
    public SortedSet<string> KnownTopics { get; } = new(StringComparer.Ordinal);
    /// <summary>When each of <see cref="KnownTopics"/> was first seen (ms since the epoch; the
    /// CreateTimestamp of the state-partition record).</summary>
    public Dictionary<string, long> TopicAddedMs { get; } = new(StringComparer.Ordinal);
    /// <summary>Empty (no members) or Stable, as upstream ShareGroup.ShareGroupState.</summary>
    public string State => Members.Count == 0 ? "Empty" : "Stable";
}

public readonly record struct ShareHeartbeatResult(ErrorCode Error, string? Message, string? MemberId, int MemberEpoch,
    int HeartbeatIntervalMs, SortedDictionary<Guid, List<int>>? Assignment);

/// <summary>
/// Share-group membership (KIP-932 ShareGroupHeartbeat), following upstream's GroupMetadataManager
/// for share groups:
/// - a member joins with epoch 0 and its own member id (v1: the client makes the id), gets the
///   group's current epoch and its assignment; -1 leaves; any other epoch must equal the member's
///   (FENCED_MEMBER_EPOCH) and the member must exist (UNKNOWN_MEMBER_ID);
/// - the target assignment is recomputed when members, subscriptions or partition counts change,
///   bumping the group epoch; share groups have no revocation phase, so a member moves to its
///   new target at its next heartbeat and is sent the whole assignment then (null otherwise);
/// - assignor "simple" (upstream SimpleAssignor, homogeneous form applied per topic): with at
///   least as many partitions as subscribers each partition goes to one member round-robin,
///   otherwise each member gets one partition round-robin, so every partition has at least one
///   member and several members may share one partition;
/// - a member that misses group.share.session.timeout.ms is removed.
/// Every change is written to the group's __consumer_offsets partition as upstream's share group
/// records (<see cref="ShareGroupRecords"/>: the difference between the group's records before and
/// after) before it is answered; a change whose write fails is undone and the request answers the
/// mapped error (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE), as upstream applies records only once
/// written. The coordinator that loads the partition (restart, failover) replays them
/// (<see cref="Install"/>): members keep their ids, epochs and assignments, and their session
/// timeout starts again.
/// </summary>
public sealed class ShareGroupCoordinator
{
    private readonly Dictionary<string, ShareGroup> _groups = new(StringComparer.Ordinal);
    private readonly object _gate = new();
    private readonly ShareGroupSettings _settings;
    private readonly Func<string, (Guid Id, int Partitions)?> _topicLookup;

    /// <summary>Raised (outside the lock) when a member leaves or is expired.</summary>
    public event Action<string, string>? MemberRemoved;

    /// <param name="topicLookup">Topic name → id and partition count, or null when the topic does not exist.</param>
    public ShareGroupCoordinator(ShareGroupSettings settings, Func<string, (Guid Id, int Partitions)?> topicLookup)
    {
        _settings = settings;
        _topicLookup = topicLookup;
    }

    /// <summary>Appends a group's records to its __consumer_offsets partition (one batch) and answers
    /// the error a group request gives (NONE when written). Null: membership is kept in memory only
    /// (unit tests of the assignment logic).</summary>
    public Func<string, IReadOnlyList<CoordinatorRecord>, ErrorCode>? Persist { get; set; }

    /// <summary>Wall clock for the state-partition record's CreateTimestamp.</summary>
    public Func<long> WallClock { get; set; } = () => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    /// <summary>Replaces the groups of a loaded __consumer_offsets partition with those its share
    /// group records describe. Members' session timers start at <paramref name="nowMs"/>
    /// (upstream's onLoaded schedules a new session timeout for every member of a share group).</summary>
    public void Install(Func<string, bool> inPartition, IEnumerable<GroupLogEntry.ShareRecord> records, long nowMs)
    {
        var loaded = ShareGroupRecords.Replay(records, nowMs);
        lock (_gate)
        {
            foreach (var id in _groups.Keys.Where(inPartition).ToList()) _groups.Remove(id);
            foreach (var (id, g) in loaded) _groups[id] = g;
        }
    }

    /// <summary>This broker no longer coordinates a partition: its share groups are dropped from
    /// memory (the new coordinator loads them from the log). Members keep what they hold on the
    /// partition leaders.</summary>
    public void Unload(Func<string, bool> inPartition)
    {
        lock (_gate)
            foreach (var id in _groups.Keys.Where(inPartition).ToList()) _groups.Remove(id);
    }

    // One change to one group: its records before the change and a copy to restore when the
    // write fails.
    private (List<CoordinatorRecord> Before, ShareGroup? Backup) Begin(string groupId)
    {
        if (Persist is null || !_groups.TryGetValue(groupId, out var g)) return ([], null);
        return (ShareGroupRecords.Image(g, _topicLookup), Copy(g));
    }

    // Writes what changed since Begin; on failure the group is put back as it was. Under _gate.
    private ErrorCode Commit(string groupId, (List<CoordinatorRecord> Before, ShareGroup? Backup) begun)
    {
        if (Persist is null) return ErrorCode.None;
        var after = _groups.TryGetValue(groupId, out var g) ? ShareGroupRecords.Image(g, _topicLookup) : [];
        var changes = ShareGroupRecords.Diff(begun.Before, after);
        if (changes.Count == 0) return ErrorCode.None;
        var error = Persist(groupId, changes);
        if (error == ErrorCode.None) return error;
        if (begun.Backup is null) _groups.Remove(groupId);
        else _groups[groupId] = begun.Backup;
        return error;
    }

    public ShareHeartbeatResult Heartbeat(string groupId, string memberId, int memberEpoch, string? rackId,
        IReadOnlyList<string>? subscribedTopicNames, string clientId, string clientHost, long nowMs)
    {
        if (string.IsNullOrEmpty(groupId)) return Fail(ErrorCode.InvalidRequest, "GroupId can't be empty.");
        if (string.IsNullOrEmpty(memberId)) return Fail(ErrorCode.InvalidRequest, "MemberId can't be empty.");
        if (memberEpoch < -1) return Fail(ErrorCode.InvalidRequest, "MemberEpoch is invalid.");
        if (memberEpoch == 0 && (subscribedTopicNames is null || subscribedTopicNames.Count == 0))
            return Fail(ErrorCode.InvalidRequest, "SubscribedTopicNames must be set in first request.");
        string? removed = null;
        ShareHeartbeatResult result;
        lock (_gate)
        {
            _groups.TryGetValue(groupId, out var group);
            var begun = Begin(groupId);
            if (memberEpoch == -1)
            {
                if (group is not null && group.Members.Remove(memberId))
                {
                    Recompute(group);
                    if (Commit(groupId, begun) is var e && e != ErrorCode.None) return Fail(e, null);
                    removed = memberId;
                }
                // Upstream answers a leave with the member id and epoch -1 even for an unknown member.
                result = new ShareHeartbeatResult(ErrorCode.None, null, memberId, -1, 0, null);
            }
            else
            {
                ShareMember? member = null;
                group?.Members.TryGetValue(memberId, out member);
                if (memberEpoch == 0)
                {
                    if (member is null)
                    {
                        if (group is not null && group.Members.Count >= _settings.MaxGroupSize)
                            return Fail(ErrorCode.GroupMaxSizeReached, $"The share group has reached its maximum size of {_settings.MaxGroupSize}.");
                        group ??= _groups[groupId] = new ShareGroup { GroupId = groupId };
                        member = new ShareMember { MemberId = memberId };
                        group.Members[memberId] = member;
                    }
                    // A rejoin (epoch 0 with a known id) starts the member over: it is sent its assignment again.
                    member.MemberEpoch = 0;
                    member.Assignment = new();
                }
                else if (member is null)
                    return Fail(ErrorCode.UnknownMemberId, $"Member {memberId} is not a member of group {groupId}.");
                else if (memberEpoch != member.MemberEpoch)
                    return Fail(ErrorCode.FencedMemberEpoch, $"The share group member has a member epoch ({memberEpoch}) different from the one known by the coordinator ({member.MemberEpoch}).");
                member.LastHeartbeatMs = nowMs;
                member.ClientId = clientId;
                member.ClientHost = clientHost;
                if (rackId is not null) member.RackId = rackId;
                if (subscribedTopicNames is not null)
                {
                    member.SubscribedTopicNames = subscribedTopicNames.Distinct().OrderBy(t => t, StringComparer.Ordinal).ToList();
                    foreach (var t in member.SubscribedTopicNames) AddKnownTopic(group!, t);
                }
                Recompute(group!);
                SortedDictionary<Guid, List<int>>? send = null;
                var target = group!.Target.GetValueOrDefault(memberId) ?? new();
                if (member.MemberEpoch != group.AssignmentEpoch || !SameAssignment(member.Assignment, target) || memberEpoch == 0)
                {
                    if (member.MemberEpoch != group.AssignmentEpoch) member.PreviousMemberEpoch = member.MemberEpoch;
                    member.MemberEpoch = group.AssignmentEpoch;
                    member.Assignment = target;
                    send = target;
                }
                if (Commit(groupId, begun) is var error && error != ErrorCode.None) return Fail(error, null);
                result = new ShareHeartbeatResult(ErrorCode.None, null, memberId, member.MemberEpoch, _settings.HeartbeatIntervalMs, send);
            }
        }
        if (removed is not null) MemberRemoved?.Invoke(groupId, removed);
        return result;

        static ShareHeartbeatResult Fail(ErrorCode e, string? message) => new(e, message, null, 0, 0, null);
    }

    /// <summary>Removes members whose session timed out (group.share.session.timeout.ms).</summary>
    public void Tick(long nowMs)
    {
        var removed = new List<(string, string)>();
        lock (_gate)
        {
            foreach (var group in _groups.Values.ToList())
            {
                var expired = group.Members.Values.Where(m => nowMs - m.LastHeartbeatMs > _settings.SessionTimeoutMs).Select(m => m.MemberId).ToList();
                if (expired.Count == 0) continue;
                var begun = Begin(group.GroupId);
                foreach (var id in expired) group.Members.Remove(id);
                Recompute(group);
                // Not written (coordinator moving, log full): the members stay and expire at a later tick.
                if (Commit(group.GroupId, begun) != ErrorCode.None) continue;
                foreach (var id in expired) removed.Add((group.GroupId, id));
            }
        }
        foreach (var (g, m) in removed) MemberRemoved?.Invoke(g, m);
    }

    public IEnumerable<(string GroupId, string State)> ListGroups()
    {
        lock (_gate) return _groups.Values.Select(g => (g.GroupId, g.State)).ToList();
    }

    public bool Contains(string groupId)
    {
        lock (_gate) return _groups.ContainsKey(groupId);
    }

    /// <summary>A copy of the group for ShareGroupDescribe, or null when unknown.</summary>
    public ShareGroup? Describe(string groupId)
    {
        lock (_gate)
        {
            return _groups.TryGetValue(groupId, out var g) ? Copy(g) : null;
        }
    }

    private static ShareGroup Copy(ShareGroup g)
    {
        var copy = new ShareGroup
        {
            GroupId = g.GroupId, GroupEpoch = g.GroupEpoch, AssignmentEpoch = g.AssignmentEpoch, TargetBasis = g.TargetBasis,
            Target = g.Target.ToDictionary(kv => kv.Key, kv => Clone(kv.Value), StringComparer.Ordinal),
        };
        foreach (var m in g.Members.Values)
            copy.Members[m.MemberId] = new ShareMember
            {
                MemberId = m.MemberId, MemberEpoch = m.MemberEpoch, PreviousMemberEpoch = m.PreviousMemberEpoch, RackId = m.RackId,
                ClientId = m.ClientId, ClientHost = m.ClientHost, SubscribedTopicNames = [.. m.SubscribedTopicNames],
                Assignment = Clone(m.Assignment), LastHeartbeatMs = m.LastHeartbeatMs,
            };
        copy.KnownTopics.UnionWith(g.KnownTopics);
        foreach (var (t, ms) in g.TopicAddedMs) copy.TopicAddedMs[t] = ms;
        return copy;

        static SortedDictionary<Guid, List<int>> Clone(SortedDictionary<Guid, List<int>> a) =>
            new(a.ToDictionary(kv => kv.Key, kv => kv.Value.ToList()));
    }

    private void AddKnownTopic(ShareGroup g, string topic)
    {
        if (g.KnownTopics.Add(topic)) g.TopicAddedMs[topic] = WallClock();
    }

    /// <summary>Why DeleteGroups cannot delete the group now (GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP), or
    /// null when it can.</summary>
    public ErrorCode? PrepareDeleteCheck(string groupId)
    {
        lock (_gate)
        {
            if (!_groups.TryGetValue(groupId, out var g)) return ErrorCode.GroupIdNotFound;
            return g.Members.Count > 0 ? ErrorCode.NonEmptyGroup : null;
        }
    }

    /// <summary>Deletes an empty group (DeleteGroups); false when it has members or is unknown.</summary>
    public bool TryDelete(string groupId, out ErrorCode error)
    {
        lock (_gate)
        {
            if (!_groups.TryGetValue(groupId, out var g)) { error = ErrorCode.GroupIdNotFound; return false; }
            if (g.Members.Count > 0) { error = ErrorCode.NonEmptyGroup; return false; }
            var begun = Begin(groupId);
            _groups.Remove(groupId);
            // Every key the group had is tombstoned (nothing of it survives compaction).
            error = Commit(groupId, begun);
            return error == ErrorCode.None;
        }
    }

    /// <summary>Member count of a share group for Alter/DeleteShareGroupOffsets, which need an empty
    /// group; -1 when the group is unknown. With <paramref name="create"/> an unknown group is created
    /// empty, as upstream's AlterShareGroupOffsets does, and <paramref name="topics"/> join the
    /// topics it knows (so DescribeShareGroupOffsets with null topics lists them).</summary>
    public int PrepareOffsetChange(string groupId, bool create, IEnumerable<string> topics)
    {
        lock (_gate)
        {
            if (!_groups.TryGetValue(groupId, out var g) && !create) return -1;
            var begun = Begin(groupId);
            if (g is null) _groups[groupId] = g = new ShareGroup { GroupId = groupId };
            if (g.Members.Count == 0 && create) foreach (var t in topics) AddKnownTopic(g, t);
            // A failed write leaves the group as it was; the forwarded offset change still runs (its
            // state lives at the share coordinator), only the group's topic list may be behind.
            Commit(groupId, begun);
            return g.Members.Count;
        }
    }

    /// <summary>DeleteShareGroupOffsets: the group no longer lists <paramref name="topic"/> among its topics.</summary>
    public void ForgetTopic(string groupId, string topic)
    {
        lock (_gate)
        {
            if (!_groups.TryGetValue(groupId, out var g) || g.Members.Count > 0) return;
            var begun = Begin(groupId);
            g.KnownTopics.Remove(topic);
            g.TopicAddedMs.Remove(topic);
            Commit(groupId, begun);
        }
    }

    /// <summary>The topics the group's members subscribe or ever subscribed to.</summary>
    public IReadOnlyList<string> SubscribedTopics(string groupId)
    {
        lock (_gate)
            return _groups.TryGetValue(groupId, out var g) ? g.KnownTopics.ToList() : [];
    }

    private void Recompute(ShareGroup group)
    {
        // The basis: members with their subscriptions and the partition counts of those topics.
        var topics = group.Members.Values.SelectMany(m => m.SubscribedTopicNames).Distinct().OrderBy(t => t, StringComparer.Ordinal).ToList();
        var meta = topics.Select(t => (Name: t, Meta: _topicLookup(t))).Where(x => x.Meta is not null).ToList();
        string basis = string.Join(";", group.Members.Values.OrderBy(m => m.MemberId, StringComparer.Ordinal)
                           .Select(m => m.MemberId + "=" + string.Join(",", m.SubscribedTopicNames)))
                       + "|" + string.Join(";", meta.Select(x => $"{x.Name}:{x.Meta!.Value.Id}:{x.Meta.Value.Partitions}"));
        if (basis == group.TargetBasis && group.GroupEpoch > 0) return;
        group.TargetBasis = basis;
        var target = new Dictionary<string, SortedDictionary<Guid, List<int>>>(StringComparer.Ordinal);
        foreach (var m in group.Members.Keys) target[m] = new();
        foreach (var (name, m) in meta)
        {
            var (id, count) = m!.Value;
            var subscribers = group.Members.Values.Where(x => x.SubscribedTopicNames.Contains(name))
                .Select(x => x.MemberId).OrderBy(x => x, StringComparer.Ordinal).ToList();
            if (subscribers.Count == 0 || count == 0) continue;
            void Give(string member, int p)
            {
                if (!target[member].TryGetValue(id, out var list)) target[member][id] = list = [];
                list.Add(p);
            }
            if (count >= subscribers.Count)
                for (int p = 0; p < count; p++) Give(subscribers[p % subscribers.Count], p);
            else
                for (int i = 0; i < subscribers.Count; i++) Give(subscribers[i], i % count);
        }
        bool changed = target.Count != group.Target.Count
            || target.Any(kv => !group.Target.TryGetValue(kv.Key, out var old) || !SameAssignment(old, kv.Value));
        group.Target = target;
        if (changed || group.GroupEpoch == 0)
        {
            group.GroupEpoch++;
            group.AssignmentEpoch = group.GroupEpoch;
        }
    }

    private static bool SameAssignment(SortedDictionary<Guid, List<int>> a, SortedDictionary<Guid, List<int>> b) =>
        a.Count == b.Count && a.All(kv => b.TryGetValue(kv.Key, out var other) && kv.Value.SequenceEqual(other));
}
