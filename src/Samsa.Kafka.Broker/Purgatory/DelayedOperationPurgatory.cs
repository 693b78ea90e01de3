using System.Collections.Concurrent;

namespace Samsa.Kafka.Broker.Purgatory;

/// <summary>
/// A request that waits for a condition (enough bytes to fetch, replicas to acknowledge) or a
/// timeout, as upstream's DelayedOperation: <see cref="TryComplete"/> checks the condition and
/// completes when it holds; the timeout completes it regardless. Completion happens exactly once.
/// </summary>
public abstract class DelayedOperation
{
    private int _completed;
    private volatile TimerEntry? _timer;
    private readonly TaskCompletionSource _done;
    private readonly bool _continueOnEventThread;

    /// <param name="delayMs">The timeout.</param>
    /// <param name="continueOnEventThread">For a Produce or Fetch waiting on a connection served by
    /// the runtime's socket event threads (issue #19): completed on such a thread (an append or a
    /// follower's fetch handled there), the waiter continues on it at once — builds and sends its
    /// answer — instead of waking a pool worker to do so. Only Produce and Fetch handlers run on
    /// those threads, holding no lock where they complete operations, and a request of another kind
    /// that the continuation reaches leaves the event thread first. Completed anywhere else (the
    /// timer, a replica fetcher, a pool thread that may hold a coordinator's lock) the waiter
    /// continues on the pool, as every other operation does.</param>
    protected DelayedOperation(long delayMs, bool continueOnEventThread = false)
    {
        DelayMs = delayMs;
        _continueOnEventThread = continueOnEventThread;
        _done = new(continueOnEventThread ? TaskCreationOptions.None : TaskCreationOptions.RunContinuationsAsynchronously);
    }

    public long DelayMs { get; }
    public bool IsCompleted => Volatile.Read(ref _completed) != 0;
    /// <summary>Completes after <see cref="OnComplete"/> ran.</summary>
    public Task Completion => _done.Task;

    /// <summary>Checks the condition; calls <see cref="ForceComplete"/> and returns true when it holds.</summary>
    public abstract bool TryComplete();

    /// <summary>Builds the answer. Runs once, on whichever thread completed the operation.</summary>
    protected abstract void OnComplete();

    /// <summary>Called before <see cref="OnComplete"/> when the operation timed out.</summary>
    protected virtual void OnExpiration() { }

    public bool ForceComplete()
    {
        if (Interlocked.Exchange(ref _completed, 1) != 0) return false;
        _timer?.Cancel();
        Exception? failure = null;
        try { OnComplete(); }
        catch (Exception e) { failure = e; }
        Finish(_expirationFailure ?? failure);
        return true;
    }

    private Exception? _expirationFailure;   // OnExpiration's, which the waiter sees first

    // Completed while its creator is still checking it (TryCompleteElseWatch, on that thread, before
    // anyone waits): finished here, so the waiter finds it done and does not hop.
    private void Finish(Exception? failure)
    {
        if (!_continueOnEventThread || ReferenceEquals(t_checking, this) || Samsa.Net.SocketEventThread.IsCurrent) SetDone(failure);
        else ThreadPool.UnsafeQueueUserWorkItem(static s => s.Op.SetDone(s.Failure), (Op: this, Failure: failure), preferLocal: false);
    }

    /// <summary>The operation <see cref="DelayedOperationPurgatory{TKey}.TryCompleteElseWatch"/> is
    /// checking on this thread (its creator's), if any.</summary>
    [ThreadStatic] internal static DelayedOperation? t_checking;

    private void SetDone(Exception? failure)
    {
        if (failure is null) _done.TrySetResult();
        else _done.TrySetException(failure);
    }

    internal void Expire()
    {
        if (IsCompleted) return;
        if (Volatile.Read(ref _completed) == 0)
        {
            try { OnExpiration(); } catch (Exception e) { _expirationFailure = e; }
        }
        ForceComplete();
    }

