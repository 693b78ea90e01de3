using Samsa.Keeper.Protocol;
using Samsa.Keeper.Protocol.Records;

namespace Samsa.Keeper.Server;

/// <summary>A znode. Cversion here counts child creations, as upstream stores it; clients see
/// cversion*2 - numChildren (upstream DataNode.copyStat), i.e. creations plus deletions.</summary>
public sealed class DataNode
{
    public byte[]? Data;
    public long Acl;
    public long Czxid, Mzxid, Ctime, Mtime, EphemeralOwner, Pzxid;
    public int Version, Cversion, Aversion;
    public readonly SortedSet<string> Children = new(StringComparer.Ordinal);

    public void CopyStat(Stat to, bool extendedTypes)
    {
        to.Czxid = Czxid; to.Mzxid = Mzxid; to.Ctime = Ctime; to.Mtime = Mtime;
        to.Version = Version; to.Aversion = Aversion; to.Pzxid = Pzxid;
        to.EphemeralOwner = Server.EphemeralOwner.ForClient(EphemeralOwner, extendedTypes);
        to.DataLength = Data?.Length ?? 0;
        to.NumChildren = Children.Count;
        to.Cversion = Cversion * 2 - Children.Count;
    }

    public Stat ToStat(bool extendedTypes)
    {
        var s = new Stat();
        CopyStat(s, extendedTypes);
        return s;
    }
}

/// <summary>Upstream ReferenceCountedACLCache: nodes refer to ACL lists by a long id; -1 is
/// OPEN_ACL_UNSAFE (world:anyone, all perms). Ids and lists go into snapshots.</summary>
public sealed class AclCache
{
    public const long OpenUnsafe = -1;
    private readonly Dictionary<long, List<ACL>> _byId = new();
    private readonly Dictionary<string, long> _byKey = new();
    private readonly Dictionary<long, long> _refs = new();
    private long _index;

    public static readonly List<ACL> OpenAclUnsafe = new() { new ACL { Perms = Perms.All, Id = new Id { Scheme = "world", IdValue = "anyone" } } };

    private static string Key(List<ACL> acls) => string.Join("\u0001", acls.Select(a => $"{a.Perms}\u0002{a.Id.Scheme}\u0002{a.Id.IdValue}"));

    public long Convert(List<ACL>? acls)
    {
        if (acls is null) return OpenUnsafe;
        string key = Key(acls);
        if (!_byKey.TryGetValue(key, out long id))
        {
            id = ++_index;
            _byKey[key] = id;
            _byId[id] = acls.Select(Clone).ToList();
        }
        AddUsage(id);
        return id;
    }

    public List<ACL> Get(long id) => id == OpenUnsafe ? OpenAclUnsafe : _byId.TryGetValue(id, out var l) ? l : throw new InvalidOperationException($"ACL {id} not in cache");

    public void AddUsage(long id)
    {
        if (id == OpenUnsafe) return;
        _refs[id] = _refs.GetValueOrDefault(id) + 1;
    }

    public void RemoveUsage(long id)
    {
        if (id == OpenUnsafe || !_refs.TryGetValue(id, out long n)) return;
        if (n <= 1)
        {
            _refs.Remove(id);
            if (_byId.Remove(id, out var l)) _byKey.Remove(Key(l));
        }
        else _refs[id] = n - 1;
    }

    public int Count => _byId.Count;
    public IEnumerable<KeyValuePair<long, List<ACL>>> Entries => _byId.OrderBy(e => e.Key);

    public void Clear() { _byId.Clear(); _byKey.Clear(); _refs.Clear(); _index = 0; }

    /// <summary>Loading a snapshot: ids keep their numbers, usage is recounted from nodes.</summary>
    public void Load(long id, List<ACL> acls)
    {
        _byId[id] = acls;
        _byKey[Key(acls)] = id;
        if (id > _index) _index = id;
    }

