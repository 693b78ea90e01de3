using System.Diagnostics;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Protocol.Messages;
using Xunit;

namespace Samsa.Cluster.Tests;

public sealed class KeeperShareMembershipClusterTests(KeeperServer server) : ShareMembershipClusterTests(server), IClassFixture<KeeperServer>;

/// <summary>Share-group membership in __consumer_offsets (KIP-932 share group records) on three
/// brokers: the group coordinator's broker crashes, the broker that takes its __consumer_offsets
/// partition over replays the group, and the members go on — same epochs and assignments, their
/// share sessions on the partition leader untouched — seen from a broker that is neither the
/// coordinator nor the partition leader.</summary>
public abstract class ShareMembershipClusterTests(ICoordinationServer server)
{
    private string Server
    {
        get
        {
            Assert.SkipWhen(server.SkipReason is not null, server.SkipReason ?? "");
            return server.Address!;
        }
    }

    private static async Task<int> FindAsync(LocalCluster cluster, int via, string key, int not = -1)
    {
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(via));
        for (var sw = Stopwatch.StartNew(); ; await Task.Delay(100))
        {
            var r = (await c.SendAsync<FindCoordinatorResponse>(new FindCoordinatorRequest { KeyType = 0, CoordinatorKeys = [key] }, 6))!;
            var k = r.Coordinators.Single();
            if (k.ErrorCode == 0 && k.NodeId != not) return k.NodeId;
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(40), $"no coordinator for {key}: {k.ErrorCode} {k.NodeId}");
        }
    }

    private static async Task<ShareGroupHeartbeatResponse> HeartbeatAsync(KafkaWireClient c, string group, string member, int epoch, params string[] topics) =>
        (await c.SendAsync<ShareGroupHeartbeatResponse>(new ShareGroupHeartbeatRequest
        {
            GroupId = group, MemberId = member, MemberEpoch = epoch, SubscribedTopicNames = topics.Length > 0 ? [.. topics] : null,
        }, 1))!;

    private static async Task<ShareGroupDescribeResponse.DescribedGroup> DescribeAsync(KafkaWireClient c, string group) =>
        (await c.SendAsync<ShareGroupDescribeResponse>(new ShareGroupDescribeRequest { GroupIds = [group] }, 1))!.Groups.Single();

    private static string Members(ShareGroupDescribeResponse.DescribedGroup g) =>
        $"epoch {g.GroupEpoch}/{g.AssignmentEpoch} {g.GroupState}: " +
        string.Join(" ", g.Members.OrderBy(m => m.MemberId, StringComparer.Ordinal).Select(m =>
            $"{m.MemberId}@{m.MemberEpoch}=" + string.Join(";", m.Assignment.TopicPartitions.Select(t => $"{t.TopicName}:{string.Join(",", t.Partitions.Order())}"))));

    private static async Task<ShareFetchResponse> FetchAsync(KafkaWireClient c, string group, string member, int epoch, Guid topicId, int maxRecords) =>
        (await c.SendAsync<ShareFetchResponse>(new ShareFetchRequest
        {
            GroupId = group, MemberId = member, ShareSessionEpoch = epoch, MaxWaitMs = 2000, MinBytes = 1, MaxBytes = 1 << 20,
            MaxRecords = maxRecords, BatchSize = maxRecords,
            Topics = [new ShareFetchRequest.FetchTopic { TopicId = topicId, Partitions = [new ShareFetchRequest.FetchPartition { PartitionIndex = 0 }] }],
        }, 2))!;

    private static List<(long Offset, short DeliveryCount)> Acquired(ShareFetchResponse r) =>
        r.Responses.SelectMany(t => t.Partitions).SelectMany(p => p.AcquiredRecords)
            .SelectMany(a => Enumerable.Range(0, (int)(a.LastOffset - a.FirstOffset + 1)).Select(i => (a.FirstOffset + i, a.DeliveryCount))).ToList();

    [Fact]
    public async Task MembersKeepTheirEpochsAndAssignmentsWhenTheCoordinatorCrashes()
    {
        await using var cluster = await LocalCluster.StartAsync(Server, 3, viaProxies: true, brokerConfig: new Dictionary<string, string>
        {
            ["offsets.topic.replication.factor"] = "3", ["offsets.topic.num.partitions"] = "3",
            ["share.coordinator.state.topic.num.partitions"] = "5", ["share.auto.offset.reset"] = "earliest",
        });
        await LocalCluster.WaitUntilAsync(async () => (await cluster.MetadataAsync(1)).Brokers.Count == 3, TimeSpan.FromSeconds(10), "all brokers visible");
        // The group's coordinator first; the topic's replicas are the two other brokers (so the crash
        // below changes neither its leader nor its ISR), and the broker everything is asked through
        // first is the follower: neither coordinator nor leader.
        const string group = "sm-group";
        int coordinator = await FindAsync(cluster, 1, group);
        int leader = coordinator == 1 ? 2 : 1;
        int bootstrap = 6 - leader - coordinator;
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.Bootstrap(bootstrap) }).Build())
            await admin.CreateTopicsAsync([new TopicSpecification
            {
                Name = "sm", NumPartitions = 1, ReplicasAssignments = new Dictionary<int, List<int>> { [0] = [leader, bootstrap] },
            }]);
        await LocalCluster.WaitUntilAsync(async () =>
            (await cluster.MetadataAsync(bootstrap, "sm")).Topics.Single().Partitions.Single().LeaderId == leader, TimeSpan.FromSeconds(30), "sm led by its first replica");
        var topicId = cluster[leader].Replicas.GetTopic("sm")!.Id;
        Assert.Equal(coordinator, await FindAsync(cluster, bootstrap, group));

        string before;
        int m1Epoch;
        await using (var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(coordinator)))
        {
            var h1 = await HeartbeatAsync(c, group, "m1", 0, "sm");
            Assert.Equal(0, h1.ErrorCode);
            var h2 = await HeartbeatAsync(c, group, "m2", 0, "sm");
            Assert.Equal(0, h2.ErrorCode);
            // Both share the one partition; m1 catches up with the epoch m2's join made.
            h1 = await HeartbeatAsync(c, group, "m1", h1.MemberEpoch);
            Assert.Equal(0, h1.ErrorCode);
            m1Epoch = h1.MemberEpoch;
            before = Members(await DescribeAsync(c, group));
            Assert.Equal($"epoch {m1Epoch}/{m1Epoch} Stable: m1@{m1Epoch}=sm:0 m2@{h2.MemberEpoch}=sm:0", before);
        }
        using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = cluster.Bootstrap(bootstrap), Acks = Acks.All }).Build())
            for (int i = 0; i < 10; i++) await producer.ProduceAsync(new TopicPartition("sm", 0), new Message<Null, string> { Value = $"r{i}" });

        // m1 opens its share session on the leader and takes five records.
        await using var atLeader = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(leader));
        var first = await FetchAsync(atLeader, group, "m1", 0, topicId, 5);
        Assert.Equal(0, first.ErrorCode);
        Assert.Equal(Enumerable.Range(0, 5).Select(i => ((long)i, (short)1)).ToList(), Acquired(first));

        // The group's records reach the other replicas of its __consumer_offsets partition, then its
        // coordinator crashes.
        int offsetsPartition = Samsa.Kafka.Broker.Groups.GroupCoordinator.PartitionFor(group, 3);
        long end = cluster[coordinator].Replicas.GetPartition("__consumer_offsets", offsetsPartition)!.Log.LogEndOffset;
        await LocalCluster.WaitUntilAsync(() => Task.FromResult(
            cluster[leader].Replicas.GetPartition("__consumer_offsets", offsetsPartition)!.Log.LogEndOffset >= end
            && cluster[bootstrap].Replicas.GetPartition("__consumer_offsets", offsetsPartition)!.Log.LogEndOffset >= end),
            TimeSpan.FromSeconds(15), "group records replicated");
        await cluster.CrashBrokerAsync(coordinator);

        // The new coordinator, found through the bootstrap broker, describes the same group.
        int next = await FindAsync(cluster, bootstrap, group, not: coordinator);
        await using (var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(next)))
        {
            ShareGroupDescribeResponse.DescribedGroup? d = null;
            await LocalCluster.WaitUntilAsync(async () => (d = await DescribeAsync(c, group)).ErrorCode == 0, TimeSpan.FromSeconds(30), "group described after the failover");
            Assert.Equal(before, Members(d!));
            var listed = (await c.SendAsync<ListGroupsResponse>(new ListGroupsRequest { TypesFilter = ["share"] }, 5))!;
            Assert.Contains(listed.Groups, g => g.GroupId == group && g.GroupType == "share" && g.GroupState == "Stable");
            var described = (await c.SendAsync<DescribeGroupsResponse>(new DescribeGroupsRequest { Groups = [group] }, 6))!.Groups.Single();
            // KIP-1043: DescribeGroups knows the id as a share group, not a classic one.
            Assert.Equal(((short)Samsa.Kafka.Protocol.ErrorCode.GroupIdNotFound, $"Group {group} is not a classic group."), (described.ErrorCode, described.ErrorMessage));
            // m1 heartbeats with the epoch it had: accepted, nothing new to send (no rejoin).
            var h1 = await HeartbeatAsync(c, group, "m1", m1Epoch);
            Assert.Equal(0, h1.ErrorCode);
            Assert.Equal(m1Epoch, h1.MemberEpoch);
            Assert.Null(h1.Assignment);
        }

        // m1's share session on the leader goes on (epoch 1): it accepts 0-4 and gets 5-9.
        ShareFetchResponse second = await atLeader.SendAsync<ShareFetchResponse>(new ShareFetchRequest
        {
            GroupId = group, MemberId = "m1", ShareSessionEpoch = 1, MaxWaitMs = 2000, MinBytes = 1, MaxBytes = 1 << 20, MaxRecords = 5, BatchSize = 5,
            Topics = [new ShareFetchRequest.FetchTopic
            {
                TopicId = topicId,
                Partitions = [new ShareFetchRequest.FetchPartition
                {
                    PartitionIndex = 0,
                    AcknowledgementBatches = [new ShareFetchRequest.AcknowledgementBatch { FirstOffset = 0, LastOffset = 4, AcknowledgeTypes = [1] }],
                }],
            }],
        }, 2) ?? throw new InvalidOperationException("no answer");
        Assert.Equal(0, second.ErrorCode);
        // The acknowledgement may wait for the share coordinator if the crashed broker held the state.
        var p = second.Responses.Single().Partitions.Single();
        Assert.True(p.AcknowledgeErrorCode == 0 || p.AcknowledgeErrorCode == (short)Samsa.Kafka.Protocol.ErrorCode.CoordinatorNotAvailable,
            $"acknowledge error {p.AcknowledgeErrorCode}");
        Assert.Equal(Enumerable.Range(5, 5).Select(i => ((long)i, (short)1)).ToList(), Acquired(second));
    }
}
