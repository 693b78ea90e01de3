using System.Text;
using System.Text.Json.Nodes;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Records;
using Samsa.Keeper.Client;
using Xunit;

namespace Samsa.Cluster.Tests;

public sealed class KeeperAclClusterTests(KeeperServer server) : AclClusterTests(server), IClassFixture<KeeperServer>;

public sealed class ApacheZooKeeperAclClusterTests(ApacheZooKeeperServer server) : AclClusterTests(server), IClassFixture<ApacheZooKeeperServer>;

/// <summary>
/// ACLs in ZooKeeper mode as upstream's AclAuthorizer keeps them: bootstrapped with raw znodes the
/// way kafka-acls.sh --authorizer-properties zookeeper.connect=… writes them, created through one
/// broker and enforced by another, and replication over a PLAINTEXT inter-broker listener working
/// only with CLUSTER_ACTION for User:ANONYMOUS (upstream's documented requirement).
/// </summary>
public abstract class AclClusterTests(ICoordinationServer server)
{
    private const short TopicAuthorizationFailed = 29;
    private const sbyte Topic = 2, Cluster = 4, Literal = 3, Prefixed = 4;
    private const sbyte Any = 1, All = 2, Read = 3, Write = 4, Create = 5, Alter = 7, Describe = 8, ClusterAction = 9, Allow = 3;

    private static readonly Dictionary<string, string> Secured = new()
    {
        ["authorizer.class.name"] = "kafka.security.authorizer.AclAuthorizer",
        ["allow.everyone.if.no.acl.found"] = "false",
    };

    private string Server
    {
        get
        {
            Assert.SkipWhen(server.SkipReason is not null, server.SkipReason ?? "");
            return server.Address!;
        }
    }

    /// <summary>What kafka-acls.sh writes (Jackson's key order): the resource znode, then a notification.</summary>
    private static async Task WriteRawAsync(KeeperClient zk, string path, string json, string changePath, string change)
    {
        foreach (var p in ParentsOf(path))
            try { await zk.CreateAsync(p, null, Acls.OpenAclUnsafe); } catch (KeeperException) { }
        await zk.CreateAsync(path, Encoding.UTF8.GetBytes(json), Acls.OpenAclUnsafe);
        try { await zk.CreateAsync(changePath, null, Acls.OpenAclUnsafe); } catch (KeeperException) { }
        await zk.CreateAsync(changePath + "/acl_changes_", Encoding.UTF8.GetBytes(change), Acls.OpenAclUnsafe, CreateMode.PersistentSequential);
    }

    private static IEnumerable<string> ParentsOf(string path)
    {
        for (int i = path.IndexOf('/', 1); i > 0; i = path.IndexOf('/', i + 1)) yield return path[..i];
    }

    private static string Entry(string op) => $$"""{"host":"*","permissionType":"Allow","operation":"{{op}}","principal":"User:ANONYMOUS"}""";