    /// <summary>Upstream purgeUnused after a snapshot load.</summary>
    public void PurgeUnused()
    {
        foreach (var id in _byId.Keys.Where(k => !_refs.ContainsKey(k)).ToList())
        {
            _byKey.Remove(Key(_byId[id]));
            _byId.Remove(id);
        }
    }

    public static ACL Clone(ACL a) => new() { Perms = a.Perms, Id = new Id { Scheme = a.Id.Scheme, IdValue = a.Id.IdValue } };
}

/// <summary>What applying one txn produced (upstream DataTree.ProcessTxnResult).</summary>
public sealed class ProcessTxnResult
{
    public int Type;
    public int Err;
    public string? Path;
    public Stat? Stat;
    public List<ProcessTxnResult>? MultiResult;
}

/// <summary>A watch event to deliver once the txn that caused it is durable.</summary>
public readonly record struct WatchTrigger(bool ChildManager, string Path, int EventType, long Zxid, HashSet<IWatcher>? Suppress = null);

/// <summary>The znode tree. Mutations come only through <see cref="ProcessTxn"/>, both live and
/// on replay, so recovery runs the same code as normal operation.</summary>
public sealed class DataTree
{
    public const string ZookeeperPath = "/zookeeper";
    public const string QuotaPath = "/zookeeper/quota";
    public const string ConfigPath = "/zookeeper/config";
    public const string QuotaLimitNode = "zookeeper_limits";
    public const string QuotaStatNode = "zookeeper_stats";

    private readonly Dictionary<string, DataNode> _nodes = new(StringComparer.Ordinal);
    public readonly AclCache Acls = new();
    private readonly Dictionary<long, HashSet<string>> _ephemerals = new();
    public readonly HashSet<string> Containers = new(StringComparer.Ordinal);
    public readonly HashSet<string> Ttls = new(StringComparer.Ordinal);
    public readonly WatchManager DataWatches = new();
    public readonly WatchManager ChildWatches = new();

    /// <summary>Undo actions of the multi being tried; null outside a multi.</summary>
    public List<Action>? Undo;
    /// <summary>Watch events produced since the last drain.</summary>
    public readonly List<WatchTrigger> Triggers = new();

    public long LastProcessedZxid;
    public bool ExtendedTypesEnabled;

    /// <summary>Upstream DataTree.digestLog: the tree digest after every txn whose zxid is a multiple
    /// of 128, the newest 1024 kept; the four-letter word `hash` lists it.</summary>
    public readonly Queue<(long Zxid, long Digest)> DigestLog = new();
    public const int DigestLogInterval = 128, DigestLogLimit = 1024;
    /// <summary>False while a fuzzy snapshot's digest is still ahead of the replay (upstream records
    /// nothing then).</summary>
    public bool RecordDigests = true;
    private int _txnDepth;

    /// <summary>Upstream's tree digest (3.6+, digest version 2): the wrapping sum over all nodes
    /// outside /zookeeper/ of CRC-32(path, data, czxid, mzxid, pzxid, ctime, mtime, version,
    /// cversion, aversion, ephemeralOwner), the root hashed as "". Written after every txn in the
    /// log and with each snapshot, so upstream can check our files as it checks its own.</summary>
    public long TreeDigest { get; private set; }
    public const int DigestVersion = 2;

    public static long NodeDigest(string path, DataNode n)
    {
        if (path.StartsWith("/zookeeper/", StringComparison.Ordinal)) return 0;
        if (path == "/") path = "";
        Span<byte> b = stackalloc byte[60];
        System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(b, n.Czxid);
        System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(b[8..], n.Mzxid);
        System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(b[16..], n.Pzxid);
        System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(b[24..], n.Ctime);
        System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(b[32..], n.Mtime);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(b[40..], n.Version);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(b[44..], n.Cversion);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(b[48..], n.Aversion);
        System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(b[52..], n.EphemeralOwner);
        uint crc = Crc32.Update(0, System.Text.Encoding.UTF8.GetBytes(path));
        if (n.Data is not null) crc = Crc32.Update(crc, n.Data);
        crc = Crc32.Update(crc, b);
        return crc;
    }

