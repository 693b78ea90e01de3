using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Samsa.Keeper.Protocol;
using Samsa.Keeper.Protocol.Records;

namespace Samsa.Keeper.Server.Quorum;

/// <summary>
/// The leader's side of ZAB, as upstream's Leader/LearnerHandler (3.8), kept simple:
/// <list type="number">
/// <item>discovery: learners connect to our quorum port and send FOLLOWERINFO; once a quorum
/// (ourselves included) has, the new epoch is one past the highest acceptedEpoch
/// (getEpochToPropose); each learner gets LEADERINFO and answers ACKEPOCH; a learner whose state
/// is newer than ours makes us give up (waitForEpochAck's "Follower is ahead of the leader");</item>
/// <item>synchronization: DIFF when the learner has our last zxid or one in the committed log
/// kept in memory since we started leading (PROPOSAL/COMMIT pairs follow), TRUNC when it is
/// ahead, otherwise SNAP with the snapshot streamed after it ("BenWasHere" at the end); then
/// NEWLEADER; a quorum of NEWLEADER ACKs starts the broadcast and each learner gets UPTODATE;</item>
/// <item>broadcast, pipelined as upstream's processors: requests (learners' REQUEST packets and
/// our own clients') are prepared in batches against the prepared tree (the committed tree plus
/// every proposal in flight: upstream's outstandingChanges, KeeperServer.LeaderPrep) and proposed
/// to every synced follower without waiting (Pipeline); a log thread appends them and forces the
/// log once per batch (group commit), which is this leader's ACK (LogThread); a commit thread
/// commits proposals strictly in zxid order once a majority of voters ACKed each — this leader's
/// own ACK is one vote, so two followers' ACKs commit in a 3-member ensemble before this leader's
/// fsync ends, as upstream's tryToCommit — and applies every proposal committable at once in one
/// server-loop trip (CommitThread). A reconfig is prepared with nothing in
/// flight and committed before the next request is prepared.</item>
/// </list>
/// Observers (OBSERVERINFO instead of FOLLOWERINFO) go through the same discovery and sync, but get
/// no PROPOSAL: each commit reaches them as INFORM with the proposal's data (upstream
/// Leader.inform), their ACKs are ignored and they never count towards a quorum (upstream
/// isParticipant).
/// PING goes to learners every tick/2; their answers touch sessions, which expire here; a
/// learner silent for syncLimit ticks is dropped, and losing sight of a quorum ends leadership.
/// </summary>
public sealed partial class ZabLeader
{
    private readonly long _myId;
    private readonly QuorumConfig _quorum;
    private readonly KeeperConfig _config;
    private readonly LearnerStore _store;
    private readonly Action<string> _log;
    private readonly Action<long> _updateVote;
    private readonly KeeperServer _server;

    private readonly object _gate = new();
    private readonly Dictionary<long, long> _connectingEpochs = new();
    private readonly HashSet<long> _epochAcks = new();
    private readonly HashSet<long> _newLeaderAcks = new();
    private bool _epochDecided;
    private long _epoch = -1;
    private bool _broadcasting;
    private volatile Exception? _failure;

    /// <summary>Held while a request is proposed/committed and while a learner is synced, so a
    /// learner joins the forwarding set exactly at a commit boundary.</summary>
    private readonly object _bcast = new();
    private readonly List<LearnerHandler> _forwarding = new();
    private readonly List<LearnerHandler> _all = new();
    private long _counter;
    /// <summary>Committed proposals since leading began (for DIFF), after the tree's zxid then.</summary>
    private readonly List<(long Zxid, byte[] Data)> _committedLog = new();
    private long _logBase;
    private const int MaxCommittedLog = 500;

    private readonly HandoffQueue<Req> _requests = new();
    private readonly ConcurrentDictionary<long, long> _sessionDeadline = new();
    private readonly ConcurrentDictionary<long, bool> _expiring = new();

    private sealed record Req(LearnerHandler? Origin, long SessionId, int Cxid, int Type, byte[] Body, List<Id> Auth);

    public ZabLeader(long myId, QuorumConfig quorum, KeeperConfig config, LearnerStore store, Action<string> log, Action<long> updateVote, KeeperServer server)
    {
        _myId = myId; _quorum = quorum; _config = config; _store = store; _log = log; _updateVote = updateVote; _server = server;
    }

    /// <summary>Set once a quorum acknowledged NEWLEADER: the leader serves.</summary>
    public volatile bool Serving;
    public long Epoch => _epoch;
    public int SyncedFollowers => Volatile.Read(ref _forwardingView).Count(l => !l.IsObserver);
    /// <summary>A copy of <see cref="_forwarding"/> replaced (under the broadcast lock) at each change
    /// and read without it: the stats are read on the server loop (srvr, mntr), and the broadcast
    /// lock's holder waits for that loop while it prepares or applies a txn, so taking the lock
    /// there froze the leader (a deadlock tests/ensemble/fault_test.py found while it polled srvr).</summary>
    private LearnerHandler[] _forwardingView = [];
    private long _servingSince;
    private int _lastProposalSize = -1, _minProposalSize = -1, _maxProposalSize = -1;

    /// <summary>mntr/srvr figures while leading (see <see cref="LeaderStats"/>).</summary>
    public LeaderStats Stats()
    {
        int learners;
        lock (_gate) learners = _all.Count(h => h.Sid != -1 && !h.Closed);
        var forwarding = Volatile.Read(ref _forwardingView);
        var followers = forwarding.Where(l => !l.IsObserver).ToList();
        return new LeaderStats(learners, followers.Count, followers.Count(l => !IsVoter(l.Sid)), forwarding.Count(l => l.IsObserver),
            Volatile.Read(ref _pendingSyncCount), Serving ? Environment.TickCount64 - _servingSince : 0, _lastProposalSize, _minProposalSize, _maxProposalSize);
    }

    private int Tick => _config.TickTime;
    private bool IsVoter(long sid) => _quorum.Servers.TryGetValue(sid, out var s) && s.Type == LearnerType.Participant;
    private bool IsQuorum(IEnumerable<long> sids) => sids.Where(IsVoter).Distinct().Count() > _quorum.Voters.Count() / 2;

    // ------------------------------------------------------------------ requests from this member's clients

