using Samsa.Keeper.Protocol;
using Samsa.Keeper.Protocol.Records;
using Samsa.Keeper.Server;
using Xunit;

namespace Samsa.Keeper.Server.Tests;

/// <summary>Requests driven straight into the server loop, without sockets.</summary>
public sealed class StateMachineTests : IAsyncLifetime
{
    private KeeperServer _server = null!;

    public Task InitializeAsync()
    {
        _server = new KeeperServer(new KeeperConfig { TickTime = 100, ExtendedTypesEnabled = true, SuperDigest = Auth.GenerateDigest("super:secret") });
        _server.Start();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    /// <summary>Polls a condition for up to 10 s (the machine may be heavily loaded).</summary>
    private static async Task<bool> Eventually(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) return false;
            await Task.Delay(20);
        }
        return true;
    }

    private async Task<TestClient> Client(string ip = "127.0.0.1")
    {
        var c = new TestClient(_server, ip);
        await c.ConnectAsync();
        return c;
    }

    [Fact]
    public async Task Parent_cversion_counts_creates_and_deletes_and_pzxid_follows_the_last_child_change()
    {
        var c = await Client();
        var (_, _, p0) = await c.CreateAsync("/p");
        var (_, _, a) = await c.CreateAsync("/p/a");
        await c.CreateAsync("/p/b");
        var (h, _) = await c.CallAsync(OpCode.Delete, new DeleteRequest { Path = "/p/a", Version = -1 });
        Assert.Equal(0, h.Err);
        var (_, st) = await c.ExistsAsync("/p");
        Assert.Equal(3, st!.Cversion);       // two creates + one delete
        Assert.Equal(1, st.NumChildren);
        Assert.Equal(h.Zxid, st.Pzxid);      // pzxid moved to the delete's zxid
        Assert.Equal(p0!.Czxid, st.Mzxid);   // child changes do not touch mzxid
        Assert.Equal(0, st.Version);
        Assert.Equal(a!.Czxid, a.Pzxid);     // a fresh node's pzxid is its czxid
    }

    [Fact]
    public async Task Sequential_names_use_the_parents_cversion_formatted_to_ten_digits()
    {
        var c = await Client();
        await c.CreateAsync("/q");
        var (_, n1, _) = await c.CreateAsync("/q/n-", flags: CreateMode.PersistentSequential);
        var (_, n2, _) = await c.CreateAsync("/q/n-", flags: CreateMode.PersistentSequential);
        Assert.Equal(0, await c.DeleteAsync(n2!));
        var (_, n3, _) = await c.CreateAsync("/q/n-", flags: CreateMode.PersistentSequential);
        Assert.Equal("/q/n-0000000000", n1);
        Assert.Equal("/q/n-0000000001", n2);
        // stored cversion counts creates only, so the deletion does not shift the counter back
        Assert.Equal("/q/n-0000000002", n3);
    }

    [Fact]
    public async Task Data_version_increments_and_bad_versions_are_rejected()
    {
        var c = await Client();
        await c.CreateAsync("/v", new byte[] { 1 });
        var (err, st) = await c.SetDataAsync("/v", new byte[] { 2, 3 }, 0);
        Assert.Equal(0, err);
        Assert.Equal(1, st!.Version);
        Assert.Equal(2, st.DataLength);
        Assert.Equal((int)Code.BadVersion, (await c.SetDataAsync("/v", new byte[] { 4 }, 0)).Err);
        Assert.Equal((int)Code.BadVersion, await c.DeleteAsync("/v", 5));
        Assert.Equal(0, await c.DeleteAsync("/v", 1));
    }

    [Fact]
    public async Task Failed_writes_consume_a_zxid_like_upstream_error_txns()
    {
        var c = await Client();
        var (h1, _) = await c.CallAsync(OpCode.Create, new CreateRequest { Path = "/z", Data = Array.Empty<byte>(), Acl = TestClient.OpenAcl });
        var (h2, _) = await c.CallAsync(OpCode.Create, new CreateRequest { Path = "/z", Data = Array.Empty<byte>(), Acl = TestClient.OpenAcl });
        Assert.Equal(0, h1.Err);
        Assert.Equal((int)Code.NodeExists, h2.Err);
        Assert.Equal(h1.Zxid + 1, h2.Zxid);
        var (h3, _) = await c.CallAsync(OpCode.GetData, new GetDataRequest { Path = "/z" });
        Assert.Equal(h2.Zxid, h3.Zxid); // reads answer with the last processed zxid
    }

    [Theory]
    [InlineData("noslash")]
    [InlineData("//b")]
    [InlineData("/ok/")]
    [InlineData("/ok/.")]
    [InlineData("/..")]
    [InlineData("/a\u0001b")]
    [InlineData("/a\ud800b")]
    public async Task Invalid_paths_are_bad_arguments(string path)
    {
        // the parent must exist: upstream looks the parent up before validating the full path
        var c = await Client();
        await c.CreateAsync("/ok");
        var (err, _, _) = await c.CreateAsync(path);
        Assert.Equal((int)Code.BadArguments, err);
    }

    [Fact]
    public async Task Special_nodes_cannot_be_deleted_and_ephemerals_cannot_have_children()
    {
        var c = await Client();
        Assert.Equal((int)Code.BadArguments, await c.DeleteAsync("/zookeeper"));
        Assert.Equal((int)Code.BadArguments, await c.DeleteAsync("/"));
        await c.CreateAsync("/eph", flags: CreateMode.Ephemeral);
        Assert.Equal((int)Code.NoChildrenForEphemerals, (await c.CreateAsync("/eph/x")).Err);
        Assert.Equal((int)Code.NoNode, (await c.CreateAsync("/missing/x")).Err);
        await c.CreateAsync("/full/kid".Substring(0, 5));
        await c.CreateAsync("/full/kid");
        Assert.Equal((int)Code.NotEmpty, await c.DeleteAsync("/full"));
    }

    private static byte[] MultiBody(params (int Type, IJuteRecord Op)[] ops)
    {
        var parts = new List<byte[]>();
        foreach (var (t, op) in ops)
        {
            parts.Add(new MultiHeader { Type = t, Done = false, Err = -1 }.ToBytes());
            parts.Add(op.ToBytes());
        }
        parts.Add(new MultiHeader { Type = -1, Done = true, Err = -1 }.ToBytes());
        return parts.SelectMany(p => p).ToArray();
    }

    private sealed class Raw : IJuteRecord
    {
        private readonly byte[] _b;
        public Raw(byte[] b) { _b = b; }
        public void Write(ref JuteWriter writer) => writer.WriteRaw(_b);
        public int Size() => _b.Length;
    }

    private static List<(int Type, int Err)> ReadMultiResults(byte[] body)
    {
        var r = new JuteReader(body);
        var list = new List<(int, int)>();
        while (true)
        {
            var mh = MultiHeader.Read(ref r);
            if (mh.Done) break;
            list.Add((mh.Type, mh.Err));
            switch (mh.Type)
            {
                case OpCode.Create: CreateResponse.Read(ref r); break;
                case OpCode.Create2: Create2Response.Read(ref r); break;
                case OpCode.SetData: SetDataResponse.Read(ref r); break;
                case OpCode.Error: ErrorResponse.Read(ref r); break;
                case OpCode.GetData: GetDataResponse.Read(ref r); break;
                case OpCode.GetChildren: GetChildrenResponse.Read(ref r); break;
            }
        }
        return list;
    }

    [Fact]
    public async Task A_failing_multi_applies_nothing_and_reports_ok_then_the_error_then_runtime_inconsistency()
    {
        var c = await Client();
        await c.CreateAsync("/m");
        var (_, before) = await c.ExistsAsync("/m");
        var body = MultiBody(
            (OpCode.Create, new CreateRequest { Path = "/m/a", Data = Array.Empty<byte>(), Acl = TestClient.OpenAcl }),
            (OpCode.SetData, new SetDataRequest { Path = "/m", Data = new byte[] { 9 }, Version = -1 }),
            (OpCode.Check, new CheckVersionRequest { Path = "/m", Version = 42 }),
            (OpCode.Delete, new DeleteRequest { Path = "/m", Version = -1 }));
        var (h, rb) = await c.CallAsync(OpCode.Multi, new Raw(body));
        Assert.Equal(0, h.Err); // the outcome is in the per-op results
        var results = ReadMultiResults(rb);
        Assert.Equal(new[] { (OpCode.Error, 0), (OpCode.Error, 0), (OpCode.Error, (int)Code.BadVersion), (OpCode.Error, (int)Code.RuntimeInconsistency) }, results);
        Assert.Equal((int)Code.NoNode, (await c.ExistsAsync("/m/a")).Err);
        var (_, after) = await c.ExistsAsync("/m");
        Assert.Equal(before!.Version, after!.Version);
        Assert.Equal(before.Cversion, after.Cversion);
        Assert.Equal(before.Pzxid, after.Pzxid);
    }

    [Fact]
    public async Task A_successful_multi_applies_all_ops_under_one_zxid()
    {
        var c = await Client();
        var body = MultiBody(
            (OpCode.Create, new CreateRequest { Path = "/mm", Data = Array.Empty<byte>(), Acl = TestClient.OpenAcl }),
            (OpCode.Create2, new CreateRequest { Path = "/mm/s-", Data = Array.Empty<byte>(), Acl = TestClient.OpenAcl, Flags = CreateMode.PersistentSequential }),
            (OpCode.SetData, new SetDataRequest { Path = "/mm", Data = new byte[] { 1 }, Version = 0 }),
            (OpCode.Check, new CheckVersionRequest { Path = "/mm", Version = 1 }));
        var (h, rb) = await c.CallAsync(OpCode.Multi, new Raw(body));
        Assert.Equal(0, h.Err);
        Assert.Equal(new[] { (OpCode.Create, 0), (OpCode.Create2, 0), (OpCode.SetData, 0), (OpCode.Check, 0) }, ReadMultiResults(rb));
        var (_, kids, st) = await c.GetChildrenAsync("/mm");
        Assert.Equal(new[] { "s-0000000000" }, kids);
        Assert.Equal(h.Zxid, st!.Czxid);
        Assert.Equal(h.Zxid, st.Mzxid);
    }

    [Fact]
    public async Task MultiRead_returns_per_op_results_and_errors()
    {
        var c = await Client();
        await c.CreateAsync("/mr", new byte[] { 7 });
        var body = MultiBody(
            (OpCode.GetData, new GetDataRequest { Path = "/mr" }),
            (OpCode.GetChildren, new GetChildrenRequest { Path = "/nope" }),
            (OpCode.GetChildren, new GetChildrenRequest { Path = "/" }));
        var (h, rb) = await c.CallAsync(OpCode.MultiRead, new Raw(body));
        Assert.Equal(0, h.Err);
        Assert.Equal(new[] { (OpCode.GetData, 0), (OpCode.Error, (int)Code.NoNode), (OpCode.GetChildren, 0) }, ReadMultiResults(rb));
    }

    [Fact]
    public async Task Digest_acls_need_the_matching_auth_and_super_bypasses_them()
    {
        var owner = await Client();
        var (ah, _) = await owner.CallAsync(OpCode.Auth, new AuthPacket { Type = 0, Scheme = "digest", Auth = "alice:pw"u8.ToArray() }, Xid.Auth);
        Assert.Equal(0, ah.Err);
        var authAcl = new List<ACL> { new() { Perms = Perms.All, Id = new Id { Scheme = "auth", IdValue = "" } } };
        Assert.Equal(0, (await owner.CreateAsync("/sec", new byte[] { 1 }, acl: authAcl)).Err);

        var (gh, gb) = await owner.CallAsync(OpCode.GetACL, new GetACLRequest { Path = "/sec" });
        var r = new JuteReader(gb);
        var acl = GetACLResponse.Read(ref r).Acl!;
        Assert.Equal("digest", acl.Single().Id.Scheme);
        Assert.Equal(Auth.GenerateDigest("alice:pw"), acl.Single().Id.IdValue);

        var other = await Client();
        Assert.Equal((int)Code.NoAuth, (await other.GetDataAsync("/sec")).Err);
        Assert.Equal((int)Code.NoAuth, (await other.SetDataAsync("/sec", new byte[] { 2 })).Err);
        Assert.Equal((int)Code.NoAuth, (await other.CreateAsync("/sec/x")).Err);

        var su = await Client();
        await su.CallAsync(OpCode.Auth, new AuthPacket { Type = 0, Scheme = "digest", Auth = "super:secret"u8.ToArray() }, Xid.Auth);
        Assert.Equal(0, (await su.GetDataAsync("/sec")).Err);
        Assert.Equal(0, (await su.SetDataAsync("/sec", new byte[] { 3 })).Err);
    }

    [Fact]
    public async Task GetAcl_without_admin_masks_digest_hashes()
    {
        var c = await Client();
        var acl = new List<ACL>
        {
            new() { Perms = Perms.Read, Id = new Id { Scheme = "world", IdValue = "anyone" } },
            new() { Perms = Perms.All, Id = new Id { Scheme = "digest", IdValue = Auth.GenerateDigest("bob:x") } },
        };
        await c.CreateAsync("/masked", acl: acl);
        var (h, b) = await c.CallAsync(OpCode.GetACL, new GetACLRequest { Path = "/masked" });
        Assert.Equal(0, h.Err);
        var r = new JuteReader(b);
        var shown = GetACLResponse.Read(ref r).Acl!;
        Assert.Equal("bob:x", shown[1].Id.IdValue);
    }

    [Fact]
    public async Task Acl_validation_and_ip_scheme()
    {
        var c = await Client("10.1.2.3");
        Assert.Equal((int)Code.InvalidAcl, (await c.CreateAsync("/bad", acl: new List<ACL> { new() { Perms = Perms.All, Id = new Id { Scheme = "foo", IdValue = "x" } } })).Err);
        Assert.Equal((int)Code.InvalidAcl, (await c.CreateAsync("/bad", acl: new List<ACL>())).Err);
        // "auth" needs an authenticated id; the connection's ip id does not count
        Assert.Equal((int)Code.InvalidAcl, (await c.CreateAsync("/bad", acl: new List<ACL> { new() { Perms = Perms.All, Id = new Id { Scheme = "auth", IdValue = "" } } })).Err);
        Assert.Equal(0, (await c.CreateAsync("/ipn", acl: new List<ACL> { new() { Perms = Perms.All, Id = new Id { Scheme = "ip", IdValue = "10.0.0.0/8" } } })).Err);
        Assert.Equal(0, (await c.GetDataAsync("/ipn")).Err);
        var outsider = await Client("192.168.1.1");
        Assert.Equal((int)Code.NoAuth, (await outsider.GetDataAsync("/ipn")).Err);
    }

    [Fact]
    public async Task Unknown_auth_scheme_fails_and_closes_the_connection()
    {
        var c = await Client();
        var (h, _) = await c.CallAsync(OpCode.Auth, new AuthPacket { Type = 0, Scheme = "kerberos-ish", Auth = new byte[] { 1 } }, Xid.Auth);
        Assert.Equal((int)Code.AuthFailed, h.Err);
        Assert.True(await Eventually(() => c.IsClosed));
    }

    [Fact]
    public async Task WhoAmI_lists_ip_and_digest_users()
    {
        var c = await Client();
        await c.CallAsync(OpCode.Auth, new AuthPacket { Type = 0, Scheme = "digest", Auth = "carol:pw"u8.ToArray() }, Xid.Auth);
        var (h, b) = await c.CallAsync(OpCode.WhoAmI, null);
        var r = new JuteReader(b);
        var infos = WhoAmIResponse.Read(ref r).ClientInfo!;
        Assert.Contains(infos, i => i.AuthScheme == "ip" && i.User == "127.0.0.1");
        Assert.Contains(infos, i => i.AuthScheme == "digest" && i.User == "carol");
    }

    [Fact]
    public async Task A_data_watch_fires_once_and_before_the_reply_to_the_write()
    {
        var c = await Client();
        await c.CreateAsync("/w", new byte[] { 1 });
        await c.GetDataAsync("/w", watch: true);
        int mark = c.Received.Count;
        var (h, _) = await c.CallAsync(OpCode.SetData, new SetDataRequest { Path = "/w", Data = new byte[] { 2 }, Version = -1 });
        var after = c.Received.Skip(mark).ToList();
        Assert.Equal(Xid.Notification, after[0].Xid);   // event first
        Assert.Equal(h.Zxid, after[0].Zxid);            // carrying the change's zxid
        Assert.Equal(EventType.NodeDataChanged, c.Events.Single().Type);
        await c.SetDataAsync("/w", new byte[] { 3 });
        await c.DrainAsync();
        Assert.Single(c.Events);                        // one-time: no second event
    }

    [Fact]
    public async Task Exists_watch_on_a_missing_node_fires_on_create_and_child_watch_on_children_change()
    {
        var watcher = await Client();
        var writer = await Client();
        Assert.Equal((int)Code.NoNode, (await watcher.ExistsAsync("/later", watch: true)).Err);
        await writer.CreateAsync("/later");
        await watcher.GetChildrenAsync("/later", watch: true);
        await writer.CreateAsync("/later/kid");
        await writer.DeleteAsync("/later/kid");
        await watcher.DrainAsync();
        Assert.Equal(new[] { (EventType.NodeCreated, "/later"), (EventType.NodeChildrenChanged, "/later") },
            watcher.Events.Select(e => (e.Type, e.Path!)).ToArray());
    }

    [Fact]
    public async Task Deleting_a_node_fires_data_and_child_watches_once_per_watcher()
    {
        var watcher = await Client();
        var writer = await Client();
        await writer.CreateAsync("/d");
        await watcher.GetDataAsync("/d", watch: true);
        await watcher.GetChildrenAsync("/d", watch: true);
        await watcher.GetChildrenAsync("/", watch: true);
        await writer.DeleteAsync("/d");
        await watcher.DrainAsync();
        Assert.Equal(new[] { (EventType.NodeDeleted, "/d"), (EventType.NodeChildrenChanged, "/") },
            watcher.Events.Select(e => (e.Type, e.Path!)).OrderBy(x => x.Item2).Reverse().ToArray());
    }

    [Fact]
    public async Task Persistent_and_recursive_watches_stay_and_recursive_ones_skip_children_changed()
    {
        var watcher = await Client();
        var writer = await Client();
        await watcher.CallAsync(OpCode.AddWatch, new AddWatchRequest { Path = "/pw", Mode = 0 });
        await watcher.CallAsync(OpCode.AddWatch, new AddWatchRequest { Path = "/rw", Mode = 1 });
        await writer.CreateAsync("/pw");
        await writer.CreateAsync("/pw/x");
        await writer.SetDataAsync("/pw", new byte[] { 1 });
        await writer.SetDataAsync("/pw", new byte[] { 2 });
        await writer.CreateAsync("/rw");
        await writer.CreateAsync("/rw/a");
        await writer.SetDataAsync("/rw/a", new byte[] { 1 });
        await writer.DeleteAsync("/rw/a");
        await watcher.DrainAsync();
        var got = watcher.Events.Select(e => (e.Type, e.Path!)).ToArray();
        Assert.Equal(new[]
        {
            (EventType.NodeCreated, "/pw"), (EventType.NodeChildrenChanged, "/pw"),
            (EventType.NodeDataChanged, "/pw"), (EventType.NodeDataChanged, "/pw"),
            (EventType.NodeCreated, "/rw"), (EventType.NodeCreated, "/rw/a"),
            (EventType.NodeDataChanged, "/rw/a"), (EventType.NodeDeleted, "/rw/a"),
        }, got);
        var (h, _) = await watcher.CallAsync(OpCode.RemoveWatches, new RemoveWatchesRequest { Path = "/pw", Type = WatcherType.Any });
        Assert.Equal(0, h.Err);
        var (h2, _) = await watcher.CallAsync(OpCode.CheckWatches, new CheckWatchesRequest { Path = "/pw", Type = WatcherType.Any });
        Assert.Equal((int)Code.NoWatcher, h2.Err);
    }

    [Fact]
    public async Task SetWatches_fires_missed_events_at_once_and_registers_the_rest()
    {
        var writer = await Client();
        await writer.CreateAsync("/sw1");
        await writer.CreateAsync("/sw2");
        var (_, st) = await writer.ExistsAsync("/sw2");
        long seen = st!.Mzxid;
        await writer.SetDataAsync("/sw1", new byte[] { 1 }); // changed after `seen`
        await writer.CreateAsync("/sw3");                    // created after `seen`
        var c = await Client();
        var (h, _) = await c.CallAsync(OpCode.SetWatches, new SetWatches
        {
            RelativeZxid = seen,
            DataWatches = new List<string> { "/sw1", "/sw2", "/gone" },
            ExistWatches = new List<string> { "/sw3", "/sw4" },
            ChildWatches = new List<string> { "/sw2" },
        }, Xid.SetWatches);
        Assert.Equal(0, h.Err);
        Assert.Equal(new[] { (EventType.NodeDataChanged, "/sw1"), (EventType.NodeDeleted, "/gone"), (EventType.NodeCreated, "/sw3") },
            c.Events.Select(e => (e.Type, e.Path!)).ToArray());
        c.Events.Clear();
        await writer.SetDataAsync("/sw2", new byte[] { 1 });
        await writer.CreateAsync("/sw4");
        await writer.CreateAsync("/sw2/k");
        await c.DrainAsync();
        Assert.Equal(new[] { (EventType.NodeDataChanged, "/sw2"), (EventType.NodeCreated, "/sw4"), (EventType.NodeChildrenChanged, "/sw2") },
            c.Events.Select(e => (e.Type, e.Path!)).ToArray());
    }

    [Fact]
    public async Task SetWatches2_restores_persistent_and_recursive_watches()
    {
        var writer = await Client();
        var c = await Client();
        var (h, _) = await c.CallAsync(OpCode.SetWatches2, new SetWatches2
        {
            RelativeZxid = _server.LastProcessedZxid,
            DataWatches = new(), ExistWatches = new(), ChildWatches = new(),
            PersistentWatches = new List<string> { "/p2" },
            PersistentRecursiveWatches = new List<string> { "/r2" },
        }, Xid.SetWatches);
        Assert.Equal(0, h.Err);
        Assert.Empty(c.Events); // persistent watches never fire on re-registration
        await writer.CreateAsync("/p2");
        await writer.CreateAsync("/p2/x");
        await writer.CreateAsync("/r2");
        await writer.CreateAsync("/r2/y");
        await c.DrainAsync();
        Assert.Equal(new[] { (EventType.NodeCreated, "/p2"), (EventType.NodeChildrenChanged, "/p2"), (EventType.NodeCreated, "/r2"), (EventType.NodeCreated, "/r2/y") },
            c.Events.Select(e => (e.Type, e.Path!)).ToArray());
    }

    [Fact]
    public async Task RemoveWatches_by_type_removes_only_that_kind()
    {
        var c = await Client();
        var writer = await Client();
        await writer.CreateAsync("/rm");
        await c.GetDataAsync("/rm", watch: true);
        await c.GetChildrenAsync("/rm", watch: true);
        var (h1, _) = await c.CallAsync(OpCode.RemoveWatches, new RemoveWatchesRequest { Path = "/rm", Type = WatcherType.Data });
        Assert.Equal(0, h1.Err);
        var (h2, _) = await c.CallAsync(OpCode.RemoveWatches, new RemoveWatchesRequest { Path = "/rm", Type = WatcherType.Data });
        Assert.Equal((int)Code.NoWatcher, h2.Err);
        var (h3, _) = await c.CallAsync(OpCode.CheckWatches, new CheckWatchesRequest { Path = "/rm", Type = WatcherType.Children });
        Assert.Equal(0, h3.Err);
        await writer.SetDataAsync("/rm", new byte[] { 1 });
        await writer.CreateAsync("/rm/k");
        await c.DrainAsync();
        Assert.Equal(new[] { (EventType.NodeChildrenChanged, "/rm") }, c.Events.Select(e => (e.Type, e.Path!)).ToArray());
    }

    [Fact]
    public async Task Session_timeout_is_negotiated_into_two_to_twenty_ticks()
    {
        var a = new TestClient(_server);
        Assert.Equal(200, (await a.ConnectAsync(timeout: 1)).TimeOut);
        var b = new TestClient(_server);
        Assert.Equal(2000, (await b.ConnectAsync(timeout: 999999)).TimeOut);
        var c = new TestClient(_server);
        Assert.Equal(1500, (await c.ConnectAsync(timeout: 1500)).TimeOut);
    }

    [Fact]
    public async Task Reconnect_moves_the_session_and_a_wrong_password_gets_timeout_zero()
    {
        var a = await Client();
        await a.CreateAsync("/mine", flags: CreateMode.Ephemeral);
        var b = new TestClient(_server);
        var rsp = await b.ConnectAsync(sessionId: a.SessionId, passwd: a.Passwd);
        Assert.Equal(a.SessionId, rsp.SessionId);
        Assert.True(await Eventually(() => a.IsClosed)); // the old connection is dropped
        Assert.Equal(0, (await b.ExistsAsync("/mine")).Err);

        var bad = new TestClient(_server);
        var r2 = await bad.ConnectAsync(sessionId: a.SessionId, passwd: new byte[16]);
        Assert.Equal(0, r2.TimeOut);
        Assert.Equal(0, r2.SessionId);
    }

    [Fact]
    public async Task Close_session_removes_ephemerals_and_expiry_does_too()
    {
        var a = await Client();
        await a.CreateAsync("/e1", flags: CreateMode.Ephemeral);
        await a.CreateAsync("/e1s-", flags: CreateMode.EphemeralSequential);
        var (h, b) = await a.CallAsync(OpCode.GetEphemerals, new GetEphemeralsRequest { PrefixPath = "/" });
        var r = new JuteReader(b);
        Assert.Equal(2, GetEphemeralsResponse.Read(ref r).Ephemerals!.Count);
        await a.CallAsync(OpCode.CloseSession, null);
        var o = await Client();
        Assert.Equal((int)Code.NoNode, (await o.ExistsAsync("/e1")).Err);

        var x = new TestClient(_server);
        await x.ConnectAsync(timeout: 200);
        await x.CreateAsync("/e2", flags: CreateMode.Ephemeral);
        // stop pinging: the session expires after its timeout (rounded up to a tick)
        Assert.True(await Eventually(() => x.IsClosed));
        Assert.Equal((int)Code.NoNode, (await o.ExistsAsync("/e2")).Err);
        var again = new TestClient(_server);
        Assert.Equal(0, (await again.ConnectAsync(sessionId: x.SessionId, passwd: x.Passwd)).TimeOut);
    }

    [Fact]
    public async Task Random_request_bodies_never_break_the_server()
    {
        var rnd = new Random(1234);
        int[] ops = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 100, 101, 102, 103, 104, 105, 106, 107, -10, -11, 99 };
        for (int round = 0; round < 40; round++)
        {
            var c = await Client();
            for (int i = 0; i < 25 && !c.IsClosed; i++)
            {
                var body = new byte[rnd.Next(0, 64)];
                rnd.NextBytes(body);
                // bias some bodies toward plausible lengths so decoding gets past the first field
                if (body.Length > 8 && rnd.Next(2) == 0) { body[0] = 0; body[1] = 0; body[2] = 0; body[3] = (byte)rnd.Next(0, body.Length); }
                var hdr = new RequestHeader { Xid = i + 1, Type = ops[rnd.Next(ops.Length)] }.ToBytes();
                c.SendRaw(hdr.Concat(body).ToArray());
            }
            await Task.Delay(5);
        }
        // the loop is still serving
        var fresh = await Client();
        Assert.Equal(0, (await fresh.CreateAsync("/after-fuzz")).Err);
        Assert.Equal(0, (await fresh.ExistsAsync("/after-fuzz")).Err);
        Assert.Equal(0, _server.InternalErrors); // every bad body got a protocol error or a close
    }

    [Fact]
    public async Task Null_strings_and_lists_in_well_formed_records_get_protocol_errors()
    {
        var c = await Client();
        Assert.Equal((int)Code.BadArguments, (await c.CallAsync(OpCode.Create, new CreateRequest { Path = null, Data = null, Acl = TestClient.OpenAcl })).Header.Err);
        Assert.Equal((int)Code.InvalidAcl, (await c.CallAsync(OpCode.Create, new CreateRequest { Path = "/n1", Acl = null })).Header.Err);
        Assert.Equal((int)Code.InvalidAcl, (await c.CallAsync(OpCode.Create, new CreateRequest { Path = "/n1", Acl = new List<ACL> { new() { Perms = 31, Id = new Id { Scheme = null, IdValue = null } } } })).Header.Err);
        Assert.Equal((int)Code.BadArguments, (await c.CallAsync(OpCode.SetData, new SetDataRequest { Path = null, Version = -1 })).Header.Err);
        Assert.Equal((int)Code.NoNode, (await c.CallAsync(OpCode.GetData, new GetDataRequest { Path = null })).Header.Err);
        var (h, _) = await c.CallAsync(OpCode.SetWatches, new SetWatches { RelativeZxid = 0, DataWatches = new List<string> { null! }, ExistWatches = null, ChildWatches = null }, Xid.SetWatches);
        Assert.Equal(0, h.Err);
        Assert.Equal(0, (await c.CreateAsync("/n2", data: null)).Err);
        Assert.Equal(0, _server.InternalErrors);
    }

    [Fact]
    public async Task A_client_that_has_seen_a_newer_zxid_is_refused()
    {
        var c = new TestClient(_server);
        await Assert.ThrowsAnyAsync<Exception>(() => c.ConnectAsync(lastZxid: _server.LastProcessedZxid + 100));
        Assert.True(c.IsClosed);
    }

    [Fact]
    public async Task Unknown_opcodes_get_unimplemented_and_the_connection_closes()
    {
        var c = await Client();
        var (h, _) = await c.CallAsync(99, null);
        Assert.Equal((int)Code.Unimplemented, h.Err);
        Assert.True(await Eventually(() => c.IsClosed));
    }

    [Fact]
    public async Task Reconfig_on_a_standalone_server_is_disabled()
    {
        var c = await Client();
        var (h, _) = await c.CallAsync(OpCode.Reconfig, new ReconfigRequest { JoiningServers = "x", CurConfigId = -1 });
        Assert.Equal((int)Code.ReconfigDisabled, h.Err);
    }

    [Fact]
    public async Task Containers_and_ttl_nodes_are_reaped()
    {
        var c = await Client();
        Assert.Equal(0, (await c.CreateAsync("/box", flags: CreateMode.Container, opcode: OpCode.CreateContainer)).Err);
        Assert.Equal(0, (await c.CreateAsync("/box/item")).Err);
        Assert.Equal(0, (await c.CreateAsync("/never", flags: CreateMode.Container, opcode: OpCode.CreateContainer)).Err);
        var (err, _, ttlStat) = await c.CreateAsync("/ttl", flags: CreateMode.PersistentWithTtl, opcode: OpCode.CreateTTL, ttl: 50);
        Assert.Equal(0, err);
        Assert.Equal(0, ttlStat!.EphemeralOwner); // clients see 0 for containers and TTL nodes
        Assert.Equal((int)Code.BadArguments, (await c.CreateAsync("/ttl0", flags: CreateMode.PersistentWithTtl, opcode: OpCode.CreateTTL, ttl: 0)).Err);
        await c.DeleteAsync("/box/item");
        await Task.Delay(100);
        await _server.RunOnLoopAsync(() => { _server.ReapContainersAndTtls(); return 0; });
        Assert.Equal((int)Code.NoNode, (await c.ExistsAsync("/box")).Err);   // had a child, now empty
        Assert.Equal(0, (await c.ExistsAsync("/never")).Err);                // never had children
        Assert.Equal((int)Code.NoNode, (await c.ExistsAsync("/ttl")).Err);   // idle longer than its ttl
    }

    [Fact]
    public async Task Ttl_creates_are_unimplemented_without_extended_types()
    {
        await using var plain = new KeeperServer(new KeeperConfig());
        plain.Start();
        var c = new TestClient(plain);
        await c.ConnectAsync();
        Assert.Equal((int)Code.Unimplemented, (await c.CreateAsync("/t", flags: CreateMode.PersistentWithTtl, opcode: OpCode.CreateTTL, ttl: 100)).Err);
    }

    [Fact]
    public async Task Quota_stats_follow_the_subtree()
    {
        var c = await Client();
        await c.CreateAsync("/qq", new byte[] { 1, 2 });
        await c.CreateAsync("/zookeeper/quota/qq");
        await c.CreateAsync("/zookeeper/quota/qq/zookeeper_limits", "count=10,bytes=-1"u8.ToArray());
        await c.CreateAsync("/zookeeper/quota/qq/zookeeper_stats", "count=0,bytes=0"u8.ToArray());
        Assert.Equal("count=1,bytes=2", System.Text.Encoding.UTF8.GetString((await c.GetDataAsync("/zookeeper/quota/qq/zookeeper_stats")).Data!));
        await c.CreateAsync("/qq/a", new byte[] { 1, 2, 3 });
        await c.SetDataAsync("/qq", new byte[] { 1 });
        Assert.Equal("count=2,bytes=4", System.Text.Encoding.UTF8.GetString((await c.GetDataAsync("/zookeeper/quota/qq/zookeeper_stats")).Data!));
    }

    [Fact]
    public async Task Hard_quotas_are_enforced_when_enforceQuota_is_on()
    {
        await using var server = new KeeperServer(new KeeperConfig { EnforceQuota = true });
        server.Start();
        var c = new TestClient(server);
        await c.ConnectAsync();
        await c.CreateAsync("/lim");
        await c.CreateAsync("/zookeeper/quota/lim");
        // the form zkCli's "setquota -N 2 -B 10" writes
        await c.CreateAsync("/zookeeper/quota/lim/zookeeper_limits", "count=-1,bytes=-1=;byteHardLimit=10;countHardLimit=2"u8.ToArray());
        await c.CreateAsync("/zookeeper/quota/lim/zookeeper_stats", "count=0,bytes=0"u8.ToArray());
        Assert.Equal(0, (await c.CreateAsync("/lim/a", new byte[4])).Err);
        Assert.Equal((int)Code.QuotaExceeded, (await c.CreateAsync("/lim/b")).Err);          // 3 nodes > 2
        Assert.Equal((int)Code.QuotaExceeded, (await c.SetDataAsync("/lim/a", new byte[11])).Err); // 11 bytes > 10
        Assert.Equal(0, (await c.SetDataAsync("/lim/a", new byte[10])).Err);
    }

    [Fact]
    public async Task Config_node_and_all_children_number()
    {
        var c = await Client();
        var (err, data, st) = await c.GetDataAsync("/zookeeper/config");
        Assert.Equal(0, err);
        Assert.Empty(data!);
        Assert.Equal(-1, st!.Aversion);
        await c.CreateAsync("/n");
        await c.CreateAsync("/n/a");
        await c.CreateAsync("/n/a/b");
        var (h, b) = await c.CallAsync(OpCode.GetAllChildrenNumber, new GetAllChildrenNumberRequest { Path = "/n" });
        var r = new JuteReader(b);
        Assert.Equal(2, GetAllChildrenNumberResponse.Read(ref r).TotalNumber);
    }

    [Fact]
    public async Task A_malformed_request_body_is_a_marshalling_error_and_garbage_headers_close()
    {
        var c = await Client();
        // setData whose buffer claims more bytes than the frame holds
        var body = new byte[] { 0, 0, 0, 2, (byte)'/', (byte)'x', 0x7f, 0, 0, 0 };
        var (h, _) = await c.CallAsync(OpCode.SetData, new Raw(body), 77);
        Assert.Equal((int)Code.MarshallingError, h.Err);
        c.SendRaw(new byte[] { 1, 2 });
        Assert.True(await Eventually(() => c.IsClosed));
    }
}