    private void AddDigest(string path, DataNode n) => TreeDigest = unchecked(TreeDigest + NodeDigest(path, n));
    private void RemoveDigest(string path, DataNode n) => TreeDigest = unchecked(TreeDigest - NodeDigest(path, n));

    /// <summary>Applies a change to a node's hashed fields, keeping <see cref="TreeDigest"/> current.</summary>
    private void Change(string path, DataNode n, Action mutate)
    {
        RemoveDigest(path, n);
        mutate();
        AddDigest(path, n);
    }

    public void RecomputeDigest()
    {
        long sum = 0;
        foreach (var (p, n) in _nodes) sum = unchecked(sum + NodeDigest(p, n));
        TreeDigest = sum;
    }

    public DataTree() { Reset(); }

    /// <summary>The tree a fresh server starts with: "/", /zookeeper, /zookeeper/quota and
    /// /zookeeper/config (READ for anyone, aversion -1 as upstream's addConfigNode leaves it).</summary>
    public void Reset()
    {
        _nodes.Clear(); Acls.Clear(); _ephemerals.Clear(); Containers.Clear(); Ttls.Clear();
        var root = new DataNode { Acl = AclCache.OpenUnsafe, Data = Array.Empty<byte>() };
        _nodes["/"] = root;
        var zk = new DataNode { Acl = AclCache.OpenUnsafe, Data = Array.Empty<byte>() };
        root.Children.Add("zookeeper");
        _nodes[ZookeeperPath] = zk;
        zk.Children.Add("quota");
        _nodes[QuotaPath] = new DataNode { Acl = AclCache.OpenUnsafe, Data = Array.Empty<byte>() };
        zk.Children.Add("config");
        var cfg = new DataNode { Data = Array.Empty<byte>(), Aversion = -1 };
        cfg.Acl = Acls.Convert(new List<ACL> { new() { Perms = Perms.Read, Id = new Id { Scheme = "world", IdValue = "anyone" } } });
        _nodes[ConfigPath] = cfg;
        LastProcessedZxid = 0;
        RecomputeDigest();
    }

    public int NodeCount => _nodes.Count;

    /// <summary>The count upstream reports (srvr "Node count", mntr zk_znode_count): its DataTree
    /// keeps the root under both "" and "/", so a fresh server says 5.</summary>
    public int ReportedNodeCount => _nodes.Count + 1;
    public DataNode? GetNode(string path) => _nodes.TryGetValue(path, out var n) ? n : null;
    public IEnumerable<KeyValuePair<string, DataNode>> AllNodes => _nodes;

    public IReadOnlyCollection<string> GetEphemerals(long session) =>
        _ephemerals.TryGetValue(session, out var s) ? s.ToList() : Array.Empty<string>();

    public IEnumerable<KeyValuePair<long, HashSet<string>>> AllEphemerals => _ephemerals;

    public int EphemeralCount => _ephemerals.Values.Sum(s => s.Count);

    public long ApproximateDataSize => _nodes.Sum(kv => kv.Key.Length + (long)(kv.Value.Data?.Length ?? 0));

    public int CountDescendants(string path)
    {
        var n = GetNode(path);
        if (n is null) return 0;
        int total = 0;
        foreach (var c in n.Children) total += 1 + CountDescendants(Join(path, c));
        return total;
    }

    public static string Join(string parent, string child) => parent == "/" ? "/" + child : parent + "/" + child;

    private void AddEphemeral(long owner, string path)
    {
        if (EphemeralOwner.IsContainer(owner)) Containers.Add(path);
        else if (EphemeralOwner.IsTtl(owner, ExtendedTypesEnabled)) Ttls.Add(path);
        else if (owner != 0)
        {
            if (!_ephemerals.TryGetValue(owner, out var set)) _ephemerals[owner] = set = new HashSet<string>(StringComparer.Ordinal);
            set.Add(path);
        }
    }

