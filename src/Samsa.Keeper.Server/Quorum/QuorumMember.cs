using System.Net;
using Samsa.Net;

namespace Samsa.Keeper.Server.Quorum;

/// <summary>
/// A quorum member's main loop, as upstream QuorumPeer.run: elect; when following, run ZAB as a
/// follower until the leader goes away; when leading, run ZAB as the leader (Quorum/ZabLeader)
/// until a quorum is lost; elect again. Leading needs the serving server (serveClients), whose
/// request path prepares the txns.
/// </summary>
public sealed class QuorumMember : IAsyncDisposable, ILeaderLink
{
    private readonly KeeperConfig _config;
    private readonly CancellationTokenSource _stop = new();
    private readonly Action<string> _log;
    private Task? _loop;

    public LearnerStore Store { get; private set; }
    public long MyId { get; }
    public ServerState State => _election.State;
    public long? LeaderId => _election.CurrentVote?.Id;
    /// <summary>True while following a leader in the broadcast phase.</summary>
    public bool Synced => _follower?.UpToDate == true;
    /// <summary>True while observing a leader in the broadcast phase (server line role observer).</summary>
    public bool Observing => _follower is { IsObserver: true, UpToDate: true };
    public string? LastSyncMode => _follower?.SyncMode;
    /// <summary>Elections run so far.</summary>
    public int Elections { get; private set; }
    private volatile ZabFollower? _follower;
    private ElectionPeer _election = null!;
    private FrameListener? _listener;
    private Timer? _purgeTimer;

    /// <summary>The member's client-serving server, when started with serveClients.</summary>
    public KeeperServer? Server { get; private set; }
    /// <summary>The client port actually bound (clientPort 0 picks a free one).</summary>
    public IPEndPoint? ClientEndPoint => _listener?.LocalEndPoint;

    private QuorumMember(KeeperConfig config, long myId, Action<string> log)
    {
        _config = config; MyId = myId; _log = log;
        Store = null!;
    }

    bool ILeaderLink.Serving => _follower?.UpToDate == true || _leader?.Serving == true;
    bool ILeaderLink.Leading => _leader?.Serving == true;
    bool ILeaderLink.Observing => _follower?.IsObserver == true;
    bool ILeaderLink.Looking => _follower is null && _leader is null && _election is { State: ServerState.Looking };
    (long Id, string Host)? ILeaderLink.LeaderOf =>
        (_leader is { Serving: true } || _follower is { UpToDate: true }) && LeaderId is long id && _config.Quorum.Servers.TryGetValue(id, out var s)
            ? (id, s.Host) : null;
    LeaderStats? ILeaderLink.LeaderStats => _leader is { Serving: true } l ? l.Stats() : null;
    bool ILeaderLink.Forward(long sessionId, int cxid, int type, byte[] body, List<Samsa.Keeper.Protocol.Records.Id> authInfo)
    {
        // on the leader, this member's clients' requests enter the proposal pipeline directly
        if (_leader is { Serving: true } l) { l.SubmitLocal(sessionId, cxid, type, body, authInfo); return true; }
        return _follower is { } f && f.Forward(sessionId, cxid, type, body, authInfo);
    }
    bool ILeaderLink.Revalidate(long sessionId, int timeout) =>
        _leader is { Serving: true } l ? l.RevalidateLocal(sessionId, timeout) : _follower is { } f && f.Revalidate(sessionId, timeout);

    /// <summary>True while leading with a synced quorum.</summary>
    public bool Leading => _leader?.Serving == true;
    private volatile ZabLeader? _leader;

    /// <summary>Validates the quorum keys (myid from dataDir unless <paramref name="myId"/> is given),
    /// recovers the store and starts electing.</summary>
    /// <param name="serveClients">Also serve clients on clientPortAddress:clientPort (reads locally,
    /// writes through the leader) once synced with a leader.</param>
    public static QuorumMember Start(KeeperConfig config, Action<string> log, long? myId = null, bool serveClients = false)
    {
        var q = config.Quorum;
        if (myId is null) { q.Validate(config); myId = q.MyId; foreach (var w in q.Warnings) log(w); }
        q.ReconfigEnabled = config.ReconfigEnabled;
        if (q.MyId < 0) q.MyId = myId.Value;
        var m = new QuorumMember(config, myId.Value, log);
        if (serveClients)
        {
            m.Server = new KeeperServer(config);
            m.Server.UseLeaderLink(m);
        }
        m.Store = new LearnerStore(config, log, m.Server);
        if (m.Server is not null)
        {
            m.Server.Start();
            var addr = IPAddress.Parse(config.ClientPortAddress);
            m._listener = new FrameListener(new IPEndPoint(addr, config.ClientPort), new KeeperFrameHandler(m.Server),
                new ListenerOptions { Name = "keeper client", MaxFrameBytes = config.JuteMaxBuffer + 1024 });
            m._listener.Start();
        }
        // upstream QuorumPeerMain: initConfigInZKDatabase once the database is loaded
        m.Store.InitConfigNode(q);
        // upstream QuorumPeerMain starts DatadirCleanupManager on every member: a purge at once, then every purgeInterval
        if (config.AutopurgeIntervalMs > 0 && !string.IsNullOrEmpty(config.DataDir))
            m._purgeTimer = new Timer(_ => m.AutoPurge(), null, 0, config.AutopurgeIntervalMs);
        m._election = ElectionPeer.Start(q, myId.Value, () => m.Store.LastLoggedZxid, () => m.Store.CurrentEpoch, log);
        m._loop = Task.Factory.StartNew(m.Run, TaskCreationOptions.LongRunning);
        return m;
    }

