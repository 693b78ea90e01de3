using Samsa.Keeper.Server.Quorum;
using Xunit;

namespace Samsa.Keeper.Server.Tests;

/// <summary>The queue between the Keeper leader's threads (Quorum/HandoffQueue): what its taker
/// sees, as BlockingCollection's did.</summary>
public sealed class HandoffQueueTests
{
    [Fact]
    public async Task A_taker_gets_items_in_order_including_those_added_while_it_waits_and_ends_once_completed_and_drained()
    {
        var q = new HandoffQueue<int>();
        q.Add(1);
        q.Add(2);
        var taken = new List<int>();
        var taker = Task.Factory.StartNew(() => { foreach (var x in q.GetConsumingEnumerable()) lock (taken) taken.Add(x); }, TaskCreationOptions.LongRunning);
        await Until(() => { lock (taken) return taken.Count == 2; });
        Assert.False(taker.IsCompleted);   // waiting on the empty queue
        q.Add(3);
        await Until(() => { lock (taken) return taken.Count == 3; });
        q.Add(4);
        q.CompleteAdding();
        await taker.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal([1, 2, 3, 4], taken);
        Assert.Throws<InvalidOperationException>(() => q.Add(5));
        Assert.False(q.TryTake(out _));
    }

    [Fact]
    public async Task A_waiting_taker_stops_with_OperationCanceledException_when_its_token_is_cancelled()
    {
        var q = new HandoffQueue<string>();
        using var cts = new CancellationTokenSource();
        var taker = Task.Factory.StartNew(() => { foreach (var _ in q.GetConsumingEnumerable(cts.Token)) { } }, TaskCreationOptions.LongRunning);
        await Task.Delay(100);
        Assert.False(taker.IsCompleted);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => taker.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    private static async Task Until(Func<bool> cond)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!cond())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("condition not met within 10 s");
            await Task.Delay(10);
        }
    }
}
