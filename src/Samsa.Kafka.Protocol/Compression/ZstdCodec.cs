using System.Runtime.InteropServices;
using Samsa.Kafka.Protocol.Primitives;

namespace Samsa.Kafka.Protocol.Compression;

/// <summary>
/// Zstandard (KIP-110, codec 4, RecordBatch v2 only) through the system libzstd.
/// Decoding uses the streaming API so that input holding several concatenated frames, skippable frames
/// and frames that do not record their content size (as streaming producers write them) all decode;
/// output goes into a <see cref="PooledBuffer"/> whose limit bounds it, and the window libzstd may
/// allocate is capped from that limit (see <see cref="WindowLogMax"/>), so a forged frame header
/// cannot make it reserve more.
/// </summary>
public static unsafe partial class ZstdCodec
{
    private const string LibZstd = "libzstd.so.1";

    /// <summary>Kafka's default compression.zstd.level (KIP-390).</summary>
    public const int DefaultLevel = 3;

    [StructLayout(LayoutKind.Sequential)]
    private struct InBuffer
    {
        public byte* Src;
        public nuint Size;
        public nuint Pos;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct OutBuffer
    {
        public byte* Dst;
        public nuint Size;
        public nuint Pos;
    }

    [LibraryImport(LibZstd)]
    private static partial nint ZSTD_createDCtx();

    [LibraryImport(LibZstd)]
    private static partial nuint ZSTD_freeDCtx(nint dctx);

    [LibraryImport(LibZstd)]
    private static partial nuint ZSTD_DCtx_reset(nint dctx, int directive);

    [LibraryImport(LibZstd)]
    private static partial nuint ZSTD_DCtx_setParameter(nint dctx, int parameter, int value);

    [LibraryImport(LibZstd)]
    private static partial nuint ZSTD_decompressStream(nint dctx, OutBuffer* output, InBuffer* input);

    [LibraryImport(LibZstd)]
    private static partial uint ZSTD_isError(nuint code);

    [LibraryImport(LibZstd)]
    private static partial nint ZSTD_getErrorName(nuint code);

    [LibraryImport(LibZstd)]
    private static partial nuint ZSTD_compress(byte* dst, nuint dstCapacity, byte* src, nuint srcSize, int level);

    [LibraryImport(LibZstd)]
    private static partial nuint ZSTD_compressBound(nuint srcSize);

    private const int ResetSessionOnly = 1;
    private const int DParamWindowLogMax = 100; // ZSTD_d_windowLogMax

    /// <summary>
    /// The largest window we let a frame demand: enough for the output limit, but never below 2^23
    /// (8 MiB: what zstd levels up to 19 use, so normal producers always pass) nor above 2^27
    /// (libzstd's own default cap). A frame asking for more is refused before libzstd allocates it.
    /// </summary>
    private static int WindowLogMax(int maxOutput)
    {
        int log = 64 - System.Numerics.BitOperations.LeadingZeroCount((ulong)Math.Max(1, maxOutput - 1));
        return Math.Clamp(log, 23, 27);
    }

    /// <summary>A decompression context per thread: creating one costs more than a small batch's decode.</summary>
    [ThreadStatic]
    private static DCtxHandle? t_dctx;

    private sealed class DCtxHandle : SafeHandle
    {
        public DCtxHandle() : base(0, true) => SetHandle(ZSTD_createDCtx());
        public override bool IsInvalid => handle == 0;
        protected override bool ReleaseHandle()
        {
            ZSTD_freeDCtx(handle);
            return true;
        }
        public nint Value => handle;
    }

    public static void Decompress(ReadOnlySpan<byte> input, PooledBuffer output)
    {
        if (input.IsEmpty) throw Corrupt("zstd input is empty");
        DCtxHandle ctx = t_dctx ??= new DCtxHandle();
        if (ctx.IsInvalid) throw new InvalidOperationException("libzstd could not create a decompression context");
        nint dctx = ctx.Value;
        ZSTD_DCtx_reset(dctx, ResetSessionOnly);
        nuint set = ZSTD_DCtx_setParameter(dctx, DParamWindowLogMax, WindowLogMax(output.RemainingAllowance));
        if (ZSTD_isError(set) != 0)
            throw new InvalidOperationException("libzstd rejected windowLogMax: " + Marshal.PtrToStringAnsi(ZSTD_getErrorName(set)));
        fixed (byte* src = input)
        {
            var inBuffer = new InBuffer { Src = src, Size = (nuint)input.Length, Pos = 0 };
            while (true)
            {
                // One byte beyond the allowance lets an over-long result show up as an Advance failure
                // instead of silently stopping at the limit.
                int want = (int)Math.Min(128 * 1024, (long)output.RemainingAllowance + 1);
                Span<byte> span = output.GetSpan(want)[..want];
                nuint ret;
                nuint produced;
                nuint consumedBefore = inBuffer.Pos;
                fixed (byte* dst = span)
                {
                    var outBuffer = new OutBuffer { Dst = dst, Size = (nuint)span.Length, Pos = 0 };
                    ret = ZSTD_decompressStream(dctx, &outBuffer, &inBuffer);
                    produced = outBuffer.Pos;
                }
                if (ZSTD_isError(ret) != 0)
                {
                    ZSTD_DCtx_reset(dctx, ResetSessionOnly);
                    throw Corrupt("zstd data is corrupt: " + Marshal.PtrToStringAnsi(ZSTD_getErrorName(ret)));
                }
                output.Advance((int)produced);
                bool inputDone = inBuffer.Pos == inBuffer.Size;
                bool outputFull = produced == (nuint)span.Length;
                // ret == 0: the current frame is complete and flushed; with no input left we are done
                // (calling again would start looking for another frame header).
                if (inputDone && ret == 0) return;
                if (inputDone && !outputFull)
                {
                    // Everything flushed, yet the frame wants more input that does not exist.
                    ZSTD_DCtx_reset(dctx, ResetSessionOnly);
                    throw Corrupt("zstd frame is truncated");
                }
                if (produced == 0 && inBuffer.Pos == consumedBefore)
                {
                    ZSTD_DCtx_reset(dctx, ResetSessionOnly);
                    throw Corrupt("zstd decoder made no progress");
                }
            }
        }
    }

    public static void Compress(ReadOnlySpan<byte> input, PooledBuffer output, int level = DefaultLevel)
    {
        nuint bound = ZSTD_compressBound((nuint)input.Length);
        if (bound > int.MaxValue) throw new ArgumentException("input too large for one zstd frame", nameof(input));
        Span<byte> target = output.GetSpan((int)bound);
        nuint written;
        fixed (byte* src = input)
        fixed (byte* dst = target)
            written = ZSTD_compress(dst, (nuint)target.Length, src, (nuint)input.Length, level);
        if (ZSTD_isError(written) != 0)
            throw new InvalidOperationException("libzstd failed to compress: " + Marshal.PtrToStringAnsi(ZSTD_getErrorName(written)));
        output.Advance((int)written);
    }

    private static KafkaProtocolException Corrupt(string message) => new(ProtocolErrorKind.Compression, message);
}
