using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Tests.Handlers;

/// <summary>
/// OffsetCommit / OffsetFetch v10 (Kafka 4.2, KIP-848): topics named by id. Every commit version
/// must be readable by every fetch version, whichever way the topic was named on the wire.
/// </summary>
public class OffsetCommitV10Tests
{
    private static OffsetCommitRequest Commit(string group, string topic, Guid id, short version, long offset) => new()
    {
        GroupId = group, GenerationIdOrMemberEpoch = -1, MemberId = "",
        Topics = [new()
        {
            Name = version >= 10 ? "" : topic, TopicId = version >= 10 ? id : Guid.Empty,
            Partitions = [new() { PartitionIndex = 0, CommittedOffset = offset, CommittedLeaderEpoch = -1, CommittedMetadata = $"v{version}" },
                          new() { PartitionIndex = 1, CommittedOffset = offset + 1, CommittedLeaderEpoch = -1, CommittedMetadata = null }],
        }],
    };

    /// <summary>Fetches partition 0 and 1 at <paramref name="version"/>; returns (offset, metadata) per partition.</summary>
    private static async Task<List<(int Partition, long Offset, string? Metadata, short Error)>> Fetch(HandlerFixture f, string group, string topic, Guid id, short version)
    {
        if (version >= 8)
        {
            var r = await f.Send<OffsetFetchResponse>(new OffsetFetchRequest
            {
                Groups = [new() { GroupId = group, Topics = [new() { Name = version >= 10 ? "" : topic, TopicId = version >= 10 ? id : Guid.Empty, PartitionIndexes = [0, 1] }] }],
            }, version);
            var g = Assert.Single(r!.Groups);
            Assert.Equal(0, g.ErrorCode);
            var t = Assert.Single(g.Topics);
            if (version >= 10) Assert.Equal(id, t.TopicId); else Assert.Equal(topic, t.Name);
            return t.Partitions.Select(p => (p.PartitionIndex, p.CommittedOffset, p.Metadata, p.ErrorCode)).OrderBy(p => p.PartitionIndex).ToList();
        }
        var old = await f.Send<OffsetFetchResponse>(new OffsetFetchRequest
        {
            GroupId = group, Topics = [new() { Name = topic, PartitionIndexes = [0, 1] }],
        }, version);
        var ot = Assert.Single(old!.Topics);
        Assert.Equal(topic, ot.Name);
        return ot.Partitions.Select(p => (p.PartitionIndex, p.CommittedOffset, p.Metadata, p.ErrorCode)).OrderBy(p => p.PartitionIndex).ToList();
    }

    /// <summary>A one-broker coordinator whose __consumer_offsets exists (FindCoordinator creates it).</summary>
    private static async Task<HandlerFixture> Coordinator()
    {
        var f = new HandlerFixture(("offsets.topic.replication.factor", "1"));
        var found = await f.Send<FindCoordinatorResponse>(new FindCoordinatorRequest { KeyType = 0, CoordinatorKeys = ["g"] }, 4);
        Assert.Equal(0, found!.Coordinators.Single().ErrorCode);
        return f;
    }

    public static TheoryData<short> CommitVersions() => [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

    [Theory]
    [MemberData(nameof(CommitVersions))]
    public async Task CommitAtEveryVersionIsReadAtEveryFetchVersion(short commitVersion)
    {
        await using var f = await Coordinator();
        var topic = await f.CreateTopic("v10-topic", partitions: 2);
        var id = f.Broker.Replicas.GetTopic(topic)!.Id;
        Assert.NotEqual(Guid.Empty, id);
        string group = $"g-commit-v{commitVersion}";
        long offset = 100 + commitVersion;

        var r = await f.Send<OffsetCommitResponse>(Commit(group, topic, id, commitVersion, offset), commitVersion);
        var rt = Assert.Single(r!.Topics);
        if (commitVersion >= 10) Assert.Equal(id, rt.TopicId); else Assert.Equal(topic, rt.Name);
        Assert.All(rt.Partitions, p => Assert.Equal(0, p.ErrorCode));

        for (short fv = 1; fv <= 10; fv++)
        {
            var got = await Fetch(f, group, topic, id, fv);
            Assert.Equal([(0, offset, $"v{commitVersion}", (short)0), (1, offset + 1, (string?)"", (short)0)],
                got.Select(g => (g.Partition, g.Offset, g.Metadata, g.Error)).ToList());
        }
    }

    [Fact]
    public async Task UnknownTopicIdAnswersUnknownTopicIdAndCommitsNothingElseWrong()
    {
        await using var f = await Coordinator();
        var topic = await f.CreateTopic("v10-known", partitions: 2);
        var id = f.Broker.Replicas.GetTopic(topic)!.Id;
        var missing = Guid.NewGuid();
        var request = Commit("g-unknown", topic, id, 10, 5);
        request.Topics.Add(new() { TopicId = missing, Partitions = [new() { PartitionIndex = 0, CommittedOffset = 9 }] });

        var r = await f.Send<OffsetCommitResponse>(request, 10);
        Assert.Equal(2, r!.Topics.Count);
        Assert.All(r.Topics[0].Partitions, p => Assert.Equal(0, p.ErrorCode));
        Assert.Equal(missing, r.Topics[1].TopicId);
        Assert.Equal((short)ErrorCode.UnknownTopicId, Assert.Single(r.Topics[1].Partitions).ErrorCode);

        var fetch = await f.Send<OffsetFetchResponse>(new OffsetFetchRequest
        {
            Groups = [new() { GroupId = "g-unknown", Topics = [new() { TopicId = missing, PartitionIndexes = [0] }, new() { TopicId = id, PartitionIndexes = [0] }] }],
        }, 10);
        var g = Assert.Single(fetch!.Groups);
        Assert.Equal(0, g.ErrorCode);
        var unknown = Assert.Single(g.Topics, t => t.TopicId == missing);
        Assert.Equal((short)ErrorCode.UnknownTopicId, Assert.Single(unknown.Partitions).ErrorCode);
        var known = Assert.Single(g.Topics, t => t.TopicId == id);
        Assert.Equal(5, Assert.Single(known.Partitions).CommittedOffset);
    }

    [Fact]
    public async Task AllTopicsFetchAtV10NamesTopicsById()
    {
        await using var f = await Coordinator();
        var a = await f.CreateTopic("v10-a", partitions: 2);
        var b = await f.CreateTopic("v10-b", partitions: 2);
        var ida = f.Broker.Replicas.GetTopic(a)!.Id;
        var idb = f.Broker.Replicas.GetTopic(b)!.Id;
        await f.Send<OffsetCommitResponse>(Commit("g-all", a, ida, 10, 1), 10);
        await f.Send<OffsetCommitResponse>(Commit("g-all", b, Guid.Empty, 9, 2), 9);

        var r = await f.Send<OffsetFetchResponse>(new OffsetFetchRequest { Groups = [new() { GroupId = "g-all", Topics = null }] }, 10);
        var g = Assert.Single(r!.Groups);
        Assert.Equal(new[] { ida, idb }.Order(), g.Topics.Select(t => t.TopicId).Order());
        Assert.Equal(1, g.Topics.Single(t => t.TopicId == ida).Partitions.Single(p => p.PartitionIndex == 0).CommittedOffset);
        Assert.Equal(2, g.Topics.Single(t => t.TopicId == idb).Partitions.Single(p => p.PartitionIndex == 0).CommittedOffset);
    }
}
