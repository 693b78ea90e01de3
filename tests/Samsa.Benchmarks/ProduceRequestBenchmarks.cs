using BenchmarkDotNet.Attributes;
using Samsa.Kafka.Protocol.Compression;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Primitives;
using Samsa.Kafka.Protocol.Records;

namespace Samsa.Benchmarks;

/// <summary>
/// Decoding a Produce request (v9, flexible) whose single partition carries a ~1 MiB batch, then
/// validating that batch as the broker does. The records field is a slice of the request bytes, so
/// the cost should be the CRC pass, not a copy.
/// </summary>
[MemoryDiagnoser]
// The machine is shared; the minimum is the least disturbed measurement.
[MinColumn]
public class ProduceRequestBenchmarks
{
    private const short Version = 9;
    private byte[] _request = [];

    [GlobalSetup]
    public void Setup()
    {
        byte[] payload = BenchData.JsonLike(BenchData.OneMiB);
        using var builder = new RecordBatchBuilder(CompressionType.None);
        const int recordCount = 1000;
        int valueSize = BenchData.OneMiB / recordCount;
        for (int i = 0; i < recordCount; i++)
            builder.Append(1_700_000_000_000 + i, null, payload.AsSpan(i * valueSize, valueSize).ToArray());
        byte[] batch = builder.Build();
        var request = new ProduceRequest
        {
            Acks = -1,
            TimeoutMs = 30_000,
            TopicData =
            [
                new ProduceRequest.TopicProduceData
                {
                    Name = "bench-topic",
                    PartitionData = [new ProduceRequest.PartitionProduceData { Index = 0, Records = batch }],
                },
            ],
        };
        _request = new byte[request.Size(Version)];
        var writer = new KafkaWriter(_request);
        request.Write(ref writer, Version);
    }

    [Benchmark]
    public int DecodeOnly()
    {
        var reader = new KafkaReader(_request);
        ProduceRequest request = ProduceRequest.Read(ref reader, Version);
        return request.TopicData[0].PartitionData[0].Records!.Value.Length;
    }

    [Benchmark]
    public RecordBatchError DecodeAndValidate()
    {
        var reader = new KafkaReader(_request);
        ProduceRequest request = ProduceRequest.Read(ref reader, Version);
        RecordBatchError result = RecordBatchError.None;
        foreach (ProduceRequest.TopicProduceData topic in request.TopicData)
            foreach (ProduceRequest.PartitionProduceData partition in topic.PartitionData)
                foreach (RecordBatch batch in RecordBatch.Enumerate(partition.Records!.Value.Span))
                    result = batch.Validate();
        return result;
    }
}
