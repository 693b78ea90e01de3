using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;

namespace Samsa.Net;

/// <summary>
/// One accepted TCP connection. Shaped like Kestrel's Transport.Sockets connection: a receive loop
/// fills an input pipe from the socket, a frame loop cuts the pipe into length-prefixed frames
/// for the handler, and a send loop drains an output pipe into the socket. Both pipes are bounded,
/// so a client that sends faster than the handler works, or reads slower than it answers, is
/// pushed back through TCP flow control rather than buffered without limit.
/// </summary>
public sealed class Connection
{
    private readonly Socket _socket;
    private readonly IFrameHandler _handler;
    private readonly ListenerOptions _options;
    private readonly Pipe _input;
    private readonly Pipe _output;
    // Senders take this lock so a frame's bytes are never interleaved with another sender's and
    // frames reach the socket in the order their senders entered (watch events and responses may
    // come from different threads).
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    // Replies batched per read (issue #19): while the frame loop hands the frames of one read to the
    // handler, replies written meanwhile are committed to the output pipe but not flushed; the loop
    // flushes once when it has no whole frame left or before it waits for a handler that did not
    // finish at once. A pipelining client (a producer with 5 requests in flight) then costs one send
    // loop wake-up and one send(2) per read instead of one per reply. At most DeferFlushMaxBytes
    // wait; a larger reply flushes as before (and so keeps the output pipe's back-pressure).
    // _deferFlush is set by the frame loop and cleared under _sendLock together with the flush, so
    // a sender on another thread either flushes itself or is covered by that flush.
    private volatile bool _deferFlush;
    private long _unflushedBytes;   // under _sendLock
    private const long DeferFlushMaxBytes = 64 * 1024;
    private readonly CancellationTokenSource _closedSource = new();
    private readonly TaskCompletionSource _closeCompleted = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly int _largeFrameThreshold;
    private const int ReceiveChunkBytes = 64 * 1024;

    private int _closeStarted;
    // Set by the receive loop at end of input (FIN, reset) and by the frame loop once the first
    // word showed a framed protocol; whichever comes second signals the peer's close.
    private int _inputEnded;
    private int _framed;
    private Task _receiveTask = Task.CompletedTask;
    private Task _sendTask = Task.CompletedTask;

    // Bytes flushed into the output pipe (written under _sendLock) and bytes the send loop has
    // handed to the socket; a file-range send waits until both agree so it cannot overtake
    // bytes still queued in the pipe.
    private long _bytesQueued;
    private long _bytesSent;
    private TaskCompletionSource? _drainWaiter;
    private long _drainTarget;
    private SocketAsyncEventArgs? _sendPacketsArgs;
    private TaskCompletionSource? _sendPacketsCompletion;
    private long _zeroCopyFileBytes;
    // Set once the TLS handshake succeeded (ListenerOptions.Tls); the loops then read and write it
    // instead of the socket. The plain loops are left untouched so the plain path costs nothing.
    private SslStream? _ssl;
    private const int TlsRecordPayloadBytes = 16 * 1024;

    internal Connection(long id, Socket socket, IFrameHandler handler, ListenerOptions options)
    {
        Id = id;
        _socket = socket;
        _handler = handler;
        _options = options;
        _maxFrameBytes = options.MaxFrameBytes;
        RemoteEndPoint = SafeEndPoint(() => socket.RemoteEndPoint);
        LocalEndPoint = SafeEndPoint(() => socket.LocalEndPoint);
        long receiveLimit = Math.Max(options.ReceiveBufferBytes, 64 * 1024);
        _largeFrameThreshold = (int)Math.Min(int.MaxValue, receiveLimit / 2);
        _input = new Pipe(new PipeOptions(
            pauseWriterThreshold: receiveLimit,
            resumeWriterThreshold: receiveLimit / 2,
            minimumSegmentSize: 8192,
            readerScheduler: options.InlineScheduling ? PipeScheduler.Inline : PipeScheduler.ThreadPool,
            useSynchronizationContext: false));
        long sendLimit = Math.Max(options.SendBufferBytes, 64 * 1024);
        long sendResume = Math.Clamp(options.SendBufferResumeBytes, 1, sendLimit);
        _output = new Pipe(new PipeOptions(
            pauseWriterThreshold: sendLimit,
            resumeWriterThreshold: sendResume,
            minimumSegmentSize: 16384,
            readerScheduler: options.InlineScheduling ? PipeScheduler.Inline : PipeScheduler.ThreadPool,
            useSynchronizationContext: false));
    }

