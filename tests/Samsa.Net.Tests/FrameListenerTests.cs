using System.Buffers.Binary;
using System.Net;
using System.Text;

namespace Samsa.Net.Tests;

public class FrameListenerTests
{
    private static readonly IPEndPoint Loopback = new(IPAddress.Loopback, 0);

    /// <summary>Every test here runs twice: with the pipes' loops queued to the thread pool, and
    /// (<see cref="FrameListenerInlineSchedulingTests"/>) run inline, as the Kafka listener does.</summary>
    protected virtual bool InlineScheduling => false;

    private async Task<FrameListener> StartAsync(IFrameHandler handler, ListenerOptions? options = null)
    {
        options ??= new ListenerOptions();
        options.InlineScheduling = InlineScheduling;
        var listener = new FrameListener(Loopback, handler, options);
        listener.Start();
        await Task.CompletedTask;
        return listener;
    }

    private static byte[] Pattern(int length, int seed)
    {
        byte[] bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    [Fact]
    public async Task Frames_are_echoed_in_order()
    {
        await using var listener = await StartAsync(new EchoHandler());
        using var client = await TestClient.ConnectAsync(listener.LocalEndPoint);
        for (int i = 0; i < 50; i++)
        {
            byte[] payload = Pattern(i * 7, i);
            await client.SendFrameAsync(payload);
            Assert.Equal(payload, await client.ReadFrameAsync());
        }
    }

    [Fact]
    public async Task Pipelined_frames_in_one_write_are_all_answered_in_order()
    {
        await using var listener = await StartAsync(new EchoHandler());
        using var client = await TestClient.ConnectAsync(listener.LocalEndPoint);
        var all = new MemoryStream();
        var payloads = new List<byte[]>();
        for (int i = 0; i < 300; i++)
        {
            byte[] payload = Pattern(1 + (i % 37) * 53, 1000 + i);
            payloads.Add(payload);
            all.Write(TestClient.Frame(payload));
        }
        // One write carrying all frames; the server sees them split at arbitrary points.
        await client.SendRawAsync(all.ToArray());
        foreach (byte[] expected in payloads)
        {
            Assert.Equal(expected, await client.ReadFrameAsync());
        }
    }

    [Fact]
    public async Task Frame_split_byte_by_byte_is_reassembled()
    {
        await using var listener = await StartAsync(new EchoHandler());
        using var client = await TestClient.ConnectAsync(listener.LocalEndPoint);
        byte[] payload = Pattern(40, 7);
        foreach (byte b in TestClient.Frame(payload))
        {
            await client.SendRawAsync([b]);
            await Task.Delay(1);
        }
        Assert.Equal(payload, await client.ReadFrameAsync());
    }

    [Fact]
    public async Task Large_frame_beyond_the_receive_buffer_arrives_intact()
    {
        var options = new ListenerOptions { ReceiveBufferBytes = 256 * 1024 };
        await using var listener = await StartAsync(new EchoHandler(), options);
        using var client = await TestClient.ConnectAsync(listener.LocalEndPoint);
        byte[] big = Pattern(6 * 1024 * 1024 + 13, 99);
        byte[] small = Pattern(100, 100);
        Task send = Task.Run(async () =>
        {
            await client.SendFrameAsync(big);
            await client.SendFrameAsync(small);
        });
        Assert.Equal(big, await client.ReadFrameAsync());
        Assert.Equal(small, await client.ReadFrameAsync());
        await send;
    }

    [Theory]
    [InlineData(1025)]
    [InlineData(-1)]
    [InlineData(int.MinValue)]
    public async Task Bad_length_closes_only_that_connection(int length)
    {
        var handler = new EchoHandler();
        await using var listener = await StartAsync(handler, new ListenerOptions { MaxFrameBytes = 1024 });
        using var good = await TestClient.ConnectAsync(listener.LocalEndPoint);
        using var bad = await TestClient.ConnectAsync(listener.LocalEndPoint);
        await good.SendFrameAsync([1, 2, 3]);
        Assert.Equal([1, 2, 3], await good.ReadFrameAsync());

        byte[] header = new byte[8];
        BinaryPrimitives.WriteInt32BigEndian(header, 4);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), 9); // first frame fine ...
        await bad.SendRawAsync(header);
        Assert.Equal([0, 0, 0, 9], await bad.ReadFrameAsync());
        byte[] second = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(second, length); // ... then an impossible length
        await bad.SendRawAsync(second);
        Assert.True(await bad.WaitForCloseAsync());

