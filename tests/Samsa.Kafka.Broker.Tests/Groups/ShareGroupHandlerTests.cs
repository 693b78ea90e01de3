using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Broker.Tests.Handlers;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Records;

namespace Samsa.Kafka.Broker.Tests.Groups;

/// <summary>Share groups through the handlers (wire round trip of each version): membership,
/// share sessions, fetch / acknowledge, lock expiry and a broker restart.</summary>
public class ShareGroupHandlerTests
{
    private static async Task<ShareGroupHeartbeatResponse> Heartbeat(HandlerFixture f, string group, string member, int epoch, params string[] topics) =>
        (await f.Send<ShareGroupHeartbeatResponse>(new ShareGroupHeartbeatRequest
        {
            GroupId = group, MemberId = member, MemberEpoch = epoch, SubscribedTopicNames = topics.Length > 0 ? [.. topics] : null,
        }, 1))!;

    private static async Task<ShareFetchResponse> Fetch(HandlerFixture f, string group, string member, int epoch, Guid topicId,
        int maxRecords = 100, short version = 2, int maxWaitMs = 0, params (long First, long Last, sbyte Type)[] acks) =>
        (await f.Send<ShareFetchResponse>(new ShareFetchRequest
        {
            GroupId = group, MemberId = member, ShareSessionEpoch = epoch, MaxWaitMs = maxWaitMs, MinBytes = 1, MaxBytes = 1 << 20,
            MaxRecords = maxRecords, BatchSize = 100,
            Topics = [new ShareFetchRequest.FetchTopic
            {
                TopicId = topicId,
                Partitions = [new ShareFetchRequest.FetchPartition
                {
                    PartitionIndex = 0,
                    AcknowledgementBatches = acks.Select(a => new ShareFetchRequest.AcknowledgementBatch { FirstOffset = a.First, LastOffset = a.Last, AcknowledgeTypes = [a.Type] }).ToList(),
                }],
            }],
        }, version))!;

    private static async Task<ShareAcknowledgeResponse> Ack(HandlerFixture f, string group, string member, int epoch, Guid topicId, params (long First, long Last, sbyte Type)[] acks) =>
        (await f.Send<ShareAcknowledgeResponse>(new ShareAcknowledgeRequest
        {
            GroupId = group, MemberId = member, ShareSessionEpoch = epoch,
            Topics = [new ShareAcknowledgeRequest.AcknowledgeTopic
            {
                TopicId = topicId,
                Partitions = [new ShareAcknowledgeRequest.AcknowledgePartition
                {
                    PartitionIndex = 0,
                    AcknowledgementBatches = acks.Select(a => new ShareAcknowledgeRequest.AcknowledgementBatch { FirstOffset = a.First, LastOffset = a.Last, AcknowledgeTypes = [a.Type] }).ToList(),
                }],
            }],
        }, 2))!;

    private static List<long> Offsets(ShareFetchResponse r) =>
        r.Responses.SelectMany(t => t.Partitions).SelectMany(p => p.AcquiredRecords)
            .SelectMany(a => Enumerable.Range(0, (int)(a.LastOffset - a.FirstOffset + 1)).Select(i => a.FirstOffset + i)).ToList();

    private static List<string> Values(ShareFetchResponse r)
    {
        var acquired = Offsets(r).ToHashSet();
        var list = new List<string>();
        foreach (var p in r.Responses.SelectMany(t => t.Partitions))
        {
            if (p.Records is not { Length: > 0 } records) continue;
            foreach (var rec in RecordBatch.ReadRecords(records.Span))
                if (acquired.Contains(rec.Offset)) list.Add(System.Text.Encoding.UTF8.GetString(rec.Value!));
        }
        return list;
    }

