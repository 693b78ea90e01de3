using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Records;
using Samsa.Keeper.Client;
using Xunit;

namespace Samsa.Cluster.Tests;

/// <summary>Partition reassignment (KIP-455) and replication throttles (KIP-73) on three
/// in-process brokers: a partition moves while acks=all producing goes on, a reassignment is
/// cancelled, bad requests get upstream's errors, a new controller finishes what the old one
/// started, the pre-2.5 /admin/reassign_partitions znode is honoured, and a throttle slows
/// catch-up measurably.</summary>
public sealed class ReassignmentTests(KeeperServer server, ITestOutputHelper output) : IClassFixture<KeeperServer>, IDisposable
{
    private const short InvalidReplicaAssignment = 39;
    private const short NotController = 41;
    private const short UnknownTopicOrPartition = 3;
    private const short NoReassignmentInProgress = 85;
    private const short InvalidReplicationFactor = 38;
    private readonly string _data = Path.Combine(Path.GetTempPath(), "samsa-reassign-" + Guid.NewGuid().ToString("N")[..8]);

    public void Dispose()
    {
        try { Directory.Delete(_data, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    // ------------------------------------------------------------------ helpers

    private static async Task<int> ControllerAsync(LocalCluster cluster)
    {
        int controller = -1;
        await LocalCluster.WaitUntilAsync(async () =>
        {
            var md = await cluster.MetadataAsync(cluster.LiveIds.First());
            controller = md.ControllerId;
            return controller >= 0 && cluster.LiveIds.Contains(controller) && md.Brokers.Count == cluster.LiveIds.Count;
        }, TimeSpan.FromSeconds(15), "a controller and every broker visible");
        return controller;
    }

    private static async Task CreateAsync(LocalCluster cluster, string name, int[] replicas, params (string Key, string Value)[] configs)
    {
        await ControllerAsync(cluster);
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(cluster.LiveIds.First()));
        var r = await c.SendAsync<CreateTopicsResponse>(new CreateTopicsRequest
        {
            TimeoutMs = 30000,
            Topics = [new CreateTopicsRequest.CreatableTopic
            {
                Name = name, NumPartitions = -1, ReplicationFactor = -1,
                Assignments = [new CreateTopicsRequest.CreatableReplicaAssignment { PartitionIndex = 0, BrokerIds = replicas.ToList() }],
                Configs = configs.Select(kv => new CreateTopicsRequest.CreatableTopicConfig { Name = kv.Key, Value = kv.Value }).ToList(),
            }],
        }, 5);
        Assert.Equal(0, r!.Topics[0].ErrorCode);
        await LocalCluster.WaitUntilAsync(async () =>
            (await cluster.MetadataAsync(cluster.LiveIds.First(), name)).Topics[0].Partitions is [{ LeaderId: >= 0 } p] && p.IsrNodes.Count == replicas.Length,
            TimeSpan.FromSeconds(15), $"{name} led with a full ISR");
    }

    private static async Task<AlterPartitionReassignmentsResponse> AlterAsync(LocalCluster cluster, int brokerId, string topic, int[]? replicas, int partition = 0,
        bool? allowReplicationFactorChange = null)
    {
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(brokerId));
        return (await c.SendAsync<AlterPartitionReassignmentsResponse>(new AlterPartitionReassignmentsRequest
        {
            TimeoutMs = 30000,
            AllowReplicationFactorChange = allowReplicationFactorChange ?? true,
            Topics = [new AlterPartitionReassignmentsRequest.ReassignableTopic
            {
                Name = topic,
                Partitions = [new AlterPartitionReassignmentsRequest.ReassignablePartition { PartitionIndex = partition, Replicas = replicas?.ToList() }],
            }],
        }, allowReplicationFactorChange is null ? (short)0 : (short)1))!;
    }

    private static async Task<ListPartitionReassignmentsResponse> ListAsync(LocalCluster cluster, int brokerId, string? topic = null)
    {
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(brokerId));
        return (await c.SendAsync<ListPartitionReassignmentsResponse>(new ListPartitionReassignmentsRequest
        {
            TimeoutMs = 30000,
            Topics = topic is null ? null : [new ListPartitionReassignmentsRequest.ListPartitionReassignmentsTopics { Name = topic, PartitionIndexes = [0] }],
        }, 0))!;
    }

