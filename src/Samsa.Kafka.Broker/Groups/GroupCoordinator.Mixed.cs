using Samsa.Kafka.Protocol;

namespace Samsa.Kafka.Broker.Groups;

/// <summary>
/// Mixed groups (KIP-848 migration): members speaking the classic protocol inside a consumer group,
/// and the online conversions between the two group types, following upstream's
/// GroupMetadataManager (classicGroupJoinToConsumerGroup, classicGroupSyncToConsumerGroup,
/// classicGroupHeartbeatToConsumerGroup, classicGroupLeaveToConsumerGroup, convertToConsumerGroup,
/// convertToClassicGroup) under <c>group.consumer.migration.policy</c>.
///
/// A classic member of a consumer group is a <see cref="ConsumerMember"/> with
/// <see cref="ConsumerMember.Classic"/> set. The server-side assignor decides for it as for any
/// member; its JoinGroup is answered at once with its member epoch as the generation, and its
/// SyncGroup returns its current assignment. A new target assignment reaches it as
/// REBALANCE_IN_PROGRESS on Heartbeat, after which it rejoins with the partitions it still owns.
/// </summary>
public sealed partial class GroupCoordinator
{
    // ---------------------------------------------------------------- classic member in a consumer group

    private void JoinGroupToConsumerGroup(ClassicGroup holder, JoinGroupParams r, TaskCompletionSource<JoinGroupResult> tcs, long now)
    {
        var group = holder.Consumer!;
        bool unknownMember = r.MemberId.Length == 0;
        string memberId = unknownMember ? Cluster.KafkaUuid.ToBase64(Cluster.KafkaUuid.NewTopicId()) : r.MemberId;
        var existing = group.Get(memberId);
        if (existing is null && group.Size >= Config.ConsumerGroupMaxSize)
        {
            tcs.TrySetResult(new JoinGroupResult(ErrorCode.GroupMaxSizeReached, memberId));
            return;
        }
        if (!group.SupportsClassicProtocols(r.ProtocolType, r.Protocols))
        {
            tcs.TrySetResult(new JoinGroupResult(ErrorCode.InconsistentGroupProtocol, r.MemberId));
            return;
        }
        if (unknownMember && r.RequireKnownMemberId)
        {
            // KIP-394 as for classic groups: the id first, the member rejoins with it. Upstream keeps
            // no pending state for it in a consumer group.
            tcs.TrySetResult(new JoinGroupResult(ErrorCode.MemberIdRequired, memberId));
            return;
        }
        // All protocols carry the same subscription; upstream reads any one of them.
        var subscription = ConsumerProtocolCodec.ReadSubscription(r.Protocols[0].Metadata);
        if (subscription is null)
        {
            tcs.TrySetResult(new JoinGroupResult(ErrorCode.InconsistentGroupProtocol, r.MemberId));
            return;
        }

        var changes = new ModernGroupChanges();
        ConsumerMember member;
        bool bump = false;
        string? replacedId = null;
        bool downgrade = false;
        if (r.GroupInstanceId is { } instanceId && group.StaticMembers.TryGetValue(instanceId, out var previousId) && group.Get(previousId) is { } previous)
        {
            // Upstream decides on the group as it was before this join whether the static member
            // this join replaces was its last consumer-protocol member (step 4 of classicGroupJoinToConsumerGroup).
            replacedId = previousId;
            downgrade = CanDowngradeReplacing(group, previousId);
            if (previousId != memberId)
            {
                // A static member rejoining under a new id replaces its earlier incarnation (keeping
                // its partitions); a known id that is not the registered one is fenced.
                if (!unknownMember) { tcs.TrySetResult(new JoinGroupResult(ErrorCode.FencedInstanceId, r.MemberId)); return; }
                member = ReplaceStaticMember(group, previous, memberId, changes);
            }
            else member = previous;
        }
        else if (existing is not null)
        {
            if (!existing.UsesClassicProtocol)
            {
                tcs.TrySetResult(new JoinGroupResult(ErrorCode.UnknownMemberId, r.MemberId));
                return;
            }
            member = existing;
        }
        else
        {
            member = new ConsumerMember(memberId) { MemberEpoch = 0, InstanceId = r.GroupInstanceId };
            group.Add(member);
            bump = true;
            changes.Members.Add(memberId);
        }

        var identity = MemberIdentity(member);
        var classicBefore = member.Classic;
        member.ClientId = r.ClientId;
        member.ClientHost = r.ClientHost;
        if (subscription.RackId is { Length: > 0 } rack) member.RackId = rack;
        if (r.RebalanceTimeoutMs > 0) member.RebalanceTimeoutMs = r.RebalanceTimeoutMs;
        if (member.ServerAssignor is not null) { member.ServerAssignor = null; bump = true; }
        if (member.SubscribedTopicRegex is not null) { member.SubscribedTopicRegex = null; bump = true; }
        var topics = subscription.Topics.Distinct(StringComparer.Ordinal).ToList();
        if (!topics.Order(StringComparer.Ordinal).SequenceEqual(member.SubscribedTopicNames.Order(StringComparer.Ordinal)))
        {
            member.SubscribedTopicNames = topics;
            bump = true;
        }
        member.Classic = new ClassicMemberInfo(r.SessionTimeoutMs, r.Protocols);
        if (bump || identity != MemberIdentity(member) || !SameClassic(classicBefore, member.Classic)) changes.Members.Add(member.MemberId);

        if (RefreshSubscriptionMetadata(group, force: bump)) bump = true;
        if (bump)
        {
            group.GroupEpoch++;
            changes.GroupMetadata = true;
        }
        if (group.GroupEpoch > group.AssignmentEpoch) ComputeTargetAssignment(group, changes);

        // The partitions the classic member says it still owns (ConsumerProtocolSubscription v1+;
        // an eager client gave everything up before rejoining, so it owns none).
        var ids = TopicSource().ToDictionary(t => t.Name, t => t.Id, StringComparer.Ordinal);
        var owned = new PartitionSet(subscription.Owned.Where(o => ids.ContainsKey(o.Topic)).Select(o => (ids[o.Topic], o.Partition)));
        if (CurrentAssignmentBuilder.Reconcile(group, member, owned, now)) changes.CurrentAssignments.Add(member.MemberId);
        if (downgrade)
        {
            // The group becomes a classic group with this member in the replaced one's place (and
            // its partitions), stable at once: no rebalance, the member syncs to get its assignment.
            if (ConvertToClassicGroup(holder, replacedId!, now, [replacedId!], rebalance: false) is { } downgradeError)
            {
                tcs.TrySetResult(new JoinGroupResult(downgradeError, member.MemberId));
                return;
            }
            tcs.TrySetResult(new JoinGroupResult(ErrorCode.None, member.MemberId, member.MemberEpoch, ConsumerProtocol.ProtocolType,
                member.Classic.ProtocolName, "", false, []));
            return;
        }
        UpdateClassicMirror(holder, now);
        if (PersistConsumer(holder, changes) is { } appendError)
        {
            tcs.TrySetResult(new JoinGroupResult(appendError, member.MemberId));
            return;
        }
        // Upstream cancels the join timeout, then arms the session timeout and the sync timeout.
        member.JoinDeadline = -1;
        member.SessionDeadline = now + r.SessionTimeoutMs;
        member.SyncDeadline = now + member.RebalanceTimeoutMs;
        tcs.TrySetResult(new JoinGroupResult(ErrorCode.None, member.MemberId, member.MemberEpoch, ConsumerProtocol.ProtocolType,
            member.Classic.ProtocolName, "", false, []));
    }

