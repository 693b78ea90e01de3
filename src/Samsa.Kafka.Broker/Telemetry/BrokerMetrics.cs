using System.Collections.Concurrent;
using System.Diagnostics;
using Prometheus;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Telemetry;

/// <summary>When a request reached the broker and its handler ran (Stopwatch ticks), for the
/// RequestMetrics times. Filled by Network/KafkaConnectionHandler on the stack.</summary>
public struct RequestTiming
{
    public long Received, Started, LocalTicks, Handled;
    public RequestTiming(long received) { Received = received; Started = Handled = received; }
    public void HandlerStarted(long started, long localTicks) { Started = started; LocalTicks = localTicks; }
    public void HandlerDone() => Handled = Stopwatch.GetTimestamp();
}

/// <summary>
/// The broker's metrics in Prometheus form (issue #20), under the names the Prometheus JMX exporter's
/// kafka-2_0_0.yml rules give upstream's JMX MBeans (lower-cased; "PerSec" meters as *_total
/// counters; Yammer histograms as summaries with quantiles), plus consumer-group lag under
/// kafka-exporter's names (upstream's broker has no lag MBean). Served at /metrics by
/// <c>samsa.metrics.port</c> (Samsa.Net.HttpGetListener); null on the broker when that is -1.
///
/// Hot path: one dictionary look-up per topic per produce/fetch partition (cached labelled
/// children, no allocation once a topic is seen) and one array look-up per request; the gauges
/// (under-replicated partitions, controller, groups, lag) are computed when /metrics is scraped.
/// </summary>
public sealed class BrokerMetrics
{
    private static readonly double[] Quantiles = [0.5, 0.75, 0.95, 0.98, 0.99, 0.999];
    private readonly KafkaBroker _broker;

    public CollectorRegistry Registry { get; } = Metrics.NewCustomRegistry();

    private readonly Counter _messagesIn, _bytesIn, _bytesOut, _produceRequests, _fetchRequests;
    private readonly Counter _requests;
    private readonly Samsa.Net.WindowedSummary _totalTime, _requestQueueTime, _responseQueueTime;
    private readonly Counter _isrShrinks, _isrExpands;
    private readonly Gauge _underReplicated, _partitionCount, _leaderCount, _activeController, _offlinePartitions, _globalTopics, _globalPartitions;
    private readonly Gauge _numGroups, _numOffsets, _groupsByState, _lag, _currentOffset;

    private sealed class TopicChildren(Counter messagesIn, Counter bytesIn, Counter bytesOut, Counter produce, Counter fetch, string topic)
    {
        public readonly Counter.Child MessagesIn = messagesIn.WithLabels(topic), BytesIn = bytesIn.WithLabels(topic), BytesOut = bytesOut.WithLabels(topic);
        public readonly Counter.Child ProduceRequests = produce.WithLabels(topic), FetchRequests = fetch.WithLabels(topic);
    }

    private sealed class ApiChildren
    {
        public required Samsa.Net.WindowedHistogram Total, RequestQueue, ResponseQueue;
        public readonly Counter.Child?[] ByVersion = new Counter.Child?[32];
    }

    private readonly ConcurrentDictionary<string, TopicChildren> _topics = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Guid, TopicChildren> _topicsById = new();
    // by API key; Fetch splits into FetchConsumer and FetchFollower as upstream's RequestMetrics
    private readonly ApiChildren?[] _apis = new ApiChildren?[256];
    private ApiChildren? _fetchConsumer, _fetchFollower;
    private HashSet<(string, string, string)> _lagLabels = [];

