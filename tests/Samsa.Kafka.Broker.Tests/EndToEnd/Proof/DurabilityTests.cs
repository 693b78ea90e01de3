using System.Diagnostics;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Protocol.Messages;
using static Samsa.Kafka.Broker.Tests.EndToEnd.Proof.ProofClient;
using Samsa.Kafka.Protocol.Records;

namespace Samsa.Kafka.Broker.Tests.EndToEnd.Proof;

/// <summary>
/// Issue 3, durability: every record the broker acknowledged with acks=all is still there, once, at
/// the offset it was acknowledged at, after the broker process is killed with SIGKILL and restarted
/// on the same log.dirs (no clean-shutdown marker, so the broker must recover its segments).
/// </summary>
public class DurabilityTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const string Topic = "durable";
    private const int Total = 100_000;
    private const int PerBatch = 100;
    private const int Window = 16; // produce requests in flight on the connection

    [Fact]
    public async Task AcknowledgedRecordsSurviveKillDashNineAtTheSameOffsetsExactlyOnce()
    {
        var root = Path.Combine(Path.GetTempPath(), "samsa-durable-" + Guid.NewGuid().ToString("N"));
        var config = BrokerProcess.WriteConfig(root, Path.Combine(root, "logs"));
        var acked = new Dictionary<long, string>(); // offset → value
        try
        {
            int next = 0;
            // Run 1: kill -9 in the middle of the stream, with requests still in flight.
            await using (var broker = await BrokerProcess.StartAsync(config))
            {
                await using (var c = await KafkaWireClient.ConnectAsync("127.0.0.1", broker.Port))
                    await CreateTopicAsync(c, Topic, ("segment.bytes", (1 << 20).ToString()));
                next = await ProduceUntilAsync(broker, next, Total, acked, killAfterAcked: Total / 2);
            }
            Assert.True(acked.Count >= Total / 2, $"only {acked.Count} records acknowledged before the kill");
            Assert.True(next < Total, "the first run should have been cut short by the kill");
            output.WriteLine($"run 1: {acked.Count} acknowledged, {next} sent when killed");

            // Run 2: recovery, then the rest of the stream; kill -9 right after the last ack.
            await using (var broker = await BrokerProcess.StartAsync(config))
            {
                int inLog = await AssertAllAckedPresentAsync(broker.Port, acked);
                output.WriteLine($"run 2: {inLog} records in the log after recovery");
                next = await ProduceUntilAsync(broker, next, Total, acked, killAfterAcked: null);
                Assert.Equal(Total, next);
                broker.KillHard();
            }

            // Run 3: everything acknowledged in both runs is there, once, at its offset.
            await using (var broker = await BrokerProcess.StartAsync(config))
            {
                // All but the requests lost in flight at the first kill were acknowledged.
                Assert.True(acked.Count >= Total - Window * PerBatch, $"{acked.Count} acknowledged");
                int inLog = await AssertAllAckedPresentAsync(broker.Port, acked);
                output.WriteLine($"run 3: {acked.Count} acknowledged in total, {inLog} records in the log");
            }
        }
        finally
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>Produces values v-{next}.. in pipelined acks=all requests, recording each
    /// acknowledged (offset, value); returns the next value index not yet sent. With
    /// <paramref name="killAfterAcked"/>, SIGKILLs the broker once that many records are
    /// acknowledged in total and stops at the first response that does not arrive.</summary>
    private static async Task<int> ProduceUntilAsync(BrokerProcess broker, int next, int total, Dictionary<long, string> acked, int? killAfterAcked)
    {
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", broker.Port);
        var inFlight = new Queue<(int Correlation, int First, int Count)>();
        int correlation = 1000;
        bool killed = false;
        var sw = Stopwatch.StartNew();
        while (next < total || inFlight.Count > 0)
        {
            while (!killed && next < total && inFlight.Count < Window)
            {
                int count = Math.Min(PerBatch, total - next);
                var records = Enumerable.Range(next, count).Select(i => ((byte[]?)null, (byte[]?)Bytes($"v-{i}"))).ToList();
                var request = ProduceRequest(Topic, RecordBatchBuilder.Build(records, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()));
                int corr = ++correlation;
                await c.SendRawAsync(c.Encode(request, 9, corr));
                inFlight.Enqueue((corr, next, count));
                next += count;
            }
            if (killAfterAcked is int k && !killed && acked.Count >= k)
            {
                // Straight after a fresh window of requests went out: some are being written,
                // some acknowledged, some not yet read by the broker when it dies.
                broker.KillHard();
                killed = true;
            }
            if (inFlight.Count == 0) break;
            byte[]? frame;
            try { frame = await c.ReadFrameAsync(); }
            catch (IOException) when (killed) { frame = null; }
            if (frame is null)
            {
                Assert.True(killed, "the broker closed the connection while producing:\n" + broker.Output);
                // Requests in flight at the kill may or may not be in the log; their values are
                // not sent again, so every value stays unique in the log.
                return next;
            }
            var (corrId, first, n) = inFlight.Dequeue();
            var response = KafkaWireClient.Decode<ProduceResponse>(frame, (short)ApiKey.Produce, 9, corrId);
            var p = response.Responses[0].PartitionResponses[0];
            Assert.True(p.ErrorCode == 0, $"produce error {p.ErrorCode} for records {first}..{first + n - 1}");
            for (int i = 0; i < n; i++)
                Assert.True(acked.TryAdd(p.BaseOffset + i, $"v-{first + i}"), $"offset {p.BaseOffset + i} acknowledged twice");
            Assert.True(sw.Elapsed < TimeSpan.FromMinutes(8), $"producing is too slow: {acked.Count} acknowledged in {sw.Elapsed}");
        }
        return next;
    }

    private static async Task<int> AssertAllAckedPresentAsync(int port, Dictionary<long, string> acked)
    {
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", port);
        var (error, records) = await ReadAllAsync(c, Topic);
        Assert.Equal(0, error);
        var byOffset = new Dictionary<long, string>();
        var seenValues = new HashSet<string>();
        foreach (var (offset, _, value) in records)
        {
            Assert.True(byOffset.TryAdd(offset, Str(value)!), $"offset {offset} read twice");
            Assert.True(seenValues.Add(Str(value)!), $"value {Str(value)} is in the log more than once (second at offset {offset})");
        }
        int missing = 0, moved = 0;
        string? example = null;
        foreach (var (offset, value) in acked)
        {
            if (!byOffset.TryGetValue(offset, out var got)) { missing++; example ??= $"offset {offset} ({value}) missing"; }
            else if (got != value) { moved++; example ??= $"offset {offset}: acknowledged {value}, read {got}"; }
        }
        Assert.True(missing == 0 && moved == 0, $"{missing} acknowledged records missing, {moved} at a different offset; e.g. {example}");
        return records.Count;
    }
}
