using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Samsa.Keeper.Protocol;

namespace Samsa.Keeper.Client;

/// <summary>TLS to the server's secureClientPort, as upstream's ClientCnxnSocketNetty with
/// zookeeper.client.secure=true (ClientX509Util): the server certificate must chain to the trust
/// store and, with zookeeper.ssl.hostnameVerification (default true), name the host connected
/// to; a key store adds a client certificate (the server's x509 identity).</summary>
public sealed class KeeperClientTls
{
    /// <summary>Trusted issuers of the server certificate; null = the operating system's roots
    /// (upstream: the JDK's cacerts).</summary>
    public X509Certificate2Collection? TrustedCertificates { get; init; }
    public X509Certificate2? ClientCertificate { get; init; }
    public X509Certificate2Collection? ClientCertificateChain { get; init; }
    public bool VerifyHostName { get; init; } = true;
    /// <summary>Upstream default: TLSv1.2 (zookeeper.ssl.protocol), enabled protocols = [protocol].</summary>
    public SslProtocols EnabledProtocols { get; init; } = SslProtocols.Tls12;
    public IReadOnlyList<TlsCipherSuite>? CipherSuites { get; init; }
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>From upstream client property names (ZKClientConfig / ClientX509Util), e.g.
    /// zookeeper.ssl.trustStore.location; <paramref name="get"/> returns null for unset keys.
    /// Kafka's zookeeper.ssl.* broker keys are mapped onto these by the broker.</summary>
    /// <exception cref="TlsStoreException">A store that cannot be used (one line).</exception>
    public static KeeperClientTls FromProperties(Func<string, string?> get)
    {
        string? G(string k) => get("zookeeper.ssl." + k) is { Length: > 0 } v ? v : null;
        X509Certificate2? cert = null;
        X509Certificate2Collection? chain = null;
        if (G("keyStore.location") is { } ks)
            (cert, chain) = TlsStores.LoadKeyStore("zookeeper.ssl.keyStore.location", ks, TlsStores.Password(G("keyStore.password"), G("keyStore.passwordPath")), G("keyStore.type"));
        X509Certificate2Collection? trust = null;
        if (G("trustStore.location") is { } ts)
            trust = TlsStores.LoadTrustStore("zookeeper.ssl.trustStore.location", ts, TlsStores.Password(G("trustStore.password"), G("trustStore.passwordPath")), G("trustStore.type"));
        var protocols = SslProtocols.None;
        foreach (var p in (G("enabledProtocols") ?? G("protocol") ?? "TLSv1.2").Split(',').Select(x => x.Trim()).Where(x => x.Length > 0))
        {
            protocols |= p switch
            {
                "TLSv1.2" => SslProtocols.Tls12,
                "TLSv1.3" => SslProtocols.Tls13,
                "TLS" => SslProtocols.None,
                _ => throw new TlsStoreException($"zookeeper.ssl.protocol / enabledProtocols: {p} is not supported (TLSv1.2, TLSv1.3)"),
            };
        }
        List<TlsCipherSuite>? suites = null;
        if (G("ciphersuites") is { } cs)
        {
            suites = new List<TlsCipherSuite>();
            foreach (var name in cs.Split(',').Select(x => x.Trim()).Where(x => x.Length > 0))
                suites.Add(Enum.TryParse<TlsCipherSuite>(name, out var s) ? s : throw new TlsStoreException($"zookeeper.ssl.ciphersuites: unknown cipher suite {name}"));
        }
        return new KeeperClientTls
        {
            TrustedCertificates = trust,
            ClientCertificate = cert,
            ClientCertificateChain = chain,
            VerifyHostName = !string.Equals(G("hostnameVerification"), "false", StringComparison.OrdinalIgnoreCase),
            EnabledProtocols = protocols,
            CipherSuites = suites,
        };
    }

    internal async Task<SslStream> AuthenticateAsync(Stream inner, string host, CancellationToken ct)
    {
        var ssl = new SslStream(inner, leaveInnerStreamOpen: false);
        var o = new SslClientAuthenticationOptions
        {
            TargetHost = host,
            EnabledSslProtocols = EnabledProtocols,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            AllowRenegotiation = false,
        };
        if (CipherSuites is not null && !OperatingSystem.IsWindows()) o.CipherSuitesPolicy = new CipherSuitesPolicy(CipherSuites);
        if (ClientCertificate is not null)
            o.ClientCertificateContext = SslStreamCertificateContext.Create(ClientCertificate, ClientCertificateChain ?? new X509Certificate2Collection(), offline: true);
        if (TrustedCertificates is not null)
        {
            var policy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck };
            policy.CustomTrustStore.AddRange(TrustedCertificates);
            policy.ExtraStore.AddRange(TrustedCertificates);
            o.CertificateChainPolicy = policy;
        }
        bool verifyName = VerifyHostName;
        o.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
        {
            if (certificate is null) return false;
            if (!verifyName) errors &= ~SslPolicyErrors.RemoteCertificateNameMismatch;
            return errors == SslPolicyErrors.None;
        };
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(HandshakeTimeout);
        try
        {
            await ssl.AuthenticateAsClientAsync(o, timeout.Token).ConfigureAwait(false);
            return ssl;
        }
        catch
        {
            await ssl.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }
}

/// <summary>SASL DIGEST-MD5 credentials, as upstream's ZooKeeperSaslClient takes them from the
/// JAAS "Client" section (zookeeper.sasl.clientconfig) with DigestLoginModule's
/// username/password. The exchange runs after every connect and reconnect, before any other
/// request; a failure is terminal (AuthFailed), as upstream.</summary>
public sealed class KeeperClientSasl
{
    public required string Username { get; init; }
    public required string Password { get; init; }

    /// <summary>The section's DigestLoginModule username/password.</summary>
    /// <exception cref="FormatException">No such section, or it has no username/password (one line).</exception>
    public static KeeperClientSasl FromJaas(JaasFile jaas, string path, string section = "Client")
    {
        var entries = jaas.Section(section)
            ?? throw new FormatException($"No JAAS configuration section named '{section}' was found in specified JAAS configuration file: '{path}'.");
        foreach (var e in entries)
        {
            if (e.LoginModule.Contains("Krb5LoginModule", StringComparison.Ordinal))
                throw new FormatException($"JAAS section '{section}' in {path} uses {e.LoginModule}: Kerberos (GSSAPI) is not supported, only DIGEST-MD5 (DigestLoginModule username/password)");
            if (e.Options.TryGetValue("username", out var u) && e.Options.TryGetValue("password", out var p))
                return new KeeperClientSasl { Username = u, Password = p };
        }
        throw new FormatException($"JAAS section '{section}' in {path} has no username and password");
    }

    public static KeeperClientSasl FromJaasFile(string path, string section = "Client") => FromJaas(JaasFile.Load(path), path, section);
}
