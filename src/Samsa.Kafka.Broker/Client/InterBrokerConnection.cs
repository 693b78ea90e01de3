using Samsa.Kafka.Protocol;

namespace Samsa.Kafka.Broker.Client;

/// <summary>
/// One kept-open connection from this broker to another for requests sent now and then (the
/// transaction coordinator's WriteTxnMarkers, a partition leader's KIP-890 verifications), one
/// request at a time (the caller serializes). Opened on first use; after a failure the next request
/// opens a new one. A request that fails on a connection that sat open since an earlier request
/// is sent once more over a new connection at once: the other broker closed it while it was idle —
/// most often because that broker was restarted — and upstream's NetworkClient, which watches its
/// idle connections, would have reconnected before sending. Both requests it carries are safe to
/// repeat (a repeated marker or verification changes nothing).
/// </summary>
public sealed class InterBrokerConnection(string host, int port, string clientId,
    Func<string, int, string, CancellationToken, Task<KafkaWireClient>> connect) : IDisposable
{
    private KafkaWireClient? _client;

    public string Host { get; } = host;
    public int Port { get; } = port;

    /// <summary>Sends the request and reads its response; throws what the connection threw
    /// (IOException, SocketException, a cancellation) when the request could not be answered.</summary>
    public async Task<TResponse?> SendAsync<TResponse>(IKafkaMessage request, short version, CancellationToken ct)
        where TResponse : class, IKafkaMessage<TResponse>
    {
        bool reused = _client is not null;
        try
        {
            return await SendOnceAsync<TResponse>(request, version, ct);
        }
        catch (Exception e) when (reused && !ct.IsCancellationRequested && e is IOException or System.Net.Sockets.SocketException)
        {
            return await SendOnceAsync<TResponse>(request, version, ct);
        }
    }

    private async Task<TResponse?> SendOnceAsync<TResponse>(IKafkaMessage request, short version, CancellationToken ct)
        where TResponse : class, IKafkaMessage<TResponse>
    {
        try
        {
            _client ??= await connect(Host, Port, clientId, ct);
            return await _client.SendAsync<TResponse>(request, version, ct: ct);
        }
        catch
        {
            // The connection's state is unknown after a failure: the next request opens a new one.
            Close();
            throw;
        }
    }

    /// <summary>Closes the connection (the next request opens a new one).</summary>
    public void Close()
    {
        var c = _client;
        _client = null;
        c?.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(1));
    }

    public void Dispose() => Close();
}
