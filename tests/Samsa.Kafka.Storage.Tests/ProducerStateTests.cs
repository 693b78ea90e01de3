using Samsa.Kafka.Protocol.Records;
using static Samsa.Kafka.Storage.Tests.Batches;

namespace Samsa.Kafka.Storage.Tests;

public class ProducerStateTests
{
    private static readonly TopicPartition Tp = new("idem", 0);

    private static PartitionLog Open(TempDir dir) => PartitionLog.Open(dir.Sub("idem-0"), Tp, new LogConfig { RetentionMs = -1 });

    [Fact]
    public void Retried_batch_is_answered_with_its_original_offsets_and_not_appended_twice()
    {
        using var dir = new TempDir();
        using PartitionLog log = Open(dir);
        log.AppendAsLeader(Values(1, "unrelated"), 0);
        LogAppendInfo first = log.AppendAsLeader(Idempotent(1000, 0, 0, 3), 0);
        Assert.Equal((1L, 3L, false), (first.FirstOffset, first.LastOffset, first.IsDuplicate));
        LogAppendInfo retry = log.AppendAsLeader(Idempotent(1000, 0, 0, 3), 0);
        Assert.Equal((1L, 3L, true), (retry.FirstOffset, retry.LastOffset, retry.IsDuplicate));
        Assert.Equal(4, log.LogEndOffset);
        Assert.Equal(4, log.AppendAsLeader(Idempotent(1000, 0, 3, 1), 0).FirstOffset);
    }

    [Fact]
    public void Sequence_gaps_and_zombie_epochs_are_refused()
    {
        using var dir = new TempDir();
        using PartitionLog log = Open(dir);
        log.AppendAsLeader(Idempotent(7, 0, 0, 2), 0);
        var gap = Assert.Throws<ProducerStateException>(() => log.AppendAsLeader(Idempotent(7, 0, 5, 1), 0));
        Assert.Equal(ProducerStateError.OutOfOrderSequence, gap.Error);
        Assert.Equal(2, log.LogEndOffset);

        log.AppendAsLeader(Idempotent(7, 1, 0, 1), 0); // epoch bump restarts at 0
        var zombie = Assert.Throws<ProducerStateException>(() => log.AppendAsLeader(Idempotent(7, 0, 2, 1), 0));
        Assert.Equal(ProducerStateError.InvalidProducerEpoch, zombie.Error);
        var badStart = Assert.Throws<ProducerStateException>(() => log.AppendAsLeader(Idempotent(7, 2, 3, 1), 0));
        Assert.Equal(ProducerStateError.OutOfOrderSequence, badStart.Error);
        Assert.Equal(3, log.LogEndOffset);

        // A producer the log has never seen may start at any sequence (its earlier data may be gone).
        Assert.Equal(3, log.AppendAsLeader(Idempotent(8, 4, 17, 1), 0).FirstOffset);
    }

    [Fact]
    public void Producer_state_is_rebuilt_when_the_log_reopens()
    {
        using var dir = new TempDir();
        using (PartitionLog log = Open(dir))
        {
            log.AppendAsLeader(Idempotent(42, 3, 0, 2), 0);
            log.AppendAsLeader(Idempotent(42, 3, 2, 2), 0);
        }
        using PartitionLog reopened = Open(dir);
        Assert.True(reopened.AppendAsLeader(Idempotent(42, 3, 2, 2), 0).IsDuplicate);
        Assert.Equal(3, reopened.ProducerState.LastEntry(42)!.LastSequence);
        Assert.Throws<ProducerStateException>(() => reopened.AppendAsLeader(Idempotent(42, 3, 9, 1), 0));
        Assert.Equal(4, reopened.AppendAsLeader(Idempotent(42, 3, 4, 1), 0).FirstOffset);
    }

