using System.Globalization;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Broker.Security;
using Samsa.Kafka.Broker.Security.Sasl;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Net;

namespace Samsa.Host.Admin;

/// <summary>A failure the tool reports as upstream's admin client would (the broker's message, else the error's).</summary>
internal sealed class AdminException(string message, ErrorCode code = ErrorCode.UnknownServerError) : Exception(message)
{
    public ErrorCode Code { get; } = code;

    public static AdminException From(short code, string? message) =>
        new(string.IsNullOrEmpty(message) ? ErrorCodes.DefaultMessage(ErrorCodes.FromWire(code)) : message, ErrorCodes.FromWire(code));
}

/// <summary>
/// The admin side of Samsa's wire client for the kafka-*.sh commands: bootstrap, one connection per
/// broker (authenticated as --command-config says), API versions negotiated per connection so the
/// same command speaks to Samsa and to upstream Kafka, and routing as upstream's admin client
/// routes (controller for topic creation and deletion, the group coordinator for group requests,
/// partition leaders for ListOffsets, any broker otherwise).
/// </summary>
internal sealed class AdminClient : IAsyncDisposable
{
    public sealed record Node(int Id, string Host, int Port);

    internal sealed class Conn(KafkaWireClient client, ApiVersionsResponse versions)
    {
        public KafkaWireClient Client { get; } = client;
        private readonly Dictionary<short, (short Min, short Max)> _versions =
            versions.ApiKeys.ToDictionary(k => k.ApiKey, k => (k.MinVersion, k.MaxVersion));

        /// <summary>The highest version both sides speak, capped at what this tool fills in.</summary>
        public short Version(ApiKey key, short cap)
        {
            if (!_versions.TryGetValue((short)key, out var range))
                throw new AdminException($"The broker does not support {key}", ErrorCode.UnsupportedVersion);
            short v = Math.Min(cap, range.Max);
            if (v < range.Min) throw new AdminException($"The broker does not support {key} at a version this tool speaks ({range.Min}-{range.Max})", ErrorCode.UnsupportedVersion);
            return v;
        }
    }

    private readonly List<(string Host, int Port)> _bootstrap;
    private readonly Dictionary<string, string> _props;
    private readonly TlsClientOptions? _tls;
    private readonly (string Mechanism, string User, string Password)? _sasl;
    private readonly Dictionary<int, Conn> _conns = [];
    private Conn? _bootstrapConn;
    private readonly CancellationTokenSource _timeout;

    public CancellationToken Token => _timeout.Token;
    public Dictionary<int, Node> Brokers { get; private set; } = [];
    public int ControllerId { get; private set; } = -1;
    public string? ClusterId { get; private set; }

    public AdminClient(string bootstrapServers, Dictionary<string, string>? props, TimeSpan? timeout = null)
    {
        _bootstrap = ParseServers(bootstrapServers);
        _props = props ?? [];
        _timeout = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        string protocol = (_props.GetValueOrDefault("security.protocol") ?? "PLAINTEXT").Trim().ToUpperInvariant();
        if (protocol is not ("PLAINTEXT" or "SSL" or "SASL_PLAINTEXT" or "SASL_SSL"))
            throw new UsageException($"security.protocol {protocol} is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL");
        if (protocol is "SSL" or "SASL_SSL")
        {
            var ssl = _props.Where(kv => kv.Key.StartsWith("ssl.", StringComparison.Ordinal)).ToDictionary(kv => kv.Key, kv => kv.Value);
            _tls = new SslSettings(new BrokerConfig(ssl), "client").ClientOptions();
        }
        if (protocol is "SASL_PLAINTEXT" or "SASL_SSL")
        {
            string mechanism = (_props.GetValueOrDefault("sasl.mechanism") ?? "GSSAPI").Trim();
            string jaas = _props.GetValueOrDefault("sasl.jaas.config")
                ?? throw new UsageException("SASL needs sasl.jaas.config with username and password in the --command-config file");
            var module = JaasConfig.ParseInline(jaas).FirstOrDefault()
                ?? throw new UsageException("sasl.jaas.config names no login module");
            _sasl = (mechanism, module.Option("username") ?? throw new UsageException("sasl.jaas.config has no username"),
                module.Option("password") ?? throw new UsageException("sasl.jaas.config has no password"));
        }
    }

