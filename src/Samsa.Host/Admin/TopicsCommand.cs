using System.Text;
using System.Text.RegularExpressions;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Host.Admin;

/// <summary>
/// <c>samsa kafka-topics</c>: upstream's kafka-topics.sh (TopicCommand) over the wire — create, list,
/// describe, alter (partition count), delete — with its option names and output lines.
/// </summary>
internal static class TopicsCommand
{
    private const string Tool = "kafka-topics";

    private static readonly HashSet<string> WithValue =
        ["--bootstrap-server", "--command-config", "--topic", "--partitions", "--replication-factor", "--config", "--replica-assignment", "--topic-id"];
    private static readonly HashSet<string> Flags =
        ["--create", "--list", "--describe", "--delete", "--alter", "--if-exists", "--if-not-exists", "--exclude-internal",
         "--under-replicated-partitions", "--unavailable-partitions", "--under-min-isr-partitions", "--at-min-isr-partitions",
         "--topics-with-overrides", "--help", "--version"];

    public const string Usage =
        "usage: samsa kafka-topics --bootstrap-server HOST:PORT [--command-config FILE]\n" +
        "         --create --topic T [--partitions N] [--replication-factor R] [--config k=v ...] [--replica-assignment 1:2,2:3] [--if-not-exists]\n" +
        "       | --list [--topic REGEX] [--exclude-internal]\n" +
        "       | --describe [--topic REGEX | --topic-id ID] [--exclude-internal] [--under-replicated-partitions|--unavailable-partitions|--topics-with-overrides]\n" +
        "       | --alter --topic T --partitions N [--if-exists]\n" +
        "       | --delete --topic T [--if-exists]\n";

    public static async Task<int> RunAsync(string[] argv, TextWriter output)
    {
        var args = new AdminArgs(Tool, argv, WithValue, Flags);
        if (args.Has("--help")) { output.Write(Usage); return 0; }
        string[] actions = ["--create", "--list", "--describe", "--delete", "--alter"];
        if (actions.Count(args.Has) != 1)
            throw new UsageException($"{Tool}: Command must include exactly one action: --list, --describe, --create, --alter or --delete");
        string bootstrap = args.Required(Tool, "--bootstrap-server");
        var props = args.Get("--command-config") is { } cc ? AdminArgs.LoadProperties(cc) : null;
        if ((args.Has("--create") || args.Has("--alter") || args.Has("--delete")) && !args.Has("--topic"))
            throw new UsageException($"{Tool}: Missing required argument \"[topic]\"");
        await using var admin = new AdminClient(bootstrap, props);
        try
        {
            if (args.Has("--create")) await CreateAsync(admin, args, output);
            else if (args.Has("--list")) await ListAsync(admin, args, output);
            else if (args.Has("--describe")) await DescribeAsync(admin, args, output);
            else if (args.Has("--alter")) await AlterAsync(admin, args);
            else await DeleteAsync(admin, args);
            return 0;
        }
        catch (Exception e) when (e is AdminException or IOException or System.Net.Sockets.SocketException or OperationCanceledException)
        {
            output.WriteLine("Error while executing topic command : " + (e is OperationCanceledException ? "Timed out waiting for a response" : e.Message));
            return 1;
        }
    }

    private static async Task CreateAsync(AdminClient admin, AdminArgs args, TextWriter output)
    {
        string topic = args.Get("--topic")!;
        int? partitions = args.Int(Tool, "--partitions");
        int? rf = args.Int(Tool, "--replication-factor");
        if (rf is { } r && (r < 1 || r > short.MaxValue)) throw new AdminException("The replication factor must be between 1 and 32767 inclusive");
        if (partitions is < 1) throw new AdminException("The partitions must be greater than 0");
        var configs = AdminArgs.ParseConfigs(Tool, args.All("--config"));
        if (topic.Contains('.') || topic.Contains('_'))
            output.WriteLine("WARNING: Due to limitations in metric names, topics with a period ('.') or underscore ('_') could collide. To avoid issues it is best to use either, but not both.");
        var creatable = new CreateTopicsRequest.CreatableTopic
        {
            Name = topic,
            NumPartitions = partitions ?? -1,
            ReplicationFactor = (short)(rf ?? -1),
            Configs = configs.Select(kv => new CreateTopicsRequest.CreatableTopicConfig { Name = kv.Key, Value = kv.Value }).ToList(),
        };
        if (args.Get("--replica-assignment") is { } assignment)
        {
            if (partitions is not null || rf is not null)
                throw new UsageException($"{Tool}: Option \"[replica-assignment]\" can't be used with option \"[partitions]\" or \"[replication-factor]\"");
            creatable.NumPartitions = -1;
            creatable.ReplicationFactor = -1;
            int p = 0;
            foreach (var replicas in assignment.Split(','))
                creatable.Assignments.Add(new CreateTopicsRequest.CreatableReplicaAssignment
                {
                    PartitionIndex = p++,
                    BrokerIds = replicas.Split(':').Select(s => int.Parse(s.Trim(), System.Globalization.CultureInfo.InvariantCulture)).ToList(),
                });
        }
        var response = await admin.WithControllerAsync(
            conn => admin.SendAsync<CreateTopicsResponse>(conn, new CreateTopicsRequest { Topics = [creatable], TimeoutMs = 30000 }, ApiKey.CreateTopics, 7),
            r => r.Topics.Any(t => t.ErrorCode == (short)ErrorCode.NotController));
        var result = response.Topics.FirstOrDefault(t => t.Name == topic) ?? throw new AdminException($"no result for topic {topic}");
        if (result.ErrorCode == (short)ErrorCode.TopicAlreadyExists && args.Has("--if-not-exists")) return;
        if (result.ErrorCode != 0) throw AdminException.From(result.ErrorCode, result.ErrorMessage);
        output.WriteLine($"Created topic {topic}.");
    }

