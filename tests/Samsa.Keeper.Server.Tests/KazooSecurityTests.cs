using Samsa.Testing;
using Xunit;

namespace Samsa.Keeper.Server.Tests;

/// <summary>kazoo (python3-kazoo, SASL through python3-pure-sasl) with SASL DIGEST-MD5 and with
/// TLS client certificates against the Keeper and against Apache ZooKeeper 3.8 on the same settings.</summary>
public sealed class KazooSecurityTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "keeper-kazoo-sec-" + Guid.NewGuid().ToString("N"));
    private readonly TestCertificateAuthority _ca = TestCertificateAuthority.Create("CN=Kazoo Test CA");

    public KazooSecurityTests() { Directory.CreateDirectory(_root); }

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

    private static void RequireKazooSasl()
    {
        ExternalTools.RequireKazoo();
        ExternalTools.Require("python3-pure-sasl", () => ExternalTools.Run(ExternalTools.Python, new[] { "-c", "import puresasl" }, TimeSpan.FromSeconds(30)).Code == 0);
    }

    // each step prints one outcome line; errors are printed by their kazoo exception class
    private const string SaslScript = """
        import sys, logging
        from kazoo.client import KazooClient
        from kazoo.security import make_acl
        logging.basicConfig(level=logging.CRITICAL)
        hosts = sys.argv[1]
        def client(user, pw):
            return KazooClient(hosts=hosts, sasl_options={'mechanism': 'DIGEST-MD5', 'username': user, 'password': pw}, connection_retry={'max_tries': 1}, timeout=5)
        def step(name, f):
            try:
                print(name, f())
            except Exception as e:
                print(name, type(e).__name__)
        bob = client('bob', 'bobsecret'); bob.start(timeout=10)
        step('create', lambda: bob.create('/kz', b'secret-data', acl=[make_acl('sasl', 'bob', all=True)]))
        step('read-bob', lambda: bob.get('/kz')[0].decode())
        step('acl', lambda: [(a.id.scheme, a.id.id, a.perms) for a in bob.get_acls('/kz')[0]])
        bob.stop()
        alice = client('alice', 'alicesecret'); alice.start(timeout=10)
        step('read-alice', lambda: alice.get('/kz')[0].decode())
        alice.stop()
        anon = KazooClient(hosts=hosts, timeout=5); anon.start(timeout=10)
        step('read-anon', lambda: anon.get('/kz')[0].decode())
        anon.stop()
        def wrong():
            c = client('bob', 'wrong')
            try:
                c.start(timeout=5)
                return c.get('/kz')[0].decode()
            finally:
                c.stop()
        step('wrong-password', wrong)
        """;

    private const string TlsScript = """
        import sys, logging
        from kazoo.client import KazooClient
        from kazoo.security import make_acl
        logging.basicConfig(level=logging.CRITICAL)
        hosts, ca, cert, key, other = sys.argv[1:6]
        def step(name, f):
            try:
                print(name, f())
            except Exception as e:
                print(name, type(e).__name__)
        zk = KazooClient(hosts=hosts, use_ssl=True, ca=ca, certfile=cert, keyfile=key, verify_certs=True, timeout=5)
        zk.start(timeout=10)
        step('create', lambda: zk.create('/kt', b'secret-data', acl=[make_acl('auth', '', all=True)]))
        step('acl', lambda: [(a.id.scheme, a.id.id, a.perms) for a in zk.get_acls('/kt')[0]])
        step('read', lambda: zk.get('/kt')[0].decode())
        zk.stop()
        def untrusted():
            c = KazooClient(hosts=hosts, use_ssl=True, ca=other, verify_certs=True, timeout=3, connection_retry={'max_tries': 1})
            try:
                c.start(timeout=4)
                return 'connected'
            finally:
                c.stop()
        step('untrusted-server', untrusted)
        """;

    [Fact]
    public async Task Kazoo_sasl_digest_same_outcomes_on_keeper_and_upstream()
    {
        RequireKazooSasl();
        if (ServerProcess.UpstreamUnavailable() is { } why) throw new InvalidOperationException(why);
        string jaas = Write("jaas.conf", """
            Server {
                   org.apache.zookeeper.server.auth.DigestLoginModule required
                   user_bob="bobsecret"
                   user_alice="alicesecret";
            };
            """);
        string cfg = "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n";
        using var samsa = await ServerProcess.StartSamsaAsync(ServerProcess.WriteConfig(_root, Path.Combine(_root, "s"), 0, cfg), $"-Djava.security.auth.login.config={jaas}");
        using var up = await ServerProcess.StartUpstreamAsync(_root, Path.Combine(_root, "u"), cfg, $"-Djava.security.auth.login.config={jaas}");
        Assert.True(samsa.Started && up.Started, samsa.Log + up.Log);
        var a = ExternalTools.RunPython(SaslScript, $"127.0.0.1:{samsa.Port}");
        var b = ExternalTools.RunPython(SaslScript, $"127.0.0.1:{up.Port}");
        Assert.True(b.Code == 0, b.Out + b.Err);
        Assert.Contains("read-bob secret-data", b.Out);
        Assert.Contains("read-alice NoAuthError", b.Out);
        Assert.Contains("wrong-password AuthFailedError", b.Out);
        Assert.Equal(b.Out, a.Out);
    }

    [Fact]
    public async Task Kazoo_tls_with_client_certificate_same_outcomes_on_keeper_and_upstream()
    {
        ExternalTools.RequireKazoo();
        if (ServerProcess.UpstreamUnavailable() is { } why) throw new InvalidOperationException(why);
        string caPem = Write("ca.pem", _ca.CertificatePem);
        using var other = TestCertificateAuthority.Create("CN=Other");
        string otherPem = Write("other.pem", other.CertificatePem);
        using var serverCert = _ca.IssueServer();
        string serverPem = Write("server.pem", TestCertificates.KeyToPem(serverCert) + TestCertificates.ToPem(serverCert));
        using var client = _ca.IssueClient("CN=kazoo,O=Samsa");
        string certPem = Write("client.crt", TestCertificates.ToPem(client));
        string keyPem = Write("client.key", TestCertificates.KeyToPem(client));
        string common = $"serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\nsecureClientPortAddress=127.0.0.1\n"
            + $"authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider\nssl.keyStore.location={serverPem}\nssl.keyStore.type=PEM\n"
            + $"ssl.trustStore.location={caPem}\nssl.trustStore.type=PEM\n";
        int p1 = TestEnvironment.FreePort(22650), p2 = TestEnvironment.FreePort(22750);
        using var samsa = await ServerProcess.StartSamsaAsync(ServerProcess.WriteConfig(_root, Path.Combine(_root, "s"), 0, common + $"secureClientPort={p1}\n"));
        using var up = await ServerProcess.StartUpstreamAsync(_root, Path.Combine(_root, "u"), common + $"secureClientPort={p2}\n", "-cp", TlsSecurityTests.NettyClassPath());
        Assert.True(samsa.Started && up.Started, samsa.Log + up.Log);
        var a = ExternalTools.RunPython(TlsScript, $"127.0.0.1:{p1}", caPem, certPem, keyPem, otherPem);
        var b = ExternalTools.RunPython(TlsScript, $"127.0.0.1:{p2}", caPem, certPem, keyPem, otherPem);
        Assert.True(b.Code == 0, b.Out + b.Err);
        Assert.Contains("read secret-data", b.Out);
        Assert.Contains("('x509', 'CN=kazoo,O=Samsa', 31)", b.Out);
        Assert.Equal(b.Out, a.Out);
    }
}
