using System.Text.RegularExpressions;
using Samsa.Kafka.Protocol;

namespace Samsa.Kafka.Broker.Groups;

/// <summary>One ConsumerGroupHeartbeat as the coordinator sees it; null fields are "unchanged".</summary>
public sealed record ConsumerHeartbeatParams(
    string GroupId, string MemberId, int MemberEpoch, string? InstanceId, string? RackId, int RebalanceTimeoutMs,
    IReadOnlyList<string>? SubscribedTopicNames, string? SubscribedTopicRegex, string? ServerAssignor,
    IReadOnlyList<(Guid TopicId, IReadOnlyList<int> Partitions)>? OwnedPartitions, string ClientId, string ClientHost,
    short ApiVersion = 1);

public sealed record ConsumerHeartbeatResult(ErrorCode Error, string? ErrorMessage, string? MemberId, int MemberEpoch,
    int HeartbeatIntervalMs, PartitionSet? Assignment)
{
    public static ConsumerHeartbeatResult Failed(ErrorCode e, string? message = null) => new(e, message, null, 0, 0, null);
}

/// <summary>A topic as the consumer group coordinator needs it.</summary>
public readonly record struct TopicInfo(string Name, Guid Id, int Partitions);

/// <summary>
/// KIP-848 consumer groups (upstream's GroupMetadataManager.consumerGroupHeartbeat and
/// CurrentAssignmentBuilder). The group shares the coordinator's lock, id namespace and committed
/// offsets with the classic groups: a consumer group is a <see cref="ClassicGroup"/> entry whose
/// <see cref="ClassicGroup.Consumer"/> is set.
/// </summary>
public sealed partial class GroupCoordinator
{
    /// <summary>The cluster's topics (name, id, partition count); the broker wires its metadata in.</summary>
    public Func<IReadOnlyList<TopicInfo>> TopicSource { get; set; } = () => [];

    private IConsumerAssignor[]? _assignors;

    private IConsumerAssignor[] Assignors => _assignors ??= Config.ConsumerGroupAssignors
        .Select(n => ConsumerAssignors.ByName(n) ?? throw new ArgumentException($"unknown group.consumer.assignors entry {n}"))
        .ToArray();

