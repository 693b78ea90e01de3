using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Tests.Handlers;

/// <summary>
/// BROKER resources of DescribeConfigs / AlterConfigs / IncrementalAlterConfigs against upstream's
/// ZooKeeper-mode rules: DynamicBrokerConfig.AllDynamicConfigs decides read_only,
/// DynamicBrokerConfig.validateConfigs decides what may be altered (ConfigAdminManager.preprocess
/// answers its ConfigException with INVALID_REQUEST and the exception's message).
/// </summary>
public class DynamicBrokerConfigTests
{
    private const sbyte BrokerType = 4;

    private static async Task<AlterConfigsResponse.AlterConfigsResourceResponse> Alter(HandlerFixture f, string resource, params (string Name, string? Value)[] configs)
    {
        var r = await f.Send<AlterConfigsResponse>(new AlterConfigsRequest
        {
            Resources = [new() { ResourceType = BrokerType, ResourceName = resource, Configs = configs.Select(c => new AlterConfigsRequest.AlterableConfig { Name = c.Name, Value = c.Value }).ToList() }],
        }, 2);
        return r!.Responses[0];
    }

    private static async Task<IncrementalAlterConfigsResponse.AlterConfigsResourceResponse> Incremental(HandlerFixture f, string resource, params (string Name, sbyte Op, string? Value)[] ops)
    {
        var r = await f.Send<IncrementalAlterConfigsResponse>(new IncrementalAlterConfigsRequest
        {
            Resources = [new() { ResourceType = BrokerType, ResourceName = resource, Configs = ops.Select(o => new IncrementalAlterConfigsRequest.AlterableConfig { Name = o.Name, ConfigOperation = o.Op, Value = o.Value }).ToList() }],
        }, 1);
        return r!.Responses[0];
    }

    [Fact]
    public async Task ListenerKeysAreUpdatableAndOtherStaticKeysReadOnly()
    {
        await using var f = new HandlerFixture();
        var r = await f.Send<DescribeConfigsResponse>(new DescribeConfigsRequest
        {
            Resources = [new() { ResourceType = BrokerType, ResourceName = "1", ConfigurationKeys = null }],
        }, 4);
        var byName = r!.Results[0].Configs.ToDictionary(c => c.Name, c => c.ReadOnly);
        // DynamicListenerConfig.ReconfigurableConfigs (per broker) and other AllDynamicConfigs members.
        foreach (var updatable in new[] { "advertised.listeners", "listeners", "listener.security.protocol.map", "sasl.enabled.mechanisms",
                     "ssl.keystore.location", "num.network.threads", "max.connections", "num.io.threads", "log.retention.ms",
                     "log.roll.ms", "message.max.bytes", "log.cleaner.threads", "producer.id.expiration.ms", "max.connections.per.ip" })
            Assert.False(byName[updatable], updatable);
        // Not in AllDynamicConfigs: the hour/minute synonyms, the message format and the static keys.
        foreach (var readOnly in new[] { "broker.id", "log.dirs", "zookeeper.connect", "inter.broker.listener.name", "log.roll.hours",
                     "log.retention.hours", "log.retention.minutes", "log.message.format.version", "num.partitions", "log.cleaner.enable" })
            Assert.True(byName[readOnly], readOnly);
    }

    [Fact]
    public void CatalogueDynamicFlagsMatchUpstreamsSets()
    {
        foreach (var def in ConfigCatalog.Broker.Values)
            Assert.True(def.Dynamic == (ConfigCatalog.DynamicBrokerKeys.Contains(def.Name) || ConfigCatalog.BrokerQuotaKeys.Contains(def.Name)), def.Name);
        Assert.Contains("advertised.listeners", ConfigCatalog.PerBrokerKeys);
        Assert.DoesNotContain("max.connections", ConfigCatalog.PerBrokerKeys);
    }

    [Fact]
    public async Task KeysThatAreNoBrokerConfigAreAcceptedAndStored()
    {
        await using var f = new HandlerFixture();
        var perBroker = await Alter(f, "1", ("cleanup.policy", "compact"), ("my.custom.key", "x"));
        Assert.Equal(0, perBroker.ErrorCode);
        Assert.Null(perBroker.ErrorMessage);
        Assert.Equal("compact", f.Broker.Config.DynamicConfigs(perBroker: true)["cleanup.policy"]);
        var clusterDefault = await Incremental(f, "", ("cleanup.policy", 0, "compact"));
        Assert.Equal(0, clusterDefault.ErrorCode);
        Assert.Equal("compact", f.Broker.Config.DynamicConfigs(perBroker: false)["cleanup.policy"]);
        // Described back as upstream lists a stored unknown key: sensitive (type unknown), read-only.
        var d = await f.Send<DescribeConfigsResponse>(new DescribeConfigsRequest
        {
            Resources = [new() { ResourceType = BrokerType, ResourceName = "1", ConfigurationKeys = ["cleanup.policy"] }],
        }, 4);
        var entry = Assert.Single(d!.Results[0].Configs);
        Assert.True(entry.ReadOnly);
        Assert.True(entry.IsSensitive);
    }

