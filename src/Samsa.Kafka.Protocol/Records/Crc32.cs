using System.Buffers.Binary;

namespace Samsa.Kafka.Protocol.Records;

/// <summary>
/// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), the checksum of legacy messages (magic 0 and 1).
/// System.IO.Hashing is not available here; this is table driven, "slicing by 8": eight 256-entry
/// tables let one step fold eight input bytes.
/// </summary>
public static class Crc32
{
    private static readonly uint[] Tables = BuildTables();

    private static uint[] BuildTables()
    {
        var tables = new uint[8 * 256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++)
                c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            tables[n] = c;
        }
        // Table k maps a byte to its CRC contribution when followed by k zero bytes.
        for (int k = 1; k < 8; k++)
            for (int n = 0; n < 256; n++)
            {
                uint previous = tables[(k - 1) * 256 + n];
                tables[k * 256 + n] = (previous >> 8) ^ tables[previous & 0xFF];
            }
        return tables;
    }

    public static uint Compute(ReadOnlySpan<byte> data) => ~Update(0xFFFFFFFFu, data);

    /// <summary>Continues a running CRC; start with 0xFFFFFFFF and complement the final value.</summary>
    public static uint Update(uint state, ReadOnlySpan<byte> data)
    {
        ReadOnlySpan<uint> t = Tables;
        int i = 0;
        for (; data.Length - i >= 8; i += 8)
        {
            uint one = BinaryPrimitives.ReadUInt32LittleEndian(data[i..]) ^ state;
            uint two = BinaryPrimitives.ReadUInt32LittleEndian(data[(i + 4)..]);
            state = t[7 * 256 + (int)(one & 0xFF)] ^ t[6 * 256 + (int)((one >> 8) & 0xFF)]
                  ^ t[5 * 256 + (int)((one >> 16) & 0xFF)] ^ t[4 * 256 + (int)(one >> 24)]
                  ^ t[3 * 256 + (int)(two & 0xFF)] ^ t[2 * 256 + (int)((two >> 8) & 0xFF)]
                  ^ t[1 * 256 + (int)((two >> 16) & 0xFF)] ^ t[(int)(two >> 24)];
        }
        for (; i < data.Length; i++)
            state = t[(int)((state ^ data[i]) & 0xFF)] ^ (state >> 8);
        return state;
    }
}
