using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Broker.Security;
using Samsa.Kafka.Broker.Security.Quotas;
using Samsa.Kafka.Broker.Tests.EndToEnd;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Tests.Security;

/// <summary>The quota model against upstream's rules (sanitized names, precedence, throttle
/// time), and a live broker: quotas kept across a restart without ZooKeeper, request_percentage
/// and controller_mutation_rate throttling, channel muting, per-IP connection limits.</summary>
public class QuotaTests
{
    [Theory]
    [InlineData("alice", "alice")]
    [InlineData("user@example.com", "user%40example.com")]
    [InlineData("a b*c", "a%20b%2Ac")]
    [InlineData("CN=client,O=Org", "CN%3Dclient%2CO%3DOrg")]
    [InlineData("ü~", "%C3%BC%7E")]
    public void SanitizedNamesAreUpstreamsZnodeNames(string name, string sanitized)
    {
        Assert.Equal(sanitized, QuotaSanitizer.Sanitize(name));
        Assert.Equal(name, QuotaSanitizer.Desanitize(sanitized));
    }

    [Fact]
    public void QuotaPrecedenceFollowsUpstreamsEightLevels()
    {
        var m = new ClientQuotaManager(ClientQuotaType.Produce, 11, 1, () => 0);
        var alice = KafkaPrincipal.User("alice");
        const string D = ClientQuotaManager.Default;
        // Lowest first; each added level takes over.
        (string? User, string? Client, double Q)[] levels =
        [
            (null, D, 8), (null, "app", 7), (D, null, 6), (D, D, 5), (D, "app", 4), ("alice", null, 3), ("alice", D, 2), ("alice", "app", 1),
        ];
        foreach (var (u, c, q) in levels)
        {
            m.UpdateQuota(u, c, q);
            Assert.Equal(q, m.QuotaFor(alice, "app"));
        }
        // Removing from the top falls back level by level.
        for (int i = levels.Length - 1; i > 0; i--)
        {
            m.UpdateQuota(levels[i].User, levels[i].Client, null);
            Assert.Equal(levels[i - 1].Q, m.QuotaFor(alice, "app"));
        }
        Assert.Equal(8, m.QuotaFor(KafkaPrincipal.User("bob"), "other"));
    }

    [Fact]
    public void ThrottleTimeIsUpstreamsFormulaOverTheSampledWindow()
    {
        long now = 1_000_000;
        var m = new ClientQuotaManager(ClientQuotaType.Produce, 11, 1, () => now);
        m.UpdateQuota(null, "app", 1000);
        var p = KafkaPrincipal.Anonymous;
        // A cold meter counts at least 10 windows: 10,000 bytes at once is exactly 1000 B/s.
        Assert.Equal(0, m.RecordAndGetThrottleTimeMs(p, "app", 10_000));
        // 20,000 → 2000 B/s: (2000 − 1000) / 1000 × 10,000 ms.
        Assert.Equal(10_000, m.RecordAndGetThrottleTimeMs(p, "app", 10_000));
        // Another client id has its own meter.
        Assert.Equal(0, m.RecordAndGetThrottleTimeMs(p, "other", 1_000_000));
        // After the window passed (11 samples of 1 s without events), the meter is empty again.
        now += 12_000;
        Assert.Equal(0, m.RecordAndGetThrottleTimeMs(p, "app", 10_000));

        var r = new ClientQuotaManager(ClientQuotaType.Request, 11, 1, () => now);
        r.UpdateQuota(null, D, 1);
        // request_percentage throttles are bounded by one window (ClientRequestQuotaManager).
        Assert.Equal(1000, r.RecordAndGetThrottleTimeMs(p, "x", 10_000));
        // Fetch: the most one response may hold is quota × (samples − 1) × window.
        var f = new ClientQuotaManager(ClientQuotaType.Fetch, 11, 1, () => now);
        f.UpdateQuota(D, null, 256);
        Assert.Equal(2560, f.MaxValueInQuotaWindow(p, "x"));
    }

    private const string D = ClientQuotaManager.Default;

    private static async Task<AlterClientQuotasResponse> AlterAsync(KafkaWireClient client, (string Type, string? Name)[] entity, string key, double? value, short version = 1)
    {
        var entry = new AlterClientQuotasRequest.EntryData();
        foreach (var (t, n) in entity) entry.Entity.Add(new() { EntityType = t, EntityName = n });
        entry.Ops.Add(new() { Key = key, Value = value ?? 0, Remove = value is null });
        return (await client.SendAsync<AlterClientQuotasResponse>(new AlterClientQuotasRequest { Entries = [entry] }, version))!;
    }

