using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Samsa.Keeper.Client;
using Samsa.Keeper.Server.Quorum;
using Xunit;
using Xunit.Abstractions;

namespace Samsa.Keeper.Server.Tests;

/// <summary>
/// A client of the wire protocol that sets what KeeperClient does not: ConnectRequest.readOnly,
/// a given session id and password; it reports what the server answered, or that it closed.
/// </summary>
internal sealed class RawSession : IDisposable
{
    private readonly TcpClient _c = new();
    private NetworkStream _s = null!;
    private int _xid;
    public long SessionId;
    public byte[] Passwd = new byte[16];
    public int Timeout;
    public bool ReadOnly;
    public int FrameLength;

    /// <summary>Null when the server closed the connection instead of answering.</summary>
    public static async Task<RawSession?> ConnectAsync(int port, bool readOnly, long sessionId = 0, byte[]? passwd = null)
    {
        var r = new RawSession();
        await r._c.ConnectAsync(IPAddress.Loopback, port);
        r._s = r._c.GetStream();
        r._s.ReadTimeout = 10_000;
        var body = new List<byte>();
        void Int(int v) { var b = new byte[4]; BinaryPrimitives.WriteInt32BigEndian(b, v); body.AddRange(b); }
        void Long(long v) { var b = new byte[8]; BinaryPrimitives.WriteInt64BigEndian(b, v); body.AddRange(b); }
        Int(0); Long(0); Int(10_000); Long(sessionId);
        var pw = passwd ?? new byte[16];
        Int(pw.Length); body.AddRange(pw);
        body.Add(readOnly ? (byte)1 : (byte)0);
        await r.SendAsync(body.ToArray());
        var frame = await r.ReadFrameAsync();
        if (frame is null) { r.Dispose(); return null; }
        r.FrameLength = frame.Length;
        // anything shorter than a ConnectResponse establishes no session (seen from Apache 3.8 in
        // read-only mode answering a client without readOnly)
        if (frame.Length < 20) return r;
        r.Timeout = BinaryPrimitives.ReadInt32BigEndian(frame.AsSpan(4));
        r.SessionId = BinaryPrimitives.ReadInt64BigEndian(frame.AsSpan(8));
        int n = BinaryPrimitives.ReadInt32BigEndian(frame.AsSpan(16));
        r.Passwd = frame.AsSpan(20, n).ToArray();
        r.ReadOnly = frame.Length > 20 + n && frame[20 + n] != 0;
        return r;
    }

    private async Task SendAsync(byte[] body)
    {
        var f = new byte[4 + body.Length];
        BinaryPrimitives.WriteInt32BigEndian(f, body.Length);
        body.CopyTo(f, 4);
        await _s.WriteAsync(f);
    }

    private async Task<byte[]?> ReadFrameAsync()
    {
        var len = new byte[4];
        try
        {
            if (!await ReadExactly(len)) return null;
            var f = new byte[BinaryPrimitives.ReadInt32BigEndian(len)];
            return await ReadExactly(f) ? f : null;
        }
        catch (IOException) { return null; }
    }

    private async Task<bool> ReadExactly(byte[] b)
    {
        int got = 0;
        while (got < b.Length)
        {
            int n = await _s.ReadAsync(b.AsMemory(got)).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            if (n == 0) return false;
            got += n;
        }
        return true;
    }

    private static byte[] Str(string s)
    {
        var b = Encoding.UTF8.GetBytes(s);
        var r = new byte[4 + b.Length];
        BinaryPrimitives.WriteInt32BigEndian(r, b.Length);
        b.CopyTo(r, 4);
        return r;
    }

    /// <summary>Sends one request; returns the reply's error code and body, or null when the connection closed.</summary>
    public async Task<(int Err, byte[] Body)?> CallAsync(int type, byte[] body)
    {
        int xid = ++_xid;
        var f = new byte[8 + body.Length];
        BinaryPrimitives.WriteInt32BigEndian(f, xid);
        BinaryPrimitives.WriteInt32BigEndian(f.AsSpan(4), type);
        body.CopyTo(f, 8);
        await SendAsync(f);
        var rsp = await ReadFrameAsync();
        if (rsp is null) return null;
        return (BinaryPrimitives.ReadInt32BigEndian(rsp.AsSpan(12)), rsp.AsSpan(16).ToArray());
    }