    public BrokerMetrics(KafkaBroker broker)
    {
        _broker = broker;
        var f = Metrics.WithCustomRegistry(Registry);
        Counter C(string name, string help, params string[] labels) => f.CreateCounter(name, help, labels);
        Gauge G(string name, string help, params string[] labels) => f.CreateGauge(name, help, labels);
        // RequestMetrics times: Stopwatch ticks in lock-free windowed histograms (Samsa.Net.WindowedHistogram,
        // a sliding one-minute window), printed in ms with quantile labels when /metrics is scraped
        Samsa.Net.WindowedSummary S(string name, string help) => new(Registry, name, help, 1000.0 / Stopwatch.Frequency, Quantiles, "request");
        _messagesIn = C("kafka_server_brokertopicmetrics_messagesin_total", "Records appended as leader (BrokerTopicMetrics MessagesInPerSec)", "topic");
        _bytesIn = C("kafka_server_brokertopicmetrics_bytesin_total", "Produce record bytes received (BrokerTopicMetrics BytesInPerSec)", "topic");
        _bytesOut = C("kafka_server_brokertopicmetrics_bytesout_total", "Record bytes sent to consumers (BrokerTopicMetrics BytesOutPerSec; followers not counted)", "topic");
        _produceRequests = C("kafka_server_brokertopicmetrics_totalproducerequests_total", "Produce requests per topic (TotalProduceRequestsPerSec)", "topic");
        _fetchRequests = C("kafka_server_brokertopicmetrics_totalfetchrequests_total", "Consumer fetch requests per topic (TotalFetchRequestsPerSec)", "topic");
        _requests = C("kafka_network_requestmetrics_requests_total", "Requests per API and version (RequestMetrics RequestsPerSec)", "request", "version");
        _totalTime = S("kafka_network_requestmetrics_totaltimems", "Request total time in ms, receipt to response sent (RequestMetrics TotalTimeMs)");
        _requestQueueTime = S("kafka_network_requestmetrics_requestqueuetimems", "Request queue time in ms: receipt to handler start (RequestMetrics RequestQueueTimeMs)");
        _responseQueueTime = S("kafka_network_requestmetrics_responsequeuetimems", "Handler done to response write start in ms (RequestMetrics ResponseQueueTimeMs)");
        _isrShrinks = C("kafka_server_replicamanager_isrshrinks_total", "ISR shrinks by this leader (ReplicaManager IsrShrinksPerSec)");
        _isrExpands = C("kafka_server_replicamanager_isrexpands_total", "ISR expands by this leader (ReplicaManager IsrExpandsPerSec)");
        _underReplicated = G("kafka_server_replicamanager_underreplicatedpartitions", "Partitions led here with fewer in-sync replicas than replicas");
        _partitionCount = G("kafka_server_replicamanager_partitioncount", "Partitions with a replica on this broker");
        _leaderCount = G("kafka_server_replicamanager_leadercount", "Partitions led by this broker");
        _activeController = G("kafka_controller_kafkacontroller_activecontrollercount", "1 on the active controller, else 0");
        _offlinePartitions = G("kafka_controller_kafkacontroller_offlinepartitionscount", "Partitions without a leader (reported by the controller)");
        _globalTopics = G("kafka_controller_kafkacontroller_globaltopiccount", "Topics in the cluster (reported by the controller)");
        _globalPartitions = G("kafka_controller_kafkacontroller_globalpartitioncount", "Partitions in the cluster (reported by the controller)");
        _numGroups = G("kafka_coordinator_group_groupmetadatamanager_numgroups", "Groups this broker coordinates (GroupMetadataManager NumGroups)");
        _numOffsets = G("kafka_coordinator_group_groupmetadatamanager_numoffsets", "Committed offsets this broker holds (GroupMetadataManager NumOffsets)");
        _groupsByState = G("kafka_coordinator_group_groupmetadatamanager_numgroupsbystate", "Groups this broker coordinates by state (NumGroupsStable, NumGroupsEmpty, ... as a state label)", "state");
        _lag = G("kafka_consumergroup_lag", "High watermark minus committed offset (kafka-exporter's name), for the groups this broker coordinates", "consumergroup", "topic", "partition");
        _currentOffset = G("kafka_consumergroup_current_offset", "Committed offset (kafka-exporter's name), for the groups this broker coordinates", "consumergroup", "topic", "partition");
        Registry.AddBeforeCollectCallback(async ct =>
        {
            // One pass over the groups and their committed offsets feeds both the remote high
            // watermark requests and the group gauges.
            GroupOffsets? groups = ReadGroupOffsets();
            await RefreshRemoteHighWatermarksAsync(groups, ct).ConfigureAwait(false);
            Refresh(groups);
        });
    }