    [Fact]
    public void Producer_snapshots_are_written_at_roll_and_close_in_upstream_layout()
    {
        using var dir = new TempDir();
        string logDir;
        using (PartitionLog log = Open(dir))
        {
            logDir = log.Directory;
            log.AppendAsLeader(Idempotent(5, 2, 0, 3), 0);                                           // 0-2
            log.AppendAsLeader(Build([new Rec(null, "t", 1)], attributes: 0x10, producerId: 6), 0);   // 3, open txn
            log.Roll();
            string atRoll = ProducerSnapshotFile.PathFor(logDir, 4);
            Assert.True(File.Exists(atRoll));
            // version 1, crc, count 2, 46 bytes per producer
            Assert.Equal(2 + 4 + 4 + 2 * 46, new FileInfo(atRoll).Length);
            var entries = ProducerSnapshotFile.Read(atRoll);
            Assert.Equal(new ProducerSnapshotFile.Entry(5, 2, 2, 2, 2, 1_700_000_000_000, -1, -1), entries[0]);
            Assert.Equal(6, entries[1].ProducerId);
            Assert.Equal(3, entries[1].CurrentTxnFirstOffset);

            log.AppendAsLeader(Idempotent(5, 2, 3, 1), 0);                                           // 4
            log.Roll();
            Assert.True(File.Exists(ProducerSnapshotFile.PathFor(logDir, 5)));
            log.TruncateTo(4);
            Assert.False(File.Exists(ProducerSnapshotFile.PathFor(logDir, 5)));
            Assert.True(File.Exists(atRoll));
            log.Close();
        }
        Assert.Equal([4L], ProducerSnapshotFile.List(logDir));
        byte[] corrupt = File.ReadAllBytes(ProducerSnapshotFile.PathFor(logDir, 4));
        corrupt[^1] ^= 1;
        File.WriteAllBytes(ProducerSnapshotFile.PathFor(logDir, 4), corrupt);
        Assert.Throws<InvalidDataException>(() => ProducerSnapshotFile.Read(ProducerSnapshotFile.PathFor(logDir, 4)));
    }

    private static byte[] Txn(long producerId, short epoch, int sequence) =>
        BuildRaw([(null, "v"u8.ToArray(), 1_700_000_000_000)], 0, attributes: 0x10, producerId, epoch, sequence);

    private static ProducerStateError Refused(Action append) => Assert.Throws<ProducerStateException>(append).Error;

    [Fact]
    public void A_transactional_batch_needs_its_verification_guard_which_a_marker_in_between_spends()
    {
        using var dir = new TempDir();
        using PartitionLog log = Open(dir);
        VerificationGuard guard = log.MaybeStartTransactionVerification(9, 0, 0, supportsEpochBump: false);
        Assert.NotSame(VerificationGuard.Sentinel, guard);
        Assert.Same(guard, log.MaybeStartTransactionVerification(9, 0, 0, supportsEpochBump: false));
        // No guard, or one this log did not hand out for the producer, is refused.
        Assert.Equal(ProducerStateError.InvalidTxnState, Refused(() => log.AppendAsLeader(Txn(9, 0, 0), 0, VerificationGuard.Sentinel)));
        Assert.Equal(ProducerStateError.InvalidTxnState, Refused(() => log.AppendAsLeader(Txn(9, 0, 0), 0, new VerificationGuard())));
        Assert.Equal(0, log.LogEndOffset);
        log.AppendAsLeader(Txn(9, 0, 0), 0, guard);
        // Spent by the append; the open transaction needs none.
        Assert.Same(VerificationGuard.Sentinel, log.VerificationGuardOf(9));
        Assert.Same(VerificationGuard.Sentinel, log.MaybeStartTransactionVerification(9, 1, 0, supportsEpochBump: false));
        log.AppendAsLeader(Txn(9, 0, 1), 0, VerificationGuard.Sentinel);
        log.AppendAsLeader(Marker(9, ControlRecordType.Abort, 1_700_000_000_000), 0);
        // The transaction ended: continuing it without a verification is refused.
        Assert.Equal(ProducerStateError.InvalidTxnState, Refused(() => log.AppendAsLeader(Txn(9, 0, 2), 0, VerificationGuard.Sentinel)));

        // A verification, then a marker for the producer before the append: the guard is gone.
        VerificationGuard raced = log.MaybeStartTransactionVerification(9, 2, 0, supportsEpochBump: false);
        log.AppendAsLeader(Marker(9, ControlRecordType.Abort, 1_700_000_000_000), 0);
        long end = log.LogEndOffset;
        Assert.Equal(ProducerStateError.InvalidTxnState, Refused(() => log.AppendAsLeader(Txn(9, 0, 2), 0, raced)));
        Assert.Equal(end, log.LogEndOffset);
        Assert.Null(log.FirstUnstableOffset);
        // Appends that are not client produce with verification on (null) are not checked.
        log.AppendAsLeader(Txn(9, 0, 2), 0);
        Assert.Equal(end, log.FirstUnstableOffset);
    }

