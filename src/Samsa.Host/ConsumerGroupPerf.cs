using System.Diagnostics;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Host;

/// <summary>
/// <c>samsa perf group --protocol consumer</c>: the same two figures as the classic run for a
/// KIP-848 consumer group. Each member is its own connection and behaves as librdkafka's consumer
/// does: ConsumerGroupHeartbeat v1 with its own member id, epoch 0 to join, then a heartbeat every
/// interval the coordinator gives, reporting the partitions it owns; when told to give partitions
/// up it does so at once and heartbeats straight away (as a client acknowledging a revocation).
/// A member counts as settled when every member is at the same epoch and their assignments cover
/// the topic's partitions exactly once.
/// - formation: N members join an empty group at once; from the first heartbeat until settled.
/// - member join: one member joins a settled group of N; from its first heartbeat until settled
///   with the newcomer holding partitions. Partitions move only after their owner revoked them,
///   learnt at its next heartbeat, so this is bounded below by about one heartbeat interval.
/// </summary>
internal static class ConsumerGroupPerf
{
    public static async Task<(List<double> Formation, List<double> MemberJoin)> RunSizeAsync(string host, int port, string topic, Guid topicId,
        int partitions, int n, int rounds)
    {
        var formation = new List<double>();
        var memberJoin = new List<double>();
        for (int round = 0; round < rounds; round++)
        {
            var (f, j) = await RoundAsync(host, port, $"samsa-perf-cgroup-{n}-{round}-{Guid.NewGuid():N}", topic, topicId, partitions, n);
            formation.Add(f);
            memberJoin.Add(j);
        }
        return (formation, memberJoin);
    }

    /// <summary>Creates the topic the members subscribe to and returns its id.</summary>
    public static async Task<Guid> CreateTopicAsync(string host, int port, string topic, int partitions)
    {
        await using var c = await KafkaWireClient.ConnectAsync(host, port);
        var created = await c.SendAsync<CreateTopicsResponse>(new CreateTopicsRequest
        {
            TimeoutMs = 30_000, Topics = [new() { Name = topic, NumPartitions = partitions, ReplicationFactor = 1 }],
        }, 7);
        if (created!.Topics[0].ErrorCode is not (0 or (short)ErrorCode.TopicAlreadyExists))
            throw new InvalidOperationException($"CreateTopics {topic}: error {created.Topics[0].ErrorCode}");
        var md = await c.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [new() { Name = topic }] }, 12);
        return md!.Topics[0].TopicId;
    }

    private static async Task<(double Formation, double MemberJoin)> RoundAsync(string host, int port, string group, string topic, Guid topicId, int partitions, int n)
    {
        var members = new List<Member>();
        for (int i = 0; i < n + 1; i++) members.Add(new Member(await KafkaWireClient.ConnectAsync(host, port), group, topic));
        using var stop = new CancellationTokenSource();
        try
        {
            var first = members.Take(n).ToList();
            long formStart = Stopwatch.GetTimestamp();
            var running = first.Select(m => Task.Run(() => m.RunAsync(stop.Token))).ToList();
            await WaitSettledAsync(first, topicId, partitions, null);
            double formed = Stopwatch.GetElapsedTime(formStart).TotalMilliseconds;
            await Task.Delay(200);
            long joinAt = Stopwatch.GetTimestamp();
            var late = members[n];
            running.Add(Task.Run(() => late.RunAsync(stop.Token)));
            await WaitSettledAsync(members, topicId, partitions, late);
            double joined = Stopwatch.GetElapsedTime(joinAt).TotalMilliseconds;
            stop.Cancel();
            await Task.WhenAll(running).WaitAsync(TimeSpan.FromSeconds(30));
            foreach (var m in members) if (m.Failure is { } e) throw new InvalidOperationException($"member failed: {e}");
            return (formed, joined);
        }
        finally
        {
            foreach (var m in members) await m.Client.DisposeAsync();
        }
    }

    private static async Task WaitSettledAsync(List<Member> members, Guid topicId, int partitions, Member? mustHold)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < TimeSpan.FromMinutes(2))
        {
            foreach (var m in members) if (m.Failure is { } e) throw new InvalidOperationException($"member failed: {e}");
            var snapshot = members.Select(m => m.Snapshot()).ToList();
            if (snapshot.All(s => s.Epoch > 0) && snapshot.Select(s => s.Epoch).Distinct().Count() == 1
                && (mustHold is null || mustHold.Snapshot().Owned.Count > 0))
            {
                var all = snapshot.SelectMany(s => s.Owned).ToList();
                if (all.Count == partitions && all.Distinct().Count() == partitions) return;
            }
            await Task.Delay(2);
        }
        throw new TimeoutException("the consumer group did not settle within 2 minutes");
    }

    private sealed class Member(KafkaWireClient client, string group, string topic)
    {
        private readonly object _gate = new();
        private readonly string _memberId = Guid.NewGuid().ToString("N");
        private int _epoch;
        private List<int> _owned = [];
        private Guid _topicId;
        public KafkaWireClient Client => client;
        public volatile string? Failure;

        public (int Epoch, List<int> Owned) Snapshot() { lock (_gate) return (_epoch, _owned.ToList()); }

        public async Task RunAsync(CancellationToken stop)
        {
            try
            {
                bool first = true;
                while (!stop.IsCancellationRequested)
                {
                    var request = new ConsumerGroupHeartbeatRequest
                    {
                        GroupId = group, MemberId = _memberId, MemberEpoch = _epoch,
                        RebalanceTimeoutMs = first ? 60_000 : -1,
                        SubscribedTopicNames = first ? [topic] : null,
                        TopicPartitions = first || Snapshot().Owned.Count == 0 ? [] : [new() { TopicId = _topicId, Partitions = Snapshot().Owned }],
                    };
                    var r = await client.SendAsync<ConsumerGroupHeartbeatResponse>(request, 1);
                    if (r!.ErrorCode != 0) { Failure = $"ConsumerGroupHeartbeat error {r.ErrorCode} {r.ErrorMessage}"; return; }
                    first = false;
                    bool changed = false;
                    lock (_gate)
                    {
                        if (r.Assignment is { } a)
                        {
                            var next = a.TopicPartitions.SelectMany(t => t.Partitions).Order().ToList();
                            if (a.TopicPartitions.Count > 0) _topicId = a.TopicPartitions[0].TopicId;
                            changed = !next.SequenceEqual(_owned);
                            _owned = next;
                        }
                        _epoch = r.MemberEpoch;
                    }
                    // A revocation (or a new assignment) is acknowledged with the next heartbeat at once.
                    if (changed) continue;
                    try { await Task.Delay(r.HeartbeatIntervalMs, stop); } catch (OperationCanceledException) { break; }
                }
                await client.SendAsync<ConsumerGroupHeartbeatResponse>(new ConsumerGroupHeartbeatRequest
                {
                    GroupId = group, MemberId = _memberId, MemberEpoch = -1,
                }, 1);
            }
            catch (Exception e) when (!stop.IsCancellationRequested)
            {
                Failure = e.Message;
            }
            catch (Exception)
            {
                // Connections close at the end of the round.
            }
        }
    }
}
