using System.Globalization;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Tests.EndToEnd;
using Samsa.Kafka.Broker.Tests.Handlers;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Tests.Telemetry;

/// <summary>Issue #20: a known load over the wire, then /metrics scraped as Prometheus would.</summary>
public class PrometheusMetricsTests
{
    /// <summary>Prometheus text: "name{labels} value" lines, keyed by "name{labels}" as printed.</summary>
    public static async Task<Dictionary<string, double>> ScrapeAsync(System.Net.IPEndPoint endpoint)
    {
        using var http = new HttpClient();
        var response = await http.GetAsync($"http://127.0.0.1:{endpoint.Port}/metrics");
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("text/plain; version=0.0.4", response.Content.Headers.ContentType!.ToString());
        var result = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var line in (await response.Content.ReadAsStringAsync()).Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#') continue;
            int space = line.LastIndexOf(' ');
            result[line[..space]] = double.Parse(line[(space + 1)..], CultureInfo.InvariantCulture);
        }
        return result;
    }

    /// <summary>Polls until <paramref name="done"/> holds (a request is counted just after its response is written).</summary>
    public static async Task<Dictionary<string, double>> ScrapeUntilAsync(System.Net.IPEndPoint endpoint, Func<Dictionary<string, double>, bool> done)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            var m = await ScrapeAsync(endpoint);
            if (done(m) || DateTime.UtcNow > deadline) return m;
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task CountersMatchTheLoad()
    {
        await using var live = await LiveBroker.StartAsync(null, ("samsa.metrics.port", "0"), ("samsa.metrics.host", "127.0.0.1"));
        Assert.NotNull(live.Broker.MetricsEndPoint);
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", live.Broker.BoundEndPoint.Port);
        var created = await c.SendAsync<CreateTopicsResponse>(new CreateTopicsRequest
        {
            Topics = [new() { Name = "metered", NumPartitions = 2, ReplicationFactor = 1 }],
        }, 7);
        Assert.Equal(0, created!.Topics[0].ErrorCode);

        // 12 produce requests of 5 records each: 8 to partition 0, 4 to partition 1
        long bytesIn = 0;
        for (int i = 0; i < 12; i++)
        {
            var batch = HandlerFixture.Batch(Enumerable.Range(0, 5).Select(j => $"record-{i}-{j}-{new string('x', i * 10)}").ToArray());
            bytesIn += batch.Length;
            var r = await c.SendAsync<ProduceResponse>(new ProduceRequest
            {
                Acks = 1, TimeoutMs = 1000,
                TopicData = [new() { Name = "metered", PartitionData = [new() { Index = i < 8 ? 0 : 1, Records = batch }] }],
            }, 9);
            Assert.Equal(0, r!.Responses[0].PartitionResponses[0].ErrorCode);
        }
        // a consumer reads partition 0 to its end (two fetches: the records, then nothing)
        var records = await WireFetch.AllAsync(live.Broker.BoundEndPoint.Port, "metered", 0);
        Assert.Equal(40, records.Count);
        long log0 = new FileInfo(Path.Combine(live.DataDir, "metered-0", "00000000000000000000.log")).Length;
        // group "g" commits offset 15 on partition 0 and 20 on partition 1: lag 25 and 0
        // (FindCoordinator creates __consumer_offsets; commits answer NOT_COORDINATOR until it is loaded)
        OffsetCommitResponse? commit = null;
        for (var deadline = DateTime.UtcNow.AddSeconds(20); DateTime.UtcNow < deadline; await Task.Delay(100))
        {
            await c.SendAsync<FindCoordinatorResponse>(new FindCoordinatorRequest { Key = "g", KeyType = 0 }, 3);
            commit = await c.SendAsync<OffsetCommitResponse>(new OffsetCommitRequest
            {
                GroupId = "g", GenerationIdOrMemberEpoch = -1, MemberId = "",
                Topics = [new() { Name = "metered", Partitions = [new() { PartitionIndex = 0, CommittedOffset = 15 }, new() { PartitionIndex = 1, CommittedOffset = 20 }] }],
            }, 8);
            if (commit!.Topics[0].Partitions.All(p => p.ErrorCode == 0)) break;
        }
        Assert.All(commit!.Topics[0].Partitions, p => Assert.Equal(0, p.ErrorCode));

        var m = await ScrapeUntilAsync(live.Broker.MetricsEndPoint!, m => m.GetValueOrDefault("kafka_coordinator_group_groupmetadatamanager_numoffsets") >= 2);
        Assert.Equal(60, m["kafka_server_brokertopicmetrics_messagesin_total{topic=\"metered\"}"]);
        Assert.Equal(bytesIn, m["kafka_server_brokertopicmetrics_bytesin_total{topic=\"metered\"}"]);
        Assert.Equal(log0, m["kafka_server_brokertopicmetrics_bytesout_total{topic=\"metered\"}"]);
        Assert.Equal(12, m["kafka_server_brokertopicmetrics_totalproducerequests_total{topic=\"metered\"}"]);
        Assert.Equal(2, m["kafka_server_brokertopicmetrics_totalfetchrequests_total{topic=\"metered\"}"]);
        Assert.Equal(12, m["kafka_network_requestmetrics_requests_total{request=\"Produce\",version=\"9\"}"]);
        Assert.Equal(2, m["kafka_network_requestmetrics_requests_total{request=\"Fetch\",version=\"12\"}"]);
        Assert.Equal(1, m["kafka_network_requestmetrics_requests_total{request=\"CreateTopics\",version=\"7\"}"]);
        Assert.Equal(12, m["kafka_network_requestmetrics_totaltimems_count{request=\"Produce\"}"]);
        Assert.Equal(2, m["kafka_network_requestmetrics_totaltimems_count{request=\"FetchConsumer\"}"]);
        Assert.True(m["kafka_network_requestmetrics_totaltimems_sum{request=\"Produce\"}"] > 0);
        Assert.Contains("kafka_network_requestmetrics_requestqueuetimems{request=\"Produce\",quantile=\"0.99\"}", m.Keys);
        Assert.Contains("kafka_network_requestmetrics_responsequeuetimems{request=\"Produce\",quantile=\"0.5\"}", m.Keys);
        Assert.Equal(25, m["kafka_consumergroup_lag{consumergroup=\"g\",topic=\"metered\",partition=\"0\"}"]);
        Assert.Equal(0, m["kafka_consumergroup_lag{consumergroup=\"g\",topic=\"metered\",partition=\"1\"}"]);
        Assert.Equal(15, m["kafka_consumergroup_current_offset{consumergroup=\"g\",topic=\"metered\",partition=\"0\"}"]);
        Assert.Equal(1, m["kafka_coordinator_group_groupmetadatamanager_numgroups"]);
        Assert.Equal(2, m["kafka_coordinator_group_groupmetadatamanager_numoffsets"]);
        Assert.Equal(1, m["kafka_controller_kafkacontroller_activecontrollercount"]);
        Assert.Equal(0, m["kafka_controller_kafkacontroller_offlinepartitionscount"]);
        Assert.Equal(0, m["kafka_server_replicamanager_underreplicatedpartitions"]);
        Assert.True(m["kafka_server_replicamanager_leadercount"] >= 2);
    }

    [Fact]
    public async Task OffByDefaultAndOnlyGetServed()
    {
        await using (var off = await LiveBroker.StartAsync())
        {
            Assert.Null(off.Broker.Metrics);
            Assert.Null(off.Broker.MetricsEndPoint);
        }
        await using var live = await LiveBroker.StartAsync(null, ("samsa.metrics.port", "0"), ("samsa.metrics.host", "127.0.0.1"));
        using var http = new HttpClient();
        var post = await http.PostAsync($"http://127.0.0.1:{live.Broker.MetricsEndPoint!.Port}/metrics", new StringContent("x"));
        Assert.Equal(System.Net.HttpStatusCode.MethodNotAllowed, post.StatusCode);
        var other = await http.GetAsync($"http://127.0.0.1:{live.Broker.MetricsEndPoint!.Port}/nothing");
        Assert.Equal(System.Net.HttpStatusCode.NotFound, other.StatusCode);
    }
}
