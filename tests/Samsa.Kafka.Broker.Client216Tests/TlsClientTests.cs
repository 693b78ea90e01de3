using System.Diagnostics;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Samsa.Cluster.Tests;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Broker.Security;
using Samsa.Testing;
using Xunit;

namespace Samsa.Kafka.Broker.Client216Tests;

/// <summary>Certificates for the TLS tests, written as PEM files the way a user hands them to librdkafka.</summary>
public sealed class TlsFiles : IDisposable
{
    public readonly TestCertificateAuthority Ca = TestCertificateAuthority.Create("CN=Client216 CA");
    public readonly TestCertificateAuthority OtherCa = TestCertificateAuthority.Create("CN=Unrelated CA");
    public readonly string Dir = Directory.CreateTempSubdirectory("c216-tls-").FullName;

    public TlsFiles()
    {
        using var server = Ca.IssueServer();
        TestCertificates.WritePem(server, ServerCert, ServerKey, null, Ca.Certificate);
        File.WriteAllText(CaPem, Ca.CertificatePem);
        File.WriteAllText(OtherCaPem, OtherCa.CertificatePem);
        using var client = Ca.IssueClient("CN=alice,OU=apps,O=Samsa");
        TestCertificates.WritePem(client, ClientCert, ClientKey);
    }

    public string ServerCert => Path.Combine(Dir, "server.pem");
    public string ServerKey => Path.Combine(Dir, "server.key");
    public string CaPem => Path.Combine(Dir, "ca.pem");
    public string OtherCaPem => Path.Combine(Dir, "other-ca.pem");
    public string ClientCert => Path.Combine(Dir, "client.pem");
    public string ClientKey => Path.Combine(Dir, "client.key");

    /// <summary>Broker settings of an SSL listener with this CA (PEM files, as upstream's ssl.keystore.type=PEM).</summary>
    public Dictionary<string, string> BrokerSsl(string clientAuth) => new()
    {
        ["ssl.keystore.type"] = "PEM",
        ["ssl.keystore.certificate.chain"] = File.ReadAllText(ServerCert),
        ["ssl.keystore.key"] = File.ReadAllText(ServerKey),
        ["ssl.truststore.type"] = "PEM",
        ["ssl.truststore.location"] = CaPem,
        ["ssl.client.auth"] = clientAuth,
    };

    public void Dispose()
    {
        Ca.Dispose();
        OtherCa.Dispose();
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { }
    }
}