    /// <summary>ConsumerGroupHeartbeat: join (epoch 0), heartbeat, leave (-1) or static leave (-2).</summary>
    public ConsumerHeartbeatResult ConsumerGroupHeartbeat(ConsumerHeartbeatParams r)
    {
        lock (_gate)
        {
            if (ValidateGroupStatus(r.GroupId, allowEmptyId: false) is { } status) return ConsumerHeartbeatResult.Failed(status);
            if (ValidateHeartbeat(r) is { } invalid) return invalid;
            long now = _clock();
            if (r.MemberEpoch is ConsumerGroup.LeaveEpoch or ConsumerGroup.LeaveStaticEpoch) return ConsumerLeave(r, now);

            _groups.TryGetValue(r.GroupId, out var holder);
            if (holder?.Streams is not null) return ConsumerHeartbeatResult.Failed(ErrorCode.GroupIdNotFound, $"Group {r.GroupId} is not a consumer group.");
            bool upgrade = false;
            if (holder is not null && holder.Consumer is null)
            {
                // Upstream converts an empty classic group (offsets only) into a consumer group on the
                // first consumer heartbeat, and a classic group with members online when
                // group.consumer.migration.policy allows an upgrade (validateOnlineUpgrade).
                if (holder.Size > 0 || holder.PendingMembers.Count > 0 || !holder.Is(GroupState.Empty))
                {
                    if (r.MemberEpoch != 0 || !CanUpgrade(holder))
                        return ConsumerHeartbeatResult.Failed(ErrorCode.GroupIdNotFound, $"Group {r.GroupId} is not a consumer group.");
                    upgrade = true;
                }
            }
            // Only a join (epoch 0) creates a group or upgrades a classic one; a heartbeat naming a
            // group the coordinator does not know, or an empty classic group (offsets only), is
            // refused as upstream's getOrMaybeCreateConsumerGroup does with createIfNotExists false.
            if (holder is null && r.MemberEpoch != 0)
                return ConsumerHeartbeatResult.Failed(ErrorCode.GroupIdNotFound, $"Consumer group {r.GroupId} not found.");
            if (holder is not null && holder.Consumer is null && r.MemberEpoch != 0)
                return ConsumerHeartbeatResult.Failed(ErrorCode.GroupIdNotFound, $"Group {r.GroupId} is not a consumer group.");
            if (holder is null)
            {
                holder = new ClassicGroup(r.GroupId, now);
                _groups[r.GroupId] = holder;
            }
            var changes = new ModernGroupChanges();
            if (upgrade && ConvertToConsumerGroup(holder, changes, now) is null)
                return ConsumerHeartbeatResult.Failed(ErrorCode.GroupIdNotFound,
                    $"Cannot upgrade the classic group {r.GroupId} to consumer group because the embedded consumer protocol is malformed.");
            // An empty classic group that had a metadata record (it once had members) is replaced:
            // its record is tombstoned, its offsets stay (upstream's maybeDeleteEmptyClassicGroup).
            if (holder.Consumer is null && holder.ProtocolType is not null) changes.ClassicTombstone = true;
            var group = holder.Consumer ??= new ConsumerGroup(r.GroupId);
            holder.ProtocolType = ConsumerProtocol.ProtocolType;

            // The member: a new one joins with epoch 0; a static member replaces its earlier
            // incarnation (which must have left with epoch -2, else UNRELEASED_INSTANCE_ID).
            ConsumerMember? member;
            bool bump = false;
            string memberId = r.MemberId.Length == 0 ? Cluster.KafkaUuid.ToBase64(Cluster.KafkaUuid.NewTopicId()) : r.MemberId;
            if (r.MemberEpoch == 0)
            {
                if (r.InstanceId is not null && group.StaticMembers.TryGetValue(r.InstanceId, out var previousId)
                    && group.Get(previousId) is { } previous && previousId != memberId)
                {
                    if (!previous.IsStaticLeft)
                        return ConsumerHeartbeatResult.Failed(ErrorCode.UnreleasedInstanceId,
                            $"Static member {previousId} with instance id {r.InstanceId} is still in the group.");
                    // Upstream's static member replacement: the new member id takes over the old
                    // member's epoch and assignment, so a restart does not move partitions.
                    member = ReplaceStaticMember(group, previous, memberId, changes);
                }
                else if (group.Get(memberId) is { } existing)
                {
                    // A member that rejoins with epoch 0 under its id (KIP-1082: the client keeps its
                    // id) lost its partitions: it starts over as a new member.
                    group.Remove(existing, changes);
                    member = null;
                }
                else member = null;
                if (member is null)
                {
                    if (group.Size >= Config.ConsumerGroupMaxSize)
                        return ConsumerHeartbeatResult.Failed(ErrorCode.GroupMaxSizeReached, $"The consumer group has reached its maximum capacity of {Config.ConsumerGroupMaxSize} members.");
                    member = new ConsumerMember(memberId) { MemberEpoch = 0, InstanceId = r.InstanceId };
                    group.Add(member);
                    bump = true;
                }
            }
            else
            {
                member = group.Get(r.MemberId);
                if (member is null || member.UsesClassicProtocol)
                    return ConsumerHeartbeatResult.Failed(ErrorCode.UnknownMemberId, $"Member {r.MemberId} is not a member of group {r.GroupId}.");
                if (r.InstanceId is not null && group.StaticMembers.GetValueOrDefault(r.InstanceId) != member.MemberId)
                    return ConsumerHeartbeatResult.Failed(ErrorCode.FencedInstanceId, $"Instance id {r.InstanceId} belongs to another member.");
                var owned = r.OwnedPartitions is null ? null : ToSet(r.OwnedPartitions);
                if (member.IsFencedBy(r.MemberEpoch, owned))
                    return ConsumerHeartbeatResult.Failed(ErrorCode.FencedMemberEpoch,
                        $"The consumer group member has a smaller member epoch ({r.MemberEpoch}) than the one known by the group coordinator ({member.MemberEpoch}). The member must abandon all its partitions and rejoin.");
            }

            // Fields the request changes.
            var identity = MemberIdentity(member);
            member.ClientId = r.ClientId;
            member.ClientHost = r.ClientHost;
            if (r.RackId is not null) member.RackId = r.RackId;
            if (r.RebalanceTimeoutMs >= 0) member.RebalanceTimeoutMs = r.RebalanceTimeoutMs;
            if (r.ServerAssignor is not null && r.ServerAssignor != member.ServerAssignor) { member.ServerAssignor = r.ServerAssignor; bump = true; }
            if (r.SubscribedTopicNames is not null && !r.SubscribedTopicNames.Order(StringComparer.Ordinal).SequenceEqual(member.SubscribedTopicNames.Order(StringComparer.Ordinal)))
            {
                member.SubscribedTopicNames = r.SubscribedTopicNames.Distinct(StringComparer.Ordinal).ToList();
                bump = true;
            }
            if (r.SubscribedTopicRegex is not null)
            {
                // An empty regex clears it (upstream: "" means no regex).
                string? regex = r.SubscribedTopicRegex.Length == 0 ? null : r.SubscribedTopicRegex;
                if (regex != member.SubscribedTopicRegex) { member.SubscribedTopicRegex = regex; bump = true; }
            }
            member.SessionDeadline = now + Config.ConsumerGroupSessionTimeoutMs;
            if (bump || identity != MemberIdentity(member)) changes.Members.Add(member.MemberId);

            // Subscribed topics' metadata: a new topic (matching a name or a regex), a deleted one or
            // a partition count change bumps the group epoch, as upstream's metadata refresh.
            if (RefreshSubscriptionMetadata(group, force: bump)) bump = true;
            if (bump)
            {
                group.GroupEpoch++;
                changes.GroupMetadata = true;
            }
            if (group.GroupEpoch > group.AssignmentEpoch) ComputeTargetAssignment(group, changes);

            bool assignmentChanged = CurrentAssignmentBuilder.Reconcile(group, member, r.OwnedPartitions is null ? null : ToSet(r.OwnedPartitions), now);
            if (assignmentChanged) changes.CurrentAssignments.Add(member.MemberId);
            UpdateClassicMirror(holder, now);
            if (PersistConsumer(holder, changes) is { } appendError) return ConsumerHeartbeatResult.Failed(appendError);

            // Upstream sends the assignment when the member joined, when it changed, or when the
            // request was a full one (all fields set, as after a lost response).
            bool full = r.RebalanceTimeoutMs >= 0 && r.SubscribedTopicNames is not null && r.OwnedPartitions is not null;
            var assignment = r.MemberEpoch == 0 || assignmentChanged || full ? member.Assigned.Clone() : null;
            return new ConsumerHeartbeatResult(ErrorCode.None, null, member.MemberId, member.MemberEpoch,
                Config.ConsumerGroupHeartbeatIntervalMs, assignment);
        }
    }

