using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Samsa.Cluster.Tests;
using Samsa.Kafka.Broker.Config;
using Xunit;
using SAcl = Samsa.Kafka.Broker.Security.Acl;

namespace Samsa.Kafka.Broker.Client216Tests;

public sealed class OneBrokerAclClientTests(SecuredSingleBroker target) : AclClientTests(target), IClassFixture<SecuredSingleBroker>;

public sealed class ThreeBrokerAclClientTests(SecuredThreeBrokers target) : AclClientTests(target), IClassFixture<SecuredThreeBrokers>;

/// <summary>
/// ACLs as a Confluent.Kafka 2.16 user sees them, as User:ANONYMOUS over PLAINTEXT against brokers
/// with authorizer.class.name=kafka.security.authorizer.AclAuthorizer and
/// allow.everyone.if.no.acl.found=false. The operator's bootstrap ACLs (what kafka-acls.sh would
/// write to ZooKeeper first) give ANONYMOUS cluster ALTER/DESCRIBE/CLUSTER_ACTION (ACL admin, and
/// replication over the PLAINTEXT inter-broker listener), DESCRIBE on every topic, group and
/// transactional id, and CREATE on topics prefixed "acl-" — nothing else.
/// </summary>
public abstract class AclClientTests(ISecuredTarget target)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private const string Anonymous = "User:ANONYMOUS";

    private static AclBinding Binding(ResourceType type, string name, AclOperation op, ResourcePatternType pattern = ResourcePatternType.Literal,
        AclPermissionType permission = AclPermissionType.Allow) => new()
    {
        Pattern = new ResourcePattern { Type = type, Name = name, ResourcePatternType = pattern },
        Entry = new AccessControlEntry { Principal = Anonymous, Host = "*", Operation = op, PermissionType = permission },
    };

    private static AclBindingFilter FilterFor(ResourceType type, string name) => new()
    {
        PatternFilter = new ResourcePatternFilter { Type = type, Name = name, ResourcePatternType = ResourcePatternType.Any },
        EntryFilter = new AccessControlEntryFilter { Operation = AclOperation.Any, PermissionType = AclPermissionType.Any },
    };

    /// <summary>Blocking client code on its own thread, failing when it outlives the deadline.</summary>
    private static async Task Within(string what, Action body)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        new Thread(() =>
        {
            try { body(); done.SetResult(); }
            catch (Exception e) { done.SetException(e); }
        }) { IsBackground = true, Name = what }.Start();
        try { await done.Task.WaitAsync(Deadline); }
        catch (TimeoutException) { Assert.Fail($"{what} did not finish within {Deadline.TotalSeconds:0} s"); }
    }

    [Fact]
    public async Task AdminClientCreatesDescribesAndDeletesAcls()
    {
        var topic = target.Target.NewTopicName("acl-admin");
        using var admin = target.Target.Admin();
        await admin.CreateAclsAsync([
            Binding(ResourceType.Topic, topic, AclOperation.Read),
            Binding(ResourceType.Topic, topic, AclOperation.Write, permission: AclPermissionType.Deny),
            Binding(ResourceType.Group, topic, AclOperation.Read, ResourcePatternType.Prefixed),
        ]);
        var described = await admin.DescribeAclsAsync(FilterFor(ResourceType.Topic, topic));
        Assert.Equal([(AclOperation.Read, AclPermissionType.Allow), (AclOperation.Write, AclPermissionType.Deny)],
            described.AclBindings.Select(b => (b.Entry.Operation, b.Entry.PermissionType)).OrderBy(x => x.Operation));
        // MATCH: every pattern that applies to a group of that name — the prefixed one and the
        // bootstrap's literal "*".
        var match = await admin.DescribeAclsAsync(new AclBindingFilter
        {
            PatternFilter = new ResourcePatternFilter { Type = ResourceType.Group, Name = topic + "-consumers", ResourcePatternType = ResourcePatternType.Match },
            EntryFilter = new AccessControlEntryFilter { Operation = AclOperation.Any, PermissionType = AclPermissionType.Any },
        });
        Assert.Equal([(topic, ResourcePatternType.Prefixed), ("*", ResourcePatternType.Literal)],
            match.AclBindings.Select(b => (b.Pattern.Name, b.Pattern.ResourcePatternType)).OrderByDescending(x => x.ResourcePatternType));

        var deleted = await admin.DeleteAclsAsync([FilterFor(ResourceType.Topic, topic), FilterFor(ResourceType.Group, topic)]);
        Assert.Equal([2, 1], deleted.Select(d => d.AclBindings.Count));
        Assert.Empty((await admin.DescribeAclsAsync(FilterFor(ResourceType.Topic, topic))).AclBindings);
        // Invalid: the cluster resource has one name.
        var invalid = await Assert.ThrowsAsync<CreateAclsException>(() => admin.CreateAclsAsync([Binding(ResourceType.Broker, "not-kafka-cluster", AclOperation.Alter)]));
        Assert.Equal(ErrorCode.InvalidRequest, invalid.Results[0].Error.Code);
    }

    [Fact]
    public async Task ProduceAndConsumeAreAllowedByAclsAndDeniedWithout()
    {
        var topic = target.Target.NewTopicName("acl-rw");
        await target.Target.CreateTopicAsync(topic, 2);
        using (var producer = target.Target.Producer<string, string>(new ProducerConfig { MessageTimeoutMs = 20000 }))
        {
            var denied = await Assert.ThrowsAsync<ProduceException<string, string>>(() => producer.ProduceAsync(topic, new Message<string, string> { Key = "k", Value = "v" }));
            Assert.Equal(ErrorCode.TopicAuthorizationFailed, denied.Error.Code);
        }
        var group = target.Target.NewGroupId();
        using (var admin = target.Target.Admin())
            await admin.CreateAclsAsync([Binding(ResourceType.Topic, topic, AclOperation.Write), Binding(ResourceType.Topic, topic, AclOperation.Read), Binding(ResourceType.Group, group, AclOperation.Read)]);
        await target.WaitForAclsAsync();
        using (var producer = target.Target.Producer<string, string>(new ProducerConfig { Acks = Acks.All }))
            for (int i = 0; i < 10; i++)
                Assert.Equal(PersistenceStatus.Persisted, (await producer.ProduceAsync(topic, new Message<string, string> { Key = $"k{i}", Value = $"v{i}" })).Status);

        await Within("consume allowed", () =>
        {
            using var consumer = target.Target.Consumer<string, string>(new ConsumerConfig { GroupId = group, AutoOffsetReset = AutoOffsetReset.Earliest, EnableAutoCommit = false });
            consumer.Subscribe(topic);
            var got = new List<string>();
            var until = DateTime.UtcNow.AddSeconds(45);
            while (got.Count < 10 && DateTime.UtcNow < until)
                if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { } r) { got.Add(r.Message.Value); consumer.Commit(r); }
            Assert.Equal(10, got.Count);
            consumer.Close();
        });

        // Another group has no READ ACL: the client sees GROUP_AUTHORIZATION_FAILED.
        var other = target.Target.NewGroupId();
        await Within("consume denied", () =>
        {
            using var consumer = target.Target.Consumer<string, string>(new ConsumerConfig { GroupId = other, AutoOffsetReset = AutoOffsetReset.Earliest });
            consumer.Subscribe(topic);
            ConsumeException? seen = null;
            var until = DateTime.UtcNow.AddSeconds(30);
            while (seen is null && DateTime.UtcNow < until)
            {
                try { consumer.Consume(TimeSpan.FromMilliseconds(200)); }
                catch (ConsumeException e) { seen = e; }
            }
            Assert.Equal(ErrorCode.GroupAuthorizationFailed, seen?.Error.Code);
        });
    }

    [Fact]
    public async Task TransactionalIdIsDeniedWithoutWriteAndCommitsWithIt()
    {
        var topic = target.Target.NewTopicName("acl-tx");
        await target.Target.CreateTopicAsync(topic, 1);
        var tid = target.Target.NewTransactionalId();
        await Within("init transactions denied", () =>
        {
            using var producer = target.Target.Producer<string, string>(new ProducerConfig { TransactionalId = tid });
            var e = Assert.ThrowsAny<KafkaException>(() => producer.InitTransactions(TimeSpan.FromSeconds(30)));
            Assert.Equal(ErrorCode.TransactionalIdAuthorizationFailed, e.Error.Code);
        });

        // With WRITE on the transactional id and the topic, the transaction commits (AddPartitionsToTxn,
        // EndTxn and the coordinator's WriteTxnMarkers to the leader, as CLUSTER_ACTION) and a
        // read_committed consumer sees it.
        var group = target.Target.NewGroupId();
        using (var admin = target.Target.Admin())
            await admin.CreateAclsAsync([Binding(ResourceType.Topic, topic, AclOperation.Write),
                Binding(ResourceType.Topic, topic, AclOperation.Read), Binding(ResourceType.Group, group, AclOperation.Read)]);
        // Confluent.Kafka's ResourceType has no TRANSACTIONAL_ID: that ACL goes by CreateAcls on the wire.
        var bootstrap = target.Target.Bootstrap.Split(':');
        await using (var wire = await Samsa.Kafka.Broker.Client.KafkaWireClient.ConnectAsync(bootstrap[0], int.Parse(bootstrap[1])))
        {
            var r = await wire.SendAsync<Samsa.Kafka.Protocol.Messages.CreateAclsResponse>(new Samsa.Kafka.Protocol.Messages.CreateAclsRequest
            {
                Creations = [new() { ResourceType = 5, ResourceName = tid, ResourcePatternType = 3, Principal = Anonymous, Host = "*", Operation = 4, PermissionType = 3 }],
            }, 3);
            Assert.Equal(0, r!.Results[0].ErrorCode);
        }
        await target.WaitForAclsAsync();
        await Within("transaction", () =>
        {
            using var producer = target.Target.Producer<string, string>(new ProducerConfig { TransactionalId = tid });
            producer.InitTransactions(TimeSpan.FromSeconds(30));
            producer.BeginTransaction();
            for (int i = 0; i < 5; i++) producer.Produce(topic, new Message<string, string> { Key = $"k{i}", Value = $"t{i}" });
            producer.CommitTransaction(TimeSpan.FromSeconds(30));
        });
        await Within("read_committed", () =>
        {
            using var consumer = target.Target.Consumer<string, string>(new ConsumerConfig
            {
                GroupId = group, AutoOffsetReset = AutoOffsetReset.Earliest, IsolationLevel = IsolationLevel.ReadCommitted, EnableAutoCommit = false,
            });
            consumer.Subscribe(topic);
            var got = new List<string>();
            var until = DateTime.UtcNow.AddSeconds(45);
            while (got.Count < 5 && DateTime.UtcNow < until)
                if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { IsPartitionEOF: false } r) got.Add(r.Message.Value);
            Assert.Equal(["t0", "t1", "t2", "t3", "t4"], got);
            consumer.Close();
        });
    }

    [Fact]
    public async Task CreatingTopicsNeedsCreateOnTheClusterOrTheTopic()
    {
        using var admin = target.Target.Admin();
        var e = await Assert.ThrowsAsync<CreateTopicsException>(() =>
            admin.CreateTopicsAsync([new TopicSpecification { Name = "denied-" + Guid.NewGuid().ToString("N")[..8], NumPartitions = 1, ReplicationFactor = 1 }]));
        Assert.Equal(ErrorCode.TopicAuthorizationFailed, e.Results[0].Error.Code);
    }
}

