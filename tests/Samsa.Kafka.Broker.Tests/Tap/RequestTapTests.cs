using System.Net;
using System.Text;
using System.Text.Json;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Tap;
using Samsa.Kafka.Broker.Tests.EndToEnd;
using Samsa.Kafka.Broker.Tests.Security;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Tests.Tap;

/// <summary>Issue #20's live request tap: GET /tap on the metrics listener, driven by real clients
/// (Confluent.Kafka to produce, kcat to consume, the wire client for SASL and the limits).</summary>
public class RequestTapTests
{
    private static readonly (string, string)[] TapOn = [("samsa.metrics.port", "0"), ("samsa.metrics.host", "127.0.0.1"), ("samsa.tap.enabled", "true")];

    internal static async Task<(HttpStatusCode Status, string Body)> GetAsync(KafkaBroker broker, string pathAndQuery)
    {
        using var http = new HttpClient();
        using var r = await http.GetAsync($"http://127.0.0.1:{broker.MetricsEndPoint!.Port}{pathAndQuery}");
        return (r.StatusCode, await r.Content.ReadAsStringAsync());
    }

    internal static async Task<JsonElement> TapAsync(KafkaBroker broker, string query = "")
    {
        var (status, body) = await GetAsync(broker, "/tap" + query);
        Assert.True(status == HttpStatusCode.OK, $"{status}: {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    private static IEnumerable<JsonElement> Entries(JsonElement connection) => connection.GetProperty("entries").EnumerateArray();

    [Fact]
    public async Task TapIsOffByDefaultAnd404sWithAJsonError()
    {
        await using var live = await LiveBroker.StartAsync(null, ("samsa.metrics.port", "0"), ("samsa.metrics.host", "127.0.0.1"));
        Assert.Null(live.Broker.Tap);
        await using (var c = await KafkaWireClient.ConnectAsync("127.0.0.1", live.Broker.BoundEndPoint.Port))
            await c.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [] }, 12);
        var (status, body) = await GetAsync(live.Broker, "/tap");
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Contains("samsa.tap.enabled", JsonDocument.Parse(body).RootElement.GetProperty("error").GetString());
        // /metrics is still served by the same listener
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(live.Broker, "/metrics")).Status);
    }

    [Fact]
    public async Task ProducerAndConsumerRequestsAreDecodedWithTopicsAcksAndHighWatermark()
    {
        await using var live = await LiveBroker.StartAsync(null, TapOn);
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = live.Bootstrap, ClientId = "tap-admin" }).Build())
            await admin.CreateTopicsAsync([new TopicSpecification { Name = "tapped", NumPartitions = 1, ReplicationFactor = 1 }]);
        using (var producer = new ProducerBuilder<string, string>(new ProducerConfig
               {
                   BootstrapServers = live.Bootstrap, ClientId = "tap-producer", Acks = Acks.All, LingerMs = 0,
               }).Build())
        {
            for (int i = 0; i < 7; i++)
                await producer.ProduceAsync("tapped", new Message<string, string> { Key = $"k{i}", Value = $"value-{i}" });
        }
        // kcat (librdkafka) reads it back: its Fetch response carries the high watermark.
        string kcat = ExternalClients.Require("kcat", "kcat", probe: "-V");
        var (exit, output, error) = ExternalClients.Run(kcat, $"-b {live.Bootstrap} -X client.id=tap-consumer -C -t tapped -o beginning -e -q");
        Assert.True(exit == 0, error);
        Assert.Equal(7, output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);

        var tap = await TapAsync(live.Broker);
        Assert.Equal(1, tap.GetProperty("broker").GetInt32());
        var connections = tap.GetProperty("connections").EnumerateArray().ToList();
        foreach (var c in connections)
        {
            // one request at a time per connection, each with the client's next correlation id
            var ids = Entries(c).Select(e => e.GetProperty("correlationId").GetInt32()).ToList();
            Assert.Equal(ids.Order(), ids);
            Assert.Equal(ids.Count, ids.Distinct().Count());
            Assert.Matches(@"^127\.0\.0\.1:\d+$", c.GetProperty("remote").GetString());
            Assert.Equal("User:ANONYMOUS", c.GetProperty("principal").GetString());
        }

        var producerConns = connections.Where(c => c.GetProperty("clientId").GetString() == "tap-producer").ToList();
        Assert.NotEmpty(producerConns);
        var producerEntries = producerConns.SelectMany(Entries).ToList();
        Assert.Contains(producerEntries, e => e.GetProperty("api").GetString() == "ApiVersions");
        Assert.Contains(producerEntries, e => e.GetProperty("api").GetString() == "Metadata");
        // Confluent.Kafka names itself in ApiVersions v3 (KIP-511)
        Assert.Contains(producerConns, c => c.GetProperty("software").GetString() is { } s && s.StartsWith("confluent-kafka-dotnet/", StringComparison.Ordinal));
        var produces = producerEntries.Where(e => e.GetProperty("api").GetString() == "Produce").ToList();
        Assert.NotEmpty(produces);
        long records = 0;
        foreach (var p in produces)
        {
            Assert.Equal(0, p.GetProperty("apiKey").GetInt32());
            Assert.True(p.GetProperty("latencyMs").GetDouble() >= 0);
            Assert.True(DateTimeOffset.TryParse(p.GetProperty("ts").GetString(), out _));
            var request = p.GetProperty("request");
            Assert.Equal(-1, request.GetProperty("acks").GetInt32());   // acks=all
            var topic = request.GetProperty("topicData")[0];
            Assert.Equal("tapped", topic.GetProperty("name").GetString());
            var summary = topic.GetProperty("partitionData")[0].GetProperty("records");
            // the batches are summarised, never dumped: no value bytes in the tap
            Assert.True(summary.GetProperty("sizeInBytes").GetInt32() > 0);
            Assert.True(summary.GetProperty("batches").GetInt32() >= 1);
            records += summary.GetProperty("records").GetInt64();
            var partition = p.GetProperty("response").GetProperty("responses")[0].GetProperty("partitionResponses")[0];
            Assert.Equal(0, partition.GetProperty("errorCode").GetInt32());
        }
        Assert.Equal(7, records);
        Assert.DoesNotContain("value-3", tap.GetRawText());

        var fetches = connections.Where(c => c.GetProperty("clientId").GetString() == "tap-consumer").SelectMany(Entries)
            .Where(e => e.GetProperty("api").GetString() == "Fetch").ToList();
        Assert.NotEmpty(fetches);
        long logEnd = live.Broker.Replicas.GetPartition("tapped", 0)!.Log.LogEndOffset;
        Assert.Equal(7, logEnd);
        var withRecords = fetches.Select(f => f.GetProperty("response").GetProperty("responses")[0].GetProperty("partitions")[0])
            .Where(p => p.GetProperty("records").ValueKind == JsonValueKind.Object && p.GetProperty("records").GetProperty("records").GetInt64() > 0).ToList();
        Assert.NotEmpty(withRecords);
        Assert.All(withRecords, p => Assert.Equal(logEnd, p.GetProperty("highWatermark").GetInt64()));
        Assert.Equal(0, withRecords[0].GetProperty("records").GetProperty("baseOffsets")[0].GetInt64());

        // ?api= keeps only that API's entries; ?connection= one connection
        var onlyProduce = await TapAsync(live.Broker, "?api=produce");
        Assert.All(onlyProduce.GetProperty("connections").EnumerateArray().SelectMany(Entries), e => Assert.Equal("Produce", e.GetProperty("api").GetString()));
        string id = producerConns[0].GetProperty("id").GetString()!;
        var one = await TapAsync(live.Broker, "?connection=" + Uri.EscapeDataString(id));
        Assert.Equal(id, Assert.Single(one.GetProperty("connections").EnumerateArray()).GetProperty("id").GetString());
    }

    [Fact]
    public async Task SaslPlainPasswordsNeverAppear()
    {
        var props = SaslTests.SaslProps().Concat(TapOn).ToArray();
        await using var live = await LiveBroker.StartAsync(null, props);
        await using (var c = await KafkaWireClient.ConnectAsync("127.0.0.1", live.Broker.BoundEndPoint.Port))
        {
            await c.AuthenticateAsync("PLAIN", "alice", "alice-secret");
            Assert.NotNull(await c.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [] }, 12));
            // A password-type config set over the wire is hidden too (upstream logs "[hidden]").
            await c.SendAsync<AlterConfigsResponse>(new AlterConfigsRequest
            {
                Resources = [new() { ResourceType = 4, ResourceName = "1", Configs = [new() { Name = "listener.name.sasl_plaintext.plain.sasl.jaas.config", Value = SaslTests.PlainJaas }] }],
                ValidateOnly = true,
            }, 2);
        }
        // Confluent.Kafka with SASL PLAIN, a real client's own SaslAuthenticate
        using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig
               {
                   BootstrapServers = live.Bootstrap, ClientId = "sasl-producer", SecurityProtocol = SecurityProtocol.SaslPlaintext,
                   SaslMechanism = SaslMechanism.Plain, SaslUsername = "alice", SaslPassword = "alice-secret",
               }).Build())
        {
            using var admin = new DependentAdminClientBuilder(producer.Handle).Build();
            await admin.CreateTopicsAsync([new TopicSpecification { Name = "sasl-tapped", NumPartitions = 1, ReplicationFactor = 1 }]);
            await producer.ProduceAsync("sasl-tapped", new Message<Null, string> { Value = "hello" });
        }
        var (_, body) = await GetAsync(live.Broker, "/tap");
        Assert.DoesNotContain("alice-secret", body);
        Assert.DoesNotContain(Convert.ToBase64String(Encoding.UTF8.GetBytes("\0alice\0alice-secret")), body);
        Assert.DoesNotContain("admin-secret", body);
        var tap = JsonDocument.Parse(body).RootElement;
        var entries = tap.GetProperty("connections").EnumerateArray().SelectMany(Entries).ToList();
        var auths = entries.Where(e => e.GetProperty("api").GetString() == "SaslAuthenticate").ToList();
        Assert.True(auths.Count >= 2, "the wire client's and Confluent's SaslAuthenticate are tapped");
        Assert.All(auths, a => Assert.Equal(TapJson.Hidden, a.GetProperty("request").GetProperty("authBytes").GetString()));
        var alter = Assert.Single(entries, e => e.GetProperty("api").GetString() == "AlterConfigs");
        Assert.Equal(TapJson.Hidden, alter.GetProperty("request").GetProperty("resources")[0].GetProperty("configs")[0].GetProperty("value").GetString());
        Assert.Contains(tap.GetProperty("connections").EnumerateArray(), c => c.GetProperty("principal").GetString() == "User:alice");
        Assert.Contains(entries, e => e.GetProperty("api").GetString() == "Produce");
    }

    [Fact]
    public async Task LimitsHoldAndBadQueriesAre400()
    {
        await using var live = await LiveBroker.StartAsync(null, [.. TapOn, ("samsa.tap.entries.per.connection", "3"), ("samsa.tap.connections", "2")]);
        await using (var c = await KafkaWireClient.ConnectAsync("127.0.0.1", live.Broker.BoundEndPoint.Port))
        {
            var created = await c.SendAsync<CreateTopicsResponse>(new CreateTopicsRequest
            {
                TimeoutMs = 30_000, Topics = [.. Enumerable.Range(0, 70).Select(i => new CreateTopicsRequest.CreatableTopic { Name = $"many-{i:00}", NumPartitions = 1, ReplicationFactor = 1 })],
            }, 7);
            Assert.All(created!.Topics, t => Assert.Equal(0, t.ErrorCode));
        }
        var clients = new List<KafkaWireClient>();
        try
        {
            for (int k = 0; k < 4; k++)
            {
                var c = await KafkaWireClient.ConnectAsync("127.0.0.1", live.Broker.BoundEndPoint.Port);
                clients.Add(c);
                for (int i = 0; i < 5; i++)
                    Assert.NotNull(await c.SendAsync<MetadataResponse>(new MetadataRequest { Topics = null }, 12));
            }
            var tap = await TapAsync(live.Broker);
            var connections = tap.GetProperty("connections").EnumerateArray().ToList();
            Assert.Equal(2, connections.Count);   // samsa.tap.connections: the two most recent
            foreach (var c in connections)
            {
                var entries = Entries(c).ToList();
                Assert.Equal(3, entries.Count);   // samsa.tap.entries.per.connection: the last three
                // an all-topics Metadata answer of 70 topics stops at the size budget and counts the rest
                var response = entries[^1].GetProperty("response");
                int shown = response.GetProperty("topics").GetArrayLength();
                Assert.InRange(shown, 1, 69);
                Assert.Equal(70 - shown, response.GetProperty("topicsOmitted").GetInt32());
                Assert.InRange(response.GetRawText().Length, 1, TapJson.MaxBytes + 1024);
            }
            var lastIds = Entries(connections[0]).Select(e => e.GetProperty("correlationId").GetInt32()).ToList();
            Assert.Equal(3, lastIds.Count);
            Assert.Equal(lastIds.Order(), lastIds);

            var limited = await TapAsync(live.Broker, "?limit=1");
            Assert.All(limited.GetProperty("connections").EnumerateArray(), c => Assert.Single(Entries(c)));
            Assert.Equal(lastIds[^1], Entries(limited.GetProperty("connections")[0]).Single().GetProperty("correlationId").GetInt32());
            // no Produce was sent: a Produce filter leaves no connection
            Assert.Equal(0, (await TapAsync(live.Broker, "?api=Produce")).GetProperty("connections").GetArrayLength());
            Assert.Equal(0, (await TapAsync(live.Broker, "?connection=nope")).GetProperty("connections").GetArrayLength());
            foreach (var bad in new[] { "?limit=0", "?limit=abc", "?limit=-3", "?api=Nope", "?api=999", "?connection=" })
            {
                var (status, body) = await GetAsync(live.Broker, "/tap" + bad);
                Assert.True(status == HttpStatusCode.BadRequest, $"{bad}: {status}");
                Assert.True(JsonDocument.Parse(body).RootElement.TryGetProperty("error", out _));
            }
        }
        finally
        {
            foreach (var c in clients) await c.DisposeAsync();
        }
    }

    /// <summary>Every generated request and response, at every version it has, renders as JSON
    /// (the generated Accept and the tap's writer agree), with the fields that version carries.</summary>
    [Fact]
    public void EveryMessageRendersAtEveryVersion()
    {
        int rendered = 0;
        foreach (var key in Enum.GetValues<ApiKey>())
        {
            for (short v = ApiMessages.LowestSupportedVersion(key); v <= ApiMessages.HighestSupportedVersion(key); v++)
            {
                foreach (var m in new IKafkaMessage[] { ApiMessages.CreateRequest(key), ApiMessages.CreateResponse(key) })
                {
                    var json = JsonDocument.Parse(TapJson.Render(m, v)).RootElement;
                    Assert.Equal(JsonValueKind.Object, json.ValueKind);
                    Assert.False(json.TryGetProperty("renderError", out var err), $"{key} v{v}: {err}");
                    rendered++;
                }
            }
        }
        Assert.True(rendered > 500, $"{rendered} renders");
        // a long array of small elements stops at MaxArrayItems and counts the rest
        var versions = new ApiVersionsResponse { ApiKeys = [.. Enumerable.Range(0, 100).Select(i => new ApiVersionsResponse.ApiVersion { ApiKey = (short)i })] };
        var rendered100 = JsonDocument.Parse(TapJson.Render(versions, 3)).RootElement;
        Assert.Equal(TapJson.MaxArrayItems, rendered100.GetProperty("apiKeys").GetArrayLength());
        Assert.Equal(100 - TapJson.MaxArrayItems, rendered100.GetProperty("apiKeysOmitted").GetInt32());
        // version-dependent fields: Produce v3 added transactionalId
        Assert.False(JsonDocument.Parse(TapJson.Render(new ProduceRequest(), 2)).RootElement.TryGetProperty("transactionalId", out _));
        Assert.True(JsonDocument.Parse(TapJson.Render(new ProduceRequest(), 3)).RootElement.TryGetProperty("transactionalId", out _));
    }

    [Theory]
    [InlineData("sasl.jaas.config", true)]
    [InlineData("listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config", true)]
    [InlineData("ssl.keystore.password", true)]
    [InlineData("listener.name.ssl.ssl.key.password", true)]
    [InlineData("retention.ms", false)]
    [InlineData("cleanup.policy", false)]
    public void SensitiveConfigNames(string name, bool sensitive) => Assert.Equal(sensitive, TapJson.IsSensitiveConfig(name));
}
