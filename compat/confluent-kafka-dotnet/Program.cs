// Kafka compat scenarios through Confluent.Kafka 1.9.3 (C#) on Debian's librdkafka 2.0.2
// (2.15.1 needs librdkafka >= 2.1 entry points; see the csproj).
// Usage: ConfluentKafkaCompat --list | ConfluentKafkaCompat NAME...  (server in COMPAT_ADDR)
// Prints `PASS name` / `FAIL name: reason` per scenario, as the harness expects.
// Only APIs librdkafka 2.0.2 has are called (DescribeClusterAsync, for one, crashes it).
using System.Diagnostics;
using Samsa.Compat;
using static Samsa.Compat.CompatRunner;
using System.Text;
using Confluent.Kafka;
using Confluent.Kafka.Admin;

namespace Samsa.Compat.ConfluentKafka;

public static partial class Program
{
    static readonly string Prefix = Environment.GetEnvironmentVariable("COMPAT_PREFIX") ?? "compat-confluent-kafka-dotnet";
    static readonly bool DevMock = Environment.GetEnvironmentVariable("COMPAT_DEV_MOCK") is { Length: > 0 };

    static string Topic(string name) => $"{Prefix}-{name}";

    static readonly Dictionary<string, Func<Task>> Scenarios = new()
    {
        ["produce-consume-none"] = () => ProduceConsume(CompressionType.None),
        ["produce-consume-gzip"] = () => ProduceConsume(CompressionType.Gzip),
        ["produce-consume-snappy"] = () => ProduceConsume(CompressionType.Snappy),
        ["produce-consume-lz4"] = () => ProduceConsume(CompressionType.Lz4),
        ["produce-consume-zstd"] = () => ProduceConsume(CompressionType.Zstd),
        ["keyed-partitioning"] = KeyedPartitioning,
        ["partition-ordering"] = PartitionOrdering,
        ["record-headers"] = RecordHeaders,
        ["timestamps"] = Timestamps,
        ["offset-lookup"] = OffsetLookup,
        ["consumer-group"] = ConsumerGroup,
        ["group-rebalance"] = GroupRebalance,
        ["offset-commit-fetch"] = OffsetCommitFetch,
        ["admin-create-topic"] = AdminCreateTopic,
        ["admin-delete-topic"] = AdminDeleteTopic,
        ["admin-describe-cluster"] = AdminDescribeCluster,
        ["admin-describe-configs"] = AdminDescribeConfigs,
        ["admin-alter-configs"] = AdminAlterConfigs,
        ["admin-create-partitions"] = AdminCreatePartitions,
        ["idempotence"] = Idempotence,
        ["transactions-commit"] = () => Transaction(commit: true),
        ["transactions-abort"] = () => Transaction(commit: false),
        ["compaction"] = Compaction,
        ["group-via-non-coordinator"] = GroupViaNonCoordinator,
        ["admin-describe-groups"] = AdminDescribeGroups,
        ["consume-transform-produce"] = ConsumeTransformProduce,
        ["coordinator-failover"] = CoordinatorFailover,
        // Security.cs: the target's secured listeners (compat/lib/security.py).
        ["sec-tls-produce-consume"] = SecTlsProduceConsume,
        ["sec-tls-untrusted-ca"] = SecTlsUntrustedCa,
        ["sec-sasl-plain"] = () => SecSasl(SaslMechanism.Plain),
        ["sec-sasl-scram-sha-256"] = () => SecSasl(SaslMechanism.ScramSha256),
        ["sec-sasl-scram-sha-512"] = () => SecSasl(SaslMechanism.ScramSha512),
        ["sec-sasl-oauthbearer"] = () => SecSasl(SaslMechanism.OAuthBearer),
        ["sec-sasl-wrong-password"] = SecSaslWrongPassword,
        ["sec-acl-topic"] = SecAclTopic,
    };

    public static Task<int> Main(string[] args) => CompatRunner.RunAsync(Scenarios, args);

    static IAdminClient Admin() => new AdminClientBuilder(new AdminClientConfig { BootstrapServers = Addr, BrokerAddressFamily = BrokerAddressFamily.V4 }).Build();

    static IProducer<byte[]?, byte[]?> Producer(Action<ProducerConfig>? configure = null)
    {
        var config = new ProducerConfig
        {
            BootstrapServers = Addr,
            BrokerAddressFamily = BrokerAddressFamily.V4,
            LingerMs = 5,
            Partitioner = Partitioner.Murmur2Random,
            MessageTimeoutMs = 15000,
        };
        configure?.Invoke(config);
        return new ProducerBuilder<byte[]?, byte[]?>(config).Build();
    }

