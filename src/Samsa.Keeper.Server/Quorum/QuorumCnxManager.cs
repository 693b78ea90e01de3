using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;

namespace Samsa.Keeper.Server.Quorum;

/// <summary>
/// The election-port connections between quorum peers, on the wire as upstream's QuorumCnxManager
/// (ZooKeeper 3.8): one TCP connection per pair of peers, kept only when it was opened by the peer
/// with the larger server id; every message is a 4-byte big-endian length and that many bytes.
/// <para>The opener first sends the initial message: protocol version -65536 (PROTOCOL_VERSION_V1,
/// what 3.8 sends unless multiAddress.enabled), its sid, and its election address as a length-
/// prefixed "host:port". A peer receiving a connection from a smaller sid closes it and connects
/// back (handleConnection); an opener with the smaller sid closes after its initial message
/// (startConnection) — so the pair ends up with the larger sid's connection.</para>
/// <para>Each peer has a send queue of one message (upstream SEND_CAPACITY = 1: a newer
/// notification replaces an unsent older one); a new connection resends the last message sent to
/// that peer when its queue is empty, as upstream's SendWorker does, since it may have been lost
/// with the old connection.</para>
/// </summary>
public sealed class QuorumCnxManager : IAsyncDisposable
{
    /// <summary>QuorumCnxManager.PROTOCOL_VERSION_V1 / V2.</summary>
    public const long ProtocolVersionV1 = -65536L;
    public const long ProtocolVersionV2 = -65535L;
    /// <summary>Upstream maxBuffer: the longest election address string an initial message may carry.</summary>
    public const int MaxInitialAddressBytes = 2048;
    /// <summary>Upstream PACKETMAXSIZE: the largest election message accepted.</summary>
    public const int PacketMaxSize = 512 * 1024;
    /// <summary>Upstream cnxTO default (zookeeper.cnxTimeout).</summary>
    private const int ConnectTimeoutMs = 5000;

    private readonly long _myId;
    private readonly Func<long, IPEndPoint?> _electionAddressOf;
    private readonly IPEndPoint _listenAt;
    private readonly string _myElectionAddress;
    private readonly Action<string> _log;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<long, PeerLink> _peers = new();
    private readonly Channel<(long Sid, byte[] Message)> _received = Channel.CreateBounded<(long, byte[])>(
        new BoundedChannelOptions(100) { FullMode = BoundedChannelFullMode.DropOldest }); // upstream RECV_CAPACITY = 100
    private TcpListener? _listener;
    private Task? _acceptLoop;

    /// <param name="electionAddressOf">The election address of a server id from the configuration (null: unknown id).</param>
    /// <param name="listenAt">Where to accept election connections (the server's own election address,
    /// or the wildcard address with quorumListenOnAllIPs).</param>
    /// <param name="myElectionAddress">"host:port" sent in the initial message.</param>
    public QuorumCnxManager(long myId, Func<long, IPEndPoint?> electionAddressOf, IPEndPoint listenAt, string myElectionAddress, Action<string> log)
    {
        _myId = myId;
        _electionAddressOf = electionAddressOf;
        _listenAt = listenAt;
        _myElectionAddress = myElectionAddress;
        _log = log;
    }

    public ChannelReader<(long Sid, byte[] Message)> Received => _received.Reader;

    private readonly ConcurrentDictionary<long, IPEndPoint> _learnedAddresses = new();

