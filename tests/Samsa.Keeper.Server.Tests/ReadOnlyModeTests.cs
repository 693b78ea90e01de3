using Samsa.Keeper.Client;
using Samsa.Keeper.Server.Quorum;
using Xunit;
using Xunit.Abstractions;

namespace Samsa.Keeper.Server.Tests;

/// <summary>
/// Read-only mode (readonlymode.enabled): a member that lost its quorum serves clients that asked
/// for read-only sessions — reads yes, writes NOTREADONLY, isro "ro" — refuses the others, and
/// returns to read-write when the quorum is back; Keeper-only and beside Apache 3.8 members (started
/// with -Dreadonlymode.enabled=true). The Apache-only baseline of the same checks is in
/// tests/ensemble/sessions_readonly.py.
/// </summary>
public sealed class ReadOnlyModeTests(ITestOutputHelper output)
    : QuorumEnsembleTestBase(output, "keeper-readonly-", TimeSpan.FromSeconds(90))
{
    private const string Ro = "readonlymode.enabled=true";

    private async Task StopKeeper(QuorumMember m)
    {
        _members.Remove(m);
        await m.DisposeAsync();
    }

    /// <summary>What a user checks at a member without quorum, whatever implements it.</summary>
    private async Task AssertServesReadOnly(int port, string who)
    {
        await Until(() => FourLetter(port, "isro").GetAwaiter().GetResult() == "ro", $"{who} never said isro=ro");
        Assert.Contains("Mode: read-only", await FourLetter(port, "srvr"));
        // a client that cannot be read-only is closed without an answer
        using (var plain = await RawSession.ConnectAsync(port, readOnly: false))
            Assert.True(plain is null || plain.Timeout == 0, $"{who} gave a session to a client without readOnly (answer of {plain?.FrameLength} bytes)");
        using var ro = await RawSession.ConnectAsync(port, readOnly: true);
        Assert.NotNull(ro);
        Assert.True(ro!.ReadOnly, $"{who}: ConnectResponse.readOnly is false");
        Assert.True(ro.Timeout > 0);
        var get = await ro.GetDataAsync("/data");
        Assert.NotNull(get);
        Assert.Equal(0, get!.Value.Err);
        Assert.Equal(-101, (await ro.GetDataAsync("/missing"))!.Value.Err); // NONODE: reads are real reads
        Assert.Equal(-119, (await ro.CreateAsync("/nope"))!.Value.Err);      // NOTREADONLY
        Assert.Equal(-119, (await ro.SyncAsync("/"))!.Value.Err);
        Assert.Equal(0, (await ro.CallAsync(11, []))!.Value.Err);             // ping
    }

    [Fact]
    public async Task ReadOnly_Keeper_without_quorum_serves_read_only_clients_and_returns_to_read_write()
    {
        var ks = new[] { Keeper(1, Ro), Keeper(2, Ro), Keeper(3, Ro) };
        await Until(() => ks.Count(k => k.Leading) == 1 && ks.Count(k => k.Synced) == 2, "the ensemble did not form");
        int port = ks[0].ClientEndPoint!.Port;
        Assert.Equal("rw", await FourLetter(port, "isro"));
        await using (var c = await Connect(port)) await c.CreateAsync("/data", "before"u8.ToArray(), Acls.OpenAclUnsafe);
        await Until(() => ks[0].Store.Read(t => t.GetNode("/data")) is not null, "member 1 did not see /data");

        await StopKeeper(ks[1]);
        await StopKeeper(ks[2]);
        await AssertServesReadOnly(port, "keeper 1");
        using var held = await RawSession.ConnectAsync(port, readOnly: true);
        Assert.NotNull(held);

        // the quorum returns: the member follows or leads again, its read-only clients are disconnected
        var k2 = Keeper(2, Ro);
        var k3 = Keeper(3, Ro);
        await Until(() => FourLetter(port, "isro").GetAwaiter().GetResult() == "rw", "keeper 1 stayed read-only");
        Assert.True(await held!.ClosedAsync(Wait), "a read-only connection outlived read-only mode");
        // a read-only-capable client now gets a read-write session, and the session made in
        // read-only mode is unknown to the ensemble
        using var rw = await RawSession.ConnectAsync(port, readOnly: true);
        Assert.NotNull(rw);
        Assert.False(rw!.ReadOnly);
        Assert.Equal(0, (await rw.CreateAsync("/after"))!.Value.Err);
        using var old = await RawSession.ConnectAsync(port, readOnly: true, held.SessionId, held.Passwd);
        Assert.True(old is null || old.Timeout == 0, "a read-only session survived into read-write mode");
    }

    [Fact]
    public async Task ReadOnly_mode_is_off_unless_enabled()
    {
        var ks = new[] { Keeper(1), Keeper(2), Keeper(3) };
        await Until(() => ks.Count(k => k.Leading) == 1 && ks.Count(k => k.Synced) == 2, "the ensemble did not form");
        int port = ks[0].ClientEndPoint!.Port;
        await StopKeeper(ks[1]);
        await StopKeeper(ks[2]);
        await Task.Delay(3000); // past upstream's max(2000 ms, tickTime) delay
        Assert.Equal("null", await FourLetter(port, "isro"));
        using var ro = await RawSession.ConnectAsync(port, readOnly: true);
        Assert.Null(ro);
    }

    [Fact]
    public async Task ReadOnly_Keeper_of_a_mixed_ensemble_without_quorum_serves_read_only_clients()
    {
        // Keeper 1 and Apache 2, 3; then the Keeper alone
        var a2 = Apache(2, Ro);
        var a3 = Apache(3, Ro);
        var k1 = Keeper(1, Ro);
        // whoever leads (Apache 3, or Apache 2 when it and the Keeper formed a quorum first)
        await a3.WaitForModeAsync(Wait);
        await Until(() => k1.Synced || k1.Leading, "keeper 1 did not join");
        int port = k1.ClientEndPoint!.Port;
        await using (var c = await Connect(a3.ClientPort)) await c.CreateAsync("/data", "x"u8.ToArray(), Acls.OpenAclUnsafe);
        await Until(() => k1.Store.Read(t => t.GetNode("/data")) is not null, "keeper 1 did not see /data");
        await a2.WaitForModeAsync(Wait);
        await Until(() => ReadSyncedOk(a2.ClientPort), "apache 2 did not see /data");

        await a3.DisposeAsync();
        _members.Remove(a3);
        // two members left without a quorum of three? No: 2 of 3 is a quorum — stop Apache 2 as well
        await a2.DisposeAsync();
        _members.Remove(a2);
        await AssertServesReadOnly(port, "keeper 1");

        // The Apache 3.8 baseline in the same situation is checked with kazoo by
        // tests/ensemble/sessions_readonly.py ("apache" ensemble: the same results). This raw client
        // misread Apache's read-only answers (a short answer to a client without readOnly, and
        // readOnly=false in the ConnectResponse where kazoo saw CONNECTED_RO) — not resolved yet.
    }

    private ApacheQuorumPeer Apache(long sid, string cfg)
    {
        _ = cfg;
        var p = ApacheQuorumPeer.Start(_layout, sid, _root, "-Dreadonlymode.enabled=true");
        _members.Add(p);
        return p;
    }

    private static bool ReadSyncedOk(int port)
    {
        try { return ReadSynced(port, "/data").GetAwaiter().GetResult() is not null; }
        catch (Exception e) when (e is not OutOfMemoryException) { return false; }
    }
}