/// <summary>A target with an authorizer and the operator's bootstrap ACLs.</summary>
public interface ISecuredTarget
{
    KafkaTarget Target { get; }

    /// <summary>Returns once every broker has the ACLs written so far (ZooKeeper notifications).</summary>
    Task WaitForAclsAsync();
}

internal static class SecuredSetup
{
    public static readonly Dictionary<string, string> Config = new()
    {
        ["authorizer.class.name"] = "kafka.security.authorizer.AclAuthorizer",
        ["allow.everyone.if.no.acl.found"] = "false",
    };

    /// <summary>What an operator writes first with kafka-acls.sh (here straight through the authorizer).</summary>
    public static async Task BootstrapAsync(KafkaBroker broker)
    {
        static SAcl.AclBinding B(SAcl.ResourceType t, string name, SAcl.AclOperation op, SAcl.PatternType p = SAcl.PatternType.Literal) =>
            new(new SAcl.ResourcePattern(t, name, p), new SAcl.AclEntry("User:ANONYMOUS", "*", op, SAcl.AclPermissionType.Allow));
        var errors = await broker.Authorizer!.CreateAsync([
            B(SAcl.ResourceType.Cluster, "kafka-cluster", SAcl.AclOperation.ClusterAction),
            B(SAcl.ResourceType.Cluster, "kafka-cluster", SAcl.AclOperation.Alter),
            B(SAcl.ResourceType.Cluster, "kafka-cluster", SAcl.AclOperation.Describe),
            B(SAcl.ResourceType.Topic, "*", SAcl.AclOperation.Describe),
            B(SAcl.ResourceType.Group, "*", SAcl.AclOperation.Describe),
            B(SAcl.ResourceType.TransactionalId, "*", SAcl.AclOperation.Describe),
            B(SAcl.ResourceType.Topic, "acl-", SAcl.AclOperation.Create, SAcl.PatternType.Prefixed),
        ], CancellationToken.None);
        Assert.All(errors, e => Assert.Null(e));
    }
}

