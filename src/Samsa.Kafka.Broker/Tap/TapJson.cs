using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Text.Json;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Records;

namespace Samsa.Kafka.Broker.Tap;

/// <summary>
/// Renders a generated message as one JSON object for the request tap, through the message's
/// generated <c>Accept</c>: field names as upstream's generated JSON converters spell them (the
/// schema name with a lower-case first letter, as kafka.request.logger prints), only the fields
/// the version carries. Bounded and redacted:
/// <list type="bullet">
/// <item>records fields are summarised (size, batches, records, first base offsets), never dumped;</item>
/// <item>SASL auth bytes, delegation-token HMACs, SCRAM salts and salted passwords, and the values
/// of password-type configs are "[hidden]" (upstream's Password.HIDDEN);</item>
/// <item>arrays show at most <see cref="MaxArrayItems"/> elements, followed by a sibling
/// "&lt;name&gt;Omitted" count; once the object passes <see cref="MaxBytes"/> further array
/// elements are omitted the same way; strings are cut at <see cref="MaxString"/> characters;
/// bytes longer than <see cref="MaxInlineBytes"/> show as "&lt;N bytes&gt;".</item>
/// </list>
/// </summary>
internal sealed class TapJson : IKafkaMessageVisitor
{
    public const int MaxArrayItems = 64, MaxBytes = 8192, MaxString = 512, MaxInlineBytes = 64, MaxBaseOffsets = 10, MaxBatchesWalked = 1000;
    public const string Hidden = "[hidden]";

    private static readonly HashSet<string> SecretFields = new(StringComparer.Ordinal) { "AuthBytes", "Hmac", "Salt", "SaltedPassword" };
    private static readonly ConcurrentDictionary<string, string> CamelNames = new(StringComparer.Ordinal);

    private readonly ArrayBufferWriter<byte> _buffer = new(512);
    private readonly Utf8JsonWriter _json;
    // Per open struct: the string its "Name" field held, so that a following "Value" of a
    // password-type config (AlterConfigs, IncrementalAlterConfigs, CreateTopics...) is hidden.
    private readonly Stack<string?> _configNames = new();
    private readonly Stack<string?> _arrayNames = new();

    private TapJson() => _json = new Utf8JsonWriter(_buffer, new JsonWriterOptions { SkipValidation = true });

    /// <summary>The message as UTF-8 JSON (the literal null for none); a message that fails to
    /// render becomes {"renderError": "..."} — the tap never fails a request.</summary>
    public static byte[] Render(IKafkaMessage? message, short version)
    {
        if (message is null) return "null"u8.ToArray();
        var w = new TapJson();
        try
        {
            w._json.WriteStartObject();
            message.Accept(w, version);
            w._json.WriteEndObject();
            w._json.Flush();
            return w._buffer.WrittenSpan.ToArray();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            var error = new ArrayBufferWriter<byte>(128);
            using (var j = new Utf8JsonWriter(error))
            {
                j.WriteStartObject();
                j.WriteString("renderError", e.GetType().Name + ": " + e.Message);
                j.WriteEndObject();
            }
            return error.WrittenSpan.ToArray();
        }
    }

    private long Written => _json.BytesCommitted + _json.BytesPending;

    private static string Camel(string name) =>
        CamelNames.GetOrAdd(name, n => n.Length == 0 || char.IsLower(n[0]) ? n : char.ToLowerInvariant(n[0]) + n[1..]);

    private void Name(string? name)
    {
        if (name is not null) _json.WritePropertyName(Camel(name));
    }

    public void Value(string? name, long value)
    {
        Name(name);
        _json.WriteNumberValue(value);
    }

    public void Value(string? name, bool value)
    {
        Name(name);
        _json.WriteBooleanValue(value);
    }

