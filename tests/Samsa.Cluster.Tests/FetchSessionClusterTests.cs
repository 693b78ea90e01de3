using System.Text;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Records;
using Xunit;

namespace Samsa.Cluster.Tests;

/// <summary>Replica fetchers keep incremental fetch sessions (KIP-227) with their leaders: the
/// leaders' caches show sessions made and incremental fetches served, and replication stays whole
/// (every record on every replica, full ISR) across a follower restart and a leader change.</summary>
public sealed class FetchSessionClusterTests(KeeperServer server) : IClassFixture<KeeperServer>
{
    private const int Partitions = 16;

    private static async Task<MetadataResponse.MetadataResponseTopic> TopicAsync(LocalCluster cluster, string topic) =>
        (await cluster.MetadataAsync(cluster.LiveIds.First(), topic)).Topics[0];

    private static async Task ProduceAllAsync(LocalCluster cluster, string topic, string tag, List<string>[] expected)
    {
        for (int p = 0; p < Partitions; p++)
        {
            string value = $"{tag}-{p}";
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
            while (true)
            {
                var md = (await TopicAsync(cluster, topic)).Partitions.First(x => x.PartitionIndex == p);
                short code = -1;
                if (cluster.LiveIds.Contains(md.LeaderId))
                {
                    await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(md.LeaderId));
                    var batch = RecordBatchBuilder.Build([(null, Encoding.UTF8.GetBytes(value))], DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
                    var r = await c.SendAsync<ProduceResponse>(new ProduceRequest
                    {
                        Acks = -1, TimeoutMs = 10000,
                        TopicData = [new ProduceRequest.TopicProduceData { Name = topic, PartitionData = [new ProduceRequest.PartitionProduceData { Index = p, Records = batch }] }],
                    }, 9);
                    code = r!.Responses[0].PartitionResponses[0].ErrorCode;
                }
                if (code == 0) break;
                if (DateTime.UtcNow > deadline) throw new TimeoutException($"produce to {topic}-{p}: error {code}\n{cluster.Log()}");
                await Task.Delay(100);
            }
            expected[p].Add(value);
        }
    }

    private static List<string> Values(Samsa.Kafka.Broker.Log.IPartitionLog log) =>
        RecordBatch.ReadRecords(log.Read(log.LogStartOffset, int.MaxValue, log.LogEndOffset, true).Records.Span)
            .Select(r => Encoding.UTF8.GetString(r.Value!)).ToList();

    private static async Task AllInSyncAndWholeAsync(LocalCluster cluster, string topic, List<string>[] expected, string what)
    {
        await LocalCluster.WaitUntilAsync(async () => (await TopicAsync(cluster, topic)).Partitions.All(p => p.IsrNodes.Count == 3),
            TimeSpan.FromSeconds(30), $"full ISR ({what})");
        await LocalCluster.WaitUntilAsync(() => Task.FromResult(cluster.LiveIds.All(id => Enumerable.Range(0, Partitions).All(p =>
            Values(cluster[id].Replicas.GetPartition(topic, p)!.Log).SequenceEqual(expected[p])))), TimeSpan.FromSeconds(20), $"every replica whole ({what})");
    }

    private static (long Sessions, long Incremental, long Created) Counters(LocalCluster cluster) =>
        (cluster.LiveIds.Sum(id => (long)cluster[id].FetchSessions.Count),
         cluster.LiveIds.Sum(id => cluster[id].FetchSessions.IncrementalFetches),
         cluster.LiveIds.Sum(id => cluster[id].FetchSessions.SessionsCreated));

    [Fact]
    public async Task FollowersReplicateThroughIncrementalSessionsAcrossRestartAndLeaderChange()
    {
        var dir = Path.Combine(Path.GetTempPath(), "samsa-fsess-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using var cluster = await LocalCluster.StartAsync(server.Address!, 3, dataDir: dir);
            await LocalCluster.WaitUntilAsync(async () => (await cluster.MetadataAsync(1)).Brokers.Count == 3, TimeSpan.FromSeconds(10), "all brokers visible");
            await using (var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(1)))
            {
                var r = await c.SendAsync<CreateTopicsResponse>(new CreateTopicsRequest
                {
                    TimeoutMs = 30000,
                    Topics = [new CreateTopicsRequest.CreatableTopic
                    {
                        Name = "fs", NumPartitions = Partitions, ReplicationFactor = 3,
                        Configs = [new CreateTopicsRequest.CreatableTopicConfig { Name = "min.insync.replicas", Value = "2" }],
                    }],
                }, 5);
                Assert.Equal(0, r!.Topics[0].ErrorCode);
            }
            var expected = Enumerable.Range(0, Partitions).Select(_ => new List<string>()).ToArray();
            for (int round = 0; round < 3; round++) await ProduceAllAsync(cluster, "fs", $"a{round}", expected);
            await AllInSyncAndWholeAsync(cluster, "fs", expected, "start");

            // Each broker leads some partitions and follows the other two: each follower keeps one
            // session per leader it fetches from, and its fetches are incremental.
            var (sessions, incremental, _) = Counters(cluster);
            Assert.True(sessions >= 6, $"sessions cached: {sessions}");
            Assert.True(incremental > 50, $"incremental fetches: {incremental}");

            // A follower restarts: its fetchers open new sessions and catch up.
            var p0 = (await TopicAsync(cluster, "fs")).Partitions.First(p => p.PartitionIndex == 0);
            int follower = p0.ReplicaNodes.First(b => b != p0.LeaderId);
            long CreatedByOthers() => cluster.LiveIds.Where(id => id != follower).Sum(id => cluster[id].FetchSessions.SessionsCreated);
            long createdBefore = CreatedByOthers();
            await cluster.StopBrokerAsync(follower);
            await ProduceAllAsync(cluster, "fs", "b", expected);
            await cluster.StartBrokerAsync(follower);
            await ProduceAllAsync(cluster, "fs", "c", expected);
            await AllInSyncAndWholeAsync(cluster, "fs", expected, "follower restart");
            Assert.True(CreatedByOthers() > createdBefore, "the restarted follower opened new sessions with its leaders");

            // The leader of partition 0 goes: its partitions move, followers switch leaders (new sessions).
            int leader = (await TopicAsync(cluster, "fs")).Partitions[0].LeaderId;
            await cluster.StopBrokerAsync(leader);
            await LocalCluster.WaitUntilAsync(async () => (await TopicAsync(cluster, "fs")).Partitions.All(p => p.LeaderId != leader && p.LeaderId >= 0),
                TimeSpan.FromSeconds(20), "leaders moved");
            await ProduceAllAsync(cluster, "fs", "d", expected);
            await cluster.StartBrokerAsync(leader);
            await ProduceAllAsync(cluster, "fs", "e", expected);
            await AllInSyncAndWholeAsync(cluster, "fs", expected, "leader change");

            long incrementalBefore = Counters(cluster).Incremental;
            await ProduceAllAsync(cluster, "fs", "f", expected);
            await AllInSyncAndWholeAsync(cluster, "fs", expected, "end");
            Assert.True(Counters(cluster).Incremental > incrementalBefore, "fetches after the leader change are incremental");
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }
}
