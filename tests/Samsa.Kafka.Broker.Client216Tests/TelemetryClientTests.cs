using Confluent.Kafka;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Protocol.Messages;
using Xunit;

namespace Samsa.Kafka.Broker.Client216Tests;

public sealed class OneBrokerTelemetryTests(SingleBroker target) : TelemetryClientTests(target), IClassFixture<SingleBroker>;

public sealed class ThreeBrokerTelemetryTests(ThreeBrokers target) : TelemetryClientTests(target), IClassFixture<ThreeBrokers>;

/// <summary>
/// KIP-714 client telemetry as librdkafka 2.16 (Confluent.Kafka 2.16) speaks it on its own
/// (enable.metrics.push defaults to true): with a client-metrics subscription matching the client
/// it pushes OTLP metrics the broker records; without one it asks, gets no metrics, and keeps
/// working without warnings. Plus DescribeTopicPartitions (KIP-966), which librdkafka does not use
/// (its DescribeTopics sends Metadata), paged through with the wire client at the bootstrap broker.
/// </summary>
public abstract class TelemetryClientTests(KafkaTarget target)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private async Task<KafkaWireClient> BootstrapClientAsync()
    {
        var ep = target.Bootstrap.Split(':');
        return await KafkaWireClient.ConnectAsync(ep[0], int.Parse(ep[1]));
    }

    private async Task AlterSubscriptionAsync(string name, params (string Key, string? Value, sbyte Op)[] ops)
    {
        await using var client = await BootstrapClientAsync();
        var r = await client.SendAsync<IncrementalAlterConfigsResponse>(new IncrementalAlterConfigsRequest
        {
            Resources = [new()
            {
                ResourceType = 16, ResourceName = name,
                Configs = ops.Select(o => new IncrementalAlterConfigsRequest.AlterableConfig { Name = o.Key, Value = o.Value, ConfigOperation = o.Op }).ToList(),
            }],
        }, 1);
        Assert.Equal(0, r!.Responses.Single().ErrorCode);
    }

    [Fact]
    public async Task AProducerMatchingASubscriptionPushesItsMetricsToTheBroker()
    {
        string clientId = "telemetry-" + Guid.NewGuid().ToString("N")[..10];
        string subscription = "sub-" + clientId;
        await AlterSubscriptionAsync(subscription,
            ("metrics", "org.apache.kafka.producer.", 0), ("interval.ms", "500", 0), ("match", $"client_id={clientId}", 0));
        try
        {
            // Every broker follows the subscription (on the cluster through /config/changes).
            await WaitUntil(() => target.Brokers.All(b => b.ClientTelemetry.StoredConfig(subscription).Count == 3), "every broker has the subscription");
            await using (var client = await BootstrapClientAsync())
            {
                var listed = await client.SendAsync<ListConfigResourcesResponse>(new ListConfigResourcesRequest { ResourceTypes = [16] }, 1);
                Assert.Contains(subscription, listed!.ConfigResources.Select(r => r.ResourceName));
                var described = await client.SendAsync<DescribeConfigsResponse>(new DescribeConfigsRequest
                {
                    Resources = [new() { ResourceType = 16, ResourceName = subscription, ConfigurationKeys = null }],
                }, 4);
                Assert.Equal("500", described!.Results.Single().Configs.Single(c => c.Name == "interval.ms").Value);
            }

            var topic = target.NewTopicName("telemetry");
            await target.CreateTopicAsync(topic, 2);
            var warnings = new List<string>();
            var config = target.Config(new ProducerConfig { ClientId = clientId, LingerMs = 5 });
            using var producer = new ProducerBuilder<Null, string>(config)
                .SetLogHandler((_, m) => { KafkaTarget.Log(clientId, m); if (m.Level <= SyslogLevel.Warning) lock (warnings) warnings.Add($"{m.Facility} {m.Message}"); })
                .Build();
            Telemetry.PushedTelemetry? pushed = null;
            var deadline = DateTime.UtcNow + Deadline;
            while (pushed is null && DateTime.UtcNow < deadline)
            {
                await producer.ProduceAsync(topic, new Message<Null, string> { Value = "v" }).WaitAsync(Deadline);
                await Task.Delay(200);
                pushed = target.Brokers.SelectMany(b => b.ClientTelemetry.Latest.Values)
                    .FirstOrDefault(p => p.ClientId == clientId && p.MetricNames.Count > 0);
            }
            Assert.NotNull(pushed);
            // Only the subscribed prefix, as librdkafka matches requested metrics by prefix.
            Assert.All(pushed!.MetricNames, n => Assert.StartsWith("org.apache.kafka.producer.", n));
            Assert.True(pushed.DataPoints > 0);
            Assert.False(string.IsNullOrEmpty(pushed.SoftwareName));   // from ApiVersions v3
            Assert.Contains((byte)pushed.Compression, new byte[] { 0, 1, 2, 3, 4 });
            Assert.DoesNotContain(warnings, w => w.Contains("TELEMETRY", StringComparison.OrdinalIgnoreCase));
        }
        finally
        {
            await AlterSubscriptionAsync(subscription, ("metrics", null, 1), ("interval.ms", null, 1), ("match", null, 1));
        }
    }

    [Fact]
    public async Task WithoutASubscriptionClientsAskOnceAndKeepWorkingQuietly()
    {
        string clientId = "no-telemetry-" + Guid.NewGuid().ToString("N")[..10];
        var topic = target.NewTopicName("quiet");
        await target.CreateTopicAsync(topic, 1);
        var warnings = new List<string>();
        void OnLog(LogMessage m)
        {
            KafkaTarget.Log(clientId, m);
            if (m.Level <= SyslogLevel.Warning) lock (warnings) warnings.Add($"{m.Facility} {m.Message}");
        }
        var errors = new List<string>();
        using (var producer = new ProducerBuilder<Null, string>(target.Config(new ProducerConfig { ClientId = clientId })).SetLogHandler((_, m) => OnLog(m))
            .SetErrorHandler((_, e) => { lock (errors) errors.Add(e.Reason); }).Build())
        {
            for (int i = 0; i < 10; i++)
                Assert.Equal(PersistenceStatus.Persisted, (await producer.ProduceAsync(topic, new Message<Null, string> { Value = $"v{i}" }).WaitAsync(Deadline)).Status);
            // librdkafka asks for its subscription on its own; the broker answers no metrics.
            await WaitUntil(() => target.Brokers.Any(b => b.ClientTelemetry.Instances().Any(i => i.ClientId == clientId)), "the producer asked for its telemetry subscription");
            Assert.All(target.Brokers.SelectMany(b => b.ClientTelemetry.Instances()).Where(i => i.ClientId == clientId), i => Assert.Empty(i.RequestedMetrics));
        }
        int consumed = 0;
        using (var consumer = new ConsumerBuilder<Null, string>(target.Config(new ConsumerConfig { ClientId = clientId, GroupId = target.NewGroupId(), AutoOffsetReset = AutoOffsetReset.Earliest }))
            .SetLogHandler((_, m) => OnLog(m)).SetErrorHandler((_, e) => { lock (errors) errors.Add(e.Reason); }).Build())
        {
            await Task.Run(() =>
            {
                consumer.Subscribe(topic);
                var until = DateTime.UtcNow + Deadline;
                while (consumed < 10 && DateTime.UtcNow < until)
                    if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { IsPartitionEOF: false }) consumed++;
                consumer.Close();
            });
        }
        Assert.Equal(10, consumed);
        Assert.Empty(errors);
        Assert.DoesNotContain(warnings, w => w.Contains("TELEMETRY", StringComparison.OrdinalIgnoreCase));
        Assert.DoesNotContain(target.Brokers.SelectMany(b => b.ClientTelemetry.Latest.Values), p => p.ClientId == clientId);
    }

    [Fact]
    public async Task DescribeTopicPartitionsPagesThroughSeveralTopicsLikeMetadata()
    {
        string prefix = "dtp-" + Guid.NewGuid().ToString("N")[..8];
        var topics = new[] { (Name: prefix + "-a", Partitions: 3), (Name: prefix + "-b", Partitions: 4), (Name: prefix + "-c", Partitions: 2) };
        foreach (var (name, partitions) in topics) await target.CreateTopicAsync(name, partitions);

        await using var client = await BootstrapClientAsync();
        var pages = new List<DescribeTopicPartitionsResponse>();
        DescribeTopicPartitionsRequest.CursorData? cursor = null;
        do
        {
            var page = await client.SendAsync<DescribeTopicPartitionsResponse>(new DescribeTopicPartitionsRequest
            {
                // Asked in another order than the answer's (by name).
                Topics = topics.Reverse().Select(t => new DescribeTopicPartitionsRequest.TopicRequest { Name = t.Name }).ToList(),
                ResponsePartitionLimit = 4,
                Cursor = cursor,
            }, 0);
            pages.Add(page!);
            cursor = page!.NextTopicPartition is { } next ? new() { TopicName = next.TopicName, PartitionIndex = next.PartitionIndex } : null;
        } while (cursor is not null && pages.Count < 10);

        // 9 partitions, 4 per page: a-0..2 b-0 | b-1..3 c-0 | c-1.
        Assert.Equal(3, pages.Count);
        Assert.Equal([4, 4, 1], pages.Select(p => p.Topics.Sum(t => t.Partitions.Count)));
        var seen = pages.SelectMany(p => p.Topics).SelectMany(t => t.Partitions.Select(p => (t.Name!, p.PartitionIndex))).ToList();
        Assert.Equal(topics.SelectMany(t => Enumerable.Range(0, t.Partitions).Select(i => (t.Name, i))), seen);

        // Each partition as Metadata v12 at the same broker tells it.
        var metadata = await client.SendAsync<MetadataResponse>(new MetadataRequest
        {
            Topics = topics.Select(t => new MetadataRequest.MetadataRequestTopic { Name = t.Name }).ToList(), AllowAutoTopicCreation = false,
        }, 12);
        foreach (var t in pages.SelectMany(p => p.Topics))
        {
            var md = metadata!.Topics.Single(m => m.Name == t.Name);
            Assert.Equal((0, md.TopicId, false), (t.ErrorCode, t.TopicId, t.IsInternal));
            Assert.NotEqual(int.MinValue, t.TopicAuthorizedOperations);
            foreach (var p in t.Partitions)
            {
                var mp = md.Partitions.Single(x => x.PartitionIndex == p.PartitionIndex);
                Assert.Equal((mp.LeaderId, mp.LeaderEpoch), (p.LeaderId, p.LeaderEpoch));
                Assert.True(p.LeaderId >= 0);
                Assert.Equal(mp.ReplicaNodes, p.ReplicaNodes);
                Assert.Equal(mp.IsrNodes, p.IsrNodes);
                Assert.Empty(p.EligibleLeaderReplicas!);   // ZooKeeper mode keeps no ELR
            }
        }
    }

    private static async Task WaitUntil(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"timed out waiting until {what}");
            await Task.Delay(50);
        }
    }
}
