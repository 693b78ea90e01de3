using Xunit;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Cluster.Tests;

/// <summary>Several listeners per broker in a cluster: the ZooKeeper registration carries every
/// endpoint and the listener → protocol map (upstream BrokerInfo v5), and Metadata answers the
/// endpoints of the listener the request came in on — a broker without it is left out.</summary>
public sealed class ListenerClusterTests(KeeperServer server) : IClassFixture<KeeperServer>
{
    [Fact]
    public async Task Registration_has_every_endpoint_and_metadata_follows_the_request_listener()
    {
        await using var cluster = await LocalCluster.StartAsync(server.Address!, 2, perBrokerConfig: id => new Dictionary<string, string>
        {
            // Broker 1 also has an EXTERNAL listener (PLAINTEXT security); broker 2 only the internal one.
            ["listeners"] = id == 1 ? "INTERNAL://127.0.0.1:0,EXTERNAL://127.0.0.1:0" : "INTERNAL://127.0.0.1:0",
            ["listener.security.protocol.map"] = "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT",
            ["inter.broker.listener.name"] = "INTERNAL",
        });
        int internal1 = cluster[1].BoundEndPointOf("INTERNAL").Port;
        int external1 = cluster[1].BoundEndPointOf("EXTERNAL").Port;
        int internal2 = cluster[2].BoundEndPointOf("INTERNAL").Port;

        await using (var zk = await cluster.ZooKeeperAsync())
        {
            var json = await LocalCluster.ReadJsonAsync(zk, "/brokers/ids/1");
            var endpoints = json["endpoints"]!.AsArray().Select(e => (string)e!).ToList();
            Assert.Equal([$"INTERNAL://127.0.0.1:{internal1}", $"EXTERNAL://127.0.0.1:{external1}"], endpoints);
            var map = json["listener_security_protocol_map"]!.AsObject();
            Assert.Equal("PLAINTEXT", (string)map["INTERNAL"]!);
            Assert.Equal("PLAINTEXT", (string)map["EXTERNAL"]!);
            Assert.Equal(2, map.Count);
            // host/port name the first endpoint whose protocol is PLAINTEXT.
            Assert.Equal(internal1, (int)json["port"]!);
        }

        await LocalCluster.WaitUntilAsync(async () => (await MetadataAsync(internal1)).Brokers.Count == 2, TimeSpan.FromSeconds(10), "broker 1 sees broker 2");
        var viaInternal = await MetadataAsync(internal1);
        Assert.Equal([(1, internal1), (2, internal2)], viaInternal.Brokers.OrderBy(b => b.NodeId).Select(b => (b.NodeId, b.Port)));
        var viaExternal = await MetadataAsync(external1);
        Assert.Equal((1, external1), viaExternal.Brokers.Select(b => (b.NodeId, b.Port)).Single());
        // Replication runs over INTERNAL (the inter-broker listener) between the two.
        Assert.Equal(0, cluster[1].InterBroker.ConnectionsOpened.Tls);

        // A partition led by broker 2, which has no EXTERNAL listener: through EXTERNAL its leader
        // cannot be named (upstream MetadataCache: LISTENER_NOT_FOUND from v6, LEADER_NOT_AVAILABLE
        // before, leader -1); through INTERNAL it is broker 2.
        await using (var c = await KafkaWireClient.ConnectAsync("127.0.0.1", internal1))
        {
            var topic = new CreateTopicsRequest.CreatableTopic { Name = "on-two", NumPartitions = -1, ReplicationFactor = -1 };
            topic.Assignments.Add(new() { PartitionIndex = 0, BrokerIds = [2] });
            var created = await c.SendAsync<CreateTopicsResponse>(new CreateTopicsRequest { Topics = [topic], TimeoutMs = 10_000 }, 7);
            Assert.Equal(0, created!.Topics.Single().ErrorCode);
        }
        await LocalCluster.WaitUntilAsync(async () => (await MetadataAsync(internal1, "on-two")).Topics.Single().Partitions.SingleOrDefault()?.LeaderId == 2,
            TimeSpan.FromSeconds(10), "broker 1 knows broker 2 leads on-two");
        var hidden = (await MetadataAsync(external1, "on-two")).Topics.Single().Partitions.Single();
        Assert.Equal(((short)ErrorCode.ListenerNotFound, -1), (hidden.ErrorCode, hidden.LeaderId));
        var hiddenV5 = (await MetadataAsync(external1, "on-two", version: 5)).Topics.Single().Partitions.Single();
        Assert.Equal(((short)ErrorCode.LeaderNotAvailable, -1), (hiddenV5.ErrorCode, hiddenV5.LeaderId));
    }

    private static async Task<MetadataResponse> MetadataAsync(int port, string? topic = null, short version = 12)
    {
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", port);
        var topics = topic is null ? [] : new List<MetadataRequest.MetadataRequestTopic> { new() { Name = topic } };
        return (await c.SendAsync<MetadataResponse>(new MetadataRequest { Topics = topics, AllowAutoTopicCreation = false }, version))!;
    }
}
