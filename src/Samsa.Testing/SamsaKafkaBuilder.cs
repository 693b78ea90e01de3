using System.Globalization;

namespace Samsa.Testing;

/// <summary>
/// A builder shaped like Testcontainers.Kafka 4.17's <c>KafkaBuilder</c>, so a test written for it
/// moves over by changing its using and type names (<c>KafkaBuilder</c> → <c>SamsaKafkaBuilder</c>,
/// <c>KafkaContainer</c> → <c>SamsaKafkaContainer</c>). The "container" is a one-broker
/// <see cref="SamsaCluster"/> in this process (more with <see cref="WithBrokers"/>), no Docker.
/// <para>Settings that only shape a Docker container are accepted and ignored (image, name,
/// labels, clean-up, wait strategy, logger, ephemeral port bindings). Settings that would change
/// what the test sees and that Samsa cannot honour throw <see cref="NotSupportedException"/> at
/// once: KRaft, an external ZooKeeper, fixed host ports, container networks and extra listeners.
/// <c>WithEnvironment("KAFKA_X_Y", v)</c> becomes the broker setting <c>x.y=v</c>, as the Confluent
/// and Apache images map them; a setting the broker does not honour stops the start with an error.</para>
/// Like Testcontainers' builders it is immutable: every With... returns a new builder.
/// </summary>
public sealed class SamsaKafkaBuilder
{
    /// <summary>The container port Testcontainers' KafkaBuilder maps for clients (KafkaBuilder.KafkaPort).</summary>
    public const ushort KafkaPort = 9092;
    /// <summary>Testcontainers' inter-broker port (KafkaBuilder.BrokerPort).</summary>
    public const ushort BrokerPort = 9093;

    private readonly string? _image;
    private readonly int _brokers = 1;
    private readonly bool _inMemory = true;
    private readonly Dictionary<string, string> _properties = new(StringComparer.Ordinal);

    /// <summary>As Testcontainers.Kafka's parameterless constructor (no image needed here).</summary>
    public SamsaKafkaBuilder() { }

    /// <summary>As <c>new KafkaBuilder("confluentinc/cp-kafka:7.5.12")</c>: the image name is kept
    /// (<see cref="Image"/>) but does not choose a Kafka version; Samsa serves the API versions of
    /// Apache Kafka 4.2 (ZooKeeper mode) whatever the tag.</summary>
    public SamsaKafkaBuilder(string image) { _image = image; }

    private SamsaKafkaBuilder(SamsaKafkaBuilder from, string? image = null, int? brokers = null, bool? inMemory = null, (string Key, string Value)? property = null)
    {
        _image = image ?? from._image;
        _brokers = brokers ?? from._brokers;
        _inMemory = inMemory ?? from._inMemory;
        foreach (var (k, v) in from._properties) _properties[k] = v;
        if (property is { } p) _properties[p.Key] = p.Value;
    }

    /// <summary>The image name given, if any (informational).</summary>
    public string? Image => _image;

    public SamsaKafkaBuilder WithImage(string image) => new(this, image: image);

    /// <summary>Samsa extension: brokers in the "container" (default 1).</summary>
    public SamsaKafkaBuilder WithBrokers(int brokers) =>
        brokers > 0 ? new(this, brokers: brokers) : throw new ArgumentOutOfRangeException(nameof(brokers));

    /// <summary>Samsa extension: logs on files in a temp directory instead of in memory (default in memory).</summary>
    public SamsaKafkaBuilder WithFileStorage() => new(this, inMemory: false);

    /// <summary>Samsa extension: one broker setting (server.properties key).</summary>
    public SamsaKafkaBuilder WithBrokerSetting(string key, string value) => new(this, property: (key, value));

    /// <summary>KAFKA_* variables become broker settings (KAFKA_AUTO_CREATE_TOPICS_ENABLE →
    /// auto.create.topics.enable; "__" → "_", "___" → "-", as the images' configure scripts do). JVM
    /// and logging variables (KAFKA_HEAP_OPTS, KAFKA_OPTS, KAFKA_JMX_*, KAFKA_LOG4J_*) and
    /// CLUSTER_ID do not apply to Samsa and are ignored; anything else throws.</summary>
    public SamsaKafkaBuilder WithEnvironment(string name, string value)
    {
        if (name is "KAFKA_HEAP_OPTS" or "KAFKA_OPTS" or "KAFKA_JVM_PERFORMANCE_OPTS" or "CLUSTER_ID" or "KAFKA_GC_LOG_OPTS"
            || name.StartsWith("KAFKA_JMX_", StringComparison.Ordinal) || name.StartsWith("KAFKA_LOG4J_", StringComparison.Ordinal))
            return this;
        if (!name.StartsWith("KAFKA_", StringComparison.Ordinal))
            throw new NotSupportedException($"environment variable {name}: only KAFKA_* broker settings apply to a Samsa broker");
        string key = name["KAFKA_".Length..].Replace("___", "-", StringComparison.Ordinal).Replace("__", "\u0001", StringComparison.Ordinal)
            .Replace('_', '.').Replace('\u0001', '_').ToLowerInvariant();
        if (key is "listeners" or "advertised.listeners" or "listener.security.protocol.map" or "inter.broker.listener.name"
            or "broker.id" or "node.id" or "zookeeper.connect" or "process.roles" or "controller.quorum.voters" or "controller.listener.names" or "log.dirs")
            throw new NotSupportedException($"{name} ({key}) is decided by SamsaCluster (loopback listeners behind fault proxies, its own Keeper)");
        return new(this, property: (key, value));
    }

    public SamsaKafkaBuilder WithEnvironment(IReadOnlyDictionary<string, string> environment)
    {
        var b = this;
        foreach (var (k, v) in environment) b = b.WithEnvironment(k, v);
        return b;
    }

