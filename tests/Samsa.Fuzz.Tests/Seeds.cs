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
    }

    private static string Prepare(string corpus, string target)
    {
        string dir = Path.Combine(corpus, target);
        Directory.CreateDirectory(dir);
        foreach (var f in Directory.GetFiles(dir).Where(f => !Path.GetFileName(f).StartsWith("regress-")))
            File.Delete(f);
        return dir;
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
