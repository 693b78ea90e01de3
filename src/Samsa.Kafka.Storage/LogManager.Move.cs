using System.Collections.Concurrent;
using System.Diagnostics;

namespace Samsa.Kafka.Storage;

/// <summary>
/// Moving a partition's log to another log directory (AlterReplicaLogDirs; upstream
/// LogManager.maybeUpdatePreferredLogDir / getOrCreateLog(isFuture) / replaceCurrentWithFutureLog).
///
/// A move creates the future directory "&lt;topic&gt;-&lt;partition&gt;.&lt;uuid&gt;-future" in the
/// destination (upstream's naming), copies the rolled segments into it in the background
/// (throttled by <see cref="MoveBytesPerSecond"/>, replica.alter.log.dirs.io.max.bytes.per.second),
/// repeating until a pass finds nothing new, then swaps under the log's lock
/// (<see cref="PartitionLog.FinishMove"/>): the complete copy is marked, renamed to
/// "&lt;topic&gt;-&lt;partition&gt;" in the destination, the old directory renamed "…-delete" and
/// removed, and the moved log opened in place of the old one.
///
/// After a crash: a future directory without the completion marker is discarded and the move
/// started again from the beginning (upstream resumes its future log; the copy here is cheap to
/// redo and never half-trusted); one with the marker finishes its swap; a partition present in two
/// directories (a crash between the two renames) keeps the copy that carries the marker.
/// </summary>
public sealed partial class LogManager
{
    public const string FutureDirSuffix = "-future";

    public sealed record FutureLog(TopicPartition Partition, string DestinationDir, string Directory)
    {
        internal CancellationTokenSource Cancel { get; } = new();
        internal Task Task { get; set; } = Task.CompletedTask;
    }

    private readonly ConcurrentDictionary<TopicPartition, FutureLog> _moves = new();
    private readonly List<(TopicPartition Tp, string Dir)> _resume = [];

    /// <summary>Bytes per second the background copy may read (Long.MaxValue: unlimited); read
    /// before every chunk so a dynamic change applies at once.</summary>
    public Func<long> MoveBytesPerSecond { get; set; } = () => long.MaxValue;

    /// <summary>Moves in progress (DescribeLogDirs reports them as future replicas).</summary>
    public IReadOnlyCollection<FutureLog> Moves => _moves.Values.ToArray();

    public bool IsMoving(TopicPartition tp) => _moves.ContainsKey(tp);

    /// <summary>Progress of a move: bytes in the future directory and the offset they reach.</summary>
    public (long Bytes, long CopiedUpTo) MoveProgress(FutureLog move) =>
        GetLog(move.Partition) is { } log ? log.FutureProgress(move.Directory) : (0, 0);

    /// <summary>Raised after a swap with the moved log (tests and logging).</summary>
    public event Action<TopicPartition, string>? Moved;

