namespace Samsa.Net;

/// <summary>Settings of a <see cref="FrameListener"/> and of every connection it accepts.</summary>
public sealed class ListenerOptions
{
    /// <summary>
    /// Largest frame payload accepted. A frame announcing a negative or larger length closes the
    /// connection. Default 100 MiB, Kafka's socket.request.max.bytes default.
    /// </summary>
    public int MaxFrameBytes = 100 * 1024 * 1024;

    /// <summary>
    /// Bytes the receive loop may read ahead of the frame loop before it stops reading the socket
    /// (the TCP window then pushes back on the client). Frames larger than half of this are
    /// assembled incrementally into a pooled buffer instead of waiting in the pipe.
    /// </summary>
    public long ReceiveBufferBytes = 1024 * 1024;

    /// <summary>
    /// Unsent bytes queued for a connection at which senders wait until the send loop has written
    /// the queue down to <see cref="SendBufferResumeBytes"/> — back-pressure on slow readers.
    /// </summary>
    public long SendBufferBytes = 4 * 1024 * 1024;

    /// <summary>Queue level below which waiting senders resume.</summary>
    public long SendBufferResumeBytes = 2 * 1024 * 1024;

    /// <summary>TCP_NODELAY: requests and responses are whole frames; Nagle only adds latency.</summary>
    public bool NoDelay = true;

    /// <summary>
    /// Send file ranges of <see cref="FramePart"/> with Socket.SendPacketsAsync (sendfile on Linux),
    /// never copying them through user space. When false (or once TLS wraps the stream) file
    /// ranges are read and copied into the send pipe instead.
    /// </summary>
    public bool ZeroCopyFileSend = true;

    /// <summary>
    /// Run the frame loop on the thread whose receive filled the input pipe, and the send loop on
    /// the thread that flushed the output pipe, instead of queueing each to the thread pool
    /// (Kestrel's inline scheduling). Saves two thread-pool hand-offs — and the worker wake-ups and
    /// context switches they cost — per socket read; the price is that a handler that completes
    /// synchronously delays the connection's next receive, which the frame loop does anyway since
    /// it handles one frame at a time. For handlers that never block: the Kafka listener (issue #19).
    /// </summary>
    public bool InlineScheduling;

    /// <summary>What the listener serves, for messages ("kafka", "keeper client"): a failed bind
    /// says "kafka listener cannot bind 127.0.0.1:9092: address already in use".</summary>
    public string Name = "tcp";

    /// <summary>Listen backlog.</summary>
    public int Backlog = 512;

    /// <summary>SO_SNDBUF of accepted sockets; 0 or less leaves the OS default (and its autotuning).</summary>
    public int SocketSendBufferBytes = -1;

    /// <summary>SO_RCVBUF of the listening socket, inherited by accepted ones; 0 or less leaves the OS default.</summary>
    public int SocketReceiveBufferBytes = -1;

    /// <summary>How long a graceful close waits for queued output to reach the socket before aborting.</summary>
    public TimeSpan CloseTimeout = TimeSpan.FromSeconds(5);

    /// <summary>
    /// TLS: when set, each accepted connection runs the TLS handshake (bounded by
    /// <see cref="TlsServerOptions.HandshakeTimeout"/>) before the handler sees it, and its loops run
    /// over an SslStream; file parts are copied (<see cref="Connection.ZeroCopyFileSend"/> is false).
    /// A failed handshake closes the connection with one <see cref="TlsHandshakeException"/> through
    /// <see cref="OnError"/>; the handler is never called for it.
    /// </summary>
    public TlsServerOptions? Tls;

    /// <summary>Called with errors that closed a connection (handler exceptions, socket errors). Optional.</summary>
    public Action<Connection, Exception>? OnError;
}
