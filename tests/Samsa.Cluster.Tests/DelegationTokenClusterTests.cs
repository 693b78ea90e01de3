using System.Text;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Security.Sasl;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;
using Xunit;

namespace Samsa.Cluster.Tests;

public sealed class KeeperDelegationTokenTests(KeeperServer server) : DelegationTokenClusterTests(server), IClassFixture<KeeperServer>;

public sealed class ApacheZooKeeperDelegationTokenTests(ApacheZooKeeperServer server) : DelegationTokenClusterTests(server), IClassFixture<ApacheZooKeeperServer>;

/// <summary>Delegation tokens in ZooKeeper as upstream's DelegationTokenManagerZk keeps them
/// (/delegation_token/tokens/&lt;id&gt; plus a token_changes notification): a token created by a SCRAM
/// user at one broker authenticates at the others, and expiring it at one refuses it everywhere.</summary>
public abstract class DelegationTokenClusterTests(ICoordinationServer server)
{
    private const string ScramJaas = "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"admin-secret\";";

    private string Server
    {
        get
        {
            Assert.SkipWhen(server.SkipReason is not null, server.SkipReason ?? "");
            return server.Address!;
        }
    }

    private static readonly Dictionary<string, string> Config = new()
    {
        ["listeners"] = "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
        ["inter.broker.listener.name"] = "PLAINTEXT",
        ["sasl.enabled.mechanisms"] = "SCRAM-SHA-256,SCRAM-SHA-512",
        ["listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config"] = ScramJaas,
        ["listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config"] = ScramJaas,
        ["connection.failed.authentication.delay.ms"] = "0",
        ["delegation.token.secret.key"] = "cluster-secret",
    };

    private static async Task<bool> TokenAuthenticatesAsync(int port, string tokenId, byte[] hmac)
    {
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", port);
        try
        {
            await c.AuthenticateWithTokenAsync("SCRAM-SHA-512", tokenId, hmac);
            return await c.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [] }, 1) is not null;
        }
        catch (SaslAuthenticationException) { return false; }
    }

    [Fact]
    public async Task TokenCreatedAtOneBrokerAuthenticatesAtAnotherAndExpiresEverywhere()
    {
        await using var cluster = await LocalCluster.StartAsync(Server, 3, brokerConfig: Config);
        int Sasl(int id) => cluster[id].BoundEndPointOf("SASL_PLAINTEXT").Port;
        var m = ScramMechanism.Sha256;
        var salt = Encoding.UTF8.GetBytes("alice-salt-bytes");
        await using (var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster[3].BoundEndPointOf("PLAINTEXT").Port))
        {
            var r = await c.SendAsync<AlterUserScramCredentialsResponse>(new AlterUserScramCredentialsRequest
            {
                Upsertions = [new() { Name = "alice", Mechanism = m.Type, Iterations = 4096, Salt = salt, SaltedPassword = m.SaltedPassword("alice-pw", salt, 4096) }],
            }, 0);
            Assert.Equal(0, Assert.Single(r!.Results).ErrorCode);
            // Over PLAINTEXT the token APIs are refused, as upstream.
            var plain = await c.SendAsync<CreateDelegationTokenResponse>(new CreateDelegationTokenRequest { MaxLifetimeMs = -1 }, 3);
            Assert.Equal((short)ErrorCode.DelegationTokenRequestNotAllowed, plain!.ErrorCode);
        }

        string tokenId = "";
        byte[] hmac = [];
        await LocalCluster.WaitUntilAsync(async () =>
        {
            await using var alice = await KafkaWireClient.ConnectAsync("127.0.0.1", Sasl(3));
            try { await alice.AuthenticateAsync("SCRAM-SHA-256", "alice", "alice-pw"); }
            catch (SaslAuthenticationException) { return false; }
            var created = await alice.SendAsync<CreateDelegationTokenResponse>(new CreateDelegationTokenRequest
            {
                MaxLifetimeMs = -1, Renewers = [new() { PrincipalType = "User", PrincipalName = "bob" }],
            }, 3);
            Assert.Equal(0, created!.ErrorCode);
            (tokenId, hmac) = (created.TokenId, created.Hmac);
            return true;
        }, TimeSpan.FromSeconds(15), "alice creates a token at broker 3");

        await using (var zk = await cluster.ZooKeeperAsync())
        {
            var node = await LocalCluster.ReadJsonAsync(zk, $"/delegation_token/tokens/{tokenId}");
            Assert.Equal(3, (int)node["version"]!);
            Assert.Equal("User%3Aalice", (string)node["owner"]!);
            Assert.Equal("User%3Aalice", (string)node["tokenRequester"]!);
            Assert.Equal("User%3Abob", (string)node["renewers"]![0]!);
            Assert.Equal(tokenId, (string)node["tokenId"]!);
            Assert.Null(node["hmac"]);   // never stored: each broker derives it from the shared secret
            var changes = await zk.GetChildrenAsync("/delegation_token/token_changes");
            Assert.Contains(changes, ch => ch.StartsWith("token_change_", StringComparison.Ordinal));
            var bodies = new List<string>();
            foreach (var ch in changes) bodies.Add(Encoding.UTF8.GetString((await zk.GetDataAsync("/delegation_token/token_changes/" + ch)).Data));
            Assert.Contains(tokenId, bodies);
        }

        foreach (int id in new[] { 1, 2 })
            await LocalCluster.WaitUntilAsync(() => TokenAuthenticatesAsync(Sasl(id), tokenId, hmac), TimeSpan.FromSeconds(15), $"the token authenticates at broker {id}");
        Assert.False(await TokenAuthenticatesAsync(Sasl(1), tokenId, [9, 9, 9]));

        // Described at broker 2 (as alice), expired at broker 1: refused at every broker, znode gone.
        await using (var alice = await KafkaWireClient.ConnectAsync("127.0.0.1", Sasl(2)))
        {
            await alice.AuthenticateAsync("SCRAM-SHA-256", "alice", "alice-pw");
            var d = await alice.SendAsync<DescribeDelegationTokenResponse>(new DescribeDelegationTokenRequest { Owners = null }, 3);
            Assert.Equal(tokenId, Assert.Single(d!.Tokens).TokenId);
        }
        await using (var alice = await KafkaWireClient.ConnectAsync("127.0.0.1", Sasl(1)))
        {
            await alice.AuthenticateAsync("SCRAM-SHA-256", "alice", "alice-pw");
            var e = await alice.SendAsync<ExpireDelegationTokenResponse>(new ExpireDelegationTokenRequest { Hmac = hmac, ExpiryTimePeriodMs = -1 }, 2);
            Assert.Equal(0, e!.ErrorCode);
        }
        foreach (int id in new[] { 1, 2, 3 })
            await LocalCluster.WaitUntilAsync(async () => !await TokenAuthenticatesAsync(Sasl(id), tokenId, hmac), TimeSpan.FromSeconds(15), $"broker {id} refuses the expired token");
        await using (var zk = await cluster.ZooKeeperAsync())
            Assert.Null(await zk.ExistsAsync($"/delegation_token/tokens/{tokenId}"));
    }
}
