using Samsa.Kafka.Broker.Purgatory;

namespace Samsa.Kafka.Broker.Tests.Purgatory;

public class PurgatoryTests
{
    private sealed class WaitForValue(long delayMs, Func<bool> ready) : DelayedOperation(delayMs)
    {
        public bool Expired;
        public int Completions;
        public override bool TryComplete() => ready() && ForceComplete();
        protected override void OnExpiration() => Expired = true;
        protected override void OnComplete() => Completions++;
    }

    [Fact]
    public void CompletesImmediatelyWhenConditionHolds()
    {
        using var wheel = new TimingWheel(startTicker: false);
        var purgatory = new DelayedOperationPurgatory<string>(wheel);
        var op = new WaitForValue(1000, () => true);
        Assert.True(purgatory.TryCompleteElseWatch(op, ["t-0"]));
        Assert.Equal(1, op.Completions);
        Assert.Equal(0, purgatory.Watched);
    }

    [Fact]
    public void KeyEventCompletesWaitingOperationOnce()
    {
        using var wheel = new TimingWheel(startTicker: false);
        var purgatory = new DelayedOperationPurgatory<string>(wheel);
        bool ready = false;
        var op = new WaitForValue(1000, () => ready);
        Assert.False(purgatory.TryCompleteElseWatch(op, ["t-0", "t-1"]));
        Assert.Equal(2, purgatory.Watched);
        Assert.Equal(0, purgatory.CheckAndComplete("t-0"));
        ready = true;
        Assert.Equal(1, purgatory.CheckAndComplete("t-1"));
        Assert.Equal(0, purgatory.CheckAndComplete("t-0"));
        Assert.Equal(1, op.Completions);
        Assert.False(op.Expired);
        Assert.True(op.Completion.IsCompletedSuccessfully);
    }

    [Fact]
    public void TimeoutExpiresAtDeadlineNotBefore()
    {
        long now = 10_000;
        using var wheel = new TimingWheel(tickMs: 5, wheelSize: 16, clock: () => now, startTicker: false);
        var purgatory = new DelayedOperationPurgatory<string>(wheel);
        var op = new WaitForValue(200, () => false); // longer than one revolution (16 * 5 ms)
        purgatory.TryCompleteElseWatch(op, ["k"]);
        for (int i = 0; i < 39; i++) { now += 5; wheel.Advance(); }
        Assert.False(op.IsCompleted);
        now += 5; wheel.Advance();
        Assert.True(op.Expired);
        Assert.Equal(1, op.Completions);
        Assert.Equal(0, purgatory.Watched);
    }

    [Fact]
    public async Task RealTickerExpiresOperation()
    {
        using var wheel = new TimingWheel();
        var purgatory = new DelayedOperationPurgatory<int>(wheel);
        var op = new WaitForValue(50, () => false);
        var started = Environment.TickCount64;
        purgatory.TryCompleteElseWatch(op, [1]);
        await op.Completion.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(op.Expired);
        Assert.True(Environment.TickCount64 - started >= 45);
    }

    [Fact]
    public void CancelledOperationLeavesThePurgatoryAndTheWheelAtOnce()
    {
        long now = 1_003;
        using var wheel = new TimingWheel(tickMs: 5, wheelSize: 16, clock: () => now, startTicker: false);
        var purgatory = new DelayedOperationPurgatory<string>(wheel);
        var op = new WaitForValue(600_000, () => false);
        Assert.False(purgatory.TryCompleteElseWatch(op, ["a", "b"]));
        Assert.Equal(2, purgatory.Watched);
        Assert.Equal(1, wheel.Count);
        Assert.True(op.Cancel());
        Assert.Equal(0, purgatory.Watched);
        Assert.Equal(0, wheel.Count);
        Assert.True(op.Completion.IsCanceled);
        Assert.Equal(0, op.Completions);
        Assert.False(op.Expired);
        // Cancelled means done: an event or a second cancel does nothing.
        Assert.False(op.Cancel());
        Assert.False(op.ForceComplete());
        Assert.Equal(0, purgatory.CheckAndComplete("a"));
    }

    [Fact]
    public void AnOperationCompletedByAnEventDisarmsItsTimeout()
    {
        long now = 1_003;
        using var wheel = new TimingWheel(tickMs: 5, wheelSize: 16, clock: () => now, startTicker: false);
        var purgatory = new DelayedOperationPurgatory<string>(wheel);
        bool ready = false;
        var op = new WaitForValue(600_000, () => ready);
        purgatory.TryCompleteElseWatch(op, ["a"]);
        ready = true;
        Assert.Equal(1, purgatory.CheckAndComplete("a"));
        Assert.Equal(0, wheel.Count);
        Assert.False(op.Cancel());
        Assert.True(op.Completion.IsCompletedSuccessfully);
    }
}
