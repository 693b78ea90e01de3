using System.Diagnostics;
using System.Text;
using Prometheus;

namespace Samsa.Net.Tests;

/// <summary>
/// The lock-free latency recorder behind the RequestMetrics summaries (issue #19/#20): its
/// quantiles against exact quantiles of known distributions, its one-minute window, its count/sum,
/// and the series it prints through prometheus-net.
/// </summary>
public class WindowedHistogramTests
{
    private static readonly double[] KafkaQuantiles = [0.5, 0.75, 0.95, 0.98, 0.99, 0.999];
    private static readonly long T0 = Stopwatch.Frequency * 1_000_000;   // some instant well past zero
    private static long At(double seconds) => T0 + (long)(seconds * Stopwatch.Frequency);

    /// <summary>The exact quantile of sorted values: the smallest value with at least q·n values at or below it.</summary>
    private static double Exact(long[] sorted, double q) => sorted[Math.Max(0, (int)Math.Ceiling(q * sorted.Length) - 1)];

    private static void AssertQuantilesNear(long[] values, double tolerance)
    {
        var h = new WindowedHistogram();
        foreach (long v in values) h.Record(v, At(1));
        var got = new double[KafkaQuantiles.Length];
        Assert.Equal(values.Length, h.Quantiles(KafkaQuantiles, got, 1, At(2)));
        var sorted = values.Order().ToArray();
        for (int i = 0; i < KafkaQuantiles.Length; i++)
        {
            double want = Exact(sorted, KafkaQuantiles[i]);
            Assert.True(Math.Abs(got[i] - want) <= tolerance * want,
                $"quantile {KafkaQuantiles[i]}: {got[i]:F1}, exact {want} (allowed ±{tolerance:P1})");
        }
    }

    /// <summary>The registry's text as prometheus-net prints it: value by "name{labels}".</summary>
    private static async Task<Dictionary<string, double>> ScrapeAsync(CollectorRegistry registry)
    {
        var text = Encoding.UTF8.GetString(await PrometheusText.SerializeAsync(registry, CancellationToken.None));
        return text.Split('\n').Where(l => l.Length > 0 && l[0] != '#')
            .ToDictionary(l => l[..l.LastIndexOf(' ')], l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void Uniform_quantiles_match_the_exact_ones()
    {
        // 1..200000 µs-like values in random order
        var values = Enumerable.Range(1, 200_000).Select(i => (long)i).ToArray();
        new Random(3).Shuffle(values);
        AssertQuantilesNear(values, 0.005);
    }

    [Fact]
    public void Skewed_quantiles_match_the_exact_ones()
    {
        // latencies as a broker sees them: log-normal around 0.2 ms in ns, a long tail (p999 ~ 40x median)
        var rng = new Random(11);
        var values = new long[100_000];
        for (int i = 0; i < values.Length; i++)
        {
            double gauss = Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
            values[i] = (long)(200_000 * Math.Exp(1.2 * gauss));
        }
        AssertQuantilesNear(values, 0.02);
    }

    [Fact]
    public void Two_clusters_put_each_quantile_in_the_right_one()
    {
        // 97 % fast (50..59), 3 % slow (5000..5999): p95 is fast, p98 and above slow
        var values = Enumerable.Range(0, 97_000).Select(i => 50L + i % 10)
            .Concat(Enumerable.Range(0, 3_000).Select(i => 5_000L + i % 1000)).ToArray();
        AssertQuantilesNear(values, 0.02);
    }

    [Fact]
    public void Equal_and_zero_values_are_exact()
    {
        var h = new WindowedHistogram();
        for (int i = 0; i < 1000; i++) h.Record(7, At(0));
        var got = new double[KafkaQuantiles.Length];
        h.Quantiles(KafkaQuantiles, got, 1, At(0));
        Assert.All(got, v => Assert.Equal(7, v));

        var zero = new WindowedHistogram();
        zero.Record(0, At(0));
        zero.Record(-5, At(0));   // a clock step backwards counts as 0
        zero.Quantiles(KafkaQuantiles, got, 1, At(0));
        Assert.All(got, v => Assert.Equal(0, v));
        Assert.Equal(0, zero.Sum);
    }

    [Fact]
    public void Buckets_cover_every_value_once_and_in_order()
    {
        for (int b = 0; b < WindowedHistogram.Buckets - 1; b++)
        {
            var (low, width) = WindowedHistogram.BucketRange(b);
            Assert.Equal(b, WindowedHistogram.BucketOf(low));
            Assert.Equal(b, WindowedHistogram.BucketOf(low + width - 1));
            Assert.Equal(b + 1, WindowedHistogram.BucketOf(low + width));
            Assert.True(width == 1 || width <= low / 16, $"bucket {b}: width {width} at {low}");
        }
        Assert.Equal(WindowedHistogram.Buckets - 1, WindowedHistogram.BucketOf(long.MaxValue));
    }

    [Fact]
    public void Quantiles_cover_the_last_minute_count_and_sum_everything()
    {
        var h = new WindowedHistogram();
        var got = new double[1];
        Assert.Equal(0, h.Quantiles([0.5], got, 1, At(0)));
        Assert.True(double.IsNaN(got[0]), "nothing observed: NaN, as a prometheus-net summary prints it");

        for (int i = 0; i < 100; i++) h.Record(1000, At(0));
        Assert.Equal(100, h.Quantiles([0.5], got, 1, At(45)));
        Assert.Equal(1000, got[0], 1000 * 0.01);   // within its bucket [992, 1000]

        // 60 s later the first observations have left the window; the new ones alone count
        for (int i = 0; i < 10; i++) h.Record(20, At(61));
        Assert.Equal(10, h.Quantiles([0.5], got, 1, At(61)));
        Assert.Equal(20, got[0], 1e-9);
        Assert.Equal(110, h.Count);
        Assert.Equal(100 * 1000 + 10 * 20, h.Sum);

        // and after another idle minute, nothing is left
        Assert.Equal(0, h.Quantiles([0.5], got, 1, At(130)));
        Assert.True(double.IsNaN(got[0]));
    }

    [Fact]
    public void Concurrent_recorders_lose_nothing()
    {
        var h = new WindowedHistogram();
        const int threads = 4, each = 200_000;
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            for (int i = 0; i < each; i++) h.Record(100 + i % 50, At(5));
        });
        Assert.Equal(threads * each, h.Count);
        var got = new double[1];
        Assert.Equal(threads * each, h.Quantiles([0.5], got, 1, At(5)));
    }

