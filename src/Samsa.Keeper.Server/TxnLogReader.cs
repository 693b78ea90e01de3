using System.Buffers.Binary;
using Samsa.Keeper.Protocol;
using Samsa.Keeper.Protocol.Records;

namespace Samsa.Keeper.Server;

// Reads version-2/log.* on recovery the way Apache ZooKeeper 3.8's FileTxnLog.FileTxnIterator
// does, so a damaged data directory gives the same outcome on both servers:
//  - A file whose 16-byte FileHeader cannot be read (truncated to fewer bytes, zero length) or has
//    the wrong magic is fatal (upstream: EOFException / "invalid magic number" out of init()).
//  - An entry whose Adler-32 does not match is fatal ("CRC check failed"); so is a length outside
//    0..jute.maxbuffer+extrasize ("Unreasonable length") and a length of -1 (upstream dies on a
//    NullPointerException there).
//  - An entry whose end-of-record byte is not 'B' ends the file with "Last transaction was
//    partial." (checked before the CRC, as Util.readTxnBytes does); reading goes on with the next
//    log file.
//  - A zero length (preallocated space) and end of file anywhere inside an entry end the file
//    quietly upstream; the Keeper logs the latter (a torn tail), since it means lost bytes.
// Differences: a txn body that passes its CRC but does not decode (a multi's sub-txns included), or
// that creates a path ZooKeeper never writes, is fatal here; upstream treats
// an EOFException inside the body as end of file. The Keeper names file and offset in every
// message; upstream's exceptions name neither.

/// <summary>Damage that stops recovery: the log file, the byte offset of the entry (or header) that
/// cannot be read, and the zxid of the last whole txn before it in that file (-1 if none).</summary>
public sealed class TxnLogDamageException : IOException
{
    public string File { get; }
    public long Offset { get; }
    public string Reason { get; }
    public long LastGoodZxid { get; }
    /// <summary>The zxid recovery replays from (the loaded snapshot's).</summary>
    public long SnapshotZxid { get; }

    public TxnLogDamageException(string file, long offset, string reason, long lastGoodZxid, long snapshotZxid)
        : base($"txn log {file}: {reason} at offset {offset}" + (offset < TxnLogReader.HeaderSize ? " (file header)" : lastGoodZxid >= 0 ? $" (the entry after zxid 0x{lastGoodZxid:x})" : " (its first entry)")
            + "; the Keeper does not start on a damaged txn log, as ZooKeeper 3.8 does not. `samsa keeper --recover-truncate` truncates the log there and drops what follows")
    {
        File = file;
        Offset = offset;
        Reason = reason;
        LastGoodZxid = lastGoodZxid;
        SnapshotZxid = snapshotZxid;
    }
}

public readonly record struct LoggedTxn(TxnHeader Hdr, IJuteRecord Txn, TxnDigest? Digest);

/// <summary>Recovery's view of the txn logs (upstream FileTxnLog.FileTxnIterator).</summary>
public static class TxnLogReader
{
    public const int HeaderSize = 16;

    /// <summary>log.* files whose names carry a zxid, in zxid order.</summary>
    public static List<(string File, long Zxid)> LogFiles(string logDir) =>
        !Directory.Exists(logDir) ? new() : Directory.GetFiles(logDir, "log.*")
            .Select(f => (File: f, Zxid: ZkFiles.ZxidFromName(Path.GetFileName(f), "log")))
            .Where(x => x.Zxid is not null).Select(x => (x.File, x.Zxid!.Value)).OrderBy(x => x.Item2).ToList();

    /// <summary>Upstream FileTxnIterator.init: the logs named at or above <paramref name="startZxid"/>
    /// and the newest one below it (which may hold it), oldest first.</summary>
    public static List<(string File, long Zxid)> Selected(string logDir, long startZxid)
    {
        var logs = LogFiles(logDir);
        int first = 0;
        for (int i = 0; i < logs.Count; i++) if (logs[i].Zxid < startZxid) first = i;
        return logs.Skip(first).ToList();
    }

    /// <summary>The txns after <paramref name="snapshotZxid"/>: the iterator fast-forwards past lower
    /// zxids once, at its start, then yields every txn that follows (upstream replays those too).
    /// <paramref name="log"/> gets one line per partial or torn entry.</summary>
    public static IEnumerable<LoggedTxn> Read(string logDir, long snapshotZxid, int maxBuffer, Action<string> log)
    {
        long start = snapshotZxid + 1;
        // jute.maxbuffer plus zookeeper.jute.maxbuffer.extrasize (which defaults to jute.maxbuffer,
        // at least 1024): BinaryInputArchive.checkLength
        long maxLen = (long)maxBuffer + Math.Max(1024, maxBuffer);
        bool reached = false;
        foreach (var (file, _) in Selected(logDir, start))
        {
            foreach (var t in ReadFile(file, maxLen, snapshotZxid, log))
            {
                if (!reached && t.Hdr.Zxid < start) continue;
                reached = true;
                yield return t;
            }
        }
    }

