using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Broker.Transactions;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Tests.Transactions;

/// <summary>
/// Transaction markers count only once the partition's ISR has them (upstream appends markers with
/// acks=-1): WriteTxnMarkers is answered after the replication wait, with the acks=-1 error of a
/// marker that was not replicated, and the transaction coordinator moves to CompleteCommit only
/// once its own markers are replicated, retrying those that failed. The replication wait is
/// replaced by a gate the test opens (a slow ISR) or by an error.
/// </summary>
public class TxnMarkerReplicationTests
{
    /// <summary>Gates the replication waits of markers (and of group writes); writes to
    /// __transaction_state are let through so EndTxn is answered as usual.</summary>
    private sealed class SlowIsr
    {
        private TaskCompletionSource<ErrorCode> _gate = New();
        public readonly List<(string Topic, int Partition, long EndOffset)> Waits = [];

        private static TaskCompletionSource<ErrorCode> New() => new(TaskCreationOptions.RunContinuationsAsynchronously);

        public SlowIsr(KafkaBroker broker, bool open = false)
        {
            if (open) AlwaysAnswer(ErrorCode.None);
            broker.InternalWriteWaitForTests = (topic, partition, end, ct) =>
            {
                if (topic == "__transaction_state") return Task.FromResult(ErrorCode.None);
                lock (Waits) Waits.Add((topic, partition, end));
                return _gate.Task.WaitAsync(ct);
            };
        }

        public List<(string Topic, int Partition, long EndOffset)> Snapshot() { lock (Waits) return [.. Waits]; }

        public void Release(ErrorCode outcome = ErrorCode.None)
        {
            var gate = _gate;
            _gate = New();
            gate.SetResult(outcome);
        }

        /// <summary>Every wait, those under way included, ends with <paramref name="outcome"/>.</summary>
        public void AlwaysAnswer(ErrorCode outcome)
        {
            var old = _gate;
            var answered = New();
            answered.SetResult(outcome);
            _gate = answered;
            old.TrySetResult(outcome);
        }

        /// <summary>The next waits block until <see cref="Release"/>.</summary>
        public void Shut()
        {
            if (_gate.Task.IsCompleted) _gate = New();
        }
    }

    private static WriteTxnMarkersRequest Markers(long producerId, short epoch, string topic, params int[] partitions) => new()
    {
        Markers = [new WriteTxnMarkersRequest.WritableTxnMarker
        {
            ProducerId = producerId, ProducerEpoch = epoch, TransactionResult = true, CoordinatorEpoch = 0,
            Topics = [new WriteTxnMarkersRequest.WritableTxnMarkerTopic { Name = topic, PartitionIndexes = [.. partitions] }],
        }],
    };

    [Fact]
    public async Task WriteTxnMarkers_AnsweredOnceReplicatedWithTheAcksAllErrors()
    {
        await using var f = new StorageHandlerFixture();
        f.CreateTopic("t");
        var isr = new SlowIsr(f.Broker);
        Assert.Equal(0, (await f.Produce("t", StorageHandlerFixture.Batch(77, 3, 0, true, "x"))).ErrorCode);

        var pending = f.Send<WriteTxnMarkersResponse>(Markers(77, 3, "t", 0, 4), 1);
        await Task.Delay(300);
        Assert.False(pending.IsCompleted, "the marker was answered before the ISR had it");
        // The wait is for the marker: the log end right after it (record at 0, marker at 1).
        Assert.Equal([("t", 0, 2L)], isr.Snapshot());
        isr.Release();
        var r = await pending.WaitAsync(TimeSpan.FromSeconds(5));
        var partitions = r.Markers[0].Topics[0].Partitions;
        Assert.Equal((0, (short)ErrorCode.UnknownTopicOrPartition), (partitions[0].ErrorCode, partitions[1].ErrorCode));

        // The ISR did not take the marker in time / shrank below min.insync.replicas / leadership
        // moved: the partition answers the acks=-1 error, which the coordinator retries.
        foreach (var outcome in new[] { ErrorCode.RequestTimedOut, ErrorCode.NotEnoughReplicasAfterAppend, ErrorCode.NotLeaderOrFollower })
        {
            isr.AlwaysAnswer(outcome);
            var failed = await f.Send<WriteTxnMarkersResponse>(Markers(77, 3, "t", 0), 1);
            Assert.Equal((short)outcome, failed.Markers[0].Topics[0].Partitions[0].ErrorCode);
        }
    }

