using System.Globalization;
using System.Text;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Records;
using Samsa.Kafka.Broker;
using Xunit;

namespace Samsa.Cluster.Tests;

/// <summary>Issue #20: three brokers' /metrics, summed, account for a known load spread over them.</summary>
public sealed class MetricsClusterTests(KeeperServer server) : IClassFixture<KeeperServer>
{
    private static async Task<Dictionary<string, double>> ScrapeAsync(KafkaBroker broker)
    {
        using var http = new HttpClient();
        var result = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var line in (await http.GetStringAsync($"http://127.0.0.1:{broker.MetricsEndPoint!.Port}/metrics")).Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#') continue;
            int space = line.LastIndexOf(' ');
            result[line[..space]] = double.Parse(line[(space + 1)..], CultureInfo.InvariantCulture);
        }
        return result;
    }

    [Fact]
    public async Task PerBrokerCountersSumToTheLoad()
    {
        await using var cluster = await LocalCluster.StartAsync(server.Address!, 3,
            brokerConfig: new Dictionary<string, string> { ["samsa.metrics.port"] = "0", ["samsa.metrics.host"] = "127.0.0.1" });
        await LocalCluster.WaitUntilAsync(async () => (await cluster.MetadataAsync(1)).Brokers.Count == 3, TimeSpan.FromSeconds(10), "all brokers visible");
        await using (var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(1)))
        {
            var r = await c.SendAsync<CreateTopicsResponse>(new CreateTopicsRequest
            {
                TimeoutMs = 30000, Topics = [new() { Name = "spread", NumPartitions = 6, ReplicationFactor = 1 }],
            }, 7);
            Assert.Equal(0, r!.Topics[0].ErrorCode);
        }
        // partition p gets p+1 produce requests of 4 records, each sent to the partition's leader
        long bytes = 0;
        int requests = 0;
        for (int p = 0; p < 6; p++)
        {
            int leader = 0;
            await LocalCluster.WaitUntilAsync(async () =>
            {
                var md = await cluster.MetadataAsync(1, "spread");
                leader = md.Topics[0].Partitions.Single(x => x.PartitionIndex == p).LeaderId;
                return leader > 0 && cluster[leader].Replicas.GetPartition("spread", p) is { IsLeader: true };
            }, TimeSpan.FromSeconds(10), "leader of spread-" + p);
            await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(leader));
            for (int i = 0; i <= p; i++)
            {
                var batch = RecordBatchBuilder.Build(Enumerable.Range(0, 4).Select(j => ((byte[]?)null, (byte[]?)Encoding.UTF8.GetBytes($"p{p}-{i}-{j}"))).ToList(),
                    DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
                var r = await c.SendAsync<ProduceResponse>(new ProduceRequest
                {
                    Acks = 1, TimeoutMs = 10000,
                    TopicData = [new() { Name = "spread", PartitionData = [new() { Index = p, Records = batch }] }],
                }, 9);
                Assert.Equal(0, r!.Responses[0].PartitionResponses[0].ErrorCode);
                bytes += batch.Length;
                requests++;
            }
        }
        var scrapes = new List<Dictionary<string, double>>();
        foreach (int id in new[] { 1, 2, 3 }) scrapes.Add(await ScrapeAsync(cluster[id]));
        double Sum(string key) => scrapes.Sum(m => m.GetValueOrDefault(key));
        Assert.Equal(21 * 4, Sum("kafka_server_brokertopicmetrics_messagesin_total{topic=\"spread\"}"));
        Assert.Equal(bytes, Sum("kafka_server_brokertopicmetrics_bytesin_total{topic=\"spread\"}"));
        Assert.Equal(requests, Sum("kafka_network_requestmetrics_requests_total{request=\"Produce\",version=\"9\"}"));
        Assert.Equal(1, Sum("kafka_controller_kafkacontroller_activecontrollercount"));
        Assert.Equal(6, Sum("kafka_server_replicamanager_leadercount") - scrapes.Sum(m => 0.0));
        // more than one broker took part (the load is spread, not all on one)
        Assert.True(scrapes.Count(m => m.GetValueOrDefault("kafka_server_brokertopicmetrics_messagesin_total{topic=\"spread\"}") > 0) >= 2);

        // Lag: a group commits offset p on partition p (which holds 4(p+1) records); its coordinator
        // reports every partition's lag, also of those other brokers lead, as kafka-exporter would.
        // A client retries a commit answered NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS (the
        // coordinator named by broker 1's metadata may not have loaded the group's partition yet).
        int coordinator = 0;
        await LocalCluster.WaitUntilAsync(async () =>
        {
            await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(1));
            var found = (await c.SendAsync<FindCoordinatorResponse>(new FindCoordinatorRequest { Key = "lagged" }, 3))!;
            if (found.ErrorCode != 0) return false;
            coordinator = found.NodeId;
            await using var cc = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(coordinator));
            var r = (await cc.SendAsync<OffsetCommitResponse>(new OffsetCommitRequest
            {
                GroupId = "lagged", GenerationIdOrMemberEpoch = -1, MemberId = "",
                Topics = [new() { Name = "spread", Partitions = [.. Enumerable.Range(0, 6).Select(p => new OffsetCommitRequest.OffsetCommitRequestPartition { PartitionIndex = p, CommittedOffset = p })] }],
            }, 7))!;
            var errors = r.Topics[0].Partitions.Select(p => p.ErrorCode).Distinct().ToList();
            if (errors.All(e => e is 14 or 15 or 16)) return false;   // COORDINATOR_LOAD_IN_PROGRESS / NOT_AVAILABLE / NOT_COORDINATOR
            Assert.All(r.Topics[0].Partitions, p => Assert.Equal(0, p.ErrorCode));
            return true;
        }, TimeSpan.FromSeconds(30), "the group's coordinator accepts the commit");
        var led = Enumerable.Range(0, 6).Count(p => cluster[coordinator].Replicas.GetPartition("spread", p) is { IsLeader: true });
        Assert.True(led < 6, "some partitions are led by other brokers than the coordinator");
        var atCoordinator = await ScrapeAsync(cluster[coordinator]);
        for (int p = 0; p < 6; p++)
        {
            Assert.Equal(4 * (p + 1) - p, atCoordinator.GetValueOrDefault($"kafka_consumergroup_lag{{consumergroup=\"lagged\",topic=\"spread\",partition=\"{p}\"}}", -1));
            Assert.Equal(p, atCoordinator.GetValueOrDefault($"kafka_consumergroup_current_offset{{consumergroup=\"lagged\",topic=\"spread\",partition=\"{p}\"}}", -1));
        }
        // only the coordinator reports the group
        foreach (int id in new[] { 1, 2, 3 }.Where(id => id != coordinator))
            Assert.DoesNotContain((await ScrapeAsync(cluster[id])).Keys, k => k.Contains("consumergroup=\"lagged\""));
    }
}
