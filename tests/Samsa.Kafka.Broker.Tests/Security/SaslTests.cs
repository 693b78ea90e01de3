using System.Buffers.Binary;
using System.Text;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Broker.Security.Sasl;
using Samsa.Kafka.Broker.Tests.EndToEnd;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Tests.Security;

/// <summary>SASL on a SASL_PLAINTEXT listener, over a real socket with the wire client: the
/// mechanisms, the pre-authentication gate, hostile input, re-authentication and SCRAM credentials.</summary>
public class SaslTests
{
    public const string PlainJaas = "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"admin\" password=\"admin-secret\" user_admin=\"admin-secret\" user_alice=\"alice-secret\";";
    public const string ScramJaas = "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"admin-secret\";";
    public const string OAuthJaas = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub=\"admin\";";

    public static (string, string)[] SaslProps(params (string, string)[] extra)
    {
        var props = new List<(string, string)>
        {
            ("listeners", "SASL_PLAINTEXT://127.0.0.1:0"),
            ("security.inter.broker.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism.inter.broker.protocol", "PLAIN"),
            ("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER"),
            ("listener.name.sasl_plaintext.plain.sasl.jaas.config", PlainJaas),
            ("listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config", ScramJaas),
            ("listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config", ScramJaas),
            ("listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config", OAuthJaas),
            ("connection.failed.authentication.delay.ms", "0"),
        };
        props.AddRange(extra);
        return [.. props];
    }

    private static Task<LiveBroker> StartAsync(params (string, string)[] extra) => LiveBroker.StartAsync(null, SaslProps(extra));

    private static Task<KafkaWireClient> ConnectAsync(LiveBroker live) => KafkaWireClient.ConnectAsync("127.0.0.1", live.Broker.BoundEndPoint.Port);

