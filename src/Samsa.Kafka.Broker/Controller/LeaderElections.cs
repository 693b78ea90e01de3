using Samsa.Kafka.Broker.Cluster.ZooKeeper;
using Samsa.Kafka.Protocol;

namespace Samsa.Kafka.Broker.Controller;

/// <summary>ElectLeaders' election_type (KIP-460): v0 requests always mean PREFERRED.</summary>
public enum ElectionType : sbyte
{
    Preferred = 0,
    Unclean = 1,
}

/// <summary>The outcome of one partition's election: an error, or the state to write
/// (conditional on <see cref="ZkVersion"/>) with its new leader.</summary>
public readonly record struct ElectionOutcome(ErrorCode Error, string? Message, ZkData.PartitionState? Next, int ZkVersion)
{
    public int Leader => Next?.Leader ?? -1;
    public static ElectionOutcome Fail(ErrorCode error, string? message = null) => new(error, message, null, -1);
}

/// <summary>
/// The controller's leader elections besides the offline one in <see cref="ZkController"/>'s
/// reconciliation: preferred and unclean elections on request (ElectLeaders,
/// /admin/preferred_replica_election), the auto leader rebalance, and controlled shutdown. Pure
/// functions of a <see cref="ClusterView"/>: the caller writes the resulting states with the
/// controller's epoch fencing. A broker counts as live when registered and not shutting down
/// (upstream ControllerContext.isReplicaOnline excludes shutting-down brokers).
/// </summary>
public static class LeaderElections
{
    private static bool IsLive(ClusterView view, ISet<int> shuttingDown, int id) =>
        view.Brokers.ContainsKey(id) && !shuttingDown.Contains(id);

    /// <summary>One partition, as upstream KafkaController.processReplicaLeaderElection decides it.</summary>
    public static ElectionOutcome Elect(ClusterView view, string topic, int partition, ElectionType type, int controllerEpoch, ISet<int> shuttingDown)
    {
        if (!view.Topics.TryGetValue(topic, out var t) || !t.Assignment.TryGetValue(partition, out var replicas)
            || !t.States.TryGetValue(partition, out var entry))
            return ElectionOutcome.Fail(ErrorCode.UnknownTopicOrPartition, "The partition does not exist.");
        if (view.PendingDeletes.Contains(topic))
            return ElectionOutcome.Fail(ErrorCode.InvalidTopicException, "The topic is being deleted");
        var s = entry.State;
        switch (type)
        {
            case ElectionType.Preferred:
            {
                // Upstream preferredReplicaPartitionLeaderElection: the first assigned replica,
                // only when it is live and in the ISR; the ISR stays as it is.
                int preferred = replicas.Count > 0 ? replicas[0] : -1;
                if (s.Leader == preferred) return ElectionOutcome.Fail(ErrorCode.ElectionNotNeeded);
                if (preferred < 0 || !IsLive(view, shuttingDown, preferred) || !s.Isr.Contains(preferred))
                    return ElectionOutcome.Fail(ErrorCode.PreferredLeaderNotAvailable,
                        $"Failed to elect leader for partition {topic}-{partition} under strategy PreferredReplicaPartitionLeaderElectionStrategy");
                return new ElectionOutcome(ErrorCode.None, null, s with { Leader = preferred, LeaderEpoch = s.LeaderEpoch + 1, ControllerEpoch = controllerEpoch }, entry.ZkVersion);
            }
            case ElectionType.Unclean:
            {
                // Needed only when the partition has no live leader (upstream); then the offline
                // election with unclean allowed: a live ISR member first, else any live replica,
                // which becomes the whole ISR.
                if (s.Leader >= 0 && view.Brokers.ContainsKey(s.Leader)) return ElectionOutcome.Fail(ErrorCode.ElectionNotNeeded);
                var liveIsr = s.Isr.Where(r => IsLive(view, shuttingDown, r)).ToList();
                int leader = replicas.FirstOrDefault(r => liveIsr.Contains(r), -1);
                if (leader >= 0)
                    return new ElectionOutcome(ErrorCode.None, null, new ZkData.PartitionState(leader, s.LeaderEpoch + 1, liveIsr, controllerEpoch), entry.ZkVersion);
                leader = replicas.FirstOrDefault(r => IsLive(view, shuttingDown, r), -1);
                if (leader >= 0)
                    return new ElectionOutcome(ErrorCode.None, null, new ZkData.PartitionState(leader, s.LeaderEpoch + 1, [leader], controllerEpoch), entry.ZkVersion);
                return ElectionOutcome.Fail(ErrorCode.EligibleLeadersNotAvailable,
                    $"Failed to elect leader for partition {topic}-{partition} under strategy OfflinePartitionLeaderElectionStrategy(true)");
            }
            default:
                return ElectionOutcome.Fail(ErrorCode.InvalidRequest, $"Unknown election type {(sbyte)type}");
        }
    }

