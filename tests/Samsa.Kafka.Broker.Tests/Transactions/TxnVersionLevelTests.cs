using System.Buffers.Binary;
using Samsa.Kafka.Broker.Cluster;
using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Broker.Transactions;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Tests.Transactions;

/// <summary>
/// The finalized transaction.version (set with UpdateFeatures) at each level 0, 1, 2, as upstream
/// 4.x applies it on the broker: it is what ApiVersions reports (clients choose EndTxn v5 / Produce
/// v12 / TxnOffsetCommit v5 from it), it picks the <c>__transaction_state</c> value version
/// (TransactionVersion.transactionLogValueVersion: 0 at level 0, 1 from level 1), and it is the
/// transaction version of an abort the coordinator starts itself (a timed-out transaction is recorded
/// as a version-2 transaction at level 2, so its producer's late EndTxn reads as a retry). A request's
/// own version decides how that request is handled (upstream transactionVersionForEndTxn): EndTxn
/// v5 bumps the epoch, EndTxn v4 does not, whatever the level.
/// </summary>
public class TxnVersionLevelTests
{
    private static async Task SetLevel(StorageHandlerFixture f, short level)
    {
        if (level == 2) return;   // a new cluster's level
        var r = await f.Send<UpdateFeaturesResponse>(new UpdateFeaturesRequest
        {
            FeatureUpdates = [new UpdateFeaturesRequest.FeatureUpdateKey { Feature = "transaction.version", MaxVersionLevel = level, UpgradeType = 3 }],
        }, 2);
        Assert.Equal((0, null), (r.ErrorCode, r.ErrorMessage));
    }

