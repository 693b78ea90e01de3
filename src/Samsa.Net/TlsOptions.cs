using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace Samsa.Net;

/// <summary>Whether a TLS server asks for a client certificate — Kafka's <c>ssl.client.auth</c>
/// (none / requested / required) and ZooKeeper's <c>ssl.clientAuth</c> (none / want / need).</summary>
public enum ClientCertificateMode
{
    /// <summary>No certificate is requested.</summary>
    None,
    /// <summary>A certificate is requested; a client may send none, but one it sends must be trusted
    /// (as Java's SSLEngine.setWantClientAuth: an untrusted certificate still fails the handshake).</summary>
    Requested,
    /// <summary>A trusted certificate is required, or the handshake fails.</summary>
    Required,
}

/// <summary>
/// TLS for a <see cref="FrameListener"/>: every accepted connection runs the TLS handshake first and
/// then its receive and send loops over an <see cref="SslStream"/>. File parts of frames are read and
/// copied on such connections (no sendfile: the bytes must be encrypted in user space).
/// </summary>
public sealed class TlsServerOptions
{
    private SslServerAuthenticationOptions? _built;

    /// <param name="certificate">The server certificate with its private key.</param>
    /// <param name="chain">Intermediate certificates sent with it (may be empty).</param>
    public TlsServerOptions(X509Certificate2 certificate, X509Certificate2Collection? chain = null)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        if (!certificate.HasPrivateKey)
        {
            throw new ArgumentException($"the server certificate {certificate.Subject} has no private key", nameof(certificate));
        }
        Certificate = certificate;
        Chain = chain ?? new X509Certificate2Collection();
    }

    public X509Certificate2 Certificate { get; }
    public X509Certificate2Collection Chain { get; }

    public ClientCertificateMode ClientCertificateMode { get; init; } = ClientCertificateMode.None;

    /// <summary>Certificates trusted as issuers of client certificates (the trust store). Null: the
    /// operating system's roots.</summary>
    public X509Certificate2Collection? TrustedCertificates { get; init; }

    /// <summary>Protocol versions offered; <see cref="SslProtocols.None"/> lets the OS choose.</summary>
    public SslProtocols EnabledProtocols { get; init; } = SslProtocols.None;

    /// <summary>Cipher suites allowed (Linux and macOS only); null = the OS default.</summary>
    public CipherSuitesPolicy? CipherSuitesPolicy { get; init; }

    /// <summary>A connection whose handshake has not finished by then is closed. Upstream has no
    /// separate bound (connections.max.idle.ms covers it); a stalled handshake must not hold a
    /// connection for ten minutes.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The SslServerAuthenticationOptions every connection of the listener authenticates with, built
    /// once from the properties above (a shared certificate context saves rebuilding the chain per
    /// connection). Callers needing more may adjust the returned object before the listener starts.
    /// </summary>
    public SslServerAuthenticationOptions AuthenticationOptions => _built ??= Build();

    private SslServerAuthenticationOptions Build()
    {
        var options = new SslServerAuthenticationOptions
        {
            ServerCertificateContext = SslStreamCertificateContext.Create(Certificate, Chain, offline: true),
            ClientCertificateRequired = ClientCertificateMode != ClientCertificateMode.None,
            EnabledSslProtocols = EnabledProtocols,
            CipherSuitesPolicy = CipherSuitesPolicy,
            // Java's default trust managers do not check revocation; neither do we.
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            AllowRenegotiation = false,
        };
        if (TrustedCertificates is not null)
        {
            options.CertificateChainPolicy = TlsTrust.CustomPolicy(TrustedCertificates);
        }
        ClientCertificateMode mode = ClientCertificateMode;
        options.RemoteCertificateValidationCallback = (_, certificate, _, errors) => AcceptClientCertificate(mode, certificate, errors);
        return options;
    }

    /// <summary>A client certificate is accepted when its chain is trusted; no certificate is accepted
    /// unless one is required.</summary>
    internal static bool AcceptClientCertificate(ClientCertificateMode mode, X509Certificate? certificate, SslPolicyErrors errors)
    {
        if (certificate is null)
        {
            return mode != ClientCertificateMode.Required;
        }
        // Names are not checked for client certificates (Kafka's server side does no hostname check).
        return (errors & ~(SslPolicyErrors.RemoteCertificateNameMismatch | SslPolicyErrors.RemoteCertificateNotAvailable)) == SslPolicyErrors.None;
    }
}

