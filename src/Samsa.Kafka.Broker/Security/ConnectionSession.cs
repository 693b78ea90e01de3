using System.Net;

namespace Samsa.Kafka.Broker.Security;

/// <summary>
/// What the broker knows about one client connection (kept in <see cref="Samsa.Net.Connection.State"/>
/// and handed to handlers as <see cref="Handlers.RequestContext.Session"/>): the listener it came
/// in on, its security protocol, and the principal requests are authorized as.
/// </summary>
public sealed class ConnectionSession
{
    public ConnectionSession(string listenerName, SecurityProtocol protocol, IPAddress clientAddress)
    {
        ListenerName = listenerName;
        SecurityProtocol = protocol;
        ClientAddress = clientAddress;
    }

    /// <summary>The listener name ("PLAINTEXT", "INTERNAL", "SASL_SSL").</summary>
    public string ListenerName { get; }
    public SecurityProtocol SecurityProtocol { get; }
    /// <summary>The client's address (ACL hosts, per-IP quotas, connection limits).</summary>
    public IPAddress ClientAddress { get; }

    /// <summary>ANONYMOUS until authentication (SASL, or a TLS client certificate) sets it.</summary>
    public KafkaPrincipal Principal { get; set; } = KafkaPrincipal.Anonymous;

    /// <summary>False on a SASL listener until SaslAuthenticate (or the v0 exchange) succeeded;
    /// true from the start on PLAINTEXT and SSL listeners.</summary>
    public bool Authenticated { get; set; }

    /// <summary>True when SASL/SCRAM authenticated with a delegation token (tokenauth=true): the
    /// principal is the token's owner, and token APIs are refused (upstream tokenAuthenticated).</summary>
    public bool TokenAuthenticated { get; set; }

    /// <summary>The SASL exchange's state (mechanism, server, session expiry); owned by Security/Sasl.</summary>
    public object? Sasl { get; set; }

    /// <summary>The client id of the last request (quotas, logging).</summary>
    public string? ClientId { get; set; }

    /// <summary>A session for handler tests and in-process calls without a network: PLAINTEXT, loopback, ANONYMOUS.</summary>
    public static ConnectionSession ForTests(KafkaPrincipal? principal = null) =>
        new("PLAINTEXT", SecurityProtocol.Plaintext, IPAddress.Loopback) { Principal = principal ?? KafkaPrincipal.Anonymous, Authenticated = true };
}
