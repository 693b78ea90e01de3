using System.Globalization;
using System.Text;

namespace Samsa.Keeper.Server.Quorum;

public enum LearnerType { Participant, Observer }

/// <summary>One <c>server.N=host:quorumPort:electionPort[:role][;[clientHost:]clientPort]</c> line,
/// parsed as upstream's QuorumPeer.QuorumServer does (3.8; one address per server: the
/// multiAddress feature is off by default upstream and refused here).</summary>
public sealed record QuorumServer(long Id, string Host, int QuorumPort, int ElectionPort, LearnerType Type, string? ClientHost, int? ClientPort)
{
    /// <summary>Upstream QuorumServer.toString: the form sent in election notifications and written
    /// to zoo.cfg.dynamic files; the client part only when the server line carried one.</summary>
    public string ToConfigValue()
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"{DelimitedHost(Host)}:{QuorumPort}:{ElectionPort}");
        sb.Append(Type == LearnerType.Observer ? ":observer" : ":participant");
        if (ClientPort is int cp) sb.Append(CultureInfo.InvariantCulture, $";{DelimitedHost(ClientHost ?? "0.0.0.0")}:{cp}");
        return sb.ToString();
    }

    private static string DelimitedHost(string h) => h.Contains(':') ? "[" + h + "]" : h;

    public static QuorumServer Parse(long id, string value)
    {
        string wrong = value + " does not have the form server_config or server_config;client_config"
            + " where server_config is host:port:port or host:port:port:type and client_config is port or host:port";
        var serverClient = value.Split(';');
        if (serverClient.Length > 2) throw new KeeperConfigException(wrong);
        if (serverClient[0].Contains('|'))
            throw new KeeperConfigException($"server.{id}: several addresses per server (multiAddress.enabled) are not supported by the Keeper");
        string? clientHost = null;
        int? clientPort = null;
        if (serverClient.Length == 2)
        {
            var cp = HostAndPort(serverClient[1].Trim());
            if (cp.Length > 2) throw new KeeperConfigException(wrong);
            clientHost = cp.Length == 2 ? cp[0] : "0.0.0.0";
            clientPort = Port(cp[^1], value);
        }
        var parts = HostAndPort(serverClient[0].Trim());
        if (parts.Length < 3 || parts.Length > 4) throw new KeeperConfigException(wrong);
        var type = LearnerType.Participant;
        if (parts.Length == 4)
        {
            type = parts[3].ToLowerInvariant() switch
            {
                "observer" => LearnerType.Observer,
                "participant" => LearnerType.Participant,
                _ => throw new KeeperConfigException($"Unrecognised peertype: {parts[3]}"),
            };
        }
        return new QuorumServer(id, parts[0], Port(parts[1], value), Port(parts[2], value), type, clientHost, clientPort);
    }

    private static int Port(string s, string line) =>
        int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out int p) && p is > 0 and < 65536
            ? p : throw new KeeperConfigException($"bad port '{s}' in server line '{line}'");

    /// <summary>Upstream ConfigUtils.getHostAndPort: "[v6]:a:b" keeps the bracketed host whole.</summary>
    private static string[] HostAndPort(string s)
    {
        if (s.StartsWith('['))
        {
            int close = s.IndexOf(']');
            if (close < 0) throw new KeeperConfigException(s + " starts with '[' but has no matching ']'");
            string host = s.Substring(1, close - 1);
            string rest = s.Substring(close + 1);
            if (rest.Length == 0) return [host];
            if (rest[0] != ':') throw new KeeperConfigException(s + " does not have : after ]");
            return [host, .. rest.Substring(1).Split(':')];
        }
        return s.Split(':');
    }
}

