namespace Samsa.Kafka.Broker.Purgatory;

/// <summary>
/// A hashed timing wheel (the structure behind upstream's SystemTimer / TimingWheel): timeouts
/// hash into a ring of buckets by deadline; a ticker advances one bucket per tick and fires the
/// entries whose deadline has passed, so adding and cancelling are O(1) however many requests wait.
/// Entries further away than one revolution stay in their bucket until their round comes.
/// </summary>
public sealed class TimingWheel : IDisposable
{
    private readonly long _tickMs;
    private readonly LinkedList<TimerEntry>[] _buckets;
    private readonly object _gate = new();
    private readonly Func<long> _clock;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task? _ticker;
    private long _currentTick; // the tick whose bucket was last processed

    public TimingWheel(long tickMs = 5, int wheelSize = 512, Func<long>? clock = null, bool startTicker = true)
    {
        _tickMs = tickMs;
        _buckets = new LinkedList<TimerEntry>[wheelSize];
        for (int i = 0; i < wheelSize; i++) _buckets[i] = new LinkedList<TimerEntry>();
        _clock = clock ?? (() => Environment.TickCount64);
        _currentTick = _clock() / _tickMs;
        if (startTicker) _ticker = Task.Run(TickLoopAsync);
    }

    /// <summary>Runs <paramref name="action"/> once, no earlier than <paramref name="delayMs"/> from now, unless cancelled first.</summary>
    public TimerEntry Schedule(long delayMs, Action action)
    {
        var entry = new TimerEntry(this, _clock() + Math.Max(0, delayMs), action);
        lock (_gate)
        {
            long tick = Math.Max(entry.DeadlineMs / _tickMs, _currentTick + 1);
            var bucket = _buckets[tick % _buckets.Length];
            entry.Node = bucket.AddLast(entry);
            entry.Bucket = bucket;
        }
        return entry;
    }

    internal void Remove(TimerEntry entry)
    {
        lock (_gate)
        {
            if (entry.Node is not null && entry.Bucket is not null)
            {
                entry.Bucket.Remove(entry.Node);
                entry.Node = null;
                entry.Bucket = null;
            }
        }
    }

    /// <summary>Fires every entry whose deadline is at or before the clock's now. The ticker calls
    /// this; tests with a manual clock call it directly.</summary>
    public void Advance()
    {
        long now = _clock();
        long targetTick = now / _tickMs;
        List<TimerEntry>? due = null;
        lock (_gate)
        {
            // Visit each bucket between the last processed tick and now at most once per revolution.
            long from = _currentTick + 1;
            long steps = Math.Min(targetTick - _currentTick, _buckets.Length);
            for (long t = from; t < from + steps; t++)
            {
                var bucket = _buckets[t % _buckets.Length];
                for (var node = bucket.First; node is not null;)
                {
                    var next = node.Next;
                    if (node.Value.DeadlineMs <= now)
                    {
                        bucket.Remove(node);
                        node.Value.Node = null;
                        node.Value.Bucket = null;
                        (due ??= []).Add(node.Value);
                    }
                    node = next;
                }
            }
            if (targetTick > _currentTick) _currentTick = targetTick;
        }
        if (due is null) return;
        foreach (var e in due) e.Fire();
    }

    private async Task TickLoopAsync()
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(_tickMs));
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token)) Advance();
        }
        catch (OperationCanceledException) { }
    }

    public void Dispose()
    {
        _stop.Cancel();
        try { _ticker?.Wait(); } catch (AggregateException) { }
        _stop.Dispose();
    }
}

public sealed class TimerEntry
{
    private readonly TimingWheel _wheel;
    private Action? _action;
    internal LinkedListNode<TimerEntry>? Node;
    internal LinkedList<TimerEntry>? Bucket;

    internal TimerEntry(TimingWheel wheel, long deadlineMs, Action action)
    {
        _wheel = wheel;
        DeadlineMs = deadlineMs;
        _action = action;
    }

    public long DeadlineMs { get; }

    public void Cancel()
    {
        Interlocked.Exchange(ref _action, null);
        _wheel.Remove(this);
    }

    internal void Fire() => Interlocked.Exchange(ref _action, null)?.Invoke();
}
