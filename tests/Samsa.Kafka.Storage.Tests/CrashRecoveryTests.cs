using System.Buffers.Binary;
using System.Collections.Concurrent;
using static Samsa.Kafka.Storage.Tests.Batches;

namespace Samsa.Kafka.Storage.Tests;

/// <summary>
/// Recovery after an unclean stop (issue 14), as upstream LogLoader: only the segments at or past
/// the recovery-point checkpoint are re-validated, indexes are sanity-checked rather than rebuilt,
/// and each truncation and rebuild is logged.
/// </summary>
public class CrashRecoveryTests
{
    private const long T0 = 1_700_000_000_000;
    // Small segments and a small index interval: several segments, each with index entries.
    private static readonly LogConfig Config = new() { SegmentBytes = 4096, IndexIntervalBytes = 256, RetentionMs = -1 };
    private static readonly TopicPartition Tp = new("orders", 0);

    private static void Fill(PartitionLog log, int from, int count)
    {
        for (int i = from; i < from + count; i++)
        {
            log.AppendAsLeader(Values(T0 + i, $"order-{i:D5}-" + new string('x', 40)), 1);
        }
    }

    private static List<string> Messages(ConcurrentQueue<string> lines) => lines.ToList();

    [Fact]
    public async Task Unclean_restart_does_not_rescan_segments_below_the_recovery_point()
    {
        using var dir = new TempDir();
        using (var manager = new LogManager([dir.Path], Config))
        {
            PartitionLog log = manager.GetOrCreateLog(Tp);
            Fill(log, 0, 300);
            log.Flush();
            await log.PendingRollFlush;
            manager.CheckpointAll();
            Assert.True(log.Segments.Count >= 4);
            // kill -9: no Shutdown, no clean-shutdown marker.
        }
        // Corrupt a record byte in the middle of the first segment: its CRC no longer matches, so a
        // full rescan would cut the log there and drop every later segment.
        string firstLog = Path.Combine(dir.Path, "orders-0", LogSegment.FileNamePrefix(0) + LogSegment.LogSuffix);
        long firstSize = new FileInfo(firstLog).Length;
        using (var f = new FileStream(firstLog, FileMode.Open, FileAccess.ReadWrite))
        {
            f.Position = firstSize / 2;
            int b = f.ReadByte();
            f.Position = firstSize / 2;
            f.WriteByte((byte)(b ^ 0xFF));
        }

        var lines = new ConcurrentQueue<string>();
        using (var manager = new LogManager([dir.Path], Config, log: lines.Enqueue))
        {
            Assert.False(manager.HadCleanShutdown);
            PartitionLog log = manager.GetLog(Tp)!;
            Assert.Equal(300, log.LogEndOffset);
            Assert.Equal(1, log.RecoveredSegments); // only the segment holding the recovery point
            Assert.Equal(0, log.RecoveredTruncatedBytes);
            Assert.Equal(firstSize, new FileInfo(firstLog).Length);
            Assert.Contains(Messages(lines), l => l.Contains("after an unclean shutdown (recovered 1 segments past their recovery point"));
        }

        // Control: without the recovery-point checkpoint the same files are recovered from offset 0,
        // and the corruption cuts the log (what upstream does for a log it has no recovery point for).
        File.Delete(Path.Combine(dir.Path, OffsetCheckpointFile.RecoveryPoint));
        lines.Clear();
        using (var manager = new LogManager([dir.Path], Config, log: lines.Enqueue))
        {
            PartitionLog log = manager.GetLog(Tp)!;
            Assert.True(log.LogEndOffset < 300);
            Assert.True(log.RecoveredTruncatedBytes > 0);
            Assert.True(new FileInfo(firstLog).Length < firstSize);
            Assert.Contains(Messages(lines), l => l.Contains($"orders-0: truncated ") && l.Contains($"at offset {log.LogEndOffset} ") && l.Contains("later segment(s) deleted"));
        }
    }

    [Fact]
    public void Torn_tail_past_the_recovery_point_is_truncated_and_logged_and_unflushed_acknowledged_data_survives()
    {
        using var dir = new TempDir();
        var big = Config with { SegmentBytes = 1 << 20 };
        string activeLog;
        using (var manager = new LogManager([dir.Path], big))
        {
            PartitionLog log = manager.GetOrCreateLog(Tp);
            Fill(log, 0, 50);
            log.Flush();
            manager.CheckpointAll(); // recovery point 50
            Fill(log, 50, 30);       // acknowledged, never flushed nor checkpointed
            activeLog = log.ActiveSegment.LogPath;
        }
        // A write torn by the crash: the first 40 bytes of a further batch.
        byte[] torn = Values(T0 + 99, "never-acknowledged")[..40];
        using (var f = new FileStream(activeLog, FileMode.Append, FileAccess.Write))
        {
            f.Write(torn);
        }

        var lines = new ConcurrentQueue<string>();
        using var reopened = new LogManager([dir.Path], big, log: lines.Enqueue);
        PartitionLog recovered = reopened.GetLog(Tp)!;
        Assert.Equal(80, recovered.LogEndOffset);
        Assert.Equal(40, recovered.RecoveredTruncatedBytes);
        Assert.Equal(Enumerable.Range(0, 80).Select(i => $"order-{i:D5}-" + new string('x', 40)), ReadAll(recovered).Select(r => r.Value));
        Assert.Contains(Messages(lines), l => l.Contains("orders-0: truncated 40 bytes of torn or corrupt data at offset 80 "));
        // As upstream, the recovery point stays at the checkpoint until the next flush.
        Assert.Equal(50, recovered.RecoveryPoint);
        recovered.AppendAsLeader(Values(T0, "after"), 2);
        Assert.Equal(81, recovered.LogEndOffset);
    }

