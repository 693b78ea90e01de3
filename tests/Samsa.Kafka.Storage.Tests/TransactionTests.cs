using Samsa.Kafka.Protocol.Records;
using static Samsa.Kafka.Storage.Tests.Batches;

namespace Samsa.Kafka.Storage.Tests;

public class TransactionTests
{
    private static readonly TopicPartition Tp = new("txn", 0);
    private const long T0 = 1_700_000_000_000;

    private static PartitionLog Open(TempDir dir, long recoveryPoint = 0)
        => PartitionLog.Open(dir.Sub("txn-0"), Tp, new LogConfig { RetentionMs = -1, FileDeleteDelayMs = 0 }, recoveryPoint, highWatermark: long.MaxValue);

    private static byte[] Txn(long producerId, params string[] values)
        => Build(values.Select(v => new Rec(null, v, T0)).ToList(), attributes: 0x10, producerId: producerId);

    [Fact]
    public void Open_transactions_hold_back_the_last_stable_offset_and_aborts_are_indexed()
    {
        using var dir = new TempDir();
        using (PartitionLog log = Open(dir))
        {
            log.AppendAsLeader(Txn(7, "p7-a", "p7-b"), 0);            // 0-1
            log.AppendAsLeader(Values(T0, "plain"), 0);                // 2
            log.AppendAsLeader(Txn(8, "p8-a"), 0);                     // 3
            log.UpdateHighWatermark(log.LogEndOffset);
            Assert.Equal(0, log.FirstUnstableOffset);
            Assert.Equal(0, log.LastStableOffset);

            log.AppendAsLeader(Marker(7, ControlRecordType.Abort, T0), 0);   // 4
            log.UpdateHighWatermark(log.LogEndOffset);
            Assert.Equal(3, log.FirstUnstableOffset);
            Assert.Equal(3, log.LastStableOffset);

            log.AppendAsLeader(Marker(8, ControlRecordType.Commit, T0), 0);  // 5
            log.UpdateHighWatermark(4);
            Assert.Null(log.FirstUnstableOffset);
            Assert.Equal(4, log.LastStableOffset);
            log.UpdateHighWatermark(6);
            Assert.Equal(6, log.LastStableOffset);

            Assert.Equal([new AbortedTxn(7, 0, 4, 3)], log.CollectAbortedTransactions(0, 6));
            Assert.Equal([new AbortedTxn(7, 0, 4, 3)], log.CollectAbortedTransactions(4, 6));
            Assert.Empty(log.CollectAbortedTransactions(5, 6));
            Assert.Equal(34, new FileInfo(Path.Combine(log.Directory, "00000000000000000000.txnindex")).Length);
            // Unclean stop.
        }
        using (PartitionLog reopened = Open(dir))
        {
            Assert.Equal([new AbortedTxn(7, 0, 4, 3)], reopened.CollectAbortedTransactions(0, 6));
            Assert.Null(reopened.FirstUnstableOffset);
            // Truncating away the markers reopens both transactions.
            reopened.TruncateTo(4);
            Assert.Empty(reopened.CollectAbortedTransactions(0, 6));
            Assert.Equal(0, reopened.FirstUnstableOffset);
        }
    }

    [Fact]
    public void Cleaner_does_not_touch_data_at_or_above_the_last_stable_offset()
    {
        using var dir = new TempDir();
        var log = PartitionLog.Open(dir.Sub("txn-0"), Tp, new LogConfig { CleanupPolicy = "compact", RetentionMs = -1, FileDeleteDelayMs = 0 });
        using (log)
        {
            log.AppendAsLeader(Build([new Rec("k", "v1", T0)]), 0);
            log.AppendAsLeader(Txn(3, "open"), 0);
            log.Roll();
            log.AppendAsLeader(Build([new Rec("k", "v2", T0)]), 0);
            log.Roll();
            log.UpdateHighWatermark(log.LogEndOffset);
            Assert.Equal(1, log.LastStableOffset);
            Assert.Null(LogCleaner.Clean(log, 0));
            Assert.Equal(["v1", "open", "v2"], ReadAll(log).Select(r => r.Value!));
        }
    }
}
