using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Primitives;

namespace Samsa.Kafka.Broker.Groups.Share;

/// <summary>
/// The KIP-932 share group records of <c>__consumer_offsets</c> in upstream's formats (the
/// group-coordinator module's CoordinatorRecordType, Kafka 4.1/4.2): key version 10 member
/// subscription, 11 group epoch, 12 target assignment epoch, 13 member target assignment, 14 member
/// current assignment, 15 the group's initialized share-partitions; every value is version 0
/// (flexible). Key version 9 (ShareGroupPartitionMetadata, 4.0's early access, replaced by the
/// metadata hash) is read and ignored.
///
/// The coordinator writes the difference between a group's records before and after each change
/// (<see cref="Image"/>): a changed value is written again, a key that no longer exists is
/// tombstoned, so deleting a group tombstones every key it ever had — nothing of it survives
/// compaction (upstream's createGroupTombstoneRecords plus the state-partition tombstone).
/// </summary>
public static class ShareGroupRecords
{
    public const short PartitionMetadataKey = 9, MemberMetadataKey = 10, GroupMetadataKey = 11,
        TargetMetadataKey = 12, TargetMemberKey = 13, CurrentAssignmentKey = 14, StatePartitionMetadataKey = 15;
    public const short FirstKey = PartitionMetadataKey, LastKey = StatePartitionMetadataKey;

    private static byte[] Key(short version, string groupId, string? memberId) => version switch
    {
        MemberMetadataKey => GroupRecords.Encode(new ShareGroupMemberMetadataKey { GroupId = groupId, MemberId = memberId! }, version),
        GroupMetadataKey => GroupRecords.Encode(new ShareGroupMetadataKey { GroupId = groupId }, version),
        TargetMetadataKey => GroupRecords.Encode(new ShareGroupTargetAssignmentMetadataKey { GroupId = groupId }, version),
        TargetMemberKey => GroupRecords.Encode(new ShareGroupTargetAssignmentMemberKey { GroupId = groupId, MemberId = memberId! }, version),
        CurrentAssignmentKey => GroupRecords.Encode(new ShareGroupCurrentMemberAssignmentKey { GroupId = groupId, MemberId = memberId! }, version),
        StatePartitionMetadataKey => GroupRecords.Encode(new ShareGroupStatePartitionMetadataKey { GroupId = groupId }, version),
        _ => throw new ArgumentOutOfRangeException(nameof(version)),
    };

    /// <summary>Every record of the group's current state, in the order a fresh write lists them
    /// (members' records, then the target assignment, then the group's own).</summary>
    /// <param name="topicLookup">Topic name → id and partition count (null: the topic does not exist).</param>
    public static List<CoordinatorRecord> Image(ShareGroup g, Func<string, (Guid Id, int Partitions)?> topicLookup)
    {
        var list = new List<CoordinatorRecord>();
        foreach (var m in g.Members.Values.OrderBy(m => m.MemberId, StringComparer.Ordinal))
        {
            list.Add(new(Key(MemberMetadataKey, g.GroupId, m.MemberId), GroupRecords.Encode(new ShareGroupMemberMetadataValue
            {
                RackId = m.RackId, ClientId = m.ClientId, ClientHost = m.ClientHost, SubscribedTopicNames = [.. m.SubscribedTopicNames],
            }, 0)));
            var current = new ShareGroupCurrentMemberAssignmentValue
            {
                MemberEpoch = m.MemberEpoch, PreviousMemberEpoch = m.PreviousMemberEpoch, State = 0,
            };
            foreach (var (topicId, partitions) in m.Assignment)
                current.AssignedPartitions.Add(new ShareGroupCurrentMemberAssignmentValue.TopicPartitions { TopicId = topicId, Partitions = [.. partitions] });
            list.Add(new(Key(CurrentAssignmentKey, g.GroupId, m.MemberId), GroupRecords.Encode(current, 0)));
        }
        foreach (var (memberId, target) in g.Target.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            var v = new ShareGroupTargetAssignmentMemberValue();
            foreach (var (topicId, partitions) in target)
                v.TopicPartitions.Add(new ShareGroupTargetAssignmentMemberValue.TopicPartition { TopicId = topicId, Partitions = [.. partitions] });
            list.Add(new(Key(TargetMemberKey, g.GroupId, memberId), GroupRecords.Encode(v, 0)));
        }
        list.Add(new(Key(TargetMetadataKey, g.GroupId, null), GroupRecords.Encode(new ShareGroupTargetAssignmentMetadataValue { AssignmentEpoch = g.AssignmentEpoch }, 0)));
        if (g.KnownTopics.Count > 0)
        {
            // The topics the group's share-partitions were used for (upstream: initialized by the
            // group coordinator); a topic that does not exist (yet) has no id and is left out.
            var v = new ShareGroupStatePartitionMetadataValue();
            foreach (var name in g.KnownTopics)
                if (topicLookup(name) is { } t)
                    v.InitializedTopics.Add(new ShareGroupStatePartitionMetadataValue.InitializedTopic
                    {
                        TopicId = t.Id, TopicName = name, Partitions = [.. Enumerable.Range(0, t.Partitions)],
                        CreateTimestamp = g.TopicAddedMs.GetValueOrDefault(name),
                    });
            list.Add(new(Key(StatePartitionMetadataKey, g.GroupId, null), GroupRecords.Encode(v, 0)));
        }
        list.Add(new(Key(GroupMetadataKey, g.GroupId, null), GroupRecords.Encode(new ShareGroupMetadataValue { Epoch = g.GroupEpoch, MetadataHash = 0 }, 0)));
        return list;
    }

