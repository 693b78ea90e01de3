using System.Globalization;

namespace Samsa.Kafka.Broker.Config;

/// <summary>Config value types with the ids DescribeConfigs v3+ puts in config_type.</summary>
public enum ConfigType : sbyte
{
    Unknown = 0, Boolean = 1, String = 2, Int = 3, Short = 4, Long = 5, Double = 6, List = 7, Class = 8, Password = 9,
}

/// <summary>Where a config value came from, with DescribeConfigs' config_source ids.</summary>
public enum ConfigSource : sbyte
{
    Unknown = 0,
    DynamicTopicConfig = 1,
    DynamicBrokerConfig = 2,
    DynamicDefaultBrokerConfig = 3,
    StaticBrokerConfig = 4,
    DefaultConfig = 5,
    DynamicBrokerLoggerConfig = 6,
}

/// <summary>A rejected config value; the message follows upstream's ConfigException wording
/// ("Invalid value X for configuration Y: reason") because admin tools print it verbatim.</summary>
public sealed class ConfigValueException(string message) : Exception(message)
{
    public static ConfigValueException Invalid(string name, string value, string reason) =>
        new($"Invalid value {value} for configuration {name}: {reason}");
}

/// <summary>A config value checker run after parsing; returns null when valid, else the reason.</summary>
public delegate string? ConfigValidator(object parsed);

/// <summary>One config key: upstream's name, type and default (as upstream would print it).</summary>
public sealed class ConfigDefinition
{
    public string Name { get; }
    public ConfigType Type { get; }
    /// <summary>Default in string form; null when upstream has no default (the key is then unset).</summary>
    public string? Default { get; }
    public ConfigValidator? Validator { get; }
    /// <summary>Broker keys only: changeable through AlterConfigs without a restart.</summary>
    public bool Dynamic { get; }

    public ConfigDefinition(string name, ConfigType type, string? defaultValue, ConfigValidator? validator = null, bool dynamic = false)
    {
        Name = name; Type = type; Default = defaultValue; Validator = validator; Dynamic = dynamic;
    }

    /// <summary>Upstream treats passwords (and keys of unknown type) as sensitive: value reported as null.</summary>
    public bool Sensitive => Type == ConfigType.Password;

    /// <summary>Parses and validates, as ConfigDef.parseType then the key's validator do.</summary>
    public object Parse(string value)
    {
        var parsed = ParseType(Name, value, Type);
        if (Validator is not null)
        {
            var problem = Validator(parsed);
            if (problem is not null) throw ConfigValueException.Invalid(Name, value, problem);
        }
        return parsed;
    }

    /// <summary>True when <paramref name="raw"/> means upstream's default (compared as parsed and
    /// printed: "1000" and " 1000 " alike); a null default matches only an empty value. A value that
    /// does not parse counts as default (the key's own check reports it).</summary>
    public bool IsDefault(string raw)
    {
        if (Default is null) return raw.Trim().Length == 0;
        try { return Format(Parse(raw)) == Format(Parse(Default)); }
        catch (ConfigValueException) { return true; }
    }

    public static object ParseType(string name, string value, ConfigType type)
    {
        var trimmed = value.Trim();
        switch (type)
        {
            case ConfigType.Boolean:
                if (trimmed.Equals("true", StringComparison.OrdinalIgnoreCase)) return true;
                if (trimmed.Equals("false", StringComparison.OrdinalIgnoreCase)) return false;
                throw ConfigValueException.Invalid(name, value, "Expected value to be either true or false");
            case ConfigType.String:
            case ConfigType.Password:
            case ConfigType.Class:
                return trimmed;
            case ConfigType.Int:
                return int.TryParse(trimmed, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var i)
                    ? i : throw ConfigValueException.Invalid(name, value, "Not a number of type INT");
            case ConfigType.Short:
                return short.TryParse(trimmed, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var s)
                    ? s : throw ConfigValueException.Invalid(name, value, "Not a number of type SHORT");
            case ConfigType.Long:
                return long.TryParse(trimmed, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l)
                    ? l : throw ConfigValueException.Invalid(name, value, "Not a number of type LONG");
            case ConfigType.Double:
                return double.TryParse(trimmed, NumberStyles.Float, CultureInfo.InvariantCulture, out var d)
                    ? d : throw ConfigValueException.Invalid(name, value, "Not a number of type DOUBLE");
            case ConfigType.List:
                if (trimmed.Length == 0) return new List<string>();
                return trimmed.Split(',').Select(x => x.Trim()).ToList();
            default:
                return trimmed;
        }
    }

    /// <summary>The value as upstream's ConfigDef.convertToString prints it.</summary>
    public static string? Format(object? parsed) => parsed switch
    {
        null => null,
        bool b => b ? "true" : "false",
        double d => FormatDouble(d),
        List<string> list => string.Join(",", list),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => parsed.ToString(),
    };

    // Java's Double.toString always keeps a fractional part ("1.0", "0.5").
    private static string FormatDouble(double d)
    {
        var s = d.ToString("R", CultureInfo.InvariantCulture);
        return s.Contains('.') || s.Contains('E') || s.Contains("Infinity") || s.Contains("NaN") ? s : s + ".0";
    }

    // Validators, worded as upstream's ConfigDef validators.
    public static ConfigValidator AtLeast(long min) => o =>
        Convert.ToDouble(o, CultureInfo.InvariantCulture) < min ? $"Value must be at least {min}" : null;

    public static ConfigValidator Between(double min, double max) => o =>
    {
        var v = Convert.ToDouble(o, CultureInfo.InvariantCulture);
        if (v < min) return $"Value must be at least {FormatNumber(min)}";
        if (v > max) return $"Value must be no more than {FormatNumber(max)}";
        return null;
    };

    private static string FormatNumber(double v) =>
        v == Math.Floor(v) ? ((long)v).ToString(CultureInfo.InvariantCulture) : v.ToString(CultureInfo.InvariantCulture);

    public static ConfigValidator OneOf(params string[] allowed) => o =>
        allowed.Contains((string)o, StringComparer.Ordinal) ? null : $"String must be one of: {string.Join(", ", allowed)}";

    public static ConfigValidator ListOf(params string[] allowed) => o =>
    {
        foreach (var item in (List<string>)o)
            if (!allowed.Contains(item, StringComparer.Ordinal))
                return $"String must be one of: {string.Join(", ", allowed)}";
        return null;
    };
}
