using System.Text;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Host.Admin;

/// <summary>
/// <c>samsa kafka-acls</c>: upstream's kafka-acls.sh (AclCommand, 3.x behaviour: the resource's ACLs
/// are listed after --add and --remove) over CreateAcls, DescribeAcls and DeleteAcls.
/// </summary>
internal static class AclsCommand
{
    private const string Tool = "kafka-acls";

    private static readonly HashSet<string> WithValue =
        ["--bootstrap-server", "--command-config", "--topic", "--group", "--transactional-id", "--delegation-token", "--user-principal",
         "--allow-principal", "--deny-principal", "--allow-host", "--deny-host", "--operation", "--resource-pattern-type", "--principal"];
    private static readonly HashSet<string> Flags = ["--add", "--remove", "--list", "--cluster", "--producer", "--consumer", "--idempotent", "--force", "--help"];

    public const string Usage =
        "usage: samsa kafka-acls --bootstrap-server HOST:PORT [--command-config FILE] (--add | --remove [--force] | --list [--principal P])\n" +
        "         [--topic T] [--group G] [--cluster] [--transactional-id X] [--delegation-token X] [--user-principal X]\n" +
        "         [--resource-pattern-type literal|prefixed|any|match]\n" +
        "         [--allow-principal User:x] [--deny-principal User:y] [--allow-host H] [--deny-host H] [--operation Read ...]\n" +
        "         [--producer [--idempotent]] [--consumer]\n";

    private static readonly string[] ResourceTypes = ["UNKNOWN", "ANY", "TOPIC", "GROUP", "CLUSTER", "TRANSACTIONAL_ID", "DELEGATION_TOKEN", "USER"];
    private static readonly string[] PatternTypes = ["UNKNOWN", "ANY", "MATCH", "LITERAL", "PREFIXED"];
    private static readonly string[] Operations =
        ["UNKNOWN", "ANY", "ALL", "READ", "WRITE", "CREATE", "DELETE", "ALTER", "DESCRIBE", "CLUSTER_ACTION", "DESCRIBE_CONFIGS",
         "ALTER_CONFIGS", "IDEMPOTENT_WRITE", "CREATE_TOKENS", "DESCRIBE_TOKENS"];
    private static readonly string[] Permissions = ["UNKNOWN", "ANY", "DENY", "ALLOW"];

    private sealed record Pattern(sbyte Type, string? Name, sbyte PatternType)
    {
        public override string ToString() => $"ResourcePattern(resourceType={ResourceTypes[Type]}, name={Name ?? "<any>"}, patternType={PatternTypes[PatternType]})";
    }

    private sealed record Entry(string Principal, string Host, sbyte Operation, sbyte Permission)
    {
        public override string ToString() => $"(principal={Principal}, host={Host}, operation={Operations[Operation]}, permissionType={Permissions[Permission]})";
    }