/// <summary>
/// TLS for an outgoing connection (a broker connecting to another broker, a client in tests).
/// </summary>
public sealed class TlsClientOptions
{
    /// <summary>The client certificate with its private key, for mutual TLS; null sends none.</summary>
    public X509Certificate2? ClientCertificate { get; init; }

    /// <summary>Intermediates sent with the client certificate.</summary>
    public X509Certificate2Collection? ClientCertificateChain { get; init; }

    /// <summary>Certificates trusted as issuers of the server's certificate; null = the OS roots.</summary>
    public X509Certificate2Collection? TrustedCertificates { get; init; }

    /// <summary>Check that the server certificate names the host connected to — Kafka's
    /// <c>ssl.endpoint.identification.algorithm=https</c> (the default since Kafka 2.0).</summary>
    public bool VerifyHostName { get; init; } = true;

    public SslProtocols EnabledProtocols { get; init; } = SslProtocols.None;

    public CipherSuitesPolicy? CipherSuitesPolicy { get; init; }

    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The options for one connection to <paramref name="host"/> (used for SNI and the name check).</summary>
    public SslClientAuthenticationOptions BuildAuthenticationOptions(string host)
    {
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = host,
            EnabledSslProtocols = EnabledProtocols,
            CipherSuitesPolicy = CipherSuitesPolicy,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            AllowRenegotiation = false,
        };
        if (ClientCertificate is not null)
        {
            options.ClientCertificateContext = SslStreamCertificateContext.Create(
                ClientCertificate, ClientCertificateChain ?? new X509Certificate2Collection(), offline: true);
        }
        if (TrustedCertificates is not null)
        {
            options.CertificateChainPolicy = TlsTrust.CustomPolicy(TrustedCertificates);
        }
        bool verifyName = VerifyHostName;
        options.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
        {
            if (certificate is null)
            {
                return false;
            }
            if (!verifyName)
            {
                errors &= ~SslPolicyErrors.RemoteCertificateNameMismatch;
            }
            return errors == SslPolicyErrors.None;
        };
        return options;
    }

    /// <summary>Runs the client handshake over <paramref name="inner"/> (owned by the returned stream),
    /// bounded by <see cref="HandshakeTimeout"/>. Throws <see cref="TlsHandshakeException"/> on failure.</summary>
    public async Task<SslStream> AuthenticateAsync(Stream inner, string host, CancellationToken cancellationToken = default)
    {
        var ssl = new SslStream(inner, leaveInnerStreamOpen: false);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(HandshakeTimeout);
        try
        {
            await ssl.AuthenticateAsClientAsync(BuildAuthenticationOptions(host), timeout.Token);
            return ssl;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            await ssl.DisposeAsync();
            throw new TlsHandshakeException(TlsHandshakeException.Describe($"TLS handshake with {host}", ex, HandshakeTimeout, timeout.IsCancellationRequested), ex);
        }
        catch
        {
            await ssl.DisposeAsync();
            throw;
        }
    }
}

internal static class TlsTrust
{
    /// <summary>A chain policy trusting exactly the given certificates, as a Java trust store does.</summary>
    internal static X509ChainPolicy CustomPolicy(X509Certificate2Collection trusted)
    {
        var policy = new X509ChainPolicy
        {
            TrustMode = X509ChainTrustMode.CustomRootTrust,
            RevocationMode = X509RevocationMode.NoCheck,
        };
        policy.CustomTrustStore.AddRange(trusted);
        // Intermediates in the trust store help build chains whose client sent only its leaf.
        policy.ExtraStore.AddRange(trusted);
        return policy;
    }
}

/// <summary>A TLS handshake failed (plain bytes on a TLS port, an untrusted certificate, a timeout).
/// The message is one line for a log.</summary>
public sealed class TlsHandshakeException : IOException
{
    public TlsHandshakeException(string message, Exception? inner) : base(message, inner) { }

    internal static string Describe(string what, Exception ex, TimeSpan timeout, bool timedOut)
    {
        if (timedOut && ex is OperationCanceledException)
        {
            return $"{what} failed: not finished within {timeout.TotalSeconds:0.#} s";
        }
        string reason = ex.Message;
        for (Exception? inner = ex.InnerException; inner is not null; inner = inner.InnerException)
        {
            if (!string.IsNullOrWhiteSpace(inner.Message) && !reason.Contains(inner.Message, StringComparison.Ordinal))
            {
                reason += ": " + inner.Message;
            }
        }
        return $"{what} failed: {reason.ReplaceLineEndings(" ")}";
    }
}
