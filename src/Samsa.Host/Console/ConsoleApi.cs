using System.Buffers.Binary;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Samsa.Host.Admin;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Records;
using Samsa.Keeper.Client;
using Samsa.Keeper.Protocol;

namespace Samsa.Host.WebConsole;

/// <summary>A request the console refuses or cannot answer: the HTTP status and a message for the JSON error body.</summary>
internal sealed class ApiException(int status, string message) : Exception(message)
{
    public int Status { get; } = status;
}

/// <summary>
/// The console's JSON API (/api/...). Every call opens its own admin client and, for the znode
/// pages, its own ZooKeeper session, and asks the cluster as any client would (Metadata,
/// DescribeConfigs, DescribeLogDirs, ListOffsets, Fetch, Produce, the group and transaction APIs;
/// getChildren/getData/getACL and the four-letter words), so the console works against any Kafka
/// and ZooKeeper address, Samsa or upstream.
/// </summary>
internal sealed class ConsoleApi(ConsoleTarget target)
{
    public const int MaxRecords = 500;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    private AdminClient Admin() => new(target.Bootstrap, target.ClientProperties, Timeout);

    // ------------------------------------------------------------------ cluster

    public async Task<JsonNode> ClusterAsync(CancellationToken ct)
    {
        await using var admin = Admin();
        var md = await admin.MetadataAsync([]);
        var brokers = md.Brokers.OrderBy(b => b.NodeId).Select(b => (JsonNode)new JsonObject
        {
            ["id"] = b.NodeId, ["host"] = b.Host, ["port"] = b.Port, ["rack"] = b.Rack,
            ["controller"] = b.NodeId == md.ControllerId,
        });
        var result = new JsonObject
        {
            ["clusterId"] = md.ClusterId,
            ["controller"] = md.ControllerId,
            ["bootstrap"] = target.Bootstrap,
            ["brokers"] = new JsonArray(brokers.ToArray()),
        };
        if (target.ZooKeeper is { } zk)
        {
            var keeper = new JsonObject { ["connect"] = zk };
            var servers = new List<JsonNode>();
            foreach (var (host, port) in KeeperServers(zk))
            {
                var server = new JsonObject { ["address"] = $"{host}:{port.ToString(CultureInfo.InvariantCulture)}" };
                try
                {
                    string srvr = await FourLetterAsync(host, port, "srvr", ct);
                    foreach (var line in srvr.Split('\n'))
                    {
                        int colon = line.IndexOf(':');
                        if (colon <= 0) continue;
                        string key = line[..colon].Trim(), value = line[(colon + 1)..].Trim();
                        if (key == "Mode") server["mode"] = value;
                        else if (key == "Zookeeper version") server["version"] = value;
                        else if (key == "Node count") server["znodes"] = value;
                    }
                    if (server["mode"] is null) server["error"] = srvr.Trim().Length == 0 ? "srvr gave no answer" : srvr.Trim();
                }
                catch (Exception e) when (e is IOException or SocketException or OperationCanceledException)
                {
                    server["error"] = "srvr failed: " + e.Message;
                }
                servers.Add(server);
            }
            keeper["servers"] = new JsonArray(servers.ToArray());
            result["keeper"] = keeper;
        }
        return result;
    }

    // ------------------------------------------------------------------ topics

    public async Task<JsonNode> TopicsAsync(CancellationToken ct)
    {
        await using var admin = Admin();
        var md = await admin.MetadataAsync(null);
        var sizes = await SizesAsync(admin, md);
        var topics = md.Topics.Where(t => t.ErrorCode == 0).OrderBy(t => t.Name, StringComparer.Ordinal).Select(t => (JsonNode)new JsonObject
        {
            ["name"] = t.Name,
            ["internal"] = t.IsInternal,
            ["partitions"] = t.Partitions.Count,
            ["replicationFactor"] = t.Partitions.Count == 0 ? 0 : t.Partitions.Max(p => p.ReplicaNodes.Count),
            ["underReplicated"] = t.Partitions.Count(p => p.IsrNodes.Count < p.ReplicaNodes.Count),
            ["offline"] = t.Partitions.Count(p => p.LeaderId < 0),
            ["size"] = t.Partitions.Sum(p => sizes.GetValueOrDefault((t.Name!, p.PartitionIndex))),
        });
        return new JsonObject { ["topics"] = new JsonArray(topics.ToArray()) };
    }

