using Confluent.Kafka;
using Confluent.Kafka.Admin;

namespace Samsa.Kafka.Broker.ClientTests;

/// <summary>librdkafka (Confluent.Kafka 1.9.3) consuming records the broker sends from segment files with sendfile.</summary>
public class ZeroCopyConsumeClientTests
{
    [Fact]
    public async Task ConfluentConsumerReadsEveryRecordSentFromSegmentFiles()
    {
        // Small segments: a consumer's fetches cross many segment files.
        await using var live = await LiveBroker.StartAsync(("log.segment.bytes", "65536"));
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = live.Bootstrap }).Build())
        {
            await admin.CreateTopicsAsync([new TopicSpecification { Name = "zc", NumPartitions = 3, ReplicationFactor = 1 }]);
        }
        const int count = 3000;
        var random = new Random(5);
        var sent = new Dictionary<string, string>();
        using (var producer = new ProducerBuilder<string, string>(new ProducerConfig
        {
            BootstrapServers = live.Bootstrap, LingerMs = 5, Acks = Acks.All, CompressionType = CompressionType.Lz4,
        }).Build())
        {
            for (int i = 0; i < count; i++)
            {
                string key = $"k{i}";
                string value = new string((char)('a' + i % 26), random.Next(1, 2000));
                sent[key] = value;
                producer.Produce(new TopicPartition("zc", i % 3), new Message<string, string> { Key = key, Value = value });
            }
            Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(60)));
        }

        var received = new Dictionary<string, string>();
        var lastOffset = new long[3] { -1, -1, -1 };
        using (var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = live.Bootstrap, GroupId = "zc-reader", EnableAutoCommit = false,
            // Small fetches: many responses, each a handful of file ranges.
            MaxPartitionFetchBytes = 16 * 1024,
        }).Build())
        {
            consumer.Assign(Enumerable.Range(0, 3).Select(p => new TopicPartitionOffset("zc", p, Offset.Beginning)));
            var deadline = DateTime.UtcNow.AddSeconds(90);
            while (received.Count < count && DateTime.UtcNow < deadline)
            {
                var result = consumer.Consume(TimeSpan.FromMilliseconds(500));
                if (result is null || result.IsPartitionEOF) continue;
                int p = result.Partition.Value;
                Assert.True(result.Offset.Value > lastOffset[p], $"partition {p} went back from {lastOffset[p]} to {result.Offset.Value}");
                lastOffset[p] = result.Offset.Value;
                Assert.True(received.TryAdd(result.Message.Key, result.Message.Value), $"{result.Message.Key} received twice");
            }
            consumer.Close();
        }
        Assert.Equal(count, received.Count);
        Assert.All(sent, kv => Assert.Equal(kv.Value, received[kv.Key]));
        Assert.True(live.Broker.FileRangeBytesSent > 0, "the broker sent no records with sendfile");
    }
}
