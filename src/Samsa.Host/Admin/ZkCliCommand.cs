using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Samsa.Keeper.Client;
using Samsa.Keeper.Protocol;
using Samsa.Keeper.Protocol.Records;

namespace Samsa.Host.Admin;

/// <summary>
/// <c>samsa zkcli</c>: zkCli.sh (ZooKeeperMain 3.8) without a JVM, over Samsa's Keeper client. One
/// command from the arguments, or one per line from standard input when none is given. Command
/// output goes to stdout and errors to stderr with the same text as zkCli.sh's commands print
/// ("Node does not exist: /x", "Created /x" on stderr ...). The "Connecting to ..." line and the
/// connection's WATCHER:: lines come first, as zkCli.sh prints them; in script mode (stdin) there
/// is no welcome text and no prompt.
/// </summary>
internal sealed partial class ZkCliCommand
{
    private const string QuotaRoot = "/zookeeper/quota";
    private const string LimitNode = "zookeeper_limits";
    private const string StatNode = "zookeeper_stats";

    public const string Usage =
        "usage: samsa zkcli [-server host:port[,host:port...][/chroot]] [-timeout ms] [-client-configuration FILE] [command args...]\n" +
        "  commands (zkCli.sh 3.8): ls [-s] [-w] [-R] path | get [-s] [-w] path | stat [-w] path\n" +
        "    create [-s] [-e] [-c] [-t ttl] path [data] [acl] | set [-s] [-v version] path data | delete [-v version] path\n" +
        "    deleteall path | getAcl [-s] path | setAcl [-s] [-v version] [-R] path acl | addauth scheme auth | sync path\n" +
        "    config [-c] [-w] [-s] | whoami | getEphemerals [path] | getAllChildrenNumber path\n" +
        "    listquota path | setquota -n|-b|-N|-B val path | delquota [-n|-b|-N|-B] path | printwatches on|off\n" +
        "  with no command, one command per line is read from standard input\n";

    /// <summary>Each command: its usage text after the name, the options it takes, which of them take a value.</summary>
    private static readonly Dictionary<string, (string Usage, string Flags, string WithValue)> Commands = new()
    {
        ["ls"] = ("[-s] [-w] [-R] path", "swR", ""),
        ["get"] = ("[-s] [-w] path", "sw", ""),
        ["stat"] = ("[-w] path", "w", ""),
        ["create"] = ("[-s] [-e] [-c] [-t ttl] path [data] [acl]", "sec", "t"),
        ["set"] = ("[-s] [-v version] path data", "s", "v"),
        ["delete"] = ("[-v version] path", "", "v"),
        ["deleteall"] = ("path [-b batch size]", "", "b"),
        ["getAcl"] = ("[-s] path", "s", ""),
        ["setAcl"] = ("[-s] [-v version] [-R] path acl", "sR", "v"),
        ["addauth"] = ("scheme auth", "", ""),
        ["sync"] = ("path", "", ""),
        ["config"] = ("[-c] [-w] [-s]", "cws", ""),
        ["whoami"] = ("", "", ""),
        ["getEphemerals"] = ("path", "", ""),
        ["getAllChildrenNumber"] = ("path", "", ""),
        ["listquota"] = ("path", "", ""),
        ["setquota"] = ("-n|-b|-N|-B val path", "", "nbNB"),
        ["delquota"] = ("[-n|-b|-N|-B] path", "nbNB", ""),
        ["printwatches"] = ("on|off", "", ""),
        ["version"] = ("", "", ""),
        ["close"] = ("", "", ""),
        ["quit"] = ("", "", ""),
    };

    private sealed class CliException(string message) : Exception(message);

    private readonly TextWriter _out, _err;
    private Task<KeeperClient> _connect = null!;
    private string _server = "";
    private TimeSpan _connectTimeout;
    private bool _bannerPrinted;

    /// <summary>The connected client; the first call waits for the session and prints zkCli.sh's connection event.</summary>
    private async Task<KeeperClient> Zk()
    {
        KeeperClient zk;
        try { zk = await _connect.WaitAsync(_connectTimeout); }
        catch (Exception e) when (e is TimeoutException or KeeperException or IOException or System.Net.Sockets.SocketException or ArgumentException)
        {
            throw new CliException($"KeeperErrorCode = ConnectionLoss ({_server}: {(e is TimeoutException ? "no session within the timeout" : e.Message)})");
        }
        if (!_bannerPrinted)
        {
            _bannerPrinted = true;
            lock (_out) _out.WriteLine("\nWATCHER::\n\nWatchedEvent state:SyncConnected type:None path:null");
        }
        return zk;
    }

    /// <summary>Leaves without closeSession, as zkCli.sh's exit does: the server expires the session after its timeout.</summary>
    private async Task AbandonAsync()
    {
        _out.Flush();
        _err.Flush();
        await Task.CompletedTask;
        // The process ends next; its socket closes with it. A client left running in-process would
        // keep the session alive, so callers in the same process (tests) should not rely on this.
    }
    private bool _printWatches = true;

