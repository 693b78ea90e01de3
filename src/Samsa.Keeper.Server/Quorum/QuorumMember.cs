using System.Net;

namespace Samsa.Keeper.Server.Quorum;

/// <summary>
/// A quorum member's main loop, as upstream QuorumPeer.run: elect; when following, run ZAB as a
/// follower until the leader goes away; elect again. Leading is not implemented yet: a Keeper
/// elected leader says so, waits initLimit ticks (so its would-be followers give up too) and looks
/// again — an ensemble whose best candidate is a Keeper does not make progress until the leader
/// side exists (compat/FINDINGS.md, issue #17).
/// </summary>
public sealed class QuorumMember : IAsyncDisposable
{
    private readonly KeeperConfig _config;
    private readonly ElectionPeer _election;
    private readonly CancellationTokenSource _stop = new();
    private readonly Action<string> _log;
    private Task? _loop;

    public LearnerStore Store { get; }
    public long MyId { get; }
    public ServerState State => _election.State;
    public long? LeaderId => _election.CurrentVote?.Id;
    /// <summary>True while following a leader in the broadcast phase.</summary>
    public bool Synced => _follower?.UpToDate == true;
    public string? LastSyncMode => _follower?.SyncMode;
    /// <summary>Elections run so far.</summary>
    public int Elections { get; private set; }
    private volatile ZabFollower? _follower;

    private QuorumMember(KeeperConfig config, long myId, LearnerStore store, ElectionPeer election, Action<string> log)
    {
        _config = config; MyId = myId; Store = store; _election = election; _log = log;
    }

    /// <summary>Validates the quorum keys (myid from dataDir unless <paramref name="myId"/> is given),
    /// recovers the store and starts electing.</summary>
    public static QuorumMember Start(KeeperConfig config, Action<string> log, long? myId = null)
    {
        var q = config.Quorum;
        if (myId is null) { q.Validate(config); myId = q.MyId; }
        var store = new LearnerStore(config, log);
        var election = ElectionPeer.Start(q, myId.Value, () => store.LastLoggedZxid, () => store.CurrentEpoch, log);
        var m = new QuorumMember(config, myId.Value, store, election, log);
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
            if (_election.State == ServerState.Following)
            {
                var server = _config.Quorum.Servers[vote.Id];
                var follower = new ZabFollower(MyId, _config.Quorum, _config, Store, _log, _election.UpdateElectionVote);
                _follower = follower;
                try
                {
                    follower.Follow(new IPEndPoint(Resolve(server.Host), server.QuorumPort), ct);
                }
                catch (Exception e) when (e is IOException or InvalidDataException or Samsa.Keeper.Protocol.JuteException or ObjectDisposedException or OperationCanceledException)
                {
                    if (!ct.IsCancellationRequested) _log($"zab: stopped following {vote.Id}: {e.Message}");
                }
                _follower = null;
            }
            else if (_election.State == ServerState.Leading)
            {
                _log("zab: elected leader, but the Keeper cannot lead an ensemble yet (issue #17); looking again after initLimit ticks");
                if (ct.WaitHandle.WaitOne(_config.TickTime * Math.Max(1, _config.Quorum.InitLimit))) return;
            }
        }
    }

    private static IPAddress Resolve(string host) =>
        IPAddress.TryParse(host, out var a) ? a : Dns.GetHostAddresses(host).First(x => x.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork);

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        if (_loop is not null) { try { await _loop; } catch (Exception) { } }
        await _election.DisposeAsync();
        Store.Dispose();
    }
}
