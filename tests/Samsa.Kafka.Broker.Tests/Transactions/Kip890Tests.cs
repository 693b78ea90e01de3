using Samsa.Kafka.Broker.Handlers;
using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Broker.Transactions;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Tests.Transactions;

/// <summary>KIP-890 on one broker with log files: produce verification (part 1) and transaction
/// version 2 (part 2: implicit adds, an epoch bump per transaction).</summary>
public class Kip890Tests
{
    private static ProduceRequest TxnProduce(string? transactionalId, string topic, int partition, byte[] records) => new()
    {
        TransactionalId = transactionalId, Acks = -1, TimeoutMs = 1000,
        TopicData = [new ProduceRequest.TopicProduceData { Name = topic, PartitionData = [new ProduceRequest.PartitionProduceData { Index = partition, Records = records }] }],
    };

    private static async Task<ProduceResponse.PartitionProduceResponse> Produce(StorageHandlerFixture f, string? transactionalId, string topic, int partition,
        byte[] records, short version)
    {
        var r = await f.Send<ProduceResponse>(TxnProduce(transactionalId, topic, partition, records), version);
        return r.Responses[0].PartitionResponses[0];
    }

    // Produce v12+ (transaction version 2 producers) is served once the protocol helper raises
    // Produce's range; its body is v11's, so the handler is called with the request object.
    private static async Task<ProduceResponse.PartitionProduceResponse> ProduceV12(StorageHandlerFixture f, string transactionalId, string topic, int partition, byte[] records)
    {
        var context = new RequestContext
        {
            Header = new RequestHeader { RequestApiKey = (short)ApiKey.Produce, RequestApiVersion = 12, CorrelationId = 1, ClientId = "tv2" },
            Broker = f.Broker,
        };
        var r = (ProduceResponse)(await ProduceHandler.HandleAsync(context, TxnProduce(transactionalId, topic, partition, records)))!;
        return r.Responses[0].PartitionResponses[0];
    }

