using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Samsa.Kafka.Broker.Config;
using Samsa.Net;

namespace Samsa.Kafka.Broker.Security;

/// <summary>
/// The <c>ssl.*</c> settings of one listener, resolved as upstream does: a key prefixed with
/// <c>listener.name.&lt;listener lower case&gt;.</c> wins over the plain key (KafkaConfig /
/// ChannelBuilders, KIP-103). Builds the server side (keystore, trust store, ssl.client.auth,
/// protocols, cipher suites) and the client side an inter-broker connection uses (the same keystore
/// as client certificate, trust store, ssl.endpoint.identification.algorithm).
///
/// Differences from upstream: JKS keystores cannot be read (.NET has no Java keystore reader) and
/// refuse the start with a keytool hint — except a PKCS#12 file declared JKS, which Java also reads
/// (keystore.type.compat); a PKCS#12 key password must equal the store password; TLSv1 and
/// TLSv1.1 are refused; ssl.provider, ssl.keymanager.algorithm, ssl.trustmanager.algorithm and
/// ssl.secure.random.implementation pass at their defaults only (the OS TLS stack is used;
/// SecurityConfigCheck.Unhonoured refuses other values).
/// </summary>
public sealed class SslSettings
{
    private readonly BrokerConfig _config;

    public SslSettings(BrokerConfig config, string listenerName)
    {
        _config = config;
        ListenerName = listenerName;
    }

    public string ListenerName { get; }

    private string Prefix => $"listener.name.{ListenerName.ToLowerInvariant()}.";

    /// <summary>The listener-prefixed value, else the plain key's (its default included).</summary>
    public string? Get(string key) => _config.GetString(Prefix + key) ?? _config.GetString(key);

    /// <summary>Upstream KIP-684: on SASL_SSL listeners ssl.client.auth applies only with the listener prefix.</summary>
    public ClientCertificateMode ClientAuth(SecurityProtocol protocol)
    {
        string? value = protocol == SecurityProtocol.SaslSsl ? _config.GetString(Prefix + "ssl.client.auth") : Get("ssl.client.auth");
        return (value ?? "none").Trim().ToLowerInvariant() switch
        {
            "none" or "" => ClientCertificateMode.None,
            "requested" => ClientCertificateMode.Requested,
            "required" => ClientCertificateMode.Required,
            _ => throw new ConfigValueException($"Invalid value {value} for configuration ssl.client.auth: String must be one of: required, requested, none"),
        };
    }

    /// <summary>The server side of the listener (keystore required, as upstream's SslFactory demands).</summary>
    public TlsServerOptions ServerOptions(SecurityProtocol protocol)
    {
        var (certificate, chain) = LoadKeystore()
            ?? throw new ConfigValueException($"listener {ListenerName} ({protocol.Name()}) needs a keystore: set ssl.keystore.location (or ssl.keystore.type=PEM with ssl.keystore.key and ssl.keystore.certificate.chain), or {Prefix}ssl.keystore.*");
        return new TlsServerOptions(certificate, chain)
        {
            ClientCertificateMode = ClientAuth(protocol),
            TrustedCertificates = LoadTruststore(),
            EnabledProtocols = EnabledProtocols(),
            CipherSuitesPolicy = CipherSuites(),
        };
    }

    /// <summary>The client side for connections to this listener on other brokers.</summary>
    public TlsClientOptions ClientOptions()
    {
        var keystore = LoadKeystore();
        string algorithm = (Get("ssl.endpoint.identification.algorithm") ?? "https").Trim();
        if (algorithm.Length > 0 && !algorithm.Equals("https", StringComparison.OrdinalIgnoreCase))
            throw new ConfigValueException($"Invalid value {algorithm} for configuration ssl.endpoint.identification.algorithm: only https or an empty value are supported");
        return new TlsClientOptions
        {
            ClientCertificate = keystore?.Certificate,
            ClientCertificateChain = keystore?.Chain,
            TrustedCertificates = LoadTruststore(),
            VerifyHostName = algorithm.Length > 0,
            EnabledProtocols = EnabledProtocols(),
            CipherSuitesPolicy = CipherSuites(),
        };
    }

    // ---------------------------------------------------------------- keystore

