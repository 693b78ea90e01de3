// The sec-* scenarios: the target's SSL and SASL_SSL listeners and ACLs, described in
// compat/lib/security.py (run-compat.sh passes them in COMPAT_SSL_ADDR, COMPAT_SASL_SSL_ADDR,
// COMPAT_CA_FILE and the user variables; without them every sec-* scenario is skipped).
using Confluent.Kafka;
using Samsa.Compat;
using static Samsa.Compat.CompatRunner;
using Confluent.Kafka.Admin;

namespace Samsa.Compat.ConfluentKafka;

public static partial class Program
{
    static string Env(string name) => Environment.GetEnvironmentVariable(name) ?? "";
    static readonly string SslAddr = Env("COMPAT_SSL_ADDR");
    static readonly string SaslSslAddr = Env("COMPAT_SASL_SSL_ADDR");
    static readonly string CaFile = Env("COMPAT_CA_FILE");
    static readonly (string User, string Password) SecAdmin = (Env("COMPAT_ADMIN_USER"), Env("COMPAT_ADMIN_PASSWORD"));
    static readonly (string User, string Password) SecUser = (Env("COMPAT_USER"), Env("COMPAT_PASSWORD"));

    static void RequireSec(bool tls = false, bool sasl = false)
    {
        if (tls && (SslAddr.Length == 0 || CaFile.Length == 0))
            throw new SkipException("this target has no SSL listener (COMPAT_SSL_ADDR unset)");
        if (sasl && (SaslSslAddr.Length == 0 || CaFile.Length == 0 || SecAdmin.User.Length == 0 || SecUser.User.Length == 0))
            throw new SkipException("this target has no SASL_SSL listener with users (COMPAT_SASL_SSL_ADDR unset)");
    }

    /// <summary>The settings a user writes for a secured listener.</summary>
    static void Secure(ClientConfig c, string addr, SecurityProtocol protocol, SaslMechanism? mechanism = null,
        string? user = null, string? password = null, string? ca = null)
    {
        c.BootstrapServers = addr;
        c.BrokerAddressFamily = BrokerAddressFamily.V4;
        c.SecurityProtocol = protocol;
        c.SslCaLocation = ca ?? CaFile;
        if (mechanism is { } m)
        {
            c.SaslMechanism = m;
            if (m == SaslMechanism.OAuthBearer)
            {
                // librdkafka's built-in unsecured JWT (development), checked by the broker's
                // unsecured validator.
                c.Set("enable.sasl.oauthbearer.unsecure.jwt", "true");
                c.SaslOauthbearerConfig = $"principal={user}";
            }
            else
            {
                c.SaslUsername = user;
                c.SaslPassword = password;
            }
        }
    }

    static async Task SecuredRoundTrip(Action<ClientConfig> secure, string name, int n = 20)
    {
        var topic = await CreateTopic(Topic($"{name}-{Guid.NewGuid().ToString("N")[..8]}"), 1);
        var pc = new ProducerConfig { LingerMs = 5, MessageTimeoutMs = 15000 };
        secure(pc);
        var values = Enumerable.Range(0, n).Select(i => $"{name}-{i}").ToList();
        using (var p = new ProducerBuilder<byte[]?, byte[]?>(pc).Build())
        {
            foreach (var v in values)
                await p.ProduceAsync(new TopicPartition(topic, 0), new Message<byte[]?, byte[]?> { Value = B(v) });
        }
        var cc = new ConsumerConfig { GroupId = $"{topic}-g", AutoOffsetReset = AutoOffsetReset.Earliest, EnableAutoCommit = false };
        secure(cc);
        using var c = new ConsumerBuilder<byte[]?, byte[]?>(cc).Build();
        c.Assign(new TopicPartitionOffset(topic, 0, 0));
        var got = new List<string>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (got.Count < n && DateTime.UtcNow < deadline)
        {
            var r = c.Consume(TimeSpan.FromMilliseconds(500));
            if (r is { Message: not null }) got.Add(S(r.Message.Value));
        }
        c.Close();
        Check(got.SequenceEqual(values), $"read back {got.Count} of {n} records, or in another order");
    }

    /// <summary>Connects with the settings and returns the errors librdkafka reports; fails if it connects.</summary>
    static List<Error> ConnectErrors(Action<ClientConfig> secure, string what)
    {
        var errors = new List<Error>();
        var ac = new AdminClientConfig();
        secure(ac);
        using var admin = new AdminClientBuilder(ac).SetErrorHandler((_, e) => { lock (errors) errors.Add(e); }).Build();
        try
        {
            admin.GetMetadata(TimeSpan.FromSeconds(8));
            throw new FailException($"{what}: metadata succeeded");
        }
        catch (KafkaException e)
        {
            lock (errors) errors.Add(e.Error);
        }
        lock (errors) return [.. errors];
    }

    static Task SecTlsProduceConsume()
    {
        RequireSec(tls: true);
        return SecuredRoundTrip(c => Secure(c, SslAddr, SecurityProtocol.Ssl), "sec-tls");
    }

    static Task SecTlsUntrustedCa()
    {
        RequireSec(tls: true);
        var errors = ConnectErrors(c => Secure(c, SslAddr, SecurityProtocol.Ssl, ca: "/etc/ssl/certs/ca-certificates.crt"), "an untrusted CA");
        Check(errors.Any(e => e.Reason.Contains("SSL") || e.Reason.Contains("certificate")),
            $"expected an SSL handshake error, got {string.Join("; ", errors.Select(e => e.Reason)).Truncate(200)}");
        return Task.CompletedTask;
    }

