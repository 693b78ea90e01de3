namespace Samsa.Kafka.Protocol.Compression;

/// <summary>
/// The codec ids stored in the low three bits of a batch's (or legacy message's) attributes.
/// Values 5..7 are unassigned; Kafka rejects them.
/// </summary>
public enum CompressionType : byte
{
    None = 0,
    Gzip = 1,
    Snappy = 2,
    Lz4 = 3,
    /// <summary>Only valid in RecordBatch v2 (KIP-110); never inside legacy message sets.</summary>
    Zstd = 4,
}
