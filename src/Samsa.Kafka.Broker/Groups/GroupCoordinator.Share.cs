namespace Samsa.Kafka.Broker.Groups;

/// <summary>
/// The share groups' side of the group coordinator (KIP-932): their membership lives in
/// Share/ShareGroupCoordinator (ShareService), but their records share the groups' partitions of
/// <c>__consumer_offsets</c> (upstream's GroupCoordinatorShard replays every group type of a
/// partition). The load and unload of a partition are handed on here; share group records are
/// appended through the same log as the other groups'.
/// </summary>
public sealed partial class GroupCoordinator
{
    /// <summary>A partition was loaded: its share group records (log order) and a test of whether a
    /// group id belongs to that partition. Called under the coordinator's lock, before the
    /// partition serves, so no heartbeat sees the partition without its share groups.</summary>
    public Action<Func<string, bool>, IReadOnlyList<GroupLogEntry.ShareRecord>>? ShareGroupsLoaded { get; set; }

    /// <summary>This broker no longer leads a partition: drop the share groups that belong to it.</summary>
    public Action<Func<string, bool>>? ShareGroupsUnloaded { get; set; }

    private void OnShareGroupsLoaded(int partition, IReadOnlyList<GroupLogEntry.ShareRecord> records)
    {
        int count = _shards.Count;
        ShareGroupsLoaded?.Invoke(id => PartitionFor(id, count) == partition, records);
    }

    private void OnShareGroupsUnloaded(int partition)
    {
        int count = _shards.Count;
        ShareGroupsUnloaded?.Invoke(id => PartitionFor(id, count) == partition);
    }

    /// <summary>Appends a share group's records to its partition as one batch; the error a group
    /// request answers (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, ...) or NONE.</summary>
    /// <remarks>
    /// Called under the share group coordinator's lock, so it must not take this coordinator's
    /// (a partition load holds this one while it installs share groups): the partition count is
    /// read without it (it changes only when the offsets topic is created or grows).</remarks>
    public Samsa.Kafka.Protocol.ErrorCode AppendShareGroupRecords(string groupId, IReadOnlyList<CoordinatorRecord> records) =>
        MapGroupAppendError(_log.Append(PartitionFor(groupId, _shards.Count), records));

    /// <summary>NONE when this broker serves <paramref name="groupId"/>'s partition, else
    /// COORDINATOR_LOAD_IN_PROGRESS while it is being loaded, NOT_COORDINATOR otherwise.</summary>
    public Samsa.Kafka.Protocol.ErrorCode ShareGroupStatus(string groupId)
    {
        lock (_gate) return ValidateGroupStatus(groupId, allowEmptyId: false) ?? Samsa.Kafka.Protocol.ErrorCode.None;
    }
}
