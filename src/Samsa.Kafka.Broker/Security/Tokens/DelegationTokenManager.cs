using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Samsa.Kafka.Broker.Cluster.ZooKeeper;
using Samsa.Kafka.Broker.Security.Quotas;
using Samsa.Kafka.Broker.Security.Sasl;
using Samsa.Kafka.Protocol;
using Samsa.Keeper.Client;
using Samsa.Keeper.Protocol;

namespace Samsa.Kafka.Broker.Security.Tokens;

/// <summary>One delegation token (upstream TokenInformation): owner, requester, renewers, times.</summary>
public sealed record DelegationToken(string TokenId, KafkaPrincipal Owner, KafkaPrincipal Requester,
    IReadOnlyList<KafkaPrincipal> Renewers, long IssueTimestamp, long MaxTimestamp, long ExpiryTimestamp)
{
    /// <summary>Upstream TokenInformation.ownerOrRenewer: owner, requester or a listed renewer.</summary>
    public bool OwnerOrRenewer(KafkaPrincipal p) => p == Owner || p == Requester || Renewers.Contains(p);
}

/// <summary>
/// Delegation tokens (KIP-48, KIP-373) as upstream's DelegationTokenManager in ZooKeeper mode:
/// enabled by delegation.token.secret.key (or the older delegation.token.master.key); a token's
/// id is a random UUID in URL-safe base64 without padding, its HMAC is HmacSHA512(secret, id), and
/// its SCRAM credentials (both mechanisms, 4096 iterations, random salt) take the HMAC's base64 as
/// password. With zookeeper.connect tokens live in /delegation_token/tokens/&lt;id&gt; (upstream's
/// DelegationTokenInfoZNode JSON, version 3) with a sequential notification
/// /delegation_token/token_changes/token_change_N holding the id, so brokers of one cluster (ours
/// or upstream's) share them; the HMAC is never stored, each broker derives it from the shared
/// secret. A single broker without ZooKeeper keeps them in memory and in
/// &lt;first log dir&gt;/delegation-tokens.json.
/// </summary>
public sealed class DelegationTokenManager : IAsyncDisposable
{
    public const string TokensPath = "/delegation_token/tokens";
    public const string ChangesPath = "/delegation_token/token_changes";
    public const string ChangePrefix = "token_change_";
    private const string FileName = "delegation-tokens.json";

    private readonly KafkaBroker _broker;
    private readonly object _gate = new();
    private readonly Dictionary<string, DelegationToken> _tokens = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _idByHmac = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Dictionary<string, ScramCredential>> _credentials = new(StringComparer.Ordinal);
    private readonly byte[]? _secret;
    private readonly SemaphoreSlim _dirty = new(0, 1);
    private readonly CancellationTokenSource _stop = new();
    private Task? _zkLoop;
    private Task? _expiryLoop;

    private readonly bool _persistent;

    /// <param name="persistent">False for in-memory test brokers: a single node keeps no file.</param>
    public DelegationTokenManager(KafkaBroker broker, bool persistent = true)
    {
        _broker = broker;
        _persistent = persistent;
        string? key = broker.Config.GetString("delegation.token.secret.key");
        if (string.IsNullOrEmpty(key)) key = broker.Config.GetString("delegation.token.master.key");
        if (!string.IsNullOrEmpty(key)) _secret = Encoding.UTF8.GetBytes(key);
        MaxLifetimeMs = LongConfig("delegation.token.max.lifetime.ms", 604800000L);
        DefaultRenewMs = LongConfig("delegation.token.expiry.time.ms", 86400000L);
        ExpiryCheckIntervalMs = LongConfig("delegation.token.expiry.check.interval.ms", 3600000L);
    }

    private long LongConfig(string name, long fallback) =>
        long.TryParse(_broker.Config.GetString(name), out var v) ? v : fallback;

