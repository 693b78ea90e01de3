using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Primitives;

namespace Samsa.Kafka.Broker.Groups.Streams;

/// <summary>
/// The KIP-1071 streams group records of <c>__consumer_offsets</c> in upstream's formats
/// (CoordinatorRecordType): key version 17 group metadata, 19 member metadata, 20 target
/// assignment epoch, 21 member target assignment, 22 member current assignment, 23 topology;
/// values are version 0 (flexible). Key version 18 (partition metadata, written by 4.0 before
/// KIP-1101's metadata hash) is read and ignored: the coordinator recomputes the topics on load.
/// </summary>
public sealed class StreamsGroupRecords : IModernGroupRecords<StreamsGroup, StreamsMember, TaskAssignment>
{
    private StreamsGroupRecords() { }

    public const short GroupMetadataKey = 17, PartitionMetadataKey = 18, MemberMetadataKey = 19,
        TargetMetadataKey = 20, TargetMemberKey = 21, CurrentAssignmentKey = 22, TopologyKey = 23;

    public static bool IsStreamsKey(short version) => version is >= GroupMetadataKey and <= TopologyKey;

    private static readonly ModernRecordKeys Keys = new(GroupMetadataKey, MemberMetadataKey, TargetMetadataKey, TargetMemberKey, CurrentAssignmentKey,
        (version, groupId, memberId) => version switch
        {
            GroupMetadataKey => new StreamsGroupMetadataKey { GroupId = groupId },
            TargetMetadataKey => new StreamsGroupTargetAssignmentMetadataKey { GroupId = groupId },
            TopologyKey => new StreamsGroupTopologyKey { GroupId = groupId },
            MemberMetadataKey => new StreamsGroupMemberMetadataKey { GroupId = groupId, MemberId = memberId! },
            TargetMemberKey => new StreamsGroupTargetAssignmentMemberKey { GroupId = groupId, MemberId = memberId! },
            CurrentAssignmentKey => new StreamsGroupCurrentMemberAssignmentKey { GroupId = groupId, MemberId = memberId! },
            _ => throw new ArgumentOutOfRangeException(nameof(version)),
        }) { OtherGroupKeys = [TopologyKey] };

    public static CoordinatorRecord Epoch(StreamsGroup g) =>
        Keys.Record(GroupMetadataKey, g.GroupId, null, new StreamsGroupMetadataValue
        {
            Epoch = g.GroupEpoch, MetadataHash = g.MetadataHash, ValidatedTopologyEpoch = g.ValidatedTopologyEpoch,
            AssignmentConfigs = [new() { Key = "num.standby.replicas", Value = g.NumStandbyReplicas.ToString(System.Globalization.CultureInfo.InvariantCulture) }],
        });

    public static CoordinatorRecord TargetEpoch(StreamsGroup g) =>
        Keys.Record(TargetMetadataKey, g.GroupId, null, new StreamsGroupTargetAssignmentMetadataValue { AssignmentEpoch = g.AssignmentEpoch });

    public static CoordinatorRecord Topology(StreamsGroup g) =>
        Keys.Record(TopologyKey, g.GroupId, null, g.Topology!);

    public static CoordinatorRecord Member(string groupId, StreamsMember m) =>
        Keys.Record(MemberMetadataKey, groupId, m.MemberId, new StreamsGroupMemberMetadataValue
        {
            InstanceId = m.InstanceId, RackId = m.RackId, ClientId = m.ClientId, ClientHost = m.ClientHost,
            RebalanceTimeoutMs = m.RebalanceTimeoutMs, TopologyEpoch = m.TopologyEpoch, ProcessId = m.ProcessId,
            UserEndpoint = m.UserEndpoint is { } e ? new StreamsGroupMemberMetadataValue.Endpoint { Host = e.Host, Port = e.Port } : null,
            ClientTags = m.ClientTags.Select(t => new StreamsGroupMemberMetadataValue.KeyValue { Key = t.Key, Value = t.Value }).ToList(),
        });

    private static List<T> Tasks<T>(TaskSet set, Func<string, List<int>, T> make) =>
        set.Subtopologies.Select(s => make(s, set.PartitionsOf(s).ToList())).ToList();

    private static TaskSet FromTasks<T>(IEnumerable<T> list, Func<T, string> s, Func<T, List<int>> p)
    {
        var set = new TaskSet();
        foreach (var t in list) foreach (var x in p(t)) set.Add(s(t), x);
        return set;
    }

    public static CoordinatorRecord TargetMember(string groupId, string memberId, TaskAssignment a)
    {
        static StreamsGroupTargetAssignmentMemberValue.TaskIds T(string s, List<int> p) => new() { SubtopologyId = s, Partitions = p };
        return Keys.Record(TargetMemberKey, groupId, memberId, new StreamsGroupTargetAssignmentMemberValue
        {
            ActiveTasks = Tasks(a.Active, T), StandbyTasks = Tasks(a.Standby, T), WarmupTasks = Tasks(a.Warmup, T),
        });
    }

    public static CoordinatorRecord Current(string groupId, StreamsMember m)
    {
        static StreamsGroupCurrentMemberAssignmentValue.TaskIds T(string s, List<int> p) => new() { SubtopologyId = s, Partitions = p };
        return Keys.Record(CurrentAssignmentKey, groupId, m.MemberId, new StreamsGroupCurrentMemberAssignmentValue
        {
            MemberEpoch = m.MemberEpoch, PreviousMemberEpoch = m.PreviousMemberEpoch, State = (sbyte)m.State,
            ActiveTasks = Tasks(m.Assigned.Active, T), StandbyTasks = Tasks(m.Assigned.Standby, T), WarmupTasks = Tasks(m.Assigned.Warmup, T),
            ActiveTasksPendingRevocation = Tasks(m.PendingRevocation.Active, T),
            StandbyTasksPendingRevocation = Tasks(m.PendingRevocation.Standby, T),
            WarmupTasksPendingRevocation = Tasks(m.PendingRevocation.Warmup, T),
        });
    }

