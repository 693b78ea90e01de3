using System.Diagnostics;
using System.Numerics;

namespace Samsa.Net;

/// <summary>
/// A latency recorder for the hot path: one interlocked increment of a log-scale bucket (plus the
/// running count and sum) per observation, no lock and no allocation. Quantiles are computed when
/// they are read (a Prometheus scrape) from the buckets of a sliding time window.
///
/// Values are non-negative integers (Stopwatch ticks, or any unit the caller picks). Buckets are
/// log-linear: exact below 32, then 16 per power of two, so a bucket is at most 1/16 (6.25 %) of
/// its lower bound wide; a quantile is interpolated linearly inside its bucket. Values at or above
/// 2^44 (about 4.9 hours in nanoseconds) count in the top bucket.
///
/// Window: by default 6 slots of 10 seconds each; an observation goes to the slot of its timestamp,
/// and quantiles cover the current slot and the five before it — the last 50 to 60 seconds. This is a time window, not the exponentially decaying reservoir of the
/// Yammer histograms behind upstream's RequestMetrics (which weights the last ~5 minutes); it keeps
/// what the prometheus-net summaries it replaces exposed (one-minute windows). With nothing observed
/// in the window a quantile is NaN, as a prometheus-net summary prints it. Count and sum are
/// cumulative since start.
/// </summary>
public sealed class WindowedHistogram
{
    private const int SubBits = 4, Sub = 1 << SubBits;
    private const int MaxLog2 = 44;
    /// <summary>Buckets per slot: values 0..31 exactly, then 16 per power of two up to 2^44.</summary>
    public const int Buckets = (MaxLog2 - SubBits + 1) * Sub;

    // int counts: a bucket of one 10-second slot does not reach 2^31 observations
    private readonly int[] _counts;
    private readonly long[] _epochs;
    // the largest value per slot: the top bucket is interpolated up to it, not to its bound
    private readonly long[] _max;
    private readonly long _ticksPerSlot;
    private readonly int _slots;
    private readonly object _rotate = new();
    private long _count, _sum;

