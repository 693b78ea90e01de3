using BenchmarkDotNet.Attributes;
using Samsa.Kafka.Protocol.Compression;
using Samsa.Kafka.Protocol.Records;

namespace Samsa.Benchmarks;

/// <summary>
/// Validate (header + CRC-32C) and iterate every record of a ~1 MiB batch. Allocated bytes must not
/// depend on RecordCount: records are views, not objects.
/// </summary>
[MemoryDiagnoser]
// The machine is shared; the minimum is the least disturbed measurement.
[MinColumn]
public class RecordBatchBenchmarks
{
    private byte[] _batch = [];

    [Params(100, 10_000)]
    public int RecordCount { get; set; }

    [Params(CompressionType.None, CompressionType.Lz4)]
    public CompressionType Codec { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        byte[] payload = BenchData.JsonLike(BenchData.OneMiB);
        int valueSize = BenchData.OneMiB / RecordCount;
        using var builder = new RecordBatchBuilder(Codec);
        for (int i = 0; i < RecordCount; i++)
            builder.Append(1_700_000_000_000 + i, System.Text.Encoding.UTF8.GetBytes("key-" + i),
                payload.AsSpan(i * valueSize, valueSize).ToArray(),
                i % 10 == 0 ? [new RecordHeaderData("trace", [1, 2, 3, 4])] : null);
        _batch = builder.Build();
    }

    [Benchmark]
    public long ValidateAndIterate()
    {
        var batch = new RecordBatch(_batch);
        if (batch.Validate() != RecordBatchError.None) throw new InvalidOperationException("invalid batch");
        long sum = 0;
        foreach (Record record in batch.GetRecords())
        {
            sum += record.Offset + record.ValueLength + record.KeyLength;
            foreach (RecordHeader header in record.Headers) sum += header.ValueLength;
        }
        return sum;
    }

    [Benchmark]
    public RecordBatchError ValidateOnly() => new RecordBatch(_batch).Validate();
}