    private ZkCliCommand(TextWriter output, TextWriter error) { _out = output; _err = error; }

    public static async Task<int> RunAsync(string[] argv, TextWriter output, TextWriter error, TextReader input)
    {
        string server = "localhost:2181";
        int timeoutMs = 30000;
        string? clientConfig = null;
        int i = 0;
        for (; i < argv.Length; i++)
        {
            switch (argv[i])
            {
                case "-server": server = Program.Value(argv, ref i); continue;
                case "-timeout":
                    if (!int.TryParse(Program.Value(argv, ref i), NumberStyles.None, CultureInfo.InvariantCulture, out timeoutMs))
                        throw new UsageException("zkcli: -timeout expects milliseconds");
                    continue;
                case "-client-configuration": clientConfig = Program.Value(argv, ref i); continue;
                case "-r" or "-waitforconnection": continue;
                case "-h" or "--help" or "help": output.Write(Usage); return 0;
            }
            break;
        }
        var options = new KeeperClientOptions { SessionTimeout = TimeSpan.FromMilliseconds(timeoutMs), ConnectTimeout = TimeSpan.FromMilliseconds(timeoutMs) };
        if (clientConfig is not null)
        {
            var props = AdminArgs.LoadProperties(clientConfig);
            if (string.Equals(props.GetValueOrDefault("zookeeper.client.secure"), "true", StringComparison.OrdinalIgnoreCase))
                options.Tls = KeeperClientTls.FromProperties(k => props.GetValueOrDefault(k));
            var jaas = props.GetValueOrDefault("java.security.auth.login.config") ?? Environment.GetEnvironmentVariable("ZK_CLIENT_JAAS");
            if (jaas is not null) options.Sasl = KeeperClientSasl.FromJaasFile(jaas, props.GetValueOrDefault("zookeeper.sasl.clientconfig") ?? "Client");
        }
        // zkCli.sh's first line, and (after the session is up) the connection event its default watcher prints.
        output.WriteLine("Connecting to " + server);
        var cli = new ZkCliCommand(output, error);
        options.DefaultWatcher = cli.OnWatch;
        // Connecting starts now; a command awaits it at its first request (so a command refused
        // before reaching the server prints no connection event, as with zkCli.sh).
        cli._server = server;
        cli._connectTimeout = TimeSpan.FromMilliseconds(timeoutMs);
        cli._connect = KeeperClient.ConnectAsync(server, options);
        _ = cli._connect.ContinueWith(static t => _ = t.Exception, TaskContinuationOptions.OnlyOnFaulted);
        if (i < argv.Length)
        {
            // One command: zkCli.sh exits without closing its session (its ephemerals stay until the session times out).
            int rc = await cli.ExecuteAsync(argv[i..]);
            await cli.AbandonAsync();
            return rc;
        }
        int code = 0;
        string? line;
        while ((line = await input.ReadLineAsync()) is not null)
        {
            var words = Tokenize(line);
            if (words.Count == 0) continue;
            if (words[0] is "quit" or "close")
            {
                if (cli._connect.IsCompletedSuccessfully) await cli._connect.Result.DisposeAsync();
                if (words[0] == "quit") return code;
                continue;
            }
            code = await cli.ExecuteAsync(words.ToArray());
        }
        await cli.AbandonAsync();
        return code;
    }

    private void OnWatch(WatchedEvent e)
    {
        if (!_printWatches || e.Type == EventType.None) return;
        lock (_out) _out.WriteLine($"\nWATCHER::\n\nWatchedEvent state:{e.State} type:{e.Type} path:{e.Path}");
    }

    [GeneratedRegex("""\s*([^"'\s]\S*|"[^"]*"|'[^']*')\s*""")]
    private static partial Regex ArgPattern();

    /// <summary>zkCli.sh's line splitting: words, or "..." / '...' with the quotes removed.</summary>
    internal static List<string> Tokenize(string line)
    {
        var result = new List<string>();
        foreach (Match m in ArgPattern().Matches(line))
        {
            string v = m.Groups[1].Value;
            if (v.Length >= 2 && (v[0] == '"' || v[0] == '\'') && v[^1] == v[0]) v = v[1..^1];
            result.Add(v);
        }
        return result;
    }

    /// <summary>Runs one command; 0 on success, 1 when it failed (as ZooKeeperMain's exit code).</summary>
    private async Task<int> ExecuteAsync(string[] words)
    {
        string cmd = words[0];
        if (!Commands.TryGetValue(cmd, out var spec))
        {
            PrintUsage();
            _err.WriteLine($"Command not found: Command not found {cmd}");
            return 127;
        }
        try
        {
            var (flags, values, args) = ParseOptions(cmd, spec, words);
            await RunCommandAsync(cmd, spec.Usage, flags, values, args);
            return 0;
        }
        catch (CliException e)
        {
            _err.WriteLine(e.Message);
            return 1;
        }
        catch (KeeperException e)
        {
            _err.WriteLine(Describe(e.Code, e.Path ?? ""));
            return 1;
        }
        catch (ArgumentException e)
        {
            _err.WriteLine(e.Message);
            return 1;
        }
    }