    public async Task<JsonNode> TopicAsync(string name, CancellationToken ct)
    {
        await using var admin = Admin();
        var md = await admin.MetadataAsync([name]);
        var t = md.Topics.FirstOrDefault(x => x.Name == name);
        if (t is null || t.ErrorCode == (short)ErrorCode.UnknownTopicOrPartition) throw new ApiException(404, $"unknown topic '{name}'");
        if (t.ErrorCode != 0) throw new ApiException(502, $"{name}: {ErrorCodes.FromWire(t.ErrorCode)}");
        var sizes = await SizesAsync(admin, md);
        var parts = t.Partitions.Select(p => (t.Name!, p.PartitionIndex)).ToList();
        var earliest = await ConsumerGroupsCommand.LogOffsetsAsync(admin, parts, -2);
        var latest = await ConsumerGroupsCommand.LogOffsetsAsync(admin, parts, -1);
        var partitions = t.Partitions.OrderBy(p => p.PartitionIndex).Select(p => (JsonNode)new JsonObject
        {
            ["partition"] = p.PartitionIndex,
            ["leader"] = p.LeaderId,
            ["leaderEpoch"] = p.LeaderEpoch,
            ["replicas"] = Ints(p.ReplicaNodes),
            ["isr"] = Ints(p.IsrNodes),
            ["offline"] = Ints(p.OfflineReplicas),
            ["earliest"] = earliest.TryGetValue((name, p.PartitionIndex), out long e) ? e : null,
            ["latest"] = latest.TryGetValue((name, p.PartitionIndex), out long l) ? l : null,
            ["size"] = sizes.TryGetValue((name, p.PartitionIndex), out long s) ? s : null,
        });
        var configs = await DescribeConfigsAsync(admin, 2, name);
        return new JsonObject
        {
            ["name"] = name,
            ["topicId"] = t.TopicId.ToString(),
            ["internal"] = t.IsInternal,
            ["partitions"] = new JsonArray(partitions.ToArray()),
            ["configs"] = configs,
        };
    }

    /// <summary>DescribeConfigs for one resource (2 topic, 4 broker): name, value, source, read-only, sensitive.</summary>
    private static async Task<JsonArray> DescribeConfigsAsync(AdminClient admin, sbyte type, string resource)
    {
        var conn = await admin.AnyAsync();
        var r = await admin.SendAsync<DescribeConfigsResponse>(conn, new DescribeConfigsRequest
        {
            Resources = [new DescribeConfigsRequest.DescribeConfigsResource { ResourceType = type, ResourceName = resource, ConfigurationKeys = null! }],
        }, ApiKey.DescribeConfigs, 4);
        var result = r.Results.FirstOrDefault() ?? throw new ApiException(502, "DescribeConfigs gave no result");
        if (result.ErrorCode != 0) throw new ApiException(502, $"DescribeConfigs: {result.ErrorMessage ?? ErrorCodes.FromWire(result.ErrorCode).ToString()}");
        return new JsonArray(result.Configs.OrderBy(c => c.Name, StringComparer.Ordinal).Select(c => (JsonNode)new JsonObject
        {
            ["name"] = c.Name,
            ["value"] = c.IsSensitive ? null : c.Value,
            ["source"] = SourceName(c.ConfigSource),
            ["readOnly"] = c.ReadOnly,
            ["sensitive"] = c.IsSensitive,
        }).ToArray());
    }

    private static string SourceName(sbyte source) => source switch
    {
        1 => "DYNAMIC_TOPIC_CONFIG", 2 => "DYNAMIC_BROKER_CONFIG", 3 => "DYNAMIC_DEFAULT_BROKER_CONFIG", 4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG", 6 => "DYNAMIC_BROKER_LOGGER_CONFIG", 7 => "CLIENT_METRICS_CONFIG", 8 => "GROUP_CONFIG", _ => "UNKNOWN",
    };

    /// <summary>Each partition's size on its leader (DescribeLogDirs at every broker; the leader's replica counts, not the future one).</summary>
    private static async Task<Dictionary<(string Topic, int Partition), long>> SizesAsync(AdminClient admin, MetadataResponse md)
    {
        var leaders = new Dictionary<(string, int), int>();
        foreach (var t in md.Topics)
            foreach (var p in t.Partitions)
                leaders[(t.Name!, p.PartitionIndex)] = p.LeaderId;
        var sizes = new Dictionary<(string, int), long>();
        foreach (var id in leaders.Values.Where(id => id >= 0).Distinct())
        {
            DescribeLogDirsResponse r;
            try
            {
                var conn = await admin.NodeAsync(id);
                r = await admin.SendAsync<DescribeLogDirsResponse>(conn, new DescribeLogDirsRequest { Topics = null! }, ApiKey.DescribeLogDirs, 4);
            }
            catch (AdminException) { continue; }   // a broker that does not answer DescribeLogDirs: its sizes stay unknown
            foreach (var dir in r.Results.Where(d => d.ErrorCode == 0))
                foreach (var t in dir.Topics)
                    foreach (var p in t.Partitions.Where(p => !p.IsFutureKey && leaders.GetValueOrDefault((t.Name, p.PartitionIndex), -1) == id))
                        sizes[(t.Name, p.PartitionIndex)] = p.PartitionSize;
        }
        return sizes;
    }

