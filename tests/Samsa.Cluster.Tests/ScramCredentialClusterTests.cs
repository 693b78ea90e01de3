using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Samsa.Kafka.Broker;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Security.Sasl;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Keeper.Client;
using Samsa.Keeper.Protocol;
using Xunit;

namespace Samsa.Cluster.Tests;

public sealed class KeeperScramCredentialTests(KeeperServer server) : ScramCredentialClusterTests(server), IClassFixture<KeeperServer>;

public sealed class ApacheZooKeeperScramCredentialTests(ApacheZooKeeperServer server) : ScramCredentialClusterTests(server), IClassFixture<ApacheZooKeeperServer>;

/// <summary>SCRAM credentials in ZooKeeper as upstream keeps them: /config/users/&lt;user&gt; plus a
/// users/&lt;user&gt; change notification. A user created through AlterUserScramCredentials at one broker
/// authenticates at the others; credentials written straight into the znode (kafka-configs.sh
/// --zookeeper) are accepted; the user's other config keys (quotas) survive.</summary>
public abstract class ScramCredentialClusterTests(ICoordinationServer server)
{
    private string Server
    {
        get
        {
            Assert.SkipWhen(server.SkipReason is not null, server.SkipReason ?? "");
            return server.Address!;
        }
    }

    /// <summary>A full SCRAM exchange of our client against the server side of one broker's store.</summary>
    internal static bool Authenticates(KafkaBroker broker, ScramMechanism m, string user, string password)
    {
        var client = new ScramSaslClient(m, user, password);
        var serverSide = new ScramSaslServer(m, broker.Sasl.Credentials.Get);
        try
        {
            var serverFirst = serverSide.Evaluate(client.InitialResponse());
            var serverFinal = serverSide.Evaluate(client.EvaluateChallenge(serverFirst)!);
            return client.EvaluateChallenge(serverFinal) is null && client.IsComplete && serverSide.IsComplete && serverSide.AuthorizationId == user;
        }
        catch (SaslFailedException) { return false; }
    }

    [Fact]
    public async Task UserCreatedAtOneBrokerAuthenticatesAtTheOthersAndKeepsItsQuotaKeys()
    {
        await using var cluster = await LocalCluster.StartAsync(Server, 3);
        await using (var zk = await cluster.ZooKeeperAsync())
            // A quota set earlier (kafka-configs.sh --entity-type users --add-config producer_byte_rate=1024).
            await zk.CreateAsync("/config/users/alice", Encoding.UTF8.GetBytes("{\"version\":1,\"config\":{\"producer_byte_rate\":\"1024\"}}"), Acls.OpenAclUnsafe);

        var m = ScramMechanism.Sha512;
        var salt = Encoding.UTF8.GetBytes("some-salt-bytes!");
        await using (var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(3)))
        {
            var r = await c.SendAsync<AlterUserScramCredentialsResponse>(new AlterUserScramCredentialsRequest
            {
                Upsertions = [new() { Name = "alice", Mechanism = m.Type, Iterations = 4096, Salt = salt, SaltedPassword = m.SaltedPassword("alice-pw", salt, 4096) }],
            }, 0);
            Assert.Equal(0, Assert.Single(r!.Results).ErrorCode);
        }
        await using (var zk = await cluster.ZooKeeperAsync())
        {
            var node = await LocalCluster.ReadJsonAsync(zk, "/config/users/alice");
            Assert.Equal(1, (int)node["version"]!);
            Assert.Equal("1024", (string)node["config"]!["producer_byte_rate"]!);
            var cred = (string)node["config"]!["SCRAM-SHA-512"]!;
            Assert.StartsWith($"salt={Convert.ToBase64String(salt)},stored_key=", cred);
            Assert.EndsWith(",iterations=4096", cred);
            var changes = await zk.GetChildrenAsync("/config/changes");
            var bodies = new List<string>();
            foreach (var ch in changes) bodies.Add(Encoding.UTF8.GetString((await zk.GetDataAsync("/config/changes/" + ch)).Data));
            Assert.Contains("{\"version\":2,\"entity_path\":\"users/alice\"}", bodies);
        }
        foreach (int id in new[] { 1, 2, 3 })
            await LocalCluster.WaitUntilAsync(() => Task.FromResult(Authenticates(cluster[id], m, "alice", "alice-pw")), TimeSpan.FromSeconds(15), $"broker {id} knows alice");
        Assert.False(Authenticates(cluster[1], m, "alice", "wrong"));

