namespace Samsa.Keeper.Server;

/// <summary>Upstream PurgeTxnLog.purge: keeps the newest snapRetainCount (at least 3) snapshots
/// and every txn log a recovery from the oldest of them needs (the newest log starting at or
/// before it, and all later ones); deletes older files. Used by standalone autopurge and by every
/// quorum member's (upstream DatadirCleanupManager).</summary>
public static class PurgeTxnLog
{
    /// <summary>Returns the names of the files deleted.</summary>
    public static List<string> Purge(string snapDir, string logDir, int snapRetainCount)
    {
        var deleted = new List<string>();
        var snaps = Directory.GetFiles(snapDir, "snapshot.*")
            .Select(f => (File: f, Zxid: ZkFiles.ZxidFromName(Path.GetFileName(f), "snapshot") ?? -1))
            .Where(x => x.Zxid >= 0).OrderByDescending(x => x.Zxid).ToList();
        int keep = Math.Max(3, snapRetainCount);
        if (snaps.Count <= keep) return deleted;
        long oldestKept = snaps[keep - 1].Zxid;
        foreach (var s in snaps.Skip(keep)) Delete(s.File);
        var logs = Directory.GetFiles(logDir, "log.*")
            .Select(f => (File: f, Zxid: ZkFiles.ZxidFromName(Path.GetFileName(f), "log") ?? -1))
            .Where(x => x.Zxid >= 0).OrderBy(x => x.Zxid).ToList();
        // the newest log starting at or before the oldest kept snapshot still holds txns it needs
        long cutoff = logs.Where(l => l.Zxid <= oldestKept).Select(l => l.Zxid).DefaultIfEmpty(-1).Max();
        foreach (var l in logs) if (l.Zxid < cutoff) Delete(l.File);
        return deleted;

        void Delete(string f)
        {
            File.Delete(f);
            deleted.Add(Path.GetFileName(f));
        }
    }
}
