using System.Diagnostics;
using Confluent.Kafka.Admin;
using Confluent.Kafka;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Protocol.Messages;
using Xunit;

namespace Samsa.Cluster.Tests;

/// <summary>
/// KIP-1071 streams groups on the 3-broker cluster, driven by three simulated Streams clients over
/// the wire: the coordinator is found through a broker that is not the coordinator; the
/// coordinator's broker creates the internal topics (replicated to all three brokers); every
/// active task runs exactly once, standbys on other processes; after the coordinator's broker is
/// killed, the members heartbeat to the new coordinator with their epochs and keep their tasks.
/// </summary>
public sealed class StreamsGroupClusterTests(KeeperServer server) : IClassFixture<KeeperServer>
{
    private const short NoError = 0, CoordinatorLoadInProgress = 14, CoordinatorNotAvailable = 15, NotCoordinator = 16;

    private string Server
    {
        get
        {
            Assert.SkipWhen(server.SkipReason is not null, server.SkipReason ?? "");
            return server.Address!;
        }
    }

    private sealed class Member(string id, string process)
    {
        public readonly string Id = id, Process = process;
        public int Epoch;
        public bool Joined;
        public Dictionary<string, SortedSet<int>> Active = new(), Standby = new();
        public KafkaWireClient? Client;

        private static List<StreamsGroupHeartbeatRequest.TaskIds> Ids(Dictionary<string, SortedSet<int>> d) =>
            d.Select(kv => new StreamsGroupHeartbeatRequest.TaskIds { SubtopologyId = kv.Key, Partitions = kv.Value.ToList() }).ToList();

        private static Dictionary<string, SortedSet<int>> From(List<StreamsGroupHeartbeatResponse.TaskIds> l) =>
            l.ToDictionary(t => t.SubtopologyId, t => new SortedSet<int>(t.Partitions));

        /// <summary>One heartbeat; returns the error code (retriable coordinator errors are for the caller).</summary>
        public async Task<short> StepAsync(string group)
        {
            var request = new StreamsGroupHeartbeatRequest
            {
                GroupId = group, MemberId = Id, MemberEpoch = Joined ? Epoch : 0, EndpointInformationEpoch = -1,
                ActiveTasks = Ids(Active), StandbyTasks = Ids(Standby), WarmupTasks = [],
            };
            if (!Joined)
            {
                request.RebalanceTimeoutMs = 30_000;
                request.ProcessId = Process;
                request.ClientTags = [];
                request.Topology = new()
                {
                    Subtopologies =
                    [
                        new() { SubtopologyId = "0", SourceTopics = ["words"], StateChangelogTopics = [new() { Name = "wc-counts-changelog" }] },
                    ],
                };
            }
            var r = (await Client!.SendAsync<StreamsGroupHeartbeatResponse>(request, 0))!;
            if (r.ErrorCode != NoError) return r.ErrorCode;
            Joined = true;
            Epoch = r.MemberEpoch;
            if (r.ActiveTasks is not null) Active = From(r.ActiveTasks);
            if (r.StandbyTasks is not null) Standby = From(r.StandbyTasks);
            return NoError;
        }

        public IEnumerable<(string, int)> ActiveTasks => Active.SelectMany(kv => kv.Value.Select(p => (kv.Key, p)));
        public IEnumerable<(string, int)> StandbyTasks => Standby.SelectMany(kv => kv.Value.Select(p => (kv.Key, p)));
    }

    private static void AssertSafe(IReadOnlyList<Member> members)
    {
        var owner = new Dictionary<(string, int), Member>();
        foreach (var m in members)
            foreach (var t in m.ActiveTasks)
                Assert.True(owner.TryAdd(t, m), $"active task {t} owned twice");
        foreach (var m in members)
            foreach (var t in m.StandbyTasks)
                if (owner.TryGetValue(t, out var o)) Assert.NotEqual(o.Process, m.Process);
    }

