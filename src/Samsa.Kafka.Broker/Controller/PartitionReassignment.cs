using Samsa.Kafka.Broker.Cluster.ZooKeeper;
using Samsa.Keeper.Client;
using Samsa.Keeper.Protocol;

namespace Samsa.Kafka.Broker.Controller;

/// <summary>
/// A partition's full replica assignment while it may be moving (upstream
/// kafka.controller.ReplicaAssignment, KIP-455): RS = the replicas, AR = those being added,
/// RR = those being removed. The original set ORS = RS − AR, the target TRS = RS − RR.
/// </summary>
public sealed record ReassigningAssignment(List<int> Replicas, List<int> Adding, List<int> Removing)
{
    public bool IsBeingReassigned => Adding.Count > 0 || Removing.Count > 0;
    public List<int> OriginReplicas => Replicas.Where(r => !Adding.Contains(r)).ToList();
    public List<int> TargetReplicas => Replicas.Where(r => !Removing.Contains(r)).ToList();

    /// <summary>Upstream reassignTo: RS = TRS followed by the rest of ORS, AR = RS − ORS,
    /// RR = RS − TRS. Reassigning to the origin (a cancellation) gives back ORS with nothing moving.</summary>
    public ReassigningAssignment ReassignTo(IReadOnlyList<int> target)
    {
        var origin = OriginReplicas;
        var full = target.Concat(origin).Distinct().ToList();
        return new ReassigningAssignment(full, full.Where(r => !origin.Contains(r)).ToList(), full.Where(r => !target.Contains(r)).ToList());
    }

    public static ReassigningAssignment Of(TopicView topic, int partition) => new(
        topic.Assignment.TryGetValue(partition, out var r) ? r : [],
        topic.AddingReplicas.TryGetValue(partition, out var a) ? a : [],
        topic.RemovingReplicas.TryGetValue(partition, out var rm) ? rm : []);

    public static ReassigningAssignment Of(ZkData.TopicAssignment topic, int partition) => new(
        topic.Partitions.TryGetValue(partition, out var r) ? r : [],
        topic.AddingReplicas.TryGetValue(partition, out var a) ? a : [],
        topic.RemovingReplicas.TryGetValue(partition, out var rm) ? rm : []);
}

/// <summary>
/// The controller's part of partition reassignment (upstream KafkaController.onPartitionReassignment),
/// adapted to Samsa's controller, which reconciles ZooKeeper rather than sending LeaderAndIsr:
/// - Phase A (starting) is one write of the topic znode with RS, AR and RR (done by the
///   AlterPartitionReassignments handler, or here for /admin/reassign_partitions). Brokers see the
///   adding replicas in the assignment through their watch; those create the partition's log and
///   fetch from the leader from its log start; the leader adds each to the ISR once caught up.
/// - Phase B (completing), once TRS ⊆ ISR: in one multi, the partition state gets a leader from
///   TRS (the current one when it stays), ISR ∩ TRS and a bumped leader epoch, and the topic znode
///   gets RS = TRS with the partition's AR/RR dropped. Brokers no longer assigned the partition stop
///   fetching and delete their local log (upstream StopReplica with deletePartition).
/// Because the in-progress state lives only in the topic znode, a new controller resumes every
/// reassignment it finds there (upstream initializePartitionReassignments).
/// </summary>
public static class PartitionReassignment
{
    /// <summary>Ops completing every reassignment whose target replicas are all in the ISR; when there
    /// is none, ops acting on /admin/reassign_partitions. Empty when nothing is to be done.</summary>
    public static async Task<List<Op>> ControllerOpsAsync(KeeperClient zk, ClusterView view, int controllerEpoch, Action<string> log)
    {
        var ops = CompletionOps(view, controllerEpoch, log);
        if (ops.Count == 0 && view.LegacyReassignmentPending) ops = await LegacyOpsAsync(zk, view, log);
        return ops;
    }

    /// <summary>Whether any partition of the topic is being reassigned.</summary>
    public static bool IsReassigning(ClusterView view, string topic) =>
        view.Topics.TryGetValue(topic, out var t) && (t.AddingReplicas.Count > 0 || t.RemovingReplicas.Count > 0);

