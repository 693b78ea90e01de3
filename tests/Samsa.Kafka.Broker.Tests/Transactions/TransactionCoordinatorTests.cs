using Samsa.Kafka.Broker.Groups;
using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Broker.Transactions;
using Samsa.Kafka.Protocol;

namespace Samsa.Kafka.Broker.Tests.Transactions;

/// <summary>The transaction coordinator as a state machine: a fake broker environment that records
/// what was logged and which markers were written, and a clock the test moves.</summary>
public class TransactionCoordinatorTests
{
    private sealed class FakeEnvironment : ITransactionEnvironment
    {
        public readonly List<(int Partition, byte[] Key, byte[]? Value)> StateLog = [];
        public readonly List<(TopicPartition Partition, long ProducerId, short Epoch, bool Commit)> Markers = [];
        public readonly HashSet<TopicPartition> Existing = [new("t", 0), new("t", 1), new("u", 0)];
        public ErrorCode NextStateError = ErrorCode.None;
        public ErrorCode MarkerError = ErrorCode.None;

        public ErrorCode AppendState(int partition, byte[] key, byte[]? value)
        {
            if (NextStateError != ErrorCode.None) return NextStateError;
            StateLog.Add((partition, key, value));
            return ErrorCode.None;
        }

        public ErrorCode WriteMarker(TopicPartition partition, long producerId, short producerEpoch, int coordinatorEpoch, bool commit)
        {
            if (MarkerError != ErrorCode.None) return MarkerError;
            Markers.Add((partition, producerId, producerEpoch, commit));
            return ErrorCode.None;
        }

        public bool PartitionExists(TopicPartition partition) => Existing.Contains(partition);
        public TopicPartition? OffsetsPartitionFor(string groupId) => new TopicPartition("__consumer_offsets", GroupCoordinator.PartitionFor(groupId, 3));

        /// <summary>The log as replay sees it, per partition.</summary>
        public List<TransactionLogEntry> Replay(int partition) =>
            StateLog.Where(r => r.Partition == partition).Select(r => TransactionRecords.Decode(r.Key, r.Value)!).ToList();
    }

    private long _now = 1_000_000;
    private readonly FakeEnvironment _env = new();

    private TransactionCoordinator NewCoordinator(ProducerIdManager? ids = null, int maxTimeout = 900_000, int partitions = 4)
    {
        var c = new TransactionCoordinator(new TransactionCoordinatorConfig
        {
            TransactionLogPartitions = partitions, TransactionMaxTimeoutMs = maxTimeout,
            AbortTimedOutTransactionsIntervalMs = 1000, RemoveExpiredTransactionalIdsIntervalMs = 60_000, TransactionalIdExpirationMs = 3_600_000,
        }, _env, ids ?? new ProducerIdManager(null), () => _now);
        c.Activate(partitions, loading: false);
        return c;
    }

    private static readonly TopicPartition T0 = new("t", 0), T1 = new("t", 1);

    [Fact]
    public void IdempotentProducersGetDistinctIdsWithEpochZero()
    {
        var c = NewCoordinator();
        var a = c.InitProducerId(null, 60_000);
        var b = c.InitProducerId(null, 60_000);
        Assert.Equal((ErrorCode.None, (short)0), (a.Error, a.ProducerEpoch));
        Assert.NotEqual(a.ProducerId, b.ProducerId);
        Assert.Empty(_env.StateLog);
    }

