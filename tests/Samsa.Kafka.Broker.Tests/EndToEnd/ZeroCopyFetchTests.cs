using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Handlers;
using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Broker.Network;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Compression;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Records;
using ProtocolBatchBuilder = Samsa.Kafka.Protocol.Records.RecordBatchBuilder;

namespace Samsa.Kafka.Broker.Tests.EndToEnd;

/// <summary>
/// Fetch answered with segment-file ranges (sendfile) over a real socket: the frame a consumer
/// receives must be byte for byte the frame the copying path encodes, for every Fetch version
/// served with stored v2 batches (4-16), both isolation levels, several partitions and the KIP-74
/// limits; and segments deleted while a response is in flight must not corrupt it.
/// </summary>
public class ZeroCopyFetchTests
{
    private static async Task<T> Handle<T>(KafkaBroker broker, IKafkaMessage request, short version) where T : class, IKafkaMessage
    {
        var header = new RequestHeader { RequestApiKey = request.ApiKey, RequestApiVersion = version, CorrelationId = 1, ClientId = "test" };
        var response = await ApiTable.Find(request.ApiKey)!.Handler(new RequestContext { Header = header, Broker = broker }, request);
        return (T)response!;
    }

    private static async Task Produce(KafkaBroker broker, string topic, int partition, byte[] batch)
    {
        var r = await Handle<ProduceResponse>(broker, new ProduceRequest
        {
            Acks = -1, TimeoutMs = 5000,
            TopicData = [new() { Name = topic, PartitionData = [new() { Index = partition, Records = batch }] }],
        }, 9);
        Assert.Equal(0, r.Responses[0].PartitionResponses[0].ErrorCode);
    }

    private static async Task WriteMarker(KafkaBroker broker, string topic, int partition, long producerId, bool commit)
    {
        var r = await Handle<WriteTxnMarkersResponse>(broker, new WriteTxnMarkersRequest
        {
            Markers = [new() { ProducerId = producerId, ProducerEpoch = 0, TransactionResult = commit, CoordinatorEpoch = 0,
                Topics = [new() { Name = topic, PartitionIndexes = [partition] }] }],
        }, 1);
        Assert.Equal(0, r.Markers[0].Topics[0].Partitions[0].ErrorCode);
    }

    private static byte[] RandomBatch(Random random, long producerId = -1, int sequence = -1, bool transactional = false)
    {
        var codec = random.Next(4) switch { 0 => CompressionType.Gzip, 1 => CompressionType.Lz4, _ => CompressionType.None };
        using var b = new ProtocolBatchBuilder(codec) { ProducerId = producerId, ProducerEpoch = producerId >= 0 ? (short)0 : (short)-1, BaseSequence = sequence, IsTransactional = transactional };
        int count = random.Next(1, 16);
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        for (int i = 0; i < count; i++)
        {
            byte[]? key = random.Next(3) == 0 ? null : System.Text.Encoding.UTF8.GetBytes($"k{random.Next(50)}");
            var value = new byte[random.Next(0, 600)];
            random.NextBytes(value);
            b.Append(now, key, value);
        }
        return b.Build();
    }

    /// <summary>Random plain, compressed and transactional batches (committed, aborted, one left open) over many small segments.</summary>
    private static async Task<int> ProduceRandomPattern(KafkaBroker broker, string topic, int partitions, Random random)
    {
        int records = 0;
        for (int p = 0; p < partitions; p++)
        {
            long producerId = 1000 + p;
            int sequence = 0;
            bool open = false;
            for (int i = 0; i < 40; i++)
            {
                int roll = random.Next(100);
                if (roll < 60)
                {
                    var batch = RandomBatch(random);
                    await Produce(broker, topic, p, batch);
                }
                else if (roll < 85)
                {
                    var batch = RandomBatch(random, producerId, sequence, transactional: true);
                    sequence += new RecordBatch(batch).RecordsCount;
                    await Produce(broker, topic, p, batch);
                    open = true;
                }
                else if (open)
                {
                    await WriteMarker(broker, topic, p, producerId, commit: random.Next(2) == 0);
                    open = false;
                }
            }
            records += (int)broker.Replicas.GetPartition(topic, p)!.Log.LogEndOffset;
        }
        return records;
    }

