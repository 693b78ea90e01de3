using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Protocol.Messages;
using Xunit;

namespace Samsa.Cluster.Tests;

/// <summary>
/// The web console's JSON API (issue #20) as `samsa console` serves it against three brokers,
/// bootstrapped at a broker that is not the controller: its figures (brokers, controller,
/// partitions' leaders/replicas/ISR, records, a group's committed offsets, log ends and lag, the
/// znode tree) equal what the Kafka and ZooKeeper APIs report, and bad input is a 4xx JSON error.
/// </summary>
public sealed class ConsoleApiClusterTests(KeeperServer server) : IClassFixture<KeeperServer>
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(60) };

    private sealed class ConsoleProcess(Process process, string url) : IAsyncDisposable
    {
        public string Url { get; } = url;

        public async Task<(HttpStatusCode Status, JsonNode Body)> GetAsync(string path)
        {
            using var r = await Http.GetAsync(Url + "api/" + path);
            return (r.StatusCode, JsonNode.Parse(await r.Content.ReadAsStringAsync())!);
        }

        public async Task<(HttpStatusCode Status, JsonNode Body)> PostAsync(string path, string body)
        {
            using var r = await Http.PostAsync(Url + "api/" + path, new StringContent(body, Encoding.UTF8, "application/json"));
            return (r.StatusCode, JsonNode.Parse(await r.Content.ReadAsStringAsync())!);
        }

        public async Task<JsonNode> OkAsync(string path)
        {
            var (status, body) = await GetAsync(path);
            Assert.True(status == HttpStatusCode.OK, $"{path}: {(int)status} {body.ToJsonString()}");
            return body;
        }

        public async ValueTask DisposeAsync()
        {
            if (!process.HasExited) process.Kill();
            await process.WaitForExitAsync();
            process.Dispose();
        }
    }

    private static async Task<ConsoleProcess> StartConsoleAsync(string bootstrap, string zookeeper)
    {
        var psi = new ProcessStartInfo(Samsa.Testing.TestEnvironment.SamsaExecutable())
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in new[] { "console", "--bootstrap-server", bootstrap, "--zookeeper", zookeeper, "--port", "0" }) psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        _ = p.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        string? line = await p.StandardOutput.ReadLineAsync(timeout.Token);
        Assert.True(line is not null && line.StartsWith("console on http://", StringComparison.Ordinal), $"samsa console printed '{line}'");
        return new ConsoleProcess(p, line!["console on ".Length..]);
    }

    [Fact]
    public async Task ApiMatchesTheAdminApiOnThreeBrokers()
    {
        await using var cluster = await LocalCluster.StartAsync(server.Address!, 3);
        // every broker registered and a controller elected, as the metadata broker 1 serves shows
        await LocalCluster.WaitUntilAsync(async () => (await cluster.MetadataAsync(1)) is { Brokers.Count: 3, ControllerId: > 0 },
            TimeSpan.FromSeconds(10), "all brokers and the controller visible");
        var md = await cluster.MetadataAsync(1);
        int bootstrap = md.Brokers.Select(b => b.NodeId).First(id => id != md.ControllerId);
        await using var console = await StartConsoleAsync(cluster.Bootstrap(bootstrap), cluster.Connect);

        var c = await console.OkAsync("cluster");
        Assert.Equal(md.ControllerId, (int)c["controller"]!);
        Assert.Equal([1, 2, 3], c["brokers"]!.AsArray().Select(b => (int)b!["id"]!).ToArray());
        Assert.Equal(md.ClusterId, (string?)c["clusterId"]);

        const string topic = "console-api";
        var (exit, _, err) = await AdminCommandsClusterTests.SamsaAsync("kafka-topics", "--bootstrap-server", cluster.Bootstrap(bootstrap),
            "--create", "--topic", topic, "--partitions", "2", "--replication-factor", "3");
        Assert.True(exit == 0, err);
        var led = await cluster.LedMetadataAsync(bootstrap, topic, 2);

        var t = await console.OkAsync("topic?name=" + topic);
        foreach (var p in led.Topics[0].Partitions)
        {
            var shown = t["partitions"]!.AsArray().Single(x => (int)x!["partition"]! == p.PartitionIndex)!;
            Assert.Equal(p.LeaderId, (int)shown["leader"]!);
            Assert.Equal(p.ReplicaNodes, shown["replicas"]!.AsArray().Select(x => (int)x!).ToList());
            Assert.Equal(p.IsrNodes, shown["isr"]!.AsArray().Select(x => (int)x!).ToList());
        }
        Assert.Contains(t["configs"]!.AsArray(), x => (string?)x!["name"] == "cleanup.policy" && (string?)x["value"] == "delete");

        // Five records to partition 0 through the API, the first with a key and a header.
        for (int i = 0; i < 5; i++)
        {
            string body = i == 0 ? """{"topic":"console-api","partition":0,"key":"k0","value":"{\"n\":0}","headers":[{"key":"h","value":"v"}]}"""
                : $$"""{"topic":"console-api","partition":0,"value":"v{{i}}"}""";
            var (status, answer) = await console.PostAsync("produce", body);
            Assert.True(status == HttpStatusCode.OK, answer.ToJsonString());
            Assert.Equal(i, (long)answer["offset"]!);
        }
        var m = await console.OkAsync($"messages?topic={topic}&partition=0&offset=0&limit=10");
        var records = m["records"]!.AsArray();
        Assert.Equal(5, records.Count);
        Assert.Equal("k0", (string?)records[0]!["key"]);
        Assert.Equal("v", (string?)records[0]!["headers"]![0]!["value"]);
        Assert.Equal("{\n  \"n\": 0\n}", (string?)records[0]!["json"]);
        Assert.Equal("v4", (string?)records[4]!["value"]);
        Assert.Equal(5, (long)m["latest"]!);
        var tail = await console.OkAsync($"messages?topic={topic}&partition=0&limit=2");
        Assert.Equal([3L, 4L], tail["records"]!.AsArray().Select(r => (long)r!["offset"]!).ToArray());

        // A group with committed offsets 2 (partition 0) and 0 (partition 1): lag as the APIs give it.
        const string group = "console-group";
        await AdminCommandsClusterTests.CommitAsync(cluster, bootstrap, group, topic, [(0, 2), (1, 0)]);
        var g = await console.OkAsync("group?id=" + group);
        var coordinator = await cluster.FindCoordinatorAsync(bootstrap, group);
        await using (var wire = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(coordinator.NodeId)))
        {
            var fetched = (await wire.SendAsync<OffsetFetchResponse>(new OffsetFetchRequest { GroupId = group, Topics = null! }, 7))!;
            foreach (var p in fetched.Topics.Single().Partitions)
            {
                int leader = led.Topics[0].Partitions.Single(x => x.PartitionIndex == p.PartitionIndex).LeaderId;
                await using var atLeader = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(leader));
                var end = (await atLeader.SendAsync<ListOffsetsResponse>(new ListOffsetsRequest
                {
                    ReplicaId = -1,
                    Topics = [new() { Name = topic, Partitions = [new() { PartitionIndex = p.PartitionIndex, Timestamp = -1, CurrentLeaderEpoch = -1 }] }],
                }, 7))!.Topics[0].Partitions[0].Offset;
                var row = g["offsets"]!.AsArray().Single(x => (int)x!["partition"]! == p.PartitionIndex)!;
                Assert.Equal(p.CommittedOffset, (long)row["committed"]!);
                Assert.Equal(end, (long)row["logEnd"]!);
                Assert.Equal(end - p.CommittedOffset, (long)row["lag"]!);
            }
        }
        Assert.Equal([3L, 0L], g["offsets"]!.AsArray().OrderBy(x => (int)x!["partition"]!).Select(x => (long)x!["lag"]!).ToArray());
        Assert.Contains((await console.OkAsync("groups"))["groups"]!.AsArray(), x => (string?)x!["groupId"] == group);

        // The znode tree under the cluster's chroot.
        var ids = await console.OkAsync("znode?path=/brokers/ids");
        Assert.Equal(["1", "2", "3"], ids["children"]!.AsArray().Select(x => (string)x!).ToArray());
        Assert.Equal("cdrwa", (string?)ids["acl"]![0]!["perms"]);
        var broker2 = await console.OkAsync("znode?path=/brokers/ids/2");
        Assert.Contains(cluster.Port(2).ToString(System.Globalization.CultureInfo.InvariantCulture), (string)broker2["data"]!);

        // Bad input: 4xx with a JSON error, and the console keeps answering.
        foreach (var (path, expected) in new[]
        {
            ($"messages?topic={topic}&partition=0&offset=99", HttpStatusCode.BadRequest),
            ($"messages?topic={topic}&partition=0&offset=-5", HttpStatusCode.BadRequest),
            ($"messages?topic={topic}&partition=7", HttpStatusCode.NotFound),
            ($"messages?topic={topic}&limit=100000000", HttpStatusCode.BadRequest),
            ($"messages?topic={topic}&offset=x", HttpStatusCode.BadRequest),
            ("topic?name=missing", HttpStatusCode.NotFound),
            ("group?id=missing", HttpStatusCode.NotFound),
            ("znode?path=relative", HttpStatusCode.BadRequest),
            ("znode?path=/missing", HttpStatusCode.NotFound),
            ("tap?limit=0", HttpStatusCode.BadRequest),
            ("nothing", HttpStatusCode.NotFound),
        })
        {
            var (status, body) = await console.GetAsync(path);
            Assert.True(status == expected, $"{path}: {(int)status} {body.ToJsonString()}");
            Assert.False(string.IsNullOrEmpty((string?)body["error"]), path);
        }
        Assert.Equal(HttpStatusCode.BadRequest, (await console.PostAsync("produce", "{not json")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await console.PostAsync("produce", """{"topic":"missing","value":"x"}""")).Status);
        // What a page of another site may POST without a CORS preflight (text/plain, a form) is refused.
        foreach (var type in new[] { "text/plain", "application/x-www-form-urlencoded" })
        {
            using var r = await Http.PostAsync(console.Url + "api/produce", new StringContent($$"""{"topic":"{{topic}}","value":"cross-site"}""", Encoding.UTF8, type));
            Assert.Equal(HttpStatusCode.UnsupportedMediaType, r.StatusCode);
        }
        // A body over 1 MiB is refused from its Content-Length, before it is read (so only the head is sent here).
        var uri = new Uri(console.Url);
        using (var raw = new System.Net.Sockets.TcpClient())
        {
            await raw.ConnectAsync(uri.Host, uri.Port);
            var stream = raw.GetStream();
            await stream.WriteAsync(Encoding.ASCII.GetBytes($"POST /api/produce HTTP/1.1\r\nHost: x\r\nContent-Length: {(1 << 20) + 1}\r\n\r\n"));
            using var reader = new StreamReader(stream);
            Assert.StartsWith("HTTP/1.1 413 ", await reader.ReadLineAsync());
        }
        Assert.Equal(md.ControllerId, (int)(await console.OkAsync("cluster"))["controller"]!);
    }
}
