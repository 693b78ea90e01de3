using System.Globalization;

namespace Samsa.Keeper.Server;

/// <summary>zoo.cfg keys with upstream's defaults (QuorumPeerConfig / ServerConfig).</summary>
public sealed class KeeperConfig
{
    public int TickTime = 2000;
    public string DataDir = "";
    public string DataLogDir = "";
    public int ClientPort = 2181;
    public string ClientPortAddress = "0.0.0.0";
    /// <summary>-1 = 2 × tickTime (upstream default).</summary>
    public int MinSessionTimeout = -1;
    /// <summary>-1 = 20 × tickTime (upstream default).</summary>
    public int MaxSessionTimeout = -1;
    public int MaxClientCnxns = 60;
    public int SnapCount = 100000;
    public bool ForceSync = true;
    public long PreAllocSizeKb = 65536;
    public int AutopurgeSnapRetainCount = 3;
    public int AutopurgePurgeInterval = 0;
    /// <summary>The autopurge period in ms; -1 (the default) takes autopurge.purgeInterval's hours.
    /// No zoo.cfg key sets it: tests set it to run autopurge in seconds.</summary>
    public long AutopurgeIntervalMsOverride = -1;
    public long AutopurgeIntervalMs => AutopurgeIntervalMsOverride > 0 ? AutopurgeIntervalMsOverride : AutopurgePurgeInterval * 3600_000L;
    /// <summary>Upstream zookeeper.snapSizeLimitInKb (4 GiB): a quorum member also snapshots once
    /// the txns logged since its last snapshot pass half of it plus a random part (0 or less: off).</summary>
    public long SnapSizeLimitInKb = 4194304;
    /// <summary>Upstream's default whitelist is "srvr" only.</summary>
    public HashSet<string> FourLetterWhitelist = new() { "srvr" };
    public bool ExtendedTypesEnabled;
    public string? SuperDigest;
    public bool SkipAcl;
    public int JuteMaxBuffer = 0xfffff;
    public long ContainerCheckIntervalMs = 60000;
    public bool AdminEnableServer = true;
    public int AdminServerPort = 8080;
    public string AdminServerAddress = "0.0.0.0";
    // upstream's PrometheusMetricsProvider (metricsProvider.*): /metrics on httpHost:httpPort (KeeperMetrics)
    public bool PrometheusMetricsEnabled;
    public int MetricsHttpPort = 7000;
    public string MetricsHttpHost = "0.0.0.0";
    public bool MetricsExportJvmInfo = true;
    public bool ReconfigEnabled;
    /// <summary>zookeeper.enforceQuota: hard quota limits fail writes with QuotaExceeded.</summary>
    public bool EnforceQuota;
    /// <summary>zookeeper.digest.enabled (default true): write tree digests into the log and snapshots.</summary>
    public bool DigestEnabled = true;
    /// <summary>zookeeper.snapshot.trust.empty (upstream ZOOKEEPER-3056): start from the txn logs
    /// alone when there is no snapshot. Off: such a data directory is refused.</summary>
    public bool SnapshotTrustEmpty;
    /// <summary>`samsa keeper --recover-truncate`: on txn log damage that stops recovery, cut the
    /// log at the damaged entry (keeping the original as damaged.log.N) and start with the txns
    /// before it. Not a zoo.cfg key: losing acknowledged writes is asked for once, on the command line.</summary>
    public bool RecoverTruncate;
    public Dictionary<string, string> Raw = new(StringComparer.Ordinal);
    /// <summary>server.N lines, initLimit, syncLimit and the other quorum keys (issue #17).</summary>
    public global::Samsa.Keeper.Server.Quorum.QuorumConfig Quorum = new();

    // ---- security (see KeeperSecurity). Upstream reads these as system properties
    // ("zookeeper."-prefixed); zoo.cfg keys outside QuorumPeerConfig become such properties, so
    // both spellings are accepted, in zoo.cfg and as -D flags of `samsa keeper` / JVMFLAGS.

