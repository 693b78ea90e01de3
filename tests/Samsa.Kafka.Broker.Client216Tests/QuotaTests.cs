using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Confluent.Kafka;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Security;
using Samsa.Kafka.Protocol.Messages;
using Xunit;

namespace Samsa.Kafka.Broker.Client216Tests;

public sealed class OneBrokerQuotaTests(SingleBroker target) : QuotaTests(target), IClassFixture<SingleBroker>;

public sealed class ThreeBrokerQuotaTests(ThreeBrokers target) : QuotaTests(target), IClassFixture<ThreeBrokers>;

/// <summary>
/// Client quotas as a user sees them: set through AlterClientQuotas at the bootstrap broker (on
/// the cluster one that leads nothing; the quota reaches the partition leader through
/// ZooKeeper's /config/changes), then a client moving data as fast as it can for 10 s is held to
/// the quota (measured rate within 20 %) and reports the broker's throttle time — Confluent.Kafka
/// 2.16 (librdkafka 2.16 statistics), Debian's librdkafka 2.0.2 (python3-confluent-kafka) and
/// kafka-python 2.0.2. Measured rates are written to the test output.
/// </summary>
public abstract class QuotaTests(KafkaTarget target)
{
    private const double Quota = 256 * 1024;
    /// <summary>Clients run 15 s from their first byte moved; the assertion is on the first 10 s.
    /// Upstream's rate measurement (quota.window.num = 11 windows of 1 s, the elapsed time counted
    /// as at least 10 s) lets a cold client move about quota × 10.x s at once, then holds it until
    /// that burst's sample leaves the 11 s window, when the next burst goes through (visible in the
    /// per-second figures written to SAMSA_QUOTA_REPORT). A run of 10 s from the first byte holds
    /// exactly one burst, so it measures the quota (+ the burst's fraction of a window); a window
    /// from 5 s to 15 s may or may not catch the second burst, so it is reported, not asserted.</summary>
    private static readonly TimeSpan Run = TimeSpan.FromSeconds(15);

    /// <summary>Byte counts stamped with the ms since the first one; rates over [from, to).</summary>
    private sealed class Meter
    {
        private readonly List<(double Ms, long Bytes)> _events = [];
        private readonly Stopwatch _sw = new();
        public TimeSpan Elapsed { get { lock (_events) return _sw.IsRunning ? _sw.Elapsed : TimeSpan.Zero; } }
        public bool Started { get { lock (_events) return _sw.IsRunning; } }
        public void Add(long bytes)
        {
            lock (_events)
            {
                if (!_sw.IsRunning) _sw.Start();
                _events.Add((_sw.Elapsed.TotalMilliseconds, bytes));
            }
        }
        public void AddAt(double ms, long bytes) { lock (_events) _events.Add((ms, bytes)); }
        public double Rate(double fromS, double toS)
        {
            lock (_events) return _events.Where(e => e.Ms >= fromS * 1000 && e.Ms < toS * 1000).Sum(e => (double)e.Bytes) / (toS - fromS);
        }
    }

    private static readonly object ReportGate = new();

    private void Report(string what, Meter meter, double throttle)
    {
        double first = meter.Rate(0, 10), steady = meter.Rate(5, 15);
        string line = $"QUOTA [{target.Name}] {what}: quota {Quota:0} B/s, first 10 s {first:0} B/s ({first / Quota:P0}), 5-15 s {steady:0} B/s ({steady / Quota:P0}), throttle max {throttle} ms";
        string perSecond = string.Join(" ", Enumerable.Range(0, 15).Select(i => (meter.Rate(i, i + 1) / 1024).ToString("0", System.Globalization.CultureInfo.InvariantCulture)));
        TestContext.Current.SendDiagnosticMessage(line);
        // SAMSA_QUOTA_REPORT=file collects the measured rates (KiB/s per second of the run too).
        if (Environment.GetEnvironmentVariable("SAMSA_QUOTA_REPORT") is { Length: > 0 } report)
            lock (ReportGate) File.AppendAllText(report, $"{line}; KiB/s per second: {perSecond}\n");
        Assert.InRange(first, Quota * 0.8, Quota * 1.2);
        Assert.True(throttle > 0, $"{what}: the client reports no broker throttle time");
    }
    private int BootstrapPort => int.Parse(target.Bootstrap.Split(':')[1], System.Globalization.CultureInfo.InvariantCulture);