    [Fact]
    public async Task AShareGroupSharesTheGroupIdNamespaceAndTheAdminViews()
    {
        await using var f = new HandlerFixture(("offsets.topic.replication.factor", "1"), ("offsets.topic.num.partitions", "3"));
        await f.CreateTopic("t", 1);
        Assert.Equal(0, (await Heartbeat(f, "sg", "member-a", 0, "t")).ErrorCode);

        // Another type's members are refused the id, and a share member the id of a consumer group.
        var join = await f.Send<JoinGroupResponse>(new JoinGroupRequest
        {
            GroupId = "sg", SessionTimeoutMs = 10_000, RebalanceTimeoutMs = 10_000, MemberId = "", ProtocolType = "consumer",
            Protocols = [new JoinGroupRequest.JoinGroupRequestProtocol { Name = "range", Metadata = [0, 0, 0, 0, 0, 0] }],
        }, 9);
        Assert.Equal((short)ErrorCode.InconsistentGroupProtocol, join!.ErrorCode);
        var consumer = await f.Send<ConsumerGroupHeartbeatResponse>(new ConsumerGroupHeartbeatRequest
        {
            GroupId = "sg", MemberId = Guid.NewGuid().ToString(), MemberEpoch = 0, RebalanceTimeoutMs = 10_000, SubscribedTopicNames = ["t"], TopicPartitions = [],
        }, 1);
        Assert.Equal((short)ErrorCode.GroupIdNotFound, consumer!.ErrorCode);
        var cg = await f.Send<ConsumerGroupHeartbeatResponse>(new ConsumerGroupHeartbeatRequest
        {
            GroupId = "cg", MemberId = Guid.NewGuid().ToString(), MemberEpoch = 0, RebalanceTimeoutMs = 10_000, SubscribedTopicNames = ["t"], TopicPartitions = [],
        }, 1);
        Assert.Equal(0, cg!.ErrorCode);
        var share = await Heartbeat(f, "cg", "member-b", 0, "t");
        Assert.Equal((short)ErrorCode.GroupIdNotFound, share.ErrorCode);
        Assert.Equal("Group cg is not a share group.", share.ErrorMessage);

        // ListGroups v5: type "share", and the types filter picks it out.
        var all = await f.Send<ListGroupsResponse>(new ListGroupsRequest(), 5);
        var listed = Assert.Single(all!.Groups, g => g.GroupId == "sg");
        Assert.Equal(("share", "share", "Stable"), (listed.GroupType, listed.ProtocolType, listed.GroupState));
        var onlyShare = await f.Send<ListGroupsResponse>(new ListGroupsRequest { TypesFilter = ["share"] }, 5);
        Assert.Equal(["sg"], onlyShare!.Groups.Select(g => g.GroupId));
        var onlyConsumer = await f.Send<ListGroupsResponse>(new ListGroupsRequest { TypesFilter = ["consumer"] }, 5);
        Assert.DoesNotContain(onlyConsumer!.Groups, g => g.GroupId == "sg");
        var emptyState = await f.Send<ListGroupsResponse>(new ListGroupsRequest { StatesFilter = ["Empty"] }, 5);
        Assert.DoesNotContain(emptyState!.Groups, g => g.GroupId == "sg");

        // DescribeGroups v6 says it is not a classic group.
        var described = await f.Send<DescribeGroupsResponse>(new DescribeGroupsRequest { Groups = ["sg"] }, 6);
        Assert.Equal((short)ErrorCode.GroupIdNotFound, Assert.Single(described!.Groups).ErrorCode);

        // DeleteGroups: refused while it has a member, deleted once it has none.
        var busy = await f.Send<DeleteGroupsResponse>(new DeleteGroupsRequest { GroupsNames = ["sg"] }, 2);
        Assert.Equal((short)ErrorCode.NonEmptyGroup, Assert.Single(busy!.Results).ErrorCode);
        Assert.Equal(0, (await Heartbeat(f, "sg", "member-a", -1)).ErrorCode);
        var deleted = await f.Send<DeleteGroupsResponse>(new DeleteGroupsRequest { GroupsNames = ["sg"] }, 2);
        Assert.Equal(0, Assert.Single(deleted!.Results).ErrorCode);
        var after = await f.Send<ListGroupsResponse>(new ListGroupsRequest(), 5);
        Assert.DoesNotContain(after!.Groups, g => g.GroupId == "sg");
    }