    // ------------------------------------------------------------------ messages

    /// <summary>
    /// Up to <paramref name="limit"/> records of one partition from <paramref name="offset"/> (or the first
    /// at or after <paramref name="timestamp"/>, or the last <paramref name="limit"/> when neither is given),
    /// fetched at the leader read-uncommitted; control records are left out.
    /// </summary>
    public async Task<JsonNode> MessagesAsync(string topic, int partition, long? offset, long? timestamp, int limit, CancellationToken ct)
    {
        if (limit is < 1 or > MaxRecords) throw new ApiException(400, $"limit must be 1..{MaxRecords}");
        if (partition < 0) throw new ApiException(400, "partition must not be negative");
        await using var admin = Admin();
        int leader = await LeaderAsync(admin, topic, partition);
        var earliest = (await ConsumerGroupsCommand.LogOffsetsAsync(admin, [(topic, partition)], -2)).GetValueOrDefault((topic, partition), -1);
        var latest = (await ConsumerGroupsCommand.LogOffsetsAsync(admin, [(topic, partition)], -1)).GetValueOrDefault((topic, partition), -1);
        if (earliest < 0 || latest < 0) throw new ApiException(503, $"{topic}-{partition}: its leader did not answer ListOffsets");
        long start;
        if (timestamp is { } ts)
        {
            if (ts < 0) throw new ApiException(400, "timestamp must be milliseconds since the epoch");
            var found = await ConsumerGroupsCommand.LogOffsetsAsync(admin, [(topic, partition)], ts);
            start = found.TryGetValue((topic, partition), out long o) && o >= 0 ? o : latest;
        }
        else if (offset is { } off)
        {
            if (off < earliest || off > latest) throw new ApiException(400, $"offset {off} is outside the partition's range {earliest}..{latest}");
            start = off;
        }
        else start = Math.Max(earliest, latest - limit);

        var records = new List<JsonNode>();
        var conn = await admin.NodeAsync(leader);
        long next = start;
        for (int round = 0; round < 10 && records.Count < limit && next < latest; round++)
        {
            var fetch = new FetchRequest
            {
                ReplicaId = -1, MaxWaitMs = 0, MinBytes = 0, MaxBytes = 4 << 20, IsolationLevel = 0, SessionId = 0, SessionEpoch = -1,
                Topics = [new FetchRequest.FetchTopic
                {
                    Topic = topic,
                    Partitions = [new FetchRequest.FetchPartition { Partition = partition, FetchOffset = next, PartitionMaxBytes = 1 << 20, CurrentLeaderEpoch = -1, LastFetchedEpoch = -1, LogStartOffset = -1 }],
                }],
                ForgottenTopicsData = [],
                RackId = "",
            };
            var r = await admin.SendAsync<FetchResponse>(conn, fetch, ApiKey.Fetch, 12);
            if (r.ErrorCode != 0) throw new ApiException(502, $"Fetch: {ErrorCodes.FromWire(r.ErrorCode)}");
            var pd = r.Responses.SelectMany(x => x.Partitions).FirstOrDefault(p => p.PartitionIndex == partition)
                ?? throw new ApiException(502, "Fetch answered without the partition");
            if (pd.ErrorCode != 0) throw new ApiException(502, $"Fetch {topic}-{partition}: {ErrorCodes.FromWire(pd.ErrorCode)}");
            if (pd.Records is not { Length: > 0 } data) break;
            long before = next;
            next = ReadBatches(data.Span, next, limit, records);
            if (next == before) break;
        }
        return new JsonObject
        {
            ["topic"] = topic, ["partition"] = partition, ["leader"] = leader,
            ["earliest"] = earliest, ["latest"] = latest, ["start"] = start, ["next"] = next,
            ["records"] = new JsonArray(records.ToArray()),
        };
    }