    public void SubmitLocal(long sessionId, int cxid, int type, byte[] body, List<Id> auth)
    {
        Touch(sessionId);
        _requests.Add(new Req(null, sessionId, cxid, type, body, auth));
    }

    /// <summary>Called on the server loop. The answer is worked out on a pool thread: the check
    /// takes the broadcast lock, which the proposal pipeline holds while it waits for the server
    /// loop (preparing and applying a txn), so taking it here deadlocked the leader as soon as a
    /// client reconnected to it during a write (found by tests/ensemble/fault_test.py). The answer
    /// reaches the loop as a follower's REVALIDATE answer does, through SessionRevalidated.</summary>
    public bool RevalidateLocal(long sessionId, int timeout)
    {
        ThreadPool.QueueUserWorkItem(_ => _server.SessionRevalidated(sessionId, Revalidate(sessionId, timeout)));
        return true;
    }

    private bool Revalidate(long sessionId, int timeout)
    {
        bool valid;
        lock (_bcast) valid = _store.Sessions.ContainsKey(sessionId) && !_expiring.ContainsKey(sessionId);
        if (valid) _sessionDeadline[sessionId] = Environment.TickCount64 + timeout;
        return valid;
    }

    private void Touch(long sessionId)
    {
        if (_store.Sessions.TryGetValue(sessionId, out int to)) _sessionDeadline[sessionId] = Environment.TickCount64 + to;
    }

    // ------------------------------------------------------------------ main

    /// <summary>Leads until leadership is lost (throws) or <paramref name="ct"/> is cancelled.</summary>
    public void Lead(CancellationToken ct)
    {
        // The quorum port listens first, as upstream's Leader binds it in its constructor: followers
        // settle their election at the same moment and connect at once, and one behind a TCP proxy
        // sees a port not yet listening as a closed connection and goes back to election
        // (tests/ensemble/fault_test.py). Connections wait in the backlog until the acceptor starts.
        var me = _quorum.Servers[_myId];
        var listener = new TcpListener(Resolve(me.Host), me.QuorumPort);
        listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        listener.Start();
        try
        {
            int replayed = _store.ApplyLoggedNotCommitted(_log);
            if (replayed > 0) _log($"zab: committed {replayed} txn(s) logged in the previous epoch but not yet committed here (up to 0x{_store.Tree.LastProcessedZxid:x})");
            _store.InitConfigNode(_quorum);
        }
        catch
        {
            listener.Stop();
            throw;
        }
        using var reg = ct.Register(() => { try { listener.Stop(); } catch (SocketException) { } Fail(new OperationCanceledException()); });
        var acceptor = new Thread(() => Accept(listener, ct)) { IsBackground = true, Name = "zab-accept" };
        acceptor.Start();
        Thread? pipeline = null, logger = null, committer = null;
        try
        {
            long limit = Tick * (long)_quorum.InitLimit;
            // ---- getEpochToPropose
            lock (_gate)
            {
                _connectingEpochs[_myId] = _store.AcceptedEpoch;
                WaitFor(() => IsQuorum(_connectingEpochs.Keys), limit, "Timeout while waiting for epoch from quorum");
                _epoch = _connectingEpochs.Values.Max() + 1;
                _store.SetAcceptedEpoch(_epoch);
                _epochDecided = true;
                Monitor.PulseAll(_gate);
                // ---- waitForEpochAck
                _epochAcks.Add(_myId);
                WaitFor(() => IsQuorum(_epochAcks), limit, "Timeout while waiting for epoch to be acked by quorum");
            }
            _counter = 0;
            _logBase = _store.Tree.LastProcessedZxid;
            // upstream Leader.lead (ZOOKEEPER-1783): with reconfig on, an initial config (version 0)
            // gets the first NEWLEADER zxid as its version; it travels in NEWLEADER and is activated
            // once a quorum acknowledged it. Set before the learners may send NEWLEADER (they wait
            // for the current epoch below).
            if (_quorum.ReconfigEnabled && _quorum.Version == 0 && _quorum.LastSeenVersion == 0)
            {
                var initial = _quorum.Snapshot();
                initial.Version = ZabType.MakeZxid(_epoch, 0);
                _quorum.SetLastSeen(initial, _log);
            }
            _store.SetCurrentEpoch(_epoch);
            _log($"zab: leading epoch {_epoch} from zxid 0x{_logBase:x}");
            // ---- waitForNewLeaderAck
            lock (_gate)
            {
                _newLeaderAcks.Add(_myId);
                WaitFor(() => IsQuorum(_newLeaderAcks), limit, "Timeout while waiting for NEWLEADER to be acked by quorum");
                _broadcasting = true;
                Monitor.PulseAll(_gate);
            }
            // the config NEWLEADER carried is now acknowledged by a quorum (upstream processReconfig after waitForNewLeaderAck)
            if (_quorum.LastSeen is { } seenQv && seenQv.Version > _quorum.Version)
            {
                _quorum.Activate(seenQv, _log);
                _store.InitConfigNode(_quorum);
            }
            foreach (var (id, to) in _store.Sessions.ToList()) _sessionDeadline[id] = Environment.TickCount64 + to;
            _updateVote(_epoch);
            _servingSince = Environment.TickCount64;
            Serving = true;
            _log($"zab: leader serving epoch {_epoch}");
            pipeline = new Thread(() => Pipeline(ct)) { IsBackground = true, Name = "zab-pipeline" };
            pipeline.Start();
            logger = new Thread(LogThread) { IsBackground = true, Name = "zab-leader-log" };
            logger.Start();
            committer = new Thread(CommitThread) { IsBackground = true, Name = "zab-commit" };
            committer.Start();

            // ---- broadcast: ping, check the quorum, expire sessions (Leader.lead's loop)
            long lastQuorumSeen = Environment.TickCount64;
            while (!ct.IsCancellationRequested)
            {
                if (_failure is { } f) throw f is OperationCanceledException ? f : new IOException("leader failed: " + f.Message, f);
                Thread.Sleep(Math.Max(1, Tick / 2));
                long now = Environment.TickCount64;
                List<LearnerHandler> learners;
                lock (_bcast) learners = _forwarding.ToList();
                var seen = new List<long> { _myId };
                foreach (var l in learners)
                {
                    // a learner still syncing has initLimit ticks, a synced one syncLimit (upstream LearnerHandler.ping / syncLimitCheck)
                    if (now - l.LastHeard > Tick * (long)(l.Synced ? _quorum.SyncLimit : _quorum.InitLimit))
                    {
                        _log($"zab: dropping learner {l.Sid}: nothing heard for {(l.Synced ? "syncLimit" : "initLimit")} ticks");
                        l.Close();
                        continue;
                    }
                    if (l.Synced && !l.IsObserver) seen.Add(l.Sid);
                    l.Queue(ZabType.Ping, _store.Tree.LastProcessedZxid, null);
                }
                if (IsQuorum(seen)) lastQuorumSeen = now;
                else if (now - lastQuorumSeen > Tick * (long)_quorum.SyncLimit)
                    throw new IOException($"Not sufficient followers synced, only synced with sids: [ {string.Join(", ", seen)} ]");
                // our own clients keep their sessions alive here (a follower's come in PING answers)
                try
                {
                    foreach (var (id, _) in _server.TouchTableAsync().GetAwaiter().GetResult()) Touch(id);
                }
                catch (ObjectDisposedException) { return; }
                foreach (var (id, deadline) in _sessionDeadline)
                {
                    if (now <= deadline || !_expiring.TryAdd(id, true)) continue;
                    _log($"zab: expiring session 0x{id:x}");
                    _requests.Add(new Req(null, id, 0, OpCode.CloseSession, Array.Empty<byte>(), new List<Id>()));
                }
                ContainerCheck(now);
            }
        }
        finally
        {
            Serving = false;
            Fail(new IOException("leadership ended"));
            _requests.CompleteAdding();
            try { listener.Stop(); } catch (SocketException) { }
            List<LearnerHandler> all;
            lock (_gate) all = _all.ToList();
            foreach (var l in all) l.Close();
            pipeline?.Join(TimeSpan.FromSeconds(5));
            _toLog.CompleteAdding();
            // the log thread must be done with the store's log before this member follows or elects
            if (logger is not null && !logger.Join(TimeSpan.FromSeconds(60))) _log("zab: the leader's log thread is still writing after 60 s");
            committer?.Join(TimeSpan.FromSeconds(5));
            _ = _server.RunOnLoopAsync(() => { _server.SetPrepTree(null); return 0; });
        }
    }

