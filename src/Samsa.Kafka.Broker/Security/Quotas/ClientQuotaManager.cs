using System.Collections.Concurrent;

namespace Samsa.Kafka.Broker.Security.Quotas;

/// <summary>The four client quota types (upstream ClientQuotaType / QuotaConfig keys).</summary>
public enum ClientQuotaType { Produce, Fetch, Request, ControllerMutation }

/// <summary>
/// One quota type's quotas and meters, as upstream's ClientQuotaManager with its default quota
/// callback (ZooKeeper mode):
/// <list type="bullet">
/// <item>Overrides are kept per entity (user, client id, user + client id, each possibly
/// <c>&lt;default&gt;</c>); the quota of a (user, client id) is found in upstream's order:
/// /config/users/&lt;user&gt;/clients/&lt;client-id&gt;, /config/users/&lt;user&gt;/clients/&lt;default&gt;,
/// /config/users/&lt;user&gt;, /config/users/&lt;default&gt;/clients/&lt;client-id&gt;,
/// /config/users/&lt;default&gt;/clients/&lt;default&gt;, /config/users/&lt;default&gt;,
/// /config/clients/&lt;client-id&gt;, /config/clients/&lt;default&gt;.</item>
/// <item>Clients sharing the entity that gives their quota share one meter (upstream's metric
/// tags: a user quota is metered per user over all its client ids; a client-id quota per client id
/// over all users).</item>
/// <item>Recording a value measures the rate (Rate over quota.window.num samples of
/// quota.window.size.seconds); above the quota the throttle time is
/// (observed − quota) / quota × window (QuotaUtils.throttleTime), bounded by one window for the
/// request quota (ClientRequestQuotaManager). The controller mutation quota is a token bucket.</item>
/// </list>
/// User names here are sanitized (<see cref="QuotaSanitizer"/>), client ids are not, as upstream.
/// </summary>
public sealed class ClientQuotaManager
{
    public const string Default = "<default>";

    private const int ClientIdEnabled = 1, UserEnabled = 2, UserClientIdEnabled = 4;
    private static readonly long InactiveSensorExpirationMs = 3_600_000;

    private readonly ConcurrentDictionary<(string? User, string? ClientId), double> _overrides = new();
    private readonly ConcurrentDictionary<(string User, string ClientId), Meter> _meters = new();
    private readonly Func<long> _clock;
    private int _typesEnabled;
    private long _records;

    public ClientQuotaManager(ClientQuotaType type, int samples, int windowSeconds, Func<long>? clock = null)
    {
        Type = type;
        Samples = Math.Max(1, samples);
        WindowMs = Math.Max(1, windowSeconds) * 1000L;
        _clock = clock ?? (() => Environment.TickCount64);
    }

    public ClientQuotaType Type { get; }
    public int Samples { get; }
    public long WindowMs { get; }
    public long NowMs => _clock();

    /// <summary>Whether any quota of this type was ever set (upstream records nothing until then).</summary>
    public bool Enabled => Volatile.Read(ref _typesEnabled) != 0;

    private sealed class Meter(int samples, long windowMs)
    {
        public readonly SampledRate Rate = new(samples, windowMs);
        public readonly TokenBucket Tokens = new(samples, windowMs);
        public long LastUsedMs;
    }

    /// <summary>Sets (quota non-null) or removes an override. <paramref name="sanitizedUser"/> and
    /// <paramref name="clientId"/> are null when the entity has no such part, "&lt;default&gt;" for
    /// the default entity.</summary>
    public void UpdateQuota(string? sanitizedUser, string? clientId, double? quota)
    {
        // Upstream never clears these flags once a level was used (quotaTypesEnabled).
        if (sanitizedUser is not null) Interlocked.Or(ref _typesEnabled, clientId is not null ? UserClientIdEnabled : UserEnabled);
        else if (clientId is not null) Interlocked.Or(ref _typesEnabled, ClientIdEnabled);
        if (quota is { } q) _overrides[(sanitizedUser, clientId)] = q;
        else _overrides.TryRemove((sanitizedUser, clientId), out _);
    }

    public IReadOnlyDictionary<(string? User, string? ClientId), double> Overrides => _overrides;

    /// <summary>Upstream DefaultQuotaCallback.quotaMetricTags: which (user, client-id) meter a
    /// client's traffic is counted in.</summary>
    public (string User, string ClientId) MetricTags(string sanitizedUser, string clientId)
    {
        switch (Volatile.Read(ref _typesEnabled))
        {
            case 0:
            case ClientIdEnabled: return ("", clientId);
            case UserEnabled: return (sanitizedUser, "");
            case UserClientIdEnabled: return (sanitizedUser, clientId);
        }
        bool Has(string? u, string? c) => _overrides.ContainsKey((u, c));
        if (Has(sanitizedUser, clientId) || Has(sanitizedUser, Default)) return (sanitizedUser, clientId);
        if (Has(sanitizedUser, null)) return (sanitizedUser, "");
        if (Has(Default, clientId) || Has(Default, Default)) return (sanitizedUser, clientId);
        if (Has(Default, null)) return (sanitizedUser, "");
        return ("", clientId);
    }

    /// <summary>Upstream DefaultQuotaCallback.quotaLimit for a meter's tags; null = unlimited.</summary>
    public double? QuotaLimit((string User, string ClientId) tags)
    {
        var (user, clientId) = tags;
        double q;
        if (user.Length > 0 && clientId.Length > 0)
        {
            if (_overrides.TryGetValue((user, clientId), out q) || _overrides.TryGetValue((user, Default), out q)
                || _overrides.TryGetValue((Default, clientId), out q) || _overrides.TryGetValue((Default, Default), out q)) return q;
        }
        else if (user.Length > 0)
        {
            if (_overrides.TryGetValue((user, null), out q) || _overrides.TryGetValue((Default, null), out q)) return q;
        }
        else if (clientId.Length > 0)
        {
            if (_overrides.TryGetValue((null, clientId), out q) || _overrides.TryGetValue((null, Default), out q)) return q;
        }
        return null;
    }

