using System.Net;
using System.Security.Cryptography;
using System.Text;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Broker.Handlers;
using Samsa.Kafka.Broker.Security;
using Samsa.Kafka.Broker.Security.Acl;
using Samsa.Kafka.Broker.Security.Sasl;
using Samsa.Kafka.Broker.Security.Tokens;
using Samsa.Kafka.Broker.Tests.EndToEnd;
using Samsa.Kafka.Broker.Tests.Handlers;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Tests.Security;

/// <summary>Delegation tokens (keys 38-41, KIP-48/KIP-373): the four APIs through a wire round trip
/// as a given session, and token authentication over SCRAM on a live SASL listener.</summary>
public class DelegationTokenTests
{
    private const string Secret = "token-secret";
    private static readonly KafkaPrincipal Admin = KafkaPrincipal.User("admin");
    private static readonly KafkaPrincipal Alice = KafkaPrincipal.User("alice");
    private static readonly KafkaPrincipal Bob = KafkaPrincipal.User("bob");
    private static readonly KafkaPrincipal Carol = KafkaPrincipal.User("carol");

    private static KafkaBroker NewBroker(bool secret = true, bool authorizer = false, string secretKey = "delegation.token.secret.key")
    {
        var props = new Dictionary<string, string> { ["broker.id"] = "1" };
        if (secret) props[secretKey] = Secret;
        if (authorizer)
        {
            props["authorizer.class.name"] = "kafka.security.authorizer.AclAuthorizer";
            props["super.users"] = "User:admin";
        }
        var b = new KafkaBroker(new BrokerConfig(props), inMemory: true);
        b.SetAdvertisedEndpointForTests("127.0.0.1", 9092);
        return b;
    }

    private static ConnectionSession Sasl(KafkaPrincipal p, bool token = false) =>
        new("SASL_PLAINTEXT", SecurityProtocol.SaslPlaintext, IPAddress.Loopback) { Principal = p, Authenticated = true, TokenAuthenticated = token };

    private static async Task<T> Send<T>(KafkaBroker broker, IKafkaMessage request, short version, ConnectionSession session) where T : class, IKafkaMessage<T>
    {
        var header = new RequestHeader { RequestApiKey = request.ApiKey, RequestApiVersion = version, CorrelationId = 7, ClientId = "test" };
        short hv = ApiMessages.RequestHeaderVersion(request.ApiKey, version);
        var frame = new byte[header.Size(hv) + request.Size(version)];
        var w = new Samsa.Kafka.Protocol.Primitives.KafkaWriter(frame);
        header.Write(ref w, hv);
        request.Write(ref w, version);
        var (parsedHeader, parsed, error) = Network.KafkaConnectionHandler.Parse(frame);
        Assert.Null(error);
        var context = new RequestContext { Header = parsedHeader!, Broker = broker, Session = session };
        var response = await ApiTable.Find(request.ApiKey)!.Handler(context, parsed!);
        var bytes = Network.KafkaConnectionHandler.Serialize(header, response!, version, out int length);
        return KafkaWireClient.Decode<T>(bytes[..length], request.ApiKey, version, 7)!;
    }

    private static CreateDelegationTokenRequest Create(long maxLifetimeMs = -1, KafkaPrincipal? owner = null, params KafkaPrincipal[] renewers) => new()
    {
        OwnerPrincipalType = owner?.Type, OwnerPrincipalName = owner?.Name, MaxLifetimeMs = maxLifetimeMs,
        Renewers = renewers.Select(r => new CreateDelegationTokenRequest.CreatableRenewers { PrincipalType = r.Type, PrincipalName = r.Name }).ToList(),
    };

    private static Task<DescribeDelegationTokenResponse> Describe(KafkaBroker b, ConnectionSession s, short version = 3, params KafkaPrincipal[]? owners) =>
        Send<DescribeDelegationTokenResponse>(b, new DescribeDelegationTokenRequest
        {
            Owners = owners?.Select(o => new DescribeDelegationTokenRequest.DescribeDelegationTokenOwner { PrincipalType = o.Type, PrincipalName = o.Name }).ToList(),
        }, version, s);

