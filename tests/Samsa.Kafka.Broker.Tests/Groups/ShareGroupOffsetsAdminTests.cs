using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Broker.Handlers;
using Samsa.Kafka.Broker.Security;
using Samsa.Kafka.Broker.Security.Acl;
using Samsa.Kafka.Broker.Tests.Handlers;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Tests.Groups;

/// <summary>AlterShareGroupOffsets (91) and DeleteShareGroupOffsets (92) v0 on one broker, through
/// a wire round trip: what an admin sees (the reset start offset in DescribeShareGroupOffsets, where
/// the next share fetch starts) and the errors (non-empty group, other group type, unknown topic,
/// ACLs).</summary>
public class ShareGroupOffsetsAdminTests
{
    private static async Task<ShareGroupHeartbeatResponse> Heartbeat(HandlerFixture f, string group, string member, int epoch, params string[] topics) =>
        (await f.Send<ShareGroupHeartbeatResponse>(new ShareGroupHeartbeatRequest
        {
            GroupId = group, MemberId = member, MemberEpoch = epoch, SubscribedTopicNames = topics.Length > 0 ? [.. topics] : null,
        }, 1))!;

    private static async Task<List<long>> FetchOffsets(HandlerFixture f, string group, string member, Guid topicId, int partition)
    {
        var r = (await f.Send<ShareFetchResponse>(new ShareFetchRequest
        {
            GroupId = group, MemberId = member, ShareSessionEpoch = 0, MaxWaitMs = 0, MinBytes = 1, MaxBytes = 1 << 20, MaxRecords = 100, BatchSize = 100,
            Topics = [new ShareFetchRequest.FetchTopic { TopicId = topicId, Partitions = [new ShareFetchRequest.FetchPartition { PartitionIndex = partition }] }],
        }, 2))!;
        Assert.Equal(0, r.ErrorCode);
        return r.Responses[0].Partitions[0].AcquiredRecords.SelectMany(a => Enumerable.Range(0, (int)(a.LastOffset - a.FirstOffset + 1)).Select(i => a.FirstOffset + i)).ToList();
    }

    private static async Task<DescribeShareGroupOffsetsResponse.DescribeShareGroupOffsetsResponsePartition> Describe(HandlerFixture f, string group, string topic, int partition) =>
        (await f.Send<DescribeShareGroupOffsetsResponse>(new DescribeShareGroupOffsetsRequest
        {
            Groups = [new DescribeShareGroupOffsetsRequest.DescribeShareGroupOffsetsRequestGroup
            {
                GroupId = group, Topics = [new DescribeShareGroupOffsetsRequest.DescribeShareGroupOffsetsRequestTopic { TopicName = topic, Partitions = [partition] }],
            }],
        }, 1))!.Groups[0].Topics[0].Partitions[0];

    private static AlterShareGroupOffsetsRequest Alter(string group, params (string Topic, int Partition, long Offset)[] offsets) => new()
    {
        GroupId = group,
        Topics = offsets.GroupBy(o => o.Topic).Select(g => new AlterShareGroupOffsetsRequest.AlterShareGroupOffsetsRequestTopic
        {
            TopicName = g.Key,
            Partitions = g.Select(o => new AlterShareGroupOffsetsRequest.AlterShareGroupOffsetsRequestPartition { PartitionIndex = o.Partition, StartOffset = o.Offset }).ToList(),
        }).ToList(),
    };

    private static DeleteShareGroupOffsetsRequest Delete(string group, params string[] topics) => new()
    {
        GroupId = group,
        Topics = topics.Select(t => new DeleteShareGroupOffsetsRequest.DeleteShareGroupOffsetsRequestTopic { TopicName = t }).ToList(),
    };

