using System.Net;
using System.Net.Sockets;
using Samsa.Keeper.Client;
using Samsa.Keeper.Server.Quorum;
using Xunit;
using Xunit.Abstractions;

namespace Samsa.Keeper.Server.Tests;

/// <summary>
/// A Keeper follower serving clients in an ensemble with Apache ZooKeeper 3.8.0 members (Apache
/// leader): sessions are created through the leader, writes are forwarded and answered at commit,
/// reads are local; what one member's client writes, every member's clients read.
/// </summary>
public sealed class QuorumServingTests(ITestOutputHelper output)
    : QuorumEnsembleTestBase(output, "keeper-serve-", TimeSpan.FromSeconds(30))
{
    [Fact]
    public async Task Clients_of_a_Keeper_follower_and_of_Apache_members_see_each_others_writes()
    {
        var a2 = Apache(2);
        var a3 = Apache(3);
        Assert.Equal("leader", await a3.WaitForModeAsync(Wait));
        var k1 = Keeper(1);
        await Until(() => k1.Synced, "keeper 1 did not sync");
        int kPort = k1.ClientEndPoint!.Port;
        Assert.Contains("Mode: follower", await FourLetter(kPort, "srvr"));
        Assert.Contains("zk_server_state\tfollower", await FourLetter(kPort, "mntr"));

        await using var viaKeeper = await Connect(kPort);
        await using var viaLeader = await Connect(a3.ClientPort);
        await using var viaFollower = await Connect(a2.ClientPort);
        // the session was created by the Apache leader: its id carries the Keeper's server id
        Assert.Equal(1, viaKeeper.SessionId >>> 56);

        // a write through the Keeper is committed by the ensemble and read on both Apache members
        await viaKeeper.CreateAsync("/from-keeper", "k"u8.ToArray(), Acls.OpenAclUnsafe);
        Assert.Equal("k"u8.ToArray(), (await viaLeader.GetDataAsync("/from-keeper")).Data);
        await viaFollower.SyncAsync("/from-keeper");
        Assert.Equal("k"u8.ToArray(), (await viaFollower.GetDataAsync("/from-keeper")).Data);

        // a write through Apache fires the Keeper client's watch and is read through the Keeper
        var fired = new TaskCompletionSource<WatchedEvent>(TaskCreationOptions.RunContinuationsAsynchronously);
        await viaKeeper.ExistsAsync("/from-apache", e => fired.TrySetResult(e));
        await viaLeader.CreateAsync("/from-apache", "a"u8.ToArray(), Acls.OpenAclUnsafe);
        var ev = await fired.Task.WaitAsync(Wait);
        Assert.Equal(Samsa.Keeper.Client.EventType.NodeCreated, ev.Type);
        Assert.Equal("a"u8.ToArray(), (await viaKeeper.GetDataAsync("/from-apache")).Data);

        // sync through the Keeper goes to the leader: a read after it sees a write made through another member
        for (int i = 0; i < 5; i++)
        {
            await viaLeader.CreateAsync($"/synced{i}", null, Acls.OpenAclUnsafe);
            Assert.Equal($"/synced{i}", await viaKeeper.SyncAsync($"/synced{i}"));
            Assert.NotNull(await viaKeeper.ExistsAsync($"/synced{i}"));
        }

        // errors come back from the leader's checks: a second create, a wrong version
        var dup = await Assert.ThrowsAsync<Samsa.Keeper.Client.KeeperException>(() => viaKeeper.CreateAsync("/from-apache", null, Acls.OpenAclUnsafe));
        Assert.Equal(Samsa.Keeper.Protocol.Code.NodeExists, dup.Code);
        var bad = await Assert.ThrowsAsync<Samsa.Keeper.Client.KeeperException>(() => viaKeeper.SetDataAsync("/from-apache", null, version: 7));
        Assert.Equal(Samsa.Keeper.Protocol.Code.BadVersion, bad.Code);

        // an ephemeral of the Keeper client's session lives on every member until the session closes
        var eph = await Connect(kPort);
        await eph.CreateAsync("/eph", null, Acls.OpenAclUnsafe, Samsa.Keeper.Client.CreateMode.Ephemeral);
        Assert.NotNull(await viaLeader.ExistsAsync("/eph"));
        await eph.DisposeAsync();
        await Until(() => viaLeader.ExistsAsync("/eph").GetAwaiter().GetResult() is null, "the ephemeral outlived its session");
        await Until(() => k1.Store.Read(t => t.GetNode("/eph")) is null, "the Keeper kept the ephemeral of a closed session");
    }

    [Fact]
    public async Task Two_Keeper_followers_and_an_Apache_leader_serve_clients_and_lose_no_acknowledged_write_when_a_Keeper_stops()
    {
        var a3 = Apache(3);
        Assert.True(await a3.WaitForLogAsync("New election. My id = 3", Wait), a3.Log);
        var k1 = Keeper(1);
        var k2 = Keeper(2);
        Assert.Equal("leader", await a3.WaitForModeAsync(Wait));
        await Until(() => k1.Synced && k2.Synced, "the Keepers did not sync");
        var acked = new List<string>();
        await using (var c1 = await Connect(k1.ClientEndPoint!.Port))
        {
            for (int i = 0; i < 20; i++) { await c1.CreateAsync($"/w{i}", null, Acls.OpenAclUnsafe); acked.Add($"/w{i}"); }
        }
        await using var c2 = await Connect(k2.ClientEndPoint!.Port);
        await c2.SyncAsync("/");
        Assert.Equal(20, (await c2.GetChildrenAsync("/")).Count(n => n.StartsWith('w')));
        // keeper 1 stops; the Apache leader and keeper 2 are still a quorum
        await k1.DisposeAsync();
        _members.Remove(k1);
        for (int i = 20; i < 30; i++) { await c2.CreateAsync($"/w{i}", null, Acls.OpenAclUnsafe); acked.Add($"/w{i}"); }
        await using var ca = await Connect(a3.ClientPort);
        var children = await ca.GetChildrenAsync("/");
        Assert.All(acked, p => Assert.Contains(p[1..], children));
    }
}
