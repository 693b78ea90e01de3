using System.Collections.Concurrent;
using System.Net;
using System.Runtime.CompilerServices;
using System.Text;
using Samsa.Kafka.Broker.Cluster;
using Samsa.Kafka.Broker.Handlers;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Compression;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Primitives;

namespace Samsa.Kafka.Broker.Telemetry;

/// <summary>What one client instance pushed last (<see cref="ClientTelemetry.Latest"/>).</summary>
/// <param name="MetricNames">The OTLP metric names in the payload, in order.</param>
/// <param name="Values">The last numeric data point of each gauge or sum metric.</param>
public sealed record PushedTelemetry(
    Guid ClientInstanceId, string? ClientId, string? SoftwareName, string? SoftwareVersion, string? SourceAddress,
    DateTimeOffset ReceivedAt, CompressionType Compression, int PayloadBytes, int DecodedBytes,
    IReadOnlyList<string> MetricNames, IReadOnlyDictionary<string, double> Values, int DataPoints,
    bool Terminating, long PushCount);

/// <summary>
/// The broker side of KIP-714 client telemetry, as upstream's ClientMetricsManager: the
/// subscriptions (<see cref="ClientMetricsConfigs"/>), one cached state per client instance
/// (subscription id, requested metrics, push interval, last get/push times, terminating flag,
/// dropped after max(60 s, 3 × push interval) without requests), the GetTelemetrySubscriptions and
/// PushTelemetry decisions, and, in place of upstream's ClientTelemetryReceiver plugin, an
/// in-memory view of the latest push of each client instance (<see cref="Latest"/>), with one log
/// line per client instance's first push and its terminating push.
/// </summary>
public sealed class ClientTelemetry
{
    /// <summary>Codecs offered to clients, in upstream's order of preference.</summary>
    public static readonly IReadOnlyList<sbyte> AcceptedCompressionTypes =
        [(sbyte)CompressionType.Zstd, (sbyte)CompressionType.Lz4, (sbyte)CompressionType.Gzip, (sbyte)CompressionType.Snappy];

    /// <summary>Upstream telemetry.max.bytes default (1 MiB): the largest Metrics payload accepted.</summary>
    public const int DefaultTelemetryMaxBytes = 1024 * 1024;
    /// <summary>Upstream's client instance cache expiry floor.</summary>
    private const int CacheExpiryMs = 60_000;
    private const int CacheMaxSize = 16_384;
    /// <summary>A decompressed payload larger than this is refused (INVALID_RECORD) rather than allocated.</summary>
    private const int MaxDecodedBytes = 32 * 1024 * 1024;

    private readonly KafkaBroker _broker;
    private readonly object _gate = new();
    private readonly Dictionary<string, ClientMetricsConfigs.Subscription> _subscriptions = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Dictionary<string, string>> _stored = new(StringComparer.Ordinal);
    private readonly Dictionary<Guid, Instance> _instances = new();
    private readonly ConcurrentDictionary<Guid, PushedTelemetry> _latest = new();
    private int _subscriptionVersion;

    private static readonly ConditionalWeakTable<Security.ConnectionSession, ClientSoftware> Software = new();
    private sealed record ClientSoftware(string Name, string Version);

    public ClientTelemetry(KafkaBroker broker, Func<long>? clock = null)
    {
        _broker = broker;
        Clock = clock ?? (() => Environment.TickCount64);
    }

    /// <summary>Milliseconds of a monotonic clock (tests replace it to step over push intervals).</summary>
    public Func<long> Clock { get; set; }

    /// <summary>Creates the broker's telemetry state: registers the client-metrics entity handler
    /// (ZooKeeper mode) or loads the subscriptions from the file store (single broker).</summary>
    public static ClientTelemetry Create(KafkaBroker broker)
    {
        var telemetry = new ClientTelemetry(broker);
        broker.ConfigEntityHandlers.Add(new ClientMetricsConfigs.EntityHandler(telemetry));
        if (broker.Config.ZookeeperConnect is not { Length: > 0 } && broker.Quotas.Store is { } store)
            telemetry.ReplaceSubscriptions(store.ReadAllAsync(ClientMetricsConfigs.EntityType).GetAwaiter().GetResult());
        return telemetry;
    }

    /// <summary>The most a PushTelemetry payload may hold (TELEMETRY_TOO_LARGE above it).</summary>
    public int TelemetryMaxBytes { get; set; } = DefaultTelemetryMaxBytes;

