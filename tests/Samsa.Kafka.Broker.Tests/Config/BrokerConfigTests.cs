using Samsa.Kafka.Broker.Config;

namespace Samsa.Kafka.Broker.Tests.Config;

public class BrokerConfigTests
{
    private static BrokerConfig Broker(params (string K, string V)[] props) =>
        new(props.ToDictionary(p => p.K, p => p.V));

    [Fact]
    public void TopicDefaultsComeFromUpstreamDefaults()
    {
        var log = Broker().LogConfigFor(new Dictionary<string, string>());
        Assert.Equal(604_800_000L, log.RetentionMs);
        Assert.Equal(1_048_588, log.MaxMessageBytes);
        Assert.Equal(1_073_741_824, log.SegmentBytes);
        Assert.Equal("producer", log.CompressionType);
        Assert.Equal(["delete"], log.CleanupPolicy);
        Assert.False(log.LogAppendTime);
        Assert.Equal(1, log.MinInSyncReplicas);
    }

    [Theory]
    [InlineData("log.retention.hours", "1", 3_600_000L)]
    [InlineData("log.retention.minutes", "2", 120_000L)]
    [InlineData("log.retention.ms", "5000", 5_000L)]
    public void RetentionMsTakesBrokerSynonymsWithUnitConversion(string key, string value, long expected)
    {
        Assert.Equal(expected, Broker((key, value)).LogConfigFor(new Dictionary<string, string>()).RetentionMs);
    }

    [Fact]
    public void HigherPrioritySynonymWins_AndTopicOverrideBeatsBroker()
    {
        var broker = Broker(("log.retention.hours", "1"), ("log.retention.ms", "7"), ("message.max.bytes", "2000"));
        Assert.Equal(7L, broker.LogConfigFor(new Dictionary<string, string>()).RetentionMs);
        var log = broker.LogConfigFor(new Dictionary<string, string> { ["retention.ms"] = "9", ["max.message.bytes"] = "100" });
        Assert.Equal(9L, log.RetentionMs);
        Assert.Equal(100, log.MaxMessageBytes);
        Assert.Equal(2000, broker.LogConfigFor(new Dictionary<string, string>()).MaxMessageBytes);
    }

    [Fact]
    public void InvalidStaticValueRefusesToStart()
    {
        var e = Assert.Throws<ConfigValueException>(() => Broker(("num.partitions", "zero")));
        Assert.Equal("Invalid value zero for configuration num.partitions: Not a number of type INT", e.Message);
        Assert.Throws<ConfigValueException>(() => Broker(("num.partitions", "0")));
    }

    [Fact]
    public void ReplicaFetchWaitMustFitTheSocketTimeoutAndTheLagTime()
    {
        // upstream KafkaConfig's two relations, with its words
        var e = Assert.Throws<ConfigValueException>(() => Broker(("replica.fetch.wait.max.ms", "40000")));
        Assert.StartsWith("replica.socket.timeout.ms should always be at least replica.fetch.wait.max.ms", e.Message);
        e = Assert.Throws<ConfigValueException>(() => Broker(("replica.fetch.wait.max.ms", "20000"), ("replica.lag.time.max.ms", "10000")));
        Assert.StartsWith("replica.fetch.wait.max.ms should always be less than or equal to replica.lag.time.max.ms", e.Message);
        Assert.Equal(25000, (int)Broker(("replica.fetch.wait.max.ms", "25000")).Get("replica.fetch.wait.max.ms")!);
        Assert.Throws<ConfigValueException>(() => Broker(("replica.fetch.backoff.ms", "-1")));
    }

    [Theory]
    [InlineData("retention.ms", "abc", "Invalid value abc for configuration retention.ms: Not a number of type LONG")]
    [InlineData("min.insync.replicas", "0", "Invalid value 0 for configuration min.insync.replicas: Value must be at least 1")]
    [InlineData("compression.type", "brotli", "Invalid value brotli for configuration compression.type: String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer")]
    [InlineData("cleanup.policy", "compact,shred", "Invalid value compact,shred for configuration cleanup.policy: String must be one of: compact, delete")]
    [InlineData("min.cleanable.dirty.ratio", "1.5", "Invalid value 1.5 for configuration min.cleanable.dirty.ratio: Value must be no more than 1")]
    [InlineData("preallocate", "yes", "Invalid value yes for configuration preallocate: Expected value to be either true or false")]
    [InlineData("no.such.config", "1", "Unknown topic config name: no.such.config")]
    public void TopicConfigValidationUsesUpstreamMessages(string key, string value, string message)
    {
        Assert.Equal(message, TopicConfigValidator.Validate(new Dictionary<string, string> { [key] = value }, Broker()));
    }

    [Fact]
    public void CompactionLagConflictIsRejected()
    {
        var problem = TopicConfigValidator.Validate(new Dictionary<string, string>
        {
            ["min.compaction.lag.ms"] = "10", ["max.compaction.lag.ms"] = "5",
        }, Broker());
        Assert.Equal("conflict topic config setting min.compaction.lag.ms (10) > max.compaction.lag.ms (5)", problem);
        Assert.Null(TopicConfigValidator.Validate(new Dictionary<string, string> { ["cleanup.policy"] = "compact, delete" }, Broker()));
    }

