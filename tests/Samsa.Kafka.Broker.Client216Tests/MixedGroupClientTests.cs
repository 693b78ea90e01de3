using System.Collections.Concurrent;
using System.Diagnostics;
using Confluent.Kafka;
using Samsa.Kafka.Broker.Groups;
using Xunit;
using ConsumerGroupStateOfBroker = Samsa.Kafka.Broker.Groups.ConsumerGroupState;

namespace Samsa.Kafka.Broker.Client216Tests;

public sealed class OneBrokerMixedGroupTests(SingleBroker target, ITestOutputHelper output) : MixedGroupClientTests(target, output), IClassFixture<SingleBroker>;

public sealed class ThreeBrokerMixedGroupTests(ThreeBrokers target, ITestOutputHelper output) : MixedGroupClientTests(target, output), IClassFixture<ThreeBrokers>;

/// <summary>
/// Mixed groups with real clients: Confluent.Kafka 2.16 consumers with group.protocol=classic and
/// group.protocol=consumer in one group. A live classic group is upgraded online when a
/// consumer-protocol member joins and downgraded when it leaves, and a mixed group shares a topic —
/// every record read exactly once throughout (each record is committed before the next is read).
/// </summary>
public abstract class MixedGroupClientTests(KafkaTarget target, ITestOutputHelper output)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(120);

    private static ConsumerConfig Cfg(string group, GroupProtocol protocol, string clientId) => new()
    {
        GroupId = group, GroupProtocol = protocol, AutoOffsetReset = AutoOffsetReset.Earliest, EnableAutoCommit = false,
        ClientId = clientId,
        // The classic member's heartbeat is how it learns of a rebalance in a consumer group.
        HeartbeatIntervalMs = protocol == GroupProtocol.Classic ? 500 : null,
        SessionTimeoutMs = protocol == GroupProtocol.Classic ? 10_000 : null,
    };

    private async Task ProduceAsync(string topic, int count, int partitions, string prefix)
    {
        using var producer = target.Producer<Null, string>(new ProducerConfig { LingerMs = 5 });
        var tasks = Enumerable.Range(0, count).Select(i => producer.ProduceAsync(new TopicPartition(topic, i % partitions), new Message<Null, string> { Value = prefix + i })).ToList();
        await Task.WhenAll(tasks).WaitAsync(Deadline);
    }

    private static async Task WaitFor(Func<bool> condition, string what)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            if (sw.Elapsed > Deadline) Assert.Fail($"timed out: {what}");
            await Task.Delay(20);
        }
    }

    /// <summary>One consumer on its own thread: reads, records what it read, commits it, until stopped.</summary>
    private sealed class Member(MixedGroupClientTests t, string group, string topic, GroupProtocol protocol, string name,
        ConcurrentDictionary<string, int> seen)
    {
        private readonly CancellationTokenSource _stop = new();
        public int Read;
        public volatile int Assigned;
        public Task Run = Task.CompletedTask;
        public Exception? Failure;

        public Member Start()
        {
            Run = Task.Factory.StartNew(() =>
            {
                try
                {
                    using var c = t.Consumer(Cfg(group, protocol, name));
                    c.Subscribe(topic);
                    while (!_stop.IsCancellationRequested)
                    {
                        var r = c.Consume(100);
                        Assigned = c.Assignment.Count;
                        if (r is null || r.IsPartitionEOF) continue;
                        seen.AddOrUpdate($"{r.Partition.Value}:{r.Offset.Value}", 1, (_, n) => n + 1);
                        Interlocked.Increment(ref Read);
                        c.Commit(r);
                    }
                    c.Close();
                }
                catch (Exception e) { Failure = e; }
            }, TaskCreationOptions.LongRunning);
            return this;
        }

        public async Task StopAsync()
        {
            _stop.Cancel();
            await Run.WaitAsync(Deadline);
            Assert.Null(Failure);
        }
    }

    private IConsumer<Ignore, string> Consumer(ConsumerConfig c) => target.Consumer<Ignore, string>(c);

    /// <summary>The coordinator's view of the group, from whichever broker owns it.</summary>
    private (ConsumerGroup? Consumer, ClassicGroup? Classic) GroupOnBrokers(string group)
    {
        foreach (var b in target.Brokers)
        {
            var c = b.Groups.Coordinator;
            if (c.GetConsumerGroup(group) is { } cg) return (cg, null);
        }
        foreach (var b in target.Brokers)
            if (b.Groups.Coordinator.GetGroup(group) is { Consumer: null, Size: > 0 } classic) return (null, classic);
        return (null, null);
    }

    private static void AssertExactlyOnce(ConcurrentDictionary<string, int> seen, int expected)
    {
        Assert.Equal(expected, seen.Count);
        Assert.All(seen, kv => Assert.True(kv.Value == 1, $"record {kv.Key} read {kv.Value} times"));
    }

    [Fact]
    public async Task LiveClassicGroupUpgradesWhenAConsumerMemberJoinsAndDowngradesWhenItLeaves()
    {
        var topic = target.NewTopicName("mixed-up");
        await target.CreateTopicAsync(topic, 4);
        var group = target.NewGroupId();
        var seen = new ConcurrentDictionary<string, int>();

        // A live classic group of one member, reading and committing.
        var classic = new Member(this, group, topic, GroupProtocol.Classic, "mixed-classic", seen).Start();
        await ProduceAsync(topic, 100, 4, "a");
        await WaitFor(() => seen.Count >= 100, "the classic member reads the first 100");
        Assert.Equal(GroupState.Stable, GroupOnBrokers(group).Classic?.State);

        // A consumer-protocol member joins: the group is upgraded in place, the classic member keeps
        // its membership (and its committed offsets stay), and the partitions are shared.
        // Records keep arriving while the group converts.
        var sw = Stopwatch.StartNew();
        var modern = new Member(this, group, topic, GroupProtocol.Consumer, "mixed-consumer", seen).Start();
        var during = ProduceAsync(topic, 100, 4, "b");
        await WaitFor(() => GroupOnBrokers(group).Consumer is { } g && g.Size == 2 && g.State == ConsumerGroupStateOfBroker.Stable
            && modern.Assigned > 0 && classic.Assigned > 0, "both members stable in the upgraded group");
        var upgradeMs = sw.ElapsedMilliseconds;
        var upgraded = GroupOnBrokers(group).Consumer!;
        Assert.Equal(1, upgraded.AllMembers.Count(m => m.UsesClassicProtocol));
        Assert.Equal(4, modern.Assigned + classic.Assigned);
        output.WriteLine($"[{target.Name}] upgrade: consumer-protocol member started -> both members stable in {upgradeMs} ms");

        await during;
        await WaitFor(() => seen.Count >= 200, "the 100 produced during the upgrade are read");
        await ProduceAsync(topic, 100, 4, "c");
        await WaitFor(() => seen.Count >= 300, "both members read the 100 produced after the upgrade");
        Assert.True(modern.Read > 0, "the consumer-protocol member read records");

        // The consumer-protocol member leaves: the group goes back to classic and the classic member
        // takes every partition.
        sw.Restart();
        await modern.StopAsync();
        await WaitFor(() => GroupOnBrokers(group).Classic is { } g && g.State == GroupState.Stable && g.Size == 1 && classic.Assigned == 4,
            "the downgraded classic group is stable with the classic member owning all partitions");
        output.WriteLine($"[{target.Name}] downgrade: consumer-protocol member closed -> classic group stable in {sw.ElapsedMilliseconds} ms");
        await ProduceAsync(topic, 100, 4, "d");
        await WaitFor(() => seen.Count >= 400, "the classic member reads the last 100");
        await Task.Delay(500);
        await classic.StopAsync();
        AssertExactlyOnce(seen, 400);
    }

    [Fact]
    public async Task MixedGroupConsumes300RecordsExactlyOnce()
    {
        var topic = target.NewTopicName("mixed-300");
        await target.CreateTopicAsync(topic, 6);
        var group = target.NewGroupId();
        var seen = new ConcurrentDictionary<string, int>();

        // The consumer-protocol member creates a consumer group; the classic member joins it.
        var modern = new Member(this, group, topic, GroupProtocol.Consumer, "mixed300-consumer", seen).Start();
        await WaitFor(() => modern.Assigned == 6, "the consumer-protocol member owns all six partitions");
        var classic = new Member(this, group, topic, GroupProtocol.Classic, "mixed300-classic", seen).Start();
        await WaitFor(() => GroupOnBrokers(group).Consumer is { } g && g.Size == 2 && g.State == ConsumerGroupStateOfBroker.Stable
            && classic.Assigned > 0 && modern.Assigned + classic.Assigned == 6, "both members share the partitions");

        await ProduceAsync(topic, 300, 6, "m");
        await WaitFor(() => seen.Count >= 300, "300 records read");
        await Task.Delay(500);
        Assert.True(modern.Read > 0 && classic.Read > 0, $"both kinds read records (consumer {modern.Read}, classic {classic.Read})");

        // Offsets both kinds committed are the group's: everything is committed at the end.
        await classic.StopAsync();
        await modern.StopAsync();
        AssertExactlyOnce(seen, 300);
        using var check = Consumer(Cfg(group, GroupProtocol.Classic, "mixed300-check"));
        var committed = check.Committed(Enumerable.Range(0, 6).Select(p => new TopicPartition(topic, p)), TimeSpan.FromSeconds(20));
        Assert.Equal(300, committed.Sum(c => c.Offset.Value));
    }
}
