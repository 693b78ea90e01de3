using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Tests.Handlers;

/// <summary>ElectLeaders and ControlledShutdown on a single-node broker (no ZooKeeper): it is
/// its own controller and every partition's only replica. The ZooKeeper-mode behaviour is tested
/// in Samsa.Cluster.Tests (LeadershipTests).</summary>
public class LeadershipHandlerTests
{
    [Fact]
    public async Task ElectLeadersFindsNothingToElectOnASingleBroker()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("e", 2);
        foreach (short v in new short[] { 0, 1, 2 })
        {
            var r = (await f.Send<ElectLeadersResponse>(new ElectLeadersRequest
            {
                ElectionType = 0,
                TopicPartitions = [new ElectLeadersRequest.TopicPartitionsData { Topic = "e", Partitions = [0, 1, 5] }],
            }, v))!;
            Assert.Equal(0, r.ErrorCode);
            var results = r.ReplicaElectionResults.Single().PartitionResult.ToDictionary(p => p.PartitionId, p => p.ErrorCode);
            Assert.Equal((short)ErrorCode.ElectionNotNeeded, results[0]);
            Assert.Equal((short)ErrorCode.ElectionNotNeeded, results[1]);
            Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, results[5]);
        }
        // All partitions (null): those needing no election are left out.
        var all = (await f.Send<ElectLeadersResponse>(new ElectLeadersRequest { ElectionType = 1, TopicPartitions = null }, 2))!;
        Assert.Empty(all.ReplicaElectionResults);
        var bad = (await f.Send<ElectLeadersResponse>(new ElectLeadersRequest { ElectionType = 5, TopicPartitions = null }, 1))!;
        Assert.Equal((short)ErrorCode.InvalidRequest, bad.ErrorCode);
    }

    [Fact]
    public async Task ControlledShutdownOfTheOnlyBrokerHasNothingToMove()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("c", 1);
        foreach (short v in new short[] { 0, 1, 2, 3 })
        {
            var self = (await f.Send<ControlledShutdownResponse>(new ControlledShutdownRequest { BrokerId = 1, BrokerEpoch = -1 }, v))!;
            Assert.Equal(0, self.ErrorCode);
            Assert.Empty(self.RemainingPartitions);
            var other = (await f.Send<ControlledShutdownResponse>(new ControlledShutdownRequest { BrokerId = 2 }, v))!;
            Assert.Equal((short)ErrorCode.BrokerNotAvailable, other.ErrorCode);
        }
    }
}
