using System.Collections.Concurrent;

namespace Samsa.Kafka.Storage;

/// <summary>
/// The broker's log directories (upstream LogManager): finds and opens every partition log at
/// startup, creates and deletes logs, and keeps the broker-level files of each directory —
/// meta.properties, recovery-point-offset-checkpoint, replication-offset-checkpoint,
/// log-start-offset-checkpoint, cleaner-offset-checkpoint and the ".kafka_cleanshutdown" marker
/// (present only between a clean shutdown and the next start, which then skips recovery).
/// </summary>
public sealed partial class LogManager : IDisposable
{
    public const string CleanShutdownFileName = ".kafka_cleanshutdown";
    public const string DeleteDirSuffix = "-delete";

    private readonly ConcurrentDictionary<TopicPartition, PartitionLog> _logs = new();
    private readonly ConcurrentDictionary<TopicPartition, long> _cleanerCheckpoints = new();
    private readonly TimeProvider _time;
    private readonly object _createLock = new();
    private int _nextDir;
    private bool _closed;

    /// <summary>Opens every log under <paramref name="logDirs"/> (log.dirs), creating the directories if needed.</summary>
    /// <param name="recoveryThreadsPerDataDir">num.recovery.threads.per.data.dir: as upstream
    /// LogManager.loadLogs, each directory's logs are opened (and recovered) on a pool of this many
    /// threads, the directories side by side.</param>
    /// <param name="log">Receives one line per truncated torn tail, rebuilt index and loaded directory.</param>
    public LogManager(IReadOnlyList<string> logDirs, LogConfig defaultConfig, TimeProvider? time = null,
        Func<TopicPartition, LogConfig>? configFor = null, int recoveryThreadsPerDataDir = 1, Action<string>? log = null)
    {
        if (logDirs.Count == 0)
        {
            throw new ArgumentException("at least one log directory is needed", nameof(logDirs));
        }
        LogDirs = logDirs.Select(d => Path.TrimEndingDirectorySeparator(Path.GetFullPath(d))).Distinct().ToArray();
        DefaultConfig = defaultConfig;
        _time = time ?? TimeProvider.System;
        ConfigFor = configFor;
        _logLine = log;
        _recoveryThreads = Math.Max(1, recoveryThreadsPerDataDir);
        foreach (string dir in LogDirs)
        {
            Directory.CreateDirectory(dir);
        }
        LockDirectories();
        foreach (string dir in LogDirs)
        {
            HadCleanShutdown &= File.Exists(Path.Combine(dir, CleanShutdownFileName));
        }
        ResolveInterruptedMoves();
        try
        {
            if (LogDirs.Count == 1)
            {
                LoadDirectory(LogDirs[0]);
            }
            else
            {
                Task.WaitAll(LogDirs.Select(d => Task.Factory.StartNew(() => LoadDirectory(d), TaskCreationOptions.LongRunning)).ToArray());
            }
        }
        catch (AggregateException e)
        {
            foreach (PartitionLog opened in _logs.Values)
            {
                opened.Dispose();
            }
            ReleaseDirectories();
            // The first failure as itself (a duplicate partition, a refused directory), not wrapped.
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.Flatten().InnerExceptions[0]).Throw();
        }
        ResumeMoves();
    }

    private readonly Action<string>? _logLine;
    private readonly int _recoveryThreads;

    /// <summary>The file each log directory is locked through while a LogManager has it open
    /// (upstream LogManager.LockFileName).</summary>
    public const string LockFileName = ".lock";
    private readonly List<FileStream> _dirLocks = [];

    /// <summary>Takes an exclusive lock on each directory's <see cref="LockFileName"/> before anything in
    /// it is read, as upstream's lockLogDirs: a second broker (another process, or another LogManager
    /// in this one) pointed at a directory in use stops here, before it could load, recover or truncate
    /// logs another broker is writing (<see cref="DirectoryLock"/>).</summary>
    private void LockDirectories()
    {
        foreach (string dir in LogDirs)
        {
            try
            {
                _dirLocks.Add(DirectoryLock.Acquire(dir, LockFileName));
            }
            catch (DirectoryInUseException)
            {
                ReleaseDirectories();
                throw;
            }
        }
    }

    private void ReleaseDirectories()
    {
        foreach (FileStream l in _dirLocks)
        {
            l.Dispose();
        }
        _dirLocks.Clear();
    }

    public IReadOnlyList<string> LogDirs { get; }
    public LogConfig DefaultConfig { get; set; }
    /// <summary>Per-topic configuration (topic overrides over the defaults); null → defaults.</summary>
    public Func<TopicPartition, LogConfig>? ConfigFor { get; set; }
    /// <summary>Whether the previous run stopped cleanly in every directory (no recovery was needed).</summary>
    public bool HadCleanShutdown { get; private set; } = true;

    public IReadOnlyCollection<PartitionLog> Logs => _logs.Values.ToArray();

    private LogConfig ConfigOf(TopicPartition tp) => ConfigFor?.Invoke(tp) ?? DefaultConfig;

    private void LoadDirectory(string dir)
    {
        string cleanShutdownFile = Path.Combine(dir, CleanShutdownFileName);
        bool cleanShutdown = File.Exists(cleanShutdownFile);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Dictionary<TopicPartition, long> recoveryPoints = ReadCheckpoint(dir, OffsetCheckpointFile.RecoveryPoint);
        Dictionary<TopicPartition, long> logStarts = ReadCheckpoint(dir, OffsetCheckpointFile.LogStartOffset);
        Dictionary<TopicPartition, long> highWatermarks = ReadCheckpoint(dir, OffsetCheckpointFile.Replication);
        foreach ((TopicPartition tp, long offset) in ReadCheckpoint(dir, OffsetCheckpointFile.Cleaner))
        {
            _cleanerCheckpoints[tp] = offset;
        }
        var partitionDirs = new List<(string Path, TopicPartition Tp)>();
        foreach (string sub in Directory.EnumerateDirectories(dir))
        {
            string name = Path.GetFileName(sub);
            if (name.EndsWith(DeleteDirSuffix, StringComparison.Ordinal))
            {
                // A deletion that did not finish before the stop.
                Directory.Delete(sub, recursive: true);
                continue;
            }
            if (TopicPartition.TryParseDirectoryName(name, out TopicPartition tp))
            {
                partitionDirs.Add((sub, tp));
            }
        }
        var opened = new System.Collections.Concurrent.ConcurrentBag<PartitionLog>();
        void OpenOne((string Path, TopicPartition Tp) entry)
        {
            (string sub, TopicPartition tp) = entry;
            PartitionLog log = PartitionLog.Open(sub, tp, ConfigOf(tp),
                recoveryPoints.GetValueOrDefault(tp, 0), logStarts.GetValueOrDefault(tp, 0), highWatermarks.GetValueOrDefault(tp, 0),
                hadCleanShutdown: cleanShutdown && recoveryPoints.ContainsKey(tp), time: _time, log: _logLine);
            if (!_logs.TryAdd(tp, log))
            {
                log.Dispose();
                throw new InvalidOperationException($"partition {tp} found in more than one log directory");
            }
            opened.Add(log);
        }
        if (_recoveryThreads == 1)
        {
            foreach (var entry in partitionDirs)
            {
                OpenOne(entry);
            }
        }
        else
        {
            try
            {
                Parallel.ForEach(partitionDirs, new ParallelOptions { MaxDegreeOfParallelism = _recoveryThreads }, OpenOne);
            }
            catch (AggregateException e)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.Flatten().InnerExceptions[0]).Throw();
            }
        }
        int recoveredSegments = opened.Sum(l => l.RecoveredSegments);
        if (partitionDirs.Count == 0 && !cleanShutdown)
        {
            // a new (or emptied) log directory: no stop to speak of, clean or not
            _logLine?.Invoke($"no logs in {dir}: starting empty");
        }
        else
        {
            _logLine?.Invoke($"loaded {partitionDirs.Count} logs in {dir} in {clock.ElapsedMilliseconds} ms " +
                (cleanShutdown ? "after a clean shutdown" : $"after an unclean shutdown (recovered {recoveredSegments} segments past their recovery point on {_recoveryThreads} thread(s))") +
                $"; {opened.Sum(l => l.RebuiltIndexes)} index rebuilds, {opened.Sum(l => l.RecoveredTruncatedBytes)} bytes truncated");
        }
        // The marker only vouches for the stop that wrote it.
        if (cleanShutdown)
        {
            File.Delete(cleanShutdownFile);
        }
    }

    private static Dictionary<TopicPartition, long> ReadCheckpoint(string dir, string name)
    {
        try
        {
            return OffsetCheckpointFile.Read(Path.Combine(dir, name));
        }
        catch (InvalidDataException)
        {
            // Upstream fails the directory; starting from offset 0 here means full recovery, which is safe.
            return new Dictionary<TopicPartition, long>();
        }
    }

    /// <summary>
    /// meta.properties of every directory: written when missing; an existing one must carry the same
    /// broker.id (upstream refuses to start otherwise). Returns the cluster id found on disk, if any.
    /// </summary>
    public string? EnsureMetaProperties(int brokerId, string? clusterId)
    {
        string? found = null;
        foreach (string dir in LogDirs)
        {
            Dictionary<string, string>? props = MetaProperties.Read(dir);
            if (props is null)
            {
                MetaProperties.Write(dir, brokerId, clusterId);
                continue;
            }
            if (props.TryGetValue("broker.id", out string? id) && id != brokerId.ToString(System.Globalization.CultureInfo.InvariantCulture))
            {
                throw new InvalidOperationException($"log directory {dir} belongs to broker.id {id}, not {brokerId}");
            }
            if (props.TryGetValue("cluster.id", out string? cid))
            {
                found ??= cid;
            }
            else if (clusterId is not null)
            {
                MetaProperties.Write(dir, brokerId, clusterId);
            }
        }
        return found;
    }

    public PartitionLog? GetLog(TopicPartition tp) => _logs.GetValueOrDefault(tp);

    /// <summary>Returns the log, creating "&lt;dir&gt;/&lt;topic&gt;-&lt;partition&gt;" in the directory with the fewest logs when new.</summary>
    public PartitionLog GetOrCreateLog(TopicPartition tp, Guid? topicId = null, LogConfig? config = null)
    {
        if (_logs.TryGetValue(tp, out PartitionLog? existing))
        {
            if (topicId is Guid id)
            {
                existing.SetTopicId(id);
            }
            return existing;
        }
        lock (_createLock)
        {
            ObjectDisposedException.ThrowIf(_closed, this);
            if (_logs.TryGetValue(tp, out existing))
            {
                return existing;
            }
            string dir = PickDirectory();
            PartitionLog log = PartitionLog.Open(Path.Combine(dir, PartitionLog.DirectoryName(tp)), tp, config ?? ConfigOf(tp), time: _time);
            if (topicId is Guid id)
            {
                log.SetTopicId(id);
            }
            _logs[tp] = log;
            return log;
        }
    }

    private string PickDirectory()
    {
        if (LogDirs.Count == 1)
        {
            return LogDirs[0];
        }
        var counts = LogDirs.ToDictionary(d => d, _ => 0);
        foreach (PartitionLog log in _logs.Values)
        {
            string parent = Path.GetDirectoryName(log.Directory)!;
            if (counts.ContainsKey(parent))
            {
                counts[parent]++;
            }
        }
        int min = counts.Values.Min();
        var candidates = LogDirs.Where(d => counts[d] == min).ToArray();
        return candidates[Interlocked.Increment(ref _nextDir) % candidates.Length];
    }

    /// <summary>
    /// Removes a partition's log: the directory is renamed "&lt;topic&gt;-&lt;partition&gt;.&lt;uuid&gt;-delete"
    /// at once (upstream naming) and then removed.
    /// </summary>
    public bool DeleteLog(TopicPartition tp)
    {
        if (!_logs.TryRemove(tp, out PartitionLog? log))
        {
            return false;
        }
        _cleanerCheckpoints.TryRemove(tp, out _);
        log.Dispose();
        string parent = Path.GetDirectoryName(log.Directory)!;
        string renamed = Path.Combine(parent, $"{PartitionLog.DirectoryName(tp)}.{Guid.NewGuid():N}{DeleteDirSuffix}");
        Directory.Move(log.Directory, renamed);
        try
        {
            Directory.Delete(renamed, recursive: true);
        }
        catch (IOException)
        {
            // Removed at the next start.
        }
        return true;
    }

    /// <summary>Writes the recovery point, high watermark and log start offset checkpoints of every directory.</summary>
    public void CheckpointAll()
    {
        foreach (string dir in LogDirs)
        {
            var logs = _logs.Where(e => Path.GetDirectoryName(e.Value.Directory) == dir).ToList();
            OffsetCheckpointFile.Write(Path.Combine(dir, OffsetCheckpointFile.RecoveryPoint), logs.Select(e => KeyValuePair.Create(e.Key, e.Value.RecoveryPoint)));
            OffsetCheckpointFile.Write(Path.Combine(dir, OffsetCheckpointFile.Replication), logs.Select(e => KeyValuePair.Create(e.Key, e.Value.HighWatermark)));
            // Upstream records only log start offsets above the first segment's base offset.
            OffsetCheckpointFile.Write(Path.Combine(dir, OffsetCheckpointFile.LogStartOffset),
                logs.Where(e => e.Value.LogStartOffset > e.Value.Segments[0].BaseOffset).Select(e => KeyValuePair.Create(e.Key, e.Value.LogStartOffset)));
            OffsetCheckpointFile.Write(Path.Combine(dir, OffsetCheckpointFile.Cleaner),
                _cleanerCheckpoints.Where(e => _logs.TryGetValue(e.Key, out PartitionLog? l) && Path.GetDirectoryName(l.Directory) == dir));
        }
    }

    /// <summary>Retention pass over every log (log.retention.check.interval.ms). Returns segments deleted.</summary>
    public int RunRetention() => _logs.Values.Sum(l => l.DeleteOldSegments());

    /// <summary>producer.id.expiration.ms (a dynamic broker config, read at every pass; default one day).</summary>
    public Func<long> ProducerIdExpirationMs { get; set; } = () => 86_400_000;

    /// <summary>Forgets idle producers in every log (upstream's PeriodicProducerExpirationCheck, every
    /// producer.id.expiration.check.interval.ms). Returns the producers removed.</summary>
    public int RemoveExpiredProducers()
    {
        long expirationMs = ProducerIdExpirationMs();
        return _logs.Values.Sum(l => l.RemoveExpiredProducers(expirationMs));
    }

    /// <summary>flush.ms pass over every log (log.flush.scheduler.interval.ms). Returns logs flushed.</summary>
    public int FlushDueLogs() => _logs.Values.Count(l => l.FlushIfDue());

    /// <summary>
    /// One cleaner pass over compacted logs whose dirty ratio reached min.cleanable.dirty.ratio
    /// (or all of them with <paramref name="force"/>); the cleaner checkpoint moves past what was cleaned.
    /// </summary>
    public List<(TopicPartition Partition, CleanResult Result)> RunCleaner(bool force = false)
    {
        var results = new List<(TopicPartition, CleanResult)>();
        foreach ((TopicPartition tp, PartitionLog log) in _logs)
        {
            // Upstream abortAndPauseCleaning: a log being moved to another directory is not cleaned.
            if (!log.Config.Compact || IsMoving(tp))
            {
                continue;
            }
            long firstDirty = Math.Max(_cleanerCheckpoints.GetValueOrDefault(tp, 0), log.LogStartOffset);
            if (!force && LogCleaner.DirtyRatio(log, firstDirty) < log.Config.MinCleanableDirtyRatio)
            {
                continue;
            }
            if (LogCleaner.Clean(log, firstDirty) is CleanResult result)
            {
                _cleanerCheckpoints[tp] = result.NextDirtyOffset;
                results.Add((tp, result));
            }
            if (log.Config.Delete)
            {
                log.DeleteOldSegments();
            }
        }
        return results;
    }

    public long CleanerCheckpoint(TopicPartition tp) => _cleanerCheckpoints.GetValueOrDefault(tp, 0);

    /// <summary>
    /// Starts the periodic work upstream's scheduler runs: retention, flush.ms, checkpoints, producer
    /// id expiration and the cleaner. Dispose the returned handle (or this manager) to stop it.
    /// </summary>
    /// <param name="cleanerBackoff">log.cleaner.backoff.ms, read before every pause (it is a dynamic
    /// broker config). As upstream's CleanerThread, the cleaner runs once at start, runs again at
    /// once after a pass that cleaned something, and sleeps this long after a pass that found
    /// nothing to clean. Null: log.cleaner.enable=false, no cleaning.</param>
    /// <param name="producerIdExpirationCheckInterval">producer.id.expiration.check.interval.ms (default
    /// ten minutes): how often <see cref="RemoveExpiredProducers"/> runs.</param>
    public IDisposable StartBackgroundTasks(TimeSpan retentionCheckInterval, TimeSpan flushCheckInterval, TimeSpan checkpointInterval, Func<TimeSpan>? cleanerBackoff,
        TimeSpan? producerIdExpirationCheckInterval = null)
    {
        TimeSpan producerCheck = producerIdExpirationCheckInterval ?? TimeSpan.FromMinutes(10);
        var timers = new List<ITimer>
        {
            _time.CreateTimer(_ => Guard(() => RunRetention()), null, retentionCheckInterval, retentionCheckInterval),
            _time.CreateTimer(_ => Guard(() => FlushDueLogs()), null, flushCheckInterval, flushCheckInterval),
            _time.CreateTimer(_ => Guard(CheckpointAll), null, checkpointInterval, checkpointInterval),
            _time.CreateTimer(_ => Guard(() => RemoveExpiredProducers()), null, producerCheck, producerCheck),
        };
        if (cleanerBackoff is not null)
        {
            ITimer? cleaner = null;
            cleaner = _time.CreateTimer(_ =>
            {
                bool progressed = false;
                Guard(() => progressed = RunCleaner().Any(r => r.Result.NextDirtyOffset > r.Result.FirstDirtyOffset));
                TimeSpan pause = progressed ? TimeSpan.Zero : cleanerBackoff();
                try { cleaner!.Change(pause, Timeout.InfiniteTimeSpan); }
                catch (ObjectDisposedException) { /* stopped meanwhile */ }
            }, null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            timers.Add(cleaner);
            cleaner.Change(TimeSpan.Zero, Timeout.InfiniteTimeSpan);
        }
        var handle = new TimerSet(timers);
        _background.Add(handle);
        return handle;
    }

    private readonly List<TimerSet> _background = new();

    /// <summary>Errors raised by background work (the broker may log them).</summary>
    public event Action<Exception>? BackgroundError;

    private readonly object _backgroundLock = new();

    private void Guard(Action action)
    {
        // One background job at a time; the timers may overlap on a slow disk.
        if (!Monitor.TryEnter(_backgroundLock))
        {
            return;
        }
        try
        {
            if (!_closed)
            {
                action();
            }
        }
        catch (Exception ex)
        {
            BackgroundError?.Invoke(ex);
        }
        finally
        {
            Monitor.Exit(_backgroundLock);
        }
    }

    private sealed class TimerSet(List<ITimer> timers) : IDisposable
    {
        public void Dispose()
        {
            foreach (ITimer t in timers)
            {
                t.Dispose();
            }
        }
    }

    /// <summary>Clean shutdown: flush and close every log, write the checkpoints and the clean-shutdown marker.</summary>
    public void Shutdown()
    {
        lock (_createLock)
        {
            if (_closed)
            {
                return;
            }
            StopMoves();
            foreach (TimerSet t in _background)
            {
                t.Dispose();
            }
            lock (_backgroundLock)
            {
                _closed = true;
                foreach (PartitionLog log in _logs.Values)
                {
                    log.Close();
                }
                CheckpointAll();
                foreach (string dir in LogDirs)
                {
                    // ZooKeeper-mode brokers wrote an empty marker; newer ones a small JSON with the broker epoch.
                    CheckpointFile.WriteAtomically(Path.Combine(dir, CleanShutdownFileName), "{\"version\":0,\"brokerEpoch\":-1}"u8);
                }
                ReleaseDirectories();
            }
        }
    }

    /// <summary>Closes without the clean-shutdown marker (the next start recovers from the recovery points).</summary>
    public void Dispose()
    {
        lock (_createLock)
        {
            if (_closed)
            {
                return;
            }
            _closed = true;
            StopMoves();
            foreach (TimerSet t in _background)
            {
                t.Dispose();
            }
            foreach (PartitionLog log in _logs.Values)
            {
                log.Dispose();
            }
            ReleaseDirectories();
        }
    }
}
