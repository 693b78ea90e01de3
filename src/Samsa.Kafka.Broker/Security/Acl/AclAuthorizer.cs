using System.Collections.Immutable;
using System.Net;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Security.Acl;

/// <summary>Where ACLs live: ZooKeeper (upstream's layout) in a cluster, a file in the first log
/// dir on a single broker without zookeeper.connect.</summary>
public interface IAclStore
{
    /// <summary>Applies <paramref name="update"/> to the stored ACLs of one resource (conditionally,
    /// retrying on concurrent writers) and returns the stored set afterwards and whether it changed.</summary>
    Task<(IReadOnlySet<AclEntry> Acls, bool Changed)> UpdateAsync(ResourcePattern resource,
        Func<IReadOnlySet<AclEntry>, IReadOnlySet<AclEntry>> update, CancellationToken ct);
}

/// <summary>
/// Upstream's kafka.security.authorizer.AclAuthorizer (ZooKeeper mode): an in-memory cache of every
/// resource pattern's ACLs, refreshed from the store (change notifications in ZooKeeper), and the
/// authorize decision exactly as upstream's authorizeAction: super users are allowed; ACLs of the
/// literal name, the literal wildcard "*" and every PREFIXED pattern the name starts with apply;
/// with none of them at all, allow.everyone.if.no.acl.found decides; otherwise a matching DENY
/// (principal or User:*, host or "*", the operation or ALL) refuses, and a matching ALLOW (with
/// DESCRIBE implied by READ/WRITE/DELETE/ALTER and DESCRIBE_CONFIGS by ALTER_CONFIGS) allows.
/// Denials of requested resources are logged at info level as upstream's kafka.authorizer.logger,
/// one line each.
/// </summary>
public sealed class AclAuthorizer
{
    public const string ClassName = "kafka.security.authorizer.AclAuthorizer";
    public const string LegacyClassName = "kafka.security.auth.SimpleAclAuthorizer";

    private readonly object _gate = new();
    private volatile ImmutableDictionary<ResourcePattern, ImmutableHashSet<AclEntry>> _cache =
        ImmutableDictionary<ResourcePattern, ImmutableHashSet<AclEntry>>.Empty;
    private readonly Action<string>? _log;
    private volatile bool _loaded;

    public AclAuthorizer(IReadOnlySet<KafkaPrincipal> superUsers, bool allowEveryoneIfNoAclFound, Action<string>? log)
    {
        SuperUsers = superUsers;
        AllowEveryoneIfNoAclFound = allowEveryoneIfNoAclFound;
        _log = log;
    }

    public IReadOnlySet<KafkaPrincipal> SuperUsers { get; }
    public bool AllowEveryoneIfNoAclFound { get; }
    public IAclStore? Store { get; set; }

    /// <summary>False until the store's ACLs were loaded the first time: until then only super users
    /// are allowed (upstream loads before the listeners open; here the cluster's ZooKeeper session
    /// may come a moment after, and a broker must not be open meanwhile).</summary>
    public bool Loaded => _loaded;

    /// <summary>The authorizer for <paramref name="config"/>'s authorizer.class.name, or null when it is
    /// empty (no authorization, as upstream). Any other class stops the broker: Samsa cannot load Java
    /// classes, and running without the authorization asked for would pretend a security it lacks.</summary>
    public static AclAuthorizer? FromConfig(BrokerConfig config, Action<string>? log)
    {
        var cls = config.GetString("authorizer.class.name")?.Trim() ?? "";
        if (cls.Length == 0) return null;
        if (cls is not (ClassName or LegacyClassName))
            throw new ConfigValueException($"authorizer.class.name={cls} is not supported: Samsa provides only {ClassName} (and its old name {LegacyClassName})");
        // AclAuthorizer's own ZooKeeper (authorizer.zookeeper.url and its client settings) would keep
        // the ACLs somewhere else than the broker's ZooKeeper: reading the broker's instead would
        // enforce a different ACL set, so it stops the broker rather than pretend.
        if (config.StaticProps.Keys.FirstOrDefault(k => k.StartsWith("authorizer.zookeeper.", StringComparison.Ordinal)) is { } separate)
            throw new ConfigValueException($"{separate} is not supported: Samsa keeps ACLs in the broker's own zookeeper.connect");
        var supers = new HashSet<KafkaPrincipal>();
        foreach (var part in (config.GetString("super.users") ?? "").Split(';'))
        {
            var s = part.Trim();
            if (s.Length == 0) continue;
            supers.Add(KafkaPrincipal.TryParse(s) ?? throw new ConfigValueException($"super.users: expected a string in format principalType:principalName but got {s}"));
        }
        bool allowEveryone = string.Equals(config.GetString("allow.everyone.if.no.acl.found")?.Trim(), "true", StringComparison.OrdinalIgnoreCase);
        return new AclAuthorizer(supers, allowEveryone, log);
    }