    private static async Task<short> ProduceAsync(LocalCluster cluster, int broker, string topic, short acks = -1)
    {
        await using var wire = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(broker));
        var r = await wire.SendAsync<ProduceResponse>(new ProduceRequest
        {
            Acks = acks, TimeoutMs = 5000,
            TopicData = [new() { Name = topic, PartitionData = [new() { Index = 0, Records = RecordBatchBuilder.Build([(null, new byte[10])], DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()) }] }],
        }, 9);
        return r!.Responses[0].PartitionResponses[0].ErrorCode;
    }

    private static async Task<short> FollowerFetchAsync(LocalCluster cluster, int leader, int asReplica, string topic)
    {
        await using var wire = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(leader));
        var r = await wire.SendAsync<FetchResponse>(new FetchRequest
        {
            ReplicaId = asReplica, MaxWaitMs = 0, MinBytes = 0, MaxBytes = 1 << 20, SessionEpoch = -1,
            Topics = [new() { Topic = topic, Partitions = [new() { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20 }] }],
        }, 11);
        return r!.Responses[0].Partitions[0].ErrorCode;
    }

    [Fact]
    public async Task RawZnodesBootstrapAclsAndAclsCreatedAtOneBrokerAreEnforcedByAnother()
    {
        await using var cluster = await LocalCluster.StartAsync(Server, 3, brokerConfig: Secured);
        await using var zk = await cluster.ZooKeeperAsync();
        // As `kafka-acls.sh --authorizer-properties zookeeper.connect=… --add --allow-principal User:ANONYMOUS
        // --cluster --operation ClusterAction …`: brokers replicate as ANONYMOUS over PLAINTEXT.
        await WriteRawAsync(zk, "/kafka-acl/Cluster/kafka-cluster",
            $$"""{"version":1,"acls":[{{Entry("ClusterAction")}},{{Entry("Alter")}},{{Entry("Create")}},{{Entry("Describe")}}]}""",
            "/kafka-acl-changes", "Cluster:kafka-cluster");
        await WriteRawAsync(zk, "/kafka-acl/Topic/*", $$"""{"version":1,"acls":[{{Entry("Describe")}}]}""", "/kafka-acl-changes", "Topic:*");
        foreach (int id in new[] { 1, 2, 3 })
            await LocalCluster.WaitUntilAsync(() => Task.FromResult(cluster[id].Authorizer!.Snapshot.Count == 2),
                TimeSpan.FromSeconds(10), $"broker {id} loaded the raw ACL znodes");

        await using (var wire = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(1)))
        {
            var created = await wire.SendAsync<CreateTopicsResponse>(new CreateTopicsRequest { Topics = [new() { Name = "guarded", NumPartitions = 1, ReplicationFactor = 3 }], TimeoutMs = 10000 }, 7);
            Assert.Equal(0, created!.Topics[0].ErrorCode);
        }
        int leader = (await cluster.LedMetadataAsync(1, "guarded", 1)).Topics[0].Partitions[0].LeaderId;
        int other = new[] { 1, 2, 3 }.First(b => b != leader);
        Assert.Equal(TopicAuthorizationFailed, await ProduceAsync(cluster, leader, "guarded"));

        // Created through a broker that does not lead the partition.
        await using (var wire = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(other)))
        {
            var r = await wire.SendAsync<CreateAclsResponse>(new CreateAclsRequest
            {
                Creations = [new() { ResourceType = Topic, ResourceName = "guarded", ResourcePatternType = Literal, Principal = "User:ANONYMOUS", Host = "*", Operation = Write, PermissionType = Allow }],
            }, 3);
            Assert.Equal(0, r!.Results[0].ErrorCode);
        }
        // Upstream's layout and notification format.
        var stored = await LocalCluster.ReadJsonAsync(zk, "/kafka-acl/Topic/guarded");
        Assert.Equal("""{"principal":"User:ANONYMOUS","permissionType":"Allow","operation":"Write","host":"*"}""", stored["acls"]![0]!.ToJsonString());
        var changes = await zk.GetChildrenAsync("/kafka-acl-changes");
        var data = new List<string>();
        foreach (var c in changes) data.Add(Encoding.UTF8.GetString((await zk.GetDataAsync("/kafka-acl-changes/" + c)).Data));
        Assert.Contains("TOPIC:guarded", data);

        // The leader honours it, and acks=all succeeds: followers fetch with CLUSTER_ACTION.
        await LocalCluster.WaitUntilAsync(async () => await ProduceAsync(cluster, leader, "guarded") == 0, TimeSpan.FromSeconds(10), "the leader allows the write");
        Assert.Equal(3, (await cluster.LedMetadataAsync(other, "guarded", 1)).Topics[0].Partitions[0].IsrNodes.Count);
        Assert.Equal(0, await FollowerFetchAsync(cluster, leader, other, "guarded"));

        // A prefixed ACL written raw (extended store and its JSON notification).
        await WriteRawAsync(zk, "/kafka-acl-extended/prefixed/Topic/gua", $$"""{"version":1,"acls":[{{Entry("Read")}}]}""",
            "/kafka-acl-extended-changes", """{"version":1,"resourceType":"TOPIC","name":"gua","patternType":"PREFIXED"}""");
        await LocalCluster.WaitUntilAsync(() => Task.FromResult(cluster[leader].Authorizer!.AclsOf(new(Kafka.Broker.Security.Acl.ResourceType.Topic, "gua", Kafka.Broker.Security.Acl.PatternType.Prefixed)).Count == 1),
            TimeSpan.FromSeconds(10), "the leader loaded the prefixed ACL");

        // Without CLUSTER_ACTION, replica fetches are refused as upstream (TOPIC_AUTHORIZATION_FAILED).
        await using (var wire = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(other)))
        {
            var r = await wire.SendAsync<DeleteAclsResponse>(new DeleteAclsRequest
            {
                Filters = [new() { ResourceTypeFilter = Cluster, ResourceNameFilter = null, PatternTypeFilter = Any, PrincipalFilter = null, HostFilter = null, Operation = ClusterAction, PermissionType = Any }],
            }, 3);
            Assert.Equal("User:ANONYMOUS", Assert.Single(r!.FilterResults[0].MatchingAcls).Principal);
        }
        await LocalCluster.WaitUntilAsync(async () => await FollowerFetchAsync(cluster, leader, other, "guarded") == TopicAuthorizationFailed,
            TimeSpan.FromSeconds(10), "the leader refuses replica fetches without CLUSTER_ACTION");
    }

    [Fact]
    public async Task SuperUserAnonymousReplicatesAndAclsReloadAfterRestart()
    {
        var config = new Dictionary<string, string>(Secured) { ["super.users"] = "User:ANONYMOUS" };
        await using var cluster = await LocalCluster.StartAsync(Server, 3, brokerConfig: config);
        await using (var wire = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(2)))
        {
            Assert.Equal(0, (await wire.SendAsync<CreateTopicsResponse>(new CreateTopicsRequest { Topics = [new() { Name = "r3", NumPartitions = 1, ReplicationFactor = 3 }], TimeoutMs = 10000 }, 7))!.Topics[0].ErrorCode);
            var acl = await wire.SendAsync<CreateAclsResponse>(new CreateAclsRequest
            {
                Creations = [new() { ResourceType = Topic, ResourceName = "r", ResourcePatternType = Prefixed, Principal = "User:alice", Host = "*", Operation = All, PermissionType = Allow }],
            }, 2);
            Assert.Equal(0, acl!.Results[0].ErrorCode);
        }
        int leader = (await cluster.LedMetadataAsync(1, "r3", 1)).Topics[0].Partitions[0].LeaderId;
        // Broker 1 may learn the leader before the leader itself has applied its LeaderAndIsr: wait
        // for the leader's own view (a produce before it answers UNKNOWN_TOPIC_OR_PARTITION, retriable).
        await cluster.LedMetadataAsync(leader, "r3", 1);
        Assert.Equal(0, await ProduceAsync(cluster, leader, "r3"));
        Assert.Equal(3, (await cluster.LedMetadataAsync(1, "r3", 1)).Topics[0].Partitions[0].IsrNodes.Count);
        // A broker that starts again loads every ACL from ZooKeeper.
        int restarted = new[] { 1, 2, 3 }.First(b => b != 2);
        await cluster.StopBrokerAsync(restarted);
        var again = await cluster.StartBrokerAsync(restarted);
        await LocalCluster.WaitUntilAsync(() => Task.FromResult(again.Authorizer!.Loaded), TimeSpan.FromSeconds(10), "the restarted broker loaded ACLs");
        Assert.Single(again.Authorizer!.Snapshot);
    }

    /// <summary>kafkajs 2.2.4's admin createAcls / describeAcls / deleteAcls through a broker that does
    /// not lead the topic, and its producer refused, allowed, then refused again.</summary>
    [Fact]
    public async Task KafkajsAdminAclCallsGrantAndRevokeAWrite()
    {
        var modules = Path.Combine(ClientClusterTests.RepoRoot(), "compat", "kafkajs", "node_modules");
        Assert.SkipUnless(Directory.Exists(Path.Combine(modules, "kafkajs")) && File.Exists("/usr/bin/node"),
            $"kafkajs is not installed in {modules}; tests/run-all.sh runs npm ci there");
        await using var cluster = await LocalCluster.StartAsync(Server, 3, brokerConfig: Secured);
        await using var zk = await cluster.ZooKeeperAsync();
        await WriteRawAsync(zk, "/kafka-acl/Cluster/kafka-cluster",
            $$"""{"version":1,"acls":[{{Entry("ClusterAction")}},{{Entry("Alter")}},{{Entry("Create")}},{{Entry("Describe")}}]}""",
            "/kafka-acl-changes", "Cluster:kafka-cluster");
        await WriteRawAsync(zk, "/kafka-acl/Topic/*", $$"""{"version":1,"acls":[{{Entry("Describe")}}]}""", "/kafka-acl-changes", "Topic:*");
        foreach (int id in new[] { 1, 2, 3 })
            await LocalCluster.WaitUntilAsync(() => Task.FromResult(cluster[id].Authorizer!.Snapshot.Count == 2),
                TimeSpan.FromSeconds(10), $"broker {id} loaded the raw ACL znodes");
        await using (var wire = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(1)))
            Assert.Equal(0, (await wire.SendAsync<CreateTopicsResponse>(new CreateTopicsRequest { Topics = [new() { Name = "kjs-acl", NumPartitions = 1, ReplicationFactor = 2 }], TimeoutMs = 10000 }, 7))!.Topics[0].ErrorCode);
        int leader = (await cluster.LedMetadataAsync(1, "kjs-acl", 1)).Topics[0].Partitions[0].LeaderId;
        int bootstrap = new[] { 1, 2, 3 }.First(b => b != leader);

        var lines = await ClientClusterTests.RunAsync("/usr/bin/node", [ClientClusterTests.Script("kafkajs_acls.js"), cluster.Bootstrap(bootstrap), "kjs-acl"],
            new Dictionary<string, string> { ["NODE_PATH"] = modules });
        Assert.Contains("before error TOPIC_AUTHORIZATION_FAILED", lines);
        Assert.Contains("created true", lines);
        Assert.Contains("described kjs-acl User:ANONYMOUS 4 3", lines);   // WRITE, ALLOW
        Assert.Contains("granted ok 0", lines);
        Assert.Contains("deleted 1", lines);
        Assert.Contains("revoked error TOPIC_AUTHORIZATION_FAILED", lines);
    }
}
