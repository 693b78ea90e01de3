using System.Globalization;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Host.Admin;

/// <summary>
/// <c>samsa kafka-configs</c>: upstream's kafka-configs.sh (ConfigCommand) with --bootstrap-server —
/// describe and alter topic and broker configs (DescribeConfigs, IncrementalAlterConfigs) and user
/// and client quotas (DescribeClientQuotas, AlterClientQuotas), users' SCRAM credentials
/// (Describe/AlterUserScramCredentials) and client-metrics subscriptions (KIP-714 resources).
/// </summary>
internal static class ConfigsCommand
{
    private const string Tool = "kafka-configs";

    private static readonly HashSet<string> WithValue =
        ["--bootstrap-server", "--command-config", "--entity-type", "--entity-name", "--add-config", "--delete-config", "--topic", "--broker", "--user", "--client"];
    private static readonly HashSet<string> Flags = ["--describe", "--alter", "--all", "--entity-default", "--broker-defaults", "--user-defaults", "--client-defaults", "--force", "--help"];

    public const string Usage =
        "usage: samsa kafka-configs --bootstrap-server HOST:PORT [--command-config FILE]\n" +
        "         --entity-type topics|brokers|users|clients|client-metrics (--entity-name X | --entity-default)   (or --topic X, --broker N, --user U, --client C)\n" +
        "         --describe [--all] | --alter [--add-config k=v,k2=[a,b]] [--delete-config k,k2]\n" +
        "         users: --add-config 'SCRAM-SHA-256=[iterations=8192,password=secret]' | --delete-config SCRAM-SHA-512\n";

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
                if (type is not ("topics" or "brokers" or "users" or "clients" or "client-metrics"))
                    throw new UsageException($"{Tool}: Invalid entity type {type}, the entity type must be one of topics, brokers, users, clients, client-metrics with a --bootstrap-server argument");
                if (type == "client-metrics" && i >= names.Count)
                    throw new UsageException($"{Tool}: An entity name must be specified with --{(args.Has("--alter") ? "alter" : "describe")} of {type} (listing client-metrics resources is not implemented)");
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
                if (args.Has("--describe"))
                {
                    await DescribeQuotasAsync(admin, entities, output);
                    // SCRAM credentials are described only for named users (no clients, no defaults), as upstream
                    if (entities.All(e => e.Type == "users" && e.Name is not null)) await DescribeScramAsync(admin, entities.Select(e => e.Name!).ToList(), output);
                }
                else if (ScramAlter(args, entities) is { } scram) await AlterScramAsync(admin, entities[0].Name!, scram, output);
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
        catch (ArgumentException e)
        {
            // upstream's IllegalArgumentException: the message alone
            error.WriteLine(e.Message);
            return 1;
        }
        catch (Exception e) when (e is AdminException or IOException or System.Net.Sockets.SocketException or OperationCanceledException)
        {
            error.WriteLine($"Error while executing config command with args '{string.Join(" ", argv)}'");
            error.WriteLine(e is OperationCanceledException ? "Timed out waiting for a response" : e.Message);
            return 1;
        }
    }

    private static sbyte ResourceType(string type) => type switch { "topics" => 2, "client-metrics" => 16, _ => 4 };

    /// <summary>The ConfigSource a describe without --all shows: the entity's own dynamic configs.</summary>
    private static sbyte DynamicSource(string type, string name) => type switch { "topics" => 1, "client-metrics" => 7, _ => name.Length == 0 ? (sbyte)3 : (sbyte)2 };

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
            sbyte dynamicSource = DynamicSource(type, entity);
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
        sbyte dynamicSource = DynamicSource(type, name);
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

    // ------------------------------------------------------------------ SCRAM credentials

    private sealed record ScramChange(List<(Samsa.Kafka.Broker.Security.Sasl.ScramMechanism Mechanism, int Iterations, string Password)> Upserts, List<Samsa.Kafka.Broker.Security.Sasl.ScramMechanism> Deletes);

    private static bool IsScram(string key) => Samsa.Kafka.Broker.Security.Sasl.ScramMechanism.ByName(key) is not null;

    private static readonly HashSet<string> QuotaKeys =
        ["producer_byte_rate", "consumer_byte_rate", "request_percentage", "controller_mutation_rate"];

    /// <summary>ConfigCommand.alterConfig for users and clients: which keys may go where, and the SCRAM
    /// part of the change (null when the change is to quotas only).</summary>
    private static ScramChange? ScramAlter(AdminArgs args, List<(string Type, string? Name)> entities)
    {
        var add = AdminArgs.ParseConfigs(Tool, args.All("--add-config"));
        var delete = args.All("--delete-config").SelectMany(d => d.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList();
        var scramAdd = add.Where(kv => IsScram(kv.Key)).ToList();
        var scramDelete = delete.Where(IsScram).ToList();
        var unknownAdd = add.Select(kv => kv.Key).Where(k => !IsScram(k) && !QuotaKeys.Contains(k)).ToList();
        var unknownDelete = delete.Where(k => !IsScram(k) && !QuotaKeys.Contains(k)).ToList();
        bool quotas = add.Any(kv => QuotaKeys.Contains(kv.Key)) || delete.Any(QuotaKeys.Contains);
        if (entities[0].Type == "clients" || entities.Count == 2)
        {
            if (unknownAdd.Count > 0 || scramAdd.Count > 0)
                throw new ArgumentException($"Only quota configs can be added for 'clients' using --bootstrap-server. Unexpected config names: {ScalaList(unknownAdd.Concat(scramAdd.Select(kv => kv.Key)))}");
            if (unknownDelete.Count > 0 || scramDelete.Count > 0)
                throw new ArgumentException($"Only quota configs can be deleted for 'clients' using --bootstrap-server. Unexpected config names: {ScalaList(unknownDelete.Concat(scramDelete))}");
            return null;
        }
        if (unknownAdd.Count > 0)
            throw new ArgumentException($"Only quota and SCRAM credential configs can be added for 'users' using --bootstrap-server. Unexpected config names: {ScalaList(unknownAdd)}");
        if (unknownDelete.Count > 0)
            throw new ArgumentException($"Only quota and SCRAM credential configs can be deleted for 'users' using --bootstrap-server. Unexpected config names: {ScalaList(unknownDelete)}");
        if (scramAdd.Count == 0 && scramDelete.Count == 0) return null;
        if (entities.Any(e => string.IsNullOrEmpty(e.Name)))
            throw new ArgumentException("The use of --entity-default or --user-defaults is not allowed with User SCRAM Credentials using --bootstrap-server.");
        if (quotas) throw new ArgumentException("Cannot alter both quota and SCRAM credential configs simultaneously for 'users' using --bootstrap-server.");
        var upserts = new List<(Samsa.Kafka.Broker.Security.Sasl.ScramMechanism, int, string)>();
        foreach (var (k, v) in scramAdd)
        {
            var mechanism = Samsa.Kafka.Broker.Security.Sasl.ScramMechanism.ByName(k)!;
            var m = System.Text.RegularExpressions.Regex.Match(v, @"^(?:iterations=(-?[0-9]*),)?password=(.*)$", System.Text.RegularExpressions.RegexOptions.Singleline);
            if (!m.Success) throw new ArgumentException($"Invalid credential property {k}={v}");
            int iterations = m.Groups[1].Success && m.Groups[1].Value != "-1"
                ? int.TryParse(m.Groups[1].Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int n) ? n : throw new ArgumentException($"For input string: \"{m.Groups[1].Value}\"")
                : 4096;
            if (iterations < Samsa.Kafka.Broker.Security.Sasl.ScramMechanism.MinIterations)
                throw new ArgumentException($"Iterations {iterations} is less than the minimum {Samsa.Kafka.Broker.Security.Sasl.ScramMechanism.MinIterations} required for {k}");
            upserts.Add((mechanism, iterations, m.Groups[2].Value));
        }
        return new ScramChange(upserts, scramDelete.Select(d => Samsa.Kafka.Broker.Security.Sasl.ScramMechanism.ByName(d)!).ToList());
    }

    /// <summary>A Scala collection's toString as the messages print it: List(a, b).</summary>
    private static string ScalaList(IEnumerable<string> items) => "List(" + string.Join(", ", items) + ")";

    /// <summary>AlterUserScramCredentials: the salted password computed here from a random salt, as upstream's admin client does.</summary>
    private static async Task AlterScramAsync(AdminClient admin, string user, ScramChange change, TextWriter output)
    {
        var request = new AlterUserScramCredentialsRequest
        {
            Deletions = change.Deletes.Select(m => new AlterUserScramCredentialsRequest.ScramCredentialDeletion { Name = user, Mechanism = m.Type }).ToList(),
            Upsertions = change.Upserts.Select(u =>
            {
                byte[] salt = System.Security.Cryptography.RandomNumberGenerator.GetBytes(32);
                return new AlterUserScramCredentialsRequest.ScramCredentialUpsertion
                {
                    Name = user, Mechanism = u.Mechanism.Type, Iterations = u.Iterations, Salt = salt,
                    SaltedPassword = u.Mechanism.SaltedPassword(u.Password, salt, u.Iterations),
                };
            }).ToList(),
        };
        var conn = await admin.ControllerAsync();
        var r = await admin.SendAsync<AlterUserScramCredentialsResponse>(conn, request, ApiKey.AlterUserScramCredentials, 0);
        foreach (var x in r.Results)
            if (x.ErrorCode != 0) throw AdminException.From(x.ErrorCode, x.ErrorMessage);
        output.WriteLine($"Completed updating config for user {user}.");
    }

    /// <summary>describeUserScramCredentials: one line per user that has credentials (users without any are skipped, as the admin client's users() does).</summary>
    private static async Task DescribeScramAsync(AdminClient admin, List<string> users, TextWriter output)
    {
        var conn = await admin.AnyAsync();
        var request = new DescribeUserScramCredentialsRequest { Users = users.Select(u => new DescribeUserScramCredentialsRequest.UserName { Name = u }).ToList() };
        var r = await admin.SendAsync<DescribeUserScramCredentialsResponse>(conn, request, ApiKey.DescribeUserScramCredentials, 0);
        if (r.ErrorCode != 0) throw AdminException.From(r.ErrorCode, r.ErrorMessage);
        foreach (var result in r.Results)
        {
            if (result.ErrorCode == (short)ErrorCode.ResourceNotFound) continue;
            if (result.ErrorCode != 0)
            {
                var code = ErrorCodes.FromWire(result.ErrorCode);
                output.WriteLine($"Error retrieving SCRAM credential configs for user-principal '{result.User}': {ExceptionName(code)}: {result.ErrorMessage ?? ErrorCodes.DefaultMessage(code)}");
                continue;
            }
            var infos = result.CredentialInfos.Select(i => $"{Samsa.Kafka.Broker.Security.Sasl.ScramMechanism.ByType(i.Mechanism)?.Name ?? "UNKNOWN"}=iterations={i.Iterations}");
            output.WriteLine($"SCRAM credential configs for user-principal '{result.User}' are {string.Join(", ", infos)}");
        }
    }

    /// <summary>The exception class upstream's admin client raises for an error code, e.g. ResourceNotFoundException.</summary>
    private static string ExceptionName(ErrorCode code) =>
        string.Concat(ErrorCodes.WireName(code).Split('_').Select(w => w.Length == 0 ? w : char.ToUpperInvariant(w[0]) + w[1..].ToLowerInvariant())) + "Exception";

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
