using Confluent.Kafka;
using Xunit;

namespace Samsa.Testing.Tests;

/// <summary>
/// One test body written for Testcontainers.Kafka 4.17, run twice: on Testcontainers' KafkaBuilder
/// (Docker; skipped with the reason when no Docker engine is reachable) and on SamsaKafkaBuilder,
/// whose variant differs only in the using and the two type names. Keep the two bodies identical.
/// </summary>
public sealed class TestcontainersShapeTests
{
    [Fact]
    public async Task Testcontainers_KafkaBuilder_produce_and_consume()
    {
        if (DockerEngine.Unreachable() is { } why) Assert.Skip(why);
        // ---- body as written for Testcontainers.Kafka ----
        var kafka = new Testcontainers.Kafka.KafkaBuilder("confluentinc/cp-kafka:7.5.12").Build();
        await kafka.StartAsync();
        try
        {
            await ProduceAndConsumeAsync(kafka.GetBootstrapAddress());
        }
        finally
        {
            await kafka.DisposeAsync();
        }
    }

    [Fact]
    public async Task SamsaKafkaBuilder_produce_and_consume()
    {
        // ---- the same body, with KafkaBuilder → SamsaKafkaBuilder ----
        var kafka = new Samsa.Testing.SamsaKafkaBuilder("confluentinc/cp-kafka:7.5.12").Build();
        await kafka.StartAsync();
        try
        {
            await ProduceAndConsumeAsync(kafka.GetBootstrapAddress());
        }
        finally
        {
            await kafka.DisposeAsync();
        }
    }

    /// <summary>Testcontainers.Kafka's own example test, in our words: produce one record to an
    /// auto-created topic, consume it back with a group.</summary>
    private static async Task ProduceAndConsumeAsync(string bootstrapAddress)
    {
        const string topic = "sample";
        var producerConfig = new ProducerConfig { BootstrapServers = bootstrapAddress };
        var consumerConfig = new ConsumerConfig { BootstrapServers = bootstrapAddress, GroupId = "sample-consumer", AutoOffsetReset = AutoOffsetReset.Earliest };
        var message = new Message<string, string> { Value = Guid.NewGuid().ToString("D") };
        using (var producer = new ProducerBuilder<string, string>(producerConfig).Build())
            _ = await producer.ProduceAsync(topic, message);
        using var consumer = new ConsumerBuilder<string, string>(consumerConfig).Build();
        consumer.Subscribe(topic);
        var result = consumer.Consume(TimeSpan.FromSeconds(15));
        Assert.NotNull(result);
        Assert.Equal(message.Value, result.Message.Value);
    }

    [Fact]
    public void SamsaKafkaBuilder_refuses_settings_it_cannot_honour()
    {
        var b = new SamsaKafkaBuilder();
        Assert.Throws<NotSupportedException>(() => b.WithKRaft());
        Assert.Throws<NotSupportedException>(() => b.WithZooKeeper("zk:2181"));
        Assert.Throws<NotSupportedException>(() => b.WithPortBinding(19092, 9092));
        Assert.Throws<NotSupportedException>(() => b.WithEnvironment("KAFKA_LISTENERS", "PLAINTEXT://:9092"));
        Assert.Throws<NotSupportedException>(() => b.WithEnvironment("JAVA_HOME", "/opt/java"));
        // Docker-only settings are accepted.
        _ = b.WithName("kafka").WithLabel("a", "b").WithCleanUp(true).WithPortBinding(9092, true).WithEnvironment("KAFKA_HEAP_OPTS", "-Xmx1G");
    }

    [Fact]
    public async Task SamsaKafkaBuilder_environment_becomes_broker_settings()
    {
        await using var kafka = new SamsaKafkaBuilder().WithEnvironment("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false").Build();
        await kafka.StartAsync();
        Assert.StartsWith("plaintext://127.0.0.1:", kafka.GetBootstrapAddress());
        using var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = kafka.GetBootstrapAddress(), MessageTimeoutMs = 2000 }).Build();
        // Auto-creation is off, so the topic never appears and the record times out.
        var e = await Assert.ThrowsAsync<ProduceException<Null, string>>(() => producer.ProduceAsync("never-created", new Message<Null, string> { Value = "x" }));
        Assert.Contains(e.Error.Code, new[] { Confluent.Kafka.ErrorCode.Local_MsgTimedOut, Confluent.Kafka.ErrorCode.UnknownTopicOrPart, Confluent.Kafka.ErrorCode.Local_UnknownTopic });
    }
}

/// <summary>Whether a Docker engine answers (DOCKER_HOST or the default socket).</summary>
internal static class DockerEngine
{
    public static string? Unreachable()
    {
        string? host = Environment.GetEnvironmentVariable("DOCKER_HOST");
        if (host is { Length: > 0 } && !host.StartsWith("unix://", StringComparison.Ordinal)) return null; // tcp://: let Testcontainers try
        string socket = host is { Length: > 0 } ? host["unix://".Length..] : "/var/run/docker.sock";
        if (!File.Exists(socket)) return $"no Docker engine: {socket} does not exist (the SamsaKafkaBuilder variant of this test runs without Docker)";
        try
        {
            using var s = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
            s.Connect(new System.Net.Sockets.UnixDomainSocketEndPoint(socket));
            return null;
        }
        catch (System.Net.Sockets.SocketException e)
        {
            return $"no Docker engine answers on {socket}: {e.Message}";
        }
    }
}