    private async Task<AlterClientQuotasResponse> AlterAsync(IEnumerable<(string Type, string? Name)> entity, string key, double? value, bool validateOnly = false)
    {
        await using var client = await KafkaWireClient.ConnectAsync("127.0.0.1", BootstrapPort);
        var entry = new AlterClientQuotasRequest.EntryData();
        foreach (var (t, n) in entity) entry.Entity.Add(new() { EntityType = t, EntityName = n });
        entry.Ops.Add(new() { Key = key, Value = value ?? 0, Remove = value is null });
        return (await client.SendAsync<AlterClientQuotasResponse>(new AlterClientQuotasRequest { Entries = [entry], ValidateOnly = validateOnly }, 1))!;
    }

    private async Task SetAsync(IEnumerable<(string Type, string? Name)> entity, string key, double? value)
    {
        var r = await AlterAsync(entity, key, value);
        Assert.Equal(0, r.Entries.Single().ErrorCode);
    }

    private async Task<DescribeClientQuotasResponse> DescribeAsync(bool strict, params (string Type, sbyte Match, string? Name)[] components)
    {
        await using var client = await KafkaWireClient.ConnectAsync("127.0.0.1", BootstrapPort);
        return (await client.SendAsync<DescribeClientQuotasResponse>(new DescribeClientQuotasRequest
        {
            Components = components.Select(c => new DescribeClientQuotasRequest.ComponentData { EntityType = c.Type, MatchType = c.Match, Match = c.Name }).ToList(),
            Strict = strict,
        }, 1))!;
    }

