using System.Text;
using Samsa.Kafka.Broker.Telemetry;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Compression;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Tests.Handlers;

/// <summary>KIP-714 on one broker: client-metrics subscriptions through the config APIs and
/// ListConfigResources, GetTelemetrySubscriptions and PushTelemetry with upstream's errors.</summary>
public class TelemetryHandlerTests
{
    private const sbyte ClientMetrics = 16;

    private static async Task<IncrementalAlterConfigsResponse.AlterConfigsResourceResponse> Alter(HandlerFixture f, string name,
        params (string Key, string? Value, sbyte Op)[] ops)
    {
        var r = await f.Send<IncrementalAlterConfigsResponse>(new IncrementalAlterConfigsRequest
        {
            Resources = [new()
            {
                ResourceType = ClientMetrics, ResourceName = name,
                Configs = ops.Select(o => new IncrementalAlterConfigsRequest.AlterableConfig { Name = o.Key, Value = o.Value, ConfigOperation = o.Op }).ToList(),
            }],
        }, 1);
        return r!.Responses.Single();
    }

    private static async Task<DescribeConfigsResponse.DescribeConfigsResult> Describe(HandlerFixture f, string name) =>
        (await f.Send<DescribeConfigsResponse>(new DescribeConfigsRequest { Resources = [new() { ResourceType = ClientMetrics, ResourceName = name, ConfigurationKeys = null }] }, 4))!.Results.Single();

    private static Task<GetTelemetrySubscriptionsResponse?> Get(HandlerFixture f, Guid id) =>
        f.Send<GetTelemetrySubscriptionsResponse>(new GetTelemetrySubscriptionsRequest { ClientInstanceId = id }, 0);

    private static async Task<short> Push(HandlerFixture f, Guid id, int subscription, byte[] metrics, CompressionType codec = CompressionType.None, bool terminating = false) =>
        (await f.Send<PushTelemetryResponse>(new PushTelemetryRequest
        {
            ClientInstanceId = id, SubscriptionId = subscription, Terminating = terminating,
            CompressionType = (sbyte)codec, Metrics = codec == CompressionType.None || !CompressionCodecs.IsKnown((int)codec) ? metrics : CompressionCodecs.Compress(codec, metrics),
        }, 0))!.ErrorCode;

    [Fact]
    public async Task SubscriptionsAreConfigResourcesThatCanBeAlteredDescribedAndListed()
    {
        await using var f = new HandlerFixture();
        var ok = await Alter(f, "producers", ("metrics", "org.apache.kafka.producer.", 0), ("interval.ms", "1000", 0), ("match", "client_id=test", 0));
        Assert.Equal(0, ok.ErrorCode);
        Assert.Equal(0, (await Alter(f, "producers", ("metrics", "org.apache.kafka.consumer.", 2))).ErrorCode);   // APPEND

        var described = await Describe(f, "producers");
        Assert.Equal(0, described.ErrorCode);
        Assert.Equal(new Dictionary<string, string?>
        {
            ["interval.ms"] = "1000", ["match"] = "client_id=test", ["metrics"] = "org.apache.kafka.producer.,org.apache.kafka.consumer.",
        }, described.Configs.ToDictionary(c => c.Name, c => c.Value));
        Assert.All(described.Configs, c => Assert.Equal(7, c.ConfigSource));   // CLIENT_METRICS_CONFIG
        Assert.Empty((await Describe(f, "nobody")).Configs);

        // ListConfigResources v0 (ListClientMetricsResources) and v1.
        Assert.Equal(0, (await Alter(f, "all", ("metrics", "*", 0))).ErrorCode);
        var v0 = await f.Send<ListConfigResourcesResponse>(new ListConfigResourcesRequest(), 0);
        Assert.Equal(["all", "producers"], v0!.ConfigResources.Select(r => r.ResourceName));
        await f.CreateTopic("t1");
        var v1 = await f.Send<ListConfigResourcesResponse>(new ListConfigResourcesRequest { ResourceTypes = [16, 2] }, 1);
        Assert.Equal([("all", (sbyte)16), ("producers", (sbyte)16), ("t1", (sbyte)2)], v1!.ConfigResources.Select(r => (r.ResourceName, r.ResourceType)));
        var every = await f.Send<ListConfigResourcesResponse>(new ListConfigResourcesRequest(), 1);
        Assert.Contains(("1", (sbyte)4), every!.ConfigResources.Select(r => (r.ResourceName, r.ResourceType)));
        Assert.Contains(("producers", (sbyte)16), every.ConfigResources.Select(r => (r.ResourceName, r.ResourceType)));
        Assert.Equal((short)ErrorCode.UnsupportedVersion, (await f.Send<ListConfigResourcesResponse>(new ListConfigResourcesRequest { ResourceTypes = [64] }, 1))!.ErrorCode);

        // Deleting every key removes the subscription.
        Assert.Equal(0, (await Alter(f, "all", ("metrics", null, 1))).ErrorCode);
        Assert.Equal(["producers"], (await f.Send<ListConfigResourcesResponse>(new ListConfigResourcesRequest(), 0))!.ConfigResources.Select(r => r.ResourceName));
    }

