using Samsa.Keeper.Protocol;

namespace Samsa.Keeper.Server.Quorum;

/// <summary>
/// DIFF from the txn log on disk (upstream LearnerHandler.syncFollower with txnLogSyncEnabled,
/// ZKDatabase.getProposalsFromTxnLog): a learner whose last zxid is older than the committed log
/// kept in memory (the txns committed since this member began leading, up to 500) but still in
/// this member's txn log gets the txns after it from the log, then the in-memory ones, instead of
/// a whole snapshot. As upstream, the log is used only when it holds the learner's zxid itself
/// (otherwise its history may differ: SNAP), and only when the txns to send are smaller than a
/// third (zookeeper.snapshotSizeFactor 0.33) of the newest snapshot file; without a snapshot file
/// there is no size limit but a bound on the count. Called under the broadcast lock, so the
/// committed log's base does not move while the files are read (upstream holds the log read lock).
/// </summary>
public sealed partial class ZabLeader
{
    private const double SnapshotSizeFactor = 0.33;
    private const int MaxLogDiffTxns = 1_000_000;
    private const long MaxLogDiffBytes = 256L << 20;

    /// <summary>The committed txns after <paramref name="peerZxid"/> up to the committed log's base,
    /// read from the txn log as PROPOSAL data; null when the log cannot serve them (SNAP instead).</summary>
    private List<(long Zxid, byte[] Data)>? DiffFromLog(long peerZxid)
    {
        if (string.IsNullOrEmpty(_config.DataDir) || peerZxid <= 0 || peerZxid >= _logBase) return null;
        long sizeLimit = (long)(NewestSnapshotSize() * SnapshotSizeFactor);
        var txns = new List<(long Zxid, byte[] Data)>();
        long bytes = 0, last = -1;
        try
        {
            foreach (var t in TxnLogReader.Read(_config.LogDir, peerZxid - 1, _config.JuteMaxBuffer, _ => { }))
            {
                if (last < 0)
                {
                    // upstream: "Unable to find proposals from txnlog for zxid"
                    if (t.Hdr.Zxid != peerZxid) return null;
                    last = peerZxid;
                    continue;
                }
                if (t.Hdr.Zxid <= last) return null; // a log going backwards: not one history
                last = t.Hdr.Zxid;
                if (last > _logBase) return null;    // a hole before the base: not all on disk
                var data = Concat(t.Hdr.ToBytes(), t.Txn.ToBytes());
                txns.Add((last, data));
                bytes += data.Length;
                if ((sizeLimit > 0 && bytes > sizeLimit) || txns.Count > MaxLogDiffTxns || bytes > MaxLogDiffBytes)
                {
                    _log($"zab: txns after 0x{peerZxid:x} in the txn log exceed {(sizeLimit > 0 ? $"{sizeLimit} bytes (a third of the newest snapshot)" : "the bound")}; SNAP instead");
                    return null;
                }
                if (last == _logBase) return txns;
            }
        }
        catch (Exception e) when (e is IOException or InvalidDataException or JuteException or UnauthorizedAccessException)
        {
            // a file purged or being appended while read: the learner gets SNAP
            _log($"zab: cannot DIFF 0x{peerZxid:x} from the txn log ({e.Message}); SNAP instead");
        }
        return null;
    }

    private long NewestSnapshotSize()
    {
        try
        {
            return Directory.GetFiles(_config.SnapDir, "snapshot.*")
                .Select(f => (File: f, Zxid: ZkFiles.ZxidFromName(Path.GetFileName(f), "snapshot")))
                .Where(x => x.Zxid is not null).OrderByDescending(x => x.Zxid)
                .Select(x => new FileInfo(x.File).Length).FirstOrDefault();
        }
        catch (IOException) { return 0; }
    }
}
