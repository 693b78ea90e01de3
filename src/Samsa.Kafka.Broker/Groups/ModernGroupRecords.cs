using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Primitives;

namespace Samsa.Kafka.Broker.Groups;

/// <summary>The records a consumer or a streams group change writes, by the group type
/// (<see cref="ConsumerGroupRecords"/>, <see cref="Streams.StreamsGroupRecords"/>); the coordinator
/// writes them in one order for both (<c>GroupCoordinator.PersistModern</c>).</summary>
internal interface IModernGroupRecords<TGroup, TMember, TAssignment>
    where TGroup : ModernGroup<TMember, TAssignment>
    where TMember : ModernMember<TAssignment>
    where TAssignment : class, IAssignmentSet<TAssignment>, new()
{
    static abstract IEnumerable<CoordinatorRecord> MemberTombstones(string groupId, string memberId);
    static abstract CoordinatorRecord Member(string groupId, TMember m);
    static abstract CoordinatorRecord Epoch(TGroup g);
    static abstract CoordinatorRecord TargetMember(string groupId, string memberId, TAssignment target);
    static abstract CoordinatorRecord TargetEpoch(TGroup g);
    static abstract CoordinatorRecord Current(string groupId, TMember m);
}

/// <summary>
/// The key versions of one modern group type's five shared record kinds (group epoch, member
/// metadata, target assignment epoch, member target assignment, member current assignment) and
/// the key encoder: the tombstones and the value framing are the same for both group types.
/// </summary>
internal sealed class ModernRecordKeys(short groupMetadata, short memberMetadata, short targetMetadata, short targetMember,
    short currentAssignment, Func<short, string, string?, IKafkaMessage> keyOf)
{
    public byte[] Key(short version, string groupId, string? memberId) => GroupRecords.Encode(keyOf(version, groupId, memberId), version);

    public CoordinatorRecord Record(short keyVersion, string groupId, string? memberId, IKafkaMessage value) =>
        new(Key(keyVersion, groupId, memberId), GroupRecords.Encode(value, 0));

    /// <summary>A removed member's tombstones, in upstream's order (current assignment, target, metadata).</summary>
    public IEnumerable<CoordinatorRecord> MemberTombstones(string groupId, string memberId)
    {
        yield return new(Key(currentAssignment, groupId, memberId), null);
        yield return new(Key(targetMember, groupId, memberId), null);
        yield return new(Key(memberMetadata, groupId, memberId), null);
    }

    /// <summary>Everything of a deleted (or downgraded) group: members' records, the target
    /// assignment epoch, then <paramref name="beforeEpoch"/> (a group type's own group-level
    /// records), then the group epoch (upstream's createGroupTombstoneRecords).</summary>
    public IEnumerable<CoordinatorRecord> GroupTombstones(string groupId, IEnumerable<string> memberIds, params short[] beforeEpoch)
    {
        foreach (var id in memberIds)
            foreach (var r in MemberTombstones(groupId, id)) yield return r;
        yield return new(Key(targetMetadata, groupId, null), null);
        foreach (var k in beforeEpoch) yield return new(Key(k, groupId, null), null);
        yield return new(Key(groupMetadata, groupId, null), null);
    }

    /// <summary>A record value: version 0; a newer flexible version is read as 0, skipping unknown
    /// tagged fields.</summary>
    public static IKafkaMessage ReadValue(byte[] value, ValueReader read)
    {
        var (_, body) = GroupRecords.Version(value, 0);
        var r = new KafkaReader(body);
        return read(ref r);
    }

    public delegate IKafkaMessage ValueReader(ref KafkaReader reader);
}
