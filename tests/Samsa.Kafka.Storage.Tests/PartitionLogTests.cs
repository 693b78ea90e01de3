using Samsa.Kafka.Protocol.Records;
using System.Buffers.Binary;
using System.Text;
using static Samsa.Kafka.Storage.Tests.Batches;

namespace Samsa.Kafka.Storage.Tests;

public class PartitionLogTests
{
    private static readonly TopicPartition Tp = new("orders", 3);
    private const long T0 = 1_700_000_000_000;

    private static PartitionLog Open(TempDir dir, LogConfig? config = null, TimeProvider? time = null, long recoveryPoint = 0, long hw = 0, bool clean = false)
        => PartitionLog.Open(dir.Sub("orders-3"), Tp, config ?? new LogConfig(), recoveryPoint, 0, hw, clean, time);

    [Fact]
    public void Timestamp_lookup_finds_records_inside_compressed_batches()
    {
        using var dir = new TempDir();
        using PartitionLog log = Open(dir);
        var records = Enumerable.Range(0, 10).Select(i => new Rec(null, "r" + i, T0 + i * 100)).ToList();
        log.AppendAsLeader(Compressed(Build(records), Samsa.Kafka.Protocol.Compression.CompressionType.Gzip), 0);
        log.AppendAsLeader(Compressed(Build(records.Select(r => r with { Timestamp = r.Timestamp + 10_000 }).ToList()), Samsa.Kafka.Protocol.Compression.CompressionType.Lz4), 0);
        TimestampAndOffset found = log.FetchOffsetByTimestamp(T0 + 450)!.Value;
        Assert.Equal(5, found.Offset);
        Assert.Equal(T0 + 500, found.Timestamp);
        Assert.Equal(13, log.FetchOffsetByTimestamp(T0 + 10_201)!.Value.Offset);
        Assert.Equal(19, log.FetchOffsetByTimestamp(PartitionLog.MaxTimestamp)!.Value.Offset);
    }

    [Fact]
    public void Appended_batches_get_consecutive_offsets_and_read_back_intact()
    {
        using var dir = new TempDir();
        using PartitionLog log = Open(dir);
        for (int i = 0; i < 10; i++)
        {
            LogAppendInfo info = log.AppendAsLeader(Values(T0 + i, $"a{i}", $"b{i}", $"c{i}"), leaderEpoch: 0);
            Assert.Equal(i * 3, info.FirstOffset);
            Assert.Equal(i * 3 + 2, info.LastOffset);
        }
        Assert.Equal(30, log.LogEndOffset);
        var all = ReadAll(log);
        Assert.Equal(Enumerable.Range(0, 30).Select(i => (long)i), all.Select(r => r.Offset));
        Assert.Equal("b4", all[13].Value);

        // A fetch offset inside a batch starts with the batch holding it.
        FetchDataInfo mid = log.Read(13, 1 << 20, log.LogEndOffset);
        var records = Decode(ReadRange(mid.Records!.Value));
        Assert.Equal(12, records[0].Offset);
        Assert.True(File.Exists(Path.Combine(dir.Sub("orders-3"), "00000000000000000000.log")));
    }

    [Fact]
    public void Read_respects_max_bytes_the_first_batch_rule_and_the_upper_offset()
    {
        using var dir = new TempDir();
        using PartitionLog log = Open(dir);
        string big = new('x', 5000);
        log.AppendAsLeader(Values(T0, big), 0);
        log.AppendAsLeader(Values(T0, "small"), 0);
        log.AppendAsLeader(Values(T0, "small2"), 0);

        FetchDataInfo first = log.Read(0, maxBytes: 100, maxOffset: 3, minOneBatch: true);
        Assert.Single(Decode(ReadRange(first.Records!.Value), allowPartialTail: false));
        Assert.True(first.Records!.Value.Length > 5000);

        FetchDataInfo none = log.Read(0, maxBytes: 100, maxOffset: 3, minOneBatch: false);
        Assert.Null(none.Records);
        Assert.True(none.FirstBatchTooLarge);

        // Consumers read up to the high watermark only.
        FetchDataInfo upToTwo = log.Read(0, 1 << 20, maxOffset: 2);
        Assert.Equal([0L, 1L], Decode(ReadRange(upToTwo.Records!.Value)).Select(r => r.Offset));
        Assert.Null(log.Read(2, 1 << 20, maxOffset: 2).Records);
        Assert.Null(log.Read(3, 1 << 20, maxOffset: 3).Records);
        Assert.Throws<OffsetOutOfRangeException>(() => log.Read(4, 100, 4));
        Assert.Throws<OffsetOutOfRangeException>(() => log.Read(-1, 100, 4));
    }