    /// <summary>Upstream config.tokenAuthEnabled: a secret key is set.</summary>
    public bool Enabled => _secret is not null;
    public long MaxLifetimeMs { get; }
    public long DefaultRenewMs { get; }
    public long ExpiryCheckIntervalMs { get; }

    /// <summary>Wall clock in epoch ms (tests move it).</summary>
    internal Func<long> Now { get; set; } = () => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    private KeeperClient? Zk => _broker.Cluster?.Session;
    private bool UsesZooKeeper => _broker.Config.ZookeeperConnect is { Length: > 0 };

    public byte[] Hmac(string tokenId) => HMACSHA512.HashData(_secret!, Encoding.UTF8.GetBytes(tokenId));

    // ---------------------------------------------------------------- start-up

    public void Start()
    {
        if (!Enabled) return;
        if (!UsesZooKeeper) LoadFile();
        // Upstream schedules "delete-expired-tokens" every delegation.token.expiry.check.interval.ms.
        _expiryLoop = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(Math.Max(1, ExpiryCheckIntervalMs)), _stop.Token);
                    await ExpireTokensAsync();
                }
                catch (OperationCanceledException) when (_stop.IsCancellationRequested) { break; }
                catch (Exception e) { _broker.Log($"Expired delegation token removal failed: {e.Message}"); }
            }
        });
    }

    /// <summary>Removes tokens past their expiry or max time (upstream expireTokens).</summary>
    public async Task ExpireTokensAsync()
    {
        long now = Now();
        List<DelegationToken> gone;
        lock (_gate) gone = _tokens.Values.Where(t => t.ExpiryTimestamp < now || t.MaxTimestamp < now).ToList();
        foreach (var t in gone)
        {
            _broker.Log($"Delegation token {t.TokenId} of {t.Owner} expired and is removed");
            await RemoveAsync(t.TokenId);
        }
    }

    /// <summary>A new ZooKeeper session: create the paths, load every token, follow notifications.</summary>
    public async Task OnSessionAsync(KeeperClient zk)
    {
        if (!Enabled) return;
        foreach (var path in new[] { "/delegation_token", TokensPath, ChangesPath })
        {
            try { await zk.CreateAsync(path, null, ZkClientSecurity.DefaultAcls(zk, path)); }
            catch (KeeperException e) when (e.Code == Code.NodeExists) { }
        }
        await ReloadAllAsync(zk);
        try { await zk.AddWatchAsync(ChangesPath, AddWatchMode.Persistent, _ => Signal()); }
        catch (KeeperException e) when (e.Code is Code.Unimplemented) { /* old ZooKeeper: the loop polls */ }
        _zkLoop ??= Task.Run(RunZkAsync);
    }

    private void Signal()
    {
        try { _dirty.Release(); } catch (SemaphoreFullException) { }
    }

    private async Task RunZkAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                // Woken by the notification watch; a 1 s re-read covers a lost watch.
                await _dirty.WaitAsync(TimeSpan.FromSeconds(1), _stop.Token);
                if (Zk is { } zk)
                {
                    await ReloadAllAsync(zk);
                    await PurgeOldNotificationsAsync(zk);
                }
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested) { break; }
            catch (Exception e) { _broker.Log($"Delegation token reload failed, retrying: {e.Message}"); }
        }
    }

    // Upstream ZkNodeChangeNotificationListener deletes notifications older than 15 minutes.
    private static readonly long ChangeExpirationMs = (long)TimeSpan.FromMinutes(15).TotalMilliseconds;
    private long _lastPurge;

    private async Task PurgeOldNotificationsAsync(KeeperClient zk)
    {
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        if (now - _lastPurge < 60_000) return;
        _lastPurge = now;
        List<string> changes;
        try { changes = await zk.GetChildrenAsync(ChangesPath); }
        catch (KeeperException e) when (e.Code == Code.NoNode) { return; }
        foreach (var name in changes.Where(c => c.StartsWith(ChangePrefix, StringComparison.Ordinal)))
        {
            var stat = await zk.ExistsAsync($"{ChangesPath}/{name}");
            if (stat is null || now - stat.Ctime <= ChangeExpirationMs) continue;
            try { await zk.DeleteAsync($"{ChangesPath}/{name}"); }
            catch (KeeperException e) when (e.Code == Code.NoNode) { }
        }
    }

    /// <summary>Re-reads /delegation_token/tokens: every token there, none that is gone.</summary>
    private async Task ReloadAllAsync(KeeperClient zk)
    {
        List<string> ids;
        try { ids = await zk.GetChildrenAsync(TokensPath); }
        catch (KeeperException e) when (e.Code == Code.NoNode) { ids = []; }
        var fresh = new List<DelegationToken>();
        foreach (var id in ids)
        {
            try
            {
                var data = (await zk.GetDataAsync($"{TokensPath}/{id}")).Data;
                if (Decode(data) is { } t) fresh.Add(t);
                else _broker.Log($"Ignoring unreadable delegation token znode {TokensPath}/{id}");
            }
            catch (KeeperException e) when (e.Code == Code.NoNode) { }
        }
        lock (_gate)
        {
            foreach (var id in _tokens.Keys.Where(k => !fresh.Any(f => f.TokenId == k)).ToList()) RemoveFromCache(id);
            foreach (var t in fresh)
                if (!_tokens.TryGetValue(t.TokenId, out var old) || old != t) AddToCache(t, keepCredentials: old is not null);
        }
    }

    // ---------------------------------------------------------------- cache

    private void AddToCache(DelegationToken t, bool keepCredentials = false)
    {
        string hmac = Convert.ToBase64String(Hmac(t.TokenId));
        _tokens[t.TokenId] = t;
        _idByHmac[hmac] = t.TokenId;
        if (keepCredentials && _credentials.ContainsKey(t.TokenId)) return;
        // Upstream updateCache: a SCRAM credential per mechanism with the HMAC's base64 as password.
        _credentials[t.TokenId] = ScramMechanism.All.ToDictionary(m => m.Name, m => m.Credential(hmac, ScramMechanism.MinIterations), StringComparer.Ordinal);
    }

    private void RemoveFromCache(string tokenId)
    {
        if (!_tokens.Remove(tokenId)) return;
        _credentials.Remove(tokenId);
        foreach (var h in _idByHmac.Where(kv => kv.Value == tokenId).Select(kv => kv.Key).ToList()) _idByHmac.Remove(h);
    }

    public DelegationToken? Token(string tokenId)
    {
        lock (_gate) return _tokens.GetValueOrDefault(tokenId);
    }

    /// <summary>The SCRAM credential of a token id for token authentication, or null.</summary>
    public ScramCredential? Credential(string tokenId, ScramMechanism mechanism)
    {
        lock (_gate) return _credentials.TryGetValue(tokenId, out var c) ? c.GetValueOrDefault(mechanism.Name) : null;
    }

    private DelegationToken? ByHmac(byte[] hmac)
    {
        lock (_gate) return _idByHmac.TryGetValue(Convert.ToBase64String(hmac), out var id) ? _tokens.GetValueOrDefault(id) : null;
    }

    public IReadOnlyList<DelegationToken> Tokens(Func<DelegationToken, bool> filter)
    {
        List<DelegationToken> all;
        lock (_gate) all = _tokens.Values.OrderBy(t => t.IssueTimestamp).ToList();
        return all.Where(filter).ToList();
    }

    // ---------------------------------------------------------------- operations (upstream DelegationTokenManager)

    public async Task<DelegationToken> CreateAsync(KafkaPrincipal owner, KafkaPrincipal requester, IReadOnlyList<KafkaPrincipal> renewers, long maxLifetimeMs)
    {
        long now = Now();
        long maxLife = maxLifetimeMs <= 0 ? MaxLifetimeMs : Math.Min(maxLifetimeMs, MaxLifetimeMs);
        long maxTs = now + maxLife;
        long expiry = Math.Min(maxTs, now + DefaultRenewMs);
        string id = Base64UrlNoPadding(Guid.NewGuid().ToByteArray());
        var token = new DelegationToken(id, owner, requester, renewers, now, maxTs, expiry);
        await StoreAsync(token);
        return token;
    }

    public async Task<(ErrorCode Error, long ExpiryTimestamp)> RenewAsync(KafkaPrincipal principal, byte[] hmac, long renewPeriodMs)
    {
        if (ByHmac(hmac) is not { } t) return (ErrorCode.DelegationTokenNotFound, -1);
        long now = Now();
        if (!t.OwnerOrRenewer(principal)) return (ErrorCode.DelegationTokenOwnerMismatch, -1);
        if (t.MaxTimestamp < now || t.ExpiryTimestamp < now) return (ErrorCode.DelegationTokenExpired, -1);
        long period = renewPeriodMs < 0 ? DefaultRenewMs : renewPeriodMs;
        long expiry = Math.Min(t.MaxTimestamp, now + period);
        await StoreAsync(t with { ExpiryTimestamp = expiry });
        return (ErrorCode.None, expiry);
    }

    public async Task<(ErrorCode Error, long ExpiryTimestamp)> ExpireAsync(KafkaPrincipal principal, byte[] hmac, long expiryPeriodMs)
    {
        if (ByHmac(hmac) is not { } t) return (ErrorCode.DelegationTokenNotFound, -1);
        long now = Now();
        if (!t.OwnerOrRenewer(principal)) return (ErrorCode.DelegationTokenOwnerMismatch, -1);
        if (t.MaxTimestamp < now || t.ExpiryTimestamp < now) return (ErrorCode.DelegationTokenExpired, -1);
        if (expiryPeriodMs < 0)
        {
            // Upstream: a negative period expires the token at once (it is removed).
            await RemoveAsync(t.TokenId);
            return (ErrorCode.None, now);
        }
        long expiry = Math.Min(t.MaxTimestamp, now + expiryPeriodMs);
        await StoreAsync(t with { ExpiryTimestamp = expiry });
        return (ErrorCode.None, expiry);
    }

    private static string Base64UrlNoPadding(byte[] b) => Convert.ToBase64String(b).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    // ---------------------------------------------------------------- storage

    private async Task StoreAsync(DelegationToken t)
    {
        if (UsesZooKeeper)
        {
            var zk = Zk ?? throw new InvalidOperationException("no ZooKeeper session");
            string path = $"{TokensPath}/{t.TokenId}";
            byte[] data = Encode(t);
            try { await zk.SetDataAsync(path, data); }
            catch (KeeperException e) when (e.Code == Code.NoNode) { await zk.CreateAsync(path, data, ZkClientSecurity.DefaultAcls(zk, path)); }
            await NotifyAsync(zk, t.TokenId);
        }
        lock (_gate)
        {
            AddToCache(t, keepCredentials: _tokens.ContainsKey(t.TokenId));
            if (!UsesZooKeeper) WriteFile();
        }
    }

    private async Task RemoveAsync(string tokenId)
    {
        if (UsesZooKeeper && Zk is { } zk)
        {
            try { await zk.DeleteAsync($"{TokensPath}/{tokenId}"); }
            catch (KeeperException e) when (e.Code == Code.NoNode) { }
            await NotifyAsync(zk, tokenId);
        }
        lock (_gate)
        {
            RemoveFromCache(tokenId);
            if (!UsesZooKeeper) WriteFile();
        }
    }

    private static async Task NotifyAsync(KeeperClient zk, string tokenId)
    {
        try
        {
            await zk.CreateAsync($"{ChangesPath}/{ChangePrefix}", Encoding.UTF8.GetBytes(tokenId), ZkClientSecurity.DefaultAcls(zk, ChangesPath), CreateMode.PersistentSequential);
        }
        catch (KeeperException e) when (e.Code == Code.NoNode)
        {
            await zk.CreateAsync(ChangesPath, null, ZkClientSecurity.DefaultAcls(zk, ChangesPath));
            await zk.CreateAsync($"{ChangesPath}/{ChangePrefix}", Encoding.UTF8.GetBytes(tokenId), ZkClientSecurity.DefaultAcls(zk, ChangesPath), CreateMode.PersistentSequential);
        }
    }

    /// <summary>Upstream DelegationTokenInfoZNode.encode (version 3): principals as sanitized "Type:Name".</summary>
    public static byte[] Encode(DelegationToken t)
    {
        var renewers = new JsonArray();
        foreach (var r in t.Renewers) renewers.Add((JsonNode)JsonValue.Create(QuotaSanitizer.Sanitize(r.ToString())));   // Add(JsonNode), not the reflection-based Add<T>
        var o = new JsonObject
        {
            ["version"] = 3,
            ["owner"] = QuotaSanitizer.Sanitize(t.Owner.ToString()),
            ["tokenRequester"] = QuotaSanitizer.Sanitize(t.Requester.ToString()),
            ["renewers"] = renewers,
            ["issueTimestamp"] = t.IssueTimestamp,
            ["maxTimestamp"] = t.MaxTimestamp,
            ["expiryTimestamp"] = t.ExpiryTimestamp,
            ["tokenId"] = t.TokenId,
        };
        return Encoding.UTF8.GetBytes(o.ToJsonString());
    }

    /// <summary>Upstream DelegationTokenInfoZNode.decode (versions 1-3; before 3 the requester is the owner).</summary>
    public static DelegationToken? Decode(byte[]? data)
    {
        if (data is null) return null;
        try
        {
            if (System.Text.Json.Nodes.JsonNode.Parse(data) is not JsonObject o) return null;
            KafkaPrincipal? P(JsonNode? n) => n is null ? null : KafkaPrincipal.TryParse(QuotaSanitizer.Desanitize(n.GetValue<string>()));
            var owner = P(o["owner"]);
            if (owner is null || o["tokenId"] is null) return null;
            var requester = P(o["tokenRequester"]) ?? owner;
            var renewers = (o["renewers"] as JsonArray ?? []).Select(P).OfType<KafkaPrincipal>().ToList();
            return new DelegationToken(o["tokenId"]!.GetValue<string>(), owner, requester, renewers,
                o["issueTimestamp"]!.GetValue<long>(), o["maxTimestamp"]!.GetValue<long>(), o["expiryTimestamp"]!.GetValue<long>());
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or FormatException) { return null; }
    }

    private string? FilePath => UsesZooKeeper || !_persistent || _broker.Config.LogDirs.Count == 0 ? null : Path.Combine(_broker.Config.LogDirs[0], FileName);

    private void LoadFile()
    {
        if (FilePath is not { } path || !File.Exists(path)) return;
        JsonArray? arr;
        try { arr = JsonNode.Parse(File.ReadAllBytes(path))?["tokens"] as JsonArray; }
        catch (System.Text.Json.JsonException e) { throw new Config.ConfigValueException($"{path} is not valid JSON: {e.Message}"); }
        lock (_gate)
            foreach (var n in arr ?? [])
                if (n is not null && Decode(Encoding.UTF8.GetBytes(n.ToJsonString())) is { } t) AddToCache(t);
    }

    private void WriteFile()
    {
        if (FilePath is not { } path) return;
        var arr = new JsonArray();
        foreach (var t in _tokens.Values) arr.Add(JsonNode.Parse(Encode(t)));
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        Samsa.Kafka.Storage.CheckpointFile.WriteAtomically(path, Encoding.UTF8.GetBytes(new JsonObject { ["version"] = 1, ["tokens"] = arr }.ToJsonString()));
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        foreach (var t in new[] { _zkLoop, _expiryLoop })
            if (t is not null) { try { await t; } catch (OperationCanceledException) { } }
    }
}
