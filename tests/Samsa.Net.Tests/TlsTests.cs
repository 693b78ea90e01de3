using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Samsa.Testing;

namespace Samsa.Net.Tests;

public class TlsTests : IClassFixture<TlsTests.Certificates>
{
    public sealed class Certificates : IDisposable
    {
        public readonly TestCertificateAuthority Ca = TestCertificateAuthority.Create("CN=Net Test CA");
        public readonly TestCertificateAuthority OtherCa = TestCertificateAuthority.Create("CN=Someone Else CA");
        public readonly X509Certificate2 Server;
        public readonly X509Certificate2 Client;
        public readonly X509Certificate2 StrangerClient;

        public Certificates()
        {
            Server = Ca.IssueServer();
            Client = Ca.IssueClient("CN=alice,OU=eng,O=Samsa");
            StrangerClient = OtherCa.IssueClient("CN=mallory");
        }

        public void Dispose()
        {
            Ca.Dispose();
            OtherCa.Dispose();
        }
    }

    private static readonly IPEndPoint Loopback = new(IPAddress.Loopback, 0);
    private readonly Certificates _certs;

    public TlsTests(Certificates certs) => _certs = certs;

    private sealed class CertHandler : EchoHandler
    {
        public readonly ConcurrentQueue<X509Certificate2?> Seen = new();

        public override ValueTask OnConnectedAsync(Connection connection)
        {
            Seen.Enqueue(connection.RemoteCertificate);
            Assert.True(connection.IsTls);
            Assert.False(connection.ZeroCopyFileSend);
            return base.OnConnectedAsync(connection);
        }
    }

    private (FrameListener Listener, ConcurrentQueue<Exception> Errors) Start(IFrameHandler handler, ClientCertificateMode mode = ClientCertificateMode.None, TimeSpan? handshakeTimeout = null, bool zeroCopy = true)
    {
        var errors = new ConcurrentQueue<Exception>();
        var options = new ListenerOptions
        {
            ZeroCopyFileSend = zeroCopy,
            Name = "test",
            OnError = (_, e) => errors.Enqueue(e),
            Tls = new TlsServerOptions(_certs.Server)
            {
                ClientCertificateMode = mode,
                TrustedCertificates = _certs.Ca.TrustStore,
                HandshakeTimeout = handshakeTimeout ?? TimeSpan.FromSeconds(10),
            },
        };
        var listener = new FrameListener(Loopback, handler, options);
        listener.Start();
        return (listener, errors);
    }

    private async Task<SslStream> ConnectTlsAsync(IPEndPoint endpoint, X509Certificate2? clientCertificate = null, X509Certificate2Collection? trust = null)
    {
        var tcp = new TcpClient(AddressFamily.InterNetwork) { NoDelay = true };
        await tcp.ConnectAsync(endpoint.Address, endpoint.Port);
        var client = new TlsClientOptions
        {
            TrustedCertificates = trust ?? _certs.Ca.TrustStore,
            ClientCertificate = clientCertificate,
            HandshakeTimeout = TimeSpan.FromSeconds(10),
        };
        return await client.AuthenticateAsync(tcp.GetStream(), "localhost");
    }

    private static async Task WriteFrameAsync(Stream stream, byte[] payload)
    {
        await stream.WriteAsync(TestClient.Frame(payload));
        await stream.FlushAsync();
    }

