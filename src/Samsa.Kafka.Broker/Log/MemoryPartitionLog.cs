using System.Buffers.Binary;
using Samsa.Kafka.Protocol.Records;

namespace Samsa.Kafka.Broker.Log;

/// <summary>
/// An <see cref="IPartitionLog"/> held in memory: a list of stamped batches. Used by handler tests
/// and by brokers configured without log directories; nothing survives a restart.
/// </summary>
public sealed class MemoryPartitionLog : IPartitionLog
{
    private readonly object _gate = new();
    private readonly List<(long BaseOffset, long LastOffset, long MaxTimestamp, int Epoch, byte[] Bytes)> _batches = [];
    private readonly List<(int Epoch, long StartOffset)> _epochs = [];
    private long _logStart;
    private long _logEnd;
    private long _size;
    private long _highWatermark;

    public MemoryPartitionLog(string directory = "memory") { Directory = directory; }

    public string Directory { get; }
    public long LogStartOffset { get { lock (_gate) return _logStart; } }
    public long LogEndOffset { get { lock (_gate) return _logEnd; } }
    public long SizeInBytes { get { lock (_gate) return _size; } }

    public (long FirstOffset, bool Duplicate) AppendValidated(ReadOnlyMemory<byte> batches, long lastOffset, long maxTimestamp, long offsetOfMaxTimestamp, int leaderEpoch,
        Samsa.Kafka.Storage.VerificationGuard? verificationGuard = null, short markerTransactionVersion = -1)
    {
        lock (_gate)
        {
            long first = _logEnd;
            var span = batches.Span;
            int pos = 0;
            while (pos < span.Length)
            {
                int size = RecordBatch.LogOverhead + BinaryPrimitives.ReadInt32BigEndian(span[(pos + RecordBatch.BatchLengthOffset)..]);
                var b = span.Slice(pos, size);
                long baseOffset = BinaryPrimitives.ReadInt64BigEndian(b);
                long last = baseOffset + BinaryPrimitives.ReadInt32BigEndian(b[RecordBatch.LastOffsetDeltaOffset..]);
                long maxTs = BinaryPrimitives.ReadInt64BigEndian(b[RecordBatch.MaxTimestampOffset..]);
                int epoch = BinaryPrimitives.ReadInt32BigEndian(b[RecordBatch.PartitionLeaderEpochOffset..]);
                if (_epochs.Count == 0 || _epochs[^1].Epoch < epoch) _epochs.Add((epoch, baseOffset));
                _batches.Add((baseOffset, last, maxTs, epoch, b.ToArray()));
                _size += size;
                _logEnd = last + 1;
                pos += size;
            }
            return (first, false);
        }
    }

    public LogReadInfo Read(long offset, int maxBytes, long maxOffsetExclusive, bool minOneBatch)
    {
        lock (_gate)
        {
            var parts = new List<byte[]>();
            int total = 0;
            foreach (var b in _batches)
            {
                if (b.LastOffset < offset) continue;
                if (b.BaseOffset >= maxOffsetExclusive) break;
                if (total + b.Bytes.Length > maxBytes && !(minOneBatch && parts.Count == 0)) break;
                parts.Add(b.Bytes);
                total += b.Bytes.Length;
            }
            var result = new byte[total];
            int at = 0;
            foreach (var p in parts) { p.CopyTo(result, at); at += p.Length; }
            return new LogReadInfo(result);
        }
    }

    public TimestampOffset? OffsetForTimestamp(long timestamp)
    {
        lock (_gate)
        {
            foreach (var b in _batches)
            {
                if (b.LastOffset < _logStart) continue;
                if (b.MaxTimestamp >= timestamp)
                    return new TimestampOffset(b.MaxTimestamp, Math.Max(b.BaseOffset, _logStart), b.Epoch);
            }
            return null;
        }
    }

    public TimestampOffset? MaxTimestamp()
    {
        lock (_gate)
        {
            TimestampOffset? best = null;
            foreach (var b in _batches)
                if (b.LastOffset >= _logStart && (best is null || b.MaxTimestamp > best.Value.Timestamp))
                    best = new TimestampOffset(b.MaxTimestamp, b.LastOffset, b.Epoch);
            return best;
        }
    }

    public void DeleteRecordsBefore(long offset)
    {
        lock (_gate)
        {
            if (offset <= _logStart) return;
            _logStart = Math.Min(offset, _logEnd);
            _batches.RemoveAll(b => { bool drop = b.LastOffset < _logStart; if (drop) _size -= b.Bytes.Length; return drop; });
        }
    }

    public (int Epoch, long EndOffset) EndOffsetForEpoch(int epoch)
    {
        lock (_gate)
        {
            for (int i = _epochs.Count - 1; i >= 0; i--)
            {
                if (_epochs[i].Epoch <= epoch)
                    return (_epochs[i].Epoch, i + 1 < _epochs.Count ? _epochs[i + 1].StartOffset : _logEnd);
            }
            return (-1, -1);
        }
    }

    public long HighWatermark { get { lock (_gate) return _highWatermark; } }

    public bool MaybeIncrementHighWatermark(long highWatermark)
    {
        lock (_gate)
        {
            long clamped = Math.Min(highWatermark, _logEnd);
            if (clamped <= _highWatermark) return false;
            _highWatermark = clamped;
            return true;
        }
    }

    public void UpdateHighWatermark(long highWatermark)
    {
        lock (_gate) _highWatermark = Math.Clamp(highWatermark, _logStart, _logEnd);
    }

    // Fetched batches carry their offsets and epochs already: stored as the leader stored them.
    public void AppendAsFollower(ReadOnlyMemory<byte> batches)
    {
        Samsa.Kafka.Storage.PartitionLog.CheckReplicatedBatches(batches.Span);
        lock (_gate)
        {
            if (batches.Length >= RecordBatch.LogOverhead && BinaryPrimitives.ReadInt64BigEndian(batches.Span) < _logEnd)
                throw new InvalidOperationException($"follower append below the log end offset {_logEnd}");
            AppendValidated(batches, 0, 0, 0, 0);
        }
    }

    public void TruncateTo(long offset)
    {
        lock (_gate)
        {
            if (offset >= _logEnd) return;
            _batches.RemoveAll(b => { bool drop = b.BaseOffset >= offset; if (drop) _size -= b.Bytes.Length; return drop; });
            _epochs.RemoveAll(e => e.StartOffset >= offset);
            _logEnd = offset;
            _logStart = Math.Min(_logStart, offset);
            _highWatermark = Math.Min(_highWatermark, offset);
        }
    }

    public void TruncateFullyAndStartAt(long offset)
    {
        lock (_gate)
        {
            _batches.Clear();
            _epochs.Clear();
            _size = 0;
            _logStart = _logEnd = _highWatermark = offset;
        }
    }

    public int LatestEpoch { get { lock (_gate) return _epochs.Count == 0 ? -1 : _epochs[^1].Epoch; } }

    public void UpdateConfig(Samsa.Kafka.Broker.Config.LogConfig config) { }
    public void Flush() { }
    public void Delete() { lock (_gate) { _batches.Clear(); _size = 0; } }
    public void Dispose() { }
}
