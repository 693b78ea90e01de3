namespace Samsa.Kafka.Broker.Groups;

/// <summary>
/// Which <c>__consumer_offsets</c> partitions a group request's coordinator call appended to, and up
/// to which log end, so the handler answers only once those records are replicated (upstream's
/// CoordinatorRuntime appends a write operation's records and completes its response future when the
/// partition's high watermark passes them). A call that appended nothing — a steady-state heartbeat —
/// records nothing and its handler answers at once.
/// </summary>
/// <remarks>
/// The coordinators (classic, KIP-848, streams, share group membership) run each request
/// synchronously on the handler's thread under their locks, and every one of their appends goes
/// through <see cref="IGroupMetadataLog"/>; the scope is therefore per thread. A handler begins it,
/// calls the coordinator and disposes it before its first await (a continuation may run on another
/// thread). Appends outside a scope (timers, other requests) are not recorded here.
/// </remarks>
public sealed class GroupWriteScope : IDisposable
{
    [ThreadStatic] private static GroupWriteScope? t_current;

    private readonly GroupWriteScope? _outer;
    private readonly Thread _thread;
    // Usually one partition: a request names one group.
    private int _partition = -1;
    private long _endOffset = -1;
    private Dictionary<int, long>? _more;
    private bool _disposed;

    private GroupWriteScope(GroupWriteScope? outer)
    {
        _outer = outer;
        _thread = Thread.CurrentThread;
    }

    /// <summary>Starts recording the appends of this thread.</summary>
    public static GroupWriteScope Begin() => t_current = new GroupWriteScope(t_current);

    /// <summary>True when the coordinator appended records during the scope.</summary>
    public bool Wrote => _partition >= 0;

    /// <summary>Each partition appended to, with the log end offset right after the last append.</summary>
    public IEnumerable<(int Partition, long EndOffset)> Written
    {
        get
        {
            if (_partition >= 0) yield return (_partition, _endOffset);
            if (_more is not null) foreach (var (p, o) in _more) yield return (p, o);
        }
    }

    /// <summary>Called by the offsets-topic log after a successful append (no-op outside a scope).</summary>
    internal static void Record(int partition, long endOffset) => t_current?.Add(partition, endOffset);

    private void Add(int partition, long endOffset)
    {
        if (_partition < 0 || _partition == partition)
        {
            _partition = partition;
            _endOffset = Math.Max(_endOffset, endOffset);
            return;
        }
        _more ??= [];
        _more[partition] = Math.Max(_more.GetValueOrDefault(partition, -1), endOffset);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (Thread.CurrentThread != _thread)
            throw new InvalidOperationException("a GroupWriteScope must end on the thread that began it (before the handler's first await)");
        if (t_current == this) t_current = _outer;
        // A nested scope's appends belong to the enclosing request too.
        if (_outer is not null) foreach (var (p, o) in Written) _outer.Add(p, o);
    }
}
