using Samsa.Keeper.Server.Quorum;
using Xunit;

namespace Samsa.Keeper.Server.Tests;

/// <summary>zoo.cfg quorum keys: parsed as upstream's QuorumPeerConfig, and what the Keeper does not
/// implement stops the start with a clear error.</summary>
public sealed class QuorumConfigTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "keeper-qcfg-" + Guid.NewGuid().ToString("N"));

    public QuorumConfigTests() => Directory.CreateDirectory(_dir);
    public void Dispose() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    private KeeperConfig Parse(string extra, string? myid = "1")
    {
        if (myid is not null) File.WriteAllText(Path.Combine(_dir, "myid"), myid + "\n");
        return KeeperConfig.Parse($"tickTime=2000\ndataDir={_dir}\nclientPort=0\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n" + extra);
    }

    private const string Three = "initLimit=10\nsyncLimit=5\nserver.1=127.0.0.1:2888:3888\nserver.2=127.0.0.2:2888:3888:participant;2181\nserver.3=[::1]:2888:3888;127.0.0.1:2183\n";

    [Fact]
    public void Server_lines_parse_as_upstream_and_print_as_its_QuorumVerifier()
    {
        var c = Parse(Three);
        Assert.Equal(3, c.Quorum.Servers.Count);
        Assert.True(c.Quorum.IsQuorumMode);
        Assert.Equal(10, c.Quorum.InitLimit);
        var s3 = c.Quorum.Servers[3];
        Assert.Equal("::1", s3.Host);
        Assert.Equal(2183, s3.ClientPort);
        Assert.Equal(
            "server.1=127.0.0.1:2888:3888:participant\nserver.2=127.0.0.2:2888:3888:participant;0.0.0.0:2181\nserver.3=[::1]:2888:3888:participant;127.0.0.1:2183\nversion=0",
            c.Quorum.VerifierString());
        c.Quorum.Validate(c);
        Assert.Equal(1, c.Quorum.MyId);
    }

    [Fact]
    public void One_server_line_with_standaloneEnabled_runs_standalone_as_upstream()
    {
        var c = Parse("server.1=127.0.0.1:2888:3888\n");
        Assert.False(c.Quorum.IsQuorumMode);
        var c2 = Parse("server.1=127.0.0.1:2888:3888\nstandaloneEnabled=false\n");
        Assert.True(c2.Quorum.IsQuorumMode);
    }

    [Theory]
    [InlineData("observerMasterPort=2191\n", "observerMasterPort")]
    [InlineData("electionAlg=1\n", "electionAlg=1")]
    [InlineData("quorum.auth.enableSasl=true\n", "quorum.auth.enableSasl=true")]
    public void Unimplemented_quorum_features_stop_the_start(string line, string named)
    {
        var c = Parse(Three + line);
        var e = Assert.Throws<KeeperConfigException>(() => c.Quorum.Validate(c));
        Assert.Contains(named, e.Message);
    }

    [Fact]
    public async Task Quorum_tls_and_quorum_mode_are_refused_by_KeeperHost_with_a_clear_error()
    {
        var tls = Parse("sslQuorum=true\n");
        var e1 = await Assert.ThrowsAsync<KeeperConfigException>(() => KeeperHost.StartAsync(tls));
        Assert.Contains("sslQuorum=true", e1.Message);
        var quorum = Parse(Three);
        var e2 = await Assert.ThrowsAsync<KeeperConfigException>(() => KeeperHost.StartAsync(quorum));
        Assert.Contains("quorum mode", e2.Message);
        Assert.Contains("QuorumMember", e2.Message);
    }

    [Fact]
    public void Missing_myid_initLimit_or_an_unknown_id_are_errors_as_upstream()
    {
        File.Delete(Path.Combine(_dir, "myid"));
        var noMyId = KeeperConfig.Parse($"dataDir={_dir}\n" + Three);
        Assert.Contains("myid", Assert.Throws<KeeperConfigException>(() => noMyId.Quorum.Validate(noMyId)).Message);
        var noInit = Parse("syncLimit=5\nserver.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\n");
        Assert.Contains("initLimit is not set", Assert.Throws<KeeperConfigException>(() => noInit.Quorum.Validate(noInit)).Message);
        var stranger = Parse(Three, myid: "9");
        Assert.Contains("myid 9", Assert.Throws<KeeperConfigException>(() => stranger.Quorum.Validate(stranger)).Message);
        Assert.Throws<KeeperConfigException>(() => KeeperConfig.Parse("server.1=127.0.0.1:2888\n"));
        Assert.Throws<KeeperConfigException>(() => KeeperConfig.Parse("server.1=127.0.0.1:2888:3888:witness\n"));
        Assert.Throws<KeeperConfigException>(() => KeeperConfig.Parse("server.x=127.0.0.1:2888:3888\n"));
        Assert.Throws<KeeperConfigException>(() => KeeperConfig.Parse("server.1=127.0.0.1:2888:3888|127.0.0.2:2888:3888\n"));
    }
}
