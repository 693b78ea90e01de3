namespace Samsa.Keeper.Server.Quorum;

/// <summary>
/// Periodic snapshots and autopurge of a quorum member (leader, follower or observer), as upstream
/// 3.8 does on every member:
/// <list type="bullet">
/// <item>SyncRequestProcessor.shouldSnapshot: after each txn logged, once more than snapCount/2 +
/// a random roll (0 .. snapCount/2) txns, or more than snapSizeLimitInKb/2 + a random part of
/// bytes, were logged since the last roll, the log rolls (the next txn starts a new log file) and a
/// snapshot is taken on a background thread — unless one is still being taken ("Too busy to
/// snap, skipping").</item>
/// <item>ZooKeeperServer.takeSnapshot: the committed tree, named by the last zxid applied to it.
/// Upstream serializes the live tree while commits go on (a fuzzy snapshot, fixed up by replaying
/// the log from its zxid). Here the tree belongs to the server loop, so the snapshot is serialized
/// there in one go — an exact snapshot of that zxid, with its digest — and written to disk off the
/// loop. The tree may be behind the log (proposals logged, not yet committed) or, on a leader,
/// ahead of it (committed on followers' ACKs first): either way the log files from the one
/// holding the snapshot's zxid onwards replay the rest.</item>
/// <item>DatadirCleanupManager / PurgeTxnLog: every autopurge.purgeInterval, the newest
/// autopurge.snapRetainCount snapshots and the logs they need are kept.</item>
/// </list>
/// A TRUNC or a SNAP from the leader replaces the tree; a snapshot serialized before that is not
/// written (<see cref="_snapGeneration"/>), so no snapshot of a discarded history reaches the disk.
/// </summary>
public sealed partial class LearnerStore
{
    private readonly Random _snapRandom = new();
    private int _txnsSinceRoll;
    private long _bytesAtRoll;
    private int _snapRoll = -1;
    private long _sizeRoll;
    /// <summary>Held while snapshot files are written, purged or cut by TRUNC.</summary>
    private readonly object _files = new();
    /// <summary>Bumped (on the server loop, or under the store lock) whenever the tree is replaced.</summary>
    private long _snapGeneration;
    private Task _snapshotTask = Task.CompletedTask;
    private Action<string>? _snapLog;
    /// <summary>The zxid of the newest snapshot this member wrote or recovered from (-1: none).</summary>
    private long _lastSnapshotZxid = -1;

    /// <summary>Periodic snapshots written since start (tests, figures).</summary>
    public int PeriodicSnapshots => Volatile.Read(ref _periodicSnapshots);
    private int _periodicSnapshots;
    /// <summary>Periodic snapshots skipped because the previous one was still being taken.</summary>
    public int SnapshotsSkipped { get; private set; }

    private void ResetSnapshotStats()
    {
        _txnsSinceRoll = 0;
        _bytesAtRoll = _log?.AppendedBytes ?? 0;
        int half = Math.Max(1, _config.SnapCount / 2);
        _snapRoll = _snapRandom.Next(half);
        long sizeHalf = _config.SnapSizeLimitInKb * 1024 / 2;
        _sizeRoll = sizeHalf > 0 ? _snapRandom.NextInt64(sizeHalf) : 0;
    }

    /// <summary>Upstream shouldSnapshot, after a txn was appended (on the thread that logs).</summary>
    private void AfterLogged()
    {
        if (_log is null) return;
        if (_snapRoll < 0) ResetSnapshotStats();
        _txnsSinceRoll++;
        long sizeLimit = _config.SnapSizeLimitInKb * 1024;
        bool bySize = sizeLimit > 0 && _log.AppendedBytes - _bytesAtRoll > sizeLimit / 2 + _sizeRoll;
        if (_txnsSinceRoll <= _config.SnapCount / 2 + _snapRoll && !bySize) return;
        ResetSnapshotStats();
        lock (_gate) _log.Roll();
        if (!_snapshotTask.IsCompleted)
        {
            SnapshotsSkipped++;
            _snapLog?.Invoke("snapshot: too busy to snap, skipping");
            return;
        }
        _snapshotTask = Task.Factory.StartNew(TakePeriodicSnapshot, TaskCreationOptions.LongRunning);
    }

    /// <summary>Upstream ZooKeeperServer.takeSnapshot, on its own thread.</summary>
    private void TakePeriodicSnapshot()
    {
        try
        {
            (ArraySegment<byte> Bytes, long Zxid, long Generation) Serialize()
            {
                Dictionary<long, int> sessions;
                lock (_gate) sessions = new Dictionary<long, int>(Sessions);
                return (SnapshotFile.Serialize(Tree, sessions, _config.DigestEnabled), Tree.LastProcessedZxid, Interlocked.Read(ref _snapGeneration));
            }
            var snap = _server is not null ? _server.RunOnLoopAsync(Serialize).GetAwaiter().GetResult() : SerializeLocked();
            (ArraySegment<byte> Bytes, long Zxid, long Generation) SerializeLocked() { lock (_gate) return Serialize(); }
            lock (_files)
            {
                if (snap.Generation != Interlocked.Read(ref _snapGeneration)) return; // the tree was replaced meanwhile
                // nothing was committed since the last snapshot (a burst of proposals logged ahead
                // of their commits): that snapshot already holds this state
                if (snap.Zxid == Interlocked.Read(ref _lastSnapshotZxid)) return;
                long start = System.Diagnostics.Stopwatch.GetTimestamp();
                SnapshotFile.WriteBytes(Path.Combine(_config.SnapDir, ZkFiles.SnapName(snap.Zxid)), snap.Bytes, _config.ForceSync);
                _server?.Metrics.SnapshotTime.Add((long)System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            }
            Interlocked.Exchange(ref _lastSnapshotZxid, snap.Zxid);
            Interlocked.Increment(ref _periodicSnapshots);
        }
        catch (ObjectDisposedException) { }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // upstream: "Unexpected exception" logged; the member keeps serving and snaps again later
            _snapLog?.Invoke("snapshot: periodic snapshot failed: " + e.Message);
        }
    }

    /// <summary>The tree is being replaced (TRUNC reload, SNAP load): a snapshot serialized before
    /// this must not be written. Call where the tree is replaced (server loop or store lock).</summary>
    private void TreeReplaced() => Interlocked.Increment(ref _snapGeneration);

    /// <summary>Upstream PurgeTxnLog.purge on this member's dataDir (DatadirCleanupManager's task).</summary>
    public List<string> Purge()
    {
        if (!_persistent) return new List<string>();
        lock (_files) return PurgeTxnLog.Purge(_config.SnapDir, _config.LogDir, _config.AutopurgeSnapRetainCount);
    }

    /// <summary>Waits for a periodic snapshot being taken (tests; shutdown).</summary>
    public void WaitForSnapshot(TimeSpan timeout) => _snapshotTask.Wait(timeout);
}
