using System.Diagnostics;
using Confluent.Kafka;
using Samsa.Testing;
using Xunit;

// The leader-kill test reports its own duration: it runs alone.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace SamsaTestingSample;

/// <summary>A producer and a consumer on a three-broker Samsa cluster; the partition's leader is
/// killed mid-stream and the consumer must still read every record, once, in order.</summary>
public class LeaderKillTests
{
    [Fact]
    public async Task Leader_killed_mid_stream_consumer_resumes_without_loss()
    {
        var total = Stopwatch.StartNew();
        // A short ZooKeeper session so the cluster notices the dead leader within ~2 s.
        await using var cluster = await SamsaCluster.StartAsync(brokers: 3, keeper: true,
            new SamsaClusterOptions { InMemory = true, SessionTimeoutMs = 2000 });
        await cluster.CreateTopicAsync("orders", partitions: 1, replicationFactor: 3);
        var started = total.Elapsed;

        var producerConfig = new ProducerConfig
        {
            BootstrapServers = cluster.BootstrapServers, Acks = Acks.All, EnableIdempotence = true, LingerMs = 2,
            ReconnectBackoffMs = 50, ReconnectBackoffMaxMs = 500, RetryBackoffMs = 50,
        };
        var consumerConfig = new ConsumerConfig
        {
            BootstrapServers = cluster.BootstrapServers, GroupId = "sample", AutoOffsetReset = AutoOffsetReset.Earliest,
            EnableAutoCommit = false, FetchWaitMaxMs = 100, ReconnectBackoffMs = 50, ReconnectBackoffMaxMs = 500,
        };
        using var producer = new ProducerBuilder<Null, string>(producerConfig).SetLogHandler((_, _) => { }).Build();
        using var consumer = new ConsumerBuilder<Null, string>(consumerConfig).SetLogHandler((_, _) => { }).Build();
        consumer.Assign(new TopicPartitionOffset("orders", 0, Offset.Beginning));

        var received = new List<string>();
        await ProduceAsync(producer, 0, 500);
        Consume(consumer, received, 500, TimeSpan.FromSeconds(10));

        int leader = cluster.LeaderOf("orders");
        await cluster.KillBrokerAsync(leader);          // no controlled shutdown, ZooKeeper session left to expire
        await ProduceAsync(producer, 500, 1000);        // the producer waits out the election and retries
        Consume(consumer, received, 1000, TimeSpan.FromSeconds(15));

        Assert.Equal(Enumerable.Range(0, 1000).Select(i => i.ToString()), received);
        Assert.NotEqual(leader, cluster.LeaderOf("orders"));
        string figures = $"cluster start {started.TotalSeconds:0.00} s, whole test {total.Elapsed.TotalSeconds:0.00} s (leader {leader} killed)";
        if (Environment.GetEnvironmentVariable("SAMSA_SAMPLE_TIMING") is { Length: > 0 } path) File.WriteAllText(path, figures);
    }

    private static Task ProduceAsync(IProducer<Null, string> producer, int from, int to) =>
        Task.WhenAll(Enumerable.Range(from, to - from).Select(i => producer.ProduceAsync("orders", new Message<Null, string> { Value = i.ToString() })));

    private static void Consume(IConsumer<Null, string> consumer, List<string> into, int until, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (into.Count < until && sw.Elapsed < timeout)
            if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { IsPartitionEOF: false, Message: not null } r) into.Add(r.Message.Value);
    }
}

/// <summary>The xUnit v2 class fixture: one three-broker cluster shared by the class's tests.</summary>
public class FixtureTests(SamsaClusterFixture fixture) : IClassFixture<SamsaClusterFixture>
{
    [Fact]
    public async Task Fixture_cluster_takes_a_record()
    {
        using var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = fixture.BootstrapServers }).Build();
        var result = await producer.ProduceAsync("fixture-topic", new Message<Null, string> { Value = "hello" });
        Assert.Equal(PersistenceStatus.Persisted, result.Status);
    }
}
