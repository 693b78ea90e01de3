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
    private readonly Action _close;
    private readonly Channel<byte[]?> _out = Channel.CreateUnbounded<byte[]?>(new UnboundedChannelOptions { SingleReader = true });
    private int _closeQueued;
    private long _queuedBytes;

    /// <summary>Replies and events waiting for a client that does not read are capped; past this
    /// the connection is closed rather than letting the queue grow without bound.</summary>
    public const long MaxQueuedBytes = 64L * 1024 * 1024;

    public ServerConnection(KeeperServer server, long id, EndPoint? remote, Func<ReadOnlyMemory<byte>, ValueTask> send, Action close)
    {
        _server = server;
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

    private async Task PumpAsync()
    {
        var reader = _out.Reader;
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
                try { await _send(frame).ConfigureAwait(false); }
                catch (Exception) { _close(); return; }
            }
        }
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