    static IConsumer<byte[]?, byte[]?> Consumer(string? group = null, Action<ConsumerConfig>? configure = null)
    {
        var config = new ConsumerConfig
        {
            BootstrapServers = Addr,
            BrokerAddressFamily = BrokerAddressFamily.V4,
            GroupId = group ?? $"{Prefix}-read-{Guid.NewGuid():N}",
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnableAutoCommit = false,
            SessionTimeoutMs = 6000,
            HeartbeatIntervalMs = 1000,
        };
        configure?.Invoke(config);
        return new ConsumerBuilder<byte[]?, byte[]?>(config).Build();
    }

    static byte[] B(string s) => Encoding.UTF8.GetBytes(s);
    static string S(byte[]? b) => b is null ? "<null>" : Encoding.UTF8.GetString(b);

    static async Task<string> CreateTopic(string name, int partitions, Dictionary<string, string>? configs = null)
    {
        using var admin = Admin();
        if (DevMock)
        {
            // Developing against librdkafka's mock cluster: no CreateTopics there; metadata
            // requests auto-create 4-partition topics.
            using var p = Producer();
            admin.GetMetadata(name, Wait);
            return name;
        }
        var spec = Cluster
            ? new TopicSpecification { Name = name, NumPartitions = partitions, ReplicationFactor = -1, Configs = configs,
                ReplicasAssignments = Enumerable.Range(0, partitions).ToDictionary(p => p, ReplicasOf) }
            : new TopicSpecification { Name = name, NumPartitions = partitions, ReplicationFactor = 1, Configs = configs };
        await admin.CreateTopicsAsync([spec],
            new CreateTopicsOptions { OperationTimeout = Wait, RequestTimeout = TimeSpan.FromSeconds(15) });
        var deadline = DateTime.UtcNow + Wait;
        while (DateTime.UtcNow < deadline)
        {
            var md = admin.GetMetadata(name, Wait).Topics.FirstOrDefault(t => t.Topic == name);
            if (md is { Error.IsError: false } && md.Partitions.Count == partitions && md.Partitions.All(p => p.Leader >= 0)) return name;
            await Task.Delay(200);
        }
        throw new FailException($"topic {name} has no leaders for its {partitions} partitions");
    }

    static async Task<List<DeliveryResult<byte[]?, byte[]?>>> ProduceAll(IProducer<byte[]?, byte[]?> p, string topic,
        IEnumerable<(byte[]? Key, byte[]? Value, int? Partition, long? Timestamp, Headers? Headers)> records)
    {
        var tasks = new List<Task<DeliveryResult<byte[]?, byte[]?>>>();
        foreach (var r in records)
        {
            var msg = new Message<byte[]?, byte[]?> { Key = r.Key, Value = r.Value, Headers = r.Headers ?? [] };
            if (r.Timestamp is long ts) msg.Timestamp = new Timestamp(ts, TimestampType.CreateTime);
            tasks.Add(r.Partition is int part
                ? p.ProduceAsync(new TopicPartition(topic, new Partition(part)), msg)
                : p.ProduceAsync(topic, msg));
        }
        p.Flush(TimeSpan.FromSeconds(15));
        return [.. await Task.WhenAll(tasks)];
    }

    static List<ConsumeResult<byte[]?, byte[]?>> ReadPartition(string topic, int partition, int n, Action<ConsumerConfig>? configure = null)
    {
        using var c = Consumer(configure: configure);
        c.Assign(new TopicPartitionOffset(topic, new Partition(partition), Offset.Beginning));
        var got = new List<ConsumeResult<byte[]?, byte[]?>>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (got.Count < n && DateTime.UtcNow < deadline)
        {
            var r = c.Consume(TimeSpan.FromMilliseconds(300));
            if (r is { IsPartitionEOF: false }) got.Add(r);
        }
        c.Close();
        return got;
    }

