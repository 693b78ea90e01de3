using System.Globalization;
using Samsa.Keeper.Protocol;
using Samsa.Keeper.Protocol.Records;

namespace Samsa.Keeper.Server.Quorum;

/// <summary>
/// A quorum member's replicated state: the data tree, the global sessions with their timeouts,
/// the txn log and snapshots in ZooKeeper's format under dataDir/version-2, and the
/// acceptedEpoch/currentEpoch files upstream keeps beside the log (QuorumPeer.writeLongToFile:
/// the number in decimal, no newline). An empty dataDir keeps it all in memory (tests).
/// </summary>
public sealed partial class LearnerStore : IDisposable
{
    private readonly KeeperConfig _config;
    private readonly TxnLogWriter? _log;
    private readonly bool _persistent;
    private readonly object _gate = new();
    private readonly DataTree _ownTree = new();
    private readonly KeeperServer? _server;

    /// <summary>The replicated tree: the serving KeeperServer's when there is one (commits are then
    /// applied on its loop, with watches and client replies), otherwise a private one.</summary>
    public DataTree Tree => _server?.Tree ?? _ownTree;
    public Dictionary<long, int> Sessions { get; } = new();
    public long AcceptedEpoch { get; private set; }
    public long CurrentEpoch { get; private set; }
    /// <summary>The last zxid written to the txn log (or loaded from a snapshot).</summary>
    public long LastLoggedZxid { get; private set; }
    public long TxnsApplied { get; private set; }

    public LearnerStore(KeeperConfig config, Action<string> log, KeeperServer? server = null)
    {
        _config = config;
        _server = server;
        _persistent = !string.IsNullOrEmpty(config.DataDir);
        Tree.ExtendedTypesEnabled = config.ExtendedTypesEnabled;
        if (!_persistent) return;
        Directory.CreateDirectory(config.SnapDir);
        Directory.CreateDirectory(config.LogDir);
        AcceptedEpoch = ReadEpoch("acceptedEpoch");
        CurrentEpoch = ReadEpoch("currentEpoch");
        Recover(log);
        _log = new TxnLogWriter(config.LogDir, config.ForceSync, config.PreAllocSizeKb * 1024);
        _snapLog = log;
    }

    /// <summary>A consistent read of the tree (the follower thread applies commits under the same lock).</summary>
    public T Read<T>(Func<DataTree, T> f) { lock (_gate) return f(Tree); }