    private void RemoveEphemeral(long owner, string path)
    {
        if (EphemeralOwner.IsContainer(owner)) Containers.Remove(path);
        else if (EphemeralOwner.IsTtl(owner, ExtendedTypesEnabled)) Ttls.Remove(path);
        else if (owner != 0 && _ephemerals.TryGetValue(owner, out var set))
        {
            set.Remove(path);
            if (set.Count == 0) _ephemerals.Remove(owner);
        }
    }

    /// <summary>Upstream DataTree.createNode. parentCVersion -1 means "one more than now"; the
    /// parent's cversion and pzxid only move forward (replaying a fuzzy range must not revert them).</summary>
    public Stat CreateNode(string path, byte[]? data, List<ACL>? acl, long ephemeralOwner, int parentCVersion, long zxid, long time)
    {
        string parentPath = PathUtils.Parent(path);
        var parent = GetNode(parentPath) ?? throw new KeeperException(Code.NoNode, path);
        if (_nodes.ContainsKey(path)) throw new KeeperException(Code.NodeExists, path);
        if (parentCVersion == -1) parentCVersion = parent.Cversion + 1;
        int oldCv = parent.Cversion;
        long oldPz = parent.Pzxid;
        if (parentCVersion > parent.Cversion)
        {
            Change(parentPath, parent, () =>
            {
                parent.Cversion = parentCVersion;
                parent.Pzxid = zxid;
            });
        }
        var child = new DataNode
        {
            Data = data, Acl = Acls.Convert(acl), Czxid = zxid, Mzxid = zxid, Pzxid = zxid,
            Ctime = time, Mtime = time, EphemeralOwner = ephemeralOwner,
        };
        string name = PathUtils.ChildName(path);
        parent.Children.Add(name);
        _nodes[path] = child;
        AddDigest(path, child);
        AddEphemeral(ephemeralOwner, path);
        Undo?.Add(() =>
        {
            RemoveDigest(path, child);
            _nodes.Remove(path);
            parent.Children.Remove(name);
            Change(parentPath, parent, () =>
            {
                parent.Cversion = oldCv;
                parent.Pzxid = oldPz;
            });
            Acls.RemoveUsage(child.Acl);
            RemoveEphemeral(ephemeralOwner, path);
        });
        UpdateQuotaOnCreate(path, data);
        Triggers.Add(new WatchTrigger(false, path, EventType.NodeCreated, zxid));
        Triggers.Add(new WatchTrigger(true, parentPath, EventType.NodeChildrenChanged, zxid));
        return child.ToStat(ExtendedTypesEnabled);
    }

    /// <summary>Upstream DataTree.deleteNode: the parent's pzxid moves forward; cversion is not
    /// touched (deletions show up through the cversion*2-numChildren translation).</summary>
    public void DeleteNode(string path, long zxid)
    {
        string parentPath = PathUtils.Parent(path);
        var parent = GetNode(parentPath) ?? throw new KeeperException(Code.NoNode, path);
        var node = GetNode(path) ?? throw new KeeperException(Code.NoNode, path);
        string name = PathUtils.ChildName(path);
        long oldPz = parent.Pzxid;
        parent.Children.Remove(name);
        if (zxid > parent.Pzxid) Change(parentPath, parent, () => parent.Pzxid = zxid);
        RemoveDigest(path, node);
        _nodes.Remove(path);
        RemoveEphemeral(node.EphemeralOwner, path);
        UpdateQuotaOnDelete(path, node.Data);
        if (Undo is null) Acls.RemoveUsage(node.Acl);
        else
        {
            // keep the ACL id alive until the multi commits; released by CommitMulti
            _deferredAclRelease.Add(node.Acl);
            Undo.Add(() =>
            {
                _nodes[path] = node;
                AddDigest(path, node);
                parent.Children.Add(name);
                Change(parentPath, parent, () => parent.Pzxid = oldPz);
                AddEphemeral(node.EphemeralOwner, path);
                UpdateQuotaOnCreate(path, node.Data);
                _deferredAclRelease.Remove(node.Acl);
            });
        }
        var suppress = new HashSet<IWatcher>();
        Triggers.Add(new WatchTrigger(false, path, EventType.NodeDeleted, zxid, suppress));
        Triggers.Add(new WatchTrigger(true, path, EventType.NodeDeleted, zxid, suppress));
        Triggers.Add(new WatchTrigger(true, parentPath, EventType.NodeChildrenChanged, zxid));
    }

