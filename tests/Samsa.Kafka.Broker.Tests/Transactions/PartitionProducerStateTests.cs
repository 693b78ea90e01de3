using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Tests.Transactions;

/// <summary>
/// The partition's producer state as the broker keeps it: producer.id.expiration.ms (and the
/// internal producer.id.expiration.check.interval.ms) reach the logs, and the coordinator epoch of
/// COMMIT/ABORT markers is recorded (DescribeProducers) and fences markers of older coordinators
/// (upstream ProducerAppendInfo.checkCoordinatorEpoch).
/// </summary>
public class PartitionProducerStateTests
{
    private static async Task<List<DescribeProducersResponse.ProducerState>> Producers(StorageHandlerFixture f, string topic)
    {
        var described = await f.Send<DescribeProducersResponse>(new DescribeProducersRequest
        {
            Topics = [new DescribeProducersRequest.TopicRequest { Name = topic, PartitionIndexes = [0] }],
        }, 0);
        Assert.Equal(0, described.Topics[0].Partitions[0].ErrorCode);
        return described.Topics[0].Partitions[0].ActiveProducers;
    }

    private static async Task<short> WriteMarker(StorageHandlerFixture f, long producerId, short producerEpoch, int coordinatorEpoch, bool commit)
    {
        var r = await f.Send<WriteTxnMarkersResponse>(new WriteTxnMarkersRequest
        {
            Markers = [new WriteTxnMarkersRequest.WritableTxnMarker
            {
                ProducerId = producerId, ProducerEpoch = producerEpoch, TransactionResult = commit, CoordinatorEpoch = coordinatorEpoch,
                Topics = [new WriteTxnMarkersRequest.WritableTxnMarkerTopic { Name = "t", PartitionIndexes = [0] }],
            }],
        }, 1);
        return r.Markers[0].Topics[0].Partitions[0].ErrorCode;
    }