    /// <summary>ApiVersions v3+: the client software name and version of the connection (KIP-511),
    /// matched by client_software_name / client_software_version.</summary>
    public static void RememberClientSoftware(RequestContext context, string? name, string? version)
    {
        if (context.ApiVersion >= 3 && !string.IsNullOrEmpty(name))
            Software.AddOrUpdate(context.Session, new ClientSoftware(name, version ?? ""));
    }

    // ---- Subscriptions ----

    /// <summary>The names of the stored subscriptions (ListConfigResources).</summary>
    public IReadOnlyList<string> SubscriptionNames()
    {
        lock (_gate) return _stored.Keys.Order(StringComparer.Ordinal).ToList();
    }

    public IReadOnlyDictionary<string, string> StoredConfig(string name)
    {
        lock (_gate) return _stored.TryGetValue(name, out var c) ? new Dictionary<string, string>(c, StringComparer.Ordinal) : new Dictionary<string, string>();
    }

    /// <summary>Writes a subscription to the store (ZooKeeper, with a change notification, or the
    /// file) and applies it here at once; other brokers apply it on the notification.</summary>
    public async Task StoreSubscriptionAsync(string name, IReadOnlyDictionary<string, string> config)
    {
        var store = _broker.Quotas.Store ?? throw new InvalidOperationException("no config store");
        string path = $"{ClientMetricsConfigs.EntityType}/{name}";
        await store.WriteAsync(path, config);
        ApplySubscription(path, config);
    }

    internal void ReplaceSubscriptions(IReadOnlyDictionary<string, Dictionary<string, string>> entities)
    {
        lock (_gate)
        {
            _stored.Clear();
            _subscriptions.Clear();
            foreach (var (path, config) in entities) ApplyLocked(path, config);
            _subscriptionVersion++;
        }
    }

    internal void ApplySubscription(string entityPath, IReadOnlyDictionary<string, string> config)
    {
        lock (_gate)
        {
            ApplyLocked(entityPath, config);
            _subscriptionVersion++;
        }
    }

    private void ApplyLocked(string entityPath, IReadOnlyDictionary<string, string> config)
    {
        var parts = entityPath.Split('/', 2);
        if (parts.Length != 2 || parts[0] != ClientMetricsConfigs.EntityType || parts[1].Length == 0) return;
        string name = parts[1];
        if (config.Count == 0)
        {
            _stored.Remove(name);
            _subscriptions.Remove(name);
            return;
        }
        _stored[name] = new Dictionary<string, string>(config, StringComparer.Ordinal);
        _subscriptions[name] = ClientMetricsConfigs.Parse(name, config);
    }

    // ---- Client instances ----

    private sealed class Instance
    {
        public required Guid Id { get; init; }
        public required Dictionary<string, string?> Attributes { get; init; }
        public required int SubscriptionId { get; init; }
        public required int SubscriptionVersion { get; init; }
        public required List<string> Metrics { get; init; }
        public required int PushIntervalMs { get; init; }
        public long LastGetMs { get; set; } = long.MinValue / 2;
        public long LastPushMs { get; set; } = long.MinValue / 2;
        public long LastSeenMs { get; set; }
        public bool Terminating { get; set; }
        public ErrorCode LastError { get; set; }
    }

