using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Replication;

/// <summary>
/// A replica fetcher's side of a fetch session with its leader (upstream
/// clients FetchSessionHandler, as the ReplicaFetcherThread uses it). The first fetch is full with
/// epoch 0 (asking for a session); once the leader names a session, each fetch carries the next
/// epoch, only the partitions that are new to the session or whose fetch parameters (fetch offset,
/// log start offset, leader epoch, last fetched epoch, max bytes) changed since they were last
/// sent, and the partitions no longer fetched as ForgottenTopicsData. The leader then answers only
/// partitions with something new. FETCH_SESSION_ID_NOT_FOUND starts over without an id;
/// INVALID_FETCH_SESSION_EPOCH, FETCH_SESSION_TOPIC_ID_ERROR or a lost connection send a full
/// fetch that closes the old session and asks for a new one.
/// </summary>
internal sealed class FetchSessionClient
{
    private readonly record struct Sent(int CurrentLeaderEpoch, long FetchOffset, int LastFetchedEpoch, long LogStartOffset, int MaxBytes);

    private int _id;
    private int _epoch;   // the epoch of the next request: 0 = full fetch asking for a session
    private readonly Dictionary<TopicPartition, Sent> _partitions = [];   // what the leader's session holds
    // The request in flight: its partitions' parameters, and the partitions it forgets.
    private readonly Dictionary<TopicPartition, Sent> _pending = [];
    private readonly List<TopicPartition> _forgetting = [];
    private bool _pendingFull;
    // Reused by every Build (one fetch per produced batch under acks=all): topic → its part of the request.
    private readonly Dictionary<string, FetchRequest.FetchTopic> _byTopic = [];
    private readonly Dictionary<string, FetchRequest.ForgottenTopic> _forgotten = [];

    public int SessionId => _id;
    public int NextEpoch => _epoch;
    /// <summary>Incremental fetches sent (a debug counter for tests).</summary>
    public long IncrementalRequests { get; private set; }

    public FetchRequest Build(List<ReplicaFetcher.FetchState> states, int replicaId, int partitionMaxBytes)
    {
        var request = new FetchRequest { ReplicaId = replicaId, IsolationLevel = 0, SessionId = _id, SessionEpoch = _epoch };
        _pending.Clear();
        _forgetting.Clear();
        _pendingFull = _epoch == 0;
        var byTopic = _byTopic;
        byTopic.Clear();
        foreach (var s in states)
        {
            var log = s.Partition.Log;
            var tp = s.Partition.TopicPartition;
            var sent = new Sent(s.Epoch, log.LogEndOffset, log.LatestEpoch, log.LogStartOffset, partitionMaxBytes);
            _pending[tp] = sent;
            if (!_pendingFull && _partitions.TryGetValue(tp, out var was) && was == sent) continue;
            if (!byTopic.TryGetValue(tp.Topic, out var t))
            {
                t = new FetchRequest.FetchTopic { Topic = tp.Topic };
                byTopic[tp.Topic] = t;
                request.Topics.Add(t);
            }
            t.Partitions.Add(new FetchRequest.FetchPartition
            {
                Partition = tp.Partition, CurrentLeaderEpoch = sent.CurrentLeaderEpoch, FetchOffset = sent.FetchOffset,
                LastFetchedEpoch = sent.LastFetchedEpoch, LogStartOffset = sent.LogStartOffset, PartitionMaxBytes = sent.MaxBytes,
            });
        }
        if (!_pendingFull)
        {
            IncrementalRequests++;
            var forgotten = _forgotten;
            forgotten.Clear();
            foreach (var tp in _partitions.Keys)
            {
                if (_pending.ContainsKey(tp)) continue;
                _forgetting.Add(tp);
                if (!forgotten.TryGetValue(tp.Topic, out var f))
                {
                    f = new FetchRequest.ForgottenTopic { Topic = tp.Topic };
                    forgotten[tp.Topic] = f;
                    request.ForgottenTopicsData.Add(f);
                }
                f.Partitions.Add(tp.Partition);
            }
        }
        return request;
    }

    /// <summary>Takes the answer's session id and error; false when the answer is a top-level error (nothing to apply).</summary>
    public bool OnResponse(FetchResponse response)
    {
        if (response.ErrorCode != 0)
        {
            if (response.ErrorCode == (short)ErrorCode.FetchSessionIdNotFound) _id = 0;
            _epoch = 0;
            _partitions.Clear();
            return false;
        }
        if (response.SessionId == 0)
        {
            // No session (none made, or the leader closed one left empty): the next fetch is full again.
            _id = 0;
            _epoch = 0;
            _partitions.Clear();
            return true;
        }
        if (_pendingFull || response.SessionId != _id)
        {
            _id = response.SessionId;
            _partitions.Clear();
        }
        foreach (var (tp, sent) in _pending) _partitions[tp] = sent;
        foreach (var tp in _forgetting) _partitions.Remove(tp);
        _epoch = Fetch.FetchSessionCache.NextEpoch(_pendingFull ? 0 : _epoch);
        return true;
    }

    /// <summary>The request got no answer: the next fetch closes the session (if any) and asks for a new one.</summary>
    public void OnFailure()
    {
        _epoch = 0;
        _partitions.Clear();
    }
}
