using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Samsa.Net;

/// <summary>An answer of <see cref="HttpGetListener"/>: status, content type and body.</summary>
public readonly record struct HttpAnswer(int Status, string ContentType, byte[] Body)
{
    public static HttpAnswer Text(int status, string contentType, string body) => new(status, contentType, Encoding.UTF8.GetBytes(body));
}

/// <summary>
/// A small HTTP/1.1 server over a <see cref="TcpListener"/> for read-only endpoints (the Keeper's
/// AdminServer, /metrics on brokers and Keepers): GET only, one request per connection, the request
/// head read up to 8 KiB and ten seconds, then "Connection: close". Anything else is answered 405
/// (another method) or 400 (no request line) and closed; a slow or broken client costs one task.
/// </summary>
public sealed class HttpGetListener : IAsyncDisposable
{
    private const int MaxHead = 8192;
    private readonly string _name;
    private readonly TcpListener _listener;
    private readonly Func<string, string, CancellationToken, Task<HttpAnswer>> _handler;
    private readonly CancellationTokenSource _stop = new();
    private Task? _accept;

    /// <param name="name">What the listener serves, for a bind error ("keeper admin server").</param>
    /// <param name="handler">Answers GET (path, query without '?').</param>
    public HttpGetListener(string name, IPEndPoint endpoint, Func<string, string, CancellationToken, Task<HttpAnswer>> handler)
    {
        _name = name;
        _listener = new TcpListener(endpoint);
        _handler = handler;
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
            string head = Encoding.ASCII.GetString(buf, 0, len);
            int eol = head.IndexOf("\r\n", StringComparison.Ordinal);
            string[] requestLine = (eol >= 0 ? head.Substring(0, eol) : head).Split(' ');
            HttpAnswer answer;
            if (requestLine.Length < 3 || !requestLine[2].StartsWith("HTTP/", StringComparison.Ordinal))
                answer = HttpAnswer.Text(400, "text/plain; charset=utf-8", "bad request\n");
            else if (requestLine[0] != "GET")
                answer = HttpAnswer.Text(405, "application/json", "{\"error\":\"only GET is supported\"}");
            else
            {
                string target = requestLine[1];
                int q = target.IndexOf('?');
                answer = await _handler(q < 0 ? target : target.Substring(0, q), q < 0 ? "" : target.Substring(q + 1), timeout.Token).ConfigureAwait(false);
            }
            string reason = answer.Status switch
            {
                200 => "OK", 400 => "Bad Request", 404 => "Not Found", 405 => "Method Not Allowed", 500 => "Internal Server Error", _ => "Status",
            };
            var header = $"HTTP/1.1 {answer.Status} {reason}\r\nContent-Type: {answer.ContentType}\r\nContent-Length: {answer.Body.Length}\r\nConnection: close\r\n\r\n";
            await stream.WriteAsync(Encoding.ASCII.GetBytes(header), timeout.Token).ConfigureAwait(false);
            await stream.WriteAsync(answer.Body, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or SocketException) { }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        if (_accept is not null) await _accept.ConfigureAwait(false);
    }
}