    static async Task ProduceConsume(CompressionType codec)
    {
        var name = codec.ToString().ToLowerInvariant();
        var t = await CreateTopic(Topic($"codec-{name}"), 1);
        var values = Enumerable.Range(0, 50).Select(i => i == 25 ? $"{name}-{i}-" + new string('x', 20000) : $"{name}-{i}-" + string.Concat(Enumerable.Repeat("abc", i % 7))).ToList();
        using var p = Producer(c => { c.CompressionType = codec; c.BatchNumMessages = 20; });
        var dr = await ProduceAll(p, t, values.Select((v, i) => ((byte[]?)B($"k{i}"), (byte[]?)B(v), (int?)0, (long?)null, (Headers?)null)));
        Check(dr.Select(d => d.Offset.Value).Order().SequenceEqual(Enumerable.Range(0, 50).Select(i => (long)i)), "offsets are not 0..49");
        var got = ReadPartition(t, 0, 50);
        Check(got.Count == 50, $"consumed {got.Count} of 50");
        Check(got.Select(r => S(r.Message.Value)).SequenceEqual(values), "values differ or out of order");
        Check(got.Select(r => S(r.Message.Key)).SequenceEqual(Enumerable.Range(0, 50).Select(i => $"k{i}")), "keys differ");
    }

    static async Task KeyedPartitioning()
    {
        var t = await CreateTopic(Topic("keyed"), 3);
        var keys = Enumerable.Range(0, 12).Select(i => $"key-{i}").ToList();
        using var p = Producer();
        var records = (from j in Enumerable.Range(0, 5) from k in keys select (k, j)).ToList();
        var dr = await ProduceAll(p, t, records.Select(r => ((byte[]?)B(r.k), (byte[]?)B($"v{r.j}"), (int?)null, (long?)null, (Headers?)null)));
        var where = dr.GroupBy(d => S(d.Message.Key)).ToDictionary(g => g.Key, g => g.Select(d => d.Partition.Value).Distinct().ToList());
        Check(where.Values.All(ps => ps.Count == 1), "a key went to more than one partition");
        Check(where.Values.Select(ps => ps[0]).Distinct().Count() > 1, "12 keys all landed in one partition");
        for (var part = 0; part < 3; part++)
        {
            var want = dr.Where(d => d.Partition.Value == part).OrderBy(d => d.Offset.Value).Select(d => $"{S(d.Message.Key)}={S(d.Message.Value)}").ToList();
            var got = ReadPartition(t, part, want.Count).Select(r => $"{S(r.Message.Key)}={S(r.Message.Value)}").ToList();
            Check(got.SequenceEqual(want), $"partition {part} content differs from what was produced");
        }
    }

    static async Task PartitionOrdering()
    {
        var t = await CreateTopic(Topic("ordering"), 2);
        using var p = Producer(c => c.BatchNumMessages = 7);
        var values = Enumerable.Range(0, 300).Select(i => i.ToString("D5")).ToList();
        await ProduceAll(p, t, values.Select(v => ((byte[]?)null, (byte[]?)B(v), (int?)1, (long?)null, (Headers?)null)));
        var got = ReadPartition(t, 1, 300);
        Check(got.Select(r => S(r.Message.Value)).SequenceEqual(values), "records of one partition came back out of order");
        Check(got.Select(r => r.Offset.Value).SequenceEqual(Enumerable.Range(0, 300).Select(i => (long)i)), "offsets are not 0..299");
    }

    static async Task RecordHeaders()
    {
        var t = await CreateTopic(Topic("headers"), 1);
        var headers = new Headers { { "a", B("1") }, { "b", [] }, { "a", B("2") } };
        using var p = Producer();
        await ProduceAll(p, t, [(B("k"), B("v"), 0, null, headers), (B("k2"), B("v2"), 0, null, null)]);
        var got = ReadPartition(t, 0, 2);
        Check(got.Count == 2, $"consumed {got.Count}");
        var h = got[0].Message.Headers.Select(x => $"{x.Key}={S(x.GetValueBytes())}");
        Check(string.Join(",", h) == "a=1,b=,a=2", $"headers {string.Join(",", h)}");
        Check(got[1].Message.Headers.Count == 0, "record without headers has some");
    }

    static async Task Timestamps()
    {
        var t = await CreateTopic(Topic("timestamps"), 1);
        var start = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - 3_600_000;
        using var p = Producer();
        await ProduceAll(p, t, Enumerable.Range(0, 5).Select(i => ((byte[]?)null, (byte[]?)B($"t{i}"), (int?)0, (long?)(start + i * 1000), (Headers?)null)));
        var got = ReadPartition(t, 0, 5);
        Check(got.Select(r => r.Message.Timestamp.UnixTimestampMs).SequenceEqual(Enumerable.Range(0, 5).Select(i => start + i * 1000)),
            $"timestamps {string.Join(",", got.Select(r => r.Message.Timestamp.UnixTimestampMs))}");
        Check(got.All(r => r.Message.Timestamp.Type == TimestampType.CreateTime), "timestamp type is not CreateTime");
    }

