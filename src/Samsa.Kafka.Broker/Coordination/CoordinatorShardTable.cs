namespace Samsa.Kafka.Broker.Coordination;

/// <summary>Whether this broker serves the keys of one internal-topic partition.</summary>
public enum ShardStatus : byte { NotOwned, Loading, Owned }

/// <summary>
/// The partitions of an internal topic (<c>__consumer_offsets</c>, <c>__transaction_state</c>) as a
/// coordinator sees them: which it serves, which it is loading, and for each the coordinator epoch
/// (the partition's leader epoch when this broker took it over) and a load generation, so a replay
/// that finishes after leadership moved on is dropped. Not thread-safe: the coordinator that owns
/// it calls it under its own lock.
/// </summary>
public sealed class CoordinatorShardTable(int count)
{
    private ShardStatus[] _status = new ShardStatus[count];
    private int[] _generation = new int[count];
    private int[] _epoch = new int[count];

    public int Count => _status.Length;
    public ShardStatus this[int partition] => _status[partition];
    public bool AnyOwned => _status.Any(s => s != ShardStatus.NotOwned);
    public bool AnyLoading => _status.Any(s => s == ShardStatus.Loading);

    /// <summary>Every partition in one state (a single broker that leads them all).</summary>
    public void Reset(int count, ShardStatus status)
    {
        _status = new ShardStatus[count];
        Array.Fill(_status, status);
        _generation = new int[count];
        _epoch = new int[count];
    }

    /// <summary>The topic has this many partitions; the states of those that existed are kept.</summary>
    public void Resize(int count)
    {
        if (count == _status.Length) return;
        Array.Resize(ref _status, count);
        Array.Resize(ref _generation, count);
        Array.Resize(ref _epoch, count);
    }

    /// <summary>Starts loading a partition not owned; its load generation, or null when already owned or loading.</summary>
    public int? BeginLoading(int partition, int coordinatorEpoch)
    {
        if (partition < 0 || partition >= _status.Length || _status[partition] != ShardStatus.NotOwned) return null;
        _status[partition] = ShardStatus.Loading;
        _epoch[partition] = coordinatorEpoch;
        return ++_generation[partition];
    }

    /// <summary>True when the load with this generation is still the one wanted.</summary>
    public bool IsCurrentLoad(int partition, int generation) =>
        partition >= 0 && partition < _status.Length && _generation[partition] == generation && _status[partition] == ShardStatus.Loading;

    public void MarkOwned(int partition)
    {
        if (partition >= 0 && partition < _status.Length) _status[partition] = ShardStatus.Owned;
    }

    /// <summary>Stops serving a partition; false when it was not owned or loading.</summary>
    public bool Unload(int partition)
    {
        if (partition < 0 || partition >= _status.Length || _status[partition] == ShardStatus.NotOwned) return false;
        _status[partition] = ShardStatus.NotOwned;
        _generation[partition]++;
        return true;
    }

    public int CoordinatorEpoch(int partition) => partition >= 0 && partition < _epoch.Length ? _epoch[partition] : 0;
}