    /// <summary>The sorted topic names the --topic include list selects (upstream: a regular expression).</summary>
    private static async Task<List<MetadataResponse.MetadataResponseTopic>> TopicsAsync(AdminClient admin, AdminArgs args)
    {
        var metadata = await admin.MetadataAsync(null);
        var all = metadata.Topics.Where(t => t.ErrorCode == 0 && !(args.Has("--exclude-internal") && t.IsInternal)).OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
        // --topic-id (describe): that topic whatever --topic says; the zero id means none given
        if (args.Get("--topic-id") is { } idText && ParseKafkaUuid(idText) is var id && id != Guid.Empty)
            return all.Where(t => t.TopicId == id).ToList();
        if (args.Get("--topic") is not { } include) return all;
        Regex re;
        try { re = new Regex("^(?:" + include + ")$", RegexOptions.CultureInvariant); }
        catch (ArgumentException) { return all.Where(t => t.Name == include).ToList(); }
        return all.Where(t => re.IsMatch(t.Name!)).ToList();
    }

    private static void EnsureExists(AdminArgs args, IReadOnlyCollection<MetadataResponse.MetadataResponseTopic> topics)
    {
        if (topics.Count == 0 && args.Get("--topic-id") is { } id && ParseKafkaUuid(id) != Guid.Empty)
        {
            if (args.Has("--if-exists")) return;
            throw new AdminException($"TopicId '{id}' does not exist as expected");
        }
        if (topics.Count == 0 && args.Get("--topic") is { } t && !args.Has("--if-exists"))
            throw new AdminException($"Topic '{t}' does not exist as expected");
    }

    private static async Task ListAsync(AdminClient admin, AdminArgs args, TextWriter output)
    {
        var topics = await TopicsAsync(admin, args);
        // Upstream prints the names joined by newlines with println: an empty list still prints one empty line.
        output.WriteLine(string.Join("\n", topics.Select(t => t.Name)));
    }

    private static async Task DescribeAsync(AdminClient admin, AdminArgs args, TextWriter output)
    {
        var topics = await TopicsAsync(admin, args);
        EnsureExists(args, topics);
        if (topics.Count == 0) return;
        var live = admin.Brokers.Keys.ToHashSet();
        bool underReplicated = args.Has("--under-replicated-partitions"), unavailable = args.Has("--unavailable-partitions");
        bool overrides = args.Has("--topics-with-overrides");
        bool underMinIsr = args.Has("--under-min-isr-partitions"), atMinIsr = args.Has("--at-min-isr-partitions");
        bool partitionFilter = underReplicated || unavailable || underMinIsr || atMinIsr;
        var configs = await DescribeTopicConfigsAsync(admin, topics.Select(t => t.Name!).ToList());
        foreach (var t in topics)
        {
            var parts = t.Partitions.OrderBy(p => p.PartitionIndex).ToList();
            var entries = configs.GetValueOrDefault(t.Name!) ?? [];
            var nonDefault = entries.Where(c => c.ConfigSource != 5 && !(c.IsDefault && c.ConfigSource == -1)).ToList();
            if (!partitionFilter && (!overrides || nonDefault.Count > 0) && parts.Count > 0)
            {
                var line = new StringBuilder("Topic: ").Append(t.Name);
                if (t.TopicId != Guid.Empty) line.Append("\tTopicId: ").Append(KafkaUuid(t.TopicId));
                line.Append("\tPartitionCount: ").Append(parts.Count);
                line.Append("\tReplicationFactor: ").Append(parts[0].ReplicaNodes.Count);
                line.Append("\tConfigs: ").Append(string.Join(",", nonDefault.Select(c => $"{c.Name}={c.Value}")));
                output.WriteLine(line.ToString());
            }
            if (overrides) continue;
            int minIsr = int.TryParse(entries.FirstOrDefault(c => c.Name == "min.insync.replicas")?.Value, out int m) ? m : 1;
            foreach (var p in parts)
            {
                bool hasLeader = p.LeaderId >= 0;
                if (underReplicated && p.ReplicaNodes.Count - p.IsrNodes.Count <= 0) continue;
                if (unavailable && hasLeader && live.Contains(p.LeaderId)) continue;
                if (underMinIsr && hasLeader && p.IsrNodes.Count >= minIsr) continue;
                if (atMinIsr && p.IsrNodes.Count != minIsr) continue;
                output.WriteLine($"\tTopic: {t.Name}\tPartition: {p.PartitionIndex}\tLeader: {(hasLeader ? p.LeaderId.ToString() : "none")}" +
                    $"\tReplicas: {string.Join(",", p.ReplicaNodes)}\tIsr: {string.Join(",", p.IsrNodes)}");
            }
        }
    }

