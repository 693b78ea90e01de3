using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Samsa.Kafka.Storage;

namespace Samsa.Kafka.Broker.Groups.Share;

/// <summary>
/// Durable share-partition state on the partition leader's disk: one small JSON file per
/// share-partition in &lt;first log dir&gt;/share-group-state/, replaced atomically
/// (temp file, fsync, rename) whenever the state changed. It holds what upstream's ShareSnapshot
/// record holds: start offset, state epoch and the in-flight batches with state and delivery count.
/// Differs from upstream: upstream keeps this in the __share_group_state topic through the share
/// coordinator (ReadShareGroupState / WriteShareGroupState), so the state follows a leadership
/// move to another broker; here it survives a restart of the same broker only, and a new leader
/// starts the share-partition afresh (share.auto.offset.reset).
/// </summary>
public sealed class ShareStateStore
{
    private readonly string _dir;

    public ShareStateStore(string directory)
    {
        _dir = directory;
        Directory.CreateDirectory(_dir);
    }

    private string PathOf(string groupId, Guid topicId, int partition)
    {
        var hash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(groupId)))[..24].ToLowerInvariant();
        return Path.Combine(_dir, $"{topicId:N}-{partition}-{hash}.json");
    }

    public void Save(string groupId, Guid topicId, int partition, SharePartitionSnapshot s)
    {
        var batches = new JsonArray();
        foreach (var b in s.Batches)
            batches.Add(new JsonArray(b.FirstOffset, b.LastOffset, (int)b.State, (int)b.DeliveryCount));
        var doc = new JsonObject
        {
            ["version"] = 1,
            ["group"] = groupId,
            ["topicId"] = topicId.ToString(),
            ["partition"] = partition,
            ["startOffset"] = s.StartOffset,
            ["stateEpoch"] = s.StateEpoch,
            ["batches"] = batches,
        };
        CheckpointFile.WriteAtomically(PathOf(groupId, topicId, partition), Encoding.UTF8.GetBytes(doc.ToJsonString()));
    }

    /// <summary>The stored snapshot, or null when none (or unreadable: then the share-partition
    /// starts afresh, with one log line from the caller).</summary>
    public SharePartitionSnapshot? Load(string groupId, Guid topicId, int partition)
    {
        var path = PathOf(groupId, topicId, partition);
        if (!File.Exists(path)) return null;
        var doc = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        if ((string?)doc["group"] != groupId) return null;   // hash clash: not ours
        var batches = new List<StateBatch>();
        foreach (var b in doc["batches"]!.AsArray())
        {
            var a = b!.AsArray();
            batches.Add(new StateBatch((long)a[0]!, (long)a[1]!, (RecordState)(int)a[2]!, (short)(int)a[3]!));
        }
        return new SharePartitionSnapshot((long)doc["startOffset"]!, (int)doc["stateEpoch"]!, batches);
    }

    public void Delete(string groupId, Guid topicId, int partition)
    {
        try { File.Delete(PathOf(groupId, topicId, partition)); } catch (IOException) { }
    }

    /// <summary>Every stored (group, topic id, partition) (DescribeShareGroupOffsets, restart).</summary>
    public IEnumerable<(string GroupId, Guid TopicId, int Partition)> List()
    {
        foreach (var f in Directory.EnumerateFiles(_dir, "*.json"))
        {
            JsonObject? doc = null;
            try { doc = JsonNode.Parse(File.ReadAllText(f))?.AsObject(); } catch (JsonException) { }
            if (doc is null) continue;
            yield return ((string)doc["group"]!, Guid.Parse((string)doc["topicId"]!), (int)doc["partition"]!);
        }
    }
}
