namespace Samsa.Kafka.Storage;

/// <summary>
/// Copying a log into another log directory (AlterReplicaLogDirs, upstream's "future" replica).
/// Upstream fills the future log by fetching from the current one (ReplicaAlterLogDirsThread)
/// and swaps them once the future has caught up (Partition.maybeReplaceCurrentWithFutureReplica,
/// which takes the partition's write lock). Here the future is filled by copying the segment
/// files that no longer change (every segment but the active one), and the swap copies what is
/// left — the active segment, the indexes, producer snapshots and checkpoints — under the log's
/// own lock, so no append can fall between the last copy and the swap.
/// </summary>
public sealed partial class PartitionLog
{
    private volatile PartitionLog? _movedTo;

    /// <summary>The log that replaced this one when it moved to another log directory (set
    /// before the swap releases this log's lock); callers holding this log follow it.</summary>
    public PartitionLog? MovedTo { get => _movedTo; internal set => _movedTo = value; }

    /// <summary>Set in a future directory once it holds a complete copy: a start that finds it
    /// finishes the swap instead of discarding the copy.</summary>
    public const string MoveCompleteMarker = ".move-complete";

    // Temporary files of the cleaner and of retention are not part of the log's state.
    private static bool IsTransient(string name) =>
        name.EndsWith(".deleted", StringComparison.Ordinal) || name.EndsWith(".cleaned", StringComparison.Ordinal)
        || name.EndsWith(".swap", StringComparison.Ordinal) || name.EndsWith(".tmp", StringComparison.Ordinal)
        || name == MoveCompleteMarker;

    /// <summary>Copies the files of every rolled segment missing (or of another length) in
    /// <paramref name="destination"/>. Runs without the log's lock: rolled segments are not
    /// written to; one deleted by retention meanwhile is skipped (the swap reconciles).
    /// Returns the bytes copied.</summary>
    internal long CopyRolledSegments(string destination, Action<long> throttle, CancellationToken cancel)
    {
        LogSegment[] segments;
        lock (_lock)
        {
            ThrowIfClosed();
            segments = _segments;
        }
        long copied = 0;
        for (int i = 0; i < segments.Length - 1; i++)
        {
            string prefix = LogSegment.FileNamePrefix(segments[i].BaseOffset);
            foreach (string ext in (string[])[".log", ".index", ".timeindex", ".txnindex"])
            {
                cancel.ThrowIfCancellationRequested();
                string source = Path.Combine(Directory, prefix + ext);
                string target = Path.Combine(destination, prefix + ext);
                try
                {
                    var info = new FileInfo(source);
                    if (!info.Exists || (File.Exists(target) && new FileInfo(target).Length == info.Length)) continue;
                    copied += CopyFile(source, target, throttle, cancel);
                }
                catch (FileNotFoundException) { }
                catch (DirectoryNotFoundException) { }
            }
        }
        return copied;
    }

    /// <summary>Bytes of the rolled segments already present in <paramref name="destination"/>
    /// and the offset the copy reaches (the next offset after the last segment present).</summary>
    internal (long Bytes, long CopiedUpTo) FutureProgress(string destination)
    {
        LogSegment[] segments = _segments;
        long bytes = 0, upTo = segments.Length > 0 ? segments[0].BaseOffset : 0;
        for (int i = 0; i < segments.Length - 1; i++)
        {
            string target = Path.Combine(destination, LogSegment.FileNamePrefix(segments[i].BaseOffset) + ".log");
            if (!File.Exists(target)) break;
            bytes += new FileInfo(target).Length;
            upTo = segments[i + 1].BaseOffset;
        }
        return (bytes, upTo);
    }

    /// <summary>
    /// The swap, under the log's lock: flush, snapshot the producer state, copy every file that is
    /// missing or differs, remove copies of segments deleted meanwhile, mark the destination
    /// complete (fsynced), then close this log and let <paramref name="swap"/> rename the
    /// directories and open the moved log before any waiting append runs (it then finds this
    /// log closed and retries on the new one).
    /// </summary>
    internal void FinishMove(string destination, Action<long> throttle, Action swap, CancellationToken cancel)
    {
        lock (_lock)
        {
            ThrowIfClosed();
            FlushLocked();
            TakeProducerSnapshot(LogEndOffset);
            var sourceNames = new HashSet<string>(StringComparer.Ordinal);
            foreach (string source in System.IO.Directory.EnumerateFiles(Directory))
            {
                string name = Path.GetFileName(source);
                if (IsTransient(name)) continue;
                sourceNames.Add(name);
                string target = Path.Combine(destination, name);
                bool immutable = name.EndsWith(".log", StringComparison.Ordinal)
                    && !name.StartsWith(LogSegment.FileNamePrefix(ActiveSegment.BaseOffset), StringComparison.Ordinal);
                if (immutable && File.Exists(target) && new FileInfo(target).Length == new FileInfo(source).Length) continue;
                CopyFile(source, target, throttle, cancel);
            }
            foreach (string target in System.IO.Directory.EnumerateFiles(destination))
                if (!sourceNames.Contains(Path.GetFileName(target))) File.Delete(target);
            using (var marker = new FileStream(Path.Combine(destination, MoveCompleteMarker), FileMode.Create, FileAccess.Write))
                marker.Flush(flushToDisk: true);
            _closed = true;
            foreach (LogSegment s in _segments)
            {
                s.Close();
            }
            swap();
        }
    }

    private static long CopyFile(string source, string target, Action<long> throttle, CancellationToken cancel)
    {
        const int Chunk = 1 << 20;
        var buffer = new byte[Math.Min(Chunk, 64 * 1024)];
        long total = 0;
        using var input = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var output = new FileStream(target, FileMode.Create, FileAccess.Write);
        int n;
        while ((n = input.Read(buffer)) > 0)
        {
            cancel.ThrowIfCancellationRequested();
            output.Write(buffer, 0, n);
            total += n;
            throttle(n);
        }
        output.Flush(flushToDisk: true);
        return total;
    }
}
