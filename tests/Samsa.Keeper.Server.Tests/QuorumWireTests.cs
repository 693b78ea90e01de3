using Samsa.Keeper.Server.Quorum;
using Xunit;

namespace Samsa.Keeper.Server.Tests;

/// <summary>The election wire formats against bytes captured from Debian's Apache ZooKeeper 3.8.0
/// (server.2 of a three-member loopback ensemble, connecting to server.1's election port).</summary>
public sealed class QuorumWireTests
{
    /// <summary>What 3.8.0 sent first: the initial message (protocol version -65536, sid 2, its
    /// election address).</summary>
    private const string CapturedInitialMessage = "ffffffffffff0000" + "0000000000000002" + "0000000f" + "3132372e302e302e313a3234323032";

    /// <summary>Then its first notification, framed: 0xb6 bytes; LOOKING, leader 2, zxid 0, round 1,
    /// peer epoch 0, version 2, and its 138-byte quorum config.</summary>
    private const string CapturedNotificationFrame =
        "000000b6" + "00000000" + "0000000000000002" + "0000000000000000" + "0000000000000001" + "0000000000000000" + "00000002" + "0000008a" +
        "7365727665722e313d3132372e302e302e313a32343130313a32343130323a7061727469636970616e740a" +
        "7365727665722e323d3132372e302e302e313a32343230313a32343230323a7061727469636970616e740a" +
        "7365727665722e333d3132372e302e302e313a32343330313a32343330323a7061727469636970616e740a" +
        "76657273696f6e3d30";

    private static QuorumConfig CapturedEnsembleConfig()
    {
        var c = new QuorumConfig();
        c.Apply("server.1", "127.0.0.1:24101:24102");
        c.Apply("server.2", "127.0.0.1:24201:24202");
        c.Apply("server.3", "127.0.0.1:24301:24302");
        return c;
    }

    [Fact]
    public async Task The_initial_message_of_a_3_8_peer_is_read_and_ours_is_byte_identical()
    {
        var bytes = Convert.FromHexString(CapturedInitialMessage);
        var (sid, addr) = await QuorumCnxManager.ReadInitialMessageAsync(new MemoryStream(bytes), default);
        Assert.Equal(2, sid);
        Assert.Equal("127.0.0.1:24202", addr);
        Assert.Equal(CapturedInitialMessage, Convert.ToHexString(QuorumCnxManager.InitialMessage(2, "127.0.0.1:24202")).ToLowerInvariant());
    }

    [Fact]
    public void A_3_8_notification_decodes_and_ours_encodes_to_the_same_bytes()
    {
        var frame = Convert.FromHexString(CapturedNotificationFrame);
        int len = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(frame);
        Assert.Equal(frame.Length - 4, len);
        var n = Notification.Decode(frame[4..], out var error);
        Assert.Null(error);
        Assert.NotNull(n);
        Assert.Equal(ServerState.Looking, n!.State);
        Assert.Equal(2, n.Leader);
        Assert.Equal(0, n.Zxid);
        Assert.Equal(1, n.ElectionEpoch);
        Assert.Equal(0, n.PeerEpoch);
        Assert.Equal(2, n.Version);
        // the config string a Keeper sends for the same zoo.cfg lines is upstream's QuorumMaj.toString
        Assert.Equal(n.Config, CapturedEnsembleConfig().VerifierString());
        var ours = new Notification(ServerState.Looking, 2, 0, 1, 0, Notification.CurrentVersion, CapturedEnsembleConfig().VerifierString()).Encode();
        Assert.Equal(Convert.ToHexString(frame[4..]), Convert.ToHexString(ours));
        var parsed = QuorumConfig.ParseVerifier(n.Config!);
        Assert.Equal(3, parsed.Servers.Count);
        Assert.Equal(24302, parsed.Servers[3].ElectionPort);
    }

    [Fact]
    public void Older_notification_formats_and_bad_lengths_follow_upstream()
    {
        var full = Convert.FromHexString(CapturedNotificationFrame)[4..];
        // 28 bytes (before ZOOKEEPER-107): the peer epoch is the zxid's epoch
        var old = full[..28].ToArray();
        System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(old.AsSpan(12), 0x0000000500000007);
        var n28 = Notification.Decode(old, out _);
        Assert.Equal(5, n28!.PeerEpoch);
        // 40 bytes: peer epoch, no version
        var n40 = Notification.Decode(full[..40], out _);
        Assert.Equal(0, n40!.Version);
        Assert.Null(n40.Config);
        // shorter than 28, and a config length past the end, are skipped (WorkerReceiver logs and continues)
        Assert.Null(Notification.Decode(full[..27], out var e1));
        Assert.NotNull(e1);
        var bad = full.ToArray();
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(bad.AsSpan(40), 100000);
        Assert.Null(Notification.Decode(bad, out var e2));
        Assert.Contains("configLength", e2);
        var badState = full.ToArray();
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(badState, 7);
        Assert.Null(Notification.Decode(badState, out _));
    }

