using System.Globalization;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Host.Admin;

/// <summary>
/// <c>samsa kafka-configs</c>: upstream's kafka-configs.sh (ConfigCommand) with --bootstrap-server —
/// describe and alter topic and broker configs (DescribeConfigs, IncrementalAlterConfigs) and user
/// and client quotas (DescribeClientQuotas, AlterClientQuotas).
/// </summary>
internal static class ConfigsCommand
{
    private const string Tool = "kafka-configs";

    private static readonly HashSet<string> WithValue =
        ["--bootstrap-server", "--command-config", "--entity-type", "--entity-name", "--add-config", "--delete-config", "--topic", "--broker", "--user", "--client"];
    private static readonly HashSet<string> Flags = ["--describe", "--alter", "--all", "--entity-default", "--broker-defaults", "--user-defaults", "--client-defaults", "--force", "--help"];

    public const string Usage =
        "usage: samsa kafka-configs --bootstrap-server HOST:PORT [--command-config FILE]\n" +
        "         --entity-type topics|brokers|users|clients (--entity-name X | --entity-default)   (or --topic X, --broker N, --user U, --client C)\n" +
        "         --describe [--all] | --alter [--add-config k=v,k2=[a,b]] [--delete-config k,k2]\n";

    private static readonly string[] SourceNames =
        ["UNKNOWN", "DYNAMIC_TOPIC_CONFIG", "DYNAMIC_BROKER_CONFIG", "DYNAMIC_DEFAULT_BROKER_CONFIG", "STATIC_BROKER_CONFIG",
         "DEFAULT_CONFIG", "DYNAMIC_BROKER_LOGGER_CONFIG", "CLIENT_METRICS_CONFIG", "GROUP_CONFIG"];

    public static async Task<int> RunAsync(string[] argv, TextWriter output, TextWriter error)
    {
        var args = new AdminArgs(Tool, argv, WithValue, Flags);
        if (args.Has("--help")) { output.Write(Usage); return 0; }
        if ((args.Has("--describe") ? 1 : 0) + (args.Has("--alter") ? 1 : 0) != 1)
            throw new UsageException($"{Tool}: Command must include exactly one action: --describe, --alter");
        string bootstrap = args.Required(Tool, "--bootstrap-server");
        var props = args.Get("--command-config") is { } cc ? AdminArgs.LoadProperties(cc) : null;

        // Entity: --entity-type/--entity-name(/--entity-default), or the shorthand flags.
        var entities = new List<(string Type, string? Name)>();
        if (args.Get("--topic") is { } t) entities.Add(("topics", t));
        if (args.Get("--broker") is { } b) entities.Add(("brokers", b));
        if (args.Has("--broker-defaults")) entities.Add(("brokers", ""));
        if (args.Get("--user") is { } u) entities.Add(("users", u));
        if (args.Has("--user-defaults")) entities.Add(("users", null));
        if (args.Get("--client") is { } c) entities.Add(("clients", c));
        if (args.Has("--client-defaults")) entities.Add(("clients", null));
        var types = args.All("--entity-type");
        if (types.Count > 0)
        {
            if (entities.Count > 0) throw new UsageException($"{Tool}: --entity-{{type,name,default}} should not be used in conjunction with specific entity flags");
            var names = args.All("--entity-name");
            for (int i = 0; i < types.Count; i++)
            {
                string type = types[i];
                if (type is not ("topics" or "brokers" or "users" or "clients"))
                    throw new UsageException($"{Tool}: Invalid entity type {type}, the entity type must be one of topics, brokers, users, clients with a --bootstrap-server argument");
                string? name = i < names.Count ? names[i] : args.Has("--entity-default") && type == "brokers" ? "" : null;
                if (name is null && !args.Has("--entity-default") && (args.Has("--alter") || type is "users" or "clients"))
                    throw new UsageException($"{Tool}: An entity name must be specified with --{(args.Has("--alter") ? "alter" : "describe")} of {type}");
                entities.Add((type, name));
            }
        }
        if (entities.Count == 0) throw new UsageException($"{Tool}: Missing required argument \"[entity-type]\"");
        bool quota = entities.All(e => e.Type is "users" or "clients");
        if (!quota && entities.Count > 1) throw new UsageException($"{Tool}: Only 'users' and 'clients' entity types may be specified together");

        await using var admin = new AdminClient(bootstrap, props);
        try
        {
            if (quota)
            {
                if (args.Has("--describe")) await DescribeQuotasAsync(admin, entities, output);
                else await AlterQuotasAsync(admin, args, entities, output);
            }
            else
            {
                var (type, name) = entities[0];
                if (args.Has("--describe")) await DescribeResourceAsync(admin, type, name, args.Has("--all"), output);
                else await AlterResourceAsync(admin, args, type, name, output);
            }
            return 0;
        }
        catch (Exception e) when (e is AdminException or IOException or System.Net.Sockets.SocketException or OperationCanceledException)
        {
            error.WriteLine($"Error while executing config command with args '{string.Join(" ", argv)}'");
            error.WriteLine(e is OperationCanceledException ? "Timed out waiting for a response" : e.Message);
            return 1;
        }
    }

