using Samsa.Kafka.Broker.Controller;
using Samsa.Kafka.Protocol;
using Samsa.Keeper.Client;
using Samsa.Keeper.Protocol;

namespace Samsa.Kafka.Broker.Cluster.ZooKeeper;

/// <summary>One partition of an AlterPartitionReassignments request: target replicas, or null to cancel.</summary>
/// <summary>One partition's reassignment. AllowReplicationFactorChange false (AlterPartitionReassignments
/// v1, KIP-860) refuses a target whose size differs from the original replica count.</summary>
public sealed record ReassignmentRequest(string Topic, int Partition, IReadOnlyList<int>? Replicas, bool AllowReplicationFactorChange = true)
{
    /// <summary>KIP-860's check (upstream ReplicationControlManager with allowRFChange false):
    /// INVALID_REPLICATION_FACTOR's message, or null when the target is acceptable. The original
    /// replicas (ORS, i.e. before any reassignment in progress) give the current factor.</summary>
    public string? ReplicationFactorProblem(ReassigningAssignment current) =>
        AllowReplicationFactorChange || Replicas is null || Replicas.Count == current.OriginReplicas.Count ? null
            : $"The replication factor is changed from {current.OriginReplicas.Count} to {Replicas.Count}";
}

public sealed record ReassignmentResult(string Topic, int Partition, ErrorCode Error, string? Message);

/// <summary>A partition being reassigned, as ListPartitionReassignments reports it.</summary>
public sealed record OngoingReassignment(string Topic, int Partition, ReassigningAssignment Assignment);

/// <summary>
/// Partition reassignment requests (KIP-455) on the controller broker. As in upstream's ZooKeeper
/// mode, only the controller takes them (others answer NOT_CONTROLLER and the admin client
/// retries against the controller named in Metadata). Starting or cancelling a reassignment is one
/// multi: a check of /controller_epoch (so a deposed controller writes nothing), the topic znode
/// with the new RS/AR/RR, and for replicas that leave at once (a cancellation drops the adding
/// ones) the partition state without them. The controller's reconciliation completes it later
/// (<see cref="PartitionReassignment"/>).
/// </summary>
public sealed partial class ZkClusterMember
{
    private const int ReassignmentAttempts = 5;

