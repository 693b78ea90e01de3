using System.Net.Security;
using System.Security.Authentication;
using Samsa.Keeper.Protocol;
using Samsa.Net;

namespace Samsa.Keeper.Server;

/// <summary>TLS on secureClientPort from upstream's zookeeper.ssl.* settings (X509Util /
/// ClientX509Util as NettyServerCnxnFactory uses them):
///   ssl.keyStore.location/password/passwordPath/type   PKCS12 or PEM (JKS: refused with the keytool line)
///   ssl.trustStore.location/password/passwordPath/type trusted issuers of client certificates (absent: the OS roots; upstream: the JDK's cacerts)
///   ssl.clientAuth        none / want / need (default need, as upstream)
///   ssl.protocol          default TLSv1.2; ssl.enabledProtocols default [ssl.protocol], as upstream
///   ssl.ciphersuites      IANA names (absent: the OS defaults; upstream: its own list of GCM/CBC suites)
///   ssl.authProvider      the scheme that turns a client certificate into an id (default x509)
///   ssl.handshakeDetectionTimeoutMillis  bounds the handshake (default 5000 as upstream)
///   ssl.hostnameVerification, ssl.clientHostnameVerification, ssl.sslProvider: accepted (upstream
///     does not check client host names on the client port; the provider is an implementation choice)
/// Differs from upstream: ssl.ocsp/ssl.crl=true and ssl.context.supplier.class stop the start (no
/// revocation checks, no pluggable context); so do unknown ssl.* keys; a secureClientPort without
/// serverCnxnFactory=NettyServerCnxnFactory is served (upstream's NIO factory refuses TLS).</summary>
public static class KeeperTls
{
    private static readonly HashSet<string> Known = new(StringComparer.Ordinal)
    {
        "keyStore.location", "keyStore.password", "keyStore.passwordPath", "keyStore.type",
        "trustStore.location", "trustStore.password", "trustStore.passwordPath", "trustStore.type",
        "clientAuth", "protocol", "enabledProtocols", "ciphersuites", "authProvider", "handshakeDetectionTimeoutMillis",
        "hostnameVerification", "clientHostnameVerification", "sslProvider", "ocsp", "crl", "context.supplier.class",
    };

    /// <summary>The TLS options of secureClientPort, or null when it is not configured.</summary>
    /// <exception cref="KeeperConfigException">A setting that cannot be honoured (one line).</exception>
    public static TlsServerOptions? Build(KeeperConfig c)
    {
        string? Get(string k) => c.Ssl.TryGetValue(k, out var v) && v.Length > 0 ? v : null;
        if (c.SecureClientPort is null) return null;
        foreach (var k in c.Ssl.Keys)
            if (!Known.Contains(k)) throw new KeeperConfigException($"ssl.{k} is not supported by the Keeper; remove it");
        foreach (var k in new[] { "ocsp", "crl" })
            if (Get(k) is { } v && bool.TryParse(v, out bool on) && on)
                throw new KeeperConfigException($"ssl.{k}=true: the Keeper does not check certificate revocation; remove it or run Apache ZooKeeper");
        if (Get("context.supplier.class") is { } sup) throw new KeeperConfigException($"ssl.context.supplier.class={sup}: a pluggable SSLContext is Java-only; configure ssl.keyStore.*/ssl.trustStore.* instead");
        if (Get("authProvider") is { } ap && ap != "x509") throw new KeeperConfigException($"ssl.authProvider={ap}: the Keeper authenticates client certificates with x509 only");
        string location = Get("keyStore.location") ?? throw new KeeperConfigException("secureClientPort is set but ssl.keyStore.location is not: the Keeper needs a key store for TLS");
        try
        {
            var (cert, chain) = TlsStores.LoadKeyStore("ssl.keyStore.location", location, TlsStores.Password(Get("keyStore.password"), Get("keyStore.passwordPath")), Get("keyStore.type"));
            var trust = Get("trustStore.location") is { } tl
                ? TlsStores.LoadTrustStore("ssl.trustStore.location", tl, TlsStores.Password(Get("trustStore.password"), Get("trustStore.passwordPath")), Get("trustStore.type"))
                : null;
            var mode = (Get("clientAuth") ?? "need").Trim().ToUpperInvariant() switch
            {
                "NONE" => ClientCertificateMode.None,
                "WANT" => ClientCertificateMode.Requested,
                "NEED" => ClientCertificateMode.Required,
                var other => throw new KeeperConfigException($"ssl.clientAuth={other}: expected none, want or need"),
            };
            string protocol = Get("protocol") ?? "TLSv1.2";
            var protocols = SslProtocols.None;
            foreach (var p in (Get("enabledProtocols") ?? protocol).Split(',').Select(x => x.Trim()).Where(x => x.Length > 0))
                protocols |= Protocol(p);
            CipherSuitesPolicy? ciphers = null;
            if (Get("ciphersuites") is { } cs)
            {
                var list = new List<TlsCipherSuite>();
                foreach (var name in cs.Split(',').Select(x => x.Trim()).Where(x => x.Length > 0))
                {
                    if (!Enum.TryParse<TlsCipherSuite>(name, out var suite)) throw new KeeperConfigException($"ssl.ciphersuites: unknown cipher suite {name}");
                    list.Add(suite);
                }
                if (OperatingSystem.IsWindows()) throw new KeeperConfigException("ssl.ciphersuites cannot be applied on Windows (SChannel chooses the suites); remove it");
                ciphers = new CipherSuitesPolicy(list);
            }
            int handshakeMs = Get("handshakeDetectionTimeoutMillis") is { } h ? int.Parse(h, System.Globalization.CultureInfo.InvariantCulture) : 5000;
            return new TlsServerOptions(cert, chain)
            {
                ClientCertificateMode = mode,
                TrustedCertificates = trust,
                EnabledProtocols = protocols,
                CipherSuitesPolicy = ciphers,
                HandshakeTimeout = TimeSpan.FromMilliseconds(Math.Max(1, handshakeMs)),
            };
        }
        catch (TlsStoreException e)
        {
            throw new KeeperConfigException(e.Message);
        }
        catch (FormatException e)
        {
            throw new KeeperConfigException("ssl settings: " + e.Message);
        }
    }

    private static SslProtocols Protocol(string name) => name switch
    {
        "TLSv1.2" => SslProtocols.Tls12,
        "TLSv1.3" => SslProtocols.Tls13,
        // SSLContext.getInstance("TLS"): whatever the platform offers
        "TLS" => SslProtocols.None,
        _ => throw new KeeperConfigException($"ssl.protocol / ssl.enabledProtocols: {name} is not supported by the Keeper (TLSv1.2, TLSv1.3)"),
    };
}
