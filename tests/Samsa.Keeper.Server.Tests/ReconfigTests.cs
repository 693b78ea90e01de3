using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Samsa.Keeper.Protocol;
using Samsa.Keeper.Protocol.Records;
using Samsa.Keeper.Server.Quorum;
using Xunit;
using Xunit.Abstractions;

namespace Samsa.Keeper.Server.Tests;

/// <summary>The config half of dynamic reconfiguration: dynamicConfigFile, the files written on
/// activation, and the leader's planning of a reconfig request (upstream QuorumPeerConfig,
/// QuorumPeer.setQuorumVerifier and PrepRequestProcessor's reconfig case).</summary>
public sealed class QuorumConfigDynamicTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "qcdyn-" + Guid.NewGuid().ToString("N"));

    public QuorumConfigDynamicTests() => Directory.CreateDirectory(_dir);
    public void Dispose() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    [Fact]
    public void DynamicConfigFile_supplies_the_servers_and_its_name_the_version()
    {
        string dyn = Path.Combine(_dir, "zoo.cfg.dynamic.100000003");
        File.WriteAllText(dyn, "server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\nserver.2=127.0.0.1:2889:3889:observer;2182\n");
        var c = KeeperConfig.Parse($"tickTime=500\ndynamicConfigFile={dyn}\n");
        Assert.Equal(new long[] { 1, 2 }, c.Quorum.Servers.Keys);
        Assert.Equal(0x100000003L, c.Quorum.Version);
        Assert.Equal(LearnerType.Observer, c.Quorum.Servers[2].Type);
        Assert.Equal("server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\nserver.2=127.0.0.1:2889:3889:observer;0.0.0.0:2182\nversion=100000003",
            c.Quorum.VerifierString());
    }

    [Fact]
    public void Server_lines_beside_dynamicConfigFile_and_a_version_inside_it_are_refused()
    {
        string dyn = Path.Combine(_dir, "zoo.cfg.dynamic.1");
        File.WriteAllText(dyn, "server.1=127.0.0.1:2888:3888\n");
        var e = Assert.Throws<KeeperConfigException>(() => KeeperConfig.Parse($"dynamicConfigFile={dyn}\nserver.2=127.0.0.1:2889:3889\n"));
        Assert.Contains("must be in a separate dynamic config file", e.Message);
        File.WriteAllText(dyn, "server.1=127.0.0.1:2888:3888\nversion=5\n");
        Assert.Contains("shouldn't have version", Assert.Throws<KeeperConfigException>(() => KeeperConfig.Parse($"dynamicConfigFile={dyn}\n")).Message);
    }

    [Fact]
    public void QuorumConfig_activation_writes_the_dynamic_file_and_points_zoo_cfg_at_it()
    {
        string cfg = Path.Combine(_dir, "zoo.cfg");
        File.WriteAllText(cfg, "tickTime=500\n# a comment\nserver.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\ninitLimit=10\n");
        var c = KeeperConfig.Parse(File.ReadAllText(cfg));
        c.Quorum.ConfigFilePath = cfg;
        c.Quorum.MyId = 1;
        c.Quorum.ReconfigEnabled = true;
        var next = QuorumConfig.ParseVerifier("server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\nserver.2=127.0.0.1:2889:3889:participant\nserver.3=127.0.0.1:2890:3890:participant;127.0.0.1:2183\nversion=100000002");
        c.Quorum.SetLastSeen(next, _ => { });
        Assert.Contains("version=100000002", File.ReadAllText(cfg + ".dynamic.next"));
        Assert.NotNull(c.Quorum.Activate(next, _ => { }));
        Assert.Equal(0x100000002L, c.Quorum.Version);
        Assert.Equal(new long[] { 1, 2, 3 }, c.Quorum.Servers.Keys);
        string dyn = cfg + ".dynamic.100000002";
        Assert.Equal("server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\nserver.2=127.0.0.1:2889:3889:participant\nserver.3=127.0.0.1:2890:3890:participant;127.0.0.1:2183",
            File.ReadAllText(dyn));
        Assert.False(File.Exists(cfg + ".dynamic.next"));
        string rewritten = File.ReadAllText(cfg);
        Assert.DoesNotContain("server.", rewritten);
        Assert.Contains("tickTime=500", rewritten);
        Assert.Contains($"dynamicConfigFile={dyn}", rewritten);
        // the rewritten pair reads back as the same membership
        var again = KeeperConfig.Parse(rewritten);
        Assert.Equal(next.Servers.Keys, again.Quorum.Servers.Keys);
        Assert.Equal(0x100000002L, again.Quorum.Version);
        // an older or equal version changes nothing; without reconfigEnabled nothing is activated
        Assert.Null(c.Quorum.Activate(next, _ => { }));
        var off = KeeperConfig.Parse("server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\n");
        Assert.Null(off.Quorum.Activate(next, _ => { }));
        Assert.Equal(0, off.Quorum.Version);
    }

    private static QuorumConfig Three()
    {
        var q = QuorumConfig.ParseVerifier("server.1=127.0.0.1:2001:3001:participant\nserver.2=127.0.0.1:2002:3002:participant\nserver.3=127.0.0.1:2003:3003:participant\nversion=0");
        return q;
    }

    [Fact]
    public void QuorumConfig_reconfig_planning_follows_upstream_checks()
    {
        var q = Three();
        const long zxid = 0x100000007;
        var add = ReconfigPlanner.Plan(q, 0, new ReconfigRequest { JoiningServers = "server.4=127.0.0.1:2004:3004:participant;127.0.0.1:4004", CurConfigId = -1 }, zxid, [1, 2, 3], true);
        Assert.Equal(new long[] { 1, 2, 3, 4 }, add.Servers.Keys);
        Assert.Equal(zxid, add.Version);
        Assert.EndsWith("server.4=127.0.0.1:2004:3004:participant;127.0.0.1:4004\nversion=100000007", add.VerifierString());
        var remove = ReconfigPlanner.Plan(q, 0, new ReconfigRequest { LeavingServers = "3", CurConfigId = 0 }, zxid, [1, 2], true);
        Assert.Equal(new long[] { 1, 2 }, remove.Servers.Keys);
        var whole = ReconfigPlanner.Plan(q, 0, new ReconfigRequest { NewMembers = "server.1=127.0.0.1:2001:3001:participant;2101,server.2=127.0.0.1:2002:3002:participant;2102", CurConfigId = -1 }, zxid, [1, 2], true);
        Assert.Equal(new long[] { 1, 2 }, whole.Servers.Keys);

        int Err(Action a) => Assert.Throws<KeeperException>(a).Code;
        Assert.Equal((int)Code.BadVersion, Err(() => ReconfigPlanner.Plan(q, 0, new ReconfigRequest { LeavingServers = "3", CurConfigId = 5 }, zxid, [1, 2, 3], true)));
        Assert.Equal((int)Code.ReconfigInProgress, Err(() => ReconfigPlanner.Plan(q, 0x100000001, new ReconfigRequest { LeavingServers = "3", CurConfigId = -1 }, zxid, [1, 2, 3], true)));
        // a joiner needs its client address; fewer than 2 voters with standaloneEnabled; no synced majority
        Assert.Equal((int)Code.BadArguments, Err(() => ReconfigPlanner.Plan(q, 0, new ReconfigRequest { JoiningServers = "server.4=127.0.0.1:2004:3004", CurConfigId = -1 }, zxid, [1, 2, 3], true)));
        Assert.Equal((int)Code.BadArguments, Err(() => ReconfigPlanner.Plan(q, 0, new ReconfigRequest { LeavingServers = "2,3", CurConfigId = -1 }, zxid, [1], true)));
        Assert.Equal((int)Code.BadArguments, Err(() => ReconfigPlanner.Plan(q, 0, new ReconfigRequest { JoiningServers = "server.4=127.0.0.1:2001:3004:participant;4004", CurConfigId = -1 }, zxid, [1, 2, 3], true)));
        Assert.Equal((int)Code.NewConfigNoQuorum, Err(() => ReconfigPlanner.Plan(q, 0,
            new ReconfigRequest { JoiningServers = "server.4=127.0.0.1:2004:3004:participant;4004,server.5=127.0.0.1:2005:3005:participant;4005", CurConfigId = -1 }, zxid, [1, 2], true)));
        Assert.Equal(new long[] { 1 }, ReconfigPlanner.Plan(q, 0, new ReconfigRequest { LeavingServers = "2,3", CurConfigId = -1 }, zxid, [1], false).Servers.Keys);
    }
}

