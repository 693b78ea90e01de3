using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Broker.Handlers;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;
using BatchBuilder = Samsa.Kafka.Protocol.Records.RecordBatchBuilder;

namespace Samsa.Kafka.Broker.Tests.Transactions;

/// <summary>A broker with log files (producer state needs Samsa.Kafka.Storage) and no listener;
/// requests go through the wire encoding of the version under test and then to the handlers.</summary>
public sealed class StorageHandlerFixture : IAsyncDisposable
{
    private readonly string _dir;

    public StorageHandlerFixture(string? dir = null, IReadOnlyDictionary<string, string>? extraConfig = null)
    {
        _dir = dir ?? Path.Combine(Path.GetTempPath(), "samsa-txnh-" + Guid.NewGuid().ToString("N"));
        var props = new Dictionary<string, string>
        {
            ["broker.id"] = "1", ["log.dirs"] = _dir,
            ["offsets.topic.replication.factor"] = "1", ["offsets.topic.num.partitions"] = "2",
            ["transaction.state.log.replication.factor"] = "1", ["transaction.state.log.num.partitions"] = "2",
            ["transaction.max.timeout.ms"] = "60000",
        };
        foreach (var (k, v) in extraConfig ?? new Dictionary<string, string>()) props[k] = v;
        Broker = new KafkaBroker(new BrokerConfig(props));
        Broker.SetAdvertisedEndpointForTests("127.0.0.1", 9092);
    }

    public KafkaBroker Broker { get; }

    public async Task<TResponse> Send<TResponse>(IKafkaMessage request, short version) where TResponse : class, IKafkaMessage<TResponse>
    {
        var header = new RequestHeader { RequestApiKey = request.ApiKey, RequestApiVersion = version, CorrelationId = 9, ClientId = "test" };
        short hv = ApiMessages.RequestHeaderVersion(request.ApiKey, version);
        var frame = new byte[header.Size(hv) + request.Size(version)];
        var w = new Samsa.Kafka.Protocol.Primitives.KafkaWriter(frame);
        header.Write(ref w, hv);
        request.Write(ref w, version);
        var (parsedHeader, parsed, error) = Network.KafkaConnectionHandler.Parse(frame);
        Assert.Null(error);
        var response = await ApiTable.Find(request.ApiKey)!.Handler(new RequestContext { Header = parsedHeader!, Broker = Broker }, parsed!);
        var bytes = Network.KafkaConnectionHandler.Serialize(header, response!, version, out int length);
        return KafkaWireClient.Decode<TResponse>(bytes[..length], request.ApiKey, version, 9);
    }

    public void CreateTopic(string name, int partitions = 1) =>
        Assert.Equal(ErrorCode.None, Broker.Replicas.CreateTopic(name, partitions, 1, new Dictionary<string, string>(), false).Error);

    public static byte[] Batch(long producerId, short epoch, int baseSequence, bool transactional, params string[] values)
    {
        using var b = new BatchBuilder { ProducerId = producerId, ProducerEpoch = epoch, BaseSequence = baseSequence, IsTransactional = transactional };
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        foreach (var v in values) b.Append(now, null, System.Text.Encoding.UTF8.GetBytes(v));
        return b.Build();
    }

    public async Task<ProduceResponse.PartitionProduceResponse> Produce(string topic, byte[] records, short version = 9)
    {
        var r = await Send<ProduceResponse>(new ProduceRequest
        {
            Acks = -1, TimeoutMs = 1000,
            TopicData = [new ProduceRequest.TopicProduceData { Name = topic, PartitionData = [new ProduceRequest.PartitionProduceData { Index = 0, Records = records }] }],
        }, version);
        return r.Responses[0].PartitionResponses[0];
    }

