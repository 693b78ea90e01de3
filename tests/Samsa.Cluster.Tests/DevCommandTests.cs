using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Samsa.Kafka.Broker;
using Samsa.Kafka.Broker.Cluster;
using Samsa.Kafka.Broker.Config;
using Samsa.Keeper.Client;
using Xunit;

namespace Samsa.Cluster.Tests;

/// <summary>`samsa dev` (one broker and the Keeper in one process) runs its broker in ZooKeeper
/// mode on the embedded Keeper: a ZooKeeper client pointed at the dev Keeper sees upstream's
/// layout, and a data directory written by an earlier, single-node `samsa dev` keeps its topics.</summary>
public sealed class DevCommandTests
{
    [Fact]
    public async Task TheDevKeeperShowsTheBrokersZooKeeperLayout()
    {
        var data = Path.Combine(Path.GetTempPath(), "samsa-devtest-" + Guid.NewGuid().ToString("N")[..8]);
        await using var dev = await DevProcess.StartAsync(data);
        await using var zk = await KeeperClient.ConnectAsync(dev.KeeperAddress);

        Assert.Equal(["1"], await zk.GetChildrenAsync("/brokers/ids"));
        var reg = (JsonObject)JsonNode.Parse((await zk.GetDataAsync("/brokers/ids/1")).Data)!;
        Assert.Equal($"PLAINTEXT://{dev.KafkaAddress}", (string)reg["endpoints"]![0]!);
        Assert.Equal(1, (int)((JsonObject)JsonNode.Parse((await zk.GetDataAsync("/controller")).Data)!)["brokerid"]!);

        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = dev.KafkaAddress }).Build())
            await admin.CreateTopicsAsync([new TopicSpecification { Name = "devtopic", NumPartitions = 3, ReplicationFactor = 1, Configs = new() { ["retention.ms"] = "600000" } }]);
        var topic = (JsonObject)JsonNode.Parse((await zk.GetDataAsync("/brokers/topics/devtopic")).Data)!;
        Assert.Equal(["0", "1", "2"], topic["partitions"]!.AsObject().Select(kv => kv.Key).Order());
        Assert.All(topic["partitions"]!.AsObject(), kv => Assert.Equal([1], kv.Value!.AsArray().Select(n => (int)n!)));
        foreach (int p in new[] { 0, 1, 2 })
            Assert.Equal(1, (int)((JsonObject)JsonNode.Parse((await zk.GetDataAsync($"/brokers/topics/devtopic/partitions/{p}/state")).Data)!)["leader"]!);
        Assert.Equal("600000", (string)((JsonObject)JsonNode.Parse((await zk.GetDataAsync("/config/topics/devtopic")).Data)!)["config"]!["retention.ms"]!);

        // Apache ZooKeeper's own shell lists the registration too.
        const string zkCli = "/usr/share/zookeeper/bin/zkCli.sh";
        if (File.Exists(zkCli))
        {
            var psi = new ProcessStartInfo(zkCli) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { "-server", dev.KeeperAddress, "ls", "/brokers/ids" }) psi.ArgumentList.Add(a);
            using var cli = Process.Start(psi)!;
            _ = cli.StandardError.ReadToEndAsync();
            var output = await cli.StandardOutput.ReadToEndAsync();
            await cli.WaitForExitAsync();
            Assert.Contains("[1]", output);
        }
    }

    [Fact]
    public async Task TopicsOfADataDirectoryFromBeforeZooKeeperModeAreKept()
    {
        var data = Path.Combine(Path.GetTempPath(), "samsa-devtest-" + Guid.NewGuid().ToString("N")[..8]);
        Guid topicId;
        // A single-node broker (no zookeeper.connect) writes DATA/kafka as `samsa dev` used to.
        var props = new Dictionary<string, string>
        {
            ["broker.id"] = "1", ["listeners"] = "PLAINTEXT://127.0.0.1:0", ["log.dirs"] = Path.Combine(data, "kafka"),
            ["offsets.topic.replication.factor"] = "1",
        };
        await using (var old = new KafkaBroker(new BrokerConfig(props)))
        {
            await old.StartAsync();
            var bootstrap = $"127.0.0.1:{old.BoundEndPoint.Port}";
            using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrap }).Build())
                await admin.CreateTopicsAsync([new TopicSpecification { Name = "kept", NumPartitions = 2, ReplicationFactor = 1, Configs = new() { ["cleanup.policy"] = "compact" } }]);
            using (var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = bootstrap }).Build())
                for (int i = 0; i < 10; i++)
                    await producer.ProduceAsync(new Confluent.Kafka.TopicPartition("kept", i % 2), new Message<string, string> { Key = $"k{i}", Value = $"v{i}" });
            topicId = old.Replicas.GetTopic("kept")!.Id;
        }

        await using var dev = await DevProcess.StartAsync(data);
        await using var zk = await KeeperClient.ConnectAsync(dev.KeeperAddress);
        var topic = (JsonObject)JsonNode.Parse((await zk.GetDataAsync("/brokers/topics/kept")).Data)!;
        Assert.Equal(KafkaUuid.ToBase64(topicId), (string)topic["topic_id"]!);
        Assert.Equal("compact", (string)((JsonObject)JsonNode.Parse((await zk.GetDataAsync("/config/topics/kept")).Data)!)["config"]!["cleanup.policy"]!);

        // The records are still there, served by broker 1 as the elected leader (kcat: Debian's
        // librdkafka lacks what Confluent.Kafka's consumer calls).
        var psi = new ProcessStartInfo("kcat") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-C", "-b", dev.KafkaAddress, "-t", "kept", "-o", "beginning", "-e", "-q", "-f", "%k=%s\\n" }) psi.ArgumentList.Add(a);
        using var kcat = Process.Start(psi)!;
        var stderr = kcat.StandardError.ReadToEndAsync();
        var lines = (await kcat.StandardOutput.ReadToEndAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        await kcat.WaitForExitAsync();
        Assert.True(kcat.ExitCode == 0, "kcat failed: " + await stderr);
        Assert.Equal(Enumerable.Range(0, 10).Select(i => $"k{i}=v{i}").Order(), lines.Order());
    }

    [Fact]
    public async Task StandaloneDevRegistersNothingInTheKeeper()
    {
        var data = Path.Combine(Path.GetTempPath(), "samsa-devtest-" + Guid.NewGuid().ToString("N")[..8]);
        await using var dev = await DevProcess.StartAsync(data, "--standalone");
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = dev.KafkaAddress }).Build())
            await admin.CreateTopicsAsync([new TopicSpecification { Name = "alone", NumPartitions = 2, ReplicationFactor = 1 }]);
        await using var zk = await KeeperClient.ConnectAsync(dev.KeeperAddress);
        Assert.Equal(["zookeeper"], await zk.GetChildrenAsync("/"));
        Assert.True(File.Exists(Path.Combine(data, "kafka", "alone-1", "00000000000000000000.log")));
    }
}
