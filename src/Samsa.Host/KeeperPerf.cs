using System.Buffers.Binary;
using System.Diagnostics;
using System.Net.Sockets;
using Samsa.Keeper.Protocol;
using Samsa.Keeper.Protocol.Records;

namespace Samsa.Host;

/// <summary>A ZooKeeper load generator (`samsa perf keeper`): C connections, each pipelining up to
/// W requests (W = 1: one at a time), run phases over N znodes against any ZooKeeper-protocol
/// server (the Keeper or Apache ZooKeeper) and report throughput and latency. Phases, in order
/// (--ops picks a subset; create runs first whenever a later phase needs the znodes):
/// create; exists with watch = true (a data watch on every znode, which the setData phase then
/// fires, so setData also pays for the notifications); getData; setData; multi (one transaction of
/// a version check and a setData on the same znode, OpCode 14); delete.
/// Usage: --target HOST:PORT [--sessions 8] [--requests 20000] [--inflight 64] [--size 100]
/// [--ops create,exists,getData,setData,multi,delete] (--connections is the same as --sessions:
/// one session per connection). Each phase prints one line
/// `NAME OPS ops/s p50 MS ms p99 MS ms errors N`; the exit code is 1 when any request failed.</summary>
public static class KeeperPerf
{
    public static async Task<int> RunAsync(string[] args)
    {
        try { return await RunCoreAsync(args); }
        catch (Exception e) when (e is SocketException or IOException)
        {
            Console.Error.WriteLine("samsa perf keeper: " + e.Message);
            return 1;
        }
    }

