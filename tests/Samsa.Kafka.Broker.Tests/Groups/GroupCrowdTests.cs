using System.Diagnostics;
using System.Text;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Tests.EndToEnd;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;
using Xunit.Abstractions;

namespace Samsa.Kafka.Broker.Tests.Groups;

/// <summary>
/// Issue 6, hostile input: thousands of members joining one group at once, over real TCP
/// connections, while another group on the same coordinator keeps going through
/// join / sync / heartbeat / commit / fetch. The crowd must either form one generation or get
/// upstream's errors (GROUP_MAX_SIZE_REACHED when group.max.size is set), memory must stay bounded,
/// and the bystander must not stall.
/// </summary>
[Collection(GroupCrowdCollection.Name)]
public class GroupCrowdTests(ITestOutputHelper output)
{
    private static readonly byte[] Subscription = GroupHarness.Subscription("crowd-topic");

    private static JoinGroupRequest Join(string group, string memberId, int session = 30_000, int rebalance = 120_000) => new()
    {
        GroupId = group, MemberId = memberId, SessionTimeoutMs = session, RebalanceTimeoutMs = rebalance, ProtocolType = "consumer",
        Protocols = [new JoinGroupRequest.JoinGroupRequestProtocol { Name = "range", Metadata = Subscription }],
    };

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern int getrlimit(int resource, out RLimit limit);
    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern int setrlimit(int resource, in RLimit limit);
    private struct RLimit { public ulong Current, Max; }

    /// <summary>Each member is a connection on both ends (two descriptors per member in this
    /// process): raise the soft RLIMIT_NOFILE to the hard limit, as a broker host would.</summary>
    private static void RaiseOpenFileLimit(int needed)
    {
        const int RLIMIT_NOFILE = 7;
        if (!OperatingSystem.IsLinux() || getrlimit(RLIMIT_NOFILE, out var limit) != 0 || limit.Current >= (ulong)needed) return;
        setrlimit(RLIMIT_NOFILE, new RLimit { Current = limit.Max, Max = limit.Max });
    }

    private static async Task<List<KafkaWireClient>> ConnectManyAsync(int port, int count)
    {
        RaiseOpenFileLimit(4 * count + 1_000);
        var clients = new List<KafkaWireClient>(count);
        // In slices, so the listen backlog is not what the test measures.
        for (int i = 0; i < count; i += 100)
            clients.AddRange(await Task.WhenAll(Enumerable.Range(i, Math.Min(100, count - i)).Select(_ => KafkaWireClient.ConnectAsync("127.0.0.1", port))));
        return clients;
    }

    private static async Task FindCoordinatorAsync(int port)
    {
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", port);
        var r = await c.SendAsync<FindCoordinatorResponse>(new FindCoordinatorRequest { Key = "crowd", KeyType = 0 }, 3);
        Assert.Equal(0, r!.ErrorCode);
        await ProofCreateTopic(c, "crowd-topic");
    }

    private static async Task ProofCreateTopic(KafkaWireClient c, string name) =>
        await EndToEnd.Proof.ProofClient.CreateTopicAsync(c, name);