public sealed class SecuredSingleBroker : KafkaTarget, ISecuredTarget
{
    private KafkaBroker _broker = null!;
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "c216-acl-" + Guid.NewGuid().ToString("N"));

    public KafkaTarget Target => this;
    public override string Name => "one broker with ACLs";
    public override string Bootstrap => $"127.0.0.1:{_broker.BoundEndPoint.Port}";

    public override async ValueTask InitializeAsync()
    {
        var props = new Dictionary<string, string>(SecuredSetup.Config)
        {
            ["broker.id"] = "1",
            ["listeners"] = "PLAINTEXT://127.0.0.1:0",
            ["offsets.topic.replication.factor"] = "1",
            ["offsets.topic.num.partitions"] = "5",
            ["transaction.state.log.replication.factor"] = "1",
            ["transaction.state.log.min.isr"] = "1",
            ["transaction.state.log.num.partitions"] = "5",
            ["group.initial.rebalance.delay.ms"] = "0",
            ["log.dirs"] = _dir,
        };
        _broker = new KafkaBroker(new BrokerConfig(props));
        await _broker.StartAsync();
        await SecuredSetup.BootstrapAsync(_broker);
    }

    public Task WaitForAclsAsync() => Task.CompletedTask;

    public override async ValueTask DisposeAsync()
    {
        await _broker.DisposeAsync();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    public override async Task CreateTopicAsync(string topic, int partitions)
    {
        using (var admin = Admin())
            await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = partitions, ReplicationFactor = 1 }]);
        await WaitUntilAsync(async () => await LedPartitionsAsync(_broker.BoundEndPoint.Port, topic, partitions) is not null,
            TimeSpan.FromSeconds(10), $"{topic} has leaders");
    }

    public override string NewGroupId() => "g-" + Guid.NewGuid().ToString("N");
    public override string NewTransactionalId() => "tx-" + Guid.NewGuid().ToString("N");

    public override async Task<int[]> LeadersAsync(string topic) =>
        (await MetadataAsync(_broker.BoundEndPoint.Port, topic)).Topics[0].Partitions.OrderBy(p => p.PartitionIndex).Select(p => p.LeaderId).ToArray();
}

