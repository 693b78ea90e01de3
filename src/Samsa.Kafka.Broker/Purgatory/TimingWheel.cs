namespace Samsa.Kafka.Broker.Purgatory;

/// <summary>
/// A hashed timing wheel (the structure behind upstream's SystemTimer / TimingWheel): timeouts
/// hash into a ring of buckets by deadline; a ticker advances one bucket per tick and fires the
/// entries whose deadline has passed, so adding and cancelling are O(1) however many requests wait.
/// Entries further away than one revolution stay in their bucket until their round comes (upstream
/// moves them through overflow wheels instead; both fire at the same time).
/// </summary>
/// <remarks>
/// An entry goes into the bucket of the first tick boundary at or after its deadline (the deadline
/// rounded up), and a bucket is visited once the clock has passed that boundary, so every entry of
/// the current round in a visited bucket is due. Rounding down instead would visit the bucket while
/// the deadline could still lie ahead in the same tick, skip the entry, and leave it for the next
/// revolution (wheelSize × tickMs later: 2.56 s with the defaults).
/// </remarks>
public sealed class TimingWheel : IDisposable
{
    private readonly long _tickMs;
    private readonly LinkedList<TimerEntry>[] _buckets;
    private readonly object _gate = new();
    private readonly Func<long> _clock;
    private readonly CancellationTokenSource _stop = new();
    private readonly Thread? _ticker;
    private long _currentTick; // the last tick whose bucket was processed

    public TimingWheel(long tickMs = 5, int wheelSize = 512, Func<long>? clock = null, bool startTicker = true)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(tickMs, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(wheelSize, 1);
        _tickMs = tickMs;
        _buckets = new LinkedList<TimerEntry>[wheelSize];
        for (int i = 0; i < wheelSize; i++) _buckets[i] = new LinkedList<TimerEntry>();
        _clock = clock ?? MonotonicMs;
        _currentTick = _clock() / _tickMs;
        if (startTicker)
        {
            // A dedicated thread, as upstream's ExpirationReaper: a busy or starved thread pool must
            // not hold back every waiting request's timeout.
            _ticker = new Thread(TickLoop) { IsBackground = true, Name = "samsa-timing-wheel" };
            _ticker.Start();
        }
    }

    // Environment.TickCount64 is coarse on Linux (CLOCK_MONOTONIC_COARSE, a few ms per step), which
    // would let a timeout fire a step early; upstream's SystemTimer reads the high-resolution clock
    // (Time.hiResClockMs) too.
    private static readonly long TimestampsPerMs = Math.Max(1, System.Diagnostics.Stopwatch.Frequency / 1000);
    private static long MonotonicMs() => System.Diagnostics.Stopwatch.GetTimestamp() / TimestampsPerMs;

    /// <summary>Entries scheduled and neither fired nor cancelled.</summary>
    public int Count
    {
        get { lock (_gate) { int n = 0; foreach (var b in _buckets) n += b.Count; return n; } }
    }

    /// <summary>Runs <paramref name="action"/> once, no earlier than <paramref name="delayMs"/> from now, unless cancelled first.</summary>
    public TimerEntry Schedule(long delayMs, Action action)
    {
        long now = _clock();
        long delay = Math.Max(0, delayMs);
        var entry = new TimerEntry(this, delay > long.MaxValue - now ? long.MaxValue : now + delay, action);
        lock (_gate)
        {
            // Round up: the bucket is visited only once its whole tick has passed (see remarks).
            long tick = entry.DeadlineMs / _tickMs + (entry.DeadlineMs % _tickMs == 0 ? 0 : 1);
            tick = Math.Max(tick, _currentTick + 1);
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
            // Visit each bucket between the last processed tick and now, each at most once (a
            // ticker late by more than a revolution visits the whole ring once).
            long from = _currentTick + 1;
            long steps = Math.Min(targetTick - _currentTick, _buckets.Length);
            for (long t = from; t < from + steps; t++)
            {
                var bucket = _buckets[t % _buckets.Length];
                for (var node = bucket.First; node is not null;)
                {
                    var next = node.Next;
                    // Entries of a later round share the bucket; they stay until their deadline.
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

    private void TickLoop()
    {
        var token = _stop.Token;
        long next = _clock() + _tickMs;
        while (!token.IsCancellationRequested)
        {
            long wait = next - _clock();
            if (wait > 0 && token.WaitHandle.WaitOne(TimeSpan.FromMilliseconds(wait))) break;
            try { Advance(); }
            catch (Exception) { /* an expiry action's failure must not stop every other timeout */ }
            // Next boundary after now: a late wake-up does not queue up catch-up ticks.
            long now = _clock();
            next = (now / _tickMs + 1) * _tickMs;
        }
    }

    public void Dispose()
    {
        if (_stop.IsCancellationRequested) return;
        _stop.Cancel();
        if (_ticker is not null && _ticker != Thread.CurrentThread) _ticker.Join();
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