    [Fact]
    public async Task MembersJoinGetThePartitionAndLeave()
    {
        await using var f = new HandlerFixture(("offsets.topic.replication.factor", "1"), ("offsets.topic.num.partitions", "3"));
        await f.CreateTopic("t", 1);
        var topicId = f.Broker.Replicas.GetTopic("t")!.Id;
        var a = await Heartbeat(f, "g", "member-a", 0, "t");
        Assert.Equal(0, a.ErrorCode);
        Assert.Equal("member-a", a.MemberId);
        Assert.Equal(5000, a.HeartbeatIntervalMs);
        Assert.True(a.MemberEpoch > 0);
        Assert.Equal([0], Assert.Single(a.Assignment!.TopicPartitions, tp => tp.TopicId == topicId).Partitions);

        // A second member shares the one partition; the group epoch moves, so a's next heartbeat
        // gets the (same) assignment with the new epoch.
        var b = await Heartbeat(f, "g", "member-b", 0, "t");
        Assert.Equal([0], b.Assignment!.TopicPartitions[0].Partitions);
        Assert.True(b.MemberEpoch > a.MemberEpoch);
        var a2 = await Heartbeat(f, "g", "member-a", a.MemberEpoch);
        Assert.Equal(b.MemberEpoch, a2.MemberEpoch);
        var a3 = await Heartbeat(f, "g", "member-a", a2.MemberEpoch);
        Assert.Null(a3.Assignment);   // unchanged

        Assert.Equal((short)ErrorCode.FencedMemberEpoch, (await Heartbeat(f, "g", "member-a", a2.MemberEpoch + 5)).ErrorCode);
        Assert.Equal((short)ErrorCode.UnknownMemberId, (await Heartbeat(f, "g", "nobody", 3)).ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidRequest, (await Heartbeat(f, "g", "member-c", 0)).ErrorCode);

        var describe = (await f.Send<ShareGroupDescribeResponse>(new ShareGroupDescribeRequest { GroupIds = ["g", "unknown"] }, 1))!;
        var g = describe.Groups[0];
        Assert.Equal((0, "Stable", "simple"), (g.ErrorCode, g.GroupState, g.AssignorName));
        Assert.Equal(["member-a", "member-b"], g.Members.Select(m => m.MemberId));
        Assert.All(g.Members, m => Assert.Equal("t", m.Assignment.TopicPartitions[0].TopicName));
        Assert.Equal((short)ErrorCode.GroupIdNotFound, describe.Groups[1].ErrorCode);
        Assert.Equal([("g", "Stable")], f.Broker.Shares.ListShareGroups().ToList());
        Assert.True(f.Broker.Shares.IsShareGroup("g"));

        Assert.Equal(ErrorCode.NonEmptyGroup, await f.Broker.Shares.DeleteGroupAsync("g"));
        var leave = await Heartbeat(f, "g", "member-b", -1);
        Assert.Equal((0, -1), (leave.ErrorCode, leave.MemberEpoch));
        await Heartbeat(f, "g", "member-a", -1);
        Assert.Equal([("g", "Empty")], f.Broker.Shares.ListShareGroups().ToList());
        Assert.Equal(ErrorCode.None, await f.Broker.Shares.DeleteGroupAsync("g"));
        Assert.False(f.Broker.Shares.IsShareGroup("g"));
        Assert.Equal(ErrorCode.GroupIdNotFound, await f.Broker.Shares.DeleteGroupAsync("g"));
    }

    [Fact]
    public async Task TwoMembersShareAPartitionAndEachRecordGoesToOne()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t", 1);
        var topicId = f.Broker.Replicas.GetTopic("t")!.Id;
        // share.auto.offset.reset=latest: the share-partition starts at the end when first fetched.
        await f.Produce("t", 0, HandlerFixture.Batch("old"));
        var first = await Fetch(f, "g", "a", 0, topicId);
        Assert.Equal(0, first.ErrorCode);
        Assert.Empty(Offsets(first));
        Assert.Equal(30000, first.AcquisitionLockTimeoutMs);
        Assert.Equal(0, (await Fetch(f, "g", "b", 0, topicId)).ErrorCode);