    [Fact]
    public async Task WriteTxnMarkers_AnIsrBelowMinInsyncReplicasRefusesTheMarkerBeforeAppending()
    {
        await using var f = new StorageHandlerFixture();
        Assert.Equal(ErrorCode.None, f.Broker.Replicas.CreateTopic("strict", 1, 1,
            new Dictionary<string, string> { ["min.insync.replicas"] = "2" }, false).Error);
        var isr = new SlowIsr(f.Broker, open: true);
        var log = f.Broker.Replicas.GetPartition("strict", 0)!.Log;
        long before = log.LogEndOffset;
        var r = await f.Send<WriteTxnMarkersResponse>(Markers(77, 3, "strict", 0), 1);
        Assert.Equal((short)ErrorCode.NotEnoughReplicas, r.Markers[0].Topics[0].Partitions[0].ErrorCode);
        Assert.Equal(before, log.LogEndOffset);
        Assert.Empty(isr.Snapshot());
    }

    [Fact]
    public async Task Coordinator_CompletesTheTransactionOnlyOnceItsMarkersAreReplicated()
    {
        await using var f = new StorageHandlerFixture();
        f.CreateTopic("t");
        var isr = new SlowIsr(f.Broker, open: true);
        var service = f.Broker.Transactions;
        Assert.Equal(ErrorCode.None, service.EnsureTransactionLog().Error);
        var coordinator = service.Coordinator;
        var init = coordinator.InitProducerId("tx", 10_000);
        Assert.Equal(ErrorCode.None, init.Error);
        var data = new TopicPartition("t", 0);
        Assert.All(coordinator.AddPartitionsToTxn("tx", init.ProducerId, init.ProducerEpoch, [data]).Values, e => Assert.Equal(ErrorCode.None, e));
        Assert.Equal(0, (await f.Produce("t", StorageHandlerFixture.Batch(init.ProducerId, init.ProducerEpoch, 0, true, "x"))).ErrorCode);
        var addOffsets = await f.Send<AddOffsetsToTxnResponse>(new AddOffsetsToTxnRequest { TransactionalId = "tx", ProducerId = init.ProducerId, ProducerEpoch = init.ProducerEpoch, GroupId = "g" }, 3);
        Assert.Equal(0, addOffsets.ErrorCode);
        var offsets = await f.Send<TxnOffsetCommitResponse>(new TxnOffsetCommitRequest
        {
            TransactionalId = "tx", GroupId = "g", ProducerId = init.ProducerId, ProducerEpoch = init.ProducerEpoch, GenerationId = -1, MemberId = "",
            Topics = [new TxnOffsetCommitRequest.TxnOffsetCommitRequestTopic
            {
                Name = "t", Partitions = [new TxnOffsetCommitRequest.TxnOffsetCommitRequestPartition { PartitionIndex = 0, CommittedOffset = 5, CommittedLeaderEpoch = -1 }],
            }],
        }, 3);
        Assert.Equal(0, offsets.Topics[0].Partitions[0].ErrorCode);

        // The ISR stalls: EndTxn is answered once the decision (PrepareCommit) is logged, the
        // markers are appended, and the transaction stays in PrepareCommit while they wait.
        isr.Shut();
        int waitsBefore = isr.Snapshot().Count;
        var end = await f.Send<EndTxnResponse>(new EndTxnRequest { TransactionalId = "tx", ProducerId = init.ProducerId, ProducerEpoch = init.ProducerEpoch, Committed = true }, 3)
            .WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(0, end.ErrorCode);
        var markerWaits = isr.Snapshot().Skip(waitsBefore).Select(w => (w.Topic, w.Partition)).OrderBy(w => w.Topic, StringComparer.Ordinal).ToList();
        int offsetsPartition = f.Broker.Groups.Coordinator.PartitionFor("g");
        Assert.Equal([("__consumer_offsets", offsetsPartition), ("t", 0)], markerWaits);
        var dataLog = f.Broker.Replicas.GetPartition("t", 0)!.Log;
        long dataEnd = dataLog.LogEndOffset;
        Assert.Equal(2L, dataEnd);   // record, marker

        // Retries while the markers are in flight neither complete the transaction nor append again.
        for (int i = 0; i < 3; i++)
        {
            coordinator.RetryCompletions();
            await Task.Delay(100);
        }
        Assert.Equal(TransactionState.PrepareCommit, coordinator.Describe("tx").Description!.State);
        Assert.Equal(dataEnd, dataLog.LogEndOffset);
        Assert.Equal(waitsBefore + 2, isr.Snapshot().Count);
        // The producer's next transaction waits (CONCURRENT_TRANSACTIONS, which clients retry).
        var again = await f.Send<EndTxnResponse>(new EndTxnRequest { TransactionalId = "tx", ProducerId = init.ProducerId, ProducerEpoch = init.ProducerEpoch, Committed = true }, 3);
        Assert.Equal((short)ErrorCode.ConcurrentTransactions, again.ErrorCode);

        // The data partition's marker was not replicated (leadership moved and came back): the
        // coordinator writes it again; CompleteCommit follows once both markers are replicated.
        isr.Release(ErrorCode.NotLeaderOrFollower);
        await Task.Delay(200);
        Assert.Equal(TransactionState.PrepareCommit, coordinator.Describe("tx").Description!.State);
        isr.AlwaysAnswer(ErrorCode.None);
        for (int i = 0; i < 50 && coordinator.Describe("tx").Description!.State != TransactionState.CompleteCommit; i++)
        {
            coordinator.RetryCompletions();
            await Task.Delay(100);
        }
        Assert.Equal(TransactionState.CompleteCommit, coordinator.Describe("tx").Description!.State);
        // Both markers failed their first wait (one gate), so both were written again: the data
        // partition holds the record and two COMMIT markers, and read_committed sees the record.
        Assert.Equal(3L, dataLog.LogEndOffset);
        var committed = await f.Fetch("t", 0, isolation: 1);
        Assert.Equal(3L, committed.LastStableOffset);
        var fetched = await f.Send<OffsetFetchResponse>(new OffsetFetchRequest
        {
            GroupId = "g", RequireStable = true,
            Topics = [new OffsetFetchRequest.OffsetFetchRequestTopic { Name = "t", PartitionIndexes = [0] }],
        }, 7);
        Assert.Equal((0, 5L), (fetched.Topics[0].Partitions[0].ErrorCode, fetched.Topics[0].Partitions[0].CommittedOffset));
    }

