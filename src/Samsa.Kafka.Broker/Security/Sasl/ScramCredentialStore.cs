using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using Samsa.Kafka.Broker.Cluster.ZooKeeper;
using Samsa.Keeper.Client;
using Samsa.Keeper.Protocol;

namespace Samsa.Kafka.Broker.Security.Sasl;

/// <summary>
/// SCRAM credentials of every user, as upstream's CredentialCache fed by DynamicConfigManager's
/// UserConfigHandler. In ZooKeeper mode they live in <c>/config/users/&lt;user&gt;</c>
/// (<c>{"version":1,"config":{"SCRAM-SHA-256":"salt=...,stored_key=...,server_key=...,iterations=4096"}}</c>),
/// the same znode quotas use, so only the SCRAM-SHA-* keys are read and written here; a change is
/// announced by a <c>/config/changes</c> notification <c>users/&lt;user&gt;</c>. A single broker
/// without ZooKeeper keeps them in <c>scram-credentials.json</c> in its first log directory.
/// </summary>
public sealed class ScramCredentialStore(KafkaBroker broker) : IConfigEntityHandler
{
    public const string FileName = "scram-credentials.json";
    private readonly ConcurrentDictionary<string, IReadOnlyDictionary<string, ScramCredential>> _users = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _writeLock = new(1, 1);

    public string EntityType => "users";

    public ScramCredential? Get(string user, ScramMechanism mechanism) =>
        _users.TryGetValue(user, out var creds) && creds.TryGetValue(mechanism.Name, out var c) ? c : null;