    /// <summary>ZooKeeperMain.usage(): every zkCli.sh 3.8 command, as it prints them (stderr).</summary>
    private static readonly string[] UpstreamUsage =
    [
        "\taddWatch [-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE",
        "\taddauth scheme auth",
        "\tclose ",
        "\tconfig [-c] [-w] [-s]",
        "\tconnect host:port",
        "\tcreate [-s] [-e] [-c] [-t ttl] path [data] [acl]",
        "\tdelete [-v version] path",
        "\tdeleteall path [-b batch size]",
        "\tdelquota [-n|-b|-N|-B] path",
        "\tget [-s] [-w] path",
        "\tgetAcl [-s] path",
        "\tgetAllChildrenNumber path",
        "\tgetEphemerals path",
        "\thistory ",
        "\tlistquota path",
        "\tls [-s] [-w] [-R] path",
        "\tprintwatches on|off",
        "\tquit ",
        "\treconfig [-s] [-v version] [[-file path] | [-members serverID=host:port1:port2;port3[,...]*]] | [-add serverId=host:port1:port2;port3[,...]]* [-remove serverId[,...]*]",
        "\tredo cmdno",
        "\tremovewatches path [-c|-d|-a] [-l]",
        "\tset [-s] [-v version] path data",
        "\tsetAcl [-s] [-v version] [-R] path acl",
        "\tsetquota -n|-b|-N|-B val path",
        "\tstat [-w] path",
        "\tsync path",
        "\tversion ",
        "\twhoami ",
    ];

    private void PrintUsage()
    {
        _err.WriteLine("ZooKeeper -server host:port -client-configuration properties-file cmd args");
        foreach (var line in UpstreamUsage) _err.WriteLine(line);
    }

    /// <summary>commons-cli's POSIX parsing as zkCli.sh's commands use it: -x flags and -x value anywhere; the rest are arguments.</summary>
    private static (HashSet<char> Flags, Dictionary<char, string> Values, List<string> Args) ParseOptions(string cmd, (string Usage, string Flags, string WithValue) spec, string[] words)
    {
        var flags = new HashSet<char>();
        var values = new Dictionary<char, string>();
        var args = new List<string> { cmd };
        for (int i = 1; i < words.Length; i++)
        {
            string w = words[i];
            if (w.Length >= 2 && w[0] == '-' && !char.IsDigit(w[1]))
            {
                char o = w[1];
                if (spec.WithValue.Contains(o))
                {
                    string? v = w.Length > 2 ? w[2..] : i + 1 < words.Length ? words[++i] : null;
                    if (v is null) throw new CliException($"org.apache.commons.cli.MissingArgumentException: Missing argument for option: {o}");
                    values[o] = v;
                    continue;
                }
                if (w.Length == 2 && spec.Flags.Contains(o)) { flags.Add(o); continue; }
                throw new CliException($"org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: {w}");
            }
            args.Add(w);
        }
        return (flags, values, args);
    }

    private static string Describe(Code code, string path) => code switch
    {
        Code.NoNode => "Node does not exist: " + path,
        Code.NoChildrenForEphemerals => "Ephemerals cannot have children: " + path,
        Code.NodeExists => "Node already exists: " + path,
        Code.NotEmpty => "Node not empty: " + path,
        Code.NotReadOnly => "Not a read-only call: " + path,
        Code.InvalidAcl => "Acl is not valid : " + path,
        Code.NoAuth => "Insufficient permission : " + path,
        Code.BadArguments => "Arguments are not valid : " + path,
        Code.BadVersion => "version No is not valid : " + path,
        Code.QuotaExceeded => "Quota has exceeded : " + path,
        Code.ReconfigInProgress => "Another reconfiguration is in progress -- concurrent reconfigs not supported (yet)",
        _ => $"KeeperErrorCode = {JavaCodeName(code)}{(path.Length > 0 ? " for " + path : "")}",
    };

    private static string JavaCodeName(Code code) => code switch
    {
        Code.ConnectionLoss => "ConnectionLoss",
        Code.SessionExpired => "Session expired",
        Code.AuthFailed => "AuthFailed",
        Code.Unimplemented => "Unimplemented",
        Code.OperationTimeout => "OperationTimeout",
        Code.SessionMoved => "Session moved",
        _ => code.ToString(),
    };