        for (int i = 0; i < 4; i++) await f.Produce("t", 0, HandlerFixture.Batch($"v{2 * i}", $"v{2 * i + 1}"));
        var ra = await Fetch(f, "g", "a", 1, topicId, maxRecords: 3);
        var rb = await Fetch(f, "g", "b", 1, topicId, maxRecords: 100);
        // Batch-optimized: a takes whole batches (4 records for max 3), b the rest.
        Assert.Equal(["v0", "v1", "v2", "v3"], Values(ra));
        Assert.Equal(["v4", "v5", "v6", "v7"], Values(rb));
        Assert.All(ra.Responses[0].Partitions[0].AcquiredRecords, x => Assert.Equal(1, x.DeliveryCount));
        Assert.Equal(1, ra.Responses[0].Partitions[0].CurrentLeader.LeaderId);

        // Acknowledge through ShareAcknowledge and piggy-backed on ShareFetch; then nothing is left.
        var ack = await Ack(f, "g", "a", 2, topicId, (1, 4, 1));
        Assert.Equal(0, ack.Responses[0].Partitions[0].ErrorCode);
        Assert.Equal(30000, ack.AcquisitionLockTimeoutMs);
        var piggy = await Fetch(f, "g", "b", 2, topicId, acks: (5, 8, 1));
        Assert.Equal(0, piggy.Responses[0].Partitions[0].AcknowledgeErrorCode);
        Assert.Empty(Offsets(piggy));
        var sp = f.Broker.Shares.Find("g", topicId, 0)!;
        Assert.Equal(9, sp.StartOffset);