    internal static List<Op> CompletionOps(ClusterView view, int controllerEpoch, Action<string> log)
    {
        var live = view.Brokers.Keys.ToHashSet();
        var ops = new List<Op>();
        foreach (var topic in view.Topics.Values)
        {
            // Moves of a topic marked for deletion still complete; its deletion waits for them.
            if (topic.Id is not { } id) continue;
            if (topic.AddingReplicas.Count == 0 && topic.RemovingReplicas.Count == 0) continue;
            var partitions = new SortedDictionary<int, List<int>>(topic.Assignment);
            var adding = new SortedDictionary<int, List<int>>(topic.AddingReplicas);
            var removing = new SortedDictionary<int, List<int>>(topic.RemovingReplicas);
            bool changed = false;
            foreach (int p in adding.Keys.Union(removing.Keys).ToList())
            {
                var a = ReassigningAssignment.Of(topic, p);
                if (!a.IsBeingReassigned || !topic.States.TryGetValue(p, out var entry)) continue;
                var target = a.TargetReplicas;
                var s = entry.State;
                if (!target.All(s.Isr.Contains)) continue;   // phase B waits for every target replica in the ISR
                // Upstream ReassignPartitionLeaderElectionStrategy: the first live target replica in the ISR
                // when the current leader leaves (or is offline); otherwise it keeps leading.
                int leader = target.Contains(s.Leader) && live.Contains(s.Leader)
                    ? s.Leader
                    : target.FirstOrDefault(r => live.Contains(r) && s.Isr.Contains(r), -1);
                if (leader < 0) continue;
                var next = new ZkData.PartitionState(leader, s.LeaderEpoch + 1, s.Isr.Where(target.Contains).ToList(), controllerEpoch);
                ops.Add(Op.SetData(ZkData.PartitionStatePath(topic.Name, p), ZkData.EncodePartitionState(next), entry.ZkVersion));
                partitions[p] = target;
                adding.Remove(p);
                removing.Remove(p);
                changed = true;
                log($"reassignment of {topic.Name}-{p} complete: replicas [{string.Join(",", target)}], leader {leader}");
            }
            if (changed)
                ops.Add(Op.SetData(ZkData.Topic(topic.Name), ZkData.EncodeTopic(id, partitions, adding, removing), topic.AssignmentZkVersion));
        }
        return ops;
    }

    /// <summary>Upstream's checks of a requested target (KafkaController.validateReplicas); null when valid.</summary>
    public static string? ValidateTarget(IReadOnlyList<int> target, ReassigningAssignment current, IReadOnlySet<int> liveBrokers)
    {
        if (target.Count == 0) return "Empty replica list specified in partition reassignment.";
        if (target.Distinct().Count() != target.Count)
            return $"Duplicate replica ids in partition reassignment replica list: [{string.Join(", ", target)}]";
        if (target.Any(r => r < 0)) return $"Invalid broker id in replica list: [{string.Join(", ", target)}]";
        var adding = current.ReassignTo(target).Adding;
        if (!adding.All(liveBrokers.Contains))
            return $"Replica assignment has brokers that are not alive. Replica list: [{string.Join(", ", adding)}], " +
                $"live broker list: [{string.Join(", ", liveBrokers.Order())}]";
        return null;
    }

    /// <summary>
    /// The state-znode change that goes with replacing a partition's assignment when replicas leave
    /// it at once (a cancellation drops the adding replicas; a new target can drop replicas an
    /// earlier one was adding): they leave the ISR, and a leader among them gives way to the first
    /// live ISR member of the new assignment, with a bumped leader epoch (upstream
    /// stopRemovedReplicasOfReassignedPartition). Null when the state needs no change.
    /// </summary>
    public static ZkData.PartitionState? StateAfterDroppingReplicas(ZkData.PartitionState state, ReassigningAssignment next,
        IReadOnlyCollection<int> dropped, IReadOnlySet<int> liveBrokers, int controllerEpoch)
    {
        if (dropped.Count == 0 || (!state.Isr.Any(dropped.Contains) && !dropped.Contains(state.Leader))) return null;
        var isr = state.Isr.Where(r => !dropped.Contains(r)).ToList();
        int leader = state.Leader;
        if (dropped.Contains(leader))
            leader = next.Replicas.FirstOrDefault(r => liveBrokers.Contains(r) && isr.Contains(r), -1);
        // With no ISR member left to lead, keep the ISR as it was: the partition goes offline as
        // upstream's controller would leave it rather than losing what the ISR held.
        if (leader < 0) isr = state.Isr.Where(r => !dropped.Contains(r)).DefaultIfEmpty(state.Leader).ToList();
        return new ZkData.PartitionState(leader, state.LeaderEpoch + 1, isr, controllerEpoch);
    }