    private static async Task<short> ProduceAsync(LocalCluster cluster, int leader, string topic, IReadOnlyList<string> values)
    {
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(leader));
        var batch = RecordBatchBuilder.Build(values.Select(v => ((byte[]?)null, (byte[]?)Encoding.UTF8.GetBytes(v))).ToList(), DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        var r = await c.SendAsync<ProduceResponse>(new ProduceRequest
        {
            Acks = -1, TimeoutMs = 10000,
            TopicData = [new ProduceRequest.TopicProduceData { Name = topic, PartitionData = [new ProduceRequest.PartitionProduceData { Index = 0, Records = batch }] }],
        }, 9);
        return r!.Responses[0].PartitionResponses[0].ErrorCode;
    }

    /// <summary>About <paramref name="bytes"/> of 1000-byte records, acks=all, to the leader.</summary>
    private static async Task PreloadAsync(LocalCluster cluster, int leader, string topic, int bytes)
    {
        var filler = new string('x', 990);
        for (int sent = 0, batch = 0; sent < bytes; batch++)
        {
            var values = Enumerable.Range(0, 100).Select(i => $"p{batch:D5}{i:D3}{filler}").ToList();
            Assert.Equal(0, await ProduceAsync(cluster, leader, topic, values));
            sent += 100 * 1000;
        }
    }

    private static List<string> Values(Samsa.Kafka.Broker.Log.IPartitionLog log) =>
        RecordBatch.ReadRecords(log.Read(log.LogStartOffset, int.MaxValue, log.LogEndOffset, true).Records.Span)
            .Select(r => Encoding.UTF8.GetString(r.Value!)).ToList();

    private static async Task<JsonObject> TopicZNodeAsync(LocalCluster cluster, string topic)
    {
        await using var zk = await cluster.ZooKeeperAsync();
        return await LocalCluster.ReadJsonAsync(zk, "/brokers/topics/" + topic);
    }

    private static int[] Ints(JsonNode? node) => node!.AsArray().Select(n => (int)n!).ToArray();

    /// <summary>Numbered records, one acks=all request each, to whichever broker leads; counts the
    /// acknowledged ones. Errors (leader moving) are retried after a metadata refresh.</summary>
    private sealed class NumberedProducer(LocalCluster cluster, string topic)
    {
        private readonly CancellationTokenSource _stop = new();
        public readonly List<string> Acknowledged = [];
        public int Errors;
        private Task _run = Task.CompletedTask;

        public void Start() => _run = Task.Run(RunAsync);