    private static async Task<MetadataResponse?> MetadataAsync(KafkaWireClient c) =>
        await c.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [] }, 1);

    private static async Task AssertClosedAsync(KafkaWireClient c)
    {
        // The broker closes; a read sees the end of the stream (or a reset).
        try { Assert.Null(await c.ReadFrameAsync().WaitAsync(TimeSpan.FromSeconds(5))); }
        catch (IOException) { }
    }

    private static byte[] Frame(byte[] payload)
    {
        var f = new byte[4 + payload.Length];
        BinaryPrimitives.WriteInt32BigEndian(f, payload.Length);
        payload.CopyTo(f, 4);
        return f;
    }

    private static async Task AddScramUserAsync(LiveBroker live, string user, string password, ScramMechanism m, int iterations = 4096) =>
        await live.Broker.Sasl.Credentials.AlterAsync(user, new Dictionary<string, ScramCredential> { [m.Name] = m.Credential(password, iterations) }, []);

    [Fact]
    public async Task PlainAuthenticatesThenRequestsAreServed()
    {
        await using var live = await StartAsync();
        await using var c = await ConnectAsync(live);
        await c.AuthenticateAsync("PLAIN", "alice", "alice-secret");
        var md = await MetadataAsync(c);
        Assert.NotNull(md);
        Assert.Single(md!.Brokers);
    }

    [Fact]
    public async Task PlainWrongPasswordIsRefusedWithUpstreamsMessageAndClosed()
    {
        await using var live = await StartAsync();
        await using var c = await ConnectAsync(live);
        var e = await Assert.ThrowsAsync<SaslAuthenticationException>(() => c.AuthenticateAsync("PLAIN", "alice", "wrong"));
        Assert.Equal("Authentication failed: Invalid username or password", e.Message);
        await AssertClosedAsync(c);
    }

    [Theory]
    [InlineData("SCRAM-SHA-256")]
    [InlineData("SCRAM-SHA-512")]
    public async Task ScramAuthenticatesAndWrongPasswordFails(string mechanism)
    {
        await using var live = await StartAsync();
        var m = ScramMechanism.ByName(mechanism)!;
        await AddScramUserAsync(live, "bob", "bob-secret", m);
        await using (var c = await ConnectAsync(live))
        {
            await c.AuthenticateAsync(mechanism, "bob", "bob-secret");
            Assert.NotNull(await MetadataAsync(c));
        }
        await using (var c = await ConnectAsync(live))
        {
            var e = await Assert.ThrowsAsync<SaslAuthenticationException>(() => c.AuthenticateAsync(mechanism, "bob", "nope"));
            Assert.Equal($"Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}", e.Message);
            await AssertClosedAsync(c);
        }
        // A mechanism the user has no credential for fails the same way.
        var other = mechanism == "SCRAM-SHA-256" ? "SCRAM-SHA-512" : "SCRAM-SHA-256";
        await using (var c = await ConnectAsync(live))
            await Assert.ThrowsAsync<SaslAuthenticationException>(() => c.AuthenticateAsync(other, "bob", "bob-secret"));
    }

    [Fact]
    public async Task UnauthenticatedRequestClosesTheConnection()
    {
        await using var live = await StartAsync();
        await using var c = await ConnectAsync(live);
        await c.SendRawAsync(c.Encode(new MetadataRequest { Topics = [] }, 1, 1));
        await AssertClosedAsync(c);
        // ApiVersions is allowed before authentication, and only once.
        await using var d = await ConnectAsync(live);
        var v = await d.SendAsync<ApiVersionsResponse>(new ApiVersionsRequest { ClientSoftwareName = "t", ClientSoftwareVersion = "1" }, 3);
        Assert.Contains(v!.ApiKeys, k => k.ApiKey == (short)ApiKey.SaslAuthenticate && k.MaxVersion == 2);
        Assert.Contains(v.ApiKeys, k => k.ApiKey == (short)ApiKey.SaslHandshake && k.MaxVersion == 1);
        await d.SendRawAsync(d.Encode(new ApiVersionsRequest { ClientSoftwareName = "t", ClientSoftwareVersion = "1" }, 3, 99));
        await AssertClosedAsync(d);
    }

    [Fact]
    public async Task AuthenticationWithoutApiVersionsFirstWorks()
    {
        await using var live = await StartAsync();
        await using var c = await ConnectAsync(live);
        var h = await c.SendAsync<SaslHandshakeResponse>(new SaslHandshakeRequest { Mechanism = "PLAIN" }, 1);
        Assert.Equal(0, h!.ErrorCode);
        var a = await c.SendAsync<SaslAuthenticateResponse>(new SaslAuthenticateRequest { AuthBytes = Encoding.UTF8.GetBytes("\0admin\0admin-secret") }, 1);
        Assert.Equal(0, a!.ErrorCode);
        Assert.Equal(0, a.SessionLifetimeMs);
        Assert.NotNull(await MetadataAsync(c));
    }

    [Fact]
    public async Task SaslAuthenticateWithoutHandshakeIsIllegalState()
    {
        await using var live = await StartAsync();
        await using var c = await ConnectAsync(live);
        var a = await c.SendAsync<SaslAuthenticateResponse>(new SaslAuthenticateRequest { AuthBytes = Encoding.UTF8.GetBytes("\0admin\0admin-secret") }, 1);
        Assert.Equal((short)ErrorCode.IllegalSaslState, a!.ErrorCode);
        await AssertClosedAsync(c);
    }

    [Fact]
    public async Task DisabledMechanismGetsTheEnabledListAndClose()
    {
        await using var live = await StartAsync(("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-512"));
        await using var c = await ConnectAsync(live);
        var h = await c.SendAsync<SaslHandshakeResponse>(new SaslHandshakeRequest { Mechanism = "SCRAM-SHA-256" }, 1);
        Assert.Equal((short)ErrorCode.UnsupportedSaslMechanism, h!.ErrorCode);
        Assert.Equal(["PLAIN", "SCRAM-SHA-512"], h.Mechanisms);
        await AssertClosedAsync(c);
        await using var d = await ConnectAsync(live);
        var e = await Assert.ThrowsAsync<SaslAuthenticationException>(() => d.AuthenticateAsync("SCRAM-SHA-256", "a", "b"));
        Assert.Contains("not enabled", e.Message);
    }

    [Fact]
    public async Task HandshakeFloodClosesAfterTheFirst()
    {
        await using var live = await StartAsync();
        await using var c = await ConnectAsync(live);
        // Ten handshakes in one write: the first is answered, the second closes the connection.
        var bytes = new List<byte>();
        for (int i = 0; i < 10; i++) bytes.AddRange(c.Encode(new SaslHandshakeRequest { Mechanism = "PLAIN" }, 1, i + 1));
        await c.SendRawAsync([.. bytes]);
        var first = await c.ReadFrameAsync().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.NotNull(first);
        await AssertClosedAsync(c);
        await using var ok = await ConnectAsync(live);
        await ok.AuthenticateAsync("PLAIN", "admin", "admin-secret");
    }

    [Fact]
    public async Task GarbageTokensFailCleanly()
    {
        await using var live = await StartAsync();
        var rnd = new Random(7);
        foreach (var mechanism in new[] { "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER" })
        {
            for (int i = 0; i < 5; i++)
            {
                await using var c = await ConnectAsync(live);
                Assert.Equal(0, (await c.SendAsync<SaslHandshakeResponse>(new SaslHandshakeRequest { Mechanism = mechanism }, 1))!.ErrorCode);
                var garbage = new byte[rnd.Next(0, 300)];
                rnd.NextBytes(garbage);
                var a = await c.SendAsync<SaslAuthenticateResponse>(new SaslAuthenticateRequest { AuthBytes = garbage }, 2);
                if (a!.ErrorCode == 0)
                {
                    // OAUTHBEARER answers a bad token with an error challenge first; the client's ^A ends it.
                    Assert.Equal("OAUTHBEARER", mechanism);
                    Assert.StartsWith("{\"status\":", Encoding.UTF8.GetString(a.AuthBytes));
                    a = await c.SendAsync<SaslAuthenticateResponse>(new SaslAuthenticateRequest { AuthBytes = [1] }, 2);
                }
                Assert.Equal((short)ErrorCode.SaslAuthenticationFailed, a!.ErrorCode);
                await AssertClosedAsync(c);
            }
        }
        await using var ok = await ConnectAsync(live);
        await ok.AuthenticateAsync("PLAIN", "admin", "admin-secret");
    }

    [Fact]
    public async Task OversizedTokenBeforeAuthenticationIsRefusedWithoutBuffering()
    {
        await using var live = await StartAsync();
        await using var c = await ConnectAsync(live);
        Assert.Equal(0, (await c.SendAsync<SaslHandshakeResponse>(new SaslHandshakeRequest { Mechanism = "PLAIN" }, 1))!.ErrorCode);
        // 100 MB announced (socket.request.max.bytes allows it): more than sasl.server.max.receive.size.
        var header = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(header, 100 * 1024 * 1024);
        long before = GC.GetTotalAllocatedBytes(true);
        await c.SendRawAsync(header);
        await AssertClosedAsync(c);
        Assert.True(GC.GetTotalAllocatedBytes(true) - before < 50 * 1024 * 1024, "the broker must not allocate the announced size");
        // After authentication the normal limit applies again.
        await using var d = await ConnectAsync(live);
        await d.AuthenticateAsync("PLAIN", "admin", "admin-secret");
        var topics = Enumerable.Range(0, 10_000).Select(i => new MetadataRequest.MetadataRequestTopic { Name = $"no-such-topic-{i:D6}-{new string('x', 40)}" }).ToList();
        var big = await d.SendAsync<MetadataResponse>(new MetadataRequest { Topics = topics, AllowAutoTopicCreation = false }, 4);
        Assert.Equal(10_000, big!.Topics.Count);
    }

    [Fact]
    public async Task ScramClientFinalWithWrongNonceFails()
    {
        await using var live = await StartAsync();
        await AddScramUserAsync(live, "carol", "carol-secret", ScramMechanism.Sha256);
        await using var c = await ConnectAsync(live);
        Assert.Equal(0, (await c.SendAsync<SaslHandshakeResponse>(new SaslHandshakeRequest { Mechanism = "SCRAM-SHA-256" }, 1))!.ErrorCode);
        var first = await c.SendAsync<SaslAuthenticateResponse>(new SaslAuthenticateRequest { AuthBytes = Encoding.UTF8.GetBytes("n,,n=carol,r=abcdefgh") }, 2);
        Assert.Equal(0, first!.ErrorCode);
        Assert.StartsWith("r=abcdefgh", Encoding.UTF8.GetString(first.AuthBytes));
        var final = await c.SendAsync<SaslAuthenticateResponse>(new SaslAuthenticateRequest { AuthBytes = Encoding.UTF8.GetBytes("c=biws,r=abcdefghWRONG,p=" + Convert.ToBase64String(new byte[32])) }, 2);
        Assert.Equal((short)ErrorCode.SaslAuthenticationFailed, final!.ErrorCode);
        Assert.Equal("Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256", final.ErrorMessage);
        await AssertClosedAsync(c);
    }

    [Fact]
    public async Task ScramTokenAuthExtensionIsRefusedWithoutDelegationTokens()
    {
        await using var live = await StartAsync();
        await AddScramUserAsync(live, "dave", "dave-secret", ScramMechanism.Sha256);
        await using var c = await ConnectAsync(live);
        await c.SendAsync<SaslHandshakeResponse>(new SaslHandshakeRequest { Mechanism = "SCRAM-SHA-256" }, 1);
        var first = await c.SendAsync<SaslAuthenticateResponse>(new SaslAuthenticateRequest { AuthBytes = Encoding.UTF8.GetBytes("n,,n=dave,r=abc,tokenauth=true") }, 2);
        Assert.Equal((short)ErrorCode.SaslAuthenticationFailed, first!.ErrorCode);
    }

    [Fact]
    public async Task V0HandshakeThenRawTokens()
    {
        await using var live = await StartAsync();
        await using var c = await ConnectAsync(live);
        var h = await c.SendAsync<SaslHandshakeResponse>(new SaslHandshakeRequest { Mechanism = "PLAIN" }, 0);
        Assert.Equal(0, h!.ErrorCode);
        // The token as a bare length-prefixed frame, no Kafka header; the answer likewise.
        await c.SendRawAsync(Frame(Encoding.UTF8.GetBytes("\0alice\0alice-secret")));
        var answer = await c.ReadFrameAsync().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.NotNull(answer);
        Assert.Empty(answer!);
        Assert.NotNull(await MetadataAsync(c));

        await using var d = await ConnectAsync(live);
        await d.SendAsync<SaslHandshakeResponse>(new SaslHandshakeRequest { Mechanism = "PLAIN" }, 0);
        await d.SendRawAsync(Frame(Encoding.UTF8.GetBytes("\0alice\0bad")));
        await AssertClosedAsync(d);
    }

    [Fact]
    public async Task V0RawScramExchange()
    {
        await using var live = await StartAsync();
        await AddScramUserAsync(live, "erin", "erin-secret", ScramMechanism.Sha512);
        await using var c = await ConnectAsync(live);
        await c.SendAsync<SaslHandshakeResponse>(new SaslHandshakeRequest { Mechanism = "SCRAM-SHA-512" }, 0);
        var client = new ScramSaslClient(ScramMechanism.Sha512, "erin", "erin-secret");
        await c.SendRawAsync(Frame(client.InitialResponse()));
        var serverFirst = await c.ReadFrameAsync();
        await c.SendRawAsync(Frame(client.EvaluateChallenge(serverFirst!)!));
        var serverFinal = await c.ReadFrameAsync();
        Assert.Null(client.EvaluateChallenge(serverFinal!));
        Assert.True(client.IsComplete);
        Assert.NotNull(await MetadataAsync(c));
    }

    private static string UnsecuredJwt(string sub, long expSeconds, string? scope = null)
    {
        static string B64(string s) => Convert.ToBase64String(Encoding.UTF8.GetBytes(s)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        long iat = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        string claims = scope is null ? $"{{\"sub\":\"{sub}\",\"iat\":{iat},\"exp\":{expSeconds}}}" : $"{{\"sub\":\"{sub}\",\"iat\":{iat},\"exp\":{expSeconds},\"scope\":\"{scope}\"}}";
        return B64("{\"alg\":\"none\"}") + "." + B64(claims) + ".";
    }

    private static byte[] OAuthFirst(string token) => Encoding.UTF8.GetBytes($"n,,\u0001auth=Bearer {token}\u0001\u0001");

    [Fact]
    public async Task OAuthBearerUnsecuredJwt()
    {
        await using var live = await StartAsync(("listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config",
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredValidatorRequiredScope=\"kafka\";"));
        long exp = DateTimeOffset.UtcNow.AddMinutes(10).ToUnixTimeSeconds();
        await using (var c = await ConnectAsync(live))
        {
            await c.SendAsync<SaslHandshakeResponse>(new SaslHandshakeRequest { Mechanism = "OAUTHBEARER" }, 1);
            var a = await c.SendAsync<SaslAuthenticateResponse>(new SaslAuthenticateRequest { AuthBytes = OAuthFirst(UnsecuredJwt("frank", exp, "kafka other")) }, 2);
            Assert.Equal(0, a!.ErrorCode);
            // The token's expiry bounds the session (KIP-368) even without connections.max.reauth.ms.
            Assert.InRange(a.SessionLifetimeMs, 1, 600_000);
            Assert.NotNull(await MetadataAsync(c));
        }
        // Expired token, and a token without the required scope: an RFC 7628 error, then failure.
        foreach (var (token, status) in new[] { (UnsecuredJwt("frank", DateTimeOffset.UtcNow.AddMinutes(-1).ToUnixTimeSeconds(), "kafka"), "invalid_token"), (UnsecuredJwt("frank", exp, "other"), "insufficient_scope") })
        {
            await using var c = await ConnectAsync(live);
            await c.SendAsync<SaslHandshakeResponse>(new SaslHandshakeRequest { Mechanism = "OAUTHBEARER" }, 1);
            var a = await c.SendAsync<SaslAuthenticateResponse>(new SaslAuthenticateRequest { AuthBytes = OAuthFirst(token) }, 2);
            Assert.Equal(0, a!.ErrorCode);
            Assert.Contains(status, Encoding.UTF8.GetString(a.AuthBytes));
            var b = await c.SendAsync<SaslAuthenticateResponse>(new SaslAuthenticateRequest { AuthBytes = [1] }, 2);
            Assert.Equal((short)ErrorCode.SaslAuthenticationFailed, b!.ErrorCode);
            Assert.Contains(status, b.ErrorMessage);
            await AssertClosedAsync(c);
        }
    }

    [Fact]
    public async Task ReauthenticationKeepsTheConnectionAndExpiryClosesIt()
    {
        // Margins are one-sided where a loaded machine can stretch a delay: every check below
        // stays true however late a Task.Delay wakes, except that the 1.6 s after the last
        // re-authentication must not grow by 1.4 s (the session lifetime is 3 s).
        await using var live = await StartAsync(("connections.max.reauth.ms", "3000"));
        await using (var c = await ConnectAsync(live))
        {
            await c.AuthenticateAsync("PLAIN", "alice", "alice-secret");
            var sinceFirst = System.Diagnostics.Stopwatch.StartNew();
            Assert.Equal(3000, c.SaslSessionLifetimeMs);
            // Re-authenticate (KIP-368) on the same connection: handshake + authenticate again.
            await c.AuthenticateAsync("PLAIN", "alice", "alice-secret");
            await Task.Delay(1600);
            var sinceLast = System.Diagnostics.Stopwatch.StartNew();
            await c.AuthenticateAsync("PLAIN", "alice", "alice-secret");
            await Task.Delay(1600);
            // More than 3 s after the first authentication, about 1.6 s after the last: still open.
            Assert.True(sinceFirst.ElapsedMilliseconds > 3000, $"{sinceFirst.ElapsedMilliseconds} ms");
            MetadataResponse? metadata = null;
            try { metadata = await MetadataAsync(c); }
            catch (Exception e) { Assert.Fail($"Metadata failed {sinceLast.ElapsedMilliseconds} ms after the last re-authentication: {e.Message}"); }
            Assert.True(sinceLast.ElapsedMilliseconds < 3000, $"the test ran late: {sinceLast.ElapsedMilliseconds} ms");
            Assert.NotNull(metadata);
            await Task.Delay(1600);
            // Expired: anything but re-authentication closes the connection.
            await c.SendRawAsync(c.Encode(new MetadataRequest { Topics = [] }, 1, 1000));
            await AssertClosedAsync(c);
        }
        await using (var c = await ConnectAsync(live))
        {
            await c.AuthenticateAsync("PLAIN", "alice", "alice-secret");
            // Another principal on re-authentication is refused.
            var e = await Assert.ThrowsAsync<SaslAuthenticationException>(() => c.AuthenticateAsync("PLAIN", "admin", "admin-secret"));
            Assert.Contains("Cannot change principals during re-authentication", e.Message);
            await AssertClosedAsync(c);
        }
    }

    [Fact]
    public async Task SaslRequestsOnAPlaintextListenerAreIllegalState()
    {
        await using var live = await LiveBroker.StartAsync();
        await using var c = await ConnectAsync(live);
        var h = await c.SendAsync<SaslHandshakeResponse>(new SaslHandshakeRequest { Mechanism = "PLAIN" }, 1);
        Assert.Equal((short)ErrorCode.IllegalSaslState, h!.ErrorCode);
        var a = await c.SendAsync<SaslAuthenticateResponse>(new SaslAuthenticateRequest { AuthBytes = [] }, 1);
        Assert.Equal((short)ErrorCode.IllegalSaslState, a!.ErrorCode);
        Assert.NotNull(await MetadataAsync(c));
    }

    [Fact]
    public async Task FailedAuthenticationIsDelayed()
    {
        await using var live = await StartAsync(("connection.failed.authentication.delay.ms", "400"));
        await using var c = await ConnectAsync(live);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        await Assert.ThrowsAsync<SaslAuthenticationException>(() => c.AuthenticateAsync("PLAIN", "alice", "wrong"));
        Assert.True(sw.ElapsedMilliseconds >= 380, $"answered after {sw.ElapsedMilliseconds} ms");
    }

    [Theory]
    [InlineData("GSSAPI")]
    [InlineData("PLAIN,GSSAPI")]
    [InlineData("DIGEST-MD5")]
    public async Task UnsupportedMechanismsStopTheBroker(string mechanisms)
    {
        var props = new Dictionary<string, string>();
        foreach (var (k, v) in SaslProps(("sasl.enabled.mechanisms", mechanisms))) props[k] = v;
        props["log.dirs"] = Path.Combine(Path.GetTempPath(), "samsa-sasl-" + Guid.NewGuid().ToString("N"));
        props["broker.id"] = "1";
        var broker = new KafkaBroker(new BrokerConfig(props));
        var e = await Assert.ThrowsAsync<ConfigValueException>(() => broker.StartAsync());
        Assert.Contains("not supported by Samsa", e.Message);
        await broker.DisposeAsync();
    }

    [Fact]
    public async Task DefaultGssapiOnASaslListenerStopsTheBrokerButNotOnPlaintext()
    {
        var dir = Path.Combine(Path.GetTempPath(), "samsa-sasl-" + Guid.NewGuid().ToString("N"));
        var broker = new KafkaBroker(new BrokerConfig(new Dictionary<string, string>
        {
            ["broker.id"] = "1", ["log.dirs"] = dir, ["listeners"] = "SASL_PLAINTEXT://127.0.0.1:0",
            // the only listener is SASL, so it is also the inter-broker one (upstream requires that)
            ["security.inter.broker.protocol"] = "SASL_PLAINTEXT",
        }));
        var e = await Assert.ThrowsAsync<ConfigValueException>(() => broker.StartAsync());
        Assert.Contains("GSSAPI", e.Message);
        await broker.DisposeAsync();
        await using var plain = await LiveBroker.StartAsync();   // PLAINTEXT only: GSSAPI default is irrelevant
    }

    [Fact]
    public async Task MechanismWithoutJaasStopsTheBroker()
    {
        var props = SaslProps().Where(p => !p.Item1.Contains(".plain.sasl.jaas")).ToDictionary(p => p.Item1, p => p.Item2);
        props["log.dirs"] = Path.Combine(Path.GetTempPath(), "samsa-sasl-" + Guid.NewGuid().ToString("N"));
        props["broker.id"] = "1";
        var broker = new KafkaBroker(new BrokerConfig(props));
        var e = await Assert.ThrowsAsync<ConfigValueException>(() => broker.StartAsync());
        Assert.Contains("JAAS", e.Message);
        Assert.Contains("PLAIN", e.Message);
        await broker.DisposeAsync();
    }

    [Fact]
    public async Task JaasFileKafkaServerSectionIsUsed()
    {
        var jaasPath = Path.Combine(Path.GetTempPath(), $"samsa-jaas-{Guid.NewGuid():N}.conf");
        File.WriteAllText(jaasPath, """
            // upstream's example kafka_server_jaas.conf
            KafkaServer {
                org.apache.kafka.common.security.plain.PlainLoginModule required
                username="admin"
                password="admin-secret"
                user_admin="admin-secret"
                user_gina="gina-secret";
                org.apache.kafka.common.security.scram.ScramLoginModule required;
            };
            Client {
                org.apache.zookeeper.server.auth.DigestLoginModule required username="zk" password="zk";
            };
            """);
        try
        {
            await using var live = await LiveBroker.StartAsync(null,
                ("listeners", "SASL_PLAINTEXT://127.0.0.1:0"), ("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-256"),
                ("security.inter.broker.protocol", "SASL_PLAINTEXT"), ("sasl.mechanism.inter.broker.protocol", "PLAIN"),
                ("java.security.auth.login.config", jaasPath));
            await using var c = await ConnectAsync(live);
            await c.AuthenticateAsync("PLAIN", "gina", "gina-secret");
            Assert.NotNull(await MetadataAsync(c));
            // the broker's own inter-broker login comes from the same KafkaServer section
            Assert.Equal(new InterBrokerSasl.Credentials("PLAIN", "admin", "admin-secret"), InterBrokerSasl.Resolve(live.Broker));
        }
        finally { File.Delete(jaasPath); }
    }

    [Fact]
    public async Task InterBrokerCredentialsComeFromTheListenersJaas()
    {
        await using var live = await StartAsync();
        var creds = InterBrokerSasl.Resolve(live.Broker);
        Assert.Equal(new InterBrokerSasl.Credentials("PLAIN", "admin", "admin-secret"), creds);
        var authenticate = InterBrokerSasl.Authenticator(live.Broker)!;
        await using var c = await ConnectAsync(live);
        await authenticate(c, CancellationToken.None);
        Assert.NotNull(await MetadataAsync(c));
    }

    [Fact]
    public void JaasParserReadsSectionsFlagsAndQuotedValues()
    {
        var file = JaasConfig.ParseFile("""
            /* comment */ sasl_ssl.KafkaServer { a.B required k1="v 1" k2=bare k3="quote\"d"; c.D optional; };
            KafkaServer { x.Y sufficient; };
            """);
        Assert.Equal(2, file.Count);
        var m = file["sasl_ssl.KafkaServer"][0];
        Assert.Equal(("a.B", "required", "v 1", "bare", "quote\"d"), (m.ClassName, m.Flag, m.Option("k1"), m.Option("k2"), m.Option("k3")));
        Assert.Equal("optional", file["sasl_ssl.KafkaServer"][1].Flag);
        Assert.Throws<FormatException>(() => JaasConfig.ParseInline("a.B required k=\"v\""));   // no ';'
        Assert.Throws<FormatException>(() => JaasConfig.ParseInline("a.B mandatory;"));
        Assert.Equal("/etc/kafka/jaas.conf", JaasConfig.LoginConfigFromKafkaOpts("-Xmx1g -Djava.security.auth.login.config=/etc/kafka/jaas.conf -Dfoo=bar"));
        Assert.Null(JaasConfig.LoginConfigFromKafkaOpts("-Xmx1g"));
    }

    [Fact]
    public void ScramKnownAnswerRfc7677()
    {
        // RFC 7677 §3: user "user", password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096 iterations.
        var m = ScramMechanism.Sha256;
        var salted = m.SaltedPassword("pencil", Convert.FromBase64String("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096);
        string authMessage = "n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        var clientKey = m.ClientKey(salted);
        var proof = ScramMessages.Xor(clientKey, m.Hmac(m.StoredKey(clientKey), Encoding.UTF8.GetBytes(authMessage)));
        Assert.Equal("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", Convert.ToBase64String(proof));
        Assert.Equal("6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", Convert.ToBase64String(m.Hmac(m.ServerKey(salted), Encoding.UTF8.GetBytes(authMessage))));
        var cred = m.CredentialFromSaltedPassword([1, 2, 3], salted, 4096);
        Assert.Equal(cred.StoredKey, ScramCredential.Parse(cred.Format())!.StoredKey);
    }
}

/// <summary>OAUTHBEARER with signed JWTs checked against a local JWKS (upstream's
/// OAuthBearerValidatorCallbackHandler with a file: sasl.oauthbearer.jwks.endpoint.url).</summary>
public class SignedJwtTests
{
    private static string B64(byte[] b) => Convert.ToBase64String(b).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    private static string B64(string s) => B64(Encoding.UTF8.GetBytes(s));

    private static string Sign(System.Security.Cryptography.RSA key, string claims, string kid = "k1", string alg = "RS256")
    {
        string signingInput = B64($"{{\"alg\":\"{alg}\",\"kid\":\"{kid}\",\"typ\":\"JWT\"}}") + "." + B64(claims);
        var sig = key.SignData(Encoding.ASCII.GetBytes(signingInput), System.Security.Cryptography.HashAlgorithmName.SHA256, System.Security.Cryptography.RSASignaturePadding.Pkcs1);
        return signingInput + "." + B64(sig);
    }

    [Fact]
    public async Task SignedTokensFromTheConfiguredKeyAuthenticateOthersDoNot()
    {
        using var key = System.Security.Cryptography.RSA.Create(2048);
        using var other = System.Security.Cryptography.RSA.Create(2048);
        var p = key.ExportParameters(false);
        var jwks = Path.Combine(Path.GetTempPath(), $"jwks-{Guid.NewGuid():N}.json");
        File.WriteAllText(jwks, $"{{\"keys\":[{{\"kty\":\"RSA\",\"kid\":\"k1\",\"alg\":\"RS256\",\"n\":\"{B64(p.Modulus!)}\",\"e\":\"{B64(p.Exponent!)}\"}}]}}");
        try
        {
            await using var live = await LiveBroker.StartAsync(null, SaslTests.SaslProps(
                ("listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class", JwksJwtValidator.HandlerClass),
                ("listener.name.sasl_plaintext.oauthbearer.sasl.oauthbearer.jwks.endpoint.url", new Uri(jwks).AbsoluteUri),
                ("sasl.oauthbearer.expected.audience", "kafka"),
                ("sasl.oauthbearer.expected.issuer", "https://issuer.example")));
            long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            string Claims(string aud = "kafka", string iss = "https://issuer.example", long? exp = null) =>
                $"{{\"sub\":\"svc\",\"aud\":\"{aud}\",\"iss\":\"{iss}\",\"iat\":{now},\"exp\":{exp ?? now + 600}}}";
            async Task<(short, string?)> TryAsync(string token)
            {
                await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", live.Broker.BoundEndPoint.Port);
                await c.SendAsync<SaslHandshakeResponse>(new SaslHandshakeRequest { Mechanism = "OAUTHBEARER" }, 1);
                var a = await c.SendAsync<SaslAuthenticateResponse>(new SaslAuthenticateRequest { AuthBytes = Encoding.UTF8.GetBytes($"n,,\u0001auth=Bearer {token}\u0001\u0001") }, 2);
                if (a!.ErrorCode == 0 && a.AuthBytes.Length > 0)
                    a = await c.SendAsync<SaslAuthenticateResponse>(new SaslAuthenticateRequest { AuthBytes = [1] }, 2);
                if (a!.ErrorCode == 0) Assert.NotNull(await c.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [] }, 1));
                return (a.ErrorCode, a.ErrorMessage);
            }
            Assert.Equal(0, (await TryAsync(Sign(key, Claims()))).Item1);
            Assert.Equal((short)ErrorCode.SaslAuthenticationFailed, (await TryAsync(Sign(other, Claims()))).Item1);            // wrong key
            Assert.Equal((short)ErrorCode.SaslAuthenticationFailed, (await TryAsync(Sign(key, Claims(aud: "x")))).Item1);       // audience
            Assert.Equal((short)ErrorCode.SaslAuthenticationFailed, (await TryAsync(Sign(key, Claims(iss: "evil")))).Item1);    // issuer
            Assert.Equal((short)ErrorCode.SaslAuthenticationFailed, (await TryAsync(Sign(key, Claims(exp: now - 120)))).Item1); // expired beyond skew
            // An unsecured token is never accepted by the signed validator.
            Assert.Equal((short)ErrorCode.SaslAuthenticationFailed, (await TryAsync(B64("{\"alg\":\"none\"}") + "." + B64(Claims()) + ".")).Item1);
        }
        finally { File.Delete(jwks); }
    }

    [Fact]
    public async Task AnHttpJwksEndpointStopsTheBroker()
    {
        var props = new Dictionary<string, string> { ["broker.id"] = "1", ["log.dirs"] = Path.Combine(Path.GetTempPath(), "jw-" + Guid.NewGuid().ToString("N")) };
        foreach (var (k, v) in SaslTests.SaslProps(
            ("listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class", JwksJwtValidator.HandlerClass),
            ("sasl.oauthbearer.jwks.endpoint.url", "https://idp.example/jwks"))) props[k] = v;
        var broker = new KafkaBroker(new BrokerConfig(props));
        var e = await Assert.ThrowsAsync<ConfigValueException>(() => broker.StartAsync());
        Assert.Contains("file:", e.Message);
        await broker.DisposeAsync();
    }
}
