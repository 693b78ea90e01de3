using Samsa.Kafka.Protocol.Records;
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
        var first = new RecordBatch(bytes);
        Assert.Equal(2, first.LastOffset);
        Assert.Equal(2, first.RecordsCount);
        Assert.True(new RecordBatch(bytes.AsSpan(0, first.SizeInBytes)).Validate() == RecordBatchError.None);
    }

    [Theory]
    [InlineData(Samsa.Kafka.Protocol.Compression.CompressionType.Gzip)]
    [InlineData(Samsa.Kafka.Protocol.Compression.CompressionType.Snappy)]
    [InlineData(Samsa.Kafka.Protocol.Compression.CompressionType.Lz4)]
    [InlineData(Samsa.Kafka.Protocol.Compression.CompressionType.Zstd)]
    public void Compressed_batches_are_compacted_and_keep_their_codec(Samsa.Kafka.Protocol.Compression.CompressionType codec)
    {
        using var dir = new TempDir();
        var time = new ManualTime(1_000_000);
        using PartitionLog log = OpenCompacted(dir, time);
        log.AppendAsLeader(Compressed(Build([new Rec("a", "a1", 1_000_000), new Rec("b", "b1", 1_000_001), new Rec("c", "c1", 1_000_002)]), codec), 0);
        log.AppendAsLeader(Compressed(Build([new Rec("a", "a2", 1_000_003), new Rec("d", "d1", 1_000_004)]), codec), 0);
        log.Roll();
        log.UpdateHighWatermark(log.LogEndOffset);
        CleanResult result = LogCleaner.Clean(log, 0)!.Value;
        Assert.Equal(1, result.RecordsRemoved);
        Assert.Equal([(1L, "b1"), (2L, "c1"), (3L, "a2"), (4L, "d1")], ReadAll(log).Select(r => (r.Offset, r.Value!)));
        byte[] bytes = ReadRange(log.Read(0, 1 << 20, log.LogEndOffset).Records!.Value);
        var first = new RecordBatch(bytes);
        Assert.Equal(codec, first.Compression);
        Assert.Equal(2, first.RecordsCount);
        Assert.Equal(0, first.BaseOffset);
        Assert.Equal(2, first.LastOffset);
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
        log.AppendAsLeader(Marker(5, Samsa.Kafka.Protocol.Records.ControlRecordType.Commit, 1_000_000), 0);
        log.AppendAsLeader(Build([new Rec("t", "plain1", 1_000_000)]), 0);
        log.AppendAsLeader(Build([new Rec("t", "plain2", 1_000_000)]), 0);
        log.Roll();
        log.UpdateHighWatermark(log.LogEndOffset);
        LogCleaner.Clean(log, 0);
        // The committed transactional write and its marker stay; only the superseded plain value goes.
        Assert.Equal([0L, 1L, 3L], ReadAll(log).Select(r => r.Offset));
        Assert.Equal("txn", ReadAll(log)[0].Value);
        Assert.Equal("plain2", ReadAll(log)[2].Value);
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

    [Fact]
    public void A_cleaned_swap_left_by_a_crash_replaces_the_old_segments_on_load()
    {
        using var dirA = new TempDir();
        using var dirB = new TempDir();
        var time = new ManualTime(1_000_000);
        var config = new LogConfig { CleanupPolicy = "compact", SegmentBytes = 1 << 20, FileDeleteDelayMs = 0, RetentionMs = -1 };
        PartitionLog OpenIn(TempDir d, bool clean = false) =>
            PartitionLog.Open(d.Sub("__consumer_offsets-7"), Tp, config, hadCleanShutdown: clean, highWatermark: 40, time: time);
        void Fill(PartitionLog log)
        {
            for (int i = 0; i < 40; i++)
            {
                log.AppendAsLeader(Build([new Rec("k" + i % 4, "v" + i, 1_000_000)]), 0);
                if (i % 10 == 9)
                {
                    log.Roll(); // four segments, cleaned as one group
                }
            }
            log.Roll();
            log.UpdateHighWatermark(log.LogEndOffset);
        }
        List<(long, long, string?, string?)> expected;
        string cleanedDir;
        using (PartitionLog a = OpenIn(dirA))
        {
            Fill(a);
            LogCleaner.Clean(a, 0);
            expected = ReadAll(a);
            Assert.Equal(4, expected.Count);
            cleanedDir = a.Directory;
            a.Close();
        }
        string bDir;
        using (PartitionLog b = OpenIn(dirB))
        {
            Fill(b);
            bDir = b.Directory;
            b.Close();
        }
        // The crash happened after the cleaned segment became ".swap" and before the old segments went.
        foreach (string suffix in new[] { ".log", ".index", ".timeindex" })
        {
            File.Copy(Path.Combine(cleanedDir, "00000000000000000000" + suffix), Path.Combine(bDir, "00000000000000000000" + suffix + ".swap"));
        }
        File.WriteAllText(Path.Combine(bDir, "00000000000000000007.log.cleaned"), "half-written");
        using PartitionLog reopened = OpenIn(dirB, clean: true);
        Assert.Equal(expected, ReadAll(reopened));
        Assert.Equal(40, reopened.LogEndOffset);
        Assert.Empty(Directory.GetFiles(bDir, "*.swap"));
        Assert.Empty(Directory.GetFiles(bDir, "*.cleaned"));
    }

    private static void FillDirtyCompactedLog(PartitionLog log)
    {
        for (int i = 0; i < 30; i++)
        {
            log.AppendAsLeader(Build([new Rec("k" + i % 3, "v" + i, 1_000_000)]), 0);
        }
        log.Roll();
        log.UpdateHighWatermark(log.LogEndOffset);
    }

    private static readonly TimeSpan Hour = TimeSpan.FromHours(1);

    [Fact]
    public async Task Background_cleaner_sleeps_log_cleaner_backoff_ms_after_a_pass_with_nothing_to_clean()
    {
        using var dir = new TempDir();
        var config = new LogConfig { CleanupPolicy = "compact", SegmentBytes = 700, FileDeleteDelayMs = 0, RetentionMs = -1 };
        using var manager = new LogManager([dir.Path], config);
        PartitionLog log = manager.GetOrCreateLog(Tp);
        var idle = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // The backoff is asked for when a pass found nothing: the first pass runs at start.
        using var tasks = manager.StartBackgroundTasks(Hour, Hour, Hour, () => { idle.TrySetResult(); return TimeSpan.FromMinutes(10); });
        await idle.Task.WaitAsync(TimeSpan.FromSeconds(30));
        FillDirtyCompactedLog(log);
        await Task.Delay(1500);
        Assert.Equal(0, manager.CleanerCheckpoint(Tp));
        Assert.Equal(30, ReadAll(log).Count);
    }

    [Fact]
    public async Task Background_cleaner_with_a_short_backoff_cleans_new_dirty_data()
    {
        using var dir = new TempDir();
        var config = new LogConfig { CleanupPolicy = "compact", SegmentBytes = 700, FileDeleteDelayMs = 0, RetentionMs = -1 };
        using var manager = new LogManager([dir.Path], config);
        PartitionLog log = manager.GetOrCreateLog(Tp);
        var idle = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var tasks = manager.StartBackgroundTasks(Hour, Hour, Hour, () => { idle.TrySetResult(); return TimeSpan.FromMilliseconds(50); });
        await idle.Task.WaitAsync(TimeSpan.FromSeconds(30));
        FillDirtyCompactedLog(log);
        // Well inside the old fixed 15 s period.
        for (int i = 0; i < 100 && manager.CleanerCheckpoint(Tp) != 30; i++) await Task.Delay(50);
        Assert.Equal(30, manager.CleanerCheckpoint(Tp));
        Assert.Equal(3, ReadAll(log).Count);
    }

    [Fact]
    public async Task Background_tasks_without_a_cleaner_never_compact()
    {
        // log.cleaner.enable=false: the broker passes no backoff.
        using var dir = new TempDir();
        var config = new LogConfig { CleanupPolicy = "compact", SegmentBytes = 700, FileDeleteDelayMs = 0, RetentionMs = -1 };
        using var manager = new LogManager([dir.Path], config);
        PartitionLog log = manager.GetOrCreateLog(Tp);
        FillDirtyCompactedLog(log);
        using var tasks = manager.StartBackgroundTasks(Hour, Hour, Hour, cleanerBackoff: null);
        await Task.Delay(1500);
        Assert.Equal(0, manager.CleanerCheckpoint(Tp));
        Assert.Equal(30, ReadAll(log).Count);
    }

    [Fact]
    public void A_leased_range_keeps_its_bytes_while_compaction_replaces_and_deletes_the_segment()
    {
        // A Fetch read a range, then the cleaner swapped the segment out and deleted its file
        // before the response was sent (upstream keeps the FileRecords' channel open the same way).
        using var dir = new TempDir();
        var time = new ManualTime(1_000_000);
        using PartitionLog log = OpenCompacted(dir, time);
        for (int i = 0; i < 12; i++)
        {
            log.AppendAsLeader(Build([new Rec("k" + i % 2, "v" + i, 1_000_000 + i)]), 0);
        }
        log.Roll();
        log.UpdateHighWatermark(log.LogEndOffset);
        FileRange range = log.Read(0, 1 << 20, log.LogEndOffset).Records!.Value;
        byte[] before = ReadRange(range);
        using (IDisposable? lease = range.TryLease())
        {
            Assert.NotNull(lease);
            string oldPath = range.File.Name;
            Assert.NotNull(LogCleaner.Clean(log, 0));
            Assert.False(File.Exists(oldPath), "the cleaned-away segment file should be deleted");
            Assert.Equal(2, ReadAll(log).Count);
            // The leased handle still reads what was there when the Fetch read it.
            Assert.False(range.File.SafeFileHandle.IsClosed);
            Assert.Equal(before, ReadRange(range));
        }
        Assert.True(range.File.SafeFileHandle.IsClosed, "ending the last lease closes the replaced segment's file");
        Assert.Null(range.TryLease());
    }
}
