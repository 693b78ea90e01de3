using System.Diagnostics;
using System.Text;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Xunit;

namespace Samsa.Kafka.Broker.Client216Tests;

public sealed class OneBrokerClientTests(SingleBroker target) : ClientTests(target), IClassFixture<SingleBroker>;

public sealed class ThreeBrokerClientTests(ThreeBrokers target) : ClientTests(target), IClassFixture<ThreeBrokers>;

/// <summary>What a user of Confluent.Kafka 2.16 / librdkafka 2.16 checks: records, groups, admin
/// calls and transactions, on one broker and on a cluster bootstrapped away from the leaders and
/// coordinators. Every blocking client call runs under a deadline so a hang fails the test.</summary>
public abstract class ClientTests(KafkaTarget target)
{
    protected static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    /// <summary>Runs blocking client code on its own thread and fails when it takes longer than the deadline.</summary>
    protected static async Task Within(TimeSpan deadline, string what, Action body)
    {
        var thread = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var t = new Thread(() =>
        {
            try { body(); thread.SetResult(); }
            catch (Exception e) { thread.SetException(e); }
        }) { IsBackground = true, Name = what };
        t.Start();
        try { await thread.Task.WaitAsync(deadline); }
        catch (TimeoutException) { Assert.Fail($"{what} did not finish within {deadline.TotalSeconds:0} s"); }
    }

    private static ConsumerRecords Drain<TKey, TValue>(IConsumer<TKey, TValue> consumer, int count, TimeSpan deadline)
    {
        var got = new List<ConsumeResult<TKey, TValue>>();
        var sw = Stopwatch.StartNew();
        while (got.Count < count && sw.Elapsed < deadline)
        {
            var r = consumer.Consume(TimeSpan.FromMilliseconds(200));
            if (r is not null && !r.IsPartitionEOF) got.Add(r);
        }
        return new ConsumerRecords(got.Cast<object>().ToList());
    }

    private sealed record ConsumerRecords(List<object> Items)
    {
        public List<ConsumeResult<TKey, TValue>> As<TKey, TValue>() => Items.Cast<ConsumeResult<TKey, TValue>>().ToList();
    }

    [Fact]
    public async Task RecordsRoundTripWithKeysValuesHeadersAndOffsets()
    {
        var topic = target.NewTopicName("roundtrip");
        await target.CreateTopicAsync(topic, 3);
        var delivered = new List<DeliveryResult<string, string>>();
        using (var producer = target.Producer<string, string>(new ProducerConfig { LingerMs = 5 }))
        {
            for (int i = 0; i < 30; i++)
            {
                var headers = new Headers { { "seq", Encoding.UTF8.GetBytes(i.ToString()) }, { "empty", [] } };
                delivered.Add(await producer.ProduceAsync(new TopicPartition(topic, i % 3),
                    new Message<string, string> { Key = $"k{i}", Value = $"v{i}", Headers = headers }).WaitAsync(Deadline));
            }
        }
        // Each partition got its ten records at offsets 0..9 in order.
        foreach (var g in delivered.GroupBy(d => d.Partition.Value))
            Assert.Equal(Enumerable.Range(0, 10).Select(o => (long)o), g.Select(d => d.Offset.Value));
        Assert.All(delivered, d => Assert.Equal(PersistenceStatus.Persisted, d.Status));

        List<ConsumeResult<string, string>> got = [];
        await Within(Deadline, "consume", () =>
        {
            using var consumer = target.Consumer<string, string>(new ConsumerConfig { GroupId = "unused", EnableAutoCommit = false });
            consumer.Assign(Enumerable.Range(0, 3).Select(p => new TopicPartitionOffset(topic, p, Offset.Beginning)));
            got = Drain(consumer, 30, Deadline - TimeSpan.FromSeconds(5)).As<string, string>();
            consumer.Close();
        });
        Assert.Equal(30, got.Count);
        var byKey = got.ToDictionary(r => r.Message.Key);
        foreach (var d in delivered)
        {
            var r = byKey[d.Message.Key];
            Assert.Equal(d.Message.Value, r.Message.Value);
            Assert.Equal(d.TopicPartitionOffset, r.TopicPartitionOffset);
            Assert.Equal(d.Message.Key[1..], Encoding.UTF8.GetString(r.Message.Headers.GetLastBytes("seq")));
            Assert.Empty(r.Message.Headers.GetLastBytes("empty"));
            Assert.Equal(TimestampType.CreateTime, r.Message.Timestamp.Type);
        }
    }