    private static async Task<(long Pid, short Epoch)> Init(StorageHandlerFixture f, string transactionalId)
    {
        await f.Send<FindCoordinatorResponse>(new FindCoordinatorRequest { Key = transactionalId, KeyType = 1 }, 3);
        var init = await f.Send<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = transactionalId, TransactionTimeoutMs = 30_000, ProducerId = -1, ProducerEpoch = -1 }, 4);
        Assert.Equal(0, init.ErrorCode);
        return (init.ProducerId, init.ProducerEpoch);
    }

    private static Task<AddPartitionsToTxnResponse> AddPartition(StorageHandlerFixture f, string transactionalId, long pid, short epoch, string topic, int partition) =>
        f.Send<AddPartitionsToTxnResponse>(new AddPartitionsToTxnRequest
        {
            V3AndBelowTransactionalId = transactionalId, V3AndBelowProducerId = pid, V3AndBelowProducerEpoch = epoch,
            V3AndBelowTopics = [new AddPartitionsToTxnRequest.AddPartitionsToTxnTopic { Name = topic, Partitions = [partition] }],
        }, 3);

    [Theory]
    [InlineData(9, ErrorCode.InvalidTxnState)]
    [InlineData(10, ErrorCode.InvalidTxnState)]
    [InlineData(11, ErrorCode.TransactionAbortable)]
    public async Task ABatchToAPartitionNotAddedIsRefused(short version, ErrorCode expected)
    {
        await using var f = new StorageHandlerFixture();
        f.CreateTopic("t", partitions: 2);
        var (pid, epoch) = await Init(f, "tx");
        Assert.Equal(0, (await AddPartition(f, "tx", pid, epoch, "t", 0)).ResultsByTopicV3AndBelow[0].ResultsByPartition[0].PartitionErrorCode);

        var added = await Produce(f, "tx", "t", 0, StorageHandlerFixture.Batch(pid, epoch, 0, true, "a"), version);
        Assert.Equal(0, added.ErrorCode);
        var notAdded = await Produce(f, "tx", "t", 1, StorageHandlerFixture.Batch(pid, epoch, 0, true, "b"), version);
        Assert.Equal((short)expected, notAdded.ErrorCode);
        if (expected == ErrorCode.InvalidTxnState) Assert.Equal("Partition was not added to the transaction", notAdded.ErrorMessage);
        Assert.Equal(0, f.Broker.Replicas.GetPartition("t", 1)!.Log.LogEndOffset);

        // After AddPartitionsToTxn the same batch is accepted.
        await AddPartition(f, "tx", pid, epoch, "t", 1);
        Assert.Equal(0, (await Produce(f, "tx", "t", 1, StorageHandlerFixture.Batch(pid, epoch, 0, true, "b"), version)).ErrorCode);
    }

    [Fact]
    public async Task VerificationRefusesStaleEpochsUnknownProducersAndEndedTransactions()
    {
        await using var f = new StorageHandlerFixture();
        f.CreateTopic("t");
        var (pid, epoch) = await Init(f, "tx");
        await AddPartition(f, "tx", pid, epoch, "t", 0);
        // A producer id the coordinator does not know for this id.
        var unknown = await Produce(f, "tx", "t", 0, StorageHandlerFixture.Batch(pid + 1, 0, 0, true, "x"), 9);
        Assert.Equal((short)ErrorCode.InvalidProducerIdMapping, unknown.ErrorCode);
        // An older epoch (a zombie): PRODUCER_FENCED from the coordinator reads INVALID_PRODUCER_EPOCH.
        var (pid2, epoch2) = await Init(f, "tx");
        Assert.Equal(pid, pid2);
        var zombie = await Produce(f, "tx", "t", 0, StorageHandlerFixture.Batch(pid, epoch, 0, true, "x"), 9);
        Assert.Equal((short)ErrorCode.InvalidProducerEpoch, zombie.ErrorCode);
        // The new epoch has no open transaction until it adds the partition.
        var notStarted = await Produce(f, "tx", "t", 0, StorageHandlerFixture.Batch(pid2, epoch2, 0, true, "x"), 9);
        Assert.Equal((short)ErrorCode.InvalidTxnState, notStarted.ErrorCode);
        // Only the ABORT marker of the fenced transaction was written.
        Assert.Equal(1, f.Broker.Replicas.GetPartition("t", 0)!.Log.LogEndOffset);
    }

    [Fact]
    public async Task VerificationCanBeTurnedOffAndSkipsNonTransactionalProduce()
    {
        await using (var off = new StorageHandlerFixture(extraConfig: new Dictionary<string, string> { [ProduceVerification.ConfigKey] = "false" }))
        {
            off.CreateTopic("t");
            var (pid, epoch) = await Init(off, "tx");
            // Upstream before KIP-890: the batch is accepted although the partition was never added.
            Assert.Equal(0, (await Produce(off, "tx", "t", 0, StorageHandlerFixture.Batch(pid, epoch, 0, true, "x"), 9)).ErrorCode);
        }
        await using var f = new StorageHandlerFixture();
        f.CreateTopic("t");
        // Idempotent, non-transactional batches need no coordinator.
        var idem = await f.Send<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = null, TransactionTimeoutMs = 1000 }, 4);
        Assert.Equal(0, (await Produce(f, null, "t", 0, StorageHandlerFixture.Batch(idem.ProducerId, 0, 0, false, "x"), 9)).ErrorCode);
    }

    [Fact]
    public async Task BrokerAddPartitionsToTxnVerifiesAndAdds()
    {
        await using var f = new StorageHandlerFixture();
        f.CreateTopic("t", partitions: 2);
        var (pid, epoch) = await Init(f, "tx");
        await AddPartition(f, "tx", pid, epoch, "t", 0);
        AddPartitionsToTxnRequest Request(bool verifyOnly, params (string Id, long Pid)[] txns) => new()
        {
            Transactions = txns.Select(t => new AddPartitionsToTxnRequest.AddPartitionsToTxnTransaction
            {
                TransactionalId = t.Id, ProducerId = t.Pid, ProducerEpoch = epoch, VerifyOnly = verifyOnly,
                Topics = [new AddPartitionsToTxnRequest.AddPartitionsToTxnTopic { Name = "t", Partitions = [0, 1] }],
            }).ToList(),
        };
        static Dictionary<int, short> Errors(AddPartitionsToTxnResponse r, string id) =>
            r.ResultsByTransaction.Single(t => t.TransactionalId == id).TopicResults[0].ResultsByPartition.ToDictionary(p => p.PartitionIndex, p => p.PartitionErrorCode);

        var v5 = await f.Send<AddPartitionsToTxnResponse>(Request(true, ("tx", pid), ("other", 99)), 5);
        Assert.Equal(0, v5.ErrorCode);
        Assert.Equal(new Dictionary<int, short> { [0] = 0, [1] = (short)ErrorCode.TransactionAbortable }, Errors(v5, "tx"));
        Assert.Equal(new Dictionary<int, short> { [0] = (short)ErrorCode.InvalidProducerIdMapping, [1] = (short)ErrorCode.InvalidProducerIdMapping }, Errors(v5, "other"));
        var v4 = await f.Send<AddPartitionsToTxnResponse>(Request(true, ("tx", pid)), 4);
        Assert.Equal((short)ErrorCode.InvalidTxnState, Errors(v4, "tx")[1]);

        // Without VerifyOnly the partitions are added (transaction version 2).
        var added = await f.Send<AddPartitionsToTxnResponse>(Request(false, ("tx", pid)), 5);
        Assert.Equal(new Dictionary<int, short> { [0] = 0, [1] = 0 }, Errors(added, "tx"));
        var (_, description) = f.Broker.Transactions.Coordinator.Describe("tx");
        Assert.Equal([new TopicPartition("t", 0), new TopicPartition("t", 1)], description!.Partitions);
    }

    [Fact]
    public async Task TransactionVersion2ImplicitAddAndEpochBumpPerTransaction()
    {
        await using var f = new StorageHandlerFixture();
        f.CreateTopic("t");
        var (pid, e0) = await Init(f, "tx");

        // Produce v12: no AddPartitionsToTxn, the leader adds the partition.
        Assert.Equal(0, (await ProduceV12(f, "tx", "t", 0, StorageHandlerFixture.Batch(pid, e0, 0, true, "c1"))).ErrorCode);
        var (_, ongoing) = f.Broker.Transactions.Coordinator.Describe("tx");
        Assert.Equal((TransactionState.Ongoing, 1), (ongoing!.State, ongoing.Partitions.Count));
        Assert.Equal(0, (await ProduceV12(f, "tx", "t", 0, StorageHandlerFixture.Batch(pid, e0, 1, true, "c2"))).ErrorCode);

        // EndTxn v5 commits and bumps the epoch; the answer carries it.
        var commit = await f.Send<EndTxnResponse>(new EndTxnRequest { TransactionalId = "tx", ProducerId = pid, ProducerEpoch = e0, Committed = true }, 5);
        Assert.Equal((0, pid, (short)(e0 + 1)), (commit.ErrorCode, commit.ProducerId, commit.ProducerEpoch));
        // The marker carries the new epoch: the partition now knows e0 + 1 ...
        var producers = await f.Send<DescribeProducersResponse>(new DescribeProducersRequest
        {
            Topics = [new DescribeProducersRequest.TopicRequest { Name = "t", PartitionIndexes = [0] }],
        }, 0);
        var state = Assert.Single(producers.Topics[0].Partitions[0].ActiveProducers);
        Assert.Equal((pid, e0 + 1, -1L), (state.ProducerId, state.ProducerEpoch, state.CurrentTxnStartOffset));
        // ... so a late write of the ended transaction (old epoch) is fenced.
        var late = await ProduceV12(f, "tx", "t", 0, StorageHandlerFixture.Batch(pid, e0, 2, true, "late"));
        Assert.Equal((short)ErrorCode.InvalidProducerEpoch, late.ErrorCode);
        // A retried EndTxn (old epoch) is answered with the bumped epoch; the opposite outcome is refused.
        var retry = await f.Send<EndTxnResponse>(new EndTxnRequest { TransactionalId = "tx", ProducerId = pid, ProducerEpoch = e0, Committed = true }, 5);
        Assert.Equal((0, pid, (short)(e0 + 1)), (retry.ErrorCode, retry.ProducerId, retry.ProducerEpoch));
        var wrongOutcome = await f.Send<EndTxnResponse>(new EndTxnRequest { TransactionalId = "tx", ProducerId = pid, ProducerEpoch = e0, Committed = false }, 5);
        Assert.Equal((short)ErrorCode.InvalidTxnState, wrongOutcome.ErrorCode);

        // The next transaction runs under e0 + 1 (sequences restart at 0) and is aborted: e0 + 2.
        short e1 = commit.ProducerEpoch;
        Assert.Equal(0, (await ProduceV12(f, "tx", "t", 0, StorageHandlerFixture.Batch(pid, e1, 0, true, "a1"))).ErrorCode);
        var abort = await f.Send<EndTxnResponse>(new EndTxnRequest { TransactionalId = "tx", ProducerId = pid, ProducerEpoch = e1, Committed = false }, 5);
        Assert.Equal((0, (short)(e1 + 1)), (abort.ErrorCode, abort.ProducerEpoch));
        // The same epoch again is now a stale producer.
        var stale = await f.Send<EndTxnResponse>(new EndTxnRequest { TransactionalId = "tx", ProducerId = pid, ProducerEpoch = (short)(e1 + 5), Committed = false }, 5);
        Assert.Equal((short)ErrorCode.ProducerFenced, stale.ErrorCode);

        // read_committed: the committed pair, not the aborted record.
        var fetched = await f.Fetch("t", 0, isolation: 1);
        Assert.Equal(fetched.HighWatermark, fetched.LastStableOffset);
        var aborted = Assert.Single(fetched.AbortedTransactions!);
        Assert.Equal(pid, aborted.ProducerId);
        Assert.Equal(["c1", "c2", "a1"], Values(fetched));  // the consumer drops a1 by the aborted list
        Assert.Equal(3L, aborted.FirstOffset);
    }

    [Fact]
    public async Task EndTxnBelowV5KeepsTheEpoch()
    {
        await using var f = new StorageHandlerFixture();
        f.CreateTopic("t");
        var (pid, epoch) = await Init(f, "tx");
        await AddPartition(f, "tx", pid, epoch, "t", 0);
        Assert.Equal(0, (await Produce(f, "tx", "t", 0, StorageHandlerFixture.Batch(pid, epoch, 0, true, "x"), 9)).ErrorCode);
        var commit = await f.Send<EndTxnResponse>(new EndTxnRequest { TransactionalId = "tx", ProducerId = pid, ProducerEpoch = epoch, Committed = true }, 4);
        Assert.Equal(0, commit.ErrorCode);
        var (_, d) = f.Broker.Transactions.Coordinator.Describe("tx");
        Assert.Equal((TransactionState.CompleteCommit, epoch), (d!.State, d.ProducerEpoch));
    }

    [Fact]
    public async Task TxnOffsetCommitV5AddsTheOffsetsPartitionItself()
    {
        await using var f = new StorageHandlerFixture();
        f.CreateTopic("t");
        var (pid, epoch) = await Init(f, "tx");
        Assert.Equal(0, (await f.Send<FindCoordinatorResponse>(new FindCoordinatorRequest { Key = "g", KeyType = 0 }, 3)).ErrorCode);
        TxnOffsetCommitRequest Commit() => new()
        {
            TransactionalId = "tx", GroupId = "g", ProducerId = pid, ProducerEpoch = epoch, GenerationId = -1, MemberId = "",
            Topics = [new TxnOffsetCommitRequest.TxnOffsetCommitRequestTopic
            {
                Name = "t", Partitions = [new TxnOffsetCommitRequest.TxnOffsetCommitRequestPartition { PartitionIndex = 0, CommittedOffset = 7, CommittedLeaderEpoch = -1 }],
            }],
        };
        // v4 without AddOffsetsToTxn: the offsets partition is not in the transaction.
        var v4 = await f.Send<TxnOffsetCommitResponse>(Commit(), 4);
        Assert.Equal((short)ErrorCode.InvalidTxnState, v4.Topics[0].Partitions[0].ErrorCode);
        // v5 (transaction version 2): added by the group coordinator's broker.
        var v5 = await f.Send<TxnOffsetCommitResponse>(Commit(), 5);
        Assert.Equal(0, v5.Topics[0].Partitions[0].ErrorCode);
        var end = await f.Send<EndTxnResponse>(new EndTxnRequest { TransactionalId = "tx", ProducerId = pid, ProducerEpoch = epoch, Committed = true }, 5);
        Assert.Equal((0, (short)(epoch + 1)), (end.ErrorCode, end.ProducerEpoch));
        var after = await f.Send<OffsetFetchResponse>(new OffsetFetchRequest { GroupId = "g", Topics = [new OffsetFetchRequest.OffsetFetchRequestTopic { Name = "t", PartitionIndexes = [0] }] }, 5);
        Assert.Equal(7, after.Topics[0].Partitions[0].CommittedOffset);
    }

    [Fact]
    public async Task ListTransactionsV2FiltersByTransactionalIdPattern()
    {
        await using var f = new StorageHandlerFixture();
        foreach (var id in new[] { "orders-1", "orders-2", "payments-1" }) await Init(f, id);
        async Task<ListTransactionsResponse> List(string? pattern, short version = 2) =>
            await f.Send<ListTransactionsResponse>(new ListTransactionsRequest { DurationFilter = -1, TransactionalIdPattern = pattern }, version);
        Assert.Equal(["orders-1", "orders-2"], (await List("orders-.*")).TransactionStates.Select(t => t.TransactionalId));
        // The whole id must match.
        Assert.Empty((await List("orders")).TransactionStates);
        Assert.Equal(3, (await List(null)).TransactionStates.Count);
        Assert.Equal(3, (await List("")).TransactionStates.Count);
        var bad = await List("orders-(");
        Assert.Equal((short)ErrorCode.InvalidRegularExpression, bad.ErrorCode);
        Assert.Empty(bad.TransactionStates);
    }

    private static List<string> Values(FetchResponse.PartitionData pd)
    {
        var values = new List<string>();
        foreach (var batch in Samsa.Kafka.Protocol.Records.RecordBatch.Enumerate(pd.Records!.Value.Span, allowTruncatedTail: true))
        {
            if (batch.IsControl) continue;
            foreach (var r in batch.GetRecords()) values.Add(System.Text.Encoding.UTF8.GetString(r.Value));
        }
        return values;
    }

    // Runs once, between a transactional Produce's verification and its append (KIP-890 race).
    private static void BetweenVerificationAndAppend(Func<Task> action)
    {
        bool ran = false;
        ProduceVerification.BeforeAppendForTests.Value = async () =>
        {
            if (ran) return;
            ran = true;
            await action();
        };
    }

    private static async Task AbortInBetween(StorageHandlerFixture f, long pid, short epoch, short endTxnVersion, long endOffsetAfter)
    {
        var abort = await f.Send<EndTxnResponse>(new EndTxnRequest { TransactionalId = "tx", ProducerId = pid, ProducerEpoch = epoch, Committed = false }, endTxnVersion);
        Assert.Equal(0, abort.ErrorCode);
        // The coordinator wrote its ABORT marker to the partition before the produce appends.
        Assert.Equal(endOffsetAfter, f.Broker.Replicas.GetPartition("t", 0)!.Log.LogEndOffset);
    }

    [Theory]
    [InlineData(9)]
    [InlineData(11)]
    public async Task AMarkerBetweenVerificationAndAppendRefusesTheBatch(short version)
    {
        await using var f = new StorageHandlerFixture();
        f.CreateTopic("t");
        var (pid, epoch) = await Init(f, "tx");
        await AddPartition(f, "tx", pid, epoch, "t", 0);
        // The coordinator says the partition is in the transaction, then the transaction is aborted
        // and its marker written before the batch reaches the log: the batch would otherwise open a
        // transaction the coordinator no longer has (a hanging transaction).
        BetweenVerificationAndAppend(() => AbortInBetween(f, pid, epoch, 3, endOffsetAfter: 1));
        var r = await Produce(f, "tx", "t", 0, StorageHandlerFixture.Batch(pid, epoch, 0, true, "late"), version);
        Assert.Equal((short)ErrorCode.InvalidTxnState, r.ErrorCode);
        Assert.Equal("Record was not part of an ongoing transaction", r.ErrorMessage);
        var log = f.Broker.Replicas.GetPartition("t", 0)!.Log;
        Assert.Equal(1, log.LogEndOffset);
        Assert.Equal(log.LogEndOffset, log.LastStableOffset);
    }

    [Fact]
    public async Task AMarkerBeforeTheNextBatchOfAnOpenTransactionRefusesIt()
    {
        await using var f = new StorageHandlerFixture();
        f.CreateTopic("t");
        var (pid, epoch) = await Init(f, "tx");
        await AddPartition(f, "tx", pid, epoch, "t", 0);
        Assert.Equal(0, (await Produce(f, "tx", "t", 0, StorageHandlerFixture.Batch(pid, epoch, 0, true, "a"), 9)).ErrorCode);
        // The second batch continues the open transaction, so it is not verified; the abort lands first.
        BetweenVerificationAndAppend(() => AbortInBetween(f, pid, epoch, 3, endOffsetAfter: 2));
        var r = await Produce(f, "tx", "t", 0, StorageHandlerFixture.Batch(pid, epoch, 1, true, "b"), 9);
        Assert.Equal((short)ErrorCode.InvalidTxnState, r.ErrorCode);
        Assert.Equal(2, f.Broker.Replicas.GetPartition("t", 0)!.Log.LogEndOffset);
    }

    [Fact]
    public async Task TransactionVersion2MarkerBetweenImplicitAddAndAppendFencesTheBatch()
    {
        await using var f = new StorageHandlerFixture();
        f.CreateTopic("t");
        var (pid, epoch) = await Init(f, "tx");
        // Produce v12 adds the partition; the producer's abort (EndTxn v5) bumps the epoch in its marker.
        BetweenVerificationAndAppend(() => AbortInBetween(f, pid, epoch, 5, endOffsetAfter: 1));
        var r = await ProduceV12(f, "tx", "t", 0, StorageHandlerFixture.Batch(pid, epoch, 0, true, "late"));
        Assert.Equal((short)ErrorCode.InvalidProducerEpoch, r.ErrorCode);
        Assert.Equal(1, f.Broker.Replicas.GetPartition("t", 0)!.Log.LogEndOffset);
        // The next transaction (bumped epoch) is verified and appended as usual.
        ProduceVerification.BeforeAppendForTests.Value = null;
        Assert.Equal(0, (await ProduceV12(f, "tx", "t", 0, StorageHandlerFixture.Batch(pid, (short)(epoch + 1), 0, true, "next"))).ErrorCode);
    }

    [Fact]
    public async Task WriteTxnMarkersV2ChecksATransactionVersion2MarkerForABumpedEpoch()
    {
        await using var f = new StorageHandlerFixture();
        f.CreateTopic("t");
        // Producer 77 has a transaction open at epoch 3.
        Assert.Equal(0, (await f.Produce("t", StorageHandlerFixture.Batch(77, 3, 0, true, "x"))).ErrorCode);
        var log = f.Broker.Replicas.GetPartition("t", 0)!.Log;
        async Task<short> Write(short epoch, sbyte transactionVersion, short version = 2)
        {
            var r = await f.Send<WriteTxnMarkersResponse>(new WriteTxnMarkersRequest
            {
                Markers = [new WriteTxnMarkersRequest.WritableTxnMarker
                {
                    ProducerId = 77, ProducerEpoch = epoch, TransactionResult = true, CoordinatorEpoch = 0, TransactionVersion = transactionVersion,
                    Topics = [new WriteTxnMarkersRequest.WritableTxnMarkerTopic { Name = "t", PartitionIndexes = [0] }],
                }],
            }, version);
            return r.Markers[0].Topics[0].Partitions[0].ErrorCode;
        }
        // KIP-1228: a transaction version 2 marker carries the bumped epoch; one at the records'
        // epoch is late (it belongs to an earlier transaction) and is refused.
        Assert.Equal((short)ErrorCode.InvalidProducerEpoch, await Write(3, 2));
        Assert.Equal((short)ErrorCode.InvalidProducerEpoch, await Write(2, 1));
        Assert.Equal(1, log.LogEndOffset);
        Assert.Equal(0, await Write(4, 2));
        Assert.Equal(log.LogEndOffset, log.LastStableOffset);
        // The same marker again once the transaction ended (a coordinator retry) is written.
        Assert.Equal(0, await Write(4, 2));
        // v1 has no TransactionVersion (0): an epoch equal to the producer's is accepted, an older one not.
        Assert.Equal(0, await Write(4, 0, version: 1));
        Assert.Equal((short)ErrorCode.InvalidProducerEpoch, await Write(3, 0, version: 1));
        Assert.Equal(4, log.LogEndOffset);
    }
}