    /// <summary>A removed member's tombstones (current assignment, target, metadata), upstream's order.</summary>
    public static IEnumerable<CoordinatorRecord> MemberTombstones(string groupId, string memberId) => Keys.MemberTombstones(groupId, memberId);

    /// <summary>Everything of a deleted group: members, target epoch, topology, then the group epoch.</summary>
    public static IEnumerable<CoordinatorRecord> Tombstones(StreamsGroup g) =>
        Keys.GroupTombstones(g.GroupId, g.AllMembers.Select(m => m.MemberId), TopologyKey);

    /// <summary>Decodes a streams group record for replay (null for key 18, which is not replayed).</summary>
    internal static GroupLogEntry? Decode(short keyVersion, ReadOnlyMemory<byte> keyBody, byte[]? value) =>
        Keys.Decode(keyVersion, keyBody, value, ReadValue) is (string groupId, var memberId, var message)
            ? new GroupLogEntry.StreamsRecord(keyVersion, groupId, memberId, message) : null;

    private static IKafkaMessage ReadValue(short keyVersion, ref KafkaReader r) => keyVersion switch
    {
        GroupMetadataKey => StreamsGroupMetadataValue.Read(ref r, 0),
        TargetMetadataKey => StreamsGroupTargetAssignmentMetadataValue.Read(ref r, 0),
        TopologyKey => StreamsGroupTopologyValue.Read(ref r, 0),
        MemberMetadataKey => StreamsGroupMemberMetadataValue.Read(ref r, 0),
        TargetMemberKey => StreamsGroupTargetAssignmentMemberValue.Read(ref r, 0),
        _ => (IKafkaMessage)StreamsGroupCurrentMemberAssignmentValue.Read(ref r, 0),
    };

    /// <summary>Replays streams group records (in log order) into groups; a group whose epoch record
    /// was tombstoned is gone.</summary>
    internal static Dictionary<string, StreamsGroup> Replay(IEnumerable<GroupLogEntry.StreamsRecord> records, long sessionDeadline) =>
        Keys.Replay<StreamsGroup, StreamsMember, TaskAssignment>(records.Select(r => (r.KeyVersion, r.GroupId, r.MemberId, r.Value)),
            id => new StreamsGroup(id), (g, memberId, value) =>
            {
                StreamsMember M() => g.GetOrAddReplayed(memberId!, x => new StreamsMember(x) { SessionDeadline = sessionDeadline });
                switch (value)
                {
                    case StreamsGroupMetadataValue v:
                        g.GroupEpoch = v.Epoch; g.MetadataHash = v.MetadataHash; g.ValidatedTopologyEpoch = v.ValidatedTopologyEpoch;
                        foreach (var c in v.AssignmentConfigs)
                            if (c.Key == "num.standby.replicas" && int.TryParse(c.Value, out var n)) g.NumStandbyReplicas = n;
                        break;
                    case StreamsGroupTargetAssignmentMetadataValue v: g.AssignmentEpoch = v.AssignmentEpoch; break;
                    case StreamsGroupTopologyValue v: g.Topology = v; break;
                    case StreamsGroupMemberMetadataValue v:
                    {
                        var m = M();
                        m.InstanceId = v.InstanceId; m.RackId = v.RackId; m.ClientId = v.ClientId; m.ClientHost = v.ClientHost;
                        m.RebalanceTimeoutMs = v.RebalanceTimeoutMs; m.TopologyEpoch = v.TopologyEpoch; m.ProcessId = v.ProcessId;
                        m.UserEndpoint = v.UserEndpoint is { } e ? (e.Host, e.Port) : null;
                        m.ClientTags = v.ClientTags.Select(t => (t.Key, t.Value)).ToList();
                        break;
                    }
                    case StreamsGroupTargetAssignmentMemberValue v:
                        g.TargetAssignment[memberId!] = new TaskAssignment
                        {
                            Active = FromTasks(v.ActiveTasks, t => t.SubtopologyId, t => t.Partitions),
                            Standby = FromTasks(v.StandbyTasks, t => t.SubtopologyId, t => t.Partitions),
                            Warmup = FromTasks(v.WarmupTasks, t => t.SubtopologyId, t => t.Partitions),
                        };
                        break;
                    case StreamsGroupCurrentMemberAssignmentValue v:
                    {
                        var m = M();
                        m.MemberEpoch = v.MemberEpoch; m.PreviousMemberEpoch = v.PreviousMemberEpoch;
                        m.State = v.State is >= 0 and <= 2 ? (StreamsMemberState)v.State : StreamsMemberState.Stable;
                        m.Assigned = new TaskAssignment
                        {
                            Active = FromTasks(v.ActiveTasks, t => t.SubtopologyId, t => t.Partitions),
                            Standby = FromTasks(v.StandbyTasks, t => t.SubtopologyId, t => t.Partitions),
                            Warmup = FromTasks(v.WarmupTasks, t => t.SubtopologyId, t => t.Partitions),
                        };
                        m.PendingRevocation = new TaskAssignment
                        {
                            Active = FromTasks(v.ActiveTasksPendingRevocation, t => t.SubtopologyId, t => t.Partitions),
                            Standby = FromTasks(v.StandbyTasksPendingRevocation, t => t.SubtopologyId, t => t.Partitions),
                            Warmup = FromTasks(v.WarmupTasksPendingRevocation, t => t.SubtopologyId, t => t.Partitions),
                        };
                        break;
                    }
                }
            },
            (g, key) => { if (key == TopologyKey) g.Topology = null; });
}
