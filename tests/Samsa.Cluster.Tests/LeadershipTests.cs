using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Keeper.Client;
using Xunit;

namespace Samsa.Cluster.Tests;

/// <summary>Leadership moves other than the offline election, on three in-process brokers:
/// ElectLeaders (preferred), the auto leader rebalance, the /admin/preferred_replica_election
/// znode, and controlled shutdown (the request, and a stopping broker using it).</summary>
public sealed class LeadershipTests(KeeperServer server) : IClassFixture<KeeperServer>
{
    private const short NotController = 41, PreferredLeaderNotAvailable = 80, ElectionNotNeeded = 84, UnknownTopicOrPartition = 3,
        StaleBrokerEpoch = 77, BrokerNotAvailable = 8;

    private static readonly Dictionary<string, string> NoRebalance = new() { ["auto.leader.rebalance.enable"] = "false" };

    private static async Task CreateTopicAsync(LocalCluster cluster, string name, int partitions, short rf, Dictionary<int, int[]>? assignment = null)
    {
        await LocalCluster.WaitUntilAsync(async () => (await cluster.MetadataAsync(cluster.LiveIds.First())).Brokers.Count == cluster.LiveIds.Count,
            TimeSpan.FromSeconds(10), "all brokers visible");
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(cluster.LiveIds.First()));
        var r = await c.SendAsync<CreateTopicsResponse>(new CreateTopicsRequest
        {
            TimeoutMs = 30000,
            Topics = [new CreateTopicsRequest.CreatableTopic
            {
                Name = name,
                NumPartitions = assignment is null ? partitions : -1,
                ReplicationFactor = assignment is null ? rf : (short)-1,
                Assignments = assignment?.Select(a => new CreateTopicsRequest.CreatableReplicaAssignment { PartitionIndex = a.Key, BrokerIds = a.Value.ToList() }).ToList() ?? [],
                Configs = [new CreateTopicsRequest.CreatableTopicConfig { Name = "min.insync.replicas", Value = "1" }],
            }],
        }, 5);
        Assert.Equal(0, r!.Topics[0].ErrorCode);
        await LocalCluster.WaitUntilAsync(async () =>
        {
            var md = await cluster.MetadataAsync(cluster.LiveIds.First(), name);
            return md.Topics[0].Partitions.Count == (assignment?.Count ?? partitions)
                && md.Topics[0].Partitions.All(p => p.LeaderId >= 0 && p.IsrNodes.Count == p.ReplicaNodes.Count);
        }, TimeSpan.FromSeconds(15), $"{name} fully in sync");
    }

    private static async Task<MetadataResponse.MetadataResponsePartition> PartitionAsync(LocalCluster cluster, string topic, int partition)
    {
        var md = await cluster.MetadataAsync(cluster.LiveIds.First(), topic);
        return md.Topics[0].Partitions.Single(p => p.PartitionIndex == partition);
    }

    private static async Task<int> ControllerAsync(LocalCluster cluster)
    {
        int controller = -1;
        await LocalCluster.WaitUntilAsync(async () =>
        {
            controller = (await cluster.MetadataAsync(cluster.LiveIds.First())).ControllerId;
            return cluster.LiveIds.Contains(controller) && cluster[controller].Cluster!.IsController;
        }, TimeSpan.FromSeconds(10), "a controller");
        return controller;
    }

    private static async Task<ElectLeadersResponse> ElectAsync(LocalCluster cluster, int brokerId, short version, params (string Topic, int Partition)[]? partitions)
    {
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(brokerId));
        return (await c.SendAsync<ElectLeadersResponse>(new ElectLeadersRequest
        {
            ElectionType = 0, TimeoutMs = 10000,
            TopicPartitions = partitions?.GroupBy(p => p.Topic).Select(g => new ElectLeadersRequest.TopicPartitionsData
            {
                Topic = g.Key, Partitions = g.Select(x => x.Partition).ToList(),
            }).ToList(),
        }, version))!;
    }

    private static short ErrorOf(ElectLeadersResponse r, string topic, int partition) =>
        r.ReplicaElectionResults.Single(t => t.Topic == topic).PartitionResult.Single(p => p.PartitionId == partition).ErrorCode;

    [Fact]
    public async Task ElectLeadersMovesLeadershipBackToThePreferredReplicaOnTheController()
    {
        await using var cluster = await LocalCluster.StartAsync(server.Address!, 3, brokerConfig: NoRebalance);
        await CreateTopicAsync(cluster, "pref", 1, 3);
        var before = await PartitionAsync(cluster, "pref", 0);
        int preferred = before.ReplicaNodes[0];
        Assert.Equal(preferred, before.LeaderId);

        // The preferred replica stops: leadership moves away.
        await cluster.StopBrokerAsync(preferred);
        await LocalCluster.WaitUntilAsync(async () => (await PartitionAsync(cluster, "pref", 0)).LeaderId is int l && l >= 0 && l != preferred,
            TimeSpan.FromSeconds(10), "leadership moved off the preferred replica");
        int controller = await ControllerAsync(cluster);
        Assert.Equal(PreferredLeaderNotAvailable, ErrorOf(await ElectAsync(cluster, controller, 2, ("pref", 0)), "pref", 0));

        // It returns and catches up; with auto.leader.rebalance.enable=false it stays a follower.
        await cluster.StartBrokerAsync(preferred);
        await LocalCluster.WaitUntilAsync(async () => (await PartitionAsync(cluster, "pref", 0)).IsrNodes.Count == 3, TimeSpan.FromSeconds(15), "full ISR again");
        var moved = await PartitionAsync(cluster, "pref", 0);
        Assert.NotEqual(preferred, moved.LeaderId);

        controller = await ControllerAsync(cluster);
        int other = cluster.LiveIds.First(id => id != controller);
        var notController = await ElectAsync(cluster, other, 1, ("pref", 0));
        Assert.Equal(0, notController.ErrorCode);
        Assert.Equal(NotController, ErrorOf(notController, "pref", 0));

        var elected = await ElectAsync(cluster, controller, 2, ("pref", 0), ("pref", 7), ("nosuch", 0));
        Assert.Equal(0, elected.ErrorCode);
        Assert.Equal(0, ErrorOf(elected, "pref", 0));
        Assert.Equal(UnknownTopicOrPartition, ErrorOf(elected, "pref", 7));
        Assert.Equal(UnknownTopicOrPartition, ErrorOf(elected, "nosuch", 0));
        // The answer came once the controller's own metadata had the new leader.
        var after = cluster[controller].Replicas.GetPartition("pref", 0)!;
        Assert.Equal(preferred, after.LeaderId);
        Assert.True(after.LeaderEpoch > moved.LeaderEpoch);
        await LocalCluster.WaitUntilAsync(async () => (await PartitionAsync(cluster, "pref", 0)).LeaderId == preferred, TimeSpan.FromSeconds(5), "every broker sees the preferred leader");

        // Asked again: nothing to do; for all partitions (null), such partitions are left out.
        Assert.Equal(ElectionNotNeeded, ErrorOf(await ElectAsync(cluster, controller, 0, ("pref", 0)), "pref", 0));
        var all = await ElectAsync(cluster, controller, 2, null);
        Assert.Equal(0, all.ErrorCode);
        Assert.Empty(all.ReplicaElectionResults);
    }

    [Fact]
    public async Task AnUncleanElectLeadersRevivesAPartitionWhoseIsrIsGone()
    {
        await using var cluster = await LocalCluster.StartAsync(server.Address!, 2, brokerConfig: NoRebalance);
        await CreateTopicAsync(cluster, "dead", 1, 2, new Dictionary<int, int[]> { [0] = [1, 2] });
        // Broker 2 leaves (ISR [1]), then broker 1; broker 2 returns alone, outside the ISR, and
        // with unclean.leader.election.enable=false the partition stays offline.
        await cluster.StopBrokerAsync(2);
        await LocalCluster.WaitUntilAsync(async () => (await PartitionAsync(cluster, "dead", 0)).IsrNodes is [1], TimeSpan.FromSeconds(10), "ISR [1]");
        await cluster.StopBrokerAsync(1);
        await cluster.StartBrokerAsync(2);
        await LocalCluster.WaitUntilAsync(async () => (await cluster.MetadataAsync(2)).ControllerId == 2, TimeSpan.FromSeconds(10), "broker 2 controls");
        // The controller's verdict, in ZooKeeper: Metadata already shows leader -1 while the state
        // still names the departed broker 1 (upstream's metadata cache does the same).
        await using (var zk = await cluster.ZooKeeperAsync())
            await LocalCluster.WaitUntilAsync(async () => (int)(await LocalCluster.ReadJsonAsync(zk, "/brokers/topics/dead/partitions/0/state"))["leader"]! == -1,
                TimeSpan.FromSeconds(10), "the controller marks dead-0 offline");
        Assert.Equal(-1, (await PartitionAsync(cluster, "dead", 0)).LeaderId);

        var preferred = await ElectAsync(cluster, 2, 2, ("dead", 0));
        Assert.Equal(PreferredLeaderNotAvailable, ErrorOf(preferred, "dead", 0));
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(2));
        var unclean = (await c.SendAsync<ElectLeadersResponse>(new ElectLeadersRequest
        {
            ElectionType = 1, TimeoutMs = 10000,
            TopicPartitions = [new ElectLeadersRequest.TopicPartitionsData { Topic = "dead", Partitions = [0] }],
        }, 1))!;
        Assert.Equal(0, ErrorOf(unclean, "dead", 0));
        var p = await PartitionAsync(cluster, "dead", 0);
        Assert.Equal(2, p.LeaderId);
        Assert.Equal([2], p.IsrNodes);
    }

    [Fact]
    public async Task TheAutoLeaderRebalanceGivesAReturningBrokerItsPreferredPartitionsBack()
    {
        await using var cluster = await LocalCluster.StartAsync(server.Address!, 3,
            brokerConfig: new Dictionary<string, string> { ["leader.imbalance.check.interval.seconds"] = "1" });
        await CreateTopicAsync(cluster, "bal", 3, 3);
        var md = await cluster.MetadataAsync(1, "bal");
        var preferredOf = md.Topics[0].Partitions.ToDictionary(p => p.PartitionIndex, p => p.ReplicaNodes[0]);
        Assert.All(md.Topics[0].Partitions, p => Assert.Equal(p.ReplicaNodes[0], p.LeaderId));

        int victim = preferredOf[0];
        var itsPartitions = preferredOf.Where(kv => kv.Value == victim).Select(kv => kv.Key).ToList();
        await cluster.StopBrokerAsync(victim);
        await LocalCluster.WaitUntilAsync(async () =>
        {
            var m = await cluster.MetadataAsync(cluster.LiveIds.First(), "bal");
            return m.Topics[0].Partitions.All(p => p.LeaderId >= 0 && p.LeaderId != victim);
        }, TimeSpan.FromSeconds(10), $"broker {victim} leads nothing");

        await cluster.StartBrokerAsync(victim);
        // Within the check interval (1 s here, plus 5 s after a new controller's election) of
        // catching up, it leads its preferred partitions again.
        await LocalCluster.WaitUntilAsync(async () =>
        {
            var m = await cluster.MetadataAsync(cluster.LiveIds.First(), "bal");
            return m.Topics[0].Partitions.All(p => p.LeaderId == preferredOf[p.PartitionIndex]);
        }, TimeSpan.FromSeconds(40), $"broker {victim} leads {string.Join(",", itsPartitions)} again");
        Assert.Contains("auto leader rebalance", cluster.Log());
    }

    [Fact]
    public async Task ThePreferredReplicaElectionZnodeIsCarriedOutAndDeleted()
    {
        await using var cluster = await LocalCluster.StartAsync(server.Address!, 2, brokerConfig: NoRebalance);
        await CreateTopicAsync(cluster, "znode", 1, 2);
        int preferred = (await PartitionAsync(cluster, "znode", 0)).ReplicaNodes[0];
        await cluster.StopBrokerAsync(preferred);
        await cluster.StartBrokerAsync(preferred);
        await LocalCluster.WaitUntilAsync(async () => (await PartitionAsync(cluster, "znode", 0)) is { IsrNodes.Count: 2 } p && p.LeaderId != preferred,
            TimeSpan.FromSeconds(15), "preferred replica back in the ISR as a follower");

        // What kafka-preferred-replica-election.sh --zookeeper writes.
        await using var zk = await cluster.ZooKeeperAsync();
        await zk.CreateAsync("/admin/preferred_replica_election",
            System.Text.Encoding.UTF8.GetBytes("{\"version\":1,\"partitions\":[{\"topic\":\"znode\",\"partition\":0}]}"), Acls.OpenAclUnsafe);
        await LocalCluster.WaitUntilAsync(async () => (await PartitionAsync(cluster, "znode", 0)).LeaderId == preferred, TimeSpan.FromSeconds(10), "preferred leader elected");
        await LocalCluster.WaitUntilAsync(async () => await zk.ExistsAsync("/admin/preferred_replica_election") is null, TimeSpan.FromSeconds(5), "znode deleted");
    }

    private static async Task<ControlledShutdownResponse> ControlledShutdownAsync(LocalCluster cluster, int to, int brokerId, long brokerEpoch, short version)
    {
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(to));
        return (await c.SendAsync<ControlledShutdownResponse>(new ControlledShutdownRequest { BrokerId = brokerId, BrokerEpoch = brokerEpoch }, version))!;
    }

    [Fact]
    public async Task ControlledShutdownMovesLeadershipAndReportsWhatCannotMove()
    {
        await using var cluster = await LocalCluster.StartAsync(server.Address!, 3, brokerConfig: NoRebalance);
        int controller = await ControllerAsync(cluster);
        int x = cluster.LiveIds.First(id => id != controller);          // the broker "shutting down"
        int y = cluster.LiveIds.First(id => id != controller && id != x);
        // Two partitions led by x with other replicas to take over, one (lonely) whose other
        // replica y is stopped, so x is its whole ISR.
        await CreateTopicAsync(cluster, "cs", 2, 3, new Dictionary<int, int[]> { [0] = [x, y, controller], [1] = [x, controller, y] });
        await CreateTopicAsync(cluster, "lonely", 1, 2, new Dictionary<int, int[]> { [0] = [x, y] });
        await cluster.StopBrokerAsync(y);
        await LocalCluster.WaitUntilAsync(async () => (await PartitionAsync(cluster, "lonely", 0)).IsrNodes is [var only] && only == x,
            TimeSpan.FromSeconds(10), "lonely's ISR is x alone");

        Assert.Equal(NotController, (await ControlledShutdownAsync(cluster, x, x, -1, 3)).ErrorCode);
        Assert.Equal(BrokerNotAvailable, (await ControlledShutdownAsync(cluster, controller, 99, -1, 3)).ErrorCode);
        await using var zk = await cluster.ZooKeeperAsync();
        long czxid = (await zk.ExistsAsync($"/brokers/ids/{x}"))!.Czxid;
        Assert.Equal(StaleBrokerEpoch, (await ControlledShutdownAsync(cluster, controller, x, czxid - 1, 2)).ErrorCode);

        // v0 (request header without client id) and the current epoch.
        var r = await ControlledShutdownAsync(cluster, controller, x, -1, 0);
        Assert.Equal(0, r.ErrorCode);
        Assert.Equal([("lonely", 0)], r.RemainingPartitions.Select(p => (p.TopicName, p.PartitionIndex)));
        var state = await LocalCluster.ReadJsonAsync(zk, "/brokers/topics/cs/partitions/0/state");
        Assert.Equal(controller, (int)state["leader"]!);
        state = await LocalCluster.ReadJsonAsync(zk, "/brokers/topics/cs/partitions/1/state");
        Assert.Equal(controller, (int)state["leader"]!);
        Assert.DoesNotContain(x, state["isr"]!.AsArray().Select(n => (int)n!));
        Assert.Equal(x, (int)(await LocalCluster.ReadJsonAsync(zk, "/brokers/topics/lonely/partitions/0/state"))["leader"]!);
        // x is still registered and serving: only its leaderships moved.
        Assert.Contains(x, (await cluster.MetadataAsync(controller)).Brokers.Select(b => b.NodeId));

        var again = await ControlledShutdownAsync(cluster, controller, x, czxid, 3);
        Assert.Equal(0, again.ErrorCode);
        Assert.Single(again.RemainingPartitions);
    }

    [Fact]
    public async Task AStoppingLeaderHandsItsPartitionsOverBeforeLeaving()
    {
        await using var cluster = await LocalCluster.StartAsync(server.Address!, 3, brokerConfig: NoRebalance);
        await CreateTopicAsync(cluster, "handover", 1, 3);
        var p = await PartitionAsync(cluster, "handover", 0);
        int leader = p.LeaderId;
        await using var zk = await cluster.ZooKeeperAsync();

        await cluster.StopBrokerAsync(leader);
        // As soon as the stop returned (before any broker could notice the closed session), the
        // state already names another ISR member as leader and the stopped broker is out of the ISR.
        var state = await LocalCluster.ReadJsonAsync(zk, "/brokers/topics/handover/partitions/0/state");
        int newLeader = (int)state["leader"]!;
        Assert.NotEqual(leader, newLeader);
        Assert.Contains(newLeader, p.IsrNodes);
        Assert.DoesNotContain(leader, state["isr"]!.AsArray().Select(n => (int)n!));
        Assert.Contains($"broker {leader}: controlled shutdown succeeded", cluster.Log());
    }
}
