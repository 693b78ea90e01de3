using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace Samsa.Net;

/// <summary>Accepts TCP connections and runs a <see cref="Connection"/> for each.</summary>
public sealed class FrameListener : IAsyncDisposable
{
    private readonly IPEndPoint _endpoint;
    private readonly IFrameHandler _handler;
    private readonly ListenerOptions _options;
    private readonly ConcurrentDictionary<long, Connection> _connections = new();
    private Socket? _listenSocket;
    private Task _acceptTask = Task.CompletedTask;
    private long _nextConnectionId;
    private int _disposed;
    private IPEndPoint? _localEndPoint;

    public FrameListener(IPEndPoint endpoint, IFrameHandler handler, ListenerOptions options)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentNullException.ThrowIfNull(handler);
        ArgumentNullException.ThrowIfNull(options);
        if (options.MaxFrameBytes < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "MaxFrameBytes must not be negative");
        }
        _endpoint = endpoint;
        _handler = handler;
        _options = options;
    }

    /// <summary>The bound address (with the chosen port when port 0 was asked for). Valid after <see cref="Start"/>.</summary>
    public IPEndPoint LocalEndPoint => _localEndPoint ?? throw new InvalidOperationException("listener not started");

    /// <summary>Connections currently open.</summary>
    public int ConnectionCount => _connections.Count;

    /// <summary>A snapshot of the open connections.</summary>
    public IReadOnlyCollection<Connection> Connections => _connections.Values.ToArray();

    /// <summary>Binds, listens and starts accepting. Throws <see cref="ListenerBindException"/> (a SocketException) when the address is taken.</summary>
    public void Start()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (_listenSocket is not null)
        {
            throw new InvalidOperationException("listener already started");
        }
        var socket = new Socket(_endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (_endpoint.AddressFamily == AddressFamily.InterNetworkV6 && _endpoint.Address.Equals(IPAddress.IPv6Any))
            {
                socket.DualMode = true;
            }
            // Restarting a broker must not wait for TIME_WAIT sockets of its previous run: set
            // SO_REUSEADDR, as Java's ServerSocket does on Unix. Not through
            // SocketOptionName.ReuseAddress: on Linux and macOS .NET sets SO_REUSEPORT with it,
            // which lets a second process bind the same port while the first listens and the
            // kernel then splits connections between them; upstream's second broker or ZooKeeper
            // fails with "Address already in use", and so must ours.
            SetReuseAddressOnly(socket);
            // SO_RCVBUF on the listening socket, so accepted sockets start with it (the TCP window
            // scale is agreed in the handshake), as upstream's Acceptor sets it.
            if (_options.SocketReceiveBufferBytes > 0) socket.ReceiveBufferSize = _options.SocketReceiveBufferBytes;
            socket.Bind(_endpoint);
            socket.Listen(_options.Backlog);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new ListenerBindException(_options.Name, _endpoint, e);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        _listenSocket = socket;
        _localEndPoint = (IPEndPoint)socket.LocalEndPoint!;
        _acceptTask = AcceptLoopAsync(socket);
    }

    // setsockopt(SOL_SOCKET, SO_REUSEADDR, 1) alone. On Windows SO_REUSEADDR would let another
    // socket steal a bound port, and TIME_WAIT never blocks a bind there, so nothing is set.
    private static void SetReuseAddressOnly(Socket socket)
    {
        if (OperatingSystem.IsLinux())
        {
            socket.SetRawSocketOption(1 /* SOL_SOCKET */, 2 /* SO_REUSEADDR */, BitConverter.GetBytes(1));
        }
        else if (OperatingSystem.IsMacOS() || OperatingSystem.IsFreeBSD())
        {
            socket.SetRawSocketOption(0xffff /* SOL_SOCKET */, 4 /* SO_REUSEADDR */, BitConverter.GetBytes(1));
        }
    }

    private async Task AcceptLoopAsync(Socket listenSocket)
    {
        while (true)
        {
            Socket accepted;
            try
            {
                accepted = await listenSocket.AcceptAsync();
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (SocketException ex) when (ex.SocketErrorCode is SocketError.OperationAborted or SocketError.Interrupted or SocketError.InvalidArgument)
            {
                return; // the listen socket was closed
            }
            catch (SocketException)
            {
                continue; // a connection reset before we accepted it; keep listening
            }
            if (Volatile.Read(ref _disposed) != 0)
            {
                accepted.Dispose();
                return;
            }
            try
            {
                accepted.NoDelay = _options.NoDelay;
                if (_options.SocketSendBufferBytes > 0) accepted.SendBufferSize = _options.SocketSendBufferBytes;
            }
            catch (SocketException)
            {
                accepted.Dispose();
                continue;
            }
            var connection = new Connection(Interlocked.Increment(ref _nextConnectionId), accepted, _handler, _options);
            _connections[connection.Id] = connection;
            connection.Start(c => _connections.TryRemove(c.Id, out _));
        }
    }

    /// <summary>
    /// Stops accepting, closes every connection and waits (at most twice <see cref="ListenerOptions.CloseTimeout"/>)
    /// for their handlers' OnClosedAsync. Handlers blocked in OnFrameAsync should watch <see cref="Connection.Closed"/>.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        _listenSocket?.Dispose();
        await _acceptTask;
        Connection[] open = _connections.Values.ToArray();
        foreach (Connection connection in open)
        {
            connection.Close();
        }
        // A handler stuck in OnFrameAsync (one that ignores Connection.Closed) must not hang shutdown:
        // wait for the graceful closes a bounded time, then return.
        try
        {
            await Task.WhenAll(open.Select(c => c.RunTask)).WaitAsync(_options.CloseTimeout + _options.CloseTimeout);
        }
        catch (TimeoutException)
        {
        }
    }
}
