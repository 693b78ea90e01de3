namespace Samsa.Kafka.Broker.Security.Quotas;

/// <summary>
/// A rate over sampled windows, as upstream's metrics Rate over a WindowedSum (SampledStat):
/// <c>samples</c> windows of <c>windowMs</c> (quota.window.num = 11, quota.window.size.seconds = 1)
/// plus one overlapping placeholder; a sample with no event for samples × window is reset; the rate
/// divides the retained sum by the elapsed time since the oldest sample, counted as at least
/// samples − 1 full windows, so a first burst is measured against ten seconds, not against the
/// milliseconds since it began.
/// </summary>
public sealed class SampledRate
{
    private sealed class Sample
    {
        public long StartMs, LastEventMs;
        public double Value;
        public void Reset(long now) { StartMs = now; LastEventMs = now; Value = 0; }
    }

    private readonly int _samples;
    private readonly long _windowMs;
    private readonly List<Sample> _ring;
    private int _current;

    public SampledRate(int samples, long windowMs)
    {
        _samples = Math.Max(1, samples);
        _windowMs = Math.Max(1, windowMs);
        _ring = new List<Sample>(_samples + 1);
    }

    public int Samples => _samples;
    public long WindowMs => _windowMs;

    private Sample Current(long now)
    {
        if (_ring.Count == 0) _ring.Add(new Sample { StartMs = now, LastEventMs = now });
        return _ring[_current];
    }

    public void Record(double value, long now)
    {
        var sample = Current(now);
        if (now - sample.StartMs >= _windowMs)
        {
            // Advance, keeping samples + 1 slots (upstream's "overlapping sample").
            _current = (_current + 1) % (_samples + 1);
            if (_current >= _ring.Count) { sample = new Sample { StartMs = now, LastEventMs = now }; _ring.Add(sample); }
            else { sample = _ring[_current]; sample.Reset(now); }
        }
        sample.Value += value;
        sample.LastEventMs = now;
    }

    private void PurgeObsolete(long now)
    {
        long expireAge = _samples * _windowMs;
        foreach (var s in _ring)
            if (now - s.LastEventMs >= expireAge) s.Reset(now);
    }

    /// <summary>Upstream Rate.windowSize: elapsed ms since the oldest retained sample, at least
    /// (samples − 1) windows plus the part of the current one, never below 1 ms.</summary>
    public long WindowSize(long now)
    {
        PurgeObsolete(now);
        if (_ring.Count == 0) _ring.Add(new Sample { StartMs = now, LastEventMs = now });
        long oldest = _ring.Min(s => s.StartMs);
        long elapsed = now - oldest;
        long full = elapsed / _windowMs;
        long minFull = _samples - 1;
        if (full < minFull) elapsed += (minFull - full) * _windowMs;
        return Math.Max(elapsed, 1);
    }

    /// <summary>Per second.</summary>
    public double Measure(long now)
    {
        PurgeObsolete(now);
        double sum = 0;
        foreach (var s in _ring) sum += s.Value;
        return sum / (WindowSize(now) / 1000.0);
    }
}

/// <summary>
/// Upstream's TokenBucket (KIP-599), used by the controller mutation quota: tokens refill at the
/// quota per second up to a burst of samples × window × quota; a mutation takes its partitions'
/// worth of tokens and may drive the bucket negative; while negative the quota is violated, and
/// the throttle time is the time to refill to zero (−tokens / quota × 1000).
/// </summary>
public sealed class TokenBucket(int samples, long windowMs)
{
    private double _tokens;
    private long _lastUpdateMs;

    private void Refill(double quota, long now)
    {
        double burst = samples * (windowMs / 1000.0) * quota;
        _tokens = Math.Min(burst, _tokens + quota * ((now - _lastUpdateMs) / 1000.0));
        _lastUpdateMs = now;
    }

    public double Measure(double quota, long now)
    {
        Refill(quota, now);
        return _tokens;
    }

    public void Record(double quota, double value, long now)
    {
        Refill(quota, now);
        double burst = samples * (windowMs / 1000.0) * quota;
        _tokens = Math.Min(burst, _tokens - value);
    }
}
