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
    /// <summary>The group type's other group-level keys (the streams topology).</summary>
    public short[] OtherGroupKeys { get; init; } = [];

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

    /// <summary>The group id and member id of a key of this group type; null for another key
    /// version (one not replayed). Every such key is non-flexible: GroupId, then MemberId for the
    /// per-member kinds (upstream's *Key.json).</summary>
    public (string GroupId, string? MemberId)? ReadKey(short keyVersion, ReadOnlyMemory<byte> keyBody)
    {
        bool perMember = keyVersion == memberMetadata || keyVersion == targetMember || keyVersion == currentAssignment;
        if (!perMember && keyVersion != groupMetadata && keyVersion != targetMetadata && !OtherGroupKeys.Contains(keyVersion)) return null;
        var r = new KafkaReader(keyBody);
        string groupId = r.ReadString(compact: false);
        return (groupId, perMember ? r.ReadString(compact: false) : null);
    }

    /// <summary>Replays one group type's records (in log order) into groups: a tombstone of the
    /// group epoch removes the group, of a member's metadata or target that member's; every value
    /// (which creates its group) and the group type's other tombstones go to the callbacks.</summary>
    public Dictionary<string, TGroup> Replay<TGroup, TMember, TAssignment>(
        IEnumerable<(short KeyVersion, string GroupId, string? MemberId, IKafkaMessage? Value)> records,
        Func<string, TGroup> newGroup, Action<TGroup, string?, IKafkaMessage> apply, Action<TGroup, short>? otherTombstone = null)
        where TGroup : ModernGroup<TMember, TAssignment>
        where TMember : ModernMember<TAssignment>
        where TAssignment : class, IAssignmentSet<TAssignment>, new()
    {
        var groups = new Dictionary<string, TGroup>(StringComparer.Ordinal);
        foreach (var (key, groupId, memberId, value) in records)
        {
            if (value is null)
            {
                if (key == groupMetadata) groups.Remove(groupId);
                else if (groups.TryGetValue(groupId, out var existing))
                {
                    if (key == memberMetadata) existing.Members.Remove(memberId!);
                    else if (key == targetMember) existing.TargetAssignment.Remove(memberId!);
                    else otherTombstone?.Invoke(existing, key);
                }
                continue;
            }
            if (!groups.TryGetValue(groupId, out var g)) groups[groupId] = g = newGroup(groupId);
            apply(g, memberId, value);
        }
        foreach (var g in groups.Values) g.IndexStaticMembers();
        return groups;
    }

    /// <summary>A record of this group type for replay: its group id, member id and value (null
    /// for a tombstone); null for a key version not replayed. Values are version 0; a newer flexible
    /// version is read as 0, skipping unknown tagged fields.</summary>
    public (string GroupId, string? MemberId, IKafkaMessage? Value)? Decode(short keyVersion, ReadOnlyMemory<byte> keyBody, byte[]? value, ValueReader readValue)
    {
        if (ReadKey(keyVersion, keyBody) is not (string groupId, var memberId)) return null;
        if (value is null) return (groupId, memberId, null);
        var (_, body) = GroupRecords.Version(value, 0);
        var r = new KafkaReader(body);
        return (groupId, memberId, readValue(keyVersion, ref r));
    }

    public delegate IKafkaMessage ValueReader(short keyVersion, ref KafkaReader reader);
}
