using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Groups;

/// <summary>The group.* and offsets.* broker keys the coordinator uses (upstream's GroupCoordinatorConfig).</summary>
public sealed record GroupCoordinatorConfig
{
    public int OffsetsTopicPartitions { get; init; } = 50;
    public short OffsetsTopicReplicationFactor { get; init; } = 3;
    public int OffsetsTopicSegmentBytes { get; init; } = 104857600;
    public int GroupMinSessionTimeoutMs { get; init; } = 6000;
    public int GroupMaxSessionTimeoutMs { get; init; } = 1800000;
    public int GroupInitialRebalanceDelayMs { get; init; } = 3000;
    public int GroupMaxSize { get; init; } = int.MaxValue;
    public int OffsetMetadataMaxBytes { get; init; } = 4096;
    public long OffsetsRetentionMs { get; init; } = 10080L * 60_000;
    public long OffsetsRetentionCheckIntervalMs { get; init; } = 600_000;
    // KIP-848 consumer groups (upstream's group.consumer.* keys).
    public int ConsumerGroupSessionTimeoutMs { get; init; } = 45_000;
    public int ConsumerGroupHeartbeatIntervalMs { get; init; } = 5_000;
    public int ConsumerGroupMaxSize { get; init; } = int.MaxValue;
    public IReadOnlyList<string> ConsumerGroupAssignors { get; init; } = ["uniform", "range"];
    /// <summary>group.consumer.migration.policy: bidirectional (upstream default), upgrade, downgrade or disabled.</summary>
    public string ConsumerGroupMigrationPolicy { get; init; } = "bidirectional";
    public bool OnlineUpgradeEnabled => ConsumerGroupMigrationPolicy is "bidirectional" or "upgrade";
    public bool OnlineDowngradeEnabled => ConsumerGroupMigrationPolicy is "bidirectional" or "downgrade";
    // KIP-1071 streams groups (upstream's group.streams.* keys, Groups/Streams).
    public int StreamsGroupSessionTimeoutMs { get; init; } = 45_000;
    public int StreamsGroupHeartbeatIntervalMs { get; init; } = 5_000;
    public int StreamsGroupMaxSize { get; init; } = int.MaxValue;
    public int StreamsGroupNumStandbyReplicas { get; init; }

    public static GroupCoordinatorConfig From(BrokerConfig c)
    {
        CheckBounds(c, "consumer", standbys: false);
        CheckBounds(c, "streams", standbys: true);
        return FromChecked(c);
    }

    /// <summary>Upstream's GroupCoordinatorConfig constructor requirements for the group.consumer.*
    /// and group.streams.* session and heartbeat keys (the same seven checks for both kinds, in
    /// upstream's order, plus the standby bound for streams); a violation stops the broker with
    /// upstream's wording.</summary>
    private static void CheckBounds(BrokerConfig c, string kind, bool standbys)
    {
        string K(string name) => $"group.{kind}.{name}";
        int I(string name) => (int)c.Get(K(name))!;
        void Require(bool ok, string message) { if (!ok) throw new ConfigValueException(message); }
        string AtLeast(string a, string b) => $"{K(a)} must be greater than or equal to {K(b)}";
        string AtMost(string a, string b) => $"{K(a)} must be less than or equal to {K(b)}";
        int session = I("session.timeout.ms"), minSession = I("min.session.timeout.ms"), maxSession = I("max.session.timeout.ms");
        int hb = I("heartbeat.interval.ms"), minHb = I("min.heartbeat.interval.ms"), maxHb = I("max.heartbeat.interval.ms");
        Require(maxHb >= minHb, AtLeast("max.heartbeat.interval.ms", "min.heartbeat.interval.ms"));
        Require(hb >= minHb, AtLeast("heartbeat.interval.ms", "min.heartbeat.interval.ms"));
        Require(hb <= maxHb, AtMost("heartbeat.interval.ms", "max.heartbeat.interval.ms"));
        Require(maxSession >= minSession, AtLeast("max.session.timeout.ms", "min.session.timeout.ms"));
        Require(session >= minSession, AtLeast("session.timeout.ms", "min.session.timeout.ms"));
        Require(session <= maxSession, AtMost("session.timeout.ms", "max.session.timeout.ms"));
        if (standbys) Require(I("num.standby.replicas") <= I("max.standby.replicas"), AtMost("num.standby.replicas", "max.standby.replicas"));
        Require(hb < session, $"{K("heartbeat.interval.ms")} must be less than {K("session.timeout.ms")}");
    }

    private static GroupCoordinatorConfig FromChecked(BrokerConfig c) => new()
    {
        OffsetsTopicPartitions = (int)c.Get("offsets.topic.num.partitions")!,
        OffsetsTopicReplicationFactor = Convert.ToInt16(c.Get("offsets.topic.replication.factor")!, System.Globalization.CultureInfo.InvariantCulture),
        OffsetsTopicSegmentBytes = (int)c.Get("offsets.topic.segment.bytes")!,
        GroupMinSessionTimeoutMs = (int)c.Get("group.min.session.timeout.ms")!,
        GroupMaxSessionTimeoutMs = (int)c.Get("group.max.session.timeout.ms")!,
        GroupInitialRebalanceDelayMs = (int)c.Get("group.initial.rebalance.delay.ms")!,
        GroupMaxSize = (int)c.Get("group.max.size")!,
        OffsetMetadataMaxBytes = (int)c.Get("offset.metadata.max.bytes")!,
        OffsetsRetentionMs = (int)c.Get("offsets.retention.minutes")! * 60_000L,
        OffsetsRetentionCheckIntervalMs = (long)c.Get("offsets.retention.check.interval.ms")!,
        ConsumerGroupSessionTimeoutMs = (int)c.Get("group.consumer.session.timeout.ms")!,
        ConsumerGroupHeartbeatIntervalMs = (int)c.Get("group.consumer.heartbeat.interval.ms")!,
        ConsumerGroupMaxSize = (int)c.Get("group.consumer.max.size")!,
        ConsumerGroupAssignors = ((List<string>)c.Get("group.consumer.assignors")!).Where(x => x.Length > 0).ToList(),
        ConsumerGroupMigrationPolicy = ((string)c.Get("group.consumer.migration.policy")!).ToLowerInvariant(),
        StreamsGroupSessionTimeoutMs = (int)c.Get("group.streams.session.timeout.ms")!,
        StreamsGroupHeartbeatIntervalMs = (int)c.Get("group.streams.heartbeat.interval.ms")!,
        StreamsGroupMaxSize = (int)c.Get("group.streams.max.size")!,
        StreamsGroupNumStandbyReplicas = (int)c.Get("group.streams.num.standby.replicas")!,
    };
}

/// <summary>Where the coordinator writes its records: a partition of <c>__consumer_offsets</c>.</summary>
public interface IGroupMetadataLog
{
    /// <summary>Appends the records durably (as one batch) and returns the broker error of the
    /// append (None on success).</summary>
    ErrorCode Append(int partition, IReadOnlyList<CoordinatorRecord> records);
    /// <summary>Appends offset commits as a transactional batch of the producer (TxnOffsetCommit).</summary>
    ErrorCode AppendTransactional(int partition, IReadOnlyList<CoordinatorRecord> records, long producerId, short producerEpoch);
}

public sealed record JoinGroupParams(
    string GroupId, string MemberId, string? GroupInstanceId, bool RequireKnownMemberId, bool SupportSkippingAssignment,
    string ClientId, string ClientHost, int RebalanceTimeoutMs, int SessionTimeoutMs, string ProtocolType,
    IReadOnlyList<MemberProtocol> Protocols);

public sealed record OffsetCommitEntry(TopicPartition Partition, long Offset, int LeaderEpoch, string? Metadata, long ExpireTimestamp = -1, long CommitTimestamp = -1);

public sealed record MemberLeave(string MemberId, string? GroupInstanceId);

public sealed record GroupSummary(string GroupId, string State, string ProtocolType, string ProtocolData, IReadOnlyList<MemberSummary> Members)
{
    /// <summary>Set when there is no classic group of this id: DescribeGroups v6 (KIP-1043) answers
    /// GROUP_ID_NOT_FOUND with this message, older versions a Dead group.</summary>
    public string? NotFound { get; init; }
}

public sealed record MemberSummary(string MemberId, string? GroupInstanceId, string ClientId, string ClientHost, byte[] Metadata, byte[] Assignment);

public sealed record ListedGroup(string GroupId, string ProtocolType, string State, string Type = "classic");

/// <summary>
/// The classic group coordinator (upstream's GroupCoordinator.scala and the group-coordinator
/// module's GroupMetadataManager for classic groups): JoinGroup/SyncGroup/Heartbeat/LeaveGroup,
/// offset commits and fetches, and the admin operations. A state machine with no sockets: every
/// operation runs under one lock (one writer), timers are deadlines checked by <see cref="Tick"/>
/// against an injected clock, and every change of durable state is appended to
/// <c>__consumer_offsets</c> through <see cref="IGroupMetadataLog"/> before it is acknowledged.
/// Parked JoinGroup/SyncGroup requests are tasks completed when the rebalance moves on.
/// </summary>
public sealed partial class GroupCoordinator : Coordination.ICoordinatorShards<GroupLogEntry>
{
    /// <summary>Upstream's NewMemberJoinTimeoutMs: a member that joined but never got a generation is
    /// dropped after five minutes (its JoinGroup is parked, so it cannot heartbeat).</summary>
    public const int NewMemberJoinTimeoutMs = 5 * 60 * 1000;

