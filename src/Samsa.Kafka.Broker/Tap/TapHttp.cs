using System.Globalization;
using System.Text.Json;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Net;

namespace Samsa.Kafka.Broker.Tap;

/// <summary>
/// GET /tap on the broker's metrics listener (<c>samsa.metrics.port</c>):
/// <c>/tap?limit=N&amp;connection=ID&amp;api=Produce</c> answers <see cref="RequestTap.Snapshot"/>;
/// 404 with a JSON error when the tap is off, 400 for a bad query value. Other paths go to the
/// listener's other handler (/metrics).
/// </summary>
public static class TapHttp
{
    private const string Json = "application/json";

    public static Func<string, string, CancellationToken, Task<HttpAnswer>> Handler(RequestTap? tap, Func<string, string, CancellationToken, Task<HttpAnswer>> next) =>
        (path, query, ct) => path is "/tap" or "/tap/" ? Task.FromResult(Answer(tap, query)) : next(path, query, ct);

    public static HttpAnswer Answer(RequestTap? tap, string query)
    {
        if (tap is null) return Error(404, "the request tap is off: set samsa.tap.enabled=true (samsa dev turns it on)");
        int limit = tap.EntriesPerConnection;
        string? connection = null;
        ApiKey? api = null;
        foreach (var pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = pair.IndexOf('=');
            string key = Uri.UnescapeDataString(eq < 0 ? pair : pair[..eq]);
            string value;
            try { value = Uri.UnescapeDataString((eq < 0 ? "" : pair[(eq + 1)..]).Replace('+', ' ')); }
            catch (UriFormatException) { return Error(400, $"bad query parameter {key}"); }
            switch (key)
            {
                case "limit":
                    if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out limit) || limit < 1)
                        return Error(400, $"limit must be a positive integer, got '{value}'");
                    break;
                case "connection":
                    if (value.Length == 0) return Error(400, "connection must name a connection id");
                    connection = value;
                    break;
                case "api":
                    if (ParseApi(value) is not { } parsed) return Error(400, $"unknown api '{value}' (a name such as Produce, or an api key number)");
                    api = parsed;
                    break;
            }
        }
        return new HttpAnswer(200, Json, tap.Snapshot(limit, connection, api));
    }

    /// <summary>An API by its name (Produce, case-insensitive) or key number (0).</summary>
    public static ApiKey? ParseApi(string value)
    {
        if (short.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out short key))
            return ApiMessages.IsKnown(key) ? (ApiKey)key : null;
        foreach (var k in Enum.GetValues<ApiKey>())
            if (string.Equals(k.ToString(), value, StringComparison.OrdinalIgnoreCase)) return k;
        return null;
    }

    private static HttpAnswer Error(int status, string message)
    {
        using var ms = new MemoryStream();
        using (var j = new Utf8JsonWriter(ms))
        {
            j.WriteStartObject();
            j.WriteString("error", message);
            j.WriteEndObject();
        }
        return new HttpAnswer(status, Json, ms.ToArray());
    }
}
