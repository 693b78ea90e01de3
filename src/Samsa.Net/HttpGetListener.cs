using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Samsa.Net;

/// <summary>An answer of <see cref="HttpGetListener"/>: status, content type and body.</summary>
public readonly record struct HttpAnswer(int Status, string ContentType, byte[] Body)
{
    public static HttpAnswer Text(int status, string contentType, string body) => new(status, contentType, Encoding.UTF8.GetBytes(body));
}

/// <summary>A request <see cref="HttpGetListener"/> hands to a handler that accepts bodies: method, path, query (without '?') and body (empty for GET).</summary>
public sealed record HttpRequest(string Method, string Path, string Query, byte[] Body)
{
    /// <summary>The Content-Type header of a POST (null when absent or for GET).</summary>
    public string? ContentType { get; init; }
}

/// <summary>
/// A small HTTP/1.1 server over a <see cref="TcpListener"/> for read-only endpoints (the Keeper's
/// AdminServer, /metrics on brokers and Keepers): GET only, one request per connection, the request
/// head read up to 8 KiB and ten seconds, then "Connection: close". Anything else is answered 405
/// (another method) or 400 (no request line) and closed; a slow or broken client costs one task.
/// Built with a body limit (the web console's forms), it also accepts POST with a Content-Length of
/// at most that many bytes, checked before anything is allocated for the body: no length is 411,
/// a larger one 413, a body cut short 400.
/// </summary>
public sealed class HttpGetListener : IAsyncDisposable
{
    private const int MaxHead = 8192;
    private readonly string _name;
    private readonly TcpListener _listener;
    private readonly Func<HttpRequest, CancellationToken, Task<HttpAnswer>> _handler;
    private readonly int _maxBody;
    private readonly CancellationTokenSource _stop = new();
    private Task? _accept;

    /// <param name="name">What the listener serves, for a bind error ("keeper admin server").</param>
    /// <param name="handler">Answers GET (path, query without '?').</param>
    public HttpGetListener(string name, IPEndPoint endpoint, Func<string, string, CancellationToken, Task<HttpAnswer>> handler)
    {
        _name = name;
        _listener = new TcpListener(endpoint);
        _handler = (r, ct) => handler(r.Path, r.Query, ct);
        _maxBody = -1;
    }

