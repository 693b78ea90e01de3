using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Samsa.Keeper.Protocol;
using Samsa.Keeper.Protocol.Records;

namespace Samsa.Keeper.Server.Quorum;

/// <summary>
/// A follower's side of ZAB against a leader's quorum port, as upstream's Learner/Follower (3.8):
/// <list type="number">
/// <item>discovery: FOLLOWERINFO (zxid = acceptedEpoch &lt;&lt; 32, data = LearnerInfo), LEADERINFO
/// (the new epoch), ACKEPOCH (our last zxid and current epoch, or -1 when the epoch was already
/// accepted);</item>
/// <item>synchronization: DIFF, SNAP (the snapshot streamed after the packet) or TRUNC, then
/// PROPOSAL/COMMIT pairs; NEWLEADER makes the epoch current and every pending proposal is logged
/// before its ACK (ZOOKEEPER-3911); UPTODATE ends the sync and is ACKed with the new epoch's zxid;</item>
/// <item>broadcast: each PROPOSAL is logged and forced to disk before its ACK, COMMIT applies the
/// next pending one (in order; a gap stops the follower, as upstream's "Committing zxid … but
/// next pending txn …"), PING is answered with the session touch table.</item>
/// </list>
/// With <c>observer</c> set it is upstream's Observer instead: it registers with OBSERVERINFO,
/// syncs the same way (the leader may send INFORM during the sync too), and in the broadcast phase
/// applies each INFORM (a committed txn: logged, then applied), ignores PROPOSAL and COMMIT and
/// never ACKs a proposal, so the leader never counts it in a quorum. Reconfiguration (upstream
/// 3.5+): a PROPOSAL of type reconfig is remembered as the last seen config; COMMITANDACTIVATE
/// (followers; data = the designated leader's id) and INFORMANDACTIVATE (observers; the id, then
/// the proposal) commit it and activate the new membership; a changed role or leader ends the
/// follow so the member elects again (upstream "changes proposed in reconfig"). NEWLEADER carries
/// the leader's config, activated at UPTODATE.
/// It runs on the calling thread and returns or throws when the leader goes away; the caller
/// then elects again.
/// </summary>
public sealed class ZabFollower
{
    private readonly long _myId;
    private readonly QuorumConfig _quorum;
    private readonly KeeperConfig _config;
    private readonly LearnerStore _store;
    private readonly Action<string> _log;
    private readonly Action<long> _synced;
    private readonly KeeperServer? _server;
    private readonly object _writeLock = new();
    private Stream? _out;
    private readonly bool _observer;

    /// <summary>The sid of the leader being followed (for reconfig's leader-change check).</summary>
    public long LeaderSid { get; init; } = -1;

    /// <summary>True for an observer (upstream Observer): OBSERVERINFO, INFORM, no ACKs of proposals.</summary>
    public bool IsObserver => _observer;

    /// <param name="synced">Called with the new epoch once UPTODATE is acknowledged (upstream updates the election vote then).</param>
    /// <param name="server">The member's serving KeeperServer, if it serves clients.</param>
    /// <param name="observer">Observe instead of follow (upstream Observer.observeLeader).</param>
    public ZabFollower(long myId, QuorumConfig quorum, KeeperConfig config, LearnerStore store, Action<string> log, Action<long> synced, KeeperServer? server = null, bool observer = false)
    {
        _myId = myId; _quorum = quorum; _config = config; _store = store; _log = log; _synced = synced; _server = server; _observer = observer;
    }

    private void Send(int type, long zxid, byte[]? data, List<Samsa.Keeper.Protocol.Records.Id>? authInfo = null)
    {
        lock (_writeLock) ZabWriter.Write(_out!, type, zxid, data, authInfo);
    }

