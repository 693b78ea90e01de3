using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Samsa.Kafka.Broker.Config;
using Xunit;

namespace Samsa.Kafka.Broker.Client216Tests;

/// <summary>One broker whose only listener is SASL_PLAINTEXT with PLAIN, SCRAM-SHA-256/512 and
/// OAUTHBEARER (upstream's unsecured-JWT validator), JAAS given per listener in server.properties.</summary>
public sealed class SaslBroker : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "c216-sasl-" + Guid.NewGuid().ToString("N"));
    public KafkaBroker Broker { get; private set; } = null!;
    public System.Collections.Concurrent.ConcurrentQueue<string> Log { get; } = new();
    public string Bootstrap => $"127.0.0.1:{Broker.BoundEndPoint.Port}";

    public ValueTask InitializeAsync() => StartAsync([]);

    public async ValueTask StartAsync(IEnumerable<KeyValuePair<string, string>> extra)
    {
        var props = new Dictionary<string, string>
        {
            ["broker.id"] = "1",
            ["listeners"] = "SASL_PLAINTEXT://127.0.0.1:0",
            ["security.inter.broker.protocol"] = "SASL_PLAINTEXT",
            ["sasl.mechanism.inter.broker.protocol"] = "PLAIN",
            ["sasl.enabled.mechanisms"] = "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER",
            ["listener.name.sasl_plaintext.plain.sasl.jaas.config"] =
                "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"admin\" password=\"admin-secret\" user_admin=\"admin-secret\" user_alice=\"alice-secret\";",
            ["listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config"] = "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            ["listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config"] = "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            ["listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config"] =
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub=\"admin\";",
            ["offsets.topic.replication.factor"] = "1",
            ["offsets.topic.num.partitions"] = "3",
            ["group.initial.rebalance.delay.ms"] = "0",
            ["log.dirs"] = _dir,
        };
        foreach (var (k, v) in extra) props[k] = v;
        Broker = new KafkaBroker(new BrokerConfig(props), log: Log.Enqueue);
        await Broker.StartAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await Broker.DisposeAsync();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    public T Config<T>(T config, Confluent.Kafka.SaslMechanism mechanism, string user, string password) where T : ClientConfig
    {
        config.BootstrapServers = Bootstrap;
        config.SecurityProtocol = SecurityProtocol.SaslPlaintext;
        config.SaslMechanism = mechanism;
        if (mechanism == Confluent.Kafka.SaslMechanism.OAuthBearer)
        {
            // librdkafka's development token: alg none, sub = principal (upstream's unsecured JWT).
            config.Set("enable.sasl.oauthbearer.unsecure.jwt", "true");
            config.SaslOauthbearerConfig = $"principal={user}";
        }
        else
        {
            config.SaslUsername = user;
            config.SaslPassword = password;
        }
        return config;
    }
}

