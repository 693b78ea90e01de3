using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Broker.Groups;
using Samsa.Kafka.Broker.Groups.Share;
using Samsa.Kafka.Broker.Tests.Handlers;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Tests.Groups;

/// <summary>Share-group membership written to __consumer_offsets as upstream's share group records
/// (key versions 10-15) and replayed when the broker starts again on its data directory.</summary>
public class ShareMembershipPersistenceTests
{
    private static async Task<ShareGroupHeartbeatResponse> Heartbeat(HandlerFixture f, string group, string member, int epoch, params string[] topics) =>
        (await f.Send<ShareGroupHeartbeatResponse>(new ShareGroupHeartbeatRequest
        {
            GroupId = group, MemberId = member, MemberEpoch = epoch, SubscribedTopicNames = topics.Length > 0 ? [.. topics] : null,
        }, 1))!;

    private static async Task<ShareGroupDescribeResponse.DescribedGroup> Describe(HandlerFixture f, string group) =>
        (await f.Send<ShareGroupDescribeResponse>(new ShareGroupDescribeRequest { GroupIds = [group] }, 1))!.Groups.Single();

    private static async Task<ShareFetchResponse> Fetch(HandlerFixture f, string group, string member, int epoch, Guid topicId) =>
        (await f.Send<ShareFetchResponse>(new ShareFetchRequest
        {
            GroupId = group, MemberId = member, ShareSessionEpoch = epoch, MaxWaitMs = 0, MinBytes = 1, MaxBytes = 1 << 20,
            MaxRecords = 100, BatchSize = 100,
            Topics = [new ShareFetchRequest.FetchTopic { TopicId = topicId, Partitions = [new ShareFetchRequest.FetchPartition { PartitionIndex = 0 }] }],
        }, 2))!;

    private static List<(long Offset, short Count)> Acquired(ShareFetchResponse r) =>
        r.Responses.SelectMany(t => t.Partitions).SelectMany(p => p.AcquiredRecords)
            .SelectMany(a => Enumerable.Range(0, (int)(a.LastOffset - a.FirstOffset + 1)).Select(i => (a.FirstOffset + i, a.DeliveryCount))).ToList();

    private static string Members(ShareGroupDescribeResponse.DescribedGroup g) =>
        string.Join(" ", g.Members.OrderBy(m => m.MemberId, StringComparer.Ordinal).Select(m =>
            $"{m.MemberId}@{m.MemberEpoch}[{string.Join(",", m.SubscribedTopicNames)}]=" +
            string.Join(";", m.Assignment.TopicPartitions.OrderBy(t => t.TopicName).Select(t => $"{t.TopicName}:{string.Join(",", t.Partitions.Order())}"))));

