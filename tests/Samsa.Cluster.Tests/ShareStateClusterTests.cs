using System.Diagnostics;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Cluster;
using Samsa.Kafka.Protocol.Messages;
using Xunit;

namespace Samsa.Cluster.Tests;

public sealed class KeeperShareStateClusterTests(KeeperServer server) : ShareStateClusterTests(server), IClassFixture<KeeperServer>;

/// <summary>Share-partition state in __share_group_state (KIP-932 share coordinator) on three
/// brokers: a share group's acknowledgements survive the share coordinator's broker stopping and
/// the share-partition's leader moving, seen by a member that bootstraps at the third broker.</summary>
public abstract class ShareStateClusterTests(ICoordinationServer server)
{
    private string Server
    {
        get
        {
            Assert.SkipWhen(server.SkipReason is not null, server.SkipReason ?? "");
            return server.Address!;
        }
    }

    private static async Task<int> FindAsync(LocalCluster cluster, int via, string key, sbyte keyType)
    {
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(via));
        for (var sw = Stopwatch.StartNew(); ; await Task.Delay(100))
        {
            var r = (await c.SendAsync<FindCoordinatorResponse>(new FindCoordinatorRequest { KeyType = keyType, CoordinatorKeys = [key] }, 6))!;
            var k = r.Coordinators.Single();
            if (k.ErrorCode == 0) return k.NodeId;
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30), $"no coordinator for {key}: {k.ErrorCode}");
        }
    }

    private static async Task<int> LeaderOfAsync(LocalCluster cluster, int via, string topic)
    {
        for (var sw = Stopwatch.StartNew(); ; await Task.Delay(100))
        {
            var md = await cluster.MetadataAsync(via, topic);
            int leader = md.Topics.Single().Partitions.Single().LeaderId;
            if (leader >= 0 && md.Brokers.Any(b => b.NodeId == leader)) return leader;
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30), $"no leader for {topic}");
        }
    }

    private static async Task<ShareFetchResponse> FetchAsync(KafkaWireClient c, string group, string member, int epoch, Guid topicId) =>
        (await c.SendAsync<ShareFetchResponse>(new ShareFetchRequest
        {
            GroupId = group, MemberId = member, ShareSessionEpoch = epoch, MaxWaitMs = 2000, MinBytes = 1, MaxBytes = 1 << 20,
            MaxRecords = 100, BatchSize = 100,
            Topics = [new ShareFetchRequest.FetchTopic { TopicId = topicId, Partitions = [new ShareFetchRequest.FetchPartition { PartitionIndex = 0 }] }],
        }, 2))!;

    private static List<(long Offset, short DeliveryCount)> Acquired(ShareFetchResponse r) =>
        r.Responses.SelectMany(t => t.Partitions).SelectMany(p => p.AcquiredRecords)
            .SelectMany(a => Enumerable.Range(0, (int)(a.LastOffset - a.FirstOffset + 1)).Select(i => (a.FirstOffset + i, a.DeliveryCount))).ToList();

    private static async Task JoinAsync(LocalCluster cluster, int via, string group, string member, string topic)
    {
        int coordinator = await FindAsync(cluster, via, group, 0);
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(coordinator));
        var hb = (await c.SendAsync<ShareGroupHeartbeatResponse>(new ShareGroupHeartbeatRequest
        {
            GroupId = group, MemberId = member, MemberEpoch = 0, SubscribedTopicNames = [topic],
        }, 1))!;
        Assert.Equal(0, hb.ErrorCode);
    }

    [Fact]
    public async Task AcknowledgedStateSurvivesTheCoordinatorStoppingAndTheLeaderMoving()
    {
        await using var cluster = await LocalCluster.StartAsync(Server, 3, brokerConfig: new Dictionary<string, string>
        {
            ["offsets.topic.replication.factor"] = "3", ["offsets.topic.num.partitions"] = "3",
            ["share.coordinator.state.topic.num.partitions"] = "5", ["share.auto.offset.reset"] = "earliest",
        });
        await LocalCluster.WaitUntilAsync(async () => (await cluster.MetadataAsync(1)).Brokers.Count == 3, TimeSpan.FromSeconds(10), "all brokers visible");
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.Bootstrap(1) }).Build())
            await admin.CreateTopicsAsync([new TopicSpecification
            {
                Name = "sq", NumPartitions = 1, ReplicasAssignments = new Dictionary<int, List<int>> { [0] = [1, 2, 3] },
            }]);
        int leader = await LeaderOfAsync(cluster, 1, "sq");
        var topicId = cluster[leader].Replicas.GetTopic("sq")!.Id;
        using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = cluster.Bootstrap(1), Acks = Acks.All }).Build())
            for (int i = 0; i < 10; i++) await producer.ProduceAsync(new TopicPartition("sq", 0), new Message<Null, string> { Value = $"m{i}" });

        // A group whose share coordinator (leader of its __share_group_state partition) is not the
        // share-partition's leader; the member of the second half bootstraps at the third broker.
        string group = "";
        int coordinator = -1;
        for (int i = 0; i < 50 && (coordinator < 0 || coordinator == leader); i++)
        {
            group = $"ss-{i}";
            coordinator = await FindAsync(cluster, 1, $"{group}:{KafkaUuid.ToBase64(topicId)}:0", 2);
        }
        Assert.NotEqual(leader, coordinator);
        int third = 6 - leader - coordinator;

        // Member m takes all ten records, accepts 0-4 and releases 5-9 (delivery count 1 each).
        await JoinAsync(cluster, third, group, "m", "sq");
        await using (var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(leader)))
        {
            var first = await FetchAsync(c, group, "m", 0, topicId);
            Assert.Equal(Enumerable.Range(0, 10).Select(i => ((long)i, (short)1)).ToList(), Acquired(first));
            var ack = (await c.SendAsync<ShareAcknowledgeResponse>(new ShareAcknowledgeRequest
            {
                GroupId = group, MemberId = "m", ShareSessionEpoch = 1,
                Topics = [new ShareAcknowledgeRequest.AcknowledgeTopic
                {
                    TopicId = topicId,
                    Partitions = [new ShareAcknowledgeRequest.AcknowledgePartition
                    {
                        PartitionIndex = 0,
                        AcknowledgementBatches =
                        [
                            new() { FirstOffset = 0, LastOffset = 4, AcknowledgeTypes = [1] },   // accept
                            new() { FirstOffset = 5, LastOffset = 9, AcknowledgeTypes = [2] },   // release
                        ],
                    }],
                }],
            }, 2))!;
            Assert.Equal(0, ack.ErrorCode);
            Assert.Equal(0, ack.Responses.Single().Partitions.Single().ErrorCode);
        }
        // The coordinator wrote the state before the acknowledgement was answered.
        var key = new Samsa.Kafka.Broker.Groups.Share.SharePartitionKey(group, topicId, 0);
        var written = cluster[coordinator].ShareCoordinator.Coordinator.Summary(key).State;
        Assert.Equal(5, written!.StartOffset);
        // Its records reach the other replicas of the state partition before the stop.
        var statePartition = Samsa.Kafka.Broker.Groups.Share.ShareCoordinator.PartitionFor(key, 5);
        long end = cluster[coordinator].Replicas.GetPartition("__share_group_state", statePartition)!.Log.LogEndOffset;
        await LocalCluster.WaitUntilAsync(() => Task.FromResult(
            cluster[third].Replicas.GetPartition("__share_group_state", statePartition)!.Log.LogEndOffset >= end
            && cluster[leader].Replicas.GetPartition("__share_group_state", statePartition)!.Log.LogEndOffset >= end), TimeSpan.FromSeconds(15), "state replicated");

        // The share coordinator's broker stops, then the share-partition's leader: the third broker
        // now leads the state partition (replayed from its replica) and the topic partition.
        await cluster.StopBrokerAsync(coordinator);
        await cluster.StopBrokerAsync(leader);
        await LocalCluster.WaitUntilAsync(async () => (await cluster.MetadataAsync(third, "sq")).Topics.Single().Partitions.Single().LeaderId == third,
            TimeSpan.FromSeconds(30), "the third broker leads sq-0");
        Assert.Equal(third, await FindAsync(cluster, third, key.CoordinatorKey, 2));

        // A new member bootstrapped at the third broker gets only the released records, on their
        // second delivery; the accepted ones are not delivered again.
        await LocalCluster.WaitUntilAsync(async () =>
        {
            try { await JoinAsync(cluster, third, group, "n", "sq"); return true; }
            catch (Xunit.Sdk.XunitException) { return false; }
        }, TimeSpan.FromSeconds(30), "joined after the failover");
        await using (var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(third)))
        {
            List<(long, short)> got = [];
            // Epoch 0 each time: a fetch answered with an error (state still loading) is simply retried.
            for (var sw = Stopwatch.StartNew(); got.Count == 0 && sw.Elapsed < TimeSpan.FromSeconds(30);)
            {
                var r = await FetchAsync(c, group, "n", 0, topicId);
                if (r.ErrorCode != 0 || r.Responses.SelectMany(t => t.Partitions).Any(p => p.ErrorCode != 0)) { await Task.Delay(200); continue; }
                got = Acquired(r);
            }
            Assert.Equal(Enumerable.Range(5, 5).Select(i => ((long)i, (short)2)).ToList(), got);
        }
    }
}
