using System.Globalization;
using Samsa.Kafka.Broker;
using Samsa.Kafka.Broker.Config;
using Samsa.Keeper.Server;

namespace Samsa.Host;

/// <summary>
/// <c>samsa dev --brokers N</c> (N &gt; 1): the Keeper and N brokers in one process, the brokers in
/// ZooKeeper mode on the Keeper (broker.id 1..N on kafka-port, kafka-port+1, ...; logs in
/// DATA/kafka-ID). The Keeper starts first because the brokers register with it.
/// </summary>
internal static class DevCluster
{
    public static async Task<int> RunAsync(string host, int kafkaPort, int zkPort, string data, int brokers, ShutdownSignal shutdown,
        Func<string, string> formatHost)
    {
        await using var keeperHandle = await DevKeeper.StartAsync(host, zkPort, Path.Combine(data, "keeper"), shutdown.Token);
        int boundZkPort = keeperHandle is KeeperHost kh ? kh.LocalEndPoint.Port : zkPort;
        string connect = $"{formatHost(host)}:{boundZkPort}";
        var started = new List<KafkaBroker>();
        try
        {
            for (int id = 1; id <= brokers; id++)
            {
                int port = kafkaPort == 0 ? 0 : kafkaPort + id - 1;
                var props = new Dictionary<string, string>
                {
                    ["broker.id"] = id.ToString(CultureInfo.InvariantCulture),
                    ["listeners"] = $"PLAINTEXT://{formatHost(host)}:{port.ToString(CultureInfo.InvariantCulture)}",
                    ["log.dirs"] = Path.Combine(data, $"kafka-{id.ToString(CultureInfo.InvariantCulture)}"),
                    ["zookeeper.connect"] = connect,
                    // Replication between brokers is not implemented yet: internal topics keep one replica.
                    ["offsets.topic.replication.factor"] = "1",
                    ["transaction.state.log.replication.factor"] = "1",
                    ["transaction.state.log.min.isr"] = "1",
                };
                var broker = new KafkaBroker(new BrokerConfig(props), log: Console.Error.WriteLine);
                await broker.StartAsync();
                started.Add(broker);
                Console.Out.WriteLine($"kafka listening on {Program.FormatEndPoint(broker.BoundEndPoint)}");
                Console.Out.Flush();
            }
            await shutdown.WaitAsync();
            return 0;
        }
        finally
        {
            for (int i = started.Count - 1; i >= 0; i--) await started[i].DisposeAsync();
        }
    }
}
