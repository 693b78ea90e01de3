using static Samsa.Kafka.Storage.Tests.Batches;

namespace Samsa.Kafka.Storage.Tests;

/// <summary>
/// A segment remembers the headers of its last appended batches so that fetches just behind the
/// log end find their batch without reading the file (issue #19). The answers must be those of a
/// segment that reads every header from the file (a reopened one), also after a truncation that
/// drops remembered batches and an append that puts other batches where they were.
/// </summary>
public class SegmentTailTests
{
    private const long T0 = 1_700_000_000_000;

    private static PartitionLog Open(TempDir dir) =>
        PartitionLog.Open(dir.Sub("tail-0"), new TopicPartition("tail", 0), new LogConfig(), 0, 0, 0, false, null);

    private static string[] Vals(int count, int size, char c) => Enumerable.Range(0, count).Select(_ => new string(c, size)).ToArray();

    [Fact]
    public void Tail_batches_found_in_memory_match_the_file_after_truncation_and_reappend()
    {
        using var dir = new TempDir();
        var answers = new List<LogSegment.BatchInfo?>();
        using (PartitionLog log = Open(dir))
        {
            log.AppendAsLeader(Values(T0, Vals(10, 100, 'a')), 0);   // offsets 0-9
            log.AppendAsLeader(Values(T0, Vals(10, 100, 'b')), 0);   // 10-19
            log.AppendAsLeader(Values(T0, Vals(10, 100, 'c')), 0);   // 20-29
            var segment = log.ActiveSegment;
            Assert.Equal(20, segment.FindBatchContaining(25)!.Value.BaseOffset);
            Assert.Equal(10, segment.FindBatchContaining(10)!.Value.BaseOffset);

            // Drop 10-29, then one batch of offsets 10-14 larger than the two dropped together:
            // the dropped batch 20-29 lies wholly inside the new file size, at a position that is
            // now the middle of the new batch, and must not be answered for offset 25.
            log.TruncateTo(10);
            log.AppendAsLeader(Values(T0, Vals(5, 1000, 'd')), 0);   // 10-14
            Assert.Null(segment.FindBatchContaining(25));
            Assert.Null(segment.FindBatchContaining(15));
            for (long offset = 0; offset < 15; offset++) answers.Add(segment.FindBatchContaining(offset));
            Assert.Equal(10, answers[12]!.Value.BaseOffset);
            Assert.Equal(14, answers[12]!.Value.LastOffset);
            Assert.Equal(0, answers[3]!.Value.BaseOffset);
        }
        using (PartitionLog reopened = Open(dir))
        {
            var segment = reopened.ActiveSegment;
            for (long offset = 0; offset < 15; offset++) Assert.Equal(answers[(int)offset], segment.FindBatchContaining(offset));
            Assert.Null(segment.FindBatchContaining(25));
        }
    }
}