    /// <summary>The keystore's certificate with its key and the rest of its chain; null when none is configured.</summary>
    public (X509Certificate2 Certificate, X509Certificate2Collection Chain)? LoadKeystore()
    {
        string type = (Get("ssl.keystore.type") ?? "JKS").Trim().ToUpperInvariant();
        string? location = Get("ssl.keystore.location");
        string? storePassword = Get("ssl.keystore.password");
        string? keyPassword = Get("ssl.key.password");
        string? keyPem = Get("ssl.keystore.key");
        string? chainPem = Get("ssl.keystore.certificate.chain");
        if (type == "PEM")
        {
            // Upstream DefaultSslEngineFactory: PEM keystores take no store password.
            if (storePassword is not null)
                throw new ConfigValueException("SSL key store password cannot be specified with PEM format, only key password may be specified");
            if (keyPem is not null || chainPem is not null)
            {
                if (keyPem is null || chainPem is null)
                    throw new ConfigValueException("Both ssl.keystore.key and ssl.keystore.certificate.chain must be set for ssl.keystore.type=PEM");
                if (location is not null)
                    throw new ConfigValueException("ssl.keystore.location cannot be set together with ssl.keystore.key / ssl.keystore.certificate.chain");
                return FromPem(chainPem, keyPem, keyPassword, "ssl.keystore.key");
            }
            if (location is null) return null;
            string text = ReadText(location, "ssl.keystore.location");
            return FromPem(text, text, keyPassword, location);
        }
        if (keyPem is not null || chainPem is not null)
            throw new ConfigValueException($"ssl.keystore.key and ssl.keystore.certificate.chain need ssl.keystore.type=PEM (it is {type})");
        if (location is null) return null;
        byte[] bytes = ReadBytes(location, "ssl.keystore.location");
        CheckPkcs12Type(type, bytes, location, "ssl.keystore");
        if (keyPassword is not null && storePassword is not null && keyPassword != storePassword)
            throw new ConfigValueException($"{location}: an ssl.key.password different from ssl.keystore.password is not supported for PKCS12 keystores (re-export the key with the store password)");
        X509Certificate2Collection all;
        try
        {
            all = X509CertificateLoader.LoadPkcs12Collection(bytes, storePassword ?? keyPassword, X509KeyStorageFlags.EphemeralKeySet);
        }
        catch (CryptographicException e)
        {
            throw new ConfigValueException($"cannot read keystore {location}: {e.Message} (wrong ssl.keystore.password?)");
        }
        var leaf = all.FirstOrDefault(c => c.HasPrivateKey)
            ?? throw new ConfigValueException($"keystore {location} holds no private key entry");
        var chain = new X509Certificate2Collection();
        foreach (var c in all) if (!ReferenceEquals(c, leaf)) chain.Add(c);
        return (leaf, chain);
    }

    private static (X509Certificate2, X509Certificate2Collection) FromPem(string certificatesPem, string keyPem, string? keyPassword, string source)
    {
        var certs = new X509Certificate2Collection();
        try
        {
            certs.ImportFromPem(certificatesPem);
        }
        catch (CryptographicException e)
        {
            throw new ConfigValueException($"cannot read certificates from {source}: {e.Message}");
        }
        if (certs.Count == 0) throw new ConfigValueException($"no certificate found in {source}");
        X509Certificate2 leaf;
        try
        {
            leaf = keyPassword is null
                ? X509Certificate2.CreateFromPem(certs[0].ExportCertificatePem(), keyPem)
                : X509Certificate2.CreateFromEncryptedPem(certs[0].ExportCertificatePem(), keyPem, keyPassword);
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            throw new ConfigValueException($"cannot read the private key of {source}: {e.Message}{(keyPassword is null ? " (an encrypted key needs ssl.key.password)" : "")}");
        }
        // Linux needs no re-import; other platforms want a persisted key for SslStream.
        if (!OperatingSystem.IsLinux())
        {
            using var temp = leaf;
            leaf = X509CertificateLoader.LoadPkcs12(leaf.Export(X509ContentType.Pkcs12), null);
        }
        var chain = new X509Certificate2Collection();
        for (int i = 1; i < certs.Count; i++) chain.Add(certs[i]);
        return (leaf, chain);
    }

    // ---------------------------------------------------------------- trust store

    /// <summary>The trust store's certificates; null when none is configured (the OS roots are used,
    /// as upstream then uses the JVM's cacerts).</summary>
    public X509Certificate2Collection? LoadTruststore()
    {
        string type = (Get("ssl.truststore.type") ?? "JKS").Trim().ToUpperInvariant();
        string? location = Get("ssl.truststore.location");
        string? password = Get("ssl.truststore.password");
        string? certificates = Get("ssl.truststore.certificates");
        var trusted = new X509Certificate2Collection();
        if (type == "PEM")
        {
            if (password is not null)
                throw new ConfigValueException("SSL trust store password cannot be specified for PEM format.");
            if (certificates is not null && location is not null)
                throw new ConfigValueException("ssl.truststore.location cannot be set together with ssl.truststore.certificates");
            string? text = certificates ?? (location is null ? null : ReadText(location, "ssl.truststore.location"));
            if (text is null) return null;
            try { trusted.ImportFromPem(text); }
            catch (CryptographicException e) { throw new ConfigValueException($"cannot read trust store certificates: {e.Message}"); }
            if (trusted.Count == 0) throw new ConfigValueException("the PEM trust store holds no certificate");
            return trusted;
        }
        if (certificates is not null)
            throw new ConfigValueException($"ssl.truststore.certificates needs ssl.truststore.type=PEM (it is {type})");
        if (location is null) return null;
        byte[] bytes = ReadBytes(location, "ssl.truststore.location");
        CheckPkcs12Type(type, bytes, location, "ssl.truststore");
        try
        {
            foreach (var c in X509CertificateLoader.LoadPkcs12Collection(bytes, password, X509KeyStorageFlags.EphemeralKeySet))
                trusted.Add(X509CertificateLoader.LoadCertificate(c.RawData));
        }
        catch (CryptographicException e)
        {
            throw new ConfigValueException($"cannot read trust store {location}: {e.Message} (wrong ssl.truststore.password?)");
        }
        if (trusted.Count == 0) throw new ConfigValueException($"trust store {location} holds no certificate");
        return trusted;
    }

