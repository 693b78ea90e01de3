using Confluent.Kafka;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Protocol.Messages;
using Xunit;
using BatchBuilder = Samsa.Kafka.Protocol.Records.RecordBatchBuilder;

namespace Samsa.Kafka.Broker.Client216Tests;

public sealed class OneBrokerTransactionVerificationTests(SingleBroker target) : TransactionVerificationTests(target), IClassFixture<SingleBroker>;

public sealed class ThreeBrokerTransactionVerificationTests(ThreeBrokers target) : TransactionVerificationTests(target), IClassFixture<ThreeBrokers>;

/// <summary>
/// KIP-890 part 1 where users meet it: a transactional producer that writes to a partition it
/// never added to its transaction is refused by the partition's leader, which asks the
/// transaction coordinator (on the cluster: another broker, over AddPartitionsToTxn v5). The
/// requests are built by hand, since a real client always adds the partition first; librdkafka
/// 2.16's own transactions must keep working beside it.
/// </summary>
public abstract class TransactionVerificationTests(KafkaTarget target)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private (string Host, int Port) BootstrapEndpoint
    {
        get
        {
            var parts = target.Bootstrap.Split(':');
            return (parts[0], int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    private async Task<KafkaWireClient> ConnectToBrokerAsync(int nodeId)
    {
        var (host, port) = BootstrapEndpoint;
        MetadataResponse md;
        await using (var boot = await KafkaWireClient.ConnectAsync(host, port))
            md = (await boot.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [], AllowAutoTopicCreation = false }, 12))!;
        var b = md.Brokers.Single(x => x.NodeId == nodeId);
        return await KafkaWireClient.ConnectAsync(b.Host, b.Port);
    }

    private static byte[] TransactionalBatch(long producerId, short epoch, int baseSequence, string value)
    {
        using var b = new BatchBuilder { ProducerId = producerId, ProducerEpoch = epoch, BaseSequence = baseSequence, IsTransactional = true };
        b.Append(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), null, System.Text.Encoding.UTF8.GetBytes(value));
        return b.Build();
    }

    private static async Task<ProduceResponse.PartitionProduceResponse> ProduceAsync(KafkaWireClient leader, string transactionalId, string topic, int partition, byte[] records)
    {
        var r = await leader.SendAsync<ProduceResponse>(new ProduceRequest
        {
            TransactionalId = transactionalId, Acks = -1, TimeoutMs = 10_000,
            TopicData = [new ProduceRequest.TopicProduceData { Name = topic, PartitionData = [new ProduceRequest.PartitionProduceData { Index = partition, Records = records }] }],
        }, 9);
        return r!.Responses[0].PartitionResponses[0];
    }

    [Fact]
    public async Task ARawTransactionalProduceToAPartitionNotAddedIsRefused()
    {
        var topic = target.NewTopicName("txverify");
        await target.CreateTopicAsync(topic, 2);
        var leaders = await target.LeadersAsync(topic);
        var txid = target.NewTransactionalId();

        // The coordinator, found through the bootstrap broker as a client would.
        var (host, port) = BootstrapEndpoint;
        FindCoordinatorResponse found = null!;
        var deadline = DateTime.UtcNow + Deadline;
        await using (var boot = await KafkaWireClient.ConnectAsync(host, port))
        {
            do
            {
                found = (await boot.SendAsync<FindCoordinatorResponse>(new FindCoordinatorRequest { Key = txid, KeyType = 1 }, 3))!;
                if (found.ErrorCode != 0) await Task.Delay(100);
            } while (found.ErrorCode != 0 && DateTime.UtcNow < deadline);
        }
        Assert.Equal(0, found.ErrorCode);
        await using var coordinator = await ConnectToBrokerAsync(found.NodeId);
        InitProducerIdResponse init;
        do
        {
            init = (await coordinator.SendAsync<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = txid, TransactionTimeoutMs = 30_000, ProducerId = -1, ProducerEpoch = -1 }, 4))!;
            if (init.ErrorCode != 0) await Task.Delay(100);
        } while (init.ErrorCode != 0 && DateTime.UtcNow < deadline);
        Assert.Equal(0, init.ErrorCode);

        // On the cluster the refused partition is led by a broker that is not the coordinator, so
        // the leader asks over AddPartitionsToTxn v5 (the partitions alternate between brokers 2 and 3).
        int refusedPartition = leaders[1] != found.NodeId ? 1 : 0, addedPartition = 1 - refusedPartition;
        if (target is ThreeBrokers) Assert.NotEqual(found.NodeId, leaders[refusedPartition]);
        var add = await coordinator.SendAsync<AddPartitionsToTxnResponse>(new AddPartitionsToTxnRequest
        {
            V3AndBelowTransactionalId = txid, V3AndBelowProducerId = init.ProducerId, V3AndBelowProducerEpoch = init.ProducerEpoch,
            V3AndBelowTopics = [new AddPartitionsToTxnRequest.AddPartitionsToTxnTopic { Name = topic, Partitions = [addedPartition] }],
        }, 3);
        Assert.Equal(0, add!.ResultsByTopicV3AndBelow[0].ResultsByPartition[0].PartitionErrorCode);

        await using (var leader = await ConnectToBrokerAsync(leaders[refusedPartition]))
        {
            var refused = await ProduceAsync(leader, txid, topic, refusedPartition, TransactionalBatch(init.ProducerId, init.ProducerEpoch, 0, "not-added"));
            Assert.Equal((short)Protocol.ErrorCode.InvalidTxnState, refused.ErrorCode);
            Assert.Equal("Partition was not added to the transaction", refused.ErrorMessage);
        }
        await using (var leader = await ConnectToBrokerAsync(leaders[addedPartition]))
        {
            var accepted = await ProduceAsync(leader, txid, topic, addedPartition, TransactionalBatch(init.ProducerId, init.ProducerEpoch, 0, "added"));
            Assert.Equal(0, accepted.ErrorCode);
        }
        var commit = await coordinator.SendAsync<EndTxnResponse>(new EndTxnRequest { TransactionalId = txid, ProducerId = init.ProducerId, ProducerEpoch = init.ProducerEpoch, Committed = true }, 3);
        Assert.Equal(0, commit!.ErrorCode);

        // read_committed (librdkafka 2.16) sees the committed record and nothing on partition 1.
        var thread = new TaskCompletionSource<List<string>>(TaskCreationOptions.RunContinuationsAsynchronously);
        new Thread(() =>
        {
            try
            {
                using var reader = target.Consumer<Ignore, string>(new ConsumerConfig { GroupId = "unused", EnableAutoCommit = false, IsolationLevel = IsolationLevel.ReadCommitted, EnablePartitionEof = true });
                reader.Assign([new TopicPartitionOffset(topic, 0, Offset.Beginning), new TopicPartitionOffset(topic, 1, Offset.Beginning)]);
                var got = new List<string>();
                int eofs = 0;
                var sw = System.Diagnostics.Stopwatch.StartNew();
                while (eofs < 2 && sw.Elapsed < TimeSpan.FromSeconds(30))
                {
                    var r = reader.Consume(TimeSpan.FromMilliseconds(200));
                    if (r is null) continue;
                    if (r.IsPartitionEOF) { eofs++; continue; }
                    got.Add($"{r.Partition.Value}:{r.Message.Value}");
                }
                thread.SetResult(got);
            }
            catch (Exception e) { thread.SetException(e); }
        }) { IsBackground = true }.Start();
        Assert.Equal([$"{addedPartition}:added"], await thread.Task.WaitAsync(Deadline));
    }

    private async Task<FindCoordinatorResponse> FindCoordinatorAsync(string key, sbyte keyType)
    {
        var (host, port) = BootstrapEndpoint;
        await using var boot = await KafkaWireClient.ConnectAsync(host, port);
        var deadline = DateTime.UtcNow + Deadline;
        while (true)
        {
            var found = (await boot.SendAsync<FindCoordinatorResponse>(new FindCoordinatorRequest { Key = key, KeyType = keyType }, 3))!;
            if (found.ErrorCode == 0 || DateTime.UtcNow > deadline) return found;
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task TxnOffsetCommitV5AddsTheOffsetsPartitionThroughTheTransactionCoordinator()
    {
        // Transaction version 2: no AddOffsetsToTxn; the group coordinator's broker adds its
        // __consumer_offsets partition to the transaction (on the cluster: at another broker).
        var topic = target.NewTopicName("txoff");
        await target.CreateTopicAsync(topic, 1);
        var txid = target.NewTransactionalId();
        var txnCoordinator = await FindCoordinatorAsync(txid, 1);
        Assert.Equal(0, txnCoordinator.ErrorCode);
        string group = target.NewGroupId();
        FindCoordinatorResponse groupCoordinator = await FindCoordinatorAsync(group, 0);
        for (int i = 0; i < 50 && target is ThreeBrokers && groupCoordinator.NodeId == txnCoordinator.NodeId; i++)
            groupCoordinator = await FindCoordinatorAsync(group = target.NewGroupId(), 0);
        if (target is ThreeBrokers) Assert.NotEqual(txnCoordinator.NodeId, groupCoordinator.NodeId);

        await using var txn = await ConnectToBrokerAsync(txnCoordinator.NodeId);
        var init = (await txn.SendAsync<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = txid, TransactionTimeoutMs = 30_000, ProducerId = -1, ProducerEpoch = -1 }, 4))!;
        Assert.Equal(0, init.ErrorCode);
        await using (var groups = await ConnectToBrokerAsync(groupCoordinator.NodeId))
        {
            var commit = await groups.SendAsync<TxnOffsetCommitResponse>(new TxnOffsetCommitRequest
            {
                TransactionalId = txid, GroupId = group, ProducerId = init.ProducerId, ProducerEpoch = init.ProducerEpoch, GenerationId = -1, MemberId = "",
                Topics = [new TxnOffsetCommitRequest.TxnOffsetCommitRequestTopic
                {
                    Name = topic, Partitions = [new TxnOffsetCommitRequest.TxnOffsetCommitRequestPartition { PartitionIndex = 0, CommittedOffset = 42, CommittedLeaderEpoch = -1 }],
                }],
            }, 5);
            Assert.Equal(0, commit!.Topics[0].Partitions[0].ErrorCode);
        }
        var end = (await txn.SendAsync<EndTxnResponse>(new EndTxnRequest { TransactionalId = txid, ProducerId = init.ProducerId, ProducerEpoch = init.ProducerEpoch, Committed = true }, 5))!;
        Assert.Equal((0, init.ProducerId, (short)(init.ProducerEpoch + 1)), (end.ErrorCode, end.ProducerId, end.ProducerEpoch));

        // The offset becomes the group's committed offset once the marker reaches the group's partition.
        var thread = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        new Thread(() =>
        {
            try
            {
                using var probe = target.Consumer<Ignore, string>(new ConsumerConfig { GroupId = group, EnableAutoCommit = false });
                long offset = -1;
                var sw = System.Diagnostics.Stopwatch.StartNew();
                while (offset != 42 && sw.Elapsed < TimeSpan.FromSeconds(20))
                {
                    offset = probe.Committed([new TopicPartition(topic, 0)], TimeSpan.FromSeconds(10))[0].Offset.Value;
                    if (offset != 42) Thread.Sleep(100);
                }
                thread.SetResult(offset);
            }
            catch (Exception e) { thread.SetException(e); }
        }) { IsBackground = true }.Start();
        Assert.Equal(42, await thread.Task.WaitAsync(Deadline));
    }

    [Fact]
    public async Task Librdkafka216TransactionsCommitAndAbortAcrossPartitions()
    {
        var topic = target.NewTopicName("txrd");
        await target.CreateTopicAsync(topic, 2);
        var txid = target.NewTransactionalId();
        var thread = new TaskCompletionSource<List<string>>(TaskCreationOptions.RunContinuationsAsynchronously);
        new Thread(() =>
        {
            try
            {
                using (var producer = target.Producer<Null, string>(new ProducerConfig { TransactionalId = txid, TransactionTimeoutMs = 30000 }))
                {
                    producer.InitTransactions(TimeSpan.FromSeconds(30));
                    for (int round = 0; round < 3; round++)
                    {
                        producer.BeginTransaction();
                        for (int i = 0; i < 4; i++)
                            producer.Produce(new TopicPartition(topic, i % 2), new Message<Null, string> { Value = $"r{round}-{i}" });
                        producer.Flush(TimeSpan.FromSeconds(20));
                        if (round == 1) producer.AbortTransaction(TimeSpan.FromSeconds(30));
                        else producer.CommitTransaction(TimeSpan.FromSeconds(30));
                    }
                }
                using var reader = target.Consumer<Ignore, string>(new ConsumerConfig { GroupId = "unused", EnableAutoCommit = false, IsolationLevel = IsolationLevel.ReadCommitted, EnablePartitionEof = true });
                reader.Assign([new TopicPartitionOffset(topic, 0, Offset.Beginning), new TopicPartitionOffset(topic, 1, Offset.Beginning)]);
                var got = new List<string>();
                int eofs = 0;
                var sw = System.Diagnostics.Stopwatch.StartNew();
                while (eofs < 2 && sw.Elapsed < TimeSpan.FromSeconds(30))
                {
                    var r = reader.Consume(TimeSpan.FromMilliseconds(200));
                    if (r is null) continue;
                    if (r.IsPartitionEOF) { eofs++; continue; }
                    got.Add(r.Message.Value);
                }
                thread.SetResult(got);
            }
            catch (Exception e) { thread.SetException(e); }
        }) { IsBackground = true }.Start();
        var values = await thread.Task.WaitAsync(TimeSpan.FromSeconds(120));
        Assert.Equal(new[] { "r0-0", "r0-1", "r0-2", "r0-3", "r2-0", "r2-1", "r2-2", "r2-3" }, values.Order());
    }
}