    [Fact]
    public void Segments_roll_by_size_with_twenty_digit_names_and_trimmed_indexes()
    {
        using var dir = new TempDir();
        var config = new LogConfig { SegmentBytes = 2000, IndexIntervalBytes = 200 };
        using (PartitionLog log = Open(dir, config))
        {
            for (int i = 0; i < 60; i++)
            {
                log.AppendAsLeader(Values(T0 + i, $"value-{i}-" + new string('v', 80)), 0);
            }
            Assert.True(log.Segments.Count > 3);
            for (int i = 1; i < log.Segments.Count; i++)
            {
                LogSegment s = log.Segments[i - 1];
                Assert.True(s.Size <= 2000);
                // Rolled segments' indexes are trimmed to their entries (upstream trimToValidSize).
                Assert.Equal(s.OffsetIndex.Count * 8, new FileInfo(s.OffsetIndex.Path).Length);
                Assert.Equal(s.TimeIndex.Count * 12, new FileInfo(s.TimeIndex.Path).Length);
                Assert.True(s.OffsetIndex.Count > 0);
            }
            string second = LogSegment.FileNamePrefix(log.Segments[1].BaseOffset);
            Assert.Equal(20, second.Length);
            Assert.True(File.Exists(Path.Combine(log.Directory, second + ".log")));
            Assert.Equal(Enumerable.Range(0, 60).Select(i => $"value-{i}-" + new string('v', 80)), ReadAll(log).Select(r => r.Value));
            log.Close();
        }
        using PartitionLog reopened = Open(dir, config, clean: true);
        Assert.Equal(60, reopened.LogEndOffset);
        Assert.Equal(60, ReadAll(reopened).Count);
    }

    [Fact]
    public void Segments_roll_when_batch_timestamps_pass_segment_ms()
    {
        using var dir = new TempDir();
        using PartitionLog log = Open(dir, new LogConfig { SegmentMs = 60_000 });
        log.AppendAsLeader(Values(T0, "a"), 0);
        log.AppendAsLeader(Values(T0 + 30_000, "b"), 0);
        Assert.Single(log.Segments);
        log.AppendAsLeader(Values(T0 + 61_000, "c"), 0);
        Assert.Equal(2, log.Segments.Count);
        Assert.Equal(2, log.ActiveSegment.BaseOffset);
    }

    [Fact]
    public void Offset_index_entries_point_at_the_batches_they_name()
    {
        using var dir = new TempDir();
        using PartitionLog log = Open(dir, new LogConfig { IndexIntervalBytes = 300 });
        for (int i = 0; i < 100; i++)
        {
            log.AppendAsLeader(Values(T0 + i, "r1-" + i, "r2-" + i), 0);
        }
        LogSegment segment = log.ActiveSegment;
        Assert.True(segment.OffsetIndex.Count > 10);
        for (int n = 0; n < segment.OffsetIndex.Count; n++)
        {
            long offset = segment.OffsetIndex.OffsetAt(n);
            int position = segment.OffsetIndex.PositionAt(n);
            var header = new RecordBatch(segment.ReadBatch(position, 61));
            Assert.Equal(offset, header.LastOffset);
        }
        // Lookup gives the last entry at or below the target.
        (long found, int pos) = segment.OffsetIndex.Lookup(101);
        Assert.True(found <= 101);
        Assert.Equal(found, new RecordBatch(segment.ReadBatch(pos, 61)).LastOffset);
        Assert.Equal((0L, 0), segment.OffsetIndex.Lookup(0));
    }

