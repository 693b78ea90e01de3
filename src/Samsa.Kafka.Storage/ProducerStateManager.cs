using Samsa.Kafka.Protocol.Records;


namespace Samsa.Kafka.Storage;

/// <summary>Why an idempotent/transactional append was refused (the Produce error to return).</summary>
public enum ProducerStateError
{
    /// <summary>OUT_OF_ORDER_SEQUENCE_NUMBER (45): a gap or reordering in the producer's sequence numbers.</summary>
    OutOfOrderSequence = 45,
    /// <summary>INVALID_PRODUCER_EPOCH (47): the batch comes from an older epoch of the producer (a zombie).</summary>
    InvalidProducerEpoch = 47,
    /// <summary>INVALID_TXN_STATE (48): a transactional batch that neither continues an open
    /// transaction nor carries the verification guard this log handed out for it (KIP-890).</summary>
    InvalidTxnState = 48,
    /// <summary>TRANSACTION_COORDINATOR_FENCED (52): a COMMIT/ABORT marker from a coordinator epoch older
    /// than the one the producer's last marker here carried (a zombie coordinator).</summary>
    TransactionCoordinatorFenced = 52,
}

/// <summary>
/// KIP-890 (upstream VerificationGuard): a token the leader creates when a transactional batch that
/// starts a transaction at this partition is sent to the transaction coordinator for verification.
/// The append that follows is accepted only while the producer's verification state still holds this
/// very object; anything transactional written for the producer meanwhile (its marker, i.e. the end of
/// the transaction) drops it, so a verification that raced with the end of the transaction cannot
/// open a transaction the coordinator no longer knows about. Identity is the object itself.
/// </summary>
public sealed class VerificationGuard
{
    /// <summary>"No guard": what a batch continuing an open transaction carries; verifies nothing.</summary>
    public static readonly VerificationGuard Sentinel = new();

    /// <summary>True when <paramref name="requestGuard"/> is this guard (never for the sentinel).</summary>
    public bool Verify(VerificationGuard? requestGuard) =>
        requestGuard is not null && !ReferenceEquals(requestGuard, Sentinel) && ReferenceEquals(requestGuard, this);
}

/// <summary>
/// A producer's pending verification at this partition (upstream VerificationStateEntry): the guard,
/// and the lowest sequence and the epoch seen while verifying — a higher sequence must not be appended
/// ahead of a lower one that is still being retried (OUT_OF_ORDER_SEQUENCE_NUMBER instead of a loop).
/// </summary>
public sealed class VerificationStateEntry(long timestampMs, int sequence, short epoch, bool supportsEpochBump)
{
    public long TimestampMs { get; } = timestampMs;
    public VerificationGuard Guard { get; } = new();
    public int LowestSequence { get; private set; } = sequence;
    public short Epoch { get; private set; } = epoch;
    /// <summary>Transaction version 2 (Produce v12+): the epoch is bumped per transaction.</summary>
    public bool SupportsEpochBump { get; } = supportsEpochBump;

    /// <summary>A lower sequence of the same epoch, or any sequence of a newer epoch, becomes the bar.</summary>
    public void MaybeUpdateLowestSequenceAndEpoch(int sequence, short epoch)
    {
        if (epoch == Epoch && sequence < LowestSequence) LowestSequence = sequence;
        if (epoch > Epoch)
        {
            Epoch = epoch;
            LowestSequence = sequence;
        }
    }
}

public sealed class ProducerStateException(ProducerStateError error, string message) : Exception(message)
{
    public ProducerStateError Error { get; } = error;
}

/// <summary>Sequence facts of one appended batch (upstream BatchMetadata).</summary>
public readonly record struct BatchMetadata(int LastSequence, long LastOffset, int OffsetDelta, long Timestamp)
{
    public int FirstSequence => LastSequence - OffsetDelta < 0 ? (int)((long)LastSequence - OffsetDelta + int.MaxValue + 1) : LastSequence - OffsetDelta;
    public long FirstOffset => LastOffset - OffsetDelta;
}

