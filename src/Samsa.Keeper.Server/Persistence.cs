using System.Buffers.Binary;
using Samsa.Keeper.Protocol;
using Samsa.Keeper.Protocol.Records;

namespace Samsa.Keeper.Server;

/// <summary>zlib's Adler-32, which upstream FileTxnLog and SnapStream use (java.util.zip.Adler32).</summary>
public struct Adler32
{
    private uint _a, _b;

    public static Adler32 Create() => new() { _a = 1, _b = 0 };

    public void Update(ReadOnlySpan<byte> data)
    {
        const uint Mod = 65521;
        uint a = _a, b = _b;
        while (data.Length > 0)
        {
            int n = Math.Min(data.Length, 5552);
            foreach (var x in data[..n]) { a += x; b += a; }
            a %= Mod; b %= Mod;
            data = data[n..];
        }
        _a = a; _b = b;
    }

    public readonly long Value => ((long)_b << 16) | _a;
}

/// <summary>File names and headers shared by the txn log and snapshots (upstream
/// persistence.Util and FileTxnLog/FileSnap constants).</summary>
public static class ZkFiles
{
    public const int TxnLogMagic = 0x5A4B4C47; // "ZKLG"
    public const int SnapMagic = 0x5A4B534E;   // "ZKSN"
    public const int Version = 2;
    public const string VersionDir = "version-2";

    public static string LogName(long zxid) => "log." + zxid.ToString("x");
    public static string SnapName(long zxid) => "snapshot." + zxid.ToString("x");

    public static long? ZxidFromName(string name, string prefix)
    {
        if (!name.StartsWith(prefix + ".", StringComparison.Ordinal)) return null;
        string hex = name.Substring(prefix.Length + 1);
        return long.TryParse(hex, System.Globalization.NumberStyles.HexNumber, null, out long z) ? z : null;
    }

    public static byte[] Serialize(IJuteRecord r) => r.ToBytes();
}

/// <summary>Appends txns to version-2/log.&lt;first zxid&gt; in upstream's layout: FileHeader, then per
/// txn a long Adler-32 of the entry, an int length, TxnHeader+txn bytes and the 0x42 end marker.
/// Files are preallocated in preAllocSize steps and zero-filled, so readers stop at a zero length.</summary>
public sealed class TxnLogWriter : IDisposable
{
    private readonly string _dir;
    private readonly bool _forceSync;
    private readonly long _preAllocSize;
    private FileStream? _current;
    private long _currentSize;
    private bool _dirty;
    public long CurrentLogZxid { get; private set; } = -1;
    /// <summary>Bytes of txn entries appended since this writer was made (upstream ZKDatabase.getTxnSize's measure).</summary>
    public long AppendedBytes { get; private set; }

    public TxnLogWriter(string logDir, bool forceSync, long preAllocSize)
    {
        _dir = logDir;
        _forceSync = forceSync;
        _preAllocSize = preAllocSize;
        Directory.CreateDirectory(_dir);
    }

    /// <summary>Appends one txn; <paramref name="digest"/> (the tree digest after it) follows the
    /// txn inside the entry, as upstream 3.6+ writes it when digests are enabled.</summary>
    public void Append(TxnHeader hdr, IJuteRecord? txn, TxnDigest? digest = null)
    {
        if (_current is null)
        {
            CurrentLogZxid = hdr.Zxid;
            string path = Path.Combine(_dir, ZkFiles.LogName(hdr.Zxid));
            _current = new FileStream(path, FileMode.Create, FileAccess.ReadWrite, FileShare.Read, 1 << 16);
            var fh = new FileHeader { Magic = ZkFiles.TxnLogMagic, Version = ZkFiles.Version, Dbid = 0 };
            _current.Write(fh.ToBytes());
            // Upstream FileTxnLog.append flushes the header at once ("make sure that the magic
            // number is written before padding"): a crash before the first commit must not leave
            // an empty log.N, which recovery refuses as unreadable (EOF in the file header).
            _current.Flush();
            _currentSize = 0;
        }
        int hl = hdr.Size(), tl = txn?.Size() ?? 0, dl = digest?.Size() ?? 0;
        var entry = new byte[hl + tl + dl];
        var w = new JuteWriter(entry);
        hdr.Write(ref w);
        txn?.Write(ref w);
        digest?.Write(ref w);
        var crc = Adler32.Create();
        crc.Update(entry);
        Span<byte> head = stackalloc byte[12];
        BinaryPrimitives.WriteInt64BigEndian(head, crc.Value);
        BinaryPrimitives.WriteInt32BigEndian(head[8..], entry.Length);
        Pad(_current.Position + 12 + entry.Length + 1);
        _current.Write(head);
        _current.Write(entry);
        _current.WriteByte(0x42);
        AppendedBytes += 12 + entry.Length + 1;
        _dirty = true;
    }

