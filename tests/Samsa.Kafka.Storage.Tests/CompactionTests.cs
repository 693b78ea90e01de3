using static Samsa.Kafka.Storage.Tests.Batches;

namespace Samsa.Kafka.Storage.Tests;

public class CompactionTests
{
    private static readonly TopicPartition Tp = new("__consumer_offsets", 7);

    private static PartitionLog OpenCompacted(TempDir dir, ManualTime time, string policy = "compact")
        => PartitionLog.Open(dir.Sub("__consumer_offsets-7"), Tp,
            new LogConfig { CleanupPolicy = policy, SegmentBytes = 700, FileDeleteDelayMs = 0, DeleteRetentionMs = 10_000, RetentionMs = -1 },
            time: time);

    [Fact]
    public void Compaction_keeps_the_last_record_per_key_at_its_original_offset()
    {
        using var dir = new TempDir();
        var time = new ManualTime(1_000_000);
        using PartitionLog log = OpenCompacted(dir, time);
        var latest = new Dictionary<string, (long Offset, string Value)>();
        for (int round = 0; round < 8; round++)
        {
            for (int k = 0; k < 5; k++)
            {
                string value = $"k{k}-r{round}";
                long offset = log.AppendAsLeader(Build([new Rec($"k{k}", value, 1_000_000 + round)]), 0).FirstOffset;
                latest[$"k{k}"] = (offset, value);
            }
        }
        log.Roll();
        log.UpdateHighWatermark(log.LogEndOffset);
        int segmentsBefore = log.Segments.Count;
        long sizeBefore = log.Size;

        CleanResult result = LogCleaner.Clean(log, 0)!.Value;
        Assert.True(result.RecordsRemoved >= 35);
        Assert.True(log.Size < sizeBefore);
        Assert.True(log.Segments.Count <= segmentsBefore);

        var records = ReadAll(log);
        Assert.Equal(5, records.Count);
        foreach (var r in records)
        {
            Assert.Equal(latest[r.Key!].Offset, r.Offset);
            Assert.Equal(latest[r.Key!].Value, r.Value);
        }
        Assert.Equal(40, log.LogEndOffset);
        // Appends continue at the old end: compaction never reuses offsets.
        Assert.Equal(40, log.AppendAsLeader(Build([new Rec("k0", "again", 1_000_100)]), 0).FirstOffset);
    }

    [Fact]
    public void Partly_superseded_batches_are_rewritten_with_valid_crc_and_original_offsets()
    {
        using var dir = new TempDir();
        var time = new ManualTime(1_000_000);
        using PartitionLog log = OpenCompacted(dir, time);
        log.AppendAsLeader(Build([new Rec("a", "a1", 1_000_000), new Rec("b", "b1", 1_000_001), new Rec("c", "c1", 1_000_002)]), 0);
        log.AppendAsLeader(Build([new Rec("b", "b2", 1_000_003)]), 0);
        log.Roll();
        log.UpdateHighWatermark(log.LogEndOffset);
        LogCleaner.Clean(log, 0);
        var records = ReadAll(log);
        Assert.Equal([(0L, "a1"), (2L, "c1"), (3L, "b2")], records.Select(r => (r.Offset, r.Value!)));
        // The rewritten batch still announces its original last offset (KIP-98 lastOffsetDelta).
        FetchDataInfo info = log.Read(0, 1 << 20, log.LogEndOffset);
        byte[] bytes = ReadRange(info.Records!.Value);
        var first = new BatchHeader(bytes);
        Assert.Equal(2, first.LastOffset);
        Assert.Equal(2, first.RecordsCount);
        Assert.True(BatchHeader.IsCrcValid(bytes.AsSpan(0, first.SizeInBytes)));
    }

