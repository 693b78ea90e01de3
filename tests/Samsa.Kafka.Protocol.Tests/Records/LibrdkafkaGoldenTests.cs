using System.Text;
using Samsa.Kafka.Protocol.Compression;
using Samsa.Kafka.Protocol.Records;
using Xunit;

namespace Samsa.Kafka.Protocol.Tests.Records;

/// <summary>Produce payloads captured from librdkafka via kcat (see Golden/README.md).</summary>
public class LibrdkafkaGoldenTests
{
    private static List<(string Key, string Value)> Input() =>
        File.ReadAllLines(TestData.GoldenPath("librdkafka-input.txt"))
            .Select(line => (line[..line.IndexOf(':')], line[(line.IndexOf(':') + 1)..])).ToList();

    private static void AssertMatchesInput(List<TestRecord> records)
    {
        List<(string Key, string Value)> input = Input();
        Assert.Equal(input.Count, records.Count);
        for (int i = 0; i < input.Count; i++)
        {
            Assert.Equal(input[i].Key, Encoding.UTF8.GetString(records[i].Key!));
            Assert.Equal(input[i].Value, Encoding.UTF8.GetString(records[i].Value!));
        }
    }

    [Theory]
    [InlineData("none", CompressionType.None)]
    [InlineData("gzip", CompressionType.Gzip)]
    [InlineData("snappy", CompressionType.Snappy)]
    [InlineData("lz4", CompressionType.Lz4)]
    [InlineData("zstd", CompressionType.Zstd)]
    public void Librdkafka_v2_batches_validate_and_read(string codec, CompressionType expected)
    {
        byte[] bytes = TestData.Golden($"librdkafka-magic2-{codec}.bin");
        var batch = new RecordBatch(bytes);
        Assert.Equal(RecordBatchError.None, batch.Validate());
        Assert.Equal(RecordBatchError.None, batch.ValidateFromClient());
        Assert.Equal(expected, batch.Compression);
        Assert.Equal(bytes.Length, batch.SizeInBytes);
        List<TestRecord> records = RecordModel.Read(bytes);
        AssertMatchesInput(records);
        long first = batch.BaseTimestamp, max = batch.MaxTimestamp;
        Assert.All(records, r => Assert.InRange(r.Timestamp, first, max));
    }

    [Theory]
    [InlineData("librdkafka-magic1-none.bin", 1)]
    [InlineData("librdkafka-magic1-gzip.bin", 1)]
    [InlineData("librdkafka-magic1-snappy.bin", 1)]
    [InlineData("librdkafka-magic1-lz4.bin", 1)]
    [InlineData("librdkafka-magic0-none.bin", 0)]
    [InlineData("librdkafka-magic0-gzip.bin", 0)]
    [InlineData("librdkafka-magic0-snappy.bin", 0)]
    public void Librdkafka_legacy_message_sets_convert(string file, byte magic)
    {
        byte[] bytes = TestData.Golden(file);
        Assert.Equal(magic, LegacyMessageSet.PeekMagic(bytes));
        using var output = new PooledBuffer();
        LegacyMessageSet.ConvertToRecordBatch(bytes, CompressionType.Snappy, output);
        List<TestRecord> records = RecordModel.Read(output.WrittenSpan);
        AssertMatchesInput(records);
        if (magic == 0) Assert.All(records, r => Assert.Equal(-1, r.Timestamp));
        else Assert.All(records, r => Assert.True(r.Timestamp > 1_500_000_000_000, $"timestamp {r.Timestamp}"));
    }
}