    private static sbyte ResourceType(string type) => type == "topics" ? (sbyte)2 : (sbyte)4;

    private static async Task<AdminClient.Conn> ResourceConnAsync(AdminClient admin, string type, string name)
    {
        // Broker resources go to that broker; topics and the broker default to any broker.
        if (type == "brokers" && name.Length > 0)
        {
            if (!int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out int id))
                throw new AdminException($"The entity name for {type} must be a valid integer broker id, found: {name}");
            return await admin.NodeAsync(id);
        }
        return await admin.AnyAsync();
    }

    private static async Task<List<DescribeConfigsResponse.DescribeConfigsResourceResult>> GetConfigsAsync(AdminClient admin, string type, string name, bool synonyms)
    {
        var conn = await ResourceConnAsync(admin, type, name);
        var request = new DescribeConfigsRequest
        {
            Resources = [new DescribeConfigsRequest.DescribeConfigsResource { ResourceType = ResourceType(type), ResourceName = name, ConfigurationKeys = null! }],
            IncludeSynonyms = synonyms,
        };
        var r = await admin.SendAsync<DescribeConfigsResponse>(conn, request, ApiKey.DescribeConfigs, 4);
        var result = r.Results.FirstOrDefault() ?? throw new AdminException("no DescribeConfigs result");
        if (result.ErrorCode != 0) throw AdminException.From(result.ErrorCode, result.ErrorMessage);
        return result.Configs;
    }

    private static async Task DescribeResourceAsync(AdminClient admin, string type, string? name, bool all, TextWriter output)
    {
        List<string> names;
        if (name is not null) names = [name];
        else if (type == "topics") names = (await admin.MetadataAsync(null)).Topics.Select(t => t.Name!).ToList();
        else { await admin.MetadataAsync([]); names = admin.Brokers.Keys.Order().Select(i => i.ToString(CultureInfo.InvariantCulture)).Append("").ToList(); }
        foreach (var entity in names)
        {
            if (entity.Length == 0 && type == "brokers") output.WriteLine($"Default configs for {type} in the cluster are:");
            else output.WriteLine($"{(all ? "All" : "Dynamic")} configs for {type[..^1]} {entity} are:");
            sbyte dynamicSource = type == "topics" ? (sbyte)1 : entity.Length == 0 ? (sbyte)3 : (sbyte)2;
            var configs = await GetConfigsAsync(admin, type, entity, synonyms: true);
            foreach (var c in configs.Where(c => all || c.ConfigSource == dynamicSource).OrderBy(c => c.Name, StringComparer.Ordinal))
            {
                string syn = string.Join(", ", c.Synonyms.Select(s => $"{Source(s.Source)}:{s.Name}={s.Value ?? "null"}"));
                output.WriteLine($"  {c.Name}={c.Value ?? "null"} sensitive={(c.IsSensitive ? "true" : "false")} synonyms={{{syn}}}");
            }
        }
    }

    private static string Source(sbyte s) => s >= 0 && s < SourceNames.Length ? SourceNames[s] : "UNKNOWN";

    private static async Task AlterResourceAsync(AdminClient admin, AdminArgs args, string type, string? name, TextWriter output)
    {
        name ??= "";
        var add = AdminArgs.ParseConfigs(Tool, args.All("--add-config"));
        var delete = args.All("--delete-config").SelectMany(d => d.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList();
        if (add.Count == 0 && delete.Count == 0) throw new UsageException($"{Tool}: At least one of --add-config or --delete-config must be specified with --alter");
        // Upstream refuses to delete a config the entity does not set dynamically.
        var current = await GetConfigsAsync(admin, type, name, synonyms: false);
        sbyte dynamicSource = type == "topics" ? (sbyte)1 : name.Length == 0 ? (sbyte)3 : (sbyte)2;
        var invalid = delete.Where(d => !current.Any(c => c.Name == d && c.ConfigSource == dynamicSource)).ToList();
        if (invalid.Count > 0) throw new AdminException($"Invalid config(s): {string.Join(",", invalid)}", ErrorCode.InvalidConfig);
        var conn = await ResourceConnAsync(admin, type, name);
        var request = new IncrementalAlterConfigsRequest
        {
            Resources =
            [
                new IncrementalAlterConfigsRequest.AlterConfigsResource
                {
                    ResourceType = ResourceType(type),
                    ResourceName = name,
                    Configs = add.Select(kv => new IncrementalAlterConfigsRequest.AlterableConfig { Name = kv.Key, ConfigOperation = 0, Value = kv.Value })
                        .Concat(delete.Select(k => new IncrementalAlterConfigsRequest.AlterableConfig { Name = k, ConfigOperation = 1, Value = null }))
                        .ToList(),
                },
            ],
        };
        var r = await admin.SendAsync<IncrementalAlterConfigsResponse>(conn, request, ApiKey.IncrementalAlterConfigs, 1);
        foreach (var x in r.Responses)
            if (x.ErrorCode != 0) throw AdminException.From(x.ErrorCode, x.ErrorMessage);
        output.WriteLine(name.Length == 0 ? $"Completed updating default config for {type} in the cluster." : $"Completed updating config for {type[..^1]} {name}.");
    }

    // ------------------------------------------------------------------ quotas

    private static string QuotaType(string type) => type == "users" ? "user" : "client-id";

    private static async Task DescribeQuotasAsync(AdminClient admin, List<(string Type, string? Name)> entities, TextWriter output)
    {
        var conn = await admin.AnyAsync();
        var request = new DescribeClientQuotasRequest
        {
            Components = entities.Select(e => new DescribeClientQuotasRequest.ComponentData
            {
                EntityType = QuotaType(e.Type),
                MatchType = e.Name is null ? (sbyte)1 : (sbyte)0,
                Match = e.Name,
            }).ToList(),
            Strict = true,
        };
        var r = await admin.SendAsync<DescribeClientQuotasResponse>(conn, request, ApiKey.DescribeClientQuotas, 1);
        if (r.ErrorCode != 0) throw AdminException.From(r.ErrorCode, r.ErrorMessage);
        foreach (var entry in r.Entries ?? [])
        {
            string Part(string t, string label) => entry.Entity.FirstOrDefault(x => x.EntityType == t) is { } d
                ? d.EntityName is null ? $"the default {label}" : $"{label} '{d.EntityName}'" : "";
            string entity = string.Join(", ", new[] { Part("user", "user-principal"), Part("client-id", "client-id"), Part("ip", "ip") }.Where(s => s.Length > 0));
            output.WriteLine($"Quota configs for {entity} are {string.Join(", ", entry.Values.Select(v => $"{v.Key}={JavaDouble(v.Value)}"))}");
        }
    }

    private static async Task AlterQuotasAsync(AdminClient admin, AdminArgs args, List<(string Type, string? Name)> entities, TextWriter output)
    {
        var add = AdminArgs.ParseConfigs(Tool, args.All("--add-config"));
        var delete = args.All("--delete-config").SelectMany(d => d.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList();
        if (add.Count == 0 && delete.Count == 0) throw new UsageException($"{Tool}: At least one of --add-config or --delete-config must be specified with --alter");
        var ops = new List<AlterClientQuotasRequest.OpData>();
        foreach (var (k, v) in add)
        {
            if (!double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double d))
                throw new UsageException($"{Tool}: Cannot parse quota configuration value for {k}: {v}");
            ops.Add(new AlterClientQuotasRequest.OpData { Key = k, Value = d });
        }
        ops.AddRange(delete.Select(k => new AlterClientQuotasRequest.OpData { Key = k, Remove = true }));
        var conn = await admin.AnyAsync();
        var request = new AlterClientQuotasRequest
        {
            Entries =
            [
                new AlterClientQuotasRequest.EntryData
                {
                    Entity = entities.Select(e => new AlterClientQuotasRequest.EntityData { EntityType = QuotaType(e.Type), EntityName = e.Name }).ToList(),
                    Ops = ops,
                },
            ],
        };
        var r = await admin.SendAsync<AlterClientQuotasResponse>(conn, request, ApiKey.AlterClientQuotas, 1);
        foreach (var e in r.Entries)
            if (e.ErrorCode != 0) throw AdminException.From(e.ErrorCode, e.ErrorMessage);
        var (type, name) = entities[0];
        output.WriteLine(name is null ? $"Completed updating default config for {type} in the cluster." : $"Completed updating config for {type[..^1]} {name}.");
    }

    /// <summary>Java's Double.toString for the values quotas hold: 1024.0, 1.5, 1.0E7.</summary>
    internal static string JavaDouble(double v)
    {
        if (double.IsNaN(v)) return "NaN";
        if (double.IsInfinity(v)) return v > 0 ? "Infinity" : "-Infinity";
        double a = Math.Abs(v);
        if (a == 0 || (a >= 1e-3 && a < 1e7))
        {
            string s = v.ToString("R", CultureInfo.InvariantCulture);
            return s.Contains('.') || s.Contains('E') ? s : s + ".0";
        }
        int exp = (int)Math.Floor(Math.Log10(a));
        double mant = v / Math.Pow(10, exp);
        string m = Math.Round(mant, 15).ToString("R", CultureInfo.InvariantCulture);
        if (!m.Contains('.')) m += ".0";
        return m + "E" + exp.ToString(CultureInfo.InvariantCulture);
    }
}