    [Fact]
    public void Offset_lookup_by_timestamp_finds_the_first_record_at_or_after_it()
    {
        using var dir = new TempDir();
        using PartitionLog log = Open(dir, new LogConfig { IndexIntervalBytes = 100, SegmentBytes = 1500 });
        for (int i = 0; i < 40; i++)
        {
            // Records 1 s apart, 2 per batch.
            log.AppendAsLeader(Build([new Rec(null, "x" + i, T0 + i * 2000), new Rec(null, "y" + i, T0 + i * 2000 + 1000)]), i % 3 == 0 ? i : i - i % 3);
        }
        Assert.True(log.Segments.Count > 1);
        Assert.Equal(0, log.FetchOffsetByTimestamp(T0 - 5)!.Value.Offset);
        Assert.Equal(0, log.FetchOffsetByTimestamp(T0)!.Value.Offset);
        Assert.Equal(1, log.FetchOffsetByTimestamp(T0 + 1)!.Value.Offset);
        TimestampAndOffset mid = log.FetchOffsetByTimestamp(T0 + 41_500)!.Value;
        Assert.Equal(42, mid.Offset);
        Assert.Equal(T0 + 42_000, mid.Timestamp);
        Assert.Equal(21, mid.LeaderEpoch);
        Assert.Null(log.FetchOffsetByTimestamp(T0 + 80_000));
        Assert.Equal(0, log.FetchOffsetByTimestamp(PartitionLog.EarliestTimestamp)!.Value.Offset);
        Assert.Equal(80, log.FetchOffsetByTimestamp(PartitionLog.LatestTimestamp)!.Value.Offset);
        TimestampAndOffset max = log.FetchOffsetByTimestamp(PartitionLog.MaxTimestamp)!.Value;
        Assert.Equal(79, max.Offset);
        Assert.Equal(T0 + 79_000, max.Timestamp);
    }

    [Fact]
    public void Recovery_truncates_a_torn_tail_and_keeps_everything_before_it()
    {
        using var dir = new TempDir();
        string logFile;
        long sizeBefore;
        using (PartitionLog log = Open(dir, new LogConfig { IndexIntervalBytes = 100 }))
        {
            for (int i = 0; i < 20; i++)
            {
                log.AppendAsLeader(Values(T0 + i, "v" + i), 0);
            }
            log.Flush();
            logFile = log.ActiveSegment.LogPath;
            sizeBefore = log.ActiveSegment.Size;
            // Unclean stop: no Close, indexes left at their preallocated size.
        }
        // A batch whose write was cut short by the crash.
        byte[] partial = Values(T0, "torn-write-" + new string('z', 100));
        BinaryPrimitives.WriteInt64BigEndian(partial, 20);
        using (var f = new FileStream(logFile, FileMode.Append))
        {
            f.Write(partial.AsSpan(0, partial.Length / 2));
        }
        Assert.Equal(sizeBefore + partial.Length / 2, new FileInfo(logFile).Length);

        using (PartitionLog reopened = Open(dir, recoveryPoint: 0))
        {
            Assert.Equal(20, reopened.LogEndOffset);
            Assert.Equal(partial.Length / 2, reopened.RecoveredTruncatedBytes);
            Assert.Equal(sizeBefore, new FileInfo(logFile).Length);
            Assert.Equal(Enumerable.Range(0, 20).Select(i => "v" + i), ReadAll(reopened).Select(r => r.Value));
            Assert.Equal(20, reopened.AppendAsLeader(Values(T0, "after"), 0).FirstOffset);
            Assert.Equal("after", ReadAll(reopened, 20).Single().Value);
        }
    }

    [Fact]
    public void Recovery_stops_at_a_batch_with_a_bad_crc()
    {
        using var dir = new TempDir();
        string logFile;
        long badPosition;
        using (PartitionLog log = Open(dir))
        {
            for (int i = 0; i < 10; i++)
            {
                log.AppendAsLeader(Values(T0 + i, "v" + i), 0);
            }
            logFile = log.ActiveSegment.LogPath;
            badPosition = log.ActiveSegment.FindBatchContaining(6)!.Value.Position;
        }
        using (var f = new FileStream(logFile, FileMode.Open))
        {
            f.Position = badPosition + 64; // inside the record bytes covered by the CRC
            int b = f.ReadByte();
            f.Position = badPosition + 64;
            f.WriteByte((byte)(b ^ 0xFF));
        }
        using PartitionLog reopened = Open(dir);
        Assert.Equal(badPosition, new FileInfo(logFile).Length);
        Assert.Equal(6, reopened.LogEndOffset);
        Assert.Equal(badPosition, new FileInfo(logFile).Length);
        Assert.Equal(6, ReadAll(reopened).Count);
    }

