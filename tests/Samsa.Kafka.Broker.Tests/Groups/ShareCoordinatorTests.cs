using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Broker.Groups;
using Samsa.Kafka.Broker.Groups.Share;
using Samsa.Kafka.Broker.Tests.Handlers;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Primitives;

namespace Samsa.Kafka.Broker.Tests.Groups;

/// <summary>The share coordinator: its __share_group_state records, replay (snapshot then updates),
/// fencing, the APIs 83-87 and FindCoordinator key type 2.</summary>
public class ShareCoordinatorTests
{
    private static readonly Guid Topic = Guid.Parse("2851a903-57c0-46bf-b222-a2188345333e");
    private static readonly SharePartitionKey Key = new("g", Topic, 0);

    /// <summary>A coordinator that owns every state partition and keeps what it appends, per partition.</summary>
    private static (ShareCoordinator Coordinator, List<(int Partition, CoordinatorRecord Record)> Log) Owned(int updatesPerSnapshot = 500, int partitions = 3)
    {
        var log = new List<(int, CoordinatorRecord)>();
        var c = new ShareCoordinator((p, records) => { foreach (var r in records) log.Add((p, r)); return ErrorCode.None; }, updatesPerSnapshot);
        c.SetPartitionCount(partitions);
        for (int p = 0; p < partitions; p++) c.LoadPartition(p, [], c.BeginLoading(p, 0)!.Value);
        return (c, log);
    }

    private static ShareCoordinator Replayed(IEnumerable<(int Partition, CoordinatorRecord Record)> log, int partitions = 3)
    {
        var c = new ShareCoordinator((_, _) => ErrorCode.None);
        c.SetPartitionCount(partitions);
        for (int p = 0; p < partitions; p++)
        {
            var entries = log.Where(x => x.Partition == p).Select(x => ShareRecords.Decode(x.Record.Key, x.Record.Value)!).ToList();
            c.LoadPartition(p, entries, c.BeginLoading(p, 0)!.Value);
        }
        return c;
    }

    private static StateBatch B(long first, long last, RecordState state, short count) => new(first, last, state, count);

    [Fact]
    public void ReplayOfSnapshotThenUpdatesGivesTheWrittenState()
    {
        var (c, log) = Owned(updatesPerSnapshot: 3);
        Assert.Equal(ErrorCode.None, c.Initialize(Key, 0, 10));
        Assert.Equal(ErrorCode.None, c.Write(Key, 0, 0, 10, -1, [B(10, 14, RecordState.Available, 1)]));
        Assert.Equal(ErrorCode.None, c.Write(Key, 0, 0, 12, 1, [B(12, 12, RecordState.Acknowledged, 1), B(13, 14, RecordState.Available, 2)]));
        Assert.Equal(ErrorCode.None, c.Write(Key, 0, 0, 13, 0, [B(13, 13, RecordState.Archived, 5)]));
        var other = new SharePartitionKey("other group", Topic, 1);
        Assert.Equal(ErrorCode.None, c.Write(other, 0, 2, 0, -1, [B(0, 0, RecordState.Available, 1)]));

        // Initialize writes a snapshot, the next two writes updates, the third (update count reached)
        // a snapshot again; a share-partition's first write is a snapshot.
        var types = log.Where(x => ShareRecords.Decode(x.Record.Key, x.Record.Value)!.Key == Key)
            .Select(x => ShareRecords.Decode(x.Record.Key, x.Record.Value) is ShareLogEntry.Snapshot ? "S" : "U");
        Assert.Equal("SUUS", string.Concat(types));

        var replayed = Replayed(log);
        var (e, s) = replayed.Read(Key, 0);
        Assert.Equal(ErrorCode.None, e);
        Assert.Equal(13, s!.StartOffset);   // runs below the written start offset are gone
        Assert.Equal([B(13, 13, RecordState.Archived, 5), B(14, 14, RecordState.Available, 2)], s.Batches);
        Assert.Equal(c.Read(Key, 0).State!.Batches, s.Batches);
        Assert.Equal(2, replayed.Read(other, 2).State!.LeaderEpoch);
    }

