using System.Text;
using System.Text.Json;

namespace Samsa.Kafka.Broker.Features;

/// <summary>
/// The `/feature` znode of a ZooKeeper-mode cluster (upstream kafka.zk.FeatureZNode, KIP-584):
/// <c>{"version":2,"status":1,"features":{"group.version":{"max_version_level":1}}}</c>.
/// Version 1 also wrote <c>min_version_level</c> per feature (equal to the max since IBP 3.3);
/// version 2 (written here, as upstream does from IBP 3.3 on) leaves it out. Status 0 (disabled)
/// means the features listed do not count (upstream's controller treats them as none).
/// Read and written with Utf8JsonReader/Writer: no reflection (NativeAOT).
/// </summary>
public static class FeatureZNode
{
    public const string Path = "/feature";
    public const int StatusDisabled = 0;
    public const int StatusEnabled = 1;

    public sealed record Content(int Version, int Status, IReadOnlyDictionary<string, short> Features);

    /// <param name="epoch">Single-node mode only (feature.json): the epoch, stored as an extra
    /// "epoch" field; a znode's epoch is its zkVersion and is not written.</param>
    public static byte[] Encode(IReadOnlyDictionary<string, short> features, long? epoch = null)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteNumber("version", 2);
            w.WriteNumber("status", StatusEnabled);
            w.WriteStartObject("features");
            // Level 0 means "off": upstream removes the feature from the map rather than store 0.
            foreach (var (name, level) in features.Where(f => f.Value > 0).OrderBy(f => f.Key, StringComparer.Ordinal))
            {
                w.WriteStartObject(name);
                w.WriteNumber("max_version_level", level);
                w.WriteEndObject();
            }
            w.WriteEndObject();
            if (epoch is { } e) w.WriteNumber("epoch", e);
            w.WriteEndObject();
        }
        return buffer.ToArray();
    }

    /// <summary>Null when the bytes are not a feature znode of version 1 or 2 (upstream refuses
    /// such a node; here the broker keeps its previous levels and logs).</summary>
    public static Content? Decode(byte[]? data)
    {
        if (data is null || data.Length == 0) return null;
        try
        {
            using var doc = JsonDocument.Parse(data);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) return null;
            if (!root.TryGetProperty("version", out var v) || !v.TryGetInt32(out int version) || version is < 1 or > 2) return null;
            if (!root.TryGetProperty("status", out var s) || !s.TryGetInt32(out int status) || status is not (StatusDisabled or StatusEnabled)) return null;
            var features = new Dictionary<string, short>(StringComparer.Ordinal);
            if (root.TryGetProperty("features", out var f))
            {
                if (f.ValueKind != JsonValueKind.Object) return null;
                foreach (var p in f.EnumerateObject())
                {
                    if (p.Value.ValueKind != JsonValueKind.Object
                        || !p.Value.TryGetProperty("max_version_level", out var max) || !max.TryGetInt16(out short level))
                        return null;
                    features[p.Name] = level;
                }
            }
            return new Content(version, status, features);
        }
        catch (JsonException) { return null; }
    }

    /// <summary>The "epoch" field of feature.json (0 when missing).</summary>
    public static long ReadEpoch(byte[] data)
    {
        try
        {
            using var doc = JsonDocument.Parse(data);
            return doc.RootElement.TryGetProperty("epoch", out var e) && e.TryGetInt64(out long epoch) ? epoch : 0;
        }
        catch (JsonException) { return 0; }
    }

    public static string Describe(IReadOnlyDictionary<string, short> levels) =>
        Encoding.UTF8.GetString(Encode(levels));
}
