using Samsa.Kafka.Protocol.Primitives;

namespace Samsa.Kafka.Protocol.Records;

/// <summary>Why a RecordBatch failed validation (see <see cref="RecordBatch.Validate"/>).</summary>
public enum RecordBatchError
{
    None = 0,
    /// <summary>The buffer ends before the batch header or before the length the batch declares.</summary>
    Truncated,
    /// <summary>batchLength is smaller than a v2 header can be.</summary>
    InvalidBatchLength,
    /// <summary>The magic byte is not 2 (legacy message sets go through <see cref="LegacyMessageSet"/>).</summary>
    UnsupportedMagic,
    /// <summary>The stored CRC-32C does not match the bytes from attributes to the end.</summary>
    CorruptChecksum,
    /// <summary>recordsCount is negative or cannot fit in the records section.</summary>
    InvalidRecordCount,
    /// <summary>Compression bits name an unassigned codec (5..7).</summary>
    UnknownCompression,
    /// <summary>Produce checks: lastOffsetDelta + 1 must equal recordsCount and both be positive.</summary>
    InvalidOffsetRange,
    /// <summary>Produce checks: clients may not write control batches.</summary>
    ControlBatchFromClient,
    /// <summary>Produce checks: an idempotent batch (producerId &gt;= 0) needs baseSequence &gt;= 0.</summary>
    InvalidSequence,
}

public static class RecordBatchErrorExtensions
{
    /// <summary>
    /// The Kafka error code a broker answers with, following upstream: checksum and framing problems are
    /// CorruptRecordException (CORRUPT_MESSAGE = 2); LogValidator's checks throw InvalidRecordException
    /// (INVALID_RECORD = 87); an unknown codec is UNSUPPORTED_COMPRESSION_TYPE (76). 0 for None.
    /// </summary>
    public static short ToErrorCode(this RecordBatchError error) => error switch
    {
        RecordBatchError.None => 0,
        RecordBatchError.Truncated or RecordBatchError.InvalidBatchLength or RecordBatchError.UnsupportedMagic
            or RecordBatchError.CorruptChecksum => 2,
        RecordBatchError.UnknownCompression => 76,
        _ => 87,
    };

    public static ProtocolErrorKind ToErrorKind(this RecordBatchError error) => error switch
    {
        RecordBatchError.Truncated => ProtocolErrorKind.Truncated,
        RecordBatchError.InvalidBatchLength => ProtocolErrorKind.LengthExceedsInput,
        RecordBatchError.UnsupportedMagic => ProtocolErrorKind.UnsupportedVersion,
        RecordBatchError.CorruptChecksum => ProtocolErrorKind.CorruptChecksum,
        RecordBatchError.UnknownCompression => ProtocolErrorKind.Compression,
        _ => ProtocolErrorKind.Malformed,
    };

    public static KafkaProtocolException ToException(this RecordBatchError error, string? detail = null) =>
        new(error.ToErrorKind(), detail ?? $"record batch is invalid: {error}");
}

/// <summary>Batch timestamp type (attribute bit 3). Legacy magic 0 has none.</summary>
public enum TimestampType : sbyte
{
    NoTimestampType = -1,
    CreateTime = 0,
    LogAppendTime = 1,
}