    private readonly object _gate = new();
    private readonly Dictionary<string, ClassicGroup> _groups = new(StringComparer.Ordinal);
    private readonly IGroupMetadataLog _log;
    private readonly Func<long> _clock;
    private readonly Action<string>? _logger;
    private readonly Coordination.CoordinatorShardTable _shards;
    private long _nextRetentionCheck;

    public GroupCoordinator(GroupCoordinatorConfig config, IGroupMetadataLog log, Func<long> clock, Action<string>? logger = null)
    {
        Config = config;
        _log = log;
        _clock = clock;
        _logger = logger;
        _shards = new Coordination.CoordinatorShardTable(config.OffsetsTopicPartitions);
        _nextRetentionCheck = clock() + config.OffsetsRetentionCheckIntervalMs;
    }

    public GroupCoordinatorConfig Config { get; }

    public int PartitionCount { get { lock (_gate) return _shards.Count; } }

    /// <summary>The <c>__consumer_offsets</c> partition of a group: Utils.abs(groupId.hashCode()) %
    /// partitions, with Java's String.hashCode and Utils.abs (Integer.MIN_VALUE maps to 0).</summary>
    public int PartitionFor(string groupId)
    {
        lock (_gate) return PartitionFor(groupId, _shards.Count);
    }

    public static int PartitionFor(string groupId, int partitions)
    {
        int h = JavaHashCode(groupId);
        int abs = h == int.MinValue ? 0 : Math.Abs(h);
        return abs % partitions;
    }

    public static int JavaHashCode(string s)
    {
        int h = 0;
        foreach (char c in s) h = unchecked(31 * h + c);
        return h;
    }

    // ---------------------------------------------------------------- partition ownership / load

    /// <summary>The offsets topic exists with <paramref name="partitions"/> partitions, all led here.
    /// With <paramref name="loading"/> each answers COORDINATOR_LOAD_IN_PROGRESS until
    /// <see cref="LoadPartition"/> replayed it; otherwise (a brand-new topic) they serve at once.</summary>
    public void Activate(int partitions, bool loading)
    {
        lock (_gate)
        {
            _shards.Reset(partitions, loading ? Coordination.ShardStatus.Loading : Coordination.ShardStatus.Owned);
        }
    }

    public bool IsActive { get { lock (_gate) return _shards.AnyOwned; } }

    /// <summary>Whether the groups of offsets partition <paramref name="partition"/> are loaded and
    /// served here (not loading, not led elsewhere): a transaction marker may complete their
    /// transactional offsets only then (upstream's completeTransaction fails with NOT_COORDINATOR /
    /// COORDINATOR_LOAD_IN_PROGRESS otherwise).</summary>
    public bool IsLoaded(int partition)
    {
        lock (_gate) return partition >= 0 && partition < _shards.Count && _shards[partition] == Coordination.ShardStatus.Owned;
    }

    /// <summary>The offsets topic has <paramref name="partitions"/> partitions; statuses of partitions
    /// that existed are kept, new ones start not owned.</summary>
    public void SetPartitionCount(int partitions)
    {
        lock (_gate) _shards.Resize(partitions);
    }

    /// <summary>This broker became the leader of an offsets partition (upstream onElection /
    /// scheduleLoadGroupAndOffsets): its groups answer COORDINATOR_LOAD_IN_PROGRESS until
    /// <see cref="LoadPartition(int, IEnumerable{GroupLogEntry}, int)"/> with the returned generation
    /// replayed it. Null when the partition is already owned or loading.</summary>
    public int? BeginLoading(int partition, int coordinatorEpoch)
    {
        lock (_gate) return _shards.BeginLoading(partition, coordinatorEpoch);
    }

    /// <summary>This broker stopped leading an offsets partition (upstream onResignation /
    /// removeGroupsForPartition): its groups are dropped from memory and every member waiting in a
    /// JoinGroup or SyncGroup is answered NOT_COORDINATOR, so clients look up the new coordinator.</summary>
    public void Unload(int partition)
    {
        lock (_gate)
        {
            if (!_shards.Unload(partition)) return;
            int removed = 0;
            foreach (var group in _groups.Values.Where(g => PartitionFor(g.GroupId, _shards.Count) == partition).ToList())
            {
                foreach (var m in group.AllMembers)
                {
                    m.AwaitingJoin?.TrySetResult(new JoinGroupResult(ErrorCode.NotCoordinator, m.MemberId));
                    m.AwaitingJoin = null;
                    m.AwaitingSync?.TrySetResult(SyncGroupResult.Failed(ErrorCode.NotCoordinator));
                    m.AwaitingSync = null;
                }
                group.TransitionTo(GroupState.Dead, _clock());
                _groups.Remove(group.GroupId);
                removed++;
            }
            foreach (var key in _pendingTxnOffsets.Keys.Where(k => PartitionFor(k.GroupId, _shards.Count) == partition).ToList())
                _pendingTxnOffsets.Remove(key);
            OnShareGroupsUnloaded(partition);
            _logger?.Invoke($"unloaded {removed} groups of {Cluster.TopicName.GroupMetadataTopic}-{partition}: no longer its leader");
        }
    }

    /// <summary>As <see cref="LoadPartition(int, IEnumerable{GroupLogEntry})"/> for a load begun by
    /// <see cref="BeginLoading"/>: ignored when leadership moved on meanwhile (another generation).</summary>
    public void LoadPartition(int partition, IEnumerable<GroupLogEntry> entries, int generation)
    {
        lock (_gate)
            if (!_shards.IsCurrentLoad(partition, generation)) return;
        LoadPartition(partition, entries, () => _shards.IsCurrentLoad(partition, generation));
    }

    /// <summary>Rebuilds the groups of one partition by replaying its records in offset order (the last
    /// record of a key wins, a tombstone deletes), then starts serving them (upstream's
    /// GroupMetadataManager.doLoadGroupsAndOffsets + onGroupLoaded).</summary>
    public void LoadPartition(int partition, IEnumerable<GroupLogEntry> entries) => LoadPartition(partition, entries, () => true);

    private void LoadPartition(int partition, IEnumerable<GroupLogEntry> entries, Func<bool> stillWanted)
    {
        var offsets = new Dictionary<string, Dictionary<TopicPartition, CommittedOffset>>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, GroupMetadataValue?>(StringComparer.Ordinal);
        // Transactional offsets wait for their producer's marker (upstream's loader keeps
        // pendingOffsets per producer id and applies them on COMMIT).
        var pending = new Dictionary<long, List<GroupLogEntry.Offset>>();
        var consumerRecords = new List<GroupLogEntry.ConsumerRecord>();
        var shareRecords = new List<GroupLogEntry.ShareRecord>();
        var streamsRecords = new List<GroupLogEntry.StreamsRecord>();
        void Apply(GroupLogEntry.Offset o)
        {
            if (!offsets.TryGetValue(o.GroupId, out var map)) offsets[o.GroupId] = map = new();
            if (o.Value is null) map.Remove(o.Partition); else map[o.Partition] = o.Value;
        }
        foreach (var e in entries)
        {
            switch (e)
            {
                case GroupLogEntry.Offset o:
                    Apply(o);
                    break;
                case GroupLogEntry.Group g:
                    metadata[g.GroupId] = g.Value;
                    break;
                case GroupLogEntry.TxnOffset t:
                    if (!pending.TryGetValue(t.ProducerId, out var list)) pending[t.ProducerId] = list = [];
                    list.Add(t.Commit);
                    break;
                case GroupLogEntry.TxnMarker m:
                    if (pending.Remove(m.ProducerId, out var done) && m.Commit) foreach (var o in done) Apply(o);
                    break;
                case GroupLogEntry.ConsumerRecord c:
                    consumerRecords.Add(c);
                    break;
                case GroupLogEntry.ShareRecord share:
                    shareRecords.Add(share);
                    break;
                case GroupLogEntry.StreamsRecord streams:
                    streamsRecords.Add(streams);
                    break;
            }
        }
        lock (_gate)
        {
            if (!stillWanted()) return;
            long now = _clock();
            foreach (var id in offsets.Keys.Concat(metadata.Keys).Distinct(StringComparer.Ordinal))
            {
                var value = metadata.GetValueOrDefault(id);
                var groupOffsets = offsets.GetValueOrDefault(id);
                if (value is null && (groupOffsets is null || groupOffsets.Count == 0)) continue;
                var group = new ClassicGroup(id, value?.CurrentStateTimestamp ?? -1);
                if (value is not null)
                {
                    group.GenerationId = value.Generation;
                    group.ProtocolType = value.ProtocolType.Length > 0 ? value.ProtocolType : null;
                    group.ProtocolName = value.Protocol;
                    foreach (var m in value.Members)
                    {
                        var member = new GroupMember(m.MemberId, m.GroupInstanceId, m.ClientId, m.ClientHost,
                            m.RebalanceTimeout >= 0 ? m.RebalanceTimeout : m.SessionTimeout, m.SessionTimeout,
                            group.ProtocolType ?? "", [new MemberProtocol(value.Protocol ?? "", m.Subscription)])
                        { Assignment = m.Assignment, HeartbeatDeadline = now + m.SessionTimeout };
                        group.Add(member);
                    }
                    group.LeaderId = value.Leader is { } l && group.Has(l) ? l : group.LeaderId;
                    group.ProtocolType = value.ProtocolType.Length > 0 ? value.ProtocolType : null;
                    long ts = value.CurrentStateTimestamp;
                    group.TransitionTo(group.Size > 0 ? GroupState.Stable : GroupState.Empty, ts);
                    group.SubscribedTopics = group.ComputeSubscribedTopics();
                }
                if (groupOffsets is not null) foreach (var (tp, o) in groupOffsets) group.Offsets[tp] = o;
                _groups[id] = group;
                // Upstream's onGroupLoaded: a group over group.max.size rebalances so members can commit.
                if (group.Size > Config.GroupMaxSize) PrepareRebalance(group, now);
            }
            InstallReplayedConsumerGroups(consumerRecords, now);
            OnShareGroupsLoaded(partition, shareRecords);
            InstallReplayedStreamsGroups(streamsRecords, now);
            // Transactions still open: their offsets wait here for the marker, as if just committed.
            foreach (var (producerId, commits) in pending)
                foreach (var o in commits)
                {
                    if (o.Value is null) continue;
                    if (!_pendingTxnOffsets.TryGetValue((producerId, o.GroupId), out var map))
                        _pendingTxnOffsets[(producerId, o.GroupId)] = map = [];
                    map[o.Partition] = new OffsetCommitEntry(o.Partition, o.Value.Offset, o.Value.LeaderEpoch, o.Value.Metadata,
                        o.Value.ExpireTimestamp, o.Value.CommitTimestamp);
                }
            _shards.MarkOwned(partition);
        }
    }