    [Fact]
    public void UpdatesOfAnEarlierSnapshotAreSkippedAndTombstonesDelete()
    {
        var (c, log) = Owned(updatesPerSnapshot: 2);
        c.Initialize(Key, 0, 0);
        c.Write(Key, 0, 0, 0, -1, [B(0, 3, RecordState.Available, 1)]);       // update of snapshot epoch 0
        c.Write(Key, 0, 0, 2, -1, [B(0, 1, RecordState.Acknowledged, 1)]);    // snapshot epoch 1
        // Replaying an old update after the snapshot (as a compacted log keeps the last of each key,
        // so an update may precede or follow it) must not change the snapshot's state.
        var reordered = log.Concat([log[1]]).ToList();
        var s = Replayed(reordered).Read(Key, 0).State!;
        Assert.Equal(2, s.StartOffset);
        Assert.Equal([B(2, 3, RecordState.Available, 1)], s.Batches);

        Assert.Equal(ErrorCode.None, c.Delete(Key));
        Assert.Null(Replayed(log).Read(Key, 0).State);
        Assert.Null(c.Summary(Key).State);
    }

    [Fact]
    public void TheLastUpdateAloneRestoresTheStateAsCompactionLeavesIt()
    {
        var (c, log) = Owned();
        c.Initialize(Key, 0, 0);
        c.Write(Key, 0, 0, 0, -1, [B(0, 5, RecordState.Available, 1)]);
        c.Write(Key, 0, 0, 0, -1, [B(2, 2, RecordState.Acknowledged, 1)]);   // only the changed run
        c.Read(Key, 1);                                                      // a new leader epoch: an update too
        // A compacted log keeps the last record of each key: the snapshot and the last update.
        var compacted = log.GroupBy(x => Convert.ToHexString(x.Record.Key)).Select(g => g.Last()).ToList();
        Assert.Equal(2, compacted.Count);
        var s = Replayed(compacted).Read(Key, 1).State!;
        Assert.Equal([B(0, 1, RecordState.Available, 1), B(2, 2, RecordState.Acknowledged, 1), B(3, 5, RecordState.Available, 1)], s.Batches);
        Assert.Equal(1, s.LeaderEpoch);
    }

    [Fact]
    public void StaleWritersAreFenced()
    {
        var (c, _) = Owned();
        c.Initialize(Key, 1, 0);
        Assert.Equal(ErrorCode.None, c.Write(Key, 1, 3, 0, -1, [B(0, 0, RecordState.Available, 1)]));
        Assert.Equal(ErrorCode.FencedLeaderEpoch, c.Write(Key, 1, 2, 0, -1, []));
        Assert.Equal(ErrorCode.FencedStateEpoch, c.Write(Key, 0, 3, 0, -1, []));
        Assert.Equal(ErrorCode.FencedLeaderEpoch, c.Read(Key, 2).Error);
        // A reader with a newer leader epoch takes over: the old leader's writes are fenced.
        Assert.Equal(ErrorCode.None, c.Read(Key, 4).Error);
        Assert.Equal(ErrorCode.FencedLeaderEpoch, c.Write(Key, 1, 3, 0, -1, []));
        Assert.Equal(ErrorCode.FencedStateEpoch, c.Initialize(Key, 0, 5));
    }

    [Fact]
    public void CombineReplacesOverlapsAndDropsBelowTheStart()
    {
        var merged = ShareRecords.Combine(
            [B(0, 9, RecordState.Available, 1)],
            [B(3, 4, RecordState.Acknowledged, 1), B(8, 12, RecordState.Available, 2), B(5, 7, RecordState.Available, 1)], 2);
        Assert.Equal([B(2, 2, RecordState.Available, 1), B(3, 4, RecordState.Acknowledged, 1), B(5, 7, RecordState.Available, 1), B(8, 12, RecordState.Available, 2)], merged);
    }