    private static async Task<(long Pid, short Epoch)> Init(StorageHandlerFixture f, string id, int timeoutMs)
    {
        await f.Send<FindCoordinatorResponse>(new FindCoordinatorRequest { Key = id, KeyType = 1 }, 3);
        var init = await f.Send<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = id, TransactionTimeoutMs = timeoutMs, ProducerId = -1, ProducerEpoch = -1 }, 4);
        Assert.Equal(0, init.ErrorCode);
        return (init.ProducerId, init.ProducerEpoch);
    }

    private static async Task AddAndProduce(StorageHandlerFixture f, string id, long pid, short epoch, string value)
    {
        var add = await f.Send<AddPartitionsToTxnResponse>(new AddPartitionsToTxnRequest
        {
            V3AndBelowTransactionalId = id, V3AndBelowProducerId = pid, V3AndBelowProducerEpoch = epoch,
            V3AndBelowTopics = [new AddPartitionsToTxnRequest.AddPartitionsToTxnTopic { Name = "t", Partitions = [0] }],
        }, 3);
        Assert.Equal(0, add.ResultsByTopicV3AndBelow[0].ResultsByPartition[0].PartitionErrorCode);
        Assert.Equal(0, (await f.Produce("t", StorageHandlerFixture.Batch(pid, epoch, 0, true, value))).ErrorCode);
    }

    // The value versions (int16 prefix) of the id's records in __transaction_state, oldest first.
    private static async Task<List<short>> ValueVersions(StorageHandlerFixture f, string id)
    {
        int partition = f.Broker.Transactions.Coordinator.PartitionFor(id);
        var r = await f.Send<FetchResponse>(new FetchRequest
        {
            MaxWaitMs = 0, MinBytes = 0, MaxBytes = 1 << 22, SessionEpoch = -1, IsolationLevel = 0, ReplicaId = -1,
            Topics = [new FetchRequest.FetchTopic
            {
                Topic = TopicName.TransactionStateTopic,
                Partitions = [new FetchRequest.FetchPartition { Partition = partition, FetchOffset = 0, PartitionMaxBytes = 1 << 22, CurrentLeaderEpoch = -1, LogStartOffset = -1 }],
            }],
        }, 12);
        var pd = r.Responses[0].Partitions[0];
        Assert.Equal(0, pd.ErrorCode);
        var versions = new List<short>();
        foreach (var rec in Samsa.Kafka.Protocol.Records.RecordBatch.ReadRecords(pd.Records!.Value.Span))
        {
            if (rec.Key is null || rec.Value is null) continue;
            if (TransactionRecords.Decode(new ReadOnlyMemory<byte>(rec.Key), new ReadOnlyMemory<byte>(rec.Value))?.TransactionalId != id) continue;
            versions.Add(BinaryPrimitives.ReadInt16BigEndian(rec.Value));
        }
        return versions;
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public async Task TxnVersionLevelPicksTheLogFormatAndTheTimeoutAbortButNotTheRequestSemantics(short level)
    {
        await using var f = new StorageHandlerFixture(extraConfig: new Dictionary<string, string>
        {
            ["transaction.abort.timed.out.transaction.cleanup.interval.ms"] = "10",
        });
        f.CreateTopic("t");
        await SetLevel(f, level);
        Assert.Equal(level, f.Broker.Features.Level("transaction.version"));
        var versions = await f.Send<ApiVersionsResponse>(new ApiVersionsRequest { ClientSoftwareName = "t", ClientSoftwareVersion = "1" }, 4);
        var finalized = versions.FinalizedFeatures.SingleOrDefault(x => x.Name == "transaction.version");
        // Level 0 is left out (upstream createFinalizedFeatureKeys); the supported range stays 0-2.
        Assert.Equal(level == 0 ? null : level, finalized?.MaxVersionLevel);
        var supported = versions.SupportedFeatures.Single(x => x.Name == "transaction.version");
        Assert.Equal((0, 2), (supported.MinVersion, supported.MaxVersion));

        // EndTxn v4 keeps the epoch and EndTxn v5 bumps it, at every level (the request's version
        // says what the client speaks).
        var (pid, e0) = await Init(f, "tx", 60_000);
        await AddAndProduce(f, "tx", pid, e0, "a");
        var v4 = await f.Send<EndTxnResponse>(new EndTxnRequest { TransactionalId = "tx", ProducerId = pid, ProducerEpoch = e0, Committed = true }, 4);
        Assert.Equal(0, v4.ErrorCode);
        Assert.Equal(e0, f.Broker.Transactions.Coordinator.Describe("tx").Description!.ProducerEpoch);
        await AddAndProduce(f, "tx", pid, e0, "b");
        var v5 = await f.Send<EndTxnResponse>(new EndTxnRequest { TransactionalId = "tx", ProducerId = pid, ProducerEpoch = e0, Committed = true }, 5);
        Assert.Equal((0, pid, (short)(e0 + 1)), (v5.ErrorCode, v5.ProducerId, v5.ProducerEpoch));

        // Every record of the id is written in the level's value version, version-0 and version-2
        // transactions alike.
        var written = await ValueVersions(f, "tx");
        Assert.True(written.Count >= 6, $"{written.Count} records");
        Assert.All(written, v => Assert.Equal(level >= 1 ? TransactionRecords.ValueVersionTv2 : TransactionRecords.ValueVersion, v));

        // A transaction open longer than its timeout is aborted by the coordinator under the level's
        // transaction version.
        var (pid2, e2) = await Init(f, "slow", 50);
        await AddAndProduce(f, "slow", pid2, e2, "late");
        await Task.Delay(150);
        var coordinator = f.Broker.Transactions.Coordinator;
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (coordinator.Describe("slow").Description!.State != TransactionState.CompleteAbort && DateTime.UtcNow < deadline)
        {
            coordinator.Tick();
            await Task.Delay(20);
        }
        var aborted = coordinator.Describe("slow").Description!;
        // One epoch bump at every level (upstream KAFKA-19367 removed 4.0's second bump at level 2).
        short fenced = (short)(e2 + 1);
        Assert.Equal((TransactionState.CompleteAbort, fenced), (aborted.State, aborted.ProducerEpoch));
        // The ABORT marker carries that epoch: the partition's producer state has it.
        var producers = await f.Send<DescribeProducersResponse>(new DescribeProducersRequest
        {
            Topics = [new DescribeProducersRequest.TopicRequest { Name = "t", PartitionIndexes = [0] }],
        }, 0);
        var state = Assert.Single(producers.Topics[0].Partitions[0].ActiveProducers, p => p.ProducerId == pid2);
        Assert.Equal((fenced, -1L), ((short)state.ProducerEpoch, state.CurrentTxnStartOffset));
        // The fenced producer's commit is refused at every level. At level 2 the abort was a version 2
        // transaction, so the producer's own EndTxn v5 abort at the old epoch reads as a retry of it
        // and is answered with the epoch to go on with; below level 2 it is fenced as well.
        var commit = await f.Send<EndTxnResponse>(new EndTxnRequest { TransactionalId = "slow", ProducerId = pid2, ProducerEpoch = e2, Committed = true }, 5);
        Assert.Equal((short)ErrorCode.ProducerFenced, commit.ErrorCode);
        var abort = await f.Send<EndTxnResponse>(new EndTxnRequest { TransactionalId = "slow", ProducerId = pid2, ProducerEpoch = e2, Committed = false }, 5);
        if (level >= 2) Assert.Equal((0, pid2, fenced), (abort.ErrorCode, abort.ProducerId, abort.ProducerEpoch));
        else Assert.Equal((short)ErrorCode.ProducerFenced, abort.ErrorCode);
    }
}

