using System.Net;
using System.Net.Sockets;

namespace Samsa.Keeper.Client.Tests;

/// <summary>A loopback TCP relay between the client and a server, so tests can cut the client's
/// connection (<see cref="KillConnections"/>), stall it (<see cref="Pause"/>) or make a server
/// address unreachable (<see cref="DisposeAsync"/>) without touching the server.</summary>
public sealed class TcpProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly IPEndPoint _target;
    private readonly List<(TcpClient A, TcpClient B)> _pairs = new();
    private readonly CancellationTokenSource _stop = new();
    private TaskCompletionSource _open = Open();
    private readonly Task _acceptTask;

    public TcpProxy(string target)
    {
        var parts = target.Split(':');
        _target = new IPEndPoint(IPAddress.Parse(parts[0]), int.Parse(parts[1]));
        _listener.Start();
        _acceptTask = AcceptLoopAsync();
    }

    public string Address => $"127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";
    public int Accepted;

    private static TaskCompletionSource Open()
    {
        var t = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        t.SetResult();
        return t;
    }

    /// <summary>Stops relaying bytes in both directions (connections stay open, data waits).</summary>
    public void Pause()
    {
        lock (_pairs) if (_open.Task.IsCompleted) _open = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    public void Resume()
    {
        lock (_pairs) _open.TrySetResult();
    }

    /// <summary>Closes every relayed connection, as a network failure would.</summary>
    public void KillConnections()
    {
        lock (_pairs)
        {
            foreach (var (a, b) in _pairs) { a.Dispose(); b.Dispose(); }
            _pairs.Clear();
        }
    }

    private async Task AcceptLoopAsync()
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var a = await _listener.AcceptTcpClientAsync(_stop.Token);
                Interlocked.Increment(ref Accepted);
                var b = new TcpClient();
                try { await b.ConnectAsync(_target); }
                catch (SocketException) { a.Dispose(); b.Dispose(); continue; }
                lock (_pairs) _pairs.Add((a, b));
                _ = PumpAsync(a, b);
                _ = PumpAsync(b, a);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException) { }
    }

    private async Task PumpAsync(TcpClient from, TcpClient to)
    {
        var buf = new byte[64 * 1024];
        try
        {
            var src = from.GetStream();
            var dst = to.GetStream();
            while (true)
            {
                int n = await src.ReadAsync(buf);
                if (n == 0) break;
                Task gate;
                lock (_pairs) gate = _open.Task;
                await gate;
                await dst.WriteAsync(buf.AsMemory(0, n));
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or SocketException or InvalidOperationException) { }
        from.Dispose();
        to.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        KillConnections();
        Resume();
        try { await _acceptTask; } catch (OperationCanceledException) { }
    }
}
