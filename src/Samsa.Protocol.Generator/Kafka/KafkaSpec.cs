using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;

namespace Samsa.Protocol.Generator.Kafka;

/// <summary>
/// A closed range of message versions as written in Kafka's schemas: "3+", "0-2", "5", "none".
/// </summary>
internal readonly struct Versions
{
    public const short Unbounded = short.MaxValue;

    public Versions(short lowest, short highest)
    {
        Lowest = lowest;
        Highest = highest;
    }

    public short Lowest { get; }

    public short Highest { get; }

    public static Versions None => new(1, 0);

    public static Versions All => new(0, Unbounded);

    public bool IsEmpty => Lowest > Highest;

    public bool Contains(short v) => v >= Lowest && v <= Highest;

    public bool Contains(Versions other) => other.IsEmpty || (!IsEmpty && other.Lowest >= Lowest && other.Highest <= Highest);

    public Versions Intersect(Versions other)
    {
        if (IsEmpty || other.IsEmpty) return None;
        var lo = Math.Max(Lowest, other.Lowest);
        var hi = Math.Min(Highest, other.Highest);
        return lo > hi ? None : new Versions(lo, hi);
    }

    public static Versions Parse(string text, int line, string what)
    {
        var s = text.Trim();
        if (s == "none") return None;
        try
        {
            if (s.EndsWith("+", StringComparison.Ordinal))
                return new Versions(ParseOne(s.Substring(0, s.Length - 1)), Unbounded);
            int dash = s.IndexOf('-');
            if (dash > 0)
            {
                var lo = ParseOne(s.Substring(0, dash));
                var hi = ParseOne(s.Substring(dash + 1));
                if (lo > hi) throw new SpecException($"{what}: empty range \"{text}\"", line);
                return new Versions(lo, hi);
            }
            var v = ParseOne(s);
            return new Versions(v, v);
        }
        catch (FormatException)
        {
            throw new SpecException($"{what}: bad version range \"{text}\"", line);
        }
    }

    private static short ParseOne(string s)
    {
        if (!short.TryParse(s.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out short v) || v == Unbounded)
            throw new FormatException();
        return v;
    }

    public override string ToString() => IsEmpty ? "none" : Highest == Unbounded ? $"{Lowest}+" : $"{Lowest}-{Highest}";
}

internal enum TypeKind { Bool, Int8, Int16, UInt16, Int32, UInt32, Int64, Float64, String, Uuid, Bytes, Records, Struct, Array }

internal sealed class FieldType
{
    public FieldType(TypeKind kind) => Kind = kind;

    public TypeKind Kind { get; }

    public FieldType? Element { get; set; }

    /// <summary>For Struct: the schema's struct name.</summary>
    public string? StructName { get; set; }

    public StructSpec? Struct { get; set; }

    public bool IsPrimitiveFixed => FixedSize > 0;

    /// <summary>Encoded size of fixed-size kinds, 0 otherwise.</summary>
    public int FixedSize => Kind switch
    {
        TypeKind.Bool or TypeKind.Int8 => 1,
        TypeKind.Int16 or TypeKind.UInt16 => 2,
        TypeKind.Int32 or TypeKind.UInt32 => 4,
        TypeKind.Int64 or TypeKind.Float64 => 8,
        TypeKind.Uuid => 16,
        _ => 0,
    };

    /// <summary>Kinds that can hold null on the wire (in nullableVersions).</summary>
    public bool CanBeNullable => Kind is TypeKind.String or TypeKind.Bytes or TypeKind.Records or TypeKind.Array or TypeKind.Struct;