    private static IPEndPoint? ParseAddress(string text)
    {
        string first = text.Split('|')[0];
        int colon = first.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(first.AsSpan(colon + 1), out int port)) return null;
        string host = first[..colon].Trim('[', ']');
        if (IPAddress.TryParse(host, out var a)) return new IPEndPoint(a, port);
        try
        {
            var found = Dns.GetHostAddresses(host).FirstOrDefault(x => x.AddressFamily == AddressFamily.InterNetwork);
            return found is null ? null : new IPEndPoint(found, port);
        }
        catch (SocketException) { return null; }
    }
    public IPEndPoint? LocalEndPoint => (IPEndPoint?)_listener?.LocalEndpoint;

    public void Start()
    {
        _listener = new TcpListener(_listenAt);
        _listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        _listener.Start();
        _acceptLoop = AcceptLoopAsync();
    }

    /// <summary>The initial message an opener sends (V1: one election address).</summary>
    public static byte[] InitialMessage(long myId, string electionAddress)
    {
        byte[] addr = Encoding.UTF8.GetBytes(electionAddress);
        var b = new byte[8 + 8 + 4 + addr.Length];
        BinaryPrimitives.WriteInt64BigEndian(b, ProtocolVersionV1);
        BinaryPrimitives.WriteInt64BigEndian(b.AsSpan(8), myId);
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(16), addr.Length);
        addr.CopyTo(b, 20);
        return b;
    }

    /// <summary>Reads an initial message as upstream's handleConnection / InitialMessage.parse: a
    /// non-negative first long is the sid of a pre-3.5 peer (no address follows); V1/V2 carry the sid
    /// and "host:port[|host:port...]". Throws InvalidDataException on anything else.</summary>
    public static async Task<(long Sid, string? Address)> ReadInitialMessageAsync(Stream s, CancellationToken ct)
    {
        var head = new byte[8];
        await s.ReadExactlyAsync(head, ct);
        long first = BinaryPrimitives.ReadInt64BigEndian(head);
        if (first >= 0) return (first, null);
        if (first != ProtocolVersionV1 && first != ProtocolVersionV2) throw new InvalidDataException($"Got unrecognized protocol version {first}");
        var rest = new byte[12];
        await s.ReadExactlyAsync(rest, ct);
        long sid = BinaryPrimitives.ReadInt64BigEndian(rest);
        int len = BinaryPrimitives.ReadInt32BigEndian(rest.AsSpan(8));
        if (len <= 0 || len > MaxInitialAddressBytes) throw new InvalidDataException($"Unreasonable buffer length: {len}");
        var addr = new byte[len];
        await s.ReadExactlyAsync(addr, ct);
        string text = Encoding.UTF8.GetString(addr);
        foreach (var a in text.Split('|'))
        {
            int colon = a.LastIndexOf(':');
            if (colon <= 0 || !int.TryParse(a.AsSpan(colon + 1), out _)) throw new InvalidDataException($"Badly formed address: {a}");
        }
        return (sid, text);
    }

    /// <summary>Queues a message for a peer (connecting when there is no connection); a message to
    /// oneself goes straight to the receive queue, as upstream's toSend does.</summary>
    public void ToSend(long sid, byte[] message)
    {
        if (sid == _myId) { _received.Writer.TryWrite((sid, message)); return; }
        var link = _peers.GetOrAdd(sid, s => new PeerLink(s));
        lock (link)
        {
            link.Pending = message; // capacity one: a newer notification replaces an unsent one
            link.Signal.Release();
        }
        ConnectOne(sid);
    }

    /// <summary>Upstream haveDelivered: true when some peer's send queue is empty.</summary>
    public bool HaveDelivered()
    {
        foreach (var l in _peers.Values) lock (l) if (l.Pending is null) return true;
        return _peers.IsEmpty;
    }

    /// <summary>Connects to every peer with queued messages and no connection (upstream connectAll).</summary>
    public void ConnectAll()
    {
        foreach (var sid in _peers.Keys) ConnectOne(sid);
    }

    public bool IsConnected(long sid) => _peers.TryGetValue(sid, out var l) && l.Connection is not null;

    private void ConnectOne(long sid)
    {
        var link = _peers.GetOrAdd(sid, s => new PeerLink(s));
        lock (link)
        {
            if (link.Connection is not null || link.Connecting || _stop.IsCancellationRequested) return;
            link.Connecting = true;
        }
        _ = Task.Run(async () =>
        {
            try { await StartConnectionAsync(link); }
            finally { lock (link) link.Connecting = false; }
        });
    }

    private async Task StartConnectionAsync(PeerLink link)
    {
        // a server outside our config (one joining by reconfig) is reached at the address its
        // initial message named, as upstream's handleConnection connects back to it
        var ep = _electionAddressOf(link.Sid) ?? (_learnedAddresses.TryGetValue(link.Sid, out var learned) ? learned : null);
        if (ep is null) { _log($"election: no address for server {link.Sid}"); return; }
        var client = new TcpClient { NoDelay = true };
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            timeout.CancelAfter(ConnectTimeoutMs);
            await client.ConnectAsync(ep, timeout.Token);
            var stream = client.GetStream();
            await stream.WriteAsync(InitialMessage(_myId, _myElectionAddress), _stop.Token);
            await stream.FlushAsync(_stop.Token);
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException)
        {
            client.Dispose();
            if (!_stop.IsCancellationRequested) _log($"election: cannot open channel to {link.Sid} at {ep}: {e.Message}");
            return;
        }
        if (link.Sid > _myId)
        {
            // the larger sid keeps its own connection: it will connect back (upstream startConnection)
            client.Dispose();
            return;
        }
        Attach(link, client);
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient c;
            try { c = await _listener!.AcceptTcpClientAsync(_stop.Token); }
            catch (OperationCanceledException) { return; }
            catch (ObjectDisposedException) { return; }
            catch (SocketException) { continue; }
            _ = Task.Run(() => HandleConnectionAsync(c));
        }
    }

    private async Task HandleConnectionAsync(TcpClient c)
    {
        c.NoDelay = true;
        long sid;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            timeout.CancelAfter(ConnectTimeoutMs);
            string? addr;
            (sid, addr) = await ReadInitialMessageAsync(c.GetStream(), timeout.Token);
            if (addr is not null && _electionAddressOf(sid) is null && ParseAddress(addr) is { } ep) _learnedAddresses[sid] = ep;
        }
        catch (Exception e) when (e is IOException or SocketException or InvalidDataException or OperationCanceledException or EndOfStreamException)
        {
            _log($"election: bad initial message from {c.Client.RemoteEndPoint}: {e.Message}");
            c.Dispose();
            return;
        }
        if (sid < _myId)
        {
            // we win the challenge: drop theirs, open ours (upstream handleConnection)
            c.Dispose();
            var link = _peers.GetOrAdd(sid, s => new PeerLink(s));
            Detach(link, null);
            ConnectOne(sid);
        }
        else if (sid == _myId)
        {
            _log($"election: a connection request from a server with our own id {sid} (a configuration error)");
            c.Dispose();
        }
        else
        {
            Attach(_peers.GetOrAdd(sid, s => new PeerLink(s)), c);
        }
    }

    /// <summary>Makes <paramref name="c"/> the peer's connection (closing an older one) and runs its
    /// send and receive loops.</summary>
    private void Attach(PeerLink link, TcpClient c)
    {
        var conn = new Connection(c);
        Connection? old;
        lock (link)
        {
            old = link.Connection;
            link.Connection = conn;
            // upstream SendWorker: with nothing queued, resend the last message (it may have been lost with the old connection)
            if (link.Pending is null && link.LastSent is not null) { link.Pending = link.LastSent; link.Signal.Release(); }
            else if (link.Pending is not null) link.Signal.Release();
        }
        old?.Close();
        _ = SendLoopAsync(link, conn);
        _ = ReceiveLoopAsync(link, conn);
    }

    private void Detach(PeerLink link, Connection? conn)
    {
        Connection? closing;
        lock (link)
        {
            closing = link.Connection;
            if (conn is not null && !ReferenceEquals(closing, conn)) { conn.Close(); return; }
            link.Connection = null;
        }
        closing?.Close();
        conn?.Close();
    }

    private async Task SendLoopAsync(PeerLink link, Connection conn)
    {
        var stream = conn.Client.GetStream();
        try
        {
            while (!conn.Closed.IsCancellationRequested)
            {
                await link.Signal.WaitAsync(conn.Closed.Token);
                byte[]? msg;
                lock (link) { msg = link.Pending; link.Pending = null; }
                if (msg is null) continue;
                var frame = new byte[4 + msg.Length];
                BinaryPrimitives.WriteInt32BigEndian(frame, msg.Length);
                msg.CopyTo(frame, 4);
                try
                {
                    await stream.WriteAsync(frame, conn.Closed.Token);
                }
                catch
                {
                    // not delivered: keep it for the next connection unless a newer one is queued
                    lock (link) link.Pending ??= msg;
                    throw;
                }
                lock (link) link.LastSent = msg;
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException) { }
        Detach(link, conn);
    }

    private async Task ReceiveLoopAsync(PeerLink link, Connection conn)
    {
        var stream = conn.Client.GetStream();
        var len = new byte[4];
        try
        {
            while (!conn.Closed.IsCancellationRequested)
            {
                await stream.ReadExactlyAsync(len, conn.Closed.Token);
                int n = BinaryPrimitives.ReadInt32BigEndian(len);
                if (n <= 0 || n > PacketMaxSize)
                {
                    _log($"election: received packet with invalid length {n} from {link.Sid}; closing");
                    break;
                }
                var msg = new byte[n];
                await stream.ReadExactlyAsync(msg, conn.Closed.Token);
                await _received.Writer.WriteAsync((link.Sid, msg), conn.Closed.Token);
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException or EndOfStreamException) { }
        Detach(link, conn);
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener?.Stop();
        if (_acceptLoop is not null) { try { await _acceptLoop; } catch (Exception) { } }
        foreach (var l in _peers.Values) Detach(l, null);
    }

    private sealed class PeerLink(long sid)
    {
        public readonly long Sid = sid;
        public readonly SemaphoreSlim Signal = new(0);
        public byte[]? Pending;
        public byte[]? LastSent;
        public Connection? Connection;
        public bool Connecting;
    }

    private sealed class Connection(TcpClient client)
    {
        public readonly TcpClient Client = client;
        public readonly CancellationTokenSource Closed = new();
        public void Close()
        {
            try { Closed.Cancel(); } catch (ObjectDisposedException) { }
            Client.Dispose();
        }
    }
}
