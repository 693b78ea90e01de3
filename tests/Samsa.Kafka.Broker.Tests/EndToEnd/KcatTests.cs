using System.Text.Json;

namespace Samsa.Kafka.Broker.Tests.EndToEnd;

/// <summary>kcat (librdkafka 2.0.2, flexible versions) against the broker: metadata, produce with
/// each codec, consume from the beginning.</summary>
public class KcatTests
{
    private static readonly string Kcat = ExternalClients.Require("kcat", "kcat");

    [Fact]
    public async Task MetadataListsBrokerAndTopics()
    {
        await using var live = await LiveBroker.StartAsync();
        var create = ExternalClients.Run(Kcat, $"-P -b {live.Bootstrap} -t meta", stdin: "x\n");
        Assert.True(create.ExitCode == 0, create.Stderr);
        var r = ExternalClients.Run(Kcat, $"-L -J -b {live.Bootstrap}");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        var broker = doc.RootElement.GetProperty("brokers")[0];
        Assert.Equal(1, broker.GetProperty("id").GetInt32());
        Assert.Equal(live.Bootstrap, broker.GetProperty("name").GetString());
        var topic = doc.RootElement.GetProperty("topics").EnumerateArray().Single(t => t.GetProperty("topic").GetString() == "meta");
        Assert.Equal(1, topic.GetProperty("partitions").GetArrayLength());
        Assert.Equal(1, topic.GetProperty("partitions")[0].GetProperty("leader").GetInt32());
    }

    [Theory]
    [InlineData("none")]
    [InlineData("gzip")]
    [InlineData("snappy")]
    [InlineData("lz4")]
    [InlineData("zstd")]
    public async Task ProduceAndConsumeWithCodec(string codec)
    {
        await using var live = await LiveBroker.StartAsync();
        var lines = Enumerable.Range(0, 200).Select(i => $"{codec}-message-{i}").ToList();
        var produce = ExternalClients.Run(Kcat, $"-P -b {live.Bootstrap} -t c-{codec} -z {codec} -K : -X linger.ms=20",
            stdin: string.Join("\n", lines.Select((l, i) => $"key{i}:{l}")) + "\n");
        Assert.True(produce.ExitCode == 0, produce.Stderr);
        var consume = ExternalClients.Run(Kcat, $"-C -b {live.Bootstrap} -t c-{codec} -o beginning -e -f %k=%s@%o\\n");
        Assert.True(consume.ExitCode == 0, consume.Stderr);
        var got = consume.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(lines.Select((l, i) => $"key{i}={l}@{i}"), got);
    }

    [Fact]
    public async Task ConsumerSeesDataWrittenAfterItStartedWaiting()
    {
        await using var live = await LiveBroker.StartAsync();
        ExternalClients.Run(Kcat, $"-P -b {live.Bootstrap} -t late", stdin: "first\n");
        var consumer = Task.Run(() => ExternalClients.Run(Kcat, $"-C -b {live.Bootstrap} -t late -o beginning -c 2 -f %s\\n", timeoutMs: 30_000));
        await Task.Delay(1500);
        ExternalClients.Run(Kcat, $"-P -b {live.Bootstrap} -t late", stdin: "second\n");
        var r = await consumer;
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal(["first", "second"], r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public async Task DataSurvivesBrokerRestart()
    {
        var dir = Path.Combine(Path.GetTempPath(), "samsa-e2e-" + Guid.NewGuid().ToString("N"));
        var live = await LiveBroker.StartAsync(dir);
        ExternalClients.Run(Kcat, $"-P -b {live.Bootstrap} -t keep", stdin: "one\ntwo\nthree\n");
        await live.Broker.DisposeAsync();
        await using var again = await LiveBroker.StartAsync(dir);
        var r = ExternalClients.Run(Kcat, $"-C -b {again.Bootstrap} -t keep -o beginning -e -f %s@%o\\n");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal(["one@0", "two@1", "three@2"], r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        ExternalClients.Run(Kcat, $"-P -b {again.Bootstrap} -t keep", stdin: "four\n");
        var after = ExternalClients.Run(Kcat, $"-C -b {again.Bootstrap} -t keep -o 3 -e -f %s@%o\\n");
        Assert.Equal(["four@3"], after.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }
}
