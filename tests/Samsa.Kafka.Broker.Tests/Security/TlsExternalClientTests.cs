using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Broker.Tests.EndToEnd;
using Samsa.Testing;

namespace Samsa.Kafka.Broker.Tests.Security;

/// <summary>
/// Debian's clients over TLS against a broker with PLAINTEXT and SSL listeners (ssl.client.auth
/// requested): kafka-python 2.0.2 (Python's ssl module), confluent-kafka-python over Debian's
/// librdkafka 2.0.2, and kcat — each with server authentication, with a client certificate, and
/// refused when it trusts another CA.
/// </summary>
public sealed class TlsExternalClientTests : IAsyncLifetime
{
    private const string Python = "/usr/bin/python3";
    private readonly TestCertificateAuthority _ca = TestCertificateAuthority.Create("CN=Debian clients CA");
    private readonly List<string> _log = [];
    private KafkaBroker _broker = null!;
    private string _dir = null!;

    private string CaPem => Path.Combine(_dir, "ca.pem");
    private string OtherCaPem => Path.Combine(_dir, "other.pem");
    private string ClientCert => Path.Combine(_dir, "client.pem");
    private string ClientKey => Path.Combine(_dir, "client.key");
    private string SslBootstrap => $"localhost:{_broker.BoundEndPointOf("SSL").Port}";