    public static async Task<int> RunAsync(string[] argv, TextWriter output, TextReader input)
    {
        var args = new AdminArgs(Tool, argv, WithValue, Flags);
        if (args.Has("--help")) { output.Write(Usage); return 0; }
        if (new[] { "--add", "--remove", "--list" }.Count(args.Has) != 1)
            throw new UsageException($"{Tool}: Command must include exactly one action: --list, --add, --remove. ");
        string bootstrap = args.Required(Tool, "--bootstrap-server");
        var props = args.Get("--command-config") is { } cc ? AdminArgs.LoadProperties(cc) : null;
        sbyte patternType = ParsePatternType(args.Get("--resource-pattern-type") ?? "literal");
        var filters = ResourceFilters(args, patternType);
        bool list = args.Has("--list");
        if (filters.Count == 0 && !list)
            throw new UsageException($"{Tool}: You must provide at least one resource: --topic <topic> or --cluster or --group <group> or --delegation-token <Delegation Token ID>");
        await using var admin = new AdminClient(bootstrap, props);
        try
        {
            if (args.Has("--add"))
            {
                if (patternType is 1 or 2) throw new UsageException($"{Tool}: A '--resource-pattern-type' value of '{PatternTypes[patternType]}' is not valid when adding acls.");
                var toAdd = FilterToAcls(args, filters);
                if (toAdd.Any(kv => kv.Value.Count == 0))
                    throw new UsageException($"{Tool}: You must specify one of: --allow-principal, --deny-principal when trying to add ACLs.");
                foreach (var (resource, acls) in toAdd)
                {
                    output.WriteLine($"Adding ACLs for resource `{resource}`: \n {string.Join("\n", acls.Select(a => "\t" + a))} \n");
                    var conn = await admin.AnyAsync();
                    var r = await admin.SendAsync<CreateAclsResponse>(conn, new CreateAclsRequest
                    {
                        Creations = acls.Select(a => new CreateAclsRequest.AclCreation
                        {
                            ResourceType = resource.Type, ResourceName = resource.Name!, ResourcePatternType = resource.PatternType,
                            Principal = a.Principal, Host = a.Host, Operation = a.Operation, PermissionType = a.Permission,
                        }).ToList(),
                    }, ApiKey.CreateAcls, 3);
                    foreach (var x in r.Results) if (x.ErrorCode != 0) throw AdminException.From(x.ErrorCode, x.ErrorMessage);
                }
                await ListAsync(admin, filters, [], output);
            }
            else if (args.Has("--remove"))
            {
                foreach (var (filter, acls) in FilterToAcls(args, filters))
                {
                    string prompt = acls.Count == 0
                        ? $"Are you sure you want to delete all ACLs for resource filter `{filter}`? (y/n)"
                        : $"Are you sure you want to remove ACLs: \n {string.Join("\n", acls.Select(a => "\t" + a))} \n from resource filter `{filter}`? (y/n)";
                    if (!args.Has("--force"))
                    {
                        output.WriteLine(prompt);
                        output.Flush();
                        if (!string.Equals(input.ReadLine()?.Trim(), "y", StringComparison.OrdinalIgnoreCase)) continue;
                    }
                    var entries = acls.Count == 0 ? [new Entry(null!, null!, 1, 1)] : acls;
                    var conn = await admin.AnyAsync();
                    var r = await admin.SendAsync<DeleteAclsResponse>(conn, new DeleteAclsRequest
                    {
                        Filters = entries.Select(a => new DeleteAclsRequest.DeleteAclsFilter
                        {
                            ResourceTypeFilter = filter.Type, ResourceNameFilter = filter.Name, PatternTypeFilter = filter.PatternType,
                            PrincipalFilter = a.Principal, HostFilter = a.Host, Operation = a.Operation, PermissionType = a.Permission,
                        }).ToList(),
                    }, ApiKey.DeleteAcls, 3);
                    foreach (var x in r.FilterResults) if (x.ErrorCode != 0) throw AdminException.From(x.ErrorCode, x.ErrorMessage);
                }
                await ListAsync(admin, filters, [], output);
            }
            else await ListAsync(admin, filters, args.All("--principal"), output);
            return 0;
        }
        catch (Exception e) when (e is AdminException or IOException or System.Net.Sockets.SocketException or OperationCanceledException)
        {
            output.WriteLine($"Error while executing ACL command: {(e is OperationCanceledException ? "Timed out waiting for a response" : e.Message)}");
            return 1;
        }
    }

    private static sbyte ParsePatternType(string s) => s.Trim().ToUpperInvariant() switch
    {
        "ANY" => 1, "MATCH" => 2, "LITERAL" => 3, "PREFIXED" => 4,
        _ => throw new UsageException($"{Tool}: Invalid --resource-pattern-type {s}: one of literal, prefixed, any, match"),
    };

    private static List<Pattern> ResourceFilters(AdminArgs args, sbyte patternType)
    {
        var result = new List<Pattern>();
        foreach (var t in args.All("--topic")) result.Add(new Pattern(2, t.Trim(), patternType));
        if (patternType == 3 && (args.Has("--cluster") || args.Has("--idempotent"))) result.Add(new Pattern(4, "kafka-cluster", 3));
        foreach (var g in args.All("--group")) result.Add(new Pattern(3, g.Trim(), patternType));
        foreach (var x in args.All("--transactional-id")) result.Add(new Pattern(5, x, patternType));
        foreach (var x in args.All("--delegation-token")) result.Add(new Pattern(6, x.Trim(), patternType));
        foreach (var x in args.All("--user-principal")) result.Add(new Pattern(7, x.Trim(), patternType));
        return result.Distinct().ToList();
    }

    /// <summary>Upstream's CamelCase operation names (Read, DescribeConfigs, IdempotentWrite, All ...).</summary>
    private static sbyte ParseOperation(string s)
    {
        var upper = new StringBuilder();
        string t = s.Trim();
        for (int i = 0; i < t.Length; i++)
        {
            if (i > 0 && char.IsUpper(t[i]) && char.IsLower(t[i - 1])) upper.Append('_');
            upper.Append(char.ToUpperInvariant(t[i]));
        }
        int idx = Array.IndexOf(Operations, upper.ToString());
        if (idx < 2) throw new UsageException($"{Tool}: Invalid operation '{s}'");
        return (sbyte)idx;
    }

