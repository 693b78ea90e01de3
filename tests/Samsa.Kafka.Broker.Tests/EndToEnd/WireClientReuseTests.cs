using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;
using ProtocolBatchBuilder = Samsa.Kafka.Protocol.Records.RecordBatchBuilder;

namespace Samsa.Kafka.Broker.Tests.EndToEnd;

/// <summary>
/// KafkaWireClient.ReuseResponseBuffer, which the replica fetcher uses so that its megabyte Fetch
/// responses do not each allocate a large-object-heap array: responses smaller and larger than the
/// pooled buffer (so it grows) must decode to exactly what a client reading into fresh arrays gets.
/// </summary>
public class WireClientReuseTests
{
    private static FetchRequest Fetch(long offset, int maxBytes) => new()
    {
        ReplicaId = -1, MaxWaitMs = 0, MinBytes = 1, MaxBytes = maxBytes, IsolationLevel = 0, SessionId = 0, SessionEpoch = -1,
        Topics = [new() { Topic = "reuse", Partitions = [new() { Partition = 0, FetchOffset = offset, LogStartOffset = -1, PartitionMaxBytes = maxBytes, CurrentLeaderEpoch = -1, LastFetchedEpoch = -1 }] }],
    };

    [Fact]
    public async Task ReusedBufferAnswersEqualFreshArraysAcrossGrowth()
    {
        await using var live = await LiveBroker.StartAsync();
        Assert.Equal(ErrorCode.None, live.Broker.Replicas.CreateTopic("reuse", 1, 1, new Dictionary<string, string>(), false).Error);
        var random = new Random(7);
        await using (var producer = await KafkaWireClient.ConnectAsync("127.0.0.1", live.Broker.BoundEndPoint.Port))
        {
            // 40 batches of ~8 KiB of random (incompressible) values: ~320 KiB, beyond the 64 KiB first buffer.
            for (int i = 0; i < 40; i++)
            {
                using var b = new ProtocolBatchBuilder(Protocol.Compression.CompressionType.None);
                for (int r = 0; r < 8; r++)
                {
                    var value = new byte[1024];
                    random.NextBytes(value);
                    b.Append(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), null, value);
                }
                var response = await producer.SendAsync<ProduceResponse>(new ProduceRequest
                {
                    Acks = -1, TimeoutMs = 5000,
                    TopicData = [new() { Name = "reuse", PartitionData = [new() { Index = 0, Records = b.Build() }] }],
                }, 9);
                Assert.Equal(0, response!.Responses[0].PartitionResponses[0].ErrorCode);
            }
        }

