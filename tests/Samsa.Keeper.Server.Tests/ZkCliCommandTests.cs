using System.Text.RegularExpressions;
using Xunit;

namespace Samsa.Keeper.Server.Tests;

/// <summary>
/// `samsa zkcli` (issue #20) beside zkCli.sh 3.8 (Debian's ZooKeeperMain): the same commands, one
/// process each as a CI script runs them, against the Keeper and against Apache ZooKeeper, give the
/// same stdout, stderr and exit code once zxids and times (which differ run to run) are masked.
/// </summary>
public sealed class ZkCliCommandTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "zkcli-keeper-" + Guid.NewGuid().ToString("N"));
    private KeeperHost _keeper = null!;

    public async Task InitializeAsync()
    {
        _keeper = await KeeperHost.StartAsync(new KeeperConfig
        {
            DataDir = _dir, ClientPort = 0, ClientPortAddress = "127.0.0.1", TickTime = 500, AdminEnableServer = false,
        });
    }

    public async Task DisposeAsync()
    {
        await _keeper.DisposeAsync();
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    /// <summary>Every command prints deterministically in zkCli.sh (no ephemerals, whose lifetime after
    /// a one-shot zkCli.sh exit is a race). The servers run without reconfigEnabled, so reconfig
    /// shows its argument checks and the server's refusal.</summary>
    private static readonly string[][] Script =
    [
        ["create", "/zc"], ["create", "/zc/a", "hello"], ["create", "/zc/b", "b"], ["create", "/zc/a/x", "1"],
        ["create", "-s", "/zc/seq-", "s"], ["create", "-c", "/zc/cont", "c"],
        ["create", "/zc/acl", "d", "world:anyone:rw,digest:u:abc:cdrwa"],
        ["create", "/zc"], ["create", "/nope/x"], ["create", "zc"],
        ["ls", "/zc"], ["ls", "-R", "/zc"], ["ls", "-s", "/zc"],
        ["get", "/zc/a"], ["get", "-s", "/zc/a"], ["get", "/missing"], ["stat", "/zc/a"], ["stat", "/missing"],
        ["set", "/zc/a", "world"], ["set", "-s", "/zc/a", "again"], ["set", "-v", "99", "/zc/a", "bad"],
        ["getAcl", "/zc/acl"], ["getAcl", "-s", "/zc/a"], ["setAcl", "/zc/b", "world:anyone:r"], ["getAcl", "/zc/b"],
        ["setAcl", "-s", "/zc/b", "world:anyone:cdrwa"],
        ["getAllChildrenNumber", "/zc"], ["getEphemerals", "/zc"], ["sync", "/zc"], ["whoami"],
        ["setquota", "-n", "5", "/zc/a"], ["listquota", "/zc/a"], ["setquota", "-b", "10", "/zc/a"], ["listquota", "/zc/a"],
        ["delquota", "-n", "/zc/a"], ["listquota", "/zc/a"], ["delquota", "/zc/a"], ["listquota", "/zc/a"],
        ["delete", "/zc"], ["delete", "/zc/b"], ["delete", "-v", "5", "/zc/a/x"], ["deleteall", "/zc"], ["ls", "/zc"],
        ["get"], ["frob", "/x"], ["ls", "-z", "/"],
        ["create", "/nul"], ["get", "/nul"], ["get", "-s", "/nul"], ["create", "/nul/e", ""], ["get", "/nul/e"], ["deleteall", "/nul"],
        ["history"], ["redo", "0"], ["redo"],
        ["addWatch", "/"], ["addWatch", "-m", "persistent", "/"], ["addWatch", "-m", "bogus", "/"], ["addWatch"], ["addWatch", "/a", "/b"],
        ["removewatches", "/"], ["removewatches", "/", "-l"], ["removewatches", "/", "-c"], ["removewatches"], ["removewatches", "/", "-x"],
        ["reconfig", "-remove", "3"], ["reconfig", "-s", "-add", "server.4=127.0.0.1:2004:3004;2104"], ["reconfig"],
        ["reconfig", "-v", "zz", "-remove", "3"], ["reconfig", "-members", "server.1=127.0.0.1:2001:3001;2101", "-v", "1a"],
        ["reconfig", "-file", "/nonexistent.cfg"], ["reconfig", "-file", "/x", "-add", "1"], ["reconfig", "-file", "/x", "-members", "1"],
        ["reconfig", "-remove"], ["reconfig", "-q"],
    ];

    private static readonly Regex Zxid = new("0x[0-9a-f]+", RegexOptions.Compiled);
    private static readonly Regex Time = new(@"^(ctime|mtime) = \w{3} \w{3} \d\d \d\d:\d\d:\d\d \w+ \d{4}$", RegexOptions.Compiled | RegexOptions.Multiline);

    /// <summary>zxids and times masked; the connection event (which zkCli.sh prints from another
    /// thread, so before or after a fast failure) removed; addresses masked.</summary>
    private static string Normalize(string text, string address)
    {
        text = text.Replace(address, "ADDR").Replace("\nWATCHER::\n\nWatchedEvent state:SyncConnected type:None path:null\n", "");
        text = Time.Replace(text, "$1 = T");
        text = Zxid.Replace(text, "0xZ");
        return string.Join('\n', text.Split('\n').Where(l => !l.StartsWith("SLF4J:", StringComparison.Ordinal)));
    }

    private static List<string> RunAll(string address, bool upstream)
    {
        var results = new List<string>();
        foreach (var cmd in Script)
        {
            var (code, o, e) = upstream
                ? ExternalTools.Run("java", new[] { "-cp", ExternalTools.ZooKeeperJar, "org.apache.zookeeper.ZooKeeperMain", "-server", address }.Concat(cmd), TimeSpan.FromSeconds(60))
                : ExternalTools.Run(Samsa.Testing.TestEnvironment.SamsaExecutable(), new[] { "zkcli", "-server", address }.Concat(cmd), TimeSpan.FromSeconds(60));
            results.Add($"### {string.Join(' ', cmd)}\nexit {code}\nstdout:\n{Normalize(o, address)}\nstderr:\n{Normalize(e, address)}");
        }
        return results;
    }

    private static void RequireJava() =>
        ExternalTools.Require("zookeeper", () => File.Exists(ExternalTools.ZooKeeperJar) && ExternalTools.Which("java") is not null);

    /// <summary>A freshly started Apache server may accept connections before it serves sessions
    /// (the first zkCli.sh then fails with ConnectionLoss): wait until a request succeeds.</summary>
    private static async Task WaitServingAsync(string address)
    {
        for (int i = 0; i < 60; i++)
        {
            var (code, o, _) = ExternalTools.Run(Samsa.Testing.TestEnvironment.SamsaExecutable(), ["zkcli", "-server", address, "ls", "/"], TimeSpan.FromSeconds(60));
            if (code == 0 && o.Contains("[zookeeper]", StringComparison.Ordinal)) return;
            await Task.Delay(500);
        }
        Assert.Fail($"{address} does not serve requests");
    }

    private static void AssertSame(List<string> expected, List<string> actual)
    {
        for (int i = 0; i < Script.Length; i++) Assert.Equal(expected[i], actual[i]);
    }

    [Fact]
    public async Task SameOutputAsZkCliOnTheKeeper()
    {
        RequireJava();
        string address = $"127.0.0.1:{_keeper.LocalEndPoint.Port}";
        var upstream = RunAll(address, upstream: true);
        var samsa = RunAll(address, upstream: false);
        AssertSame(upstream, samsa);
        string all = string.Join("\n", samsa);
        // What the masked text still shows, spelled out: a stat, a listing, an ACL and an error.
        Assert.Contains("### get -s /zc/a\nexit 0\nstdout:\nConnecting to ADDR\nhello\ncZxid = 0xZ\nctime = T\n", all);
        // (an empty container node may already be gone: the server removes those after a while)
        Assert.Matches(@"### ls -R /zc\nexit 0\nstdout:\nConnecting to ADDR\n/zc\n/zc/a\n/zc/acl\n/zc/b\n(/zc/cont\n)?/zc/seq-\d{10}\n/zc/a/x\n", all);
        Assert.Contains("### getAcl /zc/acl\nexit 0\nstdout:\nConnecting to ADDR\n'world,'anyone\n: rw\n'digest,'u:", all);
        Assert.Contains("### get /missing\nexit 1\nstdout:\nConnecting to ADDR\n\nstderr:\nNode does not exist: /missing\n", all);
        await Task.CompletedTask;
    }

    /// <summary>An Apache ZooKeeper 3.8 server that serves requests (ports from <paramref name="portBase"/>).</summary>
    private static async Task<Samsa.Testing.ApacheZooKeeper> StartApacheAsync(int portBase)
    {
        RequireJava();
        var started = await Samsa.Testing.ApacheZooKeeper.StartAsync(portBase);
        Assert.True(started.Server is not null, started.SkipReason);
        await WaitServingAsync(started.Server!.Address);
        return started.Server;
    }

    [Fact]
    public async Task SameOutputAsZkCliOnApacheZooKeeper()
    {
        await using var zk = await StartApacheAsync(42420);
        var upstream = RunAll(zk.Address, upstream: true);
        var samsa = RunAll(zk.Address, upstream: false);
        AssertSame(upstream, samsa);
    }

    /// <summary>The shell's own commands over one session from standard input: history numbering,
    /// redo (of a command and of history), persistent watches added and removed with the events the
    /// default watcher prints, a data watch removed, connect closing the session for a new one, and
    /// close. Events arrive in the order the script makes them; the Closed event, which zkCli.sh
    /// prints from its event thread at no fixed place, is compared by count (AssertSameShell).</summary>
    private const string ShellScript =
        "create /sh a\nget /sh\nhistory\nredo 1\nredo 2\nredo 99\nredo\n   \n" +
        "addWatch /sh\nset /sh b\ncreate /sh/c x\naddWatch -m PERSISTENT /sh\naddWatch -m bogus /sh\n" +
        "removewatches /sh\nremovewatches /sh\nremovewatches /nope -l\nget -w /sh\nstat -w /sh\nremovewatches /sh -d\n" +
        "connect ADDR\nget /sh\ncreate /sh/n\nget /sh/n\nhistory\ndeleteall /sh\nredo 3\nprintwatches\nclose\nls /\nclose\n";

    private static (int Code, string Out, string Err) RunShell(string address, bool upstream)
    {
        string stdin = ShellScript.Replace("ADDR", address);
        var (code, o, e) = upstream
            ? ExternalTools.Run("java", ["-cp", ExternalTools.ZooKeeperJar, "org.apache.zookeeper.ZooKeeperMain", "-server", address], TimeSpan.FromSeconds(60), stdin)
            : ExternalTools.Run(Samsa.Testing.TestEnvironment.SamsaExecutable(), ["zkcli", "-server", address], TimeSpan.FromSeconds(60), stdin);
        // zkCli.sh's interactive banner (stdin is not a terminal) is not printed by zkcli
        o = o.Replace("Welcome to ZooKeeper!\nJLine support is disabled\n", "");
        e = string.Join('\n', e.Split('\n').Where(l => !l.StartsWith("SLF4J:", StringComparison.Ordinal)));
        return (code, Zxid.Replace(Time.Replace(o, "$1 = T"), "0xZ"), e);
    }

    private const string ClosedEvent = "WatchedEvent state:Closed type:None path:null";
    private static readonly Regex EventLine = new(@"\n(WATCHER::|WatchedEvent [^\n]*)\n", RegexOptions.Compiled);

    /// <summary>zkCli.sh prints each watch event from its event thread as two lines ("WATCHER::", then
    /// the event), each after an empty line, while its main thread goes on with the next command: under
    /// load an event lands after a later command's output (the new session's SyncConnected after
    /// `connect` behind the next `get`'s answer, a data event behind a later line). The output is
    /// therefore compared as two ordered streams, as the compat transcripts do: the command output
    /// with those lines taken out, and the events in the order they were printed.</summary>
    private static (string Commands, List<string> Events) SplitEvents(string text)
    {
        var events = new List<string>();
        string commands = EventLine.Replace(text, m =>
        {
            if (m.Groups[1].Value != "WATCHER::") events.Add(m.Groups[1].Value);
            return "";
        });
        return (commands, events);
    }

    private static void AssertSameShell(string address)
    {
        var upstream = RunShell(address, upstream: true);
        var samsa = RunShell(address, upstream: false);
        var (upstreamCommands, upstreamEvents) = SplitEvents(upstream.Out);
        var (samsaCommands, samsaEvents) = SplitEvents(samsa.Out);
        // connect, then close; the second close is "Not connected"
        Assert.Equal(2, samsaEvents.Count(e => e == ClosedEvent));
        // zkCli.sh prints each Closed event from its event thread, which races its own exit: the last
        // one is missing in some runs (seen once in a clean-clone CI run), so upstream shows 1 or 2
        Assert.InRange(upstreamEvents.Count(e => e == ClosedEvent), 1, 2);
        // Every other event, as a multiset: one session's events come from one event thread in order,
        // but `connect` starts a second session whose thread may print before the first one's last
        // event. (The order samsa zkcli prints is spelled out in ShellCommandsAsZkCliOnTheKeeper.)
        Assert.Equal(upstreamEvents.Where(e => e != ClosedEvent).Order(StringComparer.Ordinal),
            samsaEvents.Where(e => e != ClosedEvent).Order(StringComparer.Ordinal));
        string u = $"exit {upstream.Code}\nstdout:\n{upstreamCommands}\nstderr:\n{upstream.Err}";
        string s = $"exit {samsa.Code}\nstdout:\n{samsaCommands}\nstderr:\n{samsa.Err}";
        Assert.Equal(u, s);
    }

    [Fact]
    public async Task ShellCommandsAsZkCliOnTheKeeper()
    {
        RequireJava();
        string address = $"127.0.0.1:{_keeper.LocalEndPoint.Port}";
        AssertSameShell(address);
        var (_, o, e) = RunShell(address, upstream: false);
        // spelled out: the history after two redos, the persistent watch's events and its removal, null data
        Assert.Contains("a\n0 - create /sh a\n1 - get /sh\n2 - history\na\n0 - create /sh a\n1 - get /sh\n2 - history\n3 - get /sh\n4 - history\n", o);
        Assert.Contains("\nWATCHER::\n\nWatchedEvent state:SyncConnected type:NodeDataChanged path:/sh\n\nWATCHER::\n\nWatchedEvent state:SyncConnected type:NodeCreated path:/sh/c\n"
            + "\nWATCHER::\n\nWatchedEvent state:SyncConnected type:PersistentWatchRemoved path:/sh\nb\n", o);
        Assert.Contains("\nWATCHER::\n\nWatchedEvent state:SyncConnected type:DataWatchRemoved path:/sh\n", o);
        Assert.Contains("\nb\nnull\n", o);
        Assert.Contains("Command index out of range\n", e);
        Assert.Contains("KeeperErrorCode = No such watcher for /sh\nKeeperErrorCode = No such watcher for /nope\n", e);
        await Task.CompletedTask;
    }

    [Fact]
    public async Task ShellCommandsAsZkCliOnApacheZooKeeper()
    {
        await using var zk = await StartApacheAsync(42410);
        AssertSameShell(zk.Address);
    }

    [Fact]
    public async Task ScriptOnStandardInputAndTheConnectionBanner()
    {
        string address = $"127.0.0.1:{_keeper.LocalEndPoint.Port}";
        var (code, o, e) = ExternalTools.Run(Samsa.Testing.TestEnvironment.SamsaExecutable(), ["zkcli", "-server", address], TimeSpan.FromSeconds(60),
            stdin: "create /script one\nset /script \"two words\"\n\nget /script\ndelete /script\nget /script\n");
        Assert.Equal(1, code);   // the last command's result, as zkCli.sh's exit code
        Assert.Equal($"Connecting to {address}\n\nWATCHER::\n\nWatchedEvent state:SyncConnected type:None path:null\ntwo words\n", o);
        Assert.Equal("Created /script\nNode does not exist: /script\n", e);

        // A one-shot command that fails before reaching the server prints no connection event.
        var usage = ExternalTools.Run(Samsa.Testing.TestEnvironment.SamsaExecutable(), ["zkcli", "-server", address, "get"], TimeSpan.FromSeconds(60));
        Assert.Equal((1, $"Connecting to {address}\n", "get [-s] [-w] path\n"), usage);
        await Task.CompletedTask;
    }
}
