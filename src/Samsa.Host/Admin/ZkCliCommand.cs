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
        "    addWatch [-m mode] path | removewatches path [-c|-d|-a] [-l] | connect host:port | history | redo cmdno\n" +
        "    reconfig [-s] [-v version] [-file path | -members ... | -add ... -remove ...]\n" +
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
        ["addWatch"] = ("[-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE", "", "m"),
        ["removewatches"] = ("path [-c|-d|-a] [-l]", "cdal", ""),
        ["reconfig"] = ("[-s] [-v version] [[-file path] | [-members serverID=host:port1:port2;port3[,...]*]] | [-add serverId=host:port1:port2;port3[,...]]* [-remove serverId[,...]*]", "s", "v"),
        ["connect"] = ("host:port", "", ""),
        ["history"] = ("", "", ""),
        ["redo"] = ("cmdno", "", ""),
        ["version"] = ("", "", ""),
        ["close"] = ("", "", ""),
        ["quit"] = ("", "", ""),
    };

    private sealed class CliException(string message) : Exception(message);

    private readonly TextWriter _out, _err;
    /// <summary>The session being established or up; null after close (zkCli.sh's "Not connected").</summary>
    private Task<KeeperClient>? _connect;
    private CancellationTokenSource _connectCancel = new();
    private KeeperClientOptions _options = null!;
    private string _server = "";
    private TimeSpan _connectTimeout;
    private bool _bannerPrinted;
    /// <summary>ZooKeeperMain's history: script lines by number (one-shot mode records none).</summary>
    private readonly Dictionary<int, string> _history = new();
    private int _commandCount;

    /// <summary>The connected client; the first call waits for the session and prints zkCli.sh's connection event.</summary>
    private async Task<KeeperClient> Zk()
    {
        KeeperClient zk;
        if (_connect is null) throw new CliException("Not connected");
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
        cli._options = options;
        cli._connectTimeout = TimeSpan.FromMilliseconds(timeoutMs);
        cli.Connect(server);
        if (i < argv.Length)
        {
            // One command: zkCli.sh exits without closing its session (its ephemerals stay until the session times out).
            int rc = await cli.ProcessAsync(argv[i..]);
            if (argv[i] == "quit") await cli.CloseAsync(printEvent: false);
            await cli.AbandonAsync();
            return rc;
        }
        int code = 0;
        string? line;
        string[] words = [];
        while ((line = await input.ReadLineAsync()) is not null)
        {
            // ZooKeeperMain.executeLine: an empty line is skipped; any other is numbered in the history.
            // A blank line's word is its last white-space character (upstream's pattern takes it).
            if (line.Length == 0) continue;
            var parsed = Tokenize(line);
            if (parsed.Count > 0) words = parsed.ToArray();
            else if (line.Trim().Length == 0) words = [line[^1..]];
            cli._history[cli._commandCount] = line;
            if (words.Length > 0 && words[0] == "quit")
            {
                await cli.CloseAsync(printEvent: false);
                return code;
            }
            if (words.Length > 0) code = await cli.ProcessAsync(words);
            cli._commandCount++;
        }
        await cli.AbandonAsync();
        return code;
    }

    /// <summary>ZooKeeperMain.connectToZK without closing: a new session to <paramref name="server"/>,
    /// awaited by the next command that needs it (a command refused before reaching the server
    /// prints no connection event, as with zkCli.sh).</summary>
    private void Connect(string server)
    {
        _server = server;
        _bannerPrinted = false;
        _connectCancel = new CancellationTokenSource();
        _connect = KeeperClient.ConnectAsync(server, _options, _connectCancel.Token);
        _ = _connect.ContinueWith(static t => _ = t.Exception, TaskContinuationOptions.OnlyOnFaulted);
    }

    /// <summary>ZooKeeper.close as zkCli.sh's close and connect do it: the session is closed and the
    /// default watcher sees state Closed.</summary>
    private async Task CloseAsync(bool printEvent)
    {
        if (_connect is not { } connect) return;
        _connect = null;
        await _connectCancel.CancelAsync();
        try { await (await connect).DisposeAsync(); }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException or KeeperException or IOException or System.Net.Sockets.SocketException or ArgumentException) { }
        if (printEvent && _printWatches) lock (_out) _out.WriteLine("\nWATCHER::\n\nWatchedEvent state:Closed type:None path:null");
    }

    /// <summary>ZooKeeperMain.processCmd/processZKCmd: the shell's own commands (redo, history,
    /// printwatches, connect), then "Not connected" when the session was closed, then the command.</summary>
    private async Task<int> ProcessAsync(string[] words)
    {
        string cmd = words[0];
        if (!Commands.ContainsKey(cmd)) return await ExecuteAsync(words);
        switch (cmd)
        {
            case "redo" when words.Length >= 2:
            {
                int n;
                try { n = JavaDecode(words[1]); }
                catch (FormatException) { _err.WriteLine($"For input string: \"{words[1]}\""); return 1; }
                if (_commandCount <= n || n < 0 || !_history.TryGetValue(n, out var again)) { _err.WriteLine("Command index out of range"); return 1; }
                var redone = Tokenize(again);
                if (redone.Count == 0 || redone[0] == "redo") { _err.WriteLine("No redoing redos"); return 1; }
                _history[_commandCount] = again;
                // the redone command's failure is printed, but the redo itself ends with exit code 0
                await ProcessAsync(redone.ToArray());
                break;
            }
            case "history":
                for (int i = Math.Max(0, _commandCount - 10); i <= _commandCount; i++)
                    _out.WriteLine($"{i} - {_history.GetValueOrDefault(i) ?? "null"}");
                break;
            case "printwatches":
                if (words.Length == 1) _out.WriteLine("printwatches is " + (_printWatches ? "on" : "off"));
                else _printWatches = words[1] == "on";
                break;
            case "connect":
                await CloseAsync(printEvent: true);
                Connect(words.Length >= 2 ? words[1] : _server);
                break;
        }
        if (_connect is null)
        {
            _out.WriteLine("Not connected");
            return 0;
        }
        if (cmd is "redo" or "history" or "printwatches" or "connect" or "quit") return 0;
        return await ExecuteAsync(words);
    }

    /// <summary>java.lang.Integer.decode: decimal, 0x/0X/# hexadecimal, a leading 0 octal, with a sign.</summary>
    private static int JavaDecode(string s)
    {
        bool negative = s.StartsWith('-');
        string t = s.StartsWith('-') || s.StartsWith('+') ? s[1..] : s;
        int radix = 10;
        if (t.StartsWith("0x", StringComparison.OrdinalIgnoreCase)) { radix = 16; t = t[2..]; }
        else if (t.StartsWith('#')) { radix = 16; t = t[1..]; }
        else if (t.StartsWith('0') && t.Length > 1) { radix = 8; t = t[1..]; }
        if (t.Length == 0 || t[0] is '-' or '+') throw new FormatException();
        long v = 0;
        foreach (char c in t)
        {
            int d = char.IsAsciiDigit(c) ? c - '0' : char.IsAsciiLetter(c) ? char.ToLowerInvariant(c) - 'a' + 10 : 99;
            if (d >= radix) throw new FormatException();
            v = v * radix + d;
            if (v > 1L + int.MaxValue) throw new FormatException();
        }
        v = negative ? -v : v;
        return v is > int.MaxValue or < int.MinValue ? throw new FormatException() : (int)v;
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
            if (cmd == "reconfig")
            {
                await ReconfigAsync(words);
                return 0;
            }
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
        // (sic: upstream's spelling)
        Code.NewConfigNoQuorum => "No quorum of new config is connected and up-to-date with the leader of last commmitted config - try invoking reconfiguration after new servers are connected and synced",
        _ => $"KeeperErrorCode = {JavaCodeName(code)}{(path.Length > 0 ? " for " + path : "")}",
    };

    /// <summary>KeeperException.getCodeMessage's names where they differ from ours.</summary>
    private static string JavaCodeName(Code code) => code switch
    {
        Code.Ok => "ok",
        Code.ApiError => "APIError",
        Code.InvalidAcl => "InvalidACL",
        Code.NotEmpty => "Directory not empty",
        Code.SessionExpired => "Session expired",
        Code.InvalidCallback => "Invalid callback",
        Code.SessionMoved => "Session moved",
        Code.NotReadOnly => "Not a read-only call",
        Code.EphemeralOnLocalSession => "Ephemeral node on local session",
        Code.NoWatcher => "No such watcher",
        Code.ReconfigDisabled => "Reconfig is disabled",
        Code.SessionClosedRequireSaslAuth => "Session closed because client failed to authenticate",
        Code.QuotaExceeded => "Quota has exceeded",
        Code.Throttled => "Op throttled due to high load",
        Code.RequestTimeout => "Unknown error -122",
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
                var (data, stat) = await (await Zk()).GetDataOrNullAsync(Path(1), f.Contains('w'));
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
                var (data, stat) = await (await Zk()).GetDataOrNullAsync("/zookeeper/config", f.Contains('w'));
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
            case "version":
                _out.WriteLine("ZooKeeper CLI version: 3.8.0 (samsa zkcli)");
                break;
            case "close":
                await CloseAsync(printEvent: true);
                break;
            case "addWatch":
            {
                // AddWatchCommand: exactly one path; the mode's name in any case
                if (a.Count != 2) throw new CliException(UsageText());
                var mode = AddWatchMode.PersistentRecursive;
                if (v.TryGetValue('m', out var m))
                    mode = m.ToUpperInvariant() switch
                    {
                        "PERSISTENT" => AddWatchMode.Persistent,
                        "PERSISTENT_RECURSIVE" => AddWatchMode.PersistentRecursive,
                        _ => throw new CliException(UsageText()),
                    };
                await (await Zk()).AddWatchAsync(a[1], mode);
                break;
            }
            case "removewatches":
            {
                // RemoveWatchesCommand: -c, else -d, else any; -l without asking the server
                if (a.Count < 2) throw new CliException(UsageText());
                var type = f.Contains('c') ? WatcherType.Children : f.Contains('d') ? WatcherType.Data : WatcherType.Any;
                await (await Zk()).RemoveAllWatchesAsync(a[1], type, f.Contains('l'));
                break;
            }
        }
    }

    /// <summary>ReconfigCommand: its options are words (-file, -members, -add, -remove) besides -s and -v,
    /// checked in upstream's order before the request; the new configuration is printed as committed.</summary>
    private async Task ReconfigAsync(string[] words)
    {
        string usage = "reconfig " + Commands["reconfig"].Usage;
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        bool stats = false;
        for (int i = 1; i < words.Length; i++)
        {
            string w = words[i];
            if (w.Length < 2 || w[0] != '-' || char.IsDigit(w[1])) continue;   // arguments are ignored
            string name = w[1..];
            if (name == "s") { stats = true; continue; }
            // commons-cli: these names whole, or -vVALUE; an option word is never taken as a value
            string? key = name is "file" or "members" or "add" or "remove" or "v" ? name : name[0] == 'v' ? "v" : null;
            if (key is not null)
            {
                string? value = key == "v" && name.Length > 1 ? name[1..]
                    : i + 1 < words.Length && !(words[i + 1].Length > 1 && words[i + 1][0] == '-' && !char.IsDigit(words[i + 1][1])) ? words[++i] : null;
                if (value is null) throw new CliException($"org.apache.commons.cli.MissingArgumentException: Missing argument for option: {key}");
                values[key] = value;
                continue;
            }
            throw new CliException($"org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: {w}");
        }
        bool file = values.ContainsKey("file"), members = values.ContainsKey("members"), add = values.ContainsKey("add"), remove = values.ContainsKey("remove");
        if (!file && !members && !add && !remove) throw new CliException(usage);
        long version = -1;
        if (values.TryGetValue("v", out var vs) && !long.TryParse(vs, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out version))
            throw new CliException("-v must be followed by a long (configuration version)");
        if ((file || members) && (add || remove))
            throw new CliException("Can't use -file or -members together with -add or -remove (mixing incremental and non-incremental modes is not allowed)");
        if (file && members) throw new CliException("Can't use -file and -members together (conflicting non-incremental modes)");
        string? joining = add ? values["add"].ToLowerInvariant() : null;
        string? leaving = remove ? values["remove"].ToLowerInvariant() : null;
        string? newMembers = members ? values["members"].ToLowerInvariant() : null;
        if (file) newMembers = MembersFromFile(values["file"]);
        KeeperClient zk = await Zk();
        try
        {
            var (config, stat) = await zk.ReconfigAsync(joining, leaving, newMembers, version);
            _out.WriteLine("Committed new configuration:\n" + Encoding.UTF8.GetString(config));
            if (stats) PrintStat(stat);
        }
        catch (KeeperException e)
        {
            // the request names no path: upstream's messages end where they would print one
            throw new CliException(Describe(e.Code, ""));
        }
    }

    /// <summary>QuorumPeerConfig.parseDynamicConfig(...).toString(): the file's server lines as the
    /// QuorumVerifier string (server.N lines, then version in hex).</summary>
    private static string MembersFromFile(string path)
    {
        try
        {
            var props = Samsa.Kafka.Broker.Config.JavaProperties.Load(path);
            var text = new StringBuilder();
            foreach (var (k, val) in props)
                if (k.StartsWith("server.", StringComparison.Ordinal) || k == "version") text.Append(k).Append('=').Append(val).Append('\n');
            var q = Samsa.Keeper.Server.Quorum.QuorumConfig.ParseVerifier(text.ToString());
            if (q.Servers.Count == 0) throw new Samsa.Keeper.Server.KeeperConfigException("No server failure");
            return q.VerifierString();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliException($"Error processing {path}{path} (No such file or directory)");
        }
        catch (Exception e) when (e is Samsa.Keeper.Server.KeeperConfigException or FormatException or ArgumentException)
        {
            throw new CliException($"Error processing {path}{e.Message}");
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
