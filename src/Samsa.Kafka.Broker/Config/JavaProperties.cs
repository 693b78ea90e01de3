using System.Text;

namespace Samsa.Kafka.Broker.Config;

/// <summary>
/// Reads the java.util.Properties text format that Kafka's server.properties uses, so
/// existing deployment files load unchanged: '#' and '!' comment lines, key/value separated by
/// '=', ':' or whitespace, a line ending in an odd number of backslashes continues on the next
/// line (whose leading whitespace is dropped), and the escapes \t \n \r \f \uXXXX; any other
/// escaped character stands for itself. A later key replaces an earlier one, as Properties.load does.
/// </summary>
public static class JavaProperties
{
    public static Dictionary<string, string> Parse(string text)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var logical in LogicalLines(text))
        {
            var (key, value) = SplitKeyValue(logical);
            result[key] = value;
        }
        return result;
    }

    public static Dictionary<string, string> Load(string path) => Parse(File.ReadAllText(path));

    // Joins continuation lines. A natural line that is blank or a comment is skipped only when
    // it starts a logical line (a comment marker inside a continuation is data, as upstream).
    private static IEnumerable<string> LogicalLines(string text)
    {
        var lines = text.Replace("\r\n", "\n").Replace('\r', '\n').Split('\n');
        var current = new StringBuilder();
        bool continuing = false;
        foreach (var raw in lines)
        {
            var line = raw.AsSpan();
            int start = 0;
            while (start < line.Length && IsWhite(line[start])) start++;
            line = line[start..];
            if (!continuing)
            {
                if (line.Length == 0 || line[0] == '#' || line[0] == '!') continue;
            }
            int trailing = 0;
            for (int i = line.Length - 1; i >= 0 && line[i] == '\\'; i--) trailing++;
            if (trailing % 2 == 1)
            {
                current.Append(line[..^1]);
                continuing = true;
                continue;
            }
            current.Append(line);
            continuing = false;
            yield return current.ToString();
            current.Clear();
        }
        if (continuing && current.Length > 0) yield return current.ToString();
    }

    private static bool IsWhite(char c) => c == ' ' || c == '\t' || c == '\f';

    private static (string Key, string Value) SplitKeyValue(string line)
    {
        int i = 0;
        var key = new StringBuilder();
        while (i < line.Length)
        {
            char c = line[i];
            if (c == '\\' && i + 1 < line.Length)
            {
                i = Unescape(line, i, key);
                continue;
            }
            if (c == '=' || c == ':' || IsWhite(c)) break;
            key.Append(c);
            i++;
        }
        // Separator: whitespace, optionally one '=' or ':', then more whitespace.
        while (i < line.Length && IsWhite(line[i])) i++;
        if (i < line.Length && (line[i] == '=' || line[i] == ':'))
        {
            i++;
            while (i < line.Length && IsWhite(line[i])) i++;
        }
        var value = new StringBuilder();
        while (i < line.Length)
        {
            if (line[i] == '\\' && i + 1 < line.Length)
            {
                i = Unescape(line, i, value);
                continue;
            }
            if (line[i] == '\\') { i++; continue; }
            value.Append(line[i]);
            i++;
        }
        return (key.ToString(), value.ToString());
    }

    // line[i] is a backslash with at least one character after it; returns the next index.
    private static int Unescape(string line, int i, StringBuilder into)
    {
        char e = line[i + 1];
        switch (e)
        {
            case 't': into.Append('\t'); return i + 2;
            case 'n': into.Append('\n'); return i + 2;
            case 'r': into.Append('\r'); return i + 2;
            case 'f': into.Append('\f'); return i + 2;
            case 'u':
                if (i + 6 <= line.Length &&
                    int.TryParse(line.AsSpan(i + 2, 4), System.Globalization.NumberStyles.HexNumber, null, out int code))
                {
                    into.Append((char)code);
                    return i + 6;
                }
                throw new FormatException($"Malformed \\uxxxx encoding in properties line: {line}");
            default: into.Append(e); return i + 2;
        }
    }
}
