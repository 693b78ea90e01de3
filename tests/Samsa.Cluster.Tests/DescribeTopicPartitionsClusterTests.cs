using System.Text;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Keeper.Client;
using Samsa.Keeper.Protocol;
using Xunit;

namespace Samsa.Cluster.Tests;

public sealed class KeeperDescribeTopicPartitionsClusterTests(KeeperServer server) : DescribeTopicPartitionsClusterTests(server), IClassFixture<KeeperServer>;

/// <summary>Issue #16 area E on three brokers: DescribeTopicPartitions answers a partition whose
/// leader is gone with leader -1 and the replica offline, as upstream's metadata cache does, and
/// client-metrics subscriptions written as ZooKeeper config entities reach every broker.</summary>
public abstract class DescribeTopicPartitionsClusterTests(ICoordinationServer server)
{
    private string Server
    {
        get
        {
            Assert.SkipWhen(server.SkipReason is not null, server.SkipReason ?? "");
            return server.Address!;
        }
    }

    private static async Task<DescribeTopicPartitionsResponse> DescribeAsync(LocalCluster cluster, int brokerId, params string[] topics)
    {
        await using var client = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(brokerId));
        return (await client.SendAsync<DescribeTopicPartitionsResponse>(new DescribeTopicPartitionsRequest
        {
            Topics = topics.Select(t => new DescribeTopicPartitionsRequest.TopicRequest { Name = t }).ToList(),
            ResponsePartitionLimit = 100,
        }, 0))!;
    }

    [Fact]
    public async Task APartitionWhoseOnlyReplicaIsDownHasNoLeaderAndAnOfflineReplica()
    {
        await using var cluster = await LocalCluster.StartAsync(Server, 3);
        // Broker 1 places the replicas: it must know brokers 2 and 3 first.
        await LocalCluster.WaitUntilAsync(async () => (await cluster.MetadataAsync(1)).Brokers.Count == 3, TimeSpan.FromSeconds(10), "all brokers visible");
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.Bootstrap(1) }).Build())
            await admin.CreateTopicsAsync([new TopicSpecification
            {
                Name = "solo", NumPartitions = 2,
                ReplicasAssignments = new Dictionary<int, List<int>> { [0] = [3], [1] = [2] },
            }]);
        await cluster.LedMetadataAsync(1, "solo", 2);
        var before = (await DescribeAsync(cluster, 1, "solo")).Topics.Single();
        Assert.Equal([3, 2], before.Partitions.OrderBy(p => p.PartitionIndex).Select(p => p.LeaderId));

        await cluster.StopBrokerAsync(3);
        DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponseTopic after = null!;
        await LocalCluster.WaitUntilAsync(async () =>
        {
            after = (await DescribeAsync(cluster, 1, "solo")).Topics.Single();
            return after.Partitions.Single(p => p.PartitionIndex == 0).LeaderId == -1;
        }, TimeSpan.FromSeconds(20), "broker 1 sees partition 0 without a leader");
        var p0 = after.Partitions.Single(p => p.PartitionIndex == 0);
        // Upstream's describeTopicResponse leaves the partition error NONE; Metadata says LEADER_NOT_AVAILABLE.
        Assert.Equal((0, -1), (p0.ErrorCode, p0.LeaderId));
        Assert.Equal([3], p0.ReplicaNodes);
        Assert.Equal([3], p0.OfflineReplicas);
        var p1 = after.Partitions.Single(p => p.PartitionIndex == 1);
        Assert.Equal((0, 2), (p1.ErrorCode, p1.LeaderId));
        Assert.Empty(p1.OfflineReplicas);
        var md = (await cluster.MetadataAsync(1, "solo")).Topics[0].Partitions.Single(p => p.PartitionIndex == 0);
        Assert.Equal((short)5, md.ErrorCode);   // LEADER_NOT_AVAILABLE
    }

    [Fact]
    public async Task ClientMetricsSubscriptionsWrittenInZooKeeperReachEveryBroker()
    {
        await using var cluster = await LocalCluster.StartAsync(Server, 3);
        // As kafka-configs.sh --zookeeper would write an entity: the znode, then a change notification.
        await using (var zk = await cluster.ZooKeeperAsync())
        {
            await zk.CreateAsync("/config/client-metrics", null, Acls.OpenAclUnsafe);
            await zk.CreateAsync("/config/client-metrics/everything", Encoding.UTF8.GetBytes("""{"version":1,"config":{"metrics":"*","interval.ms":"1000"}}"""), Acls.OpenAclUnsafe);
            await zk.CreateAsync("/config/changes/config_change_", Encoding.UTF8.GetBytes("""{"version":2,"entity_path":"client-metrics/everything"}"""),
                Acls.OpenAclUnsafe, CreateMode.PersistentSequential);
        }
        await LocalCluster.WaitUntilAsync(() => Task.FromResult(cluster.LiveIds.All(id => cluster[id].ClientTelemetry.SubscriptionNames().Contains("everything"))),
            TimeSpan.FromSeconds(10), "every broker has the subscription");

        // Altered at broker 2 (IncrementalAlterConfigs), listed and described at broker 3.
        await using (var client = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(2)))
        {
            var r = await client.SendAsync<IncrementalAlterConfigsResponse>(new IncrementalAlterConfigsRequest
            {
                Resources = [new() { ResourceType = 16, ResourceName = "everything", Configs = [new() { Name = "interval.ms", Value = "2000", ConfigOperation = 0 }] }],
            }, 1);
            Assert.Equal(0, r!.Responses.Single().ErrorCode);
        }
        await using (var client = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(3)))
        {
            await LocalCluster.WaitUntilAsync(async () =>
            {
                var d = await client.SendAsync<DescribeConfigsResponse>(new DescribeConfigsRequest
                {
                    Resources = [new() { ResourceType = 16, ResourceName = "everything", ConfigurationKeys = null }],
                }, 4);
                return d!.Results.Single().Configs.Any(c => c.Name == "interval.ms" && c.Value == "2000");
            }, TimeSpan.FromSeconds(10), "broker 3 describes the altered interval");
            var listed = await client.SendAsync<ListConfigResourcesResponse>(new ListConfigResourcesRequest(), 0);
            Assert.Equal(["everything"], listed!.ConfigResources.Select(c => c.ResourceName));
            var sub = await client.SendAsync<GetTelemetrySubscriptionsResponse>(new GetTelemetrySubscriptionsRequest(), 0);
            Assert.Equal((0, 2000), (sub!.ErrorCode, sub.PushIntervalMs));
            Assert.Equal(["*"], sub.RequestedMetrics);
        }
    }
}