    private static FetchRequest RandomFetch(KafkaBroker broker, string topic, int partitions, Random random, sbyte isolation)
    {
        int[] sizes = [1, 100, 3000, 20_000, 1 << 20];
        var fetchPartitions = new List<FetchRequest.FetchPartition>();
        foreach (int p in Enumerable.Range(0, partitions + 1).OrderBy(_ => random.Next()))
        {
            // Partition `partitions` does not exist: an error partition amid data partitions.
            long end = p < partitions ? broker.Replicas.GetPartition(topic, p)!.Log.LogEndOffset : 0;
            fetchPartitions.Add(new FetchRequest.FetchPartition
            {
                Partition = p, FetchOffset = random.Next(3) == 0 ? 0 : random.NextInt64(0, end + 1),
                PartitionMaxBytes = sizes[random.Next(sizes.Length)], CurrentLeaderEpoch = -1, LogStartOffset = -1, LastFetchedEpoch = -1,
            });
        }
        return new FetchRequest
        {
            ReplicaId = -1, MaxWaitMs = 0, MinBytes = 0, MaxBytes = sizes[random.Next(sizes.Length)], IsolationLevel = isolation,
            SessionId = 0, SessionEpoch = -1, ReplicaState = new FetchRequest.ReplicaStateData { ReplicaId = -1, ReplicaEpoch = -1 },
            Topics = [new FetchRequest.FetchTopic { Topic = topic, TopicId = broker.Replicas.GetTopic(topic)!.Id, Partitions = fetchPartitions }],
        };
    }

    [Fact]
    public async Task ZeroCopyFramesEqualCopiedFramesForEveryVersion()
    {
        await using var live = await LiveBroker.StartAsync(null, ("log.segment.bytes", "16384"));
        var broker = live.Broker;
        Assert.Equal(ErrorCode.None, broker.Replicas.CreateTopic("z", 3, 1, new Dictionary<string, string>(), false).Error);
        var random = new Random(20261121);
        await ProduceRandomPattern(broker, "z", 3, random);
        Assert.True(Directory.GetFiles(Path.Combine(live.DataDir, "z-0"), "*.log").Length > 3, "the pattern should span several segments");

        await using var client = await KafkaWireClient.ConnectAsync("127.0.0.1", broker.BoundEndPoint.Port);
        int correlation = 0, compared = 0, withData = 0;
        for (short v = 4; v <= 16; v++)
        {
            for (sbyte isolation = 0; isolation <= 1; isolation++)
            {
                for (int round = 0; round < 4; round++)
                {
                    var request = RandomFetch(broker, "z", 3, random, isolation);
                    correlation++;
                    await client.SendRawAsync(client.Encode(request, v, correlation));
                    var received = await client.ReadFrameAsync() ?? throw new IOException("connection closed");

                    // The copying path on the same, unchanged log.
                    var header = new RequestHeader { RequestApiKey = (short)ApiKey.Fetch, RequestApiVersion = v, CorrelationId = correlation, ClientId = client.ClientId };
                    var copied = FetchHandler.Read(broker, request, v, fileRecords: false, out int bytes, out _);
                    var expected = KafkaConnectionHandler.Serialize(header, copied, v, out int length);
                    Assert.True(expected.AsSpan(0, length).SequenceEqual(received), $"Fetch v{v} isolation {isolation} round {round}: frames differ");
                    compared++;
                    if (bytes > 0) withData++;
                }
            }
        }
        Assert.Equal(13 * 2 * 4, compared);
        Assert.True(withData > compared / 2, $"only {withData} of {compared} fetches returned records");
        Assert.True(broker.FileRangeBytesSent > 0, "no records were sent as file ranges");
    }

