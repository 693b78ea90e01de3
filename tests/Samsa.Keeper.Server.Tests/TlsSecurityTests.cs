using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Samsa.Keeper.Protocol;
using Samsa.Keeper.Protocol.Records;
using Samsa.Testing;
using Xunit;

namespace Samsa.Keeper.Server.Tests;

/// <summary>TLS on secureClientPort with x509 identities, as users run it: Debian's zkCli.sh over
/// Netty TLS (-Dzookeeper.client.secure=true, PEM and PKCS12 trust stores, client certificates)
/// against `samsa keeper` and against Apache ZooKeeper 3.8 on the same zoo.cfg lines.</summary>
public sealed class TlsSecurityTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "keeper-tls-" + Guid.NewGuid().ToString("N"));
    private readonly TestCertificateAuthority _ca = TestCertificateAuthority.Create("CN=Keeper Test CA");
    private readonly TestCertificateAuthority _otherCa = TestCertificateAuthority.Create("CN=Someone Else CA");

    public TlsSecurityTests() { Directory.CreateDirectory(_root); }

    public void Dispose()
    {
        _ca.Dispose();
        _otherCa.Dispose();
        try { Directory.Delete(_root, true); } catch (IOException) { }
    }

    /// <summary>Debian's zkCli.sh has no Netty on its classpath; a user adds Debian's netty jars
    /// (a later -cp in CLIENT_JVMFLAGS wins), as does the upstream server for NettyServerCnxnFactory.</summary>
    internal static string NettyClassPath()
    {
        const string j = "/usr/share/java/";
        var jars = new[] { "zookeeper.jar", "netty-buffer.jar", "netty-codec.jar", "netty-common.jar", "netty-handler.jar", "netty-resolver.jar",
            "netty-transport.jar", "netty-transport-native-epoll.jar", "netty-transport-native-unix-common.jar", "slf4j-log4j12.jar", "log4j-1.2.jar" };
        foreach (var jar in jars)
            if (!File.Exists(j + jar)) throw new InvalidOperationException($"{j}{jar} is missing (Debian packages zookeeper and libnetty-java)");
        return string.Join(':', jars.Select(x => j + x));
    }

    private string Write(string name, string text)
    {
        string p = Path.Combine(_root, name);
        File.WriteAllText(p, text);
        return p;
    }

    /// <summary>key + certificate in one PEM file: ZooKeeper's ssl.keyStore.type=PEM.</summary>
    private string PemKeyStore(string name, X509Certificate2 cert) => Write(name, TestCertificates.KeyToPem(cert) + TestCertificates.ToPem(cert));

    private string ServerKeyStoreP12()
    {
        string p = Path.Combine(_root, "server.p12");
        File.WriteAllBytes(p, TestCertificates.ToPkcs12(_ca.IssueServer(), "serverpw"));
        return p;
    }

    /// <summary>A PKCS12 trust store as Java users make it (keytool marks trusted certificate entries).</summary>
    private string KeytoolTrustStore(string caPem)
    {
        string p = Path.Combine(_root, "trust.p12");
        var (code, o, e) = ExternalTools.Run("keytool", new[] { "-importcert", "-noprompt", "-storetype", "PKCS12", "-keystore", p, "-storepass", "trustpw", "-alias", "ca", "-file", caPem }, TimeSpan.FromSeconds(60));
        Assert.True(code == 0, o + e);
        return p;
    }

    private static string TlsFlags(string trustStore, string trustType, string? keyStore = null, string extra = "") =>
        $"-cp {NettyClassPath()} -Dzookeeper.sasl.client=false -Dzookeeper.client.secure=true -Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty "
        + $"-Dzookeeper.ssl.trustStore.location={trustStore} -Dzookeeper.ssl.trustStore.type={trustType} "
        + (keyStore is null ? "" : $"-Dzookeeper.ssl.keyStore.location={keyStore} -Dzookeeper.ssl.keyStore.type=PEM ")
        + extra;

    private sealed record Pair(ServerProcess Samsa, int SamsaTls, ServerProcess Upstream, int UpstreamTls) : IDisposable
    {
        public void Dispose() { Samsa.Dispose(); Upstream.Dispose(); }
        public IEnumerable<(string Name, string Tls, string Plain)> Both => new[]
        {
            ("samsa", $"127.0.0.1:{SamsaTls}", $"127.0.0.1:{Samsa.Port}"),
            ("upstream", $"127.0.0.1:{UpstreamTls}", $"127.0.0.1:{Upstream.Port}"),
        };
    }

    private async Task<Pair> StartBothAsync(string tlsCfg, params string[] props)
    {
        if (ServerProcess.UpstreamUnavailable() is { } why) throw new InvalidOperationException("upstream ZooKeeper is needed: " + why);
        int p1 = TestEnvironment.FreePort(22600), p2 = TestEnvironment.FreePort(22700);
        string common = "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\nsecureClientPortAddress=127.0.0.1\n" + tlsCfg;
        string cfg = ServerProcess.WriteConfig(_root, Path.Combine(_root, "samsa-data"), 0, common + $"secureClientPort={p1}\n");
        var samsaTask = ServerProcess.StartSamsaAsync(cfg, props);
        string log4j = "-Dlog4j.configuration=file:/etc/zookeeper/conf_example/log4j.properties";
        var upTask = ServerProcess.StartUpstreamAsync(_root, Path.Combine(_root, "up-data"), common + $"secureClientPort={p2}\n",
            new[] { "-cp", NettyClassPath(), log4j }.Concat(props).ToArray());
        var samsa = await samsaTask;
        var up = await upTask;
        Assert.True(samsa.Started, "samsa keeper did not start:\n" + samsa.Log);
        Assert.True(up.Started, "upstream did not start:\n" + up.Log);
        return new Pair(samsa, p1, up, p2);
    }

    private static string Outcome(string output)
    {
        var acl = output.Split('\n').Where(l => l.StartsWith("'", StringComparison.Ordinal)).Select(l => l.Trim()).ToList();
        return acl.Count > 0 ? "acl:" + string.Join(";", acl) : SaslSecurityTests.Outcome(output);
    }

    [Fact]
    public async Task ZkCli_over_tls_with_x509_identities_same_outcomes_on_keeper_and_upstream()
    {
        string caPem = Write("ca.pem", _ca.CertificatePem);
        string otherCaPem = Write("other-ca.pem", _otherCa.CertificatePem);
        string cfg = $"""
            authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider
            ssl.keyStore.location={ServerKeyStoreP12()}
            ssl.keyStore.password=serverpw
            ssl.keyStore.type=PKCS12
            ssl.trustStore.location={caPem}
            ssl.trustStore.type=PEM
            ssl.clientAuth=want

            """;
        using var s = await StartBothAsync(cfg, "-Dzookeeper.X509AuthenticationProvider.superUser=CN=admin,O=Samsa");
        string alice = PemKeyStore("alice.pem", _ca.IssueClient("CN=alice,O=Samsa"));
        string bob = PemKeyStore("bob.pem", _ca.IssueClient("CN=bob,O=Samsa"));
        string admin = PemKeyStore("admin.pem", _ca.IssueClient("CN=admin,O=Samsa"));
        string trustP12 = KeytoolTrustStore(caPem);
        var results = new Dictionary<string, List<string>>();
        foreach (var (name, tls, plain) in s.Both)
        {
            results[name] = new List<string>
            {
                Outcome(SaslSecurityTests.ZkCli(tls, TlsFlags(caPem, "PEM", alice), "create", "/t", "secret-data", "auth::cdrwa").Output),
                Outcome(SaslSecurityTests.ZkCli(tls, TlsFlags(caPem, "PEM", alice), "getAcl", "/t").Output),
                Outcome(SaslSecurityTests.ZkCli(tls, TlsFlags(trustP12, "PKCS12", alice, "-Dzookeeper.ssl.trustStore.password=trustpw"), "get", "/t").Output),
                Outcome(SaslSecurityTests.ZkCli(tls, TlsFlags(caPem, "PEM"), "get", "/t").Output),        // no client certificate (want)
                Outcome(SaslSecurityTests.ZkCli(tls, TlsFlags(caPem, "PEM", bob), "get", "/t").Output),   // another identity
                Outcome(SaslSecurityTests.ZkCli(tls, TlsFlags(caPem, "PEM", admin), "get", "/t").Output), // x509 superUser
                Outcome(SaslSecurityTests.ZkCli(plain, "-Dzookeeper.sasl.client=false", "get", "/t").Output), // plain port, no identity
                Outcome(SaslSecurityTests.ZkCli(tls, TlsFlags(otherCaPem, "PEM", alice), "get", "/t").Output), // server not trusted
                Outcome(SaslSecurityTests.ZkCli(tls, "-Dzookeeper.sasl.client=false", "get", "/t").Output),  // plain client on the TLS port
            };
        }
        Assert.Equal("created", results["upstream"][0]);
        Assert.StartsWith("acl:'x509,'CN=alice%2CO=Samsa", results["upstream"][1]);
        Assert.Equal(new[] { "read", "denied", "denied", "read", "denied", "connection-lost", "connection-lost" }, results["upstream"].Skip(2));
        Assert.Equal(results["upstream"], results["samsa"]);
        Assert.True(await s.Samsa.LogContainsAsync("Unsuccessful handshake"), s.Samsa.Log);
    }

    [Fact]
    public async Task Client_auth_need_refuses_clients_without_a_certificate_on_both()
    {
        string caPem = Write("ca.pem", _ca.CertificatePem);
        string cfg = $"""
            authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider
            ssl.keyStore.location={PemKeyStore("server.pem", _ca.IssueServer())}
            ssl.keyStore.type=PEM
            ssl.trustStore.location={caPem}
            ssl.trustStore.type=PEM

            """;
        using var s = await StartBothAsync(cfg);
        string alice = PemKeyStore("alice.pem", _ca.IssueClient("CN=alice,O=Samsa"));
        string stranger = PemKeyStore("stranger.pem", _otherCa.IssueClient("CN=alice,O=Samsa"));
        var results = new Dictionary<string, List<string>>();
        foreach (var (name, tls, _) in s.Both)
        {
            results[name] = new List<string>
            {
                Outcome(SaslSecurityTests.ZkCli(tls, TlsFlags(caPem, "PEM", alice), "create", "/n", "secret-data").Output),
                Outcome(SaslSecurityTests.ZkCli(tls, TlsFlags(caPem, "PEM"), "get", "/n").Output),
                Outcome(SaslSecurityTests.ZkCli(tls, TlsFlags(caPem, "PEM", stranger), "get", "/n").Output),
            };
        }
        Assert.Equal(new[] { "created", "connection-lost", "connection-lost" }, results["upstream"]);
        Assert.Equal(results["upstream"], results["samsa"]);
    }

    [Fact]
    public async Task Jks_keystore_stops_the_keeper_with_one_line_naming_the_conversion()
    {
        string jks = Path.Combine(_root, "server.jks");
        var (code, o, e) = ExternalTools.Run("keytool", new[] { "-genkeypair", "-storetype", "JKS", "-keystore", jks, "-storepass", "changeit", "-keypass", "changeit",
            "-alias", "zk", "-dname", "CN=localhost", "-keyalg", "EC", "-validity", "2" }, TimeSpan.FromSeconds(60));
        Assert.True(code == 0, o + e);
        string cfg = ServerProcess.WriteConfig(_root, Path.Combine(_root, "d"), 0, $"secureClientPort=0\nssl.keyStore.location={jks}\nssl.keyStore.password=changeit\n");
        using var samsa = await ServerProcess.StartSamsaAsync(cfg);
        Assert.False(samsa.Started);
        var line = Assert.Single(samsa.Log.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.Contains("JKS", StringComparison.Ordinal));
        Assert.Contains("keytool -importkeystore", line);
    }

    [Theory]
    [InlineData("sslQuorum=true\n")]
    [InlineData("ssl.quorum.keyStore.location=/tmp/q.p12\n")]
    [InlineData("ssl.crl=true\n")]
    [InlineData("ssl.protocol=SSLv3\n")]
    public async Task Tls_settings_the_keeper_cannot_honour_stop_it(string extra)
    {
        string caPem = Write("ca.pem", _ca.CertificatePem);
        string cfg = ServerProcess.WriteConfig(_root, Path.Combine(_root, "d"), 0,
            $"secureClientPort=0\nssl.keyStore.location={PemKeyStore("server.pem", _ca.IssueServer())}\nssl.trustStore.location={caPem}\n" + extra);
        using var samsa = await ServerProcess.StartSamsaAsync(cfg);
        Assert.False(samsa.Started);
        Assert.Contains(extra.Split('=')[0], samsa.Log);
    }

    [Fact]
    public async Task Plain_jute_bytes_on_the_tls_port_close_the_connection_with_one_log_line()
    {
        var cfg = KeeperConfig.Parse($"clientPort=0\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\nsecureClientPort=0\nsecureClientPortAddress=127.0.0.1\n"
            + $"ssl.keyStore.location={PemKeyStore("server.pem", _ca.IssueServer())}\nssl.clientAuth=none\n");
        await using var host = await KeeperHost.StartAsync(cfg);
        using var c = new TcpClient();
        await c.ConnectAsync(host.SecureEndPoint!);
        var s = c.GetStream();
        var body = new ConnectRequest { TimeOut = 30000, Passwd = new byte[16] }.ToBytes();
        var frame = new byte[4 + body.Length];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(frame, body.Length);
        body.CopyTo(frame, 4);
        await s.WriteAsync(frame);
        using var cts = new CancellationTokenSource(15000);
        var buf = new byte[256];
        int n;
        try { n = await s.ReadAsync(buf, cts.Token); } catch (IOException) { n = 0; }
        // whatever the TLS stack answers (an alert at most), no session is made and the socket closes
        Assert.True(n < 10, $"read {n} bytes");
        Assert.Equal(0, host.Server.SessionCount);
    }

    [Fact]
    public async Task A_plain_connect_on_the_tls_port_of_samsa_keeper_is_one_log_line()
    {
        int tlsPort = TestEnvironment.FreePort(22550);
        string cfg = ServerProcess.WriteConfig(_root, Path.Combine(_root, "d"), 0,
            $"secureClientPort={tlsPort}\nsecureClientPortAddress=127.0.0.1\nssl.keyStore.location={PemKeyStore("server.pem", _ca.IssueServer())}\nssl.clientAuth=none\n");
        using var samsa = await ServerProcess.StartSamsaAsync(cfg);
        Assert.True(samsa.Started, samsa.Log);
        using (var c = new TcpClient())
        {
            await c.ConnectAsync(System.Net.IPAddress.Loopback, tlsPort);
            var body = new ConnectRequest { TimeOut = 30000, Passwd = new byte[16] }.ToBytes();
            var frame = new byte[4 + body.Length];
            System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(frame, body.Length);
            body.CopyTo(frame, 4);
            await c.GetStream().WriteAsync(frame);
            using var cts = new CancellationTokenSource(15000);
            try { while (await c.GetStream().ReadAsync(new byte[64], cts.Token) > 0) { } } catch (IOException) { }
        }
        Assert.True(await samsa.LogContainsAsync("Unsuccessful handshake"), samsa.Log);
        await Task.Delay(500);
        Assert.Single(samsa.Log.Split('\n'), l => l.Contains("handshake", StringComparison.OrdinalIgnoreCase));
        // and the server goes on serving
        Assert.StartsWith("Zookeeper version", await ServerProcess.FourLetterAsync(samsa.Port, "srvr"));
    }

    [Fact]
    public void Rfc2253_names_as_java_x500principal()
    {
        using var cert = _ca.IssueClient("CN=alice, OU=eng, O=\"Samsa, Inc.\", C=DE");
        Assert.Equal(@"CN=alice,OU=eng,O=Samsa\, Inc.,C=DE", TlsStores.Rfc2253(cert.SubjectName));
    }
}