    /// <param name="name">What the listener serves, for a bind error ("samsa console").</param>
    /// <param name="handler">Answers GET and POST.</param>
    /// <param name="maxBody">The largest POST body accepted, in bytes.</param>
    public HttpGetListener(string name, IPEndPoint endpoint, Func<HttpRequest, CancellationToken, Task<HttpAnswer>> handler, int maxBody)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxBody);
        _name = name;
        _listener = new TcpListener(endpoint);
        _handler = handler;
        _maxBody = maxBody;
    }

    public IPEndPoint LocalEndPoint => (IPEndPoint)_listener.LocalEndpoint;

    /// <summary>A configured host (address or name; empty = all interfaces) as an address to bind.</summary>
    public static IPAddress Resolve(string? host) =>
        string.IsNullOrEmpty(host) ? IPAddress.Any : IPAddress.TryParse(host, out var ip) ? ip : Dns.GetHostAddresses(host).First();

    /// <summary>Binds and starts accepting; a bind failure is a <see cref="ListenerBindException"/>.</summary>
    public void Start()
    {
        try
        {
            _listener.Start();
        }
        catch (SocketException e)
        {
            throw new ListenerBindException(_name, (IPEndPoint)_listener.LocalEndpoint, e);
        }
        _accept = AcceptLoopAsync();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token).ConfigureAwait(false); }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException) { return; }
            _ = ServeAsync(client);
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        using var _ = client;
        try
        {
            var stream = client.GetStream();
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            var buf = new byte[MaxHead];
            int len = 0;
            while (len < buf.Length)
            {
                int n = await stream.ReadAsync(buf.AsMemory(len), timeout.Token).ConfigureAwait(false);
                if (n == 0) break;
                len += n;
                if (buf.AsSpan(0, len).IndexOf("\r\n\r\n"u8) >= 0) break;
            }
            int headEnd = buf.AsSpan(0, len).IndexOf("\r\n\r\n"u8);
            string head = Encoding.ASCII.GetString(buf, 0, headEnd < 0 ? len : headEnd);
            int eol = head.IndexOf("\r\n", StringComparison.Ordinal);
            string[] requestLine = (eol >= 0 ? head.Substring(0, eol) : head).Split(' ');
            HttpAnswer answer;
            bool post = requestLine[0] == "POST" && _maxBody >= 0;
            if (requestLine.Length < 3 || !requestLine[2].StartsWith("HTTP/", StringComparison.Ordinal))
                answer = HttpAnswer.Text(400, "text/plain; charset=utf-8", "bad request\n");
            else if (requestLine[0] != "GET" && !post)
                answer = HttpAnswer.Text(405, "application/json", _maxBody >= 0 ? "{\"error\":\"only GET and POST are supported\"}" : "{\"error\":\"only GET is supported\"}");
            else
            {
                byte[] body = [];
                string? contentType = null;
                answer = default;
                if (post)
                {
                    contentType = Header(head, "Content-Type");
                    long? length = ContentLength(head);
                    if (headEnd < 0) answer = HttpAnswer.Text(400, "application/json", "{\"error\":\"request head is not complete\"}");
                    else if (length is null) answer = HttpAnswer.Text(411, "application/json", "{\"error\":\"POST needs a Content-Length\"}");
                    else if (length < 0 || length > _maxBody) answer = HttpAnswer.Text(413, "application/json", $"{{\"error\":\"the body may have at most {_maxBody} bytes\"}}");
                    else
                    {
                        body = new byte[(int)length];
                        int have = Math.Min(len - headEnd - 4, body.Length);
                        buf.AsSpan(headEnd + 4, have).CopyTo(body);
                        while (have < body.Length)
                        {
                            int n = await stream.ReadAsync(body.AsMemory(have), timeout.Token).ConfigureAwait(false);
                            if (n == 0) break;
                            have += n;
                        }
                        if (have < body.Length) answer = HttpAnswer.Text(400, "application/json", "{\"error\":\"the body is shorter than its Content-Length\"}");
                    }
                }
                if (answer.Body is null)
                {
                    string target = requestLine[1];
                    int q = target.IndexOf('?');
                    // Handlers may wait synchronously (a metrics scrape asking other brokers):
                    // never on the runtime's socket event thread (SocketEventThread).
                    if (SocketEventThread.IsCurrent) await Task.Yield();
                    answer = await _handler(new HttpRequest(requestLine[0], q < 0 ? target : target.Substring(0, q), q < 0 ? "" : target.Substring(q + 1), body) { ContentType = contentType },
                        timeout.Token).ConfigureAwait(false);
                }
            }
            string reason = answer.Status switch
            {
                200 => "OK", 400 => "Bad Request", 404 => "Not Found", 405 => "Method Not Allowed", 411 => "Length Required", 413 => "Content Too Large", 415 => "Unsupported Media Type",
                500 => "Internal Server Error", 502 => "Bad Gateway", 503 => "Service Unavailable", _ => "Status",
            };
            var header = $"HTTP/1.1 {answer.Status} {reason}\r\nContent-Type: {answer.ContentType}\r\nContent-Length: {answer.Body.Length}\r\nConnection: close\r\n\r\n";
            await stream.WriteAsync(Encoding.ASCII.GetBytes(header), timeout.Token).ConfigureAwait(false);
            await stream.WriteAsync(answer.Body, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or SocketException) { }
    }

    /// <summary>The Content-Length header's value; null when absent, -1 when not a number.</summary>
    private static long? ContentLength(string head) =>
        Header(head, "Content-Length") is not { } value ? null
        : long.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long n) ? n : -1;

    /// <summary>The first header of that name in the request head (trimmed), or null.</summary>
    private static string? Header(string head, string name)
    {
        foreach (var line in head.Split("\r\n"))
        {
            int colon = line.IndexOf(':');
            if (colon <= 0 || !line.AsSpan(0, colon).Trim().Equals(name, StringComparison.OrdinalIgnoreCase)) continue;
            return line[(colon + 1)..].Trim();
        }
        return null;
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        if (_accept is not null) await _accept.ConfigureAwait(false);
    }
}
