using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Protocol.Messages;
using Xunit;

namespace Samsa.Cluster.Tests;

public sealed class KeeperAlterReplicaLogDirsClusterTests(KeeperServer server) : AlterReplicaLogDirsClusterTests(server), IClassFixture<KeeperServer>;

/// <summary>AlterReplicaLogDirs on three brokers with two log dirs each: a follower's replica moves
/// to its other directory while a producer bootstrapped at a third broker writes with acks=all;
/// after the move the follower becomes leader and its moved log holds every record.</summary>
public abstract class AlterReplicaLogDirsClusterTests(ICoordinationServer server)
{
    private string Server
    {
        get
        {
            Assert.SkipWhen(server.SkipReason is not null, server.SkipReason ?? "");
            return server.Address!;
        }
    }

    [Fact]
    public async Task AFollowersReplicaMovesDuringProduceAndServesEveryRecordAfterFailover()
    {
        var data = Path.Combine(Path.GetTempPath(), "samsa-arld-cluster-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using var cluster = await LocalCluster.StartAsync(Server, 3, dataDir: data,
                brokerConfig: new Dictionary<string, string> { ["log.segment.bytes"] = "16384", ["replica.alter.log.dirs.io.max.bytes.per.second"] = "131072" },
                perBrokerConfig: id => new Dictionary<string, string>
                {
                    ["log.dirs"] = $"{Path.Combine(data, $"broker-{id}", "a")},{Path.Combine(data, $"broker-{id}", "b")}",
                });
            await LocalCluster.WaitUntilAsync(async () => (await cluster.MetadataAsync(1)).Brokers.Count == 3, TimeSpan.FromSeconds(10), "all brokers visible");
            using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.Bootstrap(1) }).Build())
                await admin.CreateTopicsAsync([new TopicSpecification { Name = "jbod", NumPartitions = 1, ReplicasAssignments = new() { [0] = [2, 3] } }]);
            await cluster.LedMetadataAsync(1, "jbod", 1);

            using var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = cluster.Bootstrap(1), Acks = Acks.All, LingerMs = 0 }).Build();
            int n = 0;
            for (; n < 300; n++) await producer.ProduceAsync("jbod", new Message<Null, string> { Value = $"m-{n}-{new string('x', 100)}" });

            DescribeLogDirsResponse describe;
            await using (var client3 = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(3)))
                describe = (await client3.SendAsync<DescribeLogDirsResponse>(new DescribeLogDirsRequest { Topics = null }, 4))!;
            string from = describe.Results.Single(r => r.Topics.Any(t => t.Name == "jbod")).LogDir;
            string to = describe.Results.Select(r => r.LogDir).Single(d => d != from);
            await using (var client3 = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(3)))
            {
                var r = (await client3.SendAsync<AlterReplicaLogDirsResponse>(new AlterReplicaLogDirsRequest
                {
                    Dirs = [new() { Path = to, Topics = [new() { Name = "jbod", Partitions = [0] }] }],
                }, 2))!;
                Assert.Equal(0, r.Results.Single().Partitions.Single().ErrorCode);
            }
            // Broker 1 hosts no replica of it.
            await using (var client1 = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(1)))
            {
                var r = (await client1.SendAsync<AlterReplicaLogDirsResponse>(new AlterReplicaLogDirsRequest
                {
                    Dirs = [new() { Path = Path.Combine(data, "broker-1", "b"), Topics = [new() { Name = "jbod", Partitions = [0] }] }],
                }, 2))!;
                Assert.Equal((short)Samsa.Kafka.Protocol.ErrorCode.ReplicaNotAvailable, r.Results.Single().Partitions.Single().ErrorCode);
            }
            // The producer keeps writing during the move, at a pace well below the move's
            // throttle (128 KiB/s; ~50 records of ~180 bytes a second here): a move chases the
            // log's end, and one written faster than the throttle never catches up — upstream's
            // future replica fetcher the same — which an unpaced loop on a quiet machine did.
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (true)
            {
                await Task.Delay(20);
                await producer.ProduceAsync("jbod", new Message<Null, string> { Value = $"m-{n}-{new string('x', 100)}" });
                n++;
                await using var client3 = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(3));
                var now = (await client3.SendAsync<DescribeLogDirsResponse>(new DescribeLogDirsRequest { Topics = null }, 4))!;
                var there = now.Results.Single(r => r.LogDir == to).Topics.SelectMany(t => t.Partitions).ToList();
                if (there.Count == 1 && !there[0].IsFutureKey && !now.Results.Single(r => r.LogDir == from).Topics.Any()) break;
                Assert.True(DateTime.UtcNow < deadline, "the move did not finish");
            }
            for (int i = 0; i < 20; i++, n++) await producer.ProduceAsync("jbod", new Message<Null, string> { Value = $"m-{n}-{new string('x', 100)}" });

            // The moved follower takes over and serves everything.
            await cluster.StopBrokerAsync(2);
            await LocalCluster.WaitUntilAsync(async () => (await cluster.MetadataAsync(1, "jbod")).Topics[0].Partitions[0].LeaderId == 3,
                TimeSpan.FromSeconds(30), "broker 3 leads jbod-0");
            // (Confluent.Kafka's consumer needs a newer librdkafka than this project loads: the
            // moved log is read on broker 3 itself, now the leader.)
            var log = cluster[3].Replicas.GetPartition("jbod", 0)!.Log;
            Assert.Equal(to, log.Directory);
            var values = new List<string>();
            // A read stops at a segment's end: read on until the log end.
            for (long offset = log.LogStartOffset; offset < log.LogEndOffset && values.Count < 100_000;)
            {
                var records = Samsa.Kafka.Protocol.Records.RecordBatch.ReadRecords(log.Read(offset, int.MaxValue, log.LogEndOffset, true).Records.Span).ToList();
                Assert.NotEmpty(records);
                values.AddRange(records.Select(r => System.Text.Encoding.UTF8.GetString(r.Value!)));
                offset += records.Count;
            }
            Assert.Equal(Enumerable.Range(0, n).Select(i => $"m-{i}-{new string('x', 100)}"), values);
        }
        finally { try { Directory.Delete(data, recursive: true); } catch (IOException) { } }
    }
}
