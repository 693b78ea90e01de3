using System.Net;
using System.Net.Sockets;

namespace Samsa.Cluster.Tests;

/// <summary>A loopback TCP forwarder between one broker and the coordination server. Cutting it
/// drops the broker's connections and refuses new ones, as a crashed machine would: the server
/// sees no close-session, so the broker's session lives until its timeout.</summary>
public sealed class CuttableProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly IPEndPoint _target;
    private readonly List<TcpClient> _connections = [];
    private readonly CancellationTokenSource _cut = new();
    private readonly Task _accept;

    public CuttableProxy(string target)
    {
        int colon = target.LastIndexOf(':');
        _target = new IPEndPoint(IPAddress.Parse(target[..colon]), int.Parse(target[(colon + 1)..]));
        _listener.Start();
        _accept = Task.Run(AcceptAsync);
    }

    public string Address => $"127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";

    private async Task AcceptAsync()
    {
        while (!_cut.IsCancellationRequested)
        {
            TcpClient inbound;
            try { inbound = await _listener.AcceptTcpClientAsync(_cut.Token); }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { return; }
            var outbound = new TcpClient();
            try { await outbound.ConnectAsync(_target, _cut.Token); }
            catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException) { inbound.Dispose(); outbound.Dispose(); continue; }
            lock (_connections) { _connections.Add(inbound); _connections.Add(outbound); }
            _ = PumpAsync(inbound.GetStream(), outbound.GetStream(), inbound, outbound);
            _ = PumpAsync(outbound.GetStream(), inbound.GetStream(), inbound, outbound);
        }
    }

    private async Task PumpAsync(NetworkStream from, NetworkStream to, TcpClient a, TcpClient b)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                int n = await from.ReadAsync(buffer, _cut.Token);
                if (n == 0) break;
                await to.WriteAsync(buffer.AsMemory(0, n), _cut.Token);
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or SocketException) { }
        a.Dispose();
        b.Dispose();
    }

    public void Cut()
    {
        _cut.Cancel();
        _listener.Stop();
        lock (_connections)
            foreach (var c in _connections) c.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        Cut();
        try { await _accept; } catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { }
    }
}