/// <summary>Three brokers with ACLs in the Keeper, bootstrapped at broker 1 while test topics are led
/// by brokers 2 and 3 (replication factor 2, so followers fetch with CLUSTER_ACTION).</summary>
public sealed class SecuredThreeBrokers : KafkaTarget, ISecuredTarget
{
    private const int BootstrapId = 1;
    private readonly KeeperServer _keeper = new();
    private LocalCluster _cluster = null!;

    public KafkaTarget Target => this;
    public override string Name => "three brokers with ACLs";
    public override string Bootstrap => _cluster.Bootstrap(BootstrapId);

    public override async ValueTask InitializeAsync()
    {
        await _keeper.InitializeAsync();
        _cluster = await LocalCluster.StartAsync(_keeper.Address!, 3, brokerConfig: new Dictionary<string, string>(SecuredSetup.Config)
        {
            ["offsets.topic.num.partitions"] = "6",
            ["transaction.state.log.num.partitions"] = "6",
            ["transaction.state.log.min.isr"] = "1",
            ["group.initial.rebalance.delay.ms"] = "0",
        });
        await SecuredSetup.BootstrapAsync(_cluster[2]);
        await WaitForAclsAsync();
        // Both coordinator topics exist before ids are picked (FindCoordinator creates them; the
        // bootstrap ACLs allow DESCRIBE on every group and transactional id).
        _offsetsLeaders = await CoordinatorLeadersAsync(0, "__consumer_offsets");
        _txnLeaders = await CoordinatorLeadersAsync(1, "__transaction_state");
    }

