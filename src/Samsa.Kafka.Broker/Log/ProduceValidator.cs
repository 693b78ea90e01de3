using System.Buffers.Binary;
using Samsa.Kafka.Protocol.Compression;
using Samsa.Kafka.Protocol.Records;
using Samsa.Kafka.Protocol.Primitives;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Protocol;

namespace Samsa.Kafka.Broker.Log;

/// <summary>The outcome of validating one partition's produced records.</summary>
public sealed class ValidatedRecords
{
    public short ErrorCode { get; init; }
    public string? ErrorMessage { get; init; }
    /// <summary>Stamped batches ready for <see cref="IPartitionLog.AppendValidated"/>: a fresh array,
    /// or (ValidateInPlace) the caller's own bytes; the log may stamp them again in place.</summary>
    public ReadOnlyMemory<byte> Batches { get; init; } = ReadOnlyMemory<byte>.Empty;
    public int RecordCount { get; init; }
    public long MaxTimestamp { get; init; } = -1;
    /// <summary>Offset delta (from the first appended offset) of the record holding MaxTimestamp.</summary>
    public long ShallowOffsetOfMaxTimestampDelta { get; init; }
    public long LastOffsetDelta { get; init; }
    public long LogAppendTime { get; init; } = -1;
    /// <summary>Per-record failures reported in ProduceResponse record_errors (v8+).</summary>
    public List<(int BatchIndex, string? Message)> RecordErrors { get; } = [];

    public static ValidatedRecords Error(short code, string message) => new() { ErrorCode = code, ErrorMessage = message };
}

/// <summary>
/// Validates and stamps produced RecordBatch v2 data the way upstream's LogValidator does for a
/// leader append: batch framing and CRC-32C (CORRUPT_MESSAGE), batch size against
/// max.message.bytes (MESSAGE_TOO_LARGE), timestamps against message.timestamp.before/after.max.ms
/// (INVALID_TIMESTAMP), recompression when the topic's compression.type names a codec other than
/// the producer's, LogAppendTime stamping, then base offsets and the partition leader epoch.
/// </summary>
public static class ProduceValidator
{
    /// <summary>Index of the first record without a key in a v2 batch, or -1. Decompression is
    /// bounded by max.message.bytes scaled like upstream's buffer limit, never by the claim.</summary>
    private static int FindRecordWithoutKey(ReadOnlySpan<byte> batchBytes, int maxMessageBytes)
    {
        var batch = new RecordBatch(batchBytes);
        int limit = (int)Math.Min(RecordBatch.DefaultMaxDecompressedBytes, Math.Max(1L << 20, (long)maxMessageBytes * 8));
        int index = 0;
        foreach (var record in batch.GetRecords(limit))
        {
            if (record.IsKeyNull) return index;
            index++;
        }
        return -1;
    }

    /// <summary>Validates and stamps a copy of <paramref name="records"/>; the input is not changed.</summary>
    public static ValidatedRecords Validate(ReadOnlySpan<byte> records, LogConfig config, long nextOffset, int leaderEpoch,
        long nowMs, short produceVersion) =>
        Validate(records, Memory<byte>.Empty, config, nextOffset, leaderEpoch, nowMs, produceVersion);

    /// <summary>
    /// Validates and stamps <paramref name="records"/> where they lie when no batch needs
    /// recompression or conversion: the result's Batches are then the input itself, with base
    /// offsets, leader epoch and (LogAppendTime) timestamps written into it, and no byte of the
    /// records is copied before the log writes them. Upstream's LogValidator likewise assigns offsets
    /// in place in the request's buffer when it need not rebuild the batches. The caller must own the
    /// bytes (a produce request's frame, held until its handler returns) and not read them as sent.
    /// </summary>
    public static ValidatedRecords ValidateInPlace(Memory<byte> records, LogConfig config, long nextOffset, int leaderEpoch,
        long nowMs, short produceVersion) =>
        Validate(records.Span, records, config, nextOffset, leaderEpoch, nowMs, produceVersion);

