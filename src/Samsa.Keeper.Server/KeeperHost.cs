using System.Net;
using Samsa.Net;

namespace Samsa.Keeper.Server;

/// <summary>A running Keeper: the server plus its client listener (and optional admin HTTP server).
/// Start one in-process with <see cref="StartAsync"/>; dispose to stop.</summary>
public sealed class KeeperHost : IAsyncDisposable
{
    private readonly FrameListener _listener;
    private readonly FrameListener? _secureListener;
    private readonly AdminServer? _admin;
    private HttpGetListener? _metrics;

    /// <summary>The Prometheus endpoint's address (metricsProvider.className PrometheusMetricsProvider), or null.</summary>
    public IPEndPoint? MetricsEndPoint => _metrics?.LocalEndPoint;

    private KeeperHost(KeeperServer server, FrameListener listener, FrameListener? secureListener, AdminServer? admin)
    {
        Server = server;
        _listener = listener;
        _secureListener = secureListener;
        _admin = admin;
    }

    /// <summary>The TLS client port (secureClientPort), when configured.</summary>
    public System.Net.IPEndPoint? SecureEndPoint => _secureListener?.LocalEndPoint;

    /// <summary>The admin HTTP server's address, when admin.enableServer is true.</summary>
    public IPEndPoint? AdminEndPoint => _admin?.LocalEndPoint;

    public KeeperServer Server { get; }
    public IPEndPoint LocalEndPoint => _listener.LocalEndPoint;

    /// <summary>Recovers dataDir, binds clientPortAddress:clientPort (0 = a free port) and starts
    /// serving. An empty dataDir keeps everything in memory (tests).</summary>
    public static async Task<KeeperHost> StartAsync(KeeperConfig config)
    {
        // quorum keys and security settings are checked before anything binds or touches dataDir (KeeperConfigException)
        config.Quorum.Validate(config);
        if (config.Quorum.IsQuorumMode)
            throw new KeeperConfigException(
                $"quorum mode ({config.Quorum.Voters.Count()} voting server.N lines): KeeperHost runs a standalone server; " +
                "an ensemble member runs as Quorum.QuorumMember (`samsa keeper --config zoo.cfg` with server.N lines)");
        var tls = KeeperTls.Build(config);
        var server = new KeeperServer(config);
        FrameListener? listener = null, secure = null;
        AdminServer? admin = null;
        HttpGetListener? metrics = null;
        try
        {
            var handler = new KeeperFrameHandler(server);
            var addr = IPAddress.Parse(config.ClientPortAddress);
            // Bind before touching dataDir, as upstream's ZooKeeperServerMain does: a second server
            // on a busy port must fail before it recovers or snapshots anything. Connections that
            // arrive meanwhile queue on the loop, which starts after recovery.
            // Upstream reads frames up to jute.maxbuffer plus its extra allowance for headers.
            listener = new FrameListener(new IPEndPoint(addr, config.ClientPort), handler, new ListenerOptions { Name = "keeper client", MaxFrameBytes = config.JuteMaxBuffer + 1024 });
            listener.Start();
            if (tls is not null)
            {
                var secureHandler = new KeeperFrameHandler(server, tls.ClientCertificateMode);
                secure = new FrameListener(new IPEndPoint(IPAddress.Parse(config.SecureClientPortAddress), config.SecureClientPort!.Value), secureHandler,
                    new ListenerOptions
                    {
                        Name = "keeper secure client", MaxFrameBytes = config.JuteMaxBuffer + 1024, Tls = tls,
                        // upstream NettyServerCnxnFactory: "Unsuccessful handshake with session 0x..." and the channel is closed
                        OnError = (c, e) => { if (e is TlsHandshakeException) Console.Error.WriteLine($"keeper: Unsuccessful handshake: {e.Message}"); },
                    });
                secure.Start();
            }
            server.Start();
            if (config.AdminEnableServer)
            {
                admin = new AdminServer(server, new IPEndPoint(IPAddress.Parse(config.AdminServerAddress), config.AdminServerPort));
                admin.Start();
            }
            metrics = await KeeperMetrics.ServeAsync(server);
            return new KeeperHost(server, listener, secure, admin) { _metrics = metrics };
        }
        catch
        {
            // a port in use must not leave the loop and the log open
            if (admin is not null) await admin.DisposeAsync();
            if (metrics is not null) await metrics.DisposeAsync();
            if (listener is not null) await listener.DisposeAsync();
            if (secure is not null) await secure.DisposeAsync();
            await server.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_admin is not null) await _admin.DisposeAsync();
        if (_metrics is not null) await _metrics.DisposeAsync();
        await _listener.DisposeAsync();
        if (_secureListener is not null) await _secureListener.DisposeAsync();
        await Server.DisposeAsync();
    }
}

