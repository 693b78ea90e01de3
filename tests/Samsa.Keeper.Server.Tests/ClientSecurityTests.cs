using System.Text;
using Samsa.Keeper.Client;
using Samsa.Keeper.Protocol;
using Samsa.Keeper.Protocol.Records;
using Samsa.Testing;
using Xunit;
using ClientException = Samsa.Keeper.Client.KeeperException;
using Perms = Samsa.Keeper.Client.Perms;

namespace Samsa.Keeper.Server.Tests;

/// <summary>Samsa.Keeper.Client with SASL DIGEST-MD5 (JAAS Client section) and TLS (trust store,
/// client certificate) against the Keeper and against Apache ZooKeeper 3.8 on the same settings.</summary>
public sealed class ClientSecurityTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "keeper-client-sec-" + Guid.NewGuid().ToString("N"));
    private readonly TestCertificateAuthority _ca = TestCertificateAuthority.Create("CN=Client Test CA");

    public ClientSecurityTests() { Directory.CreateDirectory(_root); }

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

    private string ServerJaas() => Write("server-jaas.conf", """
        Server {
               org.apache.zookeeper.server.auth.DigestLoginModule required
               user_bob="bobsecret"
               user_alice="alicesecret";
        };
        Client {
               org.apache.zookeeper.server.auth.DigestLoginModule required
               username="bob"
               password="bobsecret";
        };
        """);

    private static List<ACL> SaslAcl(string user) => new() { new ACL { Perms = (int)Perms.All, Id = new Id { Scheme = "sasl", IdValue = user } } };

    private async Task<(string Address, IAsyncDisposable Server)[]> BothSaslAsync(string extraCfg = "")
    {
        string jaas = ServerJaas();
        string cfg = "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n" + extraCfg;
        var kc = KeeperConfig.Parse($"clientPort=0\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n{cfg}");
        kc.Apply("java.security.auth.login.config", jaas);
        var keeper = await KeeperHost.StartAsync(kc);
        var up = await ServerProcess.StartUpstreamAsync(_root, Path.Combine(_root, "up-" + Guid.NewGuid().ToString("N")), cfg, $"-Djava.security.auth.login.config={jaas}");
        Assert.True(up.Started, up.Log);
        return new (string, IAsyncDisposable)[] { ($"127.0.0.1:{keeper.LocalEndPoint.Port}", keeper), ($"127.0.0.1:{up.Port}", new Disposer(up)) };
    }

    private sealed class Disposer(IDisposable d) : IAsyncDisposable
    {
        public ValueTask DisposeAsync() { d.Dispose(); return ValueTask.CompletedTask; }
    }

    [Fact]
    public async Task Sasl_digest_from_the_jaas_client_section_authenticates_on_keeper_and_upstream()
    {
        var servers = await BothSaslAsync();
        try
        {
            string jaas = Path.Combine(_root, "server-jaas.conf");
            foreach (var (addr, _) in servers)
            {
                var events = new List<KeeperState>();
                await using (var bob = await KeeperClient.ConnectAsync(addr, new KeeperClientOptions
                {
                    Sasl = KeeperClientSasl.FromJaasFile(jaas), DefaultWatcher = e => { lock (events) events.Add(e.State); },
                }))
                {
                    var who = await bob.WhoAmIAsync();
                    Assert.Contains(who, w => w.Scheme == "sasl" && w.User == "bob");
                    await bob.CreateAsync("/bobs", Encoding.UTF8.GetBytes("secret"), SaslAcl("bob"));
                    Assert.Equal("secret", Encoding.UTF8.GetString((await bob.GetDataAsync("/bobs")).Data));
                }
                lock (events) Assert.Equal(new[] { KeeperState.SyncConnected, KeeperState.SaslAuthenticated }, events.Take(2));
                await using (var alice = await KeeperClient.ConnectAsync(addr, new KeeperClientOptions { Sasl = new KeeperClientSasl { Username = "alice", Password = "alicesecret" } }))
                {
                    var e = await Assert.ThrowsAsync<ClientException>(() => alice.GetDataAsync("/bobs"));
                    Assert.Equal(Code.NoAuth, e.Code);
                }
                var wrong = await Assert.ThrowsAsync<ClientException>(() => KeeperClient.ConnectAsync(addr, new KeeperClientOptions { Sasl = new KeeperClientSasl { Username = "bob", Password = "nope" } }));
                Assert.Equal(Code.AuthFailed, wrong.Code);
            }
        }
        finally
        {
            foreach (var (_, s) in servers) await s.DisposeAsync();
        }
    }

    [Fact]
    public async Task Sasl_runs_again_on_every_reconnect()
    {
        string jaas = ServerJaas();
        var kc = KeeperConfig.Parse("clientPort=0\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\nauthProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\nsessionRequireClientSASLAuth=true\n");
        kc.Apply("java.security.auth.login.config", jaas);
        await using var keeper = await KeeperHost.StartAsync(kc);
        await using var bob = await KeeperClient.ConnectAsync($"127.0.0.1:{keeper.LocalEndPoint.Port}", new KeeperClientOptions { Sasl = KeeperClientSasl.FromJaasFile(jaas) });
        await bob.CreateAsync("/r", null, SaslAcl("bob"));
        long session = bob.SessionId;
        // the server drops the connection; the client reconnects to the same session
        foreach (var c in await keeper.Server.RunOnLoopAsync(() => keeper.Server.Connections.ToList())) c.CloseAfterSend();
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            try
            {
                // under sessionRequireClientSASLAuth a connection without SASL would be closed at once
                await bob.GetDataAsync("/r");
                var conns = await keeper.Server.RunOnLoopAsync(() => keeper.Server.Connections.Select(x => x.AuthInfo.Any(a => a.Scheme == "sasl" && a.IdValue == "bob")).ToList());
                if (conns.Count == 1 && conns[0]) break;
            }
            catch (ClientException e) when (e.Code == Code.ConnectionLoss) { }
            Assert.True(DateTime.UtcNow < deadline, "no SASL-authenticated reconnect");
            await Task.Delay(100);
        }
        Assert.Equal(session, bob.SessionId);
    }

    [Fact]
    public async Task Without_sasl_a_client_is_turned_away_by_an_enforcing_server()
    {
        var servers = await BothSaslAsync("sessionRequireClientSASLAuth=true\n");
        try
        {
            foreach (var (addr, _) in servers)
            {
                await using var anon = new KeeperClient(addr);
                await anon.WaitConnectedAsync();
                var e = await Assert.ThrowsAsync<ClientException>(() => anon.GetDataAsync("/"));
                Assert.True(e.Code is Code.SessionClosedRequireSaslAuth or Code.ConnectionLoss, e.Code.ToString());
            }
        }
        finally
        {
            foreach (var (_, s) in servers) await s.DisposeAsync();
        }
    }

    [Fact]
    public async Task Tls_with_client_certificate_on_keeper_and_upstream()
    {
        string caPem = Write("ca.pem", _ca.CertificatePem);
        using var serverCert = _ca.IssueServer();
        string serverPem = Write("server.pem", TestCertificates.KeyToPem(serverCert) + TestCertificates.ToPem(serverCert));
        using var aliceCert = _ca.IssueClient("CN=alice,O=Samsa");
        string alicePem = Write("alice.pem", TestCertificates.KeyToPem(aliceCert) + TestCertificates.ToPem(aliceCert));
        string cfg = $"serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\nsecureClientPortAddress=127.0.0.1\n"
            + $"authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider\nssl.keyStore.location={serverPem}\nssl.keyStore.type=PEM\n"
            + $"ssl.trustStore.location={caPem}\nssl.trustStore.type=PEM\nssl.clientAuth=want\n";
        var kc = KeeperConfig.Parse($"clientPort=0\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\nsecureClientPort=0\n{cfg}");
        await using var keeper = await KeeperHost.StartAsync(kc);
        int upTls = TestEnvironment.FreePort(22800);
        using var up = await ServerProcess.StartUpstreamAsync(_root, Path.Combine(_root, "up"), cfg + $"secureClientPort={upTls}\n", "-cp", TlsSecurityTests.NettyClassPath());
        Assert.True(up.Started, up.Log);
        var props = new Dictionary<string, string>
        {
            ["zookeeper.ssl.trustStore.location"] = caPem, ["zookeeper.ssl.trustStore.type"] = "PEM",
            ["zookeeper.ssl.keyStore.location"] = alicePem, ["zookeeper.ssl.keyStore.type"] = "PEM",
        };
        var tls = KeeperClientTls.FromProperties(k => props.GetValueOrDefault(k));
        var ids = new List<string>();
        foreach (int port in new[] { keeper.SecureEndPoint!.Port, upTls })
        {
            await using var zk = await KeeperClient.ConnectAsync($"127.0.0.1:{port}", new KeeperClientOptions { Tls = tls });
            var who = await zk.WhoAmIAsync();
            ids.Add(string.Join(";", who.Where(w => w.Scheme == "x509").Select(w => w.User)));
            await zk.CreateAsync("/mine", null, Acls.CreatorAllAcl);
            var (acl, _) = await zk.GetAclAsync("/mine");
            Assert.Equal("x509", Assert.Single(acl).Id.Scheme);
        }
        Assert.Equal("CN=alice,O=Samsa", ids[0]);
        Assert.Equal(ids[1], ids[0]);
        // a client that does not trust the server's issuer never connects
        using var other = TestCertificateAuthority.Create("CN=Other");
        var untrusting = new KeeperClientTls { TrustedCertificates = other.TrustStore };
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(3));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => KeeperClient.ConnectAsync($"127.0.0.1:{keeper.SecureEndPoint.Port}", new KeeperClientOptions { Tls = untrusting }, cts.Token));
    }
}
