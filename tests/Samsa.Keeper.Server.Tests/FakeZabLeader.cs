using Samsa.Keeper.Server.Quorum;
using Xunit;

namespace Samsa.Keeper.Server.Tests;

/// <summary>The leader's side of a ZAB registration and sync, for tests that drive a ZabFollower
/// directly against a socket they control.</summary>
internal static class FakeZabLeader
{
    public static readonly long Epoch1 = ZabType.MakeZxid(1, 0);

    /// <summary>A three-member config whose server.1 quorum port is <paramref name="port"/> (the fake
    /// leader's listener); the follower under test is server 2. tickTime 1 s, initLimit 10.</summary>
    public static KeeperConfig Config(int port, string dataDir) =>
        KeeperConfig.Parse($"tickTime=1000\ninitLimit=10\nsyncLimit=5\ndataDir={dataDir}\nclientPort=2181\n" +
            $"server.1=127.0.0.1:{port}:{port + 1}\nserver.2=127.0.0.1:{port + 2}:{port + 3}\nserver.3=127.0.0.1:{port + 4}:{port + 5}\n");

    /// <summary>FOLLOWERINFO → LEADERINFO (epoch 1), ACKEPOCH → an empty DIFF and NEWLEADER, its ACK →
    /// UPTODATE, its ACK: the follower is then in the broadcast phase.</summary>
    public static void SyncEmpty(Stream s, ZabReader r)
    {
        Assert.Equal(ZabType.FollowerInfo, r.ReadPacket().Type);
        ZabWriter.Write(s, ZabType.LeaderInfo, Epoch1, [0, 1, 0, 0]);
        Assert.Equal(ZabType.AckEpoch, r.ReadPacket().Type);
        ZabWriter.Write(s, ZabType.Diff, 0, null);
        ZabWriter.Write(s, ZabType.NewLeader, Epoch1, null);
        Assert.Equal(ZabType.Ack, r.ReadPacket().Type);
        ZabWriter.Write(s, ZabType.UpToDate, -1, null);
        Assert.Equal(ZabType.Ack, r.ReadPacket().Type);
    }
}