    /// <summary>Upstream FilePadding: grow the file by preAllocSize when within 4 KiB of its end.</summary>
    private void Pad(long position)
    {
        if (_preAllocSize <= 0 || _current is null) return;
        if (position + 4096 >= _currentSize)
        {
            long size = position > _currentSize ? position + _preAllocSize - (position + _preAllocSize) % _preAllocSize : _currentSize + _preAllocSize;
            long pos = _current.Position;
            _current.SetLength(size);
            _current.Position = pos;
            _currentSize = size;
        }
    }

    /// <summary>Told each commit's flush time in ms (upstream's fsynctime summary, KeeperMetrics).</summary>
    public Action<long>? Synced { get; init; }

    /// <summary>Flushes and, with forceSync, fsyncs; called once per batch before any reply.</summary>
    public void Commit()
    {
        if (_current is null || !_dirty) return;
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        _current.Flush(_forceSync);
        _dirty = false;
        Synced?.Invoke((long)System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds);
    }

    /// <summary>Closes the current file; the next append starts log.&lt;its zxid&gt;.</summary>
    public void Roll()
    {
        Commit();
        _current?.Dispose();
        _current = null;
    }

    public void Dispose() => Roll();
}

/// <summary>Snapshots in upstream FileSnap layout: FileHeader(ZKSN, 2, dbid -1); session count and
/// (id, timeout) pairs; the ACL cache (count, then id + ACL vector); every node as (path, data,
/// acl id, StatPersisted) with the root written as ""; the "/" end marker; a seal (Adler-32 of all
/// bytes so far, then "/"); the 3.6+ zxid digest record (zxid, version, tree digest); a second seal.</summary>
public static class SnapshotFile
{
    public static void Write(string path, DataTree tree, IReadOnlyDictionary<long, int> sessions, bool fsync, bool digest = true) =>
        WriteBytes(path, Serialize(tree, sessions, digest), fsync);

    /// <summary>The whole snapshot file's bytes for the tree as it is now (its zxid: the tree's
    /// LastProcessedZxid). Quorum members take it on the server loop and write it elsewhere.</summary>
    public static ArraySegment<byte> Serialize(DataTree tree, IReadOnlyDictionary<long, int> sessions, bool digest = true)
    {
        var ms = new MemoryStream();
        void Put(IJuteRecord r) => ms.Write(r.ToBytes());
        void PutInt(int v) { Span<byte> b = stackalloc byte[4]; BinaryPrimitives.WriteInt32BigEndian(b, v); ms.Write(b); }
        void PutLong(long v) { Span<byte> b = stackalloc byte[8]; BinaryPrimitives.WriteInt64BigEndian(b, v); ms.Write(b); }
        void PutString(string? s)
        {
            if (s is null) { PutInt(-1); return; }
            var b = System.Text.Encoding.UTF8.GetBytes(s);
            PutInt(b.Length); ms.Write(b);
        }
        void Seal()
        {
            var a = Adler32.Create();
            a.Update(ms.GetBuffer().AsSpan(0, (int)ms.Length));
            PutLong(a.Value);
            PutString("/");
        }

        Put(new FileHeader { Magic = ZkFiles.SnapMagic, Version = ZkFiles.Version, Dbid = -1 });
        PutInt(sessions.Count);
        foreach (var (id, to) in sessions) { PutLong(id); PutInt(to); }
        PutInt(tree.Acls.Count);
        foreach (var (id, acls) in tree.Acls.Entries)
        {
            PutLong(id);
            PutInt(acls.Count);
            foreach (var a in acls) Put(a);
        }
        void WriteNode(string p)
        {
            var n = tree.GetNode(p)!;
            PutString(p == "/" ? "" : p);
            var b = n.Data;
            if (b is null) PutInt(-1); else { PutInt(b.Length); ms.Write(b); }
            PutLong(n.Acl);
            Put(new StatPersisted
            {
                Czxid = n.Czxid, Mzxid = n.Mzxid, Ctime = n.Ctime, Mtime = n.Mtime, Version = n.Version,
                Cversion = n.Cversion, Aversion = n.Aversion, EphemeralOwner = n.EphemeralOwner, Pzxid = n.Pzxid,
            });
            foreach (var c in n.Children) WriteNode(DataTree.Join(p, c));
        }
        WriteNode("/");
        PutString("/");
        Seal();
        // The zxid digest (3.6+): the tree digest at the snapshot's zxid, which upstream compares
        // with the tree it loads.
        // With digests off, upstream writes neither the record nor its seal.
        if (digest)
        {
            PutLong(tree.LastProcessedZxid); PutInt(DataTree.DigestVersion); PutLong(tree.TreeDigest);
            Seal();
        }
        return new ArraySegment<byte>(ms.GetBuffer(), 0, (int)ms.Length);
    }

