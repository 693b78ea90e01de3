using Samsa.Net;
using Samsa.Testing;

namespace Samsa.Host;

/// <summary><c>samsa perf --tls</c>: the measured broker serves only an SSL listener with a
/// certificate from a CA made for the run, so TLS cost shows beside a PLAINTEXT run of the same cell.</summary>
internal static class PerfTls
{
    public static (List<KeyValuePair<string, string>> Props, TlsClientOptions Client) Prepare(string dir, List<KeyValuePair<string, string>> props)
    {
        using var ca = TestCertificateAuthority.Create("CN=samsa perf CA");
        using var server = ca.IssueServer();
        string keystore = Path.Combine(dir, "broker.pem");
        File.WriteAllText(keystore, TestCertificates.KeyToPem(server) + TestCertificates.ToPem(server) + ca.CertificatePem);
        var all = new List<KeyValuePair<string, string>>
        {
            new("listeners", "SSL://127.0.0.1:0"),
            new("security.inter.broker.protocol", "SSL"),
            new("ssl.keystore.type", "PEM"),
            new("ssl.keystore.location", keystore),
        };
        all.AddRange(props);
        return (all, new TlsClientOptions { TrustedCertificates = ca.TrustStore });
    }

    /// <summary>An external broker: trust the given CA file (PEM), else the system roots.</summary>
    public static TlsClientOptions Client(string? caFile)
    {
        if (caFile is null) return new TlsClientOptions();
        var trusted = new System.Security.Cryptography.X509Certificates.X509Certificate2Collection();
        trusted.ImportFromPemFile(caFile);
        return new TlsClientOptions { TrustedCertificates = trusted };
    }
}