    private static bool SameClassic(ClassicMemberInfo? a, ClassicMemberInfo b) =>
        a is not null && a.SessionTimeoutMs == b.SessionTimeoutMs && a.Protocols.Count == b.Protocols.Count
        && a.Protocols.Zip(b.Protocols).All(x => x.First.Name == x.Second.Name && x.First.Metadata.AsSpan().SequenceEqual(x.Second.Metadata));

    /// <summary>Upstream's validateConsumerGroupMember + throwIfMemberDoesNotUseClassicProtocol.</summary>
    private static (ConsumerMember? Member, ErrorCode Error) ClassicMemberOf(ConsumerGroup group, string memberId, string? instanceId)
    {
        ConsumerMember? member;
        if (instanceId is null) member = group.Get(memberId);
        else
        {
            member = group.StaticMembers.TryGetValue(instanceId, out var id) ? group.Get(id) : null;
            if (member is null) return (null, ErrorCode.UnknownMemberId);
            if (member.MemberId != memberId) return (null, ErrorCode.FencedInstanceId);
        }
        if (member is null || !member.UsesClassicProtocol) return (null, ErrorCode.UnknownMemberId);
        return (member, ErrorCode.None);
    }

    private SyncGroupResult SyncGroupToConsumerGroup(ConsumerGroup group, int generationId, string memberId, string? instanceId,
        string? protocolType, string? protocolName, long now)
    {
        var (member, error) = ClassicMemberOf(group, memberId, instanceId);
        if (member is null) return SyncGroupResult.Failed(error);
        if (generationId != member.MemberEpoch) return SyncGroupResult.Failed(ErrorCode.IllegalGeneration);
        var name = member.Classic!.ProtocolName;
        if ((protocolType is not null && protocolType != ConsumerProtocol.ProtocolType) || (protocolName is not null && protocolName != name))
            return SyncGroupResult.Failed(ErrorCode.InconsistentGroupProtocol);
        // Upstream's throwIfRebalanceInProgress: a newer group epoch means rejoin first, unless the
        // member is still revoking (it rejoins by itself once it has).
        if (group.GroupEpoch > member.MemberEpoch && member.State != ConsumerMemberState.UnrevokedPartitions)
        {
            if (member.JoinDeadline < 0) member.JoinDeadline = now + member.RebalanceTimeoutMs;
            return SyncGroupResult.Failed(ErrorCode.RebalanceInProgress);
        }
        member.SyncDeadline = -1;
        member.SessionDeadline = now + member.Classic.SessionTimeoutMs;
        return new SyncGroupResult(ErrorCode.None, AssignmentBytes(member), ConsumerProtocol.ProtocolType, name);
    }

