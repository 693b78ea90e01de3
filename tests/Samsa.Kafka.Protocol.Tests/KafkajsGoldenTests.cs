using Samsa.Kafka.Protocol.Messages;
using Xunit;

namespace Samsa.Kafka.Protocol.Tests;

/// <summary>
/// Request bodies sent by kafkajs 2.2.4 (npm; hand-written JavaScript encoders) while creating,
/// growing, describing, altering and deleting topic "t3", reading and deleting records of "t",
/// producing "from-kafkajs" and consuming it in group "kgrp" — captured the same way as
/// <see cref="LibrdkafkaGoldenTests"/>, from a broker that answered from these spec files.
/// </summary>
public class KafkajsGoldenTests
{
    public static IEnumerable<object[]> Requests() =>
    [
        ["AlterConfigsRequest", ApiKey.AlterConfigs, (short)1, "00000001020002743300000001000c726574656e74696f6e2e6d7300043530303000"],
        ["ApiVersionsRequest", ApiKey.ApiVersions, (short)2, ""],
        ["CreatePartitionsRequest", ApiKey.CreatePartitions, (short)1, "000000010002743300000004ffffffff0000138800"],
        ["CreateTopicsRequest", ApiKey.CreateTopics, (short)3, "00000001000274330000000200010000000000000001000e636c65616e75702e706f6c6963790007636f6d706163740000138800"],
        ["DeleteRecordsRequest", ApiKey.DeleteRecords, (short)1, "000000010001740000000100000000000000000000000100001388"],
        ["DeleteTopicsRequest", ApiKey.DeleteTopics, (short)1, "000000010002743300001388"],
        ["DescribeConfigsRequest", ApiKey.DescribeConfigs, (short)2, "000000010200027433ffffffff00"],
        ["FetchRequest", ApiKey.Fetch, (short)11, "ffffffff000013880000000100a000000100000000ffffffff000000010001740000000100000000ffffffff0000000000000000ffffffffffffffff00100000000000000000"],
        ["FindCoordinatorRequest", ApiKey.FindCoordinator, (short)2, "00046b67727000"],
        ["HeartbeatRequest", ApiKey.Heartbeat, (short)3, "00046b6772700000000100086d656d6265722d31ffff"],
        ["JoinGroupRequest", ApiKey.JoinGroup, (short)5, "00046b677270000017700000ea600000ffff0008636f6e73756d6572000000010012526f756e64526f62696e41737369676e65720000000d00000000000100017400000000"],
        ["LeaveGroupRequest", ApiKey.LeaveGroup, (short)3, "00046b6772700000000100086d656d6265722d31ffff"],
        ["ListOffsetsRequest", ApiKey.ListOffsets, (short)3, "ffffffff01000000010001740000000100000000ffffffffffffffff"],
        ["MetadataRequest", ApiKey.Metadata, (short)6, "ffffffff00"],
        ["OffsetCommitRequest", ApiKey.OffsetCommit, (short)5, "00046b6772700000000100086d656d6265722d310000000100017400000001000000000000000000000001ffff"],
        ["OffsetFetchRequest", ApiKey.OffsetFetch, (short)4, "00046b677270000000010001740000000100000000"],
        ["ProduceRequest", ApiKey.Produce, (short)7, "ffffffff00007530000000010001740000000100000000000000510000000000000000000000450000000002a33a3a59000000000000000001a1fcc3b9c8000001a1fcc3b9c8ffffffffffffffff0000000000000000000126000000026b1866726f6d2d6b61666b616a7300"],
        ["SyncGroupRequest", ApiKey.SyncGroup, (short)3, "00046b6772700000000100086d656d6265722d31ffff0000000100086d656d6265722d3100000015000000000001000174000000010000000000000000"],
    ];

    [Theory]
    [MemberData(nameof(Requests))]
    public void RequestDecodesAndReencodesByteForByte(string name, ApiKey key, short version, string hex)
    {
        var message = LibrdkafkaGoldenTests.Decode(key, version, hex, out var bytes);
        Assert.Equal(name, message.GetType().Name);
        Assert.Equal(bytes, LibrdkafkaGoldenTests.Encode(message, version));
    }

    private static T Find<T>(string name) where T : IKafkaMessage
    {
        var row = Requests().Single(r => (string)r[0] == name);
        return (T)LibrdkafkaGoldenTests.Decode((ApiKey)row[1], (short)row[2], (string)row[3], out _);
    }

    [Fact]
    public void AdminRequestValues()
    {
        var create = Find<CreateTopicsRequest>("CreateTopicsRequest");
        var topic = Assert.Single(create.Topics);
        Assert.Equal(("t3", 2), (topic.Name, topic.NumPartitions));
        Assert.Equal("compact", Assert.Single(topic.Configs, c => c.Name == "cleanup.policy").Value);

        var deleteRecords = Find<DeleteRecordsRequest>("DeleteRecordsRequest");
        var partition = Assert.Single(Assert.Single(deleteRecords.Topics, t => t.Name == "t").Partitions);
        Assert.Equal((0, 1L), (partition.PartitionIndex, partition.Offset));

        var metadata = Find<MetadataRequest>("MetadataRequest");   // v6: null topics means all topics
        Assert.Null(metadata.Topics);
        Assert.False(metadata.AllowAutoTopicCreation);
    }

    [Fact]
    public void GroupRequestValues()
    {
        var leave = Find<LeaveGroupRequest>("LeaveGroupRequest");   // v3: batch of member identities
        var member = Assert.Single(leave.Members);
        Assert.Equal("member-1", member.MemberId);
        Assert.Null(member.GroupInstanceId);

        var commit = Find<OffsetCommitRequest>("OffsetCommitRequest");
        var committed = Assert.Single(Assert.Single(commit.Topics).Partitions);
        Assert.Equal(1, committed.CommittedOffset);
        Assert.Null(committed.CommittedMetadata);

        var join = Find<JoinGroupRequest>("JoinGroupRequest");
        var protocol = Assert.Single(join.Protocols);
        Assert.Equal("RoundRobinAssigner", protocol.Name);
        var reader = new Samsa.Kafka.Protocol.Primitives.KafkaReader(protocol.Metadata);
        short version = reader.ReadInt16();
        var subscription = ConsumerProtocolSubscription.Read(ref reader, version);
        Assert.Equal(0, reader.Remaining);
        Assert.Equal(["t"], subscription.Topics.ToArray());
    }
}
