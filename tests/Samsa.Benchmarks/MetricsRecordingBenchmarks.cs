using System.Diagnostics;
using BenchmarkDotNet.Attributes;
using Prometheus;
using Samsa.Net;

namespace Samsa.Benchmarks;

/// <summary>
/// One request's RequestMetrics recording on the broker (issue #19/#20): the requests counter and
/// the three times (total, request queue, response queue). "Summary" is what BrokerMetrics did
/// before session 10 — three prometheus-net 8 summaries with the Kafka quantiles, one-minute
/// windows in two age buckets; "Windowed" is Samsa.Net.WindowedHistogram. Single-threaded, so
/// neither pays for contention here; on the broker several connections record into the same API.
/// On a loaded machine wall time means little (a thread gets a small share of a core), so
/// <see cref="RunCpuTime"/> (<c>-- metrics-cpu [rounds]</c>) measures the thread's CPU time and
/// allocated bytes per call instead and prints the median of its rounds.
/// </summary>
[MemoryDiagnoser]
[MinColumn]
public class MetricsRecordingBenchmarks
{
    private static readonly double[] Quantiles = [0.5, 0.75, 0.95, 0.98, 0.99, 0.999];
    private Counter.Child _requests = null!;
    private Summary.Child _sTotal = null!, _sRequestQueue = null!, _sResponseQueue = null!;
    private WindowedHistogram _wTotal = null!, _wRequestQueue = null!, _wResponseQueue = null!;
    private Summary _keeperSummary = null!;
    private WindowedHistogram _keeperWindowed = null!;
    private long _last;
    private int _i;

    [GlobalSetup]
    public void Setup()
    {
        var registry = Metrics.NewCustomRegistry();
        var f = Metrics.WithCustomRegistry(registry);
        _requests = f.CreateCounter("requests_total", "h", "request", "version").WithLabels("Produce", "9");
        Summary S(string name) => f.CreateSummary(name, "h", ["request"], new SummaryConfiguration
        {
            Objectives = [.. Quantiles.Select(q => new QuantileEpsilonPair(q, q >= 0.99 ? 0.005 : 0.02))],
            MaxAge = TimeSpan.FromMinutes(1),
            AgeBuckets = 2,
        });
        _sTotal = S("s_total").WithLabels("Produce");
        _sRequestQueue = S("s_requestqueue").WithLabels("Produce");
        _sResponseQueue = S("s_responsequeue").WithLabels("Produce");
        WindowedHistogram W(string name) => new WindowedSummary(registry, name, "h", 1000.0 / Stopwatch.Frequency, Quantiles, "request").WithLabels("Produce");
        _wTotal = W("w_total");
        _wRequestQueue = W("w_requestqueue");
        _wResponseQueue = W("w_responsequeue");
        // the Keeper's readlatency before: upstream's objectives, prometheus-net's default ten-minute window in five buckets
        _keeperSummary = f.CreateSummary("k_readlatency", "h", [], new SummaryConfiguration
        {
            Objectives = [new QuantileEpsilonPair(0.5, 0.05), new QuantileEpsilonPair(0.9, 0.01), new QuantileEpsilonPair(0.99, 0.001)],
        });
        _keeperWindowed = new WindowedSummary(registry, "kw_readlatency", "h", 1, [0.5, 0.9, 0.99], slots: 5, slotSeconds: 120).Unlabelled;
    }

    /// <summary>Latency-like spread of tick values (10 µs .. ~1 ms at 1 GHz ticks).</summary>
    private long Next() => 10_000 + (long)((uint)(++_i * 2654435761u) % 1_000_000);

    [Benchmark(Baseline = true)]
    public void Summary()
    {
        long now = Stopwatch.GetTimestamp();
        double ms = 1000.0 / Stopwatch.Frequency;
        _requests.Inc();
        _sTotal.Observe(Next() * ms);
        _sRequestQueue.Observe((Next() >> 6) * ms);
        _sResponseQueue.Observe((Next() >> 4) * ms);
        _last = now;   // BrokerMetrics reads the clock once per request; so do both
    }