    private static async Task<(short Error, long Offset)> FetchOffset(StorageHandlerFixture f, string group, bool requireStable)
    {
        var r = await f.Send<OffsetFetchResponse>(new OffsetFetchRequest
        {
            GroupId = group, RequireStable = requireStable,
            Topics = [new OffsetFetchRequest.OffsetFetchRequestTopic { Name = "t", PartitionIndexes = [0] }],
        }, 7);
        var p = r.Topics[0].Partitions[0];
        return (p.ErrorCode, p.CommittedOffset);
    }

    private static async Task TxnOffsetCommit(StorageHandlerFixture f, string transactionalId, string group, long pid, short epoch, long offset)
    {
        var addOffsets = await f.Send<AddOffsetsToTxnResponse>(new AddOffsetsToTxnRequest { TransactionalId = transactionalId, ProducerId = pid, ProducerEpoch = epoch, GroupId = group }, 3);
        Assert.Equal(0, addOffsets.ErrorCode);
        var r = await f.Send<TxnOffsetCommitResponse>(new TxnOffsetCommitRequest
        {
            TransactionalId = transactionalId, GroupId = group, ProducerId = pid, ProducerEpoch = epoch, GenerationId = -1, MemberId = "",
            Topics = [new TxnOffsetCommitRequest.TxnOffsetCommitRequestTopic
            {
                Name = "t", Partitions = [new TxnOffsetCommitRequest.TxnOffsetCommitRequestPartition { PartitionIndex = 0, CommittedOffset = offset, CommittedLeaderEpoch = -1 }],
            }],
        }, 3);
        Assert.Equal(0, r.Topics[0].Partitions[0].ErrorCode);
    }

