using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Cluster.ZooKeeper;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Keeper.Client;
using Samsa.Keeper.Protocol;
using Samsa.Keeper.Server;
using Samsa.Testing;
using Xunit;

namespace Samsa.Cluster.Tests;

/// <summary>
/// A broker authenticating to ZooKeeper as upstream brokers do: TLS to secureClientPort with a
/// client certificate (zookeeper.ssl.*), SASL DIGEST-MD5 from the JAAS Client section, and
/// zookeeper.set.acl=true, against the Keeper and against Apache ZooKeeper 3.8 with the same
/// settings. A second client then checks the znodes' ACLs and what an anonymous client may do.
/// </summary>
public sealed class ZooKeeperSecurityTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "zk-security-" + Guid.NewGuid().ToString("N"));
    private readonly TestCertificateAuthority _ca = TestCertificateAuthority.Create("CN=ZK Security CA");

    public ZooKeeperSecurityTests() { Directory.CreateDirectory(_root); }

    public void Dispose()
    {
        _ca.Dispose();
        try { Directory.Delete(_root, true); } catch (IOException) { }
    }

    private string Write(string name, string text)
    {
        string p = Path.Combine(_root, name);
        File.WriteAllText(p, text);
        return p;
    }

    private static string NettyClassPath() => string.Join(':', new[] { "netty-buffer", "netty-codec", "netty-common", "netty-handler", "netty-resolver",
        "netty-transport", "netty-transport-native-epoll", "netty-transport-native-unix-common" }.Select(j => $"/usr/share/java/{j}.jar"));

    private sealed record Target(string Name, string TlsAddress, string PlainAddress, IAsyncDisposable Server);

    private async Task<(string Jaas, string CaPem, string BrokerKeyStore, List<string> ServerCfg)> MaterialAsync()
    {
        string jaas = Write("jaas.conf", """
            Server {
                   org.apache.zookeeper.server.auth.DigestLoginModule required
                   user_kafka="kafka-secret";
            };
            Client {
                   org.apache.zookeeper.server.auth.DigestLoginModule required
                   username="kafka"
                   password="kafka-secret";
            };
            """);
        string caPem = Write("ca.pem", _ca.CertificatePem);
        using var serverCert = _ca.IssueServer();
        string serverPem = Write("zk-server.pem", TestCertificates.KeyToPem(serverCert) + TestCertificates.ToPem(serverCert));
        using var brokerCert = _ca.IssueClient("CN=broker,O=Samsa");
        string brokerP12 = Path.Combine(_root, "broker.p12");
        await File.WriteAllBytesAsync(brokerP12, TestCertificates.ToPkcs12(brokerCert, "brokerpw"));
        var cfg = new List<string>
        {
            "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory",
            "secureClientPortAddress=127.0.0.1",
            "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
            "authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider",
            $"ssl.keyStore.location={serverPem}", "ssl.keyStore.type=PEM",
            $"ssl.trustStore.location={caPem}", "ssl.trustStore.type=PEM",
            "ssl.clientAuth=want",
        };
        return (jaas, caPem, brokerP12, cfg);
    }

    private static Dictionary<string, string> BrokerSecurity(string jaas, string caPem, string keyStore) => new()
    {
        ["zookeeper.ssl.client.enable"] = "true",
        ["zookeeper.clientCnxnSocket"] = "org.apache.zookeeper.ClientCnxnSocketNetty",
        ["zookeeper.ssl.keystore.location"] = keyStore,
        ["zookeeper.ssl.keystore.password"] = "brokerpw",
        ["zookeeper.ssl.keystore.type"] = "PKCS12",
        ["zookeeper.ssl.truststore.location"] = caPem,
        ["zookeeper.ssl.truststore.type"] = "PEM",
        ["zookeeper.set.acl"] = "true",
        ["java.security.auth.login.config"] = jaas,
    };

    private static string AclText(List<Samsa.Keeper.Protocol.Records.ACL> acl) =>
        string.Join(";", acl.Select(a => $"{a.Id.Scheme}:{a.Id.IdValue}:{a.Perms}").OrderBy(x => x, StringComparer.Ordinal));

    private async Task<List<string>> RunAsync(string tlsAddress, string plainAddress, string jaas, string caPem, string keyStore)
    {
        await using var cluster = await LocalCluster.StartAsync(tlsAddress, 1, brokerConfig: BrokerSecurity(jaas, caPem, keyStore));
        // the broker creates a topic (auto-creation) and its controller writes the partition state
        await using (var client = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(1)))
            await client.SendAsync<MetadataResponse>(new MetadataRequest
            {
                Topics = new() { new MetadataRequest.MetadataRequestTopic { Name = "secured" } }, AllowAutoTopicCreation = true,
            }, 12);
        await cluster.LedMetadataAsync(1, "secured", 1);
        // A SCRAM user and a client quota made through the Kafka admin APIs: their znodes get the
        // same secure ACLs as upstream's AdminZkClient writes (/config/users creator-only).
        await using (var client = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(1)))
        {
            var m = Samsa.Kafka.Broker.Security.Sasl.ScramMechanism.Sha256;
            byte[] salt = "salt-of-alice-16"u8.ToArray();
            var scram = await client.SendAsync<AlterUserScramCredentialsResponse>(new AlterUserScramCredentialsRequest
            {
                Upsertions = [new() { Name = "alice", Mechanism = m.Type, Iterations = 4096, Salt = salt, SaltedPassword = m.SaltedPassword("alice-pw", salt, 4096) }],
            }, 0);
            Assert.Equal(0, Assert.Single(scram!.Results).ErrorCode);
            var entry = new AlterClientQuotasRequest.EntryData();
            entry.Entity.Add(new() { EntityType = "client-id", EntityName = "app" });
            entry.Ops.Add(new() { Key = "producer_byte_rate", Value = 1024, Remove = false });
            var quota = await client.SendAsync<AlterClientQuotasResponse>(new AlterClientQuotasRequest { Entries = [entry] }, 1);
            Assert.Equal(0, Assert.Single(quota!.Entries).ErrorCode);
        }
        string c = cluster.Chroot;
        // a client with the broker's SASL identity reads every ACL; an anonymous one on the plain port
        await using var kafka = await KeeperClient.ConnectAsync(plainAddress + c, new KeeperClientOptions { Sasl = KeeperClientSasl.FromJaasFile(jaas) });
        await using var anon = await KeeperClient.ConnectAsync(plainAddress + c);
        var result = new List<string>();
        foreach (var path in new[] { "/brokers/ids/1", "/brokers/topics/secured", "/brokers/topics/secured/partitions/0/state", "/controller", "/cluster/id", "/config/users", "/config/users/alice", "/config/clients/app", "/config/brokers", "/consumers" })
        {
            if (await kafka.ExistsAsync(path) is null) { result.Add($"{path} missing"); continue; }
            result.Add($"{path} {AclText((await kafka.GetAclAsync(path)).Acl)}");
        }
        result.Add("anon read /brokers/ids/1: " + await Outcome(() => anon.GetDataAsync("/brokers/ids/1")));
        result.Add("anon read /config/users: " + await Outcome(() => anon.GetChildrenAsync("/config/users")));
        result.Add("anon write /brokers/topics/evil: " + await Outcome(() => anon.CreateAsync("/brokers/topics/evil", null, Acls.OpenAclUnsafe)));
        result.Add("anon setData /controller: " + await Outcome(() => anon.SetDataAsync("/controller", new byte[] { 1 })));
        return result;
    }

    private static async Task<string> Outcome(Func<Task> op)
    {
        try { await op(); return "ok"; }
        catch (Samsa.Keeper.Client.KeeperException e) { return e.Code.ToString(); }
    }

    [Fact]
    public async Task Broker_with_sasl_tls_and_set_acl_creates_the_same_secure_znodes_on_keeper_and_upstream()
    {
        var (jaas, caPem, keyStore, cfg) = await MaterialAsync();
        var keeperCfg = KeeperConfig.Parse(string.Join('\n', cfg.Concat(new[] { "clientPort=0", "clientPortAddress=127.0.0.1", "secureClientPort=0", "admin.enableServer=false", "tickTime=500", "maxClientCnxns=0" })));
        keeperCfg.Apply("java.security.auth.login.config", jaas);
        List<string> keeperResult;
        await using (var keeper = await KeeperHost.StartAsync(keeperCfg))
            keeperResult = await RunAsync($"127.0.0.1:{keeper.SecureEndPoint!.Port}", $"127.0.0.1:{keeper.LocalEndPoint.Port}", jaas, caPem, keyStore);

        int upTls = TestEnvironment.FreePort(22950);
        var (up, why) = await ApacheZooKeeper.StartAsync(22900, cfg.Append($"secureClientPort={upTls}"), new[] { $"-Djava.security.auth.login.config={jaas}" },
            "zk-sec-", NettyClassPath());
        Assert.True(up is not null, why);
        List<string> upstreamResult;
        await using (up)
            upstreamResult = await RunAsync($"127.0.0.1:{upTls}", up!.Address, jaas, caPem, keyStore);

        // upstream ZkData.defaultAcls: creator (sasl + x509 ids) ALL, world READ except sensitive paths; /consumers open
        Assert.Contains("/brokers/ids/1 sasl:kafka:31;world:anyone:1;x509:CN=broker,O=Samsa:31", upstreamResult);
        Assert.Contains("/config/users sasl:kafka:31;x509:CN=broker,O=Samsa:31", upstreamResult);
        Assert.Contains("anon read /config/users: NoAuth", upstreamResult);
        Assert.Contains("/config/users/alice sasl:kafka:31;x509:CN=broker,O=Samsa:31", upstreamResult);
        Assert.Contains("/config/clients/app sasl:kafka:31;world:anyone:1;x509:CN=broker,O=Samsa:31", upstreamResult);
        Assert.Equal(upstreamResult, keeperResult);
    }

    [Fact]
    public async Task A_refused_sasl_password_stops_the_broker_start_with_auth_failed()
    {
        var (jaas, _, _, cfg) = await MaterialAsync();
        string wrong = Write("wrong.conf", """
            Client {
                   org.apache.zookeeper.server.auth.DigestLoginModule required
                   username="kafka"
                   password="not-it";
            };
            """);
        var keeperCfg = KeeperConfig.Parse("clientPort=0\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\nauthProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n");
        keeperCfg.Apply("java.security.auth.login.config", jaas);
        await using var keeper = await KeeperHost.StartAsync(keeperCfg);
        var e = await Assert.ThrowsAsync<ConfigValueException>(() => LocalCluster.StartAsync($"127.0.0.1:{keeper.LocalEndPoint.Port}", 1,
            brokerConfig: new Dictionary<string, string> { ["java.security.auth.login.config"] = wrong, ["zookeeper.set.acl"] = "true" }));
        Assert.StartsWith("Auth failed either before or while waiting for connection", e.Message);
    }

    [Fact]
    public void Set_acl_without_sasl_or_a_client_certificate_stops_the_broker_with_one_line()
    {
        var config = new BrokerConfig(new Dictionary<string, string> { ["zookeeper.connect"] = "127.0.0.1:1", ["zookeeper.set.acl"] = "true" });
        var e = Assert.Throws<ConfigValueException>(() => ZkClientSecurity.FromConfig(config));
        Assert.StartsWith("zookeeper.set.acl is true, but ZooKeeper client TLS configuration", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Default_acls_follow_upstream_zkdata()
    {
        Assert.Equal(Acls.OpenAclUnsafe.Count, ZkClientSecurity.DefaultAcls(false, "/brokers/ids/1").Count);
        Assert.Equal("world", ZkClientSecurity.DefaultAcls(true, "/consumers").Single().Id.Scheme);
        Assert.Equal(new[] { "auth", "world" }, ZkClientSecurity.DefaultAcls(true, "/brokers/topics/t").Select(a => a.Id.Scheme));
        Assert.Equal(new[] { "auth" }, ZkClientSecurity.DefaultAcls(true, "/config/users/alice").Select(a => a.Id.Scheme));
        Assert.Equal(new[] { "auth" }, ZkClientSecurity.DefaultAcls(true, "/delegation_token/tokens").Select(a => a.Id.Scheme));
    }
}