    /// <summary>The records that turn <paramref name="before"/> into <paramref name="after"/>: new or
    /// changed values, and tombstones for keys gone (members' first, the group's epoch last, so a
    /// reader of a partly compacted log never sees members of a deleted group).</summary>
    public static List<CoordinatorRecord> Diff(IReadOnlyList<CoordinatorRecord> before, IReadOnlyList<CoordinatorRecord> after)
    {
        var old = before.ToDictionary(r => Convert.ToHexString(r.Key), r => r.Value);
        var now = after.Select(r => Convert.ToHexString(r.Key)).ToHashSet();
        var changes = new List<CoordinatorRecord>();
        foreach (var r in after)
            if (!old.TryGetValue(Convert.ToHexString(r.Key), out var v) || v is null || !v.AsSpan().SequenceEqual(r.Value))
                changes.Add(r);
        var gone = before.Where(r => !now.Contains(Convert.ToHexString(r.Key))).ToList();
        // Tombstones: current assignment, target, member metadata, then the group-level keys, the
        // group epoch last (upstream's order in createGroupTombstoneRecords).
        static int Rank(CoordinatorRecord r) => (r.Key[0] << 8 | r.Key[1]) switch
        {
            CurrentAssignmentKey => 0, TargetMemberKey => 1, MemberMetadataKey => 2,
            TargetMetadataKey => 3, StatePartitionMetadataKey => 4, _ => 5,
        };
        foreach (var r in gone.OrderBy(Rank)) changes.Add(new CoordinatorRecord(r.Key, null));
        return changes;
    }

    /// <summary>Decodes a share group record for replay (null for key version 9, read and ignored).</summary>
    internal static GroupLogEntry? Decode(short keyVersion, ReadOnlyMemory<byte> keyBody, byte[]? value)
    {
        var kr = new KafkaReader(keyBody);
        string groupId;
        string? memberId = null;
        switch (keyVersion)
        {
            case MemberMetadataKey: { var k = ShareGroupMemberMetadataKey.Read(ref kr, keyVersion); groupId = k.GroupId; memberId = k.MemberId; break; }
            case GroupMetadataKey: groupId = ShareGroupMetadataKey.Read(ref kr, keyVersion).GroupId; break;
            case TargetMetadataKey: groupId = ShareGroupTargetAssignmentMetadataKey.Read(ref kr, keyVersion).GroupId; break;
            case TargetMemberKey: { var k = ShareGroupTargetAssignmentMemberKey.Read(ref kr, keyVersion); groupId = k.GroupId; memberId = k.MemberId; break; }
            case CurrentAssignmentKey: { var k = ShareGroupCurrentMemberAssignmentKey.Read(ref kr, keyVersion); groupId = k.GroupId; memberId = k.MemberId; break; }
            case StatePartitionMetadataKey: groupId = ShareGroupStatePartitionMetadataKey.Read(ref kr, keyVersion).GroupId; break;
            default: return null;
        }
        if (value is null) return new GroupLogEntry.ShareRecord(keyVersion, groupId, memberId, null);
        // Values are version 0; a newer flexible version is read as 0, skipping unknown tagged fields.
        var (_, body) = GroupRecords.Version(value, 0);
        var r = new KafkaReader(body);
        IKafkaMessage message = keyVersion switch
        {
            MemberMetadataKey => ShareGroupMemberMetadataValue.Read(ref r, 0),
            GroupMetadataKey => ShareGroupMetadataValue.Read(ref r, 0),
            TargetMetadataKey => ShareGroupTargetAssignmentMetadataValue.Read(ref r, 0),
            TargetMemberKey => ShareGroupTargetAssignmentMemberValue.Read(ref r, 0),
            CurrentAssignmentKey => ShareGroupCurrentMemberAssignmentValue.Read(ref r, 0),
            _ => ShareGroupStatePartitionMetadataValue.Read(ref r, 0),
        };
        return new GroupLogEntry.ShareRecord(keyVersion, groupId, memberId, message);
    }

