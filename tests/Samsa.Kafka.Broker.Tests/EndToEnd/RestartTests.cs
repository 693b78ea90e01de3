using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Tests.EndToEnd;

public class RestartTests
{
    [Fact]
    public async Task TopicsIdsConfigsAndDynamicBrokerConfigsSurviveRestart()
    {
        var dir = Path.Combine(Path.GetTempPath(), "samsa-restart-" + Guid.NewGuid().ToString("N"));
        Guid id;
        string clusterId;
        var live = await LiveBroker.StartAsync(dir);
        await using (var c = await KafkaWireClient.ConnectAsync("127.0.0.1", live.Broker.BoundEndPoint.Port))
        {
            var created = await c.SendAsync<CreateTopicsResponse>(new CreateTopicsRequest
            {
                Topics = [new() { Name = "keep", NumPartitions = 2, ReplicationFactor = 1, Configs = [new() { Name = "cleanup.policy", Value = "compact" }] }],
            }, 7);
            id = created!.Topics[0].TopicId;
            var alter = await c.SendAsync<IncrementalAlterConfigsResponse>(new IncrementalAlterConfigsRequest
            {
                Resources = [new() { ResourceType = 4, ResourceName = "", Configs = [new() { Name = "log.retention.ms", ConfigOperation = 0, Value = "777000" }] }],
            }, 1);
            Assert.Equal(0, alter!.Responses[0].ErrorCode);
            clusterId = live.Broker.ClusterId;
        }
        await live.Broker.DisposeAsync();

        await using var again = await LiveBroker.StartAsync(dir);
        Assert.Equal(clusterId, again.Broker.ClusterId);
        await using var d = await KafkaWireClient.ConnectAsync("127.0.0.1", again.Broker.BoundEndPoint.Port);
        var md = await d.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [new() { Name = "keep" }] }, 12);
        Assert.Equal((0, id, 2), (md!.Topics[0].ErrorCode, md.Topics[0].TopicId, md.Topics[0].Partitions.Count));
        Assert.Equal(clusterId, md.ClusterId);
        var cfg = await d.SendAsync<DescribeConfigsResponse>(new DescribeConfigsRequest
        {
            Resources = [new() { ResourceType = 2, ResourceName = "keep", ConfigurationKeys = ["cleanup.policy", "retention.ms"] }],
        }, 4);
        var byName = cfg!.Results[0].Configs.ToDictionary(c => c.Name);
        Assert.Equal("compact", byName["cleanup.policy"].Value);
        Assert.Equal("777000", byName["retention.ms"].Value);
        Assert.Equal((sbyte)3, byName["retention.ms"].ConfigSource); // DYNAMIC_DEFAULT_BROKER_CONFIG
    }
}
