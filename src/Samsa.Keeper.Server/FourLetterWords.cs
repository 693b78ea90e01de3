using System.Net;
using System.Text;

namespace Samsa.Keeper.Server;

/// <summary>Upstream's four-letter words (FourLetterCommands), answered on the client port when a
/// connection's first four bytes spell one. Only whitelisted words run (4lw.commands.whitelist).</summary>
public static class FourLetterWords
{
    public const string Version = "3.9.3-samsa-keeper";

    public static readonly string[] All = { "ruok", "srvr", "stat", "mntr", "conf", "cons", "crst", "envi", "dirs", "dump", "wchs", "wchc", "wchp", "isro", "srst", "gtmk", "stmk", "hash" };

    public static string? Decode(int word)
    {
        Span<byte> b = stackalloc byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(b, word);
        string s = Encoding.ASCII.GetString(b);
        return Array.IndexOf(All, s) >= 0 ? s : null;
    }

    public static Task<string> RunAsync(KeeperServer server, string cmd, EndPoint? local) =>
        cmd == "ruok" ? Task.FromResult("imok") : server.RunOnLoopAsync(() => Run(server, cmd));

    private static string Hex(long v) => "0x" + v.ToString("x");

    private static string StatsBlock(KeeperServer s)
    {
        var st = s.Stats;
        var sb = new StringBuilder();
        sb.Append($"Latency min/avg/max: {(st.MinLatency == long.MaxValue ? 0 : st.MinLatency)}/{AvgLatency(st)}/{st.MaxLatency}\n");
        sb.Append($"Received: {st.PacketsReceived}\n");
        sb.Append($"Sent: {st.PacketsSent}\n");
        sb.Append($"Connections: {s.Connections.Count}\n");
        sb.Append($"Outstanding: {s.Connections.Sum(c => Math.Max(0, c.OutstandingRequests))}\n");
        sb.Append($"Zxid: {Hex(s.LastProcessedZxid)}\n");
        sb.Append($"Mode: {s.ServerState}\n");
        sb.Append($"Node count: {s.Tree.ReportedNodeCount}\n");
        // upstream StatCommand: a leader adds its proposal sizes (BufferStats, -1 before the first)
        if (s.LeaderStats is { } ls) sb.Append(ls.ProposalSizesLine);
        return sb.ToString();
    }

    private static string AvgLatency(ServerStats st) =>
        (st.Requests == 0 ? 0.0 : (double)st.TotalLatency / st.Requests).ToString("0.0###", System.Globalization.CultureInfo.InvariantCulture);

    private static string ConnLine(ServerConnection c, bool full)
    {
        var sb = new StringBuilder();
        string remote = c.RemoteEndPoint is IPEndPoint ip ? $"/{Auth.RemoteIp(ip)}:{ip.Port}" : "/unknown";
        sb.Append($" {remote}[{(c.Handshaken ? 1 : 0)}](queued={Math.Max(0, c.OutstandingRequests)},recved={c.PacketsReceived},sent={c.PacketsSent}");
        // connections without a session yet get the short form, as upstream prints them
        if (full && c.Handshaken)
        {
            sb.Append($",sid={Hex(c.SessionId)},lop={c.LastOp},est={c.EstablishedAt.ToUnixTimeMilliseconds()},to={c.SessionTimeout}");
            if (c.LastCxid >= 0) sb.Append($",lcxid={Hex(c.LastCxid)}");
            sb.Append($",lzxid={Hex(c.LastZxid)},lresp={c.LastResponseTime},llat=0,minlat={(c.LatencyCount == 0 ? 0 : c.MinLatency)},avglat={(c.LatencyCount == 0 ? 0 : c.TotalLatency / c.LatencyCount)},maxlat={c.MaxLatency}");
        }
        sb.Append(")\n");
        return sb.ToString();
    }

