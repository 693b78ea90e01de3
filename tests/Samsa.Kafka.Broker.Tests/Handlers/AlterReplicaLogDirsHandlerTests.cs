using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Tests.Handlers;

/// <summary>AlterReplicaLogDirs (34) on one broker with two log dirs: the replica moves while
/// producers write, DescribeLogDirs shows the future replica and then the moved one, every record
/// stays readable; per-partition errors as upstream.</summary>
public class AlterReplicaLogDirsHandlerTests
{
    private static async Task<DescribeLogDirsResponse> Describe(HandlerFixture f) =>
        (await f.Send<DescribeLogDirsResponse>(new DescribeLogDirsRequest { Topics = null }, 4))!;

    private static AlterReplicaLogDirsRequest Move(string path, string topic, params int[] partitions) => new()
    {
        Dirs = [new() { Path = path, Topics = [new() { Name = topic, Partitions = partitions.ToList() }] }],
    };

    [Fact]
    public async Task AReplicaMovesWhileProducersWriteAndEveryRecordStaysReadable()
    {
        var root = Path.Combine(Path.GetTempPath(), "samsa-arld-" + Guid.NewGuid().ToString("N"));
        string d1 = Path.Combine(root, "d1"), d2 = Path.Combine(root, "d2");
        try
        {
            var broker = new KafkaBroker(new BrokerConfig(new Dictionary<string, string>
            {
                ["broker.id"] = "1", ["log.dirs"] = $"{d1},{d2}", ["log.segment.bytes"] = "16384",
                ["replica.alter.log.dirs.io.max.bytes.per.second"] = "65536",
            }));
            broker.SetAdvertisedEndpointForTests("127.0.0.1", 9092);
            await using var f = new HandlerFixture(broker);
            await f.CreateTopic("jbod", 1);
            int n = 0;
            for (; n < 400; n++) Assert.Equal(0, (await f.Produce("jbod", 0, HandlerFixture.Batch("v-" + n + new string('x', 100)))).ErrorCode);
            var before = await Describe(f);
            string from = before.Results.Single(r => r.Topics.Count > 0).LogDir;
            string to = before.Results.Select(r => r.LogDir).Single(d => d != from);

            var moved = (await f.Send<AlterReplicaLogDirsResponse>(Move(to, "jbod", 0), 2))!;
            Assert.Equal(0, moved.Results.Single().Partitions.Single().ErrorCode);
            // The future replica is reported in the destination while the copy runs (64 KiB/s).
            var during = await Describe(f);
            var future = during.Results.Single(r => r.LogDir == to).Topics.Single().Partitions.Single();
            Assert.True(future.IsFutureKey);
            Assert.False(during.Results.Single(r => r.LogDir == from).Topics.Single().Partitions.Single().IsFutureKey);
            // Produce throughout the move.
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (true)
            {
                Assert.Equal(0, (await f.Produce("jbod", 0, HandlerFixture.Batch("v-" + n + new string('x', 100)))).ErrorCode);
                n++;
                var now = await Describe(f);
                var there = now.Results.Single(r => r.LogDir == to).Topics.SelectMany(t => t.Partitions).ToList();
                if (there.Count == 1 && !there[0].IsFutureKey && now.Results.Single(r => r.LogDir == from).Topics.Count == 0) break;
                Assert.True(DateTime.UtcNow < deadline, "the move did not finish");
                await Task.Delay(5);
            }
            for (int i = 0; i < 20; i++, n++) Assert.Equal(0, (await f.Produce("jbod", 0, HandlerFixture.Batch("v-" + n + new string('x', 100)))).ErrorCode);
            var values = new List<string>();
            long offset = 0;
            while (offset < n)
            {
                var pd = await f.Fetch("jbod", 0, offset);
                Assert.Equal(0, pd.ErrorCode);
                var got = HandlerFixture.Values(pd);
                Assert.NotEmpty(got);
                values.AddRange(got);
                offset += got.Count;
            }
            Assert.Equal(Enumerable.Range(0, n).Select(i => "v-" + i + new string('x', 100)), values);
            Assert.False(Directory.Exists(Path.Combine(from, "jbod-0")));
        }
        finally { try { Directory.Delete(root, recursive: true); } catch (IOException) { } }
    }

    [Fact]
    public async Task ErrorsPerPartitionAsUpstream()
    {
        var root = Path.Combine(Path.GetTempPath(), "samsa-arld-" + Guid.NewGuid().ToString("N"));
        string d1 = Path.Combine(root, "d1"), d2 = Path.Combine(root, "d2");
        try
        {
            var broker = new KafkaBroker(new BrokerConfig(new Dictionary<string, string> { ["broker.id"] = "1", ["log.dirs"] = $"{d1},{d2}" }));
            broker.SetAdvertisedEndpointForTests("127.0.0.1", 9092);
            await using var f = new HandlerFixture(broker);
            await f.CreateTopic("t", 1);
            var r = (await f.Send<AlterReplicaLogDirsResponse>(new AlterReplicaLogDirsRequest
            {
                Dirs =
                [
                    new() { Path = Path.Combine(root, "elsewhere"), Topics = [new() { Name = "t", Partitions = [0] }] },
                    new() { Path = d2, Topics = [new() { Name = "nope", Partitions = [0] }, new() { Name = "t", Partitions = [7] }] },
                ],
            }, 1))!;
            var codes = r.Results.SelectMany(t => t.Partitions.Select(p => (t.TopicName, p.PartitionIndex, p.ErrorCode))).ToList();
            Assert.Contains(("t", 0, (short)ErrorCode.LogDirNotFound), codes);
            Assert.Contains(("nope", 0, (short)ErrorCode.UnknownTopicOrPartition), codes);
            Assert.Contains(("t", 7, (short)ErrorCode.UnknownTopicOrPartition), codes);
            // Naming the directory the replica is already in changes nothing.
            string current = (await Describe(f)).Results.Single(x => x.Topics.Count > 0).LogDir;
            var same = (await f.Send<AlterReplicaLogDirsResponse>(Move(current, "t", 0), 0))!;
            Assert.Equal(0, same.Results.Single().Partitions.Single().ErrorCode);
            Assert.Equal(current, (await Describe(f)).Results.Single(x => x.Topics.Count > 0).LogDir);
        }
        finally { try { Directory.Delete(root, recursive: true); } catch (IOException) { } }
    }

    [Fact]
    public async Task WithAnAuthorizerClusterAlterIsRequired()
    {
        await using var f = new HandlerFixture(("authorizer.class.name", "kafka.security.authorizer.AclAuthorizer"));
        // The fixture's principal is ANONYMOUS with no ACLs.
        var r = (await f.Send<AlterReplicaLogDirsResponse>(Move("/tmp", "t", 0), 2))!;
        Assert.Equal((short)ErrorCode.ClusterAuthorizationFailed, r.Results.Single().Partitions.Single().ErrorCode);
    }
}
