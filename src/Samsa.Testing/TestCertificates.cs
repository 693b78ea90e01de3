using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Samsa.Testing;

/// <summary>
/// A self-signed certificate authority made in process, issuing server certificates (SANs
/// localhost, 127.0.0.1, ::1 by default) and client certificates, for TLS tests and
/// <c>samsa dev --secure</c>. Keys are ECDSA P-256 (fast to make; every Kafka client accepts them)
/// unless RSA is asked for. Certificates carry the extensions strict verifiers want (basic
/// constraints, key usage, subject/authority key identifiers), so OpenSSL 3, Java and .NET all accept
/// the chains.
/// </summary>
public sealed class TestCertificateAuthority : IDisposable
{
    private long _serial = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    private TestCertificateAuthority(X509Certificate2 certificate, bool rsa)
    {
        Certificate = certificate;
        UsesRsa = rsa;
    }

    /// <summary>The CA certificate with its private key.</summary>
    public X509Certificate2 Certificate { get; }

    public bool UsesRsa { get; }

    /// <summary>The CA certificate in PEM (what a client's ssl.ca.location / truststore holds).</summary>
    public string CertificatePem => TestCertificates.ToPem(Certificate);

    /// <summary>A collection holding only the CA certificate (public part), as a trust store.</summary>
    public X509Certificate2Collection TrustStore => new() { X509CertificateLoader.LoadCertificate(Certificate.RawData) };

    public static TestCertificateAuthority Create(string subject = "CN=Samsa Test CA", bool rsa = false, TimeSpan? validity = null)
    {
        var now = DateTimeOffset.UtcNow;
        using AsymmetricAlgorithm key = rsa ? RSA.Create(2048) : ECDsa.Create(ECCurve.NamedCurves.nistP256);
        CertificateRequest request = NewRequest(subject, key);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign | X509KeyUsageFlags.DigitalSignature, true));
        var ski = new X509SubjectKeyIdentifierExtension(request.PublicKey, false);
        request.CertificateExtensions.Add(ski);
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromSubjectKeyIdentifier(ski));
        X509Certificate2 ca = request.CreateSelfSigned(now.AddMinutes(-5), now.Add(validity ?? TimeSpan.FromDays(3650)));
        return new TestCertificateAuthority(ca, rsa);
    }

    /// <summary>Loads a CA written by <see cref="TestCertificates.WritePem"/> (certificate + unencrypted key PEM).</summary>
    public static TestCertificateAuthority Load(string certificatePemPath, string keyPemPath)
    {
        X509Certificate2 ca = X509Certificate2.CreateFromPemFile(certificatePemPath, keyPemPath);
        return new TestCertificateAuthority(ca, ca.GetRSAPublicKey() is not null);
    }

    /// <summary>A server certificate (also usable as a client certificate, as brokers present one to each other).</summary>
    public X509Certificate2 IssueServer(string commonName = "localhost", IEnumerable<string>? dnsNames = null, IEnumerable<IPAddress>? addresses = null, TimeSpan? validity = null)
    {
        var san = new SubjectAlternativeNameBuilder();
        foreach (string dns in dnsNames ?? ["localhost"])
        {
            san.AddDnsName(dns);
        }
        foreach (IPAddress address in addresses ?? [IPAddress.Loopback, IPAddress.IPv6Loopback])
        {
            san.AddIpAddress(address);
        }
        return Issue("CN=" + commonName, san.Build(), validity, new OidCollection
        {
            new Oid("1.3.6.1.5.5.7.3.1"), // serverAuth
            new Oid("1.3.6.1.5.5.7.3.2"), // clientAuth
        });
    }

    /// <summary>A client certificate with the given subject DN (e.g. "CN=alice,OU=eng,O=Samsa").</summary>
    public X509Certificate2 IssueClient(string subject, TimeSpan? validity = null)
        => Issue(subject, null, validity, new OidCollection { new Oid("1.3.6.1.5.5.7.3.2") });

    private X509Certificate2 Issue(string subject, X509Extension? san, TimeSpan? validity, OidCollection usages)
    {
        var now = DateTimeOffset.UtcNow;
        using AsymmetricAlgorithm key = UsesRsa ? RSA.Create(2048) : ECDsa.Create(ECCurve.NamedCurves.nistP256);
        CertificateRequest request = NewRequest(subject, key);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(
            UsesRsa ? X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment : X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(usages, false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Certificate, true, false));
        if (san is not null)
        {
            request.CertificateExtensions.Add(san);
        }
        DateTimeOffset notAfter = now.Add(validity ?? TimeSpan.FromDays(825));
        if (notAfter > Certificate.NotAfter)
        {
            notAfter = Certificate.NotAfter;
        }
        byte[] serial = BitConverter.GetBytes(Interlocked.Increment(ref _serial));
        Array.Reverse(serial);
        using X509Certificate2 issued = request.Create(Certificate, now.AddMinutes(-5), notAfter, serial);
        return key switch
        {
            RSA rsaKey => issued.CopyWithPrivateKey(rsaKey),
            ECDsa ecKey => issued.CopyWithPrivateKey(ecKey),
            _ => throw new InvalidOperationException("unexpected key type"),
        };
    }

    private static CertificateRequest NewRequest(string subject, AsymmetricAlgorithm key) => key switch
    {
        RSA rsa => new CertificateRequest(subject, rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1),
        ECDsa ec => new CertificateRequest(subject, ec, HashAlgorithmName.SHA256),
        _ => throw new InvalidOperationException("unexpected key type"),
    };

    public void Dispose() => Certificate.Dispose();
}

