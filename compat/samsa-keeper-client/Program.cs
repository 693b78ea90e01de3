// ZooKeeper compat scenarios through Samsa.Keeper.Client, Samsa's own ZooKeeper client.
// Usage: SamsaKeeperClientCompat --list | SamsaKeeperClientCompat NAME...  (server in COMPAT_ADDR)
// Prints `PASS name` / `FAIL name: reason`; observations go to COMPAT_TRANSCRIPT for the
// differential comparison, with zxids only as relations so they compare across servers.
using System.Diagnostics;
using System.Text;
using Samsa.Keeper.Client;
using Samsa.Keeper.Protocol.Records;

namespace Samsa.Compat.KeeperClient;

public static class Program
{
    static readonly string Addr = Environment.GetEnvironmentVariable("COMPAT_ADDR") ?? "127.0.0.1:2181";
    static readonly string? TranscriptPath = Environment.GetEnvironmentVariable("COMPAT_TRANSCRIPT");
    const string Base = "/compat-samsa-keeper-client";

    sealed class FailException(string message) : Exception(message);

    static void Check(bool cond, string message)
    {
        if (!cond) throw new FailException(message);
    }

    static void Note(string line)
    {
        Console.WriteLine("  | " + line);
        if (TranscriptPath is not null) File.AppendAllText(TranscriptPath, line + "\n");
    }

    static readonly Dictionary<string, Func<Task>> Scenarios = new()
    {
        ["crud"] = Crud,
        ["errors"] = Errors,
        ["create-sequential"] = CreateSequential,
        ["create-ephemeral"] = CreateEphemeral,
        ["create-container"] = CreateContainer,
        ["create-ttl"] = CreateTtl,
        ["create-with-stat"] = CreateWithStat,
        ["stat-versions"] = StatVersions,
        ["watch-data"] = WatchData,
        ["watch-exists"] = WatchExists,
        ["watch-children"] = WatchChildren,
        ["watch-persistent-recursive"] = WatchPersistentRecursive,
        ["ephemeral-session-close"] = EphemeralSessionClose,
        ["multi"] = Multi,
        ["multi-abort"] = MultiAbort,
        ["acl-digest"] = AclDigest,
        ["sync"] = SyncScenario,
        ["get-ephemerals"] = GetEphemerals,
        ["all-children-number"] = AllChildrenNumber,
        ["whoami"] = WhoAmI,
    };

