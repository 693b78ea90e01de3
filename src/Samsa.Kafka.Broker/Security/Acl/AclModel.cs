using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Samsa.Kafka.Broker.Security.Acl;

// The ACL vocabulary of upstream's org.apache.kafka.common.acl / .resource packages, with the
// same wire codes (CreateAcls/DescribeAcls/DeleteAcls carry them as int8).

public enum ResourceType : byte { Unknown = 0, Any = 1, Topic = 2, Group = 3, Cluster = 4, TransactionalId = 5, DelegationToken = 6, User = 7 }

public enum AclOperation : byte
{
    Unknown = 0, Any = 1, All = 2, Read = 3, Write = 4, Create = 5, Delete = 6, Alter = 7, Describe = 8,
    ClusterAction = 9, DescribeConfigs = 10, AlterConfigs = 11, IdempotentWrite = 12, CreateTokens = 13, DescribeTokens = 14,
}

public enum AclPermissionType : byte { Unknown = 0, Any = 1, Deny = 2, Allow = 3 }

public enum PatternType : byte { Unknown = 0, Any = 1, Match = 2, Literal = 3, Prefixed = 4 }

/// <summary>Names as upstream's SecurityUtils: PascalCase ("TransactionalId", "DescribeConfigs",
/// "Allow") when written; parsed from PascalCase or upper case without underscores, and, as
/// ResourceType.fromString / PatternType.fromString, from the enum's upper-case name with underscores.</summary>
public static class AclNames
{
    public static string Name(ResourceType t) => t.ToString();
    public static string Name(AclOperation o) => o.ToString();
    public static string Name(AclPermissionType p) => p.ToString();

    /// <summary>The Java enum constant name ("TRANSACTIONAL_ID", "PREFIXED"): literal change
    /// notifications ("TOPIC:name") and extended change events use it.</summary>
    public static string JavaName<T>(T value) where T : struct, Enum
    {
        var sb = new StringBuilder();
        var s = value.ToString();
        for (int i = 0; i < s.Length; i++)
        {
            if (i > 0 && char.IsUpper(s[i])) sb.Append('_');
            sb.Append(char.ToUpperInvariant(s[i]));
        }
        return sb.ToString();
    }

    public static T Parse<T>(string? text) where T : struct, Enum
    {
        if (text is null) return default;
        var key = text.Replace("_", "", StringComparison.Ordinal);
        foreach (var v in Enum.GetValues<T>())
            if (string.Equals(v.ToString(), key, StringComparison.OrdinalIgnoreCase)) return v;
        return default;   // Unknown = 0 in every enum
    }
}

/// <summary>A resource pattern as stored (LITERAL or PREFIXED; the name "*" with LITERAL is the wildcard).</summary>
public readonly record struct ResourcePattern(ResourceType Type, string Name, PatternType PatternType)
{
    public const string Wildcard = "*";
    public const string ClusterName = "kafka-cluster";

    public override string ToString() => $"ResourcePattern(resourceType={AclNames.JavaName(Type)}, name={Name}, patternType={AclNames.JavaName(PatternType)})";
}

/// <summary>One access control entry, as upstream's AccessControlEntry (principal kept as the "Type:Name" string).</summary>
public readonly record struct AclEntry(string Principal, string Host, AclOperation Operation, AclPermissionType Permission)
{
    public const string WildcardHost = "*";
    public const string WildcardPrincipal = "User:*";

    public override string ToString() => $"{Principal} has {AclNames.JavaName(Permission)} permission for operations: {AclNames.JavaName(Operation)} from hosts: {Host}";
}

public readonly record struct AclBinding(ResourcePattern Pattern, AclEntry Entry);

/// <summary>Upstream's ResourcePatternFilter + AccessControlEntryFilter (DescribeAcls, DeleteAcls).</summary>
public sealed record AclBindingFilter(ResourceType ResourceType, string? Name, PatternType PatternType,
    string? Principal, string? Host, AclOperation Operation, AclPermissionType Permission)
{
    public bool Matches(ResourcePattern pattern)
    {
        if (ResourceType != ResourceType.Any && ResourceType != pattern.Type) return false;
        if (PatternType is not (PatternType.Any or PatternType.Match) && PatternType != pattern.PatternType) return false;
        if (Name is null) return true;
        if (PatternType == PatternType.Any || PatternType == pattern.PatternType) return Name == pattern.Name;
        // MATCH: every stored pattern that would apply to a resource of this name.
        return pattern.PatternType switch
        {
            PatternType.Literal => Name == pattern.Name || pattern.Name == ResourcePattern.Wildcard,
            PatternType.Prefixed => Name.StartsWith(pattern.Name, StringComparison.Ordinal),
            _ => false,
        };
    }

    public bool Matches(AclEntry entry) =>
        (Principal is null || Principal == entry.Principal)
        && (Host is null || Host == entry.Host)
        && (Operation == AclOperation.Any || Operation == entry.Operation)
        && (Permission == AclPermissionType.Any || Permission == entry.Permission);

    public bool Matches(AclBinding binding) => Matches(binding.Pattern) && Matches(binding.Entry);

    /// <summary>Upstream ResourcePatternFilter.matchesAtMostOne: the filter names one exact pattern.</summary>
    public bool PatternMatchesAtMostOne =>
        ResourceType is not (ResourceType.Any or ResourceType.Unknown) && Name is not null
        && PatternType is PatternType.Literal or PatternType.Prefixed;
}