    /// <summary>java.security.auth.login.config: the JAAS file whose Server section lists DIGEST-MD5 users.</summary>
    public string? JaasConfigPath;
    /// <summary>zookeeper.sasl.serverconfig: the JAAS section name (default "Server").</summary>
    public string SaslServerSection = "Server";
    /// <summary>zookeeper.authProvider.N values, by N.</summary>
    public SortedDictionary<string, string> AuthProviders = new(StringComparer.Ordinal);
    public bool SessionRequireClientSaslAuth;
    public bool EnforceAuthEnabled;
    public List<string> EnforceAuthSchemes = new();
    /// <summary>zookeeper.superUser (and zookeeper.superUser.*): SASL users that are super.</summary>
    public List<string> SaslSuperUsers = new();
    /// <summary>zookeeper.SASLAuthenticationProvider.superPassword: the DIGEST-MD5 password of "super".</summary>
    public string? SaslSuperPassword;
    public bool AllowSaslFailedClients;
    public string? X509SuperUser;
    /// <summary>secureClientPort (null: no TLS port) and secureClientPortAddress (upstream default: all addresses).</summary>
    public int? SecureClientPort;
    public string SecureClientPortAddress = "0.0.0.0";
    /// <summary>zookeeper.serverCnxnFactory (upstream needs NettyServerCnxnFactory for TLS; the Keeper has one transport).</summary>
    public string? ServerCnxnFactory;
    /// <summary>zookeeper.ssl.* settings of the client port, by the name after "ssl." (see KeeperTls).</summary>
    public Dictionary<string, string> Ssl = new(StringComparer.Ordinal);
    /// <summary>Keys given that the Keeper does not implement and that would weaken security if
    /// ignored; KeeperSecurity refuses to start over them.</summary>
    public List<string> UnsupportedSecurityKeys = new();

    public int EffectiveMinSessionTimeout => MinSessionTimeout == -1 ? TickTime * 2 : MinSessionTimeout;
    public int EffectiveMaxSessionTimeout => MaxSessionTimeout == -1 ? TickTime * 20 : MaxSessionTimeout;

    /// <summary>Parses a zoo.cfg (java.util.Properties subset: key=value or key: value, '#'/'!'
    /// comments). Unknown keys are kept in <see cref="Raw"/>; server.N lines and the other quorum
    /// keys go to <see cref="Quorum"/> (checked at start by QuorumConfig.Validate).</summary>
    public static KeeperConfig Parse(string text)
    {
        var c = new KeeperConfig();
        foreach (var raw in text.Split('\n'))
        {
            string line = raw.Trim();
            if (line.Length == 0 || line[0] == '#' || line[0] == '!') continue;
            int eq = line.IndexOfAny(new[] { '=', ':' });
            if (eq < 0) continue;
            string key = line.Substring(0, eq).Trim();
            string val = line.Substring(eq + 1).Trim();
            c.Raw[key] = val;
            c.Apply(key, val);
        }
        c.Quorum.LoadDynamicConfigFile(); // dynamicConfigFile= (Quorum/Reconfig.cs)
        return c;
    }

    public void Apply(string key, string val)
    {
        int I() => int.Parse(val, CultureInfo.InvariantCulture);
        if (ApplySecurity(key, val)) return;
        if (Quorum.Apply(key, val)) return;
        switch (key)
        {
            case "tickTime": TickTime = I(); break;
            case "dataDir": DataDir = val; break;
            case "dataLogDir": DataLogDir = val; break;
            case "clientPort": ClientPort = I(); break;
            case "clientPortAddress": ClientPortAddress = val; break;
            case "minSessionTimeout": MinSessionTimeout = I(); break;
            case "maxSessionTimeout": MaxSessionTimeout = I(); break;
            case "maxClientCnxns": MaxClientCnxns = I(); break;
            case "snapCount": SnapCount = I(); break;
            case "zookeeper.snapCount": SnapCount = I(); break;
            case "forceSync": case "zookeeper.forceSync": ForceSync = !val.Equals("no", StringComparison.OrdinalIgnoreCase); break;
            case "preAllocSize": case "zookeeper.preAllocSize": PreAllocSizeKb = long.Parse(val, CultureInfo.InvariantCulture); break;
            case "autopurge.snapRetainCount": AutopurgeSnapRetainCount = Math.Max(3, I()); break;
            case "autopurge.purgeInterval": AutopurgePurgeInterval = I(); break;
            case "snapSizeLimitInKb": case "zookeeper.snapSizeLimitInKb": SnapSizeLimitInKb = long.Parse(val, CultureInfo.InvariantCulture); break;
            case "4lw.commands.whitelist":
                FourLetterWhitelist = new HashSet<string>(val.Split(',').Select(s => s.Trim()).Where(s => s.Length > 0));
                break;
            case "zookeeper.extendedTypesEnabled": case "extendedTypesEnabled": ExtendedTypesEnabled = bool.Parse(val); break;
            case "zookeeper.DigestAuthenticationProvider.superDigest": case "DigestAuthenticationProvider.superDigest": SuperDigest = val; break;
            case "zookeeper.skipACL": case "skipACL": SkipAcl = val.Equals("yes", StringComparison.OrdinalIgnoreCase); break;
            case "jute.maxbuffer": JuteMaxBuffer = I(); break;
            case "znode.container.checkIntervalMs": ContainerCheckIntervalMs = long.Parse(val, CultureInfo.InvariantCulture); break;
            case "admin.enableServer": AdminEnableServer = bool.Parse(val); break;
            case "admin.serverPort": AdminServerPort = I(); break;
            case "admin.serverAddress": AdminServerAddress = val; break;
            case "metricsProvider.className":
                // the default provider (no metrics endpoint) or the Prometheus one; any other class is refused
                if (val == "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider") PrometheusMetricsEnabled = true;
                else if (val == "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider") PrometheusMetricsEnabled = false;
                else UnsupportedSecurityKeys.Add($"{key}={val} (the Keeper offers upstream's PrometheusMetricsProvider only)");
                break;
            case "metricsProvider.httpPort": MetricsHttpPort = I(); break;
            case "metricsProvider.httpHost": MetricsHttpHost = val; break;
            case "metricsProvider.exportJvmInfo": MetricsExportJvmInfo = bool.Parse(val); break;
            case var k when k.StartsWith("metricsProvider.", StringComparison.Ordinal):
                UnsupportedSecurityKeys.Add($"{key}={val} (the Keeper's Prometheus endpoint takes httpHost, httpPort and exportJvmInfo)");
                break;
            case "reconfigEnabled": ReconfigEnabled = bool.Parse(val); break;
            case "enforceQuota": case "zookeeper.enforceQuota": EnforceQuota = bool.Parse(val); break;
            case "digest.enabled": case "zookeeper.digest.enabled": DigestEnabled = bool.Parse(val); break;
            // zoo.cfg keys outside QuorumPeerConfig's become "zookeeper."-prefixed system properties upstream
            case "snapshot.trust.empty": case "zookeeper.snapshot.trust.empty": SnapshotTrustEmpty = bool.Parse(val); break;
        }
    }

