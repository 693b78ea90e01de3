using System.Globalization;
using System.Net;
using Samsa.Kafka.Broker.Config;

namespace Samsa.Kafka.Broker.Security.Quotas;

/// <summary>
/// Connection limits as upstream's ConnectionQuotas (SocketServer): <c>max.connections</c> (the
/// broker-wide count: a new connection waits unserved until one closes, as upstream's acceptor
/// blocks), <c>max.connections.per.ip</c> and <c>max.connections.per.ip.overrides</c> (a connection
/// over the limit is closed at once with one log line), and the per-IP connection creation rate
/// quota <c>connection_creation_rate</c> (/config/ips/&lt;ip&gt; and /config/ips/&lt;default&gt;): a
/// connection over the rate is not counted and is closed after the throttle time (upstream's
/// ConnectionThrottledException → DelayedCloseSocket), the throttle bounded by one quota window.
/// </summary>
public sealed class ConnectionQuotas(BrokerConfig config, Func<long>? clock = null)
{
    public const int Unlimited = int.MaxValue;
    private readonly Func<long> _clock = clock ?? (() => Environment.TickCount64);
    private readonly Dictionary<IPAddress, int> _counts = [];
    private readonly Dictionary<IPAddress, int> _ratePerIp = [];
    private readonly Dictionary<IPAddress, SampledRate> _rateMeters = [];
    private int _defaultRatePerIp = Unlimited;
    private int _total;
    private TaskCompletionSource _slotFreed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private int Samples => (int)(config.Get("quota.window.num") ?? 11);
    private long WindowMs => (int)(config.Get("quota.window.size.seconds") ?? 1) * 1000L;

    public enum Outcome { Accepted, TooManyConnections, Throttled }

    /// <summary>Sets (rate non-null) or removes the connection rate of one IP, or of the default
    /// (<paramref name="ip"/> null).</summary>
    public void UpdateIpConnectionRate(IPAddress? ip, int? rate)
    {
        lock (_counts)
        {
            if (ip is null) _defaultRatePerIp = rate ?? Unlimited;
            else if (rate is { } r) _ratePerIp[ip] = r;
            else _ratePerIp.Remove(ip);
        }
    }

    public int ConnectionRateFor(IPAddress ip)
    {
        lock (_counts) return _ratePerIp.TryGetValue(Normalize(ip), out int r) ? r : _defaultRatePerIp;
    }

    private static IPAddress Normalize(IPAddress ip) => ip.IsIPv4MappedToIPv6 ? ip.MapToIPv4() : ip;

    /// <summary>Waits for a slot under max.connections, then applies the per-IP rate and count.
    /// <paramref name="throttleMs"/> is the delay before closing a throttled connection.</summary>
    public async Task<(Outcome Outcome, int ThrottleMs, int Max)> AcceptAsync(IPAddress address, CancellationToken ct)
    {
        var ip = Normalize(address);
        while (true)
        {
            Task wait;
            lock (_counts)
            {
                int maxTotal = (int)(config.Get("max.connections") ?? Unlimited);
                if (_total < maxTotal) break;
                wait = _slotFreed.Task;
            }
            await wait.WaitAsync(ct);
        }
        lock (_counts)
        {
            int rate = _ratePerIp.TryGetValue(ip, out int r) ? r : _defaultRatePerIp;
            if (rate != Unlimited)
            {
                if (!_rateMeters.TryGetValue(ip, out var meter)) _rateMeters[ip] = meter = new SampledRate(Samples, WindowMs);
                long now = _clock();
                meter.Record(1, now);
                double observed = meter.Measure(now);
                if (observed > rate)
                {
                    // Not accepted, so not counted (upstream records −1 back).
                    double ms = rate <= 0 ? WindowMs : (observed - rate) / rate * meter.WindowSize(now);
                    meter.Record(-1, now);
                    return (Outcome.Throttled, (int)Math.Min(WindowMs, Math.Round(ms, MidpointRounding.AwayFromZero)), rate);
                }
            }
            int count = _counts.GetValueOrDefault(ip);
            _counts[ip] = count + 1;
            _total++;
            int max = MaxConnectionsFor(ip);
            if (count >= max)
            {
                Release(ip);
                return (Outcome.TooManyConnections, 0, max);
            }
            return (Outcome.Accepted, 0, max);
        }
    }

    private int MaxConnectionsFor(IPAddress ip)
    {
        if (config.GetString("max.connections.per.ip.overrides") is { Length: > 0 } overrides)
            foreach (var entry in overrides.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                int colon = entry.LastIndexOf(':');
                if (colon <= 0 || !int.TryParse(entry.AsSpan(colon + 1), NumberStyles.Integer, CultureInfo.InvariantCulture, out int n)) continue;
                string host = entry[..colon];
                if (IPAddress.TryParse(host, out var hostIp) ? Normalize(hostIp).Equals(ip) : HostMatches(host, ip)) return n;
            }
        return (int)(config.Get("max.connections.per.ip") ?? Unlimited);
    }

    private static bool HostMatches(string host, IPAddress ip)
    {
        try { return Dns.GetHostAddresses(host).Any(a => Normalize(a).Equals(ip)); }
        catch (System.Net.Sockets.SocketException) { return false; }
    }

    /// <summary>A counted connection closed.</summary>
    public void Release(IPAddress address)
    {
        var ip = Normalize(address);
        TaskCompletionSource freed;
        lock (_counts)
        {
            if (!_counts.TryGetValue(ip, out int c)) return;
            if (c <= 1) _counts.Remove(ip); else _counts[ip] = c - 1;
            _total--;
            freed = _slotFreed;
            _slotFreed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        freed.TrySetResult();
    }

    public int CountFor(IPAddress ip) { lock (_counts) return _counts.GetValueOrDefault(Normalize(ip)); }
}