    /// <summary>Upstream Learner.request: REQUEST with zxid -1 and data = sessionId, cxid, type, then
    /// the request body; the client's auth ids travel as the packet's authinfo.</summary>
    public bool Forward(long sessionId, int cxid, int type, byte[] body, List<Samsa.Keeper.Protocol.Records.Id> authInfo)
    {
        if (!UpToDate) return false;
        var data = new byte[16 + body.Length];
        BinaryPrimitives.WriteInt64BigEndian(data, sessionId);
        BinaryPrimitives.WriteInt32BigEndian(data.AsSpan(8), cxid);
        BinaryPrimitives.WriteInt32BigEndian(data.AsSpan(12), type);
        body.CopyTo(data, 16);
        try { Send(ZabType.Request, -1, data, authInfo); return true; }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException) { return false; }
    }

    /// <summary>Upstream Learner.validateSession: REVALIDATE with sessionId and timeout.</summary>
    public bool Revalidate(long sessionId, int timeout)
    {
        if (!UpToDate) return false;
        var data = new byte[12];
        BinaryPrimitives.WriteInt64BigEndian(data, sessionId);
        BinaryPrimitives.WriteInt32BigEndian(data.AsSpan(8), timeout);
        try { Send(ZabType.Revalidate, -1, data); return true; }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException) { return false; }
    }

    /// <summary>How the last sync went: "DIFF", "SNAP" or "TRUNC".</summary>
    public string? SyncMode { get; private set; }
    /// <summary>Set once UPTODATE arrived: the member is in the broadcast phase.</summary>
    public volatile bool UpToDate;

    private sealed record Pending(TxnHeader Hdr, IJuteRecord Txn, TxnDigest? Digest);

    /// <summary>Follows the leader at <paramref name="leaderQuorumAddress"/> until the connection
    /// ends (IOException) or <paramref name="ct"/> is cancelled.</summary>
    public void Follow(IPEndPoint leaderQuorumAddress, CancellationToken ct)
    {
        // What an earlier epoch left logged but uncommitted here is part of our history from now
        // on, as upstream reloads its database from the whole txn log before following again:
        // the ACKEPOCH below reports the last *logged* zxid, so a DIFF from the new leader starts
        // after it, and the tree must already hold everything up to it.
        int replayed = _store.ApplyLoggedNotCommitted(_log);
        if (replayed > 0) _log($"zab: applied {replayed} txn(s) logged but not committed before this epoch (up to 0x{_store.Tree.LastProcessedZxid:x})");
        var (client, net, output, input, reader, qp) = Register(leaderQuorumAddress, ct);
        using var clientScope = client;
        using var reg = ct.Register(() => client.Dispose());
        using var netScope = net;
        using var outputScope = output;
        _out = output;
        int tick = _config.TickTime;
        if (qp.Type != ZabType.LeaderInfo)
            throw new IOException($"First packet should have been LEADERINFO, got {ZabType.Name(qp.Type)}");
        long newEpoch = ZabType.EpochOf(qp.Zxid);
        var epochBytes = new byte[4];
        if (newEpoch > _store.AcceptedEpoch)
        {
            BinaryPrimitives.WriteInt32BigEndian(epochBytes, (int)_store.CurrentEpoch);
            _store.SetAcceptedEpoch(newEpoch);
        }
        else if (newEpoch == _store.AcceptedEpoch)
        {
            // the epoch was accepted before (a second attempt within it): -1 says we did not change it
            BinaryPrimitives.WriteInt32BigEndian(epochBytes, -1);
        }
        else throw new IOException($"Leaders epoch, {newEpoch} is less than accepted epoch, {_store.AcceptedEpoch}");
        Send(ZabType.AckEpoch, _store.LastLoggedZxid, epochBytes);
        _log($"zab: {(_observer ? "observing" : "following")} {leaderQuorumAddress}, new epoch {newEpoch}, my last zxid 0x{_store.LastLoggedZxid:x}");

        // ---- synchronization (Learner.syncWithLeader)
        qp = reader.ReadPacket();
        bool snapshotNeeded = true;
        switch (qp.Type)
        {
            case ZabType.Diff:
                SyncMode = "DIFF";
                snapshotNeeded = false;
                break;
            case ZabType.Snap:
                SyncMode = "SNAP";
                _store.LoadSnapshot(reader, qp.Zxid);
                break;
            case ZabType.Trunc:
                SyncMode = "TRUNC";
                // the leader asks us to drop txns above its zxid (LearnerStore.TruncateLog, upstream ZKDatabase.truncateLog)
                if (_store.LastLoggedZxid > qp.Zxid)
                {
                    _log($"zab: truncating the txn log to 0x{qp.Zxid:x} (logged up to 0x{_store.LastLoggedZxid:x}) to get in sync with the leader");
                    _store.TruncateLog(qp.Zxid, _log);
                }
                break;
            default:
                throw new IOException($"Got unexpected packet from leader: {ZabType.Name(qp.Type)}, exiting ... ");
        }
        _log($"zab: sync by {SyncMode} (leader zxid 0x{qp.Zxid:x})");
        // upstream syncWithLeader: initConfigInZKDatabase after the DIFF/SNAP/TRUNC
        _store.InitConfigNode(_quorum);
        QuorumConfig? newLeaderQv = null;
        var notCommitted = new LinkedList<Pending>();
        var committedDuringSync = new List<long>();
        var ackAfterSync = new List<long>();
        bool writeToLog = false;
        // Txns committed before NEWLEADER are appended unforced and applied in runs: one fsync and
        // one server-loop trip per run instead of per txn. Upstream's learner forces nothing until
        // NEWLEADER either (it logs the DIFF's txns there and ACKs once they are on disk), so a
        // DIFF of thousands of txns is ACKed within initLimit; one fsync and one loop trip per txn
        // took ~1 ms each on a loaded machine, and a Keeper restarted behind a busy leader
        // (tests/ensemble/fault_test.py --burst) timed out syncing again and again.
        var committedRun = new List<(TxnHeader Hdr, IJuteRecord Txn)>();
        void ApplyCommittedRun()
        {
            if (committedRun.Count == 0) return;
            _store.Flush();
            _store.ApplyAsync(committedRun.ToArray()).GetAwaiter().GetResult();
            committedRun.Clear();
        }
        void CommitBeforeNewLeader(TxnHeader hdr, IJuteRecord txn, TxnDigest? digest)
        {
            _store.Log(hdr, txn, digest, sync: false);
            committedRun.Add((hdr, txn));
            if (committedRun.Count >= 1000) ApplyCommittedRun();
        }
        while (true)
        {
            qp = reader.ReadPacket();
            switch (qp.Type)
            {
                case ZabType.Proposal:
                    {
                        var (hdr, txn, digest) = ZabWriter.ReadTxnEntry(qp.Data ?? throw new IOException("PROPOSAL without data"));
                        SeeProposal(hdr, txn);
                        notCommitted.AddLast(new Pending(hdr, txn, digest));
                        // after NEWLEADER a proposal is new history: logged now (upstream logs what
                        // is still uncommitted at UPTODATE); it is ACKed after UPTODATE below
                        if (writeToLog) { _store.Log(hdr, txn, digest, sync: false); ackAfterSync.Add(hdr.Zxid); }
                        break;
                    }
                case ZabType.Commit:
                case ZabType.CommitAndActivate:
                    if (qp.Type == ZabType.CommitAndActivate) ApplyCommittedRun();
                    if (qp.Type == ZabType.CommitAndActivate && notCommitted.First?.Value is { } act && act.Hdr.Zxid == qp.Zxid
                        && ProcessReconfig(ConfigOf(act.Txn), DesignatedLeader(qp.Data)))
                        throw new IOException("changes proposed in reconfig");
                    if (!writeToLog)
                    {
                        // before NEWLEADER, committed txns come straight from the leader's history
                        var first = notCommitted.First?.Value;
                        if (first is null || first.Hdr.Zxid != qp.Zxid)
                            _log($"zab: committing 0x{qp.Zxid:x}, but the next proposal is 0x{first?.Hdr.Zxid ?? -1:x}");
                        else
                        {
                            CommitBeforeNewLeader(first.Hdr, first.Txn, first.Digest);
                            notCommitted.RemoveFirst();
                        }
                    }
                    else committedDuringSync.Add(qp.Zxid);
                    break;
                case ZabType.Inform:
                case ZabType.InformAndActivate:
                    {
                        // upstream Learner.syncWithLeader: an observer gets commits made while it syncs
                        // as INFORM (the proposal's data); before NEWLEADER applied at once, after it
                        // logged at UPTODATE with the rest
                        var (hdr, txn, digest) = ZabWriter.ReadTxnEntry(InformData(qp));
                        if (qp.Type == ZabType.InformAndActivate) ApplyCommittedRun();
                        if (qp.Type == ZabType.InformAndActivate && ProcessReconfig(ConfigOf(txn), DesignatedLeader(qp.Data)))
                            throw new IOException("changes proposed in reconfig");
                        if (!writeToLog) CommitBeforeNewLeader(hdr, txn, digest);
                        else
                        {
                            notCommitted.AddLast(new Pending(hdr, txn, digest));
                            _store.Log(hdr, txn, digest, sync: false);
                            committedDuringSync.Add(hdr.Zxid);
                        }
                        break;
                    }
                case ZabType.NewLeader:
                    ApplyCommittedRun();
                    // upstream: NEWLEADER's data is the leader's config, kept as last seen and activated at UPTODATE
                    if (qp.Data is { Length: > 1 } qvBytes)
                    {
                        try
                        {
                            newLeaderQv = QuorumConfig.ParseVerifier(System.Text.Encoding.UTF8.GetString(qvBytes));
                            _quorum.SetLastSeen(newLeaderQv, _log);
                        }
                        catch (KeeperConfigException e) { _log($"zab: cannot read the config in NEWLEADER: {e.Message}"); }
                    }
                    if (snapshotNeeded) _store.TakeSnapshot();
                    _store.SetCurrentEpoch(newEpoch);
                    writeToLog = true;
                    client.ReceiveTimeout = tick * _quorum.SyncLimit;
                    foreach (var p in notCommitted) _store.Log(p.Hdr, p.Txn, p.Digest, sync: false);
                    _store.Flush();
                    Send(ZabType.Ack, qp.Zxid, null);
                    break;
                case ZabType.UpToDate:
                    ApplyCommittedRun();
                    if (newLeaderQv is not null && ProcessReconfig(newLeaderQv, null))
                        throw new IOException("changes proposed in reconfig");
                    goto synced;
                default:
                    _log($"zab: ignoring {ZabType.Name(qp.Type)} during sync");
                    break;
            }
        }
    synced:
        _store.Flush(); // what arrived after NEWLEADER, before the ACKs say it is logged
        Send(ZabType.Ack, ZabType.MakeZxid(newEpoch, 0), null);
        // proposals that arrived between NEWLEADER and UPTODATE are logged: a follower ACKs them as
        // upstream's SyncRequestProcessor would (an observer never ACKs)
        if (!_observer) foreach (long z in ackAfterSync) Send(ZabType.Ack, z, null);
        // proposals logged at NEWLEADER and committed since are applied now, in order
        foreach (long zxid in committedDuringSync) CommitNext(notCommitted, zxid, alreadyLogged: true);
        _synced(newEpoch);
        UpToDate = true;
        _log($"zab: up to date at zxid 0x{_store.Tree.LastProcessedZxid:x}");

        // ---- broadcast (Follower.processPacket)
        var pending = notCommitted; // logged but not yet committed
        // proposals appended but not yet forced: forced together and ACKed before the next read
        // would block (group commit, upstream SyncRequestProcessor), or every 1000
        var unacked = new List<long>();
        void FlushAndAck()
        {
            _store.Flush();
            foreach (long z in unacked) Send(ZabType.Ack, z, null);
            unacked.Clear();
        }
        // committed txns not yet applied: applied together in one trip to the server loop before a
        // read would block, before any packet other than PROPOSAL/COMMIT (a SYNC answer must
        // follow the commits before it), or every 1000 (upstream CommitProcessor applies a run of
        // committed requests per wake-up)
        var toApply = new List<(TxnHeader, IJuteRecord)>();
        Task StartApply()
        {
            if (toApply.Count == 0) return Task.CompletedTask;
            var run = toApply;
            toApply = new List<(TxnHeader, IJuteRecord)>();
            return _store.ApplyAsync(run);
        }
        void ApplyNow() => StartApply().GetAwaiter().GetResult();
        try
        {
            while (!ct.IsCancellationRequested)
            {
                if ((unacked.Count > 0 || toApply.Count > 0) && !input.HasBuffered && client.Available == 0)
                {
                    // the loop applies while this thread forces the log and ACKs
                    var applying = StartApply();
                    if (unacked.Count > 0) FlushAndAck();
                    applying.GetAwaiter().GetResult();
                }
                qp = reader.ReadPacket();
                if (qp.Type != ZabType.Proposal && qp.Type != ZabType.Commit) ApplyNow();
                switch (qp.Type)
                {
                    case ZabType.Ping:
                        {
                            // upstream Learner.ping: the touch table, (sessionId, timeout) of the sessions whose clients are here
                            var touch = _server is null ? new Dictionary<long, int>() : _server.TouchTableAsync().GetAwaiter().GetResult();
                            var data = new byte[touch.Count * 12];
                            int o = 0;
                            foreach (var (id, to) in touch)
                            {
                                BinaryPrimitives.WriteInt64BigEndian(data.AsSpan(o), id);
                                BinaryPrimitives.WriteInt32BigEndian(data.AsSpan(o + 8), to);
                                o += 12;
                            }
                            Send(ZabType.Ping, qp.Zxid, data, qp.Authinfo);
                            break;
                        }
                    case ZabType.Proposal when _observer:
                        // upstream Observer.processPacket: "Ignoring proposal" (observers never ACK)
                        _log($"zab: observer ignoring PROPOSAL 0x{qp.Zxid:x}");
                        break;
                    case ZabType.Commit when _observer:
                        _log($"zab: observer ignoring COMMIT 0x{qp.Zxid:x}");
                        break;
                    case ZabType.Inform when _observer:
                        {
                            // a committed txn: upstream ObserverZooKeeperServer.commitRequest logs it
                            // (syncEnabled, the default) and applies it
                            var (hdr, txn, digest) = ZabWriter.ReadTxnEntry(qp.Data ?? throw new IOException("INFORM without data"));
                            _store.Log(hdr, txn, digest);
                            _store.Apply(hdr, txn);
                            break;
                        }
                    case ZabType.InformAndActivate when _observer:
                        {
                            var (hdr, txn, digest) = ZabWriter.ReadTxnEntry(InformData(qp));
                            _store.Log(hdr, txn, digest);
                            _store.Apply(hdr, txn);
                            if (ProcessReconfig(ConfigOf(txn), DesignatedLeader(qp.Data))) throw new IOException("changes proposed in reconfig");
                            break;
                        }
                    case ZabType.Proposal:
                        {
                            var (hdr, txn, digest) = ZabWriter.ReadTxnEntry(qp.Data ?? throw new IOException("PROPOSAL without data"));
                            SeeProposal(hdr, txn);
                            _store.Log(hdr, txn, digest, sync: false);
                            pending.AddLast(new Pending(hdr, txn, digest));
                            unacked.Add(hdr.Zxid);
                            if (unacked.Count >= 1000) FlushAndAck();
                            break;
                        }
                    case ZabType.Commit:
                        toApply.Add(NextCommitted(pending, qp.Zxid));
                        if (toApply.Count >= 1000) ApplyNow();
                        break;
                    case ZabType.Revalidate:
                        {
                            // upstream Learner.revalidate: sessionId, then a boolean
                            var d = qp.Data;
                            if (d is null || d.Length < 9) throw new IOException("short REVALIDATE");
                            _server?.SessionRevalidated(BinaryPrimitives.ReadInt64BigEndian(d), d[8] != 0);
                            break;
                        }
                    case ZabType.Sync:
                        // the answer to the oldest sync this member forwarded
                        _server?.SyncAnswered();
                        break;
                    case ZabType.UpToDate:
                        _log("zab: received an UPTODATE message after the follower started");
                        break;
                    case ZabType.CommitAndActivate:
                        {
                            // upstream Follower.processPacket: the pending reconfig's config, the designated
                            // leader from the packet; commit, then a changed leader/role means electing again
                            var first = pending.First?.Value;
                            if (first is null || first.Hdr.Zxid != qp.Zxid || first.Hdr.Type != OpCode.Reconfig)
                                throw new IOException($"COMMITANDACTIVATE 0x{qp.Zxid:x} but next pending txn 0x{first?.Hdr.Zxid ?? -1:x}");
                            var qv = ConfigOf(first.Txn);
                            CommitNext(pending, qp.Zxid, alreadyLogged: true);
                            if (ProcessReconfig(qv, DesignatedLeader(qp.Data))) throw new IOException("changes proposed in reconfig");
                            break;
                        }
                    default:
                        _log($"zab: unknown packet type {qp.Type}");
                        break;
                }
            }
        }
        finally
        {
            // what the leader committed is applied even when the connection ends here
            try { ApplyNow(); }
            catch (Exception e) when (e is not OutOfMemoryException) { _log("zab: applying the last commits failed: " + e.Message); }
        }
    }

    private static QuorumConfig ConfigOf(IJuteRecord txn) =>
        txn is SetDataTxn sd && sd.Data is { } d
            ? QuorumConfig.ParseVerifier(System.Text.Encoding.UTF8.GetString(d))
            : throw new IOException("a reconfig txn without a SetDataTxn of the new config");

    private static long DesignatedLeader(byte[]? data) =>
        data is { Length: >= 8 } ? BinaryPrimitives.ReadInt64BigEndian(data) : throw new IOException("activate packet without the designated leader");

    /// <summary>INFORMANDACTIVATE's data is the designated leader (8 bytes), then the proposal.</summary>
    private static byte[] InformData(QuorumPacket qp)
    {
        var d = qp.Data ?? throw new IOException($"{ZabType.Name(qp.Type)} without data");
        if (qp.Type != ZabType.InformAndActivate) return d;
        if (d.Length < 8) throw new IOException("short INFORMANDACTIVATE");
        return d[8..];
    }

    private void SeeProposal(TxnHeader hdr, IJuteRecord txn)
    {
        if (hdr.Type != OpCode.Reconfig || !_quorum.ReconfigEnabled) return;
        try { _quorum.SetLastSeen(ConfigOf(txn), _log); }
        catch (KeeperConfigException e) { _log($"zab: unreadable config in reconfig proposal 0x{hdr.Zxid:x}: {e.Message}"); }
    }

    /// <summary>upstream QuorumPeer.processReconfig: activates a newer config and says whether this
    /// member must elect again — its role changed (updateLearnerType: observer ↔ voter; a member
    /// dropped from the view stays a non-voting participant) or its leader did (the designated one
    /// differs, or without one the leader is no longer a voter at the same address).</summary>
    private bool ProcessReconfig(QuorumConfig qv, long? designatedLeader)
    {
        if (!_quorum.ReconfigEnabled) return false;
        var prev = _quorum.Activate(qv, _log);
        _store.InitConfigNode(_quorum);
        if (prev is null) return false;
        bool nowObserver = qv.Servers.TryGetValue(_myId, out var me) && me.Type == LearnerType.Observer;
        bool roleChange = nowObserver != _observer;
        bool leaderChange;
        if (designatedLeader is long d) leaderChange = d != LeaderSid;
        else
        {
            prev.Servers.TryGetValue(LeaderSid, out var before);
            qv.Servers.TryGetValue(LeaderSid, out var after);
            leaderChange = before is null || after is null || before.Type != LearnerType.Participant || after.Type != LearnerType.Participant
                || before.Host != after.Host || before.QuorumPort != after.QuorumPort;
        }
        if (roleChange || leaderChange) _log($"zab: reconfig {qv.Version:x} changes {(roleChange ? "this member's role" : $"the leader (to {designatedLeader})")}; electing again");
        return roleChange || leaderChange;
    }

    private void CommitNext(LinkedList<Pending> pending, long zxid, bool alreadyLogged)
    {
        var (hdr, txn) = NextCommitted(pending, zxid, alreadyLogged);
        _store.Apply(hdr, txn);
    }

    /// <summary>Takes the oldest pending proposal, which <paramref name="zxid"/> must commit (upstream
    /// FollowerZooKeeperServer.commit), logging it first unless it is already.</summary>
    private (TxnHeader, IJuteRecord) NextCommitted(LinkedList<Pending> pending, long zxid, bool alreadyLogged = true)
    {
        var first = pending.First?.Value;
        if (first is null || first.Hdr.Zxid != zxid)
            throw new IOException($"Committing zxid 0x{zxid:x} but next pending txn 0x{first?.Hdr.Zxid ?? -1:x}");
        if (!alreadyLogged) _store.Log(first.Hdr, first.Txn, first.Digest);
        pending.RemoveFirst();
        return (first.Hdr, first.Txn);
    }

    /// <summary>Upstream Learner.connectToLeader: up to five attempts, a second apart.</summary>
    /// <summary>Upstream leaderConnectDelayDuringRetryMs: the pause between attempts to reach the leader.</summary>
    private const int ConnectRetryDelayMs = 100;

    /// <summary>Upstream Learner.connectToLeader and the first half of registerWithLeader: connects,
    /// sends FOLLOWERINFO (OBSERVERINFO) and reads the leader's first packet. A connection refused,
    /// or accepted and then closed before the leader's answer, is tried again every 100 ms within
    /// initLimit ticks. The second case is how a TCP proxy or load balancer in front of the quorum
    /// port reports a leader whose listener is not up yet (a follower settling its election before
    /// the leader binds the port): without the retry the follower went back to election, the
    /// leader timed out waiting for a quorum, and the two met again the same way every round
    /// (tests/ensemble/fault_test.py, cut fault). Upstream retries only the connect; nothing has
    /// been agreed before LEADERINFO, so a second FOLLOWERINFO on a new connection is safe.</summary>
    private (TcpClient, NetworkStream, BufferedStream, PeekableReadStream, ZabReader, QuorumPacket) Register(IPEndPoint ep, CancellationToken ct)
    {
        long deadline = Environment.TickCount64 + (long)_config.TickTime * _quorum.InitLimit;
        for (int attempt = 1; ; attempt++)
        {
            var c = new TcpClient { NoDelay = true };
            NetworkStream? net = null;
            BufferedStream? output = null;
            try
            {
                // Blocking from the start (Samsa.Net.BlockingConnect): this thread reads the leader's
                // packets with blocking calls, so each one wakes it directly.
                Samsa.Net.BlockingConnect.Connect(c.Client, ep, (int)Math.Clamp(deadline - Environment.TickCount64, 1, int.MaxValue), ct);
                c.ReceiveTimeout = _config.TickTime * _quorum.InitLimit;
                net = c.GetStream();
                output = new BufferedStream(net);
                var input = new PeekableReadStream(net);
                var reader = new ZabReader(input, _config.JuteMaxBuffer);
                var info = new LearnerInfo { Serverid = _myId, ProtocolVersion = ZabType.ProtocolVersion, ConfigVersion = _quorum.Version };
                // upstream Observer.observeLeader registers with OBSERVERINFO; the LearnerInfo is the same
                ZabWriter.Write(output, _observer ? ZabType.ObserverInfo : ZabType.FollowerInfo, ZabType.MakeZxid(_store.AcceptedEpoch, 0), info.ToBytes(), null);
                var first = reader.ReadPacket();
                return (c, net, output, input, reader, first);
            }
            catch (Exception e) when (e is SocketException or IOException or AggregateException)
            {
                output?.Dispose();
                net?.Dispose();
                c.Dispose();
                ct.ThrowIfCancellationRequested();
                string why = e is AggregateException a ? a.InnerException?.Message ?? a.Message : e.Message;
                if (Environment.TickCount64 + ConnectRetryDelayMs >= deadline)
                    throw new IOException($"cannot register with the leader at {ep} within initLimit ({attempt} attempt(s)): {why}");
                if (attempt == 1) _log($"zab: leader at {ep} not answering yet ({why}); trying again every {ConnectRetryDelayMs} ms within initLimit");
                if (ct.WaitHandle.WaitOne(ConnectRetryDelayMs)) ct.ThrowIfCancellationRequested();
            }
        }
    }
}