    /// <summary>A security key, given as zoo.cfg writes it or as the system property upstream reads.</summary>
    private bool ApplySecurity(string key, string val)
    {
        if (key == "java.security.auth.login.config") { JaasConfigPath = val; return true; }
        string k = key.StartsWith("zookeeper.", StringComparison.Ordinal) ? key.Substring("zookeeper.".Length) : key;
        if (k.StartsWith("authProvider.", StringComparison.Ordinal)) { AuthProviders[k.Substring("authProvider.".Length)] = val; return true; }
        if (k == "superUser" || k.StartsWith("superUser.", StringComparison.Ordinal)) { SaslSuperUsers.Add(val); return true; }
        if (key == "secureClientPort") { SecureClientPort = int.Parse(val, CultureInfo.InvariantCulture); return true; }
        if (key == "secureClientPortAddress") { SecureClientPortAddress = val; return true; }
        if (k == "serverCnxnFactory") { ServerCnxnFactory = val; return true; }
        // quorum TLS: the Keeper is standalone and has no quorum port to secure
        if (k == "sslQuorum" || k.StartsWith("ssl.quorum.", StringComparison.Ordinal))
        {
            if (!(k == "sslQuorum" && val.Trim().Equals("false", StringComparison.OrdinalIgnoreCase))) UnsupportedSecurityKeys.Add($"{key}={val} (TLS between quorum peers is not implemented by the Keeper)");
            return true;
        }
        if (k.StartsWith("ssl.", StringComparison.Ordinal)) { Ssl[k.Substring("ssl.".Length)] = val; return true; }
        switch (k)
        {
            case "sasl.serverconfig": SaslServerSection = val; return true;
            case "sessionRequireClientSASLAuth": SessionRequireClientSaslAuth = bool.Parse(val); return true;
            case "enforce.auth.enabled": EnforceAuthEnabled = bool.Parse(val); return true;
            case "enforce.auth.schemes":
                EnforceAuthSchemes = val.Split(',').Select(x => x.Trim()).Where(x => x.Length > 0).ToList();
                return true;
            case "SASLAuthenticationProvider.superPassword": SaslSuperPassword = val; return true;
            case "allowSaslFailedClients": AllowSaslFailedClients = bool.Parse(val); return true;
            case "X509AuthenticationProvider.superUser": X509SuperUser = val; return true;
            // requireClientAuthScheme=sasl is the 3.4-era spelling (ZOOKEEPER-1634 patches); 3.8 has
            // sessionRequireClientSASLAuth. Taken as the same request so it is never silently ignored.
            case "requireClientAuthScheme":
                if (val.Trim() == "sasl") SessionRequireClientSaslAuth = true;
                else UnsupportedSecurityKeys.Add($"{key}={val}");
                return true;
        }
        return false;
    }

    public bool IsFourLetterWordAllowed(string cmd) => FourLetterWhitelist.Contains("*") || FourLetterWhitelist.Contains(cmd);

    public string LogDir => Path.Combine(string.IsNullOrEmpty(DataLogDir) ? DataDir : DataLogDir, ZkFiles.VersionDir);
    public string SnapDir => Path.Combine(DataDir, ZkFiles.VersionDir);
}