    [Fact]
    public async Task WithoutASecretKeyEveryApiAnswersAuthDisabled()
    {
        await using var b = NewBroker(secret: false);
        var s = Sasl(Alice);
        Assert.Equal((short)ErrorCode.DelegationTokenAuthDisabled, (await Send<CreateDelegationTokenResponse>(b, Create(), 3, s)).ErrorCode);
        Assert.Equal((short)ErrorCode.DelegationTokenAuthDisabled, (await Send<RenewDelegationTokenResponse>(b, new RenewDelegationTokenRequest { Hmac = [1], RenewPeriodMs = -1 }, 2, s)).ErrorCode);
        Assert.Equal((short)ErrorCode.DelegationTokenAuthDisabled, (await Send<ExpireDelegationTokenResponse>(b, new ExpireDelegationTokenRequest { Hmac = [1], ExpiryTimePeriodMs = -1 }, 2, s)).ErrorCode);
        Assert.Equal((short)ErrorCode.DelegationTokenAuthDisabled, (await Describe(b, s, 3, null)).ErrorCode);
    }

    [Fact]
    public async Task PlaintextOneWayTlsAndTokenSessionsMayNotUseTokenApis()
    {
        await using var b = NewBroker();
        var sessions = new[]
        {
            ConnectionSession.ForTests(Alice), // PLAINTEXT, whatever the principal
            new ConnectionSession("SSL", SecurityProtocol.Ssl, IPAddress.Loopback) { Authenticated = true }, // one-way TLS: ANONYMOUS
            Sasl(Alice, token: true),
        };
        foreach (var s in sessions)
        {
            var c = await Send<CreateDelegationTokenResponse>(b, Create(), 3, s);
            Assert.Equal((short)ErrorCode.DelegationTokenRequestNotAllowed, c.ErrorCode);
            Assert.Equal("", c.TokenId);
            Assert.Equal((short)ErrorCode.DelegationTokenRequestNotAllowed, (await Describe(b, s, 1, null)).ErrorCode);
            Assert.Equal((short)ErrorCode.DelegationTokenRequestNotAllowed, (await Send<RenewDelegationTokenResponse>(b, new RenewDelegationTokenRequest { Hmac = [1], RenewPeriodMs = -1 }, 1, s)).ErrorCode);
            Assert.Equal((short)ErrorCode.DelegationTokenRequestNotAllowed, (await Send<ExpireDelegationTokenResponse>(b, new ExpireDelegationTokenRequest { Hmac = [1], ExpiryTimePeriodMs = -1 }, 0, s)).ErrorCode);
        }
        // Two-way TLS (a certificate principal) may.
        var mtls = new ConnectionSession("SSL", SecurityProtocol.Ssl, IPAddress.Loopback) { Principal = KafkaPrincipal.User("CN=app"), Authenticated = true };
        Assert.Equal(0, (await Send<CreateDelegationTokenResponse>(b, Create(), 2, mtls)).ErrorCode);
    }