    public long Id { get; }
    public EndPoint? RemoteEndPoint { get; }
    public EndPoint? LocalEndPoint { get; }

    /// <summary>The socket's SO_SNDBUF and SO_RCVBUF as the OS reports them (Linux doubles what was set).</summary>
    public (int Send, int Receive) SocketBufferSizes => (_socket.SendBufferSize, _socket.ReceiveBufferSize);

    /// <summary>The handler's per-connection state.</summary>
    public object? State { get; set; }

    /// <summary>The largest frame accepted from now on (starts at <see cref="ListenerOptions.MaxFrameBytes"/>);
    /// a handler lowers it while the peer is unauthenticated (Kafka's sasl.server.max.receive.size).</summary>
    public int MaxFrameBytes { get => Volatile.Read(ref _maxFrameBytes); set => Volatile.Write(ref _maxFrameBytes, value); }
    private int _maxFrameBytes;

    /// <summary>Cancelled when the connection starts closing, from either side: <see cref="Close"/>,
    /// or the peer ending its input (frames already received are still handled).</summary>
    public CancellationToken Closed => _closedSource.Token;

    /// <summary>File bytes this connection sent with SendPacketsAsync (not copied through user space).</summary>
    public long ZeroCopyFileBytes => Interlocked.Read(ref _zeroCopyFileBytes);

    public bool IsClosed => Volatile.Read(ref _closeStarted) != 0;

    /// <summary>
    /// True when file parts of <see cref="SendFrameAsync(IReadOnlyList{FramePart})"/> go to the
    /// socket with sendfile (<see cref="ListenerOptions.ZeroCopyFileSend"/>; a connection whose
    /// bytes must pass through user space, as TLS would need, reads and copies them instead).
    /// </summary>
    public bool ZeroCopyFileSend => _options.ZeroCopyFileSend && _options.Tls is null;

    /// <summary>True when the connection runs over TLS (the listener has <see cref="ListenerOptions.Tls"/>).</summary>
    public bool IsTls => _options.Tls is not null;

    /// <summary>The certificate the TLS client presented (verified against the trust store), or null:
    /// a plain connection, or a TLS client that sent none (ssl.client.auth=none/requested).</summary>
    public X509Certificate2? RemoteCertificate { get; private set; }

    /// <summary>The negotiated TLS protocol version and cipher suite, or null on a plain connection.</summary>
    public string? TlsDescription { get; private set; }

    /// <summary>Completes once the connection is fully closed and <see cref="IFrameHandler.OnClosedAsync"/> ran.</summary>
    internal Task RunTask { get; private set; } = Task.CompletedTask;

    private static EndPoint? SafeEndPoint(Func<EndPoint?> get)
    {
        try { return get(); } catch (SocketException) { return null; } catch (ObjectDisposedException) { return null; }
    }

    internal void Start(Action<Connection> onFinished)
    {
        RunTask = RunAsync(onFinished);
    }

    private async Task RunAsync(Action<Connection> onFinished)
    {
        // Let the constructor's caller register the connection before any handler code runs.
        await Task.Yield();
        if (_options.Tls is not null)
        {
            if (!await AuthenticateAsServerAsync(_options.Tls))
            {
                // The handler never saw this connection: no OnConnectedAsync, so no OnClosedAsync.
                Close();
                await _closeCompleted.Task;
                _input.Reader.Complete();
                _input.Writer.Complete();
                onFinished(this);
                return;
            }
            _receiveTask = TlsReceiveLoopAsync(_ssl!);
            _sendTask = TlsSendLoopAsync(_ssl!);
        }
        else
        {
            _receiveTask = ReceiveLoopAsync();
            _sendTask = SendLoopAsync();
        }
        try
        {
            await _handler.OnConnectedAsync(this);
            await FrameLoopAsync();
        }
        catch (Exception ex)
        {
            ReportError(ex);
        }
        Close();
        await _closeCompleted.Task;
        await _receiveTask;
        await _sendTask;
        try
        {
            await _handler.OnClosedAsync(this);
        }
        catch (Exception ex)
        {
            ReportError(ex);
        }
        _input.Reader.Complete();
        _sendPacketsArgs?.Dispose();
        onFinished(this);
    }

    private void ReportError(Exception ex)
    {
        try { _options.OnError?.Invoke(this, ex); } catch { /* a faulty error callback must not break the connection's shutdown */ }
    }

    // ---------------------------------------------------------------- TLS