    private TopicChildren Topic(string name) =>
        _topics.TryGetValue(name, out var c) ? c : _topics.GetOrAdd(name, n => new TopicChildren(_messagesIn, _bytesIn, _bytesOut, _produceRequests, _fetchRequests, n));

    /// <summary>A request's topic by name (before topic ids) or by id (Produce v13+, Fetch v13+).</summary>
    private TopicChildren? TopicOf(bool byId, string? name, Guid id)
    {
        if (!byId) return name is { Length: > 0 } ? Topic(name) : null;
        if (_topicsById.TryGetValue(id, out var t)) return t;
        if (_broker.Replicas.GetTopic(id)?.Name is not { } n) return null;
        return _topicsById[id] = Topic(n);
    }

    /// <summary>A produce partition appended as leader (ReplicaManager.appendToLocalLog's meters).</summary>
    public void RecordsIn(string topic, int records, int bytes)
    {
        var t = Topic(topic);
        t.MessagesIn.Inc(records);
        t.BytesIn.Inc(bytes);
    }

    public void IsrShrink() => _isrShrinks.Inc();
    public void IsrExpand() => _isrExpands.Inc();

    private ApiChildren Api(string name) => new()
    {
        Total = _totalTime.WithLabels(name), RequestQueue = _requestQueueTime.WithLabels(name), ResponseQueue = _responseQueueTime.WithLabels(name),
    };

    /// <summary>One request answered (or, with no response, handled): RequestMetrics, and
    /// BytesOutPerSec / TotalFetchRequestsPerSec / TotalProduceRequestsPerSec per topic.</summary>
    public void RequestDone(RequestHeader header, IKafkaMessage? request, IKafkaMessage? response, int requestBytes, in RequestTiming t, long sendStart)
    {
        long now = Stopwatch.GetTimestamp();
        short key = header.RequestApiKey;
        if ((ushort)key >= _apis.Length) return;
        ApiChildren api;
        if (request is FetchRequest fetch)
        {
            bool follower = (header.RequestApiVersion >= 15 ? fetch.ReplicaState.ReplicaId : fetch.ReplicaId) >= 0;
            api = follower ? _fetchFollower ??= Api("FetchFollower") : _fetchConsumer ??= Api("FetchConsumer");
            if (!follower && response is FetchResponse fr) CountFetch(header.RequestApiVersion, fr);
        }
        else
        {
            api = _apis[key] ??= Api(((ApiKey)key).ToString());
            if (request is ProduceRequest produce)
                foreach (var topic in produce.TopicData)
                    TopicOf(header.RequestApiVersion >= 13, topic.Name, topic.TopicId)?.ProduceRequests.Inc();
        }
        int v = header.RequestApiVersion;
        if ((uint)v < (uint)api.ByVersion.Length)
            (api.ByVersion[v] ??= _requests.WithLabels(((ApiKey)key).ToString(), v.ToString(System.Globalization.CultureInfo.InvariantCulture))).Inc();
        api.Total.Record(now - t.Received, now);
        api.RequestQueue.Record(t.Started - t.Received, now);
        api.ResponseQueue.Record(sendStart - t.Handled, now);
    }

    private void CountFetch(short version, FetchResponse response)
    {
        foreach (var topic in response.Responses)
        {
            if (TopicOf(version >= 13, topic.Topic, topic.TopicId) is not { } t) continue;
            long bytes = 0;
            foreach (var p in topic.Partitions)
            {
                if (p.Records is not { } records) continue;
                // records read as a file range (zero-copy send) are a FileRecords memory of that length
                bytes += Protocol.Records.FileRecords.TryGet(records, out _, out _, out int fileLength) ? fileLength : records.Length;
            }
            t.FetchRequests.Inc();
            if (bytes > 0) t.BytesOut.Inc(bytes);
        }
    }

