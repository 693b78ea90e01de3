using System.Diagnostics;
using Confluent.Kafka;
using ApiKey = Samsa.Kafka.Protocol.Messages.ApiKey;
using KafkaError = Samsa.Kafka.Protocol.ErrorCode;
using Samsa.Keeper.Client;
using Xunit;

namespace Samsa.Testing.Tests;

/// <summary>Each SamsaCluster fault hook, seen by a real client (Confluent.Kafka 2.16 / librdkafka 2.16).</summary>
public sealed class FaultHookTests
{
    private static string Topic(string what) => $"{what}-{Guid.NewGuid():N}"[..(what.Length + 9)];

    [Fact]
    public async Task Start_gives_bootstrap_servers_and_zookeeper_connect_and_dispose_removes_the_temp_dir()
    {
        string tempRoot = Path.Combine(Path.GetTempPath(), "samsa-testing-tests-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(tempRoot);
        try
        {
            await using (var cluster = await SamsaCluster.StartAsync(brokers: 3, keeper: true, new SamsaClusterOptions { TempRoot = tempRoot }))
            {
                Assert.Equal(3, cluster.BootstrapServers.Split(',').Length);
                await using var zk = await KeeperClient.ConnectAsync(cluster.ZooKeeperConnect);
                var ids = (await zk.GetChildrenAsync("/brokers/ids")).Order().ToList();
                Assert.Equal(["1", "2", "3"], ids);
                Assert.Single(Directory.GetDirectories(tempRoot));
                await cluster.CreateTopicAsync("t", partitions: 3);
                using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.BootstrapServer(2) }).Build();
                var md = admin.GetMetadata("t", TimeSpan.FromSeconds(10));
                Assert.Equal(3, md.Brokers.Count);
                Assert.Equal(3, md.Topics[0].Partitions.Count);
                Assert.All(md.Topics[0].Partitions, p => Assert.Equal(3, p.Replicas.Length));
            }
            Assert.Empty(Directory.GetDirectories(tempRoot));
        }
        finally
        {
            Directory.Delete(tempRoot, true);
        }
    }

    [Fact]
    public async Task FailNextRequests_produce_not_leader_is_retried_by_the_producer_and_the_record_is_written_once()
    {
        await using var cluster = await SamsaCluster.StartAsync(brokers: 1, options: new() { InMemory = true });
        await cluster.CreateTopicAsync("t");
        using var producer = Clients.Producer(cluster.BootstrapServers);
        await producer.ProduceAsync("t", new Message<Null, string> { Value = "warm-up" });
        var used = cluster.FailNextRequests(ApiKey.Produce, 2, KafkaError.NotLeaderOrFollower);
        var result = await producer.ProduceAsync("t", new Message<Null, string> { Value = "after-faults" });
        Assert.Equal(PersistenceStatus.Persisted, result.Status);
        Assert.True(used.IsCompleted, "both injected NOT_LEADER_OR_FOLLOWER answers were used");
        using var consumer = Clients.Consumer(cluster.BootstrapServers);
        Assert.Equal(["warm-up", "after-faults"], Clients.ReadValues(consumer, "t", 2, TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task FailNextRequests_with_a_non_retriable_error_reaches_the_application()
    {
        await using var cluster = await SamsaCluster.StartAsync(brokers: 1, options: new() { InMemory = true });
        await cluster.CreateTopicAsync("t");
        using var producer = Clients.Producer(cluster.BootstrapServers, c => c.EnableIdempotence = false);
        await producer.ProduceAsync("t", new Message<Null, string> { Value = "warm-up" });
        _ = cluster.FailNextRequests(ApiKey.Produce, 1, KafkaError.MessageTooLarge);
        var e = await Assert.ThrowsAsync<ProduceException<Null, string>>(() => producer.ProduceAsync("t", new Message<Null, string> { Value = "x" }));
        Assert.Equal(Confluent.Kafka.ErrorCode.MsgSizeTooLarge, e.Error.Code);
    }

    [Fact]
    public async Task FailNextRequests_refuses_an_api_it_cannot_answer_with_an_error()
    {
        await using var cluster = await SamsaCluster.StartAsync(brokers: 1, options: new() { InMemory = true });
        Assert.Throws<NotSupportedException>(() => { _ = cluster.FailNextRequests(ApiKey.CreateAcls, 1, KafkaError.ClusterAuthorizationFailed); });
    }

    [Fact]
    public async Task DelayNextRequests_holds_the_produce_for_the_delay()
    {
        await using var cluster = await SamsaCluster.StartAsync(brokers: 1, options: new() { InMemory = true });
        await cluster.CreateTopicAsync("t");
        using var producer = Clients.Producer(cluster.BootstrapServers);
        await producer.ProduceAsync("t", new Message<Null, string> { Value = "warm-up" });
        var sw = Stopwatch.StartNew();
        await producer.ProduceAsync("t", new Message<Null, string> { Value = "fast" });
        var fast = sw.Elapsed;
        _ = cluster.DelayNextRequests(ApiKey.Produce, 1, TimeSpan.FromMilliseconds(1500));
        sw.Restart();
        await producer.ProduceAsync("t", new Message<Null, string> { Value = "slow" });
        Assert.True(sw.Elapsed >= TimeSpan.FromMilliseconds(1450), $"delayed produce took {sw.Elapsed.TotalMilliseconds:0} ms");
        Assert.True(fast < TimeSpan.FromMilliseconds(1000), $"undelayed produce took {fast.TotalMilliseconds:0} ms");
    }

    [Fact]
    public async Task KillBroker_leader_mid_stream_consumer_resumes_without_loss()
    {
        await using var cluster = await SamsaCluster.StartAsync(brokers: 3);
        string topic = Topic("kill");
        await cluster.CreateTopicAsync(topic, partitions: 1, replicationFactor: 3);
        int leader = cluster.LeaderOf(topic);
        int bootstrap = cluster.BrokerIds.First(id => id != leader);
        using var producer = Clients.Producer(cluster.BootstrapServer(bootstrap));
        using var consumer = Clients.Consumer(cluster.BootstrapServer(bootstrap));
        await Clients.ProduceRangeAsync(producer, topic, 0, 100);
        var firstHalf = Clients.ReadValues(consumer, topic, 100, TimeSpan.FromSeconds(10));
        Assert.Equal(Clients.Range(0, 100), firstHalf);

        await cluster.KillBrokerAsync(leader);
        Assert.False(cluster.IsRunning(leader));
        await Clients.ProduceRangeAsync(producer, topic, 100, 200);
        Assert.NotEqual(leader, await cluster.WaitForNewLeaderAsync(topic, 0, leader));
        // The consumer goes on from where it was (its position), now at the new leader.
        var rest = new List<string>();
        var sw = Stopwatch.StartNew();
        while (rest.Count < 100 && sw.Elapsed < TimeSpan.FromSeconds(20))
            if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { IsPartitionEOF: false, Message: not null } r) rest.Add(r.Message.Value);
        Assert.Equal(Clients.Range(100, 200), rest);

        await cluster.RestartBrokerAsync(leader);
        Assert.True(cluster.IsRunning(leader));
    }

    [Fact]
    public async Task PauseBroker_requests_time_out_and_succeed_after_resume()
    {
        await using var cluster = await SamsaCluster.StartAsync(brokers: 1, options: new() { InMemory = true, SessionTimeoutMs = 10000 });
        await cluster.CreateTopicAsync("t");
        using var producer = Clients.Producer(cluster.BootstrapServers, c => { c.MessageTimeoutMs = 1500; c.RequestTimeoutMs = 1000; c.EnableIdempotence = false; });
        await producer.ProduceAsync("t", new Message<Null, string> { Value = "before" });
        cluster.PauseBroker(1);
        var e = await Assert.ThrowsAsync<ProduceException<Null, string>>(() => producer.ProduceAsync("t", new Message<Null, string> { Value = "while-paused" }));
        Assert.Equal(Confluent.Kafka.ErrorCode.Local_MsgTimedOut, e.Error.Code);
        cluster.ResumeBroker(1);
        var ok = await producer.ProduceAsync("t", new Message<Null, string> { Value = "after" });
        Assert.Equal(PersistenceStatus.Persisted, ok.Status);
    }

    [Fact]
    public async Task IsolateBroker_leader_loses_leadership_producer_continues_and_heal_brings_it_back()
    {
        await using var cluster = await SamsaCluster.StartAsync(brokers: 3, options: new() { InMemory = true });
        string topic = Topic("iso");
        await cluster.CreateTopicAsync(topic, replicationFactor: 3);
        int leader = cluster.LeaderOf(topic);
        int other = cluster.BrokerIds.First(id => id != leader);
        // A partition black-holes requests (nothing is closed): the client notices by its request
        // timeout, so a short one here (librdkafka's default is 30 s).
        using var producer = Clients.Producer(cluster.BootstrapServer(other), c => { c.RequestTimeoutMs = 2000; c.SocketTimeoutMs = 3000; });
        await Clients.ProduceRangeAsync(producer, topic, 0, 50);

        cluster.IsolateBroker(leader);
        // Clients cannot reach the isolated broker: a fresh client bootstrapped only there gets no metadata.
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.BootstrapServer(leader) }).Build())
            Assert.ThrowsAny<KafkaException>(() => admin.GetMetadata(TimeSpan.FromSeconds(1)));
        int newLeader = await cluster.WaitForNewLeaderAsync(topic, 0, leader);
        Assert.NotEqual(leader, newLeader);
        await Clients.ProduceRangeAsync(producer, topic, 50, 100);

        cluster.HealBroker(leader);
        // Back in the cluster: every broker sees it again (its new session registered).
        await cluster.ResetFaultsAsync();
        Assert.True(cluster.Broker(other)!.Cluster!.IsLive(leader));
        using var consumer = Clients.Consumer(cluster.BootstrapServer(other));
        Assert.Equal(Clients.Range(0, 100), Clients.ReadValues(consumer, topic, 100, TimeSpan.FromSeconds(15)));
    }

    [Fact]
    public async Task CutFromKeeper_moves_leadership_away_and_heal_rejoins()
    {
        await using var cluster = await SamsaCluster.StartAsync(brokers: 3, options: new() { InMemory = true });
        string topic = Topic("zk");
        await cluster.CreateTopicAsync(topic, replicationFactor: 3);
        int leader = cluster.LeaderOf(topic);
        int other = cluster.BrokerIds.First(id => id != leader);
        cluster.CutFromKeeper(leader);
        // Still running and serving, but the cluster dropped it once its session expired.
        await SamsaClusterTestWait.UntilAsync(() => !cluster.Broker(other)!.Cluster!.IsLive(leader), TimeSpan.FromSeconds(15));
        Assert.NotEqual(leader, await cluster.WaitForNewLeaderAsync(topic, 0, leader));
        Assert.True(cluster.IsRunning(leader));
        cluster.HealBroker(leader);
        await SamsaClusterTestWait.UntilAsync(() => cluster.Broker(other)!.Cluster!.IsLive(leader), TimeSpan.FromSeconds(20));
    }

    [Fact]
    public async Task DropConnections_resets_client_connections_and_the_client_reconnects()
    {
        await using var cluster = await SamsaCluster.StartAsync(brokers: 1, options: new() { InMemory = true });
        await cluster.CreateTopicAsync("t");
        using var producer = Clients.Producer(cluster.BootstrapServers);
        await producer.ProduceAsync("t", new Message<Null, string> { Value = "a" });
        int dropped = cluster.DropConnections(1);
        Assert.True(dropped >= 1, $"dropped {dropped}");
        var r = await producer.ProduceAsync("t", new Message<Null, string> { Value = "b" });
        Assert.Equal(1, r.Offset.Value);
    }

    [Fact]
    public async Task StopBroker_moves_leadership_at_once_and_restart_rejoins_with_its_log()
    {
        await using var cluster = await SamsaCluster.StartAsync(brokers: 3);
        string topic = Topic("stop");
        await cluster.CreateTopicAsync(topic, replicationFactor: 3);
        int leader = cluster.LeaderOf(topic);
        int other = cluster.BrokerIds.First(id => id != leader);
        using var producer = Clients.Producer(cluster.BootstrapServer(other));
        await Clients.ProduceRangeAsync(producer, topic, 0, 20);
        var sw = Stopwatch.StartNew();
        await cluster.StopBrokerAsync(leader);
        Assert.NotEqual(leader, await cluster.WaitForNewLeaderAsync(topic, 0, leader));
        // Controlled shutdown: no session timeout to wait for.
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(4), $"leadership moved after {sw.Elapsed.TotalSeconds:0.0} s");
        await cluster.RestartBrokerAsync(leader);
        // Its log came back from disk: the restarted replica holds the 20 records.
        await SamsaClusterTestWait.UntilAsync(() => cluster.Broker(leader)!.Replicas.GetPartition(topic, 0)?.Log.LogEndOffset >= 20, TimeSpan.FromSeconds(10));
    }
}

internal static class SamsaClusterTestWait
{
    public static async Task UntilAsync(Func<bool> condition, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            if (sw.Elapsed > timeout) throw new TimeoutException("condition not met in " + timeout);
            await Task.Delay(50);
        }
    }
}