    private ConsumerHeartbeatResult? ValidateHeartbeat(ConsumerHeartbeatParams r)
    {
        // Upstream's throwIfConsumerGroupHeartbeatRequestIsInvalid.
        if (r.ApiVersion >= 1 && r.MemberId.Length == 0)
            return ConsumerHeartbeatResult.Failed(ErrorCode.InvalidRequest, "MemberId can't be empty.");
        if (r.MemberEpoch != 0 && r.MemberId.Length == 0)
            return ConsumerHeartbeatResult.Failed(ErrorCode.InvalidRequest, "MemberId can't be empty.");
        if (r.InstanceId is not null && r.InstanceId.Length == 0)
            return ConsumerHeartbeatResult.Failed(ErrorCode.InvalidRequest, "InstanceId can't be empty.");
        if (r.RackId is not null && r.RackId.Length == 0)
            return ConsumerHeartbeatResult.Failed(ErrorCode.InvalidRequest, "RackId can't be empty.");
        if (r.MemberEpoch == 0)
        {
            if (r.RebalanceTimeoutMs == -1)
                return ConsumerHeartbeatResult.Failed(ErrorCode.InvalidRequest, "RebalanceTimeoutMs must be provided in first request.");
            if (r.OwnedPartitions is null || r.OwnedPartitions.Count != 0)
                return ConsumerHeartbeatResult.Failed(ErrorCode.InvalidRequest, "TopicPartitions must be empty when (re-)joining.");
            if (r.SubscribedTopicNames is null && r.SubscribedTopicRegex is null)
                return ConsumerHeartbeatResult.Failed(ErrorCode.InvalidRequest, "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.");
        }
        else if (r.MemberEpoch == ConsumerGroup.LeaveStaticEpoch && r.InstanceId is null)
            return ConsumerHeartbeatResult.Failed(ErrorCode.InvalidRequest, "InstanceId can't be null.");
        else if (r.MemberEpoch < ConsumerGroup.LeaveStaticEpoch)
            return ConsumerHeartbeatResult.Failed(ErrorCode.InvalidRequest, $"MemberEpoch is invalid.");
        if (r.ServerAssignor is not null && !Assignors.Any(a => a.Name == r.ServerAssignor))
            return ConsumerHeartbeatResult.Failed(ErrorCode.UnsupportedAssignor, $"ServerAssignor {r.ServerAssignor} is not supported. Supported assignors: {string.Join(", ", Assignors.Select(a => a.Name))}.");
        if (r.SubscribedTopicRegex is { Length: > 0 } regex && CompileRegex(regex) is null)
            return ConsumerHeartbeatResult.Failed(ErrorCode.InvalidRegularExpression, $"SubscribedTopicRegex `{regex}` is not a valid regular expression.");
        return null;
    }

