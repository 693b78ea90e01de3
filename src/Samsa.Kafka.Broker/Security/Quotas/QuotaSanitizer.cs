using System.Text;

namespace Samsa.Kafka.Broker.Security.Quotas;

/// <summary>
/// Upstream's org.apache.kafka.common.utils.Sanitizer: user principals and client ids become znode
/// names (<c>/config/users/&lt;sanitized&gt;</c>) by Java's URLEncoder (UTF-8) with '*' written as
/// %2A and space as %20 instead of '+'; desanitizing is URLDecoder ('+' decodes to a space).
/// </summary>
public static class QuotaSanitizer
{
    public static string Sanitize(string name)
    {
        var sb = new StringBuilder(name.Length);
        foreach (byte b in Encoding.UTF8.GetBytes(name))
        {
            char c = (char)b;
            // URLEncoder keeps a-z A-Z 0-9 . - _ (and '*', which Sanitizer then escapes).
            if (c is >= 'a' and <= 'z' or >= 'A' and <= 'Z' or >= '0' and <= '9' or '.' or '-' or '_') sb.Append(c);
            else sb.Append('%').Append(b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }

    /// <summary>URLDecoder.decode; a malformed escape is kept as written (upstream throws, and the
    /// entity is skipped with a log line there).</summary>
    public static string Desanitize(string name)
    {
        if (name.IndexOf('%') < 0 && name.IndexOf('+') < 0) return name;
        var bytes = new List<byte>(name.Length);
        int i = 0;
        while (i < name.Length)
        {
            char c = name[i];
            if (c == '+') { bytes.Add((byte)' '); i++; }
            else if (c == '%' && i + 2 < name.Length && IsHex(name[i + 1]) && IsHex(name[i + 2]))
            {
                bytes.Add(Convert.ToByte(name.Substring(i + 1, 2), 16));
                i += 3;
            }
            else
            {
                int len = char.IsSurrogatePair(name, i) ? 2 : 1;
                bytes.AddRange(Encoding.UTF8.GetBytes(name.Substring(i, len)));
                i += len;
            }
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    private static bool IsHex(char c) => char.IsAsciiHexDigit(c);
}
