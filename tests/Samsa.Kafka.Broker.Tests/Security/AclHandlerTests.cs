using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Broker.Handlers;
using Samsa.Kafka.Broker.Security;
using Samsa.Kafka.Broker.Security.Acl;
using Samsa.Kafka.Broker.Tests.Handlers;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Tests.Security;

/// <summary>CreateAcls/DescribeAcls/DeleteAcls and the authorization of other handlers, with
/// requests sent as a given principal (after a wire round trip of the version under test).</summary>
public class AclHandlerTests
{
    private static readonly KafkaPrincipal Admin = KafkaPrincipal.User("admin");
    private static readonly KafkaPrincipal Alice = KafkaPrincipal.User("alice");
    private static readonly KafkaPrincipal Bob = KafkaPrincipal.User("bob");

    private static KafkaBroker NewBroker(bool authorizer = true, string? logDir = null)
    {
        var props = new Dictionary<string, string> { ["broker.id"] = "1", ["transaction.state.log.replication.factor"] = "1", ["offsets.topic.replication.factor"] = "1" };
        if (authorizer)
        {
            props["authorizer.class.name"] = "kafka.security.authorizer.AclAuthorizer";
            props["super.users"] = "User:admin";
        }
        if (logDir is not null) props["log.dirs"] = logDir;
        var b = new KafkaBroker(new BrokerConfig(props), inMemory: logDir is null);
        b.SetAdvertisedEndpointForTests("127.0.0.1", 9092);
        return b;
    }

    private static async Task<T> Send<T>(KafkaBroker broker, IKafkaMessage request, short version, KafkaPrincipal principal) where T : class, IKafkaMessage<T>
    {
        var header = new RequestHeader { RequestApiKey = request.ApiKey, RequestApiVersion = version, CorrelationId = 7, ClientId = "test" };
        short hv = ApiMessages.RequestHeaderVersion(request.ApiKey, version);
        var frame = new byte[header.Size(hv) + request.Size(version)];
        var w = new Samsa.Kafka.Protocol.Primitives.KafkaWriter(frame);
        header.Write(ref w, hv);
        request.Write(ref w, version);
        var (parsedHeader, parsed, error) = Network.KafkaConnectionHandler.Parse(frame);
        Assert.Null(error);
        var context = new RequestContext { Header = parsedHeader!, Broker = broker, Session = ConnectionSession.ForTests(principal) };
        var response = await ApiTable.Find(request.ApiKey)!.Handler(context, parsed!);
        var bytes = Network.KafkaConnectionHandler.Serialize(header, response!, version, out int length);
        return KafkaWireClient.Decode<T>(bytes[..length], request.ApiKey, version, 7)!;
    }

    private static CreateAclsRequest.AclCreation Creation(ResourceType type, string name, PatternType pattern, string principal, AclOperation op,
        AclPermissionType permission = AclPermissionType.Allow, string host = "*") => new()
    {
        ResourceType = (sbyte)type, ResourceName = name, ResourcePatternType = (sbyte)pattern, Principal = principal, Host = host,
        Operation = (sbyte)op, PermissionType = (sbyte)permission,
    };

    private static async Task Grant(KafkaBroker b, params CreateAclsRequest.AclCreation[] creations)
    {
        var r = await Send<CreateAclsResponse>(b, new CreateAclsRequest { Creations = creations.ToList() }, 3, Admin);
        Assert.All(r.Results, x => Assert.Equal(0, x.ErrorCode));
    }

    // Null name, principal and host: match any (the generated defaults are "").
    private static DescribeAclsRequest DescribeAll() => new()
    {
        ResourceTypeFilter = (sbyte)ResourceType.Any, PatternTypeFilter = (sbyte)PatternType.Any,
        ResourceNameFilter = null, PrincipalFilter = null, HostFilter = null,
        Operation = (sbyte)AclOperation.Any, PermissionType = (sbyte)AclPermissionType.Any,
    };

