using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace Samsa.Kafka.Protocol.Records;

/// <summary>
/// CRC-32C (Castagnoli), the checksum RecordBatch v2 carries (KIP-98 moved batches from CRC-32 to
/// CRC-32C because CPUs compute it in hardware). <see cref="BitOperations.Crc32C(uint, ulong)"/> maps to
/// the SSE4.2 / ARMv8 CRC32 instructions; the input is consumed eight bytes per instruction, in three
/// independent chains for inputs of 1.5 KiB and more.
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

        // Three chains at once (issue #19): the CRC instruction has a latency of three cycles but
        // starts one per cycle, so one serial chain runs at a third of the CPU's rate. Each group
        // of 3 × Block bytes is summed as three independent blocks (the second and third from a
        // zero register) and joined with the Block-byte shift: CRC is linear, so the register after
        // X‖Y is Shift|Y|(register after X) xor (register of Y from zero).
        if (length >= 3 * Block)
        {
            uint[] shift = ShiftTable;
            do
            {
                uint a = state, b = 0, c = 0;
                for (int i = offset; i < offset + Block; i += 8)
                {
                    a = BitOperations.Crc32C(a, ReadUInt64(ref start, i));
                    b = BitOperations.Crc32C(b, ReadUInt64(ref start, i + Block));
                    c = BitOperations.Crc32C(c, ReadUInt64(ref start, i + 2 * Block));
                }
                state = ShiftBlock(shift, ShiftBlock(shift, a) ^ b) ^ c;
                offset += 3 * Block;
            }
            while (length - offset >= 3 * Block);
        }

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

    // Bytes per chain in the three-chain loop; a multiple of 8.
    private const int Block = 512;

    // The register after Block zero bytes, as four byte-indexed tables (the map is linear, so the
    // shift of a register is the xor of the shifts of its four bytes).
    private static readonly uint[] ShiftTable = BuildShiftTable();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint ShiftBlock(uint[] table, uint register) =>
        table[register & 0xFF] ^ table[256 + ((register >> 8) & 0xFF)] ^ table[512 + ((register >> 16) & 0xFF)] ^ table[768 + (register >> 24)];

    private static uint[] BuildShiftTable()
    {
        Span<uint> basis = stackalloc uint[32];
        for (int bit = 0; bit < 32; bit++)
        {
            uint register = 1u << bit;
            for (int i = 0; i < Block; i += 8)
            {
                register = BitOperations.Crc32C(register, 0UL);
            }
            basis[bit] = register;
        }
        var table = new uint[4 * 256];
        for (int k = 0; k < 4; k++)
        {
            for (int value = 0; value < 256; value++)
            {
                uint shifted = 0;
                for (int i = 0; i < 8; i++)
                {
                    if ((value & (1 << i)) != 0)
                    {
                        shifted ^= basis[8 * k + i];
                    }
                }
                table[256 * k + value] = shifted;
            }
        }
        return table;
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
