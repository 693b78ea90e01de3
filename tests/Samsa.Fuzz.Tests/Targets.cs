using System.Buffers.Binary;
using Samsa.Kafka.Broker;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Broker.Handlers;
using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Compression;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Primitives;
using Samsa.Kafka.Protocol.Records;
using Samsa.Keeper.Protocol;
using Samsa.Keeper.Server;
using JuteHeader = Samsa.Keeper.Protocol.Records.RequestHeader;
using JuteRecords = Samsa.Keeper.Protocol.Records;

namespace Samsa.Fuzz;

/// <summary>
/// The fuzz targets. Each takes one input and either returns (the input was handled: decoded, or
/// refused with the protocol's own exception) or throws: any exception leaving a target is a crash,
/// whether it runs under AFL++ or in the smoke test. The exceptions a target may swallow are the
/// documented "bad input" ones of the code under test — nothing broader.
/// </summary>
public static class Targets
{
    /// <summary>Inputs that got past the first decode into the code under test, per target (the
    /// smoke run prints them, so a target that only ever refuses its inputs shows).</summary>
    public static readonly System.Collections.Concurrent.ConcurrentDictionary<string, int> Deep = new();

    internal static void Reached(string target) => Deep.AddOrUpdate(target, 1, (_, n) => n + 1);

    public static readonly IReadOnlyDictionary<string, Action<byte[]>> All = new Dictionary<string, Action<byte[]>>
    {
        ["kafka-request"] = KafkaRequest,
        ["kafka-handler"] = KafkaHandler,
        ["produce-validator"] = ProduceValidatorTarget,
        ["decompress"] = Decompress,
        ["jute-request"] = JuteRequest,
        ["keeper-server"] = KeeperServerTarget,
        ["segment-recovery"] = RecoveryTargets.SegmentRecovery,
        ["txnlog-recovery"] = RecoveryTargets.TxnLogRecovery,
    };

    // ------------------------------------------------------------------ Kafka request decoder

    /// <summary>
    /// A request frame without its length prefix, as KafkaConnectionHandler.Parse sees it: the header
    /// (version chosen by the API/version table), then the body of every served API and version.
    /// Allowed: KafkaProtocolException. A body that decodes must also encode again (Size, Write).
    /// </summary>
    public static void KafkaRequest(byte[] data)
    {
        if (!TryDecodeRequest(data, out var header, out var request)) return;
        if (request is null) return;
        Reached("kafka-request");
        Reencode(request, header!.RequestApiVersion);
    }

    private static bool TryDecodeRequest(byte[] data, out RequestHeader? header, out IKafkaMessage? request)
    {
        header = null;
        request = null;
        if (data.Length < 8) return false;
        short apiKey = BinaryPrimitives.ReadInt16BigEndian(data);
        short apiVersion = BinaryPrimitives.ReadInt16BigEndian(data.AsSpan(2));
        bool served = ApiTable.Serves(apiKey, apiVersion);
        if (!served && apiKey != (short)ApiKey.ApiVersions) return false;
        try
        {
            var reader = new KafkaReader(data);
            short headerVersion = served ? ApiMessages.RequestHeaderVersion(apiKey, apiVersion) : (short)1;
            header = RequestHeader.Read(ref reader, headerVersion);
            if (!served) return true;
            request = ApiMessages.ReadRequest((ApiKey)apiKey, ref reader, apiVersion);
            return true;
        }
        catch (KafkaProtocolException)
        {
            return false;
        }
    }

    private static void Reencode(IKafkaMessage message, short version)
    {
        var buffer = new byte[message.Size(version)];
        var writer = new KafkaWriter(buffer);
        message.Write(ref writer, version);
    }

    // ------------------------------------------------------------------ Kafka handlers

