using System.Net.Sockets;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Broker.Security;

namespace Samsa.Kafka.Broker.Tests.Config;

/// <summary>
/// Config audit (session 14): a catalogue key whose behaviour Samsa does not have is accepted at
/// upstream's default only; another value stops the broker at start with one line naming the key.
/// broker.id is checked against reserved.broker.max.id as upstream does; socket buffer and backlog
/// keys reach the listener sockets.
/// </summary>
public class UnhonouredKeysTests
{
    private static BrokerConfig Config(params (string K, string V)[] props) =>
        new(props.ToDictionary(p => p.K, p => p.V));

    public static TheoryData<string, string> NonDefaultValues => new()
    {
        // bounds of the request queue
        { "queued.max.requests", "100" }, { "queued.max.request.bytes", "1000000" },
        // behaviour Samsa does not have
        { "log.cleaner.max.compaction.lag.ms", "60000" }, { "connections.max.idle.ms", "1000" },
        // refused features
        { "log.local.retention.ms", "1000" }, { "log.local.retention.bytes", "1000" }, { "process.roles", "broker" },
        { "create.topic.policy.class.name", "com.example.Policy" }, { "alter.config.policy.class.name", "com.example.Policy" },
        { "inter.broker.protocol.version", "2.8" },
        // JSSE keys, plain and per listener
        { "ssl.provider", "SunJSSE" }, { "ssl.keymanager.algorithm", "PKIX" }, { "ssl.trustmanager.algorithm", "SunX509" },
        { "listener.name.plaintext.ssl.secure.random.implementation", "SHA1PRNG" },
    };

    [Theory]
    [MemberData(nameof(NonDefaultValues))]
    public void A_non_default_value_is_one_line_naming_the_key(string key, string value)
    {
        var problem = Assert.Single(SecurityConfigCheck.Problems(Config(("broker.id", "1"), (key, value))));
        Assert.StartsWith($"{key}={value} is not supported: ", problem);
        Assert.EndsWith("; remove it", problem);
        Assert.DoesNotContain('\n', problem);
    }

    public static TheoryData<string, string> NoEffectValues => new()
    {
        { "num.network.threads", "6" }, { "num.io.threads", "16" }, { "background.threads", "4" },
        { "num.replica.fetchers", "4" }, { "log.cleaner.threads", "2" }, { "log.preallocate", "true" },
        { "log.flush.start.offset.checkpoint.interval.ms", "1000" },
        { "replica.high.watermark.checkpoint.interval.ms", "1000" }, { "zookeeper.max.in.flight.requests", "1" },
    };

    [Theory]
    [MemberData(nameof(NoEffectValues))]
    public void A_key_that_sizes_nothing_here_is_accepted_with_one_warning_line(string key, string value)
    {
        var config = Config(("broker.id", "1"), (key, value));
        Assert.Empty(SecurityConfigCheck.Problems(config));
        var warning = Assert.Single(SecurityConfigCheck.NoEffectWarnings(config));
        Assert.StartsWith($"{key}={value} has no effect: ", warning);
        Assert.Empty(SecurityConfigCheck.NoEffectWarnings(Config(("broker.id", "1"), (key, ConfigCatalog.Broker[key].Default!))));
    }

    [Fact]
    public void Upstream_defaults_and_the_sample_server_properties_pass()
    {
        var props = new Dictionary<string, string>
        {
            // upstream's config/server.properties (ZooKeeper mode)
            ["broker.id"] = "0", ["num.network.threads"] = "3", ["num.io.threads"] = "8",
            ["socket.send.buffer.bytes"] = "102400", ["socket.receive.buffer.bytes"] = "102400",
            ["socket.request.max.bytes"] = "104857600", ["num.recovery.threads.per.data.dir"] = "1",
            ["inter.broker.protocol.version"] = "3.9", ["ssl.keymanager.algorithm"] = "SunX509",
            ["ssl.trustmanager.algorithm"] = "PKIX", ["process.roles"] = "", ["log.preallocate"] = "false",
        };
        foreach (var key in SecurityConfigCheck.UnhonouredKeys.Keys)
            if (ConfigCatalog.Broker[key].Default is { } d) props.TryAdd(key, d);
        Assert.Empty(SecurityConfigCheck.Problems(new BrokerConfig(props)));
    }

