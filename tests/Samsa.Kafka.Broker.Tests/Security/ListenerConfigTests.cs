using System.Security.Cryptography.X509Certificates;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Broker.Security;
using Samsa.Net;
using Samsa.Testing;

namespace Samsa.Kafka.Broker.Tests.Security;

public class ListenerConfigTests
{
    private static BrokerConfig Config(params (string K, string V)[] props) =>
        new(props.ToDictionary(p => p.K, p => p.V));

    [Fact]
    public void Default_map_resolves_the_four_protocol_named_listeners()
    {
        var l = BrokerListeners.From(Config(("listeners", "PLAINTEXT://:9092,SSL://:9093,sasl_ssl://:9094")));
        Assert.Equal(["PLAINTEXT", "SSL", "SASL_SSL"], l.Listeners.Select(x => x.Name));
        Assert.Equal([SecurityProtocol.Plaintext, SecurityProtocol.Ssl, SecurityProtocol.SaslSsl], l.Listeners.Select(x => x.Protocol));
        Assert.Equal("PLAINTEXT", l.InterBrokerListenerName);
    }

    [Fact]
    public void Custom_listener_names_need_the_map_and_the_inter_broker_name_picks_one()
    {
        var l = BrokerListeners.From(Config(
            ("listeners", "CLIENT://127.0.0.1:9092,INTERNAL://127.0.0.1:9093"),
            ("listener.security.protocol.map", "CLIENT:SSL,INTERNAL:PLAINTEXT"),
            ("inter.broker.listener.name", "internal")));
        Assert.Equal("INTERNAL", l.InterBrokerListenerName);
        Assert.Equal(SecurityProtocol.Plaintext, l.InterBrokerProtocol);
        Assert.Equal(SecurityProtocol.Ssl, l.Find("client")!.Protocol);

        var e = Assert.Throws<ConfigValueException>(() => BrokerListeners.From(Config(("listeners", "CLIENT://:9092"))));
        Assert.Equal("No security protocol defined for listener CLIENT", e.Message);
    }

    [Fact]
    public void Security_inter_broker_protocol_names_the_listener_of_that_protocol()
    {
        var l = BrokerListeners.From(Config(("listeners", "PLAINTEXT://:9092,SSL://:9093"), ("security.inter.broker.protocol", "SSL")));
        Assert.Equal("SSL", l.InterBrokerListenerName);
        var e = Assert.Throws<ConfigValueException>(() => BrokerListeners.From(Config(
            ("listeners", "PLAINTEXT://:9092,SSL://:9093"), ("security.inter.broker.protocol", "SSL"), ("inter.broker.listener.name", "SSL"))));
        Assert.Equal("Only one of inter.broker.listener.name and security.inter.broker.protocol should be set.", e.Message);
        e = Assert.Throws<ConfigValueException>(() => BrokerListeners.From(Config(("listeners", "SSL://:9093"))));
        Assert.StartsWith("inter.broker.listener.name must be a listener name defined in advertised.listeners", e.Message);
    }

    [Theory]
    [InlineData("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,X:TLS", "Invalid security protocol `TLS` defined in listener.security.protocol.map")]
    [InlineData("listeners", "PLAINTEXT://:9092,PLAINTEXT://:9093", "Each listener must have a different name")]
    [InlineData("listeners", "PLAINTEXT://:9092,SSL://:9092", "Each listener must have a different port")]
    [InlineData("advertised.listeners", "PLAINTEXT://0.0.0.0:9092", "advertised.listeners cannot use the nonroutable meta-address 0.0.0.0")]
    [InlineData("advertised.listeners", "OTHER://h:9092", "No security protocol defined for listener OTHER")]
    public void Bad_listener_configs_are_refused_with_upstreams_line(string key, string value, string message)
    {
        var props = new List<(string, string)> { ("listeners", "PLAINTEXT://:9092") };
        if (key == "listeners") props.Clear();
        props.Add((key, value));
        var e = Assert.Throws<ConfigValueException>(() => BrokerListeners.From(Config([.. props])));
        Assert.StartsWith(message, e.Message);
    }

