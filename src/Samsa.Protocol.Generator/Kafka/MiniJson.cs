using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace Samsa.Protocol.Generator.Kafka;

/// <summary>A parse or validation failure in a spec file, with the 1-based line it points at (0 = unknown).</summary>
internal sealed class SpecException : Exception
{
    public SpecException(string message, int line) : base(message) => Line = line;

    public int Line { get; }
}

/// <summary>A JSON value with the line it started on, so spec errors can point at the source.</summary>
internal sealed class JsonNode
{
    public JsonNode(object? value, int line)
    {
        Value = value;
        Line = line;
    }

    /// <summary>Dictionary&lt;string, JsonNode&gt; (ordered keys kept in <see cref="Keys"/>), List&lt;JsonNode&gt;, string, double, bool or null.</summary>
    public object? Value { get; }

    public int Line { get; }

    public List<string>? Keys { get; set; }

    public Dictionary<string, JsonNode>? AsObject => Value as Dictionary<string, JsonNode>;

    public List<JsonNode>? AsArray => Value as List<JsonNode>;
}

/// <summary>
/// A small JSON reader for Kafka's schema files. The analyzer runs on netstandard2.0 where
/// System.Text.Json is not available; Kafka's schemas also allow <c>//</c> comments, which
/// standard JSON does not. Block comments are accepted too.
/// </summary>
internal sealed class MiniJson
{
    private readonly string _text;
    private int _pos;
    private int _line = 1;

    private MiniJson(string text) => _text = text;

    public static JsonNode Parse(string text)
    {
        var parser = new MiniJson(text);
        parser.SkipWhitespace();
        var node = parser.ParseValue();
        parser.SkipWhitespace();
        if (parser._pos < text.Length) throw new SpecException("unexpected text after the top-level value", parser._line);
        return node;
    }

    private void SkipWhitespace()
    {
        while (_pos < _text.Length)
        {
            char c = _text[_pos];
            if (c == '\n') { _line++; _pos++; }
            else if (c == ' ' || c == '\t' || c == '\r' || c == '\uFEFF') _pos++;
            else if (c == '/' && _pos + 1 < _text.Length && _text[_pos + 1] == '/')
            {
                while (_pos < _text.Length && _text[_pos] != '\n') _pos++;
            }
            else if (c == '/' && _pos + 1 < _text.Length && _text[_pos + 1] == '*')
            {
                int end = _text.IndexOf("*/", _pos + 2, StringComparison.Ordinal);
                if (end < 0) throw new SpecException("unterminated block comment", _line);
                for (int i = _pos; i < end; i++) if (_text[i] == '\n') _line++;
                _pos = end + 2;
            }
            else break;
        }
    }

    private JsonNode ParseValue()
    {
        if (_pos >= _text.Length) throw new SpecException("unexpected end of file", _line);
        int line = _line;
        char c = _text[_pos];
        switch (c)
        {
            case '{': return ParseObject();
            case '[': return ParseArray();
            case '"': return new JsonNode(ParseString(), line);
            case 't': Expect("true"); return new JsonNode(true, line);
            case 'f': Expect("false"); return new JsonNode(false, line);
            case 'n': Expect("null"); return new JsonNode(null, line);
            default:
                if (c == '-' || (c >= '0' && c <= '9')) return new JsonNode(ParseNumber(), line);
                throw new SpecException($"unexpected character '{c}'", _line);
        }
    }

    private void Expect(string word)
    {
        if (string.CompareOrdinal(_text, _pos, word, 0, word.Length) != 0) throw new SpecException($"expected '{word}'", _line);
        _pos += word.Length;
    }

    private JsonNode ParseObject()
    {
        int line = _line;
        _pos++; // {
        var dict = new Dictionary<string, JsonNode>(StringComparer.Ordinal);
        var keys = new List<string>();
        SkipWhitespace();
        if (_pos < _text.Length && _text[_pos] == '}') { _pos++; return new JsonNode(dict, line) { Keys = keys }; }
        while (true)
        {
            SkipWhitespace();
            if (_pos >= _text.Length || _text[_pos] != '"') throw new SpecException("expected a quoted key", _line);
                        string key = ParseString();
            SkipWhitespace();
            if (_pos >= _text.Length || _text[_pos] != ':') throw new SpecException($"expected ':' after key \"{key}\"", _line);
            _pos++;
            SkipWhitespace();
            var value = ParseValue();
            // Kafka's own schema reader (Jackson) lets a repeated key override the earlier one;
            // upstream schemas rely on that, so do the same.
            if (!dict.ContainsKey(key)) keys.Add(key);
            dict[key] = value;
            SkipWhitespace();
            if (_pos >= _text.Length) throw new SpecException("unterminated object", _line);
            if (_text[_pos] == ',') { _pos++; continue; }
            if (_text[_pos] == '}') { _pos++; return new JsonNode(dict, line) { Keys = keys }; }
            throw new SpecException("expected ',' or '}' in object", _line);
        }
    }

    private JsonNode ParseArray()
    {
        int line = _line;
        _pos++; // [
        var list = new List<JsonNode>();
        SkipWhitespace();
        if (_pos < _text.Length && _text[_pos] == ']') { _pos++; return new JsonNode(list, line); }
        while (true)
        {
            SkipWhitespace();
            list.Add(ParseValue());
            SkipWhitespace();
            if (_pos >= _text.Length) throw new SpecException("unterminated array", _line);
            if (_text[_pos] == ',') { _pos++; continue; }
            if (_text[_pos] == ']') { _pos++; return new JsonNode(list, line); }
            throw new SpecException("expected ',' or ']' in array", _line);
        }
    }

    private string ParseString()
    {
        _pos++; // opening quote
        var sb = new StringBuilder();
        while (true)
        {
            if (_pos >= _text.Length) throw new SpecException("unterminated string", _line);
            char c = _text[_pos++];
            if (c == '"') return sb.ToString();
            if (c == '\n') throw new SpecException("newline inside a string", _line);
            if (c != '\\') { sb.Append(c); continue; }
            if (_pos >= _text.Length) throw new SpecException("unterminated escape", _line);
            char e = _text[_pos++];
            switch (e)
            {
                case '"': sb.Append('"'); break;
                case '\\': sb.Append('\\'); break;
                case '/': sb.Append('/'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'n': sb.Append('\n'); break;
                case 'r': sb.Append('\r'); break;
                case 't': sb.Append('\t'); break;
                case 'u':
                    if (_pos + 4 > _text.Length ||
                        !int.TryParse(_text.Substring(_pos, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int code))
                        throw new SpecException("bad \\u escape", _line);
                    sb.Append((char)code);
                    _pos += 4;
                    break;
                default: throw new SpecException($"bad escape '\\{e}'", _line);
            }
        }
    }

    private double ParseNumber()
    {
        int start = _pos;
        if (_text[_pos] == '-') _pos++;
        while (_pos < _text.Length && (char.IsDigit(_text[_pos]) || _text[_pos] == '.' || _text[_pos] == 'e' || _text[_pos] == 'E' || _text[_pos] == '+' || _text[_pos] == '-'))
            _pos++;
        string s = _text.Substring(start, _pos - start);
        if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double value))
            throw new SpecException($"bad number '{s}'", _line);
        return value;
    }
}
