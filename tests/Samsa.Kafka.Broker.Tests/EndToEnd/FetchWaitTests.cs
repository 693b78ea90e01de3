using System.Buffers.Binary;
using System.Diagnostics;
using System.Net.Sockets;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Protocol.Messages;
using Xunit.Abstractions;

namespace Samsa.Kafka.Broker.Tests.EndToEnd;

/// <summary>
/// Long-poll Fetch on an idle partition over TCP: it returns when max_wait_ms is up, not a timing
/// wheel revolution later; and a client that goes away while its Fetch waits frees the
/// connection and the purgatory entry at once, however long the max_wait.
/// </summary>
public class FetchWaitTests
{
    internal static async Task CreateTopicAsync(int port, string topic)
    {
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", port);
        var r = await c.SendAsync<CreateTopicsResponse>(new CreateTopicsRequest
        {
            TimeoutMs = 30_000, Topics = [new() { Name = topic, NumPartitions = 1, ReplicationFactor = 1 }],
        }, 7);
        Assert.Equal(0, r!.Topics[0].ErrorCode);
    }

    internal static FetchRequest IdleFetch(string topic, int maxWaitMs) => new()
    {
        MaxWaitMs = maxWaitMs, MinBytes = 1, MaxBytes = 1 << 20, SessionEpoch = -1,
        Topics = [new() { Topic = topic, Partitions = [new() { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20 }] }],
    };

    private static async Task<Socket> ParkFetchAsync(LiveBroker live, string topic, int maxWaitMs)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync("127.0.0.1", live.Broker.BoundEndPoint.Port);
        await socket.SendAsync(KafkaWireClient.EncodeRequest(IdleFetch(topic, maxWaitMs), 12, 1, "parked"));
        await WaitUntilAsync(() => live.Broker.FetchPurgatory.Watched == 1, "the Fetch waits in the purgatory");
        Assert.Equal(1, live.Broker.Timer.Count);
        return socket;
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what, int timeoutMs = 3000)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            if (sw.ElapsedMilliseconds > timeoutMs) Assert.Fail($"not within {timeoutMs} ms: {what}");
            await Task.Delay(10);
        }
    }

    [Fact]
    public async Task ClosingTheClientReleasesAFetchParkedForTenMinutes()
    {
        await using var live = await LiveBroker.StartAsync();
        await CreateTopicAsync(live.Broker.BoundEndPoint.Port, "parked");
        await WaitUntilAsync(() => live.Broker.ClientConnectionCount == 0, "the setup connection closed");

        var socket = await ParkFetchAsync(live, "parked", 600_000);
        Assert.Equal(1, live.Broker.ClientConnectionCount);
        var sw = Stopwatch.StartNew();
        socket.Close();
        await WaitUntilAsync(() => live.Broker.FetchPurgatory.Watched == 0, "the closed client's Fetch leaves the purgatory", 2000);
        await WaitUntilAsync(() => live.Broker.Timer.Count == 0, "its timeout is disarmed", 2000);
        await WaitUntilAsync(() => live.Broker.ClientConnectionCount == 0, "the broker closes its side of the connection", 2000);
        Assert.True(sw.ElapsedMilliseconds < 2000);
    }

    [Fact]
    public async Task AClientThatStopsSendingSeesTheBrokerCloseWhileItsFetchWaits()
    {
        await using var live = await LiveBroker.StartAsync();
        await CreateTopicAsync(live.Broker.BoundEndPoint.Port, "half");
        using var socket = await ParkFetchAsync(live, "half", 600_000);
        // FIN from the client: the broker's side would sit in CLOSE-WAIT until it closes too.
        socket.Shutdown(SocketShutdown.Send);
        var buffer = new byte[16];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        int read = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
        Assert.Equal(0, read); // end of stream: the broker closed its socket, without answering
        await WaitUntilAsync(() => live.Broker.FetchPurgatory.Watched == 0, "the Fetch leaves the purgatory", 2000);
    }

    [Fact]
    public async Task DataArrivingReleasesAWaitingFetchAtOnce()
    {
        await using var live = await LiveBroker.StartAsync();
        int port = live.Broker.BoundEndPoint.Port;
        await CreateTopicAsync(port, "wake");
        await using var consumer = await KafkaWireClient.ConnectAsync("127.0.0.1", port);
        var sw = Stopwatch.StartNew();
        var fetch = consumer.SendAsync<FetchResponse>(IdleFetch("wake", 30_000), 12);
        await WaitUntilAsync(() => live.Broker.FetchPurgatory.Watched == 1, "the Fetch waits");
        await using var producer = await KafkaWireClient.ConnectAsync("127.0.0.1", port);
        var batch = Samsa.Kafka.Protocol.Records.RecordBatchBuilder.Build([("k"u8.ToArray(), "v"u8.ToArray())], DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        var produced = await producer.SendAsync<ProduceResponse>(new ProduceRequest
        {
            Acks = 1, TimeoutMs = 5000,
            TopicData = [new() { Name = "wake", PartitionData = [new() { Index = 0, Records = batch }] }],
        }, 9);
        Assert.Equal(0, produced!.Responses[0].PartitionResponses[0].ErrorCode);
        var response = await fetch.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(response!.Responses[0].Partitions[0].Records?.Length > 0);
        Assert.True(sw.ElapsedMilliseconds < 5000);
    }
}