    [Benchmark]
    public void Windowed()
    {
        long now = Stopwatch.GetTimestamp();
        _requests.Inc();
        _wTotal.Record(Next(), now);
        _wRequestQueue.Record(Next() >> 6, now);
        _wResponseQueue.Record(Next() >> 4, now);
        _last = now;
    }

    /// <summary>One Keeper read's latency (ms) into its Prometheus summary, as before session 10.</summary>
    [Benchmark]
    public void KeeperSummary() => _keeperSummary.Observe(Next() >> 16);

    /// <summary>The same into the windowed histogram that replaced it.</summary>
    [Benchmark]
    public void KeeperWindowed() => _keeperWindowed.Record(Next() >> 16);

    /// <summary>Each method in rounds of 2 million calls, alternating: CPU ns and allocated bytes per
    /// call from the process's CPU time and this thread's allocation counter; medians printed.</summary>
    public static void RunCpuTime(int rounds)
    {
        var b = new MetricsRecordingBenchmarks();
        b.Setup();
        var methods = new (string Name, Action Call)[]
        {
            ("Summary (prometheus-net)", b.Summary), ("Windowed (WindowedHistogram)", b.Windowed),
            ("Keeper latency: Summary", b.KeeperSummary), ("Keeper latency: Windowed", b.KeeperWindowed),
        };
        var cpu = methods.Select(_ => new List<double>()).ToArray();
        var alloc = methods.Select(_ => new List<double>()).ToArray();
        const int Calls = 2_000_000;
        foreach (var (_, call) in methods) for (int i = 0; i < Calls / 4; i++) call();   // warm-up, tiering
        using var process = Process.GetCurrentProcess();
        for (int r = 0; r < rounds; r++)
        {
            for (int m = 0; m < methods.Length; m++)
            {
                var call = methods[m].Call;
                process.Refresh();
                var cpu0 = process.TotalProcessorTime;
                long bytes0 = GC.GetAllocatedBytesForCurrentThread();
                for (int i = 0; i < Calls; i++) call();
                long bytes1 = GC.GetAllocatedBytesForCurrentThread();
                process.Refresh();
                cpu[m].Add((process.TotalProcessorTime - cpu0).TotalNanoseconds / Calls);
                alloc[m].Add((double)(bytes1 - bytes0) / Calls);
            }
        }
        // two threads recording into the same children at once (two connections, one API)
        var contended = new[] { new List<double>(), new List<double>() };
        for (int r = 0; r < rounds; r++)
        {
            for (int m = 0; m < 2; m++)
            {
                var call = methods[m].Call;
                process.Refresh();
                var cpu0 = process.TotalProcessorTime;
                Parallel.For(0, 2, new ParallelOptions { MaxDegreeOfParallelism = 2 }, _ => { for (int i = 0; i < Calls / 2; i++) call(); });
                process.Refresh();
                contended[m].Add((process.TotalProcessorTime - cpu0).TotalNanoseconds / Calls);
            }
        }
        static double Median(List<double> v) { v.Sort(); return v[v.Count / 2]; }
        Console.WriteLine($"per request: broker RequestMetrics (requests counter + 3 times), Keeper (one latency); {rounds} rounds x {Calls:N0} calls, medians; load {File.ReadAllText("/proc/loadavg").Trim()}");
        for (int m = 0; m < methods.Length; m++)
            Console.WriteLine($"{methods[m].Name,-42} {Median(cpu[m]),8:F1} CPU ns/request   {Median(alloc[m]),6:F2} B/request   (CPU ns per round: {string.Join(" ", cpu[m].Select(x => x.ToString("F0", System.Globalization.CultureInfo.InvariantCulture)))})");
        for (int m = 0; m < 2; m++)
            Console.WriteLine($"{methods[m].Name + ", 2 threads",-42} {Median(contended[m]),8:F1} CPU ns/request   (CPU ns per round: {string.Join(" ", contended[m].Select(x => x.ToString("F0", System.Globalization.CultureInfo.InvariantCulture)))})");
    }
}