    // ---- cache ----

    /// <summary>Replaces the whole cache (a store's full load).</summary>
    public void ReplaceAll(IEnumerable<KeyValuePair<ResourcePattern, IReadOnlySet<AclEntry>>> all)
    {
        var b = ImmutableDictionary.CreateBuilder<ResourcePattern, ImmutableHashSet<AclEntry>>();
        foreach (var (r, acls) in all)
            if (acls.Count > 0) b[r] = acls.ToImmutableHashSet();
        lock (_gate) _cache = b.ToImmutable();
        _loaded = true;
    }

    /// <summary>Sets one resource's ACLs (a change notification, or this broker's own write).</summary>
    public void UpdateCache(ResourcePattern resource, IReadOnlySet<AclEntry> acls)
    {
        lock (_gate) _cache = acls.Count == 0 ? _cache.Remove(resource) : _cache.SetItem(resource, acls.ToImmutableHashSet());
    }

    public IReadOnlySet<AclEntry> AclsOf(ResourcePattern resource) =>
        _cache.TryGetValue(resource, out var s) ? s : ImmutableHashSet<AclEntry>.Empty;

    public IReadOnlyDictionary<ResourcePattern, ImmutableHashSet<AclEntry>> Snapshot => _cache;

    // ---- decisions ----

    public bool IsSuperUser(KafkaPrincipal principal) => SuperUsers.Contains(principal);

    /// <summary>Upstream authorizeAction for one LITERAL resource.</summary>
    /// <param name="logIfDenied">False for checks that only compute authorized operations or filter
    /// lists (upstream logs those at trace level, i.e. not here).</param>
    public bool Authorize(ConnectionSession session, ApiKey api, AclOperation op, ResourceType type, string name, bool logIfDenied = true)
    {
        var principal = session.Principal;
        bool allowed = IsSuperUser(principal) || (_loaded && AclsAllowAccess(principal, session.ClientAddress, op, type, name));
        if (!allowed && logIfDenied)
            _log?.Invoke($"kafka.authorizer.logger: Principal = {principal} is Denied Operation = {AclNames.Name(op)} from host = {HostOf(session.ClientAddress)} on resource = {AclNames.Name(type)}:LITERAL:{name} for request = {api}");
        return allowed;
    }

    /// <summary>The client address as Java's InetAddress.getHostAddress writes it, which is what
    /// upstream compares ACL hosts with: dotted IPv4, and IPv6 as eight uncompressed hex groups
    /// ("0:0:0:0:0:0:0:1", not "::1"), with "%scope" when there is one.</summary>
    internal static string HostOf(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        if (address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6) return address.ToString();
        var b = address.GetAddressBytes();
        var groups = new string[8];
        for (int i = 0; i < 8; i++) groups[i] = ((b[2 * i] << 8) | b[2 * i + 1]).ToString("x", System.Globalization.CultureInfo.InvariantCulture);
        var text = string.Join(':', groups);
        return address.ScopeId != 0 ? $"{text}%{address.ScopeId}" : text;
    }

