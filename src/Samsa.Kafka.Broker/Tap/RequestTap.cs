using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Samsa.Kafka.Broker.Security;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Net;

namespace Samsa.Kafka.Broker.Tap;

/// <summary>
/// The live request tap (issue #20's "protocol tap"; Samsa's own, upstream has nothing like it):
/// with <c>samsa.tap.enabled</c>, the last <c>samsa.tap.entries.per.connection</c> requests and
/// responses of each connection, rendered as JSON by the generated codecs (<see cref="TapJson"/>),
/// for GET /tap on the metrics listener (<see cref="TapHttp"/>) and <c>samsa tap</c>.
/// At most <c>samsa.tap.connections</c> connections are kept: closed ones stay for
/// <see cref="ClosedRetention"/>, and a new connection evicts the oldest closed one, else the one
/// idle longest. When the tap is off the broker holds no instance, and the request path pays one
/// null check.
/// </summary>
public sealed class RequestTap
{
    public static readonly TimeSpan ClosedRetention = TimeSpan.FromMinutes(10);

    private readonly int _entriesPerConnection;
    private readonly int _maxConnections;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, TapConnection> _connections = new(StringComparer.Ordinal);
    private readonly ConditionalWeakTable<Connection, TapConnection> _byConnection = new();

    public RequestTap(int brokerId, int entriesPerConnection, int maxConnections, TimeProvider? time = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(entriesPerConnection, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxConnections, 1);
        BrokerId = brokerId;
        _entriesPerConnection = entriesPerConnection;
        _maxConnections = maxConnections;
        _time = time ?? TimeProvider.System;
    }

    public int BrokerId { get; }
    public int EntriesPerConnection => _entriesPerConnection;

    /// <summary>From the broker's config; null when <c>samsa.tap.enabled</c> is false.</summary>
    internal static RequestTap? FromConfig(Config.BrokerConfig config) =>
        (bool)config.Get("samsa.tap.enabled")!
            ? new RequestTap(config.BrokerId, (int)config.Get("samsa.tap.entries.per.connection")!, (int)config.Get("samsa.tap.connections")!)
            : null;

    /// <summary>
    /// A parsed request arrived (<paramref name="received"/>: its Stopwatch timestamp): renders it
    /// now, while the frame it may point into is valid. Complete the capture with
    /// <see cref="Capture.Done"/> once the response was sent (or none is due).
    /// </summary>
    internal Capture Begin(Connection connection, ConnectionSession session, RequestHeader header, IKafkaMessage? request, long received)
    {
        long renderStart = Stopwatch.GetTimestamp();
        var tc = ConnectionOf(connection, session);
        lock (_gate)
        {
            if (header.ClientId is { } clientId) tc.ClientId = clientId;
            if (request is ApiVersionsRequest { ClientSoftwareName: { Length: > 0 } software } versions)
                tc.Software = $"{software}/{versions.ClientSoftwareVersion}";
        }
        byte[] json = TapJson.Render(request, header.RequestApiVersion);
        // The tap's own rendering is not the broker's latency.
        long shifted = received + (Stopwatch.GetTimestamp() - renderStart);
        return new Capture(this, tc, session, _time.GetUtcNow(), header, json, shifted);
    }

    /// <summary>The connection closed: kept for <see cref="ClosedRetention"/> (or until evicted).</summary>
    internal void Closed(Connection connection)
    {
        if (!_byConnection.TryGetValue(connection, out var tc)) return;
        lock (_gate) tc.ClosedAt ??= _time.GetUtcNow();
    }

    private TapConnection ConnectionOf(Connection connection, ConnectionSession session)
    {
        if (_byConnection.TryGetValue(connection, out var known)) return known;
        string remote = connection.RemoteEndPoint?.ToString() ?? "?";
        var tc = new TapConnection($"{session.ListenerName}-{connection.Id.ToString(CultureInfo.InvariantCulture)}", remote, _entriesPerConnection);
        _byConnection.AddOrUpdate(connection, tc);
        return tc;
    }

    /// <summary>Lists <paramref name="tc"/> (again, if it was evicted while idle), within the cap.</summary>
    private void Keep(TapConnection tc)
    {
        if (_connections.ContainsKey(tc.Id)) return;
        Prune();
        while (_connections.Count >= _maxConnections) Evict();
        _connections[tc.Id] = tc;
    }

    private void Prune()
    {
        var cutoff = _time.GetUtcNow() - ClosedRetention;
        List<string>? gone = null;
        foreach (var (id, c) in _connections)
            if (c.ClosedAt is { } closed && closed < cutoff) (gone ??= []).Add(id);
        if (gone is not null) foreach (var id in gone) _connections.Remove(id);
    }

