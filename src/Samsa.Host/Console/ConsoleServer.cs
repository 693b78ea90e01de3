using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Samsa.Host.Admin;
using Samsa.Kafka.Protocol;
using Samsa.Net;

namespace Samsa.Host.WebConsole;

/// <summary>
/// What the console looks at: Kafka bootstrap servers (and the client properties to reach them),
/// the ZooKeeper connect string (null: no znode page), and the brokers' metrics URLs
/// (http://HOST:PORT/metrics) whose /tap the Tap page reads.
/// </summary>
internal sealed record ConsoleTarget(string Bootstrap, string? ZooKeeper, IReadOnlyList<string> MetricsUrls, Dictionary<string, string>? ClientProperties = null);

/// <summary>
/// The web console (issue #20): static pages embedded in the samsa assembly (Console/wwwroot: plain
/// HTML, CSS and JavaScript, no build step) and the JSON API of <see cref="ConsoleApi"/> under /api,
/// served by <see cref="HttpGetListener"/> with POST bodies up to 1 MiB (the produce form).
/// Bad input is a 4xx JSON error; a cluster that does not answer is a 502/503 JSON error.
/// </summary>
internal sealed class ConsoleServer : IAsyncDisposable
{
    public const int MaxBody = 1 << 20;
    private const string Json = "application/json; charset=utf-8";
    private readonly HttpGetListener _listener;
    private readonly ConsoleApi _api;
    private readonly ConsoleTarget _target;
    private static HttpClient? _http;   // made on the first Tap request, not at start-up
    private static HttpClient Http => _http ??= new HttpClient { Timeout = TimeSpan.FromSeconds(5), MaxResponseContentBufferSize = 16 << 20 };

    private ConsoleServer(IPEndPoint endpoint, ConsoleTarget target)
    {
        _target = target;
        _api = new ConsoleApi(target);
        _listener = new HttpGetListener("samsa console", endpoint, HandleAsync, MaxBody);
    }

    /// <summary>Binds HOST:PORT (0: a free port) and serves; a bind failure is a <see cref="ListenerBindException"/>.</summary>
    public static ConsoleServer Start(string host, int port, ConsoleTarget target)
    {
        var server = new ConsoleServer(new IPEndPoint(HttpGetListener.Resolve(host), port), target);
        server._listener.Start();
        return server;
    }

    public IPEndPoint EndPoint => _listener.LocalEndPoint;

    public string Url => $"http://{Program.FormatEndPoint(EndPoint)}/";

    private async Task<HttpAnswer> HandleAsync(HttpRequest request, CancellationToken ct)
    {
        try
        {
            if (!request.Path.StartsWith("/api/", StringComparison.Ordinal))
            {
                if (request.Method != "GET") return Error(405, "only GET is served outside /api");
                return Static(request.Path);
            }
            var query = ParseQuery(request.Query);
            string path = request.Path;
            if (request.Method == "POST")
            {
                if (path != "/api/produce") return Error(405, $"{path} takes GET");
                // Only JSON bodies: a page of another site can send a form or text/plain POST here
                // without asking, but a browser sends application/json cross-site only after a CORS
                // preflight, which this server never grants — so no other page can produce records.
                if (request.ContentType is not { } type || !type.Split(';')[0].Trim().Equals("application/json", StringComparison.OrdinalIgnoreCase))
                    return Error(415, "POST /api/produce takes a JSON body (Content-Type: application/json)");
                return Ok(await _api.ProduceAsync(request.Body, ct));
            }
            if (path == "/api/produce") return Error(405, "/api/produce takes POST");
            JsonNode result = path switch
            {
                "/api/cluster" => await _api.ClusterAsync(ct),
                "/api/topics" => await _api.TopicsAsync(ct),
                "/api/topic" => await _api.TopicAsync(Required(query, "name"), ct),
                "/api/messages" => await _api.MessagesAsync(Required(query, "topic"), IntParam(query, "partition") ?? 0,
                    LongParam(query, "offset"), LongParam(query, "timestamp"), IntParam(query, "limit") ?? 50, ct),
                "/api/groups" => await _api.GroupsAsync(ct),
                "/api/group" => await _api.GroupAsync(Required(query, "id"), ct),
                "/api/transactions" => await _api.TransactionsAsync(ct),
                "/api/producers" => await _api.ProducersAsync(Required(query, "topic"), ct),
                "/api/znode" => await _api.ZnodeAsync(query.GetValueOrDefault("path") ?? "/", ct),
                "/api/watches" => await _api.WatchesAsync(ct),
                "/api/tap" => await TapAsync(IntParam(query, "limit") ?? 50, ct),
                _ => throw new ApiException(404, $"no API at {path}"),
            };
            return Ok(result);
        }
        catch (ApiException e) { return Error(e.Status, e.Message); }
        catch (AdminException e) { return Error(e.Code == ErrorCode.NetworkException ? 503 : 502, e.Message); }
        catch (UsageException e) { return Error(400, e.Message); }
        catch (OperationCanceledException) { return Error(503, "the cluster did not answer in time"); }
        catch (Exception e) when (e is IOException or SocketException) { return Error(503, "the cluster did not answer: " + e.Message); }
        catch (Exception e)
        {
            Console.Error.WriteLine($"samsa console: {request.Method} {request.Path} failed: {e.GetType().Name}: {e.Message}");
            return Error(500, $"{e.GetType().Name}: {e.Message}");
        }
    }

