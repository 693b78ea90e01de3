using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace Samsa.Kafka.Protocol.Records;

/// <summary>
/// CRC-32C (Castagnoli), the checksum RecordBatch v2 carries (KIP-98 moved batches from CRC-32 to
/// CRC-32C because CPUs compute it in hardware). <see cref="BitOperations.Crc32C(uint, ulong)"/> maps to
/// the SSE4.2 / ARMv8 CRC32 instructions; the input is consumed eight bytes per instruction.
/// </summary>
public static class Crc32C
{
    /// <summary>CRC-32C of <paramref name="data"/> (initial value and final xor 0xFFFFFFFF, as Kafka and iSCSI use).</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => ~Update(0xFFFFFFFFu, data);

    /// <summary>
    /// Continues a running CRC over more bytes. <paramref name="state"/> is the raw register: start with
    /// 0xFFFFFFFF and complement the final value (or use <see cref="Compute"/>).
    /// </summary>
    public static uint Update(uint state, ReadOnlySpan<byte> data)
    {
        ref byte start = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(data);
        int length = data.Length;
        int offset = 0;

        // Four independent-in-address loads per iteration keep the loop overhead small; the CRC
        // instruction chain itself is serial, so this is latency-bound at ~8 bytes per 3 cycles.
        while (length - offset >= 32)
        {
            state = BitOperations.Crc32C(state, ReadUInt64(ref start, offset));
            state = BitOperations.Crc32C(state, ReadUInt64(ref start, offset + 8));
            state = BitOperations.Crc32C(state, ReadUInt64(ref start, offset + 16));
            state = BitOperations.Crc32C(state, ReadUInt64(ref start, offset + 24));
            offset += 32;
        }
        while (length - offset >= 8)
        {
            state = BitOperations.Crc32C(state, ReadUInt64(ref start, offset));
            offset += 8;
        }
        if (length - offset >= 4)
        {
            state = BitOperations.Crc32C(state, BinaryPrimitives.ReadUInt32LittleEndian(data.Slice(offset, 4)));
            offset += 4;
        }
        while (offset < length)
        {
            state = BitOperations.Crc32C(state, Unsafe.Add(ref start, offset));
            offset++;
        }
        return state;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong ReadUInt64(ref byte start, int offset)
    {
        // The CRC instruction consumes its operand least-significant byte first, i.e. in memory order
        // on a little-endian machine; on big-endian hosts the bytes must be swapped to keep that order.
        ulong value = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref start, offset));
        return BitConverter.IsLittleEndian ? value : BinaryPrimitives.ReverseEndianness(value);
    }
}