    private static ValidatedRecords Validate(ReadOnlySpan<byte> records, Memory<byte> writable, LogConfig config, long nextOffset, int leaderEpoch,
        long nowMs, short produceVersion)
    {
        if (records.Length == 0)
            return ValidatedRecords.Error((short)ErrorCode.CorruptMessage, "Produce request has no records");
        if (records.Length > 16 && records[RecordBatch.MagicOffset] < 2)
            return ValidateLegacy(records, config, nextOffset, leaderEpoch, nowMs, produceVersion);

        // Pass 1: framing, magic, CRC, per-batch checks.
        var batches = new List<(int Start, int Length)>();
        int pos = 0;
        while (pos < records.Length)
        {
            if (records.Length - pos < RecordBatch.LogOverhead)
                return ValidatedRecords.Error((short)ErrorCode.CorruptMessage, "Truncated record batch at the end of the produce data");
            int batchLength = BinaryPrimitives.ReadInt32BigEndian(records[(pos + RecordBatch.BatchLengthOffset)..]);
            // Compared in 64 bits: a claimed length near int.MaxValue (0x7fffffff) plus the log
            // overhead would wrap negative in 32 and slip past the bound (upstream's
            // ByteBufferLogInputStream answers such a batch CORRUPT_MESSAGE).
            if (batchLength < RecordBatch.HeaderSize - RecordBatch.LogOverhead
                || (long)RecordBatch.LogOverhead + batchLength > records.Length - pos)
                return ValidatedRecords.Error((short)ErrorCode.CorruptMessage, $"Record batch length {batchLength} is invalid");
            int size = RecordBatch.LogOverhead + batchLength;
            byte magic = records[pos + RecordBatch.MagicOffset];
            if (magic != 2)
                return ValidatedRecords.Error((short)ErrorCode.UnsupportedForMessageFormat,
                    $"Record batches with magic {magic} need conversion before append");
            var batch = records.Slice(pos, size);
            uint stored = BinaryPrimitives.ReadUInt32BigEndian(batch[RecordBatch.CrcOffset..]);
            uint computed = Crc32C.Compute(batch[RecordBatch.AttributesOffset..]);
            if (stored != computed)
                return ValidatedRecords.Error((short)ErrorCode.CorruptMessage,
                    $"Record batch is corrupt (stored crc = {stored}, computed crc = {computed})");
            if (size > config.MaxMessageBytes)
                return ValidatedRecords.Error((short)ErrorCode.MessageTooLarge,
                    $"The record batch size in the append to a partition is {size} bytes which exceeds the maximum configured value of {config.MaxMessageBytes}.");
            int count = BinaryPrimitives.ReadInt32BigEndian(batch[RecordBatch.RecordsCountOffset..]);
            int lastDelta = BinaryPrimitives.ReadInt32BigEndian(batch[RecordBatch.LastOffsetDeltaOffset..]);
            if (count <= 0 || lastDelta < 0 || lastDelta + 1 < count)
                return ValidatedRecords.Error((short)ErrorCode.InvalidRecord, $"Record batch has {count} records and last offset delta {lastDelta}");
            var codec = (CompressionType)(BinaryPrimitives.ReadInt16BigEndian(batch[RecordBatch.AttributesOffset..]) & RecordBatch.CompressionCodecMask);
            if (codec > CompressionType.Zstd)
                return ValidatedRecords.Error((short)ErrorCode.CorruptMessage, $"Unknown compression codec {(int)codec}");
            // KIP-110: zstd needs produce v7+ so older clients cannot write what they cannot read.
            if (codec == CompressionType.Zstd && produceVersion < 7)
                return ValidatedRecords.Error((short)ErrorCode.UnsupportedCompressionType,
                    "Produce requests with ZStandard compression need version 7 or later");
            // LogValidator.validateKey: a compacted topic refuses a record without a key, naming
            // the record in record_errors (INVALID_RECORD). Control batches carry no user keys.
            if (config.CleanupPolicy.Contains("compact") && (BinaryPrimitives.ReadInt16BigEndian(batch[RecordBatch.AttributesOffset..]) & RecordBatch.ControlFlagMask) == 0)
            {
                int keyless;
                try
                {
                    keyless = FindRecordWithoutKey(batch, config.MaxMessageBytes);
                }
                catch (KafkaProtocolException e)
                {
                    // Records that cannot be read past a valid CRC (bad varints, a payload that does
                    // not decompress): upstream's LogValidator fails the append with CORRUPT_MESSAGE.
                    return ValidatedRecords.Error((short)ErrorCode.CorruptMessage, $"Record batch records are invalid: {e.Message}");
                }
                if (keyless >= 0)
                {
                    var rejected = ValidatedRecords.Error((short)ErrorCode.InvalidRecord,
                        "Compacted topic cannot accept message without key.");
                    rejected.RecordErrors.Add((keyless, "Compacted topic cannot accept message without key."));
                    return rejected;
                }
            }
            batches.Add((pos, size));
            pos += size;
        }
        // Produce v3+ carries exactly one batch (ProduceRequest.validateRecords).
        if (produceVersion >= 3 && batches.Count != 1)
            return ValidatedRecords.Error((short)ErrorCode.InvalidRecord,
                "Produce requests with version 3 and above must contain exactly one record batch");

        CompressionType? target = config.CompressionType switch
        {
            "producer" => null,
            "uncompressed" => CompressionType.None,
            "gzip" => CompressionType.Gzip,
            "snappy" => CompressionType.Snappy,
            "lz4" => CompressionType.Lz4,
            "zstd" => CompressionType.Zstd,
            _ => null,
        };

        // In place when every batch keeps its bytes (no recompression to the topic's codec).
        bool inPlace = !writable.IsEmpty;
        if (inPlace && target is { } wanted)
        {
            foreach (var (start, _) in batches)
            {
                short a = BinaryPrimitives.ReadInt16BigEndian(records[(start + RecordBatch.AttributesOffset)..]);
                if ((CompressionType)(a & RecordBatch.CompressionCodecMask) != wanted && (a & RecordBatch.ControlFlagMask) == 0) { inPlace = false; break; }
            }
        }
        using var output = inPlace ? null : new PooledBuffer(records.Length + 64);
        long offset = nextOffset;
        long maxTimestamp = -1, offsetOfMax = 0;
        int totalRecords = 0;
        long logAppendTime = config.LogAppendTime ? nowMs : -1;
        foreach (var (start, length) in batches)
        {
            Span<byte> stamped;
            if (output is null)
            {
                stamped = writable.Span.Slice(start, length);
            }
            else
            {
                var batch = records.Slice(start, length);
                short attributes = BinaryPrimitives.ReadInt16BigEndian(batch[RecordBatch.AttributesOffset..]);
                var codec = (CompressionType)(attributes & RecordBatch.CompressionCodecMask);
                int batchStart = output.Length;
                if (target is { } t && t != codec && (attributes & RecordBatch.ControlFlagMask) == 0)
                {
                    var problem = Recompress(batch, codec, t, config, output);
                    if (problem is not null) return problem;
                }
                else
                {
                    output.Write(batch);
                }
                stamped = output.Span[batchStart..];
            }
            int lastDelta = BinaryPrimitives.ReadInt32BigEndian(stamped[RecordBatch.LastOffsetDeltaOffset..]);
            int count = BinaryPrimitives.ReadInt32BigEndian(stamped[RecordBatch.RecordsCountOffset..]);
            long batchMax = BinaryPrimitives.ReadInt64BigEndian(stamped[RecordBatch.MaxTimestampOffset..]);
            short attrs = BinaryPrimitives.ReadInt16BigEndian(stamped[RecordBatch.AttributesOffset..]);
            bool changed = false;
            if (config.LogAppendTime)
            {
                attrs = (short)(attrs | RecordBatch.TimestampTypeMask);
                BinaryPrimitives.WriteInt16BigEndian(stamped[RecordBatch.AttributesOffset..], attrs);
                BinaryPrimitives.WriteInt64BigEndian(stamped[RecordBatch.MaxTimestampOffset..], nowMs);
                batchMax = nowMs;
                changed = true;
            }
            else
            {
                if ((attrs & RecordBatch.TimestampTypeMask) != 0)
                {
                    // A producer cannot claim LogAppendTime on a CreateTime topic (LogValidator).
                    attrs = (short)(attrs & ~RecordBatch.TimestampTypeMask);
                    BinaryPrimitives.WriteInt16BigEndian(stamped[RecordBatch.AttributesOffset..], attrs);
                    changed = true;
                }
                long baseTs = BinaryPrimitives.ReadInt64BigEndian(stamped[RecordBatch.BaseTimestampOffset..]);
                if ((TimestampOutOfRange(baseTs, nowMs, config) ?? TimestampOutOfRange(batchMax, nowMs, config)) is { } ts)
                    return ValidatedRecords.Error((short)ErrorCode.InvalidTimestamp,
                        $"Timestamp {ts} of message with offset {offset} is out of range. The timestamp should be within [{SafeSub(nowMs, config.TimestampBeforeMaxMs)}, {SafeAdd(nowMs, config.TimestampAfterMaxMs)}]");
            }
            BinaryPrimitives.WriteInt64BigEndian(stamped[RecordBatch.BaseOffsetOffset..], offset);
            BinaryPrimitives.WriteInt32BigEndian(stamped[RecordBatch.PartitionLeaderEpochOffset..], leaderEpoch);
            if (changed)
                BinaryPrimitives.WriteUInt32BigEndian(stamped[RecordBatch.CrcOffset..], Crc32C.Compute(stamped[RecordBatch.AttributesOffset..]));
            if (batchMax > maxTimestamp) { maxTimestamp = batchMax; offsetOfMax = offset + lastDelta - nextOffset; }
            totalRecords += count;
            offset += lastDelta + 1;
        }
        return new ValidatedRecords
        {
            Batches = output is null ? writable[..records.Length] : output.ToArray(),
            RecordCount = totalRecords,
            MaxTimestamp = maxTimestamp,
            ShallowOffsetOfMaxTimestampDelta = offsetOfMax,
            LastOffsetDelta = offset - 1 - nextOffset,
            LogAppendTime = logAppendTime,
        };
    }

