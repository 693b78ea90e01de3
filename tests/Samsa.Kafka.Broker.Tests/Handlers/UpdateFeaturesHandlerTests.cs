using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Broker.Handlers;
using Samsa.Kafka.Broker.Security;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Tests.Handlers;

/// <summary>UpdateFeatures (57) on one broker (its own controller): levels change what ApiVersions
/// reports and what the broker serves; invalid updates change nothing (Kafka 4.x all-or-nothing,
/// INVALID_UPDATE_VERSION); the levels survive a restart.</summary>
public class UpdateFeaturesHandlerTests
{
    private static UpdateFeaturesRequest Request(bool validateOnly = false, params (string Feature, short Level, sbyte Type)[] updates) => new()
    {
        ValidateOnly = validateOnly,
        FeatureUpdates = updates.Select(u => new UpdateFeaturesRequest.FeatureUpdateKey { Feature = u.Feature, MaxVersionLevel = u.Level, UpgradeType = u.Type }).ToList(),
    };

    private static async Task<(SortedDictionary<string, short> Levels, long Epoch)> Finalized(HandlerFixture f)
    {
        var r = (await f.Send<ApiVersionsResponse>(new ApiVersionsRequest { ClientSoftwareName = "t", ClientSoftwareVersion = "1" }, 4))!;
        Assert.All(r.FinalizedFeatures, x => Assert.Equal(x.MinVersionLevel, x.MaxVersionLevel));
        return (new SortedDictionary<string, short>(r.FinalizedFeatures.ToDictionary(x => x.Name, x => x.MaxVersionLevel), StringComparer.Ordinal), r.FinalizedFeaturesEpoch);
    }

    private static string Show((SortedDictionary<string, short> Levels, long Epoch) f) =>
        string.Join(",", f.Levels.Select(kv => $"{kv.Key}={kv.Value}")) + "@" + f.Epoch;

    [Fact]
    public async Task DisablingGroupVersionTurnsOffKip848AndRaisingItTurnsItBackOn()
    {
        await using var f = new HandlerFixture(("offsets.topic.replication.factor", "1"));
        var (before, epoch0) = await Finalized(f);
        Assert.Equal(1, before["group.version"]);

        var down = (await f.Send<UpdateFeaturesResponse>(Request(false, ("group.version", 0, 2)), 2))!;
        Assert.Equal((0, null), (down.ErrorCode, down.ErrorMessage));
        Assert.Empty(down.Results);   // v2: no per-feature results
        var (after, epoch1) = await Finalized(f);
        Assert.False(after.ContainsKey("group.version"));
        Assert.Equal(epoch0 + 1, epoch1);
        Assert.Equal(before["transaction.version"], after["transaction.version"]);

        var hb = (await f.Send<ConsumerGroupHeartbeatResponse>(new ConsumerGroupHeartbeatRequest
        {
            GroupId = "g", MemberId = Guid.NewGuid().ToString("N")[..22], MemberEpoch = 0, RebalanceTimeoutMs = 30000,
            SubscribedTopicNames = ["t"], TopicPartitions = [],
        }, 1))!;
        Assert.Equal((short)ErrorCode.UnsupportedVersion, hb.ErrorCode);
        var describe = (await f.Send<ConsumerGroupDescribeResponse>(new ConsumerGroupDescribeRequest { GroupIds = ["g"] }, 1))!;
        Assert.Equal((short)ErrorCode.UnsupportedVersion, describe.Groups.Single().ErrorCode);

        // v1 answers per feature.
        var up = (await f.Send<UpdateFeaturesResponse>(Request(false, ("group.version", 1, 1)), 1))!;
        Assert.Equal(0, up.ErrorCode);
        Assert.Equal(("group.version", (short)0), (up.Results.Single().Feature, up.Results.Single().ErrorCode));
        var (again, epoch2) = await Finalized(f);
        Assert.Equal(1, again["group.version"]);
        Assert.Equal(epoch1 + 1, epoch2);
        await f.CreateTopic("t");
        // FindCoordinator creates __consumer_offsets, as a client's first call does.
        Assert.Equal(0, (await f.Send<FindCoordinatorResponse>(new FindCoordinatorRequest { KeyType = 0, Key = "g" }, 3))!.ErrorCode);
        hb = (await f.Send<ConsumerGroupHeartbeatResponse>(new ConsumerGroupHeartbeatRequest
        {
            GroupId = "g", MemberId = Guid.NewGuid().ToString("N")[..22], MemberEpoch = 0, RebalanceTimeoutMs = 30000,
            SubscribedTopicNames = ["t"], TopicPartitions = [],
        }, 1))!;
        Assert.Equal(0, hb.ErrorCode);
        Assert.Equal(1, hb.MemberEpoch);
    }