    [Fact]
    public async Task AlterMovesTheStartOffsetOfAnEmptyGroupAndTheNextFetchStartsThere()
    {
        await using var f = new HandlerFixture(("offsets.topic.replication.factor", "1"), ("share.auto.offset.reset", "earliest"));
        await f.CreateTopic("t", 2);
        var topicId = f.Broker.Replicas.GetTopic("t")!.Id;
        await f.Produce("t", 0, HandlerFixture.Batch("a", "b", "c", "d", "e"));
        Assert.Equal([0L, 1, 2, 3, 4], await FetchOffsets(f, "g", "m1", topicId, 0));

        // A member is in the group: refused as a whole.
        Assert.Equal(0, (await Heartbeat(f, "g", "m1", 0, "t")).ErrorCode);
        var busy = (await f.Send<AlterShareGroupOffsetsResponse>(Alter("g", ("t", 0, 3)), 0))!;
        Assert.Equal((short)ErrorCode.NonEmptyGroup, busy.ErrorCode);
        Assert.Empty(busy.Responses);
        Assert.Equal(0, (await Describe(f, "g", "t", 0)).StartOffset);

        // Once it left: per-partition results.
        Assert.Equal(-1, (await Heartbeat(f, "g", "m1", -1)).MemberEpoch);
        var r = (await f.Send<AlterShareGroupOffsetsResponse>(Alter("g", ("t", 0, 3), ("t", 7, 0), ("t", 1, -5), ("nope", 0, 0)), 0))!;
        Assert.Equal(0, r.ErrorCode);
        var t = r.Responses.Single(x => x.TopicName == "t");
        Assert.Equal(topicId, t.TopicId);
        Assert.Equal([(0, (short)0), (7, (short)ErrorCode.UnknownTopicOrPartition), (1, (short)ErrorCode.InvalidRequest)],
            t.Partitions.Select(p => (p.PartitionIndex, p.ErrorCode)).ToList());
        var nope = r.Responses.Single(x => x.TopicName == "nope");
        Assert.Equal((Guid.Empty, (short)ErrorCode.UnknownTopicOrPartition), (nope.TopicId, nope.Partitions[0].ErrorCode));

        // The records acquired before are forgotten: the share-partition starts over at 3.
        var d = await Describe(f, "g", "t", 0);
        Assert.Equal((3L, 2L), (d.StartOffset, d.Lag));
        Assert.Equal([3L, 4], await FetchOffsets(f, "g", "m2", topicId, 0));
        Assert.Equal((short)1, f.Broker.Shares.Find("g", topicId, 0)!.StateOf(3)!.Value.DeliveryCount);
    }

    [Fact]
    public async Task AlterCreatesAnUnknownShareGroupButNotOverAnotherGroupType()
    {
        await using var f = new HandlerFixture(("offsets.topic.replication.factor", "1"));
        await f.CreateTopic("t", 1);
        await f.Produce("t", 0, HandlerFixture.Batch("a", "b", "c"));
        var r = (await f.Send<AlterShareGroupOffsetsResponse>(Alter("fresh", ("t", 0, 1)), 0))!;
        Assert.Equal(0, r.ErrorCode);
        Assert.Equal(0, r.Responses[0].Partitions[0].ErrorCode);
        Assert.True(f.Broker.Shares.IsShareGroup("fresh"));
        // DescribeShareGroupOffsets with null topics lists the altered topic.
        var all = (await f.Send<DescribeShareGroupOffsetsResponse>(new DescribeShareGroupOffsetsRequest
        {
            Groups = [new DescribeShareGroupOffsetsRequest.DescribeShareGroupOffsetsRequestGroup { GroupId = "fresh", Topics = null }],
        }, 1))!.Groups[0];
        Assert.Equal((1L, 2L), (all.Topics.Single().Partitions.Single().StartOffset, all.Topics[0].Partitions[0].Lag));

        var cg = await f.Send<ConsumerGroupHeartbeatResponse>(new ConsumerGroupHeartbeatRequest
        {
            GroupId = "cg", MemberId = Guid.NewGuid().ToString(), MemberEpoch = 0, RebalanceTimeoutMs = 10_000, SubscribedTopicNames = ["t"], TopicPartitions = [],
        }, 1);
        Assert.Equal(0, cg!.ErrorCode);
        var other = (await f.Send<AlterShareGroupOffsetsResponse>(Alter("cg", ("t", 0, 1)), 0))!;
        Assert.Equal((short)ErrorCode.GroupIdNotFound, other.ErrorCode);
        Assert.Equal("Group cg is not a share group.", other.ErrorMessage);
        Assert.False(f.Broker.Shares.IsShareGroup("cg"));
        var otherDelete = (await f.Send<DeleteShareGroupOffsetsResponse>(Delete("cg", "t"), 0))!;
        Assert.Equal((short)ErrorCode.GroupIdNotFound, otherDelete.ErrorCode);
    }

