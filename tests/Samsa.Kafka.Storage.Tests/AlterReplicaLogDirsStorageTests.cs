using static Samsa.Kafka.Storage.Tests.Batches;

namespace Samsa.Kafka.Storage.Tests;

/// <summary>Moving a log between log directories (AlterReplicaLogDirs): appends during the copy
/// land in the moved log, and a stop at any point of the move leaves one consistent log.</summary>
public class AlterReplicaLogDirsStorageTests
{
    private const long T0 = 1_700_000_000_000;
    private static readonly LogConfig Config = new() { SegmentBytes = 4096, RetentionMs = -1 };

    private static void WaitMoved(LogManager manager, TopicPartition tp, string dest)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (manager.IsMoving(tp) || Path.GetDirectoryName(manager.GetLog(tp)!.Directory) != Path.GetFullPath(dest))
        {
            Assert.True(DateTime.UtcNow < deadline, $"{tp} not moved to {dest}");
            Thread.Sleep(20);
        }
    }

    [Fact]
    public async Task Appends_during_a_throttled_move_are_all_in_the_moved_log()
    {
        using var dir = new TempDir();
        string[] dirs = [dir.Sub("d1"), dir.Sub("d2")];
        var tp = new TopicPartition("moving", 0);
        using var manager = new LogManager(dirs, Config);
        string from = Path.GetDirectoryName(manager.GetOrCreateLog(tp).Directory)!;
        string to = dirs.Select(Path.GetFullPath).Single(d => d != from);
        int n = 0;
        for (; n < 300; n++) manager.GetLog(tp)!.AppendAsLeader(Values(T0 + n, "r-" + n), 1);
        Assert.True(manager.GetLog(tp)!.Segments.Count > 5);
        // ~4 segments per second: the copy takes long enough for appends to interleave.
        manager.MoveBytesPerSecond = () => 16 * 1024;
        manager.StartMove(tp, to);
        Assert.True(manager.IsMoving(tp));
        Assert.Contains(manager.Moves, m => m.Partition == tp && m.DestinationDir == to && m.Directory.EndsWith(LogManager.FutureDirSuffix));
        var appender = Task.Run(() =>
        {
            while (manager.IsMoving(tp) && n < 3000)
            {
                // The same call a broker makes: the current log, again when it was swapped meanwhile.
                for (int attempt = 0; ; attempt++)
                {
                    var log = manager.GetLog(tp)!;
                    try { log.AppendAsLeader(Values(T0 + n, "r-" + n), 1); break; }
                    catch (ObjectDisposedException) when (attempt < 3 && !ReferenceEquals(log, manager.GetLog(tp))) { }
                }
                n++;
                Thread.Sleep(1);
            }
        });
        WaitMoved(manager, tp, to);
        await appender;
        for (int i = 0; i < 10; i++, n++) manager.GetLog(tp)!.AppendAsLeader(Values(T0 + n, "r-" + n), 1);
        var moved = manager.GetLog(tp)!;
        Assert.Equal(to, Path.GetDirectoryName(moved.Directory));
        Assert.Equal(Enumerable.Range(0, n).Select(i => "r-" + i), ReadAll(moved).Select(r => r.Value));
        Assert.Empty(Directory.GetDirectories(from));   // the old copy is gone
        Assert.Single(Directory.GetDirectories(to));    // no future directory left
    }

    [Fact]
    public void A_partial_future_log_is_discarded_at_start_and_the_move_runs_again()
    {
        using var dir = new TempDir();
        string[] dirs = [dir.Sub("d1"), dir.Sub("d2")];
        var tp = new TopicPartition("crash", 0);
        string from, to;
        using (var manager = new LogManager(dirs, Config))
        {
            var log = manager.GetOrCreateLog(tp);
            from = Path.GetDirectoryName(log.Directory)!;
            to = dirs.Select(Path.GetFullPath).Single(d => d != from);
            for (int i = 0; i < 200; i++) log.AppendAsLeader(Values(T0 + i, "c-" + i), 1);
            log.Flush();
            manager.CheckpointAll();
            // As a kill -9 in the middle of the copy leaves it: a future directory with some files.
            string future = Path.Combine(to, $"crash-0.{Guid.NewGuid():N}{LogManager.FutureDirSuffix}");
            Directory.CreateDirectory(future);
            File.Copy(log.Segments[0].LogPath, Path.Combine(future, Path.GetFileName(log.Segments[0].LogPath)));
            File.WriteAllBytes(Path.Combine(future, "00000000000000000099.log"), new byte[100]);   // torn
        }
        using (var manager = new LogManager(dirs, Config))
        {
            // The move starts again at once and completes.
            WaitMoved(manager, tp, to);
            Assert.Equal(Enumerable.Range(0, 200).Select(i => "c-" + i), ReadAll(manager.GetLog(tp)!).Select(r => r.Value));
            Assert.Empty(Directory.GetDirectories(from));
        }
    }

    [Fact]
    public void A_complete_copy_found_at_start_finishes_the_swap()
    {
        using var dir = new TempDir();
        string[] dirs = [dir.Sub("d1"), dir.Sub("d2")];
        var tp = new TopicPartition("swap", 3);
        string from, to;
        using (var manager = new LogManager(dirs, Config))
        {
            var log = manager.GetOrCreateLog(tp);
            from = Path.GetDirectoryName(log.Directory)!;
            to = dirs.Select(Path.GetFullPath).Single(d => d != from);
            for (int i = 0; i < 100; i++) log.AppendAsLeader(Values(T0 + i, "s-" + i), 1);
            log.Flush();
            manager.CheckpointAll();
        }
        // Crash after the marker, before the renames: a complete, marked future copy.
        string future = Path.Combine(to, $"swap-3.{Guid.NewGuid():N}{LogManager.FutureDirSuffix}");
        Directory.CreateDirectory(future);
        foreach (var f in Directory.GetFiles(Path.Combine(from, "swap-3"))) File.Copy(f, Path.Combine(future, Path.GetFileName(f)));
        File.WriteAllBytes(Path.Combine(future, PartitionLog.MoveCompleteMarker), []);
        using (var manager = new LogManager(dirs, Config))
        {
            Assert.Equal(to, Path.GetDirectoryName(manager.GetLog(tp)!.Directory));
            Assert.Equal(Enumerable.Range(0, 100).Select(i => "s-" + i), ReadAll(manager.GetLog(tp)!).Select(r => r.Value));
            Assert.False(File.Exists(Path.Combine(to, "swap-3", PartitionLog.MoveCompleteMarker)));
        }
        // Crash between the two renames: the partition in both directories, the moved one marked.
        using (var manager = new LogManager(dirs, Config))
        {
            manager.GetLog(tp)!.AppendAsLeader(Values(T0 + 100, "s-100"), 1);
            manager.Shutdown();
        }
        string stale = Path.Combine(from, "swap-3");
        Directory.CreateDirectory(stale);
        File.WriteAllBytes(Path.Combine(stale, "00000000000000000000.log"), []);
        File.WriteAllBytes(Path.Combine(to, "swap-3", PartitionLog.MoveCompleteMarker), []);
        using (var manager = new LogManager(dirs, Config))
        {
            Assert.Equal(to, Path.GetDirectoryName(manager.GetLog(tp)!.Directory));
            Assert.Equal(101, ReadAll(manager.GetLog(tp)!).Count);
            Assert.False(Directory.Exists(stale));
        }
    }
}
