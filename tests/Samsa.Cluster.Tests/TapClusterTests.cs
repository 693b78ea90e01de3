using System.Text.Json;
using Confluent.Kafka;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Protocol.Messages;
using Xunit;

namespace Samsa.Cluster.Tests;

/// <summary>Issue #20's request tap on three brokers: a producer bootstrapped at a broker that
/// does not lead the partition asks that broker for Metadata and sends its Produce to the leader,
/// and each broker's /tap shows what it was sent; <c>samsa tap</c> prints the leader's.</summary>
public sealed class TapClusterTests(KeeperServer server) : IClassFixture<KeeperServer>
{
    private static async Task<JsonElement> TapAsync(Samsa.Kafka.Broker.KafkaBroker broker, string query = "")
    {
        using var http = new HttpClient();
        return JsonDocument.Parse(await http.GetStringAsync($"http://127.0.0.1:{broker.MetricsEndPoint!.Port}/tap{query}")).RootElement.Clone();
    }

    private static List<JsonElement> EntriesOf(JsonElement tap, string clientId) =>
        [.. tap.GetProperty("connections").EnumerateArray()
            .Where(c => c.GetProperty("clientId").GetString() == clientId)
            .SelectMany(c => c.GetProperty("entries").EnumerateArray())];

    [Fact]
    public async Task BootstrapBrokerSeesMetadataAndTheLeaderSeesTheProduce()
    {
        await using var cluster = await LocalCluster.StartAsync(server.Address!, 3, brokerConfig: new Dictionary<string, string>
        {
            ["samsa.metrics.port"] = "0", ["samsa.metrics.host"] = "127.0.0.1", ["samsa.tap.enabled"] = "true",
        });
        await LocalCluster.WaitUntilAsync(async () => (await cluster.MetadataAsync(1)).Brokers.Count == 3, TimeSpan.FromSeconds(10), "all brokers visible");
        await using (var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(1)))
        {
            var r = await c.SendAsync<CreateTopicsResponse>(new CreateTopicsRequest
            {
                TimeoutMs = 30000, Topics = [new() { Name = "tap-led", NumPartitions = 1, ReplicationFactor = 1 }],
            }, 7);
            Assert.Equal(0, r!.Topics[0].ErrorCode);
        }
        int leader = 0;
        await LocalCluster.WaitUntilAsync(async () =>
        {
            var md = await cluster.MetadataAsync(1, "tap-led");
            leader = md.Topics[0].Partitions.Single().LeaderId;
            return leader > 0 && cluster[leader].Replicas.GetPartition("tap-led", 0) is { IsLeader: true };
        }, TimeSpan.FromSeconds(10), "leader of tap-led-0");
        int bootstrap = new[] { 1, 2, 3 }.First(id => id != leader);

        using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig
               {
                   BootstrapServers = cluster.Bootstrap(bootstrap), ClientId = "tap-cluster-producer", Acks = Acks.Leader,
               }).Build())
        {
            var dr = await producer.ProduceAsync("tap-led", new Message<Null, string> { Value = "to-the-leader" });
            Assert.Equal(PersistenceStatus.Persisted, dr.Status);
        }

        var atBootstrap = EntriesOf(await TapAsync(cluster[bootstrap]), "tap-cluster-producer");
        Assert.Contains(atBootstrap, e => e.GetProperty("api").GetString() == "Metadata");
        Assert.DoesNotContain(atBootstrap, e => e.GetProperty("api").GetString() == "Produce");
        var md = atBootstrap.Last(e => e.GetProperty("api").GetString() == "Metadata").GetProperty("response");
        Assert.Equal(3, md.GetProperty("brokers").GetArrayLength());

        var atLeader = EntriesOf(await TapAsync(cluster[leader], "?api=Produce"), "tap-cluster-producer");
        var produce = Assert.Single(atLeader);
        Assert.Equal("tap-led", produce.GetProperty("request").GetProperty("topicData")[0].GetProperty("name").GetString());
        Assert.Equal(1, produce.GetProperty("request").GetProperty("acks").GetInt32());
        Assert.Equal(1, produce.GetProperty("request").GetProperty("topicData")[0].GetProperty("partitionData")[0].GetProperty("records").GetProperty("records").GetInt64());
        Assert.Equal(0, produce.GetProperty("response").GetProperty("responses")[0].GetProperty("partitionResponses")[0].GetProperty("errorCode").GetInt32());

        // `samsa tap` prints the leader's Produce as one line: connection, client, api and version, corr id, latency, errors
        var (exit, output, error) = await AdminCommandsClusterTests.SamsaAsync("tap", "--url", $"http://127.0.0.1:{cluster[leader].MetricsEndPoint!.Port}", "--api", "Produce");
        Assert.True(exit == 0, error);
        var line = Assert.Single(output.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.Contains("tap-cluster-producer", StringComparison.Ordinal));
        Assert.Matches(@"^\d\d:\d\d:\d\d\.\d{3} \S+ tap-cluster-producer Produce v\d+ corr=\d+ [\d.]+ms ok$", line);
        // a bad filter: the broker answers 400, the command exits 1 with its reason
        var (offExit, _, offError) = await AdminCommandsClusterTests.SamsaAsync("tap", "--url", $"http://127.0.0.1:{cluster[leader].MetricsEndPoint!.Port}", "--api", "NoSuchApi");
        Assert.Equal(1, offExit);
        Assert.Contains("unknown api", offError);
    }
}