    private long ReadEpoch(string name)
    {
        string path = Path.Combine(_config.LogDir, name);
        if (!File.Exists(path)) return 0; // upstream starts a missing epoch file from the last zxid's epoch; a fresh dir has 0
        string text = File.ReadAllText(path).Trim();
        return long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out long v)
            ? v : throw new KeeperConfigException($"{path}: '{text}' is not an epoch");
    }

    private void WriteEpoch(string name, long value)
    {
        if (!_persistent) return;
        string path = Path.Combine(_config.LogDir, name), tmp = path + ".tmp";
        using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write))
        {
            fs.Write(System.Text.Encoding.ASCII.GetBytes(value.ToString(CultureInfo.InvariantCulture)));
            fs.Flush(true);
        }
        File.Move(tmp, path, true);
    }

    public void SetAcceptedEpoch(long e) { WriteEpoch("acceptedEpoch", e); AcceptedEpoch = e; }
    public void SetCurrentEpoch(long e) { WriteEpoch("currentEpoch", e); CurrentEpoch = e; }

    private void Recover(Action<string> log)
    {
        long snapZxid = -1;
        foreach (var f in Directory.GetFiles(_config.SnapDir, "snapshot.*")
                     .Select(f => (File: f, Zxid: ZkFiles.ZxidFromName(Path.GetFileName(f), "snapshot") ?? -1))
                     .Where(x => x.Zxid >= 0).OrderByDescending(x => x.Zxid))
        {
            if (!SnapshotFile.LooksValid(f.File)) continue;
            var (sessions, _) = SnapshotFile.Read(f.File, Tree);
            foreach (var (id, to) in sessions) Sessions[id] = to;
            snapZxid = f.Zxid;
            _lastSnapshotZxid = snapZxid;
            Tree.LastProcessedZxid = snapZxid;
            break;
        }
        LastLoggedZxid = Math.Max(snapZxid, 0);
        foreach (var t in TxnLogReader.Read(_config.LogDir, Math.Max(snapZxid, 0), _config.JuteMaxBuffer, log))
        {
            ApplyLocked(t.Hdr, t.Txn);
            LastLoggedZxid = t.Hdr.Zxid;
        }
    }

    /// <summary>Writes a proposal to the txn log and forces it to disk (the ACK that follows
    /// promises it is durable, as upstream's SyncRequestProcessor does before SendAckRequestProcessor).
    /// With <paramref name="sync"/> false it is only appended: <see cref="Flush"/> forces a batch (group commit).</summary>
    public void Log(TxnHeader hdr, IJuteRecord txn, TxnDigest? digest, bool sync = true)
    {
        if (_log is not null)
        {
            _log.Append(hdr, txn, digest);
            if (sync) _log.Commit();
        }
        LastLoggedZxid = Math.Max(LastLoggedZxid, hdr.Zxid);
        AfterLogged();
    }

    /// <summary>Forces what <see cref="Log"/> appended without syncing.</summary>
    public void Flush() => _log?.Commit();

    /// <summary>Before leading: applies every txn this member logged but never saw committed
    /// (proposals acked as a follower whose COMMIT did not arrive before the old leader went away).
    /// Upstream's Leader.lead starts with zk.loadData(), which replays the whole txn log, so such a
    /// proposal — possibly committed by the old quorum and acknowledged to its client — is
    /// committed by the new leader, and the election (which compared last *logged* zxids) chose a
    /// member that has it. Stops at a zxid gap and cuts the log there (see below). Returns how many
    /// were applied.</summary>
    public int ApplyLoggedNotCommitted(Action<string> log)
    {
        if (!_persistent || LastLoggedZxid <= Tree.LastProcessedZxid) return 0;
        // Proposals appended but not yet forced (group commit: a follower forces its batch only
        // before its next read would block) count in LastLoggedZxid, which the ACKEPOCH and the
        // election report, but sit in the writer's buffer where the log reader below does not see
        // them: force them first, as upstream's SyncRequestProcessor flushes what it holds when
        // following ends, before the database is fast-forwarded from the log. Without this a
        // follower stopped in mid-batch (fault_test.py pause-follower, Apache leader) reported
        // the batch's last zxid, the leader's DIFF started after it, and the batch never reached
        // its tree.
        Flush();
        int n = 0;
        long last = Tree.LastProcessedZxid;
        long gapAt = -1;
        foreach (var t in TxnLogReader.Read(_config.LogDir, Tree.LastProcessedZxid, _config.JuteMaxBuffer, log))
        {
            if (t.Hdr.Zxid <= Tree.LastProcessedZxid) continue;
            // upstream Learner.enforceContinuousProposal: within an epoch the zxids follow each
            // other; a hole means txns this member never logged, and applying past it would build
            // a history no quorum has. A new epoch may start anywhere (upstream only warns).
            if (ZabType.EpochOf(t.Hdr.Zxid) == ZabType.EpochOf(last) && t.Hdr.Zxid != last + 1)
            {
                log($"zab: txn log has 0x{t.Hdr.Zxid:x} after 0x{last:x} (expected 0x{last + 1:x}); not applying past the gap");
                gapAt = last;
                break;
            }
            if (ZabType.EpochOf(t.Hdr.Zxid) != ZabType.EpochOf(last) && last != 0)
                log($"zab: txn log moves to a new epoch at 0x{t.Hdr.Zxid:x} after 0x{last:x}");
            Apply(t.Hdr, t.Txn);
            last = t.Hdr.Zxid;
            n++;
        }
        if (gapAt >= 0)
        {
            // cut the log at the gap, so the last logged zxid (reported in ACKEPOCH and in election
            // votes) is the last applied one and the leader's DIFF/SNAP fills the rest
            TruncateLog(gapAt, log);
        }
        return n;
    }

    /// <summary>Applies a committed txn to the tree and the session table.</summary>
    public void Apply(TxnHeader hdr, IJuteRecord txn) => ApplyAsync([(hdr, txn)]).GetAwaiter().GetResult();

    /// <summary>Applies a run of committed txns, in order, to the tree and the session table: one
    /// trip to the serving KeeperServer's loop for all of them (which fires their watches and
    /// answers their clients). The caller waits for the task before applying anything else; the
    /// session table is already updated when this returns.</summary>
    public Task ApplyAsync(IReadOnlyList<(TxnHeader Hdr, IJuteRecord Txn)> txns)
    {
        if (txns.Count == 0) return Task.CompletedTask;
        if (_server is not null)
        {
            lock (_gate) foreach (var (hdr, txn) in txns) Bookkeep(hdr, txn);
            TxnsApplied += txns.Count;
            return _server.ApplyCommittedAsync(txns);
        }
        lock (_gate) foreach (var (hdr, txn) in txns) ApplyLocked(hdr, txn);
        return Task.CompletedTask;
    }

    private void Bookkeep(TxnHeader hdr, IJuteRecord txn)
    {
        switch (hdr.Type)
        {
            case OpCode.CreateSession when txn is CreateSessionTxn cs: Sessions[hdr.ClientId] = cs.TimeOut; break;
            case OpCode.CloseSession: Sessions.Remove(hdr.ClientId); break;
        }
    }

    private void ApplyLocked(TxnHeader hdr, IJuteRecord txn)
    {
        Bookkeep(hdr, txn);
        Tree.ProcessTxn(hdr, txn);
        Tree.Triggers.Clear(); // no local watchers yet: the member does not serve clients
        TxnsApplied++;
    }

    /// <summary>Replaces the state with the snapshot a leader streams after SNAP.</summary>
    public void LoadSnapshot(ZabReader reader, long zxid)
    {
        void Load()
        {
            lock (_gate)
            {
                TreeReplaced();
                var sessions = reader.ReadSnapshot(Tree);
                Sessions.Clear();
                foreach (var (id, to) in sessions) Sessions[id] = to;
                Tree.LastProcessedZxid = zxid;
                LastLoggedZxid = zxid;
            }
        }
        // a serving tree is replaced on the server's loop, so no client read sees it half loaded
        if (_server is not null) _server.RunOnLoopAsync(() => { Load(); return 0; }).GetAwaiter().GetResult();
        else Load();
    }

    /// <summary>Upstream takes a snapshot at NEWLEADER after a SNAP sync, so a restart does not need
    /// the leader's stream again.</summary>
    public void TakeSnapshot()
    {
        if (!_persistent) return;
        lock (_files)
        lock (_gate)
        {
            _log!.Roll();
            SnapshotFile.Write(Path.Combine(_config.SnapDir, ZkFiles.SnapName(Tree.LastProcessedZxid)), Tree,
                new Dictionary<long, int>(Sessions), _config.ForceSync, _config.DigestEnabled);
            _lastSnapshotZxid = Tree.LastProcessedZxid;
            ResetSnapshotStats();
        }
    }

    public void Dispose()
    {
        try { WaitForSnapshot(TimeSpan.FromSeconds(30)); } catch (AggregateException) { }
        _log?.Dispose();
    }
}
