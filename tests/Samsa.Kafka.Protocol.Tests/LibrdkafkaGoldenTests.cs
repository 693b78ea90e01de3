using System.Buffers.Binary;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Primitives;
using Xunit;

namespace Samsa.Kafka.Protocol.Tests;

/// <summary>
/// Request bodies sent by librdkafka 2.0.2 (kcat 1.7.1 and confluent-kafka-python 1.7.0, the
/// Debian packages) while listing metadata, producing "hello"/"world" with key "key1" to topic
/// "t", consuming it in group "grp1" and committing offset 2, and creating, growing, describing,
/// altering and deleting topic "t2". They were captured from a throw-away Python broker that
/// answered from these same spec files, so librdkafka also accepted the responses built from them.
/// Each body must decode completely and re-encode byte for byte; key values are checked too.
/// </summary>
public class LibrdkafkaGoldenTests
{
    public static IEnumerable<object[]> Requests() =>
    [
        ["AlterConfigsRequest", ApiKey.AlterConfigs, (short)0, "00000001020002743200000001000c726574656e74696f6e2e6d7300043230303000"],
        ["ApiVersionsRequest", ApiKey.ApiVersions, (short)3, "0b6c696272646b61666b6106322e302e3200"],
        ["CreatePartitionsRequest", ApiKey.CreatePartitions, (short)0, "000000010002743200000005ffffffff0000ea6000"],
        ["CreateTopicsRequest", ApiKey.CreateTopics, (short)4, "00000001000274320000000300010000000000000001000c726574656e74696f6e2e6d730004313030300000ea6000"],
        ["DeleteTopicsRequest", ApiKey.DeleteTopics, (short)1, "00000001000274320000ea60"],
        ["DescribeConfigsRequest", ApiKey.DescribeConfigs, (short)1, "000000010200027432ffffffff01"],
        ["FetchRequest", ApiKey.Fetch, (short)11, "ffffffff000001f400000001032000000100000000ffffffff000000010001740000000100000000ffffffff0000000000000000ffffffffffffffff00100000000000000000"],
        ["FindCoordinatorRequest", ApiKey.FindCoordinator, (short)2, "00046772703100"],
        ["HeartbeatRequest", ApiKey.Heartbeat, (short)3, "0004677270310000000100086d656d6265722d31ffff"],
        ["JoinGroupRequest", ApiKey.JoinGroup, (short)5, "00046772703100001770000493e00000ffff0008636f6e73756d657200000002000572616e6765000000110001000000010001740000000000000000000a726f756e64726f62696e000000110001000000010001740000000000000000"],
        ["LeaveGroupRequest", ApiKey.LeaveGroup, (short)1, "00046772703100086d656d6265722d31"],
        ["ListOffsetsRequest", ApiKey.ListOffsets, (short)2, "ffffffff01000000010001740000000100000000fffffffffffffffe"],
        ["MetadataRequest", ApiKey.Metadata, (short)4, "0000000100017401"],
        ["OffsetCommitRequest", ApiKey.OffsetCommit, (short)7, "0004677270310000000100086d656d6265722d31ffff0000000100017400000001000000000000000000000002ffffffff0000"],
        ["OffsetFetchRequest", ApiKey.OffsetFetch, (short)7, "05677270310202740200000000000100"],
        ["ProduceRequest", ApiKey.Produce, (short)7, "ffffffff000075300000000100017400000001000000000000005d0000000000000000000000510000000002d5d21172000000000001000001a1fcc1cdde000001a1fcc1cddeffffffffffffffffffffffffffff000000021e000000086b6579310a68656c6c6f001e000002086b6579310a776f726c6400"],
        ["SyncGroupRequest", ApiKey.SyncGroup, (short)3, "0004677270310000000100086d656d6265722d31ffff0000000100086d656d6265722d3100000015000000000001000174000000010000000000000000"],
    ];

    internal static IKafkaMessage Decode(ApiKey key, short version, string hex, out byte[] bytes)
    {
        bytes = Convert.FromHexString(hex);
        var reader = new KafkaReader(bytes);
        var message = ApiMessages.ReadRequest(key, ref reader, version);
        Assert.Equal(0, reader.Remaining);
        return message;
    }

    internal static byte[] Encode(IKafkaMessage message, short version)
    {
        var buffer = new byte[message.Size(version)];
        var writer = new KafkaWriter(buffer);
        message.Write(ref writer, version);
        return buffer;
    }