    [Fact]
    public async Task Initial_messages_upstream_rejects_are_rejected()
    {
        // unknown protocol version
        var v = Convert.FromHexString("ffffffffffff0005" + "0000000000000002" + "0000000f" + "3132372e302e302e313a3234323032");
        await Assert.ThrowsAsync<InvalidDataException>(() => QuorumCnxManager.ReadInitialMessageAsync(new MemoryStream(v), default));
        // address longer than upstream's maxBuffer (2048): refused before allocating
        var big = Convert.FromHexString("ffffffffffff0000" + "0000000000000002" + "7fffffff");
        await Assert.ThrowsAsync<InvalidDataException>(() => QuorumCnxManager.ReadInitialMessageAsync(new MemoryStream(big), default));
        // an address without a port
        var noPort = Convert.FromHexString("ffffffffffff0000" + "0000000000000002" + "00000009" + "3132372e302e302e31");
        await Assert.ThrowsAsync<InvalidDataException>(() => QuorumCnxManager.ReadInitialMessageAsync(new MemoryStream(noPort), default));
        // a pre-3.5 peer sends its sid alone
        var legacy = Convert.FromHexString("0000000000000007");
        Assert.Equal((7L, (string?)null), await QuorumCnxManager.ReadInitialMessageAsync(new MemoryStream(legacy), default));
    }

    [Fact]
    public void Vote_order_is_epoch_then_zxid_then_sid()
    {
        Assert.True(FastLeaderElection.TotalOrderPredicate(1, 0, 2, 3, 100, 1)); // higher epoch wins over zxid and sid
        Assert.True(FastLeaderElection.TotalOrderPredicate(1, 101, 1, 3, 100, 1)); // then higher zxid
        Assert.True(FastLeaderElection.TotalOrderPredicate(3, 100, 1, 2, 100, 1)); // then higher sid
        Assert.False(FastLeaderElection.TotalOrderPredicate(2, 100, 1, 3, 100, 1));
    }

    [Fact]
    public void Quorum_packets_are_jute_records_back_to_back_and_bad_lengths_are_refused_before_allocating()
    {
        // ACK of zxid 0x100000001: type 3, zxid, null data (-1), null authinfo (-1)
        var ms = new MemoryStream();
        ZabWriter.Write(ms, ZabType.Ack, 0x100000001, null);
        Assert.Equal("00000003" + "0000000100000001" + "ffffffff" + "ffffffff", Convert.ToHexString(ms.ToArray()).ToLowerInvariant());
        // REQUEST with data and one auth id, then read back
        ms = new MemoryStream();
        ZabWriter.Write(ms, ZabType.Request, -1, [1, 2, 3], [new Samsa.Keeper.Protocol.Records.Id { Scheme = "digest", IdValue = "u:x" }]);
        ms.Position = 0;
        var p = new ZabReader(ms, 1000).ReadPacket();
        Assert.Equal(ZabType.Request, p.Type);
        Assert.Equal(-1, p.Zxid);
        Assert.Equal(new byte[] { 1, 2, 3 }, p.Data);
        Assert.Equal("u:x", Assert.Single(p.Authinfo!).IdValue);
        // a data length past jute.maxbuffer (+1024, upstream's allowance) is refused
        var huge = Convert.FromHexString("00000002" + "0000000100000001" + "7fffffff");
        Assert.Throws<InvalidDataException>(() => new ZabReader(new MemoryStream(huge), 1000).ReadPacket());
        var manyIds = Convert.FromHexString("00000005" + "0000000100000001" + "ffffffff" + "00100000");
        Assert.Throws<InvalidDataException>(() => new ZabReader(new MemoryStream(manyIds), 1000).ReadPacket());
        // a truncated stream is an EndOfStreamException (the follower drops the leader and elects again)
        Assert.Throws<EndOfStreamException>(() => new ZabReader(new MemoryStream([0, 0, 0]), 1000).ReadPacket());
    }

    [Fact]
    public void A_snapshot_stream_needs_upstreams_signature()
    {
        // no sessions, no ACLs, the root node, the end marker "/", then a wrong signature
        var ms = new MemoryStream();
        void Int(int v) { var b = new byte[4]; System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(b, v); ms.Write(b); }
        void Long(long v) { var b = new byte[8]; System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(b, v); ms.Write(b); }
        void Str(string v) { var b = System.Text.Encoding.UTF8.GetBytes(v); Int(b.Length); ms.Write(b); }
        Int(0); Int(0);
        Str(""); Int(-1); Long(-1); for (int i = 0; i < 4; i++) Long(0); Int(0); Int(0); Int(0); Long(0); Long(0);
        Str("/");
        long sigAt = ms.Length;
        Str("BenWasHere");
        ms.Position = 0;
        var tree = new DataTree();
        Assert.Empty(new ZabReader(ms, 1000).ReadSnapshot(tree));
        Assert.NotNull(tree.GetNode("/"));
        ms.SetLength(sigAt);
        ms.Position = sigAt;
        Str("SomeoneElse");
        ms.Position = 0;
        Assert.Throws<InvalidDataException>(() => new ZabReader(ms, 1000).ReadSnapshot(new DataTree()));
    }
}