    private readonly Dictionary<string, Regex?> _regexCache = new(StringComparer.Ordinal);

    /// <summary>Subscription regexes are RE2/J patterns matched against the whole topic name
    /// (upstream: Pattern.matcher(topic).matches()). .NET's engine accepts a superset of RE2's syntax
    /// (lookarounds, backreferences), so a few patterns upstream refuses are accepted here.</summary>
    private Regex? CompileRegex(string pattern)
    {
        if (_regexCache.TryGetValue(pattern, out var cached)) return cached;
        Regex? regex;
        try { regex = new Regex($"^(?:{pattern})$", RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(100)); }
        catch (ArgumentException) { regex = null; }
        if (_regexCache.Count > 1000) _regexCache.Clear();
        _regexCache[pattern] = regex;
        return regex;
    }

    private static bool Matches(Regex regex, string topic)
    {
        try { return regex.IsMatch(topic); }
        catch (RegexMatchTimeoutException) { return false; }
    }

    private static PartitionSet ToSet(IReadOnlyList<(Guid TopicId, IReadOnlyList<int> Partitions)> parts)
    {
        var set = new PartitionSet();
        foreach (var (t, ps) in parts) foreach (var p in ps) set.Add(t, p);
        return set;
    }

    private ConsumerHeartbeatResult ConsumerLeave(ConsumerHeartbeatParams r, long now)
    {
        // Upstream's consumerGroupLeave looks the group up with consumerGroup(groupId): an unknown
        // group, or one of another type, is GROUP_ID_NOT_FOUND.
        if (!_groups.TryGetValue(r.GroupId, out var holder))
            return ConsumerHeartbeatResult.Failed(ErrorCode.GroupIdNotFound, $"Group {r.GroupId} not found.");
        if (holder.Consumer is not { } group)
            return ConsumerHeartbeatResult.Failed(ErrorCode.GroupIdNotFound, $"Group {r.GroupId} is not a consumer group.");
        ConsumerMember? member;
        if (r.InstanceId is not null)
        {
            // A static member leaves by instance id; the member id must be the one registered for it.
            if (!group.StaticMembers.TryGetValue(r.InstanceId, out var current) || group.Get(current) is not { } m)
                return ConsumerHeartbeatResult.Failed(ErrorCode.UnknownMemberId, $"Instance id {r.InstanceId} is unknown.");
            if (current != r.MemberId)
                return ConsumerHeartbeatResult.Failed(ErrorCode.FencedInstanceId, $"Instance id {r.InstanceId} belongs to another member.");
            member = m;
        }
        else member = group.Get(r.MemberId);
        if (member is null)
            return ConsumerHeartbeatResult.Failed(ErrorCode.UnknownMemberId, $"Member {r.MemberId} is not a member of group {r.GroupId}.");
        if (member.UsesClassicProtocol)
            return ConsumerHeartbeatResult.Failed(ErrorCode.UnknownMemberId, $"Member {r.MemberId} uses the classic protocol.");
        var changes = new ModernGroupChanges();
        if (r.MemberEpoch == ConsumerGroup.LeaveEpoch && CanDowngradeWithout(group, member.MemberId))
        {
            // The last consumer-protocol member leaves a group of classic members: back to a classic group.
            if (ConvertToClassicGroup(holder, member.MemberId, now) is { } downgradeError) return ConsumerHeartbeatResult.Failed(downgradeError);
            return new ConsumerHeartbeatResult(ErrorCode.None, null, r.MemberId, r.MemberEpoch, 0, null);
        }
        if (r.MemberEpoch == ConsumerGroup.LeaveStaticEpoch)
        {
            // Static leave (upstream's consumerGroupStaticMemberGroupLeave): the member keeps its
            // assignment until it rejoins or its session times out; the group epoch is unchanged.
            member.MemberEpoch = ConsumerGroup.LeaveStaticEpoch;
            changes.CurrentAssignments.Add(member.MemberId);
        }
        else
        {
            group.Remove(member, changes);
            group.GroupEpoch++;
            changes.GroupMetadata = true;
            RefreshSubscriptionMetadata(group, force: true);
        }
        UpdateClassicMirror(holder, now);
        if (PersistConsumer(holder, changes) is { } appendError) return ConsumerHeartbeatResult.Failed(appendError);
        return new ConsumerHeartbeatResult(ErrorCode.None, null, r.MemberId, r.MemberEpoch, 0, null);
    }

