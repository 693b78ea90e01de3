using System.Buffers.Binary;
using Samsa.Kafka.Protocol.Compression;
using Samsa.Kafka.Protocol.Primitives;

namespace Samsa.Kafka.Protocol.Records;

/// <summary>
/// A read-only view over one RecordBatch v2 (magic 2, KIP-98) without copying:
/// <code>
/// baseOffset int64 | batchLength int32 | partitionLeaderEpoch int32 | magic int8 | crc uint32 |
/// attributes int16 | lastOffsetDelta int32 | baseTimestamp int64 | maxTimestamp int64 |
/// producerId int64 | producerEpoch int16 | baseSequence int32 | recordsCount int32 | records...
/// </code>
/// batchLength counts the bytes after itself; the CRC-32C covers attributes to the end, so the broker
/// may rewrite baseOffset and partitionLeaderEpoch without recomputing it.
/// Construction checks only that the 61-byte header is present; call <see cref="Validate"/> before
/// trusting anything else. Mutations are static methods over a <see cref="Span{T}"/>.
/// </summary>
public readonly ref struct RecordBatch
{
    public const byte CurrentMagic = 2;
    public const int BaseOffsetOffset = 0;
    public const int BatchLengthOffset = 8;
    /// <summary>Bytes before and including batchLength, not counted by it (Kafka's LOG_OVERHEAD).</summary>
    public const int LogOverhead = 12;
    public const int PartitionLeaderEpochOffset = 12;
    public const int MagicOffset = 16;
    public const int CrcOffset = 17;
    public const int AttributesOffset = 21;
    public const int LastOffsetDeltaOffset = 23;
    public const int BaseTimestampOffset = 27;
    public const int MaxTimestampOffset = 35;
    public const int ProducerIdOffset = 43;
    public const int ProducerEpochOffset = 51;
    public const int BaseSequenceOffset = 53;
    public const int RecordsCountOffset = 57;
    public const int RecordsOffset = 61;
    /// <summary>Size of a batch with no records (Kafka's RECORD_BATCH_OVERHEAD).</summary>
    public const int HeaderSize = 61;
    /// <summary>The smallest encoded record: length varint plus six one-byte fields.</summary>
    public const int MinRecordSize = 7;

    public const short CompressionCodecMask = 0x07;
    public const short TimestampTypeMask = 0x08;
    public const short TransactionalFlagMask = 0x10;
    public const short ControlFlagMask = 0x20;
    public const short DeleteHorizonFlagMask = 0x40;

    public const long NoProducerId = -1;
    public const short NoProducerEpoch = -1;
    public const int NoSequence = -1;
    public const int NoPartitionLeaderEpoch = -1;
    public const long NoTimestamp = -1;

    /// <summary>Default cap on the decompressed records section (the broker passes its own limit).</summary>
    public const int DefaultMaxDecompressedBytes = 64 * 1024 * 1024;

    private readonly ReadOnlySpan<byte> _bytes;

    /// <summary>
    /// A view over <paramref name="bytes"/>, which must start at a batch; when the buffer is longer than
    /// the declared size the view is limited to the batch. Throws when fewer than 61 bytes are present.
    /// </summary>
    public RecordBatch(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < HeaderSize) throw KafkaProtocolException.Truncated("record batch header");
        int length = BinaryPrimitives.ReadInt32BigEndian(bytes.Slice(BatchLengthOffset, 4));
        if (length >= HeaderSize - LogOverhead && (long)length + LogOverhead < bytes.Length)
            bytes = bytes[..(length + LogOverhead)];
        _bytes = bytes;
    }

    /// <summary>The bytes of this batch (all of the buffer when it is shorter than declared).</summary>
    public ReadOnlySpan<byte> Bytes => _bytes;

    public long BaseOffset => BinaryPrimitives.ReadInt64BigEndian(_bytes[BaseOffsetOffset..]);
    public int BatchLength => BinaryPrimitives.ReadInt32BigEndian(_bytes[BatchLengthOffset..]);
    /// <summary>Total size on the wire: batchLength + 12.</summary>
    public int SizeInBytes => BatchLength + LogOverhead;
    public int PartitionLeaderEpoch => BinaryPrimitives.ReadInt32BigEndian(_bytes[PartitionLeaderEpochOffset..]);
    public byte Magic => _bytes[MagicOffset];
    public uint Crc => BinaryPrimitives.ReadUInt32BigEndian(_bytes[CrcOffset..]);
    public short Attributes => BinaryPrimitives.ReadInt16BigEndian(_bytes[AttributesOffset..]);
    public CompressionType Compression => (CompressionType)(Attributes & CompressionCodecMask);
    public TimestampType TimestampType => (Attributes & TimestampTypeMask) != 0 ? TimestampType.LogAppendTime : TimestampType.CreateTime;
    public bool IsTransactional => (Attributes & TransactionalFlagMask) != 0;
    public bool IsControl => (Attributes & ControlFlagMask) != 0;
    /// <summary>KIP-534: when set, baseTimestamp holds the delete horizon of a compacted batch.</summary>
    public bool HasDeleteHorizonMs => (Attributes & DeleteHorizonFlagMask) != 0;
    public int LastOffsetDelta => BinaryPrimitives.ReadInt32BigEndian(_bytes[LastOffsetDeltaOffset..]);
    public long LastOffset => BaseOffset + LastOffsetDelta;
    public long NextOffset => LastOffset + 1;
    /// <summary>The timestamp record deltas are relative to (Kafka calls it baseTimestamp, earlier firstTimestamp).</summary>
    public long BaseTimestamp => BinaryPrimitives.ReadInt64BigEndian(_bytes[BaseTimestampOffset..]);
    public long FirstTimestamp => BaseTimestamp;
    /// <summary>The delete horizon, or -1 when the flag is not set.</summary>
    public long DeleteHorizonMs => HasDeleteHorizonMs ? BaseTimestamp : NoTimestamp;
    public long MaxTimestamp => BinaryPrimitives.ReadInt64BigEndian(_bytes[MaxTimestampOffset..]);
    public long ProducerId => BinaryPrimitives.ReadInt64BigEndian(_bytes[ProducerIdOffset..]);
    public short ProducerEpoch => BinaryPrimitives.ReadInt16BigEndian(_bytes[ProducerEpochOffset..]);
    public int BaseSequence => BinaryPrimitives.ReadInt32BigEndian(_bytes[BaseSequenceOffset..]);
    public int LastSequence => BaseSequence == NoSequence ? NoSequence : IncrementSequence(BaseSequence, LastOffsetDelta);
    public int RecordsCount => BinaryPrimitives.ReadInt32BigEndian(_bytes[RecordsCountOffset..]);
    public bool HasProducerId => ProducerId > NoProducerId;
    /// <summary>The (possibly compressed) records section.</summary>
    public ReadOnlySpan<byte> RecordsData => _bytes[RecordsOffset..];

    /// <summary>Sequence numbers wrap at int.MaxValue back to 0 (DefaultRecordBatch.incrementSequence).</summary>
    public static int IncrementSequence(int sequence, int increment) =>
        sequence > int.MaxValue - increment ? increment - (int.MaxValue - sequence) - 1 : sequence + increment;

    /// <summary>CRC-32C over attributes..end, as it should be stored.</summary>
    public uint ComputeCrc() => Crc32C.Compute(_bytes[AttributesOffset..]);

    /// <summary>
    /// Structural validation (DefaultRecordBatch.ensureValid plus framing): buffer holds the declared
    /// length, magic is 2, batchLength is at least a header, codec is known, CRC-32C matches and
    /// recordsCount is not negative and (when uncompressed) could fit. Records themselves are checked
    /// while iterating.
    /// </summary>
    public RecordBatchError Validate()
    {
        if (Magic != CurrentMagic) return RecordBatchError.UnsupportedMagic;
        int batchLength = BatchLength;
        if (batchLength < HeaderSize - LogOverhead) return RecordBatchError.InvalidBatchLength;
        if ((long)batchLength + LogOverhead > _bytes.Length) return RecordBatchError.Truncated;
        if (!CompressionCodecs.IsKnown(Attributes & CompressionCodecMask)) return RecordBatchError.UnknownCompression;
        if (ComputeCrc() != Crc) return RecordBatchError.CorruptChecksum;
        int count = RecordsCount;
        if (count < 0) return RecordBatchError.InvalidRecordCount;
        if (Compression == CompressionType.None && (long)count * MinRecordSize > _bytes.Length - RecordsOffset)
            return RecordBatchError.InvalidRecordCount;
        return RecordBatchError.None;
    }

    /// <summary><see cref="Validate"/>, throwing <see cref="KafkaProtocolException"/> on failure.</summary>
    public void EnsureValid()
    {
        RecordBatchError error = Validate();
        if (error != RecordBatchError.None) throw error.ToException(Describe(error));
    }

    /// <summary>
    /// The extra checks LogValidator.validateBatch applies to batches coming from clients (Produce):
    /// count &gt; 0, lastOffsetDelta + 1 == count, not a control batch, idempotent batches carry a sequence.
    /// Call after <see cref="Validate"/>.
    /// </summary>
    public RecordBatchError ValidateFromClient()
    {
        int count = RecordsCount;
        if (count <= 0) return RecordBatchError.InvalidRecordCount;
        if ((long)LastOffsetDelta + 1 != count) return RecordBatchError.InvalidOffsetRange;
        if (IsControl) return RecordBatchError.ControlBatchFromClient;
        if (HasProducerId && BaseSequence < 0) return RecordBatchError.InvalidSequence;
        return RecordBatchError.None;
    }

    private string Describe(RecordBatchError error) => error switch
    {
        RecordBatchError.UnsupportedMagic => $"record batch magic {Magic} is not 2",
        RecordBatchError.InvalidBatchLength => $"record batch length {BatchLength} is smaller than the {HeaderSize - LogOverhead}-byte header",
        RecordBatchError.Truncated => $"record batch declares {(long)BatchLength + LogOverhead} bytes but only {_bytes.Length} are present",
        RecordBatchError.UnknownCompression => $"record batch uses unknown compression codec {Attributes & CompressionCodecMask}",
        RecordBatchError.CorruptChecksum => $"record batch is corrupt (stored crc = {Crc}, computed crc = {ComputeCrc()})",
        RecordBatchError.InvalidRecordCount => $"record batch has an invalid record count {RecordsCount}",
        _ => $"record batch is invalid: {error}",
    };

    /// <summary>
    /// Enumerates the records. Uncompressed batches are read in place; compressed ones are first
    /// decoded into a pooled buffer of at most <paramref name="maxDecompressedBytes"/> bytes, which the
    /// enumerator returns to the pool when disposed (foreach does that). Spans handed out are valid
    /// until then. Every length is checked; bad records throw <see cref="KafkaProtocolException"/>.
    /// </summary>
    public RecordEnumerator GetRecords(int maxDecompressedBytes = DefaultMaxDecompressedBytes)
    {
        if ((long)BatchLength + LogOverhead > _bytes.Length) throw KafkaProtocolException.Truncated("record batch");
        int count = RecordsCount;
        if (count < 0) throw new KafkaProtocolException(ProtocolErrorKind.Malformed, $"record batch has negative record count {count}");
        long logAppendTime = TimestampType == TimestampType.LogAppendTime ? MaxTimestamp : NoTimestamp;
        CompressionType compression = Compression;
        if (compression == CompressionType.None)
            return new RecordEnumerator(RecordsData, count, BaseOffset, BaseTimestamp, logAppendTime, null);
        PooledBuffer decoded = CompressionCodecs.Decompress(compression, RecordsData, maxDecompressedBytes);
        return new RecordEnumerator(decoded.WrittenSpan, count, BaseOffset, BaseTimestamp, logAppendTime, decoded);
    }

    /// <summary>Walks every record (decompressing if needed) so that structural errors surface now.</summary>
    public void ValidateRecords(int maxDecompressedBytes = DefaultMaxDecompressedBytes)
    {
        foreach (Record _ in GetRecords(maxDecompressedBytes)) { }
    }

    /// <summary>The batches in a buffer (a Produce partition's records, a Fetch response, a segment).</summary>
    /// <summary>
    /// The (offset, key, value) of every record in consecutive uncompressed v2 batches, for tests and
    /// tools that check what a fetch returned. A partial batch at the end (a fetch may cut one, as
    /// upstream allows) is ignored; a compressed batch throws <see cref="NotSupportedException"/>.
    /// </summary>
    public static List<(long Offset, byte[]? Key, byte[]? Value)> ReadRecords(ReadOnlySpan<byte> data)
    {
        var result = new List<(long, byte[]?, byte[]?)>();
        int pos = 0;
        while (data.Length - pos >= HeaderSize)
        {
            int size = LogOverhead + BinaryPrimitives.ReadInt32BigEndian(data[(pos + BatchLengthOffset)..]);
            if (size > data.Length - pos) break;
            var batch = data.Slice(pos, size);
            long baseOffset = BinaryPrimitives.ReadInt64BigEndian(batch);
            int count = BinaryPrimitives.ReadInt32BigEndian(batch[RecordsCountOffset..]);
            if ((BinaryPrimitives.ReadInt16BigEndian(batch[AttributesOffset..]) & CompressionCodecMask) != 0)
                throw new NotSupportedException("compressed batches are not decoded by this helper");
            var bytes = batch[RecordsOffset..].ToArray();
            var r = new KafkaReader(bytes);
            for (int i = 0; i < count; i++)
            {
                r.ReadVarInt();   // record length
                r.ReadInt8();     // record attributes
                r.ReadVarLong();  // timestamp delta
                int delta = r.ReadVarInt();
                var key = ReadVarBytes(ref r);
                var value = ReadVarBytes(ref r);
                int headers = r.ReadVarInt();
                for (int h = 0; h < headers; h++) { ReadVarBytes(ref r); ReadVarBytes(ref r); }
                result.Add((baseOffset + delta, key, value));
            }
            pos += size;
        }
        return result;
    }

    private static byte[]? ReadVarBytes(ref KafkaReader r)
    {
        int len = r.ReadVarInt();
        return len < 0 ? null : r.ReadMemory(len).ToArray();
    }

    public static RecordBatchEnumerator Enumerate(ReadOnlySpan<byte> buffer, bool allowTruncatedTail = false) =>
        new(buffer, allowTruncatedTail);

    // ---- in-place mutation ----

    /// <summary>Assigns the batch's base offset. Outside the CRC (it starts at attributes), so no recompute.</summary>
    public static void SetBaseOffset(Span<byte> batch, long baseOffset) =>
        BinaryPrimitives.WriteInt64BigEndian(RequireHeader(batch)[BaseOffsetOffset..], baseOffset);

    /// <summary>Stamps the leader epoch (KIP-101). Outside the CRC, so no recompute.</summary>
    public static void SetPartitionLeaderEpoch(Span<byte> batch, int partitionLeaderEpoch) =>
        BinaryPrimitives.WriteInt32BigEndian(RequireHeader(batch)[PartitionLeaderEpochOffset..], partitionLeaderEpoch);

    /// <summary>
    /// Sets the timestamp type and maxTimestamp and rewrites the CRC (both lie inside it), as
    /// DefaultRecordBatch.setMaxTimestamp does. Used for topics with message.timestamp.type=LogAppendTime:
    /// record timestamps then read as the batch maxTimestamp.
    /// </summary>
    public static void SetMaxTimestamp(Span<byte> batch, TimestampType timestampType, long maxTimestamp)
    {
        Span<byte> header = RequireHeader(batch);
        short attributes = BinaryPrimitives.ReadInt16BigEndian(header[AttributesOffset..]);
        short updated = timestampType == TimestampType.LogAppendTime
            ? (short)(attributes | TimestampTypeMask)
            : (short)(attributes & ~TimestampTypeMask);
        if (updated == attributes && BinaryPrimitives.ReadInt64BigEndian(header[MaxTimestampOffset..]) == maxTimestamp)
            return;
        BinaryPrimitives.WriteInt16BigEndian(header[AttributesOffset..], updated);
        BinaryPrimitives.WriteInt64BigEndian(header[MaxTimestampOffset..], maxTimestamp);
        WriteCrc(batch);
    }

    /// <summary>The LogAppendTime rewrite: timestampType bit set, maxTimestamp = the broker's append time.</summary>
    public static void SetLogAppendTime(Span<byte> batch, long logAppendTime) =>
        SetMaxTimestamp(batch, TimestampType.LogAppendTime, logAppendTime);

    /// <summary>Recomputes and stores the CRC-32C over attributes..end of the declared batch.</summary>
    public static void WriteCrc(Span<byte> batch)
    {
        Span<byte> header = RequireHeader(batch);
        int length = BinaryPrimitives.ReadInt32BigEndian(header[BatchLengthOffset..]);
        if (length < HeaderSize - LogOverhead || (long)length + LogOverhead > batch.Length)
            throw KafkaProtocolException.Truncated("record batch");
        uint crc = Crc32C.Compute(batch[AttributesOffset..(length + LogOverhead)]);
        BinaryPrimitives.WriteUInt32BigEndian(header[CrcOffset..], crc);
    }

    private static Span<byte> RequireHeader(Span<byte> batch)
    {
        if (batch.Length < HeaderSize) throw KafkaProtocolException.Truncated("record batch header");
        return batch;
    }

    /// <summary>
    /// Writes a copy of <paramref name="batch"/> whose records section is re-encoded with
    /// <paramref name="target"/> (the broker does this when a topic's compression.type differs from the
    /// producer's codec). The encoded records are identical in every codec, so they are decoded once and
    /// re-encoded as a block; every header field except attributes' codec bits, batchLength and CRC is kept.
    /// </summary>
    public static void Recompress(ReadOnlySpan<byte> batch, CompressionType target, PooledBuffer output,
        int maxDecompressedBytes = DefaultMaxDecompressedBytes, int? level = null)
    {
        var view = new RecordBatch(batch);
        if ((long)view.BatchLength + LogOverhead > view.Bytes.Length) throw KafkaProtocolException.Truncated("record batch");
        int start = output.Length;
        output.Write(view.Bytes[..HeaderSize]);
        if (view.Compression == CompressionType.None)
        {
            CompressionCodecs.Compress(target, view.RecordsData, output, CurrentMagic, level);
        }
        else
        {
            using PooledBuffer records = CompressionCodecs.Decompress(view.Compression, view.RecordsData, maxDecompressedBytes);
            CompressionCodecs.Compress(target, records.WrittenSpan, output, CurrentMagic, level);
        }
        Span<byte> written = output.Span[start..];
        int total = written.Length;
        BinaryPrimitives.WriteInt32BigEndian(written[BatchLengthOffset..], total - LogOverhead);
        short attributes = BinaryPrimitives.ReadInt16BigEndian(written[AttributesOffset..]);
        attributes = (short)((attributes & ~CompressionCodecMask) | (byte)target);
        BinaryPrimitives.WriteInt16BigEndian(written[AttributesOffset..], attributes);
        WriteCrc(written);
    }
}

