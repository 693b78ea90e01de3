using Samsa.Kafka.Broker.Tests.Handlers;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Tests.Groups;

/// <summary>Finalized share.version gates ShareFetch and ShareAcknowledge as upstream's
/// KafkaApis.isShareGroupProtocolEnabled does: at level 0 both answer UNSUPPORTED_VERSION
/// (top-level, nothing acquired or acknowledged) and the broker's share sessions and share-partitions
/// are dropped; back at 1 the member opens a new session, fetches and acknowledges.</summary>
public class ShareVersionGateTests
{
    private static ShareFetchRequest FetchRequest(Guid topicId, int epoch, params (long First, long Last, sbyte Type)[] acks) => new()
    {
        GroupId = "sg", MemberId = "member-a", ShareSessionEpoch = epoch, MaxWaitMs = 0, MinBytes = 1, MaxBytes = 1 << 20,
        MaxRecords = 100, BatchSize = 100,
        Topics = [new ShareFetchRequest.FetchTopic
        {
            TopicId = topicId,
            Partitions = [new ShareFetchRequest.FetchPartition
            {
                PartitionIndex = 0,
                AcknowledgementBatches = acks.Select(a => new ShareFetchRequest.AcknowledgementBatch { FirstOffset = a.First, LastOffset = a.Last, AcknowledgeTypes = [a.Type] }).ToList(),
            }],
        }],
    };

    private static ShareAcknowledgeRequest AckRequest(Guid topicId, int epoch, long first, long last) => new()
    {
        GroupId = "sg", MemberId = "member-a", ShareSessionEpoch = epoch,
        Topics = [new ShareAcknowledgeRequest.AcknowledgeTopic
        {
            TopicId = topicId,
            Partitions = [new ShareAcknowledgeRequest.AcknowledgePartition
            {
                PartitionIndex = 0,
                AcknowledgementBatches = [new ShareAcknowledgeRequest.AcknowledgementBatch { FirstOffset = first, LastOffset = last, AcknowledgeTypes = [1] }],
            }],
        }],
    };

    private static UpdateFeaturesRequest ShareVersion(short level) => new()
    {
        FeatureUpdates = [new UpdateFeaturesRequest.FeatureUpdateKey { Feature = "share.version", MaxVersionLevel = level, UpgradeType = (sbyte)(level == 0 ? 3 : 1) }],
    };

    private static int Acquired(ShareFetchResponse r) =>
        r.Responses.SelectMany(t => t.Partitions).SelectMany(p => p.AcquiredRecords).Sum(a => (int)(a.LastOffset - a.FirstOffset + 1));

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task ShareVersionZeroRefusesShareFetchAndShareAcknowledge(short version)
    {
        await using var f = new HandlerFixture(("offsets.topic.replication.factor", "1"), ("offsets.topic.num.partitions", "1"));
        await f.CreateTopic("t", 1);
        var topicId = f.Broker.Replicas.GetTopic("t")!.Id;
        await f.Produce("t", 0, HandlerFixture.Batch("a", "b"));
        var hb = (await f.Send<ShareGroupHeartbeatResponse>(new ShareGroupHeartbeatRequest
        {
            GroupId = "sg", MemberId = "member-a", MemberEpoch = 0, SubscribedTopicNames = ["t"],
        }, 1))!;
        Assert.Equal(0, hb.ErrorCode);
        // share.auto.offset.reset is latest: records produced before the first fetch are not delivered,
        // so the share-partition is opened first and the records appended after it.
        var open = (await f.Send<ShareFetchResponse>(FetchRequest(topicId, 0), version))!;
        Assert.Equal(0, open.ErrorCode);
        await f.Produce("t", 0, HandlerFixture.Batch("c", "d"));

        Assert.NotNull(f.Broker.Shares.Find("sg", topicId, 0));
        Assert.Equal(1, f.Broker.Shares.Sessions.Count);
        Assert.Equal(0, (await f.Send<UpdateFeaturesResponse>(ShareVersion(0), 2))!.ErrorCode);
        Assert.Equal(0, f.Broker.Features.Level("share.version"));
        // Turned off, the broker drops its share sessions and share-partitions at once
        // (upstream SharePartitionManager.onShareVersionToggle).
        Assert.Equal(0, f.Broker.Shares.Sessions.Count);
        Assert.Null(f.Broker.Shares.Find("sg", topicId, 0));
        var fetch = (await f.Send<ShareFetchResponse>(FetchRequest(topicId, 1), version))!;
        Assert.Equal((short)ErrorCode.UnsupportedVersion, fetch.ErrorCode);
        Assert.Equal(0, Acquired(fetch));
        var ack = (await f.Send<ShareAcknowledgeResponse>(AckRequest(topicId, 1, 2, 3), version))!;
        Assert.Equal((short)ErrorCode.UnsupportedVersion, ack.ErrorCode);
        Assert.Empty(ack.Responses);

        // Back on: the old session is gone, so the member opens a new one; the share-partition is
        // read again from the share coordinator and the records are delivered.
        Assert.Equal(0, (await f.Send<UpdateFeaturesResponse>(ShareVersion(1), 2))!.ErrorCode);
        var stale = (await f.Send<ShareFetchResponse>(FetchRequest(topicId, 1), version))!;
        Assert.Equal((short)ErrorCode.ShareSessionNotFound, stale.ErrorCode);
        var again = (await f.Send<ShareFetchResponse>(FetchRequest(topicId, 0), version))!;
        Assert.Equal(0, again.ErrorCode);
        Assert.Equal(2, Acquired(again));
        var acked = (await f.Send<ShareAcknowledgeResponse>(AckRequest(topicId, 1, 2, 3), version))!;
        Assert.Equal(0, acked.ErrorCode);
        Assert.Equal(0, acked.Responses.Single().Partitions.Single().ErrorCode);
    }
}
