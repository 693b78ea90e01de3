using System.Buffers.Binary;
using System.Text;
using System.Text.RegularExpressions;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Compression;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Primitives;
using Samsa.Kafka.Protocol.Records;

namespace Samsa.Fuzz;

/// <summary>
/// Writes the seed files of the corpus (`seeds` command; the output is checked in). Kafka seeds are
/// the request bodies real clients sent — the golden vectors of tests/Samsa.Kafka.Protocol.Tests,
/// captured from librdkafka 2.0.2, kafkajs and kafka-python 2.0.2 — given a request header, and the
/// record batches those clients wrote (Golden/*.bin). ZooKeeper seeds are small conversations in
/// the shape zkCli.sh and kazoo send, written here field by field. Inputs that once crashed a
/// target are added by hand as regress-*.bin and never regenerated.
/// </summary>
public static class Seeds
{
    public static void Write(string corpus)
    {
        string golden = Path.GetFullPath(Path.Combine(Smoke.SourceDir(), "..", "Samsa.Kafka.Protocol.Tests"));
        var requests = GoldenRequests(golden).ToList();
        foreach (var target in new[] { "kafka-request", "kafka-handler" })
        {
            string dir = Prepare(corpus, target);
            foreach (var (name, frame) in requests) File.WriteAllBytes(Path.Combine(dir, name + ".bin"), frame);
        }

        string pv = Prepare(corpus, "produce-validator");
        foreach (var file in Directory.GetFiles(Path.Combine(golden, "Golden"), "*.bin").Order(StringComparer.Ordinal))
        {
            string name = Path.GetFileNameWithoutExtension(file);
            byte[] records = File.ReadAllBytes(file);
            // config index (25 configs) + 25 × produce version; legacy message sets as produce v2.
            int version = name.Contains("magic0") || name.Contains("magic1") || name.StartsWith("messageset") ? 2 : 7;
            for (int c = 0; c < 25; c += 6)
                File.WriteAllBytes(Path.Combine(pv, $"{name}-c{c}.bin"), [(byte)(c + 25 * version), .. records]);
        }

        string dc = Prepare(corpus, "decompress");
        byte[] text = Encoding.UTF8.GetBytes(string.Concat(Enumerable.Range(0, 40).Select(i => $"{{\"id\":{i},\"name\":\"record-{i}\"}}\n")));
        foreach (var (type, code) in new[] { (CompressionType.Gzip, 0), (CompressionType.Snappy, 1), (CompressionType.Lz4, 2), (CompressionType.Zstd, 3) })
        {
            using var output = new PooledBuffer(4096);
            CompressionCodecs.Compress(type, text, output);
            File.WriteAllBytes(Path.Combine(dc, $"{type.ToString().ToLowerInvariant()}.bin"), [(byte)code, .. output.WrittenSpan]);
        }
        File.WriteAllBytes(Path.Combine(dc, "zstd-bigwindow.bin"), [3, .. File.ReadAllBytes(Path.Combine(golden, "Golden", "bigwindow.zstd"))]);

        string jr = Prepare(corpus, "jute-request");
        foreach (var (name, frame) in JuteRequests()) File.WriteAllBytes(Path.Combine(jr, name + ".bin"), frame);
        File.WriteAllBytes(Path.Combine(jr, "connect.bin"), [0xC0, .. Connect()]);

        string ks = Prepare(corpus, "keeper-server");
        foreach (var (name, frames) in Conversations())
        {
            var bytes = new List<byte>();
            foreach (var f in frames)
            {
                bytes.Add((byte)(f.Length >> 8));
                bytes.Add((byte)f.Length);
                bytes.AddRange(f);
            }
            File.WriteAllBytes(Path.Combine(ks, name + ".bin"), bytes.ToArray());
        }

        string sr = Prepare(corpus, "segment-recovery");
        foreach (var (name, input) in SegmentRecoverySeeds()) File.WriteAllBytes(Path.Combine(sr, name + ".bin"), input);
        string tr = Prepare(corpus, "txnlog-recovery");
        foreach (var (name, input) in TxnLogRecoverySeeds()) File.WriteAllBytes(Path.Combine(tr, name + ".bin"), input);
    }