    [Fact]
    public void Verification_state_keeps_the_lowest_sequence_and_refuses_older_epochs()
    {
        using var dir = new TempDir();
        using PartitionLog log = Open(dir);
        // A retried lower sequence becomes the bar: the higher one may not jump ahead of it.
        VerificationGuard guard = log.MaybeStartTransactionVerification(11, 5, 0, supportsEpochBump: false);
        Assert.Same(guard, log.MaybeStartTransactionVerification(11, 3, 0, supportsEpochBump: false));
        Assert.Equal(ProducerStateError.OutOfOrderSequence, Refused(() => log.AppendAsLeader(Txn(11, 0, 5), 0, guard)));
        log.AppendAsLeader(Txn(11, 0, 3), 0, guard);

        // Transaction version 2: a producer this partition has no state for starts at sequence 0.
        VerificationGuard tv2 = log.MaybeStartTransactionVerification(12, 4, 0, supportsEpochBump: true);
        Assert.Equal(ProducerStateError.OutOfOrderSequence, Refused(() => log.AppendAsLeader(Txn(12, 0, 4), 0, tv2)));
        log.AppendAsLeader(Txn(12, 0, 0), 0, tv2);

        // An epoch older than the producer's is refused before verification and at the append.
        log.AppendAsLeader(Txn(13, 3, 0), 0);
        Assert.Equal(ProducerStateError.InvalidProducerEpoch, Refused(() => log.MaybeStartTransactionVerification(13, 0, 2, supportsEpochBump: true)));
    }

    private const long Hour = 3_600_000;

    private static byte[] TxnAt(long producerId, short epoch, int sequence, long timestamp) =>
        BuildRaw([(null, "v"u8.ToArray(), timestamp)], 0, attributes: 0x10, producerId, epoch, sequence);

    [Fact]
    public void Idle_producers_expire_unless_a_transaction_is_open_or_their_last_batch_is_recent()
    {
        const long now = 1_800_000_000_000;
        var time = new ManualTime(now);
        using var dir = new TempDir();
        using PartitionLog log = PartitionLog.Open(dir.Sub("idem-0"), Tp, new LogConfig { RetentionMs = -1 }, time: time);
        log.AppendAsLeader(Idempotent(1, 0, 0, 3, timestamp: now - 2 * Hour), 0);       // idle
        log.AppendAsLeader(TxnAt(2, 0, 0, now - 2 * Hour), 0);                          // open transaction
        log.AppendAsLeader(Idempotent(3, 0, 0, 1, timestamp: now - 10 * 60_000), 0);    // recent
        log.AppendAsLeader(TxnAt(4, 0, 0, now - 3 * Hour), 0);                          // transaction ended...
        log.AppendAsLeader(Marker(4, 0, ControlRecordType.Commit, 0, now - 2 * Hour), 0); // ...two hours ago
        log.AppendAsLeader(Idempotent(5, 0, 0, 1, timestamp: now - Hour), 0);           // exactly at the limit
        VerificationGuard verifying = log.MaybeStartTransactionVerification(6, 0, 0, supportsEpochBump: false);

        Assert.Equal(3, log.RemoveExpiredProducers(Hour));
        Assert.Equal([2L, 3L], log.ActiveProducers().Select(p => p.Entry.ProducerId).Order());
        Assert.Equal(3, log.ActiveProducers().Single(p => p.Entry.ProducerId == 2).CurrentTxnStartOffset);
        // A verification is kept for producer.id.expiration.ms after it started.
        Assert.Same(verifying, log.VerificationGuardOf(6));
        time.Advance(Hour);
        Assert.Equal(1, log.RemoveExpiredProducers(Hour));   // producer 3
        Assert.Same(VerificationGuard.Sentinel, log.VerificationGuardOf(6));
        Assert.Equal([2L], log.ActiveProducers().Select(p => p.Entry.ProducerId));

        // As upstream, a producer id the log no longer knows may go on at any sequence, and a retry of a
        // batch from before the expiry is no longer recognised as one.
        long end = log.LogEndOffset;
        Assert.Equal(end, log.AppendAsLeader(Idempotent(1, 0, 7, 1, timestamp: now), 0).FirstOffset);
        Assert.Throws<ProducerStateException>(() => log.AppendAsLeader(Idempotent(1, 0, 9, 1, timestamp: now), 0));
        LogAppendInfo retried = log.AppendAsLeader(Idempotent(5, 0, 0, 1, timestamp: now - Hour), 0);
        Assert.False(retried.IsDuplicate);
        Assert.Equal(end + 1, retried.FirstOffset);

        // A truncation replays the log; the producers expired meanwhile stay gone.
        Assert.True(log.TruncateTo(end));
        Assert.Equal([2L], log.ActiveProducers().Select(p => p.Entry.ProducerId));
    }