        await using var fresh = await KafkaWireClient.ConnectAsync("127.0.0.1", live.Broker.BoundEndPoint.Port);
        await using var reused = await KafkaWireClient.ConnectAsync("127.0.0.1", live.Broker.BoundEndPoint.Port);
        reused.ReuseResponseBuffer = true;
        // The replica fetcher's connection on plaintext listeners: blocking calls, same buffer reuse.
        await using var blocking = KafkaWireClient.ConnectBlocking("127.0.0.1", live.Broker.BoundEndPoint.Port, 10_000);
        blocking.ReuseResponseBuffer = true;
        Assert.True(blocking.IsBlocking);
        // Small, then large (the buffer grows), then small and large again from other offsets.
        foreach (var (offset, maxBytes) in new[] { (0L, 10_000), (0L, 1_048_576), (80L, 20_000), (8L, 1_048_576) })
        {
            var expected = (await fresh.SendAsync<FetchResponse>(Fetch(offset, maxBytes), 12))!.Responses[0].Partitions[0];
            var got = (await reused.SendAsync<FetchResponse>(Fetch(offset, maxBytes), 12))!.Responses[0].Partitions[0];
            Assert.Equal(0, got.ErrorCode);
            Assert.Equal(expected.HighWatermark, got.HighWatermark);
            Assert.True(got.Records is { Length: > 0 });
            Assert.Equal(expected.Records!.Value.ToArray(), got.Records!.Value.ToArray());
            if (maxBytes > 100_000) Assert.True(got.Records.Value.Length > 256 * 1024, $"expected the whole log, got {got.Records.Value.Length} bytes");
            var sent = blocking.SendReusingBuffersAsync<FetchResponse>(Fetch(offset, maxBytes), 12, default);
            Assert.True(sent.IsCompleted, "a blocking client answers synchronously");
            var fromBlocking = (await sent).Responses[0].Partitions[0];
            Assert.Equal(expected.HighWatermark, fromBlocking.HighWatermark);
            Assert.Equal(expected.Records!.Value.ToArray(), fromBlocking.Records!.Value.ToArray());
        }
    }

    // A blocking client connected to a peer that accepts and never answers (a hung leader), and
    // its Fetch waiting for an answer on another thread.
    private static async Task WithFetchToSilentPeer(int receiveTimeoutMs, Func<KafkaWireClient, Task, Task> check)
    {
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            await using var client = KafkaWireClient.ConnectBlocking("127.0.0.1", ((System.Net.IPEndPoint)listener.LocalEndpoint).Port, receiveTimeoutMs);
            client.ReuseResponseBuffer = true;
            var waiting = Task.Run(() => client.SendReusingBuffersAsync<FetchResponse>(Fetch(0, 1000), 12, default).AsTask());
            await check(client, waiting);
        }
        finally { listener.Stop(); }
    }

    [Fact]
    public Task BlockingClientAbortEndsAWaitingReceive() => WithFetchToSilentPeer(30_000, async (client, waiting) =>
    {
        await Task.Delay(300);
        Assert.False(waiting.IsCompleted);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        client.Abort();   // what stopping a replica fetcher does
        await Assert.ThrowsAsync<IOException>(() => waiting.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"the receive ended {watch.Elapsed} after Abort");
    });

    [Fact]
    public Task BlockingClientReceiveTimesOut()
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        return WithFetchToSilentPeer(300, async (_, waiting) =>
        {
            await Assert.ThrowsAsync<IOException>(() => waiting.WaitAsync(TimeSpan.FromSeconds(20)));
            Assert.InRange(watch.Elapsed, TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(10));
        });
    }

    // The replica fetcher's point: its socket is a blocking one in the kernel (no O_NONBLOCK), so a
    // receive is one recv that the answer wakes. The runtime keeps O_NONBLOCK once it was ever set
    // and then emulates blocking calls through its epoll thread (a wake-up there, then a futex
    // wake-up of the waiting thread), which a non-blocking connect() would have caused.
    [Fact]
    public Task BlockingClientSocketHasNoNonBlockFlag() => WithFetchToSilentPeer(30_000, async (client, waiting) =>
    {
        await Task.Delay(100);
        nint fd = client.Socket.SafeHandle.DangerousGetHandle();
        string flags = File.ReadLines($"/proc/self/fdinfo/{fd}").First(l => l.StartsWith("flags:", StringComparison.Ordinal));
        int value = Convert.ToInt32(flags["flags:".Length..].Trim(), 8);
        const int ONonBlock = 0x800;   // 04000 in <fcntl.h>
        Assert.True((value & ONonBlock) == 0, $"the fetcher's socket is non-blocking ({flags})");
        client.Abort();
        await Assert.ThrowsAsync<IOException>(() => waiting.WaitAsync(TimeSpan.FromSeconds(10)));
    });

    [Fact]
    public void BlockingConnectToAClosedPortIsRefused()
    {
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        int port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var e = Assert.Throws<System.Net.Sockets.SocketException>(() => KafkaWireClient.ConnectBlocking("127.0.0.1", port, 1000));
        Assert.Equal(System.Net.Sockets.SocketError.ConnectionRefused, e.SocketErrorCode);
    }

    // A leader that does not complete the handshake must not hold a stopping replica fetcher (the
    // broker waits for its loop) for the kernel's ~2 minutes of SYN retries: the connect ends when
    // the stop is requested. A listener whose accept queue is full drops further SYNs (Linux), which
    // is how such a peer is made here; the first connections fill the queue.
    [Fact]
    public void BlockingConnectEndsWhenCancelled()
    {
        using var listener = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        listener.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        listener.Listen(0);
        int port = ((System.Net.IPEndPoint)listener.LocalEndPoint!).Port;
        var fillers = new List<System.Net.Sockets.Socket>();
        try
        {
            for (int i = 0; i < 3; i++)
            {
                var f = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
                fillers.Add(f);
                _ = f.ConnectAsync(System.Net.IPAddress.Loopback, port);
            }
            Thread.Sleep(200);
            using var stop = new CancellationTokenSource(500);
            var watch = System.Diagnostics.Stopwatch.StartNew();
            Assert.ThrowsAny<OperationCanceledException>(() => KafkaWireClient.ConnectBlocking("127.0.0.1", port, 1000, stop.Token));
            Assert.InRange(watch.Elapsed, TimeSpan.FromMilliseconds(400), TimeSpan.FromSeconds(5));
        }
        finally
        {
            foreach (var f in fillers) f.Dispose();
        }
    }
}
