using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Samsa.Kafka.Broker.Security.Acl;

/// <summary>
/// ACLs of a single broker without zookeeper.connect (upstream has no such mode: its AclAuthorizer
/// needs ZooKeeper): one file, <c>&lt;first log dir&gt;/samsa-acls.json</c>, holding
/// <c>{"version":1,"resources":[{"resourceType":"Topic","patternType":"LITERAL","name":"t","acls":[…]}]}</c>
/// with each resource's ACLs in upstream's znode JSON. Every change rewrites it atomically (a
/// temporary file flushed to disk, then renamed over the old one), so a crash leaves the old or
/// the new ACLs, never a mix.
/// </summary>
public sealed class FileAclStore : IAclStore
{
    public const string FileName = "samsa-acls.json";
    private readonly string? _path;
    private readonly AclAuthorizer _authorizer;
    private readonly object _gate = new();

    /// <param name="logDir">Null keeps the ACLs in memory only (brokers with in-memory logs, tests).</param>
    public FileAclStore(AclAuthorizer authorizer, string? logDir)
    {
        _authorizer = authorizer;
        if (logDir is not null)
        {
            Directory.CreateDirectory(logDir);
            _path = Path.Combine(logDir, FileName);
        }
        authorizer.ReplaceAll(_path is null ? [] : Load(_path));
    }

    public string? FilePath => _path;

    public static Dictionary<ResourcePattern, IReadOnlySet<AclEntry>> Load(string path)
    {
        var all = new Dictionary<ResourcePattern, IReadOnlySet<AclEntry>>();
        if (!File.Exists(path)) return all;
        try
        {
            var root = JsonNode.Parse(File.ReadAllBytes(path)) as JsonObject ?? throw new FormatException("not a JSON object");
            foreach (var item in root["resources"] as JsonArray ?? [])
            {
                if (item is not JsonObject r) continue;
                var type = AclNames.Parse<ResourceType>((string?)r["resourceType"]);
                var pattern = AclNames.Parse<PatternType>((string?)r["patternType"]);
                var name = (string?)r["name"] ?? throw new FormatException("resource without a name");
                var acls = AclZkFormat.Decode(Encoding.UTF8.GetBytes(new JsonObject { ["version"] = 1, ["acls"] = r["acls"]?.DeepClone() }.ToJsonString()));
                all[new ResourcePattern(type, name, pattern)] = acls;
            }
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException)
        {
            // Refusing to start is safer than running with fewer ACLs than were written.
            throw new Config.ConfigValueException($"cannot read the ACL file {path}: {e.Message}");
        }
        return all;
    }

    public Task<(IReadOnlySet<AclEntry> Acls, bool Changed)> UpdateAsync(ResourcePattern resource,
        Func<IReadOnlySet<AclEntry>, IReadOnlySet<AclEntry>> update, CancellationToken ct)
    {
        lock (_gate)
        {
            var current = _authorizer.AclsOf(resource);
            var next = update(current);
            bool changed = !next.SetEquals(current);
            if (changed)
            {
                var snapshot = _authorizer.Snapshot.ToDictionary(kv => kv.Key, kv => (IReadOnlySet<AclEntry>)kv.Value);
                if (next.Count == 0) snapshot.Remove(resource); else snapshot[resource] = next;
                Write(snapshot);
            }
            return Task.FromResult((next, changed));
        }
    }

    private void Write(Dictionary<ResourcePattern, IReadOnlySet<AclEntry>> all)
    {
        if (_path is null) return;
        var resources = new JsonArray();
        foreach (var (r, acls) in all.OrderBy(kv => kv.Key.Type).ThenBy(kv => kv.Key.PatternType).ThenBy(kv => kv.Key.Name, StringComparer.Ordinal))
        {
            var encoded = JsonNode.Parse(AclZkFormat.Encode(acls))!["acls"]!.DeepClone();
            resources.Add((JsonNode)new JsonObject   // Add(JsonNode): Add<T> is reflection-based (NativeAOT)
            {
                ["resourceType"] = AclNames.Name(r.Type),
                ["patternType"] = AclNames.JavaName(r.PatternType),
                ["name"] = r.Name,
                ["acls"] = encoded,
            });
        }
        var bytes = Encoding.UTF8.GetBytes(new JsonObject { ["version"] = 1, ["resources"] = resources }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        Samsa.Kafka.Storage.CheckpointFile.WriteAtomically(_path, bytes);
    }
}
