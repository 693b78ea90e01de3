using System.Net;
using System.Text.Json;
using Samsa.Net;

namespace Samsa.Keeper.Server;

/// <summary>Upstream's AdminServer (admin.enableServer, admin.serverAddress, admin.serverPort):
/// GET /commands lists the commands, GET /commands/&lt;name&gt; answers one as JSON with "command"
/// and "error" fields, under upstream's command names and their four-letter aliases. A small
/// HTTP server: Samsa.Net.HttpGetListener (GET only, one request per connection).</summary>
public sealed class AdminServer : IAsyncDisposable
{
    private readonly KeeperServer _server;
    private readonly HttpGetListener _http;

    private static readonly (string Name, string? Alias)[] Commands =
    {
        // upstream 3.8's Commands, as a live Apache 3.8.0 AdminServer lists them
        ("configuration", "conf"), ("connection_stat_reset", "crst"), ("connections", "cons"), ("dirs", null),
        ("dump", null), ("environment", "envi"), ("get_trace_mask", "gtmk"), ("hash", null), ("initial_configuration", "icfg"),
        ("is_read_only", "isro"), ("last_snapshot", "lsnp"), ("leader", "lead"), ("monitor", "mntr"),
        ("observer_connection_stat_reset", "orst"), ("observers", "obsr"), ("ruok", null), ("server_stats", "srvr"),
        ("set_trace_mask", "stmk"), ("stat_reset", "srst"), ("stats", "stat"), ("system_properties", "sysp"),
        ("voting_view", null), ("watch_summary", "wchs"), ("watches", "wchc"), ("watches_by_path", "wchp"), ("zabstate", null),
    };

    public AdminServer(KeeperServer server, IPEndPoint endpoint)
    {
        _server = server;
        _http = new HttpGetListener("keeper admin server", endpoint, async (path, query, _) =>
        {
            var (status, body) = await HandleAsync(path, query).ConfigureAwait(false);
            return HttpAnswer.Text(status, "application/json", body);
        });
    }

    public IPEndPoint LocalEndPoint => _http.LocalEndPoint;

    public void Start() => _http.Start();

    public async Task<(int Status, string Body)> HandleAsync(string path, string query = "")
    {
        var (status, answer) = await AnswerAsync(path, query).ConfigureAwait(false);
        return (status, Json(answer));
    }

    /// <summary>The answer to GET <paramref name="path"/> before it is serialized.</summary>
    internal async Task<(int Status, Dictionary<string, object?> Answer)> AnswerAsync(string path, string query = "")
    {
        path = path.TrimEnd('/');
        if (path == "/commands")
        {
            var links = Commands.Select(c => $"/commands/{c.Name}").ToList();
            return (200, new Dictionary<string, object?> { ["commands"] = links });
        }
        if (!path.StartsWith("/commands/", StringComparison.Ordinal))
            return (404, new Dictionary<string, object?> { ["error"] = "Unknown path" });
        string name = path.Substring("/commands/".Length);
        var cmd = Commands.FirstOrDefault(c => c.Name == name || c.Alias == name);
        if (cmd.Name is null)
            return (404, new Dictionary<string, object?> { ["command"] = name, ["error"] = "Unknown command: " + name });
        if (cmd.Name == "set_trace_mask")
        {
            // upstream SetTraceMaskCommand: ?traceMask=<long>, else this error (status 200)
            string? arg = query.Split('&').Select(kv => kv.Split('=', 2)).Where(kv => kv.Length == 2 && kv[0] == "traceMask").Select(kv => kv[1]).FirstOrDefault();
            if (!long.TryParse(arg, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out long mask))
                return (200, new Dictionary<string, object?> { ["error"] = "setTraceMask requires long traceMask argument", ["command"] = cmd.Name });
            await _server.RunOnLoopAsync(() => _server.TraceMask = mask).ConfigureAwait(false);
        }
        var result = await _server.RunOnLoopAsync(() => Run(cmd.Name)).ConfigureAwait(false);
        result["command"] = cmd.Name;
        result["error"] = null;
        return (200, result);
    }

    /// <summary>Upstream's command names (tests run every one).</summary>
    internal static IEnumerable<string> CommandNames => Commands.Select(c => c.Name);

    /// <summary>An answer as JSON, through the source-generated AdminJsonContext (NativeAOT-safe).</summary>
    internal static string Json(Dictionary<string, object?> answer) => JsonSerializer.Serialize(answer, AdminJsonContext.Default.DictionaryStringObject);