    [Fact]
    public async Task ShareVersionZeroTurnsShareGroupsOff()
    {
        await using var f = new HandlerFixture();
        Assert.Equal(0, (await f.Send<UpdateFeaturesResponse>(Request(false, ("share.version", 0, 3)), 2))!.ErrorCode);
        var hb = (await f.Send<ShareGroupHeartbeatResponse>(new ShareGroupHeartbeatRequest
        {
            GroupId = "s", MemberId = Guid.NewGuid().ToString("N")[..22], MemberEpoch = 0, SubscribedTopicNames = ["t"],
        }, 1))!;
        Assert.Equal((short)ErrorCode.UnsupportedVersion, hb.ErrorCode);
        var d = (await f.Send<ShareGroupDescribeResponse>(new ShareGroupDescribeRequest { GroupIds = ["s"] }, 1))!;
        Assert.Equal((short)ErrorCode.UnsupportedVersion, d.Groups.Single().ErrorCode);
    }

    [Fact]
    public async Task StreamsVersionZeroTurnsStreamsGroupsOff()
    {
        await using var f = new HandlerFixture();
        Assert.Equal(0, (await f.Send<UpdateFeaturesResponse>(Request(false, ("streams.version", 0, 3)), 2))!.ErrorCode);
        var hb = (await f.Send<StreamsGroupHeartbeatResponse>(new StreamsGroupHeartbeatRequest
        {
            GroupId = "app", MemberId = Guid.NewGuid().ToString("N")[..22], MemberEpoch = 0, RebalanceTimeoutMs = 30_000,
            ProcessId = "p1", ActiveTasks = [], StandbyTasks = [], WarmupTasks = [],
        }, 0))!;
        Assert.Equal((short)ErrorCode.UnsupportedVersion, hb.ErrorCode);
        var d = (await f.Send<StreamsGroupDescribeResponse>(new StreamsGroupDescribeRequest { GroupIds = ["app"] }, 0))!;
        Assert.Equal((short)ErrorCode.UnsupportedVersion, d.Groups.Single().ErrorCode);
        // Back on: the same heartbeat joins.
        Assert.Equal(0, (await f.Send<UpdateFeaturesResponse>(Request(false, ("streams.version", 1, 1)), 2))!.ErrorCode);
        var d2 = (await f.Send<StreamsGroupDescribeResponse>(new StreamsGroupDescribeRequest { GroupIds = ["app"] }, 0))!;
        Assert.NotEqual((short)ErrorCode.UnsupportedVersion, d2.Groups.Single().ErrorCode);
    }

    [Theory]
    [InlineData("no.such.feature", 1, 1)]      // unknown feature
    [InlineData("group.version", 2, 1)]        // above the supported maximum (1)
    [InlineData("transaction.version", 1, 1)]  // lower than the current 2 with the upgrade type
    [InlineData("group.version", -1, 2)]       // negative
    [InlineData("transaction.version", 1, 4)]  // unknown upgrade type
    public async Task InvalidUpdatesFailTheWholeRequestAndChangeNothing(string feature, short level, sbyte type)
    {
        await using var f = new HandlerFixture();
        var before = await Finalized(f);
        // A valid update in the same request is not applied either (all or nothing).
        var r = (await f.Send<UpdateFeaturesResponse>(Request(false, ("share.version", 0, 2), (feature, level, type)), 1))!;
        Assert.Equal((short)ErrorCode.InvalidUpdateVersion, r.ErrorCode);
        Assert.StartsWith("The update failed for all features since the following feature had an error: Invalid update version", r.ErrorMessage);
        Assert.Contains(feature, r.ErrorMessage);
        Assert.Empty(r.Results);
        Assert.Equal(Show(before), Show(await Finalized(f)));
    }

    [Fact]
    public async Task ADowngradeTypeAskingForAHigherLevelIsRefused()
    {
        await using var f = new HandlerFixture();
        Assert.Equal(0, (await f.Send<UpdateFeaturesResponse>(Request(false, ("transaction.version", 1, 2)), 2))!.ErrorCode);
        var r = (await f.Send<UpdateFeaturesResponse>(Request(false, ("transaction.version", 2, 2)), 2))!;
        Assert.Equal((short)ErrorCode.InvalidUpdateVersion, r.ErrorCode);
        Assert.Contains("Can't downgrade to a newer version", r.ErrorMessage);
        Assert.Equal(1, (await Finalized(f)).Levels["transaction.version"]);
    }

