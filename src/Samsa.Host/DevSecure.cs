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
/// DATA/tls/client.properties for a user to paste. Brokers still talk to each other over PLAINTEXT.
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

    /// <summary>Adds the SSL listener and its settings to one dev broker's properties.</summary>
    public void Configure(Dictionary<string, string> props, string host, int sslPort)
    {
        props["listeners"] += $",SSL://{host}:{sslPort.ToString(CultureInfo.InvariantCulture)}";
        props["ssl.keystore.type"] = "PEM";
        props["ssl.keystore.location"] = BrokerPath;
        props["ssl.truststore.type"] = "PEM";
        props["ssl.truststore.location"] = CaPath;
        props["ssl.client.auth"] = "requested";
        // Replication and coordinator traffic stay on PLAINTEXT: one process, loopback.
        props["inter.broker.listener.name"] = "PLAINTEXT";
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
        Console.Out.Flush();
    }
}
