namespace Samsa.Kafka.Storage;

/// <summary>The fetch offset is outside [logStartOffset, logEndOffset] (Kafka error OFFSET_OUT_OF_RANGE, 1).</summary>
public sealed class OffsetOutOfRangeException(string message) : Exception(message);

/// <summary>Appended batches are not well-formed v2 batches or carry offsets the log cannot take
/// (Kafka errors CORRUPT_MESSAGE, 2 / INVALID_RECORD, 87 depending on the cause).</summary>
public sealed class InvalidBatchException(string message) : Exception(message);

/// <summary>A DeleteRecords offset beyond the high watermark (Kafka error OFFSET_OUT_OF_RANGE, 1).</summary>
public sealed class LogStartOffsetOutOfRangeException(string message) : Exception(message);

/// <summary>A batch whose stored CRC-32C does not match its bytes (Kafka error CORRUPT_MESSAGE, 2;
/// upstream CorruptRecordException). A follower refuses such a batch from its leader rather than
/// write it.</summary>
public sealed class CorruptRecordException(string message) : Exception(message);