    public static async Task<int> Main(string[] args)
    {
        if (args is ["--list"])
        {
            foreach (var name in Scenarios.Keys) Console.WriteLine(name);
            return 0;
        }
        var failed = 0;
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
                await run();
                Console.WriteLine($"PASS {name}");
            }
            catch (FailException e)
            {
                failed++;
                Console.WriteLine($"FAIL {name}: {e.Message}");
            }
            catch (Exception e)
            {
                failed++;
                Console.Error.WriteLine(e);
                var msg = e.Message.Replace('\n', ' ');
                Console.WriteLine($"FAIL {name}: {e.GetType().Name}: {(msg.Length > 300 ? msg[..300] : msg)}");
            }
            Console.WriteLine($"  ({sw.Elapsed.TotalSeconds:F1}s)");
        }
        return failed > 0 ? 1 : 0;
    }

    static Task<Samsa.Keeper.Client.KeeperClient> Connect() =>
        Samsa.Keeper.Client.KeeperClient.ConnectAsync(Addr, new KeeperClientOptions { SessionTimeout = TimeSpan.FromSeconds(10) });

    static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    static async Task<string> Fresh(Samsa.Keeper.Client.KeeperClient zk, string name)
    {
        var path = $"{Base}/{name}";
        await DeleteTree(zk, path);
        if (await zk.ExistsAsync(Base) is null) await zk.CreateAsync(Base, [], Acls.OpenAclUnsafe);
        await zk.CreateAsync(path, [], Acls.OpenAclUnsafe);
        return path;
    }

    static async Task DeleteTree(Samsa.Keeper.Client.KeeperClient zk, string path)
    {
        if (await zk.ExistsAsync(path) is null) return;
        foreach (var child in await zk.GetChildrenAsync(path)) await DeleteTree(zk, $"{path}/{child}");
        await zk.DeleteAsync(path);
    }

    static string StatText(Stat st, long session = 0) =>
        $"version={st.Version} cversion={st.Cversion} aversion={st.Aversion} dataLength={st.DataLength} numChildren={st.NumChildren} " +
        $"owner={(st.EphemeralOwner == 0 ? "none" : st.EphemeralOwner == session ? "self" : "other")} mzxid>=czxid={st.Mzxid >= st.Czxid} pzxid>=czxid={st.Pzxid >= st.Czxid}";

    static async Task<KeeperException> Expect(Code code, Func<Task> op, string what)
    {
        try
        {
            await op();
        }
        catch (KeeperException e) when (e.Code == code)
        {
            return e;
        }
        catch (KeeperException e)
        {
            throw new FailException($"{what}: expected {code}, got {e.Code}");
        }
        throw new FailException($"{what}: expected {code}, the call succeeded");
    }

    sealed class Events
    {
        readonly List<WatchedEvent> _seen = [];
        public Watcher Watcher => e => { lock (_seen) _seen.Add(e); };
        public List<WatchedEvent> Snapshot() { lock (_seen) return [.. _seen]; }

        public async Task<List<WatchedEvent>> Await(int n, string what)
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(8);
            while (Snapshot().Count < n && DateTime.UtcNow < deadline) await Task.Delay(50);
            Check(Snapshot().Count >= n, what);
            await Task.Delay(300); // an extra event where only n are due would show here
            return Snapshot();
        }
    }

    static string Ev(IEnumerable<WatchedEvent> events) => string.Join(",", events.Select(e => $"{e.Type}:{e.Path}"));

    static async Task Crud()
    {
        await using var zk = await Connect();
        var p = await Fresh(zk, "crud");
        Check(await zk.CreateAsync($"{p}/a", B("one"), Acls.OpenAclUnsafe) == $"{p}/a", "create returned another path");
        var (data, st) = await zk.GetDataAsync($"{p}/a");
        Check(Encoding.UTF8.GetString(data) == "one", "get returned other data");
        Note("get " + StatText(st));
        var st2 = await zk.SetDataAsync($"{p}/a", B("two"), 0);
        Check(st2.Version == 1, $"version after set {st2.Version}");
        await zk.CreateAsync($"{p}/b", null, Acls.OpenAclUnsafe);
        var kids = (await zk.GetChildrenAsync(p)).Order().ToList();
        Check(string.Join(",", kids) == "a,b", $"children {string.Join(",", kids)}");
        Check(await zk.ExistsAsync($"{p}/nope") is null, "exists on a missing node");
        await zk.DeleteAsync($"{p}/a", 1);
        var pst = await zk.ExistsAsync(p) ?? throw new FailException("parent vanished");
        Note("parent " + StatText(pst));
        Check(pst.Cversion == 3 && pst.NumChildren == 1, $"parent {StatText(pst)}");
    }

    static async Task Errors()
    {
        await using var zk = await Connect();
        var p = await Fresh(zk, "errors");
        await zk.CreateAsync($"{p}/x", B("v"), Acls.OpenAclUnsafe);
        await zk.CreateAsync($"{p}/x/kid", null, Acls.OpenAclUnsafe);
        await Expect(Code.NoNode, () => zk.GetDataAsync($"{p}/missing"), "get missing");
        await Expect(Code.NodeExists, () => zk.CreateAsync($"{p}/x", null, Acls.OpenAclUnsafe), "create existing");
        await Expect(Code.BadVersion, () => zk.SetDataAsync($"{p}/x", B("w"), 7), "set with a wrong version");
        await Expect(Code.NotEmpty, () => zk.DeleteAsync($"{p}/x"), "delete with children");
        await Expect(Code.NoNode, () => zk.CreateAsync($"{p}/nope/kid", null, Acls.OpenAclUnsafe), "create under a missing parent");
        await zk.CreateAsync($"{p}/eph", null, Acls.OpenAclUnsafe, CreateMode.Ephemeral);
        await Expect(Code.NoChildrenForEphemerals, () => zk.CreateAsync($"{p}/eph/kid", null, Acls.OpenAclUnsafe), "create under an ephemeral");
        Note("ok");
    }

    static async Task CreateSequential()
    {
        await using var zk = await Connect();
        var p = await Fresh(zk, "create-sequential");
        var names = new List<string>
        {
            await zk.CreateAsync($"{p}/n-", null, Acls.OpenAclUnsafe, CreateMode.PersistentSequential),
            await zk.CreateAsync($"{p}/n-", null, Acls.OpenAclUnsafe, CreateMode.PersistentSequential),
        };
        await zk.CreateAsync($"{p}/plain", null, Acls.OpenAclUnsafe);
        names.Add(await zk.CreateAsync($"{p}/n-", null, Acls.OpenAclUnsafe, CreateMode.PersistentSequential));
        Note("names " + string.Join(",", names.Select(n => n[p.Length..])));
        Check(names.SequenceEqual([$"{p}/n-0000000000", $"{p}/n-0000000001", $"{p}/n-0000000003"]), $"names {string.Join(",", names)}");
    }

    static async Task CreateEphemeral()
    {
        await using var zk = await Connect();
        var p = await Fresh(zk, "create-ephemeral");
        await zk.CreateAsync($"{p}/e", B("x"), Acls.OpenAclUnsafe, CreateMode.Ephemeral);
        var st = await zk.ExistsAsync($"{p}/e") ?? throw new FailException("ephemeral missing");
        Note("stat " + StatText(st, zk.SessionId));
        Check(st.EphemeralOwner == zk.SessionId, "ephemeralOwner is not this session");
    }

    static async Task CreateContainer()
    {
        await using var zk = await Connect();
        var p = await Fresh(zk, "create-container");
        await zk.CreateAsync($"{p}/c", null, Acls.OpenAclUnsafe, CreateMode.Container);
        await zk.CreateAsync($"{p}/c/kid", null, Acls.OpenAclUnsafe);
        var st = await zk.ExistsAsync($"{p}/c") ?? throw new FailException("container missing");
        Note("container " + StatText(st));
        Check(st.NumChildren == 1, $"container {StatText(st)}");
    }

    static async Task CreateTtl()
    {
        await using var zk = await Connect();
        var p = await Fresh(zk, "create-ttl");
        await zk.CreateAsync($"{p}/t", B("v"), Acls.OpenAclUnsafe, CreateMode.PersistentWithTtl, 60000);
        var name = await zk.CreateAsync($"{p}/ts-", B("v"), Acls.OpenAclUnsafe, CreateMode.PersistentSequentialWithTtl, 60000);
        Note("ttl names " + name[p.Length..]);
        Check(name == $"{p}/ts-0000000001", $"sequential TTL name {name}");
    }

    static async Task CreateWithStat()
    {
        await using var zk = await Connect();
        var p = await Fresh(zk, "create-with-stat");
        var (path, st) = await zk.CreateWithStatAsync($"{p}/c2", B("abc"), Acls.OpenAclUnsafe);
        Note("create2 " + StatText(st));
        Check(path == $"{p}/c2" && st.DataLength == 3 && st.Version == 0 && st.Czxid == st.Mzxid, $"create2 {StatText(st)}");
    }

    static async Task StatVersions()
    {
        await using var zk = await Connect();
        var p = await Fresh(zk, "stat-versions");
        var st0 = await zk.ExistsAsync(p) ?? throw new FailException("missing");
        for (var i = 0; i < 3; i++) await zk.CreateAsync($"{p}/k{i}", null, Acls.OpenAclUnsafe);
        await zk.SetDataAsync(p, B("12345"));
        await zk.DeleteAsync($"{p}/k1");
        await zk.SetAclAsync(p, Acls.OpenAclUnsafe);
        var st = await zk.ExistsAsync(p) ?? throw new FailException("missing");
        Note("stat " + StatText(st));
        Check(st.Cversion == 4 && st.Version == 1 && st.Aversion == 1 && st.NumChildren == 2 && st.DataLength == 5, StatText(st));
        Check(st.Ctime == st0.Ctime && st.Pzxid > st0.Pzxid, "ctime changed or pzxid did not advance");
    }

    static async Task WatchData()
    {
        await using var zk = await Connect();
        var p = await Fresh(zk, "watch-data");
        await zk.CreateAsync($"{p}/w", B("1"), Acls.OpenAclUnsafe);
        var ev = new Events();
        await zk.GetDataAsync($"{p}/w", ev.Watcher);
        await zk.SetDataAsync($"{p}/w", B("2"));
        await zk.SetDataAsync($"{p}/w", B("3"));
        var seen = await ev.Await(1, "no NodeDataChanged");
        Note("events " + Ev(seen));
        Check(Ev(seen) == $"NodeDataChanged:{p}/w", $"events {Ev(seen)}");
    }

    static async Task WatchExists()
    {
        await using var zk = await Connect();
        var p = await Fresh(zk, "watch-exists");
        var created = new Events();
        Check(await zk.ExistsAsync($"{p}/later", created.Watcher) is null, "exists already");
        await zk.CreateAsync($"{p}/later", null, Acls.OpenAclUnsafe);
        var c = await created.Await(1, "no NodeCreated");
        var deleted = new Events();
        await zk.ExistsAsync($"{p}/later", deleted.Watcher);
        await zk.DeleteAsync($"{p}/later");
        var d = await deleted.Await(1, "no NodeDeleted");
        Note("events " + Ev(c) + " " + Ev(d));
        Check(Ev(c) == $"NodeCreated:{p}/later" && Ev(d) == $"NodeDeleted:{p}/later", $"events {Ev(c)} {Ev(d)}");
    }

    static async Task WatchChildren()
    {
        await using var zk = await Connect();
        var p = await Fresh(zk, "watch-children");
        var ev = new Events();
        await zk.GetChildrenAsync(p, ev.Watcher);
        await zk.SetDataAsync(p, B("x"));
        await zk.CreateAsync($"{p}/k1", null, Acls.OpenAclUnsafe);
        await zk.CreateAsync($"{p}/k2", null, Acls.OpenAclUnsafe);
        var seen = await ev.Await(1, "no NodeChildrenChanged");
        Note("events " + Ev(seen));
        Check(Ev(seen) == $"NodeChildrenChanged:{p}", $"events {Ev(seen)}");
    }

    static async Task WatchPersistentRecursive()
    {
        await using var zk = await Connect();
        var p = await Fresh(zk, "watch-persistent-recursive");
        var ev = new Events();
        await zk.AddWatchAsync(p, AddWatchMode.PersistentRecursive, ev.Watcher);
        await zk.CreateAsync($"{p}/a", null, Acls.OpenAclUnsafe);
        await zk.CreateAsync($"{p}/a/b", null, Acls.OpenAclUnsafe);
        await zk.SetDataAsync($"{p}/a/b", B("x"));
        await zk.DeleteAsync($"{p}/a/b");
        await zk.SetDataAsync(p, B("y"));
        var seen = await ev.Await(5, "fewer than 5 recursive events");
        Note("events " + Ev(seen));
        Check(Ev(seen) == $"NodeCreated:{p}/a,NodeCreated:{p}/a/b,NodeDataChanged:{p}/a/b,NodeDeleted:{p}/a/b,NodeDataChanged:{p}", $"events {Ev(seen)}");
    }

    static async Task EphemeralSessionClose()
    {
        await using var b = await Connect();
        var p = await Fresh(b, "ephemeral-session-close");
        var a = await Connect();
        await a.CreateAsync($"{p}/e", null, Acls.OpenAclUnsafe, CreateMode.Ephemeral);
        var ev = new Events();
        Check(await b.ExistsAsync($"{p}/e", ev.Watcher) is not null, "ephemeral not visible to another session");
        await a.DisposeAsync();
        var seen = await ev.Await(1, "no NodeDeleted when the owner closed its session");
        Note("events " + Ev(seen));
        Check(await b.ExistsAsync($"{p}/e") is null, "ephemeral still there");
    }

    static async Task Multi()
    {
        await using var zk = await Connect();
        var p = await Fresh(zk, "multi");
        await zk.CreateAsync($"{p}/old", B("v"), Acls.OpenAclUnsafe);
        var results = await zk.MultiAsync([
            Op.Create($"{p}/m1", B("a"), Acls.OpenAclUnsafe), Op.Create($"{p}/m2", B("b"), Acls.OpenAclUnsafe),
            Op.SetData($"{p}/old", B("w"), 0), Op.Check($"{p}/old", 1), Op.Delete($"{p}/old", 1)]);
        Note("results " + string.Join(",", results.Select(r => r.GetType().Name)));
        Check(results is [OpResult.Create { Path: var a }, OpResult.Create { Path: var b }, OpResult.SetData, OpResult.Check, OpResult.Delete]
            && a == $"{p}/m1" && b == $"{p}/m2", $"results {string.Join(",", results)}");
        Check(string.Join(",", (await zk.GetChildrenAsync(p)).Order()) == "m1,m2", "children after multi");
    }

    static async Task MultiAbort()
    {
        await using var zk = await Connect();
        var p = await Fresh(zk, "multi-abort");
        await zk.CreateAsync($"{p}/x", B("v"), Acls.OpenAclUnsafe);
        var e = await Expect(Code.BadVersion, () => zk.MultiAsync([
            Op.Create($"{p}/new", null, Acls.OpenAclUnsafe), Op.SetData($"{p}/x", B("changed")),
            Op.Check($"{p}/x", 42), Op.Delete($"{p}/x")]), "multi with a failing check");
        var codes = (e.Results ?? []).Select(r => r is OpResult.Error err ? err.Code.ToString() : r.GetType().Name).ToList();
        Note("results " + string.Join(",", codes));
        // Upstream: ops before the failing one report OK (rolled back), ops after it RuntimeInconsistency.
        Check(string.Join(",", codes) == "Ok,Ok,BadVersion,RuntimeInconsistency", $"per-op results {string.Join(",", codes)}");
        Check(await zk.ExistsAsync($"{p}/new") is null, "create in an aborted multi took effect");
        Check(Encoding.UTF8.GetString((await zk.GetDataAsync($"{p}/x")).Data) == "v", "set in an aborted multi took effect");
    }

    static async Task AclDigest()
    {
        await using var owner = await Connect();
        await using var other = await Connect();
        var p = await Fresh(owner, "acl-digest");
        await owner.AddAuthInfoAsync("digest", "alice:secret");
        await owner.CreateAsync($"{p}/private", B("s3cret"), [Acls.Digest("alice", "secret", Perms.All)]);
        await Expect(Code.NoAuth, () => other.GetDataAsync($"{p}/private"), "unauthenticated read");
        await other.AddAuthInfoAsync("digest", "alice:secret");
        Check(Encoding.UTF8.GetString((await other.GetDataAsync($"{p}/private")).Data) == "s3cret", "read after addauth");
        var (acl, st) = await owner.GetAclAsync($"{p}/private");
        Note("acl " + string.Join(",", acl.Select(a => $"{a.Perms}:{a.Id.Scheme}:{a.Id.IdValue}")) + " aversion " + st.Aversion);
        Check(acl.Count == 1 && acl[0].Id.Scheme == "digest" && acl[0].Id.IdValue.StartsWith("alice:", StringComparison.Ordinal), "acl");
    }

    static async Task SyncScenario()
    {
        await using var zk = await Connect();
        var p = await Fresh(zk, "sync");
        var r = await zk.SyncAsync(p);
        Note("sync " + r);
        Check(r == p, $"sync returned {r}");
    }

    static async Task GetEphemerals()
    {
        await using var zk = await Connect();
        var p = await Fresh(zk, "get-ephemerals");
        await zk.CreateAsync($"{p}/e1", null, Acls.OpenAclUnsafe, CreateMode.Ephemeral);
        await zk.CreateAsync($"{p}/p", null, Acls.OpenAclUnsafe);
        await zk.CreateAsync($"{p}/p/e2", null, Acls.OpenAclUnsafe, CreateMode.Ephemeral);
        // Upstream answers from a hash set: compare as a set.
        var all = (await zk.GetEphemeralsAsync(p)).Order().ToList();
        Note("ephemerals " + string.Join(",", all));
        Check(all.SequenceEqual([$"{p}/e1", $"{p}/p/e2"]), $"ephemerals {string.Join(",", all)}");
    }

    static async Task AllChildrenNumber()
    {
        await using var zk = await Connect();
        var p = await Fresh(zk, "all-children-number");
        foreach (var n in new[] { "a", "a/b", "a/b/c", "d" }) await zk.CreateAsync($"{p}/{n}", null, Acls.OpenAclUnsafe);
        var count = await zk.GetAllChildrenNumberAsync(p);
        Note("count " + count);
        Check(count == 4, $"getAllChildrenNumber {count}");
    }

    static async Task WhoAmI()
    {
        await using var zk = await Connect();
        await zk.AddAuthInfoAsync("digest", "bob:pw");
        var ids = (await zk.WhoAmIAsync()).Select(i => $"{i.Scheme}:{i.User}").Order().ToList();
        Note("whoami " + string.Join(",", ids));
        Check(ids.SequenceEqual(["digest:bob", "ip:127.0.0.1"]), $"whoami {string.Join(",", ids)}");
    }
}
