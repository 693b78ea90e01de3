using System.Net.Sockets;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Broker.Security;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Net;
using Samsa.Testing;

namespace Samsa.Kafka.Broker.Tests.Security;

/// <summary>A broker with a PLAINTEXT and an SSL listener (mutual TLS required), reached with the wire client.</summary>
public sealed class TlsBrokerTests : IAsyncLifetime
{
    private readonly TestCertificateAuthority _ca = TestCertificateAuthority.Create();
    private readonly List<string> _log = [];
    private KafkaBroker _broker = null!;
    private string _dir = null!;

    public async Task InitializeAsync()
    {
        _dir = Directory.CreateTempSubdirectory("samsa-tls-broker-").FullName;
        using var server = _ca.IssueServer();
        TestCertificates.WritePem(server, Path.Combine(_dir, "server.pem"), Path.Combine(_dir, "server.key"), null, _ca.Certificate);
        File.WriteAllText(Path.Combine(_dir, "ca.pem"), _ca.CertificatePem);
        var props = new Dictionary<string, string>
        {
            ["broker.id"] = "1",
            ["listeners"] = "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0",
            ["log.dirs"] = Path.Combine(_dir, "logs"),
            ["offsets.topic.replication.factor"] = "1",
            ["ssl.keystore.type"] = "PEM",
            ["ssl.keystore.certificate.chain"] = File.ReadAllText(Path.Combine(_dir, "server.pem")),
            ["ssl.keystore.key"] = File.ReadAllText(Path.Combine(_dir, "server.key")),
            ["ssl.truststore.type"] = "PEM",
            ["ssl.truststore.location"] = Path.Combine(_dir, "ca.pem"),
            ["listener.name.ssl.ssl.client.auth"] = "required",
            ["ssl.principal.mapping.rules"] = "RULE:^CN=([^,]*),OU=apps.*$/$1/L,DEFAULT",
        };
        _broker = new KafkaBroker(new BrokerConfig(props), log: line => { lock (_log) _log.Add(line); });
        await _broker.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _broker.DisposeAsync();
        _ca.Dispose();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private TlsClientOptions ClientTls(string subject) => new()
    {
        TrustedCertificates = _ca.TrustStore,
        ClientCertificate = _ca.IssueClient(subject),
    };

    [Fact]
    public async Task Each_listener_answers_metadata_and_coordinators_with_its_own_endpoints()
    {
        int plainPort = _broker.BoundEndPointOf("PLAINTEXT").Port;
        int sslPort = _broker.BoundEndPointOf("SSL").Port;
        Assert.NotEqual(plainPort, sslPort);

        await using (var plain = await KafkaWireClient.ConnectAsync("127.0.0.1", plainPort))
        {
            var md = await plain.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [] }, 9);
            Assert.Equal(plainPort, Assert.Single(md!.Brokers).Port);
        }
        await using var ssl = await KafkaWireClient.ConnectAsync("localhost", sslPort, ClientTls("CN=Alice,OU=apps,O=Samsa"));
        Assert.True(ssl.IsTls);
        var sslMd = await ssl.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [] }, 9);
        Assert.Equal(sslPort, Assert.Single(sslMd!.Brokers).Port);
        var cluster = await ssl.SendAsync<DescribeClusterResponse>(new DescribeClusterRequest(), 0);
        Assert.Equal(sslPort, Assert.Single(cluster!.Brokers).Port);
        var coordinator = await ssl.SendAsync<FindCoordinatorResponse>(new FindCoordinatorRequest { Key = "g", KeyType = 0 }, 2);
        Assert.Equal(0, coordinator!.ErrorCode);
        Assert.Equal(sslPort, coordinator.Port);

        // The mTLS principal, mapped by the rule (CN lower-cased) — seen by the broker for this connection.
        var session = Assert.Single(_broker.ConnectionSessions, s => s.ListenerName == "SSL");
        Assert.Equal(KafkaPrincipal.User("alice"), session.Principal);
        Assert.Equal(SecurityProtocol.Ssl, session.SecurityProtocol);
        Assert.Contains(_broker.ConnectionSessions, s => s.ListenerName == "PLAINTEXT" || s.ListenerName == "SSL");
    }

    [Fact]
    public async Task Unmatched_dn_falls_to_default_rule_and_keeps_the_rfc2253_name()
    {
        int sslPort = _broker.BoundEndPointOf("SSL").Port;
        await using var ssl = await KafkaWireClient.ConnectAsync("localhost", sslPort, ClientTls("CN=bob, O=Samsa"));
        await ssl.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [] }, 9);
        Assert.Equal(KafkaPrincipal.User("CN=bob,O=Samsa"), Assert.Single(_broker.ConnectionSessions, s => s.ListenerName == "SSL").Principal);
    }

    [Fact]
    public async Task Plain_kafka_on_the_tls_port_and_no_client_certificate_are_closed_with_one_log_line_each()
    {
        int sslPort = _broker.BoundEndPointOf("SSL").Port;
        using (var tcp = new TcpClient())
        {
            await tcp.ConnectAsync("127.0.0.1", sslPort);
            var stream = tcp.GetStream();
            await stream.WriteAsync(KafkaWireClient.EncodeRequest(new ApiVersionsRequest(), 0, 1, "plain"));
            var buffer = new byte[64];
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            int n;
            try { n = await stream.ReadAsync(buffer, cts.Token); } catch (IOException) { n = 0; }
            Assert.Equal(0, n);
        }
        await WaitForLogAsync(1);
        // No client certificate while the listener requires one.
        try
        {
            await using var noCert = await KafkaWireClient.ConnectAsync("localhost", sslPort, new TlsClientOptions { TrustedCertificates = _ca.TrustStore });
            await Assert.ThrowsAnyAsync<Exception>(() => noCert.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [] }, 9));
        }
        catch (TlsHandshakeException)
        {
        }
        await WaitForLogAsync(2);
        lock (_log)
        {
            var closes = _log.Where(l => l.Contains("closed by error")).ToList();
            Assert.True(closes.Count == 2, string.Join(" | ", _log));
            Assert.All(closes, l => Assert.Contains("TLS handshake on kafka SSL listener", l));
            Assert.All(closes, l => Assert.DoesNotContain('\n', l));
        }
        Assert.Empty(_broker.ConnectionSessions);
    }

    [Fact]
    public async Task Tls_on_the_plain_port_and_garbage_after_a_handshake_close_with_one_log_line_each()
    {
        // A TLS client on the PLAINTEXT port: its ClientHello reads as an impossible frame length.
        int plainPort = _broker.BoundEndPointOf("PLAINTEXT").Port;
        await Assert.ThrowsAsync<TlsHandshakeException>(() =>
            KafkaWireClient.ConnectAsync("localhost", plainPort, ClientTls("CN=x,OU=apps")));
        await WaitForLogAsync(1);

        // A good handshake, then bytes that are no TLS record.
        int sslPort = _broker.BoundEndPointOf("SSL").Port;
        using var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", sslPort);
        var raw = tcp.GetStream();
        var ssl = new System.Net.Security.SslStream(raw, leaveInnerStreamOpen: true);
        await ssl.AuthenticateAsClientAsync(ClientTls("CN=eve,OU=apps").BuildAuthenticationOptions("localhost"));
        await ssl.WriteAsync(KafkaWireClient.EncodeRequest(new ApiVersionsRequest(), 0, 1, "eve"));
        var header = new byte[4];
        await ssl.ReadExactlyAsync(header);
        await raw.WriteAsync(new byte[] { 0x17, 3, 3, 0, 16, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 });
        var sink = new byte[256];
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        try { while (await raw.ReadAsync(sink, cts.Token) > 0) { } } catch (IOException) { }
        await WaitForLogAsync(2);
        lock (_log)
        {
            var closes = _log.Where(l => l.Contains("closed by error") || l.Contains("closing connection")).ToList();
            Assert.True(closes.Count == 2, string.Join(" | ", _log));
            Assert.Contains("outside 0..", closes[0]);
            Assert.Contains("TLS connection on kafka SSL listener", closes[1]);
        }
    }

    private async Task WaitForLogAsync(int count)
    {
        for (int i = 0; i < 200; i++)
        {
            lock (_log) if (_log.Count(l => l.Contains("closed by error") || l.Contains("closing connection")) >= count) return;
            await Task.Delay(50);
        }
    }
}