    /// <summary>The gauges, computed from the broker's state when /metrics is scraped.</summary>
    private void Refresh(GroupOffsets? groups)
    {
        try
        {
            var b = _broker;
            int partitions = 0, leaders = 0, underReplicated = 0, offline = 0, all = 0;
            var topics = b.Replicas.Topics;
            foreach (var t in topics)
            {
                foreach (var p in t.Partitions.ToArray())
                {
                    all++;
                    if (p.LeaderId is -1) offline++;
                    if (!p.IsHostedLocally) continue;
                    partitions++;
                    if (!p.IsLeader) continue;
                    leaders++;
                    if (p.ReplicaNodes is { } r && p.IsrNodes is { } isr && isr.Count < r.Count) underReplicated++;
                }
            }
            bool controller = b.Cluster is null || b.Cluster.IsController;
            _partitionCount.Set(partitions);
            _leaderCount.Set(leaders);
            _underReplicated.Set(underReplicated);
            _activeController.Set(controller ? 1 : 0);
            _offlinePartitions.Set(controller ? offline : 0);
            _globalTopics.Set(controller ? topics.Count : 0);
            _globalPartitions.Set(controller ? all : 0);
            RefreshGroups(b, groups);
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or NullReferenceException)
        {
            // state changed under the scrape (a collection modified): the next scrape recomputes
        }
    }

    // High watermarks of committed partitions led by other brokers, read before each scrape.
    private Dictionary<(string Topic, int Partition), long> _remoteHighWatermarks = new();