    public async Task<(ErrorCode Error, string? Message, List<ReassignmentResult> Results)> AlterPartitionReassignmentsAsync(
        IReadOnlyList<ReassignmentRequest> requests)
    {
        if (!IsController) return (ErrorCode.NotController, null, []);
        KeeperClient zk;
        try { zk = RequireSession(); }
        catch (KeeperException) { return (ErrorCode.NotController, null, []); }

        var results = new List<ReassignmentResult>();
        var written = new List<(string Topic, int Version)>();
        var accepted = new HashSet<(string, int)>();
        foreach (var group in requests.GroupBy(r => r.Topic, StringComparer.Ordinal))
        {
            for (int attempt = 1; ; attempt++)
            {
                var (data, version) = await GetOrNullAsync(zk, ZkData.Topic(group.Key));
                var current = ZkData.DecodeTopic(data);
                var view = _view;
                var live = view.Brokers.Keys.ToHashSet();
                var topicResults = new List<ReassignmentResult>();
                var ops = new List<Op> { Op.Check(ZkData.ControllerEpoch, _controller.EpochZkVersion) };
                var partitions = current is null ? [] : new SortedDictionary<int, List<int>>(current.Partitions);
                var adding = current is null ? [] : new SortedDictionary<int, List<int>>(current.AddingReplicas);
                var removing = current is null ? [] : new SortedDictionary<int, List<int>>(current.RemovingReplicas);
                bool changed = false;
                foreach (var r in group)
                {
                    if (current?.TopicId is null || view.PendingDeletes.Contains(group.Key) || !partitions.ContainsKey(r.Partition))
                    {
                        topicResults.Add(new(r.Topic, r.Partition, ErrorCode.UnknownTopicOrPartition, "The partition does not exist."));
                        continue;
                    }
                    var a = new ReassigningAssignment(partitions[r.Partition],
                        adding.TryGetValue(r.Partition, out var ad) ? ad : [], removing.TryGetValue(r.Partition, out var rm) ? rm : []);
                    ReassigningAssignment next;
                    if (r.Replicas is { } target)
                    {
                        if (r.ReplicationFactorProblem(a) is { } rfProblem)
                        {
                            topicResults.Add(new(r.Topic, r.Partition, ErrorCode.InvalidReplicationFactor, rfProblem));
                            continue;
                        }
                        if (PartitionReassignment.ValidateTarget(target, a, live) is { } problem)
                        {
                            topicResults.Add(new(r.Topic, r.Partition, ErrorCode.InvalidReplicaAssignment, problem));
                            continue;
                        }
                        next = a.ReassignTo(target);
                    }
                    else if (!a.IsBeingReassigned)
                    {
                        topicResults.Add(new(r.Topic, r.Partition, ErrorCode.NoReassignmentInProgress, null));
                        continue;
                    }
                    else
                    {
                        next = a.ReassignTo(a.OriginReplicas);   // cancellation: back to the original replicas
                    }
                    topicResults.Add(new(r.Topic, r.Partition, ErrorCode.None, null));
                    if (next == a || (next.Replicas.SequenceEqual(a.Replicas) && next.Adding.SequenceEqual(a.Adding) && next.Removing.SequenceEqual(a.Removing)))
                        continue;
                    var dropped = a.Replicas.Where(x => !next.Replicas.Contains(x)).ToList();
                    if (dropped.Count > 0)
                    {
                        var (stateData, stateVersion) = await GetOrNullAsync(zk, ZkData.PartitionStatePath(group.Key, r.Partition));
                        if (ZkData.DecodePartitionState(stateData) is { } state
                            && PartitionReassignment.StateAfterDroppingReplicas(state, next, dropped, live, _controller.Epoch) is { } newState)
                            ops.Add(Op.SetData(ZkData.PartitionStatePath(group.Key, r.Partition), ZkData.EncodePartitionState(newState), stateVersion));
                    }
                    partitions[r.Partition] = next.Replicas;
                    adding[r.Partition] = next.Adding;
                    removing[r.Partition] = next.Removing;
                    changed = true;
                    _broker.Log(r.Replicas is null
                        ? $"reassignment of {r.Topic}-{r.Partition} cancelled: back to [{string.Join(",", next.Replicas)}]"
                        : $"reassignment of {r.Topic}-{r.Partition} to [{string.Join(",", r.Replicas)}] started: replicas [{string.Join(",", next.Replicas)}], adding [{string.Join(",", next.Adding)}], removing [{string.Join(",", next.Removing)}]");
                }
                if (!changed)
                {
                    results.AddRange(topicResults);
                    break;
                }
                ops.Insert(1, Op.SetData(ZkData.Topic(group.Key), ZkData.EncodeTopic(current!.TopicId!.Value, partitions, adding, removing), version));
                try
                {
                    var done = await zk.MultiAsync(ops);
                    written.Add((group.Key, ((OpResult.SetData)done[1]).Stat.Version));
                    results.AddRange(topicResults);
                    foreach (var r in topicResults.Where(x => x.Error == ErrorCode.None)) accepted.Add((r.Topic, r.Partition));
                    break;
                }
                catch (KeeperException e) when (e.Results is { Count: > 0 } res && res[0] is OpResult.Error { Code: Code.BadVersion or Code.NoNode })
                {
                    // /controller_epoch moved: another broker controls now (upstream ControllerMovedException).
                    return (ErrorCode.NotController, null, []);
                }
                catch (KeeperException e) when (e.Code is Code.BadVersion or Code.NoNode && attempt < ReassignmentAttempts)
                {
                    // The controller completed something in the topic meanwhile: read it again.
                }
                catch (KeeperException e) when (e.Code is Code.BadVersion or Code.NoNode)
                {
                    results.AddRange(group.Select(r => new ReassignmentResult(r.Topic, r.Partition, ErrorCode.RequestTimedOut,
                        "The topic kept changing while the reassignment was being written; retry.")));
                    break;
                }
            }
        }
        // The latest request wins over /admin/reassign_partitions (upstream maybeRemoveFromZkReassignment).
        if (accepted.Count > 0) await RemoveFromLegacyReassignmentAsync(zk, accepted);
        // Answer once this broker's view shows the change, so a ListPartitionReassignments that
        // follows sees it (upstream's controller updates its context before answering).
        await WaitForAsync(() => written.All(w => _view.Topics.TryGetValue(w.Topic, out var t) && t.AssignmentZkVersion >= w.Version), AdminWait);
        return (ErrorCode.None, null, results);
    }

