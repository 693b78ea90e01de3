namespace Samsa.Keeper.Client;

/// <summary>The client's table of registered watchers, keyed by client (chroot-relative) path,
/// with upstream ZKWatchManager's rules for which watchers an event fires: one-time data/exist/
/// child watches are removed as they fire; persistent ones stay; persistent-recursive ones fire
/// for the path and every descendant, but never for NodeChildrenChanged.</summary>
internal sealed class WatchRegistry
{
    private readonly object _gate = new();
    public readonly Dictionary<string, HashSet<Watcher>> Data = new(StringComparer.Ordinal);
    public readonly Dictionary<string, HashSet<Watcher>> Exist = new(StringComparer.Ordinal);
    public readonly Dictionary<string, HashSet<Watcher>> Child = new(StringComparer.Ordinal);
    public readonly Dictionary<string, HashSet<Watcher>> Persistent = new(StringComparer.Ordinal);
    public readonly Dictionary<string, HashSet<Watcher>> PersistentRecursive = new(StringComparer.Ordinal);

    public object Gate => _gate;

    public void Add(Dictionary<string, HashSet<Watcher>> table, string path, Watcher w)
    {
        lock (_gate)
        {
            if (!table.TryGetValue(path, out var set)) table[path] = set = new HashSet<Watcher>();
            set.Add(w);
        }
    }

    private static void Take(Dictionary<string, HashSet<Watcher>> table, string path, HashSet<Watcher> into)
    {
        if (table.Remove(path, out var set)) into.UnionWith(set);
    }

    private static void Copy(Dictionary<string, HashSet<Watcher>> table, string path, HashSet<Watcher> into)
    {
        if (table.TryGetValue(path, out var set)) into.UnionWith(set);
    }

    /// <summary>The watchers a node event fires, removing the one-time ones.</summary>
    public HashSet<Watcher> Materialize(EventType type, string path)
    {
        var result = new HashSet<Watcher>();
        lock (_gate)
        {
            switch (type)
            {
                case EventType.NodeCreated:
                case EventType.NodeDataChanged:
                    Take(Data, path, result);
                    Take(Exist, path, result);
                    break;
                case EventType.NodeChildrenChanged:
                    Take(Child, path, result);
                    break;
                case EventType.NodeDeleted:
                    Take(Data, path, result);
                    Take(Exist, path, result);
                    Take(Child, path, result);
                    break;
            }
            Copy(Persistent, path, result);
            if (type != EventType.NodeChildrenChanged && PersistentRecursive.Count > 0)
            {
                for (string p = path; ; p = Parent(p))
                {
                    Copy(PersistentRecursive, p, result);
                    if (p == "/") break;
                }
            }
        }
        return result;
    }

    /// <summary>Every watcher, for state events (upstream delivers those to all of them).</summary>
    public HashSet<Watcher> All()
    {
        var result = new HashSet<Watcher>();
        lock (_gate)
        {
            foreach (var t in new[] { Data, Exist, Child, Persistent, PersistentRecursive })
                foreach (var s in t.Values) result.UnionWith(s);
        }
        return result;
    }

    public void Clear()
    {
        lock (_gate)
        {
            Data.Clear(); Exist.Clear(); Child.Clear(); Persistent.Clear(); PersistentRecursive.Clear();
        }
    }

    public bool IsEmpty
    {
        get { lock (_gate) return Data.Count + Exist.Count + Child.Count + Persistent.Count + PersistentRecursive.Count == 0; }
    }

    public static string Parent(string path)
    {
        int i = path.LastIndexOf('/');
        return i <= 0 ? "/" : path[..i];
    }
}
