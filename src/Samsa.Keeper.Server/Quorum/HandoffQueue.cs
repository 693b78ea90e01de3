namespace Samsa.Keeper.Server.Quorum;

/// <summary>
/// A FIFO queue between the leader's threads (requests → pipeline, proposals → log thread,
/// packets → a learner's sender) whose taker sleeps on a monitor until an item or the end
/// arrives, without spinning first. BlockingCollection spins before it sleeps, and on a machine
/// with more runnable threads than cores that costs dozens of context switches per wake-up
/// (tests/ensemble/sequential_writes.py counts them per write). Add after
/// <see cref="CompleteAdding"/> throws InvalidOperationException, as BlockingCollection's.
/// </summary>
internal sealed class HandoffQueue<T>
{
    private readonly Queue<T> _items = new();
    private bool _completed;
    private int _waiting;

    public int Count { get { lock (_items) return _items.Count; } }

    public void Add(T item)
    {
        lock (_items)
        {
            if (_completed) throw new InvalidOperationException("the queue accepts no more items");
            _items.Enqueue(item);
            if (_waiting > 0) Monitor.Pulse(_items);
        }
    }

    public bool TryTake(out T item)
    {
        lock (_items) return _items.TryDequeue(out item!);
    }

    /// <summary>No more items: takers end once the queue is empty.</summary>
    public void CompleteAdding()
    {
        lock (_items)
        {
            _completed = true;
            Monitor.PulseAll(_items);
        }
    }

    /// <summary>Takes items until the queue is completed and empty; throws
    /// OperationCanceledException once <paramref name="ct"/> is cancelled.</summary>
    public IEnumerable<T> GetConsumingEnumerable(CancellationToken ct = default)
    {
        using var reg = ct.CanBeCanceled ? ct.Register(() => { lock (_items) Monitor.PulseAll(_items); }) : default;
        while (Take(ct, out var item)) yield return item;
    }

    private bool Take(CancellationToken ct, out T item)
    {
        lock (_items)
        {
            while (true)
            {
                ct.ThrowIfCancellationRequested();
                if (_items.TryDequeue(out item!)) return true;
                if (_completed) return false;
                _waiting++;
                try { Monitor.Wait(_items); }
                finally { _waiting--; }
            }
        }
    }
}
