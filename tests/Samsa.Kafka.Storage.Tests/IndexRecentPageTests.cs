namespace Samsa.Kafka.Storage.Tests;

/// <summary>
/// The offset index keeps a copy of its last written page for tail lookups (issue #19). Lookups
/// must give the same answers whether an entry comes from that copy, the unwritten entries or the
/// file, also after truncations into and below the copied page and after reopening the file.
/// </summary>
public class IndexRecentPageTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("samsa-index-recent-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    // Entry i: offset 100 + 10 i, position 4096 (i + 1); 1,300 entries span two written pages of
    // 512 entries and 276 unwritten ones.
    private static long OffsetOf(int i) => 100 + 10L * i;
    private static int PositionOf(int i) => 4096 * (i + 1);

    private static void AssertLookups(OffsetIndex index, int entries)
    {
        Assert.Equal((index.BaseOffset, 0), index.Lookup(OffsetOf(0) - 1));
        for (int i = 0; i < entries; i++)
        {
            Assert.Equal((OffsetOf(i), PositionOf(i)), index.Lookup(OffsetOf(i)));
            Assert.Equal((OffsetOf(i), PositionOf(i)), index.Lookup(OffsetOf(i) + 5));
        }
    }

    [Fact]
    public void IndexRecentPage_lookups_match_the_file_through_appends_truncations_and_reopen()
    {
        string path = Path.Combine(_dir, "00000000000000000000.index");
        using (var index = new OffsetIndex(path, 0, 1 << 20))
        {
            for (int i = 0; i < 1300; i++) index.Append(OffsetOf(i), PositionOf(i));
            AssertLookups(index, 1300);

            // Into the last written page (entries 512..1023 were the last full write).
            index.TruncateTo(OffsetOf(900));
            Assert.Equal(900, index.Count);
            AssertLookups(index, 900);
            Assert.Equal((OffsetOf(899), PositionOf(899)), index.Lookup(OffsetOf(1200)));

            // New entries after the truncation replace the dropped ones, then a page write.
            for (int i = 900; i < 1600; i++) index.Append(OffsetOf(i), PositionOf(i) + 1);
            for (int i = 900; i < 1600; i++) Assert.Equal((OffsetOf(i), PositionOf(i) + 1), index.Lookup(OffsetOf(i)));
            Assert.Equal((OffsetOf(899), PositionOf(899)), index.Lookup(OffsetOf(899)));

            // Below the copied page, then appends again.
            index.TruncateTo(OffsetOf(300));
            Assert.Equal(300, index.Count);
            AssertLookups(index, 300);
            for (int i = 300; i < 1100; i++) index.Append(OffsetOf(i), PositionOf(i));
            AssertLookups(index, 1100);
            index.TrimToValidSize();
        }
        using (var reopened = new OffsetIndex(path, 0, 1 << 20))
        {
            Assert.Equal(1100, reopened.Count);
            AssertLookups(reopened, 1100);
        }
    }
}
