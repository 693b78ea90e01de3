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

    /// <summary>
    /// The next fetch. The request object, its topics and partitions are this client's and are
    /// rewritten by the next Build: the caller sends it (encodes it) before building another.
    /// </summary>
    public FetchRequest Build(List<ReplicaFetcher.FetchState> states, int replicaId, int partitionMaxBytes)
    {
        var request = _request;
        request.ReplicaId = replicaId;
        request.IsolationLevel = 0;
        request.SessionId = _id;
        request.SessionEpoch = _epoch;
        request.Topics.Clear();
        request.ForgottenTopicsData.Clear();
        _partitionsUsed = 0;
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
                t = TopicEntry(tp.Topic);
                byTopic[tp.Topic] = t;
                request.Topics.Add(t);
            }
            var fp = PartitionEntry();
            fp.Partition = tp.Partition;
            fp.CurrentLeaderEpoch = sent.CurrentLeaderEpoch;
            fp.FetchOffset = sent.FetchOffset;
            fp.LastFetchedEpoch = sent.LastFetchedEpoch;
            fp.LogStartOffset = sent.LogStartOffset;
            fp.PartitionMaxBytes = sent.MaxBytes;
            t.Partitions.Add(fp);
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

    // The request's parts, kept from fetch to fetch: one topic entry per topic name (its partition
    // list emptied when it is taken again) and partition entries handed out in order.
    private readonly FetchRequest _request = new();
    private readonly Dictionary<string, FetchRequest.FetchTopic> _topicEntries = [];
    private readonly List<FetchRequest.FetchPartition> _partitionEntries = [];
    private int _partitionsUsed;

    private FetchRequest.FetchTopic TopicEntry(string topic)
    {
        if (!_topicEntries.TryGetValue(topic, out var t))
        {
            // Topics come and go with leadership; the map is bounded by the topics ever followed here.
            if (_topicEntries.Count >= 1024) _topicEntries.Clear();
            _topicEntries[topic] = t = new FetchRequest.FetchTopic { Topic = topic };
        }
        t.Partitions.Clear();
        return t;
    }

    private FetchRequest.FetchPartition PartitionEntry()
    {
        if (_partitionsUsed == _partitionEntries.Count) _partitionEntries.Add(new FetchRequest.FetchPartition());
        return _partitionEntries[_partitionsUsed++];
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
