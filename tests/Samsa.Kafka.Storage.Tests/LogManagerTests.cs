using static Samsa.Kafka.Storage.Tests.Batches;

namespace Samsa.Kafka.Storage.Tests;

public class LogManagerTests
{
    private const long T0 = 1_700_000_000_000;
    private static readonly LogConfig Config = new() { SegmentBytes = 4096, RetentionMs = -1 };

    [Fact]
    public void Flushed_data_survives_an_unclean_stop_and_recovery()
    {
        using var dir = new TempDir();
        var tp = new TopicPartition("payments", 0);
        using (var manager = new LogManager([dir.Path], Config))
        {
            PartitionLog log = manager.GetOrCreateLog(tp);
            for (int i = 0; i < 200; i++)
            {
                log.AppendAsLeader(Values(T0 + i, "payment-" + i), 2);
            }
            log.Flush();
            log.UpdateHighWatermark(150);
            manager.CheckpointAll();
            // Crash: no Shutdown, no clean-shutdown marker.
        }
        Assert.False(File.Exists(Path.Combine(dir.Path, LogManager.CleanShutdownFileName)));
        using (var manager = new LogManager([dir.Path], Config))
        {
            Assert.False(manager.HadCleanShutdown);
            PartitionLog log = manager.GetLog(tp)!;
            Assert.Equal(200, log.LogEndOffset);
            Assert.Equal(150, log.HighWatermark);
            Assert.Equal(Enumerable.Range(0, 200).Select(i => "payment-" + i), ReadAll(log).Select(r => r.Value));
            Assert.Equal(2, log.EpochCache.LatestEpoch);
        }
    }

    [Fact]
    public void A_directory_in_use_is_refused_before_its_logs_are_read_and_freed_when_its_manager_closes()
    {
        using var dir = new TempDir();
        using var other = new TempDir();
        var tp = new TopicPartition("locked", 0);
        var first = new LogManager([dir.Path], Config);
        first.GetOrCreateLog(tp).AppendAsLeader(Values(T0, "one"), 0);
        // A second broker on the same directory (here in this process; another process gets the same
        // refusal from the kernel's lock), also when it lists a free directory first.
        var refused = Assert.Throws<DirectoryInUseException>(() => new LogManager([other.Path, dir.Path], Config));
        Assert.Equal(Path.GetFullPath(dir.Path), refused.Directory);
        Assert.Contains("in use by another broker", refused.Message);
        Assert.True(File.Exists(Path.Combine(dir.Path, LogManager.LockFileName)));
        // The refused manager let go of the directory it had locked first.
        using (new LogManager([other.Path], Config)) { }
        first.Dispose();
        using (var second = new LogManager([dir.Path], Config))
        {
            Assert.Equal(1, second.GetLog(tp)!.LogEndOffset);
            second.Shutdown();
            // after a clean shutdown the directory is free too, before Dispose
            using (new LogManager([dir.Path], Config)) { }
        }
    }