/// <summary>Bridges Samsa.Net to the Keeper: the first four bytes may be a four-letter word;
/// otherwise every frame goes to the server loop in arrival order.</summary>
internal sealed class KeeperFrameHandler : IFrameHandler
{
    private readonly KeeperServer _server;
    private readonly ClientCertificateMode _clientAuth;

    public KeeperFrameHandler(KeeperServer server, ClientCertificateMode clientAuth = ClientCertificateMode.None)
    {
        _server = server;
        _clientAuth = clientAuth;
    }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, int> _perIp = new();
    private readonly RateLogger _rejectLog = new(line => Console.Error.WriteLine("keeper: " + line));

    public ValueTask OnConnectedAsync(Connection connection)
    {
        // Upstream maxClientCnxns: more live connections than this from one address are refused
        // by closing the new one (0 = no limit).
        string ip = Auth.RemoteIp(connection.RemoteEndPoint);
        int n = _perIp.AddOrUpdate(ip, 1, (_, v) => v + 1);
        int max = _server.Config.MaxClientCnxns;
        if (max > 0 && n > max)
        {
            _perIp.AddOrUpdate(ip, 0, (_, v) => v - 1);
            // upstream NIOServerCnxnFactory.doAccept: "Error accepting new connection: Too many
            // connections from /IP - max is N", through a RateLogger (first at once, repeats summed)
            _rejectLog.Log($"Error accepting new connection: Too many connections from /{ip} - max is {max}");
            connection.Close();
            return ValueTask.CompletedTask;
        }
        _rejectLog.Flush();
        var x509 = new List<Samsa.Keeper.Protocol.Records.Id>();
        if (connection.IsTls && _clientAuth != ClientCertificateMode.None && connection.RemoteCertificate is { } cert)
        {
            // upstream NettyServerCnxnFactory.CertificateVerifier: a client certificate is turned into
            // an x509 id by the provider named by zookeeper.ssl.authProvider (default "x509"); without
            // that provider the connection is closed
            if (!_server.Security.Schemes.Contains("x509"))
            {
                Console.Error.WriteLine($"keeper: X509 Auth provider not found: x509 (closing {connection.RemoteEndPoint}; add authProvider.x509={KeeperSecurity.X509ProviderClass})");
                _perIp.AddOrUpdate(ip, 0, (_, v) => v - 1);
                connection.Close();
                return ValueTask.CompletedTask;
            }
            string dn = Samsa.Keeper.Protocol.TlsStores.Rfc2253(cert.SubjectName);
            x509.Add(new Samsa.Keeper.Protocol.Records.Id { Scheme = "x509", IdValue = dn });
            if (_server.Config.X509SuperUser is not null && dn == _server.Config.X509SuperUser)
                x509.Add(new Samsa.Keeper.Protocol.Records.Id { Scheme = "super", IdValue = dn });
            Console.Error.WriteLine($"keeper: Authenticated Id '{dn}' for Scheme 'x509' ({connection.RemoteEndPoint})");
        }
        var sc = new ServerConnection(_server, connection.Id, connection.RemoteEndPoint, connection.SendFrameAsync, connection.Close);
        sc.AuthInfo.AddRange(x509);
        connection.State = sc;
        _server.RegisterConnection(sc);
        return ValueTask.CompletedTask;
    }