    [Fact]
    public void Corrupt_index_below_the_recovery_point_is_rebuilt_and_logged()
    {
        using var dir = new TempDir();
        string index0 = Path.Combine(dir.Path, "orders-0", LogSegment.FileNamePrefix(0) + LogSegment.IndexSuffix);
        byte[] good;
        using (var manager = new LogManager([dir.Path], Config))
        {
            PartitionLog log = manager.GetOrCreateLog(Tp);
            Fill(log, 0, 300);
            manager.Shutdown();
        }
        good = File.ReadAllBytes(index0);
        Assert.True(good.Length >= 16);
        // The last entry overwritten with one below the first: upstream's sanity check fails it.
        byte[] bad = (byte[])good.Clone();
        BinaryPrimitives.WriteInt32BigEndian(bad.AsSpan(bad.Length - 8), 0);
        BinaryPrimitives.WriteInt32BigEndian(bad.AsSpan(bad.Length - 4), 0);
        File.WriteAllBytes(index0, bad);

        var lines = new ConcurrentQueue<string>();
        using (var manager = new LogManager([dir.Path], Config, log: lines.Enqueue))
        {
            Assert.True(manager.HadCleanShutdown);
            PartitionLog log = manager.GetLog(Tp)!;
            Assert.Equal(1, log.RebuiltIndexes);
            Assert.Contains(Messages(lines), l => l.Contains("orders-0: rebuilding the indexes of segment 0 (corrupt index file"));
            Assert.Equal(300, log.LogEndOffset);
            // Every offset is found again through the rebuilt index.
            for (int offset = 0; offset < 300; offset += 7)
            {
                Assert.Equal($"order-{offset:D5}-" + new string('x', 40), ReadAll(log, offset).First().Value);
            }
            manager.Shutdown();
        }
        Assert.Equal(good, File.ReadAllBytes(index0));

        // An index left at its preallocated size (zero-filled tail) below the recovery point is rebuilt too.
        using (var f = new FileStream(index0, FileMode.Open, FileAccess.Write))
        {
            f.SetLength(Config.SegmentIndexBytes);
        }
        lines.Clear();
        using (var manager = new LogManager([dir.Path], Config, log: lines.Enqueue))
        {
            Assert.Equal(1, manager.GetLog(Tp)!.RebuiltIndexes);
            Assert.Contains(Messages(lines), l => l.Contains("rebuilding the indexes of segment 0"));
        }
        Assert.Equal(good, File.ReadAllBytes(index0));
    }

    [Fact]
    public void Recovering_empty_partitions_after_a_crash_reads_no_preallocated_index()
    {
        // The measured fault: each empty partition's two 10 MiB preallocated index files were read
        // whole into buffers kept for the log's lifetime, and the time index's zero fill was
        // rewritten and fsynced (about 22 MB and 0.5 s per partition).
        using var dir = new TempDir();
        const int partitions = 30;
        using (var manager = new LogManager([dir.Path], new LogConfig()))
        {
            for (int p = 0; p < partitions; p++)
            {
                manager.GetOrCreateLog(new TopicPartition("empty", p));
            }
            manager.CheckpointAll();
        }
        string timeIndex = Path.Combine(dir.Path, "empty-0", LogSegment.FileNamePrefix(0) + LogSegment.TimeIndexSuffix);
        Assert.True(new FileInfo(timeIndex).Length >= 10_000_000); // left untrimmed by the crash

        long before = GC.GetAllocatedBytesForCurrentThread();
        using var reopened = new LogManager([dir.Path], new LogConfig());
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(partitions, reopened.Logs.Count);
        Assert.All(reopened.Logs, l => Assert.Equal(0, l.LogEndOffset));
        Assert.True(allocated < 64 * 1024 * partitions, $"opening {partitions} empty logs allocated {allocated} bytes");
        // The reset did not write 10 MiB of zeros: the file stays sparse.
        var st = new FileInfo(timeIndex);
        Assert.True(DiskBlocks(timeIndex) < 1024 * 1024, $"time index occupies {DiskBlocks(timeIndex)} bytes on disk");
        Assert.True(st.Length >= 10_000_000);
    }

    private static long DiskBlocks(string path)
    {
        // st_blocks (512-byte units) through stat(1): the space a sparse file really occupies.
        var psi = new System.Diagnostics.ProcessStartInfo("stat", ["-c", "%b", path]) { RedirectStandardOutput = true };
        using var p = System.Diagnostics.Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return long.Parse(output.Trim(), System.Globalization.CultureInfo.InvariantCulture) * 512;
    }

    [Fact]
    public void Parallel_recovery_opens_every_log_with_its_data()
    {
        using var dir = new TempDir();
        var big = Config with { SegmentBytes = 1 << 20 };
        using (var manager = new LogManager([dir.Path], big))
        {
            for (int p = 0; p < 24; p++)
            {
                PartitionLog log = manager.GetOrCreateLog(new TopicPartition("par", p));
                Fill(log, 0, p);
            }
            manager.CheckpointAll();
        }
        var lines = new ConcurrentQueue<string>();
        using var reopened = new LogManager([dir.Path], big, recoveryThreadsPerDataDir: 4, log: lines.Enqueue);
        for (int p = 0; p < 24; p++)
        {
            PartitionLog log = reopened.GetLog(new TopicPartition("par", p))!;
            Assert.Equal(p, log.LogEndOffset);
            Assert.Equal(Enumerable.Range(0, p).Select(i => $"order-{i:D5}-" + new string('x', 40)), ReadAll(log).Select(r => r.Value));
        }
        Assert.Contains(Messages(lines), l => l.Contains("loaded 24 logs") && l.Contains("on 4 thread(s)"));
    }
}
