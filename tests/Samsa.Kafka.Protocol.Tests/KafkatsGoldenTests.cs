using Samsa.Kafka.Protocol.Messages;
using Xunit;

namespace Samsa.Kafka.Protocol.Tests;

/// <summary>
/// Request bodies sent by @kafkats/client 0.12.0 (npm; its own TypeScript encoders) while its
/// ShareConsumer ran compat/kafkats's share-split scenario against a Samsa broker: a recording TCP
/// proxy sat between them (the broker advertised the proxy's port, so every connection went
/// through it) and kept the body after the request header v2 of each ShareGroupHeartbeat (76) and
/// ShareFetch (78) frame. Group "compat-kafkats-share-e2c04c", member "4vJtIOe8RNsqQbM2m9wWDw"
/// (the client makes its own member id, KIP-932 v1), topic "compat-kafkats-split-127b1c".
/// </summary>
public class KafkatsGoldenTests
{
    private const string Group = "compat-kafkats-share-e2c04c";
    private const string Member = "4vJtIOe8RNsqQbM2m9wWDw";
    private const string Topic = "compat-kafkats-split-127b1c";

    public static IEnumerable<object[]> Requests() =>
    [
        ["heartbeat-join", ApiKey.ShareGroupHeartbeat, (short)1, "1c636f6d7061742d6b61666b6174732d73686172652d6532633034631734764a74494f6538524e737151624d326d39775744770000000000021c636f6d7061742d6b61666b6174732d73706c69742d31323762316300"],
        ["heartbeat-epoch2", ApiKey.ShareGroupHeartbeat, (short)1, "1c636f6d7061742d6b61666b6174732d73686172652d6532633034631734764a74494f6538524e737151624d326d39775744770000000200021c636f6d7061742d6b61666b6174732d73706c69742d31323762316300"],
        ["heartbeat-leave", ApiKey.ShareGroupHeartbeat, (short)1, "1c636f6d7061742d6b61666b6174732d73686172652d6532633034631734764a74494f6538524e737151624d326d3977574477ffffffff000000"],
        ["fetch-open-session", ApiKey.ShareFetch, (short)2, "1c636f6d7061742d6b61666b6174732d73686172652d6532633034631734764a74494f6538524e737151624d326d3977574477000000000000000000000000001000000000000500000064000002498604ae051b4aa29d288f103af902a202000000000100000100"],
        ["fetch-epoch1", ApiKey.ShareFetch, (short)2, "1c636f6d7061742d6b61666b6174732d73686172652d6532633034631734764a74494f6538524e737151624d326d3977574477000000010000012c00000001001000000000000500000064000002498604ae051b4aa29d288f103af902a202000000000100000100"],
    ];

    [Theory]
    [MemberData(nameof(Requests))]
    public void RequestDecodesAndReencodesByteForByte(string name, ApiKey key, short version, string hex)
    {
        var message = LibrdkafkaGoldenTests.Decode(key, version, hex, out var bytes);
        Assert.Equal(key, (ApiKey)message.ApiKey);
        Assert.True(bytes.Length > 0, name);
        Assert.Equal(bytes, LibrdkafkaGoldenTests.Encode(message, version));
    }

    private static T Find<T>(string name) where T : IKafkaMessage
    {
        var row = Requests().Single(r => (string)r[0] == name);
        return (T)LibrdkafkaGoldenTests.Decode((ApiKey)row[1], (short)row[2], (string)row[3], out _);
    }

    [Fact]
    public void HeartbeatValues()
    {
        // Join: epoch 0 with the subscription; no rack (null).
        var join = Find<ShareGroupHeartbeatRequest>("heartbeat-join");
        Assert.Equal((Group, Member, 0, (string?)null), (join.GroupId, join.MemberId, join.MemberEpoch, join.RackId));
        Assert.Equal([Topic], join.SubscribedTopicNames!);
        // kafkats repeats the subscription on every heartbeat, not only when it changes.
        var later = Find<ShareGroupHeartbeatRequest>("heartbeat-epoch2");
        Assert.Equal(2, later.MemberEpoch);
        Assert.Equal([Topic], later.SubscribedTopicNames!);
        // Leave: epoch -1 and a null subscription.
        var leave = Find<ShareGroupHeartbeatRequest>("heartbeat-leave");
        Assert.Equal((Member, -1), (leave.MemberId, leave.MemberEpoch));
        Assert.Null(leave.SubscribedTopicNames);
    }

    [Fact]
    public void ShareFetchValues()
    {
        var open = Find<ShareFetchRequest>("fetch-open-session");
        Assert.Equal((Group, Member, 0), (open.GroupId, open.MemberId, open.ShareSessionEpoch));
        Assert.Equal((0, 0, 1 << 20), (open.MaxWaitMs, open.MinBytes, open.MaxBytes));
        Assert.Equal((5, 100), (open.MaxRecords, open.BatchSize));
        // v2's fields: batch-optimized acquisition (mode 0), not a renew-only request.
        Assert.Equal((0, false), (open.ShareAcquireMode, open.IsRenewAck));
        var topic = Assert.Single(open.Topics);
        Assert.Equal(Guid.Parse("498604ae-051b-4aa2-9d28-8f103af902a2"), topic.TopicId);
        var partition = Assert.Single(topic.Partitions);
        Assert.Equal(0, partition.PartitionIndex);
        Assert.Empty(partition.AcknowledgementBatches);
        Assert.Empty(open.ForgottenTopicsData);

        // The next fetch of the session waits up to 300 ms for at least one byte; kafkats sends its
        // acknowledgements with ShareAcknowledge, so the fetch carries none.
        var next = Find<ShareFetchRequest>("fetch-epoch1");
        Assert.Equal((1, 300, 1), (next.ShareSessionEpoch, next.MaxWaitMs, next.MinBytes));
        Assert.Empty(next.Topics.Single().Partitions.Single().AcknowledgementBatches);
    }
}