    public static List<(string Host, int Port)> ParseServers(string list)
    {
        var result = new List<(string, int)>();
        foreach (var raw in list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int colon = raw.LastIndexOf(':');
            if (colon <= 0 || !int.TryParse(raw[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out int port))
                throw new UsageException($"Invalid url in bootstrap.servers: {raw}");
            string host = raw[..colon];
            if (host.StartsWith('[') && host.EndsWith(']')) host = host[1..^1];
            result.Add((host, port));
        }
        if (result.Count == 0) throw new UsageException("bootstrap.servers is empty");
        return result;
    }

    private async Task<Conn> OpenAsync(string host, int port)
    {
        var client = await KafkaWireClient.ConnectAsync(host, port, _tls, Token);
        try
        {
            client.ClientId = _props.GetValueOrDefault("client.id") ?? "samsa-admin";
            if (_sasl is { } s) await client.AuthenticateAsync(s.Mechanism, s.User, s.Password, Token);
            var versions = await client.SendAsync<ApiVersionsResponse>(
                new ApiVersionsRequest { ClientSoftwareName = "samsa-admin", ClientSoftwareVersion = "1.0" }, 3, ct: Token)
                ?? throw new IOException("no ApiVersions response");
            if (versions.ErrorCode != 0) throw AdminException.From(versions.ErrorCode, null);
            return new Conn(client, versions);
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }
    }

    /// <summary>A connection to any broker (the first bootstrap server that answers).</summary>
    public async Task<Conn> AnyAsync()
    {
        if (_bootstrapConn is not null) return _bootstrapConn;
        Exception? last = null;
        foreach (var (host, port) in _bootstrap)
        {
            try { return _bootstrapConn = await OpenAsync(host, port); }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or SaslAuthenticationException or System.Security.Authentication.AuthenticationException)
            {
                if (e is SaslAuthenticationException) throw new AdminException($"Authentication failed: {e.Message}", ErrorCode.SaslAuthenticationFailed);
                last = e;
            }
        }
        throw new AdminException($"Timed out waiting for a node assignment: no bootstrap server answered ({last?.Message})", ErrorCode.NetworkException);
    }

    public async Task<Conn> NodeAsync(int id)
    {
        if (_conns.TryGetValue(id, out var c)) return c;
        if (!Brokers.TryGetValue(id, out var node))
        {
            await MetadataAsync([]);
            if (!Brokers.TryGetValue(id, out node)) throw new AdminException($"broker {id} is not in the cluster metadata", ErrorCode.BrokerNotAvailable);
        }
        c = await OpenAsync(node.Host, node.Port);
        _conns[id] = c;
        return c;
    }

    public async Task<TResponse> SendAsync<TResponse>(Conn conn, IKafkaMessage request, short version) where TResponse : class, IKafkaMessage<TResponse> =>
        await conn.Client.SendAsync<TResponse>(request, version, ct: Token) ?? throw new IOException("no response");

    public async Task<TResponse> SendAsync<TResponse>(Conn conn, IKafkaMessage request, ApiKey key, short cap) where TResponse : class, IKafkaMessage<TResponse> =>
        await SendAsync<TResponse>(conn, request, conn.Version(key, cap));