    /// <summary>DescribeConfigs for topics, sent to any broker (as upstream's admin client does for topic resources).</summary>
    internal static async Task<Dictionary<string, List<DescribeConfigsResponse.DescribeConfigsResourceResult>>> DescribeTopicConfigsAsync(AdminClient admin, List<string> topics)
    {
        var result = new Dictionary<string, List<DescribeConfigsResponse.DescribeConfigsResourceResult>>();
        if (topics.Count == 0) return result;
        var conn = await admin.AnyAsync();
        var request = new DescribeConfigsRequest
        {
            Resources = topics.Select(t => new DescribeConfigsRequest.DescribeConfigsResource { ResourceType = 2, ResourceName = t, ConfigurationKeys = null! }).ToList(),
        };
        var response = await admin.SendAsync<DescribeConfigsResponse>(conn, request, ApiKey.DescribeConfigs, 4);
        foreach (var r in response.Results)
        {
            if (r.ErrorCode != 0) throw AdminException.From(r.ErrorCode, r.ErrorMessage);
            result[r.ResourceName] = r.Configs;
        }
        return result;
    }

    private static async Task AlterAsync(AdminClient admin, AdminArgs args)
    {
        var topics = await TopicsAsync(admin, args);
        EnsureExists(args, topics);
        if (topics.Count == 0) return;
        int partitions = args.Int(Tool, "--partitions") ?? throw new UsageException($"{Tool}: --alter needs --partitions (topic configs change with kafka-configs)");
        var request = new CreatePartitionsRequest
        {
            Topics = topics.Select(t => new CreatePartitionsRequest.CreatePartitionsTopic { Name = t.Name!, Count = partitions, Assignments = null! }).ToList(),
            TimeoutMs = 30000,
        };
        var response = await admin.WithControllerAsync(
            conn => admin.SendAsync<CreatePartitionsResponse>(conn, request, ApiKey.CreatePartitions, 3),
            r => r.Results.Any(x => x.ErrorCode == (short)ErrorCode.NotController));
        foreach (var r in response.Results)
            if (r.ErrorCode != 0) throw AdminException.From(r.ErrorCode, r.ErrorMessage);
    }

    private static async Task DeleteAsync(AdminClient admin, AdminArgs args)
    {
        var topics = await TopicsAsync(admin, args);
        EnsureExists(args, topics);
        if (topics.Count == 0) return;
        var names = topics.Select(t => t.Name!).ToList();
        var response = await admin.WithControllerAsync(
            async conn =>
            {
                short v = conn.Version(ApiKey.DeleteTopics, 6);
                var request = v >= 6
                    ? new DeleteTopicsRequest { Topics = names.Select(n => new DeleteTopicsRequest.DeleteTopicState { Name = n }).ToList(), TimeoutMs = 30000 }
                    : new DeleteTopicsRequest { TopicNames = names, TimeoutMs = 30000 };
                return await admin.SendAsync<DeleteTopicsResponse>(conn, request, v);
            },
            r => r.Responses.Any(x => x.ErrorCode == (short)ErrorCode.NotController));
        foreach (var r in response.Responses)
            if (r.ErrorCode != 0) throw AdminException.From(r.ErrorCode, r.ErrorMessage);
    }

    /// <summary>Kafka's Uuid text: URL-safe base64 of the 16 bytes without padding.</summary>
    /// <summary>Uuid.fromString: 22 characters of URL-safe base64 for 16 bytes.</summary>
    internal static Guid ParseKafkaUuid(string text)
    {
        if (text.Length != 22) throw new AdminException($"Input string with prefix `{(text.Length > 22 ? text[..22] : text)}` is too {(text.Length > 22 ? "long" : "short")} to be decoded as a base64 UUID");
        try { return new Guid(Convert.FromBase64String(text.Replace('-', '+').Replace('_', '/') + "=="), bigEndian: true); }
        catch (FormatException) { throw new AdminException($"Input string `{text}` cannot be decoded as a base64 UUID"); }
    }

    internal static string KafkaUuid(Guid id)
    {
        Span<byte> bytes = stackalloc byte[16];
        id.TryWriteBytes(bytes, bigEndian: true, out _);
        return Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    }
}