/// <summary>Live reconfiguration on in-process Keeper ensembles (reconfig request through a client
/// port, COMMITANDACTIVATE to the followers, /zookeeper/config on every member).</summary>
public sealed class ReconfigEnsembleTests : QuorumEnsembleTestBase
{
    private readonly QuorumLayout _four = new(4);

    public ReconfigEnsembleTests(ITestOutputHelper output) : base(output, "reconfig-", TimeSpan.FromSeconds(40)) { }

    private string Line(long sid, bool client = true) =>
        $"server.{sid}=127.0.0.1:{_four.QuorumPorts[sid - 1]}:{_four.ElectionPorts[sid - 1]}:participant" + (client ? $";127.0.0.1:{_four.ClientPorts[sid - 1]}" : "");

    private QuorumMember Member(long sid, IEnumerable<long> servers, bool reconfig = true, bool skipAcl = true)
    {
        string dir = Path.Combine(_root, $"m{sid}");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "myid"), sid + "\n");
        var text = new List<string> { "tickTime=500", "initLimit=10", "syncLimit=5", $"dataDir={dir}", "standaloneEnabled=false", "4lw.commands.whitelist=*" };
        if (reconfig) text.Add("reconfigEnabled=true");
        if (skipAcl) text.Add("skipACL=yes");
        text.AddRange(servers.Select(s => Line(s)));
        string cfgPath = Path.Combine(dir, "zoo.cfg");
        File.WriteAllText(cfgPath, string.Join('\n', text) + "\n");
        var cfg = KeeperConfig.Parse(File.ReadAllText(cfgPath));
        cfg.Quorum.ConfigFilePath = cfgPath;
        var m = QuorumMember.Start(cfg, l => Log($"m{sid}: {l}"), serveClients: true);
        _members.Add(m);
        return m;
    }

    private int Port(long sid) => _four.ClientPorts[sid - 1];

    /// <summary>A bare client: connect, then one request; returns the reply's error and body.</summary>
    private static async Task<(int Err, byte[] Body)> Call(int port, int type, IJuteRecord body)
    {
        using var c = new TcpClient();
        await c.ConnectAsync(IPAddress.Loopback, port);
        var s = c.GetStream();
        async Task Send(byte[] payload)
        {
            var len = new byte[4];
            BinaryPrimitives.WriteInt32BigEndian(len, payload.Length);
            await s.WriteAsync(len);
            await s.WriteAsync(payload);
        }
        async Task<byte[]> Receive()
        {
            var len = new byte[4];
            await s.ReadExactlyAsync(len);
            var b = new byte[BinaryPrimitives.ReadInt32BigEndian(len)];
            await s.ReadExactlyAsync(b);
            return b;
        }
        await Send(new ConnectRequest { ProtocolVersion = 0, TimeOut = 10000, Passwd = new byte[16] }.ToBytes());
        await Receive();
        await Send([.. new RequestHeader { Xid = 1, Type = type }.ToBytes(), .. body.ToBytes()]);
        while (true)
        {
            var reply = await Receive();
            var r = new JuteReader(reply, int.MaxValue);
            var h = ReplyHeader.Read(ref r);
            if (h.Xid != 1) continue; // a watch event
            return (h.Err, reply[r.Position..]);
        }
    }

    private static GetDataResponse Data(byte[] body) { var r = new JuteReader(body, int.MaxValue); return GetDataResponse.Read(ref r); }

    private async Task<string> ConfigOn(long sid) => Encoding.UTF8.GetString(await ReadSynced(Port(sid), DataTree.ConfigPath) ?? []);

    [Fact]
    public async Task Reconfig_adds_a_synced_member_removes_a_follower_and_the_leader()
    {
        var ms = new[] { Member(1, [1, 2, 3]), Member(2, [1, 2, 3]), Member(3, [1, 2, 3]) };
        await Until(() => ms.Count(m => m.Leading) == 1 && ms.Count(m => m.Synced) == 2, "3 members in broadcast");
        // with reconfig on, the initial config takes the first NEWLEADER zxid as its version (upstream ZOOKEEPER-1783)
        long epoch = ms.Single(m => m.Leading).Store.CurrentEpoch;
        string initial = $"{Line(1)}\n{Line(2)}\n{Line(3)}\nversion={ZabType.MakeZxid(epoch, 0):x}";
        foreach (long sid in new long[] { 1, 2, 3 }) await Until(() => ConfigOn(sid).GetAwaiter().GetResult() == initial, $"member {sid} shows the initial config");

        // a 4th member started with the old members plus itself syncs as a non-voter
        var joiner = Member(4, [1, 2, 3, 4]);
        await Until(() => joiner.Synced, "member 4 following");
        var (err, body) = await Call(Port(1), OpCode.Reconfig, new ReconfigRequest { JoiningServers = Line(4), CurConfigId = -1 });
        Assert.Equal(0, err);
        var answer = Data(body);
        string text = Encoding.UTF8.GetString(answer.Data!);
        Assert.Equal($"{Line(1)}\n{Line(2)}\n{Line(3)}\n{Line(4)}\nversion={answer.Stat!.Mzxid:x}", text);
        Assert.Equal(-1, answer.Stat.Version);
        foreach (long sid in new long[] { 1, 2, 3, 4 })
        {
            await Until(() => ConfigOn(sid).GetAwaiter().GetResult() == text, $"member {sid} shows the new config");
            string cfg = File.ReadAllText(Path.Combine(_root, $"m{sid}", "zoo.cfg"));
            Assert.Contains($"dynamicConfigFile={Path.Combine(_root, $"m{sid}", "zoo.cfg")}.dynamic.{answer.Stat.Mzxid:x}", cfg);
            Assert.DoesNotContain("server.", cfg);
        }
        // the 4th member now counts: with 1 and 2 stopped a quorum of {1,2,3,4} is gone, with one it stays
        var leader = ms.Single(m => m.Leading);
        long followerId = ms.First(m => !m.Leading).MyId;

        // removing a follower: the others go on and the config no longer lists it
        (err, body) = await Call(Port(4), OpCode.Reconfig, new ReconfigRequest { LeavingServers = followerId.ToString(System.Globalization.CultureInfo.InvariantCulture), CurConfigId = -1 });
        Assert.Equal(0, err);
        text = Encoding.UTF8.GetString(Data(body).Data!);
        Assert.DoesNotContain($"server.{followerId}=", text);
        await using var c = await Connect(Port(4));
        await c.CreateAsync("/after-remove", [1], Samsa.Keeper.Client.Acls.OpenAclUnsafe);
        Assert.NotNull(await ReadSynced(Port(leader.MyId), "/after-remove"));

        // a stale fromConfig: BADVERSION
        (err, _) = await Call(Port(4), OpCode.Reconfig, new ReconfigRequest { LeavingServers = "4", CurConfigId = 1 });
        Assert.Equal((int)Code.BadVersion, err);

        // removing the leader: the remaining voters elect one of themselves and take writes
        (err, body) = await Call(Port(4), OpCode.Reconfig, new ReconfigRequest { LeavingServers = leader.MyId.ToString(System.Globalization.CultureInfo.InvariantCulture), CurConfigId = -1 });
        Assert.Equal(0, err);
        Assert.DoesNotContain($"server.{leader.MyId}=", Encoding.UTF8.GetString(Data(body).Data!));
        var rest = ms.Where(m => m.MyId != followerId && m != leader).Append(joiner).ToList();
        await Until(() => rest.Count(m => m.Leading) == 1 && rest.Count(m => m.Synced) == 1, "a new leader among the remaining voters");
        await using var c2 = await Connect(Port(4));
        await c2.CreateAsync("/after-leader-left", [2], Samsa.Keeper.Client.Acls.OpenAclUnsafe);
        Assert.NotNull(await ReadSynced(Port(rest.Single(m => m.Leading).MyId), "/after-leader-left"));
    }

    /// <summary>`samsa zkcli reconfig` (issue #20) beside zkCli.sh 3.8 on a Keeper ensemble: the same
    /// committed configuration printed for -add and -remove, the same refusal of a stale -v, and -s's stat.</summary>
    [Fact]
    public async Task Zkcli_reconfig_prints_what_zkCli_sh_prints()
    {
        ExternalTools.Require("zookeeper", () => File.Exists(ExternalTools.ZooKeeperJar) && ExternalTools.Which("java") is not null);
        var ms = new[] { Member(1, [1, 2, 3]), Member(2, [1, 2, 3]), Member(3, [1, 2, 3]) };
        await Until(() => ms.Count(m => m.Leading) == 1 && ms.Count(m => m.Synced) == 2, "3 members in broadcast");
        var joiner = Member(4, [1, 2, 3, 4]);
        await Until(() => joiner.Synced, "member 4 following");
        string address = $"127.0.0.1:{Port(1)}";
        (int, string, string) Run(bool upstream, params string[] cmd)
        {
            var (code, o, e) = upstream
                ? ExternalTools.Run("java", new[] { "-cp", ExternalTools.ZooKeeperJar, "org.apache.zookeeper.ZooKeeperMain", "-server", address }.Concat(cmd), TimeSpan.FromSeconds(60))
                : ExternalTools.Run(Samsa.Testing.TestEnvironment.SamsaExecutable(), new[] { "zkcli", "-server", address }.Concat(cmd), TimeSpan.FromSeconds(60));
            o = o.Replace("\nWATCHER::\n\nWatchedEvent state:SyncConnected type:None path:null\n", "");
            e = string.Join('\n', e.Split('\n').Where(l => !l.StartsWith("SLF4J:", StringComparison.Ordinal)));
            return (code, o, e);
        }
        string Mask(string text) => System.Text.RegularExpressions.Regex.Replace(text, "(version=|0x)[0-9a-f]+", "$1X");
        string three = $"{Line(1)}\n{Line(2)}\n{Line(3)}\nversion=", four = $"{Line(1)}\n{Line(2)}\n{Line(3)}\n{Line(4)}\nversion=";

        var added = Run(false, "reconfig", "-add", Line(4));
        Assert.Equal(0, added.Item1);
        Assert.StartsWith($"Connecting to {address}\nCommitted new configuration:\n{four}", added.Item2);
        var removedUpstream = Run(true, "reconfig", "-remove", "4");
        Assert.StartsWith($"Connecting to {address}\nCommitted new configuration:\n{three}", removedUpstream.Item2);
        var addedUpstream = Run(true, "reconfig", "-add", Line(4));
        Assert.Equal(Mask(added.Item2 + added.Item3), Mask(addedUpstream.Item2 + addedUpstream.Item3));
        var removed = Run(false, "reconfig", "-remove", "4");
        Assert.Equal((removedUpstream.Item1, Mask(removedUpstream.Item2), removedUpstream.Item3), (removed.Item1, Mask(removed.Item2), removed.Item3));

        // a version that is not the current one: upstream's message names no path
        var stale = Run(false, "reconfig", "-v", "1", "-remove", "3");
        Assert.Equal(Run(true, "reconfig", "-v", "1", "-remove", "3"), stale);
        Assert.Equal((1, $"Connecting to {address}\n", "version No is not valid : \n"), stale);

        // -s: the configuration node's stat after the new configuration
        var withStat = Run(false, "reconfig", "-s", "-add", Line(4));
        Assert.Matches(@"\nversion=[0-9a-f]+\ncZxid = 0x0\nctime = .*\nmZxid = 0x[0-9a-f]+\n(.*\n){3}dataVersion = -1\n", withStat.Item2);
        await Until(() => ConfigOn(1).GetAwaiter().GetResult().StartsWith(four, StringComparison.Ordinal), "member 1 shows 4 servers");
    }

    [Fact]
    public async Task Reconfig_is_refused_when_disabled_and_the_config_node_is_still_filled()
    {
        var ms = new[] { Member(1, [1, 2, 3], reconfig: false), Member(2, [1, 2, 3], reconfig: false), Member(3, [1, 2, 3], reconfig: false) };
        await Until(() => ms.Count(m => m.Leading) == 1 && ms.Count(m => m.Synced) == 2, "3 members in broadcast");
        var (err, _) = await Call(Port(1), OpCode.Reconfig, new ReconfigRequest { LeavingServers = "3", CurConfigId = -1 });
        Assert.Equal((int)Code.ReconfigDisabled, err);
        // /zookeeper/config is filled in quorum mode even without reconfigEnabled (upstream initConfigInZKDatabase)
        Assert.Equal($"{Line(1)}\n{Line(2)}\n{Line(3)}\nversion=0", await ConfigOn(2));
    }

    [Fact]
    public async Task Reconfig_needs_write_on_the_config_node()
    {
        var ms = new[] { Member(1, [1, 2, 3], skipAcl: false), Member(2, [1, 2, 3], skipAcl: false), Member(3, [1, 2, 3], skipAcl: false) };
        await Until(() => ms.Count(m => m.Leading) == 1 && ms.Count(m => m.Synced) == 2, "3 members in broadcast");
        var (err, _) = await Call(Port(1), OpCode.Reconfig, new ReconfigRequest { LeavingServers = "3", CurConfigId = -1 });
        Assert.Equal((int)Code.NoAuth, err);
    }
}

