using System.Diagnostics;
using System.Threading.Channels;
using Samsa.Keeper.Protocol;
using Samsa.Keeper.Protocol.Records;

namespace Samsa.Keeper.Server;

/// <summary>A live session (upstream SessionTrackerImpl.SessionImpl).</summary>
public sealed class Session
{
    public long Id;
    public int Timeout;
    public long ExpireTime;
    public bool Closing;
    public ServerConnection? Owner;
    /// <summary>A local session of a quorum member (KeeperServer.LocalSessions): no txn created it.</summary>
    public bool Local;
    /// <summary>Created or taken over while the member served read-only clients (KeeperServer.ReadOnly).</summary>
    public bool ReadOnlyMode;
}

// Serves the client protocol of Apache ZooKeeper 3.9 (every client opcode, see KeeperServer.Requests)
// as a standalone server, on-disk format of 3.8 (version-2 txn logs and snapshots).
// Known differences from upstream:
//  - getChildren lists children in ordinal order (upstream: hash-set order; clients must not rely on it).
//  - Digest mismatches found on recovery are counted and logged (as upstream logs them); neither
//    side refuses to start over one.
//  - Recovery follows 3.8's FileTxnSnapLog.restore (see TxnLogReader): damaged logs refuse the
//    start, partial txns and snapshot fallbacks are logged. The Keeper logs more than upstream
//    (file and offset in every message, a torn tail, one summary line) and offers
//    `samsa keeper --recover-truncate` where upstream has only its offline TxnLogToolkit.
//  - gtmk/stmk keep a trace mask per server (upstream: ZooTrace, per JVM) that traces nothing.
//  - Four-letter words report a version "3.9.3-samsa-keeper"; mntr lists a subset of upstream's keys;
//    the admin server answers a subset of upstream's commands and fields.
//  - SASL is DIGEST-MD5 only (no GSSAPI/Kerberos); see KeeperSecurity and KeeperServer.Sasl.
//  - No request throttling; local sessions and read-only mode exist in an ensemble only, as upstream;
//    reconfig answers ReconfigDisabled as a standalone upstream with reconfigEnabled=false does.
//  - Session ids use wall-clock milliseconds where upstream uses a monotonic clock (same layout,
//    server id 1 in the top byte).

/// <summary>The Keeper: a standalone ZooKeeper server. One loop owns all state and handles, in
/// arrival order, handshakes, requests, session expiry and the container/TTL reaper. Each batch of
/// work is applied, its txns appended to the log and fsynced (group commit), and only then are
/// its replies and watch events released (upstream PrepRequestProcessor → SyncRequestProcessor →
/// FinalRequestProcessor, collapsed into one thread).</summary>
public sealed partial class KeeperServer : IAsyncDisposable
{
    private readonly Channel<object> _work = Channel.CreateUnbounded<object>(new UnboundedChannelOptions { SingleReader = true });
    private readonly List<(ServerConnection Conn, byte[]? Frame, bool Close)> _outputs = new();
    private readonly Dictionary<long, Session> _sessions = new();
    private readonly HashSet<ServerConnection> _connections = new();
    private readonly Auth _auth;
    private readonly Random _random = new();
    private TxnLogWriter? _log;
    private Task? _loop;
    private Timer? _timer;
    private long _nextSessionId;
    private long _lastZxid;
    private int _txnsSinceSnapshot;
    private int _snapRoll;
    private long _lastContainerCheck, _lastPurge;

    private bool _disposed;
    private long _internalErrors;

    /// <summary>Unexpected exceptions caught by the loop (each closed the offending connection).</summary>
    public long InternalErrors => Interlocked.Read(ref _internalErrors);

    public KeeperConfig Config { get; }
    public KeeperSecurity Security { get; }
    public DataTree Tree { get; } = new();
    public DateTimeOffset StartedAt { get; } = DateTimeOffset.UtcNow;
    public ServerStats Stats { get; } = new();
    /// <summary>Upstream's ServerMetrics summaries and the mntr/Prometheus keys (KeeperMetrics).</summary>
    public KeeperMetrics Metrics { get; } = new();