    // APIs whose handlers answer at once from broker state without waiting on other members or
    // timers (no JoinGroup/SyncGroup rebalances, no long-poll Fetch) and without creating topics
    // or partitions sized by the input.
    private static readonly HashSet<ApiKey> HandlerApis =
    [
        ApiKey.Produce, ApiKey.Metadata, ApiKey.ListOffsets, ApiKey.ApiVersions, ApiKey.DescribeConfigs,
        ApiKey.OffsetFetch, ApiKey.FindCoordinator, ApiKey.ListGroups, ApiKey.DescribeGroups,
        ApiKey.OffsetForLeaderEpoch, ApiKey.DescribeCluster, ApiKey.DescribeLogDirs, ApiKey.DescribeProducers,
        ApiKey.ListTransactions, ApiKey.DescribeTransactions, ApiKey.DeleteRecords, ApiKey.ListPartitionReassignments,
    ];

    private static KafkaBroker? _broker;
    private static int _brokerInputs;

    private static KafkaBroker Broker
    {
        get
        {
            // A fresh broker now and then keeps memory flat over long runs (produced records stay in memory).
            if (_broker is not null && ++_brokerInputs % 20_000 != 0) return _broker;
            var broker = new KafkaBroker(new BrokerConfig(new Dictionary<string, string>
            {
                ["broker.id"] = "1",
                ["listeners"] = "PLAINTEXT://127.0.0.1:0",
                ["log.dirs"] = Path.Combine(Path.GetTempPath(), "samsa-fuzz-unused"),
                ["offsets.topic.replication.factor"] = "1",
                ["auto.create.topics.enable"] = "false",
            }), inMemory: true);
            broker.SetAdvertisedEndpointForTests("127.0.0.1", 9092);
            foreach (var (name, configs) in new (string, Dictionary<string, string>)[]
            {
                ("t", new()), ("compacted", new() { ["cleanup.policy"] = "compact" }),
                ("gz", new() { ["compression.type"] = "gzip" }),
            })
                broker.Replicas.CreateTopic(name, 2, 1, configs, validateOnly: false);
            return _broker = broker;
        }
    }

    /// <summary>
    /// A request frame as for kafka-request, dispatched to the broker's handler (in-memory broker,
    /// single node, topics "t", "compacted", "gz") and its response written at the request's version,
    /// as the connection handler does. A handler exception or a response the schema cannot carry is
    /// a crash: a client would see its connection dropped instead of an error code.
    /// </summary>
    public static void KafkaHandler(byte[] data)
    {
        if (!TryDecodeRequest(data, out var header, out var request) || request is null) return;
        if (!HandlerApis.Contains((ApiKey)header!.RequestApiKey)) return;
        if (request is ProduceRequest produce && produce.Acks == -1) produce.Acks = 1; // no replication wait
        var entry = ApiTable.Find(header.RequestApiKey)!;
        var context = new RequestContext { Header = header, Broker = Broker };
        var task = entry.Handler(context, request).AsTask();
        if (!task.Wait(TimeSpan.FromSeconds(5)))
            throw new TimeoutException($"{(ApiKey)header.RequestApiKey} v{header.RequestApiVersion} handler did not answer in 5 s");
        var response = task.Result;
        Reached("kafka-handler");
        if (response is null) return;
        short version = header.RequestApiKey == (short)ApiKey.ApiVersions && !ApiTable.Serves(header.RequestApiKey, header.RequestApiVersion)
            ? (short)0 : header.RequestApiVersion;
        Reencode(response, version);
    }

    // ------------------------------------------------------------------ RecordBatch validation

    private static LogConfig[]? _configs;

    private static LogConfig[] Configs => _configs ??= BuildConfigs();

    private static LogConfig[] BuildConfigs()
    {
        var broker = new BrokerConfig(new Dictionary<string, string> { ["broker.id"] = "1", ["log.dirs"] = "/nonexistent" });
        var list = new List<LogConfig>();
        foreach (var compression in new[] { "producer", "uncompressed", "gzip", "snappy", "lz4", "zstd" })
            foreach (var policy in new[] { "delete", "compact" })
                foreach (var timestampType in new[] { "CreateTime", "LogAppendTime" })
                    list.Add(broker.LogConfigFor(new Dictionary<string, string>
                    {
                        ["compression.type"] = compression,
                        ["cleanup.policy"] = policy,
                        ["message.timestamp.type"] = timestampType,
                    }));
        list.Add(broker.LogConfigFor(new Dictionary<string, string> { ["max.message.bytes"] = "200" }));
        return list.ToArray();
    }

