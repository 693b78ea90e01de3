using System.Globalization;

namespace Samsa.Host.Admin;

/// <summary>
/// Upstream-style tool options (joptsimple as the kafka-*.sh tools parse them): <c>--name value</c>,
/// <c>--name=value</c>, flags without a value, repeatable options. Which names take a value is
/// declared up front so that a flag never swallows the next option.
/// </summary>
internal sealed class AdminArgs
{
    private readonly Dictionary<string, List<string>> _values = new(StringComparer.Ordinal);
    private readonly HashSet<string> _flags = new(StringComparer.Ordinal);

    public AdminArgs(string tool, string[] args, IReadOnlySet<string> withValue, IReadOnlySet<string> flags)
    {
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            string name = a;
            string? value = null;
            int eq = a.IndexOf('=');
            if (a.StartsWith("--", StringComparison.Ordinal) && eq > 2) { name = a[..eq]; value = a[(eq + 1)..]; }
            if (withValue.Contains(name) && (value is not null || !flags.Contains(name)))
            {
                if (value is null)
                {
                    if (i + 1 >= args.Length) throw new UsageException($"{tool}: Option {name} requires an argument");
                    value = args[++i];
                }
                if (!_values.TryGetValue(name, out var list)) _values[name] = list = [];
                list.Add(value);
            }
            else if (flags.Contains(name) && value is null) _flags.Add(name);
            else throw new UsageException($"{tool}: {name} is not a recognized option");
        }
    }

    public bool Has(string name) => _flags.Contains(name) || _values.ContainsKey(name);

    public string? Get(string name) => _values.TryGetValue(name, out var v) ? v[^1] : null;

    public IReadOnlyList<string> All(string name) => _values.TryGetValue(name, out var v) ? v : [];

    public string Required(string tool, string name) =>
        Get(name) ?? throw new UsageException($"{tool}: Missing required argument \"[{name.TrimStart('-')}]\"");

    public int? Int(string tool, string name)
    {
        var v = Get(name);
        if (v is null) return null;
        if (!int.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int n))
            throw new UsageException($"{tool}: Cannot parse argument '{v}' of option {name.TrimStart('-')}");
        return n;
    }

    public long? Long(string tool, string name)
    {
        var v = Get(name);
        if (v is null) return null;
        if (!long.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long n))
            throw new UsageException($"{tool}: Cannot parse argument '{v}' of option {name.TrimStart('-')}");
        return n;
    }

    /// <summary>Upstream's <c>k=v,k2=v2</c> and repeated <c>--config k=v</c>; values may hold
    /// commas inside square brackets (<c>[a,b]</c>), as kafka-configs.sh allows.</summary>
    public static List<KeyValuePair<string, string>> ParseConfigs(string tool, IEnumerable<string> items)
    {
        var result = new List<KeyValuePair<string, string>>();
        foreach (var item in items)
        {
            foreach (var part in SplitTopLevel(item))
            {
                if (part.Length == 0) continue;
                int eq = part.IndexOf('=');
                if (eq <= 0) throw new UsageException($"{tool}: Invalid entity config: all configs to be added must be in the format \"key=val\".");
                string value = part[(eq + 1)..].Trim();
                if (value.StartsWith('[') && value.EndsWith(']')) value = value[1..^1];
                result.Add(new(part[..eq].Trim(), value));
            }
        }
        return result;
    }

    private static IEnumerable<string> SplitTopLevel(string s)
    {
        int depth = 0, start = 0;
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] == '[') depth++;
            else if (s[i] == ']') depth = Math.Max(0, depth - 1);
            else if (s[i] == ',' && depth == 0) { yield return s[start..i]; start = i + 1; }
        }
        yield return s[start..];
    }

    /// <summary>A Java properties file (the --command-config file).</summary>
    public static Dictionary<string, string> LoadProperties(string path)
    {
        if (!File.Exists(path)) throw new UsageException($"--command-config file not found: {path}");
        return new Dictionary<string, string>(Samsa.Kafka.Broker.Config.JavaProperties.Load(path), StringComparer.Ordinal);
    }
}
