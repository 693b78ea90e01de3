using System.Net;
using System.Net.Sockets;

namespace Samsa.Net.Tests;

/// <summary>
/// A peer that closes its end while a handler waits (a long-poll request) is seen at once: the
/// connection's Closed token fires, the handler gives up, and the server closes its socket rather
/// than leaving it in CLOSE-WAIT until the wait would have ended.
/// </summary>
public class PeerCloseTests
{
    private sealed class ParkingHandler : EchoHandler
    {
        public readonly TaskCompletionSource Parked = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public readonly TaskCompletionSource Released = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public int Handled;

        public override async ValueTask OnFrameAsync(Connection connection, ReadOnlyMemory<byte> frame)
        {
            Interlocked.Increment(ref Handled);
            if (frame.Length > 0 && frame.Span[0] == 0xEE)
            {
                Parked.TrySetResult();
                try { await Task.Delay(TimeSpan.FromMinutes(10), connection.Closed); }
                catch (OperationCanceledException) { Released.TrySetResult(); }
                return;
            }
            await base.OnFrameAsync(connection, frame);
        }
    }

    [Fact]
    public async Task A_peer_FIN_releases_a_waiting_handler_and_the_server_closes_its_socket()
    {
        var handler = new ParkingHandler { ExpectedCloses = 1 };
        await using var listener = new FrameListener(new IPEndPoint(IPAddress.Loopback, 0), handler, new ListenerOptions());
        listener.Start();
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(listener.LocalEndPoint);
        await socket.SendAsync(TestClient.Frame([0xEE]));
        await handler.Parked.Task.WaitAsync(TimeSpan.FromSeconds(5));

        socket.Shutdown(SocketShutdown.Send);
        await handler.Released.Task.WaitAsync(TimeSpan.FromSeconds(2));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        Assert.Equal(0, await socket.ReceiveAsync(new byte[8], SocketFlags.None, timeout.Token));
        await handler.AllClosed.Task.WaitAsync(TimeSpan.FromSeconds(2));
        Assert.Equal(0, listener.ConnectionCount);
    }

    [Fact]
    public async Task Frames_received_before_the_FIN_are_still_answered()
    {
        var handler = new ParkingHandler { ExpectedCloses = 1 };
        await using var listener = new FrameListener(new IPEndPoint(IPAddress.Loopback, 0), handler, new ListenerOptions());
        listener.Start();
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(listener.LocalEndPoint);
        var frames = new MemoryStream();
        for (int i = 1; i <= 5; i++) frames.Write(TestClient.Frame([(byte)i]));
        await socket.SendAsync(frames.ToArray());
        socket.Shutdown(SocketShutdown.Send);
        var received = new MemoryStream();
        var buffer = new byte[64];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        int n;
        while ((n = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token)) > 0) received.Write(buffer, 0, n);
        Assert.Equal(frames.ToArray(), received.ToArray());
    }

    [Fact]
    public async Task A_four_letter_word_sent_with_FIN_is_still_answered()
    {
        var handler = new EchoHandler();
        await using var listener = new FrameListener(new IPEndPoint(IPAddress.Loopback, 0), handler, new ListenerOptions());
        listener.Start();
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(listener.LocalEndPoint);
        await socket.SendAsync("ruok"u8.ToArray());
        socket.Shutdown(SocketShutdown.Send); // as `echo ruok | nc -N`
        var buffer = new byte[16];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        int total = 0, n;
        while ((n = await socket.ReceiveAsync(buffer.AsMemory(total), SocketFlags.None, timeout.Token)) > 0) total += n;
        Assert.Equal("imok", System.Text.Encoding.ASCII.GetString(buffer, 0, total));
    }
}