    public static FieldType? Primitive(string name) => name switch
    {
        "bool" => new FieldType(TypeKind.Bool),
        "int8" => new FieldType(TypeKind.Int8),
        "int16" => new FieldType(TypeKind.Int16),
        "uint16" => new FieldType(TypeKind.UInt16),
        "int32" => new FieldType(TypeKind.Int32),
        "uint32" => new FieldType(TypeKind.UInt32),
        "int64" => new FieldType(TypeKind.Int64),
        "float64" => new FieldType(TypeKind.Float64),
        "string" => new FieldType(TypeKind.String),
        "uuid" => new FieldType(TypeKind.Uuid),
        "bytes" => new FieldType(TypeKind.Bytes),
        "records" => new FieldType(TypeKind.Records),
        _ => null,
    };
}

internal sealed class FieldSpec
{
    public string Name = "";
    public string PropertyName = "";
    public FieldType Type = new(TypeKind.Int32);
    public Versions Versions;
    public Versions NullableVersions = Versions.None;
    public Versions TaggedVersions = Versions.None;
    public int? Tag;
    /// <summary>The spec's default text, or null when none was given.</summary>
    public string? Default;
    public bool Ignorable;
    /// <summary>Field-level override of the message's flexible versions (e.g. RequestHeader.ClientId = "none").</summary>
    public Versions? FlexibleVersions;
    public int Line;

    /// <summary>Versions where the field is written in place (present and not tagged).</summary>
    public Versions InlineVersions(Versions valid)
    {
        // Inline = present minus tagged; tagged versions are a suffix ("N+") or a sub-range in practice.
        var present = Versions.Intersect(valid);
        var tagged = TaggedVersions.Intersect(present);
        if (tagged.IsEmpty) return present;
        if (tagged.Lowest <= present.Lowest && tagged.Highest >= present.Highest) return Versions.None;
        if (tagged.Lowest <= present.Lowest) return new Versions((short)(tagged.Highest + 1), present.Highest);
        if (tagged.Highest >= present.Highest) return new Versions(present.Lowest, (short)(tagged.Lowest - 1));
        throw new SpecException($"field {Name}: taggedVersions {TaggedVersions} split its versions {Versions} in two, which is not supported", Line);
    }

    public bool DefaultIsNull => Default == "null";
}

internal sealed class StructSpec
{
    public string Name = "";
    public string ClassName = "";
    public List<FieldSpec> Fields = new();
    public Versions Versions;
    public int Line;
}

internal sealed class MessageSpec
{
    public string Name = "";
    public string Type = "";
    public short ApiKey = -1;
    public Versions ValidVersions;
    public Versions FlexibleVersions;
    public List<FieldSpec> Fields = new();
    /// <summary>All nested and common structs, flattened (they all become nested classes of the message class).</summary>
    public List<StructSpec> Structs = new();
    public string Path = "";
}

/// <summary>Turns a parsed JSON schema into a validated <see cref="MessageSpec"/>; throws <see cref="SpecException"/>.</summary>
internal static class SpecParser
{
    // Member names the generated message class defines itself.
    private static readonly HashSet<string> ReservedMessageMembers = new(StringComparer.Ordinal)
    {
        "ApiKey", "LowestSupportedVersion", "HighestSupportedVersion", "LowestFlexibleVersion", "Read", "Write", "Size", "IsAllDefault", "Accept",
    };

    private static readonly HashSet<string> ReservedStructMembers = new(StringComparer.Ordinal) { "Read", "Write", "Size", "IsAllDefault", "Accept" };

