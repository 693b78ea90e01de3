using Samsa.Keeper.Server.Quorum;
using Xunit;
using Xunit.Abstractions;

namespace Samsa.Keeper.Server.Tests;

/// <summary>
/// Leader election in loopback ensembles that mix the Keeper's FastLeaderElection with Debian's
/// Apache ZooKeeper 3.8.0: every member must settle on the same leader, whichever implementation
/// it is. (The Keeper has no ZAB yet, so an Apache leader with only Keeper followers gives up
/// after initLimit; these tests check the election outcome, which both sides report.)
/// </summary>
public sealed class QuorumElectionTests : IAsyncLifetime
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private readonly string _root = Path.Combine(Path.GetTempPath(), "keeper-quorum-" + Guid.NewGuid().ToString("N"));
    private readonly List<IAsyncDisposable> _members = new();
    private readonly ITestOutputHelper _out;
    private readonly QuorumLayout _layout = new(3);

    public QuorumElectionTests(ITestOutputHelper output) => _out = output;

    public Task InitializeAsync() { Directory.CreateDirectory(_root); return Task.CompletedTask; }

    public async Task DisposeAsync()
    {
        foreach (var m in _members) await m.DisposeAsync();
        try { Directory.Delete(_root, true); } catch (IOException) { }
    }

    private ElectionPeer Keeper(long sid, long zxid = 0, long epoch = 0)
    {
        var p = ElectionPeer.Start(_layout.Config(), sid, () => zxid, () => epoch, line => Log($"keeper {sid}: {line}"));
        _members.Add(p);
        return p;
    }

    private void Log(string line)
    {
        try { _out.WriteLine(line); } catch (InvalidOperationException) { } // after the test ended
    }

    private ApacheQuorumPeer Apache(long sid)
    {
        var p = ApacheQuorumPeer.Start(_layout, sid, _root);
        _members.Add(p);
        return p;
    }

    private static async Task<Vote> Elect(ElectionPeer p)
    {
        using var cts = new CancellationTokenSource(Wait);
        return await p.LookForLeaderAsync(cts.Token);
    }

    [Fact]
    public async Task A_Keeper_joining_two_serving_Apache_peers_learns_their_leader()
    {
        var a2 = Apache(2);
        var a3 = Apache(3);
        // 2 and 3 are a quorum of three without the Keeper: the one with the larger id leads
        Assert.Equal("leader", await a3.WaitForModeAsync(Wait));
        Assert.Equal("follower", await a2.WaitForModeAsync(Wait));
        var k1 = Keeper(1);
        var vote = await Elect(k1);
        Assert.Equal(3, vote.Id);
        Assert.Equal(ServerState.Following, k1.State);
        // upstream decoded the Keeper's notifications (it logs each one it receives)
        Assert.True(await a3.WaitForLogAsync("n.sid:1, n.state:LOOKING", Wait), a3.Log);
    }

    [Fact]
    public async Task Apache_peers_elect_the_Keeper_when_its_log_is_newest()
    {
        // the Keeper has the lowest id but the highest zxid: upstream's order (epoch, zxid, sid) makes it leader
        var k1 = Keeper(1, zxid: 0x100000005, epoch: 1);
        var electing = Elect(k1);
        var a2 = Apache(2);
        var a3 = Apache(3);
        var vote = await electing;
        Assert.Equal(1, vote.Id);
        Assert.Equal(ServerState.Leading, k1.State);
        // each Apache peer settles on following server 1 (Follower logs this once elected)
        Assert.True(await a2.WaitForLogAsync("FOLLOWING - LEADER ELECTION TOOK", Wait), a2.Log);
        Assert.True(await a3.WaitForLogAsync("FOLLOWING - LEADER ELECTION TOOK", Wait), a3.Log);
        // (server 1's state in it is LOOKING, or LEADING when 1 and 3 settled before a2's JVM was up)
        Assert.Matches(@"Notification: my state:LOOKING; n\.sid:1, n\.state:(LOOKING|LEADING), n\.leader:1,", a2.Log);
    }

    [Fact]
    public async Task Two_Keepers_joining_a_looking_Apache_peer_agree_on_it_as_leader()
    {
        // the Apache peer looks first (alone it cannot settle); the first Keeper makes a quorum
        // with it and both settle on its larger id, the second learns that leader from them. (Two
        // Keepers started before it would be a quorum of their own and rightly elect server 2, as
        // two Apache peers would.)
        var a3 = Apache(3);
        Assert.True(await a3.WaitForLogAsync("New election. My id = 3", Wait), a3.Log);
        // One Keeper at a time: two Keepers started together hear each other at once and settle on
        // server 2 unless the Apache peer's notification (it connects back to the smaller ids)
        // arrives within finalizeWait, which a loaded machine does not promise.
        var k1 = Keeper(1);
        var v1 = await Elect(k1);
        var k2 = Keeper(2);
        var votes = new[] { v1, await Elect(k2) };
        Assert.All(votes, v => Assert.Equal(3, v.Id));
        Assert.Equal(ServerState.Following, k1.State);
        Assert.Equal(ServerState.Following, k2.State);
        Assert.True(await a3.WaitForLogAsync("LEADING - LEADER ELECTION TOOK", Wait), a3.Log);
    }

    [Fact]
    public async Task Three_Keepers_elect_the_largest_id_and_the_survivors_elect_again_after_it_stops()
    {
        var ks = new[] { Keeper(1), Keeper(2), Keeper(3) };
        var votes = await Task.WhenAll(ks.Select(Elect));
        Assert.All(votes, v => Assert.Equal(3, v.Id));
        Assert.Equal(ServerState.Leading, ks[2].State);
        await ks[2].DisposeAsync();
        _members.Remove(ks[2]);
        var again = await Task.WhenAll(Elect(ks[0]), Elect(ks[1]));
        Assert.All(again, v => Assert.Equal(2, v.Id));
        Assert.Equal(ServerState.Leading, ks[1].State);
        Assert.Equal(ServerState.Following, ks[0].State);
    }

    [Fact]
    public async Task A_member_with_a_longer_log_from_an_older_epoch_follows_the_established_leader()
    {
        // 1 and 2 elect 2 and (as ZAB does once synced) report the new epoch 2 in their votes;
        // a few more rounds put their logical clock ahead of the newcomer's
        var k1 = Keeper(1, zxid: 0x100000010, epoch: 1);
        var k2 = Keeper(2, zxid: 0x100000010, epoch: 1);
        for (int round = 0; round < 3; round++)
        {
            var votes = await Task.WhenAll(Elect(k1), Elect(k2));
            Assert.All(votes, v => Assert.Equal(2, v.Id));
        }
        k1.UpdateElectionVote(2);
        k2.UpdateElectionVote(2);
        // 3 was the old leader, cut off: one more txn logged in epoch 1 than the others have
        // (it would win the election if the others were looking), and a round of its own
        var k3 = Keeper(3, zxid: 0x100000011, epoch: 1);
        var started = DateTime.UtcNow;
        var vote = await Elect(k3);
        Assert.Equal(2, vote.Id);
        Assert.Equal(ServerState.Following, k3.State);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(5), $"took {DateTime.UtcNow - started}");
        Assert.Equal(ServerState.Leading, k2.State);
        Assert.Equal(ServerState.Following, k1.State);
    }

    [Fact]
    public async Task A_Keeper_with_a_longer_log_from_an_older_epoch_follows_the_Apache_leader()
    {
        var a2 = Apache(2);
        var a3 = Apache(3);
        Assert.Equal("leader", await a3.WaitForModeAsync(Wait));
        Assert.Equal("follower", await a2.WaitForModeAsync(Wait));
        // 2 and 3 lead/follow in epoch 1 with nothing logged; the Keeper has logged more, in epoch 0
        var k1 = Keeper(1, zxid: 0x20, epoch: 0);
        var started = DateTime.UtcNow;
        var vote = await Elect(k1);
        Assert.Equal(3, vote.Id);
        Assert.Equal(ServerState.Following, k1.State);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(5), $"took {DateTime.UtcNow - started}");
    }
}