    [Fact]
    public async Task DeleteForgetsTheStateOfEveryPartitionOfTheTopic()
    {
        var dir = Path.Combine(Path.GetTempPath(), "samsa-share-delete-" + Guid.NewGuid().ToString("N"));
        var props = new Dictionary<string, string>
        {
            ["broker.id"] = "1", ["log.dirs"] = dir, ["offsets.topic.replication.factor"] = "1", ["share.auto.offset.reset"] = "earliest",
        };
        try
        {
            await using var broker = new KafkaBroker(new BrokerConfig(props));
            var f = new HandlerFixture(broker);
            await f.CreateTopic("t", 2);
            var topicId = broker.Replicas.GetTopic("t")!.Id;
            await f.Produce("t", 0, HandlerFixture.Batch("a", "b", "c"));
            await f.Produce("t", 1, HandlerFixture.Batch("x", "y"));
            Assert.Equal(0, (await Heartbeat(f, "g", "m", 0, "t")).ErrorCode);
            Assert.Equal((short)ErrorCode.NonEmptyGroup, (await f.Send<AlterShareGroupOffsetsResponse>(Alter("g", ("t", 0, 0)), 0))!.ErrorCode);
            Assert.Equal((short)ErrorCode.NonEmptyGroup, (await f.Send<DeleteShareGroupOffsetsResponse>(Delete("g", "t"), 0))!.ErrorCode);
            Assert.Equal([0L, 1, 2], await FetchOffsets(f, "g", "m", topicId, 0));
            Assert.Equal([0L, 1], await FetchOffsets(f, "g", "m2", topicId, 1));
            await broker.Shares.FlushAsync();
            Assert.Equal(2, broker.Shares.PartitionsOf("g").Count);
            Assert.Equal(-1, (await Heartbeat(f, "g", "m", -1)).MemberEpoch);

            var r = (await f.Send<DeleteShareGroupOffsetsResponse>(Delete("g", "t", "nope"), 0))!;
            Assert.Equal(0, r.ErrorCode);
            Assert.Equal([("t", topicId, (short)0), ("nope", Guid.Empty, (short)ErrorCode.UnknownTopicOrPartition)],
                r.Responses.Select(x => (x.TopicName, x.TopicId, x.ErrorCode)).ToList());
            // Gone from memory and from the share coordinator: Describe says never started, and a new consumer starts from
            // share.auto.offset.reset again (the acquired records are offered anew with delivery 1).
            Assert.Empty(broker.Shares.PartitionsOf("g"));
            Assert.Equal((-1L, -1L), ((await Describe(f, "g", "t", 0)).StartOffset, (await Describe(f, "g", "t", 0)).Lag));
            Assert.Equal([0L, 1, 2], await FetchOffsets(f, "g", "m3", topicId, 0));
            Assert.Equal((short)1, broker.Shares.Find("g", topicId, 0)!.StateOf(0)!.Value.DeliveryCount);

            Assert.Equal((short)ErrorCode.GroupIdNotFound, (await f.Send<DeleteShareGroupOffsetsResponse>(Delete("unknown", "t"), 0))!.ErrorCode);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task AclsAreGroupReadOrDeleteAndTopicRead()
    {
        var props = new Dictionary<string, string>
        {
            ["broker.id"] = "1", ["offsets.topic.replication.factor"] = "1",
            ["authorizer.class.name"] = "kafka.security.authorizer.AclAuthorizer", ["super.users"] = "User:admin",
        };
        await using var broker = new KafkaBroker(new BrokerConfig(props), inMemory: true);
        broker.SetAdvertisedEndpointForTests("127.0.0.1", 9092);
        var admin = KafkaPrincipal.User("admin");
        var alice = KafkaPrincipal.User("alice");
        Assert.Equal(0, (await Send<CreateTopicsResponse>(broker, new CreateTopicsRequest
        {
            Topics = [new CreateTopicsRequest.CreatableTopic { Name = "t", NumPartitions = 1, ReplicationFactor = 1 },
                      new CreateTopicsRequest.CreatableTopic { Name = "secret", NumPartitions = 1, ReplicationFactor = 1 }],
        }, 7, admin)).Topics[0].ErrorCode);

        // No GROUP READ: a group-wide error.
        Assert.Equal((short)ErrorCode.GroupAuthorizationFailed, (await Send<AlterShareGroupOffsetsResponse>(broker, Alter("g", ("t", 0, 0)), 0, alice)).ErrorCode);
        Assert.Equal((short)ErrorCode.GroupAuthorizationFailed, (await Send<DeleteShareGroupOffsetsResponse>(broker, Delete("g", "t"), 0, alice)).ErrorCode);

        await Grant(broker, admin, (ResourceType.Group, "g", AclOperation.Read), (ResourceType.Topic, "t", AclOperation.Read));
        var r = await Send<AlterShareGroupOffsetsResponse>(broker, Alter("g", ("t", 0, 0), ("secret", 0, 0)), 0, alice);
        Assert.Equal(0, r.ErrorCode);
        Assert.Equal([("t", (short)0), ("secret", (short)ErrorCode.TopicAuthorizationFailed)],
            r.Responses.Select(x => (x.TopicName, x.Partitions[0].ErrorCode)).ToList());
        // GROUP READ is not enough to delete: DELETE, as OffsetDelete.
        Assert.Equal((short)ErrorCode.GroupAuthorizationFailed, (await Send<DeleteShareGroupOffsetsResponse>(broker, Delete("g", "t"), 0, alice)).ErrorCode);
        await Grant(broker, admin, (ResourceType.Group, "g", AclOperation.Delete));
        var d = await Send<DeleteShareGroupOffsetsResponse>(broker, Delete("g", "t", "secret"), 0, alice);
        Assert.Equal(0, d.ErrorCode);
        Assert.Equal([("t", (short)0), ("secret", (short)ErrorCode.TopicAuthorizationFailed)], d.Responses.Select(x => (x.TopicName, x.ErrorCode)).ToList());
    }

    private static async Task Grant(KafkaBroker b, KafkaPrincipal admin, params (ResourceType Type, string Name, AclOperation Op)[] acls)
    {
        var r = await Send<CreateAclsResponse>(b, new CreateAclsRequest
        {
            Creations = acls.Select(a => new CreateAclsRequest.AclCreation
            {
                ResourceType = (sbyte)a.Type, ResourceName = a.Name, ResourcePatternType = (sbyte)PatternType.Literal, Principal = "User:alice",
                Host = "*", Operation = (sbyte)a.Op, PermissionType = (sbyte)AclPermissionType.Allow,
            }).ToList(),
        }, 3, admin);
        Assert.All(r.Results, x => Assert.Equal(0, x.ErrorCode));
    }

    private static async Task<T> Send<T>(KafkaBroker broker, IKafkaMessage request, short version, KafkaPrincipal principal) where T : class, IKafkaMessage<T>
    {
        var header = new RequestHeader { RequestApiKey = request.ApiKey, RequestApiVersion = version, CorrelationId = 7, ClientId = "test" };
        short hv = ApiMessages.RequestHeaderVersion(request.ApiKey, version);
        var frame = new byte[header.Size(hv) + request.Size(version)];
        var w = new Samsa.Kafka.Protocol.Primitives.KafkaWriter(frame);
        header.Write(ref w, hv);
        request.Write(ref w, version);
        var (parsedHeader, parsed, error) = Network.KafkaConnectionHandler.Parse(frame);
        Assert.Null(error);
        var context = new RequestContext { Header = parsedHeader!, Broker = broker, Session = ConnectionSession.ForTests(principal) };
        var response = await ApiTable.Find(request.ApiKey)!.Handler(context, parsed!);
        var bytes = Network.KafkaConnectionHandler.Serialize(header, response!, version, out int length);
        return KafkaWireClient.Decode<T>(bytes[..length], request.ApiKey, version, 7)!;
    }
}