    [Fact]
    public async Task AclApisWithoutAnAuthorizerAnswerSecurityDisabled()
    {
        await using var b = NewBroker(authorizer: false);
        var c = await Send<CreateAclsResponse>(b, new CreateAclsRequest { Creations = [Creation(ResourceType.Topic, "t", PatternType.Literal, "User:a", AclOperation.Read)] }, 3, Alice);
        Assert.Equal((short)ErrorCode.SecurityDisabled, c.Results[0].ErrorCode);
        var d = await Send<DescribeAclsResponse>(b, DescribeAll(), 3, Alice);
        Assert.Equal(((short)ErrorCode.SecurityDisabled, "No Authorizer is configured on the broker"), (d.ErrorCode, d.ErrorMessage));
        var del = await Send<DeleteAclsResponse>(b, new DeleteAclsRequest { Filters = [new DeleteAclsRequest.DeleteAclsFilter { ResourceTypeFilter = 1, ResourceNameFilter = null, PatternTypeFilter = 1, PrincipalFilter = null, HostFilter = null, Operation = 1, PermissionType = 1 }] }, 3, Alice);
        Assert.Equal((short)ErrorCode.SecurityDisabled, del.FilterResults[0].ErrorCode);
    }

    [Fact]
    public async Task CreateDescribeDeleteAclsAsUpstream()
    {
        await using var b = NewBroker();
        // Without CLUSTER ALTER / DESCRIBE.
        var denied = await Send<CreateAclsResponse>(b, new CreateAclsRequest { Creations = [Creation(ResourceType.Topic, "t", PatternType.Literal, "User:alice", AclOperation.Read)] }, 3, Alice);
        Assert.Equal((short)ErrorCode.ClusterAuthorizationFailed, denied.Results[0].ErrorCode);
        Assert.Equal((short)ErrorCode.ClusterAuthorizationFailed, (await Send<DescribeAclsResponse>(b, DescribeAll(), 3, Alice)).ErrorCode);

        var created = await Send<CreateAclsResponse>(b, new CreateAclsRequest
        {
            Creations =
            [
                Creation(ResourceType.Topic, "orders", PatternType.Literal, "User:alice", AclOperation.Write),
                Creation(ResourceType.Topic, "orders", PatternType.Literal, "User:alice", AclOperation.Read),
                Creation(ResourceType.Group, "app-", PatternType.Prefixed, "User:alice", AclOperation.Read),
                Creation(ResourceType.Cluster, "my-cluster", PatternType.Literal, "User:alice", AclOperation.Create),
                Creation(ResourceType.Topic, "", PatternType.Literal, "User:alice", AclOperation.Read),
                Creation(ResourceType.Topic, "a/b", PatternType.Literal, "User:alice", AclOperation.Read),
                Creation(ResourceType.Topic, "x", PatternType.Literal, "alice", AclOperation.Read),
                Creation(ResourceType.Topic, "y", PatternType.Literal, "User:alice", (AclOperation)99),
            ],
        }, 3, Admin);
        var codes = created.Results.Select(r => (ErrorCode)r.ErrorCode).ToList();
        Assert.Equal([ErrorCode.None, ErrorCode.None, ErrorCode.None, ErrorCode.InvalidRequest, ErrorCode.InvalidRequest,
            ErrorCode.InvalidRequest, ErrorCode.UnknownServerError, ErrorCode.InvalidRequest], codes);
        Assert.Equal("The only valid name for the CLUSTER resource is kafka-cluster", created.Results[3].ErrorMessage);

        var all = await Send<DescribeAclsResponse>(b, DescribeAll(), 3, Admin);
        Assert.Equal(0, all.ErrorCode);
        Assert.Equal(3, all.Resources.Sum(r => r.Acls.Count));
        // v0 has no pattern type (LITERAL): prefixed patterns are not shown.
        var v0Request = DescribeAll();
        v0Request.PatternTypeFilter = (sbyte)PatternType.Literal;
        var v0 = await Send<DescribeAclsResponse>(b, v0Request, 0, Admin);
        Assert.Equal(["orders"], v0.Resources.Select(r => r.ResourceName));
        // MATCH: every pattern that applies to group "app-1".
        var match = await Send<DescribeAclsResponse>(b, new DescribeAclsRequest
        {
            ResourceTypeFilter = (sbyte)ResourceType.Group, ResourceNameFilter = "app-1", PatternTypeFilter = (sbyte)PatternType.Match,
            PrincipalFilter = null, HostFilter = null,
            Operation = (sbyte)AclOperation.Any, PermissionType = (sbyte)AclPermissionType.Any,
        }, 3, Admin);
        Assert.Equal(("app-", (sbyte)PatternType.Prefixed), (match.Resources.Single().ResourceName, match.Resources.Single().PatternType));

        var deleted = await Send<DeleteAclsResponse>(b, new DeleteAclsRequest
        {
            Filters = [new DeleteAclsRequest.DeleteAclsFilter
            {
                ResourceTypeFilter = (sbyte)ResourceType.Topic, ResourceNameFilter = "orders", PatternTypeFilter = (sbyte)PatternType.Literal,
                Operation = (sbyte)AclOperation.Read, PermissionType = (sbyte)AclPermissionType.Any,
                PrincipalFilter = null, HostFilter = null,
            }],
        }, 3, Admin);
        var m = deleted.FilterResults.Single().MatchingAcls.Single();
        Assert.Equal(("orders", "User:alice", (sbyte)AclOperation.Read), (m.ResourceName, m.Principal, m.Operation));
        Assert.Equal(2, (await Send<DescribeAclsResponse>(b, DescribeAll(), 3, Admin)).Resources.Sum(r => r.Acls.Count));
    }

