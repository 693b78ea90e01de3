using System.Net;
using System.Net.Sockets;
using Samsa.Keeper.Server.Quorum;
using Xunit;

namespace Samsa.Keeper.Server.Tests;

/// <summary>
/// A follower that settles its election before the new leader listens on its quorum port, with a
/// TCP proxy in between (the proxy accepts, finds nothing behind it, closes): the follower must
/// keep trying within initLimit rather than go back to election. Found by
/// tests/ensemble/fault_test.py's cut fault: the two remaining Keepers met the same way in every
/// round (follower back to election at once, leader timing out after initLimit) and elected no
/// leader for over 60 s.
/// </summary>
public sealed class QuorumRegisterRetryTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "samsa-register-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    [Fact]
    public async Task A_follower_whose_first_connections_are_closed_unanswered_still_syncs_within_initLimit()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        // initLimit = 10 s: the budget for the three refused tries and the sync (the retries are
        // 100 ms apart); 2 s was spent on a loaded machine before the fake leader's fourth accept
        var config = FakeZabLeader.Config(port, _dir);
        var lines = new List<string>();
        using var store = new LearnerStore(config, l => { lock (lines) lines.Add(l); });
        long syncedEpoch = -1;
        var follower = new ZabFollower(2, config.Quorum, config, store, l => { lock (lines) lines.Add(l); }, e => syncedEpoch = e);

        int dropped = 0;
        var leader = Task.Run(async () =>
        {
            // "the leader is not up yet": the first three connections are closed before any answer
            for (; dropped < 3; dropped++)
            {
                using var early = await listener.AcceptTcpClientAsync();
                early.Client.Close();
            }
            using var c = await listener.AcceptTcpClientAsync();
            var s = c.GetStream();
            FakeZabLeader.SyncEmpty(s, new ZabReader(s, 1 << 20));
            // then the leader goes away; the follower's Follow ends with an IOException
        });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var following = Task.Run(() => follower.Follow(new IPEndPoint(IPAddress.Loopback, port), cts.Token));
        // following ends either way: after the sync when the fake leader hangs up, or (without the
        // retry) at the first closed connection
        await Assert.ThrowsAnyAsync<IOException>(() => following);
        listener.Stop();
        var leaderFailure = await Record.ExceptionAsync(() => leader);
        lock (lines) Assert.True(leaderFailure is null, $"the fake leader failed after {dropped} dropped connections: {leaderFailure?.Message}; follower: {string.Join(" | ", lines)}");

        Assert.Equal(3, dropped);
        Assert.Equal(1, syncedEpoch);
        Assert.Equal("DIFF", follower.SyncMode);
        Assert.Equal(1, store.CurrentEpoch);
        lock (lines) Assert.Contains(lines, l => l.Contains("not answering yet"));
    }
}