    /// <summary>Every partition with a state, outside topics being deleted (an ElectLeaders
    /// request with null topic_partitions means these).</summary>
    public static IEnumerable<(string Topic, int Partition)> AllPartitions(ClusterView view) =>
        view.Topics.Values.Where(t => !view.PendingDeletes.Contains(t.Name))
            .SelectMany(t => t.States.Keys.Order().Select(p => (t.Name, p)));

    /// <summary>
    /// The auto leader rebalance (upstream checkAndTriggerAutoLeaderRebalance): partitions are
    /// grouped by their preferred replica; a broker whose share of such partitions led by someone
    /// else exceeds leader.imbalance.per.broker.percentage gets back those it can lead (live and
    /// in the ISR).
    /// </summary>
    public static List<(string Topic, int Partition)> RebalanceCandidates(ClusterView view, int imbalancePercentage, ISet<int> shuttingDown)
    {
        var byPreferred = new Dictionary<int, List<(string Topic, int Partition, PartitionStateEntry Entry)>>();
        foreach (var t in view.Topics.Values)
        {
            if (view.PendingDeletes.Contains(t.Name)) continue;
            foreach (var (p, replicas) in t.Assignment)
            {
                if (replicas.Count == 0 || !t.States.TryGetValue(p, out var entry)) continue;
                if (!byPreferred.TryGetValue(replicas[0], out var list)) byPreferred[replicas[0]] = list = [];
                list.Add((t.Name, p, entry));
            }
        }
        var result = new List<(string, int)>();
        foreach (var (preferred, partitions) in byPreferred)
        {
            var notLed = partitions.Where(x => x.Entry.State.Leader != preferred).ToList();
            double ratio = (double)notLed.Count / partitions.Count;
            if (ratio <= imbalancePercentage / 100.0) continue;
            foreach (var x in notLed)
                if (IsLive(view, shuttingDown, preferred) && x.Entry.State.Isr.Contains(preferred))
                    result.Add((x.Topic, x.Partition));
        }
        return result;
    }

    /// <summary>
    /// Controlled shutdown of <paramref name="brokerId"/> (upstream KafkaController.doControlledShutdown),
    /// for partitions with more than one replica: those it leads get the first assigned replica
    /// that is live, in the ISR and not shutting down (upstream
    /// ControlledShutdownPartitionLeaderElectionStrategy), and shutting-down brokers leave the
    /// ISR; those it follows drop it from the ISR (upstream OfflineReplica, which keeps a
    /// one-member ISR as it is). Returns the states to write and the partitions it still leads.
    /// </summary>
    public static (List<(string Topic, int Partition, ZkData.PartitionState Next, int ZkVersion)> Changes, List<(string Topic, int Partition)> Remaining)
        ControlledShutdown(ClusterView view, int brokerId, int controllerEpoch, ISet<int> shuttingDown)
    {
        var changes = new List<(string, int, ZkData.PartitionState, int)>();
        var remaining = new List<(string, int)>();
        foreach (var t in view.Topics.Values)
        {
            if (view.PendingDeletes.Contains(t.Name)) continue;
            foreach (var (p, replicas) in t.Assignment)
            {
                if (replicas.Count <= 1 || !replicas.Contains(brokerId) || !t.States.TryGetValue(p, out var entry)) continue;
                var s = entry.State;
                if (s.Leader == brokerId)
                {
                    int leader = replicas.FirstOrDefault(r => r != brokerId && IsLive(view, shuttingDown, r) && s.Isr.Contains(r), -1);
                    if (leader < 0)
                    {
                        remaining.Add((t.Name, p));
                        continue;
                    }
                    var isr = s.Isr.Where(r => r != brokerId && !shuttingDown.Contains(r)).ToList();
                    changes.Add((t.Name, p, new ZkData.PartitionState(leader, s.LeaderEpoch + 1, isr, controllerEpoch), entry.ZkVersion));
                }
                else if (s.Isr.Contains(brokerId) && s.Isr.Count > 1)
                {
                    var isr = s.Isr.Where(r => r != brokerId).ToList();
                    changes.Add((t.Name, p, s with { LeaderEpoch = s.LeaderEpoch + 1, Isr = isr, ControllerEpoch = controllerEpoch }, entry.ZkVersion));
                }
            }
        }
        return (changes, remaining);
    }
}
