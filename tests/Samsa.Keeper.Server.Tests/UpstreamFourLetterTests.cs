using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Samsa.Keeper.Client;
using Xunit;
using Xunit.Abstractions;

namespace Samsa.Keeper.Server.Tests;

/// <summary>
/// gtmk / stmk / hash and the maxClientCnxns refusal, on a `samsa keeper` process and, where Java
/// is present, on Apache ZooKeeper 3.8 given the same zoo.cfg and the same requests. Before, the
/// Keeper closed all three words without a reply and refused the extra connection without a word.
/// </summary>
public sealed class UpstreamFourLetterTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "keeper-4lw-" + Guid.NewGuid().ToString("N"));
    private readonly ITestOutputHelper _out;

    public UpstreamFourLetterTests(ITestOutputHelper output)
    {
        _out = output;
        Directory.CreateDirectory(_root);
    }

    public void Dispose()
    {
        try { Directory.Delete(_root, true); } catch (IOException) { }
    }

    private Task<ServerProcess> SamsaAsync(string extraCfg) =>
        ServerProcess.StartSamsaAsync(ServerProcess.WriteConfig(_root, Path.Combine(_root, "k-" + Guid.NewGuid().ToString("N")), 0, extraCfg));

    /// <summary>Runs <paramref name="body"/> on the Keeper, then on upstream when it can run here;
    /// returns both results (upstream's null when skipped).</summary>
    private async Task<(T Keeper, T? Upstream)> BothAsync<T>(string extraCfg, Func<ServerProcess, Task<T>> body, params string[] jvmArgs) where T : class
    {
        T mine;
        using (var k = await SamsaAsync(extraCfg))
        {
            Assert.True(k.Started, k.Log);
            mine = await body(k);
            _out.WriteLine($"samsa keeper: {mine}");
        }
        string? why = ServerProcess.UpstreamUnavailable();
        if (why is not null)
        {
            _out.WriteLine("upstream half skipped: " + why);
            return (mine, null);
        }
        using var u = await ServerProcess.StartUpstreamAsync(_root, Path.Combine(_root, "u-" + Guid.NewGuid().ToString("N")), extraCfg, jvmArgs);
        Assert.True(u.Started, u.Log);
        var theirs = await body(u);
        _out.WriteLine($"upstream ZooKeeper 3.8: {theirs}");
        return (mine, theirs);
    }

    private static byte[] Mask(long m)
    {
        var b = new byte[8];
        BinaryPrimitives.WriteInt64BigEndian(b, m);
        return b;
    }

    [Fact]
    public async Task Gtmk_and_stmk_read_and_set_the_trace_mask()
    {
        var (mine, theirs) = await BothAsync("4lw.commands.whitelist=*\n", async p =>
            string.Join(" | ", await ServerProcess.FourLetterAsync(p.Port, "gtmk"),
                await ServerProcess.FourLetterAsync(p.Port, "stmk", Mask(0x1234)),
                await ServerProcess.FourLetterAsync(p.Port, "gtmk")));
        Assert.Equal("306 | 4660 | 4660", mine);
        if (theirs is not null) Assert.Equal(theirs, mine);
    }

    [Fact]
    public async Task Stmk_outside_the_whitelist_is_not_executed()
    {
        var (mine, theirs) = await BothAsync("4lw.commands.whitelist=srvr,gtmk\n", async p =>
            string.Join(" | ", await ServerProcess.FourLetterAsync(p.Port, "stmk", Mask(7)), await ServerProcess.FourLetterAsync(p.Port, "gtmk")));
        Assert.Equal("stmk is not executed because it is not in the whitelist.\n | 306", mine);
        if (theirs is not null) Assert.Equal(theirs, mine);
    }

    /// <summary>301 txns (createSession, 300 creates), hash, then a restart that rebuilds the digest
    /// log by replay: the zxid keys are 0x80 and 0x100 and the digests survive the restart.</summary>
    private static Func<ServerProcess, Task<string>> HashScenario(bool expectZero) => async p =>
    {
        await using (var zk = await KeeperClient.ConnectAsync($"127.0.0.1:{p.Port}"))
        {
            for (int i = 0; i < 300; i++) await zk.CreateAsync($"/h{i:D3}", new byte[] { (byte)i }, Acls.OpenAclUnsafe);
        }
        string hash = await ServerProcess.FourLetterAsync(p.Port, "hash");
        var lines = hash.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(new[] { "80", "100" }, lines.Select(l => l.Split(':')[0]));
        foreach (var l in lines)
        {
            Assert.Matches(new Regex(@"^[0-9a-f]+: -?\d+$"), l);
            if (expectZero) Assert.EndsWith(": 0", l);
            else Assert.DoesNotMatch(new Regex(": 0$"), l);
        }
        Assert.EndsWith("\n", hash);
        return string.Join(",", lines.Select(l => l.Split(':')[0] + (expectZero ? ":0" : ":digest")));
    };

    [Fact]
    public async Task Hash_lists_the_tree_digest_every_128_zxids()
    {
        var (mine, theirs) = await BothAsync("4lw.commands.whitelist=*\n", HashScenario(expectZero: false));
        Assert.Equal("80:digest,100:digest", mine);
        if (theirs is not null) Assert.Equal(theirs, mine);
    }

    [Fact]
    public async Task Hash_with_digests_disabled_lists_zero_digests()
    {
        var (mine, theirs) = await BothAsync("4lw.commands.whitelist=*\ndigest.enabled=false\n", HashScenario(expectZero: true), "-Dzookeeper.digest.enabled=false");
        Assert.Equal("80:0,100:0", mine);
        if (theirs is not null) Assert.Equal(theirs, mine);
    }

    [Fact]
    public async Task Hash_survives_a_restart_as_the_replay_rebuilds_it()
    {
        string data = Path.Combine(_root, "restart");
        string cfg = ServerProcess.WriteConfig(_root, data, 0, "4lw.commands.whitelist=*\n");
        string before;
        using (var k = await ServerProcess.StartSamsaAsync(cfg))
        {
            await HashScenario(false)(k);
            before = await ServerProcess.FourLetterAsync(k.Port, "hash");
        }
        using var again = await ServerProcess.StartSamsaAsync(cfg);
        Assert.Equal(before, await ServerProcess.FourLetterAsync(again.Port, "hash"));
    }

    [Fact]
    public async Task A_connection_over_maxClientCnxns_is_closed_and_logged()
    {
        var (mine, theirs) = await BothAsync("maxClientCnxns=2\n", async p =>
        {
            using var a = new TcpClient();
            using var b = new TcpClient();
            await a.ConnectAsync(IPAddress.Loopback, p.Port);
            await b.ConnectAsync(IPAddress.Loopback, p.Port);
            await Task.Delay(500); // upstream counts a connection once its selector thread took it
            using var c = new TcpClient();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            int n;
            // Closed at once: the close may already reach the connect (broken pipe), or come as a
            // reset or a FIN on the first read.
            try
            {
                await c.ConnectAsync(IPAddress.Loopback, p.Port);
                n = await c.GetStream().ReadAsync(new byte[16], cts.Token);
            }
            catch (Exception e) when (e is IOException or SocketException) { n = 0; }
            Assert.Equal(0, n);
            Assert.True(await p.LogContainsAsync("Too many connections from /127.0.0.1 - max is 2"), p.Log);
            return "closed and logged";
        });
        Assert.Equal("closed and logged", mine);
        if (theirs is not null) Assert.Equal(theirs, mine);
    }
}