    public KeeperServer(KeeperConfig config)
    {
        Config = config;
        Tree.ExtendedTypesEnabled = config.ExtendedTypesEnabled;
        Security = KeeperSecurity.Create(config);
        _auth = new Auth { SuperDigest = config.SuperDigest, SkipAcl = config.SkipAcl, Schemes = Security.Schemes, X509SuperUser = config.X509SuperUser };
        // Upstream SessionTrackerImpl.initializeNextSessionId; a standalone ZooKeeperServer uses
        // server id 1 (createSessionTrackerServerId), so ids start 0x01.
        _nextSessionId = (long)((ulong)(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() << 24) >> 8) | (1L << 56);
    }

    /// <summary>Upstream ZooTrace's text trace level (gtmk/stmk): CLIENT_REQUEST | SERVER_PACKET |
    /// SESSION | WARNING = 306 at start. The Keeper keeps it for the two words and traces nothing by it.</summary>
    public long TraceMask = 306;

    public long LastProcessedZxid => Tree.LastProcessedZxid;
    public int SessionCount => _sessions.Count;

    /// <summary>Recovers from dataDir (snapshot + log replay), takes a fresh snapshot as upstream
    /// does at startup, and starts the loop.</summary>
    public void Start()
    {
        // a follower's data directory belongs to its quorum LearnerStore, which has recovered the tree
        if (!string.IsNullOrEmpty(Config.DataDir) && _leaderLink is null)
        {
            Recover();
            _log = new TxnLogWriter(Config.LogDir, Config.ForceSync, Config.PreAllocSizeKb * 1024) { Synced = Metrics.FsyncTime.Add };
            TakeSnapshot();
        }
        _lastZxid = Tree.LastProcessedZxid;
        _snapRoll = _random.Next(Math.Max(1, Config.SnapCount / 2));
        long now = Now;
        foreach (var s in _sessions.Values) Touch(s, now);
        _lastContainerCheck = now;
        _lastPurge = now;
        _loop = Task.Run(LoopAsync);
        int period = Math.Max(10, Math.Min(Config.TickTime / 2, 500));
        _timer = new Timer(_ => _work.Writer.TryWrite(TickItem.Instance), null, period, period);
    }

    private static long Now => Environment.TickCount64;
    private static long WallNow => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    // ------------------------------------------------------------------ recovery / snapshots

    /// <summary>What recovery said (also written to stderr): snapshot fallbacks, partial txns,
    /// --recover-truncate's changes and the summary of what was loaded.</summary>
    public List<string> RecoveryLog { get; } = new();

    private void Note(string line)
    {
        RecoveryLog.Add(line);
        Console.Error.WriteLine("keeper: " + line);
    }

