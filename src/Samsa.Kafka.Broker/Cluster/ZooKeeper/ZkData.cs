using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Samsa.Kafka.Broker.Config;

namespace Samsa.Kafka.Broker.Cluster.ZooKeeper;

/// <summary>
/// The znode paths and JSON documents of Kafka's ZooKeeper mode, with the field names and
/// versions upstream's kafka.zk.ZkData writes, so that zkCli.sh, upstream tools and an upstream
/// broker read the same layout.
/// </summary>
public static class ZkData
{
    public const string Brokers = "/brokers";
    public const string BrokerIds = "/brokers/ids";
    public const string Topics = "/brokers/topics";
    public const string BrokerSeqId = "/brokers/seqid";
    public const string Controller = "/controller";
    public const string ControllerEpoch = "/controller_epoch";
    public const string Config = "/config";
    public const string ConfigChanges = "/config/changes";
    public const string Admin = "/admin";
    public const string DeleteTopics = "/admin/delete_topics";
    /// <summary>Reassignments written by kafka-reassign-partitions.sh --zookeeper (before Kafka 2.5;
    /// upstream ReassignPartitionsZNode, deprecated by KIP-455 but still honoured by its ZK controller).</summary>
    public const string ReassignPartitions = "/admin/reassign_partitions";
    public const string ClusterId = "/cluster/id";
    public const string IsrChangeNotification = "/isr_change_notification";
    /// <summary>The name of each sequential child of <see cref="IsrChangeNotification"/> before its number.</summary>
    public const string IsrChangePrefix = "isr_change_";
    public const string LatestProducerIdBlock = "/latest_producer_id_block";
    public const string LogDirEventNotification = "/log_dir_event_notification";
    public const string Consumers = "/consumers";

    /// <summary>Persistent paths every broker makes sure exist at start-up (upstream
    /// ZkData.PersistentZkPaths; the config entity types are upstream's ConfigType.ALL).</summary>
    public static readonly string[] PersistentPaths =
    [
        Consumers, BrokerIds, Topics, ConfigChanges, DeleteTopics, BrokerSeqId, IsrChangeNotification,
        LatestProducerIdBlock, LogDirEventNotification,
        "/config/topics", "/config/clients", "/config/users", "/config/brokers", "/config/ips",
    ];

    public static string BrokerId(int id) => $"{BrokerIds}/{id.ToString(CultureInfo.InvariantCulture)}";
    public static string Topic(string topic) => $"{Topics}/{topic}";
    public static string TopicPartitions(string topic) => $"{Topics}/{topic}/partitions";
    public static string TopicPartition(string topic, int p) => $"{Topics}/{topic}/partitions/{p.ToString(CultureInfo.InvariantCulture)}";
    public static string PartitionStatePath(string topic, int p) => TopicPartition(topic, p) + "/state";
    public static string TopicConfig(string topic) => $"/config/topics/{topic}";
    public static string DeleteTopic(string topic) => $"{DeleteTopics}/{topic}";
    public const string ConfigChangePrefix = "/config/changes/config_change_";

    private static byte[] Json(JsonObject o) => Encoding.UTF8.GetBytes(o.ToJsonString());

    private static JsonObject? Parse(byte[]? data)
    {
        if (data is null || data.Length == 0) return null;
        try { return JsonNode.Parse(data) as JsonObject; }
        catch (JsonException) { return null; }
    }

    private static int? Int(JsonObject o, string key) =>
        o[key] is JsonValue v && v.TryGetValue<int>(out int i) ? i
        : o[key] is JsonValue s && s.TryGetValue<string>(out var str) && int.TryParse(str, NumberStyles.Integer, CultureInfo.InvariantCulture, out int j) ? j
        : null;

    private static List<int>? IntList(JsonNode? node)
    {
        if (node is not JsonArray a) return null;
        var list = new List<int>(a.Count);
        foreach (var e in a)
        {
            if (e is JsonValue v && v.TryGetValue<int>(out int i)) list.Add(i);
            else return null;
        }
        return list;
    }

