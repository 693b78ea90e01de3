using System.Globalization;
using System.Text;
using Samsa.Keeper.Protocol;
using Samsa.Keeper.Protocol.Records;

namespace Samsa.Keeper.Server.Quorum;

/// <summary>
/// Dynamic reconfiguration state of a member (upstream QuorumPeer's quorumVerifier /
/// lastSeenQuorumVerifier and QuorumPeerConfig's dynamic-file handling, 3.5+):
/// <list type="bullet">
/// <item><c>dynamicConfigFile=path</c> in zoo.cfg: the server lines come from that file, whose
/// name ends with the config version in hex (zoo.cfg.dynamic.100000000); server lines in zoo.cfg
/// beside it are refused, as upstream ("must be in a separate dynamic config file");</item>
/// <item>activating a committed configuration (processReconfig → setQuorumVerifier(qv, true))
/// writes zoo.cfg.dynamic.&lt;version&gt; (server lines sorted, no version line) and rewrites
/// zoo.cfg without its server/peerType/dynamicConfigFile lines and with
/// <c>dynamicConfigFile=</c> pointing at the new file (editStaticConfig); a proposed one is kept
/// as zoo.cfg.dynamic.next (with its version line) until it is committed;</item>
/// <item>without reconfigEnabled nothing is activated or written (upstream processReconfig and
/// setLastSeenQuorumVerifier return at once).</item>
/// </list>
/// </summary>
public sealed partial class QuorumConfig
{
    private readonly object _qvLock = new();

    /// <summary>Copied from KeeperConfig.ReconfigEnabled when the member starts.</summary>
    public bool ReconfigEnabled;
    /// <summary>The zoo.cfg this config came from (null in tests): dynamic files are written beside it.</summary>
    public string? ConfigFilePath;
    /// <summary>The last proposed configuration (upstream lastSeenQuorumVerifier); the committed
    /// one itself when nothing is in flight.</summary>
    public QuorumConfig? LastSeen;

    public long LastSeenVersion { get { lock (_qvLock) return LastSeen?.Version ?? Version; } }

    /// <summary>What a leader sends in NEWLEADER (upstream getQuorumVerifierBytes: the last seen config).</summary>
    public string LastSeenVerifierString() { lock (_qvLock) return (LastSeen ?? this).VerifierString(); }

    /// <summary>A detached copy of the membership (server lines and version).</summary>
    public QuorumConfig Snapshot()
    {
        lock (_qvLock) return new QuorumConfig { Servers = new SortedDictionary<long, QuorumServer>(Servers), Version = Version };
    }

