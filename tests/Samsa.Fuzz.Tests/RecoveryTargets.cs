using System.Buffers.Binary;
using Samsa.Kafka.Protocol.Records;
using Samsa.Kafka.Storage;
using Samsa.Keeper.Server;

namespace Samsa.Fuzz;

/// <summary>
/// The two on-disk recoveries (issue 14): the broker's log loading after an unclean shutdown
/// (src/Samsa.Kafka.Storage: LogManager → PartitionLog.Open → LogSegment.Recover, IndexFile sanity
/// checks) and the Keeper's start on a data directory (KeeperServer.Start → snapshot + TxnLogReader).
/// Each input becomes files in a per-process temp directory (removed after every execution) which
/// is then opened through the public entry point the servers use. Inputs above 64 KiB are ignored.
/// </summary>
public static class RecoveryTargets
{
    public const int MaxInput = 64 * 1024;

    // ------------------------------------------------------------------ broker segment recovery

    // Small segments and a small index interval: the base log has several segments with index entries.
    private static readonly LogConfig SegmentConfig = new()
    {
        SegmentBytes = 2048, IndexIntervalBytes = 128, SegmentIndexBytes = 4096, RetentionMs = -1, FileDeleteDelayMs = 0,
    };
    private static readonly TopicPartition Tp = new("fz", 0);
    private const long T0 = 1_700_000_000_000;

    /// <summary>What input byte 0 (mod 8) replaces, and how the previous run stopped.</summary>
    public enum SegmentMode
    {
        ActiveLog,            // the active segment's .log, unclean stop, recovery point from the checkpoint
        FirstLogFullRecovery, // the first segment's .log, unclean stop, no recovery-point checkpoint
        FirstIndexClean,      // the first segment's .index, clean stop (sanity check, rebuild)
        FirstTimeIndexClean,  // the first segment's .timeindex, clean stop
        ActiveIndex,          // the active segment's .index, unclean stop
        ActiveTimeIndex,      // the active segment's .timeindex, unclean stop
        RecoveryCheckpoint,   // recovery-point-offset-checkpoint, unclean stop
        MiddleLogFullRecovery, // the second segment's .log, unclean stop, no checkpoint
    }

    /// <summary>Bit 3 of byte 0: before writing a .log input, recompute the CRC of every batch the
    /// input frames, so mutations reach past the CRC check into offsets, epochs and transactions.</summary>
    public const byte FixCrcFlag = 0x08;

    private static Dictionary<string, byte[]>? _baseLog;
    private static readonly string SegmentDir = Path.Combine(Path.GetTempPath(), $"samsa-fuzz-segment-{Environment.ProcessId}");

    /// <summary>The files of a log written by the storage layer (relative to the log directory),
    /// after a flush and checkpoint, left as a kill -9 leaves them (no clean-shutdown marker).</summary>
    public static Dictionary<string, byte[]> BaseLog => _baseLog ??= BuildBaseLog();

