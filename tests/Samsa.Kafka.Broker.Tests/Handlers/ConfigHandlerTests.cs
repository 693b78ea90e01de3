using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Tests.Handlers;

public class ConfigHandlerTests
{
    private static async Task<DescribeConfigsResponse.DescribeConfigsResult> Describe(HandlerFixture f, sbyte type, string name, short version = 4, bool synonyms = true, params string[] keys)
    {
        var r = await f.Send<DescribeConfigsResponse>(new DescribeConfigsRequest
        {
            IncludeSynonyms = synonyms,
            Resources = [new() { ResourceType = type, ResourceName = name, ConfigurationKeys = keys.Length == 0 ? null : keys.ToList() }],
        }, version);
        return r!.Results.Single();
    }

    [Fact]
    public async Task DescribeTopicConfigsWithSourcesTypesAndSynonyms()
    {
        await using var f = new HandlerFixture(("log.retention.hours", "24"));
        await f.CreateTopic("t", 1, ("cleanup.policy", "compact"));
        var r = await Describe(f, 2, "t");
        Assert.Equal(0, r.ErrorCode);
        var cleanup = r.Configs.Single(c => c.Name == "cleanup.policy");
        Assert.Equal(("compact", (sbyte)1, (sbyte)7), (cleanup.Value, cleanup.ConfigSource, cleanup.ConfigType));
        Assert.Equal(["cleanup.policy", "log.cleanup.policy"], cleanup.Synonyms.Select(s => s.Name));
        var retention = r.Configs.Single(c => c.Name == "retention.ms");
        Assert.Equal("86400000", retention.Value);
        var segment = r.Configs.Single(c => c.Name == "segment.bytes");
        Assert.Equal(((sbyte)5, (sbyte)3), (segment.ConfigSource, segment.ConfigType));

        var v0 = await Describe(f, 2, "t", version: 0, synonyms: false, "cleanup.policy", "segment.bytes");
        Assert.Equal(2, v0.Configs.Count);
        Assert.False(v0.Configs.Single(c => c.Name == "cleanup.policy").IsDefault);
        Assert.True(v0.Configs.Single(c => c.Name == "segment.bytes").IsDefault);
    }

    [Fact]
    public async Task DescribeConfigErrors()
    {
        await using var f = new HandlerFixture();
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, (await Describe(f, 2, "missing")).ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidTopicException, (await Describe(f, 2, "bad name")).ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidRequest, (await Describe(f, 4, "2")).ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidRequest, (await Describe(f, 4, "abc")).ErrorCode);
        var broker = await Describe(f, 4, "1", keys: ["broker.id", "num.partitions"]);
        Assert.Equal(0, broker.ErrorCode);
        Assert.Equal("1", broker.Configs.Single(c => c.Name == "broker.id").Value);
        Assert.True(broker.Configs.Single(c => c.Name == "broker.id").ReadOnly);
    }

    [Fact]
    public async Task AlterConfigsReplacesTopicOverrides()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t", 1, ("retention.ms", "1000"), ("cleanup.policy", "compact"));
        var r = await f.Send<AlterConfigsResponse>(new AlterConfigsRequest
        {
            Resources = [new() { ResourceType = 2, ResourceName = "t", Configs = [new() { Name = "max.message.bytes", Value = "5000" }] }],
        }, 2);
        Assert.Equal(0, r!.Responses[0].ErrorCode);
        var topic = f.Broker.Replicas.GetTopic("t")!;
        Assert.Equal(new Dictionary<string, string> { ["max.message.bytes"] = "5000" }, topic.Configs);
        Assert.Equal(5000, topic.LogConfig.MaxMessageBytes);

        var bad = await f.Send<AlterConfigsResponse>(new AlterConfigsRequest
        {
            Resources = [new() { ResourceType = 2, ResourceName = "t", Configs = [new() { Name = "retention.ms", Value = "soon" }] }],
        }, 1);
        Assert.Equal((short)ErrorCode.InvalidConfig, bad!.Responses[0].ErrorCode);
        Assert.Equal("Invalid value soon for configuration retention.ms: Not a number of type LONG", bad.Responses[0].ErrorMessage);
        Assert.Equal(5000, f.Broker.Replicas.GetTopic("t")!.LogConfig.MaxMessageBytes);

        var brokerStatic = await f.Send<AlterConfigsResponse>(new AlterConfigsRequest
        {
            Resources = [new() { ResourceType = 4, ResourceName = "1", Configs = [new() { Name = "broker.id", Value = "5" }] }],
        }, 0);
        Assert.Equal((short)ErrorCode.InvalidRequest, brokerStatic!.Responses[0].ErrorCode);
        Assert.Equal("Cannot update these configs dynamically: Set(broker.id)", brokerStatic.Responses[0].ErrorMessage);
    }

    [Fact]
    public async Task IncrementalAlterConfigsSetDeleteAppendSubtract()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t", 1, ("retention.ms", "1000"));
        async Task<IncrementalAlterConfigsResponse.AlterConfigsResourceResponse> Alter(params (string Name, sbyte Op, string? Value)[] ops)
        {
            var r = await f.Send<IncrementalAlterConfigsResponse>(new IncrementalAlterConfigsRequest
            {
                Resources = [new() { ResourceType = 2, ResourceName = "t", Configs = ops.Select(o => new IncrementalAlterConfigsRequest.AlterableConfig { Name = o.Name, ConfigOperation = o.Op, Value = o.Value }).ToList() }],
            }, 1);
            return r!.Responses[0];
        }
        Assert.Equal(0, (await Alter(("segment.ms", 0, "60000"), ("retention.ms", 1, null))).ErrorCode);
        var topic = f.Broker.Replicas.GetTopic("t")!;
        Assert.Equal(new Dictionary<string, string> { ["segment.ms"] = "60000" }, topic.Configs);
        Assert.Equal(604_800_000L, topic.LogConfig.RetentionMs);

        Assert.Equal(0, (await Alter(("cleanup.policy", 2, "compact"))).ErrorCode);
        Assert.Equal(["delete", "compact"], f.Broker.Replicas.GetTopic("t")!.LogConfig.CleanupPolicy);
        Assert.Equal(0, (await Alter(("cleanup.policy", 3, "delete"))).ErrorCode);
        Assert.Equal(["compact"], f.Broker.Replicas.GetTopic("t")!.LogConfig.CleanupPolicy);

        var appendToScalar = await Alter(("retention.ms", 2, "5"));
        Assert.Equal((short)ErrorCode.InvalidConfig, appendToScalar.ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidRequest, (await Alter(("segment.ms", 0, "1"), ("segment.ms", 1, null))).ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidConfig, (await Alter(("min.insync.replicas", 0, "0"))).ErrorCode);
    }

    [Fact]
    public async Task DynamicBrokerDefaultChangesTopicDefaults()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t");
        var r = await f.Send<IncrementalAlterConfigsResponse>(new IncrementalAlterConfigsRequest
        {
            Resources = [new() { ResourceType = 4, ResourceName = "", Configs = [new() { Name = "log.retention.ms", ConfigOperation = 0, Value = "12345" }] }],
        }, 0);
        Assert.Equal(0, r!.Responses[0].ErrorCode);
        Assert.Equal(12345L, f.Broker.Replicas.GetTopic("t")!.LogConfig.RetentionMs);
        var d = await Describe(f, 2, "t", keys: "retention.ms");
        Assert.Equal("12345", d.Configs[0].Value);
        Assert.Equal((sbyte)3, d.Configs[0].ConfigSource); // DYNAMIC_DEFAULT_BROKER_CONFIG
    }
}
