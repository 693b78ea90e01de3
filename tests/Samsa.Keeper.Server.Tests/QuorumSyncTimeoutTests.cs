using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Samsa.Keeper.Protocol;
using Samsa.Keeper.Protocol.Records;
using Samsa.Keeper.Server.Quorum;
using Xunit;
using Xunit.Abstractions;

namespace Samsa.Keeper.Server.Tests;

/// <summary>
/// A learner syncing with a Keeper leader has initLimit ticks to ACK NEWLEADER (it is logging and
/// applying the DIFF), syncLimit only after that, as upstream's LearnerHandler. Found by
/// tests/ensemble/fault_test.py with pipelined load (--burst): a Keeper restarted behind a leader
/// committing thousands of txns a second was dropped after syncLimit in every sync attempt and
/// never served again.
/// </summary>
public sealed class QuorumSyncTimeoutTests(ITestOutputHelper output)
    : QuorumEnsembleTestBase(output, "keeper-synctimeout-", TimeSpan.FromSeconds(30))
{
    [Fact]
    public async Task A_learner_that_acks_NEWLEADER_after_syncLimit_but_within_initLimit_is_brought_up_to_date()
    {
        // syncLimit 2 ticks = 1 s, initLimit 10 ticks = 5 s; the fake learner (sid 1) ACKs NEWLEADER after 2.5 s
        var ks = new[] { Keeper(2, "syncLimit=2"), Keeper(3, "syncLimit=2") };
        await Until(() => ks.Count(k => k.Leading) == 1 && ks.Count(k => k.Synced) == 1, "no Keeper leader with a synced follower");
        var leader = ks.Single(k => k.Leading);

        using var c = new TcpClient();
        await c.ConnectAsync(IPAddress.Loopback, _layout.QuorumPorts[leader.MyId - 1]);
        c.ReceiveTimeout = 10_000;
        var net = c.GetStream();
        var reader = new ZabReader(net, 1 << 20);
        var info = new LearnerInfo { Serverid = 1, ProtocolVersion = ZabType.ProtocolVersion, ConfigVersion = 0 };
        ZabWriter.Write(net, ZabType.FollowerInfo, 0, info.ToBytes());
        var leaderInfo = reader.ReadPacket();
        Assert.Equal(ZabType.LeaderInfo, leaderInfo.Type);
        var epochBytes = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(epochBytes, 0);
        ZabWriter.Write(net, ZabType.AckEpoch, 0, epochBytes);

        QuorumPacket qp;
        do qp = reader.ReadPacket(); while (qp.Type != ZabType.NewLeader);
        long newLeaderZxid = qp.Zxid;
        await Task.Delay(2500);
        ZabWriter.Write(net, ZabType.Ack, newLeaderZxid, null);

        // without the initLimit timeout the leader closed the connection after 1 s: ReadPacket fails
        var seen = new List<string>();
        do
        {
            qp = reader.ReadPacket();
            seen.Add(ZabType.Name(qp.Type));
        } while (qp.Type != ZabType.UpToDate && seen.Count < 1000);
        Assert.Equal(ZabType.UpToDate, qp.Type);
    }
}
