using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Primitives;

namespace Samsa.Kafka.Broker.Client;

/// <summary>
/// A minimal Kafka client over the generated messages: one connection, one request at a time.
/// For <c>samsa perf</c> and for tests that need exact control over versions and bytes.
/// </summary>
public sealed partial class KafkaWireClient : IAsyncDisposable
{
    private readonly TcpClient _tcp;
    private readonly Stream _stream;   // the socket's NetworkStream, or an SslStream over it
    private int _correlation;
    private byte[]? _receive;   // rented; see ReuseResponseBuffer
    private byte[]? _send;      // rented; see SendReusingBuffersAsync

    private readonly bool _blocking;

    private KafkaWireClient(TcpClient tcp, Stream stream, bool blocking = false) { _tcp = tcp; _stream = stream; _blocking = blocking; }

    /// <summary>
    /// Connects a plaintext socket that is only ever used with blocking calls, from one thread: its
    /// sends and receives are plain send/recv system calls, and a response wakes the waiting thread
    /// directly. An asynchronous socket (the other clients) is registered with the runtime's epoll
    /// thread, which wakes first and hands each response to a thread-pool worker — two wake-ups per
    /// response. The replica fetcher, one request at a time on a thread of its own (as upstream's
    /// ReplicaFetcherThread), uses this. <see cref="SendReusingBuffersAsync{TResponse}"/> and
    /// <see cref="SendAsync{TResponse}"/> then complete synchronously. A receive waiting longer than
    /// <paramref name="receiveTimeoutMs"/> fails with an IOException (upstream replica.socket.timeout.ms).
    /// </summary>
    public static KafkaWireClient ConnectBlocking(string host, int port, int receiveTimeoutMs, CancellationToken ct = default)
    {
        SocketException? last = null;
        foreach (var address in Dns.GetHostAddresses(host))
        {
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                Samsa.Net.BlockingConnect.Connect(socket, new IPEndPoint(address, port), ConnectTimeoutMs, ct);
                var tcp = new TcpClient { Client = socket, NoDelay = true, ReceiveTimeout = receiveTimeoutMs, SendTimeout = receiveTimeoutMs };
                return new KafkaWireClient(tcp, tcp.GetStream(), blocking: true);
            }
            catch (SocketException e)
            {
                socket.Dispose();
                last = e;
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }
        throw last ?? new SocketException((int)SocketError.HostNotFound);
    }

    /// <summary>How long a blocking connect may take (upstream socket.connection.setup.timeout.ms' default).</summary>
    internal const int ConnectTimeoutMs = 10_000;

    /// <summary>True for a client from <see cref="ConnectBlocking"/>.</summary>
    public bool IsBlocking => _blocking;

    /// <summary>The connection's socket (tests).</summary>
    internal Socket Socket => _tcp.Client;

    /// <summary>Shuts the socket down from another thread: a blocking receive in progress returns
    /// (and its call fails) at once. The client must still be disposed.</summary>
    public void Abort()
    {
        try { _tcp.Client.Shutdown(SocketShutdown.Both); }
        catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
    }

    public static Task<KafkaWireClient> ConnectAsync(string host, int port, CancellationToken ct = default) => ConnectAsync(host, port, null, ct);

    /// <summary>Connects, over TLS when <paramref name="tls"/> is given (SSL and SASL_SSL listeners:
    /// trust store, client certificate for mutual TLS, host name check).</summary>
    public static async Task<KafkaWireClient> ConnectAsync(string host, int port, Samsa.Net.TlsClientOptions? tls, CancellationToken ct = default)
    {
        var tcp = new TcpClient { NoDelay = true };
        try
        {
            await tcp.ConnectAsync(host, port, ct);
            Stream stream = tls is null ? tcp.GetStream() : await tls.AuthenticateAsync(tcp.GetStream(), host, ct);
            return new KafkaWireClient(tcp, stream);
        }
        catch
        {
            tcp.Dispose();
            throw;
        }
    }

    /// <summary>True when the connection runs over TLS.</summary>
    public bool IsTls => _stream is System.Net.Security.SslStream;

    public string ClientId { get; set; } = "samsa-wire";

    /// <summary>
    /// When true, <see cref="SendAsync{TResponse}"/> reads every response into one pooled buffer
    /// kept by this client instead of a new array, so the zero-copy parts of a response (Fetch
    /// records) are valid only until the next request. A replica fetcher wants this: its Fetch
    /// responses run to megabytes, and a fresh array for each lands on the large object heap,
    /// which only a full collection frees — under load that, not live data, set the broker's RSS.
    /// </summary>
    public bool ReuseResponseBuffer { get; set; }

