using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Primitives;
using Xunit;

namespace Samsa.Kafka.Protocol.Tests;

/// <summary>
/// The versions added for Kafka 4.2's client table, in bytes that do not come from our generator:
/// requests librdkafka 2.16 (Confluent.Kafka 2.16.0) sent to Samsa, captured by
/// tests/Samsa.Kafka.Broker.Client216Tests WireCaptureTests (librdkafka 2.16 speaks ApiVersions v3,
/// Metadata v13, Produce v10 and Fetch v16 at most), and bodies assembled by hand from the upstream
/// 4.2 schemas' field order. Each decodes completely and re-encodes byte for byte.
/// </summary>
public class Kafka42GoldenTests
{
    private static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", ""));

    private static T Decode<T>(ApiKey key, short version, byte[] bytes, bool request = true) where T : IKafkaMessage
    {
        var reader = new KafkaReader(bytes);
        var message = request ? ApiMessages.ReadRequest(key, ref reader, version) : ApiMessages.ReadResponse(key, ref reader, version);
        Assert.Equal(0, reader.Remaining);
        var again = new byte[message.Size(version)];
        var writer = new KafkaWriter(again);
        message.Write(ref writer, version);
        Assert.Equal(bytes, again);
        return Assert.IsType<T>(message);
    }

    // --- captured from librdkafka 2.16.0 (Confluent.Kafka 2.16.0), admin client GetMetadata ---

    [Fact]
    public void Librdkafka216ApiVersionsV3()
    {
        var r = Decode<ApiVersionsRequest>(ApiKey.ApiVersions, 3,
            Hex("17 636f6e666c75656e742d6b61666b612d646f746e6574 07 322e31362e30 00"));
        Assert.Equal(("confluent-kafka-dotnet", "2.16.0"), (r.ClientSoftwareName, r.ClientSoftwareVersion));
    }

    [Fact]
    public void Librdkafka216MetadataV13()
    {
        var r = Decode<MetadataRequest>(ApiKey.Metadata, 13,
            Hex("02 00000000000000000000000000000000 12 776972652d326634376637653862633161 00 01 00 00"));
        var t = Assert.Single(r.Topics!);
        Assert.Equal(("wire-2f47f7e8bc1a", Guid.Empty), (t.Name, t.TopicId));
        Assert.True(r.AllowAutoTopicCreation);
        Assert.False(r.IncludeTopicAuthorizedOperations);
    }

    // --- captured from librdkafka 2.16.0 (Confluent.Kafka 2.16.0), a GroupProtocol = Consumer
    // consumer through a proxy its broker advertised (WireCaptureTests): join, the heartbeat that
    // acknowledges the assignment, leave ---

    [Fact]
    public void Librdkafka216ConsumerGroupHeartbeatV1JoinAckLeave()
    {
        var join = Decode<ConsumerGroupHeartbeatRequest>(ApiKey.ConsumerGroupHeartbeat, 1, Hex("0e776972652d6b69703834382d67176479664e43774756516e4b733935476f334456703541000000000000000493e0020c776972652d6b697038343801000100"));
        Assert.Equal(("wire-kip848-g", "dyfNCwGVQnKs95Go3DVp5A", 0), (join.GroupId, join.MemberId, join.MemberEpoch));
        Assert.Equal(300000, join.RebalanceTimeoutMs);
        Assert.Equal(["wire-kip848"], join.SubscribedTopicNames!);
        Assert.Equal("", join.SubscribedTopicRegex);   // librdkafka sends an empty regex, not null
        Assert.Null(join.ServerAssignor);
        Assert.Empty(join.TopicPartitions!);

        var ack = Decode<ConsumerGroupHeartbeatRequest>(ApiKey.ConsumerGroupHeartbeat, 1, Hex("0e776972652d6b69703834382d67176479664e43774756516e4b733935476f334456703541000000010000ffffffff00000002180df5078034445487d7ef2648e238cb0300000000000000010000"));
        Assert.Equal(1, ack.MemberEpoch);
        Assert.Equal(-1, ack.RebalanceTimeoutMs);      // unchanged fields are left out
        Assert.Null(ack.SubscribedTopicNames);
        var owned = Assert.Single(ack.TopicPartitions!);
        Assert.Equal([0, 1], owned.Partitions);

        var leave = Decode<ConsumerGroupHeartbeatRequest>(ApiKey.ConsumerGroupHeartbeat, 1, Hex("0e776972652d6b69703834382d67176479664e43774756516e4b733935476f334456703541ffffffff0000ffffffff0000000000"));
        Assert.Equal((-1, "dyfNCwGVQnKs95Go3DVp5A"), (leave.MemberEpoch, leave.MemberId));
    }

    // --- assembled by hand from the 4.2 schemas ---

    private const string TopicIdHex = "0102030405060708090a0b0c0d0e0f10";
    private static readonly Guid TopicId = UuidOf(TopicIdHex);

    /// <summary>Kafka's uuid is two big-endian int64s; read it the way the codec documents it.</summary>
    private static Guid UuidOf(string hex)
    {
        var reader = new KafkaReader(Hex(hex));
        return reader.ReadUuid();
    }

