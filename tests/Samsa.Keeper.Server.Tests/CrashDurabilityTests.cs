using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Samsa.Keeper.Protocol;
using Samsa.Keeper.Protocol.Records;
using Xunit;

namespace Samsa.Keeper.Server.Tests;

/// <summary>
/// Crash durability of a standalone `samsa keeper --config zoo.cfg` process: every write whose
/// reply a client received must survive a kill -9 of the server and a restart on the same dataDir.
/// Two crashes: one mid-load (8 sessions with thousands of creates/setData queued, snapshots
/// rolling with snapCount=1000), one right after a quiet session's last acknowledged create.
///
/// What this can catch: the Keeper appends a batch's txns to version-2/log.* through a buffered
/// FileStream and must flush (and, with forceSync, fsync) before releasing the batch's replies,
/// as upstream's SyncRequestProcessor does before FinalRequestProcessor answers. If replies went
/// out before that flush, acknowledged txns would still sit in the process's buffer when SIGKILL
/// arrives. Checked by removing the per-batch TxnLogWriter.Commit() from KeeperServer's loop: the
/// second crash then lost the acknowledged /quiet-* znodes (NoNode after restart) and the test
/// failed; the mid-load crash alone did not notice, because the replies to the newest txns were
/// still in socket buffers when the kill reset the connections. It also fails when recovery
/// drops or misreads a valid log tail, or when a snapshot taken mid-load loses txns.
/// What it cannot catch: a missing fsync alone. The kernel's page cache survives the death of a
/// process, so only a power cut or kernel crash would show that; the fsync itself rests on
/// TxnLogWriter.Commit → FileStream.Flush(forceSync), not on this test.
/// </summary>
public sealed class CrashDurabilityTests : IDisposable
{
    private const int Sessions = 8;
    private const int NodesPerSession = 2000;
    private const int SetsPerNode = 2;   // each znode: create (version 0), then setData to versions 1..2
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "keeper-crash-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    /// <summary>The bytes a znode holds at a given version: known for versions never acknowledged
    /// too, so a write that was applied but whose reply was cut off by the kill still checks out.</summary>
    private static byte[] DataFor(string path, int version)
    {
        var text = $"{path}@{version}|";
        var b = new byte[256];
        for (int i = 0; i < b.Length; i++) b[i] = (byte)text[i % text.Length];
        return b;
    }

