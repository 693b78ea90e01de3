using System.Runtime.CompilerServices;
using Samsa.Kafka.Broker.Config;
using Samsa.Keeper.Client;
using Samsa.Keeper.Protocol;
using Samsa.Keeper.Protocol.Records;

namespace Samsa.Kafka.Broker.Cluster.ZooKeeper;

/// <summary>
/// How a broker authenticates to ZooKeeper and which ACLs its znodes get, as upstream's
/// KafkaServer.initZkClient / KafkaZkClient / ZkData do:
///  - TLS (KIP-515): zookeeper.ssl.client.enable, zookeeper.clientCnxnSocket, zookeeper.ssl.keystore.*,
///    zookeeper.ssl.truststore.* (PKCS12 or PEM), zookeeper.ssl.protocol / enabled.protocols /
///    cipher.suites, zookeeper.ssl.endpoint.identification.algorithm (HTTPS = host name checked).
///  - SASL DIGEST-MD5 from the JAAS file's Client section (zookeeper.sasl.clientconfig), as
///    ZooKeeperSaslClient; no Client section means no SASL, as upstream.
///  - zookeeper.set.acl=true: znodes are created with CREATOR_ALL (the broker's sasl/x509 id) plus
///    world READ, and CREATOR_ALL only under the sensitive roots (/config/users, /config/brokers,
///    /delegation_token); /consumers stays open (ZkData.defaultAcls). Without SASL or a TLS client
///    certificate the broker refuses to start, as upstream's SecurityException.
/// Differs from upstream: the JAAS file is found through the broker config key
/// java.security.auth.login.config or -Djava.security.auth.login.config in KAFKA_OPTS (upstream:
/// the JVM property); zookeeper.ssl.* are not read from JVM system properties; crl/ocsp=true and
/// a clientCnxnSocket other than ClientCnxnSocketNetty/NIO stop the start; Kerberos is refused.
/// </summary>
public sealed class ZkClientSecurity
{
    public KeeperClientTls? Tls { get; private init; }
    public KeeperClientSasl? Sasl { get; private init; }
    public bool SecureAcls { get; private init; }

    private static readonly ConditionalWeakTable<KeeperClient, ZkClientSecurity> BySession = new();
    private static readonly string[] SensitiveRootPaths = { "/config/users", "/config/brokers", "/delegation_token" };