/// <summary>What the log knows about one producer id (upstream ProducerStateEntry).</summary>
public sealed class ProducerStateEntry(long producerId)
{
    /// <summary>Upstream keeps the last five batches so a retried batch is recognised as a duplicate (max.in.flight.requests ≤ 5).</summary>
    public const int NumBatchesToRetain = 5;

    public long ProducerId { get; } = producerId;
    public short Epoch { get; internal set; } = -1;
    public int CoordinatorEpoch { get; internal set; } = -1;
    public long LastTimestamp { get; internal set; } = -1;
    internal readonly List<BatchMetadata> Batches = new();

    public int LastSequence => Batches.Count == 0 ? -1 : Batches[^1].LastSequence;
    public long LastDataOffset => Batches.Count == 0 ? -1 : Batches[^1].LastOffset;

    internal void AddBatch(short epoch, BatchMetadata batch)
    {
        if (epoch != Epoch)
        {
            // A new epoch starts a new sequence space (upstream maybeUpdateProducerEpoch clears the batches).
            Batches.Clear();
            Epoch = epoch;
        }
        Batches.Add(batch);
        if (Batches.Count > NumBatchesToRetain)
        {
            Batches.RemoveAt(0);
        }
        LastTimestamp = batch.Timestamp;
    }

    internal BatchMetadata? FindDuplicate(short epoch, int firstSequence, int lastSequence)
    {
        if (epoch != Epoch)
        {
            return null;
        }
        foreach (BatchMetadata b in Batches)
        {
            if (b.FirstSequence == firstSequence && b.LastSequence == lastSequence)
            {
                return b;
            }
        }
        return null;
    }
}

/// <summary>
/// Producer state for idempotence (KIP-98): per producer id the epoch and the last batches' sequence
/// numbers, so a leader can refuse gaps and zombies and answer a retried batch with the offsets it got
/// the first time. Producers idle for producer.id.expiration.ms are forgotten
/// (<see cref="RemoveExpiredProducers"/>). Rebuilt from batch headers when the log opens; snapshots are written in
/// upstream's format (<see cref="ProducerSnapshotFile"/>) for upstream brokers and tools.
/// </summary>
public sealed class ProducerStateManager
{
    private readonly Dictionary<long, ProducerStateEntry> _producers = new();
    // KIP-890 verifications in progress, by producer id (upstream verificationStates). Created when a
    // transactional batch goes to the coordinator for verification, dropped by the producer's next
    // transactional append (data or marker) here, and by RemoveExpiredProducers otherwise.
    private readonly Dictionary<long, VerificationStateEntry> _verificationStates = new();

    /// <summary>producer.id.expiration.ms (default one day): how long a producer without an open
    /// transaction is remembered after its last batch's timestamp, and how long a verification that
    /// never led to an append is kept (<see cref="RemoveExpiredProducers"/>).</summary>
    public long ProducerIdExpirationMs { get; set; } = 86_400_000;

    public IReadOnlyCollection<ProducerStateEntry> Producers => _producers.Values;

    public ProducerStateEntry? LastEntry(long producerId) => _producers.GetValueOrDefault(producerId);

    public void Clear()
    {
        _producers.Clear();
        _verificationStates.Clear();
    }

    /// <summary>The producer's verification state, created on first use, with the sequence and epoch
    /// of the batch being verified folded in (upstream maybeCreateVerificationStateEntry).</summary>
    public VerificationStateEntry MaybeCreateVerificationStateEntry(long producerId, int sequence, short epoch, bool supportsEpochBump, long nowMs)
    {
        if (!_verificationStates.TryGetValue(producerId, out VerificationStateEntry? entry))
        {
            // Bounded: entries of verifications that never appended age out.
            if (_verificationStates.Count >= 64)
            {
                foreach (var (pid, old) in _verificationStates)
                {
                    if (nowMs - old.TimestampMs >= ProducerIdExpirationMs) _verificationStates.Remove(pid);
                }
            }
            entry = new VerificationStateEntry(nowMs, sequence, epoch, supportsEpochBump);
            _verificationStates[producerId] = entry;
        }
        entry.MaybeUpdateLowestSequenceAndEpoch(sequence, epoch);
        return entry;
    }

