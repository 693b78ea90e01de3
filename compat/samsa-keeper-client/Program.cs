using System.Diagnostics;
using System.Text;
using System.Threading.Channels;
using Samsa.Keeper.Client;
using Samsa.Keeper.Protocol;
using Samsa.Keeper.Client.Tests;
using Samsa.Keeper.Protocol.Records;

namespace Samsa.Compat.KeeperClient;

/// <summary>ZooKeeper compat scenarios through Samsa.Keeper.Client. The harness passes the server
/// in COMPAT_ADDR and a transcript file in COMPAT_TRANSCRIPT; notes are written so the same
/// scenario gives the same transcript on the Keeper and on upstream ZooKeeper.</summary>
internal static class Program
{
    private const string Base = "/compat-samsa-keeper-client";
    private static readonly string Addr = Environment.GetEnvironmentVariable("COMPAT_ADDR") ?? "127.0.0.1:2181";
    private static readonly string? TranscriptPath = Environment.GetEnvironmentVariable("COMPAT_TRANSCRIPT");
    private static readonly Dictionary<string, Func<Task>> Scenarios = new(StringComparer.Ordinal);
    private static List<ACL> Open => Acls.OpenAclUnsafe;

    private sealed class Fail(string message) : Exception(message);
    private sealed class Skip(string message) : Exception(message);

    private static async Task<int> Main(string[] args)
    {
        Register();
        if (args is ["--list"])
        {
            foreach (var n in Scenarios.Keys) Console.WriteLine(n);
            return 0;
        }
        int failed = 0;
        foreach (var name in args.Length > 0 ? args : Scenarios.Keys.ToArray())
        {
            if (!Scenarios.TryGetValue(name, out var run))
            {
                Console.WriteLine($"FAIL {name}: unknown scenario for this client");
                failed++;
                continue;
            }
            var sw = Stopwatch.StartNew();
            try
            {
                await run().WaitAsync(TimeSpan.FromSeconds(60));
                Console.WriteLine($"PASS {name}");
            }
            catch (Skip e) { Console.WriteLine($"SKIP {name}: {e.Message}"); }
            catch (Fail e) { failed++; Console.WriteLine($"FAIL {name}: {e.Message}"); }
            catch (Exception e)
            {
                failed++;
                Console.Error.WriteLine(e);
                Console.WriteLine($"FAIL {name}: {e.GetType().Name}: {Trim(e.Message)}");
            }
            Console.WriteLine($"  ({sw.Elapsed.TotalSeconds:F1}s)");
        }
        return failed > 0 ? 1 : 0;
    }

    private static string Trim(string s) => s.Length > 300 ? s[..300] : s;

    private static void Check(bool cond, string message)
    {
        if (!cond) throw new Fail(message);
    }

    private static void Note(params object?[] parts)
    {
        string line = string.Join(" ", parts.Select(p => p switch
        {
            null => "null",
            IEnumerable<string> l => "[" + string.Join(",", l) + "]",
            _ => p.ToString(),
        }));
        Console.WriteLine("  | " + line);
        if (TranscriptPath is not null) File.AppendAllText(TranscriptPath, line + "\n");
    }

    private static async Task<KeeperException> ExpectError(Code code, Func<Task> f, string what)
    {
        try
        {
            await f();
        }
        catch (KeeperException e) when (e.Code == code)
        {
            return e;
        }
        catch (KeeperException e)
        {
            throw new Fail($"{what}: expected {code}, got {e.Code}");
        }
        throw new Fail($"{what}: expected {code}, call succeeded");
    }

    private static async Task Eventually(Func<Task<bool>> cond, string what, int timeoutMs = 10000)
    {
        var deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
        while (!await cond())
        {
            if (DateTime.UtcNow > deadline) throw new Fail($"{what} (waited {timeoutMs / 1000}s)");
            await Task.Delay(100);
        }
    }

    private static Task<global::Samsa.Keeper.Client.KeeperClient> Connect(string? address = null, int timeoutMs = 10000, Watcher? watcher = null) =>
        global::Samsa.Keeper.Client.KeeperClient.ConnectAsync(address ?? Addr,
            new KeeperClientOptions { SessionTimeout = TimeSpan.FromMilliseconds(timeoutMs), DefaultWatcher = watcher },
            new CancellationTokenSource(15000).Token);

