namespace Samsa.Keeper.Server;

/// <summary>Receives watch events; a client connection.</summary>
public interface IWatcher
{
    void Process(int eventType, string path, long zxid);
}

/// <summary>Watch modes kept per (watcher, path); a watcher may hold several at once.</summary>
[Flags]
public enum WatchMode
{
    None = 0,
    Standard = 1,
    Persistent = 2,
    PersistentRecursive = 4,
}

/// <summary>Upstream watch.WatchManager: one for data/exists watches, one for child watches.
/// Standard watches fire once at their exact path and are removed. Persistent watches fire at
/// their exact path and stay. Persistent-recursive watches fire for the path and every
/// descendant, except NodeChildrenChanged (upstream suppresses it for recursive watchers).</summary>
public sealed class WatchManager
{
    private readonly Dictionary<string, Dictionary<IWatcher, WatchMode>> _byPath = new(StringComparer.Ordinal);
    private readonly Dictionary<IWatcher, HashSet<string>> _byWatcher = new(ReferenceEqualityComparer.Instance);
    private int _recursiveCount;

    public int Count => _byPath.Values.Sum(d => d.Count);
    public int PathCount => _byPath.Count;

    public bool Add(string path, IWatcher w, WatchMode mode)
    {
        if (!_byPath.TryGetValue(path, out var d)) _byPath[path] = d = new Dictionary<IWatcher, WatchMode>(ReferenceEqualityComparer.Instance);
        var old = d.GetValueOrDefault(w);
        if ((old & mode) == mode) return false;
        if ((mode & WatchMode.PersistentRecursive) != 0 && (old & WatchMode.PersistentRecursive) == 0) _recursiveCount++;
        d[w] = old | mode;
        if (!_byWatcher.TryGetValue(w, out var paths)) _byWatcher[w] = paths = new HashSet<string>(StringComparer.Ordinal);
        paths.Add(path);
        return true;
    }

    public bool Contains(string path, IWatcher w, WatchMode? mode)
    {
        if (!_byPath.TryGetValue(path, out var d) || !d.TryGetValue(w, out var m)) return false;
        return mode is null ? m != WatchMode.None : (m & mode.Value) != 0;
    }

    /// <summary>Removes the given modes (all when null); true when something was removed.</summary>
    public bool Remove(string path, IWatcher w, WatchMode? mode)
    {
        if (!_byPath.TryGetValue(path, out var d) || !d.TryGetValue(w, out var m)) return false;
        var removing = mode is null ? m : (m & mode.Value);
        if (removing == WatchMode.None) return false;
        SetMode(path, d, w, m & ~removing);
        return true;
    }

    private void SetMode(string path, Dictionary<IWatcher, WatchMode> d, IWatcher w, WatchMode newMode)
    {
        var old = d[w];
        if ((old & WatchMode.PersistentRecursive) != 0 && (newMode & WatchMode.PersistentRecursive) == 0) _recursiveCount--;
        if (newMode == WatchMode.None)
        {
            d.Remove(w);
            if (d.Count == 0) _byPath.Remove(path);
            if (_byWatcher.TryGetValue(w, out var paths))
            {
                paths.Remove(path);
                if (paths.Count == 0) _byWatcher.Remove(w);
            }
        }
        else d[w] = newMode;
    }

    public void RemoveWatcher(IWatcher w)
    {
        if (!_byWatcher.Remove(w, out var paths)) return;
        foreach (var p in paths)
        {
            if (!_byPath.TryGetValue(p, out var d)) continue;
            if (d.Remove(w, out var m) && (m & WatchMode.PersistentRecursive) != 0) _recursiveCount--;
            if (d.Count == 0) _byPath.Remove(p);
        }
    }

    /// <summary>Collects the watchers an event reaches (removing one-time ones) and returns them.</summary>
    public List<IWatcher> Trigger(string path, int eventType, HashSet<IWatcher>? suppress)
    {
        var result = new List<IWatcher>();
        string? p = path;
        bool atParent = false;
        while (p is not null)
        {
            if (_byPath.TryGetValue(p, out var d))
            {
                foreach (var (w, m) in d.ToList())
                {
                    if (suppress is not null && suppress.Contains(w)) continue;
                    bool fire = false;
                    var newMode = m;
                    if ((m & WatchMode.PersistentRecursive) != 0 && eventType != EventType.NodeChildrenChanged) fire = true;
                    if (!atParent)
                    {
                        if ((m & WatchMode.Persistent) != 0) fire = true;
                        if ((m & WatchMode.Standard) != 0) { fire = true; newMode &= ~WatchMode.Standard; }
                    }
                    if (newMode != m) SetMode(p, d, w, newMode);
                    if (fire && !result.Contains(w)) result.Add(w);
                }
            }
            if (_recursiveCount == 0 || p == "/") break;
            p = PathUtils.Parent(p);
            atParent = true;
        }
        if (suppress is not null) foreach (var w in result) suppress.Add(w);
        return result;
    }

    public IEnumerable<KeyValuePair<string, IEnumerable<IWatcher>>> ByPath =>
        _byPath.Select(kv => new KeyValuePair<string, IEnumerable<IWatcher>>(kv.Key, kv.Value.Keys));

    public IEnumerable<string> PathsOf(IWatcher w) => _byWatcher.TryGetValue(w, out var s) ? s : Enumerable.Empty<string>();
}
