using System.Globalization;
using System.Text;
using System.Text.Json;
using Samsa.Kafka.Protocol;

namespace Samsa.Host;

/// <summary>
/// <c>samsa tap --url http://HOST:METRICSPORT [--follow] [--api X] [--connection ID]</c>: reads a
/// broker's live request tap (GET /tap, Samsa.Kafka.Broker/Tap) and prints one line per request
/// and its response — time, connection, client, API and version, correlation id, latency and the
/// response's non-zero error codes — oldest first. With --follow it polls every second and prints
/// only what is new, until interrupted.
/// </summary>
internal static class TapCommand
{
    public const string Usage =
        "  samsa tap --url http://HOST:METRICSPORT [--follow] [--api Produce] [--connection ID] [--limit N]\n" +
        "             (a broker's live request tap, samsa.tap.enabled: one line per request and response)\n";

    public static async Task<int> RunAsync(string[] args, TextWriter output, CancellationToken ct = default)
    {
        string? url = null, api = null, connection = null, limit = null;
        bool follow = false;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--url": url = Value(args, ref i); break;
                case "--api": api = Value(args, ref i); break;
                case "--connection": connection = Value(args, ref i); break;
                case "--limit":
                    limit = Value(args, ref i);
                    if (!int.TryParse(limit, NumberStyles.None, CultureInfo.InvariantCulture, out int l) || l < 1)
                        throw new UsageException($"tap: --limit expects a positive integer, got '{limit}'");
                    break;
                case "--follow" or "-f": follow = true; break;
                default: throw new UsageException($"tap: unknown option '{args[i]}'");
            }
        }
        if (url is null) throw new UsageException("tap: --url http://HOST:METRICSPORT is required (the broker's samsa.metrics.port)");
        if (!Uri.TryCreate(url, UriKind.Absolute, out var baseUri) || baseUri.Scheme is not ("http" or "https"))
            throw new UsageException($"tap: --url expects an http URL, got '{url}'");

        var query = new StringBuilder();
        void Add(string key, string? value)
        {
            if (value is null) return;
            query.Append(query.Length == 0 ? '?' : '&').Append(key).Append('=').Append(Uri.EscapeDataString(value));
        }
        Add("limit", limit);
        Add("api", api);
        Add("connection", connection);
        string path = baseUri.AbsolutePath.TrimEnd('/');
        if (!path.EndsWith("/tap", StringComparison.Ordinal)) path += "/tap";
        var target = new UriBuilder(baseUri) { Path = path, Query = query.Length == 0 ? "" : query.ToString(1, query.Length - 1) }.Uri;

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        HashSet<string> seen = [];
        while (true)
        {
            string body;
            try
            {
                using var response = await http.GetAsync(target, ct);
                body = await response.Content.ReadAsStringAsync(ct);
                if (!response.IsSuccessStatusCode)
                {
                    Console.Error.WriteLine($"samsa tap: {target}: {(int)response.StatusCode} {ErrorOf(body)}");
                    return 1;
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return 0;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                Console.Error.WriteLine($"samsa tap: {target}: {e.Message}");
                return 1;
            }
            var lines = Lines(body);
            // Only what the previous poll did not show: the snapshot holds the last entries of each
            // connection, so keys older than it can be forgotten.
            HashSet<string> now = [];
            foreach (var (key, line) in lines)
            {
                now.Add(key);
                if (!seen.Contains(key)) output.WriteLine(line);
            }
            await output.FlushAsync(ct);
            seen = now;
            if (!follow) return 0;
            try { await Task.Delay(TimeSpan.FromSeconds(1), ct); }
            catch (OperationCanceledException) { return 0; }
        }
    }

    private static string Value(string[] args, ref int i)
    {
        if (i + 1 >= args.Length) throw new UsageException($"tap: option '{args[i]}' needs a value");
        return args[++i];
    }

    private static string ErrorOf(string body)
    {
        try
        {
            using var doc = JsonDocument.Parse(body);
            if (doc.RootElement.TryGetProperty("error", out var e)) return e.GetString() ?? body;
        }
        catch (JsonException) { }
        return body.Length > 200 ? body[..200] : body;
    }

    /// <summary>The tap's entries as printed lines, oldest first, each with a key that identifies it across polls.</summary>
    internal static List<(string Key, string Line)> Lines(string json)
    {
        using var doc = JsonDocument.Parse(json);
        var rows = new List<(string Ts, string Key, string Line)>();
        foreach (var c in doc.RootElement.GetProperty("connections").EnumerateArray())
        {
            string id = c.GetProperty("id").GetString() ?? "?";
            string client = c.GetProperty("clientId").GetString() is { Length: > 0 } cid ? cid : "-";
            foreach (var e in c.GetProperty("entries").EnumerateArray())
            {
                string ts = e.GetProperty("ts").GetString() ?? "";
                int corr = e.GetProperty("correlationId").GetInt32();
                string time = ts.Length >= 23 ? ts[11..23] : ts;
                string line = string.Create(CultureInfo.InvariantCulture,
                    $"{time} {id} {client} {e.GetProperty("api").GetString()} v{e.GetProperty("version").GetInt32()} corr={corr} {e.GetProperty("latencyMs").GetDouble():0.###}ms {Errors(e.GetProperty("response"))}");
                rows.Add((ts, $"{id}/{corr}/{ts}", line));
            }
        }
        return [.. rows.OrderBy(r => r.Ts, StringComparer.Ordinal).Select(r => (r.Key, r.Line))];
    }

    /// <summary>The non-zero errorCode fields of a response, by name and count ("ok" for none,
    /// "no response" when none was sent, e.g. Produce with acks=0).</summary>
    internal static string Errors(JsonElement response)
    {
        if (response.ValueKind == JsonValueKind.Null) return "no response";
        var counts = new SortedDictionary<string, int>(StringComparer.Ordinal);
        void Walk(JsonElement el)
        {
            if (el.ValueKind == JsonValueKind.Object)
            {
                foreach (var p in el.EnumerateObject())
                {
                    if (p.Name == "errorCode" && p.Value.ValueKind == JsonValueKind.Number && p.Value.GetInt32() is int code and not 0)
                    {
                        string name = ErrorCodes.WireName((ErrorCode)code);
                        counts[name] = counts.GetValueOrDefault(name) + 1;
                    }
                    else Walk(p.Value);
                }
            }
            else if (el.ValueKind == JsonValueKind.Array)
            {
                foreach (var x in el.EnumerateArray()) Walk(x);
            }
        }
        Walk(response);
        return counts.Count == 0 ? "ok" : string.Join(",", counts.Select(kv => kv.Value == 1 ? kv.Key : $"{kv.Key}x{kv.Value}"));
    }
}
