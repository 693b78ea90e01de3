using Samsa.Kafka.Broker.Cluster.ZooKeeper;
using Xunit;

namespace Samsa.Cluster.Tests;

public class ReplicaAssignmentTests
{
    [Fact]
    public void WithoutRacksTheLayoutIsUpstreams()
    {
        // Upstream's AdminUtils with brokers 0-4, 10 partitions, 3 replicas, start index 0.
        var brokers = Enumerable.Range(0, 5).Select(i => (i, (string?)null)).ToList();
        var a = ReplicaAssignment.Assign(brokers, 10, 3, fixedStartIndex: 0);
        int[][] expected =
        [
            [0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 0], [4, 0, 1],
            [0, 2, 3], [1, 3, 4], [2, 4, 0], [3, 0, 1], [4, 1, 2],
        ];
        Assert.Equal(expected.Length, a.Count);
        for (int p = 0; p < expected.Length; p++) Assert.Equal(expected[p], a[p]);
    }

    [Fact]
    public void WithRacksEveryPartitionSpansAsManyRacksAsItHasReplicas()
    {
        var brokers = new List<(int, string?)> { (0, "a"), (1, "a"), (2, "b"), (3, "b"), (4, "c"), (5, "c") };
        var a = ReplicaAssignment.Assign(brokers, 12, 3);
        var rack = brokers.ToDictionary(b => b.Item1, b => b.Item2);
        Assert.All(a.Values, r =>
        {
            Assert.Equal(3, r.Distinct().Count());
            Assert.Equal(3, r.Select(b => rack[b]).Distinct().Count());
        });
        // Leadership is balanced: each broker is first replica of two partitions.
        Assert.All(a.Values.GroupBy(r => r[0]), g => Assert.Equal(2, g.Count()));
    }

    [Fact]
    public void RackAlternationTakesOneBrokerPerRackInTurn()
    {
        var brokers = new List<(int, string?)> { (1, "a"), (2, "a"), (3, "b"), (4, "c"), (5, "c") };
        Assert.Equal([1, 3, 4, 2, 5], ReplicaAssignment.RackAlternated(brokers));
    }

    [Fact]
    public void ReplicationFactorAboveBrokerCountIsRefused()
    {
        var e = Assert.Throws<ReplicaAssignment.AssignmentException>(() => ReplicaAssignment.Assign([(1, null), (2, null)], 3, 3));
        Assert.Equal("Replication factor: 3 larger than available brokers: 2.", e.Message);
        Assert.Throws<ReplicaAssignment.AssignmentException>(() => ReplicaAssignment.Assign([(1, "a"), (2, null)], 3, 1));
    }
}

public class ZkDataTests
{
    [Fact]
    public void BrokerRegistrationRoundTripsEndpointsAndRack()
    {
        var data = ZkData.EncodeBroker([new Samsa.Kafka.Broker.Config.ListenerEndpoint("PLAINTEXT", "127.0.0.1", 9093)], "rack-x");
        var reg = ZkData.DecodeBroker(7, data)!;
        Assert.Equal(7, reg.Id);
        Assert.Equal("rack-x", reg.Rack);
        Assert.Equal(("127.0.0.1", 9093), (reg.Endpoints[0].Host, reg.Endpoints[0].Port));
    }

    [Fact]
    public void TwoRacksOfUnequalSizeStillGetOneReplicaEach()
    {
        var brokers = new List<(int, string?)> { (1, "a"), (2, "a"), (3, "b") };
        for (int start = 0; start < 3; start++)
        {
            var a = ReplicaAssignment.Assign(brokers, 6, 2, fixedStartIndex: start);
            Assert.All(a.Values, r => Assert.Contains(3, r));
        }
    }
}