    /// <summary>Writes a serialized snapshot beside its final name, then renames it into place.</summary>
    public static void WriteBytes(string path, ArraySegment<byte> bytes, bool fsync)
    {
        string tmp = path + ".tmp";
        using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write))
        {
            fs.Write(bytes);
            fs.Flush(fsync);
        }
        File.Move(tmp, path, true);
    }

    /// <summary>Upstream SnapStream.isValidSnapshot (checked stream): at least 10 bytes and ending in
    /// the "/" marker; otherwise null and why.</summary>
    public static bool LooksValid(string path) => InvalidReason(path) is null;

    public static string? InvalidReason(string path)
    {
        var fi = new FileInfo(path);
        if (fi.Length < 10) return $"too short ({fi.Length} bytes)";
        using var fs = File.OpenRead(path);
        fs.Seek(-5, SeekOrigin.End);
        Span<byte> b = stackalloc byte[5];
        fs.ReadExactly(b);
        int len = BinaryPrimitives.ReadInt32BigEndian(b);
        // upstream logs "Invalid snapshot {}. len = {}, byte = {}"
        return len == 1 && b[4] == (byte)'/' ? null : $"it does not end in the \"/\" marker (len = {len}, byte = {b[4]})";
    }

    /// <summary>Loads a snapshot into <paramref name="tree"/>; returns the sessions it lists and
    /// its zxid digest (zxid, digest) when it has one.</summary>
    public static (Dictionary<long, int> Sessions, (long Zxid, long Digest)? ZxidDigest) Read(string path, DataTree tree)
    {
        byte[] bytes = File.ReadAllBytes(path);
        var r = new JuteReader(bytes, int.MaxValue);
        var fh = FileHeader.Read(ref r);
        if (fh.Magic != ZkFiles.SnapMagic) throw new InvalidDataException($"{path}: bad snapshot magic {fh.Magic:x}");
        var sessions = new Dictionary<long, int>();
        int count = r.ReadVectorCount();
        for (int i = 0; i < count; i++) { long id = r.ReadLong(); sessions[id] = r.ReadInt(); }
        tree.ClearForLoad();
        int acls = r.ReadVectorCount();
        for (int i = 0; i < acls; i++)
        {
            long id = r.ReadLong();
            int n = r.ReadVectorCount();
            var list = new List<ACL>(Math.Max(n, 0));
            for (int j = 0; j < n; j++) list.Add(ACL.Read(ref r));
            tree.Acls.Load(id, list);
        }
        while (true)
        {
            string p = r.ReadUString() ?? throw new InvalidDataException($"{path}: null node path");
            if (p == "/") break;
            // A node path no ZooKeeper server creates (relative, "//", a trailing '/') would be
            // listed under a parent the tree cannot map back to it: the snapshot is unusable, like
            // one with a bad checksum (fuzz target txnlog-recovery, issue 14).
            if (p != "" && !PathUtils.IsValid(p)) throw new InvalidDataException($"{path}: node path \"{p}\" is not a znode path");
            var data = r.ReadBuffer();
            long acl = r.ReadLong();
            var st = StatPersisted.Read(ref r);
            tree.LoadNode(p == "" ? "/" : p, new DataNode
            {
                Data = data, Acl = acl, Czxid = st.Czxid, Mzxid = st.Mzxid, Ctime = st.Ctime, Mtime = st.Mtime,
                Version = st.Version, Cversion = st.Cversion, Aversion = st.Aversion, EphemeralOwner = st.EphemeralOwner, Pzxid = st.Pzxid,
            });
        }
        int sealedLen = r.Position;
        long crc = r.ReadLong();
        var a = Adler32.Create();
        a.Update(bytes.AsSpan(0, sealedLen));
        if (a.Value != crc) throw new InvalidDataException($"{path}: snapshot checksum mismatch (CRC corruption)");
        if (r.ReadUString() != "/") throw new InvalidDataException($"{path}: snapshot seal marker missing");
        tree.FinishLoad();
        if (tree.GetNode("/") is null) throw new InvalidDataException($"{path}: snapshot has no root");
        (long, long)? zd = null;
        if (r.Remaining >= 20)
        {
            long zxid = r.ReadLong();
            int version = r.ReadInt();
            // digest version < 2 stored the digest as a hex string (upstream ZxidDigest)
            long digest = version >= 2 ? r.ReadLong() : long.TryParse(r.ReadUString(), System.Globalization.NumberStyles.HexNumber, null, out long d) ? d : 0;
            // upstream FileSnap.deserialize checks the second seal after the digest record too
            int digestEnd = r.Position;
            long crc2 = r.ReadLong();
            var a2 = Adler32.Create();
            a2.Update(bytes.AsSpan(0, digestEnd));
            if (a2.Value != crc2) throw new InvalidDataException($"{path}: snapshot checksum mismatch after the zxid digest (CRC corruption)");
            if (zxid > 0 && version == DataTree.DigestVersion) zd = (zxid, digest);
        }
        return (sessions, zd);
    }
}