    /// <summary>The quota that applies to this principal and client id (null = unlimited).</summary>
    public double? QuotaFor(KafkaPrincipal principal, string? clientId) =>
        QuotaLimit(MetricTags(QuotaSanitizer.Sanitize(principal.Name), clientId ?? ""));

    private Meter MeterFor(KafkaPrincipal principal, string? clientId, out double? limit)
    {
        var tags = MetricTags(QuotaSanitizer.Sanitize(principal.Name), clientId ?? "");
        limit = QuotaLimit(tags);
        if (Interlocked.Increment(ref _records) % 4096 == 0) Purge();
        return _meters.GetOrAdd(tags, _ => new Meter(Samples, WindowMs));
    }

    // Upstream expires a client's sensors after an hour without traffic.
    private void Purge()
    {
        long now = _clock();
        foreach (var (k, m) in _meters)
            if (now - Volatile.Read(ref m.LastUsedMs) > InactiveSensorExpirationMs) _meters.TryRemove(k, out _);
    }

    /// <summary>Records <paramref name="value"/> (bytes, or request time as a percentage of a
    /// second) and answers the throttle time in ms, 0 when within the quota (upstream
    /// maybeRecordAndGetThrottleTimeMs; nothing is recorded while no quota of this type exists).</summary>
    public int RecordAndGetThrottleTimeMs(KafkaPrincipal principal, string? clientId, double value)
    {
        if (!Enabled) return 0;
        var meter = MeterFor(principal, clientId, out var limit);
        long now = _clock();
        lock (meter)
        {
            meter.LastUsedMs = now;
            if (Type == ClientQuotaType.ControllerMutation)
            {
                // Upstream ControllerMutationQuotaManager: check first, then record without checking.
                if (limit is { } bound && meter.Tokens.Measure(bound, now) < 0)
                    return TokenThrottle(meter.Tokens.Measure(bound, now), bound);
                meter.Rate.Record(value, now);
                if (limit is { } b2) meter.Tokens.Record(b2, value, now);
                return 0;
            }
            meter.Rate.Record(value, now);
            if (limit is not { } quota) return 0;
            double observed = meter.Rate.Measure(now);
            if (observed <= quota) return 0;
            return ThrottleTime(observed, quota, meter.Rate.WindowSize(now));
        }
    }

    private int ThrottleTime(double observed, double quota, long windowSizeMs)
    {
        // QuotaUtils.throttleTime: X = (O − T) / T × W; ClientRequestQuotaManager bounds it by one window.
        double ms = quota <= 0 ? double.MaxValue : (observed - quota) / quota * windowSizeMs;
        if (Type == ClientQuotaType.Request) ms = Math.Min(ms, WindowMs);
        return ms >= int.MaxValue ? int.MaxValue : (int)Math.Round(ms, MidpointRounding.AwayFromZero);
    }

    private static int TokenThrottle(double tokens, double quota) =>
        quota <= 0 ? int.MaxValue : (int)Math.Min(int.MaxValue, Math.Round(-tokens / quota * 1000, MidpointRounding.AwayFromZero));

    /// <summary>Controller mutations, strict mode (KIP-599, CreateTopics v6+, CreatePartitions v3+,
    /// DeleteTopics v5+): the throttle time when the bucket is already below zero (the mutation is
    /// refused with THROTTLING_QUOTA_EXCEEDED), else 0 and the permits are taken.</summary>
    public int TryAcquireStrict(KafkaPrincipal principal, string? clientId, double permits) =>
        RecordAndGetThrottleTimeMs(principal, clientId, permits);

    /// <summary>Controller mutations, permissive mode (older versions): record, and answer the
    /// throttle time once the bucket went below zero.</summary>
    public int RecordPermissive(KafkaPrincipal principal, string? clientId, double permits)
    {
        if (!Enabled) return 0;
        var meter = MeterFor(principal, clientId, out var limit);
        long now = _clock();
        lock (meter)
        {
            meter.LastUsedMs = now;
            meter.Rate.Record(permits, now);
            if (limit is not { } bound) return 0;
            meter.Tokens.Record(bound, permits, now);
            double tokens = meter.Tokens.Measure(bound, now);
            return tokens < 0 ? TokenThrottle(tokens, bound) : 0;
        }
    }

    /// <summary>Upstream unrecordQuotaSensor: a throttled Fetch sends no records, so its bytes are
    /// taken back out of the meter.</summary>
    public void Unrecord(KafkaPrincipal principal, string? clientId, double value)
    {
        if (!Enabled) return;
        var meter = MeterFor(principal, clientId, out _);
        long now = _clock();
        lock (meter) meter.Rate.Record(-value, now);
    }

    /// <summary>Upstream getMaxValueInQuotaWindow: the most that can be recorded at once without a
    /// certain throttle (quota × (samples − 1) × window); Fetch caps max_bytes to it.</summary>
    public double MaxValueInQuotaWindow(KafkaPrincipal principal, string? clientId)
    {
        if (!Enabled) return double.MaxValue;
        return QuotaFor(principal, clientId) is { } q ? q * (Samples - 1) * (WindowMs / 1000.0) : double.MaxValue;
    }

    /// <summary>The measured rate of the meter this client is counted in (tests, metrics).</summary>
    public double MeasuredRate(KafkaPrincipal principal, string? clientId)
    {
        var meter = MeterFor(principal, clientId, out _);
        lock (meter) return meter.Rate.Measure(_clock());
    }
}
