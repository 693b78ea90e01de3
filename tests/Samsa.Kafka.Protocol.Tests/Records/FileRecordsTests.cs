using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Primitives;
using Samsa.Kafka.Protocol.Records;
using Xunit;

namespace Samsa.Kafka.Protocol.Tests.Records;

/// <summary>FileRecords in a generated message: a splicing writer leaves the file range out and
/// notes where it goes; any other reader gets the file's bytes.</summary>
public class FileRecordsTests
{
    private sealed class Owner : IDisposable
    {
        public int Disposed;
        public void Dispose() => Disposed++;
    }

    private static FetchResponse Response(ReadOnlyMemory<byte> first, ReadOnlyMemory<byte> second) => new()
    {
        Responses =
        [
            new FetchResponse.FetchableTopicResponse
            {
                Topic = "t", TopicId = new Guid("8a5f0c3e-2d4b-4e61-9f0a-3c2b1d4e5f60"),
                Partitions =
                [
                    new FetchResponse.PartitionData { PartitionIndex = 0, HighWatermark = 9, Records = first },
                    new FetchResponse.PartitionData { PartitionIndex = 1, HighWatermark = 7, Records = second },
                ],
            },
        ],
    };

    [Theory]
    [InlineData((short)4)]
    [InlineData((short)11)]   // last non-flexible version: int32 length prefixes
    [InlineData((short)12)]   // first flexible version: unsigned varint length + 1
    [InlineData((short)16)]
    public async Task Spliced_output_plus_file_ranges_equals_the_copied_encoding(short version)
    {
        string path = Path.GetTempFileName();
        var content = new byte[70_000];
        new Random(version).NextBytes(content);
        await File.WriteAllBytesAsync(path, content);
        try
        {
            await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.Asynchronous);
            var owner = new Owner();
            // 200 bytes: a one-byte varint prefix; 65000: a three-byte one.
            using var small = new FileRecords(file, 100, 200, owner);
            using var large = new FileRecords(file, 3000, 65_000, null);
            var response = Response(small.Memory, large.Memory);

            var spliced = new List<SplicedRecords>();
            int inline = response.Size(version) - 200 - 65_000;
            var buffer = new byte[inline];
            var writer = new KafkaWriter(buffer, spliced);
            response.Write(ref writer, version);
            Assert.Equal(inline, writer.Position);
            Assert.Equal(2, spliced.Count);
            Assert.False(small.IsMaterialized || large.IsMaterialized);

            // Reassemble: inline bytes with each file range put where the writer noted.
            var assembled = new List<byte>();
            int from = 0;
            foreach (var s in spliced)
            {
                assembled.AddRange(buffer[from..s.Position]);
                assembled.AddRange(content.AsSpan((int)s.Records.Position + s.Start, s.Length).ToArray());
                from = s.Position;
            }
            assembled.AddRange(buffer[from..]);

            // The copying encoding of the same message with the bytes in memory.
            var copied = Response(content.AsMemory(100, 200), content.AsMemory(3000, 65_000));
            var expected = new byte[copied.Size(version)];
            var plain = new KafkaWriter(expected);
            copied.Write(ref plain, version);
            Assert.Equal(expected, assembled.ToArray());

            // A plain writer reads the file: the same bytes again.
            var viaPlain = new byte[response.Size(version)];
            var w = new KafkaWriter(viaPlain);
            response.Write(ref w, version);
            Assert.Equal(expected, viaPlain);
            Assert.True(small.IsMaterialized);

            ((IDisposable)small).Dispose();
            ((IDisposable)small).Dispose();
            Assert.Equal(1, owner.Disposed);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Reading_a_range_the_file_no_longer_has_fails_instead_of_returning_short_data()
    {
        string path = Path.GetTempFileName();
        await File.WriteAllBytesAsync(path, new byte[100]);
        try
        {
            await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.Asynchronous);
            using var records = new FileRecords(file, 50, 80, null);
            Assert.Throws<IOException>(() => records.Memory.Span.ToArray());
        }
        finally
        {
            File.Delete(path);
        }
    }
}
