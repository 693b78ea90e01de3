using System.Net;
using System.Net.Sockets;
using Samsa.Keeper.Client;
using Samsa.Keeper.Server.Quorum;
using Xunit;
using Xunit.Abstractions;

namespace Samsa.Keeper.Server.Tests;

/// <summary>What the live-ensemble tests share: a temp root, Keeper members (serving clients,
/// persistent) and Debian's Apache ZooKeeper 3.8.0 peers on one loopback layout, stopped in reverse
/// start order, plus client helpers.</summary>
public abstract class QuorumEnsembleTestBase : IAsyncLifetime
{
    protected readonly TimeSpan Wait;
    protected readonly string _root;
    protected readonly List<IAsyncDisposable> _members = new();
    protected readonly QuorumLayout _layout = new(3);
    private readonly ITestOutputHelper _out;

    protected QuorumEnsembleTestBase(ITestOutputHelper output, string prefix, TimeSpan wait)
    {
        _out = output;
        Wait = wait;
        _root = Path.Combine(Path.GetTempPath(), prefix + Guid.NewGuid().ToString("N"));
    }

    public Task InitializeAsync() { Directory.CreateDirectory(_root); return Task.CompletedTask; }

    public async Task DisposeAsync()
    {
        for (int i = _members.Count - 1; i >= 0; i--) await _members[i].DisposeAsync();
        try { Directory.Delete(_root, true); } catch (IOException) { }
    }

    protected void Log(string line)
    {
        try { _out.WriteLine(line); } catch (InvalidOperationException) { }
    }

    protected QuorumMember Keeper(long sid, params string[] extraConfig) => KeeperWith(sid, null, extraConfig);

    /// <summary>As <see cref="Keeper"/>, with settings no zoo.cfg key reaches changed on the parsed config.</summary>
    protected QuorumMember KeeperWith(long sid, Action<KeeperConfig>? tweak, params string[] extraConfig)
    {
        string dir = Path.Combine(_root, $"keeper-{sid}");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "myid"), sid + "\n");
        var text = new List<string>
        {
            "tickTime=500", "initLimit=10", "syncLimit=5", $"dataDir={dir}", $"clientPort={_layout.ClientPorts[sid - 1]}",
            "clientPortAddress=127.0.0.1", "4lw.commands.whitelist=*",
        };
        // a member the layout names as an observer says so itself too (upstream peerType)
        if (_layout.Observers.Contains(sid)) text.Add("peerType=observer");
        text.AddRange(extraConfig);
        text.AddRange(_layout.ServerLines());
        var config = KeeperConfig.Parse(string.Join('\n', text) + "\n");
        tweak?.Invoke(config);
        var m = QuorumMember.Start(config, l => Log($"keeper {sid}: {l}"), serveClients: true);
        _members.Add(m);
        return m;
    }

    protected ApacheQuorumPeer Apache(long sid)
    {
        var p = ApacheQuorumPeer.Start(_layout, sid, _root);
        _members.Add(p);
        return p;
    }

    protected async Task Until(Func<bool> cond, string what)
    {
        var deadline = DateTime.UtcNow + Wait;
        while (!cond())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException(what);
            await Task.Delay(50);
        }
    }

    protected static Task<KeeperClient> Connect(int port) => KeeperClient.ConnectAsync($"127.0.0.1:{port}");

    protected static async Task<string> FourLetter(int port, string word)
    {
        using var c = new TcpClient();
        await c.ConnectAsync(IPAddress.Loopback, port);
        var s = c.GetStream();
        await s.WriteAsync(System.Text.Encoding.ASCII.GetBytes(word));
        return await new StreamReader(s).ReadToEndAsync();
    }

    protected static async Task<byte[]?> ReadSynced(int port, string path)
    {
        await using var c = await Connect(port);
        await c.SyncAsync(path);
        return (await c.GetDataAsync(path)).Data;
    }
}
