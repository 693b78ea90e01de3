using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Samsa.Keeper.Server.Quorum;

/// <summary>
/// The election half of a quorum peer: its QuorumCnxManager listening on the server line's
/// election port and FastLeaderElection over it (QuorumMember runs it in a loop with ZAB). It
/// keeps the state the election ended in until <see cref="LookForLeaderAsync"/> runs again.
/// </summary>
public sealed class ElectionPeer : IAsyncDisposable
{
    private readonly QuorumCnxManager _cnx;
    private readonly FastLeaderElection _fle;

    private ElectionPeer(QuorumCnxManager cnx, FastLeaderElection fle, long myId)
    {
        _cnx = cnx; _fle = fle; MyId = myId;
    }

    public long MyId { get; }
    public ServerState State => _fle.State;
    public Vote? CurrentVote => _fle.CurrentVote;
    public QuorumCnxManager Connections => _cnx;

    /// <param name="lastLoggedZxid">The last zxid in the txn log (upstream getLastLoggedZxid).</param>
    /// <param name="currentEpoch">The epoch of dataDir/version-2/currentEpoch (upstream getCurrentEpoch).</param>
    public static ElectionPeer Start(QuorumConfig config, long myId, Func<long> lastLoggedZxid, Func<long> currentEpoch, Action<string> log)
    {
        if (!config.Servers.TryGetValue(myId, out var me)) throw new KeeperConfigException($"myid {myId} has no server.{myId} line");
        // upstream binds the server line's election address, or every address with quorumListenOnAllIPs
        var listenAt = new IPEndPoint(config.QuorumListenOnAllIPs ? IPAddress.Any : Resolve(me.Host), me.ElectionPort);
        var cnx = new QuorumCnxManager(myId, sid => config.Servers.TryGetValue(sid, out var s) ? new IPEndPoint(Resolve(s.Host), s.ElectionPort) : null,
            listenAt, string.Create(CultureInfo.InvariantCulture, $"{me.Host}:{me.ElectionPort}"), log);
        var fle = new FastLeaderElection(cnx, myId, config, lastLoggedZxid, currentEpoch, log);
        cnx.Start();
        fle.Start();
        return new ElectionPeer(cnx, fle, myId);
    }

    private static IPAddress Resolve(string host)
    {
        if (IPAddress.TryParse(host, out var a)) return a;
        return Dns.GetHostAddresses(host).FirstOrDefault(x => x.AddressFamily == AddressFamily.InterNetwork)
            ?? throw new KeeperConfigException($"cannot resolve {host}");
    }

    public void UpdateElectionVote(long newEpoch) => _fle.UpdateElectionVote(newEpoch);

    public Task<Vote> LookForLeaderAsync(CancellationToken ct) => _fle.LookForLeaderAsync(ct);

    public async ValueTask DisposeAsync()
    {
        await _fle.DisposeAsync();
        await _cnx.DisposeAsync();
    }
}