    public Task<(int Err, byte[] Body)?> GetDataAsync(string path) => CallAsync(4, [.. Str(path), 0]);

    public Task<(int Err, byte[] Body)?> CreateAsync(string path, int flags = 0)
    {
        // path, data (empty), ACL world:anyone ALL, flags
        var acl = new List<byte>();
        acl.AddRange([0, 0, 0, 1, 0, 0, 0, 31]);
        acl.AddRange(Str("world"));
        acl.AddRange(Str("anyone"));
        var fl = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(fl, flags);
        return CallAsync(1, [.. Str(path), 0, 0, 0, 0, .. acl, .. fl]);
    }

    public Task<(int Err, byte[] Body)?> SyncAsync(string path) => CallAsync(9, Str(path));

    /// <summary>True when the server closes the connection within the timeout.</summary>
    public async Task<bool> ClosedAsync(TimeSpan timeout)
    {
        var b = new byte[4096];
        var end = DateTime.UtcNow + timeout;
        try
        {
            while (DateTime.UtcNow < end)
            {
                var t = _s.ReadAsync(b).AsTask();
                if (await Task.WhenAny(t, Task.Delay(end - DateTime.UtcNow)) != t) return false;
                if (await t == 0) return true;
            }
        }
        catch (IOException) { return true; }
        return false;
    }

    public void Dispose() => _c.Dispose();
}