/// <summary>
/// Frames consecutive batches in a buffer by their batchLength. It checks that each batch is complete
/// and is magic 2 but does not verify CRCs (call <see cref="RecordBatch.Validate"/>). With
/// allowTruncatedTail a partial batch at the end (normal in Fetch responses cut at max bytes) ends the
/// enumeration; otherwise it throws.
/// </summary>
public ref struct RecordBatchEnumerator
{
    private readonly ReadOnlySpan<byte> _buffer;
    private readonly bool _allowTruncatedTail;
    private int _position;
    private int _currentStart;
    private int _currentLength;

    public RecordBatchEnumerator(ReadOnlySpan<byte> buffer, bool allowTruncatedTail)
    {
        _buffer = buffer;
        _allowTruncatedTail = allowTruncatedTail;
        _position = 0;
        _currentStart = 0;
        _currentLength = 0;
    }

    /// <summary>Offset just past the last complete batch returned.</summary>
    public readonly int Position => _position;

    public readonly RecordBatch Current => new(_buffer.Slice(_currentStart, _currentLength));

    public readonly RecordBatchEnumerator GetEnumerator() => this;

    public bool MoveNext()
    {
        int remaining = _buffer.Length - _position;
        if (remaining == 0) return false;
        if (remaining < RecordBatch.HeaderSize)
        {
            if (_allowTruncatedTail) return false;
            throw KafkaProtocolException.Truncated("record batch header");
        }
        ReadOnlySpan<byte> rest = _buffer[_position..];
        int batchLength = BinaryPrimitives.ReadInt32BigEndian(rest[RecordBatch.BatchLengthOffset..]);
        byte magic = rest[RecordBatch.MagicOffset];
        if (magic != RecordBatch.CurrentMagic)
            throw new KafkaProtocolException(ProtocolErrorKind.UnsupportedVersion, $"record batch magic {magic} is not 2");
        if (batchLength < RecordBatch.HeaderSize - RecordBatch.LogOverhead)
            throw new KafkaProtocolException(ProtocolErrorKind.Malformed, $"record batch length {batchLength} is smaller than a header");
        if ((long)batchLength + RecordBatch.LogOverhead > remaining)
        {
            if (_allowTruncatedTail) return false;
            throw KafkaProtocolException.TooLong("record batch", (long)batchLength + RecordBatch.LogOverhead, remaining);
        }
        _currentStart = _position;
        _currentLength = batchLength + RecordBatch.LogOverhead;
        _position += _currentLength;
        return true;
    }
}
