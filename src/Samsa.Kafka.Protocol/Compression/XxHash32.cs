using System.Buffers.Binary;
using System.Numerics;

namespace Samsa.Kafka.Protocol.Compression;

/// <summary>
/// xxHash32 (seed 0 in LZ4 frames): the LZ4 frame format uses it for the frame-descriptor checksum
/// byte, the optional per-block checksums and the optional content checksum.
/// System.IO.Hashing is not available here, so this is a direct implementation of the published algorithm.
/// </summary>
public static class XxHash32
{
    private const uint Prime1 = 2654435761u;
    private const uint Prime2 = 2246822519u;
    private const uint Prime3 = 3266489917u;
    private const uint Prime4 = 668265263u;
    private const uint Prime5 = 374761393u;

    public static uint Hash(ReadOnlySpan<byte> data, uint seed = 0)
    {
        int length = data.Length;
        int i = 0;
        uint h;
        if (length >= 16)
        {
            uint v1 = seed + Prime1 + Prime2;
            uint v2 = seed + Prime2;
            uint v3 = seed;
            uint v4 = seed - Prime1;
            int limit = length - 16;
            while (i <= limit)
            {
                v1 = Round(v1, BinaryPrimitives.ReadUInt32LittleEndian(data.Slice(i, 4)));
                v2 = Round(v2, BinaryPrimitives.ReadUInt32LittleEndian(data.Slice(i + 4, 4)));
                v3 = Round(v3, BinaryPrimitives.ReadUInt32LittleEndian(data.Slice(i + 8, 4)));
                v4 = Round(v4, BinaryPrimitives.ReadUInt32LittleEndian(data.Slice(i + 12, 4)));
                i += 16;
            }
            h = BitOperations.RotateLeft(v1, 1) + BitOperations.RotateLeft(v2, 7) +
                BitOperations.RotateLeft(v3, 12) + BitOperations.RotateLeft(v4, 18);
        }
        else
        {
            h = seed + Prime5;
        }
        h += (uint)length;
        while (length - i >= 4)
        {
            h += BinaryPrimitives.ReadUInt32LittleEndian(data.Slice(i, 4)) * Prime3;
            h = BitOperations.RotateLeft(h, 17) * Prime4;
            i += 4;
        }
        while (i < length)
        {
            h += data[i] * Prime5;
            h = BitOperations.RotateLeft(h, 11) * Prime1;
            i++;
        }
        h ^= h >> 15;
        h *= Prime2;
        h ^= h >> 13;
        h *= Prime3;
        h ^= h >> 16;
        return h;
    }

    private static uint Round(uint acc, uint input)
    {
        acc += input * Prime2;
        acc = BitOperations.RotateLeft(acc, 13);
        return acc * Prime1;
    }
}
