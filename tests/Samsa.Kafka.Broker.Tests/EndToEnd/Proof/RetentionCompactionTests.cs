using System.Diagnostics;
using Samsa.Kafka.Broker.Client;
using static Samsa.Kafka.Broker.Tests.EndToEnd.Proof.ProofClient;

namespace Samsa.Kafka.Broker.Tests.EndToEnd.Proof;

/// <summary>
/// Issue 3, retention and compaction as a client sees them. The broker's background tasks do the
/// work (log.retention.check.interval.ms for retention; the cleaner pass every 15 s, upstream's
/// log.cleaner.backoff.ms default) — the tests only produce, wait and read.
/// </summary>
public class RetentionCompactionTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    private static Task<LiveBroker> StartAsync() => LiveBroker.StartAsync(null, ("log.retention.check.interval.ms", "300"));

    private static async Task<T> EventuallyAsync<T>(Func<Task<T>> probe, Func<T, bool> done, string what, Func<T, string>? show = null)
    {
        var sw = Stopwatch.StartNew();
        T last = await probe();
        while (!done(last))
        {
            Assert.True(sw.Elapsed < Patience, $"{what} did not happen within {Patience}; last seen: {(show is null ? last?.ToString() : show(last))}");
            await Task.Delay(500);
            last = await probe();
        }
        return last;
    }

    [Fact]
    public async Task RetentionBytesDeletesOldSegmentsAndTheLogStartOffsetAdvances()
    {
        await using var live = await StartAsync();
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", live.Broker.BoundEndPoint.Port);
        await CreateTopicAsync(c, "by-size", ("segment.bytes", "2048"), ("retention.bytes", "6000"));
        var values = new List<string>();
        for (int b = 0; b < 40; b++)
        {
            var batch = Enumerable.Range(0, 5).Select(i => $"size-{b}-{i}-" + new string('x', 60)).ToList();
            var (error, _) = await ProduceAsync(c, "by-size", batch.Select(v => ((byte[]?)null, (byte[]?)Bytes(v))).ToList());
            Assert.Equal(0, error);
            values.AddRange(batch);
        }
        long start = await EventuallyAsync(() => ListOffsetAsync(c, "by-size", -2), s => s > 0, "retention.bytes deleting a segment");
        // Upstream keeps whole segments while the log stays above retention.bytes after deletion:
        // what is left is at most retention.bytes plus one segment.
        long end = await ListOffsetAsync(c, "by-size", -1);
        Assert.Equal(values.Count, end);
        Assert.True(start < end, "retention deleted the active segment's data");
        // Each record takes 70..130 bytes on disk here.
        Assert.InRange(end - start, 6000 / 130, (6000 + 2048) / 70);

        // A consumer sees the data from the new log start, and offsets below it are out of range.
        var (err, read) = await ReadAllAsync(c, "by-size", start);
        Assert.Equal(0, err);
        Assert.Equal(values.Skip((int)start), read.Select(r => Str(r.Value)!));
        var (below, _) = await ReadAllAsync(c, "by-size", 0);
        Assert.Equal(1, below); // OFFSET_OUT_OF_RANGE
    }

    [Fact]
    public async Task RetentionMsDeletesSegmentsOlderThanTheLimitButKeepsNewOnes()
    {
        await using var live = await StartAsync();
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", live.Broker.BoundEndPoint.Port);
        await CreateTopicAsync(c, "by-time", ("segment.bytes", "1024"), ("retention.ms", "600000"));
        long hourAgo = DateTimeOffset.UtcNow.AddHours(-1).ToUnixTimeMilliseconds();
        int old = 0;
        for (int b = 0; b < 20; b++)
        {
            // Records stamped an hour ago (CreateTime): older than retention.ms.
            var (error, _) = await ProduceAsync(c, "by-time", Enumerable.Range(0, 4).Select(i => ((byte[]?)null, (byte[]?)Bytes($"old-{b}-{i}-" + new string('o', 40)))).ToList(), hourAgo);
            Assert.Equal(0, error);
            old += 4;
        }
        var fresh = new List<string>();
        for (int b = 0; b < 20; b++)
        {
            var batch = Enumerable.Range(0, 4).Select(i => $"new-{b}-{i}-" + new string('n', 40)).ToList();
            var (error, _) = await ProduceAsync(c, "by-time", batch.Select(v => ((byte[]?)null, (byte[]?)Bytes(v))).ToList());
            Assert.Equal(0, error);
            fresh.AddRange(batch);
        }
        long start = await EventuallyAsync(() => ListOffsetAsync(c, "by-time", -2), s => s > 0, "retention.ms deleting old segments");
        // Give retention a few more passes: it must not eat into the fresh records.
        await Task.Delay(2000);
        start = await ListOffsetAsync(c, "by-time", -2);
        Assert.True(start <= old, $"log start {start} is past the {old} old records: fresh data was deleted");
        Assert.True(start >= old - 30, $"log start {start}: old segments ({old} old records) were not deleted");
        var (err, read) = await ReadAllAsync(c, "by-time", start);
        Assert.Equal(0, err);
        Assert.Equal(fresh, read.Select(r => Str(r.Value)!).Where(v => v.StartsWith("new-", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task CompactionKeepsTheLastValuePerKeyAndTombstonesGoAfterDeleteRetention()
    {
        await using var live = await StartAsync();
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", live.Broker.BoundEndPoint.Port);
        (string, string)[] compact =
        [
            ("cleanup.policy", "compact"), ("segment.bytes", "1024"), ("segment.ms", "100"),
            ("min.cleanable.dirty.ratio", "0.01"), ("min.compaction.lag.ms", "0"),
        ];
        // Same data into two topics: tombstones kept for a day in one, 1 s in the other.
        await CreateTopicAsync(c, "keep-tombstones", [.. compact, ("delete.retention.ms", "86400000")]);
        await CreateTopicAsync(c, "drop-tombstones", [.. compact, ("delete.retention.ms", "1000")]);

        var produced = new List<(string Key, string? Value)>();
        for (int round = 0; round < 10; round++)
            for (int k = 0; k < 20; k++)
                produced.Add(($"key-{k}", $"value-{k}-round-{round}"));
        for (int k = 0; k < 5; k++)
            produced.Add(($"key-{k}", null)); // tombstones: keys 0..4 deleted
        for (int i = 0; i < 60; i++)
            produced.Add(($"tail-{i}", $"tail-value-{i}")); // distinct keys: more segments after the tombstones
        foreach (var topic in new[] { "keep-tombstones", "drop-tombstones" })
            foreach (var chunk in produced.Chunk(5))
            {
                var (error, _) = await ProduceAsync(c, topic, chunk.Select(p => ((byte[]?)Bytes(p.Key), p.Value is null ? null : (byte[]?)Bytes(p.Value))).ToList());
                Assert.Equal(0, error);
            }
        // A late record rolls the segment holding the tail (segment.ms elapsed), so all of the
        // above is in inactive, cleanable segments.
        await Task.Delay(300);
        foreach (var topic in new[] { "keep-tombstones", "drop-tombstones" })
            Assert.Equal(0, (await ProduceAsync(c, topic, [(Bytes("last"), Bytes("last"))])).Error);
        produced.Add(("last", "last"));

        var lastPerKey = new Dictionary<string, string?>();
        foreach (var (k, v) in produced) lastPerKey[k] = v;

        async Task<List<(string Key, string? Value)>> ReadKeyed(string topic)
        {
            var (err, records) = await ReadAllAsync(c, topic);
            Assert.Equal(0, err);
            return records.Select(r => (Str(r.Key)!, Str(r.Value))).ToList();
        }
        static string Show(List<(string Key, string? Value)> l) => $"{l.Count} records, {l.Count(r => r.Value is null)} tombstones";

        // Compacted with tombstones kept: exactly one record per key, the last one written; deleted
        // keys show as their tombstone.
        var kept = await EventuallyAsync(() => ReadKeyed("keep-tombstones"), l => l.Count == lastPerKey.Count, "compaction of keep-tombstones", Show);
        Assert.Equal(lastPerKey.OrderBy(e => e.Key, StringComparer.Ordinal), kept.OrderBy(e => e.Key, StringComparer.Ordinal).Select(e => KeyValuePair.Create(e.Key, e.Value)));
        Assert.Equal(5, kept.Count(r => r.Value is null));

        // Past delete.retention.ms the tombstones are removed too: deleted keys are gone entirely.
        var expected = lastPerKey.Where(e => e.Value is not null).OrderBy(e => e.Key, StringComparer.Ordinal).ToList();
        var dropped = await EventuallyAsync(() => ReadKeyed("drop-tombstones"), l => l.Count == expected.Count, "compaction and tombstone removal of drop-tombstones", Show);
        Assert.Equal(expected, dropped.OrderBy(e => e.Key, StringComparer.Ordinal).Select(e => KeyValuePair.Create(e.Key, e.Value)));
        Assert.DoesNotContain(dropped, r => r.Key is "key-0" or "key-1" or "key-2" or "key-3" or "key-4");

        // The kept topic still holds its tombstones (delete.retention.ms not reached) after more cleaner passes.
        await Task.Delay(1000);
        Assert.Equal(5, (await ReadKeyed("keep-tombstones")).Count(r => r.Value is null));
    }
}
