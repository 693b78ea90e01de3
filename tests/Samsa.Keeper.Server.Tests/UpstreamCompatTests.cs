using Samsa.Keeper.Protocol;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Samsa.Keeper.Server;
using Xunit;

namespace Samsa.Keeper.Server.Tests;

/// <summary>Data directories move between Debian's Apache ZooKeeper 3.8 and the Keeper.</summary>
public sealed class UpstreamCompatTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "keeper-compat-" + Guid.NewGuid().ToString("N"));

    private readonly List<string> _upstreamLog = new();

    public UpstreamCompatTests() { Directory.CreateDirectory(_root); }

    public void Dispose()
    {
        try { Directory.Delete(_root, true); } catch (IOException) { }
    }

    /// <summary>Runs upstream ZooKeeper standalone on <paramref name="dataDir"/> while <paramref name="body"/> runs.</summary>
    private void WithUpstream(string dataDir, Action<string> body)
    {
        ExternalTools.RequireZkCli();
        int port = Samsa.Testing.TestEnvironment.FreePort(21800);
        string cfg = Path.Combine(_root, $"zoo-{port}.cfg");
        File.WriteAllText(cfg, $"tickTime=2000\ndataDir={dataDir}\nclientPort={port}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n4lw.commands.whitelist=*\n");
        var psi = new ProcessStartInfo("java") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        // log4j on the console, so the test can read what upstream says about our files
        string log4j = "/etc/zookeeper/conf_example/log4j.properties";
        string cp = ExternalTools.ZooKeeperJar + ":/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar";
        foreach (var a in new[] { "-Xmx256m", "-cp", cp, $"-Dlog4j.configuration=file:{log4j}", "-Dzookeeper.root.logger=INFO,CONSOLE", "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_upstreamLog) _upstreamLog.Add(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_upstreamLog) _upstreamLog.Add(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        try
        {
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (true)
            {
                try
                {
                    using var c = new TcpClient();
                    c.Connect(IPAddress.Loopback, port);
                    var s = c.GetStream();
                    s.Write("ruok"u8);
                    var b = new byte[4];
                    if (s.Read(b) == 4 && b.AsSpan().SequenceEqual("imok"u8)) break;
                }
                catch (Exception e) when (e is SocketException or IOException) { }
                if (p.HasExited) throw new InvalidOperationException("upstream ZooKeeper exited with " + p.ExitCode);
                if (DateTime.UtcNow > deadline) throw new TimeoutException("upstream ZooKeeper did not start");
                Thread.Sleep(300);
            }
            body($"127.0.0.1:{port}");
        }
        finally
        {
            p.Kill();
            p.WaitForExit(20000);
        }
    }

    [Fact]
    public async Task A_data_directory_written_by_upstream_opens_in_the_keeper()
    {
        ExternalTools.RequireKazoo();
        string dir = Path.Combine(_root, "up");
        WithUpstream(dir, addr =>
        {
            var (code, o, e) = ExternalTools.RunPython("""
import sys
from kazoo.client import KazooClient
from kazoo.security import make_digest_acl
zk = KazooClient(hosts=sys.argv[1]); zk.start(timeout=20)
zk.create("/up/a", b"alpha", makepath=True)
zk.create("/up/s-", b"", sequence=True); zk.create("/up/s-", b"", sequence=True)
zk.delete("/up/s-0000000001")  # /up/a took sequence 0
zk.set("/up/a", b"beta")
zk.create("/up/sec", b"x", acl=[make_digest_acl("u", "p", all=True)])
zk.create("/up/eph", b"", ephemeral=True)
t = zk.transaction(); t.create("/up/m1"); t.create("/up/m2"); t.commit()
print("cversion", zk.exists("/up").cversion)
zk.stop()
""", addr);
            Assert.True(code == 0, o + e);
            Assert.Contains("cversion 8", o); // 7 creates + 1 delete
        });
        await using var server = new KeeperServer(new KeeperConfig { DataDir = dir });
        server.Start();
        // upstream wrote a tree digest after every txn; ours agrees with each of them
        Assert.True(server.DigestsChecked >= 10, $"only {server.DigestsChecked} digests checked");
        Assert.Equal(0, server.DigestMismatches);
        var c = new TestClient(server);
        await c.ConnectAsync();
        var (_, data, st) = await c.GetDataAsync("/up/a");
        Assert.Equal("beta"u8.ToArray(), data);
        Assert.Equal(1, st!.Version);
        var (_, kids, pst) = await c.GetChildrenAsync("/up");
        Assert.Equal(new[] { "a", "m1", "m2", "s-0000000002", "sec" }, kids!.OrderBy(k => k, StringComparer.Ordinal));
        Assert.Equal(9, pst!.Cversion); // plus the ephemeral removed when the session closed
        Assert.Equal((int)Code.NoAuth, (await c.GetDataAsync("/up/sec")).Err);
        Assert.Equal((int)Code.NoNode, (await c.ExistsAsync("/up/eph")).Err);
    }

    [Fact]
    public async Task A_data_directory_written_by_the_keeper_opens_in_upstream()
    {
        ExternalTools.RequireKazoo();
        string dir = Path.Combine(_root, "keeper");
        {
            await using var server = new KeeperServer(new KeeperConfig { DataDir = dir, SnapCount = 6 });
            server.Start();
            var c = new TestClient(server);
            await c.ConnectAsync();
            await c.CreateAsync("/k");
            for (int i = 0; i < 10; i++) await c.CreateAsync("/k/n" + i, new byte[] { (byte)('a' + i) });
            await c.SetDataAsync("/k/n3", "changed"u8.ToArray());
            await c.DeleteAsync("/k/n9");
            await c.CallAsync(OpCode.Auth, new Samsa.Keeper.Protocol.Records.AuthPacket { Scheme = "digest", Auth = "u:p"u8.ToArray() }, Xid.Auth);
            await c.CreateAsync("/k/sec", acl: new() { new() { Perms = Perms.All, Id = new() { Scheme = "auth", IdValue = "" } } });
            await c.CallAsync(OpCode.CloseSession, null);
        }
        WithUpstream(dir, addr =>
        {
            var (code, o, e) = ExternalTools.RunPython("""
import sys
from kazoo.client import KazooClient
zk = KazooClient(hosts=sys.argv[1]); zk.start(timeout=20)
print("kids", sorted(zk.get_children("/k")))
d, st = zk.get("/k/n3"); print("n3", d.decode(), st.version)
print("k", zk.exists("/k").cversion)
try:
    zk.get("/k/sec"); print("sec readable")
except Exception as ex: print("sec", type(ex).__name__)
zk.add_auth("digest", "u:p"); print("sec-auth", zk.get("/k/sec")[1].version)
zk.create("/k/after", b"")
zk.stop()
""", addr);
            Assert.True(code == 0, o + e);
            Assert.Contains("kids ['n0', 'n1', 'n2', 'n3', 'n4', 'n5', 'n6', 'n7', 'n8', 'sec']", o);
            Assert.Contains("n3 changed 1", o);
            Assert.Contains("k 12", o);
            Assert.Contains("sec NoAuthError", o);
            Assert.Contains("sec-auth 0", o);
        });
        lock (_upstreamLog)
        {
            Assert.Contains(_upstreamLog, l => l.Contains("Reading snapshot"));
            Assert.DoesNotContain(_upstreamLog, l => l.Contains("Digests are not matching") || l.Contains("digest mismatch", StringComparison.OrdinalIgnoreCase) || l.Contains("CRC"));
        }
    }
}