    /// <summary>"stmk" (when whitelisted) reads an 8-byte trace mask after the word, as upstream's
    /// NIOServerCnxn.checkFourLetterWord does.</summary>
    public int RawCommandArgumentLength(int firstWord) =>
        FourLetterWords.Decode(firstWord) == "stmk" && _server.Config.IsFourLetterWordAllowed("stmk") ? 8 : 0;

    public async ValueTask OnRawCommandAsync(Connection connection, int firstWord, ReadOnlyMemory<byte> argument)
    {
        if (argument.Length < 8)
        {
            // upstream fails reading the long (BufferUnderflowException) and drops the connection
            Console.Error.WriteLine($"keeper: stmk from {connection.RemoteEndPoint} carried {argument.Length} of its 8 mask bytes; closing");
            connection.Close();
            return;
        }
        long mask = System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(argument.Span);
        _server.TraceMask = mask;
        await connection.SendRawAsync(System.Text.Encoding.UTF8.GetBytes(mask.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        connection.Close();
    }

    public async ValueTask<bool> OnFirstWordAsync(Connection connection, int firstWord)
    {
        string? cmd = FourLetterWords.Decode(firstWord);
        if (cmd is null) return false;
        string answer = _server.Config.IsFourLetterWordAllowed(cmd)
            ? await FourLetterWords.RunAsync(_server, cmd, connection.LocalEndPoint)
            : cmd + " is not executed because it is not in the whitelist.\n";
        await connection.SendRawAsync(System.Text.Encoding.UTF8.GetBytes(answer));
        connection.Close();
        return true;
    }

    /// <summary>Requests a connection may have queued before its reads pause (upstream's
    /// per-connection throttling plays the same role); keeps one client from growing the loop's queue.</summary>
    private const int MaxOutstandingPerConnection = 1000;

    public async ValueTask OnFrameAsync(Connection connection, ReadOnlyMemory<byte> frame)
    {
        if (connection.State is not ServerConnection sc) return;
        _server.Enqueue(sc, frame.ToArray());
        while (Volatile.Read(ref sc.OutstandingRequests) > MaxOutstandingPerConnection && !connection.Closed.IsCancellationRequested)
            await Task.Delay(1).ConfigureAwait(false);
    }

    public ValueTask OnClosedAsync(Connection connection)
    {
        if (connection.State is ServerConnection sc)
        {
            _perIp.AddOrUpdate(Auth.RemoteIp(connection.RemoteEndPoint), 0, (_, v) => v - 1);
            _server.ConnectionClosed(sc);
        }
        return ValueTask.CompletedTask;
    }
}

/// <summary>Upstream RateLogger: a message is logged at once; the same message again within the
/// interval is counted and logged once as "[N times] Message: ..." when the interval has passed
/// or another message arrives.</summary>
internal sealed class RateLogger(Action<string> write, long intervalMs = 100)
{
    private readonly object _gate = new();
    private string? _msg;
    private int _count;
    private long _since;

    public void Log(string msg)
    {
        lock (_gate)
        {
            long now = Environment.TickCount64;
            if (msg == _msg)
            {
                _count++;
                if (now - _since >= intervalMs)
                {
                    FlushCore();
                    _msg = msg;
                    _since = now;
                }
                return;
            }
            FlushCore();
            _msg = msg;
            _since = now;
            write(msg);
        }
    }

    /// <summary>Upstream flushes after every accepted connection.</summary>
    public void Flush()
    {
        lock (_gate) FlushCore();
    }

    private void FlushCore()
    {
        if (_msg is not null && _count > 0) write((_count > 1 ? $"[{_count} times] " : "") + _msg);
        _msg = null;
        _count = 0;
    }
}