/// <summary>PEM and PKCS#12 output of certificates, for configs and client tools.</summary>
public static class TestCertificates
{
    public static string ToPem(X509Certificate2 certificate) => certificate.ExportCertificatePem() + "\n";

    /// <summary>The private key as PKCS#8 PEM; encrypted (PBES2, AES-256) when a password is given,
    /// the form Kafka's ssl.keystore.key with ssl.key.password takes.</summary>
    public static string KeyToPem(X509Certificate2 certificate, string? password = null)
    {
        AsymmetricAlgorithm key = (AsymmetricAlgorithm?)certificate.GetRSAPrivateKey() ?? certificate.GetECDsaPrivateKey()
            ?? throw new InvalidOperationException("certificate has no RSA or ECDSA private key");
        using (key)
        {
            if (password is null)
            {
                return key.ExportPkcs8PrivateKeyPem() + "\n";
            }
            var pbe = new PbeParameters(PbeEncryptionAlgorithm.Aes256Cbc, HashAlgorithmName.SHA256, 100_000);
            return key.ExportEncryptedPkcs8PrivateKeyPem(password, pbe) + "\n";
        }
    }

    /// <summary>Writes certificate (followed by <paramref name="chain"/>) and key PEM files.</summary>
    public static void WritePem(X509Certificate2 certificate, string certificatePath, string keyPath, string? keyPassword = null, params X509Certificate2[] chain)
    {
        var text = new StringBuilder(ToPem(certificate));
        foreach (X509Certificate2 extra in chain)
        {
            text.Append(ToPem(extra));
        }
        File.WriteAllText(certificatePath, text.ToString());
        File.WriteAllText(keyPath, KeyToPem(certificate, keyPassword));
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(keyPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }

    /// <summary>A PKCS#12 keystore (certificate + key + chain) as Kafka's ssl.keystore.type=PKCS12 reads it.</summary>
    public static byte[] ToPkcs12(X509Certificate2 certificate, string password, params X509Certificate2[] chain)
    {
        var collection = new X509Certificate2Collection { certificate };
        foreach (X509Certificate2 extra in chain)
        {
            collection.Add(X509CertificateLoader.LoadCertificate(extra.RawData));
        }
        return collection.Export(X509ContentType.Pkcs12, password)!;
    }
}