    [Theory]
    [InlineData((short)0)]
    [InlineData((short)2)]
    [InlineData((short)3)]
    public async Task CreateDescribeRenewExpireLifecycle(short version)
    {
        await using var b = NewBroker(secretKey: version == 0 ? "delegation.token.master.key" : "delegation.token.secret.key");
        long now = 1_700_000_000_000;
        b.Tokens.Now = () => now;
        var created = await Send<CreateDelegationTokenResponse>(b, Create(-1, null, Bob), version, Sasl(Alice));
        Assert.Equal(0, created.ErrorCode);
        Assert.Equal(("User", "alice"), (created.PrincipalType, created.PrincipalName));
        if (version >= 3) Assert.Equal(("User", "alice"), (created.TokenRequesterPrincipalType, created.TokenRequesterPrincipalName));
        Assert.Equal(now, created.IssueTimestampMs);
        Assert.Equal(now + 86_400_000, created.ExpiryTimestampMs);    // delegation.token.expiry.time.ms
        Assert.Equal(now + 604_800_000, created.MaxTimestampMs);      // delegation.token.max.lifetime.ms
        Assert.Equal(22, created.TokenId.Length);                     // UUID, URL-safe base64 without padding
        Assert.Equal(HMACSHA512.HashData(Encoding.UTF8.GetBytes(Secret), Encoding.UTF8.GetBytes(created.TokenId)), created.Hmac);

        var described = await Describe(b, Sasl(Alice), version, null);
        var token = Assert.Single(described.Tokens);
        Assert.Equal(created.TokenId, token.TokenId);
        Assert.Equal(created.Hmac, token.Hmac);
        Assert.Equal(("User", "bob"), (token.Renewers[0].PrincipalType, token.Renewers[0].PrincipalName));
        // The renewer sees it; an owner filter naming someone else hides it; an empty filter lists none.
        Assert.Single((await Describe(b, Sasl(Bob), version, null)).Tokens);
        Assert.Empty((await Describe(b, Sasl(Alice), version, Carol)).Tokens);
        Assert.Single((await Describe(b, Sasl(Alice), version, Alice)).Tokens);
        Assert.Empty((await Describe(b, Sasl(Alice), version, [])).Tokens);

        now += 1000;
        var renewed = await Send<RenewDelegationTokenResponse>(b, new RenewDelegationTokenRequest { Hmac = created.Hmac, RenewPeriodMs = 3_600_000 }, (short)Math.Min(version, (short)2), Sasl(Bob));
        Assert.Equal((0, now + 3_600_000), (renewed.ErrorCode, renewed.ExpiryTimestampMs));
        // Past the max, a renewal is capped at the max time.
        var capped = await Send<RenewDelegationTokenResponse>(b, new RenewDelegationTokenRequest { Hmac = created.Hmac, RenewPeriodMs = 30L * 86_400_000 }, 1, Sasl(Alice));
        Assert.Equal(created.MaxTimestampMs, capped.ExpiryTimestampMs);
        var mismatch = await Send<RenewDelegationTokenResponse>(b, new RenewDelegationTokenRequest { Hmac = created.Hmac, RenewPeriodMs = -1 }, 1, Sasl(Carol));
        Assert.Equal(((short)ErrorCode.DelegationTokenOwnerMismatch, -1L), (mismatch.ErrorCode, mismatch.ExpiryTimestampMs));
        var unknown = await Send<RenewDelegationTokenResponse>(b, new RenewDelegationTokenRequest { Hmac = [1, 2, 3], RenewPeriodMs = -1 }, 1, Sasl(Alice));
        Assert.Equal((short)ErrorCode.DelegationTokenNotFound, unknown.ErrorCode);
        Assert.Equal((short)ErrorCode.DelegationTokenNotFound,
            (await Send<ExpireDelegationTokenResponse>(b, new ExpireDelegationTokenRequest { Hmac = [1, 2, 3], ExpiryTimePeriodMs = -1 }, 1, Sasl(Alice))).ErrorCode);

        // Expire in 10 s; after that, renewing and expiring say EXPIRED, and the expiry task removes it.
        var soon = await Send<ExpireDelegationTokenResponse>(b, new ExpireDelegationTokenRequest { Hmac = created.Hmac, ExpiryTimePeriodMs = 10_000 }, (short)Math.Min(version, (short)2), Sasl(Alice));
        Assert.Equal((0, now + 10_000), (soon.ErrorCode, soon.ExpiryTimestampMs));
        now += 10_001;
        Assert.Equal((short)ErrorCode.DelegationTokenExpired,
            (await Send<RenewDelegationTokenResponse>(b, new RenewDelegationTokenRequest { Hmac = created.Hmac, RenewPeriodMs = -1 }, 1, Sasl(Alice))).ErrorCode);
        Assert.Equal((short)ErrorCode.DelegationTokenExpired,
            (await Send<ExpireDelegationTokenResponse>(b, new ExpireDelegationTokenRequest { Hmac = created.Hmac, ExpiryTimePeriodMs = -1 }, 1, Sasl(Alice))).ErrorCode);
        await b.Tokens.ExpireTokensAsync();
        Assert.Empty((await Describe(b, Sasl(Alice), version, null)).Tokens);
    }

