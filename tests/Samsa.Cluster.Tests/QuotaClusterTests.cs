using System.Text;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Security;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Keeper.Client;
using Samsa.Keeper.Protocol;
using Xunit;

namespace Samsa.Cluster.Tests;

public sealed class KeeperQuotaClusterTests(KeeperServer server) : QuotaClusterTests(server), IClassFixture<KeeperServer>;

public sealed class ApacheZooKeeperQuotaClusterTests(ApacheZooKeeperServer server) : QuotaClusterTests(server), IClassFixture<ApacheZooKeeperServer>;

/// <summary>Quotas kept in ZooKeeper as upstream: znodes written the way upstream's
/// <c>kafka-configs.sh --zookeeper … --alter --add-config producer_byte_rate=1024</c> writes them
/// (entity znode, then a /config/changes notification) are applied by every broker; quotas set
/// through AlterClientQuotas land in the same znodes (sanitized names, other keys of a user znode
/// such as SCRAM credentials kept) and are answered by DescribeClientQuotas on any broker.</summary>
public abstract class QuotaClusterTests(ICoordinationServer server)
{
    private string Server
    {
        get
        {
            Assert.SkipWhen(server.SkipReason is not null, server.SkipReason ?? "");
            return server.Address!;
        }
    }

    private static byte[] Json(string s) => Encoding.UTF8.GetBytes(s);

    [Fact]
    public async Task QuotasWrittenAsKafkaConfigsShWritesThemApplyOnEveryBrokerAndAlterKeepsOtherKeys()
    {
        await using var cluster = await LocalCluster.StartAsync(Server, 3);
        await using var zk = await cluster.ZooKeeperAsync();
        const string scram = "salt=c2FsdA==,stored_key=c3RvcmVk,server_key=c2VydmVy,iterations=4096";
        // What kafka-configs.sh --zookeeper writes for --entity-type users --entity-name "alice@example.com".
        await zk.CreateAsync("/config/users/alice%40example.com",
            Json($"{{\"version\":1,\"config\":{{\"producer_byte_rate\":\"1024\",\"SCRAM-SHA-256\":\"{scram}\"}}}}"), Acls.OpenAclUnsafe);
        await zk.CreateAsync("/config/changes/config_change_", Json("{\"version\":2,\"entity_path\":\"users/alice%40example.com\"}"), Acls.OpenAclUnsafe, CreateMode.PersistentSequential);
        // And --entity-type clients --entity-default, the older version-1 notification form.
        await zk.CreateAsync("/config/clients/<default>", Json("{\"version\":1,\"config\":{\"consumer_byte_rate\":\"2048\"}}"), Acls.OpenAclUnsafe);
        await zk.CreateAsync("/config/changes/config_change_", Json("{\"version\":1,\"entity_type\":\"clients\",\"entity_name\":\"<default>\"}"), Acls.OpenAclUnsafe, CreateMode.PersistentSequential);

        var alice = KafkaPrincipal.User("alice@example.com");
        foreach (int id in new[] { 1, 2, 3 })
            await LocalCluster.WaitUntilAsync(() => Task.FromResult(cluster[id].Quotas.Produce.QuotaFor(alice, "any") == 1024
                    && cluster[id].Quotas.Fetch.QuotaFor(KafkaPrincipal.Anonymous, "some-app") == 2048),
                TimeSpan.FromSeconds(10), $"broker {id} applies the users and clients quotas");

        // AlterClientQuotas through broker 2: the same znode, SCRAM credential kept.
        await using (var wire = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(2)))
        {
            var r = await wire.SendAsync<AlterClientQuotasResponse>(new AlterClientQuotasRequest
            {
                Entries =
                [
                    new() { Entity = [new() { EntityType = "user", EntityName = "alice@example.com" }], Ops = [new() { Key = "consumer_byte_rate", Value = 4096 }, new() { Key = "producer_byte_rate", Remove = true }] },
                    new() { Entity = [new() { EntityType = "user", EntityName = "bob" }, new() { EntityType = "client-id", EntityName = "app 1" }], Ops = [new() { Key = "request_percentage", Value = 50 }] },
                ],
            }, 1);
            Assert.All(r!.Entries, e => Assert.Equal(0, e.ErrorCode));
        }
        var node = await LocalCluster.ReadJsonAsync(zk, "/config/users/alice%40example.com");
        Assert.Equal("4096", (string)node["config"]!["consumer_byte_rate"]!);
        Assert.Null(node["config"]!["producer_byte_rate"]);
        Assert.Equal(scram, (string)node["config"]!["SCRAM-SHA-256"]!);
        Assert.Equal("50.0", (string)(await LocalCluster.ReadJsonAsync(zk, "/config/users/bob/clients/app%201"))["config"]!["request_percentage"]!);
        var changes = new List<string?>();
        foreach (var c in await zk.GetChildrenAsync("/config/changes"))
            changes.Add((string?)(await LocalCluster.ReadJsonAsync(zk, "/config/changes/" + c))["entity_path"]);
        Assert.Contains("users/alice%40example.com", changes);
        Assert.Contains("users/bob/clients/app%201", changes);

        foreach (int id in new[] { 1, 2, 3 })
            await LocalCluster.WaitUntilAsync(() => Task.FromResult(cluster[id].Quotas.Produce.QuotaFor(alice, "any") is null
                    && cluster[id].Quotas.Fetch.QuotaFor(alice, "any") == 4096
                    && cluster[id].Quotas.Request.QuotaFor(KafkaPrincipal.User("bob"), "app 1") == 50),
                TimeSpan.FromSeconds(10), $"broker {id} applies the altered quotas");

        // DescribeClientQuotas at broker 3 answers from ZooKeeper, desanitized, quota keys only.
        await using (var wire = await KafkaWireClient.ConnectAsync("127.0.0.1", cluster.Port(3)))
        {
            var d = (await wire.SendAsync<DescribeClientQuotasResponse>(new DescribeClientQuotasRequest { Components = [], Strict = false }, 1))!;
            var lines = d.Entries!.Select(e => string.Join(",", e.Entity.Select(x => $"{x.EntityType}={x.EntityName ?? "<default>"}"))
                + ":" + string.Join(",", e.Values.Select(v => $"{v.Key}={v.Value}"))).Order(StringComparer.Ordinal).ToList();
            Assert.Equal(["client-id=<default>:consumer_byte_rate=2048", "user=alice@example.com:consumer_byte_rate=4096", "user=bob,client-id=app 1:request_percentage=50"], lines);
        }
    }
}
