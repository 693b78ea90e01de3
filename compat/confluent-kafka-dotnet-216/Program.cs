// Kafka compat scenarios through Confluent.Kafka 2.16.0 (C#) on librdkafka 2.16.0, all with the
// KIP-848 consumer group protocol (group.protocol=consumer: ConsumerGroupHeartbeat, server-side
// assignment, ConsumerGroupDescribe). The classic-protocol scenarios stay with
// ../confluent-kafka-dotnet (Confluent.Kafka 1.9.3 on Debian's librdkafka 2.0.2).
// Usage: ConfluentKafka216Compat --list | ConfluentKafka216Compat NAME...  (server in COMPAT_ADDR)
// Prints `PASS name` / `FAIL name: reason` / `SKIP name: reason` per scenario (compat/README.md).
using System.Diagnostics;
using Samsa.Compat;
using static Samsa.Compat.CompatRunner;
using Confluent.Kafka;
using Confluent.Kafka.Admin;

namespace Samsa.Compat.ConfluentKafka216;

public static class Program
{
    static readonly string Prefix = Environment.GetEnvironmentVariable("COMPAT_PREFIX") ?? "compat-confluent-kafka-dotnet-216";

    static string Topic(string name) => $"{Prefix}-{name}";

    static readonly Dictionary<string, Func<Task>> Scenarios = new()
    {
        ["kip848-join-consume"] = JoinConsume,
        ["kip848-rebalance-join-leave"] = RebalanceJoinLeave,
        ["kip848-static-restart"] = StaticRestart,
        ["kip848-regex"] = RegexSubscription,
        ["kip848-coordinator-failover"] = CoordinatorFailover,
        ["kip848-mixed-upgrade"] = MixedUpgrade,
    };

    public static Task<int> Main(string[] args)
    {
        if (args is ["--list"]) return CompatRunner.RunAsync(Scenarios, args);
        Console.WriteLine($"  Confluent.Kafka {typeof(Library).Assembly.GetName().Version}, librdkafka {Library.VersionString}");
        // Were the redist's library not loadable, .NET would silently load Debian's 2.0.2, which
        // has no KIP-848: every result would then be about the wrong client.
        var wrongLibrary = Library.VersionString.StartsWith("2.16", StringComparison.Ordinal)
            ? null : $"librdkafka {Library.VersionString} loaded instead of 2.16 (see the csproj)";
        return CompatRunner.RunAsync(Scenarios, args, wrongLibrary);
    }

    static IAdminClient Admin() => new AdminClientBuilder(new AdminClientConfig { BootstrapServers = Addr, BrokerAddressFamily = BrokerAddressFamily.V4 }).Build();

    static IProducer<Null, string> Producer() => new ProducerBuilder<Null, string>(new ProducerConfig
    {
        BootstrapServers = Addr,
        BrokerAddressFamily = BrokerAddressFamily.V4,
        LingerMs = 5,
        Acks = Acks.All,
        MessageTimeoutMs = 30000,
    }).Build();

    /// <summary>A member of a KIP-848 group. Session timeout, heartbeat interval and assignor are
    /// the broker's with this protocol (librdkafka refuses the classic client-side settings).</summary>
    static IConsumer<Null, string> Member(string group, string? clientId = null, string? instanceId = null,
        Action<ConsumerConfig>? configure = null, Action<IConsumer<Null, string>, List<TopicPartitionOffset>>? onRevoke = null)
    {
        var config = new ConsumerConfig
        {
            BootstrapServers = Addr,
            BrokerAddressFamily = BrokerAddressFamily.V4,
            GroupId = group,
            GroupProtocol = GroupProtocol.Consumer,
            GroupInstanceId = instanceId,
            ClientId = clientId ?? "compat-kip848",
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnableAutoCommit = false,
        };
        configure?.Invoke(config);
        var builder = new ConsumerBuilder<Null, string>(config)
            .SetLogHandler((_, m) => Console.WriteLine($"  | {clientId} {m.Level} {m.Facility}: {m.Message}"));
        if (onRevoke is not null) builder.SetPartitionsRevokedHandler(onRevoke);
        return builder.Build();
    }

