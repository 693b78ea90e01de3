using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Tests.Handlers;

/// <summary>DescribeTopicPartitions (KIP-966) on one broker: paging, cursors and errors.</summary>
public class DescribeTopicPartitionsHandlerTests
{
    private static Task<DescribeTopicPartitionsResponse?> Describe(HandlerFixture f, string[] topics, int limit, (string Topic, int Partition)? cursor = null) =>
        f.Send<DescribeTopicPartitionsResponse>(new DescribeTopicPartitionsRequest
        {
            Topics = topics.Select(t => new DescribeTopicPartitionsRequest.TopicRequest { Name = t }).ToList(),
            ResponsePartitionLimit = limit,
            Cursor = cursor is { } c ? new DescribeTopicPartitionsRequest.CursorData { TopicName = c.Topic, PartitionIndex = c.Partition } : null,
        }, 0);

    [Fact]
    public async Task PagesFollowTheCursorAcrossTopicsAndPartitions()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("b", 5);
        await f.CreateTopic("a", 3);
        await f.CreateTopic("c", 2);
        string[] asked = ["c", "a", "b"];

        var first = (await Describe(f, asked, 4))!;
        Assert.Equal([("a", 0), ("a", 1), ("a", 2), ("b", 0)], Flatten(first));
        Assert.Equal(("b", 1), (first.NextTopicPartition!.TopicName, first.NextTopicPartition.PartitionIndex));
        var second = (await Describe(f, asked, 4, ("b", 1)))!;
        Assert.Equal([("b", 1), ("b", 2), ("b", 3), ("b", 4)], Flatten(second));
        // The limit ran out exactly at the end of b: the cursor names c from its first partition.
        Assert.Equal(("c", 0), (second.NextTopicPartition!.TopicName, second.NextTopicPartition.PartitionIndex));
        var third = (await Describe(f, asked, 4, ("c", 0)))!;
        Assert.Equal([("c", 0), ("c", 1)], Flatten(third));
        Assert.Null(third.NextTopicPartition);

        // Every topic at once, with ids, leaders, empty ELR sets and authorized operations.
        var all = (await Describe(f, [], 2000))!;
        Assert.Equal(["a", "b", "c"], all.Topics.Select(t => t.Name));
        foreach (var t in all.Topics)
        {
            Assert.Equal(f.Broker.Replicas.GetTopic(t.Name!)!.Id, t.TopicId);
            Assert.NotEqual(int.MinValue, t.TopicAuthorizedOperations);
            Assert.All(t.Partitions, p =>
            {
                Assert.Equal((0, 1, 0, 0), (p.ErrorCode, p.LeaderId, p.EligibleLeaderReplicas!.Count, p.LastKnownELR!.Count));
                Assert.Equal([1], p.IsrNodes);
                Assert.Equal([1], p.ReplicaNodes);
            });
        }
        // A limit of zero is raised to one partition.
        Assert.Single(Flatten((await Describe(f, [], 0))!));
    }

    [Fact]
    public async Task UnknownTopicsAndBadCursorsAreReported()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("a", 1);
        var r = (await Describe(f, ["a", "missing", "bad/name"], 10))!;
        Assert.Equal([("a", (short)0), ("bad/name", (short)ErrorCode.InvalidTopicException), ("missing", (short)ErrorCode.UnknownTopicOrPartition)],
            r.Topics.Select(t => (t.Name!, t.ErrorCode)));
        // The cursor's topic must be among the named ones, and its partition not negative.
        var notListed = (await Describe(f, ["a"], 10, ("b", 0)))!;
        Assert.Equal([("a", (short)ErrorCode.InvalidRequest)], notListed.Topics.Select(t => (t.Name!, t.ErrorCode)));
        var negative = (await Describe(f, ["a"], 10, ("a", -1)))!;
        Assert.Equal((short)ErrorCode.InvalidRequest, negative.Topics.Single().ErrorCode);
        // All topics: a cursor past every name answers nothing.
        Assert.Empty((await Describe(f, [], 10, ("zzz", 0)))!.Topics);
    }

    private static List<(string, int)> Flatten(DescribeTopicPartitionsResponse r) =>
        r.Topics.SelectMany(t => t.Partitions.Select(p => (t.Name!, p.PartitionIndex))).ToList();
}