    /// <summary>A one-member group looping through every group API; returns the latency of each
    /// round after the first (the first waits group.initial.rebalance.delay.ms).</summary>
    private static async Task<List<double>> BystanderAsync(int port, CancellationToken stop)
    {
        var rounds = new List<double>();
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", port);
        var first = await c.SendAsync<JoinGroupResponse>(Join("steady", "", session: 10_000, rebalance: 10_000), 5);
        Assert.Equal((short)ErrorCode.MemberIdRequired, first!.ErrorCode);
        string memberId = first.MemberId;
        long committed = 0;
        for (int round = 0; !stop.IsCancellationRequested || round < 3; round++)
        {
            var sw = Stopwatch.StartNew();
            var join = await c.SendAsync<JoinGroupResponse>(Join("steady", memberId, session: 10_000, rebalance: 10_000), 5);
            Assert.True(join!.ErrorCode == 0, $"bystander JoinGroup failed with {join.ErrorCode}");
            var sync = await c.SendAsync<SyncGroupResponse>(new SyncGroupRequest
            {
                GroupId = "steady", GenerationId = join.GenerationId, MemberId = memberId,
                Assignments = [new SyncGroupRequest.SyncGroupRequestAssignment { MemberId = memberId, Assignment = [7, (byte)round] }],
            }, 3);
            Assert.True(sync!.ErrorCode == 0, $"bystander SyncGroup failed with {sync.ErrorCode}");
            Assert.Equal([7, (byte)round], sync.Assignment);
            var hb = await c.SendAsync<HeartbeatResponse>(new HeartbeatRequest { GroupId = "steady", GenerationId = join.GenerationId, MemberId = memberId }, 3);
            Assert.True(hb!.ErrorCode == 0, $"bystander Heartbeat failed with {hb.ErrorCode}");
            committed++;
            var commit = await c.SendAsync<OffsetCommitResponse>(new OffsetCommitRequest
            {
                GroupId = "steady", GenerationIdOrMemberEpoch = join.GenerationId, MemberId = memberId,
                Topics = [new() { Name = "crowd-topic", Partitions = [new() { PartitionIndex = 0, CommittedOffset = committed }] }],
            }, 7);
            Assert.True(commit!.Topics[0].Partitions[0].ErrorCode == 0, $"bystander commit failed with {commit.Topics[0].Partitions[0].ErrorCode}");
            var fetch = await c.SendAsync<OffsetFetchResponse>(new OffsetFetchRequest
            {
                GroupId = "steady", Topics = [new() { Name = "crowd-topic", PartitionIndexes = [0] }],
            }, 5);
            Assert.Equal(committed, fetch!.Topics[0].Partitions[0].CommittedOffset);
            if (round > 0) rounds.Add(sw.Elapsed.TotalMilliseconds);
        }
        return rounds;
    }

    private sealed record Joined(KafkaWireClient Client, string MemberId, JoinGroupResponse Response);

    /// <summary>Each member on its own connection, as real consumers are: MEMBER_ID_REQUIRED (KIP-394),
    /// then the join that waits for the rebalance.</summary>
    private static async Task<Joined> JoinMemberAsync(KafkaWireClient c, string group)
    {
        var first = await c.SendAsync<JoinGroupResponse>(Join(group, ""), 5);
        // A full group refuses before handing out an id.
        if (first!.ErrorCode == (short)ErrorCode.GroupMaxSizeReached) return new Joined(c, "", first);
        Assert.Equal((short)ErrorCode.MemberIdRequired, first.ErrorCode);
        var second = await c.SendAsync<JoinGroupResponse>(Join(group, first.MemberId), 5);
        return new Joined(c, first.MemberId, second!);
    }

    /// <summary>Writes <paramref name="count"/> first JoinGroups back to back on one connection, then
    /// reads the answers: each must be MEMBER_ID_REQUIRED with a fresh id.</summary>
    private static async Task<List<string>> PipelinedFirstJoinsAsync(KafkaWireClient c, string group, int count)
    {
        using var burst = new MemoryStream();
        for (int i = 1; i <= count; i++) burst.Write(c.Encode(Join(group, "", session: 6_000), 5, i));
        await c.SendRawAsync(burst.ToArray());
        var ids = new List<string>(count);
        for (int i = 1; i <= count; i++)
        {
            var frame = await c.ReadFrameAsync() ?? throw new IOException("broker closed the flooding connection");
            var r = KafkaWireClient.Decode<JoinGroupResponse>(frame, (short)ApiKey.JoinGroup, 5, i);
            Assert.Equal((short)ErrorCode.MemberIdRequired, r.ErrorCode);
            ids.Add(r.MemberId);
        }
        return ids;
    }