    /// <summary>
    /// Forgets producers idle for producer.id.expiration.ms (upstream
    /// ProducerStateManager.removeExpiredProducers): an entry without an open transaction whose last
    /// timestamp (the max timestamp of its last batch, or its last marker's) is at least
    /// <see cref="ProducerIdExpirationMs"/> before <paramref name="nowMs"/>, and a verification state
    /// that old. A later batch of a forgotten producer id is taken as from a new producer: any
    /// sequence is accepted and a retry of a batch from before is no longer recognised.
    /// Returns the number of producers removed.
    /// </summary>
    public int RemoveExpiredProducers(long nowMs, Func<long, bool> hasOpenTransaction)
    {
        List<long>? expired = null;
        foreach (ProducerStateEntry e in _producers.Values)
        {
            if (nowMs - e.LastTimestamp >= ProducerIdExpirationMs && !hasOpenTransaction(e.ProducerId)) (expired ??= []).Add(e.ProducerId);
        }
        foreach (long id in expired ?? []) _producers.Remove(id);
        if (_verificationStates.Count != 0)
        {
            foreach (var (id, v) in _verificationStates)
            {
                if (nowMs - v.TimestampMs >= ProducerIdExpirationMs) _verificationStates.Remove(id);
            }
        }
        return expired?.Count ?? 0;
    }

    /// <summary>
    /// Upstream ProducerAppendInfo.checkCoordinatorEpoch for a COMMIT/ABORT marker the leader appends:
    /// a coordinator epoch below the one of the producer's last marker here comes from a coordinator
    /// that has since been replaced (TRANSACTION_COORDINATOR_FENCED). Replicated and replayed markers
    /// are not checked.
    /// </summary>
    internal void CheckCoordinatorEpoch(long producerId, int coordinatorEpoch)
    {
        if (_producers.GetValueOrDefault(producerId) is { } entry && entry.CoordinatorEpoch > coordinatorEpoch)
        {
            throw new ProducerStateException(ProducerStateError.TransactionCoordinatorFenced,
                $"Invalid coordinator epoch for producerId {producerId}: {coordinatorEpoch} (zombie), {entry.CoordinatorEpoch} (current)");
        }
    }

    public VerificationStateEntry? VerificationState(long producerId) =>
        _verificationStates.Count == 0 ? null : _verificationStates.GetValueOrDefault(producerId);

    /// <summary>Drops the producer's verification: a transactional batch of it was appended, so the
    /// transaction either has a first offset here now or ended.</summary>
    public void ClearVerificationState(long producerId)
    {
        if (_verificationStates.Count != 0) _verificationStates.Remove(producerId);
    }

    /// <summary>The snapshot entries of every producer, with the open transactions' first offsets.</summary>
    internal List<ProducerSnapshotFile.Entry> SnapshotEntries(IReadOnlyDictionary<long, long> ongoingTxns)
    {
        var entries = new List<ProducerSnapshotFile.Entry>(_producers.Count);
        foreach (ProducerStateEntry e in _producers.Values.OrderBy(e => e.ProducerId))
        {
            BatchMetadata? last = e.Batches.Count > 0 ? e.Batches[^1] : null;
            entries.Add(new ProducerSnapshotFile.Entry(e.ProducerId, e.Epoch, last?.LastSequence ?? -1, last?.LastOffset ?? -1,
                last?.OffsetDelta ?? 0, e.LastTimestamp, e.CoordinatorEpoch, ongoingTxns.TryGetValue(e.ProducerId, out long first) ? first : -1));
        }
        return entries;
    }