    /// <summary>Upstream's static member replacement for a consumer group: the new member id takes
    /// over the old member's subscription and partitions at epoch 0; reconciliation then moves it to
    /// the assignment epoch keeping every partition still in its target (upstream resets the epoch
    /// the same way).</summary>
    private static ConsumerMember ReplaceStaticMember(ConsumerGroup group, ConsumerMember previous, string newId, ModernGroupChanges changes)
    {
        var member = new ConsumerMember(newId)
        {
            InstanceId = previous.InstanceId, RackId = previous.RackId, RebalanceTimeoutMs = previous.RebalanceTimeoutMs,
            SubscribedTopicNames = previous.SubscribedTopicNames, SubscribedTopicRegex = previous.SubscribedTopicRegex,
            ServerAssignor = previous.ServerAssignor,
            MemberEpoch = 0, PreviousMemberEpoch = -1, State = ConsumerMemberState.Stable,
            Assigned = previous.Assigned.Clone(), PendingRevocation = previous.PendingRevocation.Clone(),
        };
        group.ReplaceStatic(previous, member, changes);
        return member;
    }

    /// <summary>Recomputes the subscribed topics' metadata; true when it changed.</summary>
    private bool RefreshSubscriptionMetadata(ConsumerGroup group, bool force)
    {
        var topics = TopicSource();
        long fingerprint = 17;
        foreach (var t in topics) fingerprint = unchecked(fingerprint * 31 + HashCode.Combine(t.Name, t.Id, t.Partitions));
        if (!force && fingerprint == group.TopicsFingerprint) return false;
        group.TopicsFingerprint = fingerprint;
        var names = new HashSet<string>(StringComparer.Ordinal);
        var regexes = new List<Regex>();
        foreach (var m in group.Members.Values)
        {
            names.UnionWith(m.SubscribedTopicNames);
            if (m.SubscribedTopicRegex is { } p && CompileRegex(p) is { } rx) regexes.Add(rx);
        }
        var metadata = new Dictionary<string, (Guid, int)>(StringComparer.Ordinal);
        foreach (var t in topics)
            if (names.Contains(t.Name) || regexes.Any(rx => Matches(rx, t.Name))) metadata[t.Name] = (t.Id, t.Partitions);
        bool changed = metadata.Count != group.SubscriptionMetadata.Count
            || metadata.Any(kv => !group.SubscriptionMetadata.TryGetValue(kv.Key, out var old) || old != kv.Value);
        group.SubscriptionMetadata = metadata;
        return changed;
    }