        byte[] exactlyMax = Pattern(1024, 5);
        await good.SendFrameAsync(exactlyMax);
        Assert.Equal(exactlyMax, await good.ReadFrameAsync());
        await WaitUntil(() => listener.ConnectionCount == 1);
    }

    [Fact]
    public async Task First_word_hook_answers_four_letter_word_and_closes()
    {
        var handler = new EchoHandler();
        await using var listener = await StartAsync(handler);
        using var client = await TestClient.ConnectAsync(listener.LocalEndPoint);
        await client.SendRawAsync(Encoding.ASCII.GetBytes("ruok"));
        Assert.Equal("imok", Encoding.ASCII.GetString(await client.ReadExactlyAsync(4) ?? []));
        Assert.True(await client.WaitForCloseAsync());
    }

    [Fact]
    public async Task First_word_not_taken_is_the_first_frame_length()
    {
        var handler = new EchoHandler();
        await using var listener = await StartAsync(handler);
        using var client = await TestClient.ConnectAsync(listener.LocalEndPoint);
        byte[] payload = Pattern(45, 3);
        await client.SendFrameAsync(payload);
        Assert.Equal(payload, await client.ReadFrameAsync());
        Assert.Equal([45], handler.FirstWords.ToArray());
    }

    private sealed class BurstHandler : EchoHandler
    {
        public const int Senders = 8;
        public const int FramesPerSender = 300;

        public override ValueTask OnFrameAsync(Connection connection, ReadOnlyMemory<byte> frame)
        {
            // Simulates responses and watch events produced on different threads at once.
            var tasks = Enumerable.Range(0, Senders).Select(sender => Task.Run(async () =>
            {
                for (int seq = 0; seq < FramesPerSender; seq++)
                {
                    int length = 8 + (seq * 131 + sender * 17) % 5000;
                    byte[] payload = new byte[length];
                    BinaryPrimitives.WriteInt32BigEndian(payload, sender);
                    BinaryPrimitives.WriteInt32BigEndian(payload.AsSpan(4), seq);
                    payload.AsSpan(8).Fill((byte)(sender * 31 + seq));
                    await connection.SendFrameAsync(payload);
                }
            }));
            return new ValueTask(Task.WhenAll(tasks));
        }
    }

    [Fact]
    public async Task Concurrent_senders_keep_frames_whole_and_each_sender_in_order()
    {
        await using var listener = await StartAsync(new BurstHandler(), new ListenerOptions { SendBufferBytes = 64 * 1024, SendBufferResumeBytes = 32 * 1024 });
        using var client = await TestClient.ConnectAsync(listener.LocalEndPoint);
        await client.SendFrameAsync([0]);
        int[] next = new int[BurstHandler.Senders];
        for (int i = 0; i < BurstHandler.Senders * BurstHandler.FramesPerSender; i++)
        {
            byte[] frame = await client.ReadFrameAsync();
            int sender = BinaryPrimitives.ReadInt32BigEndian(frame);
            int seq = BinaryPrimitives.ReadInt32BigEndian(frame.AsSpan(4));
            Assert.InRange(sender, 0, BurstHandler.Senders - 1);
            Assert.Equal(next[sender], seq);
            next[sender]++;
            Assert.Equal(8 + (seq * 131 + sender * 17) % 5000, frame.Length);
            byte fill = (byte)(sender * 31 + seq);
            Assert.True(frame.AsSpan(8).IndexOfAnyExcept(fill) < 0, $"frame {sender}/{seq} corrupted");
        }
        Assert.All(next, n => Assert.Equal(BurstHandler.FramesPerSender, n));
    }

    private sealed class FileRangeHandler(string path, FileOptions fileOptions) : EchoHandler
    {
        public long ZeroCopyBytes;

        public override async ValueTask OnFrameAsync(Connection connection, ReadOnlyMemory<byte> frame)
        {
            // Request: offset int32, count int32. Answer: a plain frame "before", then
            // [ "head" | file range | "tail" ] as one frame, then a plain frame "after".
            int offset = BinaryPrimitives.ReadInt32BigEndian(frame.Span);
            int count = BinaryPrimitives.ReadInt32BigEndian(frame.Span[4..]);
            await connection.SendFrameAsync(Encoding.ASCII.GetBytes("before"));
            await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, fileOptions);
            await connection.SendFrameAsync(new FramePart[]
            {
                Encoding.ASCII.GetBytes("head"),
                new FramePart(file, offset, count),
                new FramePart(file, 0, 0),
                Encoding.ASCII.GetBytes("tail"),
            });
            // Read before "after" is queued, so the client sees the value once "after" arrives.
            ZeroCopyBytes = connection.ZeroCopyFileBytes;
            await connection.SendFrameAsync(Encoding.ASCII.GetBytes("after"));
        }
    }

    [Theory]
    [InlineData(true, FileOptions.Asynchronous)]
    [InlineData(true, FileOptions.None)]
    [InlineData(false, FileOptions.Asynchronous)]
    public async Task File_range_send_delivers_the_right_bytes_in_order(bool zeroCopy, FileOptions fileOptions)
    {
        string path = Path.GetTempFileName();
        try
        {
            byte[] content = Pattern(3 * 1024 * 1024, 42);
            var handler = new FileRangeHandler(path, fileOptions);
            long expectedZeroCopy = 0;
            await File.WriteAllBytesAsync(path, content);
            var errors = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
            await using var listener = await StartAsync(handler, new ListenerOptions { ZeroCopyFileSend = zeroCopy, OnError = (_, e) => errors.Enqueue(e) });
            using var client = await TestClient.ConnectAsync(listener.LocalEndPoint);
            foreach ((int offset, int count) in new[] { (0, 10), (12345, 2 * 1024 * 1024), (content.Length - 7, 7), (100, 0) })
            {
                byte[] request = new byte[8];
                BinaryPrimitives.WriteInt32BigEndian(request, offset);
                BinaryPrimitives.WriteInt32BigEndian(request.AsSpan(4), count);
                await client.SendFrameAsync(request);
                Assert.Equal("before", Encoding.ASCII.GetString(await client.ReadFrameAsync()));
                Assert.Empty(errors);
                byte[] frame = await client.ReadFrameAsync();
                Assert.Equal(8 + count, frame.Length);
                Assert.Equal("head", Encoding.ASCII.GetString(frame, 0, 4));
                Assert.Equal(content.AsSpan(offset, count).ToArray(), frame.AsSpan(4, count).ToArray());
                Assert.Equal("tail", Encoding.ASCII.GetString(frame, 4 + count, 4));
                Assert.Equal("after", Encoding.ASCII.GetString(await client.ReadFrameAsync()));
                expectedZeroCopy += count;
                // Only an async FileStream can go through sendfile; the rest was copied.
                Assert.Equal(zeroCopy && fileOptions == FileOptions.Asynchronous ? expectedZeroCopy : 0, handler.ZeroCopyBytes);
            }
            Assert.Empty(errors);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData(true, FileOptions.Asynchronous)]
    [InlineData(false, FileOptions.Asynchronous)]
    public async Task File_range_beyond_the_end_of_the_file_closes_the_connection_instead_of_a_short_frame(bool zeroCopy, FileOptions fileOptions)
    {
        // A log segment truncated under a Fetch in flight: the range's bytes are no longer there.
        // The peer must never get a complete frame with wrong content, nor later frames misaligned.
        string path = Path.GetTempFileName();
        try
        {
            await File.WriteAllBytesAsync(path, Pattern(4096, 7));
            var errors = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
            await using var listener = await StartAsync(new FileRangeHandler(path, fileOptions), new ListenerOptions { ZeroCopyFileSend = zeroCopy, OnError = (_, e) => errors.Enqueue(e) });
            using var client = await TestClient.ConnectAsync(listener.LocalEndPoint);
            byte[] request = new byte[8];
            BinaryPrimitives.WriteInt32BigEndian(request, 4000);
            BinaryPrimitives.WriteInt32BigEndian(request.AsSpan(4), 1000);
            await client.SendFrameAsync(request);
            Assert.Equal("before", Encoding.ASCII.GetString(await client.ReadFrameAsync()));
            await Assert.ThrowsAsync<EndOfStreamException>(client.ReadFrameAsync);
            // Reported: IOException (copy, or sendfile stopping short) or the socket error .NET
            // raises for a range past the end of the file.
            Assert.NotEmpty(errors);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private sealed class FloodHandler : EchoHandler
    {
        public long Queued;
        public readonly TaskCompletionSource Stalled = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public const int FrameSize = 64 * 1024;
        public const int Frames = 2000; // 128 MiB if nothing pushed back

        public override async ValueTask OnFrameAsync(Connection connection, ReadOnlyMemory<byte> frame)
        {
            byte[] payload = new byte[FrameSize];
            for (int i = 0; i < Frames; i++)
            {
                BinaryPrimitives.WriteInt32BigEndian(payload, i);
                ValueTask send = connection.SendFrameAsync(payload);
                if (!send.IsCompleted)
                {
                    Stalled.TrySetResult();
                }
                await send;
                Interlocked.Add(ref Queued, FrameSize);
            }
        }
    }

    [Fact]
    public async Task Slow_reader_pushes_back_on_senders_then_gets_everything()
    {
        var handler = new FloodHandler();
        await using var listener = await StartAsync(handler, new ListenerOptions { SendBufferBytes = 256 * 1024, SendBufferResumeBytes = 128 * 1024 });
        using var client = await TestClient.ConnectAsync(listener.LocalEndPoint);
        client.Socket.ReceiveBufferSize = 64 * 1024;
        await client.SendFrameAsync([1]);
        await handler.Stalled.Task.WaitAsync(TimeSpan.FromSeconds(20));
        await Task.Delay(300);
        // The client has read nothing: what the server holds is bounded by its send buffer plus
        // the kernel's socket buffers, far below the 128 MiB the handler wants to send.
        Assert.True(Interlocked.Read(ref handler.Queued) < 48L * 1024 * 1024, $"queued {handler.Queued}");
        for (int i = 0; i < FloodHandler.Frames; i++)
        {
            byte[] frame = await client.ReadFrameAsync();
            Assert.Equal(FloodHandler.FrameSize, frame.Length);
            Assert.Equal(i, BinaryPrimitives.ReadInt32BigEndian(frame));
        }
    }

    [Fact]
    public async Task Dispose_closes_all_connections_and_counts_them()
    {
        var handler = new EchoHandler { ExpectedCloses = 3 };
        var listener = await StartAsync(handler);
        var clients = new List<TestClient>();
        for (int i = 0; i < 3; i++)
        {
            var client = await TestClient.ConnectAsync(listener.LocalEndPoint);
            await client.SendFrameAsync([(byte)i]);
            Assert.Equal([(byte)i], await client.ReadFrameAsync());
            clients.Add(client);
        }
        Assert.Equal(3, listener.ConnectionCount);
        await listener.DisposeAsync();
        await handler.AllClosed.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(0, listener.ConnectionCount);
        foreach (TestClient client in clients)
        {
            Assert.True(await client.WaitForCloseAsync());
            client.Dispose();
        }
    }

    [Fact]
    public async Task Client_disconnect_runs_OnClosed_and_drops_the_count()
    {
        var handler = new EchoHandler { ExpectedCloses = 1 };
        await using var listener = await StartAsync(handler);
        var client = await TestClient.ConnectAsync(listener.LocalEndPoint);
        await client.SendFrameAsync([9]);
        Assert.Equal([9], await client.ReadFrameAsync());
        client.Dispose();
        await handler.AllClosed.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await WaitUntil(() => listener.ConnectionCount == 0);
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met in time");
            await Task.Delay(10);
        }
    }
}

public sealed class FrameListenerInlineSchedulingTests : FrameListenerTests
{
    protected override bool InlineScheduling => true;
}