    static async Task<string> CreateTopic(string name, int partitions)
    {
        using var admin = Admin();
        var spec = Cluster
            ? new TopicSpecification { Name = name, NumPartitions = partitions, ReplicationFactor = -1,
                ReplicasAssignments = Enumerable.Range(0, partitions).ToDictionary(p => p, ReplicasOf) }
            : new TopicSpecification { Name = name, NumPartitions = partitions, ReplicationFactor = 1 };
        await admin.CreateTopicsAsync([spec], new CreateTopicsOptions { OperationTimeout = Wait, RequestTimeout = TimeSpan.FromSeconds(15) });
        var deadline = DateTime.UtcNow + Wait;
        while (DateTime.UtcNow < deadline)
        {
            var md = admin.GetMetadata(name, Wait).Topics.FirstOrDefault(t => t.Topic == name);
            if (md is { Error.IsError: false } && md.Partitions.Count == partitions && md.Partitions.All(p => p.Leader >= 0)) return name;
            await Task.Delay(200);
        }
        throw new FailException($"topic {name} has no leaders for its {partitions} partitions");
    }

    /// <summary>Produces prefix0..prefix(n-1), record i to partition i % partitions.</summary>
    static async Task Produce(string topic, int count, int partitions, string prefix)
    {
        using var p = Producer();
        var sends = Enumerable.Range(0, count)
            .Select(i => p.ProduceAsync(new TopicPartition(topic, new Partition(i % partitions)), new Message<Null, string> { Value = prefix + i }))
            .ToList();
        p.Flush(TimeSpan.FromSeconds(30));
        await Task.WhenAll(sends);
    }

    static void PollUntil(Func<bool> done, string what, TimeSpan timeout, params IConsumer<Null, string>[] consumers) =>
        PollUntil(done, what, timeout, consumers, _ => { });

