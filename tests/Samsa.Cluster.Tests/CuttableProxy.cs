using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Samsa.Cluster.Tests;

/// <summary>
/// A loopback TCP forwarder that stands for the network between two machines.
///
/// <see cref="Cut()"/> without arguments (the original use: a broker's link to the coordination
/// server) drops every connection and refuses new ones for good, as a crashed machine would.
///
/// For partitions that heal, the proxy asks <see cref="Severed"/> before forwarding each chunk,
/// with the source of the connection: while it answers true, the connection is black-holed (no
/// byte passes in either direction, nothing is closed, as when packets vanish on a partition) and
/// new connections are accepted and black-holed too. <see cref="Heal"/> then closes the black-holed
/// connections (their peers must reconnect, as after a partition long enough for TCP to give up)
/// and lets new ones through. A connection's source is what <see cref="Identify"/> makes of the
/// first bytes the client sends (e.g. the Kafka client id of a replica fetcher), else -1.
/// </summary>
public sealed class CuttableProxy : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly IPEndPoint _target;
    private readonly List<Link> _links = [];
    private readonly CancellationTokenSource _cut = new();
    private readonly Task _accept;

    public CuttableProxy(string target, int listenPort = 0)
    {
        int colon = target.LastIndexOf(':');
        _target = new IPEndPoint(IPAddress.Parse(target[..colon]), int.Parse(target[(colon + 1)..]));
        _listener = new TcpListener(IPAddress.Loopback, listenPort);
        _listener.Start();
        _accept = Task.Run(AcceptAsync);
    }

    public string Address => $"127.0.0.1:{Port}";
    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;
    public int TargetPort => _target.Port;

    /// <summary>Whether traffic of a connection from this source is black-holed now.</summary>
    public Func<int, bool> Severed { get; set; } = _ => false;

    private long _bytesToClients, _bytesToReplicas;

    /// <summary>Bytes the target sent back on connections of unknown source (clients).</summary>
    public long BytesToClients => Interlocked.Read(ref _bytesToClients);
    /// <summary>Bytes the target sent back on connections of a named source (replica fetchers).</summary>
    public long BytesToReplicas => Interlocked.Read(ref _bytesToReplicas);

    /// <summary>Names the source of a connection from the first chunk it sends (-1 = unknown).</summary>
    public Func<ReadOnlyMemory<byte>, int> Identify { get; set; } = _ => -1;

    private sealed class Link(TcpClient inbound, TcpClient outbound)
    {
        public readonly TcpClient Inbound = inbound, Outbound = outbound;
        public int Source = -1;
        public bool Identified;
        public volatile bool Dead;
        public readonly CancellationTokenSource Gone = new();
        public void Close()
        {
            try { Gone.Cancel(); } catch (ObjectDisposedException) { }
            Inbound.Dispose();
            Outbound.Dispose();
        }
    }

    private async Task AcceptAsync()
    {
        while (!_cut.IsCancellationRequested)
        {
            TcpClient inbound;
            try { inbound = await _listener.AcceptTcpClientAsync(_cut.Token); }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException) { return; }
            // A connection reset while it waited in the backlog fails this accept only, not the proxy.
            catch (SocketException) when (!_cut.IsCancellationRequested) { continue; }
            catch (SocketException) { return; }
            // Forward each read at once, as the broker's own sockets do (TCP_NODELAY): with Nagle
            // on, a response sent in parts (header, sendfile range, trailer) waits for the
            // receiver's delayed ACK at every hop.
            inbound.NoDelay = true;
            var outbound = new TcpClient { NoDelay = true };
            try { await outbound.ConnectAsync(_target, _cut.Token); }
            catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException) { inbound.Dispose(); outbound.Dispose(); continue; }
            var link = new Link(inbound, outbound);
            // Both streams are taken before either pump starts: a client that connects and closes
            // at once (a Keeper client reconnecting while it closes its session) makes the first
            // pump read end-of-stream synchronously and dispose the link, and a GetStream after
            // that threw out of this loop, leaving the listener's backlog accepting connections
            // that nobody served (every later ConnectRequest through the proxy timed out).
            NetworkStream clientStream, serverStream;
            try
            {
                clientStream = inbound.GetStream();
                serverStream = outbound.GetStream();
            }
            catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException or IOException)
            {
                link.Close();
                continue;
            }
            lock (_links) _links.Add(link);
            _ = PumpAsync(link, clientStream, serverStream, fromClient: true);
            _ = PumpAsync(link, serverStream, clientStream, fromClient: false);
        }
    }

    private async Task PumpAsync(Link link, NetworkStream from, NetworkStream to, bool fromClient)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                int n = await from.ReadAsync(buffer, _cut.Token);
                if (n == 0) break;
                if (fromClient && !link.Identified)
                {
                    link.Source = Identify(buffer.AsMemory(0, n));
                    link.Identified = true;
                }
                if (link.Dead || Severed(link.Source))
                {
                    // Black hole: stop reading (the sender's window fills, as on a lossy link)
                    // until Heal closes the connection.
                    link.Dead = true;
                    await Task.Delay(Timeout.Infinite, link.Gone.Token);
                }
                await to.WriteAsync(buffer.AsMemory(0, n), _cut.Token);
                if (!fromClient) Interlocked.Add(ref link.Source >= 0 ? ref _bytesToReplicas : ref _bytesToClients, n);
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or SocketException) { }
        if (!link.Dead) link.Close();
        lock (_links) if (!link.Dead) _links.Remove(link);
    }

    /// <summary>Marks every open connection from a severed source as black-holed now, so that even
    /// an idle one carries nothing once the cut began.</summary>
    public void Sever()
    {
        lock (_links)
            foreach (var l in _links)
                if (l.Identified && Severed(l.Source)) l.Dead = true;
    }

    /// <summary>Closes the connections black-holed during a partition (call after Severed turned false).</summary>
    public void Heal()
    {
        List<Link> dead;
        lock (_links)
        {
            dead = _links.Where(l => l.Dead).ToList();
            _links.RemoveAll(l => l.Dead);
        }
        foreach (var l in dead) l.Close();
    }

    public void Cut()
    {
        _cut.Cancel();
        _listener.Stop();
        lock (_links)
            foreach (var l in _links) l.Close();
    }

    public async ValueTask DisposeAsync()
    {
        Cut();
        try { await _accept; } catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { }
    }

    /// <summary>For a proxy in front of a Kafka broker: a connection whose first request carries a
    /// replica fetcher's client id ("broker-&lt;id&gt;-fetcher-&lt;leader&gt;") comes from that broker.</summary>
    public static int ReplicaFetcherSource(ReadOnlyMemory<byte> first) =>
        KafkaClientId(first.Span) is { } cid && cid.StartsWith("broker-", StringComparison.Ordinal) && cid.IndexOf('-', 7) is int dash and > 7
        && int.TryParse(cid.AsSpan(7, dash - 7), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int from) ? from : -1;

    /// <summary>The client id of the first Kafka request on a connection (request header v1+:
    /// length, api_key, api_version, correlation_id, then client_id as an int16-length string),
    /// or null when the chunk is too short to hold it.</summary>
    public static string? KafkaClientId(ReadOnlySpan<byte> first)
    {
        if (first.Length < 14) return null;
        short len = BinaryPrimitives.ReadInt16BigEndian(first[12..]);
        if (len < 0 || first.Length < 14 + len) return null;
        return Encoding.UTF8.GetString(first.Slice(14, len));
    }
}
