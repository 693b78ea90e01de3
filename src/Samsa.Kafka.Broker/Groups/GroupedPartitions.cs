namespace Samsa.Kafka.Broker.Groups;

/// <summary>
/// Partition numbers grouped by a key, both in order: a consumer group's partitions by topic id
/// (<see cref="PartitionSet"/>) or a streams group's tasks by sub-topology id
/// (<see cref="Streams.TaskSet"/>), with the set operations reconciliation needs.
/// </summary>
public abstract class GroupedPartitions<TKey, TSelf>(IComparer<TKey> comparer)
    where TKey : notnull
    where TSelf : GroupedPartitions<TKey, TSelf>, new()
{
    private readonly SortedDictionary<TKey, SortedSet<int>> _byKey = new(comparer);

    protected IEnumerable<TKey> Keys => _byKey.Keys;
    public IReadOnlyCollection<int> PartitionsOf(TKey key) => _byKey.TryGetValue(key, out var s) ? s : [];
    public int Count => _byKey.Values.Sum(s => s.Count);
    public bool IsEmpty => _byKey.Count == 0;

    protected IEnumerable<(TKey, int)> Pairs()
    {
        foreach (var (k, s) in _byKey) foreach (var p in s) yield return (k, p);
    }

    public void Add(TKey key, int partition)
    {
        if (!_byKey.TryGetValue(key, out var s)) _byKey[key] = s = [];
        s.Add(partition);
    }

    public bool Remove(TKey key, int partition)
    {
        if (!_byKey.TryGetValue(key, out var s) || !s.Remove(partition)) return false;
        if (s.Count == 0) _byKey.Remove(key);
        return true;
    }

    public bool Contains(TKey key, int partition) => _byKey.TryGetValue(key, out var s) && s.Contains(partition);

    protected static TSelf From(IEnumerable<(TKey, int)> pairs)
    {
        var set = new TSelf();
        foreach (var (k, p) in pairs) set.Add(k, p);
        return set;
    }

    public TSelf Clone() => From(Pairs());
    public TSelf Minus(TSelf other) => From(Pairs().Where(x => !other.Contains(x.Item1, x.Item2)));
    public TSelf Intersect(TSelf other) => From(Pairs().Where(x => other.Contains(x.Item1, x.Item2)));
    public bool Overlaps(TSelf other) => Pairs().Any(x => other.Contains(x.Item1, x.Item2));
    public bool IsSubsetOf(TSelf other) => Pairs().All(x => other.Contains(x.Item1, x.Item2));
    public bool SetEquals(TSelf other) => Count == other.Count && IsSubsetOf(other);

    protected string Format(string separator) =>
        string.Join(separator, _byKey.Select(kv => $"{kv.Key}:[{string.Join(",", kv.Value)}]"));
}
