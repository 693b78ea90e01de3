using System.Text;
using Confluent.Kafka;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Protocol.Messages;
using Xunit;
using Samsa.Kafka.Protocol.Records;

namespace Samsa.Cluster.Tests;

/// <summary>KIP-392 fetch from the closest replica: brokers in racks a/b/c with
/// replica.selector.class = RackAwareReplicaSelector; a consumer that names its rack is sent to the
/// follower in that rack and reads everything from it.</summary>
public sealed class FollowerFetchTests(KeeperServer server, ITestOutputHelper output) : IClassFixture<KeeperServer>
{
    private const short NotLeaderOrFollower = 6, OffsetOutOfRange = 1;
    private const int Records = 2000, ValueBytes = 500;

    private static readonly Dictionary<int, string> Racks = new() { [1] = "a", [2] = "b", [3] = "c" };

    private static async Task<LocalCluster> StartAsync(string server, bool selector) =>
        await LocalCluster.StartAsync(server, 3, Racks, observeClients: true,
            brokerConfig: selector ? new Dictionary<string, string> { ["replica.selector.class"] = "org.apache.kafka.common.replica.RackAwareReplicaSelector" } : null);

    /// <summary>Creates "near" on replicas [1,2,3] (leader 1, rack a), writes the records with
    /// acks=all and waits until both followers hold all of them.</summary>
    private static async Task ProduceAsync(LocalCluster cluster)
    {
        await LocalCluster.WaitUntilAsync(async () => (await cluster.MetadataAsync(1)).Brokers.Count == 3, TimeSpan.FromSeconds(10), "all brokers visible");
        await using (var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(1)))
        {
            var r = await c.SendAsync<CreateTopicsResponse>(new CreateTopicsRequest
            {
                TimeoutMs = 30000,
                Topics = [new CreateTopicsRequest.CreatableTopic
                {
                    Name = "near", NumPartitions = -1, ReplicationFactor = -1,
                    Assignments = [new CreateTopicsRequest.CreatableReplicaAssignment { PartitionIndex = 0, BrokerIds = [1, 2, 3] }],
                }],
            }, 5);
            Assert.Equal(0, r!.Topics[0].ErrorCode);
        }
        await LocalCluster.WaitUntilAsync(async () =>
        {
            var p = (await cluster.MetadataAsync(1, "near")).Topics[0].Partitions.FirstOrDefault();
            return p is { LeaderId: 1 } && p.IsrNodes.Count == 3;
        }, TimeSpan.FromSeconds(20), "near has leader 1 and a full ISR");
        using (var producer = new ProducerBuilder<Null, byte[]>(new ProducerConfig { BootstrapServers = cluster.Bootstrap(1), Acks = Acks.All, LingerMs = 5 }).Build())
        {
            var sent = new List<Task<DeliveryResult<Null, byte[]>>>();
            for (int i = 0; i < Records; i++)
            {
                var value = new byte[ValueBytes];
                Encoding.ASCII.GetBytes(i.ToString("D8")).CopyTo(value, 0);
                sent.Add(producer.ProduceAsync("near", new Message<Null, byte[]> { Value = value }));
            }
            await Task.WhenAll(sent);
        }
        // The followers learn the high watermark from their next fetch response.
        await LocalCluster.WaitUntilAsync(() => Task.FromResult(new[] { 2, 3 }.All(id => cluster[id].Replicas.GetPartition("near", 0)!.HighWatermark == Records)),
            TimeSpan.FromSeconds(20), "both followers know the high watermark");
    }

    private static FetchRequest Fetch(long offset, string rack) => new()
    {
        ReplicaId = -1, MaxWaitMs = 0, MinBytes = 0, MaxBytes = 8 << 20, SessionEpoch = -1, RackId = rack,
        Topics = [new FetchRequest.FetchTopic { Topic = "near", Partitions = [new FetchRequest.FetchPartition { Partition = 0, FetchOffset = offset, PartitionMaxBytes = 8 << 20 }] }],
    };

    private static async Task<FetchResponse.PartitionData> FetchAsync(LocalCluster cluster, int broker, long offset, string rack, short version = 12)
    {
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(broker));
        var r = await c.SendAsync<FetchResponse>(Fetch(offset, rack), version);
        return r!.Responses[0].Partitions[0];
    }

    [Fact]
    public async Task TheLeaderNamesTheFollowerInTheConsumersRackWhichServesUpToTheHighWatermark()
    {
        await using var cluster = await StartAsync(server.Address!, selector: true);
        await ProduceAsync(cluster);

        // A consumer in rack b asks the leader (rack a): no records, preferred_read_replica 2.
        var redirect = await FetchAsync(cluster, 1, 0, "b");
        Assert.Equal(0, redirect.ErrorCode);
        Assert.Equal(2, redirect.PreferredReadReplica);
        Assert.Equal(0, (redirect.Records ?? ReadOnlyMemory<byte>.Empty).Length);
        Assert.Equal(Records, redirect.HighWatermark);
        // In the leader's rack, or in a rack without a replica, or without a rack: the leader serves.
        foreach (var rack in new[] { "a", "z", "" })
        {
            var own = await FetchAsync(cluster, 1, 0, rack);
            Assert.Equal(-1, own.PreferredReadReplica);
            Assert.NotEmpty(RecordBatch.ReadRecords((own.Records ?? ReadOnlyMemory<byte>.Empty).Span));
        }

        // The follower serves the whole partition to a v11+ consumer.
        long offset = 0;
        var values = new List<string>();
        while (offset < Records)
        {
            var pd = await FetchAsync(cluster, 2, offset, "b");
            Assert.Equal(0, pd.ErrorCode);
            Assert.Equal(Records, pd.HighWatermark);
            Assert.Equal(-1, pd.PreferredReadReplica);   // only a leader redirects
            var recs = RecordBatch.ReadRecords((pd.Records ?? ReadOnlyMemory<byte>.Empty).Span).Where(x => x.Offset >= offset).ToList();
            Assert.NotEmpty(recs);
            values.AddRange(recs.Select(x => Encoding.ASCII.GetString(x.Value!, 0, 8)));
            offset = recs[^1].Offset + 1;
        }
        Assert.Equal(Enumerable.Range(0, Records).Select(i => i.ToString("D8")), values);

        // Errors as upstream: past the follower's log end OFFSET_OUT_OF_RANGE; before v11 a
        // follower is not a place to read (NOT_LEADER_OR_FOLLOWER).
        Assert.Equal(OffsetOutOfRange, (await FetchAsync(cluster, 2, Records + 10, "b")).ErrorCode);
        Assert.Equal(NotLeaderOrFollower, (await FetchAsync(cluster, 2, 0, "b", version: 10)).ErrorCode);
    }

    [Fact]
    public async Task AConsumerWithClientRackReadsEverythingFromTheFollowerInItsRack()
    {
        await using var cluster = await StartAsync(server.Address!, selector: true);
        await ProduceAsync(cluster);

        long[] before = [.. Enumerable.Range(1, 3).Select(id => cluster.ListenerProxy(id).BytesToClients)];
        // kcat (Debian's librdkafka) as the consumer: Confluent.Kafka 2.15.1's Consume needs a newer
        // librdkafka than Debian ships. One line per record: its offset and value prefix.
        var psi = new System.Diagnostics.ProcessStartInfo("kcat",
            ["-C", "-b", cluster.Bootstrap(1), "-t", "near", "-p", "0", "-o", "beginning", "-e", "-q",
             "-X", "client.rack=c", "-f", "%o %S\\n"])
        { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        System.Diagnostics.Process kcat;
        try { kcat = System.Diagnostics.Process.Start(psi)!; }
        catch (System.ComponentModel.Win32Exception) { Assert.Skip("kcat is not installed (apt-get install kcat)"); return; }
        var stdout = kcat.StandardOutput.ReadToEndAsync();
        var stderr = kcat.StandardError.ReadToEndAsync();
        await kcat.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        var lines = (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(kcat.ExitCode == 0, $"kcat exited {kcat.ExitCode}: {await stderr}");
        Assert.Equal(Enumerable.Range(0, Records).Select(i => $"{i} {ValueBytes}"), lines);

        long[] sent = [.. Enumerable.Range(1, 3).Select(id => cluster.ListenerProxy(id).BytesToClients - before[id - 1])];
        output.WriteLine($"bytes sent to clients while consuming: broker 1 (leader, rack a) {sent[0]}, broker 2 (rack b) {sent[1]}, broker 3 (rack c) {sent[2]}");
        long payload = (long)Records * ValueBytes;
        Assert.True(sent[2] >= payload, $"the follower in rack c sent only {sent[2]} bytes");
        Assert.True(sent[0] < payload / 10, $"the leader sent {sent[0]} bytes: records came from it");
        Assert.True(sent[1] < payload / 10, $"broker 2 sent {sent[1]} bytes");
    }

    [Fact]
    public async Task WithoutAReplicaSelectorConsumersReadFromTheLeader()
    {
        await using var cluster = await StartAsync(server.Address!, selector: false);
        await ProduceAsync(cluster);
        var pd = await FetchAsync(cluster, 1, 0, "b");
        Assert.Equal(-1, pd.PreferredReadReplica);
        Assert.NotEmpty(RecordBatch.ReadRecords((pd.Records ?? ReadOnlyMemory<byte>.Empty).Span));
    }
}
