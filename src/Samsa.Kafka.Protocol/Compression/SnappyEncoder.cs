using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using Samsa.Kafka.Protocol.Primitives;

namespace Samsa.Kafka.Protocol.Compression;

/// <summary>
/// A snappy block encoder writing straight into a <see cref="PooledBuffer"/> (no per-block arrays).
/// Format (snappy's format_description.txt): a varint with the uncompressed length, then elements —
/// literals (tag 00, length-1 in the tag or in 1..4 following bytes) and back-references (tag 01:
/// length 4..11 and an 11-bit offset; tag 10: length 1..64 and a 16-bit offset). Input is encoded in
/// independent 64 KiB fragments so every offset fits 16 bits. Matches are found with a hash table of
/// 4-byte sequences, scanning faster through data that has not matched for a while.
/// </summary>
internal static class SnappyEncoder
{
    private const int FragmentSize = 1 << 16;
    private const int MaxHashTableBits = 14;
    // Leave room at the end of a fragment so 4-byte loads during the search never run past it.
    private const int InputMargin = 15;
    private const int MinFragmentForMatching = InputMargin + 2;

    /// <summary>Worst-case encoded size of <paramref name="length"/> input bytes.</summary>
    public static int MaxEncodedLength(int length) => 32 + length + length / 6;

    public static void Encode(ReadOnlySpan<byte> input, PooledBuffer output)
    {
        Span<byte> dst = output.GetSpan(MaxEncodedLength(input.Length));
        int d = VarInt.WriteUnsigned(dst, (uint)input.Length);
        Span<ushort> table = stackalloc ushort[1 << MaxHashTableBits];
        for (int start = 0; start < input.Length; start += FragmentSize)
        {
            ReadOnlySpan<byte> fragment = input.Slice(start, Math.Min(FragmentSize, input.Length - start));
            d = EncodeFragment(fragment, dst, d, table);
        }
        output.Advance(d);
    }

    private static int EncodeFragment(ReadOnlySpan<byte> src, Span<byte> dst, int d, Span<ushort> fullTable)
    {
        if (src.Length < MinFragmentForMatching) return EmitLiteral(dst, d, src);

        int tableBits = Math.Clamp(32 - BitOperations.LeadingZeroCount((uint)src.Length - 1), 8, MaxHashTableBits);
        Span<ushort> table = fullTable[..(1 << tableBits)];
        table.Clear();
        int shift = 32 - tableBits;

        int ipLimit = src.Length - InputMargin;
        int nextEmit = 0;
        int ip = 1;
        uint nextHash = Hash(Load32(src, ip), shift);
        while (true)
        {
            // Search for a 4-byte match; the step grows by one every 32 misses.
            int skip = 32;
            int nextIp = ip;
            int candidate;
            do
            {
                ip = nextIp;
                uint hash = nextHash;
                int step = skip++ >> 5;
                nextIp = ip + step;
                if (nextIp > ipLimit) return EmitLiteral(dst, d, src[nextEmit..]);
                nextHash = Hash(Load32(src, nextIp), shift);
                candidate = table[(int)hash];
                table[(int)hash] = (ushort)ip;
            }
            while (Load32(src, ip) != Load32(src, candidate));

            d = EmitLiteral(dst, d, src[nextEmit..ip]);

            // Emit copies for as long as the position right after a match starts another one.
            do
            {
                int matchStart = ip;
                int matched = 4 + MatchLength(src, candidate + 4, ip + 4);
                ip += matched;
                d = EmitCopy(dst, d, matchStart - candidate, matched);
                nextEmit = ip;
                if (ip >= ipLimit) return EmitLiteral(dst, d, src[nextEmit..]);
                table[(int)Hash(Load32(src, ip - 1), shift)] = (ushort)(ip - 1);
                uint currentHash = Hash(Load32(src, ip), shift);
                candidate = table[(int)currentHash];
                table[(int)currentHash] = (ushort)ip;
            }
            while (Load32(src, ip) == Load32(src, candidate));

            ip++;
            nextHash = Hash(Load32(src, ip), shift);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Load32(ReadOnlySpan<byte> src, int at) => BinaryPrimitives.ReadUInt32LittleEndian(src[at..]);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Hash(uint value, int shift) => (value * 0x1E35A7BDu) >> shift;

    private static int MatchLength(ReadOnlySpan<byte> src, int a, int b)
    {
        // a < b; compare the two runs up to the end of the fragment.
        int max = src.Length - b;
        return src.Slice(a, max).CommonPrefixLength(src.Slice(b, max));
    }

    private static int EmitLiteral(Span<byte> dst, int d, ReadOnlySpan<byte> literal)
    {
        if (literal.IsEmpty) return d;
        int n = literal.Length - 1;
        if (n < 60)
        {
            dst[d++] = (byte)(n << 2);
        }
        else
        {
            int extra = n < 1 << 8 ? 1 : n < 1 << 16 ? 2 : n < 1 << 24 ? 3 : 4;
            dst[d++] = (byte)((59 + extra) << 2);
            for (int i = 0; i < extra; i++) dst[d++] = (byte)(n >> (8 * i));
        }
        literal.CopyTo(dst[d..]);
        return d + literal.Length;
    }

    private static int EmitCopy(Span<byte> dst, int d, int offset, int length)
    {
        // Element lengths are at most 64; keep the tail at 4 or more so it can use the short form.
        while (length >= 68)
        {
            d = EmitCopy2(dst, d, offset, 64);
            length -= 64;
        }
        if (length > 64)
        {
            d = EmitCopy2(dst, d, offset, 60);
            length -= 60;
        }
        if (length < 12 && offset < 2048)
        {
            dst[d++] = (byte)(1 | ((length - 4) << 2) | ((offset >> 8) << 5));
            dst[d++] = (byte)offset;
            return d;
        }
        return EmitCopy2(dst, d, offset, length);
    }

    private static int EmitCopy2(Span<byte> dst, int d, int offset, int length)
    {
        dst[d++] = (byte)(2 | ((length - 1) << 2));
        BinaryPrimitives.WriteUInt16LittleEndian(dst[d..], (ushort)offset);
        return d + 2;
    }
}