    private static string Prepare(string corpus, string target)
    {
        string dir = Path.Combine(corpus, target);
        Directory.CreateDirectory(dir);
        foreach (var f in Directory.GetFiles(dir).Where(f => !Path.GetFileName(f).StartsWith("regress-")))
            File.Delete(f);
        return dir;
    }

    // ------------------------------------------------------------------ recoveries

    /// <summary>segment-recovery: each replaceable file of a log the storage layer wrote (byte 0 the
    /// mode), as written, and a few damaged the ways a crash damages them.</summary>
    private static IEnumerable<(string, byte[])> SegmentRecoverySeeds()
    {
        var files = RecoveryTargets.BaseLog;
        byte[] Of(RecoveryTargets.SegmentMode m) => files[RecoveryTargets.SegmentModeFile(m)];
        foreach (var mode in Enum.GetValues<RecoveryTargets.SegmentMode>())
        {
            byte[] file = Of(mode);
            // Preallocated index files are mostly zeros: keep the written entries and some of the zero tail.
            if (file.Length > 1024 && !RecoveryTargets.SegmentModeFile(mode).EndsWith(".log", StringComparison.Ordinal))
                file = file[..Math.Max(1024, file.Length - file.Reverse().TakeWhile(b => b == 0).Count() + 64)];
            yield return ($"{mode}", [(byte)mode, .. file]);
        }
        byte[] active = Of(RecoveryTargets.SegmentMode.ActiveLog);
        yield return ("ActiveLog-torn-tail", [(byte)RecoveryTargets.SegmentMode.ActiveLog, .. active, .. active[..40]]);
        byte[] first = (byte[])Of(RecoveryTargets.SegmentMode.FirstLogFullRecovery).Clone();
        first[first.Length / 2] ^= 0xFF;
        yield return ("FirstLog-bad-crc", [(byte)RecoveryTargets.SegmentMode.FirstLogFullRecovery, .. first]);
        yield return ("FirstLog-fixcrc", [(byte)(RecoveryTargets.SegmentMode.FirstLogFullRecovery) | RecoveryTargets.FixCrcFlag, .. first]);
        yield return ("MiddleLog-fixcrc", [(byte)(RecoveryTargets.SegmentMode.MiddleLogFullRecovery) | RecoveryTargets.FixCrcFlag, .. Of(RecoveryTargets.SegmentMode.MiddleLogFullRecovery)]);
        yield return ("ActiveLog-fixcrc", [(byte)(RecoveryTargets.SegmentMode.ActiveLog) | RecoveryTargets.FixCrcFlag, .. active]);
    }

    /// <summary>txnlog-recovery: a data directory the Keeper wrote (two starts with writes: snapshot.0,
    /// log.1, a second snapshot and its log), packed as the target reads it, whole and in parts.</summary>
    private static IEnumerable<(string, byte[])> TxnLogRecoverySeeds()
    {
        var files = KeeperDataDir();
        var snaps = files.Where(f => f.Snapshot).OrderBy(f => f.Zxid).ToList();
        var logs = files.Where(f => !f.Snapshot).OrderBy(f => f.Zxid).ToList();
        byte[] Pack(byte flags, params (bool Snapshot, int Zxid, byte[] Bytes)[] fs)
        {
            var b = new List<byte> { flags };
            foreach (var (snapshot, zxid, bytes) in fs)
                b.AddRange([snapshot ? (byte)0 : (byte)1, (byte)(zxid >> 8), (byte)zxid, (byte)(bytes.Length >> 8), (byte)bytes.Length, .. bytes]);
            return b.ToArray();
        }
        var all = snaps.Concat(logs).ToArray();
        yield return ("datadir", Pack(0, all));
        yield return ("datadir-fixchecksums", Pack(RecoveryTargets.FixChecksumsFlag, all));
        yield return ("newest-snapshot-and-log", Pack(0, snaps[^1], logs[^1]));
        yield return ("logs-only-trust-empty", Pack(RecoveryTargets.TrustEmptyFlag | RecoveryTargets.FixChecksumsFlag, logs.ToArray()));
        yield return ("snapshot-only", Pack(RecoveryTargets.FixChecksumsFlag, snaps[^1]));
        var torn = logs[^1] with { Bytes = logs[^1].Bytes[..^7] };
        yield return ("torn-log-recover-truncate", Pack(RecoveryTargets.RecoverTruncateFlag, snaps[0], logs[0], torn));
        var badCrc = logs[0] with { Bytes = (byte[])logs[0].Bytes.Clone() };
        badCrc.Bytes[badCrc.Bytes.Length / 2] ^= 0xFF;
        yield return ("bad-crc-log", Pack(0, snaps[0], badCrc));
        yield return ("bad-crc-log-recover-truncate", Pack(RecoveryTargets.RecoverTruncateFlag, snaps[0], badCrc, logs[^1]));
        var cutSnap = snaps[^1] with { Bytes = snaps[^1].Bytes[..^3] };
        yield return ("invalid-newest-snapshot-fallback", Pack(0, snaps[0], cutSnap, logs[0], logs[^1]));
    }

