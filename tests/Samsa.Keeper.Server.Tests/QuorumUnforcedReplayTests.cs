using System.Net;
using System.Net.Sockets;
using Samsa.Keeper.Protocol;
using Samsa.Keeper.Protocol.Records;
using Samsa.Keeper.Server.Quorum;
using Xunit;

namespace Samsa.Keeper.Server.Tests;

/// <summary>
/// A follower appends proposals to its txn log and forces them as a batch just before its next
/// read would block. When following ends in the middle of such a batch, the proposals already
/// count in the last logged zxid it reports to the next leader, so they must be in its tree before
/// it follows again. Found by tests/ensemble/fault_test.py pause-follower (1 Keeper + 2 Apache,
/// Apache leads, --burst 50): the paused Keeper had appended a burst of 50 creates it never got
/// the COMMITs for, reported the last one, got a DIFF starting after it, and served without them.
/// </summary>
public sealed class QuorumUnforcedReplayTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "samsa-unforced-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    private static byte[] Packet(int type, long zxid, byte[]? data) =>
        new QuorumPacket { Type = type, Zxid = zxid, Data = data, Authinfo = null }.ToBytes();

    [Fact]
    public async Task Proposals_appended_before_following_ended_mid_batch_are_in_the_tree_before_following_again()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var config = FakeZabLeader.Config(port, _dir);
        var lines = new List<string>();
        using var store = new LearnerStore(config, l => { lock (lines) lines.Add(l); });
        var follower = new ZabFollower(2, config.Quorum, config, store, l => { lock (lines) lines.Add(l); }, _ => { });
        long e1 = FakeZabLeader.Epoch1;

        var leader = Task.Run(async () =>
        {
            using var c = await listener.AcceptTcpClientAsync();
            var s = c.GetStream();
            FakeZabLeader.SyncEmpty(s, new ZabReader(s, 1 << 20));
            // a proposal with more data right behind it (the follower does not force it yet), then
            // a packet that ends following (a PROPOSAL without data)
            s.Write([.. Packet(ZabType.Proposal, e1 + 1, QuorumObserverTests.CreateEntry(e1 + 1, "/appended")), .. Packet(ZabType.Proposal, e1 + 2, null)]);
            await Task.Delay(2000);
        });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await Assert.ThrowsAnyAsync<IOException>(() => Task.Run(() => follower.Follow(new IPEndPoint(IPAddress.Loopback, port), cts.Token)));
        listener.Stop();
        await leader;

        Assert.Equal(e1 + 1, store.LastLoggedZxid); // what the next ACKEPOCH and vote report
        // what Follow / Lead do first (ZabFollower.Follow, ZabLeader): the tree catches up with the log
        store.ApplyLoggedNotCommitted(l => { lock (lines) lines.Add(l); });
        lock (lines) Assert.True(store.Read(t => t.GetNode("/appended")) is not null, "the appended proposal is not in the tree; follower: " + string.Join(" | ", lines));
        Assert.Equal(store.LastLoggedZxid, store.Tree.LastProcessedZxid);
    }
}
