using Confluent.Kafka;
using Confluent.Kafka.Admin;

namespace Samsa.Kafka.Broker.Tests.EndToEnd;

/// <summary>Confluent.Kafka 2.15.1 over Debian's librdkafka 2.0.2 against the broker.</summary>
public class ConfluentKafkaTests
{
    static ConfluentKafkaTests()
    {
        // Confluent.Kafka finds Debian's librdkafka through the librdkafka.so symlink (CLIENTS.md).
        if (!File.Exists("/usr/lib/x86_64-linux-gnu/librdkafka.so") && !File.Exists("/usr/lib/aarch64-linux-gnu/librdkafka.so"))
            ExternalClients.Require("kcat", "librdkafka-dev kcat");
    }

    [Fact]
    public async Task ProduceThenConsumeWithAssign()
    {
        await using var live = await LiveBroker.StartAsync();
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = live.Bootstrap }).Build())
        {
            await admin.CreateTopicsAsync([new TopicSpecification { Name = "orders", NumPartitions = 3, ReplicationFactor = 1 }]);
        }
        using (var producer = new ProducerBuilder<string, string>(new ProducerConfig
               {
                   BootstrapServers = live.Bootstrap, Acks = Acks.All, LingerMs = 5, CompressionType = CompressionType.Lz4,
               }).Build())
        {
            for (int i = 0; i < 90; i++)
            {
                var dr = await producer.ProduceAsync(new TopicPartition("orders", i % 3), new Message<string, string> { Key = $"k{i}", Value = $"v{i}" });
                Assert.Equal(PersistenceStatus.Persisted, dr.Status);
                Assert.Equal(i / 3, dr.Offset.Value);
            }
        }
        // Confluent.Kafka 2.15.1's consumer calls rd_kafka_message_leader_epoch, which Debian's
        // librdkafka 2.0.2 lacks; the records are read back over the wire instead (and by kcat in KcatTests).
        var seen = new List<(string Key, string Value)>();
        for (int p = 0; p < 3; p++)
            seen.AddRange(await WireFetch.AllAsync(live.Broker.BoundEndPoint.Port, "orders", p));
        Assert.Equal(90, seen.Count);
        Assert.All(seen, kv => Assert.Equal($"k{kv.Value[1..]}", kv.Key));
        Assert.Equal(Enumerable.Range(0, 90).Select(i => $"v{i}").OrderBy(x => x), seen.Select(kv => kv.Value).OrderBy(x => x));
        using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig { BootstrapServers = live.Bootstrap, GroupId = "unused" }).Build();
        var wm = consumer.QueryWatermarkOffsets(new TopicPartition("orders", 1), TimeSpan.FromSeconds(5));
        Assert.Equal((0L, 30L), (wm.Low.Value, wm.High.Value));
    }

    [Fact]
    public async Task AdminCreateDescribeAlterDeleteTopics()
    {
        await using var live = await LiveBroker.StartAsync();
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = live.Bootstrap }).Build();
        await admin.CreateTopicsAsync([new TopicSpecification
        {
            Name = "cfg", NumPartitions = 2, ReplicationFactor = 1, Configs = new() { ["retention.ms"] = "3600000" },
        }]);
        var dup = await Assert.ThrowsAsync<CreateTopicsException>(() =>
            admin.CreateTopicsAsync([new TopicSpecification { Name = "cfg", NumPartitions = 1, ReplicationFactor = 1 }]));
        Assert.Equal(ErrorCode.TopicAlreadyExists, dup.Results[0].Error.Code);
        var bad = await Assert.ThrowsAsync<CreateTopicsException>(() =>
            admin.CreateTopicsAsync([new TopicSpecification { Name = "bad", NumPartitions = 1, ReplicationFactor = 1, Configs = new() { ["cleanup.policy"] = "nope" } }]));
        Assert.Equal(ErrorCode.InvalidConfig, bad.Results[0].Error.Code);

        var meta = admin.GetMetadata(TimeSpan.FromSeconds(10));
        Assert.Equal(1, meta.Brokers.Single().BrokerId);
        Assert.Equal(2, meta.Topics.Single(t => t.Topic == "cfg").Partitions.Count);

        var resource = new ConfigResource { Type = ResourceType.Topic, Name = "cfg" };
        var described = await admin.DescribeConfigsAsync([resource]);
        var retention = described[0].Entries["retention.ms"];
        Assert.Equal("3600000", retention.Value);
        Assert.Equal(ConfigSource.DynamicTopicConfig, retention.Source);
        Assert.Equal(ConfigSource.DefaultConfig, described[0].Entries["segment.bytes"].Source);

        // librdkafka 2.0.2 has no IncrementalAlterConfigs; the legacy AlterConfigs replaces all overrides.
        await admin.AlterConfigsAsync(new Dictionary<ConfigResource, List<ConfigEntry>>
        {
            [resource] = [new ConfigEntry { Name = "retention.ms", Value = "60000" }],
        });
        described = await admin.DescribeConfigsAsync([resource]);
        Assert.Equal("60000", described[0].Entries["retention.ms"].Value);

        await admin.CreatePartitionsAsync([new PartitionsSpecification { Topic = "cfg", IncreaseTo = 4 }]);
        Assert.Equal(4, admin.GetMetadata("cfg", TimeSpan.FromSeconds(10)).Topics[0].Partitions.Count);

        await admin.DeleteTopicsAsync(["cfg"]);
        Assert.DoesNotContain(admin.GetMetadata(TimeSpan.FromSeconds(10)).Topics, t => t.Topic == "cfg");
    }

    [Fact]
    public async Task AutoCreatedTopicAndWatermarksAfterDeleteRecords()
    {
        await using var live = await LiveBroker.StartAsync();
        using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = live.Bootstrap }).Build())
        {
            // Auto-created topic (auto.create.topics.enable=true, librdkafka asks via Metadata).
            for (int i = 0; i < 10; i++) await producer.ProduceAsync("auto", new Message<Null, string> { Value = $"m{i}" });
        }
        // Confluent.Kafka 2.15.1's DeleteRecordsAsync never completes over librdkafka 2.0.2 (the
        // broker's answer arrives; the binding does not surface it), so records are deleted over the wire.
        await using (var wire = await Samsa.Kafka.Broker.Client.KafkaWireClient.ConnectAsync("127.0.0.1", live.Broker.BoundEndPoint.Port))
        {
            var result = await wire.SendAsync<Samsa.Kafka.Protocol.Messages.DeleteRecordsResponse>(new Samsa.Kafka.Protocol.Messages.DeleteRecordsRequest
            {
                Topics = [new() { Name = "auto", Partitions = [new() { PartitionIndex = 0, Offset = 4 }] }],
            }, 1);
            Assert.Equal(4, result!.Topics[0].Partitions[0].LowWatermark);
        }
        using var consumer = new ConsumerBuilder<Null, string>(new ConsumerConfig { BootstrapServers = live.Bootstrap, GroupId = "unused", EnableAutoCommit = false }).Build();
        var wm = consumer.QueryWatermarkOffsets(new TopicPartition("auto", 0), TimeSpan.FromSeconds(5));
        Assert.Equal((4L, 10L), (wm.Low.Value, wm.High.Value));
    }
}
