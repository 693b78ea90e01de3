using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Samsa.Kafka.Broker.Cluster;
using Samsa.Kafka.Broker.Security;
using Samsa.Kafka.Broker.Security.Acl;
using Samsa.Kafka.Broker.Security.Quotas;
using Samsa.Kafka.Broker.Security.Tokens;
using Xunit;

namespace Samsa.Kafka.Broker.Tests.Json;

/// <summary>The broker's JSON files and znodes go through source-generated serialization or
/// JsonNode without reflection (issue #18, NativeAOT). The files must keep the bytes the reflection
/// serializer wrote before (a broker reads the files an older samsa left), and the znodes keep
/// upstream's formats (the existing AclAuthorizerTests and DelegationTokenTests compare those with
/// upstream's literal JSON; the renewers and the ACL entries are the parts changed here).</summary>
public sealed class BrokerJsonContextTests
{
    [Fact]
    public void Quota_file_bytes_are_the_reflection_serializers()
    {
        var entities = new Dictionary<string, Dictionary<string, string>>(StringComparer.Ordinal)
        {
            ["user/alice/client-id/app"] = new() { ["producer_byte_rate"] = "4096", ["consumer_byte_rate"] = "1.5E7" },
            ["ip/<default>"] = new() { ["connection_creation_rate"] = "100" },
            ["user/%C3%A9t%C3%A9\"q"] = new() { ["request_percentage"] = "12.5" },
        };
        var generated = JsonSerializer.SerializeToUtf8Bytes(entities, BrokerJsonContext.Default.DictionaryStringDictionaryStringString);
        Assert.Equal(JsonSerializer.SerializeToUtf8Bytes(entities), generated);
        var back = JsonSerializer.Deserialize(generated, BrokerJsonContext.Default.DictionaryStringDictionaryStringString)!;
        Assert.Equal("1.5E7", back["user/alice/client-id/app"]["consumer_byte_rate"]);
    }

    [Fact]
    public async Task Quota_store_writes_and_reloads_its_file()
    {
        string dir = Path.Combine(Path.GetTempPath(), "samsa-quotajson-" + Guid.NewGuid().ToString("N"));
        try
        {
            var store = new FileQuotaStore(dir);
            await store.WriteAsync("user/alice", new Dictionary<string, string> { ["producer_byte_rate"] = "1024" });
            Assert.Equal("""{"user/alice":{"producer_byte_rate":"1024"}}""", File.ReadAllText(Path.Combine(dir, FileQuotaStore.FileName)));
            var again = new FileQuotaStore(dir);
            Assert.Equal("1024", (await again.ReadAsync("user/alice"))["producer_byte_rate"]);
        }
        finally { try { Directory.Delete(dir, true); } catch (IOException) { } }
    }

    [Fact]
    public void Topic_metadata_file_bytes_are_the_reflection_serializers()
    {
        var file = new ReplicaManager.MetadataFile
        {
            BrokerConfigs = new() { ["log.retention.ms"] = "1000" },
            ClusterDefaultConfigs = new() { ["message.max.bytes"] = "2000000" },
        };
        file.Topics.Add(new ReplicaManager.TopicRecord
        {
            Name = "orders", Id = "AAAAAAAAAAAAAAAAAAAAAQ", Configs = new() { ["cleanup.policy"] = "compact" },
            Partitions = [new() { Dir = "/data/orders-0", LeaderEpoch = 3 }, new() { Dir = "/data/orders-1", LeaderEpoch = 0, Hosted = false }],
        });
        string generated = JsonSerializer.Serialize(file, BrokerIndentedJsonContext.Default.MetadataFile);
        Assert.Equal(JsonSerializer.Serialize(file, new JsonSerializerOptions { WriteIndented = true }), generated);
        Assert.Contains("\n  \"topics\": [", generated);
        // A file of an older samsa without "hosted": the partition is hosted.
        var old = JsonSerializer.Deserialize("""{"version":1,"topics":[{"name":"t","id":"x","partitions":[{"dir":"/d","leaderEpoch":2}],"configs":{}}]}""",
            BrokerIndentedJsonContext.Default.MetadataFile)!;
        Assert.True(old.Topics[0].Partitions[0].Hosted);
        Assert.Equal(2, old.Topics[0].Partitions[0].LeaderEpoch);
        Assert.Empty(old.BrokerConfigs);
    }

    [Fact]
    public async Task Acl_file_keeps_upstreams_entries_per_resource()
    {
        string dir = Path.Combine(Path.GetTempPath(), "samsa-acljson-" + Guid.NewGuid().ToString("N"));
        try
        {
            var authorizer = new AclAuthorizer(new HashSet<KafkaPrincipal>(), allowEveryoneIfNoAclFound: false, log: null);
            var store = new FileAclStore(authorizer, dir);
            var entry = new AclEntry("User:alice", "*", AclOperation.Read, AclPermissionType.Allow);
            await store.UpdateAsync(new ResourcePattern(ResourceType.Topic, "orders", PatternType.Prefixed), _ => new HashSet<AclEntry> { entry }, CancellationToken.None);
            string text = File.ReadAllText(Path.Combine(dir, FileAclStore.FileName));
            var resource = JsonNode.Parse(text)!["resources"]![0]!;
            Assert.Equal("""{"resourceType":"Topic","patternType":"PREFIXED","name":"orders","acls":[{"principal":"User:alice","permissionType":"Allow","operation":"Read","host":"*"}]}""",
                resource.ToJsonString());
            Assert.StartsWith("{\n  \"version\": 1,\n  \"resources\": [", text);
            var loaded = FileAclStore.Load(Path.Combine(dir, FileAclStore.FileName));
            Assert.Equal(entry, Assert.Single(Assert.Single(loaded).Value));
        }
        finally { try { Directory.Delete(dir, true); } catch (IOException) { } }
    }

    [Fact]
    public void Delegation_token_znode_lists_every_renewer()
    {
        var token = new DelegationToken("tok", KafkaPrincipal.User("alice"), KafkaPrincipal.User("alice"),
            [KafkaPrincipal.User("bob"), KafkaPrincipal.User("c:d")], 1, 3, 2);
        string json = Encoding.UTF8.GetString(DelegationTokenManager.Encode(token));
        Assert.Equal("""{"version":3,"owner":"User%3Aalice","tokenRequester":"User%3Aalice","renewers":["User%3Abob","User%3Ac%3Ad"],"issueTimestamp":1,"maxTimestamp":3,"expiryTimestamp":2,"tokenId":"tok"}""", json);
        Assert.Equal(token.Renewers, DelegationTokenManager.Decode(Encoding.UTF8.GetBytes(json))!.Renewers);
    }
}