    /// <summary>
    /// Drops the operation without an answer: the requester is gone (its connection closed), so
    /// nothing is built, the timeout is disarmed and the purgatory stops watching it at once rather
    /// than at max_wait (upstream's DelayedOperation holds a closed channel's request until it
    /// expires; a Fetch with a huge max_wait would keep its entry and socket that long).
    /// <see cref="Completion"/> ends cancelled. Returns false when it had already completed.
    /// </summary>
    public bool Cancel()
    {
        if (Interlocked.Exchange(ref _completed, 1) != 0) return false;
        _timer?.Cancel();
        _done.TrySetCanceled();
        Interlocked.Exchange(ref _unwatch, null)?.Invoke();
        return true;
    }

    private Action? _unwatch;

    internal void SetTimer(TimerEntry timer) => _timer = timer;
    internal void SetUnwatch(Action unwatch) => _unwatch = unwatch;
}

/// <summary>
/// Holds delayed operations watched under keys (topic-partitions); an event on a key re-checks the
/// operations watching it (DelayedOperationPurgatory.checkAndComplete). Timeouts come from one
/// shared <see cref="TimingWheel"/>.
/// </summary>
public sealed class DelayedOperationPurgatory<TKey> where TKey : notnull
{
    private readonly TimingWheel _timer;
    private readonly ConcurrentDictionary<TKey, Watchers> _watchers = new();

    public DelayedOperationPurgatory(TimingWheel timer) { _timer = timer; }

    private sealed class Watchers
    {
        public readonly LinkedList<DelayedOperation> Ops = new();
    }

    /// <summary>Completes the operation now if it can; otherwise watches it under every key and
    /// arms its timeout. Returns true when it completed immediately.</summary>
    public bool TryCompleteElseWatch(DelayedOperation op, IReadOnlyCollection<TKey> keys)
    {
        var outer = DelayedOperation.t_checking;
        DelayedOperation.t_checking = op;
        try { return TryCompleteElseWatchChecking(op, keys); }
        finally { DelayedOperation.t_checking = outer; }
    }

    private bool TryCompleteElseWatchChecking(DelayedOperation op, IReadOnlyCollection<TKey> keys)
    {
        if (op.TryComplete()) return true;
        foreach (var key in keys)
        {
            var w = _watchers.GetOrAdd(key, _ => new Watchers());
            lock (w) w.Ops.AddLast(op);
        }
        // A producer may have appended between the first check and the watch: check again
        // (upstream does the same "maybeTryComplete" after watching).
        if (op.TryComplete()) { Purge(keys); return true; }
        op.SetUnwatch(() => Purge(keys));
        var entry = _timer.Schedule(op.DelayMs, () => { op.Expire(); Purge(keys); });
        op.SetTimer(entry);
        // Completed or cancelled while the timer was being armed: that path saw no timer to disarm.
        if (op.IsCompleted) { entry.Cancel(); Purge(keys); }
        return false;
    }

    /// <summary>Re-checks the operations watching <paramref name="key"/>; returns how many completed.</summary>
    public int CheckAndComplete(TKey key)
    {
        if (!_watchers.TryGetValue(key, out var w)) return 0;
        DelayedOperation[] ops;
        lock (w)
        {
            for (var n = w.Ops.First; n is not null;)
            {
                var next = n.Next;
                if (n.Value.IsCompleted) w.Ops.Remove(n);
                n = next;
            }
            ops = w.Ops.ToArray();
        }
        int completed = 0;
        foreach (var op in ops)
            if (!op.IsCompleted && op.TryComplete()) completed++;
        if (completed > 0) Purge([key]);
        return completed;
    }

    /// <summary>Operations currently watched (for tests and metrics).</summary>
    public int Watched
    {
        get
        {
            int n = 0;
            foreach (var w in _watchers.Values) lock (w) n += w.Ops.Count(o => !o.IsCompleted);
            return n;
        }
    }

    // Watcher lists stay in the map once created (one per partition, bounded); removing an empty
    // list could race with a concurrent watch that already holds it.
    private void Purge(IEnumerable<TKey> keys)
    {
        foreach (var key in keys)
        {
            if (!_watchers.TryGetValue(key, out var w)) continue;
            lock (w)
            {
                for (var n = w.Ops.First; n is not null;)
                {
                    var next = n.Next;
                    if (n.Value.IsCompleted) w.Ops.Remove(n);
                    n = next;
                }
            }
        }
    }
}