    private readonly List<long> _deferredAclRelease = new();

    public void BeginMulti() { Undo = new List<Action>(); _deferredAclRelease.Clear(); }

    public void CommitMulti()
    {
        foreach (var id in _deferredAclRelease) Acls.RemoveUsage(id);
        _deferredAclRelease.Clear();
        Undo = null;
    }

    public void RollbackMulti(int triggersBefore)
    {
        if (Undo is not null)
            for (int i = Undo.Count - 1; i >= 0; i--) Undo[i]();
        _deferredAclRelease.Clear();
        Undo = null;
        Triggers.RemoveRange(triggersBefore, Triggers.Count - triggersBefore);
    }

    public Stat SetData(string path, byte[]? data, int version, long zxid, long time)
    {
        var n = GetNode(path) ?? throw new KeeperException(Code.NoNode, path);
        var (oldData, oldV, oldMz, oldMt) = (n.Data, n.Version, n.Mzxid, n.Mtime);
        Change(path, n, () => { n.Data = data; n.Version = version; n.Mzxid = zxid; n.Mtime = time; });
        Undo?.Add(() => Change(path, n, () => { n.Data = oldData; n.Version = oldV; n.Mzxid = oldMz; n.Mtime = oldMt; }));
        UpdateQuotaBytes(path, (data?.Length ?? 0) - (oldData?.Length ?? 0));
        Triggers.Add(new WatchTrigger(false, path, EventType.NodeDataChanged, zxid));
        return n.ToStat(ExtendedTypesEnabled);
    }

    public Stat SetAcl(string path, List<ACL> acl, int version)
    {
        var n = GetNode(path) ?? throw new KeeperException(Code.NoNode, path);
        long oldAcl = n.Acl;
        int oldAv = n.Aversion;
        n.Acl = Acls.Convert(acl);
        Change(path, n, () => n.Aversion = version);
        if (Undo is null) Acls.RemoveUsage(oldAcl);
        else
        {
            _deferredAclRelease.Add(oldAcl);
            long newAcl = n.Acl;
            Undo.Add(() => { Acls.RemoveUsage(newAcl); n.Acl = oldAcl; Change(path, n, () => n.Aversion = oldAv); _deferredAclRelease.Remove(oldAcl); });
        }
        return n.ToStat(ExtendedTypesEnabled);
    }

