using BenchmarkDotNet.Attributes;
using Samsa.Kafka.Protocol.Compression;

namespace Samsa.Benchmarks;

/// <summary>
/// Compress / decompress JSON-like records per codec; MB/s = input size / mean time. Two sizes: a
/// typical producer batch (100 records of ~1 KiB = 100 KiB, a little above the Java producer's
/// 16 KiB batch.size but what linger-ed batches of 1 KiB records reach) and 1 MiB (a full
/// max.partition.fetch.bytes worth, where per-call setup no longer matters).
/// </summary>
[MemoryDiagnoser]
// The machine is shared; the minimum is the least disturbed measurement.
[MinColumn]
public class CompressionBenchmarks
{
    private byte[] _data = [];
    private byte[] _compressed = [];
    private PooledBuffer _output = null!;

    [Params(CompressionType.Gzip, CompressionType.Snappy, CompressionType.Lz4, CompressionType.Zstd)]
    public CompressionType Codec { get; set; }

    [Params(100 * 1024, BenchData.OneMiB)]
    public int Bytes { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _data = BenchData.JsonLike(Bytes);
        _compressed = CompressionCodecs.Compress(Codec, _data);
        _output = new PooledBuffer(2 * BenchData.OneMiB, 64 * BenchData.OneMiB);
        Console.WriteLine($"// {Codec}: {Bytes} B -> {_compressed.Length} bytes (ratio {(double)_data.Length / _compressed.Length:F2})");
    }

    [GlobalCleanup]
    public void Cleanup() => _output.Dispose();

    [Benchmark]
    public int Compress()
    {
        _output.Clear();
        CompressionCodecs.Compress(Codec, _data, _output);
        return _output.Length;
    }

    [Benchmark]
    public int Decompress()
    {
        _output.Clear();
        CompressionCodecs.Decompress(Codec, _compressed, _output);
        return _output.Length;
    }
}