    [Theory]
    [MemberData(nameof(Requests))]
    public void RequestDecodesAndReencodesByteForByte(string name, ApiKey key, short version, string hex)
    {
        var message = Decode(key, version, hex, out var bytes);
        Assert.Equal(name, message.GetType().Name);
        Assert.Equal(bytes, Encode(message, version));
    }

    private static T Find<T>(string name) where T : IKafkaMessage
    {
        var row = Requests().Single(r => (string)r[0] == name);
        return (T)Decode((ApiKey)row[1], (short)row[2], (string)row[3], out _);
    }

    [Fact]
    public void ApiVersionsV3NamesTheClient()
    {
        var request = Find<ApiVersionsRequest>("ApiVersionsRequest");
        Assert.Equal("librdkafka", request.ClientSoftwareName);
        Assert.Equal("2.0.2", request.ClientSoftwareVersion);
    }

    [Fact]
    public void ProduceCarriesTheRecordBatchUntouched()
    {
        var request = Find<ProduceRequest>("ProduceRequest");
        Assert.Null(request.TransactionalId);
        Assert.Equal(-1, request.Acks);
        var partition = Assert.Single(Assert.Single(request.TopicData, t => t.Name == "t").PartitionData);
        Assert.Equal(0, partition.Index);
        var batch = partition.Records!.Value.Span;
        Assert.Equal(2, batch[16]);                        // record batch magic v2
        Assert.Equal(1, BinaryPrimitives.ReadInt32BigEndian(batch.Slice(23, 4)));  // last offset delta: two records
    }

    [Fact]
    public void ConsumerGroupFlowValues()
    {
        var join = Find<JoinGroupRequest>("JoinGroupRequest");
        Assert.Equal("grp1", join.GroupId);
        Assert.Equal("consumer", join.ProtocolType);
        Assert.Equal(["range", "roundrobin"], join.Protocols.Select(p => p.Name).ToArray());

        // The protocol metadata is an int16 version, then a ConsumerProtocolSubscription body.
        var metadata = join.Protocols[0].Metadata;
        var subReader = new KafkaReader(metadata);
        short subVersion = subReader.ReadInt16();
        Assert.Equal(1, subVersion);
        var subscription = ConsumerProtocolSubscription.Read(ref subReader, subVersion);
        Assert.Equal(0, subReader.Remaining);
        Assert.Equal(["t"], subscription.Topics.ToArray());
        Assert.Empty(subscription.OwnedPartitions);

        var sync = Find<SyncGroupRequest>("SyncGroupRequest");
        var assignmentBytes = Assert.Single(sync.Assignments, a => a.MemberId == "member-1").Assignment;
        var asReader = new KafkaReader(assignmentBytes);
        short asVersion = asReader.ReadInt16();
        var assignment = ConsumerProtocolAssignment.Read(ref asReader, asVersion);
        Assert.Equal(0, asReader.Remaining);
        var tp = Assert.Single(assignment.AssignedPartitions);
        Assert.Equal("t", tp.Topic);
        Assert.Equal([0], tp.Partitions.ToArray());

        var commit = Find<OffsetCommitRequest>("OffsetCommitRequest");
        Assert.Equal("grp1", commit.GroupId);
        Assert.Equal(1, commit.GenerationIdOrMemberEpoch);
        Assert.Equal(2, Assert.Single(Assert.Single(commit.Topics).Partitions).CommittedOffset);

        var fetchOffsets = Find<OffsetFetchRequest>("OffsetFetchRequest");   // v7: flexible, RequireStable
        Assert.True(fetchOffsets.RequireStable);
        Assert.Equal([0], Assert.Single(fetchOffsets.Topics!).PartitionIndexes.ToArray());
    }

    [Fact]
    public void AdminRequestValues()
    {
        var create = Find<CreateTopicsRequest>("CreateTopicsRequest");
        var topic = Assert.Single(create.Topics);
        Assert.Equal(("t2", 3, (short)1), (topic.Name, topic.NumPartitions, topic.ReplicationFactor));
        Assert.Equal("1000", Assert.Single(topic.Configs, c => c.Name == "retention.ms").Value);

        var grow = Find<CreatePartitionsRequest>("CreatePartitionsRequest");
        Assert.Equal(5, Assert.Single(grow.Topics).Count);
        Assert.Null(grow.Topics[0].Assignments);

        var describe = Find<DescribeConfigsRequest>("DescribeConfigsRequest");
        Assert.Null(Assert.Single(describe.Resources).ConfigurationKeys);
        Assert.True(describe.IncludeSynonyms);

        var delete = Find<DeleteTopicsRequest>("DeleteTopicsRequest");
        Assert.Equal(["t2"], delete.TopicNames.ToArray());
    }
}
