using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Primitives;

namespace Samsa.Kafka.Broker.Groups;

/// <summary>
/// The KIP-848 consumer group records of <c>__consumer_offsets</c> in upstream's formats (the
/// group-coordinator module's CoordinatorRecordType): key version 3 group epoch, 5 member
/// subscription, 6 target assignment epoch, 7 member target assignment, 8 member current
/// assignment; every value is version 0 (flexible). Upstream ≤ 4.0 also wrote key version 4
/// (subscribed topics' metadata), which 4.1+ (KIP-1101) no longer writes: it is read and ignored,
/// as are the resolved-regex records (key version 16) — the coordinator resolves regexes again
/// from the current topics after a load.
/// </summary>
public sealed class ConsumerGroupRecords : IModernGroupRecords<ConsumerGroup, ConsumerMember, PartitionSet>
{
    private ConsumerGroupRecords() { }

    public const short GroupMetadataKey = 3, PartitionMetadataKey = 4, MemberMetadataKey = 5,
        TargetMetadataKey = 6, TargetMemberKey = 7, CurrentAssignmentKey = 8;

    private static readonly ModernRecordKeys Keys = new(GroupMetadataKey, MemberMetadataKey, TargetMetadataKey, TargetMemberKey, CurrentAssignmentKey,
        (version, groupId, memberId) => version switch
        {
            GroupMetadataKey => new ConsumerGroupMetadataKey { GroupId = groupId },
            TargetMetadataKey => new ConsumerGroupTargetAssignmentMetadataKey { GroupId = groupId },
            MemberMetadataKey => new ConsumerGroupMemberMetadataKey { GroupId = groupId, MemberId = memberId! },
            TargetMemberKey => new ConsumerGroupTargetAssignmentMemberKey { GroupId = groupId, MemberId = memberId! },
            CurrentAssignmentKey => new ConsumerGroupCurrentMemberAssignmentKey { GroupId = groupId, MemberId = memberId! },
            _ => throw new ArgumentOutOfRangeException(nameof(version)),
        });

    public static CoordinatorRecord Epoch(ConsumerGroup g) =>
        Keys.Record(GroupMetadataKey, g.GroupId, null, new ConsumerGroupMetadataValue { Epoch = g.GroupEpoch });

    public static CoordinatorRecord TargetEpoch(ConsumerGroup g) =>
        Keys.Record(TargetMetadataKey, g.GroupId, null, new ConsumerGroupTargetAssignmentMetadataValue { AssignmentEpoch = g.AssignmentEpoch });

    public static CoordinatorRecord Member(string groupId, ConsumerMember m) =>
        Keys.Record(MemberMetadataKey, groupId, m.MemberId, new ConsumerGroupMemberMetadataValue
        {
            InstanceId = m.InstanceId, RackId = m.RackId, ClientId = m.ClientId, ClientHost = m.ClientHost,
            SubscribedTopicNames = m.SubscribedTopicNames.ToList(), SubscribedTopicRegex = m.SubscribedTopicRegex,
            RebalanceTimeoutMs = m.RebalanceTimeoutMs, ServerAssignor = m.ServerAssignor,
            // Tag 0: a classic member of a mixed group (upstream writes its session timeout and the
            // JoinGroup protocols so a reloaded coordinator can answer its SyncGroup/Heartbeat and
            // downgrade the group).
            ClassicMemberMetadata = m.Classic is { } c ? new ConsumerGroupMemberMetadataValue.ClassicMemberMetadataData
            {
                SessionTimeoutMs = c.SessionTimeoutMs,
                SupportedProtocols = c.Protocols.Select(p => new ConsumerGroupMemberMetadataValue.ClassicProtocol { Name = p.Name, Metadata = p.Metadata }).ToList(),
            } : null,
        });

    public static CoordinatorRecord TargetMember(string groupId, string memberId, PartitionSet target)
    {
        var v = new ConsumerGroupTargetAssignmentMemberValue();
        foreach (var t in target.Topics)
            v.TopicPartitions.Add(new ConsumerGroupTargetAssignmentMemberValue.TopicPartition { TopicId = t, Partitions = target.PartitionsOf(t).ToList() });
        return Keys.Record(TargetMemberKey, groupId, memberId, v);
    }

    public static CoordinatorRecord Current(string groupId, ConsumerMember m)
    {
        var v = new ConsumerGroupCurrentMemberAssignmentValue
        {
            MemberEpoch = m.MemberEpoch, PreviousMemberEpoch = m.PreviousMemberEpoch, State = (sbyte)m.State,
        };
        foreach (var t in m.Assigned.Topics)
            v.AssignedPartitions.Add(new ConsumerGroupCurrentMemberAssignmentValue.TopicPartitions { TopicId = t, Partitions = m.Assigned.PartitionsOf(t).ToList() });
        foreach (var t in m.PendingRevocation.Topics)
            v.PartitionsPendingRevocation.Add(new ConsumerGroupCurrentMemberAssignmentValue.TopicPartitions { TopicId = t, Partitions = m.PendingRevocation.PartitionsOf(t).ToList() });
        return Keys.Record(CurrentAssignmentKey, groupId, m.MemberId, v);
    }