    [Fact]
    public void DescribeTopicReportsSourcesAndSynonymsLikeUpstream()
    {
        var broker = Broker(("log.segment.bytes", "2048"));
        var entries = broker.DescribeTopic(new Dictionary<string, string> { ["retention.ms"] = "1000" }, null, includeSynonyms: true)
            .ToDictionary(e => e.Name);

        var retention = entries["retention.ms"];
        Assert.Equal("1000", retention.Value);
        Assert.Equal(ConfigSource.DynamicTopicConfig, retention.Source);
        Assert.Equal(ConfigType.Long, retention.Type);
        // The topic override first; the broker group's first key (log.retention.ms) is unset, so
        // upstream drops the remaining broker entries.
        Assert.Equal([new ConfigSynonymEntry("retention.ms", "1000", ConfigSource.DynamicTopicConfig)], retention.Synonyms);

        var segment = entries["segment.bytes"];
        Assert.Equal("2048", segment.Value);
        Assert.Equal(ConfigSource.StaticBrokerConfig, segment.Source);
        Assert.Equal(
            [new ConfigSynonymEntry("log.segment.bytes", "2048", ConfigSource.StaticBrokerConfig),
             new ConfigSynonymEntry("log.segment.bytes", "1073741824", ConfigSource.DefaultConfig)],
            segment.Synonyms);

        var ratio = entries["min.cleanable.dirty.ratio"];
        Assert.Equal("0.5", ratio.Value);
        Assert.Equal(ConfigSource.DefaultConfig, ratio.Source);
        Assert.Equal("delete", entries["cleanup.policy"].Value);
        Assert.Equal(ConfigType.List, entries["cleanup.policy"].Type);
        Assert.Equal("", entries["leader.replication.throttled.replicas"].Value);
    }

    [Fact]
    public void DescribeTopicFiltersByRequestedKeys()
    {
        var entries = Broker().DescribeTopic(new Dictionary<string, string>(), ["retention.ms", "cleanup.policy"], includeSynonyms: false);
        Assert.Equal(["cleanup.policy", "retention.ms"], entries.Select(e => e.Name).ToArray());
        Assert.All(entries, e => Assert.Empty(e.Synonyms));
    }

    [Fact]
    public void DescribeBrokerHidesPasswordsAndMarksReadOnly()
    {
        var broker = Broker(("broker.id", "3"), ("ssl.keystore.password", "secret"), ("custom.key", "v"));
        var entries = broker.DescribeBroker(perBroker: true, null, includeSynonyms: true).ToDictionary(e => e.Name);
        Assert.Equal("3", entries["broker.id"].Value);
        Assert.Equal(ConfigSource.StaticBrokerConfig, entries["broker.id"].Source);
        Assert.True(entries["broker.id"].ReadOnly);
        Assert.Null(entries["ssl.keystore.password"].Value);
        Assert.True(entries["ssl.keystore.password"].Sensitive);
        Assert.Equal(ConfigType.Password, entries["ssl.keystore.password"].Type);
        Assert.True(entries["custom.key"].Sensitive); // unknown type: upstream assumes it may be sensitive
        Assert.False(entries["log.retention.ms"].ReadOnly);
        Assert.Equal(ConfigSource.DefaultConfig, entries["num.partitions"].Source);
        Assert.Equal(3, broker.BrokerId);
    }

    [Fact]
    public void DynamicBrokerConfigOverridesStaticAndFeedsTopicDefaults()
    {
        var broker = Broker(("log.retention.ms", "100"));
        Assert.Null(BrokerConfig.ValidateDynamicBrokerUpdate(new Dictionary<string, string?> { ["log.retention.ms"] = "200" }));
        broker.ApplyDynamic(perBroker: false, new Dictionary<string, string?> { ["log.retention.ms"] = "200" }, replaceAll: false);
        Assert.Equal(200L, broker.LogConfigFor(new Dictionary<string, string>()).RetentionMs);
        var entry = broker.DescribeBroker(true, ["log.retention.ms"], true).Single();
        Assert.Equal("200", entry.Value);
        Assert.Equal(ConfigSource.DynamicDefaultBrokerConfig, entry.Source);
        Assert.Equal(ConfigSource.StaticBrokerConfig, entry.Synonyms[1].Source);

        Assert.Equal("Cannot update these configs dynamically: Set(broker.id)",
            BrokerConfig.ValidateDynamicBrokerUpdate(new Dictionary<string, string?> { ["broker.id"] = "2" }));
    }

    [Fact]
    public void ListenersAndLogDirsParse()
    {
        var broker = Broker(("listeners", "PLAINTEXT://127.0.0.1:0, SSL://[::1]:9093"), ("log.dir", "/a"), ("log.dirs", "/b,/c"));
        Assert.Equal([new ListenerEndpoint("PLAINTEXT", "127.0.0.1", 0), new ListenerEndpoint("SSL", "::1", 9093)], broker.Listeners);
        Assert.Equal(["/b", "/c"], broker.LogDirs);
        Assert.Equal(["/tmp/kafka-logs"], Broker().LogDirs);
        Assert.Throws<ConfigValueException>(() => Broker(("listeners", "nonsense")).Listeners);
    }
}