    /// <summary>Runs the Keeper twice on a fresh dataDir, each time with a session that creates,
    /// changes and deletes nodes (the frames of JuteRequests), and returns version-2's files (txn
    /// logs without their preallocated zeros).</summary>
    private static List<(bool Snapshot, int Zxid, byte[] Bytes)> KeeperDataDir()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"samsa-fuzz-keeper-seed-{Environment.ProcessId}");
        if (Directory.Exists(dir)) Directory.Delete(dir, true);
        var requests = JuteRequests().ToDictionary(r => r.Item1, r => r.Item2);
        long id = 0;
        try
        {
            foreach (var round in new[] { new[] { "create", "setdata", "create2-sequential", "multi", "setacl" }, new[] { "create-ttl", "delete", "create" } })
            {
                var server = new Samsa.Keeper.Server.KeeperServer(new Samsa.Keeper.Server.KeeperConfig
                {
                    DataDir = dir, ForceSync = false, PreAllocSizeKb = 4, ExtendedTypesEnabled = true,
                });
                server.Start();
                var conn = new Samsa.Keeper.Server.ServerConnection(server, ++id, null, _ => ValueTask.CompletedTask, () => { });
                server.RegisterConnection(conn);
                server.Enqueue(conn, Connect());
                foreach (var r in round) server.Enqueue(conn, requests[r]);
                server.Enqueue(conn, requests["close"]);
                server.RunOnLoopAsync(() => 0).Wait();
                server.ConnectionClosed(conn);
                server.RunOnLoopAsync(() => 0).Wait();
                server.DisposeAsync().AsTask().Wait();
            }
            var result = new List<(bool, int, byte[])>();
            foreach (string f in Directory.GetFiles(Path.Combine(dir, Samsa.Keeper.Server.ZkFiles.VersionDir)))
            {
                string name = Path.GetFileName(f);
                bool snapshot = name.StartsWith("snapshot.", StringComparison.Ordinal);
                int zxid = Convert.ToInt32(name[(name.IndexOf('.') + 1)..], 16);
                byte[] bytes = File.ReadAllBytes(f);
                if (!snapshot) bytes = bytes[..(bytes.Length - bytes.Reverse().TakeWhile(b => b == 0).Count())];
                result.Add((snapshot, zxid, bytes));
            }
            return result;
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    // ------------------------------------------------------------------ Kafka

    private static IEnumerable<(string Name, byte[] Frame)> GoldenRequests(string testsDir)
    {
        // ["ProduceRequest", ApiKey.Produce, (short)7, "hex"] in the librdkafka and kafkajs vectors.
        var tabled = new Regex(@"\[""(\w+)"", ApiKey\.(\w+), \(short\)(\d+), ""([0-9a-f]*)""\]");
        foreach (var (file, client) in new[] { ("LibrdkafkaGoldenTests.cs", "rdkafka"), ("KafkajsGoldenTests.cs", "kafkajs") })
            foreach (Match m in tabled.Matches(File.ReadAllText(Path.Combine(testsDir, file))))
            {
                var key = Enum.Parse<ApiKey>(m.Groups[2].Value);
                short version = short.Parse(m.Groups[3].Value);
                yield return ($"{client}-{m.Groups[1].Value}-v{version}", Frame(key, version, client, Convert.FromHexString(m.Groups[4].Value)));
            }
        // (key, "request", version, "Name_vN",\n "hex", in the kafka-python vectors.
        var python = new Regex(@"\((\d+), ""request"", (\d+), ""(\w+)"",\s*""([0-9a-f]*)""");
        foreach (Match m in python.Matches(File.ReadAllText(Path.Combine(testsDir, "KafkaPythonGoldenTests.cs"))))
        {
            var key = (ApiKey)short.Parse(m.Groups[1].Value);
            short version = short.Parse(m.Groups[2].Value);
            yield return ($"kafka-python-{m.Groups[3].Value}", Frame(key, version, "kafka-python", Convert.FromHexString(m.Groups[4].Value)));
        }
        // Topic ids in Metadata (v10-v12), the shapes issue 14 found.
        foreach (short v in new short[] { 10, 11, 12 })
            yield return ($"metadata-topic-id-v{v}", Frame(ApiKey.Metadata, v, "seed", Body(new MetadataRequest
            {
                Topics = [new() { Name = null, TopicId = Guid.Parse("6a1b2c3d-0000-4000-8000-000000000001") }, new() { Name = "t" }],
            }, v)));
    }

    private static byte[] Body(IKafkaMessage message, short version)
    {
        var buffer = new byte[message.Size(version)];
        var writer = new KafkaWriter(buffer);
        message.Write(ref writer, version);
        return buffer;
    }

    public static byte[] Frame(ApiKey key, short version, string clientId, byte[] body)
    {
        short headerVersion = ApiMessages.RequestHeaderVersion((short)key, version);
        var header = new RequestHeader { RequestApiKey = (short)key, RequestApiVersion = version, CorrelationId = 1, ClientId = clientId };
        return [.. Body(header, headerVersion), .. body];
    }

    // ------------------------------------------------------------------ ZooKeeper (jute)

    private sealed class Jute
    {
        private readonly List<byte> _bytes = [];
        public Jute Int(int v) { Span<byte> b = stackalloc byte[4]; BinaryPrimitives.WriteInt32BigEndian(b, v); _bytes.AddRange(b.ToArray()); return this; }
        public Jute Long(long v) { Span<byte> b = stackalloc byte[8]; BinaryPrimitives.WriteInt64BigEndian(b, v); _bytes.AddRange(b.ToArray()); return this; }
        public Jute Bool(bool v) { _bytes.Add(v ? (byte)1 : (byte)0); return this; }
        public Jute Str(string? s) => s is null ? Int(-1) : Buf(Encoding.UTF8.GetBytes(s));
        public Jute Buf(byte[]? b) { if (b is null) return Int(-1); Int(b.Length); _bytes.AddRange(b); return this; }
        public Jute Strings(params string[] items) { Int(items.Length); foreach (var s in items) Str(s); return this; }
        public Jute OpenAcl() => Int(1).Int(31).Str("world").Str("anyone");
        public byte[] Bytes => _bytes.ToArray();
    }

    private static byte[] Connect() => new Jute().Int(0).Long(0).Int(30_000).Long(0).Buf(new byte[16]).Bool(false).Bytes;

    private static Jute Req(int xid, int type) => new Jute().Int(xid).Int(type);

    private static IEnumerable<(string, byte[])> JuteRequests()
    {
        yield return ("create", Req(1, 1).Str("/a").Buf("x"u8.ToArray()).OpenAcl().Int(0).Bytes);
        yield return ("create2-sequential", Req(2, 15).Str("/a/s-").Buf([]).OpenAcl().Int(2).Bytes);
        yield return ("create-ttl", Req(3, 21).Str("/ttl").Buf([]).OpenAcl().Int(5).Long(60_000).Bytes);
        yield return ("delete", Req(4, 2).Str("/a").Int(-1).Bytes);
        yield return ("exists", Req(5, 3).Str("/a").Bool(true).Bytes);
        yield return ("getdata", Req(6, 4).Str("/a").Bool(true).Bytes);
        yield return ("setdata", Req(7, 5).Str("/a").Buf("yy"u8.ToArray()).Int(0).Bytes);
        yield return ("getacl", Req(8, 6).Str("/a").Bytes);
        yield return ("setacl", Req(9, 7).Str("/a").OpenAcl().Int(-1).Bytes);
        yield return ("getchildren2", Req(10, 12).Str("/").Bool(false).Bytes);
        yield return ("sync", Req(11, 9).Str("/").Bytes);
        yield return ("multi", Req(12, 14)
            .Int(1).Bool(false).Int(-1).Str("/m").Buf([]).OpenAcl().Int(0)
            .Int(13).Bool(false).Int(-1).Str("/m").Int(0)
            .Int(5).Bool(false).Int(-1).Str("/m").Buf([1]).Int(-1)
            .Int(2).Bool(false).Int(-1).Str("/m").Int(-1)
            .Int(-1).Bool(true).Int(-1).Bytes);
        yield return ("multiread", Req(13, 22)
            .Int(4).Bool(false).Int(-1).Str("/").Bool(false)
            .Int(8).Bool(false).Int(-1).Str("/").Bool(false)
            .Int(-1).Bool(true).Int(-1).Bytes);
        yield return ("setwatches2", Req(-8, 105).Long(0).Strings("/a").Strings("/b").Strings("/").Strings("/p").Strings("/r").Bytes);
        yield return ("setwatches", Req(-8, 101).Long(0).Strings("/a").Strings("/b").Strings("/").Bytes);
        yield return ("addwatch", Req(14, 106).Str("/").Int(1).Bytes);
        yield return ("removewatches", Req(15, 18).Str("/a").Int(1).Bytes);
        yield return ("checkwatches", Req(16, 17).Str("/a").Int(3).Bytes);
        yield return ("auth-digest", Req(-4, 100).Int(0).Str("digest").Buf("user:pass"u8.ToArray()).Bytes);
        yield return ("getephemerals", Req(17, 103).Str("/").Bytes);
        yield return ("allchildrennumber", Req(18, 104).Str("/").Bytes);
        yield return ("reconfig", Req(19, 16).Str(null).Str(null).Str("server.1=127.0.0.1:2888:3888").Long(-1).Bytes);
        yield return ("whoami", Req(20, 107).Bytes);
        yield return ("ping", Req(-2, 11).Bytes);
        yield return ("close", Req(21, -11).Bytes);
    }

    private static IEnumerable<(string, byte[][])> Conversations()
    {
        byte[] c = Connect();
        var requests = JuteRequests().ToDictionary(r => r.Item1, r => r.Item2);
        yield return ("connect-only", [c]);
        yield return ("create-read-delete", [c, requests["create"], requests["getdata"], requests["setdata"], requests["getchildren2"], requests["delete"], requests["close"]]);
        yield return ("multi", [c, requests["multi"], requests["multiread"]]);
        yield return ("watches", [c, requests["create"], requests["setwatches2"], requests["addwatch"], requests["removewatches"], requests["checkwatches"], requests["setdata"]]);
        yield return ("acl-auth", [c, requests["auth-digest"], requests["create"], requests["getacl"], requests["setacl"], requests["whoami"]]);
        yield return ("misc", [c, requests["create2-sequential"], requests["create-ttl"], requests["sync"], requests["getephemerals"], requests["allchildrennumber"], requests["reconfig"], requests["ping"], requests["exists"]]);
        // An old (pre-3.4) client: no readOnly byte in the ConnectRequest.
        yield return ("connect-old-client", [c[..^1], requests["ping"]]);
    }
}
