using Confluent.Kafka;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Tests.Transactions;

/// <summary>A broker on 127.0.0.1 (ephemeral port) with log files in a temporary directory, that can
/// be stopped and started again on the same directory.</summary>
public sealed class LiveBroker : IAsyncDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "samsa-txn-" + Guid.NewGuid().ToString("N"));
    private readonly (string, string)[] _extra;

    public LiveBroker(params (string Key, string Value)[] extra) { _extra = extra; }

    public KafkaBroker Broker { get; private set; } = null!;
    public string BootstrapServers => $"127.0.0.1:{Broker.BoundEndPoint.Port}";

    public async Task StartAsync()
    {
        var props = new Dictionary<string, string>
        {
            ["broker.id"] = "1",
            ["listeners"] = "PLAINTEXT://127.0.0.1:0",
            ["log.dirs"] = _dir,
            ["offsets.topic.replication.factor"] = "1",
            ["offsets.topic.num.partitions"] = "3",
            ["transaction.state.log.replication.factor"] = "1",
            ["transaction.state.log.num.partitions"] = "3",
            ["transaction.state.log.min.isr"] = "1",
            ["group.initial.rebalance.delay.ms"] = "0",
            ["transaction.abort.timed.out.transaction.cleanup.interval.ms"] = "200",
        };
        foreach (var (k, v) in _extra) props[k] = v;
        Broker = new KafkaBroker(new BrokerConfig(props));
        await Broker.StartAsync();
    }

    public async Task RestartAsync()
    {
        await Broker.DisposeAsync();
        await StartAsync();
    }

    public void CreateTopic(string name, int partitions = 1)
    {
        var (error, message, _) = Broker.Replicas.CreateTopic(name, partitions, 1, new Dictionary<string, string>(), validateOnly: false);
        Assert.True(error == Samsa.Kafka.Protocol.ErrorCode.None, $"{error} {message}");
    }

    public async ValueTask DisposeAsync()
    {
        await Broker.DisposeAsync();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>End-to-end with librdkafka (Confluent.Kafka 2.15.1 over Debian's librdkafka 2.0.2):
/// idempotent retries, transactions committed and aborted, isolation levels, consume-transform-produce,
/// fencing and a broker restart in the middle of a transaction.</summary>
[Collection("librdkafka")]
public class ClientTransactionTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private static IProducer<string, string> Producer(LiveBroker b, string? transactionalId = null, int txnTimeoutMs = 60_000, bool idempotent = true) =>
        new ProducerBuilder<string, string>(new ProducerConfig
        {
            BootstrapServers = b.BootstrapServers,
            EnableIdempotence = idempotent,
            TransactionalId = transactionalId,
            TransactionTimeoutMs = txnTimeoutMs,
            LingerMs = 5,
            MessageSendMaxRetries = 20,
            RetryBackoffMs = 50,
            SocketTimeoutMs = Math.Min(10_000, txnTimeoutMs),
        }).Build();

    // Confluent.Kafka 2.15.1's consumer calls librdkafka functions newer than Debian's 2.0.2
    // (rd_kafka_message_leader_epoch), so consumers here are kcat and confluent-kafka-python, both on
    // the same librdkafka — a real client's read_committed filtering either way.

    /// <summary>Reads partitions from the start to their end with kcat, returning the values.</summary>
    private static List<string> ReadAll(LiveBroker b, string topic, IsolationLevel isolation, int partitions = 1)
    {
        var (exit, stdout, stderr) = Run("kcat", ["-b", b.BootstrapServers, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
            "-f", "%s\\n", "-X", "isolation.level=" + (isolation == IsolationLevel.ReadCommitted ? "read_committed" : "read_uncommitted")]);
        Assert.True(exit == 0, $"kcat failed ({exit}): {stderr}");
        var values = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
        return values;
    }

    internal static (int Exit, string Stdout, string Stderr) Run(string file, IEnumerable<string> args)
    {
        var psi = new System.Diagnostics.ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var process = System.Diagnostics.Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(60_000))
        {
            process.Kill();
            throw new TimeoutException($"{file} did not finish");
        }
        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    [Fact]
    public async Task IdempotentProducerRetriesAfterLostResponsesWithoutDuplicates()
    {
        await using var b = new LiveBroker();
        await b.StartAsync();
        b.CreateTopic("idem");
        int dropped = 0;
        // Lose the answers to the first three Produce requests: the client retries the same batches.
        b.Broker.DropResponseForTests = h => h.RequestApiKey == (short)ApiKey.Produce && Interlocked.Increment(ref dropped) <= 3;
        using (var p = Producer(b))
        {
            var sends = Enumerable.Range(0, 50).Select(i => p.ProduceAsync("idem", new Message<string, string> { Key = "k", Value = $"v{i}" })).ToList();
            await Task.WhenAll(sends);
            p.Flush(Timeout);
        }
        Assert.True(dropped > 3, "responses were dropped and the producer retried");
        b.Broker.DropResponseForTests = null;
        var values = ReadAll(b, "idem", IsolationLevel.ReadUncommitted);
        Assert.Equal(Enumerable.Range(0, 50).Select(i => $"v{i}"), values);
        // DescribeProducers shows the one idempotent producer with its last sequence.
        var producers = b.Broker.Replicas.GetPartition("idem", 0)!.Log.Producers();
        var producer = Assert.Single(producers);
        Assert.Equal(49, producer.LastSequence);
    }

    [Fact]
    public async Task CommittedAndAbortedTransactionsByIsolationLevel()
    {
        await using var b = new LiveBroker();
        await b.StartAsync();
        b.CreateTopic("tx", 2);
        using (var p = Producer(b, "tx-producer"))
        {
            p.InitTransactions(Timeout);
            p.BeginTransaction();
            for (int i = 0; i < 3; i++) await p.ProduceAsync(new TopicPartition("tx", i % 2), new Message<string, string> { Key = "k", Value = $"c1-{i}" });
            p.CommitTransaction(Timeout);
            p.BeginTransaction();
            for (int i = 0; i < 2; i++) await p.ProduceAsync(new TopicPartition("tx", i % 2), new Message<string, string> { Key = "k", Value = $"a-{i}" });
            p.AbortTransaction(Timeout);
            p.BeginTransaction();
            await p.ProduceAsync(new TopicPartition("tx", 0), new Message<string, string> { Key = "k", Value = "c2" });
            p.CommitTransaction(Timeout);
        }
        var committed = ReadAll(b, "tx", IsolationLevel.ReadCommitted, partitions: 2);
        Assert.Equal(["c1-0", "c1-1", "c1-2", "c2"], committed.Order());
        var uncommitted = ReadAll(b, "tx", IsolationLevel.ReadUncommitted, partitions: 2);
        Assert.Equal(["a-0", "a-1", "c1-0", "c1-1", "c1-2", "c2"], uncommitted.Order());
        // The abort is in the partitions' aborted-transaction index; the log is stable again.
        var log = b.Broker.Replicas.GetPartition("tx", 0)!.Log;
        Assert.Single(log.AbortedTransactions(0, log.LogEndOffset));
        Assert.Equal(log.LogEndOffset, log.LastStableOffset);
    }

    [Fact]
    public async Task OpenTransactionHoldsReadCommittedAtTheLastStableOffset()
    {
        await using var b = new LiveBroker();
        await b.StartAsync();
        b.CreateTopic("open");
        using var plain = Producer(b, idempotent: false);
        await plain.ProduceAsync("open", new Message<string, string> { Key = "k", Value = "before" });
        using var p = Producer(b, "open-producer");
        p.InitTransactions(Timeout);
        p.BeginTransaction();
        await p.ProduceAsync("open", new Message<string, string> { Key = "k", Value = "pending" });
        await plain.ProduceAsync("open", new Message<string, string> { Key = "k", Value = "after" });

        Assert.Equal(["before"], ReadAll(b, "open", IsolationLevel.ReadCommitted));
        Assert.Equal(["before", "pending", "after"], ReadAll(b, "open", IsolationLevel.ReadUncommitted));
        var log = b.Broker.Replicas.GetPartition("open", 0)!.Log;
        Assert.Equal(1, log.LastStableOffset);
        // ListOffsets LATEST: read_committed answers the last stable offset.
        Assert.Equal(1, ListLatest(b, isolation: 1));
        Assert.Equal(3, ListLatest(b, isolation: 0));

        p.CommitTransaction(Timeout);
        Assert.Equal(["before", "pending", "after"], ReadAll(b, "open", IsolationLevel.ReadCommitted));
    }

    private static long ListLatest(LiveBroker b, sbyte isolation)
    {
        var request = new ListOffsetsRequest
        {
            ReplicaId = -1, IsolationLevel = isolation,
            Topics = [new ListOffsetsRequest.ListOffsetsTopic { Name = "open", Partitions = [new ListOffsetsRequest.ListOffsetsPartition { PartitionIndex = 0, Timestamp = -1 }] }],
        };
        var context = new Samsa.Kafka.Broker.Handlers.RequestContext { Header = new RequestHeader { RequestApiKey = ListOffsetsRequest.ApiKey, RequestApiVersion = 5 }, Broker = b.Broker };
        var response = (ListOffsetsResponse)Samsa.Kafka.Broker.Handlers.ListOffsetsHandler.HandleAsync(context, request).AsTask().Result!;
        return response.Topics[0].Partitions[0].Offset;
    }

    // A consumer group member reads, a transactional producer writes the transformed records and
    // sends the consumer's offsets to the transaction (KIP-447 group metadata): aborted once, then
    // committed. The committed offset moves only with the commit.
    private const string ConsumeTransformProduceScript = """
        import sys, time
        import confluent_kafka as ck
        bs = sys.argv[1]
        c = ck.Consumer({'bootstrap.servers': bs, 'group.id': 'ctp', 'auto.offset.reset': 'earliest',
                         'enable.auto.commit': False, 'isolation.level': 'read_committed'})
        p = ck.Producer({'bootstrap.servers': bs, 'transactional.id': 'ctp-producer'})
        p.init_transactions(30)
        c.subscribe(['in'])
        msgs = []
        deadline = time.time() + 30
        while len(msgs) < 6 and time.time() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                msgs.append(m)
        print('consumed', len(msgs))
        tp = lambda o: [ck.TopicPartition('in', 0, o)]
        p.begin_transaction()
        for m in msgs[:3]:
            p.produce('out', key=m.key(), value=m.value().upper())
        p.send_offsets_to_transaction(tp(msgs[2].offset() + 1), c.consumer_group_metadata(), 30)
        p.flush(30)
        p.abort_transaction(30)
        print('after-abort', c.committed([ck.TopicPartition('in', 0)], 30)[0].offset)
        p.begin_transaction()
        for m in msgs:
            p.produce('out', key=m.key(), value=m.value().upper())
        p.send_offsets_to_transaction(tp(msgs[-1].offset() + 1), c.consumer_group_metadata(), 30)
        p.commit_transaction(30)
        print('after-commit', c.committed([ck.TopicPartition('in', 0)], 30)[0].offset)
        c.close()
        """;

    [Fact]
    public async Task ConsumeTransformProduceCommitsOffsetsWithTheTransaction()
    {
        await using var b = new LiveBroker();
        await b.StartAsync();
        b.CreateTopic("in");
        b.CreateTopic("out");
        using (var seed = Producer(b, idempotent: false))
            for (int i = 0; i < 6; i++) await seed.ProduceAsync("in", new Message<string, string> { Key = "k", Value = $"m{i}" });
        var script = Path.Combine(Path.GetTempPath(), $"samsa-ctp-{Guid.NewGuid():N}.py");
        await File.WriteAllTextAsync(script, ConsumeTransformProduceScript);
        try
        {
            var (exit, stdout, stderr) = Run("/usr/bin/python3", [script, b.BootstrapServers]);
            Assert.True(exit == 0, $"python failed ({exit}): {stdout}\n{stderr}");
            var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(["consumed 6", "after-abort -1001", "after-commit 6"], lines);
        }
        finally
        {
            File.Delete(script);
        }
        Assert.Equal(Enumerable.Range(0, 6).Select(i => $"M{i}"), ReadAll(b, "out", IsolationLevel.ReadCommitted));
        // The aborted first attempt is in the log, visible to read_uncommitted only.
        Assert.Equal(9, ReadAll(b, "out", IsolationLevel.ReadUncommitted).Count);
        var (_, offsets) = b.Broker.Groups.Coordinator.FetchOffsets("ctp", [new Samsa.Kafka.Broker.Log.TopicPartition("in", 0)]);
        Assert.Equal(6, offsets[0].Offset!.Offset);
    }

    [Fact]
    public async Task SecondProducerWithSameTransactionalIdFencesTheFirst()
    {
        await using var b = new LiveBroker();
        await b.StartAsync();
        b.CreateTopic("fence");
        using var first = Producer(b, "shared-id");
        first.InitTransactions(Timeout);
        first.BeginTransaction();
        await first.ProduceAsync("fence", new Message<string, string> { Key = "k", Value = "zombie" });

        using var second = Producer(b, "shared-id");
        second.InitTransactions(Timeout);
        second.BeginTransaction();
        await second.ProduceAsync("fence", new Message<string, string> { Key = "k", Value = "live" });
        second.CommitTransaction(Timeout);

        var error = Assert.ThrowsAny<KafkaException>(() => first.CommitTransaction(Timeout));
        Assert.True(error.Error.IsFatal || error is KafkaTxnRequiresAbortException,
            $"the fenced producer cannot commit: {error.Error.Code} {error.Message}");
        Assert.Equal(["live"], ReadAll(b, "fence", IsolationLevel.ReadCommitted));
    }

    [Fact]
    public async Task BrokerRestartMidTransactionNeverShowsATornTransaction()
    {
        await using var b = new LiveBroker(("transaction.max.timeout.ms", "900000"));
        await b.StartAsync();
        b.CreateTopic("restart", 2);
        using (var p = Producer(b, "restart-done"))
        {
            p.InitTransactions(Timeout);
            p.BeginTransaction();
            await p.ProduceAsync(new TopicPartition("restart", 0), new Message<string, string> { Key = "k", Value = "committed-0" });
            await p.ProduceAsync(new TopicPartition("restart", 1), new Message<string, string> { Key = "k", Value = "committed-1" });
            p.CommitTransaction(Timeout);
        }
        // A transaction left open when the broker stops, with a short timeout.
        var open = Producer(b, "restart-open", txnTimeoutMs: 5_000);
        open.InitTransactions(Timeout);
        open.BeginTransaction();
        await open.ProduceAsync(new TopicPartition("restart", 0), new Message<string, string> { Key = "k", Value = "torn-0" });
        await open.ProduceAsync(new TopicPartition("restart", 1), new Message<string, string> { Key = "k", Value = "torn-1" });
        await b.RestartAsync();
        open.Dispose();

        // Right after the restart the open transaction still holds the last stable offset.
        var early = ReadAll(b, "restart", IsolationLevel.ReadCommitted, partitions: 2);
        Assert.Equal(["committed-0", "committed-1"], early.Order());
        // The coordinator reloaded it and aborts it after its timeout; then both partitions are stable.
        var deadline = DateTime.UtcNow + Timeout;
        var coordinator = b.Broker.Transactions.Coordinator;
        while (DateTime.UtcNow < deadline && coordinator.Describe("restart-open").Description?.State != Samsa.Kafka.Broker.Transactions.TransactionState.CompleteAbort)
            await Task.Delay(100);
        Assert.Equal(Samsa.Kafka.Broker.Transactions.TransactionState.CompleteAbort, coordinator.Describe("restart-open").Description?.State);
        Assert.Equal(Samsa.Kafka.Broker.Transactions.TransactionState.CompleteCommit, coordinator.Describe("restart-done").Description?.State);
        foreach (int i in new[] { 0, 1 })
        {
            var log = b.Broker.Replicas.GetPartition("restart", i)!.Log;
            Assert.Equal(log.LogEndOffset, log.LastStableOffset);
        }
        var committed = ReadAll(b, "restart", IsolationLevel.ReadCommitted, partitions: 2);
        Assert.Equal(["committed-0", "committed-1"], committed.Order());
        // A new producer with the id starts cleanly after the abort.
        using var again = Producer(b, "restart-open");
        again.InitTransactions(Timeout);
        again.BeginTransaction();
        await again.ProduceAsync(new TopicPartition("restart", 0), new Message<string, string> { Key = "k", Value = "later" });
        again.CommitTransaction(Timeout);
        Assert.Equal(["committed-0", "committed-1", "later"], ReadAll(b, "restart", IsolationLevel.ReadCommitted, partitions: 2).Order());
    }
}
