using Samsa.Keeper.Client;
using Samsa.Keeper.Server.Quorum;
using Xunit;
using Xunit.Abstractions;

namespace Samsa.Keeper.Server.Tests;

/// <summary>
/// The Keeper as a ZAB follower of Debian's Apache ZooKeeper 3.8.0 leader on loopback: it syncs
/// (DIFF, SNAP), logs and ACKs proposals, applies commits and answers pings. With two Keeper
/// followers the Apache leader's writes can only commit with the Keepers' ACKs.
/// </summary>
public sealed class QuorumFollowerTests : IAsyncLifetime
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private readonly string _root = Path.Combine(Path.GetTempPath(), "keeper-zab-" + Guid.NewGuid().ToString("N"));
    private readonly List<IAsyncDisposable> _members = new();
    private readonly ITestOutputHelper _out;
    private readonly QuorumLayout _layout = new(3);

    public QuorumFollowerTests(ITestOutputHelper output) => _out = output;

    public Task InitializeAsync() { Directory.CreateDirectory(_root); return Task.CompletedTask; }

    public async Task DisposeAsync()
    {
        foreach (var m in _members) await m.DisposeAsync();
        try { Directory.Delete(_root, true); } catch (IOException) { }
    }

    private void Log(string line)
    {
        try { _out.WriteLine(line); } catch (InvalidOperationException) { }
    }

    private KeeperConfig KeeperConfigFor(long sid, bool persistent)
    {
        string dir = Path.Combine(_root, $"keeper-{sid}");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "myid"), sid + "\n");
        var text = new List<string> { "tickTime=500", "initLimit=10", "syncLimit=5", $"clientPort={_layout.ClientPorts[sid - 1]}", "clientPortAddress=127.0.0.1" };
        if (persistent) text.Add($"dataDir={dir}");
        text.AddRange(_layout.ServerLines());
        var c = KeeperConfig.Parse(string.Join('\n', text) + "\n");
        return c;
    }

    private QuorumMember Keeper(long sid, bool persistent = false)
    {
        var c = KeeperConfigFor(sid, persistent);
        var m = persistent ? QuorumMember.Start(c, l => Log($"keeper {sid}: {l}")) : QuorumMember.Start(c, l => Log($"keeper {sid}: {l}"), myId: sid);
        _members.Add(m);
        return m;
    }

    private ApacheQuorumPeer Apache(long sid, params string[] jvmArgs)
    {
        var p = ApacheQuorumPeer.Start(_layout, sid, _root, jvmArgs);
        _members.Add(p);
        return p;
    }

    private static async Task Until(Func<bool> cond, string what)
    {
        var deadline = DateTime.UtcNow + Wait;
        while (!cond())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException(what);
            await Task.Delay(50);
        }
    }

    private static string Tail(string log) => log.Length > 6000 ? log[^6000..] : log;

    private static bool Has(QuorumMember m, string path) => m.Store.Read(t => t.GetNode(path) is not null);

    private static async Task<KeeperClient> Client(ApacheQuorumPeer p) => await KeeperClient.ConnectAsync($"127.0.0.1:{p.ClientPort}");

    [Fact]
    public async Task A_Keeper_follows_an_Apache_leader_and_replicates_writes_made_before_and_after_it_joined()
    {
        var a2 = Apache(2);
        var a3 = Apache(3);
        Assert.Equal("leader", await a3.WaitForModeAsync(Wait));
        await using (var zk = await Client(a3))
        {
            await zk.CreateAsync("/before", "b"u8.ToArray(), Acls.OpenAclUnsafe);
            var k1 = Keeper(1);
            await Until(() => k1.Synced, "keeper 1 did not sync with the Apache leader");
            Assert.Equal(3, k1.LeaderId);
            Assert.Equal(ServerState.Following, k1.State);
            Assert.True(Has(k1, "/before"));
            for (int i = 0; i < 20; i++) await zk.CreateAsync($"/after{i}", new[] { (byte)i }, Acls.OpenAclUnsafe);
            await zk.SetDataAsync("/before", "changed"u8.ToArray());
            await zk.DeleteAsync("/after0");
            await Until(() => Has(k1, "/after19") && !Has(k1, "/after0"), "keeper 1 did not apply the leader's commits");
            Assert.Equal("changed"u8.ToArray(), k1.Store.Read(t => t.GetNode("/before")!.Data));
            // the same zxids as the leader: the member applied the leader's txns, not copies
            var (_, stat) = await zk.GetDataAsync("/after19");
            Assert.Equal(stat.Mzxid, k1.Store.Read(t => t.GetNode("/after19")!.Mzxid));
        }
    }

    [Fact]
    public async Task An_Apache_leader_with_two_Keeper_followers_commits_writes_with_their_acks()
    {
        var a3 = Apache(3);
        Assert.True(await a3.WaitForLogAsync("New election. My id = 3", Wait), a3.Log);
        var k1 = Keeper(1, persistent: true);
        var k2 = Keeper(2, persistent: true);
        // the Apache member serves only once a quorum (itself and at least one Keeper) acked NEWLEADER
        Assert.Equal("leader", await a3.WaitForModeAsync(Wait));
        await using var zk = await Client(a3);
        for (int i = 0; i < 10; i++) await zk.CreateAsync($"/n{i}", new[] { (byte)i }, Acls.OpenAclUnsafe);
        await Until(() => Has(k1, "/n9") && Has(k2, "/n9"), "the Keeper followers did not apply the writes");
        // one Keeper stops: the leader and the other Keeper are still a quorum
        await k1.DisposeAsync();
        _members.Remove(k1);
        await zk.CreateAsync("/with-k2-only", null, Acls.OpenAclUnsafe);
        await Until(() => Has(k2, "/with-k2-only"), "keeper 2 did not apply a write made while keeper 1 was down");
        // keeper 1 restarts from its data directory (txn log and epoch files) and catches up
        var k1b = Keeper(1, persistent: true);
        await Until(() => k1b.Synced && Has(k1b, "/with-k2-only"), "keeper 1 did not catch up after a restart: " + Tail(a3.Log));
        Assert.True(Has(k1b, "/n9"));
        Assert.True(File.Exists(Path.Combine(_root, "keeper-1", "version-2", "currentEpoch")));
        Assert.True(File.Exists(Path.Combine(_root, "keeper-1", "version-2", "acceptedEpoch")));
    }

    [Fact]
    public async Task A_Keeper_far_behind_is_synced_by_SNAP_with_ZooKeepers_snapshot_stream()
    {
        // a committed log of one txn and no txn-log diffs: the leader has to send a snapshot
        string[] jvm = ["-Dzookeeper.commitLogCount=1", "-Dzookeeper.snapshotSizeFactor=-1"];
        var a2 = Apache(2, jvm);
        var a3 = Apache(3, jvm);
        Assert.Equal("leader", await a3.WaitForModeAsync(Wait));
        await using var zk = await Client(a3);
        await zk.CreateAsync("/snap", null, Acls.OpenAclUnsafe);
        for (int i = 0; i < 30; i++) await zk.CreateAsync($"/snap/c{i}", new[] { (byte)i }, Acls.OpenAclUnsafe);
        var k1 = Keeper(1);
        await Until(() => k1.Synced, "keeper 1 did not sync");
        Assert.Equal("SNAP", k1.LastSyncMode);
        Assert.Equal(30, k1.Store.Read(t => t.GetNode("/snap")!.Children.Count));
        await zk.CreateAsync("/snap/after", null, Acls.OpenAclUnsafe);
        await Until(() => Has(k1, "/snap/after"), "keeper 1 did not apply a commit after the SNAP sync");
    }
}
