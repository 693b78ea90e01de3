using System.Text;
using System.Text.Json.Nodes;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Records;
using Samsa.Keeper.Client;
using Xunit;

namespace Samsa.Cluster.Tests;

public sealed class KeeperConfigChangeTests(KeeperServer server) : ConfigChangeTests(server), IClassFixture<KeeperServer>;

public sealed class ApacheZooKeeperConfigChangeTests(ApacheZooKeeperServer server) : ConfigChangeTests(server), IClassFixture<ApacheZooKeeperServer>;

/// <summary>Config changes in ZooKeeper mode, as upstream kept them: the entity under /config/topics
/// or /config/brokers plus a /config/changes notification; every broker applies them, whichever
/// broker (or zkCli-style tool) wrote them, and old notifications are purged.</summary>
public abstract class ConfigChangeTests(ICoordinationServer server)
{
    private const short MessageTooLarge = 10, InvalidConfig = 40, InvalidRequest = 42;
    private const sbyte TopicResource = 2, BrokerResource = 4;

    private string Server
    {
        get
        {
            Assert.SkipWhen(server.SkipReason is not null, server.SkipReason ?? "");
            return server.Address!;
        }
    }

    [Fact]
    public async Task ATopicConfigAlteredOnOneBrokerIsEnforcedByTheLeaderOnAnother()
    {
        await using var cluster = await LocalCluster.StartAsync(Server, 3);
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.Bootstrap(1) }).Build())
            await admin.CreateTopicsAsync([new TopicSpecification { Name = "limits", NumPartitions = 1, ReplicationFactor = 1 }]);
        int leader = (await cluster.LedMetadataAsync(1, "limits", 1)).Topics[0].Partitions[0].LeaderId;
        int other = new[] { 1, 2, 3 }.First(b => b != leader);
        var big = new byte[4000];
        Assert.Equal(0, await ProduceAsync(cluster, leader, "limits", big));

        await using (var wire = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(other)))
        {
            var altered = await wire.SendAsync<AlterConfigsResponse>(AlterConfigs(TopicResource, "limits", ("max.message.bytes", "1024")), 1);
            Assert.Equal(0, altered!.Responses[0].ErrorCode);
        }
        await using var zk = await cluster.ZooKeeperAsync();
        Assert.Equal("1024", (string)(await LocalCluster.ReadJsonAsync(zk, "/config/topics/limits"))["config"]!["max.message.bytes"]!);
        Assert.Contains(await NotificationsAsync(zk), n => n == "topics/limits");

        // The leader applied it from ZooKeeper: the same 4000-byte batch is now too large there.
        await LocalCluster.WaitUntilAsync(async () => await ProduceAsync(cluster, leader, "limits", big) == MessageTooLarge,
            TimeSpan.FromSeconds(5), $"broker {leader} refuses 4000-byte batches");
        Assert.Equal(0, await ProduceAsync(cluster, leader, "limits", new byte[100]));
        foreach (int id in new[] { 1, 2, 3 })
            await LocalCluster.WaitUntilAsync(async () => await DescribeAsync(cluster, id, TopicResource, "limits", "max.message.bytes") == ("1024", 1),
                TimeSpan.FromSeconds(5), $"broker {id} describes max.message.bytes=1024 as a topic override");
    }

    [Fact]
    public async Task DynamicBrokerConfigsAreKeptInZooKeeperAndAppliedByEveryBroker()
    {
        await using var cluster = await LocalCluster.StartAsync(Server, 3);
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.Bootstrap(1) }).Build())
            await admin.CreateTopicsAsync([new TopicSpecification { Name = "plain", NumPartitions = 3, ReplicationFactor = 1 }]);
        var leaders = (await cluster.LedMetadataAsync(1, "plain", 3)).Topics[0].Partitions.ToDictionary(p => p.LeaderId, p => p.PartitionIndex);
        Assert.Equal([1, 2, 3], leaders.Keys.Order());
        var big = new byte[4000];
        await using var zk = await cluster.ZooKeeperAsync();

        // The cluster default, set through broker 1, limits the topic (no override) on all three.
        await using (var wire = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(1)))
        {
            var altered = await wire.SendAsync<IncrementalAlterConfigsResponse>(new IncrementalAlterConfigsRequest
            {
                Resources = [new() { ResourceType = BrokerResource, ResourceName = "", Configs =
                [
                    new() { Name = "message.max.bytes", ConfigOperation = 0, Value = "2000" },
                    // The replication throttle the reassignment code reads changes at run time too.
                    new() { Name = "follower.replication.throttled.rate", ConfigOperation = 0, Value = "12345" },
                ] }],
            }, 1);
            Assert.Equal(0, altered!.Responses[0].ErrorCode);
            // A key upstream cannot change at run time: INVALID_REQUEST (ConfigAdminManager.preprocess), and nothing is written.
            var readOnly = await wire.SendAsync<AlterConfigsResponse>(AlterConfigs(BrokerResource, "", ("log.dirs", "/tmp/elsewhere")), 1);
            Assert.Equal(InvalidRequest, readOnly!.Responses[0].ErrorCode);
            Assert.Contains("Cannot update these configs dynamically", readOnly.Responses[0].ErrorMessage);
        }
        var stored = await LocalCluster.ReadJsonAsync(zk, "/config/brokers/<default>");
        Assert.Equal(1, (int)stored["version"]!);
        Assert.Equal(["follower.replication.throttled.rate", "message.max.bytes"], stored["config"]!.AsObject().Select(kv => kv.Key).Order());
        Assert.Equal("2000", (string)stored["config"]!["message.max.bytes"]!);
        Assert.Contains(await NotificationsAsync(zk), n => n == "brokers/<default>");
        foreach (var (id, partition) in leaders)
            await LocalCluster.WaitUntilAsync(async () => await ProduceAsync(cluster, id, "plain", big, partition) == MessageTooLarge,
                TimeSpan.FromSeconds(5), $"broker {id} applies the cluster default message.max.bytes");

        foreach (int id in new[] { 1, 2, 3 })
            await LocalCluster.WaitUntilAsync(() => Task.FromResult((long)cluster[id].Config.Get("follower.replication.throttled.rate")! == 12345),
                TimeSpan.FromSeconds(5), $"broker {id} throttles followers at 12345 B/s");

        // A per-broker override on broker 3 beats the default there only.
        await using (var wire = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(3)))
        {
            var altered = await wire.SendAsync<AlterConfigsResponse>(AlterConfigs(BrokerResource, "3", ("message.max.bytes", "100000")), 1);
            Assert.Equal(0, altered!.Responses[0].ErrorCode);
        }
        Assert.Equal("100000", (string)(await LocalCluster.ReadJsonAsync(zk, "/config/brokers/3"))["config"]!["message.max.bytes"]!);
        Assert.Equal(0, await ProduceAsync(cluster, 3, "plain", big, leaders[3]));
        Assert.Equal(MessageTooLarge, await ProduceAsync(cluster, 2, "plain", big, leaders[2]));
        Assert.Equal(("100000", 2), await DescribeAsync(cluster, 3, BrokerResource, "3", "message.max.bytes"));   // DYNAMIC_BROKER_CONFIG
        Assert.Equal(("2000", 3), await DescribeAsync(cluster, 2, BrokerResource, "2", "message.max.bytes"));    // DYNAMIC_DEFAULT_BROKER_CONFIG

        // A broker that starts later reads both from ZooKeeper.
        await cluster.StopBrokerAsync(3);
        await cluster.StartBrokerAsync(3);
        Assert.Equal(("100000", 2), await DescribeAsync(cluster, 3, BrokerResource, "3", "message.max.bytes"));
        Assert.Equal(("2000", 3), await DescribeAsync(cluster, 3, BrokerResource, "", "message.max.bytes"));
    }

    [Fact]
    public async Task ConfigsWrittenStraightIntoZooKeeperArePickedUp()
    {
        await using var cluster = await LocalCluster.StartAsync(Server, 3);
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.Bootstrap(2) }).Build())
            await admin.CreateTopicsAsync([new TopicSpecification { Name = "raw", NumPartitions = 3, ReplicationFactor = 1 }]);
        await cluster.LedMetadataAsync(1, "raw", 3);
        await using var zk = await cluster.ZooKeeperAsync();

        // As kafka-configs.sh --zookeeper did: the entity znode, then a sequential notification
        // (a version 1 notification for the topic, version 2 for the broker default).
        await zk.SetDataAsync("/config/topics/raw", Encoding.UTF8.GetBytes("""{"version":1,"config":{"cleanup.policy":"compact","retention.ms":"60000"}}"""));
        await zk.CreateAsync("/config/changes/config_change_", Encoding.UTF8.GetBytes("""{"version":1,"entity_type":"topics","entity_name":"raw"}"""),
            Acls.OpenAclUnsafe, CreateMode.PersistentSequential);
        await zk.CreateAsync("/config/brokers/<default>", Encoding.UTF8.GetBytes("""{"version":1,"config":{"log.retention.bytes":"123456789"}}"""), Acls.OpenAclUnsafe);
        var created = await zk.CreateAsync("/config/changes/config_change_", Encoding.UTF8.GetBytes("""{"version":2,"entity_path":"brokers/<default>"}"""),
            Acls.OpenAclUnsafe, CreateMode.PersistentSequential);
        Assert.Matches(@"^/config/changes/config_change_\d{10}$", created);

        foreach (int id in new[] { 1, 2, 3 })
        {
            await LocalCluster.WaitUntilAsync(async () => await DescribeAsync(cluster, id, TopicResource, "raw", "cleanup.policy") == ("compact", 1)
                    && await DescribeAsync(cluster, id, TopicResource, "raw", "retention.ms") == ("60000", 1)
                    && await DescribeAsync(cluster, id, TopicResource, "raw", "retention.bytes") == ("123456789", 3),
                TimeSpan.FromSeconds(5), $"broker {id} applied the raw topic and broker-default configs");
        }
        // The compacted topic now refuses keyless records on its leaders (INVALID_RECORD).
        var md = await cluster.LedMetadataAsync(1, "raw", 3);
        foreach (var p in md.Topics[0].Partitions)
            Assert.Equal(87, await ProduceAsync(cluster, p.LeaderId, "raw", [1, 2, 3], p.PartitionIndex));
    }

    [Fact]
    public async Task NotificationsOlderThanTheExpiryArePurged()
    {
        await using var cluster = await LocalCluster.StartAsync(Server, 3);
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.Bootstrap(1) }).Build())
            await admin.CreateTopicsAsync([new TopicSpecification { Name = "purge", NumPartitions = 1, ReplicationFactor = 1 }]);
        await cluster.LedMetadataAsync(2, "purge", 1);
        await using var zk = await cluster.ZooKeeperAsync();
        await using (var wire = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(1)))
        {
            foreach (var v in new[] { "1000", "2000" })
                Assert.Equal(0, (await wire.SendAsync<AlterConfigsResponse>(AlterConfigs(TopicResource, "purge", ("retention.ms", v)), 1))!.Responses[0].ErrorCode);
        }
        var old = await zk.GetChildrenAsync("/config/changes");
        Assert.Equal(2, old.Count);
        // A fresh notification does not purge young ones (upstream expiry: 15 minutes).
        await using (var wire = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(2)))
            Assert.Equal(0, (await wire.SendAsync<AlterConfigsResponse>(AlterConfigs(TopicResource, "purge", ("retention.ms", "3000")), 1))!.Responses[0].ErrorCode);
        await Task.Delay(300);
        Assert.Equal(3, (await zk.GetChildrenAsync("/config/changes")).Count);

        // With a 1 s expiry, the next change makes the brokers delete the older notifications and
        // keep the new one.
        foreach (int id in new[] { 1, 2, 3 }) cluster[id].Cluster!.ConfigChangeExpiration = TimeSpan.FromSeconds(1);
        await Task.Delay(1500);
        await using (var wire = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(3)))
            Assert.Equal(0, (await wire.SendAsync<AlterConfigsResponse>(AlterConfigs(TopicResource, "purge", ("retention.ms", "4000")), 1))!.Responses[0].ErrorCode);
        List<string> left = [];
        await LocalCluster.WaitUntilAsync(async () => (left = await zk.GetChildrenAsync("/config/changes")).Count == 1, TimeSpan.FromSeconds(5),
            "the expired notifications are deleted");
        Assert.True(string.CompareOrdinal(left[0], old.Max()) > 0, $"the newest notification stays: {left[0]}");
        Assert.Equal("topics/purge", (string)(await LocalCluster.ReadJsonAsync(zk, "/config/changes/" + left[0]))["entity_path"]!);
    }

    private static AlterConfigsRequest AlterConfigs(sbyte type, string name, params (string Name, string Value)[] configs) => new()
    {
        Resources = [new() { ResourceType = type, ResourceName = name, Configs = configs.Select(c => new AlterConfigsRequest.AlterableConfig { Name = c.Name, Value = c.Value }).ToList() }],
    };

    private static async Task<List<string>> NotificationsAsync(KeeperClient zk)
    {
        var result = new List<string>();
        foreach (var child in await zk.GetChildrenAsync("/config/changes"))
        {
            Assert.Matches(@"^config_change_\d{10}$", child);
            var o = await LocalCluster.ReadJsonAsync(zk, "/config/changes/" + child);
            Assert.Equal(2, (int)o["version"]!);
            result.Add((string)o["entity_path"]!);
        }
        return result;
    }

    /// <summary>The error code of a one-record acks=all produce straight to one broker.</summary>
    private static async Task<short> ProduceAsync(LocalCluster cluster, int broker, string topic, byte[] value, int partition = 0)
    {
        await using var wire = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(broker));
        var r = await wire.SendAsync<ProduceResponse>(new ProduceRequest
        {
            Acks = -1, TimeoutMs = 5000,
            TopicData = [new() { Name = topic, PartitionData = [new() { Index = partition, Records = RecordBatchBuilder.Build([(null, value)], DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()) }] }],
        }, 9);
        return r!.Responses[0].PartitionResponses[0].ErrorCode;
    }

    /// <summary>One config's value and source (1 = topic override, 2 = dynamic per-broker,
    /// 3 = dynamic cluster default, 4 = static, 5 = default) as DescribeConfigs v4 on one broker answers it.</summary>
    private static async Task<(string Value, int Source)> DescribeAsync(LocalCluster cluster, int broker, sbyte type, string name, string key)
    {
        await using var wire = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(broker));
        var r = await wire.SendAsync<DescribeConfigsResponse>(new DescribeConfigsRequest
        {
            Resources = [new() { ResourceType = type, ResourceName = name, ConfigurationKeys = [key] }],
        }, 4);
        var result = r!.Results[0];
        Assert.Equal(0, result.ErrorCode);
        var entry = Assert.Single(result.Configs);
        return (entry.Value ?? "(null)", entry.ConfigSource);
    }
}