    [Fact]
    public async Task CopyingConnectionsSendTheSameFrames()
    {
        // A connection that must copy file bytes (as TLS would) takes the read-into-memory path;
        // the same log directory served both ways gives the same frame.
        var dir = Path.Combine(Path.GetTempPath(), "samsa-e2e-" + Guid.NewGuid().ToString("N"));
        KafkaBroker NewBroker(bool zeroCopy) => new(new Samsa.Kafka.Broker.Config.BrokerConfig(new Dictionary<string, string>
        {
            ["broker.id"] = "1", ["listeners"] = "PLAINTEXT://127.0.0.1:0", ["log.dirs"] = dir,
            ["offsets.topic.replication.factor"] = "1", ["log.segment.bytes"] = "16384",
        })) { ZeroCopyFileSend = zeroCopy };
        try
        {
            var random = new Random(7);
            FetchRequest request;
            byte[]? viaFile;
            await using (var broker = NewBroker(zeroCopy: true))
            {
                await broker.StartAsync();
                Assert.Equal(ErrorCode.None, broker.Replicas.CreateTopic("z", 2, 1, new Dictionary<string, string>(), false).Error);
                await ProduceRandomPattern(broker, "z", 2, random);
                request = RandomFetch(broker, "z", 2, random, 0);
                request.MaxBytes = 1 << 20;
                foreach (var p in request.Topics[0].Partitions) { p.FetchOffset = 0; p.PartitionMaxBytes = 1 << 20; }
                await using var client = await KafkaWireClient.ConnectAsync("127.0.0.1", broker.BoundEndPoint.Port);
                await client.SendRawAsync(client.Encode(request, 12, 5));
                viaFile = await client.ReadFrameAsync();
                Assert.True(broker.FileRangeBytesSent > 0);
            }
            await using (var broker = NewBroker(zeroCopy: false))
            {
                await broker.StartAsync();
                await using var client = await KafkaWireClient.ConnectAsync("127.0.0.1", broker.BoundEndPoint.Port);
                await client.SendRawAsync(client.Encode(request, 12, 5));
                var viaCopy = await client.ReadFrameAsync();
                Assert.NotNull(viaCopy);
                Assert.Equal(viaFile, viaCopy);
                Assert.Equal(0, broker.FileRangeBytesSent);
            }
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    [Fact]
    public async Task RecordsReadFromADeletedSegmentStayReadableUntilReleased()
    {
        await using var live = await LiveBroker.StartAsync(null, ("log.segment.bytes", "16384"), ("log.segment.delete.delay.ms", "0"));
        var broker = live.Broker;
        Assert.Equal(ErrorCode.None, broker.Replicas.CreateTopic("d", 1, 1, new Dictionary<string, string>(), false).Error);
        var random = new Random(3);
        for (int i = 0; i < 30; i++) await Produce(broker, "d", 0, RandomBatch(random));
        var log = broker.Replicas.GetPartition("d", 0)!.Log;
        var expected = log.Read(0, 1 << 20, log.LogEndOffset, minOneBatch: true).Records.ToArray();
        var read = log.ReadFileRecords(0, 1 << 20, log.LogEndOffset, minOneBatch: true);
        Assert.True(FileRecords.TryGet(read.Records, out var file, out _, out int length));
        Assert.Equal(expected.Length, length);
        string segmentPath = file!.File.Name;

        // DeleteRecords past the whole segment: with no delete delay its files are gone at once.
        var deleted = await Handle<DeleteRecordsResponse>(broker, new DeleteRecordsRequest
        {
            Topics = [new() { Name = "d", Partitions = [new() { PartitionIndex = 0, Offset = log.LogEndOffset }] }],
        }, 2);
        Assert.Equal(0, deleted.Topics[0].Partitions[0].ErrorCode);
        for (int i = 0; i < 50 && File.Exists(segmentPath); i++) await Task.Delay(20);
        Assert.False(File.Exists(segmentPath), $"{segmentPath} should have been deleted");

        // The lease keeps the deleted file open: a send would still carry the bytes that were read.
        Assert.False(file.File.SafeFileHandle.IsClosed);
        var bytes = new byte[length];
        Assert.Equal(length, RandomAccess.Read(file.File.SafeFileHandle, bytes, file.Position));
        Assert.Equal(expected, bytes);
        ((IDisposable)file).Dispose();
        Assert.True(file.File.SafeFileHandle.IsClosed, "the last lease closes the deleted segment's file");
    }

    [Fact]
    public async Task ConcurrentRetentionNeverCorruptsAZeroCopyResponse()
    {
        await using var live = await LiveBroker.StartAsync(null, ("log.segment.bytes", "16384"), ("log.segment.delete.delay.ms", "0"));
        var broker = live.Broker;
        Assert.Equal(ErrorCode.None, broker.Replicas.CreateTopic("r", 1, 1, new Dictionary<string, string>(), false).Error);
        var log = broker.Replicas.GetPartition("r", 0)!.Log;
        var done = new CancellationTokenSource();

        var producer = Task.Run(async () =>
        {
            var random = new Random(11);
            try
            {
                for (int i = 0; i < 400; i++)
                {
                    await Produce(broker, "r", 0, RandomBatch(random));
                    if (i % 5 == 4)
                    {
                        // Delete most of the log: segments vanish under fetches in flight.
                        long target = Math.Max(log.LogStartOffset, log.LogEndOffset - random.Next(1, 40));
                        await Handle<DeleteRecordsResponse>(broker, new DeleteRecordsRequest
                        {
                            Topics = [new() { Name = "r", Partitions = [new() { PartitionIndex = 0, Offset = target }] }],
                        }, 2);
                    }
                }
            }
            finally
            {
                done.Cancel();
            }
        });

        async Task<(int Frames, int Batches)> Consume(int seed)
        {
            var random = new Random(seed);
            await using var client = await KafkaWireClient.ConnectAsync("127.0.0.1", broker.BoundEndPoint.Port);
            long offset = 0;
            int frames = 0, batches = 0;
            while (!done.IsCancellationRequested || offset < log.LogEndOffset)
            {
                short v = (short)random.Next(4, 17);
                var response = await client.SendAsync<FetchResponse>(new FetchRequest
                {
                    ReplicaId = -1, MaxWaitMs = 0, MinBytes = 0, MaxBytes = 1 << 20, SessionEpoch = -1,
                    ReplicaState = new FetchRequest.ReplicaStateData { ReplicaId = -1, ReplicaEpoch = -1 },
                    Topics = [new() { Topic = "r", TopicId = broker.Replicas.GetTopic("r")!.Id,
                        Partitions = [new() { Partition = 0, FetchOffset = offset, PartitionMaxBytes = random.Next(1, 20_000), CurrentLeaderEpoch = -1, LogStartOffset = -1, LastFetchedEpoch = -1 }] }],
                }, v) ?? throw new IOException("no response");
                frames++;
                var pd = response.Responses[0].Partitions[0];
                if (pd.ErrorCode == (short)ErrorCode.OffsetOutOfRange)
                {
                    offset = log.LogStartOffset;
                    continue;
                }
                Assert.Equal(0, pd.ErrorCode);
                var data = pd.Records is { } m ? m.ToArray() : [];
                foreach (var batch in RecordBatch.Enumerate(data, allowTruncatedTail: true))
                {
                    Assert.Equal(RecordBatchError.None, batch.Validate());
                    Assert.True(batch.LastOffset >= offset, $"batch {batch.BaseOffset}-{batch.LastOffset} returned for fetch offset {offset}");
                    offset = batch.LastOffset + 1;
                    batches++;
                }
            }
            return (frames, batches);
        }

        var consumers = await Task.WhenAll(Consume(1), Consume(2));
        await producer;
        Assert.All(consumers, c => Assert.True(c.Batches > 0));
        Assert.True(log.LogStartOffset > 0);
        Assert.True(broker.FileRangeBytesSent > 0);
    }
}
