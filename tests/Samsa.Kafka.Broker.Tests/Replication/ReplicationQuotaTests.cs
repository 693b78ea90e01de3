using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Broker.Replication;

namespace Samsa.Kafka.Broker.Tests.Replication;

/// <summary>The replication throttle's rate window (upstream Rate with replication.quota.window.*)
/// and the throttled-replicas list format of leader/follower.replication.throttled.replicas.</summary>
public sealed class ReplicationQuotaTests
{
    [Theory]
    [InlineData("*", 7, 3, true)]
    [InlineData("0:1,1:2", 1, 2, true)]
    [InlineData("0:1,1:2", 1, 1, false)]
    [InlineData("0:1,1:2", 0, 2, false)]
    [InlineData(" 0 : 1 , 3:4", 0, 1, true)]
    [InlineData("", 0, 1, false)]
    [InlineData("0-1", 0, 1, false)]
    public void ThrottledReplicaListsNamePartitionAndBroker(string list, int partition, int broker, bool throttled) =>
        Assert.Equal(throttled, ReplicationQuota.Lists(list, partition, broker));

    [Fact]
    public void TheRateIsMeasuredOverTheSampleWindows()
    {
        long now = 0;
        var quota = new ReplicationQuota(() => 1000, "leader.replication.throttled.replicas", 1, windows: 2, windowSeconds: 1, clock: () => now);
        Assert.False(quota.IsQuotaExceeded);
        quota.Record(1500);
        // Within the first window the elapsed time counts as one whole window: 1500 B/s.
        Assert.Equal(1500, quota.Rate, 3);
        Assert.True(quota.IsQuotaExceeded);
        now = 1500;
        Assert.Equal(1000, quota.Rate, 3);      // 1500 bytes over 1.5 s: at the bound, not above it
        Assert.False(quota.IsQuotaExceeded);
        now = 2100;                               // the first window has left the two-window span
        Assert.Equal(0, quota.Rate, 3);
        quota.Record(500);
        Assert.False(quota.IsQuotaExceeded);
    }

    [Fact]
    public void TheBoundIsReadAtEveryCheck()
    {
        long now = 0, bound = long.MaxValue;
        var quota = new ReplicationQuota(() => bound, "follower.replication.throttled.replicas", 1, windows: 11, windowSeconds: 1, clock: () => now);
        quota.Record(50_000);
        Assert.False(quota.IsQuotaExceeded);     // unlimited (the default)
        bound = 1000;                             // e.g. a dynamic config change
        Assert.True(quota.IsQuotaExceeded);      // 50000 bytes over the 10 s minimum span: 5000 B/s
        bound = 10_000;
        Assert.False(quota.IsQuotaExceeded);
    }
}

/// <summary>AlterPartitionReassignments / ListPartitionReassignments on a broker without
/// ZooKeeper, which is the whole cluster: the only assignment is itself.</summary>
public sealed class StandaloneReassignmentTests
{
    [Theory]
    [InlineData("*", 0)]
    [InlineData("0:1,1:2", 0)]
    [InlineData("0:1,x:2", 40)]
    [InlineData("0-1", 40)]
    public async Task ThrottledReplicaListsAreValidatedAsUpstream(string value, short expected)
    {
        await using var f = new Handlers.HandlerFixture();
        var r = await f.Send<CreateTopicsResponse>(new CreateTopicsRequest
        {
            Topics = [new CreateTopicsRequest.CreatableTopic
            {
                Name = "th", NumPartitions = 1, ReplicationFactor = 1,
                Configs = [new CreateTopicsRequest.CreatableTopicConfig { Name = "leader.replication.throttled.replicas", Value = value }],
            }],
        }, 7);
        Assert.Equal(expected, r!.Topics[0].ErrorCode);   // 40 = INVALID_CONFIG
    }

    [Fact]
    public async Task ThrottleRatesAreDynamicBrokerConfigs()
    {
        await using var f = new Handlers.HandlerFixture(("follower.replication.throttled.rate", "2000000"));
        Assert.Equal(long.MaxValue, (long)f.Broker.Config.Get("leader.replication.throttled.rate")!);   // unset: unlimited
        Assert.Equal(2_000_000L, (long)f.Broker.Config.Get("follower.replication.throttled.rate")!);
        // What kafka-reassign-partitions.sh --throttle does: a per-broker dynamic config.
        var r = await f.Send<IncrementalAlterConfigsResponse>(new IncrementalAlterConfigsRequest
        {
            Resources = [new() { ResourceType = 4, ResourceName = "1", Configs = [new() { Name = "leader.replication.throttled.rate", ConfigOperation = 0, Value = "100000" }] }],
        }, 1);
        Assert.Equal(0, r!.Responses[0].ErrorCode);
        Assert.Equal(100_000L, (long)f.Broker.Config.Get("leader.replication.throttled.rate")!);
        var bad = await f.Send<IncrementalAlterConfigsResponse>(new IncrementalAlterConfigsRequest
        {
            Resources = [new() { ResourceType = 4, ResourceName = "1", Configs = [new() { Name = "leader.replication.throttled.rate", ConfigOperation = 0, Value = "-5" }] }],
        }, 1);
        // ZkAdminManager turns a ConfigException for a broker resource into INVALID_REQUEST.
        Assert.Equal((short)ErrorCode.InvalidRequest, bad!.Responses[0].ErrorCode);
    }

    [Fact]
    public async Task OnlyTheBrokerItselfIsAValidTarget()
    {
        await using var f = new Handlers.HandlerFixture();
        await f.CreateTopic("t");
        async Task<short> Code(string topic, List<int>? replicas) =>
            (await f.Send<AlterPartitionReassignmentsResponse>(new AlterPartitionReassignmentsRequest
            {
                Topics = [new AlterPartitionReassignmentsRequest.ReassignableTopic
                {
                    Name = topic, Partitions = [new AlterPartitionReassignmentsRequest.ReassignablePartition { PartitionIndex = 0, Replicas = replicas }],
                }],
            }, 0))!.Responses.Single().Partitions.Single().ErrorCode;
        Assert.Equal(0, await Code("t", [1]));
        Assert.Equal((short)ErrorCode.InvalidReplicaAssignment, await Code("t", [2]));
        Assert.Equal((short)ErrorCode.InvalidReplicaAssignment, await Code("t", [1, 1]));
        Assert.Equal((short)ErrorCode.NoReassignmentInProgress, await Code("t", null));
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, await Code("missing", [1]));
        var list = await f.Send<ListPartitionReassignmentsResponse>(new ListPartitionReassignmentsRequest { Topics = null }, 0);
        Assert.Equal(0, list!.ErrorCode);
        Assert.Empty(list.Topics);

        var versions = await f.Send<ApiVersionsResponse>(new ApiVersionsRequest { ClientSoftwareName = "test", ClientSoftwareVersion = "1" }, 3);
        Assert.Contains(versions!.ApiKeys, k => k.ApiKey == 45 && k.MinVersion == 0 && k.MaxVersion == 1);
        Assert.Contains(versions.ApiKeys, k => k.ApiKey == 46 && k.MinVersion == 0 && k.MaxVersion == 0);
    }
}