    private static async Task Until(Func<Task<bool>> condition, string what)
    {
        for (var sw = System.Diagnostics.Stopwatch.StartNew(); !await condition(); await Task.Delay(50))
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(15), $"timed out waiting: {what}");
    }

    /// <summary>Runs <paramref name="body"/> with a way to start a broker on one data directory
    /// (started as the process does: its __consumer_offsets partitions are loaded) and to stop it.</summary>
    private static async Task OnDisk(Func<Func<Task<HandlerFixture>>, Func<HandlerFixture, Task>, Task> body, params (string, string)[] extra)
    {
        var dir = Path.Combine(Path.GetTempPath(), "samsa-share-members-" + Guid.NewGuid().ToString("N"));
        var props = new Dictionary<string, string>
        {
            ["broker.id"] = "1", ["log.dirs"] = dir, ["listeners"] = "PLAINTEXT://127.0.0.1:0",
            ["offsets.topic.replication.factor"] = "1", ["share.auto.offset.reset"] = "earliest",
        };
        foreach (var (k, v) in extra) props[k] = v;
        var running = new List<KafkaBroker>();
        try
        {
            await body(async () =>
            {
                var broker = new KafkaBroker(new BrokerConfig(props));
                running.Add(broker);
                await broker.StartAsync();
                return new HandlerFixture(broker);
            }, async f =>
            {
                running.Remove(f.Broker);
                await f.Broker.DisposeAsync();
            });
        }
        finally
        {
            foreach (var b in running) await b.DisposeAsync();
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public Task MembersKeepTheirEpochsAndAssignmentsAcrossARestart() => OnDisk(async (open, close) =>
    {
        string before;
        int groupEpoch;
        int m1Epoch, m2Epoch;
        {
            var f = await open();
            await f.CreateTopic("t", 2);
            await f.CreateTopic("u", 1);
            var h1 = await Heartbeat(f, "g", "m1", 0, "t");
            Assert.Equal(0, h1.ErrorCode);
            var h2 = await Heartbeat(f, "g", "m2", 0, "t", "u");
            Assert.Equal(0, h2.ErrorCode);
            // m1 moves to the group's new epoch (its share of t halves).
            var h1b = await Heartbeat(f, "g", "m1", h1.MemberEpoch);
            Assert.Equal(0, h1b.ErrorCode);
            m1Epoch = h1b.MemberEpoch;
            m2Epoch = h2.MemberEpoch;
            var d = await Describe(f, "g");
            Assert.Equal(0, d.ErrorCode);
            groupEpoch = d.GroupEpoch;
            before = Members(d);
            Assert.Equal($"m1@{m1Epoch}[t]=t:0 m2@{m2Epoch}[t,u]=t:1;u:0", before);
            await close(f);
        }
        {
            var f = await open();
            // The same group, members, epochs and assignments, before anyone heartbeats.
            await Until(async () => (await Describe(f, "g")).ErrorCode == 0, "group loaded");
            var d = await Describe(f, "g");
            Assert.Equal("Stable", d.GroupState);
            Assert.Equal(groupEpoch, d.GroupEpoch);
            Assert.Equal(groupEpoch, d.AssignmentEpoch);
            Assert.Equal(before, Members(d));
            // Each member goes on with its epoch: no UNKNOWN_MEMBER_ID, no rejoin, nothing new to send.
            var h1 = await Heartbeat(f, "g", "m1", m1Epoch);
            Assert.Equal(0, h1.ErrorCode);
            Assert.Equal(m1Epoch, h1.MemberEpoch);
            Assert.Null(h1.Assignment);
            var h2 = await Heartbeat(f, "g", "m2", m2Epoch);
            Assert.Equal(0, h2.ErrorCode);
            Assert.Equal(m2Epoch, h2.MemberEpoch);
            // A stale epoch is still fenced.
            Assert.Equal((short)ErrorCode.FencedMemberEpoch, (await Heartbeat(f, "g", "m1", m1Epoch + 5)).ErrorCode);
            var listed = (await f.Send<ListGroupsResponse>(new ListGroupsRequest { TypesFilter = ["share"] }, 5))!;
            Assert.Contains(listed.Groups, g => g.GroupId == "g" && g.GroupType == "share" && g.GroupState == "Stable");
        }
    });

    [Fact]
    public Task ALeaveAndADeletedGroupStayGoneAfterARestart() => OnDisk(async (open, close) =>
    {
        {
            var f = await open();
            await f.CreateTopic("t", 1);
            Assert.Equal(0, (await Heartbeat(f, "gone", "m", 0, "t")).ErrorCode);
            Assert.Equal(0, (await Heartbeat(f, "left", "a", 0, "t")).ErrorCode);
            var b = await Heartbeat(f, "left", "b", 0, "t");
            Assert.Equal(-1, (await Heartbeat(f, "left", "a", -1)).MemberEpoch);
            Assert.Equal(-1, (await Heartbeat(f, "gone", "m", -1)).MemberEpoch);
            var deleted = (await f.Send<DeleteGroupsResponse>(new DeleteGroupsRequest { GroupsNames = ["gone"] }, 2))!;
            Assert.Equal(0, deleted.Results.Single().ErrorCode);
            await close(f);
        }
        {
            var f = await open();
            await Until(async () => (await Describe(f, "left")).ErrorCode == 0, "group loaded");
            Assert.Equal("b@", Members(await Describe(f, "left"))[..2]);
            Assert.Single((await Describe(f, "left")).Members);
            Assert.Equal((short)ErrorCode.GroupIdNotFound, (await Describe(f, "gone")).ErrorCode);
            var listed = (await f.Send<ListGroupsResponse>(new ListGroupsRequest { TypesFilter = ["share"] }, 5))!;
            Assert.DoesNotContain(listed.Groups, g => g.GroupId == "gone");
        }
    });

    [Fact]
    public Task ReleasesOfAClosedShareSessionAreWrittenAtAStop() => OnDisk(async (open, close) =>
    {
        // The kafkats share-state-restart flake: a member acquires records (delivery 1), then its
        // share session ends, giving the attempt back (count 0). Earlier builds wrote the acquisition
        // within 100 ms (available with count 1), so a stop before the release was written — or a
        // SIGKILL of the leader (cluster target) — had the restarted broker hand the records out on
        // their second delivery. Now, as upstream, no acquisition is written: what the share
        // coordinator holds while the records are acquired is their state before (count 0).
        Guid topicId;
        {
            var f = await open();
            await f.CreateTopic("t", 1);
            topicId = f.Broker.Replicas.GetTopic("t")!.Id;
            await f.Produce("t", 0, HandlerFixture.Batch("a", "b"));
            Assert.Equal([(0L, (short)1), (1L, (short)1)], Acquired(await Fetch(f, "g", "m", 0, topicId)));
            f.Broker.Shares.Tick();   // housekeeping: nothing of the acquisition is written
            await Task.Delay(300);
            var held = f.Broker.ShareCoordinator.Coordinator.Summary(new SharePartitionKey("g", topicId, 0)).State!;
            Assert.All(held.Batches, b => Assert.Equal((RecordState.Available, (short)0), (b.State, b.DeliveryCount)));
            Assert.Equal(0, (await Fetch(f, "g", "m", -1, topicId)).ErrorCode);   // the session ends: released, count 0
            await close(f);
        }
        {
            var f = await open();
            var r = await Fetch(f, "g", "n", 0, topicId);
            Assert.Equal([(0L, (short)1), (1L, (short)1)], Acquired(r));
        }
    });

    [Fact]
    public Task MembersThatDoNotHeartbeatAfterALoadAreFenced() => OnDisk(async (open, close) =>
    {
        {
            var f = await open();
            await f.CreateTopic("t", 1);
            Assert.Equal(0, (await Heartbeat(f, "g", "m", 0, "t")).ErrorCode);
            await close(f);
        }
        {
            var f = await open();
            await Until(async () => (await Describe(f, "g")).Members.Count == 1, "group loaded");
            // The session timeout started again at the load; nobody heartbeats, so m goes.
            await Until(async () => (await Describe(f, "g")).Members.Count == 0, "m fenced");
            Assert.Equal("Empty", (await Describe(f, "g")).GroupState);
            Assert.Equal((short)ErrorCode.UnknownMemberId, (await Heartbeat(f, "g", "m", 1)).ErrorCode);
        }
    }, ("group.share.session.timeout.ms", "1500"));

    [Fact]
    public void DeletingAGroupTombstonesEveryKeyItWrote()
    {
        var lookup = (string name) => name == "t" ? (Guid.Parse("00000000-0000-0000-0000-000000000001"), 2) : ((Guid, int)?)null;
        var coordinator = new ShareGroupCoordinator(ShareGroupSettings.FromConfig(new BrokerConfig(new Dictionary<string, string> { ["broker.id"] = "1" })), lookup);
        var log = new List<CoordinatorRecord>();
        coordinator.Persist = (_, records) => { log.AddRange(records); return ErrorCode.None; };
        Assert.Equal(ErrorCode.None, coordinator.Heartbeat("g", "a", 0, "r1", ["t"], "c", "/h", 0).Error);
        Assert.Equal(ErrorCode.None, coordinator.Heartbeat("g", "b", 0, null, ["t"], "c", "/h", 0).Error);
        Assert.Equal(ErrorCode.None, coordinator.Heartbeat("g", "a", -1, null, null, "c", "/h", 0).Error);
        Assert.Equal(ErrorCode.None, coordinator.Heartbeat("g", "b", -1, null, null, "c", "/h", 0).Error);
        Assert.True(coordinator.TryDelete("g", out _));
        // Compaction keeps the last record of each key and later drops tombstones: every key the
        // group ever had ends as a tombstone, so nothing of it can be replayed.
        var last = new Dictionary<string, CoordinatorRecord>();
        foreach (var r in log) last[Convert.ToHexString(r.Key)] = r;
        Assert.True(last.Count >= 9, $"{last.Count} keys");   // 3 per member, target epoch, state partitions, group epoch
        Assert.All(last.Values, r => Assert.Null(r.Value));
        Assert.Equal(ShareGroupRecords.GroupMetadataKey, (short)(log[^1].Key[0] << 8 | log[^1].Key[1]));
        // Replaying what was written before the deletion gives the group back with member b.
        var upToB = log.TakeWhile(r => r.Value is not null).ToList();
        var replayed = upToB.Select(r => GroupRecords.Decode(r.Key, r.Value)).OfType<GroupLogEntry.ShareRecord>().ToList();
        var groups = new ShareGroupCoordinator(ShareGroupSettings.FromConfig(new BrokerConfig(new Dictionary<string, string> { ["broker.id"] = "1" })), lookup);
        groups.Install(_ => true, replayed, 0);
        var g = groups.Describe("g")!;
        Assert.Equal(["a", "b"], g.Members.Keys.Order().ToArray());
        Assert.Equal("r1", g.Members["a"].RackId);
        Assert.Equal(["t"], g.KnownTopics.ToArray());
        // And replaying everything gives nothing.
        var all = new ShareGroupCoordinator(ShareGroupSettings.FromConfig(new BrokerConfig(new Dictionary<string, string> { ["broker.id"] = "1" })), lookup);
        all.Install(_ => true, log.Select(r => GroupRecords.Decode(r.Key, r.Value)).OfType<GroupLogEntry.ShareRecord>(), 0);
        Assert.Null(all.Describe("g"));
    }
}
