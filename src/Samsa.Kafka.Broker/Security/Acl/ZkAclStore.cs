using System.Globalization;
using Samsa.Keeper.Client;
using Samsa.Kafka.Broker.Cluster.ZooKeeper;
using Samsa.Keeper.Protocol;

namespace Samsa.Kafka.Broker.Security.Acl;

/// <summary>
/// ACLs in ZooKeeper exactly as upstream's AclAuthorizer keeps them (kafka.zk.ZkAclStore):
/// <c>/kafka-acl/&lt;ResourceType&gt;/&lt;name&gt;</c> for LITERAL patterns,
/// <c>/kafka-acl-extended/prefixed/&lt;ResourceType&gt;/&lt;name&gt;</c> for PREFIXED ones, each holding
/// <c>{"version":1,"acls":[...]}</c>. A writer updates a resource conditionally on the znode version
/// (retrying up to 10 times on BadVersion / NodeExists / NoNode, with 100-150 ms backoff, as
/// upstream's updateResourceAcls) and then creates a persistent sequential notification
/// <c>/kafka-acl-changes/acl_changes_N</c> ("TOPIC:name") or <c>/kafka-acl-extended-changes/acl_changes_N</c>
/// (JSON); every broker follows both (upstream ZkNodeChangeNotificationListener), re-reads the named
/// resource, and purges notifications older than 15 minutes. So ACLs written by upstream's
/// kafka-acls.sh (--authorizer-properties zookeeper.connect=…) are honoured, and ours by upstream brokers.
/// </summary>
public sealed class ZkAclStore(AclAuthorizer authorizer, Func<KeeperClient?> currentSession, Action<string>? log) : IAclStore, IAsyncDisposable
{
    private const int MaxUpdateRetries = 10;
    private static readonly TimeSpan ChangeExpiration = TimeSpan.FromMinutes(15);
    private static readonly string[] Roots =
        [AclZkFormat.LiteralRoot, AclZkFormat.LiteralChanges, AclZkFormat.ExtendedRoot, AclZkFormat.ExtendedChanges];

    private readonly SemaphoreSlim _dirty = new(0, 1);
    private readonly SemaphoreSlim _processGate = new(1, 1);
    private readonly CancellationTokenSource _stop = new();
    private readonly Dictionary<string, long> _lastSeen = new();
    private Task? _loop;

    /// <summary>A new ZooKeeper session of the broker: create the ACL paths, note the notifications
    /// already there, load every ACL (so nothing between the two is lost: a later change has a
    /// higher sequence number) and follow both change paths.</summary>
    public async Task OnSessionAsync(KeeperClient zk)
    {
        foreach (var root in Roots)
        {
            try { await zk.CreateAsync(root, null, ZkClientSecurity.DefaultAcls(zk, root)); }
            catch (KeeperException e) when (e.Code == Code.NodeExists) { }
        }
        try { await zk.CreateAsync($"{AclZkFormat.ExtendedRoot}/prefixed", null, ZkClientSecurity.DefaultAcls(zk, AclZkFormat.ExtendedRoot)); }
        catch (KeeperException e) when (e.Code == Code.NodeExists) { }
        await _processGate.WaitAsync();
        try
        {
            foreach (var path in new[] { AclZkFormat.LiteralChanges, AclZkFormat.ExtendedChanges })
                _lastSeen[path] = (await ListChangesAsync(zk, path)).Select(c => c.Seq).DefaultIfEmpty(-1).Max();
            authorizer.ReplaceAll(await LoadAllAsync(zk));
        }
        finally { _processGate.Release(); }
        try
        {
            foreach (var path in new[] { AclZkFormat.LiteralChanges, AclZkFormat.ExtendedChanges })
                await zk.AddWatchAsync(path, AddWatchMode.Persistent, _ => Signal());
        }
        catch (KeeperException e) when (e.Code is Code.Unimplemented) { /* ZooKeeper < 3.6: the loop polls */ }
        _loop ??= Task.Run(RunAsync);
    }