    /// <summary>The topic ids a member subscribes to, from the group's subscription metadata.</summary>
    private HashSet<Guid> MemberTopics(ConsumerGroup group, ConsumerMember m)
    {
        var set = new HashSet<Guid>();
        var rx = m.SubscribedTopicRegex is { } p ? CompileRegex(p) : null;
        foreach (var (name, (id, _)) in group.SubscriptionMetadata)
            if (m.SubscribedTopicNames.Contains(name) || (rx is not null && Matches(rx, name))) set.Add(id);
        return set;
    }

    /// <summary>Upstream's TargetAssignmentBuilder: the group's assignor (the one most members ask
    /// for, else the first of group.consumer.assignors) maps the subscribed partitions to members.</summary>
    private void ComputeTargetAssignment(ConsumerGroup group, ModernGroupChanges changes)
    {
        var preferred = group.Members.Values.Where(m => m.ServerAssignor is not null)
            .GroupBy(m => m.ServerAssignor!).OrderByDescending(g => g.Count()).ThenBy(g => g.Key, StringComparer.Ordinal).FirstOrDefault()?.Key;
        var assignor = Assignors.FirstOrDefault(a => a.Name == preferred) ?? Assignors[0];
        group.AssignorName = assignor.Name;
        var members = group.Members.Values.Select(m => new AssignorMember(m.MemberId, m.InstanceId, m.RackId, MemberTopics(group, m))).ToList();
        var partitions = group.SubscriptionMetadata.Values.ToDictionary(v => v.Id, v => v.Partitions);
        group.InstallTarget(assignor.Assign(members, partitions, group.TargetAssignment), changes);
    }

    /// <summary>Session and revocation timers of consumer groups (called from <see cref="Tick"/>).</summary>
    private void TickConsumerGroups(long now)
    {
        foreach (var holder in _groups.Values.ToList())
        {
            if (holder.Consumer is not { } group) continue;
            var changes = new ModernGroupChanges();
            foreach (var m in group.Members.Values.ToList())
            {
                bool expired = m.SessionDeadline <= now;
                if (expired || ClassicTimersExpired(m, now, out _))
                {
                    string why = expired ? "session timeout" : ClassicTimersExpired(m, now, out var w) ? w : "";
                    _logger?.Invoke($"[GroupCoordinator] Member {m.MemberId} in group {group.GroupId} has failed ({why}), removing it from the group");
                    if (CanDowngradeWithout(group, m.MemberId))
                    {
                        // Upstream's fenced-member downgrade: earlier removals of this tick are
                        // tombstoned with the rest of the consumer group.
                        ConvertToClassicGroup(holder, m.MemberId, now, changes.RemovedMembers);
                        changes = new ModernGroupChanges();
                        break;
                    }
                    group.Remove(m, changes);
                }
                else if (m.RevocationTimedOut(now))
                {
                    // Upstream's rebalance timeout: a member that did not revoke in time is fenced.
                    _logger?.Invoke($"[GroupCoordinator] Member {m.MemberId} in group {group.GroupId} did not revoke its partitions within the rebalance timeout, removing it from the group");
                    group.Remove(m, changes);
                }
            }
            if (changes.RemovedMembers.Count == 0 || holder.Consumer is null) continue;
            group.GroupEpoch++;
            changes.GroupMetadata = true;
            RefreshSubscriptionMetadata(group, force: true);
            UpdateClassicMirror(holder, now);
            PersistConsumer(holder, changes);
        }
    }

