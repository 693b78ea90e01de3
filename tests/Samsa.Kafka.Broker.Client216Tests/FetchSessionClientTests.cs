using Confluent.Kafka;
using Xunit;

namespace Samsa.Kafka.Broker.Client216Tests;

public sealed class OneBrokerFetchSessionClientTests(SingleBroker target) : FetchSessionClientTests(target), IClassFixture<SingleBroker>;

public sealed class ThreeBrokerFetchSessionClientTests(ThreeBrokers target) : FetchSessionClientTests(target), IClassFixture<ThreeBrokers>;

/// <summary>librdkafka reading many partitions from a broker that keeps fetch sessions (KIP-227):
/// every record exactly once. What the brokers' session caches counted is asserted too, so the test
/// says which kind of fetch the client really sent: librdkafka 2.16 sends every Fetch without a
/// session (SessionId 0, epoch -1), so its fetches stay full fetches.</summary>
public abstract class FetchSessionClientTests(KafkaTarget target)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);
    private const int Partitions = 32, PerPartitionAndRound = 15;

    [Fact]
    public async Task AConsumerOfManyPartitionsGetsEveryRecordExactlyOnce()
    {
        var topic = target.NewTopicName("fsess");
        await target.CreateTopicAsync(topic, Partitions);
        var brokers = target.Brokers;
        long consumerSessionsBefore = brokers.Sum(b => b.FetchSessions.ConsumerSessionsCreated);
        long sessionlessBefore = brokers.Sum(b => b.FetchSessions.SessionlessFetches);

        var sent = new HashSet<string>();
        using var producer = target.Producer<Null, string>(new ProducerConfig { LingerMs = 2, Acks = Acks.All });
        async Task ProduceRound(int round)
        {
            var tasks = new List<Task>();
            for (int p = 0; p < Partitions; p++)
                for (int i = 0; i < PerPartitionAndRound; i++)
                {
                    string value = $"r{round}-p{p}-{i}";
                    lock (sent) sent.Add(value);
                    tasks.Add(producer.ProduceAsync(new TopicPartition(topic, p), new Message<Null, string> { Value = value }));
                }
            await Task.WhenAll(tasks).WaitAsync(Deadline);
        }
        await ProduceRound(0);

        var got = new List<ConsumeResult<Null, string>>();
        var consumed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        const int total = Partitions * PerPartitionAndRound * 3;
        var thread = new Thread(() =>
        {
            try
            {
                using var consumer = target.Consumer<Null, string>(new ConsumerConfig { GroupId = "unused", EnableAutoCommit = false, FetchWaitMaxMs = 100 });
                consumer.Assign(Enumerable.Range(0, Partitions).Select(p => new TopicPartitionOffset(topic, p, Offset.Beginning)));
                var until = DateTime.UtcNow + Deadline;
                // Read past the expected count for a moment so a duplicate would show.
                DateTime? settle = null;
                while (DateTime.UtcNow < until && (settle is null || DateTime.UtcNow < settle))
                {
                    var r = consumer.Consume(TimeSpan.FromMilliseconds(100));
                    if (r is not null && !r.IsPartitionEOF) lock (got) got.Add(r);
                    lock (got) if (got.Count >= total && settle is null) settle = DateTime.UtcNow.AddSeconds(1);
                }
                consumer.Close();
                consumed.SetResult();
            }
            catch (Exception e) { consumed.SetException(e); }
        }) { IsBackground = true, Name = "fetch-session consumer" };
        thread.Start();
        // More records while the consumer reads: partitions change under its fetches.
        await ProduceRound(1);
        await Task.Delay(300);
        await ProduceRound(2);
        await consumed.Task.WaitAsync(Deadline + TimeSpan.FromSeconds(10));

        Assert.Equal(total, got.Count);
        Assert.Equal(total, got.Select(r => (r.Partition.Value, r.Offset.Value)).Distinct().Count());
        Assert.True(sent.SetEquals(got.Select(r => r.Message.Value)));
        foreach (var g in got.GroupBy(r => r.Partition.Value))
            Assert.Equal(Enumerable.Range(0, PerPartitionAndRound * 3).Select(o => (long)o), g.Select(r => r.Offset.Value));

        // What the client sent, as the brokers counted it: v7+ fetches asking for no session, and
        // no consumer session made (followers of the three-broker cluster keep theirs).
        Assert.True(brokers.Sum(b => b.FetchSessions.SessionlessFetches) > sessionlessBefore);
        Assert.Equal(consumerSessionsBefore, brokers.Sum(b => b.FetchSessions.ConsumerSessionsCreated));
    }
}