    /// <summary>
    /// Checks a client batch against the producer's state (upstream ProducerAppendInfo.checkProducerEpoch
    /// and checkSequence). Returns the earlier batch's metadata when this one is a retry of it; throws
    /// <see cref="ProducerStateException"/> for an older epoch or a sequence gap. <paramref name="pending"/>
    /// carries the effect of earlier batches of the same request.
    /// </summary>
    internal BatchMetadata? Check(long producerId, short epoch, int firstSequence, int lastSequence, Dictionary<long, (short Epoch, int LastSequence)> pending)
    {
        ProducerStateEntry? entry = _producers.GetValueOrDefault(producerId);
        short currentEpoch = entry?.Epoch ?? -1;
        if (pending.TryGetValue(producerId, out var p))
        {
            currentEpoch = p.Epoch;
        }
        else if (entry?.FindDuplicate(epoch, firstSequence, lastSequence) is BatchMetadata duplicate)
        {
            return duplicate;
        }
        if (VerificationState(producerId) is { } verifying)
        {
            // Upstream ProducerAppendInfo.checkSequence with a verification in progress.
            if (verifying.SupportsEpochBump && firstSequence != 0 && (entry is null || entry.Batches.Count == 0))
            {
                throw new ProducerStateException(ProducerStateError.OutOfOrderSequence,
                    $"producer {producerId} (transaction version 2) has no state here and must start at sequence 0, not {firstSequence}");
            }
            if (firstSequence > verifying.LowestSequence)
            {
                throw new ProducerStateException(ProducerStateError.OutOfOrderSequence,
                    $"producer {producerId} sent sequence {firstSequence} while sequence {verifying.LowestSequence} is being verified");
            }
        }
        if (epoch < currentEpoch)
        {
            throw new ProducerStateException(ProducerStateError.InvalidProducerEpoch,
                $"epoch {epoch} of producer {producerId} is older than the last seen epoch {currentEpoch}");
        }
        if (epoch != currentEpoch)
        {
            if (firstSequence != 0 && currentEpoch != -1)
            {
                throw new ProducerStateException(ProducerStateError.OutOfOrderSequence,
                    $"producer {producerId} starts epoch {epoch} at sequence {firstSequence}, not 0");
            }
        }
        else
        {
            int lastSeq = pending.TryGetValue(producerId, out p) ? p.LastSequence : entry?.LastSequence ?? -1;
            bool inSequence = firstSequence == lastSeq + 1L || (firstSequence == 0 && lastSeq == int.MaxValue);
            if (entry is not null && entry.Epoch != -1 && !inSequence)
            {
                throw new ProducerStateException(ProducerStateError.OutOfOrderSequence,
                    $"producer {producerId} sent sequence {firstSequence} after {lastSeq}");
            }
        }
        pending[producerId] = (epoch, lastSequence);
        return null;
    }

    /// <summary>Records an appended batch (client, replicated or replayed alike).</summary>
    internal void Update(long producerId, short epoch, int baseSequence, int lastOffsetDelta, long lastOffset, long maxTimestamp, bool isControl, int coordinatorEpoch)
    {
        if (producerId < 0)
        {
            return;
        }
        if (!_producers.TryGetValue(producerId, out ProducerStateEntry? entry))
        {
            entry = new ProducerStateEntry(producerId);
            _producers[producerId] = entry;
        }
        if (isControl)
        {
            if (epoch > entry.Epoch)
            {
                entry.Batches.Clear();
                entry.Epoch = epoch;
            }
            entry.CoordinatorEpoch = coordinatorEpoch;
            entry.LastTimestamp = maxTimestamp;
            return;
        }
        if (baseSequence < 0)
        {
            entry.Epoch = Math.Max(entry.Epoch, epoch);
            entry.LastTimestamp = maxTimestamp;
            return;
        }
        int lastSequence = (int)(((long)baseSequence + lastOffsetDelta) % ((long)int.MaxValue + 1));
        entry.AddBatch(epoch, new BatchMetadata(lastSequence, lastOffset, lastOffsetDelta, maxTimestamp));
    }
}

