using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Samsa.Keeper.Protocol;
using Samsa.Keeper.Protocol.Records;
using Xunit;

namespace Samsa.Keeper.Client.Tests;

/// <summary>A scripted server on loopback: each accepted connection runs the handler, so a test
/// can look at exactly what the client writes and answer with anything, malformed or not.</summary>
public sealed class FakeServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accept;
    public readonly Channel<ConnectRequest> ConnectRequests = Channel.CreateUnbounded<ConnectRequest>();

    public FakeServer(Func<NetworkStream, int, Task> handler)
    {
        _listener.Start();
        _accept = Task.Run(async () =>
        {
            int n = 0;
            try
            {
                while (true)
                {
                    var c = await _listener.AcceptTcpClientAsync(_stop.Token);
                    int index = n++;
                    _ = Task.Run(async () =>
                    {
                        using (c)
                        {
                            try { await handler(c.GetStream(), index); }
                            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException) { }
                        }
                    });
                }
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException) { }
        });
    }

    public string Address => $"127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";

    public static async Task<byte[]> ReadFrameAsync(Stream s)
    {
        var len = new byte[4];
        await s.ReadExactlyAsync(len);
        var body = new byte[BinaryPrimitives.ReadInt32BigEndian(len)];
        await s.ReadExactlyAsync(body);
        return body;
    }

    public static async Task WriteFrameAsync(Stream s, params IJuteRecord[] records)
    {
        int size = records.Sum(r => r.Size());
        var frame = new byte[4 + size];
        BinaryPrimitives.WriteInt32BigEndian(frame, size);
        var w = new JuteWriter(frame.AsSpan(4));
        foreach (var r in records) r.Write(ref w);
        await s.WriteAsync(frame);
    }

    /// <summary>Reads the ConnectRequest and grants a session.</summary>
    public async Task<ConnectRequest> HandshakeAsync(Stream s, int timeout = 6000, long sessionId = 0x1234, byte[]? passwd = null)
    {
        var f = await ReadFrameAsync(s);
        var r = new JuteReader(f);
        var req = ConnectRequest.Read(ref r);
        ConnectRequests.Writer.TryWrite(req);
        await WriteFrameAsync(s, new ConnectResponse { ProtocolVersion = 0, TimeOut = timeout, SessionId = sessionId, Passwd = passwd ?? Enumerable.Range(1, 16).Select(i => (byte)i).ToArray(), ReadOnly = false });
        return req;
    }

    public static RequestHeader ReadHeader(byte[] frame)
    {
        var r = new JuteReader(frame);
        return RequestHeader.Read(ref r);
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        try { await _accept; } catch (OperationCanceledException) { }
    }
}

// Run alone: these tests time pings and read timeouts, and one measures the process's allocated
// bytes (GC.GetTotalAllocatedBytes counts every thread), which tests running alongside would skew.
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class WireTestsAlone { public const string Name = "wire tests, alone"; }

/// <summary>The client's wire behaviour against a scripted server: handshake fields, pings,
/// xid order, frame limits and what happens on malformed answers.</summary>
[Collection(WireTestsAlone.Name)]
public sealed class WireTests
{
    private static async Task<T> Next<T>(Channel<T> ch, int ms = 10000)
    {
        using var cts = new CancellationTokenSource(ms);
        return await ch.Reader.ReadAsync(cts.Token);
    }

