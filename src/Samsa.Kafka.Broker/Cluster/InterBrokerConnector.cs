using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Broker.Security;
using Samsa.Net;

namespace Samsa.Kafka.Broker.Cluster;

/// <summary>
/// The one way a broker connects to another broker (replica fetchers, controlled shutdown requests to
/// the controller, transaction markers): the peer's endpoint on the inter-broker listener
/// (<c>inter.broker.listener.name</c> / <c>security.inter.broker.protocol</c>), with that listener's
/// security — TLS from its <c>ssl.*</c> settings (trust store, this broker's keystore as client
/// certificate, <c>ssl.endpoint.identification.algorithm</c>) and, on SASL listeners,
/// <see cref="Authenticate"/> — as upstream's NetworkClient for inter-broker channels does
/// (ChannelBuilders.clientChannelBuilder with the inter-broker listener's configs).
/// </summary>
public sealed class InterBrokerConnector
{
    private readonly KafkaBroker _broker;
    private TlsClientOptions? _tls;

    internal InterBrokerConnector(KafkaBroker broker) => _broker = broker;

    /// <summary>The inter-broker listener name (valid after the broker started).</summary>
    public string ListenerName { get; private set; } = "PLAINTEXT";

    public SecurityProtocol Protocol { get; private set; } = SecurityProtocol.Plaintext;

    /// <summary>
    /// Runs right after connecting (and the TLS handshake) on a SASL inter-broker listener, before
    /// the connection is used: the SASL part fills it with its client exchange
    /// (sasl.mechanism.inter.broker.protocol). Must throw when authentication fails.
    /// </summary>
    public Func<KafkaWireClient, CancellationToken, Task>? Authenticate { get; set; }

    /// <summary>Test hook: TLS settings for inter-broker connections instead of the listener's ssl.* keys.</summary>
    public TlsClientOptions? TlsOverrideForTests { get; set; }

    internal void Configure(BrokerConfig config, BrokerListeners listeners)
    {
        ListenerName = listeners.InterBrokerListenerName;
        Protocol = listeners.InterBrokerProtocol;
        _tls = Protocol.UsesTls() ? new SslSettings(config, ListenerName).ClientOptions() : null;
    }

    /// <summary>The peer's endpoint on the inter-broker listener, or null when the peer is not live or
    /// does not register that listener.</summary>
    public (string Host, int Port)? EndpointOf(int brokerId) => _broker.EndpointOf(brokerId, ListenerName);

    /// <summary>The same, from a registration the caller already holds.</summary>
    public ListenerEndpoint? EndpointIn(ZooKeeper.ZkData.BrokerRegistration registration) =>
        registration.Endpoints.FirstOrDefault(e => BrokerListeners.Normalize(e.ListenerName) == ListenerName);

    private long _connections, _tlsConnections;

    /// <summary>Inter-broker connections opened, and how many of them run over TLS (tests, metrics).</summary>
    public (long All, long Tls) ConnectionsOpened => (Interlocked.Read(ref _connections), Interlocked.Read(ref _tlsConnections));

    /// <summary>A blocking connection (<see cref="KafkaWireClient.ConnectBlocking"/>) to a peer's
    /// inter-broker endpoint, or null when the listener uses TLS or SASL (their handshakes are
    /// asynchronous here; the caller connects with <see cref="ConnectAsync"/> then).</summary>
    internal KafkaWireClient? TryConnectBlocking(string host, int port, string clientId, int receiveTimeoutMs, CancellationToken ct)
    {
        if (Protocol.UsesTls() || Protocol.UsesSasl()) return null;
        var client = KafkaWireClient.ConnectBlocking(host, port, receiveTimeoutMs, ct);
        client.ClientId = clientId;
        Interlocked.Increment(ref _connections);
        return client;
    }

    /// <summary>Connects to a peer's inter-broker endpoint with the listener's security.</summary>
    public async Task<KafkaWireClient> ConnectAsync(string host, int port, string clientId, CancellationToken ct)
    {
        var client = await KafkaWireClient.ConnectAsync(host, port, Protocol.UsesTls() ? TlsOverrideForTests ?? _tls : null, ct);
        client.ClientId = clientId;
        Interlocked.Increment(ref _connections);
        if (client.IsTls) Interlocked.Increment(ref _tlsConnections);
        try
        {
            if (Protocol.UsesSasl())
            {
                var authenticate = Authenticate
                    ?? throw new InvalidOperationException($"inter-broker listener {ListenerName} uses {Protocol.Name()}, but no SASL client is configured");
                await authenticate(client, ct);
            }
            return client;
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }
    }
}