    private void Signal()
    {
        try { _dirty.Release(); } catch (SemaphoreFullException) { }
    }

    private async Task RunAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                // Woken by the watch; a periodic re-check (1 s) covers a lost watch and old ZooKeepers.
                await _dirty.WaitAsync(TimeSpan.FromSeconds(1), _stop.Token);
                if (currentSession() is { } zk) await ProcessChangesAsync(zk);
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested) { break; }
            catch (Exception e)
            {
                log?.Invoke($"ACL change processing failed, retrying: {e.Message}");
                try { await Task.Delay(200, _stop.Token); } catch (OperationCanceledException) { break; }
            }
        }
    }

    private static async Task<List<(long Seq, string Name)>> ListChangesAsync(KeeperClient zk, string path)
    {
        List<string> children;
        try { children = await zk.GetChildrenAsync(path); }
        catch (KeeperException e) when (e.Code == Code.NoNode) { return []; }
        var list = new List<(long, string)>();
        foreach (var c in children)
            if (c.StartsWith(AclZkFormat.ChangePrefix, StringComparison.Ordinal)
                && long.TryParse(c.AsSpan(AclZkFormat.ChangePrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out long seq))
                list.Add((seq, c));
        list.Sort();
        return list;
    }

    /// <summary>Processes notifications newer than the last seen on both change paths.</summary>
    public async Task ProcessChangesAsync(KeeperClient zk)
    {
        await _processGate.WaitAsync();
        try
        {
            long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            foreach (var path in new[] { AclZkFormat.LiteralChanges, AclZkFormat.ExtendedChanges })
            {
                bool extended = path == AclZkFormat.ExtendedChanges;
                var changes = await ListChangesAsync(zk, path);
                long last = _lastSeen.GetValueOrDefault(path, -1);
                foreach (var (seq, name) in changes)
                {
                    if (seq <= last) continue;
                    byte[]? data = null;
                    try { data = (await zk.GetDataAsync($"{path}/{name}")).Data; }
                    catch (KeeperException e) when (e.Code == Code.NoNode) { }
                    if (data is not null)
                    {
                        if (AclZkFormat.DecodeChange(extended, data) is { } resource)
                            authorizer.UpdateCache(resource, (await ReadAsync(zk, resource)).Acls);
                        else log?.Invoke($"ignoring ACL change notification {path}/{name}: not a resource");
                    }
                    last = seq;
                }
                _lastSeen[path] = last;
                // Upstream purgeObsoleteNotifications: every broker deletes expired ones.
                foreach (var (_, name) in changes)
                {
                    var stat = await zk.ExistsAsync($"{path}/{name}");
                    if (stat is null || now - stat.Ctime <= ChangeExpiration.TotalMilliseconds) continue;
                    try { await zk.DeleteAsync($"{path}/{name}"); }
                    catch (KeeperException e) when (e.Code == Code.NoNode) { }
                }
            }
        }
        finally { _processGate.Release(); }
    }

    private async Task<Dictionary<ResourcePattern, IReadOnlySet<AclEntry>>> LoadAllAsync(KeeperClient zk)
    {
        var all = new Dictionary<ResourcePattern, IReadOnlySet<AclEntry>>();
        foreach (var patternType in new[] { PatternType.Literal, PatternType.Prefixed })
        {
            var root = AclZkFormat.StoreRoot(patternType);
            List<string> types;
            try { types = await zk.GetChildrenAsync(root); }
            catch (KeeperException e) when (e.Code == Code.NoNode) { continue; }
            foreach (var typeName in types)
            {
                var type = AclNames.Parse<ResourceType>(typeName);
                if (type is ResourceType.Unknown or ResourceType.Any)
                {
                    log?.Invoke($"Ignoring unknown ResourceType: {typeName}");
                    continue;
                }
                List<string> names;
                try { names = await zk.GetChildrenAsync($"{root}/{typeName}"); }
                catch (KeeperException e) when (e.Code == Code.NoNode) { continue; }
                foreach (var name in names)
                {
                    var resource = new ResourcePattern(type, name, patternType);
                    var acls = (await ReadAsync(zk, resource)).Acls;
                    if (acls.Count > 0) all[resource] = acls;
                }
            }
        }
        return all;
    }

    /// <summary>The stored ACLs and znode version of a resource; version -1 when absent.
    /// A znode that does not decode counts as no ACLs (with a log line), as upstream's loader
    /// would fail on it instead.</summary>
    private async Task<(HashSet<AclEntry> Acls, int Version)> ReadAsync(KeeperClient zk, ResourcePattern resource)
    {
        var path = AclZkFormat.PathOf(resource);
        try
        {
            var (data, stat) = await zk.GetDataAsync(path);
            try { return (AclZkFormat.Decode(data), stat.Version); }
            catch (FormatException e)
            {
                log?.Invoke($"ignoring ACL znode {path}: {e.Message}");
                return ([], stat.Version);
            }
        }
        catch (KeeperException e) when (e.Code == Code.NoNode) { return ([], -1); }
    }

    public async Task<(IReadOnlySet<AclEntry> Acls, bool Changed)> UpdateAsync(ResourcePattern resource,
        Func<IReadOnlySet<AclEntry>, IReadOnlySet<AclEntry>> update, CancellationToken ct)
    {
        var zk = currentSession() ?? throw new InvalidOperationException("not connected to ZooKeeper");
        var path = AclZkFormat.PathOf(resource);
        var (current, version) = await ReadAsync(zk, resource);
        for (int attempt = 0; attempt <= MaxUpdateRetries; attempt++)
        {
            var next = update(current);
            try
            {
                if (next.Count > 0)
                {
                    if (version >= 0) await zk.SetDataAsync(path, AclZkFormat.Encode(next), version);
                    else await CreateWithParentsAsync(zk, path, AclZkFormat.Encode(next));
                }
                else if (version >= 0) await zk.DeleteAsync(path, version);
                bool changed = !next.SetEquals(current);
                if (changed)
                {
                    var changePath = resource.PatternType == PatternType.Literal ? AclZkFormat.LiteralChanges : AclZkFormat.ExtendedChanges;
                    var data = resource.PatternType == PatternType.Literal ? AclZkFormat.EncodeLiteralChange(resource) : AclZkFormat.EncodeExtendedChange(resource);
                    await zk.CreateAsync($"{changePath}/{AclZkFormat.ChangePrefix}", data, ZkClientSecurity.DefaultAcls(zk, changePath), CreateMode.PersistentSequential, cancellationToken: ct);
                }
                return (next, changed);
            }
            catch (KeeperException e) when (e.Code is Code.BadVersion or Code.NodeExists or Code.NoNode)
            {
                // Another writer got there first: re-read and apply the change again.
                await Task.Delay(100 + Random.Shared.Next(50), ct);
                (current, version) = await ReadAsync(zk, resource);
            }
        }
        throw new InvalidOperationException($"Failed to update ACLs for {resource} after trying a maximum of {MaxUpdateRetries} times");
    }

    private static async Task CreateWithParentsAsync(KeeperClient zk, string path, byte[] data)
    {
        // The resource-type folder may be missing (first ACL of its kind).
        int slash = path.LastIndexOf('/');
        var parent = path[..slash];
        if (await zk.ExistsAsync(parent) is null)
        {
            var parts = parent.Split('/', StringSplitOptions.RemoveEmptyEntries);
            var prefix = "";
            foreach (var p in parts)
            {
                prefix += "/" + p;
                try { await zk.CreateAsync(prefix, null, ZkClientSecurity.DefaultAcls(zk, prefix)); }
                catch (KeeperException e) when (e.Code == Code.NodeExists) { }
            }
        }
        await zk.CreateAsync(path, data, ZkClientSecurity.DefaultAcls(zk, path));
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        if (_loop is not null)
        {
            try { await _loop; } catch (OperationCanceledException) { }
        }
    }
}
