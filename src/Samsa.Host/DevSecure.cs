using System.Globalization;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Samsa.Kafka.Broker;
using Samsa.Testing;

namespace Samsa.Host;

/// <summary>
/// <c>samsa dev --secure</c>: a self-signed CA and a broker certificate (PEM) made once in
/// DATA/tls and reused on later runs (the broker certificate is remade when it expires or the
/// --host changes), an SSL listener beside PLAINTEXT on every dev broker (ssl.client.auth=requested:
/// clients may add a certificate for mutual TLS), and a client configuration printed and written to
/// DATA/tls/client.properties for a user to paste; a SASL_SSL listener with the dev users, the ACL
/// authorizer, and DATA/tls/client-sasl.properties. Brokers still talk to each other over PLAINTEXT.
/// </summary>
internal sealed class DevSecure
{
    private DevSecure(string dir) => Dir = dir;

    public string Dir { get; }
    public string CaPath => Path.Combine(Dir, "ca.pem");
    private string CaKeyPath => Path.Combine(Dir, "ca.key");
    private string BrokerPath => Path.Combine(Dir, "broker.pem");     // key + certificate + CA, one PEM file
    private string HostPath => Path.Combine(Dir, "broker.host");
    public string ClientCertPath => Path.Combine(Dir, "client.pem");
    public string ClientKeyPath => Path.Combine(Dir, "client.key");

    public static DevSecure Prepare(string data, string host)
    {
        var secure = new DevSecure(Path.Combine(data, "tls"));
        Directory.CreateDirectory(secure.Dir);
        secure.EnsureCertificates(host);
        return secure;
    }