    /// <summary>Appends the records at or after <paramref name="from"/> to <paramref name="into"/> (up to <paramref name="limit"/>); returns the offset to fetch next.</summary>
    private static long ReadBatches(ReadOnlySpan<byte> span, long from, int limit, List<JsonNode> into)
    {
        int pos = 0;
        long next = from;
        while (span.Length - pos >= RecordBatch.HeaderSize && into.Count < limit)
        {
            int size = RecordBatch.LogOverhead + BinaryPrimitives.ReadInt32BigEndian(span[(pos + RecordBatch.BatchLengthOffset)..]);
            if (size < RecordBatch.HeaderSize || size > span.Length - pos) break;   // a fetch may end with a partial batch
            var batch = new RecordBatch(span.Slice(pos, size));
            pos += size;
            if (batch.Magic != RecordBatch.CurrentMagic) throw new ApiException(502, $"batch at offset {batch.BaseOffset} has magic {batch.Magic}; the console reads v2 batches only");
            if (batch.IsControl) { next = Math.Max(next, batch.NextOffset); continue; }
            foreach (var record in batch.GetRecords())
            {
                if (record.Offset < from) continue;
                if (into.Count >= limit) break;
                var headers = new List<JsonNode>();
                foreach (var h in record.Headers)
                    headers.Add(new JsonObject { ["key"] = h.KeyString, ["value"] = h.IsValueNull ? null : Text(h.Value) });
                var value = record.IsValueNull ? null : Text(record.Value);
                var item = new JsonObject
                {
                    ["offset"] = record.Offset,
                    ["timestamp"] = record.Timestamp,
                    ["timestampType"] = batch.TimestampType == TimestampType.LogAppendTime ? "LogAppendTime" : "CreateTime",
                    ["key"] = record.IsKeyNull ? null : Text(record.Key),
                    ["value"] = value,
                    ["valueSize"] = record.IsValueNull ? -1 : record.Value.Length,
                    ["headers"] = new JsonArray(headers.ToArray()),
                    ["transactional"] = batch.IsTransactional,
                    ["producerId"] = batch.ProducerId,
                };
                if (value is not null && PrettyJson(value) is { } pretty) item["json"] = pretty;
                into.Add(item);
                next = record.Offset + 1;
            }
            if (into.Count < limit) next = Math.Max(next, batch.NextOffset);
        }
        return next;
    }

    /// <summary>Bytes as text when they are valid UTF-8 without control characters, else "base64:..." so the page shows what is there.</summary>
    internal static string Text(ReadOnlySpan<byte> bytes)
    {
        try
        {
            string s = new UTF8Encoding(false, true).GetString(bytes);
            if (!s.Any(c => char.IsControl(c) && c is not ('\n' or '\r' or '\t'))) return s;
        }
        catch (DecoderFallbackException) { }
        return "base64:" + Convert.ToBase64String(bytes);
    }

    /// <summary>The value indented when it is a JSON object or array; null otherwise.</summary>
    internal static string? PrettyJson(string value)
    {
        var trimmed = value.AsSpan().TrimStart();
        if (trimmed.Length == 0 || trimmed[0] is not ('{' or '[')) return null;
        try
        {
            using var doc = JsonDocument.Parse(value, new JsonDocumentOptions { MaxDepth = 64 });
            using var buffer = new MemoryStream();
            using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
                doc.WriteTo(writer);
            return Encoding.UTF8.GetString(buffer.ToArray());
        }
        catch (JsonException) { return null; }
    }

    private static async Task<int> LeaderAsync(AdminClient admin, string topic, int partition)
    {
        if (string.IsNullOrEmpty(topic)) throw new ApiException(400, "topic is required");
        var md = await admin.MetadataAsync([topic]);
        var t = md.Topics.FirstOrDefault(x => x.Name == topic);
        if (t is null || t.ErrorCode == (short)ErrorCode.UnknownTopicOrPartition) throw new ApiException(404, $"unknown topic '{topic}'");
        if (t.ErrorCode != 0) throw new ApiException(502, $"{topic}: {ErrorCodes.FromWire(t.ErrorCode)}");
        var p = t.Partitions.FirstOrDefault(x => x.PartitionIndex == partition)
            ?? throw new ApiException(404, $"topic '{topic}' has no partition {partition} (it has {t.Partitions.Count})");
        if (p.LeaderId < 0) throw new ApiException(503, $"{topic}-{partition} has no leader");
        return p.LeaderId;
    }