    private bool AclsAllowAccess(KafkaPrincipal principal, IPAddress address, AclOperation op, ResourceType type, string name)
    {
        var cache = _cache;
        var acls = new List<ImmutableHashSet<AclEntry>>(4);
        // Every PREFIXED pattern the name starts with, the wildcard and the literal name.
        for (int len = 1; len <= name.Length; len++)
            if (cache.TryGetValue(new ResourcePattern(type, name[..len], PatternType.Prefixed), out var p)) acls.Add(p);
        if (cache.TryGetValue(new ResourcePattern(type, ResourcePattern.Wildcard, PatternType.Literal), out var w)) acls.Add(w);
        if (cache.TryGetValue(new ResourcePattern(type, name, PatternType.Literal), out var l)) acls.Add(l);
        if (acls.Count == 0) return AllowEveryoneIfNoAclFound;

        string p0 = principal.ToString();
        string host = HostOf(address);
        bool Matches(AclEntry a, AclOperation operation, AclPermissionType perm) =>
            a.Permission == perm
            && (a.Principal == p0 || a.Principal == AclEntry.WildcardPrincipal)
            && (a.Operation == operation || a.Operation == AclOperation.All)
            && (a.Host == host || a.Host == AclEntry.WildcardHost);

        foreach (var set in acls)
            foreach (var a in set)
                if (Matches(a, op, AclPermissionType.Deny)) return false;
        // Upstream AclOperation inheritance: READ, WRITE, DELETE and ALTER imply DESCRIBE;
        // ALTER_CONFIGS implies DESCRIBE_CONFIGS.
        AclOperation[] allowOps = op switch
        {
            AclOperation.Describe => [AclOperation.Describe, AclOperation.Read, AclOperation.Write, AclOperation.Delete, AclOperation.Alter],
            AclOperation.DescribeConfigs => [AclOperation.DescribeConfigs, AclOperation.AlterConfigs],
            _ => [op],
        };
        foreach (var set in acls)
            foreach (var a in set)
                foreach (var o in allowOps)
                    if (Matches(a, o, AclPermissionType.Allow)) return true;
        return false;
    }

    /// <summary>Upstream authorizeByResourceType (KIP-679): may the principal perform
    /// <paramref name="op"/> on at least one resource of the type? Used by InitProducerId without a
    /// transactional id ("WRITE on any topic"). No operation inheritance here, as upstream.</summary>
    public bool AuthorizeByResourceType(ConnectionSession session, ApiKey api, AclOperation op, ResourceType type)
    {
        var principal = session.Principal;
        if (IsSuperUser(principal)) return true;
        if (!_loaded) return false;
        string p0 = principal.ToString();
        string host = HostOf(session.ClientAddress);
        var denyLiterals = new HashSet<string>();
        var denyPrefixes = new HashSet<string>();
        var allowLiterals = new HashSet<string>();
        var allowPrefixes = new HashSet<string>();
        foreach (var (r, acls) in _cache)
        {
            if (r.Type != type) continue;
            foreach (var a in acls)
            {
                if (!((a.Principal == p0 || a.Principal == AclEntry.WildcardPrincipal)
                      && (a.Host == host || a.Host == AclEntry.WildcardHost)
                      && (a.Operation == op || a.Operation == AclOperation.All))) continue;
                bool literal = r.PatternType == PatternType.Literal;
                (a.Permission == AclPermissionType.Deny ? (literal ? denyLiterals : denyPrefixes) : (literal ? allowLiterals : allowPrefixes)).Add(r.Name);
            }
        }
        if (denyLiterals.Contains(ResourcePattern.Wildcard)) return false;
        if (AllowEveryoneIfNoAclFound) return true;
        if (denyLiterals.Count == 0 && denyPrefixes.Count == 0) return allowLiterals.Count > 0 || allowPrefixes.Count > 0;
        bool DominatedByDeny(string n)
        {
            for (int len = 1; len <= n.Length; len++)
                if (denyPrefixes.Contains(n[..len])) return true;
            return false;
        }
        return allowPrefixes.Any(p => !DominatedByDeny(p))
            || allowLiterals.Any(l => l == ResourcePattern.Wildcard || (!denyLiterals.Contains(l) && !DominatedByDeny(l)));
    }

    /// <summary>Upstream AclEntry.supportedOperations: the operations a resource type has (authorized operations bitfields).</summary>
    public static AclOperation[] SupportedOperations(ResourceType type) => type switch
    {
        ResourceType.Topic => [AclOperation.Read, AclOperation.Write, AclOperation.Create, AclOperation.Describe, AclOperation.Delete, AclOperation.Alter, AclOperation.DescribeConfigs, AclOperation.AlterConfigs],
        ResourceType.Group => [AclOperation.Read, AclOperation.Describe, AclOperation.Delete],
        ResourceType.Cluster => [AclOperation.Create, AclOperation.ClusterAction, AclOperation.DescribeConfigs, AclOperation.AlterConfigs, AclOperation.IdempotentWrite, AclOperation.Alter, AclOperation.Describe],
        ResourceType.TransactionalId => [AclOperation.Describe, AclOperation.Write],
        ResourceType.DelegationToken => [AclOperation.Describe],
        ResourceType.User => [AclOperation.CreateTokens, AclOperation.DescribeTokens],
        _ => [],
    };

