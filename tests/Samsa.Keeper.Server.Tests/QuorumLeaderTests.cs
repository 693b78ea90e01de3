using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Samsa.Keeper.Client;
using Samsa.Keeper.Server.Quorum;
using Xunit;
using Xunit.Abstractions;

namespace Samsa.Keeper.Server.Tests;

/// <summary>
/// A Keeper leading an ensemble (Quorum/ZabLeader): three Keepers elect one of themselves, replicate
/// what any member's client writes, and survive the leader stopping; Apache ZooKeeper 3.8.0
/// followers sync from a Keeper leader (DIFF and SNAP) and serve writes and reads.
/// </summary>
public sealed class QuorumLeaderTests(ITestOutputHelper output)
    : QuorumEnsembleTestBase(output, "keeper-lead-", TimeSpan.FromSeconds(40))
{
    [Fact]
    public async Task Three_Keepers_elect_a_leader_replicate_writes_and_survive_the_leader_stopping()
    {
        var sw = Stopwatch.StartNew();
        var ks = new[] { Keeper(1), Keeper(2), Keeper(3) };
        await Until(() => ks.Count(k => k.Leading) == 1 && ks.Count(k => k.Synced) == 2, "no Keeper leader with two synced followers");
        Log($"figure: 3 Keepers serving after {sw.ElapsedMilliseconds} ms");
        var leader = ks.Single(k => k.Leading);
        Assert.Contains("Mode: leader", await FourLetter(leader.ClientEndPoint!.Port, "srvr"));

        // a write through each member is read through every member
        for (int i = 0; i < 3; i++)
        {
            await using var c = await Connect(ks[i].ClientEndPoint!.Port);
            await c.CreateAsync($"/w{i}", new[] { (byte)i }, Acls.OpenAclUnsafe);
        }
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
                Assert.Equal(new[] { (byte)i }, await ReadSynced(ks[j].ClientEndPoint!.Port, $"/w{i}"));

        // an ephemeral of a session on a follower exists everywhere while the session lives
        var follower = ks.First(k => !k.Leading);
        await using (var eph = await Connect(follower.ClientEndPoint!.Port))
        {
            await eph.CreateAsync("/eph", null, Acls.OpenAclUnsafe, Samsa.Keeper.Client.CreateMode.Ephemeral);
            await using var onLeader = await Connect(leader.ClientEndPoint!.Port);
            await onLeader.SyncAsync("/eph");
            Assert.NotNull(await onLeader.ExistsAsync("/eph"));
        }
        await using (var check = await Connect(leader.ClientEndPoint!.Port))
        {
            // closing the session deleted its ephemeral through the leader
            await check.SyncAsync("/");
            Assert.Null(await check.ExistsAsync("/eph"));
        }

        // the leader stops: the other two elect a new leader and keep every acknowledged write
        var rest = ks.Where(k => k != leader).ToArray();
        sw.Restart();
        await leader.DisposeAsync();
        _members.Remove(leader);
        await Until(() => rest.Count(k => k.Leading) == 1 && rest.Count(k => k.Synced) == 1, "no new leader after the leader stopped");
        Log($"figure: failover to a new Keeper leader in {sw.ElapsedMilliseconds} ms");
        foreach (var k in rest)
            for (int i = 0; i < 3; i++)
                Assert.Equal(new[] { (byte)i }, await ReadSynced(k.ClientEndPoint!.Port, $"/w{i}"));
        await using var after = await Connect(rest[0].ClientEndPoint!.Port);
        await after.CreateAsync("/after", "x"u8.ToArray(), Acls.OpenAclUnsafe);
        Assert.Equal("x"u8.ToArray(), await ReadSynced(rest[1].ClientEndPoint!.Port, "/after"));
    }

    [Fact]
    public async Task Apache_followers_sync_from_a_Keeper_leader_by_diff_and_snap_and_serve()
    {
        // the Keeper has the largest server id, so it wins the election among equals
        var k3 = Keeper(3);
        var a1 = Apache(1);
        await Until(() => k3.Leading, "the Keeper did not lead");
        Assert.Equal("follower", await a1.WaitForModeAsync(Wait));
        await using (var c = await Connect(a1.ClientPort))
        {
            await c.CreateAsync("/via-apache", "a"u8.ToArray(), Acls.OpenAclUnsafe);
            Assert.Equal(1, c.SessionId >>> 56);
        }
        await using (var c = await Connect(k3.ClientEndPoint!.Port))
        {
            Assert.Equal("a"u8.ToArray(), (await c.GetDataAsync("/via-apache")).Data);
            await c.CreateAsync("/via-keeper", "k"u8.ToArray(), Acls.OpenAclUnsafe);
        }
        Assert.Equal("k"u8.ToArray(), await ReadSynced(a1.ClientPort, "/via-keeper"));

        // a late follower gets the committed txns by DIFF
        var a2 = Apache(2);
        Assert.Equal("follower", await a2.WaitForModeAsync(Wait));
        Assert.True(await a2.WaitForLogAsync("Getting a diff from the leader", Wait), a2.Log);
        Assert.Equal("a"u8.ToArray(), await ReadSynced(a2.ClientPort, "/via-apache"));
        Assert.Equal("k"u8.ToArray(), await ReadSynced(a2.ClientPort, "/via-keeper"));

        // both Apache members go away (their data with them); fresh ones sync by SNAP from the Keeper,
        // which leads again with the newest state
        await a1.DisposeAsync(); _members.Remove(a1);
        await a2.DisposeAsync(); _members.Remove(a2);
        await Until(() => !k3.Leading, "the Keeper kept leading without a quorum");
        var a1b = Apache(1);
        await Until(() => k3.Leading, "the Keeper did not lead again");
        Assert.Equal("follower", await a1b.WaitForModeAsync(Wait));
        Assert.True(await a1b.WaitForLogAsync("Getting a snapshot from leader", Wait), a1b.Log);
        Assert.Equal("a"u8.ToArray(), await ReadSynced(a1b.ClientPort, "/via-apache"));
        Assert.Equal("k"u8.ToArray(), await ReadSynced(a1b.ClientPort, "/via-keeper"));
        await using (var c = await Connect(a1b.ClientPort))
            await c.SetDataAsync("/via-apache", "b"u8.ToArray(), -1);
        Assert.Equal("b"u8.ToArray(), await ReadSynced(k3.ClientEndPoint!.Port, "/via-apache"));
    }

    [Fact]
    public async Task A_session_whose_client_vanished_from_a_follower_expires_at_the_Keeper_leader()
    {
        var ks = new[] { Keeper(1), Keeper(2), Keeper(3) };
        await Until(() => ks.Count(k => k.Leading) == 1 && ks.Count(k => k.Synced) == 2, "no Keeper leader with two synced followers");
        var leader = ks.Single(k => k.Leading);
        var follower = ks.First(k => !k.Leading);
        var c = new TestClient(follower.Server!);
        var rsp = await c.ConnectAsync(timeout: 1000);
        Assert.NotEqual(0, rsp.SessionId);
        var (err, _, _) = await c.CreateAsync("/vanishing", flags: 1); // ephemeral
        Assert.Equal(0, err);
        await using var watcher = await Connect(leader.ClientEndPoint!.Port);
        Assert.NotNull(await watcher.ExistsAsync("/vanishing"));
        // the client's connection drops without closeSession: the follower stops touching the
        // session in its PING answers and the leader expires it, deleting the ephemeral everywhere
        var sw = Stopwatch.StartNew();
        follower.Server!.ConnectionClosed(c.Conn);
        await Until(() => watcher.ExistsAsync("/vanishing").GetAwaiter().GetResult() is null, "the session did not expire");
        Log($"figure: ephemeral gone {sw.ElapsedMilliseconds} ms after its 1000 ms session's connection dropped");
        Assert.True(sw.ElapsedMilliseconds >= 900, "expired before its timeout");
        foreach (var k in ks)
        {
            await using var r = await Connect(k.ClientEndPoint!.Port);
            await r.SyncAsync("/");
            Assert.Null(await r.ExistsAsync("/vanishing"));
        }
    }
}