/// <summary>The quorum half of zoo.cfg (upstream QuorumPeerConfig): server.N lines, myid, initLimit,
/// syncLimit, electionAlg, peerType, standaloneEnabled, reconfigEnabled, dynamicConfigFile,
/// quorumListenOnAllIPs. Keys that ask for something the Keeper does not implement are collected
/// in <see cref="Unsupported"/> and refused at start (<see cref="Validate"/>).</summary>
public sealed partial class QuorumConfig
{
    /// <summary>The committed membership. A reconfiguration replaces the whole dictionary (never
    /// edits it), so readers on other threads see either the old or the new one.</summary>
    public SortedDictionary<long, QuorumServer> Servers = new();
    /// <summary>From dataDir/myid (read by <see cref="Validate"/>); -1 until then.</summary>
    public long MyId = -1;
    public int InitLimit = -1;
    public int SyncLimit = -1;
    public int ElectionAlg = 3;
    public LearnerType PeerType = LearnerType.Participant;
    public bool StandaloneEnabled = true;
    public bool QuorumListenOnAllIPs;
    public string? DynamicConfigFile;
    /// <summary>The QuorumVerifier version (hex "version=" line of a dynamic config; 0 for a static one).</summary>
    public long Version;
    /// <summary>localSessionsEnabled (upstream default false).</summary>
    public bool LocalSessionsEnabled;
    /// <summary>localSessionsUpgradingEnabled: false unless set, as upstream's QuorumPeerConfig (QuorumPeer's
    /// own field defaults to true, but QuorumPeerMain sets it from the config); matters only with local sessions.</summary>
    public bool LocalSessionsUpgradingEnabled;
    /// <summary>readonlymode.enabled: a member without a quorum serves read-only clients.</summary>
    public bool ReadOnlyModeEnabled;
    public List<string> Unsupported = new();
    /// <summary>What upstream would log as a warning while reading the config (the caller logs them).</summary>
    public List<string> Warnings = new();

    private static string Role(LearnerType t) => t == LearnerType.Observer ? "OBSERVER" : "PARTICIPANT";

    /// <summary>True when this member observes (its server line's role, as upstream's setupPeerType decides).</summary>
    public bool IAmObserver => Servers.TryGetValue(MyId, out var me) && me.Type == LearnerType.Observer;

    public IEnumerable<QuorumServer> Voters => Servers.Values.Where(s => s.Type == LearnerType.Participant);

    /// <summary>Upstream QuorumPeerConfig: with one participant and standaloneEnabled (default) the
    /// server runs standalone even though a server line is present.</summary>
    public bool IsQuorumMode => Servers.Count > 0 && (Voters.Count() > 1 || !StandaloneEnabled);