    private static async Task<FindCoordinatorResponse> FindAsync(LocalCluster cluster, int brokerId, string key)
    {
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(brokerId));
        var sw = Stopwatch.StartNew();
        while (true)
        {
            var r = (await c.SendAsync<FindCoordinatorResponse>(new FindCoordinatorRequest { Key = key }, 3))!;
            if (r.ErrorCode == NoError) return r;
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30), $"FindCoordinator({key}) kept answering {r.ErrorCode}");
            await Task.Delay(100);
        }
    }

    // The group forms within ~100 ms of the offsets topic's creation; before heartbeats waited for the
    // offsets partition's high watermark (acks=all, as upstream) the followers sometimes had none of
    // the group's records when the coordinator died, and the new coordinator answered GROUP_ID_NOT_FOUND.
    [Fact]
    public async Task TasksRunOnceAndSurviveACoordinatorKill()
    {
        var config = new Dictionary<string, string>
        {
            ["offsets.topic.num.partitions"] = "6", ["offsets.topic.replication.factor"] = "3", ["default.replication.factor"] = "3",
            ["min.insync.replicas"] = "2", ["group.streams.num.standby.replicas"] = "1",
        };
        await using var cluster = await LocalCluster.StartAsync(Server, 3, viaProxies: true, brokerConfig: config, sessionTimeoutMs: 4000);
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.Bootstrap(1) }).Build())
            await admin.CreateTopicsAsync([new TopicSpecification { Name = "words", NumPartitions = 6, ReplicationFactor = 3 }]);
        await cluster.LedMetadataAsync(1, "words", 6);

        // A group whose coordinator is not broker 1, found through broker 1.
        string group = "";
        int coordinator = 0;
        for (int i = 0; ; i++)
        {
            group = $"wordcount-{i}";
            coordinator = (await FindAsync(cluster, 1, group)).NodeId;
            if (coordinator != 1) break;
        }
        var members = new[] { new Member("m-a", "proc-a"), new Member("m-b", "proc-b"), new Member("m-c", "proc-c") };
        foreach (var m in members) m.Client = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(coordinator));
        try
        {
            // Heartbeat until the internal topic exists and the group is stable with all 6 tasks placed.
            await LocalCluster.WaitUntilAsync(async () =>
            {
                foreach (var m in members)
                {
                    Assert.Equal(NoError, await m.StepAsync(group));
                    AssertSafe(members);
                }
                return members.Sum(m => m.ActiveTasks.Count()) == 6 && members.All(m => m.ActiveTasks.Count() == 2)
                    && members.Select(m => m.Epoch).Distinct().Count() == 1 && members.Sum(m => m.StandbyTasks.Count()) == 6;
            }, TimeSpan.FromSeconds(60), "three members each run two tasks with one standby copy each");
            var changelog = (await cluster.MetadataAsync(1, "wc-counts-changelog")).Topics.Single();
            Assert.Equal(6, changelog.Partitions.Count);
            Assert.All(changelog.Partitions, p => Assert.Equal(3, p.ReplicaNodes.Count));

            var epochs = members.ToDictionary(m => m.Id, m => m.Epoch);
            var tasks = members.ToDictionary(m => m.Id, m => m.ActiveTasks.ToHashSet());
            // The group's records are on all three replicas of its offsets partition before the kill.
            int partition = Samsa.Kafka.Broker.Groups.GroupCoordinator.PartitionFor(group, 6);
            await LocalCluster.WaitUntilAsync(async () =>
                (await cluster.MetadataAsync(coordinator, "__consumer_offsets")).Topics[0].Partitions.Single(p => p.PartitionIndex == partition).IsrNodes.Count == 3,
                TimeSpan.FromSeconds(20), "the group's offsets partition has a full ISR");
            foreach (var m in members) await m.StepAsync(group);

            foreach (var m in members) await m.Client!.DisposeAsync();
            await cluster.CrashBrokerAsync(coordinator);
            int survivor = new[] { 1, 2, 3 }.First(b => b != coordinator);
            FindCoordinatorResponse moved = null!;
            await LocalCluster.WaitUntilAsync(async () =>
            {
                moved = await FindAsync(cluster, survivor, group);
                return moved.NodeId != coordinator;
            }, TimeSpan.FromSeconds(30), "another broker coordinates the group");
            foreach (var m in members) m.Client = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(moved.NodeId));
            await LocalCluster.WaitUntilAsync(async () =>
            {
                short e = await members[0].StepAsync(group);
                Assert.True(e is NoError or CoordinatorLoadInProgress or NotCoordinator or CoordinatorNotAvailable, $"heartbeat error {e}");
                return e == NoError;
            }, TimeSpan.FromSeconds(20), "the new coordinator answers the heartbeat");
            foreach (var m in members.Skip(1)) Assert.Equal(NoError, await m.StepAsync(group));
            // Same epochs, same tasks: nothing moved with the coordinator.
            Assert.All(members, m => Assert.Equal(epochs[m.Id], m.Epoch));
            Assert.All(members, m => Assert.Equal(tasks[m.Id], m.ActiveTasks.ToHashSet()));
            AssertSafe(members);

            // DescribeGroups/StreamsGroupDescribe at the new coordinator show the reloaded group.
            var d = (await members[0].Client!.SendAsync<StreamsGroupDescribeResponse>(new StreamsGroupDescribeRequest { GroupIds = [group] }, 0))!;
            Assert.Equal(("Stable", 3), (d.Groups[0].GroupState, d.Groups[0].Members.Count));
        }
        finally
        {
            foreach (var m in members) if (m.Client is not null) await m.Client.DisposeAsync();
        }
    }
}
