using System.Net;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Broker.Security;
using Samsa.Kafka.Broker.Security.Acl;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Tests.Security;

/// <summary>The authorize decision as upstream's AclAuthorizer (AclAuthorizerTest's cases).</summary>
public class AclAuthorizerTests
{
    private static readonly ConnectionSession Alice = Session("alice", "192.168.0.1");
    private static readonly ConnectionSession Bob = Session("bob", "192.168.0.2");

    private static ConnectionSession Session(string user, string ip) =>
        new("PLAINTEXT", SecurityProtocol.Plaintext, IPAddress.Parse(ip)) { Principal = KafkaPrincipal.User(user), Authenticated = true };

    private static AclAuthorizer With(bool allowEveryone = false, string[]? supers = null, params (ResourcePattern R, AclEntry E)[] acls)
    {
        var a = new AclAuthorizer(new HashSet<KafkaPrincipal>((supers ?? []).Select(s => KafkaPrincipal.TryParse(s)!)), allowEveryone, null);
        a.ReplaceAll(acls.GroupBy(x => x.R).Select(g => KeyValuePair.Create(g.Key, (IReadOnlySet<AclEntry>)g.Select(x => x.E).ToHashSet())));
        return a;
    }

    private static ResourcePattern Topic(string name, PatternType p = PatternType.Literal) => new(ResourceType.Topic, name, p);
    private static AclEntry Allow(string principal, AclOperation op, string host = "*") => new(principal, host, op, AclPermissionType.Allow);
    private static AclEntry Deny(string principal, AclOperation op, string host = "*") => new(principal, host, op, AclPermissionType.Deny);

    private static bool Can(AclAuthorizer a, ConnectionSession s, AclOperation op, string topic) =>
        a.Authorize(s, ApiKey.Produce, op, ResourceType.Topic, topic);

    [Fact]
    public void LiteralPrefixedAndWildcardPatternsApply()
    {
        var a = With(acls: [
            (Topic("orders"), Allow("User:alice", AclOperation.Write)),
            (Topic("logs-", PatternType.Prefixed), Allow("User:alice", AclOperation.Read)),
            (Topic("*"), Allow("User:bob", AclOperation.Read)),
        ]);
        Assert.True(Can(a, Alice, AclOperation.Write, "orders"));
        Assert.False(Can(a, Alice, AclOperation.Write, "orders2"));      // literal is exact
        Assert.True(Can(a, Alice, AclOperation.Read, "logs-app"));
        Assert.False(Can(a, Alice, AclOperation.Read, "log"));            // shorter than the prefix
        Assert.True(Can(a, Bob, AclOperation.Read, "anything"));          // literal "*"
        Assert.False(Can(a, Bob, AclOperation.Write, "anything"));
    }

    [Fact]
    public void DenyWinsAndPrincipalAndHostWildcards()
    {
        var a = With(acls: [
            (Topic("t"), Allow("User:*", AclOperation.Read)),
            (Topic("t"), Deny("User:bob", AclOperation.Read)),
            (Topic("h"), Allow("User:alice", AclOperation.Read, "192.168.0.9")),
            (Topic("h"), Allow("User:bob", AclOperation.Read, "192.168.0.2")),
            (Topic("p", PatternType.Prefixed), Deny("User:*", AclOperation.All)),
            (Topic("public"), Allow("User:alice", AclOperation.Read)),
        ]);
        Assert.True(Can(a, Alice, AclOperation.Read, "t"));
        Assert.False(Can(a, Bob, AclOperation.Read, "t"));
        Assert.False(Can(a, Alice, AclOperation.Read, "h"));   // wrong host
        Assert.True(Can(a, Bob, AclOperation.Read, "h"));
        Assert.False(Can(a, Alice, AclOperation.Read, "public"));   // a prefixed DENY ALL "p" covers it
    }

    [Fact]
    public void HostsCompareWithJavasAddressText()
    {
        Assert.Equal("0:0:0:0:0:0:0:1", AclAuthorizer.HostOf(IPAddress.IPv6Loopback));
        Assert.Equal("127.0.0.1", AclAuthorizer.HostOf(IPAddress.Loopback.MapToIPv6()));
        var a = With(acls: [(Topic("t"), Allow("User:alice", AclOperation.Read, "0:0:0:0:0:0:0:1"))]);
        Assert.True(Can(a, Session("alice", "::1"), AclOperation.Read, "t"));
        Assert.False(Can(a, Session("alice", "127.0.0.1"), AclOperation.Read, "t"));
    }

