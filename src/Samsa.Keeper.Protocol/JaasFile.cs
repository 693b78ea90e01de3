using System.Text;

namespace Samsa.Keeper.Protocol;

/// <summary>A JAAS login configuration file as javax.security.auth.login.ConfigFile reads it:
/// named sections of login module entries <c>Class flag key="value" ...;</c>. The Keeper reads
/// its <c>Server</c> section (DIGEST-MD5 users as <c>user_NAME="password"</c>, upstream
/// SaslServerCallbackHandler) and clients read <c>Client</c> (<c>username</c>/<c>password</c>,
/// upstream's DigestLoginModule). Comments (// and /* */) are skipped. Differs from upstream:
/// ${property} expansion is not done (the text is used as written).</summary>
public sealed class JaasFile
{
    public sealed record Entry(string LoginModule, string Flag, IReadOnlyDictionary<string, string> Options);

    public Dictionary<string, List<Entry>> Sections { get; } = new(StringComparer.Ordinal);

    public IReadOnlyList<Entry>? Section(string name) => Sections.TryGetValue(name, out var s) ? s : null;

    public static JaasFile Load(string path) => Parse(File.ReadAllText(path));

    /// <exception cref="FormatException">The text is not a JAAS configuration.</exception>
    public static JaasFile Parse(string text)
    {
        var tokens = Tokenize(text);
        var f = new JaasFile();
        int i = 0;
        string Next(string what)
        {
            if (i >= tokens.Count) throw new FormatException($"JAAS configuration ends where {what} was expected");
            return tokens[i++].Text;
        }
        void Expect(string t)
        {
            string got = Next("'" + t + "'");
            if (got != t) throw new FormatException($"JAAS configuration: expected '{t}' but found '{got}'");
        }
        while (i < tokens.Count)
        {
            string name = Next("a section name");
            Expect("{");
            var entries = new List<Entry>();
            while (i < tokens.Count && tokens[i].Text != "}")
            {
                string module = Next("a login module class");
                string flag = Next("a control flag");
                if (flag is not ("required" or "requisite" or "sufficient" or "optional"))
                    throw new FormatException($"JAAS configuration: invalid control flag '{flag}' for {module}");
                var opts = new Dictionary<string, string>(StringComparer.Ordinal);
                while (true)
                {
                    string k = Next("an option or ';'");
                    if (k == ";") break;
                    Expect("=");
                    if (i >= tokens.Count) throw new FormatException($"JAAS configuration: option {k} has no value");
                    opts[k] = tokens[i++].Text;
                }
                entries.Add(new Entry(module, flag, opts));
            }
            Expect("}");
            if (i < tokens.Count && tokens[i].Text == ";") i++;
            if (!f.Sections.TryGetValue(name, out var list)) f.Sections[name] = entries;
            else list.AddRange(entries);
        }
        return f;
    }

    private readonly record struct Token(string Text, bool Quoted);

    private static List<Token> Tokenize(string s)
    {
        var list = new List<Token>();
        int i = 0;
        while (i < s.Length)
        {
            char c = s[i];
            if (char.IsWhiteSpace(c)) { i++; continue; }
            if (c == '/' && i + 1 < s.Length && s[i + 1] == '/') { while (i < s.Length && s[i] != '\n') i++; continue; }
            if (c == '/' && i + 1 < s.Length && s[i + 1] == '*')
            {
                int end = s.IndexOf("*/", i + 2, StringComparison.Ordinal);
                i = end < 0 ? s.Length : end + 2;
                continue;
            }
            if (c is '{' or '}' or ';' or '=') { list.Add(new Token(c.ToString(), false)); i++; continue; }
            if (c == '"' || c == '\'')
            {
                var sb = new StringBuilder();
                i++;
                while (i < s.Length && s[i] != c)
                {
                    if (s[i] == '\\' && i + 1 < s.Length) i++;
                    sb.Append(s[i++]);
                }
                if (i >= s.Length) throw new FormatException("JAAS configuration: unterminated quoted string");
                i++;
                list.Add(new Token(sb.ToString(), true));
                continue;
            }
            int start = i;
            while (i < s.Length && !char.IsWhiteSpace(s[i]) && s[i] is not ('{' or '}' or ';' or '=' or '"' or '\'')) i++;
            list.Add(new Token(s.Substring(start, i - start), false));
        }
        return list;
    }
}
