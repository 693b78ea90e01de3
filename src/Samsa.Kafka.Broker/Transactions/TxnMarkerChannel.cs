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
/// must be retried), and the coordinator retries the completion when <see cref="CompletionDue"/>
/// fires or on its next tick. A marker that failed (no answer, or an error such as
/// NOT_LEADER_OR_FOLLOWER) is due again after <see cref="RetryBackoff"/>, as upstream re-enqueues it
/// at once and its sender reconnects after 50 ms: the transaction must not stay in
/// PrepareCommit/PrepareAbort — where the next transaction's AddPartitionsToTxn is answered
/// CONCURRENT_TRANSACTIONS — for a tick of up to a second.
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

    /// <summary>Raised (on a pool thread) when the coordinator should retry its completions: a leader
    /// confirmed a marker, or <see cref="RetryBackoff"/> passed since a marker failed.</summary>
    public event Action? CompletionDue;

    /// <summary>How long a failed marker waits before it is due again: upstream's marker sender
    /// (TransactionMarkerChannelManager's NetworkClient) reconnects after 50 ms, its
    /// reconnect.backoff.ms and reconnect.backoff.max.ms both.</summary>
    public static readonly TimeSpan RetryBackoff = TimeSpan.FromMilliseconds(50);

    // Failed sends in a row per broker, so a broker that stays down is logged about once a
    // few seconds, not at every retry.
    private readonly Dictionary<int, int> _failuresInARow = [];

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
        string? failure = null;
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
            failure = e.Message;
        }
        bool written = result is ErrorCode.None or ErrorCode.UnknownTopicOrPartition;
        int failures;
        lock (_gate)
        {
            _inFlight.Remove(key);
            // A partition deleted meanwhile needs no marker (as a local write answers).
            if (written) _written.Add(key);
            failures = written ? 0 : _failuresInARow.GetValueOrDefault(leaderId) + 1;
            _failuresInARow[leaderId] = failures;
        }
        if (written)
        {
            CompletionDue?.Invoke();
            return;
        }
        if (failures % 100 == 1)
        {
            _log?.Invoke(failure is not null
                ? $"sending the transaction marker for {key.Partition} to broker {leaderId} failed: {failure}; will retry"
                : $"broker {leaderId} refused the transaction marker for {key.Partition}: {result}; will retry");
        }
        try
        {
            await Task.Delay(RetryBackoff, _stop.Token);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        CompletionDue?.Invoke();
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
        private readonly InterBrokerConnection _connection = new(host, port, "samsa-txn-marker", connect);
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
                    return await _connection.SendAsync<WriteTxnMarkersResponse>(request, 2, bound.Token);
                }
                catch (Exception) when (bound.IsCancellationRequested && !stop.IsCancellationRequested)
                {
                    throw new TimeoutException("no answer within 30 s");
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
            _connection.Dispose();
        }
    }
}
