using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Broker.Transactions;
using Samsa.Kafka.Protocol;

namespace Samsa.Kafka.Broker.Tests.Transactions;

/// <summary>
/// The inter-broker channels of transactions after the broker at the other end was restarted: the
/// connection they kept open from before is dead, and upstream's NetworkClient, which notices an
/// idle connection's close, reconnects before sending. A marker sent over the dead connection used
/// to fail and wait for the coordinator's next tick (up to a second), leaving the transaction in
/// PrepareCommit — every AddPartitionsToTxn of the producer's next transaction answered
/// CONCURRENT_TRANSACTIONS meanwhile, more than kafkajs's default retries wait (the compat suite's
/// kafkajs transactions-commit on the cluster target right after coordinator-failover restarted a
/// broker). The tests run without the coordinator's tick: the channel alone must get the marker
/// written.
/// </summary>
public class TxnMarkerChannelTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    private static int FreePort()
    {
        var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        probe.Start();
        int port = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }

    private static async Task RestartOnSamePortAsync(LiveBroker broker)
    {
        await broker.Broker.DisposeAsync();
        await StartOnSamePortAsync(broker);
    }

    // The port of the stopped broker may take a moment to be free again.
    private static async Task StartOnSamePortAsync(LiveBroker broker)
    {
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                await broker.StartAsync();
                return;
            }
            catch (System.Net.Sockets.SocketException) when (attempt < 50)
            {
                await Task.Delay(100);
            }
        }
    }

    // A partition leader on a port that survives its restarts, and a marker channel to it (as
    // broker 1) whose CompletionDue events count on a semaphore.
    private sealed class MarkerSetup : IAsyncDisposable
    {
        public required LiveBroker Leader { get; init; }
        public required TxnMarkerChannel Channel { get; init; }
        public SemaphoreSlim Due { get; } = new(0);
        public required List<string> Lines { get; init; }
        public TopicPartition Partition { get; } = new("marked", 0);
        public string Log { get { lock (Lines) return string.Join(" | ", Lines); } }
        public long LogEndOffset => Leader.Broker.Replicas.GetPartition(Partition.Topic, Partition.Partition)!.Log.LogEndOffset;

        // Writes a marker through the channel the way the coordinator does (Write, then again
        // whenever the channel says a completion is due) until the leader confirmed it; false when
        // it did not within the patience.
        public async Task<bool> WriteMarkerAsync(long producerId)
        {
            var deadline = DateTime.UtcNow + Patience;
            while (true)
            {
                var error = Channel.Write(1, Partition, producerId, 0, 0, commit: true);
                if (error == ErrorCode.None) return true;
                Assert.Equal(ErrorCode.RequestTimedOut, error);
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero || !await Due.WaitAsync(left)) return false;
            }
        }

        public static async Task<MarkerSetup> StartAsync()
        {
            int port = FreePort();
            var leader = new LiveBroker(("listeners", $"PLAINTEXT://127.0.0.1:{port}"));
            await leader.StartAsync();
            leader.CreateTopic("marked");
            List<string> lines = [];
            var setup = new MarkerSetup
            {
                Leader = leader,
                Lines = lines,
                Channel = new TxnMarkerChannel(id => id == 1 ? ("127.0.0.1", port) : null, line => { lock (lines) lines.Add(line); }),
            };
            setup.Channel.CompletionDue += () => setup.Due.Release();
            return setup;
        }

        public async ValueTask DisposeAsync()
        {
            await Channel.DisposeAsync();
            await Leader.DisposeAsync();
        }
    }

    [Fact]
    public async Task AMarkerToALeaderRestartedSinceTheLastOneIsWrittenWithoutWaitingForATick()
    {
        await using var m = await MarkerSetup.StartAsync();

        Assert.True(await m.WriteMarkerAsync(producerId: 1000), "the first marker was not confirmed");
        await RestartOnSamePortAsync(m.Leader);
        var started = System.Diagnostics.Stopwatch.StartNew();
        Assert.True(await m.WriteMarkerAsync(producerId: 1001),
            $"the marker after the leader's restart was not confirmed within {Patience.TotalSeconds} s without the coordinator's tick; channel log: {m.Log}");
        // Both markers are in the leader's log (the restarted leader kept the first one).
        Assert.Equal(2, m.LogEndOffset);
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(5), $"took {started.ElapsedMilliseconds} ms");
    }

    [Fact]
    public async Task AMarkerForALeaderThatIsDownIsRetriedUntilItIsBack()
    {
        await using var m = await MarkerSetup.StartAsync();
        await m.Leader.Broker.DisposeAsync();

        // Refused while the leader is down (upstream's sender retries every 50 ms, reconnect.backoff.ms).
        var writing = m.WriteMarkerAsync(producerId: 2000);
        await Task.Delay(500);
        Assert.False(writing.IsCompleted);
        await StartOnSamePortAsync(m.Leader);
        Assert.True(await writing, $"the marker was not confirmed once the leader was back; channel log: {m.Log}");
        Assert.Equal(1, m.LogEndOffset);
        // Logged once, not at every retry.
        lock (m.Lines) Assert.Single(m.Lines, l => l.Contains("failed", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AVerificationAfterTheCoordinatorsRestartIsAnsweredByIt()
    {
        int port = FreePort();
        await using var coordinator = new LiveBroker(("listeners", $"PLAINTEXT://127.0.0.1:{port}"));
        await coordinator.StartAsync();
        coordinator.CreateTopic("verified");
        var tp = new TopicPartition("verified", 0);
        await using var channel = new TxnVerificationChannel(id => id == 1 ? ("127.0.0.1", port) : null, log: null);

        var before = await channel.SendAsync(1, "tx-unknown", 4000, 0, [tp], verifyOnly: true).WaitAsync(Patience);
        Assert.NotEqual(ErrorCode.NetworkException, before[tp]);
        await RestartOnSamePortAsync(coordinator);
        var after = await channel.SendAsync(1, "tx-unknown", 4000, 0, [tp], verifyOnly: true).WaitAsync(Patience);
        // Answered by the restarted coordinator as before, not refused with NETWORK_EXCEPTION
        // (which a partition leader turns into NOT_ENOUGH_REPLICAS for the producer).
        Assert.Equal(before[tp], after[tp]);
    }
}