    [Fact]
    public async Task InvalidSubscriptionsAreRefusedAsUpstreamRefusesThem()
    {
        await using var f = new HandlerFixture();
        Assert.Equal((short)ErrorCode.InvalidRequest, (await Alter(f, "s", ("bogus", "1", 0))).ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidRequest, (await Alter(f, "s", ("interval.ms", "50", 0))).ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidRequest, (await Alter(f, "s", ("interval.ms", "3600001", 0))).ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidConfig, (await Alter(f, "s", ("match", "client_colour=red", 0))).ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidConfig, (await Alter(f, "s", ("match", "client_id=(", 0))).ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidRequest, (await Alter(f, "", ("metrics", "*", 0))).ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidConfig, (await Alter(f, "s", ("interval.ms", "5", 2))).ErrorCode);   // APPEND on an int
        Assert.Empty((await f.Send<ListConfigResourcesResponse>(new ListConfigResourcesRequest(), 0))!.ConfigResources);
    }

    [Fact]
    public async Task WithoutAMatchingSubscriptionTheClientGetsAnIdAndNoMetrics()
    {
        await using var f = new HandlerFixture();
        Assert.Equal(0, (await Alter(f, "others", ("metrics", "*", 0), ("match", "client_id=someone-else", 0))).ErrorCode);
        var r = (await Get(f, Guid.Empty))!;
        Assert.Equal(0, r.ErrorCode);
        Assert.NotEqual(Guid.Empty, r.ClientInstanceId);
        Assert.Empty(r.RequestedMetrics);
        Assert.Equal(300_000, r.PushIntervalMs);
        Assert.Equal([(sbyte)4, (sbyte)3, (sbyte)1, (sbyte)2], r.AcceptedCompressionTypes);
        Assert.Equal(1024 * 1024, r.TelemetryMaxBytes);
        Assert.True(r.DeltaTemporality);
    }

    [Fact]
    public async Task PushesAreDecodedAndRecordedWithUpstreamsErrors()
    {
        await using var f = new HandlerFixture();
        long now = 1_000_000;
        f.Broker.ClientTelemetry.Clock = () => now;
        Assert.Equal(0, (await Alter(f, "mine", ("metrics", "org.apache.kafka.producer.", 0), ("interval.ms", "1000", 0), ("match", "client_id=te.t", 0))).ErrorCode);

        var sub = (await Get(f, Guid.Empty))!;
        var id = sub.ClientInstanceId;
        Assert.Equal(["org.apache.kafka.producer."], sub.RequestedMetrics);
        Assert.Equal(1000, sub.PushIntervalMs);
        // A second get within the interval is throttled.
        Assert.Equal((short)ErrorCode.ThrottlingQuotaExceeded, (await Get(f, id))!.ErrorCode);

        var payload = Otlp(("org.apache.kafka.producer.record.queue.time.avg", 2.5), ("org.apache.kafka.producer.node.request.latency.max", 7));
        Assert.Equal((short)ErrorCode.UnknownSubscriptionId, await Push(f, id, sub.SubscriptionId + 1, payload));
        // After UNKNOWN_SUBSCRIPTION_ID the client may get again at once.
        now += 10;
        sub = (await Get(f, id))!;
        Assert.Equal((0, id), (sub.ErrorCode, sub.ClientInstanceId));
        // The first push after a get is always on time; this one is gzip-compressed.
        now += 10;
        Assert.Equal(0, await Push(f, id, sub.SubscriptionId, payload, CompressionType.Gzip));
        var latest = f.Broker.ClientTelemetry.LatestFor(id)!;
        Assert.Equal(["org.apache.kafka.producer.record.queue.time.avg", "org.apache.kafka.producer.node.request.latency.max"], latest.MetricNames);
        Assert.Equal(2.5, latest.Values["org.apache.kafka.producer.record.queue.time.avg"]);
        Assert.Equal(7, latest.Values["org.apache.kafka.producer.node.request.latency.max"]);
        Assert.Equal(2, latest.DataPoints);
        Assert.Equal(("test", CompressionType.Gzip), (latest.ClientId, latest.Compression));

        // Too soon after the last push.
        now += 500;
        Assert.Equal((short)ErrorCode.ThrottlingQuotaExceeded, await Push(f, id, sub.SubscriptionId, payload));
        now += 1000;
        Assert.Equal((short)ErrorCode.UnsupportedCompressionType, await Push(f, id, sub.SubscriptionId, payload, (CompressionType)9));
        now += 1000;
        Assert.Equal((short)ErrorCode.InvalidRecord, await Push(f, id, sub.SubscriptionId, [0x0A, 0x7F, 0x01]));
        now += 1000;
        f.Broker.ClientTelemetry.TelemetryMaxBytes = 16;
        Assert.Equal((short)ErrorCode.TelemetryTooLarge, await Push(f, id, sub.SubscriptionId, payload));
        f.Broker.ClientTelemetry.TelemetryMaxBytes = ClientTelemetry.DefaultTelemetryMaxBytes;
        now += 1000;
        Assert.Equal(0, await Push(f, id, sub.SubscriptionId, payload, CompressionType.Zstd));
        Assert.Equal(2, f.Broker.ClientTelemetry.LatestFor(id)!.PushCount);

        // A changed subscription set changes the id: the old one is unknown, a new get answers at once.
        Assert.Equal(0, (await Alter(f, "mine", ("interval.ms", "2000", 0))).ErrorCode);
        now += 1000;
        Assert.Equal((short)ErrorCode.UnknownSubscriptionId, await Push(f, id, sub.SubscriptionId, payload));
        var again = (await Get(f, id))!;
        Assert.Equal((0, 2000), (again.ErrorCode, again.PushIntervalMs));
        Assert.NotEqual(sub.SubscriptionId, again.SubscriptionId);

        // The terminating push is accepted even early; nothing is accepted after it.
        Assert.Equal(0, await Push(f, id, again.SubscriptionId, payload, CompressionType.Lz4, terminating: true));
        Assert.True(f.Broker.ClientTelemetry.LatestFor(id)!.Terminating);
        now += 5000;
        Assert.Equal((short)ErrorCode.InvalidRequest, await Push(f, id, again.SubscriptionId, payload));
        Assert.Equal((short)ErrorCode.InvalidRequest, await Push(f, Guid.Empty, again.SubscriptionId, payload));
    }