    private static async Task With(Func<global::Samsa.Keeper.Client.KeeperClient, Task> body)
    {
        await using var zk = await Connect();
        await body(zk);
    }

    /// <summary>A clean parent node for one scenario, at the same path on every server.</summary>
    private static async Task<string> Fresh(global::Samsa.Keeper.Client.KeeperClient zk, string name)
    {
        string path = $"{Base}/{name}";
        await DeleteTree(zk, path);
        try { await zk.CreateAsync(Base, null, Open); } catch (KeeperException e) when (e.Code == Code.NodeExists) { }
        await zk.CreateAsync(path, null, Open);
        return path;
    }

    private static async Task DeleteTree(global::Samsa.Keeper.Client.KeeperClient zk, string path)
    {
        List<string> kids;
        try { kids = await zk.GetChildrenAsync(path); }
        catch (KeeperException e) when (e.Code == Code.NoNode) { return; }
        foreach (var k in kids) await DeleteTree(zk, path + "/" + k);
        try { await zk.DeleteAsync(path); } catch (KeeperException e) when (e.Code == Code.NoNode) { }
    }

    private static string StatStr(Stat st, long session = 0) =>
        $"version={st.Version} cversion={st.Cversion} aversion={st.Aversion} dataLength={st.DataLength} numChildren={st.NumChildren} " +
        $"owner={(st.EphemeralOwner == 0 ? "none" : st.EphemeralOwner == session ? "self" : "other")} mzxid>=czxid={st.Mzxid >= st.Czxid}";

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);
    private static string S(byte[] b) => Encoding.UTF8.GetString(b);

    private sealed class Events
    {
        private readonly Channel<WatchedEvent> _ch = Channel.CreateUnbounded<WatchedEvent>();
        public Events() { Watcher = e => { if (e.Type != EventType.None) _ch.Writer.TryWrite(e); }; }
        public Watcher Watcher { get; }

        public async Task<string> Next(string what, int timeoutMs = 8000)
        {
            using var cts = new CancellationTokenSource(timeoutMs);
            try
            {
                var e = await _ch.Reader.ReadAsync(cts.Token);
                return $"{e.Type} {e.Path}";
            }
            catch (OperationCanceledException) { throw new Fail($"no event: {what}"); }
        }

        public async Task None(string what, int windowMs = 500)
        {
            await Task.Delay(windowMs);
            if (_ch.Reader.TryRead(out var e)) throw new Fail($"{what}: unexpected {e.Type} {e.Path}");
        }
    }

    private static void Add(string name, Func<Task> f) => Scenarios[name] = f;

    private static void Register()
    {
        Add("crud", () => With(async zk =>
        {
            string p = await Fresh(zk, "crud");
            Check(await zk.CreateAsync(p + "/a", B("one"), Open) == p + "/a", "create path");
            var (d, st) = await zk.GetDataAsync(p + "/a");
            Check(S(d) == "one", $"get returned {S(d)}");
            Note("get", S(d), StatStr(st));
            var st2 = await zk.SetDataAsync(p + "/a", B("two"), 0);
            Note("set", StatStr(st2));
            Check(S((await zk.GetDataAsync(p + "/a")).Data) == "two", "data after set");
            Note("children", await zk.GetChildrenAsync(p));
            await zk.DeleteAsync(p + "/a", 1);
            Check(await zk.ExistsAsync(p + "/a") is null, "node still exists after delete");
        }));

        Add("errors", () => With(async zk =>
        {
            string p = await Fresh(zk, "errors");
            await zk.CreateAsync(p + "/a", null, Open);
            await zk.CreateAsync(p + "/a/b", null, Open);
            var codes = new List<string>
            {
                (await ExpectError(Code.NodeExists, () => zk.CreateAsync(p + "/a", null, Open), "create existing")).Code.ToString(),
                (await ExpectError(Code.NoNode, () => zk.GetDataAsync(p + "/none"), "get missing")).Code.ToString(),
                (await ExpectError(Code.NoNode, () => zk.CreateAsync(p + "/x/y", null, Open), "create without parent")).Code.ToString(),
                (await ExpectError(Code.NotEmpty, () => zk.DeleteAsync(p + "/a"), "delete non-empty")).Code.ToString(),
                (await ExpectError(Code.BadVersion, () => zk.SetDataAsync(p + "/a", null, 5), "set bad version")).Code.ToString(),
                (await ExpectError(Code.BadVersion, () => zk.DeleteAsync(p + "/a/b", 5), "delete bad version")).Code.ToString(),
            };
            Note("codes", codes);
        }));

        Add("create-sequential", () => With(async zk =>
        {
            string p = await Fresh(zk, "create-sequential");
            var names = new List<string>();
            for (int i = 0; i < 3; i++) names.Add(await zk.CreateAsync(p + "/s-", null, Open, CreateMode.PersistentSequential));
            Note("created", names.Select(n => n[(p.Length + 1)..]));
            Check(names.SequenceEqual(new[] { p + "/s-0000000000", p + "/s-0000000001", p + "/s-0000000002" }), string.Join(",", names));
        }));

        Add("create-ephemeral", async () =>
        {
            await using var zk = await Connect();
            string p = await Fresh(zk, "create-ephemeral");
            var (path, st) = await zk.CreateWithStatAsync(p + "/e", null, Open, CreateMode.Ephemeral);
            Check(st.EphemeralOwner == zk.SessionId, "ephemeralOwner is not the session");
            Note("stat", StatStr(st, zk.SessionId));
            await ExpectError(Code.NoChildrenForEphemerals, () => zk.CreateAsync(path + "/c", null, Open), "child of ephemeral");
        });

        Add("create-ephemeral-sequential", () => With(async zk =>
        {
            string p = await Fresh(zk, "create-ephemeral-sequential");
            string a = await zk.CreateAsync(p + "/lock-", null, Open, CreateMode.EphemeralSequential);
            string b = await zk.CreateAsync(p + "/lock-", null, Open, CreateMode.EphemeralSequential);
            Note("created", new[] { a[(p.Length + 1)..], b[(p.Length + 1)..] });
            Check(a == p + "/lock-0000000000" && b == p + "/lock-0000000001", $"{a} {b}");
            Check((await zk.ExistsAsync(b))!.EphemeralOwner == zk.SessionId, "owner");
        }));

        Add("create-container", () => With(async zk =>
        {
            string p = await Fresh(zk, "create-container");
            var (c, st) = await zk.CreateWithStatAsync(p + "/c", null, Open, CreateMode.Container);
            await zk.CreateAsync(c + "/kid", null, Open);
            var st2 = await zk.ExistsAsync(c);
            Note("container", StatStr(st), "after child", StatStr(st2!));
            Check(st.EphemeralOwner == 0, "a container shows ephemeralOwner 0 to clients");
            Check(st2!.NumChildren == 1, "child count");
        }));

        Add("create-ttl", () => With(async zk =>
        {
            string p = await Fresh(zk, "create-ttl");
            string t;
            try { t = await zk.CreateAsync(p + "/t", B("v"), Open, CreateMode.PersistentWithTtl, ttl: 60000); }
            catch (KeeperException e) when (e.Code == Code.Unimplemented) { throw new Fail("TTL node refused (server needs zookeeper.extendedTypesEnabled=true)"); }
            string ts = await zk.CreateAsync(p + "/ts-", B("v"), Open, CreateMode.PersistentSequentialWithTtl, ttl: 60000);
            Note("created", new[] { t[(p.Length + 1)..], ts[(p.Length + 1)..] }, StatStr((await zk.ExistsAsync(t))!));
            Check(ts == p + "/ts-0000000001", ts);
        }));

        Add("create-with-stat", () => With(async zk =>
        {
            string p = await Fresh(zk, "create-with-stat");
            var (path, st) = await zk.CreateWithStatAsync(p + "/n", B("abc"), Open);
            Note("create2", path[(p.Length + 1)..], StatStr(st));
            Check(st.DataLength == 3 && st.Version == 0 && st.Czxid == st.Mzxid, StatStr(st));
        }));

        Add("stat-versions", () => With(async zk =>
        {
            string p = await Fresh(zk, "stat-versions");
            await zk.CreateAsync(p + "/n", null, Open);
            await zk.SetDataAsync(p + "/n", B("1"));
            await zk.SetDataAsync(p + "/n", B("22"));
            await zk.CreateAsync(p + "/n/c", null, Open);
            await zk.DeleteAsync(p + "/n/c");
            await zk.SetAclAsync(p + "/n", Open);
            var st = (await zk.ExistsAsync(p + "/n"))!;
            Note("stat", StatStr(st));
            Check(st.Version == 2 && st.Cversion == 2 && st.Aversion == 1 && st.DataLength == 2, StatStr(st));
            Check(st.Pzxid > st.Czxid, "pzxid moves with child changes");
        }));

        Add("watch-data", () => WatchScenario("watch-data", async (zk, other, p, ev) =>
        {
            await other.CreateAsync(p + "/n", null, Open);
            await zk.GetDataAsync(p + "/n", ev.Watcher);
            await other.SetDataAsync(p + "/n", B("x"));
            Note(await ev.Next("data change"));
            await other.SetDataAsync(p + "/n", B("y"));
            await ev.None("one-time watch fired twice");
        }));

        Add("watch-exists", () => WatchScenario("watch-exists", async (zk, other, p, ev) =>
        {
            Check(await zk.ExistsAsync(p + "/n", ev.Watcher) is null, "exists on a missing node");
            await other.CreateAsync(p + "/n", null, Open);
            Note(await ev.Next("creation"));
            Check(await zk.ExistsAsync(p + "/n", ev.Watcher) is not null, "exists");
            await other.DeleteAsync(p + "/n");
            Note(await ev.Next("deletion"));
        }));

        Add("watch-children", () => WatchScenario("watch-children", async (zk, other, p, ev) =>
        {
            await zk.GetChildrenAsync(p, ev.Watcher);
            await other.CreateAsync(p + "/k", null, Open);
            Note(await ev.Next("child created"));
            await other.SetDataAsync(p + "/k", B("x"));
            await ev.None("a data change fired a child watch");
        }));

        Add("watch-delete", () => WatchScenario("watch-delete", async (zk, other, p, ev) =>
        {
            await other.CreateAsync(p + "/n", null, Open);
            await zk.GetDataAsync(p + "/n", ev.Watcher);
            await zk.GetChildrenAsync(p + "/n", ev.Watcher);
            await other.DeleteAsync(p + "/n");
            // one watcher object on both: one NodeDeleted event
            Note(await ev.Next("deletion"));
            await ev.None("deletion delivered twice to one watcher");
        }));

        Add("watch-persistent", () => WatchScenario("watch-persistent", async (zk, other, p, ev) =>
        {
            await zk.AddWatchAsync(p + "/n", AddWatchMode.Persistent, ev.Watcher);
            await other.CreateAsync(p + "/n", null, Open);
            await other.SetDataAsync(p + "/n", B("1"));
            await other.SetDataAsync(p + "/n", B("2"));
            await other.CreateAsync(p + "/n/c", null, Open);
            await other.DeleteAsync(p + "/n/c");
            for (int i = 0; i < 5; i++) Note(await ev.Next($"persistent event {i + 1}"));
        }));

        Add("watch-persistent-recursive", () => WatchScenario("watch-persistent-recursive", async (zk, other, p, ev) =>
        {
            await zk.AddWatchAsync(p, AddWatchMode.PersistentRecursive, ev.Watcher);
            await other.CreateAsync(p + "/a", null, Open);
            await other.CreateAsync(p + "/a/b", null, Open);
            await other.SetDataAsync(p + "/a/b", B("x"));
            await other.DeleteAsync(p + "/a/b");
            for (int i = 0; i < 4; i++) Note((await ev.Next($"recursive event {i + 1}")).Replace(p, "P"));
            await ev.None("a recursive watch reported a child change");
        }));

        Add("watch-remove", () => WatchScenario("watch-remove", async (zk, other, p, ev) =>
        {
            await other.CreateAsync(p + "/n", null, Open);
            await zk.GetDataAsync(p + "/n", ev.Watcher);
            await zk.RemoveWatchesAsync(p + "/n", ev.Watcher, WatcherType.Data);
            Note((await ev.Next("removal event")).Replace(p, "P"));
            await other.SetDataAsync(p + "/n", B("x"));
            await ev.None("removed watch fired");
            await ExpectError(Code.NoWatcher, () => zk.RemoveAllWatchesAsync(p + "/n", WatcherType.Any), "remove again");
        }));

        Add("ephemeral-session-close", async () =>
        {
            await using var observer = await Connect();
            string p = await Fresh(observer, "ephemeral-session-close");
            var zk = await Connect();
            await zk.CreateAsync(p + "/e", null, Open, CreateMode.Ephemeral);
            var ev = new Events();
            Check(await observer.ExistsAsync(p + "/e", ev.Watcher) is not null, "ephemeral visible");
            await zk.DisposeAsync();
            Note((await ev.Next("deletion at close", 3000)).Replace(p, "P"));
            Check(await observer.ExistsAsync(p + "/e") is null, "ephemeral survived close");
        });

        Add("session-expiry", async () =>
        {
            await using var observer = await Connect();
            string p = await Fresh(observer, "session-expiry");
            await using var proxy = new TcpProxy(Addr);
            var states = Channel.CreateUnbounded<KeeperState>();
            await using var zk = await Connect(proxy.Address, 4000, e => { if (e.Type == EventType.None) states.Writer.TryWrite(e.State); });
            await zk.CreateAsync(p + "/e", null, Open, CreateMode.Ephemeral);
            Note("negotiated ms", (int)zk.SessionTimeout.TotalMilliseconds);
            proxy.Pause();  // the server hears nothing from the client from now on
            await Eventually(async () => await observer.ExistsAsync(p + "/e") is null, "ephemeral not deleted by expiry", 30000);
            proxy.Resume();
            var seen = new List<string>();
            using var cts = new CancellationTokenSource(20000);
            try
            {
                while (true)
                {
                    var s = await states.Reader.ReadAsync(cts.Token);
                    seen.Add(s.ToString());
                    if (s == KeeperState.Expired) break;
                }
            }
            catch (OperationCanceledException) { throw new Fail("no Expired state; saw " + string.Join(",", seen)); }
            Note("states", seen);
            await ExpectError(Code.SessionExpired, () => zk.GetDataAsync(p), "request after expiry");
        });

        Add("session-resume", async () =>
        {
            await using var observer = await Connect();
            string p = await Fresh(observer, "session-resume");
            await using var proxy = new TcpProxy(Addr);
            await using var first = await Connect(proxy.Address);
            await first.CreateAsync(p + "/e", null, Open, CreateMode.Ephemeral);
            proxy.Pause();
            proxy.KillConnections();
            await using var second = await global::Samsa.Keeper.Client.KeeperClient.ConnectAsync(Addr,
                new KeeperClientOptions { SessionId = first.SessionId, SessionPassword = first.SessionPassword, SessionTimeout = TimeSpan.FromSeconds(10) });
            Check(second.SessionId == first.SessionId, "resumed with another session id");
            Check((await second.GetEphemeralsAsync(p)).SequenceEqual(new[] { p + "/e" }), "the session's ephemerals");
            await second.DisposeAsync();
            await Eventually(async () => await observer.ExistsAsync(p + "/e") is null, "ephemeral not deleted after the resumed session closed");
            Note("ok");
        });

        Add("reconnect-rewatch", async () =>
        {
            await using var other = await Connect();
            string p = await Fresh(other, "reconnect-rewatch");
            await other.CreateAsync(p + "/n", null, Open);
            await using var proxy = new TcpProxy(Addr);
            var states = Channel.CreateUnbounded<KeeperState>();
            await using var zk = await Connect(proxy.Address, 8000, e => { if (e.Type == EventType.None) states.Writer.TryWrite(e.State); });
            long session = zk.SessionId;
            var ev = new Events();
            await zk.GetDataAsync(p + "/n", ev.Watcher);
            await zk.AddWatchAsync(p, AddWatchMode.PersistentRecursive, ev.Watcher);
            proxy.Pause();
            proxy.KillConnections();
            await other.SetDataAsync(p + "/n", B("while away"));
            proxy.Resume();
            using var cts = new CancellationTokenSource(15000);
            while (await states.Reader.ReadAsync(cts.Token) != KeeperState.SyncConnected) { }
            Check(zk.SessionId == session, "a new session after reconnect");
            // the change made while away is reported once by the re-registered watches
            Note((await ev.Next("change made while disconnected")).Replace(p, "P"));
            await other.CreateAsync(p + "/later", null, Open);
            Note((await ev.Next("recursive watch after reconnect")).Replace(p, "P"));
        });

        Add("multi", () => With(async zk =>
        {
            string p = await Fresh(zk, "multi");
            await zk.CreateAsync(p + "/v", B("0"), Open);
            var r = await zk.MultiAsync(new[]
            {
                Op.Create(p + "/a", B("a"), Open), Op.SetData(p + "/v", B("1"), 0), Op.Check(p + "/v", 1), Op.Delete(p + "/a"),
            });
            Note("results", r.Select(x => x.GetType().Name));
            Check(r.Count == 4 && r[0] is OpResult.Create && r[1] is OpResult.SetData && r[2] is OpResult.Check && r[3] is OpResult.Delete, "result kinds");
        }));

        Add("multi-abort", () => With(async zk =>
        {
            string p = await Fresh(zk, "multi-abort");
            var e = await ExpectError(Code.NoNode, () => zk.MultiAsync(new[] { Op.Create(p + "/a", null, Open), Op.SetData(p + "/missing", null) }), "multi with a failing op");
            Note("results", e.Results!.Select(x => x is OpResult.Error er ? er.Code.ToString() : x.GetType().Name));
            Check(await zk.ExistsAsync(p + "/a") is null, "the aborted transaction's create was applied");
        }));

        Add("multi-read", () => With(async zk =>
        {
            string p = await Fresh(zk, "multi-read");
            await zk.CreateAsync(p + "/a", B("x"), Open);
            var r = await zk.MultiReadAsync(new[] { Op.GetData(p + "/a"), Op.GetChildren(p), Op.GetData(p + "/none") });
            Note("results", r.Select(x => x switch
            {
                OpResult.GetData g => "data:" + S(g.Data),
                OpResult.GetChildren c => "children:" + string.Join("+", c.Children),
                OpResult.Error er => "error:" + er.Code,
                _ => x.GetType().Name,
            }));
            Check(r[2] is OpResult.Error { Code: Code.NoNode }, "missing node in multiRead");
        }));

        Add("acl-digest", async () =>
        {
            await using var owner = await Connect();
            string p = await Fresh(owner, "acl-digest");
            await owner.CreateAsync(p + "/s", B("secret"), new List<ACL> { Acls.Digest("user", "pass", Perms.All) });
            await using var zk = await Connect();
            await ExpectError(Code.NoAuth, () => zk.GetDataAsync(p + "/s"), "read without auth");
            await zk.AddAuthInfoAsync("digest", "user:pass");
            Check(S((await zk.GetDataAsync(p + "/s")).Data) == "secret", "read with auth");
            Note("acl", (await zk.GetAclAsync(p + "/s")).Acl.Select(a => $"{a.Perms}:{a.Id.Scheme}:{a.Id.IdValue}"));
        });

        Add("acl-world-readonly", () => With(async zk =>
        {
            string p = await Fresh(zk, "acl-world-readonly");
            await zk.CreateAsync(p + "/r", B("x"), Acls.ReadAclUnsafe);
            Check(S((await zk.GetDataAsync(p + "/r")).Data) == "x", "read");
            await ExpectError(Code.NoAuth, () => zk.SetDataAsync(p + "/r", B("y")), "write to read-only");
            await ExpectError(Code.NoAuth, () => zk.CreateAsync(p + "/r/c", null, Open), "create under read-only");
        }));

        Add("acl-get-set", () => With(async zk =>
        {
            string p = await Fresh(zk, "acl-get-set");
            await zk.CreateAsync(p + "/n", null, Open);
            var st = await zk.SetAclAsync(p + "/n", new List<ACL> { Acls.Of(Perms.Read | Perms.Admin, "world", "anyone") }, 0);
            await ExpectError(Code.BadVersion, () => zk.SetAclAsync(p + "/n", Open, 0), "setACL with a stale version");
            var (acl, st2) = await zk.GetAclAsync(p + "/n");
            Note("acl", acl.Select(a => $"{a.Perms}:{a.Id.Scheme}:{a.Id.IdValue}"), "aversion", st2.Aversion);
            Check(st.Aversion == 1 && acl.Count == 1 && acl[0].Perms == (int)(Perms.Read | Perms.Admin), "acl after set");
        }));

        Add("sync", () => With(async zk =>
        {
            string p = await Fresh(zk, "sync");
            Note("sync", (await zk.SyncAsync(p)).Replace(p, "P"));
        }));

        Add("get-ephemerals", () => With(async zk =>
        {
            string p = await Fresh(zk, "get-ephemerals");
            await zk.CreateAsync(p + "/e1", null, Open, CreateMode.Ephemeral);
            await zk.CreateAsync(p + "/e2", null, Open, CreateMode.EphemeralSequential);
            var e = (await zk.GetEphemeralsAsync(p)).OrderBy(x => x, StringComparer.Ordinal).ToList();
            Note("ephemerals", e.Select(x => x.Replace(p, "P")));
            Check(e.SequenceEqual(new[] { p + "/e1", p + "/e20000000001" }), string.Join(",", e));
        }));

        Add("all-children-number", () => With(async zk =>
        {
            string p = await Fresh(zk, "all-children-number");
            await zk.CreateAsync(p + "/a", null, Open);
            await zk.CreateAsync(p + "/a/b", null, Open);
            await zk.CreateAsync(p + "/c", null, Open);
            int n = await zk.GetAllChildrenNumberAsync(p);
            Note("count", n);
            Check(n == 3, $"count {n}");
        }));

        Add("whoami", () => With(async zk =>
        {
            await zk.AddAuthInfoAsync("digest", "who:pw");
            var ids = (await zk.WhoAmIAsync()).Select(i => $"{i.Scheme}:{i.User}").OrderBy(x => x).ToList();
            Note("ids", ids);
            Check(ids.Contains("digest:who") && ids.Contains("ip:127.0.0.1"), string.Join(",", ids));
        }));

        Add("config-node", () => With(async zk =>
        {
            Check(await zk.ExistsAsync("/zookeeper/config") is not null, "/zookeeper/config missing");
            var kids = (await zk.GetChildrenAsync("/zookeeper")).OrderBy(x => x).ToList();
            Note("/zookeeper children", kids);
            Check(kids.Contains("config") && kids.Contains("quota"), string.Join(",", kids));
        }));

        Add("chroot", async () =>
        {
            await using var plain = await Connect();
            string p = await Fresh(plain, "chroot");
            await using var zk = await Connect(Addr + p);
            var ev = new Events();
            Check(await zk.CreateAsync("/x", B("1"), Open) == "/x", "create path inside the chroot");
            Check(await zk.CreateAsync("/s-", null, Open, CreateMode.PersistentSequential) == "/s-0000000001", "sequential path inside the chroot");
            Check(S((await plain.GetDataAsync(p + "/x")).Data) == "1", "node under the chroot");
            await zk.GetDataAsync("/x", ev.Watcher);
            await plain.SetDataAsync(p + "/x", B("2"));
            Note(await ev.Next("event under chroot"));
            Note("children", (await zk.GetChildrenAsync("/")).OrderBy(x => x));
        });

        Add("pipelining", () => With(async zk =>
        {
            string p = await Fresh(zk, "pipelining");
            var created = await Task.WhenAll(Enumerable.Range(0, 200).Select(i => zk.CreateAsync(p + "/n-", B(i.ToString()), Open, CreateMode.PersistentSequential)));
            for (int i = 0; i < created.Length; i++) Check(created[i] == $"{p}/n-{i:D10}", $"answer {i} was {created[i]}");
            var data = await Task.WhenAll(created.Select(c => zk.GetDataAsync(c)));
            for (int i = 0; i < data.Length; i++) Check(S(data[i].Data) == i.ToString(), $"read {i}");
            Note("created", created.Length);
        }));
    }

    private static async Task WatchScenario(string name, Func<global::Samsa.Keeper.Client.KeeperClient, global::Samsa.Keeper.Client.KeeperClient, string, Events, Task> body)
    {
        await using var zk = await Connect();
        await using var other = await Connect();
        string p = await Fresh(zk, name);
        var ev = new Events();
        await body(zk, other, p, ev);
    }
}