    [Fact]
    public async Task ValidateOnlyChecksWithoutChanging()
    {
        await using var f = new HandlerFixture();
        var before = await Finalized(f);
        var ok = (await f.Send<UpdateFeaturesResponse>(Request(true, ("transaction.version", 0, 3)), 2))!;
        Assert.Equal(0, ok.ErrorCode);
        var bad = (await f.Send<UpdateFeaturesResponse>(Request(true, ("transaction.version", 3, 1)), 2))!;
        Assert.Equal((short)ErrorCode.InvalidUpdateVersion, bad.ErrorCode);
        Assert.Equal(Show(before), Show(await Finalized(f)));
    }

    [Fact]
    public async Task V0AllowDowngradeIsTheSafeDowngradeType()
    {
        await using var f = new HandlerFixture();
        var refused = (await f.Send<UpdateFeaturesResponse>(new UpdateFeaturesRequest
        {
            FeatureUpdates = [new() { Feature = "transaction.version", MaxVersionLevel = 1, AllowDowngrade = false }],
        }, 0))!;
        Assert.Equal((short)ErrorCode.InvalidUpdateVersion, refused.ErrorCode);
        var allowed = (await f.Send<UpdateFeaturesResponse>(new UpdateFeaturesRequest
        {
            FeatureUpdates = [new() { Feature = "transaction.version", MaxVersionLevel = 1, AllowDowngrade = true }],
        }, 0))!;
        Assert.Equal(0, allowed.ErrorCode);
        Assert.Equal(("transaction.version", (short)0), (allowed.Results.Single().Feature, allowed.Results.Single().ErrorCode));
        Assert.Equal(1, (await Finalized(f)).Levels["transaction.version"]);
    }

    [Fact]
    public async Task WithAnAuthorizerClusterAlterIsRequired()
    {
        var broker = new KafkaBroker(new BrokerConfig(new Dictionary<string, string>
        {
            ["broker.id"] = "1", ["authorizer.class.name"] = "kafka.security.authorizer.AclAuthorizer", ["super.users"] = "User:admin",
        }), inMemory: true);
        await using var _ = broker;
        async Task<UpdateFeaturesResponse> As(string user)
        {
            IKafkaMessage request = Request(false, ("share.version", 0, 2));
            var header = new RequestHeader { RequestApiKey = request.ApiKey, RequestApiVersion = 2, CorrelationId = 7, ClientId = "test" };
            short hv = ApiMessages.RequestHeaderVersion(request.ApiKey, 2);
            var frame = new byte[header.Size(hv) + request.Size(2)];
            var w = new Samsa.Kafka.Protocol.Primitives.KafkaWriter(frame);
            header.Write(ref w, hv);
            request.Write(ref w, 2);
            var (parsedHeader, parsed, _) = Network.KafkaConnectionHandler.Parse(frame);
            var context = new RequestContext { Header = parsedHeader!, Broker = broker, Session = ConnectionSession.ForTests(KafkaPrincipal.User(user)) };
            var response = await ApiTable.Find(request.ApiKey)!.Handler(context, parsed!);
            var bytes = Network.KafkaConnectionHandler.Serialize(header, response!, 2, out int length);
            return KafkaWireClient.Decode<UpdateFeaturesResponse>(bytes[..length], request.ApiKey, 2, 7)!;
        }
        Assert.Equal((short)ErrorCode.ClusterAuthorizationFailed, (await As("alice")).ErrorCode);
        Assert.Equal(1, broker.Features.Level("share.version"));
        Assert.Equal(0, (await As("admin")).ErrorCode);
        Assert.Equal(0, broker.Features.Level("share.version"));
    }

    [Fact]
    public async Task SingleNodeLevelsSurviveARestart()
    {
        var dir = Path.Combine(Path.GetTempPath(), "samsa-features-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var props = new Dictionary<string, string> { ["broker.id"] = "1", ["log.dirs"] = dir };
            long epoch;
            await using (var f = new HandlerFixture(new KafkaBroker(new BrokerConfig(props))))
            {
                Assert.Equal(0, (await f.Send<UpdateFeaturesResponse>(Request(false, ("transaction.version", 1, 2)), 2))!.ErrorCode);
                epoch = (await Finalized(f)).Epoch;
            }
            await using (var f = new HandlerFixture(new KafkaBroker(new BrokerConfig(props))))
            {
                var (levels, again) = await Finalized(f);
                Assert.Equal(1, levels["transaction.version"]);
                Assert.Equal(epoch, again);
            }
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
