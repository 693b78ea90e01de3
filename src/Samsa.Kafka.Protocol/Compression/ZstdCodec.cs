using ZstdSharp.Unsafe;
using Samsa.Kafka.Protocol.Primitives;

namespace Samsa.Kafka.Protocol.Compression;

/// <summary>
/// Zstandard (KIP-110, codec 4, RecordBatch v2 only) through ZstdSharp.Port, a managed port of the
/// reference libzstd (no native library on the broker's machine).
/// Decoding uses the streaming API so that input holding several concatenated frames, skippable frames
/// and frames that do not record their content size (as streaming producers write them) all decode;
/// output goes into a <see cref="PooledBuffer"/> whose limit bounds it, and the window the decoder may
/// allocate is capped from that limit (see <see cref="WindowLogMax"/>), so a forged frame header
/// cannot make it reserve more.
/// </summary>
public static unsafe class ZstdCodec
{
    /// <summary>Kafka's default compression.zstd.level (KIP-390).</summary>
    public const int DefaultLevel = 3;


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

    private sealed class DCtxHandle : System.Runtime.InteropServices.SafeHandle
    {
        public DCtxHandle() : base(0, true) => SetHandle((nint)Methods.ZSTD_createDCtx());
        public override bool IsInvalid => handle == 0;
        protected override bool ReleaseHandle()
        {
            // The port allocates contexts with the managed heap's native allocator; free it the same way.
            Methods.ZSTD_freeDCtx((ZSTD_DCtx_s*)handle);
            return true;
        }
        public ZSTD_DCtx_s* Value => (ZSTD_DCtx_s*)handle;
    }

    /// <summary>A compressor per thread, for the same reason (it keeps its work tables between calls).</summary>
    [ThreadStatic]
    private static ZstdSharp.Compressor? t_compressor;

    public static void Decompress(ReadOnlySpan<byte> input, PooledBuffer output)
    {
        if (input.IsEmpty) throw Corrupt("zstd input is empty");
        DCtxHandle ctx = t_dctx ??= new DCtxHandle();
        if (ctx.IsInvalid) throw new InvalidOperationException("zstd could not create a decompression context");
        ZSTD_DCtx_s* dctx = ctx.Value;
        Methods.ZSTD_DCtx_reset(dctx, ZSTD_ResetDirective.ZSTD_reset_session_only);
        nuint set = Methods.ZSTD_DCtx_setParameter(dctx, ZSTD_dParameter.ZSTD_d_windowLogMax, WindowLogMax(output.RemainingAllowance));
        if (IsError(set))
            throw new InvalidOperationException("zstd rejected windowLogMax: " + ErrorName(set));
        fixed (byte* src = input)
        {
            var inBuffer = new ZSTD_inBuffer_s { src = src, size = (nuint)input.Length, pos = 0 };
            while (true)
            {
                // One byte beyond the allowance lets an over-long result show up as an Advance failure
                // instead of silently stopping at the limit.
                int want = (int)Math.Min(128 * 1024, (long)output.RemainingAllowance + 1);
                Span<byte> span = output.GetSpan(want)[..want];
                nuint ret;
                nuint produced;
                nuint consumedBefore = inBuffer.pos;
                fixed (byte* dst = span)
                {
                    var outBuffer = new ZSTD_outBuffer_s { dst = dst, size = (nuint)span.Length, pos = 0 };
                    ret = Methods.ZSTD_decompressStream(dctx, &outBuffer, &inBuffer);
                    produced = outBuffer.pos;
                }
                if (IsError(ret))
                {
                    Methods.ZSTD_DCtx_reset(dctx, ZSTD_ResetDirective.ZSTD_reset_session_only);
                    throw Corrupt("zstd data is corrupt: " + ErrorName(ret));
                }
                output.Advance((int)produced);
                bool inputDone = inBuffer.pos == inBuffer.size;
                bool outputFull = produced == (nuint)span.Length;
                // ret == 0: the current frame is complete and flushed; with no input left we are done
                // (calling again would start looking for another frame header).
                if (inputDone && ret == 0) return;
                if (inputDone && !outputFull)
                {
                    // Everything flushed, yet the frame wants more input that does not exist.
                    Methods.ZSTD_DCtx_reset(dctx, ZSTD_ResetDirective.ZSTD_reset_session_only);
                    throw Corrupt("zstd frame is truncated");
                }
                if (produced == 0 && inBuffer.pos == consumedBefore)
                {
                    Methods.ZSTD_DCtx_reset(dctx, ZSTD_ResetDirective.ZSTD_reset_session_only);
                    throw Corrupt("zstd decoder made no progress");
                }
            }
        }
    }

    public static void Compress(ReadOnlySpan<byte> input, PooledBuffer output, int level = DefaultLevel)
    {
        int bound = ZstdSharp.Compressor.GetCompressBound(input.Length);
        Span<byte> target = output.GetSpan(bound);
        var compressor = t_compressor ??= new ZstdSharp.Compressor(level);
        if (compressor.Level != level) compressor.Level = level;
        int written;
        try
        {
            written = compressor.Wrap(input, target);
        }
        catch (ZstdSharp.ZstdException e)
        {
            throw new InvalidOperationException("zstd failed to compress: " + e.Message, e);
        }
        output.Advance(written);
    }

    private static bool IsError(nuint code) => Methods.ZSTD_isError(code);

    private static string ErrorName(nuint code) => Methods.ZSTD_getErrorName(code);

    private static KafkaProtocolException Corrupt(string message) => new(ProtocolErrorKind.Compression, message);
}