    /// <exception cref="ConfigValueException">A setting that cannot be honoured (one line).</exception>
    public static ZkClientSecurity FromConfig(BrokerConfig config)
    {
        string? S(string k) => config.GetString(k) is { Length: > 0 } v ? v : null;
        KeeperClientTls? tls = null;
        if (config.Get("zookeeper.ssl.client.enable") is true)
        {
            if (S("zookeeper.clientCnxnSocket") is { } sock && sock is not ("org.apache.zookeeper.ClientCnxnSocketNetty" or "org.apache.zookeeper.ClientCnxnSocketNIO"))
                throw new ConfigValueException($"zookeeper.clientCnxnSocket={sock} is not supported (the ZooKeeper client has one socket implementation, as ClientCnxnSocketNetty)");
            foreach (var k in new[] { "zookeeper.ssl.crl.enable", "zookeeper.ssl.ocsp.enable" })
                if (config.Get(k) is true) throw new ConfigValueException($"{k}=true: certificate revocation checks are not supported; remove it");
            // Kafka's names onto ZooKeeper's client properties (KafkaConfig.zkClientConfigFromKafkaConfig)
            var map = new Dictionary<string, string?>
            {
                ["zookeeper.ssl.keyStore.location"] = S("zookeeper.ssl.keystore.location"),
                ["zookeeper.ssl.keyStore.password"] = S("zookeeper.ssl.keystore.password"),
                ["zookeeper.ssl.keyStore.type"] = S("zookeeper.ssl.keystore.type"),
                ["zookeeper.ssl.trustStore.location"] = S("zookeeper.ssl.truststore.location"),
                ["zookeeper.ssl.trustStore.password"] = S("zookeeper.ssl.truststore.password"),
                ["zookeeper.ssl.trustStore.type"] = S("zookeeper.ssl.truststore.type"),
                ["zookeeper.ssl.protocol"] = S("zookeeper.ssl.protocol"),
                ["zookeeper.ssl.enabledProtocols"] = S("zookeeper.ssl.enabled.protocols"),
                ["zookeeper.ssl.ciphersuites"] = S("zookeeper.ssl.cipher.suites"),
                // upstream: "HTTPS" (case-insensitive) turns host name verification on, anything else off
                ["zookeeper.ssl.hostnameVerification"] = string.Equals(S("zookeeper.ssl.endpoint.identification.algorithm"), "HTTPS", StringComparison.OrdinalIgnoreCase) ? "true" : "false",
            };
            try { tls = KeeperClientTls.FromProperties(k => map.GetValueOrDefault(k)); }
            catch (TlsStoreException e) { throw new ConfigValueException(e.Message.Replace("zookeeper.ssl.keyStore.location", "zookeeper.ssl.keystore.location").Replace("zookeeper.ssl.trustStore.location", "zookeeper.ssl.truststore.location")); }
        }
        KeeperClientSasl? sasl = null;
        string? jaasPath = S("java.security.auth.login.config") ?? JvmProperty("java.security.auth.login.config");
        bool saslClient = !string.Equals(S("zookeeper.sasl.client") ?? JvmProperty("zookeeper.sasl.client"), "false", StringComparison.OrdinalIgnoreCase);
        if (jaasPath is not null && saslClient)
        {
            string section = S("zookeeper.sasl.clientconfig") ?? JvmProperty("zookeeper.sasl.clientconfig") ?? "Client";
            JaasFile jaas;
            try { jaas = JaasFile.Load(jaasPath); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
            {
                throw new ConfigValueException($"cannot read JAAS configuration {jaasPath}: {e.Message}");
            }
            // upstream JaasUtils.isZkSaslEnabled: SASL to ZooKeeper only when the section exists
            if (jaas.Section(section) is not null)
            {
                try { sasl = KeeperClientSasl.FromJaas(jaas, jaasPath, section); }
                catch (FormatException e) { throw new ConfigValueException(e.Message); }
            }
        }
        bool secureAcls = config.Get("zookeeper.set.acl") is true;
        if (secureAcls && sasl is null && tls?.ClientCertificate is null)
            throw new ConfigValueException("zookeeper.set.acl is true, but ZooKeeper client TLS configuration identifying at least zookeeper.ssl.client.enable, "
                + "zookeeper.clientCnxnSocket, and zookeeper.ssl.keystore.location was not present and the verification of the JAAS login file failed "
                + $"(no '{S("zookeeper.sasl.clientconfig") ?? "Client"}' section in {jaasPath ?? "an unset java.security.auth.login.config"})");
        return new ZkClientSecurity { Tls = tls, Sasl = sasl, SecureAcls = secureAcls };
    }

    /// <summary>A -Dname=value in KAFKA_OPTS (what kafka-server-start.sh users set).</summary>
    private static string? JvmProperty(string name)
    {
        string? opts = Environment.GetEnvironmentVariable("KAFKA_OPTS");
        if (string.IsNullOrWhiteSpace(opts)) return null;
        string prefix = "-D" + name + "=";
        foreach (var f in opts.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))
            if (f.StartsWith(prefix, StringComparison.Ordinal)) return f.Substring(prefix.Length);
        return null;
    }

    public KeeperClientOptions Options(TimeSpan sessionTimeout) => new() { SessionTimeout = sessionTimeout, Tls = Tls, Sasl = Sasl };

    /// <summary>Remembers which ACL policy znodes created through <paramref name="zk"/> follow.</summary>
    public KeeperClient Track(KeeperClient zk)
    {
        BySession.AddOrUpdate(zk, this);
        return zk;
    }

    /// <summary>Upstream ZkData.defaultAcls(isSecure, path) for a znode created through <paramref name="zk"/>.</summary>
    public static List<ACL> DefaultAcls(KeeperClient zk, string path) =>
        DefaultAcls(BySession.TryGetValue(zk, out var s) && s.SecureAcls, path);

    public static List<ACL> DefaultAcls(bool secure, string path)
    {
        // the old consumer path stays open: consumers of other principals write under it
        if (!secure || path == "/consumers") return Acls.OpenAclUnsafe;
        var acls = Acls.CreatorAllAcl;
        if (!SensitiveRootPaths.Any(path.StartsWith)) acls.AddRange(Acls.ReadAclUnsafe);
        return acls;
    }
}