    [Fact]
    public void The_log_manager_expires_producers_on_its_timer_with_the_current_expiration()
    {
        using var dir = new TempDir();
        using var manager = new LogManager([dir.Path], new LogConfig { RetentionMs = -1 });
        PartitionLog log = manager.GetOrCreateLog(Tp);
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        log.AppendAsLeader(Idempotent(1, 0, 0, 1, timestamp: now - 2 * Hour), 0);
        log.AppendAsLeader(Idempotent(2, 0, 0, 1, timestamp: now), 0);
        long expirationMs = 86_400_000;
        manager.ProducerIdExpirationMs = () => Volatile.Read(ref expirationMs);
        using IDisposable tasks = manager.StartBackgroundTasks(TimeSpan.FromHours(1), TimeSpan.FromHours(1), TimeSpan.FromHours(1), null,
            producerIdExpirationCheckInterval: TimeSpan.FromMilliseconds(20));
        Thread.Sleep(200);
        Assert.Equal(2, log.ActiveProducers().Count);
        // producer.id.expiration.ms is dynamic: the next pass uses the new value.
        Volatile.Write(ref expirationMs, Hour);
        Assert.True(SpinWait.SpinUntil(() => log.ActiveProducers().Count == 1, TimeSpan.FromSeconds(10)));
        Assert.Equal(2, log.ActiveProducers().Single().Entry.ProducerId);
    }

    [Fact]
    public void Markers_record_their_coordinator_epoch_and_one_from_an_older_coordinator_is_fenced()
    {
        using var dir = new TempDir();
        long end;
        using (PartitionLog log = Open(dir))
        {
            log.AppendAsLeader(Txn(20, 0, 0), 0);
            log.AppendAsLeader(Marker(20, 0, ControlRecordType.Commit, 3, 1_700_000_000_000), 0);
            Assert.Equal(3, log.ProducerState.LastEntry(20)!.CoordinatorEpoch);
            Assert.Equal(3, log.ActiveProducers().Single().Entry.CoordinatorEpoch);

            log.AppendAsLeader(Txn(20, 0, 1), 0);
            end = log.LogEndOffset;
            Assert.Equal(ProducerStateError.TransactionCoordinatorFenced,
                Refused(() => log.AppendAsLeader(Marker(20, 0, ControlRecordType.Abort, 2, 1_700_000_000_000), 0)));
            Assert.Equal(end, log.LogEndOffset);
            Assert.Equal(2, log.FirstUnstableOffset);
            // The same coordinator epoch, or a newer one, ends the transaction.
            log.AppendAsLeader(Marker(20, 0, ControlRecordType.Abort, 3, 1_700_000_000_000), 0);
            Assert.Null(log.FirstUnstableOffset);
            log.AppendAsLeader(Txn(20, 0, 2), 0);
            log.AppendAsLeader(Marker(20, 0, ControlRecordType.Commit, 5, 1_700_000_000_000), 0);
            end = log.LogEndOffset;
        }
        // Rebuilt from the log on open.
        using PartitionLog reopened = Open(dir);
        Assert.Equal(5, reopened.ProducerState.LastEntry(20)!.CoordinatorEpoch);
        Assert.Equal(ProducerStateError.TransactionCoordinatorFenced,
            Refused(() => reopened.AppendAsLeader(Marker(20, 0, ControlRecordType.Commit, 4, 1_700_000_000_000), 0)));
        // A follower copies what its leader accepted without this check (upstream logs it for replication).
        byte[] replicated = Marker(20, 0, ControlRecordType.Commit, 4, 1_700_000_000_000);
        PartitionLog.AssignOffsets(replicated, end, 0);
        reopened.AppendAsFollower(replicated);
        Assert.Equal(4, reopened.ProducerState.LastEntry(20)!.CoordinatorEpoch);
    }
}