    [Fact]
    public async Task ThousandsOfMembersJoiningAtOnceFormOneGenerationWhileAnotherGroupKeepsServing()
    {
        const int Members = 5_000;
        const int Flooders = 4, FloodPerConnection = 1_000;
        await using var live = await LiveBroker.StartAsync(null, ("group.initial.rebalance.delay.ms", "1000"));
        int port = live.Broker.BoundEndPoint.Port;
        await FindCoordinatorAsync(port);
        var clients = await ConnectManyAsync(port, Members);
        var flooders = await ConnectManyAsync(port, Flooders);
        long heapBefore = GC.GetTotalMemory(forceFullCollection: true);
        try
        {
            using var stop = new CancellationTokenSource();
            var bystander = Task.Run(() => BystanderAsync(port, stop.Token));

            var sw = Stopwatch.StartNew();
            // The flood: 4,000 newcomers that take a member id and never come back.
            var flood = flooders.Select(f => Task.Run(() => PipelinedFirstJoinsAsync(f, "crowd", FloodPerConnection))).ToList();
            var joins = clients.Select(c => Task.Run(() => JoinMemberAsync(c, "crowd"))).ToList();
            var joined = await Task.WhenAll(joins).WaitAsync(TimeSpan.FromMinutes(3));
            var joinTime = sw.Elapsed;
            var floodIds = (await Task.WhenAll(flood)).SelectMany(x => x).ToList();
            Assert.Equal(Flooders * FloodPerConnection, floodIds.Distinct().Count());

            // One generation holds every member; exactly one leader saw all of them.
            Assert.All(joined, j => Assert.Equal(0, j.Response.ErrorCode));
            int generation = joined[0].Response.GenerationId;
            Assert.All(joined, j => Assert.Equal(generation, j.Response.GenerationId));
            var leaders = joined.Where(j => j.Response.Leader == j.MemberId).ToList();
            var leader = Assert.Single(leaders);
            Assert.Equal(joined.Select(j => j.MemberId).Order(), leader.Response.Members.Select(m => m.MemberId).Order());
            Assert.All(joined.Where(j => j != leader), j => Assert.Empty(j.Response.Members));

            // SyncGroup: each member's assignment is its own id, so a mix-up would show.
            var followerSyncs = joined.Where(j => j != leader).Select(j => Task.Run(async () =>
                (j, await j.Client.SendAsync<SyncGroupResponse>(new SyncGroupRequest { GroupId = "crowd", GenerationId = generation, MemberId = j.MemberId }, 3)))).ToList();
            var leaderSync = await leader.Client.SendAsync<SyncGroupResponse>(new SyncGroupRequest
            {
                GroupId = "crowd", GenerationId = generation, MemberId = leader.MemberId,
                Assignments = joined.Select(j => new SyncGroupRequest.SyncGroupRequestAssignment { MemberId = j.MemberId, Assignment = Encoding.UTF8.GetBytes(j.MemberId) }).ToList(),
            }, 3);
            Assert.Equal(0, leaderSync!.ErrorCode);
            foreach (var (j, s) in await Task.WhenAll(followerSyncs).WaitAsync(TimeSpan.FromMinutes(2)))
            {
                Assert.Equal(0, s!.ErrorCode);
                Assert.Equal(j.MemberId, Encoding.UTF8.GetString(s.Assignment));
            }
            var stableTime = sw.Elapsed;
            var beats = await Task.WhenAll(joined.Select(j => Task.Run(async () =>
                (await j.Client.SendAsync<HeartbeatResponse>(new HeartbeatRequest { GroupId = "crowd", GenerationId = generation, MemberId = j.MemberId }, 3))!.ErrorCode)));
            Assert.All(beats, e => Assert.Equal(0, e));
            long heapDuring = GC.GetTotalMemory(forceFullCollection: true);

            await using (var admin = await KafkaWireClient.ConnectAsync("127.0.0.1", port))
            {
                var described = await admin.SendAsync<DescribeGroupsResponse>(new DescribeGroupsRequest { Groups = ["crowd"] }, 3);
                Assert.Equal(("Stable", Members), (described!.Groups[0].GroupState, described.Groups[0].Members.Count));
                // One batched LeaveGroup (KIP-345) takes the whole crowd out.
                var left = await admin.SendAsync<LeaveGroupResponse>(new LeaveGroupRequest
                {
                    GroupId = "crowd", Members = joined.Select(j => new LeaveGroupRequest.MemberIdentity { MemberId = j.MemberId }).ToList(),
                }, 3);
                Assert.Equal(0, left!.ErrorCode);
                Assert.All(left.Members, m => Assert.Equal(0, m.ErrorCode));
                // The rebalance the leaves started waits, as upstream's hasAllMembersJoined, for the
                // flood's pending member ids: they expire 6 s (their session timeout) after the flood,
                // and then the group, with nobody left, is Empty.
                var emptyBy = Stopwatch.StartNew();
                do
                {
                    await Task.Delay(20);
                    described = await admin.SendAsync<DescribeGroupsResponse>(new DescribeGroupsRequest { Groups = ["crowd"] }, 3);
                } while (described!.Groups[0].GroupState != "Empty" && emptyBy.ElapsedMilliseconds < 15_000);
                Assert.Equal("Empty", described.Groups[0].GroupState);
            }

            stop.Cancel();
            var latencies = await bystander.WaitAsync(TimeSpan.FromMinutes(1));
            latencies.Sort();
            double p50 = latencies[latencies.Count / 2], max = latencies[^1];
            output.WriteLine($"{Members} members + {Flooders * FloodPerConnection} pipelined newcomers: all joined in {joinTime.TotalMilliseconds:F0} ms, " +
                $"stable (synced) in {stableTime.TotalMilliseconds:F0} ms; heap {heapBefore >> 20} MiB before, {heapDuring >> 20} MiB with the crowd stable; " +
                $"bystander {latencies.Count} rounds, p50 {p50:F1} ms, max {max:F1} ms");
            // The other group was served throughout: many rounds, none stalled behind the crowd.
            Assert.True(latencies.Count >= 20, $"the bystander group completed only {latencies.Count} rounds while the crowd joined");
            Assert.True(max < 5_000, $"a bystander round took {max:F0} ms");
            // 2,000 members with their subscriptions and connections, not an allocation per pair of them.
            Assert.True(heapDuring - heapBefore < 256L << 20, $"heap grew by {(heapDuring - heapBefore) >> 20} MiB");
        }
        finally
        {
            foreach (var c in clients.Concat(flooders)) await c.DisposeAsync();
        }
    }

