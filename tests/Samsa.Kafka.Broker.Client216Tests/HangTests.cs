using System.Diagnostics;
using System.Text;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Confluent.Kafka.SyncOverAsync;
using Xunit;

namespace Samsa.Kafka.Broker.Client216Tests;

public sealed class OneBrokerHangTests(SingleBroker target) : HangTests(target), IClassFixture<SingleBroker>;

public sealed class ThreeBrokerHangTests(ThreeBrokers target) : HangTests(target), IClassFixture<ThreeBrokers>;

/// <summary>The essence of three tests of Confluent's own integration suite
/// (test/Confluent.Kafka.IntegrationTests: Producer_Produce_SyncOverAsync,
/// Consumer_Subscription_DisjointTopics, AdminClient_ListGroups) that hung for minutes against
/// Samsa with librdkafka 2.16: each runs under a deadline here so a regression fails.</summary>
public abstract class HangTests(KafkaTarget target)
{
    private static async Task Within(TimeSpan deadline, string what, Action body)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var t = new Thread(() =>
        {
            try { body(); done.SetResult(); }
            catch (Exception e) { done.SetException(e); }
        }) { IsBackground = true, Name = what };
        t.Start();
        try { await done.Task.WaitAsync(deadline); }
        catch (TimeoutException) { Assert.Fail($"{what} did not finish within {deadline.TotalSeconds:0} s"); }
    }

    /// <summary>A temporary topic as the upstream suite makes it: created, then deleted at the end.</summary>
    private async Task<string> TemporaryTopicAsync(int partitions)
    {
        var name = "dotnet_test_" + Guid.NewGuid();
        await target.CreateTopicAsync(name, partitions);
        return name;
    }

    private async Task DeleteTopicsAsync(params string[] topics)
    {
        using var admin = target.Admin();
        await admin.DeleteTopicsAsync(topics).WaitAsync(TimeSpan.FromSeconds(30));
    }

    private sealed class SlowAsyncSerializer : IAsyncSerializer<string>
    {
        public async Task<byte[]> SerializeAsync(string data, SerializationContext context)
        {
            await Task.Delay(200).ConfigureAwait(false);
            return Encoding.UTF8.GetBytes(data);
        }
    }

    /// <summary>Threads each block in a synchronous Produce (an async serializer run synchronously)
    /// and then wait for their own delivery report.</summary>
    [Fact]
    public async Task SyncOverAsyncProducesDeliverEveryReport()
    {
        var topic = await TemporaryTopicAsync(1);
        int n = Math.Max(4, Environment.ProcessorCount * 2);
        var errors = new List<string>();
        await Within(TimeSpan.FromSeconds(60), "sync-over-async produce", () =>
        {
            using var producer = new ProducerBuilder<Null, string>(target.Config(new ProducerConfig()))
                .SetValueSerializer(new SlowAsyncSerializer().AsSyncOverAsync())
                .SetLogHandler((p, m) => KafkaTarget.Log(p.Name, m)).Build();
            var tasks = Enumerable.Range(0, n).Select(i => Task.Factory.StartNew(() =>
            {
                var gate = new object();
                bool delivered = false;
                lock (gate)
                {
                    producer.Produce(topic, new Message<Null, string> { Value = $"value: {i}" }, dr =>
                    {
                        if (dr.Error.IsError) lock (errors) errors.Add(dr.Error.ToString());
                        lock (gate) { delivered = true; Monitor.Pulse(gate); }
                    });
                    while (!delivered) Monitor.Wait(gate);
                }
            }, TaskCreationOptions.LongRunning)).ToArray();
            Task.WaitAll(tasks);
        });
        Assert.Empty(errors);
        await DeleteTopicsAsync(topic);
    }

    /// <summary>One group whose members subscribe to different topics: each member gets exactly its
    /// topic's partitions; two members of one topic split it; a member leaving and rejoining gets
    /// its topic back. Upstream produces 1000 records to each topic one ProduceAsync(..).Result at a
    /// time first — a per-request delay in the broker shows up as minutes there.</summary>
    [Theory]
    [InlineData(PartitionAssignmentStrategy.Range)]
    [InlineData(PartitionAssignmentStrategy.CooperativeSticky)]
    public async Task DisjointSubscriptionsOfOneGroupEachGetTheirTopic(PartitionAssignmentStrategy strategy)
    {
        var topics = new string[4];
        for (int i = 0; i < 4; i++) topics[i] = await TemporaryTopicAsync(4);
        var group = target.NewGroupId();
        var sw = Stopwatch.StartNew();
        await Within(TimeSpan.FromSeconds(60), "sequential produce", () =>
        {
            using var producer = target.Producer<Null, string>(new ProducerConfig());
            foreach (var t in topics)
                for (int i = 0; i < 250; i++)
                    Assert.Equal(PersistenceStatus.Persisted, producer.ProduceAsync(t, new Message<Null, string> { Value = new string('x', 100) }).Result.Status);
        });
        var produceTime = sw.Elapsed;
        // One ProduceAsync(..).Result costs the linger (5 ms) plus a round trip, not a broker-side wait.
        Assert.True(produceTime < TimeSpan.FromSeconds(20), $"1000 sequential produces took {produceTime.TotalSeconds:0.0} s");

        await Within(TimeSpan.FromSeconds(120), "disjoint subscriptions", () =>
        {
            var consumers = Enumerable.Range(0, 6).Select(_ => target.Consumer<byte[], byte[]>(new ConsumerConfig
            {
                GroupId = group, SessionTimeoutMs = 6000, AutoOffsetReset = AutoOffsetReset.Earliest, PartitionAssignmentStrategy = strategy,
            })).ToArray();
            try
            {
                void Settle(int[] members, int[] mustHave)
                {
                    // Poll the members until every one of mustHave holds partitions and no
                    // assignment changed for a second (a rebalance completed).
                    var deadline = Stopwatch.StartNew();
                    string last = "";
                    var stableSince = Stopwatch.StartNew();
                    while (deadline.Elapsed < TimeSpan.FromSeconds(40))
                    {
                        foreach (int m in members) consumers[m].Consume(50);
                        var now = string.Join("|", members.Select(m => string.Join(",", consumers[m].Assignment.Select(tp => tp.ToString()).Order())));
                        if (now != last || mustHave.Any(m => consumers[m].Assignment.Count == 0)) stableSince.Restart();
                        last = now;
                        if (stableSince.Elapsed > TimeSpan.FromSeconds(1)) return;
                    }
                }
                void Expect(int member, int topic, int count)
                {
                    Assert.Equal(count, consumers[member].Assignment.Count);
                    Assert.All(consumers[member].Assignment, tp => Assert.Equal(topics[topic], tp.Topic));
                }
                for (int m = 0; m < 4; m++)
                {
                    consumers[m].Subscribe(topics[m]);
                    Settle(Enumerable.Range(0, m + 1).ToArray(), Enumerable.Range(0, m + 1).ToArray());
                    for (int k = 0; k <= m; k++) Expect(k, k, 4);
                }
                consumers[4].Subscribe(topics[1]);
                Settle([0, 1, 2, 3, 4], [0, 1, 2, 3, 4]);
                Expect(1, 1, 2);
                Expect(4, 1, 2);
                Expect(0, 0, 4);

                consumers[5].Subscribe([topics[2], topics[3]]);
                Settle([0, 1, 2, 3, 4, 5], [0, 1, 4, 5]);
                Assert.Equal(8, consumers[2].Assignment.Count + consumers[3].Assignment.Count + consumers[5].Assignment.Count);
                Assert.All(consumers[2].Assignment, tp => Assert.Equal(topics[2], tp.Topic));
                Assert.All(consumers[3].Assignment, tp => Assert.Equal(topics[3], tp.Topic));

                consumers[0].Unsubscribe();
                Settle([0, 1, 2, 3, 4, 5], [1, 4, 5]);
                Assert.Empty(consumers[0].Assignment);
                consumers[0].Subscribe(topics[0]);
                Settle([0, 1, 2, 3, 4, 5], [0, 1, 4, 5]);
                Expect(0, 0, 4);
                foreach (var c in consumers) c.Close();
            }
            finally
            {
                foreach (var c in consumers) c.Dispose();
            }
        });
        await DeleteTopicsAsync(topics);
    }

    /// <summary>Members join a group one at a time without ever polling (as upstream's
    /// AdminClient_ListGroups): each new member's JoinGroup puts the group into a rebalance the
    /// earlier, unpolled members never rejoin; the legacy AdminClient.ListGroup (ListGroups +
    /// DescribeGroups) still lists every member, and closing the members (each leaves the group)
    /// completes the pending rebalance instead of leaving the rest waiting for the rebalance timeout.</summary>
    [Fact]
    public async Task LegacyListGroupSeesMembersThatNeverPoll()
    {
        var topic = await TemporaryTopicAsync(1);
        var group = target.NewGroupId();
        using var admin = target.Admin();
        var consumers = new List<IConsumer<Ignore, Ignore>>();
        try
        {
            await Within(TimeSpan.FromSeconds(60), "join one by one and ListGroup", () =>
            {
                for (int i = 0; i < 5; i++)
                {
                    var c = target.Consumer<Ignore, Ignore>(new ConsumerConfig { GroupId = group, EnableAutoCommit = false, AutoOffsetReset = AutoOffsetReset.Earliest });
                    consumers.Add(c);
                    c.Subscribe(topic);
                    Thread.Sleep(2000);
                    var info = admin.ListGroup(group, TimeSpan.FromSeconds(2));
                    Assert.NotNull(info);
                    Assert.Equal(ErrorCode.NoError, info.Error.Code);
                    Assert.Equal(i + 1, info.Members.Count);
                    Assert.Equal("consumer", info.ProtocolType);
                }
                // Every group of the cluster, one ListGroups per broker.
                Assert.Contains(admin.ListGroups(TimeSpan.FromSeconds(5)), g => g.Group == group);
            });
        }
        finally
        {
            await Within(TimeSpan.FromSeconds(60), "close the members", () =>
            {
                foreach (var c in consumers) c.Close();
            });
            foreach (var c in consumers) c.Dispose();
        }
        await DeleteTopicsAsync(topic);
    }
}