    public async Task<FetchResponse.PartitionData> Fetch(string topic, long offset, sbyte isolation, short version = 12)
    {
        var r = await Send<FetchResponse>(new FetchRequest
        {
            MaxWaitMs = 0, MinBytes = 0, MaxBytes = 1 << 20, SessionEpoch = -1, IsolationLevel = isolation, ReplicaId = -1,
            Topics = [new FetchRequest.FetchTopic { Topic = topic, Partitions = [new FetchRequest.FetchPartition { Partition = 0, FetchOffset = offset, PartitionMaxBytes = 1 << 20, CurrentLeaderEpoch = -1, LogStartOffset = -1 }] }],
        }, version);
        return r.Responses[0].Partitions[0];
    }

    public string Directory => _dir;
    public bool KeepFiles { get; set; }

    public async ValueTask DisposeAsync()
    {
        await Broker.DisposeAsync();
        if (KeepFiles) return;
        try { System.IO.Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}

public class TransactionHandlerTests
{
    [Theory]
    [InlineData(0)] [InlineData(1)] [InlineData(2)] [InlineData(3)] [InlineData(4)] [InlineData(5)]
    public async Task InitProducerIdEveryVersion(short version)
    {
        await using var f = new StorageHandlerFixture();
        var idempotent = await f.Send<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = null, TransactionTimeoutMs = 1000, ProducerId = -1, ProducerEpoch = -1 }, version);
        Assert.Equal((0, (short)0), (idempotent.ErrorCode, idempotent.ProducerEpoch));
        var first = await f.Send<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = "t", TransactionTimeoutMs = 1000, ProducerId = -1, ProducerEpoch = -1 }, version);
        var second = await f.Send<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = "t", TransactionTimeoutMs = 1000, ProducerId = -1, ProducerEpoch = -1 }, version);
        Assert.Equal((0, 0, 1), (first.ErrorCode, (int)first.ProducerEpoch, (int)second.ProducerEpoch));
        Assert.Equal(first.ProducerId, second.ProducerId);
        Assert.NotEqual(idempotent.ProducerId, first.ProducerId);
        var tooLong = await f.Send<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = "t", TransactionTimeoutMs = 60001, ProducerId = -1, ProducerEpoch = -1 }, version);
        Assert.Equal((short)ErrorCode.InvalidTransactionTimeout, tooLong.ErrorCode);
        if (version >= 3)
        {
            // KIP-360: a stale epoch is fenced; PRODUCER_FENCED from v4 (KIP-588), INVALID_PRODUCER_EPOCH before.
            var stale = await f.Send<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = "t", TransactionTimeoutMs = 1000, ProducerId = first.ProducerId + 5, ProducerEpoch = 0 }, version);
            Assert.Equal((short)(version >= 4 ? ErrorCode.ProducerFenced : ErrorCode.InvalidProducerEpoch), stale.ErrorCode);
        }
    }

    [Fact]
    public async Task WithoutATransactionLogTheCoordinatorIsNotAvailable()
    {
        // Upstream's default transaction.state.log.replication.factor is 3: one broker cannot create the log.
        await using var f = new Samsa.Kafka.Broker.Tests.Handlers.HandlerFixture();
        var find = await f.Send<FindCoordinatorResponse>(new FindCoordinatorRequest { Key = "tx", KeyType = 1 }, 3);
        Assert.Equal((short)ErrorCode.CoordinatorNotAvailable, find!.ErrorCode);
        var init = await f.Send<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = "tx", TransactionTimeoutMs = 1000 }, 4);
        Assert.Equal((short)ErrorCode.CoordinatorNotAvailable, init!.ErrorCode);
        // Idempotent producers need no log.
        var idempotent = await f.Send<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = null, TransactionTimeoutMs = 1000 }, 4);
        Assert.Equal(0, idempotent!.ErrorCode);
        Assert.Null(f.Broker.Replicas.GetTopic("__transaction_state"));
    }

    [Fact]
    public async Task EmptyTransactionalIdIsAnInvalidRequest()
    {
        await using var f = new StorageHandlerFixture();
        var r = await f.Send<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = "", TransactionTimeoutMs = 1000 }, 4);
        Assert.Equal(((short)ErrorCode.InvalidRequest, -1L), (r.ErrorCode, r.ProducerId));
    }

    [Fact]
    public async Task FindCoordinatorForTransactionalIdCreatesTheLogAndAnswersThisBroker()
    {
        await using var f = new StorageHandlerFixture();
        var r = await f.Send<FindCoordinatorResponse>(new FindCoordinatorRequest { Key = "t", KeyType = 1 }, 3);
        Assert.Equal((0, 1, 9092), (r.ErrorCode, r.NodeId, r.Port));
        var topic = f.Broker.Replicas.GetTopic("__transaction_state");
        Assert.NotNull(topic);
        Assert.Equal(2, topic.Partitions.Count);
        Assert.Equal("compact", topic.Configs["cleanup.policy"]);
        var batched = await f.Send<FindCoordinatorResponse>(new FindCoordinatorRequest { KeyType = 1, CoordinatorKeys = ["a", "b"] }, 4);
        Assert.All(batched.Coordinators, c => Assert.Equal((0, 1), (c.ErrorCode, c.NodeId)));
        var bad = await f.Send<FindCoordinatorResponse>(new FindCoordinatorRequest { Key = "x", KeyType = 2 }, 3);
        Assert.Equal((short)ErrorCode.InvalidRequest, bad.ErrorCode);
    }

    [Fact]
    public async Task IdempotentSequenceChecksDuplicatesAndFencing()
    {
        await using var f = new StorageHandlerFixture();
        f.CreateTopic("t");
        var init = await f.Send<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = null, TransactionTimeoutMs = 1000 }, 4);
        Assert.Equal(0, init.ErrorCode);
        long pid = init.ProducerId;
        var a = await f.Produce("t", StorageHandlerFixture.Batch(pid, 0, 0, false, "a", "b"));
        var b = await f.Produce("t", StorageHandlerFixture.Batch(pid, 0, 2, false, "c"));
        Assert.Equal((0, 0L, 0, 2L), (a.ErrorCode, a.BaseOffset, b.ErrorCode, b.BaseOffset));
        // A retry of the first batch gets its original offset and is not written again.
        var retry = await f.Produce("t", StorageHandlerFixture.Batch(pid, 0, 0, false, "a", "b"));
        Assert.Equal((0, 0L), (retry.ErrorCode, retry.BaseOffset));
        Assert.Equal(3, f.Broker.Replicas.GetPartition("t", 0)!.Log.LogEndOffset);
        // A gap.
        var gap = await f.Produce("t", StorageHandlerFixture.Batch(pid, 0, 5, false, "x"));
        Assert.Equal((short)ErrorCode.OutOfOrderSequenceNumber, gap.ErrorCode);
        // A new epoch starts at 0; then the old epoch is a zombie.
        var bumped = await f.Produce("t", StorageHandlerFixture.Batch(pid, 1, 0, false, "d"));
        Assert.Equal((0, 3L), (bumped.ErrorCode, bumped.BaseOffset));
        var zombie = await f.Produce("t", StorageHandlerFixture.Batch(pid, 0, 3, false, "z"));
        Assert.Equal((short)ErrorCode.InvalidProducerEpoch, zombie.ErrorCode);
        var badStart = await f.Produce("t", StorageHandlerFixture.Batch(pid, 2, 7, false, "z"));
        Assert.Equal((short)ErrorCode.OutOfOrderSequenceNumber, badStart.ErrorCode);
        Assert.Equal(4, f.Broker.Replicas.GetPartition("t", 0)!.Log.LogEndOffset);

        var described = await f.Send<DescribeProducersResponse>(new DescribeProducersRequest
        {
            Topics = [new DescribeProducersRequest.TopicRequest { Name = "t", PartitionIndexes = [0, 7] }],
        }, 0);
        var p0 = described.Topics[0].Partitions[0];
        var producer = Assert.Single(p0.ActiveProducers);
        Assert.Equal((pid, 1, 0, -1L), (producer.ProducerId, producer.ProducerEpoch, producer.LastSequence, producer.CurrentTxnStartOffset));
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, described.Topics[0].Partitions[1].ErrorCode);
    }

    [Fact]
    public async Task ProducerStateAndIdsSurviveARestart()
    {
        string dir;
        long pid;
        await using (var f = new StorageHandlerFixture())
        {
            f.KeepFiles = true;
            dir = f.Directory;
            f.CreateTopic("t");
            pid = (await f.Send<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = null, TransactionTimeoutMs = 1000 }, 4)).ProducerId;
            Assert.Equal(0, (await f.Produce("t", StorageHandlerFixture.Batch(pid, 0, 0, false, "a"))).ErrorCode);
            Assert.Equal(0, (await f.Produce("t", StorageHandlerFixture.Batch(pid, 0, 1, false, "b", "c"))).ErrorCode);
        }
        await using (var f = new StorageHandlerFixture(dir))
        {
            // The producer state was rebuilt: a retry is still a duplicate, a gap still refused.
            var retry = await f.Produce("t", StorageHandlerFixture.Batch(pid, 0, 1, false, "b", "c"));
            Assert.Equal((0, 1L), (retry.ErrorCode, retry.BaseOffset));
            Assert.Equal(3, f.Broker.Replicas.GetPartition("t", 0)!.Log.LogEndOffset);
            Assert.Equal((short)ErrorCode.OutOfOrderSequenceNumber, (await f.Produce("t", StorageHandlerFixture.Batch(pid, 0, 9, false, "x"))).ErrorCode);
            Assert.Equal(0, (await f.Produce("t", StorageHandlerFixture.Batch(pid, 0, 3, false, "d"))).ErrorCode);
            // A new producer id never repeats one handed out before the restart.
            var next = await f.Send<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = null, TransactionTimeoutMs = 1000 }, 4);
            Assert.True(next.ProducerId > pid);
        }
    }

    [Fact]
    public async Task SequenceWrapsFromIntMaxToZero()
    {
        await using var f = new StorageHandlerFixture();
        f.CreateTopic("t");
        var init = await f.Send<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = null, TransactionTimeoutMs = 1000 }, 4);
        Assert.Equal(0, init.ErrorCode);
        long pid = init.ProducerId;
        var first = await f.Produce("t", StorageHandlerFixture.Batch(pid, 0, int.MaxValue - 1, false, "a", "b"));
        Assert.Equal(0, first.ErrorCode);
        var wrapped = await f.Produce("t", StorageHandlerFixture.Batch(pid, 0, 0, false, "c"));
        Assert.Equal((0, 2L), (wrapped.ErrorCode, wrapped.BaseOffset));
    }

    [Fact]
    public async Task TransactionOverTheWireWithReadCommittedFetch()
    {
        await using var f = new StorageHandlerFixture();
        f.CreateTopic("t");
        await f.Send<FindCoordinatorResponse>(new FindCoordinatorRequest { Key = "tx", KeyType = 1 }, 3);
        var init = await f.Send<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = "tx", TransactionTimeoutMs = 10_000 }, 4);
        long pid = init.ProducerId;
        short epoch = init.ProducerEpoch;

        // Aborted transaction at offsets 0-1, its marker at 2.
        var add = await f.Send<AddPartitionsToTxnResponse>(new AddPartitionsToTxnRequest
        {
            V3AndBelowTransactionalId = "tx", V3AndBelowProducerId = pid, V3AndBelowProducerEpoch = epoch,
            V3AndBelowTopics = [new AddPartitionsToTxnRequest.AddPartitionsToTxnTopic { Name = "t", Partitions = [0] }],
        }, 3);
        Assert.Equal(0, add.ResultsByTopicV3AndBelow[0].ResultsByPartition[0].PartitionErrorCode);
        Assert.Equal(0, (await f.Produce("t", StorageHandlerFixture.Batch(pid, epoch, 0, true, "a1", "a2"))).ErrorCode);
        var open = await f.Fetch("t", 0, isolation: 1);
        Assert.Equal((0L, 2L), (open.LastStableOffset, open.HighWatermark));
        Assert.Equal(0, open.Records!.Value.Length);

        var described = await f.Send<DescribeTransactionsResponse>(new DescribeTransactionsRequest { TransactionalIds = ["tx", "nope"] }, 0);
        Assert.Equal(("Ongoing", pid), (described.TransactionStates[0].TransactionState, described.TransactionStates[0].ProducerId));
        Assert.Equal([0], described.TransactionStates[0].Topics[0].Partitions);
        Assert.Equal((short)ErrorCode.TransactionalIdNotFound, described.TransactionStates[1].ErrorCode);
        var listed = await f.Send<ListTransactionsResponse>(new ListTransactionsRequest { StateFilters = ["Ongoing", "Bogus"], DurationFilter = -1 }, 1);
        Assert.Equal(["tx"], listed.TransactionStates.Select(t => t.TransactionalId));
        Assert.Equal(["Bogus"], listed.UnknownStateFilters);

        var abort = await f.Send<EndTxnResponse>(new EndTxnRequest { TransactionalId = "tx", ProducerId = pid, ProducerEpoch = epoch, Committed = false }, 3);
        Assert.Equal(0, abort.ErrorCode);
        // Committed transaction at 3-4, marker at 5.
        await f.Send<AddPartitionsToTxnResponse>(new AddPartitionsToTxnRequest
        {
            V3AndBelowTransactionalId = "tx", V3AndBelowProducerId = pid, V3AndBelowProducerEpoch = epoch,
            V3AndBelowTopics = [new AddPartitionsToTxnRequest.AddPartitionsToTxnTopic { Name = "t", Partitions = [0] }],
        }, 1);
        Assert.Equal(0, (await f.Produce("t", StorageHandlerFixture.Batch(pid, epoch, 2, true, "c1", "c2"))).ErrorCode);
        var commit = await f.Send<EndTxnResponse>(new EndTxnRequest { TransactionalId = "tx", ProducerId = pid, ProducerEpoch = epoch, Committed = true }, 0);
        Assert.Equal(0, commit.ErrorCode);
        var wrongEpoch = await f.Send<EndTxnResponse>(new EndTxnRequest { TransactionalId = "tx", ProducerId = pid, ProducerEpoch = (short)(epoch - 1), Committed = true }, 1);
        Assert.Equal((short)ErrorCode.InvalidProducerEpoch, wrongEpoch.ErrorCode);
        var wrongEpochV2 = await f.Send<EndTxnResponse>(new EndTxnRequest { TransactionalId = "tx", ProducerId = pid, ProducerEpoch = (short)(epoch - 1), Committed = true }, 4);
        Assert.Equal((short)ErrorCode.ProducerFenced, wrongEpochV2.ErrorCode);

        var committed = await f.Fetch("t", 0, isolation: 1);
        Assert.Equal((6L, 6L), (committed.LastStableOffset, committed.HighWatermark));
        var aborted = Assert.Single(committed.AbortedTransactions!);
        Assert.Equal((pid, 0L), (aborted.ProducerId, aborted.FirstOffset));
        // read_uncommitted reports no aborted transactions (null on the wire).
        var uncommitted = await f.Fetch("t", 0, isolation: 0);
        Assert.Null(uncommitted.AbortedTransactions);
        // Fetching after the aborted range: nothing to report.
        var later = await f.Fetch("t", 3, isolation: 1);
        Assert.Empty(later.AbortedTransactions!);
    }

    [Fact]
    public async Task ReadCommittedLongPollWakesWhenTheTransactionCommits()
    {
        await using var f = new StorageHandlerFixture();
        f.CreateTopic("t");
        var coordinator = f.Broker.Transactions;
        Assert.Equal(ErrorCode.None, coordinator.EnsureTransactionLog().Error);
        var init = coordinator.Coordinator.InitProducerId("tx", 10_000);
        coordinator.Coordinator.AddPartitionsToTxn("tx", init.ProducerId, init.ProducerEpoch, [new Samsa.Kafka.Broker.Log.TopicPartition("t", 0)]);
        Assert.Equal(0, (await f.Produce("t", StorageHandlerFixture.Batch(init.ProducerId, init.ProducerEpoch, 0, true, "x"))).ErrorCode);
        var started = System.Diagnostics.Stopwatch.StartNew();
        var poll = f.Send<FetchResponse>(new FetchRequest
        {
            MaxWaitMs = 10_000, MinBytes = 1, MaxBytes = 1 << 20, SessionEpoch = -1, IsolationLevel = 1, ReplicaId = -1,
            Topics = [new FetchRequest.FetchTopic { Topic = "t", Partitions = [new FetchRequest.FetchPartition { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20, CurrentLeaderEpoch = -1, LogStartOffset = -1 }] }],
        }, 12);
        await Task.Delay(300);
        Assert.False(poll.IsCompleted, "read_committed must wait while the only data is uncommitted");
        Assert.Equal(ErrorCode.None, coordinator.Coordinator.EndTxn("tx", init.ProducerId, init.ProducerEpoch, commit: true));
        var response = await poll.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(started.ElapsedMilliseconds < 9_000, "the commit marker woke the waiting fetch");
        var pd = response.Responses[0].Partitions[0];
        Assert.Equal(2, pd.LastStableOffset);
        Assert.Equal(["x"], HandlerFixtureValues(pd));
    }

    private static List<string> HandlerFixtureValues(FetchResponse.PartitionData pd)
    {
        var values = new List<string>();
        foreach (var batch in Samsa.Kafka.Protocol.Records.RecordBatch.Enumerate(pd.Records!.Value.Span, allowTruncatedTail: true))
        {
            if (batch.IsControl) continue;
            foreach (var r in batch.GetRecords()) values.Add(System.Text.Encoding.UTF8.GetString(r.Value));
        }
        return values;
    }

    [Fact]
    public async Task WriteTxnMarkersWritesControlBatchesAndEndsTheTransaction()
    {
        await using var f = new StorageHandlerFixture();
        f.CreateTopic("t");
        Assert.Equal(0, (await f.Produce("t", StorageHandlerFixture.Batch(77, 3, 0, true, "x"))).ErrorCode);
        Assert.Equal(0, f.Broker.Replicas.GetPartition("t", 0)!.Log.LastStableOffset);
        var r = await f.Send<WriteTxnMarkersResponse>(new WriteTxnMarkersRequest
        {
            Markers = [new WriteTxnMarkersRequest.WritableTxnMarker
            {
                ProducerId = 77, ProducerEpoch = 3, TransactionResult = true, CoordinatorEpoch = 0,
                Topics = [new WriteTxnMarkersRequest.WritableTxnMarkerTopic { Name = "t", PartitionIndexes = [0, 4] }],
            }],
        }, 1);
        var partitions = r.Markers[0].Topics[0].Partitions;
        Assert.Equal((0, (short)ErrorCode.UnknownTopicOrPartition), (partitions[0].ErrorCode, partitions[1].ErrorCode));
        var log = f.Broker.Replicas.GetPartition("t", 0)!.Log;
        Assert.Equal((2L, 2L), (log.LastStableOffset, log.LogEndOffset));
    }

    [Fact]
    public async Task TxnOffsetCommitNeedsTheTransactionsProducer()
    {
        await using var f = new StorageHandlerFixture();
        f.CreateTopic("t");
        var init = await f.Send<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = "tx", TransactionTimeoutMs = 10_000 }, 4);
        var addOffsets = await f.Send<AddOffsetsToTxnResponse>(new AddOffsetsToTxnRequest { TransactionalId = "tx", ProducerId = init.ProducerId, ProducerEpoch = init.ProducerEpoch, GroupId = "g" }, 3);
        Assert.Equal(0, addOffsets.ErrorCode);
        TxnOffsetCommitRequest Commit(long pid, short epoch) => new()
        {
            TransactionalId = "tx", GroupId = "g", ProducerId = pid, ProducerEpoch = epoch, GenerationId = -1, MemberId = "",
            Topics = [new TxnOffsetCommitRequest.TxnOffsetCommitRequestTopic
            {
                Name = "t", Partitions = [new TxnOffsetCommitRequest.TxnOffsetCommitRequestPartition { PartitionIndex = 0, CommittedOffset = 5, CommittedLeaderEpoch = -1 }],
            }, new TxnOffsetCommitRequest.TxnOffsetCommitRequestTopic
            {
                Name = "missing", Partitions = [new TxnOffsetCommitRequest.TxnOffsetCommitRequestPartition { PartitionIndex = 0, CommittedOffset = 5, CommittedLeaderEpoch = -1 }],
            }],
        };
        var wrong = await f.Send<TxnOffsetCommitResponse>(Commit(init.ProducerId + 1, init.ProducerEpoch), 3);
        Assert.Equal((short)ErrorCode.InvalidProducerIdMapping, wrong.Topics[0].Partitions[0].ErrorCode);
        var ok = await f.Send<TxnOffsetCommitResponse>(Commit(init.ProducerId, init.ProducerEpoch), 3);
        Assert.Equal(0, ok.Topics[0].Partitions[0].ErrorCode);
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, ok.Topics[1].Partitions[0].ErrorCode);
        // Not visible before the commit.
        var before = await f.Send<OffsetFetchResponse>(new OffsetFetchRequest { GroupId = "g", Topics = [new OffsetFetchRequest.OffsetFetchRequestTopic { Name = "t", PartitionIndexes = [0] }] }, 5);
        Assert.Equal(-1, before.Topics[0].Partitions[0].CommittedOffset);
        await f.Send<EndTxnResponse>(new EndTxnRequest { TransactionalId = "tx", ProducerId = init.ProducerId, ProducerEpoch = init.ProducerEpoch, Committed = true }, 3);
        var after = await f.Send<OffsetFetchResponse>(new OffsetFetchRequest { GroupId = "g", Topics = [new OffsetFetchRequest.OffsetFetchRequestTopic { Name = "t", PartitionIndexes = [0] }] }, 5);
        Assert.Equal(5, after.Topics[0].Partitions[0].CommittedOffset);
    }

    [Fact]
    public async Task ApiVersionsAdvertisesTheTransactionApis()
    {
        await using var f = new StorageHandlerFixture();
        var r = await f.Send<ApiVersionsResponse>(new ApiVersionsRequest { ClientSoftwareName = "t", ClientSoftwareVersion = "1" }, 3);
        var byKey = r.ApiKeys.ToDictionary(k => k.ApiKey, k => (k.MinVersion, k.MaxVersion));
        Assert.Equal((0, 5), byKey[22]);  // InitProducerId
        // Apache Kafka 4.2's maximum versions (InitProducerId v6, KIP-939, is unstable there).
        Assert.Equal((0, 5), byKey[24]);  // AddPartitionsToTxn: v4+ is broker-to-broker (KIP-890)
        Assert.Equal((0, 4), byKey[25]);  // AddOffsetsToTxn
        Assert.Equal((0, 5), byKey[26]);  // EndTxn: v5 is KIP-890 part 2
        Assert.Equal((0, 2), byKey[27]);  // WriteTxnMarkers: v2 KIP-1228
        Assert.Equal((0, 5), byKey[28]);  // TxnOffsetCommit: v5 KIP-890 part 2
        Assert.Equal((0, 0), byKey[61]);  // DescribeProducers
        Assert.Equal((0, 0), byKey[65]);  // DescribeTransactions
        Assert.Equal((0, 2), byKey[66]);  // ListTransactions: v2 KIP-1152
    }
}
