using System.Text;
using System.Threading.Channels;
using Samsa.Keeper.Protocol;
using Samsa.Keeper.Protocol.Records;
using Xunit;

namespace Samsa.Keeper.Client.Tests;

/// <summary>Collects the events a watcher receives so a test can wait for the next one.</summary>
public sealed class EventLog
{
    private readonly Channel<WatchedEvent> _ch = Channel.CreateUnbounded<WatchedEvent>();
    public EventLog() { Watcher = e => _ch.Writer.TryWrite(e); }
    public Watcher Watcher { get; }

    public async Task<WatchedEvent> NextAsync(int timeoutMs = 10000)
    {
        using var cts = new CancellationTokenSource(timeoutMs);
        try { return await _ch.Reader.ReadAsync(cts.Token); }
        catch (OperationCanceledException) { throw new TimeoutException($"no event within {timeoutMs} ms"); }
    }

    /// <summary>The next event that is not a state change.</summary>
    public async Task<WatchedEvent> NextNodeEventAsync(int timeoutMs = 10000)
    {
        while (true)
        {
            var e = await NextAsync(timeoutMs);
            if (e.Type != EventType.None) return e;
        }
    }

    public async Task WaitStateAsync(KeeperState state, int timeoutMs = 20000)
    {
        var deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
        while (true)
        {
            var left = (int)(deadline - DateTime.UtcNow).TotalMilliseconds;
            if (left <= 0) throw new TimeoutException($"state {state} not seen within {timeoutMs} ms");
            var e = await NextAsync(left);
            if (e.Type == EventType.None && e.State == state) return;
        }
    }

    /// <summary>Asserts nothing but state changes arrive within the window.</summary>
    public async Task ExpectNoNodeEventAsync(int windowMs = 700)
    {
        using var cts = new CancellationTokenSource(windowMs);
        try
        {
            while (true)
            {
                var e = await _ch.Reader.ReadAsync(cts.Token);
                if (e.Type != EventType.None) Assert.Fail($"unexpected event {e}");
            }
        }
        catch (OperationCanceledException) { }
    }
}

/// <summary>The client against one server. Each concrete subclass binds a fixture (the Keeper
/// or Apache ZooKeeper 3.8); every test works under its own root node so tests can share it.</summary>
public abstract class ClientTests : IAsyncLifetime
{
    private readonly IServerFixture _server;
    private readonly List<IAsyncDisposable> _owned = new();
    protected readonly string Root = "/t-" + Guid.NewGuid().ToString("N")[..12];

    protected ClientTests(IServerFixture server) { _server = server; }