    public static MessageSpec Parse(string text, string path)
    {
        var root = MiniJson.Parse(text);
        var obj = root.AsObject ?? throw new SpecException("the top-level value must be an object", root.Line);
        var msg = new MessageSpec { Path = path };
        msg.Name = RequireString(obj, "name", root.Line);
        if (!IsIdentifier(msg.Name)) throw new SpecException($"message name \"{msg.Name}\" is not a valid identifier", root.Line);
        msg.Type = RequireString(obj, "type", root.Line);
        if (msg.Type is not ("request" or "response" or "header" or "data" or "metadata" or "coordinator-key" or "coordinator-value"))
            throw new SpecException($"unknown message type \"{msg.Type}\"", obj["type"].Line);
        if (obj.TryGetValue("apiKey", out var apiKeyNode))
        {
            if (apiKeyNode.Value is not double d || d < 0 || d > short.MaxValue || d != Math.Floor(d))
                throw new SpecException("apiKey must be a non-negative int16", apiKeyNode.Line);
            msg.ApiKey = (short)d;
        }
        else if (msg.Type is "request" or "response")
        {
            throw new SpecException($"{msg.Type} \"{msg.Name}\" has no apiKey", root.Line);
        }
        msg.ValidVersions = Versions.Parse(RequireString(obj, "validVersions", root.Line), obj["validVersions"].Line, "validVersions");
        if (msg.ValidVersions.IsEmpty || msg.ValidVersions.Highest == Versions.Unbounded)
            throw new SpecException("validVersions must be a bounded, non-empty range", obj["validVersions"].Line);
        msg.FlexibleVersions = obj.TryGetValue("flexibleVersions", out var fv)
            ? Versions.Parse(AsString(fv, "flexibleVersions"), fv.Line, "flexibleVersions")
            : Versions.None;
        if (!msg.FlexibleVersions.IsEmpty && msg.FlexibleVersions.Highest != Versions.Unbounded)
            throw new SpecException("flexibleVersions must be open-ended (\"N+\") or \"none\"", fv!.Line);

        var structsByName = new Dictionary<string, StructSpec>(StringComparer.Ordinal);
        var pendingRefs = new List<(FieldType Type, int Line)>();

        if (!obj.TryGetValue("fields", out var fieldsNode)) throw new SpecException("missing \"fields\"", root.Line);
        msg.Fields = ParseFields(fieldsNode, msg, structsByName, pendingRefs, msg.ValidVersions);

        if (obj.TryGetValue("commonStructs", out var commonNode))
        {
            var list = commonNode.AsArray ?? throw new SpecException("commonStructs must be an array", commonNode.Line);
            foreach (var cs in list)
            {
                var cobj = cs.AsObject ?? throw new SpecException("a common struct must be an object", cs.Line);
                var name = RequireString(cobj, "name", cs.Line);
                var versions = cobj.TryGetValue("versions", out var vn) ? Versions.Parse(AsString(vn, "versions"), vn.Line, "versions") : Versions.All;
                if (!cobj.TryGetValue("fields", out var cf)) throw new SpecException($"common struct {name} has no fields", cs.Line);
                var st = new StructSpec { Name = name, Versions = versions, Line = cs.Line };
                Register(structsByName, msg, st);
                st.Fields = ParseFields(cf, msg, structsByName, pendingRefs, versions);
            }
        }

        foreach (var (type, line) in pendingRefs)
        {
            if (!structsByName.TryGetValue(type.StructName!, out var st))
                throw new SpecException($"unknown type \"{type.StructName}\" (not a primitive, inline struct or common struct)", line);
            type.Struct = st;
        }

        AssignClassNames(msg);
        Validate(msg);
        return msg;
    }

    private static void Register(Dictionary<string, StructSpec> structs, MessageSpec msg, StructSpec st)
    {
        if (!IsIdentifier(st.Name)) throw new SpecException($"struct name \"{st.Name}\" is not a valid identifier", st.Line);
        if (structs.ContainsKey(st.Name)) throw new SpecException($"struct {st.Name} is defined more than once", st.Line);
        structs[st.Name] = st;
        msg.Structs.Add(st);
    }