    public async Task InitializeAsync()
    {
        _dir = Directory.CreateTempSubdirectory("samsa-tls-ext-").FullName;
        using var server = _ca.IssueServer();
        // A PKCS#12 keystore this time, as many server.properties have it.
        string keystore = Path.Combine(_dir, "server.p12");
        File.WriteAllBytes(keystore, TestCertificates.ToPkcs12(server, "changeit", _ca.Certificate));
        File.WriteAllText(CaPem, _ca.CertificatePem);
        using (var other = TestCertificateAuthority.Create("CN=Other CA")) File.WriteAllText(OtherCaPem, other.CertificatePem);
        using (var client = _ca.IssueClient("CN=python,O=Samsa")) TestCertificates.WritePem(client, ClientCert, ClientKey);
        _broker = new KafkaBroker(new BrokerConfig(new Dictionary<string, string>
        {
            ["broker.id"] = "1",
            ["listeners"] = "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0",
            ["log.dirs"] = Path.Combine(_dir, "logs"),
            ["offsets.topic.replication.factor"] = "1",
            ["group.initial.rebalance.delay.ms"] = "0",
            ["ssl.keystore.type"] = "PKCS12",
            ["ssl.keystore.location"] = keystore,
            ["ssl.keystore.password"] = "changeit",
            ["ssl.key.password"] = "changeit",
            ["ssl.truststore.type"] = "PEM",
            ["ssl.truststore.location"] = CaPem,
            ["ssl.client.auth"] = "requested",
        }), log: l => { lock (_log) _log.Add(l); });
        await _broker.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _broker.DisposeAsync();
        _ca.Dispose();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private (int Code, string Out, string Err) RunPython(string module, string aptPackage, string script)
    {
        ExternalClients.Require(Python, aptPackage, probe: $"-c \"import {module}\"");
        var path = Path.Combine(_dir, $"script-{Guid.NewGuid():N}.py");
        File.WriteAllText(path, script);
        return ExternalClients.Run(Python, $"{path} {SslBootstrap} {CaPem} {ClientCert} {ClientKey} {OtherCaPem}", timeoutMs: 90_000);
    }

    [Fact]
    public void Kafka_python_produces_and_consumes_over_ssl_with_and_without_a_client_certificate()
    {
        var (code, stdout, stderr) = RunPython("kafka", "python3-kafka", """
            import sys
            from kafka import KafkaProducer, KafkaConsumer, TopicPartition
            from kafka.errors import NoBrokersAvailable
            bs, ca, cert, key, other = sys.argv[1:6]
            p = KafkaProducer(bootstrap_servers=bs, security_protocol="SSL", ssl_cafile=ca, acks="all")
            for i in range(10):
                p.send("kp-tls", value=b"v%d" % i).get(timeout=20)
            p.flush()
            m = KafkaProducer(bootstrap_servers=bs, security_protocol="SSL", ssl_cafile=ca, ssl_certfile=cert, ssl_keyfile=key)
            m.send("kp-tls", value=b"mtls").get(timeout=20)
            m.flush()
            c = KafkaConsumer(bootstrap_servers=bs, security_protocol="SSL", ssl_cafile=ca, group_id=None, consumer_timeout_ms=5000)
            tp = TopicPartition("kp-tls", 0)
            c.assign([tp]); c.seek_to_beginning()
            print("values", [x.value.decode() for x in c])
            try:
                KafkaProducer(bootstrap_servers=bs, security_protocol="SSL", ssl_cafile=other, request_timeout_ms=3000, api_version_auto_timeout_ms=3000)
                print("untrusted accepted")
            except Exception as e:
                # ssl.SSLCertVerificationError (or NoBrokersAvailable after it)
                print("untrusted refused", type(e).__name__)
            """);
        Assert.True(code == 0, $"kafka-python failed:\n{stdout}\n{stderr}");
        Assert.True(stdout.Contains("values ['v0', 'v1', 'v2', 'v3', 'v4', 'v5', 'v6', 'v7', 'v8', 'v9', 'mtls']"), stdout + stderr);
        Assert.True(stdout.Contains("untrusted refused"), stdout + stderr);
    }

    [Fact]
    public void Confluent_kafka_python_on_debian_librdkafka_produces_and_consumes_over_ssl_and_mtls()
    {
        var (code, stdout, stderr) = RunPython("confluent_kafka", "python3-confluent-kafka", """
            import sys
            from confluent_kafka import Producer, Consumer, TopicPartition, OFFSET_BEGINNING, version, libversion
            bs, ca, cert, key, other = sys.argv[1:6]
            print("librdkafka", libversion()[0])
            base = {"bootstrap.servers": bs, "security.protocol": "SSL", "ssl.ca.location": ca}
            mtls = dict(base, **{"ssl.certificate.location": cert, "ssl.key.location": key})
            for conf, tag in ((base, "server-auth"), (mtls, "mtls")):
                p = Producer(dict(conf, **{"acks": "all"}))
                for i in range(5):
                    p.produce("ck-tls", value=("%s-%d" % (tag, i)).encode())
                print("unflushed", tag, p.flush(20))
            c = Consumer(dict(mtls, **{"group.id": "ck-tls", "enable.auto.commit": False}))
            c.assign([TopicPartition("ck-tls", 0, OFFSET_BEGINNING)])
            got = []
            for _ in range(100):
                msg = c.poll(0.2)
                if msg is not None and msg.error() is None:
                    got.append(msg.value().decode())
                if len(got) == 10:
                    break
            print("values", got)
            c.close()
            errors = []
            bad = Producer(dict(base, **{"ssl.ca.location": other, "message.timeout.ms": 3000, "error_cb": lambda e: errors.append(str(e))}))
            outcome = []
            bad.produce("ck-tls", value=b"never", on_delivery=lambda err, msg: outcome.append(err))
            bad.flush(10)
            print("delivery failed", len(outcome) == 1 and outcome[0] is not None)
            print("ssl error", any("SSL" in e or "certificate" in e for e in errors))
            """);
        Assert.True(code == 0, $"confluent-kafka-python failed:\n{stdout}\n{stderr}");
        Assert.True(stdout.Contains("librdkafka 2.0.2"), stdout + stderr);
        Assert.True(stdout.Contains("unflushed server-auth 0"), stdout + stderr);
        Assert.True(stdout.Contains("unflushed mtls 0"), stdout + stderr);
        Assert.True(stdout.Contains("values ['server-auth-0', 'server-auth-1', 'server-auth-2', 'server-auth-3', 'server-auth-4', 'mtls-0', 'mtls-1', 'mtls-2', 'mtls-3', 'mtls-4']"), stdout + stderr);
        Assert.True(stdout.Contains("delivery failed True"), stdout + stderr);
        Assert.True(stdout.Contains("ssl error True"), stdout + stderr);
    }

    [Fact]
    public void Kcat_lists_metadata_over_ssl_and_fails_against_an_untrusted_ca()
    {
        string kcat = ExternalClients.Require("kcat", "kcat", probe: "-V");
        var (code, stdout, stderr) = ExternalClients.Run(kcat, $"-b {SslBootstrap} -X security.protocol=SSL -X ssl.ca.location={CaPem} -L -m 10", timeoutMs: 30_000);
        Assert.True(code == 0, $"kcat failed:\n{stdout}\n{stderr}");
        Assert.Contains($"ssl://{SslBootstrap}", stdout);
        Assert.Contains($"broker 1 at 127.0.0.1:{_broker.BoundEndPointOf("SSL").Port}", stdout);
        var (badCode, _, badErr) = ExternalClients.Run(kcat, $"-b {SslBootstrap} -X security.protocol=SSL -X ssl.ca.location={OtherCaPem} -L -m 3", timeoutMs: 30_000);
        Assert.NotEqual(0, badCode);
        Assert.Contains("certificate verify failed", badErr);
    }
}