    /// <summary>Upstream DataTree.processTxn: applies one logged txn. Errors inside the txn
    /// (NoNode, NodeExists on replay) are reported in the result, as upstream does.</summary>
    public ProcessTxnResult ProcessTxn(TxnHeader hdr, IJuteRecord? txn)
    {
        var rc = new ProcessTxnResult { Type = hdr.Type };
        _txnDepth++;
        try
        {
            switch (hdr.Type)
            {
                case OpCode.Create:
                case OpCode.Create2:
                {
                    if (txn is CreateTxnV0 v0)
                    {
                        rc.Path = v0.Path;
                        rc.Stat = CreateNode(v0.Path!, v0.Data, v0.Acl, v0.Ephemeral ? hdr.ClientId : 0, -1, hdr.Zxid, hdr.Time);
                        break;
                    }
                    var t = (CreateTxn)txn!;
                    rc.Path = t.Path;
                    rc.Stat = CreateNode(t.Path!, t.Data, t.Acl, t.Ephemeral ? hdr.ClientId : 0, t.ParentCVersion, hdr.Zxid, hdr.Time);
                    break;
                }
                case OpCode.CreateContainer:
                {
                    var t = (CreateContainerTxn)txn!;
                    rc.Path = t.Path;
                    rc.Stat = CreateNode(t.Path!, t.Data, t.Acl, EphemeralOwner.Container, t.ParentCVersion, hdr.Zxid, hdr.Time);
                    break;
                }
                case OpCode.CreateTTL:
                {
                    var t = (CreateTTLTxn)txn!;
                    rc.Path = t.Path;
                    rc.Stat = CreateNode(t.Path!, t.Data, t.Acl, EphemeralOwner.ForTtl(t.Ttl), t.ParentCVersion, hdr.Zxid, hdr.Time);
                    break;
                }
                case OpCode.Delete:
                case OpCode.DeleteContainer:
                {
                    var t = (DeleteTxn)txn!;
                    rc.Path = t.Path;
                    DeleteNode(t.Path!, hdr.Zxid);
                    break;
                }
                case OpCode.Reconfig: // upstream: a reconfig txn is a SetDataTxn of /zookeeper/config
                case OpCode.SetData:
                {
                    var t = (SetDataTxn)txn!;
                    rc.Path = t.Path;
                    rc.Stat = SetData(t.Path!, t.Data, t.Version, hdr.Zxid, hdr.Time);
                    break;
                }
                case OpCode.SetACL:
                {
                    var t = (SetACLTxn)txn!;
                    rc.Path = t.Path;
                    rc.Stat = SetAcl(t.Path!, t.Acl ?? new List<ACL>(), t.Version);
                    break;
                }
                case OpCode.Check:
                {
                    var t = (CheckVersionTxn)txn!;
                    rc.Path = t.Path;
                    rc.Stat = GetNode(t.Path!)?.ToStat(ExtendedTypesEnabled);
                    break;
                }
                case OpCode.CloseSession:
                {
                    // Upstream killSession: remove the session's ephemerals (the txn may list them).
                    var paths = new HashSet<string>(GetEphemerals(hdr.ClientId), StringComparer.Ordinal);
                    if (txn is CloseSessionTxn cst && cst.Paths2Delete is not null)
                        foreach (var p in cst.Paths2Delete) paths.Add(p);
                    foreach (var p in paths.OrderByDescending(p => p.Length))
                    {
                        var n = GetNode(p);
                        if (n is not null && n.EphemeralOwner == hdr.ClientId) DeleteNode(p, hdr.Zxid);
                    }
                    _ephemerals.Remove(hdr.ClientId);
                    break;
                }
                case OpCode.Error:
                    rc.Err = ((ErrorTxn)txn!).Err;
                    break;
                case OpCode.Multi:
                    ProcessMultiTxn(hdr, (MultiTxn)txn!, rc);
                    break;
            }
        }
        catch (KeeperException e)
        {
            rc.Err = e.Code;
        }
        finally
        {
            _txnDepth--;
        }
        if (hdr.Zxid > LastProcessedZxid) LastProcessedZxid = hdr.Zxid;
        // upstream DataTree.processTxn → logZxidDigest, for whole txns only (not a multi's parts)
        // (a live multi applies its parts one by one inside Begin/CommitMulti and records after)
        if (_txnDepth == 0 && Undo is null) RecordDigest(hdr.Zxid);
        return rc;
    }

    public void RecordDigest(long zxid)
    {
        if (!RecordDigests || zxid % DigestLogInterval != 0) return;
        DigestLog.Enqueue((zxid, TreeDigest));
        if (DigestLog.Count > DigestLogLimit) DigestLog.Dequeue();
    }