    private int[] _offsetsLeaders = [], _txnLeaders = [];

    private async Task<int[]> CoordinatorLeadersAsync(sbyte keyType, string topic)
    {
        int[]? leaders = null;
        await WaitUntilAsync(async () =>
        {
            await using (var client = await Samsa.Kafka.Broker.Client.KafkaWireClient.ConnectAsync("127.0.0.1", _cluster.Port(BootstrapId)))
                await client.SendAsync<Samsa.Kafka.Protocol.Messages.FindCoordinatorResponse>(new Samsa.Kafka.Protocol.Messages.FindCoordinatorRequest { Key = "probe", KeyType = keyType }, 3);
            foreach (int id in new[] { 1, 2, 3 })
                if (await LedPartitionsAsync(_cluster.Port(id), topic, 6) is null) return false;
            leaders = await LedPartitionsAsync(_cluster.Port(BootstrapId), topic, 6);
            return leaders is not null;
        }, TimeSpan.FromSeconds(30), $"{topic} exists with leaders");
        return leaders!;
    }

    /// <summary>An id whose coordinator is not the bootstrap broker.</summary>
    private static string Pick(string prefix, int[] leaders)
    {
        while (true)
        {
            var id = prefix + Guid.NewGuid().ToString("N");
            if (leaders[Samsa.Kafka.Broker.Groups.GroupCoordinator.PartitionFor(id, leaders.Length)] != BootstrapId) return id;
        }
    }

    public async Task WaitForAclsAsync()
    {
        // Written through a broker's authorizer: the others follow the ZooKeeper notifications.
        var expected = _cluster[2].Authorizer!.Snapshot.Sum(kv => kv.Value.Count);
        foreach (int id in new[] { 1, 2, 3 })
            await WaitUntilAsync(() => Task.FromResult(_cluster[id].Authorizer!.Snapshot.Sum(kv => kv.Value.Count) >= expected),
                TimeSpan.FromSeconds(10), $"broker {id} has the ACLs");
    }

    public override async ValueTask DisposeAsync()
    {
        await _cluster.DisposeAsync();
        await _keeper.DisposeAsync();
    }

    public override async Task CreateTopicAsync(string topic, int partitions)
    {
        using (var admin = Admin())
        {
            var assignment = Enumerable.Range(0, partitions).ToDictionary(p => p, p => p % 2 == 0 ? new List<int> { 2, 3 } : new List<int> { 3, 2 });
            await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = partitions, ReplicasAssignments = assignment }]);
        }
        await WaitUntilAsync(async () =>
        {
            foreach (int id in new[] { 1, 2, 3 })
                if (await LedPartitionsAsync(_cluster.Port(id), topic, partitions) is null) return false;
            return true;
        }, TimeSpan.FromSeconds(15), $"every broker knows the leaders of {topic}");
        Assert.DoesNotContain(BootstrapId, await LeadersAsync(topic));
    }

    public override string NewGroupId() => Pick("g-", _offsetsLeaders);
    public override string NewTransactionalId() => Pick("tx-", _txnLeaders);

    public override async Task<int[]> LeadersAsync(string topic) =>
        (await MetadataAsync(_cluster.Port(BootstrapId), topic)).Topics[0].Partitions.OrderBy(p => p.PartitionIndex).Select(p => p.LeaderId).ToArray();
}
