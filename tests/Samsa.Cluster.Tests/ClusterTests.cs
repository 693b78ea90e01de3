using System.Diagnostics;
using System.Text.Json.Nodes;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Cluster;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Records;
using Samsa.Keeper.Client;
using Samsa.Keeper.Protocol;
using Xunit;

namespace Samsa.Cluster.Tests;

public sealed class KeeperClusterTests(KeeperServer server) : ClusterTests(server), IClassFixture<KeeperServer>;

public sealed class ApacheZooKeeperClusterTests(ApacheZooKeeperServer server) : ClusterTests(server), IClassFixture<ApacheZooKeeperServer>;

/// <summary>Three brokers in ZooKeeper mode, once on the in-process Keeper and once on Debian's
/// Apache ZooKeeper 3.8: what a user of a cluster checks — topics spread over the brokers,
/// clients that reach everything from one bootstrap broker, a controller that fails over, and a
/// znode layout that upstream's tools read.</summary>
public abstract class ClusterTests(ICoordinationServer server)
{
    private const short NotLeaderOrFollower = 6;

    private string Server
    {
        get
        {
            Assert.SkipWhen(server.SkipReason is not null, server.SkipReason ?? "");
            return server.Address!;
        }
    }

    [Fact]
    public async Task CreatePartitionsWritesAnExplicitAssignmentOnOtherBrokers()
    {
        await using var cluster = await LocalCluster.StartAsync(Server, 3);
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.Bootstrap(1) }).Build();
        await admin.CreateTopicsAsync([new TopicSpecification { Name = "grow", NumPartitions = 1, ReplicationFactor = 2 }]);
        await cluster.LedMetadataAsync(1, "grow", 1);
        // Asked at broker 1, the two new partitions go exactly where the request says: brokers 2 and 3.
        await admin.CreatePartitionsAsync([new PartitionsSpecification { Topic = "grow", IncreaseTo = 3, ReplicaAssignments = [[2, 3], [3, 2]] }]);
        var md = await cluster.LedMetadataAsync(1, "grow", 3);
        var byIndex = md.Topics[0].Partitions.ToDictionary(p => p.PartitionIndex);
        Assert.Equal([2, 3], byIndex[1].ReplicaNodes);
        Assert.Equal([3, 2], byIndex[2].ReplicaNodes);
        Assert.Equal((2, 3), (byIndex[1].LeaderId, byIndex[2].LeaderId));
        // A broker that is not registered, and a replication factor other than the topic's, are refused.
        var unknown = await Assert.ThrowsAsync<CreatePartitionsException>(() =>
            admin.CreatePartitionsAsync([new PartitionsSpecification { Topic = "grow", IncreaseTo = 4, ReplicaAssignments = [[2, 9]] }]));
        Assert.Equal(ErrorCode.InvalidReplicaAssignment, unknown.Results[0].Error.Code);
        var mismatch = await Assert.ThrowsAsync<CreatePartitionsException>(() =>
            admin.CreatePartitionsAsync([new PartitionsSpecification { Topic = "grow", IncreaseTo = 4, ReplicaAssignments = [[2]] }]));
        Assert.Equal(ErrorCode.InvalidReplicaAssignment, mismatch.Results[0].Error.Code);
    }

    [Fact]
    public async Task ManyPartitionsAreSpreadOverAllBrokersAndEveryBrokerKnowsThem()
    {
        await using var cluster = await LocalCluster.StartAsync(Server, 3);
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.Bootstrap(2) }).Build())
            await admin.CreateTopicsAsync([new TopicSpecification { Name = "spread", NumPartitions = 24, ReplicationFactor = 2 }]);

        foreach (int id in new[] { 1, 2, 3 })
        {
            MetadataResponse md = null!;
            await LocalCluster.WaitUntilAsync(async () =>
            {
                md = await cluster.MetadataAsync(id, "spread");
                return md.Topics[0].ErrorCode == 0 && md.Topics[0].Partitions.Count == 24;
            }, TimeSpan.FromSeconds(10), $"broker {id} knows topic spread");
            Assert.Equal([1, 2, 3], md.Brokers.Select(b => b.NodeId).Order());
            Assert.All(md.Brokers, b => Assert.Equal(cluster.Port(b.NodeId), b.Port));
            var partitions = md.Topics[0].Partitions;
            Assert.All(partitions, p =>
            {
                Assert.Equal(0, p.ErrorCode);
                Assert.Equal(2, p.ReplicaNodes.Distinct().Count());
                Assert.Equal(p.ReplicaNodes[0], p.LeaderId);   // the preferred replica leads a new topic
                Assert.Equal(p.ReplicaNodes.Order(), p.IsrNodes.Order());
            });
            // 24 partitions over 3 brokers: the first replicas rotate, so each broker leads 8.
            Assert.Equal([8, 8, 8], partitions.GroupBy(p => p.LeaderId).Select(g => g.Count()).Order());
            Assert.Equal([16, 16, 16], partitions.SelectMany(p => p.ReplicaNodes).GroupBy(r => r).Select(g => g.Count()).Order());
        }
    }

    [Fact]
    public async Task ProduceAndConsumeThroughTheClusterFromOneBootstrapBroker()
    {
        await using var cluster = await LocalCluster.StartAsync(Server, 3);
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.Bootstrap(3) }).Build())
            await admin.CreateTopicsAsync([new TopicSpecification { Name = "orders", NumPartitions = 6, ReplicationFactor = 1 }]);

        using (var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = cluster.Bootstrap(3), Acks = Acks.All, LingerMs = 2 }).Build())
        {
            var sent = new List<Task<DeliveryResult<string, string>>>();
            for (int i = 0; i < 120; i++)
                sent.Add(producer.ProduceAsync(new Confluent.Kafka.TopicPartition("orders", i % 6), new Message<string, string> { Key = $"k{i}", Value = $"v{i}" }));
            var results = await Task.WhenAll(sent);
            Assert.All(results, r => Assert.Equal(PersistenceStatus.Persisted, r.Status));
            Assert.All(results.GroupBy(r => r.Partition.Value), g => Assert.Equal(Enumerable.Range(0, 20).Select(o => (long)o), g.Select(r => r.Offset.Value).Order()));
        }

        // Each partition's records are on its leader only; the other brokers refuse it.
        var md = await cluster.LedMetadataAsync(1, "orders", 6);
        var leaders = md.Topics[0].Partitions.ToDictionary(p => p.PartitionIndex, p => p.LeaderId);
        Assert.Equal(3, leaders.Values.Distinct().Count());
        int p0Leader = leaders[0];
        int other = new[] { 1, 2, 3 }.First(b => b != p0Leader);
        await using (var wire = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(other)))
        {
            var produce = await wire.SendAsync<ProduceResponse>(new ProduceRequest
            {
                Acks = -1, TimeoutMs = 5000,
                TopicData = [new() { Name = "orders", PartitionData = [new() { Index = 0, Records = RecordBatchBuilder.Build([(null, "x"u8.ToArray())], DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()) }] }],
            }, 9);
            Assert.Equal(NotLeaderOrFollower, produce!.Responses[0].PartitionResponses[0].ErrorCode);
            var fetch = await wire.SendAsync<FetchResponse>(new FetchRequest
            {
                MaxWaitMs = 0, MinBytes = 0, MaxBytes = 1 << 20, SessionEpoch = -1,
                Topics = [new() { Topic = "orders", Partitions = [new() { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20 }] }],
            }, 12);
            Assert.Equal(NotLeaderOrFollower, fetch!.Responses[0].Partitions[0].ErrorCode);
        }

        // A real consumer (kcat, librdkafka) bootstrapped at broker 1 reads all 120 records from
        // the three leaders.
        var lines = await KcatAsync("-C", "-b", cluster.Bootstrap(1), "-t", "orders", "-o", "beginning", "-e", "-q", "-f", "%p %k %s\\n");
        Assert.Equal(120, lines.Count);
        Assert.All(lines, l =>
        {
            var parts = l.Split(' ');
            int i = int.Parse(parts[1][1..]);
            Assert.Equal((i % 6).ToString(), parts[0]);
            Assert.Equal($"v{i}", parts[2]);
        });
    }

    [Fact]
    public async Task WhenTheControllerStopsAnotherBrokerTakesOverAndLeadersMove()
    {
        await using var cluster = await LocalCluster.StartAsync(Server, 3);
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.Bootstrap(1) }).Build())
            await admin.CreateTopicsAsync([new TopicSpecification { Name = "ha", NumPartitions = 9, ReplicationFactor = 2 }]);
        await using var zk = await cluster.ZooKeeperAsync();
        int controller = (int)(await LocalCluster.ReadJsonAsync(zk, "/controller"))["brokerid"]!;
        int epoch = int.Parse(System.Text.Encoding.UTF8.GetString((await zk.GetDataAsync("/controller_epoch")).Data));
        int survivor = new[] { 1, 2, 3 }.First(b => b != controller);
        var before = (await cluster.LedMetadataAsync(survivor, "ha", 9)).Topics[0].Partitions.ToDictionary(p => p.PartitionIndex);
        Assert.Contains(before.Values, p => p.LeaderId == controller);

        var clock = Stopwatch.StartNew();
        await cluster.StopBrokerAsync(controller);
        int newController = -1;
        await LocalCluster.WaitUntilAsync(async () =>
        {
            try { newController = (int)(await LocalCluster.ReadJsonAsync(zk, "/controller"))["brokerid"]!; }
            catch (KeeperException e) when (e.Code == Code.NoNode) { return false; }
            return newController != controller;
        }, TimeSpan.FromMilliseconds(cluster.SessionTimeoutMs), "another broker is controller");
        var elected = clock.Elapsed;
        Assert.True(elected < TimeSpan.FromMilliseconds(cluster.SessionTimeoutMs), $"new controller after {elected}");
        Assert.Equal(epoch + 1, int.Parse(System.Text.Encoding.UTF8.GetString((await zk.GetDataAsync("/controller_epoch")).Data)));

        // Every partition the stopped broker led gets its other replica as leader, one epoch later.
        Dictionary<int, MetadataResponse.MetadataResponsePartition> after = [];
        await LocalCluster.WaitUntilAsync(async () =>
        {
            var md = await cluster.MetadataAsync(survivor, "ha");
            after = md.Topics[0].Partitions.ToDictionary(p => p.PartitionIndex);
            return md.Brokers.Count == 2 && md.ControllerId == newController && after.Values.All(p => p.LeaderId != controller && p.LeaderId >= 0);
        }, TimeSpan.FromMilliseconds(cluster.SessionTimeoutMs), "leaders moved off the stopped broker");
        foreach (var (index, old) in before)
        {
            var now = after[index];
            Assert.Equal(old.ReplicaNodes, now.ReplicaNodes);
            Assert.DoesNotContain(controller, now.IsrNodes);
            if (old.LeaderId == controller)
            {
                Assert.Equal(old.ReplicaNodes.Single(r => r != controller), now.LeaderId);
                Assert.True(now.LeaderEpoch > old.LeaderEpoch);
            }
            else Assert.Equal(old.LeaderId, now.LeaderId);
            Assert.Equal(old.ReplicaNodes.Contains(controller) ? [controller] : [], now.OfflineReplicas);
        }

        // The cluster keeps serving: every partition takes writes through the survivors.
        using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = cluster.Bootstrap(survivor), Acks = Acks.All }).Build())
        {
            for (int p = 0; p < 9; p++)
            {
                var r = await producer.ProduceAsync(new Confluent.Kafka.TopicPartition("ha", p), new Message<Null, string> { Value = "after failover" });
                Assert.Equal(PersistenceStatus.Persisted, r.Status);
            }
        }

        // The stopped broker comes back: registered again and listed by every broker.
        await cluster.StartBrokerAsync(controller);
        await LocalCluster.WaitUntilAsync(async () => (await cluster.MetadataAsync(survivor)).Brokers.Count == 3,
            TimeSpan.FromSeconds(10), "the restarted broker is listed");
    }

    [Fact]
    public async Task WhenTheControllerCrashesItsSessionExpiresAndAnotherBrokerTakesOver()
    {
        const int sessionMs = 4000;
        await using var cluster = await LocalCluster.StartAsync(Server, 3, sessionTimeoutMs: sessionMs, viaProxies: true);
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.Bootstrap(2) }).Build())
            await admin.CreateTopicsAsync([new TopicSpecification { Name = "crash", NumPartitions = 6, ReplicationFactor = 3 }]);
        await using var zk = await cluster.ZooKeeperAsync();
        int controller = (int)(await LocalCluster.ReadJsonAsync(zk, "/controller"))["brokerid"]!;
        int survivor = new[] { 1, 2, 3 }.First(b => b != controller);

        var clock = Stopwatch.StartNew();
        await cluster.CrashBrokerAsync(controller);
        // Its registration outlives the crash until ZooKeeper expires the session.
        Assert.NotNull(await zk.ExistsAsync($"/brokers/ids/{controller}"));
        int newController = -1;
        await LocalCluster.WaitUntilAsync(async () =>
        {
            try { newController = (int)(await LocalCluster.ReadJsonAsync(zk, "/controller"))["brokerid"]!; }
            catch (KeeperException e) when (e.Code == Code.NoNode) { return false; }
            return newController != controller;
        }, TimeSpan.FromMilliseconds(sessionMs * 3), "another broker is controller");
        var elected = clock.Elapsed;
        // ZooKeeper expires a session between its timeout and one tick (500 ms) later; the new
        // controller follows within a view round.
        Assert.True(elected < TimeSpan.FromMilliseconds(sessionMs + 1500), $"new controller after {elected}");
        Assert.Null(await zk.ExistsAsync($"/brokers/ids/{controller}"));

        await LocalCluster.WaitUntilAsync(async () =>
        {
            var md = await cluster.MetadataAsync(survivor, "crash");
            return md.Brokers.Count == 2 && md.Topics[0].Partitions.All(p => p.LeaderId >= 0 && p.LeaderId != controller);
        }, TimeSpan.FromSeconds(5), "every partition is led by a live broker");
        using var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = cluster.Bootstrap(survivor), Acks = Acks.All }).Build();
        for (int p = 0; p < 6; p++)
            Assert.Equal(PersistenceStatus.Persisted,
                (await producer.ProduceAsync(new Confluent.Kafka.TopicPartition("crash", p), new Message<Null, string> { Value = "still serving" })).Status);
    }

    [Fact]
    public async Task TheZnodeLayoutIsUpstreams()
    {
        var racks = new Dictionary<int, string> { [1] = "rack-a", [2] = "rack-a", [3] = "rack-b" };
        await using var cluster = await LocalCluster.StartAsync(Server, 3, racks);
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.Bootstrap(1) }).Build();
        await admin.CreateTopicsAsync([new TopicSpecification
        {
            Name = "layout", NumPartitions = 6, ReplicationFactor = 2, Configs = new() { ["retention.ms"] = "3600000" },
        }]);
        await using var zk = await cluster.ZooKeeperAsync();

        Assert.Equal(["1", "2", "3"], (await zk.GetChildrenAsync("/brokers/ids")).Order());
        var (brokerData, brokerStat) = await zk.GetDataAsync("/brokers/ids/3");
        Assert.NotEqual(0, brokerStat.EphemeralOwner);
        var reg = (JsonObject)JsonNode.Parse(brokerData)!;
        Assert.Equal(["endpoints", "features", "host", "jmx_port", "listener_security_protocol_map", "port", "rack", "timestamp", "version"],
            reg.Select(kv => kv.Key).Order());
        Assert.Equal(5, (int)reg["version"]!);
        Assert.Equal("127.0.0.1", (string)reg["host"]!);
        Assert.Equal(cluster.Port(3), (int)reg["port"]!);
        Assert.Equal($"PLAINTEXT://127.0.0.1:{cluster.Port(3)}", (string)reg["endpoints"]![0]!);
        Assert.Equal(-1, (int)reg["jmx_port"]!);
        Assert.Equal("PLAINTEXT", (string)reg["listener_security_protocol_map"]!["PLAINTEXT"]!);
        Assert.Equal("rack-b", (string)reg["rack"]!);
        Assert.True(long.Parse((string)reg["timestamp"]!) > 1_600_000_000_000);

        var ctl = await LocalCluster.ReadJsonAsync(zk, "/controller");
        Assert.Equal(2, (int)ctl["version"]!);
        Assert.Contains((int)ctl["brokerid"]!, new[] { 1, 2, 3 });
        Assert.True(long.Parse((string)ctl["timestamp"]!) > 1_600_000_000_000);
        Assert.NotEqual(0, (await zk.ExistsAsync("/controller"))!.EphemeralOwner);
        int controllerEpoch = int.Parse(System.Text.Encoding.UTF8.GetString((await zk.GetDataAsync("/controller_epoch")).Data));
        Assert.True(controllerEpoch >= 1);

        // CreateTopics answered once the leaders were elected as seen by the broker that took the
        // request; the other brokers catch up from their own watch a moment later.
        MetadataResponse md = null!;
        await LocalCluster.WaitUntilAsync(async () =>
        {
            md = await cluster.MetadataAsync(2, "layout");
            return md.Topics[0].ErrorCode == 0 && md.Topics[0].Partitions.Count == 6 && md.Topics[0].Partitions.All(p => p.LeaderId >= 0);
        }, TimeSpan.FromSeconds(5), "broker 2 knows the leaders of topic layout");
        var topic = await LocalCluster.ReadJsonAsync(zk, "/brokers/topics/layout");
        Assert.Equal(3, (int)topic["version"]!);
        Assert.Equal(KafkaUuid.ToBase64(md.Topics[0].TopicId), (string)topic["topic_id"]!);
        Assert.Empty(topic["adding_replicas"]!.AsObject());
        Assert.Empty(topic["removing_replicas"]!.AsObject());
        var assignment = topic["partitions"]!.AsObject().ToDictionary(kv => int.Parse(kv.Key), kv => kv.Value!.AsArray().Select(n => (int)n!).ToList());
        Assert.Equal(Enumerable.Range(0, 6), assignment.Keys.Order());
        // Rack-aware placement: each partition has one replica in each rack.
        Assert.All(assignment.Values, r => Assert.Equal(["rack-a", "rack-b"], r.Select(b => racks[b]).Order()));
        Assert.Equal(["0", "1", "2", "3", "4", "5"], (await zk.GetChildrenAsync("/brokers/topics/layout/partitions")).Order());
        foreach (var (p, replicas) in assignment)
        {
            var state = await LocalCluster.ReadJsonAsync(zk, $"/brokers/topics/layout/partitions/{p}/state");
            Assert.Equal(["controller_epoch", "isr", "leader", "leader_epoch", "version"], state.Select(kv => kv.Key).Order());
            Assert.Equal(1, (int)state["version"]!);
            Assert.Equal(replicas[0], (int)state["leader"]!);
            Assert.Equal(0, (int)state["leader_epoch"]!);
            Assert.Equal(replicas, state["isr"]!.AsArray().Select(n => (int)n!));
            Assert.Equal(controllerEpoch, (int)state["controller_epoch"]!);
            var mp = md.Topics[0].Partitions.Single(x => x.PartitionIndex == p);
            Assert.Equal(replicas, mp.ReplicaNodes);
            Assert.Equal(replicas[0], mp.LeaderId);
        }
        var config = await LocalCluster.ReadJsonAsync(zk, "/config/topics/layout");
        Assert.Equal(1, (int)config["version"]!);
        Assert.Equal("3600000", (string)config["config"]!["retention.ms"]!);
        var clusterId = await LocalCluster.ReadJsonAsync(zk, "/cluster/id");
        Assert.Equal("1", (string)clusterId["version"]!);
        Assert.Equal(md.ClusterId, (string)clusterId["id"]!);
        foreach (var path in new[] { "/brokers/seqid", "/isr_change_notification", "/latest_producer_id_block", "/admin/delete_topics", "/config/changes", "/config/brokers", "/config/clients", "/config/users" })
            Assert.NotNull(await zk.ExistsAsync(path));

        // AlterConfigs: the entity znode and a change notification, as AdminZkClient writes them.
        // (AlterConfigs: Debian's librdkafka 2.0.2 lacks the incremental call.)
        await admin.AlterConfigsAsync(new Dictionary<ConfigResource, List<ConfigEntry>>
        {
            [new ConfigResource { Type = ResourceType.Topic, Name = "layout" }] = [new ConfigEntry { Name = "retention.ms", Value = "7200000" }],
        });
        Assert.Equal("7200000", (string)(await LocalCluster.ReadJsonAsync(zk, "/config/topics/layout"))["config"]!["retention.ms"]!);
        var changes = await zk.GetChildrenAsync("/config/changes");
        Assert.Contains(changes, c => c.StartsWith("config_change_", StringComparison.Ordinal));
        var change = await LocalCluster.ReadJsonAsync(zk, "/config/changes/" + changes.Max());
        Assert.Equal(2, (int)change["version"]!);
        Assert.Equal("topics/layout", (string)change["entity_path"]!);
        await LocalCluster.WaitUntilAsync(() => Task.FromResult(cluster[3].Replicas.GetTopic("layout")?.Configs.GetValueOrDefault("retention.ms") == "7200000"),
            TimeSpan.FromSeconds(5), "broker 3 applied the new retention.ms");

        // DeleteTopics through another broker: the controller removes every znode of the topic.
        using (var admin3 = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.Bootstrap(3) }).Build())
            await admin3.DeleteTopicsAsync(["layout"]);
        Assert.Null(await zk.ExistsAsync("/brokers/topics/layout"));
        Assert.Null(await zk.ExistsAsync("/config/topics/layout"));
        Assert.Empty(await zk.GetChildrenAsync("/admin/delete_topics"));
        await LocalCluster.WaitUntilAsync(async () => (await cluster.MetadataAsync(1)).Topics.Count == 0, TimeSpan.FromSeconds(5), "broker 1 forgot the topic");

        // zkCli.sh (Apache ZooKeeper's own shell) lists the same registrations.
        const string zkCli = "/usr/share/zookeeper/bin/zkCli.sh";
        if (server.Name == "zookeeper" && File.Exists(zkCli))
        {
            var psi = new ProcessStartInfo(zkCli) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { "-server", cluster.Server, "ls", cluster.Chroot + "/brokers/ids" }) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            var output = await p.StandardOutput.ReadToEndAsync();
            await p.WaitForExitAsync();
            Assert.Contains("[1, 2, 3]", output);
        }
    }

    private static async Task<List<string>> KcatAsync(params string[] args)
    {
        var psi = new ProcessStartInfo("kcat") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await p.WaitForExitAsync(timeout.Token);
        Assert.True(p.ExitCode == 0, $"kcat failed: {await stderr}");
        return (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
    }
}
