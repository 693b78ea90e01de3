using System.Buffers.Binary;
using System.Diagnostics;
using System.Net.Sockets;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Protocol.Messages;
using static Samsa.Kafka.Broker.Tests.EndToEnd.Proof.ProofClient;
using Samsa.Kafka.Protocol.Records;

namespace Samsa.Kafka.Broker.Tests.EndToEnd.Proof;

/// <summary>
/// Issue 3, hostile input: while one client throws junk at the broker (random bytes, cut frames,
/// a frame claiming 2 GiB, unknown API keys and versions, batches with bad CRCs), another client
/// keeps producing and fetching without a single failure, and all acknowledged data stays intact.
/// </summary>
public class HostileInputTests
{
    private const string Topic = "steady";
    private static readonly TimeSpan CloseWait = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task JunkOnOneConnectionDoesNotDisturbAnotherOrTheData()
    {
        await using var live = await LiveBroker.StartAsync();
        int port = live.Broker.BoundEndPoint.Port;
        var acked = new List<(long Offset, string Value)>();
        await using (var setup = await KafkaWireClient.ConnectAsync("127.0.0.1", port))
        {
            await CreateTopicAsync(setup, Topic);
            for (int i = 0; i < 20; i++)
            {
                var (e, b) = await ProduceAsync(setup, Topic, [(null, Bytes($"before-{i}"))]);
                Assert.Equal(0, e);
                acked.Add((b, $"before-{i}"));
            }
        }

        using var stop = new CancellationTokenSource();
        int goodRounds = 0;
        var good = Task.Run(async () =>
        {
            await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", port);
            int i = 0;
            while (!stop.IsCancellationRequested || goodRounds < 5)
            {
                string v = $"during-{i++}";
                var (e, b) = await ProduceAsync(c, Topic, [(null, Bytes(v))]);
                Assert.True(e == 0, $"produce during the attack failed with {e}");
                lock (acked) acked.Add((b, v));
                var (fe, read) = await ReadAllAsync(c, Topic, b);
                Assert.Equal(0, fe);
                Assert.Equal(v, Str(read[0].Value));
                goodRounds++;
            }
        });

        var sw = Stopwatch.StartNew();
        var rng = new Random(20261121);
        for (int round = 0; round < 5 && !good.IsCompleted; round++)
        {
            // 1. Random bytes, then hang up.
            var junk = new byte[1 + rng.Next(8192)];
            rng.NextBytes(junk);
            await SendAndHangUpAsync(port, junk);

            // 2. A frame cut short: the header promises 200 bytes, 50 arrive, then the client goes.
            var cut = new byte[54];
            BinaryPrimitives.WriteInt32BigEndian(cut, 200);
            rng.NextBytes(cut.AsSpan(4));
            await SendAndHangUpAsync(port, cut);

            // 3. A frame claiming ~2 GiB: the broker must close rather than wait for or allocate it.
            var huge = new byte[4 + 100];
            BinaryPrimitives.WriteInt32BigEndian(huge, int.MaxValue - 7);
            Assert.True(await SendAndExpectCloseAsync(port, huge), "a frame length of ~2 GiB did not close the connection");

            // A negative frame length likewise.
            var negative = new byte[8];
            BinaryPrimitives.WriteInt32BigEndian(negative, -5);
            Assert.True(await SendAndExpectCloseAsync(port, negative), "a negative frame length did not close the connection");

            // 4. An API key that does not exist, and a version of Metadata that does not exist:
            // upstream closes the connection (the request cannot be parsed), as long as it does
            // not hang or crash.
            Assert.True(await SendAndExpectCloseAsync(port, Header(apiKey: 9999, version: 0)), "unknown api key was not refused");
            Assert.True(await SendAndExpectCloseAsync(port, Header(apiKey: 3, version: 999)), "unknown Metadata version was not refused");
            // A header whose client id length runs past the frame.
            var badHeader = Header(apiKey: 3, version: 1);
            BinaryPrimitives.WriteInt16BigEndian(badHeader.AsSpan(12), 30_000);
            Assert.True(await SendAndExpectCloseAsync(port, badHeader), "a client id longer than the frame was not refused");

            // 5. Produce batches that fail validation get CORRUPT_MESSAGE; the connection stays usable.
            await using (var c = await KafkaWireClient.ConnectAsync("127.0.0.1", port))
            {
                var badCrc = RecordBatchBuilder.Build([(null, Bytes("must-not-be-stored-crc"))], DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
                badCrc[^2] ^= 0x11;
                var r = await c.SendAsync<ProduceResponse>(ProduceRequest(Topic, badCrc), 9);
                Assert.Equal(2, r!.Responses[0].PartitionResponses[0].ErrorCode); // CORRUPT_MESSAGE

                var badLength = RecordBatchBuilder.Build([(null, Bytes("must-not-be-stored-len"))], DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
                BinaryPrimitives.WriteInt32BigEndian(badLength.AsSpan(8), badLength.Length + 1000);
                r = await c.SendAsync<ProduceResponse>(ProduceRequest(Topic, badLength), 9);
                Assert.NotEqual(0, r!.Responses[0].PartitionResponses[0].ErrorCode);

                var garbage = new byte[200];
                rng.NextBytes(garbage);
                r = await c.SendAsync<ProduceResponse>(ProduceRequest(Topic, garbage), 9);
                Assert.NotEqual(0, r!.Responses[0].PartitionResponses[0].ErrorCode);

                var md = await c.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [new() { Name = Topic }] }, 9);
                Assert.Equal(0, md!.Topics[0].ErrorCode);
            }
            Assert.True(sw.Elapsed < TimeSpan.FromMinutes(4), "the attack rounds are too slow");
        }
        stop.Cancel();
        await good.WaitAsync(TimeSpan.FromMinutes(2));
        Assert.True(goodRounds >= 5, $"only {goodRounds} produce/fetch rounds completed alongside the attack");

        // Everything acknowledged, before and during, is there at its offset; nothing else got in.
        await using var check = await KafkaWireClient.ConnectAsync("127.0.0.1", port);
        var (err, all) = await ReadAllAsync(check, Topic);
        Assert.Equal(0, err);
        Assert.Equal(acked.OrderBy(a => a.Offset).ToList(), all.Select(r => (r.Offset, Str(r.Value)!)).ToList());
    }