    /// <summary>Users with at least one SCRAM credential, and their credentials by mechanism name.</summary>
    public IReadOnlyDictionary<string, IReadOnlyDictionary<string, ScramCredential>> Snapshot() =>
        _users.Where(kv => kv.Value.Count > 0).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);

    /// <summary>The SCRAM keys of one user's config; a value that does not parse is skipped with a
    /// log line (upstream's ScramCredentialUtils would fail the whole user; a broker keeps going).</summary>
    private Dictionary<string, ScramCredential> ScramKeys(string user, IReadOnlyDictionary<string, string>? config)
    {
        var result = new Dictionary<string, ScramCredential>(StringComparer.Ordinal);
        if (config is null) return result;
        foreach (var (key, value) in config)
        {
            if (ScramMechanism.ByName(key) is null) continue;   // quota keys and anything else
            if (ScramCredential.Parse(value) is { } cred) result[key] = cred;
            else broker.Log($"ignoring malformed {key} credential of user {user}");
        }
        return result;
    }

    private void Apply(string user, Dictionary<string, ScramCredential> creds)
    {
        if (creds.Count == 0) _users.TryRemove(user, out _);
        else _users[user] = creds;
    }

    // ---------------------------------------------------------------- ZooKeeper mode

    public async Task LoadAllAsync(KeeperClient zk)
    {
        List<string> users;
        try { users = await zk.GetChildrenAsync("/config/users"); }
        catch (KeeperException e) when (e.Code == Code.NoNode) { users = []; }
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var encoded in users)
        {
            string user = Sanitizer.Desanitize(encoded);
            seen.Add(user);
            await ReadUserAsync(zk, user);
        }
        foreach (var gone in _users.Keys.Where(u => !seen.Contains(u)).ToList()) _users.TryRemove(gone, out _);
    }

    public Task OnChangedAsync(KeeperClient zk, string entityPath)
    {
        // "users/alice" only; "users/alice/clients/app" and "users/<default>" are quota entities.
        var parts = entityPath.Split('/');
        if (parts.Length != 2 || parts[1] == "<default>") return Task.CompletedTask;
        return ReadUserAsync(zk, Sanitizer.Desanitize(parts[1]));
    }

    private async Task ReadUserAsync(KeeperClient zk, string user)
    {
        Dictionary<string, string>? config;
        try { config = ZkData.DecodeConfig((await zk.GetDataAsync(UserPath(user))).Data); }
        catch (KeeperException e) when (e.Code == Code.NoNode) { config = null; }
        Apply(user, ScramKeys(user, config));
    }

    /// <summary>Upstream sanitizes entity names in znode paths (Sanitizer.sanitize: URL encoding).</summary>
    private static string UserPath(string user) => "/config/users/" + Sanitizer.Sanitize(user);

    // ---------------------------------------------------------------- writes (AlterUserScramCredentials)

    /// <summary>Applies one user's upserts (mechanism → credential) and deletions, keeping the
    /// user's other config keys (quotas). ZooKeeper mode: the znode then the notification, as
    /// upstream's AdminZkClient.changeConfigs; single node: the file, replaced atomically.</summary>
    public async Task AlterAsync(string user, IReadOnlyDictionary<string, ScramCredential> upserts, IReadOnlyCollection<string> deletions)
    {
        await _writeLock.WaitAsync();
        try
        {
            if (broker.Config.ZookeeperConnect is { Length: > 0 })
            {
                var zk = broker.Cluster?.Session ?? throw new InvalidOperationException("not connected to ZooKeeper");
                string path = UserPath(user);
                Dictionary<string, string> config;
                try { config = ZkData.DecodeConfig((await zk.GetDataAsync(path)).Data) ?? []; }
                catch (KeeperException e) when (e.Code == Code.NoNode) { config = []; }
                foreach (var d in deletions) config.Remove(d);
                foreach (var (m, c) in upserts) config[m] = c.Format();
                var data = ZkData.EncodeConfig(config);
                try { await zk.SetDataAsync(path, data); }
                catch (KeeperException e) when (e.Code == Code.NoNode)
                {
                    try { await zk.CreateAsync(path, data, ZkClientSecurity.DefaultAcls(zk, path)); }
                    catch (KeeperException e2) when (e2.Code == Code.NodeExists) { await zk.SetDataAsync(path, data); }
                }
                await zk.CreateAsync(ZkData.ConfigChangePrefix, ZkData.EncodeConfigChange("users/" + Sanitizer.Sanitize(user)), ZkClientSecurity.DefaultAcls(zk, ZkData.ConfigChanges), CreateMode.PersistentSequential);
                Apply(user, ScramKeys(user, config));
            }
            else
            {
                var current = _users.TryGetValue(user, out var c0)
                    ? new Dictionary<string, ScramCredential>(c0, StringComparer.Ordinal) : new Dictionary<string, ScramCredential>(StringComparer.Ordinal);
                foreach (var d in deletions) current.Remove(d);
                foreach (var (m, c) in upserts) current[m] = c;
                var next = new Dictionary<string, IReadOnlyDictionary<string, ScramCredential>>(Snapshot(), StringComparer.Ordinal);
                if (current.Count == 0) next.Remove(user); else next[user] = current;
                WriteFile(next);
                Apply(user, current);
            }
        }
        finally
        {
            _writeLock.Release();
        }
    }

    // ---------------------------------------------------------------- single node: a file

    private string? FilePath => broker.Config.ZookeeperConnect is { Length: > 0 } || broker.Config.LogDirs.Count == 0
        ? null : Path.Combine(broker.Config.LogDirs[0], FileName);

    /// <summary>Single node: reads the file written by earlier runs (nothing when absent).</summary>
    public void LoadFile()
    {
        if (FilePath is not { } path || !File.Exists(path)) return;
        JsonObject? root;
        try { root = JsonNode.Parse(File.ReadAllBytes(path)) as JsonObject; }
        catch (JsonException e) { throw new InvalidDataException($"{path} is not valid JSON: {e.Message}"); }
        if (root?["users"] is not JsonObject users) return;
        foreach (var (user, node) in users)
        {
            var config = new Dictionary<string, string>(StringComparer.Ordinal);
            if (node is JsonObject o)
                foreach (var (k, v) in o) if (v is JsonValue jv && jv.TryGetValue<string>(out var s)) config[k] = s;
            Apply(user, ScramKeys(user, config));
        }
    }

    private void WriteFile(IReadOnlyDictionary<string, IReadOnlyDictionary<string, ScramCredential>> users)
    {
        if (FilePath is not { } path) return;   // in-memory test brokers keep them in memory only
        var root = new JsonObject { ["version"] = 1 };
        var u = new JsonObject();
        foreach (var (user, creds) in users.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            var o = new JsonObject();
            foreach (var (m, c) in creds) o[m] = c.Format();
            u[user] = o;
        }
        root["users"] = u;
        // Durable and atomic: write a temp file, fsync it, rename over the old one.
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        Samsa.Kafka.Storage.CheckpointFile.WriteAtomically(path, System.Text.Encoding.UTF8.GetBytes(root.ToJsonString()));
    }
}

/// <summary>Upstream's org.apache.kafka.common.utils.Sanitizer: entity names in znode paths are
/// URL-encoded (UTF-8, '*' as %2A, space as %20).</summary>
public static class Sanitizer
{
    public static string Sanitize(string name)
    {
        var encoded = System.Net.WebUtility.UrlEncode(name) ?? "";
        var sb = new System.Text.StringBuilder(encoded.Length);
        foreach (char c in encoded)
        {
            if (c == '*') sb.Append("%2A");
            else if (c == '+') sb.Append("%20");
            else sb.Append(c);
        }
        // WebUtility leaves ~ ! ( ) as they are; Java's URLEncoder encodes them (hex in upper case, as both do).
        return sb.ToString().Replace("~", "%7E").Replace("!", "%21").Replace("(", "%28").Replace(")", "%29");
    }

    public static string Desanitize(string name) => Uri.UnescapeDataString(name);
}