    [Fact]
    public async Task Printed_by_prometheus_net_as_summary_series()
    {
        var registry = Metrics.NewCustomRegistry();
        var summary = new WindowedSummary(registry, "test_timems", "a time", 0.001, KafkaQuantiles, "request");
        var h = summary.WithLabels("Produce");
        Assert.Same(h, summary.WithLabels("Produce"));
        for (int i = 1; i <= 1000; i++) h.Record(i * 1000L);   // 1..1000 ms in µs, scale 0.001
        var lines = await ScrapeAsync(registry);
        Assert.Equal(1000, lines["test_timems_count{request=\"Produce\"}"]);
        Assert.Equal(500_500, lines["test_timems_sum{request=\"Produce\"}"], 1e-6);
        Assert.Equal(500, lines["test_timems{request=\"Produce\",quantile=\"0.5\"}"], 500 * 0.01);
        Assert.Equal(990, lines["test_timems{request=\"Produce\",quantile=\"0.99\"}"], 990 * 0.01);
        Assert.Equal(999, lines["test_timems{request=\"Produce\",quantile=\"0.999\"}"], 999 * 0.01);
        Assert.Equal(6 + 2, lines.Count);
    }

    [Fact]
    public async Task A_ten_minute_unlabelled_family_as_the_Keeper_prints_it()
    {
        var h = new WindowedHistogram(slots: 5, slotSeconds: 120);
        for (int i = 0; i < 10; i++) h.Record(3, At(0));
        var got = new double[1];
        Assert.Equal(10, h.Quantiles([0.5], got, 1, At(479)));   // still in the window after 8 minutes
        Assert.Equal(3, got[0]);
        Assert.Equal(0, h.Quantiles([0.5], got, 1, At(601)));    // gone after 10

        var registry = Metrics.NewCustomRegistry();
        var latency = new WindowedSummary(registry, "readlatency", "readlatency", 1, [0.5, 0.9, 0.99], slots: 5, slotSeconds: 120).Unlabelled;
        for (int i = 1; i <= 100; i++) latency.Record(i);
        var lines = await ScrapeAsync(registry);
        Assert.Equal(90, lines["readlatency{quantile=\"0.9\"}"], 90 * 0.01);
        Assert.Equal(100, lines["readlatency_count"]);
        Assert.Equal(5050, lines["readlatency_sum"]);
        Assert.Equal(3 + 2, lines.Count);
    }
}
