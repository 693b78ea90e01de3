using System.Text;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Protocol.Records;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Compression;

namespace Samsa.Kafka.Broker.Tests.Handlers;

/// <summary>Upstream's LogValidator refuses a record without a key on a compacted topic
/// (INVALID_RECORD, naming the record in record_errors from Produce v8).</summary>
public class CompactedTopicProduceTests
{
    private static byte[] Keyed(params (string? Key, string Value)[] records) =>
        RecordBatchBuilder.Build(records.Select(r => (r.Key is null ? null : Encoding.UTF8.GetBytes(r.Key), (byte[]?)Encoding.UTF8.GetBytes(r.Value))).ToList(),
            DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());

    [Fact]
    public async Task KeylessRecordOnCompactedTopicIsInvalidRecordAndNothingIsAppended()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("c", 1, ("cleanup.policy", "compact"));
        var r = await f.Produce("c", 0, Keyed(("k1", "a"), (null, "b")), version: 9);
        Assert.Equal((short)ErrorCode.InvalidRecord, r.ErrorCode);
        Assert.Contains("without key", r.ErrorMessage);
        Assert.Equal(1, Assert.Single(r.RecordErrors).BatchIndex);
        Assert.Equal(0, f.Broker.Replicas.GetPartition("c", 0)!.Log.LogEndOffset);

        var ok = await f.Produce("c", 0, Keyed(("k1", "a"), ("k2", "b")));
        Assert.Equal((0, 0L), (ok.ErrorCode, ok.BaseOffset));
    }

    [Fact]
    public async Task KeylessRecordInsideCompressedBatchIsFoundToo()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("cz", 1, ("cleanup.policy", "compact,delete"));
        var builder = new Samsa.Kafka.Protocol.Records.RecordBatchBuilder(CompressionType.Lz4);
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        builder.Append(now, Encoding.UTF8.GetBytes("k"), Encoding.UTF8.GetBytes("v"));
        builder.Append(now, null, Encoding.UTF8.GetBytes("no key"));
        var r = await f.Produce("cz", 0, builder.Build());
        Assert.Equal((short)ErrorCode.InvalidRecord, r.ErrorCode);
    }

    [Fact]
    public async Task KeylessRecordOnDeleteTopicIsAccepted()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("d");
        var r = await f.Produce("d", 0, Keyed((null, "fine")));
        Assert.Equal(0, r.ErrorCode);
    }
}
