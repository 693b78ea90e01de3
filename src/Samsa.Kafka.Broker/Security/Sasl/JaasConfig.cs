using System.Text;

namespace Samsa.Kafka.Broker.Security.Sasl;

/// <summary>One login module entry of a JAAS configuration:
/// <c>org.apache.kafka.common.security.plain.PlainLoginModule required username="a" password="b";</c></summary>
public sealed record JaasLoginModule(string ClassName, string Flag, IReadOnlyDictionary<string, string> Options)
{
    public string? Option(string name) => Options.TryGetValue(name, out var v) ? v : null;
}

/// <summary>
/// A small parser for the JAAS configuration syntax Kafka uses: a file of named sections
/// (<c>KafkaServer { module flag key="value" ...; };</c>, also <c>sasl_ssl.KafkaServer</c> per
/// listener) as given by <c>-Djava.security.auth.login.config</c>, and the inline form of
/// <c>sasl.jaas.config</c> (one or more modules without a section). Comments (<c>//</c>, <c>/* */</c>)
/// are skipped; values are double-quoted strings or bare words, as Java's ConfigFile accepts.
/// </summary>
public static class JaasConfig
{
    public const string FileProperty = "java.security.auth.login.config";

    /// <summary>Sections of a JAAS file by name (case-sensitive, as Java's ConfigFile).</summary>
    public static Dictionary<string, List<JaasLoginModule>> ParseFile(string text)
    {
        var lexer = new Lexer(text);
        var sections = new Dictionary<string, List<JaasLoginModule>>(StringComparer.Ordinal);
        while (lexer.Peek() is not null)
        {
            string name = lexer.Word("section name");
            lexer.Expect('{');
            var modules = new List<JaasLoginModule>();
            while (lexer.Peek() != "}") modules.Add(ParseModule(lexer));
            lexer.Expect('}');
            lexer.Expect(';');
            sections[name] = modules;
        }
        return sections;
    }

    /// <summary>The inline form (sasl.jaas.config): one or more modules, each ending with ';'.
    /// Upstream's JaasConfig requires exactly one module for Kafka's login modules.</summary>
    public static List<JaasLoginModule> ParseInline(string text)
    {
        var lexer = new Lexer(text);
        var modules = new List<JaasLoginModule>();
        while (lexer.Peek() is not null) modules.Add(ParseModule(lexer));
        if (modules.Count == 0) throw new FormatException("JAAS config entry not terminated by semi-colon");
        return modules;
    }

    private static JaasLoginModule ParseModule(Lexer lexer)
    {
        string className = lexer.Word("login module class");
        string flag = lexer.Word("control flag");
        if (flag is not ("required" or "requisite" or "sufficient" or "optional"))
            throw new FormatException($"Invalid JAAS control flag '{flag}' for {className}");
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        while (lexer.Peek() != ";")
        {
            if (lexer.Peek() is null) throw new FormatException("JAAS config entry not terminated by semi-colon");
            string key = lexer.Word("option name");
            lexer.Expect('=');
            options[key] = lexer.Value();
        }
        lexer.Expect(';');
        return new JaasLoginModule(className, flag, options);
    }

    /// <summary>The JAAS file named by <c>-Djava.security.auth.login.config=PATH</c> in KAFKA_OPTS, as
    /// kafka-run-class.sh passes KAFKA_OPTS to the JVM; null when absent.</summary>
    public static string? LoginConfigFromKafkaOpts(string? kafkaOpts)
    {
        if (string.IsNullOrWhiteSpace(kafkaOpts)) return null;
        const string flag = "-D" + FileProperty + "=";
        string? found = null;
        foreach (var raw in kafkaOpts.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))
        {
            var arg = raw.Trim('"', '\'');
            // The JVM lets the last -D of a property win.
            if (arg.StartsWith(flag, StringComparison.Ordinal)) found = arg[flag.Length..].Trim('"', '\'');
        }
        return found is { Length: > 0 } ? found : null;
    }

    private sealed class Lexer(string text)
    {
        private int _pos;

        private void SkipSpaceAndComments()
        {
            while (_pos < text.Length)
            {
                if (char.IsWhiteSpace(text[_pos])) { _pos++; continue; }
                if (text[_pos] == '/' && _pos + 1 < text.Length && text[_pos + 1] == '/')
                {
                    while (_pos < text.Length && text[_pos] != '\n') _pos++;
                    continue;
                }
                if (text[_pos] == '/' && _pos + 1 < text.Length && text[_pos + 1] == '*')
                {
                    int end = text.IndexOf("*/", _pos + 2, StringComparison.Ordinal);
                    _pos = end < 0 ? text.Length : end + 2;
                    continue;
                }
                break;
            }
        }

        /// <summary>The next token's first character as a string ("{", ";", a word's start), or null at the end.</summary>
        public string? Peek()
        {
            SkipSpaceAndComments();
            return _pos < text.Length ? text[_pos].ToString() : null;
        }

        public void Expect(char c)
        {
            SkipSpaceAndComments();
            if (_pos >= text.Length || text[_pos] != c)
                throw new FormatException($"JAAS config: expected '{c}' at offset {_pos}");
            _pos++;
        }

        private static bool IsWordChar(char c) => !char.IsWhiteSpace(c) && c is not ('{' or '}' or ';' or '=' or '"');

        public string Word(string what)
        {
            SkipSpaceAndComments();
            int start = _pos;
            while (_pos < text.Length && IsWordChar(text[_pos])) _pos++;
            if (_pos == start) throw new FormatException($"JAAS config: expected {what} at offset {start}");
            return text[start.._pos];
        }

        public string Value()
        {
            SkipSpaceAndComments();
            if (_pos < text.Length && text[_pos] == '"')
            {
                var sb = new StringBuilder();
                _pos++;
                while (_pos < text.Length && text[_pos] != '"')
                {
                    // Java's StreamTokenizer takes a backslash as an escape of the next character.
                    if (text[_pos] == '\\' && _pos + 1 < text.Length) _pos++;
                    sb.Append(text[_pos++]);
                }
                if (_pos >= text.Length) throw new FormatException("JAAS config: unterminated quoted value");
                _pos++;
                return sb.ToString();
            }
            return Word("option value");
        }
    }
}
