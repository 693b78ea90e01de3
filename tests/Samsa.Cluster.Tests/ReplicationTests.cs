using System.Buffers.Binary;
using System.Text;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Protocol.Messages;
using Xunit;
using Samsa.Kafka.Protocol.Records;

namespace Samsa.Cluster.Tests;

/// <summary>Replication inside three in-process brokers on the Keeper: followers copy the
/// leader, the ISR shrinks and grows back through the partition state znode, acks=all honours
/// min.insync.replicas, and a follower's divergent tail is truncated.</summary>
public sealed class ReplicationTests(KeeperServer server) : IClassFixture<KeeperServer>
{
    private const short NotEnoughReplicas = 19;

    private static async Task<short> CreateTopicAsync(LocalCluster cluster, string name, short rf, int minIsr, bool? unclean = null, int partitions = 1)
    {
        // Every broker registered and seen before replicas are assigned.
        await LocalCluster.WaitUntilAsync(async () => (await cluster.MetadataAsync(cluster.LiveIds.First())).Brokers.Count == cluster.LiveIds.Count,
            TimeSpan.FromSeconds(10), "all brokers visible");
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(cluster.LiveIds.First()));
        var r = await c.SendAsync<CreateTopicsResponse>(new CreateTopicsRequest
        {
            TimeoutMs = 30000,
            Topics = [new CreateTopicsRequest.CreatableTopic
            {
                Name = name, NumPartitions = partitions, ReplicationFactor = rf,
                Configs = unclean is null
                    ? [new CreateTopicsRequest.CreatableTopicConfig { Name = "min.insync.replicas", Value = minIsr.ToString() }]
                    : [new CreateTopicsRequest.CreatableTopicConfig { Name = "min.insync.replicas", Value = minIsr.ToString() },
                       new CreateTopicsRequest.CreatableTopicConfig { Name = "unclean.leader.election.enable", Value = unclean.Value ? "true" : "false" }],
            }],
        }, 5);
        return r!.Topics[0].ErrorCode;
    }

    private static async Task<MetadataResponse.MetadataResponsePartition> PartitionAsync(LocalCluster cluster, string topic)
    {
        var md = await cluster.MetadataAsync(cluster.LiveIds.First(), topic);
        return md.Topics[0].Partitions[0];
    }

    // A broker may answer NOT_LEADER_OR_FOLLOWER or UNKNOWN_TOPIC_OR_PARTITION for a moment after
    // another broker's metadata named it leader (each applies the ZooKeeper view on its own);
    // clients retry both, so does this.
    private static async Task<short> ProduceAsync(LocalCluster cluster, int leader, string topic, short acks, params string[] values)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        short code;
        while ((code = await ProduceOnceAsync(cluster, leader, topic, acks, values)) is 6 or 3 && DateTime.UtcNow < deadline) await Task.Delay(50);
        return code;
    }

    private static async Task<short> ProduceOnceAsync(LocalCluster cluster, int leader, string topic, short acks, params string[] values)
    {
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(leader));
        var batch = RecordBatchBuilder.Build(values.Select(v => ((byte[]?)null, (byte[]?)Encoding.UTF8.GetBytes(v))).ToList(), DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        var r = await c.SendAsync<ProduceResponse>(new ProduceRequest
        {
            Acks = acks, TimeoutMs = 10000,
            TopicData = [new ProduceRequest.TopicProduceData { Name = topic, PartitionData = [new ProduceRequest.PartitionProduceData { Index = 0, Records = batch }] }],
        }, 9);
        return r!.Responses[0].PartitionResponses[0].ErrorCode;
    }

    private static List<string> Values(Samsa.Kafka.Broker.Log.IPartitionLog log) =>
        RecordBatch.ReadRecords(log.Read(0, int.MaxValue, log.LogEndOffset, true).Records.Span)
            .Select(r => Encoding.UTF8.GetString(r.Value!)).ToList();

    [Fact]
    public async Task FollowersFetchFromTheLeadersSegmentFilesWithZeroCopy()
    {
        var dir = Path.Combine(Path.GetTempPath(), "samsa-cluster-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using var cluster = await LocalCluster.StartAsync(server.Address!, 3, dataDir: dir);
            Assert.Equal(0, await CreateTopicAsync(cluster, "zc", 3, 3));
            await LocalCluster.WaitUntilAsync(async () => (await PartitionAsync(cluster, "zc")).IsrNodes.Count == 3, TimeSpan.FromSeconds(10), "full ISR");
            int leader = (await PartitionAsync(cluster, "zc")).LeaderId;
            // Each broker applies the ZooKeeper state itself: the leader may learn of the topic a
            // moment after another broker's metadata named it (see FINDINGS).
            await LocalCluster.WaitUntilAsync(() => Task.FromResult(cluster[leader].Replicas.GetPartition("zc", 0)?.IsLeader == true),
                TimeSpan.FromSeconds(10), "the leader serves zc-0");
            var expected = new List<string>();
            for (int round = 0; round < 10; round++)
            {
                var values = Enumerable.Range(0, 20).Select(i => $"z{round}-{i}-" + new string('x', 50 * i)).ToArray();
                Assert.Equal(0, await ProduceAsync(cluster, leader, "zc", -1, values));
                expected.AddRange(values);
            }
            foreach (int id in new[] { 1, 2, 3 })
                Assert.Equal(expected, Values(cluster[id].Replicas.GetPartition("zc", 0)!.Log));
            // Only followers fetched from the leader: their data came from its segment files.
            Assert.True(cluster[leader].FileRangeBytesSent > 0, "the leader sent followers no file ranges");
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>A follower takes a just-created partition into its fetches at once, although its Fetch
    /// for the leader's other partitions waits there for data up to replica.fetch.wait.max.ms (set
    /// far above the produce timeout here): the first acks=all write to a new topic is answered in
    /// about a round trip, not after that wait (upstream's fetcher waits it out).</summary>
    [Fact]
    public async Task ANewPartitionIsFetchedWithoutWaitingOutTheFollowersParkedFetch()
    {
        await using var cluster = await LocalCluster.StartAsync(server.Address!, 3,
            brokerConfig: new Dictionary<string, string> { ["replica.fetch.wait.max.ms"] = "25000" });
        // three partitions, one led by each broker: every follower has a fetcher parked at every leader
        Assert.Equal(0, await CreateTopicAsync(cluster, "parked", 3, 3, partitions: 3));
        await LocalCluster.WaitUntilAsync(async () => (await cluster.MetadataAsync(cluster.LiveIds.First(), "parked")).Topics[0].Partitions
            .Count(p => p.IsrNodes.Count == 3) == 3, TimeSpan.FromSeconds(10), "full ISRs");
        await Task.Delay(500);
        Assert.Equal(0, await CreateTopicAsync(cluster, "fresh", 3, 3));
        await LocalCluster.WaitUntilAsync(async () => (await PartitionAsync(cluster, "fresh")).IsrNodes.Count == 3, TimeSpan.FromSeconds(10), "full ISR");
        int leader = (await PartitionAsync(cluster, "fresh")).LeaderId;
        // acks=all within the produce's 10 s timeout (REQUEST_TIMED_OUT otherwise)
        Assert.Equal(0, await ProduceAsync(cluster, leader, "fresh", -1, "first"));
        foreach (int id in new[] { 1, 2, 3 })
            Assert.Equal(["first"], Values(cluster[id].Replicas.GetPartition("fresh", 0)!.Log));
    }

    [Fact]
    public async Task FollowersCopyTheLeaderAndTheIsrShrinksAndGrowsBack()
    {
        await using var cluster = await LocalCluster.StartAsync(server.Address!, 3);
        Assert.Equal(0, await CreateTopicAsync(cluster, "rep", 3, 3));
        await LocalCluster.WaitUntilAsync(async () => (await PartitionAsync(cluster, "rep")).IsrNodes.Count == 3, TimeSpan.FromSeconds(10), "full ISR");
        int leader = (await PartitionAsync(cluster, "rep")).LeaderId;

        Assert.Equal(0, await ProduceAsync(cluster, leader, "rep", -1, Enumerable.Range(0, 50).Select(i => $"r{i}").ToArray()));
        // acks=all answered: the high watermark passed the records, so every ISR member has them.
        Assert.Equal(50, cluster[leader].Replicas.GetPartition("rep", 0)!.HighWatermark);
        foreach (int id in new[] { 1, 2, 3 })
            Assert.Equal(Enumerable.Range(0, 50).Select(i => $"r{i}"), Values(cluster[id].Replicas.GetPartition("rep", 0)!.Log));

        // A follower goes away: the ISR shrinks below min.insync.replicas=3.
        int follower = new[] { 1, 2, 3 }.First(b => b != leader);
        await cluster.StopBrokerAsync(follower);
        await LocalCluster.WaitUntilAsync(async () => !(await PartitionAsync(cluster, "rep")).IsrNodes.Contains(follower), TimeSpan.FromSeconds(10), "ISR without the stopped follower");
        leader = (await PartitionAsync(cluster, "rep")).LeaderId;
        Assert.Equal(NotEnoughReplicas, await ProduceAsync(cluster, leader, "rep", -1, "refused"));
        Assert.Equal(0, await ProduceAsync(cluster, leader, "rep", 1, "acks-1"));

        // It comes back (empty: in-memory logs), catches up and the leader adds it to the ISR.
        await cluster.StartBrokerAsync(follower);
        await LocalCluster.WaitUntilAsync(async () => (await PartitionAsync(cluster, "rep")).IsrNodes.Contains(follower), TimeSpan.FromSeconds(15), "ISR grown back");
        Assert.Equal(51, cluster[follower].Replicas.GetPartition("rep", 0)!.Log.LogEndOffset);
        Assert.Equal(0, await ProduceAsync(cluster, leader, "rep", -1, "accepted"));
        await using var zk = await cluster.ZooKeeperAsync();
        // The leader announced each ISR change with a /isr_change_notification child and the
        // controller deleted them (as upstream's): a create and a delete per notification, none left.
        await LocalCluster.WaitUntilAsync(async () => (await zk.GetChildrenAsync("/isr_change_notification")).Count == 0,
            TimeSpan.FromSeconds(10), "the controller consumed the ISR change notifications");
        Assert.True((await zk.ExistsAsync("/isr_change_notification"))!.Cversion >= 2);
        var state = await LocalCluster.ReadJsonAsync(zk, "/brokers/topics/rep/partitions/0/state");
        Assert.Equal([1, 2, 3], state["isr"]!.AsArray().Select(n => (int)n!).Order());
    }

    [Fact]
    public async Task AFollowersDivergentTailIsTruncatedToTheLeadersLog()
    {
        await using var cluster = await LocalCluster.StartAsync(server.Address!, 3);
        Assert.Equal(0, await CreateTopicAsync(cluster, "diverge", 3, 2));
        await LocalCluster.WaitUntilAsync(async () => (await PartitionAsync(cluster, "diverge")).IsrNodes.Count == 3, TimeSpan.FromSeconds(10), "full ISR");
        var p = await PartitionAsync(cluster, "diverge");
        Assert.Equal(0, await ProduceAsync(cluster, p.LeaderId, "diverge", -1, "a", "b", "c"));
        int follower = p.ReplicaNodes.First(b => b != p.LeaderId);
        var log = cluster[follower].Replicas.GetPartition("diverge", 0)!.Log;
        await LocalCluster.WaitUntilAsync(() => Task.FromResult(log.LogEndOffset == 3), TimeSpan.FromSeconds(5), "follower caught up");

        // Records only this follower has (as a deposed leader would after a crash): offsets 3-4.
        var tail = RecordBatchBuilder.Build([(null, Encoding.UTF8.GetBytes("x")), (null, Encoding.UTF8.GetBytes("y"))], 0);
        BinaryPrimitives.WriteInt64BigEndian(tail, 3);
        BinaryPrimitives.WriteInt32BigEndian(tail.AsSpan(12), p.LeaderEpoch);
        log.AppendAsFollower(tail);
        Assert.Equal(5, log.LogEndOffset);

        // A new leader epoch begins (the controller drops the stopped third replica from the ISR
        // and bumps the epoch); the leader's next record lands at offset 3 in that epoch. Asked
        // where epoch 0 ends, the leader says 3: the follower must drop x, y and copy d.
        int third = p.ReplicaNodes.First(b => b != p.LeaderId && b != follower);
        await cluster.StopBrokerAsync(third);
        await LocalCluster.WaitUntilAsync(async () => (await PartitionAsync(cluster, "diverge")).LeaderEpoch > p.LeaderEpoch, TimeSpan.FromSeconds(10), "new leader epoch");
        Assert.Equal(p.LeaderId, (await PartitionAsync(cluster, "diverge")).LeaderId);
        Assert.Equal(0, await ProduceAsync(cluster, p.LeaderId, "diverge", 1, "d"));
        try
        {
            await LocalCluster.WaitUntilAsync(() => Task.FromResult(Values(log).SequenceEqual(["a", "b", "c", "d"])), TimeSpan.FromSeconds(10),
                "follower truncated and caught up");
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}: follower has {string.Join(",", Values(log))}\n{cluster.Log()}");
        }
        Assert.Contains($"broker {follower}: truncated diverge-0 from 5 to 3", cluster.Log());
    }

    [Fact]
    public async Task OnlyUncleanLeaderElectionLetsAReplicaOutsideTheIsrLead()
    {
        await using var cluster = await LocalCluster.StartAsync(server.Address!, 2);
        Assert.Equal(0, await CreateTopicAsync(cluster, "clean", 2, 1, unclean: false));
        Assert.Equal(0, await CreateTopicAsync(cluster, "unclean", 2, 1, unclean: true));
        foreach (var t in new[] { "clean", "unclean" })
            await LocalCluster.WaitUntilAsync(async () => (await PartitionAsync(cluster, t)).IsrNodes.Count == 2, TimeSpan.FromSeconds(10), "full ISR of " + t);
        // Both partitions end up led by broker 1 with ISR [1]; then broker 1 dies too and broker 2
        // returns alone, outside both ISRs.
        await cluster.StopBrokerAsync(2);
        foreach (var t in new[] { "clean", "unclean" })
            await LocalCluster.WaitUntilAsync(async () => (await PartitionAsync(cluster, t)) is { LeaderId: 1, IsrNodes: [1] }, TimeSpan.FromSeconds(10), t + " led by 1 alone");
        await cluster.StopBrokerAsync(1);
        await cluster.StartBrokerAsync(2);
        await LocalCluster.WaitUntilAsync(async () => (await PartitionAsync(cluster, "unclean")).LeaderId == 2, TimeSpan.FromSeconds(10), "unclean election of broker 2");
        Assert.Equal([2], (await PartitionAsync(cluster, "unclean")).IsrNodes);
        var clean = await PartitionAsync(cluster, "clean");
        Assert.Equal(-1, clean.LeaderId);
        Assert.Equal([1], clean.IsrNodes);
    }
}
