using Samsa.Kafka.Broker.Purgatory;

namespace Samsa.Kafka.Broker.Tests.Purgatory;

/// <summary>
/// Where a waiting Produce or Fetch continues once its delayed operation completes (issue #19):
/// on the socket event thread that completed it (no pool hand-off), and on the pool when anything
/// else completed it (the timer, a replica fetcher) or the operation did not ask for it.
/// </summary>
public class EventThreadContinuationTests
{
    private sealed class Op(bool continueOnEventThread) : DelayedOperation(60_000, continueOnEventThread)
    {
        public override bool TryComplete() => ForceComplete();
        protected override void OnComplete() { }
    }

    // Completes the operation on a thread of its own named as the runtime names its socket event
    // threads (what SocketEventThread.IsCurrent looks for) or otherwise; returns that thread's id
    // and the id of the thread the awaiting code continued on.
    private static async Task<(int Completer, int Continued)> CompleteOn(string threadName, bool continueOnEventThread)
    {
        var op = new Op(continueOnEventThread);
        var continued = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        async Task Waiter()
        {
            // (no synchronization context, as in the broker; the test runner has one)
            await op.Completion.ConfigureAwait(false);
            continued.TrySetResult(Environment.CurrentManagedThreadId);
        }
        var waiting = Waiter();
        Assert.False(waiting.IsCompleted);
        int completer = 0;
        var thread = new Thread(() =>
        {
            completer = Environment.CurrentManagedThreadId;
            op.ForceComplete();
        }) { Name = threadName };
        thread.Start();
        thread.Join();
        int on = await continued.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await waiting;
        return (completer, on);
    }

    [Fact]
    public async Task Completed_on_a_socket_event_thread_the_waiter_continues_there()
    {
        var (completer, continued) = await CompleteOn(".NET Sockets", continueOnEventThread: true);
        Assert.Equal(completer, continued);
    }

    [Fact]
    public async Task Completed_on_another_thread_the_waiter_continues_on_the_pool()
    {
        var (completer, continued) = await CompleteOn("samsa-timing-wheel", continueOnEventThread: true);
        Assert.NotEqual(completer, continued);
    }

    // An operation that holds when first checked (data already there, acks=all with the leader the
    // only in-sync replica) is done when TryCompleteElseWatch returns, on any thread: its waiter
    // does not hop to the pool for it.
    [Fact]
    public void An_operation_complete_at_its_first_check_is_done_at_once()
    {
        using var wheel = new TimingWheel(startTicker: false);
        var purgatory = new DelayedOperationPurgatory<string>(wheel);
        var op = new Op(continueOnEventThread: true);
        Assert.True(purgatory.TryCompleteElseWatch(op, ["t-0"]));
        Assert.True(op.Completion.IsCompletedSuccessfully);
    }

    [Fact]
    public async Task Operations_that_did_not_ask_never_continue_on_the_completing_thread()
    {
        var (completer, continued) = await CompleteOn(".NET Sockets", continueOnEventThread: false);
        Assert.NotEqual(completer, continued);
    }
}
