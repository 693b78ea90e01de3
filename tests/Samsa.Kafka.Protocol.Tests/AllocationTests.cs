using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Primitives;
using Xunit;

namespace Samsa.Kafka.Protocol.Tests;

/// <summary>
/// The produce path must not copy record batches: decoding a Produce request allocates its
/// small object graph only, whatever the size of the records it carries.
/// </summary>
public class AllocationTests
{
    private static byte[] EncodeProduce(int recordBytes, short version)
    {
        var request = new ProduceRequest
        {
            Acks = -1,
            TimeoutMs = 30000,
            TopicData =
            [
                new ProduceRequest.TopicProduceData
                {
                    Name = "orders",
                    PartitionData =
                    [
                        new ProduceRequest.PartitionProduceData { Index = 0, Records = new byte[recordBytes] },
                        new ProduceRequest.PartitionProduceData { Index = 1, Records = new byte[recordBytes] },
                    ],
                },
            ],
        };
        var buffer = new byte[request.Size(version)];
        var writer = new KafkaWriter(buffer);
        request.Write(ref writer, version);
        return buffer;
    }

    private static long AllocatedByRead(byte[] frame, short version)
    {
        var reader = new KafkaReader(frame);
        ProduceRequest.Read(ref reader, version); // warm up (JIT, statics)
        long before = GC.GetAllocatedBytesForCurrentThread();
        reader = new KafkaReader(frame);
        var request = ProduceRequest.Read(ref reader, version);
        long after = GC.GetAllocatedBytesForCurrentThread();
        Assert.Equal(2, request.TopicData[0].PartitionData.Count);
        return after - before;
    }

    [Theory]
    [InlineData((short)3)]
    [InlineData((short)9)]
    public void ProduceRecordsAreNotCopied(short version)
    {
        long small = AllocatedByRead(EncodeProduce(16, version), version);
        long large = AllocatedByRead(EncodeProduce(1 << 20, version), version);
        Assert.True(large < 2048, $"decoding a 2 MiB produce request allocated {large} bytes");
        Assert.Equal(small, large);
    }
}

public class ReadAllocationTests
{
    private static long Allocated(Action action)
    {
        action(); // warm up
        long before = GC.GetAllocatedBytesForCurrentThread();
        action();
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    [Fact]
    public void ReadAllocatesNoThrowAwayDefaults()
    {
        // v3 with no entries and no tagged fields: Read must build exactly what the public
        // constructor builds (the object and its three lists), not replace default lists.
        var bytes = KafkaMessage.Encode(new Messages.ApiVersionsResponse(), 3);
        long constructed = Allocated(() => GC.KeepAlive(new Messages.ApiVersionsResponse()));
        long read = Allocated(() => GC.KeepAlive(KafkaMessage.Decode<Messages.ApiVersionsResponse>(bytes, 3)));
        Assert.Equal(constructed, read);
    }
}