    private void Evict()
    {
        TapConnection? victim = null;
        foreach (var c in _connections.Values)
        {
            if (victim is null) { victim = c; continue; }
            // closed before open; among closed the earliest closed, among open the longest idle
            bool better = (c.ClosedAt, victim.ClosedAt) switch
            {
                ({ } a, { } b) => a < b,
                ({ }, null) => true,
                (null, { }) => false,
                _ => c.LastActivity < victim.LastActivity,
            };
            if (better) victim = c;
        }
        if (victim is not null) _connections.Remove(victim.Id);
    }

    private void Add(TapConnection tc, ConnectionSession session, TapEntry entry)
    {
        lock (_gate)
        {
            Keep(tc);
            tc.Principal = session.Principal.ToString();
            tc.LastActivity = entry.Timestamp;
            tc.Entries[tc.Next] = entry;
            tc.Next = (tc.Next + 1) % tc.Entries.Length;
            if (tc.Count < tc.Entries.Length) tc.Count++;
        }
    }

    /// <summary>What GET /tap answers: the kept connections (most recently active first) with
    /// their last <paramref name="limit"/> entries, oldest first, optionally of one connection
    /// and/or one API. With a filter, connections without a matching entry are left out.</summary>
    public byte[] Snapshot(int limit, string? connectionId = null, ApiKey? api = null)
    {
        List<(TapConnection C, string? ClientId, string? Software, string Principal, TapEntry[] Entries)> view = [];
        lock (_gate)
        {
            Prune();
            foreach (var c in _connections.Values.OrderByDescending(c => c.LastActivity))
            {
                if (connectionId is not null && c.Id != connectionId) continue;
                var entries = new List<TapEntry>(c.Count);
                for (int i = 0; i < c.Count; i++)
                {
                    var e = c.Entries[(c.Next - c.Count + i + c.Entries.Length) % c.Entries.Length]!;
                    if (api is null || e.ApiKey == (short)api.Value) entries.Add(e);
                }
                if (api is not null && entries.Count == 0) continue;
                view.Add((c, c.ClientId, c.Software, c.Principal, [.. entries.Skip(Math.Max(0, entries.Count - limit))]));
            }
        }
        using var ms = new MemoryStream();
        using (var j = new Utf8JsonWriter(ms))
        {
            j.WriteStartObject();
            j.WriteNumber("broker", BrokerId);
            j.WriteStartArray("connections");
            foreach (var (c, clientId, software, principal, entries) in view)
            {
                j.WriteStartObject();
                j.WriteString("id", c.Id);
                j.WriteString("clientId", clientId);
                j.WriteString("software", software);
                j.WriteString("remote", c.Remote);
                j.WriteString("principal", principal);
                j.WriteStartArray("entries");
                foreach (var e in entries)
                {
                    j.WriteStartObject();
                    j.WriteString("ts", e.Timestamp.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
                    j.WriteString("api", ((ApiKey)e.ApiKey).ToString());
                    j.WriteNumber("apiKey", e.ApiKey);
                    j.WriteNumber("version", e.Version);
                    j.WriteNumber("correlationId", e.CorrelationId);
                    j.WriteNumber("latencyMs", Math.Round(e.LatencyMs, 3));
                    j.WritePropertyName("request");
                    j.WriteRawValue(e.Request, skipInputValidation: true);
                    j.WritePropertyName("response");
                    j.WriteRawValue(e.Response, skipInputValidation: true);
                    j.WriteEndObject();
                }
                j.WriteEndArray();
                j.WriteEndObject();
            }
            j.WriteEndArray();
            j.WriteEndObject();
        }
        return ms.ToArray();
    }

    /// <summary>A request in flight on the tap: rendered, waiting for its response.</summary>
    internal sealed class Capture(RequestTap tap, TapConnection connection, ConnectionSession session, DateTimeOffset at, RequestHeader header, byte[] request, long received)
    {
        /// <summary>The response was sent (null: none is due, e.g. Produce with acks=0).</summary>
        public void Done(IKafkaMessage? response, short responseVersion)
        {
            double latencyMs = Stopwatch.GetElapsedTime(received).TotalMilliseconds;
            byte[] json = TapJson.Render(response, responseVersion);
            tap.Add(connection, session, new TapEntry(at, header.RequestApiKey, header.RequestApiVersion, header.CorrelationId, latencyMs, request, json));
        }
    }

    internal sealed class TapConnection(string id, string remote, int capacity)
    {
        public string Id { get; } = id;
        public string Remote { get; } = remote;
        public string? ClientId;
        public string? Software;
        public string Principal = KafkaPrincipal.Anonymous.ToString();
        public DateTimeOffset LastActivity;
        public DateTimeOffset? ClosedAt;
        public readonly TapEntry?[] Entries = new TapEntry?[capacity];
        public int Next, Count;
    }

    internal sealed record TapEntry(DateTimeOffset Timestamp, short ApiKey, short Version, int CorrelationId, double LatencyMs, byte[] Request, byte[] Response);
}