    private static string Principal(string s)
    {
        s = s.Trim();
        int colon = s.IndexOf(':');
        if (colon <= 0) throw new UsageException($"{Tool}: expected a string in format principalType:principalName but got {s}");
        return s;
    }

    private static List<Entry> Acls(AdminArgs args, IEnumerable<sbyte> operations)
    {
        var allow = args.All("--allow-principal").Select(Principal).Distinct().ToList();
        var deny = args.All("--deny-principal").Select(Principal).Distinct().ToList();
        List<string> Hosts(string opt, List<string> principals) =>
            args.All(opt).Count > 0 ? args.All(opt).Select(h => h.Trim()).Distinct().ToList() : principals.Count > 0 ? ["*"] : [];
        var result = new List<Entry>();
        var ops = operations.Distinct().ToList();
        foreach (var p in allow) foreach (var op in ops) foreach (var h in Hosts("--allow-host", allow)) result.Add(new Entry(p, h, op, 3));
        foreach (var p in deny) foreach (var op in ops) foreach (var h in Hosts("--deny-host", deny)) result.Add(new Entry(p, h, op, 2));
        return result;
    }

    private static List<KeyValuePair<Pattern, List<Entry>>> FilterToAcls(AdminArgs args, List<Pattern> filters)
    {
        var map = new Dictionary<Pattern, List<Entry>>();
        void Add(Pattern p, List<Entry> acls)
        {
            if (!map.TryGetValue(p, out var list)) map[p] = list = [];
            foreach (var a in acls) if (!list.Contains(a)) list.Add(a);
        }
        bool producer = args.Has("--producer"), consumer = args.Has("--consumer");
        if (!producer && !consumer)
        {
            var ops = args.All("--operation").Count > 0 ? args.All("--operation").Select(ParseOperation).ToList() : [(sbyte)2];
            foreach (var f in filters) Add(f, Acls(args, ops));
        }
        if (producer)
        {
            foreach (var f in filters.Where(f => f.Type == 2)) Add(f, Acls(args, [4, 8, 5]));
            foreach (var f in filters.Where(f => f.Type == 5)) Add(f, Acls(args, [4, 8]));
            if (args.Has("--idempotent")) Add(new Pattern(4, "kafka-cluster", 3), Acls(args, [12]));
        }
        if (consumer)
        {
            foreach (var f in filters.Where(f => f.Type == 2)) Add(f, Acls(args, [3, 8]));
            foreach (var f in filters.Where(f => f.Type == 3)) Add(f, Acls(args, [3]));
        }
        return map.ToList();
    }

    private static async Task ListAsync(AdminClient admin, List<Pattern> filters, IReadOnlyList<string> principals, TextWriter output)
    {
        var conn = await admin.AnyAsync();
        var byResource = new Dictionary<Pattern, List<Entry>>();
        var order = new List<Pattern>();
        foreach (var f in filters.Count == 0 ? [new Pattern(1, null, 1)] : filters)
        {
            var r = await admin.SendAsync<DescribeAclsResponse>(conn, new DescribeAclsRequest
            {
                ResourceTypeFilter = f.Type, ResourceNameFilter = f.Name, PatternTypeFilter = f.PatternType,
                PrincipalFilter = null, HostFilter = null, Operation = 1, PermissionType = 1,
            }, ApiKey.DescribeAcls, 3);
            if (r.ErrorCode != 0) throw AdminException.From(r.ErrorCode, r.ErrorMessage);
            foreach (var res in r.Resources)
            {
                var p = new Pattern(res.ResourceType, res.ResourceName, res.PatternType);
                if (!byResource.TryGetValue(p, out var list)) { byResource[p] = list = []; order.Add(p); }
                foreach (var a in res.Acls)
                {
                    var e = new Entry(a.Principal, a.Host, a.Operation, a.PermissionType);
                    if (!list.Contains(e)) list.Add(e);
                }
            }
        }
        void Print(Func<Entry, bool> keep)
        {
            foreach (var p in order)
            {
                var acls = byResource[p].Where(keep).ToList();
                if (acls.Count == 0) continue;
                output.WriteLine($"Current ACLs for resource `{p}`: \n {string.Join("\n", acls.Select(a => "\t" + a))} \n");
            }
        }
        if (principals.Count == 0) Print(_ => true);
        else
            foreach (var principal in principals)
            {
                output.WriteLine($"ACLs for principal `{principal}`");
                Print(a => a.Principal == principal);
            }
    }
}