    [Fact]
    public async Task Reconnect_sends_the_same_session_id_password_and_last_zxid()
    {
        FakeServer? server = null;
        server = new FakeServer(async (s, index) =>
        {
            await server!.HandshakeAsync(s);
            var frame = await FakeServer.ReadFrameAsync(s);
            var h = FakeServer.ReadHeader(frame);
            if (index == 0)
            {
                // answer the first request with zxid 77, then drop the connection
                await FakeServer.WriteFrameAsync(s, new ReplyHeader { Xid = h.Xid, Zxid = 77, Err = 0 }, new ExistsResponse { Stat = new Stat { Version = 3 } });
                return;
            }
            await FakeServer.WriteFrameAsync(s, new ReplyHeader { Xid = h.Xid, Zxid = 78, Err = 0 }, new ExistsResponse { Stat = new Stat { Version = 4 } });
            await Task.Delay(-1, new CancellationTokenSource(20000).Token);
        });
        await using var _ = server;
        await using var zk = await KeeperClient.ConnectAsync(server.Address, new KeeperClientOptions { SessionTimeout = TimeSpan.FromSeconds(6) });
        var first = await Next(server.ConnectRequests);
        Assert.Equal(0, first.SessionId);
        Assert.Equal(0, first.LastZxidSeen);
        Assert.Equal(6000, first.TimeOut);
        Assert.Equal(16, first.Passwd!.Length);
        Assert.Equal(3, (await zk.ExistsAsync("/a"))!.Version);
        Assert.Equal(77, zk.LastZxid);

        var second = await Next(server.ConnectRequests);
        Assert.Equal(0x1234, second.SessionId);
        Assert.Equal(Enumerable.Range(1, 16).Select(i => (byte)i), second.Passwd!);
        Assert.Equal(77, second.LastZxidSeen);
        await zk.WaitConnectedAsync();
        Assert.Equal(4, (await zk.ExistsAsync("/a"))!.Version);
    }

    [Fact]
    public async Task Pings_go_at_a_third_of_the_timeout_and_a_silent_server_is_dropped()
    {
        var pings = Channel.CreateUnbounded<long>();
        FakeServer? server = null;
        server = new FakeServer(async (s, index) =>
        {
            await server!.HandshakeAsync(s, timeout: 3000);
            var sw = Stopwatch.StartNew();
            while (true)
            {
                var h = FakeServer.ReadHeader(await FakeServer.ReadFrameAsync(s));
                Assert.Equal(-2, h.Xid);
                Assert.Equal(11, h.Type);
                pings.Writer.TryWrite(sw.ElapsedMilliseconds);
                // the first connection answers two pings, then goes silent
                if (index > 0 || sw.ElapsedMilliseconds < 2500)
                    await FakeServer.WriteFrameAsync(s, new ReplyHeader { Xid = -2, Zxid = 0, Err = 0 });
            }
        });
        await using var _ = server;
        var states = Channel.CreateUnbounded<(KeeperState, long)>();
        var clock = Stopwatch.StartNew();
        await using var zk = await KeeperClient.ConnectAsync(server.Address, new KeeperClientOptions
        {
            SessionTimeout = TimeSpan.FromSeconds(3),
            DefaultWatcher = e => states.Writer.TryWrite((e.State, clock.ElapsedMilliseconds)),
        });
        Assert.Equal(TimeSpan.FromSeconds(3), zk.SessionTimeout);
        long p1 = await Next(pings), p2 = await Next(pings);
        // readTimeout = 2/3 * 3000 = 2000 ms; a ping after 1000 ms of idle sending
        Assert.InRange(p1, 700, 1900);
        Assert.InRange(p2 - p1, 500, 1900);
        Assert.Equal(KeeperState.SyncConnected, (await Next(states)).Item1);
        var (state, at) = await Next(states);
        Assert.Equal(KeeperState.Disconnected, state);
        // the last answered ping was at ~2000 ms; silence for readTimeout (2000 ms) drops the connection
        Assert.InRange(at, 3000, 6500);
        Assert.Equal(KeeperState.SyncConnected, (await Next(states)).Item1);
    }

