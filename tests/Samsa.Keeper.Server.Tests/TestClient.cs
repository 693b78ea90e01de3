using System.Threading.Channels;
using Samsa.Keeper.Protocol;
using Samsa.Keeper.Protocol.Records;
using Samsa.Keeper.Server;

namespace Samsa.Keeper.Server.Tests;

/// <summary>A client wired straight into a KeeperServer's loop (no sockets): it sends jute frames
/// through ServerConnection and reads the frames the server queues back.</summary>
public sealed class TestClient
{
    private readonly Channel<byte[]> _in = Channel.CreateUnbounded<byte[]>();
    private int _xid = 1;

    public TestClient(KeeperServer server, string ip = "127.0.0.1")
    {
        Server = server;
        Conn = new ServerConnection(server, Random.Shared.NextInt64(), new System.Net.IPEndPoint(System.Net.IPAddress.Parse(ip), 40000),
            f => { _in.Writer.TryWrite(f.ToArray()); return ValueTask.CompletedTask; },
            () => { IsClosed = true; _in.Writer.TryComplete(); });
        server.RegisterConnection(Conn);
    }

    public KeeperServer Server { get; }
    public ServerConnection Conn { get; }
    public bool IsClosed { get; private set; }
    public long SessionId { get; private set; }
    public byte[] Passwd { get; private set; } = Array.Empty<byte>();
    public int NegotiatedTimeout { get; private set; }
    /// <summary>Every frame received, in order, as (xid, zxid, err, body).</summary>
    public List<(int Xid, long Zxid, int Err, byte[] Body)> Received { get; } = new();
    public List<WatcherEvent> Events { get; } = new();

    public async Task<ConnectResponse> ConnectAsync(int timeout = 30000, long sessionId = 0, byte[]? passwd = null, long lastZxid = 0)
    {
        var req = new ConnectRequest { TimeOut = timeout, SessionId = sessionId, Passwd = passwd ?? new byte[16], LastZxidSeen = lastZxid };
        Server.Enqueue(Conn, req.ToBytes());
        var frame = await NextFrameAsync();
        var r = new JuteReader(frame);
        var rsp = ConnectResponse.Read(ref r);
        SessionId = rsp.SessionId;
        Passwd = rsp.Passwd ?? Array.Empty<byte>();
        NegotiatedTimeout = rsp.TimeOut;
        return rsp;
    }

    private async Task<byte[]> NextFrameAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        return await _in.Reader.ReadAsync(cts.Token);
    }

    public void SendRaw(byte[] frame) => Server.Enqueue(Conn, frame);

    /// <summary>Sends one request and waits for its reply, collecting watch events on the way.</summary>
    public async Task<(ReplyHeader Header, byte[] Body)> CallAsync(int type, IJuteRecord? body, int? xid = null)
    {
        int x = xid ?? _xid++;
        var hdr = new RequestHeader { Xid = x, Type = type };
        var bytes = new byte[hdr.Size() + (body?.Size() ?? 0)];
        var w = new JuteWriter(bytes);
        hdr.Write(ref w);
        body?.Write(ref w);
        Server.Enqueue(Conn, bytes);
        while (true)
        {
            var frame = await NextFrameAsync();
            var (rh, rest) = Parse(frame);
            if (rh.Xid == Xid.Notification) continue;
            if (rh.Xid == x) return (rh, rest);
        }
    }

    private (ReplyHeader, byte[]) Parse(byte[] frame)
    {
        var r = new JuteReader(frame);
        var rh = ReplyHeader.Read(ref r);
        var rest = frame.AsSpan(r.Position).ToArray();
        Received.Add((rh.Xid, rh.Zxid, rh.Err, rest));
        if (rh.Xid == Xid.Notification)
        {
            var er = new JuteReader(rest);
            Events.Add(WatcherEvent.Read(ref er));
        }
        return (rh, rest);
    }

    /// <summary>Drains frames already queued (watch events that arrive without a request).</summary>
    public async Task DrainAsync()
    {
        // a ping round-trip orders us after everything the loop has produced so far
        await CallAsync(OpCode.Ping, null, Xid.Ping);
    }

    public static T Read<T>(byte[] body, Func<byte[], T> f) => f(body);

    public async Task<(int Err, string? Path, Stat? Stat)> CreateAsync(string path, byte[]? data = null, int flags = 0, List<ACL>? acl = null, int opcode = OpCode.Create2, long ttl = -1)
    {
        acl ??= OpenAcl;
        IJuteRecord req = opcode == OpCode.CreateTTL
            ? new CreateTTLRequest { Path = path, Data = data ?? Array.Empty<byte>(), Acl = acl, Flags = flags, Ttl = ttl }
            : new CreateRequest { Path = path, Data = data ?? Array.Empty<byte>(), Acl = acl, Flags = flags };
        var (h, b) = await CallAsync(opcode, req);
        if (h.Err != 0) return (h.Err, null, null);
        var r = new JuteReader(b);
        if (opcode == OpCode.Create) return (0, CreateResponse.Read(ref r).Path, null);
        var c2 = Create2Response.Read(ref r);
        return (0, c2.Path, c2.Stat);
    }

    public async Task<(int Err, Stat? Stat)> ExistsAsync(string path, bool watch = false)
    {
        var (h, b) = await CallAsync(OpCode.Exists, new ExistsRequest { Path = path, Watch = watch });
        if (h.Err != 0) return (h.Err, null);
        var r = new JuteReader(b);
        return (0, ExistsResponse.Read(ref r).Stat);
    }

    public async Task<(int Err, byte[]? Data, Stat? Stat)> GetDataAsync(string path, bool watch = false)
    {
        var (h, b) = await CallAsync(OpCode.GetData, new GetDataRequest { Path = path, Watch = watch });
        if (h.Err != 0) return (h.Err, null, null);
        var r = new JuteReader(b);
        var g = GetDataResponse.Read(ref r);
        return (0, g.Data, g.Stat);
    }

    public async Task<(int Err, Stat? Stat)> SetDataAsync(string path, byte[] data, int version = -1)
    {
        var (h, b) = await CallAsync(OpCode.SetData, new SetDataRequest { Path = path, Data = data, Version = version });
        if (h.Err != 0) return (h.Err, null);
        var r = new JuteReader(b);
        return (0, SetDataResponse.Read(ref r).Stat);
    }

    public async Task<int> DeleteAsync(string path, int version = -1)
    {
        var (h, _) = await CallAsync(OpCode.Delete, new DeleteRequest { Path = path, Version = version });
        return h.Err;
    }

    public async Task<(int Err, List<string>? Children, Stat? Stat)> GetChildrenAsync(string path, bool watch = false)
    {
        var (h, b) = await CallAsync(OpCode.GetChildren2, new GetChildren2Request { Path = path, Watch = watch });
        if (h.Err != 0) return (h.Err, null, null);
        var r = new JuteReader(b);
        var g = GetChildren2Response.Read(ref r);
        return (0, g.Children, g.Stat);
    }

    public static readonly List<ACL> OpenAcl = new() { new ACL { Perms = Perms.All, Id = new Id { Scheme = "world", IdValue = "anyone" } } };
}