/// <summary>Confluent.Kafka 2.16 / librdkafka 2.16 over TLS: server authentication, mutual TLS with
/// the principal the broker derives, a client that does not trust the broker's CA; and a 3-broker
/// cluster that replicates over an SSL inter-broker listener and survives a leader kill.</summary>
public sealed class TlsClientTests(TlsFiles tls) : IClassFixture<TlsFiles>
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private async Task<(KafkaBroker Broker, string Dir)> StartBrokerAsync(string clientAuth)
    {
        string dir = Path.Combine(tls.Dir, "broker-" + Guid.NewGuid().ToString("N")[..8]);
        var props = new Dictionary<string, string>
        {
            ["broker.id"] = "1",
            ["listeners"] = "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0",
            ["offsets.topic.replication.factor"] = "1",
            ["transaction.state.log.replication.factor"] = "1",
            ["transaction.state.log.min.isr"] = "1",
            ["group.initial.rebalance.delay.ms"] = "0",
            ["log.dirs"] = dir,
        };
        foreach (var (k, v) in tls.BrokerSsl(clientAuth)) props[k] = v;
        var broker = new KafkaBroker(new BrokerConfig(props));
        await broker.StartAsync();
        return (broker, dir);
    }

    private T Ssl<T>(T config, string bootstrap, bool clientCert = false, string? ca = null) where T : ClientConfig
    {
        config.BootstrapServers = bootstrap;
        config.SecurityProtocol = Confluent.Kafka.SecurityProtocol.Ssl;
        config.SslCaLocation = ca ?? tls.CaPem;
        if (clientCert)
        {
            config.SslCertificateLocation = tls.ClientCert;
            config.SslKeyLocation = tls.ClientKey;
        }
        return config;
    }

    private static async Task ProduceAndConsumeAsync(Func<ProducerConfig> producerConfig, Func<ConsumerConfig> consumerConfig, string topic, int count)
    {
        await Task.Run(async () =>
        {
            using (var producer = new ProducerBuilder<string, string>(producerConfig()).Build())
            {
                for (int i = 0; i < count; i++)
                    await producer.ProduceAsync(topic, new Message<string, string> { Key = $"k{i}", Value = $"value-{i}" });
                producer.Flush(TimeSpan.FromSeconds(10));
            }
            var cc = consumerConfig();
            cc.GroupId = "tls-" + Guid.NewGuid().ToString("N");
            cc.AutoOffsetReset = AutoOffsetReset.Earliest;
            using var consumer = new ConsumerBuilder<string, string>(cc).Build();
            consumer.Subscribe(topic);
            var seen = new List<string>();
            var sw = Stopwatch.StartNew();
            while (seen.Count < count && sw.Elapsed < TimeSpan.FromSeconds(40))
            {
                var r = consumer.Consume(TimeSpan.FromMilliseconds(200));
                if (r is not null && !r.IsPartitionEOF) seen.Add(r.Message.Value);
            }
            consumer.Commit();
            consumer.Close();
            Assert.Equal(Enumerable.Range(0, count).Select(i => $"value-{i}").OrderBy(v => v), seen.OrderBy(v => v));
        }).WaitAsync(Deadline);
    }

    [Fact]
    public async Task Produce_and_consume_over_ssl_with_server_authentication()
    {
        var (broker, _) = await StartBrokerAsync("none");
        await using var _ = broker;
        string bootstrap = $"localhost:{broker.BoundEndPointOf("SSL").Port}";
        using (var admin = new AdminClientBuilder(Ssl(new AdminClientConfig(), bootstrap)).Build())
        {
            var md = admin.GetMetadata(TimeSpan.FromSeconds(10));
            Assert.Equal(broker.BoundEndPointOf("SSL").Port, Assert.Single(md.Brokers).Port);
            await admin.CreateTopicsAsync([new TopicSpecification { Name = "tls-topic", NumPartitions = 2, ReplicationFactor = 1 }]);
        }
        await ProduceAndConsumeAsync(() => Ssl(new ProducerConfig { Acks = Acks.All }, bootstrap), () => Ssl(new ConsumerConfig(), bootstrap), "tls-topic", 50);
        Assert.All(broker.ConnectionSessions.Where(s => s.ListenerName == "SSL"), s => Assert.Equal(KafkaPrincipal.Anonymous, s.Principal));
    }

    [Fact]
    public async Task Mutual_tls_clients_get_their_certificate_principal_and_clients_without_one_are_refused()
    {
        var (broker, _) = await StartBrokerAsync("required");
        await using var _ = broker;
        string bootstrap = $"localhost:{broker.BoundEndPointOf("SSL").Port}";
        var principals = new List<KafkaPrincipal>();
        await Task.Run(async () =>
        {
            using var producer = new ProducerBuilder<Null, string>(Ssl(new ProducerConfig(), bootstrap, clientCert: true)).Build();
            await producer.ProduceAsync("mtls", new Message<Null, string> { Value = "x" });
            // The producer's connection is open now: the broker's view of its principal.
            principals.AddRange(broker.ConnectionSessions.Where(s => s.ListenerName == "SSL").Select(s => s.Principal));
        }).WaitAsync(Deadline);
        Assert.NotEmpty(principals);
        Assert.All(principals, p => Assert.Equal(KafkaPrincipal.User("CN=alice,OU=apps,O=Samsa"), p));

        // No client certificate: the handshake is refused, the producer cannot deliver.
        var errors = new List<Error>();
        await Task.Run(async () =>
        {
            var config = Ssl(new ProducerConfig { MessageTimeoutMs = 4000 }, bootstrap);
            using var producer = new ProducerBuilder<Null, string>(config).SetErrorHandler((_, e) => { lock (errors) errors.Add(e); }).Build();
            var ex = await Assert.ThrowsAsync<ProduceException<Null, string>>(() => producer.ProduceAsync("mtls", new Message<Null, string> { Value = "y" }));
            Assert.Equal(ErrorCode.Local_MsgTimedOut, ex.Error.Code);
        }).WaitAsync(Deadline);
        lock (errors) Assert.Contains(errors, e => e.Code is ErrorCode.Local_Ssl or ErrorCode.Local_Transport or ErrorCode.Local_AllBrokersDown);
    }

    [Fact]
    public async Task A_client_that_does_not_trust_the_brokers_ca_fails_with_an_ssl_error()
    {
        var (broker, _) = await StartBrokerAsync("none");
        await using var _ = broker;
        string bootstrap = $"localhost:{broker.BoundEndPointOf("SSL").Port}";
        var errors = new List<Error>();
        await Task.Run(() =>
        {
            using var admin = new AdminClientBuilder(Ssl(new AdminClientConfig(), bootstrap, ca: tls.OtherCaPem))
                .SetErrorHandler((_, e) => { lock (errors) errors.Add(e); }).Build();
            Assert.ThrowsAny<KafkaException>(() => admin.GetMetadata(TimeSpan.FromSeconds(3)));
        }).WaitAsync(Deadline);
        lock (errors) Assert.Contains(errors, e => e.Code == ErrorCode.Local_Ssl || e.Reason.Contains("certificate verify failed", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public async Task Three_brokers_replicate_over_an_ssl_inter_broker_listener_and_survive_a_leader_kill()
    {
        await using var keeper = new KeeperServer();
        await keeper.InitializeAsync();
        var certificates = new Dictionary<int, Dictionary<string, string>>();
        foreach (int id in new[] { 1, 2, 3 })
        {
            // Each broker its own certificate; mutual TLS between brokers (ssl.client.auth=required).
            using var cert = tls.Ca.IssueServer();
            var ssl = tls.BrokerSsl("required");
            ssl["ssl.keystore.certificate.chain"] = TestCertificates.ToPem(cert) + tls.Ca.CertificatePem;
            ssl["ssl.keystore.key"] = TestCertificates.KeyToPem(cert);
            ssl["listeners"] = "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0";
            ssl["inter.broker.listener.name"] = "SSL";
            certificates[id] = ssl;
        }
        await using var cluster = await LocalCluster.StartAsync(keeper.Address!, 3, sessionTimeoutMs: 6000, brokerConfig: new Dictionary<string, string>
        {
            ["offsets.topic.replication.factor"] = "3",
            ["group.initial.rebalance.delay.ms"] = "0",
            ["min.insync.replicas"] = "2",
        }, dataDir: Path.Combine(tls.Dir, "cluster-" + Guid.NewGuid().ToString("N")[..8]), perBrokerConfig: id => certificates[id]);

        // The assignment names all three brokers: create the topic once every broker sees them all
        // registered (CI once saw "Unknown broker(s) in replica assignment: 3", the answer upstream
        // gives too while a broker's registration has not reached the controller).
        foreach (int id in new[] { 1, 2, 3 })
            await LocalCluster.WaitUntilAsync(async () => (await cluster.MetadataAsync(id)).Brokers.Count == 3,
                TimeSpan.FromSeconds(30), $"broker {id} sees three brokers");
        // Clients bootstrap at broker 1 on its SSL listener; the topic's leader is broker 2.
        string bootstrap = $"localhost:{cluster[1].BoundEndPointOf("SSL").Port}";
        const string topic = "tls-replicated";
        await Task.Run(async () =>
        {
            using var admin = new AdminClientBuilder(Ssl(new AdminClientConfig(), bootstrap, clientCert: true)).Build();
            await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = 1, ReplicasAssignments = new() { [0] = [2, 3, 1] } }]);
        }).WaitAsync(Deadline);
        await cluster.LedMetadataAsync(1, topic, 1);
        var md = await cluster.LedMetadataAsync(1, topic, 1);
        Assert.Equal(2, md.Topics[0].Partitions[0].LeaderId);

        var sent = new List<string>();
        await Task.Run(async () =>
        {
            using var producer = new ProducerBuilder<Null, string>(Ssl(new ProducerConfig { Acks = Acks.All, EnableIdempotence = true }, bootstrap, clientCert: true)).Build();
            for (int i = 0; i < 100; i++)
            {
                var r = await producer.ProduceAsync(topic, new Message<Null, string> { Value = $"before-{i}" });
                Assert.Equal(PersistenceStatus.Persisted, r.Status);
                sent.Add(r.Message.Value);
            }
        }).WaitAsync(Deadline);
        // Followers fetched from the leader over TLS only.
        foreach (int id in new[] { 1, 3 })
        {
            var (all, tlsCount) = cluster[id].InterBroker.ConnectionsOpened;
            Assert.True(all > 0, $"broker {id} opened no inter-broker connection");
            Assert.Equal(all, tlsCount);
        }

        // Kill the leader: no controlled shutdown, its session ends, the controller elects 3 or 1.
        cluster[2].ControlledShutdownOnStop = false;
        await cluster.StopBrokerAsync(2);
        await Task.Run(async () =>
        {
            using var producer = new ProducerBuilder<Null, string>(Ssl(new ProducerConfig { Acks = Acks.All, EnableIdempotence = true, MessageTimeoutMs = 30000 }, bootstrap, clientCert: true)).Build();
            for (int i = 0; i < 50; i++)
            {
                var r = await producer.ProduceAsync(topic, new Message<Null, string> { Value = $"after-{i}" });
                sent.Add(r.Message.Value);
            }
        }).WaitAsync(Deadline);
        await Task.Run(() =>
        {
            // Assigned, not subscribed: __consumer_offsets (3 replicas) cannot be created with a broker down.
            var cc = Ssl(new ConsumerConfig { GroupId = "tls-after-kill", EnableAutoCommit = false }, bootstrap, clientCert: true);
            using var consumer = new ConsumerBuilder<Null, string>(cc).Build();
            consumer.Assign(new TopicPartitionOffset(topic, 0, Offset.Beginning));
            var seen = new List<string>();
            var sw = Stopwatch.StartNew();
            while (seen.Count < sent.Count && sw.Elapsed < TimeSpan.FromSeconds(40))
            {
                var r = consumer.Consume(TimeSpan.FromMilliseconds(200));
                if (r is not null && !r.IsPartitionEOF) seen.Add(r.Message.Value);
            }
            Assert.Equal(sent, seen);
        }).WaitAsync(Deadline);
    }
}