        private async Task RunAsync()
        {
            int next = 0;
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    var md = await cluster.MetadataAsync(cluster.LiveIds.First(), topic);
                    int leader = md.Topics[0].Partitions[0].LeaderId;
                    if (leader < 0 || !cluster.LiveIds.Contains(leader)) { await Task.Delay(50); continue; }
                    while (!_stop.IsCancellationRequested)
                    {
                        var value = $"m{next:D6}";
                        if (await ProduceAsync(cluster, leader, topic, [value]) != 0) { Interlocked.Increment(ref Errors); break; }
                        lock (Acknowledged) Acknowledged.Add(value);
                        next++;
                    }
                }
                catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or ObjectDisposedException)
                {
                    Interlocked.Increment(ref Errors);
                }
                await Task.Delay(20);
            }
        }

        public int Count { get { lock (Acknowledged) return Acknowledged.Count; } }

        public async Task StopAsync()
        {
            _stop.Cancel();
            await _run;
        }
    }

    // ------------------------------------------------------------------ tests

    [Fact]
    public async Task APartitionMovesWhileAcksAllProducingGoesOnAndTheRemovedReplicaDeletesItsLog()
    {
        Directory.CreateDirectory(_data);
        // The new replica (broker 3) fetches under a follower throttle of 1 MB/s so the move lasts
        // long enough to be seen in progress.
        await using var cluster = await LocalCluster.StartAsync(server.Address!, 3, dataDir: _data, brokerConfig: new Dictionary<string, string>
        {
            ["follower.replication.throttled.rate"] = "1000000",
            ["replication.quota.window.num"] = "2",
            ["replica.fetch.max.bytes"] = "262144",
        });
        int controller = await ControllerAsync(cluster);
        await CreateAsync(cluster, "move", [1, 2], ("follower.replication.throttled.replicas", "0:3"));
        await PreloadAsync(cluster, 1, "move", 2_000_000);
        Assert.True(Directory.Exists(Path.Combine(cluster.LogDir(1), "move-0")));
        Assert.False(Directory.Exists(Path.Combine(cluster.LogDir(3), "move-0")));   // not a replica: no log

        var producer = new NumberedProducer(cluster, "move");
        producer.Start();
        await LocalCluster.WaitUntilAsync(() => Task.FromResult(producer.Count >= 20), TimeSpan.FromSeconds(10), "producing");

        var alter = await AlterAsync(cluster, controller, "move", [2, 3]);
        Assert.Equal(0, alter.ErrorCode);
        Assert.Equal(0, alter.Responses[0].Partitions[0].ErrorCode);
        var sw = Stopwatch.StartNew();

        var listed = await ListAsync(cluster, controller);
        var ongoing = Assert.Single(Assert.Single(listed.Topics).Partitions);
        Assert.Equal("move", listed.Topics[0].Name);
        Assert.Equal([2, 3, 1], ongoing.Replicas);
        Assert.Equal([3], ongoing.AddingReplicas);
        Assert.Equal([1], ongoing.RemovingReplicas);
        var during = await TopicZNodeAsync(cluster, "move");
        Assert.Equal([3], Ints(during["adding_replicas"]!["0"]));
        Assert.Equal([1], Ints(during["removing_replicas"]!["0"]));

        await LocalCluster.WaitUntilAsync(async () => (await ListAsync(cluster, controller)).Topics.Count == 0, TimeSpan.FromSeconds(60), "reassignment complete");
        output.WriteLine($"move of ~2 MB under a 1 MB/s follower throttle took {sw.Elapsed.TotalSeconds:F1} s");
        // A window's credit (1 MB) comes at once, the rest at about 1 MB/s: close to a second at the
        // least; unthrottled, the same copy takes a fraction of that (ALeaderThrottleSlowsCatchUp).
        Assert.True(sw.Elapsed > TimeSpan.FromSeconds(0.8), $"the follower throttle did not slow the copy: {sw.Elapsed.TotalSeconds:F2} s");
        int before = producer.Count;
        await LocalCluster.WaitUntilAsync(() => Task.FromResult(producer.Count >= before + 20), TimeSpan.FromSeconds(15), "producing to the new leader");
        await producer.StopAsync();

        var znode = await TopicZNodeAsync(cluster, "move");
        Assert.Equal([2, 3], Ints(znode["partitions"]!["0"]));
        Assert.Empty(znode["adding_replicas"]!.AsObject());
        Assert.Empty(znode["removing_replicas"]!.AsObject());
        await using (var zk = await cluster.ZooKeeperAsync())
        {
            var state = await LocalCluster.ReadJsonAsync(zk, "/brokers/topics/move/partitions/0/state");
            Assert.Contains((int)state["leader"]!, new[] { 2, 3 });
            Assert.All(Ints(state["isr"]), r => Assert.Contains(r, new[] { 2, 3 }));
        }
        await LocalCluster.WaitUntilAsync(() => Task.FromResult(!Directory.Exists(Path.Combine(cluster.LogDir(1), "move-0"))),
            TimeSpan.FromSeconds(10), "broker 1's partition directory deleted");
        Assert.True(Directory.Exists(Path.Combine(cluster.LogDir(3), "move-0")));

        // Every acknowledged record is in the new leader's log, once and in order.
        var md = await cluster.MetadataAsync(2, "move");
        int leader = md.Topics[0].Partitions[0].LeaderId;
        var log = cluster[leader].Replicas.GetPartition("move", 0)!.Log;
        var numbered = Values(log).Where(v => v.StartsWith('m')).ToList();
        List<string> acked;
        lock (producer.Acknowledged) acked = producer.Acknowledged.ToList();
        Assert.Empty(acked.Except(numbered));
        // Without an idempotent producer a retried request may land twice; first copies stay in order.
        var firstCopies = numbered.Distinct().ToList();
        Assert.Equal(firstCopies.Order(StringComparer.Ordinal), firstCopies);
        output.WriteLine($"acknowledged {acked.Count}, lost {acked.Except(numbered).Count()}, duplicated {numbered.Count - firstCopies.Count}, " +
            $"produce errors retried {producer.Errors}");
        Assert.Equal(2000, Values(log).Count(v => v.StartsWith('p')));
    }

    [Fact]
    public async Task ACancelledReassignmentRevertsAndTheAddedReplicaDeletesItsLog()
    {
        Directory.CreateDirectory(_data);
        // 20 KB/s: broker 3 cannot catch up with 1 MB before the cancellation.
        await using var cluster = await LocalCluster.StartAsync(server.Address!, 3, dataDir: _data, brokerConfig: new Dictionary<string, string>
        {
            ["follower.replication.throttled.rate"] = "20000",
            ["replication.quota.window.num"] = "2",
            ["replica.fetch.max.bytes"] = "65536",
        });
        int controller = await ControllerAsync(cluster);
        await CreateAsync(cluster, "cancel", [1, 2], ("follower.replication.throttled.replicas", "*"));
        await PreloadAsync(cluster, 1, "cancel", 1_000_000);

        Assert.Equal(0, (await AlterAsync(cluster, controller, "cancel", [2, 3])).Responses[0].Partitions[0].ErrorCode);
        await LocalCluster.WaitUntilAsync(() => Task.FromResult(cluster[3].Replicas.GetPartition("cancel", 0)!.Log.LogEndOffset > 0),
            TimeSpan.FromSeconds(10), "broker 3 started copying");
        Assert.True(Directory.Exists(Path.Combine(cluster.LogDir(3), "cancel-0")));
        Assert.Single((await ListAsync(cluster, controller, "cancel")).Topics);
        // Upstream refuses to add partitions to a topic while one of its partitions moves.
        await using (var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(controller)))
        {
            var grow = await c.SendAsync<CreatePartitionsResponse>(new CreatePartitionsRequest
            {
                Topics = [new CreatePartitionsRequest.CreatePartitionsTopic { Name = "cancel", Count = 2, Assignments = null }], TimeoutMs = 10000,
            }, 3);
            Assert.Equal(60, grow!.Results[0].ErrorCode);   // REASSIGNMENT_IN_PROGRESS
        }

        var cancel = await AlterAsync(cluster, controller, "cancel", null);
        Assert.Equal(0, cancel.Responses[0].Partitions[0].ErrorCode);
        Assert.Empty((await ListAsync(cluster, controller)).Topics);
        var znode = await TopicZNodeAsync(cluster, "cancel");
        // Back to the original replicas; like upstream, not necessarily in their original order (the
        // in-progress list [2,3,1] minus the adding 3 gives [2,1]: see KafkaController.updateCurrentReassignment).
        Assert.Equal([1, 2], Ints(znode["partitions"]!["0"]).Order());
        Assert.Empty(znode["adding_replicas"]!.AsObject());
        await LocalCluster.WaitUntilAsync(() => Task.FromResult(!Directory.Exists(Path.Combine(cluster.LogDir(3), "cancel-0"))),
            TimeSpan.FromSeconds(10), "broker 3's partition directory deleted");
        Assert.Equal(1, (await cluster.MetadataAsync(1, "cancel")).Topics[0].Partitions[0].LeaderId);

        // Nothing left to cancel.
        Assert.Equal(NoReassignmentInProgress, (await AlterAsync(cluster, controller, "cancel", null)).Responses[0].Partitions[0].ErrorCode);
    }

    [Fact]
    public async Task InvalidRequestsGetUpstreamsErrors()
    {
        await using var cluster = await LocalCluster.StartAsync(server.Address!, 3);
        int controller = await ControllerAsync(cluster);
        await CreateAsync(cluster, "bad", [1, 2]);
        async Task<short> Code(string topic, int[]? replicas, int partition = 0) =>
            (await AlterAsync(cluster, controller, topic, replicas, partition)).Responses[0].Partitions[0].ErrorCode;

        Assert.Equal(InvalidReplicaAssignment, await Code("bad", []));
        Assert.Equal(InvalidReplicaAssignment, await Code("bad", [2, 2]));
        Assert.Equal(InvalidReplicaAssignment, await Code("bad", [1, -1]));
        Assert.Equal(InvalidReplicaAssignment, await Code("bad", [1, 9]));   // broker 9 is not alive
        Assert.Equal(UnknownTopicOrPartition, await Code("nope", [1, 2]));
        Assert.Equal(UnknownTopicOrPartition, await Code("bad", [1, 2], partition: 5));
        Assert.Equal(NoReassignmentInProgress, await Code("bad", null));
        // v1 with AllowReplicationFactorChange false (KIP-860): 2 replicas -> 3 is refused, a move
        // keeping 2 is judged as usual.
        var rf = await AlterAsync(cluster, controller, "bad", [1, 2, 3], allowReplicationFactorChange: false);
        Assert.False(rf.AllowReplicationFactorChange);
        Assert.Equal((InvalidReplicationFactor, "The replication factor is changed from 2 to 3"),
            (rf.Responses[0].Partitions[0].ErrorCode, rf.Responses[0].Partitions[0].ErrorMessage));
        Assert.Equal(InvalidReplicaAssignment, (await AlterAsync(cluster, controller, "bad", [1, 9], allowReplicationFactorChange: false)).Responses[0].Partitions[0].ErrorCode);
        // The same replicas: accepted, nothing moves.
        Assert.Equal(0, await Code("bad", [1, 2]));
        Assert.Empty((await ListAsync(cluster, controller)).Topics);
        var unchanged = await TopicZNodeAsync(cluster, "bad");
        Assert.Equal([1, 2], Ints(unchanged["partitions"]!["0"]));

        // In ZooKeeper mode only the controller takes these requests.
        int other = cluster.LiveIds.First(b => b != controller);
        var notController = await AlterAsync(cluster, other, "bad", [2, 3]);
        Assert.Equal(NotController, notController.ErrorCode);
        Assert.Empty(notController.Responses);
        Assert.Equal(NotController, (await ListAsync(cluster, other)).ErrorCode);
    }

    [Fact]
    public async Task ANewControllerCompletesAReassignmentTheOldOneStarted()
    {
        await using var cluster = await LocalCluster.StartAsync(server.Address!, 3, brokerConfig: new Dictionary<string, string>
        {
            ["follower.replication.throttled.rate"] = "300000",
            ["replication.quota.window.num"] = "2",
            ["replica.fetch.max.bytes"] = "65536",
        });
        int controller = await ControllerAsync(cluster);
        var others = cluster.LiveIds.Where(b => b != controller).Order().ToArray();
        int stays = others[0], joins = others[1];
        await CreateAsync(cluster, "resume", [controller, stays], ("follower.replication.throttled.replicas", $"0:{joins}"));
        await PreloadAsync(cluster, controller, "resume", 1_000_000);
        Assert.Equal(0, (await AlterAsync(cluster, controller, "resume", [stays, joins])).Responses[0].Partitions[0].ErrorCode);

        // The controller (also the leader and the replica being removed) goes away mid-move.
        await cluster.StopBrokerAsync(controller);
        int next = -1;
        await LocalCluster.WaitUntilAsync(async () =>
        {
            next = (await cluster.MetadataAsync(stays)).ControllerId;
            return next >= 0 && next != controller;
        }, TimeSpan.FromSeconds(15), "a new controller");
        await LocalCluster.WaitUntilAsync(async () => (await ListAsync(cluster, next)).Topics.Count == 0, TimeSpan.FromSeconds(60), "reassignment completed by the new controller");
        Assert.Equal([stays, joins], Ints((await TopicZNodeAsync(cluster, "resume"))["partitions"]!["0"]));
        Assert.Equal(1000, Values(cluster[joins].Replicas.GetPartition("resume", 0)!.Log).Count);
    }

    [Fact]
    public async Task ATopicBeingReassignedIsDeletedOnceTheMoveEnds()
    {
        await using var cluster = await LocalCluster.StartAsync(server.Address!, 3, brokerConfig: new Dictionary<string, string>
        {
            ["follower.replication.throttled.rate"] = "300000",
            ["replication.quota.window.num"] = "2",
            ["replica.fetch.max.bytes"] = "65536",
        });
        int controller = await ControllerAsync(cluster);
        await CreateAsync(cluster, "doomed", [1, 2], ("follower.replication.throttled.replicas", "0:3"));
        await PreloadAsync(cluster, 1, "doomed", 1_000_000);
        Assert.Equal(0, (await AlterAsync(cluster, controller, "doomed", [2, 3])).Responses[0].Partitions[0].ErrorCode);

        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(controller));
        var delete = c.SendAsync<DeleteTopicsResponse>(new DeleteTopicsRequest { TopicNames = ["doomed"], TimeoutMs = 30000 }, 4);
        await using var zk = await cluster.ZooKeeperAsync();
        await LocalCluster.WaitUntilAsync(async () => await zk.ExistsAsync("/admin/delete_topics/doomed") is not null, TimeSpan.FromSeconds(10), "marked for deletion");
        await Task.Delay(300);
        // Upstream marks the topic ineligible for deletion while a partition moves.
        Assert.NotNull(await zk.ExistsAsync("/brokers/topics/doomed"));
        Assert.Single((await ListAsync(cluster, controller)).Topics);

        var deleted = await delete;
        Assert.Equal(0, deleted!.Responses[0].ErrorCode);
        Assert.Null(await zk.ExistsAsync("/brokers/topics/doomed"));
        Assert.Empty((await ListAsync(cluster, controller)).Topics);
    }

    [Fact]
    public async Task TheLegacyReassignPartitionsZNodeIsCarriedOutAndRemoved()
    {
        await using var cluster = await LocalCluster.StartAsync(server.Address!, 3);
        await CreateAsync(cluster, "legacy", [1, 2]);
        Assert.Equal(0, await ProduceAsync(cluster, 1, "legacy", ["a", "b", "c"]));
        await using var zk = await cluster.ZooKeeperAsync();
        // What kafka-reassign-partitions.sh --zookeeper (Kafka < 2.5) writes.
        await zk.CreateAsync("/admin/reassign_partitions",
            Encoding.UTF8.GetBytes("""{"version":1,"partitions":[{"topic":"legacy","partition":0,"replicas":[3,2]},{"topic":"gone","partition":0,"replicas":[1]}]}"""),
            Acls.OpenAclUnsafe);
        await LocalCluster.WaitUntilAsync(async () => await zk.ExistsAsync("/admin/reassign_partitions") is null, TimeSpan.FromSeconds(30), "the znode removed");
        var moved = await LocalCluster.ReadJsonAsync(zk, "/brokers/topics/legacy");
        Assert.Equal([3, 2], Ints(moved["partitions"]!["0"]));
        Assert.Equal(["a", "b", "c"], Values(cluster[3].Replicas.GetPartition("legacy", 0)!.Log));
        Assert.False(cluster[1].Replicas.GetPartition("legacy", 0)!.IsHostedLocally);
    }

    // kafkajs 2.2.4 (compat/kafkajs, installed by `npm ci` there): its admin client finds the
    // controller from Metadata and sends AlterPartitionReassignments / ListPartitionReassignments v0.
    private const string KafkajsScript = """
        const { Kafka, logLevel } = require('kafkajs')
        const [bootstrap, topic, target] = process.argv.slice(2)
        const admin = new Kafka({ clientId: 'reassign-test', brokers: [bootstrap], logLevel: logLevel.NOTHING }).admin()
        const out = (o) => console.log(JSON.stringify(o))
        ;(async () => {
          await admin.connect()
          await admin.alterPartitionReassignments({ topics: [{ topic, partitionAssignment: [{ partition: 0, replicas: JSON.parse(target) }] }] })
          out({ during: (await admin.listPartitionReassignments({})).topics })
          const start = Date.now()
          while ((await admin.listPartitionReassignments({})).topics.length > 0) {
            if (Date.now() - start > 60000) throw new Error('reassignment did not complete')
            await new Promise(r => setTimeout(r, 100))
          }
          out({ after: (await admin.listPartitionReassignments({})).topics })
          try {
            await admin.alterPartitionReassignments({ topics: [{ topic, partitionAssignment: [{ partition: 0, replicas: [1, 9] }] }] })
            out({ invalid: 'accepted' })
          } catch (e) { out({ invalid: (e.errors || [e]).map(x => x.type || String(x)).join(',') }) }
          await admin.disconnect()
        })().catch(e => { console.error(e); process.exit(1) })
        """;

    [Fact]
    public async Task KafkajsAdminMovesAPartition()
    {
        string? modules = null;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Compat.sln")))
            {
                modules = Path.Combine(dir.FullName, "compat", "kafkajs", "node_modules");
                break;
            }
        Assert.SkipWhen(modules is null || !Directory.Exists(Path.Combine(modules, "kafkajs")), "kafkajs not installed: run `npm ci` in compat/kafkajs");
        await using var cluster = await LocalCluster.StartAsync(server.Address!, 3, brokerConfig: new Dictionary<string, string>
        {
            ["follower.replication.throttled.rate"] = "500000",
            ["replication.quota.window.num"] = "2",
            ["replica.fetch.max.bytes"] = "65536",
        });
        await CreateAsync(cluster, "js", [1, 2], ("follower.replication.throttled.replicas", "*"));
        await PreloadAsync(cluster, 1, "js", 1_000_000);

        var script = Path.Combine(Path.GetTempPath(), $"reassign-{Guid.NewGuid():N}.js");
        await File.WriteAllTextAsync(script, KafkajsScript);
        try
        {
            var psi = new ProcessStartInfo("node", [script, cluster.Bootstrap(1), "js", "[2,3]"])
            {
                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            };
            psi.Environment["NODE_PATH"] = modules!;
            using var node = Process.Start(psi)!;
            var stdout = node.StandardOutput.ReadToEndAsync();
            var stderr = node.StandardError.ReadToEndAsync();
            await node.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(120));
            Assert.True(node.ExitCode == 0, await stderr);
            var lines = (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
            var during = lines.Single(l => l.ContainsKey("during"))["during"]!.AsArray();
            var p = during.Single()!["partitions"]!.AsArray().Single()!;
            Assert.Equal("js", (string)during[0]!["name"]!);
            Assert.Equal([2, 3, 1], Ints(p["replicas"]));
            Assert.Equal([3], Ints(p["addingReplicas"]));
            Assert.Equal([1], Ints(p["removingReplicas"]));
            Assert.Empty(lines.Single(l => l.ContainsKey("after"))["after"]!.AsArray());
            Assert.Equal("INVALID_REPLICA_ASSIGNMENT", (string)lines.Single(l => l.ContainsKey("invalid"))["invalid"]!);
        }
        finally
        {
            File.Delete(script);
        }
        var moved = await TopicZNodeAsync(cluster, "js");
        Assert.Equal([2, 3], Ints(moved["partitions"]!["0"]));
        Assert.Equal(1000, Values(cluster[3].Replicas.GetPartition("js", 0)!.Log).Count);
    }

    [Fact]
    public async Task ALeaderThrottleSlowsCatchUp()
    {
        const long rate = 500_000;
        await using var cluster = await LocalCluster.StartAsync(server.Address!, 3, brokerConfig: new Dictionary<string, string>
        {
            ["leader.replication.throttled.rate"] = rate.ToString(),
            ["replication.quota.window.num"] = "2",
            ["replica.fetch.max.bytes"] = "131072",
        });
        int controller = await ControllerAsync(cluster);
        await CreateAsync(cluster, "fast", [1, 2]);
        await CreateAsync(cluster, "slow", [1, 2], ("leader.replication.throttled.replicas", "0:1,0:2"));
        await PreloadAsync(cluster, 1, "fast", 4_000_000);
        await PreloadAsync(cluster, 1, "slow", 4_000_000);

        async Task<(double Seconds, long Bytes)> MoveAsync(string topic)
        {
            long bytes = cluster[1].Replicas.GetPartition(topic, 0)!.Log.SizeInBytes;
            var sw = Stopwatch.StartNew();
            Assert.Equal(0, (await AlterAsync(cluster, controller, topic, [1, 2, 3])).Responses[0].Partitions[0].ErrorCode);
            await LocalCluster.WaitUntilAsync(async () => (await ListAsync(cluster, controller, topic)).Topics.Count == 0, TimeSpan.FromSeconds(90), topic + " moved");
            return (sw.Elapsed.TotalSeconds, bytes);
        }

        var fast = await MoveAsync("fast");
        var slow = await MoveAsync("slow");
        double slowRate = slow.Bytes / slow.Seconds;
        output.WriteLine($"unthrottled: {fast.Bytes} bytes in {fast.Seconds:F2} s ({fast.Bytes / fast.Seconds / 1e6:F1} MB/s); " +
            $"leader throttle {rate} B/s: {slow.Bytes} bytes in {slow.Seconds:F2} s ({slowRate / 1e3:F0} KB/s)");
        // Generous bounds: the throttled copy runs near the limit (a window's credit and one fetch
        // of overshoot allowed), and clearly slower than the unthrottled one.
        Assert.True(slowRate < rate * 1.6, $"throttled catch-up ran at {slowRate:F0} B/s");
        Assert.True(slowRate > rate * 0.2, $"throttled catch-up ran at only {slowRate:F0} B/s");
        Assert.True(slow.Seconds > 3 * fast.Seconds, $"throttled {slow.Seconds:F2} s vs unthrottled {fast.Seconds:F2} s");
        Assert.Equal(4000, Values(cluster[3].Replicas.GetPartition("slow", 0)!.Log).Count);
    }
}