    /// <summary>PathUtils.validatePath's checks and messages.</summary>
    internal static void ValidatePath(string path)
    {
        if (path.Length == 0) throw new CliException("Path length must be > 0");
        if (path[0] != '/') throw new CliException("Path must start with / character");
        if (path.Length == 1) return;
        if (path[^1] == '/') throw new CliException("Path must not end with / character");
        string? reason = null;
        char last = '/';
        for (int i = 1; i < path.Length; last = path[i], i++)
        {
            char c = path[i];
            if (c == 0) { reason = "null character not allowed @" + i; break; }
            if (c == '/' && last == '/') { reason = "empty node name specified @" + i; break; }
            if (c == '.' && last == '.')
            {
                if (path[i - 2] == '/' && (i + 1 == path.Length || path[i + 1] == '/')) { reason = "relative paths not allowed @" + i; break; }
            }
            else if (c == '.')
            {
                if (path[i - 1] == '/' && (i + 1 == path.Length || path[i + 1] == '/')) { reason = "relative paths not allowed @" + i; break; }
            }
            else if (c is > '\u0000' and <= '\u001f' or >= '\u007f' and <= '\u009F' or >= '\ud800' and <= '\uf8ff' or >= '\ufff0')
            { reason = "invalid character @" + i; break; }
        }
        if (reason is not null) throw new CliException($"Invalid path string \"{path}\" caused by {reason}");
    }

