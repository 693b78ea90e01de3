using System.Net;
using System.Net.Sockets;

namespace Samsa.Net.Tests;

/// <summary>
/// A port is one listener's: a second bind while the first listens fails (as upstream's
/// "Address already in use"), with a one-line message naming the listener and the address; a
/// restart right after the previous listener closed (its connections in TIME_WAIT) still binds.
/// </summary>
public class BindTests
{
    [Fact]
    public async Task A_second_listener_on_a_port_in_use_fails_with_a_clear_message()
    {
        await using var first = new FrameListener(new IPEndPoint(IPAddress.Loopback, 0), new EchoHandler(), new ListenerOptions { Name = "kafka PLAINTEXT" });
        first.Start();
        int port = first.LocalEndPoint.Port;
        await using var second = new FrameListener(new IPEndPoint(IPAddress.Loopback, port), new EchoHandler(), new ListenerOptions { Name = "kafka PLAINTEXT" });
        var e = Assert.Throws<ListenerBindException>(second.Start);
        Assert.Equal(SocketError.AddressAlreadyInUse, e.SocketErrorCode);
        Assert.Equal($"kafka PLAINTEXT listener cannot bind 127.0.0.1:{port}: address already in use", e.Message);
        Assert.DoesNotContain('\n', e.Message);

        // The first listener still gets every connection (none is handed to a second socket).
        for (int i = 0; i < 20; i++)
        {
            using var client = await TestClient.ConnectAsync(first.LocalEndPoint);
            await client.SendFrameAsync([1, 2, 3]);
            Assert.Equal(new byte[] { 1, 2, 3 }, await client.ReadFrameAsync());
        }
    }

    [Fact]
    public async Task Another_process_style_socket_with_SO_REUSEPORT_cannot_share_the_port()
    {
        await using var listener = new FrameListener(new IPEndPoint(IPAddress.Loopback, 0), new EchoHandler(), new ListenerOptions());
        listener.Start();
        // .NET's ReuseAddress sets SO_REUSEADDR and SO_REUSEPORT on Linux: the kernel lets such a
        // socket share the port only with a listener that set SO_REUSEPORT too.
        using var intruder = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        intruder.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        var e = Assert.Throws<SocketException>(() => intruder.Bind(new IPEndPoint(IPAddress.Loopback, listener.LocalEndPoint.Port)));
        Assert.Equal(SocketError.AddressAlreadyInUse, e.SocketErrorCode);
    }

    [Fact]
    public async Task A_restart_binds_the_port_while_the_last_runs_connections_are_in_TIME_WAIT()
    {
        var first = new FrameListener(new IPEndPoint(IPAddress.Loopback, 0), new EchoHandler(), new ListenerOptions());
        first.Start();
        var endpoint = first.LocalEndPoint;
        using (var client = await TestClient.ConnectAsync(endpoint))
        {
            await client.SendFrameAsync([9]);
            Assert.Equal(new byte[] { 9 }, await client.ReadFrameAsync());
            // The server closes first, so its side of the connection (on the listening port) goes to TIME_WAIT.
            await first.DisposeAsync();
            await Task.Delay(100);
        }
        await using var restarted = new FrameListener(endpoint, new EchoHandler(), new ListenerOptions());
        restarted.Start();
        using var again = await TestClient.ConnectAsync(restarted.LocalEndPoint);
        await again.SendFrameAsync([7]);
        Assert.Equal(new byte[] { 7 }, await again.ReadFrameAsync());
    }
}

/// <summary>ListenerOptions.SocketSendBufferBytes / SocketReceiveBufferBytes (the broker's
/// socket.send.buffer.bytes / socket.receive.buffer.bytes) reach the accepted sockets.</summary>
public class SocketBufferTests
{
    [Fact]
    public async Task Accepted_sockets_take_the_configured_buffer_sizes()
    {
        // Small enough to be below the OS defaults (Linux: 16 KiB send, 128 KiB receive) even doubled.
        const int size = 6000;
        await using var listener = new FrameListener(new IPEndPoint(IPAddress.Loopback, 0), new EchoHandler(),
            new ListenerOptions { SocketSendBufferBytes = size, SocketReceiveBufferBytes = size });
        listener.Start();
        using var client = await TestClient.ConnectAsync(listener.LocalEndPoint);
        await client.SendFrameAsync([1]);
        Assert.Equal(new byte[] { 1 }, await client.ReadFrameAsync());
        var (send, receive) = Assert.Single(listener.Connections).SocketBufferSizes;
        Assert.InRange(send, size, 2 * size);
        Assert.InRange(receive, size, 2 * size);
    }
}