    [Fact]
    public void ProducerIdsAreNeverReusedAfterRestart()
    {
        var path = Path.Combine(Path.GetTempPath(), "samsa-pid-" + Guid.NewGuid().ToString("N"));
        try
        {
            var first = new ProducerIdManager(path);
            var used = Enumerable.Range(0, 5).Select(_ => first.Generate()).ToList();
            var second = new ProducerIdManager(path);
            long next = second.Generate();
            Assert.True(next > used.Max(), $"{next} reuses an id up to {used.Max()}");
            Assert.Equal(ProducerIdManager.BlockSize, next);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task ClusterBlocksAreClaimedAboveLocalIdsAndPrefetchedBeforeTheyRunOut()
    {
        var path = Path.Combine(Path.GetTempPath(), "samsa-pid-" + Guid.NewGuid().ToString("N"));
        try
        {
            // A single-node broker handed out ids 0..2 (and reserved the block up to 1000) before it joined a cluster.
            var local = new ProducerIdManager(path);
            for (int i = 0; i < 3; i++) local.Generate();
            var ids = new ProducerIdManager(path);
            var claims = new List<long>();
            long nextBlock = 0;
            ids.BlockSource = floor =>
            {
                lock (claims) claims.Add(floor);
                long start = Math.Max(floor, nextBlock);
                nextBlock = start + ProducerIdManager.BlockSize;
                return Task.FromResult((start, start + ProducerIdManager.BlockSize - 1));
            };
            var got = Enumerable.Range(0, 950).Select(_ => ids.Generate()).ToList();
            // The first cluster block starts above everything the broker reserved alone.
            Assert.Equal(Enumerable.Range(1000, 950).Select(i => (long)i), got);
            // Past 90 % of the block the next one is already being claimed.
            await LocalWait(() => { lock (claims) return claims.Count == 2; });
            got.AddRange(Enumerable.Range(0, 100).Select(_ => ids.Generate()));
            Assert.Equal(got.Count, got.Distinct().Count());
            Assert.Equal(2049, got.Max());
            lock (claims) Assert.All(claims, f => Assert.Equal(ProducerIdManager.BlockSize, f));
        }
        finally
        {
            File.Delete(path);
        }

        static async Task LocalWait(Func<bool> condition)
        {
            for (int i = 0; i < 200 && !condition(); i++) await Task.Delay(10);
            Assert.True(condition());
        }
    }

    [Fact]
    public void ProducerIdsUnavailableAnswerCoordinatorLoadInProgress()
    {
        var ids = new ProducerIdManager(null) { BlockSource = _ => Task.FromException<(long, long)>(new IOException("ZooKeeper is unreachable")) };
        var c = NewCoordinator(ids);
        Assert.Equal(ErrorCode.CoordinatorLoadInProgress, c.InitProducerId(null, 60_000).Error);
        Assert.Equal(ErrorCode.CoordinatorLoadInProgress, c.InitProducerId("tx", 60_000).Error);
    }

    [Fact]
    public void TransactionTimeoutAboveMaximumIsRefused()
    {
        var c = NewCoordinator(maxTimeout: 10_000);
        Assert.Equal(ErrorCode.InvalidTransactionTimeout, c.InitProducerId("tx", 10_001).Error);
        Assert.Equal(ErrorCode.InvalidTransactionTimeout, c.InitProducerId("tx", 0).Error);
        Assert.Equal(ErrorCode.None, c.InitProducerId("tx", 10_000).Error);
    }

    [Fact]
    public void CommitWritesPrepareMarkersAndCompleteInOrder()
    {
        var c = NewCoordinator();
        var init = c.InitProducerId("tx", 60_000);
        Assert.Equal((ErrorCode.None, (short)0), (init.Error, init.ProducerEpoch));
        var added = c.AddPartitionsToTxn("tx", init.ProducerId, 0, [T0, T1]);
        Assert.All(added.Values, e => Assert.Equal(ErrorCode.None, e));
        Assert.Equal("Ongoing", c.Describe("tx").Description!.State.ToString());
        Assert.Equal(ErrorCode.None, c.EndTxn("tx", init.ProducerId, 0, commit: true));

        Assert.Equal([(T0, init.ProducerId, (short)0, true), (T1, init.ProducerId, (short)0, true)], _env.Markers);
        var states = _env.Replay(c.PartitionFor("tx")).Select(e => (TransactionState)e.Value!.TransactionStatus).ToList();
        Assert.Equal([TransactionState.Empty, TransactionState.Ongoing, TransactionState.PrepareCommit, TransactionState.CompleteCommit], states);
        // A retried EndTxn(commit) is fine; switching to abort is not.
        Assert.Equal(ErrorCode.None, c.EndTxn("tx", init.ProducerId, 0, commit: true));
        Assert.Equal(ErrorCode.InvalidTxnState, c.EndTxn("tx", init.ProducerId, 0, commit: false));
        // Nothing open: ending again is an invalid state, adding starts a new transaction.
        var d = c.Describe("tx").Description!;
        Assert.Equal(TransactionState.CompleteCommit, d.State);
        Assert.Empty(d.Partitions);
    }

    [Fact]
    public void EndTxnWithoutTransactionIsInvalidState()
    {
        var c = NewCoordinator();
        var init = c.InitProducerId("tx", 60_000);
        Assert.Equal(ErrorCode.InvalidTxnState, c.EndTxn("tx", init.ProducerId, init.ProducerEpoch, commit: true));
        Assert.Equal(ErrorCode.InvalidProducerIdMapping, c.EndTxn("tx", init.ProducerId + 1, init.ProducerEpoch, commit: true));
        Assert.Equal(ErrorCode.InvalidProducerIdMapping, c.EndTxn("other", init.ProducerId, init.ProducerEpoch, commit: true));
    }

    [Fact]
    public void UnknownPartitionFailsTheWholeAdd()
    {
        var c = NewCoordinator();
        var init = c.InitProducerId("tx", 60_000);
        var r = c.AddPartitionsToTxn("tx", init.ProducerId, 0, [T0, new TopicPartition("nope", 0)]);
        Assert.Equal(ErrorCode.OperationNotAttempted, r[T0]);
        Assert.Equal(ErrorCode.UnknownTopicOrPartition, r[new TopicPartition("nope", 0)]);
        Assert.Equal(TransactionState.Empty, c.Describe("tx").Description!.State);
    }

    [Fact]
    public void SecondInitFencesTheFirstAndAbortsItsTransaction()
    {
        var c = NewCoordinator();
        var first = c.InitProducerId("tx", 60_000);
        c.AddPartitionsToTxn("tx", first.ProducerId, first.ProducerEpoch, [T0]);
        var second = c.InitProducerId("tx", 60_000);
        Assert.Equal(ErrorCode.None, second.Error);
        Assert.Equal(first.ProducerId, second.ProducerId);
        Assert.True(second.ProducerEpoch > first.ProducerEpoch + 1, "the abort used a bumped epoch, then the new producer got another");
        // The open transaction was aborted with an epoch above the old producer's.
        var marker = Assert.Single(_env.Markers);
        Assert.Equal((T0, false), (marker.Partition, marker.Commit));
        Assert.True(marker.Epoch > first.ProducerEpoch);
        // The old producer is fenced everywhere.
        Assert.Equal(ErrorCode.ProducerFenced, c.EndTxn("tx", first.ProducerId, first.ProducerEpoch, commit: true));
        Assert.Equal(ErrorCode.ProducerFenced, c.AddPartitionsToTxn("tx", first.ProducerId, first.ProducerEpoch, [T1])[T1]);
        Assert.Equal(ErrorCode.ProducerFenced, c.AddOffsetsToTxn("tx", first.ProducerId, first.ProducerEpoch, "g"));
    }

    [Fact]
    public void Kip360ResumeBumpsEpochAndRetryGetsSameAnswer()
    {
        var c = NewCoordinator();
        var init = c.InitProducerId("tx", 60_000);
        var resumed = c.InitProducerId("tx", 60_000, init.ProducerId, init.ProducerEpoch);
        Assert.Equal((ErrorCode.None, init.ProducerId, (short)(init.ProducerEpoch + 1)), (resumed.Error, resumed.ProducerId, resumed.ProducerEpoch));
        // The response was lost and the producer retries with the epoch it had before.
        var retry = c.InitProducerId("tx", 60_000, init.ProducerId, init.ProducerEpoch);
        Assert.Equal(resumed, retry);
        // An epoch the coordinator never handed out recently is fenced.
        var stale = c.InitProducerId("tx", 60_000, init.ProducerId, (short)(init.ProducerEpoch + 7));
        Assert.Equal(ErrorCode.ProducerFenced, stale.Error);
        // Another producer id is fenced.
        Assert.Equal(ErrorCode.ProducerFenced, c.InitProducerId("tx", 60_000, init.ProducerId + 99, 0).Error);
    }

    [Fact]
    public void ExhaustedEpochRotatesTheProducerId()
    {
        var c = NewCoordinator();
        var init = c.InitProducerId("tx", 60_000);
        // Drive the epoch up to the limit (Short.MaxValue - 1) by re-initialising.
        InitProducerIdResult last = init;
        for (int i = 0; i < short.MaxValue - 1; i++) last = c.InitProducerId("tx", 60_000);
        Assert.Equal((init.ProducerId, (short)(short.MaxValue - 1)), (last.ProducerId, last.ProducerEpoch));
        var rotated = c.InitProducerId("tx", 60_000);
        Assert.NotEqual(init.ProducerId, rotated.ProducerId);
        Assert.Equal(0, rotated.ProducerEpoch);
    }

    [Fact]
    public void TimedOutTransactionIsAbortedAndItsProducerFenced()
    {
        var c = NewCoordinator();
        var init = c.InitProducerId("tx", 5_000);
        c.AddPartitionsToTxn("tx", init.ProducerId, init.ProducerEpoch, [T0]);
        _now += 4_000;
        c.Tick();
        Assert.Empty(_env.Markers);
        _now += 2_000;
        c.Tick();
        var marker = Assert.Single(_env.Markers);
        Assert.False(marker.Commit);
        Assert.Equal(init.ProducerEpoch + 1, marker.Epoch);
        Assert.Equal(TransactionState.CompleteAbort, c.Describe("tx").Description!.State);
        Assert.Equal(ErrorCode.ProducerFenced, c.EndTxn("tx", init.ProducerId, init.ProducerEpoch, commit: true));
    }

    [Fact]
    public void TxnOffsetCommitNeedsTheOffsetsPartitionInTheTransactionAndItsMarkerCompletesThem()
    {
        var c = NewCoordinator();
        var init = c.InitProducerId("tx", 60_000);
        // Offsets before AddOffsetsToTxn are refused.
        Assert.Equal(ErrorCode.InvalidTxnState, c.ValidateTxnOffsetCommit("tx", init.ProducerId, init.ProducerEpoch, "g"));
        Assert.Equal(ErrorCode.None, c.AddOffsetsToTxn("tx", init.ProducerId, init.ProducerEpoch, "g"));
        Assert.Equal(ErrorCode.None, c.ValidateTxnOffsetCommit("tx", init.ProducerId, init.ProducerEpoch, "g"));
        Assert.Equal(ErrorCode.ProducerFenced, c.ValidateTxnOffsetCommit("tx", init.ProducerId, (short)(init.ProducerEpoch + 1), "g"));
        Assert.Equal(ErrorCode.InvalidProducerIdMapping, c.ValidateTxnOffsetCommit("tx", init.ProducerId + 1, init.ProducerEpoch, "g"));
        Assert.Equal(ErrorCode.None, c.EndTxn("tx", init.ProducerId, init.ProducerEpoch, commit: true));
        // The commit marker goes to the group's __consumer_offsets partition, where the group
        // coordinator completes the offsets it holds for the producer.
        var offsetsPartition = _env.OffsetsPartitionFor("g")!.Value;
        Assert.Equal([(offsetsPartition, init.ProducerId, init.ProducerEpoch, true)], _env.Markers);
    }

    [Fact]
    public void ReplayRestoresStateAndCompletesPreparedTransactions()
    {
        var c = NewCoordinator();
        var a = c.InitProducerId("a", 60_000);
        c.AddPartitionsToTxn("a", a.ProducerId, a.ProducerEpoch, [T0, T1]);
        var b = c.InitProducerId("b", 60_000);
        c.AddPartitionsToTxn("b", b.ProducerId, b.ProducerEpoch, [T0]);
        // "a" logs its commit decision, then the broker dies before any marker is written.
        _env.MarkerError = ErrorCode.NotLeaderOrFollower;
        Assert.Equal(ErrorCode.None, c.EndTxn("a", a.ProducerId, a.ProducerEpoch, commit: true));
        Assert.Equal(TransactionState.PrepareCommit, c.Describe("a").Description!.State);
        _env.MarkerError = ErrorCode.None;

        var reloaded = new TransactionCoordinator(c.Config, _env, new ProducerIdManager(null), () => _now);
        reloaded.Activate(4, loading: true);
        Assert.Equal(ErrorCode.CoordinatorLoadInProgress, reloaded.Describe("a").Error);
        for (int p = 0; p < 4; p++) reloaded.LoadPartition(p, _env.Replay(p));

        // The prepared commit completed on load: markers to both partitions, CompleteCommit logged.
        Assert.Equal([(T0, a.ProducerId, a.ProducerEpoch, true), (T1, a.ProducerId, a.ProducerEpoch, true)], _env.Markers);
        Assert.Equal(TransactionState.CompleteCommit, reloaded.Describe("a").Description!.State);
        // The ongoing one is still open with its partitions and start time, and times out later.
        var db = reloaded.Describe("b").Description!;
        Assert.Equal((TransactionState.Ongoing, b.ProducerId, b.ProducerEpoch), (db.State, db.ProducerId, db.ProducerEpoch));
        Assert.Equal([T0], db.Partitions);
        _now += 61_000 + 1_000;
        reloaded.Tick();
        Assert.Equal(TransactionState.CompleteAbort, reloaded.Describe("b").Description!.State);
        Assert.Contains((T0, b.ProducerId, (short)(b.ProducerEpoch + 1), false), _env.Markers);
    }

    [Fact]
    public void OngoingTransactionWithOffsetsStaysOpenOnLoadAndCommitsWithItsOffsetsMarker()
    {
        var c = NewCoordinator();
        var init = c.InitProducerId("tx", 60_000);
        c.AddPartitionsToTxn("tx", init.ProducerId, init.ProducerEpoch, [T0]);
        c.AddOffsetsToTxn("tx", init.ProducerId, init.ProducerEpoch, "g");

        // The offsets live in __consumer_offsets (the group coordinator's transactional records), so a
        // reloaded transaction coordinator keeps the transaction open, as upstream does.
        var reloaded = new TransactionCoordinator(c.Config, _env, new ProducerIdManager(null), () => _now);
        reloaded.Activate(4, loading: true);
        for (int p = 0; p < 4; p++) reloaded.LoadPartition(p, _env.Replay(p));
        Assert.Equal(TransactionState.Ongoing, reloaded.Describe("tx").Description!.State);
        Assert.Empty(_env.Markers);
        Assert.Equal(ErrorCode.None, reloaded.EndTxn("tx", init.ProducerId, init.ProducerEpoch, commit: true));
        var offsetsPartition = _env.OffsetsPartitionFor("g")!.Value;
        Assert.Equal([(offsetsPartition, init.ProducerId, init.ProducerEpoch, true), (T0, init.ProducerId, init.ProducerEpoch, true)], _env.Markers);
    }

    [Fact]
    public void FailedStateAppendLeavesStateUnchanged()
    {
        var c = NewCoordinator();
        var init = c.InitProducerId("tx", 60_000);
        _env.NextStateError = ErrorCode.NotLeaderOrFollower;
        Assert.Equal(ErrorCode.NotCoordinator, c.AddPartitionsToTxn("tx", init.ProducerId, init.ProducerEpoch, [T0])[T0]);
        _env.NextStateError = ErrorCode.None;
        Assert.Equal(TransactionState.Empty, c.Describe("tx").Description!.State);
        Assert.Empty(c.Describe("tx").Description!.Partitions);
    }

    [Fact]
    public void ListFiltersByStateProducerAndDuration()
    {
        var c = NewCoordinator();
        var a = c.InitProducerId("a", 60_000);
        var b = c.InitProducerId("b", 60_000);
        c.AddPartitionsToTxn("a", a.ProducerId, a.ProducerEpoch, [T0]);
        _now += 5_000;
        Assert.Equal(["a", "b"], c.List(null, null, -1).Transactions.Select(t => t.TransactionalId).Order());
        Assert.Equal(["a"], c.List([TransactionState.Ongoing], null, -1).Transactions.Select(t => t.TransactionalId));
        Assert.Equal(["b"], c.List(null, [b.ProducerId], -1).Transactions.Select(t => t.TransactionalId));
        Assert.Equal(["a"], c.List(null, null, 4_000).Transactions.Select(t => t.TransactionalId));
        Assert.Empty(c.List(null, null, 6_000).Transactions);
    }

    [Fact]
    public void IdleTransactionalIdsExpireWithATombstone()
    {
        var c = NewCoordinator();
        c.InitProducerId("tx", 60_000);
        _now += 3_600_000 + 60_000;
        c.Tick();
        Assert.Equal(ErrorCode.TransactionalIdNotFound, c.Describe("tx").Error);
        var last = _env.StateLog[^1];
        Assert.Null(last.Value);
        Assert.Equal("tx", TransactionRecords.Decode(last.Key, null)!.TransactionalId);
    }
}