    /// <summary>
    /// Lag needs each partition's high watermark, which only its leader knows: as kafka-exporter does,
    /// ask the leaders (ListOffsets latest, one request per leader over the inter-broker listener,
    /// two seconds at most) for the committed partitions of the groups coordinated here that this
    /// broker does not lead. A leader that does not answer in time leaves its partitions without a
    /// lag row for this scrape.
    /// </summary>
    private async Task RefreshRemoteHighWatermarksAsync(GroupOffsets? groups, CancellationToken ct)
    {
        var b = _broker;
        var wanted = new Dictionary<int, HashSet<(string Topic, int Partition)>>();
        if (groups is null) return; // state changed under the scrape: the next one recomputes
        try
        {
            foreach (var (_, tp, _) in groups.Committed)
            {
                var partition = b.Replicas.GetTopic(tp.Topic)?.Partitions.ElementAtOrDefault(tp.Partition);
                if (partition is null || partition is { IsLeader: true, IsHostedLocally: true }) continue;
                if (partition.LeaderId is not int leader || leader < 0 || leader == b.Config.BrokerId) continue;
                if (!wanted.TryGetValue(leader, out var set)) wanted[leader] = set = new();
                set.Add((tp.Topic, tp.Partition));
            }
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or NullReferenceException)
        {
            return; // state changed under the scrape: the next one recomputes
        }
        var result = new Dictionary<(string, int), long>();
        if (wanted.Count > 0)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(2));
            var answers = await Task.WhenAll(wanted.Select(w => LatestOffsetsAsync(w.Key, w.Value, timeout.Token))).ConfigureAwait(false);
            foreach (var answer in answers)
                foreach (var (key, value) in answer) result[key] = value;
        }
        _remoteHighWatermarks = result;
    }

    private async Task<List<((string, int), long)>> LatestOffsetsAsync(int leader, HashSet<(string Topic, int Partition)> partitions, CancellationToken ct)
    {
        var found = new List<((string, int), long)>();
        if (_broker.InterBroker.EndpointOf(leader) is not { } endpoint) return found;
        try
        {
            await using var client = await _broker.InterBroker.ConnectAsync(endpoint.Host, endpoint.Port, $"broker-{_broker.Config.BrokerId}-metrics", ct).ConfigureAwait(false);
            var request = new ListOffsetsRequest
            {
                ReplicaId = -1,
                Topics = partitions.GroupBy(p => p.Topic).Select(t => new ListOffsetsRequest.ListOffsetsTopic
                {
                    Name = t.Key,
                    Partitions = t.Select(p => new ListOffsetsRequest.ListOffsetsPartition { PartitionIndex = p.Partition, Timestamp = -1, CurrentLeaderEpoch = -1 }).ToList(),
                }).ToList(),
            };
            var response = await client.SendAsync<ListOffsetsResponse>(request, 7, ct: ct).ConfigureAwait(false);
            foreach (var t in response?.Topics ?? [])
                foreach (var p in t.Partitions)
                    if (p.ErrorCode == 0 && p.Offset >= 0) found.Add(((t.Name, p.PartitionIndex), p.Offset));
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or OperationCanceledException or InvalidOperationException or InvalidDataException)
        {
            // the leader is away or slow: no lag for its partitions in this scrape
        }
        return found;
    }

    /// <summary>The groups coordinated here and their committed offsets (those at or past 0), read once per scrape.</summary>
    private sealed record GroupOffsets(List<Groups.ListedGroup> Groups, List<(string GroupId, Log.TopicPartition Partition, long Offset)> Committed);

    private GroupOffsets? ReadGroupOffsets()
    {
        try
        {
            var coordinator = _broker.Groups.Coordinator;
            var (error, groups) = coordinator.ListGroups(null, null);
            if (error != ErrorCode.None) groups = [];
            var committed = new List<(string, Log.TopicPartition, long)>();
            foreach (var g in groups)
            {
                var (e, offsets) = coordinator.FetchOffsets(g.GroupId, null);
                if (e != ErrorCode.None) continue;
                foreach (var (tp, offset) in offsets)
                    if (offset is not null && offset.Offset >= 0) committed.Add((g.GroupId, tp, offset.Offset));
            }
            return new GroupOffsets(groups, committed);
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or NullReferenceException)
        {
            return null; // state changed under the scrape: the next one recomputes
        }
    }

    private void RefreshGroups(KafkaBroker b, GroupOffsets? snapshot)
    {
        if (snapshot is null) return;
        var groups = snapshot.Groups;
        _numGroups.Set(groups.Count);
        foreach (var state in new[] { "PreparingRebalance", "CompletingRebalance", "Stable", "Dead", "Empty" })
            _groupsByState.WithLabels(state).Set(groups.Count(g => g.State == state));
        long offsets = 0;
        var seen = new HashSet<(string, string, string)>();
        foreach (var (groupId, tp, offset) in snapshot.Committed)
        {
            offsets++;
            var partition = b.Replicas.GetTopic(tp.Topic)?.Partitions.ElementAtOrDefault(tp.Partition);
            long highWatermark;
            if (partition is { IsLeader: true, IsHostedLocally: true }) highWatermark = partition.HighWatermark;
            else if (!_remoteHighWatermarks.TryGetValue((tp.Topic, tp.Partition), out highWatermark)) continue;
            var labels = (groupId, tp.Topic, tp.Partition.ToString(System.Globalization.CultureInfo.InvariantCulture));
            seen.Add(labels);
            _lag.WithLabels(labels.Item1, labels.Item2, labels.Item3).Set(Math.Max(0, highWatermark - offset));
            _currentOffset.WithLabels(labels.Item1, labels.Item2, labels.Item3).Set(offset);
        }
        _numOffsets.Set(offsets);
        foreach (var gone in _lagLabels)
        {
            if (seen.Contains(gone)) continue;
            _lag.RemoveLabelled(gone.Item1, gone.Item2, gone.Item3);
            _currentOffset.RemoveLabelled(gone.Item1, gone.Item2, gone.Item3);
        }
        _lagLabels = seen;
    }
}
