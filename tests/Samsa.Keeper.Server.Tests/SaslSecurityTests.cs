using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Samsa.Keeper.Protocol;
using Samsa.Keeper.Protocol.Records;
using Xunit;

namespace Samsa.Keeper.Server.Tests;

/// <summary>SASL DIGEST-MD5 as users run it: Debian's zkCli.sh with a JAAS Client section against
/// `samsa keeper` and against Apache ZooKeeper 3.8 started with the same zoo.cfg, JAAS file and
/// system properties; both must give the same outcome. Plus hostile input on the SASL path.</summary>
public sealed class SaslSecurityTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "keeper-sasl-" + Guid.NewGuid().ToString("N"));

    public SaslSecurityTests() { Directory.CreateDirectory(_root); }

    public void Dispose()
    {
        try { Directory.Delete(_root, true); } catch (IOException) { }
    }

    private const string ServerJaas = """
        Server {
               org.apache.zookeeper.server.auth.DigestLoginModule required
               user_super="adminsecret"
               user_bob="bobsecret"
               user_alice="alicesecret";
        };
        """;

    private string ClientJaas(string user, string password)
    {
        string path = Path.Combine(_root, $"client-{user}-{Guid.NewGuid():N}.conf");
        File.WriteAllText(path, $$"""
            // the broker-style file: a Client section read by zkCli / ZooKeeperSaslClient
            Client {
                   org.apache.zookeeper.server.auth.DigestLoginModule required
                   username="{{user}}"
                   password="{{password}}";
            };
            """);
        return path;
    }

    private string ServerJaasFile()
    {
        string path = Path.Combine(_root, "server-jaas.conf");
        File.WriteAllText(path, ServerJaas);
        return path;
    }

    internal static (int Code, string Output) ZkCli(string address, string clientFlags, params string[] command)
    {
        ExternalTools.RequireZkCli();
        var psi = new ProcessStartInfo(ExternalTools.ZkCli) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.Environment["CLIENT_JVMFLAGS"] = clientFlags;
        psi.ArgumentList.Add("-server");
        psi.ArgumentList.Add(address);
        foreach (var a in command) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(60_000))
        {
            try { p.Kill(true); } catch (InvalidOperationException) { }
            throw new TimeoutException($"zkCli {string.Join(' ', command)} did not finish: {o.Result}{e.Result}");
        }
        return (p.ExitCode, o.Result + e.Result);
    }

    /// <summary>What a user reads from zkCli's answer.</summary>
    internal static string Outcome(string output)
    {
        if (output.Contains("Created ", StringComparison.Ordinal)) return "created";
        if (output.Contains("Insufficient permission", StringComparison.Ordinal)) return "denied";
        if (output.Contains("AuthFailed", StringComparison.Ordinal)) return "auth-failed";
        if (output.Contains("SessionClosedRequireSaslAuth", StringComparison.Ordinal) || output.Contains("SESSIONCLOSEDREQUIRESASLAUTH", StringComparison.OrdinalIgnoreCase)) return "sasl-required";
        if (output.Contains("ConnectionLoss", StringComparison.Ordinal) || output.Contains("Session expired", StringComparison.Ordinal)) return "connection-lost";
        if (output.Contains("secret-data", StringComparison.Ordinal)) return "read";
        if (output.Contains("'sasl,'", StringComparison.Ordinal)) return "acl:" + string.Join(";", output.Split('\n').Where(l => l.StartsWith("'", StringComparison.Ordinal)).Select(l => l.Trim()));
        return "other";
    }

    private static string SaslFlags(string jaas) => $"-Djava.security.auth.login.config={jaas} -Dzookeeper.sasl.client=true";

    private sealed record Servers(ServerProcess Samsa, ServerProcess Upstream) : IDisposable
    {
        public void Dispose() { Samsa.Dispose(); Upstream.Dispose(); }
        public IEnumerable<(string Name, string Address)> Both => new[] { ("samsa", $"127.0.0.1:{Samsa.Port}"), ("upstream", $"127.0.0.1:{Upstream.Port}") };
    }

    /// <summary>Both servers on the same zoo.cfg lines and system properties (for samsa as -D
    /// arguments of `samsa keeper`, for upstream as JVM flags).</summary>
    private async Task<Servers> StartBothAsync(string cfgExtra, params string[] props)
    {
        if (ServerProcess.UpstreamUnavailable() is { } why) throw new InvalidOperationException("upstream ZooKeeper is needed: " + why);
        string d1 = Path.Combine(_root, "samsa-" + Guid.NewGuid().ToString("N")), d2 = Path.Combine(_root, "up-" + Guid.NewGuid().ToString("N"));
        string cfg = ServerProcess.WriteConfig(_root, d1, 0, cfgExtra);
        var samsaTask = ServerProcess.StartSamsaAsync(cfg, props);
        var upTask = ServerProcess.StartUpstreamAsync(_root, d2, cfgExtra, props);
        var samsa = await samsaTask;
        var up = await upTask;
        Assert.True(samsa.Started, "samsa keeper did not start:\n" + samsa.Log);
        Assert.True(up.Started, "upstream did not start:\n" + up.Log);
        return new Servers(samsa, up);
    }

    private const string SaslProvider = "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n";

    [Fact]
    public async Task ZkCli_sasl_digest_same_outcomes_on_keeper_and_upstream()
    {
        string jaas = ServerJaasFile();
        using var s = await StartBothAsync(SaslProvider, $"-Djava.security.auth.login.config={jaas}", "-Dzookeeper.superUser=super");
        string bob = SaslFlags(ClientJaas("bob", "bobsecret"));
        string alice = SaslFlags(ClientJaas("alice", "alicesecret"));
        string wrong = SaslFlags(ClientJaas("bob", "not-the-password"));
        string unknown = SaslFlags(ClientJaas("mallory", "x"));
        string super = SaslFlags(ClientJaas("super", "adminsecret"));
        string anonymous = "-Dzookeeper.sasl.client=false";
        var results = new Dictionary<string, List<string>>();
        foreach (var (name, addr) in s.Both)
        {
            var r = new List<string>
            {
                Outcome(ZkCli(addr, bob, "create", "/secured", "secret-data", "sasl:bob:cdrwa").Output),
                Outcome(ZkCli(addr, bob, "get", "/secured").Output),
                Outcome(ZkCli(addr, anonymous, "get", "/secured").Output),
                Outcome(ZkCli(addr, alice, "get", "/secured").Output),
                Outcome(ZkCli(addr, wrong, "get", "/secured").Output),
                Outcome(ZkCli(addr, unknown, "get", "/secured").Output),
                Outcome(ZkCli(addr, super, "get", "/secured").Output),
                Outcome(ZkCli(addr, bob, "getAcl", "/secured").Output),
                // "auth" expands to the caller's sasl id
                Outcome(ZkCli(addr, alice, "create", "/alices", "secret-data", "auth::cdrwa").Output),
                Outcome(ZkCli(addr, alice, "getAcl", "/alices").Output),
                Outcome(ZkCli(addr, bob, "get", "/alices").Output),
            };
            results[name] = r;
        }
        var expected = new List<string> { "created", "read", "denied", "denied", "auth-failed", "auth-failed", "read", "acl:'sasl,'bob", "created", "acl:'sasl,'alice", "denied" };
        Assert.Equal(expected, results["upstream"]);
        Assert.Equal(results["upstream"], results["samsa"]);
        Assert.True(await s.Samsa.LogContainsAsync("failed to SASL authenticate"), s.Samsa.Log);
    }

    [Fact]
    public async Task Session_require_client_sasl_auth_closes_unauthenticated_sessions_as_upstream()
    {
        string jaas = ServerJaasFile();
        using var s = await StartBothAsync(SaslProvider + "sessionRequireClientSASLAuth=true\n", $"-Djava.security.auth.login.config={jaas}");
        string bob = SaslFlags(ClientJaas("bob", "bobsecret"));
        string wrong = SaslFlags(ClientJaas("bob", "nope"));
        var results = new Dictionary<string, List<string>>();
        foreach (var (name, addr) in s.Both)
        {
            results[name] = new List<string>
            {
                Outcome(ZkCli(addr, bob, "create", "/e", "secret-data").Output),
                Outcome(ZkCli(addr, "-Dzookeeper.sasl.client=false", "get", "/e").Output),
                Outcome(ZkCli(addr, wrong, "get", "/e").Output),
                Outcome(ZkCli(addr, bob, "get", "/e").Output),
            };
        }
        Assert.Equal("created", results["upstream"][0]);
        Assert.Equal("read", results["upstream"][3]);
        Assert.NotEqual("read", results["upstream"][1]);
        Assert.Equal(results["upstream"], results["samsa"]);
        Assert.True(await s.Samsa.LogContainsAsync("does not match with any of the expected authentication scheme"), s.Samsa.Log);
    }

    [Fact]
    public async Task Enforce_auth_without_a_provider_stops_both_servers_at_start()
    {
        string d1 = Path.Combine(_root, "a"), d2 = Path.Combine(_root, "b");
        string extra = "enforce.auth.enabled=true\nenforce.auth.schemes=sasl\n";
        using var samsa = await ServerProcess.StartSamsaAsync(ServerProcess.WriteConfig(_root, d1, 0, extra));
        Assert.False(samsa.Started);
        Assert.Contains("Authentication scheme sasl is not available", samsa.Log);
        if (ServerProcess.UpstreamUnavailable() is null)
        {
            using var up = await ServerProcess.StartUpstreamAsync(_root, d2, extra);
            Assert.False(up.Started, up.Log);
            Assert.Contains("Authentication scheme sasl is not available", up.Log);
        }
    }

    [Theory]
    [InlineData("authProvider.1=com.example.MyAuthProvider\n", "authProvider.1=com.example.MyAuthProvider")]
    [InlineData("requireClientAuthScheme=kerberos\n", "requireClientAuthScheme=kerberos")]
    public async Task Security_settings_the_keeper_cannot_honour_stop_it_with_one_line(string cfg, string expected)
    {
        using var samsa = await ServerProcess.StartSamsaAsync(ServerProcess.WriteConfig(_root, Path.Combine(_root, "d"), 0, cfg));
        Assert.False(samsa.Started);
        var lines = samsa.Log.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines, l => l.Contains(expected, StringComparison.Ordinal));
        Assert.True(lines.Length <= 2, samsa.Log);
    }

    [Theory]
    [InlineData("SERVER_JVMFLAGS")]
    [InlineData("JVMFLAGS")]
    public async Task System_properties_come_from_the_jvm_flags_variables_zkServer_sh_uses(string variable)
    {
        // a JAAS file without a Server section stops the start: proof that the flag was read
        string jaas = ClientJaas("bob", "x");
        string cfg = ServerProcess.WriteConfig(_root, Path.Combine(_root, "d"), 0, SaslProvider);
        var psi = new ProcessStartInfo(Samsa.Testing.TestEnvironment.SamsaExecutable()) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "keeper", "--config", cfg }) psi.ArgumentList.Add(a);
        psi.Environment[variable] = $"-Xmx64m -Djava.security.auth.login.config={jaas} -Dzookeeper.superUser=admin";
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEndAsync();
        using var cts = new CancellationTokenSource(60_000);
        await p.WaitForExitAsync(cts.Token);
        Assert.Equal(1, p.ExitCode);
        Assert.Contains($"No JAAS configuration section named 'Server' was found in '{jaas}'.", await err);
        Assert.Equal("", await output);
    }

    [Fact]
    public async Task Jaas_file_without_server_section_stops_the_keeper_as_upstream()
    {
        string jaas = ClientJaas("bob", "x");
        using var samsa = await ServerProcess.StartSamsaAsync(ServerProcess.WriteConfig(_root, Path.Combine(_root, "d"), 0, SaslProvider), $"-Djava.security.auth.login.config={jaas}");
        Assert.False(samsa.Started);
        Assert.Contains("No JAAS configuration section named 'Server' was found", samsa.Log);
    }

    // ---------------------------------------------------------------- hostile input, raw sockets

    private static byte[] Framed(byte[] body)
    {
        var f = new byte[body.Length + 4];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(f, body.Length);
        body.CopyTo(f, 4);
        return f;
    }

    private static byte[] Request(int xid, int type, IJuteRecord body)
    {
        var h = new RequestHeader { Xid = xid, Type = type };
        var b = new byte[h.Size() + body.Size()];
        var w = new JuteWriter(b);
        h.Write(ref w);
        body.Write(ref w);
        return b;
    }

    private static async Task<byte[]?> ReadFrameAsync(NetworkStream s, CancellationToken ct)
    {
        var len = new byte[4];
        try
        {
            await s.ReadExactlyAsync(len, ct);
            var b = new byte[System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(len)];
            await s.ReadExactlyAsync(b, ct);
            return b;
        }
        catch (Exception e) when (e is EndOfStreamException or IOException) { return null; }
    }

    private static async Task<(TcpClient Client, NetworkStream Stream)> ConnectSessionAsync(IPEndPoint ep)
    {
        var c = new TcpClient();
        await c.ConnectAsync(ep);
        var s = c.GetStream();
        await s.WriteAsync(Framed(new ConnectRequest { TimeOut = 30000, Passwd = new byte[16] }.ToBytes()));
        using var cts = new CancellationTokenSource(10000);
        Assert.NotNull(await ReadFrameAsync(s, cts.Token));
        return (c, s);
    }

    private async Task<KeeperHost> StartInProcessAsync(string extraCfg)
    {
        string jaas = ServerJaasFile();
        var cfg = KeeperConfig.Parse($"clientPort=0\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n{SaslProvider}{extraCfg}");
        cfg.Apply("java.security.auth.login.config", jaas);
        return await KeeperHost.StartAsync(cfg);
    }

    [Theory]
    [InlineData("garbage-first")]      // a non-empty first token (DIGEST-MD5 has no initial response)
    [InlineData("garbage-response")]   // a challenge answered with nonsense
    [InlineData("binary-response")]    // not even UTF-8
    public async Task Garbage_sasl_tokens_get_auth_failed_and_a_closed_connection(string kind)
    {
        await using var host = await StartInProcessAsync("");
        var (c, s) = await ConnectSessionAsync(host.LocalEndPoint);
        using var _ = c;
        using var cts = new CancellationTokenSource(10000);
        if (kind != "garbage-first")
        {
            await s.WriteAsync(Framed(Request(1, OpCode.Sasl, new GetSASLRequest { Token = Array.Empty<byte>() })));
            var challenge = await ReadFrameAsync(s, cts.Token);
            Assert.NotNull(challenge);
            Assert.Contains("realm=\"zk-sasl-md5\"", Encoding.UTF8.GetString(challenge!));
        }
        byte[] token = kind switch
        {
            "binary-response" => new byte[] { 0xff, 0xfe, 0x00, 0x80, 0xc3 },
            _ => Encoding.UTF8.GetBytes("username=\"bob\",nonce=\"not-yours\",response=zz"),
        };
        await s.WriteAsync(Framed(Request(2, OpCode.Sasl, new GetSASLRequest { Token = token })));
        var reply = await ReadFrameAsync(s, cts.Token);
        Assert.NotNull(reply);
        var r = new JuteReader(reply!);
        var h = ReplyHeader.Read(ref r);
        Assert.Equal(2, h.Xid);
        Assert.Equal((int)Code.AuthFailed, h.Err);
        Assert.Null(await ReadFrameAsync(s, cts.Token)); // then the server closes
    }

    [Fact]
    public async Task Sasl_packet_before_connect_closes_the_connection_with_one_log_line()
    {
        await using var host = await StartInProcessAsync("");
        using var c = new TcpClient();
        await c.ConnectAsync(host.LocalEndPoint);
        var s = c.GetStream();
        await s.WriteAsync(Framed(Request(1, OpCode.Sasl, new GetSASLRequest { Token = Array.Empty<byte>() })));
        using var cts = new CancellationTokenSource(10000);
        Assert.Null(await ReadFrameAsync(s, cts.Token));
        Assert.Equal(0, host.Server.SessionCount);
    }

    [Fact]
    public async Task Unauthenticated_requests_under_enforcement_get_session_closed_require_sasl_auth()
    {
        await using var host = await StartInProcessAsync("sessionRequireClientSASLAuth=true\n");
        var (c, s) = await ConnectSessionAsync(host.LocalEndPoint);
        using var _ = c;
        await s.WriteAsync(Framed(Request(1, OpCode.GetData, new GetDataRequest { Path = "/", Watch = false })));
        using var cts = new CancellationTokenSource(10000);
        var reply = await ReadFrameAsync(s, cts.Token);
        var r = new JuteReader(reply!);
        Assert.Equal((int)Code.SessionClosedRequireSaslAuth, ReplyHeader.Read(ref r).Err);
        Assert.Null(await ReadFrameAsync(s, cts.Token));
    }

    [Fact]
    public void Digest_md5_client_and_server_agree_and_a_wrong_password_fails()
    {
        var server = new DigestMd5.Server(u => u == "bob" ? "pw" : null);
        var client = new DigestMd5.Client("bob", "pw");
        var challenge = server.EvaluateResponse(client.InitialResponse());
        var rsp = client.EvaluateChallenge(challenge)!;
        var rspauth = server.EvaluateResponse(rsp);
        Assert.True(server.IsComplete);
        Assert.Equal("bob", server.AuthorizationId);
        Assert.Null(client.EvaluateChallenge(rspauth));
        Assert.True(client.IsComplete);

        var server2 = new DigestMd5.Server(u => u == "bob" ? "pw" : null);
        var bad = new DigestMd5.Client("bob", "other");
        var rsp2 = bad.EvaluateChallenge(server2.EvaluateResponse(Array.Empty<byte>()))!;
        Assert.Throws<SaslAuthenticationException>(() => server2.EvaluateResponse(rsp2));
        Assert.False(server2.IsComplete);
    }
}
