using System.Net;

namespace Samsa.Net.Tests;

/// <summary>
/// Replies written while the frame loop works through one read's frames are flushed together
/// (issue #19). What a client must still see: a reply is never held back behind a later request
/// that waits, and replies sent from another thread meanwhile arrive too.
/// </summary>
public class ReplyBatchingTests
{
    /// <summary>Run again inline (<see cref="ReplyBatchingInlineSchedulingTests"/>), as the Kafka listener runs.</summary>
    protected virtual bool InlineScheduling => false;

    // Frame "A": answered at once. Frame "W": waits until the test releases it, then answers.
    // Frame "X": answered from another thread, later, while the loop may be deferring.
    private sealed class WaitingHandler : EchoHandler
    {
        public readonly TaskCompletionSource Release = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override async ValueTask OnFrameAsync(Connection connection, ReadOnlyMemory<byte> frame)
        {
            byte[] copy = frame.ToArray();
            switch ((char)copy[0])
            {
                case 'W':
                    await Release.Task;
                    await connection.SendFrameAsync(copy);
                    break;
                case 'X':
                    _ = Task.Run(async () => { await Task.Delay(20); await connection.SendFrameAsync(copy); });
                    break;
                default:
                    await connection.SendFrameAsync(copy);
                    break;
            }
        }
    }

    [Fact]
    public async Task ReplyBatching_a_reply_goes_out_before_a_later_request_in_the_same_read_waits()
    {
        var handler = new WaitingHandler();
        await using var listener = new FrameListener(new IPEndPoint(IPAddress.Loopback, 0), handler, new ListenerOptions { InlineScheduling = InlineScheduling });
        listener.Start();
        using var client = await TestClient.ConnectAsync(listener.LocalEndPoint);
        // One write: three quick requests, then one that waits; all reach the server in one read.
        var all = new MemoryStream();
        foreach (var p in new[] { "A1", "A2", "A3", "W4" }) all.Write(TestClient.Frame(System.Text.Encoding.ASCII.GetBytes(p)));
        await client.SendRawAsync(all.ToArray());
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        // The first three answers arrive while W4 is still held (it is released only afterwards).
        foreach (var expected in new[] { "A1", "A2", "A3" })
            Assert.Equal(expected, System.Text.Encoding.ASCII.GetString(await client.ReadFrameAsync().WaitAsync(timeout.Token)));
        handler.Release.SetResult();
        Assert.Equal("W4", System.Text.Encoding.ASCII.GetString(await client.ReadFrameAsync().WaitAsync(timeout.Token)));
    }

    [Fact]
    public async Task ReplyBatching_replies_from_another_thread_arrive_while_requests_stream_in()
    {
        var handler = new WaitingHandler();
        handler.Release.SetResult();
        await using var listener = new FrameListener(new IPEndPoint(IPAddress.Loopback, 0), handler, new ListenerOptions { InlineScheduling = InlineScheduling });
        listener.Start();
        using var client = await TestClient.ConnectAsync(listener.LocalEndPoint);
        var all = new MemoryStream();
        var expected = new HashSet<string>();
        for (int i = 0; i < 400; i++)
        {
            string p = (i % 5 == 0 ? "X" : "A") + i;
            expected.Add(p);
            all.Write(TestClient.Frame(System.Text.Encoding.ASCII.GetBytes(p)));
        }
        await client.SendRawAsync(all.ToArray());
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var seen = new HashSet<string>();
        while (seen.Count < expected.Count)
            Assert.True(seen.Add(System.Text.Encoding.ASCII.GetString(await client.ReadFrameAsync().WaitAsync(timeout.Token))));
        Assert.Equal(expected, seen);
    }
}

public sealed class ReplyBatchingInlineSchedulingTests : ReplyBatchingTests
{
    protected override bool InlineScheduling => true;
}