    [Fact]
    public async Task Oversized_or_negative_frame_lengths_drop_the_connection_without_allocating()
    {
        var attempts = Channel.CreateUnbounded<int>();
        await using var server = new FakeServer(async (s, index) =>
        {
            await FakeServer.ReadFrameAsync(s);
            attempts.Writer.TryWrite(index);
            var len = new byte[4];
            BinaryPrimitives.WriteInt32BigEndian(len, index % 2 == 0 ? int.MaxValue : -5);
            await s.WriteAsync(len);
            await Task.Delay(5000);
        });
        using var cts = new CancellationTokenSource(4000);
        var before = GC.GetTotalAllocatedBytes(true);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => KeeperClient.ConnectAsync(server.Address,
            new KeeperClientOptions { SessionTimeout = TimeSpan.FromSeconds(4), ConnectTimeout = TimeSpan.FromSeconds(2) }, cts.Token));
        Assert.True(GC.GetTotalAllocatedBytes(true) - before < 64 * 1024 * 1024, "a bad length was used to size a buffer");
        Assert.Equal(0, await Next(attempts));
        Assert.Equal(1, await Next(attempts));
    }

    [Fact]
    public async Task An_answer_with_the_wrong_xid_is_a_connection_loss()
    {
        FakeServer? server = null;
        server = new FakeServer(async (s, index) =>
        {
            await server!.HandshakeAsync(s);
            var h = FakeServer.ReadHeader(await FakeServer.ReadFrameAsync(s));
            await FakeServer.WriteFrameAsync(s, new ReplyHeader { Xid = h.Xid + (index == 0 ? 5 : 0), Zxid = 1, Err = index == 0 ? 0 : -101 });
            await Task.Delay(10000);
        });
        await using var _ = server;
        await using var zk = await KeeperClient.ConnectAsync(server.Address);
        var e = await Assert.ThrowsAsync<KeeperException>(() => zk.GetDataAsync("/x"));
        Assert.Equal(Code.ConnectionLoss, e.Code);
        await zk.WaitConnectedAsync();
        e = await Assert.ThrowsAsync<KeeperException>(() => zk.GetDataAsync("/x"));
        Assert.Equal(Code.NoNode, e.Code);
        Assert.Equal("/x", e.Path);
    }

    [Fact]
    public async Task A_zero_timeout_in_the_connect_response_is_session_expiry()
    {
        FakeServer? server = null;
        server = new FakeServer(async (s, _) => await server!.HandshakeAsync(s, timeout: 0));
        await using var _ = server;
        var states = new List<KeeperState>();
        // the default watcher is in place before the client starts connecting
        var zk = new KeeperClient(server.Address, new KeeperClientOptions { DefaultWatcher = e => { lock (states) states.Add(e.State); } });
        var e = await Assert.ThrowsAsync<KeeperException>(() => zk.WaitConnectedAsync(new CancellationTokenSource(10000).Token));
        Assert.Equal(Code.SessionExpired, e.Code);
        Assert.Equal(KeeperState.Expired, zk.State);
        await zk.DisposeAsync();
        lock (states) Assert.Equal(new[] { KeeperState.Expired }, states);
    }

    [Fact]
    public async Task Watches_are_re_registered_with_SetWatches_then_SetWatches2_once_persistent_ones_exist()
    {
        // The scripted server answers reads, drops the connection when asked to sync, and
        // reports every SetWatches / SetWatches2 it receives.
        var setWatches = Channel.CreateUnbounded<(int Type, IJuteRecord Body)>();
        long zxid = 40;
        FakeServer? server = null;
        server = new FakeServer(async (s, _) =>
        {
            await server!.HandshakeAsync(s);
            while (true)
            {
                var frame = await FakeServer.ReadFrameAsync(s);
                var r = new JuteReader(frame);
                var h = RequestHeader.Read(ref r);
                var reply = new ReplyHeader { Xid = h.Xid, Zxid = Interlocked.Increment(ref zxid), Err = 0 };
                switch (h.Type)
                {
                    case 9: return; // sync: close the connection
                    case 101: setWatches.Writer.TryWrite((101, SetWatches.Read(ref r))); reply.Zxid = 0; await FakeServer.WriteFrameAsync(s, reply); break;
                    case 105: setWatches.Writer.TryWrite((105, SetWatches2.Read(ref r))); reply.Zxid = 0; await FakeServer.WriteFrameAsync(s, reply); break;
                    case 3: reply.Err = -101; await FakeServer.WriteFrameAsync(s, reply); break;
                    case 4: await FakeServer.WriteFrameAsync(s, reply, new GetDataResponse { Data = new byte[1], Stat = new Stat() }); break;
                    case 8: await FakeServer.WriteFrameAsync(s, reply, new GetChildrenResponse { Children = new List<string>() }); break;
                    default: await FakeServer.WriteFrameAsync(s, reply); break;
                }
            }
        });
        await using var _ = server;
        await using var zk = await KeeperClient.ConnectAsync(server.Address + "/root");
        var w = new Watcher(_ => { });
        Assert.Null(await zk.ExistsAsync("/a", w));
        await zk.GetDataAsync("/b", w);
        await zk.GetChildrenAsync("/c", w);
        long seen = zk.LastZxid;
        Assert.Equal(43, seen);
        await Assert.ThrowsAsync<KeeperException>(() => zk.SyncAsync("/"));

        var (type, body) = await Next(setWatches);
        Assert.Equal(101, type);  // only one-time watches: the old SetWatches, as upstream's client
        var sw = Assert.IsType<SetWatches>(body);
        Assert.Equal(seen, sw.RelativeZxid);
        Assert.Equal(new[] { "/root/b" }, sw.DataWatches!);
        Assert.Equal(new[] { "/root/a" }, sw.ExistWatches!);
        Assert.Equal(new[] { "/root/c" }, sw.ChildWatches!);

        await zk.WaitConnectedAsync();
        await zk.AddWatchAsync("/d", AddWatchMode.PersistentRecursive, w);
        await zk.AddWatchAsync("/e", AddWatchMode.Persistent, w);
        seen = zk.LastZxid;
        await Assert.ThrowsAsync<KeeperException>(() => zk.SyncAsync("/"));
        (type, body) = await Next(setWatches);
        Assert.Equal(105, type);
        var sw2 = Assert.IsType<SetWatches2>(body);
        Assert.Equal(seen, sw2.RelativeZxid);
        Assert.Equal(new[] { "/root/b" }, sw2.DataWatches!);
        Assert.Equal(new[] { "/root/e" }, sw2.PersistentWatches!);
        Assert.Equal(new[] { "/root/d" }, sw2.PersistentRecursiveWatches!);
    }

    [Fact]
    public async Task A_truncated_answer_body_fails_that_request_only()
    {
        FakeServer? server = null;
        server = new FakeServer(async (s, _) =>
        {
            await server!.HandshakeAsync(s);
            while (true)
            {
                var h = FakeServer.ReadHeader(await FakeServer.ReadFrameAsync(s));
                if (h.Type == 4) // getData: a data length that runs past the frame
                    await FakeServer.WriteFrameAsync(s, new ReplyHeader { Xid = h.Xid, Zxid = 1, Err = 0 }, new GetDataResponse { Data = new byte[8], Stat = new Stat() }.Truncated(20));
                else
                    await FakeServer.WriteFrameAsync(s, new ReplyHeader { Xid = h.Xid, Zxid = 2, Err = 0 }, new ExistsResponse { Stat = new Stat { NumChildren = 9 } });
            }
        });
        await using var _ = server;
        await using var zk = await KeeperClient.ConnectAsync(server.Address);
        var e = await Assert.ThrowsAsync<KeeperException>(() => zk.GetDataAsync("/x"));
        Assert.Equal(Code.MarshallingError, e.Code);
        Assert.Equal(9, (await zk.ExistsAsync("/x"))!.NumChildren);
    }
}

internal static class RecordTestExtensions
{
    /// <summary>The record's bytes cut to <paramref name="length"/>, as a raw record.</summary>
    public static IJuteRecord Truncated(this IJuteRecord r, int length) => new Raw(r.ToBytes().AsSpan(0, length).ToArray());

    private sealed class Raw(byte[] bytes) : IJuteRecord
    {
        public void Write(ref JuteWriter writer) => writer.WriteRaw(bytes);
        public int Size() => bytes.Length;
    }
}
