using System.Diagnostics;
using Confluent.Kafka;

[assembly: Xunit.CollectionBehavior(DisableTestParallelization = true)]

namespace Samsa.Testing.Tests;

/// <summary>Confluent.Kafka 2.16 clients for the fault tests, and the produce/consume loops.</summary>
internal static class Clients
{
    public static IProducer<Null, string> Producer(string bootstrap, Action<ProducerConfig>? configure = null)
    {
        var config = new ProducerConfig
        {
            BootstrapServers = bootstrap,
            Acks = Acks.All,
            EnableIdempotence = true,
            LingerMs = 2,
            MessageTimeoutMs = 30000,
            // Quick reconnects and metadata refreshes after a fault (librdkafka's defaults back off longer).
            ReconnectBackoffMs = 50,
            ReconnectBackoffMaxMs = 500,
            RetryBackoffMs = 50,
        };
        configure?.Invoke(config);
        return new ProducerBuilder<Null, string>(config).SetLogHandler((_, _) => { }).Build();
    }

    public static IConsumer<Null, string> Consumer(string bootstrap, Action<ConsumerConfig>? configure = null)
    {
        var config = new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            GroupId = "g-" + Guid.NewGuid().ToString("N")[..8],
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnableAutoCommit = false,
            ReconnectBackoffMs = 50,
            ReconnectBackoffMaxMs = 500,
            FetchWaitMaxMs = 100,
        };
        configure?.Invoke(config);
        return new ConsumerBuilder<Null, string>(config).SetLogHandler((_, _) => { }).Build();
    }

    /// <summary>Reads the partition from its start until <paramref name="count"/> records arrived or
    /// the deadline passed; returns the values in the order read.</summary>
    public static List<string> ReadValues(IConsumer<Null, string> consumer, string topic, int count, TimeSpan timeout)
    {
        consumer.Assign(new TopicPartitionOffset(topic, 0, Offset.Beginning));
        var values = new List<string>();
        var sw = Stopwatch.StartNew();
        while (values.Count < count && sw.Elapsed < timeout)
        {
            var r = consumer.Consume(TimeSpan.FromMilliseconds(200));
            if (r is { IsPartitionEOF: false, Message: not null }) values.Add(r.Message.Value);
        }
        return values;
    }

    public static async Task ProduceRangeAsync(IProducer<Null, string> producer, string topic, int from, int to)
    {
        var pending = new List<Task<DeliveryResult<Null, string>>>();
        for (int i = from; i < to; i++) pending.Add(producer.ProduceAsync(topic, new Message<Null, string> { Value = i.ToString(System.Globalization.CultureInfo.InvariantCulture) }));
        await Task.WhenAll(pending);
    }

    public static IEnumerable<string> Range(int from, int to) => Enumerable.Range(from, to - from).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture));
}