    [Fact]
    public void Retention_by_size_deletes_oldest_whole_segments_and_moves_log_start()
    {
        using var dir = new TempDir();
        var config = new LogConfig { SegmentBytes = 1000, RetentionBytes = 2500, RetentionMs = -1, FileDeleteDelayMs = 0 };
        using PartitionLog log = Open(dir, config);
        for (int i = 0; i < 50; i++)
        {
            log.AppendAsLeader(Values(T0 + i, "value-" + i + new string('p', 100)), 0);
        }
        log.UpdateHighWatermark(log.LogEndOffset);
        long sizeBefore = log.Size;
        int segmentsBefore = log.Segments.Count;
        int deleted = log.DeleteOldSegments();
        Assert.True(deleted > 0);
        Assert.Equal(segmentsBefore - deleted, log.Segments.Count);
        Assert.True(log.Size <= 2500 + 1000);
        Assert.True(log.Size < sizeBefore);
        Assert.Equal(log.Segments[0].BaseOffset, log.LogStartOffset);
        Assert.Throws<OffsetOutOfRangeException>(() => log.Read(0, 100, log.LogEndOffset));
        Assert.Equal(log.LogStartOffset, ReadAll(log)[0].Offset);
        Assert.Empty(Directory.GetFiles(log.Directory, "00000000000000000000.*").Select(Path.GetFileName));
    }

    [Fact]
    public void Retention_by_time_deletes_segments_whose_newest_record_is_too_old_but_not_past_the_high_watermark()
    {
        using var dir = new TempDir();
        var time = new ManualTime(T0 + 10_000);
        var config = new LogConfig { SegmentBytes = 600, RetentionMs = 5_000, FileDeleteDelayMs = 0 };
        using PartitionLog log = Open(dir, config, time);
        for (int i = 0; i < 20; i++)
        {
            log.AppendAsLeader(Values(T0 + i * 500, "value-" + i + new string('p', 100)), 0);
        }
        // Nothing is below the high watermark yet: nothing may go.
        Assert.Equal(0, log.DeleteOldSegments());
        log.UpdateHighWatermark(log.LogEndOffset);
        int deleted = log.DeleteOldSegments();
        Assert.True(deleted > 0);
        // Every remaining record is younger than retention, except possibly in a segment with a newer one.
        foreach (LogSegment s in log.Segments)
        {
            Assert.True(time.GetUtcNow().ToUnixTimeMilliseconds() - s.MaxTimestampSoFar <= 5_000 || s.Size == 0);
        }
        // All data old: the active segment goes too, after a roll.
        time.Advance(1_000_000);
        log.DeleteOldSegments();
        Assert.Equal(20, log.LogStartOffset);
        Assert.Equal(20, log.LogEndOffset);
        Assert.Equal(0, log.Size);
        Assert.Equal(20, log.AppendAsLeader(Values(T0 + 2_000_000, "new"), 0).FirstOffset);
    }

    [Fact]
    public void DeleteRecords_moves_log_start_up_to_the_high_watermark()
    {
        using var dir = new TempDir();
        using PartitionLog log = Open(dir, new LogConfig { SegmentBytes = 500, FileDeleteDelayMs = 0 });
        for (int i = 0; i < 30; i++)
        {
            log.AppendAsLeader(Values(T0, "v" + i + new string('q', 50)), 0);
        }
        log.UpdateHighWatermark(20);
        Assert.Throws<LogStartOffsetOutOfRangeException>(() => log.MaybeIncrementLogStartOffset(21));
        Assert.True(log.MaybeIncrementLogStartOffset(15));
        Assert.Equal(15, log.LogStartOffset);
        Assert.True(log.Segments[0].BaseOffset <= 15);
        Assert.True(log.Segments.Count < 30);
        Assert.Throws<OffsetOutOfRangeException>(() => log.Read(14, 100, 30));
        Assert.Equal(15, ReadAll(log)[0].Offset);
        Assert.Equal(15, log.FetchOffsetByTimestamp(PartitionLog.EarliestTimestamp)!.Value.Offset);
    }