    static async Task OffsetLookup()
    {
        var t = await CreateTopic(Topic("offset-lookup"), 1);
        var start = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - 3_600_000;
        using var p = Producer();
        await ProduceAll(p, t, Enumerable.Range(0, 10).Select(i => ((byte[]?)null, (byte[]?)B($"o{i}"), (int?)0, (long?)(start + i * 1000), (Headers?)null)));
        using var c = Consumer();
        var w = c.QueryWatermarkOffsets(new TopicPartition(t, new Partition(0)), Wait);
        Check(w.Low.Value == 0 && w.High.Value == 10, $"watermarks {w.Low}..{w.High}");
        var found = c.OffsetsForTimes([new TopicPartitionTimestamp(t, new Partition(0), new Timestamp(start + 4500, TimestampType.CreateTime))], Wait);
        Check(found[0].Offset.Value == 5, $"offset for time start+4.5s is {found[0].Offset}, want 5");
    }

    static async Task ConsumerGroup()
    {
        var t = await CreateTopic(Topic("group"), 3);
        using (var p = Producer())
            await ProduceAll(p, t, Enumerable.Range(0, 30).Select(i => ((byte[]?)B($"k{i}"), (byte[]?)B($"v{i}"), (int?)(i % 3), (long?)null, (Headers?)null)));
        using var c = Consumer(Topic("group-g"));
        c.Subscribe(t);
        var got = 0;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (got < 30 && DateTime.UtcNow < deadline)
            if (c.Consume(TimeSpan.FromMilliseconds(300)) is { IsPartitionEOF: false }) got++;
        Check(got == 30, $"group member consumed {got} of 30");
        Check(c.Assignment.Select(tp => tp.Partition.Value).Order().SequenceEqual([0, 1, 2]), $"assignment {string.Join(",", c.Assignment)}");
        c.Close();
    }

