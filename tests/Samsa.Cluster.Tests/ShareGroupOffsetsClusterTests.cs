using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Protocol.Messages;
using Xunit;

namespace Samsa.Cluster.Tests;

public sealed class KeeperShareGroupOffsetsClusterTests(KeeperServer server) : ShareGroupOffsetsClusterTests(server), IClassFixture<KeeperServer>;

/// <summary>Alter/Describe/DeleteShareGroupOffsets (KIP-932 admin) on three brokers: each partition's
/// leader serves its share-partition (its state at the share coordinator), so the group's
/// coordinator forwards to the leaders it is not; an admin talking to the coordinator sees every
/// partition's start offset set and deleted.</summary>
public abstract class ShareGroupOffsetsClusterTests(ICoordinationServer server)
{
    private string Server
    {
        get
        {
            Assert.SkipWhen(server.SkipReason is not null, server.SkipReason ?? "");
            return server.Address!;
        }
    }

    private static async Task<List<(int Partition, long Start, long Lag, short Error)>> DescribeAsync(KafkaWireClient c, string group, string topic) =>
        (await c.SendAsync<DescribeShareGroupOffsetsResponse>(new DescribeShareGroupOffsetsRequest
        {
            Groups = [new DescribeShareGroupOffsetsRequest.DescribeShareGroupOffsetsRequestGroup
            {
                GroupId = group, Topics = [new DescribeShareGroupOffsetsRequest.DescribeShareGroupOffsetsRequestTopic { TopicName = topic, Partitions = [0, 1, 2] }],
            }],
        }, 1))!.Groups.Single().Topics.Single().Partitions.OrderBy(p => p.PartitionIndex)
            .Select(p => (p.PartitionIndex, p.StartOffset, p.Lag, p.ErrorCode)).ToList();

    [Fact]
    public async Task TheCoordinatorSetsAndDeletesStartOffsetsOnEveryLeader()
    {
        await using var cluster = await LocalCluster.StartAsync(Server, 3);
        // Broker 1 places the replicas: it must know brokers 2 and 3 first.
        await LocalCluster.WaitUntilAsync(async () => (await cluster.MetadataAsync(1)).Brokers.Count == 3, TimeSpan.FromSeconds(10), "all brokers visible");
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.Bootstrap(1) }).Build())
            await admin.CreateTopicsAsync([new TopicSpecification
            {
                Name = "q", NumPartitions = 3,
                ReplicasAssignments = new Dictionary<int, List<int>> { [0] = [1], [1] = [2], [2] = [3] },
            }]);
        await cluster.LedMetadataAsync(1, "q", 3);
        using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = cluster.Bootstrap(1) }).Build())
        {
            for (int p = 0; p < 3; p++)
                for (int i = 0; i < 5; i++)
                    await producer.ProduceAsync(new TopicPartition("q", p), new Message<Null, string> { Value = $"r{p}-{i}" });
        }
        const string group = "sg-admin";
        int coordinator = await ClientClusterTests.CoordinatorOfAsync(cluster, group, 0);
        int other = coordinator % 3 + 1;
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(coordinator));

        var alter = new AlterShareGroupOffsetsRequest
        {
            GroupId = group,
            Topics = [new AlterShareGroupOffsetsRequest.AlterShareGroupOffsetsRequestTopic
            {
                TopicName = "q",
                Partitions = [.. Enumerable.Range(0, 3).Select(p => new AlterShareGroupOffsetsRequest.AlterShareGroupOffsetsRequestPartition { PartitionIndex = p, StartOffset = 2 })],
            }],
        };
        // Another broker is not the coordinator, even for the partition it leads.
        await using (var o = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(other)))
            Assert.Equal((short)16, (await o.SendAsync<AlterShareGroupOffsetsResponse>(alter, 0))!.ErrorCode);   // NOT_COORDINATOR

        var r = (await c.SendAsync<AlterShareGroupOffsetsResponse>(alter, 0))!;
        Assert.Equal(0, r.ErrorCode);
        Assert.Equal([(0, (short)0), (1, (short)0), (2, (short)0)],
            r.Responses.Single().Partitions.OrderBy(p => p.PartitionIndex).Select(p => (p.PartitionIndex, p.ErrorCode)).ToList());
        // Each leader holds its share-partition at 2: 3 of the 5 records are left.
        Assert.Equal([(0, 2L, 3L, (short)0), (1, 2L, 3L, (short)0), (2, 2L, 3L, (short)0)], await DescribeAsync(c, group, "q"));
        var topicId = cluster[1].Replicas.GetTopic("q")!.Id;
        for (int p = 0; p < 3; p++) Assert.Equal(2, cluster[p + 1].Shares.Find(group, topicId, p)!.StartOffset);

        var d = (await c.SendAsync<DeleteShareGroupOffsetsResponse>(new DeleteShareGroupOffsetsRequest
        {
            GroupId = group, Topics = [new DeleteShareGroupOffsetsRequest.DeleteShareGroupOffsetsRequestTopic { TopicName = "q" }],
        }, 0))!;
        Assert.Equal((0, (short)0), (d.ErrorCode, d.Responses.Single().ErrorCode));
        Assert.Equal([(0, -1L, -1L, (short)0), (1, -1L, -1L, (short)0), (2, -1L, -1L, (short)0)], await DescribeAsync(c, group, "q"));
        for (int p = 0; p < 3; p++) Assert.Null(cluster[p + 1].Shares.Find(group, topicId, p));
    }
}