    /// <summary>
    /// <see cref="SendAsync{TResponse}"/> for a caller with <see cref="ReuseResponseBuffer"/> set that
    /// sends one request after another on this client (the replica fetcher, once per follower fetch):
    /// the request is encoded into a send buffer kept by the client, and the awaits use pooled
    /// state machines, so a round allocates only the decoded objects.
    /// </summary>
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    internal async ValueTask<TResponse> SendReusingBuffersAsync<TResponse>(IKafkaMessage request, short version, CancellationToken ct)
        where TResponse : class, IKafkaMessage<TResponse>
    {
        if (!ReuseResponseBuffer) throw new InvalidOperationException("SendReusingBuffersAsync needs ReuseResponseBuffer");
        int correlation = ++_correlation;
        var header = new RequestHeader { RequestApiKey = request.ApiKey, RequestApiVersion = version, CorrelationId = correlation, ClientId = ClientId };
        short hv = ApiMessages.RequestHeaderVersion(request.ApiKey, version);
        int size = header.Size(hv) + request.Size(version);
        if (_send is null || _send.Length < 4 + size)
        {
            if (_send is not null) ArrayPool<byte>.Shared.Return(_send);
            _send = ArrayPool<byte>.Shared.Rent(Math.Max(4 + size, 4096));
        }
        BinaryPrimitives.WriteInt32BigEndian(_send, size);
        var writer = new KafkaWriter(_send.AsSpan(4, size));
        header.Write(ref writer, hv);
        request.Write(ref writer, version);
        ReadOnlyMemory<byte> frame;
        if (_blocking)
        {
            _stream.Write(_send, 0, 4 + size);
            frame = ReadFrameIntoReceiveBuffer();
        }
        else
        {
            await _stream.WriteAsync(_send.AsMemory(0, 4 + size), ct);
            frame = await ReadFrameIntoReceiveBufferAsync(ct);
            // The caller may wait synchronously next: not on a socket event thread (SocketEventThread).
            if (Samsa.Net.SocketEventThread.IsCurrent) await Task.Yield();
        }
        return Decode<TResponse>(frame, request.ApiKey, version, correlation);
    }

    /// <summary>Sends a request and reads its response (acks=0 produce: pass expectResponse false).</summary>
    public async Task<TResponse?> SendAsync<TResponse>(IKafkaMessage request, short version, bool expectResponse = true, CancellationToken ct = default)
        where TResponse : class, IKafkaMessage<TResponse>
    {
        int correlation = ++_correlation;
        if (_blocking)
        {
            if (!ReuseResponseBuffer) throw new InvalidOperationException("a blocking client reads into its reused buffer only");
            _stream.Write(Encode(request, version, correlation));
            if (!expectResponse) return null;
            return Decode<TResponse>(ReadFrameIntoReceiveBuffer(), request.ApiKey, version, correlation);
        }
        await SendRawAsync(Encode(request, version, correlation), ct);
        if (!expectResponse) return null;
        if (ReuseResponseBuffer)
        {
            var reused = await ReadFrameIntoReceiveBufferAsync(ct);
            if (Samsa.Net.SocketEventThread.IsCurrent) await Task.Yield();   // as in SendReusingBuffersAsync
            return Decode<TResponse>(reused, request.ApiKey, version, correlation);
        }
        var frame = await ReadFrameAsync(ct) ?? throw new IOException("connection closed by the broker");
        return Decode<TResponse>(frame, request.ApiKey, version, correlation);
    }

    public byte[] Encode(IKafkaMessage request, short version, int correlation) => EncodeRequest(request, version, correlation, ClientId);

    /// <summary>A request frame: 4-byte length, the request header of this API version, the body.</summary>
    public static byte[] EncodeRequest(IKafkaMessage request, short version, int correlation, string? clientId)
    {
        var header = new RequestHeader { RequestApiKey = request.ApiKey, RequestApiVersion = version, CorrelationId = correlation, ClientId = clientId };
        short hv = ApiMessages.RequestHeaderVersion(request.ApiKey, version);
        int size = header.Size(hv) + request.Size(version);
        var buffer = new byte[4 + size];
        BinaryPrimitives.WriteInt32BigEndian(buffer, size);
        var writer = new KafkaWriter(buffer.AsSpan(4));
        header.Write(ref writer, hv);
        request.Write(ref writer, version);
        return buffer;
    }

