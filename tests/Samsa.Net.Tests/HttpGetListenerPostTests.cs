using System.Net;
using System.Net.Sockets;
using System.Text;
using Xunit;

namespace Samsa.Net.Tests;

/// <summary>
/// HttpGetListener with a body limit (the web console's produce form): POST bodies up to the limit
/// reach the handler whole, a larger Content-Length is refused (413) before anything is read or
/// allocated for it, no Content-Length is 411, a body cut short is 400; without a limit POST stays 405.
/// </summary>
public sealed class HttpGetListenerPostTests
{
    private static async Task<string> ExchangeAsync(IPEndPoint ep, string head, byte[]? body = null)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(ep);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
        if (body is not null) await stream.WriteAsync(body);
        client.Client.Shutdown(SocketShutdown.Send);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        return await reader.ReadToEndAsync(timeout.Token);
    }

    private static HttpGetListener Echo(int? maxBody)
    {
        var ep = new IPEndPoint(IPAddress.Loopback, 0);
        var l = maxBody is { } max
            ? new HttpGetListener("test", ep, (r, _) => Task.FromResult(HttpAnswer.Text(200, "text/plain", $"{r.Method} {r.Path} {r.Query} {r.Body.Length} {Encoding.UTF8.GetString(r.Body)}")), max)
            : new HttpGetListener("test", ep, (p, q, _) => Task.FromResult(HttpAnswer.Text(200, "text/plain", $"GET {p} {q}")));
        l.Start();
        return l;
    }

    [Fact]
    public async Task PostBodiesUpToTheLimitReachTheHandler()
    {
        await using var l = Echo(100);
        var answer = await ExchangeAsync(l.LocalEndPoint, "POST /api/x?a=1 HTTP/1.1\r\nHost: h\r\ncontent-length: 5\r\n\r\n", "hello"u8.ToArray());
        Assert.StartsWith("HTTP/1.1 200 OK", answer, StringComparison.Ordinal);
        Assert.EndsWith("POST /api/x a=1 5 hello", answer, StringComparison.Ordinal);
        var big = new byte[100];
        Array.Fill(big, (byte)'z');
        Assert.EndsWith("100 " + new string('z', 100), await ExchangeAsync(l.LocalEndPoint, "POST /y HTTP/1.1\r\nContent-Length: 100\r\n\r\n", big), StringComparison.Ordinal);
        Assert.EndsWith("GET /z  0 ", await ExchangeAsync(l.LocalEndPoint, "GET /z HTTP/1.1\r\n\r\n"), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n", "413")]
    [InlineData("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", "413")]
    [InlineData("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", "413")]
    [InlineData("POST / HTTP/1.1\r\n\r\n", "411")]
    [InlineData("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort", "400")]
    [InlineData("PUT / HTTP/1.1\r\nContent-Length: 1\r\n\r\nx", "405")]
    public async Task BadBodiesAreRefused(string request, string status)
    {
        await using var l = Echo(100);
        Assert.StartsWith($"HTTP/1.1 {status} ", await ExchangeAsync(l.LocalEndPoint, request), StringComparison.Ordinal);
    }

    [Fact]
    public async Task WithoutALimitPostIsNotAllowed()
    {
        await using var l = Echo(null);
        Assert.StartsWith("HTTP/1.1 405 ", await ExchangeAsync(l.LocalEndPoint, "POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\nx"), StringComparison.Ordinal);
        Assert.EndsWith("GET /m q=1", await ExchangeAsync(l.LocalEndPoint, "GET /m?q=1 HTTP/1.1\r\n\r\n"), StringComparison.Ordinal);
    }
}
