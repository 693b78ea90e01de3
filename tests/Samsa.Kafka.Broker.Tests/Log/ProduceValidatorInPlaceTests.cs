using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Protocol.Compression;
using Samsa.Kafka.Protocol.Records;

namespace Samsa.Kafka.Broker.Tests.Log;

/// <summary>
/// The produce path stamps a request's records where they lie (ValidateInPlace) unless the topic's
/// compression.type makes it rebuild them; Validate always works on a copy.
/// </summary>
public class ProduceValidatorInPlaceTests
{
    private static readonly long Now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    private static LogConfig Topic(params (string K, string V)[] overrides) =>
        new BrokerConfig(new Dictionary<string, string>()).LogConfigFor(overrides.ToDictionary(o => o.K, o => o.V));

    private static byte[] Batch(CompressionType compression = CompressionType.None)
    {
        using var builder = new RecordBatchBuilder(compression);
        for (int i = 0; i < 5; i++) builder.Append(Now, null, new byte[100]);
        return builder.Build();
    }

    [Fact]
    public void In_place_validation_stamps_the_callers_bytes_and_hands_them_on_without_a_copy()
    {
        byte[] request = Batch();
        var result = ProduceValidator.ValidateInPlace(request, Topic(), nextOffset: 42, leaderEpoch: 7, Now, produceVersion: 9);
        Assert.Equal(0, result.ErrorCode);
        Assert.True(MemoryMarshal.TryGetArray(result.Batches, out var segment));
        Assert.Same(request, segment.Array);
        Assert.Equal(42, BinaryPrimitives.ReadInt64BigEndian(request));
        Assert.Equal(7, BinaryPrimitives.ReadInt32BigEndian(request.AsSpan(RecordBatch.PartitionLeaderEpochOffset)));
        // Offsets and epoch lie outside the CRC's range: the stamped batch is still valid.
        var stamped = new RecordBatch(request);
        Assert.Equal(stamped.Crc, stamped.ComputeCrc());
        Assert.Equal(4, result.LastOffsetDelta);
    }

    [Fact]
    public void Copying_validation_leaves_the_input_as_it_was()
    {
        byte[] request = Batch();
        byte[] before = (byte[])request.Clone();
        var result = ProduceValidator.Validate(request, Topic(), nextOffset: 42, leaderEpoch: 7, Now, produceVersion: 9);
        Assert.Equal(0, result.ErrorCode);
        Assert.Equal(before, request);
        Assert.Equal(42, BinaryPrimitives.ReadInt64BigEndian(result.Batches.Span));
    }

    [Fact]
    public void A_topic_that_recompresses_builds_new_batches_and_leaves_the_request_alone()
    {
        byte[] request = Batch();
        byte[] before = (byte[])request.Clone();
        var result = ProduceValidator.ValidateInPlace(request, Topic(("compression.type", "gzip")), nextOffset: 3, leaderEpoch: 1, Now, produceVersion: 9);
        Assert.Equal(0, result.ErrorCode);
        Assert.Equal(before, request);
        var batch = new RecordBatch(result.Batches.Span);
        Assert.Equal(CompressionType.Gzip, batch.Compression);
        Assert.Equal(3, batch.BaseOffset);
        Assert.Equal(batch.Crc, batch.ComputeCrc());
    }

    [Fact]
    public void LogAppendTime_is_stamped_in_place_with_a_new_crc()
    {
        byte[] request = Batch(CompressionType.Lz4);
        var result = ProduceValidator.ValidateInPlace(request, Topic(("message.timestamp.type", "LogAppendTime")), 0, 0, Now + 5, produceVersion: 9);
        Assert.Equal(0, result.ErrorCode);
        var batch = new RecordBatch(request);
        Assert.Equal(TimestampType.LogAppendTime, batch.TimestampType);
        Assert.Equal(Now + 5, batch.MaxTimestamp);
        Assert.Equal(batch.Crc, batch.ComputeCrc());
    }
}
