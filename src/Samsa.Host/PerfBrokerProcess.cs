using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;

namespace Samsa.Host;

/// <summary>
/// A broker run as a child process of <c>samsa perf</c> (the same executable, <c>samsa broker</c>),
/// so that its CPU time and peak memory are measured apart from the load generator's. CPU comes
/// from /proc/&lt;pid&gt;/stat (utime + stime, in clock ticks) and peak RSS from VmHWM in
/// /proc/&lt;pid&gt;/status, the kernel's own accounting.
/// </summary>
internal sealed partial class PerfBrokerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _stderrTail = [];

    private PerfBrokerProcess(Process process) => _process = process;

    public string Host { get; private set; } = "";
    public int Port { get; private set; }
    public int Pid => _process.Id;

    /// <summary>Starts <c>samsa broker</c> with a fresh server.properties in <paramref name="dataDir"/>
    /// and waits for its "kafka listening on" line; with <paramref name="brokers"/> &gt; 1,
    /// <c>samsa dev --brokers N</c> in that directory, waiting for all N brokers.</summary>
    public static async Task<PerfBrokerProcess> StartAsync(string dataDir, IEnumerable<KeyValuePair<string, string>> extraProps, int brokers = 1)
    {
        Directory.CreateDirectory(dataDir);
        var args = new List<string>();
        if (brokers > 1)
        {
            // Several brokers: `samsa dev --brokers N` (the Keeper and N brokers in one process, ZooKeeper
            // mode), so one process's CPU covers leaders, followers and their replica fetchers.
            // Measured as the one-broker child runs: no request tap (it renders every request to
            // JSON) and no web console, which `samsa dev` turns on for people; --broker-prop may
            // turn the tap on again.
            args.AddRange(["dev", "--brokers", brokers.ToString(CultureInfo.InvariantCulture), "--data", dataDir, "--kafka-port", "0", "--zk-port", "0",
                "--no-console", "--override", "samsa.tap.enabled=false"]);
            foreach (var (k, v) in extraProps) args.AddRange(["--override", $"{k}={v}"]);
            return await LaunchAsync(args, brokers);
        }
        var props = new Dictionary<string, string>
        {
            ["broker.id"] = "1",
            ["listeners"] = "PLAINTEXT://127.0.0.1:0",
            ["log.dirs"] = Path.Combine(dataDir, "kafka"),
            // One broker: internal topics cannot have three replicas.
            ["offsets.topic.replication.factor"] = "1",
            ["transaction.state.log.replication.factor"] = "1",
            ["transaction.state.log.min.isr"] = "1",
        };
        foreach (var (k, v) in extraProps) props[k] = v;
        string config = Path.Combine(dataDir, "server.properties");
        await File.WriteAllLinesAsync(config, props.Select(p => $"{p.Key}={p.Value}"));

        args.AddRange(["broker", "--config", config]);
        return await LaunchAsync(args, 1);
    }

    private static async Task<PerfBrokerProcess> LaunchAsync(List<string> args, int brokers)
    {
        var psi = new ProcessStartInfo
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // The same binary: the apphost (`samsa`) directly, or `dotnet samsa.dll` when run that way.
        string self = Environment.ProcessPath ?? throw new InvalidOperationException("cannot locate the samsa executable");
        psi.FileName = self;
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
            // (AppContext.BaseDirectory rather than Assembly.Location, which a single-file build lacks)
            psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, Assembly.GetEntryAssembly()!.GetName().Name + ".dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);

        var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start the broker process");
        var broker = new PerfBrokerProcess(process);
        _ = Task.Run(async () =>
        {
            while (await process.StandardError.ReadLineAsync() is { } line)
                lock (broker._stderrTail)
                {
                    broker._stderrTail.Add(line);
                    if (broker._stderrTail.Count > 40) broker._stderrTail.RemoveAt(0);
                }
        });
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            int listening = 0;
            while (await process.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
            {
                const string prefix = "kafka listening on ";
                if (!line.StartsWith(prefix, StringComparison.Ordinal)) continue;
                // The first broker is the bootstrap; with several, wait until every one listens.
                if (listening++ == 0)
                {
                    string ep = line[prefix.Length..].Trim();
                    int colon = ep.LastIndexOf(':');
                    broker.Host = ep[..colon].Trim('[', ']');
                    broker.Port = int.Parse(ep[(colon + 1)..], CultureInfo.InvariantCulture);
                }
                if (listening < brokers) continue;
                // Keep draining stdout so the child never blocks on a full pipe.
                _ = Task.Run(async () => { while (await process.StandardOutput.ReadLineAsync() is not null) { } });
                return broker;
            }
        }
        catch (OperationCanceledException) { }
        string tail;
        lock (broker._stderrTail) tail = string.Join("\n", broker._stderrTail);
        try { process.Kill(); } catch (InvalidOperationException) { }
        throw new InvalidOperationException($"the broker process did not start listening:\n{tail}");
    }

    /// <summary>User + system CPU seconds the broker process has used so far.</summary>
    public double CpuSeconds() => ReadCpuSeconds(_process.Id);

    /// <summary>Peak resident set size (VmHWM) in bytes.</summary>
    public long PeakRssBytes() => ReadStatusKb(_process.Id, "VmHWM:") * 1024;

    internal static double ReadCpuSeconds(int pid)
    {
        // Fields after the command name (which may hold spaces, so split after the last ')'):
        // state is field 3; utime and stime are fields 14 and 15 (proc(5)).
        string stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        long utime = long.Parse(fields[11], CultureInfo.InvariantCulture);
        long stime = long.Parse(fields[12], CultureInfo.InvariantCulture);
        return (utime + stime) / (double)ClockTicksPerSecond;
    }

    internal static long ReadStatusKb(int pid, string key)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            if (line.StartsWith(key, StringComparison.Ordinal))
                return long.Parse(line[key.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
        return -1;
    }

    private static readonly long ClockTicksPerSecond = GetClockTicks();

    private static long GetClockTicks()
    {
        try
        {
            const int ScClkTck = 2; // _SC_CLK_TCK in glibc's <bits/confname.h>
            long t = sysconf(ScClkTck);
            return t > 0 ? t : 100;
        }
        catch (DllNotFoundException) { return 100; }
        catch (EntryPointNotFoundException) { return 100; }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial long sysconf(int name);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int sig);

    public string StderrTail()
    {
        lock (_stderrTail) return string.Join("\n", _stderrTail);
    }

    /// <summary>SIGTERM (a clean stop: the broker flushes and closes its logs), then SIGKILL after 20 s.</summary>
    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            const int SigTerm = 15;
            _ = kill(_process.Id, SigTerm);
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            try { await _process.WaitForExitAsync(cts.Token); }
            catch (OperationCanceledException) { try { _process.Kill(); } catch (InvalidOperationException) { } }
        }
        _process.Dispose();
    }
}