    [Fact]
    public void Tombstones_stay_for_delete_retention_ms_then_go()
    {
        using var dir = new TempDir();
        var time = new ManualTime(1_000_000);
        using PartitionLog log = OpenCompacted(dir, time);
        log.AppendAsLeader(Build([new Rec("gone", "v1", 1_000_000)]), 0);
        log.AppendAsLeader(Build([new Rec("kept", "v1", 1_000_000)]), 0);
        log.AppendAsLeader(Build([new Rec("gone", null, 1_000_500)]), 0);
        log.Roll();
        log.UpdateHighWatermark(log.LogEndOffset);

        LogCleaner.Clean(log, 0);
        var afterFirst = ReadAll(log);
        Assert.Equal([("kept", "v1"), ("gone", (string?)null)], afterFirst.Select(r => (r.Key!, r.Value)));

        time.Advance(20_000);
        log.AppendAsLeader(Build([new Rec("other", "x", 1_020_000)]), 0);
        log.Roll();
        log.UpdateHighWatermark(log.LogEndOffset);
        LogCleaner.Clean(log, 3);
        Assert.Equal(["kept", "other"], ReadAll(log).Select(r => r.Key!));
    }

    [Fact]
    public void Control_and_transactional_batches_are_kept_whole()
    {
        using var dir = new TempDir();
        var time = new ManualTime(1_000_000);
        using PartitionLog log = OpenCompacted(dir, time);
        // transactional (bit 4) write of key "t", then a plain newer value of "t".
        log.AppendAsLeader(Build([new Rec("t", "txn", 1_000_000)], attributes: 0x10, producerId: 5), 0);
        log.AppendAsLeader(Build([new Rec(null, "marker", 1_000_000)], attributes: 0x30, producerId: 5), 0);
        log.AppendAsLeader(Build([new Rec("t", "plain1", 1_000_000)]), 0);
        log.AppendAsLeader(Build([new Rec("t", "plain2", 1_000_000)]), 0);
        log.Roll();
        log.UpdateHighWatermark(log.LogEndOffset);
        LogCleaner.Clean(log, 0);
        Assert.Equal(["txn", "marker", "plain2"], ReadAll(log).Select(r => r.Value!));
    }

    [Fact]
    public void Active_segment_and_data_above_the_high_watermark_are_not_cleaned()
    {
        using var dir = new TempDir();
        var time = new ManualTime(1_000_000);
        using PartitionLog log = OpenCompacted(dir, time);
        for (int i = 0; i < 6; i++)
        {
            log.AppendAsLeader(Build([new Rec("k", "v" + i, 1_000_000)]), 0);
        }
        Assert.Null(LogCleaner.Clean(log, 0)); // single active segment
        log.Roll();
        Assert.Null(LogCleaner.Clean(log, 0)); // nothing below the high watermark
        Assert.Equal(6, ReadAll(log).Count);
    }

    [Fact]
    public void Log_manager_cleaner_pass_records_the_cleaner_checkpoint()
    {
        using var dir = new TempDir();
        var time = new ManualTime(1_000_000);
        var config = new LogConfig { CleanupPolicy = "compact,delete", SegmentBytes = 700, FileDeleteDelayMs = 0, RetentionMs = -1 };
        using (var manager = new LogManager([dir.Path], config, time))
        {
            PartitionLog log = manager.GetOrCreateLog(Tp);
            for (int i = 0; i < 30; i++)
            {
                log.AppendAsLeader(Build([new Rec("k" + i % 3, "v" + i, 1_000_000)]), 0);
            }
            log.Roll();
            log.UpdateHighWatermark(log.LogEndOffset);
            var results = manager.RunCleaner();
            Assert.Single(results);
            Assert.Equal(30, manager.CleanerCheckpoint(Tp));
            Assert.Equal(3, ReadAll(log).Count);
            manager.Shutdown();
        }
        string[] lines = File.ReadAllLines(Path.Combine(dir.Path, "cleaner-offset-checkpoint"));
        Assert.Equal(["0", "1", "__consumer_offsets 7 30"], lines);
        using var again = new LogManager([dir.Path], config, time);
        Assert.Equal(30, again.CleanerCheckpoint(Tp));
        Assert.Equal(["v27", "v28", "v29"], ReadAll(again.GetLog(Tp)!).Select(r => r.Value!));
    }
}
