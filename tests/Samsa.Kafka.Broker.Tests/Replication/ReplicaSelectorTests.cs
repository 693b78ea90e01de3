using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Broker.Replication;

namespace Samsa.Kafka.Broker.Tests.Replication;

/// <summary>RackAwareReplicaSelector chooses as upstream's (KIP-392).</summary>
public sealed class ReplicaSelectorTests
{
    private static readonly TopicPartition Tp = new("t", 0);
    private static readonly ReplicaView Leader = new(1, "a", 100, 0);
    private readonly RackAwareReplicaSelector _selector = new();

    [Fact]
    public void AConsumerWithoutRackOrWithoutAReplicaInItsRackReadsFromTheLeader()
    {
        var replicas = new[] { Leader, new ReplicaView(2, "b", 100, 0) };
        Assert.Same(Leader, _selector.Select(Tp, null, replicas, Leader));
        Assert.Same(Leader, _selector.Select(Tp, "", replicas, Leader));
        Assert.Same(Leader, _selector.Select(Tp, "z", replicas, Leader));
    }

    [Fact]
    public void TheLeaderInTheConsumersRackIsPreferredOverAFollowerThere()
    {
        var replicas = new[] { Leader, new ReplicaView(2, "a", 100, 0) };
        Assert.Same(Leader, _selector.Select(Tp, "a", replicas, Leader));
    }

    [Fact]
    public void AmongFollowersInTheRackTheMostCaughtUpWinsThenTheMostRecentlyCaughtUpThenTheHighestId()
    {
        var behind = new ReplicaView(2, "b", 90, 0);
        var ahead = new ReplicaView(3, "b", 100, 500);
        Assert.Same(ahead, _selector.Select(Tp, "b", [Leader, behind, ahead], Leader));

        var stale = new ReplicaView(4, "b", 100, 900);
        Assert.Same(ahead, _selector.Select(Tp, "b", [Leader, stale, ahead], Leader));

        var twin = new ReplicaView(5, "b", 100, 500);
        Assert.Same(twin, _selector.Select(Tp, "b", [Leader, ahead, twin], Leader));
    }

    [Fact]
    public void TheSettingNamesUpstreamsClassesOnly()
    {
        Assert.Null(ReplicaSelectors.Create(null));
        Assert.Null(ReplicaSelectors.Create("org.apache.kafka.common.replica.LeaderSelector"));
        Assert.IsType<RackAwareReplicaSelector>(ReplicaSelectors.Create("org.apache.kafka.common.replica.RackAwareReplicaSelector"));
        Assert.Throws<InvalidOperationException>(() => ReplicaSelectors.Create("com.example.MySelector"));
    }
}