    [Fact]
    public async Task IdleProducersExpireAfterTheDynamicProducerIdExpiration()
    {
        await using var f = new StorageHandlerFixture(extraConfig: new Dictionary<string, string>
        {
            ["producer.id.expiration.check.interval.ms"] = "50",
        });
        f.CreateTopic("t");
        var init = await f.Send<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = null, TransactionTimeoutMs = 1000 }, 4);
        Assert.Equal(0, (await f.Produce("t", StorageHandlerFixture.Batch(init.ProducerId, 0, 0, false, "a"))).ErrorCode);
        // An open transaction keeps its producer however old.
        Assert.Equal(0, (await f.Produce("t", StorageHandlerFixture.Batch(4242, 0, 0, true, "x"))).ErrorCode);
        await Task.Delay(300);
        Assert.Equal(2, (await Producers(f, "t")).Count);

        // producer.id.expiration.ms is a dynamic broker config (cluster default here).
        var altered = await f.Send<IncrementalAlterConfigsResponse>(new IncrementalAlterConfigsRequest
        {
            Resources = [new() { ResourceType = 4, ResourceName = "", Configs = [new() { Name = "producer.id.expiration.ms", ConfigOperation = 0, Value = "200" }] }],
        }, 1);
        Assert.Equal(0, altered.Responses[0].ErrorCode);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while ((await Producers(f, "t")).Count > 1 && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.Equal(4242, Assert.Single(await Producers(f, "t")).ProducerId);

        // As upstream, the forgotten producer may go on at any sequence.
        Assert.Equal(0, (await f.Produce("t", StorageHandlerFixture.Batch(init.ProducerId, 0, 6, false, "b"))).ErrorCode);
    }

    [Fact]
    public async Task ASingleNodeDropsExpiredProducersWhenItStarts()
    {
        var config = new Dictionary<string, string> { ["producer.id.expiration.ms"] = "3600000" };
        string dir;
        await using (var f = new StorageHandlerFixture(extraConfig: config))
        {
            f.KeepFiles = true;
            dir = f.Directory;
            f.CreateTopic("t");
            long twoHoursAgo = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - 7_200_000;
            using var old = new Samsa.Kafka.Protocol.Records.RecordBatchBuilder { ProducerId = 900, ProducerEpoch = 0, BaseSequence = 0 };
            old.Append(twoHoursAgo, null, "old"u8.ToArray());
            Assert.Equal(0, (await f.Produce("t", old.Build())).ErrorCode);
            Assert.Equal(0, (await f.Produce("t", StorageHandlerFixture.Batch(901, 0, 0, false, "new"))).ErrorCode);
            // The next check is ten minutes away (producer.id.expiration.check.interval.ms).
            Assert.Equal(2, (await Producers(f, "t")).Count);
        }
        await using var restarted = new StorageHandlerFixture(dir, config);
        Assert.Equal(901, Assert.Single(await Producers(restarted, "t")).ProducerId);
    }

    [Fact]
    public async Task TheInternalCheckIntervalIsNotListedByDescribeConfigsUnlessSet()
    {
        await using var f = new StorageHandlerFixture();
        var r = await f.Send<DescribeConfigsResponse>(new DescribeConfigsRequest
        {
            Resources = [new() { ResourceType = 4, ResourceName = "1", ConfigurationKeys = null }],
        }, 4);
        var names = r.Results[0].Configs.Select(c => c.Name).ToHashSet();
        Assert.Contains("producer.id.expiration.ms", names);
        Assert.DoesNotContain("producer.id.expiration.check.interval.ms", names);
    }

    [Fact]
    public async Task ACommittedTransactionRecordsTheCoordinatorEpochOfItsMarker()
    {
        await using var f = new StorageHandlerFixture();
        f.CreateTopic("t");
        await f.Send<FindCoordinatorResponse>(new FindCoordinatorRequest { Key = "tx", KeyType = 1 }, 3);
        var init = await f.Send<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = "tx", TransactionTimeoutMs = 10_000 }, 4);
        var add = await f.Send<AddPartitionsToTxnResponse>(new AddPartitionsToTxnRequest
        {
            V3AndBelowTransactionalId = "tx", V3AndBelowProducerId = init.ProducerId, V3AndBelowProducerEpoch = init.ProducerEpoch,
            V3AndBelowTopics = [new AddPartitionsToTxnRequest.AddPartitionsToTxnTopic { Name = "t", Partitions = [0] }],
        }, 3);
        Assert.Equal(0, add.ResultsByTopicV3AndBelow[0].ResultsByPartition[0].PartitionErrorCode);
        Assert.Equal(0, (await f.Produce("t", StorageHandlerFixture.Batch(init.ProducerId, init.ProducerEpoch, 0, true, "c"))).ErrorCode);
        Assert.Equal(-1, Assert.Single(await Producers(f, "t")).CoordinatorEpoch);
        var commit = await f.Send<EndTxnResponse>(new EndTxnRequest { TransactionalId = "tx", ProducerId = init.ProducerId, ProducerEpoch = init.ProducerEpoch, Committed = true }, 3);
        Assert.Equal(0, commit.ErrorCode);
        // The coordinator epoch is the leader epoch of the transaction log partition it coordinates from.
        var coordinatorPartition = f.Broker.Replicas.GetPartition("__transaction_state", f.Broker.Transactions.Coordinator.PartitionFor("tx"))!;
        var producer = Assert.Single(await Producers(f, "t"));
        Assert.Equal((init.ProducerId, coordinatorPartition.LeaderEpoch, -1L), (producer.ProducerId, producer.CoordinatorEpoch, producer.CurrentTxnStartOffset));
    }

    [Fact]
    public async Task AMarkerFromAnOlderCoordinatorEpochIsFenced()
    {
        await using var f = new StorageHandlerFixture();
        f.CreateTopic("t");
        Assert.Equal(0, (await f.Produce("t", StorageHandlerFixture.Batch(77, 3, 0, true, "x"))).ErrorCode);
        Assert.Equal(0, await WriteMarker(f, 77, 3, coordinatorEpoch: 5, commit: true));
        Assert.Equal(5, Assert.Single(await Producers(f, "t")).CoordinatorEpoch);

        Assert.Equal(0, (await f.Produce("t", StorageHandlerFixture.Batch(77, 3, 1, true, "y"))).ErrorCode);
        var log = f.Broker.Replicas.GetPartition("t", 0)!.Log;
        long end = log.LogEndOffset;
        Assert.Equal((short)ErrorCode.TransactionCoordinatorFenced, await WriteMarker(f, 77, 3, coordinatorEpoch: 4, commit: false));
        Assert.Equal((end, 2L), (log.LogEndOffset, log.LastStableOffset));
        Assert.Equal(0, await WriteMarker(f, 77, 3, coordinatorEpoch: 6, commit: false));
        Assert.Equal((end + 1, end + 1), (log.LogEndOffset, log.LastStableOffset));
        Assert.Equal(6, Assert.Single(await Producers(f, "t")).CoordinatorEpoch);
    }
}