    [Fact]
    public async Task IdempotentProducerWritesEachRecordOnceInOrder()
    {
        var topic = target.NewTopicName("idem");
        await target.CreateTopicAsync(topic, 2);
        const int count = 200;
        await Within(Deadline, "idempotent produce", () =>
        {
            using var producer = target.Producer<Null, string>(new ProducerConfig { EnableIdempotence = true, LingerMs = 2, BatchNumMessages = 7 });
            var errors = new List<Error>();
            for (int i = 0; i < count; i++)
                producer.Produce(new TopicPartition(topic, i % 2), new Message<Null, string> { Value = i.ToString() }, dr => { if (dr.Error.IsError) lock (errors) errors.Add(dr.Error); });
            Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(40)));
            Assert.Empty(errors);
        });
        List<ConsumeResult<Ignore, string>> got = [];
        await Within(Deadline, "consume", () =>
        {
            using var consumer = target.Consumer<Ignore, string>(new ConsumerConfig { GroupId = "unused", EnableAutoCommit = false });
            consumer.Assign([new TopicPartitionOffset(topic, 0, Offset.Beginning), new TopicPartitionOffset(topic, 1, Offset.Beginning)]);
            got = Drain(consumer, count, Deadline - TimeSpan.FromSeconds(5)).As<Ignore, string>();
        });
        Assert.Equal(count, got.Count);
        foreach (var p in got.GroupBy(r => r.Partition.Value))
        {
            // Offsets 0..99 carry the partition's values in produce order: no duplicate, no gap.
            Assert.Equal(Enumerable.Range(0, count / 2).Select(o => (long)o), p.Select(r => r.Offset.Value));
            Assert.Equal(Enumerable.Range(0, count / 2).Select(k => (k * 2 + p.Key).ToString()), p.Select(r => r.Message.Value));
        }
    }

    [Fact]
    public async Task GroupConsumerCommitsAndTheCommittedOffsetsReadBack()
    {
        var topic = target.NewTopicName("grp");
        await target.CreateTopicAsync(topic, 2);
        await ProduceAsync(topic, 20, partitions: 2);
        var group = target.NewGroupId();
        await Within(Deadline, "subscribe, consume, commit", () =>
        {
            using var consumer = target.Consumer<Ignore, string>(new ConsumerConfig
            {
                GroupId = group, AutoOffsetReset = AutoOffsetReset.Earliest, EnableAutoCommit = false, SessionTimeoutMs = 6000,
            });
            consumer.Subscribe(topic);
            var got = Drain(consumer, 20, TimeSpan.FromSeconds(40)).As<Ignore, string>();
            Assert.Equal(20, got.Count);
            Assert.Equal(2, consumer.Assignment.Count);
            var committed = consumer.Commit();
            Assert.Equal([10L, 10L], committed.OrderBy(c => c.Partition.Value).Select(c => c.Offset.Value));
            var readBack = consumer.Committed([new TopicPartition(topic, 0), new TopicPartition(topic, 1)], TimeSpan.FromSeconds(10));
            Assert.Equal([10L, 10L], readBack.OrderBy(c => c.Partition.Value).Select(c => c.Offset.Value));
            consumer.Close();
        });
        // A new member of the group resumes after the commit: two more records, nothing older.
        await ProduceAsync(topic, 2, prefix: "late", partitions: 2);
        await Within(Deadline, "resume", () =>
        {
            using var consumer = target.Consumer<Ignore, string>(new ConsumerConfig { GroupId = group, AutoOffsetReset = AutoOffsetReset.Earliest, EnableAutoCommit = false });
            consumer.Subscribe(topic);
            var got = Drain(consumer, 2, TimeSpan.FromSeconds(40)).As<Ignore, string>();
            Assert.Equal(["late0", "late1"], got.Select(r => r.Message.Value).Order());
            Assert.Null(consumer.Consume(TimeSpan.FromSeconds(1)));
            consumer.Close();
        });
    }

    /// <summary>Record i goes to partition i % partitions.</summary>
    private async Task ProduceAsync(string topic, int count, string prefix = "v", int partitions = 1)
    {
        using var producer = target.Producer<Null, string>(new ProducerConfig { LingerMs = 5 });
        var tasks = Enumerable.Range(0, count).Select(i => producer.ProduceAsync(new TopicPartition(topic, i % partitions), new Message<Null, string> { Value = prefix + i })).ToList();
        await Task.WhenAll(tasks).WaitAsync(Deadline);
    }

    [Fact]
    public async Task AdminCreatesAndDescribesTopics()
    {
        var topic = target.NewTopicName("admin");
        using var admin = target.Admin();
        await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = 4, ReplicationFactor = 1 }]).WaitAsync(Deadline);
        var again = await Assert.ThrowsAsync<CreateTopicsException>(() =>
            admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = 4, ReplicationFactor = 1 }]).WaitAsync(Deadline));
        Assert.Equal(ErrorCode.TopicAlreadyExists, again.Results[0].Error.Code);

        DescribeTopicsResult described = null!;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            described = await admin.DescribeTopicsAsync(TopicCollection.OfTopicNames([topic]),
                new DescribeTopicsOptions { IncludeAuthorizedOperations = false }).WaitAsync(Deadline);
            if (described.TopicDescriptions[0].Partitions.All(p => p.Leader is not null) || DateTime.UtcNow > deadline) break;
            await Task.Delay(200);
        }
        var d = Assert.Single(described.TopicDescriptions);
        Assert.Equal(topic, d.Name);
        Assert.Equal(ErrorCode.NoError, d.Error.Code);
        Assert.False(d.IsInternal);
        Assert.True(d.TopicId.MostSignificantBits != 0 || d.TopicId.LeastSignificantBits != 0);
        Assert.Equal([0, 1, 2, 3], d.Partitions.Select(p => p.Partition));
        Assert.All(d.Partitions, p =>
        {
            Assert.NotNull(p.Leader);
            Assert.Single(p.Replicas);
            Assert.Equal(p.Leader!.Id, p.Replicas[0].Id);
            Assert.Equal(p.Leader.Id, Assert.Single(p.ISR).Id);
        });

        // An unknown topic is reported as such, not as an empty description.
        var missing = await Assert.ThrowsAsync<DescribeTopicsException>(() =>
            admin.DescribeTopicsAsync(TopicCollection.OfTopicNames(["no-such-" + Guid.NewGuid().ToString("N")])).WaitAsync(Deadline));
        Assert.Equal(ErrorCode.UnknownTopicOrPart, missing.Results.TopicDescriptions[0].Error.Code);
    }

    [Fact]
    public async Task AdminListsAndDescribesAConsumerGroup()
    {
        var topic = target.NewTopicName("lcg");
        await target.CreateTopicAsync(topic, 3);
        await ProduceAsync(topic, 3, partitions: 3);
        var group = target.NewGroupId();
        using var admin = target.Admin();
        var consumer = target.Consumer<Ignore, string>(new ConsumerConfig
        {
            GroupId = group, AutoOffsetReset = AutoOffsetReset.Earliest, SessionTimeoutMs = 6000, ClientId = "lcg-member",
        });
        try
        {
            await Within(Deadline, "join", () =>
            {
                consumer.Subscribe(topic);
                var sw = Stopwatch.StartNew();
                while (consumer.Assignment.Count < 3 && sw.Elapsed < TimeSpan.FromSeconds(40)) consumer.Consume(200);
                Assert.Equal(3, consumer.Assignment.Count);
            });
            var listed = await admin.ListConsumerGroupsAsync(new ListConsumerGroupsOptions { RequestTimeout = TimeSpan.FromSeconds(30) }).WaitAsync(Deadline);
            var mine = Assert.Single(listed.Valid, g => g.GroupId == group);
            Assert.Equal(ConsumerGroupState.Stable, mine.State);
            Assert.False(mine.IsSimpleConsumerGroup);
            Assert.Equal(ConsumerGroupType.Classic, mine.Type);

            // KIP-848 type filter (ListGroups v5): classic lists the group, consumer does not.
            var classic = await admin.ListConsumerGroupsAsync(new ListConsumerGroupsOptions { MatchTypes = [ConsumerGroupType.Classic] }).WaitAsync(Deadline);
            Assert.Contains(classic.Valid, g => g.GroupId == group);
            Assert.All(classic.Valid, g => Assert.Equal(ConsumerGroupType.Classic, g.Type));
            var modern = await admin.ListConsumerGroupsAsync(new ListConsumerGroupsOptions { MatchTypes = [ConsumerGroupType.Consumer] }).WaitAsync(Deadline);
            Assert.DoesNotContain(modern.Valid, g => g.GroupId == group);
            var stable = await admin.ListConsumerGroupsAsync(new ListConsumerGroupsOptions { MatchStates = [ConsumerGroupState.Empty] }).WaitAsync(Deadline);
            Assert.DoesNotContain(stable.Valid, g => g.GroupId == group);

            var described = await admin.DescribeConsumerGroupsAsync([group]).WaitAsync(Deadline);
            var d = Assert.Single(described.ConsumerGroupDescriptions);
            Assert.Equal(group, d.GroupId);
            Assert.Equal(ErrorCode.NoError, d.Error.Code);
            Assert.Equal(ConsumerGroupState.Stable, d.State);
            Assert.Equal("range", d.PartitionAssignor);
            Assert.NotNull(d.Coordinator);
            if (target is ThreeBrokers) Assert.NotEqual(ThreeBrokers.BootstrapId, d.Coordinator.Id);
            var member = Assert.Single(d.Members);
            Assert.Equal("lcg-member", member.ClientId);
            Assert.Equal([0, 1, 2], member.Assignment.TopicPartitions.Where(tp => tp.Topic == topic).Select(tp => tp.Partition.Value).Order());
        }
        finally
        {
            await Within(Deadline, "close", () => { consumer.Close(); consumer.Dispose(); });
        }
        // After the member left, the group is empty and still listed.
        var after = await admin.DescribeConsumerGroupsAsync([group]).WaitAsync(Deadline);
        Assert.Equal(ConsumerGroupState.Empty, after.ConsumerGroupDescriptions[0].State);
        Assert.Empty(after.ConsumerGroupDescriptions[0].Members);
    }

    [Fact]
    public async Task AdminListsAndDeletesCommittedGroupOffsets()
    {
        var topic = target.NewTopicName("offs");
        await target.CreateTopicAsync(topic, 2);
        var group = target.NewGroupId();
        await Within(Deadline, "commit", () =>
        {
            using var consumer = target.Consumer<Ignore, Ignore>(new ConsumerConfig { GroupId = group, EnableAutoCommit = false });
            consumer.Commit([new TopicPartitionOffset(topic, 0, 5), new TopicPartitionOffset(topic, 1, 7)]);
            consumer.Close();
        });
        using var admin = target.Admin();
        var listed = await admin.ListConsumerGroupOffsetsAsync([new ConsumerGroupTopicPartitions(group, null)]).WaitAsync(Deadline);
        var offsets = Assert.Single(listed).Partitions.OrderBy(p => p.Partition.Value).ToList();
        Assert.Equal([5L, 7L], offsets.Select(p => p.Offset.Value));
        Assert.All(offsets, p => Assert.Equal(ErrorCode.NoError, p.Error.Code));

        var deleted = await admin.DeleteConsumerGroupOffsetsAsync(group, [new TopicPartition(topic, 0)]).WaitAsync(Deadline);
        Assert.Equal(group, deleted.Group);
        Assert.Equal(new TopicPartition(topic, 0), Assert.Single(deleted.Partitions));

        var after = await admin.ListConsumerGroupOffsetsAsync([new ConsumerGroupTopicPartitions(group, [new TopicPartition(topic, 0), new TopicPartition(topic, 1)])]).WaitAsync(Deadline);
        var left = after[0].Partitions.OrderBy(p => p.Partition.Value).Select(p => p.Offset.Value).ToList();
        Assert.Equal([Offset.Unset.Value, 7L], left);
    }

    [Fact]
    public async Task TransactionCommitsRecordsAndOffsetsTogether()
    {
        var input = target.NewTopicName("txin");
        var output = target.NewTopicName("txout");
        await target.CreateTopicAsync(input, 1);
        await target.CreateTopicAsync(output, 2);
        await ProduceAsync(input, 5, prefix: "in");
        var group = target.NewGroupId();
        var txid = target.NewTransactionalId();
        await Within(TimeSpan.FromSeconds(90), "consume-transform-produce", () =>
        {
            using var consumer = target.Consumer<Ignore, string>(new ConsumerConfig
            {
                GroupId = group, AutoOffsetReset = AutoOffsetReset.Earliest, EnableAutoCommit = false, IsolationLevel = IsolationLevel.ReadCommitted,
            });
            using var producer = target.Producer<Null, string>(new ProducerConfig { TransactionalId = txid, TransactionTimeoutMs = 30000 });
            producer.InitTransactions(TimeSpan.FromSeconds(30));

            // An aborted transaction first: its records must stay invisible to read_committed.
            producer.BeginTransaction();
            producer.Produce(new TopicPartition(output, 0), new Message<Null, string> { Value = "aborted" });
            producer.Flush(TimeSpan.FromSeconds(20));
            producer.AbortTransaction(TimeSpan.FromSeconds(30));

            consumer.Subscribe(input);
            var inputs = Drain(consumer, 5, TimeSpan.FromSeconds(40)).As<Ignore, string>();
            Assert.Equal(5, inputs.Count);
            producer.BeginTransaction();
            foreach (var r in inputs)
                producer.Produce(new TopicPartition(output, r.Offset.Value % 2 == 0 ? 0 : 1), new Message<Null, string> { Value = "out-" + r.Message.Value });
            producer.SendOffsetsToTransaction([new TopicPartitionOffset(input, 0, inputs.Max(r => r.Offset.Value) + 1)],
                consumer.ConsumerGroupMetadata, TimeSpan.FromSeconds(30));
            producer.CommitTransaction(TimeSpan.FromSeconds(30));
            consumer.Close();
        });

        await Within(Deadline, "read_committed", () =>
        {
            using var reader = target.Consumer<Ignore, string>(new ConsumerConfig { GroupId = "unused", EnableAutoCommit = false, IsolationLevel = IsolationLevel.ReadCommitted });
            reader.Assign([new TopicPartitionOffset(output, 0, Offset.Beginning), new TopicPartitionOffset(output, 1, Offset.Beginning)]);
            var got = Drain(reader, 5, TimeSpan.FromSeconds(30)).As<Ignore, string>();
            Assert.Equal(Enumerable.Range(0, 5).Select(i => $"out-in{i}").Order(), got.Select(r => r.Message.Value).Order());
            Assert.Null(reader.Consume(TimeSpan.FromSeconds(1)));
            // The committed offsets of the transaction's group are readable like any commit.
            using var probe = target.Consumer<Ignore, string>(new ConsumerConfig { GroupId = group, EnableAutoCommit = false });
            var committed = probe.Committed([new TopicPartition(input, 0)], TimeSpan.FromSeconds(10));
            Assert.Equal(5, committed[0].Offset.Value);
        });
    }
}
