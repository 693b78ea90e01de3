using Confluent.Kafka;
using Confluent.Kafka.Admin;

namespace Samsa.Kafka.Broker.ClientTests;

/// <summary>Debian's librdkafka (2.0.2, under Confluent.Kafka 1.9.3) reading many partitions from a
/// broker that keeps fetch sessions (KIP-227): every record exactly once; the broker's session
/// counters show the client's fetches asked for no session (librdkafka sends id 0, epoch -1).</summary>
public class FetchSessionClientTests
{
    [Fact]
    public async Task AConsumerOfManyPartitionsGetsEveryRecordExactlyOnce()
    {
        const int partitions = 24, perPartition = 40;
        await using var live = await LiveBroker.StartAsync();
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = live.Bootstrap }).Build())
            await admin.CreateTopicsAsync([new TopicSpecification { Name = "fsess", NumPartitions = partitions, ReplicationFactor = 1 }]);
        var sent = new HashSet<string>();
        using var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = live.Bootstrap, LingerMs = 2 }).Build();
        void Produce(int from, int to)
        {
            for (int i = from; i < to; i++)
                for (int p = 0; p < partitions; p++)
                {
                    string value = $"p{p}-{i}";
                    lock (sent) sent.Add(value);
                    producer.Produce(new TopicPartition("fsess", p), new Message<Null, string> { Value = value });
                }
            Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(30)));
        }
        Produce(0, perPartition / 2);

        var got = new List<ConsumeResult<Null, string>>();
        var reader = Task.Run(() =>
        {
            using var consumer = new ConsumerBuilder<Null, string>(new ConsumerConfig
            {
                BootstrapServers = live.Bootstrap, GroupId = "unused", EnableAutoCommit = false, FetchWaitMaxMs = 100,
            }).Build();
            consumer.Assign(Enumerable.Range(0, partitions).Select(p => new TopicPartitionOffset("fsess", p, Offset.Beginning)));
            var until = DateTime.UtcNow.AddSeconds(60);
            DateTime? settle = null;
            while (DateTime.UtcNow < until && (settle is null || DateTime.UtcNow < settle))
            {
                var r = consumer.Consume(TimeSpan.FromMilliseconds(100));
                if (r is not null && !r.IsPartitionEOF) got.Add(r);
                if (got.Count >= partitions * perPartition && settle is null) settle = DateTime.UtcNow.AddSeconds(1);
            }
            consumer.Close();
        });
        Produce(perPartition / 2, perPartition);
        await reader.WaitAsync(TimeSpan.FromSeconds(90));

        Assert.Equal(partitions * perPartition, got.Count);
        Assert.True(sent.SetEquals(got.Select(r => r.Message.Value)));
        foreach (var g in got.GroupBy(r => r.Partition.Value))
            Assert.Equal(Enumerable.Range(0, perPartition).Select(o => (long)o), g.Select(r => r.Offset.Value));
        Assert.True(live.Broker.FetchSessions.SessionlessFetches > 0);
        Assert.Equal(0, live.Broker.FetchSessions.SessionsCreated);
    }
}