    private Dictionary<string, object?> Run(string name)
    {
        var s = _server;
        var cfg = s.Config;
        var r = new Dictionary<string, object?>();
        switch (name)
        {
            case "ruok":
            case "observer_connection_stat_reset":   // no observer connects to a Samsa leader (ObserverMaster)
                break;
            case "get_trace_mask":
            case "set_trace_mask":
                r["tracemask"] = s.TraceMask;
                break;
            case "hash":
                r["digests"] = s.Tree.DigestLog.Select(d => (object)new Dictionary<string, object?> { ["zxid"] = d.Item1, ["digest"] = cfg.DigestEnabled ? d.Item2 : 0 }).ToList();
                break;
            case "initial_configuration":
                r["initial_configuration"] = string.Concat(cfg.Raw.Select(kv => $"{kv.Key}={kv.Value}\n"));
                break;
            case "observers":
                r["synced_observers"] = s.LeaderStats?.SyncedObservers ?? 0;
                r["observers"] = new List<object>();
                break;
            case "system_properties":
                // the JVM's system properties upstream; the process's equivalents here
                foreach (var line in FourLetterWords.Run(s, "envi").Split('\n').Skip(1))
                {
                    int eq = line.IndexOf('=');
                    if (eq > 0) r[line.Substring(0, eq)] = line.Substring(eq + 1);
                }
                break;
            case "voting_view":
                r["current_config"] = s.IsFollower || s.QuorumLeader is not null
                    ? cfg.Quorum.Voters.ToDictionary(v => v.Id.ToString(System.Globalization.CultureInfo.InvariantCulture),
                        v => (object?)new List<object> { $"{v.Host}:{v.QuorumPort}:{v.ElectionPort}:participant" + (v.ClientPort is { } cp ? $";{v.ClientHost ?? "0.0.0.0"}:{cp}" : "") })
                    : new Dictionary<string, object?>();
                break;
            case "zabstate":
                // upstream ZabStateCommand: "" and false outside a quorum; a serving member is in broadcast
                bool quorum = s.IsFollower || s.QuorumLeader is not null;
                r["voting"] = quorum;
                r["zabstate"] = quorum ? (s.Serving ? "broadcast" : "election") : "";
                break;
            case "is_read_only":
                r["read_only"] = s.ReadOnlyActive;
                break;
            case "connection_stat_reset":
                FourLetterWords.Run(s, "crst");
                break;
            case "stat_reset":
                FourLetterWords.Run(s, "srst");
                break;
            case "configuration":
                r["client_port"] = cfg.ClientPort;
                r["data_dir"] = cfg.SnapDir;
                r["data_dir_size"] = DirSize(cfg.SnapDir);
                r["data_log_dir"] = cfg.LogDir;
                r["data_log_size"] = DirSize(cfg.LogDir);
                r["tick_time"] = cfg.TickTime;
                r["max_client_cnxns"] = cfg.MaxClientCnxns;
                r["min_session_timeout"] = cfg.EffectiveMinSessionTimeout;
                r["max_session_timeout"] = cfg.EffectiveMaxSessionTimeout;
                r["server_id"] = 0;
                break;
            case "dirs":
                r["datadir_size"] = DirSize(cfg.SnapDir);
                r["logdir_size"] = DirSize(cfg.LogDir);
                break;
            case "environment":
                foreach (var line in FourLetterWords.Run(s, "envi").Split('\n').Skip(1))
                {
                    int eq = line.IndexOf('=');
                    if (eq > 0) r[line.Substring(0, eq)] = line.Substring(eq + 1);
                }
                break;
            case "leader":
                // upstream LeaderCommand: quorum members only
                if (s.QuorumLeader is { } ql)
                {
                    r["is_leader"] = s.ServerState == "leader";
                    r["leader_id"] = ql.Id;
                    r["leader_ip"] = ql.Host;
                }
                else r["error"] = "server is not initialized";
                break;
            case "monitor":
                foreach (var line in FourLetterWords.Run(s, "mntr").Split('\n'))
                {
                    var kv = line.Split('\t');
                    if (kv.Length != 2) continue;
                    string key = kv[0].StartsWith("zk_", StringComparison.Ordinal) ? kv[0].Substring(3) : kv[0];
                    r[key] = long.TryParse(kv[1], out long n) ? n : double.TryParse(kv[1], System.Globalization.CultureInfo.InvariantCulture, out double d) ? d : kv[1];
                }
                break;
            case "server_stats":
            case "stats":
                r["version"] = FourLetterWords.Version;
                r["read_only"] = s.ReadOnlyActive;
                r["server_stats"] = ServerStatsJson(s);
                // upstream SrvrCommand: a leader adds its proposal BufferStats
                if (s.LeaderStats is { } ls)
                    r["proposal_stats"] = new Dictionary<string, object?>
                    {
                        ["last_buffer_size"] = ls.LastProposalSize, ["min_buffer_size"] = ls.MinProposalSize, ["max_buffer_size"] = ls.MaxProposalSize,
                    };
                r["node_count"] = s.Tree.ReportedNodeCount;
                if (name == "stats") r["connections"] = Connections(s);
                break;
            case "connections":
                r["connections"] = Connections(s);
                r["secure_connections"] = new List<object>();
                break;
            case "dump":
                r["expiry_time_to_session_ids"] = s.Sessions.Values.GroupBy(x => x.ExpireTime)
                    .ToDictionary(g => (DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + g.Key - Environment.TickCount64).ToString(), g => g.Select(x => x.Id).ToList());
                r["session_id_to_ephemeral_paths"] = s.Tree.AllEphemerals.ToDictionary(e => e.Key.ToString(), e => e.Value.OrderBy(p => p, StringComparer.Ordinal).ToList());
                break;
            case "watch_summary":
            {
                var watchers = new HashSet<IWatcher>(ReferenceEqualityComparer.Instance);
                int paths = 0, total = 0;
                foreach (var (_, ws) in s.Tree.DataWatches.ByPath) { paths++; foreach (var w in ws) { watchers.Add(w); total++; } }
                r["num_connections"] = watchers.Count;
                r["num_paths"] = paths;
                r["num_total_watches"] = total;
                break;
            }
            case "watches":
                r["session_id_to_watched_paths"] = s.Connections.Where(c => s.Tree.DataWatches.PathsOf(c).Any())
                    .ToDictionary(c => c.SessionId.ToString(), c => s.Tree.DataWatches.PathsOf(c).ToList());
                break;
            case "watches_by_path":
                r["path_to_session_ids"] = s.Tree.DataWatches.ByPath.ToDictionary(kv => kv.Key,
                    kv => kv.Value.OfType<ServerConnection>().Select(c => c.SessionId).ToList());
                break;
            case "last_snapshot":
                r["zxid"] = "0x" + s.LastSnapshotZxid.ToString("x");
                r["timestamp"] = s.LastSnapshotTime;
                break;
        }
        return r;
    }