    [Fact]
    public void ImpliedOperationsAndAll()
    {
        var a = With(acls: [
            (Topic("r"), Allow("User:alice", AclOperation.Read)),
            (Topic("c"), Allow("User:alice", AclOperation.AlterConfigs)),
            (Topic("all"), Allow("User:alice", AclOperation.All)),
        ]);
        Assert.True(Can(a, Alice, AclOperation.Describe, "r"));
        Assert.False(Can(a, Alice, AclOperation.Write, "r"));
        Assert.True(Can(a, Alice, AclOperation.DescribeConfigs, "c"));
        Assert.False(Can(a, Alice, AclOperation.Describe, "c"));    // ALTER_CONFIGS does not imply DESCRIBE
        Assert.True(Can(a, Alice, AclOperation.Delete, "all"));
        Assert.True(Can(a, Alice, AclOperation.Describe, "all"));
    }

    [Fact]
    public void NoAclFoundOnlyWhenNoAclMatchesTheResourceAtAll()
    {
        var open = With(allowEveryone: true, acls: [(Topic("owned"), Allow("User:alice", AclOperation.Read))]);
        Assert.True(Can(open, Bob, AclOperation.Write, "free"));     // no ACL at all: allowed
        Assert.False(Can(open, Bob, AclOperation.Read, "owned"));    // ACLs exist (for alice): bob is not allowed
        var closed = With(allowEveryone: false);
        Assert.False(Can(closed, Bob, AclOperation.Write, "free"));
    }

    [Fact]
    public void SuperUsersAreAllowedEverything()
    {
        var a = With(supers: ["User:bob"], acls: [(Topic("t"), Deny("User:*", AclOperation.All))]);
        Assert.True(Can(a, Bob, AclOperation.Write, "t"));
        Assert.False(Can(a, Alice, AclOperation.Write, "t"));
        Assert.True(a.Authorize(Bob, ApiKey.Fetch, AclOperation.ClusterAction, ResourceType.Cluster, "kafka-cluster"));
    }

    [Fact]
    public void AuthorizeByResourceTypeAsUpstream()
    {
        Assert.False(With().AuthorizeByResourceType(Alice, ApiKey.InitProducerId, AclOperation.Write, ResourceType.Topic));
        var a = With(acls: [(Topic("x"), Allow("User:alice", AclOperation.Write))]);
        Assert.True(a.AuthorizeByResourceType(Alice, ApiKey.InitProducerId, AclOperation.Write, ResourceType.Topic));
        Assert.False(a.AuthorizeByResourceType(Bob, ApiKey.InitProducerId, AclOperation.Write, ResourceType.Topic));
        // A literal deny on "*" refuses; a prefixed deny dominating the only allow refuses.
        var denied = With(acls: [(Topic("x"), Allow("User:alice", AclOperation.Write)), (Topic("*"), Deny("User:alice", AclOperation.Write))]);
        Assert.False(denied.AuthorizeByResourceType(Alice, ApiKey.InitProducerId, AclOperation.Write, ResourceType.Topic));
        var dominated = With(acls: [(Topic("xy"), Allow("User:alice", AclOperation.Write)), (Topic("x", PatternType.Prefixed), Deny("User:alice", AclOperation.Write))]);
        Assert.False(dominated.AuthorizeByResourceType(Alice, ApiKey.InitProducerId, AclOperation.Write, ResourceType.Topic));
        var other = With(acls: [(Topic("xy"), Allow("User:alice", AclOperation.Write)), (Topic("z", PatternType.Prefixed), Deny("User:alice", AclOperation.Write))]);
        Assert.True(other.AuthorizeByResourceType(Alice, ApiKey.InitProducerId, AclOperation.Write, ResourceType.Topic));
    }

    [Fact]
    public void FilterMatchingAsUpstream()
    {
        var filter = new AclBindingFilter(ResourceType.Topic, "logs-app", PatternType.Match, null, null, AclOperation.Any, AclPermissionType.Any);
        Assert.True(filter.Matches(Topic("logs-app")));
        Assert.True(filter.Matches(Topic("*")));
        Assert.True(filter.Matches(Topic("logs", PatternType.Prefixed)));
        Assert.False(filter.Matches(Topic("logs")));
        var any = filter with { PatternType = PatternType.Any };
        Assert.True(any.Matches(Topic("logs-app", PatternType.Prefixed)));
        Assert.False(any.Matches(Topic("*")));
    }

