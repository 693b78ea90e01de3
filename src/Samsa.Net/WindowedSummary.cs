using System.Collections.Concurrent;
using System.Globalization;
using Prometheus;

namespace Samsa.Net;

/// <summary>
/// A summary-shaped metric family recorded by <see cref="WindowedHistogram"/>s and exposed through
/// prometheus-net at scrape time: <c>name{labels…,quantile="q"}</c> gauges, <c>name_sum</c> and
/// <c>name_count</c> counters — the series a prometheus-net summary prints (and the gauge/counter
/// types the Prometheus JMX exporter gives a Yammer histogram's percentiles and count), without the
/// summary's lock and quantile-stream merge per observation. Recording is lock-free and
/// allocation-free once a child exists (<see cref="WithLabels"/> caches it; keep the returned
/// histogram). The quantiles are those of the histograms' window (one minute unless given).
/// </summary>
public sealed class WindowedSummary
{
    private readonly Gauge _quantiles;
    private readonly Counter _sum, _count;
    private readonly double[] _objectives;
    private readonly string[] _quantileLabels;
    private readonly double _scale;
    private readonly int _slots, _slotSeconds;
    private readonly ConcurrentDictionary<string, Child> _children = new(StringComparer.Ordinal);
    private readonly Lock _scrape = new();
    private Child? _unlabelled;

    private sealed class Child(WindowedHistogram histogram, Gauge.Child[] quantiles, Counter.Child sum, Counter.Child count)
    {
        public readonly WindowedHistogram Histogram = histogram;
        public readonly Gauge.Child[] Quantiles = quantiles;
        public readonly Counter.Child Sum = sum, Count = count;
    }

    /// <param name="registry">where the series are printed; they are refreshed by its before-collect callback</param>
    /// <param name="name">the family name (the quantile gauges); <c>_sum</c> and <c>_count</c> are appended for the others</param>
    /// <param name="scale">exposed value per recorded unit (e.g. 1000 / Stopwatch.Frequency for ticks → ms)</param>
    /// <param name="quantiles">the quantiles printed, as labelled by their invariant string (0.5 → "0.5")</param>
    /// <param name="labelName">the one label besides quantile, or null for none</param>
    /// <param name="slots">window slots per histogram (see <see cref="WindowedHistogram"/>)</param>
    /// <param name="slotSeconds">seconds per slot</param>
    public WindowedSummary(CollectorRegistry registry, string name, string help, double scale, double[] quantiles, string? labelName = null,
        int slots = 6, int slotSeconds = 10)
    {
        _slots = slots;
        _slotSeconds = slotSeconds;
        var f = Metrics.WithCustomRegistry(registry);
        string[] labels = labelName is null ? [] : [labelName];
        _quantiles = f.CreateGauge(name, help, [.. labels, "quantile"]);
        _sum = f.CreateCounter(name + "_sum", help + " (sum)", labels);
        _count = f.CreateCounter(name + "_count", help + " (count)", labels);
        _objectives = quantiles;
        _quantileLabels = [.. quantiles.Select(q => q.ToString(CultureInfo.InvariantCulture))];
        _scale = scale;
        registry.AddBeforeCollectCallback(Refresh);
    }

    /// <summary>The histogram of label value <paramref name="label"/> (created once, then cached).</summary>
    public WindowedHistogram WithLabels(string label) =>
        (_children.TryGetValue(label, out var c) ? c : _children.GetOrAdd(label, l => NewChild([l]))).Histogram;

    /// <summary>The histogram of a family without a label.</summary>
    public WindowedHistogram Unlabelled
    {
        get
        {
            if (_unlabelled is { } c) return c.Histogram;
            lock (_scrape) return (_unlabelled ??= NewChild([])).Histogram;
        }
    }

    private Child NewChild(string[] labels) => new(new WindowedHistogram(_slots, _slotSeconds),
        [.. _quantileLabels.Select(q => _quantiles.WithLabels([.. labels, q]))], _sum.WithLabels(labels), _count.WithLabels(labels));

    /// <summary>Before a scrape: every child's window quantiles, sum and count into its series.</summary>
    private void Refresh()
    {
        lock (_scrape)
        {
            Span<double> values = stackalloc double[_objectives.Length];
            long now = System.Diagnostics.Stopwatch.GetTimestamp();
            foreach (var (_, c) in _children) Refresh(c, values, now);
            if (_unlabelled is { } u) Refresh(u, values, now);
        }
    }

    private void Refresh(Child c, Span<double> values, long now)
    {
        // count before the window: an observation racing the scrape is in the count, maybe not yet in a quantile
        long count = c.Histogram.Count, sum = c.Histogram.Sum;
        c.Histogram.Quantiles(_objectives, values, _scale, now);
        for (int i = 0; i < values.Length; i++) c.Quantiles[i].Set(values[i]);
        c.Sum.IncTo(sum * _scale);
        c.Count.IncTo(count);
    }
}