    [Fact]
    public async Task Acknowledged_writes_survive_kill_minus_9_of_the_keeper_process()
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(55));
        Directory.CreateDirectory(Path.Combine(_dir, "data"));
        string cfg = Path.Combine(_dir, "zoo.cfg");
        File.WriteAllText(cfg, string.Join('\n',
            "tickTime=2000",
            "dataDir=" + Path.Combine(_dir, "data"),
            "clientPort=0",
            "clientPortAddress=127.0.0.1",
            "admin.enableServer=false",
            "forceSync=yes",
            "snapCount=1000",
            ""));

        // path -> highest version whose reply was received (0 = the create)
        var acked = new ConcurrentDictionary<string, int>();
        long sent = 0, answered = 0;
        var ended = new ConcurrentBag<string>();
        using (var server = await StartKeeperAsync(cfg, deadline.Token))
        {
            // Each session writes all its requests at once, so the server, not this (possibly
            // CPU-starved) test process, sets the pace and a backlog is queued at the server
            // when the kill lands.
            var loads = Enumerable.Range(0, Sessions).Select(s => Task.Run(async () =>
            {
                await using var session = await WireSession.ConnectAsync(server.Port, deadline.Token);
                var requests = new List<(int Type, IJuteRecord Body)>();
                var targets = new List<(string Path, int Version)>();
                for (int n = 0; n < NodesPerSession; n++)
                {
                    string path = $"/s{s}-n{n}";
                    requests.Add((OpCode.Create, new CreateRequest { Path = path, Data = DataFor(path, 0), Acl = TestClient.OpenAcl, Flags = 0 }));
                    targets.Add((path, 0));
                    for (int v = 1; v <= SetsPerNode; v++)
                    {
                        requests.Add((OpCode.SetData, new SetDataRequest { Path = path, Data = DataFor(path, v), Version = v - 1 }));
                        targets.Add((path, v));
                    }
                }
                var replies = session.SendAll(requests);
                Interlocked.Add(ref sent, requests.Count);
                for (int i = 0; i < replies.Count; i++)
                {
                    ReplyHeader hdr;
                    try { hdr = (await replies[i]).Header; }
                    catch (IOException e)
                    {
                        // the kill cut the connection: the rest of this session's requests are unanswered
                        ended.Add($"session {s}: {i} of {replies.Count} answered, then {e.Message}");
                        return;
                    }
                    // an error reply (NodeExists, BadVersion) would mean the load itself is wrong
                    Assert.Equal(0, hdr.Err);
                    acked.AddOrUpdate(targets[i].Path, targets[i].Version, (_, old) => Math.Max(old, targets[i].Version));
                    Interlocked.Increment(ref answered);
                }
                ended.Add($"session {s}: all {replies.Count} answered");
            })).ToList();

            // kill once 4000 of the 48000 writes are answered: by then snapshots have rolled
            // (snapCount=1000) and the log holds thousands of txns, with most still queued (even
            // a server that skipped fsync entirely could not drain the backlog between two polls)
            var sw = Stopwatch.StartNew();
            while (Interlocked.Read(ref answered) < 4000 && sw.Elapsed < TimeSpan.FromSeconds(25))
            {
                if (loads.Any(l => l.IsFaulted)) await Task.WhenAll(loads);
                await Task.Delay(5, deadline.Token);
            }
            server.Kill(); // SIGKILL mid-load
            await Task.WhenAll(loads).WaitAsync(deadline.Token);
        }
        long ackCount = acked.Values.Sum(v => (long)v + 1);
        Assert.True(acked.Count >= 500, $"only {acked.Count} znodes acknowledged before the kill: the load did not run");
        Assert.True(sent > ackCount, $"all {sent} requests ({ackCount} acked) were answered before the kill: it did not land mid-load:\n" + string.Join('\n', ended));

        var quiet = new ConcurrentDictionary<string, int>();
        using (var server = await StartKeeperAsync(cfg, deadline.Token))
        {
            await VerifyAsync(server.Port, acked, $"after kill -9 mid-load ({sent} writes sent, {ackCount} acknowledged)", deadline.Token);

            // Second crash, with the server idle: one session writes and waits for each reply,
            // and the kill comes right after the last one. Under load, the replies to the newest
            // txns are usually still in socket buffers when the kill resets the connections, so
            // the load above rarely observes an ack for a txn the server had not yet flushed.
            // Here nothing else is being written, so a server that answered before flushing
            // would still hold the last txns in its buffer, and they would be lost.
            await using (var writer = await WireSession.ConnectAsync(server.Port, deadline.Token))
            {
                for (int i = 0; i < 50; i++)
                {
                    string path = $"/quiet-{i}";
                    var (hdr, _) = await writer.Send(OpCode.Create, new CreateRequest { Path = path, Data = DataFor(path, 0), Acl = TestClient.OpenAcl, Flags = 0 }).WaitAsync(deadline.Token);
                    Assert.Equal(0, hdr.Err);
                    quiet[path] = 0;
                }
                server.Kill();
            }
        }
        using (var server = await StartKeeperAsync(cfg, deadline.Token))
            await VerifyAsync(server.Port, quiet, "after kill -9 right after the last reply", deadline.Token);
    }

    /// <summary>Every acknowledged znode exists, at the acknowledged version or a later one, with
    /// the data written at that version.</summary>
    private static async Task VerifyAsync(int port, ConcurrentDictionary<string, int> acked, string what, CancellationToken ct)
    {
        await using var check = await WireSession.ConnectAsync(port, ct);
        var reads = acked.Select(kv => (Path: kv.Key, Acked: kv.Value, Reply: check.Send(OpCode.GetData, new GetDataRequest { Path = kv.Key, Watch = false }))).ToList();
        var missing = new List<string>();
        foreach (var (path, ackedVersion, reply) in reads)
        {
            var (hdr, body) = await reply.WaitAsync(ct);
            if (hdr.Err != 0) { missing.Add($"{path} (acknowledged version {ackedVersion}): error {hdr.Err}"); continue; }
            var r = new JuteReader(body);
            var got = GetDataResponse.Read(ref r);
            // a later, unacknowledged setData may have been logged before the kill; anything
            // older than the acknowledged version is a lost write
            if (got.Stat.Version < ackedVersion)
                missing.Add($"{path}: version {got.Stat.Version} after restart, {ackedVersion} acknowledged");
            else if (!got.Data.AsSpan().SequenceEqual(DataFor(path, got.Stat.Version)))
                missing.Add($"{path}: data at version {got.Stat.Version} is not what was written");
        }
        Assert.True(missing.Count == 0, $"{missing.Count} of {acked.Count} acknowledged znodes lost or wrong {what}:\n" + string.Join('\n', missing.Take(20)));
    }

    private static async Task<KeeperProcess> StartKeeperAsync(string cfg, CancellationToken ct)
    {
        var psi = new ProcessStartInfo(Samsa.Testing.TestEnvironment.SamsaExecutable()) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("keeper");
        psi.ArgumentList.Add("--config");
        psi.ArgumentList.Add(cfg);
        var p = Process.Start(psi)!;
        var stderr = new StringBuilder();
        p.ErrorDataReceived += (_, e) => { lock (stderr) stderr.AppendLine(e.Data); };
        p.BeginErrorReadLine();
        var kp = new KeeperProcess(p);
        try
        {
            while (true)
            {
                var line = await p.StandardOutput.ReadLineAsync(ct);
                if (line is null)
                {
                    await p.WaitForExitAsync(ct);
                    lock (stderr) Assert.Fail($"samsa keeper exited with {p.ExitCode} before listening: {stderr}");
                }
                const string prefix = "keeper listening on ";
                if (line!.StartsWith(prefix, StringComparison.Ordinal))
                {
                    kp.Port = int.Parse(line[(line.LastIndexOf(':') + 1)..]);
                    return kp;
                }
            }
        }
        catch
        {
            kp.Dispose();
            throw;
        }
    }

    private sealed class KeeperProcess(Process process) : IDisposable
    {
        public int Port { get; set; }

        /// <summary>Process.Kill sends SIGKILL on Linux: no handler, no flush, no shutdown path.</summary>
        public void Kill()
        {
            try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            process.WaitForExit();
        }

        public void Dispose()
        {
            Kill();
            process.Dispose();
        }
    }

    /// <summary>One ZooKeeper session over a real socket, pipelined: requests are written in order
    /// and the server answers a session's requests in order, so replies complete them FIFO.</summary>
    private sealed class WireSession : IAsyncDisposable
    {
        private readonly TcpClient _tcp;
        private readonly NetworkStream _stream;
        private readonly ConcurrentQueue<(int Xid, TaskCompletionSource<(ReplyHeader Header, byte[] Body)> Tcs)> _pending = new();
        private readonly object _writeGate = new();
        private readonly Task _reader;
        private int _xid;
        private volatile Exception? _failed;

        private WireSession(TcpClient tcp)
        {
            _tcp = tcp;
            _stream = tcp.GetStream();
            _reader = Task.Run(ReadLoopAsync);
        }

        public static async Task<WireSession> ConnectAsync(int port, CancellationToken ct)
        {
            var tcp = new TcpClient { NoDelay = true };
            await tcp.ConnectAsync("127.0.0.1", port, ct);
            var s = tcp.GetStream();
            var req = new ConnectRequest { TimeOut = 30000, Passwd = new byte[16] }.ToBytes();
            await WriteFrameAsync(s, req, ct);
            var rsp = await ReadFrameAsync(s, ct);
            var r = new JuteReader(rsp);
            Assert.True(ConnectResponse.Read(ref r).TimeOut > 0, "session refused");
            return new WireSession(tcp);
        }

        /// <summary>Queues every request in one write and returns their replies, in order.</summary>
        public List<Task<(ReplyHeader Header, byte[] Body)>> SendAll(List<(int Type, IJuteRecord Body)> requests)
        {
            var tasks = new List<Task<(ReplyHeader Header, byte[] Body)>>(requests.Count);
            var buffer = new MemoryStream();
            lock (_writeGate)
            {
                if (_failed is not null) throw _failed;
                foreach (var (type, body) in requests)
                {
                    var tcs = new TaskCompletionSource<(ReplyHeader, byte[])>(TaskCreationOptions.RunContinuationsAsynchronously);
                    int xid = ++_xid;
                    var hdr = new RequestHeader { Xid = xid, Type = type };
                    var frame = new byte[4 + hdr.Size() + body.Size()];
                    BinaryPrimitives.WriteInt32BigEndian(frame, frame.Length - 4);
                    var w = new JuteWriter(frame.AsSpan(4));
                    hdr.Write(ref w);
                    body.Write(ref w);
                    buffer.Write(frame);
                    _pending.Enqueue((xid, tcs));
                    tasks.Add(tcs.Task);
                }
            }
            // written in the background: the server reads it as fast as it works through it
            _ = Task.Run(async () =>
            {
                try { await _stream.WriteAsync(buffer.GetBuffer().AsMemory(0, (int)buffer.Length)); }
                catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException) { Fail(e); }
            });
            return tasks;
        }

        public Task<(ReplyHeader Header, byte[] Body)> Send(int type, IJuteRecord body)
        {
            var tcs = new TaskCompletionSource<(ReplyHeader, byte[])>(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_writeGate)
            {
                // after the connection is gone, the load loop stops at once instead of spinning
                if (_failed is not null) throw _failed;
                int xid = ++_xid;
                var hdr = new RequestHeader { Xid = xid, Type = type };
                var frame = new byte[4 + hdr.Size() + body.Size()];
                BinaryPrimitives.WriteInt32BigEndian(frame, frame.Length - 4);
                var w = new JuteWriter(frame.AsSpan(4));
                hdr.Write(ref w);
                body.Write(ref w);
                _pending.Enqueue((xid, tcs));
                try { _stream.Write(frame); }
                catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException) { Fail(e); throw _failed!; }
            }
            return tcs.Task;
        }

        private async Task ReadLoopAsync()
        {
            try
            {
                while (true)
                {
                    var frame = await ReadFrameAsync(_stream, CancellationToken.None);
                    var r = new JuteReader(frame);
                    var hdr = ReplyHeader.Read(ref r);
                    if (hdr.Xid == Xid.Notification || hdr.Xid == Xid.Ping) continue;
                    if (!_pending.TryDequeue(out var p) || p.Xid != hdr.Xid)
                        throw new IOException($"reply xid {hdr.Xid} out of order (expected {p.Xid})");
                    p.Tcs.SetResult((hdr, frame.AsSpan(r.Position).ToArray()));
                }
            }
            catch (Exception e) { Fail(e is IOException or SocketException or ObjectDisposedException ? e : new IOException("session read failed", e)); }
        }

        private void Fail(Exception e)
        {
            lock (_writeGate)
            {
                _failed ??= e as IOException ?? new IOException("connection lost", e);
                while (_pending.TryDequeue(out var p)) p.Tcs.TrySetException(_failed);
            }
        }

        private static async Task WriteFrameAsync(Stream s, byte[] payload, CancellationToken ct)
        {
            var buf = new byte[4 + payload.Length];
            BinaryPrimitives.WriteInt32BigEndian(buf, payload.Length);
            payload.CopyTo(buf, 4);
            await s.WriteAsync(buf, ct);
        }

        private static async Task<byte[]> ReadFrameAsync(Stream s, CancellationToken ct)
        {
            var len = new byte[4];
            await s.ReadExactlyAsync(len, ct);
            int n = BinaryPrimitives.ReadInt32BigEndian(len);
            if (n < 0 || n > 4 * 1024 * 1024) throw new IOException("bad frame length " + n);
            var body = new byte[n];
            await s.ReadExactlyAsync(body, ct);
            return body;
        }

        public async ValueTask DisposeAsync()
        {
            _tcp.Dispose();
            try { await _reader; } catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException) { }
        }
    }
}
