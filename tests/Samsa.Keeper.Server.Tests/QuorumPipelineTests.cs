using Samsa.Keeper.Client;
using Samsa.Keeper.Server.Quorum;
using Xunit;
using Xunit.Abstractions;
using KCode = Samsa.Keeper.Protocol.Code;

namespace Samsa.Keeper.Server.Tests;

/// <summary>
/// The Keeper leader's pipeline (ZabLeader: many proposals in flight, each prepared against the
/// ones before it). Each client below sends its requests without waiting for answers, so a
/// request reaches the leader while the ones before it are still proposals: it must see their
/// versions, nodes and ephemeral owners (upstream outstandingChanges), and every session's
/// answers must come in the order it sent them.
/// </summary>
public sealed class QuorumPipelineTests(ITestOutputHelper output)
    : QuorumEnsembleTestBase(output, "keeper-pipe-", TimeSpan.FromSeconds(60))
{
    private async Task<QuorumMember[]> ThreeKeepers()
    {
        var ks = new[] { Keeper(1), Keeper(2), Keeper(3) };
        await Until(() => ks.Count(k => k.Leading) == 1 && ks.Count(k => k.Synced) == 2, "no Keeper leader with two synced followers");
        return ks;
    }

    [Fact]
    public async Task Pipelined_writes_of_several_sessions_see_the_pending_ones_before_them_and_answer_in_session_order()
    {
        var ks = await ThreeKeepers();
        var leader = ks.Single(k => k.Leading);
        var followers = ks.Where(k => !k.Leading).ToArray();
        // two sessions on the leader, one on each follower
        var ports = new[] { leader.ClientEndPoint!.Port, leader.ClientEndPoint!.Port, followers[0].ClientEndPoint!.Port, followers[1].ClientEndPoint!.Port };
        var clients = new List<KeeperClient>();
        foreach (int p in ports) clients.Add(await Connect(p));
        try
        {
            await clients[0].CreateAsync("/p", null, Acls.OpenAclUnsafe);
            const int sets = 45;
            var perSession = new List<List<(string What, Task<long> Zxid)>>();
            var finalReads = new List<Task<(byte[] Data, Samsa.Keeper.Protocol.Records.Stat Stat)>>();
            var seqs = new List<Task<string>>();
            for (int s = 0; s < clients.Count; s++)
            {
                var c = clients[s];
                string node = $"/p/s{s}";
                var ops = new List<(string, Task<long>)>();
                // all sent before any answer is awaited
                ops.Add(("create", c.CreateWithStatAsync(node, "0"u8.ToArray(), Acls.OpenAclUnsafe).ContinueWith(t => t.Result.Stat.Mzxid)));
                for (int v = 0; v < sets; v++)
                {
                    int expected = v;
                    // each setData names the version the previous (still pending) setData produces
                    ops.Add(($"set v{v}", c.SetDataAsync(node, System.Text.Encoding.ASCII.GetBytes($"{v + 1}"), expected).ContinueWith(t =>
                    {
                        Assert.Equal(expected + 1, t.Result.Version);
                        return t.Result.Mzxid;
                    })));
                }
                // a child of the pending node, then its delete while the create is still pending
                ops.Add(("child", c.CreateWithStatAsync($"{node}/child", null, Acls.OpenAclUnsafe).ContinueWith(t => t.Result.Stat.Czxid)));
                ops.Add(("delete child", c.DeleteAsync($"{node}/child", 0).ContinueWith(_ => 0L)));
                // sequential names come from the pending cversion of /p/seq's parent
                for (int q = 0; q < 3; q++) seqs.Add(c.CreateAsync("/p/seq-", null, Acls.OpenAclUnsafe, Samsa.Keeper.Client.CreateMode.PersistentSequential));
                // a read behind the writes sees the session's own writes
                finalReads.Add(c.GetDataAsync(node));
                perSession.Add(ops);
            }
            for (int s = 0; s < perSession.Count; s++)
            {
                long last = 0;
                foreach (var (what, zt) in perSession[s])
                {
                    long z = await zt.WaitAsync(Wait);
                    if (z == 0) continue; // delete answers carry no stat
                    Assert.True(z > last, $"session {s}: {what} committed at 0x{z:x}, not after 0x{last:x}");
                    last = z;
                }
                var (data, stat) = await finalReads[s].WaitAsync(Wait);
                Assert.Equal($"{sets}", System.Text.Encoding.ASCII.GetString(data));
                Assert.Equal(sets, stat.Version);
            }
            var names = await Task.WhenAll(seqs).WaitAsync(Wait);
            Assert.Equal(names.Length, names.Distinct().Count());

            // a pipelined create of a node whose create is pending answers NodeExists
            var first = clients[2].CreateAsync("/p/twice", null, Acls.OpenAclUnsafe);
            var second = clients[3].CreateAsync("/p/twice", null, Acls.OpenAclUnsafe);
            var third = clients[2].CreateAsync("/p/twice", null, Acls.OpenAclUnsafe);
            var outcomes = new List<KCode>();
            foreach (var t in new[] { first, second, third })
            {
                try { await t.WaitAsync(Wait); outcomes.Add(KCode.Ok); }
                catch (Samsa.Keeper.Client.KeeperException e) { outcomes.Add(e.Code); }
            }
            Assert.Equal(1, outcomes.Count(o => o == KCode.Ok));
            Assert.Equal(2, outcomes.Count(o => o == KCode.NodeExists));

            // a multi behind a pending create, and a conditional setData behind the multi
            var c0 = clients[1];
            var mCreate = c0.CreateAsync("/p/m", "a"u8.ToArray(), Acls.OpenAclUnsafe);
            var multi = c0.MultiAsync(new[] { Op.Check("/p/m", 0), Op.SetData("/p/m", "b"u8.ToArray(), 0) });
            var after = c0.SetDataAsync("/p/m", "c"u8.ToArray(), 1);
            await mCreate.WaitAsync(Wait);
            await multi.WaitAsync(Wait);
            Assert.Equal(2, (await after.WaitAsync(Wait)).Version);

            // every member ends with the same state
            foreach (var k in ks)
            {
                await using var r = await Connect(k.ClientEndPoint!.Port);
                await r.SyncAsync("/p");
                for (int s = 0; s < clients.Count; s++)
                {
                    var (d, st) = await r.GetDataAsync($"/p/s{s}");
                    Assert.Equal($"{sets}", System.Text.Encoding.ASCII.GetString(d));
                    Assert.Equal(sets, st.Version);
                    Assert.Null(await r.ExistsAsync($"/p/s{s}/child"));
                }
                Assert.Equal("c"u8.ToArray(), (await r.GetDataAsync("/p/m")).Data);
                var children = await r.GetChildrenAsync("/p");
                Assert.Equal(names.Select(n => n[3..]).OrderBy(x => x), children.Where(c => c.StartsWith("seq-")).OrderBy(x => x));
            }
        }
        finally
        {
            foreach (var c in clients) await c.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_session_closed_behind_pending_ephemeral_creates_leaves_no_ephemeral_on_any_member()
    {
        var ks = await ThreeKeepers();
        var follower = ks.First(k => !k.Leading);
        for (int round = 0; round < 3; round++)
        {
            var c = await Connect((round % 2 == 0 ? follower : ks.Single(k => k.Leading)).ClientEndPoint!.Port);
            var creates = new List<Task>();
            for (int i = 0; i < 30; i++)
                creates.Add(c.CreateAsync($"/e{round}-{i}", null, Acls.OpenAclUnsafe, Samsa.Keeper.Client.CreateMode.Ephemeral));
            // closeSession follows the creates without waiting for them: the ephemerals of the
            // creates still in flight when it is prepared must go too (the prepared tree lists
            // them in the txn; applying a closeSession also removes every ephemeral the session owns)
            await c.DisposeAsync();
            foreach (var t in creates)
            {
                try { await t; } catch (Exception) { }
            }
        }
        foreach (var k in ks)
        {
            await using var r = await Connect(k.ClientEndPoint!.Port);
            await r.SyncAsync("/");
            var left = (await r.GetChildrenAsync("/")).Where(n => n.StartsWith('e')).ToList();
            Assert.True(left.Count == 0, $"member {k.MyId}: ephemerals outlived their session: {string.Join(", ", left)}");
        }
    }

    [Fact]
    public async Task Syncs_pipelined_behind_writes_through_a_follower_are_answered_after_those_writes()
    {
        var ks = await ThreeKeepers();
        var followers = ks.Where(k => !k.Leading).ToArray();
        await using var writer = await Connect(followers[0].ClientEndPoint!.Port);
        await using var reader = await Connect(followers[1].ClientEndPoint!.Port);
        for (int round = 0; round < 5; round++)
        {
            var writes = Enumerable.Range(0, 40).Select(i => writer.CreateAsync($"/s{round}-{i}", null, Acls.OpenAclUnsafe)).ToList();
            await writes[^1].WaitAsync(Wait);
            // the last create is acknowledged: a sync through the other follower sees it
            await reader.SyncAsync("/");
            Assert.NotNull(await reader.ExistsAsync($"/s{round}-39"));
            await Task.WhenAll(writes).WaitAsync(Wait);
        }
    }

    [Fact]
    public async Task Syncs_pipelined_among_a_sessions_writes_are_answered_in_the_order_sent_on_leader_and_follower()
    {
        // The leader commits every proposal a quorum has ACKed in one batch; a sync waiting on one
        // of them must still be answered right after it and before the writes sent after the sync
        // (the client drops its connection on an answer out of order).
        var ks = await ThreeKeepers();
        foreach (var k in new[] { ks.Single(k => k.Leading), ks.First(k => !k.Leading) })
        {
            await using var c = await Connect(k.ClientEndPoint!.Port);
            for (int round = 0; round < 5; round++)
            {
                var ops = new List<Task>();
                for (int i = 0; i < 40; i++)
                {
                    ops.Add(c.CreateAsync($"/o{k.MyId}-{round}-{i}", null, Acls.OpenAclUnsafe));
                    if (i % 4 == 3) ops.Add(c.SyncAsync("/"));
                }
                await Task.WhenAll(ops).WaitAsync(Wait);
            }
        }
    }
}