    [Fact]
    public async Task RefusalsCarryUpstreamsErrorsAndMessages()
    {
        await using var f = new HandlerFixture();
        async Task Refused(Task<AlterConfigsResponse.AlterConfigsResourceResponse> call, ErrorCode code, string message)
        {
            var r = await call;
            Assert.Equal(((short)code, message), (r.ErrorCode, r.ErrorMessage));
        }
        await Refused(Alter(f, "1", ("log.dirs", "/tmp/x")), ErrorCode.InvalidRequest, "Cannot update these configs dynamically: Set(log.dirs)");
        await Refused(Alter(f, "", ("broker.id", "3"), ("num.partitions", "2")), ErrorCode.InvalidRequest,
            "Cannot update these configs dynamically: Set(broker.id, num.partitions)");
        await Refused(Alter(f, "1", ("ssl.keystore.location", "/k")), ErrorCode.InvalidRequest,
            "These security configs can be dynamically updated only per-listener using the listener prefix: Set(ssl.keystore.location)");
        await Refused(Alter(f, "1", ("num.io.threads", "many")), ErrorCode.InvalidRequest,
            "Invalid value many for configuration num.io.threads: Not a number of type INT");
        // Keys Samsa honours at their default only (config audit); thread-pool sizes are still stored.
        await Refused(Alter(f, "1", ("log.cleaner.max.compaction.lag.ms", "1000")), ErrorCode.InvalidRequest,
            "log.cleaner.max.compaction.lag.ms=1000 is not supported: the log cleaner has no maximum compaction lag; remove it");
        await Refused(Alter(f, "1", ("listener.name.plaintext.ssl.provider", "SunJSSE")), ErrorCode.InvalidRequest,
            "listener.name.plaintext.ssl.provider=SunJSSE is not supported: Samsa uses the OS TLS stack through .NET's SslStream; remove it");
        await Refused(Alter(f, "1", ("listener.name.plaintext.max.connections", "-1")), ErrorCode.InvalidRequest,
            "Invalid value -1 for configuration max.connections: Value must be at least 0");
        await Refused(Alter(f, "", ("advertised.listeners", "PLAINTEXT://h:1")), ErrorCode.InvalidRequest,
            "Cannot update these configs at default cluster level, broker id must be specified: Set(advertised.listeners)");
        await Refused(Alter(f, "", ("listener.name.plaintext.ssl.keystore.location", "/k")), ErrorCode.InvalidRequest,
            "Cannot update these configs at default cluster level, broker id must be specified: Set(listener.name.plaintext.ssl.keystore.location)");
        await Refused(Alter(f, "2", ("log.retention.ms", "1")), ErrorCode.InvalidRequest, "Unexpected broker id, expected 1, but received 2");
        await Refused(Alter(f, "one", ("log.retention.ms", "1")), ErrorCode.InvalidRequest, "Node id must be an integer, but it is: one");
        await Refused(Alter(f, "1", ("log.retention.ms", "1"), ("log.retention.ms", "2")), ErrorCode.InvalidRequest, "Error due to duplicate config keys");
        await Refused(Alter(f, "1", ("a", null), ("b", null)), ErrorCode.InvalidRequest, "Null value not supported for : a, b");
        Assert.Empty(f.Broker.Config.DynamicConfigs(perBroker: true));
        Assert.Empty(f.Broker.Config.DynamicConfigs(perBroker: false));

        // Accepted per broker and cluster-wide where upstream accepts them.
        Assert.Equal(0, (await Alter(f, "1", ("advertised.listeners", "PLAINTEXT://h:1"), ("listener.name.plaintext.ssl.keystore.location", "/k"))).ErrorCode);
        Assert.Equal(0, (await Alter(f, "", ("max.connections", "100"), ("listener.name.plaintext.max.connections", "10"))).ErrorCode);
    }

    [Fact]
    public async Task IncrementalRefusalsMatchUpstream()
    {
        await using var f = new HandlerFixture();
        var unknownAppend = await Incremental(f, "1", ("no.such.key", 2, "x"));
        Assert.Equal(((short)ErrorCode.UnknownServerError, (string?)null), (unknownAppend.ErrorCode, unknownAppend.ErrorMessage));
        var subtractScalar = await Incremental(f, "1", ("log.retention.ms", 3, "1"));
        Assert.Equal(((short)ErrorCode.InvalidConfig, "Config value subtract is not allowed for config key: log.retention.ms"),
            (subtractScalar.ErrorCode, subtractScalar.ErrorMessage));
        var nullSet = await Incremental(f, "1", ("log.retention.ms", 0, null));
        Assert.Equal(((short)ErrorCode.InvalidRequest, "Null value not supported for : log.retention.ms"), (nullSet.ErrorCode, nullSet.ErrorMessage));
        var perBrokerAtDefault = await Incremental(f, "", ("listeners", 0, "PLAINTEXT://:9092"));
        Assert.Equal(((short)ErrorCode.InvalidRequest, "Cannot update these configs at default cluster level, broker id must be specified: Set(listeners)"),
            (perBrokerAtDefault.ErrorCode, perBrokerAtDefault.ErrorMessage));
        // APPEND starts from the key's default (GSSAPI), not from what the broker runs with.
        Assert.Equal(0, (await Incremental(f, "1", ("sasl.enabled.mechanisms", 2, "PLAIN"))).ErrorCode);
        Assert.Equal("GSSAPI,PLAIN", f.Broker.Config.DynamicConfigs(perBroker: true)["sasl.enabled.mechanisms"]);
    }
}