    static void PollUntil(Func<bool> done, string what, TimeSpan timeout, IConsumer<Null, string>[] consumers, Action<(IConsumer<Null, string> C, ConsumeResult<Null, string> R)> onRecord)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            foreach (var c in consumers)
                if (c.Consume(TimeSpan.FromMilliseconds(100)) is { IsPartitionEOF: false } r) onRecord((c, r));
            if (done()) return;
        }
        throw new FailException(what);
    }

    static string Parts(IEnumerable<TopicPartition> tps) => string.Join(",", tps.Select(tp => tp.Partition.Value).Order());

    static async Task JoinConsume()
    {
        var t = await CreateTopic(Topic("kip848-join"), 3);
        await Produce(t, 30, 3, "v");
        var g = Topic("kip848-join-g");
        var c = Member(g, "kip848-member");
        try
        {
            c.Subscribe(t);
            var got = new List<string>();
            PollUntil(() => got.Count >= 30, "the member did not consume 30 records", TimeSpan.FromSeconds(20), [c], x => got.Add(x.R.TopicPartitionOffset.ToString()));
            Check(got.Count == 30 && got.Distinct().Count() == 30, $"consumed {got.Count} records, {got.Distinct().Count()} distinct");
            Check(Parts(c.Assignment) == "0,1,2", $"assignment {Parts(c.Assignment)}");
            c.Commit();
            var committed = c.Committed(Wait).OrderBy(x => x.Partition.Value).Select(x => x.Offset.Value).ToList();
            Check(string.Join(",", committed) == "10,10,10", $"committed {string.Join(",", committed)}");

            using var admin = Admin();
            // ListGroups v5 with a type filter (KIP-848): the group is a consumer group, not a classic one.
            var consumerGroups = await admin.ListConsumerGroupsAsync(new ListConsumerGroupsOptions { MatchTypes = [ConsumerGroupType.Consumer], RequestTimeout = Wait });
            var mine = consumerGroups.Valid.FirstOrDefault(x => x.GroupId == g);
            Check(mine is not null, "ListConsumerGroups(type=consumer) does not list the group");
            Console.WriteLine($"  | listed {mine!.GroupId} type {mine.Type} state {mine.State}");
            Check(mine.Type == ConsumerGroupType.Consumer && mine.State == ConsumerGroupState.Stable, $"listed as {mine.Type} {mine.State}");
            var classic = await admin.ListConsumerGroupsAsync(new ListConsumerGroupsOptions { MatchTypes = [ConsumerGroupType.Classic], RequestTimeout = Wait });
            Check(classic.Valid.All(x => x.GroupId != g), "ListConsumerGroups(type=classic) lists the consumer group");
            // DescribeConsumerGroups: librdkafka 2.16 asks ConsumerGroupDescribe first.
            var described = await admin.DescribeConsumerGroupsAsync([g], new DescribeConsumerGroupsOptions { RequestTimeout = Wait });
            var d = described.ConsumerGroupDescriptions.Single();
            Console.WriteLine($"  | described {d.GroupId} type {d.GroupType} state {d.State} assignor {d.PartitionAssignor} coordinator {d.Coordinator?.Id} members {d.Members.Count}");
            Check(d.Error.Code == ErrorCode.NoError, $"describe error {d.Error}");
            Check(d.GroupType == ConsumerGroupType.Consumer && d.State == ConsumerGroupState.Stable, $"described as {d.GroupType} {d.State}");
            Check(d.PartitionAssignor == "uniform", $"assignor {d.PartitionAssignor}, want the broker's default uniform");
            Check(d.Members.Count == 1 && d.Members[0].ClientId == "kip848-member", $"members {string.Join(",", d.Members.Select(m => m.ClientId))}");
            Check(Parts(d.Members[0].Assignment.TopicPartitions) == "0,1,2", $"described assignment {Parts(d.Members[0].Assignment.TopicPartitions)}");
            Check(d.Members[0].TargetAssignment is { } ta && Parts(ta.TopicPartitions) == "0,1,2", "described target assignment is not 0,1,2");
            if (Cluster) Check(d.Coordinator?.Id != BootstrapId, $"the bootstrap broker {BootstrapId} coordinates the group");
            c.Close();
            var after = (await admin.DescribeConsumerGroupsAsync([g], new DescribeConsumerGroupsOptions { RequestTimeout = Wait })).ConsumerGroupDescriptions.Single();
            Check(after.State == ConsumerGroupState.Empty && after.Members.Count == 0, $"after the member left: {after.State}, {after.Members.Count} member(s)");
        }
        finally
        {
            c.Dispose();
        }
    }

    static async Task RebalanceJoinLeave()
    {
        var t = await CreateTopic(Topic("kip848-rebalance"), 4);
        var g = Topic("kip848-rebalance-g");
        var reads = new Dictionary<string, int>();
        var byMember = new Dictionary<string, int>();
        var revoked = new List<string>();
        // Each member commits a record before it reads the next one, so whatever partition the
        // broker takes away (the member acknowledges the revocation in its next heartbeat) has
        // its position committed for the member that gets it next.
        IConsumer<Null, string> M(string name) => Member(g, name, onRevoke: (_, ps) =>
        {
            lock (revoked) revoked.Add($"{name}:{Parts(ps.Select(p => p.TopicPartition))}");
        });
        var a = M("A");
        var bm = M("B");
        void Read((IConsumer<Null, string> C, ConsumeResult<Null, string> R) x)
        {
            var key = $"{x.R.Partition.Value}:{x.R.Offset.Value}";
            reads[key] = reads.GetValueOrDefault(key) + 1;
            var who = x.C == a ? "A" : "B";
            byMember[who] = byMember.GetValueOrDefault(who) + 1;
            x.C.Commit(x.R);
        }
        try
        {
            await Produce(t, 100, 4, "a");
            a.Subscribe(t);
            PollUntil(() => reads.Count >= 100, $"A alone read {reads.Count} of the first 100", TimeSpan.FromSeconds(15), [a], Read);
            Check(a.Assignment.Count == 4, $"A alone has {Parts(a.Assignment)}");
            bm.Subscribe(t);
            PollUntil(() => bm.Assignment.Count > 0 && a.Assignment.Count + bm.Assignment.Count == 4, "B joined but the partitions were not split",
                TimeSpan.FromSeconds(20), [a, bm], Read);
            Console.WriteLine($"  | split: A {Parts(a.Assignment)}, B {Parts(bm.Assignment)}");
            Check(!a.Assignment.Intersect(bm.Assignment).Any(), "A and B own a partition at once");
            await Produce(t, 100, 4, "b");
            PollUntil(() => reads.Count >= 200, $"A and B read {reads.Count} of 200", TimeSpan.FromSeconds(15), [a, bm], Read);
            Check(byMember.GetValueOrDefault("B") > 0, "B read nothing from its partitions");
            a.Close(); // leaves the group: its partitions go to B
            await Produce(t, 100, 4, "c");
            PollUntil(() => reads.Count >= 300 && bm.Assignment.Count == 4, $"after A left, B has {Parts(bm.Assignment)} and {reads.Count} of 300 were read",
                TimeSpan.FromSeconds(20), [bm], Read);
            // A little longer: a duplicate delivered late would show here.
            var end = DateTime.UtcNow + TimeSpan.FromSeconds(1);
            while (DateTime.UtcNow < end)
                if (bm.Consume(TimeSpan.FromMilliseconds(100)) is { IsPartitionEOF: false } r) Read((bm, r));
            Console.WriteLine($"  | revocations {string.Join(" ", revoked)}; A read {byMember.GetValueOrDefault("A")}, B read {byMember.GetValueOrDefault("B")}");
            var dup = reads.Where(kv => kv.Value > 1).Select(kv => kv.Key).ToList();
            Check(reads.Count == 300 && dup.Count == 0, $"{reads.Count} distinct records of 300, read twice: {string.Join(",", dup.Take(10))}");
            var committed = bm.Committed(Wait).OrderBy(x => x.Partition.Value).Select(x => x.Offset.Value);
            Check(string.Join(",", committed) == "75,75,75,75", $"committed {string.Join(",", committed)}");
            bm.Close();
        }
        finally
        {
            a.Dispose();
            bm.Dispose();
        }
    }

    /// <summary>KIP-848 migration: a live classic group is upgraded online when a consumer-protocol
    /// member joins (group.consumer.migration.policy=bidirectional, upstream's default), is a mixed
    /// group while both read, and is downgraded back to classic when that member leaves.</summary>
    static async Task MixedUpgrade()
    {
        var t = await CreateTopic(Topic("kip848-mixed"), 4);
        var g = Topic("kip848-mixed-g");
        var reads = new Dictionary<string, int>();
        var byMember = new Dictionary<string, int>();
        // A speaks the classic protocol (JoinGroup/SyncGroup/Heartbeat): its heartbeat is how it
        // learns of a rebalance in the consumer group, so it heartbeats often.
        var a = Member(g, "A-classic", configure: c => { c.GroupProtocol = GroupProtocol.Classic; c.HeartbeatIntervalMs = 500; c.SessionTimeoutMs = 10_000; });
        var b = Member(g, "B-consumer");
        void Read((IConsumer<Null, string> C, ConsumeResult<Null, string> R) x)
        {
            var key = $"{x.R.Partition.Value}:{x.R.Offset.Value}";
            reads[key] = reads.GetValueOrDefault(key) + 1;
            var who = x.C == a ? "A" : "B";
            byMember[who] = byMember.GetValueOrDefault(who) + 1;
            x.C.Commit(x.R);
        }
        async Task<string?> TypeOf()
        {
            using var admin = Admin();
            var listed = await admin.ListConsumerGroupsAsync(new ListConsumerGroupsOptions { RequestTimeout = Wait });
            return listed.Valid.FirstOrDefault(x => x.GroupId == g)?.Type.ToString();
        }
        try
        {
            await Produce(t, 100, 4, "a");
            a.Subscribe(t);
            PollUntil(() => reads.Count >= 100 && a.Assignment.Count == 4, $"classic A alone read {reads.Count} of the first 100", TimeSpan.FromSeconds(20), [a], Read);
            Check(await TypeOf() == "Classic", $"before the upgrade the group lists as {await TypeOf()}");
            var sw = Stopwatch.StartNew();
            b.Subscribe(t);
            PollUntil(() => b.Assignment.Count > 0 && a.Assignment.Count > 0 && a.Assignment.Count + b.Assignment.Count == 4,
                "B (consumer protocol) joined but the partitions were not split", TimeSpan.FromSeconds(30), [a, b], Read);
            Console.WriteLine($"  | upgraded in {sw.ElapsedMilliseconds} ms: A {Parts(a.Assignment)}, B {Parts(b.Assignment)}");
            Check(!a.Assignment.Intersect(b.Assignment).Any(), "A and B own a partition at once");
            Check(await TypeOf() == "Consumer", $"after the upgrade the group lists as {await TypeOf()}");
            using (var admin = Admin())
            {
                var d = (await admin.DescribeConsumerGroupsAsync([g], new DescribeConsumerGroupsOptions { RequestTimeout = Wait })).ConsumerGroupDescriptions[0];
                Check(d.Members.Count == 2, $"the mixed group has {d.Members.Count} members");
            }
            await Produce(t, 100, 4, "b");
            PollUntil(() => reads.Count >= 200, $"A and B read {reads.Count} of 200", TimeSpan.FromSeconds(20), [a, b], Read);
            Check(byMember.GetValueOrDefault("B") > 0, "B read nothing from its partitions");
            b.Close(); // the last consumer-protocol member leaves: back to a classic group
            await Produce(t, 100, 4, "c");
            PollUntil(() => reads.Count >= 300 && a.Assignment.Count == 4, $"after B left, A has {Parts(a.Assignment)} and {reads.Count} of 300 were read",
                TimeSpan.FromSeconds(30), [a], Read);
            var end = DateTime.UtcNow + TimeSpan.FromSeconds(1);
            while (DateTime.UtcNow < end)
                if (a.Consume(TimeSpan.FromMilliseconds(100)) is { IsPartitionEOF: false } r) Read((a, r));
            Check(await TypeOf() == "Classic", $"after the downgrade the group lists as {await TypeOf()}");
            var dup = reads.Where(kv => kv.Value > 1).Select(kv => kv.Key).ToList();
            Check(reads.Count == 300 && dup.Count == 0, $"{reads.Count} distinct records of 300, read twice: {string.Join(",", dup.Take(10))}");
            var committed = a.Committed(Wait).OrderBy(x => x.Partition.Value).Select(x => x.Offset.Value);
            Check(string.Join(",", committed) == "75,75,75,75", $"committed {string.Join(",", committed)}");
            a.Close();
        }
        finally
        {
            a.Dispose();
            b.Dispose();
        }
    }

    static async Task StaticRestart()
    {
        var t = await CreateTopic(Topic("kip848-static"), 4);
        await Produce(t, 40, 4, "v");
        var g = Topic("kip848-static-g");
        var other = Member(g, "static-2", "static-2");
        var one = Member(g, "static-1", "static-1");
        IConsumer<Null, string>? again = null;
        try
        {
            other.Subscribe(t);
            one.Subscribe(t);
            PollUntil(() => one.Assignment.Count == 2 && other.Assignment.Count == 2, "two static members did not get two partitions each",
                TimeSpan.FromSeconds(20), one, other);
            var first = Parts(one.Assignment);
            var others = Parts(other.Assignment);
            Console.WriteLine($"  | static-1 {first}, static-2 {others}");
            // A static member leaves with epoch -2 (KIP-848): it stays in the group and its
            // partitions wait for it until the session times out; nobody else gets them.
            one.Close();
            var gap = DateTime.UtcNow + TimeSpan.FromSeconds(7);
            while (DateTime.UtcNow < gap) other.Consume(TimeSpan.FromMilliseconds(100));
            Check(Parts(other.Assignment) == others, $"while static-1 was away static-2 went from {others} to {Parts(other.Assignment)}");
            again = Member(g, "static-1", "static-1");
            again.Subscribe(t);
            PollUntil(() => again.Assignment.Count == 2, "the restarted static-1 did not get two partitions", TimeSpan.FromSeconds(15), again, other);
            Check(Parts(again.Assignment) == first, $"static-1 had {first} and came back to {Parts(again.Assignment)}");
            Check(Parts(other.Assignment) == others, $"static-2 went from {others} to {Parts(other.Assignment)}");
            again.Close();
            other.Close();
        }
        finally
        {
            one.Dispose();
            other.Dispose();
            again?.Dispose();
        }
    }

    static async Task RegexSubscription()
    {
        var first = await CreateTopic(Topic("kip848-rx-a"), 2);
        await Produce(first, 10, 2, "a");
        var g = Topic("kip848-rx-g");
        var c = Member(g, "kip848-regex");
        var perTopic = new Dictionary<string, int>();
        try
        {
            // librdkafka sends the pattern to the broker (SubscribedTopicRegex, RE2 syntax), which
            // resolves it against the topics it knows and refreshes that as topics come and go.
            c.Subscribe("^" + System.Text.RegularExpressions.Regex.Escape(Topic("kip848-rx-")) + ".*");
            void Count((IConsumer<Null, string> C, ConsumeResult<Null, string> R) x) => perTopic[x.R.Topic] = perTopic.GetValueOrDefault(x.R.Topic) + 1;
            PollUntil(() => perTopic.GetValueOrDefault(first) >= 10, "records of the first matching topic were not read", TimeSpan.FromSeconds(15), [c], Count);
            var second = await CreateTopic(Topic("kip848-rx-b"), 2);
            await Produce(second, 10, 2, "b");
            PollUntil(() => perTopic.GetValueOrDefault(second) >= 10, $"the topic created afterwards was not picked up (assignment {string.Join(",", c.Assignment)})",
                TimeSpan.FromSeconds(25), [c], Count);
            Check(perTopic[first] == 10 && perTopic[second] == 10, string.Join(",", perTopic.Select(kv => $"{kv.Key}={kv.Value}")));
            Check(c.Assignment.Count == 4, $"assignment {string.Join(",", c.Assignment)}");
            c.Close();
        }
        finally
        {
            c.Dispose();
        }
    }

    static async Task CoordinatorFailover()
    {
        if (!Cluster) throw new SkipException("needs the cluster target (a coordinator to kill)");
        var t = await CreateTopic(Topic("kip848-failover"), 4);
        var g = Topic("kip848-failover-g");
        await Produce(t, 40, 4, "a");
        var seen = new HashSet<string>();
        var members = new[] { "F1", "F2" }.Select(n => Member(g, n, configure: cfg => { cfg.EnableAutoCommit = true; cfg.AutoCommitIntervalMs = 200; })).ToList();
        int? killed = null;
        string Committed4()
        {
            try { return string.Join(",", members[0].Committed(Enumerable.Range(0, 4).Select(x => new TopicPartition(t, new Partition(x))), TimeSpan.FromSeconds(2)).OrderBy(x => x.Partition.Value).Select(x => x.Offset.Value)); }
            catch (KafkaException e) { Console.WriteLine($"  committed: {e.Error}"); return ""; }
        }
        try
        {
            foreach (var m in members) m.Subscribe(t);
            PollUntil(() => seen.Count == 40 && Committed4() == "10,10,10,10", $"two members read {seen.Count} of the first 40 and committed {Committed4()}",
                TimeSpan.FromSeconds(20), [.. members], x => seen.Add(x.R.Message.Value));
            killed = CoordinatorOf(g);
            Check(killed != BootstrapId, $"the bootstrap broker {BootstrapId} coordinates the group");
            ClusterCtl("kill", killed.Value.ToString());
            var sw = Stopwatch.StartNew();
            await Produce(t, 40, 4, "b");
            var lowest = new long[] { 10, 10, 10, 10 };
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            var last = "";
            while (DateTime.UtcNow < deadline)
            {
                foreach (var m in members)
                    if (m.Consume(TimeSpan.FromMilliseconds(50)) is { IsPartitionEOF: false } r) seen.Add(r.Message.Value);
                last = Committed4();
                var parts = last.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(long.Parse).ToArray();
                // Every partition had 10 committed before the kill: an answer without a committed
                // offset (-1001) from the new coordinator means it lost them.
                for (var i = 0; i < parts.Length && i < 4; i++) lowest[i] = Math.Min(lowest[i], parts[i]);
                if (seen.Count == 80 && last == "20,20,20,20") break;
            }
            Console.WriteLine($"  | {sw.Elapsed.TotalSeconds:F1}s after the kill: read {seen.Count} distinct, committed {last}; F1 {Parts(members[0].Assignment)}, F2 {Parts(members[1].Assignment)}");
            Check(seen.Count == 80 && last == "20,20,20,20", $"after killing coordinator {killed}, the group read {seen.Count} of 80 distinct and committed {last}");
            Check(lowest.All(x => x >= 10), $"a committed offset went back below 10: {string.Join(",", lowest)}");
            Check(members.Sum(m => m.Assignment.Count) == 4, $"the members own {members.Sum(m => m.Assignment.Count)} of 4 partitions after the failover");
            using var admin = Admin();
            var d = (await admin.DescribeConsumerGroupsAsync([g], new DescribeConsumerGroupsOptions { RequestTimeout = Wait })).ConsumerGroupDescriptions.Single();
            Console.WriteLine($"  | described after the failover: {d.GroupType} {d.State}, coordinator {d.Coordinator?.Id}, members {string.Join(",", d.Members.Select(m => $"{m.ClientId}:{Parts(m.Assignment.TopicPartitions)}"))}");
            Check(d.GroupType == ConsumerGroupType.Consumer && d.State == ConsumerGroupState.Stable && d.Members.Count == 2,
                $"after the failover the group is {d.GroupType} {d.State} with {d.Members.Count} member(s)");
            Check(d.Coordinator?.Id != killed && d.Coordinator?.Id != BootstrapId, $"the group's coordinator is now {d.Coordinator?.Id}");
        }
        finally
        {
            foreach (var m in members) { try { m.Close(); } catch (KafkaException) { } m.Dispose(); }
            if (killed is int k) ClusterCtl("start", k.ToString());
        }
    }
}
