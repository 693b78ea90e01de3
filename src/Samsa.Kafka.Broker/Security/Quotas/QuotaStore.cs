using System.Text.Json;
using Samsa.Kafka.Broker.Cluster.ZooKeeper;
using Samsa.Keeper.Client;
using Samsa.Keeper.Protocol;

namespace Samsa.Kafka.Broker.Security.Quotas;

/// <summary>
/// Where quota entities live: ZooKeeper (<c>/config/users/&lt;user&gt;</c>,
/// <c>/config/users/&lt;user&gt;/clients/&lt;client-id&gt;</c>, <c>/config/clients/&lt;client-id&gt;</c>,
/// <c>/config/ips/&lt;ip&gt;</c>, each <c>{"version":1,"config":{...}}</c>) in ZooKeeper mode, or a file
/// in the first log directory on a single broker. Entity paths are upstream's notification paths
/// ("users/alice", "users/alice/clients/app", "clients/&lt;default&gt;", "ips/10.0.0.1") with
/// sanitized names. A write replaces the whole entity config, so callers read, change the quota
/// keys and write back everything else untouched (SCRAM credentials share the user znodes).
/// </summary>
public interface IQuotaStore
{
    Task<Dictionary<string, string>> ReadAsync(string entityPath);
    /// <summary>Every entity of "users" (including users/x/clients/y), "clients" or "ips".</summary>
    Task<Dictionary<string, Dictionary<string, string>>> ReadAllAsync(string entityType);
    Task WriteAsync(string entityPath, IReadOnlyDictionary<string, string> config);
}

/// <summary>ZooKeeper: the entity znode, then a <c>/config/changes</c> notification every broker
/// follows (upstream AdminZkClient.changeConfigs / changeEntityConfig).</summary>
internal sealed class ZkQuotaStore(Func<KeeperClient?> session) : IQuotaStore
{
    private KeeperClient Zk => session() ?? throw new InvalidOperationException("no ZooKeeper session");

    public async Task<Dictionary<string, string>> ReadAsync(string entityPath)
    {
        try { return ZkData.DecodeConfig((await Zk.GetDataAsync("/config/" + entityPath)).Data) ?? []; }
        catch (KeeperException e) when (e.Code == Code.NoNode) { return []; }
    }

    private async Task<List<string>> ChildrenAsync(string path)
    {
        try { return await Zk.GetChildrenAsync(path); }
        catch (KeeperException e) when (e.Code == Code.NoNode) { return []; }
    }

    public async Task<Dictionary<string, Dictionary<string, string>>> ReadAllAsync(string entityType)
    {
        var result = new Dictionary<string, Dictionary<string, string>>(StringComparer.Ordinal);
        foreach (var name in await ChildrenAsync("/config/" + entityType))
        {
            result[$"{entityType}/{name}"] = await ReadAsync($"{entityType}/{name}");
            if (entityType == "users")
                foreach (var client in await ChildrenAsync($"/config/users/{name}/clients"))
                    result[$"users/{name}/clients/{client}"] = await ReadAsync($"users/{name}/clients/{client}");
        }
        return result;
    }

    public async Task WriteAsync(string entityPath, IReadOnlyDictionary<string, string> config)
    {
        var zk = Zk;
        string path = "/config/" + entityPath;
        byte[] data = ZkData.EncodeConfig(config);
        try { await zk.SetDataAsync(path, data); }
        catch (KeeperException e) when (e.Code == Code.NoNode)
        {
            // Parents (/config/users/<user>/clients) are created empty, as upstream's createRecursive.
            var parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
            string prefix = "";
            for (int i = 0; i < parts.Length - 1; i++)
            {
                prefix += "/" + parts[i];
                try { await zk.CreateAsync(prefix, null, ZkClientSecurity.DefaultAcls(zk, prefix)); }
                catch (KeeperException e2) when (e2.Code == Code.NodeExists) { }
            }
            try { await zk.CreateAsync(path, data, ZkClientSecurity.DefaultAcls(zk, path)); }
            catch (KeeperException e2) when (e2.Code == Code.NodeExists) { await zk.SetDataAsync(path, data); }
        }
        await zk.CreateAsync(ZkData.ConfigChangePrefix, ZkData.EncodeConfigChange(entityPath), ZkClientSecurity.DefaultAcls(zk, ZkData.ConfigChanges), CreateMode.PersistentSequential);
    }
}

/// <summary>
/// A single broker without zookeeper.connect: the entities in <c>client-quotas.json</c> in the
/// first log directory, rewritten atomically (temporary file, flush, rename) on every change, so a
/// restart keeps them. Samsa-only: upstream has no ZooKeeper-less ZK-mode broker.
/// </summary>
internal sealed class FileQuotaStore : IQuotaStore
{
    public const string FileName = "client-quotas.json";
    private readonly string? _path;
    private readonly Dictionary<string, Dictionary<string, string>> _entities = new(StringComparer.Ordinal);
    private readonly object _lock = new();

    /// <param name="directory">Null keeps the entities in memory only (brokers with in-memory logs).</param>
    public FileQuotaStore(string? directory)
    {
        if (directory is null) return;
        Directory.CreateDirectory(directory);
        _path = Path.Combine(directory, FileName);
        if (File.Exists(_path))
        {
            Dictionary<string, Dictionary<string, string>>? loaded;
            try { loaded = JsonSerializer.Deserialize(File.ReadAllBytes(_path), BrokerJsonContext.Default.DictionaryStringDictionaryStringString); }
            catch (JsonException e)
            {
                // Written only by rename of a complete file, so this is outside damage: refuse to
                // start rather than silently drop the quotas.
                throw new InvalidOperationException($"{_path} is not a client quota file ({e.Message}); fix or remove it");
            }
            if (loaded is not null) foreach (var (k, v) in loaded) _entities[k] = new(v, StringComparer.Ordinal);
        }
    }

    public Task<Dictionary<string, string>> ReadAsync(string entityPath)
    {
        lock (_lock) return Task.FromResult(_entities.TryGetValue(entityPath, out var c) ? new Dictionary<string, string>(c, StringComparer.Ordinal) : []);
    }

    public Task<Dictionary<string, Dictionary<string, string>>> ReadAllAsync(string entityType)
    {
        lock (_lock)
            return Task.FromResult(_entities.Where(kv => kv.Key.StartsWith(entityType + "/", StringComparison.Ordinal))
                .ToDictionary(kv => kv.Key, kv => new Dictionary<string, string>(kv.Value, StringComparer.Ordinal), StringComparer.Ordinal));
    }

    public Task WriteAsync(string entityPath, IReadOnlyDictionary<string, string> config)
    {
        lock (_lock)
        {
            if (config.Count == 0) _entities.Remove(entityPath);
            else _entities[entityPath] = new Dictionary<string, string>(config, StringComparer.Ordinal);
            if (_path is not null)
            {
                Samsa.Kafka.Storage.CheckpointFile.WriteAtomically(_path, JsonSerializer.SerializeToUtf8Bytes(_entities, BrokerJsonContext.Default.DictionaryStringDictionaryStringString));
            }
        }
        return Task.CompletedTask;
    }
}