    private static Dictionary<string, object?> ServerStatsJson(KeeperServer s)
    {
        var st = s.Stats;
        return new Dictionary<string, object?>
        {
            ["packets_sent"] = st.PacketsSent,
            ["packets_received"] = st.PacketsReceived,
            ["max_latency"] = st.MaxLatency,
            ["min_latency"] = st.MinLatency == long.MaxValue ? 0 : st.MinLatency,
            ["avg_latency"] = st.Requests == 0 ? 0.0 : (double)st.TotalLatency / st.Requests,
            ["outstanding_requests"] = s.Connections.Sum(c => Math.Max(0, c.OutstandingRequests)),
            ["last_processed_zxid"] = s.LastProcessedZxid,
            ["server_state"] = s.ServerState,
            ["num_alive_client_connections"] = s.Connections.Count,
            ["uptime"] = (long)(DateTimeOffset.UtcNow - s.StartedAt).TotalMilliseconds,
        };
    }

    private static List<Dictionary<string, object?>> Connections(KeeperServer s) => s.Connections.Select(c => new Dictionary<string, object?>
    {
        ["remote_socket_address"] = c.RemoteEndPoint is IPEndPoint ip ? $"{Auth.RemoteIp(ip)}:{ip.Port}" : null,
        ["interest_ops"] = 1,
        ["outstanding_requests"] = Math.Max(0, c.OutstandingRequests),
        ["packets_received"] = c.PacketsReceived,
        ["packets_sent"] = c.PacketsSent,
        ["session_id"] = c.Handshaken ? "0x" + c.SessionId.ToString("x") : null,
        ["last_operation"] = c.LastOp,
        ["session_timeout"] = c.SessionTimeout,
        ["last_cxid"] = "0x" + c.LastCxid.ToString("x"),
        ["last_zxid"] = "0x" + c.LastZxid.ToString("x"),
        ["min_latency"] = c.LatencyCount == 0 ? 0 : c.MinLatency,
        ["avg_latency"] = c.LatencyCount == 0 ? 0 : c.TotalLatency / c.LatencyCount,
        ["max_latency"] = c.MaxLatency,
    }).ToList();

    private static long DirSize(string dir) =>
        string.IsNullOrEmpty(dir) || !Directory.Exists(dir) ? 0 : new DirectoryInfo(dir).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length);

    public ValueTask DisposeAsync() => _http.DisposeAsync();
}