    /// <summary>Reads the file named by dynamicConfigFile (called once zoo.cfg is parsed).</summary>
    public void LoadDynamicConfigFile()
    {
        if (DynamicConfigFile is null) return;
        if (Servers.Count > 0)
            throw new KeeperConfigException($"parameter: server.{Servers.Keys.First()} must be in a separate dynamic config file");
        string text;
        try { text = File.ReadAllText(DynamicConfigFile); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new KeeperConfigException($"Error processing {DynamicConfigFile}: {e.Message}");
        }
        foreach (var raw in text.Split('\n'))
        {
            string line = raw.Trim();
            if (line.Length == 0 || line[0] is '#' or '!') continue;
            int eq = line.IndexOfAny(['=', ':']);
            if (eq < 0) continue;
            string k = line[..eq].Trim(), v = line[(eq + 1)..].Trim();
            if (k == "version") throw new KeeperConfigException("dynamic file shouldn't have version inside");
            if (k.StartsWith("group", StringComparison.Ordinal) || k.StartsWith("weight", StringComparison.Ordinal))
                throw new KeeperConfigException($"{k} in {DynamicConfigFile}: hierarchical quorums are not supported by the Keeper");
            if (!k.StartsWith("server.", StringComparison.Ordinal))
                throw new KeeperConfigException($"{k} in {DynamicConfigFile}: only server lines belong in a dynamic config file");
            Apply(k, v);
        }
        // upstream getVersionFromFilename: the hex after the last dot; none → version 0
        string name = Path.GetFileName(DynamicConfigFile);
        int dot = name.LastIndexOf('.');
        if (dot >= 0 && long.TryParse(name.AsSpan(dot + 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out long ver)) Version = ver;
    }

    /// <summary>upstream setLastSeenQuorumVerifier(qv, true): remembers a proposed configuration
    /// and writes it to zoo.cfg.dynamic.next.</summary>
    public void SetLastSeen(QuorumConfig next, Action<string> log)
    {
        if (!ReconfigEnabled) return;
        lock (_qvLock)
        {
            if (LastSeen is not null && LastSeen.Version == next.Version) return;
            if (next.Version <= Version) return;
            LastSeen = next;
            if (ConfigFilePath is not null) WriteDynamic(ConfigFilePath + ".dynamic.next", next, keepVersion: true, log);
        }
    }

    /// <summary>upstream setQuorumVerifier(qv, true): makes <paramref name="next"/> the committed
    /// membership when it is newer, writes its dynamic file and points zoo.cfg at it. Returns the
    /// previous membership, or null when nothing changed.</summary>
    public QuorumConfig? Activate(QuorumConfig next, Action<string> log)
    {
        if (!ReconfigEnabled) return null;
        lock (_qvLock)
        {
            if (next.Version <= Version) return null;
            var prev = new QuorumConfig { Servers = Servers, Version = Version };
            Servers = new SortedDictionary<long, QuorumServer>(next.Servers);
            Version = next.Version;
            if (LastSeen is null || LastSeen.Version <= next.Version) LastSeen = null;
            if (ConfigFilePath is not null)
            {
                string dyn = ConfigFilePath + ".dynamic." + next.Version.ToString("x", CultureInfo.InvariantCulture);
                WriteDynamic(dyn, next, keepVersion: false, log);
                EditStaticConfig(ConfigFilePath, dyn, log);
                if (LastSeen is null) TryDelete(ConfigFilePath + ".dynamic.next");
            }
            log($"reconfig: activated quorum config version {next.Version:x}: {string.Join(", ", next.Servers.Values.Select(s => $"{s.Id}={s.ToConfigValue()}"))}");
            return prev;
        }
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    /// <summary>upstream writeDynamicConfig: the verifier's lines, sorted, without "version=" unless kept.</summary>
    public static string DynamicFileText(QuorumConfig qv, bool keepVersion)
    {
        var lines = qv.VerifierString().Split('\n').Where(l => l.Length > 0 && (keepVersion || !l.StartsWith("version", StringComparison.Ordinal))).ToList();
        lines.Sort(StringComparer.Ordinal);
        return string.Join("\n", lines);
    }

    private static void WriteDynamic(string path, QuorumConfig qv, bool keepVersion, Action<string> log)
    {
        try { AtomicWrite(path, DynamicFileText(qv, keepVersion)); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { log($"reconfig: cannot write {path}: {e.Message}"); }
    }

    private static void AtomicWrite(string path, string text)
    {
        string tmp = path + ".tmp";
        using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write))
        {
            fs.Write(Encoding.UTF8.GetBytes(text));
            fs.Flush(true);
        }
        File.Move(tmp, path, true);
    }

    /// <summary>upstream editStaticConfig: zoo.cfg keeps its other keys; server., group, weight,
    /// peerType and dynamicConfigFile go (the client port keys too when our own server line now
    /// carries the client address), and dynamicConfigFile= names the new file.</summary>
    private void EditStaticConfig(string cfgPath, string dynPath, Action<string> log)
    {
        try
        {
            if (!File.Exists(cfgPath)) return;
            bool eraseClient = Servers.TryGetValue(MyId, out var me) && me.ClientPort is not null;
            var sb = new StringBuilder();
            foreach (var raw in File.ReadAllLines(cfgPath))
            {
                string line = raw.Trim();
                if (line.Length == 0 || line[0] is '#' or '!') continue;
                int eq = line.IndexOfAny(['=', ':']);
                if (eq < 0) continue;
                string k = line[..eq].Trim(), v = line[(eq + 1)..].Trim();
                if (k.StartsWith("server.", StringComparison.Ordinal) || k.StartsWith("group", StringComparison.Ordinal)
                    || k.StartsWith("weight", StringComparison.Ordinal) || k.StartsWith("dynamicConfigFile", StringComparison.Ordinal)
                    || k.StartsWith("peerType", StringComparison.Ordinal)
                    || (eraseClient && k.StartsWith("clientPort", StringComparison.Ordinal)))
                    continue;
                sb.Append(k).Append('=').Append(v).Append('\n');
            }
            sb.Append("dynamicConfigFile=").Append(Path.GetFullPath(dynPath)).Append('\n');
            AtomicWrite(cfgPath, sb.ToString());
            DynamicConfigFile = dynPath;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { log($"reconfig: cannot rewrite {cfgPath}: {e.Message}"); }
    }
}

/// <summary>
/// The leader's side of the reconfig request (upstream PrepRequestProcessor, case OpCode.reconfig):
/// works out the next membership from an incremental (joiningServers / leavingServers) or a
/// non-incremental (newMembers) request, or the error the client gets.
/// </summary>
public static class ReconfigPlanner
{
    /// <param name="committed">The committed membership.</param>
    /// <param name="lastSeenVersion">The last proposed version (differs from the committed one while a reconfig is in flight).</param>
    /// <param name="zxid">The reconfig's zxid: the new config's version.</param>
    /// <param name="syncedVoters">Ids synced with the leader (the leader itself included).</param>
    /// <param name="standaloneEnabled">Upstream requires 2 voters then, 1 otherwise.</param>
    public static QuorumConfig Plan(QuorumConfig committed, long lastSeenVersion, ReconfigRequest req, long zxid,
        IReadOnlyCollection<long> syncedVoters, bool standaloneEnabled)
    {
        if (lastSeenVersion != committed.Version) throw new KeeperException(Code.ReconfigInProgress);
        if (req.CurConfigId != -1 && req.CurConfigId != lastSeenVersion)
            throw new KeeperException(Code.BadVersion, $"Reconfiguration from version {req.CurConfigId} failed -- last seen version is {lastSeenVersion}");
        var next = new QuorumConfig();
        if (req.NewMembers is not null)
        {
            // non-incremental: the members are given whole, separated by commas or new lines
            foreach (var raw in req.NewMembers.Replace(',', '\n').Split('\n'))
            {
                string line = raw.Trim();
                if (line.Length == 0 || line[0] is '#' or '!') continue;
                int eq = line.IndexOfAny(['=', ':']);
                if (eq < 0) continue;
                string k = line[..eq].Trim(), v = line[(eq + 1)..].Trim();
                if (!k.StartsWith("server.", StringComparison.Ordinal)) continue; // upstream QuorumMaj ignores other keys
                try { next.Apply(k, v); }
                catch (Exception e) when (e is KeeperConfigException or FormatException) { throw new KeeperException(Code.BadArguments, e.Message); }
            }
        }
        else
        {
            var servers = new SortedDictionary<long, QuorumServer>(committed.Servers);
            if (req.LeavingServers is not null)
            {
                foreach (var part in req.LeavingServers.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                {
                    if (!long.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out long sid))
                        throw new KeeperException(Code.BadArguments, $"leaving server '{part}' is not a server id");
                    servers.Remove(sid);
                }
            }
            if (req.JoiningServers is not null)
            {
                foreach (var joiner in req.JoiningServers.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                {
                    var parts = joiner.Split('=', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                    if (parts.Length != 2) throw new KeeperException(Code.BadArguments, "Wrong format of server string");
                    if (!long.TryParse(parts[0].AsSpan(parts[0].LastIndexOf('.') + 1), NumberStyles.Integer, CultureInfo.InvariantCulture, out long sid))
                        throw new KeeperException(Code.BadArguments, "Wrong format of server string");
                    QuorumServer qs;
                    try { qs = QuorumServer.Parse(sid, parts[1]); }
                    catch (KeeperConfigException) { throw new KeeperException(Code.BadArguments, "Reconfiguration failed"); }
                    if (qs.ClientPort is null)
                        throw new KeeperException(Code.BadArguments, "Wrong format of server string - each server should have 3 ports specified");
                    foreach (var other in servers.Values)
                    {
                        // upstream QuorumServer.checkAddressDuplicate: no quorum/election address twice
                        if (other.Id == qs.Id) continue;
                        bool clash = other.Host == qs.Host && (other.QuorumPort == qs.QuorumPort || other.ElectionPort == qs.ElectionPort
                            || other.QuorumPort == qs.ElectionPort || other.ElectionPort == qs.QuorumPort);
                        if (clash) throw new KeeperException(Code.BadArguments, "Reconfiguration failed");
                    }
                    servers[sid] = qs;
                }
            }
            next.Servers = servers;
        }
        next.Version = zxid;
        int voters = next.Voters.Count();
        if (standaloneEnabled && voters < 2)
            throw new KeeperException(Code.BadArguments, "Reconfig failed - new configuration must include at least 2 followers");
        if (voters < 1)
            throw new KeeperException(Code.BadArguments, "Reconfig failed - new configuration must include at least 1 follower");
        // upstream Leader.isQuorumSynced: a majority of the new voters must be synced with us now
        if (syncedVoters.Count(id => next.Servers.TryGetValue(id, out var s) && s.Type == LearnerType.Participant) * 2 <= voters)
            throw new KeeperException(Code.NewConfigNoQuorum);
        return next;
    }

    /// <summary>The 8-byte designated leader id that COMMITANDACTIVATE carries (and INFORMANDACTIVATE before the proposal).</summary>
    public static byte[] LeaderBytes(long sid)
    {
        var b = new byte[8];
        System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(b, sid);
        return b;
    }
}

public static class Reconfig
{
    /// <summary>The quorum part of the conf 4lw (upstream QuorumZooKeeperServer.dumpConf): serverId,
    /// limits, ports, peerType (LearnerType ordinal) and "membership:" with the committed config,
    /// so a reconfig shows there as in /zookeeper/config.</summary>
    public static string QuorumConf(KeeperConfig cfg)
    {
        var q = cfg.Quorum;
        var snap = q.Snapshot();
        snap.Servers.TryGetValue(q.MyId, out var me);
        return $"serverId={q.MyId}\ninitLimit={q.InitLimit}\nsyncLimit={q.SyncLimit}\nelectionAlg={q.ElectionAlg}\n"
            + $"electionPort={me?.ElectionPort}\nquorumPort={me?.QuorumPort}\npeerType={(me?.Type == LearnerType.Observer ? 1 : 0)}\n"
            + "membership: \n" + snap.VerifierString();
    }
}