    static Task SecSasl(SaslMechanism mechanism)
    {
        RequireSec(sasl: true);
        return SecuredRoundTrip(c => Secure(c, SaslSslAddr, SecurityProtocol.SaslSsl, mechanism, SecAdmin.User, SecAdmin.Password),
            $"sec-{mechanism.ToString().ToLowerInvariant()}");
    }

    static Task SecSaslWrongPassword()
    {
        RequireSec(sasl: true);
        foreach (var m in new[] { SaslMechanism.Plain, SaslMechanism.ScramSha512 })
        {
            var errors = ConnectErrors(c => Secure(c, SaslSslAddr, SecurityProtocol.SaslSsl, m, SecUser.User, "not-" + SecUser.Password), $"{m} with a wrong password");
            Check(errors.Any(e => e.Code == ErrorCode.Local_Authentication),
                $"{m}: expected an authentication error, got {string.Join("; ", errors.Select(e => $"{e.Code}: {e.Reason}")).Truncate(200)}");
        }
        return Task.CompletedTask;
    }

    static async Task SecAclTopic()
    {
        RequireSec(sasl: true);
        var topic = await CreateTopic(Topic($"sec-acl-{Guid.NewGuid().ToString("N")[..8]}"), 1);
        var group = topic + "-g";
        var principal = "User:" + SecUser.User;
        void AsUser(ClientConfig c) => Secure(c, SaslSslAddr, SecurityProtocol.SaslSsl, SaslMechanism.ScramSha256, SecUser.User, SecUser.Password);
        var ac = new AdminClientConfig();
        Secure(ac, SaslSslAddr, SecurityProtocol.SaslSsl, SaslMechanism.ScramSha512, SecAdmin.User, SecAdmin.Password);
        using var admin = new AdminClientBuilder(ac).Build();
        AclBinding Allow(ResourceType type, string name, AclOperation op) => new()
        {
            Pattern = new ResourcePattern { Type = type, Name = name, ResourcePatternType = ResourcePatternType.Literal },
            Entry = new AccessControlEntry { Principal = principal, Host = "*", Operation = op, PermissionType = AclPermissionType.Allow },
        };
        try
        {
            var pc = new ProducerConfig { MessageTimeoutMs = 8000 };
            AsUser(pc);
            using (var p = new ProducerBuilder<byte[]?, byte[]?>(pc).Build())
            {
                try
                {
                    await p.ProduceAsync(new TopicPartition(topic, 0), new Message<byte[]?, byte[]?> { Value = B("denied") });
                    throw new FailException("write without an ACL succeeded");
                }
                catch (ProduceException<byte[]?, byte[]?> e)
                {
                    Check(e.Error.Code == ErrorCode.TopicAuthorizationFailed, $"write without an ACL: expected TopicAuthorizationFailed, got {e.Error.Code}");
                }
            }
            await admin.CreateAclsAsync([Allow(ResourceType.Topic, topic, AclOperation.Write), Allow(ResourceType.Topic, topic, AclOperation.Read),
                Allow(ResourceType.Group, group, AclOperation.Read)]);
            var described = await admin.DescribeAclsAsync(new AclBindingFilter
            {
                PatternFilter = new ResourcePatternFilter { Type = ResourceType.Topic, Name = topic, ResourcePatternType = ResourcePatternType.Literal },
                EntryFilter = new AccessControlEntryFilter { Principal = principal, Operation = AclOperation.Any, PermissionType = AclPermissionType.Any },
            });
            Check(described.AclBindings.Count == 2, $"DescribeAcls shows {described.AclBindings.Count} topic ACLs, expected 2");
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
            while (true)
            {
                using var p = new ProducerBuilder<byte[]?, byte[]?>(pc).Build();
                try
                {
                    await p.ProduceAsync(new TopicPartition(topic, 0), new Message<byte[]?, byte[]?> { Value = B("allowed") });
                    break;
                }
                catch (ProduceException<byte[]?, byte[]?>) when (DateTime.UtcNow < deadline)
                {
                    await Task.Delay(500);
                }
            }
            var cc = new ConsumerConfig { GroupId = group, AutoOffsetReset = AutoOffsetReset.Earliest, EnableAutoCommit = false };
            AsUser(cc);
            using var c = new ConsumerBuilder<byte[]?, byte[]?>(cc).Build();
            c.Subscribe(topic);
            string? got = null;
            var end = DateTime.UtcNow + TimeSpan.FromSeconds(20);
            while (got is null && DateTime.UtcNow < end)
            {
                try
                {
                    var r = c.Consume(TimeSpan.FromMilliseconds(500));
                    if (r is { Message: not null }) got = S(r.Message.Value);
                }
                catch (ConsumeException)
                {
                    // ACLs may take a moment to reach every broker.
                }
            }
            c.Close();
            Check(got == "allowed", $"after granting READ the record was not consumed (got {got ?? "nothing"})");
        }
        finally
        {
            await admin.DeleteAclsAsync([new AclBindingFilter
            {
                PatternFilter = new ResourcePatternFilter { Type = ResourceType.Any, Name = null, ResourcePatternType = ResourcePatternType.Any },
                EntryFilter = new AccessControlEntryFilter { Principal = principal, Operation = AclOperation.Any, PermissionType = AclPermissionType.Any },
            }]);
        }
    }

    static string Truncate(this string s, int n) => s.Length > n ? s[..n] : s;
}