    [Fact]
    public async Task TransactionalOffsetsAreCommittedOnlyOnceTheirMarkerIsReplicated()
    {
        await using var f = new StorageHandlerFixture();
        f.CreateTopic("t");
        var isr = new SlowIsr(f.Broker, open: true);
        var service = f.Broker.Transactions;
        Assert.Equal(ErrorCode.None, service.EnsureTransactionLog().Error);
        var init = service.Coordinator.InitProducerId("tx", 10_000);
        Assert.Equal(ErrorCode.None, init.Error);
        await TxnOffsetCommit(f, "tx", "g", init.ProducerId, init.ProducerEpoch, 5);
        Assert.Equal(((short)ErrorCode.UnstableOffsetCommit, -1L), await FetchOffset(f, "g", requireStable: true));

        // The coordinator's COMMIT marker is appended to the group's offsets partition but the ISR
        // does not have it yet: the offsets are not committed (upstream reads at the high watermark).
        isr.Shut();
        var end = await f.Send<EndTxnResponse>(new EndTxnRequest { TransactionalId = "tx", ProducerId = init.ProducerId, ProducerEpoch = init.ProducerEpoch, Committed = true }, 3)
            .WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(0, end.ErrorCode);
        int offsetsPartition = f.Broker.Groups.Coordinator.PartitionFor("g");
        Assert.Contains(isr.Snapshot(), w => w.Topic == "__consumer_offsets" && w.Partition == offsetsPartition);
        Assert.Equal(((short)ErrorCode.UnstableOffsetCommit, -1L), await FetchOffset(f, "g", requireStable: true));
        Assert.Equal((0, -1L), await FetchOffset(f, "g", requireStable: false));

        // Replicated: committed and stable.
        isr.AlwaysAnswer(ErrorCode.None);
        (short, long) fetched = default;
        for (int i = 0; i < 50 && (fetched = await FetchOffset(f, "g", requireStable: true)) != (0, 5L); i++) await Task.Delay(50);
        Assert.Equal((0, 5L), fetched);

        // WriteTxnMarkers from another broker's coordinator likewise: a marker whose replication
        // failed leaves the offsets pending (the coordinator writes it again), one that is
        // replicated commits them before the answer.
        var second = service.Coordinator.InitProducerId("tx2", 10_000);
        await TxnOffsetCommit(f, "tx2", "g2", second.ProducerId, second.ProducerEpoch, 9);
        int p2 = f.Broker.Groups.Coordinator.PartitionFor("g2");
        isr.AlwaysAnswer(ErrorCode.RequestTimedOut);
        var failed = await f.Send<WriteTxnMarkersResponse>(Markers(second.ProducerId, second.ProducerEpoch, "__consumer_offsets", p2), 1);
        Assert.Equal((short)ErrorCode.RequestTimedOut, failed.Markers[0].Topics[0].Partitions[0].ErrorCode);
        Assert.Equal(((short)ErrorCode.UnstableOffsetCommit, -1L), await FetchOffset(f, "g2", requireStable: true));
        isr.Shut();
        var pending = f.Send<WriteTxnMarkersResponse>(Markers(second.ProducerId, second.ProducerEpoch, "__consumer_offsets", p2), 1);
        await Task.Delay(200);
        Assert.False(pending.IsCompleted);
        Assert.Equal((0, -1L), await FetchOffset(f, "g2", requireStable: false));
        isr.Release();
        Assert.Equal(0, (await pending.WaitAsync(TimeSpan.FromSeconds(5))).Markers[0].Topics[0].Partitions[0].ErrorCode);
        Assert.Equal((0, 9L), await FetchOffset(f, "g2", requireStable: true));
    }
}