    private static async Task<int> RunCoreAsync(string[] args)
    {
        string target = "127.0.0.1:2181";
        int connections = 8, requests = 20000, inflight = 64, size = 100;
        string ops = "create,exists,getData,setData,multi,delete";
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            switch (args[i])
            {
                case "--target": target = args[i + 1]; break;
                case "--connections" or "--sessions": connections = int.Parse(args[i + 1]); break;
                case "--requests": requests = int.Parse(args[i + 1]); break;
                case "--inflight": inflight = int.Parse(args[i + 1]); break;
                case "--size": size = int.Parse(args[i + 1]); break;
                case "--ops": ops = args[i + 1]; break;
                default: Console.Error.WriteLine("unknown option " + args[i]); return 2;
            }
        }
        int colon = target.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(target[(colon + 1)..], out int port) || connections <= 0 || requests <= 0 || inflight <= 0 || size < 0)
        {
            Console.Error.WriteLine("usage: samsa perf keeper --target HOST:PORT [--sessions N] [--requests N] [--inflight N] [--size BYTES] [--ops LIST]");
            return 2;
        }
        var phases = new HashSet<string>(ops.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries), StringComparer.Ordinal);
        string[] known = ["create", "exists", "getData", "setData", "multi", "delete"];
        if (phases.Count == 0 || phases.Any(p => !known.Contains(p)))
        {
            Console.Error.WriteLine("samsa perf keeper: --ops takes a comma-separated subset of " + string.Join(",", known));
            return 2;
        }
        string host = target[..colon];
        int totalErrors = 0;
        string root = "/samsa-perf-" + Guid.NewGuid().ToString("N")[..8];
        var clients = new List<PerfConnection>();
        for (int c = 0; c < connections; c++) clients.Add(await PerfConnection.OpenAsync(host, port));
        var acl = new List<ACL> { new() { Perms = 31, Id = new Id { Scheme = "world", IdValue = "anyone" } } };
        await clients[0].CallAsync(1, new CreateRequest { Path = root, Data = Array.Empty<byte>(), Acl = acl, Flags = 0 });
        var payload = new byte[size];
        Console.WriteLine($"target {target}: {connections} connections, {requests} znodes of {size} bytes, {inflight} in flight per connection");
        // every phase but create works on the znodes create makes, and delete empties the root
        bool needNodes = phases.Any(p => p != "create");
        await Phase("create", i => (OpCode.Create, new CreateRequest { Path = $"{root}/n{i}", Data = payload, Acl = acl, Flags = 0 }), report: phases.Contains("create") || !needNodes);
        if (phases.Contains("exists")) await Phase("exists", i => (OpCode.Exists, new ExistsRequest { Path = $"{root}/n{i}", Watch = true }));
        if (phases.Contains("getData")) await Phase("getData", i => (OpCode.GetData, new GetDataRequest { Path = $"{root}/n{i}", Watch = false }));
        if (phases.Contains("setData")) await Phase("setData", i => (OpCode.SetData, new SetDataRequest { Path = $"{root}/n{i}", Data = payload, Version = -1 }));
        if (phases.Contains("multi"))
            await Phase("multi", i => (OpCode.Multi, new PerfMulti([
                (OpCode.Check, new CheckVersionRequest { Path = $"{root}/n{i}", Version = -1 }),
                (OpCode.SetData, new SetDataRequest { Path = $"{root}/n{i}", Data = payload, Version = -1 })])));
        await Phase("delete", i => (OpCode.Delete, new DeleteRequest { Path = $"{root}/n{i}", Version = -1 }), report: phases.Contains("delete") || !needNodes);
        await clients[0].CallAsync(OpCode.Delete, new DeleteRequest { Path = root, Version = -1 });
        foreach (var c in clients) c.Dispose();
        return totalErrors == 0 ? 0 : 1;

        async Task Phase(string name, Func<int, (int Type, IJuteRecord Req)> make, bool report = true)
        {
            var latencies = new List<double>[connections];
            var sw = Stopwatch.StartNew();
            int errors = 0;
            await Task.WhenAll(Enumerable.Range(0, connections).Select(async c =>
            {
                var mine = Enumerable.Range(0, requests).Where(i => i % connections == c).ToList();
                var (lat, errs) = await clients[c].PipelineAsync(mine.Select(make), inflight);
                latencies[c] = lat;
                Interlocked.Add(ref errors, errs);
            }));
            sw.Stop();
            totalErrors += errors;
            if (!report) return;
            var all = latencies.SelectMany(l => l).OrderBy(x => x).ToList();
            double P(double q) => all.Count == 0 ? 0 : all[Math.Min(all.Count - 1, (int)(q * all.Count))];
            Console.WriteLine($"{name,-8} {requests / sw.Elapsed.TotalSeconds,10:F0} ops/s   p50 {P(0.5),7:F2} ms   p99 {P(0.99),7:F2} ms   errors {errors}");
        }
    }

    /// <summary>A multi request's body: each op behind MultiHeader(type, done = false, err = -1),
    /// closed by MultiHeader(-1, true, -1), as upstream's MultiOperationRecord serializes it.</summary>
    private sealed class PerfMulti(List<(int Type, IJuteRecord Req)> ops) : IJuteRecord
    {
        public void Write(ref JuteWriter writer)
        {
            foreach (var (type, req) in ops)
            {
                new MultiHeader { Type = type, Done = false, Err = -1 }.Write(ref writer);
                req.Write(ref writer);
            }
            new MultiHeader { Type = -1, Done = true, Err = -1 }.Write(ref writer);
        }

        public int Size()
        {
            int n = 9;
            foreach (var (_, req) in ops) n += 9 + req.Size();
            return n;
        }
    }

    private sealed class PerfConnection : IDisposable
    {
        private readonly TcpClient _tcp;
        private readonly NetworkStream _stream;
        private int _xid;

        private PerfConnection(TcpClient tcp) { _tcp = tcp; _stream = tcp.GetStream(); }

        public static async Task<PerfConnection> OpenAsync(string host, int port)
        {
            var tcp = new TcpClient { NoDelay = true };
            await tcp.ConnectAsync(host, port);
            var c = new PerfConnection(tcp);
            await c.WriteFrameAsync(new ConnectRequest { TimeOut = 30000, Passwd = new byte[16] }.ToBytes());
            await c.ReadFrameAsync();
            return c;
        }

        private async Task WriteFrameAsync(byte[] payload)
        {
            var buf = new byte[4 + payload.Length];
            BinaryPrimitives.WriteInt32BigEndian(buf, payload.Length);
            payload.CopyTo(buf, 4);
            await _stream.WriteAsync(buf);
        }

        private async Task<byte[]> ReadFrameAsync()
        {
            var len = new byte[4];
            await _stream.ReadExactlyAsync(len);
            int n = BinaryPrimitives.ReadInt32BigEndian(len);
            if (n < 0 || n > 64 * 1024 * 1024) throw new IOException("bad frame length " + n);
            var body = new byte[n];
            await _stream.ReadExactlyAsync(body);
            return body;
        }

        private byte[] Request(int xid, int type, IJuteRecord req)
        {
            var h = new RequestHeader { Xid = xid, Type = type };
            var bytes = new byte[h.Size() + req.Size()];
            var w = new JuteWriter(bytes);
            h.Write(ref w);
            req.Write(ref w);
            return bytes;
        }

        public async Task CallAsync(int type, IJuteRecord req)
        {
            await WriteFrameAsync(Request(++_xid, type, req));
            await ReadFrameAsync();
        }

        /// <summary>Sends requests keeping at most <paramref name="window"/> unanswered; replies come
        /// back in order on one connection, so latency is matched by sequence.</summary>
        public async Task<(List<double> Latencies, int Errors)> PipelineAsync(IEnumerable<(int Type, IJuteRecord Req)> reqs, int window)
        {
            var list = reqs.ToList();
            var sent = new long[list.Count];
            var lat = new List<double>(list.Count);
            int errors = 0;
            var slots = new SemaphoreSlim(window);
            var reader = Task.Run(async () =>
            {
                for (int i = 0; i < list.Count; i++)
                {
                    byte[] f;
                    do
                    {
                        f = await ReadFrameAsync();
                    } while (BinaryPrimitives.ReadInt32BigEndian(f) == -1); // skip watch events
                    if (BinaryPrimitives.ReadInt32BigEndian(f.AsSpan(12)) != 0) errors++;
                    lat.Add(Stopwatch.GetElapsedTime(sent[i]).TotalMilliseconds);
                    slots.Release();
                }
            });
            for (int i = 0; i < list.Count; i++)
            {
                await slots.WaitAsync();
                sent[i] = Stopwatch.GetTimestamp();
                await WriteFrameAsync(Request(++_xid, list[i].Type, list[i].Req));
            }
            await reader;
            return (lat, errors);
        }

        public void Dispose() => _tcp.Dispose();
    }
}
