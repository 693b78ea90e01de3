using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Security.Sasl;
using Samsa.Kafka.Broker.Tests.EndToEnd;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Tests.Security;

/// <summary>Describe/AlterUserScramCredentials (keys 50, 51) on a single broker: upstream's
/// validation and errors, and the credentials file surviving a restart.</summary>
public class ScramCredentialApiTests
{
    private static AlterUserScramCredentialsRequest.ScramCredentialUpsertion Upsert(string user, ScramMechanism m, int iterations, string password = "pw")
    {
        var salt = new byte[] { 1, 2, 3, 4, 5, 6, 7, 8 };
        return new() { Name = user, Mechanism = m.Type, Iterations = iterations, Salt = salt, SaltedPassword = m.SaltedPassword(password, salt, Math.Max(iterations, 1)) };
    }

    [Fact]
    public async Task ValidationErrorsAsUpstream()
    {
        await using var live = await LiveBroker.StartAsync();
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", live.Broker.BoundEndPoint.Port);
        var r = await c.SendAsync<AlterUserScramCredentialsResponse>(new AlterUserScramCredentialsRequest
        {
            Upsertions =
            [
                Upsert("ok", ScramMechanism.Sha256, 4096),
                Upsert("few", ScramMechanism.Sha256, 4095),
                Upsert("many", ScramMechanism.Sha512, 16385),
                Upsert("dup", ScramMechanism.Sha256, 4096), Upsert("dup", ScramMechanism.Sha256, 5000),
                new() { Name = "unknown-mech", Mechanism = 7, Iterations = 4096, Salt = [1], SaltedPassword = [1] },
                Upsert("", ScramMechanism.Sha256, 4096),
            ],
            Deletions = [new() { Name = "ghost", Mechanism = ScramMechanism.Sha256.Type }],
        }, 0);
        var byUser = r!.Results.ToDictionary(x => x.User, x => ((ErrorCode)x.ErrorCode, x.ErrorMessage));
        Assert.Equal((ErrorCode.None, (string?)null), byUser["ok"]);
        Assert.Equal((ErrorCode.UnacceptableCredential, "Too few iterations"), byUser["few"]);
        Assert.Equal((ErrorCode.UnacceptableCredential, "Too many iterations"), byUser["many"]);
        Assert.Equal(ErrorCode.DuplicateResource, byUser["dup"].Item1);
        Assert.Equal((ErrorCode.UnsupportedSaslMechanism, "Unknown SCRAM mechanism"), byUser["unknown-mech"]);
        Assert.Equal((ErrorCode.UnacceptableCredential, "Username must not be empty"), byUser[""]);
        Assert.Equal((ErrorCode.ResourceNotFound, "Attempt to delete a user credential that does not exist"), byUser["ghost"]);

        // Only "ok" was stored.
        var all = await c.SendAsync<DescribeUserScramCredentialsResponse>(new DescribeUserScramCredentialsRequest { Users = null }, 0);
        Assert.Equal(["ok"], all!.Results.Select(x => x.User));
        var named = await c.SendAsync<DescribeUserScramCredentialsResponse>(new DescribeUserScramCredentialsRequest
        {
            Users = [new() { Name = "ok" }, new() { Name = "nobody" }, new() { Name = "twice" }, new() { Name = "twice" }],
        }, 0);
        var d = named!.Results.ToDictionary(x => x.User);
        Assert.Equal(0, d["ok"].ErrorCode);
        Assert.Equal((ScramMechanism.Sha256.Type, 4096), (d["ok"].CredentialInfos[0].Mechanism, d["ok"].CredentialInfos[0].Iterations));
        Assert.Equal((short)ErrorCode.ResourceNotFound, d["nobody"].ErrorCode);
        Assert.Equal((short)ErrorCode.DuplicateResource, d["twice"].ErrorCode);
    }

    [Fact]
    public async Task SingleBrokerKeepsCredentialsInAFileAcrossRestarts()
    {
        var dir = Path.Combine(Path.GetTempPath(), "samsa-scram-" + Guid.NewGuid().ToString("N"));
        try
        {
            // Not LiveBroker for the first run: its disposal deletes the data directory.
            var first = new KafkaBroker(new Samsa.Kafka.Broker.Config.BrokerConfig(new Dictionary<string, string>
            {
                ["broker.id"] = "1", ["listeners"] = "PLAINTEXT://127.0.0.1:0", ["log.dirs"] = dir, ["offsets.topic.replication.factor"] = "1",
            }));
            await first.StartAsync();
            await using (first)
            {
                await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", first.BoundEndPoint.Port);
                var r = await c.SendAsync<AlterUserScramCredentialsResponse>(new AlterUserScramCredentialsRequest
                {
                    Upsertions = [Upsert("kept", ScramMechanism.Sha512, 4096, "kept-pw")],
                }, 0);
                Assert.Equal(0, r!.Results[0].ErrorCode);
            }
            Assert.True(File.Exists(Path.Combine(dir, ScramCredentialStore.FileName)));
            Assert.False(File.Exists(Path.Combine(dir, ScramCredentialStore.FileName + ".tmp")));
            var props = SaslTests.SaslProps();
            await using var again = await LiveBroker.StartAsync(dir, props);
            await using var s = await KafkaWireClient.ConnectAsync("127.0.0.1", again.Broker.BoundEndPoint.Port);
            await s.AuthenticateAsync("SCRAM-SHA-512", "kept", "kept-pw");
            Assert.NotNull(await s.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [] }, 1));
        }
        finally { try { Directory.Delete(dir, true); } catch (IOException) { } }
    }
}