/// <summary>What a Confluent.Kafka 2.16 user checks on a SASL_PLAINTEXT listener: each mechanism
/// produces and consumes, a wrong password is an authentication error, and a SCRAM user created
/// with the admin API (AlterUserScramCredentials) can then produce.</summary>
public sealed class SaslClientTests(SaslBroker target) : IClassFixture<SaslBroker>
{
    private async Task<string> CreateTopicAsync()
    {
        var topic = "sasl-" + Guid.NewGuid().ToString("N")[..10];
        using var admin = new AdminClientBuilder(target.Config(new AdminClientConfig(), Confluent.Kafka.SaslMechanism.Plain, "admin", "admin-secret")).Build();
        await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = 1, ReplicationFactor = 1 }]);
        return topic;
    }

    private async Task ProduceAndConsumeAsync(Confluent.Kafka.SaslMechanism mechanism, string user, string password)
    {
        var topic = await CreateTopicAsync();
        using (var p = new ProducerBuilder<string, string>(target.Config(new ProducerConfig { MessageTimeoutMs = 20000 }, mechanism, user, password)).Build())
        {
            var r = await p.ProduceAsync(topic, new Message<string, string> { Key = "k", Value = $"hello from {user}" });
            Assert.Equal(PersistenceStatus.Persisted, r.Status);
        }
        using var c = new ConsumerBuilder<string, string>(target.Config(new ConsumerConfig
        {
            GroupId = "g-" + Guid.NewGuid().ToString("N"), AutoOffsetReset = AutoOffsetReset.Earliest,
        }, mechanism, user, password)).Build();
        c.Subscribe(topic);
        var got = await Task.Run(() => c.Consume(TimeSpan.FromSeconds(30)));
        Assert.NotNull(got);
        Assert.Equal($"hello from {user}", got!.Message.Value);
        c.Close();
    }

    [Fact]
    public Task Plain() => ProduceAndConsumeAsync(Confluent.Kafka.SaslMechanism.Plain, "alice", "alice-secret");

    [Fact]
    public Task OAuthBearerUnsecuredJwt() => ProduceAndConsumeAsync(Confluent.Kafka.SaslMechanism.OAuthBearer, "oauth-user", "");

    [Theory]
    [InlineData(Confluent.Kafka.SaslMechanism.ScramSha256, ScramMechanism.ScramSha256)]
    [InlineData(Confluent.Kafka.SaslMechanism.ScramSha512, ScramMechanism.ScramSha512)]
    public async Task ScramUserCreatedWithTheAdminApiThenProduces(Confluent.Kafka.SaslMechanism mechanism, ScramMechanism scram)
    {
        string user = "scram-" + Guid.NewGuid().ToString("N")[..6];
        using (var admin = new AdminClientBuilder(target.Config(new AdminClientConfig(), Confluent.Kafka.SaslMechanism.Plain, "admin", "admin-secret")).Build())
        {
            await admin.AlterUserScramCredentialsAsync([new UserScramCredentialUpsertion
            {
                User = user, Password = "s3cret"u8.ToArray(),
                ScramCredentialInfo = new ScramCredentialInfo { Mechanism = scram, Iterations = 8192 },
            }]);
            var described = await admin.DescribeUserScramCredentialsAsync([user]);
            var info = Assert.Single(Assert.Single(described.UserScramCredentialsDescriptions).ScramCredentialInfos);
            Assert.Equal((scram, 8192), (info.Mechanism, info.Iterations));
            // Too few iterations is refused as upstream does.
            var e = await Assert.ThrowsAsync<AlterUserScramCredentialsException>(() => admin.AlterUserScramCredentialsAsync([new UserScramCredentialUpsertion
            {
                User = user, Password = "x"u8.ToArray(), ScramCredentialInfo = new ScramCredentialInfo { Mechanism = scram, Iterations = 100 },
            }]));
            Assert.Equal(ErrorCode.UnacceptableCredential, Assert.Single(e.Results).Error.Code);
        }
        await ProduceAndConsumeAsync(mechanism, user, "s3cret");
    }

    [Theory]
    [InlineData(Confluent.Kafka.SaslMechanism.Plain, "Invalid username or password")]
    [InlineData(Confluent.Kafka.SaslMechanism.ScramSha512, "invalid credentials with SASL mechanism SCRAM-SHA-512")]
    public async Task WrongPasswordIsAnAuthenticationError(Confluent.Kafka.SaslMechanism mechanism, string expected)
    {
        var errors = new System.Collections.Concurrent.ConcurrentQueue<Error>();
        using var p = new ProducerBuilder<string, string>(target.Config(new ProducerConfig(), mechanism, "alice", "not-her-password"))
            .SetErrorHandler((_, e) => errors.Enqueue(e)).Build();
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!errors.Any(e => e.Code == ErrorCode.Local_Authentication) && DateTime.UtcNow < deadline) await Task.Delay(100);
        var auth = errors.FirstOrDefault(e => e.Code == ErrorCode.Local_Authentication);
        Assert.NotNull(auth);
        Assert.Contains(expected, auth!.Reason);
    }

    [Fact]
    public async Task LibrdkafkaReauthenticatesBeforeTheSessionExpires()
    {
        // KIP-368: the broker grants 1.5 s sessions; librdkafka re-authenticates on the same
        // connection, so a producer keeps producing for 5 s without being disconnected.
        await using var broker = new SaslBroker();
        await broker.StartAsync([new("connections.max.reauth.ms", "1500")]);
        using (var admin = new AdminClientBuilder(broker.Config(new AdminClientConfig(), Confluent.Kafka.SaslMechanism.Plain, "admin", "admin-secret")).Build())
            await admin.CreateTopicsAsync([new TopicSpecification { Name = "reauth", NumPartitions = 1, ReplicationFactor = 1 }]);
        using var p = new ProducerBuilder<Null, string>(broker.Config(new ProducerConfig { MessageTimeoutMs = 10000 }, Confluent.Kafka.SaslMechanism.Plain, "alice", "alice-secret")).Build();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        int n = 0;
        while (sw.Elapsed < TimeSpan.FromSeconds(5))
        {
            var r = await p.ProduceAsync("reauth", new Message<Null, string> { Value = "v" + n++ });
            Assert.Equal(PersistenceStatus.Persisted, r.Status);
            await Task.Delay(250);
        }
        Assert.DoesNotContain(broker.Log, l => l.Contains("expired") || l.Contains("closing connection") || l.Contains("Failed authentication"));
        Assert.True(n >= 10);
    }
}
