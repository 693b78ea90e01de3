using Samsa.Keeper.Protocol;
using System.Buffers.Binary;
using Samsa.Keeper.Protocol.Records;
using Samsa.Keeper.Server;
using Xunit;

namespace Samsa.Keeper.Server.Tests;

public sealed class PersistenceTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "keeper-persist-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    private KeeperServer NewServer(int snapCount = 100000)
    {
        var s = new KeeperServer(new KeeperConfig { DataDir = _dir, SnapCount = snapCount, TickTime = 200, PreAllocSizeKb = 64 });
        s.Start();
        return s;
    }

    [Fact]
    public async Task Restart_recovers_tree_acls_stats_and_live_sessions()
    {
        long sid;
        byte[] pw;
        Stat before;
        {
            var s = NewServer();
            var c = new TestClient(s);
            await c.ConnectAsync(timeout: 4000);
            await c.CallAsync(OpCode.Auth, new AuthPacket { Scheme = "digest", Auth = "u:p"u8.ToArray() }, Xid.Auth);
            await c.CreateAsync("/a", new byte[] { 1 });
            await c.CreateAsync("/a/s-", flags: CreateMode.PersistentSequential);
            await c.CreateAsync("/a/s-", flags: CreateMode.PersistentSequential);
            await c.DeleteAsync("/a/s-0000000000");
            await c.SetDataAsync("/a", new byte[] { 2, 2 });
            await c.CreateAsync("/sec", acl: new List<ACL> { new() { Perms = Perms.All, Id = new Id { Scheme = "auth", IdValue = "" } } });
            await c.CreateAsync("/eph", flags: CreateMode.Ephemeral);
            await c.CallAsync(OpCode.SetACL, new SetACLRequest { Path = "/a", Acl = TestClient.OpenAcl, Version = -1 });
            // a multi that fails after applying two ops: its rollback must leave the digest exact
            var multi = new List<byte>();
            void Op(int t, Samsa.Keeper.Protocol.IJuteRecord r) { multi.AddRange(Samsa.Keeper.Protocol.JuteRecordExtensions.ToBytes(new MultiHeader { Type = t, Done = false, Err = -1 })); multi.AddRange(Samsa.Keeper.Protocol.JuteRecordExtensions.ToBytes(r)); }
            Op(OpCode.Create, new CreateRequest { Path = "/a/m", Data = Array.Empty<byte>(), Acl = TestClient.OpenAcl });
            Op(OpCode.SetData, new SetDataRequest { Path = "/a", Data = new byte[] { 9 }, Version = -1 });
            Op(OpCode.Delete, new DeleteRequest { Path = "/missing", Version = -1 });
            multi.AddRange(Samsa.Keeper.Protocol.JuteRecordExtensions.ToBytes(new MultiHeader { Type = -1, Done = true, Err = -1 }));
            await c.CallAsync(OpCode.Multi, new RawRecord(multi.ToArray()));
            before = (await c.ExistsAsync("/a")).Stat!;
            sid = c.SessionId;
            pw = c.Passwd;
            await s.DisposeAsync(); // the session is not closed: it must survive the restart
        }
        {
            var s = NewServer();
            Assert.True(s.DigestsChecked >= 10, $"{s.DigestsChecked} digests checked");
            Assert.Equal(0, s.DigestMismatches); // every logged digest matches the replayed tree
            var c = new TestClient(s);
            var rsp = await c.ConnectAsync(sessionId: sid, passwd: pw);
            Assert.Equal(sid, rsp.SessionId);
            var (_, data, after) = await c.GetDataAsync("/a");
            Assert.Equal(new byte[] { 2, 2 }, data);
            Assert.Equal(before.Cversion, after!.Cversion);
            Assert.Equal(before.Pzxid, after.Pzxid);
            Assert.Equal(before.Mzxid, after.Mzxid);
            Assert.Equal(new[] { "s-0000000001" }, (await c.GetChildrenAsync("/a")).Children);
            Assert.Equal(0, (await c.ExistsAsync("/eph")).Err);
            var stranger = new TestClient(s);
            await stranger.ConnectAsync();
            Assert.Equal((int)Code.NoAuth, (await stranger.GetDataAsync("/sec")).Err);
            // the sequence counter continues where it was
            Assert.Equal("/a/s-0000000002", (await c.CreateAsync("/a/s-", flags: CreateMode.PersistentSequential)).Path);
            await c.CallAsync(OpCode.CloseSession, null);
            await s.DisposeAsync();
        }
        {
            var s = NewServer();
            var c = new TestClient(s);
            await c.ConnectAsync();
            Assert.Equal((int)Code.NoNode, (await c.ExistsAsync("/eph")).Err); // closed session's ephemeral is gone
            await s.DisposeAsync();
        }
    }

    [Fact]
    public async Task Files_use_zookeepers_names_and_headers()
    {
        var s = NewServer(snapCount: 4);
        var c = new TestClient(s);
        await c.ConnectAsync();
        for (int i = 0; i < 12; i++) await c.CreateAsync("/n" + i, new byte[] { (byte)i });
        await s.DisposeAsync();
        string v2 = Path.Combine(_dir, "version-2");
        var logs = Directory.GetFiles(v2, "log.*").Select(Path.GetFileName).ToList();
        var snaps = Directory.GetFiles(v2, "snapshot.*").Select(Path.GetFileName).ToList();
        Assert.Contains("log.1", logs);          // first txn (the createSession) has zxid 1
        Assert.Contains("snapshot.0", snaps);    // startup snapshot of the empty tree
        Assert.True(snaps.Count >= 2);           // snapCount triggered more
        var log = File.ReadAllBytes(Path.Combine(v2, "log.1"));
        Assert.Equal("ZKLG"u8.ToArray(), log[..4]);
        Assert.Equal(2, BinaryPrimitives.ReadInt32BigEndian(log.AsSpan(4)));
        Assert.Equal(0, log.Length % (64 * 1024)); // preallocated in preAllocSize steps
        var snap = File.ReadAllBytes(Path.Combine(v2, "snapshot.0"));
        Assert.Equal("ZKSN"u8.ToArray(), snap[..4]);
        Assert.Equal(new byte[] { 0, 0, 0, 1, (byte)'/' }, snap[^5..]);

        var s2 = NewServer();
        var c2 = new TestClient(s2);
        await c2.ConnectAsync();
        for (int i = 0; i < 12; i++) Assert.Equal(new[] { (byte)i }, (await c2.GetDataAsync("/n" + i)).Data);
        await s2.DisposeAsync();
    }

    [Fact]
    public async Task A_torn_last_entry_is_dropped_and_the_rest_replays()
    {
        var s = NewServer();
        var c = new TestClient(s);
        await c.ConnectAsync();
        await c.CreateAsync("/keep");
        await c.CreateAsync("/torn");
        await s.DisposeAsync();
        string log = Directory.GetFiles(Path.Combine(_dir, "version-2"), "log.*").OrderBy(f => f).Last();
        var bytes = File.ReadAllBytes(log);
        // find the end of the last entry (the last 0x42 before the zero padding) and cut inside it
        int end = Array.FindLastIndex(bytes, b => b == 0x42);
        var cut = bytes[..(end - 3)];
        File.WriteAllBytes(log, cut.Concat(new byte[4096]).ToArray());
        var s2 = NewServer();
        var c2 = new TestClient(s2);
        await c2.ConnectAsync();
        Assert.Contains(s2.RecoveryLog, l => l.StartsWith("Last transaction was partial: " + Path.GetFileName(log), StringComparison.Ordinal));
        Assert.Equal(0, (await c2.ExistsAsync("/keep")).Err);
        Assert.Equal((int)Code.NoNode, (await c2.ExistsAsync("/torn")).Err);
        await c2.CreateAsync("/later"); // reuses the torn entry's zxid, in a new log file
        await s2.DisposeAsync();
        // the torn entry stays in the older file, as upstream leaves it: "Last transaction was
        // partial" again, and reading goes on with the newer log that holds /later
        var s3 = NewServer();
        var c3 = new TestClient(s3);
        await c3.ConnectAsync();
        Assert.Equal(0, (await c3.ExistsAsync("/keep")).Err);
        Assert.Equal(0, (await c3.ExistsAsync("/later")).Err);
        Assert.Equal((int)Code.NoNode, (await c3.ExistsAsync("/torn")).Err);
        await s3.DisposeAsync();
    }

    [Fact]
    public async Task Purge_keeps_the_newest_snapshots_and_the_logs_they_need()
    {
        var s = NewServer(snapCount: 2);
        var c = new TestClient(s);
        await c.ConnectAsync();
        for (int i = 0; i < 20; i++) await c.CreateAsync("/p" + i);
        await s.RunOnLoopAsync(() => { s.Purge(); return 0; });
        await s.DisposeAsync();
        string v2 = Path.Combine(_dir, "version-2");
        Assert.Equal(3, Directory.GetFiles(v2, "snapshot.*").Length);
        var s2 = NewServer();
        var c2 = new TestClient(s2);
        await c2.ConnectAsync();
        for (int i = 0; i < 20; i++) Assert.Equal(0, (await c2.ExistsAsync("/p" + i)).Err);
        await s2.DisposeAsync();
    }
}

internal sealed class RawRecord : Samsa.Keeper.Protocol.IJuteRecord
{
    private readonly byte[] _b;
    public RawRecord(byte[] b) { _b = b; }
    public void Write(ref Samsa.Keeper.Protocol.JuteWriter writer) => writer.WriteRaw(_b);
    public int Size() => _b.Length;
}