    /// <summary>Upstream multi replay: if any sub-txn is an error, nothing is applied and the
    /// results are OK before the failing op, its code at it, RuntimeInconsistency after.</summary>
    private void ProcessMultiTxn(TxnHeader hdr, MultiTxn multi, ProcessTxnResult rc)
    {
        rc.MultiResult = new List<ProcessTxnResult>();
        var txns = multi.Txns ?? new List<Txn>();
        bool failed = txns.Any(t => t.Type == OpCode.Error);
        bool postFailed = false;
        foreach (var sub in txns)
        {
            var subHdr = new TxnHeader { ClientId = hdr.ClientId, Cxid = hdr.Cxid, Zxid = hdr.Zxid, Time = hdr.Time, Type = sub.Type };
            IJuteRecord rec;
            if (sub.Type == OpCode.Error)
            {
                rec = TxnCodec.ReadTxn(OpCode.Error, sub.Data ?? Array.Empty<byte>());
                postFailed = true;
            }
            else if (failed)
            {
                subHdr.Type = OpCode.Error;
                rec = new ErrorTxn { Err = (int)(postFailed ? Code.RuntimeInconsistency : Code.Ok) };
            }
            else rec = TxnCodec.ReadTxn(sub.Type, sub.Data ?? Array.Empty<byte>());
            var subRc = ProcessTxn(subHdr, rec);
            rc.MultiResult.Add(subRc);
            if (subRc.Err != 0 && rc.Err == 0) rc.Err = subRc.Err;
        }
    }

    // ---- quotas (upstream DataTree quota bookkeeping, not enforced unless configured) ----

    /// <summary>The deepest quota root (under /zookeeper/quota) covering path, or null.</summary>
    public string? QuotaRootFor(string path)
    {
        if (path.StartsWith(ZookeeperPath + "/", StringComparison.Ordinal) || path == ZookeeperPath) return null;
        string p = path;
        while (true)
        {
            string q = (p == "/" ? QuotaPath : QuotaPath + p) + "/" + QuotaLimitNode;
            if (p != "/" && _nodes.ContainsKey(q)) return p;
            if (p == "/") return null;
            p = PathUtils.Parent(p);
        }
    }

    private void UpdateQuotaOnCreate(string path, byte[]? data)
    {
        string name = PathUtils.ChildName(path);
        if (path.StartsWith(QuotaPath + "/", StringComparison.Ordinal) && name == QuotaStatNode)
        {
            string target = PathUtils.Parent(path).Substring(QuotaPath.Length);
            RecomputeQuotaStats(target);
            return;
        }
        string? root = QuotaRootFor(path);
        if (root is not null) AdjustQuotaStats(root, 1, data?.Length ?? 0);
    }

    private void UpdateQuotaOnDelete(string path, byte[]? data)
    {
        string? root = QuotaRootFor(path);
        if (root is not null) AdjustQuotaStats(root, -1, -(data?.Length ?? 0));
    }

    private void UpdateQuotaBytes(string path, long delta)
    {
        string? root = QuotaRootFor(path);
        if (root is not null && delta != 0) AdjustQuotaStats(root, 0, delta);
    }

    /// <summary>Upstream updateQuotaForPath: count/bytes of the subtree (the node included).</summary>
    private void RecomputeQuotaStats(string target)
    {
        long count = 0, bytes = 0;
        void Walk(string p)
        {
            var n = GetNode(p);
            if (n is null) return;
            count++;
            bytes += n.Data?.Length ?? 0;
            foreach (var c in n.Children) Walk(Join(p, c));
        }
        Walk(target);
        var stat = GetNode(QuotaPath + target + "/" + QuotaStatNode);
        if (stat is not null) stat.Data = System.Text.Encoding.UTF8.GetBytes($"count={count},bytes={bytes}");
    }

    private void AdjustQuotaStats(string root, long dCount, long dBytes)
    {
        var stat = GetNode(QuotaPath + root + "/" + QuotaStatNode);
        if (stat is null) return;
        var (count, bytes) = ParseQuota(stat.Data);
        var old = stat.Data;
        stat.Data = System.Text.Encoding.UTF8.GetBytes($"count={count + dCount},bytes={bytes + dBytes}");
        Undo?.Add(() => stat.Data = old);
    }

    public static (long Count, long Bytes) ParseQuota(byte[]? data)
    {
        var t = ParseStatsTrack(data);
        return (t.GetValueOrDefault("count", 0), t.GetValueOrDefault("bytes", 0));
    }

