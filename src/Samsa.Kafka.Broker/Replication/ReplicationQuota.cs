using System.Globalization;
using Samsa.Kafka.Broker.Cluster;

namespace Samsa.Kafka.Broker.Replication;

/// <summary>
/// One side of replication throttling (KIP-73; upstream ReplicationQuotaManager): a byte rate
/// shared by every throttled partition on this broker. The leader side limits what the leader
/// returns to followers that are catching up (outside the ISR) of partitions listed in the topic's
/// <c>leader.replication.throttled.replicas</c> for this broker; the follower side limits what this
/// broker fetches for partitions listed in <c>follower.replication.throttled.replicas</c>.
///
/// When the measured rate is above the bound, throttled partitions get no data until it falls
/// again; a fetch already under way is not cut short, so the rate overshoots by at most one
/// fetch's worth, as upstream's. The rate is measured over <c>replication.quota.window.num</c>
/// windows of <c>replication.quota.window.size.seconds</c> (upstream's Rate: the elapsed time
/// counts at least num − 1 whole windows, so a new quota starts with that much credit).
/// The bound (<c>leader/follower.replication.throttled.rate</c>) is read from the broker's
/// effective configuration at every check, so dynamic changes apply at once.
/// </summary>
public sealed class ReplicationQuota
{
    private readonly Func<long> _bound;
    private readonly string _replicasConfig;
    private readonly int _brokerId;
    private readonly long _windowMs;
    private readonly long[] _bytes;
    private readonly long[] _start;
    private readonly object _gate = new();
    private int _current;
    private readonly Func<long> _clock;

    /// <param name="bound">The rate limit in bytes/s, read at use time.</param>
    /// <param name="replicasConfig">leader.replication.throttled.replicas or follower.replication.throttled.replicas.</param>
    public ReplicationQuota(Func<long> bound, string replicasConfig, int brokerId, int windows, int windowSeconds, Func<long>? clock = null)
    {
        _bound = bound;
        _replicasConfig = replicasConfig;
        _brokerId = brokerId;
        _windowMs = Math.Max(1, windowSeconds) * 1000L;
        _bytes = new long[Math.Max(1, windows)];
        _start = new long[_bytes.Length];
        _clock = clock ?? (() => Environment.TickCount64);
        long now = _clock();
        Array.Fill(_start, long.MinValue);
        _start[0] = now;
    }

    public long Bound => _bound();

    /// <summary>Whether the partition is throttled on this side: the topic's list names
    /// "partition:this broker", or is "*" (upstream parseThrottledPartitions).</summary>
    public bool IsThrottled(Partition partition)
    {
        if (Bound == long.MaxValue) return false;
        if (!partition.Topic.Configs.TryGetValue(_replicasConfig, out var list)) return false;
        return Lists(list, partition.Index, _brokerId);
    }

    internal static bool Lists(string list, int partition, int brokerId)
    {
        var trimmed = list.Trim();
        if (trimmed.Length == 0) return false;
        if (trimmed == "*") return true;
        foreach (var entry in trimmed.Split(','))
        {
            var parts = entry.Split(':');
            if (parts.Length == 2
                && int.TryParse(parts[0].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int p) && p == partition
                && int.TryParse(parts[1].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int b) && b == brokerId)
                return true;
        }
        return false;
    }

    /// <summary>Bytes/s over the sample windows.</summary>
    public double Rate
    {
        get
        {
            lock (_gate)
            {
                long now = _clock();
                Advance(now);
                long total = 0, oldest = now;
                for (int i = 0; i < _bytes.Length; i++)
                {
                    if (_start[i] == long.MinValue || now - _start[i] >= _windowMs * _bytes.Length) continue;   // expired
                    total += _bytes[i];
                    oldest = Math.Min(oldest, _start[i]);
                }
                long elapsed = now - oldest;
                long fullWindows = elapsed / _windowMs;
                long minFull = _bytes.Length - 1;
                if (fullWindows < minFull) elapsed += (minFull - fullWindows) * _windowMs;
                return total * 1000.0 / Math.Max(1, elapsed);
            }
        }
    }

    public bool IsQuotaExceeded
    {
        get
        {
            long bound = Bound;
            return bound != long.MaxValue && Rate > bound;
        }
    }

    /// <summary>Counts bytes replicated for throttled partitions.</summary>
    public void Record(long bytes)
    {
        if (bytes <= 0) return;
        lock (_gate)
        {
            Advance(_clock());
            _bytes[_current] += bytes;
        }
    }

    // Moves to a new window when the current one is over; windows older than all of them are reused.
    private void Advance(long now)
    {
        while (now - _start[_current] >= _windowMs)
        {
            long nextStart = _start[_current] + _windowMs;
            if (now - nextStart >= _windowMs * _bytes.Length) nextStart = now - (now - nextStart) % _windowMs;
            _current = (_current + 1) % _bytes.Length;
            _start[_current] = nextStart;
            _bytes[_current] = 0;
        }
    }
}