    public void Value(string? name, double value)
    {
        Name(name);
        if (double.IsFinite(value)) _json.WriteNumberValue(value);
        else _json.WriteStringValue(value.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    public void Value(string? name, Guid value)
    {
        Name(name);
        _json.WriteStringValue(KafkaUuid(value));
    }

    public void Value(string? name, string? value)
    {
        if (name == "Name" && _configNames.Count > 0)
        {
            _configNames.Pop();
            _configNames.Push(value);
        }
        Name(name);
        if (value is null) _json.WriteNullValue();
        else if (name == "Value" && _configNames.Count > 0 && _configNames.Peek() is { } config && IsSensitiveConfig(config)) _json.WriteStringValue(Hidden);
        else if (value.Length > MaxString) _json.WriteStringValue(string.Concat(value.AsSpan(0, MaxString), $"…({value.Length} chars)"));
        else _json.WriteStringValue(value);
    }

    public void Bytes(string? name, byte[]? value)
    {
        Name(name);
        if (value is null) _json.WriteNullValue();
        else if (IsSecret(name)) _json.WriteStringValue(Hidden);
        else if (value.Length <= MaxInlineBytes) _json.WriteBase64StringValue(value);
        else _json.WriteStringValue($"<{value.Length} bytes>");
    }

    public void Records(string? name, ReadOnlyMemory<byte>? value)
    {
        Name(name);
        if (value is not { } records)
        {
            _json.WriteNullValue();
            return;
        }
        var summary = RecordsSummary.Of(records);
        _json.WriteStartObject();
        _json.WriteNumber("sizeInBytes", records.Length);
        _json.WriteNumber("batches", summary.Batches);
        _json.WriteNumber("records", summary.Records);
        _json.WriteStartArray("baseOffsets");
        foreach (long o in summary.BaseOffsets) _json.WriteNumberValue(o);
        _json.WriteEndArray();
        if (summary.Partial) _json.WriteBoolean("partial", true);
        _json.WriteEndObject();
    }

    public void Null(string? name)
    {
        Name(name);
        _json.WriteNullValue();
    }

    public void BeginStruct(string? name)
    {
        Name(name);
        _json.WriteStartObject();
        _configNames.Push(null);
    }

    public void EndStruct()
    {
        _configNames.Pop();
        _json.WriteEndObject();
    }

    public void BeginArray(string? name, int count)
    {
        _arrayNames.Push(name);
        Name(name);
        _json.WriteStartArray();
    }

    public bool NextElement(int index) => index < MaxArrayItems && Written < MaxBytes;

    public void EndArray(int omitted)
    {
        _json.WriteEndArray();
        string? name = _arrayNames.Pop();
        // An array inside an array has no name to hang the count on; the outer one is counted.
        if (omitted > 0 && name is not null) _json.WriteNumber(Camel(name) + "Omitted", omitted);
    }

    private static bool IsSecret(string? name) => name is not null && SecretFields.Contains(name);

    /// <summary>Whether a config's value is a secret: a password-type broker config (upstream's
    /// ConfigDef.Type.PASSWORD), also under a listener.name.X. and a mechanism prefix, or a name
    /// that says password, secret or JAAS.</summary>
    internal static bool IsSensitiveConfig(string config)
    {
        string n = config;
        if (n.StartsWith("listener.name.", StringComparison.Ordinal) && n.IndexOf('.', "listener.name.".Length) is int dot and > 0)
            n = n[(dot + 1)..];
        if (IsPassword(n)) return true;
        if (n.IndexOf('.') is int d and > 0 && IsPassword(n[(d + 1)..])) return true;
        return n.Contains("password", StringComparison.OrdinalIgnoreCase) || n.Contains("secret", StringComparison.OrdinalIgnoreCase)
            || n.Contains("jaas", StringComparison.OrdinalIgnoreCase);

        static bool IsPassword(string key) => ConfigCatalog.Broker.TryGetValue(key, out var d) && d.Type == ConfigType.Password;
    }

    /// <summary>A UUID as Kafka prints it: URL-safe base64 of the 16 bytes, no padding (Uuid.toString).</summary>
    internal static string KafkaUuid(Guid value)
    {
        Span<byte> bytes = stackalloc byte[16];
        value.TryWriteBytes(bytes, bigEndian: true, out _);
        return Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    }
}

/// <summary>What a records field holds, read from the batch headers only: batches, records and
/// the first base offsets. File-backed records (a fetch served from a segment) are read from the
/// file a header at a time, never materialised; at most <see cref="TapJson.MaxBatchesWalked"/>
/// batches are walked (then <see cref="Partial"/>).</summary>
internal readonly record struct RecordsSummary(int Batches, long Records, List<long> BaseOffsets, bool Partial)
{
    public static RecordsSummary Of(ReadOnlyMemory<byte> records)
    {
        if (FileRecords.TryGet(records, out var file, out int start, out int length) && file is not null && !file.IsMaterialized)
        {
            var header = new byte[RecordBatch.HeaderSize];
            return Walk(length, (pos, into) =>
            {
                try { return RandomAccess.Read(file.File.SafeFileHandle, into, file.Position + start + pos); }
                catch (Exception e) when (e is IOException or ObjectDisposedException or UnauthorizedAccessException) { return 0; }
            }, header);
        }
        var header2 = new byte[RecordBatch.HeaderSize];
        return Walk(records.Length, (pos, into) =>
        {
            var span = records.Span;
            int n = Math.Min(into.Length, span.Length - (int)pos);
            span.Slice((int)pos, n).CopyTo(into);
            return n;
        }, header2);
    }

    private delegate int ReadAt(long position, Span<byte> into);

    private static RecordsSummary Walk(int length, ReadAt read, byte[] header)
    {
        int batches = 0;
        long count = 0;
        var baseOffsets = new List<long>();
        long pos = 0;
        while (pos + RecordBatch.LogOverhead <= length)
        {
            if (batches >= TapJson.MaxBatchesWalked) return new(batches, count, baseOffsets, true);
            int want = (int)Math.Min(header.Length, length - pos);
            int got = read(pos, header.AsSpan(0, want));
            if (got < RecordBatch.LogOverhead) return new(batches, count, baseOffsets, true);
            long baseOffset = BinaryPrimitives.ReadInt64BigEndian(header);
            int size = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(RecordBatch.BatchLengthOffset));
            if (size < 0 || pos + RecordBatch.LogOverhead + size > length)
                return new(batches, count, baseOffsets, true);   // a fetch's last batch may be cut short
            batches++;
            if (baseOffsets.Count < TapJson.MaxBaseOffsets) baseOffsets.Add(baseOffset);
            // v2 batches carry their record count; a legacy (magic 0/1) entry is one message.
            if (got >= RecordBatch.HeaderSize && header[RecordBatch.MagicOffset] >= 2)
                count += Math.Max(0, BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(RecordBatch.RecordsCountOffset)));
            else
                count++;
            pos += RecordBatch.LogOverhead + size;
        }
        return new(batches, count, baseOffsets, pos < length);
    }
}