    private static Dictionary<string, string?> AttributesOf(Guid id, RequestContext context)
    {
        Software.TryGetValue(context.Session, out var software);
        var remote = context.Connection?.RemoteEndPoint as IPEndPoint;
        return new Dictionary<string, string?>(StringComparer.Ordinal)
        {
            ["client_instance_id"] = KafkaUuid.ToBase64(id),
            ["client_id"] = context.Header.ClientId,
            ["client_software_name"] = software?.Name,
            ["client_software_version"] = software?.Version,
            ["client_source_address"] = (remote?.Address ?? context.Session.ClientAddress).ToString(),
            ["client_source_port"] = remote?.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
    }

    // Upstream createClientInstance: the union of the matching subscriptions' metrics ("*" alone
    // when one asks for all), the smallest of their intervals (the default when none matches).
    private Instance NewInstanceLocked(Guid id, Dictionary<string, string?> attributes)
    {
        int interval = ClientMetricsConfigs.DefaultIntervalMs;
        var metrics = new SortedSet<string>(StringComparer.Ordinal);
        bool all = false;
        foreach (var s in _subscriptions.Values)
        {
            bool matches = s.Match.All(m => attributes.GetValueOrDefault(m.Key) is { } value && Matches(m.Value, value));
            if (!matches) continue;
            all |= s.Metrics.Contains(ClientMetricsConfigs.AllMetrics);
            metrics.UnionWith(s.Metrics);
            interval = Math.Min(interval, s.IntervalMs);
        }
        var list = all ? [ClientMetricsConfigs.AllMetrics] : metrics.ToList();
        return new Instance
        {
            Id = id,
            Attributes = attributes,
            SubscriptionId = SubscriptionIdOf(list, interval, id),
            SubscriptionVersion = _subscriptionVersion,
            Metrics = list,
            PushIntervalMs = interval,
        };
    }

    // A pattern that runs past its time limit (a pathological user regex) matches nothing.
    private static bool Matches(System.Text.RegularExpressions.Regex pattern, string value)
    {
        try { return pattern.IsMatch(value); }
        catch (System.Text.RegularExpressions.RegexMatchTimeoutException) { return false; }
    }

    // Upstream computeSubscriptionId: a CRC32C of the metrics and interval mixed with the instance
    // id, so every broker computes the same id for the same subscription set.
    private static int SubscriptionIdOf(List<string> metrics, int interval, Guid id)
    {
        var bytes = Encoding.UTF8.GetBytes("[" + string.Join(", ", metrics) + "]" + interval.ToString(System.Globalization.CultureInfo.InvariantCulture));
        uint crc = Samsa.Kafka.Protocol.Records.Crc32C.Compute(bytes);
        Span<byte> raw = stackalloc byte[16];
        id.TryWriteBytes(raw, bigEndian: true, out _);
        long hi = System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(raw);
        long lo = System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(raw[8..]);
        long x = hi ^ lo;
        return (int)crc ^ (int)(x >> 32) ^ (int)x;
    }

    private Instance InstanceLocked(Guid id, RequestContext context, long now)
    {
        ExpireLocked(now);
        if (!_instances.TryGetValue(id, out var instance))
            _instances[id] = instance = NewInstanceLocked(id, AttributesOf(id, context));
        else if (instance.SubscriptionVersion < _subscriptionVersion)
            _instances[id] = instance = NewInstanceLocked(id, instance.Attributes);   // subscriptions changed: re-evaluate
        instance.LastSeenMs = now;
        return instance;
    }

    private void ExpireLocked(long now)
    {
        List<Guid>? gone = null;
        foreach (var (id, i) in _instances)
            if (now - i.LastSeenMs > Math.Max(CacheExpiryMs, 3L * i.PushIntervalMs)) (gone ??= []).Add(id);
        if (gone is not null) foreach (var id in gone) _instances.Remove(id);
        if (_instances.Count >= CacheMaxSize)
            foreach (var id in _instances.OrderBy(kv => kv.Value.LastSeenMs).Take(_instances.Count - CacheMaxSize + 1).Select(kv => kv.Key).ToList())
                _instances.Remove(id);
    }

    /// <summary>GetTelemetrySubscriptions (upstream processGetTelemetrySubscriptionRequest).</summary>
    public GetTelemetrySubscriptionsResponse GetSubscriptions(RequestContext context, GetTelemetrySubscriptionsRequest request)
    {
        long now = Clock();
        lock (_gate)
        {
            var id = request.ClientInstanceId;
            if (id == Guid.Empty)
                do id = KafkaUuid.NewTopicId(); while (_instances.ContainsKey(id));
            var instance = InstanceLocked(id, context, now);
            // A second request within the push interval is throttled, unless the last push failed
            // for a reason the client must fix by fetching the subscription again.
            if (now - Math.Max(instance.LastGetMs, instance.LastPushMs) < instance.PushIntervalMs
                && instance.LastError is not (ErrorCode.UnknownSubscriptionId or ErrorCode.UnsupportedCompressionType))
                return new GetTelemetrySubscriptionsResponse { ErrorCode = (short)ErrorCode.ThrottlingQuotaExceeded };
            instance.LastGetMs = now;
            instance.LastError = ErrorCode.None;
            return new GetTelemetrySubscriptionsResponse
            {
                ClientInstanceId = id,
                SubscriptionId = instance.SubscriptionId,
                AcceptedCompressionTypes = AcceptedCompressionTypes.ToList(),
                PushIntervalMs = instance.PushIntervalMs,
                TelemetryMaxBytes = TelemetryMaxBytes,
                DeltaTemporality = true,
                RequestedMetrics = instance.Metrics.ToList(),
            };
        }
    }

    /// <summary>PushTelemetry (upstream processPushTelemetryRequest and validatePushRequest).</summary>
    public PushTelemetryResponse Push(RequestContext context, PushTelemetryRequest request)
    {
        if (request.ClientInstanceId == Guid.Empty)
            return Error(ErrorCode.InvalidRequest);
        long now = Clock();
        Instance instance;
        ErrorCode error = ErrorCode.None;
        lock (_gate)
        {
            instance = InstanceLocked(request.ClientInstanceId, context, now);
            if (instance.Terminating)
                error = ErrorCode.InvalidRequest;   // nothing is accepted after a terminating push
            else
            {
                // The first push after a get is accepted whenever it comes (clients add jitter);
                // later ones must be a push interval apart, except the terminating one.
                bool onTime = instance.LastGetMs > instance.LastPushMs || now - instance.LastPushMs >= instance.PushIntervalMs;
                if (onTime) instance.LastPushMs = now;
                if (!onTime && !request.Terminating) error = ErrorCode.ThrottlingQuotaExceeded;
                else if (request.SubscriptionId != instance.SubscriptionId) error = ErrorCode.UnknownSubscriptionId;
                else if (!CompressionCodecs.IsKnown(request.CompressionType)) error = ErrorCode.UnsupportedCompressionType;
                else if (request.Metrics.Length > TelemetryMaxBytes) error = ErrorCode.TelemetryTooLarge;
            }
            instance.Terminating = request.Terminating;
            if (error != ErrorCode.None)
            {
                instance.LastError = error;
                return Error(error);
            }
        }
        if (request.Metrics.Length > 0)
        {
            OtlpSummary summary;
            int decodedBytes;
            try
            {
                using var decoded = CompressionCodecs.Decompress((CompressionType)request.CompressionType, request.Metrics, MaxDecodedBytes);
                decodedBytes = decoded.Length;
                summary = OtlpMetrics.Summarize(decoded.WrittenSpan);
            }
            catch (Exception e) when (e is KafkaProtocolException or FormatException or InvalidDataException)
            {
                // Upstream answers INVALID_RECORD when its receiver cannot take the payload.
                _broker.Log($"telemetry push from client instance {KafkaUuid.ToBase64(request.ClientInstanceId)} not decodable: {e.Message}");
                lock (_gate) instance.LastError = ErrorCode.InvalidRecord;
                return Error(ErrorCode.InvalidRecord);
            }
            Record(instance, request, decodedBytes, summary);
        }
        lock (_gate) instance.LastError = ErrorCode.None;
        return new PushTelemetryResponse();
    }

    private static PushTelemetryResponse Error(ErrorCode code) => new() { ErrorCode = (short)code };

    private void Record(Instance instance, PushTelemetryRequest request, int decodedBytes, OtlpSummary summary)
    {
        var a = instance.Attributes;
        long count = 1;
        bool first = true;
        var pushed = _latest.AddOrUpdate(instance.Id,
            _ => Make(1),
            (_, previous) => { first = false; count = previous.PushCount + 1; return Make(count); });
        if (first || request.Terminating)
            _broker.Log($"telemetry from client instance {KafkaUuid.ToBase64(instance.Id)} (client id {a["client_id"]}, " +
                $"{a["client_software_name"] ?? "?"} {a["client_software_version"] ?? "?"}, {a["client_source_address"]}): " +
                $"{pushed.MetricNames.Count} metrics, {pushed.DataPoints} data points, {request.Metrics.Length} bytes " +
                $"({(CompressionType)request.CompressionType}){(request.Terminating ? ", terminating" : "")}");

        PushedTelemetry Make(long n) => new(instance.Id, a["client_id"], a["client_software_name"], a["client_software_version"],
            a["client_source_address"], DateTimeOffset.UtcNow, (CompressionType)request.CompressionType, request.Metrics.Length,
            decodedBytes, summary.MetricNames, summary.Values, summary.DataPoints, request.Terminating, n);
    }

    /// <summary>The client instances this broker currently keeps state for (each asked for its
    /// subscription or pushed), with their client id and requested metrics.</summary>
    public IReadOnlyList<(Guid Id, string? ClientId, IReadOnlyList<string> RequestedMetrics)> Instances()
    {
        lock (_gate) return _instances.Values.Select(i => (i.Id, i.Attributes["client_id"], (IReadOnlyList<string>)i.Metrics.ToList())).ToList();
    }

    /// <summary>The latest push of every client instance that pushed to this broker.</summary>
    public IReadOnlyDictionary<Guid, PushedTelemetry> Latest => _latest;

    /// <summary>The latest push of one client instance, or null.</summary>
    public PushedTelemetry? LatestFor(Guid clientInstanceId) => _latest.GetValueOrDefault(clientInstanceId);
}
