using System.Text;
using Samsa.Keeper.Client;
using Samsa.Keeper.Protocol;
using Samsa.Keeper.Server.Quorum;
using Xunit;
using Xunit.Abstractions;
using ClientCreateMode = Samsa.Keeper.Client.CreateMode;

namespace Samsa.Keeper.Server.Tests;

/// <summary>
/// What every member of a Keeper ensemble does besides ZAB (issue #17), as upstream 3.8 does on
/// every quorum member: periodic snapshots after snapCount/2 + a random roll txns logged,
/// autopurge of old snapshots and logs, and — on the leader only — container and TTL reaping
/// proposed as deleteContainer txns, so every member deletes the node.
/// </summary>
public sealed class QuorumMaintenanceTests(ITestOutputHelper output)
    : QuorumEnsembleTestBase(output, "keeper-maint-", TimeSpan.FromSeconds(90))
{
    private const string SmallSnapCount = "snapCount=20";

    private async Task<QuorumMember[]> ThreeKeepers(Action<KeeperConfig>? tweak, params string[] extra)
    {
        var ks = new[] { KeeperWith(1, tweak, extra), KeeperWith(2, tweak, extra), KeeperWith(3, tweak, extra) };
        await Until(() => ks.Count(k => k.Leading) == 1 && ks.Count(k => k.Synced) == 2, "no Keeper leader with two synced followers");
        return ks;
    }

    private string DataDir(long sid) => Path.Combine(_root, $"keeper-{sid}");

    private static List<long> Zxids(string dir, string prefix) =>
        Directory.GetFiles(Path.Combine(dir, ZkFiles.VersionDir), prefix + ".*")
            .Select(f => ZkFiles.ZxidFromName(Path.GetFileName(f), prefix)).OfType<long>().Order().ToList();

    /// <summary>Every node under <paramref name="root"/> with its data, version and mzxid, in path order.</summary>
    private static List<string> Dump(DataTree tree, string root)
    {
        var lines = new List<string>();
        void Walk(string p)
        {
            var n = tree.GetNode(p);
            if (n is null) return;
            lines.Add($"{p} {Encoding.UTF8.GetString(n.Data ?? [])} v{n.Version} m{n.Mzxid:x} c{n.Cversion}");
            foreach (var c in n.Children) Walk(DataTree.Join(p, c));
        }
        Walk(root);
        return lines;
    }

    private static Task<List<string>> DumpLive(QuorumMember m, string root) => m.Server!.RunOnLoopAsync(() => Dump(m.Server.Tree, root));

    /// <summary>What a member restarted from <paramref name="dir"/> would load: its newest snapshot plus the log after it.</summary>
    private (List<string> Tree, long Zxid) Recovered(string dir, string root)
    {
        var config = KeeperConfig.Parse($"dataDir={dir}\nclientPort=0\n");
        using var store = new LearnerStore(config, l => Log($"recovery of {dir}: {l}"));
        return (Dump(store.Tree, root), store.Tree.LastProcessedZxid);
    }

    private async Task WriteNodes(int port, string parent, int count)
    {
        await using var c = await Connect(port);
        await c.CreateAsync(parent, null, Acls.OpenAclUnsafe);
        var pending = new List<Task>();
        for (int i = 0; i < count; i++)
        {
            pending.Add(c.CreateAsync($"{parent}/n{i}", Encoding.UTF8.GetBytes($"v{i}"), Acls.OpenAclUnsafe));
            if (i % 3 == 0) pending.Add(c.SetDataAsync($"{parent}/n{i}", Encoding.UTF8.GetBytes($"w{i}"), 0));
            // a few in flight at a time, so commits keep up with the log as with ordinary clients
            if (pending.Count >= 8) { await Task.WhenAll(pending).WaitAsync(Wait); pending.Clear(); }
        }
        await Task.WhenAll(pending).WaitAsync(Wait);
    }

    private async Task AllAtSameZxid(QuorumMember[] ks) =>
        await Until(() => ks.Select(k => k.Server!.RunOnLoopAsync(() => k.Server.Tree.LastProcessedZxid).Result).Distinct().Count() == 1,
            "the members did not reach the same zxid");

    [Fact]
    public async Task Every_member_takes_periodic_snapshots_and_recovers_the_same_tree_from_its_dataDir()
    {
        var ks = await ThreeKeepers(null, SmallSnapCount);
        var leader = ks.Single(k => k.Leading);
        var followers = ks.Where(k => !k.Leading).ToArray();
        await WriteNodes(followers[0].ClientEndPoint!.Port, "/t", 150);
        await AllAtSameZxid(ks);
        // ~200 txns with snapCount 20: a snapshot every 11..20 txns on each member
        await Until(() => ks.All(k => k.Store.PeriodicSnapshots >= 3), "not every member took periodic snapshots: "
            + string.Join(", ", ks.Select(k => $"{k.MyId}={k.Store.PeriodicSnapshots}")));
        foreach (var k in ks)
        {
            var snaps = Zxids(DataDir(k.MyId), "snapshot");
            Log($"member {k.MyId} ({(k.Leading ? "leader" : "follower")}): snapshots {string.Join(",", snaps.Select(z => z.ToString("x")))}; logs {string.Join(",", Zxids(DataDir(k.MyId), "log").Select(z => z.ToString("x")))}");
            Assert.True(snaps.Count >= 3, $"member {k.MyId} has {snaps.Count} snapshot files");
            Assert.True(Zxids(DataDir(k.MyId), "log").Count >= 3, $"member {k.MyId} did not roll its txn log at the snapshots");
        }
        var expected = await DumpLive(leader, "/t");
        Assert.Equal(151, expected.Count);

        // a follower stopped and recovered from its own dataDir has the same tree
        var stopped = followers[1];
        long sid = stopped.MyId;
        await stopped.DisposeAsync(); _members.Remove(stopped);
        var (tree, _) = Recovered(DataDir(sid), "/t");
        Assert.Equal(expected, tree);
        // restarted, it has the leader's last zxid and needs only an empty DIFF
        var back = KeeperWith(sid, null, SmallSnapCount);
        await Until(() => back.Synced, "the restarted follower did not sync");
        Assert.Equal("DIFF", back.LastSyncMode);
        Assert.Equal("w0"u8.ToArray(), await ReadSynced(back.ClientEndPoint!.Port, "/t/n0"));

        // every member, the leader included, recovers the same tree
        ks = [.. ks.Where(k => k != stopped), back];
        await AllAtSameZxid(ks);
        long zxid = await leader.Server!.RunOnLoopAsync(() => leader.Server.Tree.LastProcessedZxid);
        foreach (var m in _members.ToList()) await m.DisposeAsync();
        _members.Clear();
        foreach (var k in ks)
        {
            var (t, z) = Recovered(DataDir(k.MyId), "/t");
            Assert.Equal(expected, t);
            Assert.Equal(zxid, z);
        }
    }

    [Fact]
    public async Task Autopurge_removes_old_snapshots_and_logs_on_every_member_and_recovery_still_works()
    {
        var ks = await ThreeKeepers(c => c.AutopurgeIntervalMsOverride = 300, SmallSnapCount, "autopurge.snapRetainCount=3", "autopurge.purgeInterval=1");
        var leader = ks.Single(k => k.Leading);
        await WriteNodes(leader.ClientEndPoint!.Port, "/p", 300);
        await AllAtSameZxid(ks);
        await Until(() => ks.All(k => k.Store.PeriodicSnapshots >= 6 && k.PurgedFiles > 0), "not every member snapshotted and purged: "
            + string.Join(", ", ks.Select(k => $"{k.MyId}: {k.Store.PeriodicSnapshots} snapshots, {k.PurgedFiles} purged")));
        // once writes stop, the next purge leaves exactly the newest three snapshots, and of the
        // logs only the one holding the oldest kept snapshot's next txn and those after it (the
        // files are listed while the purge timer may be deleting: checked until a quiet listing)
        bool Purged(QuorumMember k)
        {
            var snaps = Zxids(DataDir(k.MyId), "snapshot");
            var logs = Zxids(DataDir(k.MyId), "log");
            return snaps.Count == 3 && logs.Count(l => l <= snaps[0]) == 1;
        }
        try { await Until(() => ks.All(Purged), "a member kept more than 3 snapshots or the logs before them"); }
        finally
        {
            foreach (var k in ks)
                Log($"member {k.MyId}: snapshots {string.Join(",", Zxids(DataDir(k.MyId), "snapshot").Select(z => z.ToString("x")))}; logs {string.Join(",", Zxids(DataDir(k.MyId), "log").Select(z => z.ToString("x")))}");
        }
        var expected = await DumpLive(leader, "/p");
        Assert.Equal(301, expected.Count);
        foreach (var m in _members.ToList()) await m.DisposeAsync();
        _members.Clear();
        foreach (var k in ks) Assert.Equal(expected, Recovered(DataDir(k.MyId), "/p").Tree);
    }

    [Fact]
    public async Task The_leader_reaps_containers_and_TTL_nodes_as_proposals_every_member_applies()
    {
        var ks = await ThreeKeepers(null, "znode.container.checkIntervalMs=300", "zookeeper.extendedTypesEnabled=true");
        var follower = ks.First(k => !k.Leading);
        await using var c = await Connect(follower.ClientEndPoint!.Port);
        await c.CreateAsync("/box", null, Acls.OpenAclUnsafe, ClientCreateMode.Container);
        await c.CreateAsync("/box/item", null, Acls.OpenAclUnsafe);
        await c.CreateAsync("/ttl", null, Acls.OpenAclUnsafe, ClientCreateMode.PersistentWithTtl, ttl: 1500);
        // a container never given a child stays (upstream reaps only cversion > 0)
        await c.CreateAsync("/empty-box", null, Acls.OpenAclUnsafe, ClientCreateMode.Container);
        await Task.Delay(1000);
        Assert.NotNull(await c.ExistsAsync("/box"));
        await c.DeleteAsync("/box/item", 0);
        bool Gone(QuorumMember k, string p) => k.Server!.RunOnLoopAsync(() => k.Server.Tree.GetNode(p) is null).Result;
        await Until(() => ks.All(k => Gone(k, "/box")), "the emptied container is still there on some member: "
            + string.Join(", ", ks.Select(k => $"{k.MyId}:{(Gone(k, "/box") ? "gone" : "there")}")));
        await Until(() => ks.All(k => Gone(k, "/ttl")), "the expired TTL node is still there on some member");
        await AllAtSameZxid(ks);
        Assert.All(ks, k => Assert.False(Gone(k, "/empty-box")));
        Assert.Null(await c.ExistsAsync("/box"));
        // the deletions are txns in every member's log: deleteContainer, no session, once per node
        foreach (var k in ks)
        {
            var deletes = TxnLogReader.Read(Path.Combine(DataDir(k.MyId), ZkFiles.VersionDir), 0, 1 << 20, _ => { })
                .Where(t => t.Hdr.Type == OpCode.DeleteContainer).ToList();
            Assert.All(deletes, t => Assert.Equal(0L, t.Hdr.ClientId));
            Assert.Equal(new[] { "/box", "/ttl" }, deletes.Select(t => ((Samsa.Keeper.Protocol.Records.DeleteTxn)t.Txn).Path ?? "").Order().ToArray());
        }
    }

    [Fact]
    public async Task A_follower_behind_the_leaders_in_memory_committed_log_syncs_by_DIFF_from_the_txn_log()
    {
        var ks = await ThreeKeepers(null);
        var leader = ks.Single(k => k.Leading);
        var away = ks.First(k => !k.Leading);
        long sid = away.MyId;
        await WriteNodes(leader.ClientEndPoint!.Port, "/before", 5);
        await AllAtSameZxid(ks);
        await away.DisposeAsync(); _members.Remove(away);
        // more txns than the 500 the leader keeps in memory since it began leading
        await WriteNodes(leader.ClientEndPoint!.Port, "/while-away", 600);
        var back = KeeperWith(sid, null);
        await Until(() => back.Synced, "the returning follower did not sync");
        Assert.Equal("DIFF", back.LastSyncMode);
        ks = [.. ks.Where(k => k != away), back];
        await AllAtSameZxid(ks);
        Assert.Equal(await DumpLive(leader, "/while-away"), await DumpLive(back, "/while-away"));
        Assert.Equal(await DumpLive(leader, "/before"), await DumpLive(back, "/before"));
    }

    [Fact]
    public async Task An_Apache_follower_applies_the_Keeper_leaders_deleteContainer_proposals()
    {
        // the Keeper has the largest server id, so it wins the election among equals
        var k3 = KeeperWith(3, null, "znode.container.checkIntervalMs=300");
        var a1 = Apache(1);
        await Until(() => k3.Leading, "the Keeper did not lead");
        Assert.Equal("follower", await a1.WaitForModeAsync(Wait));
        await using (var c = await Connect(a1.ClientPort))
        {
            await c.CreateAsync("/box", null, Acls.OpenAclUnsafe, ClientCreateMode.Container);
            await c.CreateAsync("/box/item", null, Acls.OpenAclUnsafe);
            await c.DeleteAsync("/box/item", 0);
        }
        await Until(() => k3.Server!.RunOnLoopAsync(() => k3.Server.Tree.GetNode("/box") is null).Result, "the Keeper leader did not reap /box");
        await using var viaApache = await Connect(a1.ClientPort);
        await viaApache.SyncAsync("/box");
        Assert.Null(await viaApache.ExistsAsync("/box"));
    }

    [Fact]
    public async Task A_Keeper_follower_applies_an_Apache_leaders_deleteContainer_proposals()
    {
        var a2 = ApacheQuorumPeer.Start(_layout, 2, _root, "-Dznode.container.checkIntervalMs=300");
        _members.Add(a2);
        var a3 = ApacheQuorumPeer.Start(_layout, 3, _root, "-Dznode.container.checkIntervalMs=300");
        _members.Add(a3);
        Assert.Equal("leader", await a3.WaitForModeAsync(Wait));
        // the Keeper's own check interval is short too: as a follower it must not reap by itself
        var k1 = KeeperWith(1, null, "znode.container.checkIntervalMs=100");
        await Until(() => k1.Synced, "keeper 1 did not sync");
        await using var c = await Connect(k1.ClientEndPoint!.Port);
        await c.CreateAsync("/box", null, Acls.OpenAclUnsafe, ClientCreateMode.Container);
        await c.CreateAsync("/box/item", null, Acls.OpenAclUnsafe);
        await c.DeleteAsync("/box/item", 0);
        await Until(() => k1.Server!.RunOnLoopAsync(() => k1.Server.Tree.GetNode("/box") is null).Result, "the Keeper follower did not apply the Apache leader's deleteContainer");
        await using var viaApache = await Connect(a3.ClientPort);
        Assert.Null(await viaApache.ExistsAsync("/box"));
        // the one deleteContainer in the Keeper's log is the Apache leader's proposal
        var deletes = TxnLogReader.Read(Path.Combine(DataDir(1), ZkFiles.VersionDir), 0, 1 << 20, _ => { })
            .Where(t => t.Hdr.Type == OpCode.DeleteContainer).ToList();
        Assert.Single(deletes);
    }
}