/// <summary>A timed-out transaction whose producer epoch is exhausted (Short.MaxValue - 1), aborted by
/// the coordinator at each finalized transaction.version: fenced to Short.MaxValue (the markers carry
/// it); at level 2 the producer id is rotated once the markers are written (upstream KAFKA-20090),
/// below it the next InitProducerId rotates it.</summary>
public class TxnVersionExhaustedEpochTests
{
    private sealed class Env : ITransactionEnvironment
    {
        public readonly List<(TopicPartition Partition, long ProducerId, short Epoch, bool Commit)> Markers = [];
        public ErrorCode AppendState(int partition, byte[] key, byte[]? value) => ErrorCode.None;
        public ErrorCode WriteMarker(TopicPartition partition, long producerId, short producerEpoch, int coordinatorEpoch, bool commit)
        {
            Markers.Add((partition, producerId, producerEpoch, commit));
            return ErrorCode.None;
        }
        public bool PartitionExists(TopicPartition partition) => true;
        public TopicPartition? OffsetsPartitionFor(string groupId) => new TopicPartition("__consumer_offsets", 0);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void TxnVersionLevelDecidesWhenAnExhaustedFencedProducerGetsANewId(short level)
    {
        var env = new Env();
        long now = 1_000_000;
        var c = new TransactionCoordinator(new TransactionCoordinatorConfig { TransactionLogPartitions = 4, AbortTimedOutTransactionsIntervalMs = 10 },
            env, new ProducerIdManager(null), () => now) { TransactionVersionLevel = () => level };
        c.Activate(4, loading: false);
        const long oldPid = 4242;
        const short exhausted = short.MaxValue - 1;
        c.LoadPartition(c.PartitionFor("tx"), [new TransactionLogEntry("tx", new TransactionLogValue
        {
            ProducerId = oldPid, ProducerEpoch = exhausted, TransactionTimeoutMs = 1_000, TransactionStatus = (sbyte)TransactionState.Ongoing,
            TransactionPartitions = [new TransactionLogValue.PartitionsSchema { Topic = "t", PartitionIds = [0] }],
            TransactionLastUpdateTimestampMs = now, TransactionStartTimestampMs = now, PreviousProducerId = -1, NextProducerId = -1, ClientTransactionVersion = 0,
        })]);
        now += 5_000;
        c.Tick();
        Assert.Equal((new TopicPartition("t", 0), oldPid, short.MaxValue, false), Assert.Single(env.Markers));
        var d = c.Describe("tx").Description!;
        Assert.Equal(TransactionState.CompleteAbort, d.State);
        if (level >= 2) Assert.Equal((false, (short)0), (d.ProducerId == oldPid, d.ProducerEpoch));
        else Assert.Equal((oldPid, short.MaxValue), (d.ProducerId, d.ProducerEpoch));
        // Either way the next producer instance gets a fresh producer id.
        var init = c.InitProducerId("tx", 1_000);
        Assert.Equal(ErrorCode.None, init.Error);
        Assert.NotEqual(oldPid, init.ProducerId);
    }
}