/// <summary>The znode layout and JSON of upstream's ZooKeeper ACL store (kafka.zk.ZkAclStore,
/// LiteralAclChangeStore, ExtendedAclChangeStore, AclEntry.toJsonCompatibleMap).</summary>
public static class AclZkFormat
{
    public const string LiteralRoot = "/kafka-acl";
    public const string ExtendedRoot = "/kafka-acl-extended";
    public const string LiteralChanges = "/kafka-acl-changes";
    public const string ExtendedChanges = "/kafka-acl-extended-changes";
    public const string ChangePrefix = "acl_changes_";

    /// <summary>/kafka-acl for LITERAL, /kafka-acl-extended/&lt;patterntype lower case&gt; otherwise.</summary>
    public static string StoreRoot(PatternType p) => p == PatternType.Literal ? LiteralRoot : $"{ExtendedRoot}/{p.ToString().ToLowerInvariant()}";

    public static string PathOf(ResourcePattern r) => $"{StoreRoot(r.PatternType)}/{AclNames.Name(r.Type)}/{r.Name}";

    public static byte[] Encode(IEnumerable<AclEntry> acls)
    {
        var arr = new JsonArray();
        foreach (var a in acls)
            arr.Add((JsonNode)new JsonObject   // Add(JsonNode): Add<T> is reflection-based (NativeAOT)
            {
                ["principal"] = a.Principal,
                ["permissionType"] = AclNames.Name(a.Permission),
                ["operation"] = AclNames.Name(a.Operation),
                ["host"] = a.Host,
            });
        return Encoding.UTF8.GetBytes(new JsonObject { ["version"] = 1, ["acls"] = arr }.ToJsonString());
    }

    /// <summary>Decodes a resource znode; throws FormatException for what upstream's AclEntry.fromBytes refuses.
    /// Empty data (a node kafka-acls.sh left without ACLs) is no ACLs.</summary>
    public static HashSet<AclEntry> Decode(byte[]? data)
    {
        var set = new HashSet<AclEntry>();
        if (data is null || data.Length == 0) return set;
        JsonObject o;
        try { o = JsonNode.Parse(data) as JsonObject ?? throw new FormatException("not a JSON object"); }
        catch (JsonException e) { throw new FormatException(e.Message); }
        if (o["version"]?.GetValueKind() != JsonValueKind.Number || o["version"]!.GetValue<int>() != 1) throw new FormatException("version is not 1");
        if (o["acls"] is not JsonArray acls) return set;
        foreach (var item in acls)
        {
            if (item is not JsonObject a) throw new FormatException("acl is not an object");
            string principal = Str(a, "principal");
            if (KafkaPrincipal.TryParse(principal) is null) throw new FormatException($"expected a string in format principalType:principalName but got {principal}");
            set.Add(new AclEntry(principal, Str(a, "host"),
                AclNames.Parse<AclOperation>(Str(a, "operation")), AclNames.Parse<AclPermissionType>(Str(a, "permissionType"))));
        }
        return set;
    }

    private static string Str(JsonObject o, string key) =>
        o[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s : throw new FormatException($"missing {key}");

    /// <summary>A literal change notification: "TOPIC:name" (upstream writes ResourceType.toString, the Java constant name).</summary>
    public static byte[] EncodeLiteralChange(ResourcePattern r) => Encoding.UTF8.GetBytes($"{AclNames.JavaName(r.Type)}:{r.Name}");

    public static byte[] EncodeExtendedChange(ResourcePattern r) => Encoding.UTF8.GetBytes(new JsonObject
    {
        ["version"] = 1,
        ["resourceType"] = AclNames.JavaName(r.Type),
        ["name"] = r.Name,
        ["patternType"] = AclNames.JavaName(r.PatternType),
    }.ToJsonString());

    public static ResourcePattern? DecodeChange(bool extended, byte[]? data)
    {
        if (data is null) return null;
        if (!extended)
        {
            var s = Encoding.UTF8.GetString(data);
            int colon = s.IndexOf(':');
            if (colon <= 0) return null;
            var type = AclNames.Parse<ResourceType>(s[..colon]);
            return type is ResourceType.Unknown or ResourceType.Any ? null : new ResourcePattern(type, s[(colon + 1)..], PatternType.Literal);
        }
        try
        {
            if (JsonNode.Parse(data) is not JsonObject o) return null;
            string? S(string k) => o[k] is JsonValue v && v.TryGetValue<string>(out var x) ? x : null;
            var t = AclNames.Parse<ResourceType>(S("resourceType"));
            var p = AclNames.Parse<PatternType>(S("patternType"));
            if (t is ResourceType.Unknown or ResourceType.Any || p is not (PatternType.Literal or PatternType.Prefixed) || S("name") is not { } n) return null;
            return new ResourcePattern(t, n, p);
        }
        catch (JsonException) { return null; }
    }
}
