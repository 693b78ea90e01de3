namespace Samsa.Kafka.Broker.Tests.EndToEnd;

/// <summary>kafka-python 2.0.2 (Debian python3-kafka; classic, non-flexible encodings; guesses the
/// broker release from ApiVersions) against the broker.</summary>
public class KafkaPythonTests
{
    private const string Python = "/usr/bin/python3";

    private static void RequireKafkaPython() =>
        ExternalClients.Require(Python, "python3-kafka", probe: "-c \"import kafka\"");

    private static (int, string, string) RunScript(string script, string bootstrap)
    {
        RequireKafkaPython();
        var path = Path.Combine(Path.GetTempPath(), $"samsa-kp-{Guid.NewGuid():N}.py");
        File.WriteAllText(path, script);
        try { return ExternalClients.Run(Python, $"{path} {bootstrap}", timeoutMs: 60_000); }
        finally { File.Delete(path); }
    }

    [Fact]
    public async Task AdminProduceConsumeAndOffsets()
    {
        await using var live = await LiveBroker.StartAsync();
        var (code, stdout, stderr) = RunScript("""
            import sys, time
            from kafka import KafkaProducer, KafkaConsumer, TopicPartition
            from kafka.admin import KafkaAdminClient, NewTopic
            bs = sys.argv[1]
            admin = KafkaAdminClient(bootstrap_servers=bs)
            admin.create_topics([NewTopic("py", num_partitions=2, replication_factor=1, topic_configs={"retention.ms": "100000"})])
            print("topics", sorted(t for t in admin.list_topics() if t == "py"))
            p = KafkaProducer(bootstrap_servers=bs, acks="all", compression_type="gzip")
            t0 = int(time.time() * 1000)
            for i in range(20):
                md = p.send("py", key=b"k%d" % i, value=b"v%d" % i, partition=i % 2, timestamp_ms=t0 + i).get(timeout=10)
            p.flush()
            print("last", md.partition, md.offset)
            c = KafkaConsumer(bootstrap_servers=bs, group_id=None, enable_auto_commit=False, consumer_timeout_ms=3000)
            tps = [TopicPartition("py", 0), TopicPartition("py", 1)]
            c.assign(tps)
            c.seek_to_beginning()
            values = sorted(int(m.value[1:]) for m in c)
            print("values", values == list(range(20)))
            print("end", c.end_offsets(tps)[tps[0]], c.beginning_offsets(tps)[tps[1]])
            found = c.offsets_for_times({tps[1]: t0 + 5})[tps[1]]
            print("bytime", found.offset)
            print("version", c.config["api_version"] >= (2, 0))
            old = KafkaProducer(bootstrap_servers=bs, api_version=(0, 10, 1))  # produce v2, message format v1
            old.send("py", value=b"legacy", partition=0).get(timeout=10)
            old.flush()
            c.seek(tps[0], 10)
            print("legacy", [m.value for m in c])
            oc = KafkaConsumer(bootstrap_servers=bs, group_id=None, api_version=(0, 10, 1), consumer_timeout_ms=3000)  # fetch v3, format v1
            oc.assign([tps[0]])
            oc.seek(tps[0], 8)
            print("oldconsumer", [(m.offset, m.value) for m in oc])
            """, live.Bootstrap);
        Assert.True(code == 0, $"kafka-python failed:\n{stdout}\n{stderr}");
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains("topics ['py']", lines);
        Assert.Contains("last 1 9", lines);
        Assert.Contains("values True", lines);
        Assert.Contains("end 10 0", lines);
        Assert.Contains("bytime 2", lines); // partition 1 holds i = 1, 3, 5, ...: timestamp t0+5 is its offset 2
        Assert.Contains("version True", lines);
        Assert.Contains("legacy [b'legacy']", lines);
        Assert.Contains("oldconsumer [(8, b'v16'), (9, b'v18'), (10, b'legacy')]", lines);
        Assert.Equal("100000", live.Broker.Replicas.GetTopic("py")!.Configs["retention.ms"]);
    }
}