    /// <summary>The member's current partitions as a ConsumerProtocolAssignment (upstream's prepareAssignment).</summary>
    private byte[] AssignmentBytes(ConsumerMember member)
    {
        var names = TopicSource().ToDictionary(t => t.Id, t => t.Name);
        var parts = member.Assigned.Topics.Where(names.ContainsKey)
            .Select(t => (names[t], (IReadOnlyCollection<int>)member.Assigned.PartitionsOf(t)));
        return ConsumerProtocolCodec.WriteAssignment(parts, ConsumerProtocolCodec.VersionOf(member.Classic!.Protocols));
    }

    private static ErrorCode HeartbeatToConsumerGroup(ConsumerGroup group, string memberId, string? instanceId, int generationId, long now)
    {
        var (member, error) = ClassicMemberOf(group, memberId, instanceId);
        if (member is null) return error;
        if (generationId != member.MemberEpoch) return ErrorCode.IllegalGeneration;
        member.SessionDeadline = now + member.Classic!.SessionTimeoutMs;
        // Upstream: rejoin when the group epoch moved on, when partitions must be revoked, or when the
        // partitions the member waits for have been released.
        if (member.MemberEpoch < group.GroupEpoch || member.State == ConsumerMemberState.UnrevokedPartitions
            || (member.State == ConsumerMemberState.UnreleasedPartitions && !group.WaitingOnUnreleasedPartition(member)))
        {
            if (member.JoinDeadline < 0) member.JoinDeadline = now + member.RebalanceTimeoutMs;
            return ErrorCode.RebalanceInProgress;
        }
        return ErrorCode.None;
    }