    /// <param name="slots">slots in the window (at least 2)</param>
    /// <param name="slotSeconds">seconds per slot: the window is the last (slots − 1) to slots times this</param>
    public WindowedHistogram(int slots = 6, int slotSeconds = 10)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(slots, 2);
        ArgumentOutOfRangeException.ThrowIfLessThan(slotSeconds, 1);
        _slots = slots;
        _ticksPerSlot = Stopwatch.Frequency * slotSeconds;
        _counts = new int[slots * Buckets];
        _epochs = new long[slots];
        _max = new long[slots];
        Array.Fill(_epochs, long.MinValue);
    }

    /// <summary>Observations since start.</summary>
    public long Count => Volatile.Read(ref _count);

    /// <summary>Sum of the observed values since start (negative values counted as 0).</summary>
    public long Sum => Volatile.Read(ref _sum);

    /// <summary>Records <paramref name="value"/> as observed now.</summary>
    public void Record(long value) => Record(value, Stopwatch.GetTimestamp());

    /// <summary>Records <paramref name="value"/> as observed at <paramref name="timestamp"/>
    /// (a <see cref="Stopwatch.GetTimestamp"/> the caller already has).</summary>
    public void Record(long value, long timestamp)
    {
        if (value < 0) value = 0;
        long epoch = timestamp / _ticksPerSlot;
        int slot = (int)((ulong)epoch % (ulong)_slots);
        if (Volatile.Read(ref _epochs[slot]) != epoch) Rotate(slot, epoch);
        Interlocked.Increment(ref _counts[slot * Buckets + BucketOf(value)]);
        if (value > Volatile.Read(ref _max[slot])) RaiseMax(ref _max[slot], value);
        Interlocked.Increment(ref _count);
        Interlocked.Add(ref _sum, value);
    }

    /// <summary>The first observation of a new slot period clears the slot (once per slot period,
    /// under a lock; recorders of the same period wait for it). A recorder delayed across the clear
    /// can add one observation to the new period: harmless for a latency quantile.</summary>
    private void Rotate(int slot, long epoch)
    {
        lock (_rotate)
        {
            if (_epochs[slot] >= epoch) return;   // another thread cleared it, or a late recorder
            Array.Clear(_counts, slot * Buckets, Buckets);
            Volatile.Write(ref _max[slot], 0);
            Volatile.Write(ref _epochs[slot], epoch);
        }
    }

    private static void RaiseMax(ref long max, long value)
    {
        for (long seen = Volatile.Read(ref max); value > seen;)
        {
            long was = Interlocked.CompareExchange(ref max, value, seen);
            if (was == seen) return;
            seen = was;
        }
    }

    /// <summary>The bucket of a non-negative value.</summary>
    public static int BucketOf(long value)
    {
        if (value < 2 * Sub) return (int)value;
        int log2 = BitOperations.Log2((ulong)value);
        if (log2 >= MaxLog2) return Buckets - 1;
        int shift = log2 - SubBits;
        return shift * Sub + (int)(value >> shift);
    }

    /// <summary>The lowest value of bucket <paramref name="bucket"/> and its width.</summary>
    public static (long Low, long Width) BucketRange(int bucket)
    {
        if (bucket < 2 * Sub) return (bucket, 1);
        int shift = bucket / Sub - 1;
        long mantissa = bucket % Sub + Sub;
        return (mantissa << shift, 1L << shift);
    }

    /// <summary>Quantiles (each in [0, 1]) of the observations in the window ending at
    /// <paramref name="timestamp"/>, written to <paramref name="into"/> in the caller's unit times
    /// <paramref name="scale"/>; NaN when the window holds no observation. Returns the number of
    /// observations in the window. Allocation-free; meant for scrapes, not for the hot path.</summary>
    public long Quantiles(ReadOnlySpan<double> quantiles, Span<double> into, double scale, long timestamp)
    {
        long epoch = timestamp / _ticksPerSlot;
        Span<long> merged = stackalloc long[Buckets];
        long total = 0, max = 0;
        for (int s = 0; s < _slots; s++)
        {
            long e = Volatile.Read(ref _epochs[s]);
            if (e > epoch || e <= epoch - _slots) continue;   // outside the window (or never used)
            max = Math.Max(max, Volatile.Read(ref _max[s]));
            var counts = _counts.AsSpan(s * Buckets, Buckets);
            for (int b = 0; b < Buckets; b++)
            {
                long c = Volatile.Read(ref counts[b]);
                merged[b] += c;
                total += c;
            }
        }
        for (int i = 0; i < quantiles.Length; i++)
            into[i] = total == 0 ? double.NaN : ValueAtRank(merged, quantiles[i] * total, max) * scale;
        return total;
    }

    /// <inheritdoc cref="Quantiles(ReadOnlySpan{double}, Span{double}, double, long)"/>
    public long Quantiles(ReadOnlySpan<double> quantiles, Span<double> into, double scale = 1) =>
        Quantiles(quantiles, into, scale, Stopwatch.GetTimestamp());

    /// <summary>The value below which <paramref name="rank"/> of the observations lie: the bucket
    /// where the running count reaches the rank, interpolated linearly inside it (the top bucket
    /// only up to the largest value seen).</summary>
    private static double ValueAtRank(ReadOnlySpan<long> counts, double rank, long max)
    {
        int top = BucketOf(max);
        long below = 0;
        int last = 0;
        for (int b = 0; b < counts.Length; b++)
        {
            long c = counts[b];
            if (c == 0) continue;
            last = b;
            if (below + c >= rank)
            {
                // the integers low .. low + width - 1, spread evenly
                var (low, width) = BucketRange(b);
                long high = b == top ? Math.Max(low, max) : low + width - 1;
                double within = Math.Clamp((rank - below) / c, 0, 1);
                return low + (high - low) * within;
            }
            below += c;
        }
        var (l, w) = BucketRange(last);   // rounding: the rank is past the last count
        return last == top ? Math.Max(l, max) : l + w - 1;
    }
}