/// <summary>
/// "&lt;offset&gt;.snapshot": producer state as of an offset, in upstream's ProducerSnapshot v1 layout —
/// version int16 (1), crc uint32 (CRC-32C of everything after it), entry count int32, then per producer:
/// producerId int64, epoch int16, lastSequence int32, lastOffset int64, offsetDelta int32, timestamp
/// int64, coordinatorEpoch int32, currentTxnFirstOffset int64 (-1 when no open transaction).
/// Written when a segment rolls and when the log closes, so an upstream broker opening this directory
/// starts from it; this log itself rebuilds its state from batch headers.
/// </summary>
public static class ProducerSnapshotFile
{
    public const string Suffix = ".snapshot";
    public const short Version = 1;
    private const int EntrySize = 8 + 2 + 4 + 8 + 4 + 8 + 4 + 8;

    public readonly record struct Entry(long ProducerId, short Epoch, int LastSequence, long LastOffset, int OffsetDelta, long Timestamp, int CoordinatorEpoch, long CurrentTxnFirstOffset);

    public static string PathFor(string directory, long offset) => System.IO.Path.Combine(directory, LogSegment.FileNamePrefix(offset) + Suffix);

    public static void Write(string path, IReadOnlyList<Entry> entries)
    {
        byte[] bytes = new byte[2 + 4 + 4 + entries.Count * EntrySize];
        Span<byte> span = bytes;
        System.Buffers.Binary.BinaryPrimitives.WriteInt16BigEndian(span, Version);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(span[6..], entries.Count);
        int at = 10;
        foreach (Entry e in entries)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(span[at..], e.ProducerId);
            System.Buffers.Binary.BinaryPrimitives.WriteInt16BigEndian(span[(at + 8)..], e.Epoch);
            System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(span[(at + 10)..], e.LastSequence);
            System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(span[(at + 14)..], e.LastOffset);
            System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(span[(at + 22)..], e.OffsetDelta);
            System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(span[(at + 26)..], e.Timestamp);
            System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(span[(at + 34)..], e.CoordinatorEpoch);
            System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(span[(at + 38)..], e.CurrentTxnFirstOffset);
            at += EntrySize;
        }
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(span[2..], Crc32C.Compute(span[6..]));
        CheckpointFile.WriteAtomically(path, bytes);
    }

    /// <summary>Reads a snapshot; throws InvalidDataException on a bad version, length or CRC.</summary>
    public static List<Entry> Read(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        ReadOnlySpan<byte> span = bytes;
        if (bytes.Length < 10 || System.Buffers.Binary.BinaryPrimitives.ReadInt16BigEndian(span) != Version)
        {
            throw new InvalidDataException($"producer snapshot {path}: unknown version or too short");
        }
        if (System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(span[2..]) != Crc32C.Compute(span[6..]))
        {
            throw new InvalidDataException($"producer snapshot {path}: CRC mismatch");
        }
        int count = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(span[6..]);
        if (count < 0 || (long)count * EntrySize != bytes.Length - 10)
        {
            throw new InvalidDataException($"producer snapshot {path}: {count} entries do not match {bytes.Length} bytes");
        }
        var entries = new List<Entry>(count);
        for (int at = 10; at < bytes.Length; at += EntrySize)
        {
            entries.Add(new Entry(
                System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(span[at..]),
                System.Buffers.Binary.BinaryPrimitives.ReadInt16BigEndian(span[(at + 8)..]),
                System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(span[(at + 10)..]),
                System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(span[(at + 14)..]),
                System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(span[(at + 22)..]),
                System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(span[(at + 26)..]),
                System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(span[(at + 34)..]),
                System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(span[(at + 38)..])));
        }
        return entries;
    }

    /// <summary>Offsets of the snapshot files in a directory, ascending.</summary>
    public static List<long> List(string directory)
    {
        var offsets = new List<long>();
        foreach (string file in Directory.EnumerateFiles(directory, "*" + Suffix))
        {
            string name = System.IO.Path.GetFileName(file);
            if (name.Length == 20 + Suffix.Length && long.TryParse(name.AsSpan(0, 20), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long offset))
            {
                offsets.Add(offset);
            }
        }
        offsets.Sort();
        return offsets;
    }
}
