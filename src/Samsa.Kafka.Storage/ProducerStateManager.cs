using Samsa.Kafka.Protocol.Records;

namespace Samsa.Kafka.Storage;

/// <summary>Why an idempotent/transactional append was refused (the Produce error to return).</summary>
public enum ProducerStateError
{
    /// <summary>OUT_OF_ORDER_SEQUENCE_NUMBER (45): a gap or reordering in the producer's sequence numbers.</summary>
    OutOfOrderSequence = 45,
    /// <summary>INVALID_PRODUCER_EPOCH (47): the batch comes from an older epoch of the producer (a zombie).</summary>
    InvalidProducerEpoch = 47,
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
/// the first time. Rebuilt from batch headers when the log opens (upstream also keeps ".snapshot"
/// files to avoid the scan; this log does not write them).
/// </summary>
public sealed class ProducerStateManager
{
    private readonly Dictionary<long, ProducerStateEntry> _producers = new();

    public IReadOnlyCollection<ProducerStateEntry> Producers => _producers.Values;

    public ProducerStateEntry? LastEntry(long producerId) => _producers.GetValueOrDefault(producerId);

    public void Clear() => _producers.Clear();

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
            return;
        }
        int lastSequence = (int)(((long)baseSequence + lastOffsetDelta) % ((long)int.MaxValue + 1));
        entry.AddBatch(epoch, new BatchMetadata(lastSequence, lastOffset, lastOffsetDelta, maxTimestamp));
    }
}