    /// <summary>A removed member's tombstones, in upstream's order (current assignment, target, subscription).</summary>
    public static IEnumerable<CoordinatorRecord> MemberTombstones(string groupId, string memberId) => Keys.MemberTombstones(groupId, memberId);

    /// <summary>Everything of a deleted (or downgraded) group: members' records, then the target
    /// assignment epoch and the group epoch (upstream's createGroupTombstoneRecords).</summary>
    public static IEnumerable<CoordinatorRecord> Tombstones(ConsumerGroup g) => Keys.GroupTombstones(g.GroupId, g.AllMembers.Select(m => m.MemberId));

    /// <summary>Decodes a consumer group record for replay (null for key versions not replayed).</summary>
    internal static GroupLogEntry? Decode(short keyVersion, ReadOnlyMemory<byte> keyBody, byte[]? value) =>
        Keys.Decode(keyVersion, keyBody, value, ReadValue) is (string groupId, var memberId, var message)
            ? new GroupLogEntry.ConsumerRecord(keyVersion, groupId, memberId, message) : null;

    private static IKafkaMessage ReadValue(short keyVersion, ref KafkaReader r) => keyVersion switch
    {
        GroupMetadataKey => ConsumerGroupMetadataValue.Read(ref r, 0),
        TargetMetadataKey => ConsumerGroupTargetAssignmentMetadataValue.Read(ref r, 0),
        MemberMetadataKey => ConsumerGroupMemberMetadataValue.Read(ref r, 0),
        TargetMemberKey => ConsumerGroupTargetAssignmentMemberValue.Read(ref r, 0),
        _ => (IKafkaMessage)ConsumerGroupCurrentMemberAssignmentValue.Read(ref r, 0),
    };

    /// <summary>Replays consumer group records (in log order) into groups; a group whose epoch record
    /// was tombstoned is gone.</summary>
    internal static Dictionary<string, ConsumerGroup> Replay(IEnumerable<GroupLogEntry.ConsumerRecord> records, long sessionDeadline) =>
        Keys.Replay<ConsumerGroup, ConsumerMember, PartitionSet>(records.Select(r => (r.KeyVersion, r.GroupId, r.MemberId, r.Value)),
            id => new ConsumerGroup(id), (g, memberId, value) =>
            {
                ConsumerMember M() => g.GetOrAddReplayed(memberId!, x => new ConsumerMember(x) { SessionDeadline = sessionDeadline });
                switch (value)
                {
                    case ConsumerGroupMetadataValue v: g.GroupEpoch = v.Epoch; break;
                    case ConsumerGroupTargetAssignmentMetadataValue v: g.AssignmentEpoch = v.AssignmentEpoch; break;
                    case ConsumerGroupMemberMetadataValue v:
                    {
                        var m = M();
                        m.InstanceId = v.InstanceId; m.RackId = v.RackId; m.ClientId = v.ClientId; m.ClientHost = v.ClientHost;
                        m.SubscribedTopicNames = v.SubscribedTopicNames.ToList(); m.SubscribedTopicRegex = v.SubscribedTopicRegex;
                        m.RebalanceTimeoutMs = v.RebalanceTimeoutMs; m.ServerAssignor = v.ServerAssignor;
                        m.Classic = v.ClassicMemberMetadata is { } c
                            ? new ClassicMemberInfo(c.SessionTimeoutMs, c.SupportedProtocols.Select(p => new MemberProtocol(p.Name, p.Metadata)).ToList())
                            : null;
                        break;
                    }
                    case ConsumerGroupTargetAssignmentMemberValue v:
                        g.TargetAssignment[memberId!] = new PartitionSet(v.TopicPartitions.SelectMany(tp => tp.Partitions.Select(p => (tp.TopicId, p))));
                        break;
                    case ConsumerGroupCurrentMemberAssignmentValue v:
                    {
                        var m = M();
                        m.MemberEpoch = v.MemberEpoch; m.PreviousMemberEpoch = v.PreviousMemberEpoch;
                        m.State = v.State is >= 0 and <= 2 ? (ConsumerMemberState)v.State : ConsumerMemberState.Stable;
                        m.Assigned = new PartitionSet(v.AssignedPartitions.SelectMany(t => t.Partitions.Select(p => (t.TopicId, p))));
                        m.PendingRevocation = new PartitionSet(v.PartitionsPendingRevocation.SelectMany(t => t.Partitions.Select(p => (t.TopicId, p))));
                        break;
                    }
                }
            });
}