    /// <summary>Upstream AuthHelper.authorizedOperations: a bitfield of the supported operations allowed (bit = operation code).</summary>
    public int AuthorizedOperations(ConnectionSession session, ApiKey api, ResourceType type, string name)
    {
        int bits = 0;
        foreach (var op in SupportedOperations(type))
            if (Authorize(session, api, op, type, name, logIfDenied: false)) bits |= 1 << (int)op;
        return bits;
    }

    public static int AllOperations(ResourceType type)
    {
        int bits = 0;
        foreach (var op in SupportedOperations(type)) bits |= 1 << (int)op;
        return bits;
    }

    // ---- admin ----

    public IEnumerable<AclBinding> Acls(AclBindingFilter filter)
    {
        foreach (var (r, acls) in _cache)
            foreach (var a in acls)
            {
                var b = new AclBinding(r, a);
                if (filter.Matches(b)) yield return b;
            }
    }

    private readonly SemaphoreSlim _writeGate = new(1, 1);

    /// <summary>Upstream createAcls for bindings already validated: grouped by resource, one
    /// conditional update each. Returns per binding null (created) or the error.</summary>
    public async Task<(ErrorCode Code, string? Message)?[]> CreateAsync(IReadOnlyList<AclBinding> bindings, CancellationToken ct)
    {
        var results = new (ErrorCode, string?)?[bindings.Count];
        var store = Store ?? throw new InvalidOperationException("no ACL store");
        await _writeGate.WaitAsync(ct);
        try
        {
            foreach (var group in bindings.Select((b, i) => (b, i)).GroupBy(x => x.b.Pattern))
            {
                try
                {
                    var (acls, _) = await store.UpdateAsync(group.Key, cur =>
                    {
                        var next = new HashSet<AclEntry>(cur);
                        foreach (var (b, _) in group) next.Add(b.Entry);
                        return next;
                    }, ct);
                    UpdateCache(group.Key, acls);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    foreach (var (_, i) in group) results[i] = (ErrorCode.UnknownServerError, e.Message);
                }
            }
        }
        finally { _writeGate.Release(); }
        return results;
    }

    /// <summary>Upstream deleteAcls: every cached pattern (plus the exact patterns of filters that
    /// name one) that a filter matches is updated once, removing the entries the filters match.
    /// Returns per filter the deleted bindings with their error (null = deleted).</summary>
    public async Task<List<(AclBinding Binding, (ErrorCode, string?)? Error)>[]> DeleteAsync(IReadOnlyList<AclBindingFilter> filters, CancellationToken ct)
    {
        var results = new List<(AclBinding, (ErrorCode, string?)?)>[filters.Count];
        for (int i = 0; i < results.Length; i++) results[i] = [];
        var store = Store ?? throw new InvalidOperationException("no ACL store");
        await _writeGate.WaitAsync(ct);
        try
        {
            var resources = new HashSet<ResourcePattern>(_cache.Keys);
            foreach (var f in filters)
            {
                if (!f.PatternMatchesAtMostOne) continue;
                // Upstream filterToResources: also patterns this broker has not seen yet.
                resources.Add(new ResourcePattern(f.ResourceType, f.Name!, f.PatternType));
            }
            var seen = new HashSet<AclBinding>();
            foreach (var resource in resources)
            {
                var matching = filters.Select((f, i) => (f, i)).Where(x => x.f.Matches(resource)).ToList();
                if (matching.Count == 0) continue;
                var deletedHere = new List<(AclBinding, int)>();
                try
                {
                    var (acls, _) = await store.UpdateAsync(resource, cur =>
                    {
                        deletedHere.Clear();
                        var next = new HashSet<AclEntry>(cur);
                        foreach (var a in cur)
                        {
                            var hit = matching.FirstOrDefault(x => x.f.Matches(a));
                            if (hit.f is null) continue;
                            next.Remove(a);
                            deletedHere.Add((new AclBinding(resource, a), hit.i));
                        }
                        return next;
                    }, ct);
                    UpdateCache(resource, acls);
                    foreach (var (b, i) in deletedHere)
                        if (seen.Add(b)) results[i].Add((b, null));
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    foreach (var (b, i) in deletedHere)
                        if (seen.Add(b)) results[i].Add((b, (ErrorCode.UnknownServerError, e.Message)));
                }
            }
        }
        finally { _writeGate.Release(); }
        return results;
    }
}
