using System.Buffers.Binary;

namespace Samsa.Keeper.Server.Quorum;

/// <summary>
/// TRUNC: the leader tells a learner whose log runs past the leader's history (typically an old
/// leader that logged proposals no quorum acknowledged, then came back) to cut its log at a zxid.
/// Upstream Learner.syncWithLeader calls ZKDatabase.truncateLog: FileTxnLog.truncate cuts the log
/// file holding the zxid just after that txn and deletes every later log file, then the database
/// is cleared and loaded again from the snapshot and the remaining log.
/// </summary>
public sealed partial class LearnerStore
{
    /// <summary>Cuts the txn log after <paramref name="zxid"/> and reloads the tree and sessions
    /// from disk up to it. Snapshots newer than <paramref name="zxid"/> hold txns being cut and are
    /// deleted (upstream leaves them, and a restart could then load one: ZOOKEEPER-4785 style).</summary>
    public void TruncateLog(long zxid, Action<string> log)
    {
        if (!_persistent)
        {
            if (LastLoggedZxid > zxid) throw new IOException($"cannot TRUNC to 0x{zxid:x}: an in-memory store keeps no log to reload from");
            return;
        }
        // no periodic snapshot is written while the log is cut and the tree reloaded
        lock (_files)
        {
            lock (_gate)
            {
                _log!.Roll();
                int cut = CutLogFiles(_config.LogDir, zxid, log);
                foreach (var f in Directory.GetFiles(_config.SnapDir, "snapshot.*"))
                {
                    long? z = ZkFiles.ZxidFromName(Path.GetFileName(f), "snapshot");
                    if (z is long sz && sz > zxid)
                    {
                        File.Delete(f);
                        log($"zab: TRUNC removed {Path.GetFileName(f)} (newer than 0x{zxid:x})");
                    }
                }
                log($"zab: TRUNC cut {cut} txn(s) after 0x{zxid:x} from the txn log");
            }
            void Reload()
            {
                lock (_gate)
                {
                    TreeReplaced();
                    Sessions.Clear();
                    Tree.Reset();
                    Tree.LastProcessedZxid = 0;
                    Recover(log);
                }
            }
            // a serving tree is replaced on the server's loop, as LoadSnapshot does
            if (_server is not null) _server.RunOnLoopAsync(() => { Reload(); return 0; }).GetAwaiter().GetResult();
            else Reload();
        }
        if (LastLoggedZxid > zxid)
            throw new IOException($"TRUNC to 0x{zxid:x} left txns up to 0x{LastLoggedZxid:x}");
    }

    /// <summary>Upstream FileTxnLog.truncate on ZooKeeper's log layout (16-byte file header, then
    /// entries of crc(8) length(4) txn(length) 'B'; the txn header's zxid is at txn offset 12):
    /// the file holding the first txn above <paramref name="zxid"/> is cut just before it, later
    /// files are deleted. Returns how many txns were dropped.</summary>
    public static int CutLogFiles(string logDir, long zxid, Action<string> log)
    {
        int dropped = 0;
        bool cutting = false;
        foreach (var (file, _) in TxnLogReader.LogFiles(logDir))
        {
            if (cutting)
            {
                dropped += CountEntries(file, long.MinValue, out _);
                File.Delete(file);
                log($"zab: TRUNC deleted {Path.GetFileName(file)}");
                continue;
            }
            int above = CountEntries(file, zxid, out long cutAt);
            if (above == 0) continue;
            dropped += above;
            cutting = true;
            if (cutAt <= TxnLogReader.HeaderSize)
            {
                File.Delete(file);
                log($"zab: TRUNC deleted {Path.GetFileName(file)}");
            }
            else
            {
                using (var fs = new FileStream(file, FileMode.Open, FileAccess.ReadWrite))
                {
                    fs.SetLength(cutAt);
                    fs.Flush(true);
                }
                log($"zab: TRUNC cut {Path.GetFileName(file)} at offset {cutAt}");
            }
        }
        return dropped;
    }

    /// <summary>Counts the entries of a log file with a zxid above <paramref name="zxid"/> and
    /// finds the offset of the first of them (where the file is cut). Stops at the preallocated
    /// zeros, at the end of the file or at a torn entry.</summary>
    private static int CountEntries(string file, long zxid, out long cutAt)
    {
        cutAt = -1;
        int n = 0;
        using var fs = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        long pos = TxnLogReader.HeaderSize;
        var head = new byte[12 + 20];
        while (true)
        {
            fs.Position = pos;
            if (fs.Read(head, 0, 12) < 12) break;
            int len = BinaryPrimitives.ReadInt32BigEndian(head.AsSpan(8));
            if (len < 20 || pos + 12 + len + 1 > fs.Length) break;
            if (fs.Read(head, 12, 20) < 20) break;
            long z = BinaryPrimitives.ReadInt64BigEndian(head.AsSpan(12 + 12));
            if (z > zxid)
            {
                if (cutAt < 0) cutAt = pos;
                n++;
            }
            pos += 12 + len + 1;
        }
        return n;
    }
}
