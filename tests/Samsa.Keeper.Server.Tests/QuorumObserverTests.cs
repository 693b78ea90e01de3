using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Samsa.Keeper.Client;
using Samsa.Keeper.Protocol;
using Samsa.Keeper.Protocol.Records;
using Samsa.Keeper.Server.Quorum;
using Xunit;
using Xunit.Abstractions;

namespace Samsa.Keeper.Server.Tests;

/// <summary>
/// Observers as upstream 3.8 (Observer / Leader.inform): a member whose server line says
/// <c>:observer</c> learns the leader from the voters' election answers, registers with
/// OBSERVERINFO, syncs like a follower, applies commits that arrive as INFORM, never ACKs a
/// proposal and never counts in a quorum. Both directions against Debian's Apache ZooKeeper
/// 3.8.0: a Keeper observing an Apache leader, an Apache observer of a Keeper leader.
/// </summary>
public sealed class QuorumObserverTests(ITestOutputHelper output)
    : QuorumEnsembleTestBase(output, "keeper-observer-", TimeSpan.FromSeconds(40))
{
    private static async Task<Dictionary<string, string>> Mntr(int port) =>
        (await FourLetter(port, "mntr")).Split('\n').Select(l => l.Split('\t')).Where(kv => kv.Length == 2).ToDictionary(kv => kv[0], kv => kv[1]);

    private static Task<string> Srvr(int port) => FourLetter(port, "srvr");

    // ------------------------------------------------------------------ configuration

    [Fact]
    public void Observer_server_lines_are_accepted_and_the_server_list_decides_the_role_as_upstream()
    {
        string dir = Path.Combine(_root, "cfg");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "myid"), "3\n");
        var c = KeeperConfig.Parse($"tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir={dir}\nclientPort=0\n"
            + "server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\nserver.3=127.0.0.1:2890:3890:observer\n");
        c.Quorum.Validate(c);
        Assert.True(c.Quorum.IAmObserver);
        Assert.Equal(LearnerType.Observer, c.Quorum.PeerType);
        // upstream QuorumPeerConfig.setupPeerType: the server line wins over peerType, with a warning
        Assert.Contains(c.Quorum.Warnings, w => w.Contains("doesn't match peerType", StringComparison.Ordinal));
        Assert.Equal(2, c.Quorum.Voters.Count());
        Assert.True(c.Quorum.IsQuorumMode);
        Assert.Contains("server.3=127.0.0.1:2890:3890:observer\n", c.Quorum.VerifierString());
    }

    // ------------------------------------------------------------------ wire: a hand-driven leader

    internal static byte[] CreateEntry(long zxid, string path)
    {
        var hdr = new TxnHeader { ClientId = 0x55, Cxid = 1, Zxid = zxid, Time = 1, Type = OpCode.Create };
        var txn = new CreateTxn { Path = path, Data = "v"u8.ToArray(), Acl = [new ACL { Perms = Perms.All, Id = new Id { Scheme = "world", IdValue = "anyone" } }], Ephemeral = false, ParentCVersion = 1 };
        return [.. hdr.ToBytes(), .. txn.ToBytes()];
    }

    private static void Write(Stream s, int type, long zxid, byte[]? data) =>
        s.Write(new QuorumPacket { Type = type, Zxid = zxid, Data = data, Authinfo = null }.ToBytes());

    [Fact]
    public async Task A_Keeper_observer_registers_with_OBSERVERINFO_applies_INFORM_and_never_acks_a_proposal()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var quorum = new QuorumConfig { InitLimit = 10, SyncLimit = 5 };
        quorum.Apply("server.1", $"127.0.0.1:{port}:1");
        quorum.Apply("server.2", "127.0.0.1:2:3");
        quorum.Apply("server.3", "127.0.0.1:4:5:observer");
        var config = new KeeperConfig { DataDir = Path.Combine(_root, "wire"), TickTime = 500 };
        Directory.CreateDirectory(config.DataDir);
        using var store = new LearnerStore(config, Log);
        var observer = new ZabFollower(3, quorum, config, store, Log, _ => { }, server: null, observer: true);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var run = Task.Run(() => observer.Follow(new IPEndPoint(IPAddress.Loopback, port), cts.Token));

        using var conn = await listener.AcceptTcpClientAsync(cts.Token);
        listener.Stop();
        conn.ReceiveTimeout = 10000;
        var net = conn.GetStream();
        var reader = new ZabReader(net, 1 << 20);
        var first = reader.ReadPacket();
        Assert.Equal(ZabType.ObserverInfo, first.Type);               // 16, not FOLLOWERINFO
        Assert.Equal(0L, first.Zxid);                                 // acceptedEpoch 0 << 32
        var li = new JuteReader(first.Data!, 1 << 20);
        Assert.Equal(3L, LearnerInfo.Read(ref li).Serverid);

        long epoch1 = ZabType.MakeZxid(1, 0);
        var ver = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(ver, ZabType.ProtocolVersion);
        Write(net, ZabType.LeaderInfo, epoch1, ver);
        Assert.Equal(ZabType.AckEpoch, reader.ReadPacket().Type);
        Write(net, ZabType.Diff, 0, null);
        // a commit made while the observer syncs reaches it as INFORM, before and after NEWLEADER
        Write(net, ZabType.Inform, epoch1 + 1, CreateEntry(epoch1 + 1, "/during-sync"));
        Write(net, ZabType.NewLeader, epoch1, null);
        var ack = reader.ReadPacket();
        Assert.Equal((ZabType.Ack, epoch1), (ack.Type, ack.Zxid));
        Write(net, ZabType.Inform, epoch1 + 2, CreateEntry(epoch1 + 2, "/after-newleader"));
        Write(net, ZabType.UpToDate, -1, null);
        ack = reader.ReadPacket();
        Assert.Equal((ZabType.Ack, epoch1), (ack.Type, ack.Zxid));    // UPTODATE's ack carries the new epoch's zxid
        await Until(() => observer.UpToDate, "the observer did not reach the broadcast phase");
        Assert.NotNull(store.Read(t => t.GetNode("/during-sync")));
        Assert.NotNull(store.Read(t => t.GetNode("/after-newleader")));

        // broadcast: a PROPOSAL is ignored (no ACK), an INFORM is applied; the next packet the
        // leader reads is the PING answer, so no ACK was sent in between
        Write(net, ZabType.Proposal, epoch1 + 3, CreateEntry(epoch1 + 3, "/proposed-only"));
        Write(net, ZabType.Commit, epoch1 + 3, null);
        Write(net, ZabType.Inform, epoch1 + 4, CreateEntry(epoch1 + 4, "/informed"));
        Write(net, ZabType.Ping, epoch1 + 4, null);
        var next = reader.ReadPacket();
        Assert.Equal(ZabType.Ping, next.Type);
        Assert.Null(store.Read(t => t.GetNode("/proposed-only")));
        Assert.NotNull(store.Read(t => t.GetNode("/informed")));
        Assert.Equal(epoch1 + 4, store.LastLoggedZxid);               // INFORMs are logged, as upstream's syncEnabled observer

        // INFORMANDACTIVATE (the designated leader, then a reconfig proposal): committed like an
        // INFORM; without reconfigEnabled the membership is not activated and observing goes on
        // (upstream processReconfig returns at once when reconfig is disabled)
        const string newConfig = "server.1=127.0.0.1:1:2:participant\nversion=100000005";
        var rh = new TxnHeader { ClientId = 0x55, Cxid = 2, Zxid = epoch1 + 5, Time = 1, Type = OpCode.Reconfig };
        byte[] entry = [.. rh.ToBytes(), .. new SetDataTxn { Path = DataTree.ConfigPath, Data = System.Text.Encoding.UTF8.GetBytes(newConfig), Version = -1 }.ToBytes()];
        var ia = new byte[8 + entry.Length];
        BinaryPrimitives.WriteInt64BigEndian(ia, 1);
        entry.CopyTo(ia, 8);
        Write(net, ZabType.InformAndActivate, epoch1 + 5, ia);
        Write(net, ZabType.Ping, epoch1 + 5, null);
        Assert.Equal(ZabType.Ping, reader.ReadPacket().Type);
        Assert.Equal(newConfig, System.Text.Encoding.UTF8.GetString(store.Read(t => t.GetNode(DataTree.ConfigPath)!.Data!)));
        Assert.False(run.IsCompleted);
        conn.Close();
        await Assert.ThrowsAnyAsync<Exception>(() => run); // the leader gone: the observer stops
    }

    // ------------------------------------------------------------------ live ensembles with Apache 3.8

    [Fact]
    public async Task A_Keeper_observes_an_Apache_leader_serves_clients_and_forwards_writes()
    {
        _layout.Observers.Add(3);
        var a1 = Apache(1);
        var a2 = Apache(2);
        Assert.Equal("leader", await a2.WaitForModeAsync(Wait));
        var k3 = Keeper(3);
        await Until(() => k3.Observing, "the Keeper did not observe the Apache leader");
        Assert.Equal(ServerState.Observing, k3.State);
        Assert.Equal(2, k3.LeaderId);
        Assert.Contains("Mode: observer\n", await Srvr(_layout.ClientPorts[2]));
        var km = await Mntr(_layout.ClientPorts[2]);
        Assert.Equal("observer", km["zk_server_state"]);
        Assert.Equal("2", km["zk_quorum_size"]);
        // as Debian's 3.8.0 observer (and follower): no leader gauges, no proposal sizes
        Assert.False(km.ContainsKey("zk_synced_followers") || km.ContainsKey("zk_last_proposal_size") || km.ContainsKey("zk_synced_observers"));
        var apacheFollower = await Mntr(_layout.ClientPorts[0]);
        Assert.Equal(apacheFollower.ContainsKey("zk_last_proposal_size"), km.ContainsKey("zk_last_proposal_size"));
        // the Apache leader counts it as a synced observer, not as a follower
        var am = await Mntr(_layout.ClientPorts[1]);
        Assert.Equal("1", am["zk_synced_observers"]);
        Assert.Equal("1", am["zk_synced_followers"]);

        // a write through the observer goes to the leader; the observer applies the INFORM
        await using var viaKeeper = await KeeperClient.ConnectAsync($"127.0.0.1:{_layout.ClientPorts[2]}");
        await viaKeeper.CreateAsync("/via-observer", "o"u8.ToArray(), Acls.OpenAclUnsafe);
        await using var viaApache = await KeeperClient.ConnectAsync($"127.0.0.1:{_layout.ClientPorts[0]}");
        await viaApache.SyncAsync("/");
        var (data, _) = await viaApache.GetDataAsync("/via-observer");
        Assert.Equal("o"u8.ToArray(), data);
        await viaApache.CreateAsync("/via-apache", null, Acls.OpenAclUnsafe);
        await Until(() => k3.Store.Read(t => t.GetNode("/via-apache") is not null), "the observer did not apply a write made at a follower");
    }

    [Fact]
    public async Task An_Apache_observer_of_a_Keeper_leader_gets_INFORMs_and_does_not_count_in_the_quorum()
    {
        _layout.Observers.Add(3);
        var k1 = Keeper(1);
        var k2 = Keeper(2);
        await Until(() => k2.Leading && k1.Synced, "the Keepers did not elect keeper 2");
        var a3 = Apache(3);
        Assert.Equal("observer", await a3.WaitForModeAsync(Wait));
        await Until(() => k2.Server!.LeaderStats is { SyncedObservers: 1 }, "the Keeper leader does not count a synced observer");
        var lm = await Mntr(_layout.ClientPorts[1]);
        Assert.Equal("leader", lm["zk_server_state"]);
        Assert.Equal("1", lm["zk_synced_followers"]);
        Assert.Equal("1", lm["zk_synced_observers"]);
        Assert.Equal("2", lm["zk_learners"]);
        Assert.Equal("2", lm["zk_quorum_size"]);
        Assert.Contains("Proposal sizes last/min/max: ", await Srvr(_layout.ClientPorts[1]));

        // writes through the Apache observer are forwarded and come back as INFORM
        await using (var viaObserver = await KeeperClient.ConnectAsync($"127.0.0.1:{_layout.ClientPorts[2]}"))
        {
            for (int i = 0; i < 5; i++) await viaObserver.CreateAsync($"/obs{i}", new[] { (byte)i }, Acls.OpenAclUnsafe);
            await Until(() => k1.Store.Read(t => t.GetNode("/obs4") is not null), "keeper 1 did not apply the observer's writes");
            await using var viaLeader = await KeeperClient.ConnectAsync($"127.0.0.1:{_layout.ClientPorts[1]}");
            await viaLeader.CreateAsync("/from-leader", null, Acls.OpenAclUnsafe);
            await viaObserver.SyncAsync("/");
            Assert.NotNull(await viaObserver.ExistsAsync("/from-leader"));
        }
        var proposals = k2.Server!.LeaderStats!;
        Assert.True(proposals.LastProposalSize > 0 && proposals.MinProposalSize <= proposals.MaxProposalSize);

        // the follower stops: the leader and the observer are not a quorum of the two voters
        await k1.DisposeAsync();
        _members.Remove(k1);
        await Until(() => !k2.Leading, "the leader kept leading with an observer as its only learner");
    }
}