    [Fact]
    public async Task QuotasOfABrokerWithoutZooKeeperSurviveARestart()
    {
        string dir = Path.Combine(Path.GetTempPath(), "samsa-quota-" + Guid.NewGuid().ToString("N"));
        try
        {
            // Not LiveBroker: its disposal deletes the data directory.
            static async Task<KafkaBroker> StartAsync(string dir)
            {
                var broker = new KafkaBroker(new BrokerConfig(new Dictionary<string, string>
                {
                    ["broker.id"] = "1", ["listeners"] = "PLAINTEXT://127.0.0.1:0", ["log.dirs"] = dir, ["offsets.topic.replication.factor"] = "1",
                }));
                await broker.StartAsync();
                return broker;
            }
            await using (var broker = await StartAsync(dir))
            {
                await using var client = await KafkaWireClient.ConnectAsync("127.0.0.1", broker.BoundEndPoint.Port);
                Assert.Equal(0, (await AlterAsync(client, [("user", "alice"), ("client-id", "app")], "producer_byte_rate", 4096, version: 0)).Entries[0].ErrorCode);
                Assert.Equal(0, (await AlterAsync(client, [("ip", null)], "connection_creation_rate", 100)).Entries[0].ErrorCode);
                Assert.True(File.Exists(Path.Combine(dir, FileQuotaStore.FileName)));
            }
            await using (var broker = await StartAsync(dir))
            {
                Assert.Equal(4096, broker.Quotas.Produce.QuotaFor(KafkaPrincipal.User("alice"), "app"));
                Assert.Null(broker.Quotas.Produce.QuotaFor(KafkaPrincipal.User("bob"), "app"));
                Assert.Equal(100, broker.Quotas.Connections.ConnectionRateFor(IPAddress.Parse("10.1.2.3")));
                await using var client = await KafkaWireClient.ConnectAsync("127.0.0.1", broker.BoundEndPoint.Port);
                var described = (await client.SendAsync<DescribeClientQuotasResponse>(new DescribeClientQuotasRequest
                {
                    Components = [new() { EntityType = "user", MatchType = 0, Match = "alice" }], Strict = false,
                }, 0))!;
                var entry = Assert.Single(described.Entries!);
                Assert.Equal(["user=alice", "client-id=app"], entry.Entity.Select(e => $"{e.EntityType}={e.EntityName}"));
                Assert.Equal(4096, Assert.Single(entry.Values).Value);
            }
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    [Fact]
    public async Task RequestPercentageThrottlesAndMutesTheConnection()
    {
        await using var live = await LiveBroker.StartAsync();
        await using var client = await KafkaWireClient.ConnectAsync("127.0.0.1", live.Broker.BoundEndPoint.Port);
        client.ClientId = "busy";
        // 0.001 % of a second is 10 µs of handler time: any Metadata request exceeds it.
        Assert.Equal(0, (await AlterAsync(client, [("client-id", "busy")], "request_percentage", 0.001)).Entries[0].ErrorCode);
        int throttle = 0;
        for (int i = 0; i < 50 && throttle == 0; i++)
            throttle = (await client.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [] }, 12))!.ThrottleTimeMs;
        Assert.InRange(throttle, 1, 1000);   // bounded by quota.window.size.seconds
        // The channel is muted: the next answer comes after the throttle time, not at once.
        var sw = Stopwatch.StartNew();
        await client.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [] }, 12);
        Assert.True(sw.ElapsedMilliseconds >= throttle * 0.8, $"answered after {sw.ElapsedMilliseconds} ms, throttle {throttle} ms");
        // Another client id is not throttled.
        await using var other = await KafkaWireClient.ConnectAsync("127.0.0.1", live.Broker.BoundEndPoint.Port);
        Assert.Equal(0, (await other.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [] }, 12))!.ThrottleTimeMs);
    }

    [Fact]
    public async Task ControllerMutationRateRefusesTopicsOverTheBucketWithThrottlingQuotaExceeded()
    {
        await using var live = await LiveBroker.StartAsync();
        await using var client = await KafkaWireClient.ConnectAsync("127.0.0.1", live.Broker.BoundEndPoint.Port);
        client.ClientId = "mutator";
        Assert.Equal(0, (await AlterAsync(client, [("client-id", "mutator")], "controller_mutation_rate", 1)).Entries[0].ErrorCode);
        CreateTopicsRequest Create(params string[] names) => new()
        {
            TimeoutMs = 10_000,
            Topics = names.Select(n => new CreateTopicsRequest.CreatableTopic { Name = n, NumPartitions = 30, ReplicationFactor = 1 }).ToList(),
        };
        // The bucket holds 11 tokens (11 samples × 1 s × 1/s): the first 30 partitions are taken
        // (it goes negative), the next topic is refused while it is below zero.
        var first = (await client.SendAsync<CreateTopicsResponse>(Create("m1", "m2"), 7))!;
        Assert.Equal((short)ErrorCode.None, first.Topics.Single(t => t.Name == "m1").ErrorCode);
        var m2 = first.Topics.Single(t => t.Name == "m2");
        Assert.Equal((short)ErrorCode.ThrottlingQuotaExceeded, m2.ErrorCode);
        Assert.Equal("The throttling quota has been exceeded.", m2.ErrorMessage);
        Assert.InRange(first.ThrottleTimeMs, 1, 20_000);
        Assert.Null(live.Broker.Replicas.GetTopic("m2"));
    }

    [Fact]
    public async Task MaxConnectionsPerIpClosesTheConnectionOverTheLimit()
    {
        await using var live = await LiveBroker.StartAsync(null, ("max.connections.per.ip", "2"));
        int port = live.Broker.BoundEndPoint.Port;
        await using var a = await KafkaWireClient.ConnectAsync("127.0.0.1", port);
        await using var b = await KafkaWireClient.ConnectAsync("127.0.0.1", port);
        Assert.NotNull(await a.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [] }, 12));
        Assert.NotNull(await b.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [] }, 12));
        // The third is accepted by TCP and closed by the broker.
        using var third = new TcpClient();
        await third.ConnectAsync("127.0.0.1", port);
        var buf = new byte[16];
        var read = await third.GetStream().ReadAsync(buf).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(0, read);
        // Closing one frees a slot.
        await a.DisposeAsync();
        await WaitAsync(() => live.Broker.Quotas.Connections.CountFor(IPAddress.Loopback) == 1);
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", port);
        Assert.NotNull(await c.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [] }, 12));
    }

    [Fact]
    public async Task MaxConnectionsKeepsANewConnectionWaitingUntilOneCloses()
    {
        await using var live = await LiveBroker.StartAsync(null, ("max.connections", "1"));
        int port = live.Broker.BoundEndPoint.Port;
        var first = await KafkaWireClient.ConnectAsync("127.0.0.1", port);
        Assert.NotNull(await first.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [] }, 12));
        await using var second = await KafkaWireClient.ConnectAsync("127.0.0.1", port);
        var waiting = second.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [] }, 12);
        await Task.Delay(500);
        Assert.False(waiting.IsCompleted, "the second connection was served while the first held the only slot");
        await first.DisposeAsync();
        Assert.NotNull(await waiting.WaitAsync(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task ConnectionCreationRatePerIpClosesConnectionsOverTheRate()
    {
        await using var live = await LiveBroker.StartAsync();
        int port = live.Broker.BoundEndPoint.Port;
        await using (var admin = await KafkaWireClient.ConnectAsync("127.0.0.1", port))
            Assert.Equal(0, (await AlterAsync(admin, [("ip", "127.0.0.1")], "connection_creation_rate", 2)).Entries[0].ErrorCode);
        // The admin connection counted 1; a cold meter allows 2/s × 10 s = 20 more in a burst.
        int served = 0, refused = 0;
        for (int i = 0; i < 30; i++)
        {
            await using var client = await KafkaWireClient.ConnectAsync("127.0.0.1", port);
            try
            {
                var md = await client.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [] }, 12).WaitAsync(TimeSpan.FromSeconds(5));
                if (md is not null) served++; else refused++;
            }
            catch (Exception e) when (e is IOException or SocketException or Samsa.Kafka.Protocol.Primitives.KafkaProtocolException or EndOfStreamException or InvalidOperationException)
            {
                refused++;
            }
        }
        Assert.InRange(served, 18, 21);
        Assert.Equal(30 - served, refused);
        // Another IP (the default rate is unlimited) is not limited.
        Assert.Equal(ConnectionQuotas.Unlimited, live.Broker.Quotas.Connections.ConnectionRateFor(IPAddress.Parse("10.0.0.9")));
    }

    private static async Task WaitAsync(Func<bool> condition)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), "condition not met within 5 s");
            await Task.Delay(20);
        }
    }
}