    /// <summary>Upstream StatsTrack parsing: pairs split on ',' or ';', "key=value"; an empty
    /// value is -1. Handles the "count=5,bytes=-1=;byteHardLimit=..;countHardLimit=.." form
    /// that 3.7+ writes so older parsers ignore the hard limits.</summary>
    public static Dictionary<string, long> ParseStatsTrack(byte[]? data)
    {
        var d = new Dictionary<string, long>(StringComparer.Ordinal);
        if (data is null) return d;
        foreach (var part in System.Text.Encoding.UTF8.GetString(data).Split(new[] { ',', ';' }, StringSplitOptions.RemoveEmptyEntries))
        {
            var kv = part.Split('=');
            if (kv.Length < 2) continue;
            d[kv[0]] = kv[1].Length == 0 ? -1 : long.TryParse(kv[1], out long v) ? v : -1;
        }
        return d;
    }

    /// <summary>Upstream ZooKeeperServer.checkQuota (only with zookeeper.enforceQuota): a write
    /// that takes the deepest quota root over a hard count/byte limit is QuotaExceeded; soft
    /// limits are only logged upstream and are not enforced.</summary>
    public void CheckQuota(string path, long bytesDiff, long countDiff)
    {
        string? root = QuotaRootFor(path);
        if (root is null) return;
        var limits = ParseStatsTrack(GetNode(QuotaPath + root + "/" + QuotaLimitNode)?.Data);
        var stats = ParseStatsTrack(GetNode(QuotaPath + root + "/" + QuotaStatNode)?.Data);
        long countHard = limits.GetValueOrDefault("countHardLimit", -1);
        long byteHard = limits.GetValueOrDefault("byteHardLimit", -1);
        if (countDiff != 0 && countHard > -1 && stats.GetValueOrDefault("count", 0) + countDiff > countHard)
            throw new KeeperException(Code.QuotaExceeded, root);
        if (bytesDiff != 0 && byteHard > -1 && stats.GetValueOrDefault("bytes", 0) + bytesDiff > byteHard)
            throw new KeeperException(Code.QuotaExceeded, root);
    }

    /// <summary>Rebuilds derived state (ephemeral sets, children) after a snapshot load.</summary>
    public void LoadNode(string path, DataNode node)
    {
        if (path == "/")
        {
            _nodes["/"] = node;
        }
        else
        {
            var parent = GetNode(PathUtils.Parent(path)) ?? throw new InvalidDataException($"snapshot names {path} before its parent");
            parent.Children.Add(PathUtils.ChildName(path));
            _nodes[path] = node;
            AddEphemeral(node.EphemeralOwner, path);
        }
        Acls.AddUsage(node.Acl);
    }

    public void ClearForLoad()
    {
        _nodes.Clear(); Acls.Clear(); _ephemerals.Clear(); Containers.Clear(); Ttls.Clear();
    }

    public void FinishLoad()
    {
        Acls.PurgeUnused();
        RecomputeDigest();
        // nodes loaded before their stat node was in place: recompute all quota stats
        foreach (var p in _nodes.Keys.Where(p => p.StartsWith(QuotaPath + "/", StringComparison.Ordinal) && p.EndsWith("/" + QuotaStatNode, StringComparison.Ordinal)).ToList())
            RecomputeQuotaStats(PathUtils.Parent(p).Substring(QuotaPath.Length));
    }
}

/// <summary>CRC-32 (IEEE 802.3, reflected 0xEDB88320), as java.util.zip.CRC32 computes it.</summary>
public static class Crc32
{
    private static readonly uint[] Table = BuildTable();

    private static uint[] BuildTable()
    {
        var t = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            uint c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }

    /// <summary>Continues a CRC (start with 0) over more bytes.</summary>
    public static uint Update(uint crc, ReadOnlySpan<byte> data)
    {
        uint c = ~crc;
        foreach (var b in data) c = Table[(c ^ b) & 0xff] ^ (c >> 8);
        return ~c;
    }
}