    private List<(MemberLeave Member, ErrorCode Error)> LeaveGroupToConsumerGroup(ClassicGroup holder, IReadOnlyList<MemberLeave> members, long now)
    {
        var group = holder.Consumer!;
        var results = new List<(MemberLeave, ErrorCode)>();
        var changes = new ModernGroupChanges();
        foreach (var leaving in members)
        {
            ConsumerMember? member;
            if (leaving.GroupInstanceId is null) member = group.Get(leaving.MemberId);
            else
            {
                member = group.StaticMembers.TryGetValue(leaving.GroupInstanceId, out var id) ? group.Get(id) : null;
                if (member is null) { results.Add((leaving, ErrorCode.UnknownMemberId)); continue; }
                // Administrative removal by instance id leaves the member id empty.
                if (leaving.MemberId.Length > 0 && leaving.MemberId != member.MemberId) { results.Add((leaving, ErrorCode.FencedInstanceId)); continue; }
            }
            if (member is null || !member.UsesClassicProtocol) { results.Add((leaving, ErrorCode.UnknownMemberId)); continue; }
            _logger?.Invoke($"[GroupCoordinator] Classic member {member.MemberId} has left consumer group {group.GroupId} through LeaveGroup");
            group.Remove(member, changes);
            results.Add((leaving, ErrorCode.None));
        }
        if (changes.RemovedMembers.Count > 0)
        {
            group.GroupEpoch++;
            changes.GroupMetadata = true;
            RefreshSubscriptionMetadata(group, force: true);
            UpdateClassicMirror(holder, now);
            if (PersistConsumer(holder, changes) is { } appendError)
                return results.Select(x => (x.Item1, x.Item2 == ErrorCode.None ? appendError : x.Item2)).ToList();
        }
        return results;
    }

    /// <summary>Timers of a classic member in a consumer group: not rejoined after REBALANCE_IN_PROGRESS
    /// (join timeout) or not synced after joining (sync timeout), both the rebalance timeout.</summary>
    private static bool ClassicTimersExpired(ConsumerMember m, long now, out string why)
    {
        why = "";
        if (!m.UsesClassicProtocol) return false;
        if (m.JoinDeadline >= 0 && m.JoinDeadline <= now) { why = "did not rejoin within the rebalance timeout"; return true; }
        if (m.SyncDeadline >= 0 && m.SyncDeadline <= now) { why = "did not send SyncGroup within the rebalance timeout"; return true; }
        return false;
    }

    // ---------------------------------------------------------------- online upgrade

    /// <summary>Upstream's validateOnlineUpgrade: the policy allows it, the classic group uses the
    /// consumer embedded protocol, and its members fit group.consumer.max.size.</summary>
    private bool CanUpgrade(ClassicGroup holder)
    {
        if (!Config.OnlineUpgradeEnabled)
        {
            _logger?.Invoke($"Cannot upgrade classic group {holder.GroupId} to consumer group because the online upgrade is disabled.");
            return false;
        }
        if (!holder.IsConsumerGroup)
        {
            _logger?.Invoke($"Cannot upgrade classic group {holder.GroupId} to consumer group because the group does not use the consumer embedded protocol.");
            return false;
        }
        if (holder.Size > Config.ConsumerGroupMaxSize)
        {
            _logger?.Invoke($"Cannot upgrade classic group {holder.GroupId} to consumer group because the group size exceeds the consumer group maximum size.");
            return false;
        }
        return true;
    }