    [Fact]
    public async Task NegativeExpiryPeriodRemovesAtOnceAndLifetimeIsCapped()
    {
        await using var b = NewBroker();
        var created = await Send<CreateDelegationTokenResponse>(b, Create(30L * 86_400_000), 3, Sasl(Alice));
        Assert.Equal(created.IssueTimestampMs + 604_800_000, created.MaxTimestampMs);
        var shortLived = await Send<CreateDelegationTokenResponse>(b, Create(60_000), 3, Sasl(Alice));
        Assert.Equal(shortLived.IssueTimestampMs + 60_000, shortLived.MaxTimestampMs);
        Assert.Equal(shortLived.MaxTimestampMs, shortLived.ExpiryTimestampMs);
        var gone = await Send<ExpireDelegationTokenResponse>(b, new ExpireDelegationTokenRequest { Hmac = created.Hmac, ExpiryTimePeriodMs = -1 }, 2, Sasl(Alice));
        Assert.Equal(0, gone.ErrorCode);
        Assert.Equal(shortLived.TokenId, Assert.Single((await Describe(b, Sasl(Alice), 3, null)).Tokens).TokenId);
        Assert.Null(b.Tokens.Token(created.TokenId));
    }

    [Fact]
    public async Task RenewersMustBeUsers()
    {
        await using var b = NewBroker();
        var r = await Send<CreateDelegationTokenResponse>(b, Create(-1, null, new KafkaPrincipal("Group", "g")), 3, Sasl(Alice));
        Assert.Equal((short)ErrorCode.InvalidPrincipalType, r.ErrorCode);
    }

    private static async Task Grant(KafkaBroker b, ResourceType type, string name, string principal, AclOperation op)
    {
        var r = await Send<CreateAclsResponse>(b, new CreateAclsRequest
        {
            Creations = [new() { ResourceType = (sbyte)type, ResourceName = name, ResourcePatternType = (sbyte)PatternType.Literal, Principal = principal,
                Host = "*", Operation = (sbyte)op, PermissionType = (sbyte)AclPermissionType.Allow }],
        }, 3, ConnectionSession.ForTests(Admin));
        Assert.All(r.Results, x => Assert.Equal(0, x.ErrorCode));
    }

    [Fact]
    public async Task TokensForOtherOwnersAndDescribingOthersNeedAcls()
    {
        await using var b = NewBroker(authorizer: true);
        // alice asks for a token owned by bob: CREATE_TOKENS on USER:User:bob.
        var denied = await Send<CreateDelegationTokenResponse>(b, Create(-1, Bob), 3, Sasl(Alice));
        Assert.Equal((short)ErrorCode.DelegationTokenAuthorizationFailed, denied.ErrorCode);
        Assert.Equal(("bob", "alice"), (denied.PrincipalName, denied.TokenRequesterPrincipalName));
        await Grant(b, ResourceType.User, "User:bob", "User:alice", AclOperation.CreateTokens);
        var created = await Send<CreateDelegationTokenResponse>(b, Create(-1, Bob), 3, Sasl(Alice));
        Assert.Equal(0, created.ErrorCode);
        Assert.Equal(("bob", "alice"), (created.PrincipalName, created.TokenRequesterPrincipalName));
        // Owner and requester see it (and the requester may renew it); carol does not, until granted.
        Assert.Single((await Describe(b, Sasl(Bob), 3, null)).Tokens);
        var seen = Assert.Single((await Describe(b, Sasl(Alice), 3, null)).Tokens);
        Assert.Equal(("bob", "alice"), (seen.PrincipalName, seen.TokenRequesterPrincipalName));
        Assert.Equal(0, (await Send<RenewDelegationTokenResponse>(b, new RenewDelegationTokenRequest { Hmac = created.Hmac, RenewPeriodMs = -1 }, 2, Sasl(Alice))).ErrorCode);
        Assert.Empty((await Describe(b, Sasl(Carol), 3, null)).Tokens);
        await Grant(b, ResourceType.DelegationToken, created.TokenId, "User:carol", AclOperation.Describe);
        Assert.Single((await Describe(b, Sasl(Carol), 3, null)).Tokens);
        // DESCRIBE_TOKENS on the owner shows every token of that owner.
        var dave = KafkaPrincipal.User("dave");
        Assert.Empty((await Describe(b, Sasl(dave), 3, null)).Tokens);
        await Grant(b, ResourceType.User, "User:bob", "User:dave", AclOperation.DescribeTokens);
        Assert.Single((await Describe(b, Sasl(dave), 3, null)).Tokens);
        // Seeing is not renewing.
        Assert.Equal((short)ErrorCode.DelegationTokenOwnerMismatch,
            (await Send<RenewDelegationTokenResponse>(b, new RenewDelegationTokenRequest { Hmac = created.Hmac, RenewPeriodMs = -1 }, 2, Sasl(dave))).ErrorCode);
    }