    [Fact]
    public void Truncation_removes_the_tail_and_appends_continue_from_there()
    {
        using var dir = new TempDir();
        using PartitionLog log = Open(dir, new LogConfig { SegmentBytes = 800, FileDeleteDelayMs = 0 });
        for (int i = 0; i < 30; i++)
        {
            log.AppendAsLeader(Values(T0, "v" + i + new string('q', 50)), i < 10 ? 1 : i < 20 ? 2 : 5);
        }
        log.UpdateHighWatermark(30);
        Assert.Equal([(1, 0L), (2, 10L), (5, 20L)], log.EpochCache.Entries);
        Assert.True(log.TruncateTo(15));
        Assert.Equal(15, log.LogEndOffset);
        Assert.Equal(15, log.HighWatermark);
        Assert.Equal([(1, 0L), (2, 10L)], log.EpochCache.Entries);
        Assert.Equal(Enumerable.Range(0, 15).Select(i => (long)i), ReadAll(log).Select(r => r.Offset));
        Assert.Equal(15, log.AppendAsLeader(Values(T0, "new"), 6).FirstOffset);
        Assert.Equal("new", ReadAll(log, 15).Single().Value);
        Assert.Equal((2, 15L), log.EpochCache.EndOffsetFor(2, log.LogEndOffset));
        Assert.Equal((6, 16L), log.EpochCache.EndOffsetFor(6, log.LogEndOffset));
        Assert.Equal((2, 15L), log.EpochCache.EndOffsetFor(4, log.LogEndOffset));

        log.TruncateFullyAndStartAt(100);
        Assert.Equal(100, log.LogStartOffset);
        Assert.Equal(100, log.LogEndOffset);
        Assert.Single(log.Segments);
        Assert.Equal(100, log.AppendAsLeader(Values(T0, "x"), 7).FirstOffset);
    }

    [Fact]
    public void Leader_epoch_checkpoint_uses_upstream_text_format_and_survives_reopen()
    {
        using var dir = new TempDir();
        using (PartitionLog log = Open(dir))
        {
            log.AppendAsLeader(Values(T0, "a", "b"), 0);
            log.AppendAsLeader(Values(T0, "c"), 0);
            log.AppendAsLeader(Values(T0, "d"), 3);
            log.Close();
        }
        Assert.Equal("0\n2\n0 0\n3 3\n", File.ReadAllText(Path.Combine(dir.Sub("orders-3"), "leader-epoch-checkpoint")));
        using PartitionLog reopened = Open(dir, clean: true);
        Assert.Equal(3, reopened.EpochCache.LatestEpoch);
        Assert.Equal((0, 3L), reopened.EpochCache.EndOffsetFor(0, reopened.LogEndOffset));
    }

    [Fact]
    public void Leader_append_stamps_epoch_and_log_append_time_with_a_valid_crc()
    {
        using var dir = new TempDir();
        var time = new ManualTime(T0 + 777);
        using PartitionLog log = Open(dir, new LogConfig { MessageTimestampType = "LogAppendTime" }, time);
        byte[] batch = Values(T0, "a", "b");
        LogAppendInfo info = log.AppendAsLeader(batch, 9);
        Assert.Equal(T0 + 777, info.LogAppendTimeMs);
        byte[] stored = ReadRange(log.Read(0, 1000, 2).Records!.Value);
        var header = new RecordBatch(stored);
        Assert.Equal(9, header.PartitionLeaderEpoch);
        Assert.True(header.TimestampType == TimestampType.LogAppendTime);
        Assert.Equal(T0 + 777, header.MaxTimestamp);
        Assert.True(new RecordBatch(stored).Validate() == RecordBatchError.None);
    }

    [Fact]
    public void Malformed_appends_are_refused_without_touching_the_log()
    {
        using var dir = new TempDir();
        using PartitionLog log = Open(dir, new LogConfig { SegmentBytes = 4096 });
        byte[] good = Values(T0, "a");
        Assert.Throws<InvalidBatchException>(() => log.AppendAsLeader(good.AsSpan(0, 40).ToArray(), 0));
        byte[] lying = good.ToArray();
        BinaryPrimitives.WriteInt32BigEndian(lying.AsSpan(8), 1_000_000);
        Assert.Throws<InvalidBatchException>(() => log.AppendAsLeader(lying, 0));
        byte[] oldMagic = good.ToArray();
        oldMagic[16] = 1;
        Assert.Throws<InvalidBatchException>(() => log.AppendAsLeader(oldMagic, 0));
        Assert.Throws<RecordBatchTooLargeException>(() => log.AppendAsLeader(Values(T0, new string('x', 5000)), 0));
        Assert.Equal(0, log.LogEndOffset);
        Assert.Equal(0, log.ActiveSegment.Size);
    }