    private static (string, string, string?, int, string, string?, string?) MemberIdentity(ConsumerMember m) =>
        (m.ClientId, m.ClientHost, m.RackId, m.RebalanceTimeoutMs, string.Join('\u0000', m.SubscribedTopicNames), m.SubscribedTopicRegex, m.ServerAssignor);

    /// <summary>
    /// Writes the records of one consumer group change to the group's <c>__consumer_offsets</c>
    /// partition as one batch, in upstream's order: subscriptions, group epoch, target assignment,
    /// current assignments; removed members' tombstones first. Null on success, else the error the
    /// client gets (COORDINATOR_NOT_AVAILABLE / NOT_COORDINATOR as for classic groups). The
    /// in-memory change is not rolled back on a failed append (upstream reverts to its snapshot);
    /// the next successful write carries the state again.
    /// </summary>
    private ErrorCode? PersistConsumer(ClassicGroup holder, ModernGroupChanges changes) =>
        PersistModern<ConsumerGroupRecords, ConsumerGroup, ConsumerMember, PartitionSet>(holder.Consumer!, changes, null, "consumer");

    /// <summary>A classic JoinGroup for an empty consumer group turns it back into a classic group
    /// (upstream's downgrade of an empty group): its consumer records are tombstoned, offsets stay.</summary>
    private void DowngradeEmptyConsumerGroup(ClassicGroup holder)
    {
        var group = holder.Consumer!;
        var error = _log.Append(PartitionFor(group.GroupId, _shards.Count), ConsumerGroupRecords.Tombstones(group).ToList());
        if (error != ErrorCode.None) _logger?.Invoke($"failed to write tombstones of consumer group {group.GroupId}: {error}");
        holder.Consumer = null;
        holder.ProtocolType = null;
        holder.SubscribedTopics = null;
    }

    /// <summary>Installs the consumer groups rebuilt from a partition's records (on load).</summary>
    private void InstallReplayedConsumerGroups(IEnumerable<GroupLogEntry.ConsumerRecord> records, long now)
    {
        foreach (var (id, group) in ConsumerGroupRecords.Replay(records, now + Config.ConsumerGroupSessionTimeoutMs))
        {
            if (!_groups.TryGetValue(id, out var holder)) _groups[id] = holder = new ClassicGroup(id, now);
            holder.Consumer = group;
            holder.ProtocolType = ConsumerProtocol.ProtocolType;
            // A reloaded classic member keeps its own session timeout (upstream reschedules it from
            // ClassicMemberMetadata).
            foreach (var m in group.AllMembers)
                if (m.Classic is { } c) m.SessionDeadline = now + c.SessionTimeoutMs;
            RefreshSubscriptionMetadata(group, force: true);
            UpdateClassicMirror(holder, now);
        }
    }

    /// <summary>Keeps the classic view of a consumer group's entry (state for retention and
    /// DeleteGroups, subscribed topics for retention and OffsetDelete) in step.</summary>
    private static void UpdateClassicMirror(ClassicGroup holder, long now) =>
        UpdateModernMirror(holder, holder.Consumer!.Size, holder.Consumer.SubscribedTopicNames(), now);

