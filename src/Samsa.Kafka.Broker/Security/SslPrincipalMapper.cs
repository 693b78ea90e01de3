using System.Formats.Asn1;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.RegularExpressions;
using Samsa.Kafka.Broker.Config;

namespace Samsa.Kafka.Broker.Security;

/// <summary>
/// The principal of a TLS client with a certificate, as upstream's DefaultKafkaPrincipalBuilder
/// builds it: the certificate's subject in RFC 2253 form (Java's X500Principal.getName()), then
/// mapped by <c>ssl.principal.mapping.rules</c> (SslPrincipalMapper): a comma-separated list of
/// <c>DEFAULT</c> (the name unchanged) and <c>RULE:pattern/replacement/[LU]</c> entries; the first
/// rule whose pattern matches the whole name gives the principal (L lower-, U upper-cases it); a
/// name no rule matches fails the connection.
/// </summary>
public sealed class SslPrincipalMapper
{
    private readonly IReadOnlyList<Rule> _rules;

    private sealed record Rule(Regex? Pattern, string? Replacement, bool ToLower, bool ToUpper);

    private SslPrincipalMapper(IReadOnlyList<Rule> rules) => _rules = rules;

    // Upstream's RULE_SPLITTER: DEFAULT, or RULE:pattern/replacement/ with optional L or U, where
    // pattern and replacement may contain backslash-escaped characters (\/ for a slash).
    private static readonly Regex RuleSplitter = new(
        @"\s*(DEFAULT|RULE:((\\.|[^\\/])*)/((\\.|[^\\/])*)/([LU]?).*?|(.*?))\s*([,\n]\s*|$)",
        RegexOptions.CultureInvariant);

    public static SslPrincipalMapper Parse(string? rules)
    {
        var list = new List<Rule>();
        string text = string.IsNullOrWhiteSpace(rules) ? "DEFAULT" : rules.Trim();
        int position = 0;
        while (position < text.Length)
        {
            var m = RuleSplitter.Match(text, position);
            if (!m.Success || m.Index != position || m.Length == 0)
                throw new ConfigValueException($"Invalid value {rules} for configuration ssl.principal.mapping.rules: Invalid rule: {text[position..]}");
            position += m.Length;
            if (m.Groups[7].Success && m.Groups[7].Value.Length > 0)
                throw new ConfigValueException($"Invalid value {rules} for configuration ssl.principal.mapping.rules: Invalid rule: {m.Groups[7].Value}");
            if (m.Groups[1].Value == "DEFAULT")
            {
                list.Add(new Rule(null, null, false, false));
                continue;
            }
            if (!m.Groups[2].Success) continue; // an empty entry between commas
            Regex pattern;
            try
            {
                pattern = new Regex(@"\A(?:" + m.Groups[2].Value + @")\z", RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
            }
            catch (ArgumentException e)
            {
                throw new ConfigValueException($"Invalid value {rules} for configuration ssl.principal.mapping.rules: {e.Message}");
            }
            // Java's replacement syntax: \x is a literal x, $n a group — .NET takes $n the same way.
            string replacement = Regex.Replace(m.Groups[4].Value, @"\\(.)", "$1");
            list.Add(new Rule(pattern, replacement, m.Groups[6].Value == "L", m.Groups[6].Value == "U"));
        }
        if (list.Count == 0) list.Add(new Rule(null, null, false, false));
        return new SslPrincipalMapper(list);
    }

    /// <summary>The principal name for a distinguished name, or null when no rule matches
    /// (upstream: NoMatchingRule, the connection fails).</summary>
    public string? Map(string distinguishedName)
    {
        foreach (var rule in _rules)
        {
            if (rule.Pattern is null) return distinguishedName;
            if (!rule.Pattern.IsMatch(distinguishedName)) continue;
            string result = rule.Pattern.Replace(distinguishedName, rule.Replacement!, 1);
            if (rule.ToLower) result = result.ToLowerInvariant();
            else if (rule.ToUpper) result = result.ToUpperInvariant();
            return result;
        }
        return null;
    }

    // ---------------------------------------------------------------- RFC 2253

    private static readonly Dictionary<string, string> Keywords = new(StringComparer.Ordinal)
    {
        ["2.5.4.3"] = "CN", ["2.5.4.6"] = "C", ["2.5.4.7"] = "L", ["2.5.4.8"] = "ST", ["2.5.4.10"] = "O",
        ["2.5.4.11"] = "OU", ["2.5.4.9"] = "STREET", ["0.9.2342.19200300.100.1.25"] = "DC",
        ["0.9.2342.19200300.100.1.1"] = "UID",
    };

    /// <summary>
    /// The name as Java's X500Principal.getName() (RFC 2253) prints it: most specific RDN first,
    /// comma-separated without spaces, the RFC 2253 keywords (CN, C, L, ST, O, OU, STREET, DC, UID)
    /// by name and other attributes as dotted OIDs with a #hex DER value, special characters escaped.
    /// </summary>
    public static string Rfc2253(X500DistinguishedName name)
    {
        var rdns = new List<string>();
        var reader = new AsnReader(name.RawData, AsnEncodingRules.DER);
        var sequence = reader.ReadSequence();
        while (sequence.HasData)
        {
            var set = sequence.ReadSetOf();
            var parts = new List<string>();
            while (set.HasData)
            {
                var attribute = set.ReadSequence();
                string oid = attribute.ReadObjectIdentifier();
                ReadOnlyMemory<byte> encoded = attribute.ReadEncodedValue();
                parts.Add(Keywords.TryGetValue(oid, out var keyword) && TryReadString(encoded, out var text)
                    ? keyword + "=" + Escape(text)
                    : oid + "=#" + Convert.ToHexStringLower(encoded.Span));
            }
            rdns.Add(string.Join("+", parts));
        }
        rdns.Reverse();
        return string.Join(",", rdns);
    }

    private static bool TryReadString(ReadOnlyMemory<byte> encoded, out string text)
    {
        text = "";
        try
        {
            var reader = new AsnReader(encoded, AsnEncodingRules.BER);
            Asn1Tag tag = reader.PeekTag();
            if (tag.TagClass != TagClass.Universal) return false;
            var kind = (UniversalTagNumber)tag.TagValue;
            if (kind is not (UniversalTagNumber.UTF8String or UniversalTagNumber.PrintableString or UniversalTagNumber.IA5String
                or UniversalTagNumber.T61String or UniversalTagNumber.BMPString or UniversalTagNumber.UniversalString
                or UniversalTagNumber.VisibleString)) return false;
            text = reader.ReadCharacterString(kind);
            return true;
        }
        catch (Exception e) when (e is AsnContentException or ArgumentException)
        {
            return false;
        }
    }

    private static string Escape(string value)
    {
        var sb = new StringBuilder(value.Length + 4);
        for (int i = 0; i < value.Length; i++)
        {
            char c = value[i];
            bool escape = c is ',' or '+' or '"' or '\\' or '<' or '>' or ';'
                || (i == 0 && (c == '#' || c == ' '))
                || (i == value.Length - 1 && c == ' ');
            if (escape) sb.Append('\\');
            sb.Append(c);
        }
        return sb.ToString();
    }
}