    private async Task RunCommandAsync(string cmd, string usage, HashSet<char> f, Dictionary<char, string> v, List<string> a)
    {
        string UsageText() => $"{cmd} {usage}";
        string Path(int index)
        {
            if (a.Count <= index) throw new CliException(UsageText());
            ValidatePath(a[index]);
            return a[index];
        }
        int Version() => v.TryGetValue('v', out var s)
            ? int.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int n) ? n : throw new CliException($"For input string: \"{s}\"")
            : -1;
        // Arguments are checked before the first request, as zkCli.sh's parse step does.
        if (cmd is "ls" or "get" or "stat" or "set" or "delete" or "deleteall" or "getAcl" or "setAcl" or "sync"
            or "getAllChildrenNumber" or "listquota" or "delquota" || (cmd == "getEphemerals" && a.Count > 1))
            Path(1);
        if (cmd is "set" or "setAcl" && a.Count < 3) throw new CliException(UsageText());
        switch (cmd)
        {
            case "ls":
            {
                string path = Path(1);
                if (f.Contains('R'))
                {
                    await (await Zk()).GetDataAsync(path, f.Contains('w'));
                    _out.WriteLine(path);
                    await ListRecursiveAsync(path, f.Contains('w'));
                    break;
                }
                List<string> children;
                Stat? stat = null;
                if (f.Contains('s')) (children, stat) = await (await Zk()).GetChildrenWithStatAsync(path, f.Contains('w') ? OnWatch : null);
                else children = await (await Zk()).GetChildrenAsync(path, f.Contains('w'));
                children.Sort(StringComparer.Ordinal);
                _out.Write("[" + string.Join(", ", children) + "]\n");
                if (stat is not null) PrintStat(stat);
                break;
            }
            case "get":
            {
                var (data, stat) = await (await Zk()).GetDataAsync(Path(1), f.Contains('w'));
                _out.WriteLine(data is null ? "null" : Encoding.UTF8.GetString(data));
                if (f.Contains('s')) PrintStat(stat);
                break;
            }
            case "stat":
            {
                string path = Path(1);
                var stat = await (await Zk()).ExistsAsync(path, f.Contains('w')) ?? throw new KeeperException(Code.NoNode, path);
                PrintStat(stat);
                break;
            }
            case "create":
                await CreateAsync(f, v, a, UsageText);
                break;
            case "set":
            {
                string path = Path(1);
                if (a.Count < 3) throw new CliException(UsageText());
                var stat = await (await Zk()).SetDataAsync(path, Encoding.UTF8.GetBytes(a[2]), Version());
                if (f.Contains('s')) PrintStat(stat);
                break;
            }
            case "delete":
                await (await Zk()).DeleteAsync(Path(1), Version());
                break;
            case "deleteall":
                await DeleteAllAsync(Path(1));
                break;
            case "getAcl":
            {
                var (acl, stat) = await (await Zk()).GetAclAsync(Path(1));
                foreach (var e in acl) _out.WriteLine($"{IdString(e.Id)}: {PermString(e.Perms)}");
                if (f.Contains('s')) PrintStat(stat);
                break;
            }
            case "setAcl":
            {
                string path = Path(1);
                if (a.Count < 3) throw new CliException(UsageText());
                var acl = ParseAcl(a[2]);
                int version = Version();
                if (f.Contains('R'))
                {
                    await (await Zk()).GetDataAsync(path);
                    await SetAclTreeAsync(path, acl, version);
                }
                else
                {
                    var stat = await (await Zk()).SetAclAsync(path, acl, version);
                    if (f.Contains('s')) PrintStat(stat);
                }
                break;
            }
            case "addauth":
                if (a.Count < 2) throw new CliException(UsageText());
                await (await Zk()).AddAuthInfoAsync(a[1], a.Count >= 3 ? Encoding.UTF8.GetBytes(a[2]) : []);
                break;
            case "sync":
                await (await Zk()).SyncAsync(Path(1));
                _out.WriteLine("Sync is OK");
                break;
            case "config":
            {
                var (data, stat) = await (await Zk()).GetDataAsync("/zookeeper/config", f.Contains('w'));
                string text = data is null ? "null" : Encoding.UTF8.GetString(data);
                _out.WriteLine(f.Contains('c') ? ClientConfigString(text) : text);
                if (f.Contains('s')) PrintStat(stat);
                break;
            }
            case "whoami":
            {
                var ids = await (await Zk()).WhoAmIAsync();
                _out.WriteLine("Auth scheme: User");
                foreach (var id in ids) _out.WriteLine($"{id.Scheme}: {id.User}");
                break;
            }
            case "getEphemerals":
            {
                var list = a.Count < 2 ? await (await Zk()).GetEphemeralsAsync() : await (await Zk()).GetEphemeralsAsync(Path(1));
                _out.WriteLine("[" + string.Join(", ", list) + "]");
                break;
            }
            case "getAllChildrenNumber":
                if (a.Count < 2) throw new CliException(UsageText());
                _out.WriteLine((await (await Zk()).GetAllChildrenNumberAsync(Path(1))).ToString(CultureInfo.InvariantCulture));
                break;
            case "listquota":
                await ListQuotaAsync(Path(1));
                break;
            case "setquota":
                await SetQuotaAsync(v, a, UsageText);
                break;
            case "delquota":
                await DelQuotaAsync(f, Path(1));
                break;
            case "printwatches":
                if (a.Count == 1) _out.WriteLine("printwatches is " + (_printWatches ? "on" : "off"));
                else _printWatches = a[1] == "on";
                break;
            case "version":
                _out.WriteLine("ZooKeeper CLI version: 3.8.0 (samsa zkcli)");
                break;
        }
    }

    private async Task ListRecursiveAsync(string path, bool watch)
    {
        List<string> children;
        try { children = await (await Zk()).GetChildrenAsync(path, watch); }
        catch (KeeperException e) when (e.Code == Code.NoNode) { return; }
        children.Sort(StringComparer.Ordinal);
        string prefix = path == "/" ? "/" : path + "/";
        foreach (var c in children) _out.WriteLine(prefix + c);
        foreach (var c in children) await ListRecursiveAsync(prefix + c, watch);
    }

    private async Task SetAclTreeAsync(string path, List<ACL> acl, int version)
    {
        try { await (await Zk()).SetAclAsync(path, acl, version); }
        catch (KeeperException e) { _out.Write(Describe(e.Code, path)); }
        List<string> children;
        try { children = await (await Zk()).GetChildrenAsync(path); }
        catch (KeeperException e) when (e.Code == Code.NoNode) { return; }
        children.Sort(StringComparer.Ordinal);
        string prefix = path == "/" ? "/" : path + "/";
        foreach (var c in children) await SetAclTreeAsync(prefix + c, acl, version);
    }

    private async Task CreateAsync(HashSet<char> f, Dictionary<char, string> v, List<string> a, Func<string> usage)
    {
        bool e = f.Contains('e'), s = f.Contains('s'), c = f.Contains('c'), t = v.ContainsKey('t');
        if (c && (e || s)) throw new CliException("-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential.");
        long ttl = 0;
        if (t && !long.TryParse(v['t'], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out ttl)) throw new CliException("-t argument must be a long value");
        if (t && e) throw new CliException("TTLs cannot be used with Ephemeral znodes");
        if (t && c) throw new CliException("TTLs cannot be used with Container znodes");
        var mode = e && s ? CreateMode.EphemeralSequential : e ? CreateMode.Ephemeral
            : s ? (t ? CreateMode.PersistentSequentialWithTtl : CreateMode.PersistentSequential)
            : c ? CreateMode.Container : t ? CreateMode.PersistentWithTtl : CreateMode.Persistent;
        if (t && (ttl <= 0 || ttl > 0xFFFFFFFFFFL)) throw new CliException($"ttl must be positive and cannot be larger than: {0xFFFFFFFFFFL}");
        if (a.Count < 2) throw new CliException(usage());
        string path = a[1];
        ValidatePath(s ? path + "1" : path);
        byte[]? data = a.Count > 2 ? Encoding.UTF8.GetBytes(a[2]) : null;
        var acl = a.Count > 3 ? ParseAcl(a[3]) : Acls.OpenAclUnsafe;
        try
        {
            string created = await (await Zk()).CreateAsync(path, data, acl, mode, t ? ttl : -1);
            _err.WriteLine("Created " + created);
        }
        catch (KeeperException ex) when (ex.Code == Code.InvalidAcl)
        {
            _err.WriteLine($"KeeperErrorCode = InvalidACL for {path}");
            throw;
        }
        catch (KeeperException ex) when (ex.Code == Code.EphemeralOnLocalSession)
        {
            _err.WriteLine("Unable to create ephemeral node on a local session");
            throw;
        }
    }

    /// <summary>ZKUtil.deleteRecursive: the subtree breadth first, deleted deepest first.</summary>
    private async Task DeleteAllAsync(string path)
    {
        var tree = new List<string> { path };
        for (int i = 0; i < tree.Count; i++)
        {
            List<string> children;
            try { children = await (await Zk()).GetChildrenAsync(tree[i]); }
            catch (KeeperException e) when (e.Code == Code.NoNode && i > 0) { continue; }
            string prefix = tree[i] == "/" ? "/" : tree[i] + "/";
            tree.AddRange(children.Select(c => prefix + c));
        }
        bool ok = true;
        for (int i = tree.Count - 1; i >= 0; i--)
        {
            if (tree[i] == "/") continue;
            try { await (await Zk()).DeleteAsync(tree[i]); }
            catch (KeeperException e) when (e.Code == Code.NoNode) { }
            catch (KeeperException e) when (e.Code is Code.NotEmpty or Code.NoAuth) { ok = false; }
        }
        if (!ok) _err.WriteLine("Failed to delete some node(s) in the subtree!");
    }

    // ------------------------------------------------------------------ formatting

    private void PrintStat(Stat s)
    {
        var sb = new StringBuilder();
        sb.Append("cZxid = 0x").Append(s.Czxid.ToString("x", CultureInfo.InvariantCulture)).Append('\n');
        sb.Append("ctime = ").Append(JavaDate(s.Ctime)).Append('\n');
        sb.Append("mZxid = 0x").Append(s.Mzxid.ToString("x", CultureInfo.InvariantCulture)).Append('\n');
        sb.Append("mtime = ").Append(JavaDate(s.Mtime)).Append('\n');
        sb.Append("pZxid = 0x").Append(s.Pzxid.ToString("x", CultureInfo.InvariantCulture)).Append('\n');
        sb.Append("cversion = ").Append(s.Cversion).Append('\n');
        sb.Append("dataVersion = ").Append(s.Version).Append('\n');
        sb.Append("aclVersion = ").Append(s.Aversion).Append('\n');
        sb.Append("ephemeralOwner = 0x").Append(s.EphemeralOwner.ToString("x", CultureInfo.InvariantCulture)).Append('\n');
        sb.Append("dataLength = ").Append(s.DataLength).Append('\n');
        sb.Append("numChildren = ").Append(s.NumChildren).Append('\n');
        _out.Write(sb.ToString());
    }

    /// <summary>java.util.Date.toString() (EEE MMM dd HH:mm:ss zzz yyyy) in UTC, as a JVM on a UTC machine prints it.</summary>
    internal static string JavaDate(long epochMs)
    {
        var t = DateTimeOffset.FromUnixTimeMilliseconds(epochMs).UtcDateTime;
        return t.ToString("ddd MMM dd HH:mm:ss 'UTC' yyyy", CultureInfo.InvariantCulture);
    }

    /// <summary>Jute's CSV rendering of an Id, as ACL printing shows it: 'scheme,'id and a newline.</summary>
    private static string IdString(Id id) => $"'{Csv(id.Scheme ?? "")},'{Csv(id.IdValue ?? "")}\n";

    private static string Csv(string s)
    {
        var sb = new StringBuilder();
        foreach (char c in s)
            sb.Append(c switch { '\0' => "%00", '\n' => "%0A", '\r' => "%0D", ',' => "%2C", '}' => "%7D", '%' => "%25", _ => c.ToString() });
        return sb.ToString();
    }

    internal static string PermString(int perms)
    {
        var sb = new StringBuilder();
        if ((perms & (int)Perms.Create) != 0) sb.Append('c');
        if ((perms & (int)Perms.Delete) != 0) sb.Append('d');
        if ((perms & (int)Perms.Read) != 0) sb.Append('r');
        if ((perms & (int)Perms.Write) != 0) sb.Append('w');
        if ((perms & (int)Perms.Admin) != 0) sb.Append('a');
        return sb.ToString();
    }

    /// <summary>AclParser: scheme:id:perm[,scheme:id:perm...]; malformed entries are skipped with a line on stderr.</summary>
    private List<ACL> ParseAcl(string text)
    {
        var result = new List<ACL>();
        foreach (var a in text.Split(','))
        {
            int first = a.IndexOf(':'), last = a.LastIndexOf(':');
            if (first == -1 || first == last) { _err.WriteLine($"{a} does not have the form scheme:id:perm"); continue; }
            int perms = 0;
            foreach (char c in a[(last + 1)..])
            {
                perms |= c switch { 'r' => (int)Perms.Read, 'w' => (int)Perms.Write, 'c' => (int)Perms.Create, 'd' => (int)Perms.Delete, 'a' => (int)Perms.Admin, _ => 0 };
                if (c is not ('r' or 'w' or 'c' or 'd' or 'a')) _err.WriteLine($"Unknown perm type: {c}");
            }
            result.Add(new ACL { Perms = perms, Id = new Id { Scheme = a[..first], IdValue = a[(first + 1)..last] } });
        }
        return result;
    }

    /// <summary>ConfigUtils.getClientConfigStr: the client ports of the servers, then the version.</summary>
    private static string ClientConfigString(string config)
    {
        string version = "";
        var servers = new List<string>();
        foreach (var line in config.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int eq = line.IndexOf('=');
            if (eq < 0) continue;
            string key = line[..eq], value = line[(eq + 1)..];
            if (key == "version") { version = value; continue; }
            if (!key.StartsWith("server.", StringComparison.Ordinal)) continue;
            int semi = value.IndexOf(';');
            if (semi < 0) continue;
            string client = value[(semi + 1)..];
            // host:port, or a bare port on the server's address
            if (!client.Contains(':'))
            {
                string host = value.Split(':')[0];
                client = host + ":" + client;
            }
            else if (client.StartsWith("0.0.0.0:", StringComparison.Ordinal)) client = value.Split(':')[0] + client[7..];
            servers.Add(client);
        }
        return version + " " + string.Join(",", servers);
    }

    // ------------------------------------------------------------------ quotas

    private sealed class StatsTrack
    {
        public readonly SortedDictionary<string, long> Values = new(StringComparer.Ordinal);

        public static StatsTrack Parse(string? text)
        {
            var t = new StatsTrack();
            if (string.IsNullOrEmpty(text)) return t;
            foreach (var pair in text.Split([',', ';'], StringSplitOptions.RemoveEmptyEntries))
            {
                var kv = pair.Split('=', StringSplitOptions.RemoveEmptyEntries);
                if (kv.Length >= 2 && long.TryParse(kv[1], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long n)) t.Values[kv[0]] = n;
            }
            return t;
        }

        public long this[string key] { get => Values.TryGetValue(key, out long v) ? v : -1; set => Values[key] = value; }

        public override string ToString()
        {
            var sb = new StringBuilder($"count={this["count"]},bytes={this["bytes"]}");
            var rest = Values.Keys.Where(k => k is not ("count" or "bytes")).ToList();
            if (rest.Count > 0)
            {
                sb.Append('=');
                foreach (var k in rest) sb.Append(';').Append(k).Append('=').Append(Values[k]);
            }
            return sb.ToString();
        }
    }

    private static string QuotaPath(string path) => QuotaRoot + path;

    private async Task ListQuotaAsync(string path)
    {
        string limit = QuotaPath(path) + "/" + LimitNode;
        _err.WriteLine("absolute path is " + limit);
        try
        {
            var (l, _) = await (await Zk()).GetDataAsync(limit);
            var (s, _) = await (await Zk()).GetDataAsync(QuotaPath(path) + "/" + StatNode);
            _out.WriteLine($"Output quota for {path} {StatsTrack.Parse(l is null ? null : Encoding.UTF8.GetString(l))}");
            _out.WriteLine($"Output stat for {path} {StatsTrack.Parse(s is null ? null : Encoding.UTF8.GetString(s))}");
        }
        catch (KeeperException e) when (e.Code == Code.NoNode)
        {
            _err.WriteLine($"quota for {path} does not exist.");
        }
    }

    private async Task SetQuotaAsync(Dictionary<char, string> v, List<string> a, Func<string> usage)
    {
        if (a.Count < 2) throw new CliException(usage());
        string path = a[1];
        if (path.StartsWith(QuotaRoot, StringComparison.Ordinal)) { _err.WriteLine("cannot set a quota under the path: " + QuotaRoot); return; }
        var quota = new StatsTrack { ["count"] = -1, ["bytes"] = -1, ["countHardLimit"] = -1, ["byteHardLimit"] = -1 };
        foreach (var (opt, key, isCount) in new[] { ('n', "count", true), ('b', "bytes", false), ('N', "countHardLimit", true), ('B', "byteHardLimit", false) })
        {
            if (!v.TryGetValue(opt, out var s)) continue;
            if (!long.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long n) || (isCount && (n > int.MaxValue || n < int.MinValue)))
            { _err.WriteLine("NumberFormatException happens when parsing the option value"); return; }
            if (isCount && n <= 0) { _err.WriteLine("the num quota must be greater than zero"); return; }
            if (!isCount && n < 0) { _err.WriteLine("the bytes quota must be greater than or equal to zero"); return; }
            quota[key] = n;
        }
        if (v.Count == 0) { _err.WriteLine(usage()); return; }
        ValidatePath(path);
        if (await (await Zk()).ExistsAsync(path) is null) throw new CliException($"{path} does not exist.");
        await CheckChildQuotaAsync(path);
        await CheckParentQuotaAsync(path);
        foreach (var p in new[] { "/zookeeper", QuotaRoot })
            if (await (await Zk()).ExistsAsync(p) is null)
                try { await (await Zk()).CreateAsync(p, null, Acls.OpenAclUnsafe); } catch (KeeperException e) when (e.Code == Code.NodeExists) { }
        string quotaPath = QuotaRoot;
        foreach (var part in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            quotaPath += "/" + part;
            if (await (await Zk()).ExistsAsync(quotaPath) is null)
                try { await (await Zk()).CreateAsync(quotaPath, null, Acls.OpenAclUnsafe); } catch (KeeperException e) when (e.Code == Code.NodeExists) { }
        }
        string statPath = quotaPath + "/" + StatNode, limitPath = quotaPath + "/" + LimitNode;
        StatsTrack limits;
        if (await (await Zk()).ExistsAsync(limitPath) is null)
        {
            await (await Zk()).CreateAsync(limitPath, Encoding.UTF8.GetBytes(quota.ToString()), Acls.OpenAclUnsafe);
            await (await Zk()).CreateAsync(statPath, Encoding.UTF8.GetBytes(new StatsTrack { ["count"] = 0, ["bytes"] = 0 }.ToString()), Acls.OpenAclUnsafe);
            limits = StatsTrack.Parse(Encoding.UTF8.GetString((await (await Zk()).GetDataAsync(limitPath)).Data ?? []));
        }
        else
        {
            limits = StatsTrack.Parse(Encoding.UTF8.GetString((await (await Zk()).GetDataAsync(limitPath)).Data ?? []));
            foreach (var key in new[] { "count", "bytes", "countHardLimit", "byteHardLimit" })
                if (quota[key] > -1) limits[key] = quota[key];
        }
        var stats = StatsTrack.Parse(Encoding.UTF8.GetString((await (await Zk()).GetDataAsync(statPath)).Data ?? []));
        if ((limits["count"] > -1 && limits["count"] < stats["count"]) || (limits["countHardLimit"] > -1 && limits["countHardLimit"] < stats["count"]))
            _out.WriteLine("[Warning]: the count quota you create is less than the existing count:" + stats["count"]);
        if ((limits["bytes"] > -1 && limits["bytes"] < stats["bytes"]) || (limits["byteHardLimit"] > -1 && limits["byteHardLimit"] < stats["bytes"]))
            _out.WriteLine("[Warning]: the bytes quota you create is less than the existing bytes:" + stats["bytes"]);
        await (await Zk()).SetDataAsync(limitPath, Encoding.UTF8.GetBytes(limits.ToString()));
    }

    private async Task CheckChildQuotaAsync(string path)
    {
        var queue = new List<string> { QuotaPath(path) };
        for (int i = 0; i < queue.Count; i++)
        {
            List<string> children;
            try { children = await (await Zk()).GetChildrenAsync(queue[i]); }
            catch (KeeperException e) when (e.Code == Code.NoNode) { continue; }
            foreach (var c in children)
            {
                if (queue[i] != QuotaRoot + path && c == LimitNode)
                    throw new CliException($"{path} has a child {queue[i][QuotaRoot.Length..]} which has a quota");
                queue.Add(queue[i] + "/" + c);
            }
        }
    }

    private async Task CheckParentQuotaAsync(string path)
    {
        var parts = path.Split('/');
        string quotaPath = QuotaRoot;
        for (int i = 1; i < parts.Length - 1; i++)
        {
            quotaPath += "/" + parts[i];
            List<string> children;
            try { children = await (await Zk()).GetChildrenAsync(quotaPath); }
            catch (KeeperException e) when (e.Code == Code.NoNode) { return; }
            if (children.Count == 0) return;
            if (quotaPath != QuotaPath(path) && children.Contains(LimitNode))
                throw new CliException($"{path} has a parent {quotaPath[QuotaRoot.Length..]} which has a quota");
        }
    }

    private async Task DelQuotaAsync(HashSet<char> f, string path)
    {
        string parent = QuotaPath(path), limit = parent + "/" + LimitNode;
        try
        {
            if (await (await Zk()).ExistsAsync(limit) is null) { _out.WriteLine("Quota does not exist for " + path); return; }
            var limits = StatsTrack.Parse(Encoding.UTF8.GetString((await (await Zk()).GetDataAsync(limit)).Data ?? []));
            if (f.Count == 0)
            {
                foreach (var c in await (await Zk()).GetChildrenAsync(parent)) await (await Zk()).DeleteAsync(parent + "/" + c);
                // Trim the now-empty quota path up to /zookeeper/quota.
                string p = parent;
                while (p != QuotaRoot && (await (await Zk()).GetChildrenAsync(p)).Count == 0)
                {
                    await (await Zk()).DeleteAsync(p);
                    p = p[..p.LastIndexOf('/')];
                }
                return;
            }
            if (f.Contains('n')) limits["count"] = -1;
            if (f.Contains('b')) limits["bytes"] = -1;
            if (f.Contains('N')) limits["countHardLimit"] = -1;
            if (f.Contains('B')) limits["byteHardLimit"] = -1;
            await (await Zk()).SetDataAsync(limit, Encoding.UTF8.GetBytes(limits.ToString()));
        }
        catch (KeeperException e) when (e.Code == Code.NoNode)
        {
            _err.WriteLine($"quota for {path} does not exist.");
        }
    }
}
