using System.Diagnostics;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Keeper.Server;
using Xunit;

namespace Samsa.Cluster.Tests;

/// <summary>
/// Brokers stopped after the ZooKeeper they use has gone must still stop within their
/// controlled-shutdown bounds (upstream KafkaServer.controlledShutdown: at most
/// controlled.shutdown.max.retries attempts, controlled.shutdown.retry.backoff.ms apart, then the
/// shutdown goes on; the ZooKeeper client's close does not wait for a server that is not there).
/// </summary>
public sealed class ShutdownWithoutZooKeeperTests(ITestOutputHelper output)
{
    [Fact]
    public async Task BrokersStopPromptlyAfterTheirKeeperStopped()
    {
        var keeper = await KeeperHost.StartAsync(new KeeperConfig
        {
            DataDir = "", ClientPort = 0, ClientPortAddress = "127.0.0.1", TickTime = 500, MaxClientCnxns = 0, AdminEnableServer = false,
        });
        var keeperStopped = false;
        LocalCluster? cluster = null;
        try
        {
            cluster = await LocalCluster.StartAsync($"127.0.0.1:{keeper.LocalEndPoint.Port}", 3, brokerConfig: new Dictionary<string, string>
            {
                ["controlled.shutdown.max.retries"] = "3",
                ["controlled.shutdown.retry.backoff.ms"] = "500",
            });
            await LocalCluster.WaitUntilAsync(async () => (await cluster.MetadataAsync(1)).Brokers.Count == 3, TimeSpan.FromSeconds(20), "all brokers visible");
            // Every broker leads a partition, so each one has leaderships its controlled shutdown would move.
            await using (var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(1)))
            {
                var r = await c.SendAsync<CreateTopicsResponse>(new CreateTopicsRequest
                {
                    TimeoutMs = 30_000, Topics = [new() { Name = "gone", NumPartitions = 3, ReplicationFactor = 3 }],
                }, 7);
                Assert.Equal(0, r!.Topics[0].ErrorCode);
            }
            await cluster.LedMetadataAsync(1, "gone", 3);

            await keeper.DisposeAsync();
            keeperStopped = true;

            var sw = Stopwatch.StartNew();
            var times = new List<double>();
            foreach (int id in new[] { 1, 2, 3 })
            {
                var one = Stopwatch.StartNew();
                await cluster.StopBrokerAsync(id).WaitAsync(TimeSpan.FromSeconds(120));
                times.Add(one.Elapsed.TotalSeconds);
            }
            sw.Stop();
            output.WriteLine($"brokers stopped without ZooKeeper in {sw.Elapsed.TotalSeconds:F1} s ({string.Join(", ", times.Select(t => $"{t:F1} s"))})");
            // 3 attempts 0.5 s apart, each bounded, plus a bounded session close: a few seconds each.
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(20), $"stopping 3 brokers without ZooKeeper took {sw.Elapsed.TotalSeconds:F1} s\n{cluster.Log()}");
        }
        finally
        {
            if (cluster is not null) await cluster.DisposeAsync();
            if (!keeperStopped) await keeper.DisposeAsync();
        }
    }
}