    private ErrorCode? ValidateGroupStatus(string? groupId, bool allowEmptyId)
    {
        // Upstream's isValidGroupId: the offset APIs, DescribeGroups and DeleteGroups accept "" for
        // compatibility; the membership APIs need a non-empty id.
        if (groupId is null || (!allowEmptyId && groupId.Length == 0)) return ErrorCode.InvalidGroupId;
        if (!_shards.AnyOwned) return ErrorCode.NotCoordinator;
        return _shards[PartitionFor(groupId, _shards.Count)] switch
        {
            Coordination.ShardStatus.Loading => ErrorCode.CoordinatorLoadInProgress,
            Coordination.ShardStatus.NotOwned => ErrorCode.NotCoordinator,
            _ => null,
        };
    }

    // ---------------------------------------------------------------- JoinGroup

    public Task<JoinGroupResult> JoinGroup(JoinGroupParams r)
    {
        var tcs = new TaskCompletionSource<JoinGroupResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            long now = _clock();
            if (ValidateGroupStatus(r.GroupId, allowEmptyId: false) is { } error)
                return Task.FromResult(new JoinGroupResult(error, r.MemberId));
            if (r.SessionTimeoutMs < Config.GroupMinSessionTimeoutMs || r.SessionTimeoutMs > Config.GroupMaxSessionTimeoutMs)
                return Task.FromResult(new JoinGroupResult(ErrorCode.InvalidSessionTimeout, r.MemberId));
            bool unknownMember = r.MemberId.Length == 0;
            bool created = false;
            if (!_groups.TryGetValue(r.GroupId, out var group))
            {
                if (!unknownMember) return Task.FromResult(new JoinGroupResult(ErrorCode.UnknownMemberId, r.MemberId));
                group = new ClassicGroup(r.GroupId, now);
                _groups[r.GroupId] = group;
                created = true;
            }
            // A streams group takes no classic members (upstream: not a classic group).
            if (group.Streams is not null) return Task.FromResult(new JoinGroupResult(ErrorCode.InconsistentGroupProtocol, r.MemberId));
            if (group.Consumer is { } consumer)
            {
                // The id is a KIP-848 consumer group. Upstream's classicGroupJoin: a non-empty one takes
                // the classic member in (a mixed group, GroupCoordinator.Mixed.cs); an empty one turns
                // back into a classic group on a classic join.
                if (consumer.Size > 0)
                {
                    JoinGroupToConsumerGroup(group, r, tcs, now);
                    return tcs.Task;
                }
                DowngradeEmptyConsumerGroup(group);
            }
            if (!AcceptJoiningMember(group, r.MemberId))
            {
                // group.max.size (KIP-389): upstream's group.remove also forgets a pending member id,
                // so a refused newcomer does not hold the rebalance until its id expires.
                if (group.Get(r.MemberId) is { } existing) RemoveMemberAndUpdateGroup(group, existing, now);
                else group.PendingMembers.Remove(r.MemberId);
                tcs.TrySetResult(new JoinGroupResult(ErrorCode.GroupMaxSizeReached, ""));
            }
            else if (unknownMember) DoNewMemberJoinGroup(group, r, tcs, now);
            else DoCurrentMemberJoinGroup(group, r, tcs, now);
            if (group.Is(GroupState.PreparingRebalance)) TryCompleteJoin(group, now);
            // A group created by a join that was refused (bad protocol, size) holds nothing: drop it
            // rather than keep an empty shell per hostile request.
            if (created && group.Size == 0 && group.PendingMembers.Count == 0 && group.Offsets.Count == 0 && group.Is(GroupState.Empty))
                _groups.Remove(r.GroupId);
        }
        return tcs.Task;
    }

    private bool AcceptJoiningMember(ClassicGroup group, string memberId) => group.State switch
    {
        GroupState.Empty or GroupState.Dead => true,
        // Members awaiting join never outnumber members, so the count is only needed near the limit.
        GroupState.PreparingRebalance =>
            (group.Get(memberId)?.IsAwaitingJoin ?? false) || group.Size < Config.GroupMaxSize
            || group.AllMembers.Count(m => m.IsAwaitingJoin) < Config.GroupMaxSize,
        _ => group.Has(memberId) || group.Size < Config.GroupMaxSize,
    };

    private void DoNewMemberJoinGroup(ClassicGroup group, JoinGroupParams r, TaskCompletionSource<JoinGroupResult> tcs, long now)
    {
        if (group.Is(GroupState.Dead)) { tcs.TrySetResult(new JoinGroupResult(ErrorCode.CoordinatorNotAvailable, "")); return; }
        if (!group.SupportsProtocols(r.ProtocolType, r.Protocols)) { tcs.TrySetResult(new JoinGroupResult(ErrorCode.InconsistentGroupProtocol, "")); return; }
        string newMemberId = (r.GroupInstanceId ?? r.ClientId) + "-" + Guid.NewGuid().ToString();
        if (r.GroupInstanceId is { } instanceId)
        {
            if (group.StaticMemberId(instanceId) is { } oldMemberId)
                UpdateStaticMemberAndRebalance(group, oldMemberId, newMemberId, r, tcs, now);
            else
                AddMemberAndRebalance(group, newMemberId, r, tcs, now);
        }
        else if (r.RequireKnownMemberId)
        {
            // KIP-394: hand out the id first; the member must rejoin with it, so a client that
            // disconnects during the join does not leave a ghost member behind.
            group.PendingMembers[newMemberId] = now + r.SessionTimeoutMs;
            tcs.TrySetResult(new JoinGroupResult(ErrorCode.MemberIdRequired, newMemberId));
        }
        else AddMemberAndRebalance(group, newMemberId, r, tcs, now);
    }

    private void DoCurrentMemberJoinGroup(ClassicGroup group, JoinGroupParams r, TaskCompletionSource<JoinGroupResult> tcs, long now)
    {
        if (group.Is(GroupState.Dead)) { tcs.TrySetResult(new JoinGroupResult(ErrorCode.CoordinatorNotAvailable, r.MemberId)); return; }
        if (!group.SupportsProtocols(r.ProtocolType, r.Protocols)) { tcs.TrySetResult(new JoinGroupResult(ErrorCode.InconsistentGroupProtocol, r.MemberId)); return; }
        if (group.PendingMembers.ContainsKey(r.MemberId))
        {
            // Pending ids are only handed to dynamic members (upstream throws IllegalStateException).
            if (r.GroupInstanceId is not null) { tcs.TrySetResult(new JoinGroupResult(ErrorCode.InvalidRequest, r.MemberId)); return; }
            AddMemberAndRebalance(group, r.MemberId, r, tcs, now);
            return;
        }
        if (ValidateCurrentMember(group, r.MemberId, r.GroupInstanceId) is { } error)
        {
            tcs.TrySetResult(new JoinGroupResult(error, r.MemberId));
            return;
        }
        var member = group.Get(r.MemberId)!;
        switch (group.State)
        {
            case GroupState.PreparingRebalance:
                UpdateMemberAndRebalance(group, member, r, tcs, now);
                break;
            case GroupState.CompletingRebalance:
                // Same metadata: the member probably lost the JoinGroup response; answer it again.
                if (member.Matches(r.Protocols)) tcs.TrySetResult(CurrentGeneration(group, r.MemberId, includeMembers: group.IsLeader(r.MemberId)));
                else UpdateMemberAndRebalance(group, member, r, tcs, now);
                break;
            case GroupState.Stable:
                // A rejoining leader forces a rebalance (it may have seen metadata changes the others
                // have not); followers with unchanged metadata just get the current generation.
                if (group.IsLeader(r.MemberId) || !member.Matches(r.Protocols)) UpdateMemberAndRebalance(group, member, r, tcs, now);
                else tcs.TrySetResult(CurrentGeneration(group, r.MemberId, includeMembers: false));
                break;
            default:
                tcs.TrySetResult(new JoinGroupResult(ErrorCode.UnknownMemberId, r.MemberId));
                break;
        }
    }

    private static JoinGroupResult CurrentGeneration(ClassicGroup group, string memberId, bool includeMembers, bool skipAssignment = false, string? leaderId = null) =>
        new(ErrorCode.None, memberId, group.GenerationId, group.ProtocolType, group.ProtocolName, leaderId ?? group.LeaderId ?? "",
            skipAssignment, includeMembers ? CurrentMemberMetadata(group) : []);

    private static List<JoinedMember> CurrentMemberMetadata(ClassicGroup group) =>
        group.AllMembers.Select(m => new JoinedMember(m.MemberId, m.GroupInstanceId, m.MetadataFor(group.ProtocolName ?? "") ?? [])).ToList();

    /// <summary>Null when <paramref name="memberId"/> (and its instance id, if given) is the current
    /// member; else FENCED_INSTANCE_ID or UNKNOWN_MEMBER_ID (upstream's validateCurrentMember).</summary>
    private static ErrorCode? ValidateCurrentMember(ClassicGroup group, string memberId, string? instanceId)
    {
        if (instanceId is not null)
        {
            var current = group.StaticMemberId(instanceId);
            if (current is null) return ErrorCode.UnknownMemberId;
            if (current != memberId) return ErrorCode.FencedInstanceId;
        }
        return group.Has(memberId) ? null : ErrorCode.UnknownMemberId;
    }

    private void AddMemberAndRebalance(ClassicGroup group, string memberId, JoinGroupParams r, TaskCompletionSource<JoinGroupResult> tcs, long now)
    {
        var member = new GroupMember(memberId, r.GroupInstanceId, r.ClientId, r.ClientHost, r.RebalanceTimeoutMs,
            r.SessionTimeoutMs, r.ProtocolType, r.Protocols)
        {
            IsNew = true,
            AwaitingJoin = tcs,
            HeartbeatDeadline = now + NewMemberJoinTimeoutMs,
        };
        // During the first rebalance each newcomer extends the initial delay (InitialDelayedJoin).
        if (group.Is(GroupState.PreparingRebalance) && group.GenerationId == 0) group.NewMemberAdded = true;
        group.Add(member);
        MaybePrepareRebalance(group, now);
    }

    private void UpdateMemberAndRebalance(ClassicGroup group, GroupMember member, JoinGroupParams r, TaskCompletionSource<JoinGroupResult> tcs, long now)
    {
        group.SetProtocols(member, r.Protocols);
        member.RebalanceTimeoutMs = r.RebalanceTimeoutMs;
        member.SessionTimeoutMs = r.SessionTimeoutMs;
        // A second JoinGroup from the same member (another connection) replaces the first; the first
        // is told to rejoin rather than left hanging.
        if (member.AwaitingJoin is { } previous && previous != tcs)
            previous.TrySetResult(new JoinGroupResult(ErrorCode.RebalanceInProgress, member.MemberId));
        member.AwaitingJoin = tcs;
        MaybePrepareRebalance(group, now);
    }

    /// <summary>A known static member rejoined with an unknown member id (a restart): it takes over the
    /// instance's membership. In a Stable group whose protocol choice does not change there is no
    /// rebalance; the member keeps its assignment (KIP-345; KIP-814 for skipAssignment).</summary>
    private void UpdateStaticMemberAndRebalance(ClassicGroup group, string oldMemberId, string newMemberId, JoinGroupParams r,
        TaskCompletionSource<JoinGroupResult> tcs, long now)
    {
        string instanceId = r.GroupInstanceId!;
        var currentLeader = group.LeaderId;
        var member = group.ReplaceStaticMember(instanceId, oldMemberId, newMemberId);
        member.HeartbeatDeadline = now + r.SessionTimeoutMs;
        var oldProtocols = member.Protocols;
        int oldRebalance = member.RebalanceTimeoutMs, oldSession = member.SessionTimeoutMs;
        group.SetProtocols(member, r.Protocols);
        member.RebalanceTimeoutMs = r.RebalanceTimeoutMs;
        member.SessionTimeoutMs = r.SessionTimeoutMs;
        member.AwaitingJoin = tcs;
        switch (group.State)
        {
            case GroupState.Stable:
                if (group.ProtocolName == group.SelectProtocol())
                {
                    member.AwaitingJoin = null;
                    var assignment = group.AllMembers.ToDictionary(m => m.MemberId, m => m.Assignment);
                    var error = StoreGroup(group, assignment);
                    if (error != ErrorCode.None)
                    {
                        // Not persisted: the old member id stays the instance's id.
                        group.SetProtocols(member, oldProtocols);
                        member.RebalanceTimeoutMs = oldRebalance;
                        member.SessionTimeoutMs = oldSession;
                        group.ReplaceStaticMember(instanceId, newMemberId, oldMemberId);
                        tcs.TrySetResult(new JoinGroupResult(error, "", group.GenerationId, group.ProtocolType, group.ProtocolName, currentLeader ?? ""));
                    }
                    else if (r.SupportSkippingAssignment)
                    {
                        bool isLeader = group.IsLeader(newMemberId);
                        tcs.TrySetResult(CurrentGeneration(group, newMemberId, includeMembers: isLeader, skipAssignment: isLeader));
                    }
                    else
                    {
                        // Before JoinGroup v9 the old leader id is returned so a restarted static leader does
                        // not run a pointless assignment the stable group would ignore.
                        tcs.TrySetResult(CurrentGeneration(group, newMemberId, includeMembers: false, leaderId: currentLeader));
                    }
                }
                else MaybePrepareRebalance(group, now);
                break;
            case GroupState.CompletingRebalance:
                // The leader may already be assigning with the old member id: start over.
                PrepareRebalance(group, now);
                break;
            case GroupState.PreparingRebalance:
                break;
            default:
                member.AwaitingJoin = null;
                tcs.TrySetResult(new JoinGroupResult(ErrorCode.UnknownMemberId, r.MemberId));
                break;
        }
    }

    private void MaybePrepareRebalance(ClassicGroup group, long now)
    {
        if (group.CanRebalance) PrepareRebalance(group, now);
    }

    private void PrepareRebalance(ClassicGroup group, long now)
    {
        if (group.Is(GroupState.CompletingRebalance)) ResetAndPropagateAssignmentError(group, ErrorCode.RebalanceInProgress, now);
        group.PendingSyncMembers.Clear();
        group.SyncDeadline = -1;
        if (group.Is(GroupState.Empty))
        {
            // group.initial.rebalance.delay.ms: the first rebalance of an empty group waits for more
            // members, extending while new ones arrive, up to the rebalance timeout.
            int delay = Config.GroupInitialRebalanceDelayMs;
            group.InitialJoinDelay = true;
            group.NewMemberAdded = false;
            group.InitialRemainingMs = Math.Max(group.RebalanceTimeoutMs - (long)delay, 0);
            group.JoinDeadline = now + delay;
        }
        else
        {
            group.InitialJoinDelay = false;
            group.JoinDeadline = now + group.RebalanceTimeoutMs;
        }
        group.TransitionTo(GroupState.PreparingRebalance, now);
        _logger?.Invoke($"Preparing to rebalance group {group.GroupId} with old generation {group.GenerationId}");
        TryCompleteJoin(group, now);
    }

    private void TryCompleteJoin(ClassicGroup group, long now)
    {
        if (group.Is(GroupState.PreparingRebalance) && !group.InitialJoinDelay && group.HasAllMembersJoined) OnCompleteJoin(group, now);
    }

    private void OnJoinDeadline(ClassicGroup group, long now)
    {
        if (group.InitialJoinDelay && group.NewMemberAdded && group.InitialRemainingMs > 0)
        {
            group.NewMemberAdded = false;
            long delay = Math.Min(Config.GroupInitialRebalanceDelayMs, group.InitialRemainingMs);
            group.InitialRemainingMs = Math.Max(group.InitialRemainingMs - delay, 0);
            group.JoinDeadline = now + delay;
            return;
        }
        group.InitialJoinDelay = false;
        OnCompleteJoin(group, now);
    }

    private void OnCompleteJoin(ClassicGroup group, long now)
    {
        group.JoinDeadline = -1;
        group.InitialJoinDelay = false;
        // Dynamic members that did not rejoin in time are dropped; static ones keep their place.
        foreach (var failed in group.AllMembers.Where(m => !m.IsAwaitingJoin && !m.IsStatic).ToList())
        {
            failed.AwaitingSync?.TrySetResult(SyncGroupResult.Failed(ErrorCode.RebalanceInProgress));
            group.Remove(failed.MemberId);
        }
        if (group.Is(GroupState.Dead)) return;
        if (!group.MaybeElectNewJoinedLeader() && group.Size > 0)
        {
            // Nobody rejoined: wait another rebalance timeout for sessions to expire (upstream).
            group.JoinDeadline = now + group.RebalanceTimeoutMs;
            return;
        }
        InitNextGeneration(group, now);
        if (group.Is(GroupState.Empty))
        {
            var error = StoreGroup(group, new Dictionary<string, byte[]>());
            if (error != ErrorCode.None) _logger?.Invoke($"failed to write empty metadata for group {group.GroupId}: {error}");
            return;
        }
        _logger?.Invoke($"Stabilized group {group.GroupId} generation {group.GenerationId} with {group.Size} members");
        var allMembers = CurrentMemberMetadata(group);
        foreach (var m in group.AllMembers)
        {
            if (m.AwaitingJoin is { } join)
            {
                join.TrySetResult(new JoinGroupResult(ErrorCode.None, m.MemberId, group.GenerationId, group.ProtocolType, group.ProtocolName,
                    group.LeaderId ?? "", false, group.IsLeader(m.MemberId) ? allMembers : []));
                m.AwaitingJoin = null;
            }
            m.HeartbeatDeadline = now + m.SessionTimeoutMs;
            m.IsNew = false;
            group.PendingSyncMembers.Add(m.MemberId);
        }
        // Members that never send SyncGroup are removed after the rebalance timeout (DelayedSync).
        group.SyncDeadline = now + group.RebalanceTimeoutMs;
    }

    private void InitNextGeneration(ClassicGroup group, long now)
    {
        group.GenerationId++;
        if (group.Size > 0)
        {
            group.ProtocolName = group.SelectProtocol();
            group.SubscribedTopics = group.ComputeSubscribedTopics();
            group.TransitionTo(GroupState.CompletingRebalance, now);
        }
        else
        {
            group.ProtocolName = null;
            group.SubscribedTopics = null;
            group.TransitionTo(GroupState.Empty, now);
        }
        group.PendingSyncMembers.Clear();
    }

    private static void ResetAndPropagateAssignmentError(ClassicGroup group, ErrorCode error, long now)
    {
        foreach (var m in group.AllMembers) m.Assignment = [];
        PropagateAssignment(group, error, now);
    }

    private static void PropagateAssignment(ClassicGroup group, ErrorCode error, long now)
    {
        foreach (var m in group.AllMembers)
        {
            if (m.AwaitingSync is not { } sync) continue;
            sync.TrySetResult(error == ErrorCode.None
                ? new SyncGroupResult(ErrorCode.None, m.Assignment, group.ProtocolType, group.ProtocolName)
                : SyncGroupResult.Failed(error));
            m.AwaitingSync = null;
            // The session restarts once the member has its assignment.
            m.HeartbeatDeadline = now + m.SessionTimeoutMs;
        }
    }

    // ---------------------------------------------------------------- SyncGroup

    public Task<SyncGroupResult> SyncGroup(string groupId, int generationId, string memberId, string? groupInstanceId,
        string? protocolType, string? protocolName, IReadOnlyList<(string MemberId, byte[] Assignment)> assignments)
    {
        lock (_gate)
        {
            long now = _clock();
            if (ValidateGroupStatus(groupId, allowEmptyId: false) is { } status)
                // A loading coordinator lost the rebalance in flight: REBALANCE_IN_PROGRESS makes the
                // member rejoin without rediscovering the coordinator (older clients do not know
                // COORDINATOR_LOAD_IN_PROGRESS here).
                return Task.FromResult(SyncGroupResult.Failed(status == ErrorCode.CoordinatorLoadInProgress ? ErrorCode.RebalanceInProgress : status));
            if (!_groups.TryGetValue(groupId, out var group)) return Task.FromResult(SyncGroupResult.Failed(ErrorCode.UnknownMemberId));
            if (group.Consumer is { } consumerGroup)
                return Task.FromResult(SyncGroupToConsumerGroup(consumerGroup, generationId, memberId, groupInstanceId, protocolType, protocolName, now));
            if (group.Is(GroupState.Dead)) return Task.FromResult(SyncGroupResult.Failed(ErrorCode.CoordinatorNotAvailable));
            if (ValidateCurrentMember(group, memberId, groupInstanceId) is { } error) return Task.FromResult(SyncGroupResult.Failed(error));
            if (generationId != group.GenerationId) return Task.FromResult(SyncGroupResult.Failed(ErrorCode.IllegalGeneration));
            if ((protocolType is not null && protocolType != group.ProtocolType) || (protocolName is not null && protocolName != group.ProtocolName))
                return Task.FromResult(SyncGroupResult.Failed(ErrorCode.InconsistentGroupProtocol));
            var member = group.Get(memberId)!;
            switch (group.State)
            {
                case GroupState.Empty:
                    return Task.FromResult(SyncGroupResult.Failed(ErrorCode.UnknownMemberId));
                case GroupState.PreparingRebalance:
                    return Task.FromResult(SyncGroupResult.Failed(ErrorCode.RebalanceInProgress));
                case GroupState.CompletingRebalance:
                {
                    var tcs = new TaskCompletionSource<SyncGroupResult>(TaskCreationOptions.RunContinuationsAsynchronously);
                    member.AwaitingSync?.TrySetResult(SyncGroupResult.Failed(ErrorCode.RebalanceInProgress));
                    member.AwaitingSync = tcs;
                    RemovePendingSyncMember(group, memberId);
                    if (group.IsLeader(memberId))
                    {
                        // Members the leader left out get an empty assignment (upstream).
                        var full = new Dictionary<string, byte[]>(StringComparer.Ordinal);
                        foreach (var (id, bytes) in assignments) if (group.Has(id)) full[id] = bytes;
                        foreach (var m in group.AllMembers) full.TryAdd(m.MemberId, []);
                        var storeError = StoreGroup(group, full);
                        if (storeError != ErrorCode.None)
                        {
                            ResetAndPropagateAssignmentError(group, storeError, now);
                            MaybePrepareRebalance(group, now);
                        }
                        else
                        {
                            foreach (var m in group.AllMembers) m.Assignment = full[m.MemberId];
                            PropagateAssignment(group, ErrorCode.None, now);
                            group.TransitionTo(GroupState.Stable, now);
                        }
                    }
                    return tcs.Task;
                }
                default: // Stable
                    RemovePendingSyncMember(group, memberId);
                    member.HeartbeatDeadline = now + member.SessionTimeoutMs;
                    return Task.FromResult(new SyncGroupResult(ErrorCode.None, member.Assignment, group.ProtocolType, group.ProtocolName));
            }
        }
    }

    private static void RemovePendingSyncMember(ClassicGroup group, string memberId)
    {
        group.PendingSyncMembers.Remove(memberId);
        if (group.PendingSyncMembers.Count == 0) group.SyncDeadline = -1;
    }

    // ---------------------------------------------------------------- Heartbeat / LeaveGroup

    public ErrorCode Heartbeat(string groupId, string memberId, string? groupInstanceId, int generationId)
    {
        lock (_gate)
        {
            long now = _clock();
            if (ValidateGroupStatus(groupId, allowEmptyId: false) is { } status)
                // While loading, upstream answers heartbeats with NONE: the member keeps its session.
                return status == ErrorCode.CoordinatorLoadInProgress ? ErrorCode.None : status;
            if (!_groups.TryGetValue(groupId, out var group)) return ErrorCode.UnknownMemberId;
            if (group.Consumer is { } consumerGroup) return HeartbeatToConsumerGroup(consumerGroup, memberId, groupInstanceId, generationId, now);
            if (group.Is(GroupState.Dead)) return ErrorCode.CoordinatorNotAvailable;
            if (ValidateCurrentMember(group, memberId, groupInstanceId) is { } error) return error;
            if (generationId != group.GenerationId) return ErrorCode.IllegalGeneration;
            var member = group.Get(memberId)!;
            switch (group.State)
            {
                case GroupState.Empty:
                    return ErrorCode.UnknownMemberId;
                case GroupState.PreparingRebalance:
                    member.HeartbeatDeadline = now + member.SessionTimeoutMs;
                    return ErrorCode.RebalanceInProgress;
                default:
                    member.HeartbeatDeadline = now + member.SessionTimeoutMs;
                    return ErrorCode.None;
            }
        }
    }

    /// <summary>Removes members (KIP-345 batch form: by member id, or by instance id with an empty
    /// member id for administrative removal).</summary>
    public (ErrorCode Error, List<(MemberLeave Member, ErrorCode Error)> Members) LeaveGroup(string groupId, IReadOnlyList<MemberLeave> members)
    {
        lock (_gate)
        {
            long now = _clock();
            if (ValidateGroupStatus(groupId, allowEmptyId: false) is { } status) return (status, []);
            if (!_groups.TryGetValue(groupId, out var group))
                return (ErrorCode.None, members.Select(m => (m, ErrorCode.UnknownMemberId)).ToList());
            if (group.Consumer is not null) return (ErrorCode.None, LeaveGroupToConsumerGroup(group, members, now));
            if (group.Is(GroupState.Dead)) return (ErrorCode.CoordinatorNotAvailable, []);
            var results = new List<(MemberLeave, ErrorCode)>();
            foreach (var leaving in members)
            {
                if (leaving.MemberId.Length == 0)
                {
                    if (group.StaticMemberId(leaving.GroupInstanceId) is { } current)
                    {
                        RemoveMemberAndUpdateGroup(group, group.Get(current)!, now);
                        results.Add((leaving, ErrorCode.None));
                    }
                    else results.Add((leaving, ErrorCode.UnknownMemberId));
                }
                else if (group.PendingMembers.ContainsKey(leaving.MemberId))
                {
                    RemovePendingMemberAndUpdateGroup(group, leaving.MemberId, now);
                    results.Add((leaving, ErrorCode.None));
                }
                else if (ValidateCurrentMember(group, leaving.MemberId, leaving.GroupInstanceId) is { } error)
                {
                    results.Add((leaving, error));
                }
                else
                {
                    RemoveMemberAndUpdateGroup(group, group.Get(leaving.MemberId)!, now);
                    results.Add((leaving, ErrorCode.None));
                }
            }
            return (ErrorCode.None, results);
        }
    }

    private void RemoveMemberAndUpdateGroup(ClassicGroup group, GroupMember member, long now)
    {
        // A parked JoinGroup of a removed member is answered so the client retries with a fresh id.
        member.AwaitingJoin?.TrySetResult(new JoinGroupResult(ErrorCode.UnknownMemberId, ""));
        member.AwaitingJoin = null;
        member.AwaitingSync?.TrySetResult(SyncGroupResult.Failed(ErrorCode.UnknownMemberId));
        member.AwaitingSync = null;
        group.Remove(member.MemberId);
        switch (group.State)
        {
            case GroupState.Stable or GroupState.CompletingRebalance:
                MaybePrepareRebalance(group, now);
                break;
            case GroupState.PreparingRebalance:
                TryCompleteJoin(group, now);
                break;
        }
    }

    private void RemovePendingMemberAndUpdateGroup(ClassicGroup group, string memberId, long now)
    {
        group.Remove(memberId);
        if (group.Is(GroupState.PreparingRebalance)) TryCompleteJoin(group, now);
    }

    // ---------------------------------------------------------------- timers

    /// <summary>Runs every deadline that is due: session expiry, pending-member expiry, join
    /// completion (rebalance timeout / initial delay), sync expiry and offset retention.</summary>
    public void Tick()
    {
        lock (_gate)
        {
            long now = _clock();
            foreach (var group in _groups.Values.ToList())
            {
                foreach (var (pending, deadline) in group.PendingMembers.ToList())
                    if (deadline <= now) RemovePendingMemberAndUpdateGroup(group, pending, now);
                foreach (var m in group.AllMembers.ToList())
                {
                    if (m.HeartbeatDeadline > now || !group.Has(m.MemberId)) continue;
                    // Members parked in a rebalance keep their session; new members only get
                    // NewMemberJoinTimeoutMs (upstream's hasSatisfiedHeartbeat).
                    if (!m.IsNew && (m.IsAwaitingJoin || m.IsAwaitingSync)) { m.HeartbeatDeadline = now + m.SessionTimeoutMs; continue; }
                    _logger?.Invoke($"Member {m.MemberId} in group {group.GroupId} has failed, removing it from the group");
                    RemoveMemberAndUpdateGroup(group, m, now);
                }
                if (group.Is(GroupState.PreparingRebalance) && group.JoinDeadline >= 0 && group.JoinDeadline <= now)
                    OnJoinDeadline(group, now);
                if (group.SyncDeadline >= 0 && group.SyncDeadline <= now) OnSyncExpired(group, now);
            }
            TickConsumerGroups(now);
            TickStreamsGroups(now);
            if (now >= _nextRetentionCheck)
            {
                _nextRetentionCheck = now + Config.OffsetsRetentionCheckIntervalMs;
                ExpireOffsets(now);
            }
        }
    }

    private void OnSyncExpired(ClassicGroup group, long now)
    {
        group.SyncDeadline = -1;
        if (!(group.Is(GroupState.CompletingRebalance) || group.Is(GroupState.Stable)) || group.PendingSyncMembers.Count == 0) return;
        var missing = group.PendingSyncMembers.ToList();
        foreach (var id in missing) group.Remove(id);
        _logger?.Invoke($"Group {group.GroupId} removed members who did not send SyncGroup: {string.Join(", ", missing)}");
        PrepareRebalance(group, now);
    }

    /// <summary>Drives <see cref="Tick"/> from a timer (the broker's runtime; tests call Tick).</summary>
    public IDisposable StartTicking(TimeSpan period) =>
        new Timer(_ =>
        {
            try { Tick(); }
            catch (Exception e) { _logger?.Invoke($"group coordinator tick failed: {e}"); }
        }, null, period, period);

    // ---------------------------------------------------------------- offsets

    /// <summary>OffsetCommit for a classic group. A commit with generation &lt; 0 is a "simple"
    /// commit, allowed only while the group has no members; otherwise the member id, instance id and
    /// generation must be current, so a member of a stale generation cannot overwrite progress.</summary>
    public (ErrorCode Error, Dictionary<TopicPartition, ErrorCode> Partitions) CommitOffsets(
        string groupId, string memberId, string? groupInstanceId, int generationId, IReadOnlyList<OffsetCommitEntry> entries)
    {
        lock (_gate)
        {
            long now = _clock();
            var groupError = ValidateGroupStatus(groupId, allowEmptyId: true);
            ClassicGroup? group = null;
            if (groupError is null)
            {
                if (!_groups.TryGetValue(groupId, out group))
                {
                    if (generationId < 0)
                    {
                        group = new ClassicGroup(groupId, now);
                        _groups[groupId] = group;
                    }
                    else groupError = ErrorCode.IllegalGeneration;
                }
                else if (group.Is(GroupState.Dead)) groupError = ErrorCode.CoordinatorNotAvailable;
                else if (group.Streams is { } streams)
                {
                    // KIP-1071 members commit with their member epoch as the generation id.
                    groupError = ValidateStreamsMemberOffsets(streams, memberId, generationId, commit: true);
                    if (groupError is null && streams.Get(memberId) is { } sm) sm.SessionDeadline = now + Config.StreamsGroupSessionTimeoutMs;
                }
                else if (group.Consumer is { } consumer)
                {
                    // KIP-848 members commit with their member epoch as the generation id.
                    groupError = ValidateConsumerMemberOffsets(consumer, memberId, generationId, commit: true);
                    if (groupError is null && consumer.Get(memberId) is { } cm)
                        cm.SessionDeadline = now + (cm.Classic?.SessionTimeoutMs ?? Config.ConsumerGroupSessionTimeoutMs);
                }
                else if (generationId < 0 && group.Is(GroupState.Empty)) { }
                else if (ValidateCurrentMember(group, memberId, groupInstanceId) is { } e) groupError = e;
                else if (generationId != group.GenerationId) groupError = ErrorCode.IllegalGeneration;
                else if (group.Is(GroupState.CompletingRebalance)) groupError = ErrorCode.RebalanceInProgress;
                else
                {
                    var member = group.Get(memberId)!;
                    member.HeartbeatDeadline = now + member.SessionTimeoutMs;
                }
            }
            var results = new Dictionary<TopicPartition, ErrorCode>();
            if (groupError is { } ge)
            {
                foreach (var e in entries) results[e.Partition] = ge;
                return (ge, results);
            }
            var records = new List<CoordinatorRecord>();
            var accepted = new List<(TopicPartition, CommittedOffset)>();
            foreach (var e in entries)
            {
                var metadata = e.Metadata ?? "";
                if (metadata.Length > Config.OffsetMetadataMaxBytes) { results[e.Partition] = ErrorCode.OffsetMetadataTooLarge; continue; }
                var offset = new CommittedOffset(e.Offset, e.LeaderEpoch, metadata, e.CommitTimestamp >= 0 ? e.CommitTimestamp : now, e.ExpireTimestamp);
                records.Add(GroupRecords.OffsetCommit(groupId, e.Partition, offset));
                accepted.Add((e.Partition, offset));
            }
            if (records.Count > 0)
            {
                var appendError = _log.Append(PartitionFor(groupId, _shards.Count), records);
                var mapped = MapOffsetAppendError(appendError);
                foreach (var (tp, offset) in accepted)
                {
                    results[tp] = mapped;
                    if (mapped == ErrorCode.None) group!.Offsets[tp] = offset;
                }
            }
            // A simple commit that stored nothing leaves no group behind.
            if (group!.Size == 0 && group.Offsets.Count == 0 && group.ProtocolType is null && group.GenerationId == 0) _groups.Remove(groupId);
            return (ErrorCode.None, results);
        }
    }

    // Upstream's GroupMetadataManager.storeOffsets error mapping.
    private static ErrorCode MapOffsetAppendError(ErrorCode e) => e switch
    {
        ErrorCode.None => ErrorCode.None,
        ErrorCode.UnknownTopicOrPartition or ErrorCode.NotEnoughReplicas or ErrorCode.NotEnoughReplicasAfterAppend or ErrorCode.RequestTimedOut
            => ErrorCode.CoordinatorNotAvailable,
        ErrorCode.NotLeaderOrFollower or ErrorCode.KafkaStorageError => ErrorCode.NotCoordinator,
        ErrorCode.MessageTooLarge or ErrorCode.RecordListTooLarge or ErrorCode.InvalidFetchSize => ErrorCode.InvalidCommitOffsetSize,
        _ => e,
    };

    private static ErrorCode MapGroupAppendError(ErrorCode e) => e switch
    {
        ErrorCode.None => ErrorCode.None,
        ErrorCode.UnknownTopicOrPartition or ErrorCode.NotEnoughReplicas or ErrorCode.NotEnoughReplicasAfterAppend or ErrorCode.RequestTimedOut
            => ErrorCode.CoordinatorNotAvailable,
        ErrorCode.NotLeaderOrFollower or ErrorCode.KafkaStorageError => ErrorCode.NotCoordinator,
        ErrorCode.MessageTooLarge or ErrorCode.RecordListTooLarge or ErrorCode.InvalidFetchSize => ErrorCode.UnknownServerError,
        _ => e,
    };

    private ErrorCode StoreGroup(ClassicGroup group, IReadOnlyDictionary<string, byte[]> assignment) =>
        MapGroupAppendError(_log.Append(PartitionFor(group.GroupId, _shards.Count), [GroupRecords.GroupMetadata(group, assignment)]));

    /// <summary>OffsetFetch: the committed offsets of the requested partitions (-1 for none), or all of
    /// the group's when <paramref name="partitions"/> is null.</summary>
    public (ErrorCode Error, List<(TopicPartition Partition, CommittedOffset? Offset)> Offsets) FetchOffsets(
        string groupId, IReadOnlyList<TopicPartition>? partitions)
    {
        lock (_gate)
        {
            if (ValidateGroupStatus(groupId, allowEmptyId: true) is { } error) return (error, []);
            _groups.TryGetValue(groupId, out var group);
            if (partitions is null)
                return (ErrorCode.None, group is null ? [] : group.Offsets.Select(kv => (kv.Key, (CommittedOffset?)kv.Value)).ToList());
            return (ErrorCode.None, partitions.Select(tp => (tp, group?.Offsets.GetValueOrDefault(tp))).ToList());
        }
    }

    /// <summary>offsets.retention.minutes (upstream's removeExpiredOffsets): in an Empty group offsets
    /// expire that long after the group became empty; in a Stable consumer group only offsets of
    /// topics no member subscribes to expire, counted from their commit; an explicit expire timestamp
    /// (OffsetCommit v1-v4) wins. A group left Empty without offsets is deleted.</summary>
    private void ExpireOffsets(long now)
    {
        foreach (var group in _groups.Values.ToList())
        {
            if (_shards[PartitionFor(group.GroupId, _shards.Count)] != Coordination.ShardStatus.Owned) continue;
            Func<CommittedOffset, long>? baseTimestamp = null;
            HashSet<string>? keep = null;
            if (group.ProtocolType is not null && group.Is(GroupState.Empty))
                baseTimestamp = o => group.CurrentStateTimestamp >= 0 ? group.CurrentStateTimestamp : o.CommitTimestamp;
            else if (group.IsConsumerGroup && group.SubscribedTopics is not null && group.Is(GroupState.Stable))
            { baseTimestamp = o => o.CommitTimestamp; keep = group.SubscribedTopics; }
            else if (group.ProtocolType is null)
                baseTimestamp = o => o.CommitTimestamp;
            var expired = new List<TopicPartition>();
            if (baseTimestamp is not null)
                foreach (var (tp, o) in group.Offsets)
                {
                    if (keep is not null && keep.Contains(tp.Topic)) continue;
                    bool gone = o.ExpireTimestamp >= 0 ? now >= o.ExpireTimestamp : now - baseTimestamp(o) >= Config.OffsetsRetentionMs;
                    if (gone) expired.Add(tp);
                }
            RemoveOffsetsAndMaybeGroup(group, expired, now);
        }
    }

    private int RemoveOffsetsAndMaybeGroup(ClassicGroup group, IReadOnlyCollection<TopicPartition> partitions, long now)
    {
        var records = new List<CoordinatorRecord>();
        foreach (var tp in partitions)
            if (group.Offsets.ContainsKey(tp)) records.Add(GroupRecords.OffsetTombstone(group.GroupId, tp));
        bool dies = group.Is(GroupState.Empty) && group.Offsets.Keys.All(partitions.Contains);
        if (dies)
        {
            if (group.Consumer is { } consumer) records.AddRange(ConsumerGroupRecords.Tombstones(consumer));
            else if (group.Streams is { } streams) records.AddRange(Streams.StreamsGroupRecords.Tombstones(streams));
            else records.Add(GroupRecords.GroupTombstone(group.GroupId));
        }
        if (records.Count == 0) return 0;
        var error = _log.Append(PartitionFor(group.GroupId, _shards.Count), records);
        if (error != ErrorCode.None)
        {
            _logger?.Invoke($"failed to write tombstones for group {group.GroupId}: {error}");
            return 0;
        }
        int removed = 0;
        foreach (var tp in partitions) if (group.Offsets.Remove(tp)) removed++;
        if (dies)
        {
            group.TransitionTo(GroupState.Dead, now);
            _groups.Remove(group.GroupId);
        }
        return removed;
    }

    // ---------------------------------------------------------------- admin

    public (ErrorCode Error, List<ListedGroup> Groups) ListGroups(IReadOnlyCollection<string>? states, IReadOnlyCollection<string>? types)
    {
        lock (_gate)
        {
            if (!IsActiveLocked) return (ErrorCode.CoordinatorNotAvailable, []);
            bool loading = _shards.AnyLoading;
            // Classic and KIP-848 consumer groups (type "consumer", their own state names). Share
            // groups (KIP-932) live in Groups/Share and are added by the ListGroups handler.
            var list = _groups.Values
                .Where(g => !g.Is(GroupState.Dead))
                .Select(g => g.Consumer is { } c
                    ? new ListedGroup(g.GroupId, ConsumerProtocol.ProtocolType, c.State.ToString(), "consumer")
                    // Streams groups list with protocol type "streams" (upstream's StreamsGroup.protocolType).
                    : g.Streams is { } st ? new ListedGroup(g.GroupId, "streams", st.State.ToString(), "streams")
                    : new ListedGroup(g.GroupId, g.ProtocolType ?? "", g.State.ToString(), "classic"))
                .Where(g => types is not { Count: > 0 } || types.Any(t => string.Equals(t, g.Type, StringComparison.OrdinalIgnoreCase)))
                .Where(g => states is not { Count: > 0 } || states.Any(s => string.Equals(s, g.State, StringComparison.OrdinalIgnoreCase)))
                .ToList();
            return (loading ? ErrorCode.CoordinatorLoadInProgress : ErrorCode.None, list);
        }
    }

    private bool IsActiveLocked => _shards.AnyOwned;

    /// <summary>DescribeGroups for one group (upstream's GroupMetadata.summary): member metadata and
    /// assignments only while Stable; an unknown group is reported Dead.</summary>
    public (ErrorCode Error, GroupSummary Summary) DescribeGroup(string groupId)
    {
        lock (_gate)
        {
            if (ValidateGroupStatus(groupId, allowEmptyId: true) is { } error)
                return (error, new GroupSummary(groupId, "", "", "", []));
            if (!_groups.TryGetValue(groupId, out var group))
                return (ErrorCode.None, new GroupSummary(groupId, "Dead", "", "", []) { NotFound = $"Group {groupId} not found." });
            if (group.Consumer is not null || group.Streams is not null)
                return (ErrorCode.None, new GroupSummary(groupId, "Dead", "", "", []) { NotFound = $"Group {groupId} is not a classic group." });
            bool stable = group.Is(GroupState.Stable);
            var members = group.AllMembers.Select(m => new MemberSummary(m.MemberId, m.GroupInstanceId, m.ClientId, m.ClientHost,
                stable ? m.MetadataFor(group.ProtocolName ?? "") ?? [] : [], stable ? m.Assignment : [])).ToList();
            return (ErrorCode.None, new GroupSummary(groupId, group.State.ToString(), group.ProtocolType ?? "",
                stable ? group.ProtocolName ?? "" : "", members));
        }
    }

    /// <summary>DeleteGroups: only groups without members; their offsets and metadata are tombstoned.</summary>
    public Dictionary<string, ErrorCode> DeleteGroups(IReadOnlyList<string> groupIds)
    {
        lock (_gate)
        {
            long now = _clock();
            var results = new Dictionary<string, ErrorCode>(StringComparer.Ordinal);
            foreach (var id in groupIds)
            {
                if (ValidateGroupStatus(id, allowEmptyId: true) is { } error) { results[id] = error; continue; }
                if (!_groups.TryGetValue(id, out var group) || group.Is(GroupState.Dead)) { results[id] = ErrorCode.GroupIdNotFound; continue; }
                if (!group.Is(GroupState.Empty)) { results[id] = ErrorCode.NonEmptyGroup; continue; }
                var records = group.Offsets.Keys.Select(tp => GroupRecords.OffsetTombstone(id, tp)).ToList();
                if (group.Consumer is { } consumer) records.AddRange(ConsumerGroupRecords.Tombstones(consumer));
                else if (group.Streams is { } streams) records.AddRange(Streams.StreamsGroupRecords.Tombstones(streams));
                else records.Add(GroupRecords.GroupTombstone(id));
                var appendError = MapGroupAppendError(_log.Append(PartitionFor(id, _shards.Count), records));
                if (appendError != ErrorCode.None) { results[id] = appendError; continue; }
                group.Offsets.Clear();
                group.TransitionTo(GroupState.Dead, now);
                _groups.Remove(id);
                results[id] = ErrorCode.None;
            }
            return results;
        }
    }

    /// <summary>OffsetDelete (KIP-496): an active consumer group keeps offsets of topics it subscribes
    /// to (GROUP_SUBSCRIBED_TO_TOPIC); an active group of another protocol type refuses (NON_EMPTY_GROUP).</summary>
    public (ErrorCode Error, Dictionary<TopicPartition, ErrorCode> Partitions) DeleteOffsets(string groupId, IReadOnlyList<TopicPartition> partitions)
    {
        lock (_gate)
        {
            var results = new Dictionary<TopicPartition, ErrorCode>();
            if (ValidateGroupStatus(groupId, allowEmptyId: false) is { } error) return (error, results);
            if (!_groups.TryGetValue(groupId, out var group) || group.Is(GroupState.Dead)) return (ErrorCode.GroupIdNotFound, results);
            List<TopicPartition> eligible;
            if (group.Is(GroupState.Empty)) eligible = partitions.ToList();
            else if (group.IsConsumerGroup || group.Streams is not null)
            {
                eligible = [];
                foreach (var tp in partitions)
                    if (group.IsSubscribedToTopic(tp.Topic)) results[tp] = ErrorCode.GroupSubscribedToTopic; else eligible.Add(tp);
            }
            else return (ErrorCode.NonEmptyGroup, results);
            if (eligible.Count > 0)
            {
                var present = eligible.Where(group.Offsets.ContainsKey).ToList();
                // Deleting offsets never deletes the group itself here (upstream keeps an Empty group
                // until expiry or DeleteGroups).
                var records = present.Select(tp => GroupRecords.OffsetTombstone(groupId, tp)).ToList();
                var appendError = records.Count == 0 ? ErrorCode.None : MapGroupAppendError(_log.Append(PartitionFor(groupId, _shards.Count), records));
                if (appendError != ErrorCode.None) return (appendError, []);
                foreach (var tp in present) group.Offsets.Remove(tp);
                foreach (var tp in eligible) results[tp] = ErrorCode.None;
            }
            return (ErrorCode.None, results);
        }
    }

    /// <summary>Offsets of deleted topics are removed from every group (upstream's handleDeletedPartitions).</summary>
    public void OnTopicDeleted(string topic)
    {
        lock (_gate)
        {
            long now = _clock();
            foreach (var group in _groups.Values.ToList())
            {
                var gone = group.Offsets.Keys.Where(tp => tp.Topic == topic).ToList();
                if (gone.Count > 0) RemoveOffsetsAndMaybeGroup(group, gone, now);
            }
        }
    }

    // ---------------------------------------------------------------- transactional offsets (KIP-98, KIP-447)

    /// <summary>TxnOffsetCommit's group check (upstream validateOffsetCommit for transactional commits):
    /// an unknown group or a generation below 0 with no member id is a "simple" commit; otherwise the
    /// member (and instance id) must be current and the generation the group's.</summary>
    public ErrorCode ValidateTxnOffsetCommit(string groupId, string memberId, string? groupInstanceId, int generationId)
    {
        lock (_gate)
        {
            if (ValidateGroupStatus(groupId, allowEmptyId: true) is { } statusError) return statusError;
            if (!_groups.TryGetValue(groupId, out var group)) return ErrorCode.None;
            if (group.Is(GroupState.Dead)) return ErrorCode.CoordinatorNotAvailable;
            if (group.Streams is { } streams)
            {
                var se = ValidateStreamsMemberOffsets(streams, memberId, generationId, commit: false);
                return se == ErrorCode.StaleMemberEpoch ? ErrorCode.IllegalGeneration : se ?? ErrorCode.None;
            }
            if (group.Consumer is { } consumer)
            {
                // Upstream's ConsumerGroup.validateOffsetCommit for transactional commits: a wrong
                // member epoch is ILLEGAL_GENERATION rather than STALE_MEMBER_EPOCH.
                var e = ValidateConsumerMemberOffsets(consumer, memberId, generationId, commit: false);
                return e == ErrorCode.StaleMemberEpoch ? ErrorCode.IllegalGeneration : e ?? ErrorCode.None;
            }
            if (generationId < 0 && memberId.Length == 0 && groupInstanceId is null) return ErrorCode.None;
            if (ValidateCurrentMember(group, memberId, groupInstanceId) is { } memberError) return memberError;
            return generationId != group.GenerationId ? ErrorCode.IllegalGeneration : ErrorCode.None;
        }
    }

    // Offsets of open transactions (TxnOffsetCommit), by producer id and group, until the transaction's
    // marker reaches the group's offsets partition on this broker (upstream's pendingTransactionalOffsetCommits).
    private readonly Dictionary<(long ProducerId, string GroupId), Dictionary<TopicPartition, OffsetCommitEntry>> _pendingTxnOffsets = new();

    /// <summary>TxnOffsetCommit on the group's coordinator: the offsets wait for the transaction's
    /// marker (<see cref="CompleteTransactionalOffsets"/>). Membership is checked by the caller.</summary>
    public ErrorCode AddTransactionalOffsets(string groupId, long producerId, short producerEpoch, IReadOnlyList<OffsetCommitEntry> entries)
    {
        lock (_gate)
        {
            if (ValidateGroupStatus(groupId, allowEmptyId: true) is { } statusError) return statusError;
            // Written to the group's partition as the producer's transactional batch (upstream's
            // format), so a new coordinator replays them as pending until the marker.
            long now = _clock();
            var records = entries.Select(e => GroupRecords.OffsetCommit(groupId, e.Partition,
                new CommittedOffset(e.Offset, e.LeaderEpoch, e.Metadata ?? "", e.CommitTimestamp >= 0 ? e.CommitTimestamp : now, -1))).ToList();
            var appendError = MapOffsetAppendError(_log.AppendTransactional(PartitionFor(groupId, _shards.Count), records, producerId, producerEpoch));
            if (appendError != ErrorCode.None) return appendError;
            if (!_pendingTxnOffsets.TryGetValue((producerId, groupId), out var pending))
                _pendingTxnOffsets[(producerId, groupId)] = pending = [];
            foreach (var e in entries) pending[e.Partition] = e;
            return ErrorCode.None;
        }
    }

    /// <summary>The partitions of <paramref name="groupId"/> with transactional offsets still waiting for
    /// their transaction's marker (upstream hasPendingTransactionalOffsets): an OffsetFetch with
    /// require_stable answers them UNSTABLE_OFFSET_COMMIT so the consumer retries instead of starting
    /// from a position the open transaction is about to replace.</summary>
    public HashSet<TopicPartition> PendingTransactionalPartitions(string groupId)
    {
        var pending = new HashSet<TopicPartition>();
        lock (_gate)
        {
            foreach (var (key, offsets) in _pendingTxnOffsets)
                if (key.GroupId == groupId) pending.UnionWith(offsets.Keys);
        }
        return pending;
    }

    /// <summary>A transaction marker was written to offsets partition <paramref name="partition"/> and
    /// replicated: the producer's pending offsets of the groups in that partition become committed
    /// offsets (COMMIT; the marker commits their records in the log) or are dropped (ABORT), as
    /// upstream's handleTxnCompletion — whose result reads see once the high watermark passed the
    /// marker. Until then they stay pending (OffsetFetch require_stable: UNSTABLE_OFFSET_COMMIT).</summary>
    public void CompleteTransactionalOffsets(int partition, long producerId, bool commit)
    {
        List<(string GroupId, List<OffsetCommitEntry> Entries)> done = [];
        lock (_gate)
        {
            foreach (var key in _pendingTxnOffsets.Keys.ToList())
            {
                if (key.ProducerId != producerId || PartitionFor(key.GroupId, _shards.Count) != partition) continue;
                done.Add((key.GroupId, _pendingTxnOffsets[key].Values.ToList()));
                _pendingTxnOffsets.Remove(key);
            }
        }
        if (!commit) return;
        lock (_gate)
        {
            long now = _clock();
            foreach (var (groupId, entries) in done)
            {
                if (!_groups.TryGetValue(groupId, out var group)) _groups[groupId] = group = new ClassicGroup(groupId, now);
                foreach (var e in entries)
                    group.Offsets[e.Partition] = new CommittedOffset(e.Offset, e.LeaderEpoch, e.Metadata ?? "", e.CommitTimestamp >= 0 ? e.CommitTimestamp : now, -1);
            }
        }
    }

    /// <summary>For tests and diagnostics: a snapshot view of a group (null when unknown).</summary>
    public ClassicGroup? GetGroup(string groupId)
    {
        lock (_gate) return _groups.GetValueOrDefault(groupId);
    }
}
