using System.Net;
using System.Net.Sockets;

namespace Samsa.Net;

/// <summary>
/// connect() for a socket that will only ever be used with blocking calls from one thread (the
/// broker's replica fetchers, a Keeper follower's connection to its leader).
/// </summary>
public static class BlockingConnect
{
    /// <summary>
    /// A blocking connect() bounded by the send timeout (Linux applies SO_SNDTIMEO to connect) and
    /// ended by <paramref name="ct"/> closing the socket (OperationCanceledException). The socket is
    /// never made non-blocking, not even for the connect: the runtime keeps O_NONBLOCK on a socket
    /// once it was set (an asynchronous connect, or Socket.Blocking = false then true) and then
    /// emulates every later blocking call through its epoll thread — a wake-up there, then one of the
    /// waiting thread — where a blocking socket's answer wakes the waiting thread directly.
    /// The send timeout is left at 0 (none) afterwards.
    /// </summary>
    public static void Connect(Socket socket, EndPoint endPoint, int timeoutMs, CancellationToken ct)
    {
        socket.SendTimeout = Math.Max(1, timeoutMs);
        using (ct.Register(static s => ((Socket)s!).Dispose(), socket))
        {
            try { socket.Connect(endPoint); }
            catch (Exception e) when (ct.IsCancellationRequested && e is SocketException or ObjectDisposedException)
            {
                throw new OperationCanceledException(ct);
            }
        }
        ct.ThrowIfCancellationRequested();
        socket.SendTimeout = 0;
    }
}