    // Message format v0/v1 (produce v0-v2 from old clients): upstream's LogValidator converts the
    // message set to one v2 batch when the log is v2 (convertAndAssignOffsetsNonCompressed /
    // validateMessagesAndAssignOffsetsCompressed). The wrapper's codec is kept unless the topic's
    // compression.type names another. Every message's CRC-32 is checked on the way.
    private static ValidatedRecords ValidateLegacy(ReadOnlySpan<byte> records, LogConfig config, long nextOffset, int leaderEpoch,
        long nowMs, short produceVersion)
    {
        // The smallest legacy message (magic 0, null key and value) is 26 bytes with its offset and
        // size; anything shorter cannot hold the attributes byte read below (found by the
        // produce-validator fuzz target: a 17-byte "message set" indexed past its end).
        if (records.Length <= LegacyMessageSet.AttributesOffset)
            return ValidatedRecords.Error((short)ErrorCode.CorruptMessage, "Message set is shorter than one message header");
        var target = config.CompressionType switch
        {
            "uncompressed" => CompressionType.None,
            "gzip" => CompressionType.Gzip,
            "snappy" => CompressionType.Snappy,
            "lz4" => CompressionType.Lz4,
            "zstd" => CompressionType.Zstd,
            _ => (CompressionType)(records[LegacyMessageSet.AttributesOffset] & LegacyMessageSet.CompressionCodecMask),
        };
        using var converted = new PooledBuffer(records.Length + 128);
        try
        {
            int limit = (int)Math.Min(int.MaxValue - 1024, Math.Max(64L * 1024 * 1024, (long)config.MaxMessageBytes * 64));
            int count = LegacyMessageSet.ConvertToRecordBatch(records, target, converted, limit);
            if (count == 0)
                return ValidatedRecords.Error((short)ErrorCode.CorruptMessage, "Message set holds no messages");
        }
        catch (KafkaProtocolException e)
        {
            // Upstream reports bad legacy messages (CRC, framing, codec) as CORRUPT_MESSAGE.
            return ValidatedRecords.Error((short)ErrorCode.CorruptMessage, $"Invalid legacy message set ({e.Kind}): {e.Message}");
        }
        // The converted batch is validated like a v2 produce (size, timestamps, stamping); produce
        // v3+ rules about a single batch hold by construction.
        return Validate(converted.WrittenSpan.ToArray(), config, nextOffset, leaderEpoch, nowMs, Math.Max(produceVersion, (short)7));
    }