    /// <summary>
    /// The request tap of every broker the console knows the metrics URL of (GET /tap?limit=N on
    /// the metrics port); a broker that answers 404 or not at all is listed as unavailable.
    /// </summary>
    private async Task<JsonNode> TapAsync(int limit, CancellationToken ct)
    {
        if (limit is < 1 or > ConsoleApi.MaxRecords) throw new ApiException(400, $"limit must be 1..{ConsoleApi.MaxRecords}");
        var brokers = new List<JsonNode>();
        foreach (var metrics in _target.MetricsUrls)
        {
            string url = (metrics.EndsWith("/metrics", StringComparison.Ordinal) ? metrics[..^"/metrics".Length] : metrics.TrimEnd('/'))
                + "/tap?limit=" + limit.ToString(CultureInfo.InvariantCulture);
            var entry = new JsonObject { ["url"] = url };
            try
            {
                using var response = await Http.GetAsync(url, ct);
                if (response.StatusCode == HttpStatusCode.NotFound) entry["error"] = "tap not available (404)";
                else if (!response.IsSuccessStatusCode) entry["error"] = $"tap answered {(int)response.StatusCode}";
                else
                {
                    var bytes = await response.Content.ReadAsByteArrayAsync(ct);
                    entry["tap"] = JsonNode.Parse(bytes);
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or System.Text.Json.JsonException)
            {
                entry["error"] = "tap not available: " + e.Message;
            }
            brokers.Add(entry);
        }
        return new JsonObject { ["brokers"] = new JsonArray(brokers.ToArray()) };
    }

    private static HttpAnswer Ok(JsonNode node) => new(200, Json, Encoding.UTF8.GetBytes(node.ToJsonString()));

    private static HttpAnswer Error(int status, string message) =>
        new(status, Json, Encoding.UTF8.GetBytes(new JsonObject { ["error"] = message, ["status"] = status }.ToJsonString()));

    private static readonly Dictionary<string, string> Types = new(StringComparer.Ordinal)
    {
        [".html"] = "text/html; charset=utf-8", [".css"] = "text/css; charset=utf-8", [".js"] = "text/javascript; charset=utf-8", [".svg"] = "image/svg+xml",
    };

    /// <summary>An embedded page or asset; / is index.html.</summary>
    private static HttpAnswer Static(string path)
    {
        string name = path is "/" or "" ? "index.html" : path.TrimStart('/');
        if (name.Contains('/') || name.Contains("..", StringComparison.Ordinal)) return Error(404, $"no page {path}");
        using var stream = typeof(ConsoleServer).Assembly.GetManifestResourceStream("console/" + name);
        if (stream is null) return Error(404, $"no page {path}");
        var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        return new HttpAnswer(200, Types.GetValueOrDefault(Path.GetExtension(name), "application/octet-stream"), buffer.ToArray());
    }

    private static Dictionary<string, string> ParseQuery(string query)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = pair.IndexOf('=');
            string key = Unescape(eq < 0 ? pair : pair[..eq]), value = eq < 0 ? "" : Unescape(pair[(eq + 1)..]);
            result[key] = value;
        }
        return result;
    }

    private static string Unescape(string s)
    {
        try { return Uri.UnescapeDataString(s.Replace('+', ' ')); }
        catch (UriFormatException) { throw new ApiException(400, "the query is not URL-encoded"); }
    }

    private static string Required(Dictionary<string, string> query, string name) =>
        query.TryGetValue(name, out var v) && v.Length > 0 ? v : throw new ApiException(400, $"{name} is required");

    private static int? IntParam(Dictionary<string, string> query, string name) =>
        !query.TryGetValue(name, out var v) || v.Length == 0 ? null
        : int.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int n) ? n
        : throw new ApiException(400, $"{name} must be an integer, got '{v}'");

    private static long? LongParam(Dictionary<string, string> query, string name) =>
        !query.TryGetValue(name, out var v) || v.Length == 0 ? null
        : long.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long n) ? n
        : throw new ApiException(400, $"{name} must be an integer, got '{v}'");

    public ValueTask DisposeAsync() => _listener.DisposeAsync();
}
