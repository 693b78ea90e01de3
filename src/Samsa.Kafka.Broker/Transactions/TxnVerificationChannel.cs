using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Primitives;

namespace Samsa.Kafka.Broker.Transactions;

/// <summary>
/// Sends KIP-890 verifications (and transaction version 2 adds) to the transaction coordinator when
/// it is another broker (upstream AddPartitionsToTxnManager): AddPartitionsToTxn v5 over the
/// inter-broker listener, one connection and one request in flight per coordinator; what arrives
/// while a request is out goes in the next one, batched by transactional id. A second request for
/// the same transactional id waits for the following round. Never throws to the caller: a failed
/// connection or timeout answers NETWORK_EXCEPTION for every partition, which the leader turns into
/// the retriable NOT_ENOUGH_REPLICAS.
/// </summary>
public sealed class TxnVerificationChannel : IAsyncDisposable
{
    public const short RequestVersion = 5;
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(30);

    private sealed record Pending(string TransactionalId, long ProducerId, short ProducerEpoch, bool VerifyOnly,
        IReadOnlyCollection<TopicPartition> Partitions, TaskCompletionSource<Dictionary<TopicPartition, ErrorCode>> Done);

    private readonly Func<int, (string Host, int Port)?> _endpointOf;
    private readonly Func<string, int, string, CancellationToken, Task<KafkaWireClient>> _connect;
    private readonly Action<string>? _log;
    private readonly object _gate = new();
    private readonly Dictionary<int, Link> _links = [];
    private readonly CancellationTokenSource _stop = new();

    public TxnVerificationChannel(Func<int, (string Host, int Port)?> endpointOf, Action<string>? log,
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

    /// <summary>Asks broker <paramref name="coordinatorId"/> to verify (or add) the partitions; the
    /// coordinator's error per partition.</summary>
    public Task<Dictionary<TopicPartition, ErrorCode>> SendAsync(int coordinatorId, string transactionalId, long producerId, short producerEpoch,
        IReadOnlyCollection<TopicPartition> partitions, bool verifyOnly)
    {
        if (_endpointOf(coordinatorId) is not { } endpoint)
            return Task.FromResult(partitions.ToDictionary(tp => tp, _ => ErrorCode.CoordinatorNotAvailable));
        var pending = new Pending(transactionalId, producerId, producerEpoch, verifyOnly, partitions,
            new TaskCompletionSource<Dictionary<TopicPartition, ErrorCode>>(TaskCreationOptions.RunContinuationsAsynchronously));
        bool start;
        Link link;
        lock (_gate)
        {
            if (!_links.TryGetValue(coordinatorId, out link!) || link.Host != endpoint.Host || link.Port != endpoint.Port)
            {
                link?.Close();
                _links[coordinatorId] = link = new Link(new InterBrokerConnection(endpoint.Host, endpoint.Port, "samsa-txn-verification", _connect));
            }
            link.Queue.Add(pending);
            start = !link.Sending;
            link.Sending = true;
        }
        if (start) _ = Task.Run(() => PumpAsync(coordinatorId, link));
        return pending.Done.Task;
    }

    private async Task PumpAsync(int coordinatorId, Link link)
    {
        while (true)
        {
            List<Pending> batch = [];
            lock (_gate)
            {
                var ids = new HashSet<string>(StringComparer.Ordinal);
                foreach (var p in link.Queue)
                    if (ids.Add(p.TransactionalId)) batch.Add(p);
                if (_stop.IsCancellationRequested)
                {
                    foreach (var p in link.Queue) p.Done.TrySetResult(AllFailed(p, ErrorCode.NetworkException));
                    link.Queue.Clear();
                    link.Sending = false;
                    return;
                }
                foreach (var p in batch) link.Queue.Remove(p);
                if (batch.Count == 0)
                {
                    link.Sending = false;
                    return;
                }
            }
            await SendBatchAsync(coordinatorId, link, batch);
        }
    }

    private async Task SendBatchAsync(int coordinatorId, Link link, List<Pending> batch)
    {
        var request = new AddPartitionsToTxnRequest();
        foreach (var p in batch)
        {
            request.Transactions.Add(new AddPartitionsToTxnRequest.AddPartitionsToTxnTransaction
            {
                TransactionalId = p.TransactionalId, ProducerId = p.ProducerId, ProducerEpoch = p.ProducerEpoch, VerifyOnly = p.VerifyOnly,
                Topics = p.Partitions.GroupBy(tp => tp.Topic, StringComparer.Ordinal)
                    .Select(g => new AddPartitionsToTxnRequest.AddPartitionsToTxnTopic { Name = g.Key, Partitions = g.Select(tp => tp.Partition).ToList() })
                    .ToList(),
            });
        }
        AddPartitionsToTxnResponse? response = null;
        try
        {
            using var bound = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            bound.CancelAfter(RequestTimeout);
            response = await link.Connection.SendAsync<AddPartitionsToTxnResponse>(request, RequestVersion, bound.Token);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or KafkaProtocolException or OperationCanceledException or ObjectDisposedException)
        {
            _log?.Invoke($"transaction verification with broker {coordinatorId} failed: {e.Message}");
        }
        foreach (var p in batch)
        {
            Dictionary<TopicPartition, ErrorCode> result;
            if (response is null) result = AllFailed(p, ErrorCode.NetworkException);
            else if (response.ErrorCode != 0) result = AllFailed(p, (ErrorCode)response.ErrorCode);
            else
            {
                result = p.Partitions.Distinct().ToDictionary(tp => tp, _ => ErrorCode.None);
                var tr = response.ResultsByTransaction.FirstOrDefault(r => r.TransactionalId == p.TransactionalId);
                if (tr is null) result = AllFailed(p, ErrorCode.UnknownServerError);
                else
                    foreach (var t in tr.TopicResults)
                        foreach (var pr in t.ResultsByPartition)
                            if (result.ContainsKey(new TopicPartition(t.Name, pr.PartitionIndex)))
                                result[new TopicPartition(t.Name, pr.PartitionIndex)] = (ErrorCode)pr.PartitionErrorCode;
            }
            p.Done.TrySetResult(result);
        }
    }

    private static Dictionary<TopicPartition, ErrorCode> AllFailed(Pending p, ErrorCode error) =>
        p.Partitions.Distinct().ToDictionary(tp => tp, _ => error);

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        List<Link> links;
        lock (_gate) links = [.. _links.Values];
        foreach (var l in links) l.Close();
        await Task.CompletedTask;
    }

    private sealed class Link(InterBrokerConnection connection)
    {
        public InterBrokerConnection Connection { get; } = connection;
        public string Host => Connection.Host;
        public int Port => Connection.Port;
        public List<Pending> Queue { get; } = [];
        public bool Sending { get; set; }

        public void Close() => Connection.Close();
    }
}