        // Described at another broker; deleted there, gone everywhere.
        await using (var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(1)))
        {
            var d = await c.SendAsync<DescribeUserScramCredentialsResponse>(new DescribeUserScramCredentialsRequest { Users = [new() { Name = "alice" }] }, 0);
            var info = Assert.Single(Assert.Single(d!.Results).CredentialInfos);
            Assert.Equal((m.Type, 4096), (info.Mechanism, info.Iterations));
            var del = await c.SendAsync<AlterUserScramCredentialsResponse>(new AlterUserScramCredentialsRequest { Deletions = [new() { Name = "alice", Mechanism = m.Type }] }, 0);
            Assert.Equal(0, Assert.Single(del!.Results).ErrorCode);
        }
        foreach (int id in new[] { 1, 2, 3 })
            await LocalCluster.WaitUntilAsync(() => Task.FromResult(!Authenticates(cluster[id], m, "alice", "alice-pw")), TimeSpan.FromSeconds(15), $"broker {id} forgot alice");
        await using (var zk = await cluster.ZooKeeperAsync())
        {
            var node = await LocalCluster.ReadJsonAsync(zk, "/config/users/alice");
            Assert.Equal("1024", (string)node["config"]!["producer_byte_rate"]!);
            Assert.Null(node["config"]!["SCRAM-SHA-512"]);
        }
    }

    /// <summary>The credential string of upstream's ScramFormatter/ScramCredentialUtils, computed by
    /// an independent implementation (the JDK's javax.crypto, Hi() written out as RFC 5802 gives it).</summary>
    private static string JavaCredential(string mechanism, string password, int iterations)
    {
        var dir = Path.Combine(Path.GetTempPath(), "scram-java-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var src = Path.Combine(dir, "Scram.java");
        File.WriteAllText(src, """
            import javax.crypto.Mac;
            import javax.crypto.spec.SecretKeySpec;
            import java.security.MessageDigest;
            import java.security.SecureRandom;
            import java.nio.charset.StandardCharsets;
            import java.util.Base64;
            public class Scram {
                public static void main(String[] a) throws Exception {
                    boolean s256 = a[0].equals("SCRAM-SHA-256");
                    String hmac = s256 ? "HmacSHA256" : "HmacSHA512";
                    int it = Integer.parseInt(a[2]);
                    byte[] salt = new byte[32];
                    new SecureRandom().nextBytes(salt);
                    Mac mac = Mac.getInstance(hmac);
                    mac.init(new SecretKeySpec(a[1].getBytes(StandardCharsets.UTF_8), hmac));
                    mac.update(salt);
                    byte[] u = mac.doFinal(new byte[] {0, 0, 0, 1});
                    byte[] hi = u.clone();
                    for (int i = 1; i < it; i++) {
                        u = mac.doFinal(u);
                        for (int j = 0; j < hi.length; j++) hi[j] ^= u[j];
                    }
                    Mac k = Mac.getInstance(hmac);
                    k.init(new SecretKeySpec(hi, hmac));
                    byte[] clientKey = k.doFinal("Client Key".getBytes(StandardCharsets.UTF_8));
                    byte[] serverKey = k.doFinal("Server Key".getBytes(StandardCharsets.UTF_8));
                    byte[] storedKey = MessageDigest.getInstance(s256 ? "SHA-256" : "SHA-512").digest(clientKey);
                    Base64.Encoder b = Base64.getEncoder();
                    System.out.print("salt=" + b.encodeToString(salt) + ",stored_key=" + b.encodeToString(storedKey)
                        + ",server_key=" + b.encodeToString(serverKey) + ",iterations=" + it);
                }
            }
            """);
        try
        {
            var psi = new ProcessStartInfo("java", $"{src} {mechanism} {password} {iterations}") { RedirectStandardOutput = true, RedirectStandardError = true };
            using var p = Process.Start(psi)!;
            string output = p.StandardOutput.ReadToEnd();
            string err = p.StandardError.ReadToEnd();
            Assert.True(p.WaitForExit(60_000) && p.ExitCode == 0, $"java failed: {err}");
            return output;
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public async Task CredentialsWrittenStraightIntoZooKeeperAreAccepted()
    {
        Assert.SkipWhen(!File.Exists("/usr/bin/java"), "needs Java (the JDK computes the credential independently)");
        await using var cluster = await LocalCluster.StartAsync(Server, 3);
        string c256 = JavaCredential("SCRAM-SHA-256", "bob-pw", 4096);
        string c512 = JavaCredential("SCRAM-SHA-512", "bob-pw", 8192);
        await using (var zk = await cluster.ZooKeeperAsync())
        {
            // What kafka-configs.sh --zookeeper --alter --add-config 'SCRAM-SHA-256=[...],SCRAM-SHA-512=[...]'
            // --entity-type users --entity-name bob writes: the entity znode, then the notification.
            var body = new JsonObject { ["version"] = 1, ["config"] = new JsonObject { ["SCRAM-SHA-256"] = c256, ["SCRAM-SHA-512"] = c512 } };
            await zk.CreateAsync("/config/users/bob", Encoding.UTF8.GetBytes(body.ToJsonString()), Acls.OpenAclUnsafe);
            await zk.CreateAsync("/config/changes/config_change_", Encoding.UTF8.GetBytes("{\"version\":2,\"entity_path\":\"users/bob\"}"), Acls.OpenAclUnsafe, CreateMode.PersistentSequential);
        }
        foreach (int id in new[] { 1, 2, 3 })
        {
            await LocalCluster.WaitUntilAsync(() => Task.FromResult(Authenticates(cluster[id], ScramMechanism.Sha256, "bob", "bob-pw")), TimeSpan.FromSeconds(15), $"broker {id} knows bob");
            Assert.True(Authenticates(cluster[id], ScramMechanism.Sha512, "bob", "bob-pw"));
            Assert.False(Authenticates(cluster[id], ScramMechanism.Sha512, "bob", "bob-pw2"));
        }
        // A broker started later reads it at start (LoadAllAsync), without a notification.
        await cluster.StopBrokerAsync(2);
        var restarted = await cluster.StartBrokerAsync(2);
        await LocalCluster.WaitUntilAsync(() => Task.FromResult(Authenticates(restarted, ScramMechanism.Sha512, "bob", "bob-pw")), TimeSpan.FromSeconds(15), "restarted broker knows bob");
    }
}
