using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Broker.Transactions;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Tests.Transactions;

/// <summary>The coordinator's KIP-890 transitions without a broker: verification answers,
/// transaction version 2 epoch bumps, producer id rotation when the epoch runs out, and the
/// transaction log records that carry them across a reload.</summary>
public class Kip890CoordinatorTests
{
    private sealed class Env : ITransactionEnvironment
    {
        public readonly List<(int Partition, byte[] Key, byte[]? Value)> StateLog = [];
        public readonly List<(TopicPartition Partition, long ProducerId, short Epoch, bool Commit)> Markers = [];

        public ErrorCode AppendState(int partition, byte[] key, byte[]? value)
        {
            StateLog.Add((partition, key, value));
            return ErrorCode.None;
        }

        public ErrorCode WriteMarker(TopicPartition partition, long producerId, short producerEpoch, int coordinatorEpoch, bool commit)
        {
            Markers.Add((partition, producerId, producerEpoch, commit));
            return ErrorCode.None;
        }

        public bool PartitionExists(TopicPartition partition) => true;
        public TopicPartition? OffsetsPartitionFor(string groupId) => new TopicPartition("__consumer_offsets", 0);

        public List<TransactionLogEntry> Replay(int partition) =>
            StateLog.Where(r => r.Partition == partition).Select(r => TransactionRecords.Decode(r.Key, r.Value)!).ToList();
    }

    private readonly Env _env = new();
    private static readonly TopicPartition T0 = new("t", 0), T1 = new("t", 1);

    private TransactionCoordinator NewCoordinator()
    {
        var c = new TransactionCoordinator(new TransactionCoordinatorConfig { TransactionLogPartitions = 4 }, _env, new ProducerIdManager(null), () => 1_000_000);
        c.Activate(4, loading: false);
        return c;
    }

    [Fact]
    public void VerifyAnswersPerPartitionAndWritesNothing()
    {
        var c = NewCoordinator();
        var init = c.InitProducerId("tx", 60_000);
        int logged = _env.StateLog.Count;
        // No open transaction: nothing is in it.
        Assert.All(c.VerifyPartitions("tx", init.ProducerId, init.ProducerEpoch, [T0]).Values, e => Assert.Equal(ErrorCode.TransactionAbortable, e));
        c.AddPartitionsToTxn("tx", init.ProducerId, init.ProducerEpoch, [T0]);
        logged = _env.StateLog.Count;
        var answer = c.VerifyPartitions("tx", init.ProducerId, init.ProducerEpoch, [T0, T1]);
        Assert.Equal((ErrorCode.None, ErrorCode.TransactionAbortable), (answer[T0], answer[T1]));
        Assert.Equal(ErrorCode.ProducerFenced, c.VerifyPartitions("tx", init.ProducerId, (short)(init.ProducerEpoch + 1), [T0])[T0]);
        Assert.Equal(ErrorCode.InvalidProducerIdMapping, c.VerifyPartitions("tx", init.ProducerId + 1, init.ProducerEpoch, [T0])[T0]);
        Assert.Equal(ErrorCode.InvalidProducerIdMapping, c.VerifyPartitions("nobody", 1, 0, [T0])[T0]);
        Assert.Equal(ErrorCode.InvalidRequest, c.VerifyPartitions("", 1, 0, [T0])[T0]);
        Assert.Equal(logged, _env.StateLog.Count);
    }

    [Fact]
    public void Version2EndTxnBumpsTheEpochWritesMarkersWithItAndSurvivesAReload()
    {
        var c = NewCoordinator();
        var init = c.InitProducerId("tx", 60_000);
        Assert.Equal(ErrorCode.None, c.AddPartitionsFromBroker("tx", init.ProducerId, init.ProducerEpoch, [T0]));
        var end = c.EndTxn("tx", init.ProducerId, init.ProducerEpoch, commit: true, clientTransactionVersion: 2);
        Assert.Equal((ErrorCode.None, init.ProducerId, (short)(init.ProducerEpoch + 1)), (end.Error, end.ProducerId, end.ProducerEpoch));
        Assert.Equal((T0, init.ProducerId, (short)(init.ProducerEpoch + 1), true), Assert.Single(_env.Markers));

        // The records are version 1 values with ClientTransactionVersion 2; a new coordinator
        // replaying them recognises a retry.
        var last = _env.StateLog[^1];
        Assert.Equal(TransactionRecords.ValueVersionTv2, System.Buffers.Binary.BinaryPrimitives.ReadInt16BigEndian(last.Value));
        var reloaded = NewCoordinator();
        reloaded.LoadPartition(last.Partition, _env.Replay(last.Partition));
        var retry = reloaded.EndTxn("tx", init.ProducerId, init.ProducerEpoch, commit: true, clientTransactionVersion: 2);
        Assert.Equal((ErrorCode.None, (short)(init.ProducerEpoch + 1)), (retry.Error, retry.ProducerEpoch));
    }