    [Fact]
    public async Task MatchPatternsSelectTheSubscriptions()
    {
        await using var f = new HandlerFixture();
        Assert.Equal(0, (await Alter(f, "a", ("metrics", "org.apache.kafka.consumer.", 0), ("interval.ms", "5000", 0), ("match", "client_id=test", 0))).ErrorCode);
        Assert.Equal(0, (await Alter(f, "b", ("metrics", "org.apache.kafka.producer.", 0), ("interval.ms", "2000", 0))).ErrorCode);
        Assert.Equal(0, (await Alter(f, "c", ("metrics", "*", 0), ("match", "client_id=tes", 0))).ErrorCode);   // whole-string match: no
        var r = (await Get(f, Guid.Empty))!;
        Assert.Equal(["org.apache.kafka.consumer.", "org.apache.kafka.producer."], r.RequestedMetrics.Order());
        Assert.Equal(2000, r.PushIntervalMs);
        Assert.Equal(0, (await Alter(f, "c", ("match", "client_id=t.*", 0))).ErrorCode);
        Assert.Equal(["*"], (await Get(f, Guid.Empty))!.RequestedMetrics);
    }

    [Fact]
    public void OtlpSummaryRefusesTruncatedInput()
    {
        var payload = Otlp(("m", 1));
        Assert.Equal(["m"], OtlpMetrics.Summarize(payload).MetricNames);
        Assert.Throws<FormatException>(() => OtlpMetrics.Summarize(payload.AsSpan(0, payload.Length - 3)));
    }

    // ---- A small OTLP MetricsData writer: resource_metrics{scope_metrics{metrics{name, gauge{data_points{as_double}}}}} ----

    internal static byte[] Otlp(params (string Name, double Value)[] metrics)
    {
        var scope = new List<byte>();
        foreach (var (name, value) in metrics)
        {
            var point = new List<byte> { 0x21 };   // field 4, fixed64
            point.AddRange(BitConverter.GetBytes(value));
            var gauge = Field(1, point.ToArray());
            var metric = Field(1, Encoding.UTF8.GetBytes(name)).Concat(Field(5, gauge)).ToArray();
            scope.AddRange(Field(2, metric));
        }
        return Field(1, Field(2, scope.ToArray()));
    }

    private static byte[] Field(int number, byte[] body)
    {
        var bytes = new List<byte>();
        Varint(bytes, (ulong)(number << 3 | 2));
        Varint(bytes, (ulong)body.Length);
        bytes.AddRange(body);
        return bytes.ToArray();
    }

    private static void Varint(List<byte> bytes, ulong v)
    {
        while (v >= 0x80) { bytes.Add((byte)(v | 0x80)); v >>= 7; }
        bytes.Add((byte)v);
    }
}
