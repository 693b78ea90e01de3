using System.Net;
using System.Net.Sockets;
using System.Text;
using Samsa.Keeper.Server;
using Xunit;

namespace Samsa.Keeper.Server.Tests;

/// <summary>Real clients (kazoo, zkCli.sh, the C client) against a Keeper on an ephemeral port.</summary>
public sealed class EndToEndTests : IAsyncLifetime
{
    private KeeperHost _host = null!;
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "keeper-e2e-" + Guid.NewGuid().ToString("N"));
    private string Address => $"127.0.0.1:{_host.LocalEndPoint.Port}";

    public async Task InitializeAsync()
    {
        _host = await KeeperHost.StartAsync(new KeeperConfig
        {
            DataDir = _dir, ClientPort = 0, ClientPortAddress = "127.0.0.1", TickTime = 500,
            AdminServerAddress = "127.0.0.1", AdminServerPort = 0,
            FourLetterWhitelist = new HashSet<string> { "ruok", "srvr", "stat", "mntr", "conf", "cons", "wchs", "dump", "envi", "dirs", "isro", "wchc", "wchp", "crst", "srst" },
        });
    }

    public async Task DisposeAsync()
    {
        await _host.DisposeAsync();
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    [Fact]
    public void Kazoo_creates_reads_watches_and_runs_transactions()
    {
        ExternalTools.RequireKazoo();
        const string script = """
import sys, threading, time
from kazoo.client import KazooClient
from kazoo.security import make_digest_acl
zk = KazooClient(hosts=sys.argv[1]); zk.start(timeout=15)
zk.create("/app/config", b"v1", makepath=True)
print("seq", zk.create("/app/job-", b"", sequence=True))
print("seq", zk.create("/app/job-", b"", sequence=True, ephemeral=True))
print("children", sorted(zk.get_children("/app")))
fired = threading.Event(); seen = []
def w(ev): seen.append((ev.type, ev.path)); fired.set()
zk.get("/app/config", watch=w)
other = KazooClient(hosts=sys.argv[1]); other.start(timeout=15)
other.set("/app/config", b"v2")
fired.wait(5)
print("event", seen)
print("data", zk.get("/app/config")[0].decode(), zk.get("/app/config")[1].version)
t = zk.transaction(); t.create("/app/t1", b""); t.check("/app/config", 99)
print("txn", [type(r).__name__ for r in t.commit()])
print("t1", zk.exists("/app/t1"))
zk.create("/app/secret", b"s", acl=[make_digest_acl("u", "p", all=True)])
try:
    other.get("/app/secret"); print("acl", "readable")
except Exception as e: print("acl", type(e).__name__)
other.add_auth("digest", "u:p")
print("acl-auth", other.get("/app/secret")[0].decode())
other.stop(); zk.stop()
""";
        var (code, output, err) = ExternalTools.RunPython(script, Address);
        Assert.True(code == 0, output + err);
        Assert.Contains("seq /app/job-0000000001", output);
        Assert.Contains("seq /app/job-0000000002", output);
        Assert.Contains("children ['config', 'job-0000000001', 'job-0000000002']", output);
        Assert.Contains("event [('CHANGED', '/app/config')]", output);
        Assert.Contains("data v2 1", output);
        Assert.Contains("txn ['RolledBackError', 'BadVersionError']", output);
        Assert.Contains("t1 None", output);
        Assert.Contains("acl NoAuthError", output);
        Assert.Contains("acl-auth s", output);
    }

    [Fact]
    public void Kazoo_recipes_lock_counter_children_watch_and_queue_work()
    {
        ExternalTools.RequireKazoo();
        const string script = """
import sys, threading, time
from kazoo.client import KazooClient
h = sys.argv[1]
a = KazooClient(hosts=h); a.start(timeout=15)
b = KazooClient(hosts=h); b.start(timeout=15)
la = a.Lock("/locks/res", "a"); lb = b.Lock("/locks/res", "b")
la.acquire()
got = []
t = threading.Thread(target=lambda: (lb.acquire(timeout=10), got.append(1)))
t.start(); time.sleep(0.5)
print("b waiting", len(got) == 0, sorted(la.contenders()))
a.stop()
t.join(12)
print("b acquired after a closed", len(got) == 1)
lb.release()
counter = b.Counter("/counter"); counter += 5; counter += 2
print("counter", counter.value)
b.ensure_path("/kids"); seen = []
@b.ChildrenWatch("/kids")
def kids(children): seen.append(sorted(children))
b.create("/kids/x"); time.sleep(0.5)
print("children watch", seen[-1])
q = b.Queue("/queue"); q.put(b"one"); q.put(b"two")
print("queue", q.get(), q.get())
b.stop()
""";
        var (code, o, e) = ExternalTools.RunPython(script, Address);
        Assert.True(code == 0, o + e);
        Assert.Contains("b waiting True ['a', 'b']", o);
        Assert.Contains("b acquired after a closed True", o);
        Assert.Contains("counter 7", o);
        Assert.Contains("children watch ['x']", o);
        Assert.Contains("queue b'one' b'two'", o);
    }

    [Fact]
    public void ZkCli_runs_commands_and_reports_errors()
    {
        ExternalTools.RequireZkCli();
        // zkCli prints command results on stderr in batch mode
        var (code, output, err) = ExternalTools.Run(ExternalTools.ZkCli, new[] { "-server", Address, "create", "/cli", "hello" }, TimeSpan.FromSeconds(60));
        Assert.Equal(0, code);
        Assert.Contains("Created /cli", output + err);
        var (code2, output2, err2) = ExternalTools.Run(ExternalTools.ZkCli, new[] { "-server", Address, "create", "/cli", "again" }, TimeSpan.FromSeconds(60));
        Assert.Contains("Node already exists", output2 + err2);
        string session = "create /cli/a 1\ncreate -s /cli/s x\nls /cli\nget -s /cli\naddWatch -m PERSISTENT_RECURSIVE /cli\nset /cli/a 2\ncreate -c /box\nstat /box\nquit\n";
        var (_, out3, err3) = ExternalTools.Run(ExternalTools.ZkCli, new[] { "-server", Address }, TimeSpan.FromSeconds(60), session);
        string output3 = out3 + err3;
        Assert.Contains("[a, s0000000001]", output3);
        Assert.Contains("hello", output3);
        Assert.Contains("cversion = 2", output3);
        Assert.Contains("numChildren = 2", output3);
        Assert.Contains("type:NodeDataChanged path:/cli/a", output3);
        Assert.Contains("Created /box", output3);
    }

    [Fact]
    public void The_C_client_lists_and_reads()
    {
        ExternalTools.RequireCliMt();
        ExternalTools.RequireKazoo();
        ExternalTools.RunPython("import sys\nfrom kazoo.client import KazooClient\nzk=KazooClient(hosts=sys.argv[1]); zk.start(timeout=15)\nzk.create('/cnode', b'from-kazoo')\nzk.stop()\n", Address);
        var (_, output, err) = ExternalTools.Run(ExternalTools.CliMt, new[] { Address, "cmd:ls /" }, TimeSpan.FromSeconds(30));
        Assert.Contains("/: rc = 0", output + err);
        Assert.Contains("cnode", output + err);
        var (_, o2, e2) = ExternalTools.Run(ExternalTools.CliMt, new[] { Address, "cmd:get /cnode" }, TimeSpan.FromSeconds(30));
        Assert.Contains("from-kazoo", o2 + e2);
    }

    [Fact]
    public void Node_zookeeper_client_creates_watches_and_runs_transactions()
    {
        string dir = ExternalTools.RequireNodeZookeeperClient();
        string script = Path.Combine(dir, "keeper-e2e-" + Guid.NewGuid().ToString("N") + ".js");
        File.WriteAllText(script, """
const zookeeper = require('node-zookeeper-client');
const client = zookeeper.createClient(process.argv[2], { sessionTimeout: 10000 });
const out = [];
function done() { console.log(out.join('\n')); client.close(); }
client.once('connected', () => {
  client.create('/nz', Buffer.from('d'), (err, path) => {
    out.push('create ' + (err ? err.name : path));
    client.create('/nz/s-', Buffer.from(''), zookeeper.CreateMode.EPHEMERAL_SEQUENTIAL, (err, p) => {
      out.push('seq ' + (err ? err.name : p));
      client.getData('/nz', (ev) => { out.push('watch ' + ev.getName() + ' ' + ev.getPath()); }, (err, data, stat) => {
        out.push('get ' + data.toString() + ' v' + stat.version + ' numChildren=' + stat.numChildren);
        client.setData('/nz', Buffer.from('e'), -1, (err, stat) => {
          out.push('set v' + stat.version);
          client.transaction().create('/nz/t').check('/nz', 42).commit((err, results) => {
            out.push('txn ' + (err ? err.name : 'ok') + ' ' + JSON.stringify(results));
            client.exists('/nope', (err, stat) => { out.push('exists ' + stat); setTimeout(done, 300); });
          });
        });
      });
    });
  });
});
client.connect();
""");
        try
        {
            var (code, o, e) = ExternalTools.Run(ExternalTools.Which("node")!, new[] { script, Address }, TimeSpan.FromSeconds(60));
            Assert.True(code == 0, o + e);
            // the same lines upstream ZooKeeper 3.8 produces for this script
            Assert.Equal(new[]
            {
                "create /nz", "seq /nz/s-0000000000", "get d v0 numChildren=1", "watch NODE_DATA_CHANGED /nz", "set v1",
                "txn BAD_VERSION [{\"type\":-1,\"err\":0},{\"type\":-1,\"err\":-103}]", "exists null",
            }, o.Trim().Split('\n'));
        }
        finally { File.Delete(script); }
    }

    private async Task<string> FourLetterAsync(string word)
    {
        using var sock = new TcpClient();
        await sock.ConnectAsync(IPAddress.Loopback, _host.LocalEndPoint.Port);
        var s = sock.GetStream();
        await s.WriteAsync(Encoding.ASCII.GetBytes(word));
        using var ms = new MemoryStream();
        await s.CopyToAsync(ms).WaitAsync(TimeSpan.FromSeconds(10));
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    [Fact]
    public async Task Four_letter_words_answer_on_the_client_port()
    {
        Assert.Equal("imok", await FourLetterAsync("ruok"));
        Assert.Equal("rw", await FourLetterAsync("isro"));
        var srvr = await FourLetterAsync("srvr");
        Assert.StartsWith("Zookeeper version: ", srvr);
        Assert.Contains("Mode: standalone\n", srvr);
        Assert.Contains("Node count: 5\n", srvr); // upstream counts the root twice ("" and "/")
        Assert.Contains("zk_server_state\tstandalone\n", await FourLetterAsync("mntr"));
        Assert.Contains("tickTime=500\n", await FourLetterAsync("conf"));
        Assert.Contains("0 connections watching 0 paths", await FourLetterAsync("wchs"));
    }

    private async Task<(int Status, System.Text.Json.JsonElement Json)> AdminGetAsync(string path)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var rsp = await http.GetAsync($"http://127.0.0.1:{_host.AdminEndPoint!.Port}{path}");
        var doc = System.Text.Json.JsonDocument.Parse(await rsp.Content.ReadAsStringAsync());
        return ((int)rsp.StatusCode, doc.RootElement.Clone());
    }

    [Fact]
    public async Task Admin_server_answers_commands_as_json()
    {
        var (status, ruok) = await AdminGetAsync("/commands/ruok");
        Assert.Equal(200, status);
        Assert.Equal("ruok", ruok.GetProperty("command").GetString());
        Assert.Equal(System.Text.Json.JsonValueKind.Null, ruok.GetProperty("error").ValueKind);
        var (_, mntr) = await AdminGetAsync("/commands/mntr");
        Assert.Equal("monitor", mntr.GetProperty("command").GetString());
        Assert.Equal("standalone", mntr.GetProperty("server_state").GetString());
        Assert.Equal(5, mntr.GetProperty("znode_count").GetInt64());
        var (_, conf) = await AdminGetAsync("/commands/configuration");
        Assert.Equal(500, conf.GetProperty("tick_time").GetInt32());
        var (_, list) = await AdminGetAsync("/commands");
        Assert.Contains(list.GetProperty("commands").EnumerateArray(), e => e.GetString() == "/commands/watch_summary");
        var (missing, _) = await AdminGetAsync("/commands/nope");
        Assert.Equal(404, missing);
    }

    [Fact]
    public async Task Four_letter_words_outside_the_whitelist_are_refused()
    {
        await using var host = await KeeperHost.StartAsync(new KeeperConfig { ClientPort = 0, ClientPortAddress = "127.0.0.1", AdminEnableServer = false });
        using var sock = new TcpClient();
        await sock.ConnectAsync(IPAddress.Loopback, host.LocalEndPoint.Port);
        var s = sock.GetStream();
        await s.WriteAsync("ruok"u8.ToArray());
        using var ms = new MemoryStream();
        await s.CopyToAsync(ms).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("ruok is not executed because it is not in the whitelist.\n", Encoding.UTF8.GetString(ms.ToArray()));
    }

    [Fact]
    public async Task A_frame_longer_than_jute_maxbuffer_closes_the_connection()
    {
        using var sock = new TcpClient();
        await sock.ConnectAsync(IPAddress.Loopback, _host.LocalEndPoint.Port);
        var s = sock.GetStream();
        await s.WriteAsync(new byte[] { 0x10, 0, 0, 0 }); // 256 MiB announced
        var buf = new byte[16];
        int n = await s.ReadAsync(buf).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(0, n);
    }
}

public sealed class ConnectionLimitTests
{
    [Fact]
    public async Task Connections_beyond_maxClientCnxns_from_one_address_are_closed()
    {
        await using var host = await KeeperHost.StartAsync(new KeeperConfig { ClientPort = 0, ClientPortAddress = "127.0.0.1", MaxClientCnxns = 2, AdminEnableServer = false });
        var socks = new List<TcpClient>();
        try
        {
            for (int i = 0; i < 3; i++)
            {
                var c = new TcpClient();
                await c.ConnectAsync(IPAddress.Loopback, host.LocalEndPoint.Port);
                socks.Add(c);
                await Task.Delay(100);
            }
            var buf = new byte[1];
            int n = await socks[2].GetStream().ReadAsync(buf).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal(0, n); // the third is closed
            socks[1].GetStream().ReadTimeout = 300;
            Assert.Throws<IOException>(() => socks[1].GetStream().Read(buf)); // the second stays open (read times out)
        }
        finally
        {
            foreach (var s in socks) s.Dispose();
        }
    }
}