    [Fact]
    public async Task GroupMaxSizeRefusesTheSurplusWithGroupMaxSizeReached()
    {
        const int Limit = 40, Members = 60;
        await using var live = await LiveBroker.StartAsync(null, ("group.initial.rebalance.delay.ms", "500"), ("group.max.size", Limit.ToString()));
        int port = live.Broker.BoundEndPoint.Port;
        await FindCoordinatorAsync(port);
        var clients = await ConnectManyAsync(port, Members);
        try
        {
            var joined = await Task.WhenAll(clients.Select(c => Task.Run(() => JoinMemberAsync(c, "capped")))).WaitAsync(TimeSpan.FromMinutes(1));
            var accepted = joined.Where(j => j.Response.ErrorCode == 0).ToList();
            var refused = joined.Where(j => j.Response.ErrorCode != 0).ToList();
            Assert.Equal(Limit, accepted.Count);
            // Upstream answers the surplus GROUP_MAX_SIZE_REACHED with an empty member id.
            Assert.All(refused, j => Assert.Equal(((short)ErrorCode.GroupMaxSizeReached, ""), (j.Response.ErrorCode, j.Response.MemberId)));
            var leader = accepted.Single(j => j.Response.Leader == j.MemberId);
            Assert.Equal(Limit, leader.Response.Members.Count);
            // A newcomer while the group is full is refused before it even gets a member id (upstream
            // checks acceptJoiningMember first).
            var again = await refused[0].Client.SendAsync<JoinGroupResponse>(Join("capped", ""), 5);
            Assert.Equal(((short)ErrorCode.GroupMaxSizeReached, ""), (again!.ErrorCode, again.MemberId));
            // Other groups are not affected by the full one.
            var other = await JoinMemberAsync(refused[1].Client, "other");
            Assert.Equal(0, other.Response.ErrorCode);
            Assert.Equal(other.MemberId, other.Response.Leader);
        }
        finally
        {
            foreach (var c in clients) await c.DisposeAsync();
        }
    }
}

/// <summary>The crowd test measures the process's heap and another group's latency: it runs alone,
/// not beside other test classes.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class GroupCrowdCollection
{
    public const string Name = "group crowd (alone)";
}