    // The server handshake, bounded by the handshake timeout and by Close (listener shutdown). A
    // failure is one log line (upstream's SslTransportLayer logs "SSL handshake failed" and closes
    // the channel) and never an exception out of the connection.
    private async Task<bool> AuthenticateAsServerAsync(TlsServerOptions tls)
    {
        var ssl = new SslStream(new NetworkStream(_socket, ownsSocket: false), leaveInnerStreamOpen: false);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_closedSource.Token);
        timeout.CancelAfter(tls.HandshakeTimeout);
        try
        {
            // Peek at the first byte: a TLS connection opens with a handshake record (content type
            // 22). Anything else is most likely a plaintext client on the TLS port; say so.
            byte[] first = new byte[1];
            int peeked = await _socket.ReceiveAsync(first, SocketFlags.Peek, timeout.Token);
            if (peeked == 0)
            {
                // Connected and closed without a byte (a port probe, a TCP health check): nothing
                // to report, as for a plain connection that closes at once.
                ssl.Dispose();
                return false;
            }
            if (first[0] != 0x16)
            {
                throw new InvalidDataException($"the first byte 0x{first[0]:x2} does not start a TLS handshake (a plaintext client on a TLS port?)");
            }
            await ssl.AuthenticateAsServerAsync(tls.AuthenticationOptions, timeout.Token);
        }
        catch (Exception ex)
        {
            if (!IsClosed)
            {
                ReportError(new TlsHandshakeException(TlsHandshakeException.Describe(
                    $"TLS handshake on {_options.Name} listener with {RemoteEndPoint?.ToString() ?? "?"}", ex,
                    tls.HandshakeTimeout, timeout.IsCancellationRequested), ex));
            }
            ssl.Dispose();
            return false;
        }
        if (ssl.RemoteCertificate is { } remote)
        {
            RemoteCertificate = remote as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(remote.GetRawCertData());
        }
        TlsDescription = $"{ssl.SslProtocol} {ssl.NegotiatedCipherSuite}";
        _ssl = ssl;
        return true;
    }

    private async Task TlsReceiveLoopAsync(SslStream ssl)
    {
        PipeWriter writer = _input.Writer;
        Exception? error = null;
        bool lastReadFull = false;
        try
        {
            while (true)
            {
                // A zero-byte read waits for decrypted data without holding a buffer (as in the
                // plain loop); after a whole record more is likely buffered, so read at once.
                if (!lastReadFull)
                {
#pragma warning disable CA2022 // a zero-byte read only waits for data; nothing is lost
                    await ssl.ReadAsync(Memory<byte>.Empty);
#pragma warning restore CA2022
                }
                Memory<byte> memory = writer.GetMemory(ReceiveChunkBytes);
                int received = await ssl.ReadAsync(memory);
                if (received == 0)
                {
                    break;
                }
                lastReadFull = received >= TlsRecordPayloadBytes;
                writer.Advance(received);
                FlushResult flush = await writer.FlushAsync();
                if (flush.IsCompleted || flush.IsCanceled)
                {
                    break;
                }
            }
        }
        catch (Exception ex) when (IsQuietEnd(ex)) { }
        catch (Exception ex) { error = ex; }
        if (error is not null)
        {
            // Garbage after the handshake (a record that does not decrypt) lands here: one line.
            ReportError(new IOException($"TLS connection on {_options.Name} listener with {RemoteEndPoint?.ToString() ?? "?"} failed: {error.Message}", error));
        }
        await writer.CompleteAsync();
        Interlocked.Exchange(ref _inputEnded, 1);
        if (Volatile.Read(ref _framed) != 0)
        {
            SignalPeerClosed();
        }
    }

    // A reset, an abort or our own close: the ordinary end of a connection, not worth a log line.
    private bool IsQuietEnd(Exception ex) => IsClosed || ex switch
    {
        SocketException or ObjectDisposedException or OperationCanceledException => true,
        IOException { InnerException: SocketException or ObjectDisposedException } => true,
        _ => false,
    };

    private async Task TlsSendLoopAsync(SslStream ssl)
    {
        PipeReader reader = _output.Reader;
        Exception? error = null;
        byte[]? gather = null;
        try
        {
            while (true)
            {
                ReadResult result = await reader.ReadAsync();
                ReadOnlySequence<byte> buffer = result.Buffer;
                if (buffer.IsSingleSegment)
                {
                    if (!buffer.IsEmpty)
                    {
                        await ssl.WriteAsync(buffer.First);
                    }
                }
                else
                {
                    // Gather small pipe segments into full TLS records: fewer records and sends.
                    gather ??= new byte[4 * TlsRecordPayloadBytes];
                    int filled = 0;
                    foreach (ReadOnlyMemory<byte> memory in buffer)
                    {
                        ReadOnlyMemory<byte> rest = memory;
                        while (!rest.IsEmpty)
                        {
                            int take = Math.Min(rest.Length, gather.Length - filled);
                            rest.Span[..take].CopyTo(gather.AsSpan(filled));
                            filled += take;
                            rest = rest[take..];
                            if (filled == gather.Length)
                            {
                                await ssl.WriteAsync(gather);
                                filled = 0;
                            }
                        }
                    }
                    if (filled > 0)
                    {
                        await ssl.WriteAsync(gather.AsMemory(0, filled));
                    }
                }
                long length = buffer.Length;
                reader.AdvanceTo(buffer.End);
                long sent = Interlocked.Add(ref _bytesSent, length);
                TaskCompletionSource? waiter = Volatile.Read(ref _drainWaiter);
                if (waiter is not null && sent >= Volatile.Read(ref _drainTarget))
                {
                    waiter.TrySetResult();
                }
                if (result.IsCompleted || result.IsCanceled)
                {
                    // close_notify before the TCP close, as upstream's SslTransportLayer.close does.
                    try { await ssl.ShutdownAsync().WaitAsync(_options.CloseTimeout); } catch (Exception ex) when (ex is IOException or ObjectDisposedException or TimeoutException or SocketException or InvalidOperationException) { }
                    break;
                }
            }
        }
        catch (Exception ex) when (IsQuietEnd(ex)) { }
        catch (Exception ex) { error = ex; }
        if (error is not null)
        {
            ReportError(error);
        }
        await reader.CompleteAsync();
        Volatile.Read(ref _drainWaiter)?.TrySetResult();
        if (!IsClosed)
        {
            Close();
        }
    }

    // ---------------------------------------------------------------- receive side

    private async Task ReceiveLoopAsync()
    {
        PipeWriter writer = _input.Writer;
        Exception? error = null;
        bool lastReadFilled = false;
        try
        {
            while (true)
            {
                // Wait for readability with a zero-byte receive before taking a buffer, as Kestrel
                // does, so idle connections hold no receive memory. When the last read filled its
                // buffer more bytes are almost surely queued (a client streaming produce requests):
                // read at once and save the extra system call and readiness wait.
                if (!lastReadFilled)
                {
                    await _socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None);
                }
                // Reads of up to 64 KiB: fewer system calls per MB, and frames of a few KiB (a
                // producer's batches) mostly land whole in one segment, so the frame loop hands
                // them to the handler without assembling a copy.
                Memory<byte> memory = writer.GetMemory(ReceiveChunkBytes);
                int received = await _socket.ReceiveAsync(memory, SocketFlags.None);
                if (received == 0)
                {
                    break; // peer finished sending
                }
                lastReadFilled = received == memory.Length;
                writer.Advance(received);
                FlushResult flush = await writer.FlushAsync();
                if (flush.IsCompleted || flush.IsCanceled)
                {
                    break;
                }
            }
        }
        catch (SocketException) { /* reset or aborted: the same as end of input for the frame loop */ }
        catch (ObjectDisposedException) { /* closed by us */ }
        catch (Exception ex) { error = ex; }
        if (error is not null)
        {
            ReportError(error);
        }
        await writer.CompleteAsync();
        Interlocked.Exchange(ref _inputEnded, 1);
        if (Volatile.Read(ref _framed) != 0)
        {
            SignalPeerClosed();
        }
    }

    // The peer closed its end while a handler may be waiting (a long-poll Fetch parked for
    // max_wait): tell it through Closed, as upstream's Selector closes a channel whose read hits
    // end of stream (Kafka) or NIOServerCnxn does (ZooKeeper), instead of leaving the socket in
    // CLOSE-WAIT until the handler returns. Frames already received are still handled and their
    // answers still queued; the frame loop then ends at the end of input and closes the connection.
    // Not for raw commands (four-letter words): `nc` may half-close before reading the answer.
    private void SignalPeerClosed()
    {
        try { _closedSource.Cancel(); } catch (AggregateException ex) { ReportError(ex); }
    }

    private async Task FrameLoopAsync()
    {
        PipeReader reader = _input.Reader;
        bool firstWordPending = true;
        while (!IsClosed)
        {
            ReadResult result = await reader.ReadAsync();
            if (result.IsCanceled)
            {
                return;
            }
            ReadOnlySequence<byte> buffer = result.Buffer;
            while (buffer.Length >= 4 && !IsClosed)
            {
                int length = ReadInt32BigEndian(buffer);
                if (firstWordPending)
                {
                    int argLength = _handler.RawCommandArgumentLength(length);
                    if (argLength > 0)
                    {
                        if (buffer.Length < 4 + argLength && !result.IsCompleted)
                        {
                            break; // wait for the argument
                        }
                        byte[] argument = buffer.Slice(4, Math.Min(argLength, buffer.Length - 4)).ToArray();
                        reader.AdvanceTo(buffer.GetPosition(4 + argument.Length));
                        await _handler.OnRawCommandAsync(this, length, argument);
                        await RawCommandTailAsync(reader);
                        return;
                    }
                    firstWordPending = false;
                    if (await _handler.OnFirstWordAsync(this, length))
                    {
                        reader.AdvanceTo(buffer.GetPosition(4));
                        await RawCommandTailAsync(reader);
                        return;
                    }
                    Interlocked.Exchange(ref _framed, 1);
                    if (Volatile.Read(ref _inputEnded) != 0)
                    {
                        SignalPeerClosed();
                    }
                }
                int maxFrame = MaxFrameBytes;
                if (length < 0 || length > maxFrame)
                {
                    // Kafka's and ZooKeeper's servers drop a connection announcing an impossible size.
                    ReportError(new InvalidDataException($"frame length {length} outside 0..{maxFrame}"));
                    reader.AdvanceTo(buffer.End);
                    return;
                }
                if (buffer.Length - 4 < length)
                {
                    if (length > _largeFrameThreshold)
                    {
                        if (_deferFlush)
                        {
                            await EndDeferredRepliesAsync();
                        }
                        // The frame cannot wait whole in the bounded input pipe; assemble it in a
                        // pooled buffer while consuming the pipe.
                        bool complete = await ReadLargeFrameAsync(reader, buffer, length);
                        if (!complete)
                        {
                            return;
                        }
                        goto nextRead;
                    }
                    break;
                }
                ReadOnlySequence<byte> frame = buffer.Slice(4, length);
                _deferFlush = true;
                if (frame.IsSingleSegment)
                {
                    ValueTask handled = _handler.OnFrameAsync(this, frame.First);
                    if (!handled.IsCompleted)
                    {
                        await EndDeferredRepliesAsync();
                    }
                    await handled;
                }
                else
                {
                    byte[] rented = ArrayPool<byte>.Shared.Rent(length);
                    try
                    {
                        frame.CopyTo(rented);
                        ValueTask handled = _handler.OnFrameAsync(this, rented.AsMemory(0, length));
                        if (!handled.IsCompleted)
                        {
                            await EndDeferredRepliesAsync();
                        }
                        await handled;
                    }
                    finally
                    {
                        ArrayPool<byte>.Shared.Return(rented);
                    }
                }
                buffer = buffer.Slice(frame.End);
            }
            if (_deferFlush)
            {
                // No whole frame left in this read: send the batch's replies.
                await EndDeferredRepliesAsync();
            }
            reader.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted)
            {
                return;
            }
        nextRead:;
        }
    }

    private async ValueTask<bool> ReadLargeFrameAsync(PipeReader reader, ReadOnlySequence<byte> buffer, int length)
    {
        byte[] rented = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            ReadOnlySequence<byte> available = buffer.Slice(4);
            available.CopyTo(rented);
            int filled = (int)available.Length;
            reader.AdvanceTo(buffer.End);
            while (filled < length)
            {
                ReadResult result = await reader.ReadAsync();
                if (result.IsCanceled)
                {
                    return false;
                }
                ReadOnlySequence<byte> more = result.Buffer;
                int take = (int)Math.Min(more.Length, length - filled);
                more.Slice(0, take).CopyTo(rented.AsSpan(filled));
                filled += take;
                reader.AdvanceTo(more.GetPosition(take));
                if (filled < length && result.IsCompleted)
                {
                    return false; // peer closed mid-frame
                }
            }
            await _handler.OnFrameAsync(this, rented.AsMemory(0, length));
            return true;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    // After a raw command (a ZooKeeper four-letter word) nothing more is parsed: discard input
    // until the peer finishes, then give the handler a moment to close after its answer.
    private async Task RawCommandTailAsync(PipeReader reader)
    {
        while (!IsClosed)
        {
            ReadResult result = await reader.ReadAsync();
            reader.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted || result.IsCanceled)
            {
                break;
            }
        }
        if (!IsClosed)
        {
            try { await _closeCompleted.Task.WaitAsync(_options.CloseTimeout); } catch (TimeoutException) { }
        }
    }

    private static int ReadInt32BigEndian(in ReadOnlySequence<byte> buffer)
    {
        ReadOnlySpan<byte> first = buffer.FirstSpan;
        if (first.Length >= 4)
        {
            return BinaryPrimitives.ReadInt32BigEndian(first);
        }
        Span<byte> four = stackalloc byte[4];
        buffer.Slice(0, 4).CopyTo(four);
        return BinaryPrimitives.ReadInt32BigEndian(four);
    }

    // ---------------------------------------------------------------- send side

    /// <summary>Sends a 4-byte big-endian length followed by <paramref name="payload"/>. Thread-safe; frames keep the order in which senders called.</summary>
    /// <remarks>Completes when the frame is queued (waiting while the send buffer is over its limit). Sends on a closing connection are dropped.</remarks>
    public ValueTask SendFrameAsync(ReadOnlyMemory<byte> payload) => SendCoreAsync(payload, prefix: true);

    /// <summary>Sends bytes without a length prefix (answers to four-letter words).</summary>
    public ValueTask SendRawAsync(ReadOnlyMemory<byte> bytes) => SendCoreAsync(bytes, prefix: false);

    private async ValueTask SendCoreAsync(ReadOnlyMemory<byte> payload, bool prefix)
    {
        if (!_sendLock.Wait(0))
        {
            await _sendLock.WaitAsync();
        }
        try
        {
            if (IsClosed)
            {
                return;
            }
            PipeWriter writer = _output.Writer;
            if (prefix)
            {
                BinaryPrimitives.WriteInt32BigEndian(writer.GetSpan(4), payload.Length);
                writer.Advance(4);
            }
            writer.Write(payload.Span);
            _bytesQueued += payload.Length + (prefix ? 4 : 0);
            await FlushOrDeferLocked(payload.Length + (prefix ? 4 : 0));
        }
        finally
        {
            _sendLock.Release();
        }
    }

    /// <summary>
    /// Sends one frame made of the given parts, the length prefix being their total length. File
    /// parts (log segment ranges) go out with Socket.SendPacketsAsync — sendfile(2) on Linux — so
    /// their bytes never pass through user space; bytes queued before this frame are written first.
    /// </summary>
    public async ValueTask SendFrameAsync(IReadOnlyList<FramePart> parts)
    {
        ArgumentNullException.ThrowIfNull(parts);
        long total = 0;
        bool hasFile = false;
        bool allFilesAsync = true;
        for (int i = 0; i < parts.Count; i++)
        {
            total += parts[i].Length;
            if (parts[i].IsFile)
            {
                hasFile = true;
                allFilesAsync &= parts[i].File!.IsAsync;
            }
        }
        if (total > int.MaxValue)
        {
            throw new ArgumentException("frame longer than 2^31-1 bytes", nameof(parts));
        }
        await _sendLock.WaitAsync();
        try
        {
            if (IsClosed)
            {
                return;
            }
            // SendPacketsElement only takes FileStreams opened with FileOptions.Asynchronous;
            // other streams are copied, which is slower but sends the same bytes.
            if (hasFile && allFilesAsync && ZeroCopyFileSend)
            {
                // sendfile goes around the pipe: what waits in it must go first.
                await FlushDeferredLocked();
                await SendPacketsAsync(parts, (int)total);
                return;
            }
            PipeWriter writer = _output.Writer;
            BinaryPrimitives.WriteInt32BigEndian(writer.GetSpan(4), (int)total);
            writer.Advance(4);
            try
            {
                foreach (FramePart part in parts)
                {
                    if (part.IsFile)
                    {
                        CopyFileRange(writer, part);
                    }
                    else
                    {
                        writer.Write(part.Memory.Span);
                    }
                }
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException)
            {
                // The file shrank or closed under the range (upstream closes the connection when a
                // FileRecords was truncated during the write): part of the frame is in the pipe, so
                // no later frame may follow it; the peer sees a frame cut short and the close.
                ReportError(ex);
                Close();
                return;
            }
            _bytesQueued += 4 + total;
            await FlushOrDeferLocked(4 + total);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    private static void CopyFileRange(PipeWriter writer, FramePart part)
    {
        long offset = part.FileOffset;
        int remaining = part.Length;
        while (remaining > 0)
        {
            Span<byte> span = writer.GetSpan(Math.Min(remaining, 65536));
            if (span.Length > remaining)
            {
                span = span[..remaining];
            }
            int read = RandomAccess.Read(part.File!.SafeFileHandle, span, offset);
            if (read <= 0)
            {
                throw new IOException($"file range ends early: {remaining} bytes missing at offset {offset}");
            }
            writer.Advance(read);
            offset += read;
            remaining -= read;
        }
    }

    // Under _sendLock: leave the bytes just written for the frame loop's flush, or flush now.
    private ValueTask<FlushResult> FlushOrDeferLocked(long bytes)
    {
        if (_deferFlush && _unflushedBytes + bytes <= DeferFlushMaxBytes)
        {
            _unflushedBytes += bytes;
            return ValueTask.FromResult(default(FlushResult));
        }
        _unflushedBytes = 0;
        return _output.Writer.FlushAsync();
    }

    // Under _sendLock: flush what deferred replies left unflushed.
    private async ValueTask FlushDeferredLocked()
    {
        if (_unflushedBytes == 0)
        {
            return;
        }
        _unflushedBytes = 0;
        await _output.Writer.FlushAsync();
    }

    /// <summary>The frame loop ends a batch of replies: stop deferring and flush them.</summary>
    private async ValueTask EndDeferredRepliesAsync()
    {
        if (!_sendLock.Wait(0))
        {
            await _sendLock.WaitAsync();
        }
        try
        {
            _deferFlush = false;
            if (!IsClosed)
            {
                await FlushDeferredLocked();
            }
        }
        finally
        {
            _sendLock.Release();
        }
    }

    private async ValueTask SendPacketsAsync(IReadOnlyList<FramePart> parts, int total)
    {
        await WaitForOutputDrainedAsync();
        if (IsClosed)
        {
            return;
        }
        var elements = new List<SendPacketsElement>(parts.Count + 1);
        long fileBytes = 0;
        byte[] prefix = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(prefix, total);
        elements.Add(new SendPacketsElement(prefix));
        foreach (FramePart part in parts)
        {
            // A zero count means "the whole file" to SendPacketsElement; skip empty parts instead.
            if (part.Length == 0)
            {
                continue;
            }
            elements.Add(part.IsFile
                ? new SendPacketsElement(part.File!, part.FileOffset, part.Length)
                : new SendPacketsElement(part.Memory));
            if (part.IsFile)
            {
                fileBytes += part.Length;
            }
        }
        SocketAsyncEventArgs args = _sendPacketsArgs ??= CreateSendPacketsArgs();
        var completion = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _sendPacketsCompletion = completion;
        args.SendPacketsElements = elements.ToArray();
        bool pending;
        try
        {
            pending = _socket.SendPacketsAsync(args);
        }
        catch (Exception ex) when (ex is ObjectDisposedException or NotSupportedException or SocketException or InvalidOperationException)
        {
            // The peer left before its answer went out: once a send or receive failed the socket
            // counts as not connected, and SendPacketsAsync refuses it ("non-connected sockets",
            // NotSupportedException). That is a departed client, not an error: close quietly, as the
            // pipe send loop does for SocketException, and as upstream's Selector drops the channel.
            args.SendPacketsElements = null;
            Close();
            return;
        }
        if (pending)
        {
            await completion.Task;
        }
        args.SendPacketsElements = null;
        if (args.SocketError != SocketError.Success)
        {
            // A peer that reset or went away is the ordinary end of a connection (the pipe send
            // loop swallows the same SocketExceptions); anything else is reported.
            if (args.SocketError is not (SocketError.ConnectionReset or SocketError.ConnectionAborted
                or SocketError.Shutdown or SocketError.NotConnected or SocketError.OperationAborted))
            {
                ReportError(new SocketException((int)args.SocketError));
            }
            Close();
            return;
        }
        if (args.BytesTransferred != 4L + total)
        {
            // sendfile stops early at the end of a file that was truncated under the range: the
            // frame is short, so the byte stream is no longer framed; close (as upstream does).
            ReportError(new IOException($"frame of {4L + total} bytes sent as {args.BytesTransferred}: a file range shrank"));
            Close();
            return;
        }
        Interlocked.Add(ref _zeroCopyFileBytes, fileBytes);
    }

    private SocketAsyncEventArgs CreateSendPacketsArgs()
    {
        var args = new SocketAsyncEventArgs();
        args.Completed += (_, _) => _sendPacketsCompletion?.TrySetResult();
        return args;
    }

    private Task WaitForOutputDrainedAsync()
    {
        // Called under _sendLock, so _bytesQueued cannot move meanwhile.
        long target = _bytesQueued;
        if (Volatile.Read(ref _bytesSent) >= target || _sendTask.IsCompleted)
        {
            return Task.CompletedTask;
        }
        var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _drainTarget, target);
        Volatile.Write(ref _drainWaiter, waiter);
        if (Volatile.Read(ref _bytesSent) >= target || _sendTask.IsCompleted)
        {
            waiter.TrySetResult();
        }
        return waiter.Task.ContinueWith(_ => Volatile.Write(ref _drainWaiter, null), TaskScheduler.Default);
    }

    private async Task SendLoopAsync()
    {
        PipeReader reader = _output.Reader;
        List<ArraySegment<byte>>? segments = null;
        Exception? error = null;
        try
        {
            while (true)
            {
                ReadResult result = await reader.ReadAsync();
                ReadOnlySequence<byte> buffer = result.Buffer;
                if (!buffer.IsEmpty)
                {
                    if (buffer.IsSingleSegment)
                    {
                        await SendAllAsync(buffer.First);
                    }
                    else
                    {
                        segments ??= new List<ArraySegment<byte>>();
                        segments.Clear();
                        bool allArrays = true;
                        foreach (ReadOnlyMemory<byte> memory in buffer)
                        {
                            if (!System.Runtime.InteropServices.MemoryMarshal.TryGetArray(memory, out ArraySegment<byte> segment))
                            {
                                allArrays = false;
                                break;
                            }
                            segments.Add(segment);
                        }
                        if (allArrays)
                        {
                            // One gathering send instead of one syscall per pipe segment.
                            await _socket.SendAsync(segments, SocketFlags.None);
                        }
                        else
                        {
                            foreach (ReadOnlyMemory<byte> memory in buffer)
                            {
                                await SendAllAsync(memory);
                            }
                        }
                    }
                }
                long length = buffer.Length;
                reader.AdvanceTo(buffer.End);
                long sent = Interlocked.Add(ref _bytesSent, length);
                TaskCompletionSource? waiter = Volatile.Read(ref _drainWaiter);
                if (waiter is not null && sent >= Volatile.Read(ref _drainTarget))
                {
                    waiter.TrySetResult();
                }
                if (result.IsCompleted || result.IsCanceled)
                {
                    break;
                }
            }
        }
        catch (SocketException) { }
        catch (ObjectDisposedException) { }
        catch (Exception ex) { error = ex; }
        if (error is not null)
        {
            ReportError(error);
        }
        // Completing the reader releases any sender blocked on back-pressure: their flush now
        // returns "completed" and later sends are dropped.
        await reader.CompleteAsync();
        Volatile.Read(ref _drainWaiter)?.TrySetResult();
        if (!IsClosed)
        {
            Close();
        }
    }

    private async ValueTask SendAllAsync(ReadOnlyMemory<byte> memory)
    {
        while (!memory.IsEmpty)
        {
            int sent = await _socket.SendAsync(memory, SocketFlags.None);
            memory = memory[sent..];
        }
    }

    // ---------------------------------------------------------------- close

    /// <summary>
    /// Closes the connection: frames already queued are still written (up to
    /// <see cref="ListenerOptions.CloseTimeout"/>), later sends are dropped, no further frames are
    /// read, and <see cref="IFrameHandler.OnClosedAsync"/> follows. Idempotent.
    /// </summary>
    public void Close()
    {
        if (Interlocked.Exchange(ref _closeStarted, 1) != 0)
        {
            return;
        }
        try { _closedSource.Cancel(); } catch (AggregateException ex) { ReportError(ex); }
        _input.Reader.CancelPendingRead();
        _ = CloseGracefullyAsync();
    }

    private async Task CloseGracefullyAsync()
    {
        try
        {
            var deadline = TimeSpan.FromTicks(Math.Max(1, _options.CloseTimeout.Ticks));
            if (await _sendLock.WaitAsync(deadline))
            {
                try
                {
                    // Replies still deferred (the frame loop stopped mid-batch) go out before the end.
                    _deferFlush = false;
                    try { await FlushDeferredLocked(); } catch (InvalidOperationException) { }
                    await _output.Writer.CompleteAsync();
                }
                finally { _sendLock.Release(); }
                try { await _sendTask.WaitAsync(deadline); } catch (TimeoutException) { }
            }
            try { _socket.Shutdown(SocketShutdown.Both); } catch (SocketException) { } catch (ObjectDisposedException) { }
        }
        catch (Exception ex)
        {
            ReportError(ex);
        }
        finally
        {
            // Disposing the socket ends the receive loop and any send stuck on a peer that stopped reading.
            _socket.Dispose();
            _ssl?.Dispose();
            _closeCompleted.TrySetResult();
        }
    }
}