    public static TResponse Decode<TResponse>(ReadOnlyMemory<byte> frame, short apiKey, short version, int correlation) where TResponse : IKafkaMessage<TResponse>
    {
        var reader = new KafkaReader(frame);
        var rh = ResponseHeader.Read(ref reader, ApiMessages.ResponseHeaderVersion(apiKey, version));
        if (rh.CorrelationId != correlation)
            throw new IOException($"correlation id {rh.CorrelationId} does not match request {correlation}");
        return TResponse.Read(ref reader, version);
    }

    public async Task SendRawAsync(byte[] bytes, CancellationToken ct = default) => await _stream.WriteAsync(bytes, ct);

    /// <summary>Reads one length-prefixed frame; null when the broker closed the connection.</summary>
    public async Task<byte[]?> ReadFrameAsync(CancellationToken ct = default)
    {
        var len = new byte[4];
        if (!await ReadExactlyOrEofAsync(len, ct)) return null;
        int size = BinaryPrimitives.ReadInt32BigEndian(len);
        if (size < 0 || size > 256 * 1024 * 1024) throw new IOException($"bad response length {size}");
        var frame = new byte[size];
        if (!await ReadExactlyOrEofAsync(frame, ct)) return null;
        if (Samsa.Net.SocketEventThread.IsCurrent) await Task.Yield();   // as in SendReusingBuffersAsync
        return frame;
    }

    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<ReadOnlyMemory<byte>> ReadFrameIntoReceiveBufferAsync(CancellationToken ct)
    {
        _receive ??= ArrayPool<byte>.Shared.Rent(64 * 1024);
        // One request is in flight, so every byte that arrives belongs to its response: the first
        // read takes as much as the buffer holds (length and body together, one receive for a
        // response that fits) instead of the 4-byte length alone.
        int have = 0;
        while (have < 4)
        {
            int n = await _stream.ReadAsync(_receive.AsMemory(have), ct);
            if (n == 0) throw new IOException("connection closed by the broker");
            have += n;
        }
        int size = SizeReceiveBuffer(have);
        if (!await ReadExactlyOrEofAsync(_receive.AsMemory(have, 4 + size - have), ct)) throw new IOException("connection closed by the broker");
        return _receive.AsMemory(4, size);
    }

    // ReadFrameIntoReceiveBufferAsync with blocking reads (a ConnectBlocking client).
    private ReadOnlyMemory<byte> ReadFrameIntoReceiveBuffer()
    {
        _receive ??= ArrayPool<byte>.Shared.Rent(64 * 1024);
        int have = 0;
        while (have < 4) have += ReadSome(have, _receive.Length);
        int size = SizeReceiveBuffer(have);
        while (have < 4 + size) have += ReadSome(have, 4 + size);
        return _receive.AsMemory(4, size);
    }

    private int ReadSome(int at, int end)
    {
        int n = _stream.Read(_receive!, at, end - at);
        if (n == 0) throw new IOException("connection closed by the broker");
        return n;
    }

    // The response's length from the first 4 of `have` bytes in the receive buffer, checked, with
    // the buffer grown (keeping what was read) when the response needs more room.
    private int SizeReceiveBuffer(int have)
    {
        int size = BinaryPrimitives.ReadInt32BigEndian(_receive);
        if (size < 0 || size > 256 * 1024 * 1024) throw new IOException($"bad response length {size}");
        if (have > 4 + size) throw new IOException($"{have - 4 - size} bytes after the response to the one request in flight");
        if (4 + size > _receive!.Length)
        {
            // Grow only as far as a response needs, keeping what was read; the old buffer goes back to the pool.
            var grown = ArrayPool<byte>.Shared.Rent(4 + size);
            _receive.AsSpan(0, have).CopyTo(grown);
            ArrayPool<byte>.Shared.Return(_receive);
            _receive = grown;
        }
        return size;
    }

    private ValueTask<bool> ReadExactlyOrEofAsync(byte[] buffer, CancellationToken ct) => ReadExactlyOrEofAsync(buffer.AsMemory(), ct);

    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> ReadExactlyOrEofAsync(Memory<byte> buffer, CancellationToken ct)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int n = await _stream.ReadAsync(buffer[read..], ct);
            if (n == 0) return false;
            read += n;
        }
        return true;
    }

    public ValueTask DisposeAsync()
    {
        if (_stream is System.Net.Security.SslStream ssl) ssl.Dispose();
        _tcp.Dispose();
        if (Interlocked.Exchange(ref _receive, null) is { } receive) ArrayPool<byte>.Shared.Return(receive);
        if (Interlocked.Exchange(ref _send, null) is { } send) ArrayPool<byte>.Shared.Return(send);
        return ValueTask.CompletedTask;
    }
}