    /// <summary>
    /// Upstream's convertToConsumerGroup: every classic member becomes a classic member of a consumer
    /// group at the classic generation (member epoch = group epoch = assignment epoch = generation),
    /// Stable, owning what its last SyncGroup gave it, which is also its target. Parked JoinGroup and
    /// SyncGroup requests are answered REBALANCE_IN_PROGRESS so those members rejoin. Null (and
    /// nothing changed) when a member's embedded protocol does not parse.
    /// </summary>
    private ConsumerGroup? ConvertToConsumerGroup(ClassicGroup holder, ModernGroupChanges changes, long now)
    {
        var ids = TopicSource().ToDictionary(t => t.Name, t => t.Id, StringComparer.Ordinal);
        var group = new ConsumerGroup(holder.GroupId) { GroupEpoch = holder.GenerationId, AssignmentEpoch = holder.GenerationId };
        foreach (var cm in holder.AllMembers)
        {
            var metadata = cm.MetadataFor(holder.ProtocolName ?? "") ?? (cm.Protocols.Count > 0 ? cm.Protocols[0].Metadata : []);
            var subscription = ConsumerProtocolCodec.ReadSubscription(metadata);
            var assigned = ConsumerProtocolCodec.ReadAssignment(cm.Assignment);
            if (subscription is null || assigned is null)
            {
                _logger?.Invoke($"Cannot upgrade the classic group {holder.GroupId} to consumer group because the embedded consumer protocol is malformed.");
                return null;
            }
            var set = new PartitionSet(assigned.Where(a => ids.ContainsKey(a.Topic)).Select(a => (ids[a.Topic], a.Partition)));
            var member = new ConsumerMember(cm.MemberId)
            {
                InstanceId = cm.GroupInstanceId, RackId = subscription.RackId is { Length: > 0 } r ? r : null,
                ClientId = cm.ClientId, ClientHost = cm.ClientHost, RebalanceTimeoutMs = cm.RebalanceTimeoutMs,
                SubscribedTopicNames = subscription.Topics.Distinct(StringComparer.Ordinal).ToList(),
                MemberEpoch = holder.GenerationId, PreviousMemberEpoch = holder.GenerationId, State = ConsumerMemberState.Stable,
                Assigned = set, Classic = new ClassicMemberInfo(cm.SessionTimeoutMs, cm.Protocols),
                SessionDeadline = now + cm.SessionTimeoutMs,
            };
            group.Members[member.MemberId] = member;
            if (member.InstanceId is not null) group.StaticMembers[member.InstanceId] = member.MemberId;
            group.TargetAssignment[member.MemberId] = set.Clone();
        }
        foreach (var cm in holder.AllMembers.ToList())
        {
            cm.AwaitingJoin?.TrySetResult(new JoinGroupResult(ErrorCode.RebalanceInProgress, cm.MemberId));
            cm.AwaitingJoin = null;
            cm.AwaitingSync?.TrySetResult(SyncGroupResult.Failed(ErrorCode.RebalanceInProgress));
            cm.AwaitingSync = null;
            holder.Remove(cm.MemberId);
        }
        foreach (var pending in holder.PendingMembers.Keys.ToList()) holder.Remove(pending);
        holder.PendingSyncMembers.Clear();
        holder.JoinDeadline = -1;
        holder.SyncDeadline = -1;
        holder.InitialJoinDelay = false;
        holder.LeaderId = null;
        holder.ProtocolName = null;
        holder.Consumer = group;
        holder.ProtocolType = ConsumerProtocol.ProtocolType;
        RefreshSubscriptionMetadata(group, force: true);
        // Records: the classic group's tombstone, then the whole consumer group (upstream's
        // createGroupTombstoneRecords + createConsumerGroupRecords).
        changes.ClassicTombstone = true;
        changes.GroupMetadata = true;
        changes.TargetMetadata = true;
        foreach (var id in group.Members.Keys)
        {
            changes.Members.Add(id);
            changes.TargetMembers.Add(id);
            changes.CurrentAssignments.Add(id);
        }
        _logger?.Invoke($"[GroupCoordinator] Upgraded classic group {holder.GroupId} (generation {holder.GenerationId}, {group.Size} members) to a consumer group");
        return group;
    }

    // ---------------------------------------------------------------- online downgrade

    /// <summary>Upstream's validateOnlineDowngradeWithFencedMember: the member leaving is the last
    /// consumer-protocol member, others remain, the policy allows it, and they fit group.max.size.</summary>
    private bool CanDowngradeWithout(ConsumerGroup group, string leavingMemberId) => CanDowngrade(group, leavingMemberId, replaced: false);