    [Fact]
    public void Version2EndTxnWithAnExhaustedEpochRotatesTheProducerId()
    {
        var c = NewCoordinator();
        int partition = c.PartitionFor("tx");
        const long oldPid = 4242;
        const short exhausted = short.MaxValue - 1;
        var value = new TransactionLogValue
        {
            ProducerId = oldPid, ProducerEpoch = exhausted, TransactionTimeoutMs = 60_000, TransactionStatus = (sbyte)TransactionState.Ongoing,
            TransactionPartitions = [new TransactionLogValue.PartitionsSchema { Topic = "t", PartitionIds = [0] }],
            TransactionLastUpdateTimestampMs = 1, TransactionStartTimestampMs = 1, PreviousProducerId = -1, NextProducerId = -1, ClientTransactionVersion = 2,
        };
        c.LoadPartition(partition, [new TransactionLogEntry("tx", value)]);

        var end = c.EndTxn("tx", oldPid, exhausted, commit: true, clientTransactionVersion: 2);
        Assert.Equal(ErrorCode.None, end.Error);
        Assert.NotEqual(oldPid, end.ProducerId);
        Assert.Equal(0, end.ProducerEpoch);
        // The markers close the old producer's transaction under Short.MaxValue.
        Assert.Equal((T0, oldPid, short.MaxValue), (Assert.Single(_env.Markers) is var m ? (m.Partition, m.ProducerId, m.Epoch) : default));
        // A retry with the old id and epoch gets the new id.
        var retry = c.EndTxn("tx", oldPid, exhausted, commit: true, clientTransactionVersion: 2);
        Assert.Equal((ErrorCode.None, end.ProducerId, (short)0), (retry.Error, retry.ProducerId, retry.ProducerEpoch));
        // The new producer id starts the next transaction.
        Assert.Equal(ErrorCode.None, c.AddPartitionsFromBroker("tx", end.ProducerId, 0, [T1]));
    }

    [Fact]
    public void Version1TransactionsKeepTheirEpochAndVersion0Records()
    {
        var c = NewCoordinator();
        // The value version follows the finalized transaction.version (upstream
        // transactionLogValueVersion), 0 only at level 0; TxnVersionLevelTests covers each level.
        c.TransactionVersionLevel = () => 0;
        var init = c.InitProducerId("tx", 60_000);
        c.AddPartitionsToTxn("tx", init.ProducerId, init.ProducerEpoch, [T0]);
        var end = c.EndTxn("tx", init.ProducerId, init.ProducerEpoch, commit: false, clientTransactionVersion: 0);
        Assert.Equal((ErrorCode.None, init.ProducerEpoch), (end.Error, end.ProducerEpoch));
        Assert.Equal((T0, init.ProducerId, init.ProducerEpoch, false), Assert.Single(_env.Markers));
        Assert.All(_env.StateLog.Where(r => r.Value is not null),
            r => Assert.Equal(TransactionRecords.ValueVersion, System.Buffers.Binary.BinaryPrimitives.ReadInt16BigEndian(r.Value)));
    }
}

/// <summary>The leader's side when the coordinator is unreachable or answers errors: retriable
/// answers the producer retries, never an exception.</summary>
public class ProduceVerificationMappingTests
{
    [Fact]
    public async Task AnUnreachableCoordinatorAnswersNetworkExceptionWhichProducersRetry()
    {
        // A port nobody listens on.
        var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        probe.Start();
        int port = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        await using var channel = new TxnVerificationChannel(id => id == 2 ? ("127.0.0.1", port) : null, log: null);
        var tp = new TopicPartition("t", 0);
        var unreachable = await channel.SendAsync(2, "tx", 1, 0, [tp], verifyOnly: true).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(ErrorCode.NetworkException, unreachable[tp]);
        var unknownBroker = await channel.SendAsync(3, "tx", 1, 0, [tp], verifyOnly: true);
        Assert.Equal(ErrorCode.CoordinatorNotAvailable, unknownBroker[tp]);

        var refusal = ProduceVerification.ToAppendError(ProduceVerification.MapForClient(unreachable[tp], TransactionSupportedOperation.DefaultError));
        Assert.Equal(ErrorCode.NotEnoughReplicas, refusal.Error);
        Assert.Equal("Unable to verify the partition has been added to the transaction. Underlying error: NETWORK_EXCEPTION", refusal.Message);
    }

    [Theory]
    [InlineData(ErrorCode.TransactionAbortable, TransactionSupportedOperation.DefaultError, ErrorCode.InvalidTxnState)]
    [InlineData(ErrorCode.TransactionAbortable, TransactionSupportedOperation.GenericErrorSupported, ErrorCode.TransactionAbortable)]
    [InlineData(ErrorCode.TransactionAbortable, TransactionSupportedOperation.AddPartition, ErrorCode.TransactionAbortable)]
    [InlineData(ErrorCode.ProducerFenced, TransactionSupportedOperation.DefaultError, ErrorCode.InvalidProducerEpoch)]
    [InlineData(ErrorCode.ClusterAuthorizationFailed, TransactionSupportedOperation.DefaultError, ErrorCode.InvalidTxnState)]
    [InlineData(ErrorCode.ConcurrentTransactions, TransactionSupportedOperation.AddPartition, ErrorCode.NotEnoughReplicas)]
    [InlineData(ErrorCode.CoordinatorLoadInProgress, TransactionSupportedOperation.DefaultError, ErrorCode.NotEnoughReplicas)]
    [InlineData(ErrorCode.InvalidProducerIdMapping, TransactionSupportedOperation.DefaultError, ErrorCode.InvalidProducerIdMapping)]
    public void CoordinatorAnswersBecomeTheProduceErrorsUpstreamReturns(ErrorCode coordinator, TransactionSupportedOperation operation, ErrorCode produce) =>
        Assert.Equal(produce, ProduceVerification.ToAppendError(ProduceVerification.MapForClient(coordinator, operation)).Error);

    [Theory]
    [InlineData(3, TransactionSupportedOperation.DefaultError)]
    [InlineData(10, TransactionSupportedOperation.DefaultError)]
    [InlineData(11, TransactionSupportedOperation.GenericErrorSupported)]
    [InlineData(12, TransactionSupportedOperation.AddPartition)]
    [InlineData(13, TransactionSupportedOperation.AddPartition)]
    public void ProduceVersionsChooseTheOperation(short version, TransactionSupportedOperation expected) =>
        Assert.Equal(expected, ProduceVerification.ForProduceVersion(version));
}