    [Fact]
    public void ProduceV13RequestNamesTheTopicById()
    {
        // transactional_id null, acks -1, timeout 30000, one topic by id, partition 2, 3 record bytes.
        var r = Decode<ProduceRequest>(ApiKey.Produce, 13, Hex(
            "00 ffff 00007530 02 " + TopicIdHex + " 02 00000002 04 aabbcc 00 00 00"));
        var t = Assert.Single(r.TopicData);
        Assert.Equal(TopicId, t.TopicId);
        Assert.Equal("", t.Name);
        Assert.Equal(2, t.PartitionData.Single().Index);
    }

    [Fact]
    public void ProduceV13ResponseAnswersByTopicId()
    {
        // one topic by id; partition 2: error 100 (UNKNOWN_TOPIC_ID), base offset -1,
        // log append time -1, log start -1, no record errors, null message; throttle 0.
        var r = Decode<ProduceResponse>(ApiKey.Produce, 13, Hex(
            "02 " + TopicIdHex + " 02 00000002 0064 ffffffffffffffff ffffffffffffffff ffffffffffffffff 01 00 00 00 00000000 00"),
            request: false);
        Assert.Equal(TopicId, r.Responses.Single().TopicId);
        Assert.Equal(100, r.Responses[0].PartitionResponses.Single().ErrorCode);
    }

    [Fact]
    public void FetchV18RequestCarriesTheFollowerHighWatermarkAsTag1()
    {
        // replica_id is gone since v15; max_wait 500, min 1, max 1 MiB, isolation 0, session 0/-1;
        // one topic by id, partition 0: leader epoch -1, offset 5, last fetched epoch -1, log start -1,
        // partition max 1 MiB, then the partition's tagged fields: one field, tag 1, 8 bytes, 42.
        var r = Decode<FetchRequest>(ApiKey.Fetch, 18, Hex(
            "000001f4 00000001 00100000 00 00000000 ffffffff 02 " + TopicIdHex +
            " 02 00000000 ffffffff 0000000000000005 ffffffff ffffffffffffffff 00100000 01 01 08 000000000000002a" +
            " 00 01 01 00"));
        var p = r.Topics.Single().Partitions.Single();
        Assert.Equal((5L, 42L), (p.FetchOffset, p.HighWatermark));
        Assert.Equal(long.MaxValue, new FetchRequest.FetchPartition().HighWatermark);
    }

    [Fact]
    public void MetadataV13ResponseEndsWithTheTopLevelErrorCode()
    {
        // throttle 0, no brokers, cluster id null, controller -1, no topics, error 8 (BROKER_NOT_AVAILABLE
        // as a stand-in for any code), no tagged fields.
        var r = Decode<MetadataResponse>(ApiKey.Metadata, 13, Hex("00000000 01 00 ffffffff 01 0008 00"), request: false);
        Assert.Equal(8, r.ErrorCode);
        Assert.Null(r.ClusterId);
    }

    [Fact]
    public void DescribeClusterV2AsksForFencedBrokersAndFlagsThem()
    {
        var q = Decode<DescribeClusterRequest>(ApiKey.DescribeCluster, 2, Hex("00 01 01 00"));
        Assert.Equal((false, (sbyte)1, true), (q.IncludeClusterAuthorizedOperations, q.EndpointType, q.IncludeFencedBrokers));
        // throttle 0, error 0, message null, endpoint type 1, cluster "c", controller 2, one broker
        // (id 2, "h", 9092, rack null, fenced), cluster operations INT32_MIN.
        var r = Decode<DescribeClusterResponse>(ApiKey.DescribeCluster, 2, Hex(
            "00000000 0000 00 01 0263 00000002 02 00000002 0268 00002384 00 01 00 80000000 00"), request: false);
        Assert.True(r.Brokers.Single().IsFenced);
    }

    [Fact]
    public void AlterPartitionReassignmentsV1CarriesAllowReplicationFactorChange()
    {
        // timeout 60000, allow false, topic "t", partition 0 -> replicas [1, 2].
        var q = Decode<AlterPartitionReassignmentsRequest>(ApiKey.AlterPartitionReassignments, 1, Hex(
            "0000ea60 00 02 0274 02 00000000 03 00000001 00000002 00 00 00"));
        Assert.False(q.AllowReplicationFactorChange);
        // throttle 0, allow false, error 0, message null, no topics.
        var r = Decode<AlterPartitionReassignmentsResponse>(ApiKey.AlterPartitionReassignments, 1, Hex("00000000 00 0000 00 01 00"), request: false);
        Assert.False(r.AllowReplicationFactorChange);
    }

    [Fact]
    public void ApiVersionsV4ResponseCarriesTheFeatureTags()
    {
        // error 0, one api (18: 0-4), throttle 0, then tags 0 SupportedFeatures [group.version 0-1],
        // 1 FinalizedFeaturesEpoch 0, 2 FinalizedFeatures [group.version max 1 min 1].
        var r = Decode<ApiVersionsResponse>(ApiKey.ApiVersions, 4, Hex(
            "0000 02 0012 0000 0004 00 00000000 03" +
            " 00 14 02 0e67726f75702e76657273696f6e 0000 0001 00" +
            " 01 08 0000000000000000" +
            " 02 14 02 0e67726f75702e76657273696f6e 0001 0001 00"), request: false);
        Assert.Equal(("group.version", (short)0, (short)1), (r.SupportedFeatures.Single().Name, r.SupportedFeatures[0].MinVersion, r.SupportedFeatures[0].MaxVersion));
        Assert.Equal(0, r.FinalizedFeaturesEpoch);
        Assert.Equal((short)1, r.FinalizedFeatures.Single().MaxVersionLevel);
    }
}
