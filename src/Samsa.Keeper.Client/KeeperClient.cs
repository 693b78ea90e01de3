using System.Buffers;
using System.Buffers.Binary;
using System.Net.Sockets;
using System.Threading.Channels;
using Samsa.Keeper.Protocol;
using Samsa.Keeper.Protocol.Records;

namespace Samsa.Keeper.Client;

/// <summary>An asynchronous ZooKeeper client speaking the jute wire protocol (upstream ClientCnxn's
/// behaviour): one TCP connection at a time, many requests in flight on it, answers matched to
/// requests by order and xid, pings at a third of the negotiated session timeout, and on a
/// connection loss a reconnect to the next server of the connect string that resumes the same
/// session, re-sends auth data and re-registers watches. With <see cref="KeeperClientOptions.Tls"/>
/// the connection is TLS (upstream ClientCnxnSocketNetty with zookeeper.client.secure); with
/// <see cref="KeeperClientOptions.Sasl"/> every connection runs SASL DIGEST-MD5 first (upstream
/// ZooKeeperSaslClient; no GSSAPI).</summary>
public sealed partial class KeeperClient : IAsyncDisposable
{
    private readonly KeeperClientOptions _options;
    private readonly List<(string Host, int Port)> _servers;
    private readonly string? _chroot;
    private readonly WatchRegistry _watches = new();
    private readonly Watcher _defaultWatcher;
    private readonly List<(string Scheme, byte[] Auth)> _authInfo = new();
    private readonly Channel<(WatchedEvent Event, Watcher[] Targets)> _eventQueue = Channel.CreateUnbounded<(WatchedEvent, Watcher[])>(new UnboundedChannelOptions { SingleReader = true });
    private readonly List<Channel<WatchedEvent>> _subscribers = new();
    private readonly CancellationTokenSource _closing = new();
    private volatile bool _closeRequested;        // DisposeAsync has begun: no reconnects
    private readonly object _stateGate = new();
    private readonly Task _eventTask;
    private readonly SemaphoreSlim _outstanding;
    private Task _loopTask = Task.CompletedTask;

    private KeeperState _state = KeeperState.Disconnected;
    private Code? _terminal;                      // set once the client can never work again
    private Conn? _conn;
    private TaskCompletionSource _connected = NewTcs();
    private long _sessionId;
    private byte[] _password;
    private int _negotiatedTimeoutMs;
    private long _lastZxid;
    private int _xid = 1;