/// <summary>The learner's replay of logged-but-uncommitted txns stops at a zxid gap (upstream
/// Learner.enforceContinuousProposal refuses a DIFF with a hole) and cuts the log there, so the
/// leader's sync fills the rest instead of the member building a history with a hole.</summary>
public sealed class QuorumConfigGapTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "qcgap-" + Guid.NewGuid().ToString("N"));
    public void Dispose() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    private static (TxnHeader, IJuteRecord) Create(long zxid, string path) =>
        (new TxnHeader { ClientId = 1, Cxid = (int)zxid, Zxid = zxid, Time = 1, Type = OpCode.Create },
         new CreateTxn { Path = path, Data = [1], Acl = AclCache.OpenAclUnsafe, Ephemeral = false, ParentCVersion = -1 });

    [Fact]
    public void QuorumConfig_replay_of_logged_txns_stops_at_a_zxid_gap_and_cuts_the_log()
    {
        var cfg = KeeperConfig.Parse($"dataDir={_dir}\n");
        var lines = new List<string>();
        using (var store = new LearnerStore(cfg, lines.Add))
        {
            foreach (var (zxid, path) in new[] { (0x100000001L, "/a"), (0x100000002L, "/b"), (0x100000004L, "/d") })
            {
                var (h, t) = Create(zxid, path);
                store.Log(h, t, null);
            }
            Assert.Equal(0x100000004L, store.LastLoggedZxid);
            Assert.Equal(2, store.ApplyLoggedNotCommitted(lines.Add));
            Assert.NotNull(store.Tree.GetNode("/b"));
            Assert.Null(store.Tree.GetNode("/d"));
            Assert.Equal(0x100000002L, store.Tree.LastProcessedZxid);
            Assert.Equal(0x100000002L, store.LastLoggedZxid);
            Assert.Contains(lines, l => l.Contains("expected 0x100000003", StringComparison.Ordinal));
        }
        // a restart reads the cut log: the txn past the gap is gone for good
        using var again = new LearnerStore(cfg, _ => { });
        Assert.Equal(0x100000002L, again.LastLoggedZxid);
        Assert.Null(again.Tree.GetNode("/d"));
    }

    [Fact]
    public void QuorumConfig_replay_crosses_an_epoch_change()
    {
        var cfg = KeeperConfig.Parse($"dataDir={_dir}\n");
        using var store = new LearnerStore(cfg, _ => { });
        foreach (var (zxid, path) in new[] { (0x100000001L, "/a"), (0x200000001L, "/b") })
        {
            var (h, t) = Create(zxid, path);
            store.Log(h, t, null);
        }
        Assert.Equal(2, store.ApplyLoggedNotCommitted(_ => { }));
        Assert.Equal(0x200000001L, store.Tree.LastProcessedZxid);
    }
}