    /// <summary>Metadata for these topics (null: every topic; empty: brokers only); refreshes the broker list and controller.</summary>
    public async Task<MetadataResponse> MetadataAsync(IReadOnlyCollection<string>? topics)
    {
        var conn = await AnyAsync();
        short v = conn.Version(ApiKey.Metadata, 12);
        var request = new MetadataRequest
        {
            Topics = topics is null ? null! : topics.Select(t => new MetadataRequest.MetadataRequestTopic { Name = t }).ToList(),
            AllowAutoTopicCreation = false,
        };
        if (topics is null && v == 0) request.Topics = [];   // v0: empty means all
        var response = await SendAsync<MetadataResponse>(conn, request, v);
        Brokers = response.Brokers.ToDictionary(b => b.NodeId, b => new Node(b.NodeId, b.Host, b.Port));
        ControllerId = response.ControllerId;
        ClusterId = response.ClusterId;
        return response;
    }

    public async Task<Conn> ControllerAsync()
    {
        if (ControllerId < 0) await MetadataAsync([]);
        if (ControllerId < 0) return await AnyAsync();
        return await NodeAsync(ControllerId);
    }

    /// <summary>Runs a controller request, refreshing the controller and retrying on NOT_CONTROLLER (ZooKeeper-mode brokers answer it).</summary>
    public async Task<T> WithControllerAsync<T>(Func<Conn, Task<T>> call, Func<T, bool> notController)
    {
        for (int attempt = 0; ; attempt++)
        {
            var conn = await ControllerAsync();
            var result = await call(conn);
            if (!notController(result) || attempt >= 5) return result;
            _conns.Remove(ControllerId);
            await conn.Client.DisposeAsync();
            ControllerId = -1;
            await Task.Delay(200 * (attempt + 1), Token);
        }
    }

    /// <summary>The group coordinator's connection (FindCoordinator, retried while the coordinator is not yet available).</summary>
    public async Task<(Conn Conn, Node Node)> CoordinatorAsync(string group)
    {
        for (int attempt = 0; ; attempt++)
        {
            var conn = await AnyAsync();
            short v = conn.Version(ApiKey.FindCoordinator, 3);
            var r = await SendAsync<FindCoordinatorResponse>(conn, new FindCoordinatorRequest { Key = group, KeyType = 0 }, v);
            var code = ErrorCodes.FromWire(r.ErrorCode);
            if (code == ErrorCode.None)
            {
                var node = new Node(r.NodeId, r.Host, r.Port);
                Brokers.TryAdd(node.Id, node);
                return (await NodeAsync(node.Id), node);
            }
            if (!ErrorCodes.IsRetriable(code) || attempt >= 20) throw AdminException.From(r.ErrorCode, r.ErrorMessage);
            await Task.Delay(250, Token);
        }
    }

    /// <summary>
    /// Runs a request at the group's coordinator, finding it again and retrying while the answer is
    /// NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE or COORDINATOR_LOAD_IN_PROGRESS (the offsets topic
    /// being created or loaded, or the coordinator moving), as upstream's admin client does.
    /// </summary>
    public async Task<T> AtCoordinatorAsync<T>(string group, Func<Conn, Task<T>> call, Func<T, IEnumerable<short>> errors)
    {
        for (int attempt = 0; ; attempt++)
        {
            var (conn, node) = await CoordinatorAsync(group);
            LastCoordinator = node;
            var result = await call(conn);
            if (attempt >= 20 || !errors(result).Any(e => e is (short)ErrorCode.NotCoordinator or (short)ErrorCode.CoordinatorNotAvailable or (short)ErrorCode.CoordinatorLoadInProgress))
                return result;
            await Task.Delay(250, Token);
        }
    }

    /// <summary>The coordinator the last <see cref="AtCoordinatorAsync"/> call went to.</summary>
    public Node? LastCoordinator { get; private set; }

    public async ValueTask DisposeAsync()
    {
        foreach (var c in _conns.Values) await c.Client.DisposeAsync();
        if (_bootstrapConn is not null) await _bootstrapConn.Client.DisposeAsync();
        _timeout.Dispose();
    }
}