    [Fact]
    public void Follower_append_keeps_leader_offsets_and_refuses_going_backwards()
    {
        using var dir = new TempDir();
        using PartitionLog log = Open(dir);
        byte[] batch = Values(T0, "a", "b");
        PartitionLog.AssignOffsets(batch, 40, 4);
        Assert.Equal(40, log.AppendAsFollower(batch).FirstOffset);
        Assert.Equal(42, log.LogEndOffset);
        byte[] old = Values(T0, "c");
        PartitionLog.AssignOffsets(old, 41, 4);
        Assert.Throws<InvalidBatchException>(() => log.AppendAsFollower(old));
    }

    [Fact]
    public void Follower_append_refuses_a_batch_whose_crc_does_not_match_and_writes_nothing()
    {
        using var dir = new TempDir();
        using PartitionLog log = Open(dir);
        byte[] good = Values(T0, "a", "b");
        PartitionLog.AssignOffsets(good, 0, 3);
        byte[] bad = Values(T0, "c", "d");
        PartitionLog.AssignOffsets(bad, 2, 3);
        bad[^1] ^= 1;   // one bit of the last record
        // Fetched together: the good batch must not be written ahead of the corrupt one either.
        byte[] both = [.. good, .. bad];
        var e = Assert.Throws<CorruptRecordException>(() => log.AppendAsFollower(both));
        Assert.Contains("offset 2", e.Message);
        Assert.Equal(0, log.LogEndOffset);
        Assert.Equal(0, log.ActiveSegment.Size);
        // Base offset and leader epoch lie outside the CRC (the leader stamps them): changing them is not corruption.
        Assert.Equal(0, log.AppendAsFollower(good).FirstOffset);
        Assert.Equal(2, log.LogEndOffset);
    }

    [Fact]
    public void Follower_append_refuses_offsets_that_do_not_rise_from_batch_to_batch()
    {
        using var dir = new TempDir();
        using PartitionLog log = Open(dir);
        byte[] first = Values(T0, "a", "b");
        PartitionLog.AssignOffsets(first, 10, 1);
        byte[] overlapping = Values(T0, "c");
        PartitionLog.AssignOffsets(overlapping, 11, 1);
        Assert.Throws<InvalidBatchException>(() => log.AppendAsFollower([.. first, .. overlapping]));
        Assert.Equal(0, log.ActiveSegment.Size);
    }

    [Fact]
    public void Flush_messages_policy_moves_the_recovery_point()
    {
        using var dir = new TempDir();
        using PartitionLog log = Open(dir, new LogConfig { FlushMessages = 5 });
        for (int i = 0; i < 4; i++)
        {
            log.AppendAsLeader(Values(T0, "v"), 0);
        }
        Assert.Equal(0, log.RecoveryPoint);
        Assert.Equal(4, log.UnflushedMessages);
        log.AppendAsLeader(Values(T0, "v"), 0);
        Assert.Equal(5, log.RecoveryPoint);
        Assert.Equal(0, log.UnflushedMessages);
    }