    private static List<FieldSpec> ParseFields(JsonNode node, MessageSpec msg, Dictionary<string, StructSpec> structs,
        List<(FieldType, int)> pendingRefs, Versions parentVersions)
    {
        var list = node.AsArray ?? throw new SpecException("\"fields\" must be an array", node.Line);
        var result = new List<FieldSpec>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var fnode in list)
        {
            var fobj = fnode.AsObject ?? throw new SpecException("a field must be an object", fnode.Line);
            var f = new FieldSpec { Line = fnode.Line };
            f.Name = RequireString(fobj, "name", fnode.Line);
            if (!IsIdentifier(f.Name)) throw new SpecException($"field name \"{f.Name}\" is not a valid identifier", fnode.Line);
            f.PropertyName = char.ToUpperInvariant(f.Name[0]) + f.Name.Substring(1);
            if (!names.Add(f.PropertyName)) throw new SpecException($"field {f.Name} is defined twice", fnode.Line);
            var typeText = RequireString(fobj, "type", fnode.Line);
            f.Versions = Versions.Parse(RequireString(fobj, "versions", fnode.Line), fnode.Line, $"field {f.Name} versions");
            if (fobj.TryGetValue("nullableVersions", out var nv)) f.NullableVersions = Versions.Parse(AsString(nv, "nullableVersions"), nv.Line, $"field {f.Name} nullableVersions");
            if (fobj.TryGetValue("taggedVersions", out var tv)) f.TaggedVersions = Versions.Parse(AsString(tv, "taggedVersions"), tv.Line, $"field {f.Name} taggedVersions");
            if (fobj.TryGetValue("flexibleVersions", out var ffv)) f.FlexibleVersions = Versions.Parse(AsString(ffv, "flexibleVersions"), ffv.Line, $"field {f.Name} flexibleVersions");
            if (fobj.TryGetValue("tag", out var tagNode))
            {
                // Upstream accepts the tag as a number or a numeric string ("tag": "0").
                double t = tagNode.Value switch
                {
                    double d => d,
                    string s when int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out int parsed) => parsed,
                    _ => -1,
                };
                if (t < 0 || t > int.MaxValue || t != Math.Floor(t))
                    throw new SpecException($"field {f.Name}: tag must be a non-negative integer", tagNode.Line);
                f.Tag = (int)t;
            }
            if (fobj.TryGetValue("ignorable", out var ign))
            {
                if (ign.Value is not bool b) throw new SpecException($"field {f.Name}: ignorable must be true or false", ign.Line);
                f.Ignorable = b;
            }
            if (fobj.TryGetValue("default", out var def))
            {
                f.Default = def.Value switch
                {
                    string s => s,
                    bool b => b ? "true" : "false",
                    double d => d.ToString("R", CultureInfo.InvariantCulture),
                    null => "null",
                    _ => throw new SpecException($"field {f.Name}: default must be a string, number or boolean", def.Line),
                };
            }