    private void EnsureCertificates(string host)
    {
        TestCertificateAuthority ca;
        bool newCa = !File.Exists(CaPath) || !File.Exists(CaKeyPath);
        if (newCa)
        {
            ca = TestCertificateAuthority.Create("CN=Samsa dev CA");
            TestCertificates.WritePem(ca.Certificate, CaPath, CaKeyPath);
            Console.Error.WriteLine($"dev: made a self-signed CA in {CaPath}");
        }
        else
        {
            ca = TestCertificateAuthority.Load(CaPath, CaKeyPath);
        }
        using (ca)
        {
            bool reuse = !newCa && File.Exists(BrokerPath) && File.Exists(HostPath) && File.ReadAllText(HostPath) == host
                && X509CertificateLoader.LoadCertificateFromFile(BrokerPath) is { } existing && existing.NotAfter > DateTime.Now.AddDays(1);
            if (!reuse)
            {
                var dns = new List<string> { "localhost" };
                var addresses = new List<IPAddress> { IPAddress.Loopback, IPAddress.IPv6Loopback };
                if (IPAddress.TryParse(host, out var ip)) { if (!addresses.Contains(ip)) addresses.Add(ip); }
                else if (host != "localhost") dns.Add(host);
                using var server = ca.IssueServer("localhost", dns, addresses);
                File.WriteAllText(BrokerPath, TestCertificates.ToPem(server) + ca.CertificatePem);
                File.AppendAllText(BrokerPath, TestCertificates.KeyToPem(server));
                if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(BrokerPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                File.WriteAllText(HostPath, host);
                using var client = ca.IssueClient("CN=dev-client,O=Samsa dev");
                TestCertificates.WritePem(client, ClientCertPath, ClientKeyPath);
            }
        }
    }

    /// <summary>The dev users (development only): a super user and an ordinary user whose access
    /// ACLs decide. Both log in with PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 on the SASL_SSL listener.</summary>
    public static readonly IReadOnlyList<(string User, string Password)> Users = [("admin", "admin-secret"), ("alice", "alice-secret")];

    /// <summary>How far the SASL_SSL ports sit after the SSL ports (the number of dev brokers).</summary>
    public int SaslPortOffset { get; set; } = 1;

    /// <summary>Adds the SSL and SASL_SSL listeners and their settings to one dev broker's properties:
    /// PLAIN, SCRAM-SHA-256/512 and OAUTHBEARER (upstream's unsecured-JWT validator) on SASL_SSL, the
    /// ACL authorizer with User:ANONYMOUS (PLAINTEXT and certificate-less SSL clients) and admin as
    /// super users, so only alice's access depends on ACLs.</summary>
    public void Configure(Dictionary<string, string> props, string host, int sslPort)
    {
        int saslPort = sslPort == 0 ? 0 : sslPort + SaslPortOffset;
        props["listeners"] += $",SSL://{host}:{sslPort.ToString(CultureInfo.InvariantCulture)},SASL_SSL://{host}:{saslPort.ToString(CultureInfo.InvariantCulture)}";
        props["sasl.enabled.mechanisms"] = "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER";
        string plainUsers = string.Concat(Users.Select(u => $" user_{u.User}=\"{u.Password}\""));
        props["listener.name.sasl_ssl.plain.sasl.jaas.config"] = $"org.apache.kafka.common.security.plain.PlainLoginModule required{plainUsers};";
        props["listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config"] = "org.apache.kafka.common.security.scram.ScramLoginModule required;";
        props["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"] = "org.apache.kafka.common.security.scram.ScramLoginModule required;";
        props["listener.name.sasl_ssl.oauthbearer.sasl.jaas.config"] = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;";
        props["authorizer.class.name"] = "kafka.security.authorizer.AclAuthorizer";
        props["super.users"] = "User:ANONYMOUS;User:admin";
        props["ssl.keystore.type"] = "PEM";
        props["ssl.keystore.location"] = BrokerPath;
        props["ssl.truststore.type"] = "PEM";
        props["ssl.truststore.location"] = CaPath;
        props["ssl.client.auth"] = "requested";
        // Replication and coordinator traffic stay on PLAINTEXT: one process, loopback.
        props["inter.broker.listener.name"] = "PLAINTEXT";
    }

    /// <summary>SCRAM credentials of the dev users (stored in ZooKeeper, or the broker's file with
    /// --standalone), written once through the first broker.</summary>
    public static async Task CreateUsersAsync(KafkaBroker broker)
    {
        foreach (var (user, password) in Users)
        {
            var credentials = new Dictionary<string, Samsa.Kafka.Broker.Security.Sasl.ScramCredential>(StringComparer.Ordinal);
            foreach (var m in Samsa.Kafka.Broker.Security.Sasl.ScramMechanism.All)
                credentials[m.Name] = m.Credential(password, Samsa.Kafka.Broker.Security.Sasl.ScramMechanism.MinIterations);
            await broker.Sasl.Credentials.AlterAsync(user, credentials, []);
        }
    }

    /// <summary>The client configuration for the brokers' SASL_SSL listeners (alice, SCRAM-SHA-512).</summary>
    public string SaslClientConfig(IEnumerable<KafkaBroker> brokers)
    {
        string bootstrap = string.Join(",", brokers.Select(b => b.AdvertisedEndpointOf("SASL_SSL") is { } e
            ? $"{(e.Host.Contains(':') ? $"[{e.Host}]" : e.Host)}:{e.Port.ToString(CultureInfo.InvariantCulture)}" : null).Where(s => s is not null));
        var text = new StringBuilder();
        text.AppendLine("# Samsa dev: client configuration for the SASL_SSL listener (users admin/admin-secret, a super user,");
        text.AppendLine("# and alice/alice-secret, whose access ACLs decide; mechanisms PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER)");
        text.AppendLine($"bootstrap.servers={bootstrap}");
        text.AppendLine("security.protocol=SASL_SSL");
        text.AppendLine($"ssl.ca.location={CaPath}");
        text.AppendLine("sasl.mechanisms=SCRAM-SHA-512");
        text.AppendLine("sasl.username=alice");
        text.AppendLine("sasl.password=alice-secret");
        text.AppendLine("# Java clients: sasl.mechanism=SCRAM-SHA-512, ssl.truststore.type=PEM, ssl.truststore.location as above and");
        text.AppendLine("#   sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password=\"alice-secret\";");
        return text.ToString();
    }

    /// <summary>The client configuration for the brokers' SSL listeners.</summary>
    public string ClientConfig(IEnumerable<KafkaBroker> brokers)
    {
        string bootstrap = string.Join(",", brokers.Select(b => b.AdvertisedEndpointOf("SSL") is { } e
            ? $"{(e.Host.Contains(':') ? $"[{e.Host}]" : e.Host)}:{e.Port.ToString(CultureInfo.InvariantCulture)}" : null).Where(s => s is not null));
        var text = new StringBuilder();
        text.AppendLine("# Samsa dev: client configuration for the SSL listener");
        text.AppendLine("# librdkafka (kcat -F, confluent-kafka-python, Confluent.Kafka):");
        text.AppendLine($"bootstrap.servers={bootstrap}");
        text.AppendLine("security.protocol=SSL");
        text.AppendLine($"ssl.ca.location={CaPath}");
        text.AppendLine($"# mutual TLS (optional): ssl.certificate.location={ClientCertPath} ssl.key.location={ClientKeyPath}");
        text.AppendLine("# Java clients (kafka-console-producer --producer.config / --command-config): as above, but instead of ssl.ca.location:");
        text.AppendLine("#   ssl.truststore.type=PEM");
        text.AppendLine($"#   ssl.truststore.location={CaPath}");
        return text.ToString();
    }

    public void PrintClientConfig(IEnumerable<KafkaBroker> brokers)
    {
        string config = ClientConfig(brokers);
        File.WriteAllText(Path.Combine(Dir, "client.properties"), config);
        Console.Out.Write(config);
        string sasl = SaslClientConfig(brokers);
        File.WriteAllText(Path.Combine(Dir, "client-sasl.properties"), sasl);
        Console.Out.Write(sasl);
        Console.Out.Flush();
    }
}