/// <summary>
/// Expiry accuracy of long-poll Fetch over TCP: many idle fetches with max_wait 10, 100, 250 and
/// 1000 ms, p99 of (return time - max_wait) at most 50 ms. Before the timing wheel rounded
/// deadlines up, a third to half of them came back a wheel revolution (2.56 s) late. It measures
/// latency, so it runs alone rather than beside other test classes.
/// </summary>
[Collection(FetchExpiryCollection.Name)]
public class FetchExpiryAccuracyTests(ITestOutputHelper output)
{
    [Fact]
    public async Task IdleFetchReturnsWithinFiftyMillisecondsOfMaxWait()
    {
        await using var live = await LiveBroker.StartAsync();
        int port = live.Broker.BoundEndPoint.Port;
        await FetchWaitTests.CreateTopicAsync(port, "idle");
        // This machine is shared: a whole-process stall (another build taking both cores) delays
        // every fetch in flight at once. Such a stall is told apart from a late timer by measuring
        // again; a wheel that fires a revolution late misses on every attempt (a third of the
        // fetches, 2.56 s late).
        var failures = new List<string>();
        for (int attempt = 1; attempt <= 3; attempt++)
        {
            var (p99, summary) = await MeasureAsync(port);
            output.WriteLine($"attempt {attempt}: p99 {p99:F1} ms late; {summary}");
            if (p99 <= 50) return;
            failures.Add($"attempt {attempt}: p99 of (return time - max_wait) is {p99:F0} ms; {summary}");
        }
        Assert.Fail(string.Join("\n", failures));
    }

    private static async Task<(double P99, string Summary)> MeasureAsync(int port)
    {
        var waits = new[] { 10, 100, 250, 1000 };
        var late = new List<(int MaxWait, double LateMs, double At)>();
        var clock = Stopwatch.StartNew();
        // Several connections at once, each a series of requests (a client's requests queue on its
        // connection, so one late answer delays the ones behind it).
        var connections = Enumerable.Range(0, 8).Select(c => Task.Run(async () =>
        {
            await using var client = await KafkaWireClient.ConnectAsync("127.0.0.1", port);
            // A first round warms up (JIT of the fetch path) and is not counted.
            foreach (int w in waits) await client.SendAsync<FetchResponse>(FetchWaitTests.IdleFetch("idle", w), 12);
            for (int round = 0; round < 6; round++)
            {
                foreach (int w in waits.Skip(c % waits.Length).Concat(waits.Take(c % waits.Length)))
                {
                    var sw = Stopwatch.StartNew();
                    var response = await client.SendAsync<FetchResponse>(FetchWaitTests.IdleFetch("idle", w), 12);
                    double elapsed = sw.Elapsed.TotalMilliseconds;
                    Assert.Equal(0, response!.Responses[0].Partitions[0].ErrorCode);
                    Assert.Equal(0, response.Responses[0].Partitions[0].Records?.Length ?? 0);
                    lock (late) late.Add((w, elapsed - w, clock.Elapsed.TotalMilliseconds));
                }
            }
        })).ToArray();
        await Task.WhenAll(connections).WaitAsync(TimeSpan.FromMinutes(3));

        var sorted = late.Select(l => l.LateMs).Order().ToList();
        Assert.True(sorted[0] >= -1, $"a Fetch returned {-sorted[0]:F0} ms before max_wait");
        double p99 = sorted[(int)Math.Ceiling(sorted.Count * 0.99) - 1];
        string summary = $"{sorted.Count} fetches; " + string.Join(", ", waits.Select(w =>
            $"{w} ms: max {late.Where(l => l.MaxWait == w).Max(l => l.LateMs):F0} ms late"))
            + "; latest: " + string.Join(", ", late.OrderByDescending(l => l.LateMs).Take(4).Select(l => $"{l.LateMs:F0} ms ({l.MaxWait} ms wait, ended at {l.At / 1000:F1} s)"));
        return (p99, summary);
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class FetchExpiryCollection
{
    public const string Name = "fetch expiry accuracy (alone)";
}