    [Fact]
    public void ZooKeeperJsonIsUpstreamsTokenInfoZNode()
    {
        var t = new DelegationToken("abc", KafkaPrincipal.User("al:ice"), Bob, [Carol], 1, 3, 2);
        var json = Encoding.UTF8.GetString(DelegationTokenManager.Encode(t));
        Assert.Equal("{\"version\":3,\"owner\":\"User%3Aal%3Aice\",\"tokenRequester\":\"User%3Abob\",\"renewers\":[\"User%3Acarol\"],"
            + "\"issueTimestamp\":1,\"maxTimestamp\":3,\"expiryTimestamp\":2,\"tokenId\":\"abc\"}", json);
        var d = DelegationTokenManager.Decode(Encoding.UTF8.GetBytes(json))!;
        Assert.Equal((t.TokenId, t.Owner, t.Requester, t.IssueTimestamp, t.MaxTimestamp, t.ExpiryTimestamp),
            (d.TokenId, d.Owner, d.Requester, d.IssueTimestamp, d.MaxTimestamp, d.ExpiryTimestamp));
        Assert.Equal([Carol], d.Renewers);
        // Version 1/2 znodes have no requester: it is the owner.
        var old = DelegationTokenManager.Decode(Encoding.UTF8.GetBytes("{\"version\":1,\"owner\":\"User%3Aalice\",\"renewers\":[],\"issueTimestamp\":1,\"maxTimestamp\":3,\"expiryTimestamp\":2,\"tokenId\":\"x\"}"));
        Assert.Equal(Alice, old!.Requester);
    }

    // ---------------------------------------------------------------- live SASL listener

    /// <summary>Like LiveBroker, but the log dir survives the broker (a restart reads it again).</summary>
    private sealed class KeptBroker(KafkaBroker broker) : IAsyncDisposable
    {
        public KafkaBroker Broker => broker;
        public ValueTask DisposeAsync() => broker.DisposeAsync();
    }

    private static async Task<KeptBroker> StartKeepingDirAsync(string dir, (string, string)[] props)
    {
        var all = new Dictionary<string, string> { ["broker.id"] = "1", ["log.dirs"] = dir, ["offsets.topic.replication.factor"] = "1" };
        foreach (var (k, v) in props) all[k] = v;
        var b = new KafkaBroker(new BrokerConfig(all));
        await b.StartAsync();
        return new KeptBroker(b);
    }