    private static IEnumerable<LoggedTxn> ReadFile(string path, long maxLen, long snapshotZxid, Action<string> log)
    {
        string name = Path.GetFileName(path);
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1 << 16);
        var stream = new PositionedReader(fs);
        var head = new byte[HeaderSize];
        if (!stream.TryRead(head))
            throw new TxnLogDamageException(path, 0, $"end of file inside the file header (the file is {fs.Length} bytes, the header {HeaderSize})", -1, snapshotZxid);
        int magic = BinaryPrimitives.ReadInt32BigEndian(head);
        if (magic != ZkFiles.TxnLogMagic)
            throw new TxnLogDamageException(path, 0, $"invalid magic number {magic} != {ZkFiles.TxnLogMagic}", -1, snapshotZxid);
        long lastGood = -1;
        var word = new byte[12];
        while (true)
        {
            long entryStart = stream.Position;
            if (!stream.TryRead(word.AsMemory(0, 8)))
            {
                if (stream.Position > entryStart) TornTail(log, name, entryStart, lastGood);
                yield break;
            }
            long crc = BinaryPrimitives.ReadInt64BigEndian(word);
            if (!stream.TryRead(word.AsMemory(8, 4)))
            {
                TornTail(log, name, entryStart, lastGood);
                yield break;
            }
            int len = BinaryPrimitives.ReadInt32BigEndian(word.AsSpan(8));
            if (len == 0) yield break; // preallocated zeros: the end of this file's txns
            if (len == -1)
                throw new TxnLogDamageException(path, entryStart, "entry length -1 (null)", lastGood, snapshotZxid);
            if (len < 0 || len > maxLen)
                throw new TxnLogDamageException(path, entryStart, $"Unreasonable length = {len}", lastGood, snapshotZxid);
            if (len >= fs.Length - stream.Position)
            {
                // The entry and its end-of-record byte do not fit in the file: a torn tail, found
                // before allocating the buffer (CountWhole reads with no length limit).
                TornTail(log, name, entryStart, lastGood);
                yield break;
            }
            var entry = new byte[len];
            var eor = new byte[1];
            if (!stream.TryRead(entry) || !stream.TryRead(eor))
            {
                TornTail(log, name, entryStart, lastGood);
                yield break;
            }
            if (eor[0] != 0x42)
            {
                log($"Last transaction was partial: {name} at offset {entryStart}" + After(lastGood)
                    + $" ends in 0x{eor[0]:x2} where 'B' belongs; the rest of this file is not replayed");
                yield break;
            }
            var a = Adler32.Create();
            a.Update(entry);
            if (a.Value != crc)
                throw new TxnLogDamageException(path, entryStart, "CRC check failed", lastGood, snapshotZxid);
            LoggedTxn t;
            try
            {
                var er = new JuteReader(entry, int.MaxValue);
                var hdr = TxnHeader.Read(ref er);
                var txn = TxnCodec.ReadTxn(hdr.Type, ref er);
                CheckPaths(txn);
                if (txn is MultiTxn multi)
                {
                    // Upstream DataTree.processTxn deserializes every sub-txn of a multi before it
                    // applies any, and refuses a type it has no record for (a nested multi among
                    // them): a sub-txn that does not decode is damage like a txn that does not.
                    foreach (var sub in multi.Txns ?? [])
                    {
                        if (sub.Type == OpCode.Multi) throw new JuteException("a multi inside a multi");
                        CheckPaths(TxnCodec.ReadTxn(sub.Type, sub.Data ?? []));
                    }
                }
                // a TxnDigest follows when the writer had digests enabled (3.6+)
                TxnDigest? digest = er.Remaining >= 12 ? TxnDigest.Read(ref er) : null;
                t = new LoggedTxn(hdr, txn, digest);
            }
            catch (Exception e) when (e is JuteException or InvalidDataException or InvalidCastException or ArgumentException)
            {
                throw new TxnLogDamageException(path, entryStart, "cannot decode the txn: " + e.Message, lastGood, snapshotZxid);
            }
            lastGood = t.Hdr.Zxid;
            yield return t;
        }
    }

    /// <summary>The tree applies a txn's path as it stands: a created path no ZooKeeper server
    /// writes (null, relative, ending in '/', "//") would leave its parent listing a child the tree
    /// cannot find, and a null path fails any op. Such a txn is damage (fuzz target txnlog-recovery).</summary>
    private static void CheckPaths(IJuteRecord txn)
    {
        string? created = txn switch
        {
            CreateTxn t => t.Path, CreateTxnV0 t => t.Path, CreateTTLTxn t => t.Path, CreateContainerTxn t => t.Path, _ => "/",
        };
        if (!PathUtils.IsValid(created))
            throw new InvalidDataException($"created path {(created is null ? "null" : "\"" + created + "\"")} is not a znode path");
        string? named = txn switch
        {
            DeleteTxn t => t.Path, SetDataTxn t => t.Path, SetACLTxn t => t.Path, CheckVersionTxn t => t.Path, _ => "/",
        };
        if (named is null) throw new InvalidDataException("null path");
    }

    private static string After(long zxid) => zxid >= 0 ? $" (the entry after zxid 0x{zxid:x})" : " (its first entry)";

    private static void TornTail(Action<string> log, string name, long offset, long lastGood) =>
        log($"{name} ends inside the entry at offset {offset}" + After(lastGood) + "; the txns before it are replayed");

    /// <summary>Makes the log readable past <paramref name="d"/> by cutting the damaged file at the
    /// damaged entry (the whole file when the header is damaged) and moving aside later logs that
    /// would leave a gap in the history after the dropped txns. Originals are kept in the log
    /// directory as damaged.log.&lt;zxid&gt; (a name neither server reads as a log). Returns one
    /// line per change.</summary>
    public static List<string> TruncateAt(string logDir, TxnLogDamageException d)
    {
        var notes = new List<string>();
        string name = Path.GetFileName(d.File);
        long fileZxid = ZkFiles.ZxidFromName(name, "log") ?? throw new InvalidDataException("not a txn log: " + d.File);
        string aside = MoveAside(d.File);
        long dropped = DataLength(aside) - Math.Min(d.Offset, DataLength(aside));
        if (d.Offset >= HeaderSize)
        {
            using (var src = new FileStream(aside, FileMode.Open, FileAccess.Read))
            using (var dst = new FileStream(d.File, FileMode.CreateNew, FileAccess.Write))
            {
                var buf = new byte[1 << 16];
                long left = d.Offset;
                while (left > 0)
                {
                    int n = src.Read(buf, 0, (int)Math.Min(buf.Length, left));
                    if (n <= 0) break;
                    dst.Write(buf, 0, n);
                    left -= n;
                }
                dst.Flush(true);
            }
            notes.Add($"--recover-truncate: {name} cut at offset {d.Offset} ({d.Reason}): kept the txns"
                + (d.LastGoodZxid >= 0 ? $" up to zxid 0x{d.LastGoodZxid:x}" : " (none)")
                + $", dropped {dropped} bytes after them; the original is {Path.GetFileName(aside)}");
        }
        else
        {
            notes.Add($"--recover-truncate: {name} dropped whole ({d.Reason} in its header, {dropped} bytes); moved to {Path.GetFileName(aside)}");
        }
        // The history now ends at the last kept txn (or at what the snapshot covers); a later log
        // starting beyond that would replay after a gap, so it and everything after it goes too.
        long covered = Math.Max(d.LastGoodZxid >= 0 ? d.LastGoodZxid : fileZxid - 1, d.SnapshotZxid);
        var later = LogFiles(logDir).Where(l => l.Zxid > fileZxid).ToList();
        int gap = later.FindIndex(l => l.Zxid > covered + 1);
        if (gap >= 0)
        {
            foreach (var (f, z) in later.Skip(gap))
            {
                var (count, last) = CountWhole(f);
                string moved = MoveAside(f);
                notes.Add($"--recover-truncate: {Path.GetFileName(f)} dropped ({count} txns, zxid 0x{z:x}" + (count > 0 ? $"..0x{last:x}" : "")
                    + $", after the dropped ones); moved to {Path.GetFileName(moved)}");
            }
        }
        return notes;
    }

    private static string MoveAside(string file)
    {
        string dir = Path.GetDirectoryName(file)!;
        string target = Path.Combine(dir, "damaged." + Path.GetFileName(file));
        for (int i = 1; File.Exists(target); i++) target = Path.Combine(dir, $"damaged.{Path.GetFileName(file)}.{i}");
        File.Move(file, target);
        return target;
    }

    /// <summary>The file's length without its trailing zeros (preallocated space holds no data).</summary>
    private static long DataLength(string file)
    {
        using var fs = new FileStream(file, FileMode.Open, FileAccess.Read);
        var buf = new byte[1 << 16];
        long end = fs.Length;
        while (end > 0)
        {
            int n = (int)Math.Min(buf.Length, end);
            fs.Position = end - n;
            fs.ReadExactly(buf, 0, n);
            int i = Array.FindLastIndex(buf, n - 1, n, b => b != 0);
            if (i >= 0) return end - n + i + 1;
            end -= n;
        }
        return 0;
    }

    /// <summary>Whole txns at the start of a log (stops quietly at any damage).</summary>
    private static (int Count, long Last) CountWhole(string file)
    {
        int count = 0;
        long last = -1;
        try
        {
            foreach (var t in ReadFile(file, int.MaxValue, -1, _ => { })) { count++; last = t.Hdr.Zxid; }
        }
        catch (IOException) { }
        return (count, last);
    }

    /// <summary>Reads whole buffers and counts the bytes consumed; a short read means end of file.</summary>
    private sealed class PositionedReader(Stream s)
    {
        public long Position { get; private set; }

        public bool TryRead(Memory<byte> buf)
        {
            int got = 0;
            while (got < buf.Length)
            {
                int n = s.Read(buf.Span[got..]);
                if (n <= 0) break;
                got += n;
            }
            Position += got;
            return got == buf.Length;
        }
    }
}
