using Samsa.Kafka.Protocol;

namespace Samsa.Kafka.Broker.Groups;

/// <summary>What the KIP-848 consumer groups and the KIP-1071 streams groups do alike in the
/// coordinator: writing a change's records, and the classic entry's view of the group.</summary>
public sealed partial class GroupCoordinator
{
    /// <summary>
    /// Writes the records of one consumer or streams group change to the group's
    /// <c>__consumer_offsets</c> partition as one batch, in upstream's order: the classic group's
    /// tombstone (a group converted from an empty classic group), removed members' tombstones,
    /// member metadata, <paramref name="beforeEpoch"/> (the streams topology), the group epoch, the
    /// members' targets, the target assignment epoch, current assignments. Null on success, else
    /// the error the client gets (COORDINATOR_NOT_AVAILABLE / NOT_COORDINATOR as for classic
    /// groups). The in-memory change is not rolled back on a failed append (upstream reverts to its
    /// snapshot); the next successful write carries the state again.
    /// </summary>
    private ErrorCode? PersistModern<TRecords, TGroup, TMember, TAssignment>(TGroup group, ModernGroupChanges changes,
        CoordinatorRecord? beforeEpoch, string kind)
        where TRecords : IModernGroupRecords<TGroup, TMember, TAssignment>
        where TGroup : ModernGroup<TMember, TAssignment>
        where TMember : ModernMember<TAssignment>
        where TAssignment : class, IAssignmentSet<TAssignment>, new()
    {
        var records = new List<CoordinatorRecord>();
        if (changes.ClassicTombstone) records.Add(GroupRecords.GroupTombstone(group.GroupId));
        foreach (var id in changes.RemovedMembers)
            if (!group.Members.ContainsKey(id)) records.AddRange(TRecords.MemberTombstones(group.GroupId, id));
        foreach (var id in changes.Members)
            if (group.Get(id) is { } m) records.Add(TRecords.Member(group.GroupId, m));
        if (beforeEpoch is { } extra) records.Add(extra);
        if (changes.GroupMetadata) records.Add(TRecords.Epoch(group));
        foreach (var id in changes.TargetMembers)
            if (group.TargetAssignment.TryGetValue(id, out var t)) records.Add(TRecords.TargetMember(group.GroupId, id, t));
        if (changes.TargetMetadata) records.Add(TRecords.TargetEpoch(group));
        foreach (var id in changes.CurrentAssignments)
            if (group.Get(id) is { } m) records.Add(TRecords.Current(group.GroupId, m));
        if (records.Count == 0) return null;
        var error = MapGroupAppendError(_log.Append(PartitionFor(group.GroupId, _shards.Count), records));
        if (error == ErrorCode.None) return null;
        _logger?.Invoke($"failed to write records of {kind} group {group.GroupId}: {error}");
        return error;
    }

    /// <summary>Keeps the classic view of a consumer or streams group's entry in step: its state
    /// (Empty or not, for retention and DeleteGroups) and the topics it reads (for offset retention
    /// and OffsetDelete).</summary>
    private static void UpdateModernMirror(ClassicGroup holder, int size, HashSet<string> topics, long now)
    {
        var state = size == 0 ? GroupState.Empty : GroupState.Stable;
        if (!holder.Is(state)) holder.TransitionTo(state, now);
        holder.SubscribedTopics = topics;
    }
}
