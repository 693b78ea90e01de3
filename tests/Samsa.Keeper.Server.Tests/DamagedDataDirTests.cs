using System.Buffers.Binary;
using System.Text.RegularExpressions;
using Samsa.Keeper.Protocol;
using Xunit;
using Xunit.Abstractions;

namespace Samsa.Keeper.Server.Tests;

/// <summary>
/// A damaged data directory never starts silently. Each test damages a copy of one data directory
/// written by the Keeper (snapshot.0, log.1 with 1,002 txns, snapshot.3eb taken at the second
/// start, log.3ec with 1,003 more) and starts `samsa keeper` on it and, where Java is present,
/// Apache ZooKeeper 3.8 (Debian) on another copy; both must end the same way: refused, or serving
/// the same zxid and node count. The Keeper must also say what happened.
/// What this can catch: a reader that stops quietly at damage (the Keeper used to cut a bad tail
/// of the newest log without a word, and start without the last 1,000 writes when that log was
/// truncated), one that refuses what upstream accepts, and a snapshot fallback that loses txns.
/// </summary>
public sealed class DamagedDataDirTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "keeper-damage-" + Guid.NewGuid().ToString("N"));
    private readonly ITestOutputHelper _out;

    public DamagedDataDirTests(ITestOutputHelper output)
    {
        _out = output;
        Directory.CreateDirectory(_root);
    }

    public void Dispose()
    {
        try { Directory.Delete(_root, true); } catch (IOException) { }
    }

    private const long SnapZxid = 0x3eb;        // the second start's snapshot
    private const long NewestLogZxid = 0x3ec;   // its log
    private const long LastZxid = 0x7d6;        // closeSession of the second round
    // srvr's "Node count": the root twice ("" and "/", as upstream counts it), /zookeeper{,/quota,/config},
    // /r0 and /r1 with 1,000 children each
    private const int AllNodes = 5 + 2 * 1001;

    /// <summary>Two rounds of a session creating /rN and 1,000 children, then closing.</summary>
    private async Task<string> BuildAsync()
    {
        string dir = Path.Combine(_root, "orig");
        for (int round = 0; round < 2; round++)
        {
            await using var s = new KeeperServer(new KeeperConfig { DataDir = dir, PreAllocSizeKb = 256 });
            s.Start();
            var c = new TestClient(s);
            await c.ConnectAsync();
            Assert.Equal(0, (await c.CreateAsync($"/r{round}")).Err);
            for (int i = 0; i < 1000; i++) Assert.Equal(0, (await c.CreateAsync($"/r{round}/n{i:D4}", "payload-payload"u8.ToArray())).Err);
            await c.CallAsync(OpCode.CloseSession, null);
        }
        var names = Directory.GetFiles(Path.Combine(dir, "version-2")).Select(Path.GetFileName).Order().ToList();
        Assert.Equal(new[] { "log.1", "log.3ec", "snapshot.0", "snapshot.3eb" }, names);
        return dir;
    }

    private string V2(string dir, string name) => Path.Combine(dir, "version-2", name);

    /// <summary>(offset, length) of every entry in a txn log, up to the preallocated zeros.</summary>
    private static List<(int Offset, int Length)> Entries(string log)
    {
        var b = File.ReadAllBytes(log);
        var list = new List<(int, int)>();
        int pos = 16;
        while (pos + 12 <= b.Length)
        {
            int len = BinaryPrimitives.ReadInt32BigEndian(b.AsSpan(pos + 8));
            if (len == 0) break;
            list.Add((pos, len));
            pos += 12 + len + 1;
        }
        return list;
    }

    private static long ZxidOf(string log, (int Offset, int Length) e) =>
        BinaryPrimitives.ReadInt64BigEndian(File.ReadAllBytes(log).AsSpan(e.Offset + 12 + 12)); // TxnHeader: clientId, cxid, zxid

    private static void Flip(string file, long offset, int count)
    {
        using var fs = new FileStream(file, FileMode.Open, FileAccess.ReadWrite);
        var b = new byte[count];
        fs.Position = offset;
        fs.ReadExactly(b);
        for (int i = 0; i < count; i++) b[i] ^= 0xFF;
        fs.Position = offset;
        fs.Write(b);
    }

    private static void Copy(string from, string to)
    {
        foreach (var d in Directory.GetDirectories(from, "*", SearchOption.AllDirectories)) Directory.CreateDirectory(d.Replace(from, to));
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from, "*", SearchOption.AllDirectories)) File.Copy(f, f.Replace(from, to));
    }

    private sealed record Outcome(bool Started, long Zxid, int Nodes)
    {
        public override string ToString() => Started ? $"serving zxid 0x{Zxid:x} with {Nodes} znodes" : "refused to start";
    }

    private static async Task<Outcome> OutcomeOf(ServerProcess p)
    {
        if (!p.Started) return new Outcome(false, -1, -1);
        string srvr = await ServerProcess.FourLetterAsync(p.Port, "srvr");
        var zxid = Regex.Match(srvr, @"Zxid: 0x([0-9a-f]+)");
        var nodes = Regex.Match(srvr, @"Node count: (\d+)");
        Assert.True(zxid.Success && nodes.Success, p.Name + " srvr: " + srvr);
        return new Outcome(true, Convert.ToInt64(zxid.Groups[1].Value, 16), int.Parse(nodes.Groups[1].Value));
    }

    /// <summary>Starts the Keeper on one copy of <paramref name="damaged"/> and upstream on another,
    /// checks both end the same way, and returns the Keeper's outcome and process (for its log).</summary>
    private async Task<(Outcome Outcome, string KeeperLog, string? UpstreamLog)> RunBothAsync(string damaged, params string[] keeperArgs)
    {
        var (o, k, u, _) = await RunBothInAsync(damaged, keeperArgs);
        return (o, k, u);
    }

    private async Task<(Outcome Outcome, string KeeperLog, string? UpstreamLog, string KeeperDir)> RunBothInAsync(string damaged, params string[] keeperArgs)
    {
        string a = Path.Combine(_root, "keeper-" + Guid.NewGuid().ToString("N")), b = Path.Combine(_root, "upstream-" + Guid.NewGuid().ToString("N"));
        Copy(damaged, a);
        Copy(damaged, b);
        using var keeper = await ServerProcess.StartSamsaAsync(ServerProcess.WriteConfig(_root, a, 0), keeperArgs);
        var mine = await OutcomeOf(keeper);
        _out.WriteLine($"samsa keeper: {mine} (exit {keeper.ExitCode})\n{keeper.Log}");
        if (keeperArgs.Length > 0) return (mine, keeper.Log, null, a);
        string? why = ServerProcess.UpstreamUnavailable();
        if (why is not null)
        {
            _out.WriteLine("upstream half skipped: " + why);
            return (mine, keeper.Log, null, a);
        }
        using var upstream = await ServerProcess.StartUpstreamAsync(_root, b);
        var theirs = await OutcomeOf(upstream);
        _out.WriteLine($"upstream ZooKeeper 3.8: {theirs} (exit {upstream.ExitCode})");
        Assert.True(mine == theirs, $"the Keeper {mine}, upstream {theirs}\nupstream log:\n{upstream.Log}");
        if (!theirs.Started) Assert.NotEqual(0, upstream.ExitCode);
        return (mine, keeper.Log, upstream.Log, a);
    }

    private static void AssertRefusedWithOneLine(Outcome o, string log, string file, string reason)
    {
        Assert.False(o.Started);
        var lines = log.Split('\n').Where(l => l.Contains("samsa keeper:", StringComparison.Ordinal)).ToList();
        var line = Assert.Single(lines);
        Assert.Contains(file, line);
        Assert.Contains(reason, line);
        Assert.Contains("offset", line);
        Assert.Contains("--recover-truncate", line);
    }

    [Fact]
    public async Task A_txn_log_truncated_to_zero_bytes_stops_both_servers()
    {
        string dir = await BuildAsync();
        File.WriteAllBytes(V2(dir, "log.3ec"), Array.Empty<byte>());
        var (o, log, up) = await RunBothAsync(dir);
        AssertRefusedWithOneLine(o, log, "log.3ec", "end of file inside the file header");
        if (up is not null) Assert.Contains("EOFException", up);
    }

    [Fact]
    public async Task A_txn_log_truncated_to_ten_bytes_stops_both_servers()
    {
        string dir = await BuildAsync();
        using (var fs = new FileStream(V2(dir, "log.3ec"), FileMode.Open)) fs.SetLength(10);
        var (o, log, up) = await RunBothAsync(dir);
        AssertRefusedWithOneLine(o, log, "log.3ec", "end of file inside the file header");
        if (up is not null) Assert.Contains("EOFException", up);
    }

    [Fact]
    public async Task Four_bytes_flipped_inside_the_last_txn_stop_both_servers_with_a_crc_error()
    {
        string dir = await BuildAsync();
        string file = V2(dir, "log.3ec");
        var last = Entries(file)[^1];
        Flip(file, last.Offset + 12 + last.Length / 2, 4);
        var (o, log, up) = await RunBothAsync(dir);
        AssertRefusedWithOneLine(o, log, "log.3ec", "CRC check failed");
        Assert.Contains($"offset {last.Offset}", log);
        if (up is not null) Assert.Contains("CRC check failed", up);
    }

    [Fact]
    public async Task Eight_bytes_flipped_mid_file_start_both_servers_with_the_whole_prefix_and_say_so()
    {
        string dir = await BuildAsync();
        string file = V2(dir, "log.3ec");
        var entries = Entries(file);
        var mid = entries[entries.Count / 2];
        // the last 4 bytes of a txn, its 'B' end marker and 3 bytes of the next entry's CRC
        Flip(file, mid.Offset + 12 + mid.Length - 4, 8);
        long lastWhole = ZxidOf(file, entries[entries.Count / 2 - 1]);
        var (o, log, up) = await RunBothAsync(dir);
        Assert.True(o.Started, log);
        Assert.Equal(lastWhole, o.Zxid);
        // the prefix: /r1 and the children created before the damaged txn
        Assert.Equal(AllNodes - (int)(LastZxid - 1 - lastWhole), o.Nodes);
        Assert.Contains($"Last transaction was partial: log.3ec at offset {mid.Offset}", log);
        Assert.Contains($"last zxid 0x{lastWhole:x}", log);
        if (up is not null) Assert.Contains("Last transaction was partial", up);
    }

    [Fact]
    public async Task A_damaged_newest_snapshot_falls_back_to_the_previous_one_on_both_servers()
    {
        string dir = await BuildAsync();
        string snap = V2(dir, "snapshot.3eb");
        Flip(snap, new FileInfo(snap).Length / 2, 8);
        var (o, log, _) = await RunBothAsync(dir);
        Assert.Equal(new Outcome(true, LastZxid, AllNodes), o);
        Assert.Contains("problem reading snapshot snapshot.3eb", log);
        Assert.Contains("the newest snapshot snapshot.3eb is unusable; recovering from snapshot.0", log);
        Assert.Contains($"{LastZxid} txns replayed from the log, last zxid 0x{LastZxid:x}", log);
    }

    [Fact]
    public async Task A_snapshot_cut_short_falls_back_too()
    {
        string dir = await BuildAsync();
        string snap = V2(dir, "snapshot.3eb");
        using (var fs = new FileStream(snap, FileMode.Open)) fs.SetLength(fs.Length - 3);
        var (o, log, _) = await RunBothAsync(dir);
        Assert.Equal(new Outcome(true, LastZxid, AllNodes), o);
        Assert.Contains("invalid snapshot snapshot.3eb", log);
    }

    [Fact]
    public async Task An_undamaged_directory_reports_what_it_loaded()
    {
        string dir = await BuildAsync();
        var (o, log, _) = await RunBothAsync(dir);
        Assert.Equal(new Outcome(true, LastZxid, AllNodes), o);
        Assert.Contains($"recovered snapshot snapshot.3eb (zxid 0x{SnapZxid:x}), {LastZxid - SnapZxid} txns replayed from the log, last zxid 0x{LastZxid:x}", log);
        Assert.DoesNotContain("partial", log);
    }

    [Fact]
    public async Task Recover_truncate_cuts_a_crc_damaged_log_at_the_damage_and_starts_with_the_rest()
    {
        string dir = await BuildAsync();
        string file = V2(dir, "log.3ec");
        var entries = Entries(file);
        var last = entries[^1];
        Flip(file, last.Offset + 12 + last.Length / 2, 4);
        var (o, log, _, repaired) = await RunBothInAsync(dir, "--recover-truncate");
        // the last txn (closeSession) is gone; every create stays
        Assert.Equal(new Outcome(true, LastZxid - 1, AllNodes), o);
        Assert.Contains($"--recover-truncate: log.3ec cut at offset {last.Offset} (CRC check failed): kept the txns up to zxid 0x{LastZxid - 1:x}", log);
        Assert.Contains("the original is damaged.log.3ec", log);
        Assert.Equal(last.Offset, new FileInfo(V2(repaired, "log.3ec")).Length);
        // the repaired directory starts plainly, on the Keeper and on upstream alike
        var (again, againLog, _) = await RunBothAsync(repaired);
        Assert.Equal(new Outcome(true, LastZxid - 1, AllNodes), again);
        Assert.DoesNotContain("damage", againLog);
    }

    [Fact]
    public async Task Recover_truncate_drops_an_empty_log_and_starts_from_the_snapshot()
    {
        string dir = await BuildAsync();
        File.WriteAllBytes(V2(dir, "log.3ec"), Array.Empty<byte>());
        var (o, log, _) = await RunBothAsync(dir, "--recover-truncate");
        Assert.Equal(new Outcome(true, SnapZxid, 5 + 1001), o);
        Assert.Contains("--recover-truncate: log.3ec dropped whole", log);
    }
}