    [Fact]
    public void RecordsHaveUpstreamsLayout()
    {
        var (c, log) = Owned();
        c.Initialize(new SharePartitionKey("g", Topic, 5), 2, 7);
        var key = log.Single().Record.Key;
        // int16 record type 0, int16-length "g", 16 bytes of topic id, int32 partition.
        Assert.Equal("0000" + "0001" + "67" + "2851a90357c046bfb222a2188345333e" + "00000005", Convert.ToHexString(key).ToLowerInvariant());
        var value = log.Single().Record.Value!;
        Assert.Equal("0000", Convert.ToHexString(value[..2]));   // value version 0
        var r = new KafkaReader(value.AsMemory(2));
        var v = ShareSnapshotValue.Read(ref r, 0);
        Assert.Equal((2, 7L, 0), (v.StateEpoch, v.StartOffset, v.StateBatches.Count));
        c.Write(new SharePartitionKey("g", Topic, 5), 2, 0, -1, 3, [B(7, 8, RecordState.Acknowledged, 1)]);
        Assert.Equal("0001", Convert.ToHexString(log[^1].Record.Key[..2]));   // ShareUpdate
        // The coordinator key hashes like upstream: "g:<base64 topic id>:5".
        Assert.Equal("g:KFGpA1fARr-yIqIYg0UzPg:5", new SharePartitionKey("g", Topic, 5).CoordinatorKey);
    }

    [Fact]
    public void SummaryV1HasKafkasLayout()
    {
        // The v1 ReadShareGroupStateSummary answer of a never-initialized share-partition, as a
        // Kafka 4.x broker writes it (body after the response header): start offset and
        // delivery-complete count -1.
        var response = new ReadShareGroupStateSummaryResponse
        {
            Results = [new() { TopicId = Topic, Partitions = [new() { Partition = 0, StartOffset = -1, DeliveryCompleteCount = -1 }] }],
        };
        var bytes = new byte[response.Size(1)];
        var w = new KafkaWriter(bytes);
        response.Write(ref w, 1);
        Assert.Equal("02" + "2851a90357c046bfb222a2188345333e" + "02" + "00000000" + "0000" + "00" + "00000000" + "00000000"
            + "ffffffffffffffff" + "ffffffff" + "00" + "00" + "00", Convert.ToHexString(bytes).ToLowerInvariant());
    }

    [Fact]
    public async Task ApisAnswerThroughTheBrokerAndFindCoordinatorLocatesTheStatePartition()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t", 1);
        var topicId = f.Broker.Replicas.GetTopic("t")!.Id;
        string key = $"grp:{Samsa.Kafka.Broker.Cluster.KafkaUuid.ToBase64(topicId)}:0";
        var found = (await f.Send<FindCoordinatorResponse>(new FindCoordinatorRequest { KeyType = 2, CoordinatorKeys = [key] }, 6))!;
        Assert.Equal((short)0, found.Coordinators[0].ErrorCode);
        Assert.Equal(1, found.Coordinators[0].NodeId);
        Assert.NotNull(f.Broker.Replicas.GetTopic("__share_group_state"));
        Assert.True(f.Broker.Replicas.GetTopic("__share_group_state")!.IsInternal);
        var bad = (await f.Send<FindCoordinatorResponse>(new FindCoordinatorRequest { KeyType = 2, CoordinatorKeys = ["no-colons"] }, 6))!;
        Assert.Equal((short)ErrorCode.InvalidRequest, bad.Coordinators[0].ErrorCode);