    /// <summary>Takes a quorum key; false when the key is not one.</summary>
    public bool Apply(string key, string val)
    {
        if (key.StartsWith("server.", StringComparison.Ordinal))
        {
            if (!long.TryParse(key.AsSpan("server.".Length), NumberStyles.None, CultureInfo.InvariantCulture, out long id))
                throw new KeeperConfigException($"{key}: the part after 'server.' must be a number (the server id)");
            Servers[id] = QuorumServer.Parse(id, val);
            return true;
        }
        int I() => int.TryParse(val, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v : throw new KeeperConfigException($"{key}={val}: not a number");
        switch (key)
        {
            case "initLimit": InitLimit = I(); return true;
            case "syncLimit": SyncLimit = I(); return true;
            case "electionAlg":
                ElectionAlg = I();
                // 3.8 has only FastLeaderElection (algorithms 0-2 were removed in 3.6: ZOOKEEPER-3465)
                if (ElectionAlg != 3) Unsupported.Add($"electionAlg={val} (only 3, FastLeaderElection, exists in ZooKeeper 3.8)");
                return true;
            case "peerType":
                PeerType = val.Trim().ToLowerInvariant() switch
                {
                    "observer" => LearnerType.Observer,
                    "participant" => LearnerType.Participant,
                    _ => throw new KeeperConfigException($"Unrecognised peertype: {val}"),
                };
                return true;
            case "standaloneEnabled": StandaloneEnabled = bool.Parse(val); return true;
            case "observerMasterPort":
                // upstream 3.6+: followers serve observers on this port (ObserverMaster); the Keeper's
                // observers connect to the leader only, and its followers serve no observers
                if (I() > 0) Unsupported.Add($"observerMasterPort={val} (observers syncing from a follower, ObserverMaster)");
                return true;
            case "quorumListenOnAllIPs": QuorumListenOnAllIPs = bool.Parse(val); return true;
            case "dynamicConfigFile":
                // read by LoadDynamicConfigFile once the whole zoo.cfg is parsed (Quorum/Reconfig.cs)
                DynamicConfigFile = val;
                return true;
            case "multiAddress.enabled": case "zookeeper.multiAddress.enabled":
                if (bool.Parse(val)) Unsupported.Add($"{key}={val} (several addresses per server)");
                return true;
            // upstream QuorumPeerConfig keys (KeeperServer.LocalSessions)
            case "localSessionsEnabled": LocalSessionsEnabled = bool.Parse(val); return true;
            case "localSessionsUpgradingEnabled": LocalSessionsUpgradingEnabled = bool.Parse(val); return true;
            // upstream reads only the system property readonlymode.enabled (-D in SERVER_JVMFLAGS);
            // a zoo.cfg line becomes "zookeeper.readonlymode.enabled" there, which nothing reads.
            // The Keeper honours both spellings, from zoo.cfg and from -D (KeeperServer.ReadOnly).
            case "readonlymode.enabled": case "zookeeper.readonlymode.enabled": ReadOnlyModeEnabled = bool.Parse(val); return true;
        }
        if (key.StartsWith("quorum.auth.", StringComparison.Ordinal))
        {
            // the switches that turn SASL between peers on are refused; principals and login
            // contexts alone change nothing while all three are off (upstream's defaults)
            if (key is "quorum.auth.enableSasl" or "quorum.auth.learnerRequireSasl" or "quorum.auth.serverRequireSasl"
                && !val.Trim().Equals("false", StringComparison.OrdinalIgnoreCase))
                Unsupported.Add($"{key}={val} (SASL between quorum peers is not implemented by the Keeper)");
            return true;
        }
        return false;
    }

    /// <summary>The QuorumVerifier string (upstream QuorumMaj.toString) that peers send in election
    /// notifications: one server.N line each, then "version=" in hex.</summary>
    public string VerifierString()
    {
        var sb = new StringBuilder();
        foreach (var s in Servers.Values) sb.Append(CultureInfo.InvariantCulture, $"server.{s.Id}={s.ToConfigValue()}\n");
        sb.Append("version=").Append(Version.ToString("x", CultureInfo.InvariantCulture));
        return sb.ToString();
    }

    /// <summary>A QuorumVerifier string as a peer sends it (server lines and version).</summary>
    public static QuorumConfig ParseVerifier(string text)
    {
        var q = new QuorumConfig();
        foreach (var raw in text.Split('\n'))
        {
            string line = raw.Trim();
            if (line.Length == 0) continue;
            int eq = line.IndexOf('=');
            if (eq < 0) throw new KeeperConfigException($"bad line in quorum config: {line}");
            string k = line.Substring(0, eq).Trim(), v = line.Substring(eq + 1).Trim();
            if (k == "version")
                q.Version = long.TryParse(v, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out long ver) ? ver : throw new KeeperConfigException($"bad version {v}");
            else if (k.StartsWith("server.", StringComparison.Ordinal)) q.Apply(k, v);
            else throw new KeeperConfigException($"unexpected key in quorum config: {k}");
        }
        return q;
    }

    /// <summary>Upstream QuorumPeerConfig checks plus the Keeper's refusals, run before anything
    /// binds. Reads dataDir/myid in quorum mode.</summary>
    public void Validate(KeeperConfig c)
    {
        // refused in standalone mode too: a dynamicConfigFile, for one, may hold the server lines
        if (Unsupported.Count > 0) throw new KeeperConfigException($"{Unsupported[0]} is not supported by the Keeper; remove it");
        if (!IsQuorumMode) return;
        if (InitLimit <= 0) throw new KeeperConfigException("initLimit is not set");
        if (SyncLimit <= 0) throw new KeeperConfigException("syncLimit is not set");
        if (string.IsNullOrEmpty(c.DataDir)) throw new KeeperConfigException("dataDir is not set");
        string myidFile = Path.Combine(c.DataDir, "myid");
        if (!File.Exists(myidFile)) throw new KeeperConfigException($"{myidFile} file is missing");
        string myid = File.ReadAllText(myidFile).Trim();
        if (!long.TryParse(myid, NumberStyles.None, CultureInfo.InvariantCulture, out MyId))
            throw new KeeperConfigException($"serverid {myid} is not a number");
        if (!Servers.ContainsKey(MyId)) throw new KeeperConfigException($"myid {MyId} has no server.{MyId} line in the configuration");
        // upstream QuorumPeerConfig.setupClientPort: our server line's client address (";host:port",
        // the form reconfig needs) is where clients connect; a different clientPort beside it is an error
        if (Servers[MyId] is { ClientPort: int linePort } mine)
        {
            if (c.Raw.ContainsKey("clientPort") && c.ClientPort != linePort)
                throw new KeeperConfigException($"client address for this server (id = {MyId}) in static config file is {c.ClientPortAddress}:{c.ClientPort} is different from client address found in dynamic file: {mine.ClientHost}:{linePort}");
            c.ClientPort = linePort;
            if (!c.Raw.ContainsKey("clientPortAddress") && mine.ClientHost is not null) c.ClientPortAddress = mine.ClientHost;
        }
        // upstream QuorumPeerConfig.setupPeerType: the server line's role wins over peerType
        var byList = Servers[MyId].Type;
        if (byList != PeerType)
        {
            Warnings.Add($"Peer type from servers list ({Role(byList)}) doesn't match peerType ({Role(PeerType)}). Defaulting to servers list.");
            PeerType = byList;
        }
    }
}
