using System.Diagnostics;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Tests.EndToEnd;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Tests.Groups;

/// <summary>
/// Committed offsets of a deleted topic are removed (upstream's GroupCoordinator.onPartitionsDeleted
/// writes offset tombstones to __consumer_offsets), so a topic created again under the same name
/// starts with no committed offset, also after a broker restart replays the log.
/// </summary>
public class DeletedTopicOffsetsTests
{
    internal static async Task CreateTopicAsync(KafkaWireClient c, string name, int partitions)
    {
        var r = await c.SendAsync<CreateTopicsResponse>(new CreateTopicsRequest
        {
            TimeoutMs = 30_000, Topics = [new() { Name = name, NumPartitions = partitions, ReplicationFactor = 1 }],
        }, 7);
        Assert.True(r!.Topics[0].ErrorCode == 0, $"CreateTopics {name}: {r.Topics[0].ErrorCode} {r.Topics[0].ErrorMessage}");
    }

    internal static async Task CommitAsync(KafkaWireClient c, string group, string topic, params (int Partition, long Offset)[] offsets)
    {
        var r = await c.SendAsync<OffsetCommitResponse>(new OffsetCommitRequest
        {
            GroupId = group, GenerationIdOrMemberEpoch = -1, MemberId = "",
            Topics = [new() { Name = topic, Partitions = offsets.Select(o => new OffsetCommitRequest.OffsetCommitRequestPartition { PartitionIndex = o.Partition, CommittedOffset = o.Offset }).ToList() }],
        }, 7);
        Assert.All(r!.Topics[0].Partitions, p => Assert.Equal(0, p.ErrorCode));
    }

    /// <summary>The committed offsets of the partitions (-1 for none), retrying while the coordinator
    /// loads after a restart.</summary>
    internal static async Task<long[]> FetchAsync(KafkaWireClient c, string group, string topic, params int[] partitions)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            var r = await c.SendAsync<OffsetFetchResponse>(new OffsetFetchRequest
            {
                GroupId = group, Topics = [new() { Name = topic, PartitionIndexes = partitions.ToList() }],
            }, 5);
            if (r!.ErrorCode == (short)ErrorCode.CoordinatorLoadInProgress && sw.Elapsed < TimeSpan.FromSeconds(20)) { await Task.Delay(50); continue; }
            Assert.Equal(0, r.ErrorCode);
            return r.Topics[0].Partitions.Select(p => p.CommittedOffset).ToArray();
        }
    }

    private static async Task<DeleteTopicsResponse.DeletableTopicResult> DeleteAsync(KafkaWireClient c, string? name, Guid id, short version)
    {
        var r = await c.SendAsync<DeleteTopicsResponse>(version >= 6
            ? new DeleteTopicsRequest { TimeoutMs = 30_000, Topics = [new() { Name = name, TopicId = id }] }
            : new DeleteTopicsRequest { TimeoutMs = 30_000, TopicNames = [name!] }, version);
        return r!.Responses.Single();
    }

    [Fact]
    public async Task OffsetsOfADeletedTopicAreGoneAfterRecreateAndAfterRestart()
    {
        var dir = Path.Combine(Path.GetTempPath(), "samsa-deleted-offsets-" + Guid.NewGuid().ToString("N"));
        var live = await LiveBroker.StartAsync(dir);
        await using (var c = await KafkaWireClient.ConnectAsync("127.0.0.1", live.Broker.BoundEndPoint.Port))
        {
            Assert.Equal(0, (await c.SendAsync<FindCoordinatorResponse>(new FindCoordinatorRequest { Key = "g" }, 2))!.ErrorCode);
            await CreateTopicAsync(c, "gone", 2);
            await CreateTopicAsync(c, "kept", 1);
            await CommitAsync(c, "g", "gone", (0, 10), (1, 11));
            await CommitAsync(c, "g", "kept", (0, 5));
            await CommitAsync(c, "only-gone", "gone", (0, 3));

            // DeleteTopics by name (v5), then the same name again.
            Assert.Equal(0, (await DeleteAsync(c, "gone", Guid.Empty, 5)).ErrorCode);
            await CreateTopicAsync(c, "gone", 2);
            Assert.Equal(new long[] { -1L, -1L }, await FetchAsync(c, "g", "gone", 0, 1));
            Assert.Equal(new long[] { 5L }, await FetchAsync(c, "g", "kept", 0));
            // A group whose only offsets were on the topic is gone with them (Empty without offsets
            // becomes Dead, upstream's cleanupGroupMetadata).
            var described = await c.SendAsync<DescribeGroupsResponse>(new DescribeGroupsRequest { Groups = ["only-gone", "g"] }, 3);
            Assert.Equal(["Dead", "Empty"], described!.Groups.Select(g => g.GroupState).ToArray());
            var listed = await c.SendAsync<ListGroupsResponse>(new ListGroupsRequest(), 3);
            Assert.DoesNotContain(listed!.Groups, g => g.GroupId == "only-gone");

            // Offsets committed on the new incarnation, then DeleteTopics by topic id (v6).
            await CommitAsync(c, "g", "gone", (1, 42));
            Assert.Equal(new long[] { -1L, 42L }, await FetchAsync(c, "g", "gone", 0, 1));
            var md = await c.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [new() { Name = "gone" }] }, 12);
            var byId = await DeleteAsync(c, null, md!.Topics[0].TopicId, 6);
            Assert.Equal((0, "gone"), (byId.ErrorCode, byId.Name));
            await CreateTopicAsync(c, "gone", 2);
            Assert.Equal(new long[] { -1L, -1L }, await FetchAsync(c, "g", "gone", 0, 1));
        }
        await live.Broker.DisposeAsync();

        // The tombstones are in __consumer_offsets: replaying it does not bring the offsets back.
        await using var again = await LiveBroker.StartAsync(dir);
        await using var d = await KafkaWireClient.ConnectAsync("127.0.0.1", again.Broker.BoundEndPoint.Port);
        Assert.Equal(new long[] { -1L, -1L }, await FetchAsync(d, "g", "gone", 0, 1));
        Assert.Equal(new long[] { 5L }, await FetchAsync(d, "g", "kept", 0));
        Assert.Equal(new long[] { -1L }, await FetchAsync(d, "only-gone", "gone", 0));
        var all = await d.SendAsync<OffsetFetchResponse>(new OffsetFetchRequest { GroupId = "g", Topics = null }, 7);
        Assert.Equal(["kept"], all!.Topics.Select(t => t.Name).ToArray());
    }
}