    [Fact]
    public async Task ProduceFetchMetadataAndGroupsAreAuthorizedPerTopicAndGroup()
    {
        await using var b = NewBroker();
        foreach (var t in new[] { "orders", "secret" })
            Assert.Equal(0, (await Send<CreateTopicsResponse>(b, new CreateTopicsRequest { Topics = [new() { Name = t, NumPartitions = 1, ReplicationFactor = 1 }] }, 7, Admin)).Topics[0].ErrorCode);
        await Grant(b,
            Creation(ResourceType.Topic, "orders", PatternType.Literal, "User:alice", AclOperation.Write),
            Creation(ResourceType.Topic, "orders", PatternType.Literal, "User:alice", AclOperation.Read),
            Creation(ResourceType.Group, "g", PatternType.Literal, "User:alice", AclOperation.Read));

        ProduceRequest Produce(string topic) => new()
        {
            Acks = 1, TimeoutMs = 1000,
            TopicData = [new() { Name = topic, PartitionData = [new() { Index = 0, Records = HandlerFixture.Batch("v") }] }],
        };
        Assert.Equal(0, (await Send<ProduceResponse>(b, Produce("orders"), 9, Alice)).Responses[0].PartitionResponses[0].ErrorCode);
        Assert.Equal((short)ErrorCode.TopicAuthorizationFailed, (await Send<ProduceResponse>(b, Produce("orders"), 9, Bob)).Responses[0].PartitionResponses[0].ErrorCode);
        // Not disclosed whether it exists: unauthorized first.
        Assert.Equal((short)ErrorCode.TopicAuthorizationFailed, (await Send<ProduceResponse>(b, Produce("nope"), 9, Alice)).Responses[0].PartitionResponses[0].ErrorCode);
        // v13 by topic id: the id resolves to its name for the ACL check; an unknown id is
        // UNKNOWN_TOPIC_ID before authorization (upstream handleProduceRequest).
        ProduceRequest ProduceById(Guid id) => new()
        {
            Acks = 1, TimeoutMs = 1000,
            TopicData = [new() { TopicId = id, PartitionData = [new() { Index = 0, Records = HandlerFixture.Batch("w") }] }],
        };
        var ordersId = b.Replicas.GetTopic("orders")!.Id;
        Assert.Equal(0, (await Send<ProduceResponse>(b, ProduceById(ordersId), 13, Alice)).Responses[0].PartitionResponses[0].ErrorCode);
        Assert.Equal((short)ErrorCode.TopicAuthorizationFailed, (await Send<ProduceResponse>(b, ProduceById(ordersId), 13, Bob)).Responses[0].PartitionResponses[0].ErrorCode);
        Assert.Equal((short)ErrorCode.TopicAuthorizationFailed, (await Send<ProduceResponse>(b, ProduceById(b.Replicas.GetTopic("secret")!.Id), 13, Alice)).Responses[0].PartitionResponses[0].ErrorCode);
        Assert.Equal((short)ErrorCode.UnknownTopicId, (await Send<ProduceResponse>(b, ProduceById(Guid.NewGuid()), 13, Bob)).Responses[0].PartitionResponses[0].ErrorCode);

        FetchRequest Fetch(string topic) => new()
        {
            MaxWaitMs = 0, MinBytes = 0, MaxBytes = 1 << 20, SessionEpoch = -1, ReplicaId = -1,
            Topics = [new() { Topic = topic, Partitions = [new() { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20 }] }],
        };
        var fetched = (await Send<FetchResponse>(b, Fetch("orders"), 11, Alice)).Responses[0].Partitions[0];
        Assert.Equal(0, fetched.ErrorCode);
        Assert.Equal(["v", "w"], HandlerFixture.Values(fetched));
        Assert.Equal((short)ErrorCode.TopicAuthorizationFailed, (await Send<FetchResponse>(b, Fetch("orders"), 11, Bob)).Responses[0].Partitions[0].ErrorCode);
        // A follower fetch needs CLUSTER_ACTION.
        var follower = Fetch("orders");
        follower.ReplicaId = 2;
        Assert.Equal((short)ErrorCode.TopicAuthorizationFailed, (await Send<FetchResponse>(b, follower, 11, Alice)).Responses[0].Partitions[0].ErrorCode);

        var allTopics = await Send<MetadataResponse>(b, new MetadataRequest { Topics = null, IncludeTopicAuthorizedOperations = true, IncludeClusterAuthorizedOperations = true }, 10, Alice);
        Assert.Equal(["orders"], allTopics.Topics.Select(t => t.Name));
        Assert.Equal((1 << 3) | (1 << 4) | (1 << 8), allTopics.Topics[0].TopicAuthorizedOperations);   // READ, WRITE, DESCRIBE (implied)
        Assert.Equal(0, allTopics.ClusterAuthorizedOperations);
        var named = await Send<MetadataResponse>(b, new MetadataRequest { Topics = [new() { Name = "secret" }, new() { Name = "unknown" }], AllowAutoTopicCreation = true }, 9, Alice);
        Assert.All(named.Topics, t => Assert.Equal((short)ErrorCode.TopicAuthorizationFailed, t.ErrorCode));
        Assert.Null(b.Replicas.GetTopic("unknown"));
        var admin = await Send<MetadataResponse>(b, new MetadataRequest { Topics = null, IncludeClusterAuthorizedOperations = true }, 10, Admin);
        Assert.Equal(2, admin.Topics.Count);
        Assert.Equal(MetadataHandler.ClusterOperations, admin.ClusterAuthorizedOperations);

        JoinGroupRequest Join(string group) => new()
        {
            GroupId = group, SessionTimeoutMs = 10000, RebalanceTimeoutMs = 10000, MemberId = "", ProtocolType = "consumer",
            Protocols = [new() { Name = "range", Metadata = [] }],
        };
        Assert.Equal((short)ErrorCode.GroupAuthorizationFailed, (await Send<JoinGroupResponse>(b, Join("g"), 7, Bob)).ErrorCode);
        Assert.Equal((short)ErrorCode.GroupAuthorizationFailed, (await Send<JoinGroupResponse>(b, Join("other"), 7, Alice)).ErrorCode);
        var coordinator = await Send<FindCoordinatorResponse>(b, new FindCoordinatorRequest { KeyType = 0, CoordinatorKeys = ["g", "other"] }, 4, Alice);
        Assert.Equal([(short)0, (short)ErrorCode.GroupAuthorizationFailed], coordinator.Coordinators.Select(c => c.ErrorCode));
        var commit = await Send<OffsetCommitResponse>(b, new OffsetCommitRequest
        {
            GroupId = "g", GenerationIdOrMemberEpoch = -1, MemberId = "",
            Topics = [new() { Name = "orders", Partitions = [new() { PartitionIndex = 0, CommittedOffset = 1 }] }, new() { Name = "secret", Partitions = [new() { PartitionIndex = 0, CommittedOffset = 1 }] }],
        }, 8, Alice);
        Assert.Equal([(short)0, (short)ErrorCode.TopicAuthorizationFailed], commit.Topics.Select(t => t.Partitions[0].ErrorCode));
    }