    private static JsonArray Array(IEnumerable<int> values) => new(values.Select(v => (JsonNode?)JsonValue.Create(v)).ToArray());

    private static string Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture);

    // ---- /brokers/ids/<id> (BrokerIdZNode, version 5) ----

    /// <summary>host/port are those of the first endpoint whose security protocol is PLAINTEXT
    /// (null/-1 without one), as upstream registers them for clients that only read the old fields.
    /// <paramref name="protocols"/> is listener.security.protocol.map (listener name → protocol name);
    /// without it a listener named after a protocol maps to that protocol.</summary>
    public static byte[] EncodeBroker(IReadOnlyList<ListenerEndpoint> endpoints, string? rack, int jmxPort = -1,
        IReadOnlyDictionary<string, string>? protocols = null)
    {
        string ProtocolOf(string listener) => protocols?.GetValueOrDefault(listener) ?? SecurityProtocolOf(listener);
        var plain = endpoints.FirstOrDefault(e => ProtocolOf(e.ListenerName) == "PLAINTEXT");
        var o = new JsonObject
        {
            ["features"] = new JsonObject(),
            ["listener_security_protocol_map"] = new JsonObject(endpoints.Select(e =>
                new KeyValuePair<string, JsonNode?>(e.ListenerName, ProtocolOf(e.ListenerName)))),
            ["endpoints"] = new JsonArray(endpoints.Select(e => (JsonNode?)JsonValue.Create($"{e.ListenerName}://{FormatHost(e.Host)}:{e.Port}")).ToArray()),
            ["jmx_port"] = jmxPort,
            ["port"] = plain?.Port ?? -1,
            ["host"] = plain?.Host,
            ["version"] = 5,
            ["timestamp"] = Now(),
        };
        if (rack is not null) o["rack"] = rack;
        return Json(o);
    }

    private static string SecurityProtocolOf(string listenerName) =>
        listenerName is "SSL" or "SASL_PLAINTEXT" or "SASL_SSL" ? listenerName : "PLAINTEXT";

    private static string FormatHost(string host) => host.Contains(':') ? $"[{host}]" : host;

    public sealed record BrokerRegistration(int Id, IReadOnlyList<ListenerEndpoint> Endpoints, string? Rack);

    public static BrokerRegistration? DecodeBroker(int id, byte[]? data)
    {
        var o = Parse(data);
        if (o is null) return null;
        var endpoints = new List<ListenerEndpoint>();
        if (o["endpoints"] is JsonArray a)
        {
            foreach (var e in a)
            {
                if (e is JsonValue v && v.TryGetValue<string>(out var s))
                {
                    try { endpoints.AddRange(ListenerEndpoint.ParseList(s)); }
                    catch (Samsa.Kafka.Broker.Config.ConfigValueException) { }
                }
            }
        }
        // Version 1 registrations only have host and port.
        if (endpoints.Count == 0 && o["host"] is JsonValue h && h.TryGetValue<string>(out var host) && Int(o, "port") is int port)
            endpoints.Add(new ListenerEndpoint("PLAINTEXT", host, port));
        string? rack = o["rack"] is JsonValue r && r.TryGetValue<string>(out var rs) ? rs : null;
        return new BrokerRegistration(id, endpoints, rack);
    }

    // ---- /controller, /controller_epoch ----

    public static byte[] EncodeController(int brokerId) => Json(new JsonObject
    {
        ["version"] = 2,
        ["brokerid"] = brokerId,
        ["timestamp"] = Now(),
        ["kraftControllerEpoch"] = -1,
    });

    public static int? DecodeController(byte[]? data) => Parse(data) is { } o ? Int(o, "brokerid") : null;

    public static byte[] EncodeControllerEpoch(int epoch) => Encoding.UTF8.GetBytes(epoch.ToString(CultureInfo.InvariantCulture));

    public static int? DecodeControllerEpoch(byte[]? data) =>
        data is not null && int.TryParse(Encoding.UTF8.GetString(data), NumberStyles.Integer, CultureInfo.InvariantCulture, out int e) ? e : null;

    // ---- /brokers/topics/<topic> (TopicZNode, version 3) ----

    /// <summary>A topic znode: the full replica list of each partition and, for partitions being
    /// reassigned (KIP-455), the replicas being added and removed (absent = none).</summary>
    public sealed record TopicAssignment(Guid? TopicId, SortedDictionary<int, List<int>> Partitions,
        SortedDictionary<int, List<int>> AddingReplicas, SortedDictionary<int, List<int>> RemovingReplicas);

    public static byte[] EncodeTopic(Guid topicId, IReadOnlyDictionary<int, List<int>> partitions,
        IReadOnlyDictionary<int, List<int>>? adding = null, IReadOnlyDictionary<int, List<int>>? removing = null)
    {
        var parts = new JsonObject();
        foreach (var (p, replicas) in partitions.OrderBy(kv => kv.Key))
            parts[p.ToString(CultureInfo.InvariantCulture)] = Array(replicas);
        // Upstream TopicZNode.encode writes a partition under adding/removing only when its list is non-empty.
        return Json(new JsonObject
        {
            ["removing_replicas"] = NonEmpty(removing),
            ["partitions"] = parts,
            ["topic_id"] = KafkaUuid.ToBase64(topicId),
            ["adding_replicas"] = NonEmpty(adding),
            ["version"] = 3,
        });
    }

    private static JsonObject NonEmpty(IReadOnlyDictionary<int, List<int>>? map)
    {
        var o = new JsonObject();
        if (map is null) return o;
        foreach (var (p, replicas) in map.OrderBy(kv => kv.Key))
            if (replicas.Count > 0) o[p.ToString(CultureInfo.InvariantCulture)] = Array(replicas);
        return o;
    }

    public static TopicAssignment? DecodeTopic(byte[]? data)
    {
        var o = Parse(data);
        if (o?["partitions"] is not JsonObject parts) return null;
        var map = new SortedDictionary<int, List<int>>();
        foreach (var (key, value) in parts)
        {
            if (!int.TryParse(key, NumberStyles.None, CultureInfo.InvariantCulture, out int p)) return null;
            if (IntList(value) is not { } replicas) return null;
            map[p] = replicas;
        }
        Guid? id = o["topic_id"] is JsonValue v && v.TryGetValue<string>(out var s) && KafkaUuid.TryParse(s, out var g) ? g : null;
        return new TopicAssignment(id, map, PartitionLists(o["adding_replicas"], map), PartitionLists(o["removing_replicas"], map));
    }

    // adding_replicas / removing_replicas entries of partitions the topic has; anything unreadable counts as none.
    private static SortedDictionary<int, List<int>> PartitionLists(JsonNode? node, SortedDictionary<int, List<int>> partitions)
    {
        var result = new SortedDictionary<int, List<int>>();
        if (node is not JsonObject o) return result;
        foreach (var (key, value) in o)
            if (int.TryParse(key, NumberStyles.None, CultureInfo.InvariantCulture, out int p) && partitions.ContainsKey(p)
                && IntList(value) is { Count: > 0 } list)
                result[p] = list;
        return result;
    }

    // ---- /admin/reassign_partitions (ReassignPartitionsZNode, version 1) ----

    public static byte[] EncodeReassignPartitions(IEnumerable<(string Topic, int Partition, List<int> Replicas)> entries) => Json(new JsonObject
    {
        ["version"] = 1,
        ["partitions"] = new JsonArray(entries.Select(e => (JsonNode?)new JsonObject
        {
            ["topic"] = e.Topic,
            ["partition"] = e.Partition,
            ["replicas"] = Array(e.Replicas),
        }).ToArray()),
    });

    /// <summary>The requested target replicas by partition; null when the document is unreadable
    /// (upstream then logs and ignores it). Entries lacking a field are skipped.</summary>
    public static List<(string Topic, int Partition, List<int> Replicas)>? DecodeReassignPartitions(byte[]? data)
    {
        var o = Parse(data);
        if (o?["partitions"] is not JsonArray a) return null;
        var result = new List<(string, int, List<int>)>();
        foreach (var e in a)
        {
            if (e is not JsonObject entry) continue;
            if (entry["topic"] is not JsonValue tv || !tv.TryGetValue<string>(out var topic)) continue;
            if (Int(entry, "partition") is not int partition) continue;
            if (IntList(entry["replicas"]) is not { } replicas) continue;
            result.Add((topic, partition, replicas));
        }
        return result;
    }

    // ---- /brokers/topics/<topic>/partitions/<n>/state (TopicPartitionStateZNode, version 1) ----

    public sealed record PartitionState(int Leader, int LeaderEpoch, List<int> Isr, int ControllerEpoch);

    public static byte[] EncodePartitionState(PartitionState s) => Json(new JsonObject
    {
        ["controller_epoch"] = s.ControllerEpoch,
        ["leader"] = s.Leader,
        ["version"] = 1,
        ["leader_epoch"] = s.LeaderEpoch,
        ["isr"] = Array(s.Isr),
    });

    public static PartitionState? DecodePartitionState(byte[]? data)
    {
        var o = Parse(data);
        if (o is null || Int(o, "leader") is not int leader || Int(o, "leader_epoch") is not int epoch
            || IntList(o["isr"]) is not { } isr)
            return null;
        return new PartitionState(leader, epoch, isr, Int(o, "controller_epoch") ?? 0);
    }

    // ---- /config/<type>/<name> (ConfigEntityZNode, version 1) and change notifications ----

    public static byte[] EncodeConfig(IReadOnlyDictionary<string, string> config) => Json(new JsonObject
    {
        ["version"] = 1,
        ["config"] = new JsonObject(config.OrderBy(kv => kv.Key, StringComparer.Ordinal)
            .Select(kv => new KeyValuePair<string, JsonNode?>(kv.Key, kv.Value))),
    });

    public static Dictionary<string, string>? DecodeConfig(byte[]? data)
    {
        var o = Parse(data);
        if (o is null) return null;
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (o["config"] is JsonObject c)
            foreach (var (k, v) in c)
                if (v is JsonValue jv && jv.TryGetValue<string>(out var s)) result[k] = s;
        return result;
    }

    /// <summary>ConfigEntityChangeNotificationSequenceZNode: {"version":2,"entity_path":"topics/t"}.</summary>
    public static byte[] EncodeConfigChange(string entityPath) => Json(new JsonObject
    {
        ["version"] = 2,
        ["entity_path"] = entityPath,
    });

    // ---- /cluster/id (ClusterIdZNode; upstream writes the version as a string) ----

    public static byte[] EncodeClusterId(string id) => Json(new JsonObject { ["version"] = "1", ["id"] = id });

    public static string? DecodeClusterId(byte[]? data) =>
        Parse(data)?["id"] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    // ---- /latest_producer_id_block (ProducerIdBlockZNode, version 1) ----

    public static byte[] EncodeProducerIdBlock(int brokerId, long start, long end) => Json(new JsonObject
    {
        ["version"] = 1L,
        ["broker"] = brokerId,
        ["block_start"] = start.ToString(CultureInfo.InvariantCulture),
        ["block_end"] = end.ToString(CultureInfo.InvariantCulture),
    });

    public static (int Broker, long Start, long End)? DecodeProducerIdBlock(byte[]? data)
    {
        var o = Parse(data);
        if (o is null || Int(o, "broker") is not int b) return null;
        if (o["block_start"] is not JsonValue s || !s.TryGetValue<string>(out var ss) || !long.TryParse(ss, CultureInfo.InvariantCulture, out long start)) return null;
        if (o["block_end"] is not JsonValue e || !e.TryGetValue<string>(out var es) || !long.TryParse(es, CultureInfo.InvariantCulture, out long end)) return null;
        return (b, start, end);
    }
}