            bool isArray = typeText.StartsWith("[]", StringComparison.Ordinal);
            string baseName = isArray ? typeText.Substring(2) : typeText;
            FieldType? baseType = FieldType.Primitive(baseName);
            bool hasFields = fobj.TryGetValue("fields", out var subFields);
            if (baseType is null)
            {
                if (!IsIdentifier(baseName)) throw new SpecException($"field {f.Name}: bad type \"{typeText}\"", fnode.Line);
                baseType = new FieldType(TypeKind.Struct) { StructName = baseName };
                if (hasFields)
                {
                    var st = new StructSpec { Name = baseName, Versions = f.Versions, Line = fnode.Line };
                    Register(structs, msg, st);
                    st.Fields = ParseFields(subFields!, msg, structs, pendingRefs, f.Versions);
                    baseType.Struct = st;
                }
                else
                {
                    pendingRefs.Add((baseType, fnode.Line));
                }
            }
            else if (hasFields)
            {
                throw new SpecException($"field {f.Name}: primitive type {baseName} cannot have \"fields\"", fnode.Line);
            }
            if (isArray)
            {
                if (baseType.Kind == TypeKind.Records) throw new SpecException($"field {f.Name}: arrays of records are not supported", fnode.Line);
                f.Type = new FieldType(TypeKind.Array) { Element = baseType };
            }
            else
            {
                f.Type = baseType;
            }
            result.Add(f);
        }
        return result;
    }

    /// <summary>
    /// Nested classes are named after the schema's struct type. When that name is already taken
    /// inside the message class by a property (DescribeTopicPartitionsRequest.Cursor) or is the
    /// name of one of the struct's own fields (a C# member may not share its class's name), the
    /// class gets a "Data" suffix instead.
    /// </summary>
    private static void AssignClassNames(MessageSpec msg)
    {
        // A field named like a generated member (FetchSnapshotResponse's PartitionSnapshot.Size)
        // gets a "Value" suffix on its property, since a property cannot share a method's name.
        foreach (var f in msg.Fields)
            if (ReservedMessageMembers.Contains(f.PropertyName)) f.PropertyName += "Value";
        foreach (var st in msg.Structs)
            foreach (var f in st.Fields)
                if (ReservedStructMembers.Contains(f.PropertyName)) f.PropertyName += "Value";

        var taken = new HashSet<string>(msg.Fields.Select(f => f.PropertyName), StringComparer.Ordinal) { msg.Name };
        taken.UnionWith(ReservedMessageMembers);
        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (var st in msg.Structs)
        {
            var ownFields = new HashSet<string>(st.Fields.Select(f => f.PropertyName), StringComparer.Ordinal);
            var name = st.Name;
            while (taken.Contains(name) || ownFields.Contains(name) || used.Contains(name)) name += "Data";
            st.ClassName = name;
            used.Add(name);
        }
    }

    private static void Validate(MessageSpec msg)
    {
        ValidateFields(msg, msg.Fields, msg.Name);
        foreach (var st in msg.Structs) ValidateFields(msg, st.Fields, st.Name);
    }

    private static void ValidateFields(MessageSpec msg, List<FieldSpec> fields, string owner)
    {
        var tags = new HashSet<int>();
        foreach (var f in fields)
        {
            string where = $"{owner}.{f.Name}";
            if (!f.NullableVersions.IsEmpty && !f.Type.CanBeNullable)
                throw new SpecException($"{where}: nullableVersions is not allowed for type {f.Type.Kind}", f.Line);
            if (f.Tag.HasValue != !f.TaggedVersions.IsEmpty)
                throw new SpecException($"{where}: \"tag\" and \"taggedVersions\" must be given together", f.Line);
            if (f.Tag.HasValue)
            {
                if (!tags.Add(f.Tag.Value)) throw new SpecException($"{where}: tag {f.Tag} is used twice", f.Line);
                if (!msg.FlexibleVersions.Contains(f.TaggedVersions.Intersect(msg.ValidVersions)))
                    throw new SpecException($"{where}: taggedVersions {f.TaggedVersions} must lie within flexibleVersions {msg.FlexibleVersions}", f.Line);
                if (!f.Versions.Contains(f.TaggedVersions))
                    throw new SpecException($"{where}: taggedVersions {f.TaggedVersions} must lie within versions {f.Versions}", f.Line);
                if (f.Type.Kind == TypeKind.Records)
                    throw new SpecException($"{where}: records cannot be a tagged field", f.Line);
            }
            f.InlineVersions(msg.ValidVersions); // throws for unsupported splits
            if (f.FlexibleVersions.HasValue && f.Type.Kind is not (TypeKind.String or TypeKind.Bytes))
                throw new SpecException($"{where}: field-level flexibleVersions is only allowed for string and bytes", f.Line);
            if (f.Default != null) ValidateDefault(f, where);
        }
    }

    private static void ValidateDefault(FieldSpec f, string where)
    {
        var d = f.Default!;
        switch (f.Type.Kind)
        {
            case TypeKind.Bool:
                if (d != "true" && d != "false") throw new SpecException($"{where}: bool default must be true or false, not \"{d}\"", f.Line);
                break;
            case TypeKind.Int8: CheckInteger(d, sbyte.MinValue, sbyte.MaxValue, where, f.Line); break;
            case TypeKind.Int16: CheckInteger(d, short.MinValue, short.MaxValue, where, f.Line); break;
            case TypeKind.UInt16: CheckInteger(d, ushort.MinValue, ushort.MaxValue, where, f.Line); break;
            case TypeKind.Int32: CheckInteger(d, int.MinValue, int.MaxValue, where, f.Line); break;
            case TypeKind.UInt32: CheckInteger(d, uint.MinValue, uint.MaxValue, where, f.Line); break;
            case TypeKind.Int64: CheckInteger(d, long.MinValue, long.MaxValue, where, f.Line); break;
            case TypeKind.Float64:
                if (!double.TryParse(d, NumberStyles.Float, CultureInfo.InvariantCulture, out _))
                    throw new SpecException($"{where}: bad float64 default \"{d}\"", f.Line);
                break;
            case TypeKind.String:
                if (d == "null") CheckNullDefault(f, where);
                break;
            case TypeKind.Uuid:
                if (d.Length != 0 && ParseUuidDefault(d) is null)
                    throw new SpecException($"{where}: uuid default must be empty or a base64 (Kafka-style) or hyphenated UUID", f.Line);
                break;
            default:
                if (d == "null")
                {
                    CheckNullDefault(f, where);
                }
                else if (d.Length != 0)
                {
                    throw new SpecException($"{where}: a {f.Type.Kind} field may only default to null or empty", f.Line);
                }
                break;
        }
    }

    // As upstream's FieldSpec: a null default must be encodable in every version of the field.
    private static void CheckNullDefault(FieldSpec f, string where)
    {
        if (!f.NullableVersions.Contains(f.Versions))
            throw new SpecException($"{where}: null cannot be the default because not all versions {f.Versions} are nullable ({f.NullableVersions})", f.Line);
    }

    public static Guid? ParseUuidDefault(string d)
    {
        if (Guid.TryParse(d, out var g)) return g;
        try
        {
            // Kafka prints UUIDs as url-safe base64 without padding (22 characters).
            var b64 = d.Replace('-', '+').Replace('_', '/');
            while (b64.Length % 4 != 0) b64 += "=";
            var bytes = Convert.FromBase64String(b64);
            if (bytes.Length != 16) return null;
            // Big-endian bytes → Guid text form.
            var hex = BitConverter.ToString(bytes).Replace("-", "");
            return Guid.ParseExact(hex, "N");
        }
        catch (FormatException)
        {
            return null;
        }
    }

    /// <summary>Parses an integer default: decimal or 0x-prefixed hexadecimal, optionally negative.</summary>
    public static bool TryParseInteger(string text, out decimal value)
    {
        value = 0;
        var s = text.Trim();
        bool negative = s.StartsWith("-", StringComparison.Ordinal);
        if (negative) s = s.Substring(1);
        if (s.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
        {
            if (!ulong.TryParse(s.Substring(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ulong hex)) return false;
            value = hex;
        }
        else
        {
            if (!ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out ulong dec)) return false;
            value = dec;
        }
        if (negative) value = -value;
        return true;
    }

    private static void CheckInteger(string d, decimal min, decimal max, string where, int line)
    {
        if (!TryParseInteger(d, out var v) || v < min || v > max)
            throw new SpecException($"{where}: default \"{d}\" is not a valid integer in [{min}, {max}]", line);
    }

    private static string RequireString(Dictionary<string, JsonNode> obj, string key, int line)
    {
        if (!obj.TryGetValue(key, out var node)) throw new SpecException($"missing \"{key}\"", line);
        return AsString(node, key);
    }

    private static string AsString(JsonNode node, string key) =>
        node.Value as string ?? throw new SpecException($"\"{key}\" must be a string", node.Line);

    public static bool IsIdentifier(string s)
    {
        if (string.IsNullOrEmpty(s) || !(char.IsLetter(s[0]) || s[0] == '_')) return false;
        foreach (var c in s) if (!(char.IsLetterOrDigit(c) || c == '_')) return false;
        return true;
    }
}