    public KeeperClient(string connectString, KeeperClientOptions? options = null)
    {
        _options = options ?? new KeeperClientOptions();
        var cs = ConnectString.Parse(connectString);
        _servers = cs.Servers.ToList();
        if (_options.ShuffleServers) Random.Shared.Shuffle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_servers));
        _chroot = cs.Chroot;
        _sessionId = _options.SessionId;
        _password = _options.SessionPassword ?? new byte[16];
        _negotiatedTimeoutMs = (int)_options.SessionTimeout.TotalMilliseconds;
        _defaultWatcher = DeliverToDefault;
        if (_options.MaxOutstandingRequests <= 0) throw new ArgumentOutOfRangeException(nameof(options), "MaxOutstandingRequests must be positive");
        if (_options.MaxBufferBytes <= 16) throw new ArgumentOutOfRangeException(nameof(options), "MaxBufferBytes is too small for any reply");
        _outstanding = new SemaphoreSlim(_options.MaxOutstandingRequests);
        _eventTask = Task.Run(EventLoopAsync);
        _loopTask = Task.Run(ConnectLoopAsync);
    }

    /// <summary>Creates a client and waits until its session is established (SyncConnected).</summary>
    public static async Task<KeeperClient> ConnectAsync(string connectString, KeeperClientOptions? options = null, CancellationToken cancellationToken = default)
    {
        var client = new KeeperClient(connectString, options);
        try
        {
            await client.WaitConnectedAsync(cancellationToken).ConfigureAwait(false);
            return client;
        }
        catch
        {
            await client.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public KeeperState State { get { lock (_stateGate) return _state; } }
    public long SessionId => Interlocked.Read(ref _sessionId);
    public byte[] SessionPassword { get { lock (_stateGate) return (byte[])_password.Clone(); } }
    public TimeSpan SessionTimeout => TimeSpan.FromMilliseconds(Volatile.Read(ref _negotiatedTimeoutMs));
    /// <summary>The highest zxid seen in a reply; sent on reconnect and with SetWatches.</summary>
    public long LastZxid => Interlocked.Read(ref _lastZxid);
    public string? Chroot => _chroot;
    /// <summary>The server the client is connected to, or null while disconnected.</summary>
    public string? ConnectedServer { get { lock (_stateGate) return _conn is { Dead: false } c ? c.Server : null; } }

    /// <summary>Raised (on the event task) for every state change after the handler is added,
    /// before the default watcher. The client starts connecting in its constructor, so to see
    /// the very first state use <see cref="KeeperClientOptions.DefaultWatcher"/>.</summary>
    public event Action<KeeperState>? StateChanged;

    /// <summary>A stream of the events the default watcher sees (state changes and watches set
    /// with watch: true), from the moment of this call until the token is cancelled or the client
    /// closes. The reader must keep up: events wait in memory until read.</summary>
    public IAsyncEnumerable<WatchedEvent> Events(CancellationToken cancellationToken = default)
    {
        var ch = Channel.CreateUnbounded<WatchedEvent>(new UnboundedChannelOptions { SingleReader = true });
        lock (_subscribers) _subscribers.Add(ch);
        if (_eventTask.IsCompleted) ch.Writer.TryComplete();
        return ReadSubscription(ch, cancellationToken);
    }

    private async IAsyncEnumerable<WatchedEvent> ReadSubscription(Channel<WatchedEvent> ch, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        try
        {
            await foreach (var e in ch.Reader.ReadAllAsync(ct).ConfigureAwait(false))
                yield return e;
        }
        finally
        {
            lock (_subscribers) _subscribers.Remove(ch);
        }
    }

    /// <summary>Waits until the client is connected; throws KeeperException(SessionExpired /
    /// AuthFailed) when it never will be again.</summary>
    public async Task WaitConnectedAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            Task wait;
            lock (_stateGate)
            {
                if (_terminal is { } t) throw new KeeperException(t);
                if (_conn is { Dead: false }) return;
                wait = _connected.Task;
            }
            await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private static TaskCompletionSource NewTcs() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    // ---------------------------------------------------------------- connection loop

    private async Task ConnectLoopAsync()
    {
        int next = 0;
        int failedInRow = 0;
        while (!_closing.IsCancellationRequested)
        {
            // Upstream ClientCnxn does not re-establish a connection while it is closing: the
            // server ends the connection right after answering closeSession, and a reconnect in
            // that moment would open a connection only to drop it half-way through the handshake.
            if (_closeRequested) break;
            var (host, port) = _servers[next];
            next = (next + 1) % _servers.Count;
            // Upstream's StaticHostProvider sleeps once it has tried every server in turn, and the
            // client waits a random moment before a reconnect so a restarted server is not stormed.
            if (failedInRow > 0 && failedInRow % _servers.Count == 0)
            {
                try { await Task.Delay(Random.Shared.Next(100, 1000), _closing.Token).ConfigureAwait(false); }
                catch (OperationCanceledException) { break; }
            }
            Conn conn;
            try
            {
                conn = await OpenAsync(host, port).ConfigureAwait(false);
            }
            catch (KeeperException ke) when (ke.Code == Code.SessionExpired)
            {
                Terminate(Code.SessionExpired, KeeperState.Expired);
                return;
            }
            catch (Exception) when (!_closing.IsCancellationRequested)
            {
                failedInRow++;
                continue;
            }
            catch (Exception)
            {
                break;
            }
            failedInRow = 0;
            try
            {
                await PrimeAsync(conn).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or SocketException or KeeperException or ObjectDisposedException or OperationCanceledException or JuteException)
            {
                FailConnection(conn);
                continue;
            }
            lock (_stateGate)
            {
                if (_terminal is not null) { FailConnection(conn); return; }
                _conn = conn;
                _state = KeeperState.SyncConnected;
                _connected.TrySetResult();
            }
            QueueStateEvent(KeeperState.SyncConnected);
            // upstream emits SaslAuthenticated after SyncConnected once the exchange completes
            if (_saslAuthenticated) { _saslAuthenticated = false; QueueStateEvent(KeeperState.SaslAuthenticated); }

            var recv = ReceiveLoopAsync(conn);
            var ping = PingLoopAsync(conn);
            await Task.WhenAny(recv, ping).ConfigureAwait(false);
            FailConnection(conn);
            await Task.WhenAll(recv, ping).ConfigureAwait(false);

            bool announce;
            lock (_stateGate)
            {
                announce = _terminal is null && _state == KeeperState.SyncConnected;
                if (_terminal is null) _state = KeeperState.Disconnected;
                if (ReferenceEquals(_conn, conn)) _conn = null;
                if (_connected.Task.IsCompleted) _connected = NewTcs();
            }
            if (announce && !_closing.IsCancellationRequested) QueueStateEvent(KeeperState.Disconnected);
        }
    }

    private int ConnectTimeoutMs =>
        (int)(_options.ConnectTimeout?.TotalMilliseconds ?? Math.Max(1000, Volatile.Read(ref _negotiatedTimeoutMs) / _servers.Count));

    /// <summary>TCP connect plus ConnectRequest/ConnectResponse, bounded by the connect timeout.</summary>
    private async Task<Conn> OpenAsync(string host, int port)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_closing.Token);
        timeout.CancelAfter(ConnectTimeoutMs);
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(host, port, timeout.Token).ConfigureAwait(false);
            Stream stream = new NetworkStream(socket, ownsSocket: true);
            if (_options.Tls is { } tls) stream = await tls.AuthenticateAsync(stream, host, timeout.Token).ConfigureAwait(false);
            byte[] passwd;
            lock (_stateGate) passwd = _password;
            var req = new ConnectRequest
            {
                ProtocolVersion = 0,
                LastZxidSeen = LastZxid,
                TimeOut = (int)_options.SessionTimeout.TotalMilliseconds,
                SessionId = SessionId,
                Passwd = passwd,
                ReadOnly = false,
            };
            var frame = new byte[4 + req.Size()];
            BinaryPrimitives.WriteInt32BigEndian(frame, frame.Length - 4);
            var w = new JuteWriter(frame.AsSpan(4));
            req.Write(ref w);
            await stream.WriteAsync(frame, timeout.Token).ConfigureAwait(false);

            var body = await ReadFrameAsync(stream, timeout.Token).ConfigureAwait(false);
            if (body is null) throw new IOException("server closed the connection during the session handshake");
            var (timeOut, sessionId, serverPasswd) = ParseConnectResponse(body);
            if (timeOut <= 0)
            {
                // Upstream ClientCnxn.onConnected: a non-positive timeout means the server no
                // longer knows the session: it expired.
                stream.Dispose();
                throw new KeeperException(Code.SessionExpired);
            }
            lock (_stateGate)
            {
                _negotiatedTimeoutMs = timeOut;
                _password = serverPasswd;
            }
            Interlocked.Exchange(ref _sessionId, sessionId);
            return new Conn(this, stream, $"{host}:{port}");
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private (int TimeOut, long SessionId, byte[] Passwd) ParseConnectResponse(byte[] body)
    {
        // Fields as in ConnectResponse; readOnly is missing from pre-3.4 servers, so it is not required.
        var r = new JuteReader(body, _options.MaxBufferBytes);
        r.ReadInt(); // protocolVersion
        int timeOut = r.ReadInt();
        long sessionId = r.ReadLong();
        byte[] passwd = r.ReadBuffer() ?? Array.Empty<byte>();
        return (timeOut, sessionId, passwd);
    }

    /// <summary>Reads one length-prefixed frame; null at a clean end of stream.</summary>
    private async Task<byte[]?> ReadFrameAsync(Stream stream, CancellationToken ct)
    {
        var len = new byte[4];
        if (!await ReadExactlyOrEndAsync(stream, len, ct).ConfigureAwait(false)) return null;
        int n = BinaryPrimitives.ReadInt32BigEndian(len);
        CheckFrameLength(n);
        var body = new byte[n];
        if (!await ReadExactlyOrEndAsync(stream, body, ct).ConfigureAwait(false)) throw new IOException("connection closed inside a frame");
        return body;
    }

    private void CheckFrameLength(int n)
    {
        if (n < 0 || n >= _options.MaxBufferBytes)
            throw new IOException($"packet length {n} is out of range (jute.maxbuffer {_options.MaxBufferBytes})");
    }

    private static async Task<bool> ReadExactlyOrEndAsync(Stream stream, Memory<byte> buffer, CancellationToken ct)
    {
        int got = 0;
        while (got < buffer.Length)
        {
            int n = await stream.ReadAsync(buffer[got..], ct).ConfigureAwait(false);
            if (n == 0)
            {
                if (got == 0) return false;
                throw new IOException("connection closed inside a frame");
            }
            got += n;
        }
        return true;
    }

    /// <summary>Before the connection is handed to callers: auth data (upstream re-sends every
    /// addAuthInfo on each connection), then watch re-registration.</summary>
    private async Task PrimeAsync(Conn conn)
    {
        if (_options.Sasl is { } sasl) await SaslAuthenticateAsync(conn, sasl).ConfigureAwait(false);
        List<(string Scheme, byte[] Auth)> auth;
        lock (_authInfo) auth = _authInfo.ToList();
        foreach (var (scheme, data) in auth)
            _ = conn.SendAuthAsync(scheme, data);
        if (!_options.DisableAutoWatchReset)
        {
            foreach (var (opcode, record) in BuildSetWatches())
            {
                var p = new Pending<bool>(opcode, null, static (ref JuteReader _) => true, null);
                await conn.SendAsync(p, record, Xids.SetWatches).ConfigureAwait(false);
                // The reply comes in order with everything else; its outcome is only logged upstream.
                _ = p.Task.ContinueWith(static t => _ = t.Exception, TaskScheduler.Default);
            }
        }
    }

    /// <summary>Upstream ZooKeeperSaslClient: an empty first token, then the server's challenge is
    /// answered until DIGEST-MD5 completes; each GetSASLRequest (opcode sasl) carries a normal xid.
    /// Runs before the receive loop and before any other request on the connection, as upstream
    /// holds the outgoing queue while SASL is in progress. AuthFailed (or
    /// SessionClosedRequireSaslAuth), a null server token or a bad rspauth end the client in
    /// AuthFailed, as upstream.</summary>
    private async Task SaslAuthenticateAsync(Conn conn, KeeperClientSasl credentials)
    {
        var client = new DigestMd5.Client(credentials.Username, credentials.Password);
        byte[]? token = client.InitialResponse();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(conn.Cancel.Token);
        timeout.CancelAfter(Math.Max(ConnectTimeoutMs, 5000));
        while (true)
        {
            var req = new GetSASLRequest { Token = token };
            int xid = NextXid();
            int size = 8 + req.Size();
            var frame = new byte[4 + size];
            BinaryPrimitives.WriteInt32BigEndian(frame, size);
            var w = new JuteWriter(frame.AsSpan(4));
            w.WriteInt(xid);
            w.WriteInt(OpCode.Sasl);
            req.Write(ref w);
            await conn.Stream.WriteAsync(frame, timeout.Token).ConfigureAwait(false);
            conn.LastSend = Environment.TickCount64;
            byte[] reply = await ReadFrameAsync(conn.Stream, timeout.Token).ConfigureAwait(false)
                ?? throw new IOException("server closed the connection during SASL authentication");
            conn.LastRecv = Environment.TickCount64;
            var r = new JuteReader(reply, _options.MaxBufferBytes);
            var hdr = ReplyHeader.Read(ref r);
            if (hdr.Err == (int)Code.AuthFailed || hdr.Err == (int)Code.SessionClosedRequireSaslAuth)
            {
                SaslFailed(conn, $"the server refused SASL authentication of {credentials.Username} ({(Code)hdr.Err})");
                throw new KeeperException(Code.AuthFailed);
            }
            if (hdr.Err != 0) throw new KeeperException((Code)hdr.Err);
            if (hdr.Xid != xid) throw new IOException($"SASL reply xid {hdr.Xid}, expected {xid}");
            var rsp = SetSASLResponse.Read(ref r);
            try
            {
                // upstream ZooKeeperSaslClient.createSaslToken: a null server token fails the exchange
                if (rsp.Token is null) throw new SaslAuthenticationException("Error in authenticating with a Zookeeper Quorum member: the quorum member's saslToken is null.");
                token = client.EvaluateChallenge(rsp.Token);
            }
            catch (SaslAuthenticationException e)
            {
                SaslFailed(conn, e.Message);
                throw new KeeperException(Code.AuthFailed);
            }
            if (client.IsComplete) break;
            if (token is null) throw new IOException("SASL exchange stopped before completion");
        }
        _saslAuthenticated = true;
    }

    private bool _saslAuthenticated;

    /// <summary>Why the last SASL exchange failed (the client is then in AuthFailed).</summary>
    public string? SaslFailure { get; private set; }

    private void SaslFailed(Conn conn, string why)
    {
        SaslFailure = why;
        Terminate(Code.AuthFailed, KeeperState.AuthFailed);
        conn.Fail(Code.AuthFailed);
    }

    /// <summary>Upstream ClientCnxn.primeConnection: SetWatches when only one-time watches exist
    /// (older servers know no other), SetWatches2 once persistent watches are in play, batched so
    /// each packet's paths stay under 128 KiB; relativeZxid is the last zxid seen so the server
    /// fires at once for nodes that changed while the client was away.</summary>
    private List<(int OpCode, IJuteRecord Record)> BuildSetWatches()
    {
        const int maxBatchChars = 128 * 1024;
        var result = new List<(int, IJuteRecord)>();
        List<string> data, exist, child, persistent, recursive;
        lock (_watches.Gate)
        {
            data = _watches.Data.Keys.Select(ToServerPath).ToList();
            exist = _watches.Exist.Keys.Select(ToServerPath).ToList();
            child = _watches.Child.Keys.Select(ToServerPath).ToList();
            persistent = _watches.Persistent.Keys.Select(ToServerPath).ToList();
            recursive = _watches.PersistentRecursive.Keys.Select(ToServerPath).ToList();
        }
        if (data.Count + exist.Count + child.Count + persistent.Count + recursive.Count == 0) return result;
        bool v2 = persistent.Count + recursive.Count > 0;
        long zxid = LastZxid;
        var lists = new[] { data, exist, child, persistent, recursive };
        var idx = new int[5];
        while (idx.Zip(lists).Any(p => p.First < p.Second.Count))
        {
            var batch = new List<string>[5];
            int chars = 0;
            for (int k = 0; k < 5; k++)
            {
                batch[k] = new List<string>();
                while (idx[k] < lists[k].Count && (chars == 0 || chars + lists[k][idx[k]].Length <= maxBatchChars))
                {
                    chars += lists[k][idx[k]].Length;
                    batch[k].Add(lists[k][idx[k]++]);
                }
            }
            if (v2)
                result.Add((OpCode.SetWatches2, new SetWatches2 { RelativeZxid = zxid, DataWatches = batch[0], ExistWatches = batch[1], ChildWatches = batch[2], PersistentWatches = batch[3], PersistentRecursiveWatches = batch[4] }));
            else
                result.Add((OpCode.SetWatches, new SetWatches { RelativeZxid = zxid, DataWatches = batch[0], ExistWatches = batch[1], ChildWatches = batch[2] }));
        }
        return result;
    }

    private async Task ReceiveLoopAsync(Conn conn)
    {
        var lenBuf = new byte[4];
        try
        {
            while (!conn.Cancel.IsCancellationRequested)
            {
                if (!await ReadExactlyOrEndAsync(conn.Stream, lenBuf, conn.Cancel.Token).ConfigureAwait(false)) return;
                int n = BinaryPrimitives.ReadInt32BigEndian(lenBuf);
                CheckFrameLength(n);
                byte[] buf = ArrayPool<byte>.Shared.Rent(Math.Max(n, 1));
                try
                {
                    if (!await ReadExactlyOrEndAsync(conn.Stream, buf.AsMemory(0, n), conn.Cancel.Token).ConfigureAwait(false))
                        throw new IOException("connection closed inside a frame");
                    conn.LastRecv = Environment.TickCount64;
                    HandleFrame(conn, buf.AsSpan(0, n));
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buf);
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException or JuteException)
        {
            // a lost or malformed connection: the loop reconnects
        }
    }

    private void HandleFrame(Conn conn, ReadOnlySpan<byte> frame)
    {
        var r = new JuteReader(frame, _options.MaxBufferBytes);
        var hdr = ReplyHeader.Read(ref r);
        switch (hdr.Xid)
        {
            case Xids.Ping:
                return;
            case Xids.Auth:
                conn.CompleteAuth(hdr.Err);
                if (hdr.Err == (int)Code.AuthFailed)
                {
                    // Upstream: the session moves to AUTH_FAILED and the client stops.
                    Terminate(Code.AuthFailed, KeeperState.AuthFailed);
                    conn.Cancel.Cancel();
                }
                return;
            case Xids.Notification:
                var ev = WatcherEvent.Read(ref r);
                string? serverPath = ev.Path;
                string path = serverPath is null ? "/" : KeeperPaths.FromServer(_chroot, serverPath);
                var type = (EventType)ev.Type;
                var we = new WatchedEvent(type, (KeeperState)ev.State, path);
                var targets = _watches.Materialize(type, path);
                if (targets.Count > 0) _eventQueue.Writer.TryWrite((we, targets.ToArray()));
                return;
        }
        var p = conn.Dequeue();
        if (p is null || p.Xid != hdr.Xid)
        {
            // Upstream treats this as a broken connection; the request taken off the queue
            // fails with the rest of them.
            p?.Fail(new KeeperException(Code.ConnectionLoss, p.Path));
            throw new IOException($"xid out of order: got {hdr.Xid}, expected {(p is null ? "nothing" : p.Xid.ToString())}");
        }
        if (hdr.Zxid > 0) Interlocked.Exchange(ref _lastZxid, hdr.Zxid);
        p.Complete(hdr.Err, ref r, this);
    }

    private async Task PingLoopAsync(Conn conn)
    {
        try
        {
            while (!conn.Cancel.IsCancellationRequested)
            {
                // Upstream: readTimeout = 2/3 of the session timeout; ping after half of it idle.
                int readTimeout = Volatile.Read(ref _negotiatedTimeoutMs) * 2 / 3;
                int pingAfter = readTimeout / 2;
                long now = Environment.TickCount64;
                long idleRecv = now - conn.LastRecv;
                if (idleRecv > readTimeout) return; // the server went silent: drop the connection
                long idleSend = now - conn.LastSend;
                if (idleSend >= pingAfter)
                {
                    await conn.SendPingAsync().ConfigureAwait(false);
                    idleSend = 0;
                }
                long wait = Math.Min(pingAfter - idleSend, readTimeout - idleRecv);
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Clamp(wait, 10, 10_000)), conn.Cancel.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException or KeeperException)
        {
        }
    }

    private void FailConnection(Conn conn)
    {
        conn.Fail(Code.ConnectionLoss);
    }

    /// <summary>Enters a final state (Expired, AuthFailed, Closed): no reconnects, every waiter fails.</summary>
    private void Terminate(Code code, KeeperState state)
    {
        Conn? conn;
        lock (_stateGate)
        {
            if (_terminal is not null) return;
            _terminal = code;
            _state = state;
            conn = _conn;
            _conn = null;
            _connected.TrySetResult();
        }
        _closing.Cancel();
        conn?.Fail(Code.ConnectionLoss);
        QueueStateEvent(state);
    }

    // ---------------------------------------------------------------- events

    private void QueueStateEvent(KeeperState state)
    {
        var e = new WatchedEvent(EventType.None, state, null);
        // Upstream ZKWatchManager delivers state events to every watcher, and forgets them all
        // once the session is gone.
        // With auto watch reset disabled the server forgets the watches on a disconnect, so
        // the client does too (upstream ZKWatchManager.materialize's "clear" case).
        var targets = _watches.All();
        if (state is KeeperState.Expired or KeeperState.Closed or KeeperState.AuthFailed
            || (_options.DisableAutoWatchReset && state != KeeperState.SyncConnected))
            _watches.Clear();
        targets.Add(_defaultWatcher);
        _eventQueue.Writer.TryWrite((e, targets.ToArray()));
        if (state is KeeperState.Expired or KeeperState.Closed or KeeperState.AuthFailed) _eventQueue.Writer.TryComplete();
    }

    private void QueueLocalEvent(WatchedEvent e, IEnumerable<Watcher> targets)
    {
        var arr = targets.ToArray();
        if (arr.Length > 0) _eventQueue.Writer.TryWrite((e, arr));
    }

    private async Task EventLoopAsync()
    {
        await foreach (var (e, targets) in _eventQueue.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            if (e.Type == EventType.None)
            {
                try { StateChanged?.Invoke(e.State); } catch (Exception) { /* a callback's failure must not stop event delivery */ }
            }
            foreach (var w in targets)
            {
                try { w(e); } catch (Exception) { /* as upstream's EventThread: log and go on */ }
            }
        }
        lock (_subscribers)
            foreach (var s in _subscribers) s.Writer.TryComplete();
    }

    private void DeliverToDefault(WatchedEvent e)
    {
        _options.DefaultWatcher?.Invoke(e);
        lock (_subscribers)
            foreach (var s in _subscribers) s.Writer.TryWrite(e);
    }

    // ---------------------------------------------------------------- requests

    private string ToServerPath(string clientPath) => KeeperPaths.ToServer(_chroot, clientPath);
    private string FromServerPath(string serverPath) => KeeperPaths.FromServer(_chroot, serverPath);

    internal int NextXid()
    {
        // Positive xids only: negative ones are the special xids (ping, auth, notification),
        // so wrap back to 1 instead of overflowing into them.
        while (true)
        {
            int x = Volatile.Read(ref _xid);
            int next = x == int.MaxValue ? 1 : x + 1;
            if (Interlocked.CompareExchange(ref _xid, next, x) == x) return x;
        }
    }

    private async Task<Conn> GetConnectionAsync(CancellationToken ct)
    {
        while (true)
        {
            Task wait;
            lock (_stateGate)
            {
                if (_terminal is { } t) throw new KeeperException(t == Code.AuthFailed ? Code.AuthFailed : Code.SessionExpired);
                if (_conn is { Dead: false } c) return c;
                wait = _connected.Task;
            }
            try
            {
                // Upstream queues a request made while disconnected and fails it with
                // ConnectionLoss if no connection comes back; waiting up to the session
                // timeout gives the reconnect a fair chance.
                await wait.WaitAsync(SessionTimeout, ct).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                throw new KeeperException(Code.ConnectionLoss);
            }
        }
    }

    internal delegate T BodyReader<T>(ref JuteReader reader);

    private async Task<T> SubmitAsync<T>(int opCode, IJuteRecord? body, string? path, BodyReader<T> read, Action<int>? onReply, CancellationToken ct)
    {
        // Bounded memory: at most MaxOutstandingRequests requests wait for answers; more callers
        // wait here rather than queueing without limit.
        await _outstanding.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var conn = await GetConnectionAsync(ct).ConfigureAwait(false);
            var p = new Pending<T>(opCode, path, read, onReply);
            await conn.SendAsync(p, body, null).ConfigureAwait(false);
            return await p.Task.WaitAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            _outstanding.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        bool wasOpen;
        lock (_stateGate) wasOpen = _terminal is null;
        _closeRequested = true;
        if (wasOpen)
        {
            Conn? conn;
            lock (_stateGate) conn = _conn is { Dead: false } c ? c : null;
            if (conn is not null)
            {
                // closeSession ends the session at once, so its ephemeral nodes go now rather
                // than after the session timeout.
                try
                {
                    var p = new Pending<bool>(OpCode.CloseSession, null, static (ref JuteReader _) => true, null);
                    await conn.SendAsync(p, null, null).ConfigureAwait(false);
                    await p.Task.WaitAsync(TimeSpan.FromSeconds(Math.Max(2, SessionTimeout.TotalSeconds / 3))).ConfigureAwait(false);
                }
                catch (Exception e) when (e is KeeperException or TimeoutException or IOException or ObjectDisposedException) { }
            }
            Terminate(Code.SessionExpired, KeeperState.Closed);
        }
        _closing.Cancel();
        try { await _loopTask.ConfigureAwait(false); } catch (OperationCanceledException) { }
        try { await _eventTask.ConfigureAwait(false); } catch (OperationCanceledException) { }
    }

    // ---------------------------------------------------------------- per-connection state

    private sealed class Conn
    {
        private readonly KeeperClient _client;
        private readonly SemaphoreSlim _writeLock = new(1, 1);
        private readonly Queue<Pending> _pending = new();
        private readonly Queue<TaskCompletionSource<int>> _authWaiters = new();

        public Conn(KeeperClient client, Stream stream, string server)
        {
            _client = client;
            Stream = stream;
            Server = server;
            LastRecv = LastSend = Environment.TickCount64;
        }

        public Stream Stream { get; }
        public string Server { get; }
        public CancellationTokenSource Cancel { get; } = new();
        public bool Dead { get; private set; }
        public long LastRecv;
        public long LastSend;

        public Pending? Dequeue()
        {
            lock (_pending) return _pending.Count > 0 ? _pending.Dequeue() : null;
        }

        public void CompleteAuth(int err)
        {
            TaskCompletionSource<int>? w;
            lock (_pending) w = _authWaiters.Count > 0 ? _authWaiters.Dequeue() : null;
            w?.TrySetResult(err);
        }

        /// <summary>Writes one request; its xid is taken under the write lock, so the order of
        /// the pending queue is the order on the wire, which is the order of the answers.</summary>
        public async Task SendAsync(Pending p, IJuteRecord? body, int? fixedXid)
        {
            await _writeLock.WaitAsync().ConfigureAwait(false);
            byte[]? frame = null;
            try
            {
                int size = 8 + (body?.Size() ?? 0);
                frame = ArrayPool<byte>.Shared.Rent(4 + size);
                lock (_pending)
                {
                    if (Dead) { p.Fail(new KeeperException(Code.ConnectionLoss, p.Path)); return; }
                    p.Xid = fixedXid ?? _client.NextXid();
                    _pending.Enqueue(p);
                }
                BinaryPrimitives.WriteInt32BigEndian(frame, size);
                var w = new JuteWriter(frame.AsSpan(4, size));
                w.WriteInt(p.Xid);
                w.WriteInt(p.OpCode);
                body?.Write(ref w);
                await Stream.WriteAsync(frame.AsMemory(0, 4 + size), Cancel.Token).ConfigureAwait(false);
                LastSend = Environment.TickCount64;
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
            {
                Fail(Code.ConnectionLoss);
            }
            finally
            {
                if (frame is not null) ArrayPool<byte>.Shared.Return(frame);
                _writeLock.Release();
            }
        }

        /// <summary>Auth replies are answered as soon as the server reads them (upstream handles
        /// auth outside the request pipeline), so they are matched in a queue of their own.</summary>
        public async Task<int> SendAuthAsync(string scheme, byte[] data)
        {
            var waiter = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
            var packet = new AuthPacket { Type = 0, Scheme = scheme, Auth = data };
            await _writeLock.WaitAsync().ConfigureAwait(false);
            try
            {
                lock (_pending)
                {
                    if (Dead) return (int)Code.ConnectionLoss;
                    _authWaiters.Enqueue(waiter);
                }
                int size = 8 + packet.Size();
                var frame = new byte[4 + size];
                BinaryPrimitives.WriteInt32BigEndian(frame, size);
                var w = new JuteWriter(frame.AsSpan(4));
                w.WriteInt(Xids.Auth);
                w.WriteInt(OpCode.Auth);
                packet.Write(ref w);
                await Stream.WriteAsync(frame, Cancel.Token).ConfigureAwait(false);
                LastSend = Environment.TickCount64;
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
            {
                Fail(Code.ConnectionLoss);
            }
            finally
            {
                _writeLock.Release();
            }
            return await waiter.Task.ConfigureAwait(false);
        }

        public async Task SendPingAsync()
        {
            await _writeLock.WaitAsync().ConfigureAwait(false);
            try
            {
                if (Dead) return;
                var frame = new byte[12];
                BinaryPrimitives.WriteInt32BigEndian(frame, 8);
                BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(4), Xids.Ping);
                BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(8), OpCode.Ping);
                await Stream.WriteAsync(frame, Cancel.Token).ConfigureAwait(false);
                LastSend = Environment.TickCount64;
            }
            finally
            {
                _writeLock.Release();
            }
        }

        /// <summary>Closes the connection and fails everything still waiting on it.</summary>
        public void Fail(Code code)
        {
            List<Pending> failed;
            List<TaskCompletionSource<int>> auth;
            lock (_pending)
            {
                if (Dead) return;
                Dead = true;
                failed = _pending.ToList();
                _pending.Clear();
                auth = _authWaiters.ToList();
                _authWaiters.Clear();
            }
            try { Cancel.Cancel(); } catch (ObjectDisposedException) { }
            Stream.Dispose();
            foreach (var p in failed) p.Fail(new KeeperException(code, p.Path));
            foreach (var a in auth) a.TrySetResult((int)code);
        }
    }

    internal abstract class Pending
    {
        protected Pending(int opCode, string? path) { OpCode = opCode; Path = path; }
        public int Xid;
        public int OpCode { get; }
        public string? Path { get; }
        public abstract void Complete(int err, ref JuteReader body, KeeperClient client);
        public abstract void Fail(Exception e);
    }

    internal sealed class Pending<T> : Pending
    {
        private readonly TaskCompletionSource<T> _tcs = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly BodyReader<T> _read;
        private readonly Action<int>? _onReply;

        public Pending(int opCode, string? path, BodyReader<T> read, Action<int>? onReply) : base(opCode, path)
        {
            _read = read;
            _onReply = onReply;
        }

        public Task<T> Task => _tcs.Task;

        public override void Complete(int err, ref JuteReader body, KeeperClient client)
        {
            // Watches are registered before the caller sees the answer, as upstream's
            // finishPacket does, so no event can slip between the two.
            _onReply?.Invoke(err);
            if (err != 0)
            {
                _tcs.TrySetException(new KeeperException((Code)err, Path));
                return;
            }
            T value;
            try
            {
                value = _read(ref body);
            }
            catch (JuteException e)
            {
                _tcs.TrySetException(new KeeperException(Code.MarshallingError, Path, null, e));
                return;
            }
            _tcs.TrySetResult(value);
        }

        public override void Fail(Exception e) => _tcs.TrySetException(e);
    }
}
