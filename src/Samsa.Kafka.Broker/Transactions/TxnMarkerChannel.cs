using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Primitives;

namespace Samsa.Kafka.Broker.Transactions;

/// <summary>
/// Sends transaction markers for partitions led by other brokers (upstream's
/// TransactionMarkerChannelManager): a WriteTxnMarkers request to the partition's leader, one
/// connection per broker, requests to a broker one at a time. <see cref="Write"/> never blocks: it
/// answers NONE once the leader confirmed that marker, REQUEST_TIMED_OUT while it is on its way (or
/// must be retried), and the coordinator retries the completion when <see cref="MarkerWritten"/>
/// fires or on its next tick.
/// </summary>
public sealed class TxnMarkerChannel : IAsyncDisposable
{
    private readonly record struct MarkerKey(TopicPartition Partition, long ProducerId, short ProducerEpoch, bool Commit);

    private readonly Func<int, (string Host, int Port)?> _endpointOf;
    private readonly Action<string>? _log;
    private readonly object _gate = new();
    private readonly HashSet<MarkerKey> _inFlight = [];
    private readonly HashSet<MarkerKey> _written = [];
    private readonly Dictionary<int, BrokerLink> _links = [];
    private readonly CancellationTokenSource _stop = new();

    /// <summary>Opens a connection to a broker (the inter-broker connector: listener security);
    /// a plain connection when not given.</summary>
    private readonly Func<string, int, string, CancellationToken, Task<KafkaWireClient>> _connect;

    public TxnMarkerChannel(Func<int, (string Host, int Port)?> endpointOf, Action<string>? log,
        Func<string, int, string, CancellationToken, Task<KafkaWireClient>>? connect = null)
    {
        _endpointOf = endpointOf;
        _log = log;
        _connect = connect ?? (async (host, port, clientId, ct) =>
        {
            var client = await KafkaWireClient.ConnectAsync(host, port, ct);
            client.ClientId = clientId;
            return client;
        });
    }

    /// <summary>Raised (on a pool thread) after a leader confirmed a marker.</summary>
    public event Action? MarkerWritten;

    /// <summary>Sends the marker at WriteTxnMarkers v2 with the transaction's version (KIP-1228).</summary>
    public ErrorCode Write(int leaderId, TopicPartition tp, long producerId, short producerEpoch, int coordinatorEpoch, bool commit,
        short transactionVersion = 0)
    {
        var key = new MarkerKey(tp, producerId, producerEpoch, commit);
        lock (_gate)
        {
            if (_written.Remove(key)) return ErrorCode.None;
            if (!_inFlight.Add(key)) return ErrorCode.RequestTimedOut;
        }
        if (leaderId < 0 || _endpointOf(leaderId) is not { } endpoint)
        {
            lock (_gate) _inFlight.Remove(key);
            return ErrorCode.NotLeaderOrFollower;
        }
        BrokerLink link;
        lock (_gate)
        {
            if (!_links.TryGetValue(leaderId, out link!) || link.Host != endpoint.Host || link.Port != endpoint.Port)
            {
                link?.Dispose();
                _links[leaderId] = link = new BrokerLink(endpoint.Host, endpoint.Port, _connect);
            }
        }
        _ = SendAsync(link, leaderId, key, coordinatorEpoch, transactionVersion);
        return ErrorCode.RequestTimedOut;
    }

    private async Task SendAsync(BrokerLink link, int leaderId, MarkerKey key, int coordinatorEpoch, short transactionVersion)
    {
        ErrorCode result = ErrorCode.NetworkException;
        try
        {
            var request = new WriteTxnMarkersRequest
            {
                Markers =
                [
                    new WriteTxnMarkersRequest.WritableTxnMarker
                    {
                        ProducerId = key.ProducerId, ProducerEpoch = key.ProducerEpoch, TransactionResult = key.Commit,
                        CoordinatorEpoch = coordinatorEpoch, TransactionVersion = (sbyte)transactionVersion,
                        Topics = [new WriteTxnMarkersRequest.WritableTxnMarkerTopic { Name = key.Partition.Topic, PartitionIndexes = [key.Partition.Partition] }],
                    },
                ],
            };
            var response = await link.SendAsync(request, _stop.Token);
            result = (ErrorCode)(response?.Markers.SelectMany(m => m.Topics).SelectMany(t => t.Partitions)
                .FirstOrDefault(p => p.PartitionIndex == key.Partition.Partition)?.ErrorCode ?? (short)ErrorCode.UnknownServerError);
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            return;
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or KafkaProtocolException or TimeoutException)
        {
            _log?.Invoke($"sending the transaction marker for {key.Partition} to broker {leaderId} failed: {e.Message}; will retry");
        }
        lock (_gate)
        {
            _inFlight.Remove(key);
            // A partition deleted meanwhile needs no marker (as a local write answers).
            if (result is ErrorCode.None or ErrorCode.UnknownTopicOrPartition) _written.Add(key);
        }
        // Failures wait for the coordinator's next tick (about a second), not a tight retry loop.
        if (result is ErrorCode.None or ErrorCode.UnknownTopicOrPartition)
            MarkerWritten?.Invoke();
        else if (result != ErrorCode.NetworkException)
            _log?.Invoke($"broker {leaderId} refused the transaction marker for {key.Partition}: {result}; will retry");
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        List<BrokerLink> links;
        lock (_gate) links = [.. _links.Values];
        foreach (var l in links) l.Dispose();
        await Task.CompletedTask;
    }

    /// <summary>One connection to a broker, reconnected after a failure; requests go one at a time.</summary>
    private sealed class BrokerLink(string host, int port, Func<string, int, string, CancellationToken, Task<KafkaWireClient>> connect) : IDisposable
    {
        private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(30);
        private readonly SemaphoreSlim _one = new(1, 1);
        private KafkaWireClient? _client;
        private bool _disposed;
        public string Host { get; } = host;
        public int Port { get; } = port;

        public async Task<WriteTxnMarkersResponse?> SendAsync(WriteTxnMarkersRequest request, CancellationToken stop)
        {
            await _one.WaitAsync(stop);
            try
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                using var bound = CancellationTokenSource.CreateLinkedTokenSource(stop);
                bound.CancelAfter(RequestTimeout);
                try
                {
                    _client ??= await connect(Host, Port, "samsa-txn-marker", bound.Token);
                    return await _client.SendAsync<WriteTxnMarkersResponse>(request, 2, ct: bound.Token);
                }
                catch
                {
                    // The connection's state is unknown after a failure: the next request opens a new one.
                    if (_client is not null) await _client.DisposeAsync();
                    _client = null;
                    if (bound.IsCancellationRequested && !stop.IsCancellationRequested) throw new TimeoutException("no answer within 30 s");
                    throw;
                }
            }
            finally
            {
                _one.Release();
            }
        }

        public void Dispose()
        {
            _disposed = true;
            _client?.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(1));
        }
    }
}