    /// <summary>Replays share group records (in log order, the last record of a key winning) into
    /// groups. A group whose epoch record was tombstoned is gone; a group or member left with only
    /// some of its records (never written so by the coordinator) is dropped.</summary>
    /// <param name="nowMs">Members' session timers restart here (upstream: every member of a loaded
    /// share group gets a new session timeout, so one that no longer heartbeats is fenced).</param>
    internal static Dictionary<string, ShareGroup> Replay(IEnumerable<GroupLogEntry.ShareRecord> records, long nowMs)
    {
        var groups = new Dictionary<string, ShareGroup>(StringComparer.Ordinal);
        var hasEpoch = new HashSet<string>(StringComparer.Ordinal);
        var hasMetadata = new HashSet<(string, string)>();
        ShareGroup G(string id) => groups.TryGetValue(id, out var g) ? g : groups[id] = new ShareGroup { GroupId = id };
        ShareMember M(ShareGroup g, string id) => g.Members.TryGetValue(id, out var m) ? m : g.Members[id] = new ShareMember { MemberId = id, LastHeartbeatMs = nowMs };
        foreach (var rec in records)
        {
            switch (rec.KeyVersion, rec.Value)
            {
                case (GroupMetadataKey, null):
                    groups.Remove(rec.GroupId);
                    hasEpoch.Remove(rec.GroupId);
                    hasMetadata.RemoveWhere(k => k.Item1 == rec.GroupId);
                    break;
                case (GroupMetadataKey, ShareGroupMetadataValue v):
                    G(rec.GroupId).GroupEpoch = v.Epoch;
                    hasEpoch.Add(rec.GroupId);
                    break;
                case (TargetMetadataKey, null): break;
                case (TargetMetadataKey, ShareGroupTargetAssignmentMetadataValue v): G(rec.GroupId).AssignmentEpoch = v.AssignmentEpoch; break;
                case (MemberMetadataKey, null):
                    if (groups.TryGetValue(rec.GroupId, out var g10)) g10.Members.Remove(rec.MemberId!);
                    hasMetadata.Remove((rec.GroupId, rec.MemberId!));
                    break;
                case (MemberMetadataKey, ShareGroupMemberMetadataValue v):
                {
                    var m = M(G(rec.GroupId), rec.MemberId!);
                    m.RackId = v.RackId; m.ClientId = v.ClientId; m.ClientHost = v.ClientHost;
                    m.SubscribedTopicNames = v.SubscribedTopicNames.Distinct().OrderBy(t => t, StringComparer.Ordinal).ToList();
                    hasMetadata.Add((rec.GroupId, rec.MemberId!));
                    break;
                }
                case (TargetMemberKey, null):
                    if (groups.TryGetValue(rec.GroupId, out var g13)) g13.Target.Remove(rec.MemberId!);
                    break;
                case (TargetMemberKey, ShareGroupTargetAssignmentMemberValue v):
                    G(rec.GroupId).Target[rec.MemberId!] = ToAssignment(v.TopicPartitions.Select(t => (t.TopicId, t.Partitions)));
                    break;
                case (CurrentAssignmentKey, null): break;
                case (CurrentAssignmentKey, ShareGroupCurrentMemberAssignmentValue v):
                {
                    var m = M(G(rec.GroupId), rec.MemberId!);
                    m.MemberEpoch = v.MemberEpoch; m.PreviousMemberEpoch = v.PreviousMemberEpoch;
                    m.Assignment = ToAssignment(v.AssignedPartitions.Select(t => (t.TopicId, t.Partitions)));
                    break;
                }
                case (StatePartitionMetadataKey, null):
                    if (groups.TryGetValue(rec.GroupId, out var g15)) { g15.KnownTopics.Clear(); g15.TopicAddedMs.Clear(); }
                    break;
                case (StatePartitionMetadataKey, ShareGroupStatePartitionMetadataValue v):
                {
                    var g = G(rec.GroupId);
                    g.KnownTopics.Clear();
                    g.TopicAddedMs.Clear();
                    foreach (var t in v.InitializedTopics) { g.KnownTopics.Add(t.TopicName); g.TopicAddedMs[t.TopicName] = t.CreateTimestamp; }
                    foreach (var t in v.InitializingTopics) { g.KnownTopics.Add(t.TopicName); g.TopicAddedMs[t.TopicName] = t.CreateTimestamp; }
                    break;
                }
            }
        }
        foreach (var id in groups.Keys.Where(id => !hasEpoch.Contains(id)).ToList()) groups.Remove(id);
        foreach (var g in groups.Values)
        {
            foreach (var id in g.Members.Keys.Where(id => !hasMetadata.Contains((g.GroupId, id))).ToList()) g.Members.Remove(id);
            foreach (var id in g.Target.Keys.Where(id => !g.Members.ContainsKey(id)).ToList()) g.Target.Remove(id);
        }
        return groups;
    }

    private static SortedDictionary<Guid, List<int>> ToAssignment(IEnumerable<(Guid TopicId, List<int> Partitions)> topics)
    {
        var a = new SortedDictionary<Guid, List<int>>();
        foreach (var (id, partitions) in topics) a[id] = partitions.OrderBy(p => p).ToList();
        return a;
    }
}