    [Fact]
    public async Task TransactionalIdIdempotenceAndClusterCreate()
    {
        await using var b = NewBroker();
        await Grant(b,
            Creation(ResourceType.TransactionalId, "tx-", PatternType.Prefixed, "User:alice", AclOperation.Write),
            Creation(ResourceType.Topic, "orders", PatternType.Literal, "User:alice", AclOperation.Write));
        async Task<short> Init(string? tid, KafkaPrincipal p) =>
            (await Send<InitProducerIdResponse>(b, new InitProducerIdRequest { TransactionalId = tid, TransactionTimeoutMs = 60000 }, 4, p)).ErrorCode;
        Assert.Equal((short)ErrorCode.TransactionalIdAuthorizationFailed, await Init("other", Alice));
        Assert.Equal((short)ErrorCode.TransactionalIdAuthorizationFailed, await Init("tx-1", Bob));
        Assert.Equal((short)0, await Init("tx-1", Alice));
        // Idempotent producers: WRITE on any topic (KIP-679) or CLUSTER IDEMPOTENT_WRITE.
        Assert.Equal((short)0, await Init(null, Alice));
        Assert.Equal((short)ErrorCode.ClusterAuthorizationFailed, await Init(null, Bob));

        var create = await Send<CreateTopicsResponse>(b, new CreateTopicsRequest { Topics = [new() { Name = "new", NumPartitions = 1, ReplicationFactor = 1 }] }, 7, Alice);
        Assert.Equal(((short)ErrorCode.TopicAuthorizationFailed, "Authorization failed."), (create.Topics[0].ErrorCode, create.Topics[0].ErrorMessage));
        await Grant(b, Creation(ResourceType.Cluster, "kafka-cluster", PatternType.Literal, "User:alice", AclOperation.Create));
        var created = await Send<CreateTopicsResponse>(b, new CreateTopicsRequest { Topics = [new() { Name = "new", NumPartitions = 1, ReplicationFactor = 1 }] }, 7, Alice);
        Assert.Equal(0, created.Topics[0].ErrorCode);
        Assert.Equal((short)ErrorCode.TopicAuthorizationFailed, created.Topics[0].TopicConfigErrorCode);   // no DESCRIBE_CONFIGS

        var cluster = await Send<DescribeClusterResponse>(b, new DescribeClusterRequest { IncludeClusterAuthorizedOperations = true }, 1, Alice);
        Assert.Equal(0, cluster.ClusterAuthorizedOperations);   // no CLUSTER DESCRIBE
        var logDirs = await Send<DescribeLogDirsResponse>(b, new DescribeLogDirsRequest { Topics = null }, 4, Alice);
        Assert.Equal((short)ErrorCode.ClusterAuthorizationFailed, logDirs.ErrorCode);
    }

    [Fact]
    public async Task SingleBrokerKeepsAclsInAFileAcrossRestarts()
    {
        var dir = Path.Combine(Path.GetTempPath(), "samsa-acl-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            await using (var b = NewBroker(logDir: dir))
                await Grant(b, Creation(ResourceType.Topic, "t-", PatternType.Prefixed, "User:alice", AclOperation.Read));
            Assert.True(File.Exists(Path.Combine(dir, FileAclStore.FileName)));
            await using var again = NewBroker(logDir: dir);
            var acls = await Send<DescribeAclsResponse>(again, DescribeAll(), 3, Admin);
            Assert.Equal(("t-", (sbyte)PatternType.Prefixed, "User:alice"), (acls.Resources.Single().ResourceName, acls.Resources[0].PatternType, acls.Resources[0].Acls.Single().Principal));
            Assert.True(again.Authorizer!.Authorize(ConnectionSession.ForTests(Alice), ApiKey.Fetch, AclOperation.Read, ResourceType.Topic, "t-1"));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