    /// <summary>
    /// One byte choosing the topic config (compression.type × cleanup.policy × timestamp type, or a
    /// 200-byte max.message.bytes) and the produce version, then a partition's records as a client
    /// sends them. ProduceValidator must answer every input with a result (an error code for bad
    /// data); any exception is a crash. Accepted batches must read back with RecordBatch.
    /// </summary>
    public static void ProduceValidatorTarget(byte[] data)
    {
        if (data.Length < 1) return;
        var config = Configs[data[0] % Configs.Length];
        short produceVersion = (short)(data[0] / Configs.Length % 12);
        var records = data.AsMemory(1).ToArray();
        const long now = 1_700_000_000_000;
        var result = ProduceValidator.Validate(records, config, nextOffset: 5, leaderEpoch: 3, nowMs: now, produceVersion);
        var inPlace = ProduceValidator.ValidateInPlace(records, config, nextOffset: 5, leaderEpoch: 3, nowMs: now, produceVersion);
        if (result.ErrorCode != inPlace.ErrorCode)
            throw new InvalidOperationException($"Validate answered {result.ErrorCode}, ValidateInPlace {inPlace.ErrorCode}");
        if (result.ErrorCode != 0) return;
        Reached("produce-validator");
        // What the log would store: every batch well framed with a good CRC.
        var stored = result.Batches.Span;
        int pos = 0;
        while (pos < stored.Length)
        {
            var batch = new RecordBatch(stored[pos..]);
            var error = batch.Validate();
            if (error != RecordBatchError.None) throw new InvalidOperationException($"accepted records stored as an invalid batch: {error}");
            try
            {
                foreach (var _ in batch.GetRecords(4 << 20)) { }
            }
            catch (KafkaProtocolException)
            {
                // Records inside a well-framed batch are not read for non-compacted topics (see
                // FINDINGS.md); reading them may refuse them, but only with the protocol's exception.
            }
            pos += batch.SizeInBytes;
        }
    }

    /// <summary>One byte choosing the codec (and magic 0 for LZ4's old header checksum), then the
    /// compressed bytes; decoding is bounded to 1 MiB. Allowed: KafkaProtocolException.</summary>
    public static void Decompress(byte[] data)
    {
        if (data.Length < 1) return;
        var codec = (CompressionType)(1 + data[0] % 4);
        byte magic = (byte)(data[0] / 4 % 3);
        try
        {
            using var output = CompressionCodecs.Decompress(codec, data.AsSpan(1), 1 << 20, magic);
            Reached("decompress");
        }
        catch (KafkaProtocolException)
        {
        }
    }

    // ------------------------------------------------------------------ ZooKeeper jute decoder

    /// <summary>
    /// A client frame after the handshake: RequestHeader, then the body the opcode names (every
    /// request record of zookeeper.jute; multi's op list). A first byte 0xC0 marks a ConnectRequest
    /// instead. Allowed: JuteException. A decoded record must also encode again.
    /// </summary>
    public static void JuteRequest(byte[] data)
    {
        if (data.Length > 0 && data[0] == 0xC0)
        {
            var c = new JuteReader(data.AsSpan(1));
            try { JuteRecords.ConnectRequest.Read(ref c).ToBytes(); } catch (JuteException) { }
            return;
        }
        var r = new JuteReader(data);
        try
        {
            var h = JuteHeader.Read(ref r);
            if (h.Type is OpCode.Multi or OpCode.MultiRead)
            {
                for (int i = 0; i < 10_000; i++)
                {
                    var mh = JuteRecords.MultiHeader.Read(ref r);
                    if (mh.Done) break;
                    if (ReadBody(mh.Type, ref r) is null) break;
                }
                return;
            }
            if (ReadBody(h.Type, ref r)?.ToBytes() is not null) Reached("jute-request");
        }
        catch (JuteException)
        {
        }
    }