    [Fact]
    public async Task ScramUserCreatesATokenThatAuthenticatesAsTheOwnerAndProduces()
    {
        string dir = Path.Combine(Path.GetTempPath(), "samsa-dtoken-" + Guid.NewGuid().ToString("N"));
        var props = SaslTests.SaslProps(("delegation.token.secret.key", Secret), ("authorizer.class.name", "kafka.security.authorizer.AclAuthorizer"),
            ("super.users", "User:admin"));
        byte[] hmac;
        string tokenId;
        await using (var live = await StartKeepingDirAsync(dir, props))
        {
            int port = live.Broker.BoundEndPoint.Port;
            await live.Broker.Sasl.Credentials.AlterAsync("alice", new Dictionary<string, ScramCredential> { ["SCRAM-SHA-256"] = ScramMechanism.Sha256.Credential("alice-secret", 4096) }, []);
            await using (var admin = await KafkaWireClient.ConnectAsync("127.0.0.1", port))
            {
                await admin.AuthenticateAsync("PLAIN", "admin", "admin-secret");
                var ct = await admin.SendAsync<CreateTopicsResponse>(new CreateTopicsRequest { Topics = [new() { Name = "orders", NumPartitions = 1, ReplicationFactor = 1 }], TimeoutMs = 5000 }, 5);
                Assert.Equal(0, ct!.Topics[0].ErrorCode);
                var acl = await admin.SendAsync<CreateAclsResponse>(new CreateAclsRequest
                {
                    Creations = [new() { ResourceType = (sbyte)ResourceType.Topic, ResourceName = "orders", ResourcePatternType = (sbyte)PatternType.Literal,
                        Principal = "User:alice", Host = "*", Operation = (sbyte)AclOperation.Write, PermissionType = (sbyte)AclPermissionType.Allow }],
                }, 3);
                Assert.Equal(0, acl!.Results[0].ErrorCode);
            }
            await using (var alice = await KafkaWireClient.ConnectAsync("127.0.0.1", port))
            {
                await alice.AuthenticateAsync("SCRAM-SHA-256", "alice", "alice-secret");
                var created = await alice.SendAsync<CreateDelegationTokenResponse>(Create(), 3);
                Assert.Equal(0, created!.ErrorCode);
                (tokenId, hmac) = (created.TokenId, created.Hmac);
            }
            foreach (var mechanism in new[] { "SCRAM-SHA-256", "SCRAM-SHA-512" })
            {
                await using var withToken = await KafkaWireClient.ConnectAsync("127.0.0.1", port);
                await withToken.AuthenticateWithTokenAsync(mechanism, tokenId, hmac);
                // The session is alice's: her Write ACL lets the produce through.
                var produced = await withToken.SendAsync<ProduceResponse>(new ProduceRequest
                {
                    Acks = 1, TimeoutMs = 5000,
                    TopicData = [new() { Name = "orders", PartitionData = [new() { Index = 0, Records = HandlerFixture.Batch("via-token") }] }],
                }, 9);
                Assert.Equal(0, produced!.Responses[0].PartitionResponses[0].ErrorCode);
                // A token session may not manage tokens (upstream allowTokenRequests).
                var again = await withToken.SendAsync<CreateDelegationTokenResponse>(Create(), 3);
                Assert.Equal((short)ErrorCode.DelegationTokenRequestNotAllowed, again!.ErrorCode);
            }
            // Wrong HMAC, unknown token id, and the token id without tokenauth (no such SCRAM user) fail.
            await using (var c = await KafkaWireClient.ConnectAsync("127.0.0.1", port))
                await Assert.ThrowsAsync<SaslAuthenticationException>(() => c.AuthenticateWithTokenAsync("SCRAM-SHA-256", tokenId, [1, 2, 3]));
            await using (var c = await KafkaWireClient.ConnectAsync("127.0.0.1", port))
                await Assert.ThrowsAsync<SaslAuthenticationException>(() => c.AuthenticateWithTokenAsync("SCRAM-SHA-256", "no-such-token", hmac));
            await using (var c = await KafkaWireClient.ConnectAsync("127.0.0.1", port))
                await Assert.ThrowsAsync<SaslAuthenticationException>(() => c.AuthenticateAsync("SCRAM-SHA-256", tokenId, Convert.ToBase64String(hmac)));
        }
        // A single broker keeps its tokens in the first log dir: after a restart the token still works,
        // until it expires.
        await using (var live = await StartKeepingDirAsync(dir, props))
        {
            int port = live.Broker.BoundEndPoint.Port;
            await using (var c = await KafkaWireClient.ConnectAsync("127.0.0.1", port))
                await c.AuthenticateWithTokenAsync("SCRAM-SHA-256", tokenId, hmac);
            live.Broker.Tokens.Now = () => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + 2L * 86_400_000;
            await using (var c = await KafkaWireClient.ConnectAsync("127.0.0.1", port))
            {
                var e = await Assert.ThrowsAsync<SaslAuthenticationException>(() => c.AuthenticateWithTokenAsync("SCRAM-SHA-256", tokenId, hmac));
                Assert.Equal("Authentication failed: Delegation Token is expired", e.Message);
            }
        }
    }
}
