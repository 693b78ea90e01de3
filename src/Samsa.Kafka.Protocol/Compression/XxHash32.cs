namespace Samsa.Kafka.Protocol.Compression;

/// <summary>
/// xxHash32 (seed 0 in LZ4 frames): the LZ4 frame format uses it for the frame-descriptor checksum
/// byte, the optional per-block checksums and the optional content checksum. A name for
/// System.IO.Hashing's implementation, so the frame code reads as the format describes it.
/// </summary>
public static class XxHash32
{
    public static uint Hash(ReadOnlySpan<byte> data, uint seed = 0) =>
        System.IO.Hashing.XxHash32.HashToUInt32(data, unchecked((int)seed));
}