    [Fact]
    public void Offset_index_entries_reach_the_file_by_the_flush_and_a_reopened_log_reads_them()
    {
        using var dir = new TempDir();
        var config = new LogConfig { IndexIntervalBytes = 1 };
        int count;
        using (PartitionLog log = Open(dir, config))
        {
            for (int i = 0; i < 100; i++)
            {
                log.AppendAsLeader(Values(T0, "v" + i), 0);
            }
            log.Flush();
            OffsetIndex index = log.ActiveSegment.OffsetIndex;
            count = index.Count;
            Assert.True(count >= 99, $"{count} entries");
            // The file holds every entry, in upstream's layout: relative offset, then position.
            using var file = new FileStream(index.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            var bytes = new byte[count * 8];
            file.ReadExactly(bytes);
            for (int n = 0; n < count; n++)
            {
                Assert.Equal(index.OffsetAt(n) - index.BaseOffset, BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(n * 8)));
                Assert.Equal(index.PositionAt(n), BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(n * 8 + 4)));
            }
            log.Close();
        }
        using PartitionLog reopened = Open(dir, config, recoveryPoint: 100, clean: true);
        Assert.Equal(count, reopened.ActiveSegment.OffsetIndex.Count);
    }

    [Fact]
    public async Task Roll_flushes_the_rolled_segment_in_the_background_then_moves_the_recovery_point()
    {
        using var dir = new TempDir();
        using PartitionLog log = Open(dir);
        log.AppendAsLeader(Values(T0, "a", "b"), 0);
        log.AppendAsLeader(Values(T0, "c"), 0);
        log.Roll();
        // The append path does not wait for the fsync; once it is done the rolled data is recovered no more.
        await log.PendingRollFlush.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(3, log.RecoveryPoint);
        log.AppendAsLeader(Values(T0, "d"), 0);
        Assert.Equal(3, log.RecoveryPoint);
    }

    [Fact]
    public async Task A_roll_flush_does_not_move_the_recovery_point_past_a_later_truncation()
    {
        using var dir = new TempDir();
        using PartitionLog log = Open(dir);
        for (int i = 0; i < 5; i++)
        {
            log.AppendAsLeader(Values(T0, "v"), 0);
        }
        log.Roll();
        log.TruncateTo(2);
        log.AppendAsLeader(Values(T0, "w", "x", "y"), 0);
        await log.PendingRollFlush.WaitAsync(TimeSpan.FromSeconds(30));
        // Offsets 2-4 were written after the truncation and never flushed.
        Assert.True(log.RecoveryPoint <= 2, $"recovery point {log.RecoveryPoint}");
    }

    [Fact]
    public void Flush_ms_policy_flushes_when_due()
    {
        using var dir = new TempDir();
        var time = new ManualTime(T0);
        using PartitionLog log = Open(dir, new LogConfig { FlushMs = 1000 }, time);
        log.AppendAsLeader(Values(T0, "v"), 0);
        Assert.False(log.FlushIfDue());
        time.Advance(1500);
        Assert.True(log.FlushIfDue());
        Assert.Equal(1, log.RecoveryPoint);
    }

    [Fact]
    public void Partition_metadata_holds_the_topic_id_in_kafka_uuid_form()
    {
        using var dir = new TempDir();
        Guid id = Guid.NewGuid();
        using (PartitionLog log = Open(dir))
        {
            log.SetTopicId(id);
            Assert.Throws<InvalidOperationException>(() => log.SetTopicId(Guid.NewGuid()));
        }
        string text = File.ReadAllText(Path.Combine(dir.Sub("orders-3"), "partition.metadata"));
        Assert.StartsWith("version: 0\ntopic_id: ", text);
        Assert.Equal(22, text.Split("topic_id: ")[1].Trim().Length);
        using PartitionLog reopened = Open(dir);
        Assert.Equal(id, reopened.TopicId);
    }

    [Fact]
    public async Task Reads_racing_appends_never_return_offsets_at_or_beyond_their_bound()
    {
        using var dir = new TempDir();
        using PartitionLog log = Open(dir, new LogConfig { SegmentBytes = 64 * 1024, RetentionMs = -1 });
        Task writer = Task.Run(() =>
        {
            for (int i = 0; i < 3000; i++)
            {
                log.AppendAsLeader(Values(T0 + i, "a" + i, "b" + i), 0);
            }
        });
        int checkedReads = 0;
        while (!writer.IsCompleted || checkedReads == 0)
        {
            long bound = log.LogEndOffset;
            if (bound == 0)
            {
                continue;
            }
            FetchDataInfo info = log.Read(Math.Max(0, bound - 7), 1 << 20, bound);
            if (info.Records is FileRange range)
            {
                var records = Decode(ReadRange(range));
                Assert.All(records, r => Assert.True(r.Offset < bound, $"offset {r.Offset} served with bound {bound}"));
                checkedReads++;
            }
        }
        await writer;
        Assert.True(checkedReads > 0);
        Assert.Equal(6000, ReadAll(log).Count);
    }
}