        var init = (await f.Send<InitializeShareGroupStateResponse>(new InitializeShareGroupStateRequest
        {
            GroupId = "grp", Topics = [new() { TopicId = topicId, Partitions = [new() { Partition = 0, StateEpoch = 1, StartOffset = 4 }] }],
        }, 0))!;
        Assert.Equal((short)0, init.Results[0].Partitions[0].ErrorCode);
        var write = (await f.Send<WriteShareGroupStateResponse>(new WriteShareGroupStateRequest
        {
            GroupId = "grp",
            Topics = [new() { TopicId = topicId, Partitions = [new()
            {
                Partition = 0, StateEpoch = 1, LeaderEpoch = 0, StartOffset = 5, DeliveryCompleteCount = 1,
                StateBatches = [new() { FirstOffset = 5, LastOffset = 6, DeliveryState = 0, DeliveryCount = 2 }, new() { FirstOffset = 7, LastOffset = 7, DeliveryState = 2, DeliveryCount = 1 }],
            }] }],
        }, 1))!;
        Assert.Equal((short)0, write.Results[0].Partitions[0].ErrorCode);
        var read = (await f.Send<ReadShareGroupStateResponse>(new ReadShareGroupStateRequest
        {
            GroupId = "grp", Topics = [new() { TopicId = topicId, Partitions = [new() { Partition = 0, LeaderEpoch = 0 }] }],
        }, 0))!;
        var rp = read.Results[0].Partitions[0];
        Assert.Equal((0, 1, 5L), (rp.ErrorCode, rp.StateEpoch, rp.StartOffset));
        Assert.Equal([(5L, 6L, (sbyte)0, (short)2), (7L, 7L, (sbyte)2, (short)1)],
            rp.StateBatches.Select(b => (b.FirstOffset, b.LastOffset, b.DeliveryState, b.DeliveryCount)).ToList());
        var summary = (await f.Send<ReadShareGroupStateSummaryResponse>(new ReadShareGroupStateSummaryRequest
        {
            GroupId = "grp", Topics = [new() { TopicId = topicId, Partitions = [new() { Partition = 0, LeaderEpoch = -1 }, new() { Partition = 1, LeaderEpoch = -1 }] }],
        }, 1))!;
        Assert.Equal((5L, 1, 1), (summary.Results[0].Partitions[0].StartOffset, summary.Results[0].Partitions[0].StateEpoch, summary.Results[0].Partitions[0].DeliveryCompleteCount));
        Assert.Equal((-1L, -1), (summary.Results[0].Partitions[1].StartOffset, summary.Results[0].Partitions[1].DeliveryCompleteCount));
        var fenced = (await f.Send<WriteShareGroupStateResponse>(new WriteShareGroupStateRequest
        {
            GroupId = "grp", Topics = [new() { TopicId = topicId, Partitions = [new() { Partition = 0, StateEpoch = 0, LeaderEpoch = 0, StartOffset = -1 }] }],
        }, 0))!;
        Assert.Equal((short)ErrorCode.FencedStateEpoch, fenced.Results[0].Partitions[0].ErrorCode);
        var huge = (await f.Send<WriteShareGroupStateResponse>(new WriteShareGroupStateRequest
        {
            GroupId = "grp", Topics = [new() { TopicId = topicId, Partitions = [new()
            {
                Partition = 0, StateEpoch = 1, LeaderEpoch = 0, StartOffset = -1,
                StateBatches = [new() { FirstOffset = 0, LastOffset = long.MaxValue, DeliveryState = 0, DeliveryCount = 1 }],
            }] }],
        }, 1))!;
        Assert.Equal((short)ErrorCode.InvalidRequest, huge.Results[0].Partitions[0].ErrorCode);
        var deleted = (await f.Send<DeleteShareGroupStateResponse>(new DeleteShareGroupStateRequest
        {
            GroupId = "grp", Topics = [new() { TopicId = topicId, Partitions = [new() { Partition = 0 }] }],
        }, 0))!;
        Assert.Equal((short)0, deleted.Results[0].Partitions[0].ErrorCode);
        Assert.Null(f.Broker.ShareCoordinator.Coordinator.Summary(new SharePartitionKey("grp", topicId, 0)).State);
        // No group id: no results (upstream).
        Assert.Empty((await f.Send<ReadShareGroupStateResponse>(new ReadShareGroupStateRequest { GroupId = "" }, 0))!.Results);
    }

    [Fact]
    public async Task AnAcknowledgementIsWrittenToTheCoordinatorBeforeItIsAnswered()
    {
        await using var f = new HandlerFixture(("offsets.topic.replication.factor", "1"), ("share.auto.offset.reset", "earliest"));
        await f.CreateTopic("t", 1);
        var topicId = f.Broker.Replicas.GetTopic("t")!.Id;
        await f.Produce("t", 0, HandlerFixture.Batch("a", "b", "c", "d"));
        var hb = (await f.Send<ShareGroupHeartbeatResponse>(new ShareGroupHeartbeatRequest { GroupId = "g", MemberId = "m", MemberEpoch = 0, SubscribedTopicNames = ["t"] }, 1))!;
        Assert.Equal(0, hb.ErrorCode);
        var fetched = (await f.Send<ShareFetchResponse>(new ShareFetchRequest
        {
            GroupId = "g", MemberId = "m", ShareSessionEpoch = 0, MaxBytes = 1 << 20, MaxRecords = 100, BatchSize = 100,
            Topics = [new() { TopicId = topicId, Partitions = [new() { PartitionIndex = 0 }] }],
        }, 2))!;
        Assert.Equal(4, fetched.Responses.Single().Partitions.Single().AcquiredRecords.Sum(a => a.LastOffset - a.FirstOffset + 1));
        // Read at first use: the coordinator initialized the share-partition at the log start.
        var key = new SharePartitionKey("g", topicId, 0);
        Assert.Equal(0, f.Broker.ShareCoordinator.Coordinator.Summary(key).State!.StartOffset);
        var ack = (await f.Send<ShareAcknowledgeResponse>(new ShareAcknowledgeRequest
        {
            GroupId = "g", MemberId = "m", ShareSessionEpoch = 1,
            Topics = [new() { TopicId = topicId, Partitions = [new()
            {
                PartitionIndex = 0,
                AcknowledgementBatches = [new() { FirstOffset = 0, LastOffset = 1, AcknowledgeTypes = [1] }, new() { FirstOffset = 3, LastOffset = 3, AcknowledgeTypes = [2] }],
            }] }],
        }, 2))!;
        Assert.Equal(0, ack.Responses.Single().Partitions.Single().ErrorCode);
        // The acknowledgement handler awaited the write (the 100 ms housekeeping loop may also have
        // written since; either way the answer never precedes the state).
        var s = f.Broker.ShareCoordinator.Coordinator.Read(key, -1).State!;
        Assert.Equal(2, s.StartOffset);
        // 2 still acquired: written as before its acquisition (available, never delivered), as
        // upstream writes no acquisition; 3 released after one delivery.
        Assert.Equal([B(2, 2, RecordState.Available, 0), B(3, 3, RecordState.Available, 1)], s.Batches);
        Assert.Equal(0, s.DeliveryCompleteCount);
    }

    [Fact]
    public async Task StateIsReplayedFromTheTopicAfterARestart()
    {
        var dir = Path.Combine(Path.GetTempPath(), "samsa-share-coord-" + Guid.NewGuid().ToString("N"));
        var props = new Dictionary<string, string> { ["broker.id"] = "1", ["log.dirs"] = dir, ["share.coordinator.snapshot.update.records.per.snapshot"] = "4" };
        try
        {
            var key = new SharePartitionKey("g", Topic, 3);
            {
                await using var broker = new KafkaBroker(new BrokerConfig(props));
                Assert.Equal(ErrorCode.None, await broker.ShareCoordinator.InitializeAsync(key, 0, 100));
                for (int i = 0; i < 10; i++)
                    Assert.Equal(ErrorCode.None, await broker.ShareCoordinator.WriteAsync(key, 0, 0, 100 + i, -1, [B(100 + i, 100 + i + 5, RecordState.Available, (short)(i + 1))]));
            }
            Assert.False(Directory.Exists(Path.Combine(dir, "share-group-state")));   // no JSON files any more
            {
                await using var broker = new KafkaBroker(new BrokerConfig(props));
                var (e, s) = await broker.ShareCoordinator.ReadAsync(key, 0);
                Assert.Equal(ErrorCode.None, e);
                Assert.Equal(109, s!.StartOffset);
                Assert.Equal([B(109, 114, RecordState.Available, 10)], s.Batches);
            }
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }
}