    /// <summary>Upstream FileTxnSnapLog.restore. Damage in the txn log stops the start (as in
    /// 3.8) unless <see cref="KeeperConfig.RecoverTruncate"/> asks to cut the log at the damage,
    /// in which case recovery runs again on the shortened log.</summary>
    private void Recover()
    {
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                RecoverOnce();
                return;
            }
            catch (TxnLogDamageException d) when (Config.RecoverTruncate && attempt < 1000)
            {
                Note($"txn log damage: {d.File}: {d.Reason} at offset {d.Offset}");
                foreach (var line in TxnLogReader.TruncateAt(Config.LogDir, d)) Note(line);
                Tree.Reset();
                _sessions.Clear();
                DigestsChecked = DigestMismatches = 0;
            }
        }
    }

    private void RecoverOnce()
    {
        string snapDir = Config.SnapDir;
        Directory.CreateDirectory(snapDir);
        Directory.CreateDirectory(Config.LogDir);
        var snaps = Directory.GetFiles(snapDir, "snapshot.*")
            .Select(f => (File: f, Zxid: ZkFiles.ZxidFromName(Path.GetFileName(f), "snapshot")))
            .Where(x => x.Zxid is not null).OrderByDescending(x => x.Zxid).ToList();
        // Upstream FileSnap.findNValidSnapshots(100): the newest snapshots whose tail looks whole,
        // then FileSnap.deserialize tries them newest first until one reads with a good CRC.
        var candidates = new List<(string File, long Zxid)>();
        var skipped = new List<string>();
        foreach (var s in snaps)
        {
            if (candidates.Count == 100) break;
            string? why = SnapshotFile.InvalidReason(s.File);
            if (why is null) { candidates.Add((s.File, s.Zxid!.Value)); continue; }
            Note($"invalid snapshot {Path.GetFileName(s.File)}: {why}; skipped");
            skipped.Add(Path.GetFileName(s.File));
        }
        Dictionary<long, int>? sessions = null;
        (long Zxid, long Digest)? snapDigest = null;
        string? loaded = null;
        foreach (var (file, zxid) in candidates)
        {
            try
            {
                (sessions, snapDigest) = SnapshotFile.Read(file, Tree);
                Tree.LastProcessedZxid = zxid;
                loaded = Path.GetFileName(file);
                break;
            }
            catch (Exception e) when (e is InvalidDataException or JuteException or IOException)
            {
                // upstream: "problem reading snap file {}" and on to the previous snapshot
                Note($"problem reading snapshot {Path.GetFileName(file)}: {e.Message}; trying the previous one");
                skipped.Add(Path.GetFileName(file));
                Tree.Reset();
            }
        }
        if (loaded is null && candidates.Count > 0)
            throw new InvalidDataException($"Not able to find valid snapshots in {snapDir} (tried {string.Join(", ", skipped)})");
        if (loaded is null && TxnLogReader.LogFiles(Config.LogDir).Count > 0)
        {
            // Upstream FileTxnSnapLog.restore (ZOOKEEPER-3056): logs without any snapshot mean
            // lost data, unless zookeeper.snapshot.trust.empty says the logs are the whole history.
            string logs = string.Join(", ", TxnLogReader.LogFiles(Config.LogDir).Select(l => Path.GetFileName(l.File)));
            if (!Config.SnapshotTrustEmpty)
                throw new InvalidDataException($"No snapshot found in {snapDir}, but there are log entries ({logs}). Something is broken! "
                    + (skipped.Count > 0 ? $"(unusable snapshots: {string.Join(", ", skipped)}) " : "")
                    + "Set snapshot.trust.empty=true in zoo.cfg to rebuild the tree from the logs alone");
            Note($"No snapshot found in {snapDir}, but there are log entries ({logs}); replaying them alone (snapshot.trust.empty=true). This should only be allowed during upgrading");
        }
        if (loaded is not null && skipped.Count > 0)
            Note($"the newest snapshot {skipped[0]} is unusable; recovering from {loaded} and the txn log after it");
        if (sessions is not null)
            foreach (var (id, to) in sessions) _sessions[id] = new Session { Id = id, Timeout = to };
        // Digests are checked as upstream checks them: a mismatch is reported, not fatal. A fuzzy
        // snapshot's digest is taken at a zxid at or after the snapshot's; it is compared when the
        // replay reaches that zxid, and txn digests only count from there on.
        long snapZxid = Tree.LastProcessedZxid;
        long checkFrom = snapZxid;
        (long Zxid, long Digest)? pendingSnapDigest = null;
        if (snapDigest is { } sd)
        {
            if (sd.Zxid == snapZxid) CheckDigest(sd.Zxid, sd.Digest);
            else if (sd.Zxid > snapZxid) pendingSnapDigest = sd;
            checkFrom = Math.Max(checkFrom, sd.Zxid);
        }
        // upstream DataTree.logZxidDigest records nothing while a fuzzy snapshot's digest is pending
        Tree.RecordDigests = pendingSnapDigest is null;
        int replayed = 0;
        long highest = snapZxid;
        foreach (var (hdr, txn, digest) in TxnLogReader.Read(Config.LogDir, snapZxid, Config.JuteMaxBuffer, Note))
        {
            // upstream fastForwardFromEdits logs a zxid going backwards and applies the txn anyway
            if (hdr.Zxid < highest && highest != 0) Note($"{highest}(highestZxid) > {hdr.Zxid}(next log) for type {hdr.Type}");
            else highest = hdr.Zxid;
            if (hdr.Type == OpCode.CreateSession) _sessions[hdr.ClientId] = new Session { Id = hdr.ClientId, Timeout = ((CreateSessionTxn)txn).TimeOut };
            else if (hdr.Type == OpCode.CloseSession) _sessions.Remove(hdr.ClientId);
            Tree.ProcessTxn(hdr, txn);
            if (pendingSnapDigest is { } fuzzy && hdr.Zxid == fuzzy.Zxid) { CheckDigest(hdr.Zxid, fuzzy.Digest); Tree.RecordDigests = true; }
            if (digest is not null && hdr.Zxid > checkFrom && digest.Version == DataTree.DigestVersion) CheckDigest(hdr.Zxid, digest.TreeDigest);
            replayed++;
        }
        Tree.RecordDigests = true;
        Tree.Triggers.Clear();
        TxnsReplayed = replayed;
        // upstream logs "Snapshot loaded in N ms, highest zxid is 0x.." and "N txns loaded in N ms"
        if (loaded is not null || replayed > 0)
            Note($"recovered {(loaded is null ? "without a snapshot" : $"snapshot {loaded} (zxid 0x{snapZxid:x})")}, "
                + $"{replayed} txns replayed from the log, last zxid 0x{Tree.LastProcessedZxid:x}, {Tree.NodeCount} znodes, {_sessions.Count} sessions");
        // ephemerals of sessions that no longer exist are removed by their closeSession txn;
        // sessions that exist are given a fresh timeout and expire if their client does not return.
    }

    /// <summary>Txns replayed from the log by the last recovery.</summary>
    public int TxnsReplayed { get; private set; }

    public long LastSnapshotZxid { get; private set; } = -1;
    public long LastSnapshotTime { get; private set; }

    /// <summary>Digest mismatches found while recovering (upstream logs "Digests are not matching").</summary>
    public int DigestMismatches { get; private set; }

    /// <summary>Digests from snapshot and log compared while recovering.</summary>
    public int DigestsChecked { get; private set; }

    private void CheckDigest(long zxid, long expected)
    {
        DigestsChecked++;
        if (Tree.TreeDigest == expected) return;
        DigestMismatches++;
        Console.Error.WriteLine($"keeper: digest mismatch at zxid 0x{zxid:x}: file says {expected}, tree has {Tree.TreeDigest}");
    }

    private void TakeSnapshot()
    {
        if (_log is null) return;
        long snapStart = System.Diagnostics.Stopwatch.GetTimestamp();
        _log.Roll();
        LastSnapshotZxid = Tree.LastProcessedZxid;
        LastSnapshotTime = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var sessions = _sessions.Values.Where(s => !s.Closing).ToDictionary(s => s.Id, s => s.Timeout);
        SnapshotFile.Write(Path.Combine(Config.SnapDir, ZkFiles.SnapName(Tree.LastProcessedZxid)), Tree, sessions, Config.ForceSync, Config.DigestEnabled);
        _txnsSinceSnapshot = 0;
        _snapRoll = _random.Next(Math.Max(1, Config.SnapCount / 2));
        Metrics.SnapshotTime.Add((long)System.Diagnostics.Stopwatch.GetElapsedTime(snapStart).TotalMilliseconds);
    }

    /// <summary>Upstream PurgeTxnLog: keep the newest snapRetainCount snapshots and the logs they need.</summary>
    public void Purge()
    {
        if (string.IsNullOrEmpty(Config.DataDir)) return;
        PurgeTxnLog.Purge(Config.SnapDir, Config.LogDir, Config.AutopurgeSnapRetainCount);
    }

    // ------------------------------------------------------------------ the loop

    private sealed class TickItem { public static readonly TickItem Instance = new(); }
    private sealed record FrameItem(ServerConnection Conn, byte[] Frame, long Received);
    private sealed record ClosedItem(ServerConnection Conn);
    private sealed record ActionItem(Action Action);

    public void Enqueue(ServerConnection conn, byte[] frame)
    {
        Interlocked.Increment(ref conn.PacketsReceived);
        Interlocked.Increment(ref Stats.PacketsReceived);
        Interlocked.Increment(ref conn.OutstandingRequests);
        _work.Writer.TryWrite(new FrameItem(conn, frame, Stopwatch.GetTimestamp()));
    }

    public void ConnectionClosed(ServerConnection conn) => _work.Writer.TryWrite(new ClosedItem(conn));

    /// <summary>Runs <paramref name="f"/> on the loop (for four-letter words and tests that read state).</summary>
    public Task<T> RunOnLoopAsync<T>(Func<T> f)
    {
        var tcs = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_work.Writer.TryWrite(new ActionItem(() =>
        {
            try { tcs.SetResult(f()); } catch (Exception e) { tcs.SetException(e); }
        }))) tcs.SetException(new ObjectDisposedException(nameof(KeeperServer)));
        return tcs.Task;
    }

    public void RegisterConnection(ServerConnection c) => _work.Writer.TryWrite(new ActionItem(() => _connections.Add(c)));

    internal void QueueOutput(ServerConnection conn, byte[] frame) => _outputs.Add((conn, frame, false));
    private void QueueClose(ServerConnection conn) => _outputs.Add((conn, null, true));

    private async Task LoopAsync()
    {
        var reader = _work.Reader;
        try
        {
            while (await reader.WaitToReadAsync().ConfigureAwait(false))
            {
                int n = 0;
                while (n < 1000 && reader.TryRead(out var item))
                {
                    n++;
                    try { Handle(item); }
                    catch (Exception e) when (e is not OutOfMemoryException)
                    {
                        Interlocked.Increment(ref _internalErrors);
                        // One line (the exception's type, message and the frame it was thrown in), not
                        // a stack trace; the connection whose request it was is closed. (The frame is
                        // read from the trace text: TargetSite needs metadata trimming removes.)
                        string where = e.StackTrace?.Split('\n', 2)[0].Trim() ?? "";
                        Console.Error.WriteLine($"keeper: internal error handling {item.GetType().Name}: {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")} ({where})");
                        if (item is FrameItem fi) QueueClose(fi.Conn);
                    }
                }
                _log?.Commit();
                foreach (var (conn, frame, close) in _outputs)
                {
                    if (close) conn.CloseAfterSend();
                    else conn.Send(frame!);
                }
                _outputs.Clear();
                if (_log is not null && _txnsSinceSnapshot > Config.SnapCount / 2 + _snapRoll) TakeSnapshot();
            }
        }
        finally
        {
            _log?.Commit();
        }
    }

    private void Handle(object item)
    {
        switch (item)
        {
            case FrameItem f:
                Interlocked.Decrement(ref f.Conn.OutstandingRequests);
                if (f.Conn.Closed) return;
                if (!f.Conn.Handshaken) HandleConnect(f.Conn, f.Frame);
                else HandleRequest(f.Conn, f.Frame, f.Received);
                break;
            case ClosedItem c:
                OnClosed(c.Conn);
                break;
            case TickItem:
                OnTick();
                break;
            case ActionItem a:
                a.Action();
                break;
        }
    }

    private void OnClosed(ServerConnection conn)
    {
        conn.Closed = true;
        _connections.Remove(conn);
        Tree.DataWatches.RemoveWatcher(conn);
        Tree.ChildWatches.RemoveWatcher(conn);
        _readOnlyConns.Remove(conn);
        if (conn.SessionId != 0 && _sessions.TryGetValue(conn.SessionId, out var s) && s.Owner == conn) s.Owner = null;
    }

    // ------------------------------------------------------------------ sessions

    private long RoundToInterval(long time) => (time / Config.TickTime + 1) * Config.TickTime;

    /// <summary>Upstream ExpiryQueue: expiry times are rounded up to the next tick boundary.</summary>
    private void Touch(Session s, long now) => s.ExpireTime = RoundToInterval(now + s.Timeout);

    private void OnTick()
    {
        // a member's global sessions expire, and its containers and TTL nodes are reaped, at the
        // leader; local and read-only sessions expire here
        if (_leaderLink is not null) { OnQuorumTick(Now); return; }
        long now = Now;
        foreach (var s in _sessions.Values.Where(s => !s.Closing && s.ExpireTime <= now).ToList())
        {
            Stats.ExpiredSessions++;
            CloseSession(s, cxid: 0);
        }
        if (now - _lastContainerCheck >= Config.ContainerCheckIntervalMs)
        {
            _lastContainerCheck = now;
            ReapContainersAndTtls();
        }
        if (Config.AutopurgeIntervalMs > 0 && now - _lastPurge >= Config.AutopurgeIntervalMs)
        {
            _lastPurge = now;
            try { Purge(); } catch (IOException e) { Console.Error.WriteLine("keeper: purge failed: " + e.Message); }
        }
    }

    /// <summary>Logs a closeSession txn (removing the session's ephemerals) and drops its connection.</summary>
    private void CloseSession(Session s, int cxid)
    {
        s.Closing = true;
        var paths = Tree.GetEphemerals(s.Id).ToList();
        var hdr = new TxnHeader { ClientId = s.Id, Cxid = cxid, Zxid = ++_lastZxid, Time = WallNow, Type = OpCode.CloseSession };
        var txn = new CloseSessionTxn { Paths2Delete = paths };
        LogAndApply(hdr, txn);
        _sessions.Remove(s.Id);
        if (s.Owner is not null)
        {
            QueueClose(s.Owner);
            s.Owner = null;
        }
    }

    /// <summary>Upstream ContainerManager: containers that have had children and have none now,
    /// and TTL nodes without children untouched for longer than their TTL, are deleted.</summary>
    public void ReapContainersAndTtls()
    {
        long wall = WallNow;
        foreach (var p in ReapCandidates(wall))
        {
            var hdr = new TxnHeader { ClientId = 0, Cxid = 0, Zxid = ++_lastZxid, Time = wall, Type = OpCode.DeleteContainer };
            LogAndApply(hdr, new DeleteTxn { Path = p });
        }
    }

    /// <summary>Upstream ContainerManager.getCandidates on the committed tree: empty containers that
    /// once had a child, and childless TTL nodes not modified for longer than their TTL. Call on
    /// the loop (a quorum leader asks for them there and proposes their deletion).</summary>
    public List<string> ReapCandidates(long wall)
    {
        var victims = new List<string>();
        foreach (var p in Tree.Containers)
        {
            var n = Tree.GetNode(p);
            if (n is not null && n.Children.Count == 0 && n.Cversion > 0) victims.Add(p);
        }
        foreach (var p in Tree.Ttls)
        {
            var n = Tree.GetNode(p);
            if (n is null || n.Children.Count != 0) continue;
            long ttl = EphemeralOwner.TtlOf(n.EphemeralOwner);
            if (ttl > 0 && wall - n.Mtime > ttl) victims.Add(p);
        }
        return victims;
    }

    /// <summary>Applies a txn, then logs it with the resulting tree digest. Nothing it causes is
    /// visible to clients before the batch's fsync, so applying first is safe.</summary>
    private ProcessTxnResult LogAndApply(TxnHeader hdr, IJuteRecord txn)
    {
        var rc = Tree.ProcessTxn(hdr, txn);
        AppendToLog(hdr, txn);
        DispatchTriggers();
        return rc;
    }

    private void AppendToLog(TxnHeader hdr, IJuteRecord txn)
    {
        _log?.Append(hdr, txn, Config.DigestEnabled ? new TxnDigest { Version = DataTree.DigestVersion, TreeDigest = Tree.TreeDigest } : null);
        _txnsSinceSnapshot++;
    }

    private void DispatchTriggers()
    {
        foreach (var t in Tree.Triggers)
        {
            var mgr = t.ChildManager ? Tree.ChildWatches : Tree.DataWatches;
            foreach (var w in mgr.Trigger(t.Path, t.EventType, t.Suppress)) w.Process(t.EventType, t.Path, t.Zxid);
        }
        Tree.Triggers.Clear();
    }

    /// <summary>Upstream generatePasswd: java.util.Random seeded with sessionId ^ 0xB3415C00, 16 bytes.</summary>
    public static byte[] GeneratePasswd(long sessionId)
    {
        var b = new byte[16];
        long seed = ((sessionId ^ 0xB3415C00L) ^ 0x5DEECE66DL) & ((1L << 48) - 1);
        int NextInt()
        {
            seed = (seed * 0x5DEECE66DL + 0xBL) & ((1L << 48) - 1);
            return (int)((ulong)seed >> 16);
        }
        for (int i = 0; i < b.Length;)
        {
            int rnd = NextInt();
            for (int n = Math.Min(b.Length - i, 4); n-- > 0; rnd >>= 8) b[i++] = (byte)rnd;
        }
        return b;
    }

    /// <summary>ZooKeeperServer.processConnectRequest: create or revive a session.</summary>
    private void HandleConnect(ServerConnection conn, byte[] frame)
    {
        ConnectRequest req;
        bool hasReadOnly;
        try
        {
            var r = new JuteReader(frame, Config.JuteMaxBuffer);
            req = new ConnectRequest
            {
                ProtocolVersion = r.ReadInt(), LastZxidSeen = r.ReadLong(), TimeOut = r.ReadInt(),
                SessionId = r.ReadLong(), Passwd = r.ReadBuffer(),
            };
            hasReadOnly = r.Remaining >= 1;
            if (hasReadOnly) req.ReadOnly = r.ReadBool();
        }
        catch (JuteException e)
        {
            // upstream: "Closing connection to ..." after a connect request it cannot read
            Console.Error.WriteLine($"keeper: closing connection from {conn.RemoteEndPoint}: unreadable connect request ({e.Message})");
            QueueClose(conn);
            return;
        }
        if (req.LastZxidSeen > Tree.LastProcessedZxid)
        {
            // the client has seen a newer state than ours: refuse, it must try another server
            // (upstream logs "Refusing session request for client ... as it has seen zxid ...")
            Console.Error.WriteLine($"keeper: Refusing session request for client {conn.RemoteEndPoint} as it has seen zxid 0x{req.LastZxidSeen:x} our last zxid is 0x{Tree.LastProcessedZxid:x} client must try another server");
            QueueClose(conn);
            return;
        }
        int timeout = Math.Min(Math.Max(req.TimeOut, Config.EffectiveMinSessionTimeout), Config.EffectiveMaxSessionTimeout);
        if (_leaderLink is not null) { ConnectAsFollower(conn, req, timeout, hasReadOnly); return; }
        conn.Handshaken = true;
        conn.SessionTimeout = timeout;
        if (req.SessionId == 0)
        {
            long id = _nextSessionId++;
            if (id == EphemeralOwner.Container) id = _nextSessionId++;
            var s = new Session { Id = id, Timeout = timeout, Owner = conn };
            _sessions[id] = s;
            Touch(s, Now);
            conn.SessionId = id;
            var hdr = new TxnHeader { ClientId = id, Cxid = 0, Zxid = ++_lastZxid, Time = WallNow, Type = OpCode.CreateSession };
            LogAndApply(hdr, new CreateSessionTxn { TimeOut = timeout });
            SendConnectResponse(conn, timeout, id, GeneratePasswd(id), hasReadOnly);
            return;
        }
        // reconnect: the session moves to this connection; the old one is closed
        if (_sessions.TryGetValue(req.SessionId, out var existing) && !existing.Closing
            && req.Passwd is not null && req.Passwd.AsSpan().SequenceEqual(GeneratePasswd(req.SessionId)))
        {
            if (existing.Owner is not null && existing.Owner != conn)
            {
                Tree.DataWatches.RemoveWatcher(existing.Owner);
                Tree.ChildWatches.RemoveWatcher(existing.Owner);
                existing.Owner.Closed = true;
                QueueClose(existing.Owner);
            }
            existing.Owner = conn;
            existing.Timeout = timeout;
            Touch(existing, Now);
            conn.SessionId = existing.Id;
            SendConnectResponse(conn, timeout, existing.Id, GeneratePasswd(existing.Id), hasReadOnly);
        }
        else
        {
            // expired or unknown session, or a wrong password: timeout 0 tells the client its session is gone
            SendConnectResponse(conn, 0, 0, new byte[16], hasReadOnly);
            QueueClose(conn);
        }
    }

    private void SendConnectResponse(ServerConnection conn, int timeout, long sessionId, byte[] passwd, bool withReadOnly, bool readOnly = false)
    {
        var rsp = new ConnectResponse { ProtocolVersion = 0, TimeOut = timeout, SessionId = sessionId, Passwd = passwd, ReadOnly = readOnly };
        var bytes = rsp.ToBytes();
        // clients older than 3.4 neither send nor expect the readOnly byte
        QueueOutput(conn, withReadOnly ? bytes : bytes.AsSpan(0, bytes.Length - 1).ToArray());
    }

    public static byte[] Frame(ReplyHeader hdr, IJuteRecord? body)
    {
        var bytes = new byte[hdr.Size() + (body?.Size() ?? 0)];
        var w = new JuteWriter(bytes);
        hdr.Write(ref w);
        body?.Write(ref w);
        return bytes;
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        _disposed = true;
        _timer?.Dispose();
        _work.Writer.TryComplete();
        if (_loop is not null) await _loop.ConfigureAwait(false);
        foreach (var c in _connections) c.CloseAfterSend();
        _log?.Dispose();
    }

    /// <summary>Takes a snapshot now (tests; upstream's "snapshot" admin command).</summary>
    public Task SnapshotNowAsync() => RunOnLoopAsync(() => { _log?.Commit(); TakeSnapshot(); return 0; });

    public IReadOnlyCollection<ServerConnection> Connections => _connections;
    public IReadOnlyDictionary<long, Session> Sessions => _sessions;
}

/// <summary>Server-wide counters for srvr/stat/mntr.</summary>
public sealed class ServerStats
{
    public long PacketsReceived, PacketsSent, Requests, MinLatency = long.MaxValue, MaxLatency, TotalLatency, ExpiredSessions;

    public void Reset()
    {
        PacketsReceived = PacketsSent = Requests = MaxLatency = TotalLatency = 0;
        MinLatency = long.MaxValue;
    }

    public long AvgLatency => Requests == 0 ? 0 : TotalLatency / Requests;
}