    private static byte[] Header(short apiKey, short version)
    {
        // Request header v1: api key, api version, correlation id, client id (int16-length string).
        var body = new byte[4 + 2 + 2 + 4 + 2 + 4 + 8];
        BinaryPrimitives.WriteInt32BigEndian(body, body.Length - 4);
        BinaryPrimitives.WriteInt16BigEndian(body.AsSpan(4), apiKey);
        BinaryPrimitives.WriteInt16BigEndian(body.AsSpan(6), version);
        BinaryPrimitives.WriteInt32BigEndian(body.AsSpan(8), 77);
        BinaryPrimitives.WriteInt16BigEndian(body.AsSpan(12), 4);
        "evil"u8.CopyTo(body.AsSpan(14));
        return body;
    }

    private static async Task SendAndHangUpAsync(int port, byte[] bytes)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", port);
        try { await tcp.GetStream().WriteAsync(bytes); } catch (IOException) { /* the broker may close first */ }
    }

    /// <summary>True when the broker closes the connection (end of stream or reset) within
    /// <see cref="CloseWait"/> without sending a response for the bad request.</summary>
    private static async Task<bool> SendAndExpectCloseAsync(int port, byte[] bytes)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", port);
        var stream = tcp.GetStream();
        try { await stream.WriteAsync(bytes); } catch (IOException) { return true; }
        using var timeout = new CancellationTokenSource(CloseWait);
        var buffer = new byte[4096];
        try
        {
            int n = await stream.ReadAsync(buffer, timeout.Token);
            return n == 0;
        }
        catch (IOException) { return true; }
        catch (OperationCanceledException) { return false; }
    }
}