    /// <summary>Produces one record (acks=all) at the partition's leader; the body is {topic, partition, key, value, headers:[{key,value}]}.</summary>
    public async Task<JsonNode> ProduceAsync(byte[] body, CancellationToken ct)
    {
        JsonObject request;
        try { request = JsonNode.Parse(body) as JsonObject ?? throw new ApiException(400, "the body must be a JSON object"); }
        catch (JsonException e) { throw new ApiException(400, "the body is not JSON: " + e.Message); }
        string topic = Str(request, "topic") ?? throw new ApiException(400, "topic is required");
        int partition = request["partition"] is { } pn ? Int(pn, "partition") : 0;
        string? key = Str(request, "key"), value = Str(request, "value");
        var headers = new List<RecordHeaderData>();
        if (request["headers"] is JsonArray ha)
            foreach (var h in ha)
            {
                if (h is not JsonObject ho || Str(ho, "key") is not { Length: > 0 } hk) throw new ApiException(400, "each header needs a key");
                headers.Add(new RecordHeaderData(hk, Str(ho, "value") is { } hv ? Encoding.UTF8.GetBytes(hv) : null));
            }
        else if (request["headers"] is not null) throw new ApiException(400, "headers must be an array of {key, value}");
        await using var admin = Admin();
        int leader = await LeaderAsync(admin, topic, partition);
        using var builder = new RecordBatchBuilder();
        builder.Append(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), key is null ? null : Encoding.UTF8.GetBytes(key), value is null ? null : Encoding.UTF8.GetBytes(value), headers);
        var conn = await admin.NodeAsync(leader);
        var r = await admin.SendAsync<ProduceResponse>(conn, new ProduceRequest
        {
            Acks = -1, TimeoutMs = 15000,
            TopicData = [new ProduceRequest.TopicProduceData { Name = topic, PartitionData = [new ProduceRequest.PartitionProduceData { Index = partition, Records = builder.Build() }] }],
        }, ApiKey.Produce, 11);
        var pr = r.Responses.SelectMany(x => x.PartitionResponses).FirstOrDefault() ?? throw new ApiException(502, "Produce answered without the partition");
        if (pr.ErrorCode != 0) throw new ApiException(502, $"Produce: {pr.ErrorMessage ?? ErrorCodes.FromWire(pr.ErrorCode).ToString()}");
        return new JsonObject { ["topic"] = topic, ["partition"] = partition, ["offset"] = pr.BaseOffset, ["leader"] = leader };
    }

    private static string? Str(JsonObject o, string name) => o[name] switch
    {
        null => null,
        JsonValue v when v.TryGetValue(out string? s) => s,
        _ => throw new ApiException(400, $"{name} must be a string"),
    };

    private static int Int(JsonNode n, string name) =>
        n is JsonValue v && v.TryGetValue(out int i) ? i
        : n is JsonValue s && s.TryGetValue(out string? text) && int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out i) ? i
        : throw new ApiException(400, $"{name} must be a non-negative integer");

    // ------------------------------------------------------------------ groups

    public async Task<JsonNode> GroupsAsync(CancellationToken ct)
    {
        await using var admin = Admin();
        await admin.MetadataAsync([]);
        var groups = new SortedDictionary<string, JsonObject>(StringComparer.Ordinal);
        foreach (var id in admin.Brokers.Keys.Order())
        {
            var conn = await admin.NodeAsync(id);
            short v = conn.Version(ApiKey.ListGroups, 5);
            var r = await admin.SendAsync<ListGroupsResponse>(conn, new ListGroupsRequest { StatesFilter = [], TypesFilter = [] }, v);
            if (r.ErrorCode != 0) throw new ApiException(502, $"ListGroups at broker {id}: {ErrorCodes.FromWire(r.ErrorCode)}");
            foreach (var g in r.Groups)
                groups[g.GroupId] = new JsonObject
                {
                    ["groupId"] = g.GroupId,
                    ["type"] = string.IsNullOrEmpty(g.GroupType) ? "classic" : g.GroupType,
                    ["protocolType"] = g.ProtocolType,
                    ["state"] = g.GroupState,
                    ["coordinator"] = id,
                };
        }
        return new JsonObject { ["groups"] = new JsonArray(groups.Values.Select(g => (JsonNode)g).ToArray()) };
    }

    /// <summary>
    /// One group: state, members and assignments, and per partition the committed offset, the log end
    /// (ListOffsets latest at the leader) and lag = log end − committed, as kafka-consumer-groups.sh
    /// --describe computes them. A share group shows its start offsets (DescribeShareGroupOffsets).
    /// </summary>
    public async Task<JsonNode> GroupAsync(string groupId, CancellationToken ct)
    {
        await using var admin = Admin();
        if (await ShareGroupAsync(admin, groupId) is { } share) return share;
        ConsumerGroupsCommand.Group g;
        try { g = await ConsumerGroupsCommand.DescribeGroupAsync(admin, groupId); }
        catch (AdminException e) when (e.Code == ErrorCode.InvalidGroupId) { throw new ApiException(400, e.Message); }
        if (g.State == "Dead") throw new ApiException(404, $"no group '{groupId}'");
        var committed = await ConsumerGroupsCommand.CommittedAsync(admin, g);
        var assigned = g.Members.SelectMany(m => m.Assignment.Select(a => (a, m))).GroupBy(x => x.a).ToDictionary(x => x.Key, x => x.First().m);
        var partitions = committed.Keys.Union(assigned.Keys).Distinct().OrderBy(p => p.Topic, StringComparer.Ordinal).ThenBy(p => p.Partition).ToList();
        var ends = await ConsumerGroupsCommand.LogOffsetsAsync(admin, partitions, -1);
        var offsets = partitions.Select(p =>
        {
            long? c = committed.TryGetValue(p, out long co) ? co : null;
            long? end = ends.TryGetValue(p, out long eo) ? eo : null;
            return (JsonNode)new JsonObject
            {
                ["topic"] = p.Topic, ["partition"] = p.Partition,
                ["committed"] = c, ["logEnd"] = end, ["lag"] = c is { } cv && end is { } ev ? ev - cv : null,
                ["memberId"] = assigned.TryGetValue(p, out var m) ? m.MemberId : null,
                ["clientId"] = assigned.TryGetValue(p, out var m2) ? m2.ClientId : null,
            };
        });
        return new JsonObject
        {
            ["groupId"] = g.Id, ["state"] = g.State, ["assignor"] = g.Assignor, ["coordinator"] = g.Coordinator.Id,
            ["members"] = Members(g.Members.Select(m => (m.MemberId, (string?)m.InstanceId, m.ClientId, m.Host, m.Assignment))),
            ["offsets"] = new JsonArray(offsets.ToArray()),
        };
    }

    private static JsonArray Members(IEnumerable<(string MemberId, string? InstanceId, string ClientId, string Host, List<(string Topic, int Partition)> Assignment)> members) =>
        new(members.Select(m => (JsonNode)new JsonObject
        {
            ["memberId"] = m.MemberId, ["instanceId"] = string.IsNullOrEmpty(m.InstanceId) ? null : m.InstanceId, ["clientId"] = m.ClientId, ["host"] = m.Host,
            ["assignment"] = new JsonArray(m.Assignment.OrderBy(a => a.Topic, StringComparer.Ordinal).ThenBy(a => a.Partition)
                .Select(a => (JsonNode)new JsonObject { ["topic"] = a.Topic, ["partition"] = a.Partition }).ToArray()),
        }).ToArray());

    /// <summary>The group as a share group, or null when the coordinator does not know it as one (or speaks no ShareGroupDescribe).</summary>
    private static async Task<JsonNode?> ShareGroupAsync(AdminClient admin, string groupId)
    {
        var (first, _) = await admin.CoordinatorAsync(groupId);
        try { first.Version(ApiKey.ShareGroupDescribe, 1); }
        catch (AdminException) { return null; }
        var r = await admin.AtCoordinatorAsync(groupId, c => admin.SendAsync<ShareGroupDescribeResponse>(c, new ShareGroupDescribeRequest { GroupIds = [groupId] }, ApiKey.ShareGroupDescribe, 1),
            r => r.Groups.Select(g => g.ErrorCode));
        var g = r.Groups.FirstOrDefault();
        if (g is null || g.ErrorCode != 0) return null;
        var offsets = new List<JsonNode>();
        try
        {
            var conn = await admin.NodeAsync(admin.LastCoordinator!.Id);
            var o = await admin.SendAsync<DescribeShareGroupOffsetsResponse>(conn, new DescribeShareGroupOffsetsRequest
            {
                Groups = [new DescribeShareGroupOffsetsRequest.DescribeShareGroupOffsetsRequestGroup { GroupId = groupId, Topics = null! }],
            }, ApiKey.DescribeShareGroupOffsets, 1);
            foreach (var t in o.Groups.Where(x => x.ErrorCode == 0).SelectMany(x => x.Topics))
                foreach (var p in t.Partitions.Where(p => p.ErrorCode == 0).OrderBy(p => p.PartitionIndex))
                    offsets.Add(new JsonObject
                    {
                        ["topic"] = t.TopicName, ["partition"] = p.PartitionIndex, ["startOffset"] = p.StartOffset,
                        ["lag"] = conn.Version(ApiKey.DescribeShareGroupOffsets, 1) >= 1 && p.Lag >= 0 ? p.Lag : null,
                    });
        }
        catch (AdminException) { }   // no DescribeShareGroupOffsets: members and state only
        return new JsonObject
        {
            ["groupId"] = g.GroupId, ["type"] = "share", ["state"] = g.GroupState, ["assignor"] = g.AssignorName, ["coordinator"] = admin.LastCoordinator!.Id,
            ["groupEpoch"] = g.GroupEpoch,
            ["members"] = Members(g.Members.Select(m => (m.MemberId, (string?)null, m.ClientId, m.ClientHost,
                m.Assignment.TopicPartitions.SelectMany(tp => tp.Partitions.Select(p => (tp.TopicName, p))).ToList()))),
            ["offsets"] = new JsonArray(offsets.ToArray()),
        };
    }

    // ------------------------------------------------------------------ transactions and producers

    public async Task<JsonNode> TransactionsAsync(CancellationToken ct)
    {
        await using var admin = Admin();
        await admin.MetadataAsync([]);
        var listed = new SortedDictionary<string, (long ProducerId, string State, int Broker)>(StringComparer.Ordinal);
        var errors = new List<JsonNode>();
        foreach (var id in admin.Brokers.Keys.Order())
        {
            var conn = await admin.NodeAsync(id);
            ListTransactionsResponse r;
            try { r = await admin.SendAsync<ListTransactionsResponse>(conn, new ListTransactionsRequest { StateFilters = [], ProducerIdFilters = [], DurationFilter = -1 }, ApiKey.ListTransactions, 1); }
            catch (AdminException e) { errors.Add(JsonValue.Create($"broker {id}: {e.Message}")); continue; }
            if (r.ErrorCode != 0) { errors.Add(JsonValue.Create($"broker {id}: {ErrorCodes.FromWire(r.ErrorCode)}")); continue; }
            foreach (var t in r.TransactionStates) listed[t.TransactionalId] = (t.ProducerId, t.TransactionState, id);
        }
        var result = new List<JsonNode>();
        foreach (var group in listed.GroupBy(kv => kv.Value.Broker))
        {
            var conn = await admin.NodeAsync(group.Key);
            DescribeTransactionsResponse d;
            try { d = await admin.SendAsync<DescribeTransactionsResponse>(conn, new DescribeTransactionsRequest { TransactionalIds = group.Select(kv => kv.Key).ToList() }, ApiKey.DescribeTransactions, 0); }
            catch (AdminException e) { errors.Add(JsonValue.Create($"broker {group.Key}: {e.Message}")); continue; }
            foreach (var t in d.TransactionStates)
                result.Add(new JsonObject
                {
                    ["transactionalId"] = t.TransactionalId, ["coordinator"] = group.Key,
                    ["state"] = t.ErrorCode == 0 ? t.TransactionState : listed[t.TransactionalId].State,
                    ["error"] = t.ErrorCode == 0 ? null : ErrorCodes.FromWire(t.ErrorCode).ToString(),
                    ["producerId"] = t.ErrorCode == 0 ? t.ProducerId : listed[t.TransactionalId].ProducerId,
                    ["producerEpoch"] = t.ErrorCode == 0 ? t.ProducerEpoch : null,
                    ["timeoutMs"] = t.ErrorCode == 0 ? t.TransactionTimeoutMs : null,
                    ["startTimeMs"] = t.ErrorCode == 0 && t.TransactionStartTimeMs >= 0 ? t.TransactionStartTimeMs : null,
                    ["partitions"] = new JsonArray(t.Topics.SelectMany(tp => tp.Partitions.Select(p => (JsonNode)JsonValue.Create($"{tp.Topic}-{p}"))).ToArray()),
                });
        }
        return new JsonObject { ["transactions"] = new JsonArray(result.ToArray()), ["errors"] = new JsonArray(errors.ToArray()) };
    }

    /// <summary>DescribeProducers for every partition of a topic, at each partition's leader.</summary>
    public async Task<JsonNode> ProducersAsync(string topic, CancellationToken ct)
    {
        if (string.IsNullOrEmpty(topic)) throw new ApiException(400, "topic is required");
        await using var admin = Admin();
        var md = await admin.MetadataAsync([topic]);
        var t = md.Topics.FirstOrDefault(x => x.Name == topic);
        if (t is null || t.ErrorCode != 0) throw new ApiException(404, $"unknown topic '{topic}'");
        var rows = new List<JsonNode>();
        foreach (var byLeader in t.Partitions.Where(p => p.LeaderId >= 0).GroupBy(p => p.LeaderId))
        {
            var conn = await admin.NodeAsync(byLeader.Key);
            var r = await admin.SendAsync<DescribeProducersResponse>(conn, new DescribeProducersRequest
            {
                Topics = [new DescribeProducersRequest.TopicRequest { Name = topic, PartitionIndexes = byLeader.Select(p => p.PartitionIndex).ToList() }],
            }, ApiKey.DescribeProducers, 0);
            foreach (var p in r.Topics.SelectMany(x => x.Partitions).OrderBy(p => p.PartitionIndex))
            {
                if (p.ErrorCode != 0)
                {
                    rows.Add(new JsonObject { ["partition"] = p.PartitionIndex, ["error"] = p.ErrorMessage ?? ErrorCodes.FromWire(p.ErrorCode).ToString() });
                    continue;
                }
                foreach (var s in p.ActiveProducers)
                    rows.Add(new JsonObject
                    {
                        ["partition"] = p.PartitionIndex, ["leader"] = byLeader.Key, ["producerId"] = s.ProducerId, ["producerEpoch"] = s.ProducerEpoch,
                        ["lastSequence"] = s.LastSequence, ["lastTimestamp"] = s.LastTimestamp, ["coordinatorEpoch"] = s.CoordinatorEpoch,
                        ["currentTxnStartOffset"] = s.CurrentTxnStartOffset >= 0 ? s.CurrentTxnStartOffset : null,
                    });
            }
        }
        return new JsonObject { ["topic"] = topic, ["producers"] = new JsonArray(rows.OrderBy(r => (int)r["partition"]!).ToArray()) };
    }

    // ------------------------------------------------------------------ znodes

    public async Task<JsonNode> ZnodeAsync(string path, CancellationToken ct)
    {
        string connect = target.ZooKeeper ?? throw new ApiException(404, "the console was not given a ZooKeeper address");
        if (!path.StartsWith('/') || (path.Length > 1 && path.EndsWith('/')) || path.Contains("//", StringComparison.Ordinal) || path.Contains('\0'))
            throw new ApiException(400, $"'{path}' is not a znode path");
        KeeperClient zk;
        try { zk = await KeeperClient.ConnectAsync(connect, cancellationToken: ct); }
        catch (Exception e) when (e is IOException or SocketException or TimeoutException or KeeperException) { throw new ApiException(503, $"ZooKeeper at {connect}: {e.Message}"); }
        await using var _ = zk;
        try
        {
            var (children, _) = await zk.GetChildrenWithStatAsync(path, null, ct);
            var (data, stat) = await zk.GetDataAsync(path, false, ct);
            var (acl, _) = await zk.GetAclAsync(path, ct);
            children.Sort(StringComparer.Ordinal);
            return new JsonObject
            {
                ["path"] = path,
                ["children"] = new JsonArray(children.Select(c => (JsonNode)JsonValue.Create(c)).ToArray()),
                ["data"] = data is null ? null : Text(data),
                ["json"] = data is null ? null : PrettyJson(Encoding.UTF8.GetString(data)),
                ["stat"] = new JsonObject
                {
                    ["czxid"] = "0x" + stat.Czxid.ToString("x", CultureInfo.InvariantCulture), ["ctime"] = stat.Ctime,
                    ["mzxid"] = "0x" + stat.Mzxid.ToString("x", CultureInfo.InvariantCulture), ["mtime"] = stat.Mtime,
                    ["pzxid"] = "0x" + stat.Pzxid.ToString("x", CultureInfo.InvariantCulture),
                    ["cversion"] = stat.Cversion, ["dataVersion"] = stat.Version, ["aclVersion"] = stat.Aversion,
                    ["ephemeralOwner"] = "0x" + stat.EphemeralOwner.ToString("x", CultureInfo.InvariantCulture),
                    ["dataLength"] = stat.DataLength, ["numChildren"] = stat.NumChildren,
                },
                ["acl"] = new JsonArray(acl.Select(a => (JsonNode)new JsonObject
                {
                    ["scheme"] = a.Id.Scheme, ["id"] = a.Id.IdValue, ["perms"] = ZkCliCommand.PermString(a.Perms),
                }).ToArray()),
            };
        }
        catch (KeeperException e) when (e.Code == Code.NoNode) { throw new ApiException(404, $"no znode {path}"); }
        catch (KeeperException e) when (e.Code == Code.NoAuth) { throw new ApiException(403, $"{path}: not authorised to read"); }
    }

    /// <summary>The Keeper's watches by session (wchc) and by path (wchp) from each server, or why not (4lw not allowed).</summary>
    public async Task<JsonNode> WatchesAsync(CancellationToken ct)
    {
        string connect = target.ZooKeeper ?? throw new ApiException(404, "the console was not given a ZooKeeper address");
        var servers = new List<JsonNode>();
        foreach (var (host, port) in KeeperServers(connect))
        {
            var server = new JsonObject { ["address"] = $"{host}:{port.ToString(CultureInfo.InvariantCulture)}" };
            foreach (var word in new[] { "wchc", "wchp" })
            {
                try
                {
                    string answer = await FourLetterAsync(host, port, word, ct);
                    if (answer.Contains("is not executed because it is not in the whitelist", StringComparison.Ordinal))
                        server[word + "Error"] = answer.Trim();
                    else server[word] = answer;
                }
                catch (Exception e) when (e is IOException or SocketException or OperationCanceledException) { server[word + "Error"] = $"{word} failed: {e.Message}"; }
            }
            servers.Add(server);
        }
        return new JsonObject { ["servers"] = new JsonArray(servers.ToArray()) };
    }

    private static IEnumerable<(string Host, int Port)> KeeperServers(string connect)
    {
        int slash = connect.IndexOf('/');
        foreach (var raw in (slash < 0 ? connect : connect[..slash]).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int colon = raw.LastIndexOf(':');
            string host = colon > 0 ? raw[..colon] : raw;
            int port = colon > 0 && int.TryParse(raw[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out int p) ? p : 2181;
            yield return (host.Trim('[', ']'), port);
        }
    }

    /// <summary>A four-letter word's answer (read until the server closes, at most 1 MiB and 5 seconds).</summary>
    internal static async Task<string> FourLetterAsync(string host, int port, string word, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(5));
        using var client = new TcpClient();
        await client.ConnectAsync(host, port, timeout.Token);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(word), timeout.Token);
        var buffer = new MemoryStream();
        var chunk = new byte[8192];
        int n;
        while ((n = await stream.ReadAsync(chunk, timeout.Token)) > 0)
        {
            buffer.Write(chunk, 0, n);
            if (buffer.Length > 1 << 20) break;
        }
        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)Math.Min(buffer.Length, 1 << 20));
    }

    private static JsonArray Ints(IEnumerable<int> values) => new(values.Select(v => (JsonNode)JsonValue.Create(v)).ToArray());
}
