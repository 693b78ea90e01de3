using BenchmarkDotNet.Attributes;
using Samsa.Kafka.Protocol.Compression;

namespace Samsa.Benchmarks;

/// <summary>Compress / decompress 1 MiB of JSON-like records per codec; MB/s = 1 MiB / mean time.</summary>
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

    [GlobalSetup]
    public void Setup()
    {
        _data = BenchData.JsonLike(BenchData.OneMiB);
        _compressed = CompressionCodecs.Compress(Codec, _data);
        _output = new PooledBuffer(2 * BenchData.OneMiB, 64 * BenchData.OneMiB);
        Console.WriteLine($"// {Codec}: 1 MiB -> {_compressed.Length} bytes (ratio {(double)_data.Length / _compressed.Length:F2})");
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
