using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Samsa.Testing;

/// <summary>
/// A loopback TCP forwarder standing for the network in front of one server (a broker's listener
/// or the Keeper as one broker sees it). <see cref="SamsaCluster"/> puts one in front of every
/// broker listener (the address the broker advertises) and one between every broker and the
/// Keeper, so network faults are real socket behaviour seen by real clients:
/// <list type="bullet">
/// <item><see cref="DropConnections"/>: every open connection is reset; new ones are accepted.</item>
/// <item><see cref="Severed"/> true for a connection's source: its bytes are held (nothing passes
/// in either direction, nothing is closed), as when packets vanish on a partition; new connections
/// are held too. <see cref="Heal"/> closes the held connections, as TCP would after a long outage.</item>
/// <item><see cref="Paused"/>: bytes stop moving on every connection but nothing is held for good;
/// clearing it lets the queued bytes through (a process stopped with SIGSTOP, then continued).</item>
/// </list>
/// A connection's source is what <see cref="Identify"/> makes of the first bytes the client sends.
/// </summary>
public sealed class FaultProxy : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly List<Link> _links = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accept;
    private volatile TaskCompletionSource _resume = NewGate(open: true);

    /// <param name="targetPort">The loopback port bytes are forwarded to; it may change (<see cref="TargetPort"/>).</param>
    public FaultProxy(int targetPort)
    {
        TargetPort = targetPort;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        _accept = Task.Run(AcceptAsync);
    }

    /// <summary>"127.0.0.1:port" of the proxy.</summary>
    public string Address => $"127.0.0.1:{Port.ToString(System.Globalization.CultureInfo.InvariantCulture)}";
    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Where new connections go.</summary>
    public int TargetPort { get; set; }

    /// <summary>Whether a connection from this source (see <see cref="Identify"/>) is held now.</summary>
    public Func<int, bool> Severed { get; set; } = _ => false;

    /// <summary>Names the source of a connection from its first chunk (-1 = unknown, e.g. a client).</summary>
    public Func<ReadOnlyMemory<byte>, int> Identify { get; set; } = _ => -1;

    /// <summary>While true, new connections are reset at once (nothing listens behind: a stopped or
    /// killed server's port).</summary>
    public bool Refusing { get; set; }

    private readonly HashSet<int> _stalled = [];

    /// <summary>Stops (or restarts) moving bytes on connections from one source, e.g. a paused
    /// broker's replica fetches to this broker; nothing is closed.</summary>
    public void Stall(int source, bool stalled)
    {
        lock (_stalled) if (stalled) _stalled.Add(source); else _stalled.Remove(source);
    }

    private bool IsStalled(int source)
    {
        if (source < 0) return false;
        lock (_stalled) return _stalled.Contains(source);
    }

    private long _bytesToClients, _bytesToSources;

    /// <summary>Bytes the server behind sent back on connections of unknown source (clients).</summary>
    public long BytesToClients => Interlocked.Read(ref _bytesToClients);

    /// <summary>Bytes the server behind sent back on connections of a named source (e.g. replica
    /// fetchers, with <see cref="KafkaBrokerSource"/> as <see cref="Identify"/>).</summary>
    public long BytesToSources => Interlocked.Read(ref _bytesToSources);

    /// <summary>Open connections through the proxy.</summary>
    public int ConnectionCount { get { lock (_links) return _links.Count; } }

    private static TaskCompletionSource NewGate(bool open)
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (open) gate.SetResult();
        return gate;
    }

    /// <summary>Stops (true) or resumes (false) moving bytes on every connection; nothing is closed.</summary>
    public bool Paused
    {
        get => !_resume.Task.IsCompleted;
        set
        {
            if (value == Paused) return;
            if (value) _resume = NewGate(open: false);
            else _resume.TrySetResult();
        }
    }

    private sealed class Link(TcpClient inbound, TcpClient outbound)
    {
        public readonly TcpClient Inbound = inbound, Outbound = outbound;
        public int Source = -1;
        public bool Identified;
        public volatile bool Held;
        public readonly CancellationTokenSource Gone = new();
        private int _closed;
        public void Close()
        {
            // Both pumps and the fault hooks may close a link; only the first does anything (a
            // disposed TcpClient has no socket left to set options on).
            if (Interlocked.Exchange(ref _closed, 1) != 0) return;
            try { Gone.Cancel(); } catch (ObjectDisposedException) { }
            // Linger 0: the peer sees a reset at once, as when a machine's connections are torn down.
            try { if (Inbound.Client is { } socket) socket.LingerState = new LingerOption(true, 0); }
            catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
            Inbound.Dispose();
            Outbound.Dispose();
        }
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient inbound;
            try { inbound = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException) { return; }
            catch (SocketException) when (!_stop.IsCancellationRequested) { continue; }
            catch (SocketException) { return; }
            _ = Task.Run(() => ConnectAsync(inbound));
        }
    }

    private async Task ConnectAsync(TcpClient inbound)
    {
        // No Nagle on either hop: the servers behind write responses in parts.
        inbound.NoDelay = true;
        var outbound = new TcpClient { NoDelay = true };
        var link = new Link(inbound, outbound);
        if (Refusing)
        {
            link.Close();
            return;
        }
        NetworkStream clientStream, serverStream;
        try
        {
            await outbound.ConnectAsync(new IPEndPoint(IPAddress.Loopback, TargetPort), _stop.Token);
            clientStream = inbound.GetStream();
            serverStream = outbound.GetStream();
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException or InvalidOperationException or IOException)
        {
            // The server behind is down (a stopped broker): the client sees its connection close.
            link.Close();
            return;
        }
        lock (_links) _links.Add(link);
        _ = PumpAsync(link, clientStream, serverStream, fromClient: true);
        _ = PumpAsync(link, serverStream, clientStream, fromClient: false);
    }

    private async Task PumpAsync(Link link, NetworkStream from, NetworkStream to, bool fromClient)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                int n = await from.ReadAsync(buffer, _stop.Token);
                if (n == 0) break;
                if (fromClient && !link.Identified)
                {
                    link.Source = Identify(buffer.AsMemory(0, n));
                    link.Identified = true;
                }
                if (link.Held || Severed(link.Source))
                {
                    link.Held = true;
                    await Task.Delay(Timeout.Infinite, link.Gone.Token);
                }
                await _resume.Task.WaitAsync(link.Gone.Token);
                while (IsStalled(link.Source)) await Task.Delay(20, link.Gone.Token);
                await to.WriteAsync(buffer.AsMemory(0, n), _stop.Token);
                if (!fromClient) Interlocked.Add(ref link.Source >= 0 ? ref _bytesToSources : ref _bytesToClients, n);
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or SocketException) { }
        if (!link.Held)
        {
            link.Close();
            lock (_links) _links.Remove(link);
        }
    }

    /// <summary>Holds every open connection whose source is severed now (even an idle one).</summary>
    public void Sever()
    {
        lock (_links)
            foreach (var l in _links)
                if (Severed(l.Source)) l.Held = true;
    }

    /// <summary>Closes the connections held by a partition (call once <see cref="Severed"/> answers false).</summary>
    public void Heal()
    {
        List<Link> held;
        lock (_links)
        {
            held = _links.Where(l => l.Held).ToList();
            _links.RemoveAll(l => l.Held);
        }
        foreach (var l in held) l.Close();
    }

    /// <summary>Cuts the server off for good: every open connection is reset and new ones are reset
    /// as soon as they arrive, as for a machine that crashed and never came back.</summary>
    public void Cut()
    {
        Refusing = true;
        DropConnections();
    }

    /// <summary>Resets every open connection; new ones are accepted as before.</summary>
    public int DropConnections()
    {
        List<Link> all;
        lock (_links)
        {
            all = [.. _links];
            _links.Clear();
        }
        foreach (var l in all) l.Close();
        return all.Count;
    }

    /// <summary>Resets the connections that came from one source (a killed broker's fetchers).</summary>
    public int DropConnectionsFrom(int source)
    {
        List<Link> from;
        lock (_links)
        {
            from = _links.Where(l => l.Identified && l.Source == source).ToList();
            _links.RemoveAll(from.Contains);
        }
        foreach (var l in from) l.Close();
        return from.Count;
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        _resume.TrySetResult();
        DropConnections();
        try { await _accept; } catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { }
    }

    /// <summary>For a proxy in front of a Kafka listener: a connection whose first request carries a
    /// broker's own client id ("broker-&lt;id&gt;-...", as replica fetchers and the broker's other
    /// inter-broker channels name themselves) comes from broker id; anything else is -1.</summary>
    public static int KafkaBrokerSource(ReadOnlyMemory<byte> first)
    {
        var span = first.Span;
        // Request header v1+: size, api_key, api_version, correlation_id, client_id (int16 length).
        if (span.Length < 14) return -1;
        short len = BinaryPrimitives.ReadInt16BigEndian(span[12..]);
        if (len < 8 || span.Length < 14 + len) return -1;
        string cid = Encoding.UTF8.GetString(span.Slice(14, len));
        if (!cid.StartsWith("broker-", StringComparison.Ordinal)) return -1;
        int dash = cid.IndexOf('-', 7);
        return dash > 7 && int.TryParse(cid.AsSpan(7, dash - 7), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int id) ? id : -1;
    }
}