    [Theory]
    [InlineData("kafka.security.authorizer.AclAuthorizer", true)]
    [InlineData("kafka.security.auth.SimpleAclAuthorizer", true)]
    [InlineData("", false)]
    public void AuthorizerClassNames(string cls, bool enabled)
    {
        var config = new BrokerConfig(new Dictionary<string, string> { ["broker.id"] = "1", ["authorizer.class.name"] = cls, ["super.users"] = "User:admin; User:CN=broker,O=x" });
        var a = AclAuthorizer.FromConfig(config, null);
        Assert.Equal(enabled, a is not null);
        if (a is not null) Assert.Equal(2, a.SuperUsers.Count);
    }

    [Fact]
    public void AnyOtherAuthorizerClassStopsTheBroker()
    {
        var config = new BrokerConfig(new Dictionary<string, string> { ["broker.id"] = "1", ["authorizer.class.name"] = "org.apache.kafka.metadata.authorizer.StandardAuthorizer" });
        var e = Assert.Throws<ConfigValueException>(() => new KafkaBroker(config, inMemory: true));
        Assert.Contains("org.apache.kafka.metadata.authorizer.StandardAuthorizer is not supported", e.Message);
    }

    [Fact]
    public void ASeparateAuthorizerZooKeeperStopsTheBroker()
    {
        var config = new BrokerConfig(new Dictionary<string, string>
        {
            ["broker.id"] = "1", ["authorizer.class.name"] = "kafka.security.authorizer.AclAuthorizer", ["authorizer.zookeeper.url"] = "other:2181",
        });
        var e = Assert.Throws<ConfigValueException>(() => AclAuthorizer.FromConfig(config, null));
        Assert.Equal("authorizer.zookeeper.url is not supported: Samsa keeps ACLs in the broker's own zookeeper.connect", e.Message);
    }

    [Fact]
    public void ZnodeJsonIsUpstreamsAndRawKafkaAclsWritesDecode()
    {
        var bytes = AclZkFormat.Encode([new AclEntry("User:alice", "*", AclOperation.DescribeConfigs, AclPermissionType.Allow)]);
        Assert.Equal("""{"version":1,"acls":[{"principal":"User:alice","permissionType":"Allow","operation":"DescribeConfigs","host":"*"}]}""", System.Text.Encoding.UTF8.GetString(bytes));
        // As upstream's kafka-acls.sh writes (Jackson, key order and spacing its own).
        var raw = """{"version":1,"acls":[{"host":"10.0.0.1","permissionType":"Deny","operation":"IdempotentWrite","principal":"User:bob"},{"principal":"User:*","permissionType":"Allow","operation":"All","host":"*"}]}""";
        var decoded = AclZkFormat.Decode(System.Text.Encoding.UTF8.GetBytes(raw));
        Assert.Contains(new AclEntry("User:bob", "10.0.0.1", AclOperation.IdempotentWrite, AclPermissionType.Deny), decoded);
        Assert.Contains(new AclEntry("User:*", "*", AclOperation.All, AclPermissionType.Allow), decoded);
        Assert.Equal("/kafka-acl/TransactionalId/tx", AclZkFormat.PathOf(new ResourcePattern(ResourceType.TransactionalId, "tx", PatternType.Literal)));
        Assert.Equal("/kafka-acl-extended/prefixed/Group/g-", AclZkFormat.PathOf(new ResourcePattern(ResourceType.Group, "g-", PatternType.Prefixed)));
        Assert.Equal("TRANSACTIONAL_ID:tx", System.Text.Encoding.UTF8.GetString(AclZkFormat.EncodeLiteralChange(new ResourcePattern(ResourceType.TransactionalId, "tx", PatternType.Literal))));
        Assert.Equal(new ResourcePattern(ResourceType.Topic, "a:b", PatternType.Literal), AclZkFormat.DecodeChange(false, "Topic:a:b"u8.ToArray()));
        Assert.Equal(new ResourcePattern(ResourceType.Group, "g-", PatternType.Prefixed),
            AclZkFormat.DecodeChange(true, """{"version":1,"resourceType":"GROUP","name":"g-","patternType":"PREFIXED"}"""u8.ToArray()));
    }
}