    private void Run()
    {
        var ct = _stop.Token;
        while (!ct.IsCancellationRequested)
        {
            Vote vote;
            try
            {
                Elections++;
                vote = _election.LookForLeaderAsync(ct).GetAwaiter().GetResult();
            }
            catch (OperationCanceledException) { return; }
            // a config adopted from a peer's notification during the election (reconfig) shows in /zookeeper/config
            if (_config.Quorum.ReconfigEnabled) Store.InitConfigNode(_config.Quorum);
            if (_election.State is ServerState.Following or ServerState.Observing)
            {
                bool observing = _election.State == ServerState.Observing;
                if (!_config.Quorum.Servers.TryGetValue(vote.Id, out var server))
                {
                    _log($"zab: elected leader {vote.Id} has no server line here; looking again");
                    if (ct.WaitHandle.WaitOne(_config.TickTime)) return;
                    continue;
                }
                var follower = new ZabFollower(MyId, _config.Quorum, _config, Store, _log, _election.UpdateElectionVote, Server, observing) { LeaderSid = vote.Id };
                _follower = follower;
                try
                {
                    follower.Follow(new IPEndPoint(Resolve(server.Host), server.QuorumPort), ct);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    // whatever ends following (the leader gone, a bad packet, a failure applying a txn)
                    // sends the member back to election, as upstream's QuorumPeer.run does
                    if (!ct.IsCancellationRequested)
                        _log($"zab: stopped {(observing ? "observing" : "following")} {vote.Id}: " + (e is IOException or InvalidDataException or Samsa.Keeper.Protocol.JuteException ? e.Message : e.ToString()));
                }
                _follower = null;
                Server?.LeaderLost();
                // upstream Observer.waitForObserverElectionDelay: an observer waits a random part of
                // zookeeper.observer.election.DelayMs (200 ms) before looking again, so a lost leader
                // does not bring every observer into the election at once
                if (observing && ct.WaitHandle.WaitOne(Random.Shared.Next(200))) return;
            }
            else if (_election.State == ServerState.Leading)
            {
                if (Server is null)
                {
                    // the leader prepares txns with the serving server's request path
                    _log("zab: elected leader, but this member was started without a server; looking again after initLimit ticks");
                    if (ct.WaitHandle.WaitOne(_config.TickTime * Math.Max(1, _config.Quorum.InitLimit))) return;
                    continue;
                }
                var leader = new ZabLeader(MyId, _config.Quorum, _config, Store, _log, _election.UpdateElectionVote, Server);
                _leader = leader;
                try
                {
                    leader.Lead(ct);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    if (!ct.IsCancellationRequested)
                        _log("zab: stopped leading: " + (e is IOException or InvalidDataException ? e.Message : e.ToString()));
                }
                _leader = null;
                Server.LeaderLost();
            }
        }
    }

    /// <summary>Files autopurge deleted since start (tests, figures).</summary>
    public int PurgedFiles => Volatile.Read(ref _purgedFiles);
    private int _purgedFiles;

    private void AutoPurge()
    {
        try
        {
            var deleted = Store.Purge();
            if (deleted.Count == 0) return;
            Interlocked.Add(ref _purgedFiles, deleted.Count);
            _log($"autopurge: deleted {string.Join(", ", deleted)}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { _log("autopurge failed: " + e.Message); }
    }

    private static IPAddress Resolve(string host) =>
        IPAddress.TryParse(host, out var a) ? a : Dns.GetHostAddresses(host).First(x => x.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork);

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _purgeTimer?.Dispose();
        if (_loop is not null) { try { await _loop; } catch (Exception) { } }
        if (_listener is not null) await _listener.DisposeAsync();
        await _election.DisposeAsync();
        if (Server is not null) await Server.DisposeAsync();
        Store.Dispose();
    }
}
