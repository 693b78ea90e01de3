using System.Net;
using System.Threading.Channels;
using Samsa.Keeper.Protocol.Records;

namespace Samsa.Keeper.Server;

/// <summary>A client connection as the Keeper sees it: its session, auth ids, watches and an
/// ordered outbound queue. Replies and watch events are queued by the request loop and written by
/// one pump per connection, so a slow reader never stalls the loop and frames keep their order.</summary>
public sealed class ServerConnection : IWatcher
{
    private readonly KeeperServer _server;
    private readonly Func<ReadOnlyMemory<byte>, ValueTask> _send;
    private readonly Func<ReadOnlyMemory<byte>, ValueTask>? _sendRaw;
    private readonly Action _close;
    private readonly Channel<byte[]?> _out = Channel.CreateUnbounded<byte[]?>(new UnboundedChannelOptions { SingleReader = true });
    private int _closeQueued;
    private long _queuedBytes;

    /// <summary>Replies and events waiting for a client that does not read are capped; past this
    /// the connection is closed rather than letting the queue grow without bound.</summary>
    public const long MaxQueuedBytes = 64L * 1024 * 1024;

    /// <param name="send">Writes one frame behind its 4-byte length.</param>
    /// <param name="sendRaw">Writes bytes as they are; when given, frames waiting together are
    /// written with one call (each behind its length), see <see cref="PumpAsync"/>.</param>
    public ServerConnection(KeeperServer server, long id, EndPoint? remote, Func<ReadOnlyMemory<byte>, ValueTask> send, Action close,
        Func<ReadOnlyMemory<byte>, ValueTask>? sendRaw = null)
    {
        _server = server;
        _sendRaw = sendRaw;
        Id = id;
        RemoteEndPoint = remote;
        _send = send;
        _close = close;
        AuthInfo.Add(new Id { Scheme = "ip", IdValue = Auth.RemoteIp(remote) });
        EstablishedAt = DateTimeOffset.UtcNow;
        _ = PumpAsync();
    }

    public long Id { get; }
    public EndPoint? RemoteEndPoint { get; }
    public long SessionId;
    public int SessionTimeout;
    public bool Handshaken;
    public bool Closed;
    public readonly List<Id> AuthInfo = new();
    /// <summary>The connection's DIGEST-MD5 exchange (upstream: one ZooKeeperSaslServer per ServerCnxn).</summary>
    public Samsa.Keeper.Protocol.DigestMd5.Server? Sasl;
    public DateTimeOffset EstablishedAt;

    // per-connection statistics for cons / stat
    public long PacketsReceived, PacketsSent, LastCxid = -1, LastZxid = -1, LastResponseTime, MinLatency = long.MaxValue, MaxLatency, TotalLatency, LatencyCount;
    public string LastOp = "NA";

    public int OutstandingRequests;

    /// <summary>Frames gathered into one write are capped at this many bytes (upstream
    /// NIOServerCnxn.handleWrite gathers queued buffers into one socket write the same way, up
    /// to its 64 KiB direct buffer).</summary>
    private const int GatherBytes = 64 * 1024;

    private async Task PumpAsync()
    {
        var reader = _out.Reader;
        byte[]? gather = null;
        try
        {
            while (await reader.WaitToReadAsync().ConfigureAwait(false))
            {
                while (reader.TryRead(out var frame))
                {
                    if (frame is null)
                    {
                        _close();
                        return;
                    }
                    Interlocked.Add(ref _queuedBytes, -frame.Length);
                    // a pipelining client's replies come out of one loop batch together: one
                    // send (one lock, one flush, usually one syscall) for all that are waiting
                    // rather than one each
                    if (_sendRaw is not null && 4 + frame.Length < GatherBytes && reader.TryPeek(out var next) && next is not null)
                    {
                        gather ??= System.Buffers.ArrayPool<byte>.Shared.Rent(GatherBytes);
                        int used = Put(gather, 0, frame);
                        bool closeAfter = false;
                        while (reader.TryPeek(out next))
                        {
                            if (next is null)
                            {
                                reader.TryRead(out _);
                                closeAfter = true;
                                break;
                            }
                            if (used + 4 + next.Length > GatherBytes) break;
                            reader.TryRead(out _);
                            Interlocked.Add(ref _queuedBytes, -next.Length);
                            used = Put(gather, used, next);
                        }
                        try { await _sendRaw(gather.AsMemory(0, used)).ConfigureAwait(false); }
                        catch (Exception) { _close(); return; }
                        if (closeAfter)
                        {
                            _close();
                            return;
                        }
                        continue;
                    }
                    try { await _send(frame).ConfigureAwait(false); }
                    catch (Exception) { _close(); return; }
                }
            }
        }
        finally
        {
            if (gather is not null) System.Buffers.ArrayPool<byte>.Shared.Return(gather);
        }
    }

    private static int Put(byte[] buf, int at, byte[] frame)
    {
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(buf.AsSpan(at), frame.Length);
        frame.CopyTo(buf, at + 4);
        return at + 4 + frame.Length;
    }

    public void Send(byte[] frame)
    {
        if (Volatile.Read(ref _closeQueued) != 0) return;
        Interlocked.Increment(ref PacketsSent);
        if (Interlocked.Add(ref _queuedBytes, frame.Length) > MaxQueuedBytes)
        {
            CloseAfterSend();
            return;
        }
        _out.Writer.TryWrite(frame);
    }

    /// <summary>Closes after everything queued so far has been written.</summary>
    public void CloseAfterSend()
    {
        if (Interlocked.Exchange(ref _closeQueued, 1) != 0) return;
        _out.Writer.TryWrite(null);
        _out.Writer.TryComplete();
    }

    /// <summary>Watch events go out with xid -1 and the zxid of the change (as 3.9 sends them).</summary>
    public void Process(int eventType, string path, long zxid)
    {
        var hdr = new ReplyHeader { Xid = Xid.Notification, Zxid = zxid, Err = 0 };
        var ev = new WatcherEvent { Type = eventType, State = EventType.SyncConnected, Path = path };
        _server.QueueOutput(this, KeeperServer.Frame(hdr, ev));
    }
}