    /// <summary>
    /// Starts moving the partition's log to <paramref name="destinationDir"/> (one of
    /// <see cref="LogDirs"/>). A log already there cancels a move in progress (upstream: a
    /// request naming the current directory stops the movement); the same destination again is a
    /// no-op; another destination replaces the move in progress.
    /// </summary>
    public void StartMove(TopicPartition tp, string destinationDir)
    {
        string dest = Path.TrimEndingDirectorySeparator(Path.GetFullPath(destinationDir));
        if (!LogDirs.Contains(dest)) throw new DirectoryNotFoundException($"{destinationDir} is not a log directory");
        PartitionLog log = GetLog(tp) ?? throw new KeyNotFoundException($"no log for {tp}");
        lock (_createLock)
        {
            ObjectDisposedException.ThrowIf(_closed, this);
            if (_moves.TryGetValue(tp, out FutureLog? running))
            {
                if (running.DestinationDir == dest) return;
                CancelMove(running);
            }
            if (Path.GetDirectoryName(log.Directory) == dest) return;
            var move = new FutureLog(tp, dest, Path.Combine(dest, $"{PartitionLog.DirectoryName(tp)}.{Guid.NewGuid():N}{FutureDirSuffix}"));
            Directory.CreateDirectory(move.Directory);
            _moves[tp] = move;
            move.Task = Task.Factory.StartNew(() => RunMove(move), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            _logLine?.Invoke($"moving {tp} from {Path.GetDirectoryName(log.Directory)} to {dest} (future log {move.Directory})");
        }
    }

    private void CancelMove(FutureLog move)
    {
        move.Cancel.Cancel();
        try { move.Task.Wait(TimeSpan.FromSeconds(30)); } catch (AggregateException) { }
        _moves.TryRemove(KeyValuePair.Create(move.Partition, move));
        TryDeleteDirectory(move.Directory);
    }

    private static void TryDeleteDirectory(string dir)
    {
        try { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    private void RunMove(FutureLog move)
    {
        var clock = Stopwatch.StartNew();
        long budgetBytes = 0;
        long moved = 0;
        void Throttle(long bytes)
        {
            moved += bytes;
            long rate = MoveBytesPerSecond();
            if (rate <= 0 || rate == long.MaxValue) return;
            budgetBytes += bytes;
            // Sleep until the bytes copied so far fit the rate since the move started.
            double due = budgetBytes / (double)rate;
            double ahead = due - clock.Elapsed.TotalSeconds;
            if (ahead > 0) Thread.Sleep(TimeSpan.FromSeconds(Math.Min(ahead, 1.0)));
        }
        try
        {
            while (true)
            {
                move.Cancel.Token.ThrowIfCancellationRequested();
                PartitionLog log = GetLog(move.Partition) ?? throw new ObjectDisposedException(move.Partition.ToString());
                if (log.CopyRolledSegments(move.Directory, Throttle, move.Cancel.Token) == 0) break;
            }
            PartitionLog current = GetLog(move.Partition) ?? throw new ObjectDisposedException(move.Partition.ToString());
            string oldDir = current.Directory;
            string finalDir = Path.Combine(move.DestinationDir, PartitionLog.DirectoryName(move.Partition));
            string deleteDir = Path.Combine(Path.GetDirectoryName(oldDir)!, $"{PartitionLog.DirectoryName(move.Partition)}.{Guid.NewGuid():N}{DeleteDirSuffix}");
            // The swap runs under the log's lock only (not _createLock, which Shutdown holds while
            // it closes logs): a shutdown racing it leaves at worst a marked copy the next start
            // finishes. The final copy is not throttled: appends wait for it.
            current.FinishMove(move.Directory, _ => { }, () =>
            {
                ObjectDisposedException.ThrowIf(_closed, this);
                Directory.Move(move.Directory, finalDir);
                Directory.Move(oldDir, deleteDir);
                PartitionLog moved = PartitionLog.Open(finalDir, move.Partition, ConfigOf(move.Partition), current.RecoveryPoint,
                    current.LogStartOffset, current.HighWatermark, hadCleanShutdown: false, time: _time, log: _logLine);
                _logs[move.Partition] = moved;
                current.MovedTo = moved;
                File.Delete(Path.Combine(finalDir, PartitionLog.MoveCompleteMarker));
            }, move.Cancel.Token);
            TryDeleteDirectory(deleteDir);
            _logLine?.Invoke($"moved {move.Partition} to {move.DestinationDir}: {moved} bytes copied in {clock.ElapsedMilliseconds} ms");
            _moves.TryRemove(KeyValuePair.Create(move.Partition, move));
            Moved?.Invoke(move.Partition, move.DestinationDir);
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or IOException or UnauthorizedAccessException)
        {
            // Cancelled, the log deleted or closed, or a disk error: the future copy is dropped; the
            // current log is untouched unless the swap itself failed after closing it, in which case
            // the next start resolves the directories (see the class comment).
            if (e is not OperationCanceledException) _logLine?.Invoke($"move of {move.Partition} to {move.DestinationDir} stopped: {e.Message}");
            _moves.TryRemove(KeyValuePair.Create(move.Partition, move));
            if (!File.Exists(Path.Combine(move.Directory, PartitionLog.MoveCompleteMarker)))
                TryDeleteDirectory(move.Directory);
        }
    }

    /// <summary>Stops the background copies (shutdown): future directories stay and the next start
    /// restarts their moves.</summary>
    private void StopMoves()
    {
        foreach (FutureLog move in _moves.Values)
        {
            move.Cancel.Cancel();
        }
    }

    /// <summary>Before loading: finishes swaps that were complete, discards partial future copies
    /// (remembering them so the move starts again) and settles a partition found in two directories.</summary>
    private void ResolveInterruptedMoves()
    {
        var found = new Dictionary<TopicPartition, List<string>>();
        foreach (string dir in LogDirs)
        {
            foreach (string sub in Directory.EnumerateDirectories(dir))
            {
                string name = Path.GetFileName(sub);
                if (name.EndsWith(FutureDirSuffix, StringComparison.Ordinal))
                {
                    int dot = name.LastIndexOf('.');
                    if (dot <= 0 || !TopicPartition.TryParseDirectoryName(name[..dot], out TopicPartition ftp)) continue;
                    string finalDir = Path.Combine(dir, name[..dot]);
                    if (File.Exists(Path.Combine(sub, PartitionLog.MoveCompleteMarker)) && !Directory.Exists(finalDir))
                    {
                        // Complete copy: it becomes the partition's log here (the old one is
                        // dropped below, as the duplicate without the marker).
                        Directory.Move(sub, finalDir);
                        found.TryAdd(ftp, []);
                        found[ftp].Add(finalDir);
                        _logLine?.Invoke($"finishing the interrupted move of {ftp} to {dir}");
                    }
                    else
                    {
                        Directory.Delete(sub, recursive: true);
                        _resume.Add((ftp, dir));
                        _logLine?.Invoke($"restarting the interrupted move of {ftp} to {dir} (partial future log discarded)");
                    }
                    continue;
                }
                if (TopicPartition.TryParseDirectoryName(name, out TopicPartition tp))
                {
                    found.TryAdd(tp, []);
                    if (!found[tp].Contains(sub)) found[tp].Add(sub);
                }
            }
        }
        foreach ((TopicPartition tp, List<string> dirs) in found)
        {
            string? winner = dirs.FirstOrDefault(d => File.Exists(Path.Combine(d, PartitionLog.MoveCompleteMarker)));
            if (winner is null) continue;   // (two unmarked copies: LoadDirectory refuses, as upstream)
            foreach (string loser in dirs.Where(d => d != winner))
            {
                string parent = Path.GetDirectoryName(loser)!;
                Directory.Move(loser, Path.Combine(parent, $"{PartitionLog.DirectoryName(tp)}.{Guid.NewGuid():N}{DeleteDirSuffix}"));
            }
            File.Delete(Path.Combine(winner, PartitionLog.MoveCompleteMarker));
        }
    }

    /// <summary>After loading: moves interrupted by a stop start again.</summary>
    private void ResumeMoves()
    {
        foreach ((TopicPartition tp, string dir) in _resume)
        {
            if (GetLog(tp) is not null) StartMove(tp, dir);
        }
        _resume.Clear();
    }
}
