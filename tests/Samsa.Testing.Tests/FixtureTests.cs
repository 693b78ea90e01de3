using Confluent.Kafka;
using Xunit;

namespace Samsa.Testing.Tests;

/// <summary>A one-broker in-memory cluster per collection (the fixture is xUnit-agnostic).</summary>
public sealed class OneBrokerFixture() : SamsaClusterFixture(1, new SamsaClusterOptions { InMemory = true });

[CollectionDefinition("one-broker")]
public sealed class OneBrokerCollection : ICollectionFixture<OneBrokerFixture>;

[Collection("one-broker")]
public sealed class FixtureTestsA(OneBrokerFixture fixture)
{
    [Fact]
    public async Task Collection_fixture_serves_a_producer()
    {
        using var producer = Clients.Producer(fixture.BootstrapServers);
        var r = await producer.ProduceAsync("fixture-a", new Message<Null, string> { Value = "a" });
        Assert.Equal(PersistenceStatus.Persisted, r.Status);
    }
}

[Collection("one-broker")]
public sealed class FixtureTestsB(OneBrokerFixture fixture)
{
    [Fact]
    public async Task Collection_fixture_is_the_same_cluster_and_reset_undoes_faults()
    {
        await fixture.Cluster.CreateTopicAsync("fixture-b");
        fixture.Cluster.PauseBroker(1);
        _ = fixture.Cluster.FailNextRequests(Samsa.Kafka.Protocol.Messages.ApiKey.Produce, 5, Samsa.Kafka.Protocol.ErrorCode.NotLeaderOrFollower);
        await fixture.ResetAsync();
        using var producer = Clients.Producer(fixture.BootstrapServers);
        var r = await producer.ProduceAsync("fixture-b", new Message<Null, string> { Value = "b" });
        Assert.Equal(0, r.Offset.Value);
    }
}

public sealed class ClassFixtureTests(SamsaClusterFixture fixture) : IClassFixture<SamsaClusterFixture>
{
    [Fact]
    public void Default_fixture_is_three_brokers()
    {
        Assert.Equal([1, 2, 3], fixture.Cluster.BrokerIds);
        Assert.Equal(3, fixture.BootstrapServers.Split(',').Length);
    }
}