    [Fact]
    public void Security_check_refuses_custom_principal_builders_and_tls_without_keystore_one_line_each()
    {
        // A SASL listener is served (its mechanisms are checked when SASL starts), so only the
        // principal builder and the keystore-less SSL listener are refused here.
        var problems = SecurityConfigCheck.Problems(Config(
            ("listeners", "PLAINTEXT://:9092,SSL://:9093,SASL_PLAINTEXT://:9094"),
            ("principal.builder.class", "com.example.MyBuilder")));
        Assert.Equal(2, problems.Count);
        Assert.DoesNotContain(problems, p => p.Contains("SASL_PLAINTEXT"));
        Assert.Contains(problems, p => p.StartsWith("principal.builder.class=com.example.MyBuilder is not supported"));
        Assert.Contains(problems, p => p.StartsWith("listener SSL (SSL) needs a keystore"));
        Assert.All(problems, p => Assert.DoesNotContain('\n', p));
        Assert.Empty(SecurityConfigCheck.Problems(Config(("listeners", "PLAINTEXT://:9092"),
            ("principal.builder.class", "org.apache.kafka.common.security.authenticator.DefaultKafkaPrincipalBuilder"))));
    }

    [Fact]
    public async Task A_broker_with_an_ssl_listener_and_no_keystore_does_not_start_and_binds_nothing()
    {
        var broker = new KafkaBroker(Config(("broker.id", "1"), ("listeners", "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0")), inMemory: true);
        var e = await Assert.ThrowsAsync<ConfigValueException>(() => broker.StartAsync());
        Assert.Contains("needs a keystore", e.Message);
        Assert.Equal(0, broker.ClientConnectionCount);
        Assert.Throws<InvalidOperationException>(() => broker.BoundEndPoint);
        await broker.DisposeAsync();
    }

