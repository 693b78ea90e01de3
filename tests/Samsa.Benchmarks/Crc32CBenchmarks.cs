using BenchmarkDotNet.Attributes;
using Samsa.Kafka.Protocol.Records;

namespace Samsa.Benchmarks;

/// <summary>CRC-32C over 1 MiB; throughput = 1 MiB / mean time.</summary>
[MemoryDiagnoser]
// The machine is shared; the minimum is the least disturbed measurement.
[MinColumn]
public class Crc32CBenchmarks
{
    private byte[] _data = [];

    [GlobalSetup]
    public void Setup()
    {
        _data = new byte[BenchData.OneMiB];
        new Random(42).NextBytes(_data);
    }

    [Benchmark]
    public uint Crc32C_1MiB() => Crc32C.Compute(_data);

    /// <summary>One produce batch (16 KiB), the size the broker validates per request.</summary>
    [Benchmark]
    public uint Crc32C_16KiB() => Crc32C.Compute(_data.AsSpan(0, 16 * 1024));

    [Benchmark]
    public uint Crc32Ieee_1MiB() => Crc32.Compute(_data);
}
