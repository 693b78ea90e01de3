using System.Net;
using System.Net.Sockets;

namespace Samsa.Net;

/// <summary>
/// A listener could not bind its address (most often: another process holds the port). The
/// message is one line naming the listener and the address, for a command line to print as is —
/// upstream's servers stop with "Address already in use" the same way (Kafka's SocketServer
/// wraps it in "Socket server failed to bind to host:port", ZooKeeper's NIOServerCnxnFactory in
/// a BindException naming the port). A <see cref="SocketException"/>, so callers that catch those
/// keep working.
/// </summary>
public sealed class ListenerBindException : SocketException
{
    public ListenerBindException(string listener, IPEndPoint endpoint, SocketException inner)
        : base((int)inner.SocketErrorCode)
    {
        Listener = listener;
        EndPoint = endpoint;
        Reason = inner.SocketErrorCode switch
        {
            SocketError.AddressAlreadyInUse => "address already in use",
            SocketError.AddressNotAvailable => "address not available on this host",
            SocketError.AccessDenied => "permission denied",
            _ => inner.Message,
        };
    }

    public string Listener { get; }
    public IPEndPoint EndPoint { get; }
    /// <summary>Why the bind failed, in a few words ("address already in use").</summary>
    public string Reason { get; }

    public override string Message =>
        $"{Listener} listener cannot bind {FormatEndPoint(EndPoint)}: {Reason}";

    private static string FormatEndPoint(IPEndPoint ep) =>
        ep.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{ep.Address}]:{ep.Port}" : $"{ep.Address}:{ep.Port}";
}
