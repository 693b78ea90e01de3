using Samsa.Kafka.Protocol.Compression;
using Samsa.Kafka.Protocol.Records;
using Xunit;
using Record = Samsa.Kafka.Protocol.Records.Record;

namespace Samsa.Kafka.Protocol.Tests.Records;

/// <summary>The one-call producer batch (RecordBatchBuilder.Build over key/value pairs) and the
/// plain reader (RecordBatch.ReadRecords) that the wire client, tests and tools use.</summary>
public class SimpleBatchTests
{
    [Fact]
    public void Build_writes_a_valid_uncompressed_batch_with_the_producer_fields()
    {
        byte[] batch = RecordBatchBuilder.Build(
            [("k1"u8.ToArray(), "v1"u8.ToArray()), (null, "v2"u8.ToArray()), ("k3"u8.ToArray(), null)],
            1_700_000_000_000, producerId: 42, producerEpoch: 3, baseSequence: 7);

        var view = new RecordBatch(batch);
        Assert.Equal(RecordBatchError.None, view.Validate());
        Assert.Equal(batch.Length, view.BatchLength + RecordBatch.LogOverhead);
        Assert.Equal(CompressionType.None, view.Compression);
        Assert.Equal(0, view.BaseOffset);
        Assert.Equal(2, view.LastOffsetDelta);
        Assert.Equal(3, view.RecordsCount);
        Assert.Equal(1_700_000_000_000, view.BaseTimestamp);
        Assert.Equal(1_700_000_000_000, view.MaxTimestamp);
        Assert.Equal(42, view.ProducerId);
        Assert.Equal(3, view.ProducerEpoch);
        Assert.Equal(7, view.BaseSequence);
        Assert.False(view.IsTransactional);
        Assert.False(view.IsControl);

        var offsets = new List<long>();
        foreach (Record r in view.GetRecords())
        {
            offsets.Add(r.Offset);
            Assert.Equal(0, r.TimestampDelta);
            Assert.Equal(0, r.HeaderCount);
        }
        Assert.Equal([0L, 1L, 2L], offsets);
    }

    [Fact]
    public void Build_defaults_to_a_non_idempotent_batch()
    {
        var view = new RecordBatch(RecordBatchBuilder.Build([(null, "v"u8.ToArray())], 5));
        Assert.Equal(RecordBatch.NoProducerId, view.ProducerId);
        Assert.Equal(RecordBatch.NoProducerEpoch, view.ProducerEpoch);
        Assert.Equal(RecordBatch.NoSequence, view.BaseSequence);
    }

    [Fact]
    public void ReadRecords_reads_keys_values_and_offsets_of_consecutive_batches_and_skips_a_cut_tail()
    {
        byte[] first = RecordBatchBuilder.Build([("a"u8.ToArray(), "1"u8.ToArray()), (null, "2"u8.ToArray())], 10);
        byte[] second = RecordBatchBuilder.Build([("b"u8.ToArray(), null)], 20);
        RecordBatch.SetBaseOffset(second, 2);
        byte[] cut = RecordBatchBuilder.Build([(null, "never"u8.ToArray())], 30);

        byte[] fetched = [.. first, .. second, .. cut.AsSpan(0, cut.Length - 3)];
        var records = RecordBatch.ReadRecords(fetched);

        Assert.Equal(3, records.Count);
        Assert.Equal((0L, "a", "1"), (records[0].Offset, Text(records[0].Key), Text(records[0].Value)));
        Assert.Equal((1L, null, "2"), (records[1].Offset, Text(records[1].Key), Text(records[1].Value)));
        Assert.Equal((2L, "b", null), (records[2].Offset, Text(records[2].Key), Text(records[2].Value)));
    }

    [Fact]
    public void ReadRecords_refuses_a_compressed_batch()
    {
        using var builder = new RecordBatchBuilder(CompressionType.Gzip);
        builder.Append(1, null, "v"u8.ToArray());
        byte[] gz = builder.Build();
        Assert.Throws<NotSupportedException>(() => RecordBatch.ReadRecords(gz));
    }

    private static string? Text(byte[]? b) => b is null ? null : System.Text.Encoding.UTF8.GetString(b);
}
