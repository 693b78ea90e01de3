using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;
using Xunit;

namespace Samsa.Cluster.Tests;

public sealed class KeeperUpdateFeaturesClusterTests(KeeperServer server) : UpdateFeaturesClusterTests(server), IClassFixture<KeeperServer>;

/// <summary>UpdateFeatures on three brokers (ZooKeeper mode): the finalized levels live in the
/// /feature znode, a broker that is not the controller answers NOT_CONTROLLER, and a change made
/// through the controller reaches every broker's ApiVersions with the znode's version as epoch.
/// (Confluent.Kafka 2.16 / librdkafka has no UpdateFeatures admin call; the wire client is used.)</summary>
public abstract class UpdateFeaturesClusterTests(ICoordinationServer server)
{
    private string Server
    {
        get
        {
            Assert.SkipWhen(server.SkipReason is not null, server.SkipReason ?? "");
            return server.Address!;
        }
    }

    private static async Task<ApiVersionsResponse> ApiVersionsAsync(LocalCluster cluster, int id)
    {
        await using var client = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(id));
        return (await client.SendAsync<ApiVersionsResponse>(new ApiVersionsRequest { ClientSoftwareName = "t", ClientSoftwareVersion = "1" }, 4))!;
    }

    private static async Task<UpdateFeaturesResponse> UpdateAsync(LocalCluster cluster, int id, string feature, short level, sbyte type)
    {
        await using var client = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(id));
        return (await client.SendAsync<UpdateFeaturesResponse>(new UpdateFeaturesRequest
        {
            TimeoutMs = 10000,
            FeatureUpdates = [new() { Feature = feature, MaxVersionLevel = level, UpgradeType = type }],
        }, 2))!;
    }

    [Fact]
    public async Task TheControllerChangesALevelAndEveryBrokerReportsItWithTheZnodeVersion()
    {
        await using var cluster = await LocalCluster.StartAsync(Server, 3);
        await LocalCluster.WaitUntilAsync(async () => (await cluster.MetadataAsync(1)).Brokers.Count == 3, TimeSpan.FromSeconds(10), "all brokers visible");
        // The controller creates /feature with the build's defaults.
        await using var zk = await cluster.ZooKeeperAsync();
        await LocalCluster.WaitUntilAsync(async () => await zk.ExistsAsync("/feature") is not null, TimeSpan.FromSeconds(10), "/feature created");
        var node = await LocalCluster.ReadJsonAsync(zk, "/feature");
        Assert.Equal(2, (int)node["version"]!);
        Assert.Equal(1, (int)node["status"]!);
        Assert.Equal(1, (int)node["features"]!["group.version"]!["max_version_level"]!);
        int version0 = (await zk.ExistsAsync("/feature"))!.Version;
        foreach (int id in new[] { 1, 2, 3 })
        {
            await LocalCluster.WaitUntilAsync(async () => (await ApiVersionsAsync(cluster, id)).FinalizedFeaturesEpoch == version0,
                TimeSpan.FromSeconds(10), $"broker {id} reports epoch {version0}");
        }

        int controller = (await cluster.MetadataAsync(1)).ControllerId;
        int other = new[] { 1, 2, 3 }.First(i => i != controller);
        var refused = await UpdateAsync(cluster, other, "transaction.version", 1, 2);
        Assert.Equal((short)ErrorCode.NotController, refused.ErrorCode);
        Assert.Equal(version0, (await zk.ExistsAsync("/feature"))!.Version);

        var done = await UpdateAsync(cluster, controller, "transaction.version", 1, 2);
        Assert.Equal(0, done.ErrorCode);
        var stat = (await zk.ExistsAsync("/feature"))!;
        Assert.Equal(version0 + 1, stat.Version);
        Assert.Equal(1, (int)(await LocalCluster.ReadJsonAsync(zk, "/feature"))["features"]!["transaction.version"]!["max_version_level"]!);
        foreach (int id in new[] { 1, 2, 3 })
        {
            await LocalCluster.WaitUntilAsync(async () =>
            {
                var r = await ApiVersionsAsync(cluster, id);
                return r.FinalizedFeaturesEpoch == stat.Version
                    && r.FinalizedFeatures.Single(f => f.Name == "transaction.version").MaxVersionLevel == 1;
            }, TimeSpan.FromSeconds(10), $"broker {id} reports transaction.version 1 at epoch {stat.Version}");
        }

        // group.version 0 through the controller: KIP-848 heartbeats are refused on every broker.
        Assert.Equal(0, (await UpdateAsync(cluster, controller, "group.version", 0, 2)).ErrorCode);
        foreach (int id in new[] { 1, 2, 3 })
        {
            await LocalCluster.WaitUntilAsync(async () => !(await ApiVersionsAsync(cluster, id)).FinalizedFeatures.Any(f => f.Name == "group.version"),
                TimeSpan.FromSeconds(10), $"broker {id} drops group.version");
            await using var client = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(id));
            var hb = (await client.SendAsync<ConsumerGroupHeartbeatResponse>(new ConsumerGroupHeartbeatRequest
            {
                GroupId = "g", MemberId = Guid.NewGuid().ToString("N")[..22], MemberEpoch = 0, RebalanceTimeoutMs = 30000,
                SubscribedTopicNames = ["t"], TopicPartitions = [],
            }, 1))!;
            Assert.Equal((short)ErrorCode.UnsupportedVersion, hb.ErrorCode);
        }
    }
}