    /// <summary>The timestamp when it lies outside message.timestamp.before/after.max.ms of now; NO_TIMESTAMP (-1) passes.</summary>
    private static long? TimestampOutOfRange(long ts, long nowMs, LogConfig config) =>
        ts >= 0 && (nowMs - ts > config.TimestampBeforeMaxMs || ts - nowMs > config.TimestampAfterMaxMs) ? ts : null;

    private static long SafeSub(long a, long b) => b == long.MaxValue ? long.MinValue : a - b;
    private static long SafeAdd(long a, long b) => b == long.MaxValue || a > long.MaxValue - b ? long.MaxValue : a + b;

    // Rewrites the batch with the topic's codec: same header (attributes' codec bits changed),
    // records payload decompressed and recompressed, CRC recomputed by the caller's stamping or here.
    private static ValidatedRecords? Recompress(ReadOnlySpan<byte> batch, CompressionType from, CompressionType to, LogConfig config, PooledBuffer output)
    {
        var payload = batch[RecordBatch.RecordsOffset..];
        PooledBuffer? plain = null;
        try
        {
            // Bound the decompressed size: a record batch may not expand beyond the message limit
            // by more than the codec's plausible ratio; use a generous fixed ceiling.
            int limit = (int)Math.Min(int.MaxValue - 1024, Math.Max(64L * 1024 * 1024, (long)config.MaxMessageBytes * 64));
            plain = from == CompressionType.None ? null : CompressionCodecs.Decompress(from, payload, limit);
            var raw = plain is null ? payload : plain.WrittenSpan;
            int start = output.Length;
            output.Write(batch[..RecordBatch.RecordsOffset]);
            int? level = to switch
            {
                CompressionType.Gzip => config.GzipLevel == -1 ? null : config.GzipLevel,
                CompressionType.Lz4 => config.Lz4Level,
                CompressionType.Zstd => config.ZstdLevel,
                _ => null,
            };
            CompressionCodecs.Compress(to, raw, output, 2, level);
            var rewritten = output.Span[start..];
            BinaryPrimitives.WriteInt32BigEndian(rewritten[RecordBatch.BatchLengthOffset..], rewritten.Length - RecordBatch.LogOverhead);
            short attrs = BinaryPrimitives.ReadInt16BigEndian(rewritten[RecordBatch.AttributesOffset..]);
            attrs = (short)((attrs & ~RecordBatch.CompressionCodecMask) | (byte)to);
            BinaryPrimitives.WriteInt16BigEndian(rewritten[RecordBatch.AttributesOffset..], attrs);
            BinaryPrimitives.WriteUInt32BigEndian(rewritten[RecordBatch.CrcOffset..], Crc32C.Compute(rewritten[RecordBatch.AttributesOffset..]));
            if (rewritten.Length > config.MaxMessageBytes)
                return ValidatedRecords.Error((short)ErrorCode.MessageTooLarge,
                    $"The record batch size in the append to a partition is {rewritten.Length} bytes which exceeds the maximum configured value of {config.MaxMessageBytes}.");
            return null;
        }
        catch (Samsa.Kafka.Protocol.Primitives.KafkaProtocolException e)
        {
            return ValidatedRecords.Error((short)ErrorCode.CorruptMessage, $"Record batch could not be decompressed: {e.Message}");
        }
        finally
        {
            plain?.Dispose();
        }
    }
}