    private void WaitFor(Func<bool> cond, long ms, string timeoutMessage)
    {
        long end = Environment.TickCount64 + ms;
        while (!cond())
        {
            if (_failure is { } f) throw f is OperationCanceledException ? f : new IOException(f.Message, f);
            long left = end - Environment.TickCount64;
            if (left <= 0) throw new IOException(timeoutMessage);
            Monitor.Wait(_gate, (int)Math.Min(left, 100));
        }
    }

    private void Fail(Exception e)
    {
        _failure ??= e;
        lock (_gate) Monitor.PulseAll(_gate);
        lock (_bcast) Monitor.PulseAll(_bcast);
    }

    private void Accept(TcpListener listener, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested && _failure is null)
        {
            TcpClient c;
            try { c = listener.AcceptTcpClient(); }
            catch (Exception e) when (e is not OutOfMemoryException) { return; }
            c.NoDelay = true;
            var h = new LearnerHandler(this, c);
            lock (_gate) _all.Add(h);
            new Thread(h.Run) { IsBackground = true, Name = "zab-learner" }.Start();
        }
    }

    // ------------------------------------------------------------------ proposals

    /// <summary>One proposal in flight (upstream Leader.Proposal): acked by the sids in
    /// <see cref="Acks"/> (this leader's own sid once its log has it on disk).</summary>
    private sealed class Proposal
    {
        public required long Zxid;
        public required byte[] Data;
        public required TxnHeader Hdr;
        public required IJuteRecord Txn;
        public QuorumConfig? NextConfig;
        public readonly HashSet<long> Acks = new();
        public readonly long Proposed = Environment.TickCount64;
        /// <summary>Syncs that arrived after this proposal: answered once it is committed
        /// (upstream Leader.pendingSyncs); a null entry is this member's own client.</summary>
        public List<LearnerHandler?>? Syncs;
    }

    /// <summary>Proposals not yet committed, in zxid order (upstream outstandingProposals).</summary>
    private readonly LinkedList<Proposal> _outstanding = new();
    private readonly Dictionary<long, Proposal> _byZxid = new();
    /// <summary>Sessions created / closed by a proposal still in flight (session id → its zxid):
    /// a later request of a closing session is refused as upstream's "session is closing"
    /// (SessionExpired), one of a session being created is accepted.</summary>
    private readonly Dictionary<long, long> _pendingCreate = new(), _pendingClose = new();
    private int _pendingSyncCount;
    /// <summary>Proposals handed to the log thread (upstream SyncRequestProcessor's queue).</summary>
    private readonly HandoffQueue<Proposal> _toLog = new();
    /// <summary>Proposals in flight before the pipeline waits (memory bound; upstream has its
    /// request throttle in front instead).</summary>
    private const int MaxOutstanding = 1000;
    private const int MaxBatch = 500;

    /// <summary>Upstream PrepRequestProcessor + ProposalRequestProcessor: takes the requests queued
    /// so far, prepares them in one go on the server loop against the prepared tree (committed
    /// tree + every proposal in flight, KeeperServer.LeaderPrep), and proposes them; it never waits
    /// for ACKs, except around a reconfig (one at a time, with nothing else in flight).</summary>
    private void Pipeline(CancellationToken ct)
    {
        try
        {
            ResetPrepTree();
            var batch = new List<Req>();
            foreach (var first in _requests.GetConsumingEnumerable(ct))
            {
                if (_failure is not null) return;
                batch.Clear();
                batch.Add(first);
                while (batch.Count < MaxBatch && _requests.TryTake(out var more)) batch.Add(more);
                int i = 0;
                while (i < batch.Count && _failure is null)
                {
                    if (batch[i].Type == OpCode.Reconfig) { ProposeReconfig(batch[i]); i++; continue; }
                    int j = i;
                    while (j < batch.Count && batch[j].Type != OpCode.Reconfig) j++;
                    ProposeRun(batch.GetRange(i, j - i));
                    i = j;
                }
            }
        }
        catch (OperationCanceledException) { }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            if (_failure is null) _log("zab: leader pipeline failed: " + e.Message);
            Fail(e);
        }
    }

    /// <summary>Copies the committed tree into the server's prepared tree. Called when nothing is in flight.</summary>
    private void ResetPrepTree() => _server.RunOnLoopAsync(() =>
    {
        var copy = new DataTree { ExtendedTypesEnabled = _config.ExtendedTypesEnabled, RecordDigests = false };
        var stream = SnapshotStream(_store.Tree, new Dictionary<long, int>());
        new ZabReader(new MemoryStream(stream), _config.JuteMaxBuffer).ReadSnapshot(copy);
        copy.LastProcessedZxid = _store.Tree.LastProcessedZxid;
        _server.SetPrepTree(copy);
        return 0;
    }).GetAwaiter().GetResult();

    private bool SessionKnown(long id) => !_pendingClose.ContainsKey(id) && (_store.Sessions.ContainsKey(id) || _pendingCreate.ContainsKey(id));

    private void WaitForRoom(int max)
    {
        while (_outstanding.Count > max)
        {
            if (_failure is not null) throw new OperationCanceledException();
            Monitor.Wait(_bcast, 100);
        }
    }

    private void ProposeRun(List<Req> reqs)
    {
        var items = new List<(Req R, long Zxid)>(reqs.Count);
        var preps = new List<KeeperServer.LeaderPrepItem>(reqs.Count);
        lock (_bcast)
        {
            WaitForRoom(MaxOutstanding);
            foreach (var r in reqs)
            {
                if (r.Type == OpCode.Sync) { items.Add((r, 0)); continue; }
                if (!_allowedToCommit)
                {
                    // upstream: after committing a reconfig that designated another leader this one
                    // commits nothing more; the request's client is disconnected when leadership ends
                    _log($"zab: not the designated leader any more; dropping request type {r.Type} of session 0x{r.SessionId:x}");
                    continue;
                }
                long zxid = ZabType.MakeZxid(_epoch, ++_counter);
                bool known = r.Type == OpCode.CreateSession || IsReaperRequest(r) || SessionKnown(r.SessionId) || LocalSessionPasses(r.Origin is null, r.SessionId);
                if (r.Type == OpCode.CreateSession) _pendingCreate[r.SessionId] = zxid;
                else if (r.Type == OpCode.CloseSession) _pendingClose[r.SessionId] = zxid;
                items.Add((r, zxid));
                preps.Add(new KeeperServer.LeaderPrepItem(r.SessionId, r.Cxid, r.Type, r.Body, r.Auth, zxid, known));
            }
        }
        var txns = preps.Count == 0 ? new List<(TxnHeader, IJuteRecord)>() : _server.LeaderPrepBatchAsync(preps).GetAwaiter().GetResult();
        int k = 0;
        lock (_bcast)
        {
            foreach (var (r, zxid) in items)
            {
                if (r.Type == OpCode.Sync) { Sync(r); continue; }
                var (hdr, txn) = txns[k++];
                Propose(new Proposal { Zxid = zxid, Hdr = hdr, Txn = txn, Data = Concat(hdr.ToBytes(), txn.ToBytes()) });
            }
        }
    }

    /// <summary>Upstream Leader.processSync: answered at once when nothing is in flight, otherwise
    /// when the last proposal before it commits (behind its COMMIT on the learner's queue). Under
    /// the broadcast lock.</summary>
    private void Sync(Req r)
    {
        if (_outstanding.Last?.Value is { } last)
        {
            (last.Syncs ??= new()).Add(r.Origin);
            Interlocked.Increment(ref _pendingSyncCount);
        }
        else AnswerSync(r.Origin);
    }

    private void AnswerSync(LearnerHandler? origin)
    {
        if (origin is null) _server.SyncAnswered();
        else origin.Queue(ZabType.Sync, 0, null);
    }

    /// <summary>Upstream Leader.propose: in flight from now, PROPOSAL to every synced follower,
    /// then to the log thread (this leader's ACK). Under the broadcast lock.</summary>
    private void Propose(Proposal p)
    {
        _outstanding.AddLast(p);
        _byZxid[p.Zxid] = p;
        foreach (var l in _forwarding) if (!l.IsObserver) l.Queue(ZabType.Proposal, p.Zxid, p.Data);
        // upstream Leader.propose: proposalStats.setLastBufferSize(data.length)
        _lastProposalSize = p.Data.Length;
        _minProposalSize = _minProposalSize < 0 ? p.Data.Length : Math.Min(_minProposalSize, p.Data.Length);
        _maxProposalSize = Math.Max(_maxProposalSize, p.Data.Length);
        _toLog.Add(p);
    }

    /// <summary>A reconfig is prepared against the committed tree with nothing else in flight and
    /// committed before anything after it is prepared (upstream allows one reconfig in flight; this
    /// leader also keeps it alone, so its config activation sits between two quiet points).</summary>
    private void ProposeReconfig(Req r)
    {
        long zxid;
        bool known;
        List<long> synced;
        lock (_bcast)
        {
            WaitForRoom(0);
            if (!_allowedToCommit)
            {
                _log($"zab: not the designated leader any more; dropping request type {r.Type} of session 0x{r.SessionId:x}");
                return;
            }
            zxid = ZabType.MakeZxid(_epoch, ++_counter);
            known = SessionKnown(r.SessionId) || LocalSessionPasses(r.Origin is null, r.SessionId);
            synced = _forwarding.Where(l => l.Synced && !l.IsObserver).Select(l => l.Sid).Append(_myId).ToList();
        }
        var (hdr, txn, nextConfig) = _server.LeaderPrepReconfigAsync(r.SessionId, r.Cxid, r.Body, r.Auth, zxid, known, _quorum, synced).GetAwaiter().GetResult();
        // upstream Leader.propose: a reconfig becomes the last seen config (zoo.cfg.dynamic.next)
        if (nextConfig is not null) _quorum.SetLastSeen(nextConfig, _log);
        lock (_bcast)
        {
            Propose(new Proposal { Zxid = zxid, Hdr = hdr, Txn = txn, Data = Concat(hdr.ToBytes(), txn.ToBytes()), NextConfig = nextConfig });
            WaitForRoom(0);
        }
        // the prepared tree gets the new /zookeeper/config from the committed one
        ResetPrepTree();
    }

    /// <summary>The leader's SyncRequestProcessor: appends what is queued, forces the log once for
    /// the whole batch (group commit), then counts this leader's ACK for each (one vote among the
    /// voters': the commit thread does not wait for it when followers' ACKs already make a quorum).</summary>
    private void LogThread()
    {
        try
        {
            var batch = new List<Proposal>();
            // Runs until the queue is completed, also after leadership ended: a proposal may have
            // been committed and applied here on followers' ACKs before this log had it (as
            // upstream's leader; its SyncRequestProcessor also logs what is queued before it
            // stops), and the tree must never be ahead of the log when this member follows or
            // elects again (its vote and ACKEPOCH report the last logged zxid).
            foreach (var first in _toLog.GetConsumingEnumerable())
            {
                batch.Clear();
                batch.Add(first);
                while (batch.Count < 1000 && _toLog.TryTake(out var more)) batch.Add(more);
                foreach (var p in batch) _store.Log(p.Hdr, p.Txn, null, sync: false);
                _store.Flush();
                lock (_bcast)
                {
                    foreach (var p in batch) p.Acks.Add(_myId);
                    if (_outstanding.First?.Value is { } head && IsQuorum(head.Acks)) CommitOnAck();
                    Monitor.PulseAll(_bcast);
                }
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            if (_failure is null) _log("zab: leader log thread failed: " + e.Message);
            Fail(e);
        }
    }

    /// <summary>Upstream Leader.tryToCommit, in zxid order: the oldest proposal commits once a
    /// quorum of voters (for a reconfig: of the old and of the new voters, upstream
    /// Proposal.hasAllQuorums) acknowledged it — this leader's own ACK, sent by its log thread
    /// after the fsync, is one of the votes, not a condition — and a later one never commits
    /// before it. Every proposal committable at once is committed as one batch: COMMITs queued to
    /// the learners, then one trip to the server loop applies them all (a reconfig is committed
    /// on its own; a proposal with syncs waiting on it ends its batch).</summary>
    private void CommitThread()
    {
        try
        {
            lock (_bcast)
            {
                while (_failure is null)
                {
                    if (CommitReady(reconfigToo: true))
                    {
                        Monitor.PulseAll(_bcast);
                        // let the ACK readers, the pipeline and the ping loop in between batches
                        Monitor.Wait(_bcast, 0);
                        continue;
                    }
                    var head = _outstanding.First?.Value;
                    if (head is not null && Environment.TickCount64 - head.Proposed > Tick * (long)_quorum.SyncLimit * 2)
                        throw new IOException($"proposal 0x{head.Zxid:x} not acknowledged by a quorum");
                    Monitor.Wait(_bcast, 100);
                }
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            if (_failure is null) _log("zab: " + e.Message);
            Fail(e);
        }
    }

    /// <summary>Commits the proposals committable now, from the oldest on, as one batch (see
    /// <see cref="CommitThread"/>); false when the oldest is not committable. Under the broadcast
    /// lock. Without <paramref name="reconfigToo"/> it stops before a reconfig, which the commit
    /// thread commits.</summary>
    private bool CommitReady(bool reconfigToo)
    {
        var batch = new List<Proposal>();
        while (batch.Count < MaxBatch && _outstanding.First?.Value is { } next && IsQuorum(next.Acks)
               && (next.NextConfig is null || reconfigToo && IsQuorumOf(next.NextConfig, next.Acks)))
        {
            if (next.NextConfig is not null && batch.Count > 0) break;
            _outstanding.RemoveFirst();
            _byZxid.Remove(next.Zxid);
            batch.Add(next);
            // a batch ends at a proposal with syncs waiting on it: each SYNC answer must
            // reach its learner right after that proposal's COMMIT, before any later one
            // (an Apache follower pairs it with the sync it forwarded among its writes,
            // and this member's own client must get it before a later write's answer)
            if (next.NextConfig is not null || next.Syncs is not null) break;
        }
        if (batch.Count == 0) return false;
        Commit(batch);
        return true;
    }

    /// <summary>Upstream Leader.processAck → tryToCommit on the thread that counted the ACK (a
    /// learner's reader, or the log thread for this leader's own): the proposals it made
    /// committable are committed there, without waking the commit thread — one thread hand-off
    /// less per write. Under the broadcast lock; a failure ends leadership as the commit thread's.</summary>
    private void CommitOnAck()
    {
        try
        {
            bool any = false;
            while (_failure is null && CommitReady(reconfigToo: false)) any = true;
            // the pipeline may wait for room, the commit thread for a reconfig behind these
            if (any || _outstanding.First?.Value is { NextConfig: not null }) Monitor.PulseAll(_bcast);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            if (_failure is null) _log("zab: " + e.Message);
            Fail(e);
        }
    }

    /// <summary>Commits a run of proposals (in zxid order; a reconfig alone): COMMIT to followers,
    /// INFORM to observers (upstream Leader.commit and inform), applies them in one loop trip
    /// (which answers their clients), then answers the syncs waiting behind them. Under the
    /// broadcast lock, so a learner being synced sees them all applied or none.</summary>
    private void Commit(List<Proposal> batch)
    {
        foreach (var p in batch)
        {
            var (zxid, hdr) = (p.Zxid, p.Hdr);
            if (_pendingCreate.TryGetValue(hdr.ClientId, out long cz) && cz == zxid) _pendingCreate.Remove(hdr.ClientId);
            if (_pendingClose.TryGetValue(hdr.ClientId, out long xz) && xz == zxid) _pendingClose.Remove(hdr.ClientId);
        }
        if (batch is [{ NextConfig: { } next } reconfig]) CommitReconfig(reconfig, next);
        else
        {
            foreach (var l in _forwarding)
                foreach (var p in batch)
                {
                    if (l.IsObserver) l.Queue(ZabType.Inform, p.Zxid, p.Data);
                    else l.Queue(ZabType.Commit, p.Zxid, null);
                }
            ApplyCommitted(batch);
            foreach (var p in batch)
                switch (p.Hdr.Type)
                {
                    case OpCode.CreateSession when p.Txn is CreateSessionTxn cs:
                        _sessionDeadline[p.Hdr.ClientId] = Environment.TickCount64 + cs.TimeOut;
                        break;
                    case OpCode.CloseSession:
                        _sessionDeadline.TryRemove(p.Hdr.ClientId, out _);
                        _expiring.TryRemove(p.Hdr.ClientId, out _);
                        break;
                }
        }
        foreach (var p in batch)
        {
            if (p.Syncs is not { } syncs) continue;
            foreach (var origin in syncs) AnswerSync(origin);
            Interlocked.Add(ref _pendingSyncCount, -syncs.Count);
        }
    }

    /// <summary>Applies committed txns to the tree (one loop trip) and keeps them for DIFF syncs
    /// (the last MaxCommittedLog, upstream's committedLog). Called under the broadcast lock.</summary>
    private void ApplyCommitted(List<Proposal> batch)
    {
        _store.ApplyAsync(batch.ConvertAll(p => (p.Hdr, p.Txn))).GetAwaiter().GetResult();
        foreach (var p in batch) _committedLog.Add((p.Zxid, p.Data));
        if (_committedLog.Count > MaxCommittedLog)
        {
            int drop = _committedLog.Count - MaxCommittedLog;
            _logBase = _committedLog[drop - 1].Zxid;
            _committedLog.RemoveRange(0, drop);
        }
    }

    /// <summary>Cleared once a committed reconfig designated another leader (upstream allowedToCommit).</summary>
    private volatile bool _allowedToCommit = true;

    private static bool IsQuorumOf(QuorumConfig q, IEnumerable<long> sids)
    {
        int voters = q.Voters.Count();
        return sids.Distinct().Count(id => q.Servers.TryGetValue(id, out var s) && s.Type == LearnerType.Participant) * 2 > voters;
    }

    /// <summary>upstream Leader.tryToCommit for a reconfig: picks the designated leader (getDesignatedLeader:
    /// this leader when it stays a voter at the same quorum address, otherwise a new voter that
    /// acknowledged), activates the config (processReconfig), sends COMMITANDACTIVATE (data: the
    /// designated leader) to followers and INFORMANDACTIVATE (the leader, then the proposal) to
    /// observers, and applies the txn, which answers the client with the new config and its stat.
    /// Called under the broadcast lock.</summary>
    private void CommitReconfig(Proposal p, QuorumConfig next)
    {
        var (zxid, data, acks) = (p.Zxid, p.Data, p.Acks);
        var me = _quorum.Servers[_myId];
        long designated;
        if (next.Servers.TryGetValue(_myId, out var mine) && mine.Type == LearnerType.Participant && mine.Host == me.Host && mine.QuorumPort == me.QuorumPort)
            designated = _myId;
        else
            designated = acks.Where(id => id != _myId && next.Servers.TryGetValue(id, out var s) && s.Type == LearnerType.Participant)
                .DefaultIfEmpty(_myId).Min();
        var leaderBytes = ReconfigPlanner.LeaderBytes(designated);
        foreach (var l in _forwarding)
        {
            if (l.IsObserver) l.Queue(ZabType.InformAndActivate, zxid, Concat(leaderBytes, data));
            else l.Queue(ZabType.CommitAndActivate, zxid, leaderBytes);
        }
        ApplyCommitted([p]);
        _quorum.Activate(next, _log);
        _store.InitConfigNode(_quorum);
        if (designated != _myId)
        {
            _log($"zab: committed reconfig 0x{zxid:x}; this leader is not the designated leader any more (server {designated} is), committing nothing more");
            _allowedToCommit = false;
        }
        else _log($"zab: committed reconfig 0x{zxid:x}, version {next.Version:x}");
    }

    /// <summary>Upstream LeaderSessionTracker.checkSession with local sessions on: a session the
    /// global tracker does not know passes when it is another member's (a local session there) or
    /// this member's own local one (its server loop checked it before submitting); one of ours that
    /// is neither has expired.</summary>
    private bool LocalSessionPasses(bool fromThisMember, long sessionId) =>
        _quorum.LocalSessionsEnabled && (fromThisMember || KeeperServer.ServerIdOfSession(sessionId) != _myId);

    private void Acked(long sid, long zxid)
    {
        lock (_bcast)
        {
            // an ACK of a committed proposal (or of one from before this leader) counts for nothing
            if (!_byZxid.TryGetValue(zxid, out var p)) return;
            // upstream Leader.processAck → tryToCommit: this leader's own ACK (after its log's
            // fsync) is one vote like any other, so followers' ACKs alone may make the quorum
            if (p.Acks.Add(sid) && ReferenceEquals(_outstanding.First?.Value, p) && IsQuorum(p.Acks)) CommitOnAck();
        }
    }

    private static byte[] Concat(byte[] a, byte[] b)
    {
        var r = new byte[a.Length + b.Length];
        a.CopyTo(r, 0); b.CopyTo(r, a.Length);
        return r;
    }

    /// <summary>Upstream SerializeUtils.serializeSnapshot + DataTree.serialize, then the signature:
    /// the stream a follower reads after SNAP (no file header, checksum or digest).</summary>
    private static byte[] SnapshotStream(DataTree tree, IReadOnlyDictionary<long, int> sessions)
    {
        var ms = new MemoryStream();
        void PutInt(int v) { Span<byte> b = stackalloc byte[4]; BinaryPrimitives.WriteInt32BigEndian(b, v); ms.Write(b); }
        void PutLong(long v) { Span<byte> b = stackalloc byte[8]; BinaryPrimitives.WriteInt64BigEndian(b, v); ms.Write(b); }
        void PutString(string? s)
        {
            if (s is null) { PutInt(-1); return; }
            var b = System.Text.Encoding.UTF8.GetBytes(s);
            PutInt(b.Length); ms.Write(b);
        }
        PutInt(sessions.Count);
        foreach (var (id, to) in sessions) { PutLong(id); PutInt(to); }
        PutInt(tree.Acls.Count);
        foreach (var (id, acls) in tree.Acls.Entries)
        {
            PutLong(id);
            PutInt(acls.Count);
            foreach (var a in acls) ms.Write(a.ToBytes());
        }
        void WriteNode(string p)
        {
            var n = tree.GetNode(p)!;
            PutString(p == "/" ? "" : p);
            if (n.Data is null) PutInt(-1); else { PutInt(n.Data.Length); ms.Write(n.Data); }
            PutLong(n.Acl);
            ms.Write(new StatPersisted
            {
                Czxid = n.Czxid, Mzxid = n.Mzxid, Ctime = n.Ctime, Mtime = n.Mtime, Version = n.Version,
                Cversion = n.Cversion, Aversion = n.Aversion, EphemeralOwner = n.EphemeralOwner, Pzxid = n.Pzxid,
            }.ToBytes());
            foreach (var c in n.Children) WriteNode(DataTree.Join(p, c));
        }
        WriteNode("/");
        PutString("/");
        PutString("BenWasHere");
        return ms.ToArray();
    }

    private static IPAddress Resolve(string host) =>
        IPAddress.TryParse(host, out var a) ? a : Dns.GetHostAddresses(host).First(x => x.AddressFamily == AddressFamily.InterNetwork);

    // ------------------------------------------------------------------ one learner

    private sealed class LearnerHandler
    {
        private readonly ZabLeader _l;
        private readonly TcpClient _c;
        private readonly HandoffQueue<byte[]> _out = new();
        private int _closed;
        public long Sid = -1;
        public long LastHeard = Environment.TickCount64;
        public volatile bool Synced;
        /// <summary>Registered with OBSERVERINFO (upstream LearnerType.OBSERVER).</summary>
        public bool IsObserver;
        public bool Closed => Volatile.Read(ref _closed) != 0;

        public LearnerHandler(ZabLeader leader, TcpClient c) { _l = leader; _c = c; }

        public void Queue(int type, long zxid, byte[]? data, List<Id>? auth = null)
        {
            var p = new QuorumPacket { Type = type, Zxid = zxid, Data = data, Authinfo = auth };
            QueueRaw(p.ToBytes());
        }

        private void QueueRaw(byte[] b)
        {
            try { _out.Add(b); } catch (InvalidOperationException) { }
        }

        public void Close()
        {
            if (Interlocked.Exchange(ref _closed, 1) != 0) return;
            _out.CompleteAdding();
            try { _c.Close(); } catch (SocketException) { }
            lock (_l._bcast)
            {
                _l._forwarding.Remove(this);
                Volatile.Write(ref _l._forwardingView, [.. _l._forwarding]);
            }
        }

        private void Send(Stream s)
        {
            try
            {
                foreach (var b in _out.GetConsumingEnumerable())
                {
                    s.Write(b);
                    if (_out.Count == 0) s.Flush();
                }
            }
            catch (Exception e) when (e is not OutOfMemoryException) { }
            Close();
        }

        public void Run()
        {
            var l = _l;
            try
            {
                _c.ReceiveTimeout = l.Tick * l._quorum.InitLimit;
                var net = _c.GetStream();
                var reader = new ZabReader(new BufferedStream(net), l._config.JuteMaxBuffer);
                var qp = reader.ReadPacket();
                if (qp.Type != ZabType.FollowerInfo && qp.Type != ZabType.ObserverInfo)
                    throw new IOException($"First packet {ZabType.Name(qp.Type)} is not FOLLOWERINFO or OBSERVERINFO");
                IsObserver = qp.Type == ZabType.ObserverInfo;
                var lr = new JuteReader(qp.Data ?? throw new IOException($"{ZabType.Name(qp.Type)} without data"), l._config.JuteMaxBuffer);
                var info = LearnerInfo.Read(ref lr);
                Sid = info.Serverid;
                // upstream LearnerHandler: a learner outside the config is served (a server joining
                // by reconfig syncs first), it just never counts towards a quorum
                if (!l._quorum.Servers.ContainsKey(Sid)) l._log($"zab: Follower sid: {Sid} not in the current config {l._quorum.Version:x}");
                if (info.ConfigVersion > l._quorum.Version) throw new IOException("Follower is ahead of the leader (has a later activated configuration)");
                long peerAccepted = ZabType.EpochOf(qp.Zxid);
                new Thread(() => Send(new BufferedStream(net))) { IsBackground = true, Name = "zab-learner-send" }.Start();

                long epoch;
                lock (l._gate)
                {
                    if (!l._epochDecided) l._connectingEpochs[Sid] = peerAccepted;
                    l.WaitFor(() => l._epochDecided, l.Tick * (long)l._quorum.InitLimit, "Timeout while waiting for epoch");
                    epoch = l._epoch;
                }
                var ver = new byte[4];
                BinaryPrimitives.WriteInt32BigEndian(ver, ZabType.ProtocolVersion);
                Queue(ZabType.LeaderInfo, ZabType.MakeZxid(epoch, 0), ver);
                qp = reader.ReadPacket();
                if (qp.Type != ZabType.AckEpoch) throw new IOException($"{ZabType.Name(qp.Type)} instead of ACKEPOCH from {Sid}");
                int peerCurrentEpoch = qp.Data is { Length: >= 4 } d ? BinaryPrimitives.ReadInt32BigEndian(d) : -1;
                long peerZxid = qp.Zxid;
                lock (l._gate)
                {
                    // upstream waitForEpochAck: a voter newer than us means we should not lead
                    long myEpoch = l._store.CurrentEpoch, myZxid = l._store.Tree.LastProcessedZxid;
                    if (peerCurrentEpoch != -1 && (peerCurrentEpoch > myEpoch || (peerCurrentEpoch == myEpoch && peerZxid > myZxid)))
                    {
                        var e = new IOException($"Follower {Sid} is ahead of the leader (epoch {peerCurrentEpoch}, zxid 0x{peerZxid:x})");
                        l.Fail(e);
                        throw e;
                    }
                    l._epochAcks.Add(Sid);
                    Monitor.PulseAll(l._gate);
                    l.WaitFor(() => l.IsQuorum(l._epochAcks), l.Tick * (long)l._quorum.InitLimit, "Timeout while waiting for epoch to be acked");
                }
                // wait until the leader has settled its own epoch files and log base (just after the quorum ack)
                SpinWait.SpinUntil(() => l._store.CurrentEpoch == l._epoch || l._failure is not null, l.Tick * l._quorum.InitLimit);

                // ---- sync (LearnerHandler.syncFollower), at a commit boundary
                string mode;
                lock (l._bcast)
                {
                    long leaderZxid = l._store.Tree.LastProcessedZxid;
                    int from = -1;
                    if (peerZxid == leaderZxid) from = l._committedLog.Count;
                    else if (peerZxid > leaderZxid) from = -2;
                    else if (peerZxid == l._logBase) from = 0;
                    else
                    {
                        int i = l._committedLog.FindIndex(x => x.Zxid == peerZxid);
                        if (i >= 0) from = i + 1;
                    }
                    // older than the committed log: the txn log on disk may still hold what it misses (ZabLeader.LogDiff)
                    var fromLog = from == -1 ? l.DiffFromLog(peerZxid) : null;
                    if (fromLog is not null) from = 0;
                    if (from == -2)
                    {
                        mode = "TRUNC";
                        Queue(ZabType.Trunc, leaderZxid, null);
                    }
                    else if (from >= 0)
                    {
                        mode = fromLog is null ? "DIFF" : $"DIFF ({fromLog.Count} txns from the txn log)";
                        Queue(ZabType.Diff, leaderZxid, null);
                        foreach (var (z, txnData) in fromLog ?? [])
                        {
                            Queue(ZabType.Proposal, z, txnData);
                            Queue(ZabType.Commit, z, null);
                        }
                        for (int i = from; i < l._committedLog.Count; i++)
                        {
                            Queue(ZabType.Proposal, l._committedLog[i].Zxid, l._committedLog[i].Data);
                            Queue(ZabType.Commit, l._committedLog[i].Zxid, null);
                        }
                    }
                    else
                    {
                        mode = "SNAP";
                        var snap = l._server.RunOnLoopAsync(() => SnapshotStream(l._store.Tree, l._store.Sessions)).GetAwaiter().GetResult();
                        Queue(ZabType.Snap, leaderZxid, null);
                        QueueRaw(snap);
                    }
                    // upstream LearnerHandler (ZAB 1.0 learners): NEWLEADER carries the leader's config
                    Queue(ZabType.NewLeader, ZabType.MakeZxid(epoch, 0), System.Text.Encoding.UTF8.GetBytes(l._quorum.LastSeenVerifierString()));
                    // Proposals in flight are past the tree synced above, and their COMMITs will
                    // reach this learner too: send the PROPOSALs first, in zxid order, as upstream's
                    // Leader.startForwarding sends outstanding proposals. Without them the learner
                    // got a COMMIT it had no proposal for and came back with a hole in its history
                    // (tests/ensemble/fault_test.py). An observer gets them as INFORM at commit.
                    if (!IsObserver) foreach (var p in l._outstanding) Queue(ZabType.Proposal, p.Zxid, p.Data);
                    LastHeard = Environment.TickCount64;
                    l._forwarding.Add(this);
                    Volatile.Write(ref l._forwardingView, [.. l._forwarding]);
                }
                l._log($"zab: syncing learner {Sid} by {mode} (its zxid 0x{peerZxid:x})");

                // ---- NEWLEADER ack, then UPTODATE once the quorum is there. Until the NEWLEADER
                // ACK the learner has initLimit ticks (it is applying and logging the sync), then
                // syncLimit, as upstream LearnerHandler (initLimit socket timeout from the accept,
                // syncTimeout() once "sync ends when NEWLEADER-ACK is received"). With syncLimit
                // here a learner syncing thousands of txns from a busy leader was dropped mid-sync.
                bool upToDateSent = false;
                while (true)
                {
                    qp = reader.ReadPacket();
                    LastHeard = Environment.TickCount64;
                    switch (qp.Type)
                    {
                        case ZabType.Ack:
                            if (!upToDateSent && qp.Zxid == ZabType.MakeZxid(epoch, 0))
                            {
                                lock (l._gate)
                                {
                                    l._newLeaderAcks.Add(Sid);
                                    Monitor.PulseAll(l._gate);
                                    l.WaitFor(() => l._broadcasting, l.Tick * (long)l._quorum.InitLimit, "Timeout waiting for the leader to start");
                                }
                                _c.ReceiveTimeout = l.Tick * l._quorum.SyncLimit;
                                Queue(ZabType.UpToDate, -1, null);
                                upToDateSent = true;
                                Synced = true;
                            }
                            // upstream LearnerHandler: "Received ACK from Observer" is only logged
                            else if (!IsObserver) l.Acked(Sid, qp.Zxid);
                            break;
                        case ZabType.Ping:
                            {
                                var t = qp.Data ?? Array.Empty<byte>();
                                for (int o = 0; o + 12 <= t.Length; o += 12) l.Touch(BinaryPrimitives.ReadInt64BigEndian(t.AsSpan(o)));
                                break;
                            }
                        case ZabType.Revalidate:
                            {
                                var t = qp.Data;
                                if (t is null || t.Length < 12) throw new IOException("short REVALIDATE");
                                long id = BinaryPrimitives.ReadInt64BigEndian(t);
                                bool valid = l.Revalidate(id, BinaryPrimitives.ReadInt32BigEndian(t.AsSpan(8)));
                                var a = new byte[9];
                                BinaryPrimitives.WriteInt64BigEndian(a, id);
                                a[8] = valid ? (byte)1 : (byte)0;
                                Queue(ZabType.Revalidate, -1, a);
                                break;
                            }
                        case ZabType.Request:
                            {
                                var t = qp.Data;
                                if (t is null || t.Length < 16) throw new IOException("short REQUEST");
                                long session = BinaryPrimitives.ReadInt64BigEndian(t);
                                l.Touch(session);
                                l._requests.Add(new Req(this, session, BinaryPrimitives.ReadInt32BigEndian(t.AsSpan(8)),
                                    BinaryPrimitives.ReadInt32BigEndian(t.AsSpan(12)), t[16..], qp.Authinfo ?? new List<Id>()));
                                break;
                            }
                        default:
                            l._log($"zab: unexpected {ZabType.Name(qp.Type)} from learner {Sid}");
                            break;
                    }
                }
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // a learner thread must never take the process down: leadership ending (cancelled
                // waits), a bad packet or a dropped connection all just end this learner
                if (l._failure is null) l._log($"zab: learner {Sid} gone: " + (e is IOException or InvalidDataException or JuteException ? e.Message : e.ToString()));
            }
            finally { Close(); }
        }
    }
}
