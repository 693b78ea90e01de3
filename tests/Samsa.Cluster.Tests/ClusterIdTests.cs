using Samsa.Kafka.Broker.Cluster;
using Samsa.Kafka.Broker.Cluster.ZooKeeper;
using Samsa.Keeper.Server;
using Xunit;

namespace Samsa.Cluster.Tests;

/// <summary>
/// meta.properties carries the cluster id learned from ZooKeeper (upstream
/// KafkaServer.checkpointBrokerMetadata), so a restart does not announce a new id each time, and a
/// broker pointed at another cluster's ZooKeeper refuses to start (InconsistentClusterIdException).
/// </summary>
public sealed class ClusterIdTests
{
    [Fact]
    public async Task ClusterIdFromZooKeeperIsStoredOnceAndAMismatchRefusesTheStart()
    {
        var keeper = await KeeperHost.StartAsync(new KeeperConfig
        {
            DataDir = "", ClientPort = 0, ClientPortAddress = "127.0.0.1", TickTime = 500, MaxClientCnxns = 0, AdminEnableServer = false,
        });
        string data = Path.Combine(Path.GetTempPath(), "samsa-clusterid-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using var cluster = await LocalCluster.StartAsync($"127.0.0.1:{keeper.LocalEndPoint.Port}", 2, dataDir: data);
            await using var zk = await cluster.ZooKeeperAsync();
            string zkId = ZkData.DecodeClusterId((await zk.GetDataAsync(ZkData.ClusterId)).Data)!;
            // Broker 2 joined a cluster whose id broker 1 had created: both store ZooKeeper's id.
            foreach (int id in new[] { 1, 2 })
            {
                Assert.Contains($"cluster.id={zkId}\n", File.ReadAllText(Path.Combine(cluster.LogDir(id), "meta.properties")));
                Assert.Equal(zkId, cluster[id].ClusterId);
            }

            await cluster.StopBrokerAsync(2);
            await cluster.StartBrokerAsync(2);
            Assert.Equal(zkId, cluster[2].ClusterId);
            // Announced once (broker 2's first start), not at every restart.
            Assert.Single(cluster.Log().Split('\n'), l => l.StartsWith("cluster id from ZooKeeper", StringComparison.Ordinal));

            // Pointed at a ZooKeeper holding another cluster's id: refused, and meta.properties kept.
            await cluster.StopBrokerAsync(2);
            await zk.SetDataAsync(ZkData.ClusterId, ZkData.EncodeClusterId("OtherClusterIdAAAAAAAA"), -1);
            var e = await Assert.ThrowsAsync<InconsistentClusterIdException>(() => cluster.StartBrokerAsync(2));
            Assert.Equal($"The Cluster ID OtherClusterIdAAAAAAAA doesn't match stored clusterId {zkId} in meta.properties. " +
                "The broker is trying to join the wrong cluster. Configured zookeeper.connect may be wrong.", e.Message);
            Assert.Contains($"cluster.id={zkId}\n", File.ReadAllText(Path.Combine(cluster.LogDir(2), "meta.properties")));
        }
        finally
        {
            await keeper.DisposeAsync();
            try { Directory.Delete(data, recursive: true); } catch (IOException) { }
        }
    }
}
