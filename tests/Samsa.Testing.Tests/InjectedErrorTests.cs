using Confluent.Kafka;
using Xunit;
using ApiKey = Samsa.Kafka.Protocol.Messages.ApiKey;
using KafkaError = Samsa.Kafka.Protocol.ErrorCode;

namespace Samsa.Testing.Tests;

/// <summary>An injected retriable error on each API a group consumer uses: librdkafka must read the
/// error where the broker puts it (partition, topic, group or request level), retry, and still
/// deliver every record. A response built wrongly shows as a closed connection, a stuck consumer
/// or a fault that is never used up.</summary>
public sealed class InjectedErrorTests
{
    [Theory]
    [InlineData(ApiKey.FindCoordinator, KafkaError.CoordinatorNotAvailable)]
    [InlineData(ApiKey.JoinGroup, KafkaError.CoordinatorLoadInProgress)]
    [InlineData(ApiKey.SyncGroup, KafkaError.RebalanceInProgress)]
    [InlineData(ApiKey.OffsetFetch, KafkaError.CoordinatorLoadInProgress)]
    [InlineData(ApiKey.ListOffsets, KafkaError.NotLeaderOrFollower)]
    [InlineData(ApiKey.Fetch, KafkaError.NotLeaderOrFollower)]
    [InlineData(ApiKey.Metadata, KafkaError.LeaderNotAvailable)]
    public async Task Group_consumer_retries_an_injected_error_and_reads_every_record(ApiKey api, KafkaError error)
    {
        await using var cluster = await SamsaCluster.StartAsync(brokers: 1, options: new() { InMemory = true });
        await cluster.CreateTopicAsync("t");
        using (var producer = Clients.Producer(cluster.BootstrapServers))
            await Clients.ProduceRangeAsync(producer, "t", 0, 3);
        var used = cluster.FailNextRequests(api, 1, error);
        using var consumer = Clients.Consumer(cluster.BootstrapServers, c => c.TopicMetadataRefreshIntervalMs = 1000);
        consumer.Subscribe("t");
        var values = new List<string>();
        var errors = new List<string>();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (values.Count < 3 && DateTime.UtcNow < deadline)
        {
            try
            {
                if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { IsPartitionEOF: false, Message: not null } r) values.Add(r.Message.Value);
            }
            catch (ConsumeException e) when (!e.Error.IsFatal)
            {
                // librdkafka reports some errors to the application and carries on, e.g. a Metadata
                // answer of LEADER_NOT_AVAILABLE as "Subscribed topic not available".
                errors.Add(e.Error.Reason);
            }
        }
        Assert.True(Clients.Range(0, 3).SequenceEqual(values), $"read [{string.Join(",", values)}]; consumer errors: {string.Join(" | ", errors)}");
        Assert.True(used.IsCompleted, $"the injected {error} on {api} was used");
        consumer.Close();
    }

    /// <summary>Metadata per requested topic: the producer asks again and delivers. The injected
    /// answer keeps the broker list; one without brokers (upstream's getErrorResponse shape) made
    /// librdkafka 2.16 decommission the only broker it had learned, and now and then time out.</summary>
    [Fact]
    public async Task Producer_retries_an_injected_metadata_error()
    {
        await using var cluster = await SamsaCluster.StartAsync(brokers: 1, options: new() { InMemory = true });
        await cluster.CreateTopicAsync("t");
        var used = cluster.FailNextRequests(ApiKey.Metadata, 2, KafkaError.LeaderNotAvailable);
        using var producer = Clients.Producer(cluster.BootstrapServers);
        var r = await producer.ProduceAsync("t", new Message<Null, string> { Value = "x" });
        Assert.Equal(PersistenceStatus.Persisted, r.Status);
        Assert.True(used.IsCompleted, "both injected LEADER_NOT_AVAILABLE answers were used");
    }

    [Fact]
    public async Task Heartbeat_and_offset_commit_errors_reach_the_consumer()
    {
        await using var cluster = await SamsaCluster.StartAsync(brokers: 1, options: new() { InMemory = true });
        await cluster.CreateTopicAsync("t");
        using (var producer = Clients.Producer(cluster.BootstrapServers))
            await Clients.ProduceRangeAsync(producer, "t", 0, 1);
        using var consumer = Clients.Consumer(cluster.BootstrapServers);
        consumer.Subscribe("t");
        ConsumeResult<Null, string>? r = null;
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (r is null && DateTime.UtcNow < deadline)
            if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { IsPartitionEOF: false, Message: not null } got) r = got;
        Assert.NotNull(r);
        // OffsetCommit: the per-partition error comes back from Commit.
        _ = cluster.FailNextRequests(ApiKey.OffsetCommit, 1, KafkaError.OffsetMetadataTooLarge);
        var e = Assert.ThrowsAny<KafkaException>(() => consumer.Commit(r));
        Assert.Equal(Confluent.Kafka.ErrorCode.OffsetMetadataTooLarge, e.Error.Code);
        consumer.Commit(r);   // the next one is handled
        // Heartbeat: the fault is used up by the consumer's next heartbeat (3 s interval by default).
        var heartbeat = cluster.FailNextRequests(ApiKey.Heartbeat, 1, KafkaError.RebalanceInProgress);
        deadline = DateTime.UtcNow.AddSeconds(15);
        while (!heartbeat.IsCompleted && DateTime.UtcNow < deadline) consumer.Consume(TimeSpan.FromMilliseconds(100));
        Assert.True(heartbeat.IsCompleted);
        consumer.Close();
    }
}