    [Fact]
    public async Task A_listener_that_cannot_bind_stops_the_start_and_releases_the_listeners_already_bound()
    {
        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        int busy = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port;
        using var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        probe.Start();
        int free = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        var broker = new KafkaBroker(Config(("broker.id", "1"),
            ("listeners", $"PLAINTEXT://127.0.0.1:{free},OTHER://127.0.0.1:{busy}"),
            ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,OTHER:PLAINTEXT")), inMemory: true);
        var e = await Assert.ThrowsAsync<ListenerBindException>(() => broker.StartAsync());
        Assert.Contains($"kafka OTHER listener cannot bind 127.0.0.1:{busy}", e.Message);
        // The PLAINTEXT listener bound first was closed again: its port is free.
        using var again = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, free);
        again.Start();
        again.Stop();
        await broker.DisposeAsync();
    }

    // ---------------------------------------------------------------- principal mapping

    [Fact]
    public void Subject_is_printed_in_rfc2253_form_as_java_does()
    {
        using var ca = TestCertificateAuthority.Create();
        using var cert = ca.IssueClient("CN=alice, OU=eng, O=\"Samsa, Inc.\", C=DE");
        Assert.Equal("CN=alice,OU=eng,O=Samsa\\, Inc.,C=DE", SslPrincipalMapper.Rfc2253(cert.SubjectName));
        using var other = ca.IssueClient("E=alice@example.com, CN=alice");
        // Not an RFC 2253 keyword: the dotted OID and the DER value in hex (an IA5String, tag 0x16).
        Assert.Equal("1.2.840.113549.1.9.1=#1611616c696365406578616d706c652e636f6d,CN=alice", SslPrincipalMapper.Rfc2253(other.SubjectName));
    }

    [Fact]
    public void Mapping_rules_follow_upstreams_ssl_principal_mapper()
    {
        // Examples from upstream's documentation of ssl.principal.mapping.rules.
        var mapper = SslPrincipalMapper.Parse("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U,DEFAULT");
        Assert.Equal("serviceuser", mapper.Map("CN=serviceuser,OU=ServiceUsers,O=Unknown,L=Unknown,ST=Unknown,C=Unknown"));
        Assert.Equal("adminuser@admin", mapper.Map("CN=adminUser,OU=Admin,O=Unknown,L=Unknown,ST=Unknown,C=Unknown"));
        Assert.Equal("KAFKA.APACHE", mapper.Map("CN=kafka.apache,O=Unknown"));
        Assert.Equal("O=nobody", mapper.Map("O=nobody"));
        Assert.Equal("CN=x,O=y", SslPrincipalMapper.Parse("DEFAULT").Map("CN=x,O=y"));
        Assert.Null(SslPrincipalMapper.Parse("RULE:^CN=(.*)$/$1/").Map("O=only"));
        Assert.Throws<ConfigValueException>(() => SslPrincipalMapper.Parse("NONSENSE"));
    }

    // ---------------------------------------------------------------- keystores

    private static string Temp(string name) => Path.Combine(Directory.CreateTempSubdirectory("samsa-ssl-").FullName, name);

    [Fact]
    public void Pem_keystores_inline_in_a_file_and_encrypted_load_with_their_chain()
    {
        using var ca = TestCertificateAuthority.Create();
        using var server = ca.IssueServer();
        string chain = TestCertificates.ToPem(server) + ca.CertificatePem;

        var inline = new SslSettings(Config(("ssl.keystore.type", "PEM"), ("ssl.keystore.key", TestCertificates.KeyToPem(server)),
            ("ssl.keystore.certificate.chain", chain), ("ssl.truststore.type", "PEM"), ("ssl.truststore.certificates", ca.CertificatePem)), "SSL");
        var (leaf, rest) = inline.LoadKeystore()!.Value;
        Assert.True(leaf.HasPrivateKey);
        Assert.Equal(server.Thumbprint, leaf.Thumbprint);
        Assert.Equal(ca.Certificate.Thumbprint, Assert.Single(rest).Thumbprint);
        Assert.Equal(ca.Certificate.Thumbprint, Assert.Single(inline.LoadTruststore()!).Thumbprint);

        string file = Temp("server.pem");
        File.WriteAllText(file, TestCertificates.KeyToPem(server, "s3cret") + chain);
        var fromFile = new SslSettings(Config(("ssl.keystore.type", "PEM"), ("ssl.keystore.location", file), ("ssl.key.password", "s3cret")), "SSL");
        Assert.True(fromFile.LoadKeystore()!.Value.Certificate.HasPrivateKey);
        var wrong = new SslSettings(Config(("ssl.keystore.type", "PEM"), ("ssl.keystore.location", file)), "SSL");
        Assert.Contains("needs ssl.key.password", Assert.Throws<ConfigValueException>(() => wrong.LoadKeystore()).Message);
    }

    [Fact]
    public void Pkcs12_loads_also_when_declared_jks_but_a_java_keystore_is_refused_with_the_keytool_hint()
    {
        using var ca = TestCertificateAuthority.Create();
        using var server = ca.IssueServer();
        string p12 = Temp("server.p12");
        File.WriteAllBytes(p12, TestCertificates.ToPkcs12(server, "pw", ca.Certificate));
        foreach (string type in new[] { "PKCS12", "JKS" })
        {
            var ssl = new SslSettings(Config(("ssl.keystore.type", type), ("ssl.keystore.location", p12), ("ssl.keystore.password", "pw")), "SSL");
            Assert.Equal(server.Thumbprint, ssl.LoadKeystore()!.Value.Certificate.Thumbprint);
        }
        var badPassword = new SslSettings(Config(("ssl.keystore.type", "PKCS12"), ("ssl.keystore.location", p12), ("ssl.keystore.password", "nope")), "SSL");
        Assert.Contains("wrong ssl.keystore.password", Assert.Throws<ConfigValueException>(() => badPassword.LoadKeystore()).Message);

        string jks = Temp("server.jks");
        File.WriteAllBytes(jks, [0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2, 0, 0, 0, 0]);
        var java = new SslSettings(Config(("ssl.keystore.location", jks), ("ssl.keystore.password", "pw")), "SSL");
        var e = Assert.Throws<ConfigValueException>(() => java.LoadKeystore());
        Assert.Contains("keytool -importkeystore", e.Message);
        Assert.Contains("-deststoretype PKCS12", e.Message);
    }

    [Fact]
    public void Listener_prefixed_keys_win_and_sasl_ssl_takes_client_auth_only_with_the_prefix()
    {
        var config = Config(("ssl.client.auth", "required"), ("listener.name.internal.ssl.client.auth", "requested"),
            ("ssl.enabled.protocols", "TLSv1.3"), ("ssl.cipher.suites", "TLS_AES_128_GCM_SHA256"));
        Assert.Equal(ClientCertificateMode.Required, new SslSettings(config, "SSL").ClientAuth(SecurityProtocol.Ssl));
        Assert.Equal(ClientCertificateMode.Requested, new SslSettings(config, "INTERNAL").ClientAuth(SecurityProtocol.Ssl));
        // KIP-684: an unprefixed ssl.client.auth does not apply to SASL_SSL listeners.
        Assert.Equal(ClientCertificateMode.None, new SslSettings(config, "SASL_SSL").ClientAuth(SecurityProtocol.SaslSsl));
        Assert.Equal(System.Security.Authentication.SslProtocols.Tls13, new SslSettings(config, "SSL").EnabledProtocols());
        Assert.NotNull(new SslSettings(config, "SSL").CipherSuites());
        Assert.Throws<ConfigValueException>(() => new SslSettings(Config(("ssl.enabled.protocols", "TLSv1.1")), "SSL").EnabledProtocols());
        Assert.Throws<ConfigValueException>(() => new SslSettings(Config(("ssl.cipher.suites", "NOT_A_SUITE")), "SSL").CipherSuites());
    }
}