    private static long DirSize(string dir) =>
        string.IsNullOrEmpty(dir) || !Directory.Exists(dir) ? 0 : new DirectoryInfo(dir).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length);

    public static string Run(KeeperServer s, string cmd)
    {
        var cfg = s.Config;
        // upstream: the commands that read the server answer ZK_NOT_SERVING while a quorum member
        // is not synced with a leader (electing, or its leader gone)
        if (!s.Serving && !s.ReadOnlyActive && cmd is "srvr" or "stat" or "mntr" or "cons" or "crst" or "srst" or "dump" or "wchs" or "wchc" or "wchp" or "hash")
            return "This ZooKeeper instance is not currently serving requests\n";
        switch (cmd)
        {
            case "ruok": return "imok";
            // upstream IsroCommand: "ro" from a read-only server, "null" while none runs
            case "isro": return s.IsReadOnlyAnswer;
            // upstream TraceMaskCommand: ZooTrace's text trace level, decimal, no newline
            case "gtmk": return s.TraceMask.ToString(System.Globalization.CultureInfo.InvariantCulture);
            case "hash":
            {
                // upstream DigestCommand: "zxid-in-hex: digest" per entry of DataTree.digestLog;
                // with zookeeper.digest.enabled=false every node hashes to 0, so the digest is 0
                var sb = new StringBuilder();
                foreach (var (zxid, digest) in s.Tree.DigestLog)
                    sb.Append(zxid.ToString("x")).Append(": ").Append(cfg.DigestEnabled ? digest : 0).Append('\n');
                return sb.ToString();
            }
            case "srvr":
                return $"Zookeeper version: {Version}\n" + StatsBlock(s);
            case "stat":
            {
                var sb = new StringBuilder($"Zookeeper version: {Version}\nClients:\n");
                foreach (var c in s.Connections) sb.Append(ConnLine(c, false));
                sb.Append('\n');
                sb.Append(StatsBlock(s));
                return sb.ToString();
            }
            case "cons":
            {
                var sb = new StringBuilder();
                foreach (var c in s.Connections) sb.Append(ConnLine(c, true));
                sb.Append('\n');
                return sb.ToString();
            }
            case "crst":
                foreach (var c in s.Connections) { c.PacketsReceived = c.PacketsSent = 0; c.MinLatency = long.MaxValue; c.MaxLatency = c.TotalLatency = c.LatencyCount = 0; }
                return "Connection stats reset.\n";
            case "srst":
                s.Stats.Reset();
                s.Metrics.Reset();
                return "Server stats reset.\n";
            case "conf":
                return $"clientPort={cfg.ClientPort}\nsecureClientPort=-1\ndataDir={cfg.SnapDir}\ndataDirSize={DirSize(cfg.SnapDir)}\n"
                    + $"dataLogDir={cfg.LogDir}\ndataLogSize={DirSize(cfg.LogDir)}\ntickTime={cfg.TickTime}\nmaxClientCnxns={cfg.MaxClientCnxns}\n"
                    + $"minSessionTimeout={cfg.EffectiveMinSessionTimeout}\nmaxSessionTimeout={cfg.EffectiveMaxSessionTimeout}\nclientPortListenBacklog=-1\n"
                    + (s.IsFollower ? Quorum.Reconfig.QuorumConf(cfg) : "serverId=0\n");
            case "envi":
                return "Environment:\n"
                    + $"zookeeper.version={Version}\nhost.name={Dns.GetHostName()}\njava.version=n/a (.NET {Environment.Version})\n"
                    + $"os.name={Environment.OSVersion.Platform}\nos.version={Environment.OSVersion.Version}\nuser.name={Environment.UserName}\n"
                    + $"user.dir={Environment.CurrentDirectory}\nos.memory.free={GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 1048576}MB\n";
            case "dirs":
                return $"datadir_size: {DirSize(cfg.SnapDir)}\nlogdir_size: {DirSize(cfg.LogDir)}\n";
            case "dump":
            {
                var sb = new StringBuilder("SessionTracker dump:\n");
                var byExpiry = s.Sessions.Values.GroupBy(x => x.ExpireTime).OrderBy(g => g.Key).ToList();
                sb.Append($"Session Sets ({byExpiry.Count})/({s.Sessions.Count}):\n");
                foreach (var g in byExpiry)
                {
                    sb.Append($"{g.Count()} expire at {DateTimeOffset.UtcNow.AddMilliseconds(g.Key - Environment.TickCount64):ddd MMM dd HH:mm:ss 'UTC' yyyy}:\n");
                    foreach (var x in g) sb.Append($"\t{Hex(x.Id)}\n");
                }
                var eph = s.Tree.AllEphemerals.ToList();
                sb.Append($"ephemeral nodes dump:\nSessions with Ephemerals ({eph.Count}):\n");
                foreach (var (id, paths) in eph)
                {
                    sb.Append($"{Hex(id)}:\n");
                    foreach (var p in paths.OrderBy(p => p, StringComparer.Ordinal)) sb.Append($"\t{p}\n");
                }
                var conns = s.Connections.ToList();
                sb.Append($"Connections dump:\nConnections Sets ({(conns.Count == 0 ? 0 : 1)})/({conns.Count}):\n");
                if (conns.Count > 0)
                {
                    sb.Append($"{conns.Count} expire at {DateTimeOffset.UtcNow.AddMilliseconds(cfg.TickTime):ddd MMM dd HH:mm:ss 'UTC' yyyy}:\n");
                    foreach (var c in conns)
                        sb.Append($"\tip: /{Auth.RemoteIp(c.RemoteEndPoint)}:{(c.RemoteEndPoint as IPEndPoint)?.Port} sessionId: {Hex(c.SessionId)}\n");
                }
                return sb.ToString();
            }
            case "wchs":
            {
                var watchers = new HashSet<IWatcher>(ReferenceEqualityComparer.Instance);
                var paths = new HashSet<string>(StringComparer.Ordinal);
                int total = 0;
                // upstream's DataTree.getWatchesSummary covers the data-watch table only
                foreach (var (p, ws) in s.Tree.DataWatches.ByPath) { paths.Add(p); foreach (var w in ws) { watchers.Add(w); total++; } }
                return $"{watchers.Count} connections watching {paths.Count} paths\nTotal watches:{total}\n";
            }
            case "wchc":
            {
                var sb = new StringBuilder();
                foreach (var c in s.Connections)
                {
                    var paths = s.Tree.DataWatches.PathsOf(c).ToList();
                    if (paths.Count == 0) continue;
                    sb.Append($"{Hex(c.SessionId)}\n");
                    foreach (var p in paths) sb.Append($"\t{p}\n");
                }
                sb.Append('\n');
                return sb.ToString();
            }
            case "wchp":
            {
                var byPath = new SortedDictionary<string, HashSet<long>>(StringComparer.Ordinal);
                foreach (var (p, ws) in s.Tree.DataWatches.ByPath)
                {
                    if (!byPath.TryGetValue(p, out var set)) byPath[p] = set = new HashSet<long>();
                    foreach (var w in ws) if (w is ServerConnection c) set.Add(c.SessionId);
                }
                var sb = new StringBuilder();
                foreach (var (p, ids) in byPath)
                {
                    sb.Append($"{p}\n");
                    foreach (var id in ids) sb.Append($"\t{Hex(id)}\n");
                }
                sb.Append('\n');
                return sb.ToString();
            }
            case "mntr":
            {
                var st = s.Stats;
                var sb = new StringBuilder();
                void Kv(string k, object v) => sb.Append(k).Append('\t').Append(v).Append('\n');
                Kv("zk_version", Version);
                Kv("zk_server_state", s.ServerState);
                Kv("zk_avg_latency", AvgLatency(st));
                Kv("zk_uptime", (long)(DateTimeOffset.UtcNow - s.StartedAt).TotalMilliseconds);
                Kv("zk_max_latency", st.MaxLatency);
                Kv("zk_min_latency", st.MinLatency == long.MaxValue ? 0 : st.MinLatency);
                Kv("zk_packets_received", st.PacketsReceived);
                Kv("zk_packets_sent", st.PacketsSent);
                Kv("zk_num_alive_connections", s.Connections.Count);
                Kv("zk_outstanding_requests", s.Connections.Sum(c => Math.Max(0, c.OutstandingRequests)));
                Kv("zk_znode_count", s.Tree.ReportedNodeCount);
                Kv("zk_watch_count", s.Tree.DataWatches.Count + s.Tree.ChildWatches.Count);
                Kv("zk_ephemerals_count", s.Tree.EphemeralCount);
                Kv("zk_approximate_data_size", s.Tree.ApproximateDataSize);
                Kv("zk_open_file_descriptor_count", System.Diagnostics.Process.GetCurrentProcess().HandleCount);
                Kv("zk_global_sessions", s.SessionCount);
                Kv("zk_local_sessions", 0);
                if (s.LeaderStats is { } ls)
                {
                    // upstream LeaderZooKeeperServer's gauges
                    Kv("zk_learners", ls.Learners);
                    Kv("zk_synced_followers", ls.SyncedFollowers);
                    Kv("zk_synced_non_voting_followers", ls.SyncedNonVotingFollowers);
                    Kv("zk_synced_observers", ls.SyncedObservers);
                    Kv("zk_pending_syncs", ls.PendingSyncs);
                    Kv("zk_leader_uptime", ls.UptimeMs);
                    Kv("zk_last_proposal_size", ls.LastProposalSize);
                    Kv("zk_max_proposal_size", ls.MaxProposalSize);
                    Kv("zk_min_proposal_size", ls.MinProposalSize);
                }
                // Debian's 3.8.0 followers and observers print no proposal sizes and no
                // synced_observers (their gauges answer null: no ObserverMaster), checked live
                else if (!s.IsFollower) Kv("zk_last_proposal_size", -1);
                // upstream QuorumZooKeeperServer's quorum_size (voting members) in every quorum role
                if (s.IsFollower) Kv("zk_quorum_size", cfg.Quorum.Voters.Count());
                // every other key upstream 3.8 prints (KeeperMetrics): measured summaries, else 0
                var printed = new HashSet<string>(StringComparer.Ordinal);
                foreach (var line in sb.ToString().Split('\n')) if (line.Length > 3) printed.Add(line.Substring(3, line.IndexOf('\t') - 3));
                s.Metrics.AppendMntr(sb, printed);
                return sb.ToString();
            }
            default:
                return "";
        }
    }
}
