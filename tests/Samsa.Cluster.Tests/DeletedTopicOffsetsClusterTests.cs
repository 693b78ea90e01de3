using System.Diagnostics;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Protocol.Messages;
using Xunit;

namespace Samsa.Cluster.Tests;

/// <summary>
/// ZooKeeper mode: DeleteTopics only writes /admin/delete_topics/&lt;topic&gt;; the controller deletes
/// the topic and the deletion reaches the broker through its watch. The group coordinator must drop
/// the topic's committed offsets then too (upstream: StopReplica with delete → onPartitionsDeleted).
/// </summary>
public sealed class DeletedTopicOffsetsClusterTests(KeeperServer server) : IClassFixture<KeeperServer>
{
    private const short CoordinatorLoadInProgress = 14, CoordinatorNotAvailable = 15, NotCoordinator = 16;

    private static bool Retriable(short error) => error is CoordinatorLoadInProgress or CoordinatorNotAvailable or NotCoordinator;

    private static async Task<T> RetryAsync<T>(Func<Task<(short Error, T Value)>> call, string what)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            var (error, value) = await call();
            if (error == 0) return value;
            Assert.True(Retriable(error) && sw.Elapsed < TimeSpan.FromSeconds(30), $"{what}: error {error}");
            await Task.Delay(100);
        }
    }

    private static Task<bool> CommitAsync(KafkaWireClient c, string group, string topic, int partition, long offset) =>
        RetryAsync(async () =>
        {
            var r = await c.SendAsync<OffsetCommitResponse>(new OffsetCommitRequest
            {
                GroupId = group, GenerationIdOrMemberEpoch = -1, MemberId = "",
                Topics = [new() { Name = topic, Partitions = [new() { PartitionIndex = partition, CommittedOffset = offset }] }],
            }, 7);
            return (r!.Topics[0].Partitions[0].ErrorCode, true);
        }, $"commit {group} {topic}-{partition}");

    private static Task<long> FetchAsync(KafkaWireClient c, string group, string topic, int partition) =>
        RetryAsync(async () =>
        {
            var r = await c.SendAsync<OffsetFetchResponse>(new OffsetFetchRequest
            {
                GroupId = group, Topics = [new() { Name = topic, PartitionIndexes = [partition] }],
            }, 5);
            return (r!.ErrorCode, r.Topics.Count == 0 ? -1 : r.Topics[0].Partitions[0].CommittedOffset);
        }, $"fetch {group} {topic}-{partition}");

    private static async Task CreateTopicAsync(LocalCluster cluster, KafkaWireClient c, string name)
    {
        var r = await c.SendAsync<CreateTopicsResponse>(new CreateTopicsRequest
        {
            TimeoutMs = 30_000, Topics = [new() { Name = name, NumPartitions = 1, ReplicationFactor = 1 }],
        }, 7);
        Assert.Equal(0, r!.Topics[0].ErrorCode);
        await LocalCluster.WaitUntilAsync(() => Task.FromResult(cluster[1].Replicas.GetPartition(name, 0)?.IsLeader == true),
            TimeSpan.FromSeconds(20), $"{name} led by broker 1");
    }

    [Fact]
    public async Task DeletionThroughTheControllerRemovesCommittedOffsets()
    {
        await using var cluster = await LocalCluster.StartAsync(server.Address!, 1);
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(1));
        await RetryAsync(async () =>
        {
            var r = await c.SendAsync<FindCoordinatorResponse>(new FindCoordinatorRequest { Key = "g" }, 2);
            return (r!.ErrorCode, true);
        }, "find coordinator");
        await CreateTopicAsync(cluster, c, "doomed");
        await CreateTopicAsync(cluster, c, "kept");
        await CommitAsync(c, "g", "doomed", 0, 17);
        await CommitAsync(c, "g", "kept", 0, 5);
        Assert.Equal(17, await FetchAsync(c, "g", "doomed", 0));

        var deleted = await c.SendAsync<DeleteTopicsResponse>(new DeleteTopicsRequest { TimeoutMs = 30_000, TopicNames = ["doomed"] }, 4);
        Assert.Equal(0, deleted!.Responses[0].ErrorCode);
        // The controller's deletion arrives asynchronously; then the offset is gone.
        await LocalCluster.WaitUntilAsync(async () => await FetchAsync(c, "g", "doomed", 0) == -1,
            TimeSpan.FromSeconds(30), "the deleted topic's committed offset removed");
        await CreateTopicAsync(cluster, c, "doomed");
        Assert.Equal(-1, await FetchAsync(c, "g", "doomed", 0));
        Assert.Equal(5, await FetchAsync(c, "g", "kept", 0));
    }
}
