using System.Diagnostics;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Groups.Share;
using Samsa.Kafka.Protocol.Messages;
using Xunit;

namespace Samsa.Cluster.Tests;

public sealed class KeeperSharePartitionEpochClusterTests(KeeperServer server) : SharePartitionEpochClusterTests(server), IClassFixture<KeeperServer>;

/// <summary>
/// A share-partition keeps its in-flight state when a follower of its topic partition dies. The
/// ZooKeeper-mode controller shrinks the ISR and bumps the leader epoch with the same leader; the
/// share-partition leader must not read its state again for that (it would turn the member's
/// acquired records into available ones: its acknowledgements would fail with INVALID_RECORD_STATE
/// and the records go out again). Upstream KRaft does not bump the leader epoch on an ISR shrink and
/// drops a share-partition only when its broker stops leading.
/// </summary>
public abstract class SharePartitionEpochClusterTests(ICoordinationServer server)
{
    private string Server
    {
        get
        {
            Assert.SkipWhen(server.SkipReason is not null, server.SkipReason ?? "");
            return server.Address!;
        }
    }

    private static async Task<int> FindGroupCoordinatorAsync(LocalCluster cluster, int via, string key)
    {
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(via));
        for (var sw = Stopwatch.StartNew(); ; await Task.Delay(100))
        {
            var r = (await c.SendAsync<FindCoordinatorResponse>(new FindCoordinatorRequest { KeyType = 0, CoordinatorKeys = [key] }, 6))!;
            var k = r.Coordinators.Single();
            if (k.ErrorCode == 0) return k.NodeId;
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(40), $"no coordinator for {key}: {k.ErrorCode}");
        }
    }

    private static ShareFetchRequest Fetch(string group, string member, int epoch, Guid topicId, int maxRecords,
        params (long First, long Last, sbyte Type)[] acks) => new()
    {
        GroupId = group, MemberId = member, ShareSessionEpoch = epoch, MaxWaitMs = 2000, MinBytes = 1, MaxBytes = 1 << 20,
        MaxRecords = maxRecords, BatchSize = maxRecords,
        Topics = [new ShareFetchRequest.FetchTopic
        {
            TopicId = topicId,
            Partitions = [new ShareFetchRequest.FetchPartition
            {
                PartitionIndex = 0,
                AcknowledgementBatches = acks.Select(a => new ShareFetchRequest.AcknowledgementBatch { FirstOffset = a.First, LastOffset = a.Last, AcknowledgeTypes = [a.Type] }).ToList(),
            }],
        }],
    };

    private static List<(long Offset, short DeliveryCount)> Acquired(ShareFetchResponse r) =>
        r.Responses.SelectMany(t => t.Partitions).SelectMany(p => p.AcquiredRecords)
            .SelectMany(a => Enumerable.Range(0, (int)(a.LastOffset - a.FirstOffset + 1)).Select(i => (a.FirstOffset + i, a.DeliveryCount))).ToList();

    [Fact]
    public async Task SharePartitionEpochBumpWithTheSameLeaderKeepsAcquiredRecords()
    {
        await using var cluster = await LocalCluster.StartAsync(Server, 3, viaProxies: true, brokerConfig: new Dictionary<string, string>
        {
            ["offsets.topic.replication.factor"] = "3", ["offsets.topic.num.partitions"] = "3",
            ["share.coordinator.state.topic.num.partitions"] = "5", ["share.auto.offset.reset"] = "earliest",
        });
        await LocalCluster.WaitUntilAsync(async () => (await cluster.MetadataAsync(1)).Brokers.Count == 3, TimeSpan.FromSeconds(10), "all brokers visible");
        // The topic partition is led by the group's coordinator and replicated on all three brokers;
        // the broker killed later is a follower that is neither the group coordinator nor the share
        // coordinator of the share-partition, so only the follower's death is in play.
        const string group = "epoch-group";
        int leader = await FindGroupCoordinatorAsync(cluster, 1, group);
        int[] others = [.. new[] { 1, 2, 3 }.Where(b => b != leader)];
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.Bootstrap(others[0]) }).Build())
            await admin.CreateTopicsAsync([new TopicSpecification
            {
                Name = "ep", NumPartitions = 1, ReplicasAssignments = new Dictionary<int, List<int>> { [0] = [leader, .. others] },
            }]);
        await LocalCluster.WaitUntilAsync(async () =>
            (await cluster.MetadataAsync(others[0], "ep")).Topics.Single().Partitions.Single() is { LeaderId: var l, IsrNodes.Count: 3 } && l == leader,
            TimeSpan.FromSeconds(30), "ep led by its first replica with all three in sync");
        var topicId = cluster[leader].Replicas.GetTopic("ep")!.Id;
        var spKey = new SharePartitionKey(group, topicId, 0);
        int stateCoordinator = -1;
        await LocalCluster.WaitUntilAsync(() =>
        {
            var (error, id) = cluster[leader].ShareCoordinator.Locate(spKey);
            stateCoordinator = id;
            return Task.FromResult(error == Samsa.Kafka.Protocol.ErrorCode.None && id > 0);
        }, TimeSpan.FromSeconds(30), "share coordinator located");
        int victim = others.First(b => b != stateCoordinator);

        await using (var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(leader)))
        {
            ShareGroupHeartbeatResponse? h = null;
            await LocalCluster.WaitUntilAsync(async () => (h = await c.SendAsync<ShareGroupHeartbeatResponse>(new ShareGroupHeartbeatRequest
            {
                GroupId = group, MemberId = "m1", MemberEpoch = 0, SubscribedTopicNames = ["ep"],
            }, 1))!.ErrorCode == 0, TimeSpan.FromSeconds(30), "m1 joined");
        }
        using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = cluster.Bootstrap(others[0]), Acks = Acks.All }).Build())
            for (int i = 0; i < 10; i++) await producer.ProduceAsync(new TopicPartition("ep", 0), new Message<Null, string> { Value = $"r{i}" });

        // m1 acquires 0-4 on the leader.
        await using var atLeader = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(leader));
        var first = (await atLeader.SendAsync<ShareFetchResponse>(Fetch(group, "m1", 0, topicId, 5), 2))!;
        Assert.Equal(0, first.ErrorCode);
        Assert.Equal(Enumerable.Range(0, 5).Select(i => ((long)i, (short)1)).ToList(), Acquired(first));

        // A follower dies: the controller shrinks the ISR and bumps the leader epoch, same leader.
        var partition = cluster[leader].Replicas.GetPartition("ep", 0)!;
        int epochBefore = partition.LeaderEpoch;
        await cluster.CrashBrokerAsync(victim);
        await LocalCluster.WaitUntilAsync(() => Task.FromResult(
            partition.LeaderEpoch > epochBefore && partition.IsLeader && partition.IsrNodes is { } isr && !isr.Contains(victim)),
            TimeSpan.FromSeconds(30), $"ISR without broker {victim} at a new leader epoch");
        Assert.Equal((int?)leader, partition.LeaderId);

        // The same session goes on: 0-2 accepted, 3 released, 4 kept; the fetch brings 3 again (second
        // delivery) and 5-9 — not 4, which m1 still holds.
        var second = (await atLeader.SendAsync<ShareFetchResponse>(Fetch(group, "m1", 1, topicId, 10, (0, 2, 1), (3, 3, 2)), 2))!;
        Assert.Equal(0, second.ErrorCode);
        var p = second.Responses.Single().Partitions.Single();
        Assert.Equal((0, 0), (p.ErrorCode, p.AcknowledgeErrorCode));
        Assert.Equal([(3L, (short)2), (5L, 1), (6L, 1), (7L, 1), (8L, 1), (9L, 1)], Acquired(second));
        Assert.True(partition.LeaderEpoch > epochBefore);

        // Everything still held is acknowledged; the share-partition ends with nothing in flight.
        var third = (await atLeader.SendAsync<ShareFetchResponse>(Fetch(group, "m1", 2, topicId, 10, (3, 9, 1)), 2))!;
        Assert.Equal(0, third.ErrorCode);
        Assert.Equal(0, third.Responses.Single().Partitions.Single().AcknowledgeErrorCode);
        var sp = cluster[leader].Shares.Find(group, topicId, 0)!;
        lock (sp) Assert.Equal(10, sp.StartOffset);
        // The share coordinator's copy has the new leader epoch and the same start offset.
        SharePartitionSummary? summary = null;
        await LocalCluster.WaitUntilAsync(async () =>
        {
            var (error, state) = await cluster[leader].ShareCoordinator.SummaryAsync(spKey);
            summary = state is null ? null : new SharePartitionSummary(state.LeaderEpoch, state.StartOffset);
            return error == Samsa.Kafka.Protocol.ErrorCode.None && summary?.StartOffset == 10;
        }, TimeSpan.FromSeconds(15), "state written");
        Assert.Equal(partition.LeaderEpoch, summary!.LeaderEpoch);
    }

    private sealed record SharePartitionSummary(int LeaderEpoch, long StartOffset);
}