/// <summary>
/// Local sessions (localSessionsEnabled), as upstream's LocalSessionTracker/UpgradeableSessionTracker:
/// created on the member the client connects to without a createSession txn, unable to move,
/// upgraded to a global session by the first ephemeral create (or refused it with upgrading off);
/// in Keeper-only ensembles and with Apache 3.8 members on both sides of the leader link.
/// </summary>
public sealed class LocalSessionTests(ITestOutputHelper output)
    : QuorumEnsembleTestBase(output, "keeper-localsess-", TimeSpan.FromSeconds(90))
{
    private const string On = "localSessionsEnabled=true";
    // upstream's QuorumPeerConfig leaves upgrading off unless the line says otherwise
    private const string Up = "localSessionsUpgradingEnabled=true";

    private async Task<QuorumMember[]> ThreeKeepers(params string[] extra)
    {
        var ks = new[] { Keeper(1, extra), Keeper(2, extra), Keeper(3, extra) };
        await Until(() => ks.Count(k => k.Leading) == 1 && ks.Count(k => k.Synced) == 2, "the Keeper ensemble did not form");
        return ks;
    }

    private static bool GlobalAnywhere(QuorumMember[] ks, long id) => ks.Any(k => k.Store.Sessions.ContainsKey(id));

    [Fact]
    public async Task LocalSession_is_created_without_a_txn_writes_through_the_leader_and_cannot_move()
    {
        var ks = await ThreeKeepers(On);
        foreach (var k in ks)
        {
            int port = k.ClientEndPoint!.Port;
            long zxidBefore = k.Store.Tree.LastProcessedZxid;
            await using var c = await Connect(port);
            // the member's id in the top byte, as a global session's
            Assert.Equal(k.MyId, c.SessionId >>> 56);
            Assert.False(GlobalAnywhere(ks, c.SessionId));
            Assert.Equal(zxidBefore, k.Store.Tree.LastProcessedZxid); // no createSession txn
            // a write of a local session passes the leader's session check
            await c.CreateAsync($"/by-local-{k.MyId}", "v"u8.ToArray(), Acls.OpenAclUnsafe);
            Assert.NotNull(await c.ExistsAsync($"/by-local-{k.MyId}"));
            Assert.False(GlobalAnywhere(ks, c.SessionId));
            // the same session through another member: unknown to the leader's global tracker, so
            // expired — the leader's own local sessions too (an Apache 3.8 leader's as well:
            // tests/ensemble/sessions_readonly.py, "apache" ensemble)
            var other = ks.First(o => o != k);
            using var moved = await RawSession.ConnectAsync(other.ClientEndPoint!.Port, false, c.SessionId, c.SessionPassword);
            Assert.True(moved is null || (moved.Timeout == 0 && moved.SessionId == 0), $"local session 0x{c.SessionId:x} moved to member {other.MyId}");
            // and back on its own member it still lives
            using var back = await RawSession.ConnectAsync(port, false, c.SessionId, c.SessionPassword);
            Assert.NotNull(back);
            Assert.Equal(c.SessionId, back!.SessionId);
            Assert.True(back.Timeout > 0);
        }
    }

    [Fact]
    public async Task LocalSession_upgrades_on_its_first_ephemeral_and_then_moves_and_owns_the_node()
    {
        var ks = await ThreeKeepers(On, Up);
        foreach (var k in ks)
        {
            await using var c = await Connect(k.ClientEndPoint!.Port);
            long id = c.SessionId;
            Assert.False(GlobalAnywhere(ks, id));
            await c.CreateAsync($"/eph-{k.MyId}", null, Acls.OpenAclUnsafe, Samsa.Keeper.Client.CreateMode.Ephemeral);
            var st = await c.ExistsAsync($"/eph-{k.MyId}");
            Assert.Equal(id, st!.EphemeralOwner);
            await Until(() => ks.All(m => m.Store.Sessions.ContainsKey(id)), "the upgraded session is not global on every member");
            // a global session moves to another member (the leader revalidates it)
            var other = ks.First(o => o != k);
            using var moved = await RawSession.ConnectAsync(other.ClientEndPoint!.Port, false, id, c.SessionPassword);
            Assert.NotNull(moved);
            Assert.Equal(id, moved!.SessionId);
            // a multi holding an ephemeral create upgrades too
            await using var m2 = await Connect(k.ClientEndPoint!.Port);
            await m2.MultiAsync([Op.Create($"/multi-eph-{k.MyId}", null, Acls.OpenAclUnsafe, Samsa.Keeper.Client.CreateMode.Ephemeral)]);
            Assert.Equal(m2.SessionId, (await m2.ExistsAsync($"/multi-eph-{k.MyId}"))!.EphemeralOwner);
            Assert.True(GlobalAnywhere(ks, m2.SessionId));
        }
        // closing an upgraded session removes its ephemerals everywhere
        await using var z = await Connect(ks[0].ClientEndPoint!.Port);
        await z.CreateAsync("/gone-with-session", null, Acls.OpenAclUnsafe, Samsa.Keeper.Client.CreateMode.Ephemeral);
        long zid = z.SessionId;
        await z.DisposeAsync();
        await Until(() => ks.All(m => m.Store.Read(t => t.GetNode("/gone-with-session")) is null && !m.Store.Sessions.ContainsKey(zid)), "the ephemeral outlived its closed session");
    }

    [Fact]
    public async Task LocalSession_with_upgrading_disabled_refuses_ephemerals_with_EphemeralOnLocalSession()
    {
        // upgrading is off by default, as upstream; said explicitly on one member
        var ks = new[] { Keeper(1, On), Keeper(2, On, "localSessionsUpgradingEnabled=false"), Keeper(3, On) };
        await Until(() => ks.Count(k => k.Leading) == 1 && ks.Count(k => k.Synced) == 2, "the Keeper ensemble did not form");
        foreach (var k in ks)
        {
            await using var c = await Connect(k.ClientEndPoint!.Port);
            var e = await Assert.ThrowsAsync<Samsa.Keeper.Client.KeeperException>(() =>
                c.CreateAsync($"/eph-{k.MyId}", null, Acls.OpenAclUnsafe, Samsa.Keeper.Client.CreateMode.Ephemeral));
            Assert.Equal(Samsa.Keeper.Protocol.Code.EphemeralOnLocalSession, e.Code);
            Assert.False(GlobalAnywhere(ks, c.SessionId));
            // persistent nodes are still fine
            await c.CreateAsync($"/p-{k.MyId}", null, Acls.OpenAclUnsafe);
        }
    }

    [Fact]
    public async Task LocalSession_of_a_Keeper_follower_under_an_Apache_leader_writes_and_upgrades()
    {
        var a2 = ApacheQuorumPeer.StartWith(_layout, 2, _root, [On, Up]);
        _members.Add(a2);
        var a3 = ApacheQuorumPeer.StartWith(_layout, 3, _root, [On, Up]);
        _members.Add(a3);
        Assert.Equal("leader", await a3.WaitForModeAsync(Wait));
        var k1 = Keeper(1, On, Up);
        await Until(() => k1.Synced, "keeper 1 did not sync");
        await using var c = await Connect(k1.ClientEndPoint!.Port);
        Assert.Equal(1, c.SessionId >>> 56);
        Assert.False(k1.Store.Sessions.ContainsKey(c.SessionId));
        await c.CreateAsync("/keeper-local", "x"u8.ToArray(), Acls.OpenAclUnsafe);
        await using var viaApache = await Connect(a3.ClientPort);
        Assert.Equal("x"u8.ToArray(), (await viaApache.GetDataAsync("/keeper-local")).Data);
        await c.CreateAsync("/keeper-eph", null, Acls.OpenAclUnsafe, Samsa.Keeper.Client.CreateMode.Ephemeral);
        // another session's read needs a sync to be sure to see it (the Apache leader applies commits asynchronously)
        await viaApache.SyncAsync("/keeper-eph");
        Assert.Equal(c.SessionId, (await viaApache.ExistsAsync("/keeper-eph"))!.EphemeralOwner);
        Assert.True(k1.Store.Sessions.ContainsKey(c.SessionId));
        // an Apache member's local session cannot move to the Keeper (the Apache leader does not know it)
        await using var ac = await Connect(a2.ClientPort);
        await ac.CreateAsync("/apache-local", null, Acls.OpenAclUnsafe);
        using var moved = await RawSession.ConnectAsync(k1.ClientEndPoint!.Port, false, ac.SessionId, ac.SessionPassword);
        Assert.True(moved is null || moved.Timeout == 0, "an Apache member's local session moved to the Keeper");
    }

    [Fact]
    public async Task LocalSession_of_an_Apache_follower_writes_and_upgrades_through_a_Keeper_leader()
    {
        var a1 = ApacheQuorumPeer.StartWith(_layout, 1, _root, [On, Up]);
        _members.Add(a1);
        var a2 = ApacheQuorumPeer.StartWith(_layout, 2, _root, [On, Up]);
        _members.Add(a2);
        var k3 = Keeper(3, On, Up);
        await Until(() => k3.Leading, "keeper 3 did not lead");
        await a1.WaitForModeAsync(Wait);
        await using var c = await Connect(a1.ClientPort);
        Assert.Equal(1, c.SessionId >>> 56);
        await c.CreateAsync("/apache-local", "a"u8.ToArray(), Acls.OpenAclUnsafe);
        Assert.False(k3.Store.Sessions.ContainsKey(c.SessionId));
        await c.CreateAsync("/apache-eph", null, Acls.OpenAclUnsafe, Samsa.Keeper.Client.CreateMode.Ephemeral);
        Assert.True(k3.Store.Sessions.ContainsKey(c.SessionId));
        await using var viaKeeper = await Connect(k3.ClientEndPoint!.Port);
        Assert.Equal(c.SessionId, (await viaKeeper.ExistsAsync("/apache-eph"))!.EphemeralOwner);
        // the Keeper leader's own local session: no txn, and its writes reach the Apache members
        Assert.False(k3.Store.Sessions.ContainsKey(viaKeeper.SessionId));
        await viaKeeper.CreateAsync("/keeper-leader-local", "k"u8.ToArray(), Acls.OpenAclUnsafe);
        await using var viaA2 = await Connect(a2.ClientPort);
        await viaA2.SyncAsync("/keeper-leader-local");
        Assert.Equal("k"u8.ToArray(), (await viaA2.GetDataAsync("/keeper-leader-local")).Data);
    }
}