        // Acknowledging what is already acknowledged is INVALID_RECORD_STATE.
        var again = await Ack(f, "g", "a", 3, topicId, (1, 1, 1));
        Assert.Equal((short)ErrorCode.InvalidRecordState, again.Responses[0].Partitions[0].ErrorCode);
    }

    [Fact]
    public async Task ShareSessionEpochsAreChecked()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t", 1);
        var topicId = f.Broker.Replicas.GetTopic("t")!.Id;
        Assert.Equal((short)ErrorCode.ShareSessionNotFound, (await Fetch(f, "g", "a", 1, topicId)).ErrorCode);
        Assert.Equal(0, (await Fetch(f, "g", "a", 0, topicId)).ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidShareSessionEpoch, (await Fetch(f, "g", "a", 5, topicId)).ErrorCode);
        Assert.Equal(0, (await Fetch(f, "g", "a", 1, topicId)).ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidShareSessionEpoch, (await Ack(f, "g", "a", 0, topicId, (0, 0, 1))).ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidRequest, (await Fetch(f, "g", "a", 0, topicId, acks: (0, 0, 1))).ErrorCode);
        Assert.Equal(0, (await Fetch(f, "g", "a", 2, topicId)).ErrorCode);
        // -1 closes the session; the next non-zero epoch finds none.
        Assert.Equal(0, (await Fetch(f, "g", "a", -1, topicId)).ErrorCode);
        Assert.Equal((short)ErrorCode.ShareSessionNotFound, (await Fetch(f, "g", "a", 3, topicId)).ErrorCode);
        var unknown = await Fetch(f, "g", "b", 0, Guid.NewGuid());
        Assert.Equal((short)ErrorCode.UnknownTopicId, unknown.Responses[0].Partitions[0].ErrorCode);
    }

    [Fact]
    public async Task AnExpiredLockRedeliversWithAHigherDeliveryCountUntilTheLimit()
    {
        await using var f = new HandlerFixture(("group.share.record.lock.duration.ms", "300"), ("group.share.delivery.count.limit", "2"),
            ("share.auto.offset.reset", "earliest"));
        await f.CreateTopic("t", 1);
        var topicId = f.Broker.Replicas.GetTopic("t")!.Id;
        await f.Produce("t", 0, HandlerFixture.Batch("x"));
        var a = await Fetch(f, "g", "a", 0, topicId);
        Assert.Equal(300, a.AcquisitionLockTimeoutMs);
        Assert.Equal([0L], Offsets(a));
        Assert.Empty(Offsets(await Fetch(f, "g", "b", 0, topicId)));

        // b waits (max_wait) and gets the record once a's lock expires, delivery count 2.
        var b = await Fetch(f, "g", "b", 1, topicId, maxWaitMs: 3000);
        Assert.Equal([0L], Offsets(b));
        Assert.Equal(2, b.Responses[0].Partitions[0].AcquiredRecords[0].DeliveryCount);
        Assert.Equal(["x"], Values(b));

        // a's late acknowledgement is refused; after b's lock expires too the record is archived.
        Assert.Equal((short)ErrorCode.InvalidRecordState, (await Ack(f, "g", "a", 1, topicId, (0, 0, 1))).Responses[0].Partitions[0].ErrorCode);
        await Task.Delay(700);
        Assert.Empty(Offsets(await Fetch(f, "g", "a", 2, topicId, maxWaitMs: 200)));
        Assert.Equal(1, f.Broker.Shares.Find("g", topicId, 0)!.StartOffset);
    }

    [Fact]
    public async Task RenewKeepsTheRecordLocked()
    {
        await using var f = new HandlerFixture(("group.share.record.lock.duration.ms", "1500"), ("share.auto.offset.reset", "earliest"));
        await f.CreateTopic("t", 1);
        var topicId = f.Broker.Replicas.GetTopic("t")!.Id;
        await f.Produce("t", 0, HandlerFixture.Batch("x"));
        Assert.Equal([0L], Offsets(await Fetch(f, "g", "a", 0, topicId)));
        Assert.Empty(Offsets(await Fetch(f, "g", "b", 0, topicId)));
        await Task.Delay(1000);
        var renew = await Ack(f, "g", "a", 1, topicId, (0, 0, 4));
        Assert.Equal(0, renew.Responses[0].Partitions[0].ErrorCode);
        await Task.Delay(800);   // past the first lock, inside the renewed one
        Assert.Empty(Offsets(await Fetch(f, "g", "b", 1, topicId)));
        var later = await Fetch(f, "g", "b", 2, topicId, maxWaitMs: 4000);
        Assert.Equal([0L], Offsets(later));
        Assert.Equal(2, later.Responses[0].Partitions[0].AcquiredRecords[0].DeliveryCount);
        // Renew is a v2 acknowledgement: ShareFetch v1 refuses it.
        var v1 = await Fetch(f, "g", "b", 3, topicId, version: 1, acks: (0, 0, 4));
        Assert.Equal((short)ErrorCode.InvalidRequest, v1.ErrorCode);
    }

    [Fact]
    public async Task ReleaseAndRejectThroughShareAcknowledge()
    {
        await using var f = new HandlerFixture(("share.auto.offset.reset", "earliest"));
        await f.CreateTopic("t", 1);
        var topicId = f.Broker.Replicas.GetTopic("t")!.Id;
        await f.Produce("t", 0, HandlerFixture.Batch("r0", "r1", "r2"));
        Assert.Equal([0L, 1, 2], Offsets(await Fetch(f, "g", "a", 0, topicId)));
        var ack = await Ack(f, "g", "a", 1, topicId, (0, 0, 2), (1, 1, 3), (2, 2, 1));
        Assert.Equal(0, ack.Responses[0].Partitions[0].ErrorCode);
        var again = await Fetch(f, "g", "a", 2, topicId);
        Assert.Equal([0L], Offsets(again));
        Assert.Equal(["r0"], Values(again));
        Assert.Equal(2, again.Responses[0].Partitions[0].AcquiredRecords[0].DeliveryCount);
    }

    [Fact]
    public async Task DescribeShareGroupOffsetsShowsStartOffsetAndLag()
    {
        await using var f = new HandlerFixture(("offsets.topic.replication.factor", "1"), ("offsets.topic.num.partitions", "3"),
            ("share.auto.offset.reset", "earliest"));
        await f.CreateTopic("t", 2);
        var topicId = f.Broker.Replicas.GetTopic("t")!.Id;
        Assert.Equal(0, (await Heartbeat(f, "g", "m", 0, "t")).ErrorCode);
        await f.Produce("t", 0, HandlerFixture.Batch("a", "b", "c", "d", "e"));
        Assert.Equal([0L, 1, 2, 3, 4], Offsets(await Fetch(f, "g", "m", 0, topicId)));
        await Ack(f, "g", "m", 1, topicId, (0, 1, 1), (3, 3, 1));

        async Task<DescribeShareGroupOffsetsResponse.DescribeShareGroupOffsetsResponseGroup> Describe(short version, List<DescribeShareGroupOffsetsRequest.DescribeShareGroupOffsetsRequestTopic>? topics, string group = "g") =>
            (await f.Send<DescribeShareGroupOffsetsResponse>(new DescribeShareGroupOffsetsRequest
            {
                Groups = [new DescribeShareGroupOffsetsRequest.DescribeShareGroupOffsetsRequestGroup { GroupId = group, Topics = topics }],
            }, version))!.Groups[0];

        var all = await Describe(1, null);
        Assert.Equal(0, all.ErrorCode);
        var parts = Assert.Single(all.Topics).Partitions.OrderBy(p => p.PartitionIndex).ToList();
        Assert.Equal(topicId, all.Topics[0].TopicId);
        // Partition 0: start 2 (0, 1 accepted), 3 accepted too: lag = 5 - 2 - 1 = 2. Partition 1 never fetched.
        Assert.Equal((2L, 2L, (short)0), (parts[0].StartOffset, parts[0].Lag, parts[0].ErrorCode));
        Assert.Equal((-1L, -1L), (parts[1].StartOffset, parts[1].Lag));
        var v0 = await Describe(0, [new() { TopicName = "t", Partitions = [0] }, new() { TopicName = "nope", Partitions = [0] }]);
        Assert.Equal(2, v0.Topics[0].Partitions[0].StartOffset);
        Assert.Equal(-1, v0.Topics[0].Partitions[0].Lag);   // not in v0: the decoder's default
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, v0.Topics[1].Partitions[0].ErrorCode);
        Assert.Equal((short)ErrorCode.GroupIdNotFound, (await Describe(1, null, "unknown")).ErrorCode);
    }

    [Fact]
    public async Task StateSurvivesABrokerRestart()
    {
        var dir = Path.Combine(Path.GetTempPath(), "samsa-share-restart-" + Guid.NewGuid().ToString("N"));
        var props = new Dictionary<string, string> { ["broker.id"] = "1", ["log.dirs"] = dir, ["share.auto.offset.reset"] = "earliest" };
        try
        {
            Guid topicId;
            {
                await using var broker = new KafkaBroker(new BrokerConfig(props));
                var f = new HandlerFixture(broker);
                await f.CreateTopic("t", 1);
                topicId = broker.Replicas.GetTopic("t")!.Id;
                await f.Produce("t", 0, HandlerFixture.Batch("a", "b", "c", "d"));
                Assert.Equal([0L, 1, 2, 3], Offsets(await Fetch(f, "g", "m", 0, topicId)));
                await Ack(f, "g", "m", 1, topicId, (0, 1, 1), (3, 3, 3));
                // offset 2 stays acquired (delivery 1) when the broker stops: as upstream, where no
                // acquisition is written, that delivery is not counted after the restart.
            }
            {
                await using var broker = new KafkaBroker(new BrokerConfig(props));
                var f = new HandlerFixture(broker);
                var r = await Fetch(f, "g", "n", 0, topicId);
                Assert.Equal([2L], Offsets(r));
                Assert.Equal(1, r.Responses[0].Partitions[0].AcquiredRecords[0].DeliveryCount);
                Assert.Equal(["c"], Values(r));
            }
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }
}
