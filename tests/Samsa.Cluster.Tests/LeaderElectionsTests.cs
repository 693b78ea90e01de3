using Samsa.Kafka.Broker.Cluster.ZooKeeper;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Broker.Controller;
using Samsa.Kafka.Protocol;
using Xunit;

namespace Samsa.Cluster.Tests;

/// <summary>The controller's election rules on hand-made cluster views, without ZooKeeper.</summary>
public class LeaderElectionsTests
{
    private static ClusterView View(int[] live, params (string Topic, int Partition, int[] Replicas, int Leader, int[] Isr)[] partitions)
    {
        var view = new ClusterView();
        foreach (int id in live) view.Brokers[id] = new ZkData.BrokerRegistration(id, [new ListenerEndpoint("PLAINTEXT", "127.0.0.1", 9000 + id)], null);
        foreach (var g in partitions.GroupBy(p => p.Topic))
        {
            var t = new TopicView
            {
                Name = g.Key, Id = Guid.NewGuid(), AssignmentZkVersion = 0, Configs = [],
                Assignment = new SortedDictionary<int, List<int>>(g.ToDictionary(p => p.Partition, p => p.Replicas.ToList())),
            };
            foreach (var p in g) t.States[p.Partition] = new PartitionStateEntry(new ZkData.PartitionState(p.Leader, 5, p.Isr.ToList(), 1), 3);
            view.Topics[g.Key] = t;
        }
        return view;
    }

    [Fact]
    public void PreferredElectionNeedsThePreferredReplicaAliveAndInTheIsr()
    {
        var view = View([1, 2, 3], ("t", 0, [1, 2, 3], 2, [1, 2, 3]), ("t", 1, [1, 2, 3], 2, [2, 3]), ("t", 2, [2, 3, 1], 2, [1, 2, 3]));
        var ok = LeaderElections.Elect(view, "t", 0, ElectionType.Preferred, 7, new HashSet<int>());
        Assert.Equal(ErrorCode.None, ok.Error);
        Assert.Equal(new ZkData.PartitionState(1, 6, [1, 2, 3], 7) with { Isr = ok.Next!.Isr }, ok.Next);
        Assert.Equal([1, 2, 3], ok.Next.Isr);
        Assert.Equal(3, ok.ZkVersion);
        Assert.Equal(ErrorCode.PreferredLeaderNotAvailable, LeaderElections.Elect(view, "t", 1, ElectionType.Preferred, 7, new HashSet<int>()).Error);
        Assert.Equal(ErrorCode.ElectionNotNeeded, LeaderElections.Elect(view, "t", 2, ElectionType.Preferred, 7, new HashSet<int>()).Error);
        // A broker in controlled shutdown is not a candidate.
        Assert.Equal(ErrorCode.PreferredLeaderNotAvailable, LeaderElections.Elect(view, "t", 0, ElectionType.Preferred, 7, new HashSet<int> { 1 }).Error);
        Assert.Equal(ErrorCode.UnknownTopicOrPartition, LeaderElections.Elect(view, "t", 9, ElectionType.Preferred, 7, new HashSet<int>()).Error);
        view.PendingDeletes.Add("t");
        Assert.Equal(ErrorCode.InvalidTopicException, LeaderElections.Elect(view, "t", 0, ElectionType.Preferred, 7, new HashSet<int>()).Error);
    }

    [Fact]
    public void UncleanElectionOnlyForPartitionsWithoutALiveLeader()
    {
        // Broker 1 (leader, sole ISR member) is gone; 2 is alive outside the ISR.
        var view = View([2, 3], ("u", 0, [1, 2], -1, [1]), ("u", 1, [3, 2], 3, [3]), ("u", 2, [1, 4], -1, [1]));
        var r = LeaderElections.Elect(view, "u", 0, ElectionType.Unclean, 7, new HashSet<int>());
        Assert.Equal(ErrorCode.None, r.Error);
        Assert.Equal(2, r.Leader);
        Assert.Equal([2], r.Next!.Isr);
        Assert.Equal(ErrorCode.ElectionNotNeeded, LeaderElections.Elect(view, "u", 1, ElectionType.Unclean, 7, new HashSet<int>()).Error);
        Assert.Equal(ErrorCode.EligibleLeadersNotAvailable, LeaderElections.Elect(view, "u", 2, ElectionType.Unclean, 7, new HashSet<int>()).Error);
    }

    [Fact]
    public void TheRebalanceActsOnlyAboveTheImbalanceThreshold()
    {
        // Broker 1 is preferred for 4 partitions and leads 3 (25% imbalance); broker 2 for 1, led by 3 (100%).
        var view = View([1, 2, 3],
            ("a", 0, [1, 2], 1, [1, 2]), ("a", 1, [1, 2], 1, [1, 2]), ("a", 2, [1, 2], 1, [1, 2]), ("a", 3, [1, 3], 3, [1, 3]),
            ("b", 0, [2, 3], 3, [2, 3]));
        Assert.Equal([("a", 3), ("b", 0)], LeaderElections.RebalanceCandidates(view, 10, new HashSet<int>()).Order());
        Assert.Equal([("b", 0)], LeaderElections.RebalanceCandidates(view, 25, new HashSet<int>()));
        Assert.Empty(LeaderElections.RebalanceCandidates(view, 100, new HashSet<int>()));
    }

    [Fact]
    public void ControlledShutdownMovesLeadersDropsFollowersAndReportsTheRest()
    {
        var view = View([1, 2, 3],
            ("c", 0, [1, 2, 3], 1, [1, 2, 3]),   // led by 1: moves to 2
            ("c", 1, [3, 1, 2], 3, [3, 1, 2]),   // followed by 1: 1 leaves the ISR
            ("c", 2, [1, 2], 1, [1]),            // 1 alone in the ISR: remains
            ("c", 3, [2, 1], 2, [2]),            // 1 not in the ISR: unchanged
            ("solo", 0, [1], 1, [1]));           // one replica: not acted on, not reported
        var (changes, remaining) = LeaderElections.ControlledShutdown(view, 1, 7, new HashSet<int> { 1 });
        var byPartition = changes.ToDictionary(c => (c.Topic, c.Partition), c => c.Next);
        Assert.Equal(2, byPartition.Count);
        Assert.Equal(new ZkData.PartitionState(2, 6, [2, 3], 7) with { Isr = byPartition[("c", 0)].Isr }, byPartition[("c", 0)]);
        Assert.Equal([2, 3], byPartition[("c", 0)].Isr);
        Assert.Equal(3, byPartition[("c", 1)].Leader);
        Assert.Equal([3, 2], byPartition[("c", 1)].Isr);
        Assert.Equal([("c", 2)], remaining);
    }
}