    /// <summary>Every broker holds the quota (the cluster applies notifications asynchronously).</summary>
    private async Task WaitAppliedAsync(Func<Security.Quotas.QuotaManagers, bool> applied)
    {
        if (target is not ThreeBrokers tb) return;
        var sw = Stopwatch.StartNew();
        while (!new[] { 1, 2, 3 }.All(id => applied(tb.Cluster[id].Quotas)))
        {
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(15), "the quota did not reach every broker within 15 s");
            await Task.Delay(50);
        }
    }

    private static string Entities(DescribeClientQuotasResponse r) => string.Join(";", r.Entries!
        .Select(e => string.Join(",", e.Entity.Select(x => $"{x.EntityType}={x.EntityName ?? "<default>"}")) + ":" + string.Join(",", e.Values.Select(v => $"{v.Key}={v.Value}")))
        .Order(StringComparer.Ordinal));

    [Fact]
    public async Task AlterAndDescribeClientQuotasWithUpstreamFilterSemanticsAndErrors()
    {
        string user = "u-" + Guid.NewGuid().ToString("N")[..6] + "@example.com", app = "app-" + Guid.NewGuid().ToString("N")[..6];
        await SetAsync([("user", user)], "producer_byte_rate", 1024);
        await SetAsync([("user", user), ("client-id", app)], "consumer_byte_rate", 2048);
        await SetAsync([("client-id", app)], "request_percentage", 12.5);
        await SetAsync([("ip", "127.0.0.2")], "connection_creation_rate", 5);

        // EXACT user, strict: only the user entity; non-strict: also user+client.
        Assert.Equal($"user={user}:producer_byte_rate=1024", Entities(await DescribeAsync(true, ("user", 0, user))));
        Assert.Equal($"user={user},client-id={app}:consumer_byte_rate=2048;user={user}:producer_byte_rate=1024",
            Entities(await DescribeAsync(false, ("user", 0, user))));
        // SPECIFIED user + EXACT client-id: the user+client entity only.
        Assert.Equal($"user={user},client-id={app}:consumer_byte_rate=2048", Entities(await DescribeAsync(true, ("user", 2, null), ("client-id", 0, app))));
        Assert.Equal($"client-id={app}:request_percentage=12.5", Entities(await DescribeAsync(true, ("client-id", 0, app))));
        Assert.Equal("ip=127.0.0.2:connection_creation_rate=5", Entities(await DescribeAsync(true, ("ip", 0, "127.0.0.2"))));

        // Upstream's validation messages.
        var bad = await AlterAsync([("user", user)], "no_such_quota", 1);
        Assert.Equal((short)Protocol.ErrorCode.InvalidRequest, bad.Entries[0].ErrorCode);
        Assert.Equal("Invalid configuration key no_such_quota", bad.Entries[0].ErrorMessage);
        bad = await AlterAsync([("client-id", app)], "producer_byte_rate", 10.5);
        Assert.Equal("Configuration producer_byte_rate must be a LONG value", bad.Entries[0].ErrorMessage);
        bad = await AlterAsync([("ip", "127.0.0.1"), ("user", user)], "connection_creation_rate", 1);
        Assert.Equal("Invalid quota entity combination, IP entity should not be used with user/client ID entity.", bad.Entries[0].ErrorMessage);
        bad = await AlterAsync([("user", "")], "producer_byte_rate", 1);
        Assert.Equal("Empty user not supported", bad.Entries[0].ErrorMessage);
        var dup = await DescribeAsync(false, ("user", 2, null), ("user", 1, null));
        Assert.Equal((short)Protocol.ErrorCode.InvalidRequest, dup.ErrorCode);
        Assert.Equal("Duplicate user filter component entity type", dup.ErrorMessage);
        Assert.Null(dup.Entries);

        // validate_only writes nothing.
        var ok = await AlterAsync([("client-id", app)], "producer_byte_rate", 4096, validateOnly: true);
        Assert.Equal(0, ok.Entries[0].ErrorCode);
        Assert.Equal($"client-id={app}:request_percentage=12.5", Entities(await DescribeAsync(true, ("client-id", 0, app))));

        // Removing the last quota key leaves the entity out.
        await SetAsync([("client-id", app)], "request_percentage", null);
        Assert.Equal("", Entities(await DescribeAsync(true, ("client-id", 0, app))));
        await SetAsync([("user", user)], "producer_byte_rate", null);
        await SetAsync([("user", user), ("client-id", app)], "consumer_byte_rate", null);
        await SetAsync([("ip", "127.0.0.2")], "connection_creation_rate", null);
    }

    private static double MaxThrottle(string statisticsJson)
    {
        double max = 0;
        using var doc = JsonDocument.Parse(statisticsJson);
        if (doc.RootElement.TryGetProperty("brokers", out var brokers))
            foreach (var b in brokers.EnumerateObject())
                if (b.Value.TryGetProperty("throttle", out var t) && t.TryGetProperty("max", out var m))
                    max = Math.Max(max, m.GetDouble());
        return max;
    }

    [Fact]
    public async Task ProducerByteRateOnAClientIdHoldsAConfluent216ProducerToTheQuota()
    {
        var topic = target.NewTopicName("quota-produce");
        await target.CreateTopicAsync(topic, 1);
        string clientId = "qp-" + Guid.NewGuid().ToString("N")[..8];
        await SetAsync([("client-id", clientId)], "producer_byte_rate", Quota);
        await WaitAppliedAsync(q => q.Produce.QuotaFor(KafkaPrincipal.Anonymous, clientId) == Quota);

        var meter = new Meter();
        double throttle = 0;
        var value = new byte[1024];
        var config = new ProducerConfig { ClientId = clientId, LingerMs = 5, BatchSize = 16384, QueueBufferingMaxKbytes = 512, StatisticsIntervalMs = 500, Acks = Acks.Leader };
        var c = target.Config(config);
        using (var producer = new ProducerBuilder<Null, byte[]>(c).SetStatisticsHandler((_, json) => throttle = Math.Max(throttle, MaxThrottle(json))).Build())
        {
            await Task.Run(() =>
            {
                var sw = Stopwatch.StartNew();
                while (!meter.Started ? sw.Elapsed < TimeSpan.FromSeconds(30) : meter.Elapsed < Run)
                {
                    try
                    {
                        producer.Produce(topic, new Message<Null, byte[]> { Value = value }, dr =>
                        {
                            if (!dr.Error.IsError) meter.Add(dr.Message.Value.Length);
                        });
                    }
                    catch (ProduceException<Null, byte[]> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
                    {
                        producer.Poll(TimeSpan.FromMilliseconds(5));
                    }
                }
                producer.Flush(TimeSpan.FromSeconds(30));
            });
        }
        Report("Confluent.Kafka 2.16 producer, producer_byte_rate on its client id", meter, throttle);
        await SetAsync([("client-id", clientId)], "producer_byte_rate", null);
    }

    private async Task FillAsync(string topic, int bytes)
    {
        // Batches of 16 KiB: a fetch returns at least one whole batch (KIP-74), and a batch far above
        // the consumers' 64 KiB fetch size would make each throttled retry as big as the batch.
        using var producer = target.Producer<Null, byte[]>(new ProducerConfig { LingerMs = 5, BatchSize = 16384, ClientId = "fill-" + Guid.NewGuid().ToString("N")[..6] });
        var value = new byte[1024];
        await Task.Run(() =>
        {
            for (int i = 0; i < bytes / 1024; i++)
            {
                while (true)
                {
                    try { producer.Produce(topic, new Message<Null, byte[]> { Value = value }); break; }
                    catch (ProduceException<Null, byte[]> e) when (e.Error.Code == ErrorCode.Local_QueueFull) { producer.Poll(TimeSpan.FromMilliseconds(5)); }
                }
            }
            Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(60)));
        });
    }

    [Fact]
    public async Task ConsumerByteRateOnTheDefaultUserHoldsAConfluent216ConsumerToTheQuota()
    {
        var topic = target.NewTopicName("quota-consume");
        await target.CreateTopicAsync(topic, 1);
        await FillAsync(topic, 6 << 20);
        // <default> user: every ANONYMOUS client shares one meter (upstream's metric tags).
        await SetAsync([("user", null)], "consumer_byte_rate", Quota);
        try
        {
            await WaitAppliedAsync(q => q.Fetch.QuotaFor(KafkaPrincipal.Anonymous, "x") == Quota);
            var meter = new Meter();
            double throttle = 0;
            var c = target.Config(new ConsumerConfig
            {
                GroupId = target.NewGroupId(), EnableAutoCommit = false, StatisticsIntervalMs = 500,
                FetchMaxBytes = 65536, MaxPartitionFetchBytes = 65536, MessageMaxBytes = 65536,
            });
            using var consumer = new ConsumerBuilder<Ignore, byte[]>(c).SetStatisticsHandler((_, json) => throttle = Math.Max(throttle, MaxThrottle(json))).Build();
            consumer.Assign(new TopicPartitionOffset(topic, 0, Offset.Beginning));
            await Task.Run(() =>
            {
                var sw = Stopwatch.StartNew();
                while (!meter.Started ? sw.Elapsed < TimeSpan.FromSeconds(30) : meter.Elapsed < Run)
                    if (consumer.Consume(TimeSpan.FromMilliseconds(100)) is { IsPartitionEOF: false } r) meter.Add(r.Message.Value.Length);
                // One more statistics interval, so the last throttle is reported.
                var more = Stopwatch.StartNew();
                while (more.Elapsed < TimeSpan.FromSeconds(1)) consumer.Consume(TimeSpan.FromMilliseconds(100));
            });
            consumer.Close();
            Report("Confluent.Kafka 2.16 consumer, consumer_byte_rate on the <default> user", meter, throttle);
        }
        finally
        {
            await SetAsync([("user", null)], "consumer_byte_rate", null);
        }
    }

    private static string Script([CallerFilePath] string here = "") => Path.Combine(Path.GetDirectoryName(here)!, "clients", "quota_throttle.py");

    private async Task<JsonElement> RunPythonAsync(string lib, string mode, string topic, string clientId)
    {
        const string python = "/usr/bin/python3";
        Assert.SkipUnless(File.Exists(python), "no /usr/bin/python3");
        var psi = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { Script(), lib, mode, target.Bootstrap, topic, clientId, Run.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture) }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(150));
        string output = await stdout;
        Assert.True(p.ExitCode == 0, $"{lib} {mode} exited {p.ExitCode}: {await stderr}");
        return JsonDocument.Parse(output.Trim().Split('\n')[^1]).RootElement.Clone();
    }

    [Theory]
    [InlineData("confluent", "produce")]
    [InlineData("confluent", "consume")]
    [InlineData("kafka-python", "produce")]
    [InlineData("kafka-python", "consume")]
    public async Task DebianClientsAreHeldToAClientIdQuota(string lib, string mode)
    {
        var topic = target.NewTopicName("quota-" + mode);
        await target.CreateTopicAsync(topic, 1);
        if (mode == "consume") await FillAsync(topic, 6 << 20);
        string clientId = $"q-{lib}-{mode}-" + Guid.NewGuid().ToString("N")[..6];
        string key = mode == "produce" ? "producer_byte_rate" : "consumer_byte_rate";
        await SetAsync([("client-id", clientId)], key, Quota);
        await WaitAppliedAsync(q => (mode == "produce" ? q.Produce : q.Fetch).QuotaFor(KafkaPrincipal.Anonymous, clientId) == Quota);
        try
        {
            var result = await RunPythonAsync(lib, mode, topic, clientId);
            var meter = new Meter();
            double throttle = result.GetProperty("throttle_max_ms").GetDouble();
            foreach (var e in result.GetProperty("events").EnumerateArray()) meter.AddAt(e[0].GetDouble(), e[1].GetInt64());
            Report($"{(lib == "confluent" ? "librdkafka 2.0.2 (python3-confluent-kafka)" : "kafka-python 2.0.2")} {mode}, {key} on its client id", meter, throttle);
        }
        finally
        {
            await SetAsync([("client-id", clientId)], key, null);
        }
    }
}