    private static void CheckPkcs12Type(string type, byte[] bytes, string location, string key)
    {
        bool javaKeystore = bytes.Length >= 4 && bytes[0] == 0xFE && bytes[1] == 0xED && bytes[2] == 0xFE && bytes[3] == 0xED;
        bool jceks = bytes.Length >= 4 && bytes[0] == 0xCE && bytes[1] == 0xCE && bytes[2] == 0xCE && bytes[3] == 0xCE;
        bool der = bytes.Length > 0 && bytes[0] == 0x30;
        if (type is "JKS" or "JCEKS" && (javaKeystore || jceks))
            throw new ConfigValueException($"{key}.location {location} is a Java keystore ({type}), which Samsa cannot read: convert it with keytool -importkeystore -srckeystore {location} -destkeystore {Path.ChangeExtension(location, ".p12")} -deststoretype PKCS12 and set {key}.type=PKCS12 (or use PEM)");
        if (type is "JKS" or "JCEKS" or "PKCS12")
        {
            // A PKCS#12 file declared JKS loads as Java's keystore.type.compat would load it.
            if (!der)
                throw new ConfigValueException($"{key}.location {location} is not a {(type == "PKCS12" ? "PKCS12" : type)} keystore Samsa can read (expected PKCS12 or PEM)");
            return;
        }
        throw new ConfigValueException($"{key}.type {type} is not supported (PKCS12 and PEM are; convert JKS with keytool -importkeystore -deststoretype PKCS12)");
    }

    private static byte[] ReadBytes(string path, string key)
    {
        try { return File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigValueException($"cannot read {key} {path}: {e.Message}");
        }
    }

    private static string ReadText(string path, string key) => Encoding.UTF8.GetString(ReadBytes(path, key));

    // ---------------------------------------------------------------- protocols and ciphers

    /// <summary>ssl.enabled.protocols (default TLSv1.2,TLSv1.3); ssl.protocol only names the SSLContext
    /// in upstream and restricts nothing, so it is only checked.</summary>
    public SslProtocols EnabledProtocols()
    {
        string? context = Get("ssl.protocol");
        if (context is not null && context.Trim() is not ("TLS" or "TLSv1.2" or "TLSv1.3" or "TLSv1.1" or "TLSv1"))
            throw new ConfigValueException($"Invalid value {context} for configuration ssl.protocol: use TLSv1.3, TLSv1.2 or TLS");
        var protocols = SslProtocols.None;
        foreach (var name in (Get("ssl.enabled.protocols") ?? "TLSv1.2,TLSv1.3").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            protocols |= name switch
            {
                "TLSv1.2" => SslProtocols.Tls12,
                "TLSv1.3" => SslProtocols.Tls13,
                "TLSv1" or "TLSv1.1" => throw new ConfigValueException($"ssl.enabled.protocols: {name} is not supported by Samsa (TLSv1.2 and TLSv1.3 are)"),
                _ => throw new ConfigValueException($"ssl.enabled.protocols: unknown protocol {name} (TLSv1.2 and TLSv1.3 are supported)"),
            };
        }
        return protocols;
    }

    /// <summary>ssl.cipher.suites by their IANA names (Java's names, e.g.
    /// TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256); empty = the OS defaults.</summary>
    public CipherSuitesPolicy? CipherSuites()
    {
        string? text = Get("ssl.cipher.suites");
        if (string.IsNullOrWhiteSpace(text)) return null;
        var suites = new List<TlsCipherSuite>();
        foreach (var name in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!Enum.TryParse<TlsCipherSuite>(name, ignoreCase: false, out var suite))
                throw new ConfigValueException($"ssl.cipher.suites: unknown cipher suite {name}");
            suites.Add(suite);
        }
        if (OperatingSystem.IsWindows())
            throw new ConfigValueException("ssl.cipher.suites cannot be applied on Windows (the OS chooses cipher suites there)");
        return new CipherSuitesPolicy(suites);
    }
}