    private async Task RemoveFromLegacyReassignmentAsync(KeeperClient zk, HashSet<(string, int)> partitions)
    {
        for (int attempt = 0; attempt < ReassignmentAttempts; attempt++)
        {
            var (data, version) = await GetOrNullAsync(zk, ZkData.ReassignPartitions);
            if (data is null || ZkData.DecodeReassignPartitions(data) is not { } entries) return;
            var keep = entries.Where(e => !partitions.Contains((e.Topic, e.Partition))).ToList();
            if (keep.Count == entries.Count) return;
            try
            {
                if (keep.Count == 0) await zk.DeleteAsync(ZkData.ReassignPartitions, version);
                else await zk.SetDataAsync(ZkData.ReassignPartitions, ZkData.EncodeReassignPartitions(keep), version);
                return;
            }
            catch (KeeperException e) when (e.Code is Code.BadVersion or Code.NoNode) { }
        }
    }

    /// <summary>The reassignments in progress, all or those of the named partitions (partitions not
    /// moving, or unknown, are left out, as upstream's controller does).</summary>
    public (ErrorCode Error, List<OngoingReassignment> Reassignments) ListPartitionReassignments(
        IReadOnlyList<(string Topic, IReadOnlyList<int> Partitions)>? filter)
    {
        if (!IsController) return (ErrorCode.NotController, []);
        var view = _view;
        var result = new List<OngoingReassignment>();
        IEnumerable<(TopicView Topic, int Partition)> candidates = filter is null
            ? view.Topics.Values.SelectMany(t => t.AddingReplicas.Keys.Union(t.RemovingReplicas.Keys).Order().Select(p => (t, p)))
            : filter.Where(f => view.Topics.ContainsKey(f.Topic))
                .SelectMany(f => f.Partitions.Distinct().Select(p => (view.Topics[f.Topic], p)));
        foreach (var (topic, p) in candidates)
        {
            var a = ReassigningAssignment.Of(topic, p);
            if (a.IsBeingReassigned) result.Add(new OngoingReassignment(topic.Name, p, a));
        }
        return (ErrorCode.None, result);
    }

    /// <summary>
    /// Whether this broker keeps a log for the partition: only an assigned replica does. A broker
    /// that a reassignment removed deletes its log (upstream StopReplica with deletePartition=true);
    /// one that is added creates an empty log and fetches from the leader's log start. A log that
    /// holds records although this broker was never an assigned replica in this session is left
    /// alone, as upstream's ZooKeeper mode leaves stray logs.
    /// </summary>
    private void ApplyLocalHosting(Partition partition, IReadOnlyList<int>? previouslyAssigned, IReadOnlyList<int> assigned)
    {
        bool hosted = assigned.Contains(BrokerId);
        if (hosted && !partition.IsHostedLocally)
        {
            _broker.Replicas.HostLocalReplica(partition);
            _broker.Log($"broker {BrokerId} now holds a replica of {partition.TopicPartition}");
        }
        else if (!hosted && partition.IsHostedLocally && !partition.IsLeader
                 && ((previouslyAssigned?.Contains(BrokerId) ?? false) || partition.Log.LogEndOffset == 0))
        {
            _broker.Replicas.DropLocalReplica(partition);
            if (previouslyAssigned?.Contains(BrokerId) ?? false)
                _broker.Log($"broker {BrokerId} no longer holds a replica of {partition.TopicPartition}: local log deleted");
        }
    }
}