    [Fact]
    public void Clean_shutdown_writes_checkpoints_and_marker_and_the_restart_skips_recovery()
    {
        using var dir = new TempDir();
        var a = new TopicPartition("alpha", 0);
        var b = new TopicPartition("with-dashes-in-name", 12);
        using (var manager = new LogManager([dir.Path], Config))
        {
            manager.EnsureMetaProperties(brokerId: 3, clusterId: "abcDEF123");
            PartitionLog la = manager.GetOrCreateLog(a);
            PartitionLog lb = manager.GetOrCreateLog(b, Guid.NewGuid());
            for (int i = 0; i < 10; i++)
            {
                la.AppendAsLeader(Values(T0, "a" + i), 0);
                lb.AppendAsLeader(Values(T0, "b" + i), 0);
            }
            la.UpdateHighWatermark(10);
            lb.UpdateHighWatermark(7);
            lb.MaybeIncrementLogStartOffset(4);
            manager.Shutdown();
        }
        Assert.True(File.Exists(Path.Combine(dir.Path, LogManager.CleanShutdownFileName)));
        Assert.Equal(["0", "2", "alpha 0 10", "with-dashes-in-name 12 7"], File.ReadAllLines(Path.Combine(dir.Path, "replication-offset-checkpoint")));
        Assert.Equal(["0", "2", "alpha 0 10", "with-dashes-in-name 12 10"], File.ReadAllLines(Path.Combine(dir.Path, "recovery-point-offset-checkpoint")));
        Assert.Equal(["0", "1", "with-dashes-in-name 12 4"], File.ReadAllLines(Path.Combine(dir.Path, "log-start-offset-checkpoint")));
        string meta = File.ReadAllText(Path.Combine(dir.Path, "meta.properties"));
        Assert.Contains("broker.id=3\n", meta);
        Assert.Contains("cluster.id=abcDEF123\n", meta);
        Assert.Contains("version=0\n", meta);

        using (var manager = new LogManager([dir.Path], Config))
        {
            Assert.True(manager.HadCleanShutdown);
            Assert.False(File.Exists(Path.Combine(dir.Path, LogManager.CleanShutdownFileName)));
            Assert.Equal("abcDEF123", manager.EnsureMetaProperties(3, null));
            Assert.Throws<InvalidOperationException>(() => manager.EnsureMetaProperties(4, null));
            PartitionLog lb = manager.GetLog(b)!;
            Assert.Equal(4, lb.LogStartOffset);
            Assert.Equal(7, lb.HighWatermark);
            Assert.Equal(["b4", "b5", "b6", "b7", "b8", "b9"], ReadAll(lb).Select(r => r.Value!));
            Assert.NotNull(lb.TopicId);
            Assert.Equal(2, manager.Logs.Count);
        }
    }

    [Fact]
    public void Deleted_log_directory_is_gone_and_not_reloaded()
    {
        using var dir = new TempDir();
        var tp = new TopicPartition("doomed", 1);
        using (var manager = new LogManager([dir.Path], Config))
        {
            manager.GetOrCreateLog(tp).AppendAsLeader(Values(T0, "x"), 0);
            Assert.True(manager.DeleteLog(tp));
            Assert.Null(manager.GetLog(tp));
            Assert.False(Directory.Exists(Path.Combine(dir.Path, "doomed-1")));
            manager.Shutdown();
        }
        using var again = new LogManager([dir.Path], Config);
        Assert.Empty(again.Logs);
    }

    [Fact]
    public void Logs_spread_over_several_log_dirs()
    {
        using var dir = new TempDir();
        string[] dirs = [dir.Sub("d1"), dir.Sub("d2")];
        using var manager = new LogManager(dirs, Config);
        for (int p = 0; p < 4; p++)
        {
            manager.GetOrCreateLog(new TopicPartition("spread", p));
        }
        Assert.Equal(2, Directory.GetDirectories(dirs[0]).Length);
        Assert.Equal(2, Directory.GetDirectories(dirs[1]).Length);
    }

    [Fact]
    public void Broker_properties_map_onto_log_config_with_upstream_precedence()
    {
        var c = LogConfig.FromBrokerProperties(new Dictionary<string, string>
        {
            ["log.segment.bytes"] = "1048576",
            ["log.retention.hours"] = "1",
            ["log.retention.minutes"] = "30",
            ["log.roll.hours"] = "2",
            ["log.cleanup.policy"] = "compact,delete",
        });
        Assert.Equal(1048576, c.SegmentBytes);
        Assert.Equal(30 * 60_000, c.RetentionMs);
        Assert.Equal(2 * 3_600_000, c.SegmentMs);
        Assert.True(c.Compact && c.Delete);
        var t = c.With(new Dictionary<string, string> { ["retention.ms"] = "5", ["cleanup.policy"] = "compact" });
        Assert.Equal(5, t.RetentionMs);
        Assert.False(t.Delete);
    }
}