    private static async Task<byte[]> ReadFrameAsync(Stream stream)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        byte[] header = new byte[4];
        await stream.ReadExactlyAsync(header, cts.Token);
        byte[] payload = new byte[BinaryPrimitives.ReadInt32BigEndian(header)];
        await stream.ReadExactlyAsync(payload, cts.Token);
        return payload;
    }

    private static async Task<bool> ClosedByPeerAsync(Stream stream)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        byte[] sink = new byte[4096];
        try
        {
            while (await stream.ReadAsync(sink, cts.Token) > 0)
            {
            }
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
        catch (Exception e) when (e is IOException or AuthenticationException or ObjectDisposedException)
        {
            return true;
        }
    }

    private static async Task WaitForAsync(Func<bool> condition)
    {
        for (int i = 0; i < 200 && !condition(); i++)
        {
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task Frames_of_every_size_round_trip_over_tls_without_a_client_certificate()
    {
        var handler = new CertHandler();
        var (listener, errors) = Start(handler);
        await using var _ = listener;
        await using SslStream ssl = await ConnectTlsAsync(listener.LocalEndPoint);
        var random = new Random(7);
        // Small frames, frames spanning several TLS records, and one larger than the receive pipe's
        // large-frame threshold (assembled incrementally) and the send pipe's pause level.
        foreach (int size in new[] { 0, 1, 100, 16 * 1024, 70_000, 600_000, 5 * 1024 * 1024 })
        {
            byte[] payload = new byte[size];
            random.NextBytes(payload);
            await WriteFrameAsync(ssl, payload);
            Assert.Equal(payload, await ReadFrameAsync(ssl));
        }
        Assert.Single(handler.Seen);
        Assert.Null(handler.Seen.Single());
        Assert.Empty(errors);
    }

    [Fact]
    public async Task Pipelined_frames_are_answered_in_order_over_tls()
    {
        var (listener, errors) = Start(new EchoHandler());
        await using var _ = listener;
        await using SslStream ssl = await ConnectTlsAsync(listener.LocalEndPoint);
        var all = new MemoryStream();
        var payloads = new List<byte[]>();
        for (int i = 0; i < 300; i++)
        {
            byte[] payload = Encoding.ASCII.GetBytes(new string((char)('a' + i % 26), 1 + i * 37 % 3000));
            payloads.Add(payload);
            all.Write(TestClient.Frame(payload));
        }
        await ssl.WriteAsync(all.ToArray());
        foreach (byte[] expected in payloads)
        {
            Assert.Equal(expected, await ReadFrameAsync(ssl));
        }
        Assert.Empty(errors);
    }

    [Fact]
    public async Task Required_client_certificate_is_exposed_to_the_handler()
    {
        var handler = new CertHandler();
        var (listener, errors) = Start(handler, ClientCertificateMode.Required);
        await using var _ = listener;
        await using SslStream ssl = await ConnectTlsAsync(listener.LocalEndPoint, _certs.Client);
        await WriteFrameAsync(ssl, [1, 2, 3]);
        Assert.Equal(new byte[] { 1, 2, 3 }, await ReadFrameAsync(ssl));
        X509Certificate2? seen = Assert.Single(handler.Seen);
        Assert.NotNull(seen);
        Assert.Equal(_certs.Client.Thumbprint, seen.Thumbprint);
        Assert.Equal("CN=alice, OU=eng, O=Samsa", seen.Subject);
        Assert.Empty(errors);
    }

    [Fact]
    public async Task Required_mode_refuses_a_client_without_a_certificate_with_one_log_line()
    {
        var handler = new CertHandler();
        var (listener, errors) = Start(handler, ClientCertificateMode.Required);
        await using var _ = listener;
        // TLS 1.3 clients finish their side before the server checks the certificate: the refusal
        // shows as the connection closing on the first read, or as a failed handshake.
        try
        {
            await using SslStream ssl = await ConnectTlsAsync(listener.LocalEndPoint);
            await WriteFrameAsync(ssl, [1]);
            Assert.True(await ClosedByPeerAsync(ssl));
        }
        catch (TlsHandshakeException)
        {
        }
        await WaitForAsync(() => !errors.IsEmpty);
        await Task.Delay(200);
        Exception error = Assert.Single(errors);
        Assert.IsType<TlsHandshakeException>(error);
        Assert.StartsWith("TLS handshake on test listener with 127.0.0.1:", error.Message);
        Assert.DoesNotContain('\n', error.Message);
        Assert.Empty(handler.Seen);
        Assert.Equal(0, handler.Connected);
    }

    [Fact]
    public async Task Requested_mode_accepts_no_certificate_but_refuses_one_from_an_untrusted_ca()
    {
        var handler = new CertHandler();
        var (listener, errors) = Start(handler, ClientCertificateMode.Requested);
        await using var _ = listener;
        await using (SslStream ssl = await ConnectTlsAsync(listener.LocalEndPoint))
        {
            await WriteFrameAsync(ssl, [9]);
            Assert.Equal(new byte[] { 9 }, await ReadFrameAsync(ssl));
        }
        try
        {
            await using SslStream stranger = await ConnectTlsAsync(listener.LocalEndPoint, _certs.StrangerClient);
            await WriteFrameAsync(stranger, [1]);
            Assert.True(await ClosedByPeerAsync(stranger));
        }
        catch (TlsHandshakeException)
        {
        }
        await WaitForAsync(() => !errors.IsEmpty);
        Assert.IsType<TlsHandshakeException>(Assert.Single(errors));
        Assert.Single(handler.Seen);
    }

    [Fact]
    public async Task Client_that_does_not_trust_the_server_ca_fails_the_handshake()
    {
        var (listener, errors) = Start(new EchoHandler());
        await using var _ = listener;
        var ex = await Assert.ThrowsAsync<TlsHandshakeException>(() => ConnectTlsAsync(listener.LocalEndPoint, trust: _certs.OtherCa.TrustStore));
        Assert.Contains("TLS handshake with localhost failed", ex.Message);
        // The server may see a finished handshake and then the client leaving (.NET clients check
        // the chain after the TLS 1.3 handshake): at most one line, never an exception escaping.
        await WaitForAsync(() => listener.ConnectionCount == 0);
        Assert.True(errors.Count <= 1);
        Assert.Equal(0, listener.ConnectionCount);
    }

    [Fact]
    public async Task Plain_kafka_bytes_on_a_tls_port_close_the_connection_with_one_log_line()
    {
        var handler = new CertHandler();
        var (listener, errors) = Start(handler);
        await using var _ = listener;
        using var client = await TestClient.ConnectAsync(listener.LocalEndPoint);
        // An ApiVersions v3 request header as a plaintext Kafka client sends it first.
        byte[] apiVersions = Convert.FromHexString("00120003000000010007726466616b6100");
        await client.SendFrameAsync(apiVersions);
        Assert.True(await client.WaitForCloseAsync());
        await WaitForAsync(() => !errors.IsEmpty);
        await Task.Delay(100);
        Exception error = Assert.Single(errors);
        Assert.IsType<TlsHandshakeException>(error);
        Assert.Contains("first byte 0x00 does not start a TLS handshake (a plaintext client on a TLS port?)", error.Message);
        Assert.Empty(handler.Seen);
        Assert.Equal(0, listener.ConnectionCount);
    }

    [Fact]
    public async Task A_port_probe_that_closes_without_a_byte_is_not_logged()
    {
        var handler = new EchoHandler();
        var (listener, errors) = Start(handler);
        await using var _ = listener;
        for (int i = 0; i < 3; i++)
        {
            using var client = await TestClient.ConnectAsync(listener.LocalEndPoint);
            client.Socket.Shutdown(SocketShutdown.Send);
            Assert.True(await client.WaitForCloseAsync());
        }
        await WaitForAsync(() => listener.ConnectionCount == 0);
        Assert.Equal(0, listener.ConnectionCount);
        Assert.Empty(errors);
        Assert.Equal(0, handler.Connected);
    }

    [Fact]
    public async Task A_stalled_handshake_is_closed_after_the_timeout()
    {
        var (listener, errors) = Start(new EchoHandler(), handshakeTimeout: TimeSpan.FromMilliseconds(300));
        await using var _ = listener;
        using var client = await TestClient.ConnectAsync(listener.LocalEndPoint);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        Assert.True(await client.WaitForCloseAsync());
        Assert.InRange(watch.Elapsed, TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(10));
        await WaitForAsync(() => !errors.IsEmpty);
        Assert.Contains("not finished within 0.3 s", Assert.Single(errors).Message);
    }

    [Fact]
    public async Task Garbage_after_the_handshake_closes_the_connection_with_one_log_line()
    {
        var handler = new CertHandler();
        var (listener, errors) = Start(handler);
        await using var _ = listener;
        var tcp = new TcpClient(AddressFamily.InterNetwork);
        await tcp.ConnectAsync(listener.LocalEndPoint.Address, listener.LocalEndPoint.Port);
        NetworkStream raw = tcp.GetStream();
        var options = new TlsClientOptions { TrustedCertificates = _certs.Ca.TrustStore };
        var ssl = new SslStream(raw, leaveInnerStreamOpen: true);
        await ssl.AuthenticateAsClientAsync(options.BuildAuthenticationOptions("localhost"));
        await WriteFrameAsync(ssl, [5]);
        Assert.Equal(new byte[] { 5 }, await ReadFrameAsync(ssl));
        // An application-data record header followed by bytes that do not decrypt.
        byte[] garbage = new byte[64];
        new Random(3).NextBytes(garbage);
        garbage[0] = 0x17; garbage[1] = 3; garbage[2] = 3; garbage[3] = 0; garbage[4] = 59;
        await raw.WriteAsync(garbage);
        Assert.True(await ClosedByPeerAsync(raw));
        await WaitForAsync(() => !errors.IsEmpty);
        await Task.Delay(100);
        Exception error = Assert.Single(errors);
        Assert.StartsWith("TLS connection on test listener with 127.0.0.1:", error.Message);
        await WaitForAsync(() => handler.ClosedCount == 1);
        Assert.Equal(1, handler.ClosedCount);
        tcp.Dispose();
    }

    private sealed class FileHandler(string path) : EchoHandler
    {
        public long ZeroCopyBytes = -1;

        public override async ValueTask OnFrameAsync(Connection connection, ReadOnlyMemory<byte> frame)
        {
            int offset = BinaryPrimitives.ReadInt32BigEndian(frame.Span);
            int count = BinaryPrimitives.ReadInt32BigEndian(frame.Span[4..]);
            await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.Asynchronous);
            await connection.SendFrameAsync(new FramePart[] { Encoding.ASCII.GetBytes("head"), new FramePart(file, offset, count) });
            ZeroCopyBytes = connection.ZeroCopyFileBytes;
        }
    }

    [Fact]
    public async Task File_parts_are_copied_through_tls_never_sent_with_sendfile()
    {
        string path = Path.GetTempFileName();
        try
        {
            byte[] content = new byte[3 * 1024 * 1024];
            new Random(11).NextBytes(content);
            await File.WriteAllBytesAsync(path, content);
            var handler = new FileHandler(path);
            // The listener asks for zero copy; TLS must override it.
            var (listener, errors) = Start(handler, zeroCopy: true);
            await using var _ = listener;
            await using SslStream ssl = await ConnectTlsAsync(listener.LocalEndPoint);
            byte[] request = new byte[8];
            BinaryPrimitives.WriteInt32BigEndian(request, 1000);
            BinaryPrimitives.WriteInt32BigEndian(request.AsSpan(4), 2 * 1024 * 1024);
            await WriteFrameAsync(ssl, request);
            byte[] frame = await ReadFrameAsync(ssl);
            Assert.Equal("head", Encoding.ASCII.GetString(frame, 0, 4));
            Assert.Equal(content.AsSpan(1000, 2 * 1024 * 1024).ToArray(), frame.AsSpan(4).ToArray());
            Assert.Equal(0, handler.ZeroCopyBytes);
            Assert.Empty(errors);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Server_close_sends_close_notify_and_the_handler_sees_one_close()
    {
        var handler = new EchoHandler();
        var (listener, errors) = Start(handler);
        await using SslStream ssl = await ConnectTlsAsync(listener.LocalEndPoint);
        await WriteFrameAsync(ssl, [1]);
        Assert.Equal(new byte[] { 1 }, await ReadFrameAsync(ssl));
        await listener.DisposeAsync();
        // close_notify makes SslStream report a clean end of stream (0), not a truncation error.
        byte[] sink = new byte[16];
        Assert.Equal(0, await ssl.ReadAsync(sink).AsTask().WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Equal(1, handler.ClosedCount);
        Assert.Empty(errors);
    }
}