    static void PollUntil(Func<bool> done, string what, TimeSpan timeout, params IConsumer<byte[]?, byte[]?>[] consumers)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            foreach (var c in consumers) c.Consume(TimeSpan.FromMilliseconds(100));
            if (done()) return;
        }
        throw new FailException(what);
    }

    static async Task GroupRebalance()
    {
        var t = await CreateTopic(Topic("rebalance"), 4);
        var g = Topic("rebalance-g");
        using var a = Consumer(g);
        using var b = Consumer(g);
        a.Subscribe(t);
        PollUntil(() => a.Assignment.Count == 4, "first member did not get 4 partitions", TimeSpan.FromSeconds(8), a);
        b.Subscribe(t);
        PollUntil(() =>
        {
            var pa = a.Assignment.Select(x => x.Partition.Value).ToHashSet();
            var pb = b.Assignment.Select(x => x.Partition.Value).ToHashSet();
            return pa.Count > 0 && pb.Count > 0 && !pa.Overlaps(pb) && pa.Union(pb).Count() == 4;
        }, "partitions were not split between two members", TimeSpan.FromSeconds(12), a, b);
        b.Close();
        PollUntil(() => a.Assignment.Count == 4, "remaining member did not get all partitions back", TimeSpan.FromSeconds(8), a);
        a.Close();
    }

    static async Task OffsetCommitFetch()
    {
        var t = await CreateTopic(Topic("commit"), 2);
        var g = Topic("commit-g");
        var p0 = new TopicPartition(t, new Partition(0));
        var p1 = new TopicPartition(t, new Partition(1));
        using (var c = Consumer(g))
        {
            c.Commit([new TopicPartitionOffset(p0, new Offset(7)), new TopicPartitionOffset(p1, new Offset(3))]);
            c.Close();
        }
        using var c2 = Consumer(g);
        var got = c2.Committed([p0, p1], Wait).OrderBy(x => x.Partition.Value).Select(x => x.Offset.Value).ToList();
        Check(got.SequenceEqual([7L, 3L]), $"a new member of the group sees {string.Join(",", got)}");
        c2.Close();
    }

    static async Task<ErrorCode> CreateTopicError(IAdminClient admin, TopicSpecification spec)
    {
        try
        {
            await admin.CreateTopicsAsync([spec], new CreateTopicsOptions { OperationTimeout = Wait });
            return ErrorCode.NoError;
        }
        catch (CreateTopicsException e)
        {
            return e.Results[0].Error.Code;
        }
    }

    static async Task AdminCreateTopic()
    {
        var t = await CreateTopic(Topic("create"), 5, new() { ["retention.ms"] = "3600000" });
        using var admin = Admin();
        var md = admin.GetMetadata(t, Wait).Topics.Single(x => x.Topic == t);
        Check(md.Partitions.Count == 5, $"{md.Partitions.Count} partitions");
        var again = await CreateTopicError(admin, new TopicSpecification { Name = t, NumPartitions = 1, ReplicationFactor = 1 });
        Check(again == ErrorCode.TopicAlreadyExists, $"creating an existing topic: {again}");
        var badRf = await CreateTopicError(admin, new TopicSpecification { Name = Topic("bad-rf"), NumPartitions = 1, ReplicationFactor = (short)(Brokers + 1) });
        Check(badRf == ErrorCode.InvalidReplicationFactor, $"replication factor {Brokers + 1} on {Brokers} broker(s): {badRf}");
    }

    static async Task AdminDeleteTopic()
    {
        var t = await CreateTopic(Topic("delete"), 1);
        using var admin = Admin();
        await admin.DeleteTopicsAsync([t], new DeleteTopicsOptions { OperationTimeout = Wait });
        var deadline = DateTime.UtcNow + Wait;
        while (admin.GetMetadata(Wait).Topics.Any(x => x.Topic == t))
        {
            Check(DateTime.UtcNow < deadline, "deleted topic still listed");
            await Task.Delay(200);
        }
        try
        {
            await admin.DeleteTopicsAsync([Topic("never-existed")], new DeleteTopicsOptions { OperationTimeout = Wait });
            throw new FailException("deleting a missing topic succeeded");
        }
        catch (DeleteTopicsException e)
        {
            Check(e.Results[0].Error.Code == ErrorCode.UnknownTopicOrPart, $"deleting a missing topic: {e.Results[0].Error.Code}");
        }
    }

    static Task AdminDescribeCluster()
    {
        using var admin = Admin();
        var md = admin.GetMetadata(Wait);
        Check(md.Brokers.Count == Brokers, $"{md.Brokers.Count} brokers in metadata, want {Brokers}");
        Check(md.Brokers.All(b => b.Port > 0 && b.Host.Length > 0), "a broker without host or port");
        Check(md.OriginatingBrokerId >= 0, $"originating broker {md.OriginatingBrokerId}");
        return Task.CompletedTask;
    }

    static async Task AdminDescribeConfigs()
    {
        var t = await CreateTopic(Topic("describe-configs"), 1, new() { ["cleanup.policy"] = "compact" });
        using var admin = Admin();
        var res = await admin.DescribeConfigsAsync([new ConfigResource { Type = ResourceType.Topic, Name = t }]);
        var entries = res[0].Entries;
        Check(entries["cleanup.policy"].Value == "compact", $"cleanup.policy {entries["cleanup.policy"].Value}");
        Check(entries.TryGetValue("retention.ms", out var r) && r.IsDefault, "retention.ms missing or not marked default");
    }

    static async Task AdminAlterConfigs()
    {
        var t = await CreateTopic(Topic("alter-configs"), 1);
        using var admin = Admin();
        var resource = new ConfigResource { Type = ResourceType.Topic, Name = t };
        // AlterConfigs replaces the whole set of dynamic configs for the resource (KIP-133).
        await admin.AlterConfigsAsync(new Dictionary<ConfigResource, List<ConfigEntry>>
        {
            [resource] = [new ConfigEntry { Name = "retention.ms", Value = "123456" }],
        });
        var entries = (await admin.DescribeConfigsAsync([resource]))[0].Entries;
        Check(entries["retention.ms"].Value == "123456" && !entries["retention.ms"].IsDefault, $"retention.ms {entries["retention.ms"].Value}");
    }

    static async Task AdminCreatePartitions()
    {
        var t = await CreateTopic(Topic("add-partitions"), 2);
        using var admin = Admin();
        var grow = new PartitionsSpecification { Topic = t, IncreaseTo = 5 };
        if (Cluster) grow.ReplicaAssignments = [.. new[] { 2, 3, 4 }.Select(ReplicasOf)];
        await admin.CreatePartitionsAsync([grow], new CreatePartitionsOptions { OperationTimeout = Wait });
        var deadline = DateTime.UtcNow + Wait;
        while (admin.GetMetadata(t, Wait).Topics.Single(x => x.Topic == t).Partitions.Count != 5)
        {
            Check(DateTime.UtcNow < deadline, "topic did not grow to 5 partitions");
            await Task.Delay(200);
        }
        try
        {
            await admin.CreatePartitionsAsync([new PartitionsSpecification { Topic = t, IncreaseTo = 3 }]);
            throw new FailException("shrinking the partition count succeeded");
        }
        catch (CreatePartitionsException e)
        {
            Check(e.Results[0].Error.Code == ErrorCode.InvalidPartitions, $"shrinking: {e.Results[0].Error.Code}");
        }
    }

    static async Task Idempotence()
    {
        var t = await CreateTopic(Topic("idempotent"), 1);
        using var p = Producer(c => { c.EnableIdempotence = true; c.BatchNumMessages = 10; });
        var values = Enumerable.Range(0, 200).Select(i => $"i{i:D4}").ToList();
        await ProduceAll(p, t, values.Select(v => ((byte[]?)null, (byte[]?)B(v), (int?)0, (long?)null, (Headers?)null)));
        var got = ReadPartition(t, 0, 200);
        Check(got.Select(r => S(r.Message.Value)).SequenceEqual(values), "idempotent records duplicated, lost or reordered");
    }

    static async Task Transaction(bool commit)
    {
        var t = await CreateTopic(Topic(commit ? "txn-commit" : "txn-abort"), 1);
        using var p = Producer(c => { c.TransactionalId = Topic($"txid-{commit}"); c.TransactionTimeoutMs = 10000; c.MessageTimeoutMs = 10000; });
        p.InitTransactions(Wait);
        p.BeginTransaction();
        await ProduceAll(p, t, Enumerable.Range(0, 5).Select(i => ((byte[]?)null, (byte[]?)B($"in-txn-{i}"), (int?)0, (long?)null, (Headers?)null)));
        if (commit) p.CommitTransaction(Wait); else p.AbortTransaction(Wait);
        p.BeginTransaction();
        await ProduceAll(p, t, [(null, B("after"), 0, null, null)]);
        p.CommitTransaction(Wait);
        var want = commit ? Enumerable.Range(0, 5).Select(i => $"in-txn-{i}").Append("after").ToList() : ["after"];
        var got = ReadPartition(t, 0, want.Count, c => c.IsolationLevel = IsolationLevel.ReadCommitted).Select(r => S(r.Message.Value)).ToList();
        Check(got.SequenceEqual(want), $"read_committed saw {string.Join(",", got)}");
        var raw = ReadPartition(t, 0, 6, c => c.IsolationLevel = IsolationLevel.ReadUncommitted);
        Check(raw.Count == 6, $"read_uncommitted saw {raw.Count} records, want 6");
    }

    static async Task Compaction()
    {
        var t = await CreateTopic(Topic("compacted"), 1, new() { ["cleanup.policy"] = "compact" });
        using var p = Producer(c => c.MessageSendMaxRetries = 0);
        await ProduceAll(p, t, [(B("a"), B("1"), 0, null, null), (B("a"), B("2"), 0, null, null), (B("b"), null, 0, null, null)]);
        try
        {
            await ProduceAll(p, t, [(null, B("no key"), 0, null, null)]);
            throw new FailException("a record without a key was accepted by a compacted topic");
        }
        catch (ProduceException<byte[]?, byte[]?> e)
        {
            Console.WriteLine($"  keyless record refused: {e.Error.Code}");
        }
        var got = ReadPartition(t, 0, 3).Select(r => $"{S(r.Message.Key)}={S(r.Message.Value)}").ToList();
        Check(got.SequenceEqual(["a=1", "a=2", "b=<null>"]), $"records {string.Join(",", got)}");
    }

    static Dictionary<int, long> Committed(string group, string topic, int partitions)
    {
        using var c = Consumer(group);
        var got = c.Committed(Enumerable.Range(0, partitions).Select(p => new TopicPartition(topic, new Partition(p))), Wait);
        c.Close();
        return got.ToDictionary(x => x.Partition.Value, x => x.Offset.Value);
    }

    static string Show(Dictionary<int, long> d) => string.Join(",", d.OrderBy(x => x.Key).Select(x => $"{x.Key}:{x.Value}"));

    static async Task GroupViaNonCoordinator()
    {
        // On the cluster target the bootstrap broker is not the group's coordinator (the harness
        // checks it), so join, commit, describe and offset fetch all go through FindCoordinator.
        var t = await CreateTopic(Topic("via-noncoord"), 2);
        using (var p = Producer())
            await ProduceAll(p, t, Enumerable.Range(0, 20).Select(i => ((byte[]?)null, (byte[]?)B($"v{i}"), (int?)(i % 2), (long?)null, (Headers?)null)));
        var g = Topic("via-noncoord-g");
        using var c = Consumer(g);
        c.Subscribe(t);
        var got = 0;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (got < 20 && DateTime.UtcNow < deadline)
            if (c.Consume(TimeSpan.FromMilliseconds(300)) is { IsPartitionEOF: false }) got++;
        Check(got == 20, $"group member consumed {got} of 20");
        c.Commit();
        using (var admin = Admin())
        {
            var info = admin.ListGroup(g, Wait);
            Check(info is not null && info.State == "Stable" && info.Members.Count == 1, $"describe: {info?.State} {info?.Members.Count}");
        }
        c.Close();
        var offs = Committed(g, t, 2);
        Check(Show(offs) == "0:10,1:10", $"committed offsets {Show(offs)}");
        if (Cluster) Check(CoordinatorOf(g) != BootstrapId, $"the bootstrap broker {BootstrapId} coordinates the group");
    }

    static async Task AdminDescribeGroups()
    {
        // Confluent.Kafka 1.9.3's ListGroup is ListGroups + DescribeGroups (librdkafka's rd_kafka_list_groups).
        var t = await CreateTopic(Topic("describe-groups"), 2);
        var g = Topic("describe-groups-g");
        using var c = Consumer(g, cfg => cfg.ClientId = "compat-describer");
        c.Subscribe(t);
        PollUntil(() => c.Assignment.Count == 2, "the member did not get both partitions", TimeSpan.FromSeconds(10), c);
        using var admin = Admin();
        var info = admin.ListGroup(g, Wait);
        Check(info is not null, "the group is not listed");
        Console.WriteLine($"  | describe {info!.State} {info.ProtocolType} {info.Protocol} {info.Members.Count}");
        Check(info.State == "Stable" && info.ProtocolType == "consumer" && info.Protocol == "range",
            $"state {info.State}, protocol type {info.ProtocolType}, protocol {info.Protocol}");
        Check(info.Members.Count == 1 && info.Members[0].ClientId == "compat-describer", $"members {string.Join(",", info.Members.Select(m => m.ClientId))}");
        Check(info.Members[0].MemberAssignment.Length > 0, "the member has an empty assignment");
        Check(info.Error.Code == ErrorCode.NoError, $"group error {info.Error}");
        c.Close();
    }

    static async Task ConsumeTransformProduce()
    {
        var inT = await CreateTopic(Topic("ctp-in"), 2);
        var outT = await CreateTopic(Topic("ctp-out"), 2);
        var values = Enumerable.Range(0, 20).Select(i => $"rec-{i:D2}").ToList();
        using (var p0 = Producer())
            await ProduceAll(p0, inT, values.Select((v, i) => ((byte[]?)null, (byte[]?)B(v), (int?)(i % 2), (long?)null, (Headers?)null)));
        var g = Topic("ctp-g");
        using var c = Consumer(g, cfg => cfg.IsolationLevel = IsolationLevel.ReadCommitted);
        using var p = Producer(cfg => { cfg.TransactionalId = Topic("ctp-txid"); cfg.TransactionTimeoutMs = 10000; cfg.MessageTimeoutMs = 10000; });
        p.InitTransactions(Wait);
        c.Subscribe(inT);
        var done = 0;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (done < 20 && DateTime.UtcNow < deadline)
        {
            var batch = new List<ConsumeResult<byte[]?, byte[]?>>();
            for (var r = c.Consume(TimeSpan.FromMilliseconds(500)); r is not null; r = c.Consume(TimeSpan.Zero))
            {
                if (!r.IsPartitionEOF) batch.Add(r);
                if (batch.Count >= 10) break;
            }
            if (batch.Count == 0) continue;
            p.BeginTransaction();
            foreach (var r in batch)
                p.Produce(new TopicPartition(outT, r.Partition), new Message<byte[]?, byte[]?> { Value = B(S(r.Message.Value).ToUpperInvariant()) });
            p.SendOffsetsToTransaction(c.Assignment.Select(tp => new TopicPartitionOffset(tp, c.Position(tp))), c.ConsumerGroupMetadata, Wait);
            p.CommitTransaction(Wait);
            done += batch.Count;
        }
        c.Close();
        Check(done == 20, $"transformed {done} of 20 records");
        var got = Enumerable.Range(0, 2).SelectMany(part => ReadPartition(outT, part, 10, cfg => cfg.IsolationLevel = IsolationLevel.ReadCommitted))
            .Select(r => S(r.Message.Value)).Order().ToList();
        Check(got.SequenceEqual(values.Select(v => v.ToUpperInvariant()).Order()), $"read_committed output has {got.Count} records");
        var offs = Committed(g, inT, 2);
        Check(Show(offs) == "0:10,1:10", $"the group's committed input offsets {Show(offs)}");
    }

    static async Task CoordinatorFailover()
    {
        if (!Cluster) throw new SkipException("needs the cluster target (a coordinator to kill)");
        var t = await CreateTopic(Topic("failover"), 4);
        var g = Topic("failover-g");
        using var p = Producer(cfg => { cfg.Acks = Acks.All; cfg.MessageTimeoutMs = 30000; });
        await ProduceAll(p, t, Enumerable.Range(0, 40).Select(i => ((byte[]?)null, (byte[]?)B($"a{i}"), (int?)(i % 4), (long?)null, (Headers?)null)));
        var seen = new HashSet<string>();
        var members = Enumerable.Range(0, 2).Select(_ => Consumer(g, cfg =>
        {
            cfg.EnableAutoCommit = true; cfg.AutoCommitIntervalMs = 200; cfg.HeartbeatIntervalMs = 500;
        })).ToList();
        int? killed = null;
        string Committed4()
        {
            try { return string.Join(",", members[0].Committed(Enumerable.Range(0, 4).Select(x => new TopicPartition(t, new Partition(x))), TimeSpan.FromSeconds(2)).OrderBy(x => x.Partition.Value).Select(x => x.Offset.Value)); }
            catch (KafkaException e) { Console.WriteLine($"  committed: {e.Error}"); return ""; }
        }
        try
        {
            foreach (var m in members) m.Subscribe(t);
            void Pump()
            {
                foreach (var m in members)
                    if (m.Consume(TimeSpan.FromMilliseconds(50)) is { IsPartitionEOF: false } r) seen.Add(S(r.Message.Value));
            }
            PollUntil(() => seen.Count == 40 && Committed4() == "10,10,10,10", "two members did not consume and commit the first 40 records", TimeSpan.FromSeconds(15));
            killed = CoordinatorOf(g);
            Check(killed != BootstrapId, $"the bootstrap broker {BootstrapId} coordinates the group");
            ClusterCtl("kill", killed.Value.ToString());
            var sends = Enumerable.Range(0, 40).Select(i => p.ProduceAsync(new TopicPartition(t, new Partition(i % 4)), new Message<byte[]?, byte[]?> { Value = B($"b{i}") })).ToList();
            var lowest = new long[] { 10, 10, 10, 10 };
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(35);
            var last = "";
            while (DateTime.UtcNow < deadline)
            {
                Pump();
                last = Committed4();
                var parts = last.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(long.Parse).ToArray();
                for (var i = 0; i < parts.Length && i < 4; i++) if (parts[i] >= 0) lowest[i] = Math.Min(lowest[i], parts[i]);
                if (seen.Count == 80 && last == "20,20,20,20") break;
            }
            Check(seen.Count == 80 && last == "20,20,20,20", $"after killing coordinator {killed}, the group consumed {seen.Count} of 80 distinct and committed {last}");
            await Task.WhenAll(sends);
            Check(lowest.All(x => x >= 10), $"a committed offset went back below 10: {string.Join(",", lowest)}");
        }
        finally
        {
            foreach (var m in members) { try { m.Close(); } catch (KafkaException) { } m.Dispose(); }
            if (killed is int k) ClusterCtl("start", k.ToString());
        }

        void PollUntil(Func<bool> done, string what, TimeSpan timeout)
        {
            var end = DateTime.UtcNow + timeout;
            while (DateTime.UtcNow < end)
            {
                foreach (var m in members)
                    if (m.Consume(TimeSpan.FromMilliseconds(50)) is { IsPartitionEOF: false } r) seen.Add(S(r.Message.Value));
                if (done()) return;
            }
            throw new FailException(what);
        }
    }
}