    private static Dictionary<string, byte[]> BuildBaseLog()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"samsa-fuzz-segment-base-{Environment.ProcessId}");
        if (Directory.Exists(dir)) Directory.Delete(dir, true);
        try
        {
            using (var manager = new LogManager([dir], SegmentConfig))
            {
                PartitionLog log = manager.GetOrCreateLog(Tp);
                int epoch = 0, sequence = 0;
                for (int i = 0; i < 40; i++)
                {
                    if (i % 15 == 0) epoch++;
                    byte[] value = System.Text.Encoding.UTF8.GetBytes($"value-{i:D3}-" + new string('v', i % 7 * 10));
                    byte[] batch = i % 5 == 3
                        ? RecordBatchBuilder.Build([(null, value), ("k"u8.ToArray(), value)], T0 + i, producerId: 7, producerEpoch: 0, baseSequence: (sequence += 2) - 2)
                        : RecordBatchBuilder.Build([(System.Text.Encoding.UTF8.GetBytes($"key-{i % 4}"), value)], T0 + i);
                    log.AppendAsLeader(batch, epoch);
                    if (i == 20)
                    {
                        // A transaction aborted and one committed: recovery rebuilds the transaction index.
                        log.AppendAsLeader(Transactional(11, "aborted"), epoch);
                        log.AppendAsLeader(ControlRecords.BuildEndTxnMarkerBatch(ControlRecordType.Abort, 11, 0, 0, T0 + i), epoch);
                        log.AppendAsLeader(Transactional(12, "committed"), epoch);
                        log.AppendAsLeader(ControlRecords.BuildEndTxnMarkerBatch(ControlRecordType.Commit, 12, 0, 0, T0 + i), epoch);
                    }
                }
                log.Flush();
                log.PendingRollFlush.Wait();
                manager.CheckpointAll();
            }
            var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
            foreach (string f in Directory.GetFiles(dir, "*", SearchOption.AllDirectories))
            {
                string rel = Path.GetRelativePath(dir, f);
                if (rel == LogManager.CleanShutdownFileName) continue;
                files[rel] = File.ReadAllBytes(f);
            }
            return files;
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    private static byte[] Transactional(long producerId, string value)
    {
        byte[] batch = RecordBatchBuilder.Build([(null, System.Text.Encoding.UTF8.GetBytes(value))], T0, producerId, 0, 0);
        short attributes = BinaryPrimitives.ReadInt16BigEndian(batch.AsSpan(RecordBatch.AttributesOffset));
        BinaryPrimitives.WriteInt16BigEndian(batch.AsSpan(RecordBatch.AttributesOffset), (short)(attributes | RecordBatch.TransactionalFlagMask));
        RecordBatch.WriteCrc(batch);
        return batch;
    }

    private static List<long> BaseSegments() => BaseLog.Keys
        .Where(k => k.EndsWith(LogSegment.LogSuffix, StringComparison.Ordinal))
        .Select(k => long.Parse(Path.GetFileName(k)[..^LogSegment.LogSuffix.Length], System.Globalization.CultureInfo.InvariantCulture))
        .Order().ToList();

    /// <summary>The base file (relative path) that <paramref name="mode"/> replaces.</summary>
    public static string SegmentModeFile(SegmentMode mode)
    {
        var bases = BaseSegments();
        string dir = PartitionLog.DirectoryName(Tp);
        string Seg(long b, string suffix) => Path.Combine(dir, LogSegment.FileNamePrefix(b) + suffix);
        return mode switch
        {
            SegmentMode.ActiveLog => Seg(bases[^1], LogSegment.LogSuffix),
            SegmentMode.FirstLogFullRecovery => Seg(bases[0], LogSegment.LogSuffix),
            SegmentMode.FirstIndexClean => Seg(bases[0], LogSegment.IndexSuffix),
            SegmentMode.FirstTimeIndexClean => Seg(bases[0], LogSegment.TimeIndexSuffix),
            SegmentMode.ActiveIndex => Seg(bases[^1], LogSegment.IndexSuffix),
            SegmentMode.ActiveTimeIndex => Seg(bases[^1], LogSegment.TimeIndexSuffix),
            SegmentMode.RecoveryCheckpoint => OffsetCheckpointFile.RecoveryPoint,
            SegmentMode.MiddleLogFullRecovery => Seg(bases[1], LogSegment.LogSuffix),
            _ => throw new ArgumentOutOfRangeException(nameof(mode)),
        };
    }

    /// <summary>
    /// Byte 0 chooses the file the rest of the input replaces in a log written by the storage layer
    /// (<see cref="SegmentMode"/>, and <see cref="FixCrcFlag"/>); the directory is then opened as the
    /// broker opens it at start (LogManager), the whole log read back and one batch appended.
    /// Allowed: recovery truncating or rebuilding (and logging it), or refusing with
    /// InvalidDataException (the storage layer's exception for a malformed file). Anything else is a
    /// crash, and so is a read-back that breaks the invariants: every batch served has a valid CRC,
    /// offsets only increase, every offset between log start and log end can be read, and the
    /// appended batch lands at the old log end.
    /// </summary>
    public static void SegmentRecovery(byte[] data)
    {
        if (data.Length < 1 || data.Length > MaxInput) return;
        try
        {
            SegmentRecoveryIn(data);
        }
        finally
        {
            // Nothing is left behind when the process ends (AFL starts many).
            if (Directory.Exists(SegmentDir)) Directory.Delete(SegmentDir, true);
        }
    }

    private static void SegmentRecoveryIn(byte[] data)
    {
        var mode = (SegmentMode)(data[0] & 7);
        byte[] content = data[1..];
        if ((data[0] & FixCrcFlag) != 0 && mode is SegmentMode.ActiveLog or SegmentMode.FirstLogFullRecovery or SegmentMode.MiddleLogFullRecovery)
            FixBatchCrcs(content);

        if (Directory.Exists(SegmentDir)) Directory.Delete(SegmentDir, true);
        Directory.CreateDirectory(SegmentDir);
        string replaced = SegmentModeFile(mode);
        foreach (var (rel, bytes) in BaseLog)
        {
            if (rel == OffsetCheckpointFile.RecoveryPoint && mode is SegmentMode.FirstLogFullRecovery or SegmentMode.MiddleLogFullRecovery) continue;
            string path = Path.Combine(SegmentDir, rel);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllBytes(path, rel == replaced ? content : bytes);
        }
        if (mode is SegmentMode.FirstIndexClean or SegmentMode.FirstTimeIndexClean)
            File.WriteAllBytes(Path.Combine(SegmentDir, LogManager.CleanShutdownFileName), []);

        LogManager manager;
        try
        {
            manager = new LogManager([SegmentDir], SegmentConfig, log: _ => { });
        }
        catch (InvalidDataException)
        {
            return;
        }
        using (manager)
        {
            PartitionLog log = manager.GetLog(Tp) ?? throw new InvalidOperationException("the partition's log was not loaded");
            Targets.Reached("segment-recovery");
            long end = ReadBack(log);
            if (end != log.LogEndOffset)
                throw new InvalidOperationException($"read back to offset {end}, but the log end offset is {log.LogEndOffset}");
            int epoch = Math.Max(log.EpochCache.LatestEpoch, 0);
            byte[] batch = RecordBatchBuilder.Build([(null, "after recovery"u8.ToArray())], T0);
            LogAppendInfo info = log.AppendAsLeader(batch, epoch);
            if (info.FirstOffset != end || log.LogEndOffset != end + 1)
                throw new InvalidOperationException($"append after recovery got offset {info.FirstOffset} (log end {log.LogEndOffset}), expected {end}");
            if (ReadBack(log, end) != end + 1)
                throw new InvalidOperationException("the batch appended after recovery does not read back");
        }
    }

    /// <summary>Reads from <paramref name="from"/> (default: the log start) to the log end; returns
    /// the offset after the last batch read.</summary>
    private static long ReadBack(PartitionLog log, long from = -1)
    {
        long offset = from < 0 ? log.LogStartOffset : from;
        long lastOffset = offset - 1;
        bool first = true;
        for (int reads = 0; offset < log.LogEndOffset; reads++)
        {
            if (reads > 100_000) throw new InvalidOperationException($"reading the log does not progress at offset {offset}");
            FetchDataInfo info = log.Read(offset, 1 << 20, log.LogEndOffset);
            if (info.Records is not FileRange range)
                throw new InvalidOperationException($"nothing read at offset {offset}, below the log end offset {log.LogEndOffset}");
            byte[] bytes = new byte[range.Length];
            RandomAccess.Read(range.File.SafeFileHandle, bytes, range.Position);
            int pos = 0;
            while (pos < bytes.Length)
            {
                if (bytes.Length - pos < RecordBatch.HeaderSize)
                    throw new InvalidOperationException($"a read at offset {offset} ends with {bytes.Length - pos} bytes of a batch header");
                var batch = new RecordBatch(bytes.AsSpan(pos));
                if (batch.BatchLength < RecordBatch.HeaderSize - RecordBatch.LogOverhead || batch.SizeInBytes > bytes.Length - pos)
                    throw new InvalidOperationException($"a read at offset {offset} serves a batch of length {batch.BatchLength} with {bytes.Length - pos} bytes left");
                var error = batch.Validate();
                if (error != RecordBatchError.None)
                    throw new InvalidOperationException($"recovered log serves a batch at offset {batch.BaseOffset} that fails validation: {error}");
                if (batch.BaseOffset <= lastOffset && !first || batch.LastOffset < batch.BaseOffset)
                    throw new InvalidOperationException($"offsets do not increase: batch {batch.BaseOffset}..{batch.LastOffset} after {lastOffset}");
                if (batch.LastOffset < offset)
                    throw new InvalidOperationException($"a read at offset {offset} starts with batch {batch.BaseOffset}..{batch.LastOffset}");
                lastOffset = batch.LastOffset;
                first = false;
                pos += batch.SizeInBytes;
            }
            offset = lastOffset + 1;
        }
        return offset;
    }

    /// <summary>Recomputes the CRC-32C of each v2 batch framed in <paramref name="log"/>.</summary>
    public static void FixBatchCrcs(Span<byte> log)
    {
        int pos = 0;
        while (log.Length - pos >= RecordBatch.HeaderSize)
        {
            int length = BinaryPrimitives.ReadInt32BigEndian(log[(pos + RecordBatch.BatchLengthOffset)..]);
            if (length < RecordBatch.HeaderSize - RecordBatch.LogOverhead || length > log.Length - pos - RecordBatch.LogOverhead) return;
            if (log[pos + RecordBatch.MagicOffset] == RecordBatch.CurrentMagic)
                RecordBatch.WriteCrc(log.Slice(pos, length + RecordBatch.LogOverhead));
            pos += length + RecordBatch.LogOverhead;
        }
    }

    // ------------------------------------------------------------------ Keeper txn log / snapshots

    /// <summary>Byte 0 of a txnlog-recovery input: recompute the Adler-32 of log entries and the
    /// seals of snapshots (mutations then reach the txn decoder and the tree).</summary>
    public const byte FixChecksumsFlag = 0x01;
    /// <summary>snapshot.trust.empty=true (logs without a snapshot are replayed).</summary>
    public const byte TrustEmptyFlag = 0x02;
    /// <summary>--recover-truncate (damage is cut off and recovery runs again).</summary>
    public const byte RecoverTruncateFlag = 0x04;

    private static readonly string KeeperDir = Path.Combine(Path.GetTempPath(), $"samsa-fuzz-keeper-{Environment.ProcessId}");

    /// <summary>
    /// A Keeper data directory: byte 0 flags (<see cref="FixChecksumsFlag"/>, <see cref="TrustEmptyFlag"/>,
    /// <see cref="RecoverTruncateFlag"/>), then up to 4 files, each [kind: even = snapshot, odd = log]
    /// [zxid: uint16 BE][length: uint16 BE][bytes], written to version-2/ as snapshot.&lt;zxid&gt; or
    /// log.&lt;zxid&gt;. The Keeper is then started on it (KeeperServer.Start: snapshot load, log
    /// replay, a fresh snapshot) and stopped. Allowed: TxnLogDamageException (the Keeper's refusal of
    /// a damaged txn log, as ZooKeeper 3.8 refuses) and InvalidDataException (no usable snapshot, or
    /// logs without one); partial txns and snapshot fallbacks are logged. Anything else is a crash.
    /// </summary>
    public static void TxnLogRecovery(byte[] data)
    {
        if (data.Length < 1 || data.Length > MaxInput) return;
        byte flags = data[0];
        if (Directory.Exists(KeeperDir)) Directory.Delete(KeeperDir, true);
        string v2 = Path.Combine(KeeperDir, ZkFiles.VersionDir);
        Directory.CreateDirectory(v2);
        int pos = 1;
        for (int files = 0; files < 4 && data.Length - pos >= 5; files++)
        {
            bool snapshot = (data[pos] & 1) == 0;
            int zxid = BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(pos + 1));
            int length = Math.Min(BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(pos + 3)), data.Length - pos - 5);
            byte[] content = data.AsSpan(pos + 5, length).ToArray();
            pos += 5 + length;
            if ((flags & FixChecksumsFlag) != 0)
            {
                if (snapshot) FixSnapshotSeals(content);
                else FixTxnLogChecksums(content);
            }
            File.WriteAllBytes(Path.Combine(v2, snapshot ? ZkFiles.SnapName(zxid) : ZkFiles.LogName(zxid)), content);
        }
        var config = new KeeperConfig
        {
            DataDir = KeeperDir, ForceSync = false, PreAllocSizeKb = 4, TickTime = 2000, AdminEnableServer = false,
            SnapshotTrustEmpty = (flags & TrustEmptyFlag) != 0, RecoverTruncate = (flags & RecoverTruncateFlag) != 0,
        };
        var server = new KeeperServer(config);
        var stderr = Console.Error;
        try
        {
            // Recovery notes go to stderr, one line each; thousands of inputs would flood the run.
            Console.SetError(TextWriter.Null);
            try
            {
                server.Start();
            }
            catch (Exception e) when (e is TxnLogDamageException or InvalidDataException)
            {
                return;
            }
            Targets.Reached("txnlog-recovery");
            if (server.InternalErrors != 0)
                throw new InvalidOperationException("the Keeper's loop caught an unexpected exception while starting");
        }
        finally
        {
            server.DisposeAsync().AsTask().Wait();
            Console.SetError(stderr);
            Directory.Delete(KeeperDir, true);
        }
    }

    /// <summary>Recomputes each entry's Adler-32 (upstream FileTxnLog: crc long, length int, the
    /// serialized txn, the 'B' end-of-record byte) up to the first entry that does not fit.</summary>
    public static void FixTxnLogChecksums(Span<byte> log)
    {
        int pos = TxnLogReader.HeaderSize;
        while (log.Length - pos >= 12)
        {
            int len = BinaryPrimitives.ReadInt32BigEndian(log[(pos + 8)..]);
            if (len <= 0 || len > log.Length - pos - 12) return;
            var a = Adler32.Create();
            a.Update(log.Slice(pos + 12, len));
            BinaryPrimitives.WriteInt64BigEndian(log[pos..], a.Value);
            pos += 12 + len + 1;
        }
    }

    /// <summary>Recomputes the seals of a snapshot ending as SnapshotFile.Write ends it: ... seal
    /// (Adler-32 + "/"), zxid digest (20 bytes), seal. A seal is 13 bytes: long, int 1, '/'.</summary>
    public static void FixSnapshotSeals(Span<byte> snap)
    {
        void Seal(Span<byte> s, int at)
        {
            if (at < 0) return;
            var a = Adler32.Create();
            a.Update(s[..at]);
            BinaryPrimitives.WriteInt64BigEndian(s[at..], a.Value);
        }
        if (snap.Length < 13) return;
        Seal(snap, snap.Length - 46);
        Seal(snap, snap.Length - 13);
    }
}