    protected string Address
    {
        get
        {
            Assert.SkipWhen(_server.SkipReason is not null, _server.SkipReason ?? "");
            return _server.Address!;
        }
    }

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        foreach (var d in Enumerable.Reverse(_owned))
        {
            try { await d.DisposeAsync(); } catch (Exception) { }
        }
    }

    protected static byte[] B(string s) => Encoding.UTF8.GetBytes(s);
    protected static string S(byte[] b) => Encoding.UTF8.GetString(b);
    protected static List<ACL> Open => Acls.OpenAclUnsafe;

    protected async Task<KeeperClient> ClientAsync(string? connectString = null, int sessionTimeoutMs = 30000, Watcher? watcher = null, Action<KeeperClientOptions>? configure = null)
    {
        var o = new KeeperClientOptions { SessionTimeout = TimeSpan.FromMilliseconds(sessionTimeoutMs), DefaultWatcher = watcher };
        configure?.Invoke(o);
        var c = await KeeperClient.ConnectAsync(connectString ?? Address, o, new CancellationTokenSource(30000).Token);
        _owned.Add(c);
        return c;
    }

    protected TcpProxy Proxy()
    {
        var p = new TcpProxy(Address);
        _owned.Add(p);
        return p;
    }

    /// <summary>A client whose root node for this test exists.</summary>
    protected async Task<KeeperClient> RootedClientAsync()
    {
        var c = await ClientAsync();
        await c.CreateAsync(Root, null, Open);
        return c;
    }

    private static async Task<T> Throws<T>(Func<Task> f) where T : Exception => await Assert.ThrowsAsync<T>(f);

    protected static async Task<KeeperException> KeeperError(Code code, Func<Task> f)
    {
        var e = await Throws<KeeperException>(f);
        Assert.Equal(code, e.Code);
        return e;
    }

    protected static async Task Eventually(Func<Task<bool>> condition, int timeoutMs = 15000, string what = "condition")
    {
        var deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"{what} not met within {timeoutMs} ms");
            await Task.Delay(100);
        }
    }

    // ------------------------------------------------------------------ CRUD

    [Fact]
    public async Task Create_read_update_delete_with_versions_and_error_codes()
    {
        var zk = await RootedClientAsync();
        string p = Root + "/node";
        var (created, stat) = await zk.CreateWithStatAsync(p, B("v0"), Open);
        Assert.Equal(p, created);
        Assert.Equal(0, stat.Version);
        Assert.Equal(2, stat.DataLength);
        Assert.Equal(stat.Czxid, stat.Mzxid);

        var (data, st) = await zk.GetDataAsync(p);
        Assert.Equal("v0", S(data));
        Assert.Equal(stat.Czxid, st.Czxid);

        var st1 = await zk.SetDataAsync(p, B("v1"), 0);
        Assert.Equal(1, st1.Version);
        Assert.True(st1.Mzxid > stat.Mzxid);
        Assert.True(zk.LastZxid >= st1.Mzxid);

        var bad = await KeeperError(Code.BadVersion, () => zk.SetDataAsync(p, B("v2"), 0));
        Assert.Equal(p, bad.Path);
        Assert.Equal(-103, (int)bad.Code);

        var exists = await KeeperError(Code.NodeExists, () => zk.CreateAsync(p, null, Open));
        Assert.Equal(-110, (int)exists.Code);
        var noNode = await KeeperError(Code.NoNode, () => zk.GetDataAsync(Root + "/missing"));
        Assert.Equal(Root + "/missing", noNode.Path);
        Assert.Equal(-101, (int)noNode.Code);
        await KeeperError(Code.NoNode, () => zk.CreateAsync(Root + "/no/parent", null, Open));

        await zk.CreateAsync(p + "/child", null, Open);
        var notEmpty = await KeeperError(Code.NotEmpty, () => zk.DeleteAsync(p));
        Assert.Equal(-111, (int)notEmpty.Code);
        await zk.DeleteAsync(p + "/child");
        await KeeperError(Code.BadVersion, () => zk.DeleteAsync(p, 7));
        await zk.DeleteAsync(p, 1);
        Assert.Null(await zk.ExistsAsync(p));

        var (children, parentStat) = await zk.GetChildrenWithStatAsync(Root);
        Assert.Empty(children);
        Assert.Equal(0, parentStat.NumChildren);
        Assert.Equal(2, parentStat.Cversion); // /node created and deleted
        await Assert.ThrowsAsync<ArgumentException>(() => zk.GetDataAsync("no-slash"));
        await Assert.ThrowsAsync<ArgumentException>(() => zk.GetDataAsync(Root + "/"));
    }

    [Fact]
    public async Task Every_create_mode_including_container_and_ttl()
    {
        var zk = await RootedClientAsync();
        var other = await ClientAsync();

        Assert.Equal(Root + "/p", await zk.CreateAsync(Root + "/p", B("x"), Open, CreateMode.Persistent));
        var (ephPath, ephStat) = await zk.CreateWithStatAsync(Root + "/e", null, Open, CreateMode.Ephemeral);
        Assert.Equal(zk.SessionId, ephStat.EphemeralOwner);
        Assert.NotEqual(0, zk.SessionId);
        await KeeperError(Code.NoChildrenForEphemerals, () => zk.CreateAsync(ephPath + "/c", null, Open));

        string s1 = await zk.CreateAsync(Root + "/seq-", null, Open, CreateMode.PersistentSequential);
        string s2 = await zk.CreateAsync(Root + "/seq-", null, Open, CreateMode.EphemeralSequential);
        Assert.Matches(@"/seq-\d{10}$", s1);
        Assert.True(string.CompareOrdinal(s2, s1) > 0, $"{s2} after {s1}");
        Assert.Equal(zk.SessionId, (await zk.ExistsAsync(s2))!.EphemeralOwner);

        // a container disappears once its last child is gone (the server's container check runs each second)
        var (cpath, cstat) = await zk.CreateWithStatAsync(Root + "/box", null, Open, CreateMode.Container);
        Assert.Equal(0, cstat.EphemeralOwner);
        await zk.CreateAsync(cpath + "/item", null, Open);
        await zk.DeleteAsync(cpath + "/item");
        await Eventually(async () => await other.ExistsAsync(cpath) is null, 20000, "container removal");

        // TTL nodes (extended types enabled on both servers): gone once the ttl passes without children
        string ttl = await zk.CreateAsync(Root + "/ttl", null, Open, CreateMode.PersistentWithTtl, ttl: 500);
        string ttlSeq = await zk.CreateAsync(Root + "/ttlseq-", null, Open, CreateMode.PersistentSequentialWithTtl, ttl: 500);
        Assert.Matches(@"/ttlseq-\d{10}$", ttlSeq);
        Assert.Equal(0, (await zk.ExistsAsync(ttl))!.EphemeralOwner);
        await Eventually(async () => await other.ExistsAsync(ttl) is null && await other.ExistsAsync(ttlSeq) is null, 20000, "ttl expiry");
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => zk.CreateAsync(Root + "/bad", null, Open, CreateMode.PersistentWithTtl));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => zk.CreateAsync(Root + "/bad", null, Open, CreateMode.Persistent, ttl: 5));

        // the persistent ones are still there, ephemerals are this session's
        Assert.NotNull(await other.ExistsAsync(Root + "/p"));
        var eph = await zk.GetEphemeralsAsync(Root);
        Assert.Equal(new[] { ephPath, s2 }.OrderBy(x => x, StringComparer.Ordinal), eph.OrderBy(x => x, StringComparer.Ordinal));
        Assert.Empty(await other.GetEphemeralsAsync(Root));
    }

    [Fact]
    public async Task Ephemerals_go_when_the_client_closes()
    {
        var zk = await RootedClientAsync();
        var other = await ClientAsync();
        await zk.CreateAsync(Root + "/e", null, Open, CreateMode.Ephemeral);
        var log = new EventLog();
        Assert.NotNull(await other.ExistsAsync(Root + "/e", log.Watcher));
        await zk.DisposeAsync();
        Assert.Equal(KeeperState.Closed, zk.State);
        var e = await log.NextAsync(5000);
        Assert.Equal(new WatchedEvent(EventType.NodeDeleted, KeeperState.SyncConnected, Root + "/e"), e);
        Assert.Null(await other.ExistsAsync(Root + "/e"));
        await KeeperError(Code.SessionExpired, () => zk.GetDataAsync(Root));
    }

    [Fact]
    public async Task Sync_counts_and_whoami()
    {
        var zk = await RootedClientAsync();
        await zk.CreateAsync(Root + "/a", null, Open);
        await zk.CreateAsync(Root + "/a/b", null, Open);
        await zk.CreateAsync(Root + "/c", null, Open);
        Assert.Equal(3, await zk.GetAllChildrenNumberAsync(Root));
        Assert.Equal(1, await zk.GetAllChildrenNumberAsync(Root + "/a"));
        Assert.Equal(Root, await zk.SyncAsync(Root));
        var who = await zk.WhoAmIAsync();
        Assert.Contains(who, i => i.Scheme == "ip" && i.User == "127.0.0.1");
        Assert.Equal(new[] { "a", "c" }, (await zk.GetChildrenAsync(Root)).OrderBy(x => x));
    }

    [Fact]
    public async Task Many_requests_in_flight_are_answered_in_order()
    {
        var zk = await RootedClientAsync();
        // 500 sequential creates issued without waiting: the server numbers them in arrival order,
        // so the answers prove both pipelining and that each answer went to its own request.
        var tasks = Enumerable.Range(0, 500).Select(i => zk.CreateAsync(Root + "/n-", B(i.ToString()), Open, CreateMode.PersistentSequential)).ToList();
        var paths = await Task.WhenAll(tasks);
        for (int i = 0; i < paths.Length; i++) Assert.Equal($"{Root}/n-{i:D10}", paths[i]);
        var reads = await Task.WhenAll(paths.Select(p => zk.GetDataAsync(p)));
        for (int i = 0; i < reads.Length; i++) Assert.Equal(i.ToString(), S(reads[i].Data));
        Assert.Equal(500, (await zk.GetChildrenAsync(Root)).Count);

        // with a small window of outstanding requests the rest wait their turn, still in order
        var narrow = await ClientAsync(configure: o => o.MaxOutstandingRequests = 4);
        var more = await Task.WhenAll(Enumerable.Range(0, 100).Select(i => narrow.CreateAsync(Root + "/n-", null, Open, CreateMode.PersistentSequential)));
        Assert.Equal(Enumerable.Range(500, 100).Select(i => $"{Root}/n-{i:D10}"), more.OrderBy(x => x, StringComparer.Ordinal));
    }

    // ------------------------------------------------------------------ chroot

    [Fact]
    public async Task Chroot_applies_to_paths_results_events_and_multi()
    {
        var plain = await RootedClientAsync();
        var log = new EventLog();
        // a dead first server in the list: the client moves on to the live one
        var dead = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        dead.Start();
        int deadPort = ((System.Net.IPEndPoint)dead.LocalEndpoint).Port;
        dead.Stop();
        var zk = await ClientAsync($"127.0.0.1:{deadPort},{Address}{Root}", watcher: log.Watcher, configure: o => o.ShuffleServers = false);
        Assert.Equal(Root, zk.Chroot);
        Assert.Equal(Address, zk.ConnectedServer);

        Assert.Equal("/x", await zk.CreateAsync("/x", B("1"), Open));
        Assert.Equal("1", S((await plain.GetDataAsync(Root + "/x")).Data));
        Assert.Equal("/s-0000000001", await zk.CreateAsync("/s-", null, Open, CreateMode.EphemeralSequential));
        Assert.Equal(new[] { "/s-0000000001" }, await zk.GetEphemeralsAsync("/"));
        Assert.Equal(new[] { "s-0000000001", "x" }, (await zk.GetChildrenAsync("/")).OrderBy(x => x));
        Assert.Equal("/", await zk.SyncAsync("/"));

        await zk.GetDataAsync("/x", watch: true);
        await zk.GetChildrenAsync("/", watch: true);
        await plain.SetDataAsync(Root + "/x", B("2"));
        Assert.Equal(new WatchedEvent(EventType.NodeDataChanged, KeeperState.SyncConnected, "/x"), await log.NextNodeEventAsync());
        await plain.CreateAsync(Root + "/y", null, Open);
        Assert.Equal(new WatchedEvent(EventType.NodeChildrenChanged, KeeperState.SyncConnected, "/"), await log.NextNodeEventAsync());

        var results = await zk.MultiAsync(new[] { Op.Create("/m", null, Open), Op.Create("/m/q-", null, Open, CreateMode.PersistentSequential) });
        Assert.Equal("/m", ((OpResult.Create)results[0]).Path);
        Assert.Equal("/m/q-0000000000", ((OpResult.Create)results[1]).Path);
        Assert.NotNull(await plain.ExistsAsync(Root + "/m/q-0000000000"));
    }

    // ------------------------------------------------------------------ watches

    [Fact]
    public async Task One_time_data_exist_and_child_watches_fire_once()
    {
        var zk = await RootedClientAsync();
        var other = await ClientAsync();
        string p = Root + "/w";
        var data = new EventLog();
        var exist = new EventLog();
        var child = new EventLog();

        Assert.Null(await zk.ExistsAsync(p, exist.Watcher));
        await other.CreateAsync(p, B("a"), Open);
        Assert.Equal(new WatchedEvent(EventType.NodeCreated, KeeperState.SyncConnected, p), await exist.NextAsync());

        await zk.GetDataAsync(p, data.Watcher);
        await zk.GetChildrenAsync(p, child.Watcher);
        await other.SetDataAsync(p, B("b"));
        Assert.Equal(new WatchedEvent(EventType.NodeDataChanged, KeeperState.SyncConnected, p), await data.NextAsync());
        await other.SetDataAsync(p, B("c"));
        await data.ExpectNoNodeEventAsync();  // one-time: the second change is not reported

        await other.CreateAsync(p + "/k", null, Open);
        Assert.Equal(new WatchedEvent(EventType.NodeChildrenChanged, KeeperState.SyncConnected, p), await child.NextAsync());
        await other.CreateAsync(p + "/k2", null, Open);
        await child.ExpectNoNodeEventAsync();

        // deletion fires data and child watches
        await zk.GetDataAsync(p + "/k", data.Watcher);
        await zk.GetChildrenAsync(p + "/k", child.Watcher);
        await other.DeleteAsync(p + "/k");
        Assert.Equal(new WatchedEvent(EventType.NodeDeleted, KeeperState.SyncConnected, p + "/k"), await data.NextAsync());
        Assert.Equal(new WatchedEvent(EventType.NodeDeleted, KeeperState.SyncConnected, p + "/k"), await child.NextAsync());

        // watch: true goes to the default watcher and the Events() stream
        using var cts = new CancellationTokenSource(10000);
        await using var it = zk.Events(cts.Token).GetAsyncEnumerator();
        await zk.ExistsAsync(p, watch: true);
        await other.DeleteAsync(p + "/k2");
        await other.DeleteAsync(p);
        Assert.True(await it.MoveNextAsync());
        Assert.Equal(new WatchedEvent(EventType.NodeDeleted, KeeperState.SyncConnected, p), it.Current);
    }

    [Fact]
    public async Task Persistent_and_recursive_watches_stay_and_can_be_removed()
    {
        var zk = await RootedClientAsync();
        var other = await ClientAsync();
        string p = Root + "/pw";
        var pers = new EventLog();
        var rec = new EventLog();
        await zk.AddWatchAsync(p, AddWatchMode.Persistent, pers.Watcher);
        // on the parent: ZooKeeper 3.8 keeps a single watch mode per connection and path, so a
        // recursive watch on p itself would replace the persistent one there
        await zk.AddWatchAsync(Root, AddWatchMode.PersistentRecursive, rec.Watcher);

        await other.CreateAsync(p, null, Open);
        Assert.Equal(new WatchedEvent(EventType.NodeCreated, KeeperState.SyncConnected, p), await pers.NextAsync());
        Assert.Equal(new WatchedEvent(EventType.NodeCreated, KeeperState.SyncConnected, p), await rec.NextAsync());
        await other.SetDataAsync(p, B("1"));
        await other.SetDataAsync(p, B("2"));
        Assert.Equal(EventType.NodeDataChanged, (await pers.NextAsync()).Type);
        Assert.Equal(EventType.NodeDataChanged, (await pers.NextAsync()).Type);
        Assert.Equal(EventType.NodeDataChanged, (await rec.NextAsync()).Type);
        Assert.Equal(EventType.NodeDataChanged, (await rec.NextAsync()).Type);

        await other.CreateAsync(p + "/a", null, Open);
        await other.CreateAsync(p + "/a/b", null, Open);
        // persistent: child changes of the node itself; recursive: creations below, never NodeChildrenChanged
        Assert.Equal(new WatchedEvent(EventType.NodeChildrenChanged, KeeperState.SyncConnected, p), await pers.NextAsync());
        Assert.Equal(new WatchedEvent(EventType.NodeCreated, KeeperState.SyncConnected, p + "/a"), await rec.NextAsync());
        Assert.Equal(new WatchedEvent(EventType.NodeCreated, KeeperState.SyncConnected, p + "/a/b"), await rec.NextAsync());
        await other.SetDataAsync(p + "/a/b", B("x"));
        Assert.Equal(new WatchedEvent(EventType.NodeDataChanged, KeeperState.SyncConnected, p + "/a/b"), await rec.NextAsync());
        await pers.ExpectNoNodeEventAsync(300);

        await zk.RemoveWatchesAsync(Root, rec.Watcher, WatcherType.PersistentRecursive);
        Assert.Equal(new WatchedEvent(EventType.PersistentWatchRemoved, KeeperState.SyncConnected, Root), await rec.NextAsync());
        await other.SetDataAsync(p + "/a", B("y"));
        await other.SetDataAsync(p, B("3"));
        Assert.Equal(EventType.NodeDataChanged, (await pers.NextAsync()).Type);
        await rec.ExpectNoNodeEventAsync();

        await zk.RemoveAllWatchesAsync(p, WatcherType.Any);
        Assert.Equal(EventType.PersistentWatchRemoved, (await pers.NextAsync()).Type);
        await other.SetDataAsync(p, B("4"));
        await pers.ExpectNoNodeEventAsync();
        await KeeperError(Code.NoWatcher, () => zk.RemoveAllWatchesAsync(p, WatcherType.Any));

        // a one-time data watch removed before it fires
        var once = new EventLog();
        await zk.GetDataAsync(p, once.Watcher);
        await zk.RemoveWatchesAsync(p, once.Watcher, WatcherType.Data);
        Assert.Equal(new WatchedEvent(EventType.DataWatchRemoved, KeeperState.SyncConnected, p), await once.NextAsync());
        await other.SetDataAsync(p, B("5"));
        await once.ExpectNoNodeEventAsync();
    }

    // ------------------------------------------------------------------ multi

    [Fact]
    public async Task Multi_commits_all_or_nothing_and_multiRead_reports_per_op()
    {
        var zk = await RootedClientAsync();
        await zk.CreateAsync(Root + "/v", B("0"), Open);
        var ok = await zk.MultiAsync(new[]
        {
            Op.Create(Root + "/a", B("a"), Open),
            Op.Create(Root + "/q-", null, Open, CreateMode.PersistentSequential),
            Op.SetData(Root + "/v", B("1"), 0),
            Op.Check(Root + "/v", 1),
            Op.Delete(Root + "/a"),
        });
        Assert.Equal(Root + "/a", Assert.IsType<OpResult.Create>(ok[0]).Path);
        Assert.Equal(Root + "/q-0000000002", Assert.IsType<OpResult.Create>(ok[1]).Path);
        Assert.Equal(1, Assert.IsType<OpResult.SetData>(ok[2]).Stat.Version);
        Assert.IsType<OpResult.Check>(ok[3]);
        Assert.IsType<OpResult.Delete>(ok[4]);
        Assert.Null(await zk.ExistsAsync(Root + "/a"));

        var e = await KeeperError(Code.BadVersion, () => zk.MultiAsync(new[]
        {
            Op.Create(Root + "/b", null, Open),
            Op.Check(Root + "/v", 99),
            Op.SetData(Root + "/v", B("2")),
        }));
        Assert.Equal(Root + "/v", e.Path);
        Assert.NotNull(e.Results);
        Assert.Equal(3, e.Results!.Count);
        Assert.Equal(new OpResult.Error(Code.Ok), e.Results[0]);
        Assert.Equal(new OpResult.Error(Code.BadVersion), e.Results[1]);
        Assert.Equal(new OpResult.Error(Code.RuntimeInconsistency), e.Results[2]);
        Assert.Null(await zk.ExistsAsync(Root + "/b"));
        Assert.Equal("1", S((await zk.GetDataAsync(Root + "/v")).Data));

        var reads = await zk.MultiReadAsync(new[] { Op.GetData(Root + "/v"), Op.GetChildren(Root), Op.GetData(Root + "/none") });
        var gd = Assert.IsType<OpResult.GetData>(reads[0]);
        Assert.Equal("1", S(gd.Data));
        Assert.Equal(1, gd.Stat.Version);
        Assert.Equal(new[] { "q-0000000002", "v" }, Assert.IsType<OpResult.GetChildren>(reads[1]).Children.OrderBy(x => x));
        Assert.Equal(new OpResult.Error(Code.NoNode), reads[2]);
    }

    // ------------------------------------------------------------------ ACL and auth

    [Fact]
    public async Task Acls_and_digest_auth_including_resend_after_reconnect()
    {
        var admin = await RootedClientAsync();
        var proxy = Proxy();
        var log = new EventLog();
        var zk = await ClientAsync(proxy.Address, watcher: log.Watcher);
        string p = Root + "/secret";
        await admin.CreateAsync(p, B("s"), new List<ACL> { Acls.Digest("alice", "pw", Perms.All), Acls.Of(Perms.Read, "digest", Acls.DigestId("bob", "x")) });
        var noAuth = await KeeperError(Code.NoAuth, () => zk.GetDataAsync(p));
        Assert.Equal(-102, (int)noAuth.Code);

        await zk.AddAuthInfoAsync("digest", "alice:pw");
        Assert.Equal("s", S((await zk.GetDataAsync(p)).Data));
        Assert.Contains(await zk.WhoAmIAsync(), i => i.Scheme == "digest" && i.User == "alice");
        var (acl, st) = await zk.GetAclAsync(p);
        Assert.Equal(2, acl.Count);
        Assert.Equal("digest", acl[0].Id.Scheme);
        Assert.Equal(Acls.DigestId("alice", "pw"), acl[0].Id.IdValue);
        Assert.Equal((int)Perms.All, acl[0].Perms);
        Assert.Equal(0, st.Aversion);

        var st2 = await zk.SetAclAsync(p, new List<ACL> { Acls.Digest("alice", "pw", Perms.Read | Perms.Admin) }, 0);
        Assert.Equal(1, st2.Aversion);
        await KeeperError(Code.BadVersion, () => zk.SetAclAsync(p, Open, 0));
        await KeeperError(Code.NoAuth, () => zk.SetDataAsync(p, B("no")));
        await KeeperError(Code.NoAuth, () => admin.GetDataAsync(p));

        // auth is re-sent on the new connection
        long session = zk.SessionId;
        proxy.KillConnections();
        await log.WaitStateAsync(KeeperState.Disconnected);
        await log.WaitStateAsync(KeeperState.SyncConnected);
        Assert.Equal(session, zk.SessionId);
        Assert.Equal("s", S((await zk.GetDataAsync(p)).Data));

        // creator ACL takes the session's identities
        await zk.CreateAsync(Root + "/mine", null, Acls.CreatorAllAcl);
        var (mine, _) = await zk.GetAclAsync(Root + "/mine");
        Assert.Equal(Acls.DigestId("alice", "pw"), Assert.Single(mine).Id.IdValue);
        await KeeperError(Code.InvalidAcl, () => admin.CreateAsync(Root + "/x", null, Acls.CreatorAllAcl));
    }

    [Fact]
    public async Task Unknown_auth_scheme_fails_the_session_with_AuthFailed()
    {
        var log = new EventLog();
        var zk = await ClientAsync(watcher: log.Watcher);
        await KeeperError(Code.AuthFailed, () => zk.AddAuthInfoAsync("nosuchscheme", "x"));
        await log.WaitStateAsync(KeeperState.AuthFailed, 5000);
        Assert.Equal(KeeperState.AuthFailed, zk.State);
        await KeeperError(Code.AuthFailed, () => zk.ExistsAsync("/"));
    }

    // ------------------------------------------------------------------ sessions

    [Fact]
    public async Task Reconnect_resumes_the_session_and_re_registers_watches()
    {
        var admin = await RootedClientAsync();
        var proxy = Proxy();
        var states = new EventLog();
        var zk = await ClientAsync(proxy.Address, sessionTimeoutMs: 20000, watcher: states.Watcher);
        long session = zk.SessionId;
        string p = Root + "/r";
        await zk.CreateAsync(p, B("0"), Open);
        await zk.CreateAsync(Root + "/eph", null, Open, CreateMode.Ephemeral);
        var data = new EventLog();
        var child = new EventLog();
        var exist = new EventLog();
        var rec = new EventLog();
        await zk.GetDataAsync(p, data.Watcher);
        await zk.GetChildrenAsync(p, child.Watcher);
        Assert.Null(await zk.ExistsAsync(Root + "/later", exist.Watcher));
        await zk.AddWatchAsync(Root + "/tree", AddWatchMode.PersistentRecursive, rec.Watcher);

        // cut the connection: the client reconnects to the same session
        proxy.KillConnections();
        await states.WaitStateAsync(KeeperState.Disconnected);
        await states.WaitStateAsync(KeeperState.SyncConnected);
        Assert.Equal(session, zk.SessionId);
        Assert.NotNull(await admin.ExistsAsync(Root + "/eph"));

        await admin.SetDataAsync(p, B("1"));
        Assert.Equal(new WatchedEvent(EventType.NodeDataChanged, KeeperState.SyncConnected, p), await data.NextNodeEventAsync());
        await admin.CreateAsync(p + "/c", null, Open);
        Assert.Equal(new WatchedEvent(EventType.NodeChildrenChanged, KeeperState.SyncConnected, p), await child.NextNodeEventAsync());
        await admin.CreateAsync(Root + "/later", null, Open);
        Assert.Equal(new WatchedEvent(EventType.NodeCreated, KeeperState.SyncConnected, Root + "/later"), await exist.NextNodeEventAsync());
        await admin.CreateAsync(Root + "/tree", null, Open);
        await admin.CreateAsync(Root + "/tree/leaf", null, Open);
        Assert.Equal(Root + "/tree", (await rec.NextNodeEventAsync()).Path);
        Assert.Equal(Root + "/tree/leaf", (await rec.NextNodeEventAsync()).Path);

        // a change made while the client is away fires on reconnect: SetWatches carries the
        // last zxid the client saw, and the server compares it with the node's mzxid
        await zk.GetDataAsync(p, data.Watcher);
        proxy.Pause();
        proxy.KillConnections();
        await states.WaitStateAsync(KeeperState.Disconnected);
        await admin.SetDataAsync(p, B("2"));
        proxy.Resume();
        await states.WaitStateAsync(KeeperState.SyncConnected);
        Assert.Equal(new WatchedEvent(EventType.NodeDataChanged, KeeperState.SyncConnected, p), await data.NextNodeEventAsync());
        Assert.Equal(session, zk.SessionId);
    }

    [Fact]
    public async Task Without_auto_watch_reset_watches_end_at_a_disconnect()
    {
        var admin = await RootedClientAsync();
        var proxy = Proxy();
        var states = new EventLog();
        var zk = await ClientAsync(proxy.Address, watcher: states.Watcher, configure: o => o.DisableAutoWatchReset = true);
        var data = new EventLog();
        await zk.GetDataAsync(Root, data.Watcher);
        proxy.KillConnections();
        await states.WaitStateAsync(KeeperState.SyncConnected);
        // the watcher heard of the disconnect and is gone: a change now reaches nobody
        await data.WaitStateAsync(KeeperState.Disconnected, 5000);
        await admin.SetDataAsync(Root, B("x"));
        await data.ExpectNoNodeEventAsync();
        await KeeperError(Code.NoWatcher, () => zk.RemoveAllWatchesAsync(Root, WatcherType.Any, local: true));
    }

    [Fact]
    public async Task Failover_to_the_next_server_keeps_the_session()
    {
        await RootedClientAsync();
        var a = new TcpProxy(Address);
        var b = Proxy();
        var log = new EventLog();
        var zk = await ClientAsync($"{a.Address},{b.Address}", sessionTimeoutMs: 20000, watcher: log.Watcher, configure: o => o.ShuffleServers = false);
        Assert.Equal(a.Address, zk.ConnectedServer);
        long session = zk.SessionId;
        await zk.CreateAsync(Root + "/e", null, Open, CreateMode.Ephemeral);
        await a.DisposeAsync();   // server a is gone for good
        await log.WaitStateAsync(KeeperState.Disconnected);
        await log.WaitStateAsync(KeeperState.SyncConnected);
        Assert.Equal(b.Address, zk.ConnectedServer);
        Assert.Equal(session, zk.SessionId);
        Assert.Equal(new[] { Root + "/e" }, await zk.GetEphemeralsAsync(Root));
    }

    [Fact]
    public async Task Session_expiry_is_reported_and_ends_the_client()
    {
        var admin = await RootedClientAsync();
        var proxy = Proxy();
        var log = new EventLog();
        var zk = await ClientAsync(proxy.Address, sessionTimeoutMs: 1500, watcher: log.Watcher);
        var changes = new List<KeeperState>();
        zk.StateChanged += st => { lock (changes) changes.Add(st); };
        Assert.True(zk.SessionTimeout <= TimeSpan.FromMilliseconds(1500), $"negotiated {zk.SessionTimeout}");
        await zk.CreateAsync(Root + "/e", null, Open, CreateMode.Ephemeral);
        var watch = new EventLog();
        await zk.GetDataAsync(Root, watch.Watcher);

        // stall the connection past the session timeout: the client sees no pings answered,
        // drops the connection, and the server expires the session
        proxy.Pause();
        var inFlight = zk.GetDataAsync(Root);
        await log.WaitStateAsync(KeeperState.Disconnected, 10000);
        await KeeperError(Code.ConnectionLoss, () => inFlight);
        await Eventually(async () => await admin.ExistsAsync(Root + "/e") is null, 20000, "ephemeral removal by expiry");
        proxy.Resume();
        await log.WaitStateAsync(KeeperState.Expired, 20000);
        Assert.Equal(KeeperState.Expired, zk.State);
        // (the first SyncConnected may still have been on its way when the handler was added)
        lock (changes) Assert.Equal(new[] { KeeperState.Disconnected, KeeperState.Expired }, changes.SkipWhile(c => c == KeeperState.SyncConnected));
        // watchers hear of the expiry too
        await watch.WaitStateAsync(KeeperState.Expired, 5000);
        await KeeperError(Code.SessionExpired, () => zk.GetDataAsync(Root));
        await KeeperError(Code.SessionExpired, () => zk.WaitConnectedAsync());
    }

    [Fact]
    public async Task A_session_can_be_resumed_by_id_and_password()
    {
        await RootedClientAsync();
        var proxy = Proxy();
        var log = new EventLog();
        var zk = await ClientAsync(proxy.Address, watcher: log.Watcher);
        await zk.CreateAsync(Root + "/e", null, Open, CreateMode.Ephemeral);
        // cut the first client off, as if its host vanished; the session lives on in the server
        proxy.Pause();
        proxy.KillConnections();
        await log.WaitStateAsync(KeeperState.Disconnected);
        var again = await ClientAsync(configure: o => { o.SessionId = zk.SessionId; o.SessionPassword = zk.SessionPassword; });
        Assert.Equal(zk.SessionId, again.SessionId);
        Assert.Equal(new[] { Root + "/e" }, await again.GetEphemeralsAsync(Root));
        var wrong = new KeeperClient(Address, new KeeperClientOptions { SessionId = zk.SessionId, SessionPassword = new byte[16], SessionTimeout = TimeSpan.FromSeconds(10) });
        _ = wrong;
        await KeeperError(Code.SessionExpired, () => wrong.WaitConnectedAsync(new CancellationTokenSource(15000).Token));
        Assert.Equal(KeeperState.Expired, wrong.State);
        await wrong.DisposeAsync();
    }

    [Fact]
    public async Task Frames_above_jute_maxbuffer_drop_the_connection_not_the_client()
    {
        var admin = await RootedClientAsync();
        await admin.CreateAsync(Root + "/big", new byte[8192], Open);
        await admin.CreateAsync(Root + "/small", B("ok"), Open);
        var log = new EventLog();
        var zk = await ClientAsync(watcher: log.Watcher, configure: o => o.MaxBufferBytes = 4096);
        long session = zk.SessionId;
        await KeeperError(Code.ConnectionLoss, () => zk.GetDataAsync(Root + "/big"));
        await log.WaitStateAsync(KeeperState.Disconnected);
        await zk.WaitConnectedAsync();
        Assert.Equal(session, zk.SessionId);
        Assert.Equal("ok", S((await zk.GetDataAsync(Root + "/small")).Data));
    }
}

public sealed class KeeperClientOnKeeperTests(KeeperFixture server) : ClientTests(server), IClassFixture<KeeperFixture>;

public sealed class KeeperClientOnZooKeeperTests(ZooKeeperFixture server) : ClientTests(server), IClassFixture<ZooKeeperFixture>;
