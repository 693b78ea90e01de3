using System;
using System.Collections.Generic;
using System.Text;

namespace Samsa.Protocol.Generator.Jute;

/// <summary>Parses jute DDL: <c>module a.b.c { class Name { type field; ... } ... }</c> with
/// <c>//</c> and <c>/* */</c> comments. Types are int, long, boolean, buffer, ustring,
/// byte, float, double, vector&lt;T&gt; and class names (optionally module-qualified).</summary>
internal sealed class JuteParser
{
    private readonly List<string> _tokens;
    private int _pos;

    private JuteParser(List<string> tokens) { _tokens = tokens; }

    public static List<JuteClass> Parse(string text)
    {
        var p = new JuteParser(Tokenize(text));
        var classes = new List<JuteClass>();
        while (!p.AtEnd)
        {
            p.Expect("module");
            string module = p.Next();
            p.Expect("{");
            while (p.Peek() != "}")
            {
                p.Expect("class");
                string name = p.Next();
                p.Expect("{");
                var fields = new List<JuteField>();
                while (p.Peek() != "}")
                {
                    var type = p.ParseType();
                    string field = p.Next();
                    p.Expect(";");
                    fields.Add(new JuteField(type, field));
                }
                p.Expect("}");
                classes.Add(new JuteClass(module, name, fields));
            }
            p.Expect("}");
        }
        return classes;
    }

    private JuteType ParseType()
    {
        string name = Next();
        if (name != "vector") return new JuteType(name, null);
        Expect("<");
        var element = ParseType();
        Expect(">");
        return new JuteType("vector", element);
    }

    private bool AtEnd => _pos >= _tokens.Count;

    private string Peek()
    {
        if (AtEnd) throw new FormatException("unexpected end of jute file");
        return _tokens[_pos];
    }

    private string Next()
    {
        string t = Peek();
        _pos++;
        return t;
    }

    private void Expect(string token)
    {
        string t = Next();
        if (t != token) throw new FormatException($"expected '{token}' but found '{t}' (token {_pos})");
    }

    private static List<string> Tokenize(string text)
    {
        var tokens = new List<string>();
        int i = 0;
        while (i < text.Length)
        {
            char c = text[i];
            if (char.IsWhiteSpace(c)) { i++; continue; }
            if (c == '/' && i + 1 < text.Length && text[i + 1] == '/')
            {
                while (i < text.Length && text[i] != '\n') i++;
                continue;
            }
            if (c == '/' && i + 1 < text.Length && text[i + 1] == '*')
            {
                int end = text.IndexOf("*/", i + 2, StringComparison.Ordinal);
                if (end < 0) throw new FormatException("unterminated comment");
                i = end + 2;
                continue;
            }
            if (c is '{' or '}' or '<' or '>' or ';')
            {
                tokens.Add(c.ToString());
                i++;
                continue;
            }
            if (char.IsLetterOrDigit(c) || c == '_' || c == '.')
            {
                var sb = new StringBuilder();
                while (i < text.Length && (char.IsLetterOrDigit(text[i]) || text[i] == '_' || text[i] == '.'))
                    sb.Append(text[i++]);
                tokens.Add(sb.ToString());
                continue;
            }
            throw new FormatException($"unexpected character '{c}' at offset {i}");
        }
        return tokens;
    }
}