    /// <summary>Upstream's validateOnlineDowngradeWithReplacedMemberId: the static member a classic
    /// join replaces is the last consumer-protocol member, the policy allows a downgrade, and the
    /// members (the joining one in the replaced one's place) fit group.max.size.</summary>
    private bool CanDowngradeReplacing(ConsumerGroup group, string replacedMemberId) => CanDowngrade(group, replacedMemberId, replaced: true);

    private bool CanDowngrade(ConsumerGroup group, string memberId, bool replaced)
    {
        if (!group.AllMembersUseClassicProtocolExcept(memberId)) return false;
        if (!replaced && group.Size <= 1) return false;
        if (!Config.OnlineDowngradeEnabled)
        {
            _logger?.Invoke($"Cannot downgrade consumer group {group.GroupId} to classic group because the online downgrade is disabled.");
            return false;
        }
        if (group.Size - (replaced ? 0 : 1) > Config.GroupMaxSize)
        {
            _logger?.Invoke($"Cannot downgrade consumer group {group.GroupId} to classic group because its group size is greater than classic group max size.");
            return false;
        }
        return true;
    }

    /// <summary>
    /// Upstream's convertToClassicGroup for a leaving (or fenced) member: the consumer group's records
    /// are tombstoned, the remaining classic members form a classic group at generation = group epoch
    /// with their target assignments, its GroupMetadata record is written, and a rebalance starts so
    /// every member rejoins through the classic protocol. For a static member replaced by a classic
    /// join (<paramref name="rebalance"/> false) the joining member is already in the group in the
    /// replaced one's place and the group stays stable. Returns the append error, if any.
    /// </summary>
    private ErrorCode? ConvertToClassicGroup(ClassicGroup holder, string leavingMemberId, long now, IEnumerable<string>? removedBefore = null,
        bool rebalance = true)
    {
        var group = holder.Consumer!;
        var names = TopicSource().ToDictionary(t => t.Id, t => t.Name);
        var records = new List<CoordinatorRecord>();
        foreach (var id in removedBefore ?? []) records.AddRange(ConsumerGroupRecords.MemberTombstones(group.GroupId, id));
        records.AddRange(ConsumerGroupRecords.Tombstones(group));
        holder.Consumer = null;
        holder.GenerationId = group.GroupEpoch;
        holder.ProtocolType = ConsumerProtocol.ProtocolType;
        var assignments = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var m in group.AllMembers)
        {
            if (m.MemberId == leavingMemberId || m.Classic is not { } classic) continue;
            var gm = new GroupMember(m.MemberId, m.InstanceId, m.ClientId, m.ClientHost, m.RebalanceTimeoutMs, classic.SessionTimeoutMs,
                ConsumerProtocol.ProtocolType, classic.Protocols) { HeartbeatDeadline = now + classic.SessionTimeoutMs };
            holder.Add(gm);
        }
        holder.ProtocolName = holder.SelectProtocol();
        foreach (var gm in holder.AllMembers)
        {
            var target = group.TargetOf(gm.MemberId);
            var version = ConsumerProtocolCodec.VersionOf(gm.MetadataFor(holder.ProtocolName) is { } md ? [new MemberProtocol(holder.ProtocolName, md)] : gm.Protocols);
            gm.Assignment = ConsumerProtocolCodec.WriteAssignment(
                target.Topics.Where(names.ContainsKey).Select(t => (names[t], (IReadOnlyCollection<int>)target.PartitionsOf(t))), version);
            assignments[gm.MemberId] = gm.Assignment;
        }
        holder.SubscribedTopics = holder.ComputeSubscribedTopics();
        holder.TransitionTo(GroupState.Stable, now);
        records.Add(GroupRecords.GroupMetadata(holder, assignments));
        var error = MapGroupAppendError(_log.Append(PartitionFor(holder.GroupId, _shards.Count), records));
        _logger?.Invoke($"[GroupCoordinator] Downgraded consumer group {holder.GroupId} to a classic group (generation {holder.GenerationId}, {holder.Size} members)");
        if (rebalance) PrepareRebalance(holder, now);
        return error == ErrorCode.None ? null : error;
    }
}