    private static IJuteRecord? ReadBody(int type, ref JuteReader r) => type switch
    {
        OpCode.Create or OpCode.Create2 or OpCode.CreateContainer => JuteRecords.CreateRequest.Read(ref r),
        OpCode.CreateTTL => JuteRecords.CreateTTLRequest.Read(ref r),
        OpCode.Delete or OpCode.DeleteContainer => JuteRecords.DeleteRequest.Read(ref r),
        OpCode.Exists => JuteRecords.ExistsRequest.Read(ref r),
        OpCode.GetData => JuteRecords.GetDataRequest.Read(ref r),
        OpCode.SetData => JuteRecords.SetDataRequest.Read(ref r),
        OpCode.GetACL => JuteRecords.GetACLRequest.Read(ref r),
        OpCode.SetACL => JuteRecords.SetACLRequest.Read(ref r),
        OpCode.GetChildren => JuteRecords.GetChildrenRequest.Read(ref r),
        OpCode.GetChildren2 => JuteRecords.GetChildren2Request.Read(ref r),
        OpCode.Sync => JuteRecords.SyncRequest.Read(ref r),
        OpCode.Check => JuteRecords.CheckVersionRequest.Read(ref r),
        OpCode.Reconfig => JuteRecords.ReconfigRequest.Read(ref r),
        OpCode.CheckWatches => JuteRecords.CheckWatchesRequest.Read(ref r),
        OpCode.RemoveWatches => JuteRecords.RemoveWatchesRequest.Read(ref r),
        OpCode.Auth => JuteRecords.AuthPacket.Read(ref r),
        OpCode.SetWatches => JuteRecords.SetWatches.Read(ref r),
        OpCode.SetWatches2 => JuteRecords.SetWatches2.Read(ref r),
        OpCode.Sasl => JuteRecords.GetSASLRequest.Read(ref r),
        OpCode.GetEphemerals => JuteRecords.GetEphemeralsRequest.Read(ref r),
        OpCode.GetAllChildrenNumber => JuteRecords.GetAllChildrenNumberRequest.Read(ref r),
        OpCode.AddWatch => JuteRecords.AddWatchRequest.Read(ref r),
        _ => null,
    };

    // ------------------------------------------------------------------ the Keeper server

    private static KeeperServer? _keeper;
    private static int _keeperInputs;
    private static long _connectionIds;

    /// <summary>
    /// A conversation with the Keeper (no dataDir: the txn log and snapshots are not involved):
    /// frames, each with a 2-byte big-endian length, the first being the ConnectRequest. They go
    /// through KeeperServer.Enqueue exactly as the network hands them over; after the last one the
    /// connection closes. The loop's InternalErrors counter (an exception caught while handling a
    /// frame, logged with its stack trace) must not move.
    /// </summary>
    public static void KeeperServerTarget(byte[] data)
    {
        if (_keeper is null || ++_keeperInputs % 5000 == 0)
        {
            // A fresh tree now and then keeps memory flat over long runs.
            _keeper?.DisposeAsync().AsTask().Wait();
            _keeper = new KeeperServer(new KeeperConfig { DataDir = "", TickTime = 2000, ExtendedTypesEnabled = (_keeperInputs & 1) == 0 });
            _keeper.Start();
        }
        var server = _keeper;
        long errorsBefore = server.InternalErrors;
        bool closed = false;
        var conn = new ServerConnection(server, Interlocked.Increment(ref _connectionIds), null,
            _ => ValueTask.CompletedTask, () => closed = true);
        server.RegisterConnection(conn);
        int pos = 0, frames = 0;
        while (data.Length - pos >= 2 && frames < 64)
        {
            int length = BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(pos));
            pos += 2;
            length = Math.Min(length, data.Length - pos);
            server.Enqueue(conn, data.AsSpan(pos, length).ToArray());
            pos += length;
            frames++;
        }
        server.RunOnLoopAsync(() => 0).Wait();
        if (conn.PacketsSent > 1) Reached("keeper-server");
        server.ConnectionClosed(conn);
        server.RunOnLoopAsync(() => 0).Wait();
        _ = closed;
        if (server.InternalErrors != errorsBefore)
            throw new InvalidOperationException("the Keeper's loop caught an unexpected exception (InternalErrors moved); see stderr");
    }
}