    /// <summary>
    /// /admin/reassign_partitions (kafka-reassign-partitions.sh --zookeeper before Kafka 2.5): each
    /// entry is started unless the partition already moves towards that target; entries whose
    /// partition reached the target, is unknown, or whose replica list is unusable are dropped;
    /// the znode is deleted once empty (upstream removePartitionFromReassigningPartitions).
    /// </summary>
    private static async Task<List<Op>> LegacyOpsAsync(KeeperClient zk, ClusterView view, Action<string> log)
    {
        byte[] data;
        int version;
        try
        {
            var (d, stat) = await zk.GetDataAsync(ZkData.ReassignPartitions);
            data = d;
            version = stat.Version;
        }
        catch (KeeperException e) when (e.Code == Code.NoNode) { return []; }
        var entries = ZkData.DecodeReassignPartitions(data);
        var ops = new List<Op>();
        if (entries is null)
        {
            log($"{ZkData.ReassignPartitions} holds no readable reassignment; deleting it");
            ops.Add(Op.Delete(ZkData.ReassignPartitions, version));
            return ops;
        }
        var keep = new List<(string Topic, int Partition, List<int> Replicas)>();
        var started = new Dictionary<string, (TopicView Topic, SortedDictionary<int, List<int>> Partitions,
            SortedDictionary<int, List<int>> Adding, SortedDictionary<int, List<int>> Removing)>(StringComparer.Ordinal);
        foreach (var entry in entries)
        {
            if (!view.Topics.TryGetValue(entry.Topic, out var topic) || topic.Id is null || view.PendingDeletes.Contains(entry.Topic)
                || !topic.Assignment.ContainsKey(entry.Partition))
            {
                log($"{ZkData.ReassignPartitions}: {entry.Topic}-{entry.Partition} does not exist; dropped");
                continue;
            }
            if (entry.Replicas.Count == 0 || entry.Replicas.Distinct().Count() != entry.Replicas.Count || entry.Replicas.Any(r => r < 0))
            {
                log($"{ZkData.ReassignPartitions}: invalid replicas for {entry.Topic}-{entry.Partition}; dropped");
                continue;
            }
            var current = ReassigningAssignment.Of(topic, entry.Partition);
            if (!current.IsBeingReassigned && current.Replicas.SequenceEqual(entry.Replicas)) continue;   // done
            keep.Add(entry);
            if (current.IsBeingReassigned && current.TargetReplicas.SequenceEqual(entry.Replicas)) continue;   // under way
            if (!started.TryGetValue(entry.Topic, out var t))
                started[entry.Topic] = t = (topic, new(topic.Assignment), new(topic.AddingReplicas), new(topic.RemovingReplicas));
            var next = current.ReassignTo(entry.Replicas);
            t.Partitions[entry.Partition] = next.Replicas;
            t.Adding[entry.Partition] = next.Adding;
            t.Removing[entry.Partition] = next.Removing;
            if (!next.IsBeingReassigned) keep.Remove(entry);
            log($"reassignment of {entry.Topic}-{entry.Partition} from {ZkData.ReassignPartitions} to [{string.Join(",", entry.Replicas)}] started");
        }
        foreach (var (_, (topic, partitions, adding, removing)) in started)
            ops.Add(Op.SetData(ZkData.Topic(topic.Name), ZkData.EncodeTopic(topic.Id!.Value, partitions, adding, removing), topic.AssignmentZkVersion));
        if (keep.Count == 0) ops.Add(Op.Delete(ZkData.ReassignPartitions, version));
        else if (keep.Count != entries.Count) ops.Add(Op.SetData(ZkData.ReassignPartitions, ZkData.EncodeReassignPartitions(keep), version));
        return ops;
    }
}