    [Fact]
    public async Task A_broker_with_such_a_key_does_not_start()
    {
        var broker = new KafkaBroker(Config(("broker.id", "1"), ("listeners", "PLAINTEXT://127.0.0.1:0"), ("queued.max.requests", "16")), inMemory: true);
        var e = await Assert.ThrowsAsync<ConfigValueException>(() => broker.StartAsync());
        Assert.Equal("queued.max.requests=16 is not supported: Samsa has no request queue between network and I/O threads; remove it", e.Message);
        Assert.Throws<InvalidOperationException>(() => broker.BoundEndPoint);
        await broker.DisposeAsync();
    }

    [Theory]
    [InlineData("1001", null, "broker.id must be greater than or equal to -1 and not greater than reserved.broker.max.id")]
    [InlineData("1001", "2000", null)]
    [InlineData("-1", null, "broker.id is not set: Samsa does not generate broker ids (broker.id.generation.enable); set broker.id")]
    [InlineData("-2", null, "broker.id must be greater than or equal to -1 and not greater than reserved.broker.max.id")]
    public void Broker_id_is_checked_against_reserved_broker_max_id_in_zookeeper_mode(string id, string? reserved, string? problem)
    {
        var props = new List<(string, string)> { ("zookeeper.connect", "127.0.0.1:1"), ("broker.id", id) };
        if (reserved is not null) props.Add(("reserved.broker.max.id", reserved));
        var problems = SecurityConfigCheck.Problems(Config([.. props]));
        if (problem is null) Assert.Empty(problems); else Assert.Equal(problem, Assert.Single(problems));
    }

    [Fact]
    public void Without_id_generation_broker_id_must_be_set()
    {
        Assert.Equal("broker.id must be greater than or equal to 0", Assert.Single(SecurityConfigCheck.Problems(Config(
            ("zookeeper.connect", "127.0.0.1:1"), ("broker.id.generation.enable", "false"), ("broker.id", "-1")))));
        Assert.Empty(SecurityConfigCheck.Problems(Config(
            ("zookeeper.connect", "127.0.0.1:1"), ("broker.id.generation.enable", "false"), ("broker.id", "5000"))));
    }

    [Fact]
    public async Task Socket_buffer_keys_reach_the_client_sockets()
    {
        // Below the OS defaults even doubled (Linux reports twice what was set).
        await using var broker = new KafkaBroker(Config(("broker.id", "1"), ("listeners", "PLAINTEXT://127.0.0.1:0"),
            ("socket.send.buffer.bytes", "6000"), ("socket.receive.buffer.bytes", "6000"), ("socket.listen.backlog.size", "10")), inMemory: true);
        await broker.StartAsync();
        using var client = new TcpClient();
        await client.ConnectAsync(broker.BoundEndPoint);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!broker.ClientConnections.Any() && DateTime.UtcNow < deadline) await Task.Delay(10);
        var (send, receive) = Assert.Single(broker.ClientConnections).SocketBufferSizes;
        Assert.InRange(send, 6000, 12000);
        Assert.InRange(receive, 6000, 12000);
    }
}

/// <summary>Topic keys honoured at their default only: CreateTopics / AlterConfigs answer
/// INVALID_CONFIG with one line instead of storing a value that changes nothing.</summary>
public class UnhonouredTopicKeysTests
{
    [Theory]
    [InlineData("max.compaction.lag.ms", "60000", "the log cleaner has no maximum compaction lag")]
    [InlineData("preallocate", "true", "segment files are not preallocated")]
    [InlineData("remote.storage.enable", "true", "tiered storage is not supported")]
    [InlineData("local.retention.ms", "1000", "tiered storage is not supported")]
    [InlineData("local.retention.bytes", "1000", "tiered storage is not supported")]
    [InlineData("remote.log.copy.disable", "true", "tiered storage is not supported")]
    [InlineData("remote.log.delete.on.disable", "true", "tiered storage is not supported")]
    public void A_non_default_value_is_refused(string key, string value, string reason)
    {
        var broker = new BrokerConfig(new Dictionary<string, string>());
        Assert.Equal($"{key}={value} is not supported: {reason}", TopicConfigValidator.Validate(new Dictionary<string, string> { [key] = value }, broker));
        Assert.Null(TopicConfigValidator.Validate(new Dictionary<string, string> { [key] = ConfigCatalog.Topic[key].Default! }, broker));
    }
}