    /// <summary>A random host port for a container port: what every Samsa listener gets anyway.</summary>
    public SamsaKafkaBuilder WithPortBinding(int port, bool assignRandomHostPort = false) =>
        assignRandomHostPort || port is KafkaPort or BrokerPort ? this
            : throw new NotSupportedException($"a fixed host port ({port}) is not supported: read the address from GetBootstrapAddress()");

    public SamsaKafkaBuilder WithPortBinding(int hostPort, int containerPort) =>
        hostPort == 0 ? this : throw new NotSupportedException($"a fixed host port ({hostPort}) is not supported: read the address from GetBootstrapAddress()");

    public SamsaKafkaBuilder WithPortBinding(string port, bool assignRandomHostPort = false) =>
        WithPortBinding(int.Parse(port, CultureInfo.InvariantCulture), assignRandomHostPort);

    // Docker-only settings with nothing to do in-process.
    public SamsaKafkaBuilder WithName(string name) => this;
    public SamsaKafkaBuilder WithLabel(string name, string value) => this;
    public SamsaKafkaBuilder WithCleanUp(bool cleanUp) => this;
    public SamsaKafkaBuilder WithAutoRemove(bool autoRemove) => this;
    public SamsaKafkaBuilder WithReuse(bool reuse) => this;
    public SamsaKafkaBuilder WithPrivileged(bool privileged) => this;
    public SamsaKafkaBuilder WithVendor(object vendor) => this;
    /// <summary>Accepted and ignored: StartAsync returns once the broker serves (any wait strategy is met).</summary>
    public SamsaKafkaBuilder WithWaitStrategy(object waitStrategy) => this;
    public SamsaKafkaBuilder WithLogger(object logger) => this;

    /// <summary>ZooKeeper mode on Samsa's own in-process Keeper: only the default (null) is supported.</summary>
    public SamsaKafkaBuilder WithZooKeeper(string? connectionString = null) =>
        connectionString is null ? this : throw new NotSupportedException("an external ZooKeeper is not supported: SamsaKafkaContainer runs its own Keeper");

    public SamsaKafkaBuilder WithKRaft() =>
        throw new NotSupportedException("Samsa runs Kafka in ZooKeeper mode only; KRaft-only APIs (DescribeQuorum, controller RPCs) are not served");

    public SamsaKafkaBuilder WithListener(string kafka) =>
        throw new NotSupportedException($"extra listener {kafka}: container networks do not exist in-process");

    public SamsaKafkaBuilder WithNetwork(object network) =>
        throw new NotSupportedException("container networks do not exist in-process; clients use GetBootstrapAddress()");

    public SamsaKafkaBuilder WithNetworkAliases(params string[] aliases) =>
        throw new NotSupportedException("container networks do not exist in-process; clients use GetBootstrapAddress()");

    public SamsaKafkaContainer Build()
    {
        var options = new SamsaClusterOptions { InMemory = _inMemory };
        foreach (var (k, v) in _properties) options.BrokerProperties[k] = v;
        return new SamsaKafkaContainer(_brokers, options, _image);
    }
}

/// <summary>What <see cref="SamsaKafkaBuilder.Build"/> returns, shaped like Testcontainers'
/// <c>KafkaContainer</c>: StartAsync, StopAsync, DisposeAsync, GetBootstrapAddress(), Hostname,
/// GetMappedPublicPort(9092). StopAsync then StartAsync starts a fresh cluster (an in-memory one
/// loses its topics, as a container without volumes would not — see the README).</summary>
public sealed class SamsaKafkaContainer : IAsyncDisposable
{
    private readonly int _brokers;
    private readonly SamsaClusterOptions _options;
    private SamsaCluster? _cluster;

    internal SamsaKafkaContainer(int brokers, SamsaClusterOptions options, string? image)
    {
        _brokers = brokers;
        _options = options;
        Image = image;
    }

    public string? Image { get; }

    /// <summary>Always 127.0.0.1.</summary>
    public string Hostname => "127.0.0.1";

    /// <summary>The cluster behind, for Samsa's fault hooks (null until started).</summary>
    public SamsaCluster? Cluster => _cluster;

    public async Task StartAsync(CancellationToken ct = default)
    {
        if (_cluster is not null) return;
        _cluster = await SamsaCluster.StartAsync(_brokers, keeper: true, _options, ct);
    }

    public async Task StopAsync(CancellationToken ct = default)
    {
        var c = _cluster;
        _cluster = null;
        if (c is not null) await c.DisposeAsync();
    }

    private SamsaCluster Running => _cluster ?? throw new InvalidOperationException("the container is not running: call StartAsync first");

    /// <summary>As Testcontainers.Kafka: "plaintext://127.0.0.1:PORT/" (a URI; librdkafka and the
    /// Java client strip the scheme). With several brokers, the first one's.</summary>
    public string GetBootstrapAddress() => new UriBuilder("PLAINTEXT", Hostname, GetMappedPublicPort(SamsaKafkaBuilder.KafkaPort)).ToString();

    /// <summary>All brokers as host:port,host:port (Samsa extension).</summary>
    public string BootstrapServers => Running.BootstrapServers;

    /// <summary>The client port for container port 9092; other container ports are not mapped.</summary>
    public ushort GetMappedPublicPort(int containerPort)
    {
        if (containerPort != SamsaKafkaBuilder.KafkaPort)
            throw new ArgumentException($"only container port {SamsaKafkaBuilder.KafkaPort} is mapped", nameof(containerPort));
        string address = Running.BootstrapServer(Running.BrokerIds[0]);
        return ushort.Parse(address[(address.LastIndexOf(':') + 1)..], CultureInfo.InvariantCulture);
    }

    public ValueTask DisposeAsync() => new(StopAsync());
}