    /// <summary>ConsumerGroupDescribe for one group; GROUP_ID_NOT_FOUND when it is not a consumer group.</summary>
    public (ErrorCode Error, string? Message, ConsumerGroupView? View) DescribeConsumerGroup(string groupId)
    {
        lock (_gate)
        {
            if (ValidateGroupStatus(groupId, allowEmptyId: false) is { } status) return (status, null, null);
            if (!_groups.TryGetValue(groupId, out var holder) || holder.Consumer is not { } group)
                return (ErrorCode.GroupIdNotFound, $"Group {groupId} not found.", null);
            var names = TopicSource().ToDictionary(t => t.Id, t => t.Name);
            var members = group.Members.Values.Select(m => new ConsumerMemberView(
                m.MemberId, m.InstanceId, m.RackId, m.MemberEpoch, m.ClientId, m.ClientHost,
                m.SubscribedTopicNames.ToList(), m.SubscribedTopicRegex,
                Named(m.Assigned, names), Named(group.TargetOf(m.MemberId), names)) { IsClassic = m.UsesClassicProtocol }).ToList();
            return (ErrorCode.None, null, new ConsumerGroupView(groupId, group.State.ToString(), group.GroupEpoch, group.AssignmentEpoch,
                group.AssignorName ?? Assignors[0].Name, members));
        }
    }

    private static List<(Guid Id, string Name, List<int> Partitions)> Named(PartitionSet set, Dictionary<Guid, string> names) =>
        set.Topics.Select(t => (t, names.GetValueOrDefault(t) ?? "", set.PartitionsOf(t).ToList())).ToList();

    /// <summary>For tests and diagnostics: the consumer group of an id (null when none).</summary>
    public ConsumerGroup? GetConsumerGroup(string groupId)
    {
        lock (_gate) return _groups.GetValueOrDefault(groupId)?.Consumer;
    }

    /// <summary>OffsetCommit/OffsetFetch by a consumer group member: the generation id carries the
    /// member epoch (<see cref="ModernGroup{TMember, TAssignment}.ValidateMemberOffsets"/>).</summary>
    private static ErrorCode? ValidateConsumerMemberOffsets(ConsumerGroup group, string? memberId, int memberEpoch, bool commit) =>
        group.ValidateMemberOffsets(memberId, memberEpoch, commit);

    /// <summary>OffsetFetch v9 with a member id and epoch (KIP-848 consumers): validated against the
    /// member, then served as any offset fetch.</summary>
    public ErrorCode? ValidateOffsetFetchMember(string groupId, string? memberId, int memberEpoch)
    {
        lock (_gate)
        {
            if (_groups.TryGetValue(groupId, out var streamsHolder) && streamsHolder.Streams is { } streams)
                return ValidateStreamsMemberOffsets(streams, memberId, memberEpoch, commit: false);
            if (!_groups.TryGetValue(groupId, out var holder) || holder.Consumer is not { } group)
                return memberId is { Length: > 0 } && memberEpoch >= 0 ? ErrorCode.UnknownMemberId : null;
            return ValidateConsumerMemberOffsets(group, memberId, memberEpoch, commit: false);
        }
    }
}

public sealed record ConsumerMemberView(string MemberId, string? InstanceId, string? RackId, int MemberEpoch, string ClientId, string ClientHost,
    List<string> SubscribedTopicNames, string? SubscribedTopicRegex,
    List<(Guid Id, string Name, List<int> Partitions)> Assignment, List<(Guid Id, string Name, List<int> Partitions)> TargetAssignment)
{
    /// <summary>A classic-protocol member of a mixed group (ConsumerGroupDescribe v1 MemberType 0).</summary>
    public bool IsClassic { get; init; }
}

public sealed record ConsumerGroupView(string GroupId, string State, int GroupEpoch, int AssignmentEpoch, string AssignorName, List<ConsumerMemberView> Members);
